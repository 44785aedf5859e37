"""The study tables and figures of ``docs/study.md``, written from the study results stored in
``studies/results/NAME/`` (each the ``--out`` folder of ``minirai study studies/NAME.toml``).

A docs page holds a generated block between two markers::

    <!-- study: minibatch-moons table (python docs/study_tables.py rewrites it) -->
    | ... |
    <!-- end study -->

``KIND`` is ``table`` (per setting and method: runs, training and held-out accuracy, the 95%
interval, one-class runs, boundary variability, seconds per run), ``paired`` (paired differences on
the same seeds, as the study's report has them), ``seeds`` (each run's held-out accuracy) or
``figure:FILE`` (a figure of the study's report, copied to ``docs/images/study/NAME-FILE``).
``python docs/study_tables.py`` rewrites every block; ``tests/test_docs_study.py`` fails when a committed
block differs from the stored results, and when a number quoted in the prose of a section is not
in that section's blocks.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from .report import _interval_text, _net, canonical, paired, paired_table, seeds_table, study_order, summarise, \
    twin_pairs
from .writer import load_folder

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "studies" / "results"
IMAGES = ROOT / "docs" / "images" / "study"
START = re.compile(r"<!-- study: ([\w.-]+) ([\w:.-]+) \(python docs/study_tables.py rewrites it\) -->\n")
END = "<!-- end study -->"
KINDS = ("table", "paired", "seeds")


def stored(name: str) -> tuple[list[dict[str, Any]], Any]:
    """A stored study's runs (in its report's order) and its study."""
    folder = RESULTS / name
    if not (folder / "results.jsonl").is_file():
        raise ValueError(f"no stored results for study {name!r} (run minirai study studies/{name}.toml "
                         f"--out studies/results/{name})")
    results, study = load_folder(folder)
    return canonical(results, study_order(study) if study is not None else None), study


def _varies(rows: list[dict[str, Any]], key: str) -> bool:
    return len({str(r[key]) for r in rows}) > 1


def table(name: str) -> str:
    """One line per setting and method: what a reader compares."""
    results, study = stored(name)
    rows = summarise(results, None, study.fit if study is not None else 0.95)
    setting = [k for k in ("dataset", "depth", "activation") if _varies(rows, k)]
    head = setting + ["method", "runs", "train acc", "held-out acc", "held-out 95% CI", "one class",
                      "boundary variability", "s / run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    from .report import variability_text
    for row in rows:
        cells = [str(row[k]) for k in setting] + [row["label"], str(row["runs"])]
        for key in ("train_acc", "test_acc"):
            mean, std = row[key]
            cells.append(f"{mean:.3f} ± {std:.3f}")
        cells.append(_interval_text(row["test_acc_ci"]))
        cells.append(f"{row['one_class']}/{row['runs']}")
        cells.append(variability_text(row))
        cells.append(f"{row['seconds'][0]:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    nets = sorted({_net(r) for r in rows})
    return "\n".join(lines) + (f"\n\nHidden widths {', '.join(nets)}; `studies/{name}.toml`, stored in "
                                f"`studies/results/{name}/`.")


def paired_block(name: str) -> str:
    results, study = stored(name)
    compare = list(study.compare) if study is not None else []
    pairs = twin_pairs(r["method"] for r in results) + [p for p in compare]
    differences = paired(results, pairs)
    if not differences:
        raise ValueError(f"study {name!r}: no pairs of methods to compare")
    return paired_table(differences)


def seeds_block(name: str) -> str:
    results, study = stored(name)
    return seeds_table(summarise(results, None, study.fit if study is not None else 0.95))


def figure(name: str, file: str) -> str:
    """Copy a figure of the stored report to docs/images/study/ and link it."""
    source = RESULTS / name / file
    if not source.is_file():
        raise ValueError(f"study {name!r} has no figure {file!r} in studies/results/{name}/")
    IMAGES.mkdir(parents=True, exist_ok=True)
    target = IMAGES / f"{name}-{file}"
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return f"![{name}: {file}](images/study/{name}-{file})"


def block(name: str, kind: str) -> str:
    if kind == "table":
        return table(name)
    if kind == "paired":
        return paired_block(name)
    if kind == "seeds":
        return seeds_block(name)
    if kind.startswith("figure:"):
        return figure(name, kind.split(":", 1)[1])
    raise ValueError(f"unknown study block kind {kind!r}; kinds: {', '.join(KINDS)}, figure:FILE")


def fill(text: str) -> str:
    """``text`` with every study block written again from the stored results."""
    out, position = [], 0
    for match in START.finditer(text):
        end = text.index(END, match.end())
        out += [text[position:match.end()], block(match.group(1), match.group(2)), "\n"]
        position = end
    return "".join(out) + text[position:]


def blocks(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each generated block's contents."""
    spans = []
    for match in START.finditer(text):
        spans.append((match.end(), text.index(END, match.end())))
    return spans
