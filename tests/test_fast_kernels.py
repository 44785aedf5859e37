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
from minirai.fast import chain, denormals, kernels
from minirai.fast import optim as fast_optim
from minirai.layers import Linear, Sigmoid, sigmoid
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


def require_numpys_exp() -> None:
    """Skip where the probe found NumPy's float32 exp to be another function than the compiled one (then
    the sigmoid keeps NumPy's passes, and there is nothing to compare); but on x86 with AVX2 and FMA and
    no AVX-512, where NumPy runs the vector code that minirai.fast.expf transcribes, it must match."""
    if kernels.numpy_exp_matches():
        return
    from numpy._core._multiarray_umath import __cpu_features__ as features
    if features.get("AVX2") and features.get("FMA3") and not features.get("AVX512F"):
        pytest.fail("the compiled exp differs from NumPy's AVX2 float32 exp on its probe")
    pytest.skip("NumPy's float32 exp here is another function; the sigmoid keeps NumPy's passes")


def float32_patterns(every: int = 1, chunk: int = 1 << 24):
    """Every float32 (every ``every``-th run of ``chunk`` consecutive bit patterns), a chunk at a time."""
    for start in range(0, 1 << 32, chunk * every):
        yield (np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32)).view(np.float32)


def test_the_compiled_exp_is_numpys_for_every_float32():
    """All 2^32 float32 inputs (NaNs, subnormals, both infinities and the cut-offs included): the compiled
    exp of minirai.fast.expf gives np.exp's bits, in strict IEEE; every 8th run of them also with the
    CPU's flush-to-zero on (as in a training step). And the probe that guards its use says so."""
    require_numpys_exp()
    compiled = kernels.kernels()["numpy_exp"]
    for flush in ([False, True] if denormals.available() else [False]):
        with denormals.flushing_denormals(flush):
            for x in float32_patterns(every=8 if flush else 1):
                ours, numpys = np.empty_like(x), np.empty_like(x)
                compiled(x, ours)
                with np.errstate(all="ignore"):
                    np.exp(x, out=numpys)
                assert np.array_equal(ours.view(np.uint32), numpys.view(np.uint32)), (flush, x[0])


def test_the_one_pass_sigmoid_is_layers_sigmoid():
    """The one-pass sigmoid kernel against layers.sigmoid (negate, exp, 1 + e, 1 / that) on every 16th run of
    float32 patterns, in strict IEEE and with flush-to-zero; and the fast chain's sigmoid with the kernel
    and with its three-pass fallback."""
    require_numpys_exp()
    one_pass = kernels.kernels()["sigmoid"]
    for flush in ([False, True] if denormals.available() else [False]):
        with denormals.flushing_denormals(flush), np.errstate(all="ignore"):
            for x in float32_patterns(every=16):
                y = np.empty_like(x)
                one_pass(x, y)
                assert same_bytes(y, sigmoid(x)), (flush, x[0])
    x = edge_array(np.random.default_rng(4), 999, np.float32).reshape(9, 111)
    with np.errstate(all="ignore"):
        layer = Sigmoid()
        kernel = chain.sigmoid_forward(layer, x, {}).copy()
        kernels._exp_matches = False
        try:
            fallback = chain.sigmoid_forward(layer, x, {})
        finally:
            kernels._exp_matches = None
        assert same_bytes(kernel, fallback) and same_bytes(kernel, sigmoid(x))


def test_the_probe_refuses_an_exp_that_is_not_numpys():
    """Where NumPy's float32 exp is another function (another processor, another NumPy), the probe says so
    and the sigmoid keeps its three passes: here, a float64 exp rounded to float32 (closer to e^x, other bits)."""
    from minirai.fast import expf

    def rounded_float64_exp(x, out):
        np.copyto(out, np.exp(x.astype(np.float64)).astype(np.float32))
    with np.errstate(all="ignore"):
        assert not expf.matches_numpy(rounded_float64_exp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(99, 100, 100), (3, 2048, 8), (2, 1, 3), (4, 33, 17)])
def test_a_stacks_linear_and_hidden_loss_kernels_equal_the_textbook_lines(dtype, shape):
    """linear_mse_forward/backward against, block by block, Linear.forward/backward and RAI's lines for the
    MSE hidden loss (λ · MSE.backward(), λ · grad_target), on values with ±0, NaN, ±inf and subnormals; the
    bias gradient's columns of -0.0 (NumPy's sum starts from +0) included."""
    G, N, D = shape
    rng = np.random.default_rng(8)
    def values(seed, *size):                            # (at least the 22 edge values, in a random order)
        return edge_array(np.random.default_rng(seed), max(np.prod(size), 22), dtype)[:np.prod(size)].reshape(size)
    x, z, b = values(8, G, N, D), values(9, G, N, D), values(10, G, 1, D)
    W = (rng.standard_normal((G, D, D)) / D).astype(dtype)
    lam = 0.7
    with np.errstate(all="ignore"):
        p = np.matmul(x, W)
        o, diff, square = p.copy(), np.empty_like(p), np.empty_like(p)
        kernels.kernels()["linear_mse_forward"](o, b[:, 0, :], z, diff, square)
        as_target, db = np.empty_like(p), np.full((G, D), np.nan, dtype)
        d = diff.copy()
        d[:, :, 0] = -0.0                               # (a column of -0.0: its bias gradient is +0.0)
        d_ref_input = d.copy()
        real = np.dtype(dtype).type
        kernels.kernels()["linear_mse_backward"](d, real(2.0 / (N * D)), real(lam), as_target, db)
        for g in range(G):
            linear = Linear(D, D, dtype=dtype)
            linear.params["W"][...], linear.params["b"][...] = W[g], b[g, 0]
            assert same_bytes(o[g], linear.forward(x[g]))
            loss = minirai.MSE()
            assert same_bytes(square[g].mean(), loss.forward(o[g], loss.prepared(z[g])))
            assert same_bytes(diff[g], loss.diff)
            loss.diff = d_ref_input[g]                  # (the backward from the column of signed zeros)
            assert same_bytes(d[g], lam * loss.backward()) and same_bytes(as_target[g], lam * loss.grad_target)
            linear.backward(d[g])
            assert same_bytes(db[g], linear.grads["b"])


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
