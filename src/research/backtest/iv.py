"""The IV each underlying gets in the backtest: ``research.data.iv`` (re-exported here)."""

from research.data.iv import MISSING_SOURCE, TRADING_DAYS, underlying_iv

__all__ = ["MISSING_SOURCE", "TRADING_DAYS", "underlying_iv"]
