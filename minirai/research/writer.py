"""Writing reports: ``report.md`` and its figures for a study's runs (:func:`write_report`, which
``minirai study`` calls), and ``minirai report DIR... [--methods M,...] [--seeds S,...] [--datasets D,...]
[--out OUT]``, which merges the runs stored in one or more study folders, keeps those asked for, and
writes their report (:func:`report_folders`): the one the study would write for those runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from . import figures
from .report import FIT, canonical, report_text, study_order
from .storage import read_results
from .studyfile import parse_study


def write_report(out: Path, results: list[dict[str, Any]], *, name: str, planned: int | None = None,
                 failed: list[dict[str, Any]] | None = None, compare: Sequence[tuple[str, str]] = (),
                 fit: float = FIT, order: dict[str, list] | None = None) -> list[str]:
    """``report.md`` and its figures in ``out``, from ``results`` (lines; their run files are in
    ``out`` or in the folder each came from), listed in ``order`` (see :func:`canonical`); returns
    the names written."""
    results = canonical(results, order)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drawn = figures.draw_all(results, out, fit) if results else []
    (out / "report.md").write_text(report_text(results, name=name, planned=planned, failed=failed, compare=compare,
                                               fit=fit, figures=drawn, out=out))
    return ["report.md"] + [name_ for name_, _ in drawn]


# -- reports of stored runs ---------------------------------------------------------------------
def load_folder(folder: str | Path) -> tuple[list[dict[str, Any]], Any]:
    """A study folder's result lines (each with ``_dir``) and its study (from ``study.json``), or None."""
    folder = Path(folder).resolve()
    if not (folder / "results.jsonl").is_file():
        raise ValueError(f"{str(folder)!r} holds no results.jsonl (not a study's folder?)")
    study = None
    marker = folder / "study.json"
    if marker.is_file():
        try:
            stored = json.loads(marker.read_text())
            study = parse_study(stored["study"], f"{marker}")
        except (ValueError, KeyError, TypeError):
            study = None
    results = [{**r, "_dir": str(folder)} for r in read_results(folder)]
    return results, study


def keep(result: dict[str, Any], methods: Sequence[str] | None, seeds: Sequence[int] | None,
         datasets: Sequence[str] | None) -> bool:
    return ((methods is None or result["method"] in methods) and (seeds is None or result["seed"] in seeds)
            and (datasets is None or result["dataset"] in datasets))


def report_folders(folders: Sequence[str | Path], out: str | Path | None = None, *,
                   methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                   datasets: Sequence[str] | None = None, compare: Sequence[tuple[str, str]] = (),
                   fit: float | None = None) -> tuple[Path, list[str], int]:
    """Merge the runs stored in ``folders``, keep those asked for, and write their report into ``out``
    (default: the one folder, when it is one and nothing is filtered). Returns (out, files written,
    runs reported). The report is the one the study would write for those runs: where the folders
    hold studies (``study.json``), the planned runs, the pairs to compare and the ``fit`` threshold
    are theirs, filtered the same way."""
    if not folders:
        raise ValueError("minirai report needs at least one study folder")
    filtered = methods is not None or seeds is not None or datasets is not None
    if out is None:
        if len(folders) != 1 or filtered:
            raise ValueError("--out is needed when several folders are merged or runs are filtered (the study's "
                             "own report.md stays as it is)")
        out = folders[0]
    results, studies = [], []
    seen: set[str] = set()
    for folder in folders:
        lines, study = load_folder(folder)
        studies.append(study)
        for line in lines:
            if line["id"] not in seen and keep(line, methods, seeds, datasets):
                seen.add(line["id"])
                results.append(line)
    if not results:
        raise ValueError("no stored run matches --methods/--seeds/--datasets")
    known = [s for s in studies if s is not None]
    planned = None
    if len(known) == len(studies):
        planned = len({run.id for s in known for run in s.runs
                       if keep({"method": run.method, "seed": run.seed, "dataset": run.dataset}, methods, seeds,
                               datasets)})
    names = list(dict.fromkeys(s.name for s in known)) or ["stored runs"]
    pairs = list(compare) + [p for s in known for p in s.compare if p not in compare]
    if fit is None:
        fits = {s.fit for s in known}
        fit = fits.pop() if len(fits) == 1 else FIT
    if filtered and methods is not None:
        pairs = [p for p in pairs if p[0] in methods and p[1] in methods]
    out = Path(out)
    order: dict[str, list] = {}
    for study in known:
        for key, value in study_order(study).items():
            order[key] = order.get(key, []) + [v for v in value if v not in order.get(key, [])]
    written = write_report(out, results, name=", ".join(names), planned=planned, compare=pairs, fit=fit,
                           order=order)
    return out, written, len(results)
