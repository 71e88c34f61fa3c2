"""How likely is the winner of a backtest grid an accident?

A parameter grid produces one per-period (daily) return series per configuration.  Picking the
best one by in-sample performance inflates that performance; this module quantifies the
inflation five complementary ways:

1. **Deflated Sharpe ratio** (Bailey & López de Prado 2014): the probability that the winner's
   true Sharpe ratio exceeds the Sharpe ratio the *best of N noise strategies* would show.
   See :func:`probabilistic_sharpe_ratio`, :func:`expected_max_sharpe`, :func:`deflated_sharpe`.
2. **Probability of backtest overfitting** by combinatorially symmetric cross-validation
   (Bailey, Borwein, López de Prado & Zhu 2017): how often the in-sample best configuration
   ranks in the bottom half out-of-sample.  See :func:`pbo_cscv`.
3. **Hansen's SPA test and White's Reality Check** against a benchmark, via
   :class:`arch.bootstrap.SPA`.  See :func:`spa_test`.
4. **Parameter-neighbourhood stability**: is the winner on a plateau of good neighbours or an
   isolated spike?  See :func:`neighbourhood_stability`.
5. A composer, :func:`overfitting_report`, returning everything as one frozen dataclass.

Conventions
-----------
- Sharpe ratios are **per period** (e.g. daily) and **not annualised** unless a field name says
  ``annualised``; they are ``mean / std`` with the sample standard deviation (``ddof=1``) and no
  risk-free rate (pass excess returns if you want one).  Annualisation multiplies by
  ``sqrt(periods_per_year)`` (252 by default).
- Skewness and kurtosis are the moment (biased) estimators; **kurtosis is Pearson kurtosis**
  (3 for a normal distribution), *not* excess kurtosis.
- Inputs must be finite: NaNs are rejected rather than silently dropped (drop the first
  ``pct_change`` row yourself).
- Result dataclasses are frozen; the ones holding arrays or pandas objects use ``eq=False``
  (element-wise ``==`` on arrays is not a truth value) and their arrays are read-only.

>>> report = overfitting_report(grid_returns, benchmark="buy_and_hold")   # doctest: +SKIP
>>> report.summary()                                                      # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from arch.bootstrap import SPA
from scipy import stats

from research.constants import TRADING_DAYS

__all__ = [
    "EULER_MASCHERONI",
    "DeflatedSharpe",
    "OverfittingReport",
    "PBOResult",
    "SPAResult",
    "Stability",
    "deflated_sharpe",
    "expected_max_sharpe",
    "neighbourhood_stability",
    "overfitting_report",
    "pbo_cscv",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
    "spa_test",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EULER_MASCHERONI = 0.5772156649015329
"""Euler–Mascheroni constant γ used in the expected-maximum approximation."""

PERIODS_PER_YEAR = TRADING_DAYS
"""Default number of periods per year used to annualise per-period Sharpe ratios."""

DEFAULT_PLATEAU_THRESHOLD = 0.5
"""Default plateau-score threshold of :func:`neighbourhood_stability` (see there)."""

_ZERO_STD_RTOL = 1e-12
"""A standard deviation at or below this fraction of ``|mean|`` is rounding noise: zero."""


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _readonly(array: npt.ArrayLike, dtype: Any = np.float64) -> Any:
    """Return a read-only copy of ``array`` (so frozen results are really immutable)."""
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _as_1d_returns(returns: pd.Series | npt.ArrayLike, name: str = "returns") -> FloatArray:
    """Validate a 1-D series of finite returns and return it as float64."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 observations, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or fill them first")
    return arr


def _as_matrix(frame: pd.DataFrame, name: str) -> FloatArray:
    """Validate a T x N frame of finite per-period returns and return its float64 values."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if frame.columns.has_duplicates:
        raise ValueError(f"{name} has duplicate column labels")
    values = frame.to_numpy(dtype=np.float64, copy=True)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or fill them first")
    return values


def sharpe_ratio(returns: npt.ArrayLike) -> FloatArray:
    """Per-period Sharpe ratio of each column: ``mean / std`` (``ddof=1``), not annualised.

    Parameters
    ----------
    returns : array_like
        ``T`` x ``N`` array of per-period returns (a 1-D input is treated as one column).

    Returns
    -------
    numpy.ndarray
        ``N`` Sharpe ratios.  A column with zero standard deviation (a configuration that never
        trades; numerically: ``std <= 1e-12 * |mean|``, or exactly 0) scores ``0.0`` rather
        than ``±inf``/NaN, so that it can still be ranked.
    """
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    mean = arr.mean(axis=0)
    std = arr.std(axis=0, ddof=1)
    out: npt.NDArray[np.float64] = np.zeros_like(mean)
    np.divide(mean, std, out=out, where=std > _ZERO_STD_RTOL * np.abs(mean))
    return out


# --------------------------------------------------------------------------------------------
# 1. Probabilistic and deflated Sharpe ratio
# --------------------------------------------------------------------------------------------


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    r"""Probabilistic Sharpe ratio: P(true SR > ``sr_benchmark``) given the estimate ``sr``.

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", *Journal of Risk*
    15(2), and the PSR expression reused by the deflated Sharpe ratio paper (Bailey & López de
    Prado 2014, "The Deflated Sharpe Ratio", *Journal of Portfolio Management* 40(5)):

    .. math::

        \widehat{PSR}(SR^*) = \Phi\left[\frac{(\widehat{SR} - SR^*)\sqrt{T - 1}}
        {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}\right]

    which accounts for non-normal returns through the skewness :math:`\gamma_3` and the
    (non-excess) kurtosis :math:`\gamma_4`.

    Parameters
    ----------
    sr : float
        Observed **per-period** (non-annualised) Sharpe ratio.
    sr_benchmark : float
        Benchmark Sharpe ratio :math:`SR^*`, same periodicity as ``sr``.
    n_obs : int
        Number of return observations :math:`T` (at least 2).
    skew : float
        Skewness of the returns :math:`\gamma_3`.
    kurtosis : float
        **Pearson kurtosis** of the returns :math:`\gamma_4` (3 for normal returns), *not*
        excess kurtosis.

    Returns
    -------
    float
        Probability in [0, 1].

    Raises
    ------
    ValueError
        If ``n_obs < 2``, any input is non-finite, or the variance term is not positive
        (impossible for a valid pair of moments, for which :math:`\gamma_4 \ge 1 + \gamma_3^2`).
    """
    values = (sr, sr_benchmark, skew, kurtosis)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"inputs must be finite, got sr={sr}, sr_benchmark={sr_benchmark}, "
            f"skew={skew}, kurtosis={kurtosis}"
        )
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    variance_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if variance_term <= 0:
        raise ValueError(
            f"1 - skew*sr + (kurtosis-1)/4*sr^2 = {variance_term} <= 0: "
            "inconsistent moments (is `kurtosis` excess kurtosis? it must be Pearson kurtosis)"
        )
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, var_sr: float) -> float:
    r"""Expected maximum of ``n_trials`` Sharpe ratio estimates whose true value is zero.

    The deflation threshold :math:`SR_0` of Bailey & López de Prado (2014), "The Deflated
    Sharpe Ratio", built on the false-strategy theorem (Bailey, Borwein, López de Prado & Zhu
    2014, "Pseudo-mathematics and financial charlatanism", *Notices of the AMS* 61(5)):

    .. math::

        SR_0 = \sqrt{V[\{\widehat{SR}_n\}]}\left((1-\gamma)\,\Phi^{-1}\!\left[1-\frac1N\right]
        + \gamma\,\Phi^{-1}\!\left[1-\frac{1}{N e}\right]\right)

    with :math:`\gamma` the Euler–Mascheroni constant and :math:`e` Euler's number.

    Parameters
    ----------
    n_trials : int
        Number of (independent) trials :math:`N`; ``1`` means no selection and returns ``0.0``
        (the formula itself would give :math:`-\infty`).
    var_sr : float
        Variance :math:`V` of the Sharpe ratio estimates across trials, in the same
        (per-period) units as the Sharpe ratios.

    Returns
    -------
    float
        :math:`SR_0` in the units of ``sqrt(var_sr)``.
    """
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials}")
    if not math.isfinite(var_sr) or var_sr < 0:
        raise ValueError(f"var_sr must be finite and >= 0, got {var_sr}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    g = EULER_MASCHERONI
    z = (1.0 - g) * stats.norm.ppf(1.0 - 1.0 / n) + g * stats.norm.ppf(1.0 - 1.0 / (n * math.e))
    return float(math.sqrt(var_sr) * z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """Deflated Sharpe ratio of one return series (see :func:`deflated_sharpe`).

    Attributes
    ----------
    sharpe : float
        Observed Sharpe ratio, **per period and not annualised** (``mean / std``, ``ddof=1``).
    annualised : float
        ``sharpe * sqrt(periods_per_year)``.
    sr0 : float
        Deflation threshold :math:`SR_0` = expected maximum per-period Sharpe ratio of
        ``n_trials`` zero-skill trials (:func:`expected_max_sharpe`).
    psr : float
        Probabilistic Sharpe ratio against 0: P(true SR > 0), no selection correction.
    dsr : float
        Deflated Sharpe ratio = PSR against ``sr0``.  The paper's significance rule is
        ``dsr >= 0.95``.
    n_trials : int
        Number of trials used for the deflation.
    n_obs : int
        Number of return observations.
    skew : float
        Skewness of the returns.
    kurtosis : float
        Pearson kurtosis of the returns (3 for normal), not excess.
    var_sr : float
        Cross-trial variance of the per-period Sharpe ratios used for ``sr0``.
    periods_per_year : int
        Annualisation factor used for ``annualised``.
    """

    sharpe: float
    annualised: float
    sr0: float
    psr: float
    dsr: float
    n_trials: int
    n_obs: int
    skew: float
    kurtosis: float
    var_sr: float
    periods_per_year: int


def deflated_sharpe(
    returns: pd.Series | npt.ArrayLike,
    n_trials: int,
    var_sr: float | None = None,
    trials_sr: npt.ArrayLike | None = None,
    *,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> DeflatedSharpe:
    r"""Deflated Sharpe ratio of the selected strategy's returns.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
    Backtest Overfitting and Non-Normality", *Journal of Portfolio Management* 40(5), 94–107:

    .. math::

        \widehat{DSR} = \widehat{PSR}(SR_0) = \Phi\left[\frac{(\widehat{SR} - SR_0)\sqrt{T-1}}
        {\sqrt{1 - \hat\gamma_3\widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}\right]

    with :math:`SR_0` from :func:`expected_max_sharpe`.

    Parameters
    ----------
    returns : pandas.Series or array_like
        Per-period returns of the selected (best) configuration; finite values only.
    n_trials : int
        Number of configurations tried *in total* (count every backtest run, not only the
        ones kept).
    var_sr : float, optional
        Cross-trial variance of the **per-period** Sharpe ratios.  Mutually exclusive with
        ``trials_sr``.
    trials_sr : array_like, optional
        Per-period Sharpe ratios of the trials; ``var_sr`` is then their sample variance
        (``ddof=1``).
    periods_per_year : int, default 252
        Only used for the ``annualised`` field.

    Returns
    -------
    DeflatedSharpe

    Notes
    -----
    If neither ``var_sr`` nor ``trials_sr`` is given, ``var_sr = 1 / (T - 1)``: the sampling
    variance of a Sharpe ratio estimate whose true value is zero (the PSR variance term at
    SR = 0), i.e. the dispersion expected if all trials were independent noise.  Highly
    correlated trials overstate the effective number of trials; pass an effective ``n_trials``
    if you have one.
    """
    arr = _as_1d_returns(returns)
    n_obs = int(arr.size)
    if var_sr is not None and trials_sr is not None:
        raise ValueError("pass at most one of var_sr and trials_sr")
    if trials_sr is not None:
        trials = np.asarray(trials_sr, dtype=np.float64).ravel()
        if trials.size < 2 or not np.all(np.isfinite(trials)):
            raise ValueError("trials_sr needs at least 2 finite Sharpe ratios")
        variance = float(np.var(trials, ddof=1))
    elif var_sr is not None:
        variance = float(var_sr)
    else:
        variance = 1.0 / (n_obs - 1)

    sr = float(sharpe_ratio(arr)[0])
    skew = float(stats.skew(arr, bias=True))
    kurt = float(stats.kurtosis(arr, fisher=False, bias=True))
    if not (math.isfinite(skew) and math.isfinite(kurt)):  # constant series
        skew, kurt = 0.0, 3.0
    sr0 = expected_max_sharpe(n_trials, variance)
    return DeflatedSharpe(
        sharpe=sr,
        annualised=sr * math.sqrt(periods_per_year),
        sr0=sr0,
        psr=probabilistic_sharpe_ratio(sr, 0.0, n_obs, skew, kurt),
        dsr=probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurt),
        n_trials=int(n_trials),
        n_obs=n_obs,
        skew=skew,
        kurtosis=kurt,
        var_sr=variance,
        periods_per_year=int(periods_per_year),
    )


# --------------------------------------------------------------------------------------------
# 2. Probability of backtest overfitting (CSCV)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Probability of backtest overfitting by CSCV (see :func:`pbo_cscv`).

    Arrays have one entry per combination ``c`` (in :func:`itertools.combinations` order of the
    in-sample block sets), are read-only, and use these definitions:

    Attributes
    ----------
    pbo : float
        Fraction of combinations whose logit is ``<= 0`` (the in-sample best ranks at or below
        the out-of-sample median).
    logits : numpy.ndarray
        :math:`\\lambda_c = \\ln(\\bar\\omega_c / (1 - \\bar\\omega_c))`.
    n_combinations : int
        :math:`\\binom{S}{S/2}`.
    n_splits : int
        ``S``, the number of row blocks.
    n_obs_used : int
        Rows used (the oldest ``T mod S`` rows are dropped so that blocks are equal).
    configs : tuple
        Column labels of the configurations, in input order.
    is_best : numpy.ndarray
        Column position of the in-sample best configuration :math:`n^*` per combination.
    oos_rank : numpy.ndarray
        Out-of-sample rank of :math:`n^*` among the ``N`` configurations (1 = worst, N = best;
        ties get average ranks).  This is the rank degradation: the IS rank is always N.
    relative_rank : numpy.ndarray
        :math:`\\bar\\omega_c` = ``oos_rank / (N + 1)``.
    is_performance, oos_performance : numpy.ndarray
        Metric of :math:`n^*` in sample (:math:`R_{n^*}`) and out of sample
        (:math:`\\bar R_{n^*}`).
    degradation_slope, degradation_intercept, degradation_r2 : float
        OLS fit of ``oos_performance`` on ``is_performance`` (NaN if the IS values are all
        equal).  A negative slope is the paper's "performance degradation".
    prob_oos_loss : float
        Fraction of combinations with ``oos_performance < 0``.
    """

    pbo: float
    logits: FloatArray
    n_combinations: int
    n_splits: int
    n_obs_used: int
    configs: tuple[Hashable, ...]
    is_best: IntArray
    oos_rank: FloatArray
    relative_rank: FloatArray
    is_performance: FloatArray
    oos_performance: FloatArray
    degradation_slope: float
    degradation_intercept: float
    degradation_r2: float
    prob_oos_loss: float

    @property
    def mean_oos_relative_rank(self) -> float:
        """Average :math:`\\bar\\omega_c` (0.5 for an information-less selection)."""
        return float(np.mean(self.relative_rank))


def _block_sharpe(values: FloatArray, selected: npt.NDArray[np.bool_]) -> FloatArray:
    """Sharpe ratio of every column over the union of the selected blocks, all combinations.

    ``values`` is ``S*L x N`` (rows in block order), ``selected`` is the ``C x S`` boolean
    block-membership matrix of the combinations.  Uses per-block sums of the column-centred
    data, so it is exact up to rounding and does not suffer from cancellation when the mean is
    large relative to the dispersion.
    """
    n_blocks = selected.shape[1]
    block_len = values.shape[0] // n_blocks
    centre = values.mean(axis=0)
    centred = (values - centre).reshape(n_blocks, block_len, -1)
    sums = centred.sum(axis=1)  # S x N
    sumsq = (centred**2).sum(axis=1)  # S x N
    weights = selected.astype(np.float64)  # C x S
    n = int(selected[0].sum()) * block_len
    sel_sum = weights @ sums  # C x N
    sel_sumsq = weights @ sumsq
    mean_c = sel_sum / n
    var = (sel_sumsq - n * mean_c**2) / (n - 1)
    std = np.sqrt(np.clip(var, 0.0, None))
    mean = mean_c + centre
    out: npt.NDArray[np.float64] = np.zeros_like(mean)
    np.divide(mean, std, out=out, where=std > _ZERO_STD_RTOL * np.abs(mean))
    return out


def pbo_cscv(
    performance: pd.DataFrame,
    n_splits: int = 16,
    metric: Callable[[FloatArray], FloatArray] = sharpe_ratio,
) -> PBOResult:
    r"""Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting",
    *Journal of Computational Finance* 20(4), 39–69 (SSRN 2326253).  The CSCV algorithm:

    1. Split the ``T`` x ``N`` matrix ``M`` row-wise (in time order) into ``S`` disjoint blocks
       of equal length.
    2. For each of the :math:`\binom{S}{S/2}` sets ``J`` of ``S/2`` blocks (the training /
       in-sample set) and its complement :math:`\bar J` (testing / out-of-sample), each kept
       in chronological order:
    3. compute the metric vector :math:`R` on ``J`` and :math:`\bar R` on :math:`\bar J`;
    4. take :math:`n^* = \arg\max_n R_n` and its relative OOS rank
       :math:`\bar\omega_c = \operatorname{rank}(\bar R_{n^*}) / (N+1)` (rank 1 = worst);
    5. the logit :math:`\lambda_c = \ln[\bar\omega_c / (1 - \bar\omega_c)]`.
    6. :math:`PBO = \int_{-\infty}^{0} f(\lambda)\,d\lambda`, estimated as the fraction of
       combinations with :math:`\lambda_c \le 0`.

    Conventions follow the paper and the ``pypbo`` reference implementation (esvhd/pypbo):
    ``N + 1`` denominator, ties ranked by their average (``scipy.stats.rankdata``), first
    maximum taken as :math:`n^*`, ``lambda == 0`` counted as overfit, oldest ``T mod S`` rows
    dropped.

    Parameters
    ----------
    performance : pandas.DataFrame
        ``T`` rows (periods, chronological) x ``N`` configurations of per-period returns.
    n_splits : int, default 16
        ``S``; must be even and leave at least 2 rows per half.  The paper uses 16
        (12,870 combinations).
    metric : callable, default :func:`sharpe_ratio`
        Maps a ``T'`` x ``N`` array to ``N`` scores, higher = better.  The default uses an exact
        vectorised path over blocks; any other callable is evaluated once per half and
        combination.

    Returns
    -------
    PBOResult

    Raises
    ------
    ValueError
        If ``S`` is odd or < 2, there are fewer than 2 configurations or too few rows, the data
        are not finite, or the metric returns non-finite scores.
    """
    values = _as_matrix(performance, "performance")
    n_rows, n_configs = values.shape
    if int(n_splits) != n_splits or n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits}")
    if n_configs < 2:
        raise ValueError(f"need at least 2 configurations (columns), got {n_configs}")
    block_len = n_rows // n_splits
    if block_len < 1 or (n_splits // 2) * block_len < 2:
        raise ValueError(
            f"T={n_rows} rows is too short for n_splits={n_splits}: each half needs >= 2 rows"
        )
    used = n_splits * block_len
    values = values[n_rows - used :]

    selections = np.array(
        list(itertools.combinations(range(n_splits), n_splits // 2)), dtype=np.int64
    )
    in_sample = np.zeros((len(selections), n_splits), dtype=bool)
    in_sample[np.arange(len(selections))[:, None], selections] = True
    complements = np.nonzero(~in_sample)[1].reshape(len(selections), n_splits // 2)

    if metric is sharpe_ratio:
        r_is = _block_sharpe(values, in_sample)
        r_oos = _block_sharpe(values, ~in_sample)
    else:
        blocks = values.reshape(n_splits, block_len, n_configs)
        r_is = np.empty((len(selections), n_configs))
        r_oos = np.empty_like(r_is)
        for c, (sel, comp) in enumerate(zip(selections, complements, strict=True)):
            r_is[c] = np.asarray(metric(blocks[sel].reshape(-1, n_configs)), dtype=np.float64)
            r_oos[c] = np.asarray(metric(blocks[comp].reshape(-1, n_configs)), dtype=np.float64)
    if not (np.all(np.isfinite(r_is)) and np.all(np.isfinite(r_oos))):
        raise ValueError("metric returned non-finite scores; ranks would be undefined")

    is_best = np.argmax(r_is, axis=1).astype(np.int64)
    oos_ranks_all = stats.rankdata(r_oos, method="average", axis=1)
    rows = np.arange(len(selections))
    oos_rank = oos_ranks_all[rows, is_best]
    omega = oos_rank / (n_configs + 1.0)
    logits = np.log(omega / (1.0 - omega))

    is_perf = r_is[rows, is_best]
    oos_perf = r_oos[rows, is_best]
    if np.ptp(is_perf) > 0:
        fit = stats.linregress(is_perf, oos_perf)
        slope, intercept, r2 = float(fit.slope), float(fit.intercept), float(fit.rvalue**2)
    else:
        slope = intercept = r2 = float("nan")

    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=_readonly(logits),
        n_combinations=len(selections),
        n_splits=int(n_splits),
        n_obs_used=int(used),
        configs=tuple(performance.columns),
        is_best=_readonly(is_best, np.int64),
        oos_rank=_readonly(oos_rank),
        relative_rank=_readonly(omega),
        is_performance=_readonly(is_perf),
        oos_performance=_readonly(oos_perf),
        degradation_slope=slope,
        degradation_intercept=intercept,
        degradation_r2=r2,
        prob_oos_loss=float(np.mean(oos_perf < 0.0)),
    )


# --------------------------------------------------------------------------------------------
# 3. Hansen's SPA and White's Reality Check (arch.bootstrap)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SPAResult:
    """Hansen's SPA / White's Reality Check of candidates against a benchmark.

    H0: no candidate has a lower expected loss (higher expected return) than the benchmark.
    Small p-values reject H0, i.e. some candidate genuinely beats the benchmark.

    Attributes
    ----------
    pvalue_lower, pvalue_consistent, pvalue_upper : float
        Hansen's (2005) SPA p-values under the three re-centring rules of
        :class:`arch.bootstrap.SPA` (lower: never re-centre models worse than the benchmark;
        consistent: re-centre only models within the :math:`\\sqrt{2\\log\\log T}` band; upper:
        re-centre every model).  ``lower <= consistent <= upper``.  Floored at
        ``1 / (reps + 1)``: arch reports the share of resamples above the statistic, which is
        exactly 0 when none is, and a p-value of 0 claims more than ``reps`` resamples can show.
    rc_pvalue : float
        White's (2000) Reality Check p-value.  White's bootstrap re-centres every model at its
        sample mean and uses the un-studentised maximum, which is exactly arch's ``upper``
        p-value; arch's ``RealityCheck`` class is a plain alias of ``SPA``.
    better_models : tuple
        Labels of candidates whose mean loss differential exceeds the bootstrap critical value
        at ``alpha`` (``SPA.better_models(alpha, "consistent")``).
    alpha : float
        Level used for ``better_models``.
    mean_edge : pandas.Series
        Mean per-period loss differential ``benchmark_loss - model_loss`` of each candidate
        (= mean excess return over the benchmark when ``kind="returns"``).
    kind : str
        ``"returns"`` (losses were taken as ``-returns``) or ``"losses"``.
    block_size, reps, seed : int, int, int or None
        Bootstrap settings (stationary bootstrap unless ``bootstrap`` said otherwise).
    bootstrap : str
        Bootstrap name passed to arch.
    n_obs : int
        Number of periods.
    """

    pvalue_lower: float
    pvalue_consistent: float
    pvalue_upper: float
    rc_pvalue: float
    better_models: tuple[Hashable, ...]
    alpha: float
    mean_edge: pd.Series
    kind: str
    block_size: int
    reps: int
    seed: int | None
    bootstrap: str
    n_obs: int

    @property
    def pvalues(self) -> pd.Series:
        """The three SPA p-values and the RC p-value as a Series."""
        return pd.Series(
            {
                "lower": self.pvalue_lower,
                "consistent": self.pvalue_consistent,
                "upper": self.pvalue_upper,
                "reality_check": self.rc_pvalue,
            }
        )


def spa_test(
    losses_or_returns: pd.DataFrame | npt.ArrayLike,
    benchmark: pd.Series | npt.ArrayLike | str,
    *,
    kind: Literal["returns", "losses"] = "returns",
    block_size: int | None = None,
    reps: int = 1000,
    seed: int | None = 0,
    bootstrap: Literal["stationary", "circular", "moving block"] = "stationary",
    alpha: float = 0.05,
) -> SPAResult:
    r"""Hansen's SPA test and White's Reality Check of candidates against a benchmark.

    Hansen, P. R. (2005), "A Test for Superior Predictive Ability", *Journal of Business &
    Economic Statistics* 23(4), 365–380; White, H. (2000), "A Reality Check for Data
    Snooping", *Econometrica* 68(5), 1097–1126.  Computed with :class:`arch.bootstrap.SPA`.

    ``arch`` expects **losses** (lower = better).  With ``kind="returns"`` (the default) the
    inputs are per-period returns and are converted with ``loss = -return`` for both the
    benchmark and the candidates, so the loss differential ``d_k = L_0 - L_k`` is the
    candidate's excess return over the benchmark and H0 is "no candidate has a higher expected
    return than the benchmark".  With ``kind="losses"`` the inputs are passed through.

    Parameters
    ----------
    losses_or_returns : pandas.DataFrame or array_like
        ``T`` x ``k`` candidates (columns).  If ``benchmark`` is a column label of this frame,
        that column is the benchmark and the remaining columns are the candidates.
    benchmark : pandas.Series, array_like or str
        ``T`` benchmark returns/losses, or a column label of ``losses_or_returns``.
    kind : {"returns", "losses"}, default "returns"
        How to read the inputs (see above).
    block_size : int, optional
        Mean block length of the bootstrap; ``None`` uses arch's default ``int(sqrt(T))``.
    reps : int, default 1000
        Bootstrap replications.
    seed : int or None, default 0
        Seed for ``numpy.random.default_rng`` inside arch; the same seed gives identical
        p-values.
    bootstrap : {"stationary", "circular", "moving block"}, default "stationary"
        Block bootstrap used by arch.
    alpha : float, default 0.05
        Level for ``better_models``.

    Returns
    -------
    SPAResult

    Notes
    -----
    In the installed arch (8.0) the SPA statistic is the *un-studentised* maximum mean loss
    differential; the ``studentize`` option only affects the variance used for the
    "consistent" re-centring band.  Candidates with much larger variance than the others can
    therefore dominate the maximum (Hansen's motivation for studentising); for a grid of
    strategies with similar volatility this matters little.
    """
    if kind not in ("returns", "losses"):
        raise ValueError(f"kind must be 'returns' or 'losses', got {kind!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if isinstance(losses_or_returns, pd.DataFrame):
        frame = losses_or_returns
    else:
        arr = np.asarray(losses_or_returns, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        frame = pd.DataFrame(arr)
    if isinstance(benchmark, str):
        if benchmark not in frame.columns:
            raise KeyError(f"benchmark column {benchmark!r} not in the frame")
        bench = frame[benchmark].to_numpy(dtype=np.float64)
        frame = frame.drop(columns=[benchmark])
    else:
        bench = np.asarray(benchmark, dtype=np.float64).ravel()
    models = _as_matrix(frame, "losses_or_returns")
    bench = _as_1d_returns(bench, "benchmark")
    if models.shape[1] < 1:
        raise ValueError("need at least one candidate besides the benchmark")
    if bench.size != models.shape[0]:
        raise ValueError(
            f"benchmark has {bench.size} periods but candidates have {models.shape[0]}"
        )
    sign = -1.0 if kind == "returns" else 1.0
    bench_loss = sign * bench
    model_loss = sign * models

    spa = SPA(
        bench_loss,
        model_loss,
        block_size=block_size,
        reps=int(reps),
        bootstrap=bootstrap,
        seed=seed,
    )
    spa.compute()
    # arch's p is #{resampled > observed} / reps, 0 when none is: never below 1 / (reps + 1)
    pvals = np.maximum(spa.pvalues, 1.0 / (int(reps) + 1))
    better_idx = spa.better_models(pvalue=alpha, pvalue_type="consistent")
    labels = list(frame.columns)
    edge = pd.Series((bench_loss[:, None] - model_loss).mean(axis=0), index=frame.columns)
    return SPAResult(
        pvalue_lower=float(pvals["lower"]),
        pvalue_consistent=float(pvals["consistent"]),
        pvalue_upper=float(pvals["upper"]),
        rc_pvalue=float(pvals["upper"]),
        better_models=tuple(labels[int(i)] for i in better_idx),
        alpha=float(alpha),
        mean_edge=edge,
        kind=kind,
        block_size=int(spa.block_size),
        reps=int(reps),
        seed=seed,
        bootstrap=bootstrap,
        n_obs=int(bench.size),
    )


# --------------------------------------------------------------------------------------------
# 4. Parameter-neighbourhood stability
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Stability:
    """Winner vs its immediate grid neighbours (see :func:`neighbourhood_stability`).

    Attributes
    ----------
    winner : dict
        Parameter values of the winner.
    winner_metric : float
        Its metric.
    n_neighbours : int
        Neighbours found on the grid with a finite metric (fewer at grid edges / holes).
    neighbour_mean, neighbour_median, neighbour_min, neighbour_max : float
        Statistics of the neighbours' metric (NaN without neighbours).
    plateau_score : float
        ``neighbour_median / winner_metric`` (NaN when the winner metric is <= 0 or there are
        no neighbours).  1 = flat plateau, ~0 = isolated spike.
    z_score : float
        ``(winner_metric - neighbour_mean) / neighbour_std`` (``ddof=1``; NaN with fewer than
        two neighbours or zero spread) — informative only, not used for the verdict.
    verdict : str
        ``"plateau"`` if ``plateau_score >= threshold``, ``"spike"`` if below,
        ``"undetermined"`` when the score is NaN.
    threshold : float
        Plateau threshold used.
    neighbourhood : str
        ``"moore"`` or ``"axis"``.
    neighbours : pandas.DataFrame
        The neighbouring rows of the input table (original index kept).
    """

    winner: dict[str, Any]
    winner_metric: float
    n_neighbours: int
    neighbour_mean: float
    neighbour_median: float
    neighbour_min: float
    neighbour_max: float
    plateau_score: float
    z_score: float
    verdict: str
    threshold: float
    neighbourhood: str
    neighbours: pd.DataFrame


def _python_scalar(value: Any) -> Any:
    """Turn a NumPy scalar into the equivalent Python scalar (for readable winner dicts)."""
    return value.item() if isinstance(value, np.generic) else value


def _grid_positions(results: pd.DataFrame, params: Sequence[str]) -> IntArray:
    """Integer position of every row's value within each parameter's sorted unique values."""
    positions = np.empty((len(results), len(params)), dtype=np.int64)
    for j, p in enumerate(params):
        column = results[p]
        if column.isna().any():
            raise ValueError(f"parameter column {p!r} has missing values")
        uniques = sorted(column.unique())
        lookup = {v: i for i, v in enumerate(uniques)}
        positions[:, j] = [lookup[v] for v in column]
    return positions


def neighbourhood_stability(
    results: pd.DataFrame,
    params: list[str],
    metric: str,
    winner: Mapping[str, Any] | None = None,
    *,
    threshold: float = DEFAULT_PLATEAU_THRESHOLD,
    neighbourhood: Literal["moore", "axis"] = "moore",
) -> Stability:
    """Is the grid winner on a plateau of good neighbours or an isolated spike?

    Each parameter's grid is the sorted unique values of its column; a configuration's
    position is its index in those lists.  Neighbours of the winner are the configurations
    whose position differs by at most one step in every parameter (``"moore"``, up to
    ``3**p - 1`` neighbours, diagonals included) or by exactly one step in exactly one
    parameter (``"axis"``, up to ``2 p``).  At the grid edges, and where configurations are
    missing or have a NaN metric, there are simply fewer neighbours.

    Verdict: ``plateau_score = median(neighbour metric) / winner metric``; ``"plateau"`` if it
    is ``>= threshold`` (default 0.5: the typical neighbour keeps at least half of the winner's
    performance), ``"spike"`` otherwise, and ``"undetermined"`` if the winner's metric is not
    positive (a ratio to it is meaningless) or it has no neighbours.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per configuration with the ``params`` columns and a ``metric`` column
        (higher = better; negate loss-like metrics first).
    params : list of str
        Parameter columns spanning the grid.
    metric : str
        Metric column.
    winner : mapping, optional
        Parameter values of the configuration to assess; default: the row with the largest
        metric.
    threshold : float, default 0.5
        Plateau threshold on ``plateau_score``.
    neighbourhood : {"moore", "axis"}, default "moore"
        Neighbourhood definition (see above).

    Returns
    -------
    Stability
    """
    if not params:
        raise ValueError("params must name at least one column")
    missing = [c for c in [*params, metric] if c not in results.columns]
    if missing:
        raise KeyError(f"columns not in results: {missing}")
    if neighbourhood not in ("moore", "axis"):
        raise ValueError(f"neighbourhood must be 'moore' or 'axis', got {neighbourhood!r}")
    if results.duplicated(subset=params).any():
        raise ValueError("results has several rows for the same parameter combination")
    values = results[metric].to_numpy(dtype=np.float64)
    positions = _grid_positions(results, params)

    if winner is None:
        if not np.any(np.isfinite(values)):
            raise ValueError(f"metric column {metric!r} has no finite value")
        w = int(np.nanargmax(values))
    else:
        unknown = set(params) - set(winner)
        if unknown:
            raise KeyError(f"winner is missing parameters {sorted(unknown)}")
        mask = np.ones(len(results), dtype=bool)
        for p in params:
            mask &= (results[p] == winner[p]).to_numpy()
        if not mask.any():
            raise ValueError(f"winner {dict(winner)} is not a row of results")
        w = int(np.flatnonzero(mask)[0])

    diff = np.abs(positions - positions[w])
    if neighbourhood == "moore":
        is_nb = (diff <= 1).all(axis=1) & (diff.sum(axis=1) > 0)
    else:
        is_nb = diff.sum(axis=1) == 1
    is_nb &= np.isfinite(values)
    nb_values = values[is_nb]
    win_value = float(values[w])

    n_nb = int(nb_values.size)
    nan = float("nan")
    mean = float(nb_values.mean()) if n_nb else nan
    median = float(np.median(nb_values)) if n_nb else nan
    std = float(nb_values.std(ddof=1)) if n_nb > 1 else nan
    score = median / win_value if n_nb and win_value > 0 else nan
    z = (win_value - mean) / std if n_nb > 1 and std > 0 else nan
    if math.isnan(score):
        verdict = "undetermined"
    else:
        verdict = "plateau" if score >= threshold else "spike"
    return Stability(
        winner={p: _python_scalar(results[p].iloc[w]) for p in params},
        winner_metric=win_value,
        n_neighbours=n_nb,
        neighbour_mean=mean,
        neighbour_median=median,
        neighbour_min=float(nb_values.min()) if n_nb else nan,
        neighbour_max=float(nb_values.max()) if n_nb else nan,
        plateau_score=score,
        z_score=z,
        verdict=verdict,
        threshold=float(threshold),
        neighbourhood=neighbourhood,
        neighbours=results.iloc[np.flatnonzero(is_nb)].copy(),
    )


# --------------------------------------------------------------------------------------------
# 5. Composer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OverfittingReport:
    """Everything the grid notebook prints about the winner (see :func:`overfitting_report`).

    Attributes
    ----------
    best : Hashable
        Column label of the best candidate by per-period Sharpe ratio.
    benchmark : Hashable
        Benchmark column label.
    n_trials : int
        Trials used for the deflation.
    n_obs : int
        Periods in the returns matrix.
    sharpe : pandas.Series
        Per-period (non-annualised) Sharpe ratio of every candidate.
    dsr : DeflatedSharpe
        Deflated Sharpe ratio of ``best``.
    pbo : PBOResult
        CSCV over the candidates.
    spa : SPAResult
        SPA / Reality Check of the candidates against the benchmark.
    stability : Stability or None
        Neighbourhood stability of ``best`` on the parameter grid, if a grid was given.
    """

    best: Hashable
    benchmark: Hashable
    n_trials: int
    n_obs: int
    sharpe: pd.Series
    dsr: DeflatedSharpe
    pbo: PBOResult
    spa: SPAResult
    stability: Stability | None

    def summary(self) -> pd.Series:
        """One labelled value per line, ready to print in a notebook."""
        out: dict[str, Any] = {
            "best config": self.best,
            "benchmark": self.benchmark,
            "periods": self.n_obs,
            "trials (N)": self.n_trials,
            "Sharpe (per period)": self.dsr.sharpe,
            "Sharpe (annualised)": self.dsr.annualised,
            "SR0 (per period)": self.dsr.sr0,
            "PSR vs 0": self.dsr.psr,
            "DSR": self.dsr.dsr,
            "PBO": self.pbo.pbo,
            "PBO combinations": self.pbo.n_combinations,
            "PBO degradation slope": self.pbo.degradation_slope,
            "P(OOS loss)": self.pbo.prob_oos_loss,
            "SPA p (lower)": self.spa.pvalue_lower,
            "SPA p (consistent)": self.spa.pvalue_consistent,
            "SPA p (upper)": self.spa.pvalue_upper,
            "Reality Check p": self.spa.rc_pvalue,
            f"better than benchmark at {self.spa.alpha:g}": ", ".join(
                str(m) for m in self.spa.better_models
            )
            or "none",
        }
        if self.stability is not None:
            out["neighbourhood"] = self.stability.verdict
            out["plateau score"] = self.stability.plateau_score
            out["neighbours"] = self.stability.n_neighbours
        return pd.Series(out, dtype=object, name="overfitting")


def overfitting_report(
    returns_matrix: pd.DataFrame,
    benchmark: str,
    *,
    n_trials: int | None = None,
    n_splits: int = 16,
    spa_reps: int = 1000,
    block_size: int | None = None,
    seed: int | None = 0,
    alpha: float = 0.05,
    periods_per_year: int = PERIODS_PER_YEAR,
    grid: pd.DataFrame | None = None,
    params: list[str] | None = None,
    stability_threshold: float = DEFAULT_PLATEAU_THRESHOLD,
) -> OverfittingReport:
    """Deflated Sharpe, PBO, SPA/RC and (optionally) neighbourhood stability in one call.

    Parameters
    ----------
    returns_matrix : pandas.DataFrame
        ``T`` periods x configurations of per-period returns, plus the ``benchmark`` column.
    benchmark : str
        Column of ``returns_matrix`` holding the benchmark (e.g. buy-and-hold); it is not a
        candidate for "best", PBO or SPA.
    n_trials : int, optional
        Trials for the deflated Sharpe ratio.  Default: the number of columns of
        ``returns_matrix`` (benchmark included, which errs on the conservative side by one).
        Pass a larger number if more configurations were tried than are in the matrix.
    n_splits : int, default 16
        CSCV blocks ``S`` (see :func:`pbo_cscv`).
    spa_reps, block_size, seed, alpha
        Passed to :func:`spa_test`.
    periods_per_year : int, default 252
        Annualisation of the reported Sharpe ratio.
    grid : pandas.DataFrame, optional
        Parameter table indexed by the candidate column labels with the ``params`` columns.
        When given, :func:`neighbourhood_stability` of the best candidate is computed on the
        per-period Sharpe ratios.
    params : list of str, optional
        Parameter columns of ``grid`` (required with ``grid``).
    stability_threshold : float, default 0.5
        Plateau threshold of :func:`neighbourhood_stability`.

    Returns
    -------
    OverfittingReport

    Notes
    -----
    The best candidate is the one with the largest per-period Sharpe ratio; ``var_sr`` of the
    deflation is the sample variance of the candidates' Sharpe ratios (the paper's
    :math:`V[\\{\\widehat{SR}_n\\}]`).
    """
    if benchmark not in returns_matrix.columns:
        raise KeyError(f"benchmark column {benchmark!r} not in returns_matrix")
    _as_matrix(returns_matrix, "returns_matrix")
    candidates = returns_matrix.drop(columns=[benchmark])
    if candidates.shape[1] < 2:
        raise ValueError("need at least 2 candidate columns besides the benchmark")
    sharpe = pd.Series(sharpe_ratio(candidates.to_numpy()), index=candidates.columns)
    best = sharpe.idxmax()
    trials = int(returns_matrix.shape[1]) if n_trials is None else int(n_trials)

    dsr = deflated_sharpe(
        candidates[best].to_numpy(),
        n_trials=trials,
        trials_sr=sharpe.to_numpy(),
        periods_per_year=periods_per_year,
    )
    pbo = pbo_cscv(candidates, n_splits=n_splits)
    spa = spa_test(
        candidates,
        returns_matrix[benchmark].to_numpy(),
        kind="returns",
        block_size=block_size,
        reps=spa_reps,
        seed=seed,
        alpha=alpha,
    )

    stability: Stability | None = None
    if grid is not None:
        if not params:
            raise ValueError("params is required together with grid")
        missing = [c for c in candidates.columns if c not in grid.index]
        if missing:
            raise KeyError(f"grid has no row for candidates {missing}")
        table = grid.loc[list(candidates.columns), list(params)].copy()
        table["__sharpe__"] = sharpe.to_numpy()
        winner = {p: table.at[best, p] for p in params}
        stability = neighbourhood_stability(
            table, list(params), "__sharpe__", winner, threshold=stability_threshold
        )

    return OverfittingReport(
        best=best,
        benchmark=benchmark,
        n_trials=trials,
        n_obs=int(len(returns_matrix)),
        sharpe=sharpe,
        dsr=dsr,
        pbo=pbo,
        spa=spa,
        stability=stability,
    )
