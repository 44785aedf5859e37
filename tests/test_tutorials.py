"""The tutorial chapters run top to bottom and write their figures; the old checker script still works.

Each chapter runs in a subprocess, as a learner would run it, in quick mode
(``MINIRAI_TUTORIAL_QUICK=1``: fewer iterations), headless (``MPLBACKEND=Agg``), on the CPU,
with its figures written to a temporary folder (``MINIRAI_TUTORIAL_OUT``).
"""
from __future__ import annotations

import os
import re
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
    "04_optimizers.py": ["04_optimizers.png"],
    "05_softmax_multiclass.py": ["05_loss_curves.png", "05_confusion.png"],
    "06_initialisation.py": ["06_gradient_profile.png", "06_loss_curves.png"],
    "07_relaxation_gap.py": ["07_gaps_every_linear.png", "07_loss_curves.png"],
    "08_minibatch_rai_and_gpu.py": ["08_minibatch_loss_curves.png"],
}
#: a line each chapter must print (its key result, so a silent no-op cannot pass)
PRINTS = {
    "01_backprop_by_hand.py": "Linear ok: True",
    "02_vanishing_gradients.py": "measured shrink per layer",
    "03_relaxed_activation_identity.py": "at the end: relaxed loss",
    "04_optimizers.py": "moved the first layer:",
    "05_softmax_multiclass.py": "held-out accuracy",
    "06_initialisation.py": "first / last hidden layer's gradient",
    "07_relaxation_gap.py": "the two largest max |o - Z| are at cuts",
    "08_minibatch_rai_and_gpu.py": "identical bit for bit",
}


def number_after(text: str, marker: str) -> float:
    """The number that follows ``marker`` in ``text``."""
    match = re.search(re.escape(marker) + r"\s*([-+0-9.e]+)", text)
    assert match, f"{marker!r} not printed"
    return float(match.group(1).rstrip("."))


def check_the_text_s_claims(chapter: str, out: str) -> None:
    """What each chapter's text says about the numbers it prints (signs, orders of magnitude, which layer)."""
    if chapter.startswith("02"):     # "about 1/7 per layer compounds to about 1e-34 over 40 layers"
        assert 1e-40 < number_after(out, "layers that is a factor of about") < 1e-28
    if chapter.startswith("04"):     # only Rprop moves the first layer of the deep net
        assert "moved the first layer: {'gradient descent': False, 'Adam': False, 'Rprop': True}" in out
    if chapter.startswith("05"):     # softmax as written overflows; the stable one does not; digits learn
        assert "as written:    [[nan nan nan]]" in out and "ok = True" in out
        assert number_after(out, "held-out accuracy") >= 0.9
    if chapter.startswith("06"):     # about 1e-33, about 1e-25, about 4; only the orthogonal one trains
        ratios = [float(v) for v in re.findall(r"gradient at step 1 = ([-+0-9.e]+);", out)]
        accuracies = [float(v) for v in re.findall(r"training accuracy ([0-9.]+)", out)]
        assert ratios[0] < 1e-28 and ratios[1] < 1e-20 and 1e-2 < ratios[2] < 1e2, ratios
        assert accuracies[0] == accuracies[1] == 0.5 and accuracies[2] > 0.8, accuracies
    if chapter.startswith("07"):     # the first cuts have the largest gaps; 'linear[3:]' fits the training set
        first, second = (int(v) for v in re.search(r"largest max \|o - Z\| are at cuts (\d+) and (\d+)", out).groups())
        assert first in (1, 2) and second in (2, 3), (first, second)
        every, tuned = (float(v) for v in re.findall(r"chained: training accuracy ([0-9.]+)", out))
        assert tuned == 1.0 > every
    if chapter.startswith("08"):     # exact where it should be; both kinds learn digits
        assert "identical bit for bit: True" in out and "untouched: True" in out
        assert all(float(v) >= 0.85 for v in re.findall(r"held-out accuracy ([0-9.]+)", out))


def run(args: list[str], out: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, MINIRAI_TUTORIAL_QUICK="1", MPLBACKEND="Agg", MINIRAI_DEVICE="cpu")
    if out is not None:
        env["MINIRAI_TUTORIAL_OUT"] = str(out)
        out.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, *args], cwd=out or ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


#: every chapter there is (a new one is run too; CHAPTERS and PRINTS add what it must write and print)
FOUND = sorted(path.name for path in TUTORIALS.glob("[0-9][0-9]_*.py"))


def test_the_chapters_found_include_the_ones_named_here():
    assert set(CHAPTERS) <= set(FOUND) and set(PRINTS) <= set(FOUND)


@pytest.mark.parametrize("chapter", FOUND)
def test_chapter_runs_and_writes_its_figures(chapter, tmp_path):
    out = tmp_path / "figures"
    result = run([str(TUTORIALS / chapter)], out=out)
    assert result.returncode == 0, f"{chapter} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for name in CHAPTERS.get(chapter, []):
        figure = out / name
        assert figure.is_file() and figure.stat().st_size > 10_000, f"{chapter} did not write {name}"
    assert not (out / "tutorial-out").exists()          # MINIRAI_TUTORIAL_OUT was used, not the default
    assert PRINTS.get(chapter, "") in result.stdout, result.stdout[-3000:]
    assert "RuntimeWarning" not in result.stderr, result.stderr   # no overflow/underflow noise for a learner
    check_the_text_s_claims(chapter, result.stdout)
    if chapter.startswith("03"):
        # relaxed loss, chained loss and identity gap are printed side by side
        header = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["step", "lam"])
        for column in ("relaxed", "mean gap", "chained", "val_acc"):
            assert column in header


def test_the_old_checker_script_is_minirai_check():
    result = run([str(TUTORIALS / "check_exercises.py"), "--solutions", str(ROOT / "teachers" / "solutions.py")])
    assert result.returncode == 0, result.stdout + result.stderr
    from minirai.course.tasks import TASKS
    assert result.stdout.count(" PASS ") == len(TASKS)
