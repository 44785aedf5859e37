"""``minirai grade``: grade a class, each submission in its own sandbox; write a gradebook.

    minirai grade submissions/*.py submissions/bob/ --out grades [--tasks 1,2,7] [--tasks-file MINE.py]
                  [--timeout 5] [--seed N] [--jobs N] [--memory 1024] [--forbid torch,jax] [--gradescope]

Each PATH is a submission: a ``.py`` file (the student is the file's stem) or a folder holding
``exercises.py`` and any helper modules (the student is the folder's name). Each runs in a fresh
interpreter (:mod:`minirai.course.sandbox`); the grader computes the reference values and the verdict.
When every submission's process has ended, it writes

* ``DIR/gradebook.csv``: ``student,1,...,12,total,status``, one row per student, 1 or 0 per task;
  ``status`` is ``ok`` or what went wrong (``does not import: SyntaxError at line 3``, ``timed out in
  task 6``, ``line 40 raised ZeroDivisionError (skipped)``, ...);
* ``DIR/gradebook.json``: the seed, the limits, and per student and task the status, the message and
  the seconds taken;
* ``DIR/feedback/STUDENT.txt``: the lines ``minirai check`` prints, the student's output truncated;
* with ``--gradescope``: ``DIR/gradescope/STUDENT/results.json`` in Gradescope's autograder format.

The inputs are drawn from the seed (by default a fresh one, recorded in the JSON and printed). It
exits 0 when grading finished, whatever the scores.
"""
from __future__ import annotations

import csv
import json
import re
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .judge import Call, Failed, Returned, Task, task_rng
from .sandbox import GraderError, Limits, Loaded, Sandbox, Stopped

PASS, FAIL, NOT_DONE = "PASS", "FAIL", "NOT DONE"


@dataclass
class TaskResult:
    """One task of one submission: PASS, FAIL or NOT DONE, the one-line (or few-line) message, the
    seconds it took, and ``events``: what went wrong beyond a wrong answer (for the gradebook's status)."""
    task: Task
    status: str
    message: str
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)

    @property
    def score(self) -> int:
        return int(self.status == PASS)


@dataclass
class Graded:
    """A graded submission: its tasks, how its file loaded, what it printed, what went wrong."""
    student: str
    source: Path
    seed: int
    results: list[TaskResult] = field(default_factory=list)
    loaded: Loaded | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    output: str = ""
    output_bytes: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(r.score for r in self.results)

    @property
    def status(self) -> str:
        """``ok``, or what went wrong, one part per kind: ``timed out in tasks 6, 9; printed 14.2 MB (truncated)``."""
        tasks: dict[str, list[str]] = {}
        for problem in self.problems:
            match = re.fullmatch(r"(.*) in task (\S+)", problem)
            what, task = (match.group(1), match.group(2)) if match else (problem, "")
            tasks.setdefault(what, [])
            if task and task not in tasks[what]:
                tasks[what].append(task)
        return "; ".join(what + (f" in task{'s' if len(ids) > 1 else ''} {', '.join(ids)}" if ids else "")
                         for what, ids in tasks.items()) or "ok"


_references = threading.Lock()
_users: list = [0, None]          # how many gradings use NumPy references now, and the module active before


@contextmanager
def numpy_references() -> Iterator[None]:
    """The checks compute their references with NumPy arrays: NumPy is minirai's active array module
    while any grading runs (in any thread), and the one active before comes back after the last."""
    from .. import backend
    with _references:
        if _users[0] == 0:
            _users[1] = backend.use_module(np)
        _users[0] += 1
    try:
        yield
    finally:
        with _references:
            _users[0] -= 1
            if _users[0] == 0:
                backend.use_module(_users[1])


def fresh_seed() -> int:
    return secrets.randbelow(10 ** 9)


def size(count: int) -> str:
    return f"{count / 2 ** 20:.1f} MB" if count >= 2 ** 20 else f"{count / 2 ** 10:.1f} kB" if count >= 2 ** 10 \
        else f"{count} bytes"


# -- one task, one submission -----------------------------------------------------------------------------------
def raised(function: str, outcome: dict, limits: Limits) -> str:
    """The message for an exception the student's function raised (the outcome the runner sent)."""
    where = f" at {outcome['file']} line {outcome['line']}" if outcome.get("file") else ""
    message = str(outcome.get("message") or "")
    if outcome.get("signature"):
        return (f"{function}() could not be called as the grader calls it ({outcome.get('error')}: {message}): "
                f"yours is {outcome['signature']}, called with {outcome.get('given')} arguments; keep the "
                "parameters of the stub")
    if outcome.get("exit"):
        return f"{function}() called exit(){where}"
    if outcome.get("memory"):
        return f"{function}() ran out of memory{where} (the limit is {limits.memory_mb} MB)"
    return f"{function}() raised {outcome.get('error')}{where}" + (f": {message}" if message else "")


def run_task(box: Sandbox, task: Task, seed: int, limits: Limits, file: str) -> TaskResult:
    """Run ``task``'s check: its calls in ``box``, its judgement here. Never raises for what the
    student's code does; a bug of the check itself is a FAIL that says so."""
    started, budget = time.monotonic(), limits.timeout
    checker = task.check(task_rng(seed, task.id))

    refused: list[str] = []               # what the guard refused while the task ran (it stays refused)

    def result(status: str, message: str, event: str = "") -> TaskResult:
        events = [f"refused {what} in task {task.id}" for what in dict.fromkeys(refused)]
        return TaskResult(task, status, message, time.monotonic() - started, events + ([event] if event else []))

    try:
        request = next(checker)
        while True:
            if not isinstance(request, Call):
                raise TypeError(f"the check yielded {type(request).__name__}, not a Call")
            function = request.function or task.function
            try:
                reply = box.call(function, request.args, request.kwargs, max(budget, 0.0))
            except Stopped as stop:
                if stop.reason == "timeout":
                    return result(FAIL, f"{function}() ran past the time limit ({limits.timeout:g} s for this task): "
                                  "an endless loop?", f"timed out in task {task.id}")
                if stop.reason == "protocol":
                    return result(FAIL, f"{function}() broke the grader's channel ({stop.detail})",
                                  f"broke the sandbox's channel in task {task.id}")
                return result(FAIL, f"{function}() ended the grader's interpreter: {stop.detail}",
                              f"ended its process in task {task.id}")
            budget -= reply.seconds
            for refusal in reply.refusals:
                if refusal["kind"].startswith("forbidden"):
                    why = ("compute with NumPy only" if refusal["kind"] == "forbidden import" else
                           "a submission reads only its own files")
                    return result(FAIL, f"{function}() tried {refusal['what']} while the task ran, which the "
                                  f"grader refuses: 0 for this task ({why})",
                                  f"{refusal['what']} in task {task.id}" if refusal["kind"] == "forbidden import"
                                  else f"read a protected file in task {task.id}")
            refused += [r["what"] for r in reply.refusals]
            outcome, kind = reply.outcome, reply.outcome.get("kind")
            if kind == "missing":
                return result(NOT_DONE, f"there is no function {function}() in {file}")
            if kind == "not_done":
                return result(NOT_DONE, f"{function}() still raises NotImplementedError({outcome.get('message', '')})")
            if kind == "broken":
                return result(FAIL, f"{function}() has a {outcome.get('error')} at line {outcome.get('line')}: "
                              f"{outcome.get('message')}; it was not graded (the rest of your file was)")
            if kind == "unsendable":
                return result(FAIL, f"{function}() returned what cannot be sent back: {outcome.get('message')}")
            if kind == "raised":
                return result(FAIL, raised(function, outcome, limits),
                              f"out of memory in task {task.id}" if outcome.get("memory") else "")
            if kind != "returned":
                return result(FAIL, f"{function}(): the sandbox answered {str(kind)[:40]!r}",
                              f"broke the sandbox's channel in task {task.id}")
            request = checker.send(Returned(request, reply.value, reply.args, reply.kwargs, reply.seconds))
    except StopIteration as done:
        return result(PASS, str(done.value or "passes"))
    except Failed as failed:
        return result(FAIL, str(failed))
    except Exception as error:      # noqa: BLE001 - a bug of the check must not hide the other tasks
        return result(FAIL, f"the checker itself failed: {type(error).__name__}: {error}",
                      f"the check of task {task.id} failed")
    finally:
        checker.close()


def load_notes(loaded: Loaded, file: str) -> tuple[list[str], list[str]]:
    """What went wrong while loading: ``(notes, problems)``, the long lines for the feedback and the
    short ones for the gradebook's status."""
    notes, problems = [], []
    if loaded.unreadable:
        u = loaded.unreadable
        at = f" at line {u['line']}" if u.get("line") else ""
        notes.append(f"{file} does not import: {u.get('error')}{at}: {u.get('message')}")
        problems.append(f"does not import: {u.get('error')}{at}")
    for name, what in loaded.broken.items():
        notes.append(f"line {what.get('line')}: {what.get('error')} in {name}(): {what.get('message')}; "
                     f"{name}() was not graded, the rest of the file was")
        problems.append(f"{what.get('error')} in {name} at line {what.get('line')}")
    for skip in loaded.skipped:
        line, error = skip.get("line"), str(skip.get("error"))
        if error == "timeout":
            short, long = "timed out", f"ran past the time limit: {skip.get('message')}"
        elif error == "exit":
            short, long = "ended the process", f"ended the grader's interpreter: {skip.get('message')}"
        elif skip.get("exit"):
            short, long = "called exit()", "called exit()"
        else:
            inner = ""
            if skip.get("inner_line") and (skip.get("inner_line"), skip.get("inner_file")) != (line, file):
                inner = f" (in {skip.get('inner_function')} at {skip.get('inner_file')} line {skip.get('inner_line')})"
            short, long = f"raised {error}", f"raised {error}{inner}: {skip.get('message')}"
        notes.append(f"line {line}: the top-level code {long}; that statement was skipped, the rest of the file "
                     "was graded")
        problems.append(f"line {line} {short} (skipped)")
    for what in dict.fromkeys(r["what"] for r in loaded.refusals):
        notes.append(f"while loading, the sandbox refused {what}")
        problems.append(f"refused: {what}")
    return notes, problems


def grade_submission(source: str | Path, tasks: Sequence[Task], seed: int, limits: Limits | None = None,
                     protected: Sequence[str | Path] = (), forbidden: Sequence[str] = (),
                     student: str | None = None, neighbours: bool = False) -> Graded:
    """Grade one submission (a ``.py`` file or a folder holding ``exercises.py``) on ``tasks``
    (``neighbours``: a file brings the ``.py`` files beside it, as :class:`Sandbox` says)."""
    source = Path(source)
    limits = limits or Limits()
    graded = Graded(student or student_name(source), source, seed)
    started = time.monotonic()
    file = source.name if source.is_file() else "exercises.py"
    try:
        with numpy_references(), Sandbox(source, limits, protected, forbidden,
                                         calls_expected=12 * max(len(tasks), 1), neighbours=neighbours) as box:
            graded.loaded = box.load()
            graded.notes, graded.problems = load_notes(graded.loaded, file)
            for task in tasks:
                if graded.loaded.unreadable:
                    graded.results.append(TaskResult(task, FAIL, f"not graded: {graded.notes[0]}"))
                    continue
                outcome = run_task(box, task, seed, limits, file)
                graded.results.append(outcome)
                graded.problems += outcome.events
            graded.output, graded.output_bytes = box.output.text(), box.output.total
    except ValueError as error:        # a folder submission too big to copy
        graded.notes, graded.problems = [str(error)], ["not graded: " + str(error)]
        graded.results = [TaskResult(task, FAIL, f"not graded: {error}") for task in tasks]
    if graded.output_bytes > len(graded.output.encode("utf-8", errors="replace")):
        graded.problems.append(f"printed {size(graded.output_bytes)} (truncated)")
    graded.seconds = time.monotonic() - started
    return graded


# -- the lines a student reads ------------------------------------------------------------------------------
def printed_lines(graded: Graded) -> list[str]:
    """What the submission printed, truncated, each line marked so it never reads as the grader's."""
    if not graded.output_bytes:
        return []
    shown = len(graded.output.encode("utf-8", errors="replace"))
    what = (f"the first {size(shown)} of {size(graded.output_bytes)}" if graded.output_bytes > shown
            else size(graded.output_bytes))
    lines = [f"what your code printed ({what}):", *("  | " + line for line in graded.output.splitlines())]
    if graded.output_bytes > shown:
        lines.append(f"  | [... {size(graded.output_bytes - shown)} more, not shown]")
    return lines


def feedback_lines(graded: Graded, label: str | None = None) -> list[str]:
    """What ``minirai check`` prints, and what ``DIR/feedback/STUDENT.txt`` holds."""
    lines = [f"checking {label or graded.source} (seed {graded.seed})", *(f"note: {n}" for n in graded.notes)]
    for r in graded.results:
        first, *rest = r.message.splitlines() or [""]
        lines.append(f"{r.task.id:>2} {r.task.function:<22} {r.status:<8} {first}")
        lines.extend("      " + line for line in rest)
    return lines + [f"{graded.total}/{len(graded.results)} passed", *printed_lines(graded)]


# -- a class ----------------------------------------------------------------------------------------------------
def student_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def submissions(paths: Sequence[str | Path]) -> dict[str, Path]:
    """Student name -> submission; a ValueError names a path that is not a submission, or a name taken twice."""
    found: dict[str, Path] = {}
    for text in paths:
        path = Path(text)
        if path.is_file() and path.suffix == ".py":
            name = path.stem
        elif path.is_dir() and (path / "exercises.py").is_file():
            name = path.resolve().name
        elif path.is_dir():
            raise ValueError(f"{path}: a folder submission must hold exercises.py (to grade each submission in a "
                             f"folder, give them all: minirai grade {path}/* --out DIR)")
        else:
            raise ValueError(f"{path}: not a submission (a .py file, or a folder holding exercises.py)")
        if name in found:
            raise ValueError(f"two submissions are named {name!r}: {found[name]} and {path}")
        found[name] = path
    if not found:
        raise ValueError("no submission to grade")
    return found


def grade_class(paths: Sequence[str | Path], out: str | Path, tasks: Sequence[Task], seed: int | None = None,
                limits: Limits | None = None, jobs: int = 1, forbidden: Sequence[str] = (), gradescope: bool = False,
                progress: Any = None) -> list[Graded]:
    """Grade every submission (``jobs`` at a time), then write the gradebook into ``out``."""
    found = submissions(paths)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: not a folder")
    seed = fresh_seed() if seed is None else int(seed)
    limits = limits or Limits()
    protected = [*(str(p.resolve()) for p in found.values()), str(out.resolve())]
    lock = threading.Lock()

    def one(item: tuple[str, Path]) -> Graded:
        name, path = item
        graded = grade_submission(path, tasks, seed, limits, protected, forbidden, student=name)
        if progress is not None:
            with lock:
                print(f"{name}: {graded.total}/{len(tasks)} ({graded.status}) {graded.seconds:.1f} s",
                      file=progress, flush=True)
        return graded

    with numpy_references():
        pool = ThreadPoolExecutor(max_workers=max(1, int(jobs)))
        try:
            results = list(pool.map(one, sorted(found.items())))
        except BaseException:            # Ctrl-C, or a grader error: grade no further submission
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    write_gradebook(results, tasks, out, seed, limits, gradescope)       # every sandbox has ended
    return results


def write_gradebook(results: Sequence[Graded], tasks: Sequence[Task], out: Path, seed: int, limits: Limits,
                    gradescope: bool = False) -> None:
    from .. import __version__
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *(t.id for t in tasks), "total", "status"])
        for g in results:
            writer.writerow([g.student, *(r.score for r in g.results), g.total, g.status])
    book = {"seed": seed, "minirai": __version__, "timeout_s": limits.timeout, "memory_mb": limits.memory_mb,
            "tasks": [{"id": t.id, "function": t.function, "title": t.title, "chapter": t.chapter} for t in tasks],
            "students": {g.student: {
                "source": str(g.source), "total": g.total, "max": len(tasks), "status": g.status, "notes": g.notes,
                "seconds": round(g.seconds, 3), "output": g.output, "output_bytes": g.output_bytes,
                "tasks": {r.task.id: {"status": r.status.lower(), "score": r.score, "message": r.message,
                                      "seconds": round(r.seconds, 3), **({"events": r.events} if r.events else {})}
                          for r in g.results}} for g in results}}
    (out / "gradebook.json").write_text(json.dumps(book, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for g in results:
        (feedback / f"{g.student}.txt").write_text("\n".join(feedback_lines(g, g.source.name)) + "\n",
                                                   encoding="utf-8")
    if gradescope:
        for g in results:
            folder = out / "gradescope" / g.student
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.json").write_text(json.dumps(gradescope_results(g), indent=1, ensure_ascii=False)
                                                 + "\n", encoding="utf-8")


def gradescope_results(graded: Graded) -> dict:
    """One submission in the format of Gradescope's autograder ``results.json``
    (https://gradescope-autograders.readthedocs.io/en/latest/specs/): one test per task, 1 point each."""
    summary = [f"{graded.source.name}, seed {graded.seed}", *(f"note: {n}" for n in graded.notes),
               f"{graded.total}/{len(graded.results)} passed", *printed_lines(graded)]
    return {"score": graded.total, "execution_time": round(graded.seconds, 1), "output": "\n".join(summary),
            "visibility": "visible", "stdout_visibility": "hidden",
            "tests": [{"name": f"Task {r.task.id}: {r.task.title} ({r.task.function})", "number": r.task.id,
                       "score": r.score, "max_score": 1, "status": "passed" if r.score else "failed",
                       "output": f"{r.status}: {r.message}", "visibility": "visible"} for r in graded.results]}


def main(paths: Sequence[str], out: str, tasks: Sequence[Task], seed: int | None, limits: Limits, jobs: int,
         forbidden: Sequence[str], gradescope: bool) -> int:
    seed = fresh_seed() if seed is None else seed
    print(f"grading {len(paths)} submission(s) on {len(tasks)} task(s), seed {seed}, {limits.timeout:g} s per task, "
          f"{jobs} at a time", flush=True)
    try:
        results = grade_class(paths, out, tasks, seed, limits, jobs, forbidden, gradescope, progress=sys.stdout)
    except GraderError as error:
        print(f"minirai grade: error: {error}", file=sys.stderr)
        return 2
    mean = sum(g.total for g in results) / len(results)
    print(f"wrote {Path(out) / 'gradebook.csv'}, gradebook.json and feedback/ "
          f"({len(results)} students, mean {mean:.1f}/{len(tasks)})" + (", gradescope/" if gradescope else ""))
    return 0
