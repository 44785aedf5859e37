"""The study scripts under studies/ run: a few steps of each variant the docs quote."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minirai
from minirai import Adam, Rprop, data
from minirai.research.methods import network
from minirai.minibatch import MiniBatchRAI

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "studies" / "minibatch_probe.py"


def probe(tmp_path, *args):
    out = tmp_path / "probe.jsonl"
    done = subprocess.run([sys.executable, str(PROBE), "run", "iters=8", "every=4", *args, "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    return done, out


@pytest.mark.parametrize("args", [
    ("init=uniform", "wopt=rprop", "wlr=0.1", "epoch=1"),
    ("init=uniform", "wopt=rprop", "wlr=0.1", "sag=1", "shuffle=0", "inner=2", "wevery=2"),
    ("init=uniform", "wopt=rprop", "wlr=0.1", "sag=1", "shuffle=0", "wevery=2"),
    ("init=uniform", "wopt=rprop", "wlr=0.1", "shards=1", "shuffle=0", "smax=0.1"),
    ("wopt=rpropm", "topt=rprop", "tlr=0.1", "smax=0.1"),
    ("topt=rprop", "tlr=0.1", "decay=cos"),
    ("wopt=signum", "beta=0", "wlr0=0.1", "gain0=10"),
    ("init=uniform", "wopt=rprop", "bs=100", "rowfrac=4"),
    ("first=rprop", "flr=0.1", "topt=rprop", "tlr=0.1"),
    ("init=uniform", "wopt=rprop", "wlr=0.1", "inner=2", "wevery=2"),
    ("lsq=1", "topt=rprop", "tlr=0.1", "gamma=0.5"),
], ids=["per-epoch", "sag-inner", "sag-every-2nd", "shards", "rpropm", "adam-decay", "signum", "rowfrac", "first",
        "every-2nd", "least-squares"])
def test_minibatch_probe_runs_each_variant(tmp_path, args):
    done, out = probe(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text().splitlines()[-1])
    assert result["name"] == "run" and len(result["train_acc"]) == 3      # steps 0, 4 and 8
    assert all(0 <= a <= 1 for a in result["train_acc"] + result["test_acc"])


def test_minibatch_probe_names_its_keys(tmp_path):
    done, _ = probe(tmp_path, "bogus=1")
    assert done.returncode != 0 and "expected key=value with a key from" in done.stderr and "'wopt'" in done.stderr
    done, _ = probe(tmp_path, "sag=1")
    assert done.returncode != 0 and "need shuffle=0" in done.stderr
    done, _ = probe(tmp_path, "epoch=1", "rowfrac=4")
    assert done.returncode != 0 and "choose one of epoch, sag, shards, rowfrac" in done.stderr
    done, _ = probe(tmp_path, "first=rprop", "epoch=1")
    assert done.returncode != 0 and "first= steps the first block once per epoch" in done.stderr
    done, _ = probe(tmp_path, "wopt=rprop", "decay=cos")
    assert done.returncode != 0 and "Rprop reads lr only" in done.stderr
    done, _ = probe(tmp_path, "wevery=2", "lsq=1")
    assert done.returncode != 0 and "alone or with sag=1, not with lsq" in done.stderr
    done, _ = probe(tmp_path, "first=rprop", "wevery=2")
    assert done.returncode != 0 and "no wevery" in done.stderr


def load_probe():
    spec = importlib.util.spec_from_file_location("minibatch_probe", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_trainer(batch_size):
    """MiniBatchRAI on a 4-hidden-layer sigmoid net with cuts "linear[1:]": layers L S L | S L | S L | S L | S,
    a first block of two Linears, three [Sigmoid, Linear] blocks and the output's Sigmoid."""
    moons = data.moons(n_samples=60)
    model, loss = network(moons, [6] * 4, "sigmoid", "orthogonal", 0)
    return MiniBatchRAI(model, moons.X_train, moons.y_train, loss, batch_size=batch_size, seed=0, cuts="linear[1:]")


def test_the_probes_least_squares_step_sets_each_sigmoid_linear_block_to_its_ridge_solution():
    probe_module = load_probe()
    trainer = small_trainer(batch_size=1000)                      # one batch of all rows
    layers = trainer.model.layers
    optimizer = probe_module.least_squares_weights(trainer, Rprop(trainer.parameters(), lr=0.1),
                                                   {"gamma": 0.0, "rho": 1e-2})
    first = layers[0].params["W"].copy()
    for _ in range(3):                 # the output's error reaches one block further back per step
        trainer.step(optimizer)
    before = [{key: value.copy() for key, value in layer.params.items()} for layer in layers]
    trainer.step(optimizer)
    bounds = [0] + trainer.cuts + [len(layers)]
    assert bounds == [0, 3, 5, 7, 9, 10]
    for s in (1, 2, 3):                                           # block s: σ(table s-1) -> table s
        k = bounds[s] + 1
        W, b = before[k]["W"].copy(), before[k]["b"].copy()
        H = 1 / (1 + np.exp(-trainer.tables[s - 1].astype(np.float64)))
        probe_module.ridge_step(*probe_module.statistics(H, trainer.tables[s]), W, b, 1e-2)
        np.testing.assert_array_equal(layers[k].params["W"], W)
        np.testing.assert_array_equal(layers[k].params["b"], b)
        assert not np.array_equal(W, before[k]["W"])
    assert not np.array_equal(layers[0].params["W"], first)      # the first block: Rprop's steps


def test_the_probes_every_kth_update_steps_the_weights_at_every_kth_step_only():
    probe_module = load_probe()
    trainer = small_trainer(batch_size=8)
    optimizer = Adam(trainer.parameters(), lr=1e-2)
    trainer.update = probe_module.every_kth_update(trainer, 2)
    W, last_table = trainer.model.layers[8].params["W"], trainer.tables[-1]   # the last [Sigmoid, Linear]
    rng = np.random.default_rng(0)
    for table in trainer.tables:       # tables off the forward pass: every hidden loss, and its gradient, open
        table += rng.normal(scale=0.1, size=table.shape).astype(table.dtype)
    for step in range(4):              # the weights step at steps 1 and 3; the batch's rows at every step
        weights, table = W.copy(), last_table.copy()
        trainer.step(optimizer)
        assert np.array_equal(W, weights) == (step % 2 == 0), step
        assert not np.array_equal(last_table, table), step


def test_the_probes_least_squares_step_is_the_ridge_minimiser():
    """At the W-step's result the gradient of (1/n)‖[H, 1][W; b] - Z‖² + ρ‖[W; b] - old‖² is 0."""
    probe_module = load_probe()
    rng = np.random.default_rng(0)
    H, Z = rng.normal(size=(7, 4)), rng.normal(size=(7, 3))
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    old = np.vstack([W, b[None]])
    for rho in (1e-3, 1.0):
        W1, b1 = W.copy(), b.copy()
        probe_module.ridge_step(*probe_module.statistics(H, Z), W1, b1, rho)
        features, new = np.hstack([H, np.ones((7, 1))]), np.vstack([W1, b1[None]])
        gradient = 2 / 7 * features.T @ (features @ new - Z) + 2 * rho * (new - old)
        assert np.abs(gradient).max() < 1e-12 and np.abs(new - old).max() > 1e-3


def load_relaxation_gap():
    spec = importlib.util.spec_from_file_location("relaxation_gap", ROOT / "studies" / "relaxation_gap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_relaxation_gap_study_hidden_losses_pass_gradcheck():
    gap = load_relaxation_gap()
    rng = np.random.default_rng(0)
    o, z = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    assert minirai.gradcheck(gap.TableL2(0.3), o, z, verbose=False).ok
    multipliers = gap.Multipliers()
    multipliers.forward(o, z)
    multipliers.update()                              # ν = 2 (o - Z), not 0
    assert np.abs(multipliers.nu).max() > 0
    assert minirai.gradcheck(multipliers, o + rng.normal(size=o.shape), z, verbose=False).ok
