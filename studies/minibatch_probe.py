"""Probe mini-batch RAI on the deep sigmoid net (100 hidden layers of width 100, two-moons).

The runs behind docs/study.md's "Where the failure comes from". One run per call, one JSON line
out (chained training accuracy every ``every`` steps, held-out accuracy, relaxed loss, largest
identity gap), appended to ``--out``::

    python studies/minibatch_probe.py NAME [key=value ...] [--out results.jsonl]

keys (defaults): init=orthogonal|uniform, bs=32, iters=3000, seed=0, cuts="linear[3:]",
wopt=adam|rprop|rpropm|sgd and wlr=1e-2 (the weights), topt=same|adam|rprop|... and tlr=1e-2
(the table rows: "same" uses the weights' optimizer), eps=1e-8 (Adam), beta=0.9 (rpropm),
decay=none|cos (cosine decay of both learning rates), lam=1.0, inner=1, every=100.

``rpropm`` is Rprop's rule on a moving average of the gradient (β = beta), tried here only.
A separate table optimizer is applied by replacing the trainer's ``update_rows`` (the rows of
each batch, their own state in that optimizer); minirai has no option for it.
"""
import json
import math
import sys
import time

import numpy as np

from minirai import SGD, Adam, Rprop, data
from minirai.methods import network
from minirai.minibatch import MiniBatchRAI


class RpropM(Rprop):
    """Rprop's sign rule applied to m ← β m + (1 - β) g instead of g."""
    beta = 0.9

    def init_state(self, param):
        return {**super().init_state(param), "m": np.zeros_like(param)}

    def update(self, param, grad, state):
        state["m"][...] = self.beta * state["m"] + (1 - self.beta) * grad
        super().update(param, state["m"], state)


def main(argv):
    out = "minibatch_probe.jsonl"
    if "--out" in argv:
        k = argv.index("--out")
        out, argv = argv[k + 1], argv[:k] + argv[k + 2:]
    opts = dict(init="orthogonal", wopt="adam", wlr=1e-2, topt="same", tlr=1e-2, iters=3000, bs=32, seed=0,
                cuts="linear[3:]", decay="none", inner=1, lam=1.0, every=100, eps=1e-8, beta=0.9)
    if not argv:
        raise SystemExit(__doc__)
    name = argv[0]
    for item in argv[1:]:
        key, _, value = item.partition("=")
        if key not in opts or not value:
            raise SystemExit(f"minibatch_probe: expected key=value with a key from {sorted(opts)}, got {item!r}")
        opts[key] = value if isinstance(opts[key], str) else type(opts[key])(value)
    RpropM.beta = opts["beta"]
    make = {"adam": lambda p, lr: Adam(p, lr=lr, eps=opts["eps"]), "rprop": lambda p, lr: Rprop(p, lr=lr),
            "rpropm": lambda p, lr: RpropM(p, lr=lr), "sgd": lambda p, lr: SGD(p, lr=lr, momentum=0.9)}
    ds = data.moons()
    model, loss = network(ds, [100] * 100, "sigmoid", opts["init"], opts["seed"])
    trainer = MiniBatchRAI(model, ds.X_train, ds.y_train, loss, batch_size=opts["bs"], seed=opts["seed"],
                           cuts=opts["cuts"], inner_steps=opts["inner"], lam=opts["lam"])
    optimizer = make[opts["wopt"]](trainer.parameters(), opts["wlr"])
    optimizers = [(optimizer, opts["wlr"])]
    if opts["topt"] != "same":
        tables = make[opts["topt"]](trainer.parameters(), opts["tlr"])   # only its table entries are used
        optimizers.append((tables, opts["tlr"]))

        def update_rows(weights_optimizer, i, index):
            tables.steps = weights_optimizer.steps
            MiniBatchRAI.update_rows(tables, i, index)
        trainer.update_rows = update_rows

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
