"""Sequential: a chain of layers, run forward in order and backward in reverse.

Chained backprop is nothing more than this loop::

    for layer in layers:            x  = layer.forward(x)
    for layer in reversed(layers):  dy = layer.backward(dy)

There is no graph and no recursion, so a 101-layer net is as easy to step
through as a 3-layer one. A Sequential is also the *block* type inside RAI: the
RAI trainer cuts one chain into several Sequentials that share its layers.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from . import backend
from .packing import Packed, Slot, pack
from .layers import Activation, Layer, Linear
from .protocol import by_name
from .validate import check_bool, check_number, check_seed

Array = Any


class Sequential:
    """A chain of layers. ``forward(x)`` returns the output; ``backward(dy)`` returns dL/dx."""

    def __init__(self, *layers: Layer | Sequence[Layer]) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} must be a minirai Layer, got {type(layer).__name__}")
        check_distinct(layers)
        self.layers: list[Layer] = list(layers)
        self.training = True
        self.packed: Packed | None = None   # set by pack(): the flat arrays behind the parameters
        check_widths(self.layers)

    # -- the chain --------------------------------------------------------------------------
    def forward(self, x: Array) -> Array:
        """x (N, D_in) -> the last layer's output (N, D_out), layer by layer."""
        for i, layer in enumerate(self.layers):
            self.check_input(i, x)
            x_in, x = x, layer.forward(x)
            layer.run_hooks("forward", x_in, x)
            if not self.training:   # eval mode: no backward follows, so keep no cache (a 10,000-point
                drop_cache(self.layers, i)   # grid through 200 layers would otherwise hold every activation)
        return x

    __call__ = forward

    def backward(self, dy: Array) -> Array:
        """dy = dL/d(output) (N, D_out) -> dL/dx (N, D_in); every layer sets its grads on the way."""
        if not self.training:
            raise RuntimeError("backward() in eval mode: eval-mode forwards keep no cache for it; "
                               "call model.train() and run forward again")
        for layer in reversed(self.layers):
            dy_in, dy = dy, layer.backward(dy)
            layer.run_hooks("backward", dy_in, dy)
        return dy

    def check_input(self, i: int, x: Array) -> None:
        """A clear error when layer ``i`` cannot take ``x`` (the first: not a float array; any: its width)."""
        if i == 0 and not (isinstance(x, np.ndarray) or backend.is_device_array(x)):
            raise TypeError(f"Sequential.forward: x must be a NumPy or CuPy array, got {type(x).__name__}; "
                            "convert it with numpy.asarray(x, dtype=numpy.float32)")
        if i == 0 and x.dtype.kind != "f":
            raise TypeError(f"Sequential.forward: x must be a float array, got dtype {x.dtype}; convert it "
                            f"with x.astype({str(self.dtype)!r})")
        layer = self.layers[i]
        if layer.in_features is not None and x.shape[-1] != layer.in_features:
            raise ValueError(f"layer {i} ({layer!r}) expects inputs of shape (N, {layer.in_features}), "
                             f"got {tuple(x.shape)}")

    # -- parameters ---------------------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, Array, Array]]:
        """``[(name, param, grad), ...]`` with names like ``"0.W"`` (layer index . key)."""
        return [(f"{i}.{key}", layer.params[key], layer.grads[key])
                for i, layer in enumerate(self.layers) for key in layer.params]

    def parameters(self) -> list[tuple[Array, Array]]:
        """``[(param, grad), ...]``: what an optimizer takes."""
        return [(p, g) for _, p, g in self.named_parameters()]

    def pack(self) -> Packed:
        """Move all parameters into one flat array (see :mod:`minirai.packing`).

        Each ``layer.params[...]`` becomes a view of that array, so everything reads the same,
        and the fast path updates all of them in one sweep. Call it before anything keeps a
        reference to the parameters (an optimizer): those would still point at the old arrays.
        """
        keys = list(dict.fromkeys(key for layer in self.layers for key in layer.params))
        self.packed = pack([Slot(layer.params, layer.grads, key)
                            for key in keys for layer in self.layers if key in layer.params])
        return self.packed

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def train(self) -> "Sequential":
        self.training = True
        for layer in self.layers:
            layer.train()
        return self

    def eval(self) -> "Sequential":
        self.training = False
        for layer in self.layers:
            layer.eval()
        return self

    def to(self, module: Any = None) -> "Sequential":
        """Move every parameter to ``module`` (default: the active backend); packed stays packed.

        Arrays already there stay the same arrays. Arrays that move are new arrays: an optimizer
        made before the move still holds the old ones, so make it after.
        """
        before = [id(p) for p, _ in self.parameters()]
        for layer in self.layers:
            layer.to(module)
        if self.packed is not None and [id(p) for p, _ in self.parameters()] != before:
            self.pack()
        return self

    @property
    def in_features(self) -> int | None:
        return next((layer.in_features for layer in self.layers if layer.in_features is not None), None)

    @property
    def out_features(self) -> int | None:
        return next((layer.out_features for layer in reversed(self.layers) if layer.out_features is not None), None)

    @property
    def dtype(self) -> np.dtype:
        for layer in self.layers:
            for p in layer.params.values():
                return p.dtype
        return np.dtype(backend.DEFAULT_DTYPE)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        return self.layers[index]

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


def forget_arrays(layers: Iterable[Layer]) -> None:
    """Let go of what each layer keeps of its last forward and backward (``x``, ``y``, ``grad_output``,
    ``grad_input``): for a trainer that keeps no activations (``RAI(..., keep_activations=False)``)."""
    for layer in layers:
        layer.x = layer.y = layer.grad_output = layer.grad_input = None


def drop_cache(layers: Sequence[Layer], i: int) -> None:
    """After layer ``i``'s forward in eval mode: nothing needs its input, or the output before it."""
    layers[i].x = None
    if i > 0:
        layers[i - 1].y = None


def check_distinct(layers: Sequence[Layer]) -> None:
    """Each layer object may appear once: a layer keeps the ``x`` and ``y`` of its last forward for its
    backward, so a second use would overwrite what the first one's backward needs (PyTorch's autograd
    keeps each call's inputs itself, which is why it can reuse a module; minirai's layers keep theirs
    as plain attributes, for a learner to read)."""
    first_seen: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if id(layer) in first_seen:
            j = first_seen[id(layer)]
            raise ValueError(f"layer {i} is the same object as layer {j} ({layer!r}); each layer keeps the input of "
                             f"its last forward for its backward, so it can appear only once: make a second "
                             f"instance, for example {type(layer).__name__}(...) again")
        first_seen[id(layer)] = i


def check_widths(layers: Sequence[Layer]) -> None:
    """Each layer with a fixed input width must receive the width of the previous one."""
    width, source = None, None
    for i, layer in enumerate(layers):
        if layer.in_features is not None and width is not None and layer.in_features != width:
            raise ValueError(f"width mismatch: layer {source} outputs shape (N, {width}) but layer {i} "
                             f"({layer!r}) expects (N, {layer.in_features})")
        if layer.out_features is not None:
            width, source = layer.out_features, i


ActivationSpec = str | type[Layer] | Callable[[], Layer] | None


def make_activation(spec: ActivationSpec, what: str) -> Callable[[], Layer] | None:
    """What builds one activation layer: a name (``"relu"``, see :func:`minirai.layers.activations`), a
    Layer class (called with no arguments) or a function that returns a new layer; None for none."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return by_name(Activation, spec, f"mlp: {what}")
    if isinstance(spec, type) and issubclass(spec, Layer):
        return spec
    if callable(spec) and not isinstance(spec, Layer):
        return spec
    raise TypeError(f"mlp: {what} must be a name such as 'relu', a Layer class, or a function that returns a new "
                    f"layer (one instance per position), got {spec!r}")


def mlp(sizes: Sequence[int], activation: ActivationSpec = "relu", output_activation: ActivationSpec = "sigmoid",
        *, init: str = "uniform", seed: int | None = 0, dtype: Any = None, packed: bool = True) -> Sequential:
    """A multilayer perceptron: Linear layers of ``sizes``, ``activation`` between them.

    ``mlp([2, 42, 100, 100, 42, 1], "relu", "sigmoid")`` is the proposal's shallow net;
    ``mlp([2] + [100] * 100 + [1], "sigmoid", "sigmoid")`` its deep one. An activation is a name
    (:func:`minirai.layers.activations` lists them, a learner's own Activation subclasses included),
    a Layer class, or a function that makes one (``lambda: LeakyReLU(0.2)``); None leaves it out.
    All layers draw their weights from one generator seeded with ``seed``. With ``packed`` (the
    default) the parameters are views of one flat array from the start (see :meth:`Sequential.pack`),
    which the fast path updates in one sweep; the numbers are the same either way.

    ``init="orthogonal"`` is a critical orthogonal initialisation (Saxe et al., 2014; Pennington,
    Schoenholz & Ganguli, 2017): every Linear after the first gets orthogonal weights times the
    gain of the activation it reads and the bias that cancels that activation's value at 0, both
    from :meth:`~minirai.layers.Activation.critical` (4 = 1/σ'(0) and ½ after a sigmoid, 1 and 0
    after tanh, He's √2 after ReLU). For sigmoid and tanh this makes each layer's Jacobian start
    orthogonal, so gradients neither vanish nor explode with depth; since σ(x) = ½ + ½ tanh(x/2),
    every sigmoid layer after the first then acts, on halved pre-activations, as a tanh layer with
    orthogonal weights of gain 1 and no bias, the critical point for tanh. (ReLU nets get He's
    variance gain; they cannot be made isometric this way.) The first Linear reads the raw inputs:
    gain 1, bias 0.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"mlp: sizes must be a list of layer widths such as [2, 16, 1], got {sizes!r}")
    for size in sizes:
        check_number(size, "mlp: each of sizes", low=1, integer=True)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {list(sizes)}")
    check_seed(seed, "mlp: seed")
    packed = check_bool(packed, "mlp: packed")
    if init not in Linear.INITS:
        raise ValueError(f"mlp: init must be one of {Linear.INITS}, got {init!r}")
    hidden = make_activation(activation, "activation")
    output = make_activation(output_activation, "output_activation")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        gain, input_mean = (1.0, 0.0)
        if init == "orthogonal" and i > 0 and hidden is not None:
            gain, input_mean = critical_of(layers[-1])
        layers.append(Linear(fan_in, fan_out, init=init, rng=rng, dtype=dtype, gain=gain, input_mean=input_mean))
        make = output if i == len(sizes) - 2 else hidden
        if make is not None:
            layer = make()
            if not isinstance(layer, Layer):
                raise TypeError(f"mlp: the activation function returned {type(layer).__name__}, not a minirai Layer")
            layers.append(layer)
    model = Sequential(layers)
    if packed:
        model.pack()
    return model


def critical_of(layer: Layer) -> tuple[float, float]:
    """The critical ``(gain, mean)`` of the activation a Linear reads, or a clear error (``mlp``'s orthogonal init)."""
    if not isinstance(layer, Activation):
        raise TypeError(f"mlp(init='orthogonal') needs an Activation before each Linear, got {type(layer).__name__}; "
                        "subclass minirai.layers.Activation (it gives critical()) or use another init")
    gain, mean = layer.critical()
    return float(gain), float(mean)
