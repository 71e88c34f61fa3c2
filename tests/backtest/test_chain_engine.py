"""Spreads priced from option chains: hand-checked strike choice, fills, marks, profit target,
stop, expiry, missing quotes; sizing and limits; the same outputs, windows and grids; the
settlement rule (last trading day on or before the expiration, AM monthlies at the open)
re-implemented with pandas on a synthetic SPX chain (hand-worked cases: test_settlement.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from research.backtest.chains import chain_book
from research.backtest.market_panel import MarketPanel, strike_steps
from research.backtest.run import run_backtest, run_kernel
from research.backtest.spreads import BacktestConfig, ConfigError

DATES = pd.bdate_range("2020-01-02", periods=30)  # to 2020-02-12
EXPIRY = pd.Timestamp("2020-02-07")  # a Friday, 36 days after the first date
FEE = 0.65
# day-0 calls: strike -> (bid, ask, delta)
ENTRY = {
    103.0: (0.90, 1.00, 0.20),
    104.0: (0.55, 0.65, 0.12),
    105.0: (0.35, 0.45, 0.09),  # |delta| closest to 0.10: the short leg
    106.0: (0.20, 0.30, 0.06),
    107.0: (0.10, 0.20, 0.04),  # 105 + 1.5% of 100 = 106.5: 106 and 107 tie; further out wins
}
HOLD = {105.0: (0.25, 0.35, 0.40), 107.0: (0.05, 0.15, 0.40)}  # deltas out of range: no entry


def _chain(
    days: dict[int, dict[float, tuple[float, float, float]]], kind: str = "call"
) -> pd.DataFrame:
    rows = []
    for d, quotes in days.items():
        for strike, (bid, ask, delta) in quotes.items():
            rows.append(
                {
                    "quote_date": DATES[d],
                    "underlying": "AAA",
                    "expiration": EXPIRY,
                    "type": kind,
                    "strike": strike,
                    "bid": bid,
                    "ask": ask,
                    "underlying_price": 100.0,
                    "delta": delta if kind == "call" else -delta,
                }
            )
    return pd.DataFrame(rows)


def _panel(chain: pd.DataFrame, closes: np.ndarray | None = None) -> MarketPanel:
    closes = np.full((len(DATES), 1), 100.0) if closes is None else closes.reshape(-1, 1)
    iv = np.full(closes.shape, 0.2)
    panel = MarketPanel(
        dates=DATES,
        tickers=("AAA",),
        close=closes,
        atm_iv=iv,
        mark_iv=iv,
        iv_percentile=np.full(closes.shape, 50.0),
        vix=iv * 100,
        iv_source=np.full(closes.shape, "index", dtype=object),
        strike_steps=strike_steps(closes),
        dropped_days=0,
    )
    return dataclasses.replace(panel, chains=chain_book(DATES, ("AAA",), chain))


def _hold_days(first: int, last: int) -> dict[int, dict[float, tuple[float, float, float]]]:
    return {d: HOLD for d in range(first, last)}


CFG = BacktestConfig().replace(**{"limits.max_positions": 1})


def test_entry_strikes_credit_and_a_profit_target_after_a_missing_quote() -> None:
    days = {0: ENTRY, 1: HOLD, 2: {105.0: HOLD[105.0]}}  # day 2: the long leg is not quoted
    days[3] = {105.0: (0.02, 0.08, 0.40), 107.0: (0.00, 0.05, 0.40)}
    days.update(_hold_days(4, 30))
    res = run_backtest(_panel(_chain(days)), CFG)
    t = res.trades.iloc[0]
    assert (t["short_strike"], t["long_strike"]) == (105.0, 107.0)
    assert t["expiration"] == EXPIRY and t["dte"] == (EXPIRY - DATES[0]).days
    assert t["delta"] == 0.09
    # mid 0.40 - 0.15 = 0.25; half spreads 0.05 + 0.05; halfway to natural: 0.25 - 0.05
    assert t["credit"] == pytest.approx(0.20) and t["max_loss"] == pytest.approx(1.80)
    # day 1: close at 0.20 + 0.05 = 0.25 (no exit); day 2: carried; day 3: mid 0.025, close
    # 0.025 + 0.5 * (0.03 + 0.025) = 0.0525 <= 35% of the credit: profit target
    assert t["exit_reason"] == "profit_target" and t["exit_date"] == DATES[3]
    assert t["debit"] == pytest.approx(0.0525)
    assert t["pnl"] == pytest.approx((0.20 - 0.0525) * 100 - 4 * FEE)
    assert res.counters["missing_quotes"] == 1 and res.counters["entries"] == 1
    # equity: marked at mid; the missing day carries day 1's mark
    eq = res.equity.to_numpy()
    growth = 1.02 ** (1 / 252)
    cash0 = 1e6 - 2 * FEE
    assert eq[0] == pytest.approx(cash0 + (0.20 - 0.25) * 100)
    assert eq[1] == pytest.approx(cash0 * growth + (0.20 - 0.20) * 100)
    assert eq[2] == pytest.approx(cash0 * growth**2 + (0.20 - 0.20) * 100)


def test_missing_quote_can_close_the_spread_instead() -> None:
    days = {0: ENTRY, 1: HOLD, 2: {105.0: HOLD[105.0]}, **_hold_days(3, 30)}
    cfg = CFG.replace(**{"fills.missing_quote": "close"})
    t = run_backtest(_panel(_chain(days)), cfg).trades.iloc[0]
    # closed on the missing day at day 1's closing price, 0.25
    assert t["exit_reason"] == "missing_quote" and t["exit_date"] == DATES[2]
    assert t["debit"] == pytest.approx(0.25)
    assert t["pnl"] == pytest.approx((0.20 - 0.25) * 100 - 4 * FEE)


def test_stop_loss_on_quoted_prices() -> None:
    days = {0: ENTRY, 1: {105.0: (0.80, 0.90, 0.4), 107.0: (0.20, 0.30, 0.4)}}
    days.update(_hold_days(2, 30))
    t = run_backtest(_panel(_chain(days)), CFG).trades.iloc[0]
    # mid 0.85 - 0.25 = 0.60, close 0.60 + 0.5 * 0.10 = 0.65; loss 0.45 >= 125% of 0.20
    assert t["exit_reason"] == "stop_loss" and t["exit_date"] == DATES[1]
    assert t["debit"] == pytest.approx(0.65)


def test_expiry_settles_at_intrinsic_from_the_underlying() -> None:
    days = {0: ENTRY, **_hold_days(1, 30)}
    closes = np.full(len(DATES), 100.0)
    expiry_day = int(DATES.get_loc(EXPIRY))
    closes[expiry_day:] = 106.0
    t = run_backtest(_panel(_chain(days), closes), CFG).trades.iloc[0]
    assert t["exit_reason"] == "expiration" and t["exit_date"] == EXPIRY
    assert t["debit"] == pytest.approx(1.0)  # 106 - 105, within the 2-point width
    assert t["pnl"] == pytest.approx((0.20 - 1.0) * 100 - 2 * FEE)  # no fees at expiry


@pytest.mark.parametrize(("fill", "credit"), [(0.0, 0.25), (1.0, 0.15), (0.25, 0.225)])
def test_fill_between_mid_and_natural(fill: float, credit: float) -> None:
    days = {0: ENTRY, **_hold_days(1, 30)}
    cfg = CFG.replace(**{"fills.chain_fill": fill, "spread.stop_loss_pct": 200.0})
    t = run_backtest(_panel(_chain(days)), cfg).trades.iloc[0]
    assert t["credit"] == pytest.approx(credit)  # natural: bid 0.35 - ask 0.20


def test_a_credit_an_immediate_buy_back_would_stop_out_is_not_taken() -> None:
    """At the natural price the spread sells for 0.15 and buys back for 0.35: a loss of 0.20,
    over the 125 % stop (0.1875) on unchanged quotes, so the entry is skipped and counted."""
    days = {0: ENTRY, **_hold_days(1, 30)}
    cfg = CFG.replace(**{"fills.chain_fill": 1.0})
    res = run_backtest(_panel(_chain(days)), cfg)
    assert res.trades.empty
    assert res.counters["credit_below_costs"] >= 1 and res.counters["entries"] == 0
    # with a 140 % stop (0.21 > 0.20) the same spread is taken
    wider = run_backtest(_panel(_chain(days)), cfg.replace(**{"spread.stop_loss_pct": 140.0}))
    assert wider.trades.iloc[0]["credit"] == pytest.approx(0.15)


def test_delta_from_the_chain_iv_when_the_file_has_none() -> None:
    from research.backtest.pricing import bs_delta

    days = {0: ENTRY, **_hold_days(1, 30)}
    chain = _chain(days).drop(columns="delta")
    t = (EXPIRY - DATES[0]).days / 365
    # IVs whose Black-Scholes deltas (rate 2%, no dividend: ticker AAA) are the only deltas
    vols = {103.0: 0.13, 104.0: 0.125, 105.0: 0.12, 106.0: 0.115, 107.0: 0.11}
    chain["iv"] = chain["strike"].map(vols)
    deltas = {k: float(bs_delta(100.0, k, t, 0.02, v, "call")) for k, v in vols.items()}
    in_range = {k: d for k, d in deltas.items() if 0.05 <= d <= 0.15}
    want = min(in_range, key=lambda k: abs(in_range[k] - 0.10))
    got = run_backtest(_panel(chain), CFG).trades.iloc[0]
    assert got["short_strike"] == want and got["delta"] == pytest.approx(deltas[want])


def test_bull_put_spreads_use_the_puts() -> None:
    puts = {k: v for k, v in zip([97.0, 96.0, 95.0, 94.0, 93.0], ENTRY.values(), strict=True)}
    hold = {95.0: HOLD[105.0], 93.0: HOLD[107.0]}
    days = {0: puts, **{d: hold for d in range(1, 30)}}
    cfg = CFG.replace(**{"spread.strategy": "bull_put"})
    t = run_backtest(_panel(_chain(days, "put")), cfg).trades.iloc[0]
    assert (t["short_strike"], t["long_strike"]) == (95.0, 93.0)
    assert t["credit"] == pytest.approx(0.20)


def test_scaled_sizing_regime_multiplier_and_limits() -> None:
    days = {0: ENTRY, **_hold_days(1, 30)}
    panel = _panel(_chain(days))
    labels = pd.DataFrame({"date": DATES, "symbol": "AAA", "regime": "calm"})
    cfg = CFG.replace(
        **{
            "sizing.mode": "scaled",
            "sizing.regime_multipliers": {"calm": 0.5},
            "limits.max_per_underlying_pct": 100,
            "limits.max_portfolio_heat_pct": 100,
        }
    )
    t = run_backtest(panel, cfg, labels).trades.iloc[0]
    assert t["contracts"] == math.floor(1e6 * 0.02 / 180.0 * 0.5) == 55
    capped = run_backtest(panel, cfg.replace(**{"limits.max_per_underlying_pct": 0.9}), labels)
    assert capped.trades.iloc[0]["contracts"] == math.floor(1e6 * 0.009 / 180.0) == 50


def test_no_entry_without_a_listed_expiry_inside_the_data() -> None:
    short = dataclasses.replace(_panel(_chain({0: ENTRY, **_hold_days(1, 20)})))
    window = short.slice(slice(0, 20))  # ends before the expiration
    res = run_backtest(window, CFG)
    assert res.trades.empty and res.counters["no_strike"] > 0


def test_next_open_fills_are_refused_on_chains() -> None:
    with pytest.raises(ConfigError, match="end-of-day"):
        run_backtest(_panel(_chain({0: ENTRY})), CFG.replace(**{"fills.timing": "next_open"}))


@pytest.fixture(scope="module")
def synthetic_panel() -> MarketPanel:
    from research.backtest.service import load_panel
    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market

    panel, _, _ = load_panel(["SPX"], start="2015-01-01", end="2016-12-31")
    chain = synthetic_chains(
        market.load_bars(symbols=["SPX"]),
        market.load_iv_index(),
        start="2015-01-01",
        end="2016-12-31",
        missing=0.002,
        seed=3,
    )
    return dataclasses.replace(panel, chains=chain_book(panel.dates, panel.tickers, chain))


def test_windows_and_grids_run_unchanged_on_chains(synthetic_panel: MarketPanel) -> None:
    from research.optimize import grids
    from research.optimize.service import DEFAULT_BASE
    from research.optimize.walkforward import walk_forward, walk_forward_splits

    variants = grids.limit_variants(DEFAULT_BASE)
    splits = walk_forward_splits(
        synthetic_panel.dates, is_years=1.0, oos_years=0.5, mode="anchored"
    )
    wf = walk_forward(synthetic_panel, variants, splits)
    assert len(wf.folds) == 2 and wf.table["trades"].sum() > 100
    # a window of the chain panel is the same as the chain panel of that window
    f = splits[1]
    window = grids._window(synthetic_panel, f.oos_start, f.oos_end)
    direct = run_kernel(window, [v.config for v in variants])
    got = wf.oos_matrix.loc[f.oos_start : f.oos_end].to_numpy()
    initial = 1e6
    prev = np.concatenate([np.full((len(variants), 1), initial), direct.equity[:, :-1]], axis=1)
    np.testing.assert_allclose(got, (direct.equity / prev - 1).T, rtol=1e-12)
    # many configs in one call equal single runs; exports pass the trades contract
    both = run_kernel(synthetic_panel, [variants[0].config, variants[3].config])
    single = run_backtest(synthetic_panel, variants[3].config)
    np.testing.assert_array_equal(both.equity[1], single.equity.to_numpy())
    frame = single.export_frame()
    assert len(frame) == len(single.trades) > 50
    assert (frame["expiration"].dt.day_of_week == 4).all()  # the synthetic chain lists Fridays
    assert single.counters["missing_quotes"] > 0


def test_every_expiry_settles_on_its_last_trading_day_at_the_open_or_close(
    synthetic_panel: MarketPanel,
) -> None:
    """The settlement rule, re-implemented with pandas on two years of synthetic SPX quotes
    (every Friday listed, Good Fridays 2015-04-03 and 2016-03-25 included): a spread held to
    expiry settles on the last trading day on or before its expiration date; SPX monthlies (a
    third Friday, day 15-21, or the Thursday before one that is not a trading day) at the
    intrinsic value from that day's open (AM), weeklies from its close (PM)."""
    cfg = BacktestConfig().replace(
        **{
            "spread.profit_target_pct": 100.0,
            "spread.stop_loss_pct": 1e6,
            "limits.max_positions": 8,
            "limits.max_portfolio_heat_pct": 100.0,
            "limits.max_per_underlying_pct": 100.0,
        }
    )
    trades = run_backtest(synthetic_panel, cfg).trades
    held = trades.loc[trades["exit_reason"] == "expiration"]
    assert len(held) > 100
    dates = synthetic_panel.dates
    opens, closes = synthetic_panel.opens()[:, 0], synthetic_panel.close[:, 0]
    n_am = n_holiday = 0
    for t in held.itertuples():
        exp = t.expiration
        day = dates[dates <= exp].max()
        assert t.exit_date == day
        friday = exp + pd.Timedelta(days=1)  # a Thursday before a third-Friday holiday
        monthly = (exp.day_of_week == 4 and 15 <= exp.day <= 21) or (
            exp.day_of_week == 3
            and 15 <= friday.day <= 21
            and friday <= dates[-1]
            and friday not in dates
        )
        s = (opens if monthly else closes)[dates.get_loc(day)]
        intrinsic = min(max(s - t.short_strike, 0.0), t.long_strike - t.short_strike)
        assert t.debit == pytest.approx(intrinsic, abs=1e-12)
        n_am += monthly
        n_holiday += day != exp
    assert n_am > 10 and n_holiday >= 1
    # the opens and closes of the monthly settlement days differ: the rule is not idle
    monthly_days = held.loc[held["expiration"].dt.day.between(15, 21), "exit_date"]
    idx = dates.get_indexer(monthly_days)
    assert (opens[idx] != closes[idx]).all()
