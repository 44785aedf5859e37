r"""The fast twin of ``Sequential.forward``/``backward``, used by the training loops.

It does what the textbook chain does, layer by layer, and leaves the same attributes on
every layer (``x``, ``y``, ``grad_output``, ``grad_input``, ``grads``), with three changes
that cost no accuracy:

* **buffers.** Each layer writes its output and its input gradient into the arrays of its
  last step (``out=``) instead of fresh ones: a deep step otherwise allocates, and page-faults,
  hundreds of megabytes of temporaries. Only the training loops use this chain, and they
  keep no layer's output beyond the step that made it.
* **fused passes.** On the CPU the sigmoid's passes after the exp, and its backward, are one
  compiled loop each (:mod:`minirai.fast.kernels`).
* **gradients that vanished.** Once the gradient reaching a layer with parameters is exactly
  0 (in deep sigmoid BP, 60-90 of the 101 Linear layers, with the CPU's flush-to-zero on),
  every gradient below is exactly 0 too: each is a sum of products with entries of that
  gradient. The layers below then get their zeros written without the arithmetic. That holds
  only where the layer's input and weights are finite (0 · inf is NaN, and a network can carry
  inf activations while its BCE loss stays finite), so each short-cut layer first checks that
  their sums are finite (an overflowing sum of finite values only costs the real backward).
  Only layers whose backward is a product with dy are short-cut: the built-in ones. On a GPU
  the test for "all zero" would wait for the device, so it is skipped.

The same functions run a *stack* of G identical layers at once (RAI's stacked path,
:mod:`minirai.fast.stacking`): x (G, N, D_in), W (G, D_in, D_out), b (G, 1, D_out); ``@``
then multiplies matrix by matrix along G, and "transpose" swaps the last two axes.

Every result equals the textbook's bit for bit (tests in ``tests/test_fast_path.py``), up to
the sign of a zero gradient in the short-cut.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import backend
from ..layers import Identity, LeakyReLU, Layer, Linear, ReLU, Sigmoid, Tanh
from . import kernels

Array = Any
Buffers = dict[str, Array]


def buffer(buffers: Buffers, name: str, shape: tuple[int, ...], like: Array) -> Array:
    """The array ``buffers[name]`` if it has this shape, dtype and device, else a new one kept there."""
    kept = buffers.get(name)
    if kept is None or kept.shape != shape or kept.dtype != like.dtype or type(kept) is not type(like):
        kept = buffers[name] = backend.array_module(like).empty(shape, like.dtype)
    return kept


def transpose(a: Array) -> Array:
    """Swap the last two axes: ``a.T`` for a matrix, each matrix transposed for a stack of them."""
    return a.swapaxes(-1, -2)


# -- each layer type's forward and backward, into buffers -----------------------------------------
def linear_forward(layer: Layer, x: Array, buffers: Buffers) -> Array:
    W, b = layer.params["W"], layer.params["b"]
    y = buffer(buffers, "y", x.shape[:-1] + W.shape[-1:], x)
    backend.array_module(x).matmul(x, W, out=y)       # y = x W ...
    y += b                                            #     + b
    layer.x, layer.y = x, y
    return y


def linear_backward(layer: Layer, dy: Array, buffers: Buffers) -> Array:
    xp = backend.array_module(dy)
    W, grads = layer.params["W"], layer.grads
    xp.matmul(transpose(layer.x), dy, out=grads["W"])                          # dW = x^T dy
    xp.sum(dy, axis=-2, keepdims=grads["b"].ndim > 1, out=grads["b"])          # db = Σ_i dy_i
    dx = buffer(buffers, "dx", dy.shape[:-1] + W.shape[-2:-1], dy)
    xp.matmul(dy, transpose(W), out=dx)                                        # dx = dy W^T
    layer.grad_output, layer.grad_input = dy, dx
    return dx


def linear_backward_zero(layer: Layer, dy: Array, buffers: Buffers) -> Array:
    for g in layer.grads.values():
        g.fill(0)
    dx = buffer(buffers, "dx", layer.x.shape, dy)
    dx.fill(0)
    layer.grad_output, layer.grad_input = dy, dx
    return dx


def sigmoid_forward(layer: Layer, x: Array, buffers: Buffers) -> Array:
    xp = backend.array_module(x)
    y = buffer(buffers, "y", x.shape, x)
    xp.negative(x, out=y)
    with np.errstate(over="ignore", under="ignore"):  # as in layers.sigmoid
        xp.exp(y, out=y)                              # e^{-x}
        if kernels.ready(y):
            kernels.kernels()["sigmoid_finish"](y.reshape(-1))
        else:
            y += 1
            xp.reciprocal(y, out=y)                   # 1 / (1 + e^{-x})
    layer.x, layer.y = x, y
    return y


def sigmoid_backward(layer: Layer, dy: Array, buffers: Buffers) -> Array:
    xp = backend.array_module(dy)
    y = layer.y
    if dy.dtype != y.dtype:                           # (a float64 dy on float32 activations: the
        return layer.backward(dy)                     #  textbook's type promotion, as it does it)
    dx = buffer(buffers, "dx", dy.shape, dy)
    if kernels.ready(dy, y, dx):
        kernels.kernels()["sigmoid_backward"](dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    else:
        xp.subtract(1, y, out=dx)                     # 1 - y
        dx *= y                                       # y (1 - y)
        xp.multiply(dy, dx, out=dx)                   # dy · (y (1 - y))
    layer.grad_output, layer.grad_input = dy, dx
    return dx


def activation_backward_zero(layer: Layer, dy: Array, buffers: Buffers) -> Array:
    """dx = dy · f'(x) = dy when dy is exactly 0 and f' is finite: pass the zeros on."""
    layer.grad_output = layer.grad_input = dy
    return dy


def own_forward(layer: Layer, x: Array, buffers: Buffers) -> Array:
    return layer.forward(x)


def own_backward(layer: Layer, dy: Array, buffers: Buffers) -> Array:
    return layer.backward(dy)


Step = Callable[[Layer, Array, Buffers], Array]
#: (forward, backward, backward when dy is exactly 0) per layer class; others use their own methods
FAST_LAYERS: dict[type, tuple[Step, Step, Step | None]] = {
    Linear: (linear_forward, linear_backward, linear_backward_zero),
    Sigmoid: (sigmoid_forward, sigmoid_backward, activation_backward_zero),
    Tanh: (own_forward, own_backward, activation_backward_zero),
    ReLU: (own_forward, own_backward, activation_backward_zero),
    LeakyReLU: (own_forward, own_backward, activation_backward_zero),
    Identity: (own_forward, own_backward, activation_backward_zero),
}
OWN: tuple[Step, Step, Step | None] = (own_forward, own_backward, None)


class Chain:
    """``forward``/``backward`` of a list of layers (a Sequential's, or stacked ones), fast.

    ``model``: the Sequential the layers come from, if any; as its ``backward`` does, the chain
    refuses a backward while that model is in eval mode."""

    def __init__(self, layers: list[Layer], model: Any = None) -> None:
        self.layers = list(layers)
        self.model = model
        self.steps = [FAST_LAYERS.get(type(layer), OWN) for layer in self.layers]
        self.buffers: list[Buffers] = [{} for _ in self.layers]

    def forward(self, x: Array) -> Array:
        for layer, (forward, _, _), buffers in zip(self.layers, self.steps, self.buffers):
            x_in, x = x, forward(layer, x, buffers)
            layer.run_hooks("forward", x_in, x)
        return x

    def backward(self, dy: Array) -> Array:
        if self.model is not None and not self.model.training:
            self.model.backward(dy)                 # its clear error: no backward in eval mode
        vanished = False      # True once dy is exactly 0: then every gradient below is 0 too
        for i in range(len(self.layers) - 1, -1, -1):
            layer, (_, backward, backward_zero), buffers = self.layers[i], self.steps[i], self.buffers[i]
            dy_in = dy
            if vanished and backward_zero is not None:
                dy = backward_zero(layer, dy, buffers)
            else:
                dy = backward(layer, dy, buffers)
                # test before a layer with parameters (its matrix products are what the short-cut saves);
                # below it, every layer's input and weights must be finite for the zeros to be exact
                vanished = (i > 0 and bool(self.layers[i - 1].params) and all_zero(dy)
                            and self.finite_below(i))
            layer.run_hooks("backward", dy_in, dy)
        return dy


    def finite_below(self, i: int) -> bool:
        """:func:`finite_inputs` of layers ``0 .. i-1``; a packed model's parameters are judged all at
        once, by the sum of its one flat array (one pass instead of one per array)."""
        packed = getattr(self.model, "packed", None)
        if packed is None or type(packed.params) is not np.ndarray:
            return finite_inputs(self.layers[:i])
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(packed.params.sum()):
                return False
        return finite_inputs(self.layers[:i], params=False)


def finite_inputs(layers: list[Layer], params: bool = True) -> bool:
    """True if the inputs and parameters of the layers with parameters hold no inf or NaN.

    Judged by their sums (a sum of finite values that overflows only costs the real backward).
    Activations need no check: their derivatives are finite for any finite or infinite input,
    and a NaN input is the NaN output of the layer before, which the next layer's input shows.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return all(bool(np.isfinite(a.sum())) for layer in layers if layer.params
                   for a in ((layer.x, *layer.params.values()) if params else (layer.x,)))


def all_zero(a: Array) -> bool:
    """True if every entry of a CPU array is 0 (on a GPU: False, to avoid waiting for the device)."""
    return type(a) is np.ndarray and not a.any()
