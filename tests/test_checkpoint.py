"""minirai.save / minirai.load: round trips, bit-exact resumes, and files that are refused."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import minirai
import minirai.train
from minirai import data
from minirai.losses import BCE
from minirai.network import mlp
from minirai.optim import Adam, Rprop
from minirai.rai import RAI, geometric
from minirai.train import fit


@pytest.fixture(scope="module")
def moons():
    return data.moons(n_samples=60, n_test=20)


def same_bytes(a, b) -> bool:
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


# -- round trips -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_saved_network_predicts_the_same(tmp_path, moons, dtype):
    model = minirai.mlp([2, 8, 8, 1], "tanh", "sigmoid", seed=1, dtype=dtype)
    model.layers.insert(2, minirai.LeakyReLU(0.2))
    model = minirai.Sequential(model.layers)
    model.pack()
    fit(model, BCE(), Rprop(model.parameters(), lr=0.05), moons.X_train.astype(dtype), moons.y_train, iters=5,
        progress=False)
    minirai.save(model, tmp_path / "net.npz")
    loaded = minirai.load(tmp_path / "net.npz")
    assert [repr(type(layer)) for layer in loaded.layers] == [repr(type(layer)) for layer in model.layers]
    assert loaded.layers[2].negative_slope == 0.2 and loaded.packed is not None and loaded.dtype == dtype
    X = moons.X_test.astype(dtype)
    assert same_bytes(loaded.forward(X), model.forward(X))


def test_histories_come_back_with_their_nans_and_per_cut_arrays(tmp_path, moons):
    model = minirai.mlp([2, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, moons.X_train, moons.y_train, BCE())
    rai_history = trainer.fit(Rprop(trainer.parameters(), lr=0.1), 6, record_every=2, progress=False,
                              X_val=moons.X_test, y_val=moons.y_test)
    plain = minirai.train.History()
    plain.record(0, loss=0.5)
    plain.record(1, accuracy=0.9)                       # loss missing here, accuracy at step 0: NaN
    for history in (rai_history, plain):
        minirai.save(history, tmp_path / "h.npz")
        loaded = minirai.load(tmp_path / "h.npz")
        assert type(loaded) is type(history) and loaded.keys() == history.keys()
        for name in history.keys():
            np.testing.assert_array_equal(loaded[name], history[name])
    assert np.isnan(loaded["loss"][1]) and np.isnan(loaded["accuracy"][0])
    assert minirai.load(tmp_path / "h.npz")["step"].dtype == np.int64


# -- resuming gives the uninterrupted run's numbers ----------------------------------------------------------
@pytest.mark.parametrize("textbook", [False, True])
@pytest.mark.parametrize("make_optimizer", [lambda pairs: Rprop(pairs, lr=0.1), lambda pairs: Adam(pairs, lr=1e-2)],
                         ids=["rprop", "adam"])
def test_bp_resumed_from_a_checkpoint_is_bit_exact(tmp_path, moons, make_optimizer, textbook):
    def start():
        model = minirai.mlp([2, 16, 16, 1], "sigmoid", "sigmoid", seed=2)
        return model, make_optimizer(model.parameters())

    with minirai.reference(textbook):
        model, optimizer = start()
        fit(model, BCE(), optimizer, moons.X_train, moons.y_train, iters=10, progress=False)
        uninterrupted = [p.copy() for p, _ in model.parameters()]

        model, optimizer = start()
        fit(model, BCE(), optimizer, moons.X_train, moons.y_train, iters=4, progress=False)
        minirai.save({"model": model, "optimizer": optimizer}, tmp_path / "run.npz")
        run = minirai.load(tmp_path / "run.npz")
        assert run["optimizer"].steps == 4
        fit(run["model"], BCE(), run["optimizer"], moons.X_train, moons.y_train, iters=6, progress=False)
    assert all(same_bytes(a, b) for a, (b, _) in zip(uninterrupted, run["model"].parameters()))


@pytest.mark.parametrize("textbook", [False, True])
def test_rai_resumed_from_a_checkpoint_is_bit_exact(tmp_path, moons, textbook):
    """Tables, λ schedule, step count and Rprop's state all come back: 4 + 6 steps = 10 steps."""
    def start():
        model = minirai.mlp([2] + [8] * 5 + [1], "sigmoid", "sigmoid", seed=3)
        trainer = RAI(model, moons.X_train, moons.y_train, BCE(), lam=geometric(0.5, 1.5, every=3),
                      reinit_period=7)
        return trainer, Rprop(trainer.parameters(), lr=0.05)

    with minirai.reference(textbook):
        trainer, optimizer = start()
        trainer.fit(optimizer, 10, progress=False)
        uninterrupted = [p.copy() for p, _ in trainer.parameters()]

        trainer, optimizer = start()
        trainer.fit(optimizer, 4, progress=False)
        minirai.save({"trainer": trainer, "optimizer": optimizer}, tmp_path / "rai.npz")
        run = minirai.load(tmp_path / "rai.npz")
        assert run["trainer"].steps == 4 and run["trainer"].lam(9) == 0.5 * 1.5 ** 3
        run["trainer"].fit(run["optimizer"], 6, progress=False)
    resumed = [p for p, _ in run["trainer"].parameters()]
    assert len(resumed) == len(uninterrupted)
    assert all(same_bytes(a, b) for a, b in zip(uninterrupted, resumed))


def test_an_optimizer_saved_alone_is_loaded_onto_given_parameters(tmp_path):
    model = minirai.mlp([2, 4, 1], "tanh", "sigmoid", seed=0)
    optimizer = Adam(model.parameters(), lr=3e-3, betas=(0.8, 0.99))
    for _, g in model.parameters():
        g[...] = 1.0
    optimizer.step()
    minirai.save(optimizer, tmp_path / "opt.npz")
    with pytest.raises(ValueError, match="pairs=model.parameters"):
        minirai.load(tmp_path / "opt.npz")
    other = minirai.mlp([2, 4, 1], "tanh", "sigmoid", seed=5)
    loaded = minirai.load(tmp_path / "opt.npz", pairs=other.parameters())
    assert loaded.betas == (0.8, 0.99) and loaded.lr == 3e-3 and loaded.steps == 1
    np.testing.assert_array_equal(loaded.state[0]["m"], optimizer.state[0]["m"])
    with pytest.raises(ValueError, match="shapes"):
        minirai.load(tmp_path / "opt.npz", pairs=minirai.mlp([2, 5, 1], "tanh", "sigmoid").parameters())


# -- refused ---------------------------------------------------------------------------------------------------
class Square(minirai.Tanh):
    pass


class Shifted(minirai.Tanh):
    """A learner's layer with a setting a checkpoint cannot hold (an array)."""

    def __init__(self, shift=None):
        super().__init__()
        self.shift = np.zeros(3) if shift is None else shift


def test_what_cannot_be_saved_is_refused_and_leaves_no_file(tmp_path, moons):
    model = minirai.mlp([2, 4, 1], "tanh", "sigmoid")
    cases = [
        (Square(), TypeError, "cannot save a Square"),
        (minirai.Sequential([minirai.Linear(2, 3), Shifted()]), TypeError, "layer 1 .Shifted. has settings"),
        ({"model": model, "optimizer": Rprop(minirai.mlp([2, 4, 1]).parameters())}, ValueError, "not those of"),
        ({"a/b": model}, ValueError, "without '/'"),
        (RAI(minirai.mlp([2, 4, 4, 1], "tanh", "sigmoid"), moons.X_train, moons.y_train, BCE(), lam=lambda s: 1.0),
         TypeError, "schedule is a function"),
    ]
    for obj, error, message in cases:
        with pytest.raises(error, match=message):
            minirai.save(obj, tmp_path / "x.npz")
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="does not exist"):
        minirai.save(model, tmp_path / "missing" / "x.npz")


def rewrite(path, change):
    """Rewrite the npz at ``path`` with ``change(entries)`` applied to its dict of arrays."""
    with np.load(path, allow_pickle=False) as npz:
        entries = {name: npz[name] for name in npz.files}
    change(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def set_meta(entries, **updates):
    meta = json.loads(bytes(entries["__meta__"]).decode())
    meta.update(updates)
    entries["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)


@pytest.mark.parametrize("damage, message", [
    (lambda e: set_meta(e, version=99), "version 99"),
    (lambda e: set_meta(e, format="something else"), "not a minirai checkpoint"),
    (lambda e: e.pop("__meta__"), "no __meta__"),
    (lambda e: e.update({"layer0.W": np.zeros((3, 3), np.float32)}), "shape"),
    (lambda e: e.update({"layer0.W": e["layer0.W"].astype(np.int64)}), "dtype"),
    (lambda e: e.pop("layer2.b"), "missing"),
    (lambda e: set_meta(e, layers=[{"type": "Conv2d"}]), "unknown type"),
    (lambda e: set_meta(e, kind="spaceship"), "unknown object kind"),
    (lambda e: set_meta(e, layers=None), "metadata is damaged"),
])
def test_damaged_files_are_a_clear_value_error(tmp_path, damage, message):
    path = tmp_path / "net.npz"
    minirai.save(minirai.mlp([2, 4, 1], "tanh", "sigmoid"), path)
    rewrite(path, damage)
    with pytest.raises(ValueError, match=message):
        minirai.load(path)


def test_truncated_and_pickled_files_are_refused(tmp_path):
    path = tmp_path / "net.npz"
    minirai.save(minirai.mlp([2, 4, 1], "tanh", "sigmoid"), path)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match="truncated or damaged"):
        minirai.load(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="truncated or damaged"):
        minirai.load(path)
    path.write_bytes(whole)
    with zipfile.ZipFile(path, "a") as archive:          # an object array: loading it would unpickle
        with archive.open("evil.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"code": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object array"):
        minirai.load(path)


def test_numpy_scalar_settings_and_pandas_like_string_labels_can_be_saved(tmp_path, moons):
    from minirai.estimators import MLPClassifier
    trainer = RAI(minirai.mlp([2, 4, 4, 1], "tanh", "sigmoid"), moons.X_train, moons.y_train, BCE(),
                  lam=geometric(np.float32(0.5), np.float64(2.0), every=np.int64(3)), reinit_period=np.int64(5))
    minirai.save(trainer, tmp_path / "t.npz")
    assert minirai.load(tmp_path / "t.npz").reinit_period == 5
    labels = np.array(["no", "yes"] * 30, dtype=object)
    clf = MLPClassifier((4,), max_iter=3).fit(np.random.default_rng(0).standard_normal((60, 2)), labels)
    minirai.save(clf, tmp_path / "c.npz")
    assert list(minirai.load(tmp_path / "c.npz").classes_) == ["no", "yes"]


def test_random_damage_is_always_a_value_error(tmp_path):
    """300 copies of a checkpoint with 1-3 random bytes changed: each loads the same or is a ValueError."""
    path = tmp_path / "net.npz"
    model = minirai.mlp([2, 4, 1], "tanh", "sigmoid")
    minirai.save(model, path)
    whole = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    outcomes = {"same": 0}
    for trial in range(300):
        damaged = bytearray(whole)
        for _ in range(rng.integers(1, 4)):
            damaged[rng.integers(len(damaged))] = int(rng.integers(256))
        path.write_bytes(bytes(damaged))
        try:
            loaded = minirai.load(path)
        except ValueError:
            continue
        outcomes["same"] += 1                         # it loaded: then it is the model that was saved
        assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers], trial
        assert [a.config() for a in loaded.layers] == [b.config() for b in model.layers], trial
        for (a, _), (b, _) in zip(loaded.parameters(), model.parameters()):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), trial
    assert outcomes["same"] > 0        # both halves of the promise happen (a changed byte of a name, say)


def test_metadata_that_promises_huge_layers_is_refused_before_allocating(tmp_path):
    path = tmp_path / "net.npz"
    minirai.save(minirai.mlp([2, 4, 1], "tanh", "sigmoid"), path)
    rewrite(path, lambda e: set_meta(e, layers=[{"type": "Linear", "in": 10 ** 6, "out": 10 ** 6, "init": "uniform"}]))
    with pytest.raises(ValueError, match="shape"):
        minirai.load(path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mini_batch_bp_resumed_with_start_step_is_bit_exact(tmp_path, moons, dtype):
    """Batches of 7 (a partial last one): 4 steps, save, load, 6 more from start_step=4 = 10 steps."""
    X = moons.X_train.astype(dtype)

    def start():
        model = minirai.mlp([2, 12, 12, 1], "tanh", "sigmoid", seed=2, dtype=dtype)
        return model, Adam(model.parameters(), lr=1e-2)

    model, optimizer = start()
    whole = fit(model, BCE(), optimizer, X, moons.y_train, iters=10, batch_size=7, seed=5, progress=False)
    uninterrupted = [p.copy() for p, _ in model.parameters()]
    model, optimizer = start()
    fit(model, BCE(), optimizer, X, moons.y_train, iters=4, batch_size=7, seed=5, progress=False)
    minirai.save({"model": model, "optimizer": optimizer}, tmp_path / "run.npz")
    run = minirai.load(tmp_path / "run.npz")
    rest = fit(run["model"], BCE(), run["optimizer"], X, moons.y_train, iters=6, batch_size=7, seed=5,
               progress=False, start_step=4)
    assert all(same_bytes(a, b) for a, (b, _) in zip(uninterrupted, run["model"].parameters()))
    assert list(rest["step"]) == list(range(4, 11))
    np.testing.assert_array_equal(rest["loss"][1:], whole["loss"][5:])


def test_a_bundle_keeps_a_model_shared_with_its_trainer_shared(tmp_path):
    moons = data.moons(n_samples=40)
    model = mlp([2, 8, 1], "tanh", "sigmoid", seed=0)
    trainer = RAI(model, moons.X_train, moons.y_train, BCE())
    optimizer = Rprop(trainer.parameters(), lr=0.1)
    trainer.fit(optimizer, 5, progress=False)
    minirai.save({"model": model, "trainer": trainer, "optimizer": optimizer}, tmp_path / "run.npz")
    loaded = minirai.load(tmp_path / "run.npz")
    assert loaded["model"] is loaded["trainer"].model
    loaded["optimizer"].step()              # the optimizer updates the weights the model predicts with
    assert loaded["optimizer"].pairs[0][0] is loaded["model"].parameters()[0][0]


def test_the_eval_flag_is_saved(tmp_path):
    model = mlp([2, 8, 1], "tanh", "sigmoid", seed=0).eval()
    minirai.save(model, tmp_path / "m.npz")
    assert minirai.load(tmp_path / "m.npz").training is False
    minirai.save(model.train(), tmp_path / "m.npz")
    assert minirai.load(tmp_path / "m.npz").training is True
