"""Walk-forward optimisation: hand-checked splits, known winners on a synthetic market,
stitching, no look-ahead, Pardo's efficiency, and a real-data smoke run."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd
import pytest

from research.backtest.market_panel import MarketPanel, strike_step
from research.backtest.metrics import compute_metrics
from research.backtest.run import run_kernel
from research.backtest.spreads import BacktestConfig
from research.optimize.grids import Variant, _window
from research.optimize.walkforward import (
    Fold,
    Mode,
    WalkForwardResult,
    _pick,
    walk_forward,
    walk_forward_efficiency,
    walk_forward_splits,
)

T = pd.Timestamp


def folds_as_tuples(folds: list[Fold]) -> list[tuple[str, ...]]:
    return [
        tuple(str(d.date()) for d in (f.is_start, f.is_end, f.oos_start, f.oos_end)) for f in folds
    ]


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------

BDAYS = pd.bdate_range("2020-01-01", "2021-12-31")  # Wed 2020-01-01 .. Fri 2021-12-31

# Quarterly OOS windows after a 6-month IS window, by hand on the business-day calendar:
# calendar boundaries t0 + 6, 9, 12, ... months = 2020-07-01, 2020-10-01, 2021-01-01, ...;
# each window holds the business days in [lower, upper) (2021-01-01 is a Friday, a bday).
OOS_QUARTERS = [
    ("2020-07-01", "2020-09-30"),
    ("2020-10-01", "2020-12-31"),
    ("2021-01-01", "2021-03-31"),
    ("2021-04-01", "2021-06-30"),
    ("2021-07-01", "2021-09-30"),
    ("2021-10-01", "2021-12-31"),  # ends 2022-01-01 exclusive; the data reach 2021-12-31
]


def test_rolling_splits_hand_checked() -> None:
    folds = walk_forward_splits(BDAYS, is_years=0.5, oos_years=0.25, mode="rolling")
    is_windows = [
        ("2020-01-01", "2020-06-30"),
        ("2020-04-01", "2020-09-30"),
        ("2020-07-01", "2020-12-31"),
        ("2020-10-01", "2021-03-31"),
        ("2021-01-01", "2021-06-30"),
        ("2021-04-01", "2021-09-30"),
    ]
    expected = [(*i, *o) for i, o in zip(is_windows, OOS_QUARTERS, strict=True)]
    assert folds_as_tuples(folds) == expected
    assert [f.fold for f in folds] == list(range(6))


def test_anchored_splits_hand_checked() -> None:
    folds = walk_forward_splits(BDAYS, is_years=0.5, oos_years=0.25, mode="anchored")
    is_ends = ["2020-06-30", "2020-09-30", "2020-12-31", "2021-03-31", "2021-06-30", "2021-09-30"]
    expected = [("2020-01-01", end, *oos) for end, oos in zip(is_ends, OOS_QUARTERS, strict=True)]
    assert folds_as_tuples(folds) == expected


@pytest.mark.parametrize("mode", ["rolling", "anchored"])
def test_splits_no_overlap_and_cover_the_oos_span(mode: Mode) -> None:
    folds = walk_forward_splits(BDAYS, is_years=0.5, oos_years=0.25, mode=mode)
    oos = [BDAYS[(BDAYS >= f.oos_start) & (BDAYS <= f.oos_end)] for f in folds]
    stacked = oos[0].append(oos[1:])
    assert stacked.is_unique  # no overlap
    # consecutive windows: together exactly the trading dates from the first OOS start to the end
    assert stacked.equals(BDAYS[BDAYS >= T("2020-07-01")])
    for f in folds:  # IS ends on the trading day before its OOS starts
        pos = int(BDAYS.searchsorted(f.oos_start))
        assert BDAYS[pos] == f.oos_start
        assert BDAYS[pos - 1] == f.is_end
    lengths = [((BDAYS >= f.is_start) & (BDAYS <= f.is_end)).sum() for f in folds]
    if mode == "anchored":
        assert all(f.is_start == BDAYS[0] for f in folds)
        assert lengths == sorted(lengths) and lengths[-1] > lengths[0]
    else:
        assert max(lengths) - min(lengths) <= 3  # six calendar months of business days


def test_splits_step_leaves_gaps_and_incomplete_tail_is_dropped() -> None:
    folds = walk_forward_splits(BDAYS, is_years=0.5, oos_years=0.25, step_years=0.5)
    assert folds_as_tuples(folds) == [
        ("2020-01-01", "2020-06-30", "2020-07-01", "2020-09-30"),
        ("2020-07-01", "2020-12-31", "2021-01-01", "2021-03-31"),
        ("2021-01-01", "2021-06-30", "2021-07-01", "2021-09-30"),
    ]
    # data ending in November: the Oct-Dec 2021 OOS window is not covered, so it is dropped
    short = BDAYS[BDAYS <= T("2021-11-30")]
    folds = walk_forward_splits(short, is_years=0.5, oos_years=0.25, mode="rolling")
    assert folds_as_tuples(folds)[-1][2:] == OOS_QUARTERS[4]
    assert len(folds) == 5


def test_splits_n_folds_hand_checked() -> None:
    dates = pd.bdate_range("2020-01-01", "2020-12-31")
    # 6-month IS -> the OOS span is the 132 business days 2020-07-01 .. 2020-12-31 (July: 23,
    # Aug: 21, Sep: 22, Oct: 22, Nov: 21, Dec: 23), split 33 + 33 + 33 + 33.
    anchored = walk_forward_splits(dates, is_years=0.5, n_folds=4, mode="anchored")
    # 33rd bday after 07-01: 23 July bdays -> 2020-08-03 is #23, +10 bdays -> 2020-08-17 (Mon)
    # 66th: 2020-09-01 is #44 (21 Aug bdays), +22 -> 2020-10-01; 99th: 2020-11-02 is #88
    # (22 Oct bdays), +11 -> 2020-11-17 (Tue).
    assert folds_as_tuples(anchored) == [
        ("2020-01-01", "2020-06-30", "2020-07-01", "2020-08-14"),
        ("2020-01-01", "2020-08-14", "2020-08-17", "2020-09-30"),
        ("2020-01-01", "2020-09-30", "2020-10-01", "2020-11-16"),
        ("2020-01-01", "2020-11-16", "2020-11-17", "2020-12-31"),
    ]
    rolling = walk_forward_splits(dates, is_years=0.5, n_folds=4, mode="rolling")
    # the IS start moves with the OOS start: 2020-08-17 is 47 days after 2020-07-01, so
    # fold 1's IS starts 2020-01-01 + 47 days = 2020-02-17; fold 2: +92 days = 2020-04-02;
    # fold 3: 2020-11-17 is +139 days -> 2020-05-19 (2020 is a leap year).
    assert [str(f.is_start.date()) for f in rolling] == [
        "2020-01-01",
        "2020-02-17",
        "2020-04-02",
        "2020-05-19",
    ]
    assert [f.oos_start for f in rolling] == [f.oos_start for f in anchored]
    assert [f.is_end for f in rolling] == [f.is_end for f in anchored]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(is_years=2.0, oos_years=0.5), "too short"),
        (dict(is_years=1.5, oos_years=0.75), "too short"),
        (dict(is_years=0.5, n_folds=200), "too short"),
        (dict(is_years=0.5), "exactly one"),
        (dict(is_years=0.5, oos_years=0.25, n_folds=3), "exactly one"),
        (dict(is_years=0.5, oos_years=0.5, step_years=0.25), "overlap"),
        (dict(is_years=0.5, oos_years=0.25, mode="expanding"), "mode"),
        (dict(is_years=0.0, oos_years=0.25), "is_years"),
        (dict(is_years=0.5, n_folds=0), "n_folds"),
    ],
)
def test_splits_reject_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        walk_forward_splits(BDAYS, **kwargs)


# --------------------------------------------------------------------------------------------
# A synthetic market whose IS winner is known
# --------------------------------------------------------------------------------------------


def make_panel(closes: np.ndarray, dates: pd.DatetimeIndex, iv: float = 0.2) -> MarketPanel:
    closes = np.asarray(closes, float).reshape(len(closes), 1)
    ivs = np.full(closes.shape, iv)
    return MarketPanel(
        dates=dates,
        tickers=("AAA",),
        close=closes,
        atm_iv=ivs,
        mark_iv=ivs.copy(),
        iv_percentile=np.full(closes.shape, 50.0),
        vix=ivs * 100,
        iv_source=np.full(closes.shape, "index", dtype=object),
        strike_steps=np.array([strike_step(float(np.median(closes)))]),
        dropped_days=0,
    )


SYN_DATES = pd.bdate_range("2020-01-01", "2022-12-30")
# The trend flips every calendar half-year (up in H1, down in H2, ±0.4 %/day): bull puts win
# in the rising halves, bear calls in the falling ones.
SYN_UP = np.asarray(SYN_DATES.month <= 6)
SYN = make_panel(1000 * np.exp(np.cumsum(np.where(SYN_UP, 0.004, -0.004))), SYN_DATES)
# a flat 20% smile (ATM = the IV input) and no interest on cash: the trend alone decides
BASE = BacktestConfig().replace(**{"skew_slope": 0.0, "atm_ratio": 1.0, "rate": 0.0})
CALL = Variant("call", {}, BASE.replace(**{"spread.strategy": "bear_call"}))
PUT = Variant("put", {}, BASE.replace(**{"spread.strategy": "bull_put"}))
PUT3 = Variant("put3", {}, BASE.replace(**{"spread.strategy": "bull_put", "sizing.contracts": 3}))
VARIANTS = [CALL, PUT, PUT3]
# rolling half-year IS = exactly one trend half, OOS = the next (opposite) half
SYN_SPLITS = walk_forward_splits(SYN_DATES, is_years=0.5, oos_years=0.5, mode="rolling")


@pytest.fixture(scope="module")
def syn_wf() -> WalkForwardResult:
    return walk_forward(SYN, VARIANTS, SYN_SPLITS, metric="total_return")


def test_synthetic_splits_follow_the_trend_halves() -> None:
    assert len(SYN_SPLITS) == 5
    for f in SYN_SPLITS:
        is_dates = SYN_DATES[(SYN_DATES >= f.is_start) & (SYN_DATES <= f.is_end)]
        assert len(set(SYN_UP[SYN_DATES.isin(is_dates)])) == 1  # one trend per IS window


def test_winner_is_the_known_is_best(syn_wf: WalkForwardResult) -> None:
    # rising IS half: 3-contract bull puts make the most; falling half: bear calls
    expected = ["put3" if f.is_start.month == 1 else "call" for f in SYN_SPLITS]
    assert expected == ["put3", "call", "put3", "call", "put3"]
    assert syn_wf.folds["winner"].tolist() == expected
    assert syn_wf.winner_counts.to_dict() == {"call": 2, "put": 0, "put3": 3}
    # the winner is IS rank 1; the trend flips, so it is the worst OOS
    is_rows = syn_wf.table.loc[syn_wf.table["split"] == "is"]
    assert (is_rows.loc[is_rows["winner"], "rank"] == 1).all()
    assert (syn_wf.folds["oos_rank"] == 3).all()
    assert (syn_wf.folds["oos_return"] < 0).all()
    assert len(syn_wf.table) == 5 * 3 * 2


def test_lower_is_better_and_ties_go_to_the_first_variant() -> None:
    splits = SYN_SPLITS[:2]
    worst = walk_forward(SYN, VARIANTS, splits, metric="total_return", higher_is_better=False)
    assert worst.folds["winner"].tolist() == ["call", "put3"]
    twin = Variant("put3_twin", {}, PUT3.config)
    first = walk_forward(SYN, [CALL, PUT3, twin], splits, metric="total_return")
    assert first.folds["winner"].tolist() == ["put3", "call"]
    swapped = walk_forward(SYN, [CALL, twin, PUT3], splits, metric="total_return")
    assert swapped.folds["winner"].tolist() == ["put3_twin", "call"]


def test_pick_skips_nan_and_takes_the_first_tie() -> None:
    nan = math.nan
    assert _pick(np.array([nan, 1.0, 3.0, 3.0]), True) == 2
    assert _pick(np.array([nan, 1.0, 3.0, 1.0]), False) == 1
    assert _pick(np.array([nan, -math.inf]), True) == 1
    assert _pick(np.array([nan, nan]), True) is None


# --------------------------------------------------------------------------------------------
# Stitching
# --------------------------------------------------------------------------------------------


def test_stitched_equity_compounds_the_fold_winners(syn_wf: WalkForwardResult) -> None:
    wf = walk_forward(SYN, VARIANTS, SYN_SPLITS[:2], metric="total_return")
    init = BASE.initial_equity
    by_name = {v.name: v for v in VARIANTS}
    # each fold's winner alone on its OOS window
    alone = []
    for f, winner in zip(SYN_SPLITS[:2], wf.folds["winner"], strict=True):
        sub = _window(SYN, f.oos_start, f.oos_end)
        alone.append(run_kernel(sub, [by_name[winner].config], record_trades=False).equity[0])
    eq0, eq1 = alone
    # by hand: fold 0 is the winner's own curve; fold 1 is scaled onto fold 0's end value
    expected = np.concatenate([eq0, eq0[-1] * eq1 / init])
    np.testing.assert_allclose(wf.oos_equity.to_numpy(), expected, rtol=1e-12)
    r0, r1 = wf.folds["oos_return"]
    assert r0 == pytest.approx(eq0[-1] / init - 1, rel=1e-12)
    assert wf.oos_equity.iloc[-1] == pytest.approx(init * (1 + r0) * (1 + r1), rel=1e-12)
    # within each fold, the stitched curve moves exactly like the winner's own OOS run
    n0 = len(eq0)
    np.testing.assert_allclose(wf.oos_equity.iloc[n0:] / wf.oos_equity.iloc[n0 - 1], eq1 / init)
    # daily returns compound to the stitched curve, and are the winners' oos_matrix columns
    np.testing.assert_allclose(init * np.cumprod(1 + wf.oos_returns.to_numpy()), expected)
    picked = [
        wf.oos_matrix.loc[f.oos_start : f.oos_end, w]
        for f, w in zip(SYN_SPLITS[:2], wf.folds["winner"], strict=True)
    ]
    pd.testing.assert_series_equal(
        pd.concat(picked), wf.oos_returns, check_names=False, check_freq=False
    )
    # the 2-fold run agrees with the first two folds of the 5-fold run
    np.testing.assert_allclose(syn_wf.oos_equity.iloc[: len(expected)], expected, rtol=1e-12)


def test_oos_matrix_shape_and_metrics_table(syn_wf: WalkForwardResult) -> None:
    m = syn_wf.oos_matrix
    assert list(m.columns) == ["call", "put", "put3"]
    assert m.index.equals(syn_wf.oos_equity.index) and m.index.is_unique
    assert len(m) == syn_wf.folds["oos_days"].sum()
    assert np.isfinite(m.to_numpy()).all()
    oos = syn_wf.table.loc[syn_wf.table["split"] == "oos"].set_index(["fold", "variant"])
    for f in SYN_SPLITS:
        for v in VARIANTS:
            growth = np.prod(1 + m.loc[f.oos_start : f.oos_end, v.name].to_numpy())
            assert oos.loc[(f.fold, v.name), "window_return"] == pytest.approx(growth - 1)
    assert {"total_return", "sharpe", "cagr", "max_drawdown", "trades", "rank"} <= set(
        syn_wf.table.columns
    )


# --------------------------------------------------------------------------------------------
# No look-ahead
# --------------------------------------------------------------------------------------------


def test_changing_oos_prices_does_not_change_the_fold_choice(syn_wf: WalkForwardResult) -> None:
    fold = SYN_SPLITS[1]  # IS: falling H2 2020 -> call; OOS: rising H1 2021
    after = SYN_DATES > fold.is_end
    close = SYN.close.copy()
    # OOS and later: a much steeper rally, then a crash, and higher IV
    close[after, 0] = close[~after, 0][-1] * np.exp(np.cumsum(np.full(after.sum(), 0.01)))
    close[SYN_DATES > fold.oos_end, 0] *= 0.5
    iv = np.where(after[:, None], 0.35, SYN.atm_iv)
    changed = dataclasses.replace(SYN, close=close, atm_iv=iv, mark_iv=iv.copy(), vix=iv * 100)
    wf = walk_forward(changed, VARIANTS, SYN_SPLITS[:2], metric="total_return")
    base = syn_wf.table.loc[syn_wf.table["fold"] <= 1]
    new = wf.table
    # the OOS data did change the OOS results (and would favour a different variant) ...
    oos_new = new.loc[(new["fold"] == 1) & (new["split"] == "oos")]
    oos_old = base.loc[(base["fold"] == 1) & (base["split"] == "oos")]
    assert not np.allclose(oos_new["total_return"], oos_old["total_return"])
    assert oos_new.loc[oos_new["rank"] == 1, "variant"].item() != "call"
    # ... but not the IS results nor the choice of folds 0 and 1
    is_new = new.loc[new["split"] == "is"].reset_index(drop=True)
    is_old = base.loc[base["split"] == "is"].reset_index(drop=True)
    pd.testing.assert_frame_equal(is_new, is_old)
    assert wf.folds["winner"].tolist() == syn_wf.folds["winner"].tolist()[:2] == ["put3", "call"]


# --------------------------------------------------------------------------------------------
# Walk-forward efficiency
# --------------------------------------------------------------------------------------------


def test_walk_forward_efficiency_by_hand() -> None:
    # per fold: 0.05/0.10 = 0.5, 0.30/0.20 = 1.5, IS loss -> skipped, IS zero -> skipped
    assert walk_forward_efficiency([0.10, 0.20, -0.05, 0.0], [0.05, 0.30, 0.02, 0.1]) == (
        pytest.approx(1.0)
    )
    assert walk_forward_efficiency([0.1], [-0.05]) == pytest.approx(-0.5)
    assert math.isnan(walk_forward_efficiency([-0.1, 0.0], [0.2, 0.3]))
    with pytest.raises(ValueError, match="same length"):
        walk_forward_efficiency([0.1, 0.2], [0.1])


def test_walk_forward_efficiency_of_a_run_by_hand() -> None:
    splits = SYN_SPLITS[:2]
    wf = walk_forward(SYN, VARIANTS, splits, metric="total_return")
    by_name = {v.name: v for v in VARIANTS}
    ratios = []
    for f, winner in zip(splits, wf.folds["winner"], strict=True):
        cfg = by_name[winner].config
        cagr = {}
        for split, lo, hi in (("is", f.is_start, f.is_end), ("oos", f.oos_start, f.oos_end)):
            eq = run_kernel(_window(SYN, lo, hi), [cfg], record_trades=False).equity[0]
            years = (hi - lo).days / 365.25
            cagr[split] = (eq[-1] / eq[0]) ** (1 / years) - 1
        assert cagr["is"] > 0
        ratios.append(cagr["oos"] / cagr["is"])
    np.testing.assert_allclose(wf.folds["efficiency"], ratios, rtol=1e-10)
    assert wf.walk_forward_efficiency == pytest.approx(np.mean(ratios), rel=1e-10)
    # choosing the IS loser: every IS CAGR is negative, so no fold has a usable ratio
    worst = walk_forward(SYN, VARIANTS, splits, metric="total_return", higher_is_better=False)
    assert (worst.folds["is_cagr"] < 0).all()
    assert worst.folds["efficiency"].isna().all()
    assert math.isnan(worst.walk_forward_efficiency)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def test_walk_forward_rejects_bad_input() -> None:
    splits = SYN_SPLITS[:1]
    with pytest.raises(ValueError, match="unique"):
        walk_forward(SYN, [PUT, PUT], splits)
    with pytest.raises(ValueError, match="metric"):
        walk_forward(SYN, VARIANTS, splits, metric="nonsense")
    with pytest.raises(ValueError, match="trades"):
        walk_forward(SYN, VARIANTS, splits, metric="win_rate", trade_metrics=False)
    with pytest.raises(ValueError, match="overlap"):
        walk_forward(SYN, VARIANTS, [SYN_SPLITS[1], SYN_SPLITS[0]])
    late = Fold(0, T("2022-07-01"), T("2022-12-30"), T("2023-01-02"), T("2023-06-30"))
    with pytest.raises(ValueError, match="beyond the panel"):
        walk_forward(SYN, VARIANTS, [late])
    with pytest.raises(ValueError, match="splits is empty"):
        walk_forward(SYN, VARIANTS, [])


def test_trade_metrics_off_keeps_the_equity_results(syn_wf: WalkForwardResult) -> None:
    wf = walk_forward(SYN, VARIANTS, SYN_SPLITS, metric="total_return", trade_metrics=False)
    assert wf.folds["winner"].tolist() == syn_wf.folds["winner"].tolist()
    pd.testing.assert_series_equal(wf.oos_equity, syn_wf.oos_equity)
    assert wf.table["trades"].isna().all()


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


def test_real_data_ten_anchored_folds() -> None:
    from research.backtest.service import load_panel, regime_labels
    from research.optimize.grids import multiplier_variants

    panel, bars, iv = load_panel(["SPX", "IXIC"])
    regimes = regime_labels("bull_bear_vol", bars, iv)
    variants = multiplier_variants(BacktestConfig().replace(**{"sizing.mode": "scaled"}))
    assert len(variants) == 6
    splits = walk_forward_splits(panel.dates, is_years=5, oos_years=1.5, mode="anchored")
    assert len(splits) == 10
    assert splits[0].is_start == panel.dates[0] and splits[0].oos_start.year == 2004
    assert splits[-1].oos_end == panel.dates[-1]  # 2017-07 .. 2018-12-31
    t0 = time.perf_counter()
    wf = walk_forward(panel, variants, splits, regimes=regimes)
    elapsed = time.perf_counter() - t0
    names = {v.name for v in variants}
    assert len(wf.folds) == 10 and wf.folds["winner"].isin(names).all()
    assert wf.winner_counts.sum() == 10
    assert np.isfinite(wf.folds["is_metric"]).all()
    assert wf.oos_matrix.shape == (wf.folds["oos_days"].sum(), 6)
    assert wf.oos_equity.index[0] == splits[0].oos_start
    assert wf.oos_equity.index[-1] == panel.dates[-1]
    assert np.isfinite(wf.oos_equity).all() and (wf.oos_equity > 0).all()
    assert compute_metrics(wf.oos_equity).final == wf.oos_equity.iloc[-1]
    assert elapsed < 30
