"""Credit spreads priced from option chains: the same day loop, sizing, limits, cash interest,
trade records and outputs as ``research.backtest.engine._run``, with quotes instead of a model.

Per configuration and day (kernel ``_run_chains``):

1. Cash earns the rate (as in the model kernel).
2. Settlement: a spread settles on its *settlement day*, the last panel day on or before its
   listed expiration date (``kernels.settlement_day``, computed once at entry): a Saturday-dated
   expiration (US monthlies before 2015, e.g. every ORATS history) settles on the Friday, one
   dated on an exchange holiday on the trading day before. An AM-settled one — a monthly
   expiration (``kernels.monthly_on``: a third Friday, the Saturday right after one, or a
   Thursday whose next day is a third Friday that is not a trading day, as SPX lists its
   monthly on the Thursday before Good Friday) of an underlying whose
   ``conventions.am_settled`` is on (SPX, NDX, RUT by default) — settles at intrinsic value
   from that day's *open*, before anything else that day (``kernels.settle_at_open``; no
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
   kernel's ``kernels.clears_costs``, with the quoted half-spreads). Sizing and limits are the model
   kernel's; the contract multiplier and fees are the underlying's (``conventions``).
5. Equity = cash + open spreads marked at mid; heat = max loss at risk / equity.

Everything at day t uses quotes, closes (opens, for an AM settlement on day t) and labels of
days up to t.
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
    STATE_OPEN,
    chain_entry,
    clears_costs,
    find_quote,
    fit_limits,
    intrinsic,
    is_quoted,
    monthly_on,
    pair_quotes,
    record_settled,
    record_trade,
    settle_at_open,
    settlement_day,
    size_contracts,
)

__all__: list[str] = []

# extra per-position fields kept beside the trade record: last mark and last closing price,
# settlement day (panel day index) and whether it settles at the open (1.0) or the close (0.0)
_LAST_MARK, _LAST_CLOSE, _SETTLE_DAY, _SETTLE_AM = 0, 1, 2, 3
_N_EXTRA = 4


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
        # scratch of the AM settlement (kernels.settle_at_open): due today, debit at the open
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
                    at_open[i] = intrinsic(open_[d, j], p_num[i, F_KS], p_num[i, F_KL], call)
            n_before = n_open
            n_open, realized = settle_at_open(
                n_open, due, at_open, p_tk, p_num, p_last.T, cm[c], realized
            )
            n_tr = record_settled(
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
                    debit = intrinsic(close[d, j], ks, kl, call)
                    value = debit
                    reason = REASON_EXPIRY
                else:
                    lo = day_start[j, d]
                    hi = day_start[j, d + 1]
                    a = find_quote(lo, hi, put, expiry, strike, want_put, exp_ord, ks)
                    b = find_quote(lo, hi, put, expiry, strike, want_put, exp_ord, kl)
                    cost = 2.0 * fee[c, j] * ncon
                    if (
                        a >= 0
                        and b >= 0
                        and is_quoted(bid[a], ask[a])
                        and is_quoted(bid[b], ask[b])
                    ):
                        mid, half = pair_quotes(bid, ask, a, b)
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
                        record_trade(
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
                    mid, half = pair_quotes(bid, ask, best, long_row)
                    credit = mid - fill[c] * half
                    if not (
                        credit < width
                        and clears_costs(
                            credit, fill[c] * half, fee[c, j], cm[c, j], tick[c, j], s, sl[c]
                        )
                    ):
                        stats_out[c, S_BELOW_COSTS] += 1
                        continue
                    max_loss = width - credit
                    code = codes[d, j]
                    mult = unknown_mult[c] if code < 0 else mult_table[c, code]
                    risk_pc = max_loss * cm[c, j]
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
                        1.0 if am[c, j] == 1 and monthly_on(day_ord, exp_ord) else 0.0
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
