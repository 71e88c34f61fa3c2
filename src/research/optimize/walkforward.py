"""Walk-forward optimisation: pick the best variant on each in-sample (IS) window, trade it on
the out-of-sample (OOS) window that follows, and stitch the OOS results together.

>>> splits = walk_forward_splits(panel.dates, is_years=5, oos_years=1.5)  # doctest: +SKIP
>>> wf = walk_forward(panel, variants, splits, regimes=labels)               # doctest: +SKIP
>>> wf.folds, wf.oos_equity, wf.walk_forward_efficiency, wf.oos_matrix       # doctest: +SKIP

Conventions
-----------
- **Windows** are runs of trading dates of the panel. Every IS and every OOS window is a
  separate backtest (``optimize.grids._window`` then one ``run_kernel`` call for all variants)
  that starts flat with the config's ``initial_equity``: no position is carried across a window
  boundary, and, as in every window run, the engine opens no spread expiring after the window's
  last date (so the last ~``target_dte`` days of a window have no new entries).
- **No look-ahead**: a fold's winner is chosen from metrics of backtests that only received the
  IS window's rows of the panel (closes, IV, regime codes); the OOS window starts after the IS
  window ends. Regime labels must themselves be causal (each label from data up to its date, as
  ``backtest.service.regime_labels`` produces).
- **Selection**: highest (or lowest, ``higher_is_better=False``) ``metric`` among the variants
  on the IS window; ties go to the first variant in the given order; NaN never wins (±inf are
  ordinary values). A fold where every variant's metric is NaN raises ``ValueError``.
- **Window returns**: daily simple returns of a window's equity, the first day measured from the
  initial equity (``r_0 = V_0 / initial - 1``, ``r_t = V_t / V_{t-1} - 1``), so that compounding a
  window's returns reproduces ``V_t / initial``. ``window_return = V_last / initial - 1``. The
  ``Metrics`` columns (``compute_metrics``) measure from the window's first close instead.
- **Stitched OOS equity**: starts at the first winner's ``initial_equity``; each fold's OOS curve
  of its winner is rescaled to start from the previous fold's last stitched value:
  ``stitched_t = previous_end × V_t / initial`` — i.e. the fold's OOS returns compounded onto the
  previous fold's end value. Its daily returns are ``oos_returns``.
- **Walk-forward efficiency** (Pardo, *The Evaluation and Optimization of Trading Strategies*,
  2008): per fold, the winner's annualised OOS return divided by its annualised IS return, both
  as CAGR over the window (``compute_metrics``: ``(V_last / V_0) ** (365.25 / days) - 1``); the
  result is the mean over folds. A fold whose IS CAGR is ≤ 0 (or NaN) has no meaningful ratio
  (the sign would flip): its efficiency is NaN and it is left out of the mean. 1.0 means the
  OOS kept the IS pace; Pardo regards ≥ 0.5 as acceptable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.market_panel import MarketPanel
from research.backtest.metrics import Metrics, compute_metrics
from research.backtest.run import RegimeCodes, regime_codes, run_kernel
from research.optimize.grids import METRIC_COLUMNS, Variant, _window_slice

__all__ = [
    "END_SLACK",
    "MIN_WINDOW_DAYS",
    "TRADE_METRICS",
    "Fold",
    "Mode",
    "WalkForwardResult",
    "walk_forward",
    "walk_forward_efficiency",
    "walk_forward_splits",
]

Mode = Literal["rolling", "anchored"]

MIN_WINDOW_DAYS = 2
"""Fewest trading dates an IS or OOS window may hold (one daily return)."""

END_SLACK = pd.Timedelta(days=7)
"""A window reaching past the data counts as covered when the data's last date is at most this
far before the window's (exclusive) calendar end: the gap is weekends and holidays."""

TRADE_METRICS: frozenset[str] = frozenset({"trades", "win_rate", "avg_pnl", "profit_factor"})
"""Metric columns that need the trades (NaN with ``trade_metrics=False``)."""

_DAYS_PER_YEAR = 365.25
_MONTH_TOL = 1e-9

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: an IS window and the OOS window after it (inclusive trading
    dates)."""

    fold: int
    """0-based position of the fold."""
    is_start: pd.Timestamp
    is_end: pd.Timestamp
    oos_start: pd.Timestamp
    oos_end: pd.Timestamp


def _check_dates(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(dates, pd.DatetimeIndex):
        raise TypeError(f"dates must be a pandas DatetimeIndex, got {type(dates).__name__}")
    if len(dates) == 0:
        raise ValueError("dates is empty")
    if dates.hasnans:
        raise ValueError("dates has missing values (NaT)")
    if not (dates.is_monotonic_increasing and dates.is_unique):
        raise ValueError("dates must be strictly increasing (sorted, no duplicates)")
    return dates


def _positive_years(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of years > 0, got {value!r}")
    return float(value)


def _whole_months(years: float) -> int | None:
    months = years * 12
    return int(round(months)) if abs(months - round(months)) < _MONTH_TOL else None


class _Calendar:
    """Calendar offsets in whole months when every length is a whole number of months, else
    in whole days (``round(years × 365.25)``); integer arithmetic keeps boundaries exact."""

    def __init__(self, *years: float) -> None:
        months = [_whole_months(y) for y in years]
        self.monthly = all(m is not None for m in months)

    def units(self, years: float) -> int:
        if self.monthly:
            return int(round(years * 12))
        return int(round(years * _DAYS_PER_YEAR))

    def shift(self, ts: pd.Timestamp, units: int) -> pd.Timestamp:
        if self.monthly:
            return pd.Timestamp(ts + pd.DateOffset(months=units))
        return pd.Timestamp(ts + pd.Timedelta(days=units))


def _between(dates: pd.DatetimeIndex, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DatetimeIndex:
    """Dates in ``[lo, hi)``."""
    return dates[(dates >= lo) & (dates < hi)]


def _fold(k: int, is_dates: pd.DatetimeIndex, oos_dates: pd.DatetimeIndex) -> Fold:
    for label, window in (("IS", is_dates), ("OOS", oos_dates)):
        if len(window) < MIN_WINDOW_DAYS:
            raise ValueError(
                f"fold {k}: the {label} window has {len(window)} trading date(s); each window "
                f"needs at least {MIN_WINDOW_DAYS} (longer windows, or fewer folds)"
            )
    return Fold(
        fold=k,
        is_start=pd.Timestamp(is_dates[0]),
        is_end=pd.Timestamp(is_dates[-1]),
        oos_start=pd.Timestamp(oos_dates[0]),
        oos_end=pd.Timestamp(oos_dates[-1]),
    )


def walk_forward_splits(
    dates: pd.DatetimeIndex,
    *,
    is_years: float,
    oos_years: float | None = None,
    mode: Mode = "rolling",
    step_years: float | None = None,
    n_folds: int | None = None,
) -> list[Fold]:
    """Walk-forward folds over trading dates.

    Two ways to lay out the OOS windows (give exactly one of ``oos_years`` and ``n_folds``):

    - ``oos_years``: calendar windows measured from the first date ``t0``. Fold ``k``'s OOS
      window holds the dates in ``[t0 + is + k·step, t0 + is + k·step + oos)``; its IS window
      the dates in ``[t0 + k·step, t0 + is + k·step)`` (``rolling``) or
      ``[t0, t0 + is + k·step)`` (``anchored``). ``step`` defaults to ``oos_years`` (the OOS
      windows are then consecutive); a larger step leaves untested gaps between them.
      Lengths that are all whole months use calendar months (``DateOffset``), otherwise
      ``round(years × 365.25)`` days. Folds are added while the data cover the OOS window
      (the last date at most :data:`END_SLACK` before its calendar end); a shorter remainder
      at the end is not used.
    - ``n_folds``: the first IS window is ``[t0, t0 + is)``; the trading dates after it are
      split into ``n_folds`` consecutive OOS windows of (nearly) equal numbers of trading dates
      covering the data to the last date (``np.array_split``). Fold ``k``'s IS window ends just
      before its OOS window and starts at ``t0`` (``anchored``) or at ``t0`` moved forward by
      as many calendar days as the OOS start moved since fold 0 (``rolling``: the IS window
      keeps fold 0's calendar length).

    Parameters
    ----------
    dates : pd.DatetimeIndex
        Trading dates, strictly increasing (e.g. ``MarketPanel.dates``).
    is_years : float
        In-sample length in years (> 0).
    oos_years : float, optional
        Out-of-sample length in years (> 0).
    mode : {"rolling", "anchored"}, default "rolling"
        ``rolling``: fixed-length IS window moving forward with the OOS windows; ``anchored``:
        every IS window starts at the first date (it grows).
    step_years : float, optional
        Distance between consecutive folds' OOS starts (default ``oos_years``; not less than
        it, so OOS windows never overlap). Only with ``oos_years``.
    n_folds : int, optional
        Number of OOS windows after the first IS window.

    Returns
    -------
    list[Fold]
        In time order; IS before OOS within each fold, OOS windows non-overlapping.

    Raises
    ------
    ValueError
        Bad lengths or mode, both or neither of ``oos_years`` and ``n_folds``, or a span of
        dates too short for one fold (or for ``n_folds`` OOS windows of at least
        :data:`MIN_WINDOW_DAYS` dates each).
    """
    dates = _check_dates(dates)
    if mode not in ("rolling", "anchored"):
        raise ValueError(f"mode must be 'rolling' or 'anchored', got {mode!r}")
    is_years = _positive_years("is_years", is_years)
    if (oos_years is None) == (n_folds is None):
        raise ValueError("give exactly one of oos_years and n_folds")
    t0, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    span = (last - t0) / pd.Timedelta(days=1) / _DAYS_PER_YEAR
    where = f"dates {t0.date()}..{last.date()} ({span:.2f} years)"

    if n_folds is not None:
        if step_years is not None:
            raise ValueError("step_years applies with oos_years, not with n_folds")
        if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 1:
            raise ValueError(f"n_folds must be an integer >= 1, got {n_folds!r}")
        cal = _Calendar(is_years)
        boundary = cal.shift(t0, cal.units(is_years))
        rest = dates[dates >= boundary]
        first_is = dates[dates < boundary]
        if len(first_is) < MIN_WINDOW_DAYS or len(rest) < n_folds * MIN_WINDOW_DAYS:
            raise ValueError(
                f"{where} too short for {is_years:g} IS years and {n_folds} OOS folds of at "
                f"least {MIN_WINDOW_DAYS} trading dates: {len(rest)} trading dates after the "
                f"first IS window ending {boundary.date()}"
            )
        chunks = np.array_split(np.arange(len(rest)), int(n_folds))
        first_oos = pd.Timestamp(rest[0])
        folds = []
        for k, chunk in enumerate(chunks):
            oos = rest[chunk]
            start = t0 if mode == "anchored" else t0 + (pd.Timestamp(oos[0]) - first_oos)
            folds.append(_fold(k, _between(dates, start, pd.Timestamp(oos[0])), oos))
        return folds

    assert oos_years is not None
    oos_years = _positive_years("oos_years", oos_years)
    step = oos_years if step_years is None else _positive_years("step_years", step_years)
    cal = _Calendar(is_years, oos_years, step)
    is_u, oos_u, step_u = cal.units(is_years), cal.units(oos_years), cal.units(step)
    if step_u < oos_u:
        raise ValueError(
            f"step_years={step:g} is shorter than oos_years={oos_years:g}: OOS windows would "
            "overlap"
        )
    folds = []
    k = 0
    while True:
        is_lo = t0 if mode == "anchored" else cal.shift(t0, k * step_u)
        is_hi = cal.shift(t0, is_u + k * step_u)
        oos_hi = cal.shift(t0, is_u + k * step_u + oos_u)
        if oos_hi - END_SLACK > last:
            break
        folds.append(_fold(k, _between(dates, is_lo, is_hi), _between(dates, is_hi, oos_hi)))
        k += 1
    if not folds:
        raise ValueError(
            f"{where} too short for one fold of {is_years:g} IS + {oos_years:g} OOS years"
        )
    return folds


# --------------------------------------------------------------------------------------------
# Walk-forward run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """A walk-forward run (see the module docstring for the conventions)."""

    folds: pd.DataFrame
    """One row per fold: ``fold, is_start, is_end, oos_start, oos_end, is_days, oos_days,
    winner, is_metric, oos_metric`` (the winner's selection metric IS and OOS), ``is_cagr,
    oos_cagr, efficiency`` (Pardo's ratio for the fold, NaN when ``is_cagr`` ≤ 0),
    ``oos_return`` (the winner's OOS ``window_return``), ``oos_rank`` (the winner's OOS rank
    among the variants by the metric, 1 = best), ``n_variants``."""
    table: pd.DataFrame = field(repr=False)
    """Long table, one row per (fold, variant, split): ``fold, variant, split`` (``is`` or
    ``oos``), ``start, end, days``, the metrics (``grids.METRIC_COLUMNS``), ``window_return``,
    ``avg_heat`` (mean over the window's days of max loss at risk / equity),
    ``rank`` (by the selection metric within the fold and split; 1 = best, ties share the
    smallest rank, NaN metric → NaN) and ``winner`` (the fold's IS choice)."""
    oos_equity: pd.Series = field(repr=False)
    """Stitched OOS equity of the winners on the OOS dates ($)."""
    oos_returns: pd.Series = field(repr=False)
    """Daily returns of ``oos_equity`` (first day of a fold relative to the previous fold's end,
    first day overall relative to the initial equity)."""
    oos_matrix: pd.DataFrame = field(repr=False)
    """Daily OOS window returns of every variant (dates × variant names), the folds' OOS windows
    concatenated; ``oos_returns`` is the winner's column fold by fold. For PBO/SPA on OOS
    data."""
    walk_forward_efficiency: float
    """Mean over folds of Pardo's OOS / IS annualised-return ratio (NaN if no fold has a
    positive IS CAGR)."""
    winner_counts: pd.Series = field(repr=False)
    """Folds won by each variant (every variant, in the given order; name ``wins``)."""
    metric: str
    higher_is_better: bool
    splits: tuple[Fold, ...] = field(repr=False)

    rate: float = 0.0
    """The configs' risk-free rate (annual): Sharpe ratios are of excess returns over it."""

    def oos_metrics(self) -> Metrics:
        """``compute_metrics`` of the stitched OOS equity (equity statistics only; the curve
        jumps over any gap between OOS windows; Sharpe of excess returns over ``rate``)."""
        return compute_metrics(self.oos_equity, rf=self.rate)


def walk_forward_efficiency(is_annual: npt.ArrayLike, oos_annual: npt.ArrayLike) -> float:
    """Pardo's walk-forward efficiency: mean over folds of annualised OOS return / annualised IS
    return.

    Parameters
    ----------
    is_annual, oos_annual : array-like
        Per fold, the selected variant's annualised return (fraction, e.g. CAGR) in and out of
        sample.

    Returns
    -------
    float
        Mean of ``oos / is`` over the folds whose IS return is > 0 and whose OOS return is
        finite (a ratio against an IS loss has no meaning: its sign flips); NaN if none.
    """
    ratios = _fold_efficiency(
        np.asarray(is_annual, dtype=np.float64), np.asarray(oos_annual, dtype=np.float64)
    )
    usable = np.isfinite(ratios)
    return float(np.mean(ratios[usable])) if usable.any() else math.nan


def _fold_efficiency(is_annual: FloatArray, oos_annual: FloatArray) -> FloatArray:
    if is_annual.shape != oos_annual.shape or is_annual.ndim != 1:
        raise ValueError(
            f"is_annual and oos_annual must be 1-D of the same length, got shapes "
            f"{is_annual.shape} and {oos_annual.shape}"
        )
    ok = np.isfinite(is_annual) & (is_annual > 0) & np.isfinite(oos_annual)
    out = np.full(is_annual.shape, np.nan)
    out[ok] = oos_annual[ok] / is_annual[ok]
    return out


@dataclass(frozen=True, eq=False)
class _WindowRun:
    """All variants on one window."""

    dates: pd.DatetimeIndex
    equity: FloatArray
    """variants × days ($)."""
    returns: FloatArray
    """variants × days, first day relative to the initial equity."""
    rows: list[dict[str, float]]


def _run_window(
    panel: MarketPanel,
    codes: RegimeCodes,
    variants: Sequence[Variant],
    trade_metrics: bool,
) -> _WindowRun:
    configs = [v.config for v in variants]
    out = run_kernel(panel, configs, code_sets=codes, record_trades=trade_metrics)
    dates = panel.dates
    equity = np.asarray(out.equity, dtype=np.float64)
    initial = np.array([c.initial_equity for c in configs], dtype=np.float64)
    previous = np.concatenate([initial[:, None], equity[:, :-1]], axis=1)
    returns = equity / previous - 1.0
    rows = []
    for i in range(len(configs)):
        trades = None
        if trade_metrics:
            trades = out.pnl_frame(i, dates)
        m = compute_metrics(pd.Series(equity[i], index=dates), trades, rf=configs[i].rate).to_dict()
        row = {k: float(m[k]) for k in METRIC_COLUMNS}
        if not trade_metrics:
            row.update(dict.fromkeys(TRADE_METRICS, math.nan))
        row["window_return"] = float(equity[i, -1] / initial[i] - 1.0)
        row["avg_heat"] = float(np.nanmean(out.heat[i]))
        rows.append(row)
    return _WindowRun(dates, equity, returns, rows)


def _pick(values: FloatArray, higher_is_better: bool) -> int | None:
    """Index of the best non-NaN value (first on ties); None if all are NaN."""
    valid = ~np.isnan(values)
    if not valid.any():
        return None
    key = values if higher_is_better else -values
    best = np.max(key[valid])
    return int(np.flatnonzero(valid & (key == best))[0])


def _ranks(values: FloatArray, higher_is_better: bool) -> FloatArray:
    ranked = pd.Series(values).rank(ascending=not higher_is_better, method="min")
    return np.asarray(ranked.to_numpy(), dtype=np.float64)


def _check_inputs(
    panel: MarketPanel,
    variants: Sequence[Variant],
    splits: Sequence[Fold],
    metric: str,
    trade_metrics: bool,
) -> None:
    if len(variants) == 0:
        raise ValueError("variants is empty")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"variant names must be unique; duplicated: {dups}")
    if len(splits) == 0:
        raise ValueError("splits is empty (walk_forward_splits builds them)")
    if metric not in METRIC_COLUMNS:
        raise ValueError(f"metric must be one of {list(METRIC_COLUMNS)}, got {metric!r}")
    if metric in TRADE_METRICS and not trade_metrics:
        raise ValueError(f"metric {metric!r} needs the trades: use trade_metrics=True")
    previous: Fold | None = None
    for f in splits:
        if not f.is_start <= f.is_end < f.oos_start <= f.oos_end:
            raise ValueError(
                f"fold {f.fold}: need is_start <= is_end < oos_start <= oos_end, got "
                f"{f.is_start.date()}..{f.is_end.date()} / {f.oos_start.date()}..{f.oos_end.date()}"
            )
        if previous is not None and not previous.oos_end < f.oos_start:
            raise ValueError(
                f"fold {f.fold}: its OOS window starts {f.oos_start.date()}, not after fold "
                f"{previous.fold}'s ends {previous.oos_end.date()} (OOS windows must be in time "
                "order and not overlap)"
            )
        previous = f
    first, last = panel.dates[0], panel.dates[-1]
    lo = min(f.is_start for f in splits)
    if lo < first or splits[-1].oos_end > last:
        raise ValueError(
            f"splits cover {lo.date()}..{splits[-1].oos_end.date()}, beyond the "
            f"panel's {first.date()}..{last.date()}"
        )


def walk_forward(
    panel: MarketPanel,
    variants: Sequence[Variant],
    splits: Sequence[Fold],
    *,
    regimes: pd.DataFrame | None = None,
    metric: str = "sharpe",
    higher_is_better: bool = True,
    trade_metrics: bool = True,
    progress: Callable[[str], None] | None = None,
) -> WalkForwardResult:
    """Walk-forward optimisation of ``variants`` over ``splits``.

    For each fold: backtest every variant on the IS window (one ``run_kernel`` call), choose
    the best by ``metric`` using the IS results only, then backtest every variant on the OOS
    window (one call) — the winner's row is its OOS run, the others are reported alongside.
    Each window run starts flat from the initial equity (module docstring).

    Parameters
    ----------
    panel : MarketPanel
        Market data covering the splits (``market_panel`` / ``service.load_panel``).
    variants : sequence of Variant
        Candidate configurations with unique names (``grids.multiplier_variants`` etc.).
    splits : sequence of Fold
        ``walk_forward_splits`` output (OOS windows in time order, non-overlapping).
    regimes : pd.DataFrame, optional
        Regime labels (``date, symbol, regime``) the sizing multipliers refer to; must be
        causal.
    metric : str, default "sharpe"
        Selection metric, one of ``grids.METRIC_COLUMNS``.
    higher_is_better : bool, default True
        False to pick the smallest value (e.g. ``ann_vol``).
    trade_metrics : bool, default True
        Record trades for the trade statistics (``trades, win_rate, avg_pnl,
        profit_factor``); False saves memory on large grids (those columns are then NaN).
    progress : callable, optional
        Called with a line of text after each fold.

    Returns
    -------
    WalkForwardResult
        ``folds``, ``table``, ``oos_equity``, ``oos_returns``, ``oos_matrix``,
        ``walk_forward_efficiency``, ``winner_counts`` (see :class:`WalkForwardResult`).

    Raises
    ------
    ValueError
        No variants or splits, duplicate variant names, an unknown metric, splits out of order
        or outside the panel, or a fold where every variant's IS metric is NaN.
    """
    _check_inputs(panel, variants, splits, metric, trade_metrics)
    names = [v.name for v in variants]
    fold_rows: list[dict[str, object]] = []
    table_rows: list[dict[str, object]] = []
    matrix_parts: list[pd.DataFrame] = []
    equity_parts: list[pd.Series] = []
    return_parts: list[pd.Series] = []
    level: float | None = None  # stitched value at the end of the previous fold
    winners: list[int] = []
    codes, labels = regime_codes(panel, regimes)

    def window(start: pd.Timestamp, end: pd.Timestamp) -> tuple[MarketPanel, RegimeCodes]:
        sl = _window_slice(panel, start, end)
        return panel.slice(sl), RegimeCodes(codes[None, sl], labels)

    for f in splits:
        runs = {"is": _run_window(*window(f.is_start, f.is_end), variants, trade_metrics)}
        is_values = np.array([row[metric] for row in runs["is"].rows], dtype=np.float64)
        w = _pick(is_values, higher_is_better)
        if w is None:
            raise ValueError(
                f"fold {f.fold} ({f.is_start.date()}..{f.is_end.date()}): {metric} is NaN for "
                "every variant in sample, so there is no winner (a longer IS window, or another "
                "metric)"
            )
        winners.append(w)
        runs["oos"] = _run_window(*window(f.oos_start, f.oos_end), variants, trade_metrics)
        oos = runs["oos"]
        ranks = {}
        for split, run in runs.items():
            values = np.array([row[metric] for row in run.rows], dtype=np.float64)
            ranks[split] = _ranks(values, higher_is_better)
            for i, name in enumerate(names):
                table_rows.append(
                    {
                        "fold": f.fold,
                        "variant": name,
                        "split": split,
                        "start": run.dates[0],
                        "end": run.dates[-1],
                        "days": len(run.dates),
                        **run.rows[i],
                        "rank": ranks[split][i],
                        "winner": i == w,
                    }
                )
        initial = float(variants[w].config.initial_equity)
        stitched = (initial if level is None else level) * oos.equity[w] / initial
        level = float(stitched[-1])
        equity_parts.append(pd.Series(stitched, index=oos.dates))
        return_parts.append(pd.Series(oos.returns[w], index=oos.dates))
        matrix_parts.append(pd.DataFrame(oos.returns.T, index=oos.dates, columns=names))
        is_row, oos_row = runs["is"].rows[w], oos.rows[w]
        fold_rows.append(
            {
                "fold": f.fold,
                "is_start": f.is_start,
                "is_end": f.is_end,
                "oos_start": f.oos_start,
                "oos_end": f.oos_end,
                "is_days": len(runs["is"].dates),
                "oos_days": len(oos.dates),
                "winner": names[w],
                "is_metric": is_row[metric],
                "oos_metric": oos_row[metric],
                "is_cagr": is_row["cagr"],
                "oos_cagr": oos_row["cagr"],
                "efficiency": float(
                    _fold_efficiency(np.array([is_row["cagr"]]), np.array([oos_row["cagr"]]))[0]
                ),
                "oos_return": oos_row["window_return"],
                "oos_rank": ranks["oos"][w],
                "n_variants": len(variants),
            }
        )
        if progress is not None:
            progress(
                f"fold {f.fold}: IS {f.is_start.date()}..{f.is_end.date()} winner {names[w]} "
                f"({metric} {is_row[metric]:.3g}); OOS {f.oos_start.date()}..{f.oos_end.date()} "
                f"{metric} {oos_row[metric]:.3g}, rank {ranks['oos'][w]:g}/{len(variants)}"
            )

    folds = pd.DataFrame(fold_rows)
    wfe = walk_forward_efficiency(folds["is_cagr"], folds["oos_cagr"])
    counts = np.bincount(np.asarray(winners, dtype=np.int64), minlength=len(variants))
    oos_matrix = pd.concat(matrix_parts)
    oos_matrix.index.name = "date"
    oos_matrix.columns.name = "variant"
    oos_equity = pd.concat(equity_parts).rename("equity")
    oos_equity.index.name = "date"
    oos_returns = pd.concat(return_parts).rename("return")
    oos_returns.index.name = "date"
    return WalkForwardResult(
        folds=folds,
        table=pd.DataFrame(table_rows),
        oos_equity=oos_equity,
        oos_returns=oos_returns,
        oos_matrix=oos_matrix,
        walk_forward_efficiency=wfe,
        winner_counts=pd.Series(counts, index=pd.Index(names, name="variant"), name="wins"),
        metric=metric,
        higher_is_better=higher_is_better,
        splits=tuple(splits),
        rate=float(variants[0].config.rate),
    )
