r"""The fast twin of ``RAI.forward``/``backward``: identical blocks run as one stack.

Under RAI every block reads its own table, so blocks do not wait for each other. When
G consecutive blocks have the same layers and shapes (the deep net's 99 hidden blocks
``[Sigmoid, Linear(100, 100)]``), their weights, tables and outputs can be stacked along
a new first axis and run as *one* forward and backward:

    x  = Z[a-1 .. a+G-2]            (G, N, D)     each block's input table
    o  = block(x)                   (G, N, D)     the fast chain's code, on stacks
    h_s = mean((o_s - Z_s)²)        (G,)          MSE against the next table
    dL/do = λ · (2 (o - Z) / (N D));  target part of dL/dZ = -dL/do

Nothing is copied: after packing (:mod:`minirai.packing`) the weights of the G blocks lie
side by side in one flat array, so the stacked weight ``W (G, D, D)`` is a view, and its
gradient view is each layer's ``grads["W"]``. Blocks outside a stack run on the fast chain
(:mod:`minirai.fast.chain`). The arithmetic is the textbook's, operation for operation (the
MSE's λ · (2/M) · (o - Z), the mean of squares over each block, the table gradient as
"input part + target part"), so the results are the same bit for bit (``tests/test_fast_path.py``).

Only blocks made entirely of the layer classes the fast chain was written for (exactly those
classes, not subclasses) are stacked, and only with blocks whose layers have equal settings
(``config()``); any other block runs its layers' own methods on its own ``(N, D)`` arrays. After
each forward and backward every stacked block's own layers get views of their slice of the
stack (``layer.x``, ``layer.y``, ``layer.grad_output``, ``layer.grad_input``), so the model's
layers read as the textbook path leaves them.

A stack that ends with a Linear layer (a table after every Linear, as in the proposal) runs in
pieces of a few blocks (:meth:`StackedGroup.run_pieces`), each piece's forward and backward at
once, while its arrays are in the processor's cache; that Linear's bias, the difference with the
next table and its square are one compiled loop, and backward λ·(2/M)(o - Z), its negation and
the bias gradient another (``kernels.linear_mse_forward``/``backward``). The pieces fill the whole
stack's arrays, so the layers read as above; with ``RAI(..., keep_activations=False)`` they reuse
one piece's buffers instead and keep none of those arrays: for a training set too large to hold
every block's activations.
"""
from __future__ import annotations

import copy
import warnings
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from .. import backend
from ..layers import Layer, Linear
from ..losses import MSE, Loss
from ..network import Sequential, forget_arrays
from . import kernels
from .chain import FAST_LAYERS, REUSABLE, Chain, buffer, linear_backward, linear_forward
from .workers import run_all, split

if TYPE_CHECKING:
    from ..rai import RAI

Array = Any


#: a stack that ends with a Linear layer runs in pieces of blocks whose (piece, N, D) arrays stay under this
#: size, each piece's forward and backward at once, while its arrays are still in the processor's cache
PIECE_BYTES = 512 << 10


def stackable(block: Sequential) -> bool:
    """Every layer is of a class the fast chain was written for (exactly: a subclass may compute anything)."""
    return all(type(layer) in FAST_LAYERS for layer in block.layers)


def signature(block: Sequential) -> tuple:
    """What must match for blocks to be stacked: layer classes, settings and parameter shapes."""
    return tuple((type(layer), repr(sorted(layer.config().items())),
                  tuple((k, tuple(p.shape), p.dtype.str) for k, p in layer.params.items()))
                 for layer in block.layers)


def find_groups(blocks: list[Sequential], hidden_losses: list[Loss], min_size: int = 2) -> list[tuple[int, int]]:
    """Runs ``(first, count)`` of consecutive stackable blocks.

    A block can join a stack if it reads a table and feeds a hidden loss (so not the first or
    the last block), its hidden loss is MSE, its layers are all of the fast chain's classes
    (:func:`stackable`), none has hooks, and its signature equals its neighbour's.
    """
    def eligible(s: int) -> bool:
        return (0 < s < len(blocks) - 1 and type(hidden_losses[s]) is MSE and stackable(blocks[s])
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
    forget_arrays([layer])
    layer.hooks = []
    return layer


class Piece:
    """Blocks ``a .. b-1`` of a stack: stacked layers of their own (views of rows a..b-1 of the stack's
    parameters and gradients), a fast chain over those before the last Linear, and their buffers."""

    def __init__(self, a: int, b: int, layers: list[Layer]) -> None:
        self.a, self.b, self.layers = a, b, layers
        self.front, self.last = Chain(layers[:-1]), layers[-1]
        self.last_buffers: dict[str, Array] = {}
        self.buffers: dict[str, Array] = {}


class StackedGroup:
    """Blocks ``first .. first+count-1`` of an RAI trainer, run as one stack.

    ``layers`` holds one stacked layer per position of the block; ``tables``/``grad_tables``
    are views of the G+1 tables involved, shape (G+1, N, D): rows 0..G-1 are inputs, rows
    1..G are the targets of the hidden losses.
    """

    def __init__(self, first: int, count: int, layers: list[Layer], tables: Array, grad_tables: Array,
                 block_layers: list[list[Layer]], keep_activations: bool = True) -> None:
        self.first, self.count = first, count
        self.layers = layers
        self.chain = Chain(layers)
        # a stack that ends with a Linear layer computes that layer's bias, the hidden loss and the bias
        # gradient in one pass each way (kernels.linear_mse_forward/backward), where the kernels can run
        self.last = layers[-1] if type(layers[-1]) is Linear else None
        self.tables, self.grad_tables = tables, grad_tables
        self.inputs, self.targets = tables[:-1], tables[1:]
        self.block_layers = block_layers            # [position j][block k]: the model's own layers
        self._views: dict[tuple[int, str], tuple[Array, list[Array]]] = {}
        self.buffers: dict[str, Array] = {}
        self.output: Array | None = None
        self.hidden: Array | None = None               # (G,) hidden loss per cut
        self.as_input: Array | None = None             # (G, N, D) dL/dZ for Z as an input
        self.as_target: Array | None = None            # (G, N, D) λ ∂L_h/∂Z for Z as a target
        # a stack that ends with a Linear layer runs in pieces (see run_pieces). "lean": the trainer keeps no
        # activations (keep_activations=False), so the pieces share one piece's buffers
        self.lean = not keep_activations and self.fused()
        self.pieces: list[Piece] = []
        self.whole: dict[tuple[str, int], Array] = {}  # keeping: the whole stack's arrays, which the pieces fill
        self.first_as_input: Array | None = None       # lean: the parts of the two outer tables' gradients,
        self.last_as_target: Array | None = None       # the only ones it keeps
        if self.fused():
            most = max(1, PIECE_BYTES // max(tables[0].nbytes, 1))
            if self.lean:         # pieces of one size, so that they can share their buffers
                size = max(d for d in range(1, count + 1) if count % d == 0 and d <= most)
            elif all(type(layer) in REUSABLE for layer in layers):
                size = min(most, count)     # (the last piece may be shorter: each fills its own slices)
            else:                 # only layers that write into buffers can fill slices of whole arrays
                size = count
            self.pieces = [Piece(a, min(a + size, count), [stacked_layer(layer, {k: p[a:a + size] for k, p in
                                                                                 layer.params.items()},
                                                                         {k: g[a:a + size] for k, g in
                                                                          layer.grads.items()}) for layer in layers])
                           for a in range(0, count, size)]
            if self.lean:
                first = self.pieces[0]
                for piece in self.pieces[1:]:
                    piece.front.buffers = first.front.buffers
                    piece.last_buffers, piece.buffers = first.last_buffers, first.buffers

    def forward(self) -> Array:
        """Run the stacked blocks on their tables; returns the (G,) hidden losses.

        Two buffers serve four arrays: ``diff`` holds o - Z and, after the backward, dL/do; ``as_target``
        holds the squares for the mean and, after the backward, the target part of dL/dZ."""
        xp = backend.array_module(self.tables)
        self.output = self.chain.forward(self.inputs)
        self.share("x", "y")
        diff = buffer(self.buffers, "diff", self.output.shape, self.output)
        square = buffer(self.buffers, "as_target", diff.shape, diff)
        if kernels.ready(self.output, self.targets, diff, square):
            kernels.kernels()["difference_and_square"](self.output.reshape(-1), self.targets.reshape(-1),
                                                       diff.reshape(-1), square.reshape(-1))
        else:
            xp.subtract(self.output, self.targets, out=diff)           # o - Z, as MSE computes it
            xp.multiply(diff, diff, out=square)
        self.hidden = square.mean(axis=(1, 2))                         # = each block's (diff²).mean()
        return self.hidden

    def backward(self, lam: float) -> None:
        """Gradients of λ Σ h_s: weights (into the layers' views), and both parts of dL/dZ."""
        xp = backend.array_module(self.tables)
        d_output = self.buffers["diff"]                                # o - Z becomes dL/do, in place
        as_target = self.buffers["as_target"]                          # (the forward's squares are done with)
        scale = 2.0 / d_output[0].size                                 # MSE.backward: (2/M)(o - Z)
        if kernels.ready(d_output, as_target):
            real = d_output.dtype.type                                 # the scalars as NumPy converts them
            kernels.kernels()["mse_gradients"](d_output.reshape(-1), real(scale), real(lam), as_target.reshape(-1))
        else:
            xp.multiply(scale, d_output, out=d_output)
            xp.multiply(lam, d_output, out=d_output)                   # λ · that
            xp.negative(d_output, out=as_target)
        self.as_target = as_target
        self.as_input = self.chain.backward(d_output)
        self.share("grad_output", "grad_input")

    def fused(self) -> bool:
        """Whether this stack runs in pieces, its last Linear layer and hidden loss as one kernel each way
        (``linear_mse_forward``/``backward``): it ends with a Linear layer of more than one output (for one,
        NumPy sums the bias gradient pairwise, not row by row), and its tables are NumPy arrays of
        float32/float64 that the kernels can take."""
        return (self.last is not None and self.last.params["W"].shape[-1] > 1
                and kernels.ready(self.tables, self.grad_tables))

    def run_pieces(self, lam: float) -> Array:
        """``forward`` and ``backward`` at once, a piece of blocks at a time; returns the (G,) hidden losses.

        A block's gradients need only its own tables and weights, so each piece's backward follows its
        forward while the piece's arrays are still in the processor's cache (measured on the deep net:
        14.2 ms a step with pieces of 11 blocks against 15.2 with the whole stack of 99). So the
        stack's gradients are computed here, in the forward; ``backward`` only hands them on. Per piece: its
        layers before the last Linear (the fast chain), the Linear's product, then one kernel for its
        bias, o - Z and the square (``linear_mse_forward``); the mean of the squares in NumPy; one
        kernel for λ·(2/M)(o - Z), its negation and the bias gradient (``linear_mse_backward``); the
        Linear's two products, the chain backward. A table between two blocks gets
        ``as_input + as_target`` (the textbook's order) as soon as both are known.

        Keeping the activations (the default), the pieces write into slices of whole-stack arrays,
        and every stacked block's layers get views of them, as ``forward``/``backward`` leave them.
        keep_activations=False ("lean"): the pieces reuse one piece's buffers, the "as target" part of a
        piece's last block waits in ``carry`` for the next piece, and of the stack's arrays only those
        buffers outlive the step."""
        xp = backend.array_module(self.tables)
        if not self.lean and not self.whole and len(self.pieces) > 1:
            self.make_whole()
        hidden = buffer(self.buffers, "hidden", (self.count,), self.tables)
        carry = buffer(self.buffers, "carry", self.tables.shape[1:], self.tables) if self.lean else None
        for piece in self.pieces:
            a, b = piece.a, piece.b
            x = piece.front.forward(self.inputs[a:b]) if piece.front.layers else self.inputs[a:b]
            o = linear_forward(piece.last, x, piece.last_buffers, add_bias=False)    # x W (b comes in the kernel)
            diff = buffer(piece.buffers, "diff", o.shape, o)
            square = buffer(piece.buffers, "as_target", o.shape, o)
            kernels.kernels()["linear_mse_forward"](o, piece.last.params["b"][:, 0, :], self.targets[a:b], diff, square)
            hidden[a:b] = square.mean(axis=(1, 2))                     # = each block's (diff²).mean()
            as_target, real = square, o.dtype.type                     # (its buffer: the squares are done with)
            kernels.kernels()["linear_mse_backward"](diff, real(2.0 / o[0].size), real(lam), as_target,
                                                     piece.last.grads["b"][:, 0, :])     # diff becomes dL/do
            dx = linear_backward(piece.last, diff, piece.last_buffers, bias_done=True)
            as_input = piece.front.backward(dx) if piece.front.layers else dx
            if a > 0:       # the table between the last piece's last block and this piece's first
                xp.add(as_input[0], carry if self.lean else self.whole["as_target", 0][a - 1], out=self.grad_tables[a])
            elif self.lean:
                self.first_as_input = buffer(self.buffers, "first_as_input", as_input.shape[1:], as_input)
                xp.copyto(self.first_as_input, as_input[0])
            xp.add(as_input[1:], as_target[:-1], out=self.grad_tables[a + 1:b])
            if self.lean:
                xp.copyto(carry, as_target[-1])
        self.hidden = hidden
        if self.lean:
            self.last_as_target = carry
            forget_arrays([*self.layers, *(x for piece in self.pieces for x in piece.layers),
                           *(x for row in self.block_layers for x in row)])
            return hidden
        self.share_whole()
        return hidden

    def make_whole(self) -> None:
        """The whole stack's arrays (each layer's output ``y`` and input gradient ``dx``, o - Z and the
        target part), and each piece's buffers as slices of them, so that the pieces fill them."""
        xp, dtype = backend.array_module(self.tables), self.tables.dtype
        forget_arrays(x for row in self.block_layers for x in row)   # (what they held: first let go, then views)
        shape = self.inputs.shape
        for j, layer in enumerate(self.layers):
            out = shape[:-1] + layer.params["W"].shape[-1:] if type(layer) is Linear else shape
            self.whole["y", j], self.whole["dx", j] = xp.empty(out, dtype), xp.empty(shape, dtype)
            shape = out
        self.whole["diff", 0], self.whole["as_target", 0] = xp.empty(shape, dtype), xp.empty(shape, dtype)
        last = len(self.layers) - 1
        for piece in self.pieces:
            part = slice(piece.a, piece.b)
            for j in range(last):
                piece.front.buffers[j].update(y=self.whole["y", j][part], dx=self.whole["dx", j][part])
            piece.last_buffers.update(y=self.whole["y", last][part], dx=self.whole["dx", last][part])
            piece.buffers.update(diff=self.whole["diff", 0][part], as_target=self.whole["as_target", 0][part])

    def share_whole(self) -> None:
        """After ``run_pieces``, keeping the activations: the stacked layers' arrays are the whole stack's
        (or, for one piece, that piece's layers'), and every block's layers get views of them."""
        if self.whole:
            last = len(self.layers) - 1
            for j, layer in enumerate(self.layers):
                layer.x = self.inputs if j == 0 else self.whole["y", j - 1]
                layer.y, layer.grad_input = self.whole["y", j], self.whole["dx", j]
                layer.grad_output = self.whole["diff", 0] if j == last else self.whole["dx", j + 1]
            self.as_target = self.whole["as_target", 0]
        else:
            piece, = self.pieces
            for layer, own in zip(self.layers, piece.layers):
                layer.x, layer.y, layer.grad_output, layer.grad_input = own.x, own.y, own.grad_output, own.grad_input
            self.as_target = piece.buffers["as_target"]
        self.output, self.as_input = self.layers[-1].y, self.layers[0].grad_input
        self.share("x", "y", "grad_output", "grad_input")

    def share(self, *names: str) -> None:
        """Give each block's own layers their slice of the stacked layers' arrays ``names`` (views,
        made once per array: the chain reuses its buffers), as the textbook path leaves them."""
        for j, stacked in enumerate(self.layers):
            for name in names:
                source = getattr(stacked, name)
                kept = self._views.get((j, name))
                if kept is None or kept[0] is not source:
                    kept = self._views[(j, name)] = (source, [source[k] for k in range(self.count)])
                for layer, view in zip(self.block_layers[j], kept[1]):
                    setattr(layer, name, view)


class FastRAI:
    """``forward``/``backward`` of an RAI trainer: stacks where blocks allow it, fast chains elsewhere.

    ``groups`` lists the stacked groups (:func:`plan` gives their ``(first, count)``). A stack that
    runs in pieces (:meth:`StackedGroup.run_pieces`) computes its gradients in ``forward``; so when a
    step's loss is not finite and ``RAI.step`` stops before ``backward``, that stack's weight and table
    gradients hold the failed step's values, where the textbook path's still hold the step before's
    (nothing is updated on either path)."""

    def __init__(self, trainer: "RAI", workers: int = 1,
                 arithmetic: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self.trainer = trainer
        self.workers, self.arithmetic = workers, arithmetic
        # with several workers, each run of stackable blocks is cut into that many stacks, run side by side
        pieces = [piece for first, count in find_groups(trainer.blocks, trainer.hidden_losses)
                  for piece in split(first, count, workers)]
        self.groups = [g for g in (self._stack(first, count) for first, count in pieces) if g is not None]
        in_group = {s: g for g in self.groups for s in range(g.first, g.first + g.count)}
        self.units: list[int | StackedGroup] = []      # the order of work: a block, or a stack of them
        for s in range(len(trainer.blocks)):
            if s not in in_group:
                self.units.append(s)
            elif s == in_group[s].first:
                self.units.append(in_group[s])
        self.chains = {s: Chain(trainer.blocks[s].layers) for s in self.units if isinstance(s, int)}
        self.stacked_layers = [layer for g in self.groups for block in trainer.blocks[g.first:g.first + g.count]
                               for layer in block.layers]
        self.forget_activations()
        kept = sum(g.count for g in self.groups if not g.lean)
        if not trainer.keep_activations and (kept or not self.groups) and len(trainer.blocks) > 2:
            warnings.warn(f"RAI(keep_activations=False): {f'{kept} stacked blocks' if kept else 'every block'} "
                          "keep their activations here: only stacks of identical blocks that end with a Linear "
                          "layer of more than one output, with the MSE hidden loss, on NumPy arrays with Numba, "
                          "can drop them (cuts='linear')", stacklevel=4)

    def forget_activations(self, every_stack: bool = False) -> None:
        """For the stacks that keep no activations (``keep_activations=False``): drop what their blocks'
        layers and the trainer hold of them (a chained forward's, or a textbook step's, arrays), so that
        none of it outlives the step. ``every_stack``: every stack's, views of this twin's arrays, when a
        twin for another thread count takes over, so that two twins' arrays are never held at once (the
        next step's forward fills the layers again)."""
        for g in self.groups:
            if g.lean or every_stack:
                self.trainer.drop_activations(range(g.first, g.first + g.count))

    def hooked(self) -> bool:
        """True when a hook was added to a stacked block's layer since: then stack no more."""
        return any(layer.hooks for layer in self.stacked_layers)

    def _stack(self, first: int, count: int) -> StackedGroup | None:
        """Blocks ``first .. first+count-1`` as one stack, or None if their arrays are not side by side."""
        trainer = self.trainer
        model_packed, tables = trainer.model.packed, trainer.packed_tables
        if model_packed is None or tables is None:
            return None
        members = trainer.blocks[first:first + count]
        layers = []
        for j, template in enumerate(members[0].layers):
            params, grads = {}, {}
            for key, value in template.params.items():
                arrays = [block.layers[j].params[key] for block in members]
                # a bias (D,) becomes (G, 1, D) so it broadcasts over the N rows of each block
                shape = (count,) + ((1,) + value.shape if value.ndim == 1 else value.shape)
                stacked_params = model_packed.stack(arrays, model_packed.params)
                if stacked_params is None:
                    return None
                params[key] = stacked_params.reshape(shape)
                grads[key] = model_packed.stack(arrays, model_packed.grads).reshape(shape)
            layers.append(stacked_layer(template, params, grads))
        involved = trainer.tables[first - 1:first + count]
        stacked_tables = tables.stack(involved, tables.params)
        if stacked_tables is None:
            return None
        block_layers = [[block.layers[j] for block in members] for j in range(len(members[0].layers))]
        return StackedGroup(first, count, layers, stacked_tables, tables.stack(involved, tables.grads), block_layers,
                            keep_activations=trainer.keep_activations)

    def forward(self) -> Array:
        """``RAI.forward``: every block on its own input; returns the relaxed loss."""
        t = self.trainer
        lam = t.lam(t.steps)
        run_all([(partial(self.forward_unit, unit), self.cost(unit)) for unit in self.units],
                self.workers, self.arithmetic)
        t.output_loss = t.loss.forward(t.outputs[-1], t.y)
        t.relaxed_loss = t.output_loss + lam * sum(t.hidden_values)
        return t.relaxed_loss

    def forward_unit(self, unit: int | StackedGroup) -> None:
        """One block (or one stack of them) forward, its output(s) and hidden loss(es) into the trainer."""
        t = self.trainer
        if isinstance(unit, StackedGroup) and unit.pieces:  # its backward too (run_pieces)
            hidden = unit.run_pieces(t.lam(t.steps))
            for k in range(unit.count):
                t.hidden_values[unit.first + k] = hidden[k]
                if not unit.lean:
                    t.outputs[unit.first + k] = unit.output[k]
        elif isinstance(unit, StackedGroup):
            hidden = unit.forward()
            for k in range(unit.count):
                t.outputs[unit.first + k] = unit.output[k]
                t.hidden_values[unit.first + k] = hidden[k]
        else:
            t.outputs[unit] = self.chains[unit].forward(t.block_input(unit))
            if unit < len(t.hidden_losses):
                t.hidden_values[unit] = t.hidden_losses[unit].forward(t.outputs[unit], t.tables[unit])

    def backward(self) -> None:
        """``RAI.backward``: every weight gradient and both parts of every table gradient."""
        t = self.trainer
        lam = t.lam(t.steps)
        run_all([(partial(self.backward_unit, unit, lam), self.cost(unit)) for unit in reversed(self.units)],
                self.workers, self.arithmetic)
        self.add_table_gradients()

    def backward_unit(self, unit: int | StackedGroup, lam: float) -> None:
        """One block (or one stack of them) backward: its weight gradients and its table gradient parts."""
        t = self.trainer
        if isinstance(unit, StackedGroup) and unit.lean:    # (done in the forward)
            t.grad_tables_as_input[unit.first - 1] = unit.first_as_input
            t.grad_tables_as_target[unit.first + unit.count - 1] = unit.last_as_target
        elif isinstance(unit, StackedGroup):
            if not unit.pieces:                             # (else done in the forward)
                unit.backward(lam)
            for k in range(unit.count):
                t.grad_tables_as_input[unit.first + k - 1] = unit.as_input[k]
                t.grad_tables_as_target[unit.first + k] = unit.as_target[k]
        else:
            t.backward_block(unit, lam, self.chains[unit])     # the textbook code, on the fast chain

    @staticmethod
    def cost(unit: int | StackedGroup) -> float:
        """The work of a unit, in blocks (to share the units out among the workers)."""
        return float(unit.count) if isinstance(unit, StackedGroup) else 1.0

    def add_table_gradients(self) -> None:
        """grad_tables = the "as input" part + the "as target" part, table by table (a stack's at once)."""
        t = self.trainer
        xp = backend.array_module(t.X)
        done = set()
        for g in self.groups:       # tables between two blocks of one stack: one stacked addition
            if not g.pieces:        # (a stack run in pieces added them as it went)
                xp.add(g.as_input[1:], g.as_target[:-1], out=g.grad_tables[1:-1])
            done.update(range(g.first, g.first + g.count - 1))
        for k, grad in enumerate(t.grad_tables):
            if k not in done:
                xp.add(t.grad_tables_as_input[k], t.grad_tables_as_target[k], out=grad)


def plan(trainer: "RAI") -> list[tuple[int, int]]:
    """``(first block, count)`` of each group of blocks the fast path would stack, for this trainer now."""
    return [(g.first, g.count) for g in FastRAI(trainer).groups]
