"""Rewrite the study tables and figures of docs/study.md from the stored study results
(studies/results/NAME/): ``python docs/study_tables.py`` (see minirai/research/doctables.py)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minirai.research.doctables import fill  # noqa: E402

PAGES = [ROOT / "docs" / "study.md"]

if __name__ == "__main__":
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = fill(text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            print(f"rewrote {page.relative_to(ROOT)}")
