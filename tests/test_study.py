"""``minirai study``: study files, runs, resuming after a kill, the report; the methods by name."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minirai import data
from minirai.cli import main
from minirai.research.methods import METHODS, RAI_TUNED, TWINS, train
from minirai.research.report import disagreement
from minirai.research.study import load_study, run_study

TINY = """
[study]
name = "tiny"
datasets = ["moons"]
depths = [2]
width = 8
activation = "tanh"
methods = ["bp-tuned", "rai"]
seeds = [0, 1, 2]
iters = {iters}
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_and_reports(method):
    moons = data.moons(n_samples=60)
    trained = train(method, moons, [8] * 5, "tanh", seed=0, iters=30, batch_size=20)
    assert trained.method == method and trained.init == METHODS[method].init
    assert len(trained.history) >= 2
    if method.startswith("rai"):            # 5 hidden layers: every RAI method has cuts, so tables
        assert trained.relaxed_loss is not None and trained.identity_gap > 0
    else:
        assert trained.relaxed_loss is None and trained.identity_gap is None


def test_multiclass_datasets_get_softmax_cross_entropy():
    trained = train("bp-tuned", data.digits(), [16], "relu", seed=0, iters=5)
    assert type(trained.loss).__name__ == "SoftmaxCrossEntropy"
    assert trained.model.out_features == 10


def test_rai_tuned_is_rai_with_its_cuts():
    assert RAI_TUNED == {"cuts": "linear[3:]"} and METHODS["rai-tuned"].cuts == "linear[3:]"


@pytest.mark.parametrize("rai,bp", sorted(TWINS.items()))
def test_a_bp_twin_is_its_rai_method_without_the_cuts(rai, bp):
    """The twin has the RAI method's settings but the cuts; where the RAI method has no cut (two hidden
    layers: "linear[3:]" leaves none), the two are the same training, bit for bit."""
    twin, method = METHODS[bp], METHODS[rai]
    assert (twin.init, twin.optimizer, twin.lr) == (method.init, method.optimizer, method.lr)
    moons = data.moons(n_samples=60)
    runs = [train(name, moons, [8] * 2, "tanh", seed=0, iters=12, batch_size=16) for name in (rai, bp)]
    for (a, _), (b, _) in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert np.array_equal(a, b)
    deeper = [train(name, moons, [8] * 5, "tanh", seed=0, iters=12, batch_size=16) for name in (rai, bp)]
    assert deeper[0].trainer.cuts and not deeper[1].trainer.cuts
    assert deeper[0].trainer.inner_steps == deeper[1].trainer.inner_steps == (
        len(deeper[0].trainer.cuts) + 1 if rai == "rai-online" else 1)
    assert deeper[1].relaxed_loss is None and deeper[1].identity_gap is None


def test_train_returns_what_a_checkpoint_needs():
    moons = data.moons(n_samples=40)
    bp = train("bp-tuned", moons, [8], "tanh", seed=0, iters=5)
    assert bp.trainer is None and bp.optimizer_object.steps == 5 and bp.steps == 5
    rai = train("rai", moons, [8, 8], "tanh", seed=0, iters=5)
    assert rai.trainer.steps == 5 and rai.optimizer_object.pairs[0][0] is rai.model.parameters()[0][0]


@pytest.mark.parametrize("backend_name", ["loky", "multiprocessing", "dask"])
def test_every_local_backend_runs_a_study_with_the_same_numbers(tmp_path, backend_name):
    """loky and dask return results as they come; multiprocessing and ray return lists only, so
    those run in rounds of ``jobs`` runs. Either way every run is written once, with the numbers
    of a run in this process. (dask: a local cluster, where dask[distributed] is installed.)"""
    if backend_name == "dask":
        pytest.importorskip("dask.distributed")
    study = write(tmp_path, TINY.format(iters=20))
    reference = {r["id"]: r for r in run_study(study, tmp_path / "threads", jobs=1, backend_name="threading",
                                               echo=False)}
    out = tmp_path / backend_name
    results = run_study(study, out, jobs=2, backend_name=backend_name, echo=False)
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(reference) and len(results) == 6
    for r in lines:
        assert all(r[key] == reference[r["id"]][key] for key in ("train_acc", "test_acc", "chained_loss"))


def test_a_study_writes_results_predictions_and_report(tmp_path, capsys):
    study = write(tmp_path, TINY.format(iters=40))
    out = tmp_path / "out"
    results = run_study(study, out, jobs=1, backend_name="threading")
    assert len(results) == 6
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(r["id"] for r in results)
    needed = {"dataset", "depth", "width", "hidden", "activation", "method", "seed", "batch_size", "iters", "seconds",
              "relaxed_loss", "chained_loss", "train_acc", "test_acc", "identity_gap", "device", "clipped_share",
              "classes_predicted", "majority_share", "method_settings", "data_options"}
    assert all(needed <= set(r) for r in lines)
    assert all(r["relaxed_loss"] is None for r in lines if r["method"] == "bp-tuned")
    for r in lines:
        with np.load(out / "runs" / f"{r['id']}.npz") as stored:
            assert stored["predictions"].shape == (10000,)
            assert stored["history_step"][-1] == 40 and len(stored["history_val_acc"]) == len(stored["history_step"])
    report = (out / "report.md").read_text()
    assert "| moons | 2 | rai | 8 | tanh | 3 |" in report and "boundary variability" in report
    for name in ("accuracy.png", "curves.png", "boundaries-moons-d2-w8-tanh.png"):
        assert (out / name).stat().st_size > 0
    capsys.readouterr()
    again = run_study(study, out, jobs=1, backend_name="threading")
    assert "6 runs: 6 done before, 0 to run" in capsys.readouterr().out
    assert again == results


def test_a_killed_study_runs_only_what_is_missing(tmp_path):
    study = write(tmp_path, TINY.format(iters=400))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "minirai", "study", str(study), "--out", str(out), "--jobs", "1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**os.environ, "MPLBACKEND": "Agg"})
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.is_file() or len(results.read_text().splitlines()) < 2):
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = [json.loads(line)["id"] for line in results.read_text().splitlines() if line.endswith("}")]
    assert 2 <= len(before) < 6, "the study must be killed midway"
    second = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    assert second.returncode == 0, second.stderr
    assert f"6 runs: {len(before)} done before, {6 - len(before)} to run" in second.stdout
    ids = [json.loads(line)["id"] for line in results.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 6
    assert ids[:len(before)] == before          # the runs done before the kill were not run again


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc")
def test_a_killed_study_leaves_no_workers_and_no_files_it_did_not_record(tmp_path):
    """kill -9 of a study running on two loky workers: the workers end within seconds (they watch the
    study's process), and no run file is left that results.jsonl does not record."""
    study = write(tmp_path, TINY.format(iters=3000))
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "minirai", "study", str(study), "--out", str(out), "--jobs", "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "MPLBACKEND": "Agg"})
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [p for p in children_of(first.pid) if "loky" in (Path("/proc") / str(p) / "cmdline").read_text()
                   or "joblib" in (Path("/proc") / str(p) / "cmdline").read_text()] if alive(first.pid) else []
        time.sleep(0.1)
    assert len(workers) >= 2, "the study's workers must have started"
    time.sleep(1.0)                            # into the runs
    first.send_signal(signal.SIGKILL)
    first.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(alive(p) for p in workers), "a worker outlived its study"
    recorded = {json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()
                if line.endswith("}")} if (out / "results.jsonl").is_file() else set()
    files = {p.name[:-len(".npz")] for p in (out / "runs").iterdir()} if (out / "runs").is_dir() else set()
    assert files <= recorded


def test_a_line_cut_short_by_a_kill_is_dropped_and_rerun(tmp_path):
    study = write(tmp_path, TINY.format(iters=20))
    out = tmp_path / "out"
    run_study(study, out, jobs=1, backend_name="threading", echo=False)
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:30])
    results = run_study(study, out, jobs=1, backend_name="threading", echo=False)
    ids = [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == len(results) == 6


def test_changed_settings_are_run_again_not_reused(tmp_path, capsys):
    out = tmp_path / "out"
    first = run_study(write(tmp_path, TINY.format(iters=20)), out, jobs=1, backend_name="threading")
    changed = write(tmp_path, TINY.format(iters=20) + "[data.moons]\nnoise = 0.3\n", "changed.toml")
    capsys.readouterr()
    second = run_study(changed, out, jobs=1, backend_name="threading")
    assert "6 runs: 0 done before, 6 to run" in capsys.readouterr().out
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert 'data: moons: {"noise": 0.3}' in (out / "report.md").read_text()


def test_a_failing_run_is_reported_and_the_study_goes_on(tmp_path, capsys):
    text = TINY.format(iters=20).replace('datasets = ["moons"]', 'datasets = ["moons", "circles"]')
    study = write(tmp_path, text + "[data.circles]\nfactor = 7.0\n")      # make_circles refuses factor > 1
    out = tmp_path / "out"
    results = run_study(study, out, jobs=1, backend_name="threading")
    assert len(results) == 6 and all(r["dataset"] == "moons" for r in results)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 6 and all("factor" in e["error"] for e in errors)
    assert "failed" in capsys.readouterr().err
    assert "Runs that failed" in (out / "report.md").read_text()
    capsys.readouterr()
    run_study(study, out, jobs=1, backend_name="threading")
    assert "12 runs: 6 done before, 6 to run" in capsys.readouterr().out


BAD_STUDIES = [
    ("[other]\nname = 'x'", "needs a \\[study\\] table"),
    ("[study]\nname = 'x'", "\\[study\\] needs \\['datasets'"),
    (TINY.format(iters=10).replace('"tanh"', '"no_such_activation"'), "activation must be one of"),
    (TINY.format(iters=10).replace('"rai"]', '"rai", "magic"]'), "methods: unknown 'magic'"),
    (TINY.format(iters=10).replace('["moons"]', '["imagenet"]'), "datasets: unknown 'imagenet'"),
    (TINY.format(iters=10).replace("[2]", "[0]"), "depths must be >= 1, got 0"),
    (TINY.format(iters=10).replace("[0, 1, 2]", "[0, 0]"), "seeds repeats an entry"),
    (TINY.format(iters=10).replace("[0, 1, 2]", "[]"), "seeds is empty"),
    (TINY.format(iters=10).replace("iters = 10", "iters = 0"), "iters must be a positive integer, got 0"),
    (TINY.format(iters=10).replace("iters = 10", "iters = 2.5"), "iters must be an int, got 2.5"),
    (TINY.format(iters=10).replace("width = 8", "width = true"), "width must be an int, got True"),
    (TINY.format(iters=10) + "lr = 0.1\n", "unknown key\\(s\\) \\['lr'\\]"),
    (TINY.format(iters=10) + "[data.digits]\nn = 3\n", "\\[data.digits\\] is for a dataset the study does not use"),
    ("[study\nname=", "not valid TOML"),
    (TINY.format(iters=10) + "[data.moons]\nsamples = 3\n", "\\[data.moons\\]: got an unexpected keyword"),
    (TINY.format(iters=10) + "hidden = [[4, 4]]\n", "hidden .* or depths and width, not both"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\nbatch_size = 3\n",
     "\\['batch_size'\\] not used by base 'rai'"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'bp'\ncuts = 'linear'\n", "cuts is for rai, rai-minibatch"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'magic'\n", "base must be a method by name"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\nlr = -1\n", "lr must be a positive number"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\nlam = {schedule = 'geometric', start = 1}\n",
     "lam: .*factor"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\nlam = {schedule = 'cosine'}\n", "schedules:"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\nregulariser = {kind = 'dropout'}\n",
     "regulariser kind must be one of"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\nregulariser = {kind = 'weight-decay'}\n",
     "'weight-decay' needs 'strength'"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'bp'\nregulariser = {kind = 'table-noise', std = 0.1}\n",
     "act on RAI's tables; base 'bp' has none"),
    (TINY.format(iters=10) + "[methods.mine]\nbase = 'rai'\noptimizer = 'lbfgs'\n", "optimizer must be one of"),
    (TINY.format(iters=10) + "[methods.rai]\nbase = 'rai'\n", "'rai' is a built-in method"),
    (TINY.format(iters=10) + "[methods.a.b]\nbase = 'rai'\n", "a name with a dot must be quoted"),
    (TINY.format(iters=10).replace("seeds = [0, 1, 2]", "seeds = [0]\ncompare = [['rai', 'bp']]"),
     "compare holds pairs of the study's methods"),
]


def test_a_run_id_holds_only_the_settings_its_method_uses(tmp_path):
    """A full-batch method's id and fingerprint do not change with the batch size; a mini-batch method's do.
    A custom method's settings are in its fingerprint; the same settings under the same name give the same id."""
    text = TINY.format(iters=10).replace('"rai"]', '"rai", "rai-minibatch", "mine"]')
    mine = "[methods.mine]\nbase = 'rai'\ncuts = 'linear[::2]'\nlam = {schedule = 'geometric', start = 1, factor = 2}\n"
    first = load_study(write(tmp_path, text + mine))
    other = load_study(write(tmp_path, text + "batch_size = 16\n" + mine, "other.toml"))
    changed = load_study(write(tmp_path, text + mine.replace("factor = 2", "factor = 3"), "changed.toml"))
    ids = [{run.method: run.id for run in study.runs if run.seed == 0} for study in (first, other, changed)]
    assert ids[0]["rai"] == ids[1]["rai"] and ids[0]["bp-tuned"] == ids[1]["bp-tuned"]
    assert ids[0]["rai-minibatch"] != ids[1]["rai-minibatch"] and "-b32-" in ids[0]["rai-minibatch"]
    assert "-b" not in ids[0]["rai"].split("-i10")[1]
    assert ids[0]["mine"] == ids[1]["mine"] != ids[2]["mine"] and ids[0]["rai"] == ids[2]["rai"]
    assert first.methods["mine"].settings() == {"base": "rai", "init": "uniform", "optimizer": "rprop", "lr": 0.1,
                                                "cuts": "linear[::2]",
                                                "lam": {"schedule": "geometric", "start": 1, "factor": 2}}


def test_a_custom_method_trains_with_its_cuts_schedule_and_optimizer(tmp_path):
    text = TINY.format(iters=10).replace('"rai"]', '"mine"]').replace('depths = [2]', 'depths = [4]')
    study = load_study(write(tmp_path, text + "[methods.mine]\nbase = 'rai'\ncuts = [2, 6]\noptimizer = 'adam'\n"
                             "lr = 0.01\nlam = {schedule = 'geometric', start = 1, factor = 10, every = 5}\n"))
    method = study.methods["mine"]
    trained = train(method, data.moons(n_samples=40), [8] * 4, "tanh", seed=0, iters=10)
    assert trained.trainer.cuts == [2, 6] and trained.optimizer == "Adam(lr=0.01)"
    assert trained.history["lam"].tolist()[:1] == [1.0] and trained.history["lam"][-1] == 100.0


@pytest.mark.parametrize("text,message", BAD_STUDIES)
def test_bad_study_files_are_clear_value_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_study(write(tmp_path, text))


def test_the_cli_refuses_a_bad_study_and_a_foreign_out_folder(tmp_path, capsys):
    assert main(["study", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    study = write(tmp_path, TINY.format(iters=10))
    assert main(["study", str(study), "--out", str(foreign)]) == 2
    assert "not a study's" in capsys.readouterr().err
    assert main(["study", str(study), "--out", str(tmp_path / "o2"), "--backend", "spark"]) == 2
    with pytest.raises(ValueError, match="--jobs must be a positive integer"):
        run_study(study, tmp_path / "o3", jobs=-1)
    assert "--backend must be one of" in capsys.readouterr().err


def test_disagreement_is_the_mean_pairwise_fraction():
    a, b, c = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([1, 1, 1, 1])
    assert disagreement([a, b, c]) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert disagreement([a]) is None


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.toml")),
                         ids=lambda path: path.name)
def test_the_example_study_files_load(path):
    study = load_study(path)                  # raises on any key it does not accept
    assert study.name == path.stem and study.runs
