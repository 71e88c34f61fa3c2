"""Phase 2 of the shared-path engine: one portfolio pass per sizing/limits/exit configuration
over a strategy's candidate spreads (``research.backtest.trade_paths``).

The day loop is the reference kernels' (``engine._run``, ``chain_engine._run_chains``) with every
price looked up instead of computed: cash growth, AM settlements at the open, fills at the next
open, marks, the profit target and stop loss on each close's closing price, PM settlement at the
close, missing quotes, then entries —
the IV-percentile filter, the stop-loss test of the credit, contracts (fixed or scaled by the
equity, times the regime multiplier of the day's label) cut to the portfolio limits. Positions
live in the same swap-remove arrays in the same order, and every sum is taken in the same order
with the same expressions, so equity, heat, counters and trade records are bit-for-bit the
reference's.

Settlement (the rule of every engine, ``engine``'s docstring): a spread settles on the last
panel day on or before its expiration (``TradePaths.exp_day``). An AM-settled one
(``TradePaths.am``: a monthly expiration of an underlying whose ``conventions.am_settled`` is on)
settles first thing that day at the intrinsic value from the open — before fills at the open
(a pending exit of it is superseded), with no profit-target or stop check and no mark at the
close — through the reference kernels' own ``kernels.settle_at_open``; a PM-settled one at the
intrinsic value from the close. The steps' numbers in ``_portfolio`` are ``engine``'s.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from research.backtest.kernels import (
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
    STATE_ENTRY_PENDING,
    STATE_EXIT_PENDING,
    STATE_OPEN,
    fit_limits,
    settle_at_open,
    short_of_stop,
    size_contracts,
)

# screening codes (trade_paths.SCREEN_*; numba reads module globals as constants)
_CANDIDATE, _SILENT, _SILENT_AFTER_IVP, _NO_STRIKE, _BELOW_COSTS = 0, 1, 2, 3, 4
_FILL_CREDIT, _FILL_MAXLOSS, _FILL_SPOT, _FILL_DTE, _FILL_HALF = 0, 1, 2, 3, 4
# per-position numbers: the trade record's columns (kernels.fit_limits and
# kernels.settle_at_open read them; the latter writes F_DEBIT and F_PNL of a settled one)
_P_CREDIT, _P_MAXLOSS, _P_NCON, _P_ENTRY, _P_CODE, _P_MULT = (
    F_CREDIT,
    F_MAXLOSS,
    F_CONTRACTS,
    F_ENTRY,
    F_REGIME,
    F_MULT,
)


@njit(cache=True)
def _record(  # type: ignore[no-untyped-def]
    out, c, n_tr, entry, fill, half, lag, k, j, num, d, reason, debit, mid_out, pnl
):
    """Write a closed trade in ``engine``'s record layout (a buffer one field wide keeps
    only the P&L)."""
    if out.shape[2] == 1:
        out[c, n_tr, 0] = pnl
        return
    out[c, n_tr, F_TICKER] = j
    out[c, n_tr, F_ENTRY] = num[_P_ENTRY]
    out[c, n_tr, F_EXIT] = d
    out[c, n_tr, F_EXPIRY] = entry[k, F_EXPIRY]
    out[c, n_tr, F_KS] = entry[k, F_KS]
    out[c, n_tr, F_KL] = entry[k, F_KL]
    out[c, n_tr, F_CREDIT] = num[_P_CREDIT]
    out[c, n_tr, F_MAXLOSS] = num[_P_MAXLOSS]
    out[c, n_tr, F_DELTA] = entry[k, F_DELTA]
    out[c, n_tr, F_IVP] = entry[k, F_IVP]
    out[c, n_tr, F_IV] = entry[k, F_IV]
    if lag == 1:
        out[c, n_tr, F_DTE] = fill[k, _FILL_DTE]
        out[c, n_tr, F_SPOT] = fill[k, _FILL_SPOT]
    else:
        out[c, n_tr, F_DTE] = entry[k, F_DTE]
        out[c, n_tr, F_SPOT] = entry[k, F_SPOT]
    out[c, n_tr, F_CONTRACTS] = num[_P_NCON]
    out[c, n_tr, F_PNL] = pnl
    out[c, n_tr, F_REASON] = reason
    out[c, n_tr, F_REGIME] = num[_P_CODE]
    out[c, n_tr, F_MULT] = num[_P_MULT]
    out[c, n_tr, F_DEBIT] = debit
    out[c, n_tr, F_MID_IN] = num[_P_CREDIT] + (fill[k, _FILL_HALF] if lag == 1 else half[k])
    out[c, n_tr, F_MID_OUT] = mid_out
    out[c, n_tr, F_STATE] = STATE_OPEN


@njit(cache=True)
def _remove(p_k, p_tk, p_state, p_reason, p_num, i, last):  # type: ignore[no-untyped-def]
    p_k[i] = p_k[last]
    p_tk[i] = p_tk[last]
    p_state[i] = p_state[last]
    p_reason[i] = p_reason[last]
    for f in range(p_num.shape[1]):
        p_num[i, f] = p_num[last, f]


@njit(parallel=True, cache=True)
def _portfolio(  # type: ignore[no-untyped-def]  # see run._run_shared for the arrays
    screen,
    entry,
    half,
    mid0,
    exp_day,
    am,
    fill,
    fill_ok,
    offset,
    value,
    debit_path,
    open_debit,
    open_value,
    missing,
    lag,
    has_missing,
    ivp,
    regime,
    regime_set,
    fee,
    cm,
    min_ivp,
    pt,
    sl,
    missing_close,
    scaled,
    n_fixed,
    risk_pct,
    mult_table,
    unknown_mult,
    max_pos,
    max_heat,
    max_und,
    init_eq,
    growth,
    record,
    equity_out,
    heat_out,
    trades_out,
    ntrades_out,
    stats_out,
):
    n_days, n_tk = screen.shape
    n_cfg = pt.shape[0]
    cap_pos = 1
    for c in range(n_cfg):
        cap_pos = max(cap_pos, max_pos[c])
    max_trades = trades_out.shape[1]
    for c in prange(n_cfg):
        codes = regime[regime_set[c]]
        p_tk = np.empty(cap_pos, np.int64)
        # candidate, state and reason of the pending exit: rows of one array, so that the AM
        # settlement (kernels.settle_at_open) moves them with the position
        p_int = np.empty((3, cap_pos), np.int64)
        p_k, p_state, p_reason = p_int[0], p_int[1], p_int[2]
        p_num = np.empty((cap_pos, N_FIELDS))
        # scratch of the AM settlement: due today, debit at the open
        due = np.zeros(cap_pos, np.bool_)
        at_open = np.zeros(cap_pos)
        n_open = 0
        realized = init_eq[c]
        n_tr = 0
        for d in range(n_days):
            # 0. cash earns the rate
            if d > 0:
                realized *= growth[c]
            # 1. AM settlement at today's open, before anything else (a pending exit included)
            for i in range(n_open):
                k = p_k[i]
                due[i] = am[k] == 1 and d >= exp_day[k] and p_state[i] != STATE_ENTRY_PENDING
                if due[i]:
                    at_open[i] = debit_path[offset[k] + d - k // n_tk - 1]
            n_before = n_open
            n_open, realized = settle_at_open(
                n_open, due, at_open, p_tk, p_num, p_int, cm, realized
            )
            for i in range(n_before - 1, n_open - 1, -1):  # in the order they settled
                if record and n_tr < max_trades:
                    j = p_tk[i]
                    _record(
                        trades_out,
                        c,
                        n_tr,
                        entry,
                        fill,
                        half,
                        lag,
                        p_k[i],
                        j,
                        p_num[i],
                        d,
                        REASON_EXPIRY,
                        p_num[i, F_DEBIT],
                        p_num[i, F_DEBIT],
                        p_num[i, F_PNL] - 2.0 * fee[j] * p_num[i, _P_NCON],
                    )
                n_tr += 1
            # 2. next-open fills of the orders decided at the previous close
            if lag == 1:
                i = 0
                while i < n_open:
                    state = p_state[i]
                    if state == STATE_OPEN:
                        i += 1
                        continue
                    k = p_k[i]
                    j = p_tk[i]
                    ncon = p_num[i, _P_NCON]
                    if state == STATE_EXIT_PENDING:
                        debit = open_debit[offset[k] + d - k // n_tk - 1]
                        pnl = (p_num[i, _P_CREDIT] - debit) * cm[j] * ncon - 2.0 * fee[j] * ncon
                        realized += pnl
                        if record and n_tr < max_trades:
                            _record(
                                trades_out,
                                c,
                                n_tr,
                                entry,
                                fill,
                                half,
                                lag,
                                k,
                                j,
                                p_num[i],
                                d,
                                p_reason[i],
                                debit,
                                open_value[offset[k] + d - k // n_tk - 1],
                                pnl - 2.0 * fee[j] * ncon,
                            )
                        n_tr += 1
                    else:  # pending entry
                        if fill_ok[k] == 1 and short_of_stop(
                            fill[k, _FILL_CREDIT], fill[k, _FILL_HALF], sl[c]
                        ):
                            p_state[i] = STATE_OPEN
                            p_num[i, _P_ENTRY] = d
                            p_num[i, _P_CREDIT] = fill[k, _FILL_CREDIT]
                            p_num[i, _P_MAXLOSS] = fill[k, _FILL_MAXLOSS]
                            realized -= 2.0 * fee[j] * ncon
                            stats_out[c, S_ENTRIES] += 1
                            i += 1
                            continue
                        stats_out[c, S_BELOW_COSTS] += 1
                    n_open -= 1
                    _remove(p_k, p_tk, p_state, p_reason, p_num, i, n_open)
            # 3. exits and marks at the close (PM settlement)
            unreal = 0.0
            i = 0
            while i < n_open:
                k = p_k[i]
                j = p_tk[i]
                credit = p_num[i, _P_CREDIT]
                ncon = p_num[i, _P_NCON]
                pos = offset[k] + d - k // n_tk - 1
                reason = -1
                if d >= exp_day[k]:  # PM settlement at the close
                    debit = debit_path[pos]
                    value_now = debit
                    reason = REASON_EXPIRY
                    cost = 0.0
                else:
                    value_now = value[pos]
                    debit = debit_path[pos]
                    cost = 2.0 * fee[j] * ncon
                    if has_missing and missing[pos] == 1:
                        stats_out[c, S_MISSING] += 1
                        if missing_close[c] == 1:
                            reason = REASON_MISSING
                        elif d == n_days - 1:
                            reason = REASON_END
                    else:
                        if debit <= credit * (1.0 - pt[c]):
                            reason = REASON_PT
                        elif debit - credit >= sl[c] * credit:
                            reason = REASON_SL
                        elif d == n_days - 1:
                            reason = REASON_END
                        if (
                            lag == 1
                            and d < n_days - 1
                            and (reason == REASON_PT or reason == REASON_SL)
                        ):
                            p_state[i] = STATE_EXIT_PENDING
                            p_reason[i] = reason
                            reason = -1
                if reason >= 0:
                    pnl = (credit - debit) * cm[j] * ncon - cost
                    realized += pnl
                    if record and n_tr < max_trades:
                        _record(
                            trades_out,
                            c,
                            n_tr,
                            entry,
                            fill,
                            half,
                            lag,
                            k,
                            j,
                            p_num[i],
                            d,
                            reason,
                            debit,
                            value_now,
                            pnl - 2.0 * fee[j] * ncon,
                        )
                    n_tr += 1
                    n_open -= 1
                    _remove(p_k, p_tk, p_state, p_reason, p_num, i, n_open)
                    continue
                unreal += (credit - value_now) * cm[j] * ncon
                i += 1
            equity_now = realized + unreal
            # 4. entries (with next-open fills: orders for tomorrow's open)
            if d < n_days - 1 - lag:
                heat = 0.0
                for i in range(n_open):
                    heat += p_num[i, _P_MAXLOSS] * cm[p_tk[i]] * p_num[i, _P_NCON]
                for j in range(n_tk):
                    if n_open >= max_pos[c]:
                        break
                    outcome = screen[d, j]
                    if outcome == _SILENT:
                        continue
                    if not (ivp[d, j] >= min_ivp[c]):
                        stats_out[c, S_IV_FILTER] += 1
                        continue
                    if outcome == _SILENT_AFTER_IVP:
                        continue
                    if outcome == _NO_STRIKE:
                        stats_out[c, S_NO_STRIKE] += 1
                        continue
                    k = d * n_tk + j
                    credit = entry[k, F_CREDIT]
                    if outcome == _BELOW_COSTS or not short_of_stop(credit, half[k], sl[c]):
                        stats_out[c, S_BELOW_COSTS] += 1
                        continue
                    max_loss = entry[k, F_MAXLOSS]
                    code = codes[d, j]
                    mult = unknown_mult[c] if code < 0 else mult_table[c, code]
                    risk_pc = max_loss * cm[j]
                    ncon = size_contracts(
                        equity_now, risk_pc, mult, scaled[c], risk_pct[c], n_fixed[c]
                    )
                    if ncon < 1:
                        stats_out[c, S_SIZE_ZERO] += 1
                        continue
                    ncon = fit_limits(
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
                        cm,
                    )
                    if ncon < 1:
                        stats_out[c, S_LIMITS] += 1
                        continue
                    i = n_open
                    p_k[i] = k
                    p_tk[i] = j
                    p_state[i] = STATE_ENTRY_PENDING if lag == 1 else STATE_OPEN
                    p_reason[i] = -1
                    p_num[i, _P_CREDIT] = credit
                    p_num[i, _P_MAXLOSS] = max_loss
                    p_num[i, _P_NCON] = ncon
                    p_num[i, _P_ENTRY] = d
                    p_num[i, _P_CODE] = code
                    p_num[i, _P_MULT] = mult
                    n_open += 1
                    heat += risk_pc * ncon
                    if lag == 0:
                        realized -= 2.0 * fee[j] * ncon
                        unreal += (credit - mid0[k]) * cm[j] * ncon
                        stats_out[c, S_ENTRIES] += 1
                        equity_now = realized + unreal
            # 5. equity and heat
            eq = realized + unreal
            equity_out[c, d] = eq
            at_risk = 0.0
            for i in range(n_open):
                if p_state[i] != STATE_ENTRY_PENDING:
                    at_risk += p_num[i, _P_MAXLOSS] * cm[p_tk[i]] * p_num[i, _P_NCON]
            heat_out[c, d] = at_risk / eq if eq > 0.0 else np.nan
        ntrades_out[c] = n_tr
