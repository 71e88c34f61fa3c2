"""The market a backtest runs on: bars and IV aligned on the days every ticker trades.

:class:`MarketPanel` holds days x tickers arrays (closes, opens, extremes, IV, strike grids)
and, optionally, the option quotes of those days; :func:`market_panel` builds one from the
bars and the per-underlying IV table. Every engine (``run``, ``trade_paths``, ``path_cache``,
``portfolio``) reads a panel; this module imports none of them.

>>> panel = market_panel(bars, iv_table, tickers=["SPX", "IXIC"])          # doctest: +SKIP
>>> panel.slice(slice(0, 250)).dates[-1]                                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from research._typing import FloatArray, IntArray, ObjectArray
from research.backtest.chains import ChainBook

__all__ = ["MarketPanel", "market_panel", "panel_digest", "strike_step", "strike_steps"]

_NICE_STEPS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)


def strike_step(price: float) -> float:
    """Strike grid spacing for an underlying around ``price``: the largest of 0.5, 1, 2.5, 5,
    10, 25, 50, 100 not above 0.25% of the price (SPX at 1,400 → 2.5; IXIC at 7,000 → 10)."""
    target = 0.0025 * price
    fitting = [s for s in _NICE_STEPS if s <= target]
    return fitting[-1] if fitting else _NICE_STEPS[0]


def strike_steps(close: FloatArray) -> FloatArray:
    """``strike_step`` of every close (same shape): each day's strike grid from that day's price
    only, as an exchange lists strikes around the current level (no look-ahead)."""
    steps = np.array(_NICE_STEPS)
    target = 0.0025 * np.asarray(close, dtype=float)
    idx = np.searchsorted(steps, target, side="right") - 1
    return steps[np.clip(idx, 0, len(steps) - 1)]


@dataclass(frozen=True)
class MarketPanel:
    """Bars and IV aligned on the days every ticker trades (arrays are days x tickers)."""

    dates: pd.DatetimeIndex
    tickers: tuple[str, ...]
    close: FloatArray
    atm_iv: FloatArray
    """IV for entries (NaN: no entry that day)."""
    mark_iv: FloatArray
    """IV for marking open spreads (``atm_iv`` carried forward over gaps)."""
    iv_percentile: FloatArray
    vix: FloatArray
    iv_source: ObjectArray
    strike_steps: FloatArray
    """Strike grid spacing per day and ticker, from that day's close (``strike_step``)."""
    dropped_days: int
    """Days on which some ticker had no bar (not traded)."""
    open: FloatArray | None = None
    """Opening prices (for fills at the next open and AM settlement); None or NaN: the previous
    close."""
    chains: ChainBook | None = None
    """Option quotes on these days: spreads are priced from them instead of the model."""
    high: FloatArray | None = None
    low: FloatArray | None = None
    """The bars' highs and lows (intraday stops); None or NaN: the close."""

    @cached_property
    def digest(self) -> str:
        """Hash of what the engine reads from the panel (:func:`panel_digest`); the arrays are
        treated as read-only once the panel is built."""
        return panel_digest(self)

    @property
    def day_ordinals(self) -> IntArray:
        return self.dates.values.astype("datetime64[D]").astype(np.int64)

    def steps_2d(self) -> FloatArray:
        """Strike steps as days x tickers (a per-ticker vector is broadcast over days)."""
        steps = np.asarray(self.strike_steps, dtype=float)
        if steps.ndim == 1:
            steps = np.broadcast_to(steps, self.close.shape)
        return np.ascontiguousarray(steps)

    def opens(self) -> FloatArray:
        """Opening prices, a missing open replaced by the previous close (the first day's by its
        close)."""
        if self.open is None:
            prev = np.vstack([self.close[:1], self.close[:-1]])
            return np.ascontiguousarray(prev)
        prev = np.vstack([self.close[:1], self.close[:-1]])
        out = np.where(np.asarray(self.open, float) > 0, self.open, prev)
        return np.ascontiguousarray(out, dtype=float)

    def extremes(self) -> tuple[FloatArray, FloatArray]:
        """Highs and lows, a missing one replaced by the close."""

        def filled(values: FloatArray | None) -> FloatArray:
            if values is None:
                return np.ascontiguousarray(self.close, dtype=float)
            out = np.where(np.asarray(values, float) > 0, values, self.close)
            return np.ascontiguousarray(out, dtype=float)

        return filled(self.high), filled(self.low)

    def slice(self, sl: slice) -> MarketPanel:
        """The panel restricted to the days ``sl`` (a contiguous range)."""
        steps = np.asarray(self.strike_steps)
        return MarketPanel(
            dates=self.dates[sl],
            tickers=self.tickers,
            close=self.close[sl],
            atm_iv=self.atm_iv[sl],
            mark_iv=self.mark_iv[sl],
            iv_percentile=self.iv_percentile[sl],
            vix=self.vix[sl],
            iv_source=self.iv_source[sl],
            strike_steps=steps[sl] if steps.ndim == 2 else steps,
            dropped_days=self.dropped_days,
            open=None if self.open is None else self.open[sl],
            chains=None if self.chains is None else self.chains.slice(sl),
            high=None if self.high is None else self.high[sl],
            low=None if self.low is None else self.low[sl],
        )


def market_panel(
    bars: pd.DataFrame,
    iv_table: pd.DataFrame,
    *,
    tickers: Sequence[str] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> MarketPanel:
    """Align bars and the per-underlying IV (``backtest.iv.underlying_iv``) for the engine.

    Raises
    ------
    ValueError
        Unknown tickers, tickers without overlapping dates, an empty date range, or no IV at all.
    """
    wanted = list(tickers) if tickers is not None else sorted(bars["symbol"].unique())
    missing = sorted(set(wanted) - set(bars["symbol"]))
    if missing:
        raise ValueError(
            f"tickers {missing} have no bars; available: {sorted(bars['symbol'].unique())}"
        )
    frame = bars.loc[bars["symbol"].isin(wanted)]
    if start is not None:
        frame = frame.loc[frame["date"] >= pd.Timestamp(start)]
    if end is not None:
        frame = frame.loc[frame["date"] <= pd.Timestamp(end)]
    if frame.empty:
        raise ValueError(f"no bars for {wanted} between {start} and {end}")
    close = frame.pivot(index="date", columns="symbol", values="close")[wanted]
    all_days = len(close)
    close = close.dropna()

    def column(name: str) -> np.ndarray | None:
        if name not in frame.columns:
            return None
        wide = frame.pivot(index="date", columns="symbol", values=name)
        return wide.reindex(index=close.index, columns=wanted).to_numpy(float)

    opens = column("open")
    if close.empty:
        raise ValueError(f"tickers {wanted} have no date in common between {start} and {end}")
    iv = iv_table.loc[iv_table["symbol"].isin(wanted)]

    def grid(column: str) -> pd.DataFrame:
        return iv.pivot(index="date", columns="symbol", values=column).reindex(
            index=close.index, columns=wanted
        )

    atm = grid("atm_iv")
    if atm.isna().all().all():
        raise ValueError(f"no implied volatility for {wanted} between {start} and {end}")
    return MarketPanel(
        dates=pd.DatetimeIndex(close.index),
        tickers=tuple(wanted),
        close=close.to_numpy(float),
        atm_iv=atm.to_numpy(float),
        mark_iv=atm.ffill().bfill().to_numpy(float),
        iv_percentile=grid("iv_percentile").to_numpy(float),
        vix=grid("vix").to_numpy(float),
        iv_source=grid("iv_source").to_numpy(object),
        strike_steps=strike_steps(close.to_numpy(float)),
        dropped_days=all_days - len(close),
        open=opens,
        high=column("high"),
        low=column("low"),
    )


def panel_digest(panel: MarketPanel) -> str:
    """Digest of everything phase 1 reads from a panel (days, prices, IV, strike grids,
    quotes)."""
    h = hashlib.sha256()
    h.update("\x1f".join(panel.tickers).encode())
    parts: list[np.ndarray] = [
        panel.day_ordinals,
        np.asarray(panel.close, float),
        panel.opens(),
        np.asarray(panel.atm_iv, float),
        np.asarray(panel.mark_iv, float),
        np.asarray(panel.iv_percentile, float),
        panel.steps_2d(),
    ]
    book = panel.chains
    if book is not None:
        lo, hi = int(book.day_start.min()), int(book.day_start.max())
        parts += [book.day_start - lo]
        parts += [
            np.asarray(x)[lo:hi]
            for x in (book.put, book.expiry, book.strike, book.bid, book.ask, book.delta, book.iv)
        ]
    for x in parts:
        x = np.ascontiguousarray(x)
        h.update(str((x.dtype.str, x.shape)).encode())
        h.update(x.tobytes())
    return h.hexdigest()
