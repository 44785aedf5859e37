"""The chained-backprop fit loop, its history, and evaluation of a network as it predicts.

One training step is four lines you can step through::

    pred = model.forward(Xb)          # the chain, forward
    value = loss.forward(pred, yb)
    model.backward(loss.backward())   # the chain, backward: every layer sets its grads
    optimizer.step()                  # update every parameter in place

``fit`` adds what a real run needs around them: input checks at the boundary,
mini-batches with seeded shuffling, a history of losses and metrics, a progress
bar, and a clear stop when the loss stops being finite.

By default ``fit`` runs those four lines on the fast path (:mod:`minirai.fast`), which gives
the same numbers; inside ``with minirai.reference():`` (or with ``MINIRAI_REFERENCE=1``) it
calls exactly the methods above. See :class:`TrainingLoop`.
"""
from __future__ import annotations

import inspect
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, ContextManager, Iterator

import numpy as np

from . import backend, switches
from .fast import chain as fast_chain
from .fast import optim as fast_optim
from .fast import stacking as fast_stacking
from .fast.denormals import flushing_denormals
from .inspect import GradientRecorder
from .losses import Loss
from .network import Sequential
from .optim import Optimizer
from .validate import (check_bool, check_inputs, check_instance, check_number, check_progress, check_same_dtype,
                       check_seed, check_targets)

Array = Any


class History:
    """Values recorded during training, one list per name, read back as NumPy arrays.

    ``history["step"]`` holds the step numbers at which the other values were recorded;
    ``history["train_loss"]`` etc. are aligned with it. Missing values are NaN.
    """

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {"step": []}

    def record(self, step: int, **values: float | None) -> None:
        n = len(self.values["step"])
        self.values["step"].append(step)
        for name, value in values.items():
            column = self.values.setdefault(name, [float("nan")] * n)
            column.append(float("nan") if value is None else float(value))
        for name, column in self.values.items():   # names not given this time: NaN
            if len(column) == n:
                column.append(float("nan"))

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise KeyError(f"history has no {name!r}; it has {sorted(self.values)}")
        return np.asarray(self.values[name], dtype=np.int64 if name == "step" else np.float64)

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def keys(self) -> list[str]:
        return list(self.values)

    def last(self, name: str) -> float:
        """The last recorded value of ``name``."""
        return float(self[name][-1])

    def __len__(self) -> int:
        return len(self.values["step"])

    def to_dict(self) -> dict[str, list[float]]:
        return {name: list(column) for name, column in self.values.items()}

    def __repr__(self) -> str:
        return f"History({len(self)} records of {', '.join(k for k in self.values if k != 'step')})"


class TrainingDiverged(FloatingPointError):
    """Training produced NaN or inf. ``history`` holds everything recorded before it."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


def accuracy(loss: Loss, pred: Array, target: Array) -> float | None:
    """Fraction of examples whose predicted class equals the label (None for regression)."""
    labels = loss.decision(pred)
    if labels is None:
        return None
    truth = target.reshape(-1) if target.ndim > 1 else target
    return backend.to_float((labels == truth.astype(labels.dtype)).mean())


def evaluate(model: Sequential, loss: Loss, X: Array, y: Array) -> dict[str, float | None]:
    """Loss and accuracy of the network as it predicts (one chained forward, eval mode)."""
    was_training = model.training
    model.eval()
    pred = model.forward(X)
    if was_training:
        model.train()
    return {"loss": backend.to_float(loss.forward(pred, y)), "accuracy": accuracy(loss, pred, y)}


def prepare_data(model: Sequential, loss: Loss, X: Array, y: Array, name: str = "") -> tuple[Array, Array]:
    """Check X and y at the boundary and return them ready for the loss (targets converted)."""
    check_inputs(X, model.in_features, name=f"X{name}")
    check_targets(y, X.shape[0], name=f"y{name}")
    check_same_dtype(model.dtype, X, f"X{name}")
    xp = backend.array_module(X, y, *(p for p, _ in model.parameters()))   # same device, or a clear error
    try:
        target = loss.prepare_target(y, (X.shape[0], model.out_features), model.dtype)
    except ValueError as error:
        raise ValueError(f"y{name}: {error}") from None
    # C order: BLAS rounds a product of a Fortran-ordered or strided X differently, and the fast
    # path's buffers are C-ordered; both paths then read the same array (a copy only when needed)
    return xp.ascontiguousarray(X), target


@contextmanager
def keeping(history: History) -> Iterator[None]:
    """Any exception that stops a training loop leaves with the history so far (``error.history``)."""
    try:
        yield
    except BaseException as error:     # KeyboardInterrupt too: Ctrl-C is how most runs are stopped
        if getattr(error, "history", None) is None:
            try:
                error.history = history        # type: ignore[attr-defined]
            except AttributeError:             # (an exception type that takes no attributes)
                pass
        raise


def check_finite(value: float | None, what: str, step: int, history: History, *, recorded: bool = False) -> None:
    """A TrainingDiverged naming ``what`` and the step when ``value`` is NaN or inf (None: not measured).

    ``recorded``: the value was measured after step ``step``'s update and is the history's last record."""
    if value is None or np.isfinite(value):
        return
    if recorded:
        raise TrainingDiverged(f"training diverged: {what} became {value} after step {step}; the history, that "
                               f"record included, is kept in the exception", history)
    raise TrainingDiverged(f"training diverged: {what} became {value} at step {step}; "
                           f"the history up to step {step - 1} is kept in the exception", history)


def check_finite_weights(model: Sequential, step: int, history: History) -> None:
    """A TrainingDiverged naming the first parameter that holds NaN or inf (one pass over the weights:
    run at the end of a fit and at its records, not at every step)."""
    for name, param, _ in model.named_parameters():
        finite = backend.array_module(param).isfinite(param)
        if not backend.to_bool(finite.all()):
            bad = int(backend.to_float((~finite).sum()))
            raise TrainingDiverged(f"training diverged: parameter {name} {tuple(param.shape)} holds {bad} NaN or inf "
                                   f"value(s) after step {step}; the history is kept in the exception", history)


def check_threads(threads: Any, where: str) -> int | Callable[[], int] | None:
    """``threads`` of a training loop: None, a positive integer, or a function of no arguments that
    returns one (the function's answers are checked by :meth:`TrainingLoop.adapt`)."""
    if threads is None:
        return None
    if callable(threads):
        try:
            inspect.signature(threads).bind()
        except TypeError:
            raise TypeError(f"{where} must be a function of no arguments (or a positive integer), got "
                            f"{getattr(threads, '__name__', type(threads).__name__)}"
                            f"{inspect.signature(threads)}") from None
        except ValueError:        # (a builtin without a signature: it is asked as it is)
            pass
        return threads
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"{where} must be a positive integer or a function of no arguments that returns one, "
                        f"got {threads!r} ({type(threads).__name__})")
    return check_number(threads, where, low=1, integer=True)


def batches(n: int, batch_size: int | None, shuffle: bool, rng: np.random.Generator):
    """Yield index arrays (host) forever, one epoch after another; None means the full batch."""
    while True:
        if batch_size is None or batch_size >= n:
            yield None
            continue
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]


class TrainingLoop:
    """What ``fit`` and ``RAI.fit`` run their steps inside; both switches are read when it starts.

    * ``fast``: True unless ``minirai.reference()`` / ``MINIRAI_REFERENCE=1``; then the steps run
      the fast path (:mod:`minirai.fast`), else the textbook methods.
    * :meth:`arithmetic`: the context of one step's computation. On the CPU it switches on
      flush-to-zero of subnormal numbers (FTZ and DAZ, :mod:`minirai.fast.denormals`) on both
      paths, unless ``minirai.strict_ieee()`` / ``MINIRAI_STRICT_IEEE=1``. Records and callbacks
      run outside it, in strict IEEE arithmetic.
    * ``threads`` (``MINIRAI_THREADS``, default 1): the threads a step may use. NumPy's BLAS always
      uses one thread inside a training loop, on both paths: two BLAS threads on one small product spin
      waiting for each other on a busy machine (a deep BP step took 199 ms instead of 11 with two, while
      other work ran), and more threads may round a product differently. The fast path instead runs a
      step's independent work on ``threads`` worker threads (:mod:`minirai.fast.workers`): RAI's stacked
      blocks, and the optimizer's runs. So a run's numbers do not depend on the number of threads.

    ``threads`` may also be a function of no arguments that returns the count: :meth:`adapt` asks it
    before every step of ``fit``/``RAI.fit``, so a run that shares the machine with others can take
    the cores they leave as they finish (``minirai reproduce`` does). ``where`` is what its errors call
    ``threads`` (``fit`` passes ``"fit: threads"``).

    ``fast`` and ``flush`` override the switches (``TrainingLoop(fast=False, flush=False)``: the
    textbook path in strict IEEE arithmetic, what a step outside any training loop runs).
    """

    def __init__(self, threads: int | Callable[[], int] | None = None, *, fast: bool | None = None,
                 flush: bool | None = None, where: str = "TrainingLoop: threads") -> None:
        self.fast = not switches.reference_path() if fast is None else fast
        self.flush = switches.flush_denormals() if flush is None else flush
        self.where = where                # (what the errors call threads: fit's, RAI.fit's, or this one's)
        threads = check_threads(threads, where)
        self.ask = threads if callable(threads) else None
        self.threads = 1 if self.ask is not None else threads or backend.blas_threads_default()
        self.workers = self.threads if self.fast else 1
        self.adapt()                    # (a threads function: its count now)
        self._stack = ExitStack()
        self._relaxed: dict[int, tuple[Any, Any]] = {}     # id(trainer): (trainer, its fast twin)

    def __enter__(self) -> "TrainingLoop":
        self._stack.enter_context(backend.blas_threads(1))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def adapt(self) -> None:
        """Take the thread count that a ``threads`` function gives now (nothing for a fixed count). The
        numbers do not depend on it: an RAI trainer's fast twin is made again for the new count."""
        if self.ask is not None:
            self.threads = check_number(self.ask(), f"{self.where}() (the threads function's answer)", low=1,
                                        integer=True)
            self.workers = self.threads if self.fast else 1

    def arithmetic(self) -> ContextManager[None]:
        """The CPU's arithmetic for one step (flush-to-zero of subnormals, unless strict IEEE)."""
        return flushing_denormals(self.flush)

    def chain(self, model: Sequential) -> Any:
        """What runs ``forward``/``backward``: the fast chain, or the model itself (textbook). The fast
        chain copies back the outputs of layers whose input and parameters kept their bytes (full batch)."""
        return fast_chain.Chain(model.layers, model, reuse=True) if self.fast else model

    def relaxed(self, trainer: Any) -> Any:
        """What runs an RAI trainer's ``forward``/``backward``: its fast twin
        (:class:`minirai.fast.stacking.FastRAI`, identical blocks stacked), or the trainer itself
        (textbook). The twin is made at the first step of this loop, and again when a hook was added
        to a stacked layer since, or the thread count changed (:meth:`adapt`)."""
        if not self.fast:
            return trainer
        kept = self._relaxed.get(id(trainer))
        if kept is None or kept[1].hooked() or kept[1].workers != self.workers:
            if kept is not None:
                kept[1].forget_activations(every_stack=True)
            twin = fast_stacking.FastRAI(trainer, workers=self.workers, arithmetic=self.arithmetic)
            kept = self._relaxed[id(trainer)] = (trainer, twin)
        return kept[1]

    def step(self, optimizer: Optimizer) -> None:
        """``optimizer.step()``, on the fast path (:func:`minirai.fast.optim.step`) unless textbook."""
        if self.fast:
            fast_optim.step(optimizer, self.workers, self.arithmetic)
        else:
            optimizer.step()

    def update(self, optimizer: Optimizer, indices: range | list[int]) -> None:
        """The optimizer's rule on its pairs ``indices`` only, at its current step count (no step counted)."""
        if self.fast:
            fast_optim.update_pairs(optimizer, indices, self.workers, self.arithmetic)
        else:
            for i in indices:
                optimizer.update(*optimizer.pairs[i], optimizer.state[i])


def fit(model: Sequential, loss: Loss, optimizer: Optimizer, X: Array, y: Array, *, iters: int = 100,
        batch_size: int | None = None, shuffle: bool = True, seed: int = 0,
        X_val: Array | None = None, y_val: Array | None = None, record_every: int = 1,
        progress: bool | dict[str, Any] = True, callback: Callable[[int, Sequential], None] | None = None,
        recorder: GradientRecorder | None = None, start_step: int = 0,
        threads: int | Callable[[], int] | None = None) -> History:
    """Train ``model`` by chained backprop for ``iters`` optimizer steps.

    ``start_step`` continues a run that already took that many steps (resumed from a checkpoint
    with its optimizer): the mini-batches of the seeded order up to it are skipped, so the run
    sees the batches an uninterrupted one would, and the history counts steps from there.

    ``batch_size=None`` is full batch; otherwise each epoch visits a fresh permutation of
    the examples (seeded by ``seed``). At step 0 (before training), every ``record_every``
    steps and after the last, the history gets ``loss`` (the step's batch loss), ``train_loss``/``train_acc`` (the
    network as it predicts, on all training examples) and ``val_loss``/``val_acc``
    when a held-out set is given. A NaN or inf batch loss, recorded loss, or (at the end) weight
    stops with :class:`TrainingDiverged`, whose ``history`` keeps what was recorded.
    A :class:`~minirai.inspect.GradientRecorder` keeps per-layer gradient norms.
    ``threads``: the threads each step may use (:class:`TrainingLoop`; default ``MINIRAI_THREADS``),
    or a function that gives the count before each step; the numbers do not depend on it.
    """
    check_instance(model, Sequential, "fit: model", "build one with minirai.mlp(...) or minirai.Sequential(...)")
    check_instance(loss, Loss, "fit: loss", "for example minirai.BCE()")
    check_instance(optimizer, Optimizer, "fit: optimizer", "for example minirai.Rprop(model.parameters(), lr=0.1)")
    iters = check_number(iters, "fit: iters", low=0, integer=True)
    batch_size = check_number(batch_size, "fit: batch_size", low=1, integer=True, none=True)
    record_every = check_number(record_every, "fit: record_every", low=1, integer=True)
    seed = check_seed(seed, "fit: seed")
    start_step = check_number(start_step, "fit: start_step", low=0, integer=True)
    threads = check_threads(threads, "fit: threads")
    if callback is not None and not callable(callback):
        raise TypeError(f"fit: callback must be a function (step, model), got {type(callback).__name__}")
    shuffle = check_bool(shuffle, "fit: shuffle")
    check_progress(progress, "fit: progress")
    if recorder is not None:
        check_instance(recorder, GradientRecorder, "fit: recorder", "minirai.inspect.GradientRecorder(every=k)")
    X, y = prepare_data(model, loss, X, y)
    if X_val is not None:
        X_val, y_val = prepare_data(model, loss, X_val, y_val, name="_val")
    history = History()
    rng = np.random.default_rng(seed)
    batch_iter = batches(X.shape[0], batch_size, shuffle, rng)
    for _ in range(start_step):        # the batches the earlier part of the run took
        next(batch_iter)
    bar = _progress(iters, progress)

    def record(step: int, batch_loss: float | None) -> None:
        train = evaluate(model, loss, X, y)
        values = {"loss": batch_loss, "train_loss": train["loss"], "train_acc": train["accuracy"]}
        if X_val is not None:
            val = evaluate(model, loss, X_val, y_val)
            values.update(val_loss=val["loss"], val_acc=val["accuracy"])
        history.record(step, **values)
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if v is not None}, refresh=False)
        # the batch losses can stay finite while the network, on all examples, is not
        check_finite(values["train_loss"], "the training loss on all examples", step, history, recorded=True)
        check_finite(values.get("val_loss"), "the held-out loss", step, history, recorded=True)

    model.train()
    record(start_step, None)
    try:
        with TrainingLoop(threads, where="fit: threads") as loop, keeping(history):
            _fit_steps(model, loss, optimizer, X, y, range(start_step + 1, start_step + iters + 1), batch_iter,
                       record_every, record, bar, history, callback, recorder, loop)
            check_finite_weights(model, start_step + iters, history)
    finally:
        if bar is not None:
            bar.close()
    return history


def _fit_steps(model: Sequential, loss: Loss, optimizer: Optimizer, X: Array, y: Array, steps: range,
               batch_iter: Any, record_every: int, record: Callable[[int, float | None], None], bar: Any,
               history: History, callback: Callable[[int, Sequential], None] | None,
               recorder: GradientRecorder | None, loop: TrainingLoop) -> None:
    xp = backend.array_module(X)
    chain = loop.chain(model)          # the model itself on the textbook path
    for step in steps:
        loop.adapt()
        index = next(batch_iter)
        Xb, yb = (X, y) if index is None else (X[xp.asarray(index)], y[xp.asarray(index)])
        with loop.arithmetic():
            pred = chain.forward(Xb)
            value = loss.forward(pred, yb)
            chain.backward(loss.backward())
            batch_loss = backend.to_float(value)            # the step's one wait for the device
            if not np.isfinite(batch_loss):
                loss.diagnose()                             # a misuse (BCE on raw scores) says so
            check_finite(batch_loss, "the training loss", step, history)
            if recorder is not None and recorder.wants(step):
                recorder.capture(step, model)
            loop.step(optimizer)
        if callback is not None:
            callback(step, model)
        if step % record_every == 0 or step == steps[-1]:
            record(step, batch_loss)
        if bar is not None:
            bar.update(1)


def _progress(total: int, enabled: bool | dict[str, Any]):
    """A tqdm bar, or None. ``enabled`` may be a dict of tqdm options (``desc``, ``position``)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm
    options = enabled if isinstance(enabled, dict) else {}
    return tqdm(total=total, leave=False, dynamic_ncols=True, **options)
