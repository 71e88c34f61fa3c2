"""The one interface every regime model implements, and the checks they share.

A model is a ``ModelSpec``: a name, whether it needs an IV index, its possible labels, and a
``compute`` function that classifies ONE symbol's bars (sorted by date) and returns, aligned with
those rows:

- ``regime``: the label (NaN where the model cannot say, with a flag explaining why);
- ``trend_dim`` in {up, flat, down} and ``vol_dim`` in {low, normal, high} (NaN where the model
  has no such dimension): common dimensions on which models are compared;
- ``flag``: ``""`` or ``;``-joined flags (``insufficient_data``, ``warmup``, ``missing_iv``,
  ``gap``);
- the features the label was computed from, and ``prob_*`` state probabilities where it has them.

Every value at date t must use bars (and IV) up to t only.

Each model also states its ``min_history``: the fewest bars per symbol with which at least one
row gets a label (one bar fewer gives none); ``registry.classify`` refuses shorter input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from research._typing import BoolArray
from research.regimes.ruleset import Ruleset

COMMON_COLUMNS: tuple[str, ...] = (
    "date",
    "symbol",
    "model",
    "regime",
    "trend_dim",
    "vol_dim",
    "flag",
)
TREND_DIM: tuple[str, ...] = ("up", "flat", "down")
VOL_DIM: tuple[str, ...] = ("low", "normal", "high")

Compute = Callable[[pd.DataFrame, "pd.Series | None", Ruleset], pd.DataFrame]


class MinHistory(Protocol):
    """``(rules, symbol=None) -> (bars, reason)``: the fewest bars per symbol with which the
    model labels at least one row, and why (e.g. ``"trend_window 50"``). ``symbol`` matters only
    for models whose rules depend on it (``vix_trend``'s ``iv_scale="auto"``); None gives the
    most any symbol needs."""

    def __call__(self, rules: Ruleset, symbol: str | None = None) -> tuple[int, str]: ...


@dataclass(frozen=True)
class ModelSpec:
    """A regime model."""

    name: str
    uses_iv: bool
    labels: tuple[str, ...]
    """Every label the model can give, in display order (low risk → high risk)."""
    compute: Compute
    description: str
    min_history: MinHistory
    """Fewest bars per symbol for at least one label, and the reason (see :class:`MinHistory`)."""


def add_flag(flag: pd.Series, mask: pd.Series | BoolArray, name: str) -> pd.Series:
    """Append ``name`` to ``flag`` where ``mask`` is true (``;``-joined)."""
    mask = np.asarray(mask, dtype=bool)
    out = flag.copy()
    empty = out == ""
    out[mask & empty] = name
    out[mask & ~empty] = out[mask & ~empty] + ";" + name
    return out


def gap_mask(dates: pd.Series, max_gap_days: int) -> BoolArray:
    """True on bars that come more than ``max_gap_days`` calendar days after the previous bar."""
    gaps = dates.diff().dt.days.to_numpy()
    mask: BoolArray = np.nan_to_num(gaps, nan=0) > max_gap_days
    return mask


def log_returns(close: pd.Series) -> pd.Series:
    """Close-to-close log returns (NaN on the first bar)."""
    return pd.Series(np.log(close.to_numpy(float)), index=close.index).diff()


def sma(close: pd.Series, window: int) -> pd.Series:
    """Simple moving average over the last ``window`` closes (NaN until there are that many)."""
    return close.rolling(window, min_periods=window).mean()


def realized_vol(returns: pd.Series, window: int, periods: int = 252) -> pd.Series:
    """Annualised sample standard deviation of the last ``window`` returns."""
    vol: pd.Series = returns.rolling(window, min_periods=window).std() * np.sqrt(periods)
    return vol


def efficiency_ratio(close: pd.Series, window: int) -> pd.Series:
    """Kaufman efficiency ratio: |close_t - close_{t-n}| / sum of |daily changes| over n bars.

    1 for a straight line, near 0 for a noisy range; NaN until ``window`` changes exist and where
    the path length is zero.
    """
    change = close.diff(window).abs()
    path = close.diff().abs().rolling(window, min_periods=window).sum()
    return change / path.where(path > 0)


def empty_frame(n: int) -> pd.DataFrame:
    """The common columns for ``n`` rows, all unknown, no flags (for model implementations)."""
    return pd.DataFrame(
        {
            "regime": pd.Series([np.nan] * n, dtype=object),
            "trend_dim": pd.Series([np.nan] * n, dtype=object),
            "vol_dim": pd.Series([np.nan] * n, dtype=object),
            "flag": pd.Series([""] * n, dtype=object),
        }
    )
