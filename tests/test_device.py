"""Devices: choosing one, clear errors, and a whole training step on a CuPy-like stand-in.

The stand-in (tests/fake_device.py) refuses every implicit conversion to NumPy, as CuPy does,
so a training step that runs on it and reproduces the NumPy numbers shows the engine keeps
its arrays on the device from the data loader to the optimizer.
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import fake_device
from minirai import backend, data
from minirai.cli import main
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


# --- why a device was chosen -----------------------------------------------------------------------

def fake_cupy(device_count=None, kernel_error=None):
    """A module that looks like an installed CuPy whose device or first kernel fails."""
    import types

    def count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    def arange(*args, **kwargs):
        raise kernel_error

    runtime = types.SimpleNamespace(getDeviceCount=count)
    return types.SimpleNamespace(__version__="14.2.0", cuda=types.SimpleNamespace(runtime=runtime),
                                 arange=arange, float32=np.float32)


@pytest.mark.parametrize("module,reason", [
    (fake_cupy(RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")),
     "CuPy 14.2.0 imports, but no CUDA device answers (RuntimeError: cudaErrorNoDevice"),
    (fake_cupy(0), "CuPy 14.2.0 imports, but it sees no CUDA device"),
    (fake_cupy(1, OSError("libnvrtc.so.12: cannot open shared object file")),
     "sees 1 CUDA device(s) but cannot run a kernel (OSError: libnvrtc.so.12"),
])
def test_auto_says_in_one_line_why_it_fell_back(monkeypatch, capsys, module, reason):
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setattr(backend, "_probe", None)
    assert backend.set_device("auto") is np
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and line.startswith("minirai: device auto: using the CPU: ") and reason in line
    assert reason in backend.device_report()["chosen"] and reason in backend.device_report()["gpu"]
    with pytest.raises(RuntimeError, match=re.escape(reason)):
        backend.set_device("gpu")
    monkeypatch.setattr(backend, "_probe", None)


def test_without_cupy_auto_is_quiet_and_info_says_why(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)           # import cupy raises ImportError
    monkeypatch.setattr(backend, "_probe", None)
    assert backend.set_device("auto") is np
    assert capsys.readouterr().err == ""
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "device: cpu (auto chose the CPU: CuPy is not installed" in out and "gpu-cuda12" in out
    monkeypatch.setenv("MINIRAI_DEVICE", "gpu")
    monkeypatch.setattr(backend, "_active", None)
    assert main(["info"]) == 2                               # the whole report, and the exit status of an error
    assert "device: none: device 'gpu' was requested (MINIRAI_DEVICE)" in capsys.readouterr().out
    monkeypatch.setattr(backend, "_probe", None)


# --- host synchronisations and kernels per step, counted on the stand-in ----------------------------

def counted_steps(run) -> list[dict]:
    """The stand-in's counts for each training step that ``run(callback)`` takes (callback after each)."""
    marks = []
    run(lambda step, _: marks.append(dict(fake_device.counts)))
    return [{k: b[k] - a[k] for k in a} for a, b in zip(marks[:-1], marks[1:])]


@pytest.mark.parametrize("textbook", [False, True], ids=["fast", "textbook"])
def test_at_most_one_host_synchronisation_per_training_step(fake, textbook):
    """A step waits for the device once (to read the loss), for BP, RAI and mini-batch RAI; records
    (every 100 steps here, so only at the end) are not steps."""
    import minirai
    from minirai.minibatch import MiniBatchRAI
    from minirai.optim import Adam
    from minirai.rai import RAI
    moons = data.moons(n_samples=64)
    with minirai.reference(textbook):
        model = mlp([2] + [16] * 6 + [1], "sigmoid", "sigmoid", seed=0)
        bp = counted_steps(lambda cb: fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train,
                                          moons.y_train, iters=6, record_every=100, progress=False, callback=cb))
        trainer = RAI(mlp([2] + [16] * 6 + [1], "sigmoid", "sigmoid", seed=0), moons.X_train, moons.y_train, BCE())
        rai = counted_steps(lambda cb: trainer.fit(Rprop(trainer.parameters(), lr=0.1), 6, record_every=100,
                                                   progress=False, callback=cb))
        batched = MiniBatchRAI(mlp([2] + [16] * 6 + [1], "sigmoid", "sigmoid", seed=0), moons.X_train,
                               moons.y_train, BCE(), batch_size=16)
        minibatch = counted_steps(lambda cb: batched.fit(Adam(batched.parameters()), 8, record_every=100,
                                                         progress=False, callback=cb))
    for name, steps in (("BP", bp), ("RAI", rai), ("mini-batch RAI", minibatch)):
        assert [s["syncs"] for s in steps[:-1]] == [1] * (len(steps) - 1), name   # (the last holds the record)
        assert all(s["kernels"] > 0 for s in steps), name


def test_deep_rai_stacks_into_few_kernels_per_step(fake):
    """The proposal's deep net on the stand-in: the stacked RAI step issues a few hundred device
    operations, the textbook one thousands (see docs/benchmarks.md for the counts)."""
    import minirai
    from minirai.rai import RAI
    moons = data.moons()
    counts = {}
    for textbook in (False, True):
        with minirai.reference(textbook):
            trainer = RAI(mlp([2] + [100] * 100 + [1], "sigmoid", "sigmoid", seed=0), moons.X_train,
                          moons.y_train, BCE())
            counts[textbook] = counted_steps(lambda cb: trainer.fit(Rprop(trainer.parameters(), lr=0.1), 3,
                                                                    record_every=100, progress=False, callback=cb))[0]
    assert counts[False]["syncs"] == counts[True]["syncs"] == 1
    assert counts[False]["kernels"] < 300 < 3000 < counts[True]["kernels"]


def test_deep_bp_step_issues_about_1450_device_operations(fake):
    """Chapter 8 and docs/benchmarks.md: a deep BP step on the fast path, after the first, issues about 1,450
    device operations (and reads the device once)."""
    import minirai
    moons = data.moons()
    with minirai.reference(False):
        model = mlp([2] + [100] * 100 + [1], "sigmoid", "sigmoid", seed=0)
        steps = counted_steps(lambda cb: fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train,
                                             moons.y_train, iters=2, record_every=100, progress=False, callback=cb))
    assert steps[0]["syncs"] == 1
    assert 1350 <= steps[0]["kernels"] <= 1550, steps[0]


def test_the_packed_optimizer_takes_its_contiguous_runs_on_the_stand_in(fake):
    """As on CuPy: a packed model's 8 arrays are one run, updated in one sweep, with NumPy's numbers."""
    from minirai.fast import optim as fast_optim
    results = {}
    for module in (np, fake_device):
        backend.use_module(module)
        model = mlp([2, 8, 8, 8, 1], "tanh", "sigmoid", seed=0, dtype=np.float64)
        optimizer = Rprop(model.parameters(), lr=0.1)
        assert [len(run[0]) for run in fast_optim.runs_of(optimizer)] == [8]   # all of them, one flat array
        for p, g in model.parameters():
            g[...] = backend.to_device(np.linspace(-1, 1, int(np.prod(g.shape))).reshape(g.shape))
        fast_optim.step(optimizer)
        results[module.__name__] = [backend.to_numpy(p) for p, _ in model.parameters()]
    backend.use_module(fake_device)
    for a, b in zip(results["numpy"], results["fake_device"]):
        assert np.array_equal(a, b)
