"""The tables in the docs that list what the code holds, written from the code.

A docs page holds a generated table between two markers::

    <!-- generated: layers (python docs/tables.py rewrites it) -->
    | ... |
    <!-- end generated -->

``python docs/tables.py`` rewrites every such table in ``docs/``, ``README.md`` and ``tutorials/README.md``;
``tests/test_docs_tables.py`` fails when a committed table differs from what the code gives, so a new layer,
optimizer or graded task shows up in the docs without anyone editing a list.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minirai import layers, losses, optim  # noqa: E402
from minirai.course.handout import task_table  # noqa: E402
from minirai.course.tasks import TASKS  # noqa: E402
from minirai.fast.chain import FAST_LAYERS  # noqa: E402
from minirai.fast.optim import FAST_UPDATES  # noqa: E402
from minirai.protocol import name_of, subclasses  # noqa: E402

START = re.compile(r"<!-- generated: (\w+) \(python docs/tables.py rewrites it\) -->\n")
END = "<!-- end generated -->"
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md", ROOT / "tutorials" / "README.md"]


def summary(cls: type) -> str:
    """The first line of a class's docstring, as one table cell."""
    return (inspect.getdoc(cls) or "").splitlines()[0].replace("|", "\\|")


def settings(cls: type) -> str:
    """The ``__init__`` arguments with their defaults (what ``config()`` / ``hyperparameters()`` return)."""
    shown = []
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "pairs", "rng", "dtype") or parameter.kind in (parameter.VAR_POSITIONAL,
                                                                            parameter.VAR_KEYWORD):
            continue
        default = "" if parameter.default is parameter.empty else f"={parameter.default!r}"
        shown.append(f"`{name}{default}`")
    return ", ".join(shown) or "–"


def built_in(base: type, module: str) -> list[type]:
    abstract = {layers.Layer, layers.Activation, losses.Loss, optim.Optimizer}
    return [cls for cls in subclasses(base) if cls.__module__ == module and cls not in abstract]


def layers_table() -> str:
    rows = ["| layer | name | what it computes | settings | fast twin |", "|---|---|---|---|---|"]
    for cls in built_in(layers.Layer, "minirai.layers"):
        name = f"`{name_of(cls)}`" if issubclass(cls, layers.Activation) else "–"
        twin = "yes" if cls in FAST_LAYERS else "no"
        rows.append(f"| `{cls.__name__}` | {name} | {summary(cls)} | {settings(cls)} | {twin} |")
    return "\n".join(rows)


def losses_table() -> str:
    rows = ["| loss | what it computes |", "|---|---|"]
    for cls in built_in(losses.Loss, "minirai.losses"):
        rows.append(f"| `{cls.__name__}` | {summary(cls)} |")
    return "\n".join(rows)


def optimizers_table() -> str:
    rows = ["| optimizer | name | rule | settings | fused kernel |", "|---|---|---|---|---|"]
    for cls in built_in(optim.Optimizer, "minirai.optim"):
        kernel = "yes" if FAST_UPDATES.get(cls) is not None else "no (chunked NumPy)"
        rows.append(f"| `{cls.__name__}` | `{name_of(cls)}` | {summary(cls)} | {settings(cls)} | "
                    f"{kernel} |")
    return "\n".join(rows)


def tasks_table() -> str:
    """The graded tasks with the stubs' signatures (the same table ``minirai handout`` writes in its README)."""
    return task_table(TASKS, ROOT / "tutorials" / "exercises.py")


TABLES: dict[str, Callable[[], str]] = {"layers": layers_table, "losses": losses_table,
                                        "optimizers": optimizers_table, "tasks": tasks_table}


def fill(text: str) -> str:
    """``text`` with every generated table written anew (a ValueError names an unknown or unclosed one)."""
    out, position = [], 0
    for match in START.finditer(text):
        name = match.group(1)
        if name not in TABLES:
            raise ValueError(f"unknown generated table {name!r}; the tables are {sorted(TABLES)}")
        end = text.find(END, match.end())
        if end < 0:
            raise ValueError(f"the generated table {name!r} has no {END!r}")
        out += [text[position:match.end()], TABLES[name](), "\n"]
        position = end
    return "".join(out) + text[position:]


def main() -> int:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = fill(text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            print(f"rewrote the tables in {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
