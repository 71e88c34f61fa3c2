"""``bull_bear_vol`` (seed 004): bull/bear x low/high vol, four states with size multipliers.

Features: ``realized_vol_20`` (annualised std of the last 20 log returns), ``momentum_20``
(20-day return), ``trend`` (close / 50-day SMA − 1), ``iv`` and ``iv_rv_spread`` (iv − realized
vol). Bear when trend < 0 and momentum < 0, else bull; high vol when iv >= 0.20, realized vol >=
0.20, or realized exceeds implied by 0.05 or more. Default multipliers 1.0 / 0.75 / 0.5 / 0.4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.regimes.base import ModelSpec, add_flag, empty_frame, log_returns, realized_vol, sma
from research.regimes.ruleset import Ruleset

LABELS: tuple[str, ...] = ("bull_low_vol", "bull_high_vol", "bear_low_vol", "bear_high_vol")


def min_history(rules: Ruleset, symbol: str | None = None) -> tuple[int, str]:
    """The longest need of the three features: ``trend_window`` closes (SMA),
    ``rv_window + 1`` bars (``rv_window`` returns), ``momentum_window + 1`` bars (the return
    over ``momentum_window`` bars); the first named wins a tie."""
    r = rules.bull_bear_vol
    needs = [
        (r.trend_window, f"trend_window {r.trend_window}"),
        (r.rv_window + 1, f"rv_window {r.rv_window} (+1 bar: {r.rv_window} returns)"),
        (
            r.momentum_window + 1,
            f"momentum_window {r.momentum_window} (+1 bar: a {r.momentum_window}-bar return)",
        ),
    ]
    return max(needs, key=lambda need: need[0])


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Classify one symbol.

    Returns
    -------
    pandas.DataFrame
        Common columns plus ``realized_vol_20``, ``momentum_20``, ``trend``, ``iv``,
        ``iv_rv_spread`` and ``size_multiplier`` (from the ruleset, NaN where no label).
    """
    r = rules.bull_bear_vol
    assert iv is not None
    out = empty_frame(len(bars))
    close = bars["close"]
    rv = realized_vol(log_returns(close), r.rv_window)
    momentum = close / close.shift(r.momentum_window) - 1
    trend = close / sma(close, r.trend_window) - 1
    ivv = pd.Series(iv.to_numpy(float), index=bars.index)
    spread = ivv - rv
    features_ok = (rv.notna() & momentum.notna() & trend.notna()).to_numpy()
    known = features_ok & ivv.notna().to_numpy()
    bear = ((trend < 0) & (momentum < 0)).to_numpy()
    high = ((ivv >= r.iv_high) | (rv >= r.rv_high) | (spread <= -r.rv_over_iv)).to_numpy()
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
    out["size_multiplier"] = out["regime"].map(dict(r.size_multipliers)).astype(float)
    return out


SPEC = ModelSpec(
    name="bull_bear_vol",
    uses_iv=True,
    labels=LABELS,
    compute=compute,
    description="bull/bear x low/high vol from rv20, momentum20, trend, iv, iv-rv (seed 004)",
    min_history=min_history,
)
