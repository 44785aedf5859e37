"""The proposal's experiments: two-moons, a shallow ReLU net and a deep sigmoid net, BP vs RAI.

Settings (from the proposal and its code): ``make_moons(n_samples=100, noise=0.1,
random_state=42)``; shallow 2-42-100-100-42-1 with ReLU and a sigmoid output; deep
2-[100]x100-1 with a sigmoid after every Linear; BCE; Rprop with lr 0.1, full batch;
default init (uniform ±1/√fan_in); 10,000 iterations. RAI cuts after every Linear
(auxiliaries on pre-activations), tables from one forward pass, MSE hidden loss, λ = 1.

Every run is judged on what the network predicts: chained loss and accuracy on the 100
training points and on 1000 held-out points from the same distribution (fixed seed).
For RAI the relaxed loss and the identity gap are reported beside them.

For the deep net a *tuned* BP baseline (Xavier init and Adam, lr ``minirai.research.methods.TUNED_LR``) is run as
well, so that "BP fails" is tested against more than the proposal's own setting.
"""
from __future__ import annotations

import json
import os
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import backend, data
from . import methods
from ..inspect import GradientRecorder
from ..network import Sequential, mlp
from ..train import History, evaluate

EXPERIMENTS = {
    "shallow": {"sizes": [2, 42, 100, 100, 42, 1], "activation": "relu"},
    "deep": {"sizes": [2] + [100] * 100 + [1], "activation": "sigmoid"},
}
METHODS = ("bp", "bp-tuned", "rai")
DEFAULT_SEED = 3          # the seed of the network's initial weights (see docs/results.md)
DEFAULT_ITERS = 10_000

TITLES = {"bp": "MLP Classifier Landscape (BP)", "bp-tuned": "MLP Classifier Landscape (tuned BP: Xavier + Adam)",
          "rai": "RAI MLP Classifier Landscape"}


@dataclass
class RunResult:
    """One run: what ``summary.json`` and the printed table hold, plus the model and history."""
    experiment: str
    method: str
    iters: int
    seconds: float
    it_per_s: float
    relaxed_loss: float | None
    chained_loss: float
    train_acc: float
    test_acc: float
    identity_gap: float | None
    seed: int
    optimizer: str
    init: str
    device: str
    model: Sequential = field(repr=False)
    history: History = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    recorder: GradientRecorder | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        keys = ("experiment", "method", "iters", "seconds", "it_per_s", "relaxed_loss", "chained_loss",
                "train_acc", "test_acc", "identity_gap", "seed", "optimizer", "init", "device")
        out = {k: getattr(self, k) for k in keys}
        out.update(self.extra)
        return out


def build(experiment: str, seed: int, init: str = "uniform", dtype: Any = None) -> Sequential:
    """The experiment's network with its initial weights drawn from ``seed``."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose from {sorted(EXPERIMENTS)}")
    spec = EXPERIMENTS[experiment]
    return mlp(spec["sizes"], spec["activation"], "sigmoid", init=init, seed=seed, dtype=dtype)


def run(experiment: str, method: str, *, iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED,
        progress: bool | dict[str, Any] | str = False, record_every: int | None = None,
        dataset: data.Dataset | None = None,
        recorder: GradientRecorder | None = None, threads: int | Callable[[], int] | None = None,
        **rai_options: Any) -> RunResult:
    """Train one network of ``experiment`` with ``method`` ("bp", "bp-tuned" or "rai").

    A :class:`~minirai.inspect.GradientRecorder` records per-layer gradient norms; its
    first and last weight-gradient profiles are added to the run's summary. ``threads``: as in
    :func:`minirai.train.fit` (a count, or a function that gives it before each step).
    """
    callback = None
    if isinstance(progress, str):                # plain progress lines, one every 10% (see reproduce)
        callback, progress = progress_lines(progress, iters), False
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose from {sorted(EXPERIMENTS)}")
    dataset = dataset or data.moons()
    spec = EXPERIMENTS[experiment]
    start = time.perf_counter()
    trained = methods.train(method, dataset, spec["sizes"][1:-1], spec["activation"], seed=seed, iters=iters,
                            record_every=record_every, progress=progress, callback=callback, recorder=recorder,
                            rai_options=rai_options, threads=threads)
    backend.synchronize()
    seconds = time.perf_counter() - start
    model, loss = trained.model, trained.loss
    train = evaluate(model, loss, dataset.X_train, dataset.y_train)
    test = evaluate(model, loss, dataset.X_test, dataset.y_test)
    return RunResult(experiment, method, iters, round(seconds, 3), round(iters / max(seconds, 1e-9), 2),
                     trained.relaxed_loss, train["loss"], train["accuracy"], test["accuracy"], trained.identity_gap,
                     seed, trained.optimizer, trained.init, backend.device_name(), model, trained.history,
                     extra=recorder.summary() if recorder is not None else {}, recorder=recorder)


def progress_lines(name: str, iters: int) -> Callable[[int, Any], None]:
    """A training callback that prints one plain line per 10% of ``iters`` (``[rai] 30% ...``).

    Plain lines, not progress bars: the runs of ``reproduce`` train side by side in several
    processes, whose bars would overwrite each other, and a log file gets no escape codes."""
    start = time.perf_counter()
    every = max(1, iters // 10)

    def report(step: int, _: Any) -> None:
        if step % every == 0 or step == iters:
            seconds = time.perf_counter() - start
            print(f"[{name}] {100 * step // iters:3d}%  step {step}/{iters}  {seconds:6.1f} s  "
                  f"{step / max(seconds, 1e-9):6.1f} it/s", flush=True)
    return report


def methods_for(experiment: str, choice: str) -> list[str]:
    """``--method bp|rai|both`` -> the runs to make (deep BP always brings its tuned baseline)."""
    if choice not in ("bp", "rai", "both"):
        raise ValueError(f"method must be bp, rai or both, got {choice!r}")
    bp = ["bp", "bp-tuned"] if experiment == "deep" else ["bp"]
    return {"bp": bp, "rai": ["rai"], "both": bp + ["rai"]}[choice]


def format_table(results: list[RunResult]) -> str:
    """The summary as a plain-text table (relaxed and chained loss side by side), with a legend."""
    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)
    head = (f"{'experiment':<10} {'method':<9} {'device':<6} {'iters':>6} {'seconds':>8} {'it/s':>7} "
            f"{'relaxed loss':>12} {'chained loss':>12} {'train acc':>9} {'test acc':>9} {'identity gap':>12}")
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(f"{r.experiment:<10} {r.method:<9} {r.device:<6} {r.iters:>6} {r.seconds:>8.1f} {r.it_per_s:>7.1f} "
                    f"{num(r.relaxed_loss, '.3e'):>12} {r.chained_loss:>12.4g} {r.train_acc:>9.3f} "
                    f"{r.test_acc:>9.3f} {num(r.identity_gap, '.3e'):>12}")
    rows.append(textwrap.fill(LEGEND, width=len(head)))
    return "\n".join(rows)


LEGEND = ("relaxed loss: what RAI's optimizer minimises (output loss + λ · hidden losses; BP has none). "
          "chained loss, train acc, test acc: the network as it predicts (the ordinary forward pass) on the "
          "training points and on 1000 held-out points. identity gap: mean (o_{s-1} - Z_s)² at each cut s, how "
          "far RAI's tables are from what the previous block computes.")


def reproduce(experiment: str, method: str = "both", *, iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED,
              out: str | Path = "runs", progress: bool = True, echo: bool = True,
              grads: bool = False, jobs: int | None = None) -> list[RunResult]:
    """Run the experiment's methods, write landscapes, the side-by-side figure and summary.json.

    The runs are independent, so on the CPU they run side by side in worker processes, each
    drawing its own landscape (:func:`plan_runs`: by default one process per run, and RAI takes
    the cores the others leave as worker threads, more as they finish; ``jobs`` runs all at once in
    that many processes). On a
    GPU they run one after another. With ``grads`` every run records per-layer
    gradient norms (about 200 records per run) and the gradient heatmap, the gradient profile,
    the loss curves and the identity gaps are written beside the landscapes.
    """
    from .. import plot
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = methods_for(experiment, method)
    plan = plan_runs(names, usable_cores(), jobs)
    if echo:
        print(f"[{experiment}] training {', '.join(names)} for {iters} iterations each (seed {seed}), "
              f"{describe_plan(plan)}, on device {backend.device_name()} "
              f"({backend.device_report()['chosen']}) ...", flush=True)
    dataset = data.moons()      # made once: the workers then need not import scikit-learn
    with tempfile.TemporaryDirectory(prefix="minirai-runs-") as roster:
        if plan.leftover:           # the runs still training: a file each, deleted when its training ends
            for name in names:
                (Path(roster) / name).touch()
        tasks = [dict(experiment=experiment, method=name, iters=iters, seed=seed, grads=grads, dataset=dataset,
                      out=out, progress=name if progress else False, device=backend.device_name(),
                      threads=plan.threads_of(name), roster=roster if plan.leftover else None,
                      leftover=plan.cores if name == plan.leftover else None)
                 for name in names]
        if plan.processes == 1:
            results = [isolated(_run_task, task, threads=task["threads"]) for task in tasks]
        else:
            from joblib import Parallel, delayed
            results = Parallel(n_jobs=plan.processes)(delayed(isolated)(_run_task, task, threads=task["threads"])
                                                      for task in tasks)
    by_method = {r.method: r for r in results}
    if "bp" in by_method and "rai" in by_method:
        panels = [(by_method["bp"].model, TITLES["bp"]), (by_method["rai"].model, TITLES["rai"])]
        plot.save(plot.side_by_side(panels, dataset.X_train, dataset.y_train),
                  out / f"{experiment}-bp-vs-rai.png")
    if grads:
        write_gradient_figures(experiment, results, out)
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps([r.summary() for r in results], indent=2) + "\n")
    names = [f"{experiment}-{r.method}-landscape.png" for r in results] + [f"{experiment}-bp-vs-rai.png"] + \
        [f"{experiment}-{kind}.png" for kind in GRADIENT_FIGURES] * grads + ["summary.json"]
    written = sorted(name for name in dict.fromkeys(names) if (out / name).is_file())   # this run's files only
    (out / MANIFEST).write_text(json.dumps(written) + "\n")
    if echo:
        print(format_table(results))
        print(f"wrote {len(written)} files into {out}/: {', '.join(written)}")
    return results


MANIFEST = ".minirai-run.json"   # the files the last reproduce wrote into its folder (what --force clears)
GRADIENT_FIGURES = ("grad-heatmap", "grad-profile", "loss-curves", "identity-gap")   # with --grads


def prepare_output(out: str | Path, force: bool) -> Path:
    """The folder for a run's files: created if missing; refused if it holds files, unless ``force``,
    which removes what an earlier run wrote there (the files its manifest lists; nothing else)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ValueError(f"--out {str(out)!r} already holds files (an earlier run?); pass --force to replace "
                             "what an earlier run wrote there, or choose another folder")
        manifest = out / MANIFEST
        try:
            names = json.loads(manifest.read_text()) if manifest.is_file() else []
        except (ValueError, OSError):
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{manifest} is not a list of file names that an earlier run wrote; delete it, "
                             "or choose another --out")
        for name in names + [MANIFEST]:
            target = out / Path(name).name
            if target.is_file():
                target.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".minirai-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out {str(out)!r} cannot be written: {error.strerror or error}") from None
    return out


@dataclass(frozen=True)
class Plan:
    """How ``reproduce`` runs ``names``: in ``processes`` processes at once; ``threads`` holds the worker
    threads (``MINIRAI_THREADS``) of the runs that get more than the environment says; ``leftover`` names
    the run that takes, before each step, the cores of ``cores`` that the others still training leave
    (:func:`leftover_cores`)."""
    names: tuple[str, ...]
    processes: int
    threads: tuple[tuple[str, int], ...] = ()
    leftover: str | None = None
    cores: int = 1

    def threads_of(self, name: str) -> int | None:
        return dict(self.threads).get(name)


def plan_runs(names: list[str], cores: int, jobs: int | None = None) -> Plan:
    """How ``reproduce`` runs ``names`` on ``cores`` cores: in how many processes, and which run gets more
    than one worker thread.

    * ``jobs`` given: every run at once in that many processes, on the threads the environment sets.
    * One core (or a GPU, where ``cores`` is 1): one run after another.
    * RAI alone: one process, on every core.
    * Otherwise all at once, one process each, and RAI (the most work per step) takes, before each
      step, the cores that the runs still training leave over, and at least one: on 2 cores the deep
      experiment's three runs each start on one thread, and RAI takes both cores once the BP runs are
      done. Measured on 2 cores (``docs/benchmarks.md``, "The full reproduction"): the three runs' training
      took 196 s this way, against 224 s with RAI on two threads from the start (four threads on two
      cores: the BP runs got half a core each, and RAI's second thread gains less than a core).

    A run's numbers do not depend on its threads (tested), so the plan changes only the time.
    """
    if jobs is not None:
        return Plan(tuple(names), max(1, int(jobs)))
    if cores < 2:
        return Plan(tuple(names), 1)
    if len(names) == 1:
        return Plan(tuple(names), 1, ((names[0], cores),) if names[0] == "rai" else ())
    if "rai" not in names:
        return Plan(tuple(names), len(names))
    return Plan(tuple(names), len(names), leftover="rai", cores=cores)


def describe_plan(plan: Plan) -> str:
    """``plan_runs``'s plan in words, for the first line ``reproduce`` prints."""
    how = "alone" if len(plan.names) == 1 else \
        f"side by side in {plan.processes} processes" if plan.processes > 1 else "one after another"
    fewest = max(1, plan.cores - (len(plan.names) - 1))
    leftover = f" ({plan.leftover} on the cores the others leave: {fewest} to {plan.cores} threads)" \
        if plan.leftover else ""
    return how + "".join(f" ({name} on {n} threads)" for name, n in plan.threads) + leftover


def leftover_cores(roster: Path, name: str, cores: int) -> Callable[[], int]:
    """A ``threads`` function (:class:`minirai.train.TrainingLoop`) for the run ``name``: the ``cores`` that
    the other runs still training leave over, and at least 1. ``roster`` holds a file for each run still
    training, which that run deletes when its training ends; looking is one directory listing, before
    each step."""
    def threads() -> int:
        try:
            others = sum(1 for entry in os.scandir(roster) if entry.name != name)
        except OSError:       # (the folder is gone: reproduce ended)
            return 1
        return max(1, cores - others)
    return threads


def usable_cores() -> int:
    """The cores this process may run on (1 on a GPU, where runs go one after another)."""
    if backend.device_name() != "cpu":
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def default_jobs(runs: int) -> int:
    """Processes for ``runs`` independent runs: one per core (at most one per run) on the CPU, one on a GPU."""
    return max(1, min(runs, usable_cores()))


def isolated(function: Callable[..., Any], *args: Any, threads: int | None = None) -> Any:
    """``function(*args)`` in a thread of its own, with ``MINIRAI_THREADS=threads`` while it runs (if given),
    leaving nothing behind.

    joblib reuses its worker processes, so whatever a task changes in its process the next task
    inherits. The task runs in a fresh thread, which ends with it: the CPU's flush-to-zero switch is
    per thread; the BLAS thread limit is set and restored by the training loop; ``MINIRAI_THREADS`` is
    put back as it was (a worker process runs one task at a time).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:     # handed to the caller's thread below
            outcome["error"] = error

    before = os.environ.get("MINIRAI_THREADS")
    if threads is not None:
        os.environ["MINIRAI_THREADS"] = str(threads)
    try:
        worker = threading.Thread(target=target, name=f"minirai-{getattr(function, '__name__', 'task')}")
        worker.start()
        worker.join()
    finally:
        if before is None:
            os.environ.pop("MINIRAI_THREADS", None)
        else:
            os.environ["MINIRAI_THREADS"] = before
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _run_task(task: dict[str, Any]) -> RunResult:
    """One run of :func:`reproduce` and its landscape (in this process or a worker: the device is set again)."""
    if backend.device_name() != task["device"]:
        backend.set_device(task["device"])
    from .. import plot
    recorder = GradientRecorder(every=max(1, task["iters"] // 200)) if task["grads"] else None
    roster = Path(task["roster"]) if task.get("roster") else None
    threads = leftover_cores(roster, task["method"], task["leftover"]) if roster and task.get("leftover") else None
    try:
        result = run(task["experiment"], task["method"], iters=task["iters"], seed=task["seed"],
                     progress=task["progress"], recorder=recorder, dataset=task["dataset"], threads=threads)
    finally:
        if roster is not None:        # this run's training ended: its core is free for the others
            (roster / task["method"]).unlink(missing_ok=True)
    dataset, experiment = task["dataset"], task["experiment"]
    fig = plot.landscape(result.model, dataset.X_train, dataset.y_train,
                         title=f"{TITLES[result.method]}\n{experiment}, {result.iters} iterations: "
                               f"train acc {result.train_acc:.2f}, test acc {result.test_acc:.3f}")
    plot.save(fig, Path(task["out"]) / f"{experiment}-{result.method}-landscape.png")
    return result


def write_gradient_figures(experiment: str, results: list[RunResult], out: Path) -> None:
    """Gradient heatmap and profile (all runs), loss curves (all runs), identity gaps (RAI)."""
    from .. import plot
    label = {"bp": "BP", "bp-tuned": "tuned BP", "rai": "RAI"}
    recorders = {label[r.method]: r.recorder for r in results if r.recorder is not None and len(r.recorder)}
    if recorders:
        plot.save(plot.gradient_heatmap(recorders, title=f"{experiment}: weight-gradient norm by layer"),
                  out / f"{experiment}-grad-heatmap.png")
        plot.save(plot.gradient_profile(recorders), out / f"{experiment}-grad-profile.png")
    plot.save(plot.loss_curves({label[r.method]: r.history for r in results}, title=f"{experiment}: training curves"),
              out / f"{experiment}-loss-curves.png")
    for r in results:
        if r.method == "rai" and r.identity_gap is not None and len(r.history["identity_gap"][0]):
            plot.save(plot.identity_gap_curves(r.history, title=f"{experiment} RAI: identity gap per cut"),
                      out / f"{experiment}-identity-gap.png")
