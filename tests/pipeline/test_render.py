"""Site rendering: the Quarto project file, the nbconvert fallback's index, atomic publishing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from research.config import Paths
from research.pipeline.render import publish, qmd_to_html, render_site

ROOT = Path(__file__).resolve().parents[2]


def test_reports_is_a_quarto_website_that_does_not_reexecute() -> None:
    config = yaml.safe_load((ROOT / "reports" / "_quarto.yml").read_text())
    assert config["project"]["type"] == "website"
    assert config["project"]["output-dir"] == "_site"
    assert config["execute"]["enabled"] is False
    assert config["format"]["html"]["echo"] is False
    render = config["project"]["render"]
    assert "index.qmd" in render and "executed/*.ipynb" in render
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    # the index links to every notebook's rendered page
    index = (ROOT / "reports" / "index.qmd").read_text()
    for name in notebooks:
        assert f"(executed/{name})" in index, name


def test_qmd_to_html_rewrites_links_and_drops_quarto_syntax() -> None:
    meta, body = qmd_to_html(
        '---\ntitle: "T"\n---\n\nSee [a](executed/01_a.ipynb#fig-x) and [b](findings/b.qmd), '
        "[web](https://example.org/x.ipynb).\n\n{{< embed x.ipynb#fig-y >}}\n\n"
        "::: {.callout-note}\nNote text\n:::\n"
    )
    assert meta == {"title": "T"}
    assert 'href="executed/01_a.html#fig-x"' in body
    assert 'href="findings/b.html"' in body
    assert 'href="https://example.org/x.ipynb"' in body
    assert "{{<" not in body and ":::" not in body and "Note text" in body


def test_failed_render_leaves_the_published_site(tmp_path: Path) -> None:
    for sub in ("notebooks", "reports/executed", "reports/_site"):
        (tmp_path / sub).mkdir(parents=True)
    paths = Paths.from_root(tmp_path)
    (paths.site / "index.html").write_text("old site")
    (paths.notebooks / "01_x.ipynb").write_text("{}")
    (paths.executed / "01_x.ipynb").write_text("not a notebook")
    with pytest.raises(Exception):  # noqa: B017 - nbformat raises its own error types
        render_site(paths, renderer="nbconvert", log=lambda _: None)
    assert (paths.site / "index.html").read_text() == "old site"
    assert not list(paths.reports.glob(".site-build-*"))


def test_publish_swaps_whole_folders(tmp_path: Path) -> None:
    site, build = tmp_path / "_site", tmp_path / "build"
    site.mkdir()
    (site / "stale.html").write_text("x")
    build.mkdir()
    (build / "index.html").write_text("new")
    publish(build, site)
    assert sorted(p.name for p in site.iterdir()) == ["index.html"]
    assert not build.exists() and not list(tmp_path.glob("_site.old-*"))


def test_quarto_renderer_requested_without_quarto_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="quarto is not on PATH"):
        render_site(Paths.from_root(tmp_path), renderer="quarto")
