"""Which configuration worked in which regime (seed 001): experiments tagged with the regimes
their days fell in, the best configuration per regime with its uncertainty, and the learned
per-regime configs a bot loads (``research.attribution.selector``).

``tag_experiments`` adds the seed's columns to each experiment (its ``start``..``end`` window
on its ``symbol``; experiments without a symbol use the first symbol of the labels):

- ``dominant_regime``: the regime most of its trading days fell in;
- ``regime_breakdown``: JSON ``{regime: share of days}``;
- ``avg_vix``: the mean IV of the symbol over the window, in VIX points (the VIX itself for
  SPX where published);
- ``avg_hmm_trend``: the mean of the Markov model's trend dimension (+1 up, 0 flat, -1 down)
  over the window; ``avg_hmm_vol``: the mean filtered probability of its highest-variance state
  (both from ``research.regimes.markov``, filtered, so each day uses data up to that day).

``best_by_regime`` groups experiments by dominant regime and configuration, ranks the
configurations by the mean of a metric, and says whether the best beats the runner-up: a paired
bootstrap over the windows both were run on (experiments of two configurations on the same
window and symbol are paired). Rolling windows overlap, so experiments are not independent —
the intervals are indicative, and the table says so. In-sample: the experiments that chose the
config also score it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

__all__ = ["BEST_COLUMNS", "best_by_regime", "config_keys", "learned_configs", "tag_experiments"]

TREND_SCORE = {"up": 1.0, "flat": 0.0, "down": -1.0}


def config_keys(experiments: pd.DataFrame) -> pd.Series:
    """A configuration name per experiment: ``config_name`` when given, else the parameter
    values joined (``param_a=1|param_b=2``)."""
    if "config_name" in experiments.columns and experiments["config_name"].notna().all():
        return experiments["config_name"].astype(str)
    params = sorted(c for c in experiments.columns if c.startswith("param_"))
    return (
        experiments[params]
        .astype(str)
        .apply(lambda r: "|".join(f"{k}={v}" for k, v in r.items()), axis=1)
    )


def tag_experiments(
    experiments: pd.DataFrame,
    labels: pd.DataFrame,
    iv: pd.DataFrame | None = None,
    markov: pd.DataFrame | None = None,
    *,
    source: str = "experiments",
) -> pd.DataFrame:
    """Add ``dominant_regime, regime_breakdown, avg_vix, avg_hmm_trend, avg_hmm_vol`` and
    ``regime_days`` (module docstring).

    Parameters
    ----------
    labels
        A ``classify`` table (``date, symbol, regime``) covering the experiments' windows.
    iv
        ``date, symbol, iv`` (annualised) for ``avg_vix`` (NaN without).
    markov
        A ``classify("markov", …)`` table for the ``avg_hmm_*`` columns (NaN without).

    Raises
    ------
    ValueError
        Experiments whose window has no labelled day of their symbol (outside the market
        data, or an unknown symbol), naming them.

    Returns
    -------
    pandas.DataFrame
        ``experiments`` with the columns added (or recomputed, when already there), same row
        order.
    """
    default_symbol = str(sorted(set(labels["symbol"]))[0])
    sym = (
        experiments["symbol"].fillna(default_symbol)
        if "symbol" in experiments.columns
        else pd.Series(default_symbol, index=experiments.index)
    )
    lab = labels.dropna(subset=["regime"])
    by_symbol = {s: g.sort_values("date") for s, g in lab.groupby("symbol")}
    iv_by = (
        {s: g.set_index("date")["iv"] for s, g in iv.groupby("symbol")} if iv is not None else {}
    )
    mk_by = {}
    if markov is not None:
        prob_cols = sorted(c for c in markov.columns if c.startswith("prob_state"))
        top = prob_cols[-1] if prob_cols else None
        for s, g in markov.groupby("symbol"):
            mk_by[s] = pd.DataFrame(
                {
                    "trend": g["trend_dim"].map(TREND_SCORE).to_numpy(float),
                    "vol": g[top].to_numpy(float) if top else np.nan,
                },
                index=g["date"].to_numpy(),
            )
    n = len(experiments)
    starts = pd.to_datetime(experiments["start"]).to_numpy()
    ends = pd.to_datetime(experiments["end"]).to_numpy()
    sym_arr = sym.astype(str).to_numpy()
    dominant = np.full(n, None, dtype=object)
    breakdown = np.full(n, None, dtype=object)
    n_days = np.zeros(n, dtype=np.int64)
    avg_vix = np.full(n, np.nan)
    avg_trend = np.full(n, np.nan)
    avg_vol = np.full(n, np.nan)
    for s in np.unique(sym_arr):
        rows_s = np.flatnonzero(sym_arr == s)
        days = by_symbol.get(s)
        if days is None:
            continue
        dates = days["date"].to_numpy()
        lo = np.searchsorted(dates, starts[rows_s], side="left")
        hi = np.maximum(np.searchsorted(dates, ends[rows_s], side="right"), lo)
        n_days[rows_s] = hi - lo
        dominant[rows_s], breakdown[rows_s] = _window_regimes(
            days["regime"].astype(str).to_numpy(), lo, hi
        )
        if s in iv_by:
            avg_vix[rows_s] = _window_means(iv_by[s], starts[rows_s], ends[rows_s]) * 100
        if s in mk_by:
            m = mk_by[s]
            avg_trend[rows_s] = _window_means(m["trend"], starts[rows_s], ends[rows_s])
            avg_vol[rows_s] = _window_means(m["vol"], starts[rows_s], ends[rows_s])
    empty = [
        f"{eid} ({s} {pd.Timestamp(a).date()}..{pd.Timestamp(b).date()})"
        for eid, s, a, b, d in zip(
            experiments["experiment_id"], sym_arr, starts, ends, n_days, strict=True
        )
        if d == 0
    ]
    if empty:
        raise ValueError(
            f"{source}: {len(empty)} experiments have no labelled market day in their window "
            f"(outside the market data or an unknown symbol), e.g. {'; '.join(empty[:3])}"
        )
    added = pd.DataFrame(
        {
            "dominant_regime": dominant,
            "regime_breakdown": breakdown,
            "regime_days": n_days,
            "avg_vix": avg_vix,
            "avg_hmm_trend": avg_trend,
            "avg_hmm_vol": avg_vol,
        },
        index=experiments.index,
    )
    # columns from an earlier tagging (e.g. read back from the database) are recomputed
    kept = experiments.drop(columns=[c for c in added.columns if c in experiments.columns])
    return pd.concat([kept, added], axis=1)


def _window_regimes(
    regimes: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per window ``[lo, hi)`` of the day-ordered ``regimes``: the regime most days carried (a
    tie goes to the regime seen first in the window) and the JSON ``{regime: share}`` (4
    decimals, sorted keys); None for an empty window."""
    names, codes = np.unique(regimes, return_inverse=True)
    k, m = len(names), len(regimes)
    onehot = np.zeros((m, k), dtype=np.int64)
    onehot[np.arange(m), codes] = 1
    cum = np.vstack([np.zeros((1, k), dtype=np.int64), onehot.cumsum(axis=0)])
    counts = cum[hi] - cum[lo]
    # first position of each regime at or after i: for the tie rule
    nxt = np.full((m + 1, k), m, dtype=np.int64)
    for i in range(m - 1, -1, -1):
        nxt[i] = nxt[i + 1]
        nxt[i, codes[i]] = i
    first = nxt[lo]
    best = counts.max(axis=1, keepdims=True)
    tie_key = np.where(counts == best, first, m + 1)
    top = tie_key.argmin(axis=1)
    total = (hi - lo).astype(float)
    dominant = np.full(len(lo), None, dtype=object)
    breakdown = np.full(len(lo), None, dtype=object)
    for j in np.flatnonzero(total > 0):
        row = counts[j]
        dominant[j] = str(names[top[j]])
        breakdown[j] = json.dumps(
            {str(names[c]): round(float(row[c] / total[j]), 4) for c in np.flatnonzero(row)},
            sort_keys=True,
        )
    return dominant, breakdown


def _window_means(values: pd.Series, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (date-indexed) over each inclusive ``[start, end]``, NaNs skipped
    (NaN when the window holds no value)."""
    v = values.sort_index()
    dates = v.index.to_numpy()
    x = v.to_numpy(dtype=float)
    ok = ~np.isnan(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(ok)])
    lo = np.searchsorted(dates, starts, side="left")
    hi = np.maximum(np.searchsorted(dates, ends, side="right"), lo)
    cnt = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (csum[hi] - csum[lo]) / np.maximum(cnt, 1), np.nan)


BEST_COLUMNS = (
    "regime",
    "best_config",
    "experiments",
    "metric_mean",
    "ci_low",
    "ci_high",
    "pnl_pct",
    "win_rate",
    "runner_up",
    "diff_vs_runner_up",
    "p_vs_runner_up",
    "beats_runner_up",
    "key_settings",
)


def _bootstrap_mean_ci(
    values: np.ndarray, reps: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    if len(values) < 2:
        return (np.nan, np.nan)
    means = values[rng.integers(0, len(values), size=(reps, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def best_by_regime(
    tagged: pd.DataFrame,
    *,
    metric: str = "pnl_pct",
    min_experiments: int = 5,
    alpha: float = 0.05,
    reps: int = 5000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per dominant regime, the configuration with the highest mean ``metric`` among those with
    at least ``min_experiments`` experiments in it, with a bootstrap interval, the seed's P&L
    and win rate, and the test against the runner-up (paired bootstrap over shared windows,
    one-sided p of "best > runner-up"; ``beats_runner_up`` at ``alpha``). ``key_settings``
    lists the parameters that differ between configurations.

    Raises
    ------
    ValueError
        An unknown metric, experiments with zero trades, or no regime with two qualifying
        configurations.

    Returns
    -------
    pandas.DataFrame
        ``BEST_COLUMNS``; regimes where fewer than two configurations qualify are left out
        (listed in ``.attrs["skipped"]``).
    """
    if metric not in tagged.columns:
        raise ValueError(f"unknown metric {metric!r}; columns: {sorted(tagged.columns)}")
    zero = tagged["trades"] == 0
    if zero.any():
        ids = tagged.loc[zero, "experiment_id"].head(3).tolist()
        raise ValueError(
            f"{int(zero.sum())} experiments have zero trades (e.g. {ids}): their metrics are "
            "not results; drop them or rerun"
        )
    rng = np.random.default_rng(seed)
    frame = tagged.assign(
        _config=config_keys(tagged).to_numpy(),
        _window=tagged["start"].astype(str)
        + ".."
        + tagged["end"].astype(str)
        + "|"
        + (tagged["symbol"].astype(str) if "symbol" in tagged.columns else ""),
    )
    params = sorted(c for c in tagged.columns if c.startswith("param_"))
    # key settings: the parameters that differ between configurations
    params = [c for c in params if tagged[c].nunique(dropna=False) > 1] or params
    rows, skipped = [], {}
    for regime, part in frame.groupby("dominant_regime", sort=True):
        counts = part["_config"].value_counts()
        ok = counts.index[counts >= min_experiments]
        if len(ok) < 2:
            skipped[str(regime)] = f"{len(ok)} configurations with >= {min_experiments} experiments"
            continue
        means = part.loc[part["_config"].isin(ok)].groupby("_config")[metric].mean()
        ranked = means.sort_values(ascending=False)
        best, second = ranked.index[0], ranked.index[1]
        mine = part.loc[part["_config"] == best]
        lo, hi = _bootstrap_mean_ci(mine[metric].to_numpy(float), reps, alpha, rng)
        a = mine.set_index("_window")[metric]
        b = part.loc[part["_config"] == second].set_index("_window")[metric]
        shared = a.index.intersection(b.index)
        diff = (a.loc[shared] - b.loc[shared]).to_numpy(float)
        if len(diff) >= 2:
            boots = diff[rng.integers(0, len(diff), size=(reps, len(diff)))].mean(axis=1)
            p = float((np.sum(boots <= 0) + 1) / (reps + 1))
        else:
            p = np.nan
        first = mine.iloc[0]
        rows.append(
            {
                "regime": str(regime),
                "best_config": str(best),
                "experiments": len(mine),
                "metric_mean": float(ranked.iloc[0]),
                "ci_low": lo,
                "ci_high": hi,
                "pnl_pct": float(mine["pnl_pct"].mean()),
                "win_rate": float(mine["win_rate"].mean()),
                "runner_up": str(second),
                "diff_vs_runner_up": float(diff.mean()) if len(diff) else np.nan,
                "p_vs_runner_up": p,
                "beats_runner_up": bool(p < alpha) if not np.isnan(p) else False,
                "key_settings": ", ".join(f"{c[6:]}={first[c]:g}" for c in params)
                if all(isinstance(first[c], int | float) for c in params)
                else ", ".join(f"{c[6:]}={first[c]}" for c in params),
            }
        )
    if not rows:
        raise ValueError(
            "no regime has two configurations with enough experiments to compare: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    out = pd.DataFrame(rows)[list(BEST_COLUMNS)]
    out.attrs["skipped"] = skipped
    return out


def learned_configs(
    tagged: pd.DataFrame,
    best: pd.DataFrame,
    *,
    default: str | None = None,
    metric: str = "pnl_pct",
    model: str = "",
) -> dict[str, object]:
    """The learned per-regime configuration file (JSON-ready): for each regime of ``best``,
    the parameters of its best configuration (``param_`` prefix dropped), the experiments it
    came from and the evidence (``loses_money``: its mean ``metric`` is below zero, so even the
    best of that regime lost — a bot may prefer to stand aside); and the ``default``
    configuration (the best overall by mean ``metric`` unless named) for regimes without a
    learned one.

    Returns
    -------
    dict
        ``{"regime_model", "metric", "sample", "regimes": {regime: {...}}, "default": {...}}``.
    """
    keys = config_keys(tagged)
    params = sorted(c for c in tagged.columns if c.startswith("param_"))

    def params_of(config: str) -> dict[str, object]:
        row = tagged.loc[keys == config].iloc[0]
        return {c[6:]: (row[c].item() if hasattr(row[c], "item") else row[c]) for c in params}

    overall = tagged.groupby(keys)[metric].mean().sort_values(ascending=False)
    default_name = default if default is not None else str(overall.index[0])
    regimes = {}
    for _, r in best.iterrows():
        sources = tagged.loc[
            (keys == r["best_config"]) & (tagged["dominant_regime"] == r["regime"]),
            "experiment_id",
        ].tolist()
        regimes[r["regime"]] = {
            "config": r["best_config"],
            "params": params_of(r["best_config"]),
            "source_experiments": sources,
            "evidence": {
                "metric": metric,
                "mean": r["metric_mean"],
                "ci": [r["ci_low"], r["ci_high"]],
                "runner_up": r["runner_up"],
                "p_vs_runner_up": r["p_vs_runner_up"],
                "beats_runner_up": bool(r["beats_runner_up"]),
                # the best of a regime can still lose money: the least bad, not one to trade
                "loses_money": bool(r["metric_mean"] < 0),
            },
        }
    return {
        "regime_model": model,
        "metric": metric,
        "sample": "in-sample: the experiments that chose each config also score it",
        "regimes": regimes,
        "default": {"config": default_name, "params": params_of(default_name)},
    }
