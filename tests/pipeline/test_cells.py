"""Every cell of every notebook ran without an error, cell by cell, in the session's one
execution of the notebooks (the ``rendered`` fixture: the real pipeline, small parameters).

This is what ``pytest --nbval-lax`` used to check by executing every notebook a second time:
one test per code cell (the notebooks carry no ``NBVAL_CHECK_OUTPUT`` cells, so lax nbval only
failed on errors), plus one per notebook for the parameters cell papermill injects. Cells are
matched by their nbformat cell id, which papermill keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from research.config import Paths

ROOT = Path(__file__).resolve().parents[2]
INJECTED = "injected-parameters"


def _cells() -> list[Any]:
    """(notebook, cell id) for every code cell of the committed notebooks, and (notebook,
    ``INJECTED``) for each notebook the small parameters set values for (papermill injects a
    parameters cell only then)."""
    small = yaml.safe_load((ROOT / "notebooks" / "params" / "small.yaml").read_text()) or {}
    everywhere = bool(small.get("all"))
    cases = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        ids = [cell["id"] for cell in notebook.cells if cell.cell_type == "code"]
        cases += [pytest.param(path.stem, cid, id=f"{path.stem}::{cid}") for cid in ids]
        if everywhere or small.get(path.stem):
            cases.append(pytest.param(path.stem, INJECTED, id=f"{path.stem}::{INJECTED}"))
    return cases


def _executed_cell(executed: Path, name: str, cell_id: str) -> Any:
    notebook = nbformat.read(executed / f"{name}.ipynb", as_version=4)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell_id == INJECTED and INJECTED in tags:
            return cell
        if cell.get("id") == cell_id:
            return cell
    raise AssertionError(f"{name}: cell {cell_id} is missing from the executed notebook")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "cell_id"), _cells())
def test_cell_ran_without_error(rendered: Paths, name: str, cell_id: str) -> None:
    cell = _executed_cell(rendered.executed, name, cell_id)
    assert cell.cell_type == "code"
    assert cell.get("execution_count") is not None, f"{name}: cell {cell_id} did not run"
    errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{name}: cell {cell_id} raised {errors[0].get('ename')}: " + str(
        errors[0].get("evalue")
    )


def test_every_notebook_is_covered_cell_by_cell() -> None:
    """The parametrisation above sees every notebook the pipeline runs."""
    from research.pipeline.runner import discover

    names = {case.values[0] for case in _cells()}
    assert names == {p.stem for p in discover(Paths.from_root(ROOT))}
