"""Performance metrics of a daily equity curve and its trades (pure pandas/numpy).

Inputs
------
- ``equity``: a ``pd.Series`` of account value in $ indexed by date (a ``DatetimeIndex``),
  trading days only, strictly increasing dates, finite values > 0.
- ``trades``: a ``pd.DataFrame`` with at least ``entry_date``, ``exit_date`` (dates) and
  ``pnl`` (in $) — closed trades, one row each.

Conventions
-----------
- Daily simple returns ``r_t = V_t / V_{t-1} - 1`` (one fewer than the equity points).
- Annualisation uses 252 trading days; ``years`` is calendar days / 365.25.
- Standard deviations are sample standard deviations (``ddof=1``), as in empyrical.
- The risk-free rate ``rf`` is annual and compounded to a daily rate
  ``rf_d = (1 + rf) ** (1 / 252) - 1``; it is both the Sharpe excess and the Sortino target.
  Backtests pass their config's ``rate`` (the one rate used in pricing and earned on cash), so
  an account sitting in cash has a Sharpe ratio of 0 (excess returns within 1e-12 of zero).
- Sortino uses the standard downside deviation over **all** days (not the standard deviation
  of the negative days only)::

      DD = sqrt(mean(min(r_t - rf_d, 0) ** 2))        # mean over every day
      sortino = mean(r_t - rf_d) / DD * sqrt(252)

  which is empyrical's ``sortino_ratio`` definition.
- Drawdowns are fractions ``V_t / max_{s<=t} V_s - 1`` (≤ 0).

>>> m = compute_metrics(equity, trades)          # doctest: +SKIP
>>> m.sharpe, m.max_drawdown, m.to_dict()        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from research._typing import FloatArray
from research.constants import TRADING_DAYS

__all__ = [
    "PERIODS_PER_YEAR",
    "STRESS_WINDOWS",
    "Metrics",
    "StressWindow",
    "compare",
    "compute_metrics",
    "drawdown_series",
    "grid_metrics",
    "metrics_frame",
    "stress_table",
    "yearly_returns",
]

PERIODS_PER_YEAR = TRADING_DAYS
"""Trading days per year used to annualise daily statistics."""

DAYS_PER_YEAR = 365.25
"""Calendar days per year used for ``years`` and CAGR."""

TRADE_COLUMNS: tuple[str, ...] = ("entry_date", "exit_date", "pnl")

_RISK_FREE_TOL = 1e-12
"""Daily excess returns whose standard deviation is below this are rounding noise (cash)."""


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_equity(equity: pd.Series) -> pd.Series:
    """Validate an equity curve and return it as float64 (same index)."""
    if not isinstance(equity, pd.Series):
        raise TypeError(f"equity must be a pandas Series, got {type(equity).__name__}")
    if len(equity) == 0:
        raise ValueError("equity is empty: need at least one dated value")
    if not isinstance(equity.index, pd.DatetimeIndex):
        raise ValueError(
            f"equity index must be a DatetimeIndex of dates, got {type(equity.index).__name__}"
        )
    index = equity.index
    if index.hasnans:
        raise ValueError("equity index has missing dates (NaT)")
    if not index.is_monotonic_increasing:
        pos = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
        raise ValueError(
            f"equity dates are not monotonic increasing: {index[pos]} follows {index[pos - 1]}"
        )
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        raise ValueError(f"equity dates are not unique: {dup} appears more than once")
    try:
        values = equity.to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"equity values must be numeric: {exc}") from exc
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"equity has non-finite values (NaN/inf), first at {index[bad][0]}")
    nonpos = values <= 0
    if nonpos.any():
        first = int(np.flatnonzero(nonpos)[0])
        raise ValueError(
            f"equity has non-positive values (account value must be > 0): "
            f"{values[first]} at {index[first]}"
        )
    return pd.Series(values, index=index, name=equity.name)


def _check_trades(trades: pd.DataFrame | None) -> pd.DataFrame:
    """Validate a trades table; return ``entry_date``, ``exit_date`` (datetime), ``pnl``."""
    if trades is None:
        return pd.DataFrame(
            {
                "entry_date": pd.Series([], dtype="datetime64[ns]"),
                "exit_date": pd.Series([], dtype="datetime64[ns]"),
                "pnl": pd.Series([], dtype="float64"),
            }
        )
    if not isinstance(trades, pd.DataFrame):
        raise TypeError(f"trades must be a pandas DataFrame, got {type(trades).__name__}")
    missing = [c for c in TRADE_COLUMNS if c not in trades.columns]
    if missing:
        raise ValueError(f"trades is missing column(s) {missing}; needs {list(TRADE_COLUMNS)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(trades)))
    for col in ("entry_date", "exit_date"):
        try:
            dates = pd.to_datetime(trades[col].to_numpy())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"trades column {col!r} must hold dates: {exc}") from exc
        if dates.hasnans:
            raise ValueError(f"trades column {col!r} has missing dates (NaT)")
        out[col] = dates
    try:
        pnl = trades["pnl"].to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trades column 'pnl' must be numeric: {exc}") from exc
    if not np.isfinite(pnl).all():
        raise ValueError("trades column 'pnl' has non-finite values (NaN/inf)")
    out["pnl"] = pnl
    if (out["exit_date"] < out["entry_date"]).any():
        raise ValueError("trades has exit_date before entry_date")
    return out


def _align_tz(ts: pd.Timestamp, index: pd.DatetimeIndex) -> pd.Timestamp:
    """Give a naive window bound the time zone of ``index`` (so they compare)."""
    if index.tz is not None and ts.tz is None:
        return ts.tz_localize(index.tz)
    if index.tz is None and ts.tz is not None:
        return ts.tz_localize(None)
    return ts


def _align_tz_index(dates: pd.DatetimeIndex, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Give trade dates the time-zone awareness of the equity index (so they compare)."""
    if index.tz is not None and dates.tz is None:
        return dates.tz_localize(index.tz)
    if index.tz is None and dates.tz is not None:
        return dates.tz_localize(None)
    return dates


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _daily_returns(values: np.ndarray) -> np.ndarray:
    returns: np.ndarray = values[1:] / values[:-1] - 1.0
    return returns


def _daily_rf(rf: float) -> float:
    if not math.isfinite(rf) or rf <= -1.0:
        raise ValueError(f"rf must be a finite annual rate > -1, got {rf}")
    return float((1.0 + rf) ** (1.0 / PERIODS_PER_YEAR) - 1.0)


def _max_drawdown_of(values: np.ndarray) -> float:
    """Most negative ``v / running_max - 1`` (0.0 for a never-falling path)."""
    if len(values) == 0:
        return math.nan
    return float(np.min(values / np.maximum.accumulate(values) - 1.0))


def _sharpe(returns: np.ndarray, rf_d: float) -> float:
    if len(returns) < 2:
        return math.nan
    excess = returns - rf_d
    std = float(np.std(excess, ddof=1))
    mean = float(np.mean(excess))
    if not std > _RISK_FREE_TOL:
        # a risk-free series (cash earning rf): zero excess return, Sharpe 0 by convention;
        # a constant non-zero excess has no finite ratio
        return 0.0 if abs(mean) <= _RISK_FREE_TOL else math.nan
    return mean / std * math.sqrt(PERIODS_PER_YEAR)


def _downside_deviation(returns: np.ndarray, target: float) -> float:
    """Daily downside deviation ``sqrt(mean(min(r - target, 0)^2))`` over all days."""
    if len(returns) == 0:
        return math.nan
    shortfall = np.minimum(returns - target, 0.0)
    return float(np.sqrt(np.mean(shortfall**2)))


def _sortino(returns: np.ndarray, target: float) -> float:
    if len(returns) < 2:
        return math.nan
    mean_excess = float(np.mean(returns - target))
    dd = _downside_deviation(returns, target)
    if dd > 0:
        return mean_excess / dd * math.sqrt(PERIODS_PER_YEAR)
    # No day below target: unbounded when the mean excess is positive, undefined when 0.
    return math.inf if mean_excess > 0 else math.nan


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak at each date.

    Parameters
    ----------
    equity : pd.Series
        Account value in $ indexed by date (strictly increasing, values > 0).

    Returns
    -------
    pd.Series
        Named ``drawdown``, same index as ``equity``: ``equity / equity.cummax() - 1``, a
        fraction ≤ 0 (0 at every new high).

    Raises
    ------
    ValueError
        Empty equity, non-monotonic or duplicate dates, non-finite or non-positive values.
    """
    eq = _check_equity(equity)
    values = eq.to_numpy()
    dd = values / np.maximum.accumulate(values) - 1.0
    return pd.Series(dd, index=eq.index, name="drawdown")


@dataclass(frozen=True)
class _Drawdown:
    depth: float
    start: pd.Timestamp | None
    trough: pd.Timestamp | None
    end: pd.Timestamp | None


def _max_drawdown_episode(eq: pd.Series) -> _Drawdown:
    values = eq.to_numpy()
    peaks = np.maximum.accumulate(values)
    dd = values / peaks - 1.0
    i_trough = int(np.argmin(dd))  # first date of the deepest drawdown
    depth = float(dd[i_trough])
    if depth == 0.0:
        return _Drawdown(0.0, None, None, None)
    # Peak: the last date at the high-water mark before the trough.
    i_start = int(np.flatnonzero(values[: i_trough + 1] >= peaks[i_trough])[-1])
    after = np.flatnonzero(values[i_trough + 1 :] >= peaks[i_trough])
    index = eq.index
    end = pd.Timestamp(index[i_trough + 1 + int(after[0])]) if len(after) else None
    return _Drawdown(depth, pd.Timestamp(index[i_start]), pd.Timestamp(index[i_trough]), end)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """Summary statistics of one equity curve and its trades.

    Rates and drawdowns are fractions (0.1 = 10 %); $ amounts are in the equity's currency.
    NaN marks a statistic that is undefined for the input (e.g. fewer than two returns, no
    trades, no drawdown for ``calmar``).
    """

    start: pd.Timestamp
    """First date of the curve."""
    end: pd.Timestamp
    """Last date of the curve."""
    years: float
    """Calendar days from ``start`` to ``end`` / 365.25."""
    initial: float
    """First account value ($)."""
    final: float
    """Last account value ($)."""
    total_return: float
    """``final / initial - 1``."""
    cagr: float
    """``(final / initial) ** (1 / years) - 1`` (NaN when ``years`` is 0)."""
    ann_vol: float
    """Sample std (ddof=1) of daily simple returns × sqrt(252)."""
    sharpe: float
    """Mean daily excess return / its sample std × sqrt(252); excess over the daily rf."""
    sortino: float
    """Mean daily excess return / daily downside deviation × sqrt(252) (inf: no down day)."""
    downside_deviation: float
    """Annualised downside deviation: sqrt(mean over ALL days of min(r - rf_d, 0)²) × sqrt(252)."""
    max_drawdown: float
    """Deepest drawdown from a running peak, ≤ 0 (0.0 if the curve never falls)."""
    max_drawdown_start: pd.Timestamp | None
    """Peak date of the deepest drawdown (last date at that high); None without a drawdown."""
    max_drawdown_trough: pd.Timestamp | None
    """Date of the deepest point (first such date); None without a drawdown."""
    max_drawdown_end: pd.Timestamp | None
    """Recovery date (first date back at or above the peak); None if not recovered."""
    calmar: float
    """``cagr / |max_drawdown|`` (NaN when ``max_drawdown`` is 0)."""
    trades: int
    """Number of trades."""
    win_rate: float
    """Share of trades with pnl > 0 (zero-pnl trades count in the denominator)."""
    avg_pnl: float
    """Mean pnl per trade ($)."""
    avg_win: float
    """Mean pnl of trades with pnl > 0 ($); NaN if none."""
    avg_loss: float
    """Mean pnl of trades with pnl < 0 ($, negative); NaN if none."""
    profit_factor: float
    """Gross wins / |gross losses|; inf with wins and no losses; NaN with neither."""
    best_trade: float
    """Largest trade pnl ($)."""
    worst_trade: float
    """Smallest trade pnl ($)."""
    exposure: float | None = None
    """Share of equity dates with at least one open position; None if no positions given."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, in declaration order.

        Returns
        -------
        dict
            ``{field name: value}`` for every field of :class:`Metrics` (``start`` … ``exposure``).
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Metrics))


def _trade_stats(trades: pd.DataFrame) -> dict[str, Any]:
    return _pnl_stats(trades["pnl"].to_numpy(dtype="float64"))


def _pnl_stats(pnl: np.ndarray) -> dict[str, Any]:
    """Trade statistics of closed trades' P&L (in closing order)."""
    n = len(pnl)
    if n == 0:
        nan = math.nan
        return dict(
            trades=0, win_rate=nan, avg_pnl=nan, avg_win=nan, avg_loss=nan,
            profit_factor=nan, best_trade=nan, worst_trade=nan,
        )  # fmt: skip
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    gross_win = float(wins.sum())
    gross_loss = float(-losses.sum())
    if gross_loss > 0:
        profit_factor = gross_win / gross_loss
    else:
        profit_factor = math.inf if gross_win > 0 else math.nan
    return dict(
        trades=n,
        win_rate=len(wins) / n,
        avg_pnl=float(pnl.mean()),
        avg_win=float(wins.mean()) if len(wins) else math.nan,
        avg_loss=float(losses.mean()) if len(losses) else math.nan,
        profit_factor=profit_factor,
        best_trade=float(pnl.max()),
        worst_trade=float(pnl.min()),
    )


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    rf: float = 0.0,
    positions: pd.Series | None = None,
) -> Metrics:
    """Compute return, risk, drawdown and trade statistics.

    Parameters
    ----------
    equity : pd.Series
        Daily account value in $ indexed by trading date (strictly increasing, values > 0).
    trades : pd.DataFrame, optional
        Closed trades with at least ``entry_date``, ``exit_date`` and ``pnl`` ($). None: no
        trades (``trades`` = 0, trade statistics NaN).
    rf : float, default 0.0
        Annual risk-free rate; daily ``rf_d = (1 + rf) ** (1/252) - 1`` is the Sharpe excess
        and the Sortino target.
    positions : pd.Series, optional
        Count of open positions by date; dates of ``equity`` missing from it count as 0.
        Gives ``exposure``.

    Returns
    -------
    Metrics
        Fields ``start, end, years, initial, final, total_return, cagr, ann_vol, sharpe,
        sortino, downside_deviation, max_drawdown, max_drawdown_start, max_drawdown_trough,
        max_drawdown_end, calmar, trades, win_rate, avg_pnl, avg_win, avg_loss, profit_factor,
        best_trade, worst_trade, exposure`` (see :class:`Metrics`).

    Raises
    ------
    ValueError
        Empty equity, non-monotonic or duplicate dates, non-finite or non-positive values;
        trades missing a column or with missing/invalid values; an invalid ``rf``.
    """
    eq = _check_equity(equity)
    tr = _check_trades(trades)
    rf_d = _daily_rf(rf)
    values = eq.to_numpy()
    returns = _daily_returns(values)
    start = pd.Timestamp(eq.index[0])
    end = pd.Timestamp(eq.index[-1])
    years = (end - start) / pd.Timedelta(days=1) / DAYS_PER_YEAR
    initial = float(values[0])
    final = float(values[-1])
    growth = final / initial
    cagr = growth ** (1.0 / years) - 1.0 if years > 0 else math.nan
    ann_vol = (
        float(np.std(returns, ddof=1)) * math.sqrt(PERIODS_PER_YEAR)
        if len(returns) >= 2
        else math.nan
    )
    dd = _max_drawdown_episode(eq)
    calmar = cagr / abs(dd.depth) if dd.depth < 0 else math.nan
    exposure: float | None = None
    if positions is not None:
        if not isinstance(positions, pd.Series):
            raise TypeError(f"positions must be a pandas Series, got {type(positions).__name__}")
        pos = positions.reindex(eq.index).fillna(0).to_numpy(dtype="float64")
        exposure = float(np.mean(pos > 0))
    return Metrics(
        start=start,
        end=end,
        years=float(years),
        initial=initial,
        final=final,
        total_return=growth - 1.0,
        cagr=float(cagr),
        ann_vol=ann_vol,
        sharpe=_sharpe(returns, rf_d),
        sortino=_sortino(returns, rf_d),
        downside_deviation=_downside_deviation(returns, rf_d) * math.sqrt(PERIODS_PER_YEAR),
        max_drawdown=dd.depth,
        max_drawdown_start=dd.start,
        max_drawdown_trough=dd.trough,
        max_drawdown_end=dd.end,
        calmar=calmar,
        exposure=exposure,
        **_trade_stats(tr),
    )


GRID_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "avg_pnl",
    "profit_factor",
)
"""The columns of ``grid_metrics`` (a grid's table)."""


def grid_metrics(
    equity: FloatArray,
    dates: pd.DatetimeIndex,
    pnl: Sequence[FloatArray],
    rf: FloatArray | float = 0.0,
) -> pd.DataFrame:
    """``compute_metrics`` of many equity curves on the same dates at once (a grid's rows).

    The same formulas as :func:`compute_metrics`, vectorised over the rows of ``equity``
    (tests/backtest/test_metrics.py checks the two agree).

    Parameters
    ----------
    equity : ndarray
        Configs x days account values (finite, > 0).
    dates : pd.DatetimeIndex
        The days (strictly increasing).
    pnl : sequence of ndarray
        Per config, its closed trades' P&L in $ (in the order the trades closed).
    rf : ndarray or float
        Annual risk-free rate per config (or one for all).

    Returns
    -------
    pd.DataFrame
        One row per config, columns ``GRID_METRICS``.

    Raises
    ------
    ValueError
        A shape mismatch, or a curve with a non-finite or non-positive value (named by row).
    """
    values = np.asarray(equity, dtype="float64")
    if values.ndim != 2 or values.shape[1] != len(dates) or len(pnl) != len(values):
        raise ValueError(
            f"grid_metrics: equity {values.shape} needs one column per date ({len(dates)}) "
            f"and one trade list per row ({len(pnl)})"
        )
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"equity row {row} has a non-finite or non-positive value {values[row, col]!r} "
            f"at {dates[col]}"
        )
    n = len(values)
    rates = np.broadcast_to(np.asarray(rf, dtype="float64"), (n,))
    rf_d = np.array([_daily_rf(float(r)) for r in rates])[:, None]
    returns = values[:, 1:] / values[:, :-1] - 1.0
    years = (dates[-1] - dates[0]) / pd.Timedelta(days=1) / DAYS_PER_YEAR if n else 0.0
    growth = values[:, -1] / values[:, 0] if n else np.empty(0)
    nan = np.full(n, math.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        cagr = growth ** (1.0 / years) - 1.0 if years > 0 else nan
        ann_vol, sharpe, sortino = nan, nan, nan
        if returns.shape[1] >= 2:
            ann_vol = np.std(returns, ddof=1, axis=1) * math.sqrt(PERIODS_PER_YEAR)
            excess = returns - rf_d
            std = np.std(excess, ddof=1, axis=1)
            mean = np.mean(excess, axis=1)
            flat = np.where(np.abs(mean) <= _RISK_FREE_TOL, 0.0, math.nan)
            sharpe = np.where(std > _RISK_FREE_TOL, mean / std * math.sqrt(PERIODS_PER_YEAR), flat)
            down = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2, axis=1))
            unbounded = np.where(mean > 0, math.inf, math.nan)
            sortino = np.where(down > 0, mean / down * math.sqrt(PERIODS_PER_YEAR), unbounded)
        depth = np.min(values / np.maximum.accumulate(values, axis=1) - 1.0, axis=1)
        calmar = np.where(depth < 0, cagr / np.abs(depth), math.nan)
    stats = [_pnl_stats(np.asarray(p, dtype="float64")) for p in pnl]
    frame = pd.DataFrame(
        {
            "total_return": growth - 1.0,
            "cagr": cagr,
            "ann_vol": ann_vol,
            "sharpe": sharpe,
            "sortino": sortino,
            "max_drawdown": depth,
            "calmar": calmar,
            "trades": [s["trades"] for s in stats],
            "win_rate": [s["win_rate"] for s in stats],
            "avg_pnl": [s["avg_pnl"] for s in stats],
            "profit_factor": [s["profit_factor"] for s in stats],
        }
    )
    return frame


def metrics_frame(rows: Iterable[tuple[str, Metrics]]) -> pd.DataFrame:
    """Stack named :class:`Metrics` into a table.

    Parameters
    ----------
    rows : iterable of (str, Metrics)
        ``(name, metrics)`` pairs; names must be unique.

    Returns
    -------
    pd.DataFrame
        One row per name, index named ``name`` (in the given order); columns are the
        :class:`Metrics` fields ``start`` … ``exposure`` (``exposure`` None becomes NaN).

    Raises
    ------
    ValueError
        Duplicate names.
    """
    pairs = list(rows)
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"metrics_frame: duplicate names {dups}")
    records = [m.to_dict() for _, m in pairs]
    frame = pd.DataFrame.from_records(records, columns=list(METRIC_FIELDS))
    frame.index = pd.Index(names, name="name")
    frame["exposure"] = pd.to_numeric(frame["exposure"]).astype("float64")  # None -> NaN
    return frame


def compare(curves: Mapping[str, pd.Series], *, rf: float = 0.0) -> pd.DataFrame:
    """Metrics of several named equity curves side by side (no trades).

    Parameters
    ----------
    curves : Mapping[str, pd.Series]
        Name → daily equity curve (see :func:`compute_metrics`).
    rf : float, default 0.0
        Annual risk-free rate, as in :func:`compute_metrics`.

    Returns
    -------
    pd.DataFrame
        As :func:`metrics_frame`: one row per name (index ``name``), columns the
        :class:`Metrics` fields; trade columns are ``trades`` = 0 and NaN.
    """
    return metrics_frame((name, compute_metrics(c, rf=rf)) for name, c in curves.items())


# --------------------------------------------------------------------------------------------
# Yearly returns
# --------------------------------------------------------------------------------------------


def yearly_returns(equity: pd.Series) -> pd.DataFrame:
    """Calendar-year returns and drawdowns.

    Each year is measured from a base value: the last value of the curve before that year
    (the previous year's close), or for the first year the curve's first value.

    Parameters
    ----------
    equity : pd.Series
        Daily account value in $ indexed by date.

    Returns
    -------
    pd.DataFrame
        One row per calendar year present, in order, columns:

        - ``year`` (int);
        - ``return``: the year's last value / base - 1;
        - ``max_drawdown``: deepest drawdown (≤ 0) of the path base, then the year's values —
          peaks set before the year do not count, a fall from the base on the first day does.
    """
    eq = _check_equity(equity)
    values = eq.to_numpy()
    years_of = pd.DatetimeIndex(eq.index).year.to_numpy()
    rows: list[dict[str, Any]] = []
    for year in pd.unique(years_of):
        pos = np.flatnonzero(years_of == year)
        first, last = int(pos[0]), int(pos[-1])
        base = values[first - 1] if first > 0 else values[first]
        path = values[first - 1 : last + 1] if first > 0 else values[first : last + 1]
        rows.append(
            {
                "year": int(year),
                "return": float(values[last] / base - 1.0),
                "max_drawdown": _max_drawdown_of(path),
            }
        )
    return pd.DataFrame(rows, columns=["year", "return", "max_drawdown"]).astype(
        {"year": "int64", "return": "float64", "max_drawdown": "float64"}
    )


# --------------------------------------------------------------------------------------------
# Stress windows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StressWindow:
    """A named market stress period (both dates inclusive)."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", pd.Timestamp(self.start))
        object.__setattr__(self, "end", pd.Timestamp(self.end))
        if self.end < self.start:
            raise ValueError(f"stress window {self.name!r} ends before it starts")


STRESS_WINDOWS: tuple[StressWindow, ...] = (
    StressWindow("2000–02 dot-com bear", pd.Timestamp("2000-03-24"), pd.Timestamp("2002-10-09")),
    StressWindow(
        "2007–09 GFC peak-to-trough", pd.Timestamp("2007-10-09"), pd.Timestamp("2009-03-09")
    ),
    StressWindow("2008 crisis", pd.Timestamp("2008-01-01"), pd.Timestamp("2008-12-31")),
    StressWindow("2011 debt-ceiling", pd.Timestamp("2011-07-22"), pd.Timestamp("2011-10-03")),
    StressWindow("2015–16 selloffs", pd.Timestamp("2015-08-01"), pd.Timestamp("2016-02-29")),
    StressWindow("2018 Q4", pd.Timestamp("2018-10-01"), pd.Timestamp("2018-12-31")),
)
"""Default stress windows, by start date. Dates are S&P 500 closes: the dot-com bear from the
2000-03-24 peak to the 2002-10-09 trough; the financial crisis twice — as the GFC peak-to-trough
(2007-10-09 to 2009-03-09) and as calendar year 2008; the 2011 US debt-ceiling/downgrade selloff
(2011-07-22 to 2011-10-03); the Aug-2015 and Jan–Feb-2016 selloffs; and Q4 2018."""

STRESS_COLUMNS: tuple[str, ...] = (
    "window", "start", "end", "days", "return", "max_drawdown", "trades", "pnl", "complete",
)  # fmt: skip


def stress_table(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    windows: Sequence[StressWindow] = STRESS_WINDOWS,
) -> pd.DataFrame:
    """Performance of the curve (and trades) inside each stress window.

    Like :func:`yearly_returns`, a window is measured from a base value: the last equity value
    before the window's start, or the first value inside the window when the curve starts
    within it. A window the curve only partly covers is measured on the covered part
    (``complete`` is False).

    Parameters
    ----------
    equity : pd.Series
        Daily account value in $ indexed by date.
    trades : pd.DataFrame, optional
        Closed trades with ``entry_date``, ``exit_date``, ``pnl``.
    windows : sequence of StressWindow, default STRESS_WINDOWS
        The windows, reported in this order.

    Returns
    -------
    pd.DataFrame
        One row per window, columns:

        - ``window`` (name), ``start``, ``end`` (the window's dates, inclusive);
        - ``days``: equity dates inside the window (0 when it lies outside the curve);
        - ``return``: last value in the window / base - 1 (NaN when ``days`` is 0);
        - ``max_drawdown``: deepest drawdown (≤ 0) of base then the window's values (NaN when
          ``days`` is 0);
        - ``trades``: trades entered in the window (NaN without ``trades``);
        - ``pnl``: total pnl ($) of trades exited in the window (NaN without ``trades``);
        - ``complete``: the curve covers the whole window (first date ≤ start, last ≥ end).
    """
    eq = _check_equity(equity)
    tr = _check_trades(trades) if trades is not None else None
    values = eq.to_numpy()
    index = pd.DatetimeIndex(eq.index)
    if tr is not None:
        entry = _align_tz_index(pd.DatetimeIndex(tr["entry_date"]), index)
        exit_ = _align_tz_index(pd.DatetimeIndex(tr["exit_date"]), index)
        trade_pnl = tr["pnl"].to_numpy(dtype="float64")
    rows: list[dict[str, Any]] = []
    for w in windows:
        start = _align_tz(w.start, index)
        end = _align_tz(w.end, index)
        lo = int(index.searchsorted(start, side="left"))
        hi = int(index.searchsorted(end, side="right"))
        days = max(hi - lo, 0)
        ret = mdd = math.nan
        if days > 0:
            path = values[lo - 1 : hi] if lo > 0 else values[lo:hi]
            ret = float(values[hi - 1] / path[0] - 1.0)
            mdd = _max_drawdown_of(path)
        n_trades: float = math.nan
        pnl: float = math.nan
        if tr is not None:
            n_trades = float(((entry >= start) & (entry <= end)).sum())
            pnl = float(trade_pnl[(exit_ >= start) & (exit_ <= end)].sum())
        rows.append(
            {
                "window": w.name,
                "start": w.start,
                "end": w.end,
                "days": days,
                "return": ret,
                "max_drawdown": mdd,
                "trades": n_trades,
                "pnl": pnl,
                "complete": bool(index[0] <= start and index[-1] >= end),
            }
        )
    frame = pd.DataFrame(rows, columns=list(STRESS_COLUMNS))
    frame = frame.astype({"days": "int64", "return": "float64", "max_drawdown": "float64"})
    if tr is not None:
        frame["trades"] = frame["trades"].astype("int64")
    return frame
