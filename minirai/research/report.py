"""A study's report, from its stored runs alone: statistics per setting and method, per-seed values,
paired differences on the same seeds, boundary variability among the runs that fit, and figures.

:mod:`~minirai.research.writer` writes ``report.md`` and its figures from this module's text and
:mod:`~minirai.research.figures`: ``minirai report DIR...`` (merged, filtered stored runs) and
``minirai study FILE --out DIR`` (a study's own runs) write the same report wherever they hold the
same runs.

Statistics, over the seeds of a setting (dataset, hidden widths, activation, method, steps, batch):
the mean, the sample standard deviation (ddof = 1; shown as 0 for a single run, whose interval is –),
and a 95% Student-t interval for the mean accuracy (clipped to [0, 1]). Paired differences take two
methods on the seeds both ran: the mean difference, its 95% t-interval, and each seed's difference.
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .methods import TWINS

COLUMNS = (("train_acc", "train acc", ".3f"), ("test_acc", "held-out acc", ".3f"),
           ("chained_loss", "chained loss", ".3g"), ("relaxed_loss", "relaxed loss", ".2e"),
           ("identity_gap", "identity gap", ".2e"), ("seconds", "seconds", ".1f"))
FIT = 0.95                 # a run "fits" at this chained training accuracy (a study's `fit` overrides it)
SETTING = ("dataset", "hidden", "activation")


# -- statistics ---------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (ddof = 1); 0.0 for a single value."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """The Student-t interval for the mean of ``values`` (None for fewer than 2)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    from scipy.stats import t
    half = float(t.ppf(0.5 + level / 2, len(values) - 1)) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def clipped(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """An interval of an accuracy, clipped to [0, 1]."""
    return None if bounds is None else (max(0.0, bounds[0]), min(1.0, bounds[1]))


def disagreement(predictions: list[np.ndarray]) -> float | None:
    """Mean over pairs of runs of the fraction of points whose predicted class differs (None: < 2 runs)."""
    pairs = list(itertools.combinations(predictions, 2))
    if not pairs:
        return None
    return float(np.mean([np.mean(a != b) for a, b in pairs]))


# -- the runs ------------------------------------------------------------------------------------
def hidden_of(result: dict[str, Any]) -> tuple[int, ...]:
    """A line's hidden widths (older lines: depth x width)."""
    if "hidden" in result:
        return tuple(result["hidden"])
    return (int(result["width"]),) * int(result["depth"])


def group_key(result: dict[str, Any]) -> tuple:
    return (result["dataset"], hidden_of(result), result.get("activation", ""), result["method"],
            result.get("iters"), result.get("batch_size"), result.get("settings", ""))


def arrays_of(result: dict[str, Any], out: Path | None) -> dict[str, np.ndarray]:
    from .storage import load_run_arrays
    return load_run_arrays(Path(result.get("_dir", out)), result["id"])


def summarise(results: list[dict[str, Any]], out: Path | None = None, fit: float = FIT) -> list[dict[str, Any]]:
    """One row per setting and method (see :func:`group_key`): count, seeds, mean and std of each
    column (sample std), per-seed accuracies, the 95% interval of the held-out accuracy, how many runs
    fit (training accuracy >= ``fit``), predict one class, or have a clipped (saturated) BCE, and the
    boundary variability among the runs that fit (and among all).

    A run without a cut has no identity gap (its results line says None): the column is None, shown
    "–", as for BP; a measured gap of exactly 0 is a number. Run files are read from ``out`` (or
    from the folder a line came from, ``_dir``)."""
    rows = []
    for key in dict.fromkeys(group_key(r) for r in results):
        group = sorted((r for r in results if group_key(r) == key), key=lambda r: r["seed"])
        first = group[0]
        row: dict[str, Any] = {"dataset": first["dataset"], "depth": len(key[1]), "hidden": key[1],
                               "width": first.get("width"), "activation": key[2], "method": key[3],
                               "iters": key[4], "batch_size": key[5], "settings": key[6], "runs": len(group),
                               "seeds": [r["seed"] for r in group],
                               "device": ", ".join(sorted({str(r.get("device", "?")) for r in group}))}
        for column, _, _ in COLUMNS:
            values = [r[column] for r in group if r.get(column) is not None]
            row[column] = mean_std(values) if values else None
        for column in ("train_acc", "test_acc"):
            row[f"{column}_values"] = [r.get(column) for r in group]
        tests = [r["test_acc"] for r in group if r.get("test_acc") is not None]
        row["test_acc_ci"] = clipped(interval(tests))
        fitted = [r for r in group if r.get("train_acc") is not None and r["train_acc"] >= fit]
        row["fitted"] = len(fitted)
        row["one_class"] = sum(1 for r in group if r.get("classes_predicted") == 1)
        row["clipped"] = sum(1 for r in group if (r.get("clipped_share") or 0) > 0)
        predictions = {r["id"]: arrays_of(r, out)["predictions"] for r in group}
        row["disagreement"] = disagreement([predictions[r["id"]] for r in fitted])
        row["disagreement_all"] = disagreement(list(predictions.values()))
        row["predictions_on"] = first.get("predictions_on", "held-out")
        rows.append(row)
    labels = [(r["dataset"], r["hidden"], r["activation"], r["method"]) for r in rows]
    for row, label in zip(rows, labels):           # the same method under other steps or settings: say which
        batch = "" if row["batch_size"] is None else f" b{row['batch_size']}"
        row["label"] = row["method"] if labels.count(label) == 1 else \
            f"{row['method']} (i{row['iters']}{batch}, {row['settings']})"
    return rows


def twin_pairs(methods: Iterable[str]) -> list[tuple[str, str]]:
    """(mini-batch RAI method, its BP twin) for the built-in twins present in ``methods``."""
    methods = list(methods)
    return [(rai, bp) for rai, bp in TWINS.items() if rai in methods and bp in methods]


def paired(results: list[dict[str, Any]], pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """For each pair (a, b) and each setting where both ran: a − b on the seeds both ran, for held-out
    and training accuracy: the per-seed differences, their mean and 95% t-interval."""
    out = []
    settings = dict.fromkeys((r["dataset"], hidden_of(r), r.get("activation", "")) for r in results)
    for a, b in pairs:
        for setting in settings:
            runs = {m: {r["seed"]: r for r in results
                        if (r["dataset"], hidden_of(r), r.get("activation", "")) == setting and r["method"] == m}
                    for m in (a, b)}
            seeds = sorted(set(runs[a]) & set(runs[b]))
            if not seeds:
                continue
            row: dict[str, Any] = {"dataset": setting[0], "hidden": setting[1], "depth": len(setting[1]),
                                   "activation": setting[2], "a": a, "b": b, "seeds": seeds}
            for column in ("test_acc", "train_acc"):
                diffs = [runs[a][s][column] - runs[b][s][column] for s in seeds]
                row[column] = {"diffs": diffs, "mean": float(np.mean(diffs)), "ci": interval(diffs)}
            out.append(row)
    return out


# -- markdown -----------------------------------------------------------------------------------
def _net(row: dict[str, Any]) -> str:
    hidden = row["hidden"]
    return str(hidden[0]) if len(set(hidden)) == 1 else "-".join(map(str, hidden))


def _interval_text(bounds: tuple[float, float] | None, fmt: str = ".3f") -> str:
    return "–" if bounds is None else f"[{format(bounds[0], fmt)}, {format(bounds[1], fmt)}]"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def variability_text(row: dict[str, Any]) -> str:
    """"0.072 (3/3 fit)", or "– (1/3 fit; all: 0.250)" where fewer than two fit."""
    fitted, runs = row["fitted"], row["runs"]
    where = "" if row["predictions_on"] == "grid" else ", held-out"
    if row["disagreement"] is not None:
        text = f"{row['disagreement']:.3f} ({fitted}/{runs} fit{where})"
    else:
        text = f"– ({fitted}/{runs} fit{where})"
    if fitted < runs and row["disagreement_all"] is not None:
        text += f"; all: {row['disagreement_all']:.3f}"
    return text


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The main table: one line per setting and method."""
    head = (["dataset", "depth", "method", "width", "activation", "runs", "train acc", "held-out acc",
             "held-out 95% CI", "chained loss", "relaxed loss", "identity gap", "one class",
             "boundary variability", "seconds"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["dataset"], str(row["depth"]), row.get("label", row["method"]), _net(row) if "hidden" in row
                 else str(row.get("width")), row.get("activation", ""), str(row["runs"])]
        for key, _, fmt in COLUMNS:
            value = row[key]
            if key == "seconds":
                continue
            cell = "–" if value is None else f"{format(value[0], fmt)} ± {format(value[1], fmt)}"
            if key == "chained_loss" and row.get("clipped"):
                cell += f" ⚠ clipped in {row['clipped']}/{row['runs']}"
            cells.append(cell)
            if key == "test_acc":
                cells.append(_interval_text(row.get("test_acc_ci")))
        cells.append(f"{row.get('one_class', 0)}/{row['runs']}")
        cells.append(variability_text(row) if "fitted" in row else "–")
        seconds = row["seconds"]
        cells.append("–" if seconds is None else f"{seconds[0]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_table(rows: list[dict[str, Any]]) -> str:
    """Each run's held-out (and training) accuracy, by seed."""
    seeds = sorted({s for row in rows for s in row["seeds"]})
    head = ["dataset", "depth", "method", "width", "activation"] + [f"seed {s}" for s in seeds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        by_seed = dict(zip(row["seeds"], zip(row["test_acc_values"], row["train_acc_values"])))
        cells = [row["dataset"], str(row["depth"]), row["label"], _net(row), row["activation"]]
        cells += ["" if s not in by_seed else f"{by_seed[s][0]:.3f} ({by_seed[s][1]:.3f})" for s in seeds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(pairs: list[dict[str, Any]]) -> str:
    head = ["dataset", "depth", "width", "activation", "a − b", "seeds", "held-out: mean [95% CI]", "per seed",
            "train: mean [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in pairs:
        test, train = p["test_acc"], p["train_acc"]
        cells = [p["dataset"], str(p["depth"]), _net(p), p["activation"], f"{p['a']} − {p['b']}",
                 ", ".join(map(str, p["seeds"])),
                 f"{_signed(test['mean'])} {_interval_text(test['ci'], '+.3f')}",
                 ", ".join(_signed(d) for d in test["diffs"]),
                 f"{_signed(train['mean'])} {_interval_text(train['ci'], '+.3f')}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settings_text(results: list[dict[str, Any]]) -> list[str]:
    """What the runs are, from their lines: data, nets, activations, seeds, steps, each method's settings."""
    def values(key: str) -> str:
        return ", ".join(str(v) for v in dict.fromkeys(str(r.get(key)) for r in results))
    nets = ", ".join(dict.fromkeys(f"{len(hidden_of(r))} x {r.get('width')}" if len(set(hidden_of(r))) == 1
                                   else "-".join(map(str, hidden_of(r))) for r in results))
    data = "; ".join(f"{d}: {o}" for d, o in dict.fromkeys(
        (r["dataset"], json.dumps(r.get("data_options", {}), sort_keys=True)) for r in results))
    lines = [f"- data: {data}", f"- hidden layers: {nets}; activation: {values('activation')}",
             f"- seeds: {', '.join(map(str, sorted({r['seed'] for r in results})))}; "
             f"steps: {values('iters')}", "- methods:"]
    for method, settings in dict.fromkeys((r["method"], json.dumps(r.get("method_settings", {}), sort_keys=True))
                                          for r in results):
        lines.append(f"  - `{method}`: {settings}")
    return lines


LEGEND = ("Mean ± sample std over seeds (ddof = 1; a single run shows ± 0). Accuracies are those of the network "
          "as it predicts (the chained forward pass) on the whole training set and on the held-out set; the 95% "
          "interval is Student's t for the mean held-out accuracy, clipped to [0, 1]. Relaxed loss and identity "
          "gap are RAI's (– for BP, and for an RAI run without a cut; a 0 is a measured one): over all training "
          "rows, except for the online methods, whose are those of the last batch. ⚠ clipped: in that many runs "
          "some training examples have a BCE term clipped at 100 (a sigmoid output of exactly 0 or 1 on the wrong "
          "side), so the chained loss counts clipped terms more than it measures the fit. one class: runs whose "
          "network predicts a single class on the held-out set. Boundary variability: the mean, over pairs of "
          "seeds, of the fraction of points where the two networks predict different classes (on a 100 x 100 grid "
          "over the inputs for 2-D sets, on the held-out set otherwise), among the runs that fit (chained "
          "training accuracy >= {fit}); where some do not fit, the value among all runs follows.")


def canonical(results: list[dict[str, Any]], order: dict[str, list] | None = None) -> list[dict[str, Any]]:
    """The runs in the order a report lists them: by dataset, net, activation and method as ``order``
    lists them (a study's order; others after, as they first appear), then by seed, so that a report
    does not depend on the order the runs finished in."""
    order = order or {}

    def position(key: str, value: Any) -> int:
        listed = order.get(key, [])
        return listed.index(value) if value in listed else len(listed)

    def values(r: dict[str, Any]) -> dict[str, Any]:
        return {"dataset": r["dataset"], "hidden": hidden_of(r), "activation": r.get("activation", ""),
                "method": r["method"]}
    first = {k: list(dict.fromkeys(values(r)[k] for r in results)) for k in ("dataset", "hidden", "activation",
                                                                              "method")}

    def key(r: dict[str, Any]) -> tuple:
        return tuple((position(k, v), first[k].index(v)) for k, v in values(r).items()) + (r["seed"], r["id"])
    return sorted(results, key=key)


def report_text(results: list[dict[str, Any]], *, name: str, planned: int | None = None,
                failed: list[dict[str, Any]] | None = None, compare: Sequence[tuple[str, str]] = (),
                fit: float = FIT, figures: Sequence[tuple[str, str]] = (), out: Path | None = None) -> str:
    rows = summarise(results, out, fit)
    pairs = twin_pairs(r["method"] for r in results) + [p for p in compare if p not in TWINS.items()]
    differences = paired(results, pairs)
    done = f"{len(results)} runs" if planned is None else f"{len(results)} of {planned} runs done"
    text = [f"# Study: {name}", "", done + ".", ""] + settings_text(results) + ["", LEGEND.format(fit=fit), "",
                                                                                 markdown_table(rows), ""]
    if failed:
        text += ["Runs that failed (a new start of the study tries them again):", ""]
        text += [f"- `{line['id']}`: {line['error']}" for line in failed] + [""]
    text += ["## Per seed", "", "Held-out accuracy (training accuracy in brackets) of each run.", "",
             seeds_table(rows), ""]
    if differences:
        text += ["## Paired differences", "", "a − b on the seeds both ran: the mean difference of accuracy, its 95% "
                 "Student-t interval (– for one seed), and each seed's difference.", "", paired_table(differences), ""]
    for name_, caption in figures:
        text += [f"![{caption}]({name_})", ""]
    return "\n".join(text)


# -- reports of stored runs ---------------------------------------------------------------------
def study_order(study: Any) -> dict[str, list]:
    """The order of a study's datasets, nets, activations and methods (as its file lists them)."""
    return {"dataset": list(dict.fromkeys(r.dataset for r in study.runs)),
            "hidden": list(dict.fromkeys(r.hidden for r in study.runs)),
            "activation": list(dict.fromkeys(r.activation for r in study.runs)),
            "method": list(dict.fromkeys(r.method for r in study.runs))}
