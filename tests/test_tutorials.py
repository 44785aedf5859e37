"""The tutorial chapters run top to bottom and write their figures; the exercise checker works.

Each chapter runs in a subprocess, as a learner would run it, in quick mode
(``MINIRAI_TUTORIAL_QUICK=1``: fewer iterations), headless (``MPLBACKEND=Agg``), on the CPU,
with its figures written to a temporary folder (``MINIRAI_TUTORIAL_OUT``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"
TIMEOUT = 120   # seconds per subprocess: generous for a loaded machine; each takes a few seconds

CHAPTERS = {
    "01_backprop_by_hand.py": ["01_landscape.png", "01_loss_curves.png"],
    "02_vanishing_gradients.py": ["02_gradient_profile.png", "02_gradient_heatmap.png"],
    "03_relaxed_activation_identity.py": ["03_gradient_profile_bp_vs_rai.png", "03_landscape_bp_vs_rai.png",
                                          "03_rai_loss_curves.png", "03_identity_gaps.png"],
}
#: a line each chapter must print (its key result, so a silent no-op cannot pass)
PRINTS = {
    "01_backprop_by_hand.py": "Linear ok: True",
    "02_vanishing_gradients.py": "measured shrink per layer",
    "03_relaxed_activation_identity.py": "at the end: relaxed loss",
}


def run(args: list[str], out: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MINIRAI_TUTORIAL_QUICK="1", MPLBACKEND="Agg", MINIRAI_DEVICE="cpu")
    if out is not None:
        env["MINIRAI_TUTORIAL_OUT"] = str(out)
        out.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, *args], cwd=out or ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_chapter_runs_and_writes_its_figures(chapter, tmp_path):
    out = tmp_path / "figures"
    result = run([str(TUTORIALS / chapter)], out=out)
    assert result.returncode == 0, f"{chapter} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for name in CHAPTERS[chapter]:
        figure = out / name
        assert figure.is_file() and figure.stat().st_size > 10_000, f"{chapter} did not write {name}"
    assert not (out / "tutorial-out").exists()          # MINIRAI_TUTORIAL_OUT was used, not the default
    assert PRINTS[chapter] in result.stdout, result.stdout[-3000:]
    assert "RuntimeWarning" not in result.stderr, result.stderr   # no overflow/underflow noise for a learner
    if chapter.startswith("02"):     # the text: "about 1/7 per layer compounds to about 1e-34 over 40 layers"
        line = next(line for line in result.stdout.splitlines() if "layers that is a factor of about" in line)
        factor = float(line.split()[-1])
        assert 1e-40 < factor < 1e-28, line
    if chapter.startswith("03"):
        # relaxed loss, chained loss and identity gap are printed side by side
        header = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["step", "lam"])
        for column in ("relaxed", "mean gap", "chained", "val_acc"):
            assert column in header


def test_the_old_checker_script_is_minirai_check():
    result = run([str(TUTORIALS / "check_exercises.py"), "--solutions"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" PASS ") == 12
