"""Tests of ``research.optimize.controls``: exposure-matched controls, label runs and the
duration-preserving label-permutation null."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest

from research.backtest.spreads import BacktestConfig
from research.optimize.controls import (
    exposure_matched_config,
    label_runs,
    permutation_pvalue,
    permuted_codes,
    refine_scale,
)

# --- label_runs ------------------------------------------------------------------------------


def test_label_runs_hand_made_matrix() -> None:
    codes = np.array(
        [
            [-1, -1],  # 0  run 0 (warm-up)
            [-1, -1],  # 1
            [0, 1],  # 2  run 1
            [0, 1],  # 3
            [0, 2],  # 4  run 2: only the second ticker changes
            [1, 2],  # 5  run 3: only the first ticker changes
            [1, 2],  # 6
            [1, 2],  # 7
            [0, 1],  # 8  run 4: same rows as run 1, but a new run
        ]
    )
    starts, lengths = label_runs(codes)
    assert starts.tolist() == [0, 2, 4, 5, 8]
    assert lengths.tolist() == [2, 2, 1, 3, 1]
    assert starts.dtype == np.int64 and lengths.dtype == np.int64
    assert lengths.sum() == len(codes)


def test_label_runs_one_dimensional_single_and_empty() -> None:
    s, n = label_runs(np.array([2, 2, 0, 0, 0, 2, 1]))
    assert s.tolist() == [0, 2, 5, 6] and n.tolist() == [2, 3, 1, 1]
    s, n = label_runs(np.full((5, 3), 4))
    assert s.tolist() == [0] and n.tolist() == [5]
    s, n = label_runs(np.array([3]))
    assert s.tolist() == [0] and n.tolist() == [1]
    s, n = label_runs(np.empty((0, 2), dtype=np.int64))
    assert len(s) == 0 and len(n) == 0


# --- permuted_codes --------------------------------------------------------------------------


def _runs(codes: np.ndarray) -> list[tuple[tuple[int, ...], int]]:
    starts, lengths = label_runs(codes)
    return [(tuple(int(c) for c in codes[s]), int(n)) for s, n in zip(starts, lengths, strict=True)]


# distinct label rows in every run: no two runs can merge when shuffled
DISTINCT = np.array(
    [[-1, -1]] * 3
    + [[0, 0]] * 2
    + [[0, 1]] * 4
    + [[1, 1]] * 1
    + [[2, 1]] * 3
    + [[2, 2]] * 5
    + [[3, 0]] * 2
)


def test_permuted_codes_keep_runs_exactly_when_labels_are_distinct() -> None:
    out = permuted_codes(DISTINCT, 60, seed=1)
    assert out.shape == (60, *DISTINCT.shape)
    assert out.dtype == np.int64
    expected = Counter(_runs(DISTINCT))
    for perm in out:
        assert Counter(_runs(perm)) == expected
        np.testing.assert_array_equal(perm[:3], -1)  # warm-up stays first
        for j in range(DISTINCT.shape[1]):
            assert Counter(perm[:, j].tolist()) == Counter(DISTINCT[:, j].tolist())
    # it actually permutes: 6 movable runs -> 720 orders; most of 60 draws differ from the input
    changed = [not np.array_equal(p, DISTINCT) for p in out]
    assert sum(changed) >= 50
    assert len({p.tobytes() for p in out}) >= 30


def test_permuted_codes_keep_runs_exactly_with_repeated_labels() -> None:
    # 1-D labels with repeats: no two runs of one label may touch after shuffling (they would
    # merge into a longer regime), so every permutation has exactly the input's runs
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 6, size=14)
    labels = np.array([0, 1, 2, 0, 1, 0, 2, 1, 0, 1, 2, 0, 2, 1])
    codes = np.repeat(labels, lengths)[:, None]
    codes = np.vstack([np.full((4, 1), -1), codes])
    in_runs = Counter(_runs(codes))
    out = permuted_codes(codes, 200, seed=9)
    for perm in out:
        np.testing.assert_array_equal(perm[:4], -1)
        assert Counter(_runs(perm)) == in_runs
    assert len({p.tobytes() for p in out}) > 150  # and they really are shuffled


def test_permuted_codes_keep_real_regime_durations() -> None:
    """On real bull_bear_vol labels (SPX 1999-2018, 520 runs of four labels) every one of 200
    permutations has exactly the observed multiset of (label, run length)."""
    from research.backtest.run import regime_codes
    from research.backtest.service import load_panel, regime_labels

    panel, bars, iv = load_panel(["SPX"])
    codes, _ = regime_codes(panel, regime_labels("bull_bear_vol", bars, iv))
    want = Counter(_runs(codes))
    assert sum(want.values()) > 400
    for perm in permuted_codes(codes, 200, seed=0):
        assert Counter(_runs(perm)) == want


def test_permuted_codes_leading_run_only_fixed_when_all_tickers_unlabelled() -> None:
    # first row [-1, 0]: not a warm-up row (one ticker has a label), so it moves like any run
    codes = np.array([[-1, 0]] * 2 + [[1, 0]] * 2 + [[1, 1]] * 3 + [[2, 1]] * 1)
    out = permuted_codes(codes, 50, seed=0)
    assert any(not np.array_equal(p[0], [-1, 0]) for p in out)
    # a run of -1 rows that is not leading is movable too
    codes = np.array([[0, 0]] * 2 + [[-1, -1]] * 3 + [[1, 1]] * 2 + [[2, 2]] * 2)
    out = permuted_codes(codes, 50, seed=0)
    assert any(np.array_equal(p[0], [-1, -1]) for p in out)
    for p in out:
        assert Counter(_runs(p)) == Counter(_runs(codes))


def test_permuted_codes_reproducible_by_seed() -> None:
    a = permuted_codes(DISTINCT, 20, seed=3)
    b = permuted_codes(DISTINCT, 20, seed=3)
    c = permuted_codes(DISTINCT, 20, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_permuted_codes_single_run_and_warmup_only() -> None:
    one = np.full((6, 2), 2)
    out = permuted_codes(one, 5, seed=0)
    assert out.shape == (5, 6, 2)
    np.testing.assert_array_equal(out, np.broadcast_to(one, out.shape))
    warm = np.vstack([np.full((3, 2), -1), np.full((4, 2), 1)])
    np.testing.assert_array_equal(permuted_codes(warm, 3, seed=1), np.broadcast_to(warm, (3, 7, 2)))
    allwarm = np.full((4, 1), -1)
    np.testing.assert_array_equal(permuted_codes(allwarm, 2), np.full((2, 4, 1), -1))


def test_permuted_codes_errors() -> None:
    with pytest.raises(ValueError, match="days x tickers"):
        permuted_codes(np.array([0, 1, 1]), 3)
    with pytest.raises(ValueError, match="days x tickers"):
        permuted_codes(np.zeros((2, 3, 4), dtype=int), 3)
    with pytest.raises(ValueError, match="n_perm must be >= 1"):
        permuted_codes(DISTINCT, 0)


# --- exposure-matched config and scale -------------------------------------------------------

MULTS = {"bull_low_vol": 1.0, "bull_high_vol": 0.5, "bear_low_vol": 0.25, "bear_high_vol": 0.1}


def test_exposure_matched_config_clears_multipliers_and_keeps_the_rest() -> None:
    base = BacktestConfig().replace(
        **{
            "sizing.mode": "scaled",
            "sizing.risk_pct": 3.0,
            "sizing.regime_multipliers": MULTS,
            "sizing.unknown_multiplier": 0.7,
            "limits.max_positions": 3,
            "spread.min_delta": 0.1,
            "rate": 0.03,
        }
    )
    assert len(base.sizing.regime_multipliers) == 4
    got = exposure_matched_config(base, 0.42)
    assert got.sizing.regime_multipliers == ()
    assert got.sizing.unknown_multiplier == 0.42
    expected = dataclasses.replace(
        base,
        sizing=dataclasses.replace(base.sizing, regime_multipliers=(), unknown_multiplier=0.42),
    )
    assert got == expected
    assert got.sizing.mode == "scaled" and got.sizing.risk_pct == 3.0
    assert got.limits == base.limits and got.spread == base.spread and got.rate == 0.03
    zero = exposure_matched_config(base, 0)
    assert zero.sizing.unknown_multiplier == 0.0
    assert isinstance(zero.sizing.unknown_multiplier, float)
    # the benchmark itself is not modified
    assert len(base.sizing.regime_multipliers) == 4 and base.sizing.unknown_multiplier == 0.7


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, -math.inf])
def test_exposure_matched_config_rejects_bad_scale(bad: float) -> None:
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        exposure_matched_config(BacktestConfig(), bad)


def test_refine_scale_arithmetic() -> None:
    assert refine_scale(0.5, 0.04, 0.05) == pytest.approx(0.4)
    assert refine_scale(0.5, 0.06, 0.03) == pytest.approx(1.0)
    assert refine_scale(2.0, 0.01, 0.01) == 2.0
    assert isinstance(refine_scale(1, 0.02, 0.04), float)
    # achieved heat 0 (the control never traded): scale unchanged
    assert refine_scale(0.8, 0.03, 0.0) == 0.8
    assert refine_scale(0.8, 0.03, math.nan) == 0.8
    # target heat 0 (the candidate never risks anything): the code returns 0, not ``scale``
    # (the docstring says "unchanged when either heat is not positive"; reported)
    assert refine_scale(0.8, 0.0, 0.05) == 0.0
    assert refine_scale(0.8, 0.0, 0.0) == 0.0
    assert refine_scale(0.8, -0.01, 0.05) == 0.0


# --- permutation p-value ---------------------------------------------------------------------


def test_permutation_pvalue_hand_cases() -> None:
    null = [0.1, 0.5, 0.3, 0.9, -0.2]
    assert permutation_pvalue(0.4, null) == pytest.approx((1 + 2) / 6)  # 0.5, 0.9
    assert permutation_pvalue(1.0, null) == pytest.approx(1 / 6)
    assert permutation_pvalue(-1.0, null) == pytest.approx(6 / 6)
    # ties count as >=
    assert permutation_pvalue(0.5, null) == pytest.approx((1 + 2) / 6)
    assert permutation_pvalue(0.3, [0.3, 0.3, 0.3]) == 1.0
    # NaN / inf in the null are dropped: n counts finite values only
    assert permutation_pvalue(0.4, [0.1, np.nan, 0.5, np.nan]) == pytest.approx((1 + 1) / 3)
    assert permutation_pvalue(0.4, np.array([np.inf, 0.5])) == pytest.approx((1 + 1) / 2)
    assert math.isnan(permutation_pvalue(math.nan, null))
    assert math.isnan(permutation_pvalue(math.inf, null))
    assert math.isnan(permutation_pvalue(0.1, [np.nan, np.nan]))
    assert math.isnan(permutation_pvalue(0.1, []))


# --- end to end on the engine ----------------------------------------------------------------


def test_exposure_matching_reaches_candidate_heat_on_real_engine() -> None:
    from research.backtest.run import run_kernel
    from research.backtest.service import load_panel, regime_labels

    panel, bars, iv = load_panel(["SPX"], start="2007-01-01", end="2008-12-31")
    labels = regime_labels("bull_bear_vol", bars, iv)
    # $10M: with the default $1M a scaled SPX trade is ~5-10 contracts, heat is a step
    # function of k and one refinement step can land ~8% off (see the report)
    flat = BacktestConfig().replace(**{"sizing.mode": "scaled", "initial_equity": 10_000_000.0})
    cand = flat.replace(**{"sizing.regime_multipliers": MULTS})
    out = run_kernel(panel, [cand, flat], labels, record_trades=False)
    heat_cand, heat_flat = (float(np.nanmean(out.heat[i])) for i in range(2))
    assert 0 < heat_cand < heat_flat  # the multipliers are all <= 1 and some < 1
    k = heat_cand / heat_flat
    assert 0 < k < 1
    first = run_kernel(panel, [exposure_matched_config(flat, k)], labels, record_trades=False)
    achieved = float(np.nanmean(first.heat[0]))
    k2 = refine_scale(k, heat_cand, achieved)
    second = run_kernel(panel, [exposure_matched_config(flat, k2)], labels, record_trades=False)
    matched = float(np.nanmean(second.heat[0]))
    assert matched == pytest.approx(heat_cand, rel=0.03)
    # the control is regime-free: it trades the same with no labels at all
    codes_free = run_kernel(panel, [exposure_matched_config(flat, k2)], None, record_trades=False)
    np.testing.assert_allclose(codes_free.heat[0], second.heat[0])
