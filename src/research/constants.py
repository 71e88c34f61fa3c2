"""Numbers the whole package agrees on (base layer: imports nothing of the package)."""

from __future__ import annotations

__all__ = ["TRADING_DAYS"]

TRADING_DAYS = 252
"""Trading days per year: annualisation of daily volatilities, Sharpe and Sortino ratios
(``sqrt(TRADING_DAYS)``), the daily risk-free rate (cash grows by ``(1 + rate) ** (1 /
TRADING_DAYS)`` per trading day, the rate the metrics subtract) and one year of bars."""
