"""The shared-path engine (phase 1 ``trade_paths``, phase 2 ``portfolio``) against the
per-configuration reference kernels (``engine._run``, ``chain_engine._run_chains``): equity,
heat, counters and every trade record equal bit for bit — model-priced with fills at the close
and at the next open, chain-priced with missing quotes, the named grids, label permutations
and a random cartesian grid — plus no look-ahead in either phase, grids that use it on their
own, and progress that counts both phases."""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pandas as pd
import pytest

from research.backtest import trade_paths
from research.backtest.kernels import F_REASON, REASON_EXPIRY, REASON_MISSING, REASON_PT, REASON_SL
from research.backtest.market_panel import MarketPanel
from research.backtest.path_cache import PathCache
from research.backtest.run import (
    GridOutput,
    RegimeCodes,
    _config_arrays,
    plan_paths,
    regime_codes,
    run_kernel,
)
from research.backtest.spreads import BacktestConfig
from research.optimize import grids
from research.optimize.service import DEFAULT_BASE


@pytest.fixture(scope="module")
def market() -> tuple[MarketPanel, pd.DataFrame]:
    """SPX + NASDAQ 1999–2018 with their bull/bear x vol labels (the studies' data)."""
    from research.optimize.service import panel_loader, regimes_for

    panel = panel_loader()(("SPX", "IXIC"))
    return panel, regimes_for("bull_bear_vol", ["SPX", "IXIC"])


def _assert_identical(got: GridOutput, want: GridOutput) -> None:
    np.testing.assert_array_equal(got.equity, want.equity)
    np.testing.assert_array_equal(got.heat, want.heat)
    np.testing.assert_array_equal(got.n_trades, want.n_trades)
    np.testing.assert_array_equal(got.counters, want.counters)
    assert got.trades is not None and want.trades is not None
    for i, n in enumerate(want.n_trades):
        np.testing.assert_array_equal(got.trades[i, :n], want.trades[i, :n])


def _both(panel: MarketPanel, configs: list[BacktestConfig], **kw: object) -> GridOutput:
    """Shared run (checked identical to the reference) with the reference's output."""
    want = run_kernel(panel, configs, engine="per_config", **kw)  # type: ignore[arg-type]
    got = run_kernel(panel, configs, engine="shared", cache=PathCache(), **kw)  # type: ignore[arg-type]
    _assert_identical(got, want)
    return want


def _named(base: BacktestConfig = DEFAULT_BASE) -> list[BacktestConfig]:
    return [v.config for v in grids.limit_variants(base) + grids.multiplier_variants(base)]


def test_named_grids_with_close_fills(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    panel, labels = market
    out = _both(panel, _named(), regimes=labels)
    assert out.n_trades.min() > 500
    assert len(set(out.n_trades[:5])) == 5  # each limit set trades differently


def test_named_grids_with_next_open_fills(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    panel, labels = market
    base = DEFAULT_BASE.replace(**{"fills.timing": "next_open"})
    configs = _named(base) + [
        base.replace(**{"spread.stop_loss_pct": 40.0, "spread.profit_target_pct": 30.0}),
        base.replace(**{"sizing.mode": "fixed", "sizing.contracts": 2}),
    ]
    out = _both(panel, configs, regimes=labels)
    assert out.n_trades.min() > 300


def test_other_strategies_and_pricing(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    panel, labels = market
    base = DEFAULT_BASE.replace(
        **{
            "spread.strategy": "bull_put",
            "spread.min_iv_percentile": 40.0,
            "fills.min_half_spread": 0.05,
            "skew_curvature": 0.3,
        }
    )
    configs = [
        base,
        base.replace(**{"sizing.mode": "fixed", "sizing.contracts": 3}),
        base.replace(**{"limits.max_positions": 1, "initial_equity": 20_000.0}),
    ]
    out = _both(panel, configs, regimes=labels)
    assert out.counters[:, 4].sum() > 0  # the IV filter skipped days


def test_label_permutations(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    panel, labels = market
    codes, names = regime_codes(panel, labels)
    rng = np.random.default_rng(0)
    sets = np.stack([codes, codes[rng.permutation(len(codes))], codes[::-1].copy()])
    configs = [v.config for v in grids.multiplier_variants(DEFAULT_BASE)][:3] * 3
    _both(panel, configs, code_sets=RegimeCodes(sets, names), set_of=[0, 1, 2] * 3)


def test_chain_priced(chain_panel: MarketPanel) -> None:
    from research.backtest.service import regime_labels
    from research.data import market as market_data

    bars = market_data.load_bars(symbols=["SPX"])
    iv = market_data.load_iv_index()
    labels = regime_labels("bull_bear_vol", bars.loc[bars["date"] >= "2014-01-01"], iv)
    base = DEFAULT_BASE
    configs = _named(base) + [
        base.replace(**{"fills.missing_quote": "close"}),
        base.replace(**{"fills.chain_fill": 1.0, "spread.stop_loss_pct": 60.0}),
        base.replace(**{"spread.strategy": "bull_put", "sizing.mode": "fixed"}),
    ]
    out = _both(chain_panel, configs, regimes=labels)
    assert out.counters[:, 6].min() > 0  # spreads were open over missing quotes
    assert out.trades is not None
    reasons = {int(r) for i, n in enumerate(out.n_trades) for r in out.trades[i, :n, F_REASON]}
    assert {REASON_PT, REASON_SL, REASON_EXPIRY, REASON_MISSING} <= reasons


def test_random_cartesian_grid_in_auto_mode(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    panel, labels = market
    axes = {
        "spread.strategy": ["bear_call", "bull_put"],
        "spread.min_delta": [0.05, 0.1],
        "spread.target_dte": [21, 30, 45],
        "spread.profit_target_pct": [40.0, 65.0, 90.0],
        "spread.stop_loss_pct": [75.0, 125.0, 300.0],
        "spread.min_iv_percentile": [0.0, 50.0],
        "fills.timing": ["close", "next_open"],
        "fills.half_spread_pct": [2.0, 5.0],
        "sizing.mode": ["scaled", "fixed"],
        "sizing.risk_pct": [1.0, 3.0],
        "limits.max_positions": [1, 3, 8],
        "limits.max_portfolio_heat_pct": [10.0, 40.0],
    }
    points = list(itertools.product(*axes.values()))
    picked = random.Random(7).sample(points, 48)
    configs = [DEFAULT_BASE.replace(**dict(zip(axes, p, strict=True))) for p in picked]
    # a few strategies shared by many configs: phase 1 pays for them in auto mode
    configs += [c.replace(**{"sizing.risk_pct": r}) for c in configs[:2] for r in (0.5, 1.5, 2.5)]
    plan = plan_paths(panel, configs)
    assert max(len(m) for m in plan.members) >= 4 and min(len(m) for m in plan.members) == 1
    want = run_kernel(panel, configs, labels, engine="per_config")
    cache = PathCache()
    got = run_kernel(panel, configs, labels, engine="auto", cache=cache)
    _assert_identical(got, want)
    assert cache.stats["computed"] == sum(len(m) >= 4 for m in plan.members)
    _assert_identical(run_kernel(panel, configs, labels, engine="shared", cache=cache), want)
    pnl_only = run_kernel(panel, configs, labels, record_trades="pnl", cache=cache)
    assert pnl_only.trades is None
    for i in range(len(configs)):
        np.testing.assert_array_equal(pnl_only.pnl_of(i), want.pnl_of(i))


def _perturbed_after(panel: MarketPanel, t: int) -> MarketPanel:
    """The panel with every price and IV after day ``t`` changed."""
    rng = np.random.default_rng(1)

    def bump(x: np.ndarray) -> np.ndarray:
        y = np.array(x, dtype=float)
        y[t + 1 :] *= rng.uniform(0.7, 1.3, y[t + 1 :].shape)
        return y

    return dataclasses.replace(
        panel,
        close=bump(panel.close),
        open=bump(panel.opens()),
        atm_iv=bump(panel.atm_iv),
        mark_iv=bump(panel.mark_iv),
    )


@pytest.mark.parametrize("timing", ["close", "next_open"])
def test_no_look_ahead_in_either_phase(
    market: tuple[MarketPanel, pd.DataFrame], timing: str
) -> None:
    panel, labels = market
    t = 2500
    other = _perturbed_after(panel, t)
    cfg = DEFAULT_BASE.replace(**{"fills.timing": timing})
    a = _config_arrays([cfg], (), panel.tickers)
    p0 = trade_paths.compute_trade_paths(panel, a, 0)
    p1 = trade_paths.compute_trade_paths(other, a, 0)
    n_tk = len(panel.tickers)
    known = slice(0, (t + 1) * n_tk)  # candidates screened on days up to t
    np.testing.assert_array_equal(p0.screen[: t + 1], p1.screen[: t + 1])
    np.testing.assert_array_equal(p0.entry[known], p1.entry[known])
    np.testing.assert_array_equal(p0.mid0[known], p1.mid0[known])
    if timing == "next_open":  # a fill at day d + 1's open is known on day d + 1
        np.testing.assert_array_equal(p0.fill[: t * n_tk], p1.fill[: t * n_tk])
    # every path value dated up to t is the same
    checked = 0
    for k in np.flatnonzero(p0.offset[known] >= 0):
        d0 = k // n_tk
        n = min(t - d0, int(min(p0.exp_day[k], len(panel.dates) - 1)) - d0)
        if n <= 0:
            continue
        for name in ("value", "debit") + (("open_debit",) if timing == "next_open" else ()):
            a0 = getattr(p0, name)[p0.offset[k] : p0.offset[k] + n]
            a1 = getattr(p1, name)[p1.offset[k] : p1.offset[k] + n]
            np.testing.assert_array_equal(a0, a1)
        checked += 1
    assert checked > 2000
    assert not np.array_equal(p0.value, p1.value)  # the perturbation did change later days
    # phase 2: equity and heat up to day t do not move
    configs = _named(cfg)
    e0 = run_kernel(panel, configs, labels, engine="shared", cache=PathCache())
    e1 = run_kernel(other, configs, labels, engine="shared", cache=PathCache())
    np.testing.assert_array_equal(e0.equity[:, : t + 1], e1.equity[:, : t + 1])
    np.testing.assert_array_equal(e0.heat[:, : t + 1], e1.heat[:, : t + 1])


def test_grid_tables_equal_the_reference_and_paths_are_computed_once(
    market: tuple[MarketPanel, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    panel, labels = market
    variants = grids.limit_variants(DEFAULT_BASE) + grids.multiplier_variants(DEFAULT_BASE)
    windows = [("2001-01-01", "2006-12-31"), ("2007-01-01", "2012-12-31")]

    def panel_for(tickers: tuple[str, ...]) -> MarketPanel:
        return panel

    want = grids.run_grid(
        "g", variants, panel_for, [("SPX", "IXIC")], windows, labels, engine="per_config"
    )
    computed: list[int] = []
    real = trade_paths.compute_trade_paths

    def counting(*args: object, **kw: object) -> trade_paths.TradePaths:
        computed.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(trade_paths, "compute_trade_paths", counting)
    monkeypatch.setenv("RESEARCH_PATH_CACHE", "off")
    from research.backtest import path_cache

    monkeypatch.setattr(path_cache, "_DEFAULT", {})
    got = grids.run_grid("g", variants, panel_for, [("SPX", "IXIC")], windows, labels, chunk_size=3)
    pd.testing.assert_frame_equal(got.table, want.table)
    pd.testing.assert_frame_equal(got.returns, want.returns)
    assert len(computed) == 2  # one strategy x two windows, not once per chunk or batch


def test_grid_progress_counts_both_phases(
    market: tuple[MarketPanel, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    panel, labels = market
    monkeypatch.setattr(grids, "_show_progress", lambda: True)
    variants = grids.limit_variants(DEFAULT_BASE)  # 5 variants, chunks of 2: 3 chunks
    grids.run_grid("lim", variants, lambda t: panel, [("SPX", "IXIC")], None, labels, chunk_size=2)
    err = capsys.readouterr().err
    assert "lim:" in err and "4/4" in err  # 1 shared trade path + 3 chunks


def test_unknown_engine_is_refused(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        run_kernel(market[0], [DEFAULT_BASE], engine="fast")
