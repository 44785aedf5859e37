"""Shared fixtures: run tests on every array backend, and keep NumPy the default otherwise.

* ``xp`` is parametrised over ``numpy`` (always), the CuPy-like stand-in ``fake_device``
  (always; see ``tests/fake_device.py``) and ``cupy`` (only where ``gpu_available()``).
  It makes that module the active backend and restores NumPy afterwards.
* Every test starts and ends on NumPy (``set_device("cpu")``), so a test that fails
  half-way on a device cannot leak its backend into the next one, and ``MINIRAI_DEVICE=auto``
  on a GPU machine does not silently move the NumPy-only tests to CuPy.
"""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")   # plots in tests never open a window

import numpy as np
import pytest

import fake_device
from minirai import backend


def _backend_params() -> list:
    params = [pytest.param(np, id="numpy"), pytest.param(fake_device, id="fake_device")]
    if backend.gpu_available():
        import cupy  # noqa: PLC0415 - only where a GPU answers
        params.append(pytest.param(cupy, id="cupy"))
    return params


BACKENDS = _backend_params()


@pytest.fixture(autouse=True)
def _numpy_by_default():
    """Each test starts on NumPy and leaves NumPy active, whatever it did in between."""
    backend.set_device("cpu")
    yield
    backend.set_device("cpu")


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The active array module for this test: numpy, fake_device, or cupy (with a GPU)."""
    backend.use_module(request.param)
    yield request.param
    backend.set_device("cpu")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say loudly what did not run: per test module, how many tests were skipped and why.

    A module that skips itself (no Numba, no MXCSR access, no PyTorch) would otherwise show only as
    a few 's' among the dots; these lines name the feature that was missing."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    by_module: dict[tuple[str, str], int] = {}
    for report in skipped:
        module = report.nodeid.split("::")[0] or report.location[0]
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        key = (module, reason.removeprefix("Skipped: "))
        by_module[key] = by_module.get(key, 0) + 1
    terminalreporter.section("minirai: tests that did NOT run", sep="!", yellow=True, bold=True)
    for (module, reason), count in sorted(by_module.items()):
        terminalreporter.write_line(f"SKIPPED {count:>3} in {module}: {reason}", yellow=True, bold=True)


@pytest.fixture
def stacked():
    """The fast twins (``FastRAI``) the training loops make during the test, in order; each one's
    ``groups`` are the blocks it runs as stacks. Empty when only the textbook path ran."""
    from minirai.fast import stacking   # noqa: PLC0415
    made = []
    original = stacking.FastRAI

    class Recording(original):
        def __init__(self, trainer, **options):
            super().__init__(trainer, **options)
            made.append(self)

    stacking.FastRAI = Recording
    try:
        yield made
    finally:
        stacking.FastRAI = original


def stacks_of(made) -> list[tuple[int, int]]:
    """``(first, count)`` of the groups the last fast twin stacked ([] if none was made)."""
    return [(g.first, g.count) for g in made[-1].groups] if made else []
