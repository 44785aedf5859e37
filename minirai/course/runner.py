"""The sandbox's side of ``minirai grade`` and ``minirai check``: run a student's functions and send back
what they return; nothing else.

The grader (:mod:`minirai.course.sandbox`) starts this file as a script, in a fresh interpreter whose
working directory is a temporary copy of the submission::

    python -I -S -B runner.py JOB.json

``-I`` ignores ``PYTHON*`` variables and the user's site folder, ``-S`` skips ``site`` (so no ``.pth``
file runs: an editable minirai is not on ``sys.path``), ``-B`` writes no bytecode. The runner imports
only the standard library and NumPy, then, before any student code runs:

* lowers its own limits: memory (address space), CPU seconds, the size of a file it writes, open files;
* installs an audit hook (:pep:`578`; Python code cannot remove one) that refuses importing minirai
  (and any module the teacher forbids), reading the protected paths (the minirai package, the
  teachers' folder, the other submissions, the gradebook's folder, other processes' ``/proc``
  entries), writing, renaming or deleting anything outside the temporary folder, starting or signalling
  processes, ``ctypes``, sockets, and raising a limit. Each refusal is an exception in the student's
  code, and is also sent to the grader at once, so catching it hides nothing.

Then it loads the student's module one top-level statement at a time (a statement that raises is
reported at its own line and skipped; a syntax error inside one function removes that function
only), and serves calls: the grader sends a function name and arguments, the runner calls the
function and sends back the returned value and the arguments as the function left them.

Every message, both ways, is a *frame* that cannot carry code: 8 bytes of length, 8 bytes of
JSON length, the JSON, then the raw bytes of the arrays it describes (dtype and shape in the JSON,
dtypes restricted to booleans and numbers). Values travel as ``encode``/``decode`` describe them.
The reference values, the comparison and the verdict never enter this process.
"""
import ast
import json
import math
import os
import re
import struct
import sys
import threading
import traceback

if __name__ == "__main__":      # in the sandbox (python -I -S): the site folders NumPy lives in, from the job
    with open(sys.argv[1], encoding="utf-8") as _job:
        sys.path.extend(json.load(_job)["site"])

import numpy as np  # noqa: E402

#: the frame's header: the length of what follows, then the length of its JSON part
HEADER = struct.Struct(">QQ")
DTYPE = re.compile(r"^[<>|=][biufc][0-9]{1,2}$")
MAX_NODES = 100_000          # the most values one reply describes (a list of lists counts each list)
MAX_DEPTH = 12               # nested tuples and lists


class FrameError(ValueError):
    """A frame that is not one this protocol writes (too long, a bad dtype, bytes left over)."""


class Unsendable(ValueError):
    """A returned value too big or too deeply nested to send back."""


class Other:
    """A returned value of a type that does not travel (a str, a dict, a function, ...): its type's name."""

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:80]

    def __repr__(self) -> str:
        return f"<a {self.type_name}>"


class Closure:
    """A function argument built in the sandbox: ``eval(source)`` (a lambda, with ``np`` in scope)
    bound to ``args``, e.g. ``Closure("lambda x, A: float(np.sum(np.sin(x) * A))", Arg(1), A)``.
    ``Arg(i)`` is the very object passed as the call's positional argument ``i``."""

    def __init__(self, source: str, *args):
        self.source, self.args = source, args


class Arg:
    """The call's positional argument ``index`` itself (not a copy): see :class:`Closure`."""

    def __init__(self, index: int):
        self.index = index


# -- frames ------------------------------------------------------------------------------------------------
def pack(meta: dict, arrays: list) -> bytes:
    """A frame: ``meta`` (JSON) and the raw bytes of ``arrays``, each described in ``meta["arrays"]``."""
    contiguous = [np.asarray(a, order="C") for a in arrays]        # (ascontiguousarray makes 0-d arrays 1-d)
    meta = dict(meta, arrays=[[a.dtype.str, list(a.shape)] for a in contiguous])
    text = json.dumps(meta, allow_nan=False).encode("utf-8")
    body = b"".join(a.tobytes() for a in contiguous)
    return HEADER.pack(8 + len(text) + len(body), len(text)) + text + body


def unpack(payload: bytes, limit: int) -> tuple:
    """``(meta, arrays)`` from a frame's payload (what follows its first 8 bytes); FrameError if it is
    not a frame this module writes. The arrays are fresh, writeable copies."""
    if len(payload) < 8 or len(payload) > limit:
        raise FrameError(f"a frame of {len(payload)} bytes")
    (size,) = struct.unpack(">Q", payload[:8])
    if size > len(payload) - 8:
        raise FrameError("a frame whose JSON part is longer than the frame")
    try:
        meta = json.loads(payload[8:8 + size].decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise FrameError(f"unreadable JSON ({type(error).__name__})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("arrays"), list):
        raise FrameError("a frame without its list of arrays")
    arrays, offset = [], 8 + size
    for spec in meta["arrays"]:
        if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str) and DTYPE.match(spec[0])
                and isinstance(spec[1], list) and len(spec[1]) <= 32
                and all(isinstance(n, int) and 0 <= n < 2 ** 40 for n in spec[1])):
            raise FrameError(f"a bad array description {str(spec)[:80]}")
        dtype = np.dtype(spec[0])
        count = math.prod(spec[1])
        nbytes = count * dtype.itemsize
        if offset + nbytes > len(payload):
            raise FrameError("arrays longer than the frame")
        arrays.append(np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(spec[1]).copy())
        offset += nbytes
    if offset != len(payload):
        raise FrameError(f"{len(payload) - offset} bytes left over in a frame")
    return meta, arrays


# -- values --------------------------------------------------------------------------------------------------
def _number_like(value) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def encode(value, arrays: list, limit: int, _state: list | None = None, _depth: int = 0) -> dict:
    """A JSON description of ``value``, its arrays appended to ``arrays``. Arrays, numbers, booleans,
    None, strings (as inputs), tuples and lists travel; anything else travels as its type's name
    (:class:`Other`). Unsendable when the arrays would pass ``limit`` bytes or the value is too deep."""
    state = _state if _state is not None else [0, 0]       # nodes, bytes
    state[0] += 1
    if state[0] > MAX_NODES or _depth > MAX_DEPTH:
        raise Unsendable("a value nested too deeply, or holding too many items, to send back "
                         f"(at most {MAX_NODES} items, {MAX_DEPTH} levels)")

    def array(a: np.ndarray, kind: str) -> dict:
        state[1] += a.nbytes
        if state[1] > limit:
            raise Unsendable(f"more than {limit // 2 ** 20} MB of arrays")
        arrays.append(a)
        return {"t": kind, "a": len(arrays) - 1}

    if value is None:
        return {"t": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) < 2 ** 62:
            return {"t": "int", "v": int(value)}
        return {"t": "other", "type": "int too large for an array"}
    if isinstance(value, float):
        return array(np.array(value, dtype=np.float64), "float")
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return array(np.array(value), "scalar")
    if isinstance(value, str):
        return {"t": "str", "v": value[:10_000]}
    if isinstance(value, Closure):
        return {"t": "closure", "source": value.source,
                "args": [encode(v, arrays, limit, state, _depth + 1) for v in value.args]}
    if isinstance(value, Arg):
        return {"t": "arg", "i": int(value.index)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc" or value.dtype.fields is not None:
            return {"t": "other", "type": f"numpy array of dtype {value.dtype}"}
        return array(np.array(value, copy=True), "array")
    if isinstance(value, (tuple, list)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        if len(value) > MAX_NODES:
            raise Unsendable(f"a {kind} of {len(value)} items")
        if value and all(_number_like(v) for v in value):
            try:
                numbers = np.array(value)
            except (OverflowError, ValueError):
                numbers = None
            if numbers is not None and numbers.dtype.kind in "biuf":
                return dict(array(numbers, kind + "_of_numbers"), n=len(value))
        return {"t": kind, "items": [encode(v, arrays, limit, state, _depth + 1) for v in value]}
    return {"t": "other", "type": type(value).__name__}


def decode(desc, arrays: list, _depth: int = 0, args: list | None = None):
    """The value ``encode`` described. In the sandbox (``args`` given) closures and Arg references are
    built too; the grader decodes only returned values, in which they are an error."""
    if _depth > MAX_DEPTH + 1 or not isinstance(desc, dict):
        raise FrameError("an unreadable value description")
    kind = desc.get("t")
    if kind == "none":
        return None
    if kind == "bool":
        return bool(desc["v"])
    if kind == "int":
        if not isinstance(desc["v"], int) or isinstance(desc["v"], bool):
            raise FrameError("an int that is not one")
        return desc["v"]
    if kind == "str":
        return str(desc["v"])
    if kind == "other":
        return Other(desc.get("type", "?"))
    if kind in ("float", "scalar", "array", "tuple_of_numbers", "list_of_numbers"):
        index = desc.get("a")
        if not isinstance(index, int) or not 0 <= index < len(arrays):
            raise FrameError("a value pointing to no array")
        a = arrays[index]
        if kind == "float":
            return float(a)
        if kind == "scalar":
            return a[()] if a.ndim == 0 else a
        if kind == "array":
            return a
        items = a.tolist()
        if not isinstance(items, list):
            raise FrameError("numbers that are not a list")
        return tuple(items) if kind == "tuple_of_numbers" else items
    if kind in ("tuple", "list"):
        items = desc.get("items")
        if not isinstance(items, list):
            raise FrameError("a tuple without items")
        values = [decode(item, arrays, _depth + 1, args) for item in items]
        return tuple(values) if kind == "tuple" else values
    if args is not None and kind == "arg":
        return args[int(desc["i"])]
    if args is not None and kind == "closure":
        function = eval(desc["source"], {"np": np, "math": math})      # the grader's source, not the student's
        bound = [decode(item, arrays, _depth + 1, args) for item in desc["args"]]
        return lambda *more: function(*bound, *more)
    raise FrameError(f"an unknown kind of value {str(kind)[:40]!r}")


# -- the channel to the grader -----------------------------------------------------------------------------
class Channel:
    """Frames in from ``inbox`` (a file descriptor), frames out to ``outbox``; one writer at a time."""

    def __init__(self, inbox: int, outbox: int, limit: int):
        self.inbox, self.outbox, self.limit = inbox, outbox, limit
        self.lock = threading.Lock()

    def send(self, meta: dict, arrays: list | None = None) -> None:
        frame = pack(meta, arrays or [])
        with self.lock:
            view = memoryview(frame)
            while view:
                view = view[os.write(self.outbox, view):]

    def _read(self, count: int) -> bytes:
        chunks, left = [], count
        while left:
            chunk = os.read(self.inbox, min(left, 1 << 20))
            if not chunk:
                raise EOFError("the grader closed the channel")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def receive(self) -> tuple:
        (size,) = struct.unpack(">Q", self._read(8))
        return unpack(self._read(size), self.limit)


# -- the limits and the guard ------------------------------------------------------------------------------
def lower_limits(job: dict) -> None:
    """Memory (address space), CPU seconds, file size, open files and core files, soft and hard."""
    import resource
    import signal
    memory = int(job["memory_mb"]) * 2 ** 20
    cpu = int(job["cpu_seconds"])
    for name, value in (("RLIMIT_AS", memory), ("RLIMIT_CPU", cpu), ("RLIMIT_FSIZE", int(job["file_bytes"])),
                        ("RLIMIT_NOFILE", 256), ("RLIMIT_CORE", 0)):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        extra = 5 if name == "RLIMIT_CPU" else 0       # SIGXCPU at the soft limit, SIGKILL at the hard one
        try:
            resource.setrlimit(which, (value, value + extra if hard == resource.RLIM_INFINITY else hard))
        except (ValueError, OSError):    # macOS refuses RLIMIT_AS below what is mapped: the other limits hold
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)    # a file too big is an OSError in the student's code


#: audit events refused outright (processes, signals, native code, the network, the limits)
REFUSED_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                  "subprocess.Popen", "os.kill", "os.killpg", "os.startfile", "resource.setrlimit",
                  "resource.prlimit", "os.link", "os.symlink", "gc.get_objects", "gc.get_referrers",
                  "gc.get_referents", "sys.settrace", "sys.setprofile", "os.chroot", "os.setuid")
REFUSED_PREFIXES = ("ctypes.", "socket.", "_posixsubprocess.", "winreg.", "pty.")
#: audit events whose path arguments must lie inside the sandbox (they change the file system)
WRITING_EVENTS = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.chmod", "os.chown", "os.utime",
                  "os.truncate", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr",
                  "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree", "shutil.copymode",
                  "shutil.copystat", "shutil.chown", "os.mkfifo", "os.mknod")
#: audit events that list a folder (refused on a protected path)
LISTING_EVENTS = ("os.listdir", "os.scandir", "glob.glob", "glob.glob/2", "os.walk", "os.fwalk")
#: why each kind of refusal, as the exception in the student's code says it
WHY = {"forbidden import": ": a submission computes with NumPy, not with minirai (0 for the task)",
       "forbidden read": ": a submission reads only its own files and the libraries (0 for the task)",
       "write": ": a submission writes only into its own temporary folder",
       "refused": ": a submission runs no other process, native code or network connection"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def install_guard(root: str, protected: list, forbidden: list, channel: Channel) -> None:
    """The audit hook described in the module's docstring. Nothing keeps a reference to it but the
    interpreter, and everything it uses (settings, the C functions behind ``os``, even builtins) is
    bound in its closure now: rebinding ``os.path.join``, ``os.stat`` or a builtin later changes
    nothing it does. It resolves paths itself (``resolve``), as ``os.path.realpath`` would."""
    import builtins
    import stat
    root = os.path.realpath(root)
    protected = tuple(os.path.realpath(p) for p in protected)
    forbidden = frozenset(forbidden)
    me, sep, encoding = str(os.getpid()), os.sep, sys.getfilesystemencoding()
    reported = [0]
    send, getcwd, lstat, stat_, readlink, fspath = (channel.send, os.getcwd, os.lstat, os.stat, os.readlink,
                                                    os.fspath)
    is_link, is_dir = stat.S_ISLNK, stat.S_ISDIR
    any_, len_, str_, bool_, int_, isinstance_, reversed_ = (builtins.any, builtins.len, builtins.str,
                                                             builtins.bool, builtins.int, builtins.isinstance,
                                                             builtins.reversed)
    bytes_, os_error, type_error = builtins.bytes, builtins.OSError, builtins.TypeError
    path_types = (str, bytes, os.PathLike)
    permission, importing = PermissionError, ImportError
    why, write_flags = dict(WHY), WRITE_FLAGS
    writing_events, listing_events = frozenset(WRITING_EVENTS), frozenset(LISTING_EVENTS)
    refused_events, refused_prefixes = frozenset(REFUSED_EVENTS), tuple(REFUSED_PREFIXES)

    def inside(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(sep) + sep)

    def refuse(kind: str, what: str, error: type = permission):
        if reported[0] < 50:                 # a loop of refusals sends 50 reports, then refuses in silence
            reported[0] += 1
            send({"op": "refused", "kind": kind, "what": what[:300]})
        raise error(f"the grader's sandbox refuses {what}{why.get(kind, '')}")

    def resolve(path: str) -> str:
        """The absolute ``path`` with ``.``, ``..`` and symbolic links resolved."""
        pending = [part for part in reversed_(path.split(sep)) if part]
        done: list = []
        links = 0
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            candidate = sep + sep.join([*done, name])
            try:
                link = is_link(lstat(candidate).st_mode)
            except os_error:
                link = False
            if link and links < 40:
                links += 1
                target = readlink(candidate)
                if target.startswith(sep):
                    done = []
                pending += [part for part in reversed_(target.split(sep)) if part]
                continue
            done.append(name)
        return sep + sep.join(done)

    def full(path) -> str | None:
        if isinstance_(path, int_) or path is None:
            return None
        try:
            text = fspath(path)
        except type_error:
            return None
        if isinstance_(text, bytes_):
            text = text.decode(encoding, "surrogateescape")
        return resolve(text if text.startswith(sep) else getcwd() + sep + text)

    def isdir(path: str) -> bool:
        try:
            return is_dir(stat_(path).st_mode)
        except os_error:
            return False

    def readable(path: str) -> bool:
        if any_(inside(path, p) for p in protected):
            return False
        parts = path.split(sep)
        return not (len_(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and parts[2] != me)

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            name = str_(args[0])
            if name.split(".")[0] in forbidden:
                refuse("forbidden import", f"import {name}", importing)
        elif event == "open":
            path = full(args[0])
            if path is None:
                return
            if not readable(path):
                refuse("forbidden read", f"opening {path}", permission)
            mode = args[1] if isinstance_(args[1], str_) else ""
            flags = args[2] if len_(args) > 2 and isinstance_(args[2], int_) else 0
            writing = any_(c in mode for c in "wax+") or bool_(flags & write_flags)
            if not inside(path, root) and (writing or isdir(path)):
                refuse("write", f"{'writing' if writing else 'opening the folder'} {path}", permission)
        elif event in writing_events:
            for arg in args:
                path = full(arg) if isinstance_(arg, path_types) else None
                if path is not None and not inside(path, root):
                    refuse("write", f"{event} on {path}", permission)
        elif event in listing_events:
            path = full(args[0]) if args and isinstance_(args[0], path_types) else None
            if path is not None and not readable(path):
                refuse("forbidden read", f"listing {path}", permission)
        elif event in refused_events or event.startswith(refused_prefixes):
            refuse("refused", event, permission)

    class Refuse:
        """First on ``sys.meta_path``: ``importlib.import_module`` raises no "import" audit event."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if str_(name).split(".")[0] in forbidden:
                refuse("forbidden import", f"import {name}", importing)
            return None

    sys.addaudithook(hook)
    sys.meta_path.insert(0, Refuse)


# -- loading the student's module ----------------------------------------------------------------------------
BLOCK_START = re.compile(r"^(@|(async\s+)?def\s|class\s)")
NAMED = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)")


def _top_level(line: str) -> bool:
    return bool(line.strip()) and not line[0].isspace() and not line.lstrip().startswith("#")


def enclosing_block(lines: list, lineno: int) -> tuple | None:
    """``(start, end, name)`` (0-based, end exclusive) of the top-level ``def``/``class`` holding line
    ``lineno`` (1-based), its decorators included; None when that line is not inside one."""
    index = min(max(lineno - 1, 0), len(lines) - 1)
    start = index
    while start >= 0 and not _top_level(lines[start]):
        start -= 1
    if start < 0 or not BLOCK_START.match(lines[start]):
        return None
    while start > 0 and lines[start - 1].startswith("@"):
        start -= 1
    head = start
    while head < len(lines) and lines[head].startswith("@"):
        head += 1
    end = max(head, index) + 1
    while end < len(lines) and not _top_level(lines[end]):
        end += 1
    match = NAMED.match(lines[head]) if head < len(lines) else None
    return start, end, match.group(1) if match else None


def parse(source: str, filename: str) -> tuple:
    """``(tree, broken)``: the module's syntax tree, with each top-level function (or class) holding a
    syntax error replaced by an empty one of the same name; ``broken`` maps that name to the error.
    SyntaxError when an error lies outside any function, or when removing functions does not help."""
    lines = source.splitlines(keepends=True)
    broken: dict = {}
    first_error = None
    for _ in range(50):
        try:
            return ast.parse("".join(lines), filename), broken
        except SyntaxError as error:
            first_error = first_error or error
            block = enclosing_block(lines, error.lineno or 1) if lines else None
            if block is None:
                raise error from None
            start, end, name = block
            key = name or f"<the function at line {start + 1}>"
            if key in broken:
                raise first_error from None
            broken[key] = {"line": error.lineno, "message": error.msg, "error": type(error).__name__}
            stub = f"def {name}(*args, **kwargs): pass\n" if name else "\n"
            lines[start:end] = [stub] + ["\n"] * (end - start - 1)
    raise first_error


def where_in(error: BaseException, folder: str, outermost: bool = False) -> tuple:
    """``(file, line, function)`` of the innermost (or outermost) frame of ``error``'s traceback that
    lies in the student's folder; ``(None, None, None)`` when none does."""
    folder = os.path.realpath(folder)
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if os.path.isabs(f.filename) and os.path.realpath(f.filename).startswith(folder + os.sep)]
    if not frames:
        return None, None, None
    frame = frames[0] if outermost else frames[-1]
    return os.path.relpath(os.path.realpath(frame.filename), folder), frame.lineno, frame.name


def text_of(error: BaseException) -> str:
    """``str(error)``, or a placeholder when the student's exception cannot say what it is."""
    try:
        return str(error)
    except Exception:       # noqa: BLE001 - a __str__ of the student's that raises
        return f"<a {type(error).__name__} whose message cannot be printed>"


def describe(error: BaseException, folder: str) -> dict:
    """An exception raised by the student's code, as the grader reports it."""
    file, line, function = where_in(error, folder)
    if file is None and isinstance(error, SyntaxError) and error.filename:     # e.g. in an imported helper
        path = os.path.realpath(error.filename)
        if path.startswith(os.path.realpath(folder) + os.sep):
            file, line = os.path.relpath(path, os.path.realpath(folder)), error.lineno
    message = text_of(error)
    if isinstance(error, SyntaxError):
        message = str(error.msg or message)
    if isinstance(error, EOFError):
        message = "input() read from standard input, which is empty while grading"
    return {"error": type(error).__name__, "message": message[:500], "file": file, "line": line,
            "function": function, "exit": isinstance(error, SystemExit),
            "memory": isinstance(error, MemoryError)}


def load(job: dict, channel: Channel) -> tuple:
    """Execute the student's file one top-level statement at a time; ``(module, broken)``.

    Sends ``{"op": "line"}`` before each statement (so a statement that hangs or ends the process is
    known by its line), and a note for each statement that raised (it is skipped; the rest runs)."""
    import types
    folder, filename = job["folder"], job["file"]
    path = os.path.join(folder, filename)
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        channel.send({"op": "unreadable", "error": "UnicodeDecodeError", "line": raw[:error.start].count(b"\n") + 1,
                      "message": "the file is not UTF-8 text"})
        return None, {}
    try:
        tree, broken = parse(source, path)
    except SyntaxError as error:
        channel.send({"op": "unreadable", "error": type(error).__name__, "line": error.lineno,
                      "message": error.msg or str(error)})
        return None, {}
    for name, what in broken.items():
        channel.send({"op": "broken", "function": name, **what})
    module = types.ModuleType(job["module"])
    module.__file__ = path
    sys.modules[job["module"]] = module
    flags, skip = 0, set(job.get("skip_lines", []))
    import __future__
    for statement in tree.body:
        if statement.lineno in skip:
            continue
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            for alias in statement.names:
                feature = getattr(__future__, alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
        channel.send({"op": "line", "line": statement.lineno})
        try:
            code = compile(ast.Module([statement], []), path, "exec", flags=flags, dont_inherit=True)
        except SyntaxError as error:     # e.g. 'return' outside a function: parsed, but not compiled
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                broken[statement.name] = {"line": error.lineno, "message": error.msg, "error": "SyntaxError"}
                channel.send({"op": "broken", "function": statement.name, **broken[statement.name]})
            else:
                channel.send({"op": "skipped", "line": statement.lineno, "error": "SyntaxError",
                              "message": error.msg, "file": filename, "function": None})
            continue
        try:
            with np.errstate(all="ignore"):
                exec(code, module.__dict__)
        except BaseException as error:          # noqa: BLE001 - the student's top-level code, reported and skipped
            what = describe(error, folder)
            inner = what.pop("file"), what.pop("line"), what.pop("function")
            channel.send({"op": "skipped", "line": statement.lineno, "inner_file": inner[0], "inner_line": inner[1],
                          "inner_function": inner[2], **what})
    return module, broken


# -- calling -----------------------------------------------------------------------------------------------
def call(module, broken: dict, folder: str, name: str, args: list, kwargs: dict) -> dict:
    """Call the student's ``name``; the outcome (returned, not done, raised, broken) as a dict."""
    if name in broken:
        return {"kind": "broken", **broken[name]}
    try:
        function = getattr(module, name, None)
    except BaseException:          # noqa: BLE001 - a module __getattr__ of the student's
        function = None
    if not callable(function):
        return {"kind": "missing"}
    try:
        with np.errstate(all="ignore"):
            value = function(*args, **kwargs)
    except NotImplementedError as error:
        return {"kind": "not_done", "message": text_of(error)[:300]}
    except BaseException as error:      # noqa: BLE001 - any error in the student's code (exit() too) is reported
        outcome = {"kind": "raised", **describe(error, folder)}
        if outcome["file"] is None and isinstance(error, TypeError):      # raised by the call itself
            import inspect
            try:
                outcome["signature"] = f"{name}{inspect.signature(function)}"
            except (TypeError, ValueError):
                outcome["signature"] = name + "(...)"
            outcome["given"] = len(args) + len(kwargs)
        return outcome
    return {"kind": "returned", "value": value}


def serve(channel: Channel, module, broken: dict, folder: str, limit: int) -> None:
    """Answer the grader's calls until it says quit (or closes the channel)."""
    while True:
        try:
            meta, arrays = channel.receive()
        except EOFError:
            return
        if meta.get("op") != "call":
            return
        descs = meta["args"]            # closures last: their Arg references point to the other arguments
        args: list = [None if d.get("t") == "closure" else decode(d, arrays, args=[]) for d in descs]
        for i, desc in enumerate(descs):
            if desc.get("t") == "closure":
                args[i] = decode(desc, arrays, args=args)
        kwargs = {key: decode(desc, arrays, args=args) for key, desc in meta["kwargs"].items()}
        outcome = call(module, broken, folder, meta["function"], args, kwargs)
        sys.stdout.flush()
        sys.stderr.flush()
        out: list = []
        reply = {"op": "result", "outcome": {k: v for k, v in outcome.items() if k != "value"}}
        try:
            state = [0, 0]
            if outcome["kind"] == "returned":
                reply["value"] = encode(outcome["value"], out, limit, state)
            reply["args"] = [encode(a, out, limit, state) if isinstance(a, np.ndarray) else {"t": "same"}
                             for a in args]
            reply["kwargs"] = {k: encode(a, out, limit, state) if isinstance(a, np.ndarray) else {"t": "same"}
                               for k, a in kwargs.items()}
        except Unsendable as error:
            out = []
            reply = {"op": "result", "outcome": {"kind": "unsendable", "message": str(error)}}
        channel.send(reply, out)


def main(job_path: str) -> None:
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    channel = Channel(job["inbox"], job["outbox"], job["frame_bytes"])
    lower_limits(job)
    sys.path[:] = [job["folder"], *[p for p in sys.path if p]]
    sys.stdout.reconfigure(errors="backslashreplace", line_buffering=False)
    sys.stderr.reconfigure(errors="backslashreplace")
    import site                      # -S skipped it: give the builtins it adds (exit, quit, help), nothing more
    site.setquit()
    site.sethelper()
    for name in job.get("preload", []):       # before the guard: modules that load native code at import
        try:
            __import__(name)
        except ImportError:
            pass
    install_guard(job["root"], job["protected"], job["forbidden"], channel)
    channel.send({"op": "ready"})
    module, broken = load(job, channel)
    if module is not None:
        channel.send({"op": "loaded", "functions": sorted(k for k, v in vars(module).items() if callable(v))[:500]})
        serve(channel, module, broken, job["folder"], job["frame_bytes"])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)       # no atexit handler and no thread of the student's outlives the runner


if __name__ == "__main__":
    main(sys.argv[1])
