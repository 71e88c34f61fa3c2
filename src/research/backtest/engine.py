"""Credit-spread backtest engine: daily bars + implied volatility → spreads priced by
Black–Scholes with skew and a dividend yield, one numba kernel evaluating many configurations
per call.

Day loop, per configuration (kernel ``_run``), on the trading days every ticker has bars:

0. Cash (the account's realized equity) earns the risk-free rate: it grows by
   ``(1 + rate) ** (1 / 252)`` per trading day, the same daily rate the metrics subtract for
   excess returns, so an idle account has an excess return of exactly zero.
1. AM settlement: an open spread whose expiry is today settles at intrinsic value from today's
   *open* (the Special Opening Quotation) when its underlying's monthly expirations are
   AM-settled (``conventions.am_settled``: SPX, NDX, RUT by default) and today is a monthly
   expiration (``kernels.monthly_on``: a third Friday, or the Thursday before a third Friday
   that is not a trading day, e.g. Good Friday). It is settled before anything else
   (``kernels.settle_at_open``, shared with ``chain_engine`` and ``portfolio``): no
   profit-target or stop check, no mark at today's close, and an exit ordered for today's open
   is superseded by the settlement (no fees either way).
2. With fills at the next open (``FillModel.timing == "next_open"``), orders decided at the
   previous close execute at today's open: pending exits pay the debit priced at the open
   (previous close's IV), pending entries receive the credit priced at the open (the entry
   day's IV); an entry whose credit no longer clears its costs is cancelled
   (``credit_below_costs``).
3. Mark every open spread at today's close: expired ones (PM-settled, today is their expiry
   day) settle at intrinsic value from the close; others are repriced (skewed IV, remaining
   calendar time) and closed at the profit target or stop loss (at this close, or, with
   next-open fills, at the next open), paying the fill model's half spreads and fees. With
   intraday stops (``FillModel.stop_fill = "intraday"``) a spread held since before today is
   first priced at the day's adverse extreme (high or low): if that reaches the stop it is
   closed today at the stop, or at the open on a gap through it (``_intraday_stop``, an
   approximation from daily bars).
4. Screen the tickers in order for one new spread each: IV known and its percentile >= the
   minimum, a short strike in the delta range on today's strike grid (the underlying's own step
   when ``conventions`` set one), a credit that clears its costs (``kernels.clears_costs``: a tick
   left after fees, and an immediate buy-back short of the stop), an expiry inside the data
   (the first trading day on or after ``target_dte`` calendar days, after the fill day);
   size it (fixed or scaled, times the regime multiplier of today's label); cut it to fit the
   portfolio limits (open positions, heat, per underlying) or
   skip it. With close fills it trades at this close; with next-open fills it is an order for
   the next open, sized and limited with the credit estimated at this close.
5. Equity = realized (cash, fees paid) + open spreads marked at mid; heat = max loss at risk of
   the open spreads / equity.

Settlement rule (every engine: this one, ``chain_engine``, ``trade_paths`` / ``portfolio``): a
spread settles on the last trading day (panel day) on or before its expiration date, at that
day's close (PM) or, for monthly expirations of AM-settled underlyings, at that day's open
(``research.backtest.conventions``). The model's expiry is itself a panel day, so it is the
settlement day; the chain engine maps listed (possibly Saturday or holiday) expirations to it.
The trading days an engine knows are the panel's days: a day inside the panel that is not one
of them is taken to be an exchange holiday (that the exchanges close on it is known in
advance, so looking at later panel days for it is no look-ahead); past the panel's last day
nothing is known.

Everything decided at day t uses closes, IV, strike grids and labels up to t (and an AM
settlement on day t the open of day t). Pricing functions come from
``research.backtest.pricing``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from research.backtest.kernels import (
    ENTRY_NO_EXPIRY,
    ENTRY_NO_STRIKE,
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
    REASON_PT,
    REASON_SL,
    S_BELOW_COSTS,
    S_ENTRIES,
    S_IV_FILTER,
    S_LIMITS,
    S_NO_STRIKE,
    S_SIZE_ZERO,
    STATE_ENTRY_PENDING,
    STATE_EXIT_PENDING,
    STATE_OPEN,
    atm_vol,
    clears_costs,
    fit_limits,
    half_spread,
    intrinsic,
    min_half,
    model_entry,
    monthly_on,
    record_settled,
    record_trade,
    settle_at_open,
    size_contracts,
    spread_mid,
)


@njit(cache=True)
def _mid_of_debit(debit: float, pct: float, minimum: float) -> float:
    """The mid ``v`` whose combo buy-back costs ``debit = v + max(v x pct, minimum)`` (the
    inverse of the fill model's half spread; below the width)."""
    if pct > 0.0 and debit * pct >= minimum * (1.0 + pct):
        return debit / (1.0 + pct)
    return debit - minimum


@njit(cache=True)
def _intraday_stop(  # type: ignore[no-untyped-def]
    extreme, s_open, ks, kl, t, r, q, atm_now, atm_open, call, slope, floor, cap, curv,
    hs_pct, hs_min, tick, credit, sl,
):  # fmt: skip
    """The stop as a resting order during the day, approximated from the bar (``fills.
    stop_fill = "intraday"``): the spread is priced at the day's adverse extreme (the high for
    a call spread, the low for a put spread) with the close's IV; when that buy-back reaches
    the stop (``debit >= (1 + sl) x credit``) the order fills at the stop, or at the open when
    the open was already through it (a gap). Returns ``(hit, debit, mid)``; the day's path
    between open, extreme and close is unknown, so a day whose extreme reaches the stop is
    taken to reach it, whatever the close."""
    width = abs(kl - ks)
    stop_debit = (1.0 + sl) * credit
    if not (extreme > 0.0) or stop_debit >= width:
        return False, 0.0, 0.0
    vx = spread_mid(extreme, ks, kl, t, r, q, atm_now, call, slope, floor, cap, curv)
    dx = min(vx + half_spread(vx, hs_pct, min_half(hs_min, tick, extreme)), width)
    if dx - credit < sl * credit:
        return False, 0.0, 0.0
    vo = spread_mid(s_open, ks, kl, t, r, q, atm_open, call, slope, floor, cap, curv)
    m_open = min_half(hs_min, tick, s_open)
    do = min(vo + half_spread(vo, hs_pct, m_open), width)
    if do > stop_debit:
        return True, do, _mid_of_debit(do, hs_pct, m_open)
    return True, stop_debit, _mid_of_debit(stop_debit, hs_pct, min_half(hs_min, tick, extreme))


@njit(parallel=True, cache=True)
def _run(  # type: ignore[no-untyped-def]  # numba kernel: see run.run_kernel for the arrays
    day_ord,
    close,
    open_,
    high,
    low,  # the bar's extremes (intraday stops; the close where unknown)
    atm_iv,
    mark_iv,
    ivp,
    regime,
    regime_set,
    step,
    is_call,
    min_d,
    max_d,
    dte,
    width_pct,
    min_steps,
    min_ivp,
    pt,
    sl,  # spread rules
    hs_pct,
    hs_min,
    fee,
    tick,
    cm,
    step_over,
    am,  # per config x ticker: fills and market conventions (am: 1 = AM-settled monthlies)
    next_open,
    stop_day,  # fills: 1 = stops rest during the day (``_intraday_stop``)
    scaled,
    n_fixed,
    risk_pct,
    mult_table,
    unknown_mult,  # sizing
    max_pos,
    max_heat,
    max_und,  # limits
    init_eq,
    rate,
    growth,
    div,
    slope,
    floor,
    cap,
    curv,
    atm_a,
    atm_b,  # account, pricing
    record,
    equity_out,
    heat_out,
    trades_out,
    ntrades_out,
    stats_out,
):  # outputs
    n_days, n_tk = close.shape
    n_cfg = is_call.shape[0]
    cap_pos = 1
    for c in range(n_cfg):
        cap_pos = max(cap_pos, max_pos[c])
    max_trades = trades_out.shape[1]
    for c in prange(n_cfg):
        call = is_call[c] == 1
        lag = 1 if next_open[c] == 1 else 0
        codes = regime[regime_set[c]]
        r = rate[c]
        # open positions (and, with next-open fills, pending orders)
        p_tk = np.empty(cap_pos, np.int64)
        p_num = np.empty((cap_pos, N_FIELDS))
        # scratch of the AM settlement (settle_at_open): due today, debit at the open
        due = np.zeros(cap_pos, np.bool_)
        at_open = np.zeros(cap_pos)
        no_more = np.empty((0, cap_pos))
        n_open = 0
        realized = init_eq[c]
        n_tr = 0
        for d in range(n_days):
            # 0. cash earns the rate
            if d > 0:
                realized *= growth[c]
            # 1. AM settlement at today's open, before anything else (a pending exit included)
            if n_open > 0 and monthly_on(day_ord, day_ord[d]):
                for i in range(n_open):
                    j = p_tk[i]
                    due[i] = (
                        am[c, j] == 1
                        and int(p_num[i, F_EXPIRY]) <= d
                        and p_num[i, F_STATE] != STATE_ENTRY_PENDING
                    )
                    at_open[i] = intrinsic(open_[d, j], p_num[i, F_KS], p_num[i, F_KL], call)
                n_before = n_open
                n_open, realized = settle_at_open(
                    n_open, due, at_open, p_tk, p_num, no_more, cm[c], realized
                )
                n_tr = record_settled(
                    trades_out, c, n_tr, p_num, p_tk, n_before, n_open, d, fee[c], record,
                    max_trades,
                )  # fmt: skip
            # 2. next-open fills: orders decided at the previous close execute at today's open
            if lag == 1:
                i = 0
                while i < n_open:
                    j = p_tk[i]
                    state = p_num[i, F_STATE]
                    if state == STATE_OPEN:
                        i += 1
                        continue
                    s = open_[d, j]
                    ks = p_num[i, F_KS]
                    kl = p_num[i, F_KL]
                    exp_i = int(p_num[i, F_EXPIRY])
                    t = (day_ord[exp_i] - day_ord[d]) / 365.0
                    ncon = p_num[i, F_CONTRACTS]
                    if state == STATE_EXIT_PENDING:
                        value = spread_mid(
                            s,
                            ks,
                            kl,
                            t,
                            r,
                            div[c, j],
                            atm_vol(mark_iv[d - 1, j], atm_a[c], atm_b[c]),
                            call,
                            slope[c],
                            floor[c],
                            cap[c],
                            curv[c],
                        )
                        debit = min(
                            value
                            + half_spread(
                                value, hs_pct[c, j], min_half(hs_min[c, j], tick[c, j], s)
                            ),
                            abs(kl - ks),
                        )
                        pnl = (p_num[i, F_CREDIT] - debit) * cm[c, j] * ncon - 2.0 * fee[
                            c, j
                        ] * ncon
                        realized += pnl
                        if record and n_tr < max_trades:
                            record_trade(
                                trades_out,
                                c,
                                n_tr,
                                p_num[i],
                                d,
                                p_num[i, F_REASON],
                                debit,
                                value,
                                pnl - 2.0 * fee[c, j] * ncon,
                            )
                        n_tr += 1
                    else:  # pending entry
                        mid = spread_mid(
                            s,
                            ks,
                            kl,
                            t,
                            r,
                            div[c, j],
                            p_num[i, F_IV],
                            call,
                            slope[c],
                            floor[c],
                            cap[c],
                            curv[c],
                        )
                        hs = half_spread(mid, hs_pct[c, j], min_half(hs_min[c, j], tick[c, j], s))
                        credit = mid - hs
                        if clears_costs(credit, hs, fee[c, j], cm[c, j], tick[c, j], s, sl[c]):
                            p_num[i, F_STATE] = STATE_OPEN
                            p_num[i, F_ENTRY] = d
                            p_num[i, F_CREDIT] = credit
                            p_num[i, F_MID_IN] = credit + hs  # as every kernel writes it
                            p_num[i, F_MAXLOSS] = abs(kl - ks) - credit
                            p_num[i, F_SPOT] = s
                            p_num[i, F_DTE] = day_ord[exp_i] - day_ord[d]
                            realized -= 2.0 * fee[c, j] * ncon
                            stats_out[c, S_ENTRIES] += 1
                            i += 1
                            continue
                        stats_out[c, S_BELOW_COSTS] += 1
                    n_open -= 1
                    p_tk[i] = p_tk[n_open]
                    for f in range(N_FIELDS):
                        p_num[i, f] = p_num[n_open, f]
            # 3. exits and marks at the close (PM settlement)
            unreal = 0.0
            i = 0
            while i < n_open:
                j = p_tk[i]
                s = close[d, j]
                ks = p_num[i, F_KS]
                kl = p_num[i, F_KL]
                credit = p_num[i, F_CREDIT]
                ncon = p_num[i, F_CONTRACTS]
                exp_i = int(p_num[i, F_EXPIRY])
                reason = -1
                if d >= exp_i:  # PM settlement at the close (AM ones settled at the open)
                    debit = intrinsic(s, ks, kl, call)
                    reason = REASON_EXPIRY
                    cost = 0.0
                    value = debit
                else:
                    t = (day_ord[exp_i] - day_ord[d]) / 365.0
                    mark_atm = atm_vol(mark_iv[d, j], atm_a[c], atm_b[c])
                    value = spread_mid(
                        s,
                        ks,
                        kl,
                        t,
                        r,
                        div[c, j],
                        mark_atm,
                        call,
                        slope[c],
                        floor[c],
                        cap[c],
                        curv[c],
                    )
                    # a combo order: half spread on the spread's mid, never above the width
                    debit = min(
                        value
                        + half_spread(value, hs_pct[c, j], min_half(hs_min[c, j], tick[c, j], s)),
                        abs(kl - ks),
                    )
                    cost = 2.0 * fee[c, j] * ncon
                    stopped = False
                    if stop_day[c] == 1 and p_num[i, F_ENTRY] < d:
                        stopped, fill, fill_mid = _intraday_stop(
                            high[d, j] if call else low[d, j], open_[d, j], ks, kl, t, r,
                            div[c, j], mark_atm, atm_vol(mark_iv[d - 1, j], atm_a[c], atm_b[c]),
                            call, slope[c], floor[c], cap[c], curv[c], hs_pct[c, j],
                            hs_min[c, j], tick[c, j], credit, sl[c],
                        )  # fmt: skip
                        if stopped:  # filled during the day, whatever the fill timing
                            value = fill_mid
                            debit = fill
                            reason = REASON_SL
                    if stopped:
                        pass
                    elif debit <= credit * (1.0 - pt[c]):
                        reason = REASON_PT
                    elif debit - credit >= sl[c] * credit:
                        reason = REASON_SL
                    elif d == n_days - 1:
                        reason = REASON_END
                    if (
                        lag == 1
                        and not stopped
                        and d < n_days - 1
                        and (reason == REASON_PT or reason == REASON_SL)
                    ):
                        # the order fills at the next open; the spread stays marked until then
                        p_num[i, F_STATE] = STATE_EXIT_PENDING
                        p_num[i, F_REASON] = reason
                        reason = -1
                if reason >= 0:
                    pnl = (credit - debit) * cm[c, j] * ncon - cost
                    realized += pnl
                    if record and n_tr < max_trades:
                        # entry fees were paid at entry; the trade's P&L includes them
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
                    continue
                unreal += (credit - value) * cm[c, j] * ncon
                i += 1
            equity_now = realized + unreal
            # 4. entries (with next-open fills: orders for tomorrow's open)
            if d < n_days - 1 - lag:
                heat = 0.0
                for i in range(n_open):
                    heat += p_num[i, F_MAXLOSS] * cm[c, p_tk[i]] * p_num[i, F_CONTRACTS]
                for j in range(n_tk):
                    if n_open >= max_pos[c]:
                        break
                    s = close[d, j]
                    if not (atm_iv[d, j] > 0.0):
                        continue
                    atm = atm_vol(atm_iv[d, j], atm_a[c], atm_b[c])
                    if not (ivp[d, j] >= min_ivp[c]):  # also: percentile not known yet
                        stats_out[c, S_IV_FILTER] += 1
                        continue
                    q = div[c, j]
                    stp = step_over[c, j] if step_over[c, j] > 0.0 else step[d, j]
                    found, exp_i, ks, kl, w, delta, mid, hs = model_entry(
                        day_ord,
                        d,
                        lag,
                        s,
                        atm,
                        dte[c],
                        r,
                        q,
                        stp,
                        call,
                        min_d[c],
                        max_d[c],
                        min_steps[c],
                        width_pct[c, j],
                        hs_pct[c, j],
                        hs_min[c, j],
                        tick[c, j],
                        slope[c],
                        floor[c],
                        cap[c],
                        curv[c],
                    )
                    if found == ENTRY_NO_EXPIRY:
                        continue
                    if found == ENTRY_NO_STRIKE:
                        stats_out[c, S_NO_STRIKE] += 1
                        continue
                    credit = mid - hs
                    if not clears_costs(credit, hs, fee[c, j], cm[c, j], tick[c, j], s, sl[c]):
                        stats_out[c, S_BELOW_COSTS] += 1
                        continue
                    max_loss = w - credit
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
                    p_num[k, F_EXPIRY] = exp_i
                    p_num[k, F_KS] = ks
                    p_num[k, F_KL] = kl
                    p_num[k, F_CREDIT] = credit
                    p_num[k, F_MAXLOSS] = max_loss
                    p_num[k, F_DELTA] = delta
                    p_num[k, F_DTE] = day_ord[exp_i] - day_ord[d]
                    p_num[k, F_IVP] = ivp[d, j]
                    p_num[k, F_IV] = atm
                    p_num[k, F_SPOT] = s
                    p_num[k, F_CONTRACTS] = ncon
                    p_num[k, F_PNL] = 0.0
                    p_num[k, F_REASON] = -1
                    p_num[k, F_REGIME] = code
                    p_num[k, F_MULT] = mult
                    p_num[k, F_DEBIT] = np.nan
                    p_num[k, F_MID_IN] = credit + hs  # with next-open fills: replaced at the fill
                    p_num[k, F_MID_OUT] = np.nan
                    p_num[k, F_STATE] = STATE_ENTRY_PENDING if lag == 1 else STATE_OPEN
                    n_open += 1
                    heat += risk_pc * ncon
                    if lag == 0:
                        realized -= 2.0 * fee[c, j] * ncon
                        # marked at mid: the half spreads paid show up at once
                        unreal += (credit - mid) * cm[c, j] * ncon
                        stats_out[c, S_ENTRIES] += 1
                        equity_now = realized + unreal
            # 5. equity and heat
            eq = realized + unreal
            equity_out[c, d] = eq
            at_risk = 0.0
            for i in range(n_open):
                if p_num[i, F_STATE] != STATE_ENTRY_PENDING:
                    at_risk += p_num[i, F_MAXLOSS] * cm[c, p_tk[i]] * p_num[i, F_CONTRACTS]
            heat_out[c, d] = at_risk / eq if eq > 0.0 else np.nan
        ntrades_out[c] = n_tr
