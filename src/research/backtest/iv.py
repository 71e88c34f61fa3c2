"""The IV each underlying gets in the backtest: ``research.data.iv`` (re-exported here)."""

from research.data.iv import MISSING_SOURCE, underlying_iv

__all__ = ["MISSING_SOURCE", "underlying_iv"]
