"""No planning-document vocabulary where a user can read it.

The plans the lab was built from are internal; users see domain names ("the validation plan",
"the regime columns"), never the plans' numbers ("seed 004", "migration 032"). Scanned: the
notebooks' cell sources, the report's index page, the README, and every docstring and string
constant of the package (collected with ``ast``, so f-string parts, help texts, error messages
and model descriptions count; comments do not).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "research"

PLANNING_VOCABULARY = re.compile(r"\bseed[ -]0\d\d\b|\bmigration 0\d\d\b", re.IGNORECASE)
"""The plans' numbers: ``seed 004`` (also ``seed-004``), ``migration 032``."""

PLANNING_REFERENCES = re.compile(
    r"\bthe seeds?'s?(?=\s)|\bseeds? (?:query|test) \d|\bseed §", re.IGNORECASE
)
"""Unnumbered references to the plans: ``the seed's``, ``the seeds'``, ``seed query 1``,
``seed test 6``, ``seed §4.3``. Random-number seeds ("seeds 0-39", ``seed=``) do not match."""


def _documents() -> list[tuple[str, str]]:
    """(where, text) for every user-visible text: one entry per notebook cell, page and
    string constant."""
    docs: list[tuple[str, str]] = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            docs.append((f"{path.relative_to(ROOT)} cell {i}", text))
    pages = ["README.md", "data/README.md", "data/sample/README.md"]
    pages += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "reports").glob("*.qmd"))]
    for rel in pages:
        docs.append((rel, (ROOT / rel).read_text(encoding="utf-8")))
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            # docstrings are string constants too (the first statement of a module, class or
            # function), as are attribute docstrings and the parts of f-strings
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                docs.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.value))
    return docs


def _hits(pattern: re.Pattern[str]) -> list[str]:
    return [
        f"{where}: {m.group(0)!r}" for where, text in _documents() for m in pattern.finditer(text)
    ]


def test_the_scan_reads_every_kind_of_text() -> None:
    wheres = [where for where, _ in _documents()]
    assert any(w.startswith("notebooks/") for w in wheres)
    assert "reports/index.qmd" in wheres and "README.md" in wheres
    assert "reports/glossary.qmd" in wheres and "data/README.md" in wheres
    assert any(w.startswith("src/research/") for w in wheres)


@pytest.mark.parametrize(
    "text",
    ["Seed 004's defaults", "(seed-003 snapshot)", "applies migration 032", "seed 000"],
)
def test_the_pattern_finds_the_plans_numbers(text: str) -> None:
    assert PLANNING_VOCABULARY.search(text)


@pytest.mark.parametrize(
    "text", ["seeds 0–39 give 0.054", "seed=0", "each cell seeded by its name", "seed: int"]
)
def test_random_number_seeds_are_not_planning_vocabulary(text: str) -> None:
    assert not PLANNING_VOCABULARY.search(text) and not PLANNING_REFERENCES.search(text)


def test_no_planning_document_numbers_in_user_visible_text() -> None:
    assert _hits(PLANNING_VOCABULARY) == []


def test_no_unnumbered_planning_document_references_in_user_visible_text() -> None:
    assert _hits(PLANNING_REFERENCES) == []
