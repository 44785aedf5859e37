"""The study's regularisers (minirai.research.regularisers): each does what its table says, on both paths."""
import numpy as np
import pytest

import minirai
from minirai import data
from minirai.research import regularisers
from minirai.research.methods import METHODS, custom, train

MOONS = data.moons(n_samples=50, n_test=20)


def method(base: str, *specs: dict) -> object:
    return custom("reg", {"base": base, "regulariser": list(specs)})


def weights(model) -> list[np.ndarray]:
    return [p.copy() for p, _ in model.parameters()]


@pytest.mark.parametrize("spec", [{"kind": "weight-decay", "strength": 0.05}, {"kind": "table-noise", "std": 0.05},
                                  {"kind": "table-l2", "strength": 0.1}, {"kind": "weight-average", "start": 0.3},
                                  {"kind": "early-stopping", "every": 3}], ids=lambda s: s["kind"])
@pytest.mark.parametrize("base", ["rai", "rai-minibatch"])
def test_each_regulariser_gives_the_same_numbers_on_both_paths(base, spec):
    """They change weights and tables between steps, in place: the fast path's stacked views see it."""
    chosen = method(base, spec)
    fast = train(chosen, MOONS, [8] * 4, "sigmoid", seed=1, iters=12, batch_size=16)
    with minirai.reference():
        textbook = train(chosen, MOONS, [8] * 4, "sigmoid", seed=1, iters=12, batch_size=16)
    for a, b in zip(weights(fast.model), weights(textbook.model), strict=True):
        np.testing.assert_array_equal(a, b)
    plain = train(base, MOONS, [8] * 4, "sigmoid", seed=1, iters=12, batch_size=16)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(fast.model), weights(plain.model)))


def test_weight_decay_shrinks_every_linear_weight_after_the_step():
    """After one step from the same start, W is the undecayed run's W times (1 - strength); biases are not decayed."""
    plain = train("bp-tuned", MOONS, [8, 8], "tanh", seed=0, iters=1)
    decayed = train(method("bp-tuned", {"kind": "weight-decay", "strength": 0.1}), MOONS, [8, 8], "tanh", seed=0,
                    iters=1)
    for (name, p, _), (_, q, _) in zip(plain.model.named_parameters(), decayed.model.named_parameters()):
        np.testing.assert_allclose(q, p * 0.9 if name.endswith("W") else p, rtol=1e-6)


def test_table_noise_is_seeded_and_of_the_given_size():
    noisy = method("rai", {"kind": "table-noise", "std": 0.01})
    a = train(noisy, MOONS, [8, 8], "tanh", seed=3, iters=1)
    b = train(noisy, MOONS, [8, 8], "tanh", seed=3, iters=1)
    plain = train("rai", MOONS, [8, 8], "tanh", seed=3, iters=1)
    for x, y, z in zip(a.trainer.tables, b.trainer.tables, plain.trainer.tables):
        np.testing.assert_array_equal(x, y)
        assert np.std(x - z) == pytest.approx(0.01, rel=0.2)


def test_table_l2_is_a_hidden_loss_that_passes_gradcheck():
    rng = np.random.default_rng(0)
    o, z = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    assert minirai.gradcheck(regularisers.TableL2(0.3), o, z, verbose=False).ok
    multipliers = regularisers.Multipliers()
    multipliers.forward(o, z)
    multipliers.update()                              # ν = 2 (o - Z), not 0
    assert minirai.gradcheck(multipliers, o + rng.normal(size=o.shape), z, verbose=False).ok
    trained = train(method("rai", {"kind": "table-l2", "strength": 0.1}), MOONS, [8, 8], "tanh", seed=0, iters=2)
    assert all(type(h) is regularisers.TableL2 and h.mu == 0.1 for h in trained.trainer.hidden_losses)


def test_weight_averaging_ends_with_the_mean_of_the_weights_after_each_step_from_start():
    seen = []
    trained = train(method("rai", {"kind": "weight-average", "start": 0.5}), MOONS, [8, 8], "tanh", seed=0, iters=10,
                    callback=lambda step, trainer: seen.append((step, weights(trainer.model))))
    kept = [w for step, w in seen if step > 5]
    assert len(kept) == 5 and trained.extra["averaged_steps"] == 5
    for k, p in enumerate(weights(trained.model)):
        np.testing.assert_allclose(p, np.mean([w[k] for w in kept], axis=0), rtol=1e-5, atol=1e-6)


def test_early_stopping_sets_aside_part_of_the_training_set_and_keeps_the_best_checked_weights():
    seen = {}
    spec = {"kind": "early-stopping", "every": 2, "val_fraction": 0.2}
    trained = train(method("rai", spec), MOONS, [8, 8], "tanh", seed=0, iters=10,
                    callback=lambda step, trainer: seen.setdefault(step, weights(trainer.model)))
    assert trained.extra["trained_on"] == 40 and trained.trainer.X.shape[0] == 40
    stopped = trained.extra["stopped_at"]
    assert stopped in (2, 4, 6, 8, 10)
    for p, q in zip(weights(trained.model), seen[stopped]):
        np.testing.assert_array_equal(p, q)
    aside = regularisers.Active((regularisers.check(spec, "t"),), 0, 10)
    aside.prepare(MOONS)
    losses = {}
    for step in (2, 4, 6, 8, 10):
        for (p, _), w in zip(trained.model.parameters(), seen[step]):
            p[...] = w
        losses[step] = minirai.train.evaluate(trained.model, trained.loss, *aside.validation)["loss"]
    assert min(losses, key=losses.get) == stopped and losses[stopped] == trained.extra["validation_loss"]
    assert METHODS["rai"].regularisers == ()


@pytest.mark.parametrize("spec,message", [
    ({"kind": "weight-decay", "strength": 1.5}, "in \\(0, 1\\)"),
    ({"kind": "weight-decay", "strength": 0.1, "rate": 2}, "no setting\\(s\\) \\['rate'\\]"),
    ({"kind": "weight-average", "start": 1.0}, "start must be in \\[0, 1\\)"),
    ({"kind": "early-stopping", "every": 2.5}, "every must be an integer"),
    ({"kind": "table-noise", "std": "big"}, "std must be a number"),
    ("weight-decay", "a regulariser is a table"),
])
def test_bad_regulariser_settings_name_the_setting(spec, message):
    with pytest.raises(ValueError, match=message):
        regularisers.check(spec, "[methods.x]")
