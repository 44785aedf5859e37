"""Layers: each one a ``forward``/``backward`` pair you can step through.

Conventions (the same in every layer)
-------------------------------------
* ``x`` is the input, of shape ``(N, D_in)``; ``y`` the output, ``(N, D_out)``.
* ``forward(x)`` returns ``y`` and keeps what backward needs as plain attributes
  (``self.x``, ``self.y``): the cache is visible, not hidden in a closure.
* ``backward(dy)`` takes the upstream gradient ``dy = dL/dy`` (same shape as ``y``),
  writes ``dL/dθ`` into ``self.grads`` (same keys as ``self.params``) and returns
  ``dx = dL/dx``. It also keeps ``self.grad_output = dy`` and ``self.grad_input = dx``
  so every activation's gradient can be read after a backward.
* Gradients are *set*, not accumulated: calling backward twice gives the same numbers.
  They are written into the existing ``grads`` arrays (``grads["W"][...] = ...``), so an
  optimizer that holds those arrays always sees the newest values.

This is the textbook path: plain NumPy (or CuPy) expressions, one per formula. The training
loops run a faster twin of some of these methods (:mod:`minirai.fast`) that gives the same
numbers; ``with minirai.reference():`` makes them call these methods instead.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import backend
from .protocol import by_name, named, settings_of
from .validate import check_number, check_seed

Array = Any  # a NumPy or CuPy array


class Layer:
    """Base class: parameters and gradients in dicts, a cache, hooks, a helpful repr."""

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.training = True
        self.x: Array | None = None            # last forward input
        self.y: Array | None = None            # last forward output
        self.grad_output: Array | None = None  # dL/dy from the last backward
        self.grad_input: Array | None = None   # dL/dx from the last backward
        self.hooks: list[Callable[..., None]] = []

    # -- the pair every layer implements -----------------------------------------
    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, dy: Array) -> Array:
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    # -- shape information used by Sequential for clear errors ---------------------
    in_features: int | None = None   # None: any width (shape-preserving layers)
    out_features: int | None = None

    # -- housekeeping ----------------------------------------------------------------
    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def to(self, module: Any = None) -> "Layer":
        """Move parameters and gradients to ``module`` (default: the active backend)."""
        for name in list(self.params):
            self.params[name] = backend.to_device(self.params[name], module)
            self.grads[name] = backend.to_device(self.grads[name], module)
        return self

    def train(self) -> "Layer":
        self.training = True
        return self

    def eval(self) -> "Layer":
        self.training = False
        return self

    def register_hook(self, hook: Callable[..., None]) -> Callable[[], None]:
        """Call ``hook(layer, event, inputs, outputs)`` after each forward and backward.

        ``event`` is ``"forward"`` (inputs=x, outputs=y) or ``"backward"`` (inputs=dy,
        outputs=dx). Hooks run only when the layer is called through a Sequential or an RAI
        trainer (and in ``fit``/``RAI.fit``, on both paths). Returns a function that removes the
        hook. On the fast path the arrays a hook receives are reused at the next step: copy
        what you keep.
        """
        self.hooks.append(hook)
        return lambda: self.hooks.remove(hook) if hook in self.hooks else None

    def run_hooks(self, event: str, inputs: Array, outputs: Array) -> None:
        for hook in self.hooks:
            hook(self, event, inputs, outputs)

    # -- settings: one protocol, read by checkpoints, the fast path and mlp ------------------
    def config(self) -> dict[str, Any]:
        """The settings this layer was made with, as a dict of plain values: ``type(self)(**config)``
        makes a layer like it (with fresh parameters).

        By default, scikit-learn's convention: every argument of ``__init__`` kept as an attribute of
        the same name (``self.negative_slope = negative_slope``). Checkpoints save it, the fast path
        stacks blocks only where it is equal, and ``repr`` shows it. Override it (and
        :meth:`from_config`) when a setting is kept under another name.
        """
        return settings_of(self, type(self).__init__)

    @classmethod
    def from_config(cls, config: dict[str, Any], params: dict[str, np.ndarray] | None = None) -> "Layer":
        """A new layer with these settings. With ``params`` (NumPy arrays by key, as a checkpoint holds
        them) it gets these parameters instead of fresh ones; their keys, shapes and dtypes must be
        those the settings make, or a ValueError says which differs."""
        layer = cls(**config)
        if params is not None:
            layer.load_params(params)
        return layer

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy ``params`` into this layer's parameters (in place, onto their device), after checking them."""
        name = type(self).__name__
        if sorted(params) != sorted(self.params):
            raise ValueError(f"{name} has parameters {sorted(self.params)}; got {sorted(params)}")
        for key, value in params.items():
            mine = self.params[key]
            if tuple(value.shape) != tuple(mine.shape):
                raise ValueError(f"{name} parameter {key!r} has shape {tuple(mine.shape)}; got {tuple(value.shape)}")
            if value.dtype != mine.dtype:
                raise ValueError(f"{name} parameter {key!r} has dtype {mine.dtype}; got {value.dtype}")
            mine[...] = backend.to_device(value, backend.array_module(mine))

    def extra_repr(self) -> str:
        try:
            settings = self.config()
        except TypeError:           # a setting not kept as an attribute: say nothing (saving it says why)
            return ""
        return ", ".join(f"{key}={value!r}" for key, value in settings.items())

    def __repr__(self) -> str:
        parts = [self.extra_repr()] if self.extra_repr() else []
        for name, p in self.params.items():
            text = f"{name}{tuple(p.shape)}"
            if self.grad_input is not None or self.grad_output is not None:
                text += f" |grad|={backend.to_float((self.grads[name] ** 2).sum()) ** 0.5:.3g}"
            parts.append(text)
        return f"{type(self).__name__}({', '.join(parts)})"


# ---------------------------------------------------------------------------------------
class Linear(Layer):
    r"""``y = x W + b``;  backward ``dx = dy Wᵀ``, ``dW = xᵀ dy``, ``db = Σ_i dy_i``.

    Shapes: x (N, D_in), W (D_in, D_out), b (D_out,), y (N, D_out).

    Backward, with dy = dL/dy of shape (N, D_out):
        dW = x^T @ dy          (D_in, D_out)   each example adds the outer product x_i dy_i^T
        db = Σ_i dy_i          (D_out,)        b is added to every row
        dx = dy @ W^T          (N, D_in)

    Initialisation (``init``):
        "uniform" (default)  W, b ~ U(-1/√D_in, 1/√D_in), as PyTorch's nn.Linear and the proposal
        "xavier"             W ~ U(-a, a), a = √(6/(D_in+D_out)); b = 0   (Glorot & Bengio, 2010)
        "he"                 W ~ N(0, 2/D_in); b = 0                        (He et al., 2015)
        "orthogonal"         W = gain · Q, Q with orthonormal rows or columns (Saxe et al., 2014);
                             b = -input_mean · Σ_rows W, which centres the pre-activation when the
                             inputs average ``input_mean`` (0.5 after a sigmoid at 0)
    Weights are drawn on the host from ``rng`` (a seed or ``numpy.random.Generator``) and then
    moved to the active backend, so one seed gives the same network on CPU and GPU.
    """

    INITS = ("uniform", "xavier", "he", "orthogonal")

    def __init__(self, in_features: int, out_features: int, *, init: str = "uniform",
                 rng: int | np.random.Generator | None = None, dtype: Any = None,
                 gain: float = 1.0, input_mean: float = 0.0) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Linear {name} must be a positive integer, got {value!r}")
        if init not in self.INITS:
            raise ValueError(f"Linear init must be one of {self.INITS}, got {init!r}")
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.gain = check_number(gain, "Linear gain", low=0, low_open=True)
        self.input_mean = check_number(input_mean, "Linear input_mean")
        dtype = backend.resolve_dtype(dtype)
        check_seed(rng, "Linear rng")
        W, b = initial_weights(self.in_features, self.out_features, init, np.random.default_rng(rng),
                               gain=self.gain, input_mean=self.input_mean)
        xp = backend.xp()
        self.params = {"W": backend.to_device(W.astype(dtype)), "b": backend.to_device(b.astype(dtype))}
        self.grads = {name: xp.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x: Array) -> Array:
        """x (N, D_in) -> y (N, D_out)."""
        self.x = x
        self.y = x @ self.params["W"] + self.params["b"]   # b is added to every row
        return self.y

    def backward(self, dy: Array) -> Array:
        """dy (N, D_out) -> dx (N, D_in); sets grads["W"] (D_in, D_out) and grads["b"] (D_out,)."""
        self.grad_output = dy
        self.grads["W"][...] = self.x.T @ dy                # dW = x^T dy
        self.grads["b"][...] = dy.sum(axis=0)               # db = Σ_i dy_i
        self.grad_input = dy @ self.params["W"].T           # dx = dy W^T
        return self.grad_input

    def config(self) -> dict[str, Any]:
        """in_features, out_features, init, gain and input_mean (``rng`` and ``dtype`` are not settings:
        the weights and their dtype are the parameters), and a subclass's own ``__init__`` arguments."""
        return {"in_features": self.in_features, "out_features": self.out_features, "init": self.init,
                "gain": self.gain, "input_mean": self.input_mean,
                **settings_of(self, type(self).__init__, skip=("rng", "dtype"))}

    @classmethod
    def from_config(cls, config: dict[str, Any], params: dict[str, np.ndarray] | None = None) -> "Linear":
        """As :meth:`Layer.from_config`; saved parameters are checked against the sizes before any
        weights are drawn, and give their dtype."""
        if params is not None:
            shapes = {"W": (config.get("in_features"), config.get("out_features")), "b": (config.get("out_features"),)}
            for key, shape in shapes.items():
                if key not in params or tuple(params[key].shape) != shape:
                    got = tuple(params[key].shape) if key in params else "nothing"
                    raise ValueError(f"Linear parameter {key!r} must have shape {shape} for these sizes; got {got}")
            config = {**config, "dtype": params["W"].dtype}
        return super().from_config(config, params)

    def extra_repr(self) -> str:
        return f"{self.in_features}->{self.out_features}"


def initial_weights(fan_in: int, fan_out: int, init: str, rng: np.random.Generator, *,
                    gain: float = 1.0, input_mean: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Host (NumPy, float64) weights ``W (fan_in, fan_out)`` and bias ``b (fan_out,)``.

    ``gain`` and ``input_mean`` are used by ``"orthogonal"`` only."""
    if init == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return (rng.uniform(-bound, bound, size=(fan_in, fan_out)),
                rng.uniform(-bound, bound, size=fan_out))
    if init == "xavier":
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, size=(fan_in, fan_out)), np.zeros(fan_out)
    if init == "he":
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)), np.zeros(fan_out)
    if init == "orthogonal":
        # QR of a Gaussian matrix, signs fixed by R's diagonal: a uniformly random orthogonal Q
        Q, R = np.linalg.qr(rng.normal(size=(max(fan_in, fan_out), min(fan_in, fan_out))))
        Q = Q * np.sign(np.diag(R))
        W = gain * (Q if fan_in >= fan_out else Q.T)
        return W, -input_mean * W.sum(axis=0)
    raise ValueError(f"unknown init {init!r}")


# ---------------------------------------------------------------------------------------
class Activation(Layer):
    """An elementwise layer without parameters: y has the shape of x."""

    def backward(self, dy: Array) -> Array:
        """dy (N, D) -> dx (N, D) = dy · f'(x), elementwise."""
        self.grad_output = dy
        self.grad_input = dy * self.derivative()
        return self.grad_input

    def derivative(self) -> Array:
        """dy/dx elementwise, from the cached forward values."""
        raise NotImplementedError

    def critical(self) -> tuple[float, float]:
        """``(gain, mean)`` for ``mlp(init="orthogonal")``: the gain 1/f'(0) that makes a Linear reading
        this activation start with an orthogonal Jacobian, and f(0), the mean input its bias cancels.

        Computed from this layer's own ``forward``/``backward`` at x = 0 (in float64): 4 and 0.5 for
        the sigmoid, 1 and 0 for tanh. A function with no useful slope at 0 overrides it (ReLU).
        """
        zero = np.zeros((1, 1))
        value = float(self.forward(zero)[0, 0])
        slope = float(self.backward(np.ones((1, 1)))[0, 0])
        self.x = self.y = self.grad_output = self.grad_input = None
        if not (np.isfinite(slope) and slope > 0 and np.isfinite(value)):
            raise ValueError(f"{type(self).__name__} has slope {slope:g} and value {value:g} at 0, so "
                             "init='orthogonal' has no critical gain for it; override critical() to give one")
        return 1.0 / slope, value


class Sigmoid(Activation):
    r"""``y = σ(x) = 1 / (1 + e^{-x})``;  backward ``dx = dy · y (1 - y)``.

    For x < -88 (float32) e^{-x} overflows to inf and 1/(1 + inf) = 0, the correct limit,
    so that overflow is expected and silenced: no warnings for any |x|, even 1e4.
    """

    def forward(self, x: Array) -> Array:
        self.x = x
        self.y = sigmoid(x)
        return self.y

    def derivative(self) -> Array:
        return self.y * (1 - self.y)


def sigmoid(x: Array) -> Array:
    """The logistic function 1 / (1 + e^{-x}), elementwise."""
    xp = backend.array_module(x)
    with np.errstate(over="ignore", under="ignore"):   # e^{-x} = inf or 0 at the ends: the limits are right
        return 1 / (1 + xp.exp(-x))


class Tanh(Activation):
    r"""``y = tanh(x)``;  backward ``dx = dy · (1 - y²)``."""

    def forward(self, x: Array) -> Array:
        self.x = x
        self.y = backend.array_module(x).tanh(x)
        return self.y

    def derivative(self) -> Array:
        return 1 - self.y * self.y


class ReLU(Activation):
    r"""``y = max(x, 0)``;  backward ``dx = dy · [not x <= 0]`` (the subgradient 0 at x = 0).

    Written "not x <= 0" rather than "x > 0" so that a NaN input passes its gradient on (NaN <= 0
    is false), as PyTorch's ReLU does: a NaN is never hidden behind a zero gradient.
    """

    def forward(self, x: Array) -> Array:
        self.x = x
        self.y = backend.array_module(x).maximum(x, 0)
        return self.y

    def derivative(self) -> Array:
        return (~(self.x <= 0)).astype(self.x.dtype)

    def critical(self) -> tuple[float, float]:
        """He's gain √2 and mean 0: no gain makes a ReLU layer's Jacobian orthogonal."""
        return float(np.sqrt(2.0)), 0.0


class LeakyReLU(Activation):
    r"""``y = x`` for x > 0, ``α x`` otherwise;  backward ``dx = dy · (1 if x > 0 else α)``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_number(negative_slope, "LeakyReLU negative_slope")

    def forward(self, x: Array) -> Array:
        self.x = x
        self.y = backend.array_module(x).where(x > 0, x, self.negative_slope * x)
        return self.y

    def derivative(self) -> Array:
        xp = backend.array_module(self.x)
        return xp.where(self.x > 0, 1, self.negative_slope).astype(self.x.dtype)

    def critical(self) -> tuple[float, float]:
        """He's gain √2 and mean 0, as for ReLU."""
        return float(np.sqrt(2.0)), 0.0


class Identity(Activation):
    r"""``y = x``;  backward ``dx = dy``."""

    def forward(self, x: Array) -> Array:
        self.x = self.y = x
        return x

    def backward(self, dy: Array) -> Array:
        self.grad_output = self.grad_input = dy
        return dy


def activations() -> dict[str, type[Activation]]:
    """Every activation class defined so far, by name: ``"sigmoid"``, ``"tanh"``, ``"relu"``,
    ``"leaky_relu"``, ``"identity"``, and any subclass of :class:`Activation` a learner wrote
    (``Softplus`` is ``"softplus"``). No list to keep up to date: a class is known because it
    subclasses Activation (see :mod:`minirai.protocol`)."""
    return named(Activation)


def activation(name: str) -> type[Activation]:
    """The activation class called ``name`` (see :func:`activations`; underscores and case do not
    matter), or a ValueError listing the names."""
    return by_name(Activation, name, "activation")
