"""Phase 1 of the shared-path engine: every candidate spread of a strategy, and its price path.

Most dimensions of a grid — regime multipliers, risk per trade, sizing mode, portfolio limits,
label permutations, the IV-percentile filter, profit target and stop loss — do not change which
spread the engine would open on a given day and ticker, nor what it is worth on every later
day: strikes and prices depend on the market, not on size. ``trade_paths`` computes, once per
*strategy* (the parameters ``strategy_key`` lists, on one panel), for every (day, ticker):

- the screening outcome the per-configuration kernels reach before sizing (no IV that day, no
  expiry inside the data, no strike in the delta band, a credit below its costs) and, for a
  candidate, its entry record (strikes, expiry, credit, max loss, delta, IV, spot) and the
  half-spread the stop-loss test of ``kernels.clears_costs`` needs;
- with next-open fills, the fill at the next open (credit, max loss, spot, whether the credit
  still clears its costs);
- its daily path from the day after entry to its settlement day (or the panel's last day): the
  mark (mid), the closing price (debit) at each close, with next-open fills the debit at each
  open, and on chains whether the quotes were missing (marks and debits then carry the last
  quoted ones). On the settlement day — the last panel day on or before the expiration (the
  model's expiry is a panel day; a chain's listed Saturday or holiday expiration settles on the
  trading day before) — the debit is the intrinsic value from that day's close, or, for an
  AM-settled spread (``am``: a monthly expiration, ``kernels.monthly_on``, of an underlying
  whose ``conventions.am_settled`` is on), from that day's open, which phase 2 books before
  anything else that day.

Phase 2 (``research.backtest.portfolio``) walks these candidates per sizing/limits/exit
configuration. Both phases use the same pricing functions and the same floating-point
expressions as ``engine._run`` and ``chain_engine._run_chains`` (the reference kernels), so
their equity, trades and counters are identical (tests/backtest/test_shared_paths.py).

Everything for day t uses closes, opens, IV, quotes and strike grids of days up to t (a path's
value on day t is computed from day t's data and is read by phase 2 on day t only).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from research._typing import PricedBy
from research.backtest import chain_engine, engine, pricing
from research.backtest.kernels import (
    ENTRY_NO_EXPIRY,
    ENTRY_NO_STRIKE,
    F_CREDIT,
    F_DELTA,
    F_DTE,
    F_ENTRY,
    F_EXPIRY,
    F_IV,
    F_IVP,
    F_KL,
    F_KS,
    F_MAXLOSS,
    F_SPOT,
    F_TICKER,
    N_FIELDS,
    atm_vol,
    chain_entry,
    find_quote,
    half_spread,
    intrinsic,
    is_quoted,
    min_half,
    model_entry,
    monthly_on,
    net_ok,
    pair_quotes,
    settlement_day,
    spread_mid,
)
from research.backtest.market_panel import MarketPanel

# screening outcome per (day, ticker), in the order the kernels test them
SCREEN_CANDIDATE = 0
SCREEN_SILENT = 1
"""No IV (model) or no quotes (chain) that day: skipped before the IV-percentile filter."""
SCREEN_SILENT_AFTER_IVP = 2
"""No expiry inside the data (model): skipped after the filter, not counted."""
SCREEN_NO_STRIKE = 3
SCREEN_BELOW_COSTS = 4
# entry fields kept per candidate (the trade record's, see engine.F_*)
ENTRY_FIELDS: tuple[int, ...] = (
    F_TICKER,
    F_ENTRY,
    F_EXPIRY,
    F_KS,
    F_KL,
    F_CREDIT,
    F_MAXLOSS,
    F_DELTA,
    F_DTE,
    F_IVP,
    F_IV,
    F_SPOT,
)
# fields of a fill at the next open
FILL_CREDIT, FILL_MAXLOSS, FILL_SPOT, FILL_DTE, FILL_HALF = range(5)
N_FILL = 5

__all__ = [
    "CODE_VERSION",
    "TradePaths",
    "compute_trade_paths",
    "strategy_groups",
]


def _code_version() -> str:
    """Digest of the code both phases run: a change to it invalidates cached paths."""
    from research.backtest import portfolio

    text = "".join(
        inspect.getsource(module)
        for module in (engine, chain_engine, pricing, portfolio, sys.modules[__name__])
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


CODE_VERSION = ""
"""Filled on first use (``_code_version``)."""


@dataclass(frozen=True, eq=False)
class TradePaths:
    """Phase 1 of one strategy on one panel (see the module docstring).

    Candidates are indexed densely by ``day * n_tickers + ticker``; ``screen`` says which of
    them exist. Paths are flat arrays: candidate ``k`` opened on day ``d`` has its value on day
    ``d + e`` (``e >= 1``) at ``offset[k] + e - 1``.
    """

    key: str
    kind: PricedBy
    lag: int
    """1 with fills at the next open, else 0."""
    screen: np.ndarray
    """int8 days x tickers: ``SCREEN_*``."""
    entry: np.ndarray
    """float64 (days x tickers) x ``engine.N_FIELDS``: the entry record (``ENTRY_FIELDS``)."""
    half: np.ndarray
    """The half-spread of the entry credit (the stop-loss part of ``_clears_costs``)."""
    mid0: np.ndarray
    """The spread's mark on the entry day (close fills)."""
    exp_day: np.ndarray
    """int64 panel day on which the spread settles (the last day on or before its
    expiration)."""
    am: np.ndarray
    """uint8: the spread settles at the open of ``exp_day`` (an AM-settled monthly), else at
    its close."""
    fill: np.ndarray
    """float64 (days x tickers) x ``N_FILL`` with next-open fills (else 0 rows)."""
    fill_ok: np.ndarray
    """int8: the fill's credit clears the fees (its stop-loss test is phase 2's)."""
    offset: np.ndarray
    """int64 start of each candidate's path (−1: none)."""
    value: np.ndarray
    debit: np.ndarray
    open_debit: np.ndarray
    """Debit of an exit at the open (next-open fills; else empty)."""
    open_value: np.ndarray
    """The spread's mid at that open (next-open fills; else empty)."""
    missing: np.ndarray
    """uint8: quotes missing that day (chains; else empty)."""

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in ARRAYS)

    @property
    def candidates(self) -> int:
        """Days x tickers with a spread to open."""
        return int((self.screen == SCREEN_CANDIDATE).sum())


ARRAYS: tuple[str, ...] = (
    "screen",
    "entry",
    "half",
    "mid0",
    "exp_day",
    "am",
    "fill",
    "fill_ok",
    "offset",
    "value",
    "debit",
    "open_debit",
    "open_value",
    "missing",
)
"""The array fields of ``TradePaths`` (what the disk cache stores)."""


MODEL_SCALARS: tuple[str, ...] = (
    "is_call",
    "min_d",
    "max_d",
    "dte",
    "min_steps",
    "next_open",
    "rate",
    "slope",
    "floor",
    "cap",
    "curv",
    "atm_a",
    "atm_b",
)
MODEL_ROWS: tuple[str, ...] = (
    "width_pct",
    "fee",
    "tick",
    "cm",
    "div",
    "hs_pct",
    "hs_min",
    "step_over",
    "am",
)
CHAIN_SCALARS: tuple[str, ...] = ("is_call", "min_d", "max_d", "dte", "rate", "chain_fill")
CHAIN_ROWS: tuple[str, ...] = ("width_pct", "fee", "tick", "cm", "div", "am")
"""The columns of ``run._config_arrays`` phase 1 reads (per config; rows: per ticker too)."""


def strategy_groups(chains: bool, arrays: dict[str, np.ndarray]) -> dict[bytes, list[int]]:
    """Configs by the phase-1 parameters they share (``*_SCALARS``, ``*_ROWS`` of
    ``run._config_arrays``), compared exactly (by their bytes), in first-seen order."""
    scalars, rows = (CHAIN_SCALARS, CHAIN_ROWS) if chains else (MODEL_SCALARS, MODEL_ROWS)
    n = len(arrays["pt"])
    columns = [np.asarray(arrays[name], dtype=float).reshape(n, -1) for name in scalars + rows]
    matrix = np.ascontiguousarray(np.hstack(columns)) if columns else np.empty((n, 0))
    groups: dict[bytes, list[int]] = {}
    for i in range(n):
        groups.setdefault(matrix[i].tobytes(), []).append(i)
    return groups


def path_digest(panel_hash: str, key: bytes, chains: bool) -> str:
    """The cache key of a strategy's paths on a panel (and of the code computing them)."""
    global CODE_VERSION
    if not CODE_VERSION:
        CODE_VERSION = _code_version()
    text = repr((CODE_VERSION, panel_hash, "chain" if chains else "model", key.hex()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---------------------------------------------------------------- model-priced (engine._run)


@njit(cache=True)
def _store_entry(  # type: ignore[no-untyped-def]
    entry, k, j, d, expiry, ks, kl, credit, max_loss, delta, dte, ivp, iv, spot
):
    """A candidate's entry record (the trade record's entry fields)."""
    entry[k, F_TICKER] = j
    entry[k, F_ENTRY] = d
    entry[k, F_EXPIRY] = expiry
    entry[k, F_KS] = ks
    entry[k, F_KL] = kl
    entry[k, F_CREDIT] = credit
    entry[k, F_MAXLOSS] = max_loss
    entry[k, F_DELTA] = delta
    entry[k, F_DTE] = dte
    entry[k, F_IVP] = ivp
    entry[k, F_IV] = iv
    entry[k, F_SPOT] = spot


@njit(parallel=True, cache=True)
def _model_screen(  # type: ignore[no-untyped-def]
    day_ord,
    close,
    open_,
    atm_iv,
    ivp,
    step,
    call,
    min_d,
    max_d,
    dte,
    width_pct,
    min_steps,
    hs_pct,
    hs_min,
    fee,
    tick,
    cm,
    step_over,
    am_row,
    lag,
    r,
    div,
    slope,
    floor,
    cap,
    curv,
    atm_a,
    atm_b,
    screen,
    entry,
    half,
    mid0,
    exp_day,
    am,
    fill,
    fill_ok,
):
    """Screen every (day, ticker) as ``engine._run`` step 4 does, without sizing."""
    n_days, n_tk = close.shape
    for d in prange(n_days):
        for j in range(n_tk):
            screen[d, j] = SCREEN_SILENT
        if d >= n_days - 1 - lag:
            continue
        for j in range(n_tk):
            s = close[d, j]
            if not (atm_iv[d, j] > 0.0):
                continue
            atm = atm_vol(atm_iv[d, j], atm_a, atm_b)
            q = div[j]
            stp = step_over[j] if step_over[j] > 0.0 else step[d, j]
            found, exp_i, ks, kl, w, delta, mid, hs = model_entry(
                day_ord,
                d,
                lag,
                s,
                atm,
                dte,
                r,
                q,
                stp,
                call,
                min_d,
                max_d,
                min_steps,
                width_pct[j],
                hs_pct[j],
                hs_min[j],
                tick[j],
                slope,
                floor,
                cap,
                curv,
            )
            if found == ENTRY_NO_EXPIRY:
                screen[d, j] = SCREEN_SILENT_AFTER_IVP
                continue
            if found == ENTRY_NO_STRIKE:
                screen[d, j] = SCREEN_NO_STRIKE
                continue
            credit = mid - hs
            if not net_ok(credit, fee[j], cm[j], tick[j], s):
                screen[d, j] = SCREEN_BELOW_COSTS
                continue
            k = d * n_tk + j
            screen[d, j] = SCREEN_CANDIDATE
            _store_entry(
                entry,
                k,
                j,
                d,
                exp_i,
                ks,
                kl,
                credit,
                w - credit,
                delta,
                day_ord[exp_i] - day_ord[d],
                ivp[d, j],
                atm,
                s,
            )
            half[k] = hs
            mid0[k] = mid
            exp_day[k] = exp_i
            am[k] = 1 if am_row[j] == 1 and monthly_on(day_ord, day_ord[exp_i]) else 0
            if lag == 1:
                # the order fills at the next open, priced with the entry day's IV
                s1 = open_[d + 1, j]
                t1 = (day_ord[exp_i] - day_ord[d + 1]) / 365.0
                mid1 = spread_mid(s1, ks, kl, t1, r, q, atm, call, slope, floor, cap, curv)
                hs1 = half_spread(mid1, hs_pct[j], min_half(hs_min[j], tick[j], s1))
                credit1 = mid1 - hs1
                fill_ok[k] = 1 if net_ok(credit1, fee[j], cm[j], tick[j], s1) else 0
                fill[k, FILL_CREDIT] = credit1
                fill[k, FILL_MAXLOSS] = abs(kl - ks) - credit1
                fill[k, FILL_SPOT] = s1
                fill[k, FILL_DTE] = day_ord[exp_i] - day_ord[d + 1]
                fill[k, FILL_HALF] = hs1


@njit(parallel=True, cache=True)
def _model_paths(  # type: ignore[no-untyped-def]
    day_ord,
    close,
    open_,
    mark_iv,
    call,
    hs_pct,
    hs_min,
    tick,
    lag,
    r,
    div,
    slope,
    floor,
    cap,
    curv,
    atm_a,
    atm_b,
    entry,
    exp_day,
    am,
    cands,
    offset,
    value,
    debit,
    open_debit,
    open_value,
):
    """Marks and closing prices of every candidate (``engine._run`` steps 1 to 3); on the
    expiry day the intrinsic value from the open (AM-settled) or the close."""
    n_days, n_tk = close.shape
    for n in prange(len(cands)):
        k = cands[n]
        d0 = k // n_tk
        j = k - d0 * n_tk
        ks = entry[k, F_KS]
        kl = entry[k, F_KL]
        exp_i = exp_day[k]
        last = min(exp_i, n_days - 1)
        base = offset[k]
        q = div[j]
        for d in range(d0 + 1, last + 1):
            pos = base + d - d0 - 1
            s = close[d, j]
            if d >= exp_i:
                v = intrinsic(open_[d, j] if am[k] == 1 else s, ks, kl, call)
                value[pos] = v
                debit[pos] = v
            else:
                t = (day_ord[exp_i] - day_ord[d]) / 365.0
                v = spread_mid(
                    s,
                    ks,
                    kl,
                    t,
                    r,
                    q,
                    atm_vol(mark_iv[d, j], atm_a, atm_b),
                    call,
                    slope,
                    floor,
                    cap,
                    curv,
                )
                value[pos] = v
                debit[pos] = min(
                    v + half_spread(v, hs_pct[j], min_half(hs_min[j], tick[j], s)),
                    abs(kl - ks),
                )
            if lag == 1 and d >= d0 + 2:
                # an exit ordered at the previous close, filled at this open
                so = open_[d, j]
                t = (day_ord[exp_i] - day_ord[d]) / 365.0
                v = spread_mid(
                    so,
                    ks,
                    kl,
                    t,
                    r,
                    q,
                    atm_vol(mark_iv[d - 1, j], atm_a, atm_b),
                    call,
                    slope,
                    floor,
                    cap,
                    curv,
                )
                open_debit[pos] = min(
                    v + half_spread(v, hs_pct[j], min_half(hs_min[j], tick[j], so)),
                    abs(kl - ks),
                )
                open_value[pos] = v


# ------------------------------------------------------- chain-priced (chain_engine._run_chains)


@njit(parallel=True, cache=True)
def _chain_screen(  # type: ignore[no-untyped-def]
    day_ord,
    close,
    ivp,
    day_start,
    put,
    expiry,
    strike,
    bid,
    ask,
    cdelta,
    civ,
    call,
    min_d,
    max_d,
    dte,
    width_pct,
    fill_frac,
    fee,
    tick,
    cm,
    r,
    div,
    am_row,
    screen,
    entry,
    half,
    mid0,
    exp_day,
    am,
):
    """Screen every (day, ticker) as ``chain_engine._run_chains`` step 4 does, without
    sizing."""
    n_days, n_tk = close.shape
    last_day = day_ord[n_days - 1]
    for d in prange(n_days):
        for j in range(n_tk):
            screen[d, j] = SCREEN_SILENT
        if d >= n_days - 1:
            continue
        for j in range(n_tk):
            lo = day_start[j, d]
            hi = day_start[j, d + 1]
            if hi <= lo:
                continue
            screen[d, j] = SCREEN_NO_STRIKE
            s = close[d, j]
            exp_ord, best, long_row, best_delta = chain_entry(
                lo,
                hi,
                put,
                expiry,
                strike,
                bid,
                ask,
                cdelta,
                civ,
                call,
                s,
                day_ord[d],
                dte,
                day_ord[d + 1],
                last_day,
                r,
                div[j],
                min_d,
                max_d,
                width_pct[j],
            )
            if long_row < 0:
                continue
            ks = strike[best]
            kl = strike[long_row]
            width = abs(kl - ks)
            mid, hf = pair_quotes(bid, ask, best, long_row)
            credit = mid - fill_frac * hf
            if not (credit < width and net_ok(credit, fee[j], cm[j], tick[j], s)):
                screen[d, j] = SCREEN_BELOW_COSTS
                continue
            k = d * n_tk + j
            screen[d, j] = SCREEN_CANDIDATE
            _store_entry(
                entry,
                k,
                j,
                d,
                exp_ord,
                ks,
                kl,
                credit,
                width - credit,
                best_delta,
                exp_ord - day_ord[d],
                ivp[d, j],
                civ[best],
                s,
            )
            half[k] = fill_frac * hf
            mid0[k] = min(max(mid, 0.0), width)
            exp_day[k] = settlement_day(day_ord, exp_ord)
            am[k] = 1 if am_row[j] == 1 and monthly_on(day_ord, exp_ord) else 0


@njit(parallel=True, cache=True)
def _chain_paths(  # type: ignore[no-untyped-def]
    day_ord,
    close,
    open_,
    day_start,
    put,
    expiry,
    strike,
    bid,
    ask,
    call,
    fill_frac,
    entry,
    mid0,
    exp_day,
    am,
    cands,
    offset,
    value,
    debit,
    missing,
):
    """Marks and closing prices from the quotes, the last ones carried over missing quotes
    (``chain_engine._run_chains`` steps 2 and 3); on the settlement day the intrinsic value
    from the open (AM-settled) or the close."""
    n_days, n_tk = close.shape
    want_put = 0 if call else 1
    for n in prange(len(cands)):
        k = cands[n]
        d0 = k // n_tk
        j = k - d0 * n_tk
        ks = entry[k, F_KS]
        kl = entry[k, F_KL]
        width = abs(kl - ks)
        exp_ord = int(entry[k, F_EXPIRY])
        last = min(exp_day[k], n_days - 1)
        base = offset[k]
        # the entry day's quotes: the mark and closing price a missing quote carries
        lo = day_start[j, d0]
        hi = day_start[j, d0 + 1]
        a = find_quote(lo, hi, put, expiry, strike, want_put, exp_ord, ks)
        b = find_quote(lo, hi, put, expiry, strike, want_put, exp_ord, kl)
        mid, hf = pair_quotes(bid, ask, a, b)
        last_mark = mid0[k]
        last_close = min(max(mid + fill_frac * hf, 0.0), width)
        for d in range(d0 + 1, last + 1):
            pos = base + d - d0 - 1
            missing[pos] = 0
            if d >= exp_day[k]:
                v = intrinsic(open_[d, j] if am[k] == 1 else close[d, j], ks, kl, call)
                value[pos] = v
                debit[pos] = v
                continue
            lo = day_start[j, d]
            hi = day_start[j, d + 1]
            a = find_quote(lo, hi, put, expiry, strike, want_put, exp_ord, ks)
            b = find_quote(lo, hi, put, expiry, strike, want_put, exp_ord, kl)
            if a >= 0 and b >= 0 and is_quoted(bid[a], ask[a]) and is_quoted(bid[b], ask[b]):
                mid, hf = pair_quotes(bid, ask, a, b)
                last_mark = min(max(mid, 0.0), width)
                last_close = min(max(mid + fill_frac * hf, 0.0), width)
            else:
                missing[pos] = 1
            value[pos] = last_mark
            debit[pos] = last_close


def _layout(
    screen: np.ndarray, exp_day: np.ndarray, ok: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Candidates that need a path, each one's offset, and the total path length."""
    n_days, n_tk = screen.shape
    flat = screen.ravel() == SCREEN_CANDIDATE
    if ok is not None:
        flat &= ok.astype(bool)
    cands = np.flatnonzero(flat).astype(np.int64)
    d0 = cands // n_tk
    length = np.minimum(exp_day[cands], n_days - 1) - d0
    offset = np.full(n_days * n_tk, -1, np.int64)
    starts = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    offset[cands] = starts
    return cands, offset, int(length.sum())


def compute_trade_paths(
    panel: MarketPanel, arrays: dict[str, np.ndarray], index: int, key: str = ""
) -> TradePaths:
    """Phase 1 for config ``index`` of ``arrays`` (``run._config_arrays``) on ``panel``."""

    a, i = arrays, index
    n_days, n_tk = panel.close.shape
    n = n_days * n_tk
    screen = np.empty((n_days, n_tk), np.int8)
    entry = np.full((n, N_FIELDS), np.nan)
    half = np.zeros(n)
    mid0 = np.zeros(n)
    exp_day = np.zeros(n, np.int64)
    am = np.zeros(n, np.uint8)
    am_row = np.ascontiguousarray(a["am"][i], dtype=np.int64)
    day_ord = panel.day_ordinals
    opens = panel.opens()
    close = np.ascontiguousarray(panel.close, dtype=float)
    ivp = np.ascontiguousarray(np.nan_to_num(panel.iv_percentile, nan=-1.0), dtype=float)
    call = bool(a["is_call"][i] == 1)
    empty = np.empty(0)
    if panel.chains is not None:
        book = panel.chains
        fill_frac = float(a["chain_fill"][i])
        _chain_screen(
            day_ord,
            close,
            ivp,
            book.day_start,
            book.put,
            book.expiry,
            book.strike,
            book.bid,
            book.ask,
            book.delta,
            book.iv,
            call,
            float(a["min_d"][i]),
            float(a["max_d"][i]),
            int(a["dte"][i]),
            a["width_pct"][i],
            fill_frac,
            a["fee"][i],
            a["tick"][i],
            a["cm"][i],
            float(a["rate"][i]),
            a["div"][i],
            am_row,
            screen,
            entry,
            half,
            mid0,
            exp_day,
            am,
        )
        cands, offset, total = _layout(screen, exp_day, None)
        value, debit = np.empty(total), np.empty(total)
        missing = np.empty(total, np.uint8)
        _chain_paths(
            day_ord,
            close,
            opens,
            book.day_start,
            book.put,
            book.expiry,
            book.strike,
            book.bid,
            book.ask,
            call,
            fill_frac,
            entry,
            mid0,
            exp_day,
            am,
            cands,
            offset,
            value,
            debit,
            missing,
        )
        return TradePaths(
            key=key,
            kind="chain",
            lag=0,
            screen=screen,
            entry=entry,
            half=half,
            mid0=mid0,
            exp_day=exp_day,
            am=am,
            fill=np.empty((0, N_FILL)),
            fill_ok=np.empty(0, np.int8),
            offset=offset,
            value=value,
            debit=debit,
            open_debit=empty,
            open_value=empty,
            missing=missing,
        )
    lag = int(a["next_open"][i])
    fill = np.full((n, N_FILL), np.nan) if lag else np.empty((0, N_FILL))
    fill_ok = np.zeros(n if lag else 0, np.int8)
    pricing_args = (
        float(a["rate"][i]),
        a["div"][i],
        float(a["slope"][i]),
        float(a["floor"][i]),
        float(a["cap"][i]),
        float(a["curv"][i]),
        float(a["atm_a"][i]),
        float(a["atm_b"][i]),
    )
    _model_screen(
        day_ord,
        close,
        opens,
        np.ascontiguousarray(panel.atm_iv, dtype=float),
        ivp,
        panel.steps_2d(),
        call,
        float(a["min_d"][i]),
        float(a["max_d"][i]),
        int(a["dte"][i]),
        a["width_pct"][i],
        float(a["min_steps"][i]),
        a["hs_pct"][i],
        a["hs_min"][i],
        a["fee"][i],
        a["tick"][i],
        a["cm"][i],
        a["step_over"][i],
        am_row,
        lag,
        *pricing_args,
        screen,
        entry,
        half,
        mid0,
        exp_day,
        am,
        fill if lag else np.empty((1, N_FILL)),
        fill_ok if lag else np.empty(1, np.int8),
    )
    cands, offset, total = _layout(screen, exp_day, fill_ok if lag else None)
    value, debit = np.empty(total), np.empty(total)
    open_debit = np.full(total, np.nan) if lag else np.empty(1)
    open_value = np.full(total, np.nan) if lag else np.empty(1)
    _model_paths(
        day_ord,
        close,
        opens,
        np.ascontiguousarray(panel.mark_iv, dtype=float),
        call,
        a["hs_pct"][i],
        a["hs_min"][i],
        a["tick"][i],
        lag,
        *pricing_args,
        entry,
        exp_day,
        am,
        cands,
        offset,
        value,
        debit,
        open_debit,
        open_value,
    )
    return TradePaths(
        key=key,
        kind="model",
        lag=lag,
        screen=screen,
        entry=entry,
        half=half,
        mid0=mid0,
        exp_day=exp_day,
        am=am,
        fill=fill,
        fill_ok=fill_ok,
        offset=offset,
        value=value,
        debit=debit,
        open_debit=open_debit if lag else empty,
        open_value=open_value if lag else empty,
        missing=np.empty(0, np.uint8),
    )
