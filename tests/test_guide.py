"""The README as a front door and the Guide (``reports/guide/``) as the manual: the generated
command-line reference is current, every relative link resolves (in the sources and in the
fallback's rendered pages), the Guide is part of both renders, and the performance page's
figures come from the benchmarks' recorded fragments."""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from research.config import Paths
from research.pipeline.render import heading_id, qmd_to_html, render_nbconvert

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
GUIDE = REPORTS / "guide"
GENERATOR = GUIDE / "_make_cli_reference.py"
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", flags=re.M)
_EXPLICIT_ID = re.compile(r"\{#([\w.-]+)[^}]*\}\s*$")
_HREF = re.compile(r'<a\b[^>]*\bhref="([^"]*)"')
_ID = re.compile(r'\bid="([^"]+)"')


def guide_sources() -> list[Path]:
    return sorted(p for p in GUIDE.glob("*.qmd") if not p.name.startswith("_"))


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_make_cli_reference", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in reports/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = keep
    return module


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and code spans (where ``](`` is not a link)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Relative link targets of a Markdown text (web, mail and in-site absolute links left out)."""
    found = [m.group(1) for m in _MD_LINK.finditer(_prose(text))]
    return [t for t in found if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("/")]


def anchors(path: Path) -> set[str]:
    """The identifiers Quarto gives the headings of a Markdown page (explicit ``{#id}`` or
    Pandoc's automatic ones, repeats numbered)."""
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for _, title in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        explicit = _EXPLICIT_ID.search(title)
        if explicit:
            ids.add(explicit.group(1))
            continue
        ident = heading_id(html.escape(title.replace("`", ""), quote=False))
        count = seen.get(ident, 0)
        seen[ident] = count + 1
        ids.add(f"{ident}-{count}" if count else ident)
    return ids


def source_of(target: Path) -> Path:
    """The repository file a link stands for: a rendered notebook page
    (``reports/executed/NN_name.ipynb`` or ``.html``, a parameter set's ``NN_name--set``) is
    its source notebook (and parameters file); a rendered ``.html`` page is its ``.qmd``."""
    parts = target.resolve().relative_to(ROOT.resolve()).parts
    if parts[:2] == ("reports", "executed"):
        stem = Path(parts[-1]).stem
        notebook, _, variant = stem.partition("--")
        if variant:
            return ROOT / "notebooks" / "params" / notebook / f"{variant}.yaml"
        return ROOT / "notebooks" / f"{notebook}.ipynb"
    if target.suffix == ".html":
        return target.with_suffix(".qmd")
    return target


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """``page``'s relative links (in ``text``, default the page's own) whose file is missing, or
    whose ``#anchor`` is not a heading of the linked Markdown page."""
    bad = []
    for target in links(page.read_text(encoding="utf-8") if text is None else text):
        file_part, _, anchor = target.partition("#")
        linked = source_of(page.parent / file_part) if file_part else page
        if not linked.exists():
            bad.append(f"{page.relative_to(ROOT)}: {target} (no {linked.relative_to(ROOT)})")
        elif anchor and linked.suffix in (".qmd", ".md") and anchor not in anchors(linked):
            bad.append(f"{page.relative_to(ROOT)}: {target} (no heading #{anchor})")
    return bad


def test_cli_reference_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.qmd"
    _generator().main([str(fresh)])
    committed = (GUIDE / "cli.qmd").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == committed, (
        "reports/guide/cli.qmd is out of date with the command line: regenerate it with "
        "`.venv/bin/python reports/guide/_make_cli_reference.py`"
    )


def test_cli_reference_lists_every_command() -> None:
    import typer.main

    from research.cli import app

    text = (GUIDE / "cli.qmd").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        assert f"{{#research-{name}}}" in text, name
        for sub in getattr(command, "commands", {}):
            assert f"{{#research-{name}-{sub}}}" in text, f"{name} {sub}"
    assert "| <code>--wait</code> | option |" in text  # an option of `research run`, as a row


def test_every_relative_link_resolves() -> None:
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *guide_sources()]
    assert len(guide_sources()) >= 11
    assert [bad for page in pages for bad in broken_links(page)] == []


def test_the_link_check_finds_a_broken_link_and_a_missing_anchor() -> None:
    text = (
        "# Probe\n\n[ok](regimes.qmd#no-look-ahead), [nb](../executed/02_market_regimes.ipynb), "
        "[gone](no-such-page.qmd), [anchor](regimes.qmd#no-such-heading), "
        "[set](../executed/02_market_regimes--nasdaq.ipynb), `[code](ignored.qmd)`\n"
    )
    bad = broken_links(GUIDE / "probe.qmd", text)  # links resolve from the Guide's folder
    assert len(bad) == 3, bad
    assert "no-such-page.qmd" in bad[0] and "#no-such-heading" in bad[1] and "nasdaq" in bad[2]


def test_headings_get_the_identifiers_quarto_gives_them() -> None:
    assert heading_id("Tear sheets: why a strategy makes or loses money") == (
        "tear-sheets-why-a-strategy-makes-or-loses-money"
    )
    assert heading_id("How a layer's status is decided") == "how-a-layers-status-is-decided"
    assert (
        heading_id("<code>research run</code>: the 2 pipelines") == "research-run-the-2-pipelines"
    )
    assert heading_id("1999–2018") == "section"
    assert "troubleshooting" in anchors(GUIDE / "pipeline.qmd")
    _, body = qmd_to_html("## A b {#x}\n\n## A b\n\n## A `b`\n", heading_ids=True)
    assert re.findall(r'<h2 id="([^"]+)">', body) == ["x", "a-b", "a-b-1"]
    assert "{#x}" not in body


@pytest.fixture(scope="module")
def fallback_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fallback render of a copy of ``reports/`` (its pages and the Guide; no executed
    notebooks needed)."""
    root = tmp_path_factory.mktemp("guide_project")
    (root / "notebooks").mkdir()
    reports = root / "reports"
    reports.mkdir()
    for f in [*REPORTS.glob("*.qmd"), *REPORTS.glob("_*.md"), REPORTS / "_quarto.yml"]:
        shutil.copy(f, reports / f.name)
    shutil.copytree(GUIDE, reports / "guide", ignore=shutil.ignore_patterns("__pycache__"))
    out = root / "site"
    out.mkdir()
    render_nbconvert(Paths.from_root(root), out, log=lambda _m: None)
    return out


def broken_hrefs(site: Path, page: Path) -> list[str]:
    """Relative hrefs of a rendered page that lead nowhere in ``site`` (a notebook page that
    was not executed here counts when its source notebook exists), or to a missing anchor."""
    bad = []
    text = page.read_text(encoding="utf-8")
    for href in _HREF.findall(text):
        href = html.unescape(href)
        if re.match(r"^[a-z][a-z0-9+.-]*:", href):
            continue
        file_part, _, anchor = href.partition("#")
        target = (page.parent / file_part).resolve() if file_part else page
        where = f"{page.relative_to(site)}: {href}"
        if not target.is_relative_to(site.resolve()):
            bad.append(f"{where} (outside the site)")
        elif target.is_file():
            if anchor and anchor not in _ID.findall(target.read_text(encoding="utf-8")):
                bad.append(f"{where} (no id {anchor!r})")
        elif target.relative_to(site.resolve()).parts[0] == "executed":
            if not (ROOT / "notebooks" / f"{target.stem}.ipynb").is_file():
                bad.append(f"{where} (no notebook {target.stem})")
        else:
            bad.append(f"{where} (no file)")
    return bad


def test_fallback_guide_pages_link_only_to_pages_of_the_site(fallback_site: Path) -> None:
    pages = sorted((fallback_site / "guide").glob("*.html"))
    assert [p.stem for p in pages] == sorted(p.stem for p in guide_sources())
    assert [bad for page in pages for bad in broken_hrefs(fallback_site, page)] == []
    index = (fallback_site / "index.html").read_text(encoding="utf-8")
    assert '<a href="guide/index.html">Guide</a>' in index
    cli = (fallback_site / "guide" / "cli.html").read_text(encoding="utf-8")
    assert '<a href="../index.html"><b>Regime Lab</b></a>' in cli  # nav bar, from one level down
    assert '<aside class="rl-side">' in cli and 'id="research-run"' in cli
    assert '<a href="pipeline.html#troubleshooting">' in cli
    assert "&lt;path&gt;" in cli or "<code>--params &lt;path&gt;</code>" in cli


def test_the_site_link_check_finds_a_broken_href(fallback_site: Path) -> None:
    page = fallback_site / "guide" / "_probe.html"
    page.write_text(
        '<a href="regimes.html#no-look-ahead">ok</a><a href="../executed/02_market_regimes.html">'
        'nb</a><a href="gone.html">x</a><a href="regimes.html#nope">y</a>'
        '<a href="../../outside.html">z</a><a href="https://example.org/">web</a>',
        encoding="utf-8",
    )
    try:
        bad = broken_hrefs(fallback_site, page)
    finally:
        page.unlink()
    assert len(bad) == 3, bad
    assert "gone.html" in bad[0] and "'nope'" in bad[1] and "outside" in bad[2]


def test_the_guide_is_in_the_quarto_site_with_search() -> None:
    config = yaml.safe_load((REPORTS / "_quarto.yml").read_text(encoding="utf-8"))
    assert "guide/*.qmd" in config["project"]["render"]
    assert config["website"]["search"] is True
    assert {"href": "guide/index.qmd", "text": "Guide"} in config["website"]["navbar"]["left"]
    (section,) = [s for s in config["website"]["sidebar"]["contents"] if s["section"] == "Guide"]
    listed = [Path(p).name for p in section["contents"]]
    assert sorted(listed) == sorted(p.name for p in guide_sources())
    assert listed[0] == "index.qmd"


def test_each_guide_page_says_what_it_answers_first() -> None:
    for page in guide_sources():
        text = page.read_text(encoding="utf-8")
        body = text.split("---", 2)[2].lstrip()
        assert body.startswith("*What it answers:*"), page.name
        assert yaml.safe_load(text.split("---", 2)[1])["title"], page.name


def test_the_guide_index_lists_every_page() -> None:
    index = (GUIDE / "index.qmd").read_text(encoding="utf-8")
    for page in guide_sources():
        if page.name != "index.qmd":
            assert f"]({page.name})" in index, page.name


def test_performance_figures_come_from_the_benchmarks_fragments() -> None:
    page = (GUIDE / "performance.qmd").read_text(encoding="utf-8")
    included = re.findall(r"\{\{<\s*include\s+benchmarks/(\S+)\.md\s*>\}\}", page)
    benches = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert sorted(included) == benches
    for name in benches:
        fragment = (GUIDE / "benchmarks" / f"{name}.md").read_text(encoding="utf-8")
        recorded = fragment.startswith("*Recorded ") and "commit " in fragment
        assert recorded or "not yet recorded on this machine" in fragment, name
        source = (ROOT / "benchmarks" / f"{name}.py").read_text(encoding="utf-8")
        assert f'recorded("{name}"' in source, name


def test_the_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    for needed in ("make test", "make report", "make test-fast", "environment.yml"):
        assert needed in text, needed
    assert "data/README.md" in text and "reports/screenshots/" in text
    for page in guide_sources():
        assert f"reports/guide/{page.name}" in text or page.name == "index.qmd", page.name


def test_no_planning_document_vocabulary_in_the_guide() -> None:
    from test_vocabulary import PLANNING_REFERENCES, PLANNING_VOCABULARY

    texts = [*guide_sources(), *sorted((GUIDE / "benchmarks").glob("*.md"))]
    hits = [
        f"{p.relative_to(ROOT)}: {m.group(0)!r}"
        for p in texts
        for pattern in (PLANNING_VOCABULARY, PLANNING_REFERENCES)
        for m in pattern.finditer(p.read_text(encoding="utf-8"))
    ]
    assert hits == []
