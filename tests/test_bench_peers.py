"""benchmarks/bench.py's compiled peers (JAX jit, torch.compile) and PyTorch eager train the same run as minirai.

Every peer of the benchmark starts from minirai's initial weights, so its first losses must equal
minirai's to float32 rounding (``bench.CHECK_RTOL``); the benchmark checks that on its own
workloads, and this test on a small one (a 2-16-16-16-1 sigmoid net on 64 points), fast.
Each peer is skipped where it is not installed (the ``bench`` extra). torch.compile compiles C++
for one to two minutes even on this small net, so its case runs only with
``MINIRAI_TEST_TORCH_COMPILE=1`` (benchmarks/bench.py checks its losses on every run anyway).
RAI's third loss is decided by rounding (see ``bench.RAI_CHECK_STEPS``): its first two are checked.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench  # noqa: E402
import jax_peer  # noqa: E402

SMALL = bench.Workload("small", [2, 16, 16, 16, 1], "sigmoid", 64)


@pytest.fixture(scope="module")
def small_run():
    """The small workload's data and minirai's first losses, BP and RAI (a table after every Linear)."""
    X, y = bench.minirai_data(SMALL)
    references = {method: bench.reference_losses(SMALL, X, y, method) for method in ("bp", "rai")}
    return X, y, references


@pytest.fixture(scope="module")
def jax():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return pytest.importorskip("jax")


def required(method: str) -> int:
    return bench.RAI_CHECK_STEPS if method.startswith("rai") else bench.CHECK_STEPS


def assert_agree(ours: list[float], theirs: list[float], steps: int) -> None:
    line, ok = bench.compare_losses("small", ours, theirs, steps)
    assert ok, line


@pytest.mark.parametrize("method", ["bp", "rai", "bp-stacked", "rai-stacked"])
def test_jax_check_trainer_matches_minirai(small_run, jax, method):
    """The JAX step (value_and_grad + Rprop, jitted), returning the objective with minirai's
    clipped BCE: the first losses, so the first updates are checked too."""
    X, y, references = small_run
    runner = bench.jax_runner(jax, SMALL, X, y, method, check=True)
    runner.warm_up(bench.CHECK_STEPS)
    assert_agree(references[method.split("-")[0]], runner.first_losses, required(method))
    assert runner.compilations() == 1          # one program, compiled once


@pytest.mark.parametrize("method", ["bp", "rai"])
def test_jax_timed_trainer_first_loss(small_run, jax, method):
    """The trainer the benchmark times computes BCE from the logits: the same value as minirai's
    clipped BCE while no output is saturated (true of the initial weights)."""
    X, y, references = small_run
    runner = bench.jax_runner(jax, SMALL, X, y, method)
    runner.warm_up(1)
    assert_agree(references[method][:1], runner.first_losses, steps=1)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "torch.compile"])
def test_torch_peers_match_minirai(small_run, compiled):
    torch = pytest.importorskip("torch")
    if compiled:
        if os.environ.get("MINIRAI_TEST_TORCH_COMPILE") != "1":
            pytest.skip("torch.compile takes 1-2 minutes to compile here: MINIRAI_TEST_TORCH_COMPILE=1 runs it")
        pytest.importorskip("torch._inductor")
    X, y, references = small_run
    options = {} if compiled else None
    runners = bench.torch_runners(torch, SMALL, X, y, "cpu", compile_options=options)
    assert [r.method for r in runners] == ["bp", "rai"]
    for runner in runners:
        runner.warm_up(bench.CHECK_STEPS)
        assert runner.peer == ("compile" if compiled else "torch")
        assert_agree(references[runner.method], runner.first_losses, required(runner.method))


def test_check_catches_a_different_run(small_run, jax):
    """The check is not vacuous: a peer started from other weights (seed 1) fails it."""
    X, y, references = small_run
    trainer = jax_peer.make_trainer(jax, "bp", SMALL.activation, bench.minirai_layers(bench.minirai_model(SMALL, 1)),
                                    X, y, bench.LR, check=True)
    losses = [float(trainer.step()) for _ in range(bench.CHECK_STEPS)]
    _, ok = bench.compare_losses("small", references["bp"], losses)
    assert not ok
