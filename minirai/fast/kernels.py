r"""Fused CPU kernels: several elementwise operations as one loop, compiled by Numba.

Why: NumPy runs one pass over the whole array per operation. Rprop's update is about ten
operations, so a deep RAI step (2 million parameters and table entries) spent ~10 ms in
ten passes. A compiled loop reads each value once and does all ten operations on it.

The reference is the textbook code each kernel stands for: each optimizer's ``update``
(:mod:`minirai.optim`) and ``Sigmoid.forward``/``backward`` (:mod:`minirai.layers`). Each
kernel does the same arithmetic in the same order and in the same dtype (every scalar is
passed already converted to the arrays' dtype, as NumPy converts a Python float), so it gives
the same numbers bit for bit, signed zeros and NaN included; ``tests/test_fast_kernels.py``
compares the bytes. One detail needs care: Numba's ``np.sign(-0.0)`` is -0.0 where NumPy's is
+0.0, so the Rprop kernel writes the sign out.

Written for the compiler: each loop reads its inputs and writes its outputs once, and a
kernel that works in place takes the array once (``sigmoid_finish(e)``, not ``(e, out)``
with ``out is e``), so that LLVM can use vector instructions without checking for overlap.
Sums are where the order matters. NumPy adds a contiguous run *pairwise* (eight running sums
in vector registers), which a compiled loop may not reorder into, so a mean of squares stays
in NumPy (a pairwise sum written here was twice as slow as NumPy's). A sum over rows NumPy adds
one row after the other, starting from 0, and so does ``linear_mse_backward``'s bias gradient.

:mod:`minirai.fast.expf` adds two kernels made of machine operations (a fused multiply-add, a
float's bits): NumPy's float32 ``exp``, and with it the whole sigmoid in one pass.

Numba is a dependency of minirai, but if it cannot be imported everything still works, on
NumPy. Kernels are compiled on first use (about a second) and cached on disk.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

_kernels: dict[str, Callable[..., None]] | None = None
_unavailable_reason: str | None = None
_exp_matches: bool | None = None


def available() -> bool:
    """True where the kernels can be compiled (Numba imports)."""
    return kernels() is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True)."""
    kernels()
    return _unavailable_reason


def kernels() -> dict[str, Callable[..., None]] | None:
    """The compiled kernels by name (built on first call), or None without Numba."""
    global _kernels, _unavailable_reason
    if _kernels is None and _unavailable_reason is None:
        try:
            import numba  # noqa: PLC0415 - imported when first needed: it takes ~0.3 s
        except Exception as error:   # not installed, or no wheel for this platform
            _unavailable_reason = f"numba is not available ({error})"
            return None
        jit = numba.njit(cache=True, nogil=True, error_model="numpy")   # numpy: x / 0 is inf, no check
        _kernels = {name: jit(function) for name, function in PYTHON_KERNELS.items()}
        try:      # NumPy's float32 exp, for the one-pass sigmoid (see numpy_exp_matches); it is made
            #       of machine operations, so it does not run as Python (NUMBA_DISABLE_JIT=1)
            if not numba.config.DISABLE_JIT:
                from . import expf  # noqa: PLC0415 - needs Numba
                _kernels.update({name: jit(function) for name, function in expf.PYTHON_KERNELS.items()})
        except Exception:   # an llvmlite without what expf uses: the sigmoid stays three passes
            pass
    return _kernels


def numpy_exp_matches() -> bool:
    """Whether the compiled ``numpy_exp`` kernel (:mod:`minirai.fast.expf`) gives ``np.exp``'s bits
    here, so that the one-pass ``sigmoid`` kernel gives ``layers.sigmoid``'s (asked once, ~10 ms)."""
    global _exp_matches
    if _exp_matches is None:
        compiled = kernels() or {}
        if "numpy_exp" not in compiled:
            return False
        from . import expf  # noqa: PLC0415 - needs Numba
        try:
            _exp_matches = expf.matches_numpy(compiled["numpy_exp"])
        except Exception:   # (it failed to compile): the sigmoid stays three passes
            _exp_matches = False
    return _exp_matches


def usable(*arrays: Any) -> bool:
    """Whether the kernels can run on these arrays: NumPy, float32/float64, C-contiguous, one dtype."""
    dtype = arrays[0].dtype
    return dtype.char in "fd" and all(type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == dtype
                                      for a in arrays)


def ready(*arrays: Any) -> bool:
    """:func:`available` and :func:`usable`: the kernels are there and can run on these arrays."""
    return usable(*arrays) and available()


# -- the kernels, as plain Python (Numba compiles these same functions) ---------------------------
def rprop_update(param: Any, grad: Any, prev_sign: Any, step: Any, eta_minus: Any, eta_plus: Any,
                 step_min: Any, step_max: Any) -> None:
    """``Rprop.update`` for flat arrays, one value at a time."""
    one, zero = step.dtype.type(1), step.dtype.type(0)
    for i in range(param.size):
        g = grad[i]
        direction = one if g > zero else (-one if g < zero else (zero if g == zero else g))  # np.sign
        agreement = direction * prev_sign[i]
        size = step[i]
        if agreement > zero:
            size = size * eta_plus                # same sign again: Δ·η+
        elif agreement < zero:
            size = size * eta_minus               # a flip: Δ·η- ...
            direction = zero                      # ... no move, and remember 0
        size = min(max(size, step_min), step_max)
        step[i] = size
        param[i] -= direction * size
        prev_sign[i] = direction


def adam_update(param: Any, grad: Any, m: Any, v: Any, beta1: Any, one_minus_beta1: Any, beta2: Any,
                one_minus_beta2: Any, root_correction2: Any, eps: Any, step_size: Any) -> None:
    """``Adam.update`` for flat arrays; ``root_correction2`` = √(1 - β2^t), ``step_size`` = lr/(1 - β1^t)."""
    for i in range(param.size):
        g = grad[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        v[i] = beta2 * v[i] + one_minus_beta2 * g * g
        denominator = np.sqrt(v[i]) / root_correction2 + eps
        param[i] -= step_size * m[i] / denominator


def sigmoid_finish(e: Any) -> None:
    """``e ← 1 / (1 + e)`` in place, with e = exp(-x): the rest of ``sigmoid(x)`` after the exp."""
    one = e.dtype.type(1)
    for i in range(e.size):
        e[i] = one / (one + e[i])


def sigmoid_backward(dy: Any, y: Any, dx: Any) -> None:
    """``dx = dy · (y (1 - y))``, as ``Sigmoid.backward`` computes it."""
    one = dx.dtype.type(1)
    for i in range(dx.size):
        dx[i] = dy[i] * (y[i] * (one - y[i]))


def difference_and_square(o: Any, z: Any, diff: Any, square: Any) -> None:
    """``diff = o - z`` and ``square = diff · diff``, as ``MSE.forward`` computes them (its mean stays in NumPy)."""
    for i in range(diff.size):
        d = o[i] - z[i]
        diff[i] = d
        square[i] = d * d


def mse_gradients(d: Any, scale: Any, lam: Any, negated: Any) -> None:
    """``d ← λ · (scale · d)`` in place and ``negated = -d``: RAI's λ · MSE.backward (scale = 2/M) and
    the target's part, -(that)."""
    for i in range(d.size):
        g = lam * (scale * d[i])
        d[i] = g
        negated[i] = -g


def linear_mse_forward(p: Any, b: Any, z: Any, d: Any, square: Any) -> None:
    """For a stack of RAI blocks that end with a Linear layer: ``p ← p + b`` in place (the Linear's
    output, with p = x W computed before), ``d = p - z`` and ``square = d · d``, as ``Linear.forward``
    and ``MSE.forward`` compute them (the mean stays in NumPy). Shapes: p, z, d, square (G, N, D); b (G, D)."""
    G, N, D = p.shape
    for g in range(G):
        for i in range(N):
            for j in range(D):
                o = p[g, i, j] + b[g, j]
                p[g, i, j] = o
                difference = o - z[g, i, j]
                d[g, i, j] = difference
                square[g, i, j] = difference * difference


def linear_mse_backward(d: Any, scale: Any, lam: Any, as_target: Any, db: Any) -> None:
    """The same stack's backward up to its Linear's products: ``d ← λ · (scale · d)`` in place (dL/do,
    as ``mse_gradients``), ``as_target = -d``, and the bias gradient ``db[g] = Σ_i d[g, i]``, summed as
    NumPy sums over rows: from 0, one row after the other. Shapes: d, as_target (G, N, D); db (G, D)."""
    G, N, D = d.shape
    zero = d.dtype.type(0)
    for g in range(G):
        for j in range(D):
            db[g, j] = zero
        for i in range(N):
            for j in range(D):
                value = lam * (scale * d[g, i, j])
                d[g, i, j] = value
                as_target[g, i, j] = -value
                db[g, j] += value


def same_words(a: Any, b: Any) -> bool:
    """True if two equally long arrays of unsigned integers hold the same values (the bytes of two
    arrays, viewed as integers): compared a block at a time, stopping at the first block that differs."""
    for start in range(0, a.size, 256):
        differ = a.dtype.type(0)
        for i in range(start, min(start + 256, a.size)):
            differ |= a[i] ^ b[i]
        if differ != 0:
            return False
    return True


PYTHON_KERNELS = {"rprop": rprop_update, "adam": adam_update, "sigmoid_finish": sigmoid_finish,
                  "sigmoid_backward": sigmoid_backward, "difference_and_square": difference_and_square,
                  "mse_gradients": mse_gradients, "linear_mse_forward": linear_mse_forward,
                  "linear_mse_backward": linear_mse_backward, "same_words": same_words}
