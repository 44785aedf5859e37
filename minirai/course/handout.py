"""``minirai handout DIR``: what a student gets, and nothing more.

    minirai handout handout/                 # from the clone minirai is installed from
    minirai handout handout/ --from PATH     # from another tutorials/ folder

It writes the exercise stubs (``exercises.py``), each chapter as a notebook (``chapters/*.ipynb``) and
as the script it is (``chapters/*.py``), and a short ``README.md`` on how to check. It holds no
solutions: the reference solutions live in the repository's ``teachers/`` folder, which is neither in
``tutorials/`` nor in the wheel. The chapters and stubs ship with the repository, not the wheel, so a
teacher runs this from a clone (``pip install -e .``).
"""
from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Sequence

from .judge import Task
from .sandbox import CHECKOUT, Limits

HEADER = re.compile(r"\A# ---\n(?:#.*\n)*?# ---\n")
MARKER = re.compile(r"^# %%(.*)$")
ESCAPED_MAGIC = re.compile(r"^# (%%?\w)")


def tutorials_folder(given: str | Path | None = None) -> Path:
    """``given``, else ``tutorials/`` of the clone this package is installed from; a ValueError when it
    does not hold the stubs (``exercises.py``) and the chapters."""
    folder = Path(given) if given else CHECKOUT / "tutorials"
    if not (folder / "exercises.py").is_file() or not sorted(folder.glob("[0-9][0-9]_*.py")):
        where = (f"{folder} holds no exercises.py and chapters" if given else
                 "the chapters and exercise stubs ship with the repository, not with an installed wheel")
        raise ValueError(f"{where}: run minirai handout from a clone of minirai (pip install -e .), or give "
                         "--from PATH/TO/tutorials")
    return folder


def notebook(text: str) -> dict:
    """A chapter in Jupytext's percent format (``# %%`` code cells, ``# %% [markdown]`` text cells) as an
    nbformat-4 notebook, without outputs: the cells Jupytext would make, without needing Jupytext."""
    text = HEADER.sub("", text, count=1)
    cells: list[tuple[str, list[str]]] = []
    kind, lines = "code", []
    for line in text.splitlines():
        match = MARKER.match(line)
        if match:
            cells.append((kind, lines))
            kind, lines = ("markdown" if "[markdown]" in match.group(1) else "code"), []
        else:
            lines.append(line)
    cells.append((kind, lines))
    out = []
    for kind, lines in cells:
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            continue
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
                     for line in lines]
        else:
            lines = [ESCAPED_MAGIC.sub(r"\1", line) for line in lines]
        source = [line + "\n" for line in lines[:-1]] + [lines[-1]]
        cell = {"cell_type": kind, "id": f"cell-{len(out)}", "metadata": {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return {"cells": out, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"}, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def stub_signatures(stubs: str | Path) -> dict[str, str]:
    """``name(arguments)`` of each function in the exercise stubs (read with ast: nothing runs)."""
    tree = ast.parse(Path(stubs).read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.args
            defaults = [None] * (len(arguments) - len(node.args.defaults)) + list(node.args.defaults)
            shown = [a.arg if d is None else f"{a.arg}={ast.unparse(d)}" for a, d in zip(arguments, defaults)]
            found[node.name] = f"{node.name}({', '.join(shown)})"
    return found


def task_table(tasks: Sequence[Task], stubs: str | Path) -> str:
    """The tasks as a Markdown table: id, the stub's signature, chapter, what (docs/teaching.md's table)."""
    signatures = stub_signatures(stubs)
    rows = ["| task | function | chapter | what |", "|---|---|---|---|"]
    for task in tasks:
        rows.append(f"| {task.id} | `{signatures.get(task.function, task.function)}` | {task.chapter} | {task.title} |")
    return "\n".join(rows)


def readme(tasks: Sequence[Task], stubs: Path, chapters: Sequence[str]) -> str:
    limits = Limits()
    return f"""# minirai exercises

- `exercises.py`: {len(tasks)} graded tasks. Replace each `raise NotImplementedError` with your code; each
  docstring gives the shapes and what to compute, the chapters give the math.
- `chapters/`: the course's {len(chapters)} chapters, each as a notebook (`.ipynb`) and as a Python script
  (`.py`, the same cells).

{task_table(tasks, stubs)}

## Check your work

With minirai installed (your teacher says how, e.g. `pip install minirai-0.1.0-py3-none-any.whl`),
in this folder:

```bash
minirai check                 # every task of ./exercises.py
minirai check 2               # one task, by number or function name
minirai check --list          # the tasks, and the chapter each goes with
minirai check --file other.py # another file
```

Each task prints one line: `PASS`; `NOT DONE` (the function is missing, or still raises
`NotImplementedError`); or `FAIL`, with the first wrong value and, when the grader recognises it,
the mistake. The inputs are new on each run (shapes, values, settings): an answer must work for any.
Your functions run in a separate Python process, with {limits.timeout:g} seconds per task and
{limits.memory_mb} MB of memory; files they write go to a temporary folder. They may not import minirai
itself: compute with NumPy (a task that imports minirai gets 0).

## Hand in

`exercises.py`, and any helper module of yours it imports (then hand in the folder), as your
teacher says.
"""


def write_handout(out: str | Path, source: str | Path | None = None, tasks: Sequence[Task] | None = None) -> list[Path]:
    """Write the handout into ``out`` (a new or empty folder); the files written."""
    from .tasks import TASKS
    folder = tutorials_folder(source)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder: give a new one")
    tasks = list(TASKS if tasks is None else tasks)
    chapters = sorted(folder.glob("[0-9][0-9]_*.py"))
    (out / "chapters").mkdir(parents=True, exist_ok=True)
    written = [out / "exercises.py"]
    shutil.copyfile(folder / "exercises.py", written[0])
    for chapter in chapters:
        script, book = out / "chapters" / chapter.name, out / "chapters" / (chapter.stem + ".ipynb")
        shutil.copyfile(chapter, script)
        book.write_text(json.dumps(notebook(chapter.read_text(encoding="utf-8")), indent=1, ensure_ascii=False)
                        + "\n", encoding="utf-8")
        written += [script, book]
    written.append(out / "README.md")
    written[-1].write_text(readme(tasks, folder / "exercises.py", [c.name for c in chapters]), encoding="utf-8")
    return written
