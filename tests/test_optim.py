"""Optimizers: SGD, Adam and Rprop against hand-computed steps and against torch.optim."""
from __future__ import annotations

import numpy as np
import pytest

from minirai import backend
from minirai.optim import SGD, Adam, Optimizer, Rprop


def run(xp, make, p0, grads):
    """Apply ``make([(p, g)])`` to one parameter for the given gradient sequence.

    Returns the parameter after each step (host copies) and the optimizer.
    """
    p = xp.asarray(np.asarray(p0, dtype=np.float64))
    g = xp.zeros_like(p)
    opt = make([(p, g)])
    trajectory = []
    for grad in grads:
        g[...] = xp.asarray(np.asarray(grad, dtype=np.float64))
        opt.step()
        trajectory.append(backend.to_numpy(p).copy())   # to_numpy(numpy array) is no copy
    return np.array(trajectory), opt


P0 = [1.0, -2.0]
GRADS = [[0.5, -1.0], [0.2, 0.4], [-1.0, 0.0]]


# --- SGD ---------------------------------------------------------------------------------------------

def test_sgd_plain_by_hand(xp):
    """p ← p - lr g with lr = 0.1."""
    got, _ = run(xp, lambda pairs: SGD(pairs, lr=0.1), P0, GRADS)
    expected = [[0.95, -1.9],        # [1, -2] - 0.1 [0.5, -1]
                [0.93, -1.94],       # - 0.1 [0.2, 0.4]
                [1.03, -1.94]]       # - 0.1 [-1, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_sgd_momentum_by_hand(xp):
    """b ← g on step 1, then b ← 0.9 b + g; p ← p - 0.1 b (PyTorch's rule, no dampening)."""
    got, opt = run(xp, lambda pairs: SGD(pairs, lr=0.1, momentum=0.9), P0, GRADS)
    # b1 = [0.5, -1]                                  p1 = [0.95, -1.9]
    # b2 = 0.9 [0.5, -1] + [0.2, 0.4] = [0.65, -0.5]   p2 = [0.885, -1.85]
    # b3 = 0.9 [0.65, -0.5] + [-1, 0] = [-0.415, -0.45] p3 = [0.9265, -1.805]
    np.testing.assert_allclose(got, [[0.95, -1.9], [0.885, -1.85], [0.9265, -1.805]], rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(opt.state[0]["momentum_buffer"]), [-0.415, -0.45], rtol=1e-12)


def test_sgd_weight_decay_by_hand_and_grads_untouched(xp):
    """g' = g + 0.1 p, p ← p - 0.1 g'; the gradient array itself is not modified."""
    got, opt = run(xp, lambda pairs: SGD(pairs, lr=0.1, weight_decay=0.1), P0, GRADS)
    # g'1 = [0.6, -1.2]          p1 = [0.94, -1.88]
    # g'2 = [0.294, 0.212]       p2 = [0.9106, -1.9012]
    # g'3 = [-0.90894, -0.19012] p3 = [1.001494, -1.882188]
    np.testing.assert_allclose(got, [[0.94, -1.88], [0.9106, -1.9012], [1.001494, -1.882188]], rtol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(opt.pairs[0][1]), GRADS[-1])


# --- Adam --------------------------------------------------------------------------------------------

def test_adam_by_hand(xp):
    """Adam's bias-corrected update, written out in plain NumPy, over 4 steps."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    grads = GRADS + [[0.3, -0.6]]
    got, opt = run(xp, lambda pairs: Adam(pairs, lr=lr, betas=(b1, b2), eps=eps), P0, grads)

    p, m, v, expected = np.array(P0), np.zeros(2), np.zeros(2), []
    for t, g in enumerate(np.array(grads), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        expected.append(p)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # step 1: m̂ = g, v̂ = g², so each value moves by lr (times the sign of g) whatever |g| is
    np.testing.assert_allclose(got[0], [0.9, -1.9], rtol=1e-7)
    np.testing.assert_allclose(backend.to_numpy(opt.state[0]["m"]), m, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(opt.state[0]["v"]), v, rtol=1e-12)


# --- Rprop -------------------------------------------------------------------------------------------

def test_rprop_by_hand_sign_flip_skips_the_step_and_stores_zero(xp):
    """Δ starts at lr; ×1.2 on equal signs, ×0.5 and no move on a flip; a stored 0 keeps Δ unchanged.

    Magnitudes differ wildly on purpose: only signs matter.
    """
    grads = [[3.0, 0.5, -7.0], [0.2, -4.0, -0.1], [5.0, 2.0, 1.0], [1.0, 1.0, 3.0]]
    p = xp.zeros(3, dtype=np.float64)
    g = xp.zeros_like(p)
    opt = Rprop([(p, g)], lr=0.1)
    np.testing.assert_array_equal(backend.to_numpy(opt.state[0]["step_size"]), [0.1, 0.1, 0.1])
    expected = [
        # (params,                 step sizes,             stored sign of the previous gradient)
        ([-0.1, -0.1, 0.1],        [0.1, 0.1, 0.1],        [1.0, 1.0, -1.0]),   # prev was 0: Δ = lr
        ([-0.22, -0.1, 0.22],      [0.12, 0.05, 0.12],     [1.0, 0.0, -1.0]),   # value 1 flips: no move
        ([-0.364, -0.15, 0.22],    [0.144, 0.05, 0.06],    [1.0, 1.0, 0.0]),    # value 1: prev 0, Δ kept
        ([-0.5368, -0.21, 0.16],   [0.1728, 0.06, 0.06],   [1.0, 1.0, 1.0]),    # value 2: prev 0, Δ kept
    ]
    for grad, (params, steps, prev) in zip(grads, expected):
        g[...] = xp.asarray(np.array(grad))
        opt.step()
        np.testing.assert_allclose(backend.to_numpy(p), params, rtol=1e-12)
        np.testing.assert_allclose(backend.to_numpy(opt.state[0]["step_size"]), steps, rtol=1e-12)
        np.testing.assert_array_equal(backend.to_numpy(opt.state[0]["prev_sign"]), prev)


def test_rprop_step_size_clamps_at_50(xp):
    """With lr = 40 and a steady gradient, Δ goes 40, 48, then stays at the maximum 50."""
    got, opt = run(xp, lambda pairs: Rprop(pairs, lr=40.0), [0.0], [[1.0]] * 4)
    np.testing.assert_allclose(got[:, 0], [-40.0, -88.0, -138.0, -188.0], rtol=1e-12)
    assert backend.to_float(opt.state[0]["step_size"]) == 50.0


def test_rprop_step_size_clamps_at_1e_minus_6(xp):
    """Alternating signs: Δ = 1.5e-6, then max(0.75e-6, 1e-6) = 1e-6 and it never goes below."""
    p = xp.zeros(1, dtype=np.float64)
    g = xp.zeros_like(p)
    opt = Rprop([(p, g)], lr=1.5e-6)
    steps, params = [], []
    for sign in (1.0, -1.0, 1.0, -1.0):
        g[...] = sign
        opt.step()
        steps.append(backend.to_float(opt.state[0]["step_size"]))
        params.append(backend.to_float(p))
    np.testing.assert_allclose(steps, [1.5e-6, 1e-6, 1e-6, 1e-6], rtol=1e-12)
    np.testing.assert_allclose(params, [-1.5e-6, -1.5e-6, -2.5e-6, -2.5e-6], rtol=1e-12)


# --- against torch.optim ------------------------------------------------------------------------------

TORCH_CASES = [
    ("sgd", lambda pairs: SGD(pairs, lr=0.05), dict(lr=0.05)),
    ("sgd_momentum", lambda pairs: SGD(pairs, lr=0.05, momentum=0.9, weight_decay=0.01),
     dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("adam", lambda pairs: Adam(pairs, lr=0.05, betas=(0.8, 0.99)), dict(lr=0.05, betas=(0.8, 0.99))),
    ("rprop", lambda pairs: Rprop(pairs, lr=0.05), dict(lr=0.05)),
]
STATE_NAMES = {"sgd_momentum": [("momentum_buffer", "momentum_buffer")],
               "adam": [("m", "exp_avg"), ("v", "exp_avg_sq")],
               "rprop": [("step_size", "step_size"), ("prev_sign", "prev")]}


@pytest.mark.parametrize("name,make,torch_kwargs", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_optim_on_a_quadratic(name, make, torch_kwargs):
    """20 steps on f = ½ Σ a (p - c)²: parameters and state equal torch.optim's to 1e-6 (float64)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,)]
    curvature = [rng.uniform(0.5, 3.0, s) for s in shapes]
    centre = [rng.standard_normal(s) for s in shapes]
    ours = [rng.standard_normal(s) for s in shapes]
    grads = [np.zeros(s) for s in shapes]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in ours]
    opt = make(list(zip(ours, grads)))
    torch_type = {"sgd": torch.optim.SGD, "sgd_momentum": torch.optim.SGD,
                  "adam": torch.optim.Adam, "rprop": torch.optim.Rprop}[name]
    torch_opt = torch_type(theirs, **torch_kwargs)
    for _ in range(20):
        for p, g, t, a, c in zip(ours, grads, theirs, curvature, centre):
            g[...] = a * (p - c)
            t.grad = torch.tensor(a) * (t.detach() - torch.tensor(c))
        opt.step()
        torch_opt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-6, atol=1e-6)
    for i, t in enumerate(theirs):
        for our_key, torch_key in STATE_NAMES.get(name, []):
            theirs = torch_opt.state[t][torch_key].numpy()
            if our_key == "prev_sign":      # minirai keeps only the sign of torch's "prev"
                theirs = np.sign(theirs)
            np.testing.assert_allclose(opt.state[i][our_key], theirs, rtol=1e-6, atol=1e-6)
    assert opt.steps == 20


# --- construction and housekeeping --------------------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda: SGD([], lr=0.1), "no parameters"),
    (lambda: Adam(iter([]), lr=0.1), "no parameters"),
    (lambda: SGD([(np.zeros(3), np.zeros(3))], lr=-0.1), "lr must be > 0"),
    (lambda: Rprop([(np.zeros(3), np.zeros(3))], lr=0), "lr must be > 0"),
    (lambda: SGD([(np.zeros(3), np.zeros(4))], lr=0.1), r"shape \(3,\) but its gradient \(4,\)"),
    (lambda: SGD([(np.zeros(3), np.zeros(3))], momentum=-0.5), "momentum"),
    (lambda: Adam([(np.zeros(3), np.zeros(3))], betas=(1.0, 0.999)), "betas"),
    (lambda: Rprop([(np.zeros(3), np.zeros(3))], etas=(1.2, 0.5)), "etas"),
])
def test_bad_construction_is_a_value_error(make, message):
    """No parameters, a non-positive lr, mismatched shapes and bad hyper-parameters: ValueError."""
    with pytest.raises(ValueError, match=message):
        make()


def test_an_lr_that_is_not_a_number_is_a_type_error():
    with pytest.raises(TypeError, match="lr must be a number"):
        Adam([(np.zeros(3), np.zeros(3))], lr="0.1")


def test_zero_grad_state_and_repr():
    """zero_grad zeroes every gradient in place; state is one dict per pair; repr counts values."""
    pairs = [(np.ones((2, 3)), np.ones((2, 3))), (np.ones(3), np.ones(3))]
    opt = Rprop(pairs, lr=0.2)
    assert isinstance(opt, Optimizer) and len(opt.state) == 2
    np.testing.assert_array_equal(opt.state[1]["step_size"], [0.2, 0.2, 0.2])
    opt.zero_grad()
    assert all(not g.any() for _, g in pairs)
    assert repr(opt) == "Rprop(lr=0.2, 2 arrays, 9 values, steps=0)"


# --- packed models: one run, the same numbers -------------------------------------------------------

@pytest.mark.parametrize("kernels_on", [True, False])
@pytest.mark.parametrize("make", [lambda pairs: Rprop(pairs, lr=0.05), lambda pairs: Adam(pairs, lr=0.01),
                                  lambda pairs: SGD(pairs, lr=0.1, momentum=0.9)])
def test_packed_model_is_one_run_and_the_fast_step_equals_the_per_array_updates(make, kernels_on, monkeypatch):
    """A packed mlp's arrays are one run for the fast step (compiled, or NumPy in cache-sized chunks);
    it gives the textbook step's numbers, array by array, and the state still reads per array."""
    import minirai
    from minirai.fast import kernels
    from minirai.fast import optim as fast_optim
    monkeypatch.setattr(fast_optim, "CHUNK_SIZE", 100)         # several chunks on this small model
    if not kernels_on:
        monkeypatch.setattr(kernels, "_kernels", None)
        monkeypatch.setattr(kernels, "_unavailable_reason", "switched off for this test")
    packed = minirai.mlp([3, 40, 40, 2], "tanh", None, seed=5, dtype=np.float64)
    loose = minirai.mlp([3, 40, 40, 2], "tanh", None, seed=5, dtype=np.float64, packed=False)
    fast, slow = make(packed.parameters()), make(loose.parameters())
    assert len(fast_optim.runs_of(fast)) == 1 and len(fast_optim.runs_of(slow)) == len(slow.pairs)
    rng = np.random.default_rng(0)
    for _ in range(5):
        for (_, g1), (_, g2) in zip(packed.parameters(), loose.parameters()):
            g1[...] = g2[...] = rng.standard_normal(g1.shape)
        fast_optim.step(fast)
        slow.step()
    for (p1, _), (p2, _) in zip(packed.parameters(), loose.parameters()):
        np.testing.assert_array_equal(p1, p2)
    for s1, s2 in zip(fast.state, slow.state):       # per-array state views agree too
        for key in s1:
            np.testing.assert_array_equal(s1[key], s2[key])
