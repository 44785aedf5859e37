"""The two process-wide switches a learner or researcher may want, each in one place.

``minirai.reference()`` / ``MINIRAI_REFERENCE=1``
    Run everything on the *textbook path*: ``fit`` and ``RAI.fit`` call each layer's own
    ``forward``/``backward``, ``Sequential``'s two loops, ``RAI.forward``/``backward`` block by
    block and each optimizer's ``update`` array by array, so a breakpoint in
    ``Linear.backward`` fires for every Linear layer at every step. Otherwise the training
    loops take the *fast path* (:mod:`minirai.fast`), which gives the same numbers, except
    under a debugger (below). ``minirai.reference(False)`` / ``MINIRAI_REFERENCE=0`` force the
    fast path, debugger or not.

    With neither set (the variable unset or empty), a training loop asks
    :func:`debugger_attached` when it starts: under ``python -m pdb``, ``breakpoint()``, an IDE
    (debugpy, PyCharm's pydevd) or any tool registered as the debugger with ``sys.monitoring``
    it runs the textbook path, so breakpoints in layers fire, and says so once per process with
    one line on stderr. A coverage tool is not a debugger.

``minirai.strict_ieee()`` / ``MINIRAI_STRICT_IEEE=1``
    Keep the CPU's strict IEEE arithmetic inside training loops too. By default ``fit`` and
    ``RAI.fit`` switch on the CPU's flush-to-zero of *subnormal* numbers (below 1.2e-38 in
    float32) while they compute a step, on both paths, as JAX and TensorFlow do on the CPU
    (:mod:`minirai.fast.denormals`). Outside a step (records, callbacks, anything you run
    yourself) arithmetic is always strict IEEE.

Both context managers nest and restore the previous setting on exit; the environment
variables (and whether a debugger is attached) are read when a training loop starts.

This module imports nothing but the standard library.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, ContextManager, Iterator

#: a value set by the context managers below; None: ask the environment variable
_overrides: dict[str, bool | None] = {"MINIRAI_REFERENCE": None, "MINIRAI_STRICT_IEEE": None}

#: top-level packages whose trace functions watch a program without stopping in it: not debuggers
NOT_DEBUGGERS = frozenset({"coverage", "trace", "hypothesis", "line_profiler", "kernprof"})

DEBUGGER_NOTICE = ("minirai: a debugger ({name}) is attached, so training runs the textbook path, "
                   "where breakpoints in layers fire; MINIRAI_REFERENCE=0 or minirai.reference(False) "
                   "forces the fast path, MINIRAI_REFERENCE=1 or minirai.reference() the textbook path.")

#: whether the line above was printed in this process
_told_about_debugger = False


def _env_setting(name: str) -> bool | None:
    """The variable as a flag: True, False, or None when it is unset or empty."""
    text = os.environ.get(name, "").strip().lower()
    if text == "":
        return None
    if text in ("0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 0 or 1, got {text!r}")


def _env_flag(name: str) -> bool:
    return bool(_env_setting(name))


def _flag(name: str) -> bool:
    override = _overrides[name]
    return _env_flag(name) if override is None else override


# -- is a debugger attached? ----------------------------------------------------------------------
def _top_module(obj: Any) -> str | None:
    """The top-level package a function, bound method or tracer object comes from."""
    if hasattr(obj, "__func__") and hasattr(obj, "__self__"):   # a bound method: its object's class
        obj = type(obj.__self__)
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):                             # e.g. a tracer object without one
        module = getattr(type(obj), "__module__", None)
    return module.split(".")[0] if isinstance(module, str) and module else None


def _bdb_debugger(trace: Any) -> str | None:
    """The name of the bdb-based debugger (pdb, ipdb, pudb, ...) whose method ``trace`` is."""
    bdb = sys.modules.get("bdb")   # not imported: no Bdb instance can exist
    owner = getattr(trace, "__self__", None)
    if bdb is not None and isinstance(owner, bdb.Bdb):
        return _top_module(type(owner)) or "bdb"
    return None


def _pydevd_debugger() -> str | None:
    """'debugpy' or 'pydevd' while pydevd (VS Code's debugpy, PyCharm) has a debugger set up.

    pydevd may trace without ``sys.settrace`` (frame evaluation on 3.6-3.10, ``sys.monitoring`` on
    3.12+); its global debugger (``GlobalDebuggerHolder.global_dbg``) is set while it runs and set
    back to None when it stops. Importing debugpy alone (Jupyter kernels do) sets nothing.
    """
    pydevd = sys.modules.get("pydevd")
    get = getattr(pydevd, "get_global_debugger", None) or getattr(pydevd, "GetGlobalDebugger", None)
    if get is None:
        return None
    try:
        debugger = get()
    except Exception:  # noqa: BLE001 - a half-imported or foreign module called pydevd: not a debugger we know
        return None
    if debugger is None:
        return None
    return "debugpy" if "debugpy" in sys.modules else "pydevd"


def _monitoring_debugger() -> str | None:
    """The name of the tool registered at ``sys.monitoring.DEBUGGER_ID`` (Python 3.12+)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    name = monitoring.get_tool(monitoring.DEBUGGER_ID)
    return None if name is None else str(name) or "a sys.monitoring debugger"


def debugger_attached() -> str | None:
    """The name of the debugger attached to this thread or process, or None.

    * ``pdb`` and every debugger built on :mod:`bdb` (``breakpoint()``, ipdb, pudb, Spyder):
      this thread's trace function (``sys.gettrace()``) is a method of a ``bdb.Bdb``; the name is
      the debugger's package (``"pdb"``, ``"IPython"``, ``"pudb"``);
    * pydevd (VS Code's debugpy, PyCharm): its global debugger is set (``"debugpy"``/``"pydevd"``);
    * a tool registered at ``sys.monitoring.DEBUGGER_ID`` (Python 3.12+: pydevd as ``"pydevd"``,
      pdb's ``monitoring`` backend of 3.14 as ``"bdbtracer"``): its registered name;
    * any other trace function counts as a debugger too, named by its package (Thonny, Wing and
      other IDEs trace with their own functions), unless it comes from a tool that watches a
      program without stopping in it (:data:`NOT_DEBUGGERS`: coverage.py, whose ``CTracer`` or
      ``PyTracer`` is the trace function under ``coverage run`` and pytest-cov; the standard
      ``trace`` module; Hypothesis; line_profiler, whose ``kernprof`` traces on Python < 3.12, so that
      a profile measures the fast path). The two mistakes are not equal: an unknown tracer taken
      for a debugger costs speed only (the textbook path gives the same numbers, and the
      notice says how to force the fast path), while a debugger taken for none makes
      breakpoints in layers silently never fire. Coverage on ``sys.monitoring`` uses
      ``COVERAGE_ID``, which is not asked.

    Only this thread's trace function is asked, not ``threading.gettrace()`` (the one new threads
    get): a breakpoint fires only in a thread that is traced, and the thread that asks is the one
    that trains. Nothing is imported, so the check is cheap.
    """
    trace = sys.gettrace()
    if trace is not None:
        name = _bdb_debugger(trace)
        if name is not None:
            return name
    name = _pydevd_debugger() or _monitoring_debugger()
    if name is not None:
        return name
    if trace is not None:
        package = _top_module(trace)
        if package not in NOT_DEBUGGERS:
            return package or "an unknown tracer"
    return None


def _tell_about_debugger(name: str) -> None:
    """Print :data:`DEBUGGER_NOTICE` on stderr, the first time only in this process."""
    global _told_about_debugger
    if _told_about_debugger:
        return
    _told_about_debugger = True
    print(DEBUGGER_NOTICE.format(name=name), file=sys.stderr, flush=True)


# -- the switches -------------------------------------------------------------------------------------
def reference_path() -> bool:
    """True when training loops must run the textbook path.

    ``reference(on)`` decides first, then ``MINIRAI_REFERENCE`` (1: textbook, 0: fast); with
    neither (the variable unset or empty) the textbook path runs exactly while
    :func:`debugger_attached` names a debugger, which is said once per process on stderr.
    """
    override = _overrides["MINIRAI_REFERENCE"]
    if override is not None:
        return override
    setting = _env_setting("MINIRAI_REFERENCE")
    if setting is not None:
        return setting
    name = debugger_attached()
    if name is None:
        return False
    _tell_about_debugger(name)
    return True


def flush_denormals() -> bool:
    """True unless ``strict_ieee()`` or ``MINIRAI_STRICT_IEEE=1``: training steps flush subnormals."""
    return not _flag("MINIRAI_STRICT_IEEE")


@contextmanager
def _override(name: str, on: bool) -> Iterator[None]:
    saved, _overrides[name] = _overrides[name], bool(on)
    try:
        yield
    finally:
        _overrides[name] = saved


def reference(on: bool = True) -> ContextManager[None]:
    """Inside the block, ``fit`` and ``RAI.fit`` run the textbook path (``on=False``: the fast path,
    even under a debugger)."""
    return _override("MINIRAI_REFERENCE", on)


def strict_ieee(on: bool = True) -> ContextManager[None]:
    """Inside the block, training steps keep strict IEEE arithmetic (no flush-to-zero of subnormals)."""
    return _override("MINIRAI_STRICT_IEEE", on)
