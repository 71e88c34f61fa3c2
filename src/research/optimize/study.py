"""A sizing or limits study that a sceptical reviewer can accept: walk-forward selection, the
controls that could explain the result without the idea, the right tests, and the same study
under every modelling assumption it rests on.

For one ticker set and one scenario (``evaluate_scenario``):

1. **Walk-forward** (``walkforward.walk_forward``): per fold, the best variant by in-sample
   Sharpe trades the next out-of-sample (OOS) window.
2. **Controls**, per fold and variant, fixed with in-sample data only: cash, the benchmark
   (``flat`` / ``wide_open``) and the **exposure-matched control** — the benchmark scaled by the
   constant that gives the variant's in-sample average capital at risk (one refinement step,
   ``controls.refine_scale``), then traded OOS. The walk-forward choice's control is its
   winners' controls fold by fold.
3. **Label-permutation null** (regime-multiplier studies): the winners' multipliers on
   ``n_permutations`` duration-preserving shuffles of the regime labels, OOS; p = share of
   shuffles whose OOS Sharpe reaches the real one.
4. **Sharpe tests**: one paired circular-block bootstrap of every OOS excess-return series
   (``inference.bootstrap_sharpes``): choice vs benchmark, vs control, vs cash.
5. **Verdict** worded by ``verdict.word_verdict``.

``grid_study`` runs it for every ticker set under the baseline (with the in-sample grid, stress
windows, SPA — labelled as a test of *mean returns* — PBO and DSR with the number of
configurations tried) and under every sensitivity scenario (``scenarios.SCENARIOS``), and says
whether each verdict is robust.

All Sharpe ratios are annualised, of daily returns in excess of the config's risk-free rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.backtest.activity import Idle, cash_share, idle_since
from research.backtest.market_panel import MarketPanel
from research.backtest.metrics import STRESS_WINDOWS, stress_table
from research.backtest.run import RegimeCodes, regime_codes, run_backtests, run_kernel
from research.backtest.tearsheet import TearSheet, tear_sheet
from research.constants import TRADING_DAYS
from research.optimize import grids
from research.optimize.controls import (
    exposure_matched_config,
    permutation_pvalue,
    permuted_codes,
    refine_scale,
)
from research.optimize.inference import (
    SHARPE_TEST_NAME,
    SharpeBootstrap,
    SharpeTest,
    bootstrap_sharpes,
    excess_returns,
)
from research.optimize.overfitting import OverfittingReport, overfitting_report
from research.optimize.scenarios import (
    REAL_IV_SPLIT,
    Scenario,
    StudyData,
    scenario_by_name,
)
from research.optimize.store import TrialCount, count_trials
from research.optimize.verdict import (
    PERMUTATION_TEST_NAME,
    Robustness,
    Verdict,
    VerdictInputs,
    robustness,
    word_verdict,
)
from research.optimize.walkforward import (
    Fold,
    WalkForwardResult,
    walk_forward,
    walk_forward_splits,
)

__all__ = [
    "CHOICE",
    "compare_verdicts",
    "GridStudy",
    "ScenarioResult",
    "evaluate_scenario",
    "grid_study",
]

CHOICE = "walk_forward"
"""Column of the walk-forward choice in the OOS return tables."""
SPA_LABEL = "Hansen's SPA on mean daily returns (does any candidate beat the benchmark?)"


def control_name(column: str) -> str:
    """Column of ``column``'s exposure-matched control."""
    return f"control:{column}"


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    """One ticker set under one scenario (see the module docstring)."""

    scenario: Scenario
    tickers: str
    benchmark: str
    walk_forward: WalkForwardResult = field(repr=False)
    returns: pd.DataFrame = field(repr=False)
    """OOS daily returns: every variant, ``walk_forward`` (the choice) and ``control:<col>`` for
    each of them (the fold windows concatenated)."""
    exposure: pd.DataFrame = field(repr=False)
    """Per fold and variant: ``fold, variant, is_heat, scale, control_is_heat, oos_heat,
    control_oos_heat`` (average capital at risk / equity)."""
    sharpe: SharpeBootstrap = field(repr=False)
    tests: dict[tuple[str, str], SharpeTest] = field(repr=False)
    """``(column, comparator)`` → test; comparators: the benchmark, ``control:<column>``,
    ``cash``."""
    permutation: dict[str, tuple[float, np.ndarray]] = field(repr=False)
    """Column → (p-value, null OOS Sharpe ratios), for regime-multiplier studies."""
    n_permutations: int
    verdict: Verdict
    rate: float
    alpha: float

    @property
    def choice_sharpe(self) -> float:
        return float(self.sharpe.sharpe[CHOICE])

    @property
    def permutation_p(self) -> float | None:
        found = self.permutation.get(CHOICE)
        return None if found is None else found[0]

    def test(self, column: str, against: str) -> SharpeTest:
        """The Sharpe test of ``column`` against ``against`` (benchmark, "control", "cash")."""
        key = control_name(column) if against == "control" else against
        return self.tests[(column, key)]

    def total_return(self, column: str) -> float:
        """``column``'s OOS returns compounded over the whole out-of-sample record."""
        return float(np.prod(1 + self.returns[column].to_numpy()) - 1)

    def cagr(self, column: str) -> float:
        """Annual growth of ``column``'s OOS returns compounded (calendar years)."""
        r = self.returns[column]
        years = (r.index[-1] - r.index[0]).days / 365.25
        return float(np.prod(1 + r.to_numpy()) ** (1 / years) - 1) if years > 0 else math.nan


def _window_returns(equity: np.ndarray, initial: np.ndarray) -> np.ndarray:
    previous = np.concatenate([initial[:, None], equity[:, :-1]], axis=1)
    return np.asarray(equity / previous - 1.0, dtype=float)


def _idea(kind: str) -> str:
    return "regime-aware sizing" if kind == "multipliers" else "the limit set"


def _winner_text(wf: WalkForwardResult) -> str:
    wins = [f"{name} {n}/{len(wf.folds)}" for name, n in wf.winner_counts.items() if n]
    return f"the walk-forward choice ({', '.join(wins)} folds)"


def evaluate_scenario(
    panel: MarketPanel,
    variants: Sequence[grids.Variant],
    benchmark: str,
    splits: Sequence[Fold],
    labels: pd.DataFrame | None,
    *,
    scenario: Scenario,
    tickers: str,
    kind: str,
    metric: str = "sharpe",
    n_permutations: int = 200,
    permute_all: bool = False,
    sharpe_reps: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    trade_metrics: bool = False,
    verify_controls: bool = False,
    full_tests: bool = True,
) -> ScenarioResult:
    """Walk-forward, controls, permutation null, Sharpe tests and verdict for one ticker set
    under one scenario.

    Parameters
    ----------
    panel, variants, benchmark, splits, labels
        As for ``walkforward.walk_forward``; ``benchmark`` is a variant name.
    scenario, tickers, kind
        What is evaluated (``kind``: ``multipliers`` or ``limits``).
    n_permutations
        Label shuffles for the permutation null (regime-multiplier studies with labels; 0: none).
    permute_all
        Also run the null for every variant, not only the walk-forward choice.
    sharpe_reps
        Bootstrap resamples of the Sharpe tests.
    trade_metrics
        Record trades for the folds table's trade statistics.
    verify_controls
        Re-run each exposure-matched control in sample to report the capital at risk it
        reached (``control_is_heat``; NaN otherwise).
    full_tests
        Test every variant against the benchmark, its control and cash (False: only the
        walk-forward choice, what the verdict needs).

    Returns
    -------
    ScenarioResult
    """
    names = [v.name for v in variants]
    if benchmark not in names:
        raise ValueError(f"benchmark {benchmark!r} is not a variant; variants: {names}")
    bench_cfg = variants[names.index(benchmark)].config
    wf = walk_forward(
        panel, variants, splits, regimes=labels, metric=metric, trade_metrics=trade_metrics
    )
    rate = float(bench_cfg.rate)
    regime_study = kind == "multipliers" and labels is not None and n_permutations > 0
    codes_full, label_names = regime_codes(panel, labels)
    perms = permuted_codes(codes_full, n_permutations, seed) if regime_study else None
    varying = [
        v.name for v in variants if len({m for _, m in v.config.sizing.regime_multipliers}) > 1
    ]
    perm_columns = ((varying if permute_all else []) + [CHOICE]) if regime_study else []

    control_parts: dict[str, list[pd.Series]] = {control_name(n): [] for n in [*names, CHOICE]}
    perm_parts: dict[str, list[np.ndarray]] = {c: [] for c in perm_columns}
    exposure_rows = []
    table = wf.table
    for fold, f in enumerate(wf.splits):
        rows = table.loc[table["fold"] == f.fold]
        is_heat = rows.loc[rows["split"] == "is"].set_index("variant")["avg_heat"][names]
        oos_heat = rows.loc[rows["split"] == "oos"].set_index("variant")["avg_heat"][names]
        target = is_heat.to_numpy(float)
        base = target[names.index(benchmark)]
        scale0 = target / base if base > 0 else np.ones(len(names))
        is_sl = grids._window_slice(panel, f.is_start, f.is_end)
        is_panel, is_codes = panel.slice(is_sl), RegimeCodes(codes_full[None, is_sl], label_names)
        first = run_kernel(
            is_panel,
            [exposure_matched_config(bench_cfg, k) for k in scale0],
            code_sets=is_codes,
            record_trades=False,
        )
        achieved = np.nanmean(first.heat, axis=1)
        scale = np.array(
            [refine_scale(k, t, a) for k, t, a in zip(scale0, target, achieved, strict=True)]
        )
        control_is = np.full(len(names), np.nan)
        if verify_controls:
            check = run_kernel(
                is_panel,
                [exposure_matched_config(bench_cfg, k) for k in scale],
                code_sets=is_codes,
                record_trades=False,
            )
            control_is = np.nanmean(check.heat, axis=1)
        oos_sl = grids._window_slice(panel, f.oos_start, f.oos_end)
        oos_panel = panel.slice(oos_sl)
        out = run_kernel(
            oos_panel,
            [exposure_matched_config(bench_cfg, k) for k in scale],
            code_sets=RegimeCodes(codes_full[None, oos_sl], label_names),
            record_trades=False,
        )
        initial = np.full(len(names), bench_cfg.initial_equity)
        ctrl = _window_returns(out.equity, initial)
        winner = str(wf.folds["winner"].iloc[fold])
        for i, name in enumerate(names):
            control_parts[control_name(name)].append(pd.Series(ctrl[i], index=oos_panel.dates))
            exposure_rows.append(
                {
                    "fold": f.fold,
                    "variant": name,
                    "winner": name == winner,
                    "is_heat": target[i],
                    "scale": scale[i],
                    "control_is_heat": float(control_is[i]),
                    "oos_heat": float(oos_heat.iloc[i]),
                    "control_oos_heat": float(np.nanmean(out.heat[i])),
                }
            )
        control_parts[control_name(CHOICE)].append(
            pd.Series(ctrl[names.index(winner)], index=oos_panel.dates)
        )
        if perms is not None and perm_columns:
            sets = RegimeCodes(perms[:, oos_sl], label_names)
            cfg_of = {n: v.config for n, v in zip(names, variants, strict=True)}
            cfg_of[CHOICE] = cfg_of[winner]
            configs = [cfg_of[c] for c in perm_columns for _ in range(n_permutations)]
            set_of = np.tile(np.arange(n_permutations), len(perm_columns))
            res = run_kernel(oos_panel, configs, code_sets=sets, set_of=set_of, record_trades=False)
            rets = _window_returns(res.equity, np.array([c.initial_equity for c in configs]))
            for k, col in enumerate(perm_columns):
                perm_parts[col].append(rets[k * n_permutations : (k + 1) * n_permutations])

    returns = wf.oos_matrix.copy()
    returns[CHOICE] = wf.oos_returns
    for col, parts in control_parts.items():
        returns[col] = pd.concat(parts)
    returns = returns.fillna(0.0)
    excess = excess_returns(returns, rate)
    assert isinstance(excess, pd.DataFrame)
    if not full_tests:  # only what the verdict needs
        excess = excess[list(dict.fromkeys([CHOICE, benchmark, control_name(CHOICE)]))]
    boot = bootstrap_sharpes(excess, reps=sharpe_reps, seed=seed)
    pairs = []
    for col in [CHOICE, *names] if full_tests else [CHOICE]:
        if col != benchmark:
            pairs.append((col, benchmark))
        pairs += [(col, control_name(col)), (col, "cash")]
    tests = {(a, b): boot.compare(a, b) for a, b in pairs}
    permutation: dict[str, tuple[float, np.ndarray]] = {}
    rf_d = (1.0 + rate) ** (1.0 / TRADING_DAYS) - 1.0
    for col, arrays in perm_parts.items():
        null_ex = np.concatenate(arrays, axis=1) - rf_d
        std = null_ex.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            null = np.where(std > 1e-12, null_ex.mean(axis=1) / std, 0.0) * math.sqrt(TRADING_DAYS)
        permutation[col] = (permutation_pvalue(float(boot.sharpe[col]), null), null)

    result = ScenarioResult(
        scenario=scenario,
        tickers=tickers,
        benchmark=benchmark,
        walk_forward=wf,
        returns=returns,
        exposure=pd.DataFrame(exposure_rows),
        sharpe=boot,
        tests=tests,
        permutation=permutation,
        n_permutations=n_permutations if regime_study else 0,
        verdict=Verdict("no_gain", "", "", False),
        rate=rate,
        alpha=alpha,
    )
    verdict = word_verdict(_verdict_inputs(result, kind))
    return _with_verdict(result, verdict)


def _with_verdict(result: ScenarioResult, verdict: Verdict) -> ScenarioResult:
    from dataclasses import replace

    return replace(result, verdict=verdict)


def _verdict_inputs(r: ScenarioResult, kind: str) -> VerdictInputs:
    t_bench = r.tests[(CHOICE, r.benchmark)]
    t_ctrl = r.tests[(CHOICE, control_name(CHOICE))]
    t_cash = r.tests[(CHOICE, "cash")]
    return VerdictInputs(
        idea=_idea(kind),
        choice=_winner_text(r.walk_forward),
        benchmark=r.benchmark,
        choice_sharpe=t_bench.sharpe_a,
        benchmark_sharpe=t_bench.sharpe_b,
        control_sharpe=t_ctrl.sharpe_b,
        p_vs_benchmark=t_bench.pvalue,
        p_vs_control=t_ctrl.pvalue,
        p_vs_cash=t_cash.pvalue,
        choice_cagr=r.cagr(CHOICE),
        cash_rate=r.rate,
        permutation_p=r.permutation_p,
        n_permutations=r.n_permutations,
        permutation_required=kind == "multipliers",
        oos_days=len(r.returns),
        alpha=r.alpha,
    )


@dataclass(frozen=True, eq=False)
class GridStudy:
    """Baseline and sensitivity results of a multiplier or limits study, per ticker set."""

    kind: str
    benchmark: str
    grid: grids.GridResult = field(repr=False)
    is_reports: dict[str, OverfittingReport] = field(repr=False)
    """In-sample DSR / PBO / SPA per ticker set (whole window)."""
    trials: dict[str, TrialCount]
    stress: pd.DataFrame = field(repr=False)
    """``tickers, variant, window, start, end, days, return, max_drawdown`` (in-sample)."""
    baseline: dict[str, ScenarioResult] = field(repr=False)
    oos_reports: dict[str, OverfittingReport] = field(repr=False)
    """Ticker set → DSR / PBO / SPA on the OOS returns of the variants."""
    sensitivity: dict[str, list[ScenarioResult | Scenario]] = field(repr=False)
    """Ticker set → one result per scenario (the Scenario itself when it does not apply)."""
    robustness: dict[str, Robustness]
    seconds: float = 0.0
    idle: dict[tuple[str, str], Idle | None] = field(default_factory=dict, repr=False)
    """(ticker set, variant) → when its in-sample curve stopped trading (``activity``)."""
    sheets: dict[str, tuple[TearSheet, ...]] = field(default_factory=dict, repr=False)
    """Ticker set → tear sheets (in-sample, whole window) of the benchmark, the in-sample best
    and the variant the walk-forward trades last (each once)."""

    @property
    def walk_forward(self) -> dict[str, WalkForwardResult]:
        """Ticker set → the baseline walk-forward."""
        return {t: r.walk_forward for t, r in self.baseline.items()}

    def permutation_nulls(self) -> dict[str, tuple[np.ndarray, float, float]]:
        """Ticker set → (null OOS Sharpe ratios of the walk-forward choice on shuffled labels,
        its real OOS Sharpe, the permutation p-value); empty without a permutation null."""
        out = {}
        for tickers, r in self.baseline.items():
            found = r.permutation.get(CHOICE)
            if found is not None:
                out[tickers] = (found[1], r.choice_sharpe, found[0])
        return out

    def oos_returns(self, tickers: str) -> pd.DataFrame:
        """Baseline OOS daily returns of the choice, the benchmark and the choice's
        exposure-matched control (for equity plots)."""
        r = self.baseline[tickers]
        return r.returns[[CHOICE, self.benchmark, control_name(CHOICE)]].rename(
            columns={CHOICE: "walk-forward choice", control_name(CHOICE): "exposure-matched"}
        )

    def exposure_match(self) -> pd.DataFrame:
        """How closely the exposure-matched controls reached their targets, in sample: per
        ticker set, the controls' in-sample average capital at risk as a share of their
        candidates' (median, lowest and highest over folds and candidates)."""
        rows = []
        for tickers, r in self.baseline.items():
            ex = r.exposure.loc[r.exposure["is_heat"] > 0]
            ratio = ex["control_is_heat"] / ex["is_heat"]
            rows.append(
                {
                    "tickers": tickers,
                    "median": float(ratio.median()),
                    "lowest": float(ratio.min()),
                    "highest": float(ratio.max()),
                    "pairs": int(ratio.notna().sum()),
                }
            )
        return pd.DataFrame(rows)

    def overfitting_table(self) -> pd.DataFrame:
        """Per ticker set and sample (in-sample grid, out-of-sample walk-forward windows): the
        best variant by Sharpe, its annualised Sharpe, the deflated Sharpe ratio with the number
        of trials it deflates for, PBO, and SPA / Reality Check p-values (tests of mean daily
        excess return against the benchmark)."""
        rows = []
        for tickers in self.baseline:
            for sample, rep in (
                ("in-sample", self.is_reports.get(tickers)),
                ("out-of-sample", self.oos_reports.get(tickers)),
            ):
                if rep is None:
                    continue
                rows.append(
                    {
                        "tickers": tickers,
                        "sample": sample,
                        "best": str(rep.best),
                        "sharpe": rep.dsr.annualised,
                        "trials": rep.n_trials,
                        "dsr": rep.dsr.dsr,
                        "pbo": rep.pbo.pbo,
                        "spa_p_mean_return": rep.spa.pvalue_consistent,
                        "reality_check_p": rep.spa.rc_pvalue,
                        "beat_benchmark_in_mean": ", ".join(str(m) for m in rep.spa.better_models)
                        or "none",
                    }
                )
        return pd.DataFrame(rows)

    def in_sample_table(self) -> pd.DataFrame:
        """Metrics per ticker set and variant over the whole window (in-sample), with the date
        each stopped trading (``stopped_trading``, None: it traded to the end)."""
        cols = ["tickers", "variant", "cagr", "sharpe", "sortino", "max_drawdown", "calmar"]
        out = self.grid.table[[*cols, "trades", "win_rate", "avg_pnl"]].copy()
        out["stopped_trading"] = [
            self._stopped(t, v) for t, v in zip(out["tickers"], out["variant"], strict=True)
        ]
        return out.reset_index(drop=True)

    def _stopped(self, tickers: str, variant: str) -> pd.Timestamp | None:
        found = self.idle.get((tickers, variant))
        return None if found is None else found.since

    def idle_note(self, tickers: str) -> str:
        """One sentence on the variants of ``tickers`` that stopped trading in sample (empty
        when none did), and whether the in-sample best is only the one that stopped first."""
        stopped = {v: i for (t, v), i in self.idle.items() if t == tickers and i is not None}
        if not stopped:
            return ""
        names = sorted(stopped, key=lambda v: stopped[v].since)
        listed = ", ".join(
            f"{v} on {stopped[v].since:%Y-%m-%d} ({stopped[v].years:.1f} years in cash)"
            for v in names
        )
        text = (
            f"{tickers}: {len(stopped)} of {sum(1 for t, _ in self.idle if t == tickers)} "
            f"variants stopped trading in sample — {listed}: their account fell below one "
            "contract's risk, and their later returns are cash interest, not protection."
        )
        rep = self.is_reports.get(tickers)
        if rep is not None and str(rep.best) == names[0]:
            text += (
                f" The in-sample best, {rep.best}, is the one that stopped trading first: its "
                "lead is the years it sat in cash."
            )
        return text

    def sheet_table(self) -> pd.DataFrame:
        """One row per tear sheet: where each configuration's P&L came from (in-sample)."""
        from research.backtest.tearsheet import comparison

        frames = [comparison(s).assign(tickers=t) for t, s in self.sheets.items()]
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        return out[["tickers", *[c for c in out.columns if c != "tickers"]]]

    def folds_table(self) -> pd.DataFrame:
        """Every ticker set's walk-forward folds (winner, IS/OOS metric, efficiency, rank)."""
        frames = [wf.folds.assign(tickers=t) for t, wf in self.walk_forward.items()]
        out = pd.concat(frames, ignore_index=True)
        return out[["tickers", *[c for c in out.columns if c != "tickers"]]]

    def controls_table(self) -> pd.DataFrame:
        """Out-of-sample, per ticker set and candidate (the variants and the walk-forward
        choice): Sharpe, CAGR, average capital at risk; the exposure-matched control's (its CAGR
        too: scaling positions leaves a Sharpe ratio alone, so growth is what tells "loses less
        because it trades less" from "loses less because of the idea"); the Sharpe-difference
        tests against the benchmark, the control and cash; the permutation p-value (regime
        sets).

        Returns
        -------
        pandas.DataFrame
            ``tickers, candidate, oos_sharpe, oos_cagr, avg_at_risk, control_scale,
            control_sharpe, control_cagr, control_at_risk, p_vs_benchmark, p_vs_control,
            p_vs_cash, permutation_p``.
        """
        rows = []
        for tickers, r in self.baseline.items():
            names = list(r.walk_forward.winner_counts.index)
            heat = r.exposure.groupby("variant")[["oos_heat", "control_oos_heat", "scale"]].mean()
            choice_heat = r.exposure.loc[r.exposure["winner"]]
            for col in [CHOICE, *names]:
                h = (
                    choice_heat[["oos_heat", "control_oos_heat", "scale"]].mean()
                    if col == CHOICE
                    else heat.loc[col]
                )
                vs_bench = r.tests.get((col, r.benchmark))
                perm = r.permutation.get(col)
                rows.append(
                    {
                        "tickers": tickers,
                        "candidate": col,
                        "oos_sharpe": float(r.sharpe.sharpe[col]),
                        "oos_cagr": r.cagr(col),
                        "avg_at_risk": float(h["oos_heat"]),
                        "control_scale": float(h["scale"]),
                        "control_sharpe": float(r.sharpe.sharpe[control_name(col)]),
                        "control_cagr": r.cagr(control_name(col)),
                        "control_at_risk": float(h["control_oos_heat"]),
                        "p_vs_benchmark": math.nan if vs_bench is None else vs_bench.pvalue,
                        "p_vs_control": r.test(col, "control").pvalue,
                        "p_vs_cash": r.test(col, "cash").pvalue,
                        "permutation_p": math.nan if perm is None else perm[0],
                    }
                )
        return pd.DataFrame(rows)

    def sensitivity_table(self) -> pd.DataFrame:
        """One row per ticker set and scenario: OOS Sharpe of the choice and of each control,
        the Sharpe-difference p-value against the exposure-matched control, the permutation
        p-value, the verdict and whether it holds."""
        rows: list[dict[str, object]] = []
        for tickers, results in self.sensitivity.items():
            base = self.baseline[tickers].verdict.code
            for item in results:
                if isinstance(item, Scenario):
                    rows.append(
                        {
                            "tickers": tickers,
                            "scenario": item.name,
                            "change": item.description,
                            "verdict": "not applicable",
                            "verdict_holds": None,
                        }
                    )
                    continue
                rows.append(
                    {
                        "tickers": tickers,
                        "scenario": item.scenario.name,
                        "change": item.scenario.description,
                        "oos_start": item.returns.index[0],
                        "choice_oos_sharpe": item.choice_sharpe,
                        "benchmark_oos_sharpe": float(item.sharpe.sharpe[self.benchmark]),
                        "control_oos_sharpe": float(item.sharpe.sharpe[control_name(CHOICE)]),
                        "cash_oos_sharpe": 0.0,
                        "p_value": item.test(CHOICE, "control").pvalue,
                        "p_vs_benchmark": item.test(CHOICE, self.benchmark).pvalue,
                        "permutation_p": item.permutation_p,
                        "verdict": item.verdict.code,
                        "verdict_holds": item.verdict.code == base,
                    }
                )
        return pd.DataFrame(rows)

    def verdicts(self) -> pd.DataFrame:
        """Per ticker set: the verdict, whether it is robust, and the numbers behind it."""
        rows = []
        for tickers, r in self.baseline.items():
            rob = self.robustness[tickers]
            rows.append(
                {
                    "tickers": tickers,
                    "verdict": r.verdict.headline,
                    "robustness": rob.headline,
                    "choice_oos_sharpe": r.choice_sharpe,
                    f"{self.benchmark}_oos_sharpe": float(r.sharpe.sharpe[self.benchmark]),
                    "control_oos_sharpe": float(r.sharpe.sharpe[control_name(CHOICE)]),
                    "choice_oos_cagr": r.cagr(CHOICE),
                    f"{self.benchmark}_oos_cagr": r.cagr(self.benchmark),
                    "control_oos_cagr": r.cagr(control_name(CHOICE)),
                    "p_vs_control": r.test(CHOICE, "control").pvalue,
                    "permutation_p": r.permutation_p,
                    "strategy_profitable_oos": r.verdict.strategy_profitable,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, object]:
        """Machine-readable summary for the findings page (JSON-serialisable)."""

        def clean(value: object) -> object:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, np.floating | np.integer | np.bool_):
                return clean(value.item())
            if isinstance(value, pd.Timestamp):
                return str(value.date())
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        sens = self.sensitivity_table()
        ctl = self.controls_table()
        match = self.exposure_match().set_index("tickers")
        per = []
        for tickers, r in self.baseline.items():
            rob = self.robustness[tickers]
            is_rep = self.is_reports.get(tickers)
            oos_rep = self.oos_reports[tickers]
            wf = r.walk_forward
            t_ctrl = r.test(CHOICE, "control")
            rows = sens.loc[sens["tickers"] == tickers]
            per.append(
                {
                    "tickers": tickers,
                    "verdict": f"{r.verdict.text} Robustness: {rob.headline}.",
                    "verdict_code": r.verdict.code,
                    "robust": rob.robust,
                    "flips_under": list(rob.flips),
                    "strategy_profitable_oos": r.verdict.strategy_profitable,
                    "oos_start": r.returns.index[0],
                    "oos_end": r.returns.index[-1],
                    "oos_sharpe_walk_forward": r.choice_sharpe,
                    f"oos_sharpe_{self.benchmark}": float(r.sharpe.sharpe[self.benchmark]),
                    "oos_cagr_walk_forward": r.cagr(CHOICE),
                    "oos_return_walk_forward": r.total_return(CHOICE),
                    "oos_days": len(r.returns),
                    "folds": len(wf.folds),
                    "robustness_tested": rob.tested,
                    "permutation_required": self.kind == "multipliers",
                    "controls": {
                        "cash": {"oos_sharpe": 0.0, "annual_return": r.rate},
                        self.benchmark: {
                            "oos_sharpe": float(r.sharpe.sharpe[self.benchmark]),
                            "oos_cagr": r.cagr(self.benchmark),
                            "oos_return": r.total_return(self.benchmark),
                            "p_value": r.test(CHOICE, self.benchmark).pvalue,
                        },
                        "exposure_matched": {
                            "oos_sharpe": float(r.sharpe.sharpe[control_name(CHOICE)]),
                            "oos_cagr": r.cagr(control_name(CHOICE)),
                            "oos_return": r.total_return(control_name(CHOICE)),
                            "p_value": t_ctrl.pvalue,
                            "mean_scale": float(
                                r.exposure.loc[r.exposure["winner"], "scale"].mean()
                            ),
                        },
                    },
                    "exposure_match_in_sample": match.loc[tickers].to_dict(),
                    "permutation_p": r.permutation_p,
                    "permutation_test": PERMUTATION_TEST_NAME if r.n_permutations else None,
                    "n_permutations": r.n_permutations,
                    "sharpe_test": {
                        "name": SHARPE_TEST_NAME,
                        "p_value": t_ctrl.pvalue,
                        "p_vs_benchmark": r.test(CHOICE, self.benchmark).pvalue,
                        "p_vs_cash": r.test(CHOICE, "cash").pvalue,
                        "difference_vs_control": t_ctrl.difference,
                        "ci_low": t_ctrl.ci_low,
                        "ci_high": t_ctrl.ci_high,
                        "block_size": t_ctrl.block_size,
                        "reps": t_ctrl.reps,
                    },
                    "dsr_trials": self.trials[tickers].to_dict(),
                    "in_sample_best": None if is_rep is None else str(is_rep.best),
                    "in_sample_dsr": None if is_rep is None else is_rep.dsr.dsr,
                    "wf_winners": {k: int(v) for k, v in wf.winner_counts.items() if v},
                    # each variant's own out-of-sample series: a named variant is validated only
                    # when its own series passes the controls (and, for regime sets, the
                    # permutation test)
                    "variants": [
                        {
                            "variant": row["candidate"],
                            "oos_sharpe": row["oos_sharpe"],
                            "oos_cagr": row["oos_cagr"],
                            "p_vs_benchmark": row["p_vs_benchmark"],
                            "p_vs_control": row["p_vs_control"],
                            "p_vs_cash": row["p_vs_cash"],
                            "permutation_p": row["permutation_p"],
                        }
                        for row in ctl.loc[
                            (ctl["tickers"] == tickers) & (ctl["candidate"] != CHOICE)
                        ].to_dict(orient="records")
                    ],
                    "wf_efficiency": wf.walk_forward_efficiency,
                    "oos_spa": {
                        "test": SPA_LABEL,
                        "p_value": oos_rep.spa.pvalue_consistent,
                        "better_than_benchmark": [str(m) for m in oos_rep.spa.better_models],
                    },
                    "oos_pbo": oos_rep.pbo.pbo,
                    "sensitivity": [
                        {
                            "scenario": row["scenario"],
                            "change": row["change"],
                            "choice_oos_sharpe": row.get("choice_oos_sharpe"),
                            "control_oos_sharpe": row.get("control_oos_sharpe"),
                            "benchmark_oos_sharpe": row.get("benchmark_oos_sharpe"),
                            "p_value": row.get("p_value"),
                            "permutation_p": row.get("permutation_p"),
                            "verdict": row["verdict"],
                            "verdict_holds": row["verdict_holds"],
                        }
                        for row in rows.to_dict(orient="records")
                    ],
                }
            )
        out = {
            "study": self.kind,
            "benchmark": self.benchmark,
            "alpha": next(iter(self.baseline.values())).alpha,
            "rate": next(iter(self.baseline.values())).rate,
            "seconds": self.seconds,
            "per_tickers": per,
        }
        for row in per:
            t = str(row["tickers"])
            row["stopped_trading"] = {
                v: f"{i.since:%Y-%m-%d}"
                for (tt, v), i in self.idle.items()
                if tt == t and i is not None
            }
            row["idle_note"] = self.idle_note(t)
            row["tear_sheets"] = [s.summary() for s in self.sheets.get(t, ())]
        cleaned = clean(out)
        assert isinstance(cleaned, dict)
        return cleaned


def _scenario_variants(
    variants: Sequence[grids.Variant], scenario: Scenario
) -> list[grids.Variant]:
    if not scenario.config_changes and scenario.skew_factor == 1.0:
        return list(variants)
    return [
        grids.Variant(v.name, {**v.changes, **scenario.config_changes}, scenario.apply(v.config))
        for v in variants
    ]


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
    n_permutations: int = 200,
    sharpe_reps: int = 2000,
    scenarios: Sequence[str] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    store_path: str | Path | None = None,
    data: StudyData | None = None,
    base: object | None = None,
    progress: Callable[[str], None] | None = None,
) -> GridStudy:
    """The grid notebooks' whole computation (module docstring).

    Parameters
    ----------
    kind
        ``multipliers`` (the validation plan's regime-multiplier sets) or ``limits`` (its limit
        sets).
    ticker_sets
        Each set is one study (e.g. ``[("SPX",), ("IXIC",)]`` or ``[("SPX", "IXIC")]``).
    benchmark
        ``flat`` or ``wide_open``.
    scenarios
        Sensitivity scenario names (default: all of ``scenarios.SCENARIOS``).
    store_path
        Results store whose configurations on the same tickers and window also count as trials
        for the deflated Sharpe ratio (read-only).
    data
        Market inputs (default: ``StudyData.load`` of the embedded data).
    base
        Base config (default: ``optimize.service.DEFAULT_BASE``: scaled sizing).

    Returns
    -------
    GridStudy
    """
    from research.optimize.service import DEFAULT_BASE

    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    if store_path is not None:
        from research.config import resolve_path

        store_path = resolve_path(store_path)
    base_cfg = DEFAULT_BASE if base is None else base
    if kind == "multipliers":
        variants = grids.multiplier_variants(base_cfg)  # type: ignore[arg-type]
    elif kind == "limits":
        variants = grids.limit_variants(base_cfg)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown study {kind!r}; use multipliers or limits")
    chosen = scenario_by_name(scenarios)  # unknown names fail before any work
    tickers_all = sorted({t for ts in ticker_sets for t in ts})
    data = data or StudyData.load(symbols=tickers_all)
    baseline_sc = chosen[0]
    labels = data.labels(baseline_sc, regime_model)

    def panel_for(tickers: tuple[str, ...]) -> MarketPanel:
        panel = data.panel(baseline_sc, tickers, start, end)
        assert panel is not None
        return panel

    grid = grids.run_grid(kind, variants, panel_for, ticker_sets, regimes=labels)
    say(f"in-sample grid: {len(grid.table)} rows")
    rate = float(base_cfg.rate)  # type: ignore[attr-defined]
    stress_rows = []
    idle: dict[tuple[str, str], Idle | None] = {}
    for _, row in grid.table.iterrows():
        equity = (1 + grid.returns[row["row_id"]].dropna()).cumprod()
        idle[(row["tickers"], row["variant"])] = idle_since(equity, rate)
        st = stress_table(equity)
        # a window spent wholly in cash had no position: "no trades", not protection
        st["in_cash"] = [cash_share(equity, rate, w.start, w.end) for w in STRESS_WINDOWS]
        stress_rows.append(st.assign(tickers=row["tickers"], variant=row["variant"]))
    stress = pd.concat(stress_rows, ignore_index=True)[
        ["tickers", "variant", "window", "start", "end", "days", "return", "max_drawdown",
         "in_cash"]
    ]  # fmt: skip
    is_reports, trials = {}, {}
    sheets: dict[str, tuple[TearSheet, ...]] = {}
    baseline: dict[str, ScenarioResult] = {}
    oos_reports = {}
    sensitivity: dict[str, list[ScenarioResult | Scenario]] = {}
    rob = {}
    for tickers in ticker_sets:
        name = "+".join(tickers)
        trials[name] = count_trials(grid.table, name, store_path)
        matrix = excess_returns(grid.returns_for(tickers=name).dropna(), base_cfg.rate)  # type: ignore[attr-defined]
        assert isinstance(matrix, pd.DataFrame)
        is_reports[name] = overfitting_report(
            matrix, benchmark, spa_reps=spa_reps, n_splits=8, n_trials=trials[name].n
        )
        results: list[ScenarioResult | Scenario] = []
        for sc in chosen:
            if data.chains is not None and sc.model_only:
                results.append(sc)  # chain prices do not use the model's skew or dividends
                say(f"{name} {sc.name}: not applicable to chain prices")
                continue
            applies, why = data.applies(sc, tickers, base_cfg)  # type: ignore[arg-type]
            if sc is not baseline_sc and not applies:
                results.append(sc)
                say(f"{name} {sc.name}: not applicable ({why})")
                continue
            is_y, oos_y = REAL_IV_SPLIT if sc.real_iv_only else (is_years, oos_years)
            try:
                panel = data.panel(sc, tickers, start, end)
                if panel is None:
                    raise ValueError("no data")
                splits = walk_forward_splits(
                    panel.dates,
                    is_years=is_y,
                    oos_years=oos_y,
                    mode=mode,  # type: ignore[arg-type]
                )
            except ValueError:
                if sc is baseline_sc:
                    raise
                results.append(sc)
                say(f"{name} {sc.name}: not applicable")
                continue
            res = evaluate_scenario(
                panel,
                _scenario_variants(variants, sc),
                benchmark,
                splits,
                data.labels(sc, regime_model),
                scenario=sc,
                tickers=name,
                kind=kind,
                metric=metric,
                n_permutations=n_permutations,
                permute_all=sc is baseline_sc,
                sharpe_reps=sharpe_reps,
                seed=seed,
                alpha=alpha,
                trade_metrics=sc is baseline_sc,
                verify_controls=sc is baseline_sc,
                full_tests=sc is baseline_sc,
            )
            say(f"{name} {sc.name}: {res.verdict.code}")
            if sc is baseline_sc:
                baseline[name] = res
                cands = res.returns[list(res.walk_forward.winner_counts.index)]
                oos_ex = excess_returns(cands, res.rate)
                assert isinstance(oos_ex, pd.DataFrame)
                oos_reports[name] = overfitting_report(
                    oos_ex, benchmark, spa_reps=spa_reps, n_splits=8, n_trials=trials[name].n
                )
            results.append(res)
        sensitivity[name] = results
        sheets[name] = _tear_sheets(
            panel_for(tuple(tickers)),
            variants,
            labels,
            [benchmark, None if is_reports[name] is None else str(is_reports[name].best),
             str(baseline[name].walk_forward.folds["winner"].iloc[-1])],
        )  # fmt: skip
        rob[name] = robustness(
            baseline[name].verdict.code,
            [
                (r.name, None) if isinstance(r, Scenario) else (r.scenario.name, r.verdict.code)
                for r in results
                if not (isinstance(r, ScenarioResult) and r.scenario is baseline_sc)
            ],
        )
    return GridStudy(
        kind=kind,
        benchmark=benchmark,
        grid=grid,
        is_reports=is_reports,
        trials=trials,
        stress=stress,
        baseline=baseline,
        oos_reports=oos_reports,
        sensitivity=sensitivity,
        robustness=rob,
        seconds=time.perf_counter() - t0,
        idle=idle,
        sheets=sheets,
    )


def _tear_sheets(
    panel: MarketPanel,
    variants: Sequence[grids.Variant],
    labels: pd.DataFrame | None,
    names: Sequence[str | None],
) -> tuple[TearSheet, ...]:
    """Tear sheets (in-sample, whole window) of the named variants, each once, in order: the
    benchmark, the in-sample best, the walk-forward's last choice."""
    by_name = {v.name: v for v in variants}
    wanted = [n for n in dict.fromkeys(names) if n is not None and n in by_name]
    results = run_backtests(panel, [by_name[n].config for n in wanted], labels)
    day_labels = None
    if labels is not None:
        first = labels.loc[labels["symbol"] == panel.tickers[0]]
        day_labels = pd.Series(first["regime"].to_numpy(), index=pd.DatetimeIndex(first["date"]))
    roles: dict[str, list[str]] = {}
    for name, role in zip(
        names, ("benchmark", "in-sample best", "walk-forward's last"), strict=True
    ):
        if name is not None:
            roles.setdefault(name, []).append(role)
    return tuple(
        tear_sheet(result, f"{n} ({', '.join(roles[n])})", labels=day_labels)
        for n, result in zip(wanted, results, strict=True)
    )


def compare_verdicts(studies: dict[str, GridStudy]) -> pd.DataFrame:
    """The baseline verdicts of the same study under different pricings, side by side.

    Parameters
    ----------
    studies
        Pricing label (e.g. ``model``, ``chain``) → its ``GridStudy``.

    Returns
    -------
    pandas.DataFrame
        One row per pricing and ticker set: ``pricing, tickers, verdict, choice_oos_sharpe``,
        the benchmark's and the control's OOS Sharpe, the Sharpe-test p-value against the
        control and the permutation p-value.
    """
    frames = [s.verdicts().assign(pricing=name) for name, s in studies.items()]
    out = pd.concat(frames, ignore_index=True)
    first = ["pricing", "tickers", "verdict"]
    return out[[*first, *[c for c in out.columns if c not in (*first, "robustness")]]]
