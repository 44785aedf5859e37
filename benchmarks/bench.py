"""Speed and memory of one full-batch training step: minirai against PyTorch (eager).

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py [--threads N] [--quick]
        [--json PATH] [--device cpu|gpu] [--no-torch] [--rounds R] [--min-time S]

Every measurement is one training step on the full batch: forward, backward and an Rprop
update (lr 0.1) of a float32 network trained with BCE on two-moons. The workloads:

    shallow  [2, 42, 100, 100, 42, 1], ReLU, sigmoid output,   n = 100
    deep     [2] + [100] * 100 + [1], sigmoid everywhere,       n = 100
    wide     [2] + [512] * 20 + [1], sigmoid everywhere,        n = 2048

each trained by chained backprop (BP) and by RAI (a trainable table after every Linear).
PyTorch runs the same workloads in eager mode, with nn.Linear layers, BCELoss and
torch.optim.Rprop; its RAI mirrors the proposal's code (see ``TorchRAI``). PyTorch starts
from minirai's initial weights (drawn from nn.Linear's default distribution), so both time
the same stretch of the same training run.

minirai and PyTorch are measured alternately in the same process, a few rounds each, and
the median is reported, because a shared machine's speed drifts. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import numpy as np
import threadpoolctl

import minirai
from minirai import backend, data
from minirai.inspect import GradientRecorder
from minirai.losses import BCE
from minirai.network import mlp
from minirai.optim import Rprop
from minirai.rai import RAI
from minirai.train import TrainingLoop, prepare_data

LR = 0.1          # the proposal's Rprop learning rate
SEED = 0
CHECK_STEPS = 3   # steps of the minirai-vs-torch correctness check
CHECK_RTOL = 1e-4


# -- workloads ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    name: str
    sizes: list[int]
    activation: str          # hidden activation ("relu" or "sigmoid"); the output is always sigmoid
    n: int                   # full batch: two-moons with n points


WORKLOADS = [
    Workload("shallow", [2, 42, 100, 100, 42, 1], "relu", 100),
    Workload("deep", [2] + [100] * 100 + [1], "sigmoid", 100),
    Workload("wide", [2] + [512] * 20 + [1], "sigmoid", 2048),
]

# Rows of the table: (workload, label, minirai runner, torch runner); runners are named
# "workload/method". Two rows share a measurement on one side so that they can be compared:
# "(torch FTZ)" rows set PyTorch's flush-denormal mode, as minirai's training steps set the CPU's;
# "textbook" rows are minirai's textbook path (minirai.reference(): every layer's own methods,
# block by block, array by array), against the same torch run with flush-to-zero.
ROWS = [
    ("shallow", "bp", "shallow/bp", "shallow/bp"),
    ("shallow", "rai", "shallow/rai", "shallow/rai"),
    ("deep", "bp", "deep/bp", "deep/bp"),
    ("deep", "bp (torch FTZ)", "deep/bp", "deep/bp-ftz"),
    ("deep", "bp textbook", "deep/bp-textbook", "deep/bp-ftz"),
    ("deep", "rai", "deep/rai", "deep/rai"),
    ("deep", "rai (torch FTZ)", "deep/rai", "deep/rai-ftz"),
    ("deep", "rai textbook", "deep/rai-textbook", "deep/rai-ftz"),
    ("deep", "rai + grad records", "deep/rai-recorded", "deep/rai"),
    ("wide", "bp", "wide/bp", "wide/bp"),
    ("wide", "rai", "wide/rai", "wide/rai"),
]


@dataclass
class Runner:
    """One training setup, ready to step. ``context()`` wraps every run of steps."""
    name: str
    step: Callable[[], Any]
    sync: Callable[[], None]
    context: Callable[[], ContextManager] = contextlib.nullcontext
    rates: list[float] = field(default_factory=list)   # it/s, one per round

    def run(self, steps: int) -> None:
        with self.context():
            for _ in range(steps):
                self.step()
        self.sync()


# -- minirai -----------------------------------------------------------------------------------
def minirai_data(w: Workload) -> tuple[Any, Any]:
    """Two-moons on the active backend, float32, targets as the loss wants them (N, 1)."""
    dataset = data.moons(n_samples=w.n)
    return dataset.X_train, dataset.y_train


def minirai_model(w: Workload, seed: int = SEED):
    return mlp(w.sizes, w.activation, "sigmoid", seed=seed)


def training_loop(textbook: bool) -> TrainingLoop:
    """What fit and RAI.fit run their steps in (the fast path unless ``textbook``; flush-to-zero
    during each step; BLAS threads), keeping the thread count that this benchmark set (--threads)."""
    blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    with minirai.reference(textbook):
        return TrainingLoop(threads=min(blas) if blas else None)


def minirai_bp(w: Workload, X: Any, y: Any, model=None, textbook: bool = False) -> Runner:
    """Chained backprop: the four lines of minirai.train.fit, as fit runs them."""
    model = model or minirai_model(w)
    loss = BCE()
    X, y = prepare_data(model, loss, X, y)
    opt = Rprop(model.parameters(), lr=LR)
    loop = training_loop(textbook)
    chain = loop.chain(model)

    def step() -> Any:
        with loop.arithmetic():
            pred = chain.forward(X)
            value = loss.forward(pred, y)
            chain.backward(loss.backward())
            loop.step(opt)
        return value

    return Runner(f"{w.name}/bp" + ("-textbook" if textbook else ""), step, backend.synchronize, lambda: loop)


def minirai_rai(w: Workload, X: Any, y: Any, textbook: bool = False, model=None,
                record: bool = False) -> Runner:
    """RAI with a table after every Linear: ``trainer.step(opt, loop=...)``, as RAI.fit runs it.

    ``record``: a GradientRecorder captures every step (to measure what recording costs)."""
    model = model or minirai_model(w)
    trainer = RAI(model, X, y, BCE(), cuts="linear")
    opt = Rprop(trainer.parameters(), lr=LR)
    recorder = GradientRecorder(every=1) if record else None
    loop = training_loop(textbook)
    suffix = ("-textbook" if textbook else "") + ("-recorded" if record else "")
    return Runner(f"{w.name}/rai{suffix}", lambda: trainer.step(opt, recorder, loop=loop), backend.synchronize,
                  lambda: loop)


def minirai_runners(w: Workload, X: Any, y: Any) -> list[Runner]:
    runners = [minirai_bp(w, X, y), minirai_rai(w, X, y)]
    if w.name == "deep":
        runners.append(minirai_bp(w, X, y, textbook=True))
        runners.append(minirai_rai(w, X, y, textbook=True))
        runners.append(minirai_rai(w, X, y, record=True))
    return runners


# -- PyTorch -----------------------------------------------------------------------------------
def torch_model(torch: Any, w: Workload, device: str) -> Any:
    """nn.Linear layers (default init: U(±1/√fan_in), as minirai's), activation after each."""
    nn = torch.nn
    layers: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        last = i == len(w.sizes) - 2
        layers.append(nn.Sigmoid() if last or w.activation == "sigmoid" else nn.ReLU())
    return nn.Sequential(*layers).to(device)


def torch_sync(torch: Any, device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def torch_bp(torch: Any, w: Workload, X: Any, y: Any, device: str, model: Any = None,
             flush_denormal: bool = False) -> Runner:
    model = model if model is not None else torch_model(torch, w, device)
    criterion = torch.nn.BCELoss()
    opt = torch.optim.Rprop(model.parameters(), lr=LR)

    def step() -> Any:
        opt.zero_grad()
        value = criterion(model(X), y)
        value.backward()
        opt.step()
        return value

    context = (lambda: torch_flushing_denormals(torch)) if flush_denormal else contextlib.nullcontext
    return Runner(f"{w.name}/bp" + ("-ftz" if flush_denormal else ""), step, torch_sync(torch, device), context)


@contextlib.contextmanager
def torch_flushing_denormals(torch: Any):
    """PyTorch's flush-to-zero mode, only while this runner steps (it is process-wide state)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class TorchRAI:
    """RAI as the proposal's code writes it, in plain PyTorch.

    One nn.Parameter table per Linear layer holding its output (the pre-activation) for every
    example, initialised from one forward pass. Block 0 computes Linear_0(X); block s > 0
    computes Linear_s(act(table_{s-1})). The relaxed loss is

        BCE(sigmoid(table_last), y) + Σ_s MSE(block_s output, table_s)

    and one Rprop updates the weights and the tables together.
    """

    def __init__(self, torch: Any, model: Any, activation: str, X: Any, y: Any) -> None:
        self.torch, self.X, self.y = torch, X, y
        self.linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        self.act = torch.sigmoid if activation == "sigmoid" else torch.relu
        with torch.no_grad():
            tables, h = [], X
            for s, linear in enumerate(self.linears):
                h = linear(h if s == 0 else self.act(h))
                tables.append(torch.nn.Parameter(h.clone()))
        self.tables = tables
        self.bce, self.mse = torch.nn.BCELoss(), torch.nn.MSELoss()
        self.opt = torch.optim.Rprop(list(model.parameters()) + self.tables, lr=LR)

    def relaxed_loss(self) -> Any:
        loss = self.bce(self.torch.sigmoid(self.tables[-1]), self.y)
        for s, linear in enumerate(self.linears):
            inputs = self.X if s == 0 else self.act(self.tables[s - 1])
            loss = loss + self.mse(linear(inputs), self.tables[s])
        return loss

    def step(self) -> Any:
        self.opt.zero_grad()
        value = self.relaxed_loss()
        value.backward()
        self.opt.step()
        return value


def torch_rai(torch: Any, w: Workload, X: Any, y: Any, device: str, model: Any = None,
              flush_denormal: bool = False) -> Runner:
    model = model if model is not None else torch_model(torch, w, device)
    trainer = TorchRAI(torch, model, w.activation, X, y)
    context = (lambda: torch_flushing_denormals(torch)) if flush_denormal else contextlib.nullcontext
    return Runner(f"{w.name}/rai" + ("-ftz" if flush_denormal else ""), trainer.step, torch_sync(torch, device),
                  context)


def torch_data(torch: Any, X: Any, y: Any, device: str) -> tuple[Any, Any]:
    X_t = torch.from_numpy(backend.to_numpy(X).astype(np.float32)).to(device)
    y_t = torch.from_numpy(backend.to_numpy(y).astype(np.float32).reshape(-1, 1)).to(device)
    return X_t, y_t


def torch_runners(torch: Any, w: Workload, X: Any, y: Any, device: str) -> list[Runner]:
    """PyTorch's runners, each starting from minirai's initial weights (drawn from nn.Linear's own
    distribution), so that both frameworks time the same stretch of the same training run."""
    X_t, y_t = torch_data(torch, X, y, device)
    source = minirai_model(w)

    def model() -> Any:
        m = torch_model(torch, w, device)
        copy_weights(torch, source, m)
        return m

    runners = [torch_bp(torch, w, X_t, y_t, device, model()), torch_rai(torch, w, X_t, y_t, device, model())]
    if w.name == "deep" and device == "cpu":
        runners.append(torch_bp(torch, w, X_t, y_t, device, model(), flush_denormal=True))
        runners.append(torch_rai(torch, w, X_t, y_t, device, model(), flush_denormal=True))
    return runners


# -- correctness: the same weights give the same losses -----------------------------------------
def copy_weights(torch: Any, source: Any, target: Any) -> None:
    """minirai Linear W (in, out) and b -> torch nn.Linear weight (out, in) and bias."""
    linears = [m for m in target if isinstance(m, torch.nn.Linear)]
    mine = [layer for layer in source.layers if "W" in layer.params]
    assert len(linears) == len(mine)
    with torch.no_grad():
        for layer, linear in zip(mine, linears):
            linear.weight.copy_(torch.from_numpy(backend.to_numpy(layer.params["W"]).T.copy()))
            linear.bias.copy_(torch.from_numpy(backend.to_numpy(layer.params["b"])))


def check_against_torch(torch: Any, w: Workload, X: Any, y: Any, device: str) -> list[str]:
    """Train minirai and torch from the same weights for CHECK_STEPS steps; compare the losses.

    Each step's loss (computed before its update, so steps 2 and 3 check the updates too) must
    agree to CHECK_RTOL relative. Not more steps: under Rprop, a gradient that is exactly 0 in
    exact arithmetic (a sum that cancels over the balanced classes) is rounding noise in both
    implementations, and Rprop moves by ±lr on its sign, so two correct implementations part
    after a few steps (for deep RAI at step 4, by ~3e-3). Returns the printed lines; raises if
    a check fails.
    """
    X_t, y_t = torch_data(torch, X, y, device)
    lines = []
    for method in ("bp", "rai", "rai-textbook") if w.name == "deep" else ("bp", "rai"):
        model = minirai_model(w)
        reference = torch_model(torch, w, device)
        copy_weights(torch, model, reference)
        if method == "bp":
            ours, theirs = minirai_bp(w, X, y, model), torch_bp(torch, w, X_t, y_t, device, reference)
        else:
            ours = minirai_rai(w, X, y, textbook=method == "rai-textbook", model=model)
            theirs = torch_rai(torch, w, X_t, y_t, device, reference)
        with ours.context():
            a = [backend.to_float(ours.step()) for _ in range(CHECK_STEPS)]
        b = [theirs.step().item() for _ in range(CHECK_STEPS)]
        rel = max(abs(p - q) / max(abs(q), 1e-30) for p, q in zip(a, b))
        ok = rel <= CHECK_RTOL
        lines.append(f"check: {w.name:<7} {method:<12} losses minirai {fmt_list(a)} torch {fmt_list(b)} "
                     f"max rel diff {rel:.1e} {'ok' if ok else 'FAILED'}")
        print(lines[-1], flush=True)
        if not ok:
            raise SystemExit(f"minirai and torch disagree on {w.name} {method} (relative difference {rel:.2e})")
    return lines


def fmt_list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


# -- timing ----------------------------------------------------------------------------------
def steps_per_second(runner: Runner, steps: int, warmup: int = 1) -> float:
    """Take ``warmup`` untimed steps, then time ``steps`` steps; return it/s."""
    with runner.context():
        for _ in range(warmup):
            runner.step()
        runner.sync()
        start = time.perf_counter()
        for _ in range(steps):
            runner.step()
        runner.sync()
        return steps / (time.perf_counter() - start)


def steps_per_measurement(runners: list[Runner], min_time: float, min_steps: int) -> int:
    """How many steps to time per measurement: ``min_time`` seconds at the runners' median speed.

    Every runner of a workload times the same number of steps, so all of them have taken the
    same number of training steps at every measurement: the time of a step depends on the
    stage of training (saturated sigmoids, subnormal numbers), and a time budget would let
    the faster framework run ahead into another stage.
    """
    first, count = runners[0], 0
    with first.context():                     # probe: as many steps of the first runner as fit in 0.1 s
        start = time.perf_counter()
        while count < 1 or time.perf_counter() - start < 0.1:
            first.step()
            count += 1
            first.sync()
        rates = [count / (time.perf_counter() - start)]
    rates += [steps_per_second(runner, count, warmup=0) for runner in runners[1:]]
    return max(min_steps, math.ceil(min_time * statistics.median(rates)))


# -- memory ----------------------------------------------------------------------------------
class MemoryProbe:
    """Bytes allocated by minirai: tracemalloc on the CPU (NumPy reports to it), CuPy's pool on a GPU."""

    def __init__(self) -> None:
        self.gpu = backend.device_name() == "gpu"

    def start(self) -> None:
        backend.synchronize()
        if self.gpu:
            pool = backend.xp().get_default_memory_pool()
            pool.free_all_blocks()
            self.base = pool.used_bytes()
        else:
            tracemalloc.start()
            self.base = tracemalloc.get_traced_memory()[0]

    def current(self) -> int:
        backend.synchronize()
        if self.gpu:
            return backend.xp().get_default_memory_pool().used_bytes() - self.base
        return tracemalloc.get_traced_memory()[0] - self.base

    def peak(self) -> int:
        """Highest allocation since start: tracemalloc's peak; for CuPy the pool's size (what it
        had to hold at once, as freed blocks stay cached in it)."""
        backend.synchronize()
        if self.gpu:
            return backend.xp().get_default_memory_pool().total_bytes() - self.base
        return tracemalloc.get_traced_memory()[1] - self.base

    def stop(self) -> None:
        if not self.gpu:
            tracemalloc.stop()


def peak_memory(build: Callable[[], Runner], steps: int = 20) -> dict[str, float]:
    """Peak bytes of building a runner and taking ``steps`` steps (weights, tables, optimizer
    state, activations and temporaries); also the part above what was held after building."""
    probe = MemoryProbe()
    probe.start()
    try:
        runner = build()
        held = probe.current()
        runner.run(steps)
        peak = probe.peak()
        after = probe.current()
    finally:
        probe.stop()
    mb = 1 / 2**20
    return {"peak_mb": peak * mb, "setup_mb": held * mb, "after_steps_mb": after * mb}


def memory_flatness(w: Workload, X: Any, y: Any, first: int, last: int) -> tuple[float, float]:
    """Allocated MB after ``first`` and after ``last`` steps of RAI on ``w``: should not grow."""
    probe = MemoryProbe()
    probe.start()
    try:
        runner = minirai_rai(w, X, y)
        runner.run(first)
        at_first = probe.current()
        runner.run(last - first)
        at_last = probe.current()
    finally:
        probe.stop()
    return at_first / 2**20, at_last / 2**20


# -- environment ------------------------------------------------------------------------------
def describe_environment(args: argparse.Namespace, torch: Any) -> list[str]:
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, "
             f"minirai {getattr(minirai, '__version__', '?')}, "
             f"device {backend.device_name()}, threads {args.threads}, "
             f"load average {load_average()}, {os.cpu_count()} CPUs"]
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") == "blas":
            lines.append(f"numpy BLAS: {info.get('internal_api')} {info.get('version')}, kernel "
                         f"{info.get('architecture', '?')}, {info.get('num_threads')} threads "
                         f"({os.path.basename(info.get('filepath', ''))})")
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            lines.append(f"{name}={os.environ[name]} is set: it changes OpenBLAS's kernels; benchmark with it "
                         f"unset (env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py)")
    if torch is not None:
        blas = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
        lines.append(f"torch {torch.__version__} ({blas}), {torch.get_num_threads()} threads, eager mode, "
                     f"Rprop foreach={'default (on for CUDA)' if args.device == 'gpu' else 'default (off on CPU)'}")
    if backend.device_name() == "gpu":
        xp = backend.xp()
        props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
        lines.append(f"GPU: {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}, "
                     f"CuPy {xp.__version__}")
    return lines


def import_torch(args: argparse.Namespace) -> tuple[Any, str]:
    """PyTorch and its device, or (None, reason)."""
    if args.no_torch:
        return None, "--no-torch"
    try:
        import torch
    except ImportError:
        return None, "torch is not importable"
    if args.device == "gpu":
        if not torch.cuda.is_available():
            return None, "torch has no CUDA device"
        return torch, "cuda"
    return torch, "cpu"


# -- the report -------------------------------------------------------------------------------
def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'workload':<8} {'method':<18} {'minirai it/s':>12} {'torch it/s':>10} {'ratio':>6} "
            f"{'minirai peak MB':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        torch_rate = "-" if r["torch_it_s"] is None else f"{r['torch_it_s']:.1f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"{r['workload']:<8} {r['method']:<18} {r['minirai_it_s']:>12.1f} {torch_rate:>10} {ratio:>6} "
                     f"{r['minirai_peak_mb']:>15.1f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="short measurements: a smoke test (< 60 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as a JSON list of dicts")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-torch", action="store_true", help="measure minirai only")
    parser.add_argument("--rounds", type=int, help="alternating rounds per runner (default 3, quick 1)")
    parser.add_argument("--min-time", type=float, help="seconds per measurement (default 1.5, quick 0.2)")
    parser.add_argument("--workloads", nargs="+", choices=[w.name for w in WORKLOADS],
                        default=[w.name for w in WORKLOADS])
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.min_time = args.min_time or (0.2 if args.quick else 1.5)
    args.min_steps = 1 if args.quick else 3          # (the wide workload takes ~0.6 s a step on one core)
    args.warmup = 1 if args.quick else 5             # steps before any timing
    args.rewarm = 0 if args.quick else 1             # untimed steps before each measurement
    args.memory_steps = 2 if args.quick else 20      # buffers are reused: the peak is reached by step 2
    args.flat_steps = (20, 60) if args.quick else (20, 200)
    return args


def measure_memory(workloads: list[Workload], datasets: dict[str, tuple[Any, Any]], steps: int
                   ) -> dict[str, dict[str, float]]:
    """minirai's peak memory per runner (building it and taking ``steps`` steps)."""
    peaks = {}
    for w in workloads:
        X, y = datasets[w.name]
        builders = {f"{w.name}/bp": lambda: minirai_bp(w, X, y), f"{w.name}/rai": lambda: minirai_rai(w, X, y)}
        if w.name == "deep":
            builders[f"{w.name}/bp-textbook"] = lambda: minirai_bp(w, X, y, textbook=True)
            builders[f"{w.name}/rai-textbook"] = lambda: minirai_rai(w, X, y, textbook=True)
            builders[f"{w.name}/rai-recorded"] = lambda: minirai_rai(w, X, y, record=True)
        for name, build in builders.items():
            peaks[name] = peak_memory(build, steps)
    return peaks


def measure_speed(args: argparse.Namespace, ours: dict[str, list[Runner]], theirs: dict[str, list[Runner]],
                  begin: float) -> dict[str, int]:
    """Warm every runner up, then time them round after round, minirai and torch alternately.

    Returns the number of steps timed per measurement, per workload."""
    for runner in [r for name in ours for r in ours[name] + theirs[name]]:
        runner.run(args.warmup)
    steps = {name: steps_per_measurement(ours[name] + theirs[name], args.min_time, args.min_steps)
             for name in ours}
    for round_ in range(args.rounds):
        for name in ours:
            a, b = ours[name], theirs[name]
            for i in range(max(len(a), len(b))):
                for runner in a[i:i + 1] + b[i:i + 1]:
                    runner.rates.append(steps_per_second(runner, steps[name], args.rewarm))
        print(f"round {round_ + 1}/{args.rounds} done ({time.perf_counter() - begin:.0f} s)", flush=True)
    return steps


def make_rows(args: argparse.Namespace, ours: dict[str, list[Runner]], theirs: dict[str, list[Runner]],
              peaks: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The table: medians over rounds, matched up as ROWS says."""
    rates_ours = {r.name: r.rates for runners in ours.values() for r in runners}
    rates_theirs = {r.name: r.rates for runners in theirs.values() for r in runners}
    rows = []
    for workload, method, mine, other in ROWS:
        if workload not in ours:
            continue
        a, b = rates_ours[mine], rates_theirs.get(other, [])
        if not b and other.endswith("-ftz"):
            continue                                  # (no torch, or not on the CPU)
        ours_rate, their_rate = median(a), median(b)
        rows.append({
            "workload": workload, "method": method,
            "minirai_it_s": ours_rate, "torch_it_s": their_rate,
            "ratio": ours_rate / their_rate if their_rate else None,
            "minirai_peak_mb": peaks[mine]["peak_mb"], "minirai_setup_mb": peaks[mine]["setup_mb"],
            "minirai_rates": a, "torch_rates": b,
            "paired_ratio": median([p / q for p, q in zip(a, b)]),   # median of per-round ratios
            "threads": args.threads, "device": args.device, "quick": args.quick,
        })
    return rows


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begin = time.perf_counter()
    backend.set_device(args.device)
    torch, torch_device = import_torch(args)
    with threadpoolctl.threadpool_limits(limits=args.threads):
        if torch is not None:
            torch.set_num_threads(args.threads)
        environment = describe_environment(args, torch)
        print("\n".join(environment))
        if torch is None:
            print(f"torch: skipped ({torch_device})")
        workloads = [w for w in WORKLOADS if w.name in args.workloads]
        datasets = {w.name: minirai_data(w) for w in workloads}

        # correctness once: minirai and torch from the same weights (deep, and shallow for ReLU)
        checks: list[str] = []
        if torch is not None:
            for w in workloads:
                if w.name in ("deep", "shallow"):
                    checks += check_against_torch(torch, w, *datasets[w.name], torch_device)

        peaks = measure_memory(workloads, datasets, args.memory_steps)
        flat = None
        if "deep" in datasets:
            deep = next(w for w in workloads if w.name == "deep")
            flat = memory_flatness(deep, *datasets["deep"], *args.flat_steps)
            growth = flat[1] - flat[0]
            print(f"memory: deep rai allocated {flat[0]:.3f} MB after step {args.flat_steps[0]}, {flat[1]:.3f} MB "
                  f"after step {args.flat_steps[1]} (growth {growth * 1024:+.1f} KB) "
                  f"{'flat' if abs(growth) < 0.1 else 'GROWS'}")

        print(f"checks and memory done ({time.perf_counter() - begin:.0f} s); timing ...", flush=True)
        ours = {w.name: minirai_runners(w, *datasets[w.name]) for w in workloads}
        theirs = {w.name: torch_runners(torch, w, *datasets[w.name], torch_device) if torch is not None else []
                  for w in workloads}
        steps = measure_speed(args, ours, theirs, begin)
        print("steps timed per measurement: " + ", ".join(f"{name} {n}" for name, n in steps.items()))

    rows = make_rows(args, ours, theirs, peaks)
    print()
    print(table(rows))
    recorded = {r["method"]: r["minirai_it_s"] for r in rows if r["workload"] == "deep"}
    if recorded.get("rai") and recorded.get("rai + grad records"):
        print(f"gradient recording every step costs {recorded['rai'] / recorded['rai + grad records'] - 1:+.0%} "
              "time on deep RAI (GradientRecorder(every=1); nothing is computed without a recorder)")
    print("\n".join(checks))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {rss:.0f} MB (everything this process ran); load average {load_average()}; "
          f"total {time.perf_counter() - begin:.0f} s")
    if args.json:
        extra = {"memory_flat_mb": flat, "memory_flat_steps": args.flat_steps, "memory_steps": args.memory_steps,
                 "checks": checks, "environment": environment}
        with open(args.json, "w") as f:
            json.dump([{**row, **extra} for row in rows], f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
