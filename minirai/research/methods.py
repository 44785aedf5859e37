"""The training methods by name: chained-BP baselines and RAI variants, as ``reproduce`` and
``study`` run them.

=================  ===================================================================================
``bp``             the proposal's BP: default init (uniform ±1/√fan_in), Rprop lr 0.1, full batch
``bp-tuned``       Xavier init, Adam lr 1e-3, full batch
``bp-orthogonal``  critical orthogonal init (``mlp(init="orthogonal")``), Adam lr ``ORTHOGONAL_LR``,
                   full batch
``rai``            the proposal's RAI: default init, a cut after every Linear, tables from one forward
                   pass, MSE hidden loss, λ = 1, Rprop lr 0.1, full batch
``rai-tuned``      RAI with the options that close the relaxation gap best (see :data:`RAI_TUNED`)
``rai-minibatch``  RAI with persistent tables on mini-batches (:class:`~minirai.minibatch.MiniBatchRAI`),
                   critical orthogonal init, Adam lr ``MINIBATCH_LR``, cuts ``"linear[3:]"``
``rai-online``     the same with per-batch auxiliaries
=================  ===================================================================================

A network for a dataset is ``n_features -> hidden... -> output`` with ``activation`` between
the Linear layers; two classes end in a sigmoid and BCE (as the proposal), more classes in
softmax cross-entropy. Every run is judged on the network as it predicts (the chained forward
pass); RAI's relaxed loss and identity gap are reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..data import Dataset
from ..inspect import GradientRecorder
from ..losses import BCE, Loss, SoftmaxCrossEntropy
from ..minibatch import MiniBatchRAI
from ..network import Sequential, mlp
from ..optim import Adam, Optimizer, Rprop
from ..rai import RAI
from ..train import History, fit

RPROP_LR = 0.1            # the proposal's optimizer: Rprop, lr 0.1, full batch
TUNED_LR = 1e-3           # bp-tuned: Xavier init + Adam with this learning rate
ORTHOGONAL_LR = 1e-4      # bp-orthogonal: critical orthogonal init + Adam with this learning rate
MINIBATCH_LR = 1e-2       # rai-minibatch and rai-online: Adam with this learning rate
DEFAULT_BATCH_SIZE = 32

#: the options of ``rai-minibatch`` and ``rai-online`` (as rai-tuned's cuts)
MINIBATCH_OPTIONS: dict[str, Any] = {"cuts": "linear[3:]"}

#: the options of ``rai-tuned`` (see docs/study.md for what was tried and measured)
RAI_TUNED: dict[str, Any] = {"cuts": "linear[3:]"}


@dataclass(frozen=True)
class Method:
    """How a method initialises and trains."""
    name: str
    init: str
    optimizer: str
    description: str


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("bp", "uniform", f"Rprop(lr={RPROP_LR})", "the proposal's BP"),
    Method("bp-tuned", "xavier", f"Adam(lr={TUNED_LR})", "BP, Xavier init and Adam"),
    Method("bp-orthogonal", "orthogonal", f"Adam(lr={ORTHOGONAL_LR})", "BP, critical orthogonal init and Adam"),
    Method("rai", "uniform", f"Rprop(lr={RPROP_LR})", "the proposal's RAI"),
    Method("rai-tuned", "uniform", f"Rprop(lr={RPROP_LR})", "RAI closing the relaxation gap"),
    Method("rai-minibatch", "orthogonal", f"Adam(lr={MINIBATCH_LR})", "RAI, persistent tables, mini-batches"),
    Method("rai-online", "orthogonal", f"Adam(lr={MINIBATCH_LR})", "RAI, per-batch auxiliaries"),
)}


@dataclass
class Trained:
    """A trained network, its loss, its history and what a report states about the run."""
    method: str
    model: Sequential
    loss: Loss
    history: History
    relaxed_loss: float | None
    identity_gap: float | None
    optimizer: str
    init: str
    extra: dict[str, Any] = field(default_factory=dict)


def network(dataset: Dataset, hidden: Sequence[int], activation: str, init: str, seed: int,
            dtype: Any = None) -> tuple[Sequential, Loss]:
    """``n_features -> hidden... -> output``; a sigmoid output and BCE for two classes, softmax
    cross-entropy for more."""
    binary = dataset.n_classes <= 2
    sizes = [dataset.n_features, *hidden, 1 if binary else dataset.n_classes]
    model = mlp(sizes, activation, "sigmoid" if binary else None, init=init, seed=seed, dtype=dtype)
    return model, BCE() if binary else SoftmaxCrossEntropy()


def train(method: str, dataset: Dataset, hidden: Sequence[int], activation: str, *, seed: int, iters: int,
          batch_size: int = DEFAULT_BATCH_SIZE, record_every: int | None = None,
          progress: bool | dict[str, Any] = False, callback: Callable[[int, Any], None] | None = None,
          recorder: GradientRecorder | None = None, rai_options: dict[str, Any] | None = None) -> Trained:
    """Train a fresh network (initial weights from ``seed``) on ``dataset`` with ``method``.

    ``iters`` counts optimizer steps (for the mini-batch methods, batch steps; ``batch_size``
    is used by them only). The history records chained loss and accuracy on the training set
    and on the held-out set every ``record_every`` steps (default: 100 records per run).
    ``rai_options`` go to the RAI trainer (``cuts``, ``lam``, ...) over the method's own.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    spec = METHODS[method]
    model, loss = network(dataset, hidden, activation, spec.init, seed)
    record_every = record_every or max(1, iters // 100)
    options = dict(X_val=dataset.X_test, y_val=dataset.y_test, record_every=record_every, progress=progress,
                   recorder=recorder, callback=callback)
    X, y = dataset.X_train, dataset.y_train
    if method.startswith("bp"):
        optimizer: Optimizer = {"bp": lambda p: Rprop(p, lr=RPROP_LR), "bp-tuned": lambda p: Adam(p, lr=TUNED_LR),
                                "bp-orthogonal": lambda p: Adam(p, lr=ORTHOGONAL_LR)}[method](model.parameters())
        history = fit(model, loss, optimizer, X, y, iters=iters, **options)
        return Trained(method, model, loss, history, None, None, spec.optimizer, spec.init)
    if method in ("rai", "rai-tuned"):
        trainer = RAI(model, X, y, loss, **{**(RAI_TUNED if method == "rai-tuned" else {}), **(rai_options or {})})
        optimizer = Rprop(trainer.parameters(), lr=RPROP_LR)
    else:
        trainer = MiniBatchRAI(model, X, y, loss, batch_size=batch_size, seed=seed,
                               tables="persistent" if method == "rai-minibatch" else "per-batch",
                               **{**MINIBATCH_OPTIONS, **(rai_options or {})})
        optimizer = Adam(trainer.parameters(), lr=MINIBATCH_LR)
    history = trainer.fit(optimizer, iters, **options)
    gap = float(np.mean(history["identity_gap"][-1])) if trainer.cuts else None    # no cut: no gap
    return Trained(method, model, loss, history, history.last("relaxed_loss"), gap, spec.optimizer, spec.init)
