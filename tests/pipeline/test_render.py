"""Site rendering: the Quarto project file, the nbconvert fallback's index, atomic publishing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from research.config import Paths
from research.pipeline.render import publish, qmd_to_html, render_site, strip_cdn_scripts

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


# what Quarto 1.7 writes into every notebook page with an HTML output (core/jupyter/widgets.ts)
QUARTO_HEAD = (
    '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js" '
    'integrity="sha512-c3Nl8+7g" crossorigin="anonymous"></script>\n'
    '<script src="https://cdnjs.cloudflare.com/ajax/libs/jquery/3.5.1/jquery.min.js" '
    'integrity="sha512-bLT0Qm9V" crossorigin="anonymous" data-relocate-top="true"></script>\n'
    "<script type=\"application/javascript\">define('jquery', [],function() "
    "{return window.jQuery;})</script>\n"
)


def test_quarto_cdn_scripts_are_stripped_and_nothing_else() -> None:
    own = '<script src="../assets/plotly.min.js"></script>'
    page = f"<head><title>t</title>\n{QUARTO_HEAD}{own}</head>"
    assert strip_cdn_scripts(page) == f"<head><title>t</title>\n{own}</head>"
    assert strip_cdn_scripts(own) == own


def test_the_quarto_theme_requests_no_web_font() -> None:
    config = yaml.safe_load((ROOT / "reports" / "_quarto.yml").read_text())
    theme = config["format"]["html"]["theme"]
    assert theme[0] == "cosmo" and (ROOT / "reports" / theme[1]).is_file()
    assert "$web-font-path: false;" in (ROOT / "reports" / theme[1]).read_text()


def test_long_fallback_pages_get_a_contents_list() -> None:
    from research.pipeline.render import CONTENTS_MIN_SECTIONS, with_contents

    heads = "".join(
        f'<h2 id="S-{i}">Section &amp; {i}<a class="anchor-link" href="#S-{i}">¶</a></h2>'
        for i in range(CONTENTS_MIN_SECTIONS)
    )
    page = f"<h1>T</h1><!--rl-contents-->{heads}"
    out = with_contents(page)
    assert '<nav class="rl-contents"><b>On this page</b><ul>' in out
    assert '<li><a href="#S-0">Section &amp; 0</a></li>' in out
    assert out.index("rl-contents") < out.index('<h2 id="S-0"')
    short = "<h1>T</h1><!--rl-contents-->" + heads.split("</h2>")[0] + "</h2>"
    assert with_contents(short) == short.replace("<!--rl-contents-->", "")


def test_fallback_index_lists_each_page_once(tmp_path: Path) -> None:
    from research.pipeline.render import Page, index_page

    paths = Paths.from_root(tmp_path)
    paths.reports.mkdir(parents=True)
    (paths.reports / "index.qmd").write_text(
        "---\ntitle: Lab\n---\n\n- [Market data](executed/01_market_data.ipynb): bars.\n"
    )
    pages = [
        Page("executed/01_market_data.html", "Market data", None),
        Page("executed/09_mine.html", "My page", "added by a parameters file"),
    ]
    html = index_page(paths, pages)
    assert html.count('href="executed/01_market_data.html"') == 2  # the text and the nav bar
    assert html.count('href="executed/09_mine.html"') == 2  # nav bar and "More pages"
    assert "<h2>More pages</h2>" in html


def test_the_glossary_is_a_page_of_both_renders(tmp_path: Path) -> None:
    from research.pipeline.render import extra_pages, qmd_to_html, render_nbconvert

    config = yaml.safe_load((ROOT / "reports" / "_quarto.yml").read_text())
    assert "glossary.qmd" in config["project"]["render"]
    assert {"href": "glossary.qmd", "text": "Glossary"} in config["website"]["navbar"]["left"]
    text = (ROOT / "reports" / "glossary.qmd").read_text()
    _, body = qmd_to_html(text)
    terms = set(re.findall(r"<dt>(.*?)</dt>", body))
    for word in ("PSI", "ECE", "DSR", "PBO", "SPA", "Overshoot", "Walk-forward", "untested"):
        assert any(word in t for t in terms), word
    paths = Paths.from_root(tmp_path)
    paths.reports.mkdir(parents=True)
    (paths.reports / "glossary.qmd").write_text(text)
    (paths.reports / "index.qmd").write_text("---\ntitle: Lab\n---\n\nHello.\n")
    assert extra_pages(paths) == [paths.reports / "glossary.qmd"]
    out = tmp_path / "site"
    render_nbconvert(paths, out, log=lambda _m: None)
    page = (out / "glossary.html").read_text()
    assert "<h1>Glossary</h1>" in page and "<dt>Credit spread</dt>" in page
    assert '<a href="glossary.html">Glossary</a>' in (out / "index.html").read_text()
