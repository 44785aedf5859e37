"""docs/debugging.md names breakpoints as ``file:line``: check that each still points where the page says.

* every row of the page's ``file:line`` tables ("Where to stop", the fast path's): the source line starts with the
  quoted code (the rest of the line, if any, is a comment);
* every location pdb prints in the page's sessions (``> .../minirai/x.py(N)f()`` or a frame of
  ``w``, then ``-> code``): line N is that code;
* every ``minirai/...py:N`` the page names: line N is where a statement starts, so pdb can stop there.

These are static checks, without a debugger: when one fails, the code moved, and the page
(and its pdb sessions) must be brought up to date. One test runs pdb: the page's count of hits on
the fast path's lines in its ``fit_through.py``.
"""
from __future__ import annotations

import dis
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "debugging.md"
TEXT = DOC.read_text(encoding="utf-8")


def source_line(path: str, number: int) -> str:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    assert 1 <= number <= len(lines), f"{path} has {len(lines)} lines, the page names line {number}"
    return lines[number - 1].strip()


def statement_lines(path: str) -> set[int]:
    """Lines where a statement of ``path`` starts (where pdb's line events happen)."""
    found: set[int] = set()
    pending = [compile((ROOT / path).read_text(encoding="utf-8"), path, "exec")]
    while pending:
        code = pending.pop()
        found.update(line for _, line in dis.findlinestarts(code) if line is not None)
        pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


def table_rows() -> list[tuple[str, int, str]]:
    rows = re.findall(r"^\|[^|\n]*\| `(minirai/[\w/]+\.py):(\d+)` \| `([^`]+)` \|$", TEXT, re.M)
    return [(path, int(number), code) for path, number, code in rows]


def pdb_locations() -> list[tuple[str, int, str]]:
    found = re.findall(r"^(?:> |  )\.\.\./(minirai/[\w/]+\.py)\((\d+)\)\w+\(\)\n-> (.*)$", TEXT, re.M)
    return [(path, int(number), code) for path, number, code in found]


def named_locations() -> list[tuple[str, int]]:
    return sorted({(path, int(number)) for path, number in re.findall(r"(minirai/[\w/]+\.py):(\d+)", TEXT)})


def test_the_page_names_what_these_tests_check():
    assert len(table_rows()) >= 10
    assert len(pdb_locations()) >= 5
    assert len(named_locations()) >= 15


@pytest.mark.parametrize("path, number, code", table_rows())
def test_where_to_stop_table_quotes_each_line(path, number, code):
    line = source_line(path, number)
    assert line.startswith(code), f"{path}:{number} is {line!r}, the page quotes {code!r}"
    rest = line[len(code):].strip()
    assert not rest or rest.startswith("#"), f"{path}:{number} is {line!r}, the page quotes {code!r}"


@pytest.mark.parametrize("path, number, code", pdb_locations())
def test_pdb_sessions_show_the_current_lines(path, number, code):
    assert source_line(path, number) == code.strip()


@pytest.mark.parametrize("path, number", named_locations())
def test_each_named_line_is_a_statement_pdb_can_stop_at(path, number):
    assert number in statement_lines(path), f"{path}:{number} ({source_line(path, number)!r}) starts no statement"


def test_fast_path_breakpoint_counts_in_fit_through():
    """The page's count for the fast path: under pdb with MINIRAI_REFERENCE=0, the two fast-path lines it
    names are hit as often as it says in its fit_through.py (the script as the page prints it)."""
    import os
    import subprocess
    import sys
    import tempfile
    claim = re.search(r"In `fit_through\.py` \(with `MINIRAI_REFERENCE=0`\) lines (\d+) and (\d+) are hit (\d+) "
                      r"times each", TEXT)
    assert claim, "the page no longer states the fast path's counts"
    lines, expected = [int(claim[1]), int(claim[2])], int(claim[3])
    start = TEXT.index('"""Three steps of fit and three of RAI.fit')
    script = TEXT[start:TEXT.index("```", start)]
    commands = []
    for k, line in enumerate(lines, 1):
        commands += [f"b minirai/fast/chain.py:{line}", f"commands {k}", "silent", "c", "end"]
    commands += ["c", "b", "q", ""]
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_START"}
    env.update(MINIRAI_REFERENCE="0", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fit_through.py"
        path.write_text(script, encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "pdb", str(path)], input="\n".join(commands), cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert "done" in output and "Traceback" not in output, output
    assert re.findall(r"breakpoint already hit (\d+) time", output) == [str(expected)] * 2, output
