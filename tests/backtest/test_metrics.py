"""Tests of research.backtest.metrics against numbers worked out by hand.

Every expected value below is derived in the comment next to it from the input numbers, not
from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from research.backtest.metrics import (
    STRESS_WINDOWS,
    Metrics,
    StressWindow,
    compare,
    compute_metrics,
    drawdown_series,
    metrics_frame,
    stress_table,
    yearly_returns,
)

SQRT252 = math.sqrt(252)


def curve(values: list[float], start: str = "2024-01-01", freq: str = "D") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq))


def trades_table(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["entry_date", "exit_date", "pnl"]).astype(
        {"entry_date": "datetime64[ns]", "exit_date": "datetime64[ns]"}
    )


# ---------------------------------------------------------------------------------------------
# The 5-day curve, every number by hand
# ---------------------------------------------------------------------------------------------
# Dates 2024-01-01 .. 2024-01-05 (5 consecutive days; the metric only sees the dates).
# Values 100, 110, 99, 104.94, 115.434  ->  daily returns r = +10 %, -10 %, +6 %, +10 %.
FIVE = curve([100.0, 110.0, 99.0, 104.94, 115.434])


@pytest.fixture(scope="module")
def five() -> Metrics:
    return compute_metrics(FIVE, None)


def test_five_day_levels_and_dates(five: Metrics) -> None:
    assert five.start == pd.Timestamp("2024-01-01")
    assert five.end == pd.Timestamp("2024-01-05")
    # 4 calendar days / 365.25
    assert five.years == pytest.approx(4 / 365.25, rel=1e-15)
    assert five.initial == 100.0
    assert five.final == 115.434
    # 1.1 * 0.9 * 1.06 * 1.1 = 1.15434
    assert five.total_return == pytest.approx(0.15434, rel=1e-12)


def test_five_day_cagr(five: Metrics) -> None:
    # years = 4 / 365.25 = 0.010951...; CAGR = 1.15434 ** (365.25 / 4) - 1 = 1.15434 ** 91.3125 - 1
    #       = exp(91.3125 * ln 1.15434) - 1 = exp(91.3125 * 0.143535...) - 1 ≈ 491 868.725
    assert five.cagr == pytest.approx(1.15434 ** (365.25 / 4) - 1, rel=1e-10)
    assert five.cagr == pytest.approx(491868.725, rel=1e-8)


def test_five_day_vol_sharpe(five: Metrics) -> None:
    # mean r = (0.10 - 0.10 + 0.06 + 0.10) / 4 = 0.04
    # deviations 0.06, -0.14, 0.02, 0.06; squares sum 0.0036 + 0.0196 + 0.0004 + 0.0036 = 0.0272
    # sample std = sqrt(0.0272 / 3) = 0.0952190...
    std = math.sqrt(0.0272 / 3)
    assert five.ann_vol == pytest.approx(std * SQRT252, rel=1e-12)
    assert five.ann_vol == pytest.approx(1.51155549, rel=1e-8)
    # Sharpe (rf = 0) = 0.04 / 0.0952190 * sqrt(252) = 0.420084 * 15.874508 = 6.668627
    assert five.sharpe == pytest.approx(0.04 / std * SQRT252, rel=1e-12)
    assert five.sharpe == pytest.approx(6.66862716, rel=1e-8)


def test_five_day_sortino(five: Metrics) -> None:
    # min(r, 0) = 0, -0.10, 0, 0 -> squares 0, 0.01, 0, 0 -> mean over ALL 4 days = 0.0025
    # downside deviation = sqrt(0.0025) = 0.05 per day, annualised 0.05 * sqrt(252)
    assert five.downside_deviation == pytest.approx(0.05 * SQRT252, rel=1e-12)
    # Sortino = 0.04 / 0.05 * sqrt(252) = 0.8 * 15.874508 = 12.699606
    assert five.sortino == pytest.approx(0.8 * SQRT252, rel=1e-12)
    assert five.sortino == pytest.approx(12.6996063, rel=1e-8)
    # (The std of the negative days only would be undefined here: a single down day.)


def test_five_day_sharpe_sortino_with_risk_free() -> None:
    rf = 0.05
    # daily rf = exp(ln 1.05 / 252) - 1 = exp(0.00019361) - 1 = 0.00019361 + 0.00019361^2 / 2
    d = 1.05 ** (1 / 252) - 1
    assert d == pytest.approx(0.00019363, rel=1e-5)
    m = compute_metrics(FIVE, rf=rf)
    std = math.sqrt(0.0272 / 3)  # subtracting a constant leaves the std unchanged
    assert m.sharpe == pytest.approx((0.04 - d) / std * SQRT252, rel=1e-12)
    # r - d: only -0.10 - d is below 0 -> DD = sqrt((0.10 + d)^2 / 4) = (0.10 + d) / 2
    assert m.sortino == pytest.approx((0.04 - d) / ((0.10 + d) / 2) * SQRT252, rel=1e-12)
    assert m.sortino < compute_metrics(FIVE).sortino


def test_five_day_drawdown(five: Metrics) -> None:
    # peak 110 on 01-02, trough 99 on 01-03: 99 / 110 - 1 = -0.10;
    # back above 110 first on 01-05 (115.434; 01-04 is 104.94 < 110)
    assert five.max_drawdown == pytest.approx(-0.10, rel=1e-12)
    assert five.max_drawdown_start == pd.Timestamp("2024-01-02")
    assert five.max_drawdown_trough == pd.Timestamp("2024-01-03")
    assert five.max_drawdown_end == pd.Timestamp("2024-01-05")
    # Calmar = CAGR / 0.10
    assert five.calmar == pytest.approx((1.15434 ** (365.25 / 4) - 1) / 0.10, rel=1e-10)


def test_drawdown_series_by_hand() -> None:
    dd = drawdown_series(FIVE)
    # running max 100, 110, 110, 110, 115.434 -> 0, 0, 99/110-1, 104.94/110-1, 0
    expected = [0.0, 0.0, -0.10, -0.046, 0.0]
    np.testing.assert_allclose(dd.to_numpy(), expected, rtol=0, atol=1e-12)
    assert dd.name == "drawdown"
    assert dd.index.equals(FIVE.index)
    assert (dd <= 0).all()


# ---------------------------------------------------------------------------------------------
# Drawdown episodes: recovered or not
# ---------------------------------------------------------------------------------------------


def test_drawdown_that_recovers() -> None:
    m = compute_metrics(curve([100.0, 120.0, 90.0, 130.0]))
    assert m.max_drawdown == pytest.approx(90 / 120 - 1)  # -0.25
    assert m.max_drawdown_start == pd.Timestamp("2024-01-02")
    assert m.max_drawdown_trough == pd.Timestamp("2024-01-03")
    assert m.max_drawdown_end == pd.Timestamp("2024-01-04")


def test_drawdown_that_does_not_recover() -> None:
    m = compute_metrics(curve([100.0, 120.0, 90.0, 110.0]))
    assert m.max_drawdown == pytest.approx(-0.25)
    assert m.max_drawdown_start == pd.Timestamp("2024-01-02")
    assert m.max_drawdown_trough == pd.Timestamp("2024-01-03")
    assert m.max_drawdown_end is None


def test_recovery_to_exactly_the_peak_counts() -> None:
    m = compute_metrics(curve([100.0, 120.0, 90.0, 120.0]))
    assert m.max_drawdown_end == pd.Timestamp("2024-01-04")


def test_drawdown_start_is_last_day_at_the_peak() -> None:
    # 120 on 01-02 and again on 01-03, then 90: the fall starts from 01-03
    m = compute_metrics(curve([100.0, 120.0, 120.0, 90.0]))
    assert m.max_drawdown == pytest.approx(-0.25)
    assert m.max_drawdown_start == pd.Timestamp("2024-01-03")
    assert m.max_drawdown_trough == pd.Timestamp("2024-01-04")
    assert m.max_drawdown_end is None


def test_deepest_of_two_drawdowns_is_reported() -> None:
    # -10 % (100 -> 90, recovered 01-03), then -20 % (150 -> 120, recovered 01-07)
    m = compute_metrics(curve([100.0, 90.0, 100.0, 150.0, 120.0, 140.0, 151.0]))
    assert m.max_drawdown == pytest.approx(-0.20)
    assert m.max_drawdown_start == pd.Timestamp("2024-01-04")
    assert m.max_drawdown_trough == pd.Timestamp("2024-01-05")
    assert m.max_drawdown_end == pd.Timestamp("2024-01-07")


def test_curve_that_never_falls() -> None:
    m = compute_metrics(curve([100.0, 101.0, 103.0]))
    assert m.max_drawdown == 0.0
    assert m.max_drawdown_start is None
    assert m.max_drawdown_trough is None
    assert m.max_drawdown_end is None
    assert math.isnan(m.calmar)
    assert m.sortino == math.inf  # no day below the target, positive mean


def test_flat_and_single_point_curves() -> None:
    flat = compute_metrics(curve([100.0, 100.0, 100.0]))
    assert flat.ann_vol == 0.0
    assert flat.sharpe == 0.0  # zero excess return at rf = 0: a risk-free series, Sharpe 0
    assert math.isnan(flat.sortino)  # zero mean, zero downside
    assert flat.cagr == 0.0
    one = compute_metrics(curve([100.0]))
    assert one.years == 0.0
    assert math.isnan(one.cagr)
    assert math.isnan(one.ann_vol)
    assert math.isnan(one.sharpe)
    assert one.total_return == 0.0


def test_exposure_from_positions() -> None:
    # positions on 5 dates: 1, 0, 2, missing (-> 0), 3  -> open on 3 of 5 dates
    pos = pd.Series([1, 0, 2, 3], index=FIVE.index[[0, 1, 2, 4]])
    assert compute_metrics(FIVE, positions=pos).exposure == pytest.approx(0.6)
    assert compute_metrics(FIVE).exposure is None


# ---------------------------------------------------------------------------------------------
# Trade statistics
# ---------------------------------------------------------------------------------------------


def test_trade_statistics_by_hand() -> None:
    trades = trades_table(
        [
            ("2024-01-01", "2024-01-02", 100.0),
            ("2024-01-01", "2024-01-03", -50.0),
            ("2024-01-02", "2024-01-04", 200.0),
            ("2024-01-03", "2024-01-04", 0.0),
            ("2024-01-03", "2024-01-05", -25.0),
        ]
    )
    m = compute_metrics(FIVE, trades)
    assert m.trades == 5
    assert m.win_rate == pytest.approx(2 / 5)  # 100, 200 (the 0 trade is not a win)
    assert m.avg_pnl == pytest.approx(225 / 5)  # 45
    assert m.avg_win == pytest.approx((100 + 200) / 2)  # 150
    assert m.avg_loss == pytest.approx((-50 - 25) / 2)  # -37.5
    assert m.profit_factor == pytest.approx(300 / 75)  # 4.0
    assert m.best_trade == 200.0
    assert m.worst_trade == -50.0


def test_profit_factor_without_losses_is_inf() -> None:
    trades = trades_table([("2024-01-01", "2024-01-02", 10.0), ("2024-01-02", "2024-01-03", 5.0)])
    m = compute_metrics(FIVE, trades)
    assert m.profit_factor == math.inf
    assert m.win_rate == 1.0
    assert math.isnan(m.avg_loss)


def test_no_trades() -> None:
    for trades in (None, trades_table([])):
        m = compute_metrics(FIVE, trades)
        assert m.trades == 0
        for name in ("win_rate", "avg_pnl", "avg_win", "avg_loss", "profit_factor"):
            assert math.isnan(getattr(m, name)), name


# ---------------------------------------------------------------------------------------------
# to_dict, metrics_frame, compare
# ---------------------------------------------------------------------------------------------


def test_to_dict_and_metrics_frame(five: Metrics) -> None:
    d = five.to_dict()
    assert list(d)[:3] == ["start", "end", "years"]
    assert d["sharpe"] == five.sharpe
    assert d["max_drawdown_end"] == pd.Timestamp("2024-01-05")
    other = compute_metrics(curve([100.0, 120.0, 90.0, 110.0]))
    frame = metrics_frame([("five", five), ("other", other)])
    assert list(frame.index) == ["five", "other"]
    assert frame.index.name == "name"
    assert list(frame.columns) == list(d)
    assert frame.loc["five", "sortino"] == pytest.approx(0.8 * SQRT252)
    assert pd.isna(frame.loc["other", "max_drawdown_end"])
    assert frame["exposure"].isna().all()
    with pytest.raises(ValueError, match="duplicate"):
        metrics_frame([("a", five), ("a", other)])


def test_compare() -> None:
    doubled = FIVE * 2  # same returns: identical ratios
    table = compare({"base": FIVE, "double": doubled, "other": curve([100.0, 90.0, 99.0])})
    assert list(table.index) == ["base", "double", "other"]
    assert table.loc["double", "sharpe"] == pytest.approx(table.loc["base", "sharpe"])
    assert table.loc["double", "initial"] == 200.0
    # other: 100 -> 90 -> 99: drawdown -10 %, total return -1 %
    assert table.loc["other", "max_drawdown"] == pytest.approx(-0.10)
    assert table.loc["other", "total_return"] == pytest.approx(-0.01)
    assert (table["trades"] == 0).all()


# ---------------------------------------------------------------------------------------------
# Yearly returns
# ---------------------------------------------------------------------------------------------


def test_yearly_returns_three_years() -> None:
    eq = pd.Series(
        [100.0, 120.0, 110.0, 99.0, 132.0, 121.0, 121.0, 133.1],
        index=pd.to_datetime(
            [
                "2021-01-04", "2021-06-01", "2021-12-31",
                "2022-01-03", "2022-06-01", "2022-12-30",
                "2023-01-03", "2023-12-29",
            ]
        ),
    )  # fmt: skip
    y = yearly_returns(eq)
    assert list(y.columns) == ["year", "return", "max_drawdown"]
    assert y["year"].tolist() == [2021, 2022, 2023]
    # 2021: first value 100 -> 110 = +10 %; peak 120 -> 110 = -1/12
    # 2022: previous close 110 -> 121 = +10 %; 110 -> 99 on the first day = -10 % (deeper than
    #       132 -> 121 = -1/12)
    # 2023: 121 -> 133.1 = +10 %; 121, 121, 133.1 never falls = 0
    np.testing.assert_allclose(y["return"], [0.10, 0.10, 0.10], rtol=1e-12)
    np.testing.assert_allclose(y["max_drawdown"], [-1 / 12, -0.10, 0.0], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Stress windows
# ---------------------------------------------------------------------------------------------


def crisis_curve() -> pd.Series:
    """Business days 2007-01-01 .. 2009-12-31.

    100 through 2007; straight down from 99 (2008-01-01) to 50 (2008-12-31); flat at 50 through
    2009-03-09; straight up to 100 on 2009-12-31.
    """
    d2007 = pd.bdate_range("2007-01-01", "2007-12-31")
    d2008 = pd.bdate_range("2008-01-01", "2008-12-31")
    flat = pd.bdate_range("2009-01-01", "2009-03-09")
    up = pd.bdate_range("2009-03-10", "2009-12-31")
    values = np.concatenate(
        [
            np.full(len(d2007), 100.0),
            np.linspace(99.0, 50.0, len(d2008)),
            np.full(len(flat), 50.0),
            np.linspace(50.0, 100.0, len(up) + 1)[1:],
        ]
    )
    return pd.Series(values, index=d2007.append(d2008).append(flat).append(up))


CRISIS_TRADES = trades_table(
    [
        ("2007-06-01", "2008-02-01", -5.0),  # exits in 2008 (entered before)
        ("2008-03-03", "2008-06-02", -10.0),  # entirely in 2008
        ("2008-12-01", "2009-01-15", 3.0),  # entered in 2008, exits in 2009
    ]
)


def test_stress_table_on_2007_2009_curve() -> None:
    table = stress_table(crisis_curve(), CRISIS_TRADES).set_index("window")
    assert list(table.columns) == [
        "start", "end", "days", "return", "max_drawdown", "trades", "pnl", "complete",
    ]  # fmt: skip
    assert list(table.index) == [w.name for w in STRESS_WINDOWS]

    y2008 = table.loc["2008 crisis"]
    # 2008: 366 days starting on a Tuesday = 52 weeks + Tue, Wed -> 52 * 5 + 2 = 262 weekdays
    assert y2008["days"] == 262
    # base = 2007-12-31 close 100 (not the first 2008 value, 99); last = 50 -> -50 %, and the
    # deepest point is 50 too
    assert y2008["return"] == pytest.approx(-0.50, rel=1e-12)
    assert y2008["max_drawdown"] == pytest.approx(-0.50, rel=1e-12)
    assert y2008["trades"] == 2  # entered 2008-03-03 and 2008-12-01
    assert y2008["pnl"] == pytest.approx(-15.0)  # exited 2008-02-01 (-5) and 2008-06-02 (-10)
    assert bool(y2008["complete"])

    gfc = table.loc["2007–09 GFC peak-to-trough"]
    # base = 2007-10-08 close 100; 2009-03-09 = 50
    assert gfc["return"] == pytest.approx(-0.50, rel=1e-12)
    assert gfc["max_drawdown"] == pytest.approx(-0.50, rel=1e-12)
    assert gfc["trades"] == 2
    assert gfc["pnl"] == pytest.approx(-12.0)  # all three exits fall inside

    for outside in ("2000–02 dot-com bear", "2011 debt-ceiling", "2015–16 selloffs", "2018 Q4"):
        row = table.loc[outside]
        assert row["days"] == 0
        assert math.isnan(row["return"])
        assert math.isnan(row["max_drawdown"])
        assert row["trades"] == 0
        assert row["pnl"] == 0.0
        assert not bool(row["complete"])


def test_stress_window_return_differs_from_drawdown() -> None:
    # 2007-12-01 .. 2009-12-31: base = 2007-11-30 close 100, ends at 100 -> return 0,
    # but it went through 50 -> drawdown -50 %
    window = StressWindow("round trip", pd.Timestamp("2007-12-01"), pd.Timestamp("2009-12-31"))
    row = stress_table(crisis_curve(), windows=[window]).iloc[0]
    assert row["return"] == pytest.approx(0.0, abs=1e-12)
    assert row["max_drawdown"] == pytest.approx(-0.50, rel=1e-12)
    assert math.isnan(row["trades"]) and math.isnan(row["pnl"])  # no trades given


def test_stress_window_partly_covered() -> None:
    # The curve starts 2008-07-01 (2008-06-30 is before it): the 2008 window is measured from
    # the first value inside it and flagged incomplete.
    eq = crisis_curve().loc["2008-07-01":]
    row = stress_table(eq).set_index("window").loc["2008 crisis"]
    assert not bool(row["complete"])
    assert row["days"] == len(pd.bdate_range("2008-07-01", "2008-12-31"))
    assert row["return"] == pytest.approx(50.0 / eq.iloc[0] - 1, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "message"),
    [
        (pd.Series([], dtype=float, index=pd.DatetimeIndex([])), "empty"),
        (
            pd.Series([1.0, 2.0], index=pd.to_datetime(["2024-01-02", "2024-01-01"])),
            "not monotonic",
        ),
        (
            pd.Series([1.0, 2.0], index=pd.to_datetime(["2024-01-01", "2024-01-01"])),
            "not unique",
        ),
        (curve([100.0, 0.0, 50.0]), "non-positive"),
        (curve([100.0, -5.0]), "non-positive"),
        (curve([100.0, float("nan")]), "non-finite"),
        (pd.Series([1.0, 2.0]), "DatetimeIndex"),
    ],
)
def test_bad_equity_raises(equity: pd.Series, message: str) -> None:
    for fn in (compute_metrics, yearly_returns, drawdown_series, stress_table):
        with pytest.raises(ValueError, match=message):
            fn(equity)


def test_bad_trades_raise() -> None:
    with pytest.raises(ValueError, match="missing column.*exit_date"):
        compute_metrics(FIVE, pd.DataFrame({"entry_date": ["2024-01-01"], "pnl": [1.0]}))
    with pytest.raises(ValueError, match="'pnl' has non-finite"):
        compute_metrics(FIVE, trades_table([("2024-01-01", "2024-01-02", float("nan"))]))
    with pytest.raises(ValueError, match="exit_date before entry_date"):
        compute_metrics(FIVE, trades_table([("2024-01-03", "2024-01-02", 1.0)]))


# ---------------------------------------------------------------------------------------------
# Agreement with independent computations
# ---------------------------------------------------------------------------------------------


def random_curve(n: int = 756, seed: int = 20240601) -> pd.Series:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0004, 0.012, n)
    values = 100_000.0 * np.concatenate([[1.0], np.cumprod(1.0 + r)])
    return pd.Series(values, index=pd.bdate_range("2015-01-02", periods=n + 1))


def test_agrees_with_independent_numpy_scipy() -> None:
    eq = random_curve(300)
    v = eq.to_numpy()
    r = np.diff(v) / v[:-1]
    rf = 0.03
    d = 1.03 ** (1 / 252) - 1
    m = compute_metrics(eq, rf=rf)
    # Sharpe: scipy's trimmed (here untrimmed) mean and sample std
    assert m.sharpe == pytest.approx(stats.tmean(r - d) / stats.tstd(r - d) * SQRT252, rel=1e-10)
    assert m.ann_vol == pytest.approx(stats.tstd(r) * SQRT252, rel=1e-10)
    # Sortino: explicit loop over every day
    below = [min(x - d, 0.0) ** 2 for x in r]
    dd_daily = math.sqrt(sum(below) / len(r))
    assert m.sortino == pytest.approx(float(np.mean(r - d)) / dd_daily * SQRT252, rel=1e-10)
    # Max drawdown: brute force over every (peak, later day) pair
    pair = v[None, :] / v[:, None] - 1.0  # [i, j] = v_j / v_i - 1
    brute = float(np.min(np.where(np.triu(np.ones_like(pair, dtype=bool)), pair, 0.0)))
    assert m.max_drawdown == pytest.approx(brute, rel=1e-12)
    # CAGR over calendar years
    years = (eq.index[-1] - eq.index[0]).days / 365.25
    assert m.cagr == pytest.approx((v[-1] / v[0]) ** (1 / years) - 1, rel=1e-12)


def test_agrees_with_empyrical() -> None:
    """empyrical-reloaded, a peer in the ``bench`` extra (installed by ``make install``/``make
    test``; skipped only in an environment installed without that extra).

    Definitions, checked in empyrical's source (stats.py, 0.7.1):
    - ``sharpe_ratio``: mean(r - risk_free) / nanstd(ddof=1) * sqrt(252), ``risk_free`` a
      daily rate -> ours with rf_d passed in;
    - ``sortino_ratio``: mean(r - req) * 252 / (sqrt(nanmean(min(r - req, 0)^2)) * sqrt(252)),
      the same all-days downside deviation as ours;
    - ``max_drawdown``: cumulative returns anchored at 1 before the first return -> same as
      drawdowns of the equity curve including its first value;
    - ``annual_return`` counts years as len(returns) / 252, ours as calendar days / 365.25, so
      it is called with ``annualization = len(returns) / years``, ``years`` counted here from
      the dates (not taken from ``m.years``, so a wrong year count in ours would show);
    - ``annual_volatility``: nanstd(ddof=1) * sqrt(252), as ours.
    """
    ep = pytest.importorskip("empyrical")
    eq = random_curve()
    r = eq.pct_change().iloc[1:]
    rf = 0.02
    d = 1.02 ** (1 / 252) - 1
    m = compute_metrics(eq, rf=rf)
    tol = {"rel": 1e-10, "abs": 1e-10}
    assert m.sharpe == pytest.approx(ep.sharpe_ratio(r, risk_free=d), **tol)
    assert m.sortino == pytest.approx(ep.sortino_ratio(r, required_return=d), **tol)
    assert m.downside_deviation == pytest.approx(ep.downside_risk(r, required_return=d), **tol)
    assert m.max_drawdown == pytest.approx(ep.max_drawdown(r), **tol)
    assert m.ann_vol == pytest.approx(ep.annual_volatility(r), **tol)
    years = (eq.index[-1] - eq.index[0]).days / 365.25  # 2015-01-02 .. 2017-11-27
    assert years == pytest.approx(1060 / 365.25)
    assert m.cagr == pytest.approx(ep.annual_return(r, annualization=len(r) / years), **tol)
    # with its default 252-day year the CAGR differs (3 years of weekdays != 3 calendar years)
    assert m.cagr != pytest.approx(ep.annual_return(r), rel=1e-6)


def test_sharpe_is_of_excess_returns_and_zero_for_cash() -> None:
    # an account growing exactly at the risk-free rate: zero excess return, Sharpe 0
    rf = 0.03
    cash = curve(list(100.0 * (1 + rf) ** (np.arange(300) / 252)))
    assert compute_metrics(cash, rf=rf).sharpe == 0.0
    # the same curve against rf = 0 is a constant positive return: no finite Sharpe
    assert math.isnan(compute_metrics(cash).sharpe)
    # a risky curve: Sharpe = mean(r - rf_d) / std(r) * sqrt(252), by hand
    rng = np.random.default_rng(5)
    r = rng.normal(0.0004, 0.01, 500)
    risky = curve(list(100.0 * np.cumprod(np.concatenate([[1.0], 1 + r]))))
    rf_d = (1 + rf) ** (1 / 252) - 1
    want = np.mean(r - rf_d) / np.std(r - rf_d, ddof=1) * np.sqrt(252)
    assert compute_metrics(risky, rf=rf).sharpe == pytest.approx(want, rel=1e-9)
    assert compute_metrics(risky, rf=rf).sharpe < compute_metrics(risky).sharpe
