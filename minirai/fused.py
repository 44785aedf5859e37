r"""Fused CPU kernels: several elementwise operations as one loop, compiled by Numba.

Why: NumPy runs one pass over the whole array per operation. Rprop's update is about ten
operations, so a deep RAI step (2 million parameters and table entries) spent ~10 ms in
ten passes. A compiled loop reads each value once and does all ten operations on it.

The reference stays beside each caller, in plain NumPy: each optimizer's ``update`` method
(:mod:`minirai.optim`), ``Sigmoid.forward``/``backward`` (:mod:`minirai.layers`) and
:func:`minirai.network.flush_subnormals`. That is the code a learner reads and the code that
runs on a GPU. Each kernel here does the same arithmetic in the same order and in the same
dtype (every scalar is passed already converted to the arrays' dtype), so it gives the same
numbers bit for bit; the tests check that. Set ``MINIRAI_FUSED=0`` (or call
:func:`set_enabled`, or set ``optimizer.fused = False``) to run the references instead.

Written for the compiler: each loop reads its inputs and writes its outputs once, and a
kernel that works in place takes the array once (``sigmoid_finish(e)``, not ``(e, out)``
with ``out is e``), so that LLVM can use vector instructions without checking for overlap.
Kernels that would have to sum (a mean of squares) are left to NumPy: a compiled loop may
not reorder a float sum, which makes it slower than NumPy's.

Numba is a dependency of minirai, but if it cannot be imported everything still works, on
the reference path. Kernels are compiled on first use (about a second) and cached on disk.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

_kernels: dict[str, Callable[..., None]] | None = None
_unavailable_reason: str | None = None
_switched_on = os.environ.get("MINIRAI_FUSED", "1") != "0"    # read once: os.environ is slow (~2 µs)


def enabled() -> bool:
    """True unless switched off (``MINIRAI_FUSED=0`` at start, or :func:`set_enabled`) or Numba is missing."""
    return _switched_on and kernels() is not None


def set_enabled(on: bool) -> bool:
    """Switch the fused kernels on or off for this process; returns the previous setting.

    Optimizers read the setting when they are made (``optimizer.fused``); the sigmoid and the
    subnormal flush at every call.
    """
    global _switched_on
    previous, _switched_on = _switched_on, bool(on)
    return previous


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
        _kernels = {name: jit(function) for name, function in KERNELS.items()}
    return _kernels


def usable(*arrays: Any) -> bool:
    """Whether the kernels can run on these arrays: NumPy, float32/float64, C-contiguous, one dtype.

    (The caller also checks :func:`enabled`; see :func:`ready`.)"""
    dtype = arrays[0].dtype
    return dtype.char in "fd" and all(type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == dtype
                                      for a in arrays)


def ready(*arrays: Any) -> bool:
    """:func:`enabled` and :func:`usable`: the kernels are there and can run on these arrays."""
    return usable(*arrays) and enabled()


# -- the kernels, as plain Python (Numba compiles these same functions) ---------------------------
def rprop_update(param: Any, grad: Any, prev_sign: Any, step: Any, speed_up: Any, slow_down: Any,
                 step_min: Any, step_max: Any) -> None:
    """Rprop for flat arrays; ``speed_up`` = η+ - 1, ``slow_down`` = 1 - η- (see ``Rprop.update``)."""
    one, zero = step.dtype.type(1), step.dtype.type(0)
    for i in range(param.size):
        direction = np.sign(grad[i])
        agreement = direction * prev_sign[i]
        if agreement > 0:
            step[i] *= one + speed_up              # same sign again: Δ·η+
        elif agreement < 0:
            step[i] *= one - slow_down             # a flip: Δ·η- ...
            direction = direction * zero           # ... no move, and remember 0
        step[i] = min(max(step[i], step_min), step_max)
        prev_sign[i] = direction
        param[i] -= direction * step[i]


def adam_update(param: Any, grad: Any, m: Any, v: Any, beta1: Any, one_minus_beta1: Any, beta2: Any,
                one_minus_beta2: Any, root_correction2: Any, eps: Any, step_scale: Any) -> None:
    """Adam for flat arrays; ``root_correction2`` = 1/√(1 - β2^t), ``step_scale`` = lr/(1 - β1^t)."""
    for i in range(param.size):
        g = grad[i]
        m[i] = m[i] * beta1 + one_minus_beta1 * g
        v[i] = v[i] * beta2 + one_minus_beta2 * g * g
        denominator = np.sqrt(v[i]) * root_correction2 + eps
        param[i] -= m[i] / denominator * step_scale


def sigmoid_finish(e: Any) -> None:
    """``e ← 1 / (e + 1)`` in place, with e = exp(-x): the last two of Sigmoid.forward's four passes."""
    one = e.dtype.type(1)
    for i in range(e.size):
        e[i] = one / (e[i] + one)


def sigmoid_backward(dy: Any, y: Any, dx: Any) -> None:
    """``dx = (1 - y) · y · dy``, as Sigmoid.backward's three passes compute it."""
    one = dx.dtype.type(1)
    for i in range(dx.size):
        dx[i] = (one - y[i]) * y[i] * dy[i]


def flush_small(a: Any, threshold: Any) -> None:
    """``a[i] = 0`` where ``|a[i]| < threshold``, in place (network.flush_subnormals's three passes)."""
    zero = a.dtype.type(0)
    for i in range(a.size):
        a[i] = zero if abs(a[i]) < threshold else a[i]


KERNELS = {"rprop": rprop_update, "adam": adam_update, "sigmoid_finish": sigmoid_finish,
           "sigmoid_backward": sigmoid_backward, "flush_small": flush_small}
