"""The grader's side of a submission's sandbox: a temporary copy of the submission, and the fresh
interpreters (``minirai/course/runner.py``) its functions run in.

:class:`Sandbox` copies the submission, starts a runner with no standard input, a small environment,
its own session (so a timeout kills every process it has), and its student output on a pipe that the
grader drains and truncates. It loads the student's module (:meth:`Sandbox.load`, statement by
statement: a statement that hangs or ends the process is skipped on a restart) and calls its
functions (:meth:`Sandbox.call`), each call under the time the task has left. When a call times out,
exits, crashes or answers with a malformed frame, the interpreter is killed and :class:`Stopped` says
why; the next call starts a fresh one. The grader reads only frames (:mod:`minirai.course.runner`),
never a pickle, and decides nothing from what the student's process says about itself.
"""
from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import runner

RUNNER = Path(runner.__file__).resolve()
PACKAGE = RUNNER.parent.parent                  # minirai/
CHECKOUT = PACKAGE.parent                       # a clone's root (or site-packages, for a wheel)
TEACHERS = CHECKOUT / "teachers"
NATIVE = (".so", ".pyd", ".dll", ".dylib", ".pyc")
#: modules imported before the guard is installed: they load native code (ctypes) when first imported
PRELOAD = ("ctypes", "numpy.linalg", "numpy.random", "numpy.fft")


@dataclass(frozen=True)
class Limits:
    """What one submission may use.

    ``timeout``: wall-clock seconds per task (all its calls together), and per top-level statement
    of the submission; ``memory_mb``: its address space; ``output_bytes``: how much of what it prints
    is kept; ``file_mb``: the largest file it may write; ``folder_mb``: the largest folder submission
    copied; ``startup``: seconds for a fresh interpreter to import NumPy."""
    timeout: float = 5.0
    memory_mb: int = 1024
    output_bytes: int = 8000
    file_mb: int = 64
    folder_mb: int = 20
    frame_mb: int = 64
    startup: float = 60.0

    def __post_init__(self):
        for name in ("timeout", "memory_mb", "output_bytes", "file_mb", "folder_mb", "frame_mb", "startup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits: {name} must be a positive number, got {value!r}")


class GraderError(RuntimeError):
    """The sandbox could not be set up or started: the grader's fault (or its machine's), not the student's."""


class Stopped(Exception):
    """The sandbox's interpreter ended, or was ended, before it answered.

    ``reason``: "timeout", "exit" (it ended: ``os._exit``, a crash, a signal), or "protocol" (it sent
    what is not a frame); ``detail`` says more (the exit status or the signal); ``line`` the top-level
    line it was running while loading, if it was loading."""

    def __init__(self, reason: str, detail: str = "", line: int | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.line = reason, detail, line


@dataclass
class Reply:
    """What one call gave: ``outcome`` (kind "returned", "missing", "not_done", "raised", "broken",
    "unsendable", with their details), the returned ``value``, the positional ``args`` and ``kwargs``
    as the function left them, the ``refusals`` of the guard during the call, and its ``seconds``."""
    outcome: dict
    value: Any = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    refusals: list = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Loaded:
    """How the student's module loaded: ``unreadable`` (why it did not, or None), ``broken`` (function ->
    its syntax error), ``skipped`` (top-level statements that raised, hung or ended the process),
    ``refusals`` (of the guard while loading)."""
    unreadable: dict | None = None
    broken: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    refusals: list = field(default_factory=list)


class Output:
    """What a submission printed: the first ``limit`` bytes kept, the rest counted."""

    def __init__(self, limit: int):
        self.limit, self.kept, self.total = limit, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]

    def text(self) -> str:
        return self.kept.decode("utf-8", errors="replace")

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)


def sandbox_site() -> list[str]:
    """The folders the sandbox imports third-party modules from: the site-packages of this interpreter
    (and NumPy's own folder), never a folder added by a ``.pth`` file such as an editable minirai's."""
    import numpy
    folders = [*site.getsitepackages(), site.getusersitepackages() if site.ENABLE_USER_SITE else "",
               str(Path(numpy.__file__).resolve().parent.parent)]
    seen: list[str] = []
    for folder in folders:
        if folder and os.path.isdir(folder) and folder not in seen and Path(folder).resolve() != CHECKOUT:
            seen.append(folder)
    return seen


def default_protected() -> list[str]:
    """Paths a submission may not read: the minirai package and, in a clone, the teachers' folder."""
    return [str(PACKAGE)] + ([str(TEACHERS)] if TEACHERS.is_dir() else [])


def copy_submission(source: Path, work: Path, limit_bytes: int, neighbours: bool = False) -> str:
    """Copy a submission file (and, with ``neighbours``, the other ``.py`` files beside it: a student's
    helper modules), or a folder's files (no links, no native modules, no hidden folders), into
    ``work``; the name of the file to load there."""
    if source.is_file():
        beside = [p for p in source.parent.glob("*.py") if p.is_file() and not p.is_symlink()] if neighbours else []
        for path in [*beside, source]:
            shutil.copyfile(path, work / path.name)
        return source.name
    total = 0
    for folder, subfolders, files in os.walk(source):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__pycache__"
                         and not os.path.islink(os.path.join(folder, d))]
        target = work / Path(folder).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or name.endswith(NATIVE) or not path.is_file():
                continue
            total += path.stat().st_size
            if total > limit_bytes:
                raise ValueError(f"{source}: the folder holds more than {limit_bytes // 2 ** 20} MB of files")
            shutil.copyfile(path, target / name)
    return "exercises.py"


class _Process:
    """One runner: its pipes, what it has sent, and what it has printed."""

    def __init__(self, box: Sandbox, skip_lines: list[int]):
        inbox, self.command = os.pipe()
        self.reply, outbox = os.pipe()
        box.starts += 1
        job = {"inbox": inbox, "outbox": outbox, "folder": str(box.work), "file": box.file, "module": "exercises",
               "root": str(box.temp), "protected": box.protected, "forbidden": box.forbidden,
               "site": sandbox_site(), "preload": list(PRELOAD), "skip_lines": skip_lines,
               "memory_mb": box.limits.memory_mb, "file_bytes": box.limits.file_mb * 2 ** 20,
               "frame_bytes": box.limits.frame_mb * 2 ** 20,
               "cpu_seconds": int(box.limits.startup + box.limits.timeout * (box.calls_expected + 20)) + 10}
        job_path = box.temp / f"job{box.starts}.json"
        script = box.temp / "runner.py"         # a copy: a traceback the student prints reads its lines from there
        if not script.exists():
            shutil.copyfile(RUNNER, script)
        job_path.write_text(json.dumps(job), encoding="utf-8")
        home = box.temp / "home"
        env = {"PATH": os.defpath, "HOME": str(home), "TMPDIR": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(home), **{f"{lib}_NUM_THREADS": "1" for lib in
                                                                  ("OPENBLAS", "OMP", "MKL", "NUMEXPR")}}
        try:
            self.popen = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(script), str(job_path)],
                                          cwd=box.work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, pass_fds=(inbox, outbox),
                                          start_new_session=True)
        finally:
            os.close(inbox)
            os.close(outbox)
        self.box, self.buffer, self.pending, self.frames = box, bytearray(), bytearray(), []
        self.ended = False
        self.selector = selectors.DefaultSelector()
        for fd, role in ((self.reply, "reply"), (self.popen.stdout.fileno(), "output")):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, role)
        os.set_blocking(self.command, False)

    def send(self, meta: dict, arrays: list) -> None:
        if not self.pending and self.command >= 0:
            self.selector.register(self.command, selectors.EVENT_WRITE, "command")
        self.pending += runner.pack(meta, arrays)

    def receive(self, deadline: float) -> dict:
        """The next frame (``{"op": ...}`` with its arrays under ``"_arrays"``), writing what is pending and
        draining the student's output meanwhile; Stopped when the process ends or the deadline passes."""
        while not self.frames:
            if self.ended:
                raise self.stopped()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise Stopped("timeout")
            for key, _ in self.selector.select(min(remaining, 1.0)):
                if key.data == "command":
                    self._write()
                elif key.data == "output":
                    chunk = self._read(key.fd)
                    if chunk:
                        self.box.output.add(chunk)
                else:
                    chunk = self._read(key.fd)
                    if chunk:
                        self.buffer += chunk
                        self._split()
                    elif chunk is not None:
                        self.ended = True
        return self.frames.pop(0)

    def _read(self, fd: int) -> bytes | None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return None
        if not chunk:
            self.selector.unregister(fd)
        return chunk

    def _write(self) -> None:
        try:
            written = os.write(self.command, self.pending)
        except BlockingIOError:
            return
        except BrokenPipeError:       # the runner closed its end: what it does next (end) is what counts
            written = len(self.pending)
        del self.pending[:written]
        if not self.pending:
            self.selector.unregister(self.command)

    def _split(self) -> None:
        limit = self.box.limits.frame_mb * 2 ** 20
        while len(self.buffer) >= 8:
            size = int.from_bytes(self.buffer[:8], "big")
            if size > limit:
                self.kill()
                raise Stopped("protocol", f"a reply of {size} bytes")
            if len(self.buffer) < 8 + size:
                return
            payload = bytes(self.buffer[8:8 + size])
            del self.buffer[:8 + size]
            try:
                meta, arrays = runner.unpack(payload, limit)
            except runner.FrameError as error:
                self.kill()
                raise Stopped("protocol", str(error)) from None
            if meta.get("op") == "refused":
                self.box.refusals.append({"kind": str(meta.get("kind")), "what": str(meta.get("what"))[:300]})
            else:
                meta["_arrays"] = arrays
                self.frames.append(meta)

    def stopped(self) -> Stopped:
        """Why the process ended (it has closed its reply pipe)."""
        try:
            status = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return Stopped("exit", "it closed its channel to the grader")
        self.close()
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.Signals._value2member_map_ else str(-status)
            if -status == getattr(signal, "SIGXCPU", None):
                return Stopped("exit", "it ran out of CPU time")
            return Stopped("exit", f"the process was killed by {name}"
                           + (" (out of memory?)" if -status == signal.SIGKILL else ""))
        return Stopped("exit", f"the process ended with exit status {status} (os._exit, or a crash)")

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:     # pragma: no cover - a process SIGKILL does not end
            pass
        self.close()

    def close(self) -> None:
        """Read what is left of the student's output, then close every pipe."""
        if self.ended is None:
            return
        end = time.monotonic() + 2
        stdout = self.popen.stdout
        while stdout is not None and time.monotonic() < end:
            try:
                chunk = os.read(stdout.fileno(), 1 << 16)
            except BlockingIOError:
                if self.popen.poll() is not None and not self.selector.select(0.05):
                    break
                continue
            if not chunk:
                break
            self.box.output.add(chunk)
        self.selector.close()
        for fd in (self.command, self.reply):
            try:
                os.close(fd)
            except OSError:
                pass
        if stdout is not None:
            stdout.close()
        self.ended = None


class Sandbox:
    """A submission (a ``.py`` file, or a folder holding ``exercises.py`` and its helper modules),
    copied into a temporary folder, and the interpreter its functions run in.

    Use it as a context manager: the temporary folder and any running interpreter go away at the end.
    ``protected``: more paths the submission may not read (other submissions, the gradebook's folder);
    ``forbidden``: modules it may not import (minirai always); ``calls_expected`` sizes its CPU limit;
    ``neighbours``: a file submission brings the ``.py`` files beside it (``minirai check``: a student's
    helpers; never for a class, where they are the other students' files)."""

    def __init__(self, source: str | Path, limits: Limits | None = None, protected: tuple | list = (),
                 forbidden: tuple | list = (), calls_expected: int = 12, neighbours: bool = False):
        self.source = Path(source)
        self.neighbours = neighbours
        self.limits = limits or Limits()
        self.protected = default_protected() + [str(Path(p).resolve()) for p in protected]
        self.forbidden = sorted({"minirai", *forbidden})
        self.calls_expected = calls_expected
        self.output = Output(self.limits.output_bytes)
        self.refusals: list = []
        self.skip_lines: list[int] = []
        self.process: _Process | None = None
        self.loaded: Loaded | None = None
        self.starts = 0
        self.temp = self.work = Path()
        self.file = ""

    def __enter__(self) -> Sandbox:
        if os.name != "posix":
            raise GraderError("minirai's sandbox needs Linux or macOS (process sessions and resource limits); "
                              "on Windows, run minirai check and minirai grade in WSL")
        self.temp = Path(tempfile.mkdtemp(prefix="minirai-sandbox-")).resolve()
        self.work = self.temp / "work"
        self.work.mkdir()
        (self.temp / "home").mkdir()
        try:
            self.file = copy_submission(self.source, self.work, self.limits.folder_mb * 2 ** 20, self.neighbours)
        except BaseException:
            shutil.rmtree(self.temp, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None
        shutil.rmtree(self.temp, ignore_errors=True)

    # -- loading -----------------------------------------------------------------------------------------
    def load(self) -> Loaded:
        """Start an interpreter and load the student's module in it; how it went (the first load's
        report: later restarts load the same file again, quietly)."""
        if self.process is None:
            report = self._start()
            if self.loaded is None:
                self.loaded = report
        return self.loaded

    def _start(self) -> Loaded:
        report, refusals_before = Loaded(), len(self.refusals)
        for _ in range(20):            # each round skips one more top-level statement that hung or ended it
            process = _Process(self, list(self.skip_lines))
            try:
                ready = process.receive(time.monotonic() + self.limits.startup)
            except Stopped as stop:
                raise GraderError(f"the sandbox's interpreter did not start ({stop.reason}: {stop.detail}); "
                                  f"what it printed:\n{self.output.text()[-2000:]}") from None
            if ready.get("op") != "ready":
                process.kill()
                raise GraderError(f"the sandbox's interpreter said {ready.get('op')!r} instead of 'ready'")
            line = None
            deadline = time.monotonic() + self.limits.timeout
            try:
                while True:
                    frame = process.receive(deadline)
                    op = frame.get("op")
                    if op == "line":
                        line, deadline = frame.get("line"), time.monotonic() + self.limits.timeout
                    elif op == "broken":
                        report.broken[str(frame.get("function"))] = _plain(frame)
                    elif op == "skipped":
                        if all(s.get("line") != frame.get("line") for s in report.skipped):
                            report.skipped.append(_plain(frame))
                    elif op == "unreadable":
                        report.unreadable = _plain(frame)
                        process.kill()
                        return report
                    elif op == "loaded":
                        report.refusals = self.refusals[refusals_before:]
                        self.process = process
                        return report
            except Stopped as stop:
                if line is None or line in self.skip_lines:
                    report.unreadable = {"error": "the file", "message": f"ended the grader's interpreter while "
                                         f"loading ({stop.detail or stop.reason})", "line": line}
                    return report
                self.skip_lines.append(line)
                what = (f"ran past the time limit ({self.limits.timeout:g} s)" if stop.reason == "timeout"
                        else stop.detail or stop.reason)
                report.skipped.append({"line": line, "error": stop.reason, "message": what})
        report.unreadable = {"error": "the file", "line": None,
                             "message": "too many top-level statements hang or end the process"}
        return report

    # -- calling -------------------------------------------------------------------------------------------
    def call(self, function: str, args: tuple, kwargs: dict, budget: float) -> Reply:
        """Call the student's ``function`` with ``args`` and ``kwargs`` (arrays, numbers, tuples, lists,
        None, strings, :class:`~minirai.course.runner.Closure`); Stopped if it takes longer than ``budget``
        seconds, ends its process or answers with what is not a frame."""
        if self.process is None:
            report = self._start()
            if self.loaded is None:
                self.loaded = report
            if self.process is None:
                raise Stopped("exit", "the file did not load again after a restart")
        arrays: list = []
        limit = self.limits.frame_mb * 2 ** 20
        meta = {"op": "call", "function": function,
                "args": [runner.encode(a, arrays, limit) for a in args],
                "kwargs": {k: runner.encode(v, arrays, limit) for k, v in kwargs.items()}}
        started, refusals_before = time.monotonic(), len(self.refusals)
        process = self.process
        try:
            process.send(meta, arrays)
            while True:
                frame = process.receive(started + budget)
                if frame.get("op") == "result":
                    break
        except Stopped:
            self.process = None
            process.kill()
            raise
        seconds = time.monotonic() - started
        try:
            reply = self._decode(frame, args, kwargs)
        except (runner.FrameError, KeyError, TypeError, ValueError, IndexError) as error:
            self.process = None
            process.kill()
            raise Stopped("protocol", f"an unreadable reply ({error})") from None
        reply.refusals, reply.seconds = self.refusals[refusals_before:], seconds
        return reply

    @staticmethod
    def _decode(frame: dict, args: tuple, kwargs: dict) -> Reply:
        arrays = frame["_arrays"]
        outcome = frame["outcome"]
        if not isinstance(outcome, dict) or not isinstance(outcome.get("kind"), str):
            raise runner.FrameError("a result without an outcome")
        value = runner.decode(frame["value"], arrays) if "value" in frame else None

        def after(desc: Any, sent: Any) -> Any:
            return sent if desc == {"t": "same"} else runner.decode(desc, arrays)

        if outcome["kind"] == "unsendable":
            return Reply(outcome)
        new_args = frame["args"]
        if not isinstance(new_args, list) or len(new_args) != len(args):
            raise runner.FrameError("a result with the wrong number of arguments")
        new_kwargs = frame["kwargs"]
        if not isinstance(new_kwargs, dict) or set(new_kwargs) != set(kwargs):
            raise runner.FrameError("a result with other keyword arguments")
        return Reply(outcome, value, tuple(after(d, s) for d, s in zip(new_args, args)),
                     {k: after(new_kwargs[k], v) for k, v in kwargs.items()})


def _plain(frame: dict) -> dict:
    """A frame's fields, without its arrays."""
    return {k: v for k, v in frame.items() if k not in ("_arrays", "arrays", "op")}
