"""Layers: analytic gradients agree with finite differences, initialisation, reprs, numerics."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import minirai
from minirai import backend
from minirai.gradcheck import GradcheckError, gradcheck
from minirai.layers import Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, sigmoid

TOL = 1e-6


def device_normal(xp, shape, seed=0):
    """Standard normal float64 values on the active backend."""
    return xp.asarray(np.random.default_rng(seed).standard_normal(shape))


def away_from_kink(xp, shape, seed=0):
    """Values with |x| in [0.1, 2]: finite differences (eps 1e-5) never straddle a ReLU kink."""
    rng = np.random.default_rng(seed)
    return xp.asarray(rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


# --- gradcheck of every layer ------------------------------------------------------------------

LINEAR_SHAPES = [(1, 1, 1), (1, 4, 3), (3, 1, 5), (3, 5, 1), (16, 4, 3)]   # (N, D_in, D_out)


@pytest.mark.parametrize("init", Linear.INITS)
@pytest.mark.parametrize("n,d_in,d_out", LINEAR_SHAPES)
def test_linear_passes_gradcheck(xp, init, n, d_in, d_out):
    """dL/dx, dL/dW and dL/db of Linear match central differences (float64, tol 1e-6)."""
    layer = Linear(d_in, d_out, init=init, rng=1, dtype=np.float64)
    if init != "uniform":   # xavier/he start with b = 0; give b values so a wrong db cannot hide
        layer.params["b"][...] = device_normal(xp, (d_out,), seed=2)
    result = gradcheck(layer, device_normal(xp, (n, d_in)), tol=TOL)
    assert [r.name for r in result.rows] == ["x", "0.W", "0.b"]
    assert result.max_rel_error <= TOL


ACTIVATION_SHAPES = [(1, 1), (1, 5), (3, 5), (16, 4), (16, 1)]


@pytest.mark.parametrize("make,inputs", [
    (Sigmoid, device_normal), (Tanh, device_normal), (Identity, device_normal),
    (ReLU, away_from_kink), (lambda: LeakyReLU(0.1), away_from_kink),
], ids=["sigmoid", "tanh", "identity", "relu", "leaky_relu"])
@pytest.mark.parametrize("shape", ACTIVATION_SHAPES)
def test_activation_passes_gradcheck(xp, make, inputs, shape):
    """Every activation's dL/dx matches central differences (ReLUs away from the kink)."""
    result = gradcheck(make(), inputs(xp, shape), tol=TOL)
    assert [r.name for r in result.rows] == ["x"]
    assert result.max_rel_error <= TOL


MLP_SEED = 17


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("n", [1, 3, 16])
def test_sequential_mlp_passes_gradcheck(xp, activation, n):
    """A chained mlp passes gradcheck for the input and every parameter (output width 1)."""
    model = minirai.mlp([3, 5, 4, 1], activation, "sigmoid", seed=MLP_SEED, dtype=np.float64)
    result = gradcheck(model, device_normal(xp, (n, 3), seed=3), tol=TOL)
    assert [r.name for r in result.rows] == ["x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    assert result.max_rel_error <= TOL


@pytest.mark.parametrize("seed", range(20))
def test_gradcheck_has_no_false_alarm_on_tiny_correct_entries(seed):
    """Correct sigmoid mlps pass for many seeds, although some gradient entries are ~1e-10.

    Seed 17 with this input has 0.W[0, 4] = 1.68e-10, whose finite difference is off by
    ~5e-13: judged against its own size that is a relative error of 2.7e-3, a false alarm;
    gradcheck judges such entries against the array's scale.
    """
    model = minirai.mlp([3, 5, 4, 1], "sigmoid", "sigmoid", seed=seed, dtype=np.float64)
    gradcheck(model, np.random.default_rng(100 + seed).standard_normal((1, 3)), tol=TOL, verbose=False)


# --- gradcheck catches broken layers -------------------------------------------------------------

class WrongDx(Linear):
    """dx is twice what it should be; dW and db are right."""

    def backward(self, dy):
        super().backward(dy)
        self.grad_input = 2 * self.grad_input
        return self.grad_input


class WrongDW(Linear):
    """dW is half what it should be; dx and db are right."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] *= 0.5
        return dx


def failing_rows(table: str) -> list[str]:
    """The array names of the table rows flagged as failing."""
    return [line.split()[0] for line in table.splitlines() if line.endswith("<-- FAIL")]


@pytest.mark.parametrize("broken,bad_name", [(WrongDx, "x"), (WrongDW, "0.W")])
def test_gradcheck_fails_on_a_broken_layer_and_names_the_array(xp, capsys, broken, bad_name):
    """A wrong gradient raises GradcheckError; the printed table flags exactly that array."""
    layer = broken(4, 3, rng=0, dtype=np.float64)
    with pytest.raises(GradcheckError) as info:
        gradcheck(layer, device_normal(xp, (5, 4)), tol=TOL)
    printed = capsys.readouterr().out
    assert "gradient check failed" in printed
    assert failing_rows(printed) == [bad_name]
    assert failing_rows(str(info.value)) == [bad_name]


def test_gradcheck_refuses_float32():
    """Finite differences in float32 are noise: gradcheck insists on float64."""
    with pytest.raises(TypeError, match="float64"):
        gradcheck(Linear(2, 2, rng=0), np.ones((3, 2), dtype=np.float32))


# --- Sigmoid numerics --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_has_no_floating_point_warnings_for_huge_inputs(xp, dtype):
    """Sigmoid over [-1e4, 1e4] raises no warning and no floating-point error (all='raise')."""
    x = xp.asarray(np.linspace(-1e4, 1e4, 20001).astype(dtype))
    layer = Sigmoid()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = backend.to_numpy(layer.forward(x))
    assert y.dtype == dtype
    assert np.all(np.isfinite(y)) and y.min() >= 0 and y.max() <= 1
    assert np.all(np.diff(y) >= 0)   # monotone


def test_sigmoid_is_exact_at_zero_and_saturates():
    """σ(0) = 0.5 exactly, σ(±1e4) = 1/0 exactly, and tiny outputs keep relative precision."""
    x = np.array([0.0, 1e4, -1e4, -30.0])
    y = sigmoid(x)
    assert y[0] == 0.5
    assert y[1] == 1.0 and y[2] == 0.0
    assert y[3] == pytest.approx(np.exp(-30.0) / (1 + np.exp(-30.0)), rel=1e-12)


# --- Linear initialisation -------------------------------------------------------------------------

def test_linear_uniform_init_lies_within_one_over_sqrt_fan_in():
    """Default init: W and b ~ U(±1/√fan_in): inside the bound, filling it, mean ≈ 0."""
    layer = Linear(400, 300, rng=0)
    W, b = layer.params["W"], layer.params["b"]
    bound = 1 / np.sqrt(400)
    assert W.dtype == np.float32 and W.shape == (400, 300) and b.shape == (300,)
    for p in (W, b):
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.98 * bound
    assert abs(W.mean()) < 0.01 * bound
    assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)


def test_linear_xavier_init_bound_and_zero_bias():
    """Xavier: W ~ U(±√(6/(fan_in+fan_out))), b = 0."""
    layer = Linear(400, 300, init="xavier", rng=0)
    bound = np.sqrt(6 / 700)
    W = layer.params["W"]
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.98 * bound
    assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    assert not np.any(layer.params["b"])


def test_linear_he_init_std():
    """He: W ~ N(0, 2/fan_in) (std within 2%), b = 0."""
    layer = Linear(400, 300, init="he", rng=0)
    W = layer.params["W"]
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert abs(W.mean()) < 0.01 * np.sqrt(2 / 400)
    assert not np.any(layer.params["b"])


@pytest.mark.parametrize("init", Linear.INITS)
def test_same_seed_gives_same_weights(init):
    """One seed, one set of weights; another seed, other weights (also for a whole mlp)."""
    a, b, c = (Linear(5, 3, init=init, rng=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    np.testing.assert_array_equal(a.params["b"], b.params["b"])
    assert not np.array_equal(a.params["W"], c.params["W"])
    m1, m2 = minirai.mlp([2, 4, 1], init=init, seed=3), minirai.mlp([2, 4, 1], init=init, seed=3)
    for (_, p1, _), (_, p2, _) in zip(m1.named_parameters(), m2.named_parameters()):
        np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("args,kwargs", [((0, 3), {}), ((3, -1), {}), ((2.5, 3), {}),
                                         ((2, 3), {"init": "bogus"})])
def test_linear_bad_construction(args, kwargs):
    """Non-positive/non-integer widths and unknown inits are ValueErrors."""
    with pytest.raises(ValueError, match="Linear"):
        Linear(*args, **kwargs)


# --- reprs and backward semantics --------------------------------------------------------------------

def test_repr_shows_shapes_and_gradient_norm_after_backward():
    """repr names the shapes; after a backward it also shows |grad| (the gradient's norm)."""
    layer = Linear(3, 2, rng=0)
    text = repr(layer)
    assert text.startswith("Linear(3->2") and "W(3, 2)" in text and "b(2,)" in text
    assert "|grad|" not in text
    layer.forward(np.ones((4, 3), dtype=np.float32))
    layer.backward(np.ones((4, 2), dtype=np.float32))
    text = repr(layer)
    norm_W = float(np.linalg.norm(layer.grads["W"]))
    assert f"W(3, 2) |grad|={norm_W:.3g}" in text
    assert "|grad|=" in text.split("b(2,)")[1]
    assert "LeakyReLU(negative_slope=0.2)" == repr(LeakyReLU(0.2))


@pytest.mark.parametrize("model_factory", [
    lambda: Linear(4, 3, rng=0, dtype=np.float64),
    lambda: minirai.mlp([4, 5, 3], "tanh", "sigmoid", seed=0, dtype=np.float64),
], ids=["linear", "mlp"])
def test_backward_is_idempotent_and_writes_into_the_same_arrays(xp, model_factory):
    """Calling backward twice gives the same grads (set, not accumulated), in the same arrays."""
    model = model_factory()
    layers = model.layers if hasattr(model, "layers") else [model]
    x, dy = device_normal(xp, (6, 4), seed=1), device_normal(xp, (6, 3), seed=2)
    model.forward(x)
    dx1 = backend.to_numpy(model.backward(dy))
    arrays = [layer.grads[k] for layer in layers for k in layer.grads]
    first = [backend.to_numpy(g) for g in arrays]
    dx2 = backend.to_numpy(model.backward(dy))
    second = [layer.grads[k] for layer in layers for k in layer.grads]
    np.testing.assert_array_equal(dx1, dx2)
    for g1, g2, same in zip(first, second, arrays):
        assert g2 is same                      # an optimizer holding the array sees new values
        np.testing.assert_array_equal(g1, backend.to_numpy(g2))
        assert np.any(g1 != 0)
