"""The compiled kernels (minirai.fast.kernels) give the textbook code's numbers, byte for byte.

Each kernel is compared with the textbook method it stands for (``Rprop.update``,
``Adam.update``, ``Sigmoid.forward``/``backward``) on inputs that hold what a kernel most
easily gets wrong: +0 and -0, NaN, +inf and -inf, subnormal numbers, the largest and smallest
normal numbers, sign flips and saturation. Bytes are compared (``.view(uint8)``), so -0.0
against +0.0 or another NaN payload would fail where ``==`` would not see it.
"""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from minirai.fast import chain, kernels
from minirai.fast import optim as fast_optim
from minirai.layers import Sigmoid
from minirai.optim import Adam, Rprop

pytestmark = pytest.mark.skipif(not kernels.available(), reason=f"{kernels.unavailable_reason()}")


def same_bytes(a, b) -> bool:
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


def edge_values(dtype) -> np.ndarray:
    """±0, NaN, ±inf, subnormals, the normal range's ends and ordinary values."""
    info = np.finfo(dtype)
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, info.tiny, -info.tiny, info.tiny / 4, -info.tiny / 4,
               info.smallest_subnormal, -info.smallest_subnormal, info.max, -info.max, 1.0, -1.0, 0.5,
               1e-20, -1e-25, 88.5, -88.5, 1e4, -1e4]
    return np.array(special, dtype=dtype)


def edge_array(rng, size: int, dtype) -> np.ndarray:
    """``size`` values: the edge values, then random ones of mixed scale and sign, some zeros."""
    values = rng.standard_normal(size) * 10.0 ** rng.integers(-30, 3, size)
    values[rng.random(size) < 0.15] = 0.0
    values = values.astype(dtype)
    edges = edge_values(dtype)
    values[:len(edges)] = edges
    return rng.permutation(values)


def run_twice(make_optimizer, arrays_of_step, steps, dtype, size=257):
    """The same optimizer run through its textbook update and through its kernel; both results."""
    results = []
    for kernel in (True, False):
        rng = np.random.default_rng(7)
        param = edge_array(rng, size, dtype)
        grad = np.zeros_like(param)
        opt = make_optimizer([(param, grad)])
        for step in range(steps):
            grad[...] = arrays_of_step(np.random.default_rng(step), size, dtype)
            if kernel:
                opt.steps += 1
                fast_optim.FAST_UPDATES[type(opt)](opt, param, grad, opt.state[0])
            else:
                opt.step()
        results.append((param, opt.state[0]))
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["rprop", "adam"])
def test_optimizer_kernels_equal_the_textbook_update_byte_for_byte(name, dtype):
    def gradients(rng, size, dtype):
        g = edge_array(rng, size, dtype)
        return np.where(rng.random(size) < 0.3, -g, g).astype(dtype)   # many sign flips between steps

    make = {"rprop": lambda pairs: Rprop(pairs, lr=0.1),
            "adam": lambda pairs: Adam(pairs, lr=1e-3, eps=1e-8)}[name]
    with np.errstate(all="ignore"):       # inf - inf and 0 · inf make NaN on purpose here
        (p1, s1), (p2, s2) = run_twice(make, gradients, 12, dtype)
    assert same_bytes(p1, p2)
    for key in s1:
        assert same_bytes(s1[key], s2[key]), key


def test_rprop_kernel_writes_numpys_sign_of_zero():
    """Numba's np.sign(-0.0) is -0.0 and NumPy's is +0.0: the kernel must store NumPy's."""
    grad = np.array([-0.0, 0.0, -1.0], np.float32)
    results = []
    for kernel in (True, False):
        param = np.ones(3, np.float32)
        opt = Rprop([(param, grad)], lr=0.1)
        if kernel:
            opt.steps += 1
            fast_optim.rprop_kernel(opt, param, grad, opt.state[0])
        else:
            opt.step()
        results.append(opt.state[0]["prev_sign"].copy())
    assert same_bytes(*results) and not np.signbit(results[0][0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(263,), (7, 5), (3, 7, 5)])
def test_sigmoid_kernels_equal_the_textbook_layer_byte_for_byte(dtype, shape):
    rng = np.random.default_rng(2)
    size = int(np.prod(shape))
    x = edge_array(rng, size, dtype).reshape(shape) if size >= 22 else \
        (rng.standard_normal(shape) * 30).astype(dtype)
    dy = edge_array(np.random.default_rng(3), size, dtype).reshape(shape) if size >= 22 else \
        rng.standard_normal(shape).astype(dtype)
    with np.errstate(all="ignore"):
        textbook = Sigmoid()
        y_ref = textbook.forward(x)
        dx_ref = textbook.backward(dy)
        fast = Sigmoid()
        buffers: dict = {}
        assert kernels.ready(x, dy)                     # so the kernels, not the NumPy fallback, run
        y = chain.sigmoid_forward(fast, x, buffers)
        dx = chain.sigmoid_backward(fast, dy, buffers)
    assert same_bytes(y, y_ref) and same_bytes(dx, dx_ref)


def test_the_python_kernel_is_the_compiled_one():
    """kernels.rprop_update is plain Python a learner can step through; compiled, it gives the same."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32),
              np.sign(rng.standard_normal(50)).astype(np.float32), np.full(50, 0.1, np.float32)]
    copies = [a.copy() for a in arrays]
    scalars = [np.float32(0.5), np.float32(1.2), np.float32(1e-6), np.float32(50)]
    kernels.rprop_update(*arrays, *scalars)
    kernels.kernels()["rprop"](*copies, *scalars)
    for a, b in zip(arrays, copies):
        assert same_bytes(a, b)


def test_arrays_the_kernels_cannot_take():
    assert not kernels.usable(np.ones(4, np.float16))
    assert not kernels.usable(np.ones((4, 4))[:, 0])
    assert not kernels.usable(np.ones(4, np.float32), np.ones(4, np.float64))
    assert kernels.usable(np.ones((3, 4), np.float32))


def test_without_numba_the_fast_path_runs_numpy_with_the_same_numbers(monkeypatch):
    """With the kernels unavailable, the fast step and chain fall back to NumPy: the same results."""
    def train():
        model = minirai.mlp([2, 16, 16, 1], "sigmoid", "sigmoid", seed=2, dtype=np.float64)
        X = np.random.default_rng(0).standard_normal((30, 2))
        y = (X[:, 0] > 0).astype(np.float64)
        minirai.train.fit(model, minirai.BCE(), Rprop(model.parameters(), lr=0.1), X, y, iters=15,
                          progress=False)
        return [p.copy() for p, _ in model.parameters()]

    with_kernels = train()
    monkeypatch.setattr(kernels, "_kernels", None)
    monkeypatch.setattr(kernels, "_unavailable_reason", "numba is not available (test)")
    assert not kernels.available()
    without = train()
    assert all(same_bytes(a, b) for a, b in zip(with_kernels, without))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_hidden_loss_kernels_equal_mse_and_rais_lines_byte_for_byte(dtype):
    """difference_and_square is MSE.forward's o - Z and its square; mse_gradients is RAI's λ·MSE.backward and
    λ·grad_target, on values with ±0, NaN, ±inf, subnormals and the ends of the range."""
    rng = np.random.default_rng(5)
    o, z = edge_array(rng, 257, dtype), edge_array(np.random.default_rng(6), 257, dtype)
    lam, scale = 0.7, 2.0 / 257
    with np.errstate(all="ignore"):
        loss = minirai.MSE()
        loss.forward(o, loss.prepared(z))              # (a table, as RAI gives it: not checked again)
        grad = loss.backward()
        d_ref, target_ref = lam * grad, lam * loss.grad_target
        diff, square = np.empty_like(o), np.empty_like(o)
        kernels.kernels()["difference_and_square"](o, z, diff, square)
        assert same_bytes(diff, o - z) and same_bytes(square, (o - z) * (o - z))
        negated = np.empty_like(o)
        real = o.dtype.type
        kernels.kernels()["mse_gradients"](diff, real(scale), real(lam), negated)
    assert same_bytes(diff, d_ref) and same_bytes(negated, target_ref)


@pytest.mark.parametrize("words", ["u8", "u4", "u1"])
def test_same_words_finds_any_one_bit_that_differs(words):
    """The byte comparison behind the chain's reuse of unchanged outputs: one flipped bit anywhere (the
    first word, the last, a block's edge, a partial last block) is found, compiled and in Python; a -0.0
    against a +0.0 and two NaN payloads differ in their bytes, so they count as different."""
    rng = np.random.default_rng(11)
    for size in (1, 255, 256, 257, 1000):
        a = rng.integers(0, 2 ** (8 * np.dtype(words).itemsize - 1), size, dtype=words)
        for position in sorted({0, size - 1, min(255, size - 1), min(256, size - 1), size // 2}):
            for compare in (kernels.kernels()["same_words"], kernels.same_words):
                assert compare(a, a.copy())
                b = a.copy()
                b[position] ^= 1 << int(rng.integers(0, 8))
                assert not compare(a, b), (size, position)
    zeros = np.array([0.0, np.nan], np.float64), np.array([-0.0, np.nan], np.float64)
    other_nan = zeros[0].copy()
    other_nan.view("u8")[1] ^= 1                           # another NaN payload
    assert not chain.same_bytes(*zeros) and not chain.same_bytes(zeros[0], other_nan)
    assert chain.same_bytes(zeros[0], zeros[0].copy())
    assert not chain.same_bytes(np.zeros((2, 3)), np.zeros((3, 2)))                # shape
    assert not chain.same_bytes(np.zeros(4, np.float32), np.zeros(4, np.int32))     # dtype, same bytes
    assert not chain.same_bytes(np.zeros((3, 3)), np.asfortranarray(np.zeros((3, 3))))   # layout
