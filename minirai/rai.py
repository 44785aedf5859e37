r"""Relaxed Activation Identity (RAI): cut a chain into blocks joined by trainable tables.

A cut at position ``p`` (between ``layers[p-1]`` and ``layers[p]``) replaces the activation
there by a table ``Z`` with one row per training example, initialised from one ordinary
forward pass. The chain falls apart into blocks ``s = 0..K``; block 0 reads ``X``, block
``s > 0`` reads its own table ``Z_s`` and computes ``o_s``. The relaxed objective is

    L = L_y(o_K, y) + Σ_{s<K} λ · L_h(o_s, Z_{s+1})

and its gradients never cross a cut:

    dL/dθ (block s)  = backprop of dL/do_s through block s only
    dL/dZ_s          = block s's input gradient              (Z_s as the next block's input)
                     + λ · ∂L_h(o_{s-1}, Z_s)/∂Z_s            (Z_s as the previous block's target)

With no cuts this is exactly chained backprop. Predictions, on training or unseen
inputs, are always the ordinary chained forward pass (``model.forward``): the tables
exist only for training. Weights and tables are updated together by any optimizer.

Three quantities describe a run honestly and are recorded side by side:
``relaxed_loss`` (what the optimizer sees), ``chained_loss``/``chained_acc`` (the real
network), and the ``identity_gap`` at each cut s (from 1), mean (o_{s-1} - Z_s)².
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from . import backend
from .packing import Slot, pack
from .inspect import GradientRecorder
from .layers import Activation, Linear
from .losses import MSE, Loss
from .network import Sequential, forget_arrays
from .optim import Optimizer
from .train import (History, TrainingDiverged, TrainingLoop, _progress, check_finite, check_finite_weights,
                    check_threads, evaluate, keeping, prepare_data)
from .validate import check_instance, check_number, check_progress

Array = Any
Schedule = Callable[[int], float]
LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)


# -- where to cut ---------------------------------------------------------------------------
def cut_positions(model: Sequential, cuts: str | Sequence[int] | None) -> list[int]:
    """Resolve ``cuts`` to sorted positions in ``1 .. len(model) - 1``.

    * ``"linear"`` (default): after every Linear layer, the auxiliaries on pre-activations,
      as the proposal's code does (a Linear that is the very last layer gets no cut);
    * ``"activation"``: after every activation layer except the last (the paper's eq. 2-4);
    * a list of positions ``p`` (cut between ``layers[p-1]`` and ``layers[p]``);
    * ``"linear[a:b]"`` / ``"activation[a:b]"``: a Python slice of those positions, e.g.
      ``"linear[3:]"`` leaves the first three Linear layers chained (one deeper first block),
      ``"linear[:-1]"`` leaves the output loss on the real output of the last Linear,
      ``"linear[::5]"`` cuts after Linear layers 0, 5, 10, ... only;
    * ``None`` or ``[]``: no cut, which is chained backprop.
    """
    n = len(model.layers)
    if cuts is None:
        return []
    if not isinstance(cuts, (str, list, tuple, range, np.ndarray)):
        raise TypeError(f"cuts must be 'linear', 'activation', a list of positions or None, got {cuts!r} "
                        f"({type(cuts).__name__}); one cut after layer 1 is cuts=[2]")
    if isinstance(cuts, str):
        kinds = {"linear": Linear, "activation": Activation}
        match = re.fullmatch(r"(linear|activation)(?:\[(-?\d+)?:(-?\d+)?(?::([1-9]\d*)?)?\])?", cuts.replace(" ", ""))
        if match is None:
            raise ValueError(f"cuts must be 'linear', 'activation', one of them with a slice such as "
                             f"'linear[3:]', or a list of positions, got {cuts!r}")
        kind, start, stop, step = match.groups()
        every = [i + 1 for i, layer in enumerate(model.layers) if isinstance(layer, kinds[kind]) and i + 1 < n]
        return every[slice(*(int(v) if v else None for v in (start, stop, step)))]
    for p in cuts:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)):
            raise ValueError(f"cuts: cut positions must be integers, got {p!r} in {list(cuts)!r}")
    positions = [int(p) for p in cuts]
    for p in positions:
        if not 1 <= p <= n - 1:
            raise ValueError(f"cuts: cut position {p} is outside 1..{n - 1} (a cut sits between two layers "
                             f"of this {n}-layer model)")
    if len(set(positions)) != len(positions):
        raise ValueError(f"cuts: cut positions repeat: {positions}")
    return sorted(positions)


# -- penalty schedules ------------------------------------------------------------------------
@dataclass(frozen=True)
class Constant:
    """λ(step) = value."""
    value: float

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class Geometric:
    """λ(step) = start · factor^(step // every), capped at ``maximum`` (see :func:`geometric`).

    Its settings are checked when it is made. It never overflows: where factor^k would pass
    ``maximum`` by far (compared in logs) it is ``maximum``, at any step; without a maximum, a λ
    that would overflow a float is a ValueError that says so."""
    start: float
    factor: float
    every: int = 1
    maximum: float | None = None

    def __post_init__(self) -> None:       # (frozen: the checked values are set through object.__setattr__)
        object.__setattr__(self, "start", check_number(self.start, "geometric: start", low=0, low_open=True))
        object.__setattr__(self, "factor", check_number(self.factor, "geometric: factor", low=0, low_open=True))
        object.__setattr__(self, "every", check_number(self.every, "geometric: every", low=1, integer=True))
        if self.maximum is not None:
            object.__setattr__(self, "maximum", check_number(self.maximum, "geometric: maximum", low=self.start))

    def __call__(self, step: int) -> float:
        k = step // self.every
        log_value = math.log(self.start) + k * math.log(self.factor)       # log λ, which never overflows
        if self.maximum is not None and log_value > math.log(self.maximum) + 1:
            return self.maximum                      # far past the cap: no need to compute factor^k
        try:
            value = self.start * self.factor ** k if log_value < LOG_FLOAT_MAX else math.inf
        except OverflowError:
            value = math.inf
        if self.maximum is not None:
            return min(value, self.maximum)
        if not math.isfinite(value):
            raise ValueError(f"the λ schedule {self} overflows a float at step {step}; give it a maximum")
        return value


def constant(value: float) -> Schedule:
    """λ(step) = value."""
    return Constant(check_number(value, "constant: value", low=0))


def geometric(start: float, factor: float, every: int = 1, maximum: float | None = None) -> Schedule:
    """λ(step) = start · factor^(step // every), capped at ``maximum`` (>= start, if given).

    A growing penalty drives the identity gap towards zero, as the method of auxiliary
    coordinates (Carreira-Perpiñán & Wang, 2014) does with its μ. Bad settings (start <= 0,
    factor <= 0, every < 1, maximum < start, NaN) are a ValueError or TypeError naming the argument.
    """
    return Geometric(start, factor, every, maximum)


def as_schedule(lam: float | Schedule) -> Schedule:
    """A number becomes :class:`Constant`; a schedule is wrapped so that a bad λ is a clear error
    (``.schedule`` keeps the one given)."""
    if callable(lam):
        def checked(step: int) -> float:
            value = float(lam(step))
            if not value >= 0 or not np.isfinite(value):
                raise ValueError(f"the λ schedule gave {value} at step {step}; λ must be finite and >= 0")
            return value
        checked.schedule = lam          # type: ignore[attr-defined]
        return checked
    if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, (int, float, np.integer, np.floating)) \
            or not lam >= 0 or not np.isfinite(lam):
        raise ValueError(f"lam must be a non-negative number or a schedule step -> λ, got {lam!r}")
    return constant(float(lam))


# -- the trainer -------------------------------------------------------------------------------
def refuse_recorder(trainer: Any, where: str) -> None:
    """A GradientRecorder reads every layer's activations: refused where the trainer keeps none."""
    if not getattr(trainer, "keep_activations", True):
        raise ValueError(f"{where}: a GradientRecorder reads every layer's activations and their gradients, "
                         "which this trainer does not keep (keep_activations=False); make the trainer with "
                         "keep_activations=True to record")


class RelaxedFit:
    """The training loop of the relaxed objective, shared by :class:`RAI` and
    :class:`~minirai.minibatch.MiniBatchRAI`: both provide ``step``, ``metrics``, ``steps``,
    ``cuts``, ``model`` and ``loss``."""

    def fit(self, optimizer: Optimizer, iters: int, *, X_val: Array | None = None, y_val: Array | None = None,
            record_every: int = 100, progress: bool | dict[str, Any] = True,
            callback: Callable[[int, "RAI"], None] | None = None,
            recorder: GradientRecorder | None = None,
            threads: int | Callable[[], int] | None = None) -> "RAIHistory":
        """Train for ``iters`` steps, recording every ``record_every`` steps (and at 0 and the end).

        A NaN or inf stops training with :class:`TrainingDiverged`, whose message names the
        quantity, the cut and the step; its ``history`` keeps what was recorded before.
        A :class:`~minirai.inspect.GradientRecorder` keeps per-layer gradient norms.
        ``threads``: the threads each step may use (:class:`~minirai.train.TrainingLoop`; default
        ``MINIRAI_THREADS``), or a function that gives the count before each step; the numbers do not
        depend on it.
        """
        where = f"{type(self).__name__}.fit"
        check_instance(optimizer, Optimizer, f"{where}: optimizer",
                       "for example minirai.Rprop(trainer.parameters(), lr=0.1)")
        iters = check_number(iters, f"{where}: iters", low=0, integer=True)
        record_every = check_number(record_every, f"{where}: record_every", low=1, integer=True)
        threads = check_threads(threads, f"{where}: threads")
        if callback is not None and not callable(callback):
            raise TypeError(f"{where}: callback must be a function (step, trainer), got {type(callback).__name__}")
        check_progress(progress, f"{where}: progress")
        if recorder is not None:
            check_instance(recorder, GradientRecorder, f"{where}: recorder",
                           "minirai.inspect.GradientRecorder(every=k)")
            refuse_recorder(self, where)
        if X_val is not None:
            X_val, y_val = prepare_data(self.model, self.loss, X_val, y_val, name="_val")
        history = RAIHistory(len(self.cuts))
        bar = _progress(iters, progress)

        def record() -> None:
            values = self.metrics(X_val, y_val)
            if not getattr(self, "keep_activations", True):
                self.drop_activations()          # what the record's chained evaluation left on the layers
            history.record_rai(self.steps, values)
            # the relaxed loss can stay finite while the network as it predicts is not
            check_finite(values["chained_loss"], "the chained training loss", self.steps, history, recorded=True)
            check_finite(values.get("val_loss"), "the held-out loss", self.steps, history, recorded=True)
            if bar is not None:
                bar.set_postfix(relaxed=f"{values['relaxed_loss']:.3g}", chained=f"{values['chained_loss']:.3g}",
                                acc=f"{values['chained_acc']:.3f}" if values["chained_acc"] is not None else "-",
                                refresh=False)

        try:
            with TrainingLoop(threads, where=f"{where}: threads") as loop, keeping(history):
                self._fit_loop(optimizer, iters, record_every, record, bar, history, callback, recorder, loop)
                check_finite_weights(self.model, self.steps, history)
        finally:
            if bar is not None:
                bar.close()
        return history

    def _fit_loop(self, optimizer: Optimizer, iters: int, record_every: int, record: Callable[[], None],
                  bar: Any, history: "RAIHistory", callback: Callable[[int, "RAI"], None] | None,
                  recorder: GradientRecorder | None, loop: TrainingLoop) -> None:
        record()
        for i in range(iters):
            loop.adapt()
            try:
                self.step(optimizer, recorder, loop=loop)
            except FloatingPointError as error:
                raise TrainingDiverged(f"RAI training diverged at step {self.steps + 1}: {error}; the history "
                                       f"up to step {self.steps} is kept in the exception", history) from None
            if callback is not None:
                callback(self.steps, self)
            if self.steps % record_every == 0 or i == iters - 1:
                record()
            if bar is not None:
                bar.update(1)



class RAI(RelaxedFit):
    """The relaxed objective of ``model`` on a training set, and its training loop.

    Args:
        model: the chain (its layers are shared, not copied: training updates ``model``).
        X: the training inputs; one table row per example.
        y: the training labels.
        loss: the output loss L_y (e.g. ``BCE()``).
        cuts: see :func:`cut_positions`.
        hidden_loss: the loss L_h between a block's output and the next table (default MSE);
            one copy is made per cut. It must provide ``grad_target``.
        lam: λ, a number or a schedule ``step -> λ`` (see :func:`geometric`).
        reinit_period: if set, every ``reinit_period`` steps the tables are reset to a chained
            forward pass of the current weights.
        keep_activations: False for a large training set: on the fast path (``fit``), the stacked
            blocks (minirai.fast.stacking) keep none of their activations or activation gradients
            after a step (each layer's ``x``, ``y``, ``grad_output``, ``grad_input``, and this
            trainer's ``outputs`` and the two parts of the gradients of the tables between them are
            None): they are computed a few blocks at a time, forward and backward together, and
            the memory of a step is about the parameters, tables, their gradients and the
            optimizer's state; ``fit``'s records let go of them block by block too. The numbers are
            the same. Only stacks of identical blocks that end with a Linear layer (``cuts="linear"``,
            the MSE hidden loss, NumPy with Numba) can drop them: elsewhere a warning says which
            blocks keep theirs. A GradientRecorder, which reads those arrays, is refused; a
            checkpoint keeps the option; the textbook path (``minirai.reference()``) keeps them all.

    :meth:`forward` and :meth:`backward` are the textbook path, block by block. :meth:`fit`
    runs their fast twin (:mod:`minirai.fast.stacking`: runs of identical blocks as batched
    computations) with the same numbers, or these methods inside ``minirai.reference()``.
    The tables are created side by side in one flat array, so the fast path updates them in one
    sweep and a run of them is one stacked view. The model's own arrays are left where they
    are: an optimizer made before this trainer still updates the same weights.
    """

    def __init__(self, model: Sequential, X: Array, y: Array, loss: Loss, *,
                 cuts: str | Sequence[int] | None = "linear", hidden_loss: Loss | None = None,
                 lam: float | Schedule = 1.0, reinit_period: int | None = None,
                 keep_activations: bool = True) -> None:
        if not isinstance(model, Sequential):
            raise TypeError(f"RAI needs a Sequential model, got {type(model).__name__}")
        if not isinstance(loss, Loss):
            raise TypeError(f"RAI: loss must be a minirai Loss, got {type(loss).__name__}")
        if reinit_period is not None and (isinstance(reinit_period, (bool, np.bool_))
                                          or not isinstance(reinit_period, (int, np.integer)) or reinit_period < 1):
            raise ValueError(f"reinit_period must be a positive integer or None, got {reinit_period!r}")
        self.model, self.loss = model, loss
        self.X, self.y = prepare_data(model, loss, X, y)
        self.cuts = cut_positions(model, cuts)
        bounds = [0] + self.cuts + [len(model.layers)]
        self.blocks = [Sequential(model.layers[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        template = hidden_loss if hidden_loss is not None else MSE()
        if not isinstance(template, Loss):
            raise TypeError(f"RAI: hidden_loss must be a minirai Loss, got {type(template).__name__}")
        probe, point = copy.deepcopy(template), backend.array_module(self.X).full((1, 1), 0.5, self.X.dtype)
        try:                                 # a hidden loss compares activations, and gives a gradient for both
            probe.forward(point, point)
            probe.backward()
        except (ValueError, TypeError, IndexError) as error:
            raise TypeError(f"RAI: hidden_loss {type(template).__name__} cannot compare a block's output with a "
                            f"table of activations ({error}); use MSE") from None
        if probe.grad_target is None:
            raise TypeError(f"RAI: hidden_loss {type(template).__name__} gives no gradient for its target "
                            "(grad_target); use MSE or a loss that sets grad_target")
        self.hidden_losses = [copy.deepcopy(template) for _ in self.cuts]
        self.lam = as_schedule(lam)
        self.reinit_period = None if reinit_period is None else int(reinit_period)
        if not isinstance(keep_activations, (bool, np.bool_)):
            raise TypeError(f"RAI: keep_activations must be True or False, got {keep_activations!r}")
        self.keep_activations = bool(keep_activations)
        self.steps = 0
        xp = backend.array_module(self.X)
        # tables[s] is Z_{s+1}, the input of block s+1 and the target of block s's hidden loss
        self.tables: list[Array] = self.chained_activations(self.X)
        self.grad_tables = [xp.zeros_like(z) for z in self.tables]
        # the two parts of grad_tables[s], from the last backward (for inspection)
        self.grad_tables_as_input: list[Array | None] = [None] * len(self.tables)
        self.grad_tables_as_target: list[Array | None] = [None] * len(self.tables)
        self.outputs: list[Array | None] = [None] * len(self.blocks)   # o_s of the last forward
        self.output_loss: Array | None = None
        self.relaxed_loss: Array | None = None
        self.hidden_values: list[Array | None] = [None] * len(self.cuts)
        # tables and their gradients as views of one flat array each (see minirai.packing)
        self.packed_tables = pack([Slot(self.tables, self.grad_tables, k) for k in range(len(self.tables))]) \
            if self.tables else None
        for hidden, table in zip(self.hidden_losses, self.tables):
            hidden.prepared(table)      # a table is this trainer's own target: a NaN in it shows in the loss

    # -- tables ----------------------------------------------------------------------------------
    def chained_activations(self, X: Array) -> list[Array]:
        """The activations at every cut from one ordinary forward pass of ``X``.

        Computed with one BLAS thread, as an RAI training step computes its products
        (:class:`~minirai.train.TrainingLoop`): OpenBLAS may split a product differently over more
        threads, which changes its last bits, and the tables must equal what a training step's forward
        pass computes, bit for bit.
        """
        found, x = [], X
        with backend.blas_threads(1):
            for i, layer in enumerate(self.model.layers):
                x = layer.forward(x)
                if not self.keep_activations:       # (then the layers keep none of this pass's arrays)
                    layer.x = layer.y = None
                if i + 1 in self.cuts:
                    found.append(x.copy())
        return found

    def drop_activations(self, blocks: Sequence[int] | None = None) -> None:
        """Let go of the activations and activation gradients that these blocks' layers (default: all),
        this trainer and the blocks' hidden losses hold from the last forward or backward (for
        ``keep_activations=False``: after a record's forward passes)."""
        for s in range(len(self.blocks)) if blocks is None else blocks:
            forget_arrays(self.blocks[s].layers)
            self.outputs[s] = None
            if s < len(self.hidden_losses):
                hidden = self.hidden_losses[s]
                hidden.pred = None
                if isinstance(hidden, MSE):
                    hidden.diff = None
                self.grad_tables_as_target[s] = None
            if s > 0:
                self.grad_tables_as_input[s - 1] = None

    def reinitialize_tables(self) -> None:
        """Set every table to the chained forward pass of the training inputs (in place)."""
        for table, value in zip(self.tables, self.chained_activations(self.X)):
            table[...] = value

    def parameters(self) -> list[tuple[Array, Array]]:
        """Weights and tables with their gradients: what the optimizer updates together."""
        return self.model.parameters() + list(zip(self.tables, self.grad_tables))

    def named_parameters(self) -> list[tuple[str, Array, Array]]:
        tables = [(f"table{s + 1}@{p}", z, g) for s, (p, z, g) in
                  enumerate(zip(self.cuts, self.tables, self.grad_tables))]
        return self.model.named_parameters() + tables

    # -- the relaxed objective -------------------------------------------------------------------
    def block_input(self, s: int) -> Array:
        """What block s reads: X for the first block, its table Z_s for the others."""
        return self.X if s == 0 else self.tables[s - 1]

    def forward(self, keep: bool = True) -> Array:
        """Every block on its own input; returns the relaxed loss (a 0-d array).

        o_s = block_s(input_s)   (N, D_s)        input_0 = X, input_s = Z_s = tables[s - 1]
        h_s = L_h(o_s, Z_{s+1})  for s < K       L = L_y(o_K, y) + λ Σ_s h_s

        ``keep=False`` (a record's forward, with ``keep_activations=False``): each block's arrays are
        let go as soon as its hidden loss is known, since no backward follows.
        """
        lam = self.lam(self.steps)
        for s, block in enumerate(self.blocks):
            self.outputs[s] = block.forward(self.block_input(s))
            if s < len(self.hidden_losses):
                self.hidden_values[s] = self.hidden_losses[s].forward(self.outputs[s], self.tables[s])
                if not keep:
                    self.drop_activations([s])
        self.output_loss = self.loss.forward(self.outputs[-1], self.y)
        self.relaxed_loss = self.output_loss + lam * sum(self.hidden_values)
        return self.relaxed_loss

    def backward(self) -> None:
        """Fill every weight gradient and every table gradient (after :meth:`forward`).

        Shapes: o_s and dL/do_s (N, D_s); table Z_{s+1} = tables[s] and its gradient (N, D_s).

        Block s gets dL/do_s = dL_y/do_K for the last block, λ ∂h_s/∂o_s for the others, and
        backpropagates it through its own layers only. Z_{s+1} = tables[s] gets two parts,
        both kept for inspection:
            grad_tables_as_input[s]  = dL/d(input of block s+1)    (its backward's dx)
            grad_tables_as_target[s] = λ ∂h_s/∂Z_{s+1}              (the hidden loss)
        """
        lam = self.lam(self.steps)
        for s in reversed(range(len(self.blocks))):
            self.backward_block(s, lam, self.blocks[s])
        for s, grad in enumerate(self.grad_tables):
            grad[...] = self.grad_tables_as_input[s] + self.grad_tables_as_target[s]

    def backward_block(self, s: int, lam: float, block: Any) -> None:
        """Block s's part of :meth:`backward`: dL/do_s (N, D_s) through ``block`` and the parts of dL/dZ.

        ``block`` runs the block's layers backward: ``self.blocks[s]`` (a Sequential), or its fast
        twin on the fast path. The input gradient (N, D_{s-1}) is the "as input" part of table s-1;
        λ ∂h_s/∂Z_{s+1} (N, D_s) the "as target" part of table s.
        """
        if s == len(self.blocks) - 1:
            d_output = self.loss.backward()                          # dL_y/do_K
        else:
            hidden = self.hidden_losses[s]
            d_output = lam * hidden.backward()                       # λ ∂h_s/∂o_s
            self.grad_tables_as_target[s] = lam * hidden.grad_target  # λ ∂h_s/∂Z_{s+1}
        d_input = block.backward(d_output)
        if s > 0:
            self.grad_tables_as_input[s - 1] = d_input               # dL/d(input of block s)

    # -- training ---------------------------------------------------------------------------------
    def step(self, optimizer: Optimizer, recorder: GradientRecorder | None = None, *,
             loop: TrainingLoop | None = None) -> float:
        """One forward, backward and update of weights and tables; returns the relaxed loss.

        ``loop`` (from :meth:`fit`) chooses the path and the CPU's arithmetic; without it the step
        runs these methods (the textbook path) in plain IEEE arithmetic.
        """
        if recorder is not None:
            refuse_recorder(self, "RAI.step")
        if loop is None:                 # outside fit: the textbook path, with a training loop's BLAS threads
            with TrainingLoop(fast=False, flush=False) as loop:
                return self.step(optimizer, recorder, loop=loop)
        if self.reinit_period and self.steps > 0 and self.steps % self.reinit_period == 0:
            self.reinitialize_tables()
        objective = loop.relaxed(self)          # what runs forward and backward: these methods, or their fast twin
        with loop.arithmetic():
            value = backend.to_float(objective.forward())   # the step's one wait for the device
            if not np.isfinite(value):
                self.loss.diagnose()                        # a misuse (BCE on raw scores) says so
                raise FloatingPointError(self.locate_nonfinite())
            objective.backward()
            if recorder is not None and recorder.wants(self.steps + 1):
                recorder.capture(self.steps + 1, self.model, self)
            loop.step(optimizer)
        self.steps += 1
        return value

    def locate_nonfinite(self) -> str:
        """Name the first non-finite quantity of the last forward (output loss, a cut, a table)."""
        for s, value in enumerate(self.hidden_values):
            if not np.isfinite(backend.to_float(value)):
                return (f"the hidden loss at cut {s + 1} (after layer {self.cuts[s] - 1}) "
                        f"became {backend.to_float(value)}")
        for s, table in enumerate(self.tables):
            if not backend.to_bool(backend.array_module(table).isfinite(table).all()):
                return f"table {s + 1} (after layer {self.cuts[s] - 1}) holds NaN or inf"
        return f"the output loss became {backend.to_float(self.output_loss)}"

    def identity_gaps(self) -> np.ndarray:
        """Per cut, mean (o_s - Z_{s+1})²: how far block s's output is from the next table.

        With the default MSE hidden loss this is the hidden loss itself (before λ).
        """
        if not self.cuts:
            return np.zeros(0)
        xp = backend.array_module(self.X)
        gaps = [value if type(hidden) is MSE else ((o - z) ** 2).mean()
                for value, hidden, o, z in zip(self.hidden_values, self.hidden_losses, self.outputs, self.tables)]
        return backend.to_numpy(xp.stack([xp.asarray(g) for g in gaps])).astype(np.float64)

    def metrics(self, X_val: Array | None = None, y_val: Array | None = None) -> dict[str, Any]:
        """Relaxed and chained losses, per-cut hidden losses and identity gaps, now."""
        return {**self.relaxed_metrics(), **chained_metrics(self.model, self.loss, self.X, self.y, X_val, y_val)}

    def relaxed_metrics(self) -> dict[str, Any]:
        """The relaxed loss, its output part, the per-cut hidden losses and identity gaps, and λ, now."""
        self.forward(keep=self.keep_activations)
        xp = backend.array_module(self.X)
        hidden = (backend.to_numpy(xp.stack([xp.asarray(v) for v in self.hidden_values])).astype(np.float64)
                  if self.cuts else np.zeros(0))
        values: dict[str, Any] = {
            "relaxed_loss": backend.to_float(self.relaxed_loss),
            "output_loss": backend.to_float(self.output_loss),
            "hidden_loss": hidden,
            "identity_gap": self.identity_gaps(),
            "lam": self.lam(self.steps),
        }
        if not self.keep_activations:
            self.drop_activations()              # (before the chained evaluation makes its own)
        return values


def chained_metrics(model: Sequential, loss: Loss, X: Array, y: Array, X_val: Array | None = None,
                    y_val: Array | None = None) -> dict[str, Any]:
    """The network as it predicts: chained loss and accuracy on (X, y), and on a held-out set if given."""
    chained = evaluate(model, loss, X, y)
    values = {"chained_loss": chained["loss"], "chained_acc": chained["accuracy"]}
    if X_val is not None:
        held_out = evaluate(model, loss, X_val, y_val)
        values.update(val_loss=held_out["loss"], val_acc=held_out["accuracy"])
    return values

class RAIHistory(History):
    """A :class:`History` that also keeps per-cut arrays (steps x cuts)."""

    def __init__(self, n_cuts: int) -> None:
        super().__init__()
        self.n_cuts = n_cuts
        self.per_cut: dict[str, list[np.ndarray]] = {"hidden_loss": [], "identity_gap": []}

    def record_rai(self, step: int, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if k not in self.per_cut}
        self.record(step, **scalars)
        for name in self.per_cut:
            self.per_cut[name].append(np.asarray(values[name], dtype=np.float64))

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.per_cut:
            return np.stack(self.per_cut[name]) if self.per_cut[name] else np.zeros((0, self.n_cuts))
        return super().__getitem__(name)

    def keys(self) -> list[str]:
        return super().keys() + list(self.per_cut)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = super().to_dict()
        out.update({k: self[k].tolist() for k in self.per_cut})
        return out
