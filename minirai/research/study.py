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

import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import backend
from .datasets import load_dataset
from .methods import DEFAULT_BATCH_SIZE, Method
from ..validate import check_number
from .storage import ERRORS, RESULTS, has_run_file, read_results, remove_orphans, store_run
from .studyfile import SCHEMA, Run, Study, load_study

__doc__ = __doc__.replace("{SCHEMA}", SCHEMA)

BACKENDS = ("loky", "threading", "multiprocessing", "dask", "ray")


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
    from .report import study_order
    from .writer import write_report
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

