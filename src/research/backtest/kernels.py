"""The numba helpers and trade-record layout every kernel shares: the model kernel
(``engine._run``), the chain kernel (``chain_engine._run_chains``) and the shared-path engine
(``trade_paths`` phase 1, ``portfolio`` phase 2), so the four compute a trade from the same
expressions.

- The trade record: float64 fields ``F_*`` (``N_FIELDS`` of them), position states
  ``STATE_*``, per-configuration counters ``S_*`` (``N_STATS``), exit reasons ``REASON_*``,
  and the outcomes of a model entry ``ENTRY_*``.
- Model pricing and costs: ``spread_mid``, ``atm_vol``, ``intrinsic``, ``half_spread``,
  ``min_half``, ``tick_size``, ``net_ok``, ``short_of_stop``, ``clears_costs``;
  the model's entry (``pick_short_strike``, ``model_entry``).
- Settlement: ``monthly_expiry``, ``monthly_on`` (AM-settled monthly expirations),
  ``settlement_day``, ``settle_at_open``.
- Sizing and records: ``size_contracts``, ``fit_limits``, ``record_trade``, ``record_settled``.
- Quotes of a chain (rows sorted by type, expiry, strike): ``sorts_before``, ``lower_bound``,
  ``find_quote``, ``is_quoted``, ``pair_quotes``, ``chain_entry``.

Numba compiles module-level integers as constants, so the ``F_*`` indices cost nothing inside
the kernels. After moving a jitted function between modules, delete the stale
``__pycache__/*.nbi`` / ``*.nbc`` files (numba keys its cache by file and line).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from research.backtest.conventions import INDEX_LEVEL
from research.backtest.pricing import bs_delta_nb, bs_price_nb, norm_cdf, skewed_iv_nb

__all__ = [
    "ENTRY_FOUND",
    "ENTRY_NO_EXPIRY",
    "ENTRY_NO_STRIKE",
    "F_CONTRACTS",
    "F_CREDIT",
    "F_DEBIT",
    "F_DELTA",
    "F_DTE",
    "F_ENTRY",
    "F_EXIT",
    "F_EXPIRY",
    "F_IV",
    "F_IVP",
    "F_KL",
    "F_KS",
    "F_MAXLOSS",
    "F_MID_IN",
    "F_MID_OUT",
    "F_MULT",
    "F_PNL",
    "F_REASON",
    "F_REGIME",
    "F_SPOT",
    "F_STATE",
    "F_TICKER",
    "N_FIELDS",
    "N_STATS",
    "REASON_END",
    "REASON_EXPIRY",
    "REASON_MISSING",
    "REASON_PT",
    "REASON_SL",
    "STATE_ENTRY_PENDING",
    "STATE_EXIT_PENDING",
    "STATE_OPEN",
    "S_BELOW_COSTS",
    "S_ENTRIES",
    "S_IV_FILTER",
    "S_LIMITS",
    "S_MISSING",
    "S_NO_STRIKE",
    "S_SIZE_ZERO",
    "atm_vol",
    "chain_entry",
    "clears_costs",
    "find_quote",
    "fit_limits",
    "half_spread",
    "intrinsic",
    "is_quoted",
    "lower_bound",
    "min_half",
    "model_entry",
    "monthly_expiry",
    "monthly_on",
    "net_ok",
    "pair_quotes",
    "pick_short_strike",
    "record_settled",
    "record_trade",
    "settle_at_open",
    "settlement_day",
    "short_of_stop",
    "size_contracts",
    "sorts_before",
    "spread_mid",
    "tick_size",
]

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
def half_spread(price: float, pct: float, minimum: float) -> float:
    return max(price * pct, minimum)


@njit(cache=True)
def tick_size(tick: float, s: float) -> float:
    """The tick set for the underlying, else by its level (``conventions.INDEX_LEVEL``)."""
    if tick > 0.0:
        return tick
    return 0.05 if s >= INDEX_LEVEL else 0.01


@njit(cache=True)
def min_half(minimum: float, tick: float, s: float) -> float:
    """The smallest half-spread: the one set (>= 0), else one tick."""
    return minimum if minimum >= 0.0 else tick_size(tick, s)


@njit(cache=True)
def net_ok(credit: float, fee: float, multiplier: float, tick: float, s: float) -> bool:
    """At least one tick of credit left after the entry fees."""
    net = credit - 2.0 * fee / multiplier
    return net >= tick_size(tick, s) - 1e-12


@njit(cache=True)
def short_of_stop(credit: float, half: float, stop: float) -> bool:
    """Buying the spread back at once (two half-spreads above the credit) stays short of the
    stop loss."""
    return 2.0 * half < stop * credit


@njit(cache=True)
def clears_costs(  # type: ignore[no-untyped-def]
    credit, half, fee, multiplier, tick, s, stop
) -> bool:
    """A credit worth taking: at least one tick left after the entry fees, and buying the
    spread back at once (two half-spreads above the credit) short of the stop loss."""
    return net_ok(credit, fee, multiplier, tick, s) and short_of_stop(credit, half, stop)


@njit(cache=True)
def spread_mid(
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
def atm_vol(iv_input: float, intercept: float, ratio: float) -> float:
    """ATM implied volatility from the IV input (index, proxy or scaled index)."""
    return intercept + ratio * iv_input


@njit(cache=True)
def intrinsic(s: float, ks: float, kl: float, is_call: bool) -> float:
    if is_call:
        return min(max(s - ks, 0.0), kl - ks)
    return min(max(ks - s, 0.0), ks - kl)


@njit(cache=True)
def monthly_expiry(ordinal: int) -> bool:
    """Whether the calendar day ``ordinal`` (days since 1970-01-01) is a monthly expiration by
    its date alone: a third Friday (day 15 to 21), or the Saturday right after one (day 16 to
    22), the date US monthlies carried before 2015. Civil date from the ordinal as in H.
    Hinnant's ``civil_from_days``. The engines ask ``monthly_on``, which adds the Thursday
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
def monthly_on(day_ord: np.ndarray, expiration: int) -> bool:
    """Whether an expiration dated ``expiration`` (a calendar-day ordinal) is a monthly one —
    AM-settled when its underlying's are (``conventions.am_settled``) — given the trading days
    the engine knows, ``day_ord`` (the panel's days, increasing ordinals).

    A monthly expiration is a third Friday or the Saturday right after one
    (``monthly_expiry``), or a Thursday whose next day is a third Friday that is not a trading
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
    if monthly_expiry(expiration):
        return True
    friday = expiration + 1
    if (expiration + 3) % 7 != 3 or not monthly_expiry(friday):  # not a Thursday before one
        return False
    n = len(day_ord)
    if n == 0 or friday < day_ord[0] or friday > day_ord[n - 1]:
        return False  # the panel does not say whether that Friday traded
    return day_ord[np.searchsorted(day_ord, friday)] != friday


@njit(cache=True)
def settle_at_open(  # type: ignore[no-untyped-def]
    n_open, due, at_open, p_tk, p_num, p_more, cm_row, realized
):
    """AM settlement of the open positions due today, shared by the kernels (``engine._run``
    step 1, ``chain_engine._run_chains`` step 2, ``portfolio._portfolio`` step 1).

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
def pick_short_strike(
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
def model_entry(  # type: ignore[no-untyped-def]
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
    settlement there is the caller's: ``monthly_on``). Shared by ``engine._run`` and
    ``trade_paths``."""
    nan = np.nan
    exp_i = np.searchsorted(day_ord, day_ord[d] + dte)
    if exp_i >= len(day_ord) or exp_i <= d + lag:
        return ENTRY_NO_EXPIRY, exp_i, nan, nan, nan, nan, nan, nan
    t = (day_ord[exp_i] - day_ord[d]) / 365.0
    ks, delta = pick_short_strike(s, t, r, q, atm, stp, call, min_d, max_d, slope, floor, cap, curv)
    if math.isnan(ks):
        return ENTRY_NO_STRIKE, exp_i, nan, nan, nan, nan, nan, nan
    w = max(min_steps * stp, round(width_pct * s / stp) * stp)
    kl = ks + w if call else ks - w
    mid = spread_mid(s, ks, kl, t, r, q, atm, call, slope, floor, cap, curv)
    hs = half_spread(mid, hs_pct, min_half(hs_min, tick, s))
    return ENTRY_FOUND, exp_i, ks, kl, w, delta, mid, hs


@njit(cache=True)
def size_contracts(
    equity: float, risk_pc: float, mult: float, scaled: int, risk_pct: float, n_fixed: float
) -> int:
    """Contracts before limits: scaled (equity x risk % / max loss per contract) or fixed,
    times the regime multiplier, floored."""
    if scaled == 1:
        return math.floor(equity * risk_pct / risk_pc * mult)
    return math.floor(n_fixed * mult + 1e-9)


@njit(cache=True)
def fit_limits(  # type: ignore[no-untyped-def]
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
def record_trade(trades_out, c, n_tr, pos, d, reason, debit, mid_out, pnl):  # type: ignore[no-untyped-def]
    for f in range(N_FIELDS):
        trades_out[c, n_tr, f] = pos[f]
    trades_out[c, n_tr, F_EXIT] = d
    trades_out[c, n_tr, F_REASON] = reason
    trades_out[c, n_tr, F_DEBIT] = debit
    trades_out[c, n_tr, F_MID_OUT] = mid_out
    trades_out[c, n_tr, F_PNL] = pnl
    trades_out[c, n_tr, F_STATE] = STATE_OPEN


@njit(cache=True)
def record_settled(  # type: ignore[no-untyped-def]
    trades_out, c, n_tr, p_num, p_tk, n_before, n_open, d, fee_row, record, max_trades
):
    """Record the positions ``settle_at_open`` just moved behind the open ones (rows
    ``n_open .. n_before - 1``), in the order they settled; return the new trade count. Shared
    by ``engine._run`` and ``chain_engine._run_chains`` (the trade's P&L includes its entry
    fees)."""
    for i in range(n_before - 1, n_open - 1, -1):
        if record and n_tr < max_trades:
            ncon = p_num[i, F_CONTRACTS]
            record_trade(
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
def sorts_before(put_a: int, exp_a: int, k_a: float, put_b: int, exp_b: int, k_b: float) -> bool:
    """(type, expiry, strike) of a row ordered before the key."""
    if put_a != put_b:
        return put_a < put_b
    if exp_a != exp_b:
        return exp_a < exp_b
    return k_a < k_b


@njit(cache=True)
def lower_bound(lo, hi, put, expiry, strike, p, e, k):  # type: ignore[no-untyped-def]
    """First row in [lo, hi) not ordered before (p, e, k)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if sorts_before(put[mid], expiry[mid], strike[mid], p, e, k):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def is_quoted(bid: float, ask: float) -> bool:
    return ask > 0.0 and ask >= bid and bid >= 0.0


@njit(cache=True)
def pair_quotes(bid, ask, short, long):  # type: ignore[no-untyped-def]
    """Mid (short minus long) and half spread (sum of both legs' half spreads) of a spread
    from the quotes of its two rows."""
    mid = 0.5 * (bid[short] + ask[short]) - 0.5 * (bid[long] + ask[long])
    half = 0.5 * (ask[short] - bid[short]) + 0.5 * (ask[long] - bid[long])
    return mid, half


@njit(cache=True)
def find_quote(lo, hi, put, expiry, strike, p, e, k):  # type: ignore[no-untyped-def]
    """Row of exactly (p, e, k) in [lo, hi), or -1."""
    i = lower_bound(lo, hi, put, expiry, strike, p, e, k)
    if i < hi and put[i] == p and expiry[i] == e and strike[i] == k:
        return i
    return -1


@njit(cache=True)
def chain_entry(  # type: ignore[no-untyped-def]
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
    expiration before it would settle today). Shared by ``chain_engine._run_chains`` and
    ``trade_paths``."""
    want_put = 0 if call else 1
    first = max(today + dte, next_day)
    e0 = lower_bound(lo, hi, put, expiry, strike, want_put, first, -1.0)
    if e0 >= hi or put[e0] != want_put or expiry[e0] > last_day:
        return -1, -1, -1, np.nan
    exp_ord = expiry[e0]
    e1 = lower_bound(e0, hi, put, expiry, strike, want_put, exp_ord + 1, -1.0)
    t = (exp_ord - today) / 365.0
    mid_d = 0.5 * (min_d + max_d)
    best = -1
    best_gap = np.inf
    best_delta = np.nan
    for row in range(e0, e1):
        k = strike[row]
        if (call and k <= s) or (not call and k >= s):
            continue
        if not is_quoted(bid[row], ask[row]):
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
        if not is_quoted(bid[row], ask[row]):
            continue
        gap = abs(k - want_k)
        # ties go to the strike further out
        if gap < long_gap or (gap == long_gap and abs(k - ks) > abs(strike[long_row] - ks)):
            long_gap = gap
            long_row = row
    return exp_ord, best, long_row, best_delta
