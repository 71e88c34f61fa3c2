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
from research.optimize.walkforward import WalkForwardResult

DEFAULT_BASE = BacktestConfig().replace(**{"sizing.mode": "scaled"})
"""Grids size by risk (2% of equity by max loss) so multipliers act on a continuous size."""


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
    store it, and compute DSR / PBO / SPA per ticker set (in-sample: the whole window).

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
        for tickers in {"+".join(ts) for ts in ticker_sets}:
            matrix = result.returns_for(tickers=tickers).dropna()
            grid_table, params = None, None
            if kind == "cartesian":  # neighbourhood stability on the parameter grid
                rows = result.table.loc[result.table["tickers"] == tickers]
                params = ["param_" + a.replace(".", "_") for a in axes]
                grid_table = rows.set_index("variant")[params]
            reports[tickers] = overfitting_report(
                matrix, benchmark, spa_reps=spa_reps, n_splits=8, grid=grid_table, params=params
            )
    run_id = None
    if store_path is not None:
        from research.optimize.store import ResultStore

        with ResultStore(store_path) as store:
            run_id = store.save_grid(result)
    return GridRun(result, run_id, reports)


@dataclass(frozen=True)
class GridStudy:
    """In-sample grid + stress windows + walk-forward + out-of-sample diagnostics, per ticker
    set, and the verdict the notebook states."""

    kind: str
    benchmark: str
    grid: GridRun
    stress: pd.DataFrame
    """``tickers, variant, window, start, end, days, return, max_drawdown``."""
    walk_forward: dict[str, WalkForwardResult]
    """Ticker set → walk-forward result."""
    oos_reports: dict[str, OverfittingReport]
    """Ticker set → DSR / PBO / SPA on the out-of-sample returns of every variant."""

    def in_sample_table(self) -> pd.DataFrame:
        """Metrics per ticker set and variant over the whole window (in-sample)."""
        cols = [
            "tickers",
            "variant",
            "cagr",
            "sharpe",
            "sortino",
            "max_drawdown",
            "calmar",
            "trades",
            "win_rate",
            "avg_pnl",
        ]
        return self.grid.result.table[cols]

    def folds_table(self, decimals: int = 4) -> pd.DataFrame:
        """Every ticker set's walk-forward folds (winner, IS/OOS metric, efficiency, rank), with
        numbers rounded to ``decimals``."""
        frames = [wf.folds.assign(tickers=t) for t, wf in self.walk_forward.items()]
        out = pd.concat(frames, ignore_index=True)
        out = out[["tickers", *[c for c in out.columns if c != "tickers"]]]
        numeric = out.select_dtypes("number").columns
        out[numeric] = out[numeric].round(decimals)
        return out

    def oos_table(self) -> pd.DataFrame:
        """Out-of-sample (walk-forward OOS windows, concatenated) annualised Sharpe, return and
        max drawdown per ticker set and variant, plus the walk-forward selection itself."""
        from research.backtest.metrics import compute_metrics

        rows = []
        for tickers, wf in self.walk_forward.items():
            matrix = wf.oos_matrix.copy()
            matrix["walk_forward"] = wf.oos_returns
            for col in matrix.columns:
                equity = (1 + matrix[col].fillna(0.0)).cumprod()
                m = compute_metrics(equity)
                rows.append(
                    {
                        "tickers": tickers,
                        "variant": col,
                        "oos_sharpe": m.sharpe,
                        "oos_cagr": m.cagr,
                        "oos_max_drawdown": m.max_drawdown,
                        "oos_days": len(matrix),
                    }
                )
        return pd.DataFrame(rows)

    def verdicts(self) -> pd.DataFrame:
        """Per ticker set: the in-sample winner, its DSR, the walk-forward selection's OOS Sharpe
        against the benchmark's, SPA on OOS data, PBO, and a one-line verdict."""
        oos = self.oos_table()
        rows = []
        for tickers, wf in self.walk_forward.items():
            rep = self.oos_reports[tickers]
            is_rep = self.grid.reports.get(tickers)
            part = oos.loc[oos["tickers"] == tickers].set_index("variant")
            sharpe = part["oos_sharpe"].astype(float)
            sel, bench = float(sharpe["walk_forward"]), float(sharpe[self.benchmark])
            better = [str(m) for m in rep.spa.better_models]
            adds = sel > bench and bool(better)
            text = (
                f"{'adds value' if adds else 'no significant value'} out of sample: the "
                f"walk-forward choice earned an OOS Sharpe of {sel:.2f} against {bench:.2f} for "
                f"{self.benchmark}; SPA p = {rep.spa.pvalue_consistent:.3f}"
                + (f" ({', '.join(better)} beat {self.benchmark})" if better else "")
                + f"; PBO {rep.pbo.pbo:.2f}"
            )
            rows.append(
                {
                    "tickers": tickers,
                    "in_sample_best": None if is_rep is None else str(is_rep.best),
                    "in_sample_dsr": None if is_rep is None else is_rep.dsr.dsr,
                    "wf_winners": ", ".join(f"{k}×{v}" for k, v in wf.winner_counts.items() if v),
                    "wf_efficiency": wf.walk_forward_efficiency,
                    "oos_sharpe_walk_forward": sel,
                    f"oos_sharpe_{self.benchmark}": bench,
                    "oos_spa_p": rep.spa.pvalue_consistent,
                    "oos_pbo": rep.pbo.pbo,
                    "oos_better_than_benchmark": ", ".join(better),
                    "verdict": text,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, object]:
        """Machine-readable summary for the findings page (JSON-serialisable)."""
        verdicts = self.verdicts()
        return {
            "study": self.kind,
            "benchmark": self.benchmark,
            "per_tickers": [
                {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
                for row in verdicts.to_dict(orient="records")
            ],
        }


def grid_study(
    kind: str,
    ticker_sets: Sequence[tuple[str, ...]],
    *,
    benchmark: str,
    start: str | None = None,
    end: str | None = None,
    regime_model: str | None = "bull_bear_vol",
    is_years: float = 6.0,
    oos_years: float = 2.0,
    mode: str = "anchored",
    metric: str = "sharpe",
    spa_reps: int = 1000,
    store_path: str | Path | None = None,
) -> GridStudy:
    """The grid notebooks' whole computation (see ``GridStudy``)."""
    from research.backtest.metrics import stress_table
    from research.optimize.walkforward import walk_forward, walk_forward_splits

    run = run_named_grid(
        kind,
        ticker_sets,
        regime_model=regime_model,
        start=start,
        end=end,
        store_path=store_path,
        spa_reps=spa_reps,
    )
    table = run.result.table
    stress_rows = []
    for _, row in table.iterrows():
        equity = (1 + run.result.returns[row["row_id"]].dropna()).cumprod()
        st = stress_table(equity)
        stress_rows.append(st.assign(tickers=row["tickers"], variant=row["variant"]))
    stress = pd.concat(stress_rows, ignore_index=True)[
        ["tickers", "variant", "window", "start", "end", "days", "return", "max_drawdown"]
    ]
    variants = (
        grids.multiplier_variants(DEFAULT_BASE)
        if kind == "multipliers"
        else grids.limit_variants(DEFAULT_BASE)
    )
    panels = panel_loader(start, end)
    regimes = regimes_for(regime_model, sorted({t for ts in ticker_sets for t in ts}))
    wfs: dict[str, WalkForwardResult] = {}
    oos_reports = {}
    for tickers in ticker_sets:
        panel = panels(tuple(tickers))
        splits = walk_forward_splits(panel.dates, is_years=is_years, oos_years=oos_years, mode=mode)  # type: ignore[arg-type]
        wf = walk_forward(panel, variants, splits, regimes=regimes, metric=metric)
        name = "+".join(tickers)
        wfs[name] = wf
        oos_reports[name] = overfitting_report(
            wf.oos_matrix.fillna(0.0), benchmark, spa_reps=spa_reps, n_splits=8
        )
    return GridStudy(kind, benchmark, run, stress, wfs, oos_reports)


def write_summary(name: str, summary: dict[str, object]) -> Path:
    """Write a notebook's machine-readable summary to ``reports/summaries/NAME.json``."""
    import json

    from research.config import Paths
    from research.pipeline.manifest import write_text_atomic

    path = Paths.from_root().reports / "summaries" / f"{name}.json"
    write_text_atomic(path, json.dumps(summary, indent=2, default=str))
    return path
