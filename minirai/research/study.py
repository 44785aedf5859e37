"""``minirai study STUDY.toml --out DIR``: a declarative sweep of datasets, nets, methods and seeds.

The study file (its schema is :data:`SCHEMA`, also shown by ``minirai study --help``)::

{SCHEMA}
Every run is one line of ``DIR/results.jsonl``, appended when the run is done, and one file
``DIR/runs/RUN.npz`` (compressed) with its history and the classes its network predicts (on a grid
for 2-D sets, on the held-out set otherwise). Both are written by the process that started the study,
the file first; a worker only returns them. A study started again with the same ``--out`` runs only
what is missing: a run counts as done when its line is in ``results.jsonl`` (a line cut short by a kill
is dropped) and its file is there; a file without a line is removed. A worker whose study has gone (a
killed study) stops within a second. Runs go through joblib, on the backend ``--backend`` names
(``loky`` processes by default; ``dask`` or ``ray`` to run on a cluster, see docs/study.md).
``DIR/report.md`` and its figures are written by :mod:`~minirai.research.report` from the lines alone,
so ``minirai study --report-only`` and ``minirai report DIR`` write them again from stored results.
"""
from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, data
from .datasets import load_dataset
from .methods import DEFAULT_BATCH_SIZE, METHODS, Method, custom
from ..validate import check_number

SCHEMA = """\
    [study]
    name = "deep-moons"             # the folder --out holds this study's runs only
    datasets = ["moons"]            # moons, circles, digits, mnist1d, mnist5k, classification
    depths = [100]                  # hidden layers, each `width` wide ...
    width = 100
    # hidden = [[42, 100, 100, 42]] # ... or the hidden widths of each net (instead of depths, width)
    activation = "sigmoid"          # or a list: ["sigmoid", "tanh", "relu"]
    methods = ["rai", "rai-tuned"]  # built in (minirai.research.methods.METHODS) or [methods.NAME]
    seeds = [0, 1, 2]
    iters = 3000                    # optimizer steps (batch steps for mini-batch methods)
    batch_size = 32                 # mini-batch methods only (default 32)
    compare = [["rai-tuned", "rai"]]   # optional: paired differences (each RAI mini-batch method and
                                    # its BP twin are compared without asking)
    fit = 0.95                      # optional: a run "fits" at this chained training accuracy (0.95)

    [methods.rai-every3]            # optional: a method of your own, a base and what differs
    base = "rai"                    # a built-in method, or one defined above
    cuts = "linear[2::3]"           # RAI bases only
    lam = {schedule = "geometric", start = 1, factor = 10, every = 500, maximum = 1e4}  # or a number
    optimizer = "adam"              # rprop, adam, sgd; lr = 1e-3; init = "orthogonal"
    regulariser = {kind = "weight-decay", strength = 1e-4}    # or a list (kinds below)
    # also: iters, batch_size, weight_steps ("per-epoch"), inner_steps, description

    [data.mnist1d]                  # optional: a dataset loader's arguments
    n_samples = 2000

  Regularisers: weight-decay (strength), table-noise (std), table-l2 (strength), weight-average
  (start = 0.5), early-stopping (every, val_fraction = 0.2): minirai.research.regularisers.
"""

__doc__ = __doc__.replace("{SCHEMA}", SCHEMA)

STUDY_KEYS = {"name": str, "datasets": list, "depths": list, "width": int, "hidden": list, "activation": (str, list),
              "methods": list, "seeds": list, "iters": int, "batch_size": int, "compare": list, "fit": (int, float)}
REQUIRED = ("name", "datasets", "methods", "seeds", "iters", "activation")
BACKENDS = ("loky", "threading", "multiprocessing", "dask", "ray")
FIT = 0.95
RESULTS = "results.jsonl"
ERRORS = "errors.jsonl"        # runs that failed, one line each (not counted as done)
RUNS = "runs"                  # RUN.npz: a run's history and predictions


@dataclass(frozen=True)
class Run:
    """One run of a study: what it trains, and the name of its line and file."""
    dataset: str
    hidden: tuple[int, ...]
    activation: str
    method: str
    seed: int
    iters: int
    batch_size: int | None      # None for a full-batch method
    settings: str = ""          # a fingerprint of the method's settings and the dataset's options

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def width(self) -> int | str:
        """The width of every hidden layer, or the widths joined by '-' where they differ."""
        return self.hidden[0] if len(set(self.hidden)) == 1 else "-".join(map(str, self.hidden))

    @property
    def id(self) -> str:
        batch = f"-b{self.batch_size}" if self.batch_size is not None else ""
        return (f"{self.dataset}-d{self.depth}-w{self.width}-{self.activation}-{self.method}-s{self.seed}"
                f"-i{self.iters}{batch}-{self.settings}")


def fingerprint(method: Method, batch_size: int | None, options: dict[str, Any]) -> str:
    """8 hex digits that change when a setting the method uses, or the dataset's options, change (and
    only then), so a resumed study never takes a result run under other settings for one of its own."""
    import hashlib
    spec = {"method": method.settings(batch_size), "data": options}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


@dataclass
class Study:
    name: str
    runs: list[Run]
    data_options: dict[str, dict[str, Any]]
    source: dict[str, Any]
    methods: dict[str, Method] = field(default_factory=dict)
    compare: list[tuple[str, str]] = field(default_factory=list)
    fit: float = FIT


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
    return parse_study(parsed, f"study file {path}")


def parse_study(parsed: dict[str, Any], where: str) -> Study:
    """A study from a parsed study file (as ``study.json`` keeps it too)."""
    table = parsed.get("study")
    if not isinstance(table, dict):
        raise ValueError(f"{where}: needs a [study] table with {', '.join(REQUIRED)}")
    unknown = sorted(set(table) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} in [study]; the keys are {sorted(STUDY_KEYS)} "
                         "(see minirai study --help)")
    missing = [k for k in REQUIRED if k not in table]
    if "hidden" not in table:
        missing += [k for k in ("depths", "width") if k not in table]
    if missing:
        raise ValueError(f"{where}: [study] needs {missing}")
    if "hidden" in table and ("depths" in table or "width" in table):
        raise ValueError(f"{where}: [study] takes hidden (the widths of each net) or depths and width, not both")
    for key, kind in STUDY_KEYS.items():
        if key in table and (not isinstance(table[key], kind) or isinstance(table[key], bool)):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(("an " if k is int else "a ") + {"str": "string", "float": "number"}.get(k.__name__,
                                                                                                       k.__name__)
                                for k in kinds)
            raise ValueError(f"{where}: [study] {key} must be {names}, got {table[key]!r}")
    activations = table["activation"] if isinstance(table["activation"], list) else [table["activation"]]
    lists = {"datasets": table["datasets"], "methods": table["methods"], "seeds": table["seeds"],
             "activation": activations}
    lists.update({"depths": table["depths"]} if "hidden" not in table else {"hidden": table["hidden"]})
    for key, values in lists.items():
        if not values:
            raise ValueError(f"{where}: [study] {key} is empty")
        if len(set(map(str, values))) != len(values):
            raise ValueError(f"{where}: [study] {key} repeats an entry: {values}")
    custom_tables = parsed.get("methods", {})
    if not isinstance(custom_tables, dict) or not all(isinstance(v, dict) for v in custom_tables.values()):
        raise ValueError(f"{where}: [methods.NAME] tables define methods (base = ..., and what differs)")
    known = dict(METHODS)
    for name, spec in custom_tables.items():
        known[name] = custom(name, spec, known)
    _check_entries(where, "datasets", table["datasets"], str, sorted(data.DATASETS))
    _check_entries(where, "methods", table["methods"], str, sorted(known))
    _check_entries(where, "seeds", table["seeds"], int, None, low=0)
    _check_entries(where, "activation", activations, str, None)
    if "hidden" in table:
        for net in table["hidden"]:
            if not isinstance(net, list) or not net:
                raise ValueError(f"{where}: [study] hidden holds lists of widths, one list per net, got {net!r}")
            _check_entries(where, "hidden", net, int, None, low=1)
        nets = [tuple(net) for net in table["hidden"]]
    else:
        _check_entries(where, "depths", table["depths"], int, None, low=1)
        nets = [(table["width"],) * depth for depth in table["depths"]]
    from ..layers import Activation
    from ..protocol import by_name
    for activation in activations:
        by_name(Activation, activation, f"{where}: [study] activation")
    for key in ("width", "iters", "batch_size"):
        if key in table and table[key] < 1:
            raise ValueError(f"{where}: [study] {key} must be a positive integer, got {table[key]}")
    if not isinstance(table["name"], str) or not table["name"].strip():
        raise ValueError(f"{where}: [study] name must be a non-empty string")
    fit = float(table.get("fit", FIT))
    if not 0 < fit <= 1:
        raise ValueError(f"{where}: [study] fit must lie in (0, 1], got {fit}")
    compare = []
    for pair in table.get("compare", []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(m in table["methods"] for m in pair)):
            raise ValueError(f"{where}: [study] compare holds pairs of the study's methods [\"a\", \"b\"] (a minus b "
                             f"on the same seeds), got {pair!r}")
        compare.append((pair[0], pair[1]))
    options = parsed.get("data", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ValueError(f"{where}: [data.NAME] tables hold a dataset's loader arguments")
    import inspect
    for name, arguments in options.items():
        if name not in table["datasets"]:
            raise ValueError(f"{where}: [data.{name}] is for a dataset the study does not use")
        try:
            inspect.signature(data.DATASETS[name]).bind(**arguments)
        except TypeError as error:
            raise ValueError(f"{where}: [data.{name}]: {error} (the arguments of "
                             f"minirai.data.{data.DATASETS[name].__name__})") from None
    extra = sorted(set(parsed) - {"study", "data", "methods"})
    if extra:
        raise ValueError(f"{where}: unknown table(s) {extra}; a study file has [study], [methods.NAME] and "
                         "[data.NAME]")
    batch_size = table.get("batch_size", DEFAULT_BATCH_SIZE)
    methods = {name: known[name] for name in table["methods"]}
    runs = []
    for d, net, activation, m, seed in itertools.product(table["datasets"], nets, activations, table["methods"],
                                                         table["seeds"]):
        method = methods[m]
        size = (method.batch_size or batch_size) if method.minibatch else None
        runs.append(Run(d, net, activation, m, seed, method.iters or table["iters"], size,
                        fingerprint(method, size, options.get(d, {}))))
    return Study(table["name"], runs, options, parsed, methods, compare, fit)


def _check_entries(where: str, key: str, values: list, kind: type, choices: list | None,
                   low: int | None = None) -> None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{where}: [study] {key} must hold {kind.__name__}s, got {value!r}")
        if choices is not None and value not in choices:
            raise ValueError(f"{where}: [study] {key}: unknown {value!r}; choose from {choices}")
        if low is not None and value < low:
            raise ValueError(f"{where}: [study] {key} must be >= {low}, got {value}")


# -- one run -----------------------------------------------------------------------------------
def execute(run: Run, method: Method, options: dict[str, Any], device: str,
            study_process: tuple[str, int] | None = None) -> dict[str, Any]:
    """Train one run (in a worker, or here) and return its results line, with its history and
    predictions under ``"arrays"`` for the study's process to store. It writes nothing.

    A run that fails (a diverged training, a dataset that cannot be made) returns a line with
    ``"error"`` instead: the study goes on, and a later start tries that run again.
    ``study_process`` (host, pid): the study's process; where this worker runs on the same host and
    that process has gone (killed), the worker ends itself (see :func:`watch_study`)."""
    from .experiments import isolated
    if study_process is not None:
        watch_study(*study_process)
    try:
        return isolated(_execute, run, method, options, device)
    except Exception as error:               # noqa: BLE001 - reported in errors.jsonl and by the CLI
        return {"id": run.id, **line_of(run), "error": f"{type(error).__name__}: {error}"}


def line_of(run: Run) -> dict[str, Any]:
    values = asdict(run)
    values["hidden"] = list(run.hidden)
    return {"dataset": run.dataset, "depth": run.depth, "width": run.width, **values}


def _execute(run: Run, method: Method, options: dict[str, Any], device: str) -> dict[str, Any]:
    from .methods import history_columns, predictions, score, train
    if backend.device_name() != device:
        backend.set_device(device)
    dataset = load_dataset(run.dataset, options)
    start = time.perf_counter()
    trained = train(method, dataset, list(run.hidden), run.activation, seed=run.seed, iters=run.iters,
                    batch_size=run.batch_size or DEFAULT_BATCH_SIZE)
    backend.synchronize()
    seconds = time.perf_counter() - start
    scores = score(trained, dataset)
    classes, where = predictions(trained, dataset)
    arrays = {"predictions": classes, **{f"history_{k}": v for k, v in history_columns(trained.history).items()}}
    return {"id": run.id, **line_of(run), "seconds": round(seconds, 3), **scores,
            "init": trained.init, "optimizer": trained.optimizer, "predictions_on": where,
            "device": backend.device_name(), "method_settings": method.settings(run.batch_size),
            "data_options": options, "extra": trained.extra, "arrays": arrays}


_WATCHED: set[int] = set()


def watch_study(host: str, pid: int) -> None:
    """In a worker process: a daemon thread that ends this process (``os._exit``) within a second
    of the study's process ``pid`` on ``host`` ending. joblib's loky workers outlive a study killed
    with SIGKILL and would go on training; here they stop. Nothing is done in the study's own
    process (the threading backend), on another host (a cluster), or a second time."""
    if pid == os.getpid() or host != socket.gethostname() or pid in _WATCHED:
        return
    _WATCHED.add(pid)

    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:       # the pid is alive (another user's): keep watching
                pass
            time.sleep(0.5)

    threading.Thread(target=watch, name="minirai-watch-study", daemon=True).start()


# -- stored runs -------------------------------------------------------------------------------
def read_results(out: Path) -> list[dict[str, Any]]:
    """The complete lines of ``results.jsonl`` (one per finished run; the last line of an id wins);
    a line cut short by a kill is dropped, and the file rewritten without it."""
    path = Path(out) / RESULTS
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    results, kept = {}, []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "id" in value:
            results[value["id"]] = value
            kept.append(line)
    if len(kept) != len(lines):         # rewritten whole or not at all (a kill now loses nothing)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text("".join(k + "\n" for k in kept))
        os.replace(temporary, path)
    return list(results.values())


def run_file(out: Path, run_id: str) -> Path:
    return Path(out) / RUNS / f"{run_id}.npz"


def load_run_arrays(out: Path, run_id: str) -> dict[str, np.ndarray]:
    """A stored run's arrays: ``predictions`` and ``history_COLUMN`` (``predictions/RUN.npy`` of an
    older study: the predictions only)."""
    path = run_file(out, run_id)
    if path.is_file():
        with np.load(path) as stored:
            return {k: stored[k] for k in stored.files}
    return {"predictions": np.load(Path(out) / "predictions" / f"{run_id}.npy")}


def has_run_file(out: Path, run_id: str) -> bool:
    return run_file(out, run_id).is_file() or (Path(out) / "predictions" / f"{run_id}.npy").is_file()


def store_run(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write a run's arrays (to a temporary name, then renamed) and return its line without them."""
    arrays = result.pop("arrays")
    folder = Path(out) / RUNS
    folder.mkdir(exist_ok=True)
    temporary = folder / f"{result['id']}.tmp.npz"
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, run_file(out, result["id"]))
    return result


def remove_orphans(out: Path, recorded: set[str]) -> list[str]:
    """Remove run files that no line records (a kill between a file and its line, or a temporary)."""
    removed = []
    folder = Path(out) / RUNS
    if folder.is_dir():
        for path in folder.iterdir():
            name = path.name
            run_id = name[:-len(".npz")] if name.endswith(".npz") and not name.endswith(".tmp.npz") else None
            if run_id is None or run_id not in recorded:
                path.unlink()
                removed.append(name)
    return removed


# -- the sweep ---------------------------------------------------------------------------------
def prepare_folder(study: Study, path: str | Path, out: Path) -> None:
    """``--out`` must be empty, or hold this study (by name); its ``study.json`` records the study."""
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


def run_study(path: str | Path, out: str | Path, *, jobs: int | None = None, backend_name: str = "loky",
              progress: bool = True, echo: bool = True, report_only: bool = False) -> list[dict[str, Any]]:
    """Run the study's missing runs (none with ``report_only``), then write ``report.md`` and its
    figures. Returns the results of the study's runs that are done."""
    study = load_study(path)
    if backend_name not in BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS}, got {backend_name!r}")
    jobs = check_number(jobs, "--jobs", low=1, integer=True, none=True)
    out = Path(out).resolve()            # workers of a cluster backend may start elsewhere
    if report_only:
        if not (out / "study.json").is_file():
            raise ValueError(f"--report-only: {str(out)!r} holds no study's results (no study.json)")
    prepare_folder(study, path, out)
    stored = read_results(out)
    remove_orphans(out, {r["id"] for r in stored})
    done = {r["id"]: r for r in stored if has_run_file(out, r["id"])}
    todo = [] if report_only else [run for run in study.runs if run.id not in done]
    if echo:
        print(f"[{study.name}] {len(study.runs)} runs: {len(study.runs) - len(todo) if not report_only else len(done)} "
              f"done before, {len(todo)} to run on device {backend.device_name()} "
              f"({backend.device_report()['chosen']})", flush=True)
    failed: list[dict[str, Any]] = []
    if todo:
        _run_all(study, todo, out, jobs, backend_name, progress and echo, done, failed)
    results = [done[run.id] for run in study.runs if run.id in done]
    from .report import study_order, write_report
    written = write_report(out, results, name=study.name, planned=len(study.runs), failed=failed,
                           compare=study.compare, fit=study.fit, order=study_order(study))
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
    me = (socket.gethostname(), os.getpid())
    calls = [delayed(execute)(run, study.methods[run.method], study.data_options.get(run.dataset, {}), device, me)
             for run in todo]
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
                if "error" not in result:
                    result = store_run(out, result)      # the file first, then the line that records it
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
                          f"test acc {result['test_acc']:.3f}, {result['seconds']:.0f} s "
                          f"({time.perf_counter() - start:.0f} s in all)", flush=True)
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

