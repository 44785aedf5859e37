"""Under a debugger, training runs the textbook path, so a breakpoint in ``Linear.backward`` fires.

The must-show runs ``python -m pdb`` on a small script in a subprocess, with its commands on
standard input, and counts how often a breakpoint on the first statement of ``Linear.backward``
fires in ``fit`` and in ``RAI.fit``. The other tests check :func:`minirai.switches.debugger_attached`
(bdb debuggers, pydevd/debugpy, ``sys.monitoring``, coverage and unknown tracers) and the three
states of ``reference_path()``; each restores the trace function and the once-per-process notice.
"""
from __future__ import annotations

import ast
import bdb
import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import minirai
from minirai import switches
from minirai.layers import Linear

ROOT = Path(__file__).resolve().parents[1]
MARK = "MINIRAI-BREAKPOINT-HIT"
NOTICE = "minirai: a debugger (pdb) is attached"
N_LINEAR, STEPS = 3, 4


# -- helpers -----------------------------------------------------------------------------------------------
@contextmanager
def tracing(trace: Callable[..., Any] | None) -> Iterator[None]:
    """Make ``trace`` this thread's trace function inside the block; put back the previous one after."""
    saved = sys.gettrace()
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(saved)


class QuietBdb(bdb.Bdb):
    """A debugger built on bdb that never stops (its dispatch traces nothing further)."""

    def trace_dispatch(self, frame, event, arg):
        return None


def named(module: str) -> Callable[..., None]:
    """A trace function that looks as if it came from ``module`` (and traces nothing further)."""
    def trace(frame, event, arg):
        return None
    trace.__module__ = module
    return trace


@pytest.fixture
def fresh(monkeypatch):
    """No MINIRAI_REFERENCE, no pydevd, the notice not yet printed; all restored afterwards.

    Skips when the suite itself runs under a real debugger, which these tests cannot take away.
    """
    if switches.debugger_attached() is not None:
        pytest.skip(f"the tests run under a debugger ({switches.debugger_attached()})")
    monkeypatch.delenv("MINIRAI_REFERENCE", raising=False)
    monkeypatch.delitem(sys.modules, "pydevd", raising=False)
    monkeypatch.delitem(sys.modules, "debugpy", raising=False)
    monkeypatch.setattr(switches, "_told_about_debugger", False)


def backward_breakpoint_line() -> tuple[str, int]:
    """The file of ``Linear.backward`` and the line of its body's first statement (after the docstring)."""
    lines, start = inspect.getsourcelines(Linear.backward)
    function = ast.parse(textwrap.dedent("".join(lines))).body[0]
    body = function.body
    if (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        body = body[1:]
    return inspect.getsourcefile(Linear), start + body[0].lineno - 1


SCRIPT = """\
import minirai
from minirai import data, train
from minirai.rai import RAI

moons = data.moons()
X, y = moons.X_train.astype("float32"), moons.y_train

model = minirai.mlp([2, 3, 3, 1], "tanh", "sigmoid", seed=0)
train.fit(model, minirai.BCE(), minirai.SGD(model.parameters(), lr=0.1), X, y, iters={steps},
          progress=False)
print("=== RAI.fit", flush=True)
model = minirai.mlp([2, 3, 3, 1], "tanh", "sigmoid", seed=0)
trainer = RAI(model, X, y, minirai.BCE())
trainer.fit(minirai.SGD(trainer.parameters(), lr=0.1), {steps}, progress=False)
print("=== done", flush=True)
"""


def run_under_pdb(tmp_path: Path, reference: str | None) -> str:
    """Run SCRIPT under ``python -m pdb`` with a counting breakpoint in Linear.backward; stdout+stderr."""
    script = tmp_path / "train_under_pdb.py"
    script.write_text(SCRIPT.format(steps=STEPS))
    path, line = backward_breakpoint_line()
    commands = "\n".join([
        f"break {path}:{line}",
        "commands",
        "silent",
        f"p {MARK!r}",                   # prints the marker's repr
        "continue",                    # a resuming command also ends the breakpoint's command list
        "continue",
        "quit",
        "",
    ])
    env = {k: v for k, v in os.environ.items() if k not in ("MINIRAI_REFERENCE", "COVERAGE_PROCESS_START")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MPLBACKEND"] = "Agg"
    if reference is not None:
        env["MINIRAI_REFERENCE"] = reference
    done = subprocess.run([sys.executable, "-m", "pdb", str(script)], input=commands, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + "\n" + done.stderr
    assert "=== done" in output, output          # both fits ran to the end
    assert "Traceback" not in output, output
    return output


def hits(section: str) -> int:
    return section.count(repr(MARK))             # the first follows pdb's prompts on their line


# -- the must-show: python -m pdb, default settings -----------------------------------------------------------
def test_breakpoint_in_linear_backward_fires_under_pdb(tmp_path):
    output = run_under_pdb(tmp_path, reference=None)
    in_fit, _, rest = output.partition("=== RAI.fit")
    in_rai, _, _ = rest.partition("=== done")
    assert hits(in_fit) == N_LINEAR * STEPS, output
    assert hits(in_rai) == N_LINEAR * STEPS, output
    notices = [line[line.index(NOTICE):] for line in output.splitlines() if NOTICE in line]
    assert len(notices) == 1, output              # once per process, not once per fit
    assert "MINIRAI_REFERENCE=0" in notices[0] and "minirai.reference(False)" in notices[0]
    assert notices[0].endswith("the textbook path.")     # all of it on one line


def test_minirai_reference_0_forces_the_fast_path_under_pdb(tmp_path):
    output = run_under_pdb(tmp_path, reference="0")
    assert hits(output) == 0, output
    assert NOTICE not in output, output


# -- debugger_attached ----------------------------------------------------------------------------------------
def test_no_tracer_is_no_debugger(fresh):
    with tracing(None):
        assert switches.debugger_attached() is None


def test_a_bdb_debugger_is_detected(fresh):
    debugger = QuietBdb()
    with tracing(debugger.trace_dispatch):
        name = switches.debugger_attached()
    assert name == __name__.split(".")[0]          # the package the debugger's class comes from


def test_pdb_is_named_pdb(fresh):
    """pdb's own class, asked directly: installed as the trace function it would stop at once."""
    import pdb  # noqa: T100 - the debugger under test
    assert switches._bdb_debugger(pdb.Pdb(readrc=False).trace_dispatch) == "pdb"


@pytest.mark.parametrize("module", ["coverage.pytracer", "coverage.tracer", "coverage", "trace",
                                    "hypothesis.internal.scrutineer"])
def test_coverage_and_other_watchers_are_not_debuggers(fresh, module):
    with tracing(named(module)):
        assert switches.debugger_attached() is None
        assert not switches.reference_path()


def test_a_coverage_tracer_object_is_not_a_debugger(fresh):
    """coverage's CTracer is itself the trace function (an object, not a function)."""
    tracer_class = type("CTracer", (), {"__call__": lambda self, frame, event, arg: None,
                                        "__module__": "coverage.tracer"})
    with tracing(tracer_class()):
        assert switches.debugger_attached() is None


def test_an_unknown_tracer_counts_as_a_debugger(fresh):
    with tracing(named("thonny.plugins.cpython_backend.cp_tracers")):
        assert switches.debugger_attached() == "thonny"


def fake_pydevd(debugger: object | None, name: str = "get_global_debugger") -> types.ModuleType:
    module = types.ModuleType("pydevd")
    setattr(module, name, lambda: debugger)
    return module


def test_pydevd_is_detected_by_its_global_debugger(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydevd", fake_pydevd(None))
    assert switches.debugger_attached() is None                   # imported, not debugging
    monkeypatch.setitem(sys.modules, "pydevd", fake_pydevd(object()))
    assert switches.debugger_attached() == "pydevd"
    monkeypatch.setitem(sys.modules, "pydevd", fake_pydevd(object(), "GetGlobalDebugger"))   # older pydevd
    assert switches.debugger_attached() == "pydevd"
    monkeypatch.setitem(sys.modules, "debugpy", types.ModuleType("debugpy"))
    assert switches.debugger_attached() == "debugpy"


DEBUGPY_CHECK = """\
import os, sys
sys.path.insert(0, sys.argv[1])
from minirai import switches
import debugpy
assert switches.debugger_attached() is None, "importing debugpy (as Jupyter kernels do) is not debugging"
debugpy.listen(("127.0.0.1", 0), in_process_debug_adapter=True)   # pydevd's debugger, no client yet
print("named", switches.debugger_attached(), flush=True)
os._exit(0)                                                         # pydevd's threads: leave at once
"""


@pytest.mark.skipif(importlib.util.find_spec("debugpy") is None, reason="debugpy is not installed")
def test_a_real_debugpy_is_detected():
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    done = subprocess.run([sys.executable, "-c", DEBUGPY_CHECK, str(ROOT)], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert "named debugpy" in done.stdout, done.stdout + done.stderr


def test_a_broken_pydevd_is_not_a_debugger(fresh, monkeypatch):
    module = types.ModuleType("pydevd")
    module.get_global_debugger = lambda: 1 / 0
    monkeypatch.setitem(sys.modules, "pydevd", module)
    assert switches.debugger_attached() is None


def test_a_sys_monitoring_debugger_is_detected(fresh, monkeypatch):
    """A stand-in for ``sys.monitoring`` on any Python; the real one is tested below on 3.12+."""
    tools = {2: "coverage.py"}                      # COVERAGE_ID: not a debugger
    fake = types.SimpleNamespace(DEBUGGER_ID=0, COVERAGE_ID=1, get_tool=tools.get)
    monkeypatch.setattr(sys, "monitoring", fake, raising=False)
    assert switches.debugger_attached() is None
    tools[0] = "pydevd"
    assert switches.debugger_attached() == "pydevd"


MONITORING_CHECK = """\
import importlib.util, sys
spec = importlib.util.spec_from_file_location("switches", sys.argv[1])
switches = importlib.util.module_from_spec(spec)
spec.loader.exec_module(switches)
assert "numpy" not in sys.modules, "switches.py must import nothing heavy"
m = sys.monitoring
assert switches.debugger_attached() is None, switches.debugger_attached()
m.use_tool_id(m.COVERAGE_ID, "coverage.py")
assert switches.debugger_attached() is None, "a coverage tool is no debugger"
m.use_tool_id(m.DEBUGGER_ID, "my-debugger")
assert switches.debugger_attached() == "my-debugger", switches.debugger_attached()
assert switches.reference_path()
m.free_tool_id(m.DEBUGGER_ID)
assert switches.debugger_attached() is None
print("ok")
"""


def newer_pythons() -> list[str]:
    """Python 3.12+ interpreters on this machine (to try the real sys.monitoring), this one included."""
    found = [sys.executable] if sys.version_info >= (3, 12) else []
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(versions.glob("3.1[2-9]*/bin/python3")) if versions.is_dir() else []:
        found.append(str(candidate))
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("python", newer_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="sys.monitoring needs Python 3.12+, and none is installed"))])
def test_a_tool_at_the_debugger_id_is_a_debugger_on_python_3_12(python):
    """switches.py alone (standard library only) on a real Python 3.12+ with ``sys.monitoring``."""
    env = {k: v for k, v in os.environ.items() if k not in ("MINIRAI_REFERENCE", "PYTHONPATH")}
    done = subprocess.run([python, "-c", MONITORING_CHECK, str(ROOT / "minirai" / "switches.py")],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


# -- reference_path: three states -----------------------------------------------------------------------------
def pretend_debugger(monkeypatch, name: str | None = "pdb") -> None:
    monkeypatch.setattr(switches, "debugger_attached", lambda: name)


def test_unset_and_no_debugger_is_the_fast_path(fresh, monkeypatch, capsys):
    with tracing(None):
        assert not switches.reference_path()
    for empty in ("", "  "):                              # empty is unset: the debugger decides
        monkeypatch.setenv("MINIRAI_REFERENCE", empty)
        pretend_debugger(monkeypatch, None)
        assert not switches.reference_path()
        pretend_debugger(monkeypatch, "pdb")
        assert switches.reference_path()
    err = capsys.readouterr().err
    assert err.count(NOTICE) == 1, err


def test_unset_under_a_debugger_is_the_textbook_path_said_once(fresh, monkeypatch, capsys):
    pretend_debugger(monkeypatch)
    assert switches.reference_path()
    assert switches.reference_path()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(NOTICE), err
    assert "MINIRAI_REFERENCE=1 or minirai.reference()" in err


def test_a_real_bdb_debugger_chooses_the_textbook_path(fresh, capsys):
    debugger = QuietBdb()
    with tracing(debugger.trace_dispatch):
        textbook = switches.reference_path()
    assert textbook
    assert "is attached, so training runs the textbook path" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "false", "off", " no "])
def test_env_0_under_a_debugger_is_the_fast_path(fresh, monkeypatch, capsys, value):
    pretend_debugger(monkeypatch)
    monkeypatch.setenv("MINIRAI_REFERENCE", value)
    assert not switches.reference_path()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("debugger", [None, "pdb"])
def test_env_1_is_the_textbook_path_without_the_notice(fresh, monkeypatch, capsys, debugger):
    pretend_debugger(monkeypatch, debugger)
    monkeypatch.setenv("MINIRAI_REFERENCE", "1")
    assert switches.reference_path()
    assert capsys.readouterr().err == ""          # chosen by the variable, not by the debugger


def test_the_context_decides_before_the_environment_and_the_debugger(fresh, monkeypatch, capsys):
    pretend_debugger(monkeypatch)
    with minirai.reference(False):
        assert not switches.reference_path()
        monkeypatch.setenv("MINIRAI_REFERENCE", "1")
        assert not switches.reference_path()
        with minirai.reference():
            assert switches.reference_path()
        assert not switches.reference_path()
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("MINIRAI_REFERENCE", "0")
    with minirai.reference():
        assert switches.reference_path()
    assert not switches.reference_path()


def test_a_bad_value_is_still_an_error(fresh, monkeypatch):
    monkeypatch.setenv("MINIRAI_REFERENCE", "maybe")
    with pytest.raises(ValueError, match="MINIRAI_REFERENCE must be 0 or 1"):
        switches.reference_path()


def test_strict_ieee_is_unchanged(fresh, monkeypatch):
    monkeypatch.delenv("MINIRAI_STRICT_IEEE", raising=False)
    assert switches.flush_denormals()
    monkeypatch.setenv("MINIRAI_STRICT_IEEE", "")
    assert switches.flush_denormals()
    monkeypatch.setenv("MINIRAI_STRICT_IEEE", "1")
    assert not switches.flush_denormals()
    with minirai.strict_ieee(False):
        assert switches.flush_denormals()
