"""minirai.plot: every picture renders from real runs, and the landscape grid is one batched forward."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import minirai  # noqa: E402
from minirai import backend, data, plot  # noqa: E402
from minirai.rai import RAI  # noqa: E402
from minirai.train import History, fit  # noqa: E402

MIN_BYTES = 5_000


@pytest.fixture(scope="module", autouse=True)
def numpy_backend():
    """These tests compare with NumPy directly; the device tests below choose their own module."""
    backend.set_device("cpu")
    yield
    backend.set_device("cpu")


@pytest.fixture(scope="module")
def moons():
    return data.moons(n_samples=20, n_test=5)


@pytest.fixture
def model():
    return minirai.mlp([2, 8, 1], "relu", "sigmoid", seed=0)


@pytest.fixture(scope="module")
def rai_history(moons):
    deep = minirai.mlp([2, 8, 8, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    r = RAI(deep, moons.X_train, moons.y_train, minirai.BCE())
    history = r.fit(minirai.Rprop(r.parameters(), lr=0.1), iters=20, record_every=5, progress=False,
                    X_val=moons.X_test, y_val=moons.y_test)
    return history


@pytest.fixture
def bp_history():
    history = History()
    for step, loss in enumerate([0.7, 0.5, 0.3, 0.2, 0.15]):
        history.record(step * 10, train_loss=loss, train_acc=0.5 + step / 10, val_loss=loss * 1.2, val_acc=0.5)
    return history


def saved(fig, tmp_path, name):
    """Save ``fig`` as a PNG and return its size in bytes."""
    assert isinstance(fig, Figure)
    path = tmp_path / "sub" / f"{name}.png"    # save() creates parent directories
    plot.save(fig, path)
    assert path.exists()
    return path.stat().st_size


# -- decision_grid -----------------------------------------------------------------------------
def test_decision_grid_is_one_batched_forward_over_the_square(model):
    calls = []
    forward = model.forward

    def counting(x):
        calls.append(tuple(x.shape))
        return forward(x)

    model.forward = counting
    xx, yy, values = plot.decision_grid(model)
    assert calls == [(100 * 100, 2)]
    assert xx.shape == yy.shape == values.shape == (100, 100)
    assert all(isinstance(a, np.ndarray) for a in (xx, yy, values))
    for a in (xx, yy):
        assert a.min() == -3 and a.max() == 3
    np.testing.assert_array_equal(xx[0], np.linspace(-3, 3, 100))
    np.testing.assert_array_equal(yy[:, 0], np.linspace(-3, 3, 100))


def test_decision_grid_values_match_a_direct_forward(model):
    xx, yy, values = plot.decision_grid(model, bounds=(-2, 1), resolution=30)
    assert xx.min() == -2 and xx.max() == 1
    rows, cols = np.array([0, 5, 17, 29]), np.array([29, 0, 11, 3])
    points = np.stack([xx[rows, cols], yy[rows, cols]], axis=1).astype(model.dtype)
    direct = model.forward(points)[:, 0]
    np.testing.assert_allclose(values[rows, cols], direct, rtol=1e-5, atol=1e-6)


def test_decision_grid_uses_eval_mode_and_restores_it(model):
    modes = []
    forward = model.forward
    model.forward = lambda x: (modes.append(model.training), forward(x))[1]
    model.train()
    plot.decision_grid(model, resolution=5)
    assert modes == [False] and model.training
    model.eval()
    plot.decision_grid(model, resolution=5)
    assert not model.training


def test_decision_grid_takes_the_argmax_class_of_several_outputs():
    model = minirai.mlp([2, 8, 3], "relu", None, seed=0)
    xx, yy, values = plot.decision_grid(model, resolution=20)
    assert np.issubdtype(values.dtype, np.integer) and set(np.unique(values)) <= {0, 1, 2}
    direct = model.forward(np.stack([xx.ravel(), yy.ravel()], axis=1).astype(model.dtype))
    np.testing.assert_array_equal(values.ravel(), direct.argmax(axis=1))


@pytest.mark.parametrize("kwargs, match", [
    ({"bounds": (3, -3)}, "low < high"), ({"resolution": 1}, "resolution"), ({"resolution": 2.5}, "resolution"),
])
def test_decision_grid_rejects_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot.decision_grid(model, **kwargs)


def test_decision_grid_needs_two_inputs():
    with pytest.raises(ValueError, match="2 inputs"):
        plot.decision_grid(minirai.mlp([3, 4, 1]))


# -- pictures ------------------------------------------------------------------------------------
def test_landscape_renders(model, moons, tmp_path):
    fig = plot.landscape(model, moons.X_train, moons.y_train, title="MLP Classifier Landscape")
    ax = fig.axes[0]
    assert ax.get_title() == "MLP Classifier Landscape"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x₁", "x₂")
    assert ax.get_legend().get_title().get_text() == "class"
    assert fig.axes[1].get_ylabel() == "P(class 1)"           # the colour bar
    mesh = ax.collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0, 1)          # a fixed probability scale ...
    assert mesh.cmap(mesh.norm(0.5))[:3] == pytest.approx((0.97, 0.97, 0.97), abs=0.03)   # ... white at ½
    assert saved(fig, tmp_path, "landscape") > MIN_BYTES


def test_a_network_that_predicts_one_half_everywhere_is_white_not_class_1(moons):
    """The deep tuned-BP landscape: outputs 0.4993 ± 1e-8 are drawn near white, as every other ½."""
    model = minirai.mlp([2, 4, 1], "sigmoid", "sigmoid", seed=0, dtype="float64")
    model.layers[-2].params["W"][...] = 0.0
    model.layers[-2].params["b"][...] = -0.0028            # σ(-0.0028) = 0.4993
    fig = plot.landscape(model, moons.X_train, moons.y_train)
    mesh = fig.axes[0].collections[0]
    colours = mesh.cmap(mesh.norm(np.asarray(mesh.get_array())))
    assert np.allclose(colours[:, :3], colours[0, :3]) and colours[0, :3].min() > 0.9


def test_paired_landscapes_share_the_colour_scale(moons):
    bp, rai = minirai.mlp([2, 4, 1], seed=0), minirai.mlp([2, 4, 1], seed=1)
    fig = plot.side_by_side([(bp, "BP"), (rai, "RAI")], moons.X_train, moons.y_train)
    norms = [ax.collections[0].norm for ax in fig.axes if ax.collections and ax.get_xlabel() == "x₁"]
    assert len(norms) == 2 and all((n.vmin, n.vmax) == (0, 1) for n in norms)


def test_log_loss_curves_mark_exact_zeros():
    history = History()
    for step, value in enumerate([0.5, 0.01, 0.0, 0.0]):
        history.record(step, train_loss=value)
    fig = plot.loss_curves(history)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "run: train loss: exactly 0 (2 records)" in labels


def test_the_heatmap_colours_tiny_norms_and_greys_only_exact_zeros():
    from minirai.inspect import GradientRecorder
    recorder = GradientRecorder()
    recorder.steps = [1, 2]
    recorder.rows["weight_grad"] = [np.array([6.5e-35, 1.0]), np.array([0.0, 2.0])]
    fig = plot.gradient_heatmap({"BP": recorder})
    image = fig.axes[0].images[0]
    assert image.norm.vmin == pytest.approx(6.5e-35)          # 6.5e-35 is on the scale, not grey
    assert image.get_array()[0, 1] < image.norm.vmin           # the exact 0 falls under it: grey


def test_landscape_draws_into_a_given_axes(model, moons):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.landscape(model, moons.X_train, moons.y_train, ax=ax, resolution=20) is fig
    assert ax.get_title() == "Classifier Landscape"


def test_side_by_side_renders_one_panel_per_model(model, moons, tmp_path):
    other = minirai.mlp([2, 8, 1], "relu", "sigmoid", seed=1)
    fig = plot.side_by_side([(model, "MLP"), (other, "RAI MLP")], moons.X_train, moons.y_train, suptitle="moons")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["MLP", "RAI MLP"]
    assert saved(fig, tmp_path, "side") > MIN_BYTES
    with pytest.raises(ValueError):
        plot.side_by_side([], moons.X_train, moons.y_train)


def test_loss_curves_renders_backprop_and_rai_runs(bp_history, rai_history, tmp_path):
    fig = plot.loss_curves({"BP": bp_history, "RAI": rai_history}, title="curves")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and loss_ax.get_xlabel() == "step"
    labels = [line.get_label() for line in loss_ax.lines]
    assert {"BP: train loss", "RAI: chained loss", "RAI: relaxed loss", "RAI: output loss"} <= set(labels)
    styles = {line.get_label(): line.get_linestyle() for line in loss_ax.lines}
    assert (styles["RAI: chained loss"], styles["RAI: relaxed loss"], styles["RAI: output loss"]) == ("-", "--", ":")
    assert {"BP: train accuracy", "RAI: chained accuracy"} <= {line.get_label() for line in acc_ax.lines}
    assert saved(fig, tmp_path, "loss") > MIN_BYTES


def test_loss_curves_of_a_real_fit_and_a_single_axes(model, moons, tmp_path):
    history = fit(model, minirai.BCE(), minirai.Adam(model.parameters(), lr=0.01), moons.X_train, moons.y_train,
                  iters=10, record_every=2, progress=False)
    assert len(plot.loss_curves(history).axes) == 2        # a lone History is one run
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.loss_curves({"BP": history}, ax=ax, title="one panel") is fig
    assert ax.get_title() == "one panel" and len(fig.axes) == 1


def test_identity_gap_curves_renders(rai_history, tmp_path):
    gaps = rai_history["identity_gap"]
    assert gaps.shape[0] == len(rai_history) and (gaps[0] == 0).all()     # step 0: exactly 0
    fig = plot.identity_gap_curves(rai_history)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == gaps.shape[1] + 1                             # every cut and the mean
    assert fig.axes[1].get_ylabel() == "cut index"
    assert saved(fig, tmp_path, "gap") > MIN_BYTES


def test_identity_gap_curves_needs_cuts(bp_history):
    with pytest.raises(ValueError, match=r"needs an RAI history \(from RAI.fit\) with 'identity_gap'"):
        plot.identity_gap_curves(bp_history)


# -- bad arguments: a clear TypeError/ValueError at the boundary, never a KeyError from inside -------
@pytest.fixture(scope="module")
def tiny_bp(moons):
    """A real backprop History and GradientRecorder of 3 steps of a tiny network."""
    model = minirai.mlp([2, 4, 1], "tanh", "sigmoid", seed=0)
    recorder = GradientRecorder(every=1)
    history = fit(model, minirai.BCE(), minirai.Adam(model.parameters(), lr=0.01), moons.X_train, moons.y_train,
                  iters=3, progress=False, recorder=recorder)
    return model, history, recorder


def test_identity_gap_curves_of_a_backprop_history_says_what_it_needs_and_has(tiny_bp):
    _, history, _ = tiny_bp
    with pytest.raises(ValueError) as info:
        plot.identity_gap_curves(history)
    assert str(info.value) == ("plot.identity_gap_curves needs an RAI history (from RAI.fit) with 'identity_gap'; "
                               "this History has step, loss, train_loss, train_acc")
    with pytest.raises(TypeError, match=r"plot.identity_gap_curves: history must be a minirai History .* got dict"):
        plot.identity_gap_curves({"identity_gap": [[0.1]]})


@pytest.mark.parametrize("draw", [plot.gradient_heatmap, plot.gradient_profile], ids=["heatmap", "profile"])
def test_gradient_pictures_reject_an_unknown_quantity_listing_the_choices(tiny_bp, draw):
    _, _, recorder = tiny_bp
    with pytest.raises(ValueError) as info:
        draw({"BP": recorder}, quantity="weight_grads")
    message = str(info.value)
    assert message.startswith(f"plot.{draw.__name__}: quantity must be one of 'weight_grad', 'bias_grad'")
    assert "'table_grad_target'; got 'weight_grads'" in message


@pytest.mark.parametrize("draw", [plot.gradient_heatmap, plot.gradient_profile], ids=["heatmap", "profile"])
def test_gradient_pictures_check_the_recorders(tiny_bp, draw):
    _, _, recorder = tiny_bp
    with pytest.raises(ValueError, match=r"quantity 'table_grad' needs a recorder of an RAI run with cuts"):
        draw({"BP": recorder}, quantity="table_grad")          # backprop records no table gradients
    with pytest.raises(TypeError, match=rf"plot.{draw.__name__}: recorders must be a dict .* got list"):
        draw([recorder])
    with pytest.raises(TypeError, match=rf"plot.{draw.__name__}: recorders\['BP'\] must be a minirai GradientRecorder"):
        draw({"BP": "recorder"})
    with pytest.raises(ValueError, match=rf"plot.{draw.__name__}: recorders\['BP'\] has no records yet"):
        draw({"BP": GradientRecorder()})


def test_gradient_profile_checks_the_record(tiny_bp):
    _, _, recorder = tiny_bp
    with pytest.raises(TypeError, match=r"plot.gradient_profile: record must be an integer, got 'last'"):
        plot.gradient_profile({"BP": recorder}, record="last")
    with pytest.raises(ValueError, match=r"record 3 is out of range: recorders\['BP'\] holds 3 records"):
        plot.gradient_profile({"BP": recorder}, record=3)


def test_loss_curves_checks_its_histories_and_axes(tiny_bp):
    _, history, _ = tiny_bp
    with pytest.raises(TypeError, match=r"plot.loss_curves: histories must be a History or a dict .* got list"):
        plot.loss_curves([history])
    with pytest.raises(TypeError, match=r"plot.loss_curves: histories\['BP'\] must be a minirai History .* got dict"):
        plot.loss_curves({"BP": {"train_loss": [0.5]}})
    with pytest.raises(ValueError, match=r"needs histories with 'train_loss' .* histories\['run'\] has step$"):
        plot.loss_curves(History())
    with pytest.raises(TypeError, match=r"plot.loss_curves: ax must be None, a matplotlib Axes or a pair .* got str"):
        plot.loss_curves(history, ax="left")


def test_model_pictures_check_model_axes_and_panels(tiny_bp, moons):
    model, _, _ = tiny_bp
    with pytest.raises(TypeError, match=r"plot.decision_grid: model must be a minirai Sequential, got str"):
        plot.decision_grid("model")
    with pytest.raises(ValueError, match=r"plot.decision_grid: bounds must be a pair of two numbers, got 3"):
        plot.decision_grid(model, bounds=3)
    with pytest.raises(TypeError, match=r"plot.landscape: ax must be a matplotlib Axes or None, got str"):
        plot.landscape(model, moons.X_train, moons.y_train, ax="left")
    with pytest.raises(TypeError, match=r"plot.side_by_side: panels\[0\] must be a \(model, title\) pair, "
                                        r"got Sequential"):
        plot.side_by_side([model], moons.X_train, moons.y_train)
    with pytest.raises(TypeError, match=r"plot.side_by_side: panels\[0\]\[0\] must be a minirai Sequential, got str"):
        plot.side_by_side([("model", "BP")], moons.X_train, moons.y_train)


def test_save_needs_a_figure(tmp_path):
    fig = Figure()
    ax = fig.add_subplot()
    with pytest.raises(TypeError, match=r"plot.save: fig must be a matplotlib Figure .* got Axes; "
                                        r"for an Axes pass ax.figure"):
        plot.save(ax, tmp_path / "a.png")
    with pytest.raises(TypeError, match=r"plot.save: path must be a str or os.PathLike .* got int"):
        plot.save(fig, 3)


def test_study_pictures_check_their_rows_and_maps(moons):
    with pytest.raises(ValueError, match=r"plot.study_accuracy needs at least one row"):
        plot.study_accuracy([])
    with pytest.raises(ValueError, match=r"needs rows with dataset, depth, method, test_acc; rows\[0\] lacks method, "
                                         r"test_acc \(it has dataset, depth\)"):
        plot.study_accuracy([{"dataset": "moons", "depth": 2}])
    row = {"dataset": "moons", "depth": 2, "method": "bp", "test_acc": (0.9, 0.01)}
    assert isinstance(plot.study_accuracy([row, {**row, "depth": 3, "test_acc": None}]), Figure)  # None: no bar
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3)), axis=-1).reshape(9, 2)
    with pytest.raises(ValueError, match=r"plot.study_boundaries: points must be an n x n grid .* got shape \(8, 2\)"):
        plot.study_boundaries({"bp": np.zeros((2, 8))}, grid[:8], moons.X_train, moons.y_train)
    with pytest.raises(ValueError, match=r"plot.study_boundaries: maps\['bp'\] must have shape \(seeds, 9\)"
                                         r".* got \(2, 8\)"):
        plot.study_boundaries({"bp": np.zeros((2, 8))}, grid, moons.X_train, moons.y_train)
    with pytest.raises(ValueError, match=r"plot.study_boundaries needs at least one method"):
        plot.study_boundaries({}, grid, moons.X_train, moons.y_train)
    assert isinstance(plot.study_boundaries({"bp": np.zeros((2, 9))}, grid, moons.X_train, moons.y_train), Figure)


# -- device arrays reach matplotlib only through backend.to_numpy ------------------------------------
def test_pictures_on_every_backend(xp, tmp_path):
    """``xp`` (tests/conftest.py): numpy, the strict CuPy-like stand-in, and CuPy where a GPU answers."""
    ds = data.moons(n_samples=20, n_test=5)
    model = minirai.mlp([2, 8, 1], "relu", "sigmoid", seed=0)
    assert backend.array_module(ds.X_train, model.parameters()[0][0]) is xp
    xx, yy, values = plot.decision_grid(model, resolution=10)
    assert all(type(a) is np.ndarray for a in (xx, yy, values)) and values.shape == (10, 10)
    r = RAI(minirai.mlp([2, 8, 8, 1], "sigmoid", "sigmoid", seed=0), ds.X_train, ds.y_train, minirai.BCE())
    history = r.fit(minirai.Rprop(r.parameters(), lr=0.1), iters=10, record_every=5, progress=False)
    assert saved(plot.side_by_side([(model, "device")], ds.X_train, ds.y_train), tmp_path, "side") > MIN_BYTES
    assert saved(plot.loss_curves({"RAI": history}), tmp_path, "loss") > MIN_BYTES
    assert saved(plot.identity_gap_curves(history), tmp_path, "gap") > MIN_BYTES


# -- gradient pictures (GradientRecorder) ----------------------------------------------------------
import json  # noqa: E402

from minirai import cli  # noqa: E402
from minirai.inspect import GradientRecorder  # noqa: E402


@pytest.fixture(scope="module")
def grad_recorders(moons):
    """BP and RAI recorders (every step, 8 steps) of a small 4-Linear sigmoid net."""
    recorders = {}
    model = minirai.mlp([2, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    recorders["BP"] = GradientRecorder(every=1)
    fit(model, minirai.BCE(), minirai.Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train, iters=8,
        progress=False, recorder=recorders["BP"])
    model = minirai.mlp([2, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    r = RAI(model, moons.X_train, moons.y_train, minirai.BCE())
    recorders["RAI"] = GradientRecorder(every=1)
    r.fit(minirai.Rprop(r.parameters(), lr=0.1), 8, progress=False, recorder=recorders["RAI"])
    return recorders


def test_gradient_heatmap_renders_one_panel_per_run_with_a_colorbar(grad_recorders, tmp_path):
    """One panel per recorder (steps x Linear layers), one shared colour bar; exact zeros fall below it."""
    fig = plot.gradient_heatmap(grad_recorders, title="grads")
    panels, colorbar = fig.axes[:2], fig.axes[2:]
    assert [ax.get_title() for ax in panels] == ["BP", "RAI"]
    assert len(colorbar) == 1 and "weight_grad" in colorbar[0].get_ylabel()
    image = panels[1].images[0]
    shown = np.asarray(image.get_array())
    assert shown.shape == (4, 8)                                     # Linear layers x records
    assert (shown[:, 0] < image.norm.vmin).all()                     # RAI step 1: all exactly 0 -> grey
    assert (shown[:, -1] >= image.norm.vmin).all()                   # step 8: every layer has a gradient
    assert (panels[0].images[0].norm.vmin, panels[0].images[0].norm.vmax) == (image.norm.vmin, image.norm.vmax)
    assert saved(fig, tmp_path, "grad-heatmap") > MIN_BYTES
    with pytest.raises(ValueError):
        plot.gradient_heatmap({})


def test_gradient_profile_renders_and_marks_exact_zeros(grad_recorders, tmp_path):
    """At record 0 (step 1) RAI's weight gradients are all exactly 0: crosses, counted in the legend."""
    fig = plot.gradient_profile(grad_recorders, record=0)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.lines]
    assert "BP (step 1)" in labels and "RAI (step 1)" in labels
    zeros = [line for line in ax.lines if line.get_label() == "RAI: exactly 0 (4 layers)"]
    assert len(zeros) == 1 and zeros[0].get_marker() == "x"
    assert not any(label.startswith("BP: exactly 0") for label in labels)
    assert saved(fig, tmp_path, "grad-profile") > MIN_BYTES
    last = plot.gradient_profile(grad_recorders)                    # default: the last record
    assert not any("exactly 0" in line.get_label() for line in last.axes[0].lines)
    assert saved(last, tmp_path, "grad-profile-last") > MIN_BYTES


def test_cli_reproduce_grads_writes_gradient_figures_and_profiles(tmp_path):
    """`reproduce shallow --grads`: heatmap, profile, loss curves, identity gaps; 5-layer profiles in JSON."""
    assert cli.main(["reproduce", "shallow", "--iters", "10", "--grads", "--quiet", "--out", str(tmp_path)]) == 0
    for name in ("grad-heatmap", "grad-profile", "loss-curves", "identity-gap"):
        path = tmp_path / f"shallow-{name}.png"
        assert path.exists() and path.stat().st_size > MIN_BYTES, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [entry["method"] for entry in summary] == ["bp", "rai"]
    for entry in summary:
        assert entry["grad_profile_steps"] == [1, 10]
        assert len(entry["grad_profile_first"]) == len(entry["grad_profile_last"]) == 5
        assert all(value > 0 for value in entry["grad_profile_last"])
    rai = summary[1]
    assert rai["grad_profile_first"] == [0.0] * 5                   # RAI step 1: the tables move first
