"""A battery of bad and edge inputs across the API, the CLI and checkpoint files.

Each bad input must be a ValueError or TypeError (FileNotFoundError for a missing file) that
names the argument and says what was expected, raised before anything changed; each valid
edge case must be accepted. The cases are data: one row each.
"""
from __future__ import annotations

import numpy as np
import pytest

import minirai
from minirai import backend, cli, data, plot
from minirai.inspect import GradientRecorder
from minirai.losses import BCE, MSE, BCEWithLogits, SoftmaxCrossEntropy
from minirai.optim import SGD, Adam, Rprop
from minirai.rai import RAI, geometric
from minirai.train import fit

MOONS = data.moons(n_samples=20, n_test=10)
X, Y = MOONS.X_train, MOONS.y_train


def net(sizes=(2, 4, 1), **kwargs):
    return minirai.mlp(list(sizes), "tanh", "sigmoid", seed=0, **kwargs)


def raw_scores():
    """A net without an output sigmoid whose outputs leave [0, 1] (a bias of 3)."""
    model = minirai.mlp([2, 4, 1], "tanh", None, seed=0)
    model.layers[-1].params["b"][...] = 3.0
    return model


def pair():
    return [(np.zeros(3), np.zeros(3))]


def fit_call(**changes):
    """fit on a fresh net with one argument changed."""
    model = net()
    arguments = dict(model=model, loss=BCE(), optimizer=Rprop(model.parameters(), lr=0.1), X=X, y=Y, iters=1,
                     progress=False)
    arguments.update(changes)
    return lambda: fit(arguments.pop("model"), arguments.pop("loss"), arguments.pop("optimizer"),
                       arguments.pop("X"), arguments.pop("y"), **arguments)


def rai_call(**changes):
    arguments = dict(model=net((2, 4, 4, 1)), X=X, y=Y, loss=BCE())
    arguments.update(changes)
    return lambda: RAI(arguments.pop("model"), arguments.pop("X"), arguments.pop("y"), arguments.pop("loss"),
                       **arguments)


def rai_fit_call(**changes):
    trainer = RAI(net((2, 4, 4, 1)), X, Y, BCE())
    arguments = dict(optimizer=Rprop(trainer.parameters(), lr=0.1), iters=1, progress=False)
    arguments.update(changes)
    return lambda: trainer.fit(arguments.pop("optimizer"), arguments.pop("iters"), **arguments)


BAD = [
    # -- building networks and layers
    ("mlp int sizes", lambda: minirai.mlp(5), TypeError, "sizes must be a list"),
    ("mlp string sizes", lambda: minirai.mlp("2,4,1"), TypeError, "sizes must be a list"),
    ("mlp one size", lambda: minirai.mlp([2]), ValueError, "at least an input and an output"),
    ("mlp zero width", lambda: minirai.mlp([2, 0, 1]), ValueError, "each of sizes must be a positive integer"),
    ("mlp float width", lambda: minirai.mlp([2, 4.5, 1]), TypeError, "each of sizes must be an integer"),
    ("mlp bool width", lambda: minirai.mlp([2, True, 1]), TypeError, "each of sizes must be an integer"),
    ("mlp bad activation", lambda: minirai.mlp([2, 4, 1], "no_such_activation"), ValueError,
     "mlp: activation must be one of .*got 'no_such_activation'"),
    ("mlp bad output activation", lambda: minirai.mlp([2, 4, 1], "relu", "no_such_activation"), ValueError,
     "mlp: output_activation must be one of .*got 'no_such_activation'"),
    ("mlp negative seed", lambda: minirai.mlp([2, 4, 1], seed=-1), ValueError, "seed must be a non-negative"),
    ("mlp string seed", lambda: minirai.mlp([2, 4, 1], seed="1"), TypeError, "seed must be an integer"),
    ("mlp bad dtype", lambda: minirai.mlp([2, 4, 1], dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    ("mlp float16", lambda: minirai.mlp([2, 4, 1], dtype=np.float16), TypeError, "dtype must be float32 or float64"),
    ("mlp bad init", lambda: minirai.mlp([2, 4, 1], init="zeros"), ValueError, "init must be one of"),
    ("Linear zero in", lambda: minirai.Linear(0, 3), ValueError, "in_features must be a positive integer"),
    ("Linear float out", lambda: minirai.Linear(2, 3.0), ValueError, "out_features must be a positive integer"),
    ("Sequential of non-layers", lambda: minirai.Sequential([minirai.Linear(2, 3), "relu"]), TypeError,
     "item 1 must be a minirai Layer"),
    ("Sequential width mismatch", lambda: minirai.Sequential([minirai.Linear(2, 3), minirai.Linear(4, 1)]),
     ValueError, "width mismatch"),
    # -- forward
    ("forward a list", lambda: net().forward([[0.0, 1.0]]), TypeError, "x must be a NumPy or CuPy array"),
    ("forward int64", lambda: net().forward(np.ones((3, 2), np.int64)), TypeError, "x must be a float array"),
    ("forward wrong width", lambda: net().forward(np.ones((3, 5), np.float32)), ValueError, "expects inputs of shape"),
    ("backward in eval", lambda: net().eval().backward(np.ones((1, 1), np.float32)), RuntimeError, "eval mode"),
    # -- optimizers
    ("SGD of a model", lambda: SGD(net()), TypeError, "model.parameters()"),
    ("SGD of the bound method", lambda: SGD(net().parameters), TypeError, "model.parameters()"),
    ("SGD of a string", lambda: SGD("weights"), TypeError, "model.parameters()"),
    ("SGD of arrays not pairs", lambda: SGD([np.zeros(3)]), TypeError, "not a .param, grad. pair"),
    ("SGD of lists", lambda: SGD([([0.0], [0.0])]), TypeError, "not a .param, grad. pair"),
    ("SGD no pairs", lambda: SGD([]), ValueError, "no parameters"),
    ("SGD shape mismatch", lambda: SGD([(np.zeros(3), np.zeros(2))]), ValueError, "but its gradient"),
    ("SGD lr inf", lambda: SGD(pair(), lr=np.inf), ValueError, "lr must be finite"),
    ("SGD lr nan", lambda: SGD(pair(), lr=float("nan")), ValueError, "lr must be finite"),
    ("SGD lr zero", lambda: SGD(pair(), lr=0.0), ValueError, "lr must be > 0"),
    ("SGD lr negative", lambda: SGD(pair(), lr=-1), ValueError, "lr must be > 0"),
    ("SGD lr string", lambda: SGD(pair(), lr="0.1"), TypeError, "lr must be a number"),
    ("SGD lr bool", lambda: SGD(pair(), lr=True), TypeError, "lr must be a number"),
    ("SGD lr None", lambda: SGD(pair(), lr=None), TypeError, "lr must be a number"),
    ("SGD momentum nan", lambda: SGD(pair(), momentum=float("nan")), ValueError, "momentum must be finite"),
    ("SGD momentum negative", lambda: SGD(pair(), momentum=-0.1), ValueError, "momentum must be >= 0"),
    ("SGD weight_decay inf", lambda: SGD(pair(), weight_decay=np.inf), ValueError, "weight_decay must be finite"),
    ("SGD weight_decay string", lambda: SGD(pair(), weight_decay="0"), TypeError, "weight_decay must be a number"),
    ("Adam one beta", lambda: Adam(pair(), betas=(0.9,)), ValueError, "betas must be a pair"),
    ("Adam three betas", lambda: Adam(pair(), betas=(0.9, 0.99, 0.999)), ValueError, "betas must be a pair"),
    ("Adam beta one", lambda: Adam(pair(), betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be < 1"),
    ("Adam beta negative", lambda: Adam(pair(), betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be >= 0"),
    ("Adam beta nan", lambda: Adam(pair(), betas=(float("nan"), 0.9)), ValueError, r"betas\[0\] must be finite"),
    ("Adam betas number", lambda: Adam(pair(), betas=0.9), ValueError, "betas must be a pair"),
    ("Adam negative eps", lambda: Adam(pair(), eps=-1e-8), ValueError, "eps must be >= 0"),
    ("Adam eps inf", lambda: Adam(pair(), eps=np.inf), ValueError, "eps must be finite"),
    ("Rprop etas reversed", lambda: Rprop(pair(), etas=(1.2, 0.5)), ValueError, "etas must satisfy"),
    ("Rprop eta_minus zero", lambda: Rprop(pair(), etas=(0.0, 1.2)), ValueError, r"etas\[0\] must be > 0"),
    ("Rprop eta_plus one", lambda: Rprop(pair(), etas=(0.5, 1.0)), ValueError, "etas must satisfy"),
    ("Rprop step sizes reversed", lambda: Rprop(pair(), step_sizes=(50, 1e-6)), ValueError,
     r"step_sizes must be \(smallest, largest\)"),
    ("Rprop step size zero", lambda: Rprop(pair(), step_sizes=(0, 50)), ValueError, r"step_sizes\[0\] must be > 0"),
    ("Rprop step sizes one", lambda: Rprop(pair(), step_sizes=(1e-6,)), ValueError, "step_sizes must be a pair"),
    # -- fit
    ("fit a loss name", fit_call(loss="bce"), TypeError, "fit: loss must be a minirai Loss"),
    ("fit a layer", fit_call(model=minirai.Linear(2, 1)), TypeError, "fit: model must be a minirai Sequential"),
    ("fit no optimizer", fit_call(optimizer=None), TypeError, "fit: optimizer must be a minirai Optimizer"),
    ("fit iters bool", fit_call(iters=True), TypeError, "iters must be an integer"),
    ("fit iters float", fit_call(iters=2.5), TypeError, "iters must be an integer"),
    ("fit iters negative", fit_call(iters=-1), ValueError, "iters must be a non-negative integer"),
    ("fit record_every string", fit_call(record_every="5"), TypeError, "record_every must be an integer"),
    ("fit record_every float", fit_call(record_every=2.5), TypeError, "record_every must be an integer"),
    ("fit record_every zero", fit_call(record_every=0), ValueError, "record_every must be a positive integer"),
    ("fit batch_size zero", fit_call(batch_size=0), ValueError, "batch_size must be a positive integer"),
    ("fit batch_size float", fit_call(batch_size=8.0), TypeError, "batch_size must be an integer"),
    ("fit seed negative", fit_call(seed=-3), ValueError, "seed must be a non-negative integer"),
    ("fit seed float", fit_call(seed=1.5), TypeError, "seed must be an integer"),
    ("fit callback not callable", fit_call(callback=3), TypeError, "callback must be a function"),
    ("fit X list", fit_call(X=[[0.0, 0.0]] * 20), TypeError, "X must be a NumPy or CuPy array"),
    ("fit X 1-D", fit_call(X=X[:, 0]), ValueError, "X must have 2 dimensions"),
    ("fit X wrong width", fit_call(X=np.ones((20, 3), np.float32)), ValueError, "the network's first layer expects 2"),
    ("fit X float64 on float32", fit_call(X=X.astype(np.float64)), TypeError, "X has dtype float64"),
    ("fit X int", fit_call(X=X.astype(np.int64)), TypeError, "X must be a float array"),
    ("fit X with NaN", fit_call(X=np.where(np.arange(40).reshape(20, 2) == 3, np.nan, X).astype(np.float32)),
     ValueError, "X contains 1 non-finite"),
    ("fit X empty", fit_call(X=np.ones((0, 2), np.float32), y=np.ones(0)), ValueError, "X is empty"),
    ("fit y rows", fit_call(y=Y[:10]), ValueError, "y has 10 rows but X has 20"),
    ("fit y labels 0/2", fit_call(y=Y * 2), ValueError, r"y: BCE: targets must lie in \[0, 1\]"),
    ("fit y strings", fit_call(y=np.array(["a"] * 20)), TypeError, "y must be a float or integer array"),
    ("fit y_val bad", fit_call(X_val=MOONS.X_test, y_val=MOONS.y_test * 3), ValueError, r"y_val: BCE: targets"),
    ("fit y_val rows", fit_call(X_val=MOONS.X_test, y_val=MOONS.y_test[:3]), ValueError, "y_val has 3 rows"),
    ("fit X_val width", fit_call(X_val=np.ones((5, 3), np.float32), y_val=np.ones(5)), ValueError,
     "X_val has 3 columns"),
    ("fit BCE without a sigmoid", fit_call(model=raw_scores()), ValueError,
     "BCE needs predictions that are probabilities.*BCEWithLogits"),
    ("fit softmax labels out of range", lambda: fit(minirai.mlp([2, 4, 3], "relu", None), SoftmaxCrossEntropy(),
                                                    Rprop(minirai.mlp([2, 4, 3], "relu", None).parameters()), X,
                                                    Y * 5, iters=1, progress=False), ValueError, r"integers in 0\.\.2"),
    # -- RAI
    ("RAI cuts int", rai_call(cuts=2), TypeError, "cuts must be 'linear', 'activation', a list"),
    ("RAI cuts name", rai_call(cuts="every"), ValueError, "cuts must be 'linear', 'activation'"),
    ("RAI cut out of range", rai_call(cuts=[9]), ValueError, "cut position 9 is outside"),
    ("RAI cut float", rai_call(cuts=[1.5]), ValueError, "cut positions must be integers"),
    ("RAI cuts repeat", rai_call(cuts=[2, 2]), ValueError, "cut positions repeat"),
    ("RAI softmax hidden loss", rai_call(hidden_loss=SoftmaxCrossEntropy()), TypeError,
     "hidden_loss SoftmaxCrossEntropy cannot compare"),
    ("RAI hidden loss name", rai_call(hidden_loss="mse"), TypeError, "hidden_loss must be a minirai Loss"),
    ("RAI loss name", rai_call(loss="bce"), TypeError, "loss must be a minirai Loss"),
    ("RAI of layers", rai_call(model=net().layers), TypeError, "needs a Sequential"),
    ("RAI negative lam", rai_call(lam=-1.0), ValueError, "lam must be a non-negative number"),
    ("RAI lam nan", rai_call(lam=float("nan")), ValueError, "lam must be a non-negative number"),
    ("RAI lam string", rai_call(lam="1"), ValueError, "lam must be a non-negative number"),
    ("RAI reinit zero", rai_call(reinit_period=0), ValueError, "reinit_period must be a positive integer"),
    ("RAI reinit float", rai_call(reinit_period=2.5), ValueError, "reinit_period must be a positive integer"),
    ("RAI X wrong width", rai_call(X=np.ones((20, 3), np.float32)), ValueError, "X has 3 columns"),
    ("RAI y rows", rai_call(y=Y[:5]), ValueError, "y has 5 rows"),
    ("geometric factor zero", lambda: geometric(1.0, 0.0), ValueError, "geometric: factor must be > 0, got 0"),
    ("RAI.fit iters negative", rai_fit_call(iters=-2), ValueError, "iters must be a non-negative integer"),
    ("RAI.fit iters string", rai_fit_call(iters="3"), TypeError, "iters must be an integer"),
    ("RAI.fit record_every zero", rai_fit_call(record_every=0), ValueError, "record_every must be a positive"),
    ("RAI.fit no optimizer", rai_fit_call(optimizer=None), TypeError, "optimizer must be a minirai Optimizer"),
    ("RAI.fit callback", rai_fit_call(callback="print"), TypeError, "callback must be a function"),
    # -- losses, gradient checks, recorders, plots
    ("BCE target 2", lambda: BCE().forward(np.full((3, 1), 0.5), np.full((3, 1), 2.0)), ValueError,
     r"targets must lie in \[0, 1\]"),
    ("BCE prediction 1.5", lambda: BCE().forward(np.full((3, 1), 1.5), np.ones((3, 1))), ValueError,
     "BCE needs predictions that are probabilities"),
    ("BCEWithLogits target -1", lambda: BCEWithLogits().forward(np.zeros((3, 1)), -np.ones((3, 1))), ValueError,
     r"targets must lie in \[0, 1\]"),
    ("MSE shape", lambda: MSE().forward(np.zeros((3, 2)), np.zeros((3, 3))), ValueError, "does not match"),
    ("MSE NaN target", lambda: MSE().forward(np.zeros((2, 1)), np.array([[np.nan], [0.0]])), ValueError,
     "non-finite"),
    ("loss backward first", lambda: MSE().backward(), RuntimeError, "before forward"),
    ("gradcheck float32", lambda: minirai.gradcheck(minirai.Linear(2, 3), np.ones((4, 2), np.float32)), TypeError,
     "needs float64"),
    ("gradcheck wrong width", lambda: minirai.gradcheck(minirai.Linear(2, 3, dtype=np.float64), np.ones((4, 5))),
     ValueError, r"x must have shape \(N, 2\)"),
    ("gradcheck of a string", lambda: minirai.gradcheck("linear", np.ones((4, 2))), TypeError,
     "gradcheck: module must be a minirai Layer or Sequential or Loss"),
    ("recorder every zero", lambda: GradientRecorder(every=0), ValueError, "every must be a positive integer"),
    ("empty recorder profile", lambda: GradientRecorder().profile(), ValueError, "no records yet"),
    ("plot an empty recorder", lambda: plot.gradient_profile({"BP": GradientRecorder()}), ValueError,
     "no records yet"),
    ("landscape of 1-D X", lambda: plot.landscape(net(), X[:, 0], Y), ValueError, r"X must have shape \(N, 2\)"),
    ("landscape labels", lambda: plot.landscape(net(), X, Y[:3]), ValueError, "one label per row"),
    ("landscape 3-input model", lambda: plot.landscape(net((3, 4, 1)), X, Y), ValueError, "2 inputs"),
    ("decision grid resolution", lambda: plot.decision_grid(net(), resolution=1), ValueError, "resolution"),
    # -- devices and switches
    ("set_device bogus", lambda: backend.set_device("tpu"), ValueError, "device must be one of"),
    ("dtype string", lambda: backend.resolve_dtype("half"), TypeError, "dtype must be float32 or float64"),
]


@pytest.mark.parametrize("make, error, message", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input_is_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_the_battery_is_large():
    assert len(BAD) + len(EDGE) + len(CLI_BAD) >= 100


# -- a rejected call changes nothing --------------------------------------------------------------------------
def test_rejected_calls_leave_the_state_as_it_was():
    model = net()
    optimizer = Rprop(model.parameters(), lr=0.1)
    weights = [p.copy() for p, _ in model.parameters()]
    grads = [g.copy() for _, g in model.parameters()]
    for bad in (dict(optimizer=None), dict(loss="bce"), dict(iters=-1), dict(y=Y * 2), dict(record_every="5")):
        with pytest.raises((TypeError, ValueError)):
            fit(model, **{**dict(loss=BCE(), optimizer=optimizer, X=X, y=Y, iters=2, progress=False), **bad})
    assert optimizer.steps == 0
    assert all(np.array_equal(a, p) for a, (p, _) in zip(weights, model.parameters()))
    assert all(np.array_equal(a, g) for a, (_, g) in zip(grads, model.parameters()))
    layer = minirai.Linear(2, 3)                            # float32: refused before its gradients are touched
    layer.grads["W"][...] = 7.0
    with pytest.raises(TypeError):
        minirai.gradcheck(layer, np.ones((4, 2), np.float32))
    assert (layer.grads["W"] == 7.0).all()


def test_a_stopped_run_keeps_its_history():
    """A λ schedule that turns NaN at step 3: a ValueError that carries the history recorded so far."""
    trainer = RAI(net((2, 4, 4, 1)), X, Y, BCE(), lam=lambda step: float("nan") if step >= 3 else 1.0)
    with pytest.raises(ValueError, match="schedule gave nan at step 3") as caught:
        trainer.fit(Rprop(trainer.parameters(), lr=0.1), 10, record_every=1, progress=False)
    assert list(caught.value.history["step"]) == [0, 1, 2]     # the record after step 3 needed λ(3)

    def boom(step, model):
        if step == 2:
            raise KeyError("from a callback")
    with pytest.raises(KeyError) as caught:
        fit(net(), BCE(), Rprop(net().parameters(), lr=0.1), X, Y, iters=5, progress=False, callback=boom)
    assert list(caught.value.history["step"]) == [0, 1]


def test_minirai_device_in_the_environment_is_named(monkeypatch):
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv("MINIRAI_DEVICE", "bogus")
    with pytest.raises(ValueError, match="MINIRAI_DEVICE must be one of"):
        backend.xp()


# -- valid edge cases are accepted ------------------------------------------------------------------------------
EDGE = [
    ("numpy float32 lr", lambda: Adam(pair(), lr=np.float32(1e-3))),
    ("numpy int lr", lambda: SGD(pair(), lr=np.int64(1))),
    ("numpy float betas", lambda: Adam(pair(), betas=(np.float64(0.9), np.float32(0.99)))),
    ("betas as a list", lambda: Adam(pair(), betas=[0.8, 0.9])),
    ("eps zero", lambda: Adam(pair(), eps=0.0)),
    ("momentum zero", lambda: SGD(pair(), momentum=0)),
    ("equal step sizes", lambda: Rprop(pair(), step_sizes=(0.1, 0.1))),
    ("mlp numpy sizes", lambda: minirai.mlp(np.array([2, 3, 1]))),
    ("mlp tuple sizes, seed None", lambda: minirai.mlp((2, 3, 1), seed=None)),
    ("mlp numpy seed", lambda: minirai.mlp([2, 3, 1], seed=np.int64(4))),
    ("fit iters 0", fit_call(iters=0)),
    ("fit numpy iters", fit_call(iters=np.int64(2))),
    ("fit batch larger than the set", fit_call(batch_size=1000, iters=2)),
    ("fit batch of one", fit_call(batch_size=1, iters=2)),
    ("fit seed None", fit_call(seed=None, batch_size=5, iters=2)),
    ("fit int labels", fit_call(y=Y.astype(np.int64))),
    ("fit labels (N, 1)", fit_call(y=Y.reshape(-1, 1))),
    ("RAI no cuts", rai_call(cuts=None)),
    ("RAI empty cuts", rai_call(cuts=[])),
    ("RAI numpy cuts", rai_call(cuts=np.array([2]))),
    ("RAI lam zero", rai_call(lam=0)),
    ("RAI numpy lam", rai_call(lam=np.float32(0.5))),
    ("RAI.fit zero iters", rai_fit_call(iters=0)),
    ("BCE at exactly 0 and 1", lambda: BCE().forward(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]]))),
    ("forward float64 on a float32 net", lambda: net().forward(np.ones((2, 2)))),
]


@pytest.mark.parametrize("make", [case[1] for case in EDGE], ids=[case[0] for case in EDGE])
def test_valid_edge_cases_are_accepted(make):
    make()


# -- the command line -------------------------------------------------------------------------------------------
CLI_BAD = [
    (["reproduce", "deep", "--seed", "-1"], "--seed: expected a non-negative integer"),
    (["reproduce", "deep", "--iters", "0"], "--iters: expected a positive integer"),
    (["reproduce", "deep", "--iters", "ten"], "--iters: expected a positive integer"),
    (["reproduce", "medium"], "invalid choice"),
    (["reproduce", "deep", "--method", "gd"], "invalid choice"),
    (["reproduce", "deep", "--jobs", "0"], "--jobs: expected a positive integer"),
    (["dance"], "invalid choice"),
]


@pytest.mark.parametrize("argv, message", CLI_BAD)
def test_cli_usage_errors_exit_2_without_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_out_folder_rules(tmp_path, capsys):
    """--out: a file is refused, a folder with files is refused unless --force, which removes only what
    the earlier run wrote; all exit 2 with one line, no traceback."""
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert cli.main(["reproduce", "shallow", "--iters", "2", "--quiet", "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err
    out = tmp_path / "run"
    assert cli.main(["reproduce", "shallow", "--iters", "2", "--quiet", "--method", "bp", "--out", str(out)]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert "summary.json" in first and "shallow-bp-landscape.png" in first
    printed = capsys.readouterr().out
    assert "shallow-bp-landscape.png" in printed and "summary.json" in printed
    assert cli.main(["reproduce", "shallow", "--iters", "2", "--quiet", "--method", "rai", "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err
    (out / "my-notes.txt").write_text("keep me")
    assert cli.main(["reproduce", "shallow", "--iters", "2", "--quiet", "--method", "rai", "--out", str(out),
                     "--force"]) == 0
    second = sorted(p.name for p in out.iterdir())
    assert "shallow-bp-landscape.png" not in second          # the earlier run's figure is gone ...
    assert "shallow-rai-landscape.png" in second and "my-notes.txt" in second   # ... the user's file stays
    assert cli.main(["reproduce", "shallow", "--iters", "2", "--quiet", "--method", "bp", "--out", str(out),
                     "--force"]) == 0
    assert (out / "my-notes.txt").read_text() == "keep me"   # never listed as a run's output, never removed
    (out / ".minirai-run.json").write_text('{"not": "a list"}')
    assert cli.main(["reproduce", "shallow", "--iters", "2", "--quiet", "--out", str(out), "--force"]) == 2
    assert "is not a list of file names" in capsys.readouterr().err


def test_ctrl_c_keeps_the_history():
    def interrupt(step, _):
        if step == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt) as caught:
        fit(net(), BCE(), Rprop(net().parameters(), lr=0.1), X, Y, iters=5, progress=False, callback=interrupt)
    assert list(caught.value.history["step"]) == [0, 1]


def test_numpy_arrays_and_generators_where_numbers_and_seeds_are_expected():
    assert Adam(pair(), betas=np.array([0.9, 0.999])).betas == (0.9, 0.999)
    assert Rprop(pair(), etas=np.array([0.5, 1.2])).etas == (0.5, 1.2)
    minirai.mlp([2, 3, 1], seed=np.random.default_rng(0))
    from minirai.validate import check_number
    assert check_number(10 ** 30, "iters", low=0, integer=True) == 10 ** 30   # a big integer is no crash
    with pytest.raises(ValueError, match="lr must be finite"):
        SGD(pair(), lr=10 ** 400)
