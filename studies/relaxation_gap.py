"""The relaxation-gap options of docs/study.md, on the proposal's deep net (seed 0, 3000 Rprop steps).

    python studies/relaxation_gap.py [--iters 3000] [--seed 0] [--jobs 2] [--only TEXT]

Each variant trains the 2-[100]x100-1 sigmoid net on two-moons with RAI (the proposal's
settings unless the variant says otherwise) and prints the chained training and held-out
accuracy, the relaxed loss and the mean identity gap. About a minute per variant on one core.
"""
from __future__ import annotations

import argparse

import numpy as np
from joblib import Parallel, delayed

from minirai import Adam, Rprop, data
from minirai.research.methods import network
from minirai.research.regularisers import Multipliers, TableL2
from minirai.rai import RAI, geometric
from minirai.train import evaluate

VARIANTS = {
    "the proposal's rai": {},
    "growing λ: geometric(1, 10, every=500, maximum=1e6)": {"lam": ("geometric", 1.0, 10.0, 500, 1e6)},
    "table re-initialisation every 500 steps": {"reinit_period": 500},
    "critical orthogonal init": {"init": "orthogonal"},
    "Adam lr 1e-3 instead of Rprop": {"adam": 1e-3},
    'cuts "linear[1:-1]"': {"cuts": "linear[1:-1]"},
    'cuts "linear[3:]" (rai-tuned)': {"cuts": "linear[3:]"},
    'cuts "linear[5:-1]"': {"cuts": "linear[5:-1]"},
    'cuts "linear[10:-1]"': {"cuts": "linear[10:-1]"},
    "a cut every 5th Linear": {"cuts": "linear[::5]"},
    "L2 on the tables, μ = 1e-3": {"l2": 1e-3},
    "L2 on the tables, μ = 1e-1": {"l2": 1e-1},
    "multipliers (augmented Lagrangian), updated every 100 steps": {"multipliers": 100},
    "multipliers, updated every 10 steps": {"multipliers": 10},
}


def run(name: str, iters: int, seed: int) -> str:
    options = dict(VARIANTS[name])
    moons = data.moons()
    model, loss = network(moons, [100] * 100, "sigmoid", options.pop("init", "uniform"), seed)
    adam = options.pop("adam", None)
    if "lam" in options:
        options["lam"] = geometric(*options["lam"][1:])
    if "l2" in options:
        options["hidden_loss"] = TableL2(options.pop("l2"))
    every = options.pop("multipliers", None)
    if every:
        options["hidden_loss"] = Multipliers()
    trainer = RAI(model, moons.X_train, moons.y_train, loss, **options)
    optimizer = Adam(trainer.parameters(), lr=adam) if adam else Rprop(trainer.parameters(), lr=0.1)

    def raise_multipliers(step, trainer):
        if every and step % every == 0:
            trainer.forward()                      # o - Z at the current weights and tables
            for hidden in trainer.hidden_losses:
                hidden.update()
    history = trainer.fit(optimizer, iters, record_every=iters, progress=False, callback=raise_multipliers)
    train = evaluate(model, loss, moons.X_train, moons.y_train)["accuracy"]
    test = evaluate(model, loss, moons.X_test, moons.y_test)["accuracy"]
    return (f"| {name} | {train:.2f} | {test:.3f} | {history.last('relaxed_loss'):.1e} | "
            f"{np.mean(history['identity_gap'][-1]):.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default="", help="run only the variants whose name contains this text")
    args = parser.parse_args()
    names = [name for name in VARIANTS if args.only in name]
    if not names:
        raise SystemExit(f"relaxation_gap: no variant's name contains {args.only!r}; the variants: {list(VARIANTS)}")
    print("| option | train | held out | relaxed loss | identity gap |\n|---|---|---|---|---|")
    for line in Parallel(n_jobs=args.jobs)(delayed(run)(name, args.iters, args.seed) for name in names):
        print(line, flush=True)


if __name__ == "__main__":
    main()
