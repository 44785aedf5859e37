"""``minirai check``, ``minirai grade`` and ``minirai handout`` as their users meet them: run from a fresh
folder, in a subprocess; a teacher's own task written as docs/teaching.md shows; a handout that holds
no solutions; a wheel without the teachers' folder."""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from minirai.course.handout import notebook, tutorials_folder, write_handout
from minirai.course.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "teachers" / "solutions.py"
TEACHING = ROOT / "docs" / "teaching.md"


def minirai(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minirai", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def code_block(starting: str) -> str:
    """The ```python block of docs/teaching.md whose first line is ``starting``."""
    blocks = re.findall(r"```python\n(.*?)```", TEACHING.read_text(encoding="utf-8"), flags=re.S)
    return next(block for block in blocks if block.startswith(starting))


# -- minirai check -------------------------------------------------------------------------------------------
def test_check_grades_exercises_py_of_the_current_folder_and_says_so(tmp_path):
    shutil.copyfile(SOLUTIONS, tmp_path / "exercises.py")
    result = minirai("check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"checking {re.escape(str(tmp_path.resolve() / 'exercises.py'))} \(seed \d+\)", lines[0])
    assert result.stdout.count(" PASS ") == len(TASKS) and lines[-1] == f"{len(TASKS)}/{len(TASKS)} passed"


def test_check_brings_the_students_helper_modules(tmp_path):
    (tmp_path / "exercises.py").write_text("from mine import affine\n\ndef linear_forward(x, W, b):\n"
                                           "    return affine(x, W, b)\n")
    (tmp_path / "mine.py").write_text("def affine(x, W, b):\n    return x @ W + b\n")
    result = minirai("check", "1", cwd=tmp_path)
    assert result.returncode == 0 and " 1 linear_forward         PASS" in result.stdout, result.stdout


def test_check_never_falls_back_to_the_repositorys_copy(tmp_path):
    for folder in (tmp_path, ROOT):                    # the clone's root holds tutorials/exercises.py: not taken
        result = minirai("check", cwd=folder)
        assert result.returncode == 2 and result.stdout == ""
        assert f"no exercises.py in this folder ({folder.resolve()})" in result.stderr


def test_check_exit_statuses_seed_and_list(tmp_path):
    stubs = ROOT / "tutorials" / "exercises.py"
    result = minirai("check", "--file", str(stubs), "--seed", "1", cwd=tmp_path)
    assert result.returncode == 3 and result.stdout.count(" NOT DONE ") == len(TASKS)
    first = minirai("check", "--solutions", str(SOLUTIONS), "--seed", "7", "11", "12", cwd=tmp_path)
    again = minirai("check", "--solutions", str(SOLUTIONS), "--seed", "7", "11", "12", cwd=tmp_path)
    other = minirai("check", "--solutions", str(SOLUTIONS), "--seed", "8", "11", "12", cwd=tmp_path)
    assert first.returncode == 0 and "(the reference solutions) (seed 7)" in first.stdout.splitlines()[0]
    task11 = [line for line in (r.stdout.splitlines()[1] for r in (first, again, other))]
    assert task11[0] == task11[1] != task11[2]          # the inputs come from the seed, and only from it
    listed = minirai("check", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(TASKS)
    assert listed.stdout.splitlines()[1].startswith("2 linear_backward")
    unknown = minirai("check", "99", "--file", str(stubs), cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown task '99'" in unknown.stderr


def test_check_reports_exit_a_wrong_signature_a_crash_a_loop_and_a_broken_file(tmp_path):
    answers = tmp_path / "answers.py"
    answers.write_text("def linear_forward(x, W):\n    return x @ W\n"
                       "def sigmoid_backward(y, dy):\n    exit()\n"
                       "def tanh_backward(y, dy):\n    while True:\n        pass\n"
                       "def numerical_gradient(f, x, eps=1e-5):\n    return x[99, 99]\n")
    result = minirai("check", "1", "3", "4", "5", "6", "--file", "answers.py", "--timeout", "1", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "linear_forward() could not be called as the grader calls it (TypeError: linear_forward() takes 2 " \
           "positional arguments but 3 were given): yours is linear_forward(x, W), called with 3 arguments; keep " \
           "the parameters of the stub" in out
    assert "sigmoid_backward() called exit() at answers.py line 4" in out
    assert "tanh_backward() ran past the time limit (1 s for this task): an endless loop?" in out
    assert "there is no function bce_backward() in answers.py" in out
    assert "numerical_gradient() raised IndexError at answers.py line 9: index 99 is out of bounds" in out
    assert "Traceback" not in out
    answers.write_text("import numpy as np\n\nx = (1,\n\ndef linear_forward(x, W, b):\n    pass\n")
    broken = minirai("check", "--file", "answers.py", cwd=tmp_path)
    assert broken.returncode == 1 and broken.stderr == ""
    assert broken.stdout.splitlines()[1] == \
        "note: answers.py does not import: SyntaxError at line 3: '(' was never closed"
    answers.write_text("import numpy as np\n\ndef helper(:\n    pass\n")      # inside a function: only it goes
    one = minirai("check", "--file", "answers.py", cwd=tmp_path)
    assert one.returncode == 3 and one.stdout.splitlines()[1] == (
        "note: line 3: SyntaxError in helper(): invalid syntax; helper() was not graded, the rest of the file was")


def test_the_docs_example_of_check_output_is_what_check_prints(tmp_path):
    shown = re.search(r"    \$ minirai check --seed (\d+) ([\d ]+)\n((?:    .*\n)+)", TEACHING.read_text()).groups()
    seed, tasks, lines = shown[0], shown[1].split(), [line[4:] for line in shown[2].splitlines()]
    shutil.copyfile(ROOT / "tests" / "data" / "class" / "ben.py", tmp_path / "exercises.py")
    result = minirai("check", "--seed", seed, *tasks, cwd=tmp_path)
    printed = result.stdout.splitlines()
    assert printed[0] == f"checking {(tmp_path / 'exercises.py').resolve()} (seed {seed})"
    assert lines[0] == f"checking /home/you/course/exercises.py (seed {seed})"
    assert printed[1:] == lines[1:]


# -- minirai grade -------------------------------------------------------------------------------------------
def test_grade_usage_errors_are_one_line_and_status_2(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "alice.py").write_text("x = 1\n")
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "exercises.py").write_text("x = 1\n")
    for args, message in ((["class"], "a folder submission must hold exercises.py"),
                          (["class/alice.py", "alice"], "two submissions are named 'alice'"),
                          (["notes.txt"], "not a submission"),
                          (["alice", "--tasks", "1,99"], "unknown task '99'"),
                          (["alice", "--tasks-file", "nope.py"], "--tasks-file: no file at 'nope.py'")):
        result = minirai("grade", *args, "--out", "grades", cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert not (tmp_path / "grades").exists()


def test_a_teachers_own_task_as_the_docs_write_it(tmp_path):
    (tmp_path / "my_tasks.py").write_text(code_block("# my_tasks.py"))
    stub = code_block("# added to exercises.py")
    right = tmp_path / "amy.py"
    right.write_text("import numpy as np\n\n" + stub.replace(
        '    raise NotImplementedError("Task 13")', "    return np.where(x > 0, dy, slope * dy)"))
    wrong = tmp_path / "bob.py"
    wrong.write_text("import numpy as np\n\n" + stub.replace(
        '    raise NotImplementedError("Task 13")', "    return np.where(x > 0, dy, dy)"))
    result = minirai("grade", "amy.py", "bob.py", "--out", "grades", "--tasks", "1,13", "--tasks-file",
                     "my_tasks.py", "--seed", "3", "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(tmp_path / "grades" / "gradebook.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["student", "1", "13", "total", "status"], ["amy", "0", "1", "1", "ok"],
                    ["bob", "0", "0", "0", "ok"]]
    book = json.loads((tmp_path / "grades" / "gradebook.json").read_text())
    assert book["seed"] == 3 and "matches minirai.LeakyReLU on 3 shapes" in book["students"]["amy"]["tasks"]["13"][
        "message"]
    assert book["students"]["bob"]["tasks"]["13"]["message"].startswith("dx at index")
    check = minirai("check", "13", "--file", "amy.py", "--tasks-file", "my_tasks.py", cwd=tmp_path)
    assert check.returncode == 0 and "13 leaky_relu_backward    PASS" in check.stdout


# -- minirai handout -----------------------------------------------------------------------------------------
def test_the_handout_holds_stubs_chapters_and_a_readme_and_no_solutions(tmp_path):
    result = minirai("handout", str(tmp_path / "handout"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    handout = tmp_path / "handout"
    chapters = sorted(p.name for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    assert sorted(p.name for p in (handout / "chapters").iterdir()) == sorted(
        chapters + [c.replace(".py", ".ipynb") for c in chapters])
    assert {p.name for p in handout.iterdir()} == {"exercises.py", "README.md", "chapters"}
    assert (handout / "exercises.py").read_bytes() == (ROOT / "tutorials" / "exercises.py").read_bytes()
    for path in handout.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8").lower()
            assert "solutions.py" not in text and "teachers/" not in text, path
    readme = (handout / "README.md").read_text()
    assert "minirai check" in readme and "| 12 | `rai_table_gradient(" in readme
    checked = minirai("check", cwd=handout)                     # a student, in the handout's folder
    assert checked.returncode == 3 and checked.stdout.count(" NOT DONE ") == len(TASKS)
    again = minirai("handout", str(handout), cwd=tmp_path)
    assert again.returncode == 2 and "is not an empty folder" in again.stderr


def test_the_notebooks_are_the_cells_jupytext_makes():
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    for chapter in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        mine = notebook(chapter.read_text(encoding="utf-8"))
        nbformat.validate(nbformat.from_dict(mine))
        theirs = jupytext.read(chapter)
        assert [(c["cell_type"], "".join(c["source"])) for c in mine["cells"]] == \
               [(c.cell_type, c.source) for c in theirs.cells], chapter.name


def test_without_a_clone_the_handout_says_where_the_chapters_are(tmp_path):
    with pytest.raises(ValueError, match="holds no exercises.py and chapters: run minirai handout from a clone"):
        tutorials_folder(tmp_path)
    written = write_handout(tmp_path / "out", ROOT / "tutorials")
    assert (tmp_path / "out" / "README.md") in written


def test_the_wheel_holds_the_grader_and_not_the_solutions(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(ROOT / name, source / name)
    for folder in ("minirai", "teachers", "tutorials"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                             "-w", str(tmp_path / "wheel"), "-q"], cwd=source, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    names = zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))).namelist()
    assert "minirai/course/runner.py" in names and "minirai/course/tasks.py" in names
    assert not [n for n in names if "solution" in n or n.startswith(("teachers/", "tutorials/"))], names
