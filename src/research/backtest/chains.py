"""Option quotes aligned on a backtest panel, for spreads priced from chains instead of a model.

``chain_book(panel, chains)`` turns ``option_chains`` rows (``research.data.chains``) into flat
arrays the chain kernel (``research.backtest.chain_engine``) reads: rows sorted by ticker, panel
day, type (calls first), expiration and strike, and for every (ticker, day) the range of its rows.
Days of the panel without quotes for a ticker have an empty range (no entry that day; open
spreads follow the missing-quote rule). Slicing a panel slices its book without copying rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from research.backtest.pricing import implied_vols

__all__ = ["ChainBook", "chain_book", "with_implied_iv"]


@dataclass(frozen=True, eq=False)
class ChainBook:
    """Quotes on a panel's days (see the module docstring)."""

    day_start: np.ndarray
    """tickers x (days + 1) int64: ticker j's rows on day d are ``[day_start[j, d],
    day_start[j, d + 1])``."""
    put: np.ndarray
    """int64, 0 for calls, 1 for puts."""
    expiry: np.ndarray
    """int64 calendar-day ordinals (days since 1970-01-01)."""
    strike: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    delta: np.ndarray
    """|delta| (NaN when the file has none: computed from ``iv``)."""
    iv: np.ndarray
    """NaN when the file has none."""
    rows: int
    source: str = ""

    def slice(self, sl: slice) -> ChainBook:
        """The book of the panel days ``sl`` (the same row arrays)."""
        start, stop = sl.start or 0, sl.stop
        return ChainBook(
            day_start=np.ascontiguousarray(self.day_start[:, start : stop + 1]),
            put=self.put,
            expiry=self.expiry,
            strike=self.strike,
            bid=self.bid,
            ask=self.ask,
            delta=self.delta,
            iv=self.iv,
            rows=self.rows,
            source=self.source,
        )


def _implied_where_blind(
    frame: pd.DataFrame, delta: np.ndarray, iv: np.ndarray, rate: float, dividend_yield: float
) -> np.ndarray:
    """``iv`` with the IV implied by the mid on quoted rows that have neither delta nor IV."""
    bid, ask = frame["bid"].to_numpy(float), frame["ask"].to_numpy(float)
    blind = np.isnan(delta) & ~(iv > 0) & (ask > 0) & (ask >= bid)
    if not blind.any():
        return iv
    out = iv.copy()
    days = (frame["expiration"] - frame["quote_date"]).dt.days.to_numpy(float)[blind]
    out[blind] = implied_vols(
        0.5 * (bid[blind] + ask[blind]),
        frame["underlying_price"].to_numpy(float)[blind],
        frame["strike"].to_numpy(float)[blind],
        np.maximum(days, 0.5) / 365.0,
        rate,
        dividend_yield,
        (frame["type"] == "call").to_numpy()[blind],
    )
    return out


def with_implied_iv(
    chains: pd.DataFrame, *, rate: float = 0.02, dividend_yield: float = 0.0
) -> pd.DataFrame:
    """``chains`` with an ``iv`` column in which every quoted row that has neither a delta
    nor an IV gets the IV implied by its mid (as ``chain_book`` does): done once, it spares
    every later book the work, and copies priced differently (``trade_by_trade``) keep the
    chain's own IVs, so their strikes are chosen as the chain's."""
    delta = (
        chains["delta"].abs().to_numpy(float)
        if "delta" in chains.columns
        else np.full(len(chains), np.nan)
    )
    iv = chains["iv"].to_numpy(float) if "iv" in chains.columns else np.full(len(chains), np.nan)
    filled = _implied_where_blind(chains, delta, iv, rate, dividend_yield)
    return chains if filled is iv and "iv" in chains.columns else chains.assign(iv=filled)


def chain_book(
    dates: pd.DatetimeIndex,
    tickers: tuple[str, ...],
    chains: pd.DataFrame,
    source: str = "",
    *,
    rate: float = 0.02,
    dividend_yield: float = 0.0,
) -> ChainBook:
    """Align validated ``option_chains`` rows with a panel's dates and tickers.

    A quoted row with neither a delta nor an IV (a Cboe end-of-day snapshot, a file without
    greeks) gets the IV implied by its mid (``pricing.implied_vols`` at ``rate`` and
    ``dividend_yield``, spot ``underlying_price``), from which the kernels take its delta;
    without it no strike could be chosen by delta.

    Raises
    ------
    ValueError
        When a ticker has no quote on any panel date.
    """
    # ticker codes through a categorical: no per-row Python work on (Arrow-backed) strings
    found, names = pd.factorize(chains["underlying"])
    where = {t: i for i, t in enumerate(tickers)}
    codes = np.array([where.get(str(n), -1) for n in names], dtype=np.int64)[found]
    frame = chains.loc[codes >= 0]
    day = dates.get_indexer(pd.DatetimeIndex(frame["quote_date"]))
    frame = frame.assign(_day=day, _tk=codes[codes >= 0].astype(np.int64))
    frame = frame.loc[frame["_day"] >= 0]
    missing = sorted(set(tickers) - {str(u) for u in frame["underlying"].unique()})
    if missing:
        raise ValueError(
            f"{source or 'option chains'}: no quotes for {missing} on the backtest's dates "
            f"{dates[0].date()}..{dates[-1].date()}"
        )
    frame = frame.assign(_put=(frame["type"] == "put").astype(np.int64)).sort_values(
        ["_tk", "_day", "_put", "expiration", "strike"], kind="stable"
    )
    n_days, n_tk = len(dates), len(tickers)
    key = frame["_tk"].to_numpy(np.int64) * (n_days + 1) + frame["_day"].to_numpy(np.int64)
    wanted = (np.arange(n_tk)[:, None] * (n_days + 1) + np.arange(n_days + 1)[None, :]).ravel()
    day_start = np.searchsorted(key, wanted, side="left").reshape(n_tk, n_days + 1)
    # the sentinel column (day n_days) is the end of the ticker's rows
    day_start[:, n_days] = np.searchsorted(key, np.arange(1, n_tk + 1) * (n_days + 1) - 1, "right")
    delta = (
        frame["delta"].abs().to_numpy(float)
        if "delta" in frame.columns
        else np.full(len(frame), np.nan)
    )
    iv = frame["iv"].to_numpy(float) if "iv" in frame.columns else np.full(len(frame), np.nan)
    bid, ask = frame["bid"].to_numpy(float), frame["ask"].to_numpy(float)
    iv = _implied_where_blind(frame, delta, iv, rate, dividend_yield)
    return ChainBook(
        day_start=np.ascontiguousarray(day_start.astype(np.int64)),
        put=frame["_put"].to_numpy(np.int64),
        expiry=frame["expiration"].to_numpy("datetime64[D]").astype(np.int64),
        strike=frame["strike"].to_numpy(float),
        bid=bid,
        ask=ask,
        delta=np.ascontiguousarray(delta),
        iv=np.ascontiguousarray(iv),
        rows=len(frame),
        source=source,
    )
