"""The sandbox a submission runs in (minirai/course/runner.py, sandbox.py): frames that cannot carry code,
a guard that holds when the student's code rebinds what it uses, statement-by-statement loading (a
syntax error inside one function removes that function only; a top-level statement that raises, hangs
or ends the process is skipped), and the limits."""
from __future__ import annotations

import struct
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minirai.course import runner
from minirai.course.grade import feedback_lines, grade_submission
from minirai.course.sandbox import Limits, Sandbox, Stopped
from minirai.course.tasks import TASKS, find_task

ROOT = Path(__file__).resolve().parent.parent
SEED = 5
FAST = Limits(timeout=1.5)


def submission(tmp_path: Path, source: str, name: str = "answers.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def lines(path: Path, tasks: str = "", limits: Limits = FAST) -> list[str]:
    chosen = [find_task(t) for t in tasks.split()] if tasks else TASKS
    return feedback_lines(grade_submission(path, chosen, SEED, limits))


# -- frames ------------------------------------------------------------------------------------------------------
def test_values_travel_as_frames_and_come_back_equal():
    values = [None, True, 3, 2.5, float("nan"), np.float32(1.5), np.arange(6.0).reshape(2, 3), np.array(7),
              (np.ones(2), [1.0, 2.0]), [np.zeros((0, 3)), (1, 2)], "text", {"a": 1}, np.array(["s"])]
    arrays: list = []
    described = [runner.encode(v, arrays, 1 << 20) for v in values]
    meta, back = runner.unpack(runner.pack({"values": described}, arrays)[8:], 1 << 20)
    decoded = [runner.decode(d, back) for d in meta["values"]]
    assert decoded[:4] == [None, True, 3, 2.5] and np.isnan(decoded[4])
    assert isinstance(decoded[5], np.float32) and decoded[5] == 1.5
    assert np.array_equal(decoded[6], values[6]) and decoded[6].flags.writeable and decoded[7].shape == ()
    assert isinstance(decoded[8], tuple) and decoded[8][1] == [1.0, 2.0] and decoded[9][0].shape == (0, 3)
    assert decoded[10] == "text"
    assert [runner.Other.__name__, decoded[11].type_name] == ["Other", "dict"]
    assert decoded[12].type_name.startswith("numpy array of dtype <U")


def rewritten(frame: bytes, old: bytes, new: bytes) -> bytes:
    """``frame`` with ``old`` replaced by ``new`` in its JSON part (its length header kept right)."""
    (size,) = struct.unpack(">Q", frame[:8])
    text = frame[8:8 + size].replace(old, new)
    return struct.pack(">Q", len(text)) + text + frame[8 + size:]


@pytest.mark.parametrize("tamper, what", [
    (lambda f: f[:-3], "arrays longer than the frame"),
    (lambda f: f + b"\0", "left over"),
    (lambda f: rewritten(f, b'"<f8"', b'"|O8"'), "a bad array description"),
    (lambda f: rewritten(f, b"[3]", b"[4000000000000]"), "a bad array description"),
    (lambda f: rewritten(f, b"[3]", b"[2]"), "left over"),
    (lambda f: struct.pack(">Q", 10 ** 6) + f[8:], "JSON part is longer"),
    (lambda f: struct.pack(">Q", 2) + b"{]" + f[10:], "unreadable JSON"),
])
def test_a_frame_that_is_not_one_is_refused(tamper, what):
    arrays: list = []
    frame = runner.pack({"v": runner.encode(np.ones(3), arrays, 1 << 20)}, arrays)[8:]
    with pytest.raises(runner.FrameError, match=what):
        runner.unpack(tamper(frame), 1 << 20)


def test_the_grader_never_builds_code_from_a_reply():
    with pytest.raises(runner.FrameError, match="unknown kind"):
        runner.decode({"t": "closure", "source": "lambda: 0", "args": []}, [])
    with pytest.raises(runner.Unsendable, match="more than 0 MB"):
        runner.encode(np.ones(1000), [], 100)


# -- loading ---------------------------------------------------------------------------------------------------
def test_a_syntax_error_inside_one_function_removes_that_function_only():
    source = textwrap.dedent('''\
        import numpy as np

        @staticmethod
        def broken(x):
            return x +* 2

        class Helper:
            def method(self):
                return (1,

        def fine(x):
            """A docstring
        at column 0 inside a function."""
            return x
        ''')
    tree, broken = runner.parse(source, "f.py")
    assert set(broken) == {"broken", "Helper"} and broken["broken"]["line"] == 5
    assert [getattr(node, "name", None) for node in tree.body] == [None, "broken", "Helper", "fine"]
    with pytest.raises(SyntaxError):                 # outside any function: the file does not import
        runner.parse("x = (1,\n", "f.py")


def test_top_level_code_that_hangs_ends_or_reads_input_is_skipped(tmp_path):
    path = submission(tmp_path, """\
        import os
        import numpy as np
        name = input()
        while True:
            pass
        def linear_forward(x, W, b):
            return x @ W + b
        if name:
            os._exit(3)
        os._exit(4)
        def sigmoid_backward(y, dy):
            return dy * y * (1 - y)
        """)
    out = lines(path, "1 3")
    assert "note: line 3: the top-level code raised EOFError: input() read from standard input" in out[1]
    assert "note: line 4: the top-level code ran past the time limit" in out[2]
    assert "note: line 8: the top-level code raised NameError: name 'name' is not defined" in out[3]   # (line 3's)
    assert "note: line 10: the top-level code ended the grader's interpreter: the process ended with exit " \
           "status 4" in out[4]
    assert " 1 linear_forward         PASS" in out[5] and " 3 sigmoid_backward       PASS" in out[6], out


def test_a_file_that_does_not_import_is_reported_at_its_line(tmp_path):
    out = lines(submission(tmp_path, "import numpy as np\n\nx = (1,\n\ndef linear_forward(x, W, b):\n    pass\n"),
                "1")
    assert out[1] == "note: answers.py does not import: SyntaxError at line 3: '(' was never closed"
    assert "FAIL     not graded: answers.py does not import" in out[2]


def test_a_folder_submission_imports_its_helpers_and_a_missing_one_is_reported(tmp_path):
    folder = tmp_path / "zoe"
    folder.mkdir()
    (folder / "exercises.py").write_text("from mine import affine\nfrom nowhere import thing\n\n"
                                         "def linear_forward(x, W, b):\n    return affine(x, W, b)\n")
    (folder / "mine.py").write_text("def affine(x, W, b):\n    return x @ W + b\n")
    graded = grade_submission(folder, [find_task("1")], SEED, FAST)
    assert graded.student == "zoe" and graded.results[0].status == "PASS"
    assert graded.status == "line 2 raised ModuleNotFoundError (skipped)"


# -- the guard -------------------------------------------------------------------------------------------------
def test_the_guard_holds_when_the_student_rebinds_what_it_uses(tmp_path):
    path = submission(tmp_path, """\
        import builtins
        import os
        import __main__

        __main__.REFUSED_EVENTS = __main__.WRITING_EVENTS = __main__.REFUSED_PREFIXES = ()
        __main__.WHY = {}
        HERE = os.getcwd()
        os.path.join = os.fspath = lambda *args: HERE + "/harmless"        # as if every path were its own
        os.path.isabs = lambda path: False
        os.stat = os.lstat = os.path.realpath = lambda *args, **kwargs: HERE

        def linear_forward(x, W, b):
            tried, saved = [], (builtins.any, builtins.isinstance)
            builtins.any = lambda *args: False                # the guard's own names are bound already
            builtins.isinstance = lambda *args: False
            try:
                for attempt in (lambda: os.system("true"), lambda: open("/tmp/minirai-guard-test", "w"),
                                lambda: os.remove("../../minirai-guard-test"),
                                lambda: __import__("ctypes").CDLL(None)):
                    try:
                        attempt()
                        tried.append("done")
                    except Exception as error:
                        tried.append(type(error).__name__)
            finally:
                builtins.any, builtins.isinstance = saved
            if tried != ["PermissionError"] * 4:
                raise AssertionError(tried)
            return x @ W + b
        """)
    graded = grade_submission(path, [find_task("1")], SEED, FAST)
    assert graded.results[0].status == "PASS", graded.results[0].message
    assert graded.status.startswith("refused os.system in task 1; refused writing /tmp/minirai-guard-test in task 1; "
                                    "refused os.remove on "), graded.status
    assert graded.status.endswith("; refused ctypes.dlopen in task 1"), graded.status
    assert not Path("/tmp/minirai-guard-test").exists()


def test_the_teachers_folder_and_the_package_cannot_be_read(tmp_path):
    path = submission(tmp_path, f"""\
        def linear_forward(x, W, b):
            return open({str(ROOT / "teachers" / "solutions.py")!r}).read()

        def sigmoid_backward(y, dy):
            return open({str(ROOT / "minirai" / "course" / "tasks.py")!r}).read()

        def tanh_backward(y, dy):
            import importlib
            return importlib.import_module("minirai.course")
        """)
    out = lines(path, "1 3 4")
    assert "tried opening " + str(ROOT / "teachers" / "solutions.py") + " while the task ran" in out[1]
    assert "tried opening " + str(ROOT / "minirai" / "course" / "tasks.py") in out[2]
    assert "tried import minirai while the task ran" in out[3]      # importlib reports it too


def test_a_task_that_times_out_is_killed_and_the_next_runs_in_a_fresh_interpreter(tmp_path):
    path = submission(tmp_path, """\
        import time
        CALLS = []

        def linear_forward(x, W, b):
            CALLS.append(1)
            time.sleep(60)

        def sigmoid_backward(y, dy):
            assert not CALLS          # a fresh interpreter: task 1's state is gone
            return dy * y * (1 - y)
        """)
    graded = grade_submission(path, [find_task("1"), find_task("3")], SEED, Limits(timeout=1.0))
    assert [r.status for r in graded.results] == ["FAIL", "PASS"]
    assert graded.results[0].message == "linear_forward() ran past the time limit (1 s for this task): an endless loop?"
    assert 1.0 <= graded.results[0].seconds < 5


def test_the_sandbox_has_no_standard_input_a_small_environment_and_its_limits(tmp_path):
    path = submission(tmp_path, """\
        import os, resource, sys
        def linear_forward(x, W, b):
            assert sys.stdin.read() == ""
            assert not [k for k in os.environ if k.startswith(("MINIRAI", "PYTHON"))], dict(os.environ)
            assert resource.getrlimit(resource.RLIMIT_AS)[1] == 256 * 2 ** 20
            assert os.getcwd().endswith("work") and os.path.exists("answers.py")
            assert not any("site-packages" not in p and os.path.isdir(os.path.join(p, "minirai")) for p in sys.path)
            return x @ W + b
        """)
    graded = grade_submission(path, [find_task("1")], SEED, Limits(timeout=2.0, memory_mb=256))
    assert graded.results[0].status == "PASS", graded.results[0].message


def test_a_call_that_ends_the_process_is_stopped_not_obeyed(tmp_path):
    path = submission(tmp_path, "import os\n\ndef f():\n    os._exit(7)\n")
    with Sandbox(path, FAST) as box:
        assert box.load().unreadable is None
        with pytest.raises(Stopped, match="exit status 7"):
            box.call("f", (), {}, 1.0)
        reply = box.call("g", (), {}, 1.0)            # a fresh interpreter answers the next call
        assert reply.outcome == {"kind": "missing"}


def test_a_forbidden_module_that_is_installed_is_refused_however_it_is_imported(tmp_path):
    # scipy is installed where NumPy is, as minirai is under a wheel install: its name alone is refused
    path = submission(tmp_path, """\
        import importlib

        def linear_forward(x, W, b):
            import scipy.special
            return x @ W + b

        def sigmoid_backward(y, dy):
            importlib.import_module("scipy")
            return dy * y * (1 - y)

        def tanh_backward(y, dy):
            try:
                __import__("scipy.linalg")
            except ImportError:
                pass                  # caught, and still 0: the attempt is what counts
            return dy * (1 - y * y)
        """)
    graded = grade_submission(path, [find_task(t) for t in ("1", "3", "4")], SEED, FAST, forbidden=("scipy",))
    assert [r.status for r in graded.results] == ["FAIL"] * 3
    assert "tried import scipy.special while the task ran, which the grader refuses: 0 for this task" in \
        graded.results[0].message
    assert graded.status == "import scipy.special in task 1; import scipy in task 3; import scipy.linalg in task 4"
