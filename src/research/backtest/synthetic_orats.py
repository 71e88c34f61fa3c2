"""A synthetic option history shaped like ORATS' and as large as the validation plan's, for the
scale benchmark (``benchmarks/bench_chains_scale.py``).

**Not market data.** Quotes are Black–Scholes–Merton prices of a known smile
(``synthetic_chains.TrueSmile``) around real closes, with a bid/ask spread; what is realistic is
the *shape and size*: the rows, columns, expirations and strike grids a 2007–2018 ORATS history
of two ETFs holds.

- **Underlyings** on the embedded markets, at ETF price levels: ``SPY`` = the S&P 500 closes / 10,
  ``QQQ`` = the NASDAQ Composite closes / 40. Each day's at-the-money IV is the lab's own IV for
  the index (``backtest.service.load_panel``: VIX where published, its proxy before, the NASDAQ
  scaled by realized volatility) times the smile's ``atm_ratio``. ``market_files`` writes the
  matching bars and IV files so a backtest of SPY/QQQ reads the same closes and IV.
- **Expirations** listed on each trade date (``expirDate``): Friday weeklies up to
  ``WEEKLY_WEEKS`` weeks out (plus Monday and Wednesday weeklies from 2016); monthlies, the third
  Friday of each of the next 12 months — dated the **Saturday** after it before 2015-02-01, as
  US monthlies were (and ORATS histories keep); quarterlies, the last business day of each of
  the next 4 quarters; LEAPS, the January monthlies of the next two years. An expiration on a
  weekday that is not a trading day (Good Friday) moves to the trading day before.
- **Strikes**: a $1 grid within ``near`` of spot and a $5 grid out to ``far``, both widening
  with the expiration's standard deviation (``near = min(0.8, 0.6 + 2 sigma sqrt(T))``,
  ``far = min(0.95, 0.8 + 4 sigma sqrt(T))``): about 44 M rows over 2007–2018, the validation
  plan's order of size (its 19 years of SPY and QQQ are 40–60 M rows).
- **Rows** as ORATS ships its *strikes* files: one row per (``tradeDate, ticker, expirDate,
  strike``) with both sides (``callBidPrice, callAskPrice, putBidPrice, putAskPrice``),
  ``stockPrice``, ``callMidIv, putMidIv`` and ``delta`` (the call's), ``dte``.

``write_orats_history`` writes one Parquet file per year and ticker under ``year=YYYY/``
(hive-partitioned: DuckDB reads the folder as one table and skips what the filters exclude), a
year at a time in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.backtest.pricing import bs_delta, bs_price
from research.backtest.synthetic_chains import TrueSmile

__all__ = [
    "ETFS",
    "WEEKLY_WEEKS",
    "OratsHistory",
    "expirations",
    "market_files",
    "orats_rows",
    "write_orats_history",
]

ETFS: dict[str, tuple[str, float]] = {"SPY": ("SPX", 10.0), "QQQ": ("IXIC", 40.0)}
"""ETF -> (the embedded market it is built on, divisor of its closes)."""
WEEKLY_WEEKS = 12
SATURDAY_UNTIL = pd.Timestamp("2015-02-01")
"""Monthlies expiring before this date are dated the Saturday after the third Friday."""
MW_WEEKLIES_FROM = pd.Timestamp("2016-01-01")
RATE, DIVIDEND = 0.02, 0.018


def _third_fridays(start: pd.Timestamp, months: int) -> pd.DatetimeIndex:
    first = pd.date_range(start.to_period("M").to_timestamp(), periods=months, freq="MS")
    offset = (4 - first.day_of_week) % 7  # days to the month's first Friday
    return first + pd.to_timedelta(offset + 14, unit="D")


def expirations(day: pd.Timestamp, trading: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The expirations listed on ``day`` (module docstring), sorted; ``trading``: the known
    trading days (a listed weekday that is not one moves to the trading day before)."""
    fridays = pd.date_range(day + pd.Timedelta(days=1), periods=WEEKLY_WEEKS, freq="W-FRI")
    weeklies = [fridays]
    if day >= MW_WEEKLIES_FROM:
        end = fridays[-1]
        weeklies.append(pd.date_range(day + pd.Timedelta(days=1), end, freq="W-MON"))
        weeklies.append(pd.date_range(day + pd.Timedelta(days=1), end, freq="W-WED"))
    monthly = _third_fridays(day, 13)
    leaps = _third_fridays(pd.Timestamp(year=day.year + 1, month=1, day=1), 13)[[0, 12]]
    both = pd.DatetimeIndex(monthly.append(leaps))
    monthly = pd.DatetimeIndex(np.where(both < SATURDAY_UNTIL, both + pd.Timedelta(days=1), both))
    quarters = pd.date_range(day + pd.Timedelta(days=1), periods=4, freq="BQE")
    out = pd.DatetimeIndex(weeklies[0].append([*weeklies[1:], monthly, quarters]))
    # a listed weekday the exchange is closed (Good Friday): the trading day before
    off = (out.day_of_week < 5) & (out <= trading[-1]) & ~out.isin(trading)
    if off.any():
        values = out.to_numpy().copy()
        values[np.flatnonzero(off)] = trading[np.searchsorted(trading, out[off]) - 1].to_numpy()
        out = pd.DatetimeIndex(values)
    return pd.DatetimeIndex(out[out > day].unique()).sort_values()


def _strikes(s: float, sigma: float, t: float) -> np.ndarray:
    sd = sigma * np.sqrt(t)
    near, far = min(0.8, 0.6 + 2 * sd), min(0.95, 0.8 + 4 * sd)
    ones = np.arange(np.ceil(s * (1 - near)), np.floor(s * (1 + near)) + 1, 1.0)
    fives = np.arange(np.ceil(s * (1 - far) / 5) * 5, np.floor(s * (1 + far) / 5) * 5 + 1, 5.0)
    fives = fives[(fives < ones[0]) | (fives > ones[-1])] if len(ones) else fives
    out = np.union1d(ones, fives)
    return out[out > 0]


@dataclass(frozen=True)
class OratsHistory:
    """What ``write_orats_history`` wrote."""

    folder: Path
    rows: int
    bytes: int
    files: int


def orats_rows(
    ticker: str,
    days: pd.DatetimeIndex,
    close: np.ndarray,
    atm_iv: np.ndarray,
    trading: pd.DatetimeIndex,
    smile: TrueSmile | None = None,
) -> pd.DataFrame:
    """ORATS *strikes* rows of ``ticker`` on ``days`` (closes and index IV per day; days with
    a NaN IV list nothing)."""
    smile = smile or TrueSmile()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("day", "exp", "k", "s", "iv", "t")}
    for day, s, index_iv in zip(days, close, atm_iv, strict=True):
        if not (np.isfinite(index_iv) and np.isfinite(s)):
            continue
        sigma = smile.atm_ratio * index_iv
        for exp in expirations(day, trading):
            years = (exp - day).days / 365.0
            grid = _strikes(float(s), sigma, years)
            parts["day"].append(np.full(len(grid), day.to_datetime64()))
            parts["exp"].append(np.full(len(grid), exp.to_datetime64()))
            parts["k"].append(grid)
            parts["s"].append(np.full(len(grid), s))
            parts["iv"].append(np.full(len(grid), index_iv))
            parts["t"].append(np.full(len(grid), years))
    if not parts["k"]:
        return pd.DataFrame()
    day_a, exp_a, k, spot, index, t = (np.concatenate(parts[c]) for c in parts)
    vol = smile.iv(index, spot, k, t)
    frame = {
        "ticker": np.full(len(k), ticker, dtype=object),
        "tradeDate": day_a.astype("datetime64[D]"),
        "expirDate": exp_a.astype("datetime64[D]"),
        "dte": np.round(t * 365).astype(np.int32),
        "strike": k,
        "stockPrice": spot,
    }
    for kind in ("call", "put"):
        mid = np.asarray(bs_price(spot, k, t, RATE, vol, kind, DIVIDEND))
        spread = np.maximum(0.01, 0.03 * mid)
        bid = np.maximum(np.round(mid - spread / 2, 2), 0.0)
        frame[f"{kind}BidPrice"] = bid
        frame[f"{kind}AskPrice"] = np.round(np.maximum(bid + spread, 0.01), 2)
    frame["callMidIv"] = vol
    frame["putMidIv"] = vol
    frame["delta"] = np.asarray(bs_delta(spot, k, t, RATE, vol, "call", DIVIDEND))
    return pd.DataFrame(frame)


def _market(start: str, end: str) -> Iterator[tuple[str, pd.DatetimeIndex, np.ndarray, np.ndarray]]:
    from research.backtest.service import load_panel

    markets = [m for m, _ in ETFS.values()]
    # from a quarter earlier: the IV proxy needs its history before the first day
    early = str((pd.Timestamp(start) - pd.Timedelta(days=120)).date())
    panel, _, _ = load_panel(markets, start=early, end=end)
    keep = panel.dates >= pd.Timestamp(start)
    for j, (etf, (_, divisor)) in enumerate(ETFS.items()):
        yield etf, panel.dates[keep], panel.close[keep, j] / divisor, panel.atm_iv[keep, j]


def write_orats_history(
    folder: str | Path,
    *,
    start: str = "2007-01-01",
    end: str = "2018-12-31",
    smile: TrueSmile | None = None,
    progress: Callable[[str], None] | None = None,
) -> OratsHistory:
    """Write the history (module docstring) under ``folder/year=YYYY/<ticker>.parquet``.

    Raises
    ------
    FileExistsError
        ``folder`` exists and is not empty (nothing is overwritten).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(
            f"{folder}: not empty; the synthetic history is written to a new folder"
        )
    rows = size = files = 0
    for etf, dates, close, iv in _market(start, end):
        for year in sorted(set(dates.year)):
            sel = dates.year == year
            frame = orats_rows(etf, dates[sel], close[sel], iv[sel], dates, smile)
            if frame.empty:
                continue
            out = folder / f"year={year}"
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{etf}.parquet"
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False),
                path,
                compression="zstd",
                row_group_size=1_000_000,
            )
            rows += len(frame)
            size += path.stat().st_size
            files += 1
            if progress is not None:
                progress(f"{etf} {year}: {len(frame):,} rows ({rows:,} in all)")
    return OratsHistory(folder, rows, size, files)


def market_files(
    folder: str | Path, *, start: str = "2006-01-01", end: str = "2018-12-31"
) -> tuple[Path, Path]:
    """Bars (``date, symbol, open, high, low, close``) and IV index (``date, symbol, iv``) of
    the ETFs, as the history prices them: ``(bars_path, iv_path)`` (Parquet, in ``folder``)."""
    from research.backtest.service import load_panel
    from research.data import market

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    markets = [m for m, _ in ETFS.values()]
    raw = market.load_bars(symbols=markets)
    raw = raw.loc[(raw["date"] >= pd.Timestamp(start)) & (raw["date"] <= pd.Timestamp(end))]
    bars = []
    for etf, (name, divisor) in ETFS.items():
        b = raw.loc[raw["symbol"] == name].copy()
        for col in ("open", "high", "low", "close"):
            if col in b.columns:
                b[col] = b[col] / divisor
        bars.append(b.assign(symbol=etf))
    panel, _, _ = load_panel(markets, start=start, end=end)
    iv = pd.concat(
        [
            pd.DataFrame({"date": panel.dates, "symbol": etf, "iv": panel.atm_iv[:, j]})
            for j, etf in enumerate(ETFS)
        ]
    ).dropna()
    bars_path, iv_path = folder / "etf_bars.parquet", folder / "etf_iv.parquet"
    pd.concat(bars, ignore_index=True).to_parquet(bars_path)
    iv.sort_values(["symbol", "date"]).to_parquet(iv_path)
    return bars_path, iv_path
