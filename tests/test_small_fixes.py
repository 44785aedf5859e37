"""Small fixes, each with its test: a study report's identity gap where there is no cut, and
``minirai info``'s exit status when the device setting cannot be used."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minirai import backend, data
from minirai.cli import main
from minirai.research.methods import METHODS, train

ROOT = Path(__file__).absolute().parent.parent     # the repository: python -m minirai runs its minirai


# -- the study report: "–" where a run has no cut, a measured 0 stays a number -------------------------
def result(run_id: str, method: str, depth: int, identity_gap: float | None) -> dict:
    """A results line as a study writes it (minirai.research.study._execute), with made-up numbers."""
    return {"id": run_id, "dataset": "moons", "depth": depth, "width": 4, "activation": "tanh", "method": method,
            "seed": 0, "batch_size": 32, "iters": 10, "seconds": 0.1, "train_acc": 0.9, "test_acc": 0.8,
            "chained_loss": 0.3, "relaxed_loss": None if method.startswith("bp") else 0.3,
            "identity_gap": identity_gap, "device": "cpu", "predictions_on": "held-out"}


@pytest.fixture
def results(tmp_path):
    """rai-tuned at 2 hidden layers has no cut ("linear[3:]" of 3 cuts): its gap is None, as methods.train gives
    it (tested below). rai at 2 hidden layers has cuts, and its (made-up) gap is a measured 0, as after 0 steps."""
    lines = [result("tuned-a", "rai-tuned", 2, None), result("tuned-b", "rai-tuned", 2, None),
             result("rai-a", "rai", 2, 0.0), result("deep-a", "rai-tuned", 4, 2.5e-3),
             result("bp-a", "bp-tuned", 2, None)]
    (tmp_path / "predictions").mkdir()
    for line in lines:
        np.save(tmp_path / "predictions" / f"{line['id']}.npy", np.zeros(5, dtype=np.int16))
    return lines


def cells(table: str) -> dict[tuple[str, str], dict[str, str]]:
    """A markdown table as {(method, depth): {column title: cell}}."""
    split = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.splitlines()]
    head = split[0]
    return {(row[2], row[1]): dict(zip(head, row)) for row in split[2:]}


def test_the_report_shows_a_dash_for_the_identity_gap_of_a_run_without_a_cut(results, tmp_path):
    from minirai.research.report import markdown_table, summarise
    rows = summarise(results, tmp_path)
    by = {(row["method"], row["depth"]): row for row in rows}
    assert by["rai-tuned", 2]["identity_gap"] is None                # no cut: no gap, as for BP
    assert by["bp-tuned", 2]["identity_gap"] is None
    assert by["rai", 2]["identity_gap"] == (0.0, 0.0)                  # a measured 0 stays a number
    assert by["rai-tuned", 4]["identity_gap"] == (2.5e-3, 0.0)
    assert by["rai-tuned", 2]["relaxed_loss"] == (0.3, 0.0)            # the other columns are untouched
    table = cells(markdown_table(rows))
    assert table["rai-tuned", "2"]["identity gap"] == "–"
    assert table["bp-tuned", "2"]["identity gap"] == "–"
    assert table["rai", "2"]["identity gap"] == "0.00e+00 ± 0.00e+00"
    assert table["rai-tuned", "4"]["identity gap"] == "2.50e-03 ± 0.00e+00"


@pytest.mark.parametrize("classes", [2, 3])
def test_a_trained_method_without_a_cut_has_no_identity_gap(classes):
    """methods.train gives None (no gap) exactly when the trainer has no cut, every method, depths 0-4 (two
    classes end in a sigmoid, so the last Linear has a cut; more classes end in that Linear)."""
    dataset = data.classification(n_samples=30, n_features=4, n_classes=classes, n_test=6)
    for method in METHODS:
        for depth in range(5):
            trained = train(method, dataset, [3] * depth, "tanh", seed=0, iters=0, batch_size=10)
            columns = trained.history["identity_gap"].shape[1] if "identity_gap" in trained.history.keys() else 0
            assert (trained.identity_gap is None) == (columns == 0), (method, depth, trained.identity_gap)


# -- minirai info: the whole report, and exit status 2 when the device setting cannot be used -----------
def fresh_backend(monkeypatch) -> None:
    """As in a fresh process: no device chosen yet (conftest sets the CPU again after the test)."""
    monkeypatch.setattr(backend, "_active", None)


def test_info_with_an_invalid_device_setting_prints_the_report_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("MINIRAI_DEVICE", "bogus")
    fresh_backend(monkeypatch)
    assert main(["info"]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("minirai ")
    assert "device: none: MINIRAI_DEVICE must be one of ('cpu', 'gpu', 'auto'), got 'bogus'" in lines
    assert any(line.startswith("gpu: ") for line in lines)
    assert any(line.startswith("BLAS: ") for line in lines)
    assert captured.err == "minirai info: error: the device setting (MINIRAI_DEVICE='bogus') cannot be used; " \
                           "see the device line\n"


def test_info_asking_for_a_gpu_that_is_not_there_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)           # import cupy raises ImportError: no GPU
    monkeypatch.setattr(backend, "_probe", None)
    monkeypatch.setenv("MINIRAI_DEVICE", "gpu")
    fresh_backend(monkeypatch)                              # (monkeypatch restores _probe and cupy after)
    assert main(["info"]) == 2
    captured = capsys.readouterr()
    assert "device: none: device 'gpu' was requested (MINIRAI_DEVICE) but no GPU is usable" in captured.out
    assert "gpu: CuPy is not installed" in captured.out
    assert "MINIRAI_DEVICE='gpu'" in captured.err


@pytest.mark.parametrize("setting", ["cpu", "auto"])
def test_info_with_a_usable_device_setting_exits_0(monkeypatch, capsys, setting):
    monkeypatch.setenv("MINIRAI_DEVICE", setting)
    fresh_backend(monkeypatch)
    assert main(["info"]) == 0
    captured = capsys.readouterr()
    assert "device: cpu" in captured.out or "device: gpu" in captured.out
    assert captured.err == "" or setting == "auto"           # auto on a broken GPU may say why it fell back


def test_python_m_minirai_info_with_an_invalid_device_setting_exits_2():
    env = {**os.environ, "MINIRAI_DEVICE": "bogus", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "minirai", "info"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout.startswith("minirai ")
    assert "device: none: MINIRAI_DEVICE must be one of ('cpu', 'gpu', 'auto'), got 'bogus'" in done.stdout
    assert "\ngpu: " in done.stdout and "\nBLAS: " in done.stdout
    assert "MINIRAI_DEVICE='bogus'" in done.stderr
