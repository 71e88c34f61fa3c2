"""File-level entry points for backtests (what the CLI and notebooks call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from research.backtest.market_panel import MarketPanel, market_panel
from research.backtest.spreads import ConfigError, parse_multipliers

CHAIN_MAX_DTE_SLACK = 60
"""Chains are read up to ``target_dte + CHAIN_MAX_DTE_SLACK`` days to expiry."""
CHAIN_MONEYNESS = (0.5, 1.5)
"""Chains are read for strikes between these multiples of the underlying price."""


def load_panel(
    tickers: Sequence[str],
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    start: str | None = None,
    end: str | None = None,
    chains_path: str | Path | None = None,
    chain_layout: str = "auto",
    max_dte: int = 30 + CHAIN_MAX_DTE_SLACK,
    relations: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> tuple[MarketPanel, pd.DataFrame, pd.DataFrame]:
    """Bars (embedded or a file), each ticker's IV (``research.data.iv.resolve_iv``: its own
    index and proxy, a named symbol's IV scaled, or its uncalibrated GARCH forecast) and the
    panel; with ``chains_path``, the option quotes too (spreads are then priced from them).

    Parameters
    ----------
    iv_path
        One or several IV index files; they add up, and the embedded VIX stays SPX's unless a
        file gives SPX.
    relations
        Ticker -> the symbol its IV is scaled from (``--iv-from``); the built-in IXIC is scaled
        from SPX when the bars are the embedded ones.
    notes
        A list that receives what the user should know about the IV (uncalibrated proxies).
    chains_path, chain_layout
        An ``option_chains`` file (``research.data.chains.load_chains`` layouts).
    max_dte
        Expirations read from the chain file (target DTE plus slack).

    Returns
    -------
    tuple
        ``(panel, bars, iv)``: ``iv`` is every symbol's final IV (``date, symbol, iv, source``),
        what IV-based regime models read.
    """
    from research.data import market
    from research.data.iv import effective_relations, resolve_iv

    rel = effective_relations(tickers, bars_path, relations)
    wanted = list(dict.fromkeys([*tickers, *[rel[t] for t in tickers if t in rel]]))
    bars = market.load_bars(bars_path, symbols=wanted)
    published = market.load_iv_indexes(iv_path, symbols=wanted)
    resolution = resolve_iv(bars, published, relations=rel)
    if notes is not None:
        notes.extend(resolution.notes)
    iv_table = resolution.table(bars)
    panel = market_panel(bars, iv_table, tickers=tickers, start=start, end=end)
    if chains_path is not None:
        panel = with_chains(panel, chains_path, layout=chain_layout, max_dte=max_dte)
    return panel, bars, resolution.per_symbol(bars)


def check_history(panel: MarketPanel, target_dte: int) -> None:
    """Refuse a panel on which no spread can be opened: a first day with every ticker's IV and
    IV percentile (a volatility forecast needs 22 bars of history, its percentile 20 values)
    and an expiry ``target_dte`` calendar days later inside the data.

    Raises
    ------
    ValueError
        Naming the dates and what is needed.
    """
    import numpy as np

    known = (np.isfinite(panel.atm_iv) & np.isfinite(panel.iv_percentile)).all(axis=1)
    last = panel.dates[-1]
    if not known.any():
        raise ValueError(
            f"{', '.join(panel.tickers)}: no day with an implied volatility and its percentile "
            f"for every ticker between {panel.dates[0].date()} and {last.date()} "
            f"({len(panel.dates)} days; an IV forecast needs 22 bars of history, its percentile "
            "20 values)"
        )
    first = panel.dates[int(np.argmax(known))]
    if (last - first).days < target_dte:
        raise ValueError(
            f"{', '.join(panel.tickers)}: too little history for a {target_dte}-day spread: IV "
            f"and its percentile from {first.date()} (an IV forecast needs 22 bars of history, "
            f"its percentile 20 values), last bar {last.date()}; need at least {target_dte} "
            "calendar days after that"
        )


def parse_relations(items: Sequence[str] | None) -> dict[str, str]:
    """``["IXIC=SPX", ...]`` (``--iv-from``) -> ``{"IXIC": "SPX"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        sym, sep, anchor = item.partition("=")
        if not sep or not sym.strip() or not anchor.strip():
            raise ConfigError(f"--iv-from {item!r}: expected SYMBOL=ANCHOR, e.g. IXIC=SPX")
        out[sym.strip()] = anchor.strip()
    return out


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
