"""The spread a chain-priced backtest opens on each quote day, and why none where none: the
engine's own choice (checked against its trades), each failed test named on hand-built chains,
and both commands explaining a chain whose expirations are all too near."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.backtest.test_chain_engine import CFG, DATES, ENTRY, EXPIRY, _chain, _hold_days, _panel

from research.backtest.chain_entries import entry_spreads
from research.backtest.market_panel import MarketPanel
from research.backtest.run import run_backtest
from research.backtest.spreads import BacktestConfig
from research.testing.cli import run_cli


def _entries(panel: MarketPanel, cfg: BacktestConfig = CFG):  # type: ignore[no-untyped-def]
    assert panel.chains is not None
    return entry_spreads(panel.chains, panel.dates, panel.tickers, panel.close, cfg)


def test_the_engines_spread_and_a_band_with_no_strike_in_it() -> None:
    found = _entries(_panel(_chain({0: ENTRY, **_hold_days(1, 30)})))
    f = found.frame.set_index("quote_date")
    day0 = f.loc[DATES[0]]
    assert day0["outcome"] == "spread"
    assert (day0["short_strike"], day0["long_strike"]) == (105.0, 107.0)
    assert day0["chain_mid"] == pytest.approx(0.40 - 0.15)  # mids of 105 and 107
    assert day0["half_spread"] == pytest.approx(0.05 + 0.05)
    assert day0["expiration"] == EXPIRY and day0["dte"] == (EXPIRY - DATES[0]).days
    # later days quote only |delta| 0.40: nothing in 0.05-0.15, nothing below it; from the day
    # the expiration is under 30 days away, no expiration is far enough out at all
    later = f.iloc[1:]
    far = np.array([(EXPIRY - d).days >= 30 for d in later.index])
    assert len(later) == len(DATES) - 2 and 0 < far.sum() < len(far)
    assert (later.loc[far, "outcome"] == "no_strike").all()
    assert (later.loc[~far, "outcome"] == "no_expiration").all()
    assert later.loc[far, "above"].eq(0.40).all() and later.loc[far, "below"].isna().all()
    text = found.explain()
    assert f"no spread on {len(DATES) - 2} of {len(DATES) - 1} quote days" in text
    assert f"{far.sum()} days: no quoted out-of-the-money call with |delta| in 0.05-0.15" in text
    assert f"{(~far).sum()} days: no call expiration listed at least 30 days out" in text
    assert "above it 0.400" in text and "--max-delta 0.4 widens the band" in text
    # the last panel day is no entry day (nothing can be followed after it)
    assert DATES[-1] not in f.index


def test_an_expiration_after_the_data_ends_is_named_with_the_fix() -> None:
    window = _panel(_chain({0: ENTRY, **_hold_days(1, 20)})).slice(slice(0, 20))
    found = _entries(window)
    day0 = found.frame.iloc[0]
    assert day0["outcome"] == "after_data" and day0["longest_dte"] == -1
    assert day0["listed"] == str(EXPIRY.date())
    text = found.explain()
    assert f"settles after the data's last day {DATES[19].date()}" in text
    assert "a later --end" in text
    # the engine agrees: no entry, counted as no_strike
    res = run_backtest(window, CFG)
    assert (
        res.trades.empty and res.counters["no_strike"] == (found.frame["outcome"] != "spread").sum()
    )


def test_too_near_expirations_suggest_the_dte_that_trades_half_the_days() -> None:
    panel = _panel(_chain({d: ENTRY for d in range(29)}))
    cfg = CFG.replace(**{"spread.target_dte": 60})
    found = _entries(panel, cfg)
    f = found.frame
    assert (f["outcome"] == "no_expiration").all()
    # by hand: the only expiration, days to it from each entry day (all inside the data)
    # (an expiration on the next panel day or earlier cannot be entered: -1)
    days_to = np.array(
        [(EXPIRY - d).days if DATES[i + 1] <= EXPIRY else -1 for i, d in enumerate(DATES[:29])]
    )
    assert f["longest_dte"].tolist() == days_to.tolist()
    cover = found.dte_coverage((7, 14, 30)).set_index("dte")["days"]
    assert cover.to_dict() == {n: int((days_to >= n).sum()) for n in (7, 14, 30)}
    assert found.suggested_dte() == int(np.floor(np.median(days_to)))
    text = found.explain()
    assert "no call expiration listed at least 60 days out" in text
    assert f"--dte {found.suggested_dte()} leaves one on at least half the days" in text
    # the suggestion works: at that horizon the first day has a spread
    shorter = cfg.replace(**{"spread.target_dte": found.suggested_dte()})
    assert _entries(panel, shorter).frame.iloc[0]["outcome"] == "spread"


def test_no_strike_beyond_the_short_leg() -> None:
    inner = {k: v for k, v in ENTRY.items() if k <= 105.0}
    found = _entries(_panel(_chain({0: inner, **_hold_days(1, 30)})))
    assert found.frame.iloc[0]["outcome"] == "no_long_leg"
    assert "no quoted strike beyond the short strike" in found.explain()


def test_spreads_are_the_engines_entries_on_a_chain_with_missing_quotes(
    chain_panel: MarketPanel,
) -> None:
    cfg = BacktestConfig().replace(
        **{
            "limits.max_positions": 10_000,
            "limits.max_portfolio_heat_pct": 1e9,
            "limits.max_per_underlying_pct": 1e9,
        }
    )
    found = _entries(chain_panel, cfg)
    res = run_backtest(chain_panel, cfg)
    key = ["entry_date", "expiration", "short_strike", "long_strike"]
    took = res.trades[key].apply(tuple, axis=1)
    sp = found.spreads.rename(columns={"quote_date": "entry_date"})
    offered = set(sp[key].apply(tuple, axis=1))
    assert len(took) > 100 and set(took) <= offered
    counts = found.counts()
    # every day the engine screened: a spread taken or refused on costs, or no spread at all
    assert res.counters["no_strike"] == len(found.frame) - counts["spread"]
    assert (
        counts["spread"]
        == res.counters["entries"]
        + res.counters["credit_below_costs"]
        + (res.counters["iv_filter"])
    )


@pytest.fixture(scope="module")
def front_month_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SPX quotes of January-February 2018 listing only the nearest monthly expiration (the
    third Friday), as a vendor's front-month file: none is 30 days out."""
    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market

    raw = synthetic_chains(
        market.load_bars(symbols=["SPX"]),
        market.load_iv_index(),
        start="2018-01-02",
        end="2018-02-28",
    )
    third = pd.DatetimeIndex(["2018-01-19", "2018-02-16", "2018-03-16"])
    front = raw["quote_date"].map(lambda d: third[third > d][0])
    path = tmp_path_factory.mktemp("chains") / "spx_front.csv"
    raw.loc[raw["expiration"] == front].to_csv(path, index=False)
    return path


def test_backtest_explains_a_front_month_file_and_trades_with_a_lower_dte(
    front_month_only: Path,
) -> None:
    args = ["backtest", "run", "--tickers", "SPX", "--chains", str(front_month_only)]
    args += ["--start", "2018-01-02", "--end", "2018-02-28"]
    none = run_cli(*args)
    assert none.returncode == 0, none.stderr
    assert "no call expiration listed at least 30 days out" in none.stdout
    assert "the longest listed is" in none.stdout and "--dte 14:" in none.stdout
    assert "entries found no spread in the quotes" in none.stdout
    some = run_cli(*args, "--dte", "14")
    assert some.returncode == 0, some.stderr
    assert "trades " in some.stdout or "n_trades" in some.stdout or "win_rate" in some.stdout
    n = int(some.stdout.split("no_strike ")[1].split(",")[0])
    entries = int(some.stdout.split("entries ")[1].split(",")[0])
    assert entries > 0 and n < int(none.stdout.split("no_strike ")[1].split(",")[0])


def test_calibrate_explains_and_scores_out_of_sample_with_a_lower_dte(
    front_month_only: Path, tmp_path: Path
) -> None:
    from research.backtest.calibrate import load_smile

    out = tmp_path / "skew.yaml"
    far = run_cli("chains", "calibrate", "--chains", str(front_month_only), "--out", str(out))
    assert far.returncode == 0, far.stderr
    assert "no call expiration listed at least 30 days out" in far.stdout
    assert "Untested" in far.stdout and "nan" not in far.stdout.split("wrote")[0]
    near = run_cli(
        "chains", "calibrate", "--chains", str(front_month_only), "--out", str(out), "--dte", "14"
    )
    assert near.returncode == 0, near.stderr
    assert "out of sample (1 fold" in near.stdout
    fit = load_smile(out)
    assert fit.scope == "strategy" and fit.target_dte == 14 and fit.oos_days >= 10
    assert np.isfinite([fit.oos_ratio_default, fit.oos_ratio_calibrated]).all()
    assert near.stdout.strip().splitlines()[-1] == (
        "model/chain spread mid ratio out of sample (median): default "
        f"{fit.oos_ratio_default:.3f}, calibrated {fit.oos_ratio_calibrated:.3f}"
    )
    bad = run_cli(
        "chains", "calibrate", "--chains", str(front_month_only), "--out", str(out), "--dte", "0"
    )
    assert bad.returncode == 1 and "--dte" in bad.stderr and "Traceback" not in bad.stderr
