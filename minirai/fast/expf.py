r"""NumPy's float32 ``exp``, as a compiled function: so that the sigmoid can be one pass.

``sigmoid(x) = 1 / (1 + exp(-x))`` on NumPy is three passes over the array (negate, exp,
finish). The finish is already a kernel (:mod:`minirai.fast.kernels`); the exp could not join
it, because a compiled ``exp`` is the C library's, and its last bit differs from NumPy's in
about 40% of float32 inputs: NumPy computes a float32 ``exp`` with its own vector code on
x86 processors with AVX2 and FMA (or AVX-512). This module computes that same function, one
value at a time, with the same operations in the same order, so that Numba's loop gives
NumPy's bits, and the whole sigmoid runs in one pass (measured here, on 990,000 values:
1.1 ms against NumPy's 1.9 ms for the three passes).

NumPy's algorithm (``simd_exp_FLOAT`` in ``numpy/_core/src/umath/loops_exponent_log.dispatch.c.src``;
the constants are those of ``npy_simd_data.h``):

1. a NaN gives NaN; ``x ≥ 88.72283935546875`` gives inf; ``x ≤ -103.97208404541015625`` gives 0
   (those lanes compute on 0 and are overwritten at the end);
2. ``k = rint(x · log2(e))``, rounded by adding and subtracting 1.5 · 2²³;
3. ``r = x - k · ln 2`` in two fused multiply-adds, ln 2 split in a high and a low part (a third
   fused multiply-add adds ``k · 0``);
4. ``exp(r) ≈ P(r) / Q(r)``, P of degree 5, Q of degree 2, both by Horner's rule in fused
   multiply-adds;
5. ``exp(x) = exp(r) · 2^k``: k is added to the exponent bits; where k ≤ -125 the result is
   subnormal, so k is clamped to -125 and the result is scaled by the remaining power of two,
   rounding once. (NumPy divides by 2^d there; this code multiplies by 2^-d, which is exact, so
   both round the same real number once: the same bits, flush-to-zero included.)

Nothing here is assumed to hold: :func:`matches_numpy` compares the compiled function with
``np.exp`` on a million float32 values spread over every exponent (plus the special values) the
first time it is asked, and the fast chain uses the one-pass sigmoid only where it matched.
On another processor or another NumPy (an ARM machine, an x86 one without AVX2, a NumPy that
changed its algorithm) NumPy's exp is a different function, the probe fails, and the sigmoid
stays three passes. ``tests/test_fast_kernels.py`` compares all 2³² float32 inputs.
"""
from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic


# -- three machine operations Python has no word for: a fused multiply-add, and a float32's bits --
@intrinsic
def fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """``a · b + c`` rounded once (the processor's fused multiply-add)."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        kind = args[0].type
        name = "llvm.fma.f32" if isinstance(kind, ir.FloatType) else "llvm.fma.f64"
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(kind, [kind] * 3), name)
        return builder.call(function, args)
    return a(a, b, c), codegen


@intrinsic
def bits(typingctx: Any, x: Any) -> Any:
    """The 32 bits of a float32, as an int32."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(32))
    return numba.types.int32(x), codegen


@intrinsic
def from_bits(typingctx: Any, i: Any) -> Any:
    """The float32 whose bits are this int32."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.FloatType())
    return numba.types.float32(i), codegen


# -- NumPy's constants, as float32 --------------------------------------------------------------
f32 = np.float32
X_MAX, X_MIN = f32(88.72283935546875), f32(-103.97208404541015625)
LOG2_E = f32(1.442695040888963407359924681001892137)
ROUNDING = f32(1.5 * 2 ** 23)                       # x + 1.5·2²³ - 1.5·2²³ rounds x to an integer
LN2_HIGH, LN2_LOW = f32(-6.93145752e-1), f32(-1.42860677e-6)
P0, P1, P2, P3, P4, P5 = (f32(9.999999999980870924916e-01), f32(7.257664613233124478488e-01),
                          f32(2.473615434895520810817e-01), f32(5.114512081637298353406e-02),
                          f32(6.757896990527504603057e-03), f32(5.082762527590693718096e-04))
Q0, Q1, Q2 = f32(1.0), f32(-2.742335390411667452936e-01), f32(2.159509375685829852307e-02)
NAN = np.array([0x7FC00000], np.uint32).view(np.float32)[0]     # the NaN NumPy's exp returns
INF, ZERO, ONE, LOWEST_K = f32(np.inf), f32(0.0), f32(1.0), f32(-125.0)


@numba.njit(inline="always", error_model="numpy")
def exp(x: Any) -> Any:
    """NumPy's float32 ``exp(x)`` for one float32 value (steps 1-5 of the module's docstring)."""
    nan, overflow, underflow = x != x, x >= X_MAX, x <= X_MIN
    x = ZERO if nan or overflow or underflow else x
    k = x * LOG2_E
    k = (k + ROUNDING) - ROUNDING                           # rint
    r = fma(k, LN2_HIGH, x)                                 # r = x - k ln 2
    r = fma(k, LN2_LOW, r)
    r = fma(k, ZERO, r)
    p = fma(fma(fma(fma(fma(P5, r, P4), r, P3), r, P2), r, P1), r, P0)
    q = fma(fma(Q2, r, Q1), r, Q0)
    e = p / q                                               # exp(r)
    short = -(k - LOWEST_K) if k <= LOWEST_K else ZERO      # how far 2^k is below 2^-125
    scaled = from_bits(np.int32(bits(e) + (np.int32(max(k, LOWEST_K)) << 23)))   # e · 2^max(k, -125)
    e = scaled * from_bits(np.int32((127 - np.int32(short)) << 23))            # · 2^-short
    e = NAN if nan else e
    e = INF if overflow else e
    return ZERO if underflow else e


def exp_kernel(x: Any, out: Any) -> None:
    """``out = np.exp(x)`` for flat float32 arrays."""
    for i in range(x.size):
        out[i] = exp(x[i])


def sigmoid_kernel(x: Any, y: Any) -> None:
    """``y = 1 / (1 + np.exp(-x))`` for flat float32 arrays, as ``layers.sigmoid`` computes it, in one pass."""
    for i in range(x.size):
        y[i] = ONE / (ONE + exp(-x[i]))


PYTHON_KERNELS = {"numpy_exp": exp_kernel, "sigmoid": sigmoid_kernel}


def probe() -> np.ndarray:
    """About a million float32 values: every 4093rd bit pattern (all signs and exponents, NaNs
    and subnormals), the two cut-offs and their neighbours, ±0, ±inf."""
    patterns = np.arange(0, 2 ** 32, 4093, dtype=np.uint64).astype(np.uint32).view(np.float32)
    ends = np.array([X_MAX, X_MIN, 0.0, -0.0, np.inf, -np.inf, np.nan, -87.3, -88.7, -103.9], np.float32)
    ends = np.concatenate([ends, np.nextafter(ends, f32(np.inf)), np.nextafter(ends, f32(-np.inf))])
    return np.concatenate([patterns, ends])


def matches_numpy(compiled_exp: Any) -> bool:
    """Whether ``compiled_exp`` (the compiled :func:`exp_kernel`) gives ``np.exp``'s bits on :func:`probe`."""
    x = probe()
    ours, numpys = np.empty_like(x), np.empty_like(x)
    compiled_exp(x, ours)
    with np.errstate(all="ignore"):
        np.exp(x, out=numpys)
    return bool(np.array_equal(ours.view(np.uint32), numpys.view(np.uint32)))
