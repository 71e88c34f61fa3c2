"""Does the filter add value? Decisions joined to the trades' real P&L, with uncertainty.

Every interval is 95% unless set otherwise. Trades that overlap in time share the market, so
bootstrap intervals resample whole **entry months** (a cluster bootstrap); the classical tests
(two-proportion z-test, Welch's t, McNemar) treat trades as independent and say so.

- ``approval_table`` / ``approval_tests``: approved vs rejected — count, win rate (Wilson), mean
  P&L (cluster bootstrap), the z-test on win rates and Welch's t on P&L.
- ``controls``: the filter's approved set against (a) a **random filter** approving as many
  trades (permutation null of the mean P&L) and (b) the **best simple rule** approving the same
  share (keep the highest or lowest IV percentile or VIX, or the best regimes), chosen on the
  first half of the trades by date and compared on the second half.
- ``threshold_sweep``: keep approved trades with confidence >= t, t = 0.0 ... 0.9; the
  ``recommend_threshold`` is chosen on the first half (largest total P&L, at least
  ``min_kept`` trades) and reported on the second.
- ``compare_prompts``: prompt variants on the same trades — McNemar on the decisions, paired
  bootstrap on the P&L each keeps.
- ``calibration``: the stated confidence as a probability of winning (confidence when
  approving, 1 - confidence when rejecting): reliability bins, Brier score against the base-rate
  forecast, expected calibration error.
- ``verdict``: the seed's line, worded from the numbers by one tested rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from research.attribution.signals import cluster_bootstrap_ci
from research.llm.context import trade_ids
from research.numbers import money, signed

__all__ = [
    "THRESHOLDS",
    "Controls",
    "approval_table",
    "approval_tests",
    "by_regime",
    "calibration",
    "compare_prompts",
    "controls",
    "join",
    "recommend_threshold",
    "threshold_sweep",
    "verdict",
]

THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
"""Confidence thresholds of the sweep: 0.0, 0.1, ... 0.9."""


def _months(dates: pd.Series) -> np.ndarray:
    d = pd.to_datetime(dates)
    return (d.dt.year * 12 + d.dt.month).to_numpy()


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
    p_lo, p_hi = cluster_bootstrap_ci(pnl, _months(part["date"]), reps, alpha, rng)
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
    joined: pd.DataFrame, *, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> pd.DataFrame:
    """Rows ``approved``, ``rejected``, ``all`` (the unfiltered trades) and ``error`` (no
    decision): n, win rate with its Wilson interval, mean P&L with a month-cluster bootstrap
    interval, total P&L. One model and prompt variant per call."""
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


def approval_tests(
    joined: pd.DataFrame, *, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> dict[str, float]:
    """Approved minus rejected: win-rate difference with the two-proportion z-test
    (statsmodels), mean P&L difference with Welch's t (scipy) and a month-cluster bootstrap
    interval. Both tests count trades as independent (overlapping trades are not)."""
    from scipy import stats
    from statsmodels.stats.proportion import proportions_ztest

    ok = _ok(joined)
    a, r = ok[ok["decision"] == "approve"], ok[ok["decision"] == "reject"]
    out: dict[str, float] = {
        "n_approved": len(a),
        "n_rejected": len(r),
        "approval_rate": len(a) / len(ok) if len(ok) else np.nan,
    }
    if len(a) < 2 or len(r) < 2:
        return out | {
            "win_diff": np.nan,
            "win_p": np.nan,
            "pnl_diff": np.nan,
            "pnl_p": np.nan,
            "pnl_diff_ci_low": np.nan,
            "pnl_diff_ci_high": np.nan,
        }
    counts = np.array([a["win"].sum(), r["win"].sum()])
    nobs = np.array([len(a), len(r)])
    _, win_p = proportions_ztest(counts, nobs)
    welch = stats.ttest_ind(a["pnl"], r["pnl"], equal_var=False)
    # cluster bootstrap of the difference: resample months, recompute both means
    rng = np.random.default_rng(seed)
    months = _months(ok["date"])
    ids, inv = np.unique(months, return_inverse=True)
    is_a = (ok["decision"] == "approve").to_numpy()
    pnl = ok["pnl"].to_numpy(float)
    k = len(ids)
    sum_a = np.bincount(inv, weights=pnl * is_a, minlength=k)
    cnt_a = np.bincount(inv, weights=is_a.astype(float), minlength=k)
    sum_r = np.bincount(inv, weights=pnl * ~is_a, minlength=k)
    cnt_r = np.bincount(inv, weights=(~is_a).astype(float), minlength=k)
    draws = rng.integers(0, k, size=(reps, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = sum_a[draws].sum(1) / cnt_a[draws].sum(1) - sum_r[draws].sum(1) / cnt_r[draws].sum(
            1
        )
    diffs = diffs[np.isfinite(diffs)]
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2]) if len(diffs) else (np.nan, np.nan)
    return out | {
        "win_diff": float(a["win"].mean() - r["win"].mean()),
        "win_p": float(win_p),
        "pnl_diff": float(a["pnl"].mean() - r["pnl"].mean()),
        "pnl_p": float(welch.pvalue),
        "pnl_diff_ci_low": float(lo),
        "pnl_diff_ci_high": float(hi),
    }


@dataclass(frozen=True)
class Controls:
    """The filter against the controls that could explain it."""

    approval_rate: float
    mean_approved: float
    mean_all: float
    random_p: float
    """Share of random filters (same number approved) whose approved mean P&L is at least the
    filter's: the permutation p-value, all trades."""
    random_reps: int
    rule: str
    """The best simple rule on the first half (in-sample)."""
    rule_in_sample_mean: float
    oos_trades: int
    oos_filter_mean: float
    oos_rule_mean: float
    oos_diff: float
    oos_diff_ci: tuple[float, float]
    """Filter minus rule, mean P&L of the approved trades on the second half; month-cluster
    bootstrap interval."""
    rules_tried: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def beats_random(self) -> bool:
        return bool(self.random_p < 0.05)

    @property
    def beats_rule(self) -> bool:
        return bool(self.oos_diff_ci[0] > 0)


def _rule_masks(
    frame: pd.DataFrame, k: int, regime_order: Sequence[object] | None
) -> dict[str, np.ndarray]:
    """Each simple rule's approved trades (``k`` of them) on ``frame``."""
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
        key = frame["regime"].map(lambda r: rank.get(r, len(rank))).to_numpy(float)
        order = np.argsort(key, kind="stable")
        best = np.zeros(n, bool)
        best[order[:k]] = True
        out["best regimes"] = best
    return out


def controls(
    joined: pd.DataFrame,
    *,
    reps: int = 5000,
    boot_reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Controls:
    """The filter's approved trades against a random filter and the best simple rule of the
    same approval rate (see the module docstring). One model and prompt variant per call;
    trades without a decision are left out."""
    ok = _ok(joined).sort_values(["date", "trade_id"]).reset_index(drop=True)
    if ok.empty or ok["decision"].eq("approve").sum() == 0:
        raise ValueError("controls need at least one approved trade")
    approve = (ok["decision"] == "approve").to_numpy()
    pnl = ok["pnl"].to_numpy(float)
    n, k = len(ok), int(approve.sum())
    rate = k / n
    rng = np.random.default_rng(seed)
    observed = pnl[approve].mean()
    perm = np.array([pnl[rng.permutation(n)[:k]].mean() for _ in range(reps)])
    random_p = (1 + np.sum(perm >= observed)) / (reps + 1)
    # the best simple rule, chosen on the first half by date
    half = n // 2
    ins, oos = ok.iloc[:half], ok.iloc[half:].reset_index(drop=True)
    k_in = max(1, round(rate * len(ins)))
    regime_means = ins.groupby("regime")["pnl"].mean().sort_values(ascending=False)
    rows = []
    masks_in = _rule_masks(ins, k_in, list(regime_means.index))
    for name, m in masks_in.items():
        rows.append({"rule": name, "in_sample_mean": float(ins["pnl"].to_numpy(float)[m].mean())})
    tried = pd.DataFrame(rows).sort_values("in_sample_mean", ascending=False, kind="stable")
    best = str(tried.iloc[0]["rule"])
    k_out = max(1, round(rate * len(oos)))
    rule_oos = _rule_masks(oos, k_out, list(regime_means.index))[best]
    llm_oos = (oos["decision"] == "approve").to_numpy()
    pnl_oos = oos["pnl"].to_numpy(float)
    diff = pnl_oos[llm_oos].mean() - pnl_oos[rule_oos].mean() if llm_oos.any() else np.nan
    oos_ids, inv = np.unique(_months(oos["date"]), return_inverse=True)
    n_months = len(oos_ids)

    def sums(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.bincount(inv, weights=pnl_oos * mask, minlength=n_months),
            np.bincount(inv, weights=mask.astype(float), minlength=n_months),
        )

    sl, cl = sums(llm_oos)
    sr, cr = sums(rule_oos)
    draws = np.random.default_rng(seed + 1).integers(0, n_months, size=(boot_reps, n_months))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = sl[draws].sum(1) / cl[draws].sum(1) - sr[draws].sum(1) / cr[draws].sum(1)
    d = d[np.isfinite(d)]
    ci = (
        tuple(float(x) for x in np.quantile(d, [alpha / 2, 1 - alpha / 2]))
        if len(d)
        else (np.nan, np.nan)
    )
    return Controls(
        approval_rate=rate,
        mean_approved=float(observed),
        mean_all=float(pnl.mean()),
        random_p=float(random_p),
        random_reps=reps,
        rule=best,
        rule_in_sample_mean=float(tried.iloc[0]["in_sample_mean"]),
        oos_trades=len(oos),
        oos_filter_mean=float(pnl_oos[llm_oos].mean()) if llm_oos.any() else np.nan,
        oos_rule_mean=float(pnl_oos[rule_oos].mean()),
        oos_diff=float(diff),
        oos_diff_ci=(ci[0], ci[1]),
        rules_tried=tried.reset_index(drop=True),
    )


def threshold_sweep(
    joined: pd.DataFrame,
    thresholds: Sequence[float] = THRESHOLDS,
    *,
    reps: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Per threshold t: the approved trades with confidence >= t — how many, win rate, mean and
    total P&L — and the uplift (their mean P&L minus the unfiltered mean) with a month-cluster
    bootstrap interval. Trades without a decision count as not kept."""
    rng = np.random.default_rng(seed)
    f = joined.reset_index(drop=True)
    pnl = f["pnl"].to_numpy(float)
    months = _months(f["date"])
    ids, inv = np.unique(months, return_inverse=True)
    k = len(ids)
    s_all = np.bincount(inv, weights=pnl, minlength=k)
    c_all = np.bincount(inv, minlength=k).astype(float)
    draws = rng.integers(0, k, size=(reps, k))
    base = s_all[draws].sum(1) / c_all[draws].sum(1)
    rows = []
    conf = f["confidence"].to_numpy(float)
    approve = (f["decision"] == "approve").to_numpy()
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
    in_sample: pd.Series
    out_of_sample: pd.Series
    in_trades: int
    out_trades: int

    def text(self) -> str:
        o = self.out_of_sample
        if pd.isna(o.get("uplift")):
            return (
                f"Threshold {self.threshold:.1f} (chosen on the first {self.in_trades} trades) "
                f"keeps no trade of the other {self.out_trades}."
            )
        sign = (
            "above"
            if o["uplift_ci_low"] > 0
            else "below"
            if o["uplift_ci_high"] < 0
            else "not distinguishable from"
        )
        return (
            f"Threshold {self.threshold:.1f}, chosen on the first {self.in_trades} trades by total "
            f"P&L, keeps {int(o['kept'])} of the other {self.out_trades} out of sample: win rate "
            f"{o['win_rate']:.1%}, mean P&L {money(o['mean_pnl'])}, uplift over taking them all "
            f"{money(o['uplift'], plus=True)} (95% CI {signed(o['uplift_ci_low'])} to "
            f"{signed(o['uplift_ci_high'])}): "
            f"{sign} the unfiltered trades."
        )


def recommend_threshold(
    joined: pd.DataFrame,
    thresholds: Sequence[float] = THRESHOLDS,
    *,
    min_kept: int = 30,
    seed: int = 0,
) -> ThresholdChoice:
    """Choose the threshold with the largest total P&L among those keeping at least
    ``min_kept`` trades on the first half of the trades by date (when none does, the one keeping
    the most); report the sweep's row for it on the second half."""
    f = joined.sort_values(["date", "trade_id"]).reset_index(drop=True)
    half = len(f) // 2
    ins, oos = f.iloc[:half], f.iloc[half:]
    sweep_in = threshold_sweep(ins, thresholds, seed=seed)
    eligible = sweep_in[sweep_in["kept"] >= min_kept]
    if len(eligible):
        best = eligible.sort_values(["total_pnl", "threshold"], ascending=[False, True]).iloc[0]
    else:  # no threshold keeps min_kept trades: the one that keeps the most (the lowest)
        best = sweep_in.sort_values(["kept", "threshold"], ascending=[False, True]).iloc[0]
    sweep_out = threshold_sweep(oos, [float(best["threshold"])], seed=seed)
    return ThresholdChoice(float(best["threshold"]), best, sweep_out.iloc[0], len(ins), len(oos))


def compare_prompts(
    joined: pd.DataFrame, *, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> pd.DataFrame:
    """Each pair of prompt variants on the trades both decided: how often they disagree,
    McNemar's test on approve/reject (exact binomial when fewer than 25 disagreements), and the
    paired difference in P&L kept per trade (P&L when approved, 0 when rejected; A minus B) with
    a month-cluster bootstrap interval. Also each variant's accuracy (approve = win)."""
    from statsmodels.stats.contingency_tables import mcnemar

    ok = _ok(joined)
    wide = ok.pivot_table(
        index="trade_id", columns="prompt_variant", values="decision", aggfunc="first"
    )
    meta = ok.drop_duplicates("trade_id").set_index("trade_id")[["pnl", "date"]]
    variants = list(wide.columns)
    rng = np.random.default_rng(seed)
    rows = []
    for i, a in enumerate(variants):
        for b in variants[i + 1 :]:
            both = wide[[a, b]].dropna()
            if both.empty:
                continue
            ya, yb = both[a] == "approve", both[b] == "approve"
            table = [
                [int((ya & yb).sum()), int((ya & ~yb).sum())],
                [int((~ya & yb).sum()), int((~ya & ~yb).sum())],
            ]
            disagree = table[0][1] + table[1][0]
            res = mcnemar(table, exact=disagree < 25)
            m = meta.loc[both.index]
            diff = m["pnl"].to_numpy(float) * (
                ya.to_numpy().astype(float) - yb.to_numpy().astype(float)
            )
            lo, hi = cluster_bootstrap_ci(diff, _months(m["date"]), reps, alpha, rng)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "trades": len(both),
                    "approve_a": float(ya.mean()),
                    "approve_b": float(yb.mean()),
                    "disagree": disagree,
                    "mcnemar_p": float(res.pvalue),
                    "pnl_kept_diff": float(diff.mean()),
                    "diff_ci_low": lo,
                    "diff_ci_high": hi,
                }
            )
    return pd.DataFrame(rows)


def calibration(joined: pd.DataFrame, bins: int = 10) -> tuple[pd.DataFrame, dict[str, float]]:
    """Reliability of the stated confidence as a probability of winning.

    Returns
    -------
    tuple
        The bins (``bin_low, bin_high, n, mean_forecast, win_rate, win_ci_low, win_ci_high``;
        equal-width on [0, 1]) and scores: ``brier``, ``brier_base`` (always forecasting the base
        win rate), ``brier_skill`` (1 - brier / brier_base; > 0 beats the base rate), ``ece``.
    """
    from statsmodels.stats.proportion import proportion_confint

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


def by_regime(
    joined: pd.DataFrame,
    *,
    threshold: float | None = None,
    variants: pd.DataFrame | None = None,
    reps: int = 1000,
    perm_reps: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Everything above, per regime at entry (in-sample; a regime with few trades is noise):
    approval rate; approved and rejected win rates and mean P&L; the z-test p of the win-rate
    difference; the random-filter permutation p (same number approved within the regime); with
    ``threshold``, the trades kept at it and their uplift over the regime's trades; the Brier
    skill and ECE; with ``variants`` (decisions of every prompt variant), each variant's
    approval rate.

    Parameters
    ----------
    joined
        One model and prompt variant (``join`` output).
    threshold
        The recommended confidence threshold (reported per regime, not re-chosen).
    variants
        ``join`` output holding every prompt variant of the same model.
    """
    from statsmodels.stats.proportion import proportions_ztest

    rng = np.random.default_rng(seed)
    rows = []
    f = joined.assign(regime=joined["regime"].fillna("(none)"))
    v = (
        variants.assign(regime=variants["regime"].fillna("(none)"))
        if variants is not None
        else None
    )
    for regime, part in f.groupby("regime", sort=True):
        tab = approval_table(part, reps=reps, seed=seed).set_index("group")
        _, scores = calibration(part)
        ok = _ok(part)
        approve = (ok["decision"] == "approve").to_numpy()
        pnl = ok["pnl"].to_numpy(float)
        k, n = int(approve.sum()), len(ok)
        win_p = random_p = np.nan
        if 0 < k < n:
            wins = np.array(
                [ok["win"].to_numpy()[approve].sum(), ok["win"].to_numpy()[~approve].sum()]
            )
            if 0 < wins.sum() < n:
                _, win_p = proportions_ztest(wins, np.array([k, n - k]))
            observed = pnl[approve].mean()
            perm = np.array([pnl[rng.permutation(n)[:k]].mean() for _ in range(perm_reps)])
            random_p = (1 + np.sum(perm >= observed)) / (perm_reps + 1)
        row: dict[str, object] = {
            "regime": regime,
            "trades": len(part),
            "approval_rate": k / n if n else np.nan,
            "approved_win_rate": tab.loc["approved", "win_rate"],
            "rejected_win_rate": tab.loc["rejected", "win_rate"],
            "win_p": float(win_p),
            "approved_mean_pnl": tab.loc["approved", "mean_pnl"],
            "rejected_mean_pnl": tab.loc["rejected", "mean_pnl"],
            "random_p": float(random_p),
        }
        if threshold is not None:
            keep = (part["decision"] == "approve").to_numpy() & (
                part["confidence"].to_numpy(float) >= threshold - 1e-12
            )
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


def verdict(tests: dict[str, float], ctl: Controls, provider: str) -> str:
    """The seed's verdict line, worded by one rule:

    - **adds value**: rejected trades win less (z-test p < 0.05, approved minus rejected win
      rate > 0), the approved trades beat the random filter (permutation p < 0.05) **and** the
      best simple rule out of sample (interval above 0);
    - both controls beaten but the win-rate difference not significant: **suggestive**;
    - the random filter beaten but not the rule: **no value beyond a rule**;
    - wins separated but the random filter not beaten: **no added value shown**;
    - otherwise **adds no value** (rejected trades as good or better) or **none shown**.
    The provider is named (the heuristic is not an LLM).
    """
    name = provider
    diff = tests.get("win_diff", np.nan)
    p = tests.get("win_p", np.nan)
    separates = bool(diff > 0 and p < 0.05)
    parts = (
        f"win rate of approved minus rejected trades {100 * diff:+.1f} points (z-test p = {p:.3f})"
        if diff == diff
        else "too few approved or rejected trades to compare"
    )
    ctl_text = (
        f"against a random filter of the same size p = {ctl.random_p:.3f}; out of sample, "
        f"minus the best simple rule ({ctl.rule}, chosen in-sample): {ctl.oos_diff:+.2f} "
        f"$/trade (95% CI {signed(ctl.oos_diff_ci[0])} to {signed(ctl.oos_diff_ci[1])})"
    )
    if separates and ctl.beats_random and ctl.beats_rule:
        head = (
            f"{name} ADDS VALUE: rejected trades have a lower win rate and the approved ones "
            "beat both controls"
        )
    elif ctl.beats_random and ctl.beats_rule:
        head = (
            f"{name}'s approved trades beat both controls on P&L, but the win-rate difference "
            "is not significant: suggestive, not shown"
        )
    elif ctl.beats_random:
        head = f"{name} beats a random filter but not the best simple rule: no value beyond a rule"
    elif separates:
        head = (
            f"{name} separates wins from losses, but its approved trades do not beat a random "
            "filter of the same size: no added value shown"
        )
    elif diff == diff and diff <= 0:
        head = f"{name} ADDS NO VALUE: rejected trades perform the same or better"
    else:
        head = f"{name} ADDS NO VALUE shown: the difference is within what chance gives"
    return f"{head} ({parts}; {ctl_text})"
