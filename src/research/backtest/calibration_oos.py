"""Is a calibrated model better than the default where it is used — on the strategy's own
spreads, on quote days it was not fitted to?

A fit scored on the quotes it was fitted to says little (on a chain priced from the model's own
family it reads 1.000 by construction). ``out_of_sample`` fits on earlier quote days and scores
on later ones:

- **Folds.** With fewer than ``MIN_TRAIN_DAYS + MIN_SCORED_DAYS`` quote days nothing is
  scored. Below ``WALK_DAYS`` quote days: one split, fit on the first half, score the second.
  From ``WALK_DAYS`` on: anchored walk-forward, score blocks of ``FOLD_DAYS`` quote days, each
  fitted on every quote day before it (the first block starts after ``FOLD_DAYS`` days; a last
  block shorter than ``MIN_SCORED_DAYS`` joins the one before).
- **Fits** per fold (``calibrate.fit_smile``): ``strategy`` (the quotes the strategy trades:
  its side and moneyness — what ``research chains calibrate`` writes) and ``pooled`` (every
  out-of-the-money quote), beside the ``default`` parameters (nothing fitted).
- **Score** per scored day: the spread the chain-priced backtest would open that day
  (``chain_entries.entry_spreads``) priced by each model; ``ratio`` = model mid / chain mid, and
  the error ``|ln ratio|`` (symmetric: 0.8x and 1.25x are equally wrong).

Which model to trust (``trust``, a written rule, tested): the written fit (``strategy``) against
the ``default``, from the per-day difference of their errors, ``|ln r_strategy| - |ln
r_default|``. A model's error moves with the smile, which drifts slowly (an error's
autocorrelation lasts weeks), so the difference's mean is tested with standard errors clustered
by calendar quarter (``research.clustered.clustered_test``). The tests simulate persistent
errors (AR(1), autocorrelation 0.9-0.95 a quote day) to show its size is right there, where
month clusters reject two to three times too often and a day-by-day t-test far more:

- fewer than ``MIN_SCORED_DAYS`` scored days, or fewer than ``MIN_QUARTERS`` calendar quarters:
  **untested**;
- the mean difference below 0 with p < ``ALPHA``: trust the **calibrated** model;
- above 0 with p < ``ALPHA``: trust the **default** (calibration made it worse out of sample);
- otherwise: **either** — no clear difference, and the default fits nothing.

Errors are reported as the median ``|ratio - 1|`` (0.8x: 20 % off). The sentence adds how far
the trusted model still is from the chain: a median error above ``CLOSE_ENOUGH`` (10 %) says
backtests without chains misstate the strategy's credits by about that much, and to price from
quotes where there are any.

Every fit uses quotes of days before the days it scores (the folds), and a day's spread uses that
day's quotes only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from research.backtest.calibrate import (
    SmileFit,
    fit_smile,
    model_mids,
    quote_day_book,
    usable_quotes,
)
from research.backtest.chain_entries import EntrySpreads, entry_spreads
from research.backtest.spreads import BacktestConfig
from research.clustered import clustered_test
from research.numbers import p_text

__all__ = [
    "ALPHA",
    "CLOSE_ENOUGH",
    "MODELS",
    "OutOfSample",
    "Trust",
    "fold_bounds",
    "out_of_sample",
    "trust",
]

MIN_TRAIN_DAYS = 10
MIN_SCORED_DAYS = 10
MIN_QUARTERS = 4
"""Calendar quarters of scored days the rule needs to test (clusters of the test)."""
WALK_DAYS = 126
FOLD_DAYS = 63
ALPHA = 0.05
CLOSE_ENOUGH = 0.10
"""Median |model / chain - 1| of the strategy's spread above which a model is "still off"."""
MODELS: tuple[str, ...] = ("default", "strategy", "pooled")
LABELS = {
    "default": "default model",
    "strategy": "calibrated to the strategy's quotes",
    "pooled": "calibrated to every out-of-the-money quote",
}


def fold_bounds(n_days: int) -> list[tuple[int, int]]:
    """``(test_start, test_stop)`` positions of the scored blocks among ``n_days`` quote days
    (each fitted on the days before ``test_start``; module docstring)."""
    if n_days < MIN_TRAIN_DAYS + MIN_SCORED_DAYS:
        return []
    if n_days < WALK_DAYS:
        return [(n_days // 2, n_days)]
    bounds = [(s, min(s + FOLD_DAYS, n_days)) for s in range(FOLD_DAYS, n_days, FOLD_DAYS)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_SCORED_DAYS:
        bounds[-2:] = [(bounds[-2][0], n_days)]
    return bounds


@dataclass(frozen=True)
class Trust:
    """Which model to trust for backtests without chains (``trust``'s rule)."""

    choice: str
    """``calibrated``, ``default``, ``either`` or ``untested``."""
    text: str
    difference: float
    """Mean of ``|ln r_strategy| - |ln r_default|`` over scored days (NaN: none)."""
    p: float
    days: int
    quarters: int


@dataclass(frozen=True, eq=False)
class OutOfSample:
    """Out-of-sample errors of the default and calibrated models on the strategy's spreads."""

    days: pd.DataFrame = field(repr=False)
    """Per scored day: ``quote_date, underlying, fold, expiration, short_strike,
    long_strike, chain_mid`` and per model ``mid_<m>``, ``ratio_<m>``."""
    folds: pd.DataFrame = field(repr=False)
    """Per fold: ``fold, fit_start, fit_end, scored_start, scored_end, scored_days`` and the
    quotes and parameters of each fit."""
    quote_days: int
    entries: EntrySpreads = field(repr=False)
    schedules: dict[str, tuple[tuple[pd.Timestamp, SmileFit], ...]] = field(
        default_factory=dict, repr=False
    )
    """Per fitted scope (``strategy``, ``pooled``): ``(first scored day, fit)`` of each fold —
    the fit in force from that day (``trade_by_trade`` prices with it, walk-forward)."""

    def table(self) -> pd.DataFrame:
        """Per model: scored days, median model / chain mid, median error ``|ratio - 1|`` and
        the share of days within 5 %."""
        rows = []
        for m in MODELS:
            r = self.days[f"ratio_{m}"].dropna() if len(self.days) else pd.Series(dtype=float)
            rows.append(
                {
                    "model": LABELS[m],
                    "scored_days": len(r),
                    "median_ratio": float(r.median()) if len(r) else math.nan,
                    "median_error": float(np.abs(r - 1).median()) if len(r) else math.nan,
                    "within_5pct": float((np.abs(r - 1) <= 0.05).mean()) if len(r) else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def verdict(self) -> Trust:
        """``trust`` applied to these days."""
        return trust(self.days)


def trust(days: pd.DataFrame, *, alpha: float = ALPHA) -> Trust:
    """Which model to trust, by the rule of the module docstring, from per-day ratios
    (``quote_date, ratio_default, ratio_strategy``)."""
    have = days.dropna(subset=["ratio_default", "ratio_strategy"]) if len(days) else days
    n = len(have)
    if n == 0:
        return Trust(
            "untested",
            "**Untested:** no quote day could be scored out of sample (too few quote days "
            "with a strategy spread to fit on some and score the rest).",
            math.nan,
            math.nan,
            0,
            0,
        )
    r_cal = have["ratio_strategy"].to_numpy(float)
    r_def = have["ratio_default"].to_numpy(float)
    e_cal, e_def = np.abs(np.log(r_cal)), np.abs(np.log(r_def))
    quarters = pd.DatetimeIndex(have["quote_date"]).to_period("Q").astype(str).to_numpy()
    n_q = len(set(quarters))
    test = clustered_test(e_cal - e_def, quarters)
    said = (
        f"median error {np.median(np.abs(r_cal - 1)):.1%} calibrated vs "
        f"{np.median(np.abs(r_def - 1)):.1%} default over {n} quote days out of sample"
    )
    if n < MIN_SCORED_DAYS or n_q < MIN_QUARTERS or not math.isfinite(test.p):
        return Trust(
            "untested",
            f"**Untested:** {said} in {n_q} calendar quarter{'s' if n_q != 1 else ''} — too "
            f"few to tell (the rule needs {MIN_SCORED_DAYS} scored days in at least "
            f"{MIN_QUARTERS} quarters); price backtests from the quotes.",
            test.estimate,
            test.p,
            n,
            n_q,
        )
    p = f"{p_text(test.p)}, errors clustered by quarter, {n_q} quarters"
    if test.p < alpha and test.estimate < 0:
        choice, chosen = "calibrated", r_cal
        text = f"**Trust the calibrated model** for backtests without chains: {said} ({p})."
    elif test.p < alpha:
        choice, chosen = "default", r_def
        text = (
            f"**Trust the default model**: calibrated, it priced the strategy's spreads worse "
            f"out of sample ({said}; {p})."
        )
    else:
        choice, chosen = "either", r_def
        text = (
            f"**No clear difference** between the calibrated and the default model ({said}; "
            f"{p}): the default, which fits nothing, is as good."
        )
    off = float(np.median(np.abs(chosen - 1)))
    if off > CLOSE_ENOUGH:
        text += (
            f" Either way it is still {off:.0%} off the market's spread mid on a typical day: "
            "backtests without chains misstate the strategy's credits by about that much — "
            "price them from quotes where you have them."
        )
    return Trust(choice, text, test.estimate, test.p, n, n_q)


def out_of_sample(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    config: BacktestConfig,
    *,
    dte: tuple[int, int] = (7, 90),
    source: str = "",
    entries: EntrySpreads | None = None,
) -> OutOfSample:
    """Fit on earlier quote days, score on later ones (module docstring); ``entries``: the
    chain's strategy spreads when already computed."""
    if entries is None:
        book, dates, tickers, spot = quote_day_book(chains, config)
        entries = entry_spreads(book, dates, tickers, spot, config, inside_data=False)
    dates = pd.DatetimeIndex(sorted(chains["quote_date"].unique()))
    quotes = usable_quotes(chains, index, config, dte=dte)
    spreads = entries.spreads
    spreads = spreads.loc[spreads["chain_mid"] > 0]
    day_pos = {d: i for i, d in enumerate(dates)}
    scored, folds = [], []
    schedules: dict[str, list[tuple[pd.Timestamp, SmileFit]]] = {"strategy": [], "pooled": []}
    for k, (start, stop) in enumerate(fold_bounds(len(dates))):
        fit_end = dates[start - 1]
        train = quotes.loc[quotes["quote_date"] <= fit_end]
        fits: dict[str, SmileFit | None] = {"default": None}
        for scope in ("strategy", "pooled"):
            try:
                fits[scope] = fit_smile(train, config, scope=scope, source=source)
            except ValueError:
                fits[scope] = None  # too few quotes before this fold: not scored
        if fits["strategy"] is None:
            continue
        pos = spreads["quote_date"].map(day_pos)
        test = spreads.loc[(pos >= start) & (pos < stop)].reset_index(drop=True)
        out = test[
            [
                "quote_date",
                "underlying",
                "expiration",
                "short_strike",
                "long_strike",
                "chain_mid",
            ]
        ].assign(fold=k)
        for m in MODELS:
            fit = fits[m]
            if m != "default" and fit is None:
                out[f"mid_{m}"] = np.nan
            else:
                cfg = config if fit is None else config.replace(**fit.config_changes())
                out[f"mid_{m}"] = model_mids(test, index, cfg)
            out[f"ratio_{m}"] = out[f"mid_{m}"] / out["chain_mid"]
        scored.append(out)
        for scope in ("strategy", "pooled"):
            fit = fits[scope]
            if fit is not None:
                schedules[scope].append((pd.Timestamp(dates[start]), fit))
        row: dict[str, object] = {
            "fold": k,
            "fit_start": dates[0],
            "fit_end": fit_end,
            "scored_start": dates[start],
            "scored_end": dates[stop - 1],
            "scored_days": len(out),
        }
        for scope in ("strategy", "pooled"):
            fit = fits[scope]
            row[f"{scope}_quotes"] = fit.quotes if fit is not None else 0
            row[f"{scope}_atm_ratio"] = fit.atm_ratio if fit is not None else math.nan
            row[f"{scope}_slope"] = fit.slope if fit is not None else math.nan
        folds.append(row)
    days = pd.concat(scored, ignore_index=True) if scored else pd.DataFrame()
    return OutOfSample(
        days,
        pd.DataFrame(folds),
        len(dates),
        entries,
        {k: tuple(v) for k, v in schedules.items()},
    )
