"""Every notebook on a user's own markets through ``research run`` with a parameters file: one
CSV of a stock (GOOG) and a commodity (WTI) — real series the project never ships — and no
IV file. The pages name those markets, their IV source and the parameters file, never the
built-in S&P 500 / NASDAQ / VIX."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from research.config import Paths
from research.pipeline.runner import run_pipeline
from research.testing.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    "01_market_data",
    "02_market_regimes",
    "03_regime_multiplier_grid",
    "04_portfolio_limits_grid",
    "05_regime_attribution",
    "06_tune_attribution",
    "07_llm_threshold_calibration",
    "08_option_chains",
    "09_strategy_explained",
    "10_paper_tracking",
)


@pytest.fixture(scope="module")
def own_site(tmp_path_factory: pytest.TempPathFactory, stock_and_commodity_csv: Path) -> Paths:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "data" / "sample", root / "data" / "sample")
    (root / "data" / "own").mkdir()
    shutil.copy(stock_and_commodity_csv, root / "data" / "own" / "markets.csv")
    # the user's own agents' signals on those markets
    from research.attribution.agents import generate_signals
    from research.data.loaders import load

    signals = generate_signals(load("bars", stock_and_commodity_csv))
    signals.to_csv(root / "data" / "own" / "signals.csv", index=False, date_format="%Y-%m-%d")
    # and walk-forward tunes of those markets, made by the lab's tuner from the same file
    done = run_cli(
        "data", "tunes", "--bars", str(stock_and_commodity_csv),
        "--out", str(root / "data" / "own" / "tunes.csv"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # and the trades the rules took on them, exported by the backtest, for the trade filter
    done = run_cli(
        "backtest", "run", "--tickers", "GOOG,WTI", "--bars", str(stock_and_commodity_csv),
        "--export-trades", str(root / "data" / "own" / "trades.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (root / "reports").mkdir()
    for f in [*(ROOT / "reports").glob("*.qmd"), ROOT / "reports" / "_quarto.yml"]:
        shutil.copy(f, root / "reports" / f.name)
    for folder in ("theme", "guide"):
        shutil.copytree(ROOT / "reports" / folder, root / "reports" / folder)
    bars = load("bars", stock_and_commodity_csv)
    goog = bars.loc[bars["symbol"] == "GOOG"]
    grid = {"is_years": 4.0, "oos_years": 2.0, "spa_reps": 100, "sharpe_reps": 300}
    grid["scenarios"] = ["baseline", "proxy_minus_2"]
    params = {
        # relative to the project root, as the README writes it
        "all": {"bars_path": "data/own/markets.csv"},
        "01_market_data": {},
        "02_market_regimes": {"models": ["vix_trend", "vol_ratio", "bull_bear_vol", "tags"]},
        "03_regime_multiplier_grid": grid,
        "04_portfolio_limits_grid": grid,
        # the sample experiments are SPX/IXIC runs: not these markets, so the section is skipped
        "05_regime_attribution": {"signals_path": "data/own/signals.csv", "experiments_path": ""},
        "06_tune_attribution": {"tunes_path": "data/own/tunes.csv"},
        "07_llm_threshold_calibration": {"trades_path": "data/own/trades.json"},
        "08_option_chains": {
            "underlying": "GOOG",
            # two years of the synthetic GOOG chain (the page's default is four): enough for
            # the walk-forward study and the out-of-sample calibration, half the suite's time
            "start": str((goog["date"].max() - pd.DateOffset(years=2)).date()),
            "is_years": 1.0,
            "oos_years": 0.5,
            "n_permutations": 50,
            "sharpe_reps": 300,
        },
    }
    (root / "notebooks" / "params" / "own.yaml").write_text(yaml.safe_dump(params))
    paths = Paths.from_root(root)
    result = run_pipeline(
        paths, params_file=paths.params / "own.yaml", renderer="nbconvert", log=print
    )
    assert result.ok, [o.describe() for o in result.failures]
    return paths


def test_pages_name_the_users_markets_iv_and_parameters(own_site: Paths) -> None:
    for name in PAGES:
        page = (own_site.site / "executed" / f"{name}.html").read_text()
        assert "GOOG" in page, name
        assert "S&amp;P 500" not in page and "S&P 500" not in page, name
        assert "NASDAQ" not in page and "IXIC" not in page, name
        assert "notebooks/params/own.yaml" in page, name
        assert "data/own/markets.csv" in page, name
        assert "uncalibrated" in page, name
    for name in PAGES[:5]:
        page = (own_site.site / "executed" / f"{name}.html").read_text()
        assert "WTI" in page, name


def test_regimes_page_buckets_by_percentile_and_states_the_history(own_site: Paths) -> None:
    page = (own_site.site / "executed" / "02_market_regimes.html").read_text()
    assert "GOOG by trailing 252-day IV percentile" in page
    assert "WTI by trailing 252-day IV percentile" in page
    assert "bull_bear_vol vol thresholds: GOOG by trailing 252-day percentile" in page
    assert "percentile_min_periods 126" in page and "long_window_bars 60" in page


def test_market_page_has_no_proxy_to_fit_and_says_why(own_site: Paths) -> None:
    page = (own_site.site / "executed" / "01_market_data.html").read_text()
    assert "No symbol has an IV index of its own, so there is no proxy map to fit" in page
    assert "2004-08-19" in page and "1986-01-02" in page


def test_grid_summaries_are_about_the_users_markets(own_site: Paths) -> None:
    s3 = json.loads((own_site.reports / "summaries" / "03_regime_multiplier_grid.json").read_text())
    assert [r["tickers"] for r in s3["per_tickers"]] == ["GOOG", "WTI"]
    s4 = json.loads((own_site.reports / "summaries" / "04_portfolio_limits_grid.json").read_text())
    assert [r["tickers"] for r in s4["per_tickers"]] == ["GOOG+WTI"]
    for row in s3["per_tickers"] + s4["per_tickers"]:
        assert row["verdict"].split(":")[0]  # a worded verdict, not an error
        assert [s["scenario"] for s in row["sensitivity"]] == ["baseline", "proxy_minus_2"]


def test_attribution_page_reads_the_users_signals(own_site: Paths) -> None:
    page = (own_site.site / "executed" / "05_regime_attribution.html").read_text()
    assert "data/own/signals.csv" in page and "MomentumAgent" in page
    assert "No experiments attributed: experiments_path is empty" in page
    s5 = json.loads((own_site.reports / "summaries" / "05_regime_attribution.json").read_text())
    assert s5["regime_model"] == "bull_bear_vol" and s5["finding"]["tested"] > 0
    assert {r["regime"] for r in s5["per_agent_regime"]} <= {
        "bull_low_vol",
        "bull_high_vol",
        "bear_low_vol",
        "bear_high_vol",
    }


def test_tune_page_attributes_the_users_tunes_on_their_markets(own_site: Paths) -> None:
    page = (own_site.site / "executed" / "06_tune_attribution.html").read_text()
    assert "data/own/tunes.csv" in page
    s6 = json.loads((own_site.reports / "summaries" / "06_tune_attribution.json").read_text())
    # GOOG 2004-08..2013-03: OOS years 2007-2012; WTI 1986-2019: 1988-2018
    assert s6["tunes_count"] == 6 + 31 and s6["attributed"] == 37
    assert {r["symbol"] for r in s6["current"]} == {"GOOG", "WTI"}
    assert str(s6["current"][0]["date"]).startswith("2013-03-01")  # GOOG's last bar
    assert {r["vs"] for r in s6["uplift"]} == {"baseline", "regime-blind", "tuned", "random"}


def test_trade_filter_page_reads_the_users_trades_and_names_the_provider(own_site: Paths) -> None:
    page = (own_site.site / "executed" / "07_llm_threshold_calibration.html").read_text()
    assert "data/own/trades.json" in page and "not an LLM" in page
    s7 = json.loads(
        (own_site.reports / "summaries" / "07_llm_threshold_calibration.json").read_text()
    )
    assert s7["provider"] == "heuristic rule (not an LLM)" and s7["is_llm"] is False
    trades = json.loads((own_site.root / "data" / "own" / "trades.json").read_text())
    assert s7["trades"] == len(trades) and {t["ticker"] for t in trades} == {"GOOG", "WTI"}
    assert s7["verdict"].startswith("heuristic rule (not an LLM)")
