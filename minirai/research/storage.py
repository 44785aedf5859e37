"""A study folder's stored runs: ``results.jsonl`` (one line per finished run) and ``runs/RUN.npz`` (its
history and predictions), written by the study's process, read by its reports."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = "results.jsonl"
ERRORS = "errors.jsonl"        # runs that failed, one line each (not counted as done)
RUNS = "runs"                  # RUN.npz: a run's history and predictions



# -- stored runs -------------------------------------------------------------------------------
def read_results(out: Path) -> list[dict[str, Any]]:
    """The complete lines of ``results.jsonl`` (one per finished run; the last line of an id wins);
    a line cut short by a kill is dropped, and the file rewritten without it."""
    path = Path(out) / RESULTS
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    results, kept = {}, []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "id" in value:
            results[value["id"]] = value
            kept.append(line)
    if len(kept) != len(lines):         # rewritten whole or not at all (a kill now loses nothing)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text("".join(k + "\n" for k in kept))
        os.replace(temporary, path)
    return list(results.values())


def run_file(out: Path, run_id: str) -> Path:
    return Path(out) / RUNS / f"{run_id}.npz"


def load_run_arrays(out: Path, run_id: str) -> dict[str, np.ndarray]:
    """A stored run's arrays: ``predictions`` and ``history_COLUMN`` (``predictions/RUN.npy`` of an
    older study: the predictions only)."""
    path = run_file(out, run_id)
    if path.is_file():
        with np.load(path) as stored:
            return {k: stored[k] for k in stored.files}
    return {"predictions": np.load(Path(out) / "predictions" / f"{run_id}.npy")}


def has_run_file(out: Path, run_id: str) -> bool:
    return run_file(out, run_id).is_file() or (Path(out) / "predictions" / f"{run_id}.npy").is_file()


def store_run(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write a run's arrays (to a temporary name, then renamed) and return its line without them."""
    arrays = result.pop("arrays")
    folder = Path(out) / RUNS
    folder.mkdir(exist_ok=True)
    temporary = folder / f"{result['id']}.tmp.npz"
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, run_file(out, result["id"]))
    return result


def remove_orphans(out: Path, recorded: set[str]) -> list[str]:
    """Remove run files that no line records (a kill between a file and its line, or a temporary)."""
    removed = []
    folder = Path(out) / RUNS
    if folder.is_dir():
        for path in folder.iterdir():
            name = path.name
            run_id = name[:-len(".npz")] if name.endswith(".npz") and not name.endswith(".tmp.npz") else None
            if run_id is None or run_id not in recorded:
                path.unlink()
                removed.append(name)
    return removed
