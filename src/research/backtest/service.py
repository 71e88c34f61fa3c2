"""File-level entry points for backtests (what the CLI and notebooks call)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from research.backtest.run import MarketPanel, market_panel
from research.backtest.spreads import ConfigError, parse_multipliers

ANCHOR = "SPX"
"""The market whose IV index (VIX) anchors every other ticker's IV."""


def load_panel(
    tickers: Sequence[str],
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | None = None,
    start: str | None = None,
    end: str | None = None,
) -> tuple[MarketPanel, pd.DataFrame, pd.DataFrame]:
    """Bars (embedded or a file), per-underlying IV (index, proxy or VIX-scaled) and the panel.

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
    return panel, bars, iv


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
