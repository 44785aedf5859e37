"""See every gradient: an opt-in recorder of per-layer norms, for BP and RAI runs.

``GradientRecorder(every=k)`` passed to :func:`minirai.train.fit` or
:meth:`minirai.rai.RAI.fit` keeps, every k steps (after the backward, before the
update), one row per step of:

==================== ===================================================== ============
name                 what                                                  columns
==================== ===================================================== ============
``weight_grad``      ‖dL/dW‖ of each Linear layer                          Linear layers
``bias_grad``        ‖dL/db‖ of each Linear layer                          Linear layers
``output_grad``      ‖dL/dy‖, the gradient reaching each layer's output    all layers
``activation``       ‖y‖, each layer's output                               all layers
``table_grad``       ‖dL/dZ‖ of each RAI table                              cuts
``table_grad_input`` the part from Z as the next block's input              cuts
``table_grad_target`` the part from Z as the previous block's target         cuts
==================== ===================================================== ============

``recorder["weight_grad"]`` is a NumPy array (records x layers); ``recorder.steps`` the
step numbers. Norms are Frobenius norms, summed in float32 and redone in float64 where a
float32 sum would underflow or overflow (a deep BP chain's gradients reach 1e-30 and less).
When no recorder is passed nothing is computed.

Under RAI, at step 1 every weight gradient is exactly zero: the tables start equal to the
forward pass, so every hidden loss and its gradient is zero and the output block (a Sigmoid
after the last cut) has no weights. The tables move first; the weights follow from step 2.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import backend
from .layers import Linear
from .network import Sequential

if TYPE_CHECKING:
    from .rai import RAI

Array = Any

QUANTITIES = ("weight_grad", "bias_grad", "output_grad", "activation",
              "table_grad", "table_grad_input", "table_grad_target")


def squared_norms(stack: Array) -> Array:
    """Squared Frobenius norm of each ``stack[g]`` (a (G,) float64 array on stack's device)."""
    xp = backend.array_module(stack)
    flat = stack.reshape(stack.shape[0], -1)
    fast = xp.einsum("gi,gi->g", flat, flat).astype(np.float64)
    suspicious = ~((fast > 1e-30) & (fast < 1e30))      # float32 under/overflow, or all zero
    if backend.to_bool(suspicious.any()):
        suspicious &= (flat != 0).any(axis=1)            # rows of zeros really are zero
        if backend.to_bool(suspicious.any()):
            rows = xp.nonzero(suspicious)[0]
            fast[rows] = xp.einsum("gi,gi->g", flat[rows], flat[rows], dtype=np.float64)
    return fast


class GradientRecorder:
    """Per-layer gradient and activation norms every ``every`` steps (see module docstring)."""

    def __init__(self, every: int = 1) -> None:
        if isinstance(every, (bool, np.bool_)) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"GradientRecorder: every must be a positive integer, got {every!r}")
        self.every = int(every)
        self.steps: list[int] = []
        self.rows: dict[str, list[np.ndarray]] = {name: [] for name in QUANTITIES}
        self.linear_layers: list[int] = []     # model indices of the Linear layers (columns)
        self.cuts: list[int] = []

    def wants(self, step: int) -> bool:
        return step % self.every == 0 or step == 1

    # -- capturing ------------------------------------------------------------------------------
    def capture(self, step: int, model: Sequential, trainer: "RAI | None" = None) -> None:
        """Record the norms of the last backward (call after backward, before the update)."""
        self.linear_layers = [i for i, layer in enumerate(model.layers) if isinstance(layer, Linear)]
        xp = backend.array_module(*(p for p, _ in model.parameters()[:1]))
        pieces: dict[str, list[tuple[list[int], Array]]] = {name: [] for name in QUANTITIES}
        for indices, layers in _layer_groups(model, trainer):
            first = layers[0]
            if isinstance(first, Linear):
                columns = [self.linear_layers.index(i) for i in indices]
                pieces["weight_grad"].append((columns, _stacked(first.grads["W"], len(indices))))
                pieces["bias_grad"].append((columns, _stacked(first.grads["b"], len(indices))))
            if first.grad_output is not None:
                pieces["output_grad"].append((indices, _stacked(first.grad_output, len(indices))))
            if first.y is not None:
                pieces["activation"].append((indices, _stacked(first.y, len(indices))))
        if trainer is not None and trainer.tables:
            self.cuts = list(trainer.cuts)
            for name, sources in _table_groups(trainer).items():
                pieces[name] += sources
        widths = {"weight_grad": len(self.linear_layers), "bias_grad": len(self.linear_layers),
                  "output_grad": len(model.layers), "activation": len(model.layers),
                  "table_grad": len(self.cuts), "table_grad_input": len(self.cuts),
                  "table_grad_target": len(self.cuts)}
        self.steps.append(int(step))
        for name in QUANTITIES:
            row = xp.full(widths[name], np.nan, dtype=np.float64)
            for columns, stack in pieces[name]:
                row[xp.asarray(columns)] = xp.sqrt(squared_norms(stack))
            self.rows[name].append(backend.to_numpy(row))

    # -- reading ----------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.rows:
            raise KeyError(f"no recorded quantity {name!r}; choose from {QUANTITIES}")
        return np.stack(self.rows[name]) if self.rows[name] else np.zeros((0, 0))

    def __len__(self) -> int:
        return len(self.steps)

    def profile(self, name: str = "weight_grad", record: int = -1) -> np.ndarray:
        """One recorded row: e.g. the per-layer weight-gradient norms at the last record."""
        if not self.steps:
            raise ValueError("this GradientRecorder has no records yet: pass it to fit or RAI.fit (recorder=...)")
        if not -len(self.steps) <= record < len(self.steps):
            raise ValueError(f"record {record} is out of range: this recorder holds {len(self.steps)} records")
        return self[name][record]

    def summary(self) -> dict[str, Any]:
        """The per-layer weight-gradient profile at the first and last recorded steps (for JSON)."""
        if not self.steps:
            return {}
        grads = self["weight_grad"]
        return {"grad_profile_steps": [self.steps[0], self.steps[-1]],
                "grad_profile_first": grads[0].tolist(), "grad_profile_last": grads[-1].tolist()}

    def __repr__(self) -> str:
        return f"GradientRecorder(every={self.every}, {len(self)} records)"


def _stacked(a: Array, count: int) -> Array:
    """A layer's array as a stack of ``count`` (a plain layer's array gets a leading axis of 1)."""
    return a if count > 1 else a[None]


def _layer_groups(model: Sequential, trainer: "RAI | None") -> list[tuple[list[int], list[Any]]]:
    """``(model layer indices, [layer])`` pairs: one per plain layer, one per stacked position.

    A stacked layer (RAI's stacked path) holds the arrays of several model layers at once; it
    is listed with all their indices so their norms come from one batched computation.
    """
    stacked: dict[int, tuple[list[int], Any]] = {}
    if trainer is not None:
        starts = [0] + list(trainer.cuts)
        for group in trainer.stacks:
            for j, layer in enumerate(group.layers):
                indices = [starts[s] + j for s in range(group.first, group.first + group.count)]
                stacked[indices[0]] = (indices, layer)
    covered = {i for indices, _ in stacked.values() for i in indices}
    groups = []
    for i, layer in enumerate(model.layers):
        if i in stacked:
            groups.append((stacked[i][0], [stacked[i][1]]))
        elif i not in covered:
            groups.append(([i], [layer]))
    return groups


def _table_groups(trainer: "RAI") -> dict[str, list[tuple[list[int], Array]]]:
    """Table gradients as ``(table indices, stack)`` pieces: a stacked group's tables as one stack."""
    pieces: dict[str, list[tuple[list[int], Array]]] = {
        "table_grad": [], "table_grad_input": [], "table_grad_target": []}
    done: dict[str, set[int]] = {name: set() for name in pieces}

    def add(name: str, indices: list[int], stack: Array) -> None:
        pieces[name].append((indices, stack))
        done[name].update(indices)

    for group in trainer.stacks:          # block s reads table s-1 and targets table s
        first, count = group.first, group.count
        add("table_grad", list(range(first - 1, first + count)), group.grad_tables)
        add("table_grad_input", list(range(first - 1, first + count - 1)), group.as_input)
        add("table_grad_target", list(range(first, first + count)), group.as_target)
    for name, arrays in (("table_grad", trainer.grad_tables),
                         ("table_grad_input", trainer.grad_tables_as_input),
                         ("table_grad_target", trainer.grad_tables_as_target)):
        for k, a in enumerate(arrays):
            if k not in done[name] and a is not None:
                add(name, [k], a[None])
    return pieces
