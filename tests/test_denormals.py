"""The CPU's flush-to-zero switch (minirai.fast.denormals) inside training steps."""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from minirai import data
from minirai.fast import denormals
from minirai.losses import BCE
from minirai.optim import Rprop
from minirai.rai import RAI
from minirai.train import fit

pytestmark = pytest.mark.skipif(not denormals.available(), reason=f"no MXCSR access: {denormals.unavailable_reason()}")

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


@pytest.mark.parametrize("textbook", [False, True])
@pytest.mark.parametrize("strict", [False, True])
def test_steps_flush_unless_strict_ieee_and_callbacks_never_do(strict, textbook):
    """fit's and RAI.fit's steps (a hook runs inside them) flush, on both paths, unless strict_ieee();
    callbacks and records see strict IEEE arithmetic, and so does the code after the loop."""
    model = minirai.mlp([2, 8, 1], "sigmoid", "sigmoid", seed=0)
    ds = data.moons(n_samples=20, n_test=10)
    in_steps, in_callbacks = [], []
    model.layers[0].register_hook(lambda layer, event, x, y: in_steps.append(flushing_now()))
    with minirai.strict_ieee(strict), minirai.reference(textbook):
        fit(model, BCE(), Rprop(model.parameters(), lr=0.1), ds.X_train, ds.y_train, iters=3, progress=False,
            callback=lambda step, model: in_callbacks.append(flushing_now()))
        trainer = RAI(model, ds.X_train, ds.y_train, BCE())
        trainer.fit(Rprop(trainer.parameters(), lr=0.1), 2, progress=False,
                    callback=lambda step, trainer: in_callbacks.append(flushing_now()))
    # the hook also runs in the records' evaluations (strict IEEE) and in the steps (flushing unless strict)
    assert in_steps.count(True) == (0 if strict else 3 * 2 + 2 * 2)   # forward and backward per step
    assert in_callbacks == [False] * 5
    assert not flushing_now()


def test_strict_ieee_from_the_environment(monkeypatch):
    from minirai import switches
    assert switches.flush_denormals()
    monkeypatch.setenv("MINIRAI_STRICT_IEEE", "1")
    assert not switches.flush_denormals()
    with minirai.strict_ieee(False):
        assert switches.flush_denormals()
    monkeypatch.setenv("MINIRAI_STRICT_IEEE", "maybe")
    with pytest.raises(ValueError, match="MINIRAI_STRICT_IEEE"):
        switches.flush_denormals()


@pytest.mark.parametrize("ir", ["_MXCSR_IR_TYPED", "_MXCSR_IR"])
def test_both_forms_of_the_ir_read_the_same_register(ir):
    """The typed-pointer IR (for LLVM 14, llvmlite 0.43) and the opaque-pointer IR both compile here
    and read the same MXCSR value as the switch does."""
    import ctypes

    import llvmlite.binding as llvm
    try:
        module = llvm.parse_assembly(getattr(denormals, ir))
    except RuntimeError as error:          # LLVM 14 (llvmlite 0.43) reads no opaque pointers
        if ir == "_MXCSR_IR_TYPED":
            raise
        pytest.skip(f"this LLVM reads no opaque pointers: {error}")
    machine = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    read = ctypes.CFUNCTYPE(ctypes.c_uint32)(engine.get_function_address("read_mxcsr"))
    assert read() == denormals.mxcsr_access()[0]()
