"""Speed and memory of one full-batch training step: minirai against PyTorch (eager and torch.compile) and JAX (jit).

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py [--threads N] [--quick]
        [--json PATH] [--device cpu|gpu] [--no-torch] [--no-compile] [--no-jax] [--compile-mode MODE]
        [--rounds R] [--min-time S] [--workloads shallow deep wide]

Every measurement is one training step on the full batch: forward, backward and an Rprop
update (lr 0.1) of a float32 network trained with BCE on two-moons. The workloads:

    shallow  [2, 42, 100, 100, 42, 1], ReLU, sigmoid output,   n = 100
    deep     [2] + [100] * 100 + [1], sigmoid everywhere,       n = 100
    wide     [2] + [512] * 20 + [1], sigmoid everywhere,        n = 2048

each trained by chained backprop (BP) and by RAI (a trainable table after every Linear).
The peers, each when installed:

* PyTorch eager: nn.Linear layers, BCELoss and torch.optim.Rprop; its RAI mirrors the
  proposal's code (see ``TorchRAI``).
* torch.compile: the same model, with the loss computation (forward + loss) and a function
  calling ``optimizer.step()`` each wrapped in ``torch.compile`` (default mode).
* JAX: one ``jax.jit``-compiled step per runner (value_and_grad of the objective and a
  PyTorch-style Rprop update; BCE from the logits): see benchmarks/jax_peer.py.

Every peer starts from minirai's initial weights (drawn from nn.Linear's default distribution),
so all of them time the same stretch of the same training run, and the first losses of each
are checked against minirai's. Compilation happens in the untimed warm-up steps; its cost is
reported beside the rates. All runners are measured alternately in the same process, a few
rounds each, and the median is reported, because a shared machine's speed drifts. See
benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax_peer  # noqa: E402  (benchmarks/jax_peer.py; imports jax only when asked to)

LR = 0.1          # the proposal's Rprop learning rate
SEED = 0
CHECK_STEPS = 3   # steps of the correctness checks (each peer against minirai)
CHECK_RTOL = 1e-4
# Steps that must agree in the peers' checks of RAI: the third loss is decided by rounding on the
# deep and wide nets (the second step's gradient of the last Linear is a sum over the balanced
# classes that cancels to ~1e-9, whose float32 sign depends on the summation order, and Rprop
# moves by ±lr on that sign; see benchmarks/README.md). All three losses are printed.
RAI_CHECK_STEPS = 2

PEERS = ("torch", "compile", "jax")   # besides minirai
TITLES = {"minirai": "minirai", "torch": "torch eager", "compile": "torch.compile", "jax": "jax jit"}
COMPILED = ("compile", "jax")


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

# Rows of the table: (workload, label, the runner of each framework, shown only with a peer). A
# runner is named "workload/method"; a row names the method of each framework's runner (None:
# none on this row). Rows share runners so that they can be compared:
# "(torch FTZ)" rows set PyTorch's flush-denormal mode (eager and compiled), as minirai's training
# steps set the CPU's (JAX on the CPU always flushes: its column is its plain runner);
# "textbook" rows are minirai's textbook path (minirai.reference(): every layer's own methods,
# block by block, array by array), against the peers with flush-to-zero;
# "jax stacked" rows are JAX with the deep net's 99 middle Linears stacked (lax.scan, einsum).
def _row(workload: str, label: str, minirai: str, torch: str | None, compiled: str | None, jax: str | None,
         with_peer: bool = False) -> tuple[str, str, dict[str, str | None], bool]:
    return workload, label, {"minirai": minirai, "torch": torch, "compile": compiled, "jax": jax}, with_peer


ROWS = [
    _row("shallow", "bp", "bp", "bp", "bp", "bp"),
    _row("shallow", "rai", "rai", "rai", "rai", "rai"),
    _row("deep", "bp", "bp", "bp", "bp", "bp"),
    _row("deep", "bp (torch FTZ)", "bp", "bp-ftz", "bp-ftz", "bp", with_peer=True),
    _row("deep", "bp textbook", "bp-textbook", "bp-ftz", "bp-ftz", "bp"),
    _row("deep", "bp, jax stacked", "bp", None, None, "bp-stacked", with_peer=True),
    _row("deep", "rai", "rai", "rai", "rai", "rai"),
    _row("deep", "rai (torch FTZ)", "rai", "rai-ftz", "rai-ftz", "rai", with_peer=True),
    _row("deep", "rai textbook", "rai-textbook", "rai-ftz", "rai-ftz", "rai"),
    _row("deep", "rai + grad records", "rai-recorded", "rai", "rai", "rai"),
    _row("deep", "rai, jax stacked", "rai", None, None, "rai-stacked", with_peer=True),
    _row("wide", "bp", "bp", "bp", "bp", "bp"),
    _row("wide", "rai", "rai", "rai", "rai", "rai"),
    _row("wide", "rai, activations dropped", "rai-lean", "rai", "rai", "rai"),
]


@dataclass
class Runner:
    """One training setup of one framework (``peer``), ready to step. ``context()`` wraps every run
    of steps; ``step()`` returns the loss computed before its update."""
    name: str
    step: Callable[[], Any]
    sync: Callable[[], None]
    context: Callable[[], ContextManager] = contextlib.nullcontext
    peer: str = "minirai"
    rates: list[float] = field(default_factory=list)        # it/s, one per round
    cpu: list[float] = field(default_factory=list)          # process CPU seconds per second, per round
    warmup_times: list[float] = field(default_factory=list)  # seconds of each warm-up step (compiles in the first)
    first_losses: list[float] = field(default_factory=list)  # the first CHECK_STEPS losses
    compilations: Callable[[], int] | None = None            # programs compiled so far, where it can tell

    @property
    def method(self) -> str:
        return self.name.split("/", 1)[1]

    def run(self, steps: int) -> None:
        with self.context():
            for _ in range(steps):
                self.step()
        self.sync()

    def warm_up(self, steps: int) -> None:
        """Untimed steps, each synchronised and clocked; keeps the first losses for the check."""
        with self.context():
            for _ in range(steps):
                start = time.perf_counter()
                value = self.step()
                if len(self.first_losses) < CHECK_STEPS:
                    self.first_losses.append(as_float(value))
                self.sync()
                self.warmup_times.append(time.perf_counter() - start)

    def compile_seconds(self) -> float | None:
        """Seconds the warm-up steps took beyond a warm step (the median of the warm-up steps after
        the first): tracing, compiling and any recompiling, all of which happen in the warm-up."""
        if len(self.warmup_times) < 2:
            return None
        warm = statistics.median(self.warmup_times[1:])
        return sum(max(0.0, t - warm) for t in self.warmup_times)


def as_float(value: Any) -> float:
    """A loss as a Python float, whatever array type holds it (NumPy, CuPy, torch, jax)."""
    return float(value.item()) if hasattr(value, "item") else float(value)


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
                record: bool = False, keep_activations: bool = True) -> Runner:
    """RAI with a table after every Linear: ``trainer.step(opt, loop=...)``, as RAI.fit runs it.

    ``record``: a GradientRecorder captures every step (to measure what recording costs);
    ``keep_activations=False``: the trainer's option for large data (the stacked blocks keep no
    activations after a step)."""
    model = model or minirai_model(w)
    trainer = RAI(model, X, y, BCE(), cuts="linear", keep_activations=keep_activations)
    opt = Rprop(trainer.parameters(), lr=LR)
    recorder = GradientRecorder(every=1) if record else None
    loop = training_loop(textbook)
    suffix = ("-textbook" if textbook else "") + ("-recorded" if record else "") + ("" if keep_activations else "-lean")
    return Runner(f"{w.name}/rai{suffix}", lambda: trainer.step(opt, recorder, loop=loop), backend.synchronize,
                  lambda: loop)


def minirai_runners(w: Workload, X: Any, y: Any) -> list[Runner]:
    runners = [minirai_bp(w, X, y), minirai_rai(w, X, y)]
    if w.name == "deep":
        runners.append(minirai_bp(w, X, y, textbook=True))
        runners.append(minirai_rai(w, X, y, textbook=True))
        runners.append(minirai_rai(w, X, y, record=True))
    if w.name == "wide":
        runners.append(minirai_rai(w, X, y, keep_activations=False))
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


def torch_step(torch: Any, loss: Callable[[], Any], opt: Any, compile_options: dict[str, Any] | None
               ) -> Callable[[], Any]:
    """One training step: zero_grad, loss, backward, optimizer step. ``compile_options``: the loss
    computation (forward + loss) and a function calling ``opt.step()`` are each compiled with
    ``torch.compile(fn, **compile_options)`` (on their first call, in the warm-up); backward runs
    the backward graph that AOTAutograd compiled with the forward."""
    update = opt.step
    if compile_options is not None:
        loss = torch.compile(loss, **compile_options)

        def optimizer_step() -> None:
            opt.step()

        update = torch.compile(optimizer_step, **compile_options)

    def step() -> Any:
        opt.zero_grad()
        value = loss()
        value.backward()
        update()
        return value

    return step


def torch_bp(torch: Any, w: Workload, X: Any, y: Any, device: str, model: Any = None,
             flush_denormal: bool = False, compile_options: dict[str, Any] | None = None) -> Runner:
    model = model if model is not None else torch_model(torch, w, device)
    criterion = torch.nn.BCELoss()
    opt = torch.optim.Rprop(model.parameters(), lr=LR)

    def loss() -> Any:
        return criterion(model(X), y)

    context = (lambda: torch_flushing_denormals(torch)) if flush_denormal else contextlib.nullcontext
    return Runner(f"{w.name}/bp" + ("-ftz" if flush_denormal else ""), torch_step(torch, loss, opt, compile_options),
                  torch_sync(torch, device), context, peer="torch" if compile_options is None else "compile",
                  compilations=None if compile_options is None else dynamo_graphs(torch))


def dynamo_graphs(torch: Any) -> Callable[[], int]:
    """The number of graphs torch.compile has compiled in this process so far (all runners)."""
    from torch._dynamo.utils import counters
    return lambda: int(counters["stats"]["unique_graphs"])


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


def torch_rai(torch: Any, w: Workload, X: Any, y: Any, device: str, model: Any = None,
              flush_denormal: bool = False, compile_options: dict[str, Any] | None = None) -> Runner:
    model = model if model is not None else torch_model(torch, w, device)
    trainer = TorchRAI(torch, model, w.activation, X, y)
    context = (lambda: torch_flushing_denormals(torch)) if flush_denormal else contextlib.nullcontext
    return Runner(f"{w.name}/rai" + ("-ftz" if flush_denormal else ""),
                  torch_step(torch, trainer.relaxed_loss, trainer.opt, compile_options), torch_sync(torch, device),
                  context, peer="torch" if compile_options is None else "compile",
                  compilations=None if compile_options is None else dynamo_graphs(torch))


def torch_data(torch: Any, X: Any, y: Any, device: str) -> tuple[Any, Any]:
    X_t = torch.from_numpy(backend.to_numpy(X).astype(np.float32)).to(device)
    y_t = torch.from_numpy(backend.to_numpy(y).astype(np.float32).reshape(-1, 1)).to(device)
    return X_t, y_t


def torch_runners(torch: Any, w: Workload, X: Any, y: Any, device: str,
                  compile_options: dict[str, Any] | None = None) -> list[Runner]:
    """PyTorch's runners (eager, or torch.compile with ``compile_options``), each starting from
    minirai's initial weights (drawn from nn.Linear's own distribution), so that all frameworks
    time the same stretch of the same training run."""
    X_t, y_t = torch_data(torch, X, y, device)
    source = minirai_model(w)

    def model() -> Any:
        m = torch_model(torch, w, device)
        copy_weights(torch, source, m)
        return m

    options = {"compile_options": compile_options}
    runners = [torch_bp(torch, w, X_t, y_t, device, model(), **options),
               torch_rai(torch, w, X_t, y_t, device, model(), **options)]
    if w.name == "deep" and device == "cpu":
        runners.append(torch_bp(torch, w, X_t, y_t, device, model(), flush_denormal=True, **options))
        runners.append(torch_rai(torch, w, X_t, y_t, device, model(), flush_denormal=True, **options))
    return runners


# -- JAX -------------------------------------------------------------------------------------------
def minirai_layers(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """A minirai model's Linear arrays [(W (in, out), b (out,)), ...] as NumPy arrays."""
    return [(backend.to_numpy(layer.params["W"]), backend.to_numpy(layer.params["b"]))
            for layer in model.layers if "W" in layer.params]


def jax_runner(jax: Any, w: Workload, X: Any, y: Any, method: str, check: bool = False) -> Runner:
    """``method``: "bp", "rai", "bp-stacked" or "rai-stacked"; from minirai's initial weights.
    ``check``: the step returns the loss with minirai's (clipped) BCE, for the check."""
    trainer = jax_peer.make_trainer(jax, method.split("-")[0], w.activation, minirai_layers(minirai_model(w)),
                                    backend.to_numpy(X), backend.to_numpy(y), LR,
                                    stacked=method.endswith("-stacked"), check=check)
    return Runner(f"{w.name}/{method}", trainer.step, trainer.sync, peer="jax", compilations=trainer.compilations)


def jax_methods(w: Workload) -> list[str]:
    return ["bp", "rai", "bp-stacked", "rai-stacked"] if w.name == "deep" else ["bp", "rai"]


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


def reference_losses(w: Workload, X: Any, y: Any, method: str) -> list[float]:
    """minirai's first CHECK_STEPS losses for ``method`` ("bp" or "rai"), from the initial weights
    that every runner starts from."""
    runner = (minirai_bp if method == "bp" else minirai_rai)(w, X, y)
    with runner.context():
        return [backend.to_float(runner.step()) for _ in range(CHECK_STEPS)]


def compare_losses(label: str, ours: list[float], theirs: list[float], required: int = CHECK_STEPS) -> tuple[str, bool]:
    """A check line, and whether the first ``required`` losses agree to CHECK_RTOL relative."""
    rel = [abs(p - q) / max(abs(q), 1e-30) for p, q in zip(ours, theirs)]
    ok = len(theirs) >= required and max(rel[:required]) <= CHECK_RTOL
    note = "" if required == len(rel) else f" (steps 1-{required} must agree; the rest: see README)"
    return (f"check: {label} losses minirai {fmt_list(ours)} peer {fmt_list(theirs)} "
            f"rel diff {fmt_list(rel)} {'ok' if ok else 'FAILED'}{note}"), ok


def check_warmup(runners: list[Runner], references: dict[tuple[str, str], list[float]]) -> list[str]:
    """Each peer runner's first losses (taken in its warm-up) against minirai's for its method:
    all runners start from minirai's initial weights, so they must agree. Raises if one fails."""
    lines = []
    for runner in runners:
        workload, method = runner.name.split("/", 1)
        required = RAI_CHECK_STEPS if method.startswith("rai") else CHECK_STEPS
        line, ok = compare_losses(f"{workload:<7} {TITLES[runner.peer]:<13} {method:<12}",
                                  references[workload, method.split("-")[0]], runner.first_losses, required)
        lines.append(line)
        print(line, flush=True)
        if not ok:
            raise SystemExit(f"minirai and {TITLES[runner.peer]} disagree on {runner.name}")
    return lines


def check_against_jax(jax: Any, w: Workload, X: Any, y: Any, references: dict[tuple[str, str], list[float]]
                      ) -> list[str]:
    """JAX trainers built for the check (their step returns the objective with minirai's clipped
    BCE; the timed ones return it with BCE from the logits, which differs once outputs saturate:
    100 per example against |z|), from minirai's initial weights, against minirai's losses."""
    lines = []
    for method in jax_methods(w):
        runner = jax_runner(jax, w, X, y, method, check=True)
        runner.warm_up(CHECK_STEPS)
        required = RAI_CHECK_STEPS if method.startswith("rai") else CHECK_STEPS
        line, ok = compare_losses(f"{w.name:<7} {'jax jit':<13} {method:<12}", references[w.name, method.split("-")[0]],
                                  runner.first_losses, required)
        lines.append(line)
        print(line, flush=True)
        if not ok:
            raise SystemExit(f"minirai and jax disagree on {w.name} {method}")
    return lines


# -- timing ----------------------------------------------------------------------------------
def steps_per_second(runner: Runner, steps: int, warmup: int = 1, record: bool = False) -> float:
    """Take ``warmup`` untimed steps, then time ``steps`` steps; return it/s. ``record``: append the
    rate to ``runner.rates``, and the process's CPU seconds per second to ``runner.cpu`` (all of
    its threads: above ``--threads``, a framework ran more threads than it was asked to)."""
    with runner.context():
        for _ in range(warmup):
            runner.step()
        runner.sync()
        cpu, start = cpu_seconds(), time.perf_counter()
        for _ in range(steps):
            runner.step()
        runner.sync()
        elapsed = time.perf_counter() - start
    if record:
        runner.rates.append(steps / elapsed)
        runner.cpu.append((cpu_seconds() - cpu) / elapsed)
    return steps / elapsed


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
def describe_environment(args: argparse.Namespace, torch: Any, compile_options: dict[str, Any] | None, jax: Any
                         ) -> list[str]:
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, "
             f"minirai {getattr(minirai, '__version__', '?')}, "
             f"device {backend.device_name()}, threads {args.threads}, "
             f"load average {load_average()}, {os.cpu_count()} CPUs"]
    lines.append(f"minirai source: {git_state()}")
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
    if compile_options is not None:
        options = ", ".join(f"{k}={v!r}" for k, v in compile_options.items()) or "default mode"
        lines.append(f"torch.compile ({options}) of the loss computation and of optimizer.step(); C++ compiler "
                     f"{cpp_compiler()}; inductor cache "
                     f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')} ({args.inductor_cache})")
    if jax is not None:
        import jaxlib
        lines.append(f"jax {jax.__version__} (jaxlib {jaxlib.__version__}), backend {jax.default_backend()}, "
                     f"{'; '.join(args.jax_notes)}; XLA flushes subnormals to zero: "
                     f"{'yes' if jax_peer.flushes_denormals(jax) else 'no'}")
    if backend.device_name() == "gpu":
        xp = backend.xp()
        props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
        lines.append(f"GPU: {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}, "
                     f"CuPy {xp.__version__}")
    return lines


def git_state() -> str:
    """The commit of the checkout minirai was imported from, and whether minirai/ differs from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(minirai.__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "minirai"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "? (no git)"
    if not commit:
        return f"{root} (not a git checkout)"
    return f"git {commit}" + (f", with uncommitted changes in minirai/ ({len(changed.splitlines())} files)"
                              if changed else ", minirai/ as committed")


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


def import_jax(args: argparse.Namespace) -> tuple[Any, str]:
    """JAX (its threads limited to --threads first), or (None, reason)."""
    if args.no_jax:
        return None, "--no-jax"
    if args.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    args.jax_notes = jax_peer.configure_threads(args.threads)
    try:
        jax = jax_peer.import_jax()
    except ImportError:
        return None, "jax is not importable (pip install -e '.[bench]')"
    if args.device == "gpu" and jax.default_backend() != "gpu":
        return None, f"jax has no GPU backend ({jax.default_backend()})"
    if args.jax_sync:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    args.jax_notes.append(f"asynchronous dispatch {'off (--jax-sync)' if args.jax_sync else 'on (the default)'}")
    return jax, jax.default_backend()


def prepare_inductor_cache(args: argparse.Namespace) -> str | None:
    """A fresh inductor cache for this run (so that compile times are cold, as a user's first
    run), unless TORCHINDUCTOR_CACHE_DIR is set. Returns the directory to remove at the end."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        args.inductor_cache = "TORCHINDUCTOR_CACHE_DIR was set: compile times may be warm"
        return None
    path = tempfile.mkdtemp(prefix="bench-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    args.inductor_cache = "fresh for this run: cold compile times"
    return path


def cpp_compiler() -> str:
    try:
        from torch._inductor import cpp_builder
        return os.path.basename(cpp_builder.get_cpp_compiler())
    except Exception as exc:      # a private helper: report, never fail on it
        return f"? ({type(exc).__name__})"


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes subnormal float32 results to zero right now (the
    flush-to-zero state that a peer could leave behind): 1e-30 * 1e-10 = 1e-40 is subnormal."""
    return bool(np.float32(1e-30) * np.float32(1e-10) == 0)


# -- the report -------------------------------------------------------------------------------
def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def table(rows: list[dict[str, Any]]) -> str:
    """The rates of each framework, minirai's ratios to PyTorch eager and to the best compiled peer
    on the row, the compiled peers' compile seconds (warm-up beyond warm steps) and minirai's peak."""
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    head = (f"{'workload':<8} {'method':<18} {'minirai it/s':>12} {'torch eager it/s':>16} "
            f"{'torch.compile it/s':>18} {'jax jit it/s':>12} {'vs eager':>8} {'vs best compiled':>22} "
            f"{'compile s':>9} {'jit s':>6} {'minirai peak MB':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        best = "-" if r["ratio_best_compiled"] is None else f"{r['ratio_best_compiled']:.2f} ({r['best_compiled']})"
        lines.append(f"{r['workload']:<8} {r['method']:<18} {rate(r['minirai_it_s']):>12} {rate(r['torch_it_s']):>16} "
                     f"{rate(r['compile_it_s']):>18} {rate(r['jax_it_s']):>12} {ratio:>8} {best:>22} "
                     f"{seconds(r['compile_s']):>9} {seconds(r['jax_compile_s']):>6} {r['minirai_peak_mb']:>15.1f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch / XLA threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="short measurements: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as a JSON list of dicts")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-torch", action="store_true", help="no PyTorch (neither eager nor torch.compile)")
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile peer")
    parser.add_argument("--no-jax", action="store_true", help="no JAX peer")
    parser.add_argument("--jax-sync", action="store_true",
                        help="turn JAX's asynchronous dispatch off on the CPU (each step runs on the calling thread)")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per runner (default 3, quick 1)")
    parser.add_argument("--min-time", type=float, help="seconds per measurement (default 1.5, quick 0.2)")
    parser.add_argument("--workloads", nargs="+", choices=[w.name for w in WORKLOADS],
                        default=[w.name for w in WORKLOADS])
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.min_time = args.min_time or (0.2 if args.quick else 1.5)
    args.min_steps = 1 if args.quick else 3          # (the wide workload takes ~0.6 s a step on one core)
    args.warmup = CHECK_STEPS if args.quick else 5   # steps before any timing (compilation; the check's losses)
    args.rewarm = 0 if args.quick else 1             # untimed steps before each measurement
    args.memory_steps = 2 if args.quick else 20      # buffers are reused: the peak is reached by step 2
    args.flat_steps = (20, 60) if args.quick else (20, 200)
    args.jax_notes, args.inductor_cache = [], ""
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
        builders[f"{w.name}/rai-lean"] = lambda: minirai_rai(w, X, y, keep_activations=False)
        for name, build in builders.items():
            peaks[name] = peak_memory(build, steps)
    return peaks


def interleave(*lists: list[Runner]) -> list[Runner]:
    """[a0, b0, c0, a1, b1, ...]: one runner of each framework in turn."""
    return [lst[i] for i in range(max(map(len, lists), default=0)) for lst in lists if i < len(lst)]


def warm_up(args: argparse.Namespace, runners: dict[str, dict[str, list[Runner]]], begin: float) -> list[str]:
    """Every runner's untimed warm-up steps, in which the compiled peers compile. A peer that fails
    to compile or run is dropped (all its runners), with a line saying why; returns those lines."""
    failures = []
    for name, by_peer in runners.items():
        for peer, group in by_peer.items():
            for runner in group:
                try:
                    runner.warm_up(args.warmup)
                except Exception as exc:
                    if peer == "minirai":
                        raise
                    failures.append(f"{TITLES[peer]}: failed on {runner.name}: {type(exc).__name__}: "
                                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
                    print(failures[-1], flush=True)
                    for other in runners.values():
                        other.pop(peer, None)
                    break
                if peer in COMPILED:
                    print(f"warm-up: {TITLES[peer]:<13} {runner.name:<16} first step {runner.warmup_times[0]:.1f} s "
                          f"({time.perf_counter() - begin:.0f} s)", flush=True)
    return failures


def measure_speed(args: argparse.Namespace, runners: dict[str, dict[str, list[Runner]]], begin: float
                  ) -> dict[str, int]:
    """Time every (warm) runner round after round, the frameworks alternately (minirai bp, torch bp,
    torch.compile bp, jax bp, minirai rai, ...). Returns the steps timed per measurement, per workload."""
    order = {name: interleave(*by_peer.values()) for name, by_peer in runners.items()}
    steps = {name: steps_per_measurement(group, args.min_time, args.min_steps) for name, group in order.items()}
    for round_ in range(args.rounds):
        for name, group in order.items():
            for runner in group:
                steps_per_second(runner, steps[name], args.rewarm, record=True)
        print(f"round {round_ + 1}/{args.rounds} done ({time.perf_counter() - begin:.0f} s)", flush=True)
    return steps


def make_rows(args: argparse.Namespace, runners: dict[str, dict[str, list[Runner]]],
              peaks: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The table: medians over rounds, matched up as ROWS says."""
    by_name = {(r.peer, r.name): r for by_peer in runners.values() for group in by_peer.values() for r in group}
    rows = []
    for workload, label, methods, with_peer in ROWS:
        if workload not in runners:
            continue
        found = {peer: by_name.get((peer, f"{workload}/{method}")) if method else None
                 for peer, method in methods.items()}
        if with_peer and not any(found[peer] for peer in PEERS if methods[peer] != methods["minirai"]):
            continue                                  # (a row for a peer's variant, and that peer is absent)
        mine = found["minirai"]
        rates = {peer: median(r.rates) if r else None for peer, r in found.items()}
        compiled = {peer: rates[peer] for peer in COMPILED if rates[peer]}
        best = max(compiled, key=compiled.get) if compiled else None
        row = {
            "workload": workload, "method": label,
            "minirai_it_s": rates["minirai"], "torch_it_s": rates["torch"],
            "compile_it_s": rates["compile"], "jax_it_s": rates["jax"],
            "ratio": rates["minirai"] / rates["torch"] if rates["torch"] else None,
            "best_compiled": TITLES[best] if best else None,
            "ratio_best_compiled": rates["minirai"] / compiled[best] if best else None,
            "compile_s": found["compile"].compile_seconds() if found["compile"] else None,
            "jax_compile_s": found["jax"].compile_seconds() if found["jax"] else None,
            "minirai_peak_mb": peaks[mine.name]["peak_mb"], "minirai_setup_mb": peaks[mine.name]["setup_mb"],
            "paired_ratio": (median([p / q for p, q in zip(mine.rates, found["torch"].rates)])   # per-round ratios
                             if found["torch"] else None),
            "threads": args.threads, "device": args.device, "quick": args.quick,
            "compile_mode": args.compile_mode,
        }
        for peer, r in found.items():
            row[f"{peer}_runner"] = r.name if r else None
            row[f"{peer}_rates"] = r.rates if r else []
            row[f"{peer}_cpu_per_s"] = r.cpu if r else []
            row[f"{peer}_first_step_s"] = r.warmup_times[0] if r and r.warmup_times else None
            row[f"{peer}_warmup_s"] = r.warmup_times if r else []
        row["minirai_warmup_excess_s"] = mine.compile_seconds()
        rows.append(row)
    return rows


def cpu_notes(args: argparse.Namespace, runners: dict[str, dict[str, list[Runner]]]) -> list[str]:
    """The CPU the process got while the runners were timed (median over all measurements: well
    below --threads, other processes took the cores and the rates are low), and the runners
    that used clearly more than --threads cores."""
    used_all = [c for by_peer in runners.values() for group in by_peer.values() for r in group for c in r.cpu]
    lines = []
    if used_all:
        used = median(used_all)
        lines.append(f"cpu: the process used {used:.2f} CPUs while timed (median of {len(used_all)} measurements, "
                     f"--threads {args.threads})" + ("; below --threads: the machine was busy, rerun when it is idle"
                                                      if used < 0.9 * args.threads else ""))
    for by_peer in runners.values():
        for group in by_peer.values():
            for r in group:
                used = median(r.cpu)
                if used is not None and used > args.threads + 0.15:
                    why = (": JAX's asynchronous dispatch runs Python (the next step's dispatch) while XLA computes "
                           "on its own thread; --jax-sync keeps it to one" if r.peer == "jax" and not args.jax_sync
                           else "")
                    lines.append(f"note: {TITLES[r.peer]} {r.name} used {used:.2f} CPUs while timed "
                                 f"(--threads {args.threads}){why}")
    return lines


def compile_summary(runners: dict[str, dict[str, list[Runner]]]) -> list[str]:
    """Per compiled runner: its first step (tracing and compiling), its warm-up beyond warm steps
    (Runner.compile_seconds) and each warm-up step's seconds."""
    lines = []
    for by_peer in runners.values():
        for peer in COMPILED:
            for r in by_peer.get(peer, []):
                if r.warmup_times:
                    lines.append(f"compile: {TITLES[peer]:<13} {r.name:<16} first step {r.warmup_times[0]:6.1f} s, "
                                 f"warm-up beyond warm steps {r.compile_seconds() or 0:6.1f} s, warm-up steps "
                                 + " ".join(f"{t:.3g}" for t in r.warmup_times))
    return lines


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begin = time.perf_counter()
    backend.set_device(args.device)
    jax, jax_reason = import_jax(args)                 # first: its thread settings must precede its import
    cache = None if args.no_torch or args.no_compile else prepare_inductor_cache(args)
    torch, torch_device = import_torch(args)
    compile_options = None
    if torch is not None and not args.no_compile:
        compile_options = {} if args.compile_mode == "default" else {"mode": args.compile_mode}
    ftz_at_start = denormals_flushed()
    try:
        with threadpoolctl.threadpool_limits(limits=args.threads):
            if torch is not None:
                torch.set_num_threads(args.threads)
            environment = [time.strftime("%Y-%m-%d %H:%M:%S %Z")]
            environment += describe_environment(args, torch, compile_options, jax)
            for title, peer, reason in (("torch", torch, torch_device), ("jax", jax, jax_reason)):
                if peer is None:
                    environment.append(f"{title}: skipped ({reason})")
            if torch is not None and compile_options is None:
                environment.append("torch.compile: skipped (--no-compile)")
            print("\n".join(environment), flush=True)
            result = run(args, torch, torch_device, compile_options, jax, begin)
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    rows, checks, notes, flat = result
    if denormals_flushed() != ftz_at_start:
        notes.append(f"warning: this thread's flush-to-zero state changed during the run (now "
                     f"{denormals_flushed()}): a peer left it set")
    print()
    print(table(rows))
    recorded = {r["method"]: r["minirai_it_s"] for r in rows if r["workload"] == "deep"}
    if recorded.get("rai") and recorded.get("rai + grad records"):
        print(f"gradient recording every step costs {recorded['rai'] / recorded['rai + grad records'] - 1:+.0%} "
              "time on deep RAI (GradientRecorder(every=1); nothing is computed without a recorder)")
    print("\n".join(checks + notes))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {rss:.0f} MB (everything this process ran); load average {load_average()}; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; total {time.perf_counter() - begin:.0f} s")
    if args.json:
        extra = {"memory_flat_mb": flat, "memory_flat_steps": args.flat_steps, "memory_steps": args.memory_steps,
                 "checks": checks, "notes": notes, "environment": environment}
        with open(args.json, "w") as f:
            json.dump([{**row, **extra} for row in rows], f, indent=2)
        print(f"wrote {args.json}")
    return 0


def run(args: argparse.Namespace, torch: Any, torch_device: str, compile_options: dict[str, Any] | None, jax: Any,
        begin: float) -> tuple[list[dict[str, Any]], list[str], list[str], tuple[float, float] | None]:
    """Checks, memory, warm-up (compilation) and timing; returns the rows, the check lines, the
    notes (compile times, failures, warnings) and the deep RAI flatness numbers."""
    workloads = [w for w in WORKLOADS if w.name in args.workloads]
    datasets = {w.name: minirai_data(w) for w in workloads}

    # correctness: minirai and torch eager from the same weights (deep, and shallow for ReLU), with
    # minirai's textbook path too; then JAX's check trainers, on every workload
    checks: list[str] = []
    if torch is not None:
        for w in workloads:
            if w.name in ("deep", "shallow"):
                checks += check_against_torch(torch, w, *datasets[w.name], torch_device)
    references = {(w.name, method): reference_losses(w, *datasets[w.name], method)
                  for w in workloads for method in ("bp", "rai")}
    if jax is not None:
        for w in workloads:
            checks += check_against_jax(jax, w, *datasets[w.name], references)

    peaks = measure_memory(workloads, datasets, args.memory_steps)
    flat = None
    if "deep" in datasets:
        deep = next(w for w in workloads if w.name == "deep")
        flat = memory_flatness(deep, *datasets["deep"], *args.flat_steps)
        growth = flat[1] - flat[0]
        print(f"memory: deep rai allocated {flat[0]:.3f} MB after step {args.flat_steps[0]}, {flat[1]:.3f} MB "
              f"after step {args.flat_steps[1]} (growth {growth * 1024:+.1f} KB) "
              f"{'flat' if abs(growth) < 0.1 else 'GROWS'}")
    print(f"checks and memory done ({time.perf_counter() - begin:.0f} s); warm-up (compiling) ...", flush=True)

    runners: dict[str, dict[str, list[Runner]]] = {}
    for w in workloads:
        X, y = datasets[w.name]
        runners[w.name] = {"minirai": minirai_runners(w, X, y)}
        if torch is not None:
            runners[w.name]["torch"] = torch_runners(torch, w, X, y, torch_device)
        if compile_options is not None:
            runners[w.name]["compile"] = torch_runners(torch, w, X, y, torch_device, compile_options)
        if jax is not None:
            runners[w.name]["jax"] = [jax_runner(jax, w, X, y, method) for method in jax_methods(w)]
    notes = warm_up(args, runners, begin)
    # the eager and compiled PyTorch runners' first losses (JAX's timed runners return the objective
    # with BCE from the logits; its check trainers were compared above)
    checks += check_warmup([r for by_peer in runners.values() for peer in ("torch", "compile")
                            for r in by_peer.get(peer, [])], references)
    compiled_before = {id(r): r.compilations() for by_peer in runners.values() for group in by_peer.values()
                       for r in group if r.compilations}

    print(f"warm-up done ({time.perf_counter() - begin:.0f} s); timing ...", flush=True)
    steps = measure_speed(args, runners, begin)
    print("steps timed per measurement: " + ", ".join(f"{name} {n}" for name, n in steps.items()))
    notes += compile_summary(runners)
    for by_peer in runners.values():
        for group in by_peer.values():
            for r in group:
                if id(r) in compiled_before and r.compilations() != compiled_before[id(r)]:
                    notes.append(f"warning: {TITLES[r.peer]} compiled again while {r.name} was timed "
                                 f"({compiled_before[id(r)]} -> {r.compilations()} programs)")
    notes += cpu_notes(args, runners)
    return make_rows(args, runners, peaks), checks, notes, flat


if __name__ == "__main__":
    sys.exit(main())
