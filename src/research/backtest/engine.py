"""Credit-spread backtest engine: daily bars + implied volatility → spreads priced by
Black–Scholes with skew, one numba kernel evaluating many configurations per call.

Day loop, per configuration (kernel ``_run``), on the trading days every ticker has bars:

1. Mark every open spread at today's close: expired ones settle at intrinsic value; others are
   repriced (skewed IV, remaining calendar time) and closed at the profit target or stop loss,
   paying the fill model's half spreads and fees.
2. Screen the tickers in order for one new spread each: IV known and its percentile >= the
   minimum, a short strike in the delta range, positive credit after costs, an expiry inside the
   data; size it (fixed or scaled, times the regime multiplier of today's label); cut it to fit
   the portfolio limits (open positions, heat, per underlying) or skip it.
3. Equity = initial + realized P&L (fees included) + open spreads marked at mid.

Everything at day t uses closes, IV and labels up to t. Pricing functions come from
``research.backtest.pricing``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from research.backtest.pricing import bs_delta_nb, bs_price_nb, skewed_iv_nb

# trade record fields (float64 columns of the trades buffer)
F_TICKER, F_ENTRY, F_EXIT, F_EXPIRY, F_KS, F_KL, F_CREDIT, F_MAXLOSS, F_DELTA = range(9)
F_DTE, F_IVP, F_IV, F_SPOT, F_CONTRACTS, F_PNL, F_REASON, F_REGIME, F_MULT, F_DEBIT = range(9, 19)
N_FIELDS = 19
# per-config counters
S_ENTRIES, S_SIZE_ZERO, S_LIMITS, S_NO_STRIKE, S_IV_FILTER, S_NO_CREDIT = range(6)
N_STATS = 6
REASON_PT, REASON_SL, REASON_EXPIRY, REASON_END = 0, 1, 2, 3
_MAX_STRIKE_STEPS = 2000


@njit(cache=True)
def _half_spread(price: float, pct: float, minimum: float) -> float:
    return max(price * pct, minimum)


@njit(cache=True)
def _spread_mid(
    s: float,
    ks: float,
    kl: float,
    t: float,
    r: float,
    atm: float,
    is_call: bool,
    slope: float,
    floor: float,
    cap: float,
) -> tuple[float, float, float]:
    """Mid value (cost to close) of short ks / long kl, and each leg's price."""
    ps = bs_price_nb(s, ks, t, r, 0.0, skewed_iv_nb(atm, s, ks, t, slope, floor, cap), is_call)
    pl = bs_price_nb(s, kl, t, r, 0.0, skewed_iv_nb(atm, s, kl, t, slope, floor, cap), is_call)
    return ps - pl, ps, pl


@njit(cache=True)
def _intrinsic(s: float, ks: float, kl: float, is_call: bool) -> float:
    if is_call:
        return min(max(s - ks, 0.0), kl - ks)
    return min(max(ks - s, 0.0), ks - kl)


@njit(cache=True)
def _pick_short_strike(
    s: float,
    t: float,
    r: float,
    atm: float,
    step: float,
    is_call: bool,
    min_d: float,
    max_d: float,
    slope: float,
    floor: float,
    cap: float,
) -> tuple[float, float]:
    """Grid strike whose |delta| is in [min_d, max_d] and closest to the middle; (nan, nan)
    when none is."""
    mid = 0.5 * (min_d + max_d)
    best_k = np.nan
    best_d = np.nan
    best_gap = np.inf
    base = math.ceil(s / step) * step if is_call else math.floor(s / step) * step
    for i in range(_MAX_STRIKE_STEPS):
        k = base + i * step if is_call else base - i * step
        if k <= 0:
            break
        d = abs(
            bs_delta_nb(s, k, t, r, 0.0, skewed_iv_nb(atm, s, k, t, slope, floor, cap), is_call)
        )
        if d < min_d:
            break
        if d <= max_d and abs(d - mid) < best_gap:
            best_gap = abs(d - mid)
            best_k = k
            best_d = d
    return best_k, best_d


@njit(parallel=True, cache=True)
def _run(  # type: ignore[no-untyped-def]  # numba kernel: see run.run_kernel for the arrays
    day_ord,
    close,
    atm_iv,
    mark_iv,
    ivp,
    regime,
    step,
    is_call,
    min_d,
    max_d,
    dte,
    width_pct,
    min_ivp,
    pt,
    sl,  # spread rules
    hs_pct,
    hs_min,
    fee,  # fills
    scaled,
    n_fixed,
    risk_pct,
    mult_table,
    unknown_mult,  # sizing
    max_pos,
    max_heat,
    max_und,
    init_eq,
    rate,
    slope,
    floor,
    cap,  # limits, pricing
    record,
    equity_out,
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
        # open positions
        p_tk = np.empty(cap_pos, np.int64)
        p_num = np.empty((cap_pos, N_FIELDS))
        n_open = 0
        realized = init_eq[c]
        n_tr = 0
        for d in range(n_days):
            # 1. exits and marks
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
                if d >= exp_i:
                    debit = _intrinsic(s, ks, kl, call)
                    reason = REASON_EXPIRY
                    cost = 0.0
                    value = debit
                else:
                    t = (day_ord[exp_i] - day_ord[d]) / 365.0
                    value, ps, pl = _spread_mid(
                        s, ks, kl, t, rate[c], mark_iv[d, j], call, slope[c], floor[c], cap[c]
                    )
                    # a combo order: half spread on the spread's mid, never above the width
                    debit = min(value + _half_spread(value, hs_pct[c], hs_min[c]), abs(kl - ks))
                    cost = 2.0 * fee[c] * ncon
                    if debit <= credit * (1.0 - pt[c]):
                        reason = REASON_PT
                    elif debit - credit >= sl[c] * credit:
                        reason = REASON_SL
                    elif d == n_days - 1:
                        reason = REASON_END
                if reason >= 0:
                    pnl = (credit - debit) * 100.0 * ncon - cost
                    realized += pnl
                    if record and n_tr < max_trades:
                        for f in range(N_FIELDS):
                            trades_out[c, n_tr, f] = p_num[i, f]
                        trades_out[c, n_tr, F_EXIT] = d
                        trades_out[c, n_tr, F_REASON] = reason
                        trades_out[c, n_tr, F_DEBIT] = debit
                        # entry fees were paid at entry; the trade's P&L includes them
                        trades_out[c, n_tr, F_PNL] = pnl - 2.0 * fee[c] * ncon
                    n_tr += 1
                    n_open -= 1
                    p_tk[i] = p_tk[n_open]
                    for f in range(N_FIELDS):
                        p_num[i, f] = p_num[n_open, f]
                    continue
                unreal += (credit - value) * 100.0 * ncon
                i += 1
            equity_now = realized + unreal
            # 2. entries
            if d < n_days - 1:
                heat = 0.0
                for i in range(n_open):
                    heat += p_num[i, F_MAXLOSS] * 100.0 * p_num[i, F_CONTRACTS]
                for j in range(n_tk):
                    if n_open >= max_pos[c]:
                        break
                    s = close[d, j]
                    atm = atm_iv[d, j]
                    if not (atm > 0.0):
                        continue
                    if not (ivp[d, j] >= min_ivp[c]):  # also: percentile not known yet
                        stats_out[c, S_IV_FILTER] += 1
                        continue
                    target = day_ord[d] + dte[c]
                    exp_i = np.searchsorted(day_ord, target)
                    if exp_i >= n_days:
                        continue
                    t = (day_ord[exp_i] - day_ord[d]) / 365.0
                    ks, delta = _pick_short_strike(
                        s,
                        t,
                        rate[c],
                        atm,
                        step[j],
                        call,
                        min_d[c],
                        max_d[c],
                        slope[c],
                        floor[c],
                        cap[c],
                    )
                    if math.isnan(ks):
                        stats_out[c, S_NO_STRIKE] += 1
                        continue
                    w = max(step[j], round(width_pct[c] * s / step[j]) * step[j])
                    kl = ks + w if call else ks - w
                    mid, ps, pl = _spread_mid(
                        s, ks, kl, t, rate[c], atm, call, slope[c], floor[c], cap[c]
                    )
                    credit = mid - _half_spread(mid, hs_pct[c], hs_min[c])
                    if credit <= 0.0:
                        stats_out[c, S_NO_CREDIT] += 1
                        continue
                    max_loss = w - credit
                    code = regime[d, j]
                    mult = unknown_mult[c] if code < 0 else mult_table[c, code]
                    risk_pc = max_loss * 100.0
                    if scaled[c] == 1:
                        ncon = math.floor(equity_now * risk_pct[c] / risk_pc * mult)
                    else:
                        ncon = math.floor(n_fixed[c] * mult + 1e-9)
                    if ncon < 1:
                        stats_out[c, S_SIZE_ZERO] += 1
                        continue
                    und = 0.0
                    for i in range(n_open):
                        if p_tk[i] == j:
                            und += p_num[i, F_MAXLOSS] * 100.0 * p_num[i, F_CONTRACTS]
                    room = min(max_heat[c] * equity_now - heat, max_und[c] * equity_now - und)
                    fit = math.floor(room / risk_pc + 1e-9)
                    if fit < ncon:
                        ncon = fit
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
                    n_open += 1
                    entry_fee = 2.0 * fee[c] * ncon
                    realized -= entry_fee
                    heat += risk_pc * ncon
                    # marked at mid: the half spreads paid show up at once
                    unreal += (credit - mid) * 100.0 * ncon
                    stats_out[c, S_ENTRIES] += 1
                    equity_now = realized + unreal
            equity_out[c, d] = realized + unreal
        ntrades_out[c] = n_tr
