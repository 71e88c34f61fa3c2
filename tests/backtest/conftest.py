"""Fixtures shared by the backtest tests."""

from __future__ import annotations

import dataclasses

import pytest

from research.backtest.chains import chain_book
from research.backtest.market_panel import MarketPanel


@pytest.fixture(scope="session")
def chain_panel() -> MarketPanel:
    """SPX 2015–2016 priced from a synthetic option chain with missing quotes."""
    from research.backtest.service import load_panel
    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market as market_data

    panel, _, _ = load_panel(["SPX"], start="2015-01-01", end="2016-12-31")
    chain = synthetic_chains(
        market_data.load_bars(symbols=["SPX"]),
        market_data.load_iv_index(),
        start="2015-01-01",
        end="2016-12-31",
        missing=0.01,
        seed=5,
    )
    return dataclasses.replace(panel, chains=chain_book(panel.dates, panel.tickers, chain))
