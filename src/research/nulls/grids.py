"""Null calibration of the grid studies' tests (regime multipliers and portfolio limits).

The studies' verdicts rest on three tests (``research.optimize.study``):

- the **Sharpe-difference test** of the walk-forward choice against the benchmark and its
  exposure-matched control (``inference.bootstrap_sharpes``: paired circular-block bootstrap,
  one-sided);
- the same test **against cash** (Sharpe > 0);
- the **label-permutation test** of regime sizing (``controls.permuted_codes``: the real runs of
  labels in a random order; p = share of shuffles whose Sharpe reaches the real one).

Each case below runs the test exactly as the study does, on data built from the embedded SPX
backtest (the multiplier grid's base strategy, 2000-2012, before the account stops trading):

- *Sharpe tests*: the daily excess returns of two real grid variants (``prod`` regime sizing and
  ``flat`` sizing), resampled **jointly** by a stationary bootstrap (mean block 60 days, longer
  than the blocks the test itself resamples; 250 days in a sensitivity case: their correlation,
  autocorrelation and volatility clustering kept) after the first series' mean is
  set so both have the **same Sharpe ratio** (the null) — or so the first has 0.15 more
  annualised Sharpe (the planted effect). Against cash: the first series re-centred to Sharpe 0
  (null) or 0.75 (effect).
- *Label permutations*: the strategy sized by ``prod`` multipliers with the **real regime labels
  rotated** by a random offset (their real durations, frequencies and alternation, but no
  alignment with the P&L: the null), or with labels that also mark, 60 % of the time, the days
  before the flat strategy's worst 20-day stretches as ``bear_high_vol`` (an informative regime:
  the planted effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from research.backtest.market_panel import MarketPanel
from research.backtest.spreads import BacktestConfig
from research.constants import TRADING_DAYS
from research.nulls.core import NullCase

__all__ = ["GRID_LAYER", "MULTIPLIER_LAYER", "GridWorld", "cases", "world"]

GRID_LAYER = "Grid studies"
"""The Sharpe tests both grid pages' verdicts rest on."""
MULTIPLIER_LAYER = "Regime multiplier grid"
"""The label-permutation test (regime-multiplier studies only)."""

START, END = "2000-01-01", "2012-12-31"
BLOCK = 60
"""Mean block length (days) of the stationary bootstrap that builds the data sets: longer than
the blocks the Sharpe test resamples (Politis-White, typically 5-30 days), so the data keep
dependence the test does not assume."""
LONG_BLOCK = 250
"""The sensitivity case's mean block (a year: volatility regimes kept whole)."""
BENCH_EFFECT = 0.15
"""Planted gain in annualised Sharpe ratio over the benchmark (the two series are ~0.9
correlated, so small gains are detectable)."""
CASH_EFFECT = 0.75
"""Planted annualised Sharpe ratio over cash."""
SHARPE_REPS = 199
"""Bootstrap resamples of the Sharpe test inside each simulated study (the study uses 2,000)."""
PERMUTATIONS = 99
"""Label shuffles inside each simulated study (the study uses 200)."""


@dataclass(frozen=True)
class GridWorld:
    """What the grid cases simulate from (computed once per process)."""

    excess: pd.DataFrame
    """Daily excess returns over cash of ``prod`` and ``flat`` (SPX, 2000-2012)."""
    codes: np.ndarray
    """Real ``bull_bear_vol`` label codes of the panel's days (days x 1)."""
    labels: tuple[str, ...]
    flat_forward: np.ndarray
    """Flat sizing's P&L over the next 20 days from each day (for the planted effect)."""
    panel: MarketPanel
    prod: BacktestConfig
    """The ``prod`` multiplier set on the grids' base configuration."""


@cache
def world() -> GridWorld:
    """Run the multiplier grid's ``prod`` and ``flat`` variants on the embedded SPX data."""
    from research.backtest.run import RegimeCodes, regime_codes, run_kernel
    from research.optimize import grids
    from research.optimize.inference import excess_returns
    from research.optimize.scenarios import SCENARIOS, StudyData
    from research.optimize.service import DEFAULT_BASE

    data = StudyData.load(symbols=["SPX"])
    panel = data.panel(SCENARIOS[0], ("SPX",), START, END)
    assert panel is not None
    labels = data.labels(SCENARIOS[0], "bull_bear_vol")
    codes, names = regime_codes(panel, labels)
    variants = {v.name: v for v in grids.multiplier_variants(DEFAULT_BASE)}
    configs = [variants["prod"].config, variants["flat"].config]
    out = run_kernel(panel, configs, code_sets=RegimeCodes(codes[None], names), record_trades=False)
    previous = np.concatenate([[[c.initial_equity] for c in configs], out.equity[:, :-1]], axis=1)
    returns = pd.DataFrame((out.equity / previous - 1).T, index=panel.dates, columns=["a", "b"])
    excess = excess_returns(returns, DEFAULT_BASE.rate)
    assert isinstance(excess, pd.DataFrame)
    eq = out.equity[1]
    fwd = np.full(len(eq), np.nan)
    fwd[:-20] = eq[20:] - eq[:-20]
    return GridWorld(excess, codes, names, fwd, panel, configs[0])


def _stationary_rows(n: int, rng: np.random.Generator, block: int = BLOCK) -> np.ndarray:
    """Row indices of one stationary-bootstrap resample (Politis-Romano, mean ``block``)."""
    from arch.bootstrap import StationaryBootstrap

    boot = StationaryBootstrap(block, np.arange(n), seed=rng)
    return np.asarray(boot.update_indices())


def _sharpe(x: np.ndarray) -> float:
    return float(x.mean() / x.std(ddof=1) * math.sqrt(TRADING_DAYS))


def _with_sharpe(x: np.ndarray, target: float) -> np.ndarray:
    """``x`` with its mean moved so that its annualised Sharpe is ``target``."""
    moved: np.ndarray = x - x.mean() + target / math.sqrt(TRADING_DAYS) * x.std(ddof=1)
    return moved


def _sharpe_vs_benchmark(rng: np.random.Generator, effect: float, block: int = BLOCK) -> float:
    from research.optimize.inference import bootstrap_sharpes

    w = world()
    a, b = w.excess["a"].to_numpy(), w.excess["b"].to_numpy()
    # the null: both with b's Sharpe; the effect: a's Sharpe BENCH_EFFECT higher
    a = _with_sharpe(a, _sharpe(b) + effect * BENCH_EFFECT)
    rows = _stationary_rows(len(a), rng, block)
    frame = pd.DataFrame({"a": a[rows], "b": b[rows]})
    boot = bootstrap_sharpes(frame, reps=SHARPE_REPS, seed=int(rng.integers(2**31)))
    return boot.compare("a", "b").pvalue


def _long_memory(rng: np.random.Generator, effect: float) -> float:
    return _sharpe_vs_benchmark(rng, effect, LONG_BLOCK)


def _sharpe_vs_cash(rng: np.random.Generator, effect: float) -> float:
    from research.optimize.inference import bootstrap_sharpes

    w = world()
    a = _with_sharpe(w.excess["a"].to_numpy(), effect * CASH_EFFECT)
    rows = _stationary_rows(len(a), rng)
    boot = bootstrap_sharpes(pd.DataFrame({"a": a[rows]}), reps=SHARPE_REPS,
                             seed=int(rng.integers(2**31)))  # fmt: skip
    return boot.compare("a", "cash").pvalue


def _label_permutation(rng: np.random.Generator, effect: float) -> float:
    from research.backtest.run import RegimeCodes, run_kernel
    from research.optimize.controls import permutation_pvalue, permuted_codes

    w = world()
    codes = w.codes[:, 0].copy()
    known = codes >= 0
    first = int(np.argmax(known))
    # the null: the real labels rotated (after the warm-up), no alignment with the P&L
    body = codes[first:]
    codes[first:] = np.roll(body, int(rng.integers(1, len(body))))
    if effect:
        # informative labels: before the flat strategy's worst 20-day stretches, 60 % of the
        # time, the label is bear_high_vol (the lowest multiplier)
        worst = w.flat_forward < np.nanquantile(w.flat_forward, 0.2)
        mark = worst & (rng.random(len(codes)) < 0.6) & (np.arange(len(codes)) >= first)
        codes[mark] = w.labels.index("bear_high_vol")
    real = codes[:, None]
    shuffles = permuted_codes(real, PERMUTATIONS, int(rng.integers(2**31)))
    sets = np.concatenate([real[None], shuffles])
    prod = w.prod
    out = run_kernel(
        w.panel,
        [prod] * len(sets),
        code_sets=RegimeCodes(sets, w.labels),
        set_of=np.arange(len(sets)),
        record_trades=False,
    )
    previous = np.concatenate([np.full((len(sets), 1), prod.initial_equity), out.equity[:, :-1]],
                              axis=1)  # fmt: skip
    rf = (1.0 + prod.rate) ** (1.0 / TRADING_DAYS) - 1.0
    ex = out.equity / previous - 1.0 - rf
    std = ex.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 1e-12, ex.mean(axis=1) / std, 0.0) * math.sqrt(TRADING_DAYS)
    return permutation_pvalue(float(sharpe[0]), sharpe[1:])


def cases() -> list[NullCase]:
    """The grid studies' verdict tests (module docstring)."""
    layer = GRID_LAYER
    return [
        NullCase(
            layer,
            "Sharpe difference vs the benchmark or the exposure-matched control (paired "
            "circular-block bootstrap, one-sided)",
            "two real SPX variants' daily excess returns (prod, flat sizing 2000-2012) with "
            "equal Sharpe ratios, resampled jointly by a stationary bootstrap (mean block 60 "
            "days)",
            f"the first variant's Sharpe {BENCH_EFFECT} higher (annualised)",
            _sharpe_vs_benchmark,
        ),
        NullCase(
            layer,
            "Sharpe difference vs the benchmark, longer memory (sensitivity)",
            "as above, resampled in blocks of a year on average (mean block 250 days: volatility "
            "regimes kept whole)",
            f"the first variant's Sharpe {BENCH_EFFECT} higher (annualised)",
            _long_memory,
        ),
        NullCase(
            layer,
            "Sharpe vs cash (block bootstrap, one-sided)",
            "the real prod-sized SPX daily excess returns re-centred to Sharpe 0, stationary "
            "bootstrap (mean block 60 days)",
            f"Sharpe {CASH_EFFECT} (annualised)",
            _sharpe_vs_cash,
        ),
        NullCase(
            MULTIPLIER_LAYER,
            f"Label-permutation test ({PERMUTATIONS} duration-preserving shuffles)",
            "prod multipliers on the real bull/bear x vol labels rotated by a random offset "
            "(real durations, no alignment with the P&L)",
            "labels that mark bear_high_vol before 60 % of the flat strategy's worst 20-day "
            "stretches",
            _label_permutation,
        ),
    ]
