"""The package's parts, read from its source with ``ast`` (no import runs):

* the textbook modules a learner opens import nothing from ``minirai/fast/``: the training loop
  (``minirai/train.py``) is the one place that chooses a path;
* no import circle inside ``minirai/`` (imports inside functions count; those under
  ``if TYPE_CHECKING:`` are for annotations only and do not);
* the engine stays at the top level, the fast path in ``fast/``, the research tools in ``research/``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "minirai"
TEXTBOOK = ("layers", "losses", "network", "optim", "rai", "minibatch")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def runtime_nodes(tree: ast.AST):
    """Every node except those inside ``if TYPE_CHECKING:`` blocks."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


def imports_of(name: str) -> set[str]:
    """The minirai modules ``name`` imports, resolved (``from . import backend`` is ``minirai.backend``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names} & set(MODULES)
            found.update(submodules)
            if len(submodules) < len(node.names):        # names defined in ``source`` itself
                found.add(source)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_reader_finds_the_imports_it_should():
    """A check of the checker: known edges are seen, relative ones resolved, TYPE_CHECKING ones skipped."""
    assert "minirai.fast.stacking" in GRAPH["minirai.train"]           # the training loop chooses
    assert "minirai.backend" in GRAPH["minirai.fast.chain"]             # from .. import backend
    assert "minirai.layers" in GRAPH["minirai.network"]
    assert "minirai.rai" not in GRAPH["minirai.inspect"]                # only under TYPE_CHECKING


@pytest.mark.parametrize("name", TEXTBOOK)
def test_textbook_modules_import_nothing_from_the_fast_path(name):
    fast = sorted(m for m in GRAPH[f"minirai.{name}"] if m.startswith("minirai.fast"))
    assert not fast, f"minirai/{name}.py imports {fast}: the training loop (minirai/train.py) chooses the path"


def test_no_import_circle_inside_the_package():
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for other in sorted(GRAPH[name]):
            if state.get(other) == 1:
                circle = path[path.index(other):] + [other]
                pytest.fail("import circle: " + " -> ".join(circle))
            if other not in state:
                visit(other)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_package_shows_its_parts():
    top = {name.split(".")[1] for name in MODULES if name.count(".") == 1}
    assert set(TEXTBOOK) <= top                                        # the engine at the top level
    assert {"fast", "research", "packing", "train", "protocol"} <= top
    for name in ("experiments", "methods", "study", "report"):
        assert f"minirai.research.{name}" in MODULES and f"minirai.{name}" not in MODULES
    assert not any(m.startswith("minirai.fast") for m in GRAPH["minirai.packing"])   # a layout both paths share
