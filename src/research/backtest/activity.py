"""When a configuration stopped trading: days in cash, idle stretches and ruin, read from its
equity curve alone (so grids, which keep only equity, get them too).

A backtest's account earns the risk-free rate on cash and nothing else
(``engine``: ``(1 + rate) ** (1 / 252)`` per trading day); an open spread is marked at its mid
every day, so an account with a position moves by more than that. A day whose growth equals the
cash rate (relative difference below ``CASH_TOLERANCE``) is therefore a day with nothing open
— "in cash".

- ``idle_since``: the first day of the curve's final run of cash days, when that run lasts at
  least ``min_days`` trading days (default ``IDLE_DAYS``, about six months) — the
  configuration stopped trading then and never started again. Typically the account fell below
  the risk of one contract (scaled sizing rounds to zero contracts), or the filters no longer
  let anything through.
- ``cash_share``: the share of a window's days in cash (a stress window with no day out of
  cash had no position: its "return" is the cash interest, not protection).

Everything here reads the curve up to its last day; it describes a finished backtest (no
decision uses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research.constants import TRADING_DAYS

__all__ = ["CASH_TOLERANCE", "IDLE_DAYS", "Idle", "cash_days", "cash_share", "idle_since"]

CASH_TOLERANCE = 1e-9
"""Relative difference from the cash growth below which a day counts as a day in cash."""
IDLE_DAYS = 126
"""Trading days (about six months) of cash at the end of a curve that make it "stopped
trading"."""


@dataclass(frozen=True)
class Idle:
    """A configuration that stopped trading.

    Attributes
    ----------
    since : pd.Timestamp
        The first day in cash of the final idle stretch (the day after its last position
        closed).
    days : int
        Trading days from ``since`` to the end of the curve.
    share : float
        ``days`` as a share of the curve's days.
    """

    since: pd.Timestamp
    days: int
    share: float

    @property
    def years(self) -> float:
        """The idle stretch in years of trading days."""
        return self.days / TRADING_DAYS

    def text(self) -> str:
        """One sentence for a page: "stopped trading on 2013-06-03 (5.6 years in cash)"."""
        return (
            f"stopped trading on {self.since:%Y-%m-%d} "
            f"({self.years:.1f} years in cash, {self.share:.0%} of the period)"
        )


def _growth(equity: pd.Series) -> np.ndarray:
    values = np.asarray(equity, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("equity must be a non-empty 1-d series")
    growth: np.ndarray = values[1:] / values[:-1]
    return growth


def cash_days(equity: pd.Series, rate: float) -> pd.Series:
    """Per day (from the second), whether the account grew by exactly the cash rate.

    Parameters
    ----------
    equity : pd.Series
        Daily account value indexed by date (a backtest's equity curve).
    rate : float
        The backtest's annual risk-free rate (``BacktestConfig.rate``).

    Returns
    -------
    pd.Series
        Boolean, indexed by ``equity.index[1:]``.
    """
    cash = (1.0 + rate) ** (1.0 / TRADING_DAYS)
    growth = _growth(equity)
    flat = np.abs(growth / cash - 1.0) < CASH_TOLERANCE
    return pd.Series(flat, index=equity.index[1:], name="in_cash")


def idle_since(equity: pd.Series, rate: float, min_days: int = IDLE_DAYS) -> Idle | None:
    """The final stretch of cash days, when it lasts at least ``min_days``; else None.

    Parameters
    ----------
    equity : pd.Series
        Daily account value indexed by date.
    rate : float
        The annual risk-free rate the account earns on cash.
    min_days : int, default IDLE_DAYS
        Trading days of cash at the end that count as "stopped trading" (>= 1).

    Returns
    -------
    Idle or None
    """
    if min_days < 1:
        raise ValueError(f"min_days must be >= 1, got {min_days}")
    flags = cash_days(equity, rate).to_numpy()
    if len(flags) == 0 or not flags[-1]:
        return None
    active = np.flatnonzero(~flags)
    first = int(active[-1]) + 1 if len(active) else 0
    days = len(flags) - first
    if days < min_days:
        return None
    return Idle(
        since=pd.Timestamp(equity.index[1 + first]),
        days=days,
        share=days / len(flags),
    )


def cash_share(equity: pd.Series, rate: float, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Share of the days in ``[start, end]`` on which the account was in cash (NaN: none)."""
    flags = cash_days(equity, rate)
    inside = flags.loc[(flags.index >= start) & (flags.index <= end)]
    return float(inside.mean()) if len(inside) else math.nan
