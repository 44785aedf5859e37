"""What every layer and optimizer must do, as functions a test calls with a class: the built-in ones
(``tests/test_contracts.py``, which finds them by subclassing, so no test lists today's inventory)
and the examples of CONTRIBUTING.md (``tests/test_contributing.py``).

* a layer: gradcheck in float64; the same bytes on both paths under BP and under RAI, blocks with
  different settings included; ``mlp(init="orthogonal")`` for an activation; save and load with its
  settings, and a resumed run equal to an uninterrupted one;
* an optimizer: the same bytes on both paths under BP and mini-batch RAI (its rule on gathered table
  rows); save and load with its settings and state, and a resumed run equal to an uninterrupted one.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

import minirai
from minirai import data
from minirai.layers import Activation, Layer, Linear
from minirai.minibatch import MiniBatchRAI
from minirai.optim import Optimizer
from minirai.protocol import subclasses
from minirai.rai import RAI
from minirai.train import fit


def built_in(base: type, module: str) -> list[type]:
    """The concrete classes of ``base`` defined in the minirai module ``module`` (not their bases)."""
    abstract = {Layer, Activation, Optimizer}
    return sorted((cls for cls in subclasses(base) if cls.__module__ == module and cls not in abstract),
                  key=lambda cls: cls.__name__)


def same_bytes(a: Any, b: Any) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def on_both_paths(run: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
    """``run()`` on the fast path and on the textbook path; their arrays must be the same bytes."""
    with minirai.reference(False):
        fast = run()
    with minirai.reference():
        textbook = run()
    assert len(fast) == len(textbook)
    for k, (a, b) in enumerate(zip(fast, textbook)):
        assert same_bytes(a, b), f"array {k} differs between the fast and the textbook path" + \
            (f" (max |diff| {np.abs(np.asarray(a) - np.asarray(b)).max():.3g})" if np.shape(a) == np.shape(b) else "")
    return fast


def make_layer(cls: type, width: int, dtype: Any = np.float64, **settings: Any) -> Layer:
    """An instance of ``cls``: sizes ``width -> width`` for a layer that takes them, else its defaults."""
    if "in_features" in inspect.signature(cls.__init__).parameters:
        return cls(width, width, dtype=dtype, **settings)
    return cls(**settings)


def varied(cls: type, k: int) -> dict[str, Any]:
    """Settings of ``cls`` made different for block ``k``: each number of its default config times 1 + k/4."""
    settings = make_layer(cls, 3).config()
    return {key: value * (1 + k / 4) for key, value in settings.items()
            if isinstance(value, float) and key not in ("gain", "input_mean")}


# -- layers ------------------------------------------------------------------------------------------------
def check_gradcheck(cls: type, **settings: Any) -> None:
    """Every input and parameter gradient of the layer matches central differences (float64, inputs away
    from 0, where a ReLU-like function has its kink)."""
    layer = make_layer(cls, 4, np.float64, **settings)
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 2.0, (6, 4)) * rng.choice([-1.0, 1.0], (6, 4))
    result = minirai.gradcheck(layer, x)
    assert result.max_rel_error <= 1e-6, result


def blocks_net(cls: type, dtype: Any, blocks: int = 4, vary: bool = True) -> minirai.Sequential:
    """Linear 2->6, ``blocks`` middle blocks of one shape each holding a ``cls`` (an activation, then a
    Linear; or a Linear-like layer after a tanh), a Linear 6->1 and a Sigmoid. With ``vary`` each block's
    ``cls`` has its own settings."""
    rng = np.random.default_rng(0)
    layers: list[Layer] = [Linear(2, 6, rng=rng, dtype=dtype)]
    for k in range(blocks):
        settings = varied(cls, k) if vary else {}
        if issubclass(cls, Activation) or "in_features" not in inspect.signature(cls.__init__).parameters:
            layers += [cls(**settings), Linear(6, 6, rng=rng, dtype=dtype)]
        else:
            layers += [minirai.Tanh(), cls(6, 6, rng=rng, dtype=dtype, **settings)]
    model = minirai.Sequential(layers + [Linear(6, 1, rng=rng, dtype=dtype), minirai.Sigmoid()])
    model.pack()
    return model


def check_both_paths(cls: type, dtype: Any) -> None:
    """BP (Adam, mini-batches) and RAI (SGD with momentum, a cut after every Linear) on a net of ``cls``
    blocks with different settings, and RAI again with equal settings (which the fast path may stack)."""
    moons = data.moons(n_samples=40, n_test=5)
    X = moons.X_train.astype(dtype)

    def bp() -> list[np.ndarray]:
        model = blocks_net(cls, dtype)
        history = fit(model, minirai.BCE(), minirai.Adam(model.parameters(), lr=1e-2), X, moons.y_train, iters=6,
                      batch_size=16, progress=False)
        return [p for p, _ in model.parameters()] + [history["loss"][1:]]

    def rai(vary: bool) -> list[np.ndarray]:
        trainer = RAI(blocks_net(cls, dtype, vary=vary), X, moons.y_train, minirai.BCE())
        history = trainer.fit(minirai.SGD(trainer.parameters(), lr=0.5, momentum=0.9), 6, record_every=3,
                              progress=False)
        return [p for p, _ in trainer.parameters()] + [history["hidden_loss"]]

    on_both_paths(bp)
    on_both_paths(lambda: rai(True))
    on_both_paths(lambda: rai(False))


def check_orthogonal_init(cls: type) -> None:
    """``mlp(..., cls, init="orthogonal")``: each Linear after the first has W^T W = gain² I and the bias that
    cancels the activation's value at 0, from ``cls().critical()``."""
    gain, mean = cls().critical()
    model = minirai.mlp([3, 8, 8, 5], cls, None, init="orthogonal", seed=0, dtype=np.float64)
    linears = [layer for layer in model.layers if isinstance(layer, Linear)]
    for layer in linears[1:]:
        W = layer.params["W"]
        np.testing.assert_allclose(W.T @ W, gain ** 2 * np.eye(W.shape[1]), atol=1e-12)
        np.testing.assert_allclose(layer.params["b"], -mean * W.sum(axis=0), atol=1e-12)


def check_save_and_load_a_layer(cls: type, folder: Any) -> None:
    """A model of ``cls`` blocks with their own settings, saved with its optimizer after 3 steps, loads with
    the same classes and settings, and 3 more steps from the file give an uninterrupted run's bytes."""
    moons = data.moons(n_samples=40, n_test=5)

    def steps(model: minirai.Sequential, optimizer: Optimizer, start: int, count: int) -> None:
        fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=count, batch_size=16,
            start_step=start, progress=False)

    whole = blocks_net(cls, np.float32)
    whole_optimizer = minirai.Adam(whole.parameters(), lr=1e-2)
    steps(whole, whole_optimizer, 0, 6)
    half = blocks_net(cls, np.float32)
    half_optimizer = minirai.Adam(half.parameters(), lr=1e-2)
    steps(half, half_optimizer, 0, 3)
    minirai.save({"model": half, "optimizer": half_optimizer}, folder / "run.npz")
    run = minirai.load(folder / "run.npz")
    for saved, loaded in zip(half.layers, run["model"].layers):
        assert type(loaded) is type(saved) and loaded.config() == saved.config()
    steps(run["model"], run["optimizer"], 3, 3)
    for (a, _), (b, _) in zip(whole.parameters(), run["model"].parameters()):
        assert same_bytes(a, b)


# -- optimizers --------------------------------------------------------------------------------------------
def check_optimizer_on_both_paths(cls: type, lr: float, **settings: Any) -> None:
    """BP on mini-batches and persistent-table mini-batch RAI (the rule on gathered rows) with ``cls``."""
    moons = data.moons(n_samples=40, n_test=5)

    def bp() -> list[np.ndarray]:
        model = minirai.mlp([2, 8, 8, 1], "tanh", "sigmoid", seed=0)
        optimizer = cls(model.parameters(), lr=lr, **settings)
        fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=6, batch_size=16, progress=False)
        return [p for p, _ in model.parameters()] + [v for state in optimizer.state for v in state.values()]

    def minibatch() -> list[np.ndarray]:
        model = minirai.mlp([2, 8, 8, 8, 1], "sigmoid", "sigmoid", seed=0)
        trainer = MiniBatchRAI(model, moons.X_train, moons.y_train, minirai.BCE(), batch_size=16)
        optimizer = cls(trainer.parameters(), lr=lr, **settings)
        trainer.fit(optimizer, 6, record_every=3, progress=False)
        return [p for p, _ in trainer.parameters()]

    on_both_paths(bp)
    on_both_paths(minibatch)


def check_save_and_load_an_optimizer(cls: type, folder: Any, lr: float, **settings: Any) -> None:
    """Saved with its settings and state after 3 RAI steps, loaded, 3 more steps: an uninterrupted run's bytes."""
    moons = data.moons(n_samples=40, n_test=5)

    def trainer_and_optimizer() -> tuple[RAI, Optimizer]:
        trainer = RAI(minirai.mlp([2, 6, 6, 1], "tanh", "sigmoid", seed=1), moons.X_train, moons.y_train,
                      minirai.BCE())
        return trainer, cls(trainer.parameters(), lr=lr, **settings)

    whole, whole_optimizer = trainer_and_optimizer()
    whole.fit(whole_optimizer, 6, progress=False)
    half, half_optimizer = trainer_and_optimizer()
    half.fit(half_optimizer, 3, progress=False)
    minirai.save({"trainer": half, "optimizer": half_optimizer}, folder / "run.npz")
    run = minirai.load(folder / "run.npz")
    assert type(run["optimizer"]) is cls
    assert run["optimizer"].hyperparameters() == half_optimizer.hyperparameters()
    run["trainer"].fit(run["optimizer"], 3, progress=False)
    for (a, _), (b, _) in zip(whole.parameters(), run["trainer"].parameters()):
        assert same_bytes(a, b)
