"""A handful of simple rule agents that emit signals from daily bars, for the sample signal
records (the regime-heatmap plan's shape: ``asof, agent, cluster, symbol,
forward_return_20d``).

Each agent looks at bars up to and including ``asof`` only, and fires at most once a week
(``COOLDOWN`` trading days) per symbol while its condition holds:

=====================  ===================  ================================================
agent                  cluster              fires when
=====================  ===================  ================================================
MomentumAgent          trend_following      20-day return > 0 and close above its 50-day SMA
BreakoutAgent          trend_following      close at a new 60-day high
MeanReversionAgent     contrarian           5-day return <= -3 %
MarketCorrectionAgent  macro_defensive      close >= 10 % below its 252-day high
DefensiveAgent         macro_defensive      20-day realized volatility >= 25 % (annualised)
=====================  ===================  ================================================

``forward_return_20d`` is the symbol's simple return over the next 20 trading days — the
outcome, known only afterwards (null at the end of the data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.constants import TRADING_DAYS

__all__ = ["AGENTS", "COOLDOWN", "generate_signals"]

COOLDOWN = 5
"""Trading days between two signals of one agent on one symbol."""

AGENTS: dict[str, str] = {
    "MomentumAgent": "trend_following",
    "BreakoutAgent": "trend_following",
    "MeanReversionAgent": "contrarian",
    "MarketCorrectionAgent": "macro_defensive",
    "DefensiveAgent": "macro_defensive",
}
"""Agent -> cluster."""


def _conditions(close: pd.Series) -> dict[str, pd.Series]:
    ret = np.log(close).diff()
    rv20 = ret.rolling(20, min_periods=20).std() * np.sqrt(TRADING_DAYS)
    return {
        "MomentumAgent": (close / close.shift(20) - 1 > 0)
        & (close > close.rolling(50, min_periods=50).mean()),
        "BreakoutAgent": close >= close.rolling(60, min_periods=60).max(),
        "MeanReversionAgent": close / close.shift(5) - 1 <= -0.03,
        "MarketCorrectionAgent": close <= 0.9 * close.rolling(252, min_periods=252).max(),
        "DefensiveAgent": rv20 >= 0.25,
    }


def _with_cooldown(fire: np.ndarray, cooldown: int) -> np.ndarray:
    out = np.zeros(len(fire), dtype=bool)
    last = -cooldown
    for i in np.flatnonzero(fire).tolist():
        if i - last >= cooldown:
            out[i] = True
            last = i
    return out


def generate_signals(bars: pd.DataFrame, *, cooldown: int = COOLDOWN) -> pd.DataFrame:
    """Every agent's signals on every symbol of ``bars`` (module docstring).

    Returns
    -------
    pandas.DataFrame
        The ``signals`` contract: ``asof, agent, cluster, symbol, forward_return_20d``, sorted by
        date, agent and symbol.
    """
    rows = []
    for symbol, part in bars.sort_values(["symbol", "date"]).groupby("symbol", sort=True):
        close = part["close"].reset_index(drop=True).astype(float)
        dates = part["date"].reset_index(drop=True)
        forward = close.shift(-20) / close - 1
        for agent, cond in _conditions(close).items():
            fire = _with_cooldown(cond.fillna(False).to_numpy(bool), cooldown)
            rows.append(
                pd.DataFrame(
                    {
                        "asof": dates[fire].to_numpy(),
                        "agent": agent,
                        "cluster": AGENTS[agent],
                        "symbol": symbol,
                        "forward_return_20d": forward[fire].to_numpy(),
                    }
                )
            )
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["asof", "agent", "symbol"], kind="stable").reset_index(drop=True)
