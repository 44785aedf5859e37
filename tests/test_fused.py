"""The fused optimizer kernels (minirai.fused) give the reference NumPy update's numbers bit for bit."""
from __future__ import annotations

import os

import numpy as np
import pytest

import minirai
from minirai import fused
from minirai.optim import SGD, Adam, Rprop

pytestmark = pytest.mark.skipif(not fused.enabled(), reason="numba is not installed (or MINIRAI_FUSED=0)")

OPTIMIZERS = {"rprop": lambda pairs: Rprop(pairs, lr=0.1), "adam": lambda pairs: Adam(pairs, lr=1e-3)}


def gradients(rng: np.random.Generator, shape: tuple[int, ...], dtype: type, step: int) -> np.ndarray:
    """Random gradients with what the kernels must get right: exact zeros, sign flips, tiny values."""
    g = rng.standard_normal(shape)
    g[rng.random(shape) < 0.2] = 0.0                       # zeros: Rprop neither speeds up nor moves
    if step % 3 == 2:
        g *= 1e-36 if dtype == np.float32 else 1e-300     # subnormal-range values (signs still count)
    return g.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_equals_the_numpy_reference_bit_for_bit(name, dtype):
    """Same model and gradients: the fused run and the reference run (chunked) agree exactly."""
    models = [minirai.mlp([3, 30, 30, 2], "sigmoid", None, seed=1, dtype=dtype) for _ in range(2)]
    fast, reference = (OPTIMIZERS[name](m.parameters()) for m in models)
    reference.fused = False
    reference.chunk_size = 128                              # the chunked NumPy path, several chunks
    assert fast.fused and len(fast.runs) == 1
    rng = np.random.default_rng(0)
    for step in range(40):
        for (_, g1), (_, g2) in zip(models[0].parameters(), models[1].parameters()):
            g1[...] = g2[...] = gradients(rng, g1.shape, dtype, step)
        fast.step()
        reference.step()
    for (p1, _), (p2, _) in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_array_equal(p1, p2)
    for s1, s2 in zip(fast.run_state, reference.run_state):
        for key in s1:
            np.testing.assert_array_equal(s1[key], s2[key])
    assert not np.array_equal(models[0].parameters()[0][0],
                              minirai.mlp([3, 30, 30, 2], "sigmoid", None, seed=1, dtype=dtype).parameters()[0][0])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_step_does_not_call_the_numpy_update(name, monkeypatch):
    """With the kernels available, step() runs them (the reference update is never reached)."""
    model = minirai.mlp([2, 8, 1], "tanh", None, seed=0)
    opt = OPTIMIZERS[name](model.parameters())

    def refuse(*args):
        raise AssertionError("the NumPy update ran instead of the fused kernel")

    monkeypatch.setattr(type(opt), "update", refuse)
    for _, g in model.parameters():
        g[...] = 1.0
    before = model.parameters()[0][0].copy()
    opt.step()
    assert not np.array_equal(model.parameters()[0][0], before)


def test_the_python_kernel_is_the_compiled_one():
    """fused.rprop_update is plain Python a learner can step through; compiled, it gives the same."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32),
              np.sign(rng.standard_normal(50)).astype(np.float32), np.full(50, 0.1, np.float32)]
    copies = [a.copy() for a in arrays]
    scalars = [np.float32(0.2), np.float32(0.5), np.float32(1e-6), np.float32(50)]
    fused.rprop_update(*arrays, *scalars)
    fused.kernels()["rprop"](*copies, *scalars)
    for a, b in zip(arrays, copies):
        np.testing.assert_array_equal(a, b)


def test_switched_off_by_set_enabled_or_by_the_environment_or_without_numba(monkeypatch):
    assert fused.set_enabled(False) is True
    try:
        assert not Rprop([(np.ones(3), np.ones(3))]).fused
    finally:
        fused.set_enabled(True)
    import subprocess
    import sys
    code = "from minirai import fused; print(fused.enabled())"
    printed = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MINIRAI_FUSED": "0"},
                             capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "False"
    monkeypatch.setattr(fused, "_kernels", None)
    monkeypatch.setattr(fused, "_unavailable_reason", "numba is not available (test)")
    opt = Rprop([(np.ones(3), np.ones(3))], lr=0.5)
    assert not opt.fused
    opt.step()                                             # the reference path still works
    np.testing.assert_array_equal(opt.pairs[0][0], [0.5, 0.5, 0.5])


def test_no_kernel_for_sgd_or_other_arrays_means_the_reference_path():
    """SGD has no fused twin; float16 or non-contiguous arrays are not for the kernels."""
    p, g = np.ones(4), np.full(4, 2.0)
    opt = SGD([(p, g)], lr=0.25)
    opt.step()
    np.testing.assert_array_equal(p, [0.5] * 4)
    assert not fused.usable(np.ones(4, np.float16))
    assert not fused.usable(np.ones((4, 4))[:, 0])
    assert not fused.usable(np.ones(4, np.float32), np.ones(4, np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (3, 7, 5)])
def test_sigmoid_forward_and_backward_fused_equal_numpy_bit_for_bit(dtype, shape):
    """Sigmoid's fused passes give the reference passes' numbers, also at saturation (|x| up to 1e4)."""
    from minirai.layers import Sigmoid
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 30).astype(dtype)
    x.reshape(-1)[:4] = [1e4, -1e4, 0.0, -90.0]
    dy = rng.standard_normal(shape).astype(dtype)
    results = []
    for on in (True, False):
        previous = fused.set_enabled(on)
        try:
            layer = Sigmoid()
            y = layer.forward(x).copy()
            results.append((y, layer.backward(dy).copy()))
        finally:
            fused.set_enabled(previous)
    assert fused.ready(x, dy)                          # so the first run took the fused branch
    (y1, dx1), (y2, dx2) = results
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    assert y1.reshape(-1)[0] == 1.0 and y1.reshape(-1)[1] == 0.0 and y1.reshape(-1)[2] == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_subnormals_fused_equals_numpy(dtype):
    """The fused flush zeroes exactly the entries below the threshold; NaN and inf stay."""
    from minirai.network import flush_subnormals, flush_threshold
    t = flush_threshold(dtype)
    values = np.array([t, -t, t * 0.5, -t * 0.999, 0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1e-3,
                       np.finfo(dtype).tiny / 4, 3 * t], dtype=dtype)
    a = np.tile(values, (5, 1))
    b = a.copy()
    assert fused.ready(a)
    flush_subnormals(a)
    previous = fused.set_enabled(False)
    try:
        flush_subnormals(b)
    finally:
        fused.set_enabled(previous)
    np.testing.assert_array_equal(a, b)
    assert not a[:, [2, 3, 11]].any() and a[0, 0] == t and np.isnan(a[0, 6])
