"""``minirai`` on the command line.

    minirai reproduce shallow|deep [--method bp|rai|both] [--iters N] [--seed S]
                                   [--out DIR] [--force] [--device cpu|gpu|auto] [--quiet] [--grads]
                                   [--jobs N]
    minirai study STUDY.toml --out DIR [--jobs N] [--backend loky|threading|multiprocessing|dask|ray]
                                       [--report-only]
    minirai report DIR... [--methods M,...] [--seeds S,...] [--datasets D,...] [--compare A:B,...]
                          [--fit F] [--out OUT]
    minirai check [TASK ...] [--file PATH | --solutions PATH] [--list] [--seed N] [--timeout S]
                  [--tasks-file FILE]
    minirai grade PATH... --out DIR [--tasks IDS] [--tasks-file FILE] [--timeout S] [--seed N] [--jobs N]
                  [--memory MB] [--forbid MODULES] [--gradescope]
    minirai handout DIR [--from TUTORIALS]
    minirai info

``python -m minirai`` is the same program.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import __version__, backend
from .train import TrainingDiverged


def build_parser() -> argparse.ArgumentParser:
    from .research.experiments import DEFAULT_ITERS, DEFAULT_SEED, EXPERIMENTS
    parser = argparse.ArgumentParser(prog="minirai", description="minirai: BP and Relaxed Activation Identity "
                                     "(RAI) on the proposal's experiments. The proposal: D. A. Mertens Velasquez, "
                                     "'Topic Proposal: An Empirical Study of Relaxed Activation Identity's Effects "
                                     "on First-Order Optimization' (thesis topic proposal, undated).")
    parser.add_argument("--version", action="version", version=f"minirai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    rep = commands.add_parser("reproduce", help="run the proposal's shallow or deep two-moons experiment")
    rep.add_argument("experiment", choices=sorted(EXPERIMENTS))
    rep.add_argument("--method", choices=("bp", "rai", "both"), default="both",
                     help="which training to run (deep BP also runs the tuned baseline); default both")
    rep.add_argument("--iters", type=positive_int, default=DEFAULT_ITERS,
                     help=f"optimizer steps per run (default {DEFAULT_ITERS})")
    rep.add_argument("--seed", type=non_negative_int, default=DEFAULT_SEED,
                     help=f"initial-weight seed, a non-negative integer (default {DEFAULT_SEED})")
    rep.add_argument("--out", default="runs", help="output folder for PNGs and summary.json (default runs/)")
    rep.add_argument("--device", choices=backend.DEVICES, default=None,
                     help="cpu, gpu or auto (default: MINIRAI_DEVICE, else auto)")
    rep.add_argument("--quiet", action="store_true", help="no progress lines")
    rep.add_argument("--force", action="store_true",
                     help="reuse an --out folder that holds files: first remove what an earlier run wrote there")
    rep.add_argument("--jobs", type=positive_int, default=None,
                     help="processes to run the runs in (default on the CPU: one per run, and RAI takes the cores "
                          "the others leave as worker threads, more as they finish; 1 on a GPU)")
    rep.add_argument("--grads", action="store_true",
                     help="record per-layer gradient norms; write gradient heatmap/profile, loss and gap figures")

    from .research.study import SCHEMA
    study = commands.add_parser("study", help="run a declarative sweep (STUDY.toml) and write its report; "
                                "started again with the same --out, it runs only what is missing",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Run a study file's runs that --out does not hold yet (one line each "
                                "in DIR/results.jsonl, their histories and predictions in DIR/runs/), then write "
                                "DIR/report.md and its figures. The study file:\n\n" + SCHEMA,
                                epilog="Examples: studies/*.toml; the report's statistics: minirai report --help; "
                                "docs/study.md.")
    study.add_argument("file", help="the study file (see studies/ for examples)")
    study.add_argument("--out", required=True,
                       help="folder for study.json, results.jsonl, runs/, report.md and figures")
    study.add_argument("--jobs", type=positive_int, default=None,
                       help="runs at once (default: one per core on the CPU, 1 on a GPU)")
    study.add_argument("--backend", default="loky", help="joblib backend: loky (default, processes), threading, "
                       "multiprocessing, dask or ray (a cluster: see docs/study.md)")
    study.add_argument("--device", choices=backend.DEVICES, default=None,
                       help="cpu, gpu or auto (default: MINIRAI_DEVICE, else auto)")
    study.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    study.add_argument("--report-only", action="store_true",
                       help="run nothing: write report.md and the figures again from the runs stored in --out")

    report = commands.add_parser(
        "report", help="write a report from stored study runs: merge folders, keep some methods, seeds or datasets",
        description="Merge the runs stored in one or more study folders (DIR/results.jsonl and DIR/runs/), keep "
        "those asked for, and write report.md and its figures: mean, sample std and a 95% interval per setting and "
        "method, each seed's values, paired differences between methods on the same seeds (each mini-batch RAI "
        "method beside its BP twin, and the study's `compare` pairs), boundary variability among the runs that fit, "
        "flags for clipped (saturated) losses and one-class networks, training curves.")
    report.add_argument("folders", nargs="+", metavar="DIR", help="study folders (minirai study --out DIR)")
    report.add_argument("--methods", type=names_list, default=None, metavar="M,...", help="only these methods")
    report.add_argument("--seeds", type=seeds_list, default=None, metavar="S,...", help="only these seeds")
    report.add_argument("--datasets", type=names_list, default=None, metavar="D,...", help="only these datasets")
    report.add_argument("--compare", type=pairs_list, default=(), metavar="A:B,...",
                        help="paired differences A − B on the same seeds, beside the studies' own pairs")
    report.add_argument("--fit", type=positive_float, default=None,
                        help="the chained training accuracy at which a run fits (default: the study's, else 0.95)")
    report.add_argument("--out", default=None, metavar="OUT",
                        help="the folder for report.md and the figures (default: the one DIR, when nothing is "
                        "filtered or merged)")

    check = commands.add_parser("check", help="grade your exercises.py (PASS / FAIL / NOT DONE per task)",
                                description="Grade exercises.py in the current folder (or --file PATH), each task "
                                "in a sandbox with a time limit. Exit status: 0 all pass, 1 some fail, 3 none fails "
                                "but some are not done, 2 a usage error.")
    check.add_argument("tasks", nargs="*", help="task ids or function names (default: all; see --list)")
    check.add_argument("--file", default=None, help="the file to check (default: exercises.py in this folder)")
    check.add_argument("--solutions", default=None, metavar="PATH",
                       help="check the reference solutions at PATH (teachers/solutions.py in a clone)")
    check.add_argument("--list", action="store_true", help="list the tasks, one per line: id function (...)")
    check.add_argument("--seed", type=non_negative_int, default=None,
                       help="draw the inputs from this seed (default: a fresh one, printed)")
    check.add_argument("--timeout", type=positive_float, default=None,
                       help="seconds per task (default 5)")
    check.add_argument("--tasks-file", default=None, help="a teacher's extra tasks (a Python file defining TASKS)")

    grade = commands.add_parser("grade", help="grade a class of submissions, each in a sandbox; write a gradebook",
                                description="Grade each PATH (a .py file: the student is its stem; or a folder "
                                "holding exercises.py and helper modules: the student is the folder's name) in a "
                                "fresh interpreter with limits. Writes DIR/gradebook.csv, DIR/gradebook.json, "
                                "DIR/feedback/STUDENT.txt (and DIR/gradescope/STUDENT/results.json). Exit status 0 "
                                "when grading finished, whatever the scores; 2 a usage error.")
    grade.add_argument("paths", nargs="+", metavar="PATH", help="submission files or folders")
    grade.add_argument("--out", required=True, metavar="DIR", help="the folder for the gradebook and feedback")
    grade.add_argument("--tasks", default=None, metavar="IDS",
                       help="comma-separated task ids or function names (default: all)")
    grade.add_argument("--tasks-file", default=None, help="a teacher's extra tasks (a Python file defining TASKS)")
    grade.add_argument("--timeout", type=positive_float, default=None, help="seconds per task (default 5)")
    grade.add_argument("--seed", type=non_negative_int, default=None,
                       help="draw the inputs from this seed (default: a fresh one, recorded in gradebook.json)")
    grade.add_argument("--jobs", type=positive_int, default=None,
                       help="submissions graded at once (default: one per core)")
    grade.add_argument("--memory", type=positive_int, default=None, metavar="MB",
                       help="memory (address space) per submission in MB (default 1024)")
    grade.add_argument("--forbid", default="", metavar="MODULES",
                       help="comma-separated modules a submission may not import besides minirai (e.g. torch,jax)")
    grade.add_argument("--gradescope", action="store_true",
                       help="also write Gradescope's results.json per student (DIR/gradescope/STUDENT/results.json)")

    handout = commands.add_parser("handout", help="write what a student gets: the stubs, the chapters as notebooks "
                                  "and scripts, a README (no solutions)")
    handout.add_argument("out", metavar="DIR", help="a new (or empty) folder")
    handout.add_argument("--from", dest="source", default=None, metavar="TUTORIALS",
                         help="the tutorials folder to read (default: the one of the clone minirai runs from)")

    commands.add_parser("info", help="print the version, device and BLAS threads")
    return parser


def integer_from(low: int, what: str):
    """An argparse type: an integer >= ``low``, or a one-line error saying ``what`` was expected."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


positive_int = integer_from(1, "a positive integer")
non_negative_int = integer_from(0, "a non-negative integer")


def names_list(text: str) -> list[str]:
    """An argparse type: comma-separated names (``rai,bp``)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def seeds_list(text: str) -> list[int]:
    """An argparse type: comma-separated non-negative integers (``0,1,2``)."""
    return [non_negative_int(part.strip()) for part in names_list(text)]


def pairs_list(text: str) -> list[tuple[str, str]]:
    """An argparse type: comma-separated pairs ``a:b``."""
    pairs = []
    for part in names_list(text):
        halves = part.split(":")
        if len(halves) != 2 or not all(halves):
            raise argparse.ArgumentTypeError(f"expected pairs A:B of method names, got {part!r}")
        pairs.append((halves[0], halves[1]))
    return pairs


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "info":
        return info()
    if args.command in ("check", "grade", "handout"):
        return classroom(args)
    try:
        if getattr(args, "device", None):
            backend.set_device(args.device, source="--device")
        if args.command == "study":
            from .research.study import run_study
            run_study(args.file, args.out, jobs=args.jobs, backend_name=args.backend, progress=not args.quiet,
                      report_only=args.report_only)
            return 0
        if args.command == "report":
            from .research.writer import report_folders
            out, written, runs = report_folders(args.folders, args.out, methods=args.methods, seeds=args.seeds,
                                                datasets=args.datasets, compare=args.compare, fit=args.fit)
            print(f"wrote a report of {runs} runs: {', '.join(str(out / w) for w in written)}")
            return 0
        from .research.experiments import prepare_output, reproduce
        out = prepare_output(args.out, args.force)
        reproduce(args.experiment, args.method, iters=args.iters, seed=args.seed, out=out,
                  progress=not args.quiet, grads=args.grads, jobs=args.jobs)
    except TrainingDiverged as error:
        print(f"minirai: {error}", file=sys.stderr)
        return 3
    except (RuntimeError, ValueError, TypeError, OSError) as error:
        print(f"minirai: error: {error}", file=sys.stderr)
        return 2
    return 0


def classroom(args: argparse.Namespace) -> int:
    """``minirai check``, ``grade`` and ``handout``: a usage error (a ValueError) is one line and status 2."""
    from .course import check, grade, handout
    from .course.sandbox import GraderError, Limits
    try:
        if args.command == "check":
            if args.list:
                check.list_tasks(args.tasks_file)
                return 0
            return check.run(args.tasks, args.file, args.solutions, args.seed, args.timeout, args.tasks_file)
        if args.command == "handout":
            written = handout.write_handout(args.out, args.source)
            print(f"wrote {len(written)} files into {args.out}: exercises.py, README.md, chapters/ "
                  "(no solutions)")
            return 0
        from .course.tasks import all_tasks, find_task
        known = all_tasks(args.tasks_file)
        tasks = [find_task(t, known) for t in args.tasks.split(",") if t.strip()] if args.tasks else known
        limits = Limits(**{k: v for k, v in (("timeout", args.timeout), ("memory_mb", args.memory)) if v})
        forbidden = [m.strip() for m in args.forbid.split(",") if m.strip()]
        return grade.main(args.paths, args.out, tasks, args.seed, limits, args.jobs or os.cpu_count() or 1,
                          forbidden, args.gradescope)
    except (ValueError, GraderError) as error:
        print(f"minirai {args.command}: error: {error}", file=sys.stderr)
        return 2


def info() -> int:
    """The version, the device and why it was chosen, the GPU as CuPy sees it, the BLAS threads.

    It always prints the whole report. When the device setting cannot be used (``MINIRAI_DEVICE``
    not one of cpu, gpu, auto; or ``gpu`` where no GPU is usable) the device line says why, and
    the exit status is 2, the usage-error status of the other commands, so a script that checks
    its setup with ``minirai info`` sees the failure."""
    from threadpoolctl import threadpool_info
    print(f"minirai {__version__}")
    failure = None
    try:
        backend.xp()
    except (RuntimeError, ValueError) as error:
        failure = error
        print(f"device: none: {error}")
        print(f"gpu: {backend.probe_gpu()[1]}")
    else:
        report = backend.device_report()
        print(f"device: {report.pop('device')} ({report.pop('chosen')})")
        for key, value in report.items():
            print(f"{key.replace('_', ' ')}: {value}")
    for pool in threadpool_info():
        print(f"BLAS: {pool.get('internal_api')} {pool.get('version')}, {pool.get('num_threads')} threads")
    if failure is not None:
        setting = os.environ.get("MINIRAI_DEVICE")
        print(f"minirai info: error: the device setting (MINIRAI_DEVICE={setting!r}) cannot be used; "
              "see the device line", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
