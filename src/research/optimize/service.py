"""Grid runs from the command line or a notebook: panels, regimes, run, store, diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.backtest.market_panel import MarketPanel
from research.backtest.spreads import BacktestConfig
from research.optimize import grids
from research.optimize.overfitting import OverfittingReport, overfitting_report
from research.optimize.scenarios import StudyData

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


def default_ticker_sets(kind: str, symbols: Sequence[str]) -> list[tuple[str, ...]]:
    """The ticker sets a grid runs on when none are named: every symbol on its own, or all of
    them together for the ``limits`` grid (traded on shared equity)."""
    if kind == "limits":
        return [tuple(symbols)]
    return [(s,) for s in symbols]


@dataclass(frozen=True)
class StudyInputs:
    """What a grid notebook or command studies: ticker sets, market data and base config."""

    ticker_sets: list[tuple[str, ...]]
    data: StudyData
    base: BacktestConfig

    def about(self, start: str | None = None, end: str | None = None) -> str:
        """The data paragraph for the page (``StudyData.about`` between ``start`` and
        ``end``), plus the ticker sets and any per-symbol conventions."""
        sets = "; ".join(" + ".join(ts) for ts in self.ticker_sets)
        symbols = sorted({t for ts in self.ticker_sets for t in ts})
        text = f"{self.data.about(symbols, start, end)} "
        text += f"**Ticker sets studied:** {sets}."
        if self.base.conventions:
            conv = "; ".join(
                f"{sym}: " + ", ".join(f"{k} {v:g}" for k, v in vars(c).items() if v is not None)
                for sym, c in self.base.conventions
            )
            text += f" **Market conventions:** {conv}."
        return text


def study_inputs(
    kind: str,
    ticker_sets: Sequence[Sequence[str]] | None = None,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    iv_from: Mapping[str, str] | None = None,
    conventions_path: str | Path | None = None,
    conventions: Mapping[str, Mapping[str, float]] | None = None,
    skew_path: str | Path | None = None,
) -> StudyInputs:
    """Ticker sets (default: ``default_ticker_sets`` of the bars' symbols — SPX and IXIC when
    embedded), their market data (``StudyData.load``: the user's bars and IV files) and the
    base config (``base_config`` with the conventions of ``conventions_path`` and, on top,
    ``conventions``).

    Returns
    -------
    StudyInputs
    """
    from research.backtest.conventions import conventions_from_mapping, load_conventions, merge
    from research.config import resolve_path
    from research.data import market

    if ticker_sets:
        sets = [tuple(str(t) for t in ts) for ts in ticker_sets]
    else:
        symbols = (
            list(market.DEFAULT_SYMBOLS)
            if bars_path is None
            else sorted(set(market.load_bars(bars_path)["symbol"]))
        )
        sets = default_ticker_sets(kind, symbols)
    data = StudyData.load(
        bars_path,
        iv_path,
        symbols=sorted({t for ts in sets for t in ts}),
        relations=dict(iv_from or {}),
    )
    conv = load_conventions(resolve_path(conventions_path)) if conventions_path else ()
    conv = merge(conv, conventions_from_mapping(dict(conventions or {}), "conventions"))
    base = base_config(skew_path)
    if conv:
        base = base.replace(conventions=dict(conv))
    return StudyInputs(sets, data, base)


@dataclass(frozen=True)
class GridRun:
    """A finished grid: results, where they were stored, and the overfitting diagnostics per
    ticker set (the benchmark is the ``flat`` multiplier set or the first variant)."""

    result: grids.GridResult
    run_id: str | None
    reports: dict[str, OverfittingReport]


def panel_loader(
    data: StudyData | None = None, start: str | None = None, end: str | None = None
) -> Callable[[tuple[str, ...]], MarketPanel]:
    """A cached ticker set -> baseline panel function over ``data`` (default: the embedded
    data of the tickers asked for)."""
    from research.optimize.scenarios import SCENARIOS

    cache: dict[tuple[str, ...], MarketPanel] = {}

    def panel_for(tickers: tuple[str, ...]) -> MarketPanel:
        if tickers not in cache:
            source = data or StudyData.load(symbols=list(tickers))
            panel = source.panel(SCENARIOS[0], tickers, start, end)
            if panel is None:
                raise ValueError(f"no dates with bars and IV for {list(tickers)}")
            cache[tickers] = panel
        return cache[tickers]

    return panel_for


def regimes_for(
    model: str | None, tickers: Sequence[str], data: StudyData | None = None
) -> pd.DataFrame | None:
    """Labels of ``model`` on the bars of ``tickers`` with their baseline IV (None without a
    model)."""
    if model is None:
        return None
    from research.optimize.scenarios import SCENARIOS

    source = data or StudyData.load(symbols=list(tickers))
    labels = source.labels(SCENARIOS[0], model)
    assert labels is not None
    return labels.loc[labels["symbol"].isin(list(tickers))].reset_index(drop=True)


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
    data: StudyData | None = None,
    progress: Callable[[str], None] | None = None,
    engine: str = "auto",
) -> GridRun:
    """Run the ``multipliers`` / ``limits`` grid (the validation plan's sets) or a ``cartesian``
    grid file, store it, and compute DSR / PBO / SPA per ticker set (in-sample: the whole window) on
    returns in excess of the risk-free rate; the DSR counts this grid's configurations plus the
    distinct ones already stored for the same tickers and window (``store.count_trials``).

    ``data`` holds the market inputs (``StudyData.load``: the user's bars and IV files; default
    the embedded data of the tickers); ``base.conventions`` also apply to a cartesian grid
    file's own base.

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
        if base.conventions:
            from research.backtest.conventions import merge

            file_base = file_base.replace(
                conventions=dict(merge(file_base.conventions, base.conventions))
            )
        variants = grids.cartesian_variants(file_base, axes)
    else:
        raise ValueError(f"unknown grid {kind!r}; use multipliers, limits or cartesian")
    tickers_all = sorted({t for ts in ticker_sets for t in ts})
    data = data or StudyData.load(symbols=tickers_all)
    regimes = regimes_for(regime_model, tickers_all, data)
    result = grids.run_grid(
        kind,
        variants,
        panel_loader(data, start, end),
        ticker_sets,
        regimes=regimes,
        executor=executor,
        progress=progress,
        engine=engine,
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
