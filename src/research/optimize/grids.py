"""Configuration grids for the credit-spread engine: the validation plan's named regime-multiplier
and portfolio-limit sets, and cartesian grids over any parameters from a YAML file.

A grid run evaluates every (variant, ticker set, window) and returns a long table, one row per
combination, with the variant's parameters (``param_*``) and its metrics, plus the daily returns
of every row (for the overfitting diagnostics).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from research.backtest.market_panel import MarketPanel
from research.backtest.metrics import GRID_METRICS, grid_metrics
from research.backtest.run import ENGINES, RegimeCodes, prepare_paths, regime_codes, run_kernel
from research.backtest.spreads import BacktestConfig, ConfigError, config_from_dict
from research.backtest.trade_paths import TradePaths

BULL_BEAR_LABELS: tuple[str, ...] = (
    "bull_low_vol",
    "bull_high_vol",
    "bear_low_vol",
    "bear_high_vol",
)
MULTIPLIER_SETS: dict[str, tuple[float, float, float, float]] = {
    "flat": (1.0, 1.0, 1.0, 1.0),
    "prod": (1.0, 0.75, 0.5, 0.4),
    "mild": (1.0, 0.9, 0.75, 0.5),
    "aggressive": (1.0, 0.5, 0.25, 0.1),
    "bear_boost": (1.0, 0.75, 1.25, 1.5),
    "inverse": (0.5, 0.75, 1.0, 1.25),
}
"""The validation plan's regime multipliers (bull_low, bull_high, bear_low, bear_high); flat =
baseline."""
LIMIT_SETS: dict[str, tuple[int, float, float]] = {
    "tight": (3, 10.0, 10.0),
    "moderate": (5, 20.0, 15.0),
    "loose": (8, 30.0, 20.0),
    "wide_open": (10, 50.0, 30.0),
    "single_only": (1, 5.0, 5.0),
}
"""The validation plan's portfolio limits (max positions, portfolio heat %, per-underlying %)."""
METRIC_COLUMNS: tuple[str, ...] = GRID_METRICS
"""The metrics of a grid's table (``metrics.grid_metrics``)."""


@dataclass(frozen=True)
class Variant:
    """One configuration of a grid: a name, the changes from the base, the full config."""

    name: str
    changes: Mapping[str, Any]
    config: BacktestConfig


def _variant(base: BacktestConfig, name: str, changes: Mapping[str, Any]) -> Variant:
    return Variant(name, dict(changes), base.replace(**changes))


def multiplier_variants(
    base: BacktestConfig, sets: Mapping[str, Sequence[float]] = MULTIPLIER_SETS
) -> list[Variant]:
    """The validation plan's named multiplier sets on ``base`` (labels of ``bull_bear_vol``)."""
    return [
        _variant(
            base,
            name,
            {"sizing.regime_multipliers": dict(zip(BULL_BEAR_LABELS, values, strict=True))},
        )
        for name, values in sets.items()
    ]


def limit_variants(
    base: BacktestConfig, sets: Mapping[str, tuple[int, float, float]] = LIMIT_SETS
) -> list[Variant]:
    """The validation plan's named portfolio-limit sets on ``base``."""
    return [
        _variant(
            base,
            name,
            {
                "limits.max_positions": pos,
                "limits.max_portfolio_heat_pct": heat,
                "limits.max_per_underlying_pct": und,
            },
        )
        for name, (pos, heat, und) in sets.items()
    ]


def cartesian_variants(base: BacktestConfig, axes: Mapping[str, Sequence[Any]]) -> list[Variant]:
    """Every combination of ``axes`` (dotted parameter → values), e.g.
    ``{"spread.min_delta": [0.05, 0.1], "spread.profit_target_pct": [50, 65, 80]}``.

    Combinations the config rejects (e.g. min_delta > max_delta) are errors naming them.
    """
    if not axes:
        raise ConfigError("a cartesian grid needs at least one axis")
    names = list(axes)
    out = []
    for values in itertools.product(*(axes[n] for n in names)):
        changes = dict(zip(names, values, strict=True))
        label = ",".join(f"{n.split('.')[-1]}={v}" for n, v in changes.items())
        try:
            out.append(_variant(base, label, changes))
        except ConfigError as exc:
            raise ConfigError(f"grid point {label}: {exc}") from exc
    return out


def load_grid_file(path: str | Path) -> tuple[BacktestConfig, dict[str, list[Any]]]:
    """Read a grid YAML: ``base:`` (config changes) and ``grid:`` (dotted parameter → values).

    Returns
    -------
    tuple
        ``(base config, axes)``.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read grid file: {exc}") from exc
    unknown = sorted(set(data) - {"base", "grid"})
    if unknown or "grid" not in data:
        raise ConfigError(f"{path}: expected keys 'base' (optional) and 'grid'; got {sorted(data)}")
    try:
        base = config_from_dict(data.get("base") or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: base: {exc}") from exc
    axes = {str(k): list(v) if isinstance(v, list) else [v] for k, v in data["grid"].items()}
    return base, axes


def flat_params(cfg: BacktestConfig) -> dict[str, Any]:
    """A config as ``param_*`` columns (multipliers and per-symbol conventions as one text
    column each)."""
    out: dict[str, Any] = {}
    for block in ("spread", "fills", "sizing", "limits"):
        for key, value in vars(getattr(cfg, block)).items():
            if key == "regime_multipliers":
                value = ",".join(f"{k}={v:g}" for k, v in value) or "none"
            out[f"param_{block}_{key}"] = value
    out["param_initial_equity"] = cfg.initial_equity
    out["param_conventions"] = (
        ";".join(
            f"{sym}:" + ",".join(f"{k}={v:g}" for k, v in vars(conv).items() if v is not None)
            for sym, conv in cfg.conventions
        )
        or "none"
    )
    return out


@dataclass(frozen=True)
class GridResult:
    """A grid run: one row per (variant, ticker set, window), and every row's daily returns."""

    grid: str
    table: pd.DataFrame
    returns: pd.DataFrame = field(repr=False)
    """Daily simple returns, one column per ``row_id`` (dates as index)."""

    def returns_for(self, **where: Any) -> pd.DataFrame:
        """Return columns of the rows matching ``where`` (e.g. ``tickers="SPX"``), named by
        variant."""
        rows = self.table
        for key, value in where.items():
            rows = rows.loc[rows[key] == value]
        frame = self.returns[rows["row_id"].tolist()]
        frame.columns = rows["variant"].tolist()
        return frame


PanelFor = Callable[[tuple[str, ...]], MarketPanel]


class Executor(Protocol):
    """Runs a function over items (in worker processes, on a cluster, or inline); ``bar``, a
    tqdm-like progress bar, is advanced once per finished item."""

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], bar: Any | None = None
    ) -> list[Any]: ...


class InlineExecutor:
    """Everything in this process (numba still uses all cores inside each call)."""

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], bar: Any | None = None
    ) -> list[Any]:
        out = []
        for item in items:
            out.append(fn(item))
            if bar is not None:
                bar.update(1)
        return out


@dataclass(frozen=True)
class Chunk:
    """Configurations evaluated together on one panel window (picklable for workers)."""

    panel: MarketPanel
    variants: tuple[Variant, ...]
    regimes: pd.DataFrame | None
    grid: str
    tickers: str
    paths: Mapping[str, TradePaths] | None = None
    """Phase-1 trade paths of the window's strategies (``run.prepare_paths``), computed once
    by the caller and shared by every chunk (a Dask cluster gets them once per worker)."""
    engine: str = "auto"
    """``run_kernel``'s engine."""


BATCH = 64
"""Configurations per kernel call inside a chunk: bounds the memory of the trade records
(about 40 MB for 64 configs of SPX+IXIC 1999–2018) whatever the chunk's size."""


def evaluate_chunk(chunk: Chunk) -> tuple[pd.DataFrame, np.ndarray]:
    """Backtest a chunk's variants: one table row per variant (``grid, variant, tickers,
    window_start, window_end``, the metrics, ``param_*``) and the daily returns (variants x the
    window's days, the first day 0)."""
    dates = chunk.panel.dates
    configs = [v.config for v in chunk.variants]
    returns = np.zeros((len(configs), len(dates)))
    codes, labels = regime_codes(chunk.panel, chunk.regimes)
    sets = RegimeCodes(codes[None, :, :], labels)
    metrics: list[pd.DataFrame] = []
    for start in range(0, len(configs), BATCH):
        part = configs[start : start + BATCH]
        out = run_kernel(
            chunk.panel,
            part,
            code_sets=sets,
            paths=chunk.paths,
            engine=chunk.engine,
            record_trades="pnl",
        )
        pnl = [out.pnl_of(i) for i in range(len(part))]
        metrics.append(grid_metrics(out.equity, dates, pnl, rf=np.array([c.rate for c in part])))
        returns[start : start + len(part), 1:] = out.equity[:, 1:] / out.equity[:, :-1] - 1.0
    head = pd.DataFrame(
        {
            "grid": chunk.grid,
            "variant": [v.name for v in chunk.variants],
            "tickers": chunk.tickers,
            "window_start": dates[0],
            "window_end": dates[-1],
        }
    )
    body = (
        pd.concat(metrics, ignore_index=True)[list(METRIC_COLUMNS)]
        if metrics
        else pd.DataFrame(columns=list(METRIC_COLUMNS))
    )
    params = pd.DataFrame.from_records([flat_params(c) for c in configs], nrows=len(configs))
    return pd.concat([head, body, params], axis=1), returns


def _show_progress() -> bool:
    return sys.stderr.isatty()


def run_grid(
    grid: str,
    variants: Sequence[Variant],
    panel_for: PanelFor,
    ticker_sets: Sequence[tuple[str, ...]],
    windows: Sequence[tuple[str | pd.Timestamp, str | pd.Timestamp]] | None = None,
    regimes: pd.DataFrame | None = None,
    *,
    executor: Executor | None = None,
    chunk_size: int | None = None,
    progress: Callable[[str], None] | None = None,
    engine: str = "auto",
) -> GridResult:
    """Evaluate every variant on every ticker set and window.

    Two phases: the trade paths of every strategy that several variants share (phase 1, in
    this process, cached: ``research.backtest.trade_paths``), then the chunks of variants
    (phase 2, on the executor, each chunk given the paths). The progress bar (on a terminal)
    counts both.

    Parameters
    ----------
    grid
        Name of the grid (stored with the results).
    variants
        Configurations (``multiplier_variants``, ``limit_variants``, ``cartesian_variants``).
    panel_for
        Ticker set → market panel (e.g. ``lambda t: load_panel(t)[0]``).
    ticker_sets
        E.g. ``[("SPX",), ("IXIC",)]`` or ``[("SPX", "IXIC")]``.
    windows
        ``(start, end)`` pairs; each window is a separate backtest starting from the initial
        equity (default: the whole panel).
    regimes
        Regime labels the multipliers refer to.
    executor
        Where chunks run (default: inline in this process).
    chunk_size
        Variants per chunk (default: all variants of a window in one chunk).
    engine
        ``run_kernel``'s engine (``auto``: shared paths where they pay; ``per_config``: the
        reference kernels).

    Returns
    -------
    GridResult
        ``table`` columns: ``row_id, grid, variant, tickers, window_start, window_end``, the
        metrics (``total_return, cagr, ann_vol, sharpe, sortino, max_drawdown, calmar, trades,
        win_rate, avg_pnl, profit_factor``), then ``param_*``. Row order does not depend on the
        executor.
    """
    from tqdm import tqdm

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    executor = executor or InlineExecutor()
    size = chunk_size or max(len(variants), 1)
    configs = [v.config for v in variants]
    windows_of: list[tuple[tuple[str, ...], MarketPanel]] = []
    for tickers in ticker_sets:
        panel = panel_for(tuple(tickers))
        for start, end in windows or [(panel.dates[0], panel.dates[-1])]:
            windows_of.append((tuple(tickers), _window(panel, start, end)))
    n_chunks = len(windows_of) * -(-len(variants) // size) if variants else 0
    if progress:
        progress(
            f"{grid}: {len(variants)} configs x {len(windows_of)} windows: phase 1 (trade "
            f"paths shared by several configs) then phase 2 ({n_chunks} chunks)"
        )
    chunks: list[Chunk] = []
    with tqdm(
        total=n_chunks,
        desc=grid,
        unit="step",
        file=sys.stderr,
        disable=not _show_progress(),
    ) as bar:

        def plan(n: int) -> None:
            bar.total += n
            bar.refresh()

        for tickers, sub in windows_of:
            paths = (
                prepare_paths(sub, configs, on_plan=plan, on_path=lambda: bar.update(1))
                if engine != "per_config" and configs
                else None
            )
            for i in range(0, len(variants), size):
                chunks.append(
                    Chunk(
                        sub,
                        tuple(variants[i : i + size]),
                        regimes,
                        grid,
                        "+".join(tickers),
                        paths or None,
                        engine,
                    )
                )
        parts = executor.map(evaluate_chunk, chunks, bar=bar)
    tables: list[pd.DataFrame] = []
    blocks: list[pd.DataFrame] = []
    first = 0
    for chunk, (table, returns) in zip(chunks, parts, strict=True):
        ids = range(first, first + len(table))
        first += len(table)
        tables.append(table)
        blocks.append(pd.DataFrame(returns.T, index=chunk.panel.dates, columns=ids, copy=False))
    if not tables:
        return GridResult(grid, pd.DataFrame(), pd.DataFrame())
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    table.insert(0, "row_id", np.arange(len(table)))
    frame = blocks[0] if len(blocks) == 1 else pd.concat(blocks, axis=1).sort_index()
    return GridResult(grid, table, frame)


def _window_slice(panel: MarketPanel, start: str | pd.Timestamp, end: str | pd.Timestamp) -> slice:
    """The panel's days between ``start`` and ``end`` (inclusive) as a slice."""
    mask = (panel.dates >= pd.Timestamp(start)) & (panel.dates <= pd.Timestamp(end))
    if not mask.any():
        raise ValueError(
            f"window {start}..{end} has no trading day in the panel "
            f"({panel.dates[0].date()}..{panel.dates[-1].date()})"
        )
    idx = np.flatnonzero(mask)
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _window(panel: MarketPanel, start: str | pd.Timestamp, end: str | pd.Timestamp) -> MarketPanel:
    return panel.slice(_window_slice(panel, start, end))
