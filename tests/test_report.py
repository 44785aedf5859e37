"""``minirai report`` and the report's statistics: sample std, t-intervals, paired differences, variability
among the runs that fit, flags; merged and filtered reports equal to a study's own."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from minirai.cli import main
from minirai.research.figures import figure_names
from minirai.research.report import (canonical, clipped, disagreement, interval, mean_std, paired, report_text,
                                     study_order, summarise)
from minirai.research.writer import load_folder, report_folders
from minirai.research.study import load_study, run_study

CUSTOM = """
[study]
name = "custom"
datasets = ["moons"]
depths = [3]
width = 8
activation = "tanh"
methods = ["bp-tuned", "rai", "every2", "rai-minibatch", "bp-minibatch"]
seeds = [{seeds}]
iters = 30
batch_size = 25
compare = [["every2", "rai"]]

[methods.every2]
base = "rai"
cuts = "linear[::2]"
lam = {{schedule = "geometric", start = 1, factor = 10, every = 10, maximum = 1e3}}
optimizer = "adam"
lr = 1e-2
"""


def line(method: str, seed: int, train: float, test: float, **more) -> dict:
    """A results line as a study writes it (made-up numbers)."""
    return {"id": f"{method}-{seed}", "dataset": "moons", "depth": 2, "width": 4, "hidden": [4, 4],
            "activation": "tanh", "method": method, "seed": seed, "batch_size": None, "iters": 10, "settings": "x",
            "seconds": 1.0, "train_acc": train, "test_acc": test, "chained_loss": 0.3, "relaxed_loss": None,
            "identity_gap": None, "device": "cpu", "predictions_on": "held-out", **more}


def test_the_statistics_are_sample_std_and_student_t_intervals():
    values = [0.90, 0.95, 1.00]
    mean, std = mean_std(values)
    assert mean == pytest.approx(0.95) and std == pytest.approx(0.05)            # ddof = 1 (ddof = 0: 0.0408)
    low, high = interval(values)
    half = 4.302652729911275 * 0.05 / np.sqrt(3)                                  # t(0.975, 2) from a table
    assert (low, high) == pytest.approx((0.95 - half, 0.95 + half))
    assert clipped((low, high)) == pytest.approx((0.95 - half, 1.0))               # clipped to [0, 1]
    assert interval([0.9]) is None and mean_std([0.9]) == (0.9, 0.0)


def test_paired_differences_take_the_seeds_both_methods_ran():
    results = [line("a", 0, 1.0, 0.9), line("a", 1, 1.0, 0.8), line("a", 2, 1.0, 0.7),
               line("b", 1, 0.5, 0.6), line("b", 2, 0.5, 0.8), line("b", 3, 0.5, 0.1)]
    [row] = paired(results, [("a", "b")])
    assert row["seeds"] == [1, 2]
    assert row["test_acc"]["diffs"] == pytest.approx([0.2, -0.1])
    assert row["test_acc"]["mean"] == pytest.approx(0.05)
    low, high = row["test_acc"]["ci"]
    assert low < 0.05 < high and row["train_acc"]["diffs"] == pytest.approx([0.5, 0.5])


def test_variability_is_measured_among_the_runs_that_fit_and_flags_are_counted(tmp_path):
    (tmp_path / "predictions").mkdir()
    predictions = {0: [0, 0, 1, 1], 1: [0, 1, 1, 1], 2: [1, 1, 1, 1]}
    results = [line("a", s, train, 0.7, clipped_share=clip, classes_predicted=classes)
               for s, train, clip, classes in ((0, 1.0, 0.0, 2), (1, 0.99, 0.1, 2), (2, 0.5, 0.0, 1))]
    for r in results:
        np.save(tmp_path / "predictions" / f"{r['id']}.npy", np.array(predictions[r["seed"]], dtype=np.int16))
    [row] = summarise(results, tmp_path, fit=0.95)
    assert row["fitted"] == 2 and row["disagreement"] == pytest.approx(0.25)     # seeds 0 and 1 only
    assert row["disagreement_all"] == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert row["clipped"] == 1 and row["one_class"] == 1
    assert disagreement([np.zeros(3)]) is None


def test_a_report_does_not_depend_on_the_order_runs_finished_in():
    results = [line("b", 1, 1, 1), line("a", 0, 1, 1), line("b", 0, 1, 1), line("a", 1, 1, 1)]
    ordered = canonical(results, {"method": ["a", "b"]})
    assert [(r["method"], r["seed"]) for r in ordered] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert canonical(list(reversed(results)), {"method": ["a", "b"]}) == ordered


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A study with a custom method (a cut list and a λ schedule), 3 seeds, run once."""
    folder = tmp_path_factory.mktemp("custom")
    path = folder / "custom.toml"
    path.write_text(CUSTOM.format(seeds="0, 1, 2"))
    results = run_study(path, folder / "out", jobs=1, backend_name="threading", echo=False)
    return folder, results


def test_a_report_of_a_subset_of_seeds_equals_the_studys_own(stored, tmp_path):
    """``minirai report DIR --seeds 0,1`` writes the report a study of seeds 0 and 1 writes for the same runs
    (that study, started on a copy of the folder, finds them all done and writes its own report)."""
    folder, results = stored
    assert main(["report", str(folder / "out"), "--seeds", "0,1", "--out", str(tmp_path / "subset")]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(folder / "out", copy)
    subset_study = tmp_path / "custom.toml"
    subset_study.write_text(CUSTOM.format(seeds="0, 1"))
    again = run_study(subset_study, copy, jobs=1, backend_name="threading", echo=False)
    assert len(again) == 10 and {r["seed"] for r in again} == {0, 1}
    mine, its = (tmp_path / "subset" / "report.md").read_text(), (copy / "report.md").read_text()
    assert mine == its
    assert "10 of 10 runs done" in mine and "every2 − rai" in mine and "rai-minibatch − bp-minibatch" in mine
    for name in ("accuracy.png", "curves.png", "boundaries-moons-d3-w8-tanh.png"):
        assert (tmp_path / "subset" / name).read_bytes() == (copy / name).read_bytes()


def test_report_only_writes_the_same_report_again(stored, tmp_path, capsys):
    folder, _ = stored
    copy = tmp_path / "copy"
    shutil.copytree(folder / "out", copy)
    before = (copy / "report.md").read_text()
    (copy / "report.md").unlink()
    assert main(["study", str(folder / "custom.toml"), "--out", str(copy), "--report-only"]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert (copy / "report.md").read_text() == before
    assert main(["report", str(copy)]) == 0                         # one folder, nothing filtered: in place
    assert (copy / "report.md").read_text() == before


def test_a_merged_report_keeps_each_run_once_and_filters_methods(stored, tmp_path, capsys):
    folder, results = stored
    out, written, runs = report_folders([folder / "out", folder / "out"], tmp_path / "merged",
                                        methods=["rai", "every2"])
    assert runs == 6 and "report.md" in written
    text = (out / "report.md").read_text()
    assert "6 of 6 runs done" in text and "| bp-tuned |" not in text and "every2 − rai" in text
    assert main(["report", str(folder / "out"), "--seeds", "0"]) == 2           # filtered: --out needed
    assert "--out is needed" in capsys.readouterr().err
    assert main(["report", str(folder / "out"), "--seeds", "7", "--out", str(tmp_path / "none")]) == 2
    assert "no stored run matches" in capsys.readouterr().err


def test_the_study_files_schema_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    text = capsys.readouterr().out
    for key in ("[study]", "hidden", "[methods.", "base =", "cuts =", "lam =", "regulariser =", "[data."):
        assert key in text


def test_the_stored_study_files_regenerate_their_reports_from_stored_results():
    """Every study folder under studies/results/ holds its study's runs, and its report.md is what
    ``minirai report`` writes from them (the figures too, byte for byte, where stored)."""
    root = Path(__file__).resolve().parents[1] / "studies"
    folders = sorted(p for p in (root / "results").iterdir() if (p / "results.jsonl").is_file()) \
        if (root / "results").is_dir() else []
    if not folders:
        pytest.skip("no stored study results")
    for folder in folders:
        stored = json.loads((folder / "study.json").read_text())
        study = load_study(root / Path(stored["file"]).name)
        assert study.name == stored["name"]
        ids = {json.loads(text)["id"] for text in (folder / "results.jsonl").read_text().splitlines()}
        assert {run.id for run in study.runs} <= ids, f"{folder.name}: runs of its study are missing"
        assert all((folder / "runs" / f"{run_id}.npz").is_file() for run_id in ids)
        results, _ = load_folder(folder)
        results = canonical(results, study_order(study))
        again = report_text(results, name=study.name, planned=len(study.runs), compare=study.compare, fit=study.fit,
                            figures=figure_names(results), out=folder)
        assert (folder / "report.md").read_text() == again, f"{folder.name}: minirai study --report-only rewrites it"


def test_the_stored_custom_method_study_is_redrawn_for_a_subset_of_seeds(tmp_path):
    """studies/custom-method.toml (a cut list and a λ schedule): ``minirai report`` of its stored runs for seeds
    0 and 1 equals the report the same study of seeds 0 and 1 writes (it finds every run done)."""
    root = Path(__file__).resolve().parents[1] / "studies"
    folder = root / "results" / "custom-method"
    if not (folder / "results.jsonl").is_file():
        pytest.skip("no stored results of studies/custom-method.toml")
    text = (root / "custom-method.toml").read_text()
    assert "cuts = " in text and "schedule = " in text
    assert main(["report", str(folder), "--seeds", "0,1", "--out", str(tmp_path / "subset")]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    for name in ("report.md", *[p.name for p in copy.glob("*.png")]):
        (copy / name).unlink()
    two = tmp_path / "custom-method.toml"
    two.write_text(re.sub(r"(?m)^seeds = \[.*\]$", "seeds = [0, 1]", text))
    assert len(load_study(root / "custom-method.toml").runs) > len(load_study(two).runs)
    again = run_study(two, copy, jobs=1, backend_name="threading", echo=False)
    assert {r["seed"] for r in again} == {0, 1} and len(again) == len(load_study(two).runs)
    mine, its = (tmp_path / "subset" / "report.md").read_text(), (copy / "report.md").read_text()
    assert mine == its and "rai-every3 − rai" in mine
    for name in ("accuracy.png", "curves.png"):
        assert (tmp_path / "subset" / name).read_bytes() == (copy / name).read_bytes()
