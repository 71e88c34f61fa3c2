"""Which agents work in which regime (seed 000): signal records joined to regimes and to the
returns that followed them.

``prepare`` checks the records against the bars (every symbol known, every ``asof`` a trading
day of its symbol), fills a null ``forward_return_20d`` from the bars, adds the forward returns
at every horizon of ``HORIZONS`` (for decay), and, where a record carries no regime, the label
of a regime model at ``asof`` (computed from data up to ``asof`` only). The tables then read:

- ``heatmap``: regime x period (month or week) mean forward return, hit rate and count — for all
  agents, or per agent or cluster — the seed's regime effectiveness matrix;
- ``regime_table``: per agent (or cluster) x regime, the mean forward return with a
  cluster-bootstrap interval and the hit rate with a Wilson interval — and, as the control a
  sceptic asks for, the same regime's base rate (every day of the symbol in that regime, signal
  or not) and the signals' mean excess over it with its interval: an agent that "works" in a
  bull regime may only be long a rising market;
- ``decay``: the same per horizon (1, 5, 10, 20 days).

**Uncertainty.** Forward returns of signals a few days apart overlap (a 20-day window), so
records are not independent. Mean-return intervals resample whole calendar months of
signals (a cluster bootstrap), which keeps the overlap inside a month together; hit-rate Wilson
intervals count records as independent and are therefore too narrow — the table says so. All
figures are in-sample descriptions of what happened after the signals, not forecasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "HORIZONS",
    "PreparedSignals",
    "decay",
    "findings",
    "forward_returns",
    "heatmap",
    "prepare",
    "regime_table",
]

HORIZONS: tuple[int, ...] = (1, 5, 10, 20)
"""Forward-return horizons in trading days."""


def forward_returns(bars: pd.DataFrame, horizons: Sequence[int] = HORIZONS) -> pd.DataFrame:
    """Simple returns from each close to the close ``h`` trading days later, per symbol.

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, fwd_<h>`` for every horizon (NaN where the data ends first).
    """
    parts = []
    for symbol, part in bars.sort_values(["symbol", "date"]).groupby("symbol", sort=True):
        close = part["close"].astype(float).reset_index(drop=True)
        frame = pd.DataFrame({"date": part["date"].to_numpy(), "symbol": symbol})
        for h in horizons:
            frame[f"fwd_{h}"] = (close.shift(-h) / close - 1).to_numpy()
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class PreparedSignals:
    """Signal records with their regime and forward returns, ready for the tables."""

    frame: pd.DataFrame
    """``asof, agent, cluster, symbol, regime, regime_source, forward_return_20d, fwd_<h>``
    and, with model labels, ``base_return_20d`` / ``base_hit_rate``: the mean 20-day forward
    return and hit rate over every day of the symbol in the same regime."""
    filled_returns: int
    """Records whose null ``forward_return_20d`` was computed from the bars."""
    without_return: int
    """Records with no 20-day forward return (the data ends first): left out of the tables."""
    without_regime: int
    """Records with no regime (the model's warm-up): left out of the tables."""
    regime_model: str | None

    def notes(self) -> list[str]:
        """What was filled in or left out, in words."""
        out = []
        if self.filled_returns:
            out.append(f"{self.filled_returns:,} null 20-day forward returns computed from bars")
        if self.without_return:
            out.append(
                f"{self.without_return:,} records have no 20-day forward return (the data "
                "ends first) and are left out"
            )
        if self.without_regime:
            out.append(
                f"{self.without_regime:,} records have no regime label (the model's warm-up) "
                "and are left out"
            )
        return out

    @property
    def usable(self) -> pd.DataFrame:
        """Records with a regime and a 20-day forward return."""
        f = self.frame
        return f.loc[f["regime"].notna() & f["forward_return_20d"].notna()].reset_index(drop=True)


def _examples(frame: pd.DataFrame, mask: pd.Series, cols: list[str]) -> str:
    rows = frame.loc[mask, cols].head(3)
    return "; ".join(", ".join(f"{c}={r[c]}" for c in cols) for _, r in rows.iterrows())


def prepare(
    signals: pd.DataFrame,
    bars: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    source: str = "signals",
    horizons: Sequence[int] = HORIZONS,
) -> PreparedSignals:
    """Check ``signals`` against ``bars``, fill forward returns and attach regimes.

    Parameters
    ----------
    signals
        Records in the ``signals`` contract (``regime`` optional).
    bars
        Bars of every symbol the records name.
    labels
        A ``research.regimes.classify`` table (``date, symbol, model, regime``): the regime of
        records that carry none. Required when some record has no regime.
    source
        Name of the signals file, for messages.

    Raises
    ------
    ValueError
        Unknown symbols, or ``asof`` dates that are not trading days of their symbol (naming
        the rows), or records without a regime and no ``labels``.

    Returns
    -------
    PreparedSignals
    """
    from research.data.contracts import validate

    sig = validate("signals", signals, source=source).reset_index(drop=True)
    if "regime" not in sig.columns:
        sig["regime"] = pd.Series([None] * len(sig), dtype=object)
    known = set(bars["symbol"])
    unknown = ~sig["symbol"].isin(known)
    if unknown.any():
        raise ValueError(
            f"{source}: column 'symbol': {int(unknown.sum())} rows name symbols without bars "
            f"{sorted(set(sig.loc[unknown, 'symbol']))} (bars: {sorted(known)}); e.g. "
            + _examples(sig, unknown, ["asof", "agent", "symbol"])
        )
    fwd = forward_returns(bars, horizons)
    merged = sig.merge(
        fwd.rename(columns={"date": "asof"}), on=["asof", "symbol"], how="left", indicator=True
    )
    outside = merged["_merge"] == "left_only"
    if outside.any():
        spans = bars.groupby("symbol")["date"].agg(["min", "max"])
        span_text = ", ".join(
            f"{s} {r['min'].date()}..{r['max'].date()}"
            for s, r in spans.iterrows()
            if s in set(sig["symbol"])
        )
        raise ValueError(
            f"{source}: column 'asof': {int(outside.sum())} rows are not trading days of their "
            f"symbol's bars ({span_text}); e.g. "
            + _examples(merged, outside, ["asof", "agent", "symbol"])
        )
    merged = merged.drop(columns="_merge")
    missing = merged["forward_return_20d"].isna()
    fill_col = "fwd_20" if 20 in horizons else None
    filled = 0
    if fill_col is not None:
        can = missing & merged[fill_col].notna()
        merged.loc[can, "forward_return_20d"] = merged.loc[can, fill_col]
        filled = int(can.sum())
    merged["regime_source"] = pd.Series(
        np.where(merged["regime"].notna().to_numpy(), "records", ""), dtype=object
    ).replace("", None)
    no_regime = merged["regime"].isna()
    model = None
    if no_regime.any():
        if labels is None:
            raise ValueError(
                f"{source}: {int(no_regime.sum())} records carry no regime; name a regime model "
                "to label them (e.g. --model bull_bear_vol)"
            )
        model = str(labels["model"].iloc[0]) if "model" in labels.columns else "labels"
        lab = labels[["date", "symbol", "regime"]].rename(
            columns={"date": "asof", "regime": "model_regime"}
        )
        merged = merged.merge(lab, on=["asof", "symbol"], how="left")
        take = merged["regime"].isna() & merged["model_regime"].notna()
        merged.loc[take, "regime"] = merged.loc[take, "model_regime"]
        merged.loc[take, "regime_source"] = model
        merged = merged.drop(columns="model_regime")
        # the control: every day of the symbol in the regime, signal or not
        days = fwd[["date", "symbol", "fwd_20"]].merge(
            labels[["date", "symbol", "regime"]], on=["date", "symbol"]
        )
        days = days.assign(hit=days["fwd_20"] > 0).dropna(subset=["fwd_20", "regime"])
        base = days.groupby(["symbol", "regime"]).agg(
            base_return_20d=("fwd_20", "mean"), base_hit_rate=("hit", "mean")
        )
        merged = merged.merge(base.reset_index(), on=["symbol", "regime"], how="left")
    without_return = int(merged["forward_return_20d"].isna().sum())
    without_regime = int(merged["regime"].isna().sum())
    return PreparedSignals(merged, filled, without_return, without_regime, model)


def _group_keys(by: str | None) -> list[str]:
    if by is None:
        return []
    if by not in ("agent", "cluster"):
        raise ValueError(f"by must be None, 'agent' or 'cluster', got {by!r}")
    return [by]


def heatmap(prepared: PreparedSignals, *, freq: str = "M", by: str | None = None) -> pd.DataFrame:
    """Regime x period: mean 20-day forward return, hit rate (share > 0) and count.

    Parameters
    ----------
    freq
        ``"M"`` (calendar months) or ``"W"`` (weeks ending Friday).
    by
        None (all agents together), ``"agent"`` or ``"cluster"``.

    Returns
    -------
    pandas.DataFrame
        ``[by,] period, regime, mean_return, hit_rate, n`` (``period``: the period's start).
    """
    if freq not in ("M", "W"):
        raise ValueError(f"freq must be 'M' or 'W', got {freq!r}")
    f = prepared.usable
    period = f["asof"].dt.to_period("M" if freq == "M" else "W-FRI").dt.start_time
    keys = [*_group_keys(by), "period", "regime"]
    g = f.assign(period=period, hit=f["forward_return_20d"] > 0).groupby(keys, sort=True)
    out = g.agg(
        mean_return=("forward_return_20d", "mean"),
        hit_rate=("hit", "mean"),
        n=("forward_return_20d", "size"),
    )
    return out.reset_index()


def cluster_bootstrap_ci(
    values: np.ndarray, clusters: np.ndarray, reps: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile interval of the mean, resampling whole clusters with replacement."""
    ids, inverse = np.unique(clusters, return_inverse=True)
    k = len(ids)
    if k < 2:
        return (np.nan, np.nan)
    sums = np.bincount(inverse, weights=values, minlength=k)
    counts = np.bincount(inverse, minlength=k).astype(float)
    draws = rng.integers(0, k, size=(reps, k))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _summaries(
    frame: pd.DataFrame,
    keys: list[str],
    value: str,
    *,
    alpha: float,
    reps: int,
    seed: int,
    min_n: int,
    base: bool = False,
) -> pd.DataFrame:
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(seed)
    rows = []
    frame = frame.reset_index(drop=True)
    # calendar months as integers (year * 12 + month): the bootstrap's clusters
    months = (frame["asof"].dt.year * 12 + frame["asof"].dt.month).to_numpy()
    for key, part in frame.groupby(keys, sort=True):
        vals = part[value].to_numpy(float)
        n = len(vals)
        hits = int((vals > 0).sum())
        cell_months = months[part.index.to_numpy()]
        lo, hi = cluster_bootstrap_ci(vals, cell_months, reps, alpha, rng)
        w_lo, w_hi = proportion_confint(hits, n, alpha=alpha, method="wilson")
        row = {
            **dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
            "n": n,
            "months": int(len(np.unique(cell_months))),
            "mean_return": float(vals.mean()),
            "ci_low": lo,
            "ci_high": hi,
            "hit_rate": hits / n,
            "hit_ci_low": float(w_lo),
            "hit_ci_high": float(w_hi),
        }
        if base and "base_return_20d" in part.columns and part["base_return_20d"].notna().all():
            excess = vals - part["base_return_20d"].to_numpy(float)
            e_lo, e_hi = cluster_bootstrap_ci(excess, cell_months, reps, alpha, rng)
            row |= {
                "base_return": float(part["base_return_20d"].mean()),
                "excess_return": float(excess.mean()),
                "excess_ci_low": e_lo,
                "excess_ci_high": e_hi,
                "base_hit_rate": float(part["base_hit_rate"].mean()),
            }
        rows.append(row | {"enough": n >= min_n})
    return pd.DataFrame(rows)


def regime_table(
    prepared: PreparedSignals,
    *,
    by: str = "agent",
    alpha: float = 0.05,
    reps: int = 2000,
    seed: int = 0,
    min_n: int = 30,
) -> pd.DataFrame:
    """Per ``by`` (agent or cluster) x regime: mean 20-day forward return with a cluster-
    bootstrap interval (whole calendar months resampled) and hit rate with a Wilson interval.

    Returns
    -------
    pandas.DataFrame
        ``by, regime, n, months, mean_return, ci_low, ci_high, hit_rate, hit_ci_low,
        hit_ci_high``; with model labels also ``base_return, excess_return, excess_ci_low,
        excess_ci_high, base_hit_rate`` (the regime's every-day base rate for the records'
        symbols, and the signals' mean excess over it); then ``enough`` (at least ``min_n``
        records; fewer are shown but not to be read as evidence).
    """
    keys = [*_group_keys(by), "regime"]
    return _summaries(
        prepared.usable,
        keys,
        "forward_return_20d",
        alpha=alpha,
        reps=reps,
        seed=seed,
        min_n=min_n,
        base=True,
    )


def decay(
    prepared: PreparedSignals,
    *,
    by: str = "agent",
    horizons: Sequence[int] = HORIZONS,
    alpha: float = 0.05,
    reps: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per ``by`` and horizon: mean forward return (cluster-bootstrap interval) and hit rate —
    how an agent's edge builds or fades after the signal.

    Returns
    -------
    pandas.DataFrame
        ``by, horizon, n, months, mean_return, ci_low, ci_high, hit_rate, hit_ci_low,
        hit_ci_high``.
    """
    f = prepared.frame
    parts = []
    for h in horizons:
        col = f"fwd_{h}"
        if col not in f.columns:
            raise ValueError(f"no forward returns at horizon {h}; prepare(..., horizons=...)")
        mine = f.loc[f[col].notna()]
        table = _summaries(
            mine, _group_keys(by), col, alpha=alpha, reps=reps, seed=seed, min_n=0
        ).drop(columns="enough")
        parts.append(table.assign(horizon=h))
    out = pd.concat(parts, ignore_index=True)
    cols = [*_group_keys(by), "horizon"]
    return out[cols + [c for c in out.columns if c not in cols]].sort_values(
        cols, ignore_index=True
    )


def findings(table: pd.DataFrame, *, by: str = "agent") -> dict[str, object]:
    """The regime table worded by one rule: a cell (``by`` x regime with ``enough`` records)
    *beats* its regime's base rate when the excess interval lies above 0, *trails* it when it
    lies below, else is indistinguishable from it; and how many such calls chance alone would
    make (5 % of the cells tested, two-sided at 95 %: no multiple-testing correction).

    Returns
    -------
    dict
        ``tested, beats, trails, expected_by_chance`` (cells as ``"agent in regime"`` text) and
        ``sentence``.
    """
    if "excess_ci_low" not in table.columns:
        raise ValueError("the table has no base-rate comparison (records carry their regimes)")
    rows = table.loc[table["enough"] & table["excess_ci_low"].notna()]
    name = [f"{r[by]} in {r['regime']}" for _, r in rows.iterrows()]
    beats = [n for n, (_, r) in zip(name, rows.iterrows(), strict=True) if r["excess_ci_low"] > 0]
    trails = [n for n, (_, r) in zip(name, rows.iterrows(), strict=True) if r["excess_ci_high"] < 0]
    expected = 0.05 * len(rows)
    if not beats and not trails:
        verdict = "none differs from its regime's base rate"
    else:
        parts = []
        if beats:
            parts.append(f"{len(beats)} beat it ({', '.join(beats)})")
        if trails:
            parts.append(f"{len(trails)} trail it ({', '.join(trails)})")
        verdict = "; ".join(parts)
    sentence = (
        f"Of {len(rows)} {by} x regime cells with enough records, {verdict} at 95% "
        f"(in-sample; month-cluster bootstrap of the excess over every day of the same regime; "
        f"about {expected:.1f} such calls are expected by chance alone)."
    )
    return {
        "tested": len(rows),
        "beats": beats,
        "trails": trails,
        "expected_by_chance": expected,
        "sentence": sentence,
    }
