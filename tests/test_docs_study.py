"""docs/study.md's study tables and figures are what the stored results give (``python docs/study_tables.py``
leaves the page as committed), and every number its prose quotes is in a table of the same section."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from minirai.research import doctables

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "study.md"
NUMBER = re.compile(r"(?<![\w.])\d+\.\d{3}(?![\d])")      # an accuracy, a difference, a variability: 0.883


def test_the_study_blocks_are_the_stored_results():
    text = PAGE.read_text(encoding="utf-8")
    assert doctables.START.search(text), "docs/study.md has no study block"
    assert doctables.fill(text) == text, "docs/study.md differs from the stored results: python docs/study_tables.py"


def sections(text: str) -> list[str]:
    return re.split(r"\n(?=## )", text)


def test_every_number_the_prose_quotes_is_in_its_sections_tables():
    """A section with study blocks quotes its own; one without (the tools, the summary) any on the page."""
    text = PAGE.read_text(encoding="utf-8")
    everything = "".join(text[a:b] for a, b in doctables.blocks(text))
    checked = 0
    for section in sections(text):
        spans = doctables.blocks(section)
        tables = "".join(section[a:b] for a, b in spans) if spans else everything
        prose = section
        for a, b in reversed(spans):
            prose = prose[:a] + prose[b:]
        for number in NUMBER.findall(prose):
            checked += 1
            assert number in tables, f"{number} is quoted in {section.splitlines()[0]!r} but in none of its tables"
    assert checked > 0


def test_a_changed_stored_number_is_caught(monkeypatch):
    text = PAGE.read_text(encoding="utf-8")
    match = doctables.START.search(text)
    name, kind = match.group(1), match.group(2)
    real = doctables.block

    def changed(n, k):
        out = real(n, k)
        return out.replace("0.", "0.9", 1) if (n, k) == (name, kind) else out
    monkeypatch.setattr(doctables, "block", changed)
    assert doctables.fill(text) != text


def test_a_study_without_stored_results_is_a_clear_error():
    with pytest.raises(ValueError, match="no stored results for study 'nope'"):
        doctables.block("nope", "table")


def test_the_numbers_the_readme_and_chapter_8_quote_are_in_the_study_tables():
    text = PAGE.read_text(encoding="utf-8")
    tables = "".join(text[a:b] for a, b in doctables.blocks(text))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("Beyond the proposal ([docs/study.md]")
    quoted = {"README.md": readme[start:readme.index("\n\n", start)],
              "chapter 8": (ROOT / "tutorials" / "08_minibatch_rai_and_gpu.py").read_text(encoding="utf-8")}
    for where, prose in quoted.items():
        numbers = NUMBER.findall(prose)
        assert numbers, f"{where} quotes no study number"
        for number in numbers:
            assert number in tables, f"{where} quotes {number}, which no table of docs/study.md holds"
