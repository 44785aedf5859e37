"""Models the rest of the suite does not build, as a learner builds them: their own layer classes,
a layer used twice, recorders on every trainer, diverging estimators, odd input layouts, reused
label arrays. Each test here failed on the code before it was written (issue 20's list, 1-8).

The rule they check: the fast path runs only the classes it was written for, and gives the
textbook path's numbers, byte for byte; everything else is a clear error at the boundary.
"""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from contracts import on_both_paths, same_bytes
from minirai import data
from minirai.estimators import MLPRegressor
from minirai.inspect import QUANTITIES, GradientRecorder
from minirai.layers import Activation, Layer, Linear
from minirai.minibatch import MiniBatchRAI
from minirai.rai import RAI
from minirai.train import TrainingDiverged, fit


# -- 1. a learner's own layer classes: never stacked, never given a fused twin ---------------------------
class Scale(Activation):
    """y = factor · x: a setting of its own, different in every block."""

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        self.x = x
        self.y = self.factor * x
        return self.y

    def derivative(self):
        return np.full_like(self.x, self.factor)


class CentreRows(Layer):
    """y = x - mean over the features (axis 1): on a stack (G, N, D), axis 1 would be the examples."""

    def forward(self, x):
        self.x = x
        self.y = x - x.mean(axis=1, keepdims=True)
        return self.y

    def backward(self, dy):
        self.grad_output = dy
        self.grad_input = dy - dy.mean(axis=1, keepdims=True)
        return self.grad_input


class MyLinear(Linear):
    pass


class ScaledLinear(Linear):
    """A Linear with an attribute of its own: y = scale · (x W + b)."""

    def __init__(self, in_features, out_features, *, scale=1.0, **options):
        super().__init__(in_features, out_features, **options)
        self.scale = scale

    def config(self):
        return {**super().config(), "scale": self.scale}

    def forward(self, x):
        self.x = x
        self.y = self.scale * (x @ self.params["W"] + self.params["b"])
        return self.y

    def backward(self, dy):
        self.grad_output = dy
        dz = self.scale * dy
        self.grads["W"][...] = self.x.T @ dz
        self.grads["b"][...] = dz.sum(axis=0)
        self.grad_input = dz @ self.params["W"].T
        return self.grad_input


def learner_net(kind: str, dtype) -> minirai.Sequential:
    """Linear 2->6, then five [activation, Linear 6->6] blocks, then Sigmoid: the middle blocks have one shape."""
    rng = np.random.default_rng(0)
    layers: list[Layer] = [Linear(2, 6, rng=rng, dtype=dtype)]
    for k in range(5):
        if kind == "scale":
            layers += [Scale(0.5 + 0.25 * k), Linear(6, 6, rng=rng, dtype=dtype)]
        elif kind == "centre":
            layers += [minirai.Tanh(), CentreRows(), Linear(6, 6, rng=rng, dtype=dtype)]
        elif kind == "empty-linear":
            layers += [minirai.Tanh(), MyLinear(6, 6, rng=rng, dtype=dtype)]
        else:
            layers += [minirai.Tanh(), ScaledLinear(6, 6, scale=0.5 + 0.25 * k, rng=rng, dtype=dtype)]
    model = minirai.Sequential(layers + [Linear(6, 1, rng=rng, dtype=dtype), minirai.Sigmoid()])
    model.pack()
    return model


KINDS = ["scale", "centre", "empty-linear", "linear-with-attribute"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_a_learners_layers_give_the_same_bytes_on_both_paths_under_rai(kind, dtype, stacked):
    """RAI.fit, cut after every Linear: the blocks [own layer(s), Linear] are not stacked (their settings or
    their arithmetic differ from what the fast path knows), and the two paths give the same bytes."""
    moons = data.moons(n_samples=40, n_test=5)

    def run():
        model = learner_net(kind, dtype)
        trainer = RAI(model, moons.X_train.astype(dtype), moons.y_train, minirai.BCE())
        optimizer = minirai.SGD(trainer.parameters(), lr=0.5, momentum=0.9)
        history = trainer.fit(optimizer, 6, record_every=3, progress=False)
        return ([p for p, _ in trainer.parameters()] + [g for _, g in trainer.parameters()]
                + [history["hidden_loss"], history["relaxed_loss"]])
    on_both_paths(run)
    assert stacked and all(made.groups == [] for made in stacked)     # the fast path ran, and stacked nothing


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_a_learners_layers_give_the_same_bytes_on_both_paths_under_bp(kind, dtype):
    moons = data.moons(n_samples=40, n_test=5)

    def run():
        model = learner_net(kind, dtype)
        optimizer = minirai.Adam(model.parameters(), lr=1e-2)
        history = fit(model, minirai.BCE(), optimizer, moons.X_train.astype(dtype), moons.y_train, iters=6,
                      batch_size=16, progress=False)
        return [p for p, _ in model.parameters()] + [history["loss"][1:]]
    on_both_paths(run)


def test_a_learners_layers_pass_gradcheck():
    """The test classes above are right (so the comparisons are between two right answers)."""
    for layer, width in ((Scale(0.7), 4), (CentreRows(), 4), (MyLinear(4, 3, dtype=np.float64), 4),
                         (ScaledLinear(4, 3, scale=1.5, dtype=np.float64), 4)):
        minirai.gradcheck(layer, np.random.default_rng(1).normal(size=(5, width)))


# -- 2. one layer object used twice --------------------------------------------------------------------
def test_a_layer_used_twice_is_refused_when_the_model_is_built():
    act = minirai.Tanh()
    with pytest.raises(ValueError, match=r"layer 3 is the same object as layer 1 \(Tanh\(\)\).*second instance"):
        minirai.Sequential(Linear(2, 4), act, Linear(4, 4), act, Linear(4, 1))
    with pytest.raises(ValueError, match="same object"):
        minirai.mlp([2, 4, 4, 1], lambda: act)                    # a factory that hands out one object
    model = minirai.mlp([2, 4, 4, 1], lambda: minirai.Tanh())     # a factory that makes new ones: fine
    assert len({id(layer) for layer in model.layers}) == len(model.layers)


# -- 3. GradientRecorder: the same records on both paths, for every trainer -------------------------------
def recorded(make_trainer, steps: int) -> list[np.ndarray]:
    moons = data.moons(n_samples=41, n_test=5, dtype=np.float64)
    model = minirai.mlp([2, 6, 6, 6, 6, 1], "sigmoid", "sigmoid", seed=1, dtype=np.float64)
    recorder = GradientRecorder(every=1)
    trainer = make_trainer(model, moons)
    if trainer is None:
        fit(model, minirai.BCE(), minirai.Rprop(model.parameters(), lr=0.05), moons.X_train, moons.y_train,
            iters=steps, batch_size=16, progress=False, recorder=recorder)
    else:
        trainer.fit(minirai.Adam(trainer.parameters(), lr=1e-2), steps, record_every=steps, progress=False,
                    recorder=recorder)
    rows = [recorder[name] for name in QUANTITIES]
    assert len(recorder) == steps and not np.isnan(recorder["output_grad"]).any()
    return [np.nan_to_num(r, nan=-1.0) for r in rows]


TRAINERS = {
    "fit": lambda model, d: None,
    "rai": lambda model, d: RAI(model, d.X_train, d.y_train, minirai.BCE()),
    "minibatch-persistent": lambda model, d: MiniBatchRAI(model, d.X_train, d.y_train, minirai.BCE(), batch_size=16),
    "minibatch-per-epoch": lambda model, d: MiniBatchRAI(model, d.X_train, d.y_train, minirai.BCE(), batch_size=16,
                                                         weight_steps="per-epoch"),
    "minibatch-per-batch": lambda model, d: MiniBatchRAI(model, d.X_train, d.y_train, minirai.BCE(), batch_size=16,
                                                         tables="per-batch", inner_steps=2),
}


@pytest.mark.parametrize("name", list(TRAINERS))
def test_a_gradient_recorder_gives_the_same_records_on_both_paths(name):
    """Before, MiniBatchRAI on the fast path recorded NaN output gradients and stale activations."""
    on_both_paths(lambda: recorded(TRAINERS[name], 6))


# -- 4. divergence: a clear error, and an estimator left as it was ---------------------------------------
def estimator_state(estimator) -> list[np.ndarray]:
    arrays = [p.copy() for p, _ in estimator.model_.parameters()]
    arrays += [v.copy() for state in estimator.optimizer_.state for v in state.values()]
    return arrays + [np.asarray([estimator.n_iter_, estimator.loss_, estimator.optimizer_.steps]),
                     np.asarray(estimator.history_["train_loss"])]


@pytest.mark.parametrize("row", [0, 7, 39])
def test_a_diverging_partial_fit_raises_and_leaves_the_estimator_as_it_was(row):
    """One target at 1e150 (in the first, second or last batch): before, partial_fit returned with loss_ = inf
    and predictions of 1e292, or raised with the weights trained some steps and n_iter_ rolled back."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    regressor = MLPRegressor((8,), batch_size=10, solver="sgd", max_iter=5, random_state=0).fit(X, y)
    before, model, optimizer = estimator_state(regressor), regressor.model_, regressor.optimizer_
    y_bad = y.copy()
    y_bad[row] = 1e150
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="became inf"):
        regressor.partial_fit(X, y_bad)
    assert regressor.model_ is model and regressor.optimizer_ is optimizer
    after = estimator_state(regressor)
    assert all(same_bytes(a, b) for a, b in zip(before, after))
    regressor.partial_fit(X, y)                          # and it goes on from there
    assert np.isfinite(regressor.predict(X)).all()


def test_a_diverging_fit_raises_and_keeps_the_fitted_network():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    regressor = MLPRegressor((8,), batch_size=10, solver="sgd", max_iter=5, random_state=0).fit(X, y)
    before, model = estimator_state(regressor), regressor.model_
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged):
        regressor.fit(X, np.where(np.arange(40) == 3, 1e150, y))
    assert regressor.model_ is model and all(same_bytes(a, b) for a, b in zip(before, estimator_state(regressor)))


def test_rai_fit_stops_when_the_chained_network_diverges_while_the_relaxed_loss_does_not():
    """MSE regression: tables keep the relaxed loss finite while the chained network's output overflows."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)).astype(np.float32), rng.normal(size=(20, 1)).astype(np.float32)
    model = minirai.mlp([2, 8, 8, 1], "identity", None, seed=0)
    trainer = RAI(model, X, y, minirai.MSE())
    for layer in model.layers:
        if layer.params:
            layer.params["W"][...] *= np.float32(1e13)      # each layer multiplies by ~1e13: 1e39 > float32's max
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="chained training loss became inf"):
        trainer.fit(minirai.SGD(trainer.parameters(), lr=1e-30), 2, progress=False)


# -- 6. Fortran-ordered and strided inputs ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_fortran_ordered_and_strided_inputs_give_the_same_bytes_on_both_paths(layout, dtype):
    """A model that starts with a Sigmoid, on 40 features in Fortran order (what DataFrame.to_numpy() often
    hands over) or taken every other column: before, the fast sigmoid wrote C order where the textbook one
    kept the input's, and the next product rounded the two layouts differently."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 80)).astype(dtype)
    X = np.asfortranarray(features[:, :40]) if layout == "fortran" else features[:, ::2]
    y = (features[:, 0] > 0).astype(np.int64)
    assert not X.flags.c_contiguous

    def model():          # a one-output product of the sigmoid's output: BLAS's gemv, where layouts round apart
        rng = np.random.default_rng(0)
        net = minirai.Sequential(minirai.Sigmoid(), Linear(40, 1, rng=rng, dtype=dtype), minirai.Sigmoid())
        net.pack()
        return net

    def run():
        bp = model()
        fit(bp, minirai.BCE(), minirai.Rprop(bp.parameters(), lr=0.05), X, y, iters=5, progress=False)
        net = model()
        trainer = RAI(net, X, y, minirai.BCE())
        trainer.fit(minirai.Rprop(trainer.parameters(), lr=0.05), 5, progress=False)
        return [p for p, _ in bp.parameters()] + [p for p, _ in trainer.parameters()]
    on_both_paths(run)


# -- 7. target checks cannot be fooled ---------------------------------------------------------------------
def test_a_label_array_edited_in_place_is_checked_again():
    loss = minirai.SoftmaxCrossEntropy()
    pred = np.zeros((4, 3), np.float32)
    labels = np.array([0, 1, 2, 1])
    loss.forward(pred, labels)
    labels[2] = -1                                       # before: accepted, as the last class
    with pytest.raises(ValueError, match="labels must be integers in 0..2"):
        loss.forward(pred, labels)
    labels[2] = 2
    with pytest.raises(ValueError, match="labels must be integers in 0..1"):   # before: IndexError
        loss.forward(np.zeros((4, 2), np.float32), labels)
    bce = minirai.BCE()
    targets = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    bce.forward(np.full((4, 1), 0.5, np.float32), targets)
    targets[0] = 3.0
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        bce.forward(np.full((4, 1), 0.5, np.float32), targets)


# -- 8. the smaller ones -----------------------------------------------------------------------------------
def test_relu_passes_the_gradient_of_a_nan_input_on():
    relu = minirai.ReLU()
    relu.forward(np.array([[np.nan, 2.0, -1.0, 0.0]]))
    np.testing.assert_array_equal(relu.backward(np.ones((1, 4))), [[1.0, 1.0, 0.0, 0.0]])
    torch = pytest.importorskip("torch")
    x = torch.tensor([[float("nan"), 2.0, -1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    torch.relu(x).backward(torch.ones(1, 4, dtype=torch.float64))
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0, 0.0, 0.0]])   # PyTorch does the same


@pytest.mark.parametrize("loss", [minirai.MSE(), minirai.BCE(), minirai.SoftmaxCrossEntropy()],
                         ids=lambda loss: type(loss).__name__)
def test_a_loss_given_a_list_names_the_argument(loss):
    with pytest.raises(TypeError, match=r"forward: pred must be a NumPy or CuPy array, got list"):
        loss.forward([[0.5], [0.5]], np.array([0.0, 1.0]))


@pytest.mark.parametrize("slope, error", [("abc", TypeError), (float("nan"), ValueError), (None, TypeError)])
def test_leaky_relu_names_its_negative_slope(slope, error):
    with pytest.raises(error, match="LeakyReLU negative_slope"):
        minirai.LeakyReLU(negative_slope=slope)


def test_a_checkpoint_whose_history_columns_differ_in_length_is_refused(tmp_path):
    import json
    history = minirai.train.History()
    for step in range(3):
        history.record(step, loss=0.5, train_loss=0.4)
    path = tmp_path / "h.npz"
    minirai.save(history, path)
    with np.load(path) as npz:
        entries = {name: npz[name] for name in npz.files}
    meta = json.loads(bytes(entries["__meta__"]).decode())
    column = meta["columns"].index("loss")
    entries[f"column{column}"] = entries[f"column{column}"][:2]
    with open(path, "wb") as f:
        np.savez(f, **entries)
    with pytest.raises(ValueError, match="history column 'loss' has 2 values; 'step' has 3"):
        minirai.load(path)


# -- what a learner does next: replace an optimizer's state, hold its arrays, re-run a class cell --------
def test_an_optimizers_state_replaced_by_a_learner_is_what_both_paths_update():
    """A callback replaces state[0] (a fresh dict) on an unpacked model: the fast path updates the new
    state, as the textbook path does."""
    moons = data.moons(n_samples=40, n_test=5)

    def run():
        model = minirai.mlp([2, 6, 1], "tanh", "sigmoid", seed=0, packed=False)
        optimizer = minirai.Adam(model.parameters(), lr=1e-2)

        def reset(step, net):
            if step == 2:
                optimizer.state[0] = optimizer.init_state(optimizer.pairs[0][0])
        fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=5, callback=reset, progress=False)
        return [p for p, _ in model.parameters()] + [v for state in optimizer.state for v in state.values()]
    on_both_paths(run)


def test_an_optimizers_state_arrays_held_before_fit_are_the_ones_it_updates():
    moons = data.moons(n_samples=40, n_test=5)
    for textbook in (False, True):
        model = minirai.mlp([2, 6, 6, 1], "tanh", "sigmoid", seed=0)
        optimizer = minirai.Adam(model.parameters(), lr=1e-2)
        first_moment = optimizer.state[0]["m"]            # held, as a learner watching Adam would
        with minirai.reference(textbook):
            fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=3, progress=False)
        assert optimizer.state[0]["m"] is first_moment and first_moment.any()


def test_a_linear_subclass_saves_and_loads_its_own_setting(tmp_path):
    model = minirai.Sequential(ScaledLinear(2, 3, scale=5.0), minirai.Tanh())
    assert model.layers[0].config()["scale"] == 5.0
    minirai.save(model, tmp_path / "net.npz")
    assert minirai.load(tmp_path / "net.npz").layers[0].scale == 5.0


def test_a_layer_whose_setting_is_not_kept_still_prints_and_is_refused_when_saved(tmp_path):
    class Drop(Activation):
        def __init__(self, p=0.5):
            super().__init__()
            self.rate = p                            # kept under another name: config() cannot read it

    layer = Drop()
    assert repr(layer) == "Drop()"
    with pytest.raises(ValueError, match="same object"):        # the duplicate's error, not config()'s
        minirai.Sequential(Linear(2, 2), layer, Linear(2, 2), layer)
    with pytest.raises(TypeError, match="'p' of __init__ is not kept as self.p"):
        minirai.save(minirai.Sequential(Linear(2, 2), layer), tmp_path / "net.npz")


def test_geometric_schedules_at_the_ends_of_the_float_range():
    from minirai.rai import geometric
    with pytest.raises(ValueError, match="overflows a float at step 308"):
        geometric(10.0, 10.0)(308)                   # 10^309: inf, before an error
    assert geometric(1e-300, 2.0, maximum=1e300)(2000) == 1e300     # log(maximum / start) overflowed before


def test_a_loss_can_be_pickled():
    import pickle
    for loss in (minirai.MSE(), minirai.BCE(), minirai.SoftmaxCrossEntropy()):
        copy = pickle.loads(pickle.dumps(loss))
        assert type(copy) is type(loss)
        copy.forward(np.zeros((2, 2), np.float32), np.array([0, 1]) if isinstance(loss, minirai.SoftmaxCrossEntropy)
                     else np.zeros((2, 2), np.float32) + 0.5)


def test_a_class_defined_again_is_found_by_name_and_by_path():
    """A notebook cell run twice: mlp, the estimators and checkpoints take the newest definition."""
    from minirai.protocol import class_path, find_class

    def define():
        class Wobble(Activation):
            def forward(self, x):
                self.x, self.y = x, x
                return x

            def derivative(self):
                return np.ones_like(self.x)
        return Wobble

    old, new = define(), define()
    assert minirai.layers.activation("wobble") is new
    assert find_class(Layer, class_path(new)) is new and old is not new


def test_names_of_the_built_in_classes():
    assert "bce_with_logits" in minirai.losses.losses() and "leaky_relu" in minirai.layers.activations()
    assert {"sgd", "adam", "rprop"} <= set(minirai.optim.optimizers())
