"""File-level entry points for backtests (what the CLI and notebooks call)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from research.backtest.run import MarketPanel, market_panel
from research.backtest.spreads import ConfigError, parse_multipliers

ANCHOR = "SPX"
"""The market whose IV index (VIX) anchors every other ticker's IV."""


CHAIN_MAX_DTE_SLACK = 60
"""Chains are read up to ``target_dte + CHAIN_MAX_DTE_SLACK`` days to expiry."""
CHAIN_MONEYNESS = (0.5, 1.5)
"""Chains are read for strikes between these multiples of the underlying price."""


def load_panel(
    tickers: Sequence[str],
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | None = None,
    start: str | None = None,
    end: str | None = None,
    chains_path: str | Path | None = None,
    chain_layout: str = "auto",
    max_dte: int = 30 + CHAIN_MAX_DTE_SLACK,
) -> tuple[MarketPanel, pd.DataFrame, pd.DataFrame]:
    """Bars (embedded or a file), per-underlying IV (index, proxy or VIX-scaled) and the panel;
    with ``chains_path``, the option quotes too (spreads are then priced from them).

    Parameters
    ----------
    chains_path, chain_layout
        An ``option_chains`` file (``research.data.chains.load_chains`` layouts).
    max_dte
        Expirations read from the chain file (target DTE plus slack).

    Returns
    -------
    tuple
        ``(panel, bars, iv_table)``.
    """
    from research.backtest.iv import underlying_iv
    from research.data import market
    from research.regimes.service import iv_for

    # the anchor's (SPX's) bars are needed for other tickers' VIX-scaled IV
    wanted = list(dict.fromkeys([*tickers, ANCHOR]))
    if bars_path is not None:
        available = set(market.load_bars(bars_path)["symbol"])
        wanted = [t for t in wanted if t in available or t in tickers]
    bars = market.load_bars(bars_path, symbols=wanted)
    iv = iv_for(bars, iv_path)
    iv_table = underlying_iv(bars, iv, anchor=ANCHOR)
    panel = market_panel(bars, iv_table, tickers=tickers, start=start, end=end)
    if chains_path is not None:
        panel = with_chains(panel, chains_path, layout=chain_layout, max_dte=max_dte)
    return panel, bars, iv


def with_chains(
    panel: MarketPanel, chains_path: str | Path, *, layout: str = "auto", max_dte: int = 90
) -> MarketPanel:
    """``panel`` with the quotes of ``chains_path`` for its tickers and days attached."""
    import dataclasses

    from research.backtest.chains import chain_book
    from research.data.chains import load_chains

    chains = load_chains(
        chains_path,
        layout=layout,
        underlyings=list(panel.tickers),
        start=panel.dates[0],
        end=panel.dates[-1],
        max_dte=max_dte,
        moneyness=CHAIN_MONEYNESS,
    )
    book = chain_book(panel.dates, panel.tickers, chains, source=str(chains_path))
    return dataclasses.replace(panel, chains=book)


def regime_labels(model: str, bars: pd.DataFrame, iv: pd.DataFrame) -> pd.DataFrame:
    """Labels of any regime model for the backtest's bars (computed on the full history, each
    label using data up to its date)."""
    from research.regimes import classify

    return classify(model, bars, iv)


def multipliers_for(model: str, text: str) -> tuple[tuple[str, float], ...]:
    """Parse ``--regime-multipliers``: ``1.0,0.75,0.5,0.4`` in the model's label order, or
    ``label=value,...``."""
    from research.regimes import get_model

    labels = get_model(model).labels
    if "=" in text:
        pairs = []
        for part in text.split(","):
            name, _, value = part.partition("=")
            if name.strip() not in labels:
                raise ConfigError(
                    f"--regime-multipliers: {name.strip()!r} is not a {model} "
                    f"label; labels: {', '.join(labels)}"
                )
            pairs.append((name.strip(), float(value)))
        return tuple(pairs)
    return parse_multipliers(text, labels)
