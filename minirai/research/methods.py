"""The training methods by name: chained-BP baselines and RAI variants, as ``reproduce`` and
``study`` run them, and the scoring of a trained run.

=================  ===================================================================================
``bp``             the proposal's BP: default init (uniform ±1/√fan_in), Rprop lr 0.1, full batch
``bp-tuned``       Xavier init, Adam lr 1e-3, full batch
``bp-orthogonal``  critical orthogonal init (``mlp(init="orthogonal")``), Adam lr ``ORTHOGONAL_LR``,
                   full batch
``bp-minibatch``   the BP twin of ``rai-minibatch``: the same trainer, initialisation, optimizer, batches
                   and steps, with no cut (chained backprop on mini-batches)
``bp-online``      the BP twin of ``rai-online``: no cut, each batch stepped as many times as
                   ``rai-online`` steps it (the number of its blocks)
``rai``            the proposal's RAI: default init, a cut after every Linear, tables from one forward
                   pass, MSE hidden loss, λ = 1, Rprop lr 0.1, full batch
``rai-tuned``      RAI with the options that close the relaxation gap best (see :data:`RAI_TUNED`)
``rai-minibatch``  RAI with persistent tables on mini-batches (:class:`~minirai.minibatch.MiniBatchRAI`),
                   critical orthogonal init, Adam lr ``MINIBATCH_LR``, cuts ``"linear[3:]"``
``rai-online``     the same with per-batch auxiliaries
=================  ===================================================================================

A study file defines more (``[methods.NAME]``, see :func:`custom`): a ``base`` method and the
settings that differ. Every method is a :class:`Method`; :meth:`Method.settings` is what a run's
fingerprint is made of, and holds only the settings its trainer uses.

A network for a dataset is ``n_features -> hidden... -> output`` with ``activation`` between
the Linear layers; two classes end in a sigmoid and BCE (as the proposal), more classes in
softmax cross-entropy. Every run is judged on the network as it predicts (the chained forward
pass, :func:`score`); RAI's relaxed loss and identity gap are reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from .. import backend
from ..data import Dataset
from ..inspect import GradientRecorder
from ..losses import BCE, Loss, SoftmaxCrossEntropy
from ..minibatch import MiniBatchRAI
from ..network import Sequential, mlp
from ..optim import Optimizer, optimizer as optimizer_class
from ..rai import RAI, cut_positions, geometric
from ..train import History, evaluate, fit
from . import regularisers

RPROP_LR = 0.1            # the proposal's optimizer: Rprop, lr 0.1, full batch
TUNED_LR = 1e-3           # bp-tuned: Xavier init + Adam with this learning rate
ORTHOGONAL_LR = 1e-4      # bp-orthogonal: critical orthogonal init + Adam with this learning rate
MINIBATCH_LR = 1e-2       # rai-minibatch, rai-online and their BP twins: Adam with this learning rate
DEFAULT_BATCH_SIZE = 32

#: the options of ``rai-minibatch`` and ``rai-online`` (as rai-tuned's cuts)
MINIBATCH_OPTIONS: dict[str, Any] = {"cuts": "linear[3:]"}

#: the options of ``rai-tuned`` (see docs/study.md for what was tried and measured)
RAI_TUNED: dict[str, Any] = {"cuts": "linear[3:]"}

#: the trainers a method can have: full-batch BP (``fit``), full-batch RAI, and on mini-batches
#: :class:`~minirai.minibatch.MiniBatchRAI` with persistent tables or per-batch auxiliaries, with
#: cuts (RAI) or without (its BP twin)
BASES = ("bp", "bp-minibatch", "bp-online", "rai", "rai-minibatch", "rai-online")
INITS = ("uniform", "xavier", "he", "orthogonal")
OPTIMIZERS = ("rprop", "adam", "sgd")
WEIGHT_STEPS = ("per-batch", "per-epoch")


@dataclass(frozen=True)
class Method:
    """How a method initialises and trains.

    ``base`` is its trainer (one of :data:`BASES`). ``cuts`` and ``lam`` are used by the RAI bases
    only; ``batch_size`` (None: the study's), ``weight_steps`` by the mini-batch ones;
    ``inner_steps`` (None: the number of blocks of ``cuts``, or for ``bp-online`` of ``twin_cuts``)
    by the online ones. ``lam`` is a number or a schedule ``{schedule = "geometric", start, factor,
    every, maximum}``. ``regularisers`` are settings as :func:`minirai.research.regularisers.check`
    gives them. ``iters`` (None: the study's) overrides the study's number of steps. ``reinit_period``
    (full-batch RAI): the tables are set to a forward pass every that many steps."""
    name: str
    base: str
    init: str
    optimizer: str
    lr: float
    description: str = ""
    cuts: Any = None
    lam: Any = 1.0
    batch_size: int | None = None
    weight_steps: str = "per-batch"
    inner_steps: int | None = None
    twin_cuts: Any = None
    regularisers: tuple = ()
    iters: int | None = None
    reinit_period: int | None = None

    @property
    def relaxed(self) -> bool:
        """Trains the relaxed objective (an RAI base)."""
        return self.base.startswith("rai")

    @property
    def minibatch(self) -> bool:
        return self.base.endswith(("minibatch", "online"))

    @property
    def online(self) -> bool:
        return self.base.endswith("online")

    @property
    def optimizer_label(self) -> str:
        return f"{optimizer_class(self.optimizer).__name__}(lr={self.lr:g})"

    def settings(self, batch_size: int | None = None) -> dict[str, Any]:
        """The settings this method's trainer uses, and only those (a run's fingerprint is made of
        them): a full-batch method has no batch size, a BP method no cuts or λ."""
        out: dict[str, Any] = {"base": self.base, "init": self.init, "optimizer": self.optimizer, "lr": self.lr}
        if self.relaxed:
            out.update(cuts=self.cuts, lam=self.lam)
        if self.minibatch:
            out["batch_size"] = self.batch_size or batch_size or DEFAULT_BATCH_SIZE
        if self.base == "rai-minibatch":
            out["weight_steps"] = self.weight_steps
        if self.online:
            out["inner_steps"] = self.inner_steps
            if self.base == "bp-online" and self.inner_steps is None:
                out["twin_cuts"] = self.twin_cuts
        if self.reinit_period is not None:
            out["reinit_period"] = self.reinit_period
        if self.regularisers:
            out["regularisers"] = [dict(r) for r in self.regularisers]
        return out


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("bp", "bp", "uniform", "rprop", RPROP_LR, "the proposal's BP"),
    Method("bp-tuned", "bp", "xavier", "adam", TUNED_LR, "BP, Xavier init and Adam"),
    Method("bp-orthogonal", "bp", "orthogonal", "adam", ORTHOGONAL_LR, "BP, critical orthogonal init and Adam"),
    Method("bp-minibatch", "bp-minibatch", "orthogonal", "adam", MINIBATCH_LR,
           "chained BP on mini-batches, the twin of rai-minibatch"),
    Method("bp-online", "bp-online", "orthogonal", "adam", MINIBATCH_LR,
           "chained BP on mini-batches, each stepped as rai-online steps it", twin_cuts=MINIBATCH_OPTIONS["cuts"]),
    Method("rai", "rai", "uniform", "rprop", RPROP_LR, "the proposal's RAI", cuts="linear"),
    Method("rai-tuned", "rai", "uniform", "rprop", RPROP_LR, "RAI closing the relaxation gap", cuts=RAI_TUNED["cuts"]),
    Method("rai-minibatch", "rai-minibatch", "orthogonal", "adam", MINIBATCH_LR,
           "RAI, persistent tables, mini-batches", cuts=MINIBATCH_OPTIONS["cuts"]),
    Method("rai-online", "rai-online", "orthogonal", "adam", MINIBATCH_LR, "RAI, per-batch auxiliaries",
           cuts=MINIBATCH_OPTIONS["cuts"]),
)}

#: each mini-batch RAI method's BP twin (the report sets them side by side)
TWINS = {"rai-minibatch": "bp-minibatch", "rai-online": "bp-online"}

#: the keys of a ``[methods.NAME]`` table, and the bases that use each
CUSTOM_KEYS: dict[str, tuple[str, ...]] = {
    "base": BASES, "description": BASES, "init": BASES, "optimizer": BASES, "lr": BASES, "regulariser": BASES,
    "iters": BASES, "cuts": ("rai", "rai-minibatch", "rai-online"), "lam": ("rai", "rai-minibatch", "rai-online"),
    "batch_size": ("bp-minibatch", "bp-online", "rai-minibatch", "rai-online"),
    "weight_steps": ("rai-minibatch",), "inner_steps": ("bp-online", "rai-online"), "reinit_period": ("rai",),
}


def custom(name: str, table: dict[str, Any], known: dict[str, Method] | None = None) -> Method:
    """A method from a study file's ``[methods.NAME]`` table: ``base`` (a method by name, built in or
    defined before) and the settings that differ from it::

        [methods.rai-every3]
        base = "rai"                          # bp, bp-tuned, ..., rai-minibatch, or a method above
        cuts = "linear[2::3]"                 # RAI bases: cut positions, as RAI's cuts
        lam = {schedule = "geometric", start = 1, factor = 10, every = 500, maximum = 1e4}   # or a number
        optimizer = "adam"                    # rprop, adam, sgd
        lr = 1e-3
        init = "orthogonal"                   # uniform, xavier, he, orthogonal
        regulariser = {kind = "weight-decay", strength = 1e-4}    # or a list of them
        iters = 5000                          # instead of the study's
        batch_size = 64                       # mini-batch bases: instead of the study's
        weight_steps = "per-epoch"            # rai-minibatch: "per-batch" (default) or "per-epoch"
        inner_steps = 3                       # online bases: steps per batch (default: its blocks)
        reinit_period = 500                   # rai: tables set to a forward pass every 500 steps

    A key the base does not use (``cuts`` on a BP base) is an error that says so."""
    known = METHODS if known is None else known
    where = f"[methods.{name}]"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table of settings")
    if name in METHODS:
        raise ValueError(f"{where}: {name!r} is a built-in method; give the new one another name")
    base_name = table.get("base")
    if base_name is None and table and all(isinstance(v, dict) for v in table.values()):
        raise ValueError(f"{where}: no base; a name with a dot must be quoted in TOML ([methods.\"{name}.x\"]), "
                         f"else [methods.{name}.x] is a table x inside [methods.{name}]")
    if base_name not in known:
        raise ValueError(f"{where}: base must be a method by name, one of {sorted(known)}, got {base_name!r}")
    base = known[base_name]
    unknown = sorted(set(table) - set(CUSTOM_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; the keys are {sorted(CUSTOM_KEYS)}")
    unused = sorted(k for k in table if base.base not in CUSTOM_KEYS[k])
    if unused:
        raise ValueError(f"{where}: {unused} not used by base {base_name!r} (its trainer is {base.base!r}): "
                         + "; ".join(f"{k} is for {', '.join(CUSTOM_KEYS[k])}" for k in unused))
    changes: dict[str, Any] = {"name": name, "description": table.get("description", f"{base_name}, changed")}
    if "init" in table:
        changes["init"] = _choice(table["init"], INITS, where, "init")
    if "optimizer" in table:
        changes["optimizer"] = _choice(table["optimizer"], OPTIMIZERS, where, "optimizer")
    if "lr" in table:
        changes["lr"] = _positive(table["lr"], where, "lr", float)
    if "cuts" in table:
        changes["cuts"] = _cuts(table["cuts"], where)
    if "lam" in table:
        changes["lam"] = check_lam(table["lam"], where)
    for key in ("iters", "batch_size", "inner_steps", "reinit_period"):
        if key in table:
            changes[key] = _positive(table[key], where, key, int)
    if "weight_steps" in table:
        changes["weight_steps"] = _choice(table["weight_steps"], WEIGHT_STEPS, where, "weight_steps")
    if "regulariser" in table:
        specs = table["regulariser"] if isinstance(table["regulariser"], list) else [table["regulariser"]]
        checked = tuple(regularisers.check(s, where) for s in specs)
        kinds = [s["kind"] for s in checked]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"{where}: a regulariser kind appears twice: {kinds}")
        if not base.relaxed and any(k in regularisers.TABLE_KINDS for k in kinds):
            raise ValueError(f"{where}: {[k for k in kinds if k in regularisers.TABLE_KINDS]} act on RAI's "
                             f"tables; base {base_name!r} has none")
        changes["regularisers"] = base.regularisers + checked
    method = replace(base, **changes)
    if method.weight_steps == "per-epoch" and method.inner_steps not in (None, 1):
        raise ValueError(f"{where}: weight_steps = 'per-epoch' takes one step per batch")
    return method


def _choice(value: Any, choices: Sequence[str], where: str, key: str) -> str:
    if value not in choices:
        raise ValueError(f"{where}: {key} must be one of {list(choices)}, got {value!r}")
    return value


def _positive(value: Any, where: str, key: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) \
            or not value > 0 or not np.isfinite(value):
        raise ValueError(f"{where}: {key} must be a positive {'number' if kind is float else 'integer'}, got {value!r}")
    return kind(value)


def _cuts(value: Any, where: str) -> Any:
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise ValueError(f"{where}: cuts must be 'linear', 'activation', one with a slice ('linear[2::3]') or a list "
                     f"of positions, got {value!r}")


LAM_SCHEDULES = {"geometric": ("start", "factor", "every", "maximum"), "constant": ("value",)}


def check_lam(value: Any, where: str) -> Any:
    """λ as a study file gives it: a number, or ``{schedule = "geometric", start, factor, every, maximum}``
    (see :func:`minirai.rai.geometric`) or ``{schedule = "constant", value}``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value >= 0 or not np.isfinite(value):
            raise ValueError(f"{where}: lam must be a non-negative number, got {value!r}")
        return float(value)
    if not isinstance(value, dict) or value.get("schedule") not in LAM_SCHEDULES:
        raise ValueError(f"{where}: lam must be a number or a table {{schedule = \"geometric\", start = 1, "
                         f"factor = 10, every = 500, maximum = 1e4}} (schedules: {sorted(LAM_SCHEDULES)}), "
                         f"got {value!r}")
    keys = LAM_SCHEDULES[value["schedule"]]
    unknown = sorted(set(value) - {"schedule"} - set(keys))
    if unknown:
        raise ValueError(f"{where}: lam schedule {value['schedule']!r} has no setting(s) {unknown}; its settings "
                         f"are {list(keys)}")
    needed = [k for k in (("start", "factor") if value["schedule"] == "geometric" else ("value",)) if k not in value]
    if needed:
        raise ValueError(f"{where}: lam: schedule {value['schedule']!r} needs {needed}")
    try:
        make_schedule(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: lam: {error}") from None
    return dict(value)


def make_schedule(lam: Any) -> Any:
    """λ for the RAI trainer: a number, or the schedule a ``{schedule = ...}`` table describes."""
    if not isinstance(lam, dict):
        return lam
    if lam["schedule"] == "constant":
        return float(lam["value"])
    return geometric(lam["start"], lam["factor"], lam.get("every", 1), lam.get("maximum"))


@dataclass
class Trained:
    """A trained run: the network and its loss, the trainer (None for full-batch BP, which ``fit``
    trains), the optimizer and the history; what a report states about the run.

    ``trainer``, ``optimizer`` and the number of steps taken (``steps``) are what
    :func:`minirai.checkpoint.save` needs to checkpoint the run and resume it."""
    method: str
    model: Sequential
    loss: Loss
    history: History
    relaxed_loss: float | None
    identity_gap: float | None
    optimizer: str
    init: str
    trainer: Any = None
    optimizer_object: Optimizer | None = None
    steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def network(dataset: Dataset, hidden: Sequence[int], activation: str, init: str, seed: int,
            dtype: Any = None) -> tuple[Sequential, Loss]:
    """``n_features -> hidden... -> output``; a sigmoid output and BCE for two classes, softmax
    cross-entropy for more."""
    binary = dataset.n_classes <= 2
    sizes = [dataset.n_features, *hidden, 1 if binary else dataset.n_classes]
    model = mlp(sizes, activation, "sigmoid" if binary else None, init=init, seed=seed, dtype=dtype)
    return model, BCE() if binary else SoftmaxCrossEntropy()


def resolve(method: str | Method) -> Method:
    """A method by name (built in) or a :class:`Method` as it is."""
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}, or define one in a study "
                         "file's [methods.NAME]")
    return METHODS[method]


def train(method: str | Method, dataset: Dataset, hidden: Sequence[int], activation: str, *, seed: int, iters: int,
          batch_size: int = DEFAULT_BATCH_SIZE, record_every: int | None = None,
          progress: bool | dict[str, Any] = False, callback: Callable[[int, Any], None] | None = None,
          recorder: GradientRecorder | None = None, rai_options: dict[str, Any] | None = None,
          threads: int | Callable[[], int] | None = None) -> Trained:
    """Train a fresh network (initial weights from ``seed``) on ``dataset`` with ``method``.

    Args:
        method: a name of :data:`METHODS`, or a :class:`Method` (from :func:`custom`).
        dataset: the training and held-out sets (:mod:`minirai.data`).
        hidden, activation: the hidden widths and the activation between Linear layers
            (:func:`network`).
        seed: the initial weights' seed, and the mini-batches' and the table noise's.
        iters: optimizer steps (for the mini-batch methods, batch steps).
        batch_size: examples per batch, for the mini-batch methods only (a method's own
            ``batch_size`` wins).
        record_every: steps between records of the history (default: 100 records per run); each
            record holds the chained loss and accuracy on the training and the held-out set, and
            for RAI the relaxed loss, the output loss and the per-cut identity gaps.
        progress, recorder, threads: passed to the training loop (a tqdm bar; a
            :class:`~minirai.inspect.GradientRecorder`; the threads of each step, or a function
            that gives them before each step).
        callback: called as ``callback(step, trainer)`` after every step (``trainer`` is the model
            for full-batch BP), after the method's regularisers.
        rai_options: keyword arguments for the RAI trainer that override the method's own:
            ``cuts``, ``lam``, ``hidden_loss`` and ``reinit_period`` (:class:`~minirai.rai.RAI`);
            for the mini-batch methods also ``tables``, ``inner_steps``, ``weight_steps`` and
            ``shuffle`` (:class:`~minirai.minibatch.MiniBatchRAI`).

    Returns:
        a :class:`Trained`: the network, its loss and history, the trainer and optimizer (to
        checkpoint the run), the relaxed loss and mean identity gap at the end (None without a
        cut), and in ``extra`` what the regularisers report.
    """
    spec = resolve(method)
    iters = spec.iters or iters
    model, loss = network(dataset, hidden, activation, spec.init, seed)
    active = regularisers.Active(spec.regularisers, seed, iters) if spec.regularisers else None
    full = dataset
    if active is not None:
        dataset = active.prepare(dataset)
    record_every = record_every or max(1, iters // 100)
    user_callback = callback

    def each_step(step: int, trainer: Any) -> None:
        if active is not None:
            active.after_step(step, model, trainer, loss)
        if user_callback is not None:
            user_callback(step, trainer)

    options = dict(X_val=dataset.X_test, y_val=dataset.y_test, record_every=record_every, progress=progress,
                   recorder=recorder, callback=each_step if (active is not None or callback is not None) else None,
                   threads=threads)
    X, y = dataset.X_train, dataset.y_train
    make_optimizer = optimizer_class(spec.optimizer)
    if spec.base == "bp":
        optimizer: Optimizer = make_optimizer(model.parameters(), lr=spec.lr)
        history = fit(model, loss, optimizer, X, y, iters=iters, **options)
        trainer, relaxed, gap = None, None, None
    else:
        trainer = make_trainer(spec, model, loss, X, y, seed=seed, batch_size=batch_size, active=active,
                               rai_options=rai_options)
        optimizer = make_optimizer(trainer.parameters(), lr=spec.lr)
        history = trainer.fit(optimizer, iters, **options)
        relaxed = history.last("relaxed_loss") if spec.relaxed else None
        gap = float(np.mean(history["identity_gap"][-1])) if trainer.cuts else None    # no cut: no gap
    extra = active.finish(model, loss) if active is not None else {}
    if active is not None and full is not dataset:
        extra["trained_on"] = int(X.shape[0])
    return Trained(spec.name, model, loss, history, relaxed, gap, spec.optimizer_label, spec.init, trainer,
                   optimizer, iters, extra)


def make_trainer(spec: Method, model: Sequential, loss: Loss, X: Any, y: Any, *, seed: int, batch_size: int,
                 active: Any = None, rai_options: dict[str, Any] | None = None) -> RAI | MiniBatchRAI:
    """The trainer of an RAI method or of a mini-batch BP twin (a :class:`MiniBatchRAI` with no cut)."""
    options: dict[str, Any] = {"cuts": spec.cuts, "lam": make_schedule(spec.lam)} if spec.relaxed else {"cuts": None}
    hidden_loss = active.hidden_loss() if active is not None else None
    if hidden_loss is not None:
        options["hidden_loss"] = hidden_loss
    if spec.base == "rai":
        if spec.reinit_period is not None:
            options["reinit_period"] = spec.reinit_period
        return RAI(model, X, y, loss, **{**options, **(rai_options or {})})
    options.update(batch_size=spec.batch_size or batch_size, seed=seed,
                   tables="per-batch" if spec.online else "persistent")
    if spec.base == "rai-minibatch":
        options["weight_steps"] = spec.weight_steps
    if spec.online:
        inner = spec.inner_steps
        if inner is None and spec.base == "bp-online":     # as many steps per batch as its RAI twin's blocks
            inner = len(cut_positions(model, spec.twin_cuts)) + 1
        options["inner_steps"] = inner
    return MiniBatchRAI(model, X, y, loss, **{**options, **(rai_options or {})})


# -- scoring ---------------------------------------------------------------------------------------
def score(trained: Trained, dataset: Dataset) -> dict[str, Any]:
    """What a study records of a trained run, judged on the network as it predicts (the chained
    forward pass) on the whole training set and on the held-out set:

    ``chained_loss``, ``train_acc``, ``test_acc``; ``relaxed_loss`` and ``identity_gap`` (RAI; None
    without a cut); ``clipped_share``: the share of training examples whose BCE term is clipped at
    100 (a sigmoid output of exactly 0 or 1 on the wrong side: a saturated net, whose chained loss
    then says how many are clipped more than how wrong the net is; 0 for softmax); ``classes_predicted``:
    how many classes the network predicts on the held-out set, and ``majority_share``: the share of
    its most predicted class (1.0: it predicts one class)."""
    model, loss = trained.model, trained.loss
    train_metrics = evaluate(model, loss, dataset.X_train, dataset.y_train)
    test_metrics = evaluate(model, loss, dataset.X_test, dataset.y_test)
    model.eval()
    clipped = 0.0
    if isinstance(loss, BCE):
        p = backend.to_numpy(model.forward(dataset.X_train)).reshape(-1).astype(np.float64)
        t = backend.to_numpy(dataset.y_train).reshape(-1)
        clipped = float(np.mean(((p >= 1.0) & (t == 0)) | ((p <= 0.0) & (t == 1))))
    held_out = backend.to_numpy(loss.decision(model.forward(dataset.X_test))).reshape(-1)
    counts = np.bincount(held_out.astype(np.int64))
    return {"relaxed_loss": trained.relaxed_loss, "chained_loss": train_metrics["loss"],
            "train_acc": train_metrics["accuracy"], "test_acc": test_metrics["accuracy"],
            "identity_gap": trained.identity_gap, "clipped_share": clipped,
            "classes_predicted": int((counts > 0).sum()), "majority_share": float(counts.max() / counts.sum())}


def predictions(trained: Trained, dataset: Dataset) -> tuple[np.ndarray, str]:
    """The network's predicted classes where boundaries are compared: on a 100 x 100 grid over the
    training inputs for a 2-D set (``"grid"``), on the held-out set otherwise (``"held-out"``)."""
    from .datasets import grid_points
    model, loss = trained.model, trained.loss
    X_host = backend.to_numpy(dataset.X_train)
    points = grid_points(X_host) if X_host.shape[1] == 2 else None
    where = backend.to_device(points.astype(X_host.dtype)) if points is not None else dataset.X_test
    model.eval()
    classes = backend.to_numpy(loss.decision(model.forward(where))).reshape(-1).astype(np.uint8)
    return classes, "grid" if points is not None else "held-out"


def history_columns(history: History) -> dict[str, np.ndarray]:
    """A run's history as plain columns for storage: step, the chained loss and accuracy on the
    training and held-out sets (named as RAI names them), and for RAI the relaxed loss, the output
    loss and the mean identity gap over cuts (``cut_gaps``: each cut's identity gap at the last record;
    not a column)."""
    keys = history.keys()
    out = {"step": history["step"].astype(np.int64)}
    renamed = {"train_loss": "chained_loss", "train_acc": "chained_acc"}
    for key in ("chained_loss", "chained_acc", "train_loss", "train_acc", "val_loss", "val_acc", "relaxed_loss",
                "output_loss"):
        if key in keys:
            out[renamed.get(key, key)] = history[key].astype(np.float32)
    if "identity_gap" in keys and history["identity_gap"].size:
        out["identity_gap"] = history["identity_gap"].mean(axis=1).astype(np.float32)
        out["cut_gaps"] = history["identity_gap"][-1].astype(np.float32)     # each cut's gap at the end
    return out
