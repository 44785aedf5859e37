"""Layer hooks: ``layer.register_hook(fn)`` calls ``fn(layer, event, inputs, outputs)``.

``event`` is "forward" (inputs = x, outputs = y) or "backward" (inputs = dy, outputs = dx);
Sequential.forward/backward call the hooks, so they run during ``fit`` and in RAI blocks.
"""
import numpy as np
import pytest
from conftest import stacks_of
from minirai.fast.stacking import plan

import minirai
from minirai import data
from minirai.inspect import GradientRecorder
from minirai.rai import RAI
from minirai.train import fit


@pytest.fixture(scope="module")
def moons():
    return data.moons(n_samples=30, n_test=5)


def small_net():
    """Linear(2,8) Tanh Linear(8,8) Tanh Linear(8,1) Sigmoid."""
    return minirai.mlp([2, 8, 8, 1], "tanh", "sigmoid", seed=0)


# -- 8. what a hook sees ---------------------------------------------------------------------------
def test_hook_sees_forward_and_backward_during_fit(moons):
    """Forward: (x, y) with y is layer.y and x the previous layer's output; backward: (dy, dx) with
    dx is layer.grad_input, dy the next layer's dx, and layer.grads already set for this dy."""
    model = small_net()
    before, layer, after = model.layers[1], model.layers[2], model.layers[3]
    events = []

    def hook(hooked, event, inputs, outputs):
        assert hooked is layer
        if event == "forward":
            assert outputs is layer.y and inputs is layer.x and inputs is before.y
            assert np.allclose(outputs, inputs @ layer.params["W"] + layer.params["b"], atol=1e-6)
        else:
            assert event == "backward"
            assert outputs is layer.grad_input and inputs is layer.grad_output and inputs is after.grad_input
            assert np.allclose(outputs, inputs @ layer.params["W"].T, atol=1e-6)           # dx = dy W^T
            assert np.allclose(layer.grads["W"], layer.x.T @ inputs, atol=1e-6)            # dW = x^T dy
        events.append((event, inputs.shape, outputs.shape))

    remove = layer.register_hook(hook)
    optimizer = minirai.Rprop(model.parameters(), lr=0.1)
    fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=3, record_every=1, progress=False)
    backward = [e for e in events if e[0] == "backward"]
    forward = [e for e in events if e[0] == "forward"]
    assert backward == [("backward", (30, 8), (30, 8))] * 3                 # one per step
    assert forward == [("forward", (30, 8), (30, 8))] * (3 + 4)            # 3 steps + 4 evaluations (0..3)

    remove()
    assert layer.hooks == []
    remove()                                                                 # twice: harmless
    fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=2, progress=False)
    assert len(events) == 10, "a removed hook was still called"


def test_hooks_run_in_registration_order_and_only_through_sequential(moons):
    """Two hooks run in the order registered; calling layer.forward directly runs none."""
    model = small_net()
    order = []
    model.layers[0].register_hook(lambda layer, event, x, y: order.append(("a", event)))
    model.layers[0].register_hook(lambda layer, event, x, y: order.append(("b", event)))
    model.layers[0].forward(moons.X_train)
    assert order == []
    model.forward(moons.X_train)
    model.backward(np.ones((30, 1), np.float32))
    assert order == [("a", "forward"), ("b", "forward"), ("a", "backward"), ("b", "backward")]


def repeated_net():
    """2-[8]x7-1 sigmoid, float64: RAI blocks 1..6 are identical [Sigmoid, Linear(8, 8)]."""
    return minirai.mlp([2] + [8] * 7 + [1], "sigmoid", "sigmoid", seed=1, dtype=np.float64)


def rai_run(hooked: bool, steps: int = 12):
    ds = data.moons(n_samples=41, n_test=5, dtype=np.float64)    # 41: see test_inspect (Rprop and ties)
    model = repeated_net()
    events = []
    if hooked:   # before the trainer is built: the trainer decides what to stack when it is made
        model.layers[5].register_hook(lambda layer, event, x, y: events.append((event, x, y)))
    rai = RAI(model, ds.X_train, ds.y_train, minirai.BCE(), lam=0.7)
    history = rai.fit(minirai.Rprop(rai.parameters(), lr=0.1), steps, record_every=1, progress=False)
    return rai, history, events


def test_a_hooked_block_is_not_stacked_and_gives_the_same_results():
    """A hook on block 3's Sigmoid: block 3 leaves the stack, the hook runs in RAI steps, losses unchanged."""
    plain, plain_history, _ = rai_run(hooked=False)
    rai, history, events = rai_run(hooked=True)
    assert rai.blocks[3].layers[0] is rai.model.layers[5]
    assert plan(plain) == [(1, 6)]
    assert plan(rai) == [(1, 2), (4, 3)]                                     # block 3 runs alone
    backward = [e for e in events if e[0] == "backward"]
    assert len(backward) == 12                                               # once per RAI step
    table = rai.tables[2]                                                    # block 3 reads table 3
    assert sum(1 for event, x, _ in events if event == "forward" and x is table) >= 12
    assert all(dx.shape == table.shape for _, _, dx in backward)
    assert rai.grad_tables_as_input[2] is rai.model.layers[5].grad_input    # its dx is the table's input part
    for name in ("relaxed_loss", "chained_loss"):
        np.testing.assert_allclose(history[name], plain_history[name], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(history["identity_gap"], plain_history["identity_gap"], rtol=1e-10, atol=1e-300)


# -- 9. a hook at a chosen step --------------------------------------------------------------------------
def test_hook_at_a_chosen_step_with_the_fit_callback(moons):
    """The docs' pattern: the callback keeps the step number, the hook acts only at step K's backward.

    What it sees equals what a GradientRecorder records at step K (‖dy‖ of that layer).
    """
    K = 4
    model = small_net()
    state = {"step": 1}           # the step about to run (fit calls callback(step, ...) after each one)
    seen = []

    def hook(layer, event, dy, dx):
        if event == "backward" and state["step"] == K:
            seen.append((state["step"], float(np.linalg.norm(dy)), dy.shape, dx.shape))

    def callback(step, model):
        state["step"] = step + 1

    model.layers[2].register_hook(hook)
    recorder = GradientRecorder(every=K)
    fit(model, minirai.BCE(), minirai.Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train,
        iters=6, progress=False, callback=callback, recorder=recorder)
    assert [(step, dy_shape, dx_shape) for step, _, dy_shape, dx_shape in seen] == [(K, (30, 8), (30, 8))]
    assert recorder.steps == [1, K]
    np.testing.assert_allclose(seen[0][1], recorder["output_grad"][1][2], rtol=1e-5)


def test_hook_at_a_chosen_step_with_a_counter_under_rai(moons):
    """Under RAI a backward event happens once per step, so counting them gives the step number."""
    K = 3
    model = small_net()
    count, seen = [0], []

    def hook(layer, event, dy, dx):
        if event == "backward":
            count[0] += 1
            if count[0] == K:
                seen.append(float(np.linalg.norm(dy)))

    model.layers[2].register_hook(hook)
    rai = RAI(model, moons.X_train, moons.y_train, minirai.BCE())
    recorder = GradientRecorder(every=K)
    rai.fit(minirai.Rprop(rai.parameters(), lr=0.1), 5, progress=False, recorder=recorder)
    assert count[0] == 5 and len(seen) == 1
    assert recorder.steps == [1, K]
    assert seen[0] > 0                                   # the hidden loss after layer 2 is no longer 0 at step 3
    np.testing.assert_allclose(seen[0], recorder["output_grad"][1][2], rtol=1e-5)


def test_hook_added_after_the_trainer_is_built_is_called_in_rai_steps(stacked):
    """A hook registered on a stacked layer after a fast step still runs: its block leaves the stack."""
    import minirai
    from minirai.rai import RAI
    from minirai.train import TrainingLoop
    d = minirai.data.moons(n_samples=20, n_test=5)
    model = minirai.mlp([2] + [8] * 5 + [1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, d.X_train, d.y_train, minirai.BCE())
    optimizer = minirai.Rprop(trainer.parameters(), lr=0.1)
    with TrainingLoop(fast=True) as loop:
        trainer.step(optimizer, loop=loop)
        assert stacks_of(stacked) == [(1, 4)]                            # blocks 1..4 run as one stack
        calls = []
        model.layers[4].register_hook(lambda layer, event, inputs, outputs: calls.append(event))
        trainer.step(optimizer, loop=loop)
    assert calls == ["forward", "backward"]
    assert len(stacked) == 2 and stacks_of(stacked) == [(3, 2)]         # remade: block 2 (layers 3, 4) runs alone
