"""The docs' generated tables (layers, losses, optimizers, graded tasks) are what the code holds now:
``python docs/tables.py`` leaves every page as committed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "docs" / "tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)


@pytest.mark.parametrize("page", tables.PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_generated_tables_are_up_to_date(page):
    text = page.read_text(encoding="utf-8")
    assert tables.fill(text) == text, f"{page.relative_to(ROOT)}: run python docs/tables.py"


def test_the_tables_are_on_the_pages_and_follow_the_code():
    text = "".join(page.read_text(encoding="utf-8") for page in tables.PAGES)
    for name in tables.TABLES:
        assert f"<!-- generated: {name} " in text, f"no page holds the {name} table"
    from minirai.layers import Activation

    class Swish(Activation):
        """``y = x σ(x)``;  backward ``dx = dy · (σ(x) + y (1 - σ(x)))``."""

    assert "`Swish`" not in tables.layers_table()          # only minirai's own classes are listed
    assert "| `Sigmoid` | `sigmoid` |" in tables.layers_table()
    with pytest.raises(ValueError, match="unknown generated table 'nope'"):
        tables.fill("<!-- generated: nope (python docs/tables.py rewrites it) -->\n<!-- end generated -->")
