"""Render the executed notebooks into the HTML site ``reports/_site``.

With Quarto on PATH, ``quarto render reports`` renders the website project (``reports/
_quarto.yml``; execution disabled, so the executed notebooks are rendered as they are). Without
it, an nbconvert fallback writes the same pages: ``executed/NAME.html`` per notebook (no input
cells, no injected-parameters cell), ``index.html`` from ``index.qmd``, the Markdown pages
(``reports/*.qmd``, the glossary) and the Guide (``reports/guide/*.qmd`` into ``guide/*.html``),
with a navigation bar.

Either way the site is built in a temporary folder under ``reports/`` and swapped in only when
complete, so a failed render leaves the published site intact.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from research._io import atomic_write, os_error_text
from research.config import Paths
from research.exceptions import InputError, OutputError
from research.pipeline.manifest import code_digest, file_digest, tree_digest

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "regime_lab"
REMOVED_TAGS = ("injected-parameters", "remove-cell")
_SHORTCODE = re.compile(r"\{\{<.*?>\}\}")
_INCLUDE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
_CAPTION = re.compile(r"^: (.+?)[ \t]*\{#(tbl|fig)-[\w-]+[^}]*\}[ \t]*$", flags=re.M)
_FENCED_DIV = re.compile(r"^:::.*$", flags=re.M)
MARKDOWN_PLUGINS = ("table", "def_list", "strikethrough", "footnotes")
"""Markdown the fallback's pages (``index.qmd``, the glossary) use: Pandoc's tables, definition
lists, strike-through and footnotes (mistune plugins)."""
_LOCAL_LINK = re.compile(r"\]\(((?!https?:)[^)#\s]+)\.(ipynb|qmd)(#[^)]*)?\)")


def site_sources(paths: Paths) -> list[Path]:
    """Files the site is rendered from: the Quarto project files and executed notebooks."""
    files = [p for p in paths.reports.glob("*.qmd")] + [p for p in paths.reports.glob("*.yml")]
    files += list(paths.reports.glob("_*.md"))  # included pages (the findings)
    files += list((paths.reports / "findings").glob("*.qmd"))
    files += guide_pages(paths) + list((paths.reports / GUIDE / "benchmarks").glob("*.md"))
    files += list((paths.reports / "theme").glob("*.scss"))  # the Quarto theme's overrides
    files += published_notebooks(paths)
    return [f for f in files if f.is_file()]


def site_digest(paths: Paths) -> str:
    """Digest of the site's inputs and of the renderer code (re-render when it changes)."""
    engine = "quarto" if shutil.which("quarto") else "nbconvert"
    text = tree_digest(site_sources(paths), paths.reports) + engine + code_digest()
    return hashlib.sha256(text.encode()).hexdigest()


def published_notebooks(paths: Paths) -> list[Path]:
    """Executed notebooks whose source still exists (the notebook, and for a named parameter
    set its parameters file), in name order."""
    from research.pipeline.variants import published_keys

    keys = published_keys(paths)
    return sorted(p for p in paths.executed.glob("*.ipynb") if p.stem in keys)


def render_site(paths: Paths, *, renderer: str = "auto", log: Callable[[str], None] = print) -> str:
    """Render ``reports/`` into ``reports/_site`` (atomically swapped in).

    Parameters
    ----------
    renderer
        ``auto`` (Quarto when ``quarto`` is on PATH, else nbconvert), ``quarto`` or
        ``nbconvert``.

    Returns
    -------
    str
        The renderer used.
    """
    if renderer not in ("auto", "quarto", "nbconvert"):
        raise InputError(f"--renderer must be one of auto, quarto, nbconvert, got {renderer}")
    quarto = shutil.which("quarto")
    use = "quarto" if renderer == "quarto" or (renderer == "auto" and quarto) else "nbconvert"
    if use == "quarto" and quarto is None:
        raise RuntimeError("renderer 'quarto' requested but quarto is not on PATH")
    build: Path | None = None
    try:
        stage_assets(paths.reports)
        build = Path(tempfile.mkdtemp(prefix=".site-build-", dir=paths.reports))
        build.chmod(0o755)  # mkdtemp makes it owner-only; the published site is world-readable
        if use == "quarto":
            assert quarto is not None
            render_quarto(paths, build, quarto)
        else:
            render_nbconvert(paths, build, log)
            stage_assets(build)
        if not (build / "index.html").is_file():
            raise RuntimeError(f"{use} render produced no index.html in {build}")
        publish(build, paths.site)
    except BaseException as exc:
        if build is not None:
            shutil.rmtree(build, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            where = exc.filename or build or paths.reports
            raise OutputError(
                f"{os_error_text(exc, where)}; the published site is unchanged"
            ) from exc
        raise
    return use


def stage_assets(folder: Path) -> Path:
    """Copy the installed plotly.js to ``folder/assets/plotly.min.js`` (once per site; the pages
    load it from there, offline). Returns the copy."""
    from research.plotting.site import PLOTLY_ASSET, plotly_js_file

    source, target = plotly_js_file(), folder / PLOTLY_ASSET
    if not target.is_file() or file_digest(target) != file_digest(source):
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp), fsync=False)
    return target


def publish(build: Path, site: Path) -> None:
    """Swap a finished build folder in place of the published site (a Ctrl-C is held back
    until the swap is done, so the site is either the old one or the new one)."""
    from research.pipeline.interrupts import interrupt_deferred

    old = None
    with interrupt_deferred():
        if site.exists():
            old = site.with_name(f"{site.name}.old-{build.name}")
            site.rename(old)
        try:
            build.rename(site)
        except BaseException:
            if old is not None:
                old.rename(site)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def render_quarto(paths: Paths, out: Path, quarto: str) -> None:
    """``quarto render reports --output-dir OUT`` (execution is disabled in ``_quarto.yml``),
    then :func:`strip_cdn_scripts` on every page."""
    cmd = [quarto, "render", str(paths.reports), "--output-dir", str(out), "--no-execute"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"quarto render failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        stripped = strip_cdn_scripts(text)
        if stripped != text:
            page.write_text(stripped, encoding="utf-8")


_CDN_SCRIPT = re.compile(
    r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/(?:require\.js|jquery)/[^"]*"[^>]*>'
    r"</script>\s*"
)
_JQUERY_DEFINE = re.compile(
    r'<script type="application/javascript">define\(\'jquery\', \[\],function\(\) '
    r"\{return window\.jQuery;\}\)</script>\s*"
)


def strip_cdn_scripts(text: str) -> str:
    """A Quarto page without the require.js and jQuery it loads from a CDN.

    Quarto adds both (and a ``define('jquery')`` shim) to every notebook page with an HTML
    output, for notebook "widgets" that expect them (``core/jupyter/widgets.ts``); no page of
    the site uses either (plotly.js is the site's own file, loaded without AMD), so the site
    requests nothing from the network. The page is built in a temporary folder that only
    this process writes (``render_site``), so it is rewritten in place.
    """
    return _JQUERY_DEFINE.sub("", _CDN_SCRIPT.sub("", text))


@dataclass(frozen=True)
class Page:
    """A page of the fallback site."""

    href: str
    title: str
    subtitle: str | None


def notebook_front_matter(nb: object) -> dict[str, object]:
    """YAML front matter from a notebook's first raw cell (Quarto's convention), or {}."""
    import yaml

    cells = getattr(nb, "cells", [])
    if cells and cells[0].cell_type == "raw":
        text = cells[0].source.strip()
        if text.startswith("---"):
            body = text.strip("-\n ")
            try:
                data = yaml.safe_load(body)
            except yaml.YAMLError:
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def _title(nb: object, fallback: str) -> tuple[str, str | None]:
    meta = notebook_front_matter(nb)
    title = str(meta.get("title") or fallback)
    subtitle = meta.get("subtitle")
    return title, str(subtitle) if subtitle else None


def render_nbconvert(paths: Paths, out: Path, log: Callable[[str], None] = print) -> None:
    """The fallback renderer: nbconvert pages for the executed notebooks plus an index page."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    notebooks = published_notebooks(paths)
    loaded = {p: nbformat.read(str(p), as_version=4) for p in notebooks}
    for nb in loaded.values():  # Quarto's table and figure captions, as caption paragraphs
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _caption_html(cell.source)
            elif cell.cell_type == "code" and cell.get("outputs"):
                caption = cell_caption(cell.source)
                if caption is not None:
                    cell.outputs.append(
                        nbformat.v4.new_output(
                            "display_data",
                            data={"text/html": f'<p class="rl-caption">{caption}</p>'},
                        )
                    )
    pages = [Page(f"executed/{p.stem}.html", *_title(loaded[p], p.stem)) for p in notebooks]
    extras = {
        p: qmd_to_html(p.read_text(encoding="utf-8"), paths.reports) for p in extra_pages(paths)
    }
    extra = [
        Page(f"{p.stem}.html", str(meta.get("title", p.stem)), meta.get("subtitle"))  # type: ignore[arg-type]
        for p, (meta, _) in extras.items()
    ]
    guide = {
        p: qmd_to_html(p.read_text(encoding="utf-8"), p.parent, heading_ids=True)
        for p in guide_pages(paths)
    }
    guide_nav = [
        Page(f"{GUIDE}/{p.stem}.html", str(meta.get("title", p.stem)), meta.get("subtitle"))  # type: ignore[arg-type]
        for p, (meta, _) in guide.items()
    ]
    top = [Page(f"{GUIDE}/index.html", "Guide", None)] if guide_nav else []
    top += extra
    nav = [{"href": pg.href, "title": pg.title} for pg in [*top, *pages]]

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVED_TAGS)
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        config=config,
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        exclude_input=True,
        exclude_raw=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    (out / "executed").mkdir(parents=True, exist_ok=True)
    for path, page in zip(notebooks, pages, strict=True):
        resources = {
            "metadata": {"name": page.title},
            "regime_lab": {
                "root": "../",
                "nav": nav,
                "href": page.href,
                "title": page.title,
                "subtitle": page.subtitle,
                "site_title": "Regime Lab",
            },
        }
        body, _ = exporter.from_notebook_node(loaded[path], resources=resources)
        (out / page.href).write_text(with_contents(body), encoding="utf-8")
        log(f"    page {page.href}")
    (out / "index.html").write_text(index_page(paths, [*top, *pages]), encoding="utf-8")
    for page, (_, body) in zip(extra, extras.values(), strict=True):
        text = simple_page(page.title, body, [*top, *pages], page.subtitle)
        (out / page.href).write_text(text, encoding="utf-8")
        log(f"    page {page.href}")
    if guide_nav:
        (out / GUIDE).mkdir(parents=True, exist_ok=True)
    for page, (_, body) in zip(guide_nav, guide.values(), strict=True):
        text = simple_page(
            page.title,
            body,
            [*top, *pages],
            page.subtitle,
            root="../",
            side=guide_nav,
            current=page,
        )
        (out / page.href).write_text(text, encoding="utf-8")
        log(f"    page {page.href}")


_H2 = re.compile(r'<h2 id="([^"]+)"[^>]*>(.*?)</h2>', flags=re.S)
_TAG = re.compile(r"<[^>]+>")
CONTENTS_MIN_SECTIONS = 4
"""A fallback page with at least this many sections gets a contents list under its title."""


def with_contents(page: str) -> str:
    """A fallback page with a contents list of its sections (``<h2>``) under its title, when it
    has at least ``CONTENTS_MIN_SECTIONS`` (Quarto's pages have their own, on the right)."""
    marker = "<!--rl-contents-->"
    found = [
        (anchor, html.unescape(_TAG.sub("", text)).replace("¶", "").strip())
        for anchor, text in _H2.findall(page)
    ]
    if len(found) < CONTENTS_MIN_SECTIONS:
        return page.replace(marker, "")
    items = "".join(
        f'<li><a href="#{html.escape(a, quote=True)}">{html.escape(t)}</a></li>' for a, t in found
    )
    contents = f'<nav class="rl-contents"><b>On this page</b><ul>{items}</ul></nav>'
    return page.replace(marker, contents, 1)


_CELL_CAPTION = re.compile(r"^#\|\s*(fig|tbl)-cap:\s*(.+?)\s*$", flags=re.M)


def cell_caption(source: str) -> str | None:
    """``Figure: …`` / ``Table: …`` from a code cell's ``#| fig-cap`` / ``#| tbl-cap`` option
    (what Quarto shows), HTML-escaped; None without one."""
    import yaml

    match = _CELL_CAPTION.search(source)
    if match is None:
        return None
    try:
        text = yaml.safe_load(match.group(2))
    except yaml.YAMLError:
        text = match.group(2)
    kind = "Figure" if match.group(1) == "fig" else "Table"
    return f"{kind}: {html.escape(str(text))}"


def _caption_html(text: str) -> str:
    """Quarto caption lines (``: text {#tbl-…}``) as caption paragraphs."""
    return _CAPTION.sub(
        lambda m: (
            f'<p class="rl-caption">{"Table" if m.group(2) == "tbl" else "Figure"}: '
            f"{html.escape(m.group(1))}</p>"
        ),
        text,
    )


_HEADING_ATTRIBUTES = re.compile(r"\s*\{([^{}]*)\}\s*$")


def heading_id(text: str) -> str:
    """The identifier Pandoc (so Quarto) gives a heading: its text without markup, only letters,
    digits, ``_``, ``-`` and ``.`` kept, spaces as hyphens, lower case, from the first letter
    on (``section`` when nothing is left)."""
    plain = html.unescape(_TAG.sub("", text)).lower()
    kept = "".join(c for c in plain if c.isalnum() or c in "_-." or c.isspace())
    joined = re.sub(r"\s+", "-", kept.strip())
    start = next((i for i, c in enumerate(joined) if c.isalpha()), len(joined))
    return joined[start:] or "section"


def _heading_renderer() -> object:
    """A mistune HTML renderer that gives headings Pandoc's identifiers (an explicit
    ``{#id}`` wins; a repeated identifier gets ``-1``, ``-2`` …, as in Pandoc), so links to
    ``page.html#section`` work in both renders."""
    import mistune

    class Renderer(mistune.HTMLRenderer):
        seen: dict[str, int]

        def heading(self, text: str, level: int, **attrs: object) -> str:
            match = _HEADING_ATTRIBUTES.search(text)
            explicit = None
            if match:
                text = text[: match.start()]
                explicit = next((a[1:] for a in match.group(1).split() if a.startswith("#")), None)
            ident = explicit or heading_id(text)
            if explicit is None:
                count = self.seen.get(ident, 0)
                self.seen[ident] = count + 1
                ident = f"{ident}-{count}" if count else ident
            return f'<h{level} id="{html.escape(ident, quote=True)}">{text}</h{level}>\n'

    renderer = Renderer(escape=False)
    renderer.seen = {}
    return renderer


def qmd_to_html(
    text: str, base: Path | None = None, *, heading_ids: bool = False
) -> tuple[dict[str, object], str]:
    """Front matter and HTML body of a ``.qmd`` page (``include`` shortcodes resolved against
    ``base``, other shortcodes dropped, table captions kept, links to .ipynb/.qmd pointed at the
    rendered .html, as Quarto does; with ``heading_ids``, headings get Pandoc's identifiers, so
    ``page.html#section`` links work, as the Guide's do)."""
    import mistune
    import yaml

    markdown = mistune.create_markdown(
        escape=False,
        renderer=_heading_renderer() if heading_ids else "html",  # type: ignore[arg-type]
        plugins=list(MARKDOWN_PLUGINS),
    )
    meta: dict[str, object] = {}
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, flags=re.S)
    if match:
        loaded = yaml.safe_load(match.group(1))
        meta = loaded if isinstance(loaded, dict) else {}
        text = text[match.end() :]

    def include(m: re.Match[str]) -> str:
        target = (base or Path.cwd()) / m.group(1)
        return target.read_text(encoding="utf-8") if target.is_file() else ""

    text = _caption_html(_INCLUDE.sub(include, text))
    text = _FENCED_DIV.sub("", _SHORTCODE.sub("", text))
    text = _LOCAL_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(3) or ''})", text)
    body = str(markdown(text))
    # a pipe escaped inside a table cell's code span (Pandoc drops the backslash there too)
    body = re.sub(r"<code>[^<]*</code>", lambda m: m.group(0).replace("\\|", "|"), body)
    return meta, body


GUIDE = "guide"
"""The Guide's folder under ``reports/`` (and ``_site/``): the manual, one page per subject."""


def guide_pages(paths: Paths) -> list[Path]:
    """The Guide's pages, ``reports/guide/*.qmd`` (files whose name starts with ``_`` are not
    pages, as in Quarto), in the order of the Quarto sidebar's "Guide" section; pages it does not
    list follow, the index first, then in name order."""
    found = [p for p in (paths.reports / GUIDE).glob("*.qmd") if not p.name.startswith("_")]
    order = _sidebar_order(paths.reports / "_quarto.yml", "Guide")
    return sorted(
        found,
        key=lambda p: (
            order.index(p.name) if p.name in order else len(order),
            p.name != "index.qmd",
            p.name,
        ),
    )


def _sidebar_order(config: Path, section: str) -> list[str]:
    """File names listed in the Quarto sidebar's ``section`` ([] when there is none)."""
    import yaml

    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
        sections = loaded["website"]["sidebar"]["contents"]
        for entry in sections:
            if isinstance(entry, dict) and entry.get("section") == section:
                return [Path(str(item)).name for item in entry.get("contents", [])]
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return []
    return []


def extra_pages(paths: Paths) -> list[Path]:
    """The site's pages written in Markdown besides the index (``reports/*.qmd``: the
    glossary), in name order."""
    return sorted(p for p in paths.reports.glob("*.qmd") if p.name != "index.qmd")


def index_page(paths: Paths, pages: list[Page]) -> str:
    """The fallback index: ``reports/index.qmd`` plus links to the rendered notebooks it does not
    link itself."""
    index_qmd = paths.reports / "index.qmd"
    meta, body = (
        qmd_to_html(index_qmd.read_text(encoding="utf-8"), paths.reports)
        if index_qmd.exists()
        else ({}, "")
    )
    # the index text already links most pages: list only the ones it does not (a notebook the
    # user added), so no page is listed twice
    unlisted = [pg for pg in pages if f'href="{pg.href}"' not in body]
    links = "\n".join(
        f'<li><a href="{pg.href}">{html.escape(pg.title)}</a>'
        + (f" — {html.escape(pg.subtitle)}" if pg.subtitle else "")
        + "</li>"
        for pg in unlisted
    )
    more = f"<h2>More pages</h2>\n<ul>\n{links}\n</ul>" if unlisted else ""
    return simple_page(str(meta.get("title", "Regime Lab")), f"{body}\n{more}", pages)


def simple_page(
    title: str,
    body: str,
    pages: list[Page],
    subtitle: str | None = None,
    *,
    root: str = "",
    side: list[Page] | None = None,
    current: Page | None = None,
) -> str:
    """A fallback page from HTML ``body`` (the index, the glossary, a Guide page) with the
    site's navigation bar (``pages``, hrefs from the site's root; ``root`` leads from the page
    to it, ``../`` for a Guide page), a sidebar listing ``side`` (the Guide's pages), and, when
    long, a contents list."""

    def link(pg: Page, where: str) -> str:
        mark = ' class="rl-current"' if current is not None and pg.href == current.href else ""
        return f'<a href="{root}{pg.href}"{mark}>{html.escape(pg.title)}</a>{where}'

    nav = "".join(link(pg, "") for pg in pages)
    sub = f'<p class="rl-subtitle">{html.escape(subtitle)}</p>' if subtitle else ""
    aside = (
        '<aside class="rl-side"><b>Guide</b><ul>'
        + "".join(f"<li>{link(pg, '')}</li>" for pg in side)
        + "</ul></aside>"
        if side
        else ""
    )
    return with_contents(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 0; color: #222; }}
 nav.rl-nav {{ padding: 0.6rem 1.2rem; background: #1f3b5a; }}
 nav.rl-nav a {{ color: #fff; margin-right: 1.2rem; text-decoration: none; }}
 main {{ max-width: 960px; min-width: 0; margin: 0 auto; padding: 1rem; line-height: 1.5; }}
 div.rl-page {{ display: flex; align-items: flex-start; }}
 aside.rl-side {{ flex: 0 0 13rem; padding: 1rem 0.8rem; font-size: 0.9rem; position: sticky;
   top: 0; max-height: 100vh; overflow-y: auto; border-right: 1px solid #ddd; }}
 aside.rl-side ul {{ list-style: none; padding-left: 0; margin: 0.4rem 0 0 0; }}
 aside.rl-side li {{ margin: 0.3rem 0; }}
 aside.rl-side a {{ color: #1f3b5a; text-decoration: none; }}
 a.rl-current {{ font-weight: 700; text-decoration: underline !important; }}
 table {{ border-collapse: collapse; margin: 0.5rem 0; display: block; overflow-x: auto; }}
 td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }}
 pre {{ background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }}
 pre code {{ background: none; padding: 0; }}
 .rl-caption {{ color: #555; font-size: 0.9em; margin-top: 0.2rem; }}
 .rl-subtitle {{ color: #555; margin-top: -0.5rem; }}
 code {{ background: #f3f3f3; padding: 1px 3px; }}
 dt {{ font-weight: 600; margin-top: 0.7rem; }}
 dd {{ margin-left: 1.5rem; }}
 nav.rl-contents {{ font-size: 0.9rem; border-left: 3px solid #1f3b5a; padding: 0.2rem 0.8rem; }}
 nav.rl-contents ul {{ margin: 0.3rem 0 0 0; padding-left: 1.1rem; columns: 2; }}
</style></head>
<body>
<nav class="rl-nav"><a href="{root}index.html"><b>Regime Lab</b></a>{nav}</nav>
<div class="rl-page">{aside}
<main>
<h1>{html.escape(title)}</h1>
{sub}
<!--rl-contents-->
{body}
<p><small>Rendered with the nbconvert fallback (Quarto was not found on PATH).</small></p>
</main>
</div>
</body></html>
""")
