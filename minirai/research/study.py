"""``minirai study STUDY.toml --out DIR``: a declarative sweep of datasets, depths, methods and seeds.

A study file holds one ``[study]`` table::

    [study]
    name = "deep-moons"
    datasets = ["moons"]            # moons, circles, digits, mnist1d, classification
    depths = [100]                  # hidden layers
    width = 100
    activation = "sigmoid"
    methods = ["rai", "rai-tuned"]  # see minirai.research.methods.METHODS
    seeds = [0, 1, 2]
    iters = 3000
    batch_size = 32                 # for rai-minibatch and rai-online

and optionally ``[data.NAME]`` tables of loader arguments (``[data.mnist1d] n_samples = 2000``).

Every run is one line of ``DIR/results.jsonl``, appended when the run is done, and the predicted
classes of its network (on a grid for 2-D sets, on the held-out set otherwise) go to
``DIR/predictions/RUN.npy``. A study started again with the same ``--out`` runs only what is
missing: a run counts as done when its line is in ``results.jsonl`` (a line cut short by a kill is
dropped). Runs go through joblib, on the backend ``--backend`` names (``loky`` processes by
default; ``dask`` or ``ray`` to run on a cluster, see docs/study.md). ``DIR/report.md`` holds
mean ± std per setting and method, the boundary variability across seeds, and figures.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, data
from .datasets import grid_points, load_dataset
from .methods import DEFAULT_BATCH_SIZE, METHODS
from ..validate import check_number

STUDY_KEYS = {"name": str, "datasets": list, "depths": list, "width": int, "activation": str, "methods": list,
              "seeds": list, "iters": int, "batch_size": int}
REQUIRED = ("name", "datasets", "depths", "width", "activation", "methods", "seeds", "iters")
BACKENDS = ("loky", "threading", "multiprocessing", "dask", "ray")


@dataclass(frozen=True)
class Run:
    """One run of a study: what it trains, and the name of its line and predictions file."""
    dataset: str
    depth: int
    width: int
    activation: str
    method: str
    seed: int
    batch_size: int
    iters: int
    settings: str = ""      # a fingerprint of the method's definition and the dataset's options

    @property
    def id(self) -> str:
        return (f"{self.dataset}-d{self.depth}-w{self.width}-{self.activation}-{self.method}-s{self.seed}"
                f"-b{self.batch_size}-i{self.iters}-{self.settings}")


def fingerprint(method: str, options: dict[str, Any]) -> str:
    """8 hex digits that change when the method's definition or the dataset's options change, so a
    resumed study never takes a result run under other settings for one of its own."""
    import hashlib
    from . import methods
    spec = {"method": asdict(METHODS[method]), "data": options,
            "constants": {k: getattr(methods, k) for k in ("RPROP_LR", "TUNED_LR", "ORTHOGONAL_LR", "MINIBATCH_LR",
                                                           "MINIBATCH_OPTIONS", "RAI_TUNED")}}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


@dataclass
class Study:
    name: str
    runs: list[Run]
    data_options: dict[str, dict[str, Any]]
    source: dict[str, Any]


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every mistake is a ValueError naming the key and what it expects."""
    path = Path(path)
    try:
        import tomllib
    except ModuleNotFoundError:          # Python < 3.11
        import tomli as tomllib          # type: ignore[no-redef]
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"study file {str(path)!r} cannot be read: {error.strerror or error}") from None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"study file {path}: not valid TOML ({error})") from None
    table = parsed.get("study")
    if not isinstance(table, dict):
        raise ValueError(f"study file {path}: needs a [study] table with {', '.join(REQUIRED)}")
    unknown = sorted(set(table) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f"study file {path}: unknown key(s) {unknown} in [study]; the keys are {sorted(STUDY_KEYS)}")
    missing = [k for k in REQUIRED if k not in table]
    if missing:
        raise ValueError(f"study file {path}: [study] needs {missing}")
    for key, kind in STUDY_KEYS.items():
        if key in table and (not isinstance(table[key], kind) or isinstance(table[key], bool)):
            raise ValueError(f"study file {path}: [study] {key} must be a{'n' if kind is int else ''} "
                             f"{kind.__name__}, got {table[key]!r}")
    for key in ("datasets", "depths", "methods", "seeds"):
        if not table[key]:
            raise ValueError(f"study file {path}: [study] {key} is empty")
        if len(set(map(str, table[key]))) != len(table[key]):
            raise ValueError(f"study file {path}: [study] {key} repeats an entry: {table[key]}")
    _check_entries(path, "datasets", table["datasets"], str, sorted(data.DATASETS))
    _check_entries(path, "methods", table["methods"], str, sorted(METHODS))
    _check_entries(path, "depths", table["depths"], int, None, low=1)
    _check_entries(path, "seeds", table["seeds"], int, None, low=0)
    from ..layers import Activation
    from ..protocol import by_name
    by_name(Activation, table["activation"], f"study file {path}: [study] activation")
    for key in ("width", "iters", "batch_size"):
        if key in table and table[key] < 1:
            raise ValueError(f"study file {path}: [study] {key} must be a positive integer, got {table[key]}")
    if not isinstance(table["name"], str) or not table["name"].strip():
        raise ValueError(f"study file {path}: [study] name must be a non-empty string")
    options = parsed.get("data", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ValueError(f"study file {path}: [data.NAME] tables hold a dataset's loader arguments")
    import inspect
    for name, arguments in options.items():
        if name not in table["datasets"]:
            raise ValueError(f"study file {path}: [data.{name}] is for a dataset the study does not use")
        try:
            inspect.signature(data.DATASETS[name]).bind(**arguments)
        except TypeError as error:
            raise ValueError(f"study file {path}: [data.{name}]: {error} (the arguments of "
                             f"minirai.data.{data.DATASETS[name].__name__})") from None
    extra = sorted(set(parsed) - {"study", "data"})
    if extra:
        raise ValueError(f"study file {path}: unknown table(s) {extra}; a study file has [study] and [data.NAME]")
    batch_size = table.get("batch_size", DEFAULT_BATCH_SIZE)
    runs = [Run(d, depth, table["width"], table["activation"], m, seed, batch_size, table["iters"],
                fingerprint(m, options.get(d, {})))
            for d, depth, m, seed in itertools.product(table["datasets"], table["depths"], table["methods"],
                                                         table["seeds"])]
    return Study(table["name"], runs, options, parsed)


def _check_entries(path: Path, key: str, values: list, kind: type, choices: list | None,
                   low: int | None = None) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"study file {path}: [study] {key} must hold {kind.__name__}s, got {value!r}")
        if choices is not None and value not in choices:
            raise ValueError(f"study file {path}: [study] {key}: unknown {value!r}; choose from {choices}")
        if low is not None and value < low:
            raise ValueError(f"study file {path}: [study] {key} must be >= {low}, got {value}")


# -- one run -----------------------------------------------------------------------------------
def execute(run: Run, options: dict[str, Any], out: str, device: str) -> dict[str, Any]:
    """Train one run, save its predictions, and return its results line (in a worker, or here).

    A run that fails (a diverged training, a dataset that cannot be made) returns a line with
    ``"error"`` instead: the study goes on, and a later start tries that run again."""
    from .experiments import isolated
    try:
        return isolated(_execute, run, options, out, device)
    except Exception as error:               # noqa: BLE001 - reported in errors.jsonl and by the CLI
        return {"id": run.id, **asdict(run), "error": f"{type(error).__name__}: {error}"}


def _execute(run: Run, options: dict[str, Any], out: str, device: str) -> dict[str, Any]:
    from .methods import train
    from ..train import evaluate
    if backend.device_name() != device:
        backend.set_device(device)
    dataset = load_dataset(run.dataset, options)
    start = time.perf_counter()
    trained = train(run.method, dataset, [run.width] * run.depth, run.activation, seed=run.seed, iters=run.iters,
                    batch_size=run.batch_size)
    backend.synchronize()
    seconds = time.perf_counter() - start
    model, loss = trained.model, trained.loss
    train_metrics = evaluate(model, loss, dataset.X_train, dataset.y_train)
    test_metrics = evaluate(model, loss, dataset.X_test, dataset.y_test)
    X_host = backend.to_numpy(dataset.X_train)
    points = grid_points(X_host) if X_host.shape[1] == 2 else None
    where = backend.to_device(points.astype(X_host.dtype)) if points is not None else dataset.X_test
    model.eval()
    predicted = loss.decision(model.forward(where))
    classes = backend.to_numpy(predicted).reshape(-1).astype(np.int16)
    folder = Path(out) / "predictions"
    folder.mkdir(exist_ok=True)
    np.save(folder / f"{run.id}.npy", classes)
    return {"id": run.id, **asdict(run), "seconds": round(seconds, 3),
            "relaxed_loss": trained.relaxed_loss, "chained_loss": train_metrics["loss"],
            "train_acc": train_metrics["accuracy"], "test_acc": test_metrics["accuracy"],
            "identity_gap": trained.identity_gap, "init": trained.init, "optimizer": trained.optimizer,
            "predictions_on": "grid" if points is not None else "held-out", "device": backend.device_name()}


# -- the sweep ---------------------------------------------------------------------------------
RESULTS = "results.jsonl"
ERRORS = "errors.jsonl"        # runs that failed, one line each (not counted as done)


def read_results(out: Path) -> list[dict[str, Any]]:
    """The complete lines of ``results.jsonl`` (one per finished run); a line cut short by a kill
    is dropped, and the file rewritten without it."""
    path = out / RESULTS
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    results, kept = [], []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "id" in value:
            results.append(value)
            kept.append(line)
    if len(kept) != len(lines):         # rewritten whole or not at all (a kill now loses nothing)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text("".join(k + "\n" for k in kept))
        os.replace(temporary, path)
    return results


def run_study(path: str | Path, out: str | Path, *, jobs: int | None = None, backend_name: str = "loky",
              progress: bool = True, echo: bool = True) -> list[dict[str, Any]]:
    """Run the study's missing runs, then write ``report.md`` and its figures. Returns all results."""
    study = load_study(path)
    if backend_name not in BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS}, got {backend_name!r}")
    jobs = check_number(jobs, "--jobs", low=1, integer=True, none=True)
    out = Path(out).resolve()            # workers of a cluster backend may start elsewhere
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "study.json"
    if marker.is_file():
        try:
            before = json.loads(marker.read_text())
        except ValueError:
            before = None
        if not isinstance(before, dict) or before.get("name") != study.name:
            raise ValueError(f"--out {str(out)!r} holds another study ({marker}); choose another folder")
    elif any(out.iterdir()):
        raise ValueError(f"--out {str(out)!r} already holds files that are not a study's; choose another folder")
    marker.write_text(json.dumps({"name": study.name, "file": str(path), "study": study.source}, indent=2) + "\n")
    done = {r["id"]: r for r in read_results(out) if os.path.isfile(out / "predictions" / f"{r['id']}.npy")}
    todo = [run for run in study.runs if run.id not in done]
    if echo:
        print(f"[{study.name}] {len(study.runs)} runs: {len(study.runs) - len(todo)} done before, {len(todo)} to run "
              f"on device {backend.device_name()} ({backend.device_report()['chosen']})", flush=True)
    failed: list[dict[str, Any]] = []
    if todo:
        _run_all(study, todo, out, jobs, backend_name, progress and echo, done, failed)
    results = [done[run.id] for run in study.runs if run.id in done]
    from .report import write_report
    written = write_report(study, results, out, failed)
    if echo:
        print(f"wrote {out / RESULTS} ({len(results)} runs) and {', '.join(str(out / w) for w in written)}")
        for line in failed:
            print(f"[{study.name}] run {line['id']} failed: {line['error']} (see {out / ERRORS}; a new start "
                  "tries it again)", file=sys.stderr)
    return results


def _run_all(study: Study, todo: list[Run], out: Path, jobs: int | None, backend_name: str, progress: bool,
             done: dict[str, dict[str, Any]], failed: list[dict[str, Any]]) -> None:
    from joblib import Parallel, delayed, parallel_config
    from .experiments import default_jobs
    device = backend.device_name()
    jobs = jobs or default_jobs(len(todo))
    calls = [delayed(execute)(run, study.data_options.get(run.dataset, {}), str(out), device) for run in todo]
    with _cluster(backend_name), parallel_config(backend=backend_name, n_jobs=jobs):
        try:                                 # each result as it comes, so that a killed study keeps it
            results = Parallel(return_as="generator_unordered")(calls)
        except ValueError as error:          # multiprocessing and ray return lists only: rounds of `jobs` runs
            if "return_as" not in str(error):
                raise
            results = (result for start in range(0, len(calls), jobs)
                       for result in Parallel(return_as="list")(calls[start:start + jobs]))
        bar = _bar(len(todo), progress)
        start = time.perf_counter()
        with open(out / RESULTS, "a") as sink, open(out / ERRORS, "a") as errors:
            for k, result in enumerate(results, 1):
                target = errors if "error" in result else sink
                target.write(json.dumps(result) + "\n")
                target.flush()
                os.fsync(target.fileno())
                if "error" in result:
                    failed.append(result)
                    if bar is None and progress:
                        print(f"[{study.name}] {k}/{len(todo)} {result['id']}: failed: {result['error']}", flush=True)
                    if bar is not None:
                        bar.update(1)
                    continue
                done[result["id"]] = result
                if bar is not None:
                    bar.set_postfix_str(result["id"], refresh=False)
                    bar.update(1)
                elif progress:
                    print(f"[{study.name}] {k}/{len(todo)} {result['id']}: train acc {result['train_acc']:.3f}, "
                          f"test acc {result['test_acc']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
        if bar is not None:
            bar.close()


def _bar(total: int, enabled: bool) -> Any:
    """A bar across runs on a terminal; None elsewhere (plain lines are printed instead)."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="run", dynamic_ncols=True)


class _cluster:
    """For ``--backend dask``/``ray``: connect to the cluster joblib will use (see docs/study.md)."""

    def __init__(self, name: str) -> None:
        self.name, self.client = name, None

    def __enter__(self) -> "_cluster":
        try:
            if self.name == "dask":
                from dask.distributed import Client
                self.client = Client()       # DASK_SCHEDULER_ADDRESS, else a local cluster
            elif self.name == "ray":
                import ray
                from ray.util.joblib import register_ray
                register_ray()
                ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True)
        except ImportError as error:
            raise ValueError(f"--backend {self.name} needs {error.name}: pip install "
                             f"{'dask[distributed]' if self.name == 'dask' else 'ray'}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.client is not None:
            self.client.close()
