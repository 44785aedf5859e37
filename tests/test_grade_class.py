"""``minirai grade`` on a class as a real one hands it in (tests/data/class): right and partly right files,
a syntax error inside one function, stray top-level code, an endless loop, input(), os._exit, sys.exit,
megabytes of prints, memory exhaustion, a rewritten grader and NumPy, minirai used for the answers,
the reference solutions looked for, files written and the gradebook hunted, fake PASS lines, and a
folder submission with its own helper module.

The class is graded once, from a fresh folder, as a teacher runs it (``python -m minirai grade ...
--jobs 2`` with the default time limit), with the grader's temporary folders next to the gradebook's
so the hunting submission can find it. Each student's gradebook row is compared with the one expected.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLASS = ROOT / "tests" / "data" / "class"

#: student -> (the 12 task columns, the status: the exact text, or a pattern it must match)
EXPECTED = {
    "ada": ("111111111111", "ok"),
    "ben": ("101110000000", "ok"),
    "cleo": ("101110000000", "SyntaxError in linear_backward at line 12"),
    "dan": ("111110000000", "line 18 raised ValueError (skipped)"),
    "eve": ("111110111111", "timed out in task 6"),
    "finn": ("011000000000", "line 4 raised EOFError (skipped)"),
    "gus": ("111101000000", "ended its process in task 5"),
    "hana": ("110000000000", "line 21 called exit() (skipped)"),
    "ivan": ("110000000000", re.compile(r"^printed [4-6]\.\d MB \(truncated\)$")),
    "jo": ("100000000000", "out of memory in tasks 2, 3"),
    "kim": ("000000000000", "refused: import minirai.course.tasks; import minirai.course.judge in task 2"),
    "lea": ("000000000000", "import minirai in tasks 1, 2, 5, 8"),
    "max": ("000000000000", "read a protected file in tasks 1, 2"),
    "nia": ("000000000000", re.compile(r"refused: writing /tmp/minirai-class-hacked; .*refused: os\.system; "
                                       r"refused: opening /proc/\d+/cmdline; .*gradebook\.csv.*refused: os\.kill; "
                                       r"read a protected file in task 1")),
    "olga": ("000000000000", "ok"),
    "pia": ("101000000000", "ok"),
}
LIMIT_S = 120            # the whole class, default time limit, 2 jobs


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    work = tmp_path_factory.mktemp("course")
    klass, out, teacher, temp = work / "class", work / "grades", work / "teacher", work / "tmp"
    shutil.copytree(CLASS, klass, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in (out / "feedback", teacher, temp):
        folder.mkdir(parents=True)
    (out / "gradebook.csv").write_text("student,total\nnia,12\n")        # last week's, which nia hunts for
    (out / "feedback" / "ada.txt").write_text("last week\n")
    before, repository = fingerprint(klass), fingerprint(CLASS)
    paths = [str(p) for p in sorted(klass.glob("*.py"))] + [str(klass / "pia")]
    # the grader in a child that reports its children's peak memory (the sandboxes included) and its time
    measure = ("import resource, subprocess, sys, time; start = time.monotonic(); "
               "status = subprocess.call(sys.argv[1:]); "
               "print('MEASURED', status, time.monotonic() - start, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "minirai", "grade", *paths,
                             "--out", str(out), "--jobs", "2", "--gradescope"], cwd=teacher, capture_output=True,
                            text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(temp),
                                                         "HOME": str(teacher)})
    status, seconds, peak_kb = re.search(r"MEASURED (\d+) ([\d.]+) (\d+)", result.stderr).groups()
    with open(out / "gradebook.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    return {"result": result, "status": int(status), "seconds": float(seconds), "peak_mb": int(peak_kb) / 1024,
            "rows": rows, "out": out, "class": klass, "before": before, "repository": repository,
            "book": json.loads((out / "gradebook.json").read_text())}


def test_grading_finishes_with_status_0_in_time_and_bounded_memory(graded):
    result = graded["result"]
    assert graded["status"] == 0, result.stdout + result.stderr
    assert graded["seconds"] < LIMIT_S, graded["seconds"]
    assert graded["peak_mb"] < 1024 * 1.2, graded["peak_mb"]       # the 1024 MB limit held (jo asked for 80 GB)
    assert "wrote " in result.stdout and "16 students" in result.stdout


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_student_gets_the_expected_row(graded, student):
    rows = {row[0]: row for row in graded["rows"][1:]}
    scores, status = EXPECTED[student]
    row = rows[student]
    assert "".join(row[1:13]) == scores, row
    assert int(row[13]) == scores.count("1"), row
    if isinstance(status, re.Pattern):
        assert status.search(row[14]), row[14]
    else:
        assert row[14] == status, row[14]


def test_the_gradebook_has_its_header_and_one_row_per_student(graded):
    rows = graded["rows"]
    assert rows[0] == ["student", *(str(k) for k in range(1, 13)), "total", "status"]
    assert [row[0] for row in rows[1:]] == sorted(EXPECTED)


def test_no_submission_changed_anything_outside_its_own_temporary_folder(graded):
    assert fingerprint(graded["class"]) == graded["before"]          # the class folder, as handed in
    assert fingerprint(CLASS) == graded["repository"]
    assert not Path("/tmp/minirai-class-hacked").exists()
    assert not (graded["out"].parent / "hacked").exists() and not (graded["out"].parent / "tmp" / "hacked").exists()
    assert not list((graded["out"].parent / "tmp").iterdir())        # every sandbox's folder removed
    ada = (graded["out"] / "feedback" / "ada.txt").read_text()
    assert ada.startswith("checking ada.py (seed ") and "12/12 passed" in ada   # the grader's, written last


def test_the_json_records_the_seed_and_each_task(graded):
    book = graded["book"]
    assert isinstance(book["seed"], int) and f"seed {book['seed']}" in graded["result"].stdout
    assert book["timeout_s"] == 5.0 and [t["id"] for t in book["tasks"]] == [str(k) for k in range(1, 13)]
    eve = book["students"]["eve"]
    assert eve["total"] == 11 and eve["status"] == "timed out in task 6"
    six = eve["tasks"]["6"]
    assert six["status"] == "fail" and six["score"] == 0 and "ran past the time limit (5 s" in six["message"]
    assert 5.0 <= six["seconds"] < 15
    assert book["students"]["ada"]["tasks"]["7"]["status"] == "pass"
    assert book["students"]["ben"]["tasks"]["8"]["status"] == "not done"


def test_what_a_submission_prints_never_reads_as_the_graders(graded):
    stdout = graded["result"].stdout
    assert "PASS     matches minirai (max diff" not in stdout and "loading 0" not in stdout
    olga = (graded["out"] / "feedback" / "olga.txt").read_text().splitlines()
    graders = [line for line in olga if not line.startswith("  | ")]
    assert not any(" PASS " in line for line in graders), graders
    assert any(line.startswith("  | ") and " PASS " in line for line in olga)
    ivan = graded["out"] / "feedback" / "ivan.txt"
    assert ivan.stat().st_size < 20_000                               # megabytes printed, kilobytes kept
    assert re.search(r"\[\.\.\. [\d.]+ MB more, not shown\]", ivan.read_text())


def test_the_feedback_says_where_and_why(graded):
    def feedback(name):
        return (graded["out"] / "feedback" / f"{name}.txt").read_text()
    assert "linear_backward() has a SyntaxError at line 12: '(' was never closed" in feedback("cleo")
    assert "line 18: the top-level code raised ValueError (in linear_forward at dan.py line 6)" in feedback("dan")
    assert "linear_forward() raised EOFError at finn.py line 8: input() read from standard input" in feedback("finn")
    assert "bce_backward() ended the grader's interpreter: the process ended with exit status 0" in feedback("gus")
    assert "sigmoid_backward() called exit() at hana.py line 17" in feedback("hana")
    assert "linear_backward() ran out of memory at jo.py line 10 (the limit is 1024 MB)" in feedback("jo")
    assert "tried import minirai while the task ran, which the grader refuses: 0 for this task" in feedback("lea")
    assert re.search(r"tried opening \S+/teachers/solutions\.py while the task ran", feedback("max"))
    assert "1 linear_forward         PASS" in feedback("pia")


def test_gradescope_results_follow_the_autograder_format(graded):
    for student, (scores, _) in EXPECTED.items():
        results = json.loads((graded["out"] / "gradescope" / student / "results.json").read_text())
        assert results["score"] == scores.count("1")
        assert [t["score"] for t in results["tests"]] == [int(c) for c in scores]
        assert all(t["max_score"] == 1 and t["status"] == ("passed" if t["score"] else "failed")
                   and t["name"].startswith(f"Task {t['number']}: ") for t in results["tests"])
        assert isinstance(results["output"], str) and isinstance(results["execution_time"], float)


def test_the_teachers_page_shows_these_rows():
    page = (ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
    for student, (scores, status) in EXPECTED.items():
        row = next(line for line in page.splitlines() if line.startswith(f"| `{student}` |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2:4] == [f"`{scores}`", str(scores.count("1"))], row
        if isinstance(status, str):
            assert cells[4] == f"`{status}`", row
        else:
            assert cells[4].startswith("`") and cells[4].endswith("`"), row
