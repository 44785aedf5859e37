"""Devices: choosing one, clear errors, and a whole training step on a CuPy-like stand-in.

The stand-in (tests/fake_device.py) refuses every implicit conversion to NumPy, as CuPy does,
so a training step that runs on it and reproduces the NumPy numbers shows the engine keeps
its arrays on the device from the data loader to the optimizer.
"""
from __future__ import annotations

import numpy as np
import pytest

import fake_device
from minirai import backend, data
from minirai.losses import BCE
from minirai.network import mlp
from minirai.optim import Rprop
from minirai.train import fit


@pytest.fixture
def fake():
    """The stand-in as the active backend (NumPy is restored by conftest afterwards)."""
    backend.use_module(fake_device)
    return fake_device


# --- choosing a device --------------------------------------------------------------------------------

@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is present: asking for it succeeds")
def test_gpu_without_a_gpu_is_a_clear_runtime_error():
    """set_device("gpu") without CuPy/CUDA: RuntimeError saying what is missing and what to do."""
    with pytest.raises(RuntimeError) as info:
        backend.set_device("gpu")
    message = str(info.value)
    assert "no GPU is usable" in message and "CuPy" in message and "'cpu'" in message
    assert backend.xp() is np   # the failed request left NumPy active


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is present: asking for it succeeds")
def test_minirai_device_gpu_environment_variable_without_a_gpu(monkeypatch):
    """MINIRAI_DEVICE=gpu is read on first use and fails the same clear way."""
    monkeypatch.setenv("MINIRAI_DEVICE", "gpu")
    monkeypatch.setattr(backend, "_active", None)   # as in a fresh process
    with pytest.raises(RuntimeError, match="MINIRAI_DEVICE"):
        backend.xp()


@pytest.mark.parametrize("value,expected", [("cpu", np), ("CPU", np)])
def test_cpu_is_numpy(monkeypatch, value, expected):
    """MINIRAI_DEVICE=cpu (any case) selects NumPy."""
    monkeypatch.setenv("MINIRAI_DEVICE", value)
    monkeypatch.setattr(backend, "_active", None)
    assert backend.xp() is expected and backend.device_name() == "cpu"


@pytest.mark.skipif(backend.gpu_available(), reason="auto picks the GPU when there is one")
def test_auto_without_a_gpu_falls_back_to_numpy():
    """set_device("auto") without a GPU quietly uses NumPy."""
    assert backend.set_device("auto") is np


@pytest.mark.parametrize("bad", ["bogus", "cuda", "", None, 0])
def test_unknown_device_is_a_value_error(bad):
    """Anything but cpu/gpu/auto is a ValueError listing the choices."""
    with pytest.raises(ValueError, match="cpu.*gpu.*auto"):
        backend.set_device(bad)


def test_use_module_refuses_a_module_that_is_not_array_like():
    """A module without ndarray/asnumpy/asarray cannot be a backend (TypeError naming what lacks)."""
    import math
    with pytest.raises(TypeError, match="'math' lacks 'ndarray'"):
        backend.use_module(math)


def test_use_module_returns_the_previous_module_and_names_the_device(fake):
    """use_module hands back the old module; device_name names the stand-in; to_numpy copies back."""
    assert backend.use_module(np) is fake
    assert backend.use_module(fake) is np
    assert backend.device_name() == "fake_device"
    a = backend.to_device(np.arange(3.0))
    assert isinstance(a, fake.ndarray) and backend.is_device_array(a)
    assert type(backend.to_numpy(a)) is np.ndarray
    assert backend.to_float(a.sum()) == 3.0


# --- a whole training step on the stand-in --------------------------------------------------------------

def training_step_and_fit(module, batch_size=None):
    """Build data and model on ``module``; one manual step, then 3 iterations of fit.

    Returns host copies of everything worth comparing, and the device arrays themselves.
    """
    backend.use_module(module)
    ds = data.moons(n_samples=40, n_test=50)             # created on the active device
    model = mlp([2, 8, 8, 1], "relu", "sigmoid", seed=1)  # parameters on the active device
    loss = BCE()
    optimizer = Rprop(model.parameters(), lr=0.1)

    target = loss.prepare_target(ds.y_train, (40, 1), model.dtype)
    pred = model.forward(ds.X_train)
    value = loss.forward(pred, target)
    dx = model.backward(loss.backward())
    optimizer.step()

    history = fit(model, loss, optimizer, ds.X_train, ds.y_train, iters=3, batch_size=batch_size,
                  X_val=ds.X_test, y_val=ds.y_test, progress=False)
    device_arrays = [ds.X_train, ds.y_train, pred, value, dx, *optimizer.state[0].values()] + [
        a for _, p, g in model.named_parameters() for a in (p, g)]
    host = {"pred": pred, "value": value, "dx": dx}
    host.update({name: p for name, p, _ in model.named_parameters()})
    host.update({f"grad {name}": g for name, _, g in model.named_parameters()})
    host = {k: backend.to_numpy(v).copy() for k, v in host.items()}
    host.update({f"history {k}": history[k] for k in history.keys()})
    return host, device_arrays


@pytest.mark.parametrize("batch_size", [None, 16], ids=["full_batch", "mini_batch"])
def test_training_on_the_stand_in_equals_numpy(batch_size):
    """Forward, BCE, backward, an Rprop step and 3 fit iterations on the stand-in reproduce the NumPy
    numbers to 1e-6, and every array involved stays a device array (no implicit NumPy conversion)."""
    on_numpy, numpy_arrays = training_step_and_fit(np, batch_size)
    on_device, device_arrays = training_step_and_fit(fake_device, batch_size)
    assert all(isinstance(a, (np.ndarray, np.generic)) for a in numpy_arrays)   # NumPy: the loss is a scalar
    assert all(isinstance(a, fake_device.ndarray) for a in device_arrays)
    assert on_numpy.keys() == on_device.keys()
    for key in on_numpy:
        np.testing.assert_allclose(on_device[key], on_numpy[key], rtol=1e-6, atol=1e-6, err_msg=key)
    assert on_numpy["history step"].tolist() == [0, 1, 2, 3]


def test_numpy_data_with_a_device_model_is_a_type_error_naming_devices(fake):
    """fit with NumPy X/y and a model on the stand-in: TypeError naming both devices, before any step."""
    model = mlp([2, 4, 1], seed=0)
    assert isinstance(model.layers[0].params["W"], fake.ndarray)
    X = np.random.default_rng(0).standard_normal((10, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    before = [backend.to_numpy(p).copy() for p, _ in model.parameters()]
    with pytest.raises(TypeError, match=r"different devices \(cpu and fake_device\)"):
        fit(model, BCE(), Rprop(model.parameters(), lr=0.1), X, y, iters=2, progress=False)
    for a, (p, _) in zip(before, model.parameters()):
        np.testing.assert_array_equal(a, backend.to_numpy(p))


def test_device_data_with_a_numpy_model_is_a_type_error_naming_devices(fake):
    """The other way round: device data, NumPy model: the same clear TypeError."""
    backend.use_module(np)
    model = mlp([2, 4, 1], seed=0)
    backend.use_module(fake)
    ds = data.moons(n_samples=10, n_test=5)
    with pytest.raises(TypeError, match=r"different devices \((fake_device and cpu|cpu and fake_device)\)"):
        fit(model, BCE(), Rprop(model.parameters(), lr=0.1), ds.X_train, ds.y_train, iters=2, progress=False)


def test_model_to_moves_parameters_between_devices(fake):
    """Sequential.to(module) moves parameters and gradients; the outputs are the same numbers."""
    backend.use_module(np)
    model = mlp([2, 3, 1], seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    expected = model.forward(x).copy()
    model.to(fake)
    assert all(isinstance(a, fake.ndarray) for pair in model.parameters() for a in pair)
    np.testing.assert_allclose(backend.to_numpy(model.forward(fake.asarray(x))), expected, rtol=1e-6)
