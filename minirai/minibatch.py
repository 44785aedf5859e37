r"""RAI on mini-batches, two ways: persistent tables, or per-batch auxiliaries.

Full-batch RAI (:class:`~minirai.rai.RAI`) keeps one table row per training example and updates
every row at every step. On mini-batches a step sees B of the N examples:

* ``tables="persistent"`` keeps the N-row tables (as in ParMAC, Carreira-Perpiñán & Alizadeh,
  2016). A step gathers the batch's rows, runs the relaxed objective on them, updates the weights
  and *only those rows* (each row with its own optimizer state and step count), and scatters them
  back. With one batch of all N rows this is full-batch RAI, bit for bit. With
  ``weight_steps="per-epoch"`` the weights step once per epoch, on the gradient summed over its
  batches: full-batch RAI's gradient, computed B rows at a time.
* ``tables="per-batch"`` keeps no table between batches (online alternating minimisation,
  Choromanska et al., 2019; predictive coding): a batch's auxiliaries are set by a chained forward
  pass, optimised with the weights for ``inner_steps`` steps, then dropped. Memory: B rows only.

Either way the batch's relaxed loss is full-batch RAI's objective on B rows, and the network
predicts with the ordinary chained forward pass. What each mode computes, costs and saves, and
how it trains, is in ``docs/concepts/rai.md`` (mini-batches) and ``docs/study.md``.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from . import backend
from .inspect import GradientRecorder
from .losses import Loss
from .network import Sequential
from .optim import Optimizer
from .rai import RAI, RelaxedFit, Schedule, as_schedule, chained_metrics, cut_positions
from .train import TrainingLoop, prepare_data
from .validate import check_bool, check_instance, check_number, check_seed

Array = Any
TABLES = ("persistent", "per-batch")
WEIGHT_STEPS = ("per-batch", "per-epoch")


def batch_rows(n: int, batch_size: int, shuffle: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices (sorted within a batch), one epoch after another; each epoch a fresh permutation.

    A batch's rows are sorted, so a batch of all rows is ``0 .. n-1`` in order (and sums over
    the batch run in the order full-batch training runs them)."""
    while True:
        order = rng.permutation(n) if shuffle and batch_size < n else np.arange(n)
        for start in range(0, n, batch_size):
            yield np.sort(order[start:start + batch_size])


class MiniBatchRAI(RelaxedFit):
    """RAI trained on mini-batches of ``batch_size`` examples (see the module's docstring).

    Parameters are those of :class:`~minirai.rai.RAI` (``cuts``, ``hidden_loss``, ``lam``), and:

    batch_size : examples per step (the last batch of an epoch may be smaller).
    tables : ``"persistent"`` (one row per example, kept) or ``"per-batch"`` (set by a forward
        pass of each batch, optimised ``inner_steps`` steps, dropped).
    inner_steps : steps on each batch before the next. Default (None): 1 for persistent tables;
        for per-batch tables the number of blocks, so that the output's error reaches the first
        block (at a forward pass every hidden loss is 0, and the error moves one block per step).
    shuffle, seed : each epoch visits a fresh permutation of the examples, seeded.
    weight_steps : ``"per-batch"`` (the weights step at every batch) or ``"per-epoch"`` (persistent
        tables and ``inner_steps=1`` only): each batch's gradients are scaled by its share B/N, its
        rows step at once, the weights' gradient is added to ``epoch_grads``, and the weights step at
        the epoch's last batch on the sum; λ schedules then count epochs. Record and stop at
        multiples of the batches per epoch.

    The optimizer is made on :meth:`parameters` and its ``update`` rule is applied to gathered
    rows, so it must be elementwise (as SGD's, Adam's and Rprop's are). ``tables`` /
    ``grad_tables`` hold the rows it updates: N rows (persistent) or ``batch_size`` rows
    (per-batch); rows outside the batch keep the gradient of the last batch they were in.
    ``row_steps`` counts each row's updates (a new optimizer starts every row at step 1).
    ``objective`` is the current batch's :class:`~minirai.rai.RAI`: step into its
    ``forward``/``backward`` to see a batch's gradients.
    """

    def __init__(self, model: Sequential, X: Array, y: Array, loss: Loss, *, batch_size: int,
                 tables: str = "persistent", inner_steps: int | None = None, shuffle: bool = True, seed: int = 0,
                 weight_steps: str = "per-batch",
                 cuts: str | Sequence[int] | None = "linear", hidden_loss: Loss | None = None,
                 lam: float | Schedule = 1.0) -> None:
        check_instance(model, Sequential, "MiniBatchRAI: model", "build one with minirai.mlp(...)")
        check_instance(loss, Loss, "MiniBatchRAI: loss", "for example minirai.BCE()")
        batch_size = check_number(batch_size, "MiniBatchRAI: batch_size", low=1, integer=True)
        if tables not in TABLES:
            raise ValueError(f"MiniBatchRAI: tables must be one of {TABLES}, got {tables!r}")
        inner_steps = check_number(inner_steps, "MiniBatchRAI: inner_steps", low=1, integer=True, none=True)
        if weight_steps not in WEIGHT_STEPS:
            raise ValueError(f"MiniBatchRAI: weight_steps must be one of {WEIGHT_STEPS}, got {weight_steps!r}")
        if weight_steps == "per-epoch" and (tables != "persistent" or inner_steps not in (None, 1)):
            raise ValueError(f"MiniBatchRAI: weight_steps='per-epoch' needs tables='persistent' and one step per "
                             f"batch (inner_steps=1), got tables={tables!r}, inner_steps={inner_steps}")
        self.seed = check_seed(seed, "MiniBatchRAI: seed")
        shuffle = check_bool(shuffle, "MiniBatchRAI: shuffle")
        self.model, self.loss = model, loss
        self.X, self.y = prepare_data(model, loss, X, y)
        self._labels = y                                  # as given (each batch's RAI prepares its own)
        n = int(self.X.shape[0])
        self.cuts = cut_positions(model, cuts)
        if inner_steps is None:
            inner_steps = len(self.cuts) + 1 if tables == "per-batch" else 1
        self.batch_size, self.mode, self.inner_steps, self.shuffle = min(batch_size, n), tables, inner_steps, shuffle
        self.weight_steps = weight_steps
        # per-epoch weight steps: the weights' gradient summed over the epoch's batches so far
        self.epoch_grads = [backend.array_module(p).zeros_like(p) for p, _ in model.parameters()] \
            if weight_steps == "per-epoch" else []
        self._options = dict(cuts=self.cuts, hidden_loss=hidden_loss, lam=lam)
        self.lam = as_schedule(lam)
        # the rows the optimizer updates: the full trainer's N-row tables, or batch_size scratch rows
        self.store = RAI(model, self.X if tables == "persistent" else self.X[:self.batch_size].copy(),
                         y if tables == "persistent" else y[:self.batch_size], loss, **self._options)
        self.tables, self.grad_tables = self.store.tables, self.store.grad_tables
        self.row_steps = np.zeros(self.store.X.shape[0], dtype=np.int64)   # updates of each row by ...
        self._counting: Optimizer | None = None                             # ... this optimizer
        self.steps = 0
        self._seen = 0                                    # examples of the batches visited so far
        self._order = batch_rows(n, self.batch_size, shuffle, np.random.default_rng(self.seed))
        self._objectives: dict[int, RAI] = {}             # one RAI per batch size met
        self.rows: np.ndarray | None = None               # the examples of the current batch
        self.objective: RAI | None = None

    # -- what the optimizer updates ------------------------------------------------------------
    def parameters(self) -> list[tuple[Array, Array]]:
        """Weights, then the tables (N rows, or ``batch_size`` rows per-batch), with their gradients."""
        return self.model.parameters() + list(zip(self.tables, self.grad_tables))

    def batch_objective(self, size: int) -> RAI:
        """The relaxed objective on ``size`` rows: an RAI whose X, y and tables are buffers that
        each step fills with the batch's rows."""
        if size not in self._objectives:
            objective = RAI(self.model, self.X[:size].copy(), self._labels[:size], self.loss, **self._options)
            objective.y = self.loss.prepared(objective.y.copy())   # its own buffer, filled with checked rows
            self._objectives[size] = objective
        return self._objectives[size]

    # -- one step --------------------------------------------------------------------------------
    def step(self, optimizer: Optimizer, recorder: GradientRecorder | None = None, *,
             loop: TrainingLoop | None = None) -> float:
        """One update of the weights and of the batch's table rows; returns the batch's relaxed loss.

        ``loop`` (from :meth:`fit`) chooses the path and the CPU's arithmetic; without it the step
        runs the textbook methods in plain IEEE arithmetic."""
        if loop is None:                 # outside fit: the textbook path, with a training loop's BLAS threads
            with TrainingLoop(fast=False, flush=False) as loop:
                return self.step(optimizer, recorder, loop=loop)
        self.check_optimizer(optimizer)
        if self.steps % self.inner_steps == 0:
            self.next_batch(optimizer)
        stored = self.rows if self.mode == "persistent" else np.arange(len(self.rows))
        index = backend.array_module(self.X).asarray(stored)
        self.gather(index)
        with loop.arithmetic():
            value = self.forward_backward(loop)
            self.scatter_gradients(index)
            step_weights = self.weight_steps == "per-batch" or self.add_to_epoch()
            if recorder is not None and recorder.wants(self.steps + 1):
                recorder.capture(self.steps + 1, self.model, self.objective)
            self.update(optimizer, stored, loop, step_weights)
        self.steps += 1
        return value

    def check_optimizer(self, optimizer: Optimizer) -> None:
        """The optimizer must be one made on :meth:`parameters` (weights, then tables)."""
        check_instance(optimizer, Optimizer, "MiniBatchRAI.step: optimizer", "minirai.Adam(trainer.parameters())")
        pairs = self.parameters()
        if len(optimizer.pairs) != len(pairs) or any(p is not q for (p, _), (q, _) in zip(optimizer.pairs, pairs)):
            raise ValueError("MiniBatchRAI: the optimizer must be made on trainer.parameters() (weights, then "
                             "tables), for example minirai.Adam(trainer.parameters(), lr=1e-3)")

    def next_batch(self, optimizer: Optimizer) -> None:
        """Draw the next batch's rows and fill its objective's X and y; per-batch: fresh auxiliaries."""
        xp = backend.array_module(self.X)
        self.rows = next(self._order)
        self._seen += len(self.rows)
        self.objective = self.batch_objective(len(self.rows))
        examples = xp.asarray(self.rows)
        self.objective.X[...] = self.X[examples]
        self.objective.y[...] = self.y[examples]
        if self.mode == "per-batch":
            self.reset_auxiliaries(optimizer, len(self.rows))

    def reset_auxiliaries(self, optimizer: Optimizer, size: int) -> None:
        """Per-batch mode: tables from a chained forward pass of the batch, their optimizer state reset."""
        objective = self.objective
        objective.reinitialize_tables()
        n_weights = len(self.model.parameters())
        for k, (table, value) in enumerate(zip(self.tables, objective.tables)):
            table[:size] = value
            state = optimizer.state[n_weights + k]
            for key, initial in optimizer.init_state(table[:size]).items():
                state[key][:size] = initial
        self.row_steps[:size] = 0

    def gather(self, index: Array) -> None:
        """The batch's table rows into its objective's tables; λ's step for its schedule."""
        for table, rows in zip(self.objective.tables, self.tables):
            table[...] = rows[index]
        self.objective.steps = self._schedule_step(self._seen - len(self.rows))   # before this batch

    def forward_backward(self, loop: TrainingLoop) -> float:
        """The batch objective's forward and backward (on the path ``loop`` chooses); its relaxed loss."""
        runner = loop.relaxed(self.objective)
        value = backend.to_float(runner.forward())      # the step's one wait for the device
        if not np.isfinite(value):
            self.loss.diagnose()
            raise FloatingPointError(f"{self.objective.locate_nonfinite()} (on that step's batch)")
        runner.backward()
        return value

    def scatter_gradients(self, index: Array) -> None:
        """The batch's table gradients into the rows ``index`` of ``grad_tables`` (times B/N per epoch)."""
        for grad, batch_grad in zip(self.grad_tables, self.objective.grad_tables):
            # per-epoch weight steps: the gradient of the mean over all N rows, as full-batch RAI
            grad[index] = batch_grad if self.weight_steps == "per-batch" else self._share() * batch_grad

    def _schedule_step(self, seen: int) -> int:
        """The step a λ schedule reads: the batch steps, or with per-epoch weight steps the epochs
        finished when ``seen`` examples have been visited (the weights' steps)."""
        return self.steps if self.weight_steps == "per-batch" else seen // int(self.X.shape[0])

    def _share(self) -> float:
        """The batch's share B/N of the examples."""
        return len(self.rows) / int(self.X.shape[0])

    def add_to_epoch(self) -> bool:
        """Per-epoch weight steps: add the batch's weight gradient, times its share B/N, to the
        epoch's sum. At the epoch's last batch the weights' gradient becomes the sum (which is
        then reset) and this returns True: the weights step."""
        grads = [grad for _, grad in self.model.parameters()]
        for total, grad in zip(self.epoch_grads, grads):
            total += self._share() * grad
        if self._seen % int(self.X.shape[0]):
            return False
        for total, grad in zip(self.epoch_grads, grads):
            grad[...] = total
            total[...] = 0
        return True

    def update(self, optimizer: Optimizer, rows: np.ndarray, loop: TrainingLoop, step_weights: bool = True) -> None:
        """The optimizer's rule on the weights (their next step; skipped if not ``step_weights``)
        and on the table ``rows``, each row at its own step count; no other row, and no other
        row's state, is touched."""
        if self._counting is not optimizer:           # a new optimizer counts every row's steps from 0
            self.row_steps[:] = 0
            self._counting = optimizer
        if step_weights:
            optimizer.steps += 1
            loop.update(optimizer, range(len(self.model.parameters())))
        self.update_table_rows(optimizer, rows)

    def update_table_rows(self, optimizer: Optimizer, rows: np.ndarray) -> None:
        """Each table's ``rows`` stepped at their own step counts (rows at the same count together)."""
        weight_step = optimizer.steps
        counts = self.row_steps[rows]
        for count in np.unique(counts):
            chosen = rows[counts == count]
            optimizer.steps = int(count) + 1
            index = backend.array_module(self.X).asarray(chosen)
            for i in range(len(self.model.parameters()), len(optimizer.pairs)):
                self.update_rows(optimizer, i, index)
        self.row_steps[rows] += 1
        optimizer.steps = weight_step

    @staticmethod
    def update_rows(optimizer: Optimizer, i: int, index: Array) -> None:
        """``optimizer.update`` on rows ``index`` of pair ``i`` and of its state (gather, update, scatter)."""
        param, grad = optimizer.pairs[i]
        state = optimizer.state[i]
        rows, rows_state = param[index], {key: value[index] for key, value in state.items()}
        optimizer.update(rows, grad[index], rows_state)
        param[index] = rows
        for key, value in rows_state.items():
            state[key][index] = value

    # -- what a run reports ------------------------------------------------------------------------
    def metrics(self, X_val: Array | None = None, y_val: Array | None = None) -> dict[str, Any]:
        """Chained loss and accuracy on all N examples; the relaxed loss, hidden losses and identity
        gaps of all N rows (persistent tables) or of the current batch (per-batch)."""
        if self.mode == "persistent":
            self.store.steps = self._schedule_step(self._seen)
            return self.store.metrics(X_val, y_val)
        objective = self.objective or self.store
        if objective is not self.store:
            size = len(self.rows)
            index = backend.array_module(self.X).asarray(np.arange(size))
            for table, rows in zip(objective.tables, self.tables):
                table[...] = rows[index]
        objective.steps = self.steps
        return {**objective.relaxed_metrics(), **chained_metrics(self.model, self.loss, self.X, self.y, X_val, y_val)}

    @property
    def epochs(self) -> float:
        """Passes over the training set so far (each batch counted once, whatever its inner steps)."""
        return self._seen / int(self.X.shape[0])

    def __repr__(self) -> str:
        return (f"MiniBatchRAI({self.mode} tables, batch_size={self.batch_size}, weight_steps={self.weight_steps!r}, "
                f"{len(self.cuts)} cuts, "
                f"{int(self.X.shape[0])} examples, steps={self.steps})")
