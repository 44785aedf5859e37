"""Probe mini-batch RAI on the deep sigmoid net (100 hidden layers of width 100, two-moons).

The runs behind docs/study.md's "Where the failure comes from". One run per call, one JSON line
out (chained training accuracy every ``every`` steps, held-out accuracy, relaxed loss, largest
identity gap), appended to ``--out``::

    python studies/minibatch_probe.py NAME [key=value ...] [--out results.jsonl]

keys (defaults):

- the run: init=orthogonal|uniform, bs=32, iters=3000 (batch steps), seed=0, cuts="linear[3:]",
  lam=1.0, inner=1 (steps per batch), shuffle=1 (0: the same batches every epoch), every=100;
- the weights: wopt=adam|rprop|rpropm|signum|sgd, wlr=1e-2, eps=1e-8 (Adam), beta=0.9 (rpropm,
  signum), etam=0.5, etap=1.2, smax=50.0 (Rprop's η-, η+ and largest step, also for rpropm),
  decay=none|cos (cosine decay of every learning rate), wlr0=0 (if set, the learning rate of the
  first block's weights), gain0=1.0 (a factor on the first Linear's initial weights and bias);
- the table rows: topt=same|adam|rprop|... and tlr=1e-2 ("same": the weights' optimizer);
- how the weights step: epoch=1 (``weight_steps="per-epoch"``: once per epoch on the gradient
  summed over its batches: full-batch RAI's gradient, B rows at a time), sag=1 (on the mean of
  the last gradient of every batch, as SAG; needs shuffle=0), wevery=K (the weights step at
  every K-th step only, the rows at every step; with inner=K, once per batch, at its last inner
  step, on that step's gradient: the rows then step K times per visit; with sag=1, on the SAG
  mean),
  shards=1 (one Rprop state for the weights per batch; needs shuffle=0), rowfrac=K (the rows:
  at each step only a rotating 1/K of the batch's rows step, those with index ≡ step mod K),
  first=rprop|adam|... and flr=0.1 (the first block's weights: this optimizer, once per epoch,
  on their gradient summed over the epoch's batches; the other weights as wopt says),
  lsq=1 with rho=1e-2 and gamma=0.9 (the W-step of the method of auxiliary coordinates: every
  block that is [Sigmoid, Linear] gets its Linear's weights by ridge least squares on moving
  averages, with factor gamma, of its batch statistics, after the batch's rows step, pulled
  towards its previous weights by rho; wopt steps the first block, and the rows unless topt
  says otherwise. gamma=0 with bs=100 is the W-step on all rows).

``rpropm`` (Rprop's rule on a moving average of the gradient), ``signum`` (the sign of a moving
average, Bernstein et al. 2018; beta=0 is sign SGD), sag, wevery, shards, rowfrac, first and lsq
are tried here only. A separate table optimizer is applied by replacing the trainer's ``update_rows`` (the rows
of each batch, their own state in that optimizer); minirai has no option for it.
"""
import json
import math
import sys
import time

import numpy as np

from minirai import SGD, Adam, Rprop, data
from minirai.research.methods import network
from minirai.minibatch import MiniBatchRAI
from minirai.optim import Optimizer

USAGE = __doc__
WAYS = ("epoch", "sag", "shards", "rowfrac", "lsq")    # how the weights step: one at a time


class RpropM(Rprop):
    """Rprop's sign rule applied to m ← β m + (1 - β) g instead of g."""
    beta = 0.9

    def init_state(self, param):
        return {**super().init_state(param), "m": np.zeros_like(param)}

    def update(self, param, grad, state):
        state["m"][...] = self.beta * state["m"] + (1 - self.beta) * grad
        super().update(param, state["m"], state)


class Signum(Optimizer):
    """The sign of a moving average (Bernstein et al., 2018): m ← β m + (1 - β) g; p ← p - lr · sign(m)."""
    beta = 0.9

    def init_state(self, param):
        return {"m": np.zeros_like(param)}

    def update(self, param, grad, state):
        state["m"][...] = self.beta * state["m"] + (1 - self.beta) * grad
        param -= self.lr * np.sign(state["m"])


def parse(argv):
    out = "minibatch_probe.jsonl"
    if "--out" in argv:
        k = argv.index("--out")
        out, argv = argv[k + 1], argv[:k] + argv[k + 2:]
    opts = dict(init="orthogonal", bs=32, iters=3000, seed=0, cuts="linear[3:]", lam=1.0, inner=1, shuffle=1,
                every=100, wopt="adam", wlr=1e-2, eps=1e-8, beta=0.9, etam=0.5, etap=1.2, smax=50.0, decay="none",
                wlr0=0.0, gain0=1.0, topt="same", tlr=1e-2, epoch=0, sag=0, wevery=1, shards=0, rowfrac=1, first="",
                flr=0.1, lsq=0, rho=1e-2, gamma=0.9)
    if not argv:
        raise SystemExit(USAGE)
    for item in argv[1:]:
        key, _, value = item.partition("=")
        if key not in opts or not value:
            raise SystemExit(f"minibatch_probe: expected key=value with a key from {sorted(opts)}, got {item!r}")
        opts[key] = value if isinstance(opts[key], str) else type(opts[key])(value)
    if (opts["sag"] or opts["shards"]) and opts["shuffle"]:
        raise SystemExit("minibatch_probe: sag=1 and shards=1 keep one entry per batch: they need shuffle=0")
    ways = [key for key in WAYS if (opts[key] > 1 if key == "rowfrac" else opts[key])]
    if len(ways) > 1:
        raise SystemExit(f"minibatch_probe: choose one of {', '.join(WAYS)} (rowfrac > 1), got "
                         + ", ".join(f"{key}={opts[key]}" for key in WAYS))
    if opts["wevery"] > 1 and any(way != "sag" for way in ways):
        raise SystemExit(f"minibatch_probe: wevery= steps the weights every K-th step, alone or with sag=1, "
                         f"not with {', '.join(way for way in ways if way != 'sag')}")
    if opts["first"] and (opts["wlr0"] or ways or opts["wevery"] > 1):
        raise SystemExit("minibatch_probe: first= steps the first block once per epoch: it takes no wlr0, "
                         f"no wevery, and none of {', '.join(WAYS)}")
    if opts["wopt"] in ("rprop", "rpropm") and (opts["decay"] != "none" or opts["wlr0"]):
        raise SystemExit("minibatch_probe: Rprop reads lr only for its first step sizes: decay and wlr0 "
                         "do nothing with wopt=rprop or rpropm")
    return argv[0], opts, out


def among(param, arrays):
    """Whether ``param`` is one of ``arrays`` (the same array, not an equal one)."""
    return any(param is a for a in arrays)


def optimizer_for(kind, pairs, lr, opts, first=()):
    """An optimizer of ``kind`` on ``pairs``; with opts["wlr0"], the arrays in ``first`` at that lr."""
    classes = {"adam": Adam, "rprop": Rprop, "rpropm": RpropM, "signum": Signum, "sgd": SGD}
    options = {"adam": dict(eps=opts["eps"]), "sgd": dict(momentum=0.9),
               "rprop": dict(etas=(opts["etam"], opts["etap"]), step_sizes=(1e-6, opts["smax"]))}
    options["rpropm"] = options["rprop"]
    base = classes[kind]
    if not (opts["wlr0"] and first):
        return base(pairs, lr=lr, **options.get(kind, {}))

    class FirstBlockLR(base):
        """The first block's weights at learning rate wlr0, all else at lr."""
        def update(self, param, grad, state):
            if among(param, first):
                lr, self.lr = self.lr, opts["wlr0"]
                super().update(param, grad, state)
                self.lr = lr
            else:
                super().update(param, grad, state)
    return FirstBlockLR(pairs, lr=lr, **options.get(kind, {}))


def kth_step(trainer, k):
    """Whether this step is a k-th one (steps k-1, 2k-1, ...): where wevery=k steps the weights."""
    return trainer.steps % k == k - 1


def sag_update(trainer, opts):
    """The weights step on the mean of the last gradient of every batch (fixed batches), every
    ``wevery``-th step; the batch's rows at every step."""
    n_weights = len(trainer.model.parameters())
    stored = {}                                         # batch (its rows) -> (size, its weight gradients)

    def update(optimizer, rows, loop, step_weights=True):
        grads = [g for _, g in optimizer.pairs[:n_weights]]
        stored[tuple(trainer.rows)] = (len(trainer.rows), [g.copy() for g in grads])
        if not kth_step(trainer, opts["wevery"]):
            return MiniBatchRAI.update(trainer, optimizer, rows, loop, step_weights=False)
        seen = sum(size for size, _ in stored.values())
        for k, g in enumerate(grads):
            g[...] = sum(size / seen * kept[k] for size, kept in stored.values())
        return MiniBatchRAI.update(trainer, optimizer, rows, loop)
    return update


def shards_update(trainer):
    """One state of the weights' optimizer per batch (fixed batches), swapped in before its step."""
    n_weights = len(trainer.model.parameters())
    states = {}

    def update(optimizer, rows, loop, step_weights=True):
        key = tuple(trainer.rows)
        if key not in states:
            states[key] = [optimizer.init_state(p) for p, _ in optimizer.pairs[:n_weights]]
        for state, kept in zip(optimizer.state, states[key]):   # in place: the fast path's flat
            for k in kept:                                       # state arrays stay valid
                state[k][...] = kept[k]
        MiniBatchRAI.update(trainer, optimizer, rows, loop, step_weights)
        for state, kept in zip(optimizer.state, states[key]):
            for k in kept:
                kept[k][...] = state[k]
    return update


def every_kth_update(trainer, k):
    """The weights step at every ``k``-th step only (steps k-1, 2k-1, ...), on that step's
    gradient; the batch's rows at every step."""
    def update(optimizer, rows, loop, step_weights=True):
        MiniBatchRAI.update(trainer, optimizer, rows, loop, step_weights and kth_step(trainer, k))
    return update


def skip(optimizer, arrays):
    """Make ``optimizer`` leave ``arrays`` alone (its state and settings stay; its fast path, which
    would not skip them, is turned off)."""
    class Skipping(type(optimizer)):
        def update(self, param, grad, state):
            if not among(param, arrays):
                super().update(param, grad, state)
    optimizer.__class__ = Skipping


def statistics(H, Z):
    """A = [H, 1]ᵀ[H, 1] / n and C = [H, 1]ᵀ Z / n, in float64; H (n, d_in), Z (n, d_out)."""
    features = np.hstack([H, np.ones((len(H), 1))]).astype(np.float64)
    return features.T @ features / len(H), features.T @ Z.astype(np.float64) / len(H)


def ridge_step(A, C, W, b, rho):
    """[W; b] ← argmin (1/n)‖[H, 1] [W; b] - Z‖² + ρ‖[W; b] - [W_old; b_old]‖², in place, given
    ``statistics(H, Z)`` (or averages of them): the solution of (A + ρ I) [W; b] = C + ρ [W_old; b_old]."""
    old = np.vstack([W, b[None]]).astype(np.float64)
    new = np.linalg.solve(A + rho * np.eye(len(A)), C + rho * old)
    W[...], b[...] = new[:-1], new[-1]


def least_squares_weights(trainer, optimizer, opts):
    """The W-step of the method of auxiliary coordinates (Carreira-Perpiñán & Wang, 2014) on
    mini-batches: each block [Sigmoid, Linear] between two tables has, given the tables, a
    least-squares problem for its Linear. After the batch's rows step, its Linear is set by
    ``ridge_step`` on moving averages (factor ``gamma``, bias-corrected) of the batch's
    statistics, σ(rows of the table before) against rows of the table after; ``optimizer``
    (returned, made to skip those Linears) steps the rest (the first block; the rows, unless
    ``update_rows`` was replaced)."""
    model = trainer.model
    bounds = [0] + trainer.cuts + [len(model.layers)]
    blocks = [(s, model.layers[bounds[s] + 1]) for s in range(1, len(trainer.cuts))
              if [type(layer).__name__ for layer in model.layers[bounds[s]:bounds[s + 1]]] == ["Sigmoid", "Linear"]]
    skip(optimizer, [p for _, linear in blocks for p in linear.params.values()])
    moving, g, t = {}, opts["gamma"], 0           # block -> its averaged statistics; W-steps taken
    inner = trainer.update

    def update(opt, rows, loop, step_weights=True):
        nonlocal t
        inner(opt, rows, loop, step_weights)
        if not step_weights:
            return
        t += 1
        for s, linear in blocks:
            H = 1 / (1 + np.exp(-trainer.tables[s - 1][rows].astype(np.float64)))     # σ(table before)
            A, C = statistics(H, trainer.tables[s][rows])
            A0, C0 = moving.get(s, (0.0, 0.0))
            moving[s] = (g * A0 + (1 - g) * A, g * C0 + (1 - g) * C)
            ridge_step(moving[s][0] / (1 - g ** t), moving[s][1] / (1 - g ** t), linear.params["W"],
                       linear.params["b"], opts["rho"])
    trainer.update = update
    return optimizer


def first_block_per_epoch(trainer, optimizer, first, opts):
    """The first block's weights step once per epoch with their own optimizer (``first``, lr
    ``flr``), on their gradient summed over the epoch's batches (each times B/N); ``optimizer``
    (returned, of a subclass that skips them) steps the other weights and the rows."""
    pairs = [(p, g) for p, g in trainer.model.parameters() if among(p, first)]
    own = optimizer_for(opts["first"], pairs, opts["flr"], {**opts, "wlr0": 0.0})
    totals = [np.zeros_like(p) for p, _ in pairs]
    n = trainer.X.shape[0]

    skip(optimizer, first)
    inner = trainer.update

    def update(opt, rows, loop, step_weights=True):
        for total, (_, grad) in zip(totals, pairs):
            total += len(trainer.rows) / n * grad
        inner(opt, rows, loop, step_weights)
        if trainer.epochs.is_integer():                 # the epoch's last batch
            for total, (_, grad) in zip(totals, pairs):
                grad[...] = total
                total[...] = 0
            own.step()
    trainer.update = update
    return optimizer


def main(argv):
    name, opts, out = parse(argv)
    RpropM.beta = Signum.beta = opts["beta"]
    ds = data.moons()
    model, loss = network(ds, [100] * 100, "sigmoid", opts["init"], opts["seed"])
    for p in model.layers[0].params.values():
        p *= opts["gain0"]
    trainer = MiniBatchRAI(model, ds.X_train, ds.y_train, loss, batch_size=opts["bs"], seed=opts["seed"],
                           cuts=opts["cuts"], inner_steps=opts["inner"], lam=opts["lam"],
                           shuffle=bool(opts["shuffle"]), weight_steps="per-epoch" if opts["epoch"] else "per-batch")
    first = [p for layer in model.layers[:trainer.cuts[0]] for p in layer.params.values()]
    optimizer = optimizer_for(opts["wopt"], trainer.parameters(), opts["wlr"], opts, first)
    if opts["first"]:
        optimizer = first_block_per_epoch(trainer, optimizer, first, opts)
    optimizers = [(optimizer, opts["wlr"])]
    if opts["topt"] != "same":
        tables = optimizer_for(opts["topt"], trainer.parameters(), opts["tlr"], opts)  # only its table entries
        optimizers.append((tables, opts["tlr"]))                                       # are used

        def update_rows(weights_optimizer, i, index):
            tables.steps = weights_optimizer.steps
            MiniBatchRAI.update_rows(tables, i, index)
        trainer.update_rows = update_rows
    if opts["lsq"]:
        optimizer = least_squares_weights(trainer, optimizer, opts)
    if opts["sag"]:
        trainer.update = sag_update(trainer, opts)
    elif opts["wevery"] > 1:
        trainer.update = every_kth_update(trainer, opts["wevery"])
    elif opts["shards"]:
        trainer.update = shards_update(trainer)
    elif opts["rowfrac"] > 1:
        def update(optimizer, rows, loop, step_weights=True):
            some = rows[rows % opts["rowfrac"] == trainer.steps % opts["rowfrac"]]
            MiniBatchRAI.update(trainer, optimizer, some, loop, step_weights)
        trainer.update = update

    def decay(step, _trainer):
        if opts["decay"] == "cos":
            for opt, lr in optimizers:
                opt.lr = lr * 0.5 * (1 + math.cos(math.pi * step / opts["iters"]))

    start = time.time()
    history = trainer.fit(optimizer, opts["iters"], X_val=ds.X_test, y_val=ds.y_test, record_every=opts["every"],
                          callback=decay, progress=False)
    result = dict(name=name, opts=opts, seconds=round(time.time() - start, 1),
                  train_acc=[round(float(a), 3) for a in history["chained_acc"]],
                  test_acc=[round(float(a), 3) for a in history["val_acc"]],
                  relaxed_loss=float(history.last("relaxed_loss")),
                  largest_gap=float(np.max(history["identity_gap"][-1])))
    print(json.dumps(result))
    with open(out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
