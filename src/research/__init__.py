"""Regime Lab research package: data contracts, regimes, backtests, attribution and reports."""

__version__ = "0.1.0"
