"""The real notebooks through the real pipeline, with the small parameters, rendered by the
nbconvert fallback: pages exist, carry their figures with plotly.js inline (offline), and show
neither code nor the injected parameters."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from research.config import Paths
from research.pipeline.runner import discover, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
# figures each notebook must draw (02: two symbols' regime strips, agreement, transitions,
# share of time, snapshot counts)
# 03: equity, a stress heatmap per market, walk-forward; 04: equity, two stress heatmaps, wf
FIGURES = {
    "01_market_data": 3,
    "02_market_regimes": 6,
    "03_regime_multiplier_grid": 4,
    "04_portfolio_limits_grid": 4,
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "data" / "sample", root / "data" / "sample")
    (root / "reports").mkdir()
    for f in ("index.qmd", "_quarto.yml"):
        shutil.copy(ROOT / "reports" / f, root / "reports" / f)
    paths = Paths.from_root(root)
    result = run_pipeline(
        paths, params_file=paths.params / "small.yaml", renderer="nbconvert", log=print
    )
    assert result.ok, [o.describe() for o in result.failures]
    return paths


def test_every_notebook_has_a_page_with_its_figures(rendered: Paths) -> None:
    names = [p.stem for p in discover(rendered)]
    assert set(FIGURES) <= set(names)
    for name in names:
        page = (rendered.site / "executed" / f"{name}.html").read_text()
        assert page.count('class="plotly-graph-div"') == FIGURES.get(name, 0), name
        # plotly.js is embedded once, inline (no CDN script tag for it), so figures draw offline
        assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", page)) == 1
        assert not re.search(r'<script[^>]+src="[^"]*plot(ly)?[^"]*\.js"', page)
        assert "require.min.js" not in page  # require.js would capture plotly.js as AMD module
        # no input cells, no parameters (injected or default)
        assert "injected-parameters" not in page
        assert "load_bars(" not in page and "proxy_holdout_start" not in page


def test_market_data_page_reports_the_proxy_fit_and_coverage(rendered: Paths) -> None:
    page = (rendered.site / "executed" / "01_market_data.html").read_text()
    assert "Market data" in page  # title from the notebook's front matter
    assert "out-of-sample" in page and "in-sample" in page
    assert "2013-01-02" in page  # small parameters: bars start in 2013
    index = (rendered.site / "index.html").read_text()
    assert 'href="executed/01_market_data.html"' in index


def test_market_regimes_page_shows_every_model_and_the_snapshot(rendered: Paths) -> None:
    page = (rendered.site / "executed" / "02_market_regimes.html").read_text()
    for model in ("vix_trend", "vol_ratio", "bull_bear_vol", "tags", "markov"):
        assert model in page
    assert "vol_regime_summary" not in page  # shown as a chart and badges, not raw JSON
    assert re.search(r">\s*[LNHC]\s*</td>", page)  # an L/N/H/C badge cell
    assert "kappa_ci_low" in page and "expected_duration" in page
    assert "CORE" in page and "ALT-EXT" in page  # the sizing table


def test_grid_pages_state_verdicts_and_write_summaries(rendered: Paths) -> None:
    import json

    for name, benchmark in (
        ("03_regime_multiplier_grid", "flat"),
        ("04_portfolio_limits_grid", "wide_open"),
    ):
        page = (rendered.site / "executed" / f"{name}.html").read_text()
        assert "value out of sample" in page  # the verdict sentence
        assert "SPA p" in page and "DSR" in page and "PBO" in page
        summary = json.loads((rendered.reports / "summaries" / f"{name}.json").read_text())
        assert summary["benchmark"] == benchmark and summary["per_tickers"]
        row = summary["per_tickers"][0]
        assert 0 <= row["oos_spa_p"] <= 1 and row["verdict"].endswith(f"PBO {row['oos_pbo']:.2f}")
