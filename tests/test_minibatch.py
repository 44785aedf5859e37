"""Mini-batch RAI: persistent tables (rows updated by batch) and per-batch auxiliaries."""
import numpy as np
import pytest

import minirai
from minirai import BCE, SGD, Adam, Rprop, SoftmaxCrossEntropy, data, mlp
from minirai.minibatch import MiniBatchRAI, batch_rows
from minirai.rai import RAI

OPTIMIZERS = [(Rprop, dict(lr=0.1)), (Adam, dict(lr=1e-2)), (SGD, dict(lr=0.5, momentum=0.9))]


def small(seed=1, sizes=(2, 12, 12, 12, 1), dtype=None):
    return mlp(list(sizes), "sigmoid", "sigmoid", seed=seed, dtype=dtype)


@pytest.fixture(scope="module")
def moons():
    return data.moons()


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "textbook"])
@pytest.mark.parametrize("opt,options", OPTIMIZERS, ids=["rprop", "adam", "sgd-momentum"])
def test_one_batch_of_all_rows_is_full_batch_rai_bitwise(moons, opt, options, reference):
    full = RAI(small(), moons.X_train, moons.y_train, BCE())
    full_opt = opt(full.parameters(), **options)
    full_history = full.fit(full_opt, 25, progress=False, record_every=5)
    with minirai.reference() if reference else np.errstate():
        batched = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=100)
        batched_opt = opt(batched.parameters(), **options)
        history = batched.fit(batched_opt, 25, progress=False, record_every=5)
    for (a, _), (b, _) in zip(full.parameters(), batched.parameters()):
        assert np.array_equal(a, b)
    with minirai.reference() if reference else np.errstate():
        epochs = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=100, weight_steps="per-epoch")
        epochs.fit(opt(epochs.parameters(), **options), 25, progress=False, record_every=5)
    for (a, _), (b, _) in zip(full.parameters(), epochs.parameters()):
        assert np.array_equal(a, b)                      # per-epoch weight steps of one batch: the same
    for a, b in zip(full_opt.state, batched_opt.state):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    assert np.array_equal(full_history["relaxed_loss"], history["relaxed_loss"])
    assert np.array_equal(full_history["chained_acc"], history["chained_acc"])


@pytest.mark.parametrize("lam", [1.0, lambda step: 1.0 + 0.5 * step], ids=["lam-1", "lam-schedule"])
@pytest.mark.parametrize("reference", [False, True], ids=["fast", "textbook"])
def test_per_epoch_weight_steps_make_an_epoch_one_full_batch_step(moons, reference, lam):
    """Batches of 30, 30, 30, 10 with the weights stepping once per epoch on the summed gradient:
    after k epochs, full-batch RAI's k steps, up to rounding (float64). With SGD: Rprop and Adam
    step as far on a rounding-level gradient as on any other (see the module's docstring).
    A λ schedule counts epochs, as full batch counts steps."""
    opt, options = SGD, dict(lr=0.5, momentum=0.9)
    X, y = moons.X_train.astype(np.float64), moons.y_train
    full = RAI(small(sizes=(2, 8, 8, 1), dtype="float64"), X, y, BCE(), lam=lam)
    full_opt = opt(full.parameters(), **options)
    full.fit(full_opt, 6, progress=False)
    with minirai.reference() if reference else np.errstate():
        batched = MiniBatchRAI(small(sizes=(2, 8, 8, 1), dtype="float64"), X, y, BCE(), batch_size=30, seed=2,
                               weight_steps="per-epoch", lam=lam)
        batched_opt = opt(batched.parameters(), **options)
        batched.fit(batched_opt, 4, progress=False)      # epoch 1: only the last table moves (all hidden
        W = batched.model.layers[-2].params["W"]      # losses are 0); in epoch 2 the last Linear learns
        start = W.copy()
        for _ in range(3):                               # within epoch 2 the weights stay ...
            batched.step(batched_opt)
            assert np.array_equal(W, start) and batched_opt.steps == 1
        batched.step(batched_opt)                        # ... until its last batch: one weight step
        assert not np.array_equal(W, start) and batched_opt.steps == 2
        batched.fit(batched_opt, 16, progress=False)     # 4 more epochs
    assert batched_opt.steps == 6 and batched.row_steps.tolist() == [6] * 100
    for (a, _), (b, _) in zip(full.parameters(), batched.parameters()):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert batched.metrics()["relaxed_loss"] == pytest.approx(float(full.metrics()["relaxed_loss"]), rel=1e-9)
    assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(full.parameters(), batched.parameters()))


@pytest.mark.parametrize("opt,options", OPTIMIZERS, ids=["rprop", "adam", "sgd-momentum"])
def test_rows_outside_the_batch_and_their_state_are_untouched(moons, opt, options):
    trainer = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=10, seed=3)
    optimizer = opt(trainer.parameters(), **options)
    trainer.fit(optimizer, 4, progress=False)
    n_weights = len(trainer.model.parameters())
    tables = [z.copy() for z in trainer.tables]
    states = [{k: v.copy() for k, v in s.items()} for s in optimizer.state[n_weights:]]
    trainer.step(optimizer)
    inside = trainer.rows
    outside = np.setdiff1d(np.arange(100), inside)
    assert len(inside) == 10
    for before, after in zip(tables, trainer.tables):
        assert np.array_equal(before[outside], after[outside])
    assert any(not np.array_equal(before[inside], after[inside]) for before, after in zip(tables, trainer.tables))
    for before, after in zip(states, optimizer.state[n_weights:]):
        for key in before:
            assert np.array_equal(before[key][outside], after[key][outside])


def test_each_row_counts_its_own_adam_steps(moons):
    """Adam's bias correction uses the row's own step count: a row's first update is Adam's step 1."""
    trainer = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=30, seed=0)
    optimizer = Adam(trainer.parameters(), lr=1e-2)
    trainer.fit(optimizer, 3, progress=False)          # epoch 1 (batches of 30, 30, 30); row set 90..99 waits
    assert sorted(np.unique(trainer.row_steps)) == [0, 1]
    fresh = np.flatnonzero(trainer.row_steps == 0)
    table = trainer.tables[0]
    before = table[fresh].copy()
    n_weights = len(trainer.model.parameters())
    trainer.step(optimizer)                             # the last batch: its rows' first update
    assert np.array_equal(np.sort(trainer.rows), fresh)
    grad = trainer.grad_tables[0][fresh]
    # Adam at t = 1 moves each entry by lr · g / (|g| + eps) (m̂ = g, v̂ = g²), whatever the weights' step
    expected = before - np.float32(1e-2) * grad / (np.abs(grad) + np.float32(1e-8))
    np.testing.assert_allclose(table[fresh], expected, rtol=1e-5, atol=1e-7)
    assert optimizer.steps == 4 and trainer.row_steps[fresh].tolist() == [1] * len(fresh)
    assert optimizer.state[n_weights]["m"].shape == table.shape


def test_per_batch_default_inner_steps_reach_the_first_block(moons):
    trainer = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=20, tables="per-batch")
    assert trainer.inner_steps == 5                     # 4 cuts (after each Linear), 5 blocks
    first_W = trainer.model.layers[0].params["W"]
    before = first_W.copy()
    optimizer = Adam(trainer.parameters(), lr=1e-2)
    trainer.step(optimizer)                             # forward-pass tables: no hidden loss yet ...
    assert np.array_equal(first_W, before)              # ... so the first block has no gradient
    for _ in range(3):
        trainer.step(optimizer)
        assert np.array_equal(first_W, before)
    trainer.step(optimizer)
    assert not np.array_equal(first_W, before)          # one block further back per inner step


def test_a_new_optimizer_counts_steps_from_one_and_epochs_count_examples(moons):
    trainer = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=30, seed=0)
    trainer.fit(Adam(trainer.parameters(), lr=1e-2), 4, progress=False)
    assert trainer.epochs == pytest.approx(1.0)          # batches of 30, 30, 30 and 10: one pass
    fresh = Adam(trainer.parameters(), lr=1e-2)
    trainer.step(fresh)
    assert fresh.steps == 1                              # the weights' step 1 of the new optimizer
    assert sorted(set(trainer.row_steps.tolist())) == [0, 1]   # the rows it updated: their step 1


def test_batches_visit_every_row_once_per_epoch_seeded():
    a = batch_rows(10, 4, True, np.random.default_rng(5))
    epoch = [next(a) for _ in range(3)]
    assert [len(b) for b in epoch] == [4, 4, 2]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(10))
    assert all(np.array_equal(b, np.sort(b)) for b in epoch)
    b = batch_rows(10, 4, True, np.random.default_rng(5))
    assert all(np.array_equal(x, next(b)) for x in epoch)
    assert np.array_equal(next(batch_rows(10, 10, True, np.random.default_rng(5))), np.arange(10))


def test_per_batch_tables_start_from_the_forward_pass_and_train(moons):
    trainer = MiniBatchRAI(small(), moons.X_train, moons.y_train, BCE(), batch_size=20, tables="per-batch",
                           inner_steps=10, seed=0)
    assert trainer.tables[0].shape == (20, 12)          # batch_size rows, not N
    optimizer = Adam(trainer.parameters(), lr=1e-2)
    trainer.step(optimizer)
    # after one step of a new batch, its auxiliaries moved away from the forward pass, and the state counts 1
    assert trainer.row_steps.tolist() == [1] * 20
    history = trainer.fit(optimizer, 600, progress=False, record_every=100)
    assert history.last("chained_acc") >= 0.85
    assert trainer.epochs == pytest.approx(-(-601 // 10) * 20 / 100)
    # a new batch: its rows start afresh (their step counts, and so their optimizer state)
    while trainer.steps % trainer.inner_steps:
        trainer.step(optimizer)
    trainer.step(optimizer)
    assert trainer.row_steps.tolist() == [1] * 20


def test_persistent_minibatch_trains_a_multiclass_net():
    digits = data.digits(dtype="float64")
    model = mlp([64, 32, 32, 10], "tanh", None, seed=0, dtype="float64")
    trainer = MiniBatchRAI(model, digits.X_train, digits.y_train, SoftmaxCrossEntropy(), batch_size=64, seed=0)
    history = trainer.fit(Adam(trainer.parameters(), lr=1e-2), 400, X_val=digits.X_test, y_val=digits.y_test,
                          progress=False, record_every=100)
    assert history.last("val_acc") >= 0.85
    assert np.isfinite(history["identity_gap"]).all()


def test_bad_arguments_are_named(moons):
    X, y = moons.X_train, moons.y_train
    with pytest.raises(ValueError, match="batch_size"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=0)
    with pytest.raises(ValueError, match="tables must be one of"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=10, tables="rows")
    with pytest.raises(ValueError, match="inner_steps must be a positive integer"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=10, inner_steps=0)
    with pytest.raises(ValueError, match="seed"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=10, seed=-1)
    with pytest.raises(ValueError, match="weight_steps must be one of"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=10, weight_steps="epoch")
    with pytest.raises(ValueError, match="needs tables='persistent'.*got tables='per-batch'"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=10, tables="per-batch", weight_steps="per-epoch")
    with pytest.raises(ValueError, match="inner_steps=1.*inner_steps=3"):
        MiniBatchRAI(small(), X, y, BCE(), batch_size=10, inner_steps=3, weight_steps="per-epoch")
    trainer = MiniBatchRAI(small(), X, y, BCE(), batch_size=10)
    with pytest.raises(ValueError, match="made on trainer.parameters"):
        trainer.step(Adam(trainer.model.parameters()))
