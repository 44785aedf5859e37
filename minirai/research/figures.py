"""A study report's figures, from stored runs: held-out accuracy by method (95% intervals clipped to
[0, 1], each seed a dot, the legend outside the bars), boundaries across seeds (panels in a grid, a
fixed 0–1 scale) and training curves (accuracy on a fixed 0–1 scale against the step)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from .report import FIT, arrays_of, hidden_of, summarise

DPI = 80                # small files: the stored studies keep their figures


def slug(dataset: str, hidden: tuple[int, ...], activation: str) -> str:
    width = str(hidden[0]) if len(set(hidden)) == 1 else "-".join(map(str, hidden))
    return f"{dataset}-d{len(hidden)}-w{width}-{activation}"


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})


def settings_of(results: list[dict[str, Any]]) -> list[tuple]:
    return list(dict.fromkeys((r["dataset"], hidden_of(r), r.get("activation", "")) for r in results))


def figure_names(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (file name, caption) of each figure :func:`draw_all` writes for ``results``, without drawing."""
    names = [("accuracy.png", "held-out accuracy by method: mean, 95% interval, each seed a dot"),
             ("curves.png", "training curves: chained accuracy on the training and held-out sets")]
    for setting in settings_of(results):
        if any((r["dataset"], hidden_of(r), r.get("activation", "")) == setting and r.get("predictions_on") == "grid"
               for r in results):
            names.append((f"boundaries-{slug(*setting)}.png", f"boundaries across seeds: {slug(*setting)}"))
    return names


def draw_all(results: list[dict[str, Any]], out: Path, fit: float = FIT) -> list[tuple[str, str]]:
    """Every figure of a report into ``out`` (see :func:`figure_names`); returns (file name, caption) pairs
    of those drawn (no curves where no run has a stored history)."""
    rows = summarise(results, out, fit)
    drawn = []
    for name, caption in figure_names(results):
        if name == "accuracy.png":
            figure = accuracy(rows)
        elif name == "curves.png":
            figure = curves(results, settings_of(results), out)
        else:
            setting = next(s for s in settings_of(results) if name == f"boundaries-{slug(*s)}.png")
            group = [r for r in results if (r["dataset"], hidden_of(r), r.get("activation", "")) == setting
                     and r.get("predictions_on") == "grid"]
            figure = boundaries(group, out, fit, title=f"{setting[0]}, {len(setting[1])} hidden layers "
                                f"({slug(*setting).split('-w')[1]}): boundaries across seeds")
        if figure is not None:
            save(figure, out / name)
            drawn.append((name, caption))
    return drawn


def accuracy(rows: Sequence[dict[str, Any]]) -> Figure:
    """Held-out accuracy per method: one panel per dataset and activation, one group of bars per net;
    a bar is the mean, its error bar the 95% Student-t interval clipped to [0, 1], a dot each seed."""
    panels = list(dict.fromkeys((r["dataset"], r["activation"]) for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colours = {label: f"C{k % 10}" for k, label in enumerate(labels)}
    nets = {p: list(dict.fromkeys(r["hidden"] for r in rows if (r["dataset"], r["activation"]) == p)) for p in panels}
    per_panel = max(len(n) for n in nets.values()) * len(labels)
    columns = min(len(panels), 3)
    lines = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(columns * (1.6 + 0.28 * per_panel) + 2.5, 3.2 * lines), layout="constrained")
    axes = np.atleast_1d(fig.subplots(lines, columns, squeeze=False)).ravel()
    width = 0.8 / len(labels)
    for ax, panel in zip(axes, panels):
        for k, label in enumerate(labels):
            for i, hidden in enumerate(nets[panel]):
                row = next((r for r in rows if (r["dataset"], r["activation"]) == panel and r["hidden"] == hidden
                            and r["label"] == label and r["test_acc"] is not None), None)
                if row is None:
                    continue
                x = i + (k - (len(labels) - 1) / 2) * width
                mean = row["test_acc"][0]
                ax.bar(x, mean, width, color=colours[label], label=label if i == 0 else None)
                ci = row["test_acc_ci"]
                if ci is not None:
                    ax.errorbar(x, mean, yerr=[[mean - ci[0]], [ci[1] - mean]], color="black", capsize=2, lw=1)
                seeds = [v for v in row["test_acc_values"] if v is not None]
                ax.plot([x] * len(seeds), seeds, ".", color="black", ms=3)
        ax.set_xticks(range(len(nets[panel])), [f"{len(h)} hidden" + ("" if len(set(h)) == 1 else "\n" + "-".join(
            map(str, h))) for h in nets[panel]])
        ax.set_ylim(0, 1)
        ax.set_ylabel("held-out accuracy")
        ax.set_title(f"{panel[0]}, {panel[1]}")
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [h for ax in axes[:len(panels)] for h in [ax.get_legend_handles_labels()]]
    seen: dict[str, Any] = {}
    for hs, ls in handles:
        for h, label in zip(hs, ls):
            seen.setdefault(label, h)
    fig.legend(list(seen.values()), list(seen), loc="outside right upper", fontsize=8, title="method")
    return fig


def boundaries(group: list[dict[str, Any]], out: Path, fit: float, title: str = "") -> Figure:
    """Per method, the share of seeds that predict class 1 at each point of the grid (0 or 1: all
    agree; ½: they split), on a fixed 0–1 scale, with the training points; panels in a grid."""
    from .. import backend
    from .datasets import grid_points, load_dataset
    first = group[0]
    dataset = load_dataset(first["dataset"], first.get("data_options", {}))
    X, y = backend.to_numpy(dataset.X_train), backend.to_numpy(dataset.y_train).reshape(-1)
    points = grid_points(X)
    n = int(round(math.sqrt(len(points))))
    xx, yy = points[:, 0].reshape(n, n), points[:, 1].reshape(n, n)
    methods = list(dict.fromkeys(r["method"] for r in group))
    columns = min(4, len(methods))
    lines = math.ceil(len(methods) / columns)
    fig = Figure(figsize=(3.0 * columns + 1, 2.9 * lines + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(lines, columns, squeeze=False)).ravel()
    mesh = None
    for ax, method in zip(axes, methods):
        runs = [r for r in group if r["method"] == method]
        maps = np.stack([arrays_of(r, out)["predictions"] for r in runs]).astype(np.float64)
        share = maps.mean(axis=0).reshape(n, n)
        mesh = ax.pcolormesh(xx, yy, share, cmap="coolwarm", vmin=0, vmax=1, shading="nearest")
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", vmin=0, vmax=1, edgecolors="k", s=10, lw=0.5)
        fitted = sum(1 for r in runs if r["train_acc"] >= fit)
        ax.set_title(f"{method}\n{len(runs)} seeds, {fitted} fit", fontsize=9)
        ax.set(xlabel="x₁", ylabel="x₂")
    for ax in axes[len(methods):]:
        ax.set_visible(False)
    fig.colorbar(mesh, ax=list(axes[:len(methods)]), label="share of seeds predicting class 1", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def curves(results: list[dict[str, Any]], settings: list[tuple], out: Path) -> Figure | None:
    """Chained accuracy on the training set (left) and the held-out set (right) against the step:
    one row per setting, a colour per method, each seed a thin line, their mean a thick one."""
    histories = {}
    for r in results:
        arrays = arrays_of(r, out)
        if "history_step" in arrays:
            histories[r["id"]] = arrays
    if not histories:
        return None
    labels = list(dict.fromkeys(r["method"] for r in results))
    colours = {label: f"C{k % 10}" for k, label in enumerate(labels)}
    fig = Figure(figsize=(10.5, 2.6 * len(settings) + 0.3), layout="constrained")
    axes = fig.subplots(len(settings), 2, squeeze=False)
    for (left, right), setting in zip(axes, settings):
        for method in labels:
            runs = [r for r in results if (r["dataset"], hidden_of(r), r.get("activation", "")) == setting
                    and r["method"] == method and r["id"] in histories]
            for ax, key in ((left, "history_chained_acc"), (right, "history_val_acc")):
                lines = [(histories[r["id"]]["history_step"], histories[r["id"]][key]) for r in runs
                         if key in histories[r["id"]]]
                for steps, values in lines:
                    ax.plot(steps, values, color=colours[method], lw=0.6, alpha=0.5)
                same = lines and all(len(s) == len(lines[0][0]) and np.array_equal(s, lines[0][0]) for s, _ in lines)
                if same:
                    ax.plot(lines[0][0], np.mean([v for _, v in lines], axis=0), color=colours[method], lw=2,
                            label=method)
        name = f"{setting[0]}, {len(setting[1])} hidden, {setting[2]}"
        for ax, what in ((left, "training"), (right, "held-out")):
            ax.set_ylim(0, 1)
            ax.set(xlabel="step", ylabel=f"{what} accuracy", title=f"{name}: {what}")
            ax.grid(alpha=0.3)
    handles, names = [], []
    for ax in axes.ravel():
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in names:
                handles.append(h)
                names.append(label)
    fig.legend(handles, names, loc="outside right upper", fontsize=8, title="method (mean; seeds thin)")
    return fig
