"""Tests of Sharpe ratios: is a strategy's Sharpe above zero (cash), and above another's?

SPA (``overfitting.spa_test``) asks whether any candidate beats a benchmark in **mean return**;
a claim about **Sharpe ratios** needs a test of Sharpe ratios. This module bootstraps them:

- Daily *excess* returns (over the risk-free rate) of several strategies on the same dates are
  resampled together with a **paired circular block bootstrap** (``arch.bootstrap.
  CircularBlockBootstrap``: the same blocks of days for every strategy, so their correlation and
  each one's autocorrelation and volatility clustering are kept).
- The annualised Sharpe ratio ``mean / std * sqrt(252)`` (sample std, ddof=1) of every column
  is computed on every resample.
- **Difference** ``SR_a - SR_b`` (H0: ``SR_a <= SR_b``; H1: ``SR_a > SR_b``): the one-sided
  p-value is the share of resamples whose *re-centred* difference
  ``(SR*_a - SR*_b) - (SR_a - SR_b)`` is at least the observed difference, computed as
  ``(1 + count) / (1 + reps)`` so it is never exactly 0; the interval is the percentile interval
  of ``SR*_a - SR*_b``. This is the percentile-bootstrap version of Ledoit & Wolf (2008),
  "Robust performance hypothesis testing with the Sharpe ratio", *Journal of Empirical Finance*
  15(5), 850-859 (they studentise; with thousands of days the two agree closely).
- **Versus cash** (``SR_a > 0``): the same with ``SR_b = 0``; cash's excess return is 0.

Block length: the largest of Politis & White's circular-bootstrap estimates
(``arch.bootstrap.optimal_block_length``) over the compared columns and their squares (so
volatility clustering is covered), rounded up, at least 1 and at most a quarter of the sample.
Everything is seeded (``seed``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.constants import TRADING_DAYS

__all__ = [
    "SHARPE_TEST_NAME",
    "SharpeBootstrap",
    "SharpeTest",
    "block_length",
    "bootstrap_sharpes",
    "excess_returns",
    "sharpe_tests",
]

SHARPE_TEST_NAME = "paired circular-block bootstrap of the Sharpe difference (one-sided)"
PERIODS_PER_YEAR = TRADING_DAYS


@dataclass(frozen=True)
class SharpeTest:
    """One comparison of annualised Sharpe ratios (``a`` against ``b`` or cash)."""

    a: str
    b: str
    """The other strategy's column, or ``"cash"``."""
    sharpe_a: float
    sharpe_b: float
    difference: float
    ci_low: float
    ci_high: float
    """Percentile interval of the difference at ``level``."""
    pvalue: float
    """One-sided: H1 ``SR_a > SR_b``."""
    level: float
    reps: int
    block_size: int
    n_obs: int
    test: str = SHARPE_TEST_NAME

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _sharpe_rows(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Annualised Sharpe of each column of a (..., T, m) array (NaN where std is 0)."""
    mean = values.mean(axis=-2)
    std = values.std(axis=-2, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 1e-12, mean / std, np.where(np.abs(mean) <= 1e-12, 0.0, np.nan))
    return np.asarray(out * math.sqrt(PERIODS_PER_YEAR), dtype=np.float64)


def _block_sharpes(
    values: npt.NDArray[np.float64], index: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.float64]:
    """Sharpe of every column on every resample ``index`` (reps x T).

    A circular-block resample is ``ceil(T / size)`` runs of consecutive days (wrapping at the
    end) starting at ``index[:, ::size]``; its sums and sums of squares come from circular
    prefix sums in O(T / size) per resample instead of O(T). The run structure is checked; if
    it does not hold the resampled values are summed directly.
    """
    reps, n = index.shape
    starts = index[:, ::size]
    nb = starts.shape[1]
    expected = (starts[:, :, None] + np.arange(size)[None, None, :]).reshape(reps, -1)[:, :n] % n
    if not np.array_equal(expected, index):
        draws = np.empty((reps, values.shape[1]))
        chunk = max(1, int(4e6 // max(values.size, 1)))
        for i in range(0, reps, chunk):
            draws[i : i + chunk] = _sharpe_rows(values[index[i : i + chunk]])
        return draws
    lengths = np.full(nb, size, dtype=np.int64)
    lengths[-1] = n - size * (nb - 1)
    ends = starts + lengths[None, :]
    total = np.zeros((reps, values.shape[1]))
    total_sq = np.zeros((reps, values.shape[1]))
    for power, acc in ((1, total), (2, total_sq)):
        doubled = np.concatenate([values**power, values**power])
        prefix = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(doubled, axis=0)])
        for b in range(nb):
            acc += prefix[ends[:, b]] - prefix[starts[:, b]]
    mean = total / n
    var = np.maximum(total_sq - n * mean**2, 0.0) / (n - 1)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 1e-12, mean / std, np.where(np.abs(mean) <= 1e-12, 0.0, np.nan))
    return np.asarray(out * math.sqrt(PERIODS_PER_YEAR), dtype=np.float64)


def block_length(excess: pd.DataFrame) -> int:
    """Circular-bootstrap block length for the columns of ``excess`` (module docstring)."""
    from arch.bootstrap import optimal_block_length

    values = excess.to_numpy(dtype=float)
    n = len(values)
    keep = values.std(axis=0) > 1e-12
    if n < 8 or not keep.any():
        return 1
    values = values[:, keep]
    est = optimal_block_length(np.hstack([values, values**2]))["circular"].to_numpy(float)
    est = est[np.isfinite(est)]
    size = int(math.ceil(est.max())) if len(est) else 1
    return int(min(max(size, 1), max(n // 4, 1)))


@dataclass(frozen=True, eq=False)
class SharpeBootstrap:
    """Bootstrap distribution of the Sharpe ratios of several strategies on the same days."""

    columns: tuple[str, ...]
    sharpe: pd.Series
    """Observed annualised Sharpe ratio of each column."""
    draws: npt.NDArray[np.float64]
    """reps x columns: Sharpe ratios on each resample."""
    block_size: int
    n_obs: int
    level: float

    def compare(self, a: str, b: str = "cash") -> SharpeTest:
        """Test ``SR_a > SR_b`` (``b="cash"``: ``SR_a > 0``)."""
        ia = self.columns.index(a)
        sa, da = float(self.sharpe[a]), self.draws[:, ia]
        if b == "cash":
            sb, db = 0.0, np.zeros_like(da)
        else:
            ib = self.columns.index(b)
            sb, db = float(self.sharpe[b]), self.draws[:, ib]
        diff = sa - sb
        boot = da - db
        ok = np.isfinite(boot)
        reps = int(ok.sum())
        if not math.isfinite(diff) or reps == 0:
            p, lo, hi = math.nan, math.nan, math.nan
        else:
            boot = boot[ok]
            p = float((1 + np.sum(boot - diff >= diff)) / (1 + reps))
            tail = (1 - self.level) / 2
            lo, hi = (float(x) for x in np.quantile(boot, [tail, 1 - tail]))
        return SharpeTest(
            a=a,
            b=b,
            sharpe_a=sa,
            sharpe_b=sb,
            difference=diff,
            ci_low=lo,
            ci_high=hi,
            pvalue=p,
            level=self.level,
            reps=reps,
            block_size=self.block_size,
            n_obs=self.n_obs,
        )


def bootstrap_sharpes(
    excess: pd.DataFrame,
    *,
    reps: int = 2000,
    block_size: int | None = None,
    seed: int = 0,
    level: float = 0.95,
) -> SharpeBootstrap:
    """Paired circular-block bootstrap of the annualised Sharpe ratios of ``excess``' columns.

    Parameters
    ----------
    excess : pandas.DataFrame
        Daily excess returns (over the risk-free rate), one column per strategy, same dates, no
        NaN.
    reps : int, default 2000
        Resamples.
    block_size : int, optional
        Block length (default: ``block_length(excess)``).
    seed : int, default 0
        Seed of the bootstrap's generator.
    level : float, default 0.95
        Coverage of the difference intervals.

    Returns
    -------
    SharpeBootstrap
        ``.compare(a, b)`` / ``.compare(a)`` give ``SharpeTest`` results.
    """
    from arch.bootstrap import CircularBlockBootstrap

    if excess.isna().any().any():
        bad = excess.columns[excess.isna().any()].tolist()
        raise ValueError(f"excess returns have NaN in {bad}; align the series first")
    if len(excess) < 3:
        raise ValueError(f"need at least 3 days of returns, got {len(excess)}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    values = excess.to_numpy(dtype=float)
    n = len(values)
    size = block_length(excess) if block_size is None else int(block_size)
    bs = CircularBlockBootstrap(size, np.arange(n), seed=np.random.default_rng(seed))
    index = np.stack([data[0][0] for data in bs.bootstrap(int(reps))])
    draws = _block_sharpes(values, index, size)
    columns = tuple(str(c) for c in excess.columns)
    observed = pd.Series(_sharpe_rows(values[None])[0], index=list(columns))
    return SharpeBootstrap(columns, observed, draws, size, len(values), level)


def excess_returns(returns: pd.DataFrame | pd.Series, rate: float) -> pd.DataFrame | pd.Series:
    """Daily returns minus the daily risk-free return ``(1 + rate) ** (1/252) - 1``."""
    excess: pd.DataFrame | pd.Series = returns - ((1.0 + rate) ** (1.0 / PERIODS_PER_YEAR) - 1.0)
    return excess


def sharpe_tests(
    boot: SharpeBootstrap, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], SharpeTest]:
    """Several comparisons from one bootstrap (``b = "cash"`` tests ``SR_a > 0``)."""
    return {(a, b): boot.compare(a, b) for a, b in pairs}
