"""Intraday stops (``fills.stop_fill = "intraday"``), worked by hand on made-up bars: a spike
through the stop that the close does not show closes the spread at exactly the stop; a gap
through it at the open fills at the open's price; the entry day is not checked; put spreads
read the low; chains and bad values are refused; the shared-path engine hands these
configurations to the per-configuration kernel."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tests.backtest.test_engine import make_panel, ref_iv, ref_price

from research.backtest.engine import _mid_of_debit
from research.backtest.market_panel import MarketPanel
from research.backtest.run import run_backtest, run_backtests, run_kernel
from research.backtest.spreads import BacktestConfig, ConfigError

CFG = BacktestConfig().replace(**{"limits.max_positions": 1, "spread.profit_target_pct": 100})
"""One spread at a time, no profit target: only the stop or expiry closes it."""
INTRADAY = CFG.replace(**{"fills.stop_fill": "intraday"})
N = 60
SPIKE = 5


def _panel(high_on_spike: float, open_on_spike: float = 100.0, low: float = 100.0) -> MarketPanel:
    closes = np.full(N, 100.0)
    panel = make_panel(closes, iv=0.45, opens=np.where(np.arange(N) == SPIKE, open_on_spike, 100.0))
    high = np.where(np.arange(N) == SPIKE, high_on_spike, 100.0)[:, None]
    lows = np.where(np.arange(N) == SPIKE, low, 100.0)[:, None]
    return dataclasses.replace(panel, high=high, low=lows)


def _mid(s: float, t: object, days: int) -> float:
    atm = 0.88 * 0.45  # the default ATM map of the 45 % IV input
    years = days / 365
    legs = [
        ref_price(s, k, years, 0.02, 0.0, ref_iv(atm, s, k, years), True)
        for k in (t["short_strike"], t["long_strike"])  # type: ignore[index]
    ]
    return legs[0] - legs[1]


def test_a_spike_through_the_stop_closes_at_the_stop() -> None:
    panel = _panel(high_on_spike=106.0)
    at_close = run_backtest(panel, CFG).trades.iloc[0]
    assert at_close["exit_reason"] == "expiration"  # the close never shows the spike
    t = run_backtest(panel, INTRADAY).trades.iloc[0]
    assert t["entry_date"] == panel.dates[0]
    assert t["exit_reason"] == "stop_loss" and t["exit_date"] == panel.dates[SPIKE]
    # filled exactly at the stop: 2.25 credits; the mid behind it is the fill less 5 % of mid
    assert t["debit"] == pytest.approx(2.25 * t["credit"], rel=1e-12)
    assert t["exit_mid"] == pytest.approx(t["debit"] / 1.05, rel=1e-12)
    assert t["pnl"] == pytest.approx(-1.25 * t["credit"] * 100 - 4 * 0.65)
    # and the spread priced at the high (106) with the close's IV is indeed past the stop
    days = (t["expiration"] - panel.dates[SPIKE]).days
    assert _mid(106.0, t, days) * 1.05 >= 2.25 * t["credit"]


def test_a_spike_short_of_the_stop_leaves_the_spread_open() -> None:
    t = run_backtest(_panel(high_on_spike=100.5), INTRADAY).trades.iloc[0]
    assert t["exit_reason"] == "expiration"


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    panel = _panel(high_on_spike=107.0, open_on_spike=107.0)
    t = run_backtest(panel, INTRADAY).trades.iloc[0]
    assert t["exit_reason"] == "stop_loss" and t["exit_date"] == panel.dates[SPIKE]
    days = (t["expiration"] - panel.dates[SPIKE]).days
    width = t["long_strike"] - t["short_strike"]
    mid = _mid(107.0, t, days)
    assert t["debit"] == pytest.approx(min(mid + max(0.05 * mid, 0.01), width), rel=1e-9)
    assert t["debit"] > 2.25 * t["credit"]


def test_the_entry_day_is_not_checked() -> None:
    # the only spike is on the first day, before the spread exists at that day's close
    closes = np.full(N, 100.0)
    panel = make_panel(closes, iv=0.45)
    high = np.where(np.arange(N) == 0, 110.0, 100.0)[:, None]
    t = run_backtest(dataclasses.replace(panel, high=high, low=closes[:, None]), INTRADAY).trades
    assert t.iloc[0]["exit_reason"] == "expiration"


def test_put_spreads_read_the_low() -> None:
    puts = INTRADAY.replace(**{"spread.strategy": "bull_put"})
    assert run_backtest(_panel(106.0, low=100.0), puts).trades.iloc[0]["exit_reason"] == (
        "expiration"
    )
    t = run_backtest(_panel(100.0, low=85.0), puts).trades.iloc[0]  # short put at 81.5
    assert t["exit_reason"] == "stop_loss" and t["debit"] == pytest.approx(2.25 * t["credit"])


def test_without_highs_and_lows_it_is_the_close() -> None:
    panel = dataclasses.replace(_panel(106.0), high=None, low=None)
    a = run_backtest(panel, CFG).trades
    b = run_backtest(panel, INTRADAY).trades
    assert a[["exit_date", "exit_reason", "pnl"]].equals(b[["exit_date", "exit_reason", "pnl"]])


def test_shared_engine_hands_intraday_stops_to_the_reference_kernel() -> None:
    panel = _panel(106.0)
    configs = [INTRADAY] * 4 + [CFG] * 4
    shared = run_kernel(panel, configs, engine="shared")
    reference = run_kernel(panel, configs, engine="per_config")
    np.testing.assert_array_equal(shared.equity, reference.equity)
    assert shared.equity[0, -1] != shared.equity[-1, -1]


def test_refused_on_chains_and_for_unknown_values(chain_panel: MarketPanel) -> None:
    with pytest.raises(ConfigError, match="intraday stops need intraday prices"):
        run_backtests(chain_panel, [BacktestConfig().replace(**{"fills.stop_fill": "intraday"})])
    with pytest.raises(ConfigError, match="stop fill must be close or intraday"):
        BacktestConfig().replace(**{"fills.stop_fill": "noon"})


@pytest.mark.parametrize("mid", [0.05, 0.2, 0.199, 1.0, 3.7])
def test_mid_of_debit_inverts_the_half_spread(mid: float) -> None:
    debit = mid + max(0.05 * mid, 0.01)
    assert _mid_of_debit(debit, 0.05, 0.01) == pytest.approx(mid, rel=1e-12)
