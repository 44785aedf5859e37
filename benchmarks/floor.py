"""The floor of one training step: its matrix products alone, and its optimizer's memory traffic.

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/floor.py [--threads N] [--json PATH]

For each workload of ``bench.py`` (deep and wide; BP and RAI, a table after every Linear) it times:

* **products**: exactly the BLAS calls a step makes (shapes, layouts, stacking, a stack's pieces), nothing else: the
  forward ``x W`` of every Linear the fast chain computes, and the backward ``xᵀ dy`` and ``dy Wᵀ`` of
  every Linear the gradient reaches. In BP, the layers whose gradient vanished to 0 are skipped in the
  backward, and those of them whose weights kept their bytes also in the forward (their outputs are
  copied back), as the fast path skips them: both counts are measured from a real step;
* **memory**: the machine's copy bandwidth (``np.copyto`` between two float32 arrays as large as the
  optimizer's arrays, so that caches help it as much as they help the optimizer; read + write), and
  from it the time the optimizer needs at least, with Rprop's traffic of 7 float32 per value (reads
  param, grad, previous sign, step size; writes param, previous sign, step size);
* **minirai's step**, for the same workload, on the fast path (``--threads`` workers for RAI).

The floor is products + optimizer; the rest of a step (the sigmoid's ``exp``, the hidden losses, Python)
is what a faster engine could still save. With ``--threads N`` the products are split over N threads
as minirai's workers split them (RAI: its stacked blocks; BP: none, its chain is sequential).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import threadpoolctl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import minirai  # noqa: E402
from minirai.fast import stacking  # noqa: E402
from minirai.rai import RAI  # noqa: E402
from minirai.train import TrainingLoop, prepare_data  # noqa: E402

WORKLOADS = {"deep": ([2] + [100] * 100 + [1], 100), "wide": ([2] + [512] * 20 + [1], 2048)}


def timed(function: Callable[[], Any], seconds: float = 1.0) -> float:
    """Median seconds of ``function()`` over repeats filling about ``seconds`` (after one warm-up call)."""
    function()
    samples: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 3:
        t = time.perf_counter()
        function()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def bandwidth(values: int) -> float:
    """Bytes per second that ``np.copyto`` moves (read + write) between two float32 arrays of ``values``."""
    a, b = np.ones(values, np.float32), np.ones(values, np.float32)
    return 2 * a.nbytes / timed(lambda: np.copyto(b, a))


def product_calls(sizes: list[int], n: int, rai: bool, active: int, threads: int,
                  computed: int | None = None) -> Callable[[], None]:
    """The step's matrix products: forward of the top ``computed`` Linear layers (default and RAI: all),
    backward of the top ``active`` ones (RAI: all)."""
    rng = np.random.default_rng(0)
    widths = list(zip(sizes[:-1], sizes[1:]))
    x = [rng.random((n, d_in), np.float32) for d_in, _ in widths]
    W = [rng.random((d_in, d_out), np.float32) for d_in, d_out in widths]
    dy = [rng.random((n, d_out), np.float32) for _, d_out in widths]
    out = [np.empty((n, d_out), np.float32) for _, d_out in widths]
    grad_W = [np.empty_like(w) for w in W]
    grad_x = [np.empty((n, d_in), np.float32) for d_in, _ in widths]
    middle = [k for k, (d_in, d_out) in enumerate(widths) if (d_in, d_out) == widths[1]][1:-1] if rai else []
    if middle:           # RAI's stacked blocks: (piece, n, d) products, as minirai's stacks run in pieces
        G = len(middle)
        xs, Ws, dys = (np.stack([a[k] for k in middle]) for a in (x, W, dy))
        outs, gWs, gxs = np.empty_like(dys), np.empty_like(Ws), np.empty_like(xs)
        pieces = np.array_split(np.arange(G), threads)
        pool = ThreadPoolExecutor(threads) if threads > 1 else None

        def stacked(part: np.ndarray) -> None:
            count = len(part)
            most = max(1, stacking.PIECE_BYTES // xs[0].nbytes)
            size = max(d for d in range(1, count + 1) if count % d == 0 and d <= most)
            for a in range(part[0], part[-1] + 1, size):
                b = a + size
                np.matmul(xs[a:b], Ws[a:b], out=outs[a:b])
                np.matmul(xs[a:b].swapaxes(-1, -2), dys[a:b], out=gWs[a:b])
                np.matmul(dys[a:b], Ws[a:b].swapaxes(-1, -2), out=gxs[a:b])
    alone = [k for k in range(len(widths)) if k not in middle]
    backward = set(alone) if rai else set(alone[len(alone) - active:])   # (active may be 0: none)
    forward = set(alone) if rai or computed is None else set(alone[len(alone) - computed:])

    def run() -> None:
        if middle:
            if pool is not None:
                list(pool.map(stacked, pieces))
            else:
                stacked(np.arange(G))
        for k in alone:
            if k in forward:
                np.matmul(x[k], W[k], out=out[k])
            if k in backward:
                np.matmul(x[k].T, dy[k], out=grad_W[k])
                np.matmul(dy[k], W[k].T, out=grad_x[k])
    return run


def minirai_step(sizes: list[int], n: int, rai: bool, threads: int) -> tuple[float, int, int, int]:
    """Seconds of one fast-path step, the values the optimizer updates, and (BP) the Linear layers whose
    gradient is nonzero at that step and those whose forward the chain computed (not copied back)."""
    X = np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    model = minirai.mlp(sizes, "sigmoid", "sigmoid", seed=0)
    loss = minirai.BCE()
    with TrainingLoop(threads) as loop:
        if rai:
            trainer = RAI(model, X, y, loss)
            optimizer = minirai.Rprop(trainer.parameters(), lr=0.1)
            seconds = timed(lambda: trainer.step(optimizer, loop=loop))
            return seconds, sum(p.size for p, _ in trainer.parameters()), len(sizes) - 1, len(sizes) - 1
        Xp, yp = prepare_data(model, loss, X, y)
        optimizer = minirai.Rprop(model.parameters(), lr=0.1)
        chain = loop.chain(model)

        def step() -> None:
            with loop.arithmetic():
                loss.forward(chain.forward(Xp), yp)
                chain.backward(loss.backward())
                loop.step(optimizer)
        seconds = timed(step)
        active = sum(1 for layer in model.layers if layer.params and layer.grads["W"].any())
        computed = sum(1 for layer in model.layers[chain.reused:] if layer.params)
        return seconds, sum(p.size for p, _ in model.parameters()), active, computed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    rows = []
    with threadpoolctl.threadpool_limits(1, "blas"):
        print(f"threads {args.threads}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"{'workload':<9}{'method':<7}{'step ms':>9}{'products ms':>13}{'GB/s':>7}{'optimizer ms':>14}"
              f"{'floor ms':>10}{'step / floor':>14}")
        for name in args.workloads:
            sizes, n = WORKLOADS[name]
            for rai in (False, True):
                step, values, active, computed = minirai_step(sizes, n, rai, args.threads)
                products = timed(product_calls(sizes, n, rai, active, args.threads, computed))
                speed = bandwidth(values)
                optimizer = 7 * 4 * values / speed / max(1, args.threads if rai else 1)
                floor = products + optimizer
                method = "rai" if rai else "bp"
                rows.append(dict(workload=name, method=method, step_ms=step * 1e3, products_ms=products * 1e3,
                                 optimizer_ms=optimizer * 1e3, floor_ms=floor * 1e3, active_linear=active,
                                 computed_linear=computed,
                                 values=values, bandwidth_gbs=speed / 1e9, threads=args.threads))
                print(f"{name:<9}{method:<7}{step * 1e3:>9.2f}{products * 1e3:>13.2f}{speed / 1e9:>7.1f}"
                      f"{optimizer * 1e3:>14.2f}"
                      f"{floor * 1e3:>10.2f}{step / floor:>14.2f}"
                      + ("" if rai else f"   (Linear layers: {computed} computed forward, {active} reached backward)"))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
