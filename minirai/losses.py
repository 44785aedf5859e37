"""Losses: ``forward(pred, target)`` returns a scalar, ``backward()`` returns d pred.

Every loss averages over the batch (PyTorch's ``reduction="mean"``), so its value does
not grow with N. ``backward()`` returns ``dL/dpred`` and keeps it as ``self.grad_pred``;
losses whose target may itself be trained (RAI's hidden losses: the target is an
auxiliary table) also set ``self.grad_target = dL/dtarget``.

Targets are checked at every ``forward`` (shape, finiteness, domain), so a wrong label set
is a clear ``ValueError`` instead of a silent NaN, even for an array edited in place since the
last call. The one exception is a target the loss prepared itself (:meth:`Loss.prepare_target`,
which the training loops call once, on their own copy): it was checked when it was made.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from . import backend
from .layers import sigmoid
from .protocol import named, settings_of
from .validate import check_array

Array = Any


class Loss:
    """Base class. Subclasses define ``_forward``/``_backward`` and ``check_target``."""

    #: what ``decision(pred)`` returns: class labels for classification losses, None otherwise
    classification = False

    def __init__(self) -> None:
        self.pred: Array | None = None
        self.target: Array | None = None
        self.value: Array | None = None
        self.grad_pred: Array | None = None
        self.grad_target: Array | None = None
        # the targets prepare_target made (checked then; nobody else holds them), by id; an entry
        # disappears with its array, so a new array at the same address is never taken for it
        self._prepared: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    def __call__(self, pred: Array, target: Array) -> Array:
        return self.forward(pred, target)

    def forward(self, pred: Array, target: Array) -> Array:
        """pred (N, ...), target (N, ...) -> the mean loss as a 0-d array (on pred's device)."""
        check_prediction(pred, type(self).__name__)
        if self._prepared.get(id(target)) is not target:   # every target but the loops' own is checked
            self.check_target(tuple(pred.shape), target)
        self.pred, self.target = pred, self.reshape_target(pred, target)
        self.value = self._forward(self.pred, self.target)
        return self.value

    def config(self) -> dict[str, Any]:
        """The settings this loss was made with (none for the built-in ones); see :mod:`minirai.protocol`."""
        return settings_of(self, type(self).__init__)

    def __getstate__(self) -> dict[str, Any]:      # (pickle, joblib: the weak references stay behind)
        return {key: value for key, value in self.__dict__.items() if key != "_prepared"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepared = weakref.WeakValueDictionary()

    def diagnose(self) -> None:
        """After a non-finite loss: raise a clearer error if the last inputs explain it (a check that
        would cost a device synchronisation at every step is made here instead; default: none)."""

    def backward(self) -> Array:
        """Return dL/dpred (shape of pred); subclasses may also set ``grad_target``."""
        if self.pred is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        self.grad_pred = self._backward()
        return self.grad_pred

    # -- to override ---------------------------------------------------------------------
    def _forward(self, pred: Array, target: Array) -> Array:
        raise NotImplementedError

    def _backward(self) -> Array:
        raise NotImplementedError

    def reshape_target(self, pred: Array, target: Array) -> Array:
        """Targets of shape (N,) are accepted for predictions of shape (N, 1)."""
        return target.reshape(pred.shape) if target.shape != pred.shape else target

    def check_target(self, pred_shape: tuple[int, ...], target: Array) -> None:
        """Shape and finiteness for predictions of ``pred_shape``; subclasses add their domain."""
        check_array(target, "target", allow_int=True)
        if tuple(target.shape) != pred_shape and not (len(pred_shape) == 2 and pred_shape[1] == 1
                                                      and tuple(target.shape) == (pred_shape[0],)):
            raise ValueError(f"{type(self).__name__}: target shape {tuple(target.shape)} does not match "
                             f"prediction shape {pred_shape}")

    def prepare_target(self, target: Array, pred_shape: tuple[int, ...], dtype: Any) -> Array:
        """Check ``target`` and return it in the form the loss computes with (the fit loop's boundary).

        Float targets get the network's dtype and the prediction's shape, so no int64 or float64
        array silently upcasts a float32 computation.
        """
        self.check_target(pred_shape, target)
        return self.prepared(target.astype(dtype).reshape(pred_shape))

    def prepared(self, target: Array) -> Array:
        """Mark ``target`` (a copy a training loop made and owns, already checked) as needing no check."""
        self._prepared[id(target)] = target
        return target

    def decision(self, pred: Array) -> Array | None:
        """Class labels from predictions (for accuracy), or None for regression losses."""
        return None

    def __repr__(self) -> str:
        value = "" if self.value is None else f"value={backend.to_float(self.value):.4g}"
        return f"{type(self).__name__}({value})"


def check_prediction(pred: Any, owner: str) -> None:
    """A loss's prediction must be a float array (a TypeError names what it got: a list, ints)."""
    if not (isinstance(pred, np.ndarray) or backend.is_device_array(pred)):
        raise TypeError(f"{owner}.forward: pred must be a NumPy or CuPy array, got {type(pred).__name__}; "
                        "convert it with numpy.asarray(pred, dtype=numpy.float32)")
    if pred.dtype.kind != "f":
        raise TypeError(f"{owner}.forward: pred must be a float array, got dtype {pred.dtype}")


class MSE(Loss):
    r"""Mean squared error ``L = (1/M) Σ (p - t)²`` over all M = N·D entries.

    Backward: ``dL/dp = 2 (p - t) / M`` and ``dL/dt = -dL/dp`` (both trainable under RAI).
    """

    def _forward(self, pred: Array, target: Array) -> Array:
        self.diff = pred - target
        return (self.diff * self.diff).mean()

    def _backward(self) -> Array:
        grad = (2.0 / self.diff.size) * self.diff
        self.grad_target = -grad
        return grad


def _check_unit_interval(name: str, target: Array) -> None:
    t = backend.to_numpy(target)
    if t.size and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"{name}: targets must lie in [0, 1] (class labels 0/1), "
                         f"got values from {t.min():g} to {t.max():g}")


class BCE(Loss):
    r"""Binary cross-entropy on probabilities p ∈ [0, 1] (after a Sigmoid), targets t ∈ [0, 1].

        L = -(1/M) Σ [ t · clip(log p) + (1 - t) · clip(log(1 - p)) ],   clip(v) = max(v, -100)

    log(1 - p) is computed as ``log1p(-p)``, exact for small p: in float32, 1 - 1e-10 rounds to
    1 and log(1) = 0, while log1p(-1e-10) = -1e-10 (as PyTorch's BCELoss computes it).

    Backward: ``dL/dp = (p - t) / max(p (1 - p), ε) / M`` with PyTorch's ε: 1e-12 rounded to
    float32 (9.99999996e-13), in float64 too, so both give the same gradient where p is tiny.
    The logarithms are clipped at -100 exactly as PyTorch's ``BCELoss`` does, so a saturated
    network (p exactly 0 or 1 in float32) reports a large finite loss (at most 100) instead of
    inf or NaN. For numerical stability prefer :class:`BCEWithLogits` on raw scores.
    """
    classification = True
    LOG_CLIP = -100.0
    EPS = float(np.float32(1e-12))   # PyTorch's floor: 1e-12 as a C float (9.99999996e-13), in every dtype

    def check_target(self, pred_shape: tuple[int, ...], target: Array) -> None:
        super().check_target(pred_shape, target)
        _check_unit_interval(type(self).__name__, target)

    def _forward(self, pred: Array, target: Array) -> Array:
        xp = backend.array_module(pred)
        outside = ((pred < 0) | (pred > 1)).any()         # not probabilities: a misuse, not a divergence
        if xp is np and outside:
            self.diagnose()
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf is clipped right away
            log_p = xp.maximum(xp.log(pred), self.LOG_CLIP)
            log_1mp = xp.maximum(xp.log1p(-pred), self.LOG_CLIP)
        value = -(target * log_p + (1 - target) * log_1mp).mean() + 0.0   # + 0.0 turns -0.0 into 0.0
        # on a GPU, asking would wait for the device at every step: the answer rides on the value
        # instead (NaN if outside, which the training loops then diagnose)
        return value if xp is np else xp.where(outside, xp.nan, value)

    def diagnose(self) -> None:
        """Predictions outside [0, 1] are a clear ValueError (called when the loss is not finite)."""
        pred = self.pred
        if pred is not None and backend.to_bool(((pred < 0) | (pred > 1)).any()):
            low, high = backend.to_float(pred.min()), backend.to_float(pred.max())
            raise ValueError(f"BCE needs predictions that are probabilities in [0, 1] (a Sigmoid output); got "
                             f"values from {low:g} to {high:g}. For raw scores use BCEWithLogits")

    def _backward(self) -> Array:
        xp = backend.array_module(self.pred)
        p, t = self.pred, self.target
        return (p - t) / xp.maximum(p * (1 - p), self.EPS) / p.size

    def decision(self, pred: Array) -> Array:
        return (pred >= 0.5).reshape(-1).astype(np.int64)


class BCEWithLogits(Loss):
    r"""Binary cross-entropy on raw scores z (a Sigmoid folded in), targets t ∈ [0, 1].

    Its name is ``"bce_with_logits"`` (a name that the class name's capitals cannot give).

        L = (1/M) Σ [ max(z, 0) - z t + log(1 + e^{-|z|}) ]     (stable for any z)

    Backward: ``dL/dz = (σ(z) - t) / M``.
    """
    classification = True
    name = "bce_with_logits"

    def check_target(self, pred_shape: tuple[int, ...], target: Array) -> None:
        super().check_target(pred_shape, target)
        _check_unit_interval(type(self).__name__, target)

    def _forward(self, z: Array, target: Array) -> Array:
        xp = backend.array_module(z)
        with np.errstate(under="ignore"):  # exp(-|z|) -> 0 for large |z| is harmless
            return (xp.maximum(z, 0) - z * target + xp.log1p(xp.exp(-xp.abs(z)))).mean()

    def _backward(self) -> Array:
        return (sigmoid(self.pred) - self.target) / self.pred.size

    def decision(self, pred: Array) -> Array:
        return (pred >= 0).reshape(-1).astype(np.int64)


class SoftmaxCrossEntropy(Loss):
    r"""Softmax cross-entropy on scores z (N, C) with integer labels y (N,) in {0, ..., C-1}.

        s = softmax(z) row-wise,   L = -(1/N) Σ_i log s_{i, y_i}
                                     = (1/N) Σ_i [ logsumexp(z_i) - z_{i, y_i} ]

    Backward: ``dL/dz = (s - onehot(y)) / N``.
    """
    classification = True

    def reshape_target(self, pred: Array, target: Array) -> Array:
        return target

    def check_target(self, pred_shape: tuple[int, ...], target: Array) -> None:
        name = type(self).__name__
        if len(pred_shape) != 2:
            raise ValueError(f"{name}: predictions must have shape (N, C), got {pred_shape}")
        check_array(target, "labels", allow_int=True)
        if tuple(target.shape) != (pred_shape[0],):
            raise ValueError(f"{name}: labels must have shape ({pred_shape[0]},) to match predictions "
                             f"{pred_shape}, got {tuple(target.shape)}")
        labels = backend.to_numpy(target)
        if not np.all(labels == np.round(labels)) or labels.min() < 0 or labels.max() >= pred_shape[1]:
            raise ValueError(f"{name}: labels must be integers in 0..{pred_shape[1] - 1}, got values "
                             f"{np.unique(labels)[:10].tolist()}")

    def prepare_target(self, target: Array, pred_shape: tuple[int, ...], dtype: Any) -> Array:
        self.check_target(pred_shape, target)
        return self.prepared(target.astype(np.int64))

    def _forward(self, z: Array, labels: Array) -> Array:
        xp = backend.array_module(z)
        shifted = z - z.max(axis=1, keepdims=True)      # softmax is shift-invariant; avoids overflow
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        self.probs = exp / total
        self.rows = xp.arange(z.shape[0])
        self.labels = labels.astype(np.int64)
        log_probs_of_label = shifted[self.rows, self.labels] - xp.log(total[:, 0])
        return -log_probs_of_label.mean()

    def _backward(self) -> Array:
        grad = self.probs.copy()
        grad[self.rows, self.labels] -= 1
        return grad / self.pred.shape[0]

    def decision(self, pred: Array) -> Array:
        return pred.argmax(axis=1)


def losses() -> dict[str, type[Loss]]:
    """Every loss class defined so far, by name (``"mse"``, ``"bce"``, ``"bce_with_logits"``,
    ``"softmax_cross_entropy"``, and a learner's own); see :mod:`minirai.protocol`."""
    return named(Loss)
