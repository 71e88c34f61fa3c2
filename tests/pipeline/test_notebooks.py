"""The real notebooks through the real pipeline, with the small parameters, rendered by the
nbconvert fallback: pages exist, carry their figures with plotly.js loaded once for the whole
site from a local file (offline), stay light, and show neither code nor the injected
parameters."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from research.config import Paths
from research.optimize.scenarios import SCENARIOS
from research.pipeline.runner import discover, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
# figures each notebook must draw; a cell that shows one figure per market or cluster stacks
# them into one figure (one output, one caption in Quarto)
# 01: proxy fit, proxy band, price/IV, yearly; 02: regime strips (both markets), agreement,
# transitions, share of time, snapshot counts; 03: tear-sheet waterfalls and equity, OOS
# controls, permutation null, sensitivity, in-sample equity, stress heatmaps (every market); 04:
# tear-sheet waterfalls and equity, OOS controls, sensitivity, in-sample equity, two stress
# heatmaps; 05: heatmap of all agents, one for the clusters, decay; 06: uplift per tune, drift
# of the regime mix; 07: threshold sweep, reliability; 08: spread ratio, credits, pricing
# waterfalls; 09: waterfall, equity with the regime band
FIGURES = {
    "01_market_data": 4,
    "02_market_regimes": 5,
    "03_regime_multiplier_grid": 7,
    "04_portfolio_limits_grid": 7,
    "05_regime_attribution": 3,
    "06_tune_attribution": 2,
    "07_llm_threshold_calibration": 2,
    "08_option_chains": 4,
    "09_strategy_explained": 2,
    "10_paper_tracking": 1,
}


def test_every_notebook_has_a_page_with_its_figures(rendered: Paths) -> None:
    names = [p.stem for p in discover(rendered)]
    assert set(FIGURES) <= set(names)
    for name in names:
        page = (rendered.site / "executed" / f"{name}.html").read_text()
        assert page.count('class="plotly-graph-div"') == FIGURES.get(name, 0), name
        # plotly.js is not inlined: one script tag loads the site's shared local copy
        assert not re.findall(r"plotly\.js v\d+\.\d+\.\d+", page)
        sources = re.findall(r'<script[^>]+src="([^"]*plot(?:ly)?[^"]*\.js)"', page)
        assert sources == (["../assets/plotly.min.js"] if FIGURES.get(name) else sources), name
        assert "cdn" not in " ".join(sources)
        assert len(page.encode()) < 2_000_000, (name, len(page.encode()))
        assert "require.min.js" not in page  # require.js would capture plotly.js as AMD module
        # no input cells, no parameters (injected or default)
        assert "injected-parameters" not in page
        assert "load_bars(" not in page and "proxy_holdout_start" not in page


def test_the_site_ships_plotly_js_once(rendered: Paths) -> None:
    from research.plotting.site import plotly_js_file

    shared = rendered.site / "assets" / "plotly.min.js"
    assert shared.read_bytes() == plotly_js_file().read_bytes()
    assert len(list(rendered.site.rglob("plotly*.js"))) == 1


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
    assert "kappa ci low" in page and "expected duration" in page  # headers break at "_"
    assert "0.160559" not in page and not re.search(r"<td[^>]*>\s*\d+\.\d{5,}", page)
    assert "CORE" in page and "ALT-EXT" in page  # the sizing table


def _p(p: float | None) -> str:
    return "p n/a" if p is None else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")


def test_grid_pages_state_verdicts_that_follow_from_their_numbers(rendered: Paths) -> None:
    import json

    for name, benchmark, permutation in (
        ("03_regime_multiplier_grid", "flat", True),
        ("04_portfolio_limits_grid", "wide_open", False),
    ):
        page = (rendered.site / "executed" / f"{name}.html").read_text()
        summary = json.loads((rendered.reports / "summaries" / f"{name}.json").read_text())
        assert summary["benchmark"] == benchmark and summary["per_tickers"]
        for row in summary["per_tickers"]:
            text, sharpe = row["verdict"], row["oos_sharpe_walk_forward"]
            controls = row["controls"]
            assert controls["cash"]["oos_sharpe"] == 0.0
            # the numbers in the sentence are the summary's numbers
            assert f"Sharpe (excess over cash) of {sharpe:.2f}" in text
            assert f"{controls[benchmark]['oos_sharpe']:.2f} for {benchmark}" in text
            assert (
                f"{controls['exposure_matched']['oos_sharpe']:.2f} for its exposure-matched" in text
            )
            assert f"exposure-matched control ({_p(row['sharpe_test']['p_value'])})" in text
            assert row["sharpe_test"]["name"] in text  # the test behind the p-values
            # wording rules: never "adds value" at an OOS Sharpe <= 0; money over cash stated
            assert row["strategy_profitable_oos"] == (sharpe > 0)
            assert ("does not beat cash" in text) == (not row["strategy_profitable_oos"])
            if sharpe <= 0:
                assert "adds value" not in text
            if row["verdict_code"] == "adds_value":
                assert row["sharpe_test"]["p_value"] < summary["alpha"]
                assert controls[benchmark]["p_value"] < summary["alpha"]
            # the permutation null: regime sets only
            if permutation:
                assert row["n_permutations"] >= 200 and 0 < row["permutation_p"] <= 1
                assert f"over {row['n_permutations']} shuffles: {_p(row['permutation_p'])}" in text
            else:
                assert row["permutation_p"] is None and "shuffles" not in text
            # robustness follows from the sensitivity rows
            applicable = [s for s in row["sensitivity"] if s["verdict_holds"] is not None]
            assert len(row["sensitivity"]) == len(SCENARIOS) == 11 and applicable
            flips = [s["scenario"] for s in applicable if not s["verdict_holds"]]
            assert row["flips_under"] == [f for f in flips if f != "baseline"]
            assert row["robust"] == (not flips)
            assert ("Robustness: robust" in text) == row["robust"]
            if flips:
                assert f"fragile — flips under {', '.join(flips)}" in text
            for s in applicable:
                assert s["verdict_holds"] == (s["verdict"] == row["verdict_code"])
            assert row["dsr_trials"]["n"] >= row["dsr_trials"]["grid"] >= 5
            assert "mean daily returns" in row["oos_spa"]["test"]
            # the page shows the verdict (the headline and the sentence)
            assert text.split(":")[0] in page.replace("&amp;", "&")


def test_attribution_page_states_the_finding_of_its_own_table(rendered: Paths) -> None:
    import json

    page = (rendered.site / "executed" / "05_regime_attribution.html").read_text()
    s5 = json.loads((rendered.reports / "summaries" / "05_regime_attribution.json").read_text())
    finding = s5["finding"]
    assert finding["sentence"].split(" at 95%")[0] in page.replace("&amp;", "&")
    rows = [r for r in s5["per_agent_regime"] if r["enough"]]
    assert finding["tested"] == len(rows)
    assert len(finding["beats"]) == sum(r["excess_ci_low"] > 0 for r in rows)
    assert len(finding["trails"]) == sum(r["excess_ci_high"] < 0 for r in rows)
    assert s5["sample"] == "in-sample" and "base rate" in page
    # the experiments part: its table and the learned configs a bot loads
    learned = json.loads(
        (rendered.reports / "summaries" / "learned_regime_configs.json").read_text()
    )
    best = {r["regime"]: r for r in s5["best_by_regime"]}
    assert set(learned["regimes"]) == set(best)
    for regime, cfg in learned["regimes"].items():
        assert cfg["config"] == best[regime]["best_config"]
        assert cfg["evidence"]["beats_runner_up"] == best[regime]["beats_runner_up"]
    assert s5["experiments"].startswith(
        "**Experiments:** 608 from the sample experiments (`data/sample/experiments.csv`)"
    )
    losing = [r["regime"] for r in s5["best_by_regime"] if r["pnl_pct"] < 0]
    assert (
        f"In {len(losing)} of them ({', '.join(losing)}) even the best loses money"
        in (s5["experiments"])
    ) == bool(losing)


def test_tune_page_states_the_uplift_of_its_own_table_and_the_fallback(rendered: Paths) -> None:
    import json

    from research.attribution.tunes import uplift_verdict

    page = (rendered.site / "executed" / "06_tune_attribution.html").read_text()
    page = page.replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", '"')
    s6 = json.loads((rendered.reports / "summaries" / "06_tune_attribution.json").read_text())
    assert s6["tunes_count"] == 36 and s6["attributed"] == 36
    # the verdict is the tested rule applied to the page's own summary table
    summary = pd.DataFrame(s6["uplift"])
    assert s6["uplift_verdict"] == uplift_verdict(summary)
    assert s6["uplift_verdict"].split(",")[0] in page
    assert set(summary["vs"]) == {"baseline", "regime-blind", "tuned", "random"}
    # seed query 3 ran on the database the page wrote: its keys are the attributed keys
    for key, n in s6["regime_keys"].items():
        assert key.startswith("regime_v1_1|default_v1|") and key in page
        assert n >= 1
    # today's regime per market, with the lookup saying when it fell back to similar keys
    current = {r["symbol"]: r for r in s6["current"]}
    assert set(current) == {"SPX", "IXIC"}
    for r in current.values():
        assert (r["tunes_with_key"] < 3) == r["lookup"].startswith("fell back")
    assert "out-of-sample" in s6["sample"] and "regime-column migration" in page
    assert "temporary DuckDB file" in s6["population"]


def test_trade_filter_page_says_who_decided_and_words_its_verdict_by_the_rule(
    rendered: Paths,
) -> None:
    import json

    from research.llm.analysis import Controls, verdict

    page = (rendered.site / "executed" / "07_llm_threshold_calibration.html").read_text()
    page = page.replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", '"')
    s7 = json.loads(
        (rendered.reports / "summaries" / "07_llm_threshold_calibration.json").read_text()
    )
    # the default provider is the heuristic, and every page part says it is not an LLM
    assert s7["provider"] == "heuristic rule (not an LLM)" and s7["is_llm"] is False
    assert page.count("not an LLM") >= 5  # headline, table captions, figure titles
    assert s7["prompts"] == ["aggressive", "balanced", "conservative"] and s7["errors"] == 0
    # the verdict on the page is the tested rule applied to the summary's own numbers
    c = s7["controls"]
    ctl = Controls(
        approval_rate=s7["tests"]["approval_rate"],
        mean_approved=0.0,
        mean_all=0.0,
        random_p=c["random_p"],
        random_reps=5000,
        rule=c["best_rule"],
        rule_in_sample_mean=0.0,
        oos_trades=0,
        oos_filter_mean=0.0,
        oos_rule_mean=0.0,
        oos_diff=c["oos_diff"],
        oos_diff_ci=tuple(c["oos_diff_ci"]),
    )
    assert s7["verdict"] == verdict(s7["tests"], ctl, s7["provider"])
    assert s7["verdict"].split(" (")[0] in page
    # the threshold is chosen in-sample and reported out-of-sample
    assert s7["threshold"]["chosen_on"].endswith("(in-sample)")
    assert s7["threshold"]["text"].split(":")[0] in page


def test_option_chain_page_labels_synthetic_quotes_and_recovers_their_smile(
    rendered: Paths,
) -> None:
    import json

    page = (rendered.site / "executed" / "08_option_chains.html").read_text()
    assert "SYNTHETIC quotes" in page and "not market data" in page
    summary = json.loads((rendered.reports / "summaries" / "08_option_chains.json").read_text())
    assert summary["synthetic"] is True and summary["quotes"].startswith("SYNTHETIC")
    ratio = summary["model_chain_spread_mid_ratio"]
    # the synthetic call wing is in the model's family: fitted to the strategy's quotes (the
    # calls), the model prices the spreads
    assert abs(ratio["after"] - 1) < 0.01 < abs(ratio["before"] - 1)
    # out of sample too, where the pooled fit (pulled by the steeper puts) does not
    oos = {m["model"]: m for m in summary["out_of_sample"]["models"]}
    assert oos["calibrated to the strategy's quotes"]["median_error"] < 0.01
    assert oos["calibrated to every out-of-the-money quote"]["median_error"] > 0.1
    assert summary["out_of_sample"]["trust"] == "calibrated"
    assert "Trust the calibrated model" in page
    tbt = {r["pricing"]: r for r in summary["trade_by_trade"]}
    assert set(tbt) == {"chain", "default model", "calibrated model"}
    assert tbt["chain"]["trades"] == tbt["calibrated model"]["trades"] > 0
    assert abs(tbt["calibrated model"]["credit_vs_chain"]) < 0.01
    assert "Trade by trade" in page and summary["entries"]["spread"] > 0
    assert [b["pricing"] for b in summary["backtests"]] == [
        "chain",
        "model (default)",
        "model (calibrated)",
    ]
    assert set(summary["verdicts"]) == {"model", "chain"}
    assert f"{ratio['after']:.3f}" in page


def test_paper_tracking_page_catches_the_planted_deviations(rendered: Paths) -> None:
    import json

    page = (rendered.site / "executed" / "10_paper_tracking.html").read_text()
    summary = json.loads((rendered.reports / "summaries" / "10_paper_tracking.json").read_text())
    assert summary["synthetic"] is True and "SYNTHETIC paper log" in page
    status = {c["name"]: c["status"] for c in summary["checks"]}
    # the three planted deviations: missed days, worse fills, a regime losing its maximum
    assert status["idle days"] == "fail" and status["slippage"] == "fail"
    assert any(s == "fail" for n, s in status.items() if n.startswith("regime "))
    assert summary["verdict"] == "stop and investigate"
    assert "Stop and investigate" in page and summary["backtest_only"] >= 6
    assert summary["paper_only"] == 0  # the log is the engine's own trades: nothing added


def test_option_chain_page_runs_on_a_chain_file(tmp_path: Path) -> None:
    """The page on a user's file (here a Cboe-layout CSV made from a synthetic chain): it loads
    through the layout adapter, says which file it used, and fits it."""
    import json

    import yaml

    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market

    root = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    (root / "reports").mkdir()
    for f in [*(ROOT / "reports").glob("*.qmd"), ROOT / "reports" / "_quarto.yml"]:
        shutil.copy(f, root / "reports" / f.name)
    shutil.copytree(ROOT / "reports" / "theme", root / "reports" / "theme")
    raw = synthetic_chains(
        market.load_bars(symbols=["SPX"]),
        market.load_iv_index(),
        start="2016-01-01",
        end="2017-03-31",
    )
    cboe = pd.DataFrame(
        {
            "underlying_symbol": raw["underlying"],
            "quote_date": raw["quote_date"].dt.strftime("%Y-%m-%d"),
            "expiration": raw["expiration"].dt.strftime("%Y-%m-%d"),
            "strike": raw["strike"],
            "option_type": raw["type"].str[0].str.upper(),
            "bid_1545": raw["bid"],
            "ask_1545": raw["ask"],
            "active_underlying_price_1545": raw["underlying_price"],
        }
    )
    (root / "data").mkdir()
    cboe.to_csv(root / "data" / "spx_cboe.csv", index=False)
    params = root / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "08_option_chains": {
                    "chains_path": "data/spx_cboe.csv",
                    "is_years": 1.0,
                    "oos_years": 0.25,
                    "sharpe_reps": 200,
                    "n_permutations": 50,
                }
            }
        )
    )
    paths = Paths.from_root(root)
    result = run_pipeline(
        paths, only=["08_option_chains"], params_file=params, renderer="nbconvert", log=print
    )
    assert result.ok, [o.describe() for o in result.failures]
    summary = json.loads((paths.reports / "summaries" / "08_option_chains.json").read_text())
    assert summary["synthetic"] is False and summary["quotes"] == "data/spx_cboe.csv"
    assert summary["dates"] == ["2016-01-04", "2017-03-31"]
    assert abs(summary["model_chain_spread_mid_ratio"]["after"] - 1) < 0.02
    page = (paths.site / "executed" / "08_option_chains.html").read_text()
    assert "data/spx_cboe.csv" in page
    assert "SYNTHETIC quotes (a known smile" not in page  # the synthetic label is not shown


def test_index_is_the_findings_page_computed_from_the_summaries(rendered: Paths) -> None:
    import json

    from research.pipeline.findings import layer_rows

    folder = rendered.reports / "summaries"
    summaries = {p.stem: json.loads(p.read_text()) for p in folder.glob("[0-9][0-9]_*.json")}
    rows = layer_rows(summaries)
    stored = json.loads((folder / "validated_config.json").read_text())
    assert [r["status"] for r in stored] == [r.status for r in rows]
    index = (rendered.site / "index.html").read_text()
    assert "Validated configuration" in index and "Table: The validated configuration" in index
    # one row per ticker set of each grid study, each linking to its page, with its numbers
    for part in summaries["03_regime_multiplier_grid"]["per_tickers"]:
        sharpe = f"{part['oos_sharpe_walk_forward']:.2f}".replace("-", "−")
        assert sharpe in index, sharpe
    assert index.count('href="executed/03_regime_multiplier_grid.html"') >= 2
    assert 'href="executed/07_llm_threshold_calibration.html"' in index
    assert "not an LLM" in index  # the sample trade filter is the heuristic
    # today's regime: every market and model of the regimes page's summary
    latest = summaries["02_market_regimes"]["latest"]
    assert {g["symbol"] for g in latest} == {"SPX", "IXIC"}
    for g in latest:
        assert g["regime"] in index
    assert f"data end {summaries['02_market_regimes']['data_end']}" in index
    assert "first regeneration" in index


def test_every_figure_and_table_is_captioned_in_the_fallback(rendered: Paths) -> None:
    import nbformat

    from research.pipeline.render import _CAPTION, cell_caption

    for path in sorted(rendered.executed.glob("0*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        labelled = [
            c for c in nb.cells
            if c.cell_type == "code" and re.search(r"#\| label: (fig|tbl)-", c.source)
        ]  # fmt: skip
        assert all(cell_caption(c.source) for c in labelled), path.stem  # Quarto shows them
        expected = sum(1 for c in labelled if c.get("outputs"))
        expected += sum(
            len(_CAPTION.findall(c.source)) for c in nb.cells if c.cell_type == "markdown"
        )
        page = (rendered.site / "executed" / f"{path.stem}.html").read_text()
        assert page.count('class="rl-caption"') == expected, path.stem
        assert "Table: What this page was computed from" in page  # the provenance section
