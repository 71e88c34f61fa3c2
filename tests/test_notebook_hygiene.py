"""Notebooks stay thin, parameterisable and output-free."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from research.config import KERNEL_NAME

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin_parameterised_and_clean(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    ids = [c.get("id") for c in raw["cells"]]
    # nbformat 4.5 cells carry unique ids (a cell without one is a validation warning now and
    # an error in future nbformat versions)
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: every cell needs a unique id"
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME
    assert nb.cells[0].cell_type == "raw" and "title:" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    # every assignment in the parameters cell is a parameter papermill can see and override
    assigned = {
        node.target.id if isinstance(node, ast.AnnAssign) else node.targets[0].id
        for node in ast.parse(params[0].source).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
    }
    assert assigned and assigned == set(pm.inspect_notebook(str(path)))
    for cell in code:
        tree = ast.parse(cell.source)
        assert not any(
            isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda) for n in ast.walk(tree)
        ), f"{path.name}: no def/class/lambda in notebooks"
