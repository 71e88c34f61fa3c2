"""Tests of ``research.optimize.inference``: the paired circular-block bootstrap of annualised
Sharpe ratios of daily excess returns."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import CircularBlockBootstrap, optimal_block_length

from research.optimize.inference import (
    PERIODS_PER_YEAR,
    SHARPE_TEST_NAME,
    _block_sharpes,
    block_length,
    bootstrap_sharpes,
    excess_returns,
    sharpe_tests,
)

ANN = math.sqrt(252.0)


def _brute_sharpes(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Annualised Sharpe (ddof=1) of every column of ``values[row]`` for every index row."""
    out = np.empty((len(index), values.shape[1]))
    for r, row in enumerate(index):
        sample = values[row]
        out[r] = sample.mean(axis=0) / sample.std(axis=0, ddof=1) * ANN
    return out


def _normal_frame(
    rng: np.random.Generator, n: int, means: list[float], sd: float = 0.01
) -> pd.DataFrame:
    mu = np.asarray(means, dtype=float)
    data = mu[None, :] + sd * rng.standard_normal((n, len(mu)))
    return pd.DataFrame(data, columns=[f"s{i}" for i in range(len(mu))])


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


# --- observed Sharpe -------------------------------------------------------------------------


def test_observed_sharpe_matches_hand_computation() -> None:
    # r = [0.01, -0.02, 0.03, 0.00]: mean 0.005; deviations 0.005, -0.025, 0.025, -0.005;
    # sum of squares 0.0013, sample variance 0.0013 / 3.
    r = pd.DataFrame({"a": [0.01, -0.02, 0.03, 0.00], "b": [0.02, 0.0, 0.01, 0.03]})
    boot = bootstrap_sharpes(r, reps=5, block_size=1, seed=0)
    expected_a = 0.005 / math.sqrt(0.0013 / 3) * math.sqrt(252)
    # b: mean 0.015; deviations 0.005, -0.015, -0.005, 0.015; sum of squares 0.0005
    expected_b = 0.015 / math.sqrt(0.0005 / 3) * math.sqrt(252)
    assert boot.sharpe["a"] == pytest.approx(expected_a, rel=1e-12)
    assert boot.sharpe["a"] == pytest.approx(3.81293, rel=1e-5)
    assert boot.sharpe["b"] == pytest.approx(expected_b, rel=1e-12)
    assert boot.columns == ("a", "b")
    assert boot.n_obs == 4
    assert boot.block_size == 1
    assert boot.draws.shape == (5, 2)
    assert PERIODS_PER_YEAR == 252


def test_zero_and_constant_columns() -> None:
    # std 0 and mean 0 -> Sharpe 0 (cash-like); std 0 and mean != 0 -> NaN.
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {"x": 0.01 * rng.standard_normal(50), "zero": np.zeros(50), "const": np.full(50, 0.001)}
    )
    boot = bootstrap_sharpes(df, reps=50, block_size=2, seed=0)
    assert boot.sharpe["zero"] == 0.0
    assert math.isnan(boot.sharpe["const"])
    zero = boot.compare("zero")
    assert zero.difference == 0.0 and zero.pvalue == 1.0
    const = boot.compare("const")
    assert math.isnan(const.pvalue) and math.isnan(const.ci_low) and math.isnan(const.ci_high)


# --- the prefix-sum shortcut -----------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 10, 53])
def test_block_sharpes_matches_brute_force_on_arch_indices(size: int) -> None:
    rng = np.random.default_rng(11)
    n = 53  # prime: not a multiple of any block size > 1 used here but 53
    values = 0.001 + 0.01 * rng.standard_normal((n, 3))
    bs = CircularBlockBootstrap(size, np.arange(n), seed=np.random.default_rng(size))
    index = np.stack([d[0][0] for d in bs.bootstrap(40)])
    got = _block_sharpes(values, index, size)
    np.testing.assert_allclose(got, _brute_sharpes(values, index), rtol=1e-9, atol=1e-12)


def test_block_sharpes_handles_wraparound_runs_explicitly() -> None:
    # hand-made circular runs of length 4 on T = 10 (last block has length 2), wrapping at 10
    rng = np.random.default_rng(5)
    values = 0.002 + 0.01 * rng.standard_normal((10, 2))
    index = np.array(
        [
            [8, 9, 0, 1, 3, 4, 5, 6, 9, 0],
            [0, 1, 2, 3, 0, 1, 2, 3, 7, 8],
        ]
    )
    got = _block_sharpes(values, index, 4)
    np.testing.assert_allclose(got, _brute_sharpes(values, index), rtol=1e-10)


def test_block_sharpes_falls_back_for_non_run_indices() -> None:
    rng = np.random.default_rng(7)
    n = 41
    values = 0.001 + 0.01 * rng.standard_normal((n, 2))
    index = np.stack([rng.permutation(n) for _ in range(30)])
    index[:5] = rng.integers(0, n, size=(5, n))  # iid draws with repetition, also not runs
    got = _block_sharpes(values, index, 5)
    np.testing.assert_allclose(got, _brute_sharpes(values, index), rtol=1e-10)
    # a permutation of the sample has the sample's own Sharpe
    obs = values.mean(axis=0) / values.std(axis=0, ddof=1) * ANN
    np.testing.assert_allclose(got[5:], np.broadcast_to(obs, (25, 2)), rtol=1e-10)


def test_bootstrap_draws_equal_brute_force_of_arch_resamples() -> None:
    # bootstrap_sharpes draws the indices from arch with the given seed: reproduce them
    rng = np.random.default_rng(21)
    df = _normal_frame(rng, 97, [0.001, 0.0005])
    boot = bootstrap_sharpes(df, reps=60, block_size=6, seed=4)
    bs = CircularBlockBootstrap(6, np.arange(97), seed=np.random.default_rng(4))
    index = np.stack([d[0][0] for d in bs.bootstrap(60)])
    np.testing.assert_allclose(boot.draws, _brute_sharpes(df.to_numpy(), index), rtol=1e-9)
    again = bootstrap_sharpes(df, reps=60, block_size=6, seed=4)
    np.testing.assert_array_equal(boot.draws, again.draws)
    other = bootstrap_sharpes(df, reps=60, block_size=6, seed=5)
    assert not np.array_equal(boot.draws, other.draws)


# --- p-values and intervals ------------------------------------------------------------------


def test_identical_columns_give_zero_difference_and_p_one() -> None:
    rng = np.random.default_rng(1)
    x = 0.0005 + 0.01 * rng.standard_normal(300)
    df = pd.DataFrame({"a": x, "b": x.copy()})
    t = bootstrap_sharpes(df, reps=200, block_size=3, seed=0).compare("a", "b")
    assert t.difference == 0.0
    assert t.pvalue == 1.0
    assert t.ci_low == 0.0 and t.ci_high == 0.0
    assert t.reps == 200


def test_large_sharpe_advantage_is_significant_and_reverse_is_not() -> None:
    # per-day SR 2/sqrt(252) vs 0 -> annualised difference ~2; its standard error over
    # 2,500 days is ~sqrt(2 * 252 / 2500) ~ 0.45, so z ~ 4.5
    rng = np.random.default_rng(2024)
    sd = 0.01
    df = _normal_frame(rng, 2500, [2 / math.sqrt(252) * sd, 0.0], sd=sd)
    boot = bootstrap_sharpes(df, reps=1000, seed=1)
    t = boot.compare("s0", "s1")
    assert t.difference == pytest.approx(boot.sharpe["s0"] - boot.sharpe["s1"])
    assert t.difference > 1.0
    assert t.pvalue < 0.01
    assert t.ci_low > 0 and t.ci_high > t.ci_low
    # interval = percentile interval of the bootstrap differences
    diffs = boot.draws[:, 0] - boot.draws[:, 1]
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert (t.ci_low, t.ci_high) == pytest.approx((lo, hi))
    # p-value = (1 + #{recentred >= observed}) / (1 + reps)
    count = np.sum(diffs - t.difference >= t.difference)
    assert t.pvalue == pytest.approx((1 + count) / 1001)
    r = boot.compare("s1", "s0")
    assert r.difference == pytest.approx(-t.difference)
    assert r.pvalue > 0.99
    assert r.ci_high < 0
    assert t.test == SHARPE_TEST_NAME and t.n_obs == 2500 and t.level == 0.95
    assert t.block_size == boot.block_size >= 1


def test_compare_against_cash_tests_sharpe_above_zero() -> None:
    rng = np.random.default_rng(8)
    sd = 0.01
    mu = 1.5 / math.sqrt(252) * sd  # annualised SR ~ +1.5 / -1.5, SE ~ 0.32 over 2,500 days
    df = _normal_frame(rng, 2500, [mu, -mu], sd=sd)
    boot = bootstrap_sharpes(df, reps=800, block_size=1, seed=2)
    up = boot.compare("s0")
    assert up.b == "cash" and up.sharpe_b == 0.0
    assert up.difference == boot.sharpe["s0"]
    assert up.pvalue < 0.01 and up.ci_low > 0
    count = np.sum(boot.draws[:, 0] - up.difference >= up.difference)
    assert up.pvalue == pytest.approx((1 + count) / 801)
    down = boot.compare("s1", "cash")
    assert down.pvalue > 0.99 and down.ci_high < 0
    tests = sharpe_tests(boot, [("s0", "cash"), ("s0", "s1")])
    assert tests[("s0", "cash")] == up
    assert tests[("s0", "s1")].pvalue < 0.01
    d = up.to_dict()
    assert d["a"] == "s0" and d["b"] == "cash" and d["test"] == SHARPE_TEST_NAME


def test_bootstrap_sd_matches_delta_method_for_iid_normal() -> None:
    # Var(SR_hat) ~ (1 + SR^2 / 2) / T per period for iid normal returns (delta method);
    # annualised: x 252; independent series: variances add.
    rng = np.random.default_rng(99)
    n, sd = 1500, 0.01
    sr_day = np.array([1.0, 0.3]) / math.sqrt(252)
    df = pd.DataFrame(sr_day[None, :] * sd + sd * rng.standard_normal((n, 2)), columns=["a", "b"])
    boot = bootstrap_sharpes(df, reps=4000, block_size=1, seed=3)
    diffs = boot.draws[:, 0] - boot.draws[:, 1]
    var_day = (1 + sr_day**2 / 2) / n
    se_analytic = math.sqrt(252 * var_day.sum())
    # 252 * (2 + (1 + 0.09) / 504) / 1500 = 0.33635 -> 0.57996
    assert se_analytic == pytest.approx(0.57997, abs=1e-4)
    assert np.std(diffs, ddof=1) == pytest.approx(se_analytic, rel=0.10)
    # each series on its own, too
    for j in range(2):
        se_j = math.sqrt(252 * var_day[j])
        assert np.std(boot.draws[:, j], ddof=1) == pytest.approx(se_j, rel=0.10)


def test_pvalue_is_roughly_uniform_under_h0() -> None:
    """400 data sets with equal Sharpe ratios: the 5 % test rejects 2-8 % of them (a test that
    never rejects, or one that rejects twice as often as it should, fails here); the p-values
    spread over (0, 1) with mean near 1/2."""
    rng = np.random.default_rng(12345)
    n, sd, runs = 250, 0.01, 400
    mu = 0.5 / math.sqrt(252) * sd  # both series have annualised SR 0.5
    found = []
    for seed in range(runs):
        df = _normal_frame(rng, n, [mu, mu], sd=sd)
        found.append(
            bootstrap_sharpes(df, reps=99, block_size=1, seed=seed).compare("s0", "s1").pvalue
        )
    pvals = np.asarray(found)
    assert np.all((pvals > 0) & (pvals <= 1))
    rate = np.mean(pvals < 0.05)
    assert 0.02 <= rate <= 0.08, rate
    # mean of 400 uniforms: 0.5 +- 0.014 (one sd)
    assert 0.45 <= pvals.mean() <= 0.55
    # not degenerate: both tails are populated
    assert np.mean(pvals < 0.5) > 0.4 and np.mean(pvals > 0.5) > 0.4


# --- block length ----------------------------------------------------------------------------


def test_block_length_short_or_constant_data_is_one() -> None:
    rng = np.random.default_rng(0)
    assert block_length(pd.DataFrame(rng.standard_normal((7, 2)))) == 1  # n < 8
    assert block_length(pd.DataFrame(np.zeros((100, 2)))) == 1  # no column varies
    assert block_length(pd.DataFrame(np.full((100, 1), 0.003))) == 1


def test_block_length_agrees_with_arch_and_grows_with_autocorrelation() -> None:
    rng = np.random.default_rng(42)
    n = 1000
    iid = pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n)})
    ar = pd.DataFrame({"a": _ar1(n, 0.9, rng), "b": rng.standard_normal(n)})
    for df in (iid, ar):
        v = df.to_numpy()
        est = optimal_block_length(np.hstack([v, v**2]))["circular"].to_numpy()
        assert block_length(df) == min(max(math.ceil(est.max()), 1), n // 4)
    b_iid, b_ar = block_length(iid), block_length(ar)
    assert 1 <= b_iid <= 6
    assert b_ar >= 15
    assert b_ar >= 4 * b_iid


def test_block_length_ignores_constant_columns() -> None:
    rng = np.random.default_rng(6)
    x = _ar1(400, 0.9, rng)
    alone = block_length(pd.DataFrame({"x": x}))
    assert block_length(pd.DataFrame({"x": x, "cash": np.zeros(400)})) == alone


def test_block_length_capped_at_quarter_of_sample() -> None:
    # one slow cycle: Politis-White's estimate exceeds a quarter of the sample
    for n in (20, 40):
        x = np.sin(np.arange(n) / n * 2 * np.pi)
        df = pd.DataFrame({"a": x})
        v = df.to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            raw = optimal_block_length(np.hstack([v, v**2]))["circular"].max()
            got = block_length(df)
        assert raw > n // 4  # the estimate itself exceeds the cap
        assert got == n // 4


# --- errors and helpers ----------------------------------------------------------------------


def test_errors() -> None:
    good = pd.DataFrame({"a": [0.01, -0.01, 0.02, 0.0], "b": [0.0, 0.01, 0.0, 0.02]})
    bad = good.copy()
    bad.loc[2, "b"] = np.nan
    with pytest.raises(ValueError, match=r"NaN in \['b'\]"):
        bootstrap_sharpes(bad, reps=10)
    with pytest.raises(ValueError, match="at least 3 days"):
        bootstrap_sharpes(good.iloc[:2], reps=10, block_size=1)
    with pytest.raises(ValueError, match="reps must be >= 1"):
        bootstrap_sharpes(good, reps=0, block_size=1)
    boot = bootstrap_sharpes(good.iloc[:3], reps=1, block_size=1)  # the minimum is accepted
    assert boot.draws.shape == (1, 2)
    with pytest.raises(ValueError):
        boot.compare("missing")


def test_excess_returns_subtracts_daily_compounded_rate() -> None:
    daily = (1.02) ** (1 / 252) - 1
    assert daily == pytest.approx(7.8585e-5, rel=1e-4)
    s = pd.Series([0.01, -0.005, 0.0])
    np.testing.assert_allclose(excess_returns(s, 0.02).to_numpy(), s.to_numpy() - daily)
    df = pd.DataFrame({"a": [0.01, 0.02], "b": [0.0, -0.01]})
    out = excess_returns(df, 0.02)
    assert isinstance(out, pd.DataFrame)
    np.testing.assert_allclose(out.to_numpy(), df.to_numpy() - daily)
    # compounding: 252 days of the daily rate give exactly the annual rate
    assert (1 + daily) ** 252 == pytest.approx(1.02, rel=1e-12)
    pd.testing.assert_series_equal(excess_returns(s, 0.0), s)
