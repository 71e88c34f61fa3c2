"""``vix_trend`` (from the regime-configuration plan): 6 IV buckets x 3 trends = 18 regimes like
``LOW_VOL_BULLISH``.

IV is bucketed on one of two scales (``VixTrendRules.iv_scale``; ``auto`` picks per symbol):

- ``points``: IV in VIX points (iv x 100) at ``iv_edges`` 12/15/20/25/35. Meaningful for a
  VIX-like index (SPX, NDX, SPY, QQQ, IXIC: ``points_symbols``);
- ``percentile``: ``iv_rank``, the trailing percentile rank of the symbol's own IV over its last
  ``percentile_window`` bars up to and including t, at ``percentile_edges`` (derived from how
  often the VIX sat in each points bucket, see ``VixTrendRules``). For single stocks and
  commodities, whose IV level is not comparable with the VIX.

A value on an edge belongs to the bucket above it. Trend compares the close to its
``trend_window``-day SMA with a ``trend_band``. Buckets-only mode gives the 6 regimes
``ULTRA_LOW_VOL`` … ``EXTREME_VOL``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.regimes.base import ModelSpec, add_flag, empty_frame, sma
from research.regimes.ruleset import Ruleset, VixTrendRules

TRENDS: tuple[str, ...] = ("BULLISH", "NEUTRAL", "BEARISH")
_TREND_DIM = {"BULLISH": "up", "NEUTRAL": "flat", "BEARISH": "down"}
_VOL_DIM = {
    "ULTRA_LOW": "low",
    "LOW": "low",
    "NORMAL": "normal",
    "ELEVATED": "high",
    "HIGH": "high",
    "EXTREME": "high",
}


def labels_for(rules: VixTrendRules) -> tuple[str, ...]:
    """All labels of the model under ``rules``, lowest IV bucket first."""
    if rules.buckets_only:
        return tuple(f"{b}_VOL" for b in rules.bucket_names)
    return tuple(f"{b}_VOL_{t}" for b in rules.bucket_names for t in TRENDS)


def trailing_percentile(iv: pd.Series, window: int, min_periods: int) -> pd.Series:
    """Trailing percentile rank of ``iv``, x 100, in (0, 100].

    The same definition as ``iv_percentile`` in ``research.data.iv``: 100 x (number of the
    window's values <= iv[t]) / (number of values in the window), the window being the last
    ``window`` rows up to and including t and "values" its non-NaN IVs (pandas
    ``rolling(window, min_periods).rank(method="max", pct=True)``).

    Parameters
    ----------
    iv
        One symbol's IV, oldest first.
    window, min_periods
        Rows in the window; fewest non-NaN values for a rank.

    Returns
    -------
    pandas.Series
        Aligned with ``iv``; NaN where ``iv`` is NaN or the window holds fewer than
        ``min_periods`` values.
    """
    return iv.rolling(window, min_periods=min_periods).rank(method="max", pct=True) * 100.0


def min_history(rules: Ruleset, symbol: str | None = None) -> tuple[int, str]:
    """Fewest bars for a label: ``trend_window`` (the SMA; 1 bar in buckets-only mode), and on
    the percentile scale at least ``percentile_min_periods`` (the first rank). ``symbol`` None
    in ``auto`` mode: the percentile scale (the most any symbol needs)."""
    r = rules.vix_trend
    need, reason = (1, "one bar") if r.buckets_only else (r.trend_window, "trend_window")
    scale = r.scale_for(symbol) if symbol is not None else r.iv_scale
    if scale != "points" and r.percentile_min_periods > need:
        need, reason = r.percentile_min_periods, "percentile_min_periods"
    return need, reason if need == 1 else f"{reason} {need}"


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Classify one symbol (its name from ``bars["symbol"]`` decides the scale in auto mode).

    Returns
    -------
    pandas.DataFrame
        Common columns plus ``iv``, ``iv_points``, ``iv_rank`` (trailing IV percentile, always
        computed), ``iv_scale`` (``points`` or ``percentile``), ``iv_bucket`` (from
        ``iv_points`` or ``iv_rank`` per the scale), ``sma``, ``trend_distance``
        (close / SMA − 1), ``trend``.
    """
    r = rules.vix_trend
    assert iv is not None
    n = len(bars)
    out = empty_frame(n)
    symbol = str(bars["symbol"].iloc[0]) if n else ""
    scale = r.scale_for(symbol)
    ivv = pd.Series(iv.to_numpy(float))
    points = ivv.to_numpy() * 100
    rank = trailing_percentile(ivv, r.percentile_window, r.percentile_min_periods).to_numpy()
    value, edges = (points, r.iv_edges) if scale == "points" else (rank, r.percentile_edges)
    has_iv = ~np.isnan(points)
    has_value = ~np.isnan(value)
    idx = np.searchsorted(np.asarray(edges, float), np.where(has_value, value, 0), "right")
    names = np.asarray(r.bucket_names, dtype=object)
    bucket = pd.Series(names[idx], dtype=object).where(has_value)
    close = bars["close"]
    average = sma(close, r.trend_window)
    distance = close / average - 1
    trend = pd.Series(
        np.select(
            [distance > r.trend_band, distance < -r.trend_band], ["BULLISH", "BEARISH"], "NEUTRAL"
        ),
        dtype=object,
    ).where(distance.notna())
    warmup = has_iv & ~has_value  # percentile scale: too few IVs in the window yet
    if r.buckets_only:
        known = has_value
        label = bucket + "_VOL"
    else:
        known = has_value & distance.notna().to_numpy()
        label = bucket + "_VOL_" + trend.fillna("")
        out["trend_dim"] = trend.map(_TREND_DIM).where(known)
        warmup = warmup | distance.isna().to_numpy()
    out["regime"] = label.where(known)
    out["vol_dim"] = bucket.map(_VOL_DIM).where(known)
    out["flag"] = add_flag(out["flag"], warmup, "warmup")
    out["flag"] = add_flag(out["flag"], ~has_iv, "missing_iv")
    out["iv"] = ivv.to_numpy()
    out["iv_points"] = points
    out["iv_rank"] = rank
    out["iv_scale"] = scale
    out["iv_bucket"] = bucket
    out["sma"] = average.to_numpy()
    out["trend_distance"] = distance.to_numpy()
    out["trend"] = trend
    return out


SPEC = ModelSpec(
    name="vix_trend",
    uses_iv=True,
    labels=labels_for(VixTrendRules()) + labels_for(VixTrendRules(buckets_only=True)),
    compute=compute,
    description=(
        "6 IV buckets (VIX points for index symbols, trailing IV percentile otherwise) "
        "x 3 trends (close vs SMA) = 18 regimes (from the regime-configuration plan)"
    ),
    min_history=min_history,
)
