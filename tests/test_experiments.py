"""The proposal's experiments: short real runs, reproduce()'s files, and the command line."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from minirai import backend, cli, data
from minirai.research import experiments

SUMMARY_KEYS = {"experiment", "method", "iters", "seconds", "it_per_s", "relaxed_loss", "chained_loss",
                "train_acc", "test_acc", "identity_gap"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- short runs --------------------------------------------------------------------------------

def test_shallow_bp_fits_the_moons():
    """Shallow BP (seed 3, Rprop 0.1), 100 steps: train acc 1.0, test acc >= 0.97 (measured 0.994)."""
    result = experiments.run("shallow", "bp", iters=100)
    assert result.seed == experiments.DEFAULT_SEED
    assert (result.experiment, result.method, result.iters) == ("shallow", "bp", 100)
    assert result.train_acc == 1.0
    assert result.test_acc >= 0.97
    assert result.relaxed_loss is None and result.identity_gap is None
    assert result.history.last("train_acc") == result.train_acc
    assert result.history["step"][0] == 0 and result.history["step"][-1] == 100


def test_shallow_rai_fits_the_moons():
    """Shallow RAI, 100 steps: train acc >= 0.95, test acc >= 0.97 (measured 0.98 / 0.983;
    0.98 / 0.991 at 200 steps, 0.99 / 0.994 at 300), with a small identity gap."""
    result = experiments.run("shallow", "rai", iters=100)
    assert result.train_acc >= 0.95
    assert result.test_acc >= 0.97
    assert result.history.last("chained_acc") == result.train_acc
    assert 0 < result.relaxed_loss < 0.1
    assert 0 <= result.identity_gap < 1e-3
    assert result.history["identity_gap"].shape[1] == 5      # one cut after each hidden Linear


def test_deep_runs_complete_with_finite_losses():
    """The 101-Linear sigmoid net, 20 steps of BP and of RAI: finite losses, 101 cuts for RAI."""
    bp = experiments.run("deep", "bp", iters=20, record_every=10)
    rai = experiments.run("deep", "rai", iters=20, record_every=10)
    assert len(bp.model) == len(rai.model) == 202
    for result in (bp, rai):
        assert math.isfinite(result.chained_loss), result.method
        assert 0 <= result.train_acc <= 1 and 0 <= result.test_acc <= 1
        assert list(result.history["step"]) == [0, 10, 20]
    assert math.isfinite(rai.relaxed_loss) and math.isfinite(rai.identity_gap)
    assert rai.history["identity_gap"].shape == (3, 101)
    assert np.all(np.isfinite(rai.history["relaxed_loss"]))


def test_bad_experiment_and_method_names():
    """Unknown experiment or method names are ValueErrors; deep BP brings its tuned baseline."""
    with pytest.raises(ValueError, match="unknown experiment 'medium'"):
        experiments.build("medium", seed=0)
    with pytest.raises(ValueError, match="unknown method 'sgd'"):
        experiments.run("shallow", "sgd", iters=1)
    with pytest.raises(ValueError, match="method must be bp, rai or both"):
        experiments.methods_for("shallow", "all")
    assert experiments.methods_for("deep", "both") == ["bp", "bp-tuned", "rai"]
    assert experiments.methods_for("shallow", "both") == ["bp", "rai"]


# --- reproduce() -------------------------------------------------------------------------------

def test_reproduce_writes_figures_and_summary(tmp_path):
    """reproduce('shallow', 'both') writes both landscapes, the side-by-side PNG and summary.json."""
    results = experiments.reproduce("shallow", "both", iters=50, out=tmp_path, progress=False, echo=False)
    assert [r.method for r in results] == ["bp", "rai"]
    for name in ("shallow-bp-landscape.png", "shallow-rai-landscape.png", "shallow-bp-vs-rai.png"):
        path = tmp_path / name
        assert path.is_file(), name
        content = path.read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 5000, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["method"] for s in summary] == ["bp", "rai"]
    for entry in summary:
        assert SUMMARY_KEYS <= set(entry), SUMMARY_KEYS - set(entry)
        assert entry["experiment"] == "shallow" and entry["iters"] == 50
        assert entry["seconds"] > 0 and entry["it_per_s"] > 0
        assert 0 <= entry["train_acc"] <= 1 and 0 <= entry["test_acc"] <= 1
        assert math.isfinite(entry["chained_loss"])
    bp, rai = summary
    assert bp["relaxed_loss"] is None and bp["identity_gap"] is None
    assert isinstance(rai["relaxed_loss"], float) and isinstance(rai["identity_gap"], float)
    assert rai["train_acc"] == results[1].train_acc


# --- the command line --------------------------------------------------------------------------

def test_cli_reproduce_prints_the_table(tmp_path, capsys):
    """`minirai reproduce shallow --iters 20 --quiet` returns 0, prints the table and writes files."""
    code = cli.main(["reproduce", "shallow", "--iters", "20", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("experiment"))
    for column in ("method", "device", "iters", "relaxed loss", "chained loss", "train acc", "test acc",
                   "identity gap"):
        assert column in header, column
    assert "relaxed loss: what RAI's optimizer minimises" in out          # the legend under the table
    assert "summary.json" in out.splitlines()[-1] and "\x1b" not in out      # the files, no escape codes
    rows = [line.split() for line in out.splitlines() if line.startswith("shallow ")]
    assert [row[1] for row in rows] == ["bp", "rai"]
    assert all(row[2] == "cpu" and row[3] == "20" for row in rows)
    assert rows[0][6] == "-" and rows[0][-1] == "-"          # BP has no relaxed loss, no gap
    assert (tmp_path / "summary.json").is_file()


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is available here")
def test_cli_gpu_without_gpu_is_a_clear_error(tmp_path, capsys):
    """`--device gpu` without a GPU returns 2 and says on stderr why, without writing anything."""
    out_dir = tmp_path / "runs"
    code = cli.main(["reproduce", "shallow", "--iters", "1", "--out", str(out_dir), "--device", "gpu",
                     "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("minirai: error:")
    assert "gpu" in captured.err and "no GPU is usable" in captured.err
    assert not out_dir.exists()


def test_cli_rejects_a_non_positive_iters(capsys):
    """--iters 0 is an argparse error (exit status 2) naming the expected value."""
    with pytest.raises(SystemExit) as info:
        cli.main(["reproduce", "shallow", "--iters", "0"])
    assert info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_python_m_minirai_help():
    """`python -m minirai --help` exits 0 and lists the reproduce command."""
    done = subprocess.run([sys.executable, "-m", "minirai", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "reproduce" in done.stdout and "usage: minirai" in done.stdout


def test_cli_reports_a_diverged_run_with_its_message_and_exit_code_3(monkeypatch, capsys, tmp_path):
    """A run that diverges ends the command with the trainer's message (where and when), not a traceback."""
    import minirai.research.experiments
    from minirai.train import History, TrainingDiverged

    def diverge(*args, **kwargs):
        raise TrainingDiverged("RAI training diverged at step 7: table 3 (after layer 4) holds NaN or inf",
                               History())
    monkeypatch.setattr(minirai.research.experiments, "reproduce", diverge)
    assert minirai.cli.main(["reproduce", "shallow", "--quiet", "--out", str(tmp_path / "out")]) == 3
    assert "step 7" in capsys.readouterr().err


def test_plan_runs_all_at_once_and_gives_rai_the_cores_the_others_leave():
    names = experiments.methods_for("deep", "both")
    assert names == ["bp", "bp-tuned", "rai"]
    Plan, plan = experiments.Plan, experiments.plan_runs
    assert plan(names, cores=2) == Plan(("bp", "bp-tuned", "rai"), 3, leftover="rai", cores=2)
    assert plan(names, cores=5) == Plan(("bp", "bp-tuned", "rai"), 3, leftover="rai", cores=5)
    assert plan(names, cores=1) == Plan(("bp", "bp-tuned", "rai"), 1)                 # one after another
    assert plan(names, cores=2, jobs=2) == Plan(("bp", "bp-tuned", "rai"), 2)         # --jobs is obeyed
    assert plan(["bp", "rai"], cores=2) == Plan(("bp", "rai"), 2, leftover="rai", cores=2)
    assert plan(["rai"], cores=2) == Plan(("rai",), 1, (("rai", 2),))                  # alone: every core
    assert plan(["bp"], cores=2) == Plan(("bp",), 1)
    assert plan(["bp", "bp-tuned"], cores=4) == Plan(("bp", "bp-tuned"), 2)
    assert experiments.describe_plan(plan(names, cores=2)) == \
        "side by side in 3 processes (rai on the cores the others leave: 1 to 2 threads)"
    assert experiments.describe_plan(plan(names, cores=5)) == \
        "side by side in 3 processes (rai on the cores the others leave: 3 to 5 threads)"
    assert experiments.describe_plan(plan(names, cores=1)) == "one after another"


def test_leftover_cores_counts_the_runs_still_training(tmp_path):
    for name in ("bp", "bp-tuned", "rai"):
        (tmp_path / name).touch()
    threads = experiments.leftover_cores(tmp_path, "rai", cores=2)
    assert threads() == 1                       # two others on two cores: one thread, not less
    (tmp_path / "bp").unlink()
    assert threads() == 1
    (tmp_path / "bp-tuned").unlink()
    assert threads() == 2                       # alone: both cores
    assert experiments.leftover_cores(tmp_path, "rai", cores=5)() == 5
    (tmp_path / "bp").touch()
    assert experiments.leftover_cores(tmp_path, "rai", cores=5)() == 4
    assert experiments.leftover_cores(tmp_path / "gone", "rai", cores=4)() == 1   # reproduce ended


def test_a_run_frees_its_core_when_its_training_ends_or_fails(tmp_path, monkeypatch):
    """_run_task deletes the run's file in the roster after its training, also when the training failed;
    the run named as taking the leftover cores trains with them (asked before each step)."""
    roster = tmp_path / "roster"
    roster.mkdir()
    for name in ("bp", "rai"):
        (roster / name).touch()
    task = dict(experiment="shallow", method="bp", iters=2, seed=0, grads=False, dataset=data.moons(),
                out=tmp_path, progress=False, device="cpu", threads=None, roster=str(roster), leftover=None)
    experiments._run_task(task)
    assert sorted(p.name for p in roster.iterdir()) == ["rai"]
    (roster / "bp").touch()
    with monkeypatch.context() as patch:
        patch.setattr(experiments, "run", lambda *args, **kwargs: 1 / 0)     # the run fails
        with pytest.raises(ZeroDivisionError):
            experiments._run_task(task)
    assert sorted(p.name for p in roster.iterdir()) == ["rai"]     # a failed run's core is free too
    (roster / "bp").touch()
    asked = []
    original = experiments.leftover_cores

    def spy(*args, **kwargs):
        threads = original(*args, **kwargs)
        return lambda: asked.append(threads()) or asked[-1]
    monkeypatch.setattr(experiments, "leftover_cores", spy)
    experiments._run_task(dict(task, method="rai", leftover=2))
    assert asked == [1, 1, 1]                  # bp's file is still there: one core for the loop's start and 2 steps
    assert sorted(p.name for p in roster.iterdir()) == ["bp"]


def test_reproduce_gives_rai_its_threads_and_reports_in_the_methods_order(tmp_path, monkeypatch, capsys):
    """RAI alone on 2 cores (a stubbed run): it runs with MINIRAI_THREADS=2, which is put back afterwards."""
    monkeypatch.setattr(experiments, "usable_cores", lambda: 2)
    monkeypatch.delenv("MINIRAI_THREADS", raising=False)
    seen = []

    def fake_task(task):
        seen.append((task["method"], os.environ.get("MINIRAI_THREADS")))
        return experiments.run("shallow", task["method"], iters=2, progress=False, dataset=task["dataset"])

    monkeypatch.setattr(experiments, "_run_task", fake_task)
    results = experiments.reproduce("deep", method="rai", out=tmp_path, progress=False)
    assert [r.method for r in results] == ["rai"] and seen == [("rai", "2")]
    assert "MINIRAI_THREADS" not in os.environ
    assert "alone (rai on 2 threads)" in capsys.readouterr().out


# -- worker hygiene: what one run changes in its process, the next run does not inherit ---------------
def process_state() -> tuple[int, int, list[int]]:
    """(pid, the process's niceness, BLAS thread limits) as a task sees them when it starts."""
    import os

    import threadpoolctl
    blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    return os.getpid(), os.getpriority(os.PRIO_PROCESS, os.getpid()), blas


def threaded_task() -> tuple[int, int, list[int], str | None]:
    """A task like a reproduce run: it reports its state at the start, then trains on its threads."""
    import os

    from minirai.train import TrainingLoop
    state = process_state()
    with TrainingLoop():
        pass
    return state + (os.environ.get("MINIRAI_THREADS"),)


def test_isolated_sets_the_threads_for_its_task_alone(monkeypatch):
    monkeypatch.setenv("MINIRAI_THREADS", "1")
    *_, threads = experiments.isolated(threaded_task, threads=2)
    assert threads == "2" and os.environ["MINIRAI_THREADS"] == "1"
    assert experiments.isolated(threaded_task)[-1] == "1"
    with pytest.raises(ZeroDivisionError):                 # an error in the task reaches the caller
        experiments.isolated(lambda: 1 / 0, threads=2)
    assert os.environ["MINIRAI_THREADS"] == "1"


def test_reused_joblib_workers_do_not_inherit_threads_or_thread_limits():
    """Six tasks with 2 threads on two reused workers: each starts with the workers' own settings."""
    from joblib import Parallel, delayed
    base = os.getpriority(os.PRIO_PROCESS, 0)
    first = Parallel(n_jobs=2)(delayed(process_state)() for _ in range(2))
    seen = Parallel(n_jobs=2)(delayed(experiments.isolated)(threaded_task, threads=2) for _ in range(6))
    after = Parallel(n_jobs=2)(delayed(experiments.isolated)(threaded_task) for _ in range(4))
    pids = {pid for pid, *_ in seen}
    assert len(pids) < 6                                   # workers were reused
    assert all(process_nice == base for _, process_nice, _, _ in seen)
    assert all(threads == "2" for *_, threads in seen)
    assert all(threads == os.environ.get("MINIRAI_THREADS") for *_, threads in after)
    assert all(blas == first[0][2] for _, _, blas, _ in seen)
