"""What the filter is shown about a trade: the validation plan's market context and trade details,
plus the regime at entry — built only from what was known on the entry date.

``ENTRY_FIELDS`` is the whitelist: the outcome columns of the trades export (``outcome``,
``pnl``, ``exit_reason``, ``hold_days``) are never read, whatever the row holds. The regime comes
from a regime model's label on the entry date, which the models compute from bars up to that date
(``entry_regimes``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = [
    "ENTRY_FIELDS",
    "OUTCOME_FIELDS",
    "build_context",
    "entry_regimes",
    "strategy",
    "trade_ids",
]

ENTRY_FIELDS: tuple[str, ...] = (
    "date",
    "ticker",
    "short_strike",
    "long_strike",
    "expiration",
    "credit",
    "max_loss",
    "delta",
    "dte",
    "iv_percentile",
    "vix",
    "underlying_price",
)
"""Trade columns known at entry: the only ones the context reads (plus the entry regime)."""

OUTCOME_FIELDS: tuple[str, ...] = ("outcome", "pnl", "exit_reason", "hold_days")
"""Columns known only after the trade closed: never shown to the filter."""


def strategy(short_strike: float, long_strike: float) -> str:
    """``Bear Call Spread`` when the short strike is below the long one (calls), else
    ``Bull Put Spread``."""
    return "Bear Call Spread" if short_strike < long_strike else "Bull Put Spread"


def _day(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def build_context(trade: Mapping[str, Any], regime: str | None = None) -> str:
    """The validation plan's context text for one trade (``build_agent_context``), with the regime
    at entry when known. Reads only ``ENTRY_FIELDS`` of ``trade``.

    Examples
    --------
    >>> row = {"date": "2022-03-15", "ticker": "QQQ", "short_strike": 350.0,
    ...        "long_strike": 345.0, "expiration": "2022-04-14", "credit": 0.85,
    ...        "max_loss": 4.15, "delta": 0.12, "dte": 30, "iv_percentile": 82.5, "vix": 28.3,
    ...        "underlying_price": 340.0, "pnl": 55.25}
    >>> print(build_context(row).splitlines()[2])
    - Underlying: QQQ at $340.00
    """
    t = {k: trade[k] for k in ENTRY_FIELDS}
    lines = [
        f"Date: {_day(t['date'])}",
        "Market Context:",
        f"- Underlying: {t['ticker']} at ${float(t['underlying_price']):.2f}",
        f"- VIX: {float(t['vix']):.1f}",
        f"- IV Percentile: {float(t['iv_percentile']):.1f}%",
    ]
    if regime is not None and not pd.isna(regime) and str(regime):
        lines.append(f"- Market regime: {regime}")
    lines += [
        "",
        "Trade Details:",
        f"- Strategy: {strategy(float(t['short_strike']), float(t['long_strike']))}",
        f"- Short Strike: ${float(t['short_strike']):.2f} (delta: {float(t['delta']):.3f})",
        f"- Long Strike: ${float(t['long_strike']):.2f}",
        f"- Expiration: {_day(t['expiration'])} ({int(t['dte'])} DTE)",
        f"- Credit: ${float(t['credit']):.2f}",
        f"- Max Loss: ${float(t['max_loss']):.2f}",
        f"- Risk/Reward: {float(t['max_loss']) / float(t['credit']):.1f}:1",
    ]
    return "\n".join(lines) + "\n"


def trade_ids(trades: pd.DataFrame) -> pd.Series:
    """A stable id per trade: the ``trade_id`` column when present, else the contract's key
    ``date-ticker-short-long-expiration`` (e.g. ``2014-01-02-SPX-1892.5-1920-2014-02-03``)."""
    if "trade_id" in trades.columns:
        return trades["trade_id"].astype(str)
    date = pd.to_datetime(trades["date"]).dt.strftime("%Y-%m-%d")
    exp = pd.to_datetime(trades["expiration"]).dt.strftime("%Y-%m-%d")
    short = trades["short_strike"].map(lambda v: f"{float(v):g}")
    long_ = trades["long_strike"].map(lambda v: f"{float(v):g}")
    return date + "-" + trades["ticker"].astype(str) + "-" + short + "-" + long_ + "-" + exp


def entry_regimes(trades: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """The regime label on each trade's entry date (``labels``: a ``research.regimes.classify``
    table; the models label a day from bars up to that day). Trades whose own ``regime`` column
    is set keep it; a date without a label gives None.

    Returns
    -------
    pandas.Series
        Aligned with ``trades``.
    """
    keyed = labels[["date", "symbol", "regime"]].rename(columns={"symbol": "ticker"})
    left = pd.DataFrame(
        {"date": pd.to_datetime(trades["date"]).to_numpy(), "ticker": trades["ticker"].to_numpy()}
    )
    merged = left.merge(keyed, on=["date", "ticker"], how="left")
    out = merged["regime"].astype(object).where(merged["regime"].notna(), None)
    if "regime" in trades.columns:
        own = trades["regime"].astype(object).reset_index(drop=True)
        out = own.where(own.notna(), out)
    out.index = trades.index
    return out
