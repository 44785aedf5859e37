"""minirai.inspect: the GradientRecorder measures the vanishing gradient, and measures it right.

The deep net is the proposal's: 2-[100]x100-1, a sigmoid after every Linear, seed 3, on the
two moons. Its two runs (BP and RAI, Rprop lr 0.1) are made once per module and shared.
"""
import numpy as np
import pytest
from conftest import stacks_of

import minirai
from minirai import data, inspect
from minirai.inspect import QUANTITIES, GradientRecorder, squared_norms
from minirai.rai import RAI
from minirai.train import TrainingLoop, fit

DEEP = [2] + [100] * 100 + [1]
BP_STEPS, RAI_STEPS, EVERY = 100, 150, 10


def deep_net():
    return minirai.mlp(DEEP, "sigmoid", "sigmoid", seed=3)


@pytest.fixture(scope="module")
def moons():
    return data.moons()


@pytest.fixture(scope="module")
def deep_bp(moons):
    """A GradientRecorder of 100 BP steps of the deep net (records at 1, 10, ..., 100)."""
    model = deep_net()
    recorder = GradientRecorder(every=EVERY)
    fit(model, minirai.BCE(), minirai.Rprop(model.parameters(), lr=0.1), moons.X_train, moons.y_train,
        iters=BP_STEPS, record_every=BP_STEPS, progress=False, recorder=recorder)
    return recorder


@pytest.fixture(scope="module")
def deep_rai(moons):
    """A GradientRecorder of 150 RAI steps of the deep net (records at 1, 10, ..., 150)."""
    model = deep_net()
    rai = RAI(model, moons.X_train, moons.y_train, minirai.BCE())
    recorder = GradientRecorder(every=EVERY)
    rai.fit(minirai.Rprop(rai.parameters(), lr=0.1), RAI_STEPS, record_every=RAI_STEPS, progress=False,
            recorder=recorder)
    return recorder


def first_last(row):
    """Mean weight-gradient norm of the first 10 and of the last 10 Linear layers."""
    return row[:10].mean(), row[-10:].mean()


# -- 1. the vanishing gradient, measured ---------------------------------------------------------
def test_bp_gradient_vanishes_to_exact_zero_in_the_first_layers(deep_bp):
    """Deep sigmoid BP (float32): the first 10 layers get exactly 0 at every record, the last 10 do not.

    Measured (flush-to-zero of subnormals during the steps, the default): 60 of 101 layers are
    exactly 0 at step 1, 79 at step 100 (69 at step 100 with ``minirai.strict_ieee()``: the first
    10 are exactly 0 in strict IEEE float32 too).
    """
    grads = deep_bp["weight_grad"]
    for step, row in zip(deep_bp.steps, grads):
        first, last = first_last(row)
        assert first == 0.0, f"step {step}: the first 10 layers got a gradient ({first:.3g})"
        assert last > 0.0, f"step {step}: the last 10 layers got none"
        assert (row == 0).sum() >= 50, f"step {step}: only {(row == 0).sum()} layers vanished"
    assert (grads[:, -1] > 0).all()          # the output layer always learns


def test_the_counts_the_docs_quote(deep_bp):
    """docs/results.md and docs/debugging.md: 60 of the 101 Linear layers get exactly 0 at step 1, 79 at step 100."""
    from pathlib import Path

    from minirai.fast import denormals
    if not denormals.available():
        pytest.skip(f"the counts are those of a step that flushes subnormals: {denormals.unavailable_reason()}")
    zeros = (deep_bp["weight_grad"] == 0).sum(axis=1)
    assert (deep_bp.steps[0], deep_bp.steps[-1]) == (1, BP_STEPS)
    assert (int(zeros[0]), int(zeros[-1])) == (60, 79)
    docs = Path(__file__).resolve().parent.parent / "docs"
    assert "60 of 101 layers at step 1, 79 at step 100" in (docs / "results.md").read_text(encoding="utf-8")
    debugging = " ".join((docs / "debugging.md").read_text(encoding="utf-8").split())
    assert "60 of the 101 Linear layers get a weight gradient of exactly 0 at step 1 and 79 at step 100" in debugging


def test_rai_gradient_reaches_every_layer(deep_rai):
    """Same net under RAI: at step 150 every layer has a gradient, first10/last10 within 100x.

    Measured at step 150: first10 3.3e-3, last10 3.5e-3 (ratio 0.96); every layer > 1e-5.
    (At step 300 minirai measures 6.5e-5 vs 3.2e-3; a PyTorch replica gives 7.7e-5 vs 2.1e-3.)
    """
    assert deep_rai.steps[-1] == RAI_STEPS
    last = deep_rai["weight_grad"][-1]
    assert (last > 0).all(), f"layers without gradient: {np.flatnonzero(last == 0)}"
    first10, last10 = first_last(last)
    assert 1e-2 < first10 / last10 < 1e2, (first10, last10)


def test_rai_weights_start_at_zero_and_the_gradient_front_moves_one_layer_per_step(deep_rai):
    """RAI step 1: every weight gradient is exactly 0 (tables = forward pass); step k: the last k-1 layers.

    Only the output loss is nonzero at step 1, so only the last table gets a gradient. Each step
    the tables that moved make one more hidden loss nonzero, one block further from the output.
    """
    assert deep_rai.steps[0] == 1
    weight, bias, tables = deep_rai["weight_grad"], deep_rai["bias_grad"], deep_rai["table_grad"]
    assert (weight[0] == 0).all() and (bias[0] == 0).all()
    assert np.flatnonzero(tables[0]).tolist() == [100]        # only the table before the output sigmoid
    for step, row in zip(deep_rai.steps, weight):
        if step <= 100:
            expected = np.arange(101) >= 101 - (step - 1)
            np.testing.assert_array_equal(row > 0, expected, err_msg=f"step {step}")


# -- 2. what is recorded ----------------------------------------------------------------------------
def test_recorded_shapes_steps_and_summary(deep_bp, deep_rai):
    """records x 101 Linear layers, x 202 layers, x 101 cuts (0 for BP); steps 1 and multiples of every."""
    for recorder, steps in ((deep_bp, BP_STEPS), (deep_rai, RAI_STEPS)):
        records = 1 + steps // EVERY
        assert recorder.steps == [1] + list(range(EVERY, steps + 1, EVERY))
        assert len(recorder) == records
        assert recorder["weight_grad"].shape == recorder["bias_grad"].shape == (records, 101)
        assert recorder["output_grad"].shape == recorder["activation"].shape == (records, 202)
        assert recorder.linear_layers == list(range(0, 202, 2))
    for name in ("table_grad", "table_grad_input", "table_grad_target"):
        assert deep_rai[name].shape == (len(deep_rai), 101)
        assert deep_bp[name].shape == (len(deep_bp), 0)
    assert len(deep_rai.cuts) == 101 and deep_bp.cuts == []
    for name in ("output_grad", "activation"):             # every layer was run: no NaN
        assert np.isfinite(deep_bp[name]).all() and np.isfinite(deep_rai[name]).all()
    summary = deep_rai.summary()
    assert set(summary) == {"grad_profile_steps", "grad_profile_first", "grad_profile_last"}
    assert summary["grad_profile_steps"] == [1, RAI_STEPS]
    assert summary["grad_profile_last"] == deep_rai.profile("weight_grad").tolist()
    assert len(summary["grad_profile_first"]) == 101 and not any(summary["grad_profile_first"])
    assert GradientRecorder().summary() == {}


def test_every_one_records_every_step():
    """every=1 wants every step; every=3 wants 1, 3, 6, 9."""
    assert all(GradientRecorder(every=1).wants(s) for s in range(1, 20))
    assert [s for s in range(1, 11) if GradientRecorder(every=3).wants(s)] == [1, 3, 6, 9]


# -- 3. stacked and per-block paths record the same --------------------------------------------------
def repeated_net():
    """2-[8]x7-1 sigmoid net in float64: blocks 1..6 are identical [Sigmoid, Linear(8, 8)]."""
    return minirai.mlp([2] + [8] * 7 + [1], "sigmoid", "sigmoid", seed=1, dtype=np.float64)


def rai_recording(textbook, steps=12, stacked=None):
    # 41 examples, not 40: with balanced classes some bias gradients cancel to exactly 0 in exact
    # arithmetic, leaving 1e-18 of rounding noise whose sign depends on the summation order, and
    # Rprop turns that sign into a full 0.1 step, so the two paths would part after 3 steps.
    ds = data.moons(n_samples=41, n_test=5, dtype=np.float64)
    rai = RAI(repeated_net(), ds.X_train, ds.y_train, minirai.BCE(), lam=0.7)
    recorder = GradientRecorder(every=1)
    with minirai.reference(textbook):
        rai.fit(minirai.Rprop(rai.parameters(), lr=0.1), steps, record_every=steps, progress=False,
                recorder=recorder)
    return rai, recorder


def test_stacked_and_per_block_paths_record_the_same_norms(stacked):
    """The fast path (blocks 1..6 as one stack) and the textbook path give the same recorder arrays, bit for
    bit: the fast path leaves each stacked block's own layers views of their slice of the stack."""
    _, fast = rai_recording(textbook=False)
    groups = stacks_of(stacked)                       # blocks 1..6: one stack, or one per worker thread
    assert [s for first, count in groups for s in range(first, first + count)] == list(range(1, 7))
    stacked.clear()
    _, slow = rai_recording(textbook=True)
    assert stacked == []
    assert fast.steps == slow.steps == list(range(1, 13))
    for name in QUANTITIES:
        assert fast[name].shape == slow[name].shape
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
    assert (fast["weight_grad"][-1] > 0).all()      # by step 12 every layer has a gradient to compare


# -- 4. the numbers are the norms they claim to be ------------------------------------------------------
def test_capture_matches_norms_computed_directly():
    """After one BP backward: weight/bias/output-gradient and activation norms equal np.linalg.norm."""
    ds = data.moons(n_samples=30, n_test=5)
    model = minirai.mlp([2, 16, 16, 1], "tanh", "sigmoid", seed=2)
    loss = minirai.BCE()
    y = loss.prepare_target(ds.y_train, (30, 1), model.dtype)
    loss.forward(model.forward(ds.X_train), y)
    model.backward(loss.backward())
    recorder = GradientRecorder()
    recorder.capture(1, model)
    linear = [layer for layer in model.layers if isinstance(layer, minirai.Linear)]

    def norm(a):
        return np.linalg.norm(np.asarray(a, dtype=np.float64))

    np.testing.assert_allclose(recorder["weight_grad"][0], [norm(layer.grads["W"]) for layer in linear], rtol=1e-5)
    np.testing.assert_allclose(recorder["bias_grad"][0], [norm(layer.grads["b"]) for layer in linear], rtol=1e-5)
    np.testing.assert_allclose(recorder["output_grad"][0], [norm(layer.grad_output) for layer in model.layers],
                               rtol=1e-5)
    np.testing.assert_allclose(recorder["activation"][0], [norm(layer.y) for layer in model.layers], rtol=1e-5)
    assert (recorder["weight_grad"][0] > 0).all()


@pytest.mark.parametrize("textbook", [False, True])
def test_table_grad_is_the_norm_of_its_two_parts(textbook, stacked):
    """table_grad = ‖as_input + as_target‖ = ‖grad_tables‖ per cut; weight_grad = ‖grads["W"]‖ (RAI)."""
    ds = data.moons(n_samples=40, n_test=5, dtype=np.float64)
    rai = RAI(repeated_net(), ds.X_train, ds.y_train, minirai.BCE(), lam=0.7)
    optimizer = minirai.Rprop(rai.parameters(), lr=0.1)
    recorder = GradientRecorder(every=1)
    with minirai.reference(textbook), TrainingLoop() as loop:
        for _ in range(12):
            rai.step(optimizer, recorder, loop=loop)
    assert bool(stacks_of(stacked)) is not textbook
    parts_in, parts_target = rai.grad_tables_as_input, rai.grad_tables_as_target
    table, table_in, table_target = (recorder[name][-1] for name in
                                     ("table_grad", "table_grad_input", "table_grad_target"))
    for k in range(len(rai.cuts)):
        np.testing.assert_allclose(table[k], np.linalg.norm(parts_in[k] + parts_target[k]), rtol=1e-12)
        np.testing.assert_allclose(table[k], np.linalg.norm(rai.grad_tables[k]), rtol=1e-12)
        np.testing.assert_allclose(table_in[k], np.linalg.norm(parts_in[k]), rtol=1e-12)
        np.testing.assert_allclose(table_target[k], np.linalg.norm(parts_target[k]), rtol=1e-12)
    assert (table > 0).all() and (table_in > 0).all() and (table_target > 0).all()
    linear = [layer for layer in rai.model.layers if isinstance(layer, minirai.Linear)]
    np.testing.assert_allclose(recorder["weight_grad"][-1], [np.linalg.norm(layer.grads["W"]) for layer in linear],
                               rtol=1e-12)


# -- 5. float32 underflow and overflow ---------------------------------------------------------------
def test_tiny_and_huge_float32_gradients_get_their_true_norm():
    """Entries of 1e-25 (squares underflow float32) and 1e25 (squares overflow) are redone in float64."""
    model = minirai.mlp([2, 4, 3, 1], "sigmoid", "sigmoid", seed=0)
    assert model.dtype == np.float32
    first, middle, last = (layer for layer in model.layers if isinstance(layer, minirai.Linear))
    first.grads["W"][...] = 1e-25          # 8 entries: the float32 sum of squares is 0
    middle.grads["W"][...] = 1e25          # 12 entries: the float32 sum of squares is inf
    last.grads["W"][...] = 0
    recorder = GradientRecorder()
    recorder.capture(1, model)
    weight = recorder["weight_grad"][0]
    np.testing.assert_allclose(weight, [1e-25 * np.sqrt(8), 1e25 * np.sqrt(12), 0.0], rtol=1e-6)
    assert weight[2] == 0.0                # a gradient of zeros stays exactly zero
    assert np.isnan(recorder["output_grad"][0]).all()     # never run backward: nothing to record


def test_squared_norms_mixes_fast_and_exact_rows():
    """squared_norms: float64 results, exact zeros kept, underflowing arrays redone."""
    stack = np.zeros((3, 50), np.float32)
    stack[0] = 1e-30
    stack[1] = 2.0
    result = squared_norms(list(stack))
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, [50 * 1e-60, 200.0, 0.0], rtol=1e-6)


# -- 6. nothing is computed without a recorder -------------------------------------------------------
def test_fit_and_rai_fit_without_a_recorder_call_nothing_in_inspect(monkeypatch, stacked):
    """With recorder=None neither fit nor RAI.fit calls capture, wants or the norm helpers."""
    def forbidden(*args, **kwargs):
        raise AssertionError("minirai.inspect was called without a recorder")

    for name in ("capture", "wants"):
        monkeypatch.setattr(GradientRecorder, name, forbidden)
    monkeypatch.setattr(inspect, "squared_norms", forbidden)
    ds = data.moons(n_samples=30, n_test=5)
    model = minirai.mlp([2] + [8] * 5 + [1], "sigmoid", "sigmoid", seed=0)
    fit(model, minirai.BCE(), minirai.Rprop(model.parameters(), lr=0.1), ds.X_train, ds.y_train, iters=3,
        progress=False)
    rai = RAI(model, ds.X_train, ds.y_train, minirai.BCE())
    rai.fit(minirai.Rprop(rai.parameters(), lr=0.1), 3, progress=False)
    assert stacks_of(stacked)                          # the stacked path is exercised too
    with pytest.raises(AssertionError, match="without a recorder"):   # the patch does bite
        rai.fit(minirai.Rprop(rai.parameters(), lr=0.1), 1, progress=False, recorder=GradientRecorder())


# -- 7. bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("every", [0, -1, 1.5, "2", None])
def test_every_must_be_a_positive_integer(every):
    """GradientRecorder(every=0) and other non-positive or non-integer values: ValueError."""
    with pytest.raises(ValueError, match="every must be a positive integer"):
        GradientRecorder(every=every)


def test_unknown_quantity_is_a_key_error_naming_the_choices():
    """recorder["nope"] raises KeyError and lists the quantities."""
    recorder = GradientRecorder()
    with pytest.raises(KeyError, match="weight_grad"):
        recorder["nope"]
    assert recorder["weight_grad"].shape == (0, 0)      # known but empty: an empty array
