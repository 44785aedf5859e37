"""The CPU's flush-to-zero switch (minirai.denormals) inside training loops."""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from minirai import data, denormals
from minirai.losses import BCE
from minirai.network import training_loop
from minirai.optim import Rprop
from minirai.rai import RAI
from minirai.train import fit

pytestmark = pytest.mark.skipif(not denormals.available(), reason="no MXCSR access here (not x86-64, or no llvmlite)")

TINY = np.full(64, 1e-20, np.float32)      # TINY * TINY = 1e-40: a subnormal float32


def flushing_now() -> bool:
    read, _ = denormals.mxcsr_access()
    return read() & (denormals.FTZ | denormals.DAZ) == denormals.FTZ | denormals.DAZ


def test_subnormal_results_become_zero_inside_and_come_back_after():
    assert (TINY * TINY)[0] == np.float32(1e-40) and not flushing_now()
    with denormals.flushing_denormals():
        assert flushing_now()
        assert not (TINY * TINY).any()                              # FTZ: the result is written as 0
        assert not (np.full(4, 1e-40, np.float32) * 1).any()       # DAZ: a subnormal input is read as 0
        with denormals.flushing_denormals(False):                   # nested and switched off: unchanged
            assert flushing_now()
    assert not flushing_now() and (TINY * TINY)[0] > 0


def test_the_previous_setting_comes_back_after_an_exception():
    with pytest.raises(KeyError):
        with denormals.flushing_denormals():
            raise KeyError("inside")
    assert not flushing_now()


@pytest.mark.parametrize("strict", [False, True])
def test_fit_flushes_unless_the_model_asks_for_strict_ieee(strict):
    """fit's and RAI.fit's steps run with the switch on; model.flush_subnormals = False keeps strict IEEE."""
    model = minirai.mlp([2, 8, 1], "sigmoid", "sigmoid", seed=0)
    model.flush_subnormals = not strict
    ds = data.moons(n_samples=20, n_test=10)
    seen = []
    fit(model, BCE(), Rprop(model.parameters(), lr=0.1), ds.X_train, ds.y_train, iters=3,
        callback=lambda step, model: seen.append(flushing_now()))
    trainer = RAI(model, ds.X_train, ds.y_train, BCE())
    trainer.fit(Rprop(trainer.parameters(), lr=0.1), 2, progress=False,
                callback=lambda step, trainer: seen.append(flushing_now()))
    assert seen == [not strict] * 5
    assert not flushing_now()
    with training_loop(model):
        assert flushing_now() is (not strict)
