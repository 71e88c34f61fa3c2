"""Expiries settle on the last trading day on or before the expiration date, at that day's close
(PM) or, for AM-settled monthlies (SPX, NDX, RUT third Fridays, the Saturdays after them, and
the Thursdays before third Fridays that are exchange holidays), at that day's open — in the
chain kernel, the model kernel and the shared-path engine (phase 1 and 2), each case worked by
hand; plus the calendar and the settlement helper the kernels share.

The chain cases reuse one position throughout: a 105/107 call spread (short 105, long 107) opened
on the first day from these quotes (``ENTRY``)::

    105 call  bid 0.35 ask 0.45  mid 0.40  half spread 0.05
    107 call  bid 0.10 ask 0.20  mid 0.15  half spread 0.05

    spread mid 0.40 - 0.15 = 0.25; half spreads 0.05 + 0.05 = 0.10;
    credit at chain_fill 0.5: 0.25 - 0.5 x 0.10 = 0.20 a share

One contract, multiplier 100, fees $0.65 per contract per leg: $1.30 paid at entry, nothing at
settlement. Settled at intrinsic ``min(max(S - 105, 0), 2)``, the trade's P&L is
``(0.20 - intrinsic) x 100 - 1.30``: +$18.70 when it expires worthless, −$81.30 at S = 106,
−$131.30 at S = 106.5, −$181.30 at S >= 107.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from research.backtest import chain_engine, conventions, engine, portfolio
from research.backtest.chains import chain_book
from research.backtest.kernels import F_CONTRACTS, F_CREDIT, F_DEBIT, F_PNL, N_FIELDS
from research.backtest.kernels import monthly_expiry as _monthly_expiry
from research.backtest.kernels import monthly_on as _monthly_on
from research.backtest.kernels import settle_at_open as _settle_at_open
from research.backtest.market_panel import MarketPanel, strike_steps
from research.backtest.path_cache import PathCache
from research.backtest.run import GridOutput, run_backtest, run_kernel
from research.backtest.spreads import BacktestConfig

FEES = 2 * 0.65  # entry: two legs, one contract
CREDIT = 0.20
WORTHLESS = round(CREDIT * 100 - FEES, 2)  # +18.70
ENTRY = {
    103.0: (0.90, 1.00, 0.20),
    104.0: (0.55, 0.65, 0.12),
    105.0: (0.35, 0.45, 0.09),  # |delta| closest to 0.10: the short leg
    106.0: (0.20, 0.30, 0.06),
    107.0: (0.10, 0.20, 0.04),  # 1.5 % of 100 further out: 106.5, the tie goes to 107
}
# held: the spread closes at 0.25 (mid 0.20 + half of 0.10), no profit target or stop
HOLD = {105.0: (0.25, 0.35, 0.40), 107.0: (0.05, 0.15, 0.40)}
# a stop: mid 0.85 - 0.25 = 0.60, closing price 0.65; a loss of 0.45 >= 125 % of the credit
STOP = {105.0: (0.80, 0.90, 0.40), 107.0: (0.20, 0.30, 0.40)}
HOLD_TO_EXPIRY = BacktestConfig().replace(**{"limits.max_positions": 1})


def _pnl(intrinsic: float) -> float:
    return round((CREDIT - intrinsic) * 100 - FEES, 2)


def _chain_panel(
    dates: pd.DatetimeIndex,
    expiration: str | list[str],
    closes: dict[str, float],
    *,
    ticker: str = "AAA",
    opens: dict[str, float] | None = None,
    quotes: dict[str, dict[float, tuple[float, float, float]]] | None = None,
) -> MarketPanel:
    """One ticker at 100 (``closes`` from a date on; ``opens`` on a date, else the close)
    quoting the calls of ``expiration`` (or of each of several): ``ENTRY`` on the first day,
    ``HOLD`` after (``quotes``: other quotes on given dates)."""
    close = pd.Series(np.nan, index=dates)
    for day, value in closes.items():
        close[dates >= pd.Timestamp(day)] = value
    close = close.fillna(100.0)
    open_ = close.copy()
    for day, value in (opens or {}).items():
        open_[pd.Timestamp(day)] = value
    rows = []
    for exp in [expiration] if isinstance(expiration, str) else expiration:
        for d, date in enumerate(dates):
            day_quotes = ENTRY if d == 0 else HOLD
            day_quotes = (quotes or {}).get(str(date.date()), day_quotes)
            for strike, (bid, ask, delta) in day_quotes.items():
                rows.append(
                    {
                        "quote_date": date,
                        "underlying": ticker,
                        "expiration": pd.Timestamp(exp),
                        "type": "call",
                        "strike": strike,
                        "bid": bid,
                        "ask": ask,
                        "underlying_price": 100.0,
                        "delta": delta,
                    }
                )
    shape = (len(dates), 1)
    iv = np.full(shape, 0.2)
    panel = MarketPanel(
        dates=dates,
        tickers=(ticker,),
        close=close.to_numpy().reshape(shape),
        atm_iv=iv,
        mark_iv=iv,
        iv_percentile=np.full(shape, 50.0),
        vix=iv * 100,
        iv_source=np.full(shape, "index", dtype=object),
        strike_steps=strike_steps(close.to_numpy().reshape(shape)),
        dropped_days=0,
        open=open_.to_numpy().reshape(shape),
    )
    return dataclasses.replace(panel, chains=chain_book(dates, (ticker,), pd.DataFrame(rows)))


def _assert_same(got: GridOutput, want: GridOutput) -> None:
    np.testing.assert_array_equal(got.equity, want.equity)
    np.testing.assert_array_equal(got.n_trades, want.n_trades)
    assert got.trades is not None and want.trades is not None
    n = int(want.n_trades[0])
    np.testing.assert_array_equal(got.trades[0, :n], want.trades[0, :n])


def _first_trade(panel: MarketPanel, cfg: BacktestConfig = HOLD_TO_EXPIRY) -> pd.Series:
    """The first trade of the reference kernel, after checking phase 2 (shared paths) books
    the same equity and trades bit for bit."""
    want = run_kernel(panel, [cfg], engine="per_config")
    got = run_kernel(panel, [cfg], engine="shared", cache=PathCache())
    _assert_same(got, want)
    return run_backtest(panel, cfg).trades.iloc[0]


# --- the settlement day: the last trading day on or before the expiration -------------------


def test_saturday_expiration_settles_at_fridays_close() -> None:
    """The brief's example: expiring Saturday 2020-02-08 (not a third Friday's Saturday: the
    third Friday is 02-21), Friday 02-07 close 100, Monday 02-10 close 110. Settled on Friday:
    intrinsic max(100 - 105, 0) = 0, P&L 0.20 x 100 - 1.30 = +18.70. (Settled on the Monday,
    the old rule: intrinsic min(110 - 105, 2) = 2.00, P&L (0.20 - 2.00) x 100 - 1.30 = -181.30.)
    """
    dates = pd.bdate_range("2020-01-02", "2020-02-14")
    panel = _chain_panel(dates, "2020-02-08", {"2020-02-10": 110.0})
    t = _first_trade(panel)
    assert (t["short_strike"], t["long_strike"], t["contracts"]) == (105.0, 107.0, 1)
    assert t["credit"] == pytest.approx(CREDIT)
    assert t["expiration"] == pd.Timestamp("2020-02-08")
    assert t["exit_date"] == pd.Timestamp("2020-02-07") and t["exit_reason"] == "expiration"
    assert t["debit"] == 0.0
    assert t["pnl"] == pytest.approx(WORTHLESS) == pytest.approx(18.70)
    assert _pnl(2.0) == -181.30  # what the Monday settlement booked


def test_holiday_expiration_settles_at_the_previous_trading_days_close() -> None:
    """Expiring Good Friday 2015-04-03 (exchanges closed: not a panel day), Thursday 04-02
    close 104, Monday 04-06 close 106.5. Settled on Thursday: intrinsic 0, +18.70 (on the
    Monday: min(106.5 - 105, 2) = 1.50, (0.20 - 1.50) x 100 - 1.30 = -131.30)."""
    dates = pd.bdate_range("2015-03-02", "2015-04-17").drop(pd.Timestamp("2015-04-03"))
    panel = _chain_panel(dates, "2015-04-03", {"2015-04-02": 104.0, "2015-04-06": 106.5})
    t = _first_trade(panel)
    assert t["exit_date"] == pd.Timestamp("2015-04-02") and t["exit_reason"] == "expiration"
    assert t["debit"] == 0.0 and t["pnl"] == pytest.approx(WORTHLESS)
    assert _pnl(1.5) == -131.30


def test_an_expiration_that_would_settle_on_the_entry_day_is_not_chosen() -> None:
    """Quotes from Friday 2020-02-07 list the expirations of Saturday 02-08 and Friday 02-14.
    With a one-day target the first on or after 02-08 is the Saturday one, but its last trading
    day is the entry day itself: the entry takes 02-14, the first listed on or after the next
    trading day (Monday 02-10), and settles there."""
    dates = pd.bdate_range("2020-02-07", "2020-02-21")
    panel = _chain_panel(dates, ["2020-02-08", "2020-02-14"], {})
    t = _first_trade(panel, HOLD_TO_EXPIRY.replace(**{"spread.target_dte": 1}))
    assert t["entry_date"] == dates[0] and t["expiration"] == pd.Timestamp("2020-02-14")
    assert t["exit_date"] == pd.Timestamp("2020-02-14") and t["exit_reason"] == "expiration"
    assert t["pnl"] == pytest.approx(WORTHLESS)


# --- AM settlement: the open of the last trading day ---------------------------------------


# the settlement day opens at 104 (intrinsic 0) and closes at 106 (intrinsic 1.00), with quotes
# at that close that would stop the spread out (closing price 0.65): AM-settled, the spread is
# gone before that close, +18.70; PM-settled, (0.20 - 1.00) x 100 - 1.30 = -81.30
AM, PM = WORTHLESS, _pnl(1.0)


@pytest.mark.parametrize(
    ("ticker", "expiration", "settles", "conventions", "pnl"),
    [
        # the third Friday of February 2020: SPX monthlies settle at the open (SOQ)
        ("SPX", "2020-02-21", "2020-02-21", {}, AM),
        ("NDX", "2020-02-21", "2020-02-21", {}, AM),
        ("RUT", "2020-02-21", "2020-02-21", {}, AM),
        # the Saturday after the third Friday (21 November 2014): pre-2015 monthlies
        ("SPX", "2014-11-22", "2014-11-21", {}, AM),
        # a weekly SPX expiration (second Friday; SPXW) is PM-settled
        ("SPX", "2020-02-14", "2020-02-14", {}, PM),
        # the same third-Friday position on PM-settled symbols: the close
        ("IXIC", "2020-02-21", "2020-02-21", {}, PM),
        ("QQQ", "2020-02-21", "2020-02-21", {}, PM),
        ("SPX", "2020-02-21", "2020-02-21", {"SPX": {"am_settled": False}}, PM),
        # a symbol whose convention turns AM settlement on (e.g. XSP monthlies)
        ("XSP", "2020-02-21", "2020-02-21", {"XSP": {"am_settled": True}}, AM),
    ],
)
def test_chain_am_and_pm_settlement(
    ticker: str, expiration: str, settles: str, conventions: dict, pnl: float
) -> None:
    day = pd.Timestamp(settles)
    dates = pd.bdate_range(day - pd.Timedelta(days=45), day + pd.Timedelta(days=10))
    panel = _chain_panel(
        dates,
        expiration,
        {settles: 106.0, str((day + pd.offsets.BDay(1)).date()): 100.0},
        ticker=ticker,
        opens={settles: 104.0},
        quotes={settles: STOP},
    )
    cfg = HOLD_TO_EXPIRY.replace(conventions=conventions)
    t = _first_trade(panel, cfg)
    assert t["exit_date"] == day and t["exit_reason"] == "expiration"
    assert t["debit"] == (0.0 if pnl == AM else pytest.approx(1.0))
    assert t["pnl"] == pytest.approx(pnl)
    # equity on the settlement day: the cash after entry fees grown to that day, plus the
    # credit kept or less the intrinsic paid; nothing is marked at that close
    res = run_backtest(panel, cfg)
    d = int(dates.get_loc(day))
    growth = 1.02 ** (1 / 252)
    cash = (1e6 - FEES) * growth**d + (pnl + FEES)
    assert res.equity.iloc[d] == pytest.approx(cash, abs=1e-6)


# --- a monthly listed on the Thursday before a third-Friday holiday ----------------------------

# Good Friday 2022-04-15 was the third Friday of April: SPX listed the April monthly on Thursday
# 04-14, AM-settled at that open; a Thursday before a third Friday that trades is a weekly (SPXW)
GOOD_FRIDAY = pd.Timestamp("2022-04-15")
THURSDAY = pd.Timestamp("2022-04-14")


@pytest.mark.parametrize(
    ("friday_trades", "end", "pnl"),
    [
        (False, "2022-04-29", AM),  # Good Friday is not a panel day: the monthly, at the open
        (True, "2022-04-29", PM),  # the Friday is a panel day: a weekly, at the close
        (False, "2022-04-14", PM),  # the panel ends on the Thursday: the Friday is unknown
    ],
)
def test_chain_thursday_before_a_third_friday_holiday_settles_at_its_open(
    friday_trades: bool, end: str, pnl: float
) -> None:
    """A Thursday-dated SPX expiration, 2022-04-14, opening at 104 and closing at 106 (stop
    quotes at that close), as in ``test_chain_am_and_pm_settlement``: AM-settled it keeps the
    credit, +18.70; PM-settled it pays min(106 - 105, 2) = 1.00, -81.30."""
    dates = pd.bdate_range(THURSDAY - pd.Timedelta(days=45), end)
    if not friday_trades:
        dates = dates.drop(GOOD_FRIDAY, errors="ignore")
    panel = _chain_panel(
        dates,
        str(THURSDAY.date()),
        {str(THURSDAY.date()): 106.0, "2022-04-18": 100.0},
        ticker="SPX",
        opens={str(THURSDAY.date()): 104.0},
        quotes={str(THURSDAY.date()): STOP},
    )
    t = _first_trade(panel)
    assert t["expiration"] == THURSDAY and t["exit_date"] == THURSDAY
    assert t["exit_reason"] == "expiration"
    assert t["debit"] == (0.0 if pnl == AM else pytest.approx(1.0))
    assert t["pnl"] == pytest.approx(pnl)


# --- the model kernel: its expiry is a panel day, AM-settled on SPX third Fridays -------------

# 2020-01-22 + 30 calendar days = Friday 2020-02-21, the third Friday: panel day 22
MODEL_DATES = pd.bdate_range("2020-01-22", periods=30)
EXPIRY_DAY = 22
HOLD_MODEL = BacktestConfig().replace(
    **{
        "limits.max_positions": 1,
        "spread.profit_target_pct": 100.0,  # never reached: the spread is held to expiry
        "spread.stop_loss_pct": 1e6,
    }
)


def _model_panel(
    ticker: str, closes: np.ndarray, opens: np.ndarray, dates: pd.DatetimeIndex = MODEL_DATES
) -> MarketPanel:
    shape = (len(dates), 1)
    iv = np.full(shape, 0.2)
    return MarketPanel(
        dates=dates,
        tickers=(ticker,),
        close=closes.reshape(shape),
        atm_iv=iv,
        mark_iv=iv,
        iv_percentile=np.full(shape, 50.0),
        vix=iv * 100,
        iv_source=np.full(shape, "index", dtype=object),
        strike_steps=strike_steps(closes.reshape(shape)),
        dropped_days=0,
        open=opens.reshape(shape),
    )


@pytest.mark.parametrize("ticker", ["SPX", "IXIC"])
def test_model_third_friday_settles_at_the_open_on_spx_and_the_close_on_ixic(ticker: str) -> None:
    """Flat at 1,000 (strike grid 2.5, width 1.5 % = 15); the expiry day (day 22, the third
    Friday) opens at 1,000 and closes at 1,200. The call spread's short strike is above 1,000:
    at the open it is worthless (SPX, AM: P&L = credit x 100 - 1.30); at the close it is worth
    its full width (IXIC, PM: P&L = (credit - 15) x 100 - 1.30)."""
    assert MODEL_DATES[EXPIRY_DAY] == pd.Timestamp("2020-02-21")
    closes = np.full(len(MODEL_DATES), 1000.0)
    closes[EXPIRY_DAY:] = 1200.0
    panel = _model_panel(ticker, closes, np.full(len(MODEL_DATES), 1000.0))
    t = _first_trade(panel, HOLD_MODEL)
    assert t["entry_date"] == MODEL_DATES[0] and t["exit_date"] == MODEL_DATES[EXPIRY_DAY]
    assert t["exit_reason"] == "expiration" and t["short_strike"] > 1000.0
    assert t["long_strike"] - t["short_strike"] == 15.0
    intrinsic = 0.0 if ticker == "SPX" else 15.0
    assert t["debit"] == intrinsic
    assert t["pnl"] == pytest.approx((t["credit"] - intrinsic) * 100 - FEES, abs=1e-9)


@pytest.mark.parametrize("ticker", ["SPX", "IXIC"])
def test_model_exit_ordered_for_a_third_fridays_open_is_superseded_by_am_settlement(
    ticker: str,
) -> None:
    """Fills at the next open: the close before the expiry (day 21) jumps to 1,200, past the
    long strike, so the stop orders an exit for day 22's open, where the index is back at
    1,000. SPX (AM): the settlement at that open supersedes the order: intrinsic 0, no exit
    fees, P&L = credit x 100 - 1.30. IXIC (PM): the order fills at that open, priced at expiry
    (t = 0): intrinsic 0 plus the minimum half-spread of one $0.05 tick, P&L = (credit - 0.05)
    x 100 - 4 x 0.65, a stop loss."""
    closes = np.full(len(MODEL_DATES), 1000.0)
    closes[EXPIRY_DAY - 1] = 1200.0
    panel = _model_panel(ticker, closes, np.full(len(MODEL_DATES), 1000.0))
    cfg = HOLD_MODEL.replace(**{"fills.timing": "next_open", "spread.stop_loss_pct": 125.0})
    t = _first_trade(panel, cfg)
    assert t["entry_date"] == MODEL_DATES[1] and t["exit_date"] == MODEL_DATES[EXPIRY_DAY]
    if ticker == "SPX":
        assert t["exit_reason"] == "expiration" and t["debit"] == 0.0
        assert t["pnl"] == pytest.approx(t["credit"] * 100 - FEES, abs=1e-9)
    else:
        assert t["exit_reason"] == "stop_loss" and t["debit"] == pytest.approx(0.05)
        assert t["pnl"] == pytest.approx((t["credit"] - 0.05) * 100 - 2 * FEES, abs=1e-9)


@pytest.mark.parametrize("friday_trades", [False, True])
def test_model_thursday_expiry_before_good_friday_settles_at_the_open(
    friday_trades: bool,
) -> None:
    """2022-03-15 + 30 calendar days = Thursday 2022-04-14, the model's expiry (a panel day).
    Flat at 1,000, the expiry day opens at 1,000 and closes at 1,200. With Good Friday 04-15
    not a panel day the Thursday is SPX's April monthly: AM, the call spread is worthless at
    that open (debit 0). With the Friday a panel day the Thursday is a weekly: PM, full width
    (15) at that close."""
    dates = pd.bdate_range("2022-03-15", "2022-04-29")
    if not friday_trades:
        dates = dates.drop(GOOD_FRIDAY)
    expiry = int(dates.get_loc(THURSDAY))
    closes = np.full(len(dates), 1000.0)
    closes[expiry:] = 1200.0
    panel = _model_panel("SPX", closes, np.full(len(dates), 1000.0), dates)
    t = _first_trade(panel, HOLD_MODEL)
    assert t["entry_date"] == dates[0] and t["exit_date"] == THURSDAY
    assert t["exit_reason"] == "expiration" and t["short_strike"] > 1000.0
    intrinsic = 15.0 if friday_trades else 0.0
    assert t["debit"] == intrinsic
    assert t["pnl"] == pytest.approx((t["credit"] - intrinsic) * 100 - FEES, abs=1e-9)


# --- the calendar ----------------------------------------------------------------------------


def test_monthly_expiry_days_agree_with_pandas() -> None:
    """Third Fridays (day 15-21) and the Saturdays after them (day 16-22), 1950-2060, from the
    kernel's integer calendar against pandas' (ordinals before 1970 are negative)."""
    days = pd.date_range("1950-01-01", "2060-12-31")
    want = ((days.day_of_week == 4) & (days.day >= 15) & (days.day <= 21)) | (
        (days.day_of_week == 5) & (days.day >= 16) & (days.day <= 22)
    )
    ordinals = days.values.astype("datetime64[D]").astype(np.int64)
    got = np.array([_monthly_expiry(int(o)) for o in ordinals])
    np.testing.assert_array_equal(got, want)
    assert want.sum() == 2 * 12 * 111


def _ordinals(dates: pd.DatetimeIndex) -> np.ndarray:
    return dates.values.astype("datetime64[D]").astype(np.int64)


def _ordinal(day: str) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


@pytest.mark.parametrize(
    ("thursday", "holiday"),
    [
        ("2022-04-14", "2022-04-15"),  # Good Friday
        ("2008-03-20", "2008-03-21"),  # Good Friday
        ("2026-06-18", "2026-06-19"),  # Juneteenth on a third Friday
        ("2027-06-17", "2027-06-18"),  # Juneteenth (a Saturday) observed on the third Friday
    ],
)
def test_thursday_before_a_third_friday_holiday_is_a_monthly(thursday: str, holiday: str) -> None:
    """``_monthly_on``: the Thursday is the monthly when the next day, a third Friday, is not a
    trading day — not a panel day while the panel spans it."""
    weekdays = pd.bdate_range(pd.Timestamp(thursday) - pd.Timedelta(days=40), periods=60)
    closed = _ordinals(weekdays.drop(pd.Timestamp(holiday)))
    day = _ordinal(thursday)
    assert _monthly_on(closed, day)
    assert not _monthly_on(_ordinals(weekdays), day)  # the Friday trades: a weekly (SPXW)
    assert not _monthly_on(closed[closed <= day], day)  # the panel ends on the Thursday
    # the third Friday itself is monthly by its date, whether or not it trades
    assert _monthly_on(closed, _ordinal(holiday)) and _monthly_on(_ordinals(weekdays), day + 1)
    # the Wednesday before, and a Thursday before a holiday that is not a third Friday (Good
    # Friday 2015-04-03 was the first Friday of April) are not
    assert not _monthly_on(closed, day - 1)
    good_friday_2015 = pd.bdate_range("2015-03-02", "2015-04-30").drop(pd.Timestamp("2015-04-03"))
    assert not _monthly_on(_ordinals(good_friday_2015), _ordinal("2015-04-02"))


def test_with_every_weekday_trading_the_monthlies_are_the_calendars() -> None:
    """No missing Friday: ``_monthly_on`` is ``_monthly_expiry`` on every day, 1990-2040."""
    days = pd.date_range("1990-01-01", "2040-12-31")
    panel = _ordinals(pd.bdate_range("1990-01-01", "2040-12-31"))
    ordinals = _ordinals(days)
    got = np.array([_monthly_on(panel, int(o)) for o in ordinals])
    want = np.array([_monthly_expiry(int(o)) for o in ordinals])
    np.testing.assert_array_equal(got, want)


# --- the AM settlement the kernels share -----------------------------------------------------


def _settle_like_the_kernels(
    due: list[bool],
    credit: list[float],
    ncon: list[float],
    tk: list[int],
    debit: list[float],
    cm: list[float],
    realized: float,
) -> tuple[list[int], list[int], float]:
    """The loop each kernel carried before ``_settle_at_open``: visit the slots, settle a due
    one, overwrite it with the last open one and revisit the slot. Returns the positions (by
    original slot) in the order they settled, the open ones in slot order, and the realized
    equity."""
    slots = list(range(len(due)))
    settled: list[int] = []
    i, n = 0, len(slots)
    while i < n:
        k = slots[i]
        if due[k]:
            realized += (credit[k] - debit[k]) * cm[tk[k]] * ncon[k]
            settled.append(k)
            n -= 1
            slots[i] = slots[n]
            continue
        i += 1
    return settled, slots[:n], realized


@pytest.mark.parametrize("seed", range(6))
def test_settle_at_open_books_and_removes_as_the_kernels_did(seed: int) -> None:
    """``engine._settle_at_open`` (used by all three kernels): the same P&L (no fees), added to
    the realized equity in the same order, the open positions left in the same slots, and the
    settled ones behind them in the order they settled with their debit and P&L, every
    per-position array moved along."""
    rng = np.random.default_rng(seed)
    cap = 12
    n = int(rng.integers(1, cap + 1))
    due = rng.random(cap) < 0.5
    due[0] = True
    at_open = rng.uniform(0.0, 5.0, cap)
    p_tk = rng.integers(0, 3, cap).astype(np.int64)
    p_num = rng.uniform(0.1, 4.0, (cap, N_FIELDS))
    p_num[:, F_CONTRACTS] = rng.integers(1, 9, cap)
    p_more = np.vstack([np.arange(cap), 100 + np.arange(cap)]).astype(np.int64)  # slot tags
    cm = np.array([100.0, 50.0, 1000.0])
    want_settled, want_open, want_realized = _settle_like_the_kernels(
        list(due[:n]),
        list(p_num[:n, F_CREDIT]),
        list(p_num[:n, F_CONTRACTS]),
        list(p_tk[:n]),
        list(at_open[:n]),
        list(cm),
        1e6,
    )
    before = p_num.copy(), p_tk.copy(), at_open.copy()
    n_open, realized = _settle_at_open(n, due.copy(), at_open.copy(), p_tk, p_num, p_more, cm, 1e6)
    assert n_open == len(want_open) and realized == want_realized  # bit for bit
    assert list(p_more[0, :n_open]) == want_open
    assert list(p_more[0, n_open:n][::-1]) == want_settled  # the first settled in the last slot
    np.testing.assert_array_equal(p_more[1, :n], 100 + p_more[0, :n])
    num0, tk0, open0 = before
    for i in range(n):
        k = int(p_more[0, i])
        assert p_tk[i] == tk0[k]
        if i < n_open:
            np.testing.assert_array_equal(p_num[i], num0[k])
            continue
        assert p_num[i, F_DEBIT] == open0[k]
        pnl = (num0[k, F_CREDIT] - open0[k]) * cm[tk0[k]] * num0[k, F_CONTRACTS]
        assert p_num[i, F_PNL] == pnl
        others = [f for f in range(N_FIELDS) if f not in (F_DEBIT, F_PNL)]
        np.testing.assert_array_equal(p_num[i, others], num0[k, others])
    assert want_settled  # slot 0 is due


# --- the modules: public names, the kernels' steps ---------------------------------------------


@pytest.mark.parametrize(
    ("module", "kernel", "documented"),
    [
        (engine, "_run", engine),
        (chain_engine, "_run_chains", chain_engine),
        (portfolio, "_portfolio", engine),  # phase 2 walks engine's steps
    ],
)
def test_the_kernels_step_comments_follow_their_docstrings(
    module: ModuleType, kernel: str, documented: ModuleType
) -> None:
    """Each numbered step of the module docstring has its ``# n.`` comment in the kernel, in
    order, and no other numbers are used."""
    steps = re.findall(r"^(\d)\. ", documented.__doc__ or "", re.M)
    source = inspect.getsource(getattr(module, kernel).py_func)
    assert re.findall(r"^\s*# (\d\w*)\. ", source, re.M) == steps
    assert len(steps) == 5 + (documented is engine)


@pytest.mark.parametrize("module", [chain_engine, conventions])
def test_public_names_defined_by_the_module_are_in_its_all(module: ModuleType) -> None:
    """``chain_engine.settlement_day``, ``conventions.am_settled`` and the like: every public
    name a module defines (functions, classes, constants) is exported."""
    tree = ast.parse(inspect.getsource(module))
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            elts = target.elts if isinstance(target, ast.Tuple) else [target]
            defined |= {e.id for e in elts if isinstance(e, ast.Name)}
    public = {name for name in defined if not name.startswith("_")}
    assert public <= set(module.__all__)
    assert set(module.__all__) <= set(vars(module))
