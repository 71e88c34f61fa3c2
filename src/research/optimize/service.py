"""Grid runs from the command line or a notebook: panels, regimes, run, store, diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.backtest.run import MarketPanel
from research.backtest.spreads import BacktestConfig
from research.optimize import grids
from research.optimize.overfitting import OverfittingReport, overfitting_report

DEFAULT_BASE = BacktestConfig().replace(**{"sizing.mode": "scaled"})
"""Grids size by risk (2% of equity by max loss) so multipliers act on a continuous size."""


def base_config(skew_path: str | Path | None = None) -> BacktestConfig:
    """``DEFAULT_BASE``, priced with the smile of a ``research chains calibrate`` file when
    ``skew_path`` is given (resolved against the project root or notebooks/)."""
    if skew_path is None:
        return DEFAULT_BASE
    from research.backtest.calibrate import load_smile
    from research.config import resolve_path

    return DEFAULT_BASE.replace(**load_smile(resolve_path(skew_path)).config_changes())


@dataclass(frozen=True)
class GridRun:
    """A finished grid: results, where they were stored, and the overfitting diagnostics per
    ticker set (the benchmark is the ``flat`` multiplier set or the first variant)."""

    result: grids.GridResult
    run_id: str | None
    reports: dict[str, OverfittingReport]


def panel_loader(
    start: str | None = None, end: str | None = None
) -> Callable[[tuple[str, ...]], MarketPanel]:
    """A cached ticker set → panel function over the embedded data."""
    from research.backtest.service import load_panel

    cache: dict[tuple[str, ...], MarketPanel] = {}

    def panel_for(tickers: tuple[str, ...]) -> MarketPanel:
        if tickers not in cache:
            cache[tickers] = load_panel(list(tickers), start=start, end=end)[0]
        return cache[tickers]

    return panel_for


def regimes_for(model: str | None, tickers: Sequence[str]) -> pd.DataFrame | None:
    """Labels of ``model`` on the embedded bars of ``tickers`` (None without a model)."""
    if model is None:
        return None
    from research.backtest.service import load_panel, regime_labels

    _, bars, iv = load_panel(list(tickers))
    return regime_labels(model, bars, iv)


def run_named_grid(
    kind: str,
    ticker_sets: Sequence[tuple[str, ...]],
    *,
    base: BacktestConfig = DEFAULT_BASE,
    grid_file: str | Path | None = None,
    regime_model: str | None = "bull_bear_vol",
    start: str | None = None,
    end: str | None = None,
    executor: grids.Executor | None = None,
    chunk_size: int | None = None,
    store_path: str | Path | None = None,
    spa_reps: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> GridRun:
    """Run the ``multipliers`` / ``limits`` grid (seed 004) or a ``cartesian`` grid file,
    store it, and compute DSR / PBO / SPA per ticker set (in-sample: the whole window) on
    returns in excess of the risk-free rate; the DSR counts this grid's configurations plus the
    distinct ones already stored for the same tickers and window (``store.count_trials``).

    Returns
    -------
    GridRun
    """
    axes: dict[str, list[object]] = {}
    if kind == "multipliers":
        variants = grids.multiplier_variants(base)
    elif kind == "limits":
        variants = grids.limit_variants(base)
    elif kind == "cartesian":
        if grid_file is None:
            raise ValueError("a cartesian grid needs a grid file (YAML with base: and grid:)")
        file_base, axes = grids.load_grid_file(grid_file)
        variants = grids.cartesian_variants(file_base, axes)
    else:
        raise ValueError(f"unknown grid {kind!r}; use multipliers, limits or cartesian")
    tickers_all = sorted({t for ts in ticker_sets for t in ts})
    regimes = regimes_for(regime_model, tickers_all)
    result = grids.run_grid(
        kind,
        variants,
        panel_loader(start, end),
        ticker_sets,
        regimes=regimes,
        executor=executor,
        progress=progress,
    )
    reports = {}
    names = [v.name for v in variants]
    benchmark = "flat" if "flat" in names else names[0]
    if len(names) > 1:
        from research.optimize.inference import excess_returns
        from research.optimize.store import count_trials

        for tickers in {"+".join(ts) for ts in ticker_sets}:
            trials = count_trials(result.table, tickers, store_path)
            matrix = excess_returns(result.returns_for(tickers=tickers).dropna(), base.rate)
            assert isinstance(matrix, pd.DataFrame)
            grid_table, params = None, None
            if kind == "cartesian":  # neighbourhood stability on the parameter grid
                rows = result.table.loc[result.table["tickers"] == tickers]
                params = ["param_" + a.replace(".", "_") for a in axes]
                grid_table = rows.set_index("variant")[params]
            reports[tickers] = overfitting_report(
                matrix,
                benchmark,
                spa_reps=spa_reps,
                n_splits=8,
                grid=grid_table,
                params=params,
                n_trials=trials.n,
            )
    run_id = None
    if store_path is not None:
        from research.optimize.store import ResultStore

        with ResultStore(store_path) as store:
            run_id = store.save_grid(result)
    return GridRun(result, run_id, reports)


def write_summary(name: str, summary: dict[str, object]) -> Path:
    """Write a notebook's machine-readable summary to ``reports/summaries/NAME.json``."""
    import json

    from research.config import Paths
    from research.pipeline.manifest import write_text_atomic

    path = Paths.from_root().reports / "summaries" / f"{name}.json"
    write_text_atomic(path, json.dumps(summary, indent=2, default=str))
    return path
