"""The trade filter's analysis (``research.llm.analysis``) and ``research.llm.service.analyze``,
proven on constructed decisions with known answers.

What is proven, each against values counted by hand or computed independently in the test
(numpy, scipy, statsmodels called directly — never numbers copied from a run of the code):

- ``clustered_test``: a mean and a difference of means with entry-month clustered errors, by
  hand (3 clusters), against a sandwich written out in numpy and against statsmodels' OLS called
  here; duplicating every trade within its month adds no evidence (the old z-test's p collapses);
- ``rotation_p``: by hand on 4 values, and equal to every shift counted one by one (``np.roll``);
  ties count against the filter; a NaN or infinite value gives no p-value (never 0);
- ``join`` attaches each decision's P&L, win (P&L > 0) and entry regime; decisions of trades that
  are not in the trades file raise, naming them;
- ``approval_table``: per group the count, the Wilson interval, mean and total P&L; the P&L
  interval resamples whole entry months;
- ``approval_tests``: win-rate and P&L differences with the clustered test of statsmodels, only
  when approved and rejected trades each span ``MIN_MONTHS`` entry months (the differences are
  still given below that, without a p-value);
- ``controls``: the random filter is the **rotation** null (a block filter on a block of winners
  gets exactly 1/n, where an i.i.d. permutation would give 1/C(n, k)); an oracle sits at 1/n; the
  rule is chosen in-sample at the filter's in-sample count and keeps **exactly the filter's
  out-of-sample count**; its paired test agrees with statsmodels; a filter equal to the rule
  differs by exactly 0, and that comparison — like one without out-of-sample approvals — is
  *untested*, not failed;
- ``threshold_sweep`` and ``recommend_threshold``: by hand; the threshold is chosen by
  **per-trade uplift** — on a losing strategy where the largest total (the old rule) would pick the
  threshold keeping the fewest, worst trades — on the first half only, and tested on the second
  against rotations of its kept set (counted shift by shift here); a threshold that does not
  help in sample is not recommended;
- ``compare_prompts``: shares, disagreements, accuracy, P&L kept; the win and P&L edges of the
  disagreements and their clustered tests against statsmodels;
- ``calibration``: Brier, base-rate Brier, skill and ECE by hand;
- ``by_regime``: per regime by hand; its p-values are the same clustered and rotation tests and
  are left out when approved or rejected trades span too few entry months;
- ``verdict_code`` / ``verdict``: every code on hand-made inputs and its boundaries; the sign of
  the win-rate difference alone never decides; a few months of data, or a control that did not
  run, give ``untested`` — never ``hurts`` or ``no_value_beyond_rule``;
- options: a bad value raises a one-line ``ValueError`` naming the option and the value;
- ``service.analyze``: primary prompt, errors, the summary keys the findings page reads (trades
  decided, entry months, no recommended threshold when none helps in sample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields, replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from research.data.contracts import validate
from research.llm import analysis as an
from research.llm import service
from research.llm.context import trade_ids

HEURISTIC = "heuristic rule (not an LLM)"
START = pd.Timestamp("2023-01-02")  # a Monday; trades are one week apart unless dates are given

A, R, E = "approve", "reject", None  # E: the call failed (error set, no decision)
Numbers = Sequence[float] | np.ndarray
Decision = str | None


# ---------------------------------------------------------------------------------------------
# builders


def _trades(
    pnl: Numbers,
    *,
    dates: Sequence[str | pd.Timestamp] | None = None,
    iv: Numbers | None = None,
    vix: Numbers | None = None,
) -> pd.DataFrame:
    """Trades in the ``trades`` contract (validated), one a week from ``START`` by default."""
    n = len(pnl)
    days = (
        [START + pd.Timedelta(weeks=i) for i in range(n)]
        if dates is None
        else [pd.Timestamp(d) for d in dates]
    )
    iv = [50.0] * n if iv is None else list(iv)
    vix = [20.0] * n if vix is None else list(vix)
    rows = []
    for i, (d, p) in enumerate(zip(days, pnl, strict=True)):
        short = 4000.0 - 5 * i
        rows.append(
            {
                "date": d,
                "ticker": "SPX",
                "short_strike": short,
                "long_strike": short - 5.0,
                "expiration": d + pd.Timedelta(days=30),
                "credit": 1.0,
                "max_loss": 4.0,
                "delta": 0.15,
                "dte": 30,
                "iv_percentile": float(iv[i]),
                "vix": float(vix[i]),
                "underlying_price": 4200.0,
                "outcome": "profit" if p > 0 else "loss" if p < 0 else "breakeven",
                "pnl": float(p),
                "exit_reason": "profit_target" if p > 0 else "stop_loss",
                "hold_days": 10,
            }
        )
    return validate("trades", pd.DataFrame(rows))


def _decisions(
    trades: pd.DataFrame,
    decisions: Sequence[Decision],
    confidences: Numbers | float = 0.7,
    *,
    variant: str = "balanced",
    model: str = "m1",
    provider: str | None = None,
) -> pd.DataFrame:
    """``llm_decisions`` rows (validated) for ``trades`` in order; ``None`` = a failed call."""
    ids = list(trade_ids(trades))
    conf = [confidences] * len(ids) if isinstance(confidences, float) else list(confidences)
    rows = []
    for tid, dec, c in zip(ids, decisions, conf, strict=True):
        rows.append(
            {
                "trade_id": tid,
                "model": model,
                "prompt_variant": variant,
                "decision": dec,
                "confidence": None if dec is None else c,
                "contracts": None if dec is None else (1 if dec == A else 0),
                "reason": None if dec is None else "constructed",
                "error": "timeout" if dec is None else None,
                "latency_s": 0.1,
                "tokens": None if dec is None else 100,
            }
        )
    out = validate("llm_decisions", pd.DataFrame(rows))
    if provider is not None:
        out["provider"] = provider
    return out


def _joined(
    pnl: Numbers,
    decisions: Sequence[Decision],
    confidences: Numbers | float = 0.7,
    *,
    dates: Sequence[str | pd.Timestamp] | None = None,
    iv: Numbers | None = None,
    vix: Numbers | None = None,
) -> pd.DataFrame:
    trades = _trades(pnl, dates=dates, iv=iv, vix=vix)
    return an.join(_decisions(trades, decisions, confidences), trades)


def _wilson(wins: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The Wilson score interval in closed form."""
    z = stats.norm.ppf(1 - alpha / 2)
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# ---------------------------------------------------------------------------------------------
# join


def test_join_attaches_pnl_win_and_regime_to_each_decision() -> None:
    trades = _trades([100.0, -50.0, 0.0], iv=[10.0, 20.0, 30.0], vix=[15.0, 25.0, 35.0])
    regimes = pd.Series(["calm", "stress", None])
    dec = _decisions(trades, [A, R, E]).iloc[::-1]  # decisions in another order than the trades
    out = an.join(dec, trades, regimes).set_index("trade_id")
    ids = list(trade_ids(trades))
    assert ids[0] == "2023-01-02-SPX-4000-3995-2023-02-01"  # date-ticker-short-long-expiration
    assert out.loc[ids, "pnl"].tolist() == [100.0, -50.0, 0.0]
    assert out.loc[ids, "win"].tolist() == [True, False, False]  # breakeven is not a win
    assert out.loc[ids[:2], "regime"].tolist() == ["calm", "stress"]
    assert pd.isna(out.loc[ids[2], "regime"])
    assert out.loc[ids, "iv_percentile"].tolist() == [10.0, 20.0, 30.0]
    assert out.loc[ids, "vix"].tolist() == [15.0, 25.0, 35.0]
    assert out.loc[ids, "date"].tolist() == [
        START,
        START + pd.Timedelta(weeks=1),
        START + pd.Timedelta(weeks=2),
    ]
    assert out.loc[ids[:2], "decision"].tolist() == [A, R]
    assert pd.isna(out.loc[ids[2], "decision"]) and out.loc[ids[2], "error"] == "timeout"


def test_join_takes_the_trades_regime_column_or_none() -> None:
    trades = _trades([10.0, -10.0])
    dec = _decisions(trades, [A, R])
    assert an.join(dec, trades)["regime"].isna().all()
    own = trades.assign(regime=["bull", "bear"])
    assert an.join(dec, own).set_index("trade_id").loc[list(trade_ids(own)), "regime"].tolist() == [
        "bull",
        "bear",
    ]


def test_join_rejects_decisions_of_unknown_trades_naming_them() -> None:
    trades = _trades([10.0, -10.0])
    dec = _decisions(trades, [A, R])
    dec.loc[0, "trade_id"] = "2020-01-01-XYZ-1-2-2020-02-01"
    dec.loc[1, "trade_id"] = "2020-01-02-XYZ-1-2-2020-02-01"
    with pytest.raises(ValueError, match="name 2 trades") as info:
        an.join(dec, trades)
    assert "2020-01-01-XYZ-1-2-2020-02-01" in str(info.value)
    assert "2020-01-02-XYZ-1-2-2020-02-01" in str(info.value)


# ---------------------------------------------------------------------------------------------
# approval_table

# 10 trades, one a week from 2023-01-02: January holds 0-4, February 5-8, March 9.
TABLE_PNL = [120.0, -80.0, 60.0, 40.0, -200.0, 90.0, 30.0, -10.0, 75.0, 15.0]
TABLE_DEC = [A, A, A, R, R, A, E, R, A, E]
APPROVED_PNL = [120.0, -80.0, 60.0, 90.0, 75.0]  # 4 wins of 5
REJECTED_PNL = [40.0, -200.0, -10.0]  # 1 win of 3
ERROR_PNL = [30.0, 15.0]  # 2 wins of 2


def test_approval_table_counts_rates_wilson_intervals_and_pnl_by_hand() -> None:
    tab = an.approval_table(_joined(TABLE_PNL, TABLE_DEC), reps=500).set_index("group")
    assert list(tab.index) == ["approved", "rejected", "all", "error"]
    expected = {
        "approved": (APPROVED_PNL, 4),
        "rejected": (REJECTED_PNL, 1),
        "all": (TABLE_PNL, 7),
        "error": (ERROR_PNL, 2),  # the decisions with no decision
    }
    for group, (pnl, wins) in expected.items():
        row = tab.loc[group]
        n = len(pnl)
        assert row["n"] == n
        assert row["win_rate"] == pytest.approx(wins / n)
        lo, hi = proportion_confint(wins, n, alpha=0.05, method="wilson")
        assert (row["win_ci_low"], row["win_ci_high"]) == pytest.approx((lo, hi))
        assert (row["win_ci_low"], row["win_ci_high"]) == pytest.approx(_wilson(wins, n))
        assert row["mean_pnl"] == pytest.approx(np.mean(pnl))
        assert row["total_pnl"] == pytest.approx(np.sum(pnl))
    assert tab.loc["approved", "mean_pnl"] == pytest.approx(53.0)
    assert tab.loc["all", "total_pnl"] == pytest.approx(140.0)
    # the month-cluster intervals bracket the mean (approved: January mean 33.3, February 82.5)
    for group in ("approved", "rejected", "all"):
        row = tab.loc[group]
        assert row["pnl_ci_low"] <= row["mean_pnl"] <= row["pnl_ci_high"]
    assert tab.loc["approved", "pnl_ci_low"] == pytest.approx(100.0 / 3)
    assert tab.loc["approved", "pnl_ci_high"] == pytest.approx(82.5)


def test_approval_table_resamples_whole_entry_months() -> None:
    """January's four trades all make +10, February's four -10: resampling months can only give
    means -10, 0 or +10 (resampling trades would give every multiple of 2.5 in between)."""
    dates = [f"2023-01-{d:02d}" for d in (2, 9, 16, 23)] + [
        f"2023-02-{d:02d}" for d in (6, 13, 20, 27)
    ]
    tab = an.approval_table(
        _joined([10.0] * 4 + [-10.0] * 4, [A] * 8, dates=dates), reps=2000
    ).set_index("group")
    lo, hi = tab.loc["approved", ["pnl_ci_low", "pnl_ci_high"]]
    assert (lo, hi) == (-10.0, 10.0)  # each month alone is drawn a quarter of the time


def test_approval_table_gives_no_pnl_interval_within_one_month() -> None:
    dates = [f"2023-01-{d:02d}" for d in (2, 9, 16, 23, 30)]
    tab = an.approval_table(
        _joined([50.0, -20.0, 30.0, -40.0, 10.0], [A, A, R, R, A], dates=dates)
    ).set_index("group")
    for group in ("approved", "rejected", "all"):
        assert np.isnan(tab.loc[group, "pnl_ci_low"]) and np.isnan(tab.loc[group, "pnl_ci_high"])
        assert np.isfinite(tab.loc[group, "win_ci_low"])  # the Wilson interval is still there
    assert tab.loc["error", "n"] == 0 and np.isnan(tab.loc["error", "win_rate"])


def _months_of(dates: Sequence[pd.Timestamp] | pd.Series) -> np.ndarray:
    d = pd.to_datetime(pd.Series(list(dates)))
    return (d.dt.year * 12 + d.dt.month).to_numpy()


def _peer(y: Numbers, groups: Numbers, dummy: Numbers | None = None) -> tuple[float, ...]:
    """statsmodels' OLS with cluster-robust errors, called here: (estimate, se, p, lo, hi)."""
    yv = np.asarray(y, float)
    x = np.ones((len(yv), 1)) if dummy is None else sm.add_constant(np.asarray(dummy, float))
    res = sm.OLS(yv, x).fit(cov_type="cluster", cov_kwds={"groups": np.asarray(groups)}, use_t=True)
    lo, hi = res.conf_int()[-1]
    return float(res.params[-1]), float(res.bse[-1]), float(res.pvalues[-1]), float(lo), float(hi)


def _rotations_by_hand(values: Numbers, mask: Numbers) -> float:
    """Every circular shift of the mask, one by one."""
    v, m = np.asarray(values, float), np.asarray(mask, bool)
    observed = v[m].sum()
    sums = [v[np.roll(m, s)].sum() for s in range(len(v))]
    return float(np.mean([s >= observed - 1e-9 for s in sums]))


# ---------------------------------------------------------------------------------------------
# clustered_test and rotation_p


def test_clustered_mean_by_hand() -> None:
    # three clusters of two: residuals -2.5 -1.5 | -0.5 0.5 | 1.5 2.5, cluster sums -4, 0, 4
    out = an.clustered_test([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 1, 2, 2, 3, 3])
    var = (3 / 2) * (16 + 0 + 16) / 36  # CR1 G/(G-1) (K = 1: (N-1)/(N-K) = 1) x sum S^2 / N^2
    assert out.estimate == pytest.approx(3.5)
    assert out.se == pytest.approx(np.sqrt(var))  # 1.1547
    assert out.clusters == 3 and out.df == 2
    t = 3.5 / np.sqrt(var)
    assert out.p == pytest.approx(2 * stats.t.sf(t, 2))  # 0.0938
    assert out.p == pytest.approx(0.0938, abs=1e-4)
    half = stats.t.ppf(0.975, 2) * np.sqrt(var)
    assert (out.ci_low, out.ci_high) == pytest.approx((3.5 - half, 3.5 + half))
    assert (out.estimate, out.se, out.p, out.ci_low, out.ci_high) == pytest.approx(
        _peer([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 1, 2, 2, 3, 3])
    )


def test_clustered_difference_matches_a_hand_sandwich_and_statsmodels() -> None:
    rng = np.random.default_rng(3)
    n = 60
    groups = np.repeat(np.arange(8), [5, 9, 7, 8, 6, 10, 7, 8])
    dummy = rng.random(n) < 0.4
    y = (
        rng.normal(0, 1, n)
        + 0.5 * dummy
        + np.repeat(rng.normal(0, 1, 8), [5, 9, 7, 8, 6, 10, 7, 8])
    )
    out = an.clustered_test(y, groups, dummy)
    x = np.column_stack([np.ones(n), dummy.astype(float)])
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y
    e = y - x @ beta
    meat = sum(
        np.outer(x[groups == g].T @ e[groups == g], x[groups == g].T @ e[groups == g])
        for g in range(8)
    )
    c = 8 / 7 * (n - 1) / (n - 2)
    se = float(np.sqrt((c * bread @ meat @ bread)[1, 1]))
    assert out.estimate == pytest.approx(y[dummy].mean() - y[~dummy].mean())
    assert out.se == pytest.approx(se)
    assert out.p == pytest.approx(2 * stats.t.sf(abs(out.estimate) / se, 7))
    assert (out.estimate, out.se, out.p, out.ci_low, out.ci_high) == pytest.approx(
        _peer(y, groups, dummy)
    )


def test_clustered_test_needs_two_clusters_and_both_groups() -> None:
    assert np.isnan(an.clustered_test([1.0, 2.0, 3.0], [7, 7, 7]).p)
    assert an.clustered_test([1.0, 2.0, 3.0], [7, 7, 7]).clusters == 1
    assert np.isnan(an.clustered_test([1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], [1, 1, 1, 1]).estimate)
    # nothing varies, or only by rounding: no test (never p = 0), the estimate kept
    exact = an.clustered_test([0.0, 0.0, 0.0, 0.0], [1, 1, 2, 2])
    assert exact.estimate == 0 and np.isnan([exact.se, exact.p, exact.ci_low]).all()
    flat = an.clustered_test([0.2, 0.2, 0.2], [2001, 2002, 2003])
    assert flat.estimate == pytest.approx(0.2) and np.isnan(flat.p)
    noise = an.clustered_test([1, 2, 3, 10, 11, 12], [1, 1, 1, 2, 2, 2], [1, 1, 1, 0, 0, 0])
    assert noise.estimate == pytest.approx(-9) and np.isnan(noise.p)  # se ~ 6e-15 before
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 2"):
        an.clustered_test([1.0, 2.0, 3.0], [1, 2, 3], alpha=2)
    with pytest.raises(ValueError, match="same length"):
        an.clustered_test([1.0, 2.0, 3.0], [1, 2])


def test_no_p_value_is_ever_exactly_zero() -> None:
    """A difference millions of standard errors from zero: the t distribution's tail underflows
    to 0.0 in statsmodels; ``clustered_test`` floors it at ``P_FLOOR`` (2.2e-308), so a p-value
    is never exactly 0 (which ``p or 1`` would read as 1)."""
    rng = np.random.default_rng(0)
    n = 300
    months = np.repeat(np.arange(60), 5)
    dummy = np.tile([0, 1, 0, 1, 1], 60).astype(bool)
    y = 1000.0 * dummy + 1e-4 * rng.standard_normal(n)
    import statsmodels.api as sm

    raw = sm.OLS(y, np.column_stack([np.ones(n), dummy])).fit(
        cov_type="cluster", cov_kwds={"groups": months}, use_t=True
    )
    assert raw.pvalues[1] == 0.0  # the underflow this guards against
    assert an.clustered_test(y, months, dummy).p == an.P_FLOOR
    assert an.paired_kept_test(y, dummy, ~dummy, months).p == an.P_FLOOR
    dates = [pd.Timestamp("2015-01-05") + pd.DateOffset(months=int(m)) for m in months]
    joined = _joined(y - 500.0, [A if d else R for d in dummy], dates=dates)
    out = an.approval_tests(joined)
    assert out["months_approved"] == out["months_rejected"] == 60
    assert out["pnl_p"] == an.P_FLOOR
    assert np.isnan(out["win_p"])  # every approval wins, every rejection loses: nothing to test
    regimes = an.by_regime(joined.assign(regime="calm"))
    assert regimes.loc[0, "pnl_p"] == an.P_FLOOR


def test_duplicating_trades_within_their_month_adds_no_evidence() -> None:
    """The same trades entered twice on their own day: a test that counts trades as independent
    gets far more significant; the month-clustered test moves only by the (N-1)/(N-K) factor."""
    rng = np.random.default_rng(21)
    n = 48
    days = [START + pd.Timedelta(days=7 * i) for i in range(n)]
    pnl = np.round(rng.normal(0, 50, n), 2)
    dec: list[Decision] = [A if x else R for x in rng.random(n) < 0.5]
    once = an.approval_tests(_joined(pnl, dec, dates=days), min_months=2)
    twice = an.approval_tests(
        _joined(np.repeat(pnl, 2), list(np.repeat(dec, 2)), dates=list(np.repeat(days, 2))),
        min_months=2,
    )
    assert twice["pnl_diff"] == pytest.approx(once["pnl_diff"])
    assert twice["months"] == once["months"]
    g = once["months"]
    t_once = once["pnl_diff"] / (
        (once["pnl_diff_ci_high"] - once["pnl_diff"]) / stats.t.ppf(0.975, g - 1)
    )
    ratio = np.sqrt(((n - 1) / (n - 2)) / ((2 * n - 1) / (2 * n - 2)))
    assert twice["pnl_p"] == pytest.approx(2 * stats.t.sf(abs(t_once) * ratio, g - 1))
    assert twice["pnl_p"] == pytest.approx(once["pnl_p"], rel=0.05)
    # the two-proportion z-test on the same data: the duplicates halve its p-value or more
    a = np.array([d == A for d in dec])
    win = pnl > 0
    _, z_once = proportions_ztest([win[a].sum(), win[~a].sum()], [a.sum(), (~a).sum()])
    _, z_twice = proportions_ztest(
        [2 * win[a].sum(), 2 * win[~a].sum()], [2 * a.sum(), 2 * (~a).sum()]
    )
    assert z_twice < z_once
    assert twice["win_p"] == pytest.approx(once["win_p"], rel=0.05)


def test_rotation_p_by_hand() -> None:
    # selects 5 + 4 = 9; shifts select 4 + 1, 1 + 0, 0 + 5: only the filter itself reaches 9
    assert an.rotation_p([5.0, 4.0, 1.0, 0.0], [True, True, False, False]) == (0.25, 3)
    assert an.rotation_p([1.0, 2.0, 3.0, 4.0], [False, False, False, True]) == (0.25, 3)
    # selecting the smallest value: every shift does at least as well
    assert an.rotation_p([1.0, 2.0, 3.0, 4.0], [True, False, False, False]) == (1.0, 3)
    # ties count against the filter
    assert an.rotation_p([2.0] * 6, [True, True, False, False, True, False]) == (1.0, 5)
    p, rotations = an.rotation_p([1.0], [True])
    assert np.isnan(p) and rotations == 0


def test_rotation_p_gives_no_p_value_for_a_missing_or_infinite_value() -> None:
    """A NaN P&L used to fall out of every shifted sum but one: p = 0 / n with one NaN (below
    the 1/n floor), or 1/n whatever the data. No p-value now, and never 0."""
    for bad in (np.nan, np.inf, -np.inf):
        values = [5.0, 4.0, bad, 0.0, 3.0]
        for mask in ([True, True, False, False, False], [False, False, True, False, False]):
            p, rotations = an.rotation_p(values, mask)
            assert np.isnan(p) and rotations == 0, (bad, mask, p)
    with pytest.raises(ValueError, match="values and mask need the same length, got 3 and 2"):
        an.rotation_p([1.0, 2.0, 3.0], [True, False])
    # finite values: never below the floor of 1/n (the filter's own shift counts)
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.normal(0, 1e6, 30)
        p, _ = an.rotation_p(v, rng.random(30) < 0.3)
        assert p >= 1 / 30


def test_rotation_p_counts_every_shift() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(0, 100, 97)
    mask = np.repeat(rng.random(10) < 0.5, 10)[:97]  # persistent: runs of ten
    p, rotations = an.rotation_p(values, mask)
    assert rotations == 96
    assert p == pytest.approx(_rotations_by_hand(values, mask))
    assert p == pytest.approx(round(p * 97) / 97)  # a count of shifts out of 97


# ---------------------------------------------------------------------------------------------
# approval_tests

TESTS_APPROVED = [50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 130.0, -100.0, -150.0, -200.0]
TESTS_REJECTED = [40.0, 30.0, 20.0, -60.0, -70.0, -80.0, -90.0, -100.0]


def _tests_frame() -> pd.DataFrame:
    # interleave approvals and rejections over 22 weeks (six entry months), plus two failed calls
    pnl: list[float] = []
    dec: list[Decision] = []
    a, r = list(TESTS_APPROVED), list(TESTS_REJECTED)
    while a or r:
        if a:
            pnl.append(a.pop(0))
            dec.append(A)
        if a:
            pnl.append(a.pop(0))
            dec.append(A)
        if r:
            pnl.append(r.pop(0))
            dec.append(R)
    pnl += [500.0, -500.0]
    dec += [E, E]
    return _joined(pnl, dec)


def test_approval_tests_are_month_clustered_ols_on_an_approve_dummy() -> None:
    joined = _tests_frame()
    out = an.approval_tests(joined, min_months=4)  # approvals span 4 months, rejections 5
    assert out["n_approved"] == 12 and out["n_rejected"] == 8
    assert out["approval_rate"] == pytest.approx(12 / 20)  # failed calls left out
    ok = joined[joined["decision"].notna()]
    months = _months_of(ok["date"])
    assert out["months"] == len(set(months)) == 5  # 20 weekly trades from 2023-01-02
    assert out["months_approved"] == 4 and out["months_rejected"] == 5
    assert out["win_diff"] == pytest.approx(9 / 12 - 3 / 8)
    a, r = np.array(TESTS_APPROVED), np.array(TESTS_REJECTED)
    assert out["pnl_diff"] == pytest.approx(a.mean() - r.mean())
    dummy = (ok["decision"] == A).to_numpy()
    for key, y in (("win", ok["win"].to_numpy(float)), ("pnl", ok["pnl"].to_numpy(float))):
        est, _, p, lo, hi = _peer(y, months, dummy)
        assert out[f"{key}_diff"] == pytest.approx(est)
        assert out[f"{key}_p"] == pytest.approx(p)
        assert (out[f"{key}_diff_ci_low"], out[f"{key}_diff_ci_high"]) == pytest.approx((lo, hi))
    # not the two-proportion z-test of the old code
    _, z = proportions_ztest(np.array([9, 3]), np.array([12, 8]))
    assert out["win_p"] != pytest.approx(z, rel=1e-3)


def test_approval_tests_need_two_of_each() -> None:
    out = an.approval_tests(_joined([10.0, 20.0, -30.0], [A, A, R]), min_months=1)
    assert out["n_approved"] == 2 and out["n_rejected"] == 1
    assert out["pnl_diff"] == pytest.approx(15.0 + 30.0) and out["win_diff"] == 1.0  # descriptive
    for key in ("win_p", "pnl_p", "pnl_diff_ci_low", "pnl_diff_ci_high", "win_diff_ci_low"):
        assert np.isnan(out[key])
    none = an.approval_tests(_joined([10.0, 20.0], [A, A]), min_months=1)
    assert np.isnan(none["pnl_diff"]) and np.isnan(none["pnl_p"])


def _monthly(months: int, per_month: int = 4, *, seed: int = 0) -> tuple[list, list, list]:
    """``months`` entry months, ``per_month`` trades each (weekly from the first Monday), half
    approved (alternating) — approved trades win about 100 more than rejected ones."""
    rng = np.random.default_rng(seed)
    dates, pnl, dec = [], [], []
    for m in range(months):
        first = pd.Timestamp("2020-01-06") + pd.DateOffset(months=m)
        for w in range(per_month):
            approve = (m + w) % 2 == 0
            dates.append(first + pd.Timedelta(days=7 * w))
            pnl.append(float(rng.normal(60.0 if approve else -40.0, 30.0)))
            dec.append(A if approve else R)
    return pnl, dec, dates


def test_approval_tests_need_min_months_on_each_side() -> None:
    """Three months of trades: the differences are given, but no p-value — the clustered test
    with three clusters (two degrees of freedom) is not given the chance to reject."""
    pnl, dec, dates = _monthly(3)
    out = an.approval_tests(_joined(pnl, dec, dates=dates))
    assert an.MIN_MONTHS == 12 and out["min_months"] == 12
    assert out["months"] == out["months_approved"] == out["months_rejected"] == 3
    a = np.array([d == A for d in dec])
    assert out["pnl_diff"] == pytest.approx(np.mean(np.array(pnl)[a]) - np.mean(np.array(pnl)[~a]))
    assert np.isnan(out["pnl_p"]) and np.isnan(out["win_p"]) and np.isnan(out["pnl_diff_ci_low"])
    # with the bar lowered, the same data are tested (and significant)
    low = an.approval_tests(_joined(pnl, dec, dates=dates), min_months=3)
    assert low["pnl_p"] < 0.05
    # twelve months on each side: tested at the default
    pnl, dec, dates = _monthly(12)
    twelve = an.approval_tests(_joined(pnl, dec, dates=dates))
    assert twelve["months_approved"] == twelve["months_rejected"] == 12
    assert np.isfinite(twelve["pnl_p"]) and twelve["pnl_p"] < 0.05
    # 12 months in all, but the rejections in only 11 of them: not tested
    dec11 = [A if dates[i].month == 1 else d for i, d in enumerate(dec)]
    eleven = an.approval_tests(_joined(pnl, dec11, dates=dates))
    assert eleven["months"] == 12 and eleven["months_rejected"] == 11
    assert np.isnan(eleven["pnl_p"])


# ---------------------------------------------------------------------------------------------
# controls


def test_the_random_filter_is_the_rotation_null_not_a_permutation() -> None:
    """A filter approving a block of five weeks that all won 100 while the other 20 lost 10: of
    the 25 rotations only the filter itself selects that block, p = 1/25 exactly. Random subsets
    of five (the old i.i.d. permutation) reach it once in C(25, 5) = 53,130."""
    pnl = [100.0] * 5 + [-10.0] * 20
    dec = [A] * 5 + [R] * 20
    joined = _joined(pnl, dec).sample(frac=1, random_state=3)  # any row order: sorted by date
    c = an.controls(joined)
    assert c.random_p == 1 / 25
    assert c.random_reps == 24
    assert c.beats_random


def test_an_oracle_filter_sits_at_the_rotation_floor() -> None:
    rng = np.random.default_rng(1)
    size = rng.uniform(10, 100, 40)  # distinct magnitudes: only one set of k trades is the best
    pnl = np.where(rng.random(40) < 0.5, size, -size)
    joined = _joined(pnl, [A if p > 0 else R for p in pnl])
    c = an.controls(joined)
    assert c.random_p == 1 / 40
    assert c.random_reps == 39
    assert c.beats_random
    assert c.approval_rate == pytest.approx((pnl > 0).mean())
    assert c.mean_approved == pytest.approx(pnl[pnl > 0].mean())
    assert c.mean_all == pytest.approx(pnl.mean())


def test_a_filter_independent_of_pnl_gets_its_rotation_p() -> None:
    pnl = np.random.default_rng(2).normal(10, 50, 60)
    approve = np.repeat(np.random.default_rng(5).random(12) < 0.5, 5)  # runs of five weeks
    c = an.controls(_joined(pnl, [A if x else R for x in approve]))
    assert c.random_p == pytest.approx(_rotations_by_hand(pnl, approve))
    assert c.random_p > 0.05 and not c.beats_random


def _rule_world(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """40 weekly trades whose P&L rises strictly with the IV percentile; VIX and regime drawn
    independently of it."""
    rng = np.random.default_rng(seed)
    iv = rng.permutation(np.linspace(5.0, 95.0, 40))
    vix = rng.permutation(np.linspace(12.0, 40.0, 40))
    pnl = 3.0 * iv - 150.0
    regimes = list(rng.choice(["calm", "stress"], 40))
    return iv, vix, pnl, regimes


def _top(values: np.ndarray, k: int) -> np.ndarray:
    mask = np.zeros(len(values), bool)
    mask[np.argsort(-values)[:k]] = True
    return mask


def test_best_rule_chosen_in_sample_and_a_filter_equal_to_it_differs_by_zero() -> None:
    iv, vix, pnl, regimes = _rule_world()
    first, second = slice(0, 20), slice(20, 40)
    # the filter: the 10 highest IV percentiles of each half (trades are in date order)
    approve = np.concatenate([_top(iv[first], 10), _top(iv[second], 10)])
    trades = _trades(pnl, iv=iv, vix=vix)
    joined = an.join(
        _decisions(trades, [A if x else R for x in approve]), trades, pd.Series(regimes)
    )
    c = an.controls(joined)
    assert c.rule == "highest iv_percentile"
    # every rule's in-sample mean, by hand (the filter's in-sample count: 10)
    p1, iv1, vix1 = pnl[first], iv[first], vix[first]
    reg1 = np.array(regimes[:20])
    means = {r: float(p1[reg1 == r].mean()) for r in ("calm", "stress")}
    order = sorted(means, key=lambda r: means[r], reverse=True)
    best_regimes = sorted(range(20), key=lambda i: (order.index(str(reg1[i])), i))[:10]
    expected = {
        "lowest iv_percentile": p1[_top(-iv1, 10)].mean(),
        "highest iv_percentile": p1[_top(iv1, 10)].mean(),
        "lowest vix": p1[_top(-vix1, 10)].mean(),
        "highest vix": p1[_top(vix1, 10)].mean(),
        "best regimes": p1[best_regimes].mean(),
    }
    tried = c.rules_tried.set_index("rule")["in_sample_mean"]
    assert set(tried.index) == set(expected)
    for rule, mean in expected.items():
        assert tried[rule] == pytest.approx(mean)
    assert c.rule_in_sample_mean == pytest.approx(np.sort(p1)[-10:].mean())  # the top 10 P&Ls
    # out of sample the filter approves exactly the rule's trades
    assert c.oos_trades == 20 and c.oos_kept_filter == c.oos_kept_rule == 10
    assert c.oos_diff == 0.0
    # identical sets: nothing to test (no interval, no p); the filter is the rule out of sample:
    # compared (difference exactly 0), not beaten
    assert np.isnan(c.oos_diff_ci).all() and np.isnan(c.oos_diff_p)
    assert c.oos_filter_mean == c.oos_rule_mean == pytest.approx(np.sort(pnl[second])[-10:].mean())
    assert not c.beats_rule and c.same_as_rule and c.rule_tested and c.rule_note == ""


def test_the_simple_rule_keeps_exactly_the_filters_count() -> None:
    iv, vix, pnl, _ = _rule_world(6)
    approve = np.zeros(40, bool)
    approve[[0, 2, 3, 5, 7, 11, 13, 17, 19]] = True  # 9 in the first half
    approve[[21, 30, 38]] = True  # 3 in the second (12 of 40 = 30% overall)
    c = an.controls(_joined(pnl, [A if x else R for x in approve], iv=iv, vix=vix))
    assert c.approval_rate == pytest.approx(0.3)
    assert c.rule == "highest iv_percentile"
    # in-sample at the filter's 9, out of sample at the filter's 3 (not 30% of 20 = 6)
    assert c.rule_in_sample_mean == pytest.approx(np.sort(pnl[:20])[-9:].mean())
    assert c.oos_kept_filter == 3 and c.oos_kept_rule == 3
    rule = np.zeros(20, bool)
    rule[np.argsort(-iv[20:])[:3]] = True
    assert c.oos_rule_mean == pytest.approx(pnl[20:][rule].mean())
    assert c.oos_filter_mean == pytest.approx(pnl[[21, 30, 38]].mean())
    assert c.oos_diff == pytest.approx(pnl[[21, 30, 38]].mean() - pnl[20:][rule].mean())
    # the paired test: (n / k) x (P&L - mean) x (filter - rule), month-clustered (statsmodels)
    oos = pnl[20:]
    x = 20 / 3 * (oos - oos.mean()) * (approve[20:].astype(float) - rule)
    months = _months_of([START + pd.Timedelta(weeks=i) for i in range(20, 40)])
    est, _, p, lo, hi = _peer(x, months)
    assert est == pytest.approx(c.oos_diff)
    assert c.oos_diff_p == pytest.approx(p)
    assert c.oos_diff_ci == pytest.approx((lo, hi))
    assert c.beats_rule == (lo > 0)
    assert c.rule_tested and c.rule_note == ""


def test_controls_without_out_of_sample_approvals_have_no_rule_comparison() -> None:
    c = an.controls(_joined([10.0, -5.0, 3.0, 8.0, -1.0, 2.0], [A, A, R, R, R, R]))
    assert c.oos_kept_filter == 0 and c.oos_kept_rule == 0
    assert np.isnan(c.oos_diff) and np.isnan(c.oos_diff_p) and not c.beats_rule
    assert not c.rule_tested and c.rule_note == "the filter approves no trade out of sample"
    assert not c.same_as_rule


def test_controls_need_an_approval() -> None:
    with pytest.raises(ValueError, match="at least one approved"):
        an.controls(_joined([10.0, -10.0, 5.0], [R, R, E]))


# ---------------------------------------------------------------------------------------------
# threshold_sweep

# (decision, confidence, pnl): weekly from 2023-01-02 (two months)
SWEEP = [
    (A, 0.9, 100.0),
    (A, 0.7, -50.0),
    (A, 0.5, 30.0),
    (R, 0.95, 200.0),
    (A, 0.3, -20.0),
    (E, None, 10.0),
]


def test_threshold_sweep_by_hand() -> None:
    joined = _joined(
        [p for *_, p in SWEEP], [d for d, *_ in SWEEP], [c or 0.0 for _, c, _ in SWEEP]
    )
    out = an.threshold_sweep(joined, [0.0, 0.5, 0.8, 0.95], reps=300).set_index("threshold")
    all_mean = 270.0 / 6
    hand = {  # threshold: kept P&L (approvals at or above it; the 0.95 rejection never)
        0.0: [100.0, -50.0, 30.0, -20.0],
        0.5: [100.0, -50.0, 30.0],
        0.8: [100.0],
    }
    for t, kept in hand.items():
        row = out.loc[t]
        assert row["kept"] == len(kept)
        assert row["kept_share"] == pytest.approx(len(kept) / 6)
        assert row["win_rate"] == pytest.approx(np.mean(np.array(kept) > 0))
        assert row["mean_pnl"] == pytest.approx(np.mean(kept))
        assert row["total_pnl"] == pytest.approx(np.sum(kept))
        assert row["uplift"] == pytest.approx(np.mean(kept) - all_mean)
    assert out.loc[0.0, "uplift"] == pytest.approx(15.0 - 45.0)
    above = out.loc[0.95]  # above every approval's confidence
    assert above["kept"] == 0 and above["total_pnl"] == 0.0
    for key in ("win_rate", "mean_pnl", "uplift", "uplift_ci_low", "uplift_ci_high"):
        assert np.isnan(above[key])
    # no bootstrap draws: no interval, the same figures
    bare = an.threshold_sweep(joined, [0.0, 0.5], reps=0)
    assert bare["uplift"].tolist() == pytest.approx([15.0 - 45.0, 80.0 / 3 - 45.0])
    assert bare[["uplift_ci_low", "uplift_ci_high"]].isna().all().all()


def test_threshold_zero_keeps_every_approval_and_no_rejection() -> None:
    rng = np.random.default_rng(7)
    dec = list(rng.choice([A, R], 30))
    conf = list(np.round(rng.uniform(0.0, 1.0, 30), 2))
    pnl = list(rng.normal(0, 40, 30))
    out = an.threshold_sweep(_joined(pnl, dec, conf), reps=100)
    assert out["threshold"].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    approved = [p for p, d in zip(pnl, dec, strict=True) if d == A]
    assert out.iloc[0]["kept"] == len(approved)
    assert out.iloc[0]["total_pnl"] == pytest.approx(sum(approved))
    for _, row in out.iterrows():
        kept = [
            p
            for p, d, c in zip(pnl, dec, conf, strict=True)
            if d == A and c >= row["threshold"] - 1e-12
        ]
        assert row["kept"] == len(kept)
        assert row["total_pnl"] == pytest.approx(sum(kept))


# ---------------------------------------------------------------------------------------------
# recommend_threshold

# first half (20 trades): confident approvals win, hesitant ones lose
FIRST = (
    [(A, 0.85, 100.0)] * 5 + [(A, 0.65, 60.0)] * 3 + [(A, 0.55, -40.0)] * 3 + [(A, 0.45, -90.0)] * 3
) + [(R, 0.7, 20.0)] * 6
# second half: the other way round (a choice made on all trades would differ)
SECOND = (
    [(A, 0.85, -150.0)] * 5 + [(A, 0.65, -50.0)] * 3 + [(A, 0.55, 80.0)] * 3 + [(A, 0.45, 30.0)] * 3
) + [(R, 0.7, 20.0)] * 6
# a losing strategy: the fewest trades lose the least in total and the most per trade
LOSING = (
    [(A, 0.85, -60.0)] * 5
    + [(A, 0.65, -10.0)] * 5
    + [(A, 0.45, -70.0)] * 5
    + [(R, 0.7, -100.0)] * 5
)


def _threshold_frame(first: list, second: list, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [first[i] for i in rng.permutation(20)] + [second[i] for i in rng.permutation(20)]
    return _joined([p for *_, p in rows], [d for d, *_ in rows], [c for _, c, _ in rows])


def _kept_by_hand(rows: list, t: float) -> list[float]:
    return [p for d, c, p in rows if d == A and c >= t - 1e-12]


def _hand_best(rows: list, min_kept: int) -> float:
    """Largest mean P&L of the approvals at or above t (= largest uplift: the base is the same
    for every t), among t keeping at least min_kept; ties to the lower t."""
    means = {
        t: np.mean(_kept_by_hand(rows, t))
        for t in an.THRESHOLDS
        if len(_kept_by_hand(rows, t)) >= min_kept
    }
    return max(sorted(means), key=lambda t: means[t])


def _hand_best_total(rows: list, min_kept: int) -> float:
    """The old rule: the largest total P&L."""
    totals = {
        t: sum(_kept_by_hand(rows, t))
        for t in an.THRESHOLDS
        if len(_kept_by_hand(rows, t)) >= min_kept
    }
    return max(sorted(totals), key=lambda t: totals[t])


def test_recommend_threshold_chooses_by_per_trade_uplift_not_total() -> None:
    """On a losing strategy (mean P&L -60) the least negative total keeps the fewest trades:
    0.7-0.8 keep 5 (total -300, mean -60, uplift 0); 0.5-0.6 keep 10 (-350, mean -35, uplift
    +25); 0.0-0.4 keep 15 (-700, mean -46.7, uplift +13.3). The old rule (largest total) took
    0.7, the worst per trade; ties go to the lower threshold."""
    assert _hand_best_total(LOSING, 5) == 0.7
    assert _hand_best(LOSING, 5) == 0.5
    choice = an.recommend_threshold(_threshold_frame(LOSING, LOSING), min_kept=5)
    assert choice.threshold == 0.5
    base = np.mean([p for *_, p in LOSING])  # -60
    assert choice.in_sample["kept"] == 10
    assert choice.in_sample["uplift"] == pytest.approx(-35.0 - base)
    assert choice.in_sample["total_pnl"] == pytest.approx(-350.0)
    # min_kept rules 0.5 out: the lowest threshold keeps 15
    assert an.recommend_threshold(_threshold_frame(LOSING, LOSING), min_kept=11).threshold == 0.0
    assert _hand_best(LOSING, 11) == 0.0


def test_recommend_threshold_chooses_on_the_first_half_and_reports_the_second() -> None:
    joined = _threshold_frame(FIRST, SECOND)
    choice = an.recommend_threshold(joined.sample(frac=1, random_state=0), min_kept=5)
    # by hand: t <= 0.4 keeps 14 (mean 20.7), 0.5 keeps 11 (50.9), 0.6 keeps 8 (85), 0.7-0.8
    # keep 5 (100): the per-trade best is 0.7 (the old total rule took 0.6: 680 > 500)
    assert _hand_best(FIRST, 5) == 0.7 and _hand_best_total(FIRST, 5) == 0.6
    assert choice.threshold == 0.7
    assert _hand_best(FIRST + SECOND, 5) != 0.7  # what looking at every trade would choose
    assert choice.in_trades == 20 and choice.out_trades == 20
    assert choice.in_sample["kept"] == 5 and choice.in_sample["mean_pnl"] == pytest.approx(100.0)
    o = choice.out_of_sample
    assert o["kept"] == 5
    assert o["total_pnl"] == pytest.approx(5 * -150.0)
    assert o["mean_pnl"] == pytest.approx(-150.0)
    assert o["win_rate"] == 0.0
    second_mean = sum(p for *_, p in SECOND) / 20
    assert o["uplift"] == pytest.approx(-150.0 - second_mean)
    # the row is the sweep of the second half (by date) at that threshold
    second = joined.sort_values("date").iloc[20:]
    direct = an.threshold_sweep(second, [0.7], seed=0).iloc[0]
    pd.testing.assert_series_equal(o, direct, check_names=False)
    # against random filters keeping 5 of the second half: every rotation, counted by hand
    kept = (second["decision"] == A).to_numpy() & (second["confidence"].to_numpy() >= 0.7)
    assert kept.sum() == 5
    assert choice.random_p == pytest.approx(_rotations_by_hand(second["pnl"], kept))
    assert choice.random_p == 1.0  # the five worst trades: every rotation does at least as well
    assert choice.rotations == 19 and not choice.beats_random
    text = choice.text()
    assert "Threshold 0.7" in text and "per-trade uplift" in text
    assert "p = 1.000: it does not beat them" in text


def test_recommend_threshold_does_not_look_at_the_second_half() -> None:
    base = an.recommend_threshold(_threshold_frame(FIRST, SECOND), min_kept=5)
    # the second half now rewards taking everything: a whole-sample choice would be 0.0
    other = [(d, c, 500.0 if c == 0.45 else p) for d, c, p in SECOND]
    assert _hand_best(FIRST + other, 5) == 0.0
    moved = an.recommend_threshold(_threshold_frame(FIRST, other), min_kept=5)
    assert moved.threshold == base.threshold == 0.7
    pd.testing.assert_series_equal(moved.in_sample, base.in_sample)
    assert moved.out_of_sample["uplift"] != base.out_of_sample["uplift"]  # the second half moved


def test_recommend_threshold_honours_min_kept() -> None:
    choice = an.recommend_threshold(_threshold_frame(FIRST, SECOND), min_kept=9)
    assert _hand_best(FIRST, 9) == 0.5  # 0.6 keeps only 8
    assert choice.in_sample["kept"] >= 9
    assert choice.threshold == 0.5
    assert choice.min_kept == 9 and "at least 9 kept" in choice.text()


# ---------------------------------------------------------------------------------------------
# compare_prompts


def _pair(table: tuple[int, int, int, int], seed: int) -> tuple[pd.DataFrame, np.ndarray, list]:
    """Two variants on the same trades: (both approve, A only, B only, both reject)."""
    both, a_only, b_only, neither = table
    n = sum(table)
    pnl = np.random.default_rng(seed).integers(-100, 101, n).astype(float)
    a = [A] * (both + a_only) + [R] * (b_only + neither)
    b = [A] * both + [R] * a_only + [A] * b_only + [R] * neither
    trades = _trades(pnl)
    dec = pd.concat(
        [_decisions(trades, a, variant="balanced"), _decisions(trades, b, variant="conservative")]
    )
    return an.join(dec, trades), pnl, [a, b]


def test_compare_prompts_shares_edges_and_their_clustered_tests_by_hand() -> None:
    joined, pnl, (a, b) = _pair((10, 6, 2, 12), seed=9)
    out = an.compare_prompts(joined)
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["a"], row["b"]) == ("balanced", "conservative")
    assert row["trades"] == 30 and row["disagree"] == 8
    assert row["months"] == 7  # 30 weekly trades from 2023-01-02: January to July
    assert row["approve_a"] == pytest.approx(16 / 30)
    assert row["approve_b"] == pytest.approx(12 / 30)
    ya = np.array([x == A for x in a], float)
    yb = np.array([x == A for x in b], float)
    win = (pnl > 0).astype(float)
    assert row["accuracy_a"] == pytest.approx(np.mean(ya == win))
    assert row["accuracy_b"] == pytest.approx(np.mean(yb == win))
    # A keeps trades 10-15 that B rejects, B keeps 16-17 that A rejects
    assert row["pnl_kept_diff"] == pytest.approx((pnl[10:16].sum() - pnl[16:18].sum()) / 30)
    # the edges: outcome beyond the average trade, on the trades where they disagree
    months = _months_of([START + pd.Timedelta(weeks=i) for i in range(30)])
    d = ya - yb
    x_pnl = (pnl - pnl.mean()) * (d - d.mean())  # the same mean as (pnl - mean) * d
    x_win = (win - win.mean()) * (d - d.mean())
    assert row["pnl_edge_diff"] == pytest.approx(
        ((pnl[10:16] - pnl.mean()).sum() - (pnl[16:18] - pnl.mean()).sum()) / 30
    )
    est, _, p, lo, hi = _peer(x_pnl, months)
    assert (row["pnl_edge_diff"], row["pnl_edge_p"]) == pytest.approx((est, p))
    assert (row["pnl_edge_ci_low"], row["pnl_edge_ci_high"]) == pytest.approx((lo, hi))
    est, _, p, _, _ = _peer(x_win, months)
    assert (row["win_edge_diff"], row["win_edge_p"]) == pytest.approx((est, p))
    # P&L kept = edge + mean P&L x approval-rate difference
    assert row["pnl_kept_diff"] == pytest.approx(
        row["pnl_edge_diff"] + pnl.mean() * (16 / 30 - 12 / 30)
    )


def test_a_variant_whose_extra_approvals_all_win_has_the_edge() -> None:
    rng = np.random.default_rng(14)
    n = 60
    pnl = np.round(rng.normal(0, 50, n), 2)
    b = [A if rng.random() < 0.5 else R for _ in range(n)]
    a = [A if (x == A or p > 0) else R for x, p in zip(b, pnl, strict=True)]  # + B's winners
    trades = _trades(pnl)
    dec = pd.concat([_decisions(trades, a, variant="wise"), _decisions(trades, b, variant="coin")])
    row = an.compare_prompts(an.join(dec, trades)).iloc[0]
    assert (row["a"], row["b"]) == ("coin", "wise")  # in name order: coin minus wise
    assert row["pnl_edge_diff"] < 0 and row["win_edge_diff"] < 0
    assert row["pnl_edge_p"] < 0.05 and row["win_edge_p"] < 0.05


def test_compare_prompts_pairs_only_trades_both_decided() -> None:
    joined, _, (a, _) = _pair((10, 6, 2, 12), seed=9)
    trades = _trades(joined.drop_duplicates("trade_id").sort_values("date")["pnl"].to_numpy())
    third = _decisions(trades, [E] + a[1:], variant="aggressive")  # first call failed
    out = an.compare_prompts(pd.concat([joined, an.join(third, trades)]))
    assert [(r.a, r.b) for r in out.itertuples()] == [
        ("aggressive", "balanced"),
        ("aggressive", "conservative"),
        ("balanced", "conservative"),
    ]
    first = out.iloc[0]
    assert first["trades"] == 29 and first["disagree"] == 0 and first["pnl_kept_diff"] == 0.0
    assert first["pnl_edge_diff"] == 0.0 and np.isnan(first["pnl_edge_p"])  # nothing to test
    assert out.iloc[2]["trades"] == 30


# ---------------------------------------------------------------------------------------------
# calibration

# approvals at 0.85 (6 of 10 win), rejections at 0.75 (forecast 0.25; 3 of 8 win),
# approvals at 0.55 (4 of 6 win); none of the forecasts is on a bin edge
CAL = (
    ([(A, 0.85, 1)] * 6 + [(A, 0.85, 0)] * 4 + [(R, 0.75, 1)] * 3 + [(R, 0.75, 0)] * 5)
    + [(A, 0.55, 1)] * 4
    + [(A, 0.55, 0)] * 2
)


def _cal_frame(rows: list, errors: int = 0) -> pd.DataFrame:
    order = np.random.default_rng(11).permutation(len(rows))
    rows = [rows[i] for i in order] + [(E, None, 1)] * errors
    return _joined(
        [50.0 if y else -50.0 for *_, y in rows],
        [d for d, *_ in rows],
        [c or 0.0 for _, c, _ in rows],
    )


def test_calibration_scores_by_hand() -> None:
    bins, s = an.calibration(_cal_frame(CAL, errors=2))
    p = np.array([c if d == A else 1 - c for d, c, _ in CAL])
    y = np.array([y for *_, y in CAL], float)
    assert s["n"] == 24  # failed calls left out
    assert s["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert s["brier"] == pytest.approx((3.025 + 2.0 + 1.415) / 24)
    assert s["brier_base"] == pytest.approx(np.mean((y.mean() - y) ** 2))
    assert s["brier_base"] == pytest.approx((13 / 24) * (11 / 24))
    assert s["brier_skill"] == pytest.approx(1 - s["brier"] / s["brier_base"])
    assert s["brier_skill"] < 0
    # ECE with ten equal-width bins, binned here by integer tenths
    idx = np.minimum((np.round(p * 100).astype(int)) // 10, 9)
    ece = sum(
        (idx == b).sum() / len(p) * abs(y[idx == b].mean() - p[idx == b].mean()) for b in set(idx)
    )
    assert s["ece"] == pytest.approx(ece)
    assert s["ece"] == pytest.approx((10 * 0.25 + 8 * 0.125 + 6 * (4 / 6 - 0.55)) / 24)
    assert bins["bin_low"].tolist() == pytest.approx([0.2, 0.5, 0.8])
    assert bins["bin_high"].tolist() == pytest.approx([0.3, 0.6, 0.9])
    assert bins["n"].tolist() == [8, 6, 10]
    assert bins["mean_forecast"].tolist() == pytest.approx([0.25, 0.55, 0.85])
    assert bins["win_rate"].tolist() == pytest.approx([3 / 8, 4 / 6, 6 / 10])
    for row, (wins, n) in zip(bins.itertuples(), [(3, 8), (4, 6), (6, 10)], strict=True):
        assert (row.win_ci_low, row.win_ci_high) == pytest.approx(
            proportion_confint(wins, n, method="wilson")
        )


def test_a_calibrated_bin_has_no_calibration_error() -> None:
    bins, s = an.calibration(_cal_frame([(A, 0.8, 1)] * 8 + [(A, 0.8, 0)] * 2))
    assert len(bins) == 1
    row = bins.iloc[0]
    assert row["n"] == 10 and row["mean_forecast"] == pytest.approx(0.8)
    assert row["win_rate"] == pytest.approx(0.8)
    assert s["ece"] == pytest.approx(0.0, abs=1e-12)
    assert s["brier"] == pytest.approx((8 * 0.2**2 + 2 * 0.8**2) / 10)  # 0.16
    assert s["brier_base"] == pytest.approx(0.16)  # the base rate is the forecast
    assert s["brier_skill"] == pytest.approx(0.0, abs=1e-12)


def test_calibration_bins_forecasts_on_a_bin_edge_into_the_bin_that_starts_there() -> None:
    rows = [(A, 0.7, 1)] * 10 + [(A, 0.62, 1)] * 3 + [(A, 0.62, 0)] * 7
    bins, s = an.calibration(_cal_frame(rows))
    assert bins["n"].tolist() == [10, 10]  # 0.62 and 0.7 are in different tenths
    for row in bins.itertuples():
        assert row.bin_low <= row.mean_forecast < row.bin_high
    alone, _ = an.calibration(_cal_frame([(A, 0.7, 1)] * 3))
    assert alone["bin_low"].tolist() == pytest.approx([0.7])
    # by hand: [0.6, 0.7) holds 0.62 with 3 of 10 wins, [0.7, 0.8) holds 0.7 with 10 of 10
    assert s["ece"] == pytest.approx(0.5 * abs(0.3 - 0.62) + 0.5 * abs(1.0 - 0.7))


# ---------------------------------------------------------------------------------------------
# by_regime

# (regime, decision, pnl)
REG = [
    ("calm", A, 50.0),
    ("stress", A, -100.0),
    ("calm", A, 30.0),
    (None, A, 25.0),
    ("calm", A, -40.0),
    ("stress", R, -50.0),
    ("calm", R, 20.0),
    ("stress", R, 40.0),
    ("calm", R, -60.0),
    (None, E, 5.0),
    ("calm", A, 10.0),
    ("stress", R, -30.0),
]


def test_by_regime_by_hand() -> None:
    trades = _trades([p for *_, p in REG])
    joined = an.join(
        _decisions(trades, [d for _, d, _ in REG]), trades, pd.Series([r for r, *_ in REG])
    )
    out = an.by_regime(joined).set_index("regime")
    assert list(out.index) == ["(none)", "calm", "stress"]
    for regime, key in (("(none)", None), ("calm", "calm"), ("stress", "stress")):
        rows = [(d, p) for r, d, p in REG if r == key]
        app = [p for d, p in rows if d == A]
        rej = [p for d, p in rows if d == R]
        row = out.loc[regime]
        assert row["trades"] == len(rows)
        assert row["approval_rate"] == pytest.approx(len(app) / (len(app) + len(rej)))
        for name, part in (("approved", app), ("rejected", rej)):
            if part:
                assert row[f"{name}_win_rate"] == pytest.approx(np.mean(np.array(part) > 0))
                assert row[f"{name}_mean_pnl"] == pytest.approx(np.mean(part))
            else:
                assert np.isnan(row[f"{name}_win_rate"]) and np.isnan(row[f"{name}_mean_pnl"])
        p = np.array([0.7 if d == A else 0.3 for d, _ in rows if d is not None])
        y = np.array([p_ > 0 for d, p_ in rows if d is not None], float)
        assert row["brier"] == pytest.approx(np.mean((p - y) ** 2))
        # 12 weekly trades span three months: too few for any p-value at the default 12
        assert np.isnan(row["win_p"]) and np.isnan(row["pnl_p"]) and np.isnan(row["random_p"])
    assert out.loc["calm", "months"] == 3 and out.loc["stress", "months"] == 3
    assert out.loc["calm", "approval_rate"] == pytest.approx(4 / 6)
    assert out.loc["calm", "approved_win_rate"] == pytest.approx(3 / 4)
    assert out.loc["stress", "approved_mean_pnl"] == pytest.approx(-100.0)
    assert out.loc["stress", "rejected_win_rate"] == pytest.approx(1 / 3)
    assert out.loc["(none)", "trades"] == 2 and out.loc["(none)", "approval_rate"] == 1.0


def test_by_regime_tests_are_the_clustered_and_rotation_tests_of_the_regime() -> None:
    trades = _trades([p for *_, p in REG])
    regimes = pd.Series([r for r, *_ in REG])
    conf = [0.9 if i % 4 == 0 else 0.6 for i in range(len(REG))]
    one = _decisions(trades, [d for _, d, _ in REG], conf)
    # a second variant approving everything the first did plus the calm rejections
    other = [A if (d == R and r == "calm") else d for r, d, _ in REG]
    both = pd.concat([one, _decisions(trades, other, conf, variant="aggressive")])
    joined = an.join(one, trades, regimes)
    # calm: approvals in January and March, rejections in February only
    out = an.by_regime(
        joined, threshold=0.8, variants=an.join(both, trades, regimes), min_months=1
    ).set_index("regime")
    idx = [i for i, (r, *_) in enumerate(REG) if r == "calm"]
    calm = [(REG[i][1], REG[i][2], conf[i]) for i in idx]
    months = _months_of([START + pd.Timedelta(weeks=i) for i in idx])
    approve = np.array([d == A for d, _, _ in calm])
    pnl = np.array([p for _, p, _ in calm])
    assert out.loc["calm", "win_p"] == pytest.approx(_peer(pnl > 0, months, approve)[2])
    assert out.loc["calm", "pnl_p"] == pytest.approx(_peer(pnl, months, approve)[2])
    assert out.loc["calm", "random_p"] == pytest.approx(_rotations_by_hand(pnl, approve))
    # stress has one approval: no test
    assert np.isnan(out.loc["stress", "win_p"]) and np.isnan(out.loc["stress", "random_p"])
    kept = [p for d, p, c in calm if d == A and c >= 0.8]
    assert len(kept) == 2 and out.loc["calm", "kept_at_threshold"] == 2
    assert out.loc["calm", "uplift_at_threshold"] == pytest.approx(np.mean(kept) - pnl.mean())
    assert out.loc["calm", "approve_balanced"] == pytest.approx(4 / 6)
    assert out.loc["calm", "approve_aggressive"] == pytest.approx(1.0)
    assert out.loc["stress", "approve_aggressive"] == pytest.approx(1 / 4)
    # two months are needed on each side: calm's rejections span one, so no p-values
    two = an.by_regime(joined, min_months=2).set_index("regime")
    assert two.loc["calm", "months"] == 3
    assert np.isnan(two.loc["calm", ["win_p", "pnl_p", "random_p"]].to_numpy(float)).all()
    # no threshold (none recommended): no threshold columns
    assert "uplift_at_threshold" not in two.columns and "kept_at_threshold" not in two.columns


# ---------------------------------------------------------------------------------------------
# verdict


def _ctl(
    random_p: float, ci: tuple[float, float], *, diff: float | None = None, kept: int = 25
) -> an.Controls:
    return an.Controls(
        approval_rate=0.5,
        mean_approved=20.0,
        mean_all=10.0,
        random_p=random_p,
        random_reps=999,
        rule="highest iv_percentile",
        rule_in_sample_mean=15.0,
        oos_trades=50,
        oos_filter_mean=20.0,
        oos_rule_mean=18.0,
        oos_diff=(ci[0] + ci[1]) / 2 if diff is None else diff,
        oos_diff_ci=ci,
        oos_kept_filter=kept,
        oos_kept_rule=kept,
    )


def _t(
    pnl_diff: float,
    pnl_p: float,
    win_diff: float = 0.05,
    win_p: float = 0.3,
    months: tuple[int, int] = (40, 40),
) -> dict:
    return {
        "pnl_diff": pnl_diff,
        "pnl_p": pnl_p,
        "win_diff": win_diff,
        "win_p": win_p,
        "months_approved": months[0],
        "months_rejected": months[1],
    }


BETTER = _t(40.0, 0.01)
WORSE = _t(-40.0, 0.01)
UNCLEAR = _t(15.0, 0.3)
BOTH = _ctl(0.01, (1.0, 5.0))
RANDOM_ONLY = _ctl(0.01, (-1.0, 5.0))
NEITHER = _ctl(0.5, (-1.0, 5.0))
NAN = float("nan")
NO_OOS = _ctl(0.01, (NAN, NAN), diff=NAN, kept=0)  # no out-of-sample approval
SAME_AS_RULE = _ctl(0.01, (NAN, NAN), diff=0.0)  # exactly the rule's trades
NO_ROTATION = _ctl(NAN, (1.0, 5.0))


def test_controls_beaten_strictly() -> None:
    assert _ctl(0.049, (0.01, 1.0)).beats_random and _ctl(0.049, (0.01, 1.0)).beats_rule
    assert not _ctl(0.05, (0.0, 1.0)).beats_random  # p < 0.05, strictly
    assert not _ctl(0.05, (0.0, 1.0)).beats_rule  # interval above 0, strictly


@pytest.mark.parametrize(
    ("tests", "ctl", "code", "head"),
    [
        (BETTER, BOTH, "adds_value", "ADDS VALUE: its approved trades beat its rejected ones"),
        (BETTER, RANDOM_ONLY, "no_value_beyond_rule", "adds no value beyond a simple rule"),
        (BETTER, NEITHER, "no_value_shown", "but random filters of the same size and persist"),
        (BETTER, _ctl(0.5, (1.0, 5.0)), "no_value_shown", "random filters of the same size"),
        (WORSE, BOTH, "hurts", "HURTS: its approved trades did significantly worse"),
        (WORSE, NEITHER, "hurts", "HURTS"),
        (UNCLEAR, BOTH, "no_value_shown", "differ by no more than chance gives"),
        (_t(40.0, 0.05), BOTH, "no_value_shown", "no more than chance"),  # p < 0.05 strictly
        (_t(-40.0, 0.05), NEITHER, "no_value_shown", "no more than chance"),
        # the sign of the win-rate difference alone decides nothing
        (_t(-10.0, 0.6, -0.2, 0.001), NEITHER, "no_value_shown", "no more than chance"),
        (_t(-40.0, 0.01, 0.2, 0.001), BOTH, "hurts", "HURTS"),
        (_t(np.nan, np.nan, np.nan, np.nan), BOTH, "untested", "too few approved"),
        # too few months on a side: untested, whatever the p-value
        (_t(40.0, 0.001, months=(11, 40)), BOTH, "untested", "span 11 entry months"),
        (_t(-40.0, 0.001, months=(40, 3)), BOTH, "untested", "at least 12 on each side"),
        (_t(40.0, 0.001, months=(12, 12)), BOTH, "adds_value", "ADDS VALUE"),
        ({"pnl_diff": 40.0, "pnl_p": 0.001}, BOTH, "untested", "entry months"),  # unknown
        (_t(40.0, NAN), BOTH, "untested", "could not be tested"),
        # a control that did not run is untested, never failed
        (BETTER, NO_OOS, "untested", "rule did not run (the filter approves no trade out"),
        (BETTER, SAME_AS_RULE, "no_value_beyond_rule", "approves exactly the trades the best"),
        (BETTER, NO_ROTATION, "untested", "random-filter control did not run"),
        # ... unless the verdict does not rest on it
        (WORSE, NO_OOS, "hurts", "HURTS"),
        (UNCLEAR, NO_OOS, "no_value_shown", "no more than chance"),
        (_t(40.0, 0.01), _ctl(0.5, (NAN, NAN), diff=NAN, kept=0), "no_value_shown", "do as well"),
    ],
)
def test_verdict_codes_and_words(tests: dict, ctl: an.Controls, code: str, head: str) -> None:
    assert an.verdict_code(tests, ctl) == code
    assert code in an.VERDICT_CODES
    text = an.verdict(tests, ctl, HEURISTIC)
    assert text.startswith(HEURISTIC)
    assert head in text
    assert ("ADDS VALUE" in text) == (code == "adds_value")
    assert ("HURTS" in text) == (code == "hurts")
    assert ("untested" in text) == (code == "untested")
    assert "highest iv_percentile" in text
    assert (f"p = {ctl.random_p:.3f}" in text) == ctl.random_tested
    # a comparison that did not run is never worded as failed
    assert "nan" not in text.replace("nano", "")
    if not ctl.rule_tested:
        assert "beyond a simple rule" not in text and "95% CI nan" not in text
        assert (
            "the comparison with the best simple rule (highest iv_percentile) did not run" in text
        )


def test_verdict_words_the_numbers() -> None:
    text = an.verdict(_t(40.0, 0.012, 0.2, 0.03), BOTH, "gpt-test")
    assert text.startswith("gpt-test ADDS VALUE")
    assert "P&L +$40.00 per trade (p = 0.012)" in text
    assert "win rate +20.0 points (p = 0.030), month-clustered" in text
    assert "(rotations) p = 0.010" in text
    assert "+3.00 $/trade (95% CI +1.00 to +5.00)" in text
    worse = an.verdict(_t(-40.0, 0.01, -0.1, 0.2), NEITHER, "gpt-test")
    assert "P&L \u2212$40.00 per trade" in worse and "win rate \u221210.0 points" in worse
    none = an.verdict(_t(np.nan, np.nan, np.nan, np.nan), NEITHER, "gpt-test")
    assert "too few approved or rejected trades to compare" in none
    few = an.verdict(_t(-40.0, 0.001, -0.1, 0.001, months=(3, 2)), NEITHER, "gpt-test")
    assert few.startswith(
        "gpt-test: untested — its approved trades span 3 entry months and its rejected ones 2; "
        "a month-clustered comparison needs at least 12 on each side, so no verdict is given"
    )
    assert "P&L −$40.00 per trade, win rate −10.0 points, not tested" in few
    assert "p = 0.001" not in few  # a p-value from three clusters is not shown


def test_a_few_months_of_real_decisions_give_untested_not_a_verdict() -> None:
    """Three months of trades in which approvals did far better: CR1 with three clusters says
    p < 0.05 — the old rule called that a verdict. Now the code is ``untested`` until approvals
    and rejections each span ``MIN_MONTHS`` entry months; then the same kind of data decides."""
    pnl, dec, dates = _monthly(3)
    joined = _joined(pnl, dec, dates=dates)
    tests, ctl = an.approval_tests(joined), an.controls(joined)
    assert an.approval_tests(joined, min_months=3)["pnl_p"] < 0.05  # what CR1 alone would say
    assert an.verdict_code(tests, ctl) == "untested"
    assert "untested" in an.verdict(tests, ctl, "gpt-test")
    # the hand-made tests of a few months are untested too, whatever their p-value
    assert an.verdict_code(_t(-40.0, 0.001, months=(3, 3)), NEITHER) == "untested"
    pnl, dec, dates = _monthly(14)
    joined = _joined(pnl, dec, dates=dates)
    tests = an.approval_tests(joined)
    assert tests["pnl_p"] < 0.05 and tests["pnl_diff"] > 0
    assert an.verdict_code(tests, an.controls(joined)) != "untested"
    assert an.verdict_code(_t(-40.0, 0.001, months=(12, 12)), NEITHER) == "hurts"


def test_verdict_level_is_a_parameter() -> None:
    assert an.verdict_code(_t(40.0, 0.03), _ctl(0.03, (1.0, 5.0))) == "adds_value"
    assert an.verdict_code(_t(40.0, 0.03), _ctl(0.03, (1.0, 5.0)), alpha=0.01) == "no_value_shown"
    assert an.verdict_code(_t(40.0, 0.03, months=(5, 5)), BOTH, min_months=5) == "adds_value"
    assert an.verdict_code(_t(40.0, 0.03, months=(5, 5)), BOTH) == "untested"


def test_every_verdict_code_is_listed_and_worded() -> None:
    assert an.VERDICT_CODES == (
        "adds_value",
        "no_value_beyond_rule",
        "no_value_shown",
        "hurts",
        "untested",
    )


# ---------------------------------------------------------------------------------------------
# service.analyze


SERVICE_N = 80


def _service_world(
    variants: Sequence[str] = ("aggressive", "balanced", "conservative"),
    *,
    models: Sequence[str] = ("heuristic-v1",),
    provider: str | None = HEURISTIC,
    invert: bool = False,
) -> tuple[pd.DataFrame, service.TradeSet, np.ndarray]:
    """80 weekly trades (19 entry months) whose P&L rises with the IV percentile; each variant
    approves IV at or above its bar (``invert``: below it — a filter that keeps the worse
    trades, so no confidence threshold helps)."""
    rng = np.random.default_rng(12)
    n = SERVICE_N
    iv = rng.uniform(0, 100, n)
    pnl = np.round(rng.normal(0, 50, n) + (iv - 50), 2)
    regimes = pd.Series(list(rng.choice(["calm", "stress"], n)))
    trades = _trades(pnl, iv=iv)
    bars = {"aggressive": 30.0, "balanced": 50.0, "conservative": 70.0}
    frames = []
    for m in models:
        for v in variants:
            dec: list[Decision] = [A if (x >= bars.get(v, 50.0)) != invert else R for x in iv]
            if v == "conservative":
                dec[3] = E  # one failed call
            conf = list(np.round(0.5 + np.abs(iv - 50) / 110, 2))
            frames.append(_decisions(trades, dec, conf, variant=v, model=m, provider=provider))
    ts = service.TradeSet(trades, regimes, "test", "vix_trend")
    return pd.concat(frames, ignore_index=True), ts, iv


def test_analyze_picks_balanced_and_names_the_heuristic() -> None:
    dec, ts, iv = _service_world()
    fa = service.analyze(dec, ts)
    assert fa.primary == "balanced"
    assert fa.provider == HEURISTIC and not fa.is_llm and fa.model == "heuristic-v1"
    assert fa.tests["n_approved"] == int((iv >= 50).sum())  # the balanced variant's approvals
    assert fa.tests["n_rejected"] == int((iv < 50).sum())
    s = fa.summary()
    assert s["provider"] == HEURISTIC and s["is_llm"] is False
    assert s["prompt"] == "balanced"
    assert s["prompts"] == ["aggressive", "balanced", "conservative"]
    assert s["trades"] == SERVICE_N and s["errors"] == 1
    # the balanced prompt decided every trade; the conservative one failed once
    assert s["decided"] == SERVICE_N and s["months"] == 19 and s["min_months"] == an.MIN_MONTHS
    c = service.analyze(dec, ts, prompt="conservative").summary()
    assert c["trades"] == SERVICE_N and c["decided"] == SERVICE_N - 1
    assert s["verdict"].startswith(HEURISTIC)
    assert len(s["prompt_comparison"]) == 3
    head = fa.headline()
    assert "not an LLM" in head and "nothing here measures an LLM" in head
    assert "Prompt `balanced`" in head and fa.verdict in head and f"`{fa.verdict_code}`" in head


def test_summary_holds_what_the_findings_page_reads() -> None:
    dec, ts, iv = _service_world()
    fa = service.analyze(dec, ts)
    s = fa.summary()
    assert s["verdict_code"] == an.verdict_code(fa.tests, fa.controls)
    assert s["verdict_code"] in an.VERDICT_CODES and s["verdict_codes"] == list(an.VERDICT_CODES)
    t = s["tests"]
    for key in ("win_diff", "win_p", "pnl_diff", "pnl_p"):
        assert t[key] == fa.tests[key]
    assert t["method"] == an.DIFF_TEST
    c = s["controls"]
    assert c["random_p"] == fa.controls.random_p and c["rotations"] == SERVICE_N - 1
    assert c["beats_random"] == (c["random_p"] < 0.05)
    assert c["beats_rule"] == (c["oos_diff_ci"][0] > 0)
    # the balanced filter approves IV >= 50: out of sample (the second half by date) the rule
    # keeps exactly as many
    half = SERVICE_N // 2
    assert c["oos_kept_filter"] == int((iv[half:] >= 50).sum()) == c["oos_kept_rule"]
    # the filter (IV >= 50) is the rule "highest iv_percentile" at its count: the same trades
    assert c["best_rule"] == "highest iv_percentile" and c["same_as_rule"] is True
    assert c["rule_tested"] is True and c["rule_note"] == "" and c["beats_rule"] is False
    th = s["threshold"]
    assert fa.threshold.helps_in_sample is True
    assert th["recommended"] == fa.threshold.threshold and th["least_bad"] is None
    assert th["random_p"] == fa.threshold.random_p
    assert th["chosen_by"] == "per-trade uplift, at least 30 trades kept"
    for key in ("uplift", "uplift_ci_low", "uplift_ci_high", "kept"):
        assert key in th["out_of_sample"]
    assert set(s["methods"]) >= {"win_diff", "pnl_diff", "random_filter", "rule", "threshold"}
    assert s["trades"] == SERVICE_N and s["decided"] == SERVICE_N and s["months"] == 19
    assert t["months_approved"] >= 12 and t["months_rejected"] >= 12  # tested
    # the verdict is the rule applied to the summary's own numbers
    ctl = an.Controls(
        approval_rate=t["approval_rate"],
        mean_approved=0.0,
        mean_all=0.0,
        random_p=c["random_p"],
        random_reps=c["rotations"],
        rule=c["best_rule"],
        rule_in_sample_mean=0.0,
        oos_trades=0,
        oos_filter_mean=0.0,
        oos_rule_mean=0.0,
        oos_diff=c["oos_diff"],
        oos_diff_ci=tuple(c["oos_diff_ci"]),
    )
    assert s["verdict"] == an.verdict(t, ctl, s["provider"])
    assert s["verdict_code"] == an.verdict_code(t, ctl)
    # IV drives P&L here and the filter reads IV: approved beat rejected on P&L
    assert t["pnl_diff"] > 0 and t["pnl_p"] < 0.05


def test_analyze_primary_without_balanced_and_by_choice() -> None:
    dec, ts, _ = _service_world(("conservative", "aggressive"))
    assert service.analyze(dec, ts).primary == "aggressive"  # the first in name order
    assert service.analyze(dec, ts, prompt="conservative").primary == "conservative"
    with pytest.raises(ValueError, match="no decisions for prompt 'tight'"):
        service.analyze(dec, ts, prompt="tight")


def test_analyze_needs_one_model() -> None:
    dec, ts, _ = _service_world(("balanced",), models=("m1", "m2"))
    with pytest.raises(ValueError, match=r"models \['m1', 'm2'\]: choose one"):
        service.analyze(dec, ts)
    fa = service.analyze(dec, ts, model="m2")
    assert fa.model == "m2" and set(fa.joined["model"]) == {"m2"}
    with pytest.raises(ValueError, match="no decisions of model 'm3'"):
        service.analyze(dec, ts, model="m3")


def test_analyze_names_a_model_without_a_provider_label_as_an_llm() -> None:
    dec, ts, _ = _service_world(("balanced",), models=("gpt-test",), provider=None)
    fa = service.analyze(dec, ts)
    assert fa.provider == "gpt-test" and fa.is_llm
    assert fa.headline().startswith("Decisions by **gpt-test**.")
    assert "not an LLM" not in fa.headline()
    assert not service.analyze(dec, ts, provider="rule (not an LLM)").is_llm


def test_analyze_rejects_decisions_of_unknown_trades() -> None:
    dec, ts, _ = _service_world(("balanced",))
    dec.loc[0, "trade_id"] = "1999-01-01-ZZZ-1-2-1999-02-01"
    with pytest.raises(ValueError, match="1999-01-01-ZZZ-1-2-1999-02-01"):
        service.analyze(dec, ts)


def test_no_threshold_is_recommended_when_none_helps_in_sample() -> None:
    """Every threshold with a negative in-sample uplift: the least bad is reported, and the text
    says none is recommended (a filter that loses in sample is not a recommendation)."""
    oos = pd.Series(
        {"kept": 40, "win_rate": 0.5, "mean_pnl": -20.0, "uplift": -4.2,
         "uplift_ci_low": -70.0, "uplift_ci_high": 60.0}
    )  # fmt: skip
    losing = an.ThresholdChoice(0.0, pd.Series({"uplift": -28.7}), oos, 100, 100, random_p=0.5)
    assert losing.helps_in_sample is False
    assert losing.text().startswith(
        "No threshold improved on taking every trade in sample (the best per-trade uplift was "
        "−$28.70), so none is recommended; the least bad, threshold 0.0, chosen on the first 100"
    )
    helping = an.ThresholdChoice(0.6, pd.Series({"uplift": 12.0}), oos, 100, 100, random_p=0.5)
    assert helping.helps_in_sample is True
    assert helping.text().startswith("Threshold 0.6, chosen on the first 100 trades")
    unknown = an.ThresholdChoice(0.6, pd.Series({"uplift": float("nan")}), oos, 100, 100)
    assert unknown.helps_in_sample is None


def test_no_threshold_is_recommended_and_none_reported_by_regime_when_none_helps() -> None:
    """A filter that approves the worse trades: every threshold keeps trades below the average
    in sample. The summary recommends none (the least bad kept under ``least_bad``) and the
    by-regime table reports no uplift at it."""
    dec, ts, _ = _service_world(("balanced",), invert=True)
    fa = service.analyze(dec, ts)
    assert fa.threshold.helps_in_sample is False and fa.threshold.recommended is None
    th = fa.summary()["threshold"]
    assert th["recommended"] is None and th["least_bad"] == fa.threshold.threshold
    assert th["helps_in_sample"] is False
    assert "none is recommended" in th["text"]
    assert not {"kept_at_threshold", "uplift_at_threshold"} & set(fa.regimes.columns)
    helping = service.analyze(*_service_world(("balanced",))[:2])
    assert {"kept_at_threshold", "uplift_at_threshold"} <= set(helping.regimes.columns)


def test_the_page_texts_say_untested_for_a_test_that_did_not_run() -> None:
    dec, ts, _ = _service_world(("balanced",))
    fa = service.analyze(dec, ts)
    few = {**fa.tests, "pnl_p": NAN, "win_p": NAN, "months_approved": 4, "months_rejected": 3}
    text = replace(fa, tests=few).tests_text()
    assert "**Not tested**: the approved trades span 4 entry months and the rejected ones 3" in text
    assert "p = nan" not in text
    ctl = replace(fa.controls, oos_diff=NAN, oos_diff_ci=(NAN, NAN), oos_kept_filter=0)
    words = replace(fa, controls=ctl).controls_text()
    assert "the comparison did not run: the filter approves no trade out of sample" in words
    assert "Untested" in words and "does not beat the rule" not in words and "nan" not in words
    assert "hindsight" in fa.controls_text()  # the rule's cut-off is labelled honestly


def test_filter_analysis_has_no_default_verdict_code() -> None:
    """The code is computed with the verdict, never defaulted (a default could contradict the
    verdict's words)."""
    field = {f.name: f for f in fields(service.FilterAnalysis)}["verdict_code"]
    assert field.default is MISSING and field.default_factory is MISSING
    dec, ts, _ = _service_world(("balanced",))
    fa = service.analyze(dec, ts)
    assert fa.verdict_code == an.verdict_code(fa.tests, fa.controls)
    assert fa.verdict == an.verdict(fa.tests, fa.controls, fa.provider)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda j: an.recommend_threshold(j, min_kept=0),
            "min_kept must be an integer >= 1, got 0",
        ),
        (
            lambda j: an.recommend_threshold(j, min_kept=2.5),
            "min_kept must be an integer >= 1, got 2.5",
        ),
        (
            lambda j: an.recommend_threshold(j, min_kept=True),
            "min_kept must be an integer >= 1, got True",
        ),
        (lambda j: an.recommend_threshold(j, reps=-1), "reps must be an integer >= 0, got -1"),
        (lambda j: an.recommend_threshold(j, alpha=0.0), r"alpha must be in \(0, 1\), got 0.0"),
        (
            lambda j: an.recommend_threshold(j, [0.5, 1.5]),
            r"thresholds must be confidences in \[0, 1\], at least one, got \[0.5, 1.5\]",
        ),
        (
            lambda j: an.recommend_threshold(j, []),
            r"thresholds must be confidences in \[0, 1\], at least one, got \[\]",
        ),
        (lambda j: an.threshold_sweep(j, reps=-5), "reps must be an integer >= 0, got -5"),
        (lambda j: an.by_regime(j, min_months=0), "min_months must be an integer >= 1, got 0"),
        (
            lambda j: an.by_regime(j, min_months="12"),
            "min_months must be an integer >= 1, got '12'",
        ),
        (
            lambda j: an.by_regime(j, threshold=2.0),
            r"threshold must be a confidence in \[0, 1\] or None, got 2.0",
        ),
        (lambda j: an.by_regime(j, alpha=1.0), r"alpha must be in \(0, 1\), got 1.0"),
        (
            lambda j: an.approval_tests(j, min_months=-1),
            "min_months must be an integer >= 1, got -1",
        ),
        (lambda j: an.approval_tests(j, alpha=5), r"alpha must be in \(0, 1\), got 5"),
        (lambda j: an.approval_table(j, reps=-1), "reps must be an integer >= 0, got -1"),
        (lambda j: an.controls(j, alpha=-0.1), r"alpha must be in \(0, 1\), got -0.1"),
        (lambda j: an.calibration(j, bins=0), "bins must be an integer >= 1, got 0"),
        (lambda j: an.compare_prompts(j, alpha=2), r"alpha must be in \(0, 1\), got 2"),
        (
            lambda j: an.verdict_code(_t(40.0, 0.01), BOTH, min_months=0),
            "min_months must be an integer >= 1, got 0",
        ),
        (
            lambda j: an.verdict(_t(40.0, 0.01), BOTH, "x", alpha=1.5),
            r"alpha must be in \(0, 1\), got 1.5",
        ),
    ],
)
def test_bad_options_raise_one_line_naming_the_option_and_the_value(
    call: Callable[[pd.DataFrame], object], message: str
) -> None:
    joined = _threshold_frame(FIRST, SECOND)
    with pytest.raises(ValueError, match=f"^{message}$") as info:
        call(joined)
    assert "\n" not in str(info.value)
