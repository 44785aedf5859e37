"""Losses: gradients, numerics at the edges, agreement with PyTorch, and clear target errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from minirai import backend
from minirai.gradcheck import gradcheck
from minirai.losses import BCE, MSE, BCEWithLogits, SoftmaxCrossEntropy

TOL = 1e-6
rng = np.random.default_rng


def on(xp, a):
    """A host array copied to the active backend."""
    return xp.asarray(np.asarray(a))


# --- gradcheck -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (4, 1), (16, 3)])
def test_mse_gradcheck_pred_and_target(xp, shape):
    """MSE: d/dpred and d/dtarget (both trainable under RAI) match finite differences."""
    result = gradcheck(MSE(), on(xp, rng(0).standard_normal(shape)), on(xp, rng(1).standard_normal(shape)),
                       tol=TOL)
    assert [r.name for r in result.rows] == ["pred", "target"]


@pytest.mark.parametrize("n", [1, 4, 16])
def test_mse_gradcheck_with_flat_target(xp, n):
    """Targets of shape (N,) for predictions (N, 1): d/dtarget comes back in the target's shape."""
    result = gradcheck(MSE(), on(xp, rng(0).standard_normal((n, 1))), on(xp, rng(1).standard_normal(n)),
                       tol=TOL)
    assert [(r.name, r.shape) for r in result.rows] == [("pred", (n, 1)), ("target", (n,))]


@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (4, 1), (16, 3)])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_bce_gradcheck(xp, shape, soft):
    """BCE on probabilities in (0.05, 0.95): d/dpred matches, with 0/1 labels and soft targets."""
    p = on(xp, rng(0).uniform(0.05, 0.95, shape))
    t = rng(1).uniform(0, 1, shape) if soft else rng(1).integers(0, 2, shape).astype(np.float64)
    result = gradcheck(BCE(), p, on(xp, t), tol=TOL)
    assert [r.name for r in result.rows] == ["pred"]


@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (4, 1), (16, 3)])
def test_bce_with_logits_gradcheck(xp, shape):
    """BCEWithLogits on raw scores: d/dz matches finite differences."""
    z = on(xp, 3 * rng(0).standard_normal(shape))
    t = on(xp, rng(1).integers(0, 2, shape).astype(np.float64))
    assert [r.name for r in gradcheck(BCEWithLogits(), z, t, tol=TOL).rows] == ["pred"]


@pytest.mark.parametrize("n,c", [(1, 2), (1, 5), (4, 3), (16, 10)])
def test_softmax_cross_entropy_gradcheck(xp, n, c):
    """Softmax cross-entropy with integer labels: d/dz matches finite differences."""
    # unit-scale scores: no softmax probability (and so no gradient entry) is tiny; see the
    # gradcheck floor note in test_layers_gradcheck.py (scale 2 gives a false alarm at 16x10)
    z = on(xp, rng(0).standard_normal((n, c)))
    labels = on(xp, rng(1).integers(0, c, n))
    assert [r.name for r in gradcheck(SoftmaxCrossEntropy(), z, labels, tol=TOL).rows] == ["pred"]


# --- numerics at the edges -------------------------------------------------------------------------

def without_fp_warnings(loss, pred, target):
    """Value and gradient of ``loss``, with any floating-point warning turned into an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value = backend.to_float(loss.forward(pred, target))
        grad = backend.to_numpy(loss.backward())
    return value, grad


def test_bce_at_exactly_zero_and_one_is_finite_with_pytorch_clamp(xp):
    """p exactly 0 or 1: each wrong example costs 100 (log clamped at -100), no inf, no NaN."""
    p = on(xp, np.array([[0.0], [1.0], [0.0], [1.0]]))
    t = on(xp, np.array([[1.0], [0.0], [0.0], [1.0]]))
    value, grad = without_fp_warnings(BCE(), p, t)
    assert value == pytest.approx(50.0)        # (100 + 100 + 0 + 0) / 4
    assert np.all(np.isfinite(grad))
    assert grad[2, 0] == 0 and grad[3, 0] == 0    # right and certain: no push
    assert grad[0, 0] < 0 < grad[1, 0]            # wrong: pushed towards the label


def test_bce_with_logits_is_stable_for_huge_scores(xp):
    """|z| = 1e4: exact values (0 when right, |z| when wrong), finite gradients, no FP warning."""
    z = on(xp, np.array([[1e4], [-1e4], [1e4], [-1e4]]))
    t = on(xp, np.array([[1.0], [0.0], [0.0], [1.0]]))
    value, grad = without_fp_warnings(BCEWithLogits(), z, t)
    assert value == pytest.approx((0 + 0 + 1e4 + 1e4) / 4)
    np.testing.assert_allclose(grad[:, 0], [0, 0, 0.25, -0.25])


def test_softmax_cross_entropy_is_stable_for_huge_scores():
    """Scores of ±1e4 neither overflow nor produce NaN (the max is subtracted first)."""
    z = np.array([[1e4, -1e4, 0.0], [1e4, 1e4 - 1, 0.0]])
    loss = SoftmaxCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = float(loss.forward(z, np.array([1, 0])))
    assert value == pytest.approx((2e4 + np.log1p(np.exp(-1.0))) / 2)
    assert np.all(np.isfinite(loss.backward()))


# --- agreement with PyTorch (float64) -----------------------------------------------------------------

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def torch_value_and_grad(torch, fn, pred, target):
    p = torch.tensor(pred, requires_grad=True)
    value = fn(p, torch.tensor(target))
    value.backward()
    return value.item(), p.grad.numpy()


def assert_matches_torch(torch, loss, fn, pred, target, torch_target=None):
    value = float(loss.forward(pred, target))
    grad = loss.backward()
    t_value, t_grad = torch_value_and_grad(torch, fn, pred, target if torch_target is None else torch_target)
    assert value == pytest.approx(t_value, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-6, atol=1e-12)


def test_mse_matches_torch(torch):
    """MSE value and d/dpred equal torch.nn.functional.mse_loss."""
    pred, target = rng(0).standard_normal((7, 3)), rng(1).standard_normal((7, 3))
    assert_matches_torch(torch, MSE(), torch.nn.functional.mse_loss, pred, target)


@pytest.mark.parametrize("with_edges", [False, True], ids=["interior", "p_exactly_0_and_1"])
def test_bce_matches_torch(torch, with_edges):
    """BCE value and d/dpred equal binary_cross_entropy, including p exactly 0 and 1."""
    pred = rng(0).uniform(0.01, 0.99, (8, 1))
    target = rng(1).integers(0, 2, (8, 1)).astype(np.float64)
    if with_edges:
        pred[:4, 0] = [0.0, 1.0, 0.0, 1.0]
        target[:4, 0] = [1.0, 0.0, 0.0, 1.0]
    assert_matches_torch(torch, BCE(), torch.nn.functional.binary_cross_entropy, pred, target)


def test_bce_with_logits_matches_torch(torch):
    """BCEWithLogits value and d/dz equal binary_cross_entropy_with_logits (incl. |z| = 1e4)."""
    z = 4 * rng(0).standard_normal((9, 2))
    z[0, 0], z[1, 1] = 1e4, -1e4
    target = rng(1).integers(0, 2, (9, 2)).astype(np.float64)
    assert_matches_torch(torch, BCEWithLogits(), torch.nn.functional.binary_cross_entropy_with_logits, z, target)


def test_softmax_cross_entropy_matches_torch(torch):
    """Softmax cross-entropy value and d/dz equal torch.nn.functional.cross_entropy."""
    z = 3 * rng(0).standard_normal((11, 4))
    labels = rng(1).integers(0, 4, 11)
    assert_matches_torch(torch, SoftmaxCrossEntropy(), torch.nn.functional.cross_entropy, z, labels)


# --- bad targets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss_type", [BCE, BCEWithLogits])
@pytest.mark.parametrize("bad", [2.0, -1.0])
def test_binary_losses_reject_labels_outside_0_1(xp, loss_type, bad):
    """A label of 2 or -1 is a ValueError that names the allowed range [0, 1]."""
    pred = on(xp, np.full((3, 1), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]") as info:
        loss_type()(pred, on(xp, np.array([[0.0], [1.0], [bad]])))
    assert f"{bad:g}" in str(info.value)


@pytest.mark.parametrize("labels,what", [([0, 1, 3], "3 classes, label 3"), ([0, -1, 2], "negative"),
                                         ([0.0, 1.5, 2.0], "non-integer")])
def test_cross_entropy_rejects_bad_labels(xp, labels, what):
    """Labels >= C, negative or non-integer are ValueErrors naming the allowed 0..C-1."""
    with pytest.raises(ValueError, match=r"integers in 0\.\.2"):
        SoftmaxCrossEntropy()(on(xp, np.zeros((3, 3))), on(xp, np.array(labels)))


@pytest.mark.parametrize("loss_type,pred_shape,target_shape", [
    (MSE, (4, 2), (4,)), (MSE, (4, 1), (5, 1)), (BCE, (4, 1), (4, 2)), (BCEWithLogits, (4, 1), (3,)),
    (SoftmaxCrossEntropy, (4, 3), (5,)), (SoftmaxCrossEntropy, (4, 3), (4, 1)),
])
def test_wrong_target_shape_names_both_shapes(xp, loss_type, pred_shape, target_shape):
    """A target of the wrong shape is a ValueError naming the target's and the prediction's shape."""
    pred = on(xp, np.full(pred_shape, 0.5))
    target = on(xp, np.zeros(target_shape))
    with pytest.raises(ValueError) as info:
        loss_type()(pred, target)
    assert str(target_shape) in str(info.value) and str(pred_shape) in str(info.value)


@pytest.mark.parametrize("loss_type", [MSE, BCE, BCEWithLogits, SoftmaxCrossEntropy])
def test_nan_targets_are_rejected(xp, loss_type):
    """A NaN in the targets is a ValueError (not a silent NaN loss)."""
    target = np.zeros(3) if loss_type is SoftmaxCrossEntropy else np.zeros((3, 1))
    target[1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        loss_type()(on(xp, np.full((3, 2 if loss_type is SoftmaxCrossEntropy else 1), 0.5)), on(xp, target))


def test_every_new_target_array_is_checked(xp):
    """A bad target is caught even right after a good one was freed (no id() reuse slips through)."""
    loss = BCE()
    pred = on(xp, np.array([[0.3], [0.6]]))
    good, bad = np.array([0.0, 1.0]), np.array([2.0, 1.0])
    accepted = 0
    for _ in range(20):
        loss(pred, xp.asarray(good))   # a temporary: freed right after the call
        try:
            loss(pred, xp.asarray(bad))   # may be allocated where the freed one lived
        except ValueError as error:
            assert "[0, 1]" in str(error)
        else:
            accepted += 1
    assert accepted == 0


def test_backward_before_forward_is_a_clear_error():
    """backward() without a forward is a RuntimeError naming the loss."""
    with pytest.raises(RuntimeError, match="MSE.backward"):
        MSE().backward()
