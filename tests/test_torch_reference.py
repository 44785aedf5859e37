"""minirai against PyTorch: with the default settings, the same numbers as autograd and torch.optim.

Every comparison goes through one helper, :func:`assert_same` (in the spirit of tinygrad's
``helper_test_op``): it takes a minirai array and the torch tensor that should hold the same
numbers, checks that their shapes and dtypes match (no silent upcast), and asserts

    |ours - theirs| <= rtol · (|theirs| + max|theirs|)        entry by entry

that is, agreement to ``rtol`` relative to each entry *or* to the array's largest entry.
The second term is what makes a tolerance meaningful for computed arrays: an entry that is
a sum of terms much larger than itself (a cancellation in x^T dy, or 1 - y² with y near 1)
carries the rounding error of those terms, not of itself, in both libraries. ``rtol = 0``
asks for exact equality.

Tolerances (measured maxima are in each test's docstring):

* float64: ``1e-12`` everywhere. Measured errors are 0 .. 1.1e-15 (a few units of float64's
  eps = 2.2e-16), so 1e-12 leaves a factor of about a thousand and still catches any wrong
  formula, sign, transpose, missing term or float32 detour.
* float32: ``1e-6`` for one layer or loss (~8 x float32's eps = 1.2e-7; measured <= 1.1e-7).
  Compositions (optimizer steps, RAI, the deep chain) have their own, stated where they are used.

``helper_test_layer`` and ``helper_test_loss`` run one minirai layer or loss and its torch twin
and hand every value and gradient to ``assert_same``, so each case is one line.

One test shows where the two differ, with the exact values each gives: Rprop when the product
of two float32 gradients underflows (documented in ``minirai.optim.Rprop``).
"""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from minirai.fast.optim import runs_of
import minirai.data
from minirai import (BCE, MSE, Adam, BCEWithLogits, Identity, LeakyReLU, Linear, ReLU, Rprop, SGD, Sigmoid,
                     SoftmaxCrossEntropy, Tanh)
from minirai.fast import optim as fast_optim
from minirai.fast.stacking import FastRAI
from minirai.rai import RAI

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-12, np.float32: 1e-6}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def assert_same(what, ours, theirs, rtol):
    """Assert ``ours`` (minirai) equals ``theirs`` (torch) to ``rtol`` as defined in the module docstring.

    Returns the smallest rtol that would have passed (the measured error), for reports.
    """
    ours = np.asarray(ours)
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    scale = float(np.abs(theirs).max()) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)
    bound = np.abs(theirs).astype(np.float64) + scale
    error = np.abs(ours.astype(np.float64) - theirs) / np.where(bound > 0, bound, 1.0)
    return float(error.max()) if error.size else 0.0


def leaf(array):
    """A torch leaf tensor holding a copy of ``array`` (same dtype), with requires_grad."""
    return torch.tensor(np.array(array), requires_grad=True)


# --- 1. layers ---------------------------------------------------------------------------------------

#: minirai parameter name -> (torch nn.Linear attribute, torch layout -> minirai layout)
#: minirai's W is (in, out) (y = x W + b), torch's weight is (out, in) (y = x weightᵀ + bias).
TORCH_PARAMS = {"W": ("weight", lambda t: t.T), "b": ("bias", lambda t: t)}


def helper_test_layer(layer, torch_layer, x, rtol):
    """Forward output, dx and every parameter gradient of ``layer`` vs ``torch_layer``, for a random dy.

    Parameters are copied into ``torch_layer`` first (W transposed), so both compute the same
    function; the upstream gradient dy is random, so every entry of dx and dθ is exercised
    (with dy = 1 a transposed dW of a square layer could go unnoticed).
    """
    for key, value in layer.params.items():
        name, to_ours = TORCH_PARAMS[key]
        with torch.no_grad():
            to_ours(getattr(torch_layer, name)).copy_(torch.from_numpy(value))
    y = layer.forward(x)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    dx = layer.backward(dy)
    tx = leaf(x)
    ty = torch_layer(tx)
    ty.backward(torch.from_numpy(dy))
    errors = {"y": assert_same("y", y, ty, rtol), "dx": assert_same("dx", dx, tx.grad, rtol)}
    for key in layer.params:
        name, to_ours = TORCH_PARAMS[key]
        errors["d" + key] = assert_same("d" + key, layer.grads[key], to_ours(getattr(torch_layer, name).grad), rtol)
    return errors


LAYERS = {   # name: (minirai layer of dtype, the torch module it should equal)
    "Linear": (lambda d: Linear(7, 5, rng=3, dtype=d), lambda d: torch.nn.Linear(7, 5, dtype=TORCH_DTYPE[d])),
    "Sigmoid": (lambda d: Sigmoid(), lambda d: torch.nn.Sigmoid()),
    "Tanh": (lambda d: Tanh(), lambda d: torch.nn.Tanh()),
    "ReLU": (lambda d: ReLU(), lambda d: torch.nn.ReLU()),
    "LeakyReLU": (lambda d: LeakyReLU(), lambda d: torch.nn.LeakyReLU()),   # both default to slope 0.01
    "Identity": (lambda d: Identity(), lambda d: torch.nn.Identity()),
}


def layer_input(dtype):
    """(16, 7) standard normal values x 3 (sigmoid and tanh reach saturation), with exact zeros:
    ReLU's and LeakyReLU's subgradient at 0 must be torch's (0 and the slope)."""
    x = 3 * np.random.default_rng(0).standard_normal((16, 7))
    x[::3, ::2] = 0.0
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch_autograd(name, dtype):
    """y, dx (and dW, db) equal torch autograd's for a random upstream gradient.

    Measured: float64 <= 3.4e-16 (Tanh's dx), float32 <= 9.6e-8 (Tanh's dx). ReLU, LeakyReLU and
    Identity are exact. Tolerance 1e-12 / 1e-6 as in the module docstring.
    """
    make, make_torch = LAYERS[name]
    helper_test_layer(make(dtype), make_torch(dtype), layer_input(dtype), RTOL[dtype])


# --- 2. losses ---------------------------------------------------------------------------------------

def helper_test_loss(loss, torch_loss, pred, target, rtol):
    """The loss value and d pred (``loss.backward()``) vs ``torch_loss(pred, target)`` and its autograd."""
    value = loss.forward(pred, target)
    grad = loss.backward()
    tp = leaf(pred)
    t_value = torch_loss(tp, torch.from_numpy(target))
    t_value.backward()
    return {"value": assert_same("value", value, t_value, rtol),
            "dpred": assert_same("dpred", grad, tp.grad, rtol)}


def loss_case(name, dtype):
    """(minirai loss, torch function, pred, target) on 12 examples of random data."""
    rng = np.random.default_rng(4)
    if name == "MSE":
        return MSE(), F.mse_loss, rng.standard_normal((12, 3)).astype(dtype), rng.standard_normal((12, 3)).astype(dtype)
    if name == "BCE":
        pred, target = rng.uniform(0.01, 0.99, (12, 1)), rng.integers(0, 2, (12, 1))
        return BCE(), F.binary_cross_entropy, pred.astype(dtype), target.astype(dtype)
    if name == "BCEWithLogits":
        z, target = 4 * rng.standard_normal((12, 1)), rng.integers(0, 2, (12, 1))
        return BCEWithLogits(), F.binary_cross_entropy_with_logits, z.astype(dtype), target.astype(dtype)
    assert name == "SoftmaxCrossEntropy"
    z, labels = 3 * rng.standard_normal((12, 4)), rng.integers(0, 4, 12)
    return SoftmaxCrossEntropy(), F.cross_entropy, z.astype(dtype), labels.astype(np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["MSE", "BCE", "BCEWithLogits", "SoftmaxCrossEntropy"])
def test_loss_matches_torch(name, dtype):
    """Mean loss value and d pred equal torch.nn.functional's (reduction="mean").

    Measured: float64 <= 1.2e-16, float32 <= 1.1e-7 (softmax cross-entropy's value); BCE's and
    MSE's d pred are exact in both. Tolerance 1e-12 / 1e-6.
    """
    loss, torch_loss, pred, target = loss_case(name, dtype)
    helper_test_loss(loss, torch_loss, pred, target, RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target", [0.0, 1.0])
@pytest.mark.parametrize("p", [1e-10, 1e-20])
def test_bce_at_tiny_probabilities_matches_torch(p, target, dtype):
    """BCE at p = 1e-10 and 1e-20, targets 0 and 1: the value and d pred of torch's binary_cross_entropy.

    For t = 0 the loss is -log(1 - p) = p + p²/2 + ...: minirai computes log1p(-p) as torch does, so
    in float32 it is 1e-10 (resp. 1e-20), where log(1 - p) would give 1 - 1e-10 = 1 in float32 and a
    loss of exactly 0. For t = 1 it is -log p = 23.03 (46.05). d pred = (p - t) / max(p (1 - p), ε):
    1, -1e10 at p = 1e-10, and 1e-8, -1e12 at p = 1e-20, where the floor ε takes over. ε is
    torch's, float32(1e-12) = 9.99999996e-13 in every dtype (a C++ float constant in ATen), so the
    two agree there too. Measured: identical in both dtypes. Tolerance 1e-12 / 1e-6.
    """
    pred, t = np.array([[p]], dtype), np.array([[target]], dtype)
    helper_test_loss(BCE(), F.binary_cross_entropy, pred, t, RTOL[dtype])
    value = float(BCE().forward(pred, t))
    if target == 0.0:
        assert value == pytest.approx(p, rel=1e-6)   # not 0: log1p(-p), not log(1 - p)
    else:
        assert value == pytest.approx(-np.log(p), rel=1e-6)


def test_bce_gradient_floor_is_torchs_in_float64_too():
    """Where p (1 - p) is below the floor, d pred = (p - t) / ε with torch's ε = float32(1e-12), exactly."""
    for t in (0.0, 1.0):
        pred, target = np.array([[1e-20]]), np.array([[t]])
        loss = BCE()
        loss.forward(pred, target)
        ours = loss.backward()[0, 0]
        tp = leaf(pred)
        F.binary_cross_entropy(tp, torch.from_numpy(target)).backward()
        assert ours == tp.grad.item() == (1e-20 - t) / float(np.float32(1e-12))


# --- 3. a deep float32 sigmoid chain ------------------------------------------------------------------

def torch_copy(model, dtype):
    """An equivalent torch nn.Sequential: each Linear with W transposed into weight, each Sigmoid."""
    modules = []
    for layer in model.layers:
        if isinstance(layer, Linear):
            linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=TORCH_DTYPE[dtype])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.params["W"].T))
                linear.bias.copy_(torch.from_numpy(layer.params["b"]))
            modules.append(linear)
        else:
            assert isinstance(layer, Sigmoid)
            modules.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*modules)


#: Per layer, the float32 dW of the 51-layer chain agrees with torch to this (see the test's docstring).
CHAIN_RTOL = 1e-4


def test_deep_float32_sigmoid_chain_matches_torch_down_to_the_smallest_normal():
    """51 Linear layers (2 -> 16 x 50 -> 1), sigmoids, BCE on 64 two-moons points, float32, one backward.

    The gradient shrinks ~x7 per layer, so dW runs from 4e-2 (last layer) through 1e-31 .. 1e-38 down
    to subnormal numbers (below 1.18e-38) and exact 0 (first layer). Outside a training loop minirai
    computes in strict IEEE arithmetic (no flush-to-zero), as torch does by default, so the two must
    agree on every dW entry that torch gives as a normal number (|dW| >= finfo(float32).tiny), in
    particular in 1e-38 .. 1e-30, where a flush-to-zero run would give 0. Subnormal entries carry
    fewer bits and are not compared.

    Tolerance: per layer, |ours - torch| <= 1e-4 (|torch| + max|torch dW of that layer|). Each layer
    adds a few float32 roundings (~1e-7 each: a 16-term dot product, the sigmoid and its derivative,
    torch's different order of operations) to the relative error of dy, and they accumulate over up
    to 50 layers: measured 7.7e-6 at worst (the gradients near 1e-38, where dy itself is subnormal, add
    at most N · 1.4e-45 / 1.2e-38 = 8e-6). 1e-4 is ~13x the measured maximum and ~800x float32's eps.
    """
    assert np.float32(1e-45) * np.float32(2) > 0, "subnormals are flushed: not strict IEEE arithmetic"
    model = minirai.mlp([2] + [16] * 50 + [1], "sigmoid", "sigmoid", seed=0, dtype=np.float32)
    data = minirai.data.moons(64, dtype=np.float32)
    X, y = data.X_train, data.y_train.astype(np.float32).reshape(-1, 1)
    loss = BCE()
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward())

    torch_model = torch_copy(model, np.float32)
    t_value = F.binary_cross_entropy(torch_model(torch.from_numpy(X)), torch.from_numpy(y))
    t_value.backward()
    assert_same("loss", value, t_value, RTOL[np.float32])

    tiny = np.finfo(np.float32).tiny
    linears = [layer for layer in model.layers if isinstance(layer, Linear)]
    torch_linears = [m for m in torch_model if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 51
    compared, formerly_flushed = 0, 0
    for k, (layer, linear) in enumerate(zip(linears, torch_linears)):
        for key, theirs in (("b", linear.bias.grad.numpy()), ("W", linear.weight.grad.numpy().T)):
            ours = layer.grads[key]
            normal = np.abs(theirs) >= tiny
            if normal.any():
                assert_same(f"d{key} of layer {k}", ours[normal], theirs[normal], CHAIN_RTOL)
                compared += int(normal.sum())
        largest = np.abs(theirs).max()
        if tiny <= largest < 1e-30:   # the whole layer lies in 1.2e-38 .. 1e-30, and is nonzero in both
            assert np.abs(ours).max() >= tiny and np.count_nonzero(ours) == np.count_nonzero(theirs) == ours.size
            formerly_flushed += 1
    assert formerly_flushed >= 5, f"only {formerly_flushed} layers have max |dW| in [1.2e-38, 1e-30)"
    assert compared >= 40 * 16 * 16


# --- 4. optimizers -------------------------------------------------------------------------------------

OPTIMIZERS = {   # name: (minirai optimizer on pairs, torch.optim on tensors, [(our state key, torch's)])
    "SGD": (lambda p: SGD(p, lr=0.1), lambda t: torch.optim.SGD(t, lr=0.1), []),
    "SGD_weight_decay": (lambda p: SGD(p, lr=0.1, weight_decay=0.01),
                         lambda t: torch.optim.SGD(t, lr=0.1, weight_decay=0.01), []),
    "SGD_momentum": (lambda p: SGD(p, lr=0.1, momentum=0.9), lambda t: torch.optim.SGD(t, lr=0.1, momentum=0.9),
                     [("momentum_buffer", "momentum_buffer")]),
    "SGD_momentum_weight_decay": (lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda t: torch.optim.SGD(t, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  [("momentum_buffer", "momentum_buffer")]),
    "Adam": (lambda p: Adam(p, lr=0.01), lambda t: torch.optim.Adam(t, lr=0.01),
             [("m", "exp_avg"), ("v", "exp_avg_sq")]),
    "Rprop": (lambda p: Rprop(p, lr=0.01), lambda t: torch.optim.Rprop(t, lr=0.01), [("step_size", "step_size")]),
}
STEPS = 20


def optimizer_rtol(name, dtype):
    """Rprop: exact (its arithmetic is torch's, operation for operation: only signs, delta·η and a clip).

    The others differ from torch in rounding only: torch's ``param.add_(grad, alpha=-lr)`` is one
    fused multiply-add (one rounding) where minirai writes p - lr·g (two), and torch's Adam updates m
    with ``lerp`` and divides in another order. That is at most ~1 ulp per step, so the tolerance is
    STEPS x eps: 4.4e-15 in float64 (we keep the module's 1e-12) and 20 x 1.2e-7 = 2.4e-6 in float32.
    Measured over 20 steps: float64 <= 4.4e-16, float32 <= 1.4e-7 (parameters; Adam's m 1.3e-7).
    """
    if name == "Rprop":
        return 0.0
    return RTOL[np.float64] if dtype is np.float64 else STEPS * float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("path", ["textbook", "fast"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_matches_torch_optim(name, dtype, path):
    """20 steps with random gradients (10% exact zeros): every parameter, after every step, and the
    state at the end, against torch.optim with the same hyperparameters (Rprop: default etas and
    step sizes). The parameters are a packed mlp's (one flat array), updated by ``optimizer.step()``
    ("textbook": each rule's ``update`` per array) or ``minirai.fast.optim.step`` ("fast": one
    update, or compiled kernel, over the whole packed run). Tolerances: :func:`optimizer_rtol`.
    """
    make, make_torch, state_names = OPTIMIZERS[name]
    rtol = optimizer_rtol(name, dtype)
    model = minirai.mlp([3, 5, 4, 2], "tanh", None, seed=0, dtype=dtype)
    pairs = model.parameters()
    optimizer = make(pairs)
    runs = runs_of(optimizer)
    assert len(runs) == 1 and len(runs[0][0]) == len(pairs)                    # one packed run
    tensors = [leaf(p) for p, _ in pairs]
    torch_optimizer = make_torch(tensors)
    rng = np.random.default_rng(5)
    for step in range(STEPS):
        for (_, grad), tensor in zip(pairs, tensors):
            g = (rng.standard_normal(grad.shape) * (rng.random(grad.shape) > 0.1)).astype(dtype)
            grad[...] = g
            tensor.grad = torch.from_numpy(g.copy())
        fast_optim.step(optimizer) if path == "fast" else optimizer.step()
        torch_optimizer.step()
        for i, ((param, _), tensor) in enumerate(zip(pairs, tensors)):
            assert_same(f"parameter {i} after step {step + 1}", param, tensor, rtol)
    for i, tensor in enumerate(tensors):
        for ours, theirs in state_names:
            assert_same(f"state {ours} of parameter {i}", optimizer.state[i][ours],
                        torch_optimizer.state[tensor][theirs], rtol)
        if name == "Rprop":   # minirai keeps the sign of torch's previous gradient (0 after a flip)
            assert_same(f"prev_sign of parameter {i}", optimizer.state[i]["prev_sign"],
                        torch_optimizer.state[tensor]["prev"].sign(), 0.0)


# --- 5. Rprop's one documented difference ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["textbook", "fast"])
@pytest.mark.parametrize("second", [+1, -1], ids=["same_sign", "flipped_sign"])
def test_rprop_differs_from_torch_only_when_the_gradient_product_underflows(second, path):
    """The documented difference (see ``minirai.optim.Rprop``'s docstring): float32 gradients of
    1e-24 on two consecutive steps. Their product, 1e-48, is below float32's smallest subnormal
    (1.4e-45) and rounds to (±)0, so torch.optim.Rprop sees "no sign information" and keeps its
    step size delta = lr (and moves). minirai compares the *signs* and applies the rule: delta·η+ = 1.2 lr
    for the same sign; delta·η- = 0.5 lr and no move for a flipped sign. With gradients of 1e-20 (product
    1e-40, a subnormal but not 0) the two agree exactly, which is the other half of the claim.
    """
    lr, f32 = 0.01, np.float32
    assert f32(1e-24) * f32(1e-24) == 0 and f32(1e-20) * f32(1e-20) > 0

    def run(g1, g2):
        p, g = np.zeros(1, f32), np.zeros(1, f32)
        ours = Rprop([(p, g)], lr=lr)
        t = leaf(p)
        theirs = torch.optim.Rprop([t], lr=lr)
        for value in (g1, g2):
            g[...] = value
            t.grad = torch.tensor([value], dtype=torch.float32)
            fast_optim.step(ours) if path == "fast" else ours.step()
            theirs.step()
        return p[0], ours.state[0]["step_size"][0], t.item(), theirs.state[t]["step_size"].item()

    # products that do not underflow: identical
    p, step, t_p, t_step = run(f32(1e-20), f32(second * 1e-20))
    assert (p, step) == (t_p, t_step)

    # 1e-24: the product underflows to 0 in torch
    p, step, t_p, t_step = run(f32(1e-24), f32(second * 1e-24))
    delta = f32(lr)
    assert t_step == delta                              # torch: product 0, delta kept
    assert t_p == -delta - second * delta               # ... and moved by delta against each sign
    if second > 0:
        assert step == delta * f32(1.2)                     # minirai: same sign, delta·η+
        assert p == -delta - delta * f32(1.2)               # ... and moved by delta, then by 1.2 delta
    else:
        assert step == delta * f32(0.5)                     # minirai: flipped, delta·η-
        assert p == -delta                                  # ... and skipped the second move


# --- 6. RAI's relaxed objective ------------------------------------------------------------------------

#: float32 RAI: a gradient goes through up to 3 layers, a loss and the sum of two table parts;
#: measured 8.1e-7 (float64: 1.1e-15), so 1e-5 (~12x the measured maximum, ~80 float32 eps).
RAI_RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def torch_relaxed_objective(trainer, lam):
    """The relaxed objective in torch, from the trainer's weights and tables as leaf tensors.

    Block s reads X (s = 0) or Z_s = tables[s-1]; o_s is its output;
    relaxed = BCE(o_K, y) + λ Σ_{s<K} mean((o_s - Z_{s+1})²).
    Returns (relaxed, {id(layer): (weight, bias)}, table tensors).
    """
    tables = [leaf(z) for z in trainer.tables]
    weights, outputs = {}, []
    for s, block in enumerate(trainer.blocks):
        x = torch.from_numpy(trainer.X) if s == 0 else tables[s - 1]
        for layer in block.layers:
            if isinstance(layer, Linear):
                W, b = leaf(layer.params["W"].T), leaf(layer.params["b"])
                weights[id(layer)] = (W, b)
                x = F.linear(x, W, b)
            else:
                assert isinstance(layer, Sigmoid)
                x = torch.sigmoid(x)
        outputs.append(x)
    hidden = sum(F.mse_loss(outputs[s], tables[s]) for s in range(len(tables)))
    relaxed = F.binary_cross_entropy(outputs[-1], torch.from_numpy(trainer.y)) + lam * hidden
    relaxed.backward()
    return relaxed, weights, tables


@pytest.mark.parametrize("path", ["textbook", "fast"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rai_gradients_match_torch_autograd(dtype, path):
    """RAI (cuts after every Linear, λ = 0.7) on mlp([2] + [8]*6 + [1]), tables perturbed by 0.1·noise:
    the relaxed loss, every weight gradient and every table gradient (``trainer.grad_tables``: the
    input part plus λ times the hidden-loss target part) equal torch autograd's on the same objective.

    "textbook" runs ``RAI.forward``/``backward`` block by block; "fast" runs ``FastRAI``, which stacks
    the five identical hidden blocks [Sigmoid, Linear(8, 8)] into one batched computation.
    Measured: float64 <= 1.1e-15, float32 <= 8.1e-7 (db), the same on both paths. Tolerance: RAI_RTOL.
    """
    lam, rtol = 0.7, RAI_RTOL[dtype]
    model = minirai.mlp([2] + [8] * 6 + [1], "sigmoid", "sigmoid", seed=0, dtype=dtype)
    data = minirai.data.moons(32, dtype=dtype)
    trainer = RAI(model, data.X_train, data.y_train, BCE(), cuts="linear", lam=lam)
    rng = np.random.default_rng(6)
    for table in trainer.tables:
        table += (0.1 * rng.standard_normal(table.shape)).astype(dtype)
    if path == "fast":
        fast = FastRAI(trainer)
        assert fast.groups and fast.groups[0].count == 5
        value = fast.forward()
        fast.backward()
    else:
        value = trainer.forward()
        trainer.backward()

    relaxed, weights, tables = torch_relaxed_objective(trainer, lam)
    assert_same("relaxed loss", value, relaxed, rtol)
    for k, layer in enumerate(layer for layer in model.layers if isinstance(layer, Linear)):
        W, b = weights[id(layer)]
        assert_same(f"dW of Linear {k}", layer.grads["W"], W.grad.T, rtol)
        assert_same(f"db of Linear {k}", layer.grads["b"], b.grad, rtol)
    assert len(tables) == 7   # a cut after each of the 7 Linear layers (the last block is the output Sigmoid)
    for s, (grad, table) in enumerate(zip(trainer.grad_tables, tables)):
        assert_same(f"d table {s + 1}", grad, table.grad, rtol)
