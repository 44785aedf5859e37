"""Every argument of the public functions, given a bad value: a TypeError or ValueError that names
the argument, raised at the boundary (never an AttributeError or KeyError from inside, never silence).

Each public callable has one good call here; the test replaces one argument at a time by each value
of ``BAD`` that the argument does not accept, and checks the error's type and that its message holds
the argument's name. Arguments that take any object (a callback's return, ``progress``'s tqdm
options) list the values they accept in ``ACCEPTS``.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pytest

import minirai
from minirai import data
from minirai.inspect import GradientRecorder
from minirai.minibatch import MiniBatchRAI
from minirai.rai import RAI, constant, geometric
from minirai.train import fit

MOONS = data.moons(n_samples=20, n_test=5)
NOTHING = object()


class Opaque:
    """A value no argument accepts."""

    def __repr__(self) -> str:
        return "<opaque>"


BAD: dict[str, Any] = {"string": "not-a-valid-value", "object": Opaque(), "negative": -1, "nan": float("nan"),
                       "none": None, "list": [1, "a"]}


def small_model():
    return minirai.mlp([2, 4, 1], "tanh", "sigmoid", seed=0)


def small_trainer():
    return RAI(small_model(), MOONS.X_train, MOONS.y_train, minirai.BCE())


#: name: (the callable, its good keyword arguments, {argument: bad-value names it accepts})
CALLS: dict[str, tuple[Callable[..., Any], Callable[[], dict[str, Any]], dict[str, set[str]]]] = {
    "mlp": (minirai.mlp, lambda: dict(sizes=[2, 3, 1], activation="tanh", output_activation="sigmoid",
                                      init="uniform", seed=0, dtype="float32", packed=True),
            {"activation": {"none"}, "output_activation": {"none"}, "seed": {"none"}, "dtype": {"none"}}),
    "Linear": (minirai.Linear, lambda: dict(in_features=2, out_features=3, init="uniform", rng=0, dtype="float32",
                                            gain=1.0, input_mean=0.0),
               {"rng": {"none"}, "dtype": {"none"}, "input_mean": {"negative"}}),
    "LeakyReLU": (minirai.LeakyReLU, lambda: dict(negative_slope=0.1), {"negative_slope": {"negative"}}),
    "SGD": (minirai.SGD, lambda: dict(pairs=small_model().parameters(), lr=0.1, momentum=0.9, weight_decay=0.0), {}),
    "Adam": (minirai.Adam, lambda: dict(pairs=small_model().parameters(), lr=0.1, betas=(0.9, 0.999), eps=1e-8), {}),
    "Rprop": (minirai.Rprop, lambda: dict(pairs=small_model().parameters(), lr=0.1, etas=(0.5, 1.2),
                                          step_sizes=(1e-6, 50.0)), {}),
    "RAI": (RAI, lambda: dict(model=small_model(), X=MOONS.X_train, y=MOONS.y_train, loss=minirai.BCE(),
                              cuts="linear", hidden_loss=minirai.MSE(), lam=1.0, reinit_period=3),
            {"cuts": {"none"}, "hidden_loss": {"none"}, "reinit_period": {"none"}}),
    "MiniBatchRAI": (MiniBatchRAI, lambda: dict(model=small_model(), X=MOONS.X_train, y=MOONS.y_train,
                                                loss=minirai.BCE(), batch_size=8, tables="persistent", inner_steps=1,
                                                shuffle=True, seed=0, weight_steps="per-batch", cuts="linear",
                                                hidden_loss=minirai.MSE(), lam=1.0),
                     {"inner_steps": {"none"}, "cuts": {"none"}, "hidden_loss": {"none"}, "seed": {"none"}}),
    "fit": (fit, lambda: (lambda model: dict(model=model, loss=minirai.BCE(), optimizer=minirai.SGD(model.parameters()),
                                             X=MOONS.X_train, y=MOONS.y_train, iters=1, batch_size=8, shuffle=True,
                                             seed=0, X_val=MOONS.X_test, y_val=MOONS.y_test, record_every=1,
                                             progress=False, callback=None, recorder=None,
                                             start_step=0))(small_model()),
            {"batch_size": {"none"}, "X_val": {"none"}, "y_val": {"none"}, "callback": {"none"},
             "recorder": {"none"}, "seed": {"none"}}),
    "RAI.fit": (lambda trainer, **kw: trainer.fit(**kw),
                lambda: (lambda t: dict(trainer=t, optimizer=minirai.SGD(t.parameters()), iters=1, X_val=MOONS.X_test,
                                        y_val=MOONS.y_test, record_every=1, progress=False, callback=None,
                                        recorder=None))(small_trainer()),
                {"X_val": {"none"}, "y_val": {"none"}, "callback": {"none"}, "recorder": {"none"},
                 "trainer": set(BAD)}),
    "geometric": (geometric, lambda: dict(start=0.1, factor=2.0, every=1, maximum=10.0), {"maximum": {"none"}}),
    "constant": (constant, lambda: dict(value=0.5), {}),
    "GradientRecorder": (GradientRecorder, lambda: dict(every=2), {}),
    "gradcheck": (minirai.gradcheck, lambda: dict(module=minirai.Tanh(), x=np.ones((2, 3)), target=None, eps=1e-5,
                                                  tol=1e-6, seed=0, raise_on_failure=True, verbose=False),
                  {"target": {"none"}, "seed": {"none"}}),
    "moons": (data.moons, lambda: dict(n_samples=20, noise=0.1, random_state=1, n_test=5, test_random_state=2,
                                       dtype="float32"),
              {"dtype": {"none"}, "random_state": {"none"}, "test_random_state": {"none"}}),
    "circles": (data.circles, lambda: dict(n_samples=20, noise=0.1, factor=0.5, random_state=1, n_test=5,
                                           test_random_state=2, dtype="float32"),
                {"dtype": {"none"}, "random_state": {"none"}, "test_random_state": {"none"}}),
    "load_data": (data.load, lambda: dict(name="moons"), {}),
}


def cases():
    for name, (function, good, accepts) in CALLS.items():
        for argument in good():
            for label in BAD:
                if label not in accepts.get(argument, set()):
                    yield pytest.param(name, argument, label, id=f"{name}-{argument}-{label}")


@pytest.mark.parametrize("name, argument, label", list(cases()))
def test_a_bad_argument_is_an_error_that_names_it(name, argument, label):
    function, good, _ = CALLS[name]
    kwargs = good()
    kwargs[argument] = BAD[label]
    with np.errstate(all="ignore"):
        try:
            function(**kwargs)
        except (TypeError, ValueError) as error:
            named = re.search(rf"(?<![\w.]){re.escape(argument)}(?!\w)", str(error))
            assert named, f"{name}({argument}={BAD[label]!r}): {type(error).__name__}: {error}"
            return
        except Exception as error:            # noqa: BLE001 - the point is which exceptions escape
            pytest.fail(f"{name}({argument}={BAD[label]!r}) raised {type(error).__name__}: {error}")
    pytest.fail(f"{name}({argument}={BAD[label]!r}) was accepted")


def test_every_good_call_works():
    """The good calls above are good (so a failure is the bad argument's)."""
    for name, (function, good, _) in CALLS.items():
        function(**good())
