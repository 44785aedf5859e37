r"""Fused CPU kernels: an optimizer update as one loop over the values, compiled by Numba.

Why: NumPy runs one pass over the whole array per operation. Rprop's update is about ten
operations, so a deep RAI step (2 million parameters and table entries) spent ~10 ms in
ten passes. A compiled loop reads each value once and does all ten operations on it.

The reference stays in :mod:`minirai.optim` (each optimizer's ``update`` method, in plain
NumPy; the one a learner reads and the one that runs on a GPU). Each kernel here does the
same arithmetic in the same order and in the same dtype (every scalar is passed already
converted to the arrays' dtype), so it gives the same numbers bit for bit; the tests check
that. Set ``optimizer.fused = False`` (or ``MINIRAI_FUSED=0``) to run the reference instead.

Numba is a dependency of minirai, but if it cannot be imported everything still works, on
the reference path. Kernels are compiled on first use (about a second) and cached on disk.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

_kernels: dict[str, Callable[..., None]] | None = None
_unavailable_reason: str | None = None


def enabled() -> bool:
    """True unless ``MINIRAI_FUSED=0`` or Numba cannot be imported."""
    return os.environ.get("MINIRAI_FUSED", "1") != "0" and kernels() is not None


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
        _kernels = {"rprop": jit(rprop_update), "adam": jit(adam_update)}
    return _kernels


def usable(*arrays: Any) -> bool:
    """Whether the kernels can run on these arrays: NumPy, float32/float64, C-contiguous."""
    return (all(type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == arrays[0].dtype for a in arrays)
            and arrays[0].dtype in (np.float32, np.float64))


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
