"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor``, trained by BP or by RAI.

They follow scikit-learn's conventions (``fit``/``predict``/``score``, parameters as
constructor arguments, fitted attributes ending in ``_``), so they work in ``Pipeline``,
``cross_val_score`` and ``GridSearchCV``, and pass ``sklearn.utils.estimator_checks``::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), MLPClassifier((64,), method="rai"))

Parameters (names as in ``sklearn.neural_network``):

* ``hidden_layer_sizes``: widths of the hidden layers.
* ``activation``: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"leaky_relu"``, ``"identity"``, or the name
  of a learner's own :class:`~minirai.layers.Activation` subclass (:func:`minirai.layers.activations`).
* ``method``: ``"bp"`` (chained backprop, :func:`minirai.train.fit`) or ``"rai"``
  (:class:`minirai.rai.RAI` with ``cuts`` and ``lam``; with a ``batch_size``, persistent tables
  updated by mini-batch, :class:`minirai.minibatch.MiniBatchRAI`). Predictions are always the
  chained forward pass.
* ``solver``: ``"adam"``, ``"sgd"`` (momentum 0.9) or ``"rprop"``, or the name of a learner's own
  optimizer class (:func:`minirai.optim.optimizers`, made with its defaults and this lr);
  ``learning_rate_init`` its lr.
* ``max_iter``: optimizer steps. ``batch_size``: mini-batch size (``None``: full batch).
* ``random_state``: seeds the initial weights and the batches. ``device``: ``"cpu"``, ``"gpu"``
  or ``"auto"``, the device the network trains on (predictions come back as NumPy arrays).

A classifier with two classes has one sigmoid output and BCE; with more, one output per class
and softmax cross-entropy. A regressor has one linear output per target and MSE. The network
computes in float64 (``dtype``), so that predictions do not depend on how rows are batched.
Fitted attributes: ``model_`` (the :class:`~minirai.network.Sequential`), ``history_`` (the run's
history: chained losses, and the relaxed loss for RAI), ``n_iter_``, ``loss_``,
``n_features_in_``, and ``classes_`` for the classifier.

A ``fit`` or ``partial_fit`` whose loss or weights become NaN or inf raises
:class:`~minirai.train.TrainingDiverged` (as scikit-learn's MLPs refuse non-finite weights) and
leaves the estimator exactly as it was, its network's weights and optimizer's state included.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import backend
from .layers import Activation
from .losses import BCE, MSE, SoftmaxCrossEntropy
from .network import mlp
from .optim import SGD, Optimizer
from .protocol import by_name
from .validate import check_number

METHODS = ("bp", "rai")


class _MLP(BaseEstimator):
    """What the classifier and the regressor share: the parameters, the network and the training run."""

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (64,), activation: str = "relu", *,
                 method: str = "bp", solver: str = "adam", learning_rate_init: float = 1e-2, max_iter: int = 200,
                 batch_size: int | None = None, cuts: Any = "linear", lam: float = 1.0,
                 random_state: Any = None, device: str = "cpu", dtype: str = "float64") -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.method = method
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.cuts = cuts
        self.lam = lam
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    # -- checks of the parameters (at fit, as scikit-learn wants) ----------------------------------
    def _check_parameters(self) -> list[int]:
        name = type(self).__name__
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, bool) else sizes
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise ValueError(f"{name}: hidden_layer_sizes must be a tuple of positive integers, got {sizes!r}")
        sizes = [check_number(s, f"{name}: each hidden layer size", low=1, integer=True) for s in sizes]
        by_name(Activation, self.activation, f"{name}: activation")
        by_name(Optimizer, self.solver, f"{name}: solver")
        if self.method not in METHODS:
            raise ValueError(f"{name}: method must be one of {METHODS}, got {self.method!r}")
        check_number(self.learning_rate_init, f"{name}: learning_rate_init", low=0, low_open=True)
        check_number(self.max_iter, f"{name}: max_iter", low=1, integer=True)
        check_number(self.batch_size, f"{name}: batch_size", low=1, integer=True, none=True)
        if self.device not in backend.DEVICES:
            raise ValueError(f"{name}: device must be one of {backend.DEVICES}, got {self.device!r}")
        backend.resolve_dtype(self.dtype)
        return sizes

    def _optimizer(self, pairs: list[Any]) -> Any:
        cls = by_name(Optimizer, self.solver, "solver")
        if cls is SGD:
            return SGD(pairs, lr=self.learning_rate_init, momentum=0.9)   # as scikit-learn's MLPs
        return cls(pairs, lr=self.learning_rate_init)

    def _train(self, X: np.ndarray, targets: np.ndarray, n_outputs: int, output: str | None, loss: Any,
               iters: int | None = None, keep: bool = False) -> None:
        """Train by BP or RAI (a new network, or with ``keep`` the fitted one); sets the fitted attributes."""
        from .minibatch import MiniBatchRAI   # noqa: PLC0415 - these import train, which imports this package's
        from .rai import RAI                  # noqa: PLC0415   neighbours
        from .train import fit     # noqa: PLC0415
        sizes = self._check_parameters()
        seed = int(check_random_state(self.random_state).randint(2 ** 31 - 1))
        dtype = backend.resolve_dtype(self.dtype)
        iters = int(self.max_iter) if iters is None else iters
        previous = backend.xp()
        module = backend.set_device(self.device)
        try:
            if keep:
                model, optimizer = self.model_, self.optimizer_
            else:
                model = mlp([X.shape[1], *sizes, n_outputs], self.activation, output, seed=seed, dtype=dtype)
            X_dev = backend.to_device(X.astype(dtype), module)
            y_dev = backend.to_device(targets, module)
            if self.method == "bp":
                optimizer = optimizer if keep else self._optimizer(model.parameters())
                history = fit(model, loss, optimizer, X_dev, y_dev, iters=iters, batch_size=self.batch_size,
                              seed=seed, record_every=max(1, iters // 20), progress=False,
                              start_step=self.n_iter_ if keep else 0)   # partial_fit: the batch order goes on
                self.loss_ = history.last("train_loss")
            else:
                if self.batch_size is None:
                    trainer = RAI(model, X_dev, y_dev, loss, cuts=self.cuts, lam=self.lam)
                else:                   # persistent tables, updated by mini-batch (minirai.minibatch)
                    trainer = MiniBatchRAI(model, X_dev, y_dev, loss, batch_size=int(self.batch_size), seed=seed,
                                           cuts=self.cuts, lam=self.lam)
                optimizer = self._optimizer(trainer.parameters())
                history = trainer.fit(optimizer, iters, record_every=max(1, iters // 20), progress=False)
                self.loss_ = history.last("chained_loss")
        finally:
            backend.use_module(previous)
        self.model_, self.optimizer_, self.history_ = model, optimizer, history
        self.n_iter_ = getattr(self, "n_iter_", 0) + iters if keep else iters

    def _epoch_steps(self, n: int) -> int:
        """Optimizer steps in one pass over n examples (one for full batch)."""
        return 1 if self.batch_size is None else -(-n // int(self.batch_size))

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        model = self.model_
        module = backend.array_module(*(p for p, _ in model.parameters()[:1]))
        was_training = model.training
        model.eval()
        try:
            out = model.forward(backend.to_device(X.astype(model.dtype), module))
        finally:
            if was_training:
                model.train()
        return backend.to_numpy(out).astype(np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def snapshot(model: Any, optimizer: Any) -> Any:
    """A function that writes back, in place, the arrays a run changes (weights, optimizer state, its
    step count) as they are now (state entries found again by index and key, wherever they are then)."""
    params = [(p, p.copy()) for p, _ in model.parameters()]
    state = [(i, key, value.copy()) for i, entries in enumerate(optimizer.state) for key, value in entries.items()]
    steps = optimizer.steps

    def restore() -> None:
        for param, saved in params:
            param[...] = saved
        for i, key, saved in state:
            optimizer.state[i][key][...] = saved
        optimizer.steps = steps
    return restore


def unchanged_on_error(method: Any) -> Any:
    """A fit or partial_fit that fails leaves the estimator as it was: its attributes, and the arrays
    of a network and optimizer it went on training (partial_fit), written back in place."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = dict(self.__dict__)
        restore = snapshot(self.model_, self.optimizer_) if "optimizer_" in before else None
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            if restore is not None:          # partial_fit trains the fitted network itself
                restore()
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
    return wrapper


class MLPClassifier(ClassifierMixin, _MLP):
    """A multilayer perceptron classifier trained by BP or RAI (see the module docstring)."""

    @unchanged_on_error
    def fit(self, X: Any, y: Any) -> "MLPClassifier":
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes in y, got 1 class ({self.classes_[0]!r})")
        self.__dict__.pop("n_iter_", None)
        self._train_labels(X, labels)
        return self

    @available_if(lambda self: self.method == "bp")
    @unchanged_on_error
    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "MLPClassifier":
        """One pass over (X, y) (one step per mini-batch) from where the last fit or partial_fit left off.

        ``classes`` (all the labels there will be) is needed on the first call. Only for
        ``method="bp"``: an RAI run keeps one table row per training example, which a stream of new
        examples does not have.
        """
        first = not hasattr(self, "model_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit (all the labels y will hold)")
            self.classes_ = np.unique(classes)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={list(np.unique(classes))} is not the same as on the first call to partial_fit "
                             f"({list(self.classes_)})")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first and len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes, got {list(self.classes_)}")
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {list(unknown[:5])} that are not in classes {list(self.classes_)}")
        labels = np.searchsorted(self.classes_, y)
        self._train_labels(X, labels, self._epoch_steps(len(X)), keep=not first)
        return self

    def _train_labels(self, X: np.ndarray, labels: np.ndarray, iters: int | None = None, keep: bool = False) -> None:
        if len(self.classes_) == 2:
            self._train(X, labels.astype(np.float64).reshape(-1, 1), 1, "sigmoid", BCE(), iters, keep)
        else:
            self._train(X, labels.astype(np.int64), len(self.classes_), None, SoftmaxCrossEntropy(), iters, keep)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, n_classes) probabilities from the chained forward pass."""
        out = self._forward(X)
        if out.shape[1] == 1:
            return np.hstack([1 - out, out])
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]


class MLPRegressor(RegressorMixin, _MLP):
    """A multilayer perceptron regressor (linear outputs, MSE) trained by BP or RAI."""

    @unchanged_on_error
    def fit(self, X: Any, y: Any) -> "MLPRegressor":
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._one_target = y.ndim == 1
        targets = y.reshape(len(y), -1)
        self.__dict__.pop("n_iter_", None)
        self._train(X, targets.astype(backend.resolve_dtype(self.dtype)), targets.shape[1], None, MSE())
        return self

    @available_if(lambda self: self.method == "bp")
    @unchanged_on_error
    def partial_fit(self, X: Any, y: Any) -> "MLPRegressor":
        """One pass over (X, y) (one step per mini-batch) from where the last fit left off (``method="bp"``)."""
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True,
                             reset=first)
        y = np.asarray(y, dtype=np.float64)
        targets = y.reshape(len(y), -1)
        if first:
            self._one_target = y.ndim == 1
        elif targets.shape[1] != self.model_.out_features:
            raise ValueError(f"y has {targets.shape[1]} targets; this regressor was fitted with "
                             f"{self.model_.out_features}")
        self._train(X, targets.astype(backend.resolve_dtype(self.dtype)), targets.shape[1], None, MSE(),
                    self._epoch_steps(len(X)), keep=not first)
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return out[:, 0] if self._one_target else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True        # y of shape (N, k): one linear output per target
        return tags
