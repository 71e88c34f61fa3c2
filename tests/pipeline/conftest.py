"""The real notebooks executed once per test session with the small parameters, rendered by the
nbconvert fallback (``rendered``) and, where ``quarto`` is on PATH, by Quarto too
(``quarto_site``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from research.config import Paths
from research.pipeline.runner import run_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "data" / "sample", root / "data" / "sample")
    (root / "reports").mkdir()
    for f in [*(ROOT / "reports").glob("*.qmd"), ROOT / "reports" / "_quarto.yml"]:
        shutil.copy(f, root / "reports" / f.name)
    for folder in ("theme", "guide"):
        shutil.copytree(ROOT / "reports" / folder, root / "reports" / folder)
    paths = Paths.from_root(root)
    result = run_pipeline(
        paths, params_file=paths.params / "small.yaml", renderer="nbconvert", log=print
    )
    assert result.ok, [o.describe() for o in result.failures]
    return paths


@pytest.fixture(scope="session")
def quarto_site(rendered: Paths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same executed notebooks rendered by real Quarto (a copy of the project, so the
    nbconvert site stays as it is)."""
    from research.pipeline.render import render_site

    if shutil.which("quarto") is None:
        pytest.skip(
            "quarto is not on PATH: the Quarto render is not tested here (install it "
            "with ../shared/tools/quarto/install.sh, as .ci/run does)"
        )
    root = tmp_path_factory.mktemp("quarto_project")
    shutil.copytree(rendered.notebooks, root / "notebooks")
    shutil.copytree(
        rendered.reports, root / "reports", ignore=shutil.ignore_patterns("_site", ".quarto")
    )
    paths = Paths.from_root(root)
    assert render_site(paths, renderer="quarto", log=print) == "quarto"
    return paths.site
