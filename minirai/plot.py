"""Pictures of a run: decision landscapes, loss and accuracy curves, identity gaps per cut,
and gradient norms by layer (heatmaps and profiles from a GradientRecorder).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``.
New figures are plain ``Figure`` objects, not registered with pyplot, so they do not pile
up in pyplot's figure list and are not shown twice in a notebook. The caller saves them
(:func:`save` writes a PNG and closes the figure) or displays them (a Figure is shown when
it is the last expression of a notebook cell). Functions that take ``ax`` draw into an
existing Axes instead and return that Axes' figure.

Arrays from the engine may live on a GPU; they reach matplotlib only through
:func:`minirai.backend.to_numpy`. The backend is never forced here: set ``MPLBACKEND=Agg``
(or call ``matplotlib.use("Agg")``) for headless runs.

Every public function checks its arguments before drawing: a wrong type is a TypeError, a
wrong value (an unknown ``quantity``, a backprop History where an RAI one is needed, an empty
recorder) a ValueError; each names the function, the argument, what was expected and what
was given.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import backend
from .network import Sequential
from .inspect import QUANTITIES, GradientRecorder
from .train import History
from .validate import check_instance, check_number, check_pair_of_numbers

Array = Any


# -- the landscape ------------------------------------------------------------------------------
def decision_grid(model: Sequential, bounds: tuple[float, float] = (-3, 3),
                  resolution: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a 2-input model on a square grid in one batched chained forward pass.

    Args:
        model: a network with 2 inputs. It runs in eval mode; its previous mode is restored.
        bounds: ``(low, high)`` of both axes.
        resolution: grid points per axis.

    Returns:
        ``(xx, yy, values)``, NumPy arrays of shape ``(resolution, resolution)`` as from
        ``np.meshgrid`` (``xx[i, j]`` is the j-th x, ``yy[i, j]`` the i-th y). ``values`` is
        output column 0 for a one-output model, else the predicted class (argmax).
    """
    _check_model(model, "decision_grid")
    low, high = check_pair_of_numbers(bounds, "plot.decision_grid: bounds")
    if not low < high:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    if isinstance(resolution, (bool, np.bool_)) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    if model.in_features not in (None, 2):
        raise ValueError(f"decision_grid needs a model with 2 inputs, this one takes {model.in_features}")
    axis = np.linspace(low, high, resolution)
    xx, yy = np.meshgrid(axis, axis)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    was_training = model.training
    model.eval()
    try:
        out = backend.to_numpy(model.forward(backend.to_device(grid.astype(model.dtype))))
    finally:
        if was_training:
            model.train()
    out = out.reshape(len(grid), -1)
    values = out[:, 0] if out.shape[1] == 1 else out.argmax(axis=1)
    return xx, yy, values.reshape(resolution, resolution)


def landscape(model: Sequential, X: Array, y: Array, title: str = "Classifier Landscape",
              ax: Axes | None = None, bounds: tuple[float, float] = (-3, 3), resolution: int = 100) -> Figure:
    """The model's output over a square, with the training points on top.

    A one-output model is drawn as P(class 1) on a fixed 0–1 scale (white at ½, with the ½
    contour, the decision boundary, in black), so that two landscapes compare by colour; a
    network that predicts ½ everywhere is white, not "class 1". Several outputs: the predicted class.

    Args:
        model: a 2-input network (see :func:`decision_grid`).
        X: inputs, shape (N, 2), on any device.
        y: class labels, shape (N,) or (N, 1), on any device.
        title: the Axes title.
        ax: draw into this Axes (and its figure) instead of a new 10 x 8 inch figure.
        bounds, resolution: the grid, as in :func:`decision_grid`.

    Returns:
        The figure drawn into (the caller saves or closes it).
    """
    _check_model(model, "landscape")
    _check_ax(ax, "landscape")
    X_np, labels = _points(X, y, "landscape")
    xx, yy, values = decision_grid(model, bounds, resolution)
    fig, ax = _figure_and_axes(ax, figsize=(10, 8))
    classes = np.issubdtype(values.dtype, np.integer)   # argmax of several outputs
    if classes:     # predicted classes and labels share one colour scale
        norm, cmap = Normalize(0, max(int(values.max()), int(labels.max()), 1)), "viridis"
    else:           # a probability: always 0 to 1, white at ½ (the decision boundary), so panels compare
        norm, cmap = Normalize(0, 1), PROBABILITY_CMAP
    mesh = ax.pcolormesh(xx, yy, values, cmap=cmap, norm=norm, alpha=0.8, shading="nearest")
    colorbar = fig.colorbar(mesh, ax=ax, label="predicted class" if classes else "P(class 1)")
    if classes:
        colorbar.locator = MaxNLocator(integer=True)
        colorbar.update_ticks()
    else:
        ax.contour(xx, yy, values, levels=[0.5], colors="k", linewidths=1.0)   # the boundary, where there is one
    points = ax.scatter(X_np[:, 0], X_np[:, 1], c=labels, cmap=cmap, norm=norm, edgecolors="k", s=80,
                        alpha=0.9)
    ax.legend(*points.legend_elements(), title="class", loc="upper right")
    ax.set(xlabel="x₁", ylabel="x₂", title=title)
    return fig


#: landscapes of P(class 1): blue for class 0, red for class 1, white at ½
PROBABILITY_CMAP = "RdBu_r"


def side_by_side(panels: Sequence[tuple[Sequential, str]], X: Array, y: Array, suptitle: str | None = None,
                 bounds: tuple[float, float] = (-3, 3), resolution: int = 100) -> Figure:
    """Landscapes of several models in one row, e.g. ``[(bp_model, "MLP"), (rai_model, "RAI MLP")]``.

    Args:
        panels: ``(model, title)`` pairs, drawn left to right.
        X, y: the training points shown in every panel.
        suptitle: a title over the whole row.
        bounds, resolution: the grid, as in :func:`decision_grid`.

    Returns:
        A new figure (the caller saves or closes it).
    """
    if isinstance(panels, (str, bytes)) or not isinstance(panels, Sequence):
        raise TypeError(f"plot.side_by_side: panels must be a list of (model, title) pairs, "
                        f"got {type(panels).__name__}")
    if not panels:
        raise ValueError("side_by_side needs at least one (model, title) pair")
    for i, panel in enumerate(panels):
        if not (isinstance(panel, (tuple, list)) and len(panel) == 2):
            raise TypeError(f"plot.side_by_side: panels[{i}] must be a (model, title) pair, "
                            f"got {type(panel).__name__}")
        _check_model(panel[0], "side_by_side", f"panels[{i}][0]")
    _points(X, y, "side_by_side")
    fig = Figure(figsize=(9 * len(panels), 7.5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (model, title) in zip(axes, panels):
        landscape(model, X, y, title=title, ax=ax, bounds=bounds, resolution=resolution)
    if suptitle:
        fig.suptitle(suptitle, fontsize="x-large")
    return fig


# -- training curves -----------------------------------------------------------------------------
#: (history key, line style, legend name) drawn on the loss panel and on the accuracy panel
LOSS_LINES = (("relaxed_loss", "--", "relaxed"), ("output_loss", ":", "output"), ("val_loss", "-.", "held-out"))
ACC_LINES = (("val_acc", "--", "held-out"),)


def loss_curves(histories: Mapping[str, History] | History, ax: Axes | Sequence[Axes] | None = None,
                title: str = "Training curves", yscale: str = "log", floor: float | None = None) -> Figure:
    """Losses (log scale, left) and accuracies (right) of one or several runs against the step.

    Each run has one colour. Its chained loss (``chained_loss``, or ``train_loss`` for a
    backprop run) is solid; an RAI run adds ``relaxed_loss`` dashed and ``output_loss``
    dotted; ``val_loss`` is dash-dotted. The accuracy panel shows ``chained_acc`` (or
    ``train_acc``) solid and ``val_acc`` dashed. Each later run is drawn a little thinner,
    so a run that follows an earlier one exactly leaves a coloured border around it. In a
    new figure the legends sit under the panels: one entry per run, one per line style.

    Args:
        histories: ``{run name: History}``; a single History is named "run".
        ax: None for a new two-panel figure; a pair of Axes (losses, accuracies); or one
            Axes, which gets the losses only.
        title: the figure title (the Axes title when a single Axes is given).
        yscale: the loss axis, ``"log"`` or ``"linear"``.
        floor: the lowest loss the log axis shows (None: whatever the runs reach). A curve that
            falls below it stops at the edge, and a ▼ on the bottom edge marks the first record
            below, so a loss of 1e-30 does not squeeze the other runs into a strip.

    Returns:
        The figure drawn into (the caller saves or closes it).
    """
    if isinstance(histories, History):
        histories = {"run": histories}
    if not isinstance(histories, Mapping):
        raise TypeError(f"plot.loss_curves: histories must be a History or a dict {{run name: History}}, "
                        f"got {type(histories).__name__}")
    if not histories:
        raise ValueError("loss_curves needs at least one history")
    for name, history in histories.items():
        _check_history(history, "loss_curves", f"histories[{name!r}]")
        if "chained_loss" not in history and "train_loss" not in history:
            raise ValueError(f"plot.loss_curves needs histories with 'train_loss' (from fit) or 'chained_loss' "
                             f"(from RAI.fit); histories[{name!r}] has {_columns(history)}")
    if not (ax is None or isinstance(ax, Axes) or (isinstance(ax, (tuple, list, np.ndarray)) and len(ax) == 2
                                                   and all(isinstance(a, Axes) for a in ax))):
        raise TypeError(f"plot.loss_curves: ax must be None, a matplotlib Axes or a pair of Axes, "
                        f"got {type(ax).__name__}")
    if yscale not in ("log", "linear"):
        raise ValueError(f"plot.loss_curves: yscale must be 'log' or 'linear', got {yscale!r}")
    if floor is not None:
        floor = check_number(floor, "plot.loss_curves: floor", low=0, low_open=True)
    if ax is None:
        fig = Figure(figsize=(14, 6), layout="constrained")
        loss_ax, acc_ax = fig.subplots(1, 2)
        fig.suptitle(title)
    elif isinstance(ax, Axes):     # one Axes: the losses only
        loss_ax, acc_ax, fig = ax, None, ax.figure
    else:                          # a pair of Axes
        loss_ax, acc_ax = ax
        fig = loss_ax.figure
        fig.suptitle(title)
    colours = [f"C{i % 10}" for i in range(len(histories))]
    widths = [max(3.2 - 0.6 * i, 1.2) for i in range(len(histories))]   # later runs thinner: none hides another
    positive = yscale == "log"
    for colour, width, (name, history) in zip(colours, widths, histories.items()):
        chained = "chained" if "chained_loss" in history else "train"
        _curve(loss_ax, history, f"{chained}_loss", "-", colour, f"{name}: {chained} loss", positive=positive,
               width=width, floor=floor)
        for key, style, what in LOSS_LINES:
            _curve(loss_ax, history, key, style, colour, f"{name}: {what} loss", positive=positive, width=width,
                   floor=floor)
        if acc_ax is not None:
            _curve(acc_ax, history, f"{chained}_acc", "-", colour, f"{name}: {chained} accuracy", width=width)
            for key, style, what in ACC_LINES:
                _curve(acc_ax, history, key, style, colour, f"{name}: {what} accuracy", width=width)
    loss_ax.set(yscale=yscale, xlabel="step", ylabel="loss", title="Loss" if acc_ax is not None else title)
    if floor is not None and positive:
        loss_ax.set_ylim(bottom=floor)
    outside = ax is None          # a figure of our own: legends under the panels, out of the curves' way
    _finish(loss_ax, legend=not outside)
    if acc_ax is not None:
        acc_ax.set(xlabel="step", ylabel="accuracy", title="Accuracy")
        _finish(acc_ax, empty="no accuracy recorded\n(not a classification loss)", legend=not outside)
    if outside:
        _legend_below(loss_ax, histories, colours)
        if acc_ax is not None:
            _legend_below(acc_ax, histories, colours)
    return fig


def _legend_below(ax: Axes, histories: Mapping[str, History], colours: Sequence[str]) -> None:
    """One entry per run (its colour), one per line style drawn in ``ax`` and one per marker, under ``ax``."""
    from matplotlib.lines import Line2D

    drawn = [line for line in ax.lines if not line.get_label().startswith("_")]
    if not drawn:
        return
    handles = [Line2D([], [], color=colour, lw=3, label=name) for colour, name in zip(colours, histories)]
    styles: dict[str, str] = {}
    for line in drawn:
        run, _, what = line.get_label().partition(": ")
        if line.get_linestyle() in ("None", "") or what in styles.values():
            continue
        styles.setdefault(line.get_linestyle(), what)
    handles += [Line2D([], [], color="0.25", ls=style, lw=1.8, label=what) for style, what in styles.items()]
    handles += [Line2D([], [], color=line.get_color(), ls="None", marker=line.get_marker(), label=line.get_label())
                for line in drawn if line.get_linestyle() in ("None", "")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=min(len(handles), 3),
              fontsize="small", frameon=False)


def identity_gap_curves(history: History, ax: Axes | None = None,
                        title: str = "Identity gap per cut") -> Figure:
    """The identity gap of every cut over training, on a log scale: at cut s, mean (o_{s-1} - Z_s)².

    Cuts and tables are counted from 1, as in the math: cut s sits between block s-1 and block s,
    and its table Z_s is ``trainer.tables[s - 1]``. Each cut is a thin line coloured by s (1 = the
    cut nearest the input; colour bar "cut index"); the mean over cuts is a thick black line. Gaps
    that are exactly 0 (every gap at step 0, where the tables are a chained forward pass) are left
    out of the log plot.

    Args:
        history: an :class:`minirai.rai.RAIHistory` (``history["identity_gap"]`` is records x cuts).
        ax: draw into this Axes instead of a new 10 x 6 inch figure.
        title: the Axes title.

    Returns:
        The figure drawn into (the caller saves or closes it).
    """
    _check_history(history, "identity_gap_curves")
    if "identity_gap" not in history.keys():     # keys(), not `in`: RAIHistory keeps per-cut columns apart
        raise ValueError(f"plot.identity_gap_curves needs an RAI history (from RAI.fit) with 'identity_gap'; "
                         f"this {type(history).__name__} has {_columns(history)}")
    _check_ax(ax, "identity_gap_curves")
    gaps = np.asarray(history["identity_gap"], dtype=np.float64)
    steps = history["step"]
    if gaps.ndim != 2 or gaps.shape[1] == 0:
        raise ValueError(f"identity_gap_curves needs a history of a run with cuts; identity_gap has shape {gaps.shape}")
    fig, ax = _figure_and_axes(ax, figsize=(10, 6))
    n_cuts = gaps.shape[1]
    norm = Normalize(vmin=1, vmax=max(n_cuts, 2))
    mapper = ScalarMappable(norm=norm, cmap="viridis")
    width = 0.6 if n_cuts > 20 else 1.2
    for cut in range(n_cuts):
        ax.plot(steps, _positive(gaps[:, cut]), color=mapper.to_rgba(cut + 1), lw=width, alpha=0.8)
    ax.plot(steps, _positive(gaps.mean(axis=1)), color="black", lw=3, label=f"mean over {n_cuts} cuts")
    colorbar = fig.colorbar(mapper, ax=ax, label="cut index")
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    ax.set(yscale="log", xlabel="step", ylabel=r"identity gap at cut $s$:  $\mathrm{mean}\,(o_{s-1} - Z_s)^2$",
           title=title)
    _finish(ax, empty="no positive identity gap recorded yet")
    return fig


# -- gradients ---------------------------------------------------------------------------------
def gradient_heatmap(recorders: Mapping[str, GradientRecorder], quantity: str = "weight_grad",
                     title: str = "Weight-gradient norm by layer") -> Figure:
    """One log-scale heatmap per run: recorded steps (x) by layer (y), colour = gradient norm.

    Args:
        recorders: ``{"BP": recorder, "RAI": recorder}``, drawn side by side on one colour scale.
        quantity: a :class:`~minirai.inspect.GradientRecorder` quantity (``"weight_grad"``, ...).
        title: the figure title.

    Norms that are exactly 0 (a float32 gradient that underflowed) are drawn grey, below the
    colour scale, so "vanished" stands apart from "small".
    """
    from matplotlib.colors import LogNorm

    _check_recorders(recorders, quantity, "gradient_heatmap")
    grids = {name: rec[quantity] for name, rec in recorders.items()}
    positive = np.concatenate([g[g > 0] for g in grids.values() if g.size] or [np.ones(1)])
    # the scale reaches the smallest positive norm, however tiny: only exact zeros are grey
    norm = LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 10))
    fig = Figure(figsize=(6 * len(grids) + 1, 5), layout="constrained")
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    image = None
    for ax, (name, grid) in zip(axes, grids.items()):
        steps = recorders[name].steps
        cmap = _cmap_with_grey_under()
        shown = np.where(grid > 0, grid, norm.vmin * 1e-3).T  # zeros fall under the scale: grey
        first = 1 if quantity.startswith("table") else 0     # cuts count from 1 (table Z_s), layers from 0
        image = ax.imshow(shown, aspect="auto", origin="lower", cmap=cmap, norm=norm, interpolation="nearest",
                          extent=(steps[0] - 0.5, steps[-1] + 0.5, first - 0.5, first + grid.shape[1] - 0.5)
                          if steps else None)
        ax.set(xlabel="step", ylabel=_position_label(quantity), title=name)
    fig.colorbar(image, ax=list(axes), label=f"‖{quantity}‖ (grey: exactly 0)", extend="min")
    fig.suptitle(title)
    return fig


def gradient_profile(recorders: Mapping[str, GradientRecorder], quantity: str = "weight_grad",
                     record: int = -1, ax: Axes | None = None,
                     title: str = "Per-layer weight-gradient norm (the vanishing-gradient picture)") -> Figure:
    """The recorded norms of one step (default: the last) against the layer, log scale, one line per run.

    Exact zeros cannot be drawn on a log axis; they are marked by crosses on the bottom edge.
    """
    _check_recorders(recorders, quantity, "gradient_profile")
    record = check_number(record, "plot.gradient_profile: record", integer=True)
    for name, rec in recorders.items():
        if not -len(rec) <= record < len(rec):
            raise ValueError(f"plot.gradient_profile: record {record} is out of range: recorders[{name!r}] holds "
                             f"{len(rec)} records")
    _check_ax(ax, "gradient_profile")
    fig, ax = _figure_and_axes(ax, figsize=(10, 5))
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for colour, (name, rec) in zip(colours, recorders.items()):
        values = rec.profile(quantity, record)
        layers = np.arange(values.size) + (1 if quantity.startswith("table") else 0)   # cuts count from 1
        ax.plot(layers, _positive(values), "-", color=colour, lw=1.8, label=f"{name} (step {rec.steps[record]})")
        zeros = layers[values == 0]
        if zeros.size:
            ax.plot(zeros, np.zeros_like(zeros, dtype=float), "x", color=colour, ms=4, clip_on=False,
                    transform=ax.get_xaxis_transform(), label=f"{name}: exactly 0 ({zeros.size} layers)")
    ax.set(yscale="log", xlabel=_position_label(quantity), ylabel=f"‖{quantity}‖", title=title)
    _finish(ax, empty="no gradient recorded")
    return fig


def _position_label(quantity: str) -> str:
    """The axis a recorded quantity runs along: Linear layers and layers from 0, cuts (tables Z_s) from 1."""
    if quantity in ("weight_grad", "bias_grad"):
        return "Linear layer (0 = nearest the input)"
    if quantity.startswith("table"):
        return "cut s, table Z_s (1 = nearest the input)"
    return "layer (0 = nearest the input)"


def _cmap_with_grey_under() -> Any:
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(under="0.75")


# -- saving --------------------------------------------------------------------------------------
def save(fig: Figure, path: str | os.PathLike) -> Figure:
    """Write ``fig`` to ``path`` (format from the suffix, 100 dpi, tight box) and return it.

    Parent directories are created as needed. pyplot lets go of the figure (so a script that
    saves many does not keep them all), but the figure itself stays drawable: a notebook cell
    that ends with ``plot.save(...)`` shows it.
    """
    import matplotlib.pyplot as plt

    if not isinstance(fig, Figure):
        hint = "; for an Axes pass ax.figure" if isinstance(fig, Axes) else ""
        raise TypeError(f"plot.save: fig must be a matplotlib Figure (as the plot functions return), "
                        f"got {type(fig).__name__}{hint}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"plot.save: path must be a str or os.PathLike (e.g. 'runs/loss.png'), "
                        f"got {type(path).__name__}")
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return fig


# -- helpers -------------------------------------------------------------------------------------
def _check_model(model: Any, where: str, name: str = "model") -> None:
    check_instance(model, Sequential, f"plot.{where}: {name}", "for example minirai.mlp([2, 8, 1])")


def _check_ax(ax: Any, where: str) -> None:
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"plot.{where}: ax must be a matplotlib Axes or None, got {type(ax).__name__}")


def _check_history(history: Any, where: str, name: str = "history") -> None:
    if not isinstance(history, History):
        raise TypeError(f"plot.{where}: {name} must be a minirai History (from fit or RAI.fit), "
                        f"got {type(history).__name__}")


def _columns(history: History) -> str:
    return ", ".join(history.keys())


def _check_recorders(recorders: Any, quantity: Any, where: str) -> None:
    """A non-empty ``{name: GradientRecorder}`` with records, and a quantity that one of them has."""
    if not isinstance(recorders, Mapping):
        raise TypeError(f"plot.{where}: recorders must be a dict {{run name: GradientRecorder}}, "
                        f"got {type(recorders).__name__}")
    if not recorders:
        raise ValueError(f"{where} needs at least one recorder")
    if not isinstance(quantity, str) or quantity not in QUANTITIES:
        raise ValueError(f"plot.{where}: quantity must be one of {', '.join(map(repr, QUANTITIES))}; "
                         f"got {quantity!r}")
    for name, rec in recorders.items():
        check_instance(rec, GradientRecorder, f"plot.{where}: recorders[{name!r}]",
                       "pass a GradientRecorder to fit or RAI.fit as recorder=...")
        if not len(rec):
            raise ValueError(f"plot.{where}: recorders[{name!r}] has no records yet: pass it to fit or RAI.fit "
                             "(recorder=...)")
    if all(rec[quantity].shape[1] == 0 for rec in recorders.values()):
        raise ValueError(f"plot.{where}: quantity {quantity!r} needs a recorder of an RAI run with cuts "
                         f"(RAI.fit); none of {', '.join(map(repr, recorders))} recorded any")


def _points(X: Array, y: Array, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The training points on the host: X (N, 2) and one label per row."""
    X_np = backend.to_numpy(X)
    labels = backend.to_numpy(y).reshape(-1)
    if X_np.ndim != 2 or X_np.shape[1] != 2:
        raise ValueError(f"{where}: X must have shape (N, 2), got {X_np.shape}")
    if labels.shape[0] != X_np.shape[0]:
        raise ValueError(f"{where}: y must have one label per row of X ({X_np.shape[0]}), got {labels.shape[0]}")
    return X_np, labels


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _positive(values: np.ndarray) -> np.ndarray:
    """``values`` with entries <= 0 (and NaN) replaced by NaN, so a log axis skips them."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, values, np.nan)


def _curve(ax: Axes, history: History, key: str, style: str, colour: str, label: str,
           positive: bool = False, width: float = 1.8, floor: float | None = None) -> None:
    """Plot ``history[key]`` against the step if it holds any finite value.

    ``positive``: a log axis, where 0 cannot be drawn: exact zeros become ▼ on the bottom edge. ``floor``: values
    below it are not drawn either, and the first record below it is a ▼ on the bottom edge."""
    if key not in history:
        return
    raw = np.asarray(history[key], dtype=np.float64)
    steps = np.asarray(history["step"])
    values = _positive(raw) if positive else raw
    below = np.zeros(raw.shape, dtype=bool)
    if floor is not None and positive:
        below = (raw > 0) & (raw < floor)
        if below.any():            # the line goes on to the edge: the first value below the floor drawn at it
            first = int(np.argmax(below))
            values = np.where(below, np.nan, values)
            if first > 0 and np.isfinite(values[first - 1]):
                values[first] = floor
    if np.isfinite(values).any():
        ax.plot(steps, values, style, color=colour, label=label, lw=width)
    zeros = steps[raw == 0] if positive else []
    if len(zeros):      # a log axis cannot show 0: mark those steps on the bottom edge
        ax.plot(zeros, np.zeros(len(zeros)), "v", color=colour, ms=5, clip_on=False,
                transform=ax.get_xaxis_transform(), label=f"{label}: exactly 0 ({len(zeros)} records)")
    if below.any():
        first = int(np.argmax(below))
        ax.plot([steps[first]], [0], "v", color=colour, ms=7, clip_on=False, transform=ax.get_xaxis_transform(),
                label=f"{label}: below {floor:.0e} from step {steps[first]} (lowest {raw[below].min():.1e})")


def _finish(ax: Axes, empty: str = "nothing recorded", legend: bool = True) -> None:
    """Grid and legend, or a note in the middle when nothing was drawn."""
    if not any(np.isfinite(np.asarray(line.get_ydata(), dtype=np.float64)).any() for line in ax.lines):
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="0.4")
        return
    ax.grid(True, which="major", alpha=0.3)
    if legend and any(not line.get_label().startswith("_") for line in ax.lines):
        ax.legend(fontsize="small")


def study_accuracy(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """A study's held-out accuracy (mean ± std over seeds): one panel per dataset, one group of bars
    per depth, one bar per method (rows as :func:`minirai.research.report.summarise` makes them); a
    setting without a held-out accuracy (``test_acc`` None) has no bar."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"plot.study_accuracy: rows must be a list of summary rows "
                        f"(minirai.research.report.summarise), got {type(rows).__name__}")
    if not rows:
        raise ValueError("plot.study_accuracy needs at least one row")
    needed = ("dataset", "depth", "method", "test_acc")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"plot.study_accuracy: rows[{i}] must be a dict, got {type(row).__name__}")
        missing = [key for key in needed if key not in row]
        if missing:
            raise ValueError(f"plot.study_accuracy needs rows with {', '.join(needed)}; rows[{i}] lacks "
                             f"{', '.join(missing)} (it has {', '.join(map(str, row))})")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    groups = max(len({r["depth"] for r in rows if r["dataset"] == d}) for d in datasets)
    fig = Figure(figsize=(len(datasets) * (2.5 + 0.35 * len(methods) * groups), 3.6), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    width = 0.8 / len(methods)
    for ax, dataset in zip(axes, datasets):
        depths = sorted({r["depth"] for r in rows if r["dataset"] == dataset})
        for k, method in enumerate(methods):
            found = {r["depth"]: r["test_acc"] for r in rows
                     if r["dataset"] == dataset and r["method"] == method and r["test_acc"] is not None}
            xs = [i + (k - (len(methods) - 1) / 2) * width for i, d in enumerate(depths) if d in found]
            means = [found[d][0] for d in depths if d in found]
            stds = [found[d][1] for d in depths if d in found]
            ax.bar(xs, means, width, yerr=stds, capsize=2, label=method, color=f"C{k}")
        ax.set_xticks(range(len(depths)), [f"{d} hidden" for d in depths])
        ax.set_ylim(0, 1)
        ax.set_ylabel("held-out accuracy")
        ax.set_title(dataset)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].legend(fontsize=8, loc="lower right")
    return fig


def study_boundaries(maps: Mapping[str, np.ndarray], points: np.ndarray, X: Array, y: Array,
                     title: str = "") -> Figure:
    """Boundary variability across seeds on a 2-D set: per method, the fraction of seeds that
    predict class 1 at each grid point (0 or 1: all seeds agree; ½: they split), on a fixed
    0–1 scale with the training points on top.

    ``maps[method]`` is (seeds, n²) predicted classes on ``points`` (n², 2), an n x n grid as
    :func:`minirai.research.datasets.grid_points` makes it.
    """
    if not isinstance(maps, Mapping):
        raise TypeError(f"plot.study_boundaries: maps must be a dict {{method: predictions}}, "
                        f"got {type(maps).__name__}")
    if not maps:
        raise ValueError("plot.study_boundaries needs at least one method in maps")
    points = np.asarray(points)
    n = int(round(np.sqrt(len(points)))) if points.ndim == 2 else 0
    if points.ndim != 2 or points.shape[1] != 2 or n * n != len(points) or n < 2:
        raise ValueError(f"plot.study_boundaries: points must be an n x n grid of shape (n², 2) as "
                         f"minirai.research.datasets.grid_points makes it, got shape {points.shape}")
    for method, predictions in maps.items():
        shape = np.shape(predictions)
        if len(shape) != 2 or shape[1] != len(points):
            raise ValueError(f"plot.study_boundaries: maps[{method!r}] must have shape (seeds, {len(points)}), "
                             f"one row of predicted classes on points per seed; got {shape}")
    X_np, labels = _points(X, y, "study_boundaries")
    xx, yy = points[:, 0].reshape(n, n), points[:, 1].reshape(n, n)
    fig = Figure(figsize=(3.6 * len(maps) + 1, 3.4), layout="constrained")
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    mesh = None
    for ax, (method, predictions) in zip(axes, maps.items()):
        share = np.asarray(predictions, dtype=np.float64).mean(axis=0).reshape(n, n)
        mesh = ax.pcolormesh(xx, yy, share, cmap="coolwarm", vmin=0, vmax=1, shading="nearest")
        ax.scatter(X_np[:, 0], X_np[:, 1], c=labels, cmap="coolwarm", vmin=0, vmax=1, edgecolors="k", s=14)
        ax.set(xlabel="x₁", ylabel="x₂", title=f"{method} ({len(predictions)} seeds)")
    fig.colorbar(mesh, ax=list(axes), label="share of seeds predicting class 1")
    if title:
        fig.suptitle(title)
    return fig
