"""Sequential: a chain of layers, run forward in order and backward in reverse.

Chained backprop is nothing more than this loop::

    for layer in layers:            x  = layer.forward(x)
    for layer in reversed(layers):  dy = layer.backward(dy)

There is no graph and no recursion, so a 101-layer net is as easy to step
through as a 3-layer one. A Sequential is also the *block* type inside RAI: the
RAI trainer cuts one chain into several Sequentials that share its layers.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from . import backend, fused
from .denormals import flushing_denormals
from .layers import ACTIVATIONS, Layer, Linear
from .packing import Packed, Slot, pack

Array = Any


class Sequential:
    """A chain of layers. ``forward(x)`` returns the output; ``backward(dy)`` returns dL/dx."""

    def __init__(self, *layers: Layer | Sequence[Layer]) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} must be a minirai Layer, got {type(layer).__name__}")
        self.layers: list[Layer] = list(layers)
        self.training = True
        self.packed: Packed | None = None
        #: set gradients below 2^-100 (float32) to 0 before each layer with parameters (see
        #: flush_subnormals); on by default because CPUs slow down ~50x on subnormal numbers
        self.flush_subnormals = True
        #: once the gradient reaching a layer with parameters is exactly 0, give every layer below
        #: exact zeros without the arithmetic (see Layer.backward_zero); CPU only
        self.skip_zero_gradients = True
        check_widths(self.layers)

    # -- the chain --------------------------------------------------------------------------
    def forward(self, x: Array) -> Array:
        for i, layer in enumerate(self.layers):
            if layer.in_features is not None and x.shape[-1] != layer.in_features:
                raise ValueError(f"layer {i} ({layer!r}) expects inputs of shape (N, {layer.in_features}), "
                                 f"got {tuple(x.shape)}")
            x_in = x
            x = layer.forward(x)
            for hook in layer.hooks:
                hook(layer, "forward", x_in, x)
            if not self.training:   # eval mode: no backward follows, so keep no cache (a 10,000-point
                layer.x = None      # grid through 200 layers would otherwise hold every activation)
                if i > 0:
                    self.layers[i - 1].y = None
        return x

    __call__ = forward

    def backward(self, dy: Array) -> Array:
        if not self.training:
            raise RuntimeError("backward() in eval mode: eval-mode forwards keep no cache for it; "
                               "call model.train() and run forward again")
        vanished = False     # True once dy is exactly 0: then every gradient below is 0 too
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            dy_in = dy
            dy = layer.backward_zero(dy) if vanished else layer.backward(dy)
            if i > 0 and self.layers[i - 1].params and not vanished:   # before a layer's matmuls
                if self.flush_subnormals:
                    flush_subnormals(dy)
                vanished = self.skip_zero_gradients and all_zero(dy)
            for hook in layer.hooks:
                hook(layer, "backward", dy_in, dy)
        return dy

    # -- parameters ---------------------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, Array, Array]]:
        """``[(name, param, grad), ...]`` with names like ``"0.W"`` (layer index . key)."""
        return [(f"{i}.{key}", layer.params[key], layer.grads[key])
                for i, layer in enumerate(self.layers) for key in layer.params]

    def parameters(self) -> list[tuple[Array, Array]]:
        """``[(param, grad), ...]``: what an optimizer takes."""
        return [(p, g) for _, p, g in self.named_parameters()]

    def pack(self) -> Packed:
        """Move all parameters into one flat array (see :mod:`minirai.packing`) for faster updates.

        Each ``layer.params[...]`` becomes a view of that array, so everything reads the same,
        and an optimizer updates all of them in one sweep. Call it before anything keeps a
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
        """Move every parameter to ``module`` (default: the active backend); packed stays packed."""
        for layer in self.layers:
            layer.to(module)
        if self.packed is not None:
            self.pack()
        return self

    @property
    def in_features(self) -> int | None:
        return next((l.in_features for l in self.layers if l.in_features is not None), None)

    @property
    def out_features(self) -> int | None:
        return next((l.out_features for l in reversed(self.layers) if l.out_features is not None), None)

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


def flush_subnormals(a: Array) -> None:
    """Set the entries of a gradient ``a`` that are too small to matter, and slow, to 0.

    In a deep sigmoid chain the backward gradient shrinks by ~7x per layer until it falls below
    float32's smallest normal number (1.2e-38). Below that, *subnormal* numbers keep a few bits,
    and CPUs compute with them ~50x slower (a microcode assist per operation): a band of layers
    full of them made a deep BP step 10x slower. Flushing at 1.2e-38 is not enough, since the
    products of a gradient just above it (dy · W and x · dy in the next Linear layer's matrix
    multiplications) are subnormal again. So entries below ``flush_threshold(dtype)`` = 2^-100 ≈ 7.9e-31 in float32 (2^-996 in
    float64) are set to 0: 26 binary orders above the subnormals, so that no product with a
    weight or an activation above 2^-26 ≈ 1.5e-8 can become subnormal.

    This changes only gradients below 7.9e-31, which no optimizer step can use except by their
    sign (Rprop): in the deep BP run they are the layers just below where the gradient vanishes
    to exactly 0 anyway. It cannot help where both factors of a product are small (a saturated
    sigmoid's activation of 1e-20 times a gradient of 1e-25): inside ``fit`` and ``RAI.fit`` the
    CPU's own flush-to-zero switch catches those (:mod:`minirai.denormals`). Turn both off with
    ``model.flush_subnormals = False`` for strict IEEE arithmetic (what PyTorch does by default
    on the CPU); GPUs are left alone (no slowdown there).
    """
    if backend.is_device_array(a):
        return
    threshold = flush_threshold(a.dtype)
    if fused.ready(a):                      # the line below as one loop (minirai.fused)
        fused.kernels()["flush_small"](a.reshape(-1), a.dtype.type(threshold))
        return
    xp = backend.array_module(a)
    xp.copyto(a, 0, where=xp.abs(a) < threshold)


def all_zero(a: Array) -> bool:
    """True if every entry of a CPU array is 0 (on a GPU: False, to avoid waiting for the device).

    Used by ``Sequential.backward``: in the deep sigmoid chain, BP's gradient is exactly 0
    (after the flush) in the bottom 60-90 of 101 layers, and those layers' matrix products
    would only multiply zeros.
    """
    return not backend.is_device_array(a) and not a.any()


def flush_threshold(dtype: Any) -> float:
    """2^(smallest normal exponent + 26): 2^-100 for float32, 2^-996 for float64."""
    dtype = np.dtype(dtype)
    if dtype not in _THRESHOLDS:            # remembered: np.finfo takes microseconds, called per layer
        _THRESHOLDS[dtype] = float(np.ldexp(1.0, np.finfo(dtype).minexp + 26))
    return _THRESHOLDS[dtype]


_THRESHOLDS: dict[np.dtype, float] = {}


def check_widths(layers: Sequence[Layer]) -> None:
    """Each layer with a fixed input width must receive the width of the previous one."""
    width, source = None, None
    for i, layer in enumerate(layers):
        if layer.in_features is not None and width is not None and layer.in_features != width:
            raise ValueError(f"width mismatch: layer {source} outputs shape (N, {width}) but layer {i} "
                             f"({layer!r}) expects (N, {layer.in_features})")
        if layer.out_features is not None:
            width, source = layer.out_features, i


def mlp(sizes: Sequence[int], activation: str = "relu", output_activation: str | None = "sigmoid", *,
        init: str = "uniform", seed: int | None = 0, dtype: Any = None, packed: bool = True) -> Sequential:
    """A multilayer perceptron: Linear layers of ``sizes``, ``activation`` between them.

    ``mlp([2, 42, 100, 100, 42, 1], "relu", "sigmoid")`` is the proposal's shallow net;
    ``mlp([2] + [100] * 100 + [1], "sigmoid", "sigmoid")`` its deep one. All layers draw
    their weights from one generator seeded with ``seed``. With ``packed`` (the default)
    the parameters are views of one flat array from the start (see :meth:`Sequential.pack`).
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {list(sizes)}")
    for name in (activation, output_activation):
        if name is not None and name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(fan_in, fan_out, init=init, rng=rng, dtype=dtype))
        last = i == len(sizes) - 2
        name = output_activation if last else activation
        if name is not None:
            layers.append(ACTIVATIONS[name]())
    model = Sequential(layers)
    if packed:
        model.pack()
    return model


@contextmanager
def reusing_buffers(model: Sequential) -> Iterator[None]:
    """Inside a training loop, let every layer write into the arrays of its last call.

    Safe there because nothing keeps a layer's output beyond the step that made it; outside,
    each forward returns fresh arrays again (see :meth:`minirai.layers.Layer.buffer`).
    """
    saved = [layer.reuse_buffers for layer in model.layers]
    for layer in model.layers:
        layer.reuse_buffers = True
    try:
        yield
    finally:
        for layer, value in zip(model.layers, saved):
            layer.reuse_buffers = value


@contextmanager
def training_loop(model: Sequential, threads: int | None = None) -> Iterator[None]:
    """What ``fit`` and ``RAI.fit`` run their steps inside, for speed on the CPU.

    * the layers reuse their arrays from step to step (:func:`reusing_buffers`);
    * NumPy's BLAS uses ``threads`` threads, default 1 (:func:`minirai.backend.blas_threads`);
    * the CPU flushes subnormal numbers to 0 (:func:`minirai.denormals.flushing_denormals`),
      unless ``model.flush_subnormals`` is False (strict IEEE arithmetic).
    """
    with reusing_buffers(model), backend.blas_threads(threads), flushing_denormals(model.flush_subnormals):
        yield
