"""``minirai check``: a student grades their own exercise file.

    minirai check                        # exercises.py in the current folder, every task
    minirai check 2 softmax_cross_entropy  # some tasks (by id, or by function name)
    minirai check --file my_answers.py   # another file
    minirai check --list                 # one line per task: id, function, what it is
    minirai check --solutions PATH       # a teacher: the reference solutions (teachers/solutions.py in a clone)
    minirai check --seed N               # the inputs of an earlier run again (each run draws new ones)

It grades the file the student means: ``exercises.py`` in the current folder, or the one given, never
the copy in minirai's repository; its first line says which. The file runs in the same sandbox as
``minirai grade`` (:mod:`minirai.course.sandbox`), with the same time limit per task, so an endless
loop is reported instead of hanging. Each task prints one line: PASS, NOT DONE (the function is missing
or still raises ``NotImplementedError``) or FAIL, which names the array, the index, the expected and
the got value and, where it recognises it, the mistake. What the student's code printed comes after
the grader's lines, truncated and marked. Exit status: 0 every checked task passes, 1 some fail
(a file that does not import included), 3 none fails but some are not done, 2 a usage error.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from .grade import FAIL, NOT_DONE, feedback_lines, fresh_seed, grade_submission
from .sandbox import Limits
from .tasks import all_tasks, find_task

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_DONE = 0, 1, 2, 3


def chosen_file(file: str | None = None, solutions: str | None = None, here: str | Path = ".") -> Path:
    """The file to check: ``file``, else ``solutions``, else ``exercises.py`` in ``here``; a ValueError
    says where to run the command when there is none."""
    if file and solutions:
        raise ValueError("give --file or --solutions, not both")
    given = file or solutions
    if given:
        path = Path(given)
        if not path.is_file():
            raise ValueError(f"no file at {str(path)!r}" + (" (the reference solutions are teachers/solutions.py in "
                                                             "a clone of the repository)" if solutions else ""))
        return path
    path = Path(here) / "exercises.py"
    if not path.is_file():
        raise ValueError(f"no exercises.py in this folder ({Path(here).resolve()}): run minirai check in the folder "
                         "that holds your exercises.py, or give it: minirai check --file PATH")
    return path


def run(tasks: Sequence[str] = (), file: str | None = None, solutions: str | None = None, seed: int | None = None,
        timeout: float | None = None, tasks_file: str | None = None, out: Any = None) -> int:
    """Check ``tasks`` (all if empty) of the chosen file; print one line per task; return the exit status.
    A ValueError for a usage error (no file, an unknown task, a bad tasks file)."""
    out = out or sys.stdout
    path = chosen_file(file, solutions)
    known = all_tasks(tasks_file)
    chosen = [find_task(t, known) for t in tasks] or known
    seed = fresh_seed() if seed is None else seed
    limits = Limits(timeout=timeout) if timeout else Limits()
    graded = grade_submission(path, chosen, seed, limits, neighbours=True)      # the student's helpers come too
    label = str(path.resolve()) + (" (the reference solutions)" if solutions else "")
    for line in feedback_lines(graded, label):
        print(line, file=out)
    statuses = [r.status for r in graded.results]
    if FAIL in statuses:
        return EXIT_FAIL
    return EXIT_NOT_DONE if NOT_DONE in statuses else EXIT_PASS


def list_tasks(tasks_file: str | None = None, out: Any = None) -> None:
    for task in all_tasks(tasks_file):
        print(f"{task.id} {task.function}  ({task.title}; chapter {task.chapter})", file=out or sys.stdout)
