r"""Regularisers a study method can add (``regulariser = {kind = "...", ...}`` in ``[methods.NAME]``).

Each works around the engine, without changing it: through the training loop's ``callback`` (it runs
after every optimizer step, outside the step's arithmetic), through the hidden loss an RAI trainer is
given, or through the data a run trains on. The numbers they change are the weights or tables *after*
a step, so both paths (textbook and fast) see the same arrays (the fast path's stacks are views of
them).

==================  ==============================  ==========================================================
kind                settings (default)              what it does
==================  ==============================  ==========================================================
``weight-decay``    ``strength``                    after every step every Linear's W ← (1 − strength) · W
                                                    (decoupled weight decay: the same for any optimizer,
                                                    Rprop included, whose steps ignore a gradient's size)
``table-noise``     ``std``                         after every step every table entry gets
                                                    + std · N(0, 1), seeded by the run's seed (RAI only)
``table-l2``        ``strength``                    each hidden loss becomes MSE + μ mean(Z²), μ = strength,
                                                    a penalty on the tables (RAI only)
``weight-average``  ``start`` (0.5)                 the network that predicts is the average of the weights
                                                    after every step from ``start`` · iters on (Polyak
                                                    averaging, as stochastic weight averaging does)
``early-stopping``  ``every`` (iters // 50),         a stratified ``val_fraction`` of the training set is set
                    ``val_fraction`` (0.2)          aside (seed 0, the same for every run); the network trains
                                                    on the rest, its chained loss on the part set aside is
                                                    measured every ``every`` steps, and the weights of the
                                                    lowest one are those it ends with
==================  ==============================  ==========================================================

A run's training accuracy is measured on the whole training set (with early stopping: the part it
trained on and the part set aside), its held-out accuracy on the held-out set, which no regulariser
sees.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend
from ..data import Dataset
from ..layers import Linear
from ..losses import MSE, Loss
from ..network import Sequential

Array = Any

#: the settings of each kind, with their defaults (None: required)
KINDS: dict[str, dict[str, Any]] = {
    "weight-decay": {"strength": None},
    "table-noise": {"std": None},
    "table-l2": {"strength": None},
    "weight-average": {"start": 0.5},
    "early-stopping": {"every": None, "val_fraction": 0.2},
}
TABLE_KINDS = ("table-noise", "table-l2")        # need tables: RAI methods only


def check(spec: Any, where: str) -> dict[str, Any]:
    """A regulariser's settings as a study file gives them, checked, with defaults filled in
    (``every`` of early stopping stays None: iters // 50 at training)."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: a regulariser is a table such as {{kind = \"weight-decay\", strength = 1e-4}}, "
                         f"got {spec!r}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: regulariser kind must be one of {sorted(KINDS)}, got {kind!r}")
    allowed = KINDS[kind]
    unknown = sorted(set(spec) - {"kind"} - set(allowed))
    if unknown:
        raise ValueError(f"{where}: regulariser {kind!r} has no setting(s) {unknown}; its settings are "
                         f"{sorted(allowed)}")
    out: dict[str, Any] = {"kind": kind}
    for key, default in allowed.items():
        value = spec.get(key, default)
        if value is None and not (kind == "early-stopping" and key == "every"):
            raise ValueError(f"{where}: regulariser {kind!r} needs {key!r}")
        if value is not None:
            integer = key == "every"
            wanted = int if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise ValueError(f"{where}: regulariser {kind!r}: {key} must be "
                                 f"{'an integer' if integer else 'a number'}, got {value!r}")
            high = 1 if key in ("start", "val_fraction") else None
            low_open = key in ("std", "strength", "val_fraction", "every")
            if not (value > 0 if low_open else value >= 0) or (high is not None and not value < high) \
                    or not np.isfinite(value):
                bounds = f"in {'(0' if low_open else '[0'}, 1)" if high else "> 0"
                raise ValueError(f"{where}: regulariser {kind!r}: {key} must be {bounds}, got {value!r}")
            if kind == "weight-decay" and key == "strength" and value >= 1:
                raise ValueError(f"{where}: regulariser 'weight-decay': strength is the share of W removed per step, "
                                 f"in (0, 1), got {value!r}")
        out[key] = value
    return out


class TableL2(MSE):
    r"""MSE plus an L2 penalty on the table (the hidden loss's target):

        h = mean((o - Z)²) + μ mean(Z²);   dh/do = 2 (o - Z) / M,   dh/dZ = -2 (o - Z) / M + 2 μ Z / M
    """

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = mu

    def _forward(self, pred: Array, target: Array) -> Array:
        self.table = target
        return super()._forward(pred, target) + self.mu * (target * target).mean()

    def _backward(self) -> Array:
        grad = super()._backward()
        self.grad_target = self.grad_target + (2.0 * self.mu / self.table.size) * self.table
        return grad


class Multipliers(MSE):
    r"""The augmented Lagrangian of the constraint o = Z, with MSE as its penalty:

        h = mean(ν · (o - Z)) + mean((o - Z)²);   dh/do = (ν + 2 (o - Z)) / M = -dh/dZ

    ``ν`` (one per entry, 0 at first) is raised by :meth:`update`: ν ← ν + 2 (o - Z), the method of
    multipliers for the penalty (ρ/2)‖c‖² with ρ = 2/M, in units of M. (Tried on the deep net in
    ``studies/relaxation-gap.toml``; not a study regulariser.)"""

    nu = None

    def _forward(self, pred: Array, target: Array) -> Array:
        if self.nu is None or self.nu.shape != pred.shape:
            self.nu = backend.array_module(pred).zeros_like(pred)
        return super()._forward(pred, target) + (self.nu * self.diff).mean()

    def _backward(self) -> Array:
        grad = super()._backward() + self.nu / self.diff.size
        self.grad_target = -grad
        return grad

    def update(self) -> None:
        self.nu = self.nu + 2.0 * self.diff


@dataclass
class Active:
    """The regularisers of one run, as the training loop meets them: ``prepare`` the data, then a
    ``hidden_loss`` for the RAI trainer, ``after_step`` as the loop's callback, and ``finish``."""
    specs: tuple[dict[str, Any], ...]
    seed: int
    iters: int

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 7919])       # the table noise's own stream
        self.average: list[Array] | None = None
        self.averaged = 0
        self.best: tuple[float, int, list[Array]] | None = None     # (loss, step, weights)
        self.validation: tuple[Array, Array] | None = None
        self.loss: Loss | None = None

    def of(self, kind: str) -> dict[str, Any] | None:
        return next((spec for spec in self.specs if spec["kind"] == kind), None)

    # -- before training ------------------------------------------------------------------------------
    def prepare(self, dataset: Dataset) -> Dataset:
        """With early stopping: the dataset the network trains on (the rest of a stratified split of
        the training set); the part set aside is kept for the checks. Otherwise ``dataset`` itself."""
        spec = self.of("early-stopping")
        if spec is None:
            return dataset
        from sklearn.model_selection import train_test_split
        y = backend.to_numpy(dataset.y_train)
        rows = np.arange(len(y))
        kept, aside = train_test_split(rows, test_size=spec["val_fraction"], random_state=0, stratify=y)
        kept, aside = np.sort(kept), np.sort(aside)
        xp = backend.array_module(dataset.X_train)

        def take(a: Array, r: np.ndarray) -> Array:
            return a[xp.asarray(r)]
        self.validation = (take(dataset.X_train, aside), take(dataset.y_train, aside))
        return Dataset(take(dataset.X_train, kept), take(dataset.y_train, kept), dataset.X_test, dataset.y_test,
                       dataset.name)

    def hidden_loss(self) -> Loss | None:
        spec = self.of("table-l2")
        return TableL2(spec["strength"]) if spec else None

    # -- after every step -----------------------------------------------------------------------------
    def after_step(self, step: int, model: Sequential, trainer: Any, loss: Loss) -> None:
        for spec in self.specs:
            kind = spec["kind"]
            if kind == "weight-decay":
                for layer in model.layers:
                    if isinstance(layer, Linear):
                        layer.params["W"] *= 1.0 - spec["strength"]          # in place: the fast path's views see it
            elif kind == "table-noise":
                for table in trainer.tables:
                    noise = self.rng.standard_normal(table.shape).astype(table.dtype, copy=False)
                    table += spec["std"] * backend.to_device(noise)
            elif kind == "weight-average" and step > spec["start"] * self.iters:
                params = [p for p, _ in model.parameters()]
                if self.average is None:
                    self.average = [p.copy() for p in params]
                    self.averaged = 1
                else:
                    self.averaged += 1
                    for mean, p in zip(self.average, params):
                        mean += (p - mean) / self.averaged            # the running mean of the weights
            elif kind == "early-stopping":
                every = spec["every"] or max(1, self.iters // 50)
                if step % every == 0 or step == self.iters:
                    self.check_validation(step, model, loss)

    def check_validation(self, step: int, model: Sequential, loss: Loss) -> None:
        from ..train import evaluate
        X, y = self.validation
        value = evaluate(model, loss, X, y)["loss"]
        if self.best is None or value < self.best[0]:
            self.best = (value, step, [p.copy() for p, _ in model.parameters()])

    # -- after training --------------------------------------------------------------------------------
    def finish(self, model: Sequential, loss: Loss) -> dict[str, Any]:
        """Set the weights the network ends with (averaged, or the best checked); what a report states."""
        notes: dict[str, Any] = {}
        if self.of("weight-average") and self.average is not None:
            for (p, _), mean in zip(model.parameters(), self.average):
                p[...] = mean
            notes["averaged_steps"] = self.averaged
        if self.of("early-stopping"):
            if self.best is None:
                self.check_validation(self.iters, model, loss)
            for (p, _), kept in zip(model.parameters(), self.best[2]):
                p[...] = kept
            notes["validation_loss"], notes["stopped_at"] = float(self.best[0]), int(self.best[1])
        return notes


def copy_specs(specs: Any) -> tuple[dict[str, Any], ...]:
    return tuple(copy.deepcopy(dict(s)) for s in specs)
