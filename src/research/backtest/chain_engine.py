"""Credit spreads priced from option chains: the same day loop, sizing, limits, cash interest,
trade records and outputs as ``research.backtest.engine._run``, with quotes instead of a model.

Per configuration and day (kernel ``_run_chains``):

1. Cash earns the rate (as in the model kernel).
2. Settlement: a spread settles on its *settlement day*, the last panel day on or before its
   listed expiration date (``settlement_day``, computed once at entry): a Saturday-dated
   expiration (US monthlies before 2015, e.g. every ORATS history) settles on the Friday, one
   dated on an exchange holiday on the trading day before. An AM-settled one — a monthly
   expiration (``engine._monthly_on``: a third Friday, the Saturday right after one, or a
   Thursday whose next day is a third Friday that is not a trading day, as SPX lists its
   monthly on the Thursday before Good Friday) of an underlying whose
   ``conventions.am_settled`` is on (SPX, NDX, RUT by default) — settles at intrinsic value
   from that day's *open*, before anything else that day (``engine._settle_at_open``; no
   profit-target or stop check, no mark at that close). A PM-settled one settles at intrinsic
   value from that day's close, in step 3's loop. No fees are paid at settlement. The trading
   days the engine knows are the panel's days (``engine``'s docstring); a third-Friday weekly
   (SPXW) cannot be told from the monthly by its date and is AM-settled too.
3. Every other open spread: both legs are looked up in the day's quotes; with both quoted
   (ask > 0 and ask >= bid) the spread is marked at its mid ``mid_short - mid_long`` and its
   closing price is ``mid + chain_fill x (half spread of the short + half spread of the long)``
   (chain_fill 0: at mid; 1: the natural price, the short's ask minus the long's bid), never
   below 0 or above the width; the profit target and stop are checked on that closing price.
   A missing quote either carries the last mark and closing price (no exit that day) or closes
   the spread at the last closing price (``missing_quote``), and is counted (``missing``).
4. Entries, per ticker in order: the IV-percentile filter; the expiration: the first listed on
   or after ``target_dte`` calendar days whose settlement day is after today (not dated before
   the next panel day) and not after the data's last day; the short strike:
   out of the money, quoted, |delta| in [min_delta, max_delta] closest to the middle (the
   chain's delta, else Black–Scholes delta from the chain's IV with the config's rate and
   dividend yield); the long strike: the quoted strike of the same expiration closest to
   ``width_pct`` of spot further out (at least the next strike). The credit is ``mid -
   chain_fill x (half spreads)``; it must be below the width and clear its costs (the model
   kernel's ``_clears_costs``, with the quoted half-spreads). Sizing and limits are the model
   kernel's; the contract multiplier and fees are the underlying's (``conventions``).
5. Equity = cash + open spreads marked at mid; heat = max loss at risk / equity.

Everything at day t uses quotes, closes (opens, for an AM settlement on day t) and labels of
days up to t.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from research.backtest.engine import (
    F_CONTRACTS,
    F_CREDIT,
    F_DEBIT,
    F_DELTA,
    F_DTE,
    F_ENTRY,
    F_EXIT,
    F_EXPIRY,
    F_IV,
    F_IVP,
    F_KL,
    F_KS,
    F_MAXLOSS,
    F_MID_IN,
    F_MID_OUT,
    F_MULT,
    F_PNL,
    F_REASON,
    F_REGIME,
    F_SPOT,
    F_STATE,
    F_TICKER,
    N_FIELDS,
    REASON_END,
    REASON_EXPIRY,
    REASON_MISSING,
    REASON_PT,
    REASON_SL,
    S_BELOW_COSTS,
    S_ENTRIES,
    S_IV_FILTER,
    S_LIMITS,
    S_MISSING,
    S_NO_STRIKE,
    S_SIZE_ZERO,
    STATE_OPEN,
    _clears_costs,
    _contracts,
    _fit_limits,
    _intrinsic,
    _monthly_on,
    _record,
    _record_settled,
    _settle_at_open,
)
from research.backtest.pricing import bs_delta_nb

__all__ = ["settlement_day"]

# extra per-position fields kept beside the trade record: last mark and last closing price,
# settlement day (panel day index) and whether it settles at the open (1.0) or the close (0.0)
_LAST_MARK, _LAST_CLOSE, _SETTLE_DAY, _SETTLE_AM = 0, 1, 2, 3
_N_EXTRA = 4


@njit(cache=True)
def settlement_day(day_ord: np.ndarray, expiration: int) -> int:
    """Panel day on which a spread expiring on a calendar day settles: the last one on or
    before it (a Saturday or holiday expiration settles on the trading day before). The panel's
    days are the trading days the engine knows: a weekday missing from them is taken for a
    holiday.

    Parameters
    ----------
    day_ord : np.ndarray
        The panel's days as int64 calendar-day ordinals (days since 1970-01-01), increasing.
    expiration : int
        The listed expiration date as a calendar-day ordinal.

    Returns
    -------
    int
        Index into ``day_ord`` of the last day ``<= expiration`` (−1 when there is none).
    """
    return int(np.searchsorted(day_ord, expiration, side="right")) - 1


@njit(cache=True)
def _before(put_a: int, exp_a: int, k_a: float, put_b: int, exp_b: int, k_b: float) -> bool:
    """(type, expiry, strike) of a row ordered before the key."""
    if put_a != put_b:
        return put_a < put_b
    if exp_a != exp_b:
        return exp_a < exp_b
    return k_a < k_b


@njit(cache=True)
def _lower_bound(lo, hi, put, expiry, strike, p, e, k):  # type: ignore[no-untyped-def]
    """First row in [lo, hi) not ordered before (p, e, k)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if _before(put[mid], expiry[mid], strike[mid], p, e, k):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _quoted(bid: float, ask: float) -> bool:
    return ask > 0.0 and ask >= bid and bid >= 0.0


@njit(cache=True)
def _pair(bid, ask, short, long):  # type: ignore[no-untyped-def]
    """Mid (short minus long) and half spread (sum of both legs' half spreads) of a spread
    from the quotes of its two rows."""
    mid = 0.5 * (bid[short] + ask[short]) - 0.5 * (bid[long] + ask[long])
    half = 0.5 * (ask[short] - bid[short]) + 0.5 * (ask[long] - bid[long])
    return mid, half


@njit(cache=True)
def _find(lo, hi, put, expiry, strike, p, e, k):  # type: ignore[no-untyped-def]
    """Row of exactly (p, e, k) in [lo, hi), or -1."""
    i = _lower_bound(lo, hi, put, expiry, strike, p, e, k)
    if i < hi and put[i] == p and expiry[i] == e and strike[i] == k:
        return i
    return -1


@njit(cache=True)
def _chain_entry(  # type: ignore[no-untyped-def]
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
    today,
    dte,
    next_day,
    last_day,
    r,
    q,
    min_d,
    max_d,
    width_frac,
):
    """The spread the day's quotes (rows ``[lo, hi)``) offer: ``(expiration, short row, long
    row, |delta|)``, the long row −1 when there is none (no listed expiration inside the data,
    no quoted strike in the delta band, or no long leg). The expiration is the first listed
    on or after ``today + dte`` and on or after ``next_day`` (the next panel day: an
    expiration before it would settle today). Shared by ``_run_chains`` and ``trade_paths``."""
    want_put = 0 if call else 1
    first = max(today + dte, next_day)
    e0 = _lower_bound(lo, hi, put, expiry, strike, want_put, first, -1.0)
    if e0 >= hi or put[e0] != want_put or expiry[e0] > last_day:
        return -1, -1, -1, np.nan
    exp_ord = expiry[e0]
    e1 = _lower_bound(e0, hi, put, expiry, strike, want_put, exp_ord + 1, -1.0)
    t = (exp_ord - today) / 365.0
    mid_d = 0.5 * (min_d + max_d)
    best = -1
    best_gap = np.inf
    best_delta = np.nan
    for row in range(e0, e1):
        k = strike[row]
        if (call and k <= s) or (not call and k >= s):
            continue
        if not _quoted(bid[row], ask[row]):
            continue
        dl = cdelta[row]
        if not (dl >= 0.0) and civ[row] > 0.0:
            dl = abs(bs_delta_nb(s, k, t, r, q, civ[row], call))
        if not (dl >= min_d and dl <= max_d):
            continue
        if abs(dl - mid_d) < best_gap:
            best_gap = abs(dl - mid_d)
            best = row
            best_delta = dl
    if best < 0:
        return exp_ord, -1, -1, np.nan
    ks = strike[best]
    want_k = ks + width_frac * s if call else ks - width_frac * s
    long_row = -1
    long_gap = np.inf
    for row in range(e0, e1):
        k = strike[row]
        if (call and k <= ks) or (not call and k >= ks):
            continue
        if not _quoted(bid[row], ask[row]):
            continue
        gap = abs(k - want_k)
        # ties go to the strike further out
        if gap < long_gap or (gap == long_gap and abs(k - ks) > abs(strike[long_row] - ks)):
            long_gap = gap
            long_row = row
    return exp_ord, best, long_row, best_delta


@njit(parallel=True, cache=True)
def _run_chains(  # type: ignore[no-untyped-def]  # see run.run_kernel for the arrays
    day_ord,
    close,
    open_,
    ivp,
    regime,
    regime_set,
    day_start,
    put,
    expiry,
    strike,
    bid,
    ask,
    cdelta,
    civ,
    is_call,
    min_d,
    max_d,
    dte,
    width_pct,
    min_ivp,
    pt,
    sl,
    fill,
    missing_close,
    fee,
    tick,
    cm,
    am,  # per config x ticker (am: 1 = monthly expirations AM-settled)
    scaled,
    n_fixed,
    risk_pct,
    mult_table,
    unknown_mult,
    max_pos,
    max_heat,
    max_und,
    init_eq,
    rate,
    growth,
    div,
    record,
    equity_out,
    heat_out,
    trades_out,
    ntrades_out,
    stats_out,
):
    n_days, n_tk = close.shape
    n_cfg = is_call.shape[0]
    cap_pos = 1
    for c in range(n_cfg):
        cap_pos = max(cap_pos, max_pos[c])
    max_trades = trades_out.shape[1]
    last_day = day_ord[n_days - 1]
    for c in prange(n_cfg):
        call = is_call[c] == 1
        want_put = 0 if call else 1
        codes = regime[regime_set[c]]
        r = rate[c]
        p_tk = np.empty(cap_pos, np.int64)
        p_num = np.empty((cap_pos, N_FIELDS))
        p_last = np.empty((cap_pos, _N_EXTRA))
        # scratch of the AM settlement (engine._settle_at_open): due today, debit at the open
        due = np.zeros(cap_pos, np.bool_)
        at_open = np.zeros(cap_pos)
        n_open = 0
        realized = init_eq[c]
        n_tr = 0
        for d in range(n_days):
            # 1. cash earns the rate
            if d > 0:
                realized *= growth[c]
            # 2. AM settlement at today's open, before anything else
            for i in range(n_open):
                due[i] = p_last[i, _SETTLE_AM] == 1.0 and p_last[i, _SETTLE_DAY] <= d
                if due[i]:
                    j = p_tk[i]
                    at_open[i] = _intrinsic(open_[d, j], p_num[i, F_KS], p_num[i, F_KL], call)
            n_before = n_open
            n_open, realized = _settle_at_open(
                n_open, due, at_open, p_tk, p_num, p_last.T, cm[c], realized
            )
            n_tr = _record_settled(
                trades_out, c, n_tr, p_num, p_tk, n_before, n_open, d, fee[c], record, max_trades
            )
            # 3. PM settlement (step 2), marks and exits at the close
            unreal = 0.0
            i = 0
            while i < n_open:
                j = p_tk[i]
                ks = p_num[i, F_KS]
                kl = p_num[i, F_KL]
                width = abs(kl - ks)
                credit = p_num[i, F_CREDIT]
                ncon = p_num[i, F_CONTRACTS]
                exp_ord = int(p_num[i, F_EXPIRY])
                reason = -1
                cost = 0.0
                if d >= p_last[i, _SETTLE_DAY]:  # PM settlement at the close
                    debit = _intrinsic(close[d, j], ks, kl, call)
                    value = debit
                    reason = REASON_EXPIRY
                else:
                    lo = day_start[j, d]
                    hi = day_start[j, d + 1]
                    a = _find(lo, hi, put, expiry, strike, want_put, exp_ord, ks)
                    b = _find(lo, hi, put, expiry, strike, want_put, exp_ord, kl)
                    cost = 2.0 * fee[c, j] * ncon
                    if a >= 0 and b >= 0 and _quoted(bid[a], ask[a]) and _quoted(bid[b], ask[b]):
                        mid, half = _pair(bid, ask, a, b)
                        value = min(max(mid, 0.0), width)
                        debit = min(max(mid + fill[c] * half, 0.0), width)
                        p_last[i, _LAST_MARK] = value
                        p_last[i, _LAST_CLOSE] = debit
                        if debit <= credit * (1.0 - pt[c]):
                            reason = REASON_PT
                        elif debit - credit >= sl[c] * credit:
                            reason = REASON_SL
                        elif d == n_days - 1:
                            reason = REASON_END
                    else:
                        stats_out[c, S_MISSING] += 1
                        value = p_last[i, _LAST_MARK]
                        debit = p_last[i, _LAST_CLOSE]
                        if missing_close[c] == 1:
                            reason = REASON_MISSING
                        elif d == n_days - 1:
                            reason = REASON_END
                if reason >= 0:
                    pnl = (credit - debit) * cm[c, j] * ncon - cost
                    realized += pnl
                    if record and n_tr < max_trades:
                        _record(
                            trades_out,
                            c,
                            n_tr,
                            p_num[i],
                            d,
                            reason,
                            debit,
                            value,
                            pnl - 2.0 * fee[c, j] * ncon,
                        )
                    n_tr += 1
                    n_open -= 1
                    p_tk[i] = p_tk[n_open]
                    for f in range(N_FIELDS):
                        p_num[i, f] = p_num[n_open, f]
                    for f in range(_N_EXTRA):
                        p_last[i, f] = p_last[n_open, f]
                    continue
                unreal += (credit - value) * cm[c, j] * ncon
                i += 1
            equity_now = realized + unreal
            # 4. entries
            if d < n_days - 1:
                heat = 0.0
                for i in range(n_open):
                    heat += p_num[i, F_MAXLOSS] * cm[c, p_tk[i]] * p_num[i, F_CONTRACTS]
                for j in range(n_tk):
                    if n_open >= max_pos[c]:
                        break
                    lo = day_start[j, d]
                    hi = day_start[j, d + 1]
                    if hi <= lo:
                        continue
                    if not (ivp[d, j] >= min_ivp[c]):
                        stats_out[c, S_IV_FILTER] += 1
                        continue
                    s = close[d, j]
                    exp_ord, best, long_row, best_delta = _chain_entry(
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
                        dte[c],
                        day_ord[d + 1],
                        last_day,
                        r,
                        div[c, j],
                        min_d[c],
                        max_d[c],
                        width_pct[c, j],
                    )
                    if long_row < 0:
                        stats_out[c, S_NO_STRIKE] += 1
                        continue
                    ks = strike[best]
                    kl = strike[long_row]
                    width = abs(kl - ks)
                    mid, half = _pair(bid, ask, best, long_row)
                    credit = mid - fill[c] * half
                    if not (
                        credit < width
                        and _clears_costs(
                            credit, fill[c] * half, fee[c, j], cm[c, j], tick[c, j], s, sl[c]
                        )
                    ):
                        stats_out[c, S_BELOW_COSTS] += 1
                        continue
                    max_loss = width - credit
                    code = codes[d, j]
                    mult = unknown_mult[c] if code < 0 else mult_table[c, code]
                    risk_pc = max_loss * cm[c, j]
                    ncon = _contracts(equity_now, risk_pc, mult, scaled[c], risk_pct[c], n_fixed[c])
                    if ncon < 1:
                        stats_out[c, S_SIZE_ZERO] += 1
                        continue
                    ncon = _fit_limits(
                        ncon,
                        risk_pc,
                        equity_now,
                        heat,
                        p_tk,
                        p_num,
                        n_open,
                        j,
                        max_heat[c],
                        max_und[c],
                        cm[c],
                    )
                    if ncon < 1:
                        stats_out[c, S_LIMITS] += 1
                        continue
                    k = n_open
                    p_tk[k] = j
                    p_num[k, F_TICKER] = j
                    p_num[k, F_ENTRY] = d
                    p_num[k, F_EXIT] = -1
                    p_num[k, F_EXPIRY] = exp_ord
                    p_num[k, F_KS] = ks
                    p_num[k, F_KL] = kl
                    p_num[k, F_CREDIT] = credit
                    p_num[k, F_MAXLOSS] = max_loss
                    p_num[k, F_DELTA] = best_delta
                    p_num[k, F_DTE] = exp_ord - day_ord[d]
                    p_num[k, F_IVP] = ivp[d, j]
                    p_num[k, F_IV] = civ[best]
                    p_num[k, F_SPOT] = s
                    p_num[k, F_CONTRACTS] = ncon
                    p_num[k, F_PNL] = 0.0
                    p_num[k, F_REASON] = -1
                    p_num[k, F_REGIME] = code
                    p_num[k, F_MULT] = mult
                    p_num[k, F_DEBIT] = np.nan
                    p_num[k, F_MID_IN] = credit + fill[c] * half  # as every kernel writes it
                    p_num[k, F_MID_OUT] = np.nan
                    p_num[k, F_STATE] = STATE_OPEN
                    value = min(max(mid, 0.0), width)
                    p_last[k, _LAST_MARK] = value
                    p_last[k, _LAST_CLOSE] = min(max(mid + fill[c] * half, 0.0), width)
                    p_last[k, _SETTLE_DAY] = settlement_day(day_ord, exp_ord)
                    p_last[k, _SETTLE_AM] = (
                        1.0 if am[c, j] == 1 and _monthly_on(day_ord, exp_ord) else 0.0
                    )
                    n_open += 1
                    heat += risk_pc * ncon
                    realized -= 2.0 * fee[c, j] * ncon
                    unreal += (credit - value) * cm[c, j] * ncon
                    stats_out[c, S_ENTRIES] += 1
                    equity_now = realized + unreal
            # 5. equity and heat
            eq = realized + unreal
            equity_out[c, d] = eq
            at_risk = 0.0
            for i in range(n_open):
                at_risk += p_num[i, F_MAXLOSS] * cm[c, p_tk[i]] * p_num[i, F_CONTRACTS]
            heat_out[c, d] = at_risk / eq if eq > 0.0 else np.nan
        ntrades_out[c] = n_tr
