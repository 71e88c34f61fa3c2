"""The spread a chain-priced backtest would open on each quote day — and, where it opens none,
why, worded with the option that changes it.

The chain engine (``chain_engine._run_chains``) opens a spread on a (day, ticker) only when:

1. an expiration is listed on or after ``target_dte`` calendar days (and after the next panel
   day), and the first such expiration settles inside the data (not after its last day) —
   otherwise ``no_expiration`` (nothing listed that far out) or ``after_data`` (the first one
   that far out expires after the data ends: the spread could not be followed to its end);
2. that expiration has a quoted out-of-the-money strike of the strategy's side whose |delta|
   (the chain's, else Black–Scholes from the chain's IV) is inside the band — otherwise
   ``no_strike``;
3. a quoted strike further out exists for the long leg — otherwise ``no_long_leg``.

``entry_spreads`` calls the engine's own entry function (``kernels.chain_entry``) on every
(ticker, quote day) of a :class:`~research.backtest.chains.ChainBook`, so the spreads are the
ones the backtest opens, and labels each day with the first test that failed. The engine counts
all three failures as ``no_strike``; :meth:`EntrySpreads.explain` splits them, names the
expirations the file lists on those days, and says which option changes the answer: a lower
``--dte`` (with the number of quote days each would leave), a wider delta band (with the nearest
quoted deltas on both sides), or quotes further out.

Everything here reads one quote day at a time: a day's outcome uses that day's quotes, the
day's close and (for ``after_data``) the data's last day, exactly as the engine does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from research._typing import FloatArray
from research.backtest.chains import ChainBook
from research.backtest.kernels import chain_entry
from research.backtest.pricing import bs_delta
from research.backtest.spreads import BacktestConfig

__all__ = ["OUTCOMES", "EntrySpreads", "entry_spreads"]

OUTCOMES: tuple[str, ...] = ("spread", "no_expiration", "after_data", "no_strike", "no_long_leg")
"""Per (ticker, quote day): a spread, or the first of the engine's tests that failed."""
DTE_STEPS: tuple[int, ...] = (7, 14, 21, 30, 45, 60, 90)
"""The ``--dte`` values the explanation counts quote days for."""
_NEVER = np.iinfo(np.int64).max // 4


@dataclass(frozen=True, eq=False)
class EntrySpreads:
    """Per (ticker, quote day): the spread the chain-priced backtest would open, or why none.

    ``frame`` columns: ``underlying, quote_date, outcome`` (one of ``OUTCOMES``), ``spot``;
    for a spread ``expiration, dte, short_strike, long_strike, short_delta, chain_mid``
    (short mid minus long mid) and ``half_spread`` (both legs' half spreads), with
    ``short_row, long_row`` (rows of the book); on every day ``listed`` (the side's listed
    expirations, ISO dates), ``longest_dte`` (days to the latest listed expiration that settles
    inside the data; -1 if none) and, for ``no_strike``, ``below`` / ``above``: the nearest
    quoted out-of-the-money |delta| under and over the band (NaN if none).
    """

    frame: pd.DataFrame = field(repr=False)
    strategy: str
    target_dte: int
    min_delta: float
    max_delta: float
    last_day: pd.Timestamp | None
    """The data's last day (``after_data`` is tested against it); None: not tested."""
    source: str = ""

    @property
    def spreads(self) -> pd.DataFrame:
        """The days with a spread."""
        return self.frame.loc[self.frame["outcome"] == "spread"].reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Quote days per outcome (every outcome, zeros included)."""
        got = self.frame["outcome"].value_counts()
        return {o: int(got.get(o, 0)) for o in OUTCOMES}

    def dte_coverage(self, steps: tuple[int, ...] = DTE_STEPS) -> pd.DataFrame:
        """Quote days on which ``--dte N`` finds an expiration inside the data, per ``N``."""
        longest = self.frame["longest_dte"].to_numpy()
        return pd.DataFrame(
            {"dte": list(steps), "days": [int((longest >= n).sum()) for n in steps]}
        )

    def suggested_dte(self) -> int | None:
        """The largest ``--dte`` that leaves an expiration on at least half the quote days
        (the median of each day's longest listed expiration), or None when below 1 day."""
        longest = self.frame["longest_dte"].to_numpy()
        if not len(longest):
            return None
        n = int(np.floor(np.median(longest)))
        return n if n >= 1 else None

    def explain(self) -> str:
        """Why the quote days without a spread have none, and what option changes it (empty
        when every day has a spread)."""
        f = self.frame
        counts = self.counts()
        missed = len(f) - counts["spread"]
        if missed == 0:
            return ""
        side = "call" if self.strategy == "bear_call" else "put"
        first, last = f["quote_date"].min().date(), f["quote_date"].max().date()
        lines = [
            f"{self.source + ': ' if self.source else ''}no spread on {missed:,} of {len(f):,} "
            f"quote days ({first}..{last}):"
        ]
        if counts["no_expiration"]:
            rows = f.loc[f["outcome"] == "no_expiration"]
            lines.append(
                f"  {counts['no_expiration']:,} days: no {side} expiration listed at least "
                f"{self.target_dte} days out ({_listed(rows)})."
            )
        if counts["after_data"]:
            rows = f.loc[f["outcome"] == "after_data"]
            lines.append(
                f"  {counts['after_data']:,} days: the first expiration at least "
                f"{self.target_dte} days out settles after the data's last day "
                f"{self.last_day.date() if self.last_day is not None else ''}, so the spread "
                f"could not be followed to its end ({_listed(rows)}); a later --end (quotes "
                "and bars that run later) or a lower --dte changes it."
            )
        if counts["no_expiration"] or counts["after_data"]:
            cover = self.dte_coverage()
            said = ", ".join(f"--dte {n}: {d:,}" for n, d in cover.itertuples(index=False))
            hint = self.suggested_dte()
            if hint is None:
                advice = (
                    "the file's expirations are all too near: give quotes with later expirations."
                )
            elif hint < self.target_dte:
                advice = f"--dte {hint} leaves one on at least half the days."
            else:
                advice = (
                    f"at --dte {self.target_dte} the other days fall between the listed "
                    "expirations; a lower --dte fills them."
                )
            lines.append(
                f"  quote days with an expiration "
                f"{'inside the data ' if self.last_day is not None else ''}at {said} "
                f"(of {len(f):,}); " + advice
            )
        if counts["no_strike"]:
            rows = f.loc[f["outcome"] == "no_strike"]
            lines.append(
                f"  {counts['no_strike']:,} days: no quoted out-of-the-money {side} with "
                f"|delta| in {self.min_delta:g}-{self.max_delta:g} on the chosen expiration"
                f" ({_band_note(rows, self.min_delta, self.max_delta)})."
            )
        if counts["no_long_leg"]:
            lines.append(
                f"  {counts['no_long_leg']:,} days: no quoted strike beyond the short strike "
                "for the long leg (the file's strikes stop there); a short strike nearer the "
                "money (a higher --min-delta/--max-delta) or quotes further out changes it."
            )
        return "\n".join(lines)


def _listed(rows: pd.DataFrame, examples: int = 2) -> str:
    """What the file lists on those days: the range of the longest listed expiration, and the
    expirations of the first ``examples`` days."""
    longest = rows["longest_dte"]
    known = longest[longest >= 0]
    span = (
        f"the longest listed is {int(known.min())}-{int(known.max())} days out"
        if len(known)
        else "no expiration listed inside the data"
    )
    shown = [
        f"{day.date()}: {listed or 'none'}"
        for day, listed in rows[["quote_date", "listed"]].head(examples).itertuples(index=False)
    ]
    return f"{span}; e.g. {'; '.join(shown)}"


def _band_note(rows: pd.DataFrame, lo: float, hi: float) -> str:
    below, above = rows["below"].dropna(), rows["above"].dropna()
    if below.empty and above.empty:
        return "the quotes carry no delta and no IV to compute one from: add a delta or iv column"
    parts = []
    if len(below):
        parts.append(f"nearest quoted below the band {below.max():.3f}")
    if len(above):
        parts.append(f"above it {above.min():.3f}")
    wider_lo = min(lo, float(below.max())) if len(below) else lo
    wider_hi = max(hi, float(above.min())) if len(above) else hi
    return (
        "; ".join(parts)
        + f"; e.g. --min-delta {np.floor(wider_lo * 100) / 100:g} "
        + f"--max-delta {np.ceil(wider_hi * 100) / 100:g} widens the band to them"
    )


def _iso(ordinal: int) -> str:
    return str(np.datetime64(int(ordinal), "D"))


def entry_spreads(
    book: ChainBook,
    dates: pd.DatetimeIndex,
    tickers: tuple[str, ...],
    close: FloatArray,
    config: BacktestConfig,
    *,
    inside_data: bool = True,
) -> EntrySpreads:
    """The engine's entry on every (ticker, quote day) of ``book``, and why not where none.

    Parameters
    ----------
    book, dates, tickers, close
        A chain book aligned on ``dates`` x ``tickers`` (``chains.chain_book``) and the closes
        the engine uses as spot (``MarketPanel.close``).
    config
        The strategy (side, target days to expiry, delta band), the widths and dividend yields
        of its conventions, and the rate.
    inside_data
        True (a backtest): no entry on the last day, and the expiration must settle by the last
        day (``after_data``). False (comparing prices on quote days, ``chains calibrate``):
        every quote day, any expiration.
    """
    sp = config.spread
    call = sp.strategy == "bear_call"
    want_put = 0 if call else 1
    day_ord = dates.values.astype("datetime64[D]").astype(np.int64)
    n_days = len(dates)
    last_day = int(day_ord[-1]) if inside_data else _NEVER
    rows: list[dict[str, object]] = []
    for j, ticker in enumerate(tickers):
        width = config.convention(ticker).width_pct
        width_frac = float(width if width is not None else sp.width_pct) / 100
        q = config.dividend_yield(ticker)
        for d in range(n_days - 1 if inside_data else n_days):
            lo, hi = int(book.day_start[j, d]), int(book.day_start[j, d + 1])
            if hi <= lo:
                continue
            today = int(day_ord[d])
            next_day = int(day_ord[d + 1]) if d + 1 < n_days else today + 1
            s = float(close[d, j])
            exp_ord, best, long_row, best_delta = chain_entry(
                lo,
                hi,
                book.put,
                book.expiry,
                book.strike,
                book.bid,
                book.ask,
                book.delta,
                book.iv,
                call,
                s,
                today,
                sp.target_dte,
                next_day,
                last_day,
                config.rate,
                q,
                sp.min_delta,
                sp.max_delta,
                width_frac,
            )
            side = np.arange(lo, hi)[book.put[lo:hi] == want_put]
            listed = np.unique(book.expiry[side])
            inside = listed[(listed <= last_day) & (listed >= next_day)]
            row: dict[str, object] = {
                "underlying": ticker,
                "quote_date": dates[d],
                "spot": s,
                "listed": ", ".join(_iso(e) for e in listed),
                "longest_dte": int(inside.max() - today) if len(inside) else -1,
            }
            if long_row >= 0:
                mid = 0.5 * (book.bid[best] + book.ask[best]) - 0.5 * (
                    book.bid[long_row] + book.ask[long_row]
                )
                half = 0.5 * (book.ask[best] - book.bid[best]) + 0.5 * (
                    book.ask[long_row] - book.bid[long_row]
                )
                row.update(
                    outcome="spread",
                    expiration=pd.Timestamp(_iso(exp_ord)),
                    dte=int(exp_ord - today),
                    short_strike=float(book.strike[best]),
                    long_strike=float(book.strike[long_row]),
                    short_delta=float(best_delta),
                    chain_mid=float(mid),
                    half_spread=float(half),
                    short_row=int(best),
                    long_row=int(long_row),
                )
            elif exp_ord < 0:
                far = listed[listed >= max(today + sp.target_dte, next_day)]
                row["outcome"] = "after_data" if len(far) else "no_expiration"
            elif best < 0:
                row["outcome"] = "no_strike"
                row.update(_nearest_outside(book, side, exp_ord, s, today, config, q, call))
            else:
                row["outcome"] = "no_long_leg"
            rows.append(row)
    columns = [
        "underlying",
        "quote_date",
        "outcome",
        "spot",
        "expiration",
        "dte",
        "short_strike",
        "long_strike",
        "short_delta",
        "chain_mid",
        "half_spread",
        "short_row",
        "long_row",
        "listed",
        "longest_dte",
        "below",
        "above",
    ]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    frame["quote_date"] = pd.to_datetime(frame["quote_date"])
    frame["expiration"] = pd.to_datetime(frame["expiration"])
    return EntrySpreads(
        frame,
        sp.strategy,
        sp.target_dte,
        sp.min_delta,
        sp.max_delta,
        pd.Timestamp(dates[-1]) if inside_data else None,
        book.source,
    )


def _nearest_outside(
    book: ChainBook,
    side: np.ndarray,
    exp_ord: int,
    s: float,
    today: int,
    config: BacktestConfig,
    q: float,
    call: bool,
) -> dict[str, float]:
    """The quoted out-of-the-money |delta| nearest under and over the band on ``exp_ord``
    (the chain's delta, else Black–Scholes from its IV, as ``kernels.chain_entry``)."""
    sp = config.spread
    rows = side[book.expiry[side] == exp_ord]
    k, bid, ask = book.strike[rows], book.bid[rows], book.ask[rows]
    keep = ((k > s) if call else (k < s)) & (ask > 0) & (ask >= bid) & (bid >= 0)
    rows, k = rows[keep], k[keep]
    delta = book.delta[rows].copy()
    iv = book.iv[rows]
    need = ~(delta >= 0) & (iv > 0)
    if need.any():
        t = (exp_ord - today) / 365.0
        delta[need] = np.abs(
            np.asarray(bs_delta(s, k[need], t, config.rate, iv[need], "call" if call else "put", q))
        )
    under = delta[delta < sp.min_delta]
    over = delta[delta > sp.max_delta]
    return {
        "below": float(under.max()) if len(under) else float("nan"),
        "above": float(over.min()) if len(over) else float("nan"),
    }
