r"""RAI's stacked path: identical consecutive blocks run as one batched computation.

Under RAI every block reads its own table, so blocks do not wait for each other. When
G consecutive blocks have the same layers and shapes (the deep net's 99 hidden blocks
``[Sigmoid, Linear(100, 100)]``), their weights, tables and outputs can be stacked along
a new first axis and run as *one* forward and backward:

    x  = Z[a-1 .. a+G-2]            (G, N, D)     each block's input table
    o  = block(x)                   (G, N, D)     the same layer code, on stacks
    h_s = mean((o_s - Z_s)²)        per cut        MSE against the next table
    dL/do = λ · 2 (o - Z) / (N D);  target part of dL/dZ = -dL/do

Nothing is copied: after packing (:mod:`minirai.packing`) the weights of the G blocks lie
side by side in one flat array, so the stacked weight ``W (G, D, D)`` is a view, and its
gradient view is each layer's ``grads["W"]``. The per-block loop in :class:`minirai.rai.RAI`
stays the reference; tests check both give the same losses, gradients and updates.
"""
from __future__ import annotations

import copy
from typing import Any

from . import backend
from .layers import Layer
from .losses import MSE, Loss
from .network import Sequential

Array = Any


def signature(block: Sequential) -> tuple:
    """What must match for blocks to be stacked: layer types, settings and parameter shapes."""
    return tuple((type(layer), layer.extra_repr(), tuple((k, tuple(p.shape)) for k, p in layer.params.items()))
                 for layer in block.layers)


def find_groups(blocks: list[Sequential], hidden_losses: list[Loss], min_size: int = 2) -> list[tuple[int, int]]:
    """Runs ``(first, count)`` of consecutive stackable blocks.

    A block can join a stack if it reads a table and feeds a hidden loss (so not the first or
    the last block), its hidden loss is MSE, no layer has hooks, and its signature equals its
    neighbour's.
    """
    def eligible(s: int) -> bool:
        return (0 < s < len(blocks) - 1 and type(hidden_losses[s]) is MSE
                and not any(layer.hooks for layer in blocks[s].layers))

    groups, s = [], 1
    while s < len(blocks):
        if not eligible(s):
            s += 1
            continue
        end = s + 1
        while end < len(blocks) and eligible(end) and signature(blocks[end]) == signature(blocks[s]):
            end += 1
        if end - s >= min_size:
            groups.append((s, end - s))
        s = end
    return groups


def stacked_layer(template: Layer, params: dict[str, Array], grads: dict[str, Array]) -> Layer:
    """A layer of ``template``'s class and settings whose parameters are stacks (views)."""
    layer = copy.copy(template)
    layer.params, layer.grads = params, grads
    layer.x = layer.y = layer.grad_input = layer.grad_output = None
    layer.hooks = []
    layer._buffers = {}
    layer.reuse_buffers = True     # the trainer owns these layers: reuse their large arrays
    return layer


class StackedGroup:
    """Blocks ``first .. first+count-1`` of an RAI trainer, run as one stack.

    ``layers`` holds one stacked layer per position of the block; ``tables``/``grad_tables``
    are views of the G+1 tables involved, shape (G+1, N, D): rows 0..G-1 are inputs, rows
    1..G are the targets of the hidden losses.
    """

    def __init__(self, first: int, count: int, layers: list[Layer], tables: Array, grad_tables: Array) -> None:
        self.first, self.count = first, count
        self.layers = layers
        self.tables, self.grad_tables = tables, grad_tables
        xp = backend.array_module(tables)
        self.diff = xp.empty_like(tables[1:])          # o - Z, then dL/do
        self.as_input: Array | None = None             # dL/dZ for Z as an input
        self.output: Array | None = None
        self.hidden: Array | None = None               # (G,) hidden loss per cut

    def forward(self) -> Array:
        """Run the stacked blocks on their tables; returns the (G,) hidden losses."""
        xp = backend.array_module(self.tables)
        x = self.tables[:-1]
        for layer in self.layers:
            x = layer.forward(x)
        self.output = x
        xp.subtract(x, self.tables[1:], out=self.diff)
        per_example = self.diff[0].size
        self.hidden = xp.einsum("gij,gij->g", self.diff, self.diff) / per_example
        return self.hidden

    @property
    def as_target(self) -> Array:
        """λ ∂L_h/∂Z for each target table, (G, N, D): minus dL/do (made when asked for)."""
        return -self.diff

    def backward(self, lam: float) -> None:
        """Gradients of λ Σ h_s: weights (into the layers' views) and both table parts (added)."""
        xp = backend.array_module(self.tables)
        d_output = xp.multiply(self.diff, 2.0 * lam / self.diff[0].size, out=self.diff)  # λ·2(o - Z)/(N D)
        self.grad_tables[1:] -= d_output               # Z as a target: λ ∂L_h/∂Z = -dL/do
        for layer in reversed(self.layers):
            d_output = layer.backward(d_output)
        self.as_input = d_output
        self.grad_tables[:-1] += self.as_input         # Z as an input: the stacked blocks' dL/dx
