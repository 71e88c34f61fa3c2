"""The credit-spread engine: an independent pure-Python reference of the documented rules,
hand-computed single trades, sizing, regime multipliers, portfolio limits, alignment, bad input,
and the seed-004 export."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from research.backtest.pricing import SkewModel
from research.backtest.run import (
    MarketPanel,
    market_panel,
    run_backtest,
    run_backtests,
    run_kernel,
    strike_step,
)
from research.backtest.spreads import BacktestConfig, ConfigError, config_from_dict

SKEW = SkewModel()


def make_panel(
    closes: np.ndarray,
    iv: float | np.ndarray = 0.2,
    start: str = "2020-01-02",
    tickers: tuple[str, ...] = ("AAA",),
    ivp: float = 50.0,
) -> MarketPanel:
    closes = np.asarray(closes, float).reshape(len(closes), -1)
    n, k = closes.shape
    ivs = np.broadcast_to(np.asarray(iv, float), (n, k)).copy() if np.ndim(iv) < 2 else iv
    return MarketPanel(
        dates=pd.bdate_range(start, periods=n),
        tickers=tickers,
        close=closes,
        atm_iv=ivs,
        mark_iv=ivs,
        iv_percentile=np.full((n, k), ivp),
        vix=ivs * 100,
        iv_source=np.full((n, k), "index", dtype=object),
        strike_steps=np.array([strike_step(float(np.median(closes[:, j]))) for j in range(k)]),
        dropped_days=0,
    )


# --- an independent reference: scipy Black-Scholes and a plain loop over the rules ----------


def ref_price(s: float, k: float, t: float, r: float, sigma: float, call: bool) -> float:
    if t <= 0:
        return max(s - k, 0.0) if call else max(k - s, 0.0)
    d1 = (math.log(s / k) + (r + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if call:
        return s * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d2)
    return k * math.exp(-r * t) * norm.cdf(-d2) - s * norm.cdf(-d1)


def ref_delta(s: float, k: float, t: float, r: float, sigma: float, call: bool) -> float:
    d1 = (math.log(s / k) + (r + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
    return norm.cdf(d1) if call else norm.cdf(d1) - 1


def ref_iv(atm: float, s: float, k: float, t: float) -> float:
    ratio = 1 - SKEW.slope * math.log(k / s) / math.sqrt(t)
    return atm * min(max(ratio, SKEW.floor_ratio), SKEW.cap_ratio)


def reference(panel: MarketPanel, cfg: BacktestConfig) -> tuple[np.ndarray, list[dict]]:
    """The module docstrings' rules, written out plainly (fixed sizing, no regimes)."""
    sp, fl, lim = cfg.spread, cfg.fills, cfg.limits
    call = sp.strategy == "bear_call"
    r = cfg.rate
    days = panel.dates
    n, k = panel.close.shape
    realized = cfg.initial_equity
    open_: list[dict] = []
    done: list[dict] = []
    equity = np.zeros(n)

    def mid(pos: dict, s: float, t: float, atm: float) -> float:
        return ref_price(s, pos["ks"], t, r, ref_iv(atm, s, pos["ks"], t), call) - ref_price(
            s, pos["kl"], t, r, ref_iv(atm, s, pos["kl"], t), call
        )

    def half(x: float) -> float:
        return max(fl.half_spread_pct / 100 * x, fl.min_half_spread)

    for d in range(n):
        unreal = 0.0
        for pos in list(open_):
            s = panel.close[d, pos["j"]]
            width = abs(pos["kl"] - pos["ks"])
            reason = None
            if d >= pos["exp"]:
                debit = min(max((s - pos["ks"]) if call else (pos["ks"] - s), 0.0), width)
                fees, reason = 0.0, "expiration"
            else:
                t = (days[pos["exp"]] - days[d]).days / 365
                value = mid(pos, s, t, panel.mark_iv[d, pos["j"]])
                debit = min(value + half(value), width)
                fees = 2 * fl.fee_per_contract * pos["n"]
                if debit <= pos["credit"] * (1 - sp.profit_target_pct / 100):
                    reason = "profit_target"
                elif debit - pos["credit"] >= sp.stop_loss_pct / 100 * pos["credit"]:
                    reason = "stop_loss"
            if reason:
                pnl = (pos["credit"] - debit) * 100 * pos["n"] - fees
                realized += pnl
                done.append(
                    {
                        **pos,
                        "exit": d,
                        "reason": reason,
                        "pnl": pnl - 2 * fl.fee_per_contract * pos["n"],
                    }
                )
                open_.remove(pos)
            else:
                unreal += (pos["credit"] - value) * 100 * pos["n"]
        eq_now = realized + unreal
        if d < n - 1:
            for j in range(k):
                if len(open_) >= lim.max_positions:
                    break
                s, atm = panel.close[d, j], panel.atm_iv[d, j]
                target = days[d] + pd.Timedelta(days=sp.target_dte)
                exp = int(np.searchsorted(days.values, target.to_datetime64()))
                if exp >= n:
                    continue
                t = (days[exp] - days[d]).days / 365
                step = panel.strike_steps[j]
                base = math.ceil(s / step) * step if call else math.floor(s / step) * step
                best, best_gap, best_delta = None, np.inf, None
                for i in range(2000):
                    kk = base + i * step if call else base - i * step
                    dl = abs(ref_delta(s, kk, t, r, ref_iv(atm, s, kk, t), call))
                    if dl < sp.min_delta:
                        break
                    gap = abs(dl - (sp.min_delta + sp.max_delta) / 2)
                    if dl <= sp.max_delta and gap < best_gap:
                        best, best_gap, best_delta = kk, gap, dl
                if best is None:
                    continue
                w = max(step, round(sp.width_pct / 100 * s / step) * step)
                pos = {
                    "j": j,
                    "entry": d,
                    "exp": exp,
                    "ks": best,
                    "kl": best + w if call else best - w,
                    "delta": best_delta,
                }
                m = mid(pos, s, t, atm)
                pos["credit"] = m - half(m)
                if pos["credit"] <= 0:
                    continue
                risk = (w - pos["credit"]) * 100
                heat = sum((abs(p["kl"] - p["ks"]) - p["credit"]) * 100 * p["n"] for p in open_)
                und = sum(
                    (abs(p["kl"] - p["ks"]) - p["credit"]) * 100 * p["n"]
                    for p in open_
                    if p["j"] == j
                )
                room = min(
                    lim.max_portfolio_heat_pct / 100 * eq_now - heat,
                    lim.max_per_underlying_pct / 100 * eq_now - und,
                )
                pos["n"] = min(cfg.sizing.contracts, math.floor(room / risk + 1e-9))
                if pos["n"] < 1:
                    continue
                realized -= 2 * fl.fee_per_contract * pos["n"]
                unreal += (pos["credit"] - m) * 100 * pos["n"]
                open_.append(pos)
                eq_now = realized + unreal
        equity[d] = realized + unreal
    return equity, done


@pytest.fixture(scope="module")
def spx_2008() -> MarketPanel:
    from research.backtest.service import load_panel

    panel, _, _ = load_panel(["SPX", "NDX"], start="2007-06-01", end="2009-06-30")
    return panel


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"spread.strategy": "bull_put", "limits.max_positions": 3, "sizing.contracts": 4},
        {
            "spread.min_delta": 0.2,
            "spread.max_delta": 0.3,
            "spread.profit_target_pct": 50,
            "spread.stop_loss_pct": 200,
            "spread.target_dte": 45,
            "limits.max_portfolio_heat_pct": 8,
        },
    ],
)
def test_engine_equals_the_reference_on_real_2007_09_data(
    spx_2008: MarketPanel, changes: dict
) -> None:
    cfg = BacktestConfig().replace(**changes)
    result = run_backtest(spx_2008, cfg)
    equity, trades = reference(spx_2008, cfg)
    np.testing.assert_allclose(result.equity.to_numpy(), equity, rtol=1e-9, atol=1e-6)
    got = result.trades.sort_values(["entry_date", "ticker"], ignore_index=True)
    want = sorted(trades, key=lambda p: (p["entry"], spx_2008.tickers[p["j"]]))
    assert len(got) == len(want) > 20
    assert list(got["short_strike"]) == [p["ks"] for p in want]
    assert list(got["exit_reason"]) == [p["reason"] for p in want]
    np.testing.assert_allclose(got["pnl"], [p["pnl"] for p in want], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(got["delta"], [p["delta"] for p in want], rtol=1e-9)


# --- hand-computed single trades -----------------------------------------------------------


def test_flat_market_expires_worthless_or_hits_the_profit_target() -> None:
    panel = make_panel(np.full(60, 1000.0))
    no_pt = BacktestConfig().replace(**{"spread.profit_target_pct": 100, "limits.max_positions": 1})
    res = run_backtest(panel, no_pt)
    first = res.trades.iloc[0]
    # S=1000, strike grid 2.5; the call spread expires out of the money: keep the credit
    assert first["exit_reason"] == "expiration" and first["short_strike"] > 1000
    assert first["long_strike"] - first["short_strike"] == 15.0  # 1.5% of 1000
    assert first["pnl"] == pytest.approx(first["credit"] * 100 - 2 * 0.65)
    # expiry: the first trading day at least 30 calendar days after entry
    assert (
        first["expiration"]
        == panel.dates[panel.dates >= first["entry_date"] + pd.Timedelta(days=30)][0]
    )
    assert first["dte"] == (first["expiration"] - first["entry_date"]).days
    assert 0.05 <= first["delta"] <= 0.15
    res = run_backtest(panel, BacktestConfig().replace(**{"limits.max_positions": 1}))
    assert res.trades.iloc[0]["exit_reason"] == "profit_target"
    t = res.trades.iloc[0]
    assert t["debit"] <= 0.35 * t["credit"] + 1e-12
    assert t["pnl"] == pytest.approx((t["credit"] - t["debit"]) * 100 - 4 * 0.65)


def test_rally_through_the_spread_settles_at_max_loss() -> None:
    closes = np.concatenate([np.full(5, 100.0), np.full(55, 130.0)])
    cfg = BacktestConfig().replace(
        **{"spread.stop_loss_pct": 1e6, "limits.max_positions": 1, "spread.profit_target_pct": 100}
    )
    t = run_backtest(make_panel(closes), cfg).trades.iloc[0]
    width = t["long_strike"] - t["short_strike"]
    assert width == pytest.approx(1.5)  # 1.5% of 100 on a 0.25 grid
    assert t["exit_reason"] == "expiration" and t["debit"] == pytest.approx(width)
    assert t["pnl"] == pytest.approx(-(width - t["credit"]) * 100 - 2 * 0.65)
    assert t["max_loss"] == pytest.approx(width - t["credit"])


def test_gap_up_triggers_the_stop_at_the_next_close() -> None:
    closes = np.concatenate([np.full(5, 100.0), [103.0], np.full(54, 103.0)])
    cfg = BacktestConfig().replace(**{"limits.max_positions": 1})
    t = run_backtest(make_panel(closes), cfg).trades.iloc[0]
    assert t["exit_reason"] == "stop_loss" and t["exit_date"] == make_panel(closes).dates[5]
    assert t["debit"] - t["credit"] >= 1.25 * t["credit"]


# --- sizing, regimes, limits -----------------------------------------------------------------


def test_scaled_sizing_and_per_underlying_limit_hand_computed() -> None:
    panel = make_panel(np.full(40, 1000.0))
    cfg = BacktestConfig().replace(
        **{
            "sizing.mode": "scaled",
            "sizing.risk_pct": 5.0,
            "limits.max_positions": 1,
            "limits.max_per_underlying_pct": 50,
        }
    )
    t = run_backtest(panel, cfg).trades.iloc[0]
    # equity is exactly 1,000,000 on the first day; max loss per contract = (width - credit) x 100
    assert t["contracts"] == math.floor(1_000_000 * 0.05 / (t["max_loss"] * 100)) == 36
    capped = cfg.replace(**{"limits.max_per_underlying_pct": 2})
    t2 = run_backtest(panel, capped).trades.iloc[0]
    assert t2["contracts"] == math.floor(1_000_000 * 0.02 / (t2["max_loss"] * 100)) == 14
    none = run_backtest(panel, cfg.replace(**{"limits.max_per_underlying_pct": 0.1}))
    assert none.trades.empty and none.counters["limits"] > 0


def test_regime_multiplier_scales_contracts_by_the_entry_label() -> None:
    panel = make_panel(np.full(80, 100.0))
    labels = pd.DataFrame(
        {
            "date": panel.dates,
            "symbol": "AAA",
            "regime": np.where(np.arange(80) < 40, "bull", "bear"),
        }
    )
    cfg = BacktestConfig().replace(
        **{
            "sizing.contracts": 4,
            "sizing.regime_multipliers": {"bull": 1.0, "bear": 0.5},
            "limits.max_portfolio_heat_pct": 100,
            "limits.max_per_underlying_pct": 100,
        }
    )
    trades = run_backtest(panel, cfg, labels).trades
    by = trades.groupby("regime")["contracts"].unique()
    assert list(by["bull"]) == [4] and list(by["bear"]) == [2]
    assert (trades.loc[trades["regime"] == "bear", "entry_date"] >= panel.dates[40]).all()
    zero = cfg.replace(**{"sizing.regime_multipliers": {"bull": 1.0, "bear": 0.2}})
    res = run_backtest(panel, zero, labels)
    assert (res.trades["regime"] == "bull").all() and res.counters["position_size_zero"] > 0


def test_portfolio_limits_hold_every_day(spx_2008: MarketPanel) -> None:
    cfg = BacktestConfig().replace(
        **{
            "sizing.contracts": 3,
            "limits.max_positions": 4,
            "limits.max_portfolio_heat_pct": 12,
            "limits.max_per_underlying_pct": 8,
        }
    )
    res = run_backtest(spx_2008, cfg)
    t = res.trades
    assert len(t) > 20
    # at most one new spread per ticker per day
    assert not t.duplicated(["entry_date", "ticker"]).any()
    for day in spx_2008.dates:
        live = t.loc[(t["entry_date"] <= day) & (t["exit_date"] > day)]
        assert len(live) <= 4
        eq = res.equity.loc[:day].iloc[-1]
        # limits are checked against equity before the day's entries; allow the entry costs
        slack = 1 + 0.01
        assert live["max_loss_total"].sum() <= 0.12 * eq * slack
        for _, part in live.groupby("ticker"):
            assert part["max_loss_total"].sum() <= 0.08 * eq * slack


def test_many_configs_per_call_equal_single_runs(spx_2008: MarketPanel) -> None:
    a = BacktestConfig()
    b = a.replace(**{"spread.strategy": "bull_put", "sizing.contracts": 2})
    both = run_kernel(spx_2008, [a, b], record_trades=False)
    for i, cfg in enumerate((a, b)):
        single = run_backtest(spx_2008, cfg)
        np.testing.assert_array_equal(both.equity[i], single.equity.to_numpy())
        assert both.n_trades[i] == len(single.trades)
    assert len(run_backtests(spx_2008, [a, b])) == 2


def test_bull_put_strikes_are_below_spot_with_delta_in_range(spx_2008: MarketPanel) -> None:
    t = run_backtest(spx_2008, BacktestConfig().replace(**{"spread.strategy": "bull_put"})).trades
    assert (t["short_strike"] < t["underlying_price"]).all()
    assert (t["long_strike"] < t["short_strike"]).all()
    assert t["delta"].between(0.05, 0.15).all()


# --- alignment and bad input -------------------------------------------------------------------


def _bars(symbol: str, dates: pd.DatetimeIndex) -> pd.DataFrame:
    close = np.linspace(100, 110, len(dates))
    return pd.DataFrame(
        {
            "date": dates,
            "symbol": symbol,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 1.0,
        }
    )


def _iv(bars: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": bars["date"],
            "symbol": bars["symbol"],
            "atm_iv": 0.2,
            "iv_source": "index",
            "vix": 20.0,
            "iv_percentile": 50.0,
        }
    )


def test_only_days_every_ticker_has_are_traded() -> None:
    days = pd.bdate_range("2020-01-01", periods=30)
    bars = pd.concat([_bars("A", days), _bars("B", days.delete([3, 7]))])
    panel = market_panel(bars, _iv(bars))
    assert len(panel.dates) == 28 and panel.dropped_days == 2
    assert days[3] not in panel.dates


@pytest.mark.parametrize(
    ("bars", "kwargs", "message"),
    [
        (
            pd.concat(
                [
                    _bars("A", pd.bdate_range("2020-01-01", periods=5)),
                    _bars("B", pd.bdate_range("2021-01-01", periods=5)),
                ]
            ),
            {},
            "no date in common",
        ),
        (
            _bars("A", pd.bdate_range("2020-01-01", periods=5)),
            {"start": "2022-01-01"},
            "no bars for",
        ),
        (
            _bars("A", pd.bdate_range("2020-01-01", periods=5)),
            {"tickers": ["ZZZ"]},
            r"tickers \['ZZZ'\] have no bars",
        ),
    ],
)
def test_alignment_errors(bars: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        market_panel(bars, _iv(bars), **kwargs)


def test_missing_iv_is_an_error_before_work() -> None:
    bars = _bars("A", pd.bdate_range("2020-01-01", periods=5))
    iv = _iv(bars).assign(atm_iv=np.nan)
    with pytest.raises(ValueError, match="no implied volatility"):
        market_panel(bars, iv)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"spread.min_delta": 0.2, "spread.max_delta": 0.1}, "min_delta <= max_delta"),
        ({"spread.width_pct": 0}, "width_pct must be > 0"),
        ({"spread.profit_target_pct": 0}, "profit_target_pct"),
        ({"spread.target_dte": 0}, "target_dte must be > 0"),
        ({"spread.strategy": "iron_condor"}, "bear_call or bull_put"),
        ({"sizing.mode": "scaled", "sizing.risk_pct": 0}, "risk_pct"),
        ({"limits.max_positions": 0}, "max_positions"),
        ({"spread.nope": 1}, r"unknown spread parameter\(s\) \['nope'\]"),
    ],
)
def test_inconsistent_parameters_fail_before_any_work(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(changes)


def test_export_is_the_seed_format_and_passes_the_trades_contract(
    spx_2008: MarketPanel, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    res = run_backtest(spx_2008, BacktestConfig())
    path = res.export_trades(tmp_path / "trades.json")
    rows = json.loads(path.read_text())
    seed_fields = [
        "date",
        "ticker",
        "short_strike",
        "long_strike",
        "expiration",
        "credit",
        "max_loss",
        "delta",
        "dte",
        "iv_percentile",
        "vix",
        "underlying_price",
        "outcome",
        "pnl",
        "exit_reason",
        "hold_days",
    ]
    assert list(rows[0])[:16] == seed_fields and len(rows) == len(res.trades)
    first = res.trades.iloc[0]
    assert rows[0]["pnl"] == pytest.approx(first["pnl"] / first["contracts"], abs=0.005)
    assert rows[0]["outcome"] == ("profit" if first["pnl"] > 0 else "loss")
    from research.data.loaders import load

    back = load("trades", path)
    assert len(back) == len(rows)


def test_config_round_trip_and_replace() -> None:
    cfg = BacktestConfig().replace(**{"spread.min_delta": 0.1})
    assert cfg.spread.min_delta == 0.1 and cfg.spread.max_delta == 0.15
    assert dataclasses.replace(cfg) == cfg
