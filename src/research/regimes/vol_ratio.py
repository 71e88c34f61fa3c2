"""``vol_ratio`` (from the EWMA volatility-regime plan): EWMA short/long realized volatility ratio →
low/normal/high/crisis.

For each bar t and each horizon, the EWMA variance of the last ``window`` log returns with decay
``lam = 0.5 ** (1 / halflife)``: ``sum_k lam**k r_{t-k}**2 / sum_k lam**k`` (k = 0 is the newest
return; zero-mean, the RiskMetrics convention); vols are its square root, per bar (daily, not
annualised). ``ratio = vol_short / vol_long``. With fewer than ``long_window_bars`` returns, or a
zero long vol, the plan's fallback applies: ``normal``, vols 0, ratio 1.0, flagged
``insufficient_data`` / ``zero_vol``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from research._typing import FloatArray, ObjectArray
from research.regimes.base import ModelSpec, add_flag, empty_frame, log_returns
from research.regimes.ruleset import Ruleset

LABELS: tuple[str, ...] = ("low", "normal", "high", "crisis")
_VOL_DIM = {"low": "low", "normal": "normal", "high": "high", "crisis": "high"}


def ewma_window_vol(returns: FloatArray, window: int, halflife: int) -> FloatArray:
    """EWMA volatility of the last ``window`` returns at each position (NaN before that).

    Parameters
    ----------
    returns
        1-D log returns, oldest first (NaN-free).
    window, halflife
        Number of returns used and the EWMA halflife, in bars.

    Returns
    -------
    numpy.ndarray
        Same length as ``returns``; element i uses returns[i - window + 1 .. i].
    """
    out = np.full(len(returns), np.nan)
    if len(returns) < window:
        return out
    lam = 0.5 ** (1.0 / halflife)
    weights = lam ** np.arange(window - 1, -1, -1)  # oldest … newest (newest weight 1)
    windows = sliding_window_view(returns**2, window)
    out[window - 1 :] = np.sqrt(windows @ weights / weights.sum())
    return out


def classify_ratio(ratio: FloatArray, low: float, normal: float, high: float) -> ObjectArray:
    """The EWMA volatility-regime plan's thresholds: < low low, < normal normal, < high high, else
    crisis."""
    return np.select([ratio < low, ratio < normal, ratio < high], list(LABELS[:3]), LABELS[3])


def min_history(rules: Ruleset, symbol: str | None = None) -> tuple[int, str]:
    """``long_window_bars + 1`` bars: the first long EWMA vol needs ``long_window_bars`` returns
    (earlier rows get the ``insufficient_data`` fallback, not a label)."""
    w = rules.vol_ratio.long_window_bars
    return w + 1, f"long_window_bars {w} (+1 bar: {w} returns)"


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Classify one symbol.

    Returns
    -------
    pandas.DataFrame
        Common columns plus ``vol_short``, ``vol_long``, ``vol_ratio`` (daily, bar-level).
    """
    r = rules.vol_ratio
    n = len(bars)
    out = empty_frame(n)
    ret = log_returns(bars["close"]).to_numpy()[1:]
    short = np.full(n, np.nan)
    long_ = np.full(n, np.nan)
    short[1:] = ewma_window_vol(ret, r.short_window_bars, r.short_halflife_bars)
    long_[1:] = ewma_window_vol(ret, r.long_window_bars, r.long_halflife_bars)
    insufficient = np.isnan(long_)
    zero = ~insufficient & (long_ <= 0)
    fallback = insufficient | zero
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(fallback, 1.0, short / long_)
    short = np.where(fallback, 0.0, short)
    long_ = np.where(fallback, 0.0, long_)
    label = classify_ratio(ratio, r.ratio_low, r.ratio_normal, r.ratio_high)
    label = np.where(fallback, "normal", label)
    out["regime"] = label
    out["vol_dim"] = pd.Series(label).map(_VOL_DIM)
    out["flag"] = add_flag(out["flag"], insufficient, "insufficient_data")
    out["flag"] = add_flag(out["flag"], zero, "zero_vol")
    out["vol_short"] = short
    out["vol_long"] = long_
    out["vol_ratio"] = ratio
    return out


SPEC = ModelSpec(
    name="vol_ratio",
    uses_iv=False,
    labels=LABELS,
    compute=compute,
    description=(
        "EWMA short/long realized vol ratio: low/normal/high/crisis "
        "(from the EWMA volatility-regime plan)"
    ),
    min_history=min_history,
)
