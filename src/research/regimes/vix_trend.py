"""``vix_trend`` (seed 001): 6 IV buckets x 3 trends = 18 regimes like ``LOW_VOL_BULLISH``.

IV in VIX points (iv x 100) is bucketed at ``iv_edges`` (value on an edge → the bucket above);
trend compares the close to its ``trend_window``-day SMA with a ``trend_band``. Buckets-only mode
gives the 6 regimes ``ULTRA_LOW_VOL`` … ``EXTREME_VOL``.
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


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Classify one symbol.

    Returns
    -------
    pandas.DataFrame
        Common columns plus ``iv``, ``iv_points``, ``iv_bucket``, ``sma``, ``trend_distance``
        (close / SMA − 1), ``trend``.
    """
    r = rules.vix_trend
    assert iv is not None
    n = len(bars)
    out = empty_frame(n)
    points = iv.to_numpy(float) * 100
    has_iv = ~np.isnan(points)
    idx = np.searchsorted(np.asarray(r.iv_edges, float), np.where(has_iv, points, 0), "right")
    names = np.asarray(r.bucket_names, dtype=object)
    bucket = pd.Series(names[idx], dtype=object).where(has_iv)
    close = bars["close"]
    average = sma(close, r.trend_window)
    distance = close / average - 1
    trend = pd.Series(
        np.select(
            [distance > r.trend_band, distance < -r.trend_band], ["BULLISH", "BEARISH"], "NEUTRAL"
        ),
        dtype=object,
    ).where(distance.notna())
    if r.buckets_only:
        known = has_iv
        label = bucket + "_VOL"
    else:
        known = has_iv & distance.notna().to_numpy()
        label = bucket + "_VOL_" + trend.fillna("")
        out["trend_dim"] = trend.map(_TREND_DIM).where(known)
        out["flag"] = add_flag(out["flag"], distance.isna().to_numpy(), "warmup")
    out["regime"] = label.where(known)
    out["vol_dim"] = bucket.map(_VOL_DIM).where(known)
    out["flag"] = add_flag(out["flag"], ~has_iv, "missing_iv")
    out["iv"] = iv.to_numpy(float)
    out["iv_points"] = points
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
    description="6 IV buckets (VIX points) x 3 trends (close vs SMA) = 18 regimes (seed 001)",
)
