"""RAI: cut placement, exactness with no cuts, gradients of the relaxed objective, tables,
schedules, re-initialisation, a real training run, the NaN stop, bad input and devices."""
from __future__ import annotations

import math

import numpy as np
import pytest

from minirai.fast.stacking import FastRAI, plan

import minirai
import minirai.train
from minirai import backend, data
from minirai.gradcheck import check_gradients
from minirai.layers import Linear, Sigmoid
from minirai.losses import BCE, MSE, Loss
from minirai.network import Sequential, mlp
from minirai.optim import SGD, Rprop
from minirai.rai import RAI, RAIHistory, constant, cut_positions, geometric
from minirai.train import TrainingDiverged, TrainingLoop

F64 = "float64"


def small_model(activation: str = "tanh", seed: int = 0) -> Sequential:
    """Layers: 0 Linear(2,3) 1 act 2 Linear(3,4) 3 act 4 Linear(4,1) 5 Sigmoid."""
    return mlp([2, 3, 4, 1], activation, "sigmoid", seed=seed, dtype=F64)


def small_data(n: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.arange(n) % 2            # both classes present, int labels as a user passes them
    return X, y


def perturb_tables(rai: RAI, scale: float = 0.3, seed: int = 1) -> None:
    """Move every table off the forward pass, so the hidden losses have non-zero gradients."""
    rng = np.random.default_rng(seed)
    for table in rai.tables:
        table += scale * rng.standard_normal(table.shape)


class LogCosh(Loss):
    """A non-MSE hidden loss with a target gradient: mean log cosh(p - t)."""

    def _forward(self, pred, target):
        self.diff = pred - target
        return np.log(np.cosh(self.diff)).mean()

    def _backward(self):
        grad = np.tanh(self.diff) / self.diff.size
        self.grad_target = -grad
        return grad


# --- 1. cut placement -------------------------------------------------------------------------

def test_linear_cuts_after_every_linear_but_not_at_the_end():
    """'linear' cuts after each Linear; a Linear that is the last layer gets no cut."""
    assert cut_positions(small_model(), "linear") == [1, 3, 5]
    no_output_activation = mlp([2, 3, 4, 1], "relu", None)      # Linear ReLU Linear ReLU Linear
    assert len(no_output_activation) == 5
    assert cut_positions(no_output_activation, "linear") == [1, 3]


def test_activation_cuts_after_every_activation_but_the_last_layer():
    """'activation' cuts after each activation except the output activation."""
    assert cut_positions(small_model(), "activation") == [2, 4]
    assert cut_positions(mlp([2, 3, 4, 1], "relu", None), "activation") == [2, 4]


def test_explicit_positions_are_sorted_and_none_or_empty_mean_no_cut():
    """An explicit list is kept (sorted); None and [] give no cut at all."""
    model = small_model()
    assert cut_positions(model, [4, 1]) == [1, 4]
    assert cut_positions(model, (2,)) == [2]
    assert cut_positions(model, [1, 2, 3, 4, 5]) == [1, 2, 3, 4, 5]
    assert cut_positions(model, None) == []
    assert cut_positions(model, []) == []


@pytest.mark.parametrize("cuts, message", [
    ([0], r"cut position 0 is outside 1\.\.5"),
    ([6], r"cut position 6 is outside 1\.\.5"),
    ([-1], r"cut position -1 is outside 1\.\.5"),
    ([2, 2], r"cut positions repeat: \[2, 2\]"),
    ("linears", r"cuts must be 'linear', 'activation', one of them with a slice such as 'linear\[3:\]', or a "
                r"list of positions, got 'linears'"),
    ("linear[1]", r"one of them with a slice such as 'linear\[3:\]'.*got 'linear\[1\]'"),
])
def test_bad_cut_positions_are_clear_value_errors(cuts, message):
    """Positions 0 or len(layers), repeats and unknown strings raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        cut_positions(small_model(), cuts)


@pytest.mark.parametrize("cuts", ["linear", "activation", [2], [1, 4], [], None])
def test_blocks_partition_the_layers(cuts):
    """The blocks' layers, concatenated, are model.layers: the same objects, in order."""
    model = small_model()
    X, y = small_data()
    rai = RAI(model, X, y, BCE(), cuts=cuts)
    assert len(rai.blocks) == len(rai.cuts) + 1 == len(rai.tables) + 1
    joined = [layer for block in rai.blocks for layer in block.layers]
    assert len(joined) == len(model.layers)
    assert all(a is b for a, b in zip(joined, model.layers))
    assert all(len(block.layers) > 0 for block in rai.blocks)


# --- 2. no cut is chained backprop ------------------------------------------------------------

@pytest.mark.parametrize("cuts", [[], None])
def test_no_cut_gives_exactly_the_chained_backprop_gradients(cuts):
    """With no cut the relaxed loss and every weight gradient equal chained BP bit for bit."""
    X, y = small_data(8)
    model = small_model()
    loss = BCE()
    chained_loss = float(loss.forward(model.forward(X), y))
    model.backward(loss.backward())
    bp = {name: g.copy() for name, _, g in model.named_parameters()}
    for _, _, g in model.named_parameters():
        g.fill(0.0)

    rai = RAI(model, X, y, BCE(), cuts=cuts)
    relaxed = float(rai.forward())
    rai.backward()
    assert rai.tables == [] and rai.grad_tables == []
    assert relaxed == chained_loss
    for name, _, g in model.named_parameters():
        assert np.array_equal(g, bp[name]), name
        assert np.any(g != 0), name


# --- 3. gradient check of the relaxed objective -------------------------------------------------

def relaxed_gradcheck(rai: RAI, fast: FastRAI | None = None):
    """Central differences of the relaxed loss w.r.t. every weight and every table entry.

    The analytic gradients come from the textbook ``rai.backward()``, or from ``fast`` (the fast path)."""
    (fast or rai).forward()
    (fast or rai).backward()
    named = rai.named_parameters()
    arrays = {name: p for name, p, _ in named}
    analytic = {name: g.copy() for name, _, g in named}

    def f() -> float:
        return float(rai.forward())
    return check_gradients(f, arrays, analytic, tol=1e-6)


@pytest.mark.parametrize("cuts, lam, hidden, activation", [
    ("linear", 1.0, None, "tanh"),
    ("activation", 1.0, None, "tanh"),
    ([2], 1.0, None, "tanh"),
    ([1, 4], 1.0, None, "tanh"),
    ([1, 4], 0.3, None, "tanh"),
    ("linear", 0.3, LogCosh(), "tanh"),
    ("activation", 2.5, None, "sigmoid"),
], ids=["linear", "activation", "cut2", "cuts1-4", "cuts1-4-lam0.3", "linear-logcosh-lam0.3",
        "activation-sigmoid-lam2.5"])
def test_relaxed_objective_gradcheck(cuts, lam, hidden, activation):
    """Every weight and table gradient of the relaxed objective matches float64 finite differences."""
    X, y = small_data(5)
    rai = RAI(small_model(activation), X, y, BCE(), cuts=cuts, lam=lam, hidden_loss=hidden)
    perturb_tables(rai)
    result = relaxed_gradcheck(rai)
    n_weights = len(rai.model.named_parameters())
    assert [r.name for r in result.rows][n_weights:] == [f"table{k + 1}@{p}" for k, p in enumerate(rai.cuts)]
    assert result.max_rel_error < 1e-6
    # the hidden losses really contribute (tables were moved off the forward pass)
    assert all(float(v) > 1e-3 for v in rai.hidden_values)
    assert all(np.abs(g).max() > 1e-4 for g in rai.grad_tables)


def repeated_model(activation: str = "tanh", seed: int = 0) -> Sequential:
    """Linear(2,3) [act Linear(3,3)] x3 act Linear(3,1) Sigmoid: three identical blocks to stack."""
    return mlp([2, 3, 3, 3, 3, 1], activation, "sigmoid", seed=seed, dtype=F64)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("cuts, lam", [("linear", 1.0), ("activation", 0.3)])
def test_relaxed_objective_gradcheck_with_identical_blocks(cuts, lam, fast):
    """Identical blocks run stacked (fast path) or per block (textbook): every gradient matches finite
    differences."""
    X, y = small_data(5)
    rai = RAI(repeated_model(), X, y, BCE(), cuts=cuts, lam=lam)
    fast_path = FastRAI(rai) if fast else None
    if fast:
        assert [(g.first, g.count) for g in fast_path.groups] == [(1, 3)]
    perturb_tables(rai)
    assert relaxed_gradcheck(rai, fast_path).max_rel_error < 1e-6
    assert all(np.abs(g).max() > 1e-4 for g in rai.grad_tables)
    assert all(a is not None and b is not None
               for a, b in zip(rai.grad_tables_as_input, rai.grad_tables_as_target))


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint8)


def run_both_paths(make, steps, lr):
    """``make()`` trained on the fast path (stacked) and on the textbook path: [(trainer, losses)] x 2,
    each trainer left with the gradients of its last step."""
    runs = []
    for textbook in (False, True):
        rai = make()
        opt = Rprop(rai.parameters(), lr=lr)
        with TrainingLoop(fast=not textbook) as loop:
            losses = [rai.step(opt, loop=loop) for _ in range(steps)]
            assert (type(loop.relaxed(rai)) is FastRAI) is not textbook
        runs.append((rai, losses))
    assert plan(runs[0][0])                            # the fast path had blocks to stack
    return runs


def assert_same_trainers(a: RAI, b: RAI) -> None:
    """Parameters, gradients and both parts of every table gradient, byte for byte."""
    for (name, pa, ga), (_, pb, gb) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(bits(pa), bits(pb)), name
        assert np.array_equal(bits(ga), bits(gb)), name
    for k in range(len(a.tables)):
        assert np.array_equal(bits(a.grad_tables_as_input[k]), bits(b.grad_tables_as_input[k])), k
        assert np.array_equal(bits(a.grad_tables_as_target[k]), bits(b.grad_tables_as_target[k])), k
    assert np.array_equal(a.identity_gaps(), b.identity_gaps())


def test_stacked_and_per_block_paths_agree():
    """Stacked (fast) and per-block (textbook) RAI give the same losses, gradient parts and updates over
    5 steps, bit for bit."""
    X, y = small_data(9)
    def make():
        rai = RAI(repeated_model(), X, y, BCE(), cuts="linear", lam=0.7)
        perturb_tables(rai)
        return rai
    (a, la), (b, lb) = run_both_paths(make, steps=5, lr=0.05)
    assert la == lb
    assert_same_trainers(a, b)


def test_gradcheck_detects_a_wrong_table_gradient():
    """The check above can fail: a table gradient scaled by 1.01 is rejected."""
    from minirai.gradcheck import GradcheckError
    X, y = small_data(5)
    rai = RAI(small_model(), X, y, BCE(), cuts=[2])
    perturb_tables(rai)
    rai.forward()
    rai.backward()
    named = rai.named_parameters()
    analytic = {name: g.copy() for name, _, g in named}
    analytic["table1@2"] *= 1.01
    with pytest.raises(GradcheckError):
        check_gradients(lambda: float(rai.forward()), {n: p for n, p, _ in named}, analytic,
                        tol=1e-6, verbose=False)


# --- 4. a case derived by hand -----------------------------------------------------------------

def test_table_gradient_by_hand():
    """Linear(1,1) | cut | Linear(1,1), MSE output and hidden losses: dL/dZ and dL/dθ by hand.

    L = mean((w2 Z + b2 - y)^2) + lam mean((a x - Z)^2) over N examples, so
    dL/dZ as input  = w2 · 2 (o2 - y) / N,  dL/dZ as target = -lam · 2 (o1 - Z) / N,
    dL/dw2 = Σ Z · 2 (o2 - y) / N,  dL/db2 = Σ 2 (o2 - y) / N,
    dL/da  = lam Σ x · 2 (o1 - Z) / N,  dL/db1 = lam Σ 2 (o1 - Z) / N   (b1 = 0).
    """
    a, w2, b2, lam = 0.7, -1.5, 0.2, 0.3
    x = np.array([1.0, -2.0, 0.5])
    y = np.array([0.3, -1.0, 2.0])
    Z = np.array([0.4, -1.0, 1.1])
    N = 3
    first, second = Linear(1, 1, dtype=F64), Linear(1, 1, dtype=F64)
    first.params["W"][...] = a
    first.params["b"][...] = 0.0
    second.params["W"][...] = w2
    second.params["b"][...] = b2
    rai = RAI(Sequential(first, second), x.reshape(-1, 1), y, MSE(), cuts=[1], lam=lam)
    np.testing.assert_allclose(rai.tables[0][:, 0], a * x, rtol=0, atol=1e-15)   # from the forward pass
    rai.tables[0][:, 0] = Z

    o1, o2 = a * x, w2 * Z + b2
    relaxed = float(rai.forward())
    rai.backward()
    assert relaxed == pytest.approx(np.mean((o2 - y) ** 2) + lam * np.mean((o1 - Z) ** 2), rel=1e-14)

    as_input = w2 * 2 * (o2 - y) / N
    as_target = -lam * 2 * (o1 - Z) / N
    np.testing.assert_allclose(rai.grad_tables_as_input[0][:, 0], as_input, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(rai.grad_tables_as_target[0][:, 0], as_target, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(rai.grad_tables[0][:, 0], as_input + as_target, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(second.grads["W"][0, 0], np.sum(Z * 2 * (o2 - y) / N), rtol=1e-13)
    np.testing.assert_allclose(second.grads["b"][0], np.sum(2 * (o2 - y) / N), rtol=1e-13)
    np.testing.assert_allclose(first.grads["W"][0, 0], lam * np.sum(x * 2 * (o1 - Z) / N), rtol=1e-13)
    np.testing.assert_allclose(first.grads["b"][0], lam * np.sum(2 * (o1 - Z) / N), rtol=1e-13)


def test_sigmoid_block_gradient_by_hand():
    """Linear(1,1) Sigmoid | cut | Linear(1,1): the target part sees lam, the input part W2."""
    a, w2, lam = 1.3, 0.8, 2.0
    x = np.array([[0.5], [-1.0]])
    y = np.array([1.0, 0.0])
    first, second = Linear(1, 1, dtype=F64), Linear(1, 1, dtype=F64)
    first.params["W"][...] = a
    first.params["b"][...] = 0.0
    second.params["W"][...] = w2
    second.params["b"][...] = 0.0
    rai = RAI(Sequential(first, Sigmoid(), second), x, y, MSE(), cuts=[2], lam=lam)
    Z = np.array([0.9, 0.1])
    rai.tables[0][:, 0] = Z
    rai.forward()
    rai.backward()
    o1 = 1 / (1 + np.exp(-a * x[:, 0]))
    o2 = w2 * Z
    expected = w2 * 2 * (o2 - y) / 2 - lam * 2 * (o1 - Z) / 2
    np.testing.assert_allclose(rai.grad_tables[0][:, 0], expected, rtol=1e-13)
    # dL/da = lam · Σ 2 (o1 - Z)/N · σ'(a x) · x
    np.testing.assert_allclose(first.grads["W"][0, 0], lam * np.sum((o1 - Z) * o1 * (1 - o1) * x[:, 0]),
                               rtol=1e-13)


# --- 5. tables start from the forward pass; prediction ignores them ----------------------------

@pytest.mark.parametrize("cuts", ["linear", "activation", [1, 4]])
def test_tables_start_as_the_forward_activations_with_zero_gap(cuts):
    """Each table equals model[:p](X) at its cut p, and every identity gap is exactly 0 at step 0."""
    X, y = small_data(7)
    model = small_model()
    rai = RAI(model, X, y, BCE(), cuts=cuts)
    for p, table in zip(rai.cuts, rai.tables):
        assert np.array_equal(table, model[:p].forward(X)), p
    rai.forward()
    gaps = rai.identity_gaps()
    assert gaps.shape == (len(rai.cuts),)
    assert np.array_equal(gaps, np.zeros(len(rai.cuts)))
    metrics = rai.metrics()
    assert metrics["relaxed_loss"] == pytest.approx(metrics["chained_loss"], rel=1e-12)
    assert np.array_equal(metrics["hidden_loss"], np.zeros(len(rai.cuts)))


def test_tables_are_copies_not_views_of_layer_caches():
    """Tables do not change when the network runs forward on other inputs."""
    X, y = small_data(7)
    model = small_model()
    rai = RAI(model, X, y, BCE(), cuts="linear")
    before = [t.copy() for t in rai.tables]
    model.forward(X + 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(rai.tables, before))


def test_prediction_is_the_chained_forward_and_ignores_the_tables():
    """After training, model.forward(unseen X) equals the plain chain; moving the tables changes nothing."""
    X, y = small_data(20)
    X_new = np.random.default_rng(5).standard_normal((9, 2))
    model = small_model()
    rai = RAI(model, X, y, BCE(), cuts="linear")
    opt = Rprop(rai.parameters(), lr=0.05)
    for _ in range(10):
        rai.step(opt)
    chained = X_new
    for layer in model.layers:
        chained = layer.forward(chained)
    pred = model.forward(X_new)
    assert np.array_equal(pred, chained)
    for table in rai.tables:
        table += 10.0
    assert np.array_equal(model.forward(X_new), pred)
    # the relaxed output differs from the chain's on the training set (tables drifted)
    rai.forward()
    assert not np.allclose(rai.outputs[-1], model.forward(X))


# --- 6. penalty schedules -------------------------------------------------------------------------

def test_constant_and_geometric_values():
    """constant is constant; geometric multiplies by factor every `every` steps, capped at maximum."""
    assert [constant(0.3)(s) for s in (0, 1, 1000)] == [0.3, 0.3, 0.3]
    g = geometric(0.5, 2.0, every=3, maximum=10.0)
    assert [g(s) for s in (0, 2, 3, 5, 6, 9, 12, 15, 100)] == [0.5, 0.5, 1.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert geometric(0.5, 2.0)(10) == 512.0
    assert geometric(1.0, 0.5, every=2)(4) == 0.25


@pytest.mark.parametrize("args, error, message", [
    ((0.0, 2.0), ValueError, "start must be > 0"), ((-1.0, 2.0), ValueError, "start must be > 0"),
    ((1.0, 0.0), ValueError, "factor must be > 0"), ((1.0, 2.0, 0), ValueError, "every must be a positive"),
    ((1.0, 2.0, 1, 0.5), ValueError, "maximum must be >= 1"), ((1.0, 2.0, 1, -1.0), ValueError, "maximum"),
    ((float("nan"), 2.0), ValueError, "start must be finite"), ((1.0, 2.0, 1, float("nan")), ValueError, "maximum"),
    (("1", 2.0), TypeError, "start must be a number")])
def test_geometric_rejects_bad_arguments(args, error, message):
    """start <= 0, factor <= 0, every < 1, maximum < start, NaN or a string: an error naming the argument."""
    with pytest.raises(error, match=f"geometric: {message}"):
        geometric(*args)


@pytest.mark.parametrize("factor, saturates_at", [(2.0, 14), (1.1, 97)])
def test_geometric_saturates_at_its_maximum_for_any_step(factor, saturates_at):
    """Once capped, λ stays at the maximum for every later step, however large (no OverflowError, as
    factor ** step gave at step 1024 for factor 2 and at 7448 for 1.1); the values below it are unchanged."""
    g = geometric(1e-3, factor, maximum=10.0)
    assert g(saturates_at - 1) < 10.0 == g(saturates_at)
    for step in (saturates_at, 1023, 1024, 7448, 10 ** 6, 10 ** 18, 2 ** 80):
        assert g(step) == 10.0
    assert g(5) == 1e-3 * factor ** 5


def test_geometric_without_a_maximum_says_when_it_overflows():
    with pytest.raises(ValueError, match="overflows a float at step 1100; give it a maximum"):
        geometric(1e-3, 2.0)(1100)


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf"), "big", None])
def test_bad_lam_is_a_value_error(lam):
    """A negative, non-finite or non-numeric lam is refused at construction."""
    X, y = small_data()
    with pytest.raises(ValueError, match="lam must be a non-negative number"):
        RAI(small_model(), X, y, BCE(), lam=lam)


def test_callable_lam_is_evaluated_at_every_step():
    """history['lam'] follows the schedule step by step, and relaxed = output + lam · Σ hidden."""
    X, y = small_data(10)
    rai = RAI(small_model(), X, y, BCE(), cuts="linear", lam=lambda step: 0.1 * (step + 1))
    history = rai.fit(Rprop(rai.parameters(), lr=0.05), 5, record_every=1, progress=False)
    assert list(history["step"]) == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(history["lam"], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], rtol=1e-12)
    recomposed = history["output_loss"] + history["lam"] * history["hidden_loss"].sum(axis=1)
    np.testing.assert_allclose(history["relaxed_loss"], recomposed, rtol=1e-10)
    assert np.all(history["hidden_loss"][1:].sum(axis=1) > 0)


def mean_gap_after(lam, steps: int = 200) -> float:
    ds = data.moons(n_samples=100)
    rai = RAI(mlp([2, 8, 8, 1], "sigmoid", "sigmoid", seed=0), ds.X_train, ds.y_train, BCE(), lam=lam)
    history = rai.fit(Rprop(rai.parameters(), lr=0.1), steps, record_every=steps, progress=False)
    return float(history["identity_gap"][-1].mean())


def test_growing_lam_shrinks_the_identity_gap():
    """200 Rprop steps: geometric lam 0.01 -> 100 leaves a smaller mean gap than constant 0.01.

    Measured (seed 0): 0.0036 against 0.0073 (ratio 0.50; 0.34-0.48 over seeds 1-4).
    """
    small = mean_gap_after(0.01)
    growing = mean_gap_after(geometric(0.01, 1.05, every=1, maximum=100.0))
    assert growing < 0.7 * small


# --- 7. re-initialisation ---------------------------------------------------------------------------

class Spy:
    """Wraps an optimizer: before each update, keeps the tables and a fresh chained forward."""

    def __init__(self, rai: RAI, inner) -> None:
        self.rai, self.inner, self.seen = rai, inner, []

    def step(self) -> None:
        rai = self.rai
        self.seen.append((rai.steps, [t.copy() for t in rai.tables], rai.chained_activations(rai.X)))
        self.inner.step()


def distances(spy: Spy) -> dict[int, float]:
    return {step: max(float(np.abs(t - f).max()) for t, f in zip(tables, fresh))
            for step, tables, fresh in spy.seen}


def run_with_spy(reinit_period):
    X, y = small_data(12)
    rai = RAI(small_model(), X, y, BCE(), cuts="linear", reinit_period=reinit_period)
    spy = Spy(rai, Rprop(rai.parameters(), lr=0.05))
    for _ in range(12):
        rai.step(spy)
    return distances(spy)


def test_reinit_resets_tables_to_a_fresh_forward_pass():
    """reinit_period=5: at steps 5 and 10 the tables equal the chained forward; in between they drift."""
    dist = run_with_spy(5)
    assert dist[0] == dist[5] == dist[10] == 0.0
    assert all(dist[s] > 1e-3 for s in (1, 2, 3, 4, 6, 7, 8, 9, 11))


def test_without_reinit_tables_drift_from_the_forward_pass():
    """With no reinit the tables move away from the chained forward and are never reset."""
    dist = run_with_spy(None)
    assert dist[0] == 0.0
    assert all(dist[s] > 1e-3 for s in range(1, 12))
    assert dist[11] > dist[1]


def test_reinit_also_works_through_fit():
    """fit honours reinit_period: a callback right after steps 3 and 6 sees the gap of a fresh start."""
    X, y = small_data(12)
    rai = RAI(small_model(), X, y, BCE(), cuts="linear", reinit_period=3)
    reinit_calls = []
    original = rai.reinitialize_tables

    def counting():
        reinit_calls.append(rai.steps)
        original()
    rai.reinitialize_tables = counting
    rai.fit(Rprop(rai.parameters(), lr=0.05), 10, record_every=100, progress=False)
    assert reinit_calls == [3, 6, 9]


# --- 8. a small real run -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def moons_run():
    """12-layer sigmoid chain (6 Linear of width 16 + 6 Sigmoid), RAI + Rprop(0.1), 300 steps."""
    backend.set_device("cpu")
    ds = data.moons(n_samples=100)
    model = mlp([2] + [16] * 5 + [1], "sigmoid", "sigmoid", seed=0)
    rai = RAI(model, ds.X_train, ds.y_train, BCE())
    history = rai.fit(Rprop(rai.parameters(), lr=0.1), 300, X_val=ds.X_test, y_val=ds.y_test,
                      record_every=40, progress=False)
    return model, rai, history


def test_rai_trains_a_12_layer_sigmoid_net(moons_run):
    """Chained accuracy rises from 0.5 to >= 0.8, the relaxed loss falls below a tenth of its start.

    Measured (seed 0): chained acc 0.5 -> 0.86, val acc 0.876, relaxed loss 0.695 -> 0.0144,
    chained loss 0.695 -> 0.314 (seeds 0-5: final chained acc 0.86-0.89).
    """
    model, rai, history = moons_run
    assert len(model) == 12 and len(rai.cuts) == 6
    assert history["chained_acc"][0] == 0.5
    assert history.last("chained_acc") >= 0.8
    assert history.last("val_acc") >= 0.8
    assert history.last("relaxed_loss") < 0.1 * history["relaxed_loss"][0]
    assert history.last("chained_loss") < 0.8 * history["chained_loss"][0]


def test_history_keys_shapes_and_record_steps(moons_run):
    """History holds every documented key; per-cut arrays are (records x cuts); record_every is kept."""
    _, rai, history = moons_run
    assert isinstance(history, RAIHistory)
    for key in ("step", "relaxed_loss", "output_loss", "chained_loss", "chained_acc", "val_loss", "val_acc",
                "lam", "hidden_loss", "identity_gap"):
        assert key in history.keys(), key
    assert list(history["step"]) == [0, 40, 80, 120, 160, 200, 240, 280, 300]
    n = len(history)
    assert n == 9
    assert history["hidden_loss"].shape == (n, 6)
    assert history["identity_gap"].shape == (n, 6)
    for key in ("relaxed_loss", "output_loss", "chained_loss", "chained_acc", "val_loss", "val_acc", "lam"):
        assert history[key].shape == (n,) and np.all(np.isfinite(history[key])), key
    assert np.array_equal(history["identity_gap"][0], np.zeros(6))
    assert np.all(history["identity_gap"][-1] > 0)
    d = history.to_dict()
    assert np.asarray(d["identity_gap"]).shape == (n, 6)


def test_record_every_with_an_exact_multiple():
    """iters a multiple of record_every: the last step is recorded once."""
    X, y = small_data(10)
    rai = RAI(small_model(), X, y, BCE())
    history = rai.fit(Rprop(rai.parameters()), 6, record_every=3, progress=False)
    assert list(history["step"]) == [0, 3, 6]
    history = rai.fit(Rprop(rai.parameters()), 0, progress=False)
    assert len(history) == 1


# --- 9. the NaN stop ---------------------------------------------------------------------------------

def corrupting_fit(corrupt, at: int = 7, cuts="linear"):
    X, y = small_data(10)
    rai = RAI(small_model(), X, y, BCE(), cuts=cuts)

    def callback(step, trainer):
        if step == at:
            corrupt(trainer)
    with pytest.raises(TrainingDiverged) as info:
        rai.fit(Rprop(rai.parameters(), lr=0.05), 20, record_every=5, progress=False, callback=callback)
    return rai, info.value


def test_nan_table_stops_with_the_cut_and_step_named():
    """A NaN written into table 2 after step 7 stops step 8, naming the hidden loss at cut 2."""
    def corrupt(rai):
        rai.tables[1][0, 0] = np.nan
    rai, error = corrupting_fit(corrupt)
    message = str(error)
    assert "step 8" in message
    assert "hidden loss at cut 2" in message and "after layer 2" in message
    assert list(error.history["step"]) == [0, 5]
    assert np.all(np.isfinite(error.history["relaxed_loss"]))
    assert rai.steps == 7


def test_inf_weight_stops_at_the_first_cut():
    """An inf weight in block 0 makes the hidden loss at cut 1 non-finite; that is what is named."""
    def corrupt(rai):
        rai.model.layers[0].params["W"][0, 0] = np.inf
    _, error = corrupting_fit(corrupt, at=3)
    assert "step 4" in str(error) and "hidden loss at cut 1" in str(error)
    assert list(error.history["step"]) == [0]


def test_nan_weight_in_the_last_block_names_the_output_loss():
    """Cut at 2 only: a NaN in the last Linear leaves the hidden loss finite; the output loss is named."""
    def corrupt(rai):
        rai.model.layers[4].params["W"][0, 0] = np.nan
    _, error = corrupting_fit(corrupt, at=11, cuts=[2])
    assert "step 12" in str(error) and "output loss" in str(error)
    assert list(error.history["step"]) == [0, 5, 10]


# --- 10. bad input -----------------------------------------------------------------------------------

def no_forward_ran(model: Sequential) -> bool:
    return all(layer.x is None for layer in model.layers)


@pytest.mark.parametrize("make, error, message", [
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), y), ValueError, "non-finite"),
    (lambda X, y: (np.hstack([X, X[:, :1]]), y), ValueError, "3 columns"),
    (lambda X, y: (X, y[:-1]), ValueError, "rows but X has"),
    (lambda X, y: (X, np.where(y == 1, 2, 0)), ValueError, r"targets must lie in \[0, 1\]"),
    (lambda X, y: (X, y - 1), ValueError, r"targets must lie in \[0, 1\]"),
    (lambda X, y: (X.astype(np.float32), y), TypeError, "dtype float32"),
    (lambda X, y: (X.tolist(), y), TypeError, "must be a NumPy or CuPy array"),
], ids=["nan-X", "wide-X", "short-y", "label-2", "label-minus-1", "float32-X", "list-X"])
def test_bad_data_is_refused_before_any_table(make, error, message):
    """Bad X or y raises a clear error in the constructor, before any forward pass builds a table."""
    X, y = make(*small_data(10))
    model = small_model()
    with pytest.raises(error, match=message):
        RAI(model, X, y, BCE())
    assert no_forward_ran(model)


def test_bad_model_loss_and_options_are_refused():
    """A non-Sequential model or loss is a TypeError; reinit_period 0 or -1 a ValueError."""
    X, y = small_data()
    model = small_model()
    with pytest.raises(TypeError, match="Sequential"):
        RAI(model.layers, X, y, BCE())
    with pytest.raises(TypeError, match="Sequential"):
        RAI(model.layers[0], X, y, BCE())
    with pytest.raises(TypeError, match="loss must be a minirai Loss"):
        RAI(model, X, y, "bce")
    with pytest.raises(TypeError, match="hidden_loss must be a minirai Loss"):
        RAI(model, X, y, BCE(), hidden_loss="mse")
    for period in (0, -1, 2.5):
        with pytest.raises(ValueError, match="reinit_period must be a positive integer"):
            RAI(model, X, y, BCE(), reinit_period=period)
    rai = RAI(model, X, y, BCE())
    with pytest.raises(ValueError, match="iters must be a non-negative integer"):
        rai.fit(Rprop(rai.parameters()), -1, progress=False)
    with pytest.raises(ValueError, match="record_every must be a positive integer"):
        rai.fit(Rprop(rai.parameters()), 1, record_every=0, progress=False)


def test_one_hidden_loss_copy_per_cut():
    """Each cut gets its own hidden-loss object (copies of the template, not the template itself)."""
    X, y = small_data()
    template = MSE()
    rai = RAI(small_model(), X, y, BCE(), cuts="linear", hidden_loss=template)
    assert len(rai.hidden_losses) == 3
    assert len({id(h) for h in rai.hidden_losses} | {id(template)}) == 4


# --- 11. devices ---------------------------------------------------------------------------------------

def relaxed_losses(textbook: bool, steps: int = 5) -> tuple[list[float], RAI]:
    """A few RAI steps on the active backend (model and data built there), on one path."""
    ds = data.moons(n_samples=30, n_test=10, dtype=F64)
    rai = RAI(mlp([2, 6, 6, 6, 1], "sigmoid", "sigmoid", seed=1, dtype=F64), ds.X_train, ds.y_train, BCE(),
              cuts="linear", lam=0.5)
    opt = SGD(rai.parameters(), lr=0.5, momentum=0.9)
    with TrainingLoop(fast=not textbook) as loop:
        return [rai.step(opt, loop=loop) for _ in range(steps)], rai


@pytest.mark.parametrize("textbook", [False, True])
def test_rai_steps_on_every_backend(xp, textbook):
    """The same steps on numpy, the stand-in device (and CuPy) give the same relaxed losses (1e-6)."""
    on_device, rai = relaxed_losses(textbook)
    assert plan(rai) == [(1, 2)]                       # blocks the fast path stacks
    assert backend.array_module(*rai.tables) is xp
    assert all(isinstance(t, xp.ndarray) for t in rai.tables + rai.grad_tables)
    metrics = rai.metrics()
    assert math.isfinite(metrics["chained_loss"]) and metrics["identity_gap"].shape == (4,)
    assert np.all(metrics["identity_gap"] > 0)
    previous = backend.use_module(np)
    try:
        on_host, _ = relaxed_losses(textbook)
    finally:
        backend.use_module(previous)
    np.testing.assert_allclose(on_device, on_host, rtol=1e-6, atol=1e-12)
    assert on_host[-1] < on_host[0]


# --- shared arrays: packing and trainers never orphan a model's weights --------------------------

def test_optimizer_made_before_rai_still_trains_the_model():
    """An optimizer built on model.parameters() before an RAI trainer still moves the model's weights."""
    d = minirai.data.moons(n_samples=30, n_test=10)
    model = minirai.mlp([2, 8, 8, 1], "tanh", "sigmoid", seed=0)
    optimizer = minirai.Rprop(model.parameters(), lr=0.1)
    RAI(model, d.X_train, d.y_train, minirai.BCE())
    history = minirai.train.fit(model, minirai.BCE(), optimizer, d.X_train, d.y_train, iters=20, progress=False)
    assert history["train_loss"][-1] < 0.9 * history["train_loss"][0]


def test_two_trainers_share_the_models_weights():
    """Steps of a second trainer on the same model are seen by the first (same arrays)."""
    d = minirai.data.moons(n_samples=30, n_test=10)
    model = minirai.mlp([2, 8, 8, 1], "tanh", "sigmoid", seed=0)
    first = RAI(model, d.X_train, d.y_train, minirai.BCE())
    second = RAI(model, d.X_train, d.y_train, minirai.BCE())
    before = [p.copy() for _, p, _ in first.model.named_parameters()]
    optimizer = minirai.Rprop(second.parameters(), lr=0.1)
    for _ in range(3):          # step 1 moves only tables: weight gradients start at exactly 0
        second.step(optimizer)
    after = [p for _, p, _ in first.model.named_parameters()]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_only_a_packed_model_is_stacked():
    """The fast path stacks blocks whose weights lie side by side: a packed model's, not an unpacked one's."""
    d = minirai.data.moons(n_samples=20, n_test=5)
    model = minirai.mlp([2] + [8] * 5 + [1], "sigmoid", "sigmoid", packed=False)
    assert FastRAI(RAI(model, d.X_train, d.y_train, minirai.BCE())).groups == []
    packed = minirai.mlp([2] + [8] * 5 + [1], "sigmoid", "sigmoid")
    groups = FastRAI(RAI(packed, d.X_train, d.y_train, minirai.BCE())).groups
    assert [(g.first, g.count) for g in groups] == [(1, 4)]


def test_hidden_loss_without_target_gradient_is_refused():
    """BCE sets no grad_target, so it cannot be a hidden loss: a TypeError at construction."""
    d = minirai.data.moons(n_samples=20, n_test=5)
    model = minirai.mlp([2, 4, 1], "tanh", "sigmoid")
    with pytest.raises(TypeError, match="grad_target"):
        RAI(model, d.X_train, d.y_train, minirai.BCE(), hidden_loss=minirai.BCE())


@pytest.mark.parametrize("bad", [[2.9], [True]])
def test_non_integer_cut_positions_are_refused(bad):
    d = minirai.data.moons(n_samples=20, n_test=5)
    model = minirai.mlp([2, 4, 4, 1], "tanh", "sigmoid")
    with pytest.raises(ValueError, match="integers"):
        RAI(model, d.X_train, d.y_train, minirai.BCE(), cuts=bad)


def test_numpy_numbers_are_accepted_for_lam_and_reinit_period_and_bad_schedules_stop():
    d = minirai.data.moons(n_samples=20, n_test=5)
    model = minirai.mlp([2, 4, 4, 1], "tanh", "sigmoid")
    trainer = RAI(model, d.X_train, d.y_train, minirai.BCE(), lam=np.float32(0.5), reinit_period=np.int64(3))
    assert trainer.lam(7) == 0.5 and trainer.reinit_period == 3
    with pytest.raises(ValueError):
        RAI(model, d.X_train, d.y_train, minirai.BCE(), lam=True)
    negative = RAI(model, d.X_train, d.y_train, minirai.BCE(), lam=lambda step: -1.0)
    with pytest.raises(ValueError, match="schedule"):
        negative.forward()


def test_stacked_and_per_block_paths_agree_in_float32():
    """float32, a 12-block sigmoid chain, 3 steps: losses, gradients and parameters agree bit for bit."""
    d = minirai.data.moons(n_samples=41, n_test=5)

    def make():
        model = minirai.mlp([2] + [32] * 12 + [1], "sigmoid", "sigmoid", seed=4)
        return RAI(model, d.X_train, d.y_train, minirai.BCE())
    (a, la), (b, lb) = run_both_paths(make, steps=3, lr=0.01)
    assert la == lb and a.tables[0].dtype == np.float32
    assert_same_trainers(a, b)


def test_cut_slices_select_from_the_linear_or_activation_cuts():
    model = mlp([2, 4, 4, 4, 1], "sigmoid", "sigmoid", seed=0)
    every = cut_positions(model, "linear")
    assert every == [1, 3, 5, 7]
    assert cut_positions(model, "linear[1:]") == every[1:]
    assert cut_positions(model, "linear[:-1]") == every[:-1]
    assert cut_positions(model, "linear[1:-1]") == [3, 5]
    assert cut_positions(model, "activation[2:]") == cut_positions(model, "activation")[2:]
    assert cut_positions(model, "linear[::2]") == [1, 5]
    for bad in ("linear[-:]", "linear[:-]", "linear[1:-]"):
        with pytest.raises(ValueError, match="one of them with a slice"):
            cut_positions(model, bad)
    with pytest.raises(ValueError, match="got 'linear\\[::0\\]'"):
        cut_positions(model, "linear[::0]")
