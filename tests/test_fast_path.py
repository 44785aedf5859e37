"""The fast path (minirai.fast) gives the textbook path's numbers, and one switch turns it off.

* The proposal's deep runs (BP and RAI, Rprop lr 0.1, full batch) and a mini-batch Adam run of
  the shallow net end with the same trained arrays on both paths, byte for byte, in float64
  and float32.
* With ``MINIRAI_REFERENCE=1`` every layer's own ``backward`` runs at every step.
* The fast chain's short-cut below a vanished gradient leaves the attributes a textbook
  backward leaves.
"""
from __future__ import annotations

import numpy as np
import pytest

import minirai
import minirai.minibatch
from conftest import stacks_of
from contracts import on_both_paths, same_bytes
from minirai import data, switches
from minirai.fast.chain import Chain
from minirai.fast.optim import runs_of
from minirai.fast.stacking import plan
from minirai.layers import Activation, Linear, Sigmoid
from minirai.losses import BCE
from minirai.optim import Adam, Rprop
from minirai.rai import RAI
from minirai.train import TrainingLoop, fit, prepare_data

DEEP = [2] + [100] * 100 + [1]
SHALLOW = [2, 42, 100, 100, 42, 1]


@pytest.fixture(scope="module")
def moons():
    return data.moons()


def deep_bp(moons, dtype):
    model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3, dtype=dtype)
    history = fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train.astype(dtype), moons.y_train,
                  iters=20, record_every=20, progress=False)
    return [p for p, _ in model.parameters()], history["train_loss"]


def deep_rai(moons, dtype):
    model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3, dtype=dtype)
    trainer = RAI(model, moons.X_train.astype(dtype), moons.y_train, BCE())
    history = trainer.fit(Rprop(trainer.parameters(), lr=0.1), 20, record_every=20, progress=False)
    assert plan(trainer) == [(1, 99)]                 # what the fast path stacks: the 99 middle blocks
    return [p for p, _ in trainer.parameters()], history["relaxed_loss"]


def shallow_adam_minibatch(moons, dtype):
    model = minirai.mlp(SHALLOW, "relu", "sigmoid", seed=1, dtype=dtype)
    history = fit(model, BCE(), Adam(model.parameters(), lr=1e-2), moons.X_train.astype(dtype), moons.y_train,
                  iters=30, batch_size=16, seed=5, record_every=10, progress=False)
    return [p for p, _ in model.parameters()], history["loss"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("run", [deep_bp, deep_rai, shallow_adam_minibatch])
def test_fast_and_textbook_paths_train_the_same_arrays_bit_for_bit(moons, run, dtype):
    fast_arrays, fast_losses = run(moons, dtype)
    with minirai.reference():
        textbook_arrays, textbook_losses = run(moons, dtype)
    assert len(fast_arrays) == len(textbook_arrays)
    for k, (a, b) in enumerate(zip(fast_arrays, textbook_arrays)):
        assert a.dtype == dtype and same_bytes(a, b), f"array {k} differs"
    np.testing.assert_array_equal(fast_losses, textbook_losses)
    assert fast_losses[0] != fast_losses[-1]        # training moved: the comparison says something


def counting(monkeypatch, cls, counts, name):
    original = cls.backward

    def backward(self, dy):
        counts[name] += 1
        return original(self, dy)
    monkeypatch.setattr(cls, "backward", backward)


@pytest.mark.parametrize("method", ["bp", "rai"])
def test_reference_switch_runs_every_layers_own_backward_at_every_step(moons, monkeypatch, method):
    """MINIRAI_REFERENCE=1: Linear.backward and Sigmoid.backward run for all 101 of each, every step."""
    monkeypatch.setenv("MINIRAI_REFERENCE", "1")
    counts = {"linear": 0, "sigmoid": 0}
    counting(monkeypatch, Linear, counts, "linear")
    counting(monkeypatch, Sigmoid, counts, "sigmoid")
    per_step = []

    def callback(step, _):
        per_step.append(dict(counts))
        counts.update(linear=0, sigmoid=0)

    model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)
    if method == "bp":
        fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train, iters=4,
            record_every=100, progress=False, callback=callback)
    else:
        trainer = RAI(model, moons.X_train, moons.y_train, BCE())
        trainer.fit(Rprop(trainer.parameters(), lr=0.1), 4, record_every=100, progress=False, callback=callback)
    assert per_step == [{"linear": 101, "sigmoid": 101}] * 4


def test_the_fast_path_skips_layer_methods_and_the_switch_brings_them_back(moons, monkeypatch):
    """By default fit does not call Linear.backward (the fast chain does its work); under reference() it does."""
    calls = {"linear": 0}
    counting(monkeypatch, Linear, calls, "linear")
    model = minirai.mlp([2, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train, iters=2, progress=False)
    assert calls["linear"] == 0
    with minirai.reference():
        fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train, iters=2,
            progress=False)
    assert calls["linear"] == 2 * 3


def test_reference_switch_from_the_environment_and_the_context(monkeypatch):
    monkeypatch.delenv("MINIRAI_REFERENCE", raising=False)
    assert not switches.reference_path()
    with minirai.reference():
        assert switches.reference_path()
        with minirai.reference(False):
            assert not switches.reference_path()
        assert switches.reference_path()
    monkeypatch.setenv("MINIRAI_REFERENCE", "1")
    assert switches.reference_path()
    monkeypatch.setenv("MINIRAI_REFERENCE", "yes please")
    with pytest.raises(ValueError, match="MINIRAI_REFERENCE must be 0 or 1"):
        switches.reference_path()


# -- a learner's own layer or optimizer rule runs as written on the fast path ------------------------------
class Square(Activation):
    """y = x²; backward dx = dy · 2x (a layer the fast path has no twin for)."""

    def forward(self, x):
        self.x = x
        self.y = x * x
        return self.y

    def derivative(self):
        return 2 * self.x


class SignSGD(minirai.SGD):
    """p ← p - lr · sign(g): a learner's rule (a subclass: the fast path must call its own step)."""

    def update(self, param, grad, state):
        param -= self.lr * np.sign(grad)


def test_own_layers_and_optimizer_subclasses_run_their_own_methods_on_the_fast_path(moons, monkeypatch):
    def train():
        model = minirai.Sequential(Linear(2, 6, rng=0, dtype=np.float64), Square(),
                                   Linear(6, 1, rng=1, dtype=np.float64), Sigmoid())
        model.pack()
        fit(model, BCE(), SignSGD(model.parameters(), lr=0.01), moons.X_train.astype(np.float64), moons.y_train,
            iters=5, progress=False)
        return [p for p, _ in model.parameters()]

    calls = {"square": 0}
    counting(monkeypatch, Square, calls, "square")
    fast = train()
    assert calls["square"] == 5
    with minirai.reference():
        textbook = train()
    assert all(same_bytes(a, b) for a, b in zip(fast, textbook))


# -- the short-cut below a vanished gradient -----------------------------------------------------------------
def deep_sigmoid_chain(dtype=np.float32):
    """A 60-layer sigmoid chain whose backward gradient vanishes to exact 0 (float32, strict IEEE)."""
    model = minirai.mlp([2] + [30] * 60 + [1], "sigmoid", "sigmoid", seed=4, dtype=dtype)
    X = np.random.default_rng(0).standard_normal((16, 2)).astype(dtype)
    y = (X[:, :1] > 0).astype(dtype)
    return model, X, y


def backward_once(model, X, y, runner):
    loss = BCE()
    loss.forward(runner.forward(X), y)
    runner.backward(loss.backward())


def test_vanished_gradients_skip_the_arithmetic_and_read_the_same(monkeypatch):
    """Below the first exactly-zero gradient, the fast chain writes zeros without the matmuls; every
    attribute then equals the textbook backward's, and hooks still run with the zeros."""
    reference, X, y = deep_sigmoid_chain()
    seen_reference = []
    reference.layers[0].register_hook(lambda layer, event, i, o: seen_reference.append((event, o.copy())))
    backward_once(reference, X, y, reference)
    model, _, _ = deep_sigmoid_chain()
    seen = []
    model.layers[0].register_hook(lambda layer, event, i, o: seen.append((event, o.copy())))
    calls = {"matmul": 0}
    from minirai.fast import chain as fast_chain
    original = fast_chain.linear_backward
    monkeypatch.setattr(fast_chain, "linear_backward",
                        lambda *args: calls.__setitem__("matmul", calls["matmul"] + 1) or original(*args))
    monkeypatch.setitem(fast_chain.FAST_LAYERS, Linear, (fast_chain.linear_forward, fast_chain.linear_backward,
                                                          fast_chain.linear_backward_zero))
    backward_once(model, X, y, Chain(model.layers))
    vanished = [i for i, layer in enumerate(model.layers) if isinstance(layer, Linear) and not layer.grad_output.any()]
    assert len(vanished) >= 5                                   # the chain really vanishes
    assert calls["matmul"] == 61 - len(vanished)                # those layers' products never ran
    for layer, ref in zip(model.layers, reference.layers):
        for name in ("x", "y", "grad_output", "grad_input"):
            np.testing.assert_array_equal(getattr(layer, name), getattr(ref, name), err_msg=name)
        for key in layer.grads:
            np.testing.assert_array_equal(layer.grads[key], ref.grads[key])
    assert [event for event, _ in seen] == ["forward", "backward"]
    np.testing.assert_array_equal(seen[1][1], seen_reference[1][1])
    assert not seen[1][1].any()


def test_zero_short_cut_overwrites_stale_gradients():
    """A layer skipped now still shows 0, not the gradient of an earlier backward (buffers are reused)."""
    model, _, _ = deep_sigmoid_chain()
    chain, first = Chain(model.layers), model.layers[0]
    for _ in range(2):
        backward_once(model, np.ones((16, 2), np.float32), np.ones((16, 1), np.float32), chain)
        assert not first.grads["W"].any() and not first.grad_input.any()
        first.grads["W"].fill(7.0)
        first.grad_input.fill(7.0)


def reuse_run(optimizer, tamper=None, iters=24, dtype=np.float32):
    """A full-batch fit of the vanishing 60-layer chain; every parameter, layer attribute and the history,
    plus how many Linear forwards the fast chain computed. ``tamper(step, model, X)``: a callback."""
    from minirai.fast import chain as fast_chain
    model, X, y = deep_sigmoid_chain(dtype)
    computed = {"linear": 0}
    original = fast_chain.linear_forward

    def counted(*args):
        computed["linear"] += 1
        return original(*args)

    hooked, seen = [], []

    def callback(step, model):         # what a learner's callback reads after each step, then the tampering
        seen.append(np.concatenate([getattr(layer, name).ravel() for layer in model.layers
                                    for name in ("x", "y", "grad_output", "grad_input")]))
        if tamper is not None:
            tamper(step, model, X, hooked)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(fast_chain.FAST_LAYERS, Linear, (counted, *fast_chain.FAST_LAYERS[Linear][1:]))
        history = fit(model, BCE(), optimizer(model.parameters()), X, y, iters=iters, record_every=5,
                      progress=False, callback=callback)
    arrays = [a for p, g in model.parameters() for a in (p, g)]
    return arrays + seen + [np.array(history["loss"][1:]), np.array(history["train_loss"])] + hooked, \
        computed["linear"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", [lambda p: Rprop(p, lr=0.1), lambda p: Adam(p, lr=0.01)],
                         ids=["rprop", "adam"])
def test_full_batch_bp_copies_back_unchanged_outputs_with_the_same_bytes(optimizer, dtype):
    """Where the gradient vanished, the bottom layers keep their weights, and with the same full batch
    the fast chain copies their outputs back instead of computing them: the run is the textbook's, bytes
    of every parameter, gradient and cached activation included, and it really skipped work."""
    results = {}
    for reference in (False, True):
        with minirai.reference(reference):
            results[reference] = reuse_run(optimizer, dtype=dtype)
    (fast, computed), (textbook, _) = results[False], results[True]
    assert all(same_bytes(a, b) for a, b in zip(fast, textbook))
    if dtype == np.float32:     # (float64's gradient does not vanish to 0 in 24 steps: nothing to copy back)
        assert computed < 0.8 * 61 * 24, f"the fast chain computed {computed} of {61 * 24} Linear forwards"


def tamper_weights(step, model, X, hooked):
    if step == 8:
        model.layers[0].params["W"][0, 0] += np.float32(1e-3)     # a bottom weight, changed in place
    if step == 12:
        model.layers[4].params["b"][...] = model.layers[4].params["b"].copy()   # same bytes: stays reused


def tamper_outputs(step, model, X, hooked):
    if step in (9, 15):
        for layer in model.layers:                    # the cached outputs scribbled over between steps
            layer.y[0, 0] = np.float32(np.nan)


def tamper_input(step, model, X, hooked):
    if step == 10:
        X[0, 0] += np.float32(0.5)                    # the full batch edited in place


def tamper_hook(step, model, X, hooked):
    def hook(layer, event, x, out):                   # a hook that changes the output, differently each step
        if event == "forward":
            out += np.float32(0.01 * len(hooked))
            hooked.append(out.copy())
    if step == 11:
        model.layers[6].register_hook(hook)


@pytest.mark.parametrize("tamper", [tamper_weights, tamper_outputs, tamper_input, tamper_hook])
def test_copied_back_outputs_follow_any_change_between_steps(tamper):
    """A callback that changes a bottom weight, scribbles over a cached output, edits the batch or adds a
    hook between steps: the fast chain notices (bytes compared, hooks checked) and gives the textbook's run."""
    results = {}
    for reference in (False, True):
        with minirai.reference(reference):
            results[reference] = reuse_run(lambda p: Rprop(p, lr=0.1), tamper)[0]
    assert len(results[False]) == len(results[True])
    assert all(same_bytes(a, b) for a, b in zip(results[False], results[True]))


@pytest.mark.parametrize("method", ["bp", "bp-tuned"])
def test_the_proposals_deep_bp_copies_back_most_linear_layers(moons, method):
    """docs/design.md's counts: in the proposal's deep BP run (Rprop) 73-77 of the 101 Linear layers are
    copied back at every step from step 5 on; in the tuned run (Xavier, Adam) 45."""
    from minirai.research.methods import TUNED_LR
    tuned = method == "bp-tuned"
    model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3, init="xavier" if tuned else "uniform")
    loss = BCE()
    optimizer = Adam(model.parameters(), lr=TUNED_LR) if tuned else Rprop(model.parameters(), lr=0.1)
    X, y = prepare_data(model, loss, moons.X_train, moons.y_train)
    counts = []
    with TrainingLoop() as loop:
        chain = loop.chain(model)
        for _ in range(30):
            with loop.arithmetic():
                loss.forward(chain.forward(X), y)
                chain.backward(loss.backward())
                loop.step(optimizer)
            counts.append(sum(1 for layer in model.layers[:chain.reused] if layer.params))
    low, high = (45, 45) if tuned else (73, 77)
    assert all(low <= count <= high for count in counts[5:]), counts


def test_a_forward_cut_short_keeps_no_copies():
    """A forward interrupted in the middle (Ctrl-C in a product) leaves the copies above it from an older
    forward: the chain drops them all, so the next forward gives the textbook's outputs."""
    model, X, y = deep_sigmoid_chain()
    chain = Chain(model.layers, model, reuse=True)
    for _ in range(3):
        backward_once(model, X, y, chain)
    assert chain.reused > 10
    model.layers[2].params["W"] *= np.float32(1.5)        # a reused layer changes ...
    forward, *rest = chain.steps[8]

    def interrupted(*args):
        raise KeyboardInterrupt
    chain.steps[8] = (interrupted, *rest)                  # ... and the forward stops above it
    with pytest.raises(KeyboardInterrupt):
        chain.forward(X)
    chain.steps[8] = (forward, *rest)
    chain.forward(X)
    outputs = [layer.y.copy() for layer in model.layers]
    with minirai.reference():
        model.forward(X)
    assert all(same_bytes(a, layer.y) for a, layer in zip(outputs, model.layers))


@pytest.mark.filterwarnings("ignore:invalid value encountered in matmul")   # the textbook's NaN, on purpose
def test_hooks_that_write_a_weight_and_arrays_replaced_or_reshaped():
    """What the copy-back must not trust: a forward hook that writes inf into a reused layer's weights
    between the forward and the backward (the short-cut's finiteness is checked again: NaN, as the
    textbook gives), a parameter replaced by a new array with the same bytes, an output reshaped in place."""
    def run(textbook):
        model, X, y = deep_sigmoid_chain()
        runner = model if textbook else Chain(model.layers, model, reuse=True)
        seen, reused = [], []
        with minirai.reference(textbook):
            for step in range(8):
                if step == 3:
                    W = model.layers[0].params["W"]
                    model.layers[0].params["W"] = W.copy()        # same bytes, another array
                if step == 4 and not textbook:
                    model.layers[4].y.shape = (-1,)               # the kept output's buffer, reshaped
                if step == 5:
                    def poison(layer, event, x, out):
                        if event == "forward":
                            model.layers[0].params["W"][0, 0] = np.inf
                    remove = model.layers[-1].register_hook(poison)
                if step == 6:
                    remove()
                    model.layers[0].params["W"][0, 0] = np.float32(0.5)
                backward_once(model, X, y, runner)
                seen += [a.copy() for layer in model.layers for a in (layer.y, layer.grad_input)]
                reused.append(getattr(runner, "reused", None))
        return seen, reused

    (fast, reused), (textbook, _) = run(False), run(True)
    assert reused[2] > 10 and reused[3] == 0            # reused, until the first weight is another array
    assert all(same_bytes(a, b) for a, b in zip(fast, textbook))
    assert np.isnan(textbook[5 * 2 * 122 + 1]).any()     # step 5: the textbook's input gradient is NaN


def test_mini_batches_keep_no_copies_of_layers():
    """A new batch every step: the chain compares the input, finds it new, and keeps no layer's copies
    (only the input's, to compare the next batch with)."""
    model, X, y = deep_sigmoid_chain()
    with TrainingLoop() as loop:
        chain = loop.chain(model)
        for step in range(4):
            rows = slice(4 * (step % 2), 4 * (step % 2) + 8)
            backward_once(model, X[rows], y[rows], chain)
    assert chain.short_cut[0] and chain.kept == [None] * len(model.layers) and chain.reused == 0
    backward_once(model, X[:8], y[:8], chain)          # a new batch again: nothing kept
    backward_once(model, X[:8], y[:8], chain)          # the same batch as the step before: copies kept ...
    assert chain.reused == 0
    backward_once(model, X[:8], y[:8], chain)          # ... and used at the third (the weights did not move)
    assert chain.reused > 10


# -- the cases a review found, and more small ones: fast == textbook, gradients and state included -----
def everything(trainer_or_model, optimizer):
    """Every parameter, gradient and optimizer-state array, for a byte comparison."""
    pairs = trainer_or_model.parameters()
    return [a for p, g in pairs for a in (p, g)] + [v for state in optimizer.state for v in state.values()]


SMALL = [2, 12, 12, 12, 12, 1]


@pytest.mark.parametrize("case", ["tanh-stacks", "relu-stacks-sgd", "reinit", "geometric-lam", "activation-cuts",
                                  "float32", "width-1"])
def test_small_rai_runs_agree_with_gradients_and_state(moons, case, stacked):
    def run():
        activation = {"tanh-stacks": "tanh", "relu-stacks-sgd": "relu"}.get(case, "sigmoid")
        dtype = np.float32 if case in ("float32", "width-1") else np.float64     # (float32: the one-pass sigmoid)
        sizes = [2, 1, 1, 1, 1, 1] if case == "width-1" else SMALL   # (width 1: NumPy sums a bias gradient pairwise)
        model = minirai.mlp(sizes, activation, "sigmoid", seed=2, dtype=dtype)
        options = {"reinit": dict(reinit_period=3), "geometric-lam": dict(lam=minirai.rai.geometric(0.1, 1.5, 2)),
                   "activation-cuts": dict(cuts="activation")}.get(case, {})
        trainer = RAI(model, moons.X_train.astype(dtype), moons.y_train, BCE(), **options)
        optimizer = (minirai.SGD(trainer.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
                     if case == "relu-stacks-sgd" else Rprop(trainer.parameters(), lr=0.05))
        trainer.fit(optimizer, 8, record_every=4, progress=False)
        assert bool(stacks_of(stacked)) == (not switches.reference_path())
        stacked.clear()
        return everything(trainer, optimizer)
    on_both_paths(run)


def test_sgd_in_chunks_agrees(moons, monkeypatch):
    """SGD (no kernel) over a packed run larger than a chunk: the NumPy update in pieces."""
    from minirai.fast import optim as fast_optim
    monkeypatch.setattr(fast_optim, "CHUNK_SIZE", 64)

    def run():
        model = minirai.mlp([2, 30, 30, 1], "tanh", "sigmoid", seed=0)
        optimizer = minirai.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        fit(model, BCE(), optimizer, moons.X_train, moons.y_train, iters=6, progress=False, batch_size=30)
        return everything(model, optimizer)
    on_both_paths(run)


def test_a_second_fit_after_the_hidden_losses_changed(moons):
    """The fast path is rebuilt at each fit: a hidden loss swapped between fits is used on both paths."""
    class HalfMSE(minirai.MSE):
        def _forward(self, pred, target):
            return 0.5 * super()._forward(pred, target)

        def _backward(self):
            grad = 0.5 * super()._backward()
            self.grad_target = -grad
            return grad

    def run():
        model = minirai.mlp(SMALL, "sigmoid", "sigmoid", seed=1, dtype=np.float64)
        trainer = RAI(model, moons.X_train.astype(np.float64), moons.y_train, BCE())
        optimizer = Rprop(trainer.parameters(), lr=0.05)
        trainer.fit(optimizer, 3, progress=False)
        trainer.hidden_losses = [HalfMSE() for _ in trainer.cuts]
        trainer.fit(optimizer, 3, progress=False)
        return everything(trainer, optimizer)
    on_both_paths(run)


def test_a_float64_upstream_gradient_on_float32_activations(moons):
    """A learner's loss may hand back float64: the sigmoid then promotes as the textbook does."""
    class Float64MSE(minirai.MSE):
        def _backward(self):
            return 2 * self.diff.astype(np.float64) / self.diff.size

    def run():
        model = minirai.mlp([2, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
        optimizer = Rprop(model.parameters(), lr=0.05)
        fit(model, Float64MSE(), optimizer, moons.X_train, moons.y_train.reshape(-1, 1).astype(np.float32),
            iters=4, progress=False)
        return everything(model, optimizer)
    on_both_paths(run)


def test_inf_activations_give_the_textbook_nan_not_zeros(moons):
    """Weights of 1e30 make inf activations while BCE (clipped) stays finite; the saturated output
    sigmoid passes back exact zeros, and x^T dy with x = inf must give the textbook's NaN, not 0."""
    def model():
        m = minirai.mlp([2, 4, 4, 1], "relu", "sigmoid", seed=0)
        for layer in m.layers:
            if "W" in layer.params:
                layer.params["W"][...] = np.abs(layer.params["W"]) * 1e30
                layer.params["b"][...] = 1e30
        return m

    results = []
    for make_runner in (lambda m: m, lambda m: Chain(m.layers, m)):
        m, loss = model(), BCE()
        runner = make_runner(m)
        with np.errstate(all="ignore"):
            assert np.isfinite(loss.forward(runner.forward(moons.X_train), moons.y_train.reshape(-1, 1)))
            runner.backward(loss.backward())
        assert np.isinf(m.layers[4].x).any() and not m.layers[4].grad_output.any()
        results.append([g.copy() for _, g in m.parameters()])
    for textbook, fast in zip(*results):
        assert same_bytes(np.isnan(textbook), np.isnan(fast))
    assert np.isnan(results[0][4]).any()              # the last Linear's dW: the NaN that must not vanish


def test_backward_in_eval_mode_is_refused_on_both_paths(moons):
    """A callback that leaves the model in eval mode: the next step's backward is a clear error on both paths."""
    for textbook in (False, True):
        model = minirai.mlp([2, 8, 1], "sigmoid", "sigmoid", seed=0)
        with minirai.reference(textbook), pytest.raises(RuntimeError, match="eval mode"):
            fit(model, BCE(), Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train, iters=3,
                progress=False, callback=lambda step, m: m.eval())


def test_an_own_optimizer_with_any_state_works_on_a_packed_model(moons):
    """A learner's optimizer keeps its state as it made it (a (1,) array here) and runs its own step."""
    class ScaledSGD(minirai.SGD):
        def init_state(self, param):
            return {"scale": np.ones(1, param.dtype)}

        def update(self, param, grad, state):
            param -= self.lr * state["scale"] * grad

    def run():
        model = minirai.mlp([2, 8, 8, 1], "tanh", "sigmoid", seed=0)
        optimizer = ScaledSGD(model.parameters(), lr=0.1)
        assert runs_of(optimizer) == [] and optimizer.state[0]["scale"].shape == (1,)
        fit(model, BCE(), optimizer, moons.X_train, moons.y_train, iters=3, progress=False)
        return everything(model, optimizer)
    on_both_paths(run)


# -- worker threads: the same numbers with any number of them -------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rai_with_worker_threads_gives_the_textbook_bytes(moons, dtype, stacked):
    """MINIRAI_THREADS / TrainingLoop(threads): the stacked blocks cut into pieces run side by side and the
    optimizer's runs are updated in pieces; the arrays are the textbook path's, bit for bit, for 1-3 threads
    (flush-to-zero is set in each worker: the deep net's subnormals would show otherwise)."""
    def run(threads, fast):
        model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3, dtype=dtype)
        trainer = RAI(model, moons.X_train.astype(dtype), moons.y_train, BCE())
        optimizer = Rprop(trainer.parameters(), lr=0.1)
        with TrainingLoop(threads, fast=fast) as loop:
            for _ in range(6):
                trainer.step(optimizer, loop=loop)
        return [p for p, _ in trainer.parameters()] + [v for s in optimizer.state for v in s.values()]

    textbook = run(1, fast=False)
    for threads in (1, 2, 3):
        stacked.clear()
        for k, (a, b) in enumerate(zip(run(threads, fast=True), textbook)):
            assert same_bytes(a, b), f"{threads} threads: array {k} differs"
        assert len(stacks_of(stacked)) == threads        # the 99 stackable blocks in as many stacks


def test_worker_threads_with_minibatch_rai_and_an_error_in_a_worker(moons, monkeypatch):
    """MiniBatchRAI on 2 threads gives 1 thread's bytes; an exception in a block run on a worker thread
    reaches the caller (and the step stops there)."""
    def run(threads):
        monkeypatch.setenv("MINIRAI_THREADS", str(threads))
        model = minirai.mlp([2, 8, 8, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=1)
        trainer = minirai.minibatch.MiniBatchRAI(model, moons.X_train, moons.y_train, BCE(), batch_size=16)
        optimizer = Adam(trainer.parameters(), lr=1e-2)
        trainer.fit(optimizer, 8, progress=False)
        return [p for p, _ in trainer.parameters()]
    for a, b in zip(run(1), run(2)):
        assert same_bytes(a, b)

    class Broken(Activation):
        fail = False

        def forward(self, x):
            if self.fail:
                raise RuntimeError("a learner's bug")
            self.x = self.y = x
            return x

        def derivative(self):
            return np.ones_like(self.x)

    model = minirai.Sequential(minirai.Linear(2, 4), minirai.Tanh(), minirai.Linear(4, 4), Broken(),
                               minirai.Linear(4, 4), minirai.Tanh(), minirai.Linear(4, 1), minirai.Sigmoid())
    model.pack()
    trainer = RAI(model, moons.X_train, moons.y_train, BCE())
    Broken.fail = True
    with TrainingLoop(2) as loop, pytest.raises(RuntimeError, match="a learner's bug"):
        trainer.step(Adam(trainer.parameters()), loop=loop)


def _two_thread_steps(_=None):
    d = data.moons(n_samples=30, n_test=5)
    model = minirai.mlp([2, 6, 6, 6, 6, 1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, d.X_train, d.y_train, BCE())
    with TrainingLoop(2) as loop:
        return [trainer.step(Rprop(trainer.parameters(), lr=0.1), loop=loop) for _ in range(2)]


def test_worker_threads_after_a_fork():
    """A forked process (multiprocessing's and joblib's workers on Linux) inherits none of the worker threads:
    its steps make threads of their own instead of waiting for the parent's for ever."""
    import multiprocessing
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    here = _two_thread_steps()                       # the parent's pool exists now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_two_thread_steps, (None,)).get(timeout=60)
    assert here == there


def test_bp_with_worker_threads_gives_one_threads_bytes(moons, monkeypatch):
    """Chained BP's independent work is its optimizer's runs: updated in pieces on 2 threads, the same bytes;
    BLAS keeps one thread in every case (two threads would round differently, and spin on a busy machine)."""
    from threadpoolctl import threadpool_info

    def run(threads):
        monkeypatch.setenv("MINIRAI_THREADS", str(threads))
        model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)
        seen = []
        fit(model, BCE(), Adam(model.parameters(), lr=1e-3), moons.X_train, moons.y_train, iters=4, progress=False,
            callback=lambda step, net: seen.append({p["num_threads"] for p in threadpool_info()
                                                     if p["user_api"] == "blas"}))
        assert all(threads_seen == {1} for threads_seen in seen)
        return [p for p, _ in model.parameters()]
    for a, b in zip(run(1), run(2)):
        assert same_bytes(a, b)


def test_a_threads_function_changes_the_workers_between_steps_and_not_the_numbers(moons, stacked):
    """TrainingLoop(threads=f): f is asked before each step of fit/RAI.fit (a run taking the cores others
    leave); RAI's fast twin is made again for a new count (its stacks cut for that many threads), and the
    run's parameters, optimizer state and history have the bytes of a run on one thread."""
    counts = iter([1] * 5 + [2] * 5 + [1] * 20)
    asked: list[int] = []

    def threads() -> int:
        asked.append(next(counts))
        return asked[-1]

    def run(threads):
        model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)
        trainer = RAI(model, moons.X_train, moons.y_train, BCE())
        optimizer = Rprop(trainer.parameters(), lr=0.1)
        history = trainer.fit(optimizer, 12, record_every=4, progress=False, threads=threads)
        return [p for p, _ in trainer.parameters()] + [v for s in optimizer.state for v in s.values()], history

    stacked.clear()
    (arrays, history), (ones, one_history) = run(threads), run(1)
    assert len(asked) == 13                              # when the loop starts, then before each of 12 steps
    # one twin for each change (1, 2, then 1 thread: stacks cut in one and two), and one for the run on 1
    assert [len(stacks_of([twin])) for twin in stacked] == [1, 2, 1, 1]
    for k, (a, b) in enumerate(zip(arrays, ones)):
        assert same_bytes(a, b), f"array {k} differs"
    assert np.array_equal(history["relaxed_loss"], one_history["relaxed_loss"])

    model = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)
    loop = TrainingLoop(lambda: 2)
    trainer = RAI(model, moons.X_train, moons.y_train, BCE())
    assert loop.threads == 2 and loop.relaxed(trainer).workers == 2
    answers, workers = iter([1, 2, 2, 1, 2]), []
    fitted = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)
    original = TrainingLoop.step

    def step(loop, optimizer):               # the workers each BP step's optimizer runs on
        workers.append(loop.workers)
        original(loop, optimizer)
    TrainingLoop.step = step
    try:
        fit(fitted, BCE(), Adam(fitted.parameters(), lr=1e-3), moons.X_train, moons.y_train, iters=4,
            progress=False, threads=lambda: next(answers))
    finally:
        TrainingLoop.step = original
    assert workers == [2, 2, 1, 2]           # asked when the loop starts (1), then before each step
    plain = minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)
    fit(plain, BCE(), Adam(plain.parameters(), lr=1e-3), moons.X_train, moons.y_train, iters=4, progress=False)
    assert all(same_bytes(a, b) for (a, _), (b, _) in zip(fitted.parameters(), plain.parameters()))


def test_a_bad_thread_count_is_refused_where_it_is_given(moons):
    model = minirai.mlp([2, 4, 1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, moons.X_train, moons.y_train, BCE())
    with pytest.raises(ValueError, match="fit: threads"):
        fit(model, BCE(), Rprop(model.parameters()), moons.X_train, moons.y_train, iters=1, threads=0)
    with pytest.raises(TypeError, match="RAI.fit: threads must be a positive integer or a function of no "
                                        "arguments that returns one, got '2' \\(str\\)"):
        trainer.fit(Rprop(trainer.parameters()), 1, progress=False, threads="2")
    with pytest.raises(TypeError, match="RAI.fit: threads must be a function of no arguments \\(or a positive "
                                        "integer\\), got <lambda>\\(n\\)"):
        trainer.fit(Rprop(trainer.parameters()), 1, progress=False, threads=lambda n: 2)
    with pytest.raises(ValueError, match=r"RAI.fit: threads\(\) \(the threads function's answer\).*got 0"):
        trainer.fit(Rprop(trainer.parameters()), 1, progress=False, threads=lambda: 0)
    with pytest.raises(ValueError, match=r"fit: threads\(\) \(the threads function's answer\)"):
        fit(model, BCE(), Rprop(model.parameters()), moons.X_train, moons.y_train, iters=1, threads=lambda: -1)
    with pytest.raises(TypeError, match="TrainingLoop: threads must be a positive integer"):
        TrainingLoop(2.0)


def test_a_new_thread_count_lets_go_of_the_old_twins_arrays(moons):
    """When the thread count changes, the old twin's stacked arrays (which the layers view) are let go of
    before the new twin makes its own: the peak is one twin's, not two."""
    import tracemalloc

    def peak(counts):
        model = minirai.mlp([2] + [64] * 12 + [1], "sigmoid", "sigmoid", seed=3)
        X = np.tile(moons.X_train, (20, 1))
        trainer = RAI(model, X, np.tile(moons.y_train, 20), BCE())
        optimizer = Rprop(trainer.parameters(), lr=0.1)
        answers = iter(counts)
        tracemalloc.start()
        with TrainingLoop(lambda: next(answers)) as loop:        # (asked once here, then before each step)
            for _ in range(len(counts) - 1):
                trainer.step(optimizer, loop=loop)
                loop.adapt()
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top
    peak([2] * 3)                            # (what a first run allocates once: kernels, thread pools)
    fixed, changing = peak([2] * 6), peak([2, 2, 1, 1, 2, 2])
    assert changing < 1.2 * fixed, (changing, fixed)       # keeping the old twin's arrays: about 1.45x


@pytest.mark.parametrize("piece_bytes", [None, 1, 3 * 100 * 16 * 4, 5 * 100 * 16 * 4])
def test_a_stack_run_in_pieces_leaves_every_layer_the_textbook_arrays(moons, monkeypatch, stacked, piece_bytes):
    """A stack that ends with a Linear layer runs in pieces that fill whole-stack arrays: after three steps
    every layer's x, y, grad_output and grad_input, the trainer's outputs, both parts of every table
    gradient, the hidden losses and each step's relaxed loss have the textbook path's bytes, with the
    stack as one piece, in pieces of one block, of three, and of five, five and two."""
    from minirai.fast import stacking
    if piece_bytes is not None:
        monkeypatch.setattr(stacking, "PIECE_BYTES", piece_bytes)

    def run():
        model = minirai.mlp([2] + [16] * 13 + [1], "sigmoid", "sigmoid", seed=4)
        trainer = RAI(model, moons.X_train.astype(np.float32), moons.y_train, BCE())
        optimizer = Rprop(trainer.parameters(), lr=0.1)
        with TrainingLoop() as loop:
            losses = [trainer.step(optimizer, loop=loop) for _ in range(3)]
        if not switches.reference_path():
            group, = stacked[-1].groups
            assert [piece.b - piece.a for piece in group.pieces] == \
                {None: [12], 1: [1] * 12, 19200: [3] * 4}.get(piece_bytes, [5, 5, 2])
        arrays = [getattr(layer, name) for layer in model.layers for name in ("x", "y", "grad_output", "grad_input")]
        arrays += trainer.outputs + trainer.grad_tables_as_input + trainer.grad_tables_as_target + trainer.hidden_values
        return [np.array(a) for a in arrays] + everything(trainer, optimizer) + [np.array(losses)]
    on_both_paths(run)


# -- keep_activations=False: the stacked blocks keep no activations; the same numbers, less memory ---------
@pytest.mark.parametrize("piece_bytes", [None, 1, 3 * 100 * 16 * 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_activations_false_trains_the_textbook_numbers(moons, monkeypatch, stacked, dtype, piece_bytes):
    """Weights, tables, their gradients, Rprop's state and the history equal the textbook path's, with the
    stack run whole, one block at a time, and in pieces of a few blocks (its table gradients then added
    across pieces); and after fit the stacked blocks' layers and the trainer hold none of their arrays."""
    from minirai.fast import stacking
    if piece_bytes is not None:
        monkeypatch.setattr(stacking, "PIECE_BYTES", piece_bytes)

    def run(keep):
        def arrays():
            model = minirai.mlp([2] + [16] * 13 + [1], "sigmoid", "sigmoid", seed=4, dtype=dtype)
            trainer = RAI(model, moons.X_train.astype(dtype), moons.y_train, BCE(), keep_activations=keep)
            optimizer = Rprop(trainer.parameters(), lr=0.1)
            history = trainer.fit(optimizer, 9, record_every=4, progress=False)
            if not keep and not switches.reference_path():
                group, = stacked[-1].groups
                assert group.lean and (group.first, group.count) == (1, 12)
                sizes = {piece.b - piece.a for piece in group.pieces}
                assert sizes == {{None: 12, 1: 1}.get(piece_bytes, 6 if dtype == np.float32 else 3)}
                blocks = trainer.blocks[1:13]
                assert all(layer.x is None and layer.y is None and layer.grad_output is None
                           and layer.grad_input is None for block in blocks for layer in block.layers)
                assert trainer.outputs[1:13] == [None] * 12 and trainer.grad_tables_as_input[1:12] == [None] * 11
            return everything(trainer, optimizer) + [np.asarray(history["relaxed_loss"]),
                                                     np.asarray(history["chained_loss"])]
        return arrays()

    lean = on_both_paths(lambda: run(False))
    with minirai.reference():
        kept = run(True)
    assert all(same_bytes(a, b) for a, b in zip(lean, kept))


def test_keep_activations_false_memory_grows_with_depth_only_by_parameters_and_state(moons, monkeypatch):
    """tracemalloc's peak over building a wide-ish RAI run (n = 2048, width 128) and taking 4 steps, at two
    depths: with keep_activations=False, 8 more blocks cost what their weights, tables, gradients and
    Rprop's state take (to within one (N, D) array) and nothing for activations; the whole run stays
    under that plus twenty-four (N, D) arrays (a piece's working arrays, the unstacked first and last
    blocks' and their losses'). Keeping the activations costs several arrays per block. Pieces of one
    block, at both depths. (A first run, untraced, imports and compiles what a step needs: tracemalloc
    counts Python's allocations too.)"""
    import tracemalloc

    from minirai.fast import stacking
    monkeypatch.setattr(stacking, "PIECE_BYTES", 1)

    X = np.random.default_rng(0).standard_normal((2048, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    warm = RAI(minirai.mlp([2, 4, 4, 4, 1], "sigmoid", "sigmoid", seed=0), X, y, BCE(), keep_activations=False)
    warm.fit(Rprop(warm.parameters(), lr=0.1), 2, record_every=1, progress=False)
    table = 2048 * 128 * 4

    def run(keep, depth):
        """(peak bytes, bytes of parameters, tables, their gradients and Rprop's state)."""
        tracemalloc.start()
        try:
            model = minirai.mlp([2] + [128] * depth + [1], "sigmoid", "sigmoid", seed=0)
            trainer = RAI(model, X, y, BCE(), keep_activations=keep)
            optimizer = Rprop(trainer.parameters(), lr=0.1)
            trainer.fit(optimizer, 4, record_every=2, progress=False)      # (records: a relaxed and a chained forward)
            return tracemalloc.get_traced_memory()[1], 4 * 4 * sum(p.size for p, _ in trainer.parameters())
        finally:
            tracemalloc.stop()
    (lean8, held8), (lean16, held16) = run(False, 8), run(False, 16)
    (kept8, _), (kept16, _) = run(True, 8), run(True, 16)
    assert lean16 - lean8 <= held16 - held8 + table, ((lean16 - lean8) / 2**20, (held16 - held8) / 2**20)
    assert lean16 <= held16 + 24 * table, (lean16 / 2**20, held16 / 2**20)
    assert kept16 - kept8 >= held16 - held8 + 3 * 8 * table, ((kept16 - kept8) / 2**20, (held16 - held8) / 2**20)


def test_keep_activations_false_refuses_a_gradient_recorder_and_checks_its_value(moons):
    model = minirai.mlp([2, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, moons.X_train, moons.y_train, BCE(), keep_activations=False)
    optimizer = Rprop(trainer.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="RAI.fit: a GradientRecorder.*keep_activations=False"):
        trainer.fit(optimizer, 2, progress=False, recorder=minirai.inspect.GradientRecorder(every=1))
    with TrainingLoop() as loop, pytest.raises(ValueError, match="RAI.step: a GradientRecorder"):
        trainer.step(optimizer, minirai.inspect.GradientRecorder(every=1), loop=loop)
    with pytest.raises(TypeError, match="keep_activations must be True or False, got 'no'"):
        RAI(model, moons.X_train, moons.y_train, BCE(), keep_activations="no")


def test_keep_activations_false_says_where_it_cannot_drop_them(moons):
    """Blocks cut after their activation (stacks that end with a Sigmoid) keep their arrays: a warning says
    so; the proposal's cuts after every Linear drop them without a word."""
    import warnings

    def fit(cuts):
        model = minirai.mlp([2, 8, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
        trainer = RAI(model, moons.X_train, moons.y_train, BCE(), cuts=cuts, keep_activations=False)
        trainer.fit(Rprop(trainer.parameters(), lr=0.1), 2, progress=False)
    with pytest.warns(UserWarning, match=r"keep_activations=False\): 3 stacked blocks keep their activations"):
        fit("activation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit("linear")


def test_a_checkpoint_keeps_keep_activations(moons, tmp_path):
    model = minirai.mlp([2, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, moons.X_train, moons.y_train, BCE(), keep_activations=False)
    trainer.fit(Rprop(trainer.parameters(), lr=0.1), 2, progress=False)
    minirai.save(trainer, tmp_path / "run.npz")
    assert minirai.load(tmp_path / "run.npz").keep_activations is False


@pytest.mark.parametrize("sizes, n, dtype, pieces", [
    (DEEP, 100, np.float32, [13] * 7 + [8]),           # docs/design.md: "13 of the deep net's 99 blocks"
    (DEEP, 100, np.float64, [6] * 16 + [3]),
    ([2] + [512] * 20 + [1], 2048, np.float32, [1] * 19),   # "one block of the wide net"
])
def test_the_pieces_the_docs_name(sizes, n, dtype, pieces):
    """A piece holds as many blocks as keep its arrays under 512 KiB, the last one shorter."""
    from minirai.fast.stacking import FastRAI
    X = np.random.default_rng(0).standard_normal((n, 2)).astype(dtype)
    y = (X[:, 0] > 0).astype(np.int64)
    trainer = RAI(minirai.mlp(sizes, "sigmoid", "sigmoid", seed=0, dtype=dtype), X, y, BCE())
    group, = FastRAI(trainer).groups
    assert [piece.b - piece.a for piece in group.pieces] == pieces
