r"""The fast twin of ``Sequential.forward``/``backward``, used by the training loops.

It does what the textbook chain does, layer by layer, and leaves the same attributes on
every layer (``x``, ``y``, ``grad_output``, ``grad_input``, ``grads``), with three changes
that cost no accuracy:

* **buffers.** Each layer writes its output and its input gradient into the arrays of its
  last step (``out=``) instead of fresh ones: a deep step otherwise allocates, and page-faults,
  hundreds of megabytes of temporaries. Only the training loops use this chain, and they
  read no layer's buffers after the next step has overwritten them.
* **fused passes.** On the CPU the sigmoid's forward (its exp included, in float32:
  :mod:`minirai.fast.expf`) and its backward are one compiled loop each
  (:mod:`minirai.fast.kernels`).
* **gradients that vanished.** Once the gradient reaching a layer with parameters is exactly
  0 (in deep sigmoid BP, 60-90 of the 101 Linear layers, with the CPU's flush-to-zero on),
  every gradient below is exactly 0 too: each is a sum of products with entries of that
  gradient. The layers below then get their zeros written without the arithmetic. That holds
  only where the layer's input and weights are finite (0 · inf is NaN, and a network can carry
  inf activations while its BCE loss stays finite), so each short-cut layer first checks that
  their sums are finite (an overflowing sum of finite values only costs the real backward).
  Only layers whose backward is a product with dy are short-cut: the built-in ones. On a GPU
  the test for "all zero" would wait for the device, so it is skipped.
* **outputs that cannot have changed** (``Chain(..., reuse=True)``: full-batch training). Where a
  layer's gradient was short-cut to zero, its parameters usually stay as they were (Rprop: a
  zero gradient moves nothing; Adam: once its momentum has decayed to 0), and the input of a
  full batch is the same every step. A layer whose input and parameters have the same bytes as
  at its last forward would compute the same output, so the chain copies that output back from
  its own copy instead (in the proposal's deep BP run, 73-77 of the 101 Linear layers, each step).
  The test is exact: the bytes of the input and of every parameter, compared with copies taken
  at the last forward, from the first layer up; the first layer that differs, and all above it,
  compute. Only the exact classes whose fast forward writes into a buffer (Linear, Sigmoid) and
  layers without hooks take part, on the CPU.

The same functions run a *stack* of G identical layers at once (RAI's stacked path,
:mod:`minirai.fast.stacking`): x (G, N, D_in), W (G, D_in, D_out), b (G, 1, D_out); ``@``
then multiplies matrix by matrix along G, and "transpose" swaps the last two axes.

Every result equals the textbook's bit for bit (tests in ``tests/test_fast_path.py``), up to
the sign of a zero gradient in the short-cut. The inputs and parameters found finite for the
short-cut are not summed again while the forward finds their bytes unchanged and no hook runs
(a hook could write anywhere between a forward and its backward).
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
def linear_forward(layer: Layer, x: Array, buffers: Buffers, add_bias: bool = True) -> Array:
    W, b = layer.params["W"], layer.params["b"]
    y = buffer(buffers, "y", x.shape[:-1] + W.shape[-1:], x)
    backend.array_module(x).matmul(x, W, out=y)       # y = x W ...
    if add_bias:                                      # (a stack of RAI blocks adds b in its hidden loss's pass)
        y += b                                        #     + b
    layer.x, layer.y = x, y
    return y


def linear_backward(layer: Layer, dy: Array, buffers: Buffers, bias_done: bool = False) -> Array:
    xp = backend.array_module(dy)
    W, grads = layer.params["W"], layer.grads
    xp.matmul(transpose(layer.x), dy, out=grads["W"])                          # dW = x^T dy
    if not bias_done:                                 # (a stack of RAI blocks sums db in its hidden loss's pass)
        xp.sum(dy, axis=-2, keepdims=grads["b"].ndim > 1, out=grads["b"])      # db = Σ_i dy_i
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
    if x.dtype == np.float32 and kernels.ready(x, y) and kernels.numpy_exp_matches():
        kernels.kernels()["sigmoid"](x.reshape(-1), y.reshape(-1))   # all of it, in one pass
    else:
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
#: the classes whose fast forward writes its output into the buffer "y": a kept output can be copied back
REUSABLE = (Linear, Sigmoid)


class Chain:
    """``forward``/``backward`` of a list of layers (a Sequential's, or stacked ones), fast.

    ``model``: the Sequential the layers come from, if any; as its ``backward`` does, the chain
    refuses a backward while that model is in eval mode."""

    def __init__(self, layers: list[Layer], model: Any = None, reuse: bool = False) -> None:
        self.layers = list(layers)
        self.model = model
        self.steps = [FAST_LAYERS.get(type(layer), OWN) for layer in self.layers]
        self.buffers: list[Buffers] = [{} for _ in self.layers]
        self.reuse = reuse                # copy back the outputs of an unchanged bottom (full batch)
        self.kept_input: Array | None = None            # a copy of the last forward's input
        # per layer, where worth keeping: its parameters and output at its last forward, as a list of
        # (name, array, its shape, its bytes as words, a copy of those words), the output last
        self.kept: list[list[tuple[str, Array, tuple[int, ...], Array, Array]] | None] = [None] * len(self.layers)
        self.short_cut = [False] * len(self.layers)     # its last backward was the zero short-cut
        self.finite = 0       # layers 0 .. finite-1: inputs and parameters found finite, unchanged since
        #                       (no hook ran since: a hook may write anywhere between forward and backward)
        self.reused = 0       # how many layers, from the first, the last forward copied back

    def forward(self, x: Array) -> Array:
        same = unchanged = self.reuse and self.same_input(x)   # unchanged: the layers below kept their bytes
        self.reused = 0
        if not same or any(layer.hooks for layer in self.layers):
            self.finite = 0
        try:
            for i, (layer, (forward, _, _), buffers) in enumerate(zip(self.layers, self.steps, self.buffers)):
                x_in = x
                if unchanged and self.unchanged(i):
                    x, self.reused = self.copy_back(i, x_in), i + 1
                else:
                    if unchanged:
                        unchanged, self.finite = False, min(self.finite, i)
                    x = forward(layer, x_in, buffers)
                    if same:          # (a new input each step, as in mini-batches: nothing to keep)
                        self.keep(i, x)
                    else:
                        self.kept[i] = None
                layer.run_hooks("forward", x_in, x)
        except BaseException:         # a forward cut short: the copies above it are of an older input
            self.kept = [None] * len(self.layers)
            raise
        return x

    def same_input(self, x: Array) -> bool:
        """Whether ``x`` has the bytes of the last forward's input; if not, ``x`` is kept (a copy) as the
        input to compare the next forward's with."""
        if same_bytes(x, self.kept_input):
            return True
        self.kept_input = x.copy() if type(x) is np.ndarray and x.flags.c_contiguous else None
        return False

    def unchanged(self, i: int) -> bool:
        """Whether layer ``i``, given the input of its last forward, would compute its kept output: the
        same parameter arrays, with the bytes they had then."""
        kept, layer = self.kept[i], self.layers[i]
        if kept is None or layer.hooks or len(kept) != len(layer.params) + 1:
            return False
        _, y, shape, _, _ = kept[-1]
        if y is not self.buffers[i].get("y") or y.shape != shape:    # (its buffer replaced or reshaped)
            return False
        for (name, array, shape, words, copy), (now_name, now) in zip(kept, layer.params.items()):
            if name != now_name or now is not array or now.shape != shape or not same_words(words, copy):
                return False
        return True

    def copy_back(self, i: int, x: Array) -> Array:
        """Layer ``i``'s kept output, back in its buffer (copied where it was changed since), and the
        attributes its forward sets."""
        layer, (_, y, _, words, copy) = self.layers[i], self.kept[i][-1]
        if not same_words(words, copy):
            np.copyto(words, copy)
        layer.x, layer.y = x, y
        return y

    def keep(self, i: int, y: Array) -> None:
        """Copies of layer ``i``'s parameters and output ``y``, if it may be unchanged at the next forward:
        its gradient was short-cut to zero, and it is of a class that writes its output into a buffer."""
        layer = self.layers[i]
        arrays = [*layer.params.items(), ("output", y)]
        if not (self.short_cut[i] and type(layer) in REUSABLE and not layer.hooks and y is self.buffers[i].get("y")
                and all(type(a) is np.ndarray and a.flags.c_contiguous for _, a in arrays)):
            self.kept[i] = None
            return
        old = {name: copy for name, _, _, _, copy in self.kept[i] or ()}   # (copies reused where they fit)
        kept = []
        for name, a in arrays:
            words = as_words(a)
            copy = old.get(name)
            if copy is None or copy.shape != words.shape or copy.dtype != words.dtype:
                copy = np.empty_like(words)
            np.copyto(copy, words)
            kept.append((name, a, a.shape, words, copy))
        self.kept[i] = kept

    def backward(self, dy: Array) -> Array:
        if self.model is not None and not self.model.training:
            self.model.backward(dy)                 # its clear error: no backward in eval mode
        vanished = False      # True once dy is exactly 0: then every gradient below is 0 too
        for i in range(len(self.layers) - 1, -1, -1):
            layer, (_, backward, backward_zero), buffers = self.layers[i], self.steps[i], self.buffers[i]
            dy_in = dy
            self.short_cut[i] = vanished and backward_zero is not None
            if self.short_cut[i]:
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
        """:func:`finite_inputs` of layers ``0 .. i-1``, except those found finite before whose bytes the
        forward found unchanged since, with no hook run (``self.finite``); if that is all of them, a
        packed model's parameters are judged at once, by the sum of its one flat array (one pass
        instead of one per array)."""
        first = self.finite
        if first >= i:
            return True
        if first > 0 or getattr(self.model, "packed", None) is None or type(self.model.packed.params) is not np.ndarray:
            finite = finite_inputs(self.layers[first:i])
        else:
            flat = self.model.packed.params
            with np.errstate(over="ignore", invalid="ignore"):
                finite = bool(np.isfinite(flat.sum()))
            # a parameter replaced by an array of its own since packing is not in the flat sum
            loose = [layer for layer in self.layers[:i] if any(p.base is not flat for p in layer.params.values())]
            finite = finite and finite_inputs(self.layers[:i], params=False) and finite_inputs(loose)
        if finite:
            self.finite = i
        return finite


def finite_inputs(layers: list[Layer], params: bool = True) -> bool:
    """True if the inputs and parameters of the layers with parameters hold no inf or NaN.

    Judged by their sums (a sum of finite values that overflows only costs the real backward).
    Activations need no check: their derivatives are finite for any finite or infinite input,
    and a NaN input is the NaN output of the layer before, which the next layer's input shows.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return all(bool(np.isfinite(a.sum())) for layer in layers if layer.params
                   for a in ((layer.x, *layer.params.values()) if params else (layer.x,)))


def same_bytes(a: Array, b: Array) -> bool:
    """True if two CPU arrays have the same shape, dtype, C-contiguous layout and bytes: any computation
    gives the same result on both (a zero's sign and a NaN's payload included)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.shape != b.shape or a.dtype != b.dtype \
            or not (a.flags.c_contiguous and b.flags.c_contiguous):
        return False
    return same_words(as_words(a), as_words(b))


def as_words(a: Array) -> Array:
    """A C-contiguous CPU array's bytes, as a flat array of 8-byte integers (4-byte, or 1-byte, where its
    size in bytes is not a multiple of 8, or of 4)."""
    return a.reshape(-1).view("u8" if a.nbytes % 8 == 0 else "u4" if a.nbytes % 4 == 0 else "u1")


def same_words(a: Array, b: Array) -> bool:
    """Whether two :func:`as_words` arrays of one length hold the same values."""
    return kernels.kernels()["same_words"](a, b) if kernels.available() else bool(np.array_equal(a, b))


def all_zero(a: Array) -> bool:
    """True if every entry of a CPU array is 0 (on a GPU: False, to avoid waiting for the device)."""
    return type(a) is np.ndarray and not a.any()
