"""Synthetic end-of-day option chains with a known smile, for tests, benchmarks and examples.

**Not market data.** Quotes are Black–Scholes–Merton prices of a chosen smile around real
closes, with a bid/ask spread; they let the chain loader, the chain-priced backtest and the
calibration be checked against a truth that is known exactly. Real chains come from the user's
vendor files (``research.data.chains.load_chains``).

Smile: ``iv(K) = atm · clip(1 − slope · z + curvature · z², floor, cap)`` with standardised
moneyness ``z = ln(K / S) / (atm · √T)`` and ``atm = atm_ratio · index IV`` — the family of the
pricing model (``research.backtest.pricing``), so a calibration can recover it; or, with
``call_slope``, a different slope above the money, which no single fit of the model matches on
both wings (as real index smiles: steep puts, flat or rising calls). Spread: the
larger of ``min_spread`` and ``spread_pct`` of the mid, split around the mid (bid floored at 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from research._typing import FloatArray
from research.backtest.market_panel import strike_step
from research.backtest.pricing import bs_delta, bs_price

__all__ = ["TrueSmile", "synthetic_chains"]


@dataclass(frozen=True)
class TrueSmile:
    """The smile the synthetic quotes are priced from."""

    atm_ratio: float = 0.88
    slope: float = 0.35
    curvature: float = 0.05
    floor: float = 0.7
    cap: float = 2.0
    call_slope: float | None = None
    """Slope above the money (``z > 0``) when it differs from ``slope`` below: a smile
    outside the pricing model's family, whose two wings a single fit cannot both match."""

    def iv(
        self, index_iv: FloatArray, s: float | FloatArray, k: FloatArray, t: FloatArray
    ) -> FloatArray:
        """Implied volatilities at strikes ``k`` and expiries ``t`` (years)."""
        atm = self.atm_ratio * index_iv
        z = np.log(k / s) / (atm * np.sqrt(t))
        slope = (
            self.slope if self.call_slope is None else np.where(z > 0, self.call_slope, self.slope)
        )
        iv: np.ndarray = atm * np.clip(1 - slope * z + self.curvature * z**2, self.floor, self.cap)
        return iv


def _fridays(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    return pd.date_range(start, end, freq="W-FRI")


def synthetic_chains(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    *,
    symbol: str = "SPX",
    start: str | None = None,
    end: str | None = None,
    smile: TrueSmile | None = None,
    max_dte: int = 60,
    strike_range: float = 0.15,
    spread_pct: float = 0.04,
    min_spread: float = 0.05,
    rate: float = 0.02,
    dividend_yield: float = 0.018,
    missing: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Daily calls and puts on every Friday expiration up to ``max_dte`` days, strikes on one
    grid (``strike_step`` of the median close) within ``strike_range`` of the day's close.

    Parameters
    ----------
    bars, iv
        Bars (``date, symbol, close``) and an IV frame (``date, symbol, iv``) for ``symbol``.
    missing
        Share of quotes dropped at random (to exercise missing-quote handling).

    Returns
    -------
    pandas.DataFrame
        ``option_chains`` long layout: ``quote_date, underlying, expiration, type, strike, bid,
        ask, underlying_price, iv, delta``.
    """
    smile = smile or TrueSmile()
    b = bars.loc[bars["symbol"] == symbol, ["date", "close"]]
    v = iv.loc[iv["symbol"] == symbol, ["date", "iv"]]
    days = b.merge(v, on="date").sort_values("date")
    if start is not None:
        days = days.loc[days["date"] >= pd.Timestamp(start)]
    if end is not None:
        days = days.loc[days["date"] <= pd.Timestamp(end)]
    if days.empty:
        raise ValueError(f"no bars with IV for {symbol} between {start} and {end}")
    rng = np.random.default_rng(seed)
    step = strike_step(float(days["close"].median()))  # listed strikes stay on one grid
    frames = []
    for date, close, index_iv in days.itertuples(index=False):
        expiries = _fridays(date + pd.Timedelta(days=1), date + pd.Timedelta(days=max_dte))
        lo = np.ceil(close * (1 - strike_range) / step) * step
        hi = np.floor(close * (1 + strike_range) / step) * step
        strikes = np.arange(lo, hi + step / 2, step)
        t = ((expiries - date).days.to_numpy() / 365.0)[:, None]
        k = strikes[None, :]
        t, k = np.broadcast_arrays(t, k)
        vol = smile.iv(np.full(t.shape, index_iv), close, k, t)
        for kind in ("call", "put"):
            mid = np.asarray(bs_price(close, k, t, rate, vol, kind, dividend_yield))
            spread = np.maximum(min_spread, spread_pct * mid)
            bid = np.maximum(mid - spread / 2, 0.0)
            frames.append(
                pd.DataFrame(
                    {
                        "quote_date": date,
                        "underlying": symbol,
                        "expiration": np.repeat(expiries.to_numpy(), len(strikes)),
                        "type": kind,
                        "strike": k.ravel(),
                        "bid": np.round(bid, 2).ravel(),
                        "ask": np.round(bid + spread, 2).ravel(),
                        "underlying_price": close,
                        "iv": vol.ravel(),
                        "delta": np.asarray(
                            bs_delta(close, k, t, rate, vol, kind, dividend_yield)
                        ).ravel(),
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    if missing > 0:
        out = out.loc[rng.random(len(out)) >= missing].reset_index(drop=True)
    return out
