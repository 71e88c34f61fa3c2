"""Means and differences of dependent observations, with errors clustered by period.

Trades entered on nearby days, signals whose 20-day outcomes overlap, tuning runs of the same
year: observations of the same cluster share the market, so their errors are not independent.
Every layer that compares means uses these two tools (data only: numpy, scipy, statsmodels; no
other ``research`` module):

- ``clustered_test``: the mean of ``y``, or the difference of its means where a dummy is 1 and
  0, with a cluster-robust standard error — statsmodels ``OLS(...).fit(cov_type="cluster",
  cov_kwds={"groups": g, "use_correction": True, "df_correction": True}, use_t=True)``: the CR1
  correction ``G/(G-1)·(N-1)/(N-K)`` and a t distribution with ``G - 1`` degrees of freedom
  (``G`` clusters). With one observation per cluster it is the ordinary t-test. No p-value is
  given (NaN) where none means anything: fewer than two clusters, a dummy without both values,
  or a standard error that is zero up to rounding — and never a p of exactly 0 (a p that
  underflows is ``P_FLOOR``).
- ``cluster_bootstrap_ci``: the percentile interval of a mean, resampling whole clusters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["P_FLOOR", "ClusteredTest", "cluster_bootstrap_ci", "clustered_test"]

P_FLOOR = float(np.finfo(float).tiny)
"""The smallest p-value reported: a t-test p that underflows to 0 (a difference millions of
standard errors from zero) is given as this instead, so no p-value is ever exactly 0."""


@dataclass(frozen=True)
class ClusteredTest:
    """An estimate with its cluster-robust standard error, two-sided p-value and interval."""

    estimate: float
    se: float
    p: float
    """Two-sided t-test of estimate = 0 (NaN when it cannot be tested)."""
    ci_low: float
    ci_high: float
    clusters: int
    df: int
    """Degrees of freedom of the t distribution: clusters - 1."""

    @staticmethod
    def empty(clusters: int = 0, estimate: float = math.nan) -> ClusteredTest:
        """No test: NaN standard error, p and interval (the estimate kept when known)."""
        nan = math.nan
        return ClusteredTest(estimate, nan, nan, nan, nan, clusters, max(clusters - 1, 0))


def clustered_test(
    y: npt.ArrayLike,
    groups: npt.ArrayLike,
    dummy: npt.ArrayLike | None = None,
    *,
    alpha: float = 0.05,
) -> ClusteredTest:
    """The mean of ``y`` (``dummy`` None) or the difference of its means where ``dummy`` is 1
    and 0 (OLS of ``y`` on a constant and the dummy), with errors clustered by ``groups``
    (module docstring).

    Raises
    ------
    ValueError
        ``alpha`` not in (0, 1), or ``y``, ``groups`` and ``dummy`` of different lengths.

    Returns
    -------
    ClusteredTest
        NaN standard error, p and interval with fewer than two clusters, a dummy that is all 0
        or all 1, no more observations than coefficients, or no variation left (the estimate
        is then still given).
    """
    import statsmodels.api as sm
    from scipy import stats

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    yv = np.asarray(y, dtype=float)
    g = np.asarray(groups)
    n = len(yv)
    if len(g) != n or (dummy is not None and len(np.asarray(dummy)) != n):
        raise ValueError(
            f"y, groups and dummy need the same length, got {n}, {len(g)} and "
            f"{'-' if dummy is None else len(np.asarray(dummy))}"
        )
    clusters = len(np.unique(g)) if n else 0
    if dummy is None:
        exog = np.ones((n, 1))
        estimate = float(yv.mean()) if n else math.nan
    else:
        x = np.asarray(dummy, dtype=float)
        if n == 0 or x.min() == x.max():
            return ClusteredTest.empty(clusters)
        exog = np.column_stack([np.ones(n), x])
        estimate = float(yv[x == 1].mean() - yv[x == 0].mean())
    if clusters < 2 or n <= exog.shape[1]:
        return ClusteredTest.empty(clusters, estimate)
    res = sm.OLS(yv, exog).fit(
        cov_type="cluster",
        cov_kwds={"groups": g, "use_correction": True, "df_correction": True},
        use_t=True,
    )
    est = float(res.params[-1])
    se = float(res.bse[-1])
    df = clusters - 1
    # no variation left (up to rounding): nothing to test, and never p = 0
    if not se > 1e-12 * (abs(est) + float(np.abs(yv).max(initial=0.0)) + 1.0):
        return ClusteredTest.empty(clusters, est)
    p = max(float(2 * stats.t.sf(abs(est / se), df)), P_FLOOR)
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return ClusteredTest(est, se, p, est - half, est + half, clusters, df)


def cluster_bootstrap_ci(
    values: npt.ArrayLike,
    clusters: npt.ArrayLike,
    reps: int,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile interval of the mean, resampling whole clusters with replacement.

    Returns
    -------
    tuple of float
        ``(low, high)``; NaN with fewer than two clusters or no resamples.
    """
    v = np.asarray(values, dtype=float)
    ids, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(ids)
    if k < 2 or reps < 1:
        return (math.nan, math.nan)
    sums = np.bincount(inverse, weights=v, minlength=k)
    counts = np.bincount(inverse, minlength=k).astype(float)
    draws = rng.integers(0, k, size=(reps, k))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
