"""A study's report: mean ± std per setting and method, boundary variability, figures."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .study import Study

COLUMNS = (("train_acc", "train acc", ".3f"), ("test_acc", "test acc", ".3f"),
           ("chained_loss", "chained loss", ".3g"), ("relaxed_loss", "relaxed loss", ".2e"),
           ("identity_gap", "identity gap", ".2e"), ("seconds", "seconds", ".1f"))


def disagreement(predictions: list[np.ndarray]) -> float | None:
    """Mean over pairs of runs of the fraction of points whose predicted class differs (None: < 2 runs)."""
    pairs = list(itertools.combinations(predictions, 2))
    if not pairs:
        return None
    return float(np.mean([np.mean(a != b) for a, b in pairs]))


def summarise(results: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """One row per (dataset, depth, method): count, mean and std of each column, and the variability.

    A run without a cut has no identity gap (its results line says None): the column is None, shown
    "–", as for BP; a measured gap of exactly 0 is a number."""
    rows = []
    keys = dict.fromkeys((r["dataset"], r["depth"], r["method"]) for r in results)
    for dataset, depth, method in keys:
        group = [r for r in results if (r["dataset"], r["depth"], r["method"]) == (dataset, depth, method)]
        row: dict[str, Any] = {"dataset": dataset, "depth": depth, "method": method, "runs": len(group),
                               "device": ", ".join(sorted({str(r.get("device", "?")) for r in group}))}
        for key, _, _ in COLUMNS:
            values = [r[key] for r in group if r.get(key) is not None]
            row[key] = (float(np.mean(values)), float(np.std(values))) if values else None
        predictions = [np.load(out / "predictions" / f"{r['id']}.npy") for r in group]
        row["disagreement"] = disagreement(predictions)
        row["predictions_on"] = group[0].get("predictions_on", "held-out")
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (["dataset", "depth", "method", "device", "runs"] + [title for _, title, _ in COLUMNS]
            + ["boundary variability"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["dataset"], str(row["depth"]), row["method"], row["device"], str(row["runs"])]
        for key, _, fmt in COLUMNS:
            value = row[key]
            cells.append("–" if value is None else f"{format(value[0], fmt)} ± {format(value[1], fmt)}")
        variability = row["disagreement"]
        cells.append("–" if variability is None else f"{variability:.3f} ({row['predictions_on']})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def boundary_figures(study: "Study", results: list[dict[str, Any]], out: Path) -> list[str]:
    """For each 2-D dataset and depth: the share of seeds predicting class 1 on the grid, per method."""
    from .. import plot
    from .datasets import grid_points, load_dataset
    written = []
    on_grid = [r for r in results if r.get("predictions_on") == "grid"]
    for dataset, depth in dict.fromkeys((r["dataset"], r["depth"]) for r in on_grid):
        group = [r for r in on_grid if (r["dataset"], r["depth"]) == (dataset, depth)]
        maps = {}
        for method in dict.fromkeys(r["method"] for r in group):
            maps[method] = np.stack([np.load(out / "predictions" / f"{r['id']}.npy")
                                     for r in group if r["method"] == method])
        data = load_dataset(dataset, study.data_options.get(dataset, {}))
        from .. import backend
        points = grid_points(backend.to_numpy(data.X_train))
        name = f"boundaries-{dataset}-d{depth}.png"
        plot.save(plot.study_boundaries(maps, points, data.X_train, data.y_train,
                                        title=f"{dataset}, {depth} hidden layers: boundaries across seeds"), out / name)
        written.append(name)
    return written


def write_report(study: "Study", results: list[dict[str, Any]], out: Path,
                 failed: list[dict[str, Any]] | None = None) -> list[str]:
    """``report.md`` and ``accuracy.png`` in ``out``; returns the names written."""
    from .. import plot
    rows = summarise(results, out)
    written = ["report.md"]
    figure = None
    if rows:
        figure = plot.study_accuracy(rows)
        plot.save(figure, out / "accuracy.png")
        written.append("accuracy.png")
    written += boundary_figures(study, results, out)
    settings = study.source["study"]
    text = [f"# Study: {study.name}", "",
            "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items())
            + "".join(f"; data.{k}: {v}" for k, v in study.data_options.items()), "",
            f"{len(results)} of {len(study.runs)} runs done. Mean ± std over seeds (the population std, "
            "ddof = 0). Accuracies are those of the network as it predicts (the chained forward pass); relaxed "
            "loss and identity gap are RAI's (– for BP; the identity gap is – also for an RAI run without a cut, "
            "a 0 is a measured one): over all training rows, except for rai-online, whose are those of its last "
            "batch. Boundary variability: the mean, over pairs of seeds, of the fraction "
            "of points where the two networks predict different classes (on a 100 x 100 grid over the inputs "
            "for 2-D sets, on the held-out set otherwise).", "", markdown_table(rows), ""]
    if failed:
        text += ["Runs that failed (a new start of the study tries them again):", ""]
        text += [f"- `{line['id']}`: {line['error']}" for line in failed] + [""]
    if figure is not None:
        text += ["![held-out accuracy by method and depth](accuracy.png)", ""]
    for name in written[2:]:
        text += [f"![boundaries across seeds]({name})", ""]
    (out / "report.md").write_text("\n".join(text))
    return written
