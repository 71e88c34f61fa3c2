"""Does the filter add value? Decisions joined to the trades' real P&L, with inference that holds
when trades overlap and decisions persist.

Every interval is 95% unless set otherwise. Trades overlap (30-day spreads entered daily) and any
real filter is persistent in time (it reads IV, VIX, the regime), so nothing here treats trades
as independent:

- **Differences** (approved minus rejected win rate and mean P&L; paired per-trade differences)
  come from statsmodels OLS with standard errors clustered by **entry month**
  (``cov_type="cluster"``: the CR1 small-sample correction G/(G-1)·(N-1)/(N-K) and a Student t
  with G-1 degrees of freedom, G the number of months): ``clustered_test``.
- **Random filters** of the same size keep the filter's persistence: the decision sequence,
  ordered by entry date, is **rotated** by every circular shift (``rotation_p``), which breaks
  its alignment with the P&L and keeps everything else (an i.i.d. permutation would treat a
  persistent filter as many independent coin flips and reject far too often).

What each part computes:

- ``approval_table`` / ``approval_tests``: approved vs rejected — count, win rate (Wilson), mean
  P&L (month-cluster bootstrap), and the month-clustered tests of the win-rate and P&L
  differences — only when the approved and the rejected trades each span at least
  ``MIN_MONTHS`` entry months (below that the differences are given without a p-value).
- ``controls``: the filter's approved set against (a) **random filters** approving as many trades,
  by rotation, and (b) **the best simple rule** (keep the highest or lowest IV percentile or VIX,
  or the best regimes), chosen on the first half of the trades by date at the filter's count and
  compared on the second half **at the filter's out-of-sample count** (month-clustered test of
  the paired difference). On the second half the rule picks its trades by ranking the **whole
  second half** at once (its highest or lowest IV percentiles or VIX values, or the best
  regimes' trades until the count is reached): a cut-off set with hindsight that no trader had
  on the entry date. It favours the rule, so the comparison is conservative for the filter's
  claim (``research.nulls.llm`` measures how conservative).
- ``threshold_sweep``: keep approved trades with confidence >= t, t = 0.0 ... 0.9;
  ``recommend_threshold`` chooses t on the first half by **per-trade uplift** (at least
  ``min_kept`` trades kept) and reports it on the second half, against random filters keeping
  the same number of trades there (rotation); it is recommended only when its in-sample uplift
  is above zero (``ThresholdChoice.recommended``; otherwise None, and the least bad is reported).
- ``compare_prompts``: prompt variants on the same trades — whether the trades on which they
  disagree favour one of them, on wins and on P&L (month-clustered tests of the paired
  difference). The approval-rate difference itself is reported, not tested (see the function).
- ``calibration``: the stated confidence as a probability of winning.
- ``by_regime``: the same clustered and rotation tests per regime (descriptive: unadjusted for
  the number of regimes, and left out where a regime's approved or rejected trades span fewer
  than ``MIN_MONTHS`` entry months).
- ``verdict_code`` / ``verdict``: the verdict by one tested rule (``VERDICT_CODES``); ``untested``
  when the approved or the rejected trades span fewer than ``MIN_MONTHS`` entry months, or a
  control the verdict needs did not run.

Every option is checked: a bad value raises a one-line ``ValueError`` naming the option and the
value.

``research.nulls.llm`` simulates each test the verdict rests on under a realistic null (a
persistent filter unrelated to P&L, on the sample's own trades) and checks its size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.clustered import P_FLOOR, ClusteredTest, cluster_bootstrap_ci, clustered_test
from research.llm.context import trade_ids
from research.numbers import money, signed

__all__ = [
    "ALPHA",
    "DIFF_TEST",
    "METHODS",
    "MIN_MONTHS",
    "P_FLOOR",
    "PAIRED_TEST",
    "ROTATION_TEST",
    "THRESHOLDS",
    "VERDICT_CODES",
    "ClusteredTest",
    "Controls",
    "ThresholdChoice",
    "approval_table",
    "approval_tests",
    "by_regime",
    "calibration",
    "clustered_test",
    "compare_prompts",
    "controls",
    "entry_months",
    "join",
    "paired_kept_test",
    "recommend_threshold",
    "rotation_p",
    "threshold_sweep",
    "verdict",
    "verdict_code",
]

ALPHA = 0.05
"""The level of every verdict word."""

MIN_MONTHS = 12
"""Fewest entry months a month-clustered comparison needs **on each side**: months with approved
trades and months with rejected trades (the clusters behind each group's mean). Below it CR1
with a t on months - 1 degrees of freedom rejects a true null far too often, so ``approval_tests``
gives no p-value, ``verdict_code`` says ``untested`` and ``by_regime`` leaves its p-values out."""

THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
"""Confidence thresholds of the sweep: 0.0, 0.1, ... 0.9."""

DIFF_TEST = (
    "OLS on an approve dummy with entry-month clustered errors (statsmodels, "
    "cov_type='cluster', CR1 correction, t with months-1 df)"
)
"""The test of the approved-minus-rejected differences (win rate, mean P&L)."""
ROTATION_TEST = (
    "rotation null: every circular shift of the decisions along the trades by entry date "
    "(same count, same persistence), one-sided"
)
"""The random-filter null (the filter's controls and the threshold out of sample)."""
PAIRED_TEST = (
    "month-clustered t-test of the paired per-trade difference (statsmodels OLS on a constant, "
    "cov_type='cluster', CR1 correction, t with months-1 df)"
)
"""The test of filter vs rule (out of sample, same count) and of prompt variants."""

METHODS: dict[str, str] = {
    "win_diff": DIFF_TEST,
    "pnl_diff": DIFF_TEST,
    "random_filter": ROTATION_TEST,
    "rule": "best simple rule chosen in-sample at the filter's count, compared out of sample at "
    "the filter's out-of-sample count (the rule's cut-off ranked over the whole second half: "
    "hindsight that favours the rule, conservative for the filter): " + PAIRED_TEST,
    "threshold": "chosen in-sample by per-trade uplift (at least min_kept kept); out of sample "
    "against random filters keeping as many trades: " + ROTATION_TEST,
    "prompts": "edge of the trades where two variants disagree (win and P&L relative to the "
    "average trade): " + PAIRED_TEST + "; approval-rate difference not tested",
    "by_regime": "per regime: " + DIFF_TEST + " and " + ROTATION_TEST + "; descriptive, "
    "unadjusted for the number of regimes, left out below MIN_MONTHS entry months on each side",
    "minimum": f"no verdict (untested) unless approved and rejected trades each span at least "
    f"{MIN_MONTHS} entry months",
    "intervals": "win rates: Wilson; group mean P&L and threshold uplift: month-cluster "
    "bootstrap; differences: month-clustered t",
}
"""Each test by name, for the summary's ``methods`` entry."""

VERDICT_CODES: tuple[str, ...] = (
    "adds_value",
    "no_value_beyond_rule",
    "no_value_shown",
    "hurts",
    "untested",
)
"""The verdict codes of ``verdict_code`` (see there for the rule)."""

FloatArray = npt.NDArray[np.float64]


def _check_alpha(alpha: object) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_thresholds(thresholds: Sequence[float]) -> None:
    values = list(thresholds)
    bad = [t for t in values if isinstance(t, bool) or not isinstance(t, Real) or not 0 <= t <= 1]
    if not values or bad:
        raise ValueError(f"thresholds must be confidences in [0, 1], at least one, got {values!r}")


# ---------------------------------------------------------------------------------------------
# the tests


def entry_months(dates: pd.Series | npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Calendar month of each date as an integer (year * 12 + month): the clusters."""
    d = pd.to_datetime(pd.Series(np.asarray(dates)))
    return np.asarray((d.dt.year * 12 + d.dt.month).to_numpy(), dtype=np.int64)


def rotation_p(values: npt.ArrayLike, mask: npt.ArrayLike) -> tuple[float, int]:
    """One-sided rotation p-value: the share of the ``n`` circular shifts of ``mask`` (the
    unshifted one included) whose selected ``values`` sum to at least the observed sum.

    ``values`` and ``mask`` are in entry-date order. Every rotation keeps the mask's count and
    its persistence and breaks its alignment with ``values``; all shifts are computed at once
    (FFT cross-correlation), so the p-value is exact for the rotation group, no sampling.

    Returns
    -------
    tuple
        ``(p, rotations)``: the p-value (1/n at the floor, never 0) and the number of
        non-trivial shifts (n - 1). NaN and 0 with fewer than two values, or when a value is NaN
        or infinite (a trade without a P&L has no place in any sum; nothing is dropped
        silently).

    Raises
    ------
    ValueError
        ``values`` and ``mask`` of different lengths.
    """
    v = np.asarray(values, float)
    m = np.asarray(mask, bool)
    n = len(v)
    if len(m) != n:
        raise ValueError(f"values and mask need the same length, got {n} and {len(m)}")
    if n < 2 or not np.isfinite(v).all():
        return float("nan"), 0
    observed = float(v[m].sum())
    sums = np.fft.irfft(np.fft.rfft(v) * np.conj(np.fft.rfft(m.astype(float))), n)
    sums[0] = observed
    tol = 1e-9 * (float(np.abs(v).sum()) + 1.0)  # FFT rounding; ties count against the filter
    return float(np.mean(sums >= observed - tol)), n - 1


def join(
    decisions: pd.DataFrame, trades: pd.DataFrame, regimes: pd.Series | None = None
) -> pd.DataFrame:
    """Decisions with their trade's entry date, ticker, IV percentile, VIX, regime, P&L and win.

    Parameters
    ----------
    decisions
        ``llm_decisions`` rows (any number of models and prompt variants).
    trades
        ``trades`` rows; ``regimes`` (aligned with them) fills the regime when given.

    Returns
    -------
    pandas.DataFrame
        The decisions' columns plus ``date, ticker, iv_percentile, vix, regime, pnl, win``.

    Raises
    ------
    ValueError
        Decisions whose trade id is not among the trades (names a few).
    """
    t = trades.reset_index(drop=True).copy()
    t["trade_id"] = trade_ids(t).to_numpy()
    if regimes is not None:
        t["regime"] = regimes.reset_index(drop=True).to_numpy()
    elif "regime" not in t.columns:
        t["regime"] = None
    unknown = sorted(set(decisions["trade_id"].astype(str)) - set(t["trade_id"]))
    if unknown:
        raise ValueError(
            f"decisions name {len(unknown)} trades that are not in the trades file, e.g. "
            f"{unknown[:3]} (trade ids are date-ticker-short-long-expiration)"
        )
    cols = ["trade_id", "date", "ticker", "iv_percentile", "vix", "regime", "pnl"]
    out = decisions.assign(trade_id=decisions["trade_id"].astype(str)).merge(
        t[cols], on="trade_id", how="left"
    )
    out["date"] = pd.to_datetime(out["date"])
    out["win"] = out["pnl"] > 0
    return out


def _ok(joined: pd.DataFrame) -> pd.DataFrame:
    return joined[joined["decision"].isin(["approve", "reject"])]


def _by_date(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["date", "trade_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# approved vs rejected


def _summary(
    part: pd.DataFrame, reps: int, rng: np.random.Generator, alpha: float
) -> dict[str, float]:
    from statsmodels.stats.proportion import proportion_confint

    n = len(part)
    if n == 0:
        return {
            "n": 0,
            "win_rate": np.nan,
            "win_ci_low": np.nan,
            "win_ci_high": np.nan,
            "mean_pnl": np.nan,
            "pnl_ci_low": np.nan,
            "pnl_ci_high": np.nan,
            "total_pnl": 0.0,
        }
    wins = int(part["win"].sum())
    lo, hi = proportion_confint(wins, n, alpha=alpha, method="wilson")
    pnl = part["pnl"].to_numpy(float)
    p_lo, p_hi = cluster_bootstrap_ci(pnl, entry_months(part["date"]), reps, alpha, rng)
    return {
        "n": n,
        "win_rate": wins / n,
        "win_ci_low": float(lo),
        "win_ci_high": float(hi),
        "mean_pnl": float(pnl.mean()),
        "pnl_ci_low": p_lo,
        "pnl_ci_high": p_hi,
        "total_pnl": float(pnl.sum()),
    }


def approval_table(
    joined: pd.DataFrame, *, reps: int = 2000, alpha: float = ALPHA, seed: int = 0
) -> pd.DataFrame:
    """Approved, rejected, all and failed decisions side by side. One model and prompt variant.

    Returns
    -------
    pandas.DataFrame
        Rows ``group`` = ``approved``, ``rejected``, ``all`` (the unfiltered trades) and
        ``error`` (no decision); columns ``n, win_rate, win_ci_low, win_ci_high`` (Wilson),
        ``mean_pnl, pnl_ci_low, pnl_ci_high`` (month-cluster bootstrap, ``reps`` draws) and
        ``total_pnl``.
    """
    _check_int("reps", reps, 0)
    _check_alpha(alpha)
    rng = np.random.default_rng(seed)
    rows = []
    for name, part in (
        ("approved", joined[joined["decision"] == "approve"]),
        ("rejected", joined[joined["decision"] == "reject"]),
        ("all", joined),
        ("error", joined[~joined["decision"].isin(["approve", "reject"])]),
    ):
        rows.append({"group": name, **_summary(part, reps, rng, alpha)})
    return pd.DataFrame(rows)


def _side_months(months: npt.NDArray[np.int64], approve: npt.NDArray[np.bool_]) -> tuple[int, int]:
    """Distinct entry months of the approved and of the rejected trades."""
    return len(np.unique(months[approve])), len(np.unique(months[~approve]))


def approval_tests(
    joined: pd.DataFrame, *, alpha: float = ALPHA, min_months: int = MIN_MONTHS
) -> dict[str, float]:
    """Approved minus rejected win rate and mean P&L, each tested with entry-month clustered
    errors (``clustered_test``: OLS of win / P&L on an approve dummy). One model and prompt
    variant; failed calls are left out.

    Tested only when the approved trades span at least ``min_months`` entry months and so do the
    rejected ones (``MIN_MONTHS``; at least two trades each): with fewer clusters on a side the
    clustered test rejects a true null far too often. Below that the differences are still
    given, without p-value or interval.

    Returns
    -------
    dict
        ``n_approved, n_rejected, approval_rate, months`` (the clusters: entry months of the
        decided trades), ``months_approved, months_rejected, min_months``, ``win_diff, win_p,
        win_diff_ci_low, win_diff_ci_high, pnl_diff, pnl_p, pnl_diff_ci_low, pnl_diff_ci_high``
        (differences NaN without an approved or a rejected trade; p-values and intervals NaN
        when not tested).

    Raises
    ------
    ValueError
        ``alpha`` not in (0, 1) or ``min_months`` not an integer >= 1.
    """
    _check_alpha(alpha)
    _check_int("min_months", min_months, 1)
    ok = _ok(joined)
    approve = (ok["decision"] == "approve").to_numpy()
    n_a, n_r = int(approve.sum()), int((~approve).sum())
    months = entry_months(ok["date"])
    m_a, m_r = _side_months(months, approve)
    out: dict[str, float] = {
        "n_approved": n_a,
        "n_rejected": n_r,
        "approval_rate": n_a / len(ok) if len(ok) else np.nan,
        "months": len(np.unique(months)),
        "months_approved": m_a,
        "months_rejected": m_r,
        "min_months": min_months,
    }
    win_y, pnl_y = ok["win"].to_numpy(float), ok["pnl"].to_numpy(float)
    if n_a >= 2 and n_r >= 2 and min(m_a, m_r) >= min_months:
        win = clustered_test(win_y, months, approve, alpha=alpha)
        pnl = clustered_test(pnl_y, months, approve, alpha=alpha)
    else:  # the differences without a test

        def diff(y: FloatArray) -> float:
            return float(y[approve].mean() - y[~approve].mean()) if n_a and n_r else math.nan

        clusters = len(np.unique(months))
        win = ClusteredTest.empty(clusters, diff(win_y))
        pnl = ClusteredTest.empty(clusters, diff(pnl_y))
    return out | {
        "win_diff": win.estimate,
        "win_p": win.p,
        "win_diff_ci_low": win.ci_low,
        "win_diff_ci_high": win.ci_high,
        "pnl_diff": pnl.estimate,
        "pnl_p": pnl.p,
        "pnl_diff_ci_low": pnl.ci_low,
        "pnl_diff_ci_high": pnl.ci_high,
    }


# ---------------------------------------------------------------------------------------------
# controls


@dataclass(frozen=True)
class Controls:
    """The filter against the controls that could explain it."""

    approval_rate: float
    """Share of the decided trades the filter approves."""
    mean_approved: float
    """Mean P&L of the approved trades."""
    mean_all: float
    """Mean P&L of all decided trades."""
    random_p: float
    """Rotation p-value (``rotation_p``): the share of the filter's rotations along the trades by
    date whose approved mean P&L reaches the filter's, all decided trades."""
    random_reps: int
    """Rotations behind ``random_p`` (every non-trivial shift)."""
    rule: str
    """The best simple rule on the first half (in-sample), at the filter's in-sample count."""
    rule_in_sample_mean: float
    """Mean P&L of the rule's trades on the first half."""
    oos_trades: int
    """Decided trades on the second half (out of sample)."""
    oos_filter_mean: float
    """Mean P&L of the filter's approved trades on the second half (NaN without any)."""
    oos_rule_mean: float
    """Mean P&L of the rule's trades on the second half."""
    oos_diff: float
    """``oos_filter_mean - oos_rule_mean`` (NaN when the filter approves nothing there)."""
    oos_diff_ci: tuple[float, float]
    """Filter minus rule, mean P&L of their kept trades on the second half (both keep
    ``oos_kept_filter`` trades); month-clustered interval of the paired difference."""
    oos_diff_p: float = float("nan")
    """Two-sided month-clustered p-value of ``oos_diff``."""
    oos_kept_filter: int = 0
    """Trades the filter approves on the second half."""
    oos_kept_rule: int = 0
    """Trades the rule keeps on the second half: the filter's count."""
    rules_tried: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    """Each simple rule and its in-sample mean P&L (``rule, in_sample_mean``), best first."""
    alpha: float = ALPHA
    """The level of ``beats_random``."""

    @property
    def beats_random(self) -> bool:
        """The rotation p-value is below ``alpha`` (False when it did not run)."""
        return bool(self.random_p < self.alpha)

    @property
    def random_tested(self) -> bool:
        """The random-filter control ran (its p-value is a number)."""
        return math.isfinite(self.random_p)

    @property
    def beats_rule(self) -> bool:
        """The out-of-sample interval of filter minus rule lies above 0 (False when the
        comparison did not run: see ``rule_tested``)."""
        return bool(self.oos_diff_ci[0] > 0)

    @property
    def same_as_rule(self) -> bool:
        """Out of sample the filter keeps exactly the rule's trades: the difference is exactly
        0 and there is nothing to test (no interval). The filter *is* the rule there."""
        return self.oos_diff == 0 and not all(math.isfinite(x) for x in self.oos_diff_ci)

    @property
    def rule_tested(self) -> bool:
        """The out-of-sample comparison with the rule ran: the paired difference has an
        interval, or the filter keeps exactly the rule's trades (``same_as_rule``). It does not
        run when the filter approves no trade out of sample (no difference at all)."""
        finite = all(math.isfinite(x) for x in self.oos_diff_ci)
        return math.isfinite(self.oos_diff) and (finite or self.same_as_rule)

    @property
    def rule_note(self) -> str:
        """Why the rule comparison did not run, in words ("" when it ran)."""
        if self.rule_tested:
            return ""
        if self.oos_kept_filter == 0 or not math.isfinite(self.oos_diff):
            return "the filter approves no trade out of sample"
        return "the out-of-sample difference has no variation to test"


def _rule_masks(
    frame: pd.DataFrame, k: int, regime_order: Sequence[object] | None
) -> dict[str, np.ndarray]:
    """Each simple rule's kept trades (exactly ``k`` of them) on ``frame``."""
    n = len(frame)
    out = {}
    for col in ("iv_percentile", "vix"):
        vals = frame[col].to_numpy(float)
        order = np.argsort(vals, kind="stable")
        low = np.zeros(n, bool)
        low[order[:k]] = True
        high = np.zeros(n, bool)
        high[order[::-1][:k]] = True
        out[f"lowest {col}"] = low
        out[f"highest {col}"] = high
    if regime_order is not None and frame["regime"].notna().any():
        rank = {r: i for i, r in enumerate(regime_order)}
        key = frame["regime"].map(rank).fillna(len(rank)).to_numpy(float)  # unranked: last
        order = np.argsort(key, kind="stable")
        best = np.zeros(n, bool)
        best[order[:k]] = True
        out["best regimes"] = best
    return out


def paired_kept_test(
    values: npt.ArrayLike,
    keep_a: npt.ArrayLike,
    keep_b: npt.ArrayLike,
    months: npt.ArrayLike,
    *,
    scale: float = 1.0,
    alpha: float = ALPHA,
) -> ClusteredTest:
    """Month-clustered test (``clustered_test``) of the paired per-trade difference
    ``scale * (value - mean value) * (keep_a - keep_b)`` (its mean; the standard error from the
    products with ``keep_a - keep_b`` centred too, which leaves the mean unchanged).

    With equal counts ``k`` and ``scale = n / k`` the estimate is the difference of the kept
    trades' mean value (filter vs rule at the same count); with ``scale = 1`` it is the value
    beyond the average trade that A keeps and B does not, per trade (prompt variants). Centring
    takes out how many trades each keeps — which persists with the market — and leaves which
    trades each keeps.

    Returns
    -------
    ClusteredTest
    """
    v = np.asarray(values, float)
    d = np.asarray(keep_a, bool).astype(float) - np.asarray(keep_b, bool).astype(float)
    # sum (v - mean v) d = sum (v - mean v)(d - mean d): the same estimate; centring d as well
    # keeps the count difference's month-to-month spread out of the standard error
    return clustered_test(scale * (v - v.mean()) * (d - d.mean()), months, alpha=alpha)


def controls(joined: pd.DataFrame, *, alpha: float = ALPHA) -> Controls:
    """The filter's approved trades against random filters and the best simple rule (see the
    module docstring). One model and prompt variant per call; trades without a decision are left
    out.

    - random filters: ``rotation_p`` of the approve sequence along the trades by date;
    - the rule: each simple rule keeps the filter's in-sample count on the first half (by date),
      the best by mean P&L is kept and applied to the second half at the filter's out-of-sample
      count (exactly as many trades as the filter approves there); the paired difference is
      tested with month-clustered errors.

    On the second half each rule keeps ``k`` trades ranked over **the whole second half** (the
    ``k`` highest or lowest IV percentiles or VIX values of the half; for regimes, the best
    in-sample regimes' trades in date order until ``k``): a cut-off set with hindsight, which no
    trader had on an entry date. It favours the rule, so the comparison is conservative for the
    filter's claim.

    Raises
    ------
    ValueError
        No approved trade, or ``alpha`` not in (0, 1).
    """
    _check_alpha(alpha)
    ok = _by_date(_ok(joined))
    if ok.empty or ok["decision"].eq("approve").sum() == 0:
        raise ValueError("controls need at least one approved trade")
    approve = (ok["decision"] == "approve").to_numpy()
    pnl = ok["pnl"].to_numpy(float)
    n, k = len(ok), int(approve.sum())
    random_p, rotations = rotation_p(pnl, approve)
    half = n // 2
    ins, oos = ok.iloc[:half], ok.iloc[half:].reset_index(drop=True)
    k_in = max(1, int(approve[:half].sum()))
    regime_means = ins.groupby("regime")["pnl"].mean().sort_values(ascending=False)
    rows = []
    for name, m in _rule_masks(ins, k_in, list(regime_means.index)).items():
        rows.append({"rule": name, "in_sample_mean": float(ins["pnl"].to_numpy(float)[m].mean())})
    tried = pd.DataFrame(rows).sort_values("in_sample_mean", ascending=False, kind="stable")
    best = str(tried.iloc[0]["rule"])
    llm_oos = (oos["decision"] == "approve").to_numpy()
    k_out = int(llm_oos.sum())
    pnl_oos = oos["pnl"].to_numpy(float)
    if k_out > 0:
        rule_oos = _rule_masks(oos, k_out, list(regime_means.index))[best]
        test = paired_kept_test(
            pnl_oos,
            llm_oos,
            rule_oos,
            entry_months(oos["date"]),
            scale=len(oos) / k_out,
            alpha=alpha,
        )
        filter_mean = float(pnl_oos[llm_oos].mean())
        rule_mean = float(pnl_oos[rule_oos].mean())
        diff = filter_mean - rule_mean
    else:
        rule_oos = np.zeros(len(oos), bool)
        test = ClusteredTest.empty()
        filter_mean = rule_mean = diff = np.nan
    return Controls(
        approval_rate=k / n,
        mean_approved=float(pnl[approve].mean()),
        mean_all=float(pnl.mean()),
        random_p=random_p,
        random_reps=rotations,
        rule=best,
        rule_in_sample_mean=float(tried.iloc[0]["in_sample_mean"]),
        oos_trades=len(oos),
        oos_filter_mean=filter_mean,
        oos_rule_mean=rule_mean,
        oos_diff=float(diff),
        oos_diff_ci=(test.ci_low, test.ci_high),
        oos_diff_p=test.p,
        oos_kept_filter=k_out,
        oos_kept_rule=int(rule_oos.sum()),
        rules_tried=tried.reset_index(drop=True),
        alpha=alpha,
    )


# ---------------------------------------------------------------------------------------------
# threshold


def _approved_confidence(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Approve flags and stated confidences, as arrays (read once per frame)."""
    approve = (frame["decision"] == "approve").to_numpy(dtype=bool, na_value=False)
    return approve, frame["confidence"].to_numpy(float)


def _kept(frame: pd.DataFrame, t: float) -> np.ndarray:
    approve, conf = _approved_confidence(frame)
    return approve & (conf >= t - 1e-12)


def threshold_sweep(
    joined: pd.DataFrame,
    thresholds: Sequence[float] = THRESHOLDS,
    *,
    reps: int = 2000,
    alpha: float = ALPHA,
    seed: int = 0,
) -> pd.DataFrame:
    """Per threshold t: the approved trades with confidence >= t. Trades without a decision
    count as not kept.

    Returns
    -------
    pandas.DataFrame
        ``threshold, kept, kept_share, win_rate, mean_pnl, total_pnl, uplift`` (mean P&L of the
        kept trades minus that of all trades) and ``uplift_ci_low, uplift_ci_high`` (month-cluster
        bootstrap, ``reps`` draws; NaN with ``reps`` = 0).

    Raises
    ------
    ValueError
        A threshold outside [0, 1] (or none), ``reps`` not an integer >= 0, ``alpha`` not in
        (0, 1).
    """
    _check_thresholds(thresholds)
    _check_int("reps", reps, 0)
    _check_alpha(alpha)
    rng = np.random.default_rng(seed)
    f = joined.reset_index(drop=True)
    pnl = f["pnl"].to_numpy(float)
    ids, inv = np.unique(entry_months(f["date"]), return_inverse=True)
    k = len(ids)
    s_all = np.bincount(inv, weights=pnl, minlength=k)
    c_all = np.bincount(inv, minlength=k).astype(float)
    draws = rng.integers(0, k, size=(reps, k))
    base = s_all[draws].sum(1) / c_all[draws].sum(1)
    rows = []
    approve, conf = _approved_confidence(f)
    for t in thresholds:
        keep = approve & (conf >= t - 1e-12)
        n = int(keep.sum())
        row: dict[str, float] = {"threshold": float(t), "kept": n, "kept_share": n / len(f)}
        if n == 0:
            rows.append(
                row
                | {
                    "win_rate": np.nan,
                    "mean_pnl": np.nan,
                    "total_pnl": 0.0,
                    "uplift": np.nan,
                    "uplift_ci_low": np.nan,
                    "uplift_ci_high": np.nan,
                }
            )
            continue
        s_k = np.bincount(inv, weights=pnl * keep, minlength=k)
        c_k = np.bincount(inv, weights=keep.astype(float), minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            up = s_k[draws].sum(1) / c_k[draws].sum(1) - base
        up = up[np.isfinite(up)]
        lo, hi = np.quantile(up, [alpha / 2, 1 - alpha / 2]) if len(up) else (np.nan, np.nan)
        rows.append(
            row
            | {
                "win_rate": float((pnl[keep] > 0).mean()),
                "mean_pnl": float(pnl[keep].mean()),
                "total_pnl": float(pnl[keep].sum()),
                "uplift": float(pnl[keep].mean() - pnl.mean()),
                "uplift_ci_low": float(lo),
                "uplift_ci_high": float(hi),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold chosen on the first half of the trades and its result on the second."""

    threshold: float
    """The threshold chosen in sample (recommended only when it helps: ``recommended``)."""
    in_sample: pd.Series
    """Its ``threshold_sweep`` row on the first half."""
    out_of_sample: pd.Series
    """Its ``threshold_sweep`` row on the second half."""
    in_trades: int
    """Trades of the first half."""
    out_trades: int
    """Trades of the second half."""
    random_p: float = float("nan")
    """Rotation p-value on the second half: the share of rotations of the kept set along the
    trades by date whose mean P&L reaches the kept trades' (random filters keeping as many)."""
    rotations: int = 0
    """Rotations behind ``random_p``."""
    min_kept: int = 30
    """Fewest trades a threshold had to keep in sample to be chosen."""
    alpha: float = ALPHA
    """The level of ``beats_random``."""

    @property
    def beats_random(self) -> bool:
        """Out of sample, the kept trades beat random filters keeping as many (rotation p below
        ``alpha``)."""
        return bool(self.random_p < self.alpha)

    @property
    def helps_in_sample(self) -> bool | None:
        """The chosen threshold's in-sample uplift is above zero (None when unknown: no
        threshold kept a trade in sample). False means no threshold improved on taking every
        trade, and none is recommended."""
        up = self.in_sample.get("uplift")
        return None if up is None or pd.isna(up) else bool(up > 0)

    @property
    def recommended(self) -> float | None:
        """The threshold, when it helps in sample; None otherwise (``threshold`` is then the
        least bad, reported but not recommended)."""
        return self.threshold if self.helps_in_sample is True else None

    def text(self) -> str:
        """The choice and its out-of-sample result in words."""
        o = self.out_of_sample
        if self.helps_in_sample is None:
            head = (
                f"No threshold kept a trade of the first {self.in_trades} (in sample), so none is "
                "recommended; "
            )
        elif self.helps_in_sample is False:
            up_in = float(self.in_sample.get("uplift", np.nan))
            head = (
                f"No threshold improved on taking every trade in sample (the best per-trade "
                f"uplift was {money(up_in, plus=True)}), so none is recommended; the least bad, "
            )
        else:
            head = ""
        if pd.isna(o.get("uplift")):
            return head + (
                f"{'t' if head else 'T'}hreshold {self.threshold:.1f} (chosen on the first "
                f"{self.in_trades} trades by per-trade uplift) keeps no trade of the other "
                f"{self.out_trades}."
            )
        beats = "beats" if self.beats_random else "does not beat"
        return head + (
            f"{'t' if head else 'T'}hreshold {self.threshold:.1f}, chosen on the first "
            f"{self.in_trades} trades by "
            f"per-trade uplift (at least {self.min_kept} kept), keeps {int(o['kept'])} of the "
            f"other {self.out_trades} out of sample: win rate {o['win_rate']:.1%}, mean P&L "
            f"{money(o['mean_pnl'])}, uplift over taking them all "
            f"{money(o['uplift'], plus=True)} (95% CI {signed(o['uplift_ci_low'])} to "
            f"{signed(o['uplift_ci_high'])}); against random filters keeping as many trades "
            f"(rotations) p = {self.random_p:.3f}: it {beats} them."
        )


def recommend_threshold(
    joined: pd.DataFrame,
    thresholds: Sequence[float] = THRESHOLDS,
    *,
    min_kept: int = 30,
    reps: int = 2000,
    alpha: float = ALPHA,
    seed: int = 0,
) -> ThresholdChoice:
    """Choose the threshold with the largest **per-trade uplift** (mean P&L of the kept trades
    minus that of all trades) among those keeping at least ``min_kept`` trades on the first half
    of the trades by date (ties: the lower threshold; when none keeps ``min_kept``, the one that
    keeps the most); report the sweep's row for it on the second half, and test it there against
    random filters keeping as many trades (``rotation_p`` along the second half by date).

    Returns
    -------
    ThresholdChoice
        ``recommended`` is None when the chosen threshold does not help in sample.

    Raises
    ------
    ValueError
        ``min_kept`` not an integer >= 1, ``reps`` not an integer >= 0, ``alpha`` not in
        (0, 1), or a threshold outside [0, 1] (or none).
    """
    _check_int("min_kept", min_kept, 1)
    _check_int("reps", reps, 0)
    _check_alpha(alpha)
    _check_thresholds(thresholds)
    f = _by_date(joined)
    half = len(f) // 2
    ins, oos = f.iloc[:half], f.iloc[half:].reset_index(drop=True)
    sweep_in = threshold_sweep(ins, thresholds, reps=reps, alpha=alpha, seed=seed)
    eligible = sweep_in[sweep_in["kept"] >= min_kept]
    if len(eligible):
        best = eligible.sort_values(["uplift", "threshold"], ascending=[False, True]).iloc[0]
    else:  # no threshold keeps min_kept trades: the one that keeps the most (the lowest)
        best = sweep_in.sort_values(["kept", "threshold"], ascending=[False, True]).iloc[0]
    t = float(best["threshold"])
    sweep_out = threshold_sweep(oos, [t], reps=reps, alpha=alpha, seed=seed)
    keep = _kept(oos, t)
    random_p, rotations = (
        rotation_p(oos["pnl"].to_numpy(float), keep) if keep.any() else (float("nan"), 0)
    )
    return ThresholdChoice(
        t, best, sweep_out.iloc[0], len(ins), len(oos), random_p, rotations, min_kept, alpha
    )


# ---------------------------------------------------------------------------------------------
# prompt variants


def compare_prompts(joined: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Each pair of prompt variants (A, B) on the trades both decided: do the trades on which
    they disagree favour one of them?

    The paired per-trade difference ``approve_A - approve_B`` is scored against each trade's
    outcome relative to the average trade (its win minus the base win rate; its P&L minus the
    mean P&L), and the mean is tested with entry-month clustered errors (``clustered_test``).
    Centring takes out how many trades each variant approves: an approval-rate difference
    persists with the market (months of one variant approving more), and no test on a few years
    of trades has the right size for it (McNemar and month clusters reject a true null far too
    often in simulation), so it is reported, not tested. ``pnl_kept_diff`` (P&L when approved,
    0 when rejected; A minus B) is the edge plus mean P&L times the approval-rate difference.

    Returns
    -------
    pandas.DataFrame
        ``a, b, trades, months, approve_a, approve_b, disagree`` (trades decided differently),
        ``accuracy_a, accuracy_b`` (approve = win), ``pnl_kept_diff`` ($/trade, descriptive),
        ``win_edge_diff, win_edge_p`` (winners beyond the base rate per trade, A minus B) and
        ``pnl_edge_diff, pnl_edge_ci_low, pnl_edge_ci_high, pnl_edge_p`` ($/trade beyond the
        average trade, A minus B).

    Raises
    ------
    ValueError
        ``alpha`` not in (0, 1).
    """
    _check_alpha(alpha)
    ok = _ok(joined)
    wide = ok.pivot_table(
        index="trade_id", columns="prompt_variant", values="decision", aggfunc="first"
    )
    meta = ok.drop_duplicates("trade_id").set_index("trade_id")[["pnl", "date"]]
    variants = list(wide.columns)
    rows = []
    for i, a in enumerate(variants):
        for b in variants[i + 1 :]:
            both = wide[[a, b]].dropna()
            if both.empty:
                continue
            ya = (both[a] == "approve").to_numpy()
            yb = (both[b] == "approve").to_numpy()
            m = meta.loc[both.index]
            pnl = m["pnl"].to_numpy(float)
            win = (pnl > 0).astype(float)
            months = entry_months(m["date"])
            d = ya.astype(float) - yb.astype(float)
            win_edge = paired_kept_test(win, ya, yb, months, alpha=alpha)
            pnl_edge = paired_kept_test(pnl, ya, yb, months, alpha=alpha)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "trades": len(both),
                    "months": len(np.unique(months)),
                    "approve_a": float(ya.mean()),
                    "approve_b": float(yb.mean()),
                    "disagree": int((ya != yb).sum()),
                    "accuracy_a": float((ya == (win > 0)).mean()),
                    "accuracy_b": float((yb == (win > 0)).mean()),
                    "pnl_kept_diff": float((pnl * d).mean()),
                    "win_edge_diff": win_edge.estimate,
                    "win_edge_p": win_edge.p,
                    "pnl_edge_diff": pnl_edge.estimate,
                    "pnl_edge_ci_low": pnl_edge.ci_low,
                    "pnl_edge_ci_high": pnl_edge.ci_high,
                    "pnl_edge_p": pnl_edge.p,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# calibration


def calibration(joined: pd.DataFrame, bins: int = 10) -> tuple[pd.DataFrame, dict[str, float]]:
    """Reliability of the stated confidence as a probability of winning.

    Returns
    -------
    tuple
        The bins (``bin_low, bin_high, n, mean_forecast, win_rate, win_ci_low, win_ci_high``;
        equal-width on [0, 1]) and scores: ``brier``, ``brier_base`` (always forecasting the base
        win rate), ``brier_skill`` (1 - brier / brier_base; > 0 beats the base rate), ``ece``.

    Raises
    ------
    ValueError
        ``bins`` not an integer >= 1.
    """
    from statsmodels.stats.proportion import proportion_confint

    _check_int("bins", bins, 1)
    ok = _ok(joined)
    conf = ok["confidence"].to_numpy(float)
    p = np.where(ok["decision"] == "approve", conf, 1 - conf)
    y = ok["win"].to_numpy(float)
    edges = np.round(np.linspace(0, 1, bins + 1), 10)
    # bin of each forecast, [k/bins, (k+1)/bins); rounding first so that 0.7 (or 1 - 0.8) on an
    # edge falls in the bin that starts there despite floating point
    idx = np.clip(np.floor(np.round(p * bins, 9)).astype(int), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        if n == 0:
            continue
        wins = int(y[m].sum())
        lo, hi = proportion_confint(wins, n, method="wilson")
        rows.append(
            {
                "bin_low": edges[b],
                "bin_high": edges[b + 1],
                "n": n,
                "mean_forecast": float(p[m].mean()),
                "win_rate": wins / n,
                "win_ci_low": float(lo),
                "win_ci_high": float(hi),
            }
        )
        ece += n / len(p) * abs(wins / n - p[m].mean())
    brier = float(np.mean((p - y) ** 2)) if len(p) else np.nan
    base = float(np.mean((y.mean() - y) ** 2)) if len(p) else np.nan
    return pd.DataFrame(rows), {
        "n": len(p),
        "brier": brier,
        "brier_base": base,
        "brier_skill": 1 - brier / base if base else np.nan,
        "ece": float(ece),
    }


# ---------------------------------------------------------------------------------------------
# by regime


def by_regime(
    joined: pd.DataFrame,
    *,
    threshold: float | None = None,
    variants: pd.DataFrame | None = None,
    min_months: int = MIN_MONTHS,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Everything above, per regime at entry (in-sample; a regime with few trades is noise).

    The p-values use the same methods as the whole sample — month-clustered win-rate and P&L
    differences, rotation of the decisions along the regime's trades by date — and are
    **descriptive**: unadjusted for the number of regimes, and NaN where the regime's approved
    or rejected trades span fewer than ``min_months`` entry months (too few clusters for the
    clustered test; the same rule as ``approval_tests``) or number fewer than two.

    Parameters
    ----------
    joined
        One model and prompt variant (``join`` output).
    threshold
        The recommended confidence threshold (reported per regime, not re-chosen); None (no
        threshold recommended) leaves the threshold columns out.
    variants
        ``join`` output holding every prompt variant of the same model.
    min_months
        Fewest entry months on each side (approved, rejected) for a regime's p-values.

    Returns
    -------
    pandas.DataFrame
        ``regime, trades, months, approval_rate, approved_win_rate, rejected_win_rate, win_p,
        approved_mean_pnl, rejected_mean_pnl, pnl_p, random_p``; with ``threshold``,
        ``kept_at_threshold, uplift_at_threshold``; ``brier_skill, ece, brier``; with
        ``variants``, ``approve_<variant>`` per variant.

    Raises
    ------
    ValueError
        ``min_months`` not an integer >= 1, ``alpha`` not in (0, 1), or ``threshold`` not in
        [0, 1].
    """
    _check_int("min_months", min_months, 1)
    _check_alpha(alpha)
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 <= threshold <= 1
    ):
        raise ValueError(f"threshold must be a confidence in [0, 1] or None, got {threshold!r}")
    rows = []
    f = joined.assign(regime=joined["regime"].fillna("(none)"))
    v = (
        variants.assign(regime=variants["regime"].fillna("(none)"))
        if variants is not None
        else None
    )
    for regime, part in f.groupby("regime", sort=True):
        _, scores = calibration(part)
        ok = _by_date(_ok(part))
        approve = (ok["decision"] == "approve").to_numpy()
        pnl = ok["pnl"].to_numpy(float)
        win = ok["win"].to_numpy(float)
        months = entry_months(ok["date"])
        n_months = len(np.unique(months))
        k, n = int(approve.sum()), len(ok)
        win_p = pnl_p = random_p = np.nan
        if k >= 2 and n - k >= 2 and min(_side_months(months, approve)) >= min_months:
            win_p = clustered_test(win, months, approve, alpha=alpha).p
            pnl_p = clustered_test(pnl, months, approve, alpha=alpha).p
            random_p = rotation_p(pnl, approve)[0]
        row: dict[str, object] = {
            "regime": regime,
            "trades": len(part),
            "months": n_months,
            "approval_rate": k / n if n else np.nan,
            "approved_win_rate": float(win[approve].mean()) if k else np.nan,
            "rejected_win_rate": float(win[~approve].mean()) if n - k else np.nan,
            "win_p": float(win_p),
            "approved_mean_pnl": float(pnl[approve].mean()) if k else np.nan,
            "rejected_mean_pnl": float(pnl[~approve].mean()) if n - k else np.nan,
            "pnl_p": float(pnl_p),
            "random_p": float(random_p),
        }
        if threshold is not None:
            keep = _kept(part, threshold)
            all_pnl = part["pnl"].to_numpy(float)
            row["kept_at_threshold"] = int(keep.sum())
            row["uplift_at_threshold"] = (
                float(all_pnl[keep].mean() - all_pnl.mean()) if keep.any() else np.nan
            )
        row["brier_skill"] = scores["brier_skill"]
        row["ece"] = scores["ece"]
        row["brier"] = scores["brier"]
        if v is not None:
            vp = _ok(v[v["regime"] == regime])
            for name, g in vp.groupby("prompt_variant", sort=True):
                row[f"approve_{name}"] = float((g["decision"] == "approve").mean())
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# verdict


def _num(tests: Mapping[str, float], key: str) -> float:
    value = tests.get(key, np.nan)
    return float(value) if value is not None else float("nan")


def _compared(tests: Mapping[str, float], min_months: int) -> bool:
    """The P&L difference was tested on enough months on each side (``approval_tests``)."""
    m_a, m_r = _num(tests, "months_approved"), _num(tests, "months_rejected")
    return (
        math.isfinite(_num(tests, "pnl_p"))
        and math.isfinite(_num(tests, "pnl_diff"))
        and math.isfinite(m_a)
        and math.isfinite(m_r)
        and min(m_a, m_r) >= min_months
    )


def verdict_code(
    tests: Mapping[str, float],
    ctl: Controls,
    *,
    alpha: float = ALPHA,
    min_months: int = MIN_MONTHS,
) -> str:
    """The verdict by one rule, from the P&L test and the controls (``VERDICT_CODES``):

    - ``untested``: the approved or the rejected trades span fewer than ``min_months`` entry
      months (``MIN_MONTHS``; ``tests`` without ``months_approved`` / ``months_rejected`` count
      as fewer), or the P&L difference has no p-value, or the verdict would rest on a control
      that did not run (random filters without a p-value; no rule comparison because the
      filter approves no trade out of sample);
    - ``adds_value``: approved trades beat rejected ones on mean P&L (month-clustered p <
      ``alpha``, difference > 0), **and** the filter beats random filters of the same size and
      persistence (rotation p < ``alpha``) **and** the best simple rule at the same count out of
      sample (interval above 0);
    - ``no_value_beyond_rule``: the first two hold, the rule comparison ran and the rule is not
      beaten — including a filter that keeps exactly the rule's trades out of sample
      (``Controls.same_as_rule``: it is that rule there, difference 0);
    - ``hurts``: approved trades did significantly worse than rejected ones on mean P&L
      (p < ``alpha``, difference < 0);
    - ``no_value_shown``: everything else (no significant P&L difference, or one that random
      filters of the same persistence reach too).

    The win-rate difference is reported next to it but does not decide: a filter can keep more
    winners and still lose more money.

    Raises
    ------
    ValueError
        ``alpha`` not in (0, 1) or ``min_months`` not an integer >= 1.
    """
    _check_alpha(alpha)
    _check_int("min_months", min_months, 1)
    if not _compared(tests, min_months):
        return "untested"
    diff, p = _num(tests, "pnl_diff"), _num(tests, "pnl_p")
    if p >= alpha or diff == 0:
        return "no_value_shown"
    if diff < 0:
        return "hurts"
    if not ctl.random_tested:
        return "untested"
    if not ctl.beats_random:
        return "no_value_shown"
    if not ctl.rule_tested:
        return "untested"
    return "adds_value" if ctl.beats_rule else "no_value_beyond_rule"


def verdict(
    tests: Mapping[str, float],
    ctl: Controls,
    provider: str,
    *,
    alpha: float = ALPHA,
    min_months: int = MIN_MONTHS,
) -> str:
    """The verdict line: the ``verdict_code`` worded, with every number it rests on and the test
    behind each p-value; an ``untested`` verdict says which test did not run and why. The
    provider is named (the heuristic is not an LLM).

    Raises
    ------
    ValueError
        As ``verdict_code``.
    """
    code = verdict_code(tests, ctl, alpha=alpha, min_months=min_months)
    name = provider
    pnl_diff, pnl_p = _num(tests, "pnl_diff"), _num(tests, "pnl_p")
    win_diff, win_p = _num(tests, "win_diff"), _num(tests, "win_p")
    m_a, m_r = _num(tests, "months_approved"), _num(tests, "months_rejected")
    compared = _compared(tests, min_months)
    if code == "adds_value":
        head = (
            f"{name} ADDS VALUE: its approved trades beat its rejected ones on P&L, beat random "
            "filters of the same size and persistence, and beat the best simple rule at the same "
            "count out of sample"
        )
    elif code == "no_value_beyond_rule" and ctl.same_as_rule:
        head = (
            f"{name} adds no value beyond a simple rule: its approved trades beat its rejected "
            "ones on P&L and beat random filters of the same size, but out of sample it approves "
            "exactly the trades the best simple rule keeps"
        )
    elif code == "no_value_beyond_rule":
        head = (
            f"{name} adds no value beyond a simple rule: its approved trades beat its rejected "
            "ones on P&L and beat random filters of the same size, but not the best simple rule "
            "at the same count out of sample"
        )
    elif code == "hurts":
        head = f"{name} HURTS: its approved trades did significantly worse than its rejected ones"
    elif code == "untested" and not math.isfinite(pnl_diff):
        head = f"{name}: untested — too few approved or rejected trades to compare"
    elif code == "untested" and not (math.isfinite(m_a) and math.isfinite(m_r)):
        head = (
            f"{name}: untested — the entry months of the approved and rejected trades are unknown"
        )
    elif code == "untested" and min(m_a, m_r) < min_months:
        head = (
            f"{name}: untested — its approved trades span {m_a:.0f} entry months and its "
            f"rejected ones {m_r:.0f}; a month-clustered comparison needs at least {min_months} "
            "on each side, so no verdict is given"
        )
    elif code == "untested" and not compared:
        head = f"{name}: untested — the P&L difference could not be tested (no variation left)"
    elif code == "untested" and not ctl.random_tested:
        head = (
            f"{name}: untested — its approved trades beat its rejected ones on P&L, but the "
            "random-filter control did not run"
        )
    elif code == "untested":
        head = (
            f"{name}: untested — its approved trades beat its rejected ones on P&L and beat random "
            "filters of the same size and persistence, but the comparison with the best simple "
            f"rule did not run ({ctl.rule_note})"
        )
    elif pnl_p < alpha and pnl_diff > 0:
        head = (
            f"{name}: no value shown — its approved trades beat its rejected ones on P&L, but "
            "random filters of the same size and persistence do as well"
        )
    else:
        head = (
            f"{name}: no value shown — approved and rejected trades' P&L differ by no more than "
            "chance gives"
        )
    if not math.isfinite(pnl_diff):
        numbers = "too few approved or rejected trades to compare"
    elif compared:
        numbers = (
            f"approved minus rejected: P&L {money(pnl_diff, plus=True)} per trade "
            f"(p = {pnl_p:.3f}), win rate {signed(100 * win_diff, 1)} points (p = {win_p:.3f}), "
            "month-clustered"
        )
    else:
        numbers = (
            f"approved minus rejected: P&L {money(pnl_diff, plus=True)} per trade, win rate "
            f"{signed(100 * win_diff, 1)} points, not tested"
        )
    random_text = (
        f"against random filters of the same size and persistence (rotations) p = "
        f"{ctl.random_p:.3f}"
        if ctl.random_tested
        else "the random-filter control did not run"
    )
    if ctl.same_as_rule:
        rule_text = (
            f"out of sample it keeps exactly the trades of the best simple rule ({ctl.rule}, "
            "chosen in-sample): difference 0, nothing to test"
        )
    elif ctl.rule_tested:
        rule_text = (
            f"out of sample at the same count, minus the best simple rule ({ctl.rule}, chosen "
            f"in-sample): {signed(ctl.oos_diff)} $/trade (95% CI {signed(ctl.oos_diff_ci[0])} "
            f"to {signed(ctl.oos_diff_ci[1])})"
        )
    else:
        rule_text = (
            f"the comparison with the best simple rule ({ctl.rule}) did not run: {ctl.rule_note}"
        )
    return f"{head} ({numbers}; {random_text}; {rule_text})"
