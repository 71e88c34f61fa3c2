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
   expiration (``_monthly_on``: a third Friday, or the Thursday before a third Friday that is
   not a trading day, e.g. Good Friday). It is settled before anything else (``_settle_at_open``,
   shared with ``chain_engine`` and ``portfolio``): no profit-target or stop check, no mark at
   today's close, and an exit ordered for today's open is superseded by the settlement (no fees
   either way).
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
   when ``conventions`` set one), a credit that clears its costs (``_clears_costs``: a tick
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

import math

import numpy as np
from numba import njit, prange

from research.backtest.conventions import INDEX_LEVEL
from research.backtest.pricing import bs_delta_nb, bs_price_nb, norm_cdf, skewed_iv_nb

# trade record fields (float64 columns of the trades buffer)
F_TICKER, F_ENTRY, F_EXIT, F_EXPIRY, F_KS, F_KL, F_CREDIT, F_MAXLOSS, F_DELTA = range(9)
F_DTE, F_IVP, F_IV, F_SPOT, F_CONTRACTS, F_PNL, F_REASON, F_REGIME, F_MULT, F_DEBIT = range(9, 19)
F_STATE = 19
# the mids behind the fills (a share): the spread's mid at the entry fill, and at the exit (its
# intrinsic value when it settles); credit and debit are these less / plus the half spreads paid
F_MID_IN, F_MID_OUT = 20, 21
N_FIELDS = 22
# position states (F_STATE)
STATE_OPEN, STATE_ENTRY_PENDING, STATE_EXIT_PENDING = 0, 1, 2
# per-config counters
S_ENTRIES, S_SIZE_ZERO, S_LIMITS, S_NO_STRIKE, S_IV_FILTER, S_BELOW_COSTS, S_MISSING = range(7)
N_STATS = 7
REASON_PT, REASON_SL, REASON_EXPIRY, REASON_END, REASON_MISSING = 0, 1, 2, 3, 4
_MAX_STRIKE_STEPS = 2000


@njit(cache=True)
def _half_spread(price: float, pct: float, minimum: float) -> float:
    return max(price * pct, minimum)


@njit(cache=True)
def _tick(tick: float, s: float) -> float:
    """The tick set for the underlying, else by its level (``conventions.INDEX_LEVEL``)."""
    if tick > 0.0:
        return tick
    return 0.05 if s >= INDEX_LEVEL else 0.01


@njit(cache=True)
def _min_half(minimum: float, tick: float, s: float) -> float:
    """The smallest half-spread: the one set (>= 0), else one tick."""
    return minimum if minimum >= 0.0 else _tick(tick, s)


@njit(cache=True)
def _net_ok(credit: float, fee: float, multiplier: float, tick: float, s: float) -> bool:
    """At least one tick of credit left after the entry fees."""
    net = credit - 2.0 * fee / multiplier
    return net >= _tick(tick, s) - 1e-12


@njit(cache=True)
def _short_of_stop(credit: float, half: float, stop: float) -> bool:
    """Buying the spread back at once (two half-spreads above the credit) stays short of the
    stop loss."""
    return 2.0 * half < stop * credit


@njit(cache=True)
def _clears_costs(  # type: ignore[no-untyped-def]
    credit, half, fee, multiplier, tick, s, stop
) -> bool:
    """A credit worth taking: at least one tick left after the entry fees, and buying the
    spread back at once (two half-spreads above the credit) short of the stop loss."""
    return _net_ok(credit, fee, multiplier, tick, s) and _short_of_stop(credit, half, stop)


@njit(cache=True)
def _spread_mid(
    s: float,
    ks: float,
    kl: float,
    t: float,
    r: float,
    q: float,
    atm: float,
    is_call: bool,
    slope: float,
    floor: float,
    cap: float,
    curv: float,
) -> float:
    """Mid value (cost to close) of short ks / long kl; intrinsic value when ``t <= 0``.

    The same Black–Scholes–Merton and smile formulas as ``bs_price_nb`` / ``skewed_iv_nb``, with
    the factors both legs share (discounting, sqrt(t), each leg's log-moneyness) computed once.
    """
    if t <= 0.0 or not (atm > 0.0):
        ps = bs_price_nb(
            s, ks, t, r, q, skewed_iv_nb(atm, s, ks, t, slope, floor, cap, curv), is_call
        )
        pl = bs_price_nb(
            s, kl, t, r, q, skewed_iv_nb(atm, s, kl, t, slope, floor, cap, curv), is_call
        )
        return ps - pl
    sqrt_t = math.sqrt(t)
    disc_s = s * math.exp(-q * t)
    disc_r = math.exp(-r * t)
    drift = (r - q) * t
    scale = atm * sqrt_t
    value = 0.0
    for leg in range(2):
        k = ks if leg == 0 else kl
        log_ks = math.log(k / s)
        z = log_ks / scale
        sigma = atm * min(max(1.0 - slope * z + curv * z * z, floor), cap)
        vol_t = sigma * sqrt_t
        d1 = (-log_ks + drift + 0.5 * sigma * sigma * t) / vol_t
        d2 = d1 - vol_t
        if is_call:
            price = disc_s * norm_cdf(d1) - k * disc_r * norm_cdf(d2)
        else:
            price = k * disc_r * norm_cdf(-d2) - disc_s * norm_cdf(-d1)
        value += price if leg == 0 else -price
    return value


@njit(cache=True)
def _atm(iv_input: float, intercept: float, ratio: float) -> float:
    """ATM implied volatility from the IV input (index, proxy or scaled index)."""
    return intercept + ratio * iv_input


@njit(cache=True)
def _intrinsic(s: float, ks: float, kl: float, is_call: bool) -> float:
    if is_call:
        return min(max(s - ks, 0.0), kl - ks)
    return min(max(ks - s, 0.0), ks - kl)


@njit(cache=True)
def _monthly_expiry(ordinal: int) -> bool:
    """Whether the calendar day ``ordinal`` (days since 1970-01-01) is a monthly expiration by
    its date alone: a third Friday (day 15 to 21), or the Saturday right after one (day 16 to
    22), the date US monthlies carried before 2015. Civil date from the ordinal as in H.
    Hinnant's ``civil_from_days``. The engines ask ``_monthly_on``, which adds the Thursday
    before a third-Friday holiday."""
    weekday = (ordinal + 3) % 7  # Monday 0; 1970-01-01 was a Thursday
    if weekday != 4 and weekday != 5:
        return False
    z = ordinal + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    if weekday == 4:
        return 15 <= day <= 21
    return 16 <= day <= 22


@njit(cache=True)
def _monthly_on(day_ord: np.ndarray, expiration: int) -> bool:
    """Whether an expiration dated ``expiration`` (a calendar-day ordinal) is a monthly one —
    AM-settled when its underlying's are (``conventions.am_settled``) — given the trading days
    the engine knows, ``day_ord`` (the panel's days, increasing ordinals).

    A monthly expiration is a third Friday or the Saturday right after one
    (``_monthly_expiry``), or a Thursday whose next day is a third Friday that is not a trading
    day: when the third Friday is an exchange holiday the monthly is listed on the Thursday
    before (Good Friday: SPX 2022-04-14 for 2022-04-15; Juneteenth: 2026-06-18, 2027-06-17).
    "Not a trading day" is "not a panel day while the panel spans it": a Friday inside the
    panel's range but missing from it is taken for a holiday (a gap in the data would be taken
    for one too); a Friday after the panel's last day is unknown, and the Thursday stays PM. A
    Thursday before a third Friday that trades is a daily or weekly (SPXW): PM.

    The date alone cannot tell a third-Friday weekly (SPXW, PM-settled) from the monthly (SPX,
    AM-settled) expiring the same day: every third-Friday expiration of an AM-settled
    underlying is taken for the monthly, hence AM-settled (and likewise an SPXW expiring on
    the Thursday before a third-Friday holiday). Telling them apart needs the option root
    (SPX vs SPXW) in the chain file, which the chains do not carry.
    """
    if _monthly_expiry(expiration):
        return True
    friday = expiration + 1
    if (expiration + 3) % 7 != 3 or not _monthly_expiry(friday):  # not a Thursday before one
        return False
    n = len(day_ord)
    if n == 0 or friday < day_ord[0] or friday > day_ord[n - 1]:
        return False  # the panel does not say whether that Friday traded
    return day_ord[np.searchsorted(day_ord, friday)] != friday


@njit(cache=True)
def _settle_at_open(  # type: ignore[no-untyped-def]
    n_open, due, at_open, p_tk, p_num, p_more, cm_row, realized
):
    """AM settlement of the open positions due today, shared by the kernels (``_run`` step 1,
    ``chain_engine._run_chains`` step 2, ``portfolio._portfolio`` step 1).

    Every position ``i < n_open`` with ``due[i]`` set settles at ``at_open[i]`` (its intrinsic
    value at today's open): its P&L ``(credit - debit) x multiplier x contracts`` — no fees —
    is added to ``realized``. Positions are visited and removed as every kernel removes them
    (swap with the last open one, revisit the slot), so the open positions keep the order the
    kernels' other loops rely on; a settled one is exchanged, not overwritten, so that it ends
    up behind the open ones with ``p_num[i, F_DEBIT]`` its debit and ``p_num[i, F_PNL]`` its
    P&L before the entry fees, for the caller to record.

    Parameters
    ----------
    n_open : int
        Open positions (slots ``0 .. n_open - 1``).
    due, at_open : np.ndarray
        Per slot: whether it settles now, and at what debit (a share); moved with the positions.
    p_tk : np.ndarray
        Per slot: the ticker column (into ``cm_row``).
    p_num : np.ndarray
        Slots x ``N_FIELDS``: the trade record's fields (``F_CREDIT``, ``F_CONTRACTS`` read).
    p_more : np.ndarray
        The kernel's other per-position values, one row per value (slots along the columns;
        zero rows when there are none); moved with the positions.
    cm_row : np.ndarray
        Contract multiplier per ticker.
    realized : float
        Realized equity before the settlements.

    Returns
    -------
    tuple[int, float]
        The positions still open and the realized equity. The settled positions are in slots
        ``n_open .. n_before - 1``, the first settled in the last slot (record them from
        ``n_before - 1`` down to ``n_open``).
    """
    i = 0
    while i < n_open:
        if not due[i]:
            i += 1
            continue
        debit = at_open[i]
        ncon = p_num[i, F_CONTRACTS]
        pnl = (p_num[i, F_CREDIT] - debit) * cm_row[p_tk[i]] * ncon
        realized += pnl
        p_num[i, F_DEBIT] = debit
        p_num[i, F_PNL] = pnl
        n_open -= 1
        last = n_open
        due[i], due[last] = due[last], due[i]
        at_open[i], at_open[last] = at_open[last], at_open[i]
        p_tk[i], p_tk[last] = p_tk[last], p_tk[i]
        for f in range(p_num.shape[1]):
            p_num[i, f], p_num[last, f] = p_num[last, f], p_num[i, f]
        for f in range(p_more.shape[0]):
            p_more[f, i], p_more[f, last] = p_more[f, last], p_more[f, i]
    return n_open, realized


@njit(cache=True)
def _pick_short_strike(
    s: float,
    t: float,
    r: float,
    q: float,
    atm: float,
    step: float,
    is_call: bool,
    min_d: float,
    max_d: float,
    slope: float,
    floor: float,
    cap: float,
    curv: float,
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
        iv = skewed_iv_nb(atm, s, k, t, slope, floor, cap, curv)
        d = abs(bs_delta_nb(s, k, t, r, q, iv, is_call))
        if d < min_d:
            break
        if d <= max_d and abs(d - mid) < best_gap:
            best_gap = abs(d - mid)
            best_k = k
            best_d = d
    return best_k, best_d


ENTRY_FOUND, ENTRY_NO_EXPIRY, ENTRY_NO_STRIKE = 0, 1, 2


@njit(cache=True)
def _model_entry(  # type: ignore[no-untyped-def]
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
    width_pct,
    hs_pct,
    hs_min,
    tick,
    slope,
    floor,
    cap,
    curv,
):
    """The spread the model would open on day ``d``: ``(status, expiry day, short strike, long
    strike, width, |delta|, mid, half spread)``; status ``ENTRY_NO_EXPIRY`` (no expiry inside
    the data after the fill) or ``ENTRY_NO_STRIKE`` (no strike in the delta band) else
    ``ENTRY_FOUND``. The expiry day is a panel day, so it is also the settlement day (AM
    settlement there is the caller's: ``_monthly_on``). Shared by ``_run`` and
    ``trade_paths``."""
    nan = np.nan
    exp_i = np.searchsorted(day_ord, day_ord[d] + dte)
    if exp_i >= len(day_ord) or exp_i <= d + lag:
        return ENTRY_NO_EXPIRY, exp_i, nan, nan, nan, nan, nan, nan
    t = (day_ord[exp_i] - day_ord[d]) / 365.0
    ks, delta = _pick_short_strike(
        s, t, r, q, atm, stp, call, min_d, max_d, slope, floor, cap, curv
    )
    if math.isnan(ks):
        return ENTRY_NO_STRIKE, exp_i, nan, nan, nan, nan, nan, nan
    w = max(min_steps * stp, round(width_pct * s / stp) * stp)
    kl = ks + w if call else ks - w
    mid = _spread_mid(s, ks, kl, t, r, q, atm, call, slope, floor, cap, curv)
    hs = _half_spread(mid, hs_pct, _min_half(hs_min, tick, s))
    return ENTRY_FOUND, exp_i, ks, kl, w, delta, mid, hs


@njit(cache=True)
def _contracts(
    equity: float, risk_pc: float, mult: float, scaled: int, risk_pct: float, n_fixed: float
) -> int:
    """Contracts before limits: scaled (equity x risk % / max loss per contract) or fixed,
    times the regime multiplier, floored."""
    if scaled == 1:
        return math.floor(equity * risk_pct / risk_pc * mult)
    return math.floor(n_fixed * mult + 1e-9)


@njit(cache=True)
def _fit_limits(  # type: ignore[no-untyped-def]
    ncon, risk_pc, equity, heat, p_tk, p_num, n_open, j, max_heat, max_und, cm_row
) -> int:
    """``ncon`` cut down to what the heat and per-underlying limits leave room for."""
    und = 0.0
    for i in range(n_open):
        if p_tk[i] == j:
            und += p_num[i, F_MAXLOSS] * cm_row[j] * p_num[i, F_CONTRACTS]
    room = min(max_heat * equity - heat, max_und * equity - und)
    fit = math.floor(room / risk_pc + 1e-9)
    return min(ncon, fit)


@njit(cache=True)
def _record(trades_out, c, n_tr, pos, d, reason, debit, mid_out, pnl):  # type: ignore[no-untyped-def]
    for f in range(N_FIELDS):
        trades_out[c, n_tr, f] = pos[f]
    trades_out[c, n_tr, F_EXIT] = d
    trades_out[c, n_tr, F_REASON] = reason
    trades_out[c, n_tr, F_DEBIT] = debit
    trades_out[c, n_tr, F_MID_OUT] = mid_out
    trades_out[c, n_tr, F_PNL] = pnl
    trades_out[c, n_tr, F_STATE] = STATE_OPEN


@njit(cache=True)
def _record_settled(  # type: ignore[no-untyped-def]
    trades_out, c, n_tr, p_num, p_tk, n_before, n_open, d, fee_row, record, max_trades
):
    """Record the positions ``_settle_at_open`` just moved behind the open ones (rows
    ``n_open .. n_before - 1``), in the order they settled; return the new trade count. Shared
    by ``_run`` and ``chain_engine._run_chains`` (the trade's P&L includes its entry fees)."""
    for i in range(n_before - 1, n_open - 1, -1):
        if record and n_tr < max_trades:
            ncon = p_num[i, F_CONTRACTS]
            _record(
                trades_out,
                c,
                n_tr,
                p_num[i],
                d,
                REASON_EXPIRY,
                p_num[i, F_DEBIT],
                p_num[i, F_DEBIT],
                p_num[i, F_PNL] - 2.0 * fee_row[p_tk[i]] * ncon,
            )
        n_tr += 1
    return n_tr


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
    vx = _spread_mid(extreme, ks, kl, t, r, q, atm_now, call, slope, floor, cap, curv)
    dx = min(vx + _half_spread(vx, hs_pct, _min_half(hs_min, tick, extreme)), width)
    if dx - credit < sl * credit:
        return False, 0.0, 0.0
    vo = _spread_mid(s_open, ks, kl, t, r, q, atm_open, call, slope, floor, cap, curv)
    m_open = _min_half(hs_min, tick, s_open)
    do = min(vo + _half_spread(vo, hs_pct, m_open), width)
    if do > stop_debit:
        return True, do, _mid_of_debit(do, hs_pct, m_open)
    return True, stop_debit, _mid_of_debit(stop_debit, hs_pct, _min_half(hs_min, tick, extreme))


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
        # scratch of the AM settlement (_settle_at_open): due today, debit at the open
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
            if n_open > 0 and _monthly_on(day_ord, day_ord[d]):
                for i in range(n_open):
                    j = p_tk[i]
                    due[i] = (
                        am[c, j] == 1
                        and int(p_num[i, F_EXPIRY]) <= d
                        and p_num[i, F_STATE] != STATE_ENTRY_PENDING
                    )
                    at_open[i] = _intrinsic(open_[d, j], p_num[i, F_KS], p_num[i, F_KL], call)
                n_before = n_open
                n_open, realized = _settle_at_open(
                    n_open, due, at_open, p_tk, p_num, no_more, cm[c], realized
                )
                n_tr = _record_settled(
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
                        value = _spread_mid(
                            s,
                            ks,
                            kl,
                            t,
                            r,
                            div[c, j],
                            _atm(mark_iv[d - 1, j], atm_a[c], atm_b[c]),
                            call,
                            slope[c],
                            floor[c],
                            cap[c],
                            curv[c],
                        )
                        debit = min(
                            value
                            + _half_spread(
                                value, hs_pct[c, j], _min_half(hs_min[c, j], tick[c, j], s)
                            ),
                            abs(kl - ks),
                        )
                        pnl = (p_num[i, F_CREDIT] - debit) * cm[c, j] * ncon - 2.0 * fee[
                            c, j
                        ] * ncon
                        realized += pnl
                        if record and n_tr < max_trades:
                            _record(
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
                        mid = _spread_mid(
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
                        hs = _half_spread(mid, hs_pct[c, j], _min_half(hs_min[c, j], tick[c, j], s))
                        credit = mid - hs
                        if _clears_costs(credit, hs, fee[c, j], cm[c, j], tick[c, j], s, sl[c]):
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
                    debit = _intrinsic(s, ks, kl, call)
                    reason = REASON_EXPIRY
                    cost = 0.0
                    value = debit
                else:
                    t = (day_ord[exp_i] - day_ord[d]) / 365.0
                    mark_atm = _atm(mark_iv[d, j], atm_a[c], atm_b[c])
                    value = _spread_mid(
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
                        + _half_spread(value, hs_pct[c, j], _min_half(hs_min[c, j], tick[c, j], s)),
                        abs(kl - ks),
                    )
                    cost = 2.0 * fee[c, j] * ncon
                    stopped = False
                    if stop_day[c] == 1 and p_num[i, F_ENTRY] < d:
                        stopped, fill, fill_mid = _intraday_stop(
                            high[d, j] if call else low[d, j], open_[d, j], ks, kl, t, r,
                            div[c, j], mark_atm, _atm(mark_iv[d - 1, j], atm_a[c], atm_b[c]),
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
                    atm = _atm(atm_iv[d, j], atm_a[c], atm_b[c])
                    if not (ivp[d, j] >= min_ivp[c]):  # also: percentile not known yet
                        stats_out[c, S_IV_FILTER] += 1
                        continue
                    q = div[c, j]
                    stp = step_over[c, j] if step_over[c, j] > 0.0 else step[d, j]
                    found, exp_i, ks, kl, w, delta, mid, hs = _model_entry(
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
                    if not _clears_costs(credit, hs, fee[c, j], cm[c, j], tick[c, j], s, sl[c]):
                        stats_out[c, S_BELOW_COSTS] += 1
                        continue
                    max_loss = w - credit
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
