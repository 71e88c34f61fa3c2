"""Tests of ``research.backtest.metrics.grid_metrics``, the vectorised ``compute_metrics``.

Notes
-----
- Agreement: on 30 random equity curves (geometric random walks of different drift and
  volatility, oscillating curves with many drawdowns, a never-falling curve and a cash curve),
  per-row risk-free rates and random trade P&L (empty, all winners, all losers, mixed), every
  column of ``grid_metrics`` equals the reference ``compute_metrics`` to ``rtol=1e-12``
  (NaN equal to NaN, inf to inf) and ``trades`` exactly.
- Hand-computed cases: cash growing at the risk-free rate (Sharpe 0), a strictly rising curve
  (no drawdown: Calmar NaN, Sortino inf), a one-day curve (no returns: NaN statistics) and the
  4-day curve 100, 110, 99, 121.
- Errors: non-positive and NaN values (the message names the row and the date) and shape
  mismatches raise ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from research.backtest.metrics import GRID_METRICS, compute_metrics, grid_metrics

SQRT252 = math.sqrt(252)
N_ROWS = 30
N_DAYS = 500
WAVES = (N_ROWS - 4, N_ROWS - 3)
"""Rows of the two oscillating curves."""
RISING = N_ROWS - 2
"""Row of the never-falling curve."""
CASH = N_ROWS - 1
"""Row of the cash curve."""
DATES = pd.bdate_range("2020-01-01", periods=N_DAYS)


def _trades_frame(pnl: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """A trades table for ``compute_metrics``: the dates do not enter the grid's columns."""
    n = len(pnl)
    return pd.DataFrame(
        {
            "entry_date": pd.DatetimeIndex([dates[0]] * n),
            "exit_date": pd.DatetimeIndex([dates[-1]] * n),
            "pnl": np.asarray(pnl, dtype="float64"),
        }
    )


def _reference(
    equity: np.ndarray, dates: pd.DatetimeIndex, pnl: np.ndarray, rf: float
) -> dict[str, Any]:
    series = pd.Series(equity, index=dates)
    return compute_metrics(series, _trades_frame(pnl, dates), rf=rf).to_dict()


def _assert_row_matches(row: pd.Series, expected: dict[str, Any], label: str) -> None:
    for column in GRID_METRICS:
        if column == "trades":
            assert row[column] == expected[column], f"{label} {column}"
            continue
        np.testing.assert_allclose(
            float(row[column]),
            float(expected[column]),
            rtol=1e-12,
            atol=0.0,
            equal_nan=True,
            err_msg=f"{label} {column}",
        )


def _random_grid() -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """30 curves x 500 days, each row's trade P&L and its risk-free rate."""
    rng = np.random.default_rng(20240607)
    t = np.arange(N_DAYS)
    rows: list[np.ndarray] = []
    for _ in range(N_ROWS - 4):
        drift = rng.uniform(-0.0005, 0.001)
        vol = rng.uniform(0.002, 0.04)
        log_ret = rng.normal(drift, vol, N_DAYS - 1)
        rows.append(rng.uniform(1e3, 1e6) * np.exp(np.concatenate([[0.0], np.cumsum(log_ret)])))
    # two oscillating curves: a drawdown every ~20 days, on top of noise
    for period in (17.0, 23.0):
        wave = 0.15 * np.sin(2 * np.pi * t / period) + rng.normal(0.0, 0.01, N_DAYS).cumsum()
        rows.append(1e5 * np.exp(wave))
    # a never-falling curve (no drawdown, no day below rf=0): calmar NaN, sortino inf
    rows.append(100.0 * np.cumprod(np.concatenate([[1.0], 1.0 + rng.uniform(0.0, 0.01, 499)])))
    rates = np.resize(np.array([0.0, 0.02, 0.05]), N_ROWS)
    rates[RISING] = 0.0
    # a cash curve at its own risk-free rate (Sharpe 0 by convention)
    rates[CASH] = 0.05
    rows.append(1e4 * (1.05 ** (1 / 252)) ** t)
    equity = np.vstack(rows)
    assert equity.shape == (N_ROWS, N_DAYS) and len(rows) - 1 == CASH

    pnl: list[np.ndarray] = []
    for i in range(N_ROWS):
        kind = i % 5
        n = int(rng.integers(1, 80))
        if kind == 0:
            pnl.append(np.empty(0))
        elif kind == 1:
            pnl.append(rng.uniform(1.0, 500.0, n))  # winners only: profit factor inf
        elif kind == 2:
            pnl.append(-rng.uniform(1.0, 500.0, n))  # losers only: profit factor 0
        elif kind == 3:
            # mixed, with break-even trades (they count as trades, not as wins)
            p = np.round(rng.normal(10.0, 200.0, n), 2)
            p[: n // 4] = 0.0
            pnl.append(p)
        else:
            pnl.append(rng.normal(-5.0, 100.0, n))
    return equity, pnl, rates


@pytest.fixture(scope="module")
def grid() -> tuple[np.ndarray, list[np.ndarray], np.ndarray, pd.DataFrame]:
    equity, pnl, rates = _random_grid()
    return equity, pnl, rates, grid_metrics(equity, DATES, pnl, rf=rates)


# ---------------------------------------------------------------------------------------------
# Agreement with compute_metrics
# ---------------------------------------------------------------------------------------------


def test_grid_shape_and_columns(
    grid: tuple[np.ndarray, list[np.ndarray], np.ndarray, pd.DataFrame],
) -> None:
    _, _, _, frame = grid
    assert list(frame.columns) == list(GRID_METRICS)
    assert len(frame) == N_ROWS
    assert frame["trades"].dtype == np.int64


def test_grid_agrees_with_compute_metrics_on_every_row(
    grid: tuple[np.ndarray, list[np.ndarray], np.ndarray, pd.DataFrame],
) -> None:
    equity, pnl, rates, frame = grid
    for i in range(N_ROWS):
        expected = _reference(equity[i], DATES, pnl[i], float(rates[i]))
        _assert_row_matches(frame.iloc[i], expected, f"row {i}")


def test_grid_covers_the_special_values(
    grid: tuple[np.ndarray, list[np.ndarray], np.ndarray, pd.DataFrame],
) -> None:
    """The random grid really exercises NaN/inf/0 branches (so the agreement test covers them)."""
    _, pnl, _, frame = grid
    empty = [i for i, p in enumerate(pnl) if len(p) == 0]
    assert empty and (frame.loc[empty, "trades"] == 0).all()
    assert frame.loc[empty, ["win_rate", "avg_pnl", "profit_factor"]].isna().all().all()
    winners = [i for i, p in enumerate(pnl) if len(p) and (p > 0).all()]
    assert winners and np.isinf(frame.loc[winners, "profit_factor"]).all()
    losers = [i for i, p in enumerate(pnl) if len(p) and (p < 0).all()]
    assert losers and (frame.loc[losers, "profit_factor"] == 0.0).all()
    assert (frame.loc[losers, "win_rate"] == 0.0).all()
    rising = frame.iloc[RISING]
    assert rising["max_drawdown"] == 0.0
    assert math.isnan(rising["calmar"])
    assert rising["sortino"] == math.inf
    assert frame.iloc[CASH]["sharpe"] == 0.0  # cash at its rf
    # the oscillating curves have deep drawdowns
    assert (frame.loc[list(WAVES), "max_drawdown"] < -0.2).all()


def test_scalar_rf_equals_the_same_rate_per_row(
    grid: tuple[np.ndarray, list[np.ndarray], np.ndarray, pd.DataFrame],
) -> None:
    equity, pnl, _, _ = grid
    scalar = grid_metrics(equity, DATES, pnl, rf=0.03)
    per_row = grid_metrics(equity, DATES, pnl, rf=np.full(N_ROWS, 0.03))
    pd.testing.assert_frame_equal(scalar, per_row, check_exact=True)
    for i in (0, 7):
        _assert_row_matches(scalar.iloc[i], _reference(equity[i], DATES, pnl[i], 0.03), f"{i}")


def test_rf_changes_only_sharpe_and_sortino(
    grid: tuple[np.ndarray, list[np.ndarray], np.ndarray, pd.DataFrame],
) -> None:
    equity, pnl, _, _ = grid
    zero = grid_metrics(equity[:3], DATES, pnl[:3], rf=0.0)
    high = grid_metrics(equity[:3], DATES, pnl[:3], rf=0.10)
    same = [c for c in GRID_METRICS if c not in ("sharpe", "sortino")]
    pd.testing.assert_frame_equal(zero[same], high[same], check_exact=True)
    # a higher hurdle lowers the excess return: both ratios fall
    assert (high["sharpe"] < zero["sharpe"]).all()
    assert (high["sortino"] < zero["sortino"]).all()


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rf", [0.0, 0.02, 0.05])
def test_cash_at_the_risk_free_rate_has_zero_sharpe(rf: float) -> None:
    dates = pd.bdate_range("2021-01-04", periods=300)
    daily = (1.0 + rf) ** (1.0 / 252)
    cash = 1e6 * daily ** np.arange(300)
    frame = grid_metrics(cash[None, :], dates, [np.empty(0)], rf=rf)
    assert frame.loc[0, "sharpe"] == 0.0
    reference = compute_metrics(pd.Series(cash, index=dates), None, rf=rf)
    assert reference.sharpe == 0.0
    # 299 days of growth at the daily rate
    assert frame.loc[0, "total_return"] == pytest.approx(daily**299 - 1.0, rel=1e-12, abs=1e-15)
    assert frame.loc[0, "max_drawdown"] == 0.0


def test_strictly_rising_curve() -> None:
    dates = pd.bdate_range("2022-01-03", periods=6)
    values = np.array([[100.0, 101.0, 103.0, 104.0, 108.0, 110.0]])
    frame = grid_metrics(values, dates, [np.array([5.0, -2.0])])
    row = frame.iloc[0]
    assert row["max_drawdown"] == 0.0
    assert math.isnan(row["calmar"])
    assert row["sortino"] == math.inf  # no day below the target rf = 0, positive mean
    assert row["total_return"] == pytest.approx(0.10, rel=1e-14)
    # trades: one win of 5, one loss of 2
    assert row["trades"] == 2
    assert row["win_rate"] == 0.5
    assert row["avg_pnl"] == 1.5
    assert row["profit_factor"] == 2.5


def test_one_day_curve() -> None:
    dates = pd.DatetimeIndex(["2023-05-01"])
    frame = grid_metrics(np.array([[250.0], [80.0]]), dates, [np.empty(0), np.array([1.0])])
    assert (frame["total_return"] == 0.0).all()
    assert (frame["max_drawdown"] == 0.0).all()
    for column in ("cagr", "ann_vol", "sharpe", "sortino", "calmar"):
        assert frame[column].isna().all(), column  # years = 0 and no returns
    assert frame["trades"].tolist() == [0, 1]
    reference = compute_metrics(pd.Series([250.0], index=dates), None)
    assert math.isnan(reference.cagr) and math.isnan(reference.sharpe)


def test_two_day_curve_has_one_return_so_no_volatility() -> None:
    dates = pd.bdate_range("2023-05-01", periods=2)
    frame = grid_metrics(np.array([[100.0, 90.0]]), dates, [np.empty(0)])
    row = frame.iloc[0]
    assert row["total_return"] == pytest.approx(-0.1, rel=1e-14)
    assert row["max_drawdown"] == pytest.approx(-0.1, rel=1e-14)
    # a single return has no sample standard deviation (ddof=1)
    assert math.isnan(row["ann_vol"]) and math.isnan(row["sharpe"])
    assert math.isnan(row["sortino"])


def test_four_day_curve_by_hand() -> None:
    # Mon 2024-01-01 .. Thu 2024-01-04: 3 calendar days
    dates = pd.bdate_range("2024-01-01", periods=4)
    values = np.array([[100.0, 110.0, 99.0, 121.0]])
    row = grid_metrics(values, dates, [np.array([30.0, -10.0, 0.0])]).iloc[0]
    assert row["total_return"] == pytest.approx(0.21, rel=1e-14)
    # deepest point: 99 after the 110 peak
    assert row["max_drawdown"] == 99.0 / 110.0 - 1.0
    assert row["max_drawdown"] == pytest.approx(-0.1, rel=1e-14)
    # returns +10 %, -10 %, 121/99 - 1 = 2/9
    returns = np.array([0.1, -0.1, 2.0 / 9.0])
    mean = returns.mean()  # 2/27
    assert mean == pytest.approx(2.0 / 27.0, rel=1e-14)
    std = np.sqrt(((returns - mean) ** 2).sum() / 2)  # sample std, ddof=1
    assert row["ann_vol"] == pytest.approx(std * SQRT252, rel=1e-12)
    assert row["sharpe"] == pytest.approx(mean / std * SQRT252, rel=1e-12)
    assert row["sharpe"] == pytest.approx(7.2288, rel=1e-4)  # 0.074074 / 0.162668 * 15.8745
    # downside deviation over all 3 days: only -10 % is below 0
    down = math.sqrt(0.01 / 3)
    assert row["sortino"] == pytest.approx(mean / down * SQRT252, rel=1e-12)
    years = 3 / 365.25
    cagr = 1.21 ** (1 / years) - 1
    assert row["cagr"] == pytest.approx(cagr, rel=1e-12)
    assert row["calmar"] == pytest.approx(cagr / 0.1, rel=1e-12)
    # trades 30, -10, 0: one win in three, gross win 30 / gross loss 10
    assert row["trades"] == 3
    assert row["win_rate"] == pytest.approx(1 / 3, rel=1e-15)
    assert row["avg_pnl"] == pytest.approx(20 / 3, rel=1e-15)
    assert row["profit_factor"] == 3.0


def test_trade_statistics_of_break_even_trades_only() -> None:
    dates = pd.bdate_range("2024-01-01", periods=3)
    row = grid_metrics(np.array([[1.0, 2.0, 3.0]]), dates, [np.zeros(4)]).iloc[0]
    assert row["trades"] == 4
    assert row["win_rate"] == 0.0
    assert row["avg_pnl"] == 0.0
    assert math.isnan(row["profit_factor"])  # neither wins nor losses


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_bad_value_names_row_and_date(bad: float) -> None:
    dates = pd.bdate_range("2024-03-01", periods=6)
    equity = np.full((4, 6), 100.0)
    equity[2, 4] = bad
    with pytest.raises(ValueError, match="row 2") as info:
        grid_metrics(equity, dates, [np.empty(0)] * 4)
    assert str(dates[4]) in str(info.value)  # 2024-03-07 (the 5th business day)
    assert "2024-03-07" in str(info.value)


def test_first_bad_value_is_reported() -> None:
    dates = pd.bdate_range("2024-03-01", periods=6)
    equity = np.full((4, 6), 100.0)
    equity[3, 1] = -1.0
    equity[1, 5] = math.nan
    with pytest.raises(ValueError, match="row 1") as info:
        grid_metrics(equity, dates, [np.empty(0)] * 4)
    assert "2024-03-08" in str(info.value)


def test_shape_mismatches() -> None:
    dates = pd.bdate_range("2024-03-01", periods=5)
    good = np.full((3, 5), 100.0)
    pnl = [np.empty(0)] * 3
    with pytest.raises(ValueError, match="one column per date"):
        grid_metrics(np.full((3, 4), 100.0), dates, pnl)
    with pytest.raises(ValueError, match="one trade list per row"):
        grid_metrics(good, dates, pnl[:2])
    with pytest.raises(ValueError, match="one column per date"):
        grid_metrics(good[0], dates, pnl[:1])  # 1-D equity
    # the valid call works (so the failures above are the shapes)
    assert len(grid_metrics(good, dates, pnl)) == 3


def test_invalid_rf() -> None:
    dates = pd.bdate_range("2024-03-01", periods=5)
    with pytest.raises(ValueError, match="rf must be"):
        grid_metrics(np.full((2, 5), 100.0), dates, [np.empty(0)] * 2, rf=np.array([0.0, -1.0]))
