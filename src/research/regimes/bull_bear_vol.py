"""``bull_bear_vol`` (from the validation plan): bull/bear x low/high vol, four states with size
multipliers.

Features: ``realized_vol_20`` (annualised std of the last 20 log returns), ``momentum_20``
(20-day return), ``trend`` (close / 50-day SMA − 1), ``iv`` and ``iv_rv_spread`` (iv − realized
vol). Bear when trend < 0 and momentum < 0, else bull. High vol when realized exceeds implied by
0.05 or more, or when IV or realized vol is high on one of two scales
(``BullBearVolRules.vol_scale``; ``auto`` picks per symbol):

- ``absolute``: iv >= 0.20 or realized vol >= 0.20, levels set for the S&P 500 (SPX, SPY, IXIC,
  NDX, QQQ: ``points_symbols``);
- ``percentile``: ``iv_rank`` >= 70 or ``rv_rank`` >= 75, the trailing percentile ranks of the
  symbol's own IV and realized vol over its last ``percentile_window`` bars up to and including
  t (the thresholds: how often the S&P 500 sat below 0.20, see ``BullBearVolRules``). For single
  stocks and commodities, on which the absolute levels call nearly every day high-vol.

Default multipliers 1.0 / 0.75 / 0.5 / 0.4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.regimes.base import ModelSpec, add_flag, empty_frame, log_returns, realized_vol, sma
from research.regimes.ruleset import Ruleset
from research.regimes.vix_trend import trailing_percentile

LABELS: tuple[str, ...] = ("bull_low_vol", "bull_high_vol", "bear_low_vol", "bear_high_vol")


def min_history(rules: Ruleset, symbol: str | None = None) -> tuple[int, str]:
    """The longest need of the features: ``trend_window`` closes (SMA), ``rv_window + 1`` bars
    (``rv_window`` returns), ``momentum_window + 1`` bars (the return over ``momentum_window``
    bars), and on the percentile scale ``rv_window + percentile_min_periods`` bars (the first
    realized vol comes with bar ``rv_window + 1``, its rank needs ``percentile_min_periods`` of
    them; the IV rank, ``percentile_min_periods`` bars, comes earlier). The first named wins a
    tie. ``symbol`` None in ``auto`` mode: the percentile scale (the most any symbol needs)."""
    r = rules.bull_bear_vol
    needs = [
        (r.trend_window, f"trend_window {r.trend_window}"),
        (r.rv_window + 1, f"rv_window {r.rv_window} (+1 bar: {r.rv_window} returns)"),
        (
            r.momentum_window + 1,
            f"momentum_window {r.momentum_window} (+1 bar: a {r.momentum_window}-bar return)",
        ),
    ]
    scale = r.scale_for(symbol) if symbol is not None else r.vol_scale
    if scale != "absolute":
        m, w = r.percentile_min_periods, r.rv_window
        needs.append(
            (
                w + m,
                f"percentile_min_periods {m} realized vols (+{w} bars: the first realized vol "
                f"needs rv_window {w} returns)",
            )
        )
    return max(needs, key=lambda need: need[0])


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Classify one symbol (its name from ``bars["symbol"]`` decides the scale in auto mode).

    Returns
    -------
    pandas.DataFrame
        Common columns plus ``realized_vol_20``, ``momentum_20``, ``trend``, ``iv``,
        ``iv_rv_spread``, ``iv_rank`` and ``rv_rank`` (trailing percentile ranks, always
        computed), ``vol_scale`` (``absolute`` or ``percentile``) and ``size_multiplier`` (from
        the ruleset, NaN where no label).
    """
    r = rules.bull_bear_vol
    assert iv is not None
    n = len(bars)
    out = empty_frame(n)
    scale = r.scale_for(str(bars["symbol"].iloc[0]) if n else "")
    close = bars["close"]
    rv = realized_vol(log_returns(close), r.rv_window)
    momentum = close / close.shift(r.momentum_window) - 1
    trend = close / sma(close, r.trend_window) - 1
    ivv = pd.Series(iv.to_numpy(float), index=bars.index)
    spread = ivv - rv
    iv_rank = trailing_percentile(ivv, r.percentile_window, r.percentile_min_periods)
    rv_rank = trailing_percentile(rv, r.percentile_window, r.percentile_min_periods)
    ready = rv.notna() & momentum.notna() & trend.notna()
    if scale == "absolute":
        high_level = (ivv >= r.iv_high) | (rv >= r.rv_high)
    else:
        high_level = (iv_rank >= r.iv_high_percentile) | (rv_rank >= r.rv_high_percentile)
        # IV present but too few IVs in the window: warmup (a missing IV is flagged missing_iv)
        ready &= rv_rank.notna() & (iv_rank.notna() | ivv.isna())
    features_ok = ready.to_numpy()
    known = features_ok & ivv.notna().to_numpy()
    bear = ((trend < 0) & (momentum < 0)).to_numpy()
    high = (high_level | (spread <= -r.rv_over_iv)).to_numpy()
    label = np.where(bear, "bear", "bull").astype(object) + np.where(high, "_high_vol", "_low_vol")
    out["regime"] = pd.Series(label, dtype=object).where(known)
    out["trend_dim"] = pd.Series(np.where(bear, "down", "up"), dtype=object).where(known)
    out["vol_dim"] = pd.Series(np.where(high, "high", "low"), dtype=object).where(known)
    out["flag"] = add_flag(out["flag"], ~features_ok, "warmup")
    out["flag"] = add_flag(out["flag"], ivv.isna().to_numpy(), "missing_iv")
    out["realized_vol_20"] = rv.to_numpy()
    out["momentum_20"] = momentum.to_numpy()
    out["trend"] = trend.to_numpy()
    out["iv"] = ivv.to_numpy()
    out["iv_rv_spread"] = spread.to_numpy()
    out["iv_rank"] = iv_rank.to_numpy()
    out["rv_rank"] = rv_rank.to_numpy()
    out["vol_scale"] = scale
    out["size_multiplier"] = out["regime"].map(dict(r.size_multipliers)).astype(float)
    return out


SPEC = ModelSpec(
    name="bull_bear_vol",
    uses_iv=True,
    labels=LABELS,
    compute=compute,
    description=(
        "bull/bear x low/high vol from rv20, momentum20, trend, iv, iv-rv; vol levels absolute "
        "for index symbols, trailing percentile otherwise (from the validation plan)"
    ),
    min_history=min_history,
)
