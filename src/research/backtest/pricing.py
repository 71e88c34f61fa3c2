"""Black-Scholes pricing of European options with a continuous dividend yield, and a skew model.

The backtest has no option chains: spreads are priced from the underlying close and an implied
volatility. This module gives the pricing pieces in two layers:

* numba ``@njit(cache=True)`` scalar kernels (``norm_cdf``, ``bs_price_nb``, ``bs_delta_nb``,
  ``skewed_iv_nb``) that other njit code (the backtest kernel) calls directly;
* numpy wrappers (``bs_price``, ``bs_delta``, ``SkewModel.iv``) that broadcast array arguments
  and run the *same* kernels in a compiled loop, so both layers give bit-identical numbers;
  plus ``implied_vol`` (scipy ``brentq``) for tests and users.

Black-Scholes-Merton
--------------------
With spot ``S``, strike ``K``, time to expiry ``T`` (years), risk-free rate ``r``, dividend
yield ``q`` (both continuously compounded) and volatility ``sigma``::

    d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)
    call = S e^{-qT} N(d1) - K e^{-rT} N(d2),   put = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)
    delta_call = e^{-qT} N(d1) in (0, 1),       delta_put = -e^{-qT} N(-d1) in (-1, 0)

``N`` is computed as ``0.5 * erfc(-x / sqrt(2))``, accurate in relative terms far into the left
tail (``N(-10) ~ 7.6e-24``, where ``0.5 * (1 + erf(x / sqrt(2)))`` returns 0).

Degenerate inputs never produce NaN (``S`` and ``K`` must be positive):

* ``T <= 0`` (expired): the intrinsic value ``max(S - K, 0)`` / ``max(K - S, 0)``; delta 1 / 0
  for a call in / out of the money, -1 / 0 for a put, and the limit +-0.5 at ``S == K``.
* ``sigma <= 0`` with ``T > 0``: the discounted intrinsic value of the forward
  ``F = S e^{(r-q)T}``, i.e. ``max(S e^{-qT} - K e^{-rT}, 0)`` for a call (put likewise); delta
  ``e^{-qT}`` / 0 (call), ``-e^{-qT}`` / 0 (put), and the limit +-0.5 e^{-qT} at ``F == K``.

Deltas are Black-Scholes deltas at the given ``sigma`` (sticky strike: the skew is not
differentiated).

Skew
----
Equity-index implied volatility falls with strike (downside skew: puts below spot trade at a
higher IV than at-the-money, calls above spot at a lower one). The model measures a strike in
standard deviations of the at-the-money distribution, ``z = ln(K/S) / (atm_iv * sqrt(T))``, and
uses a quadratic in ``z``::

    iv(K) = atm_iv * clip(1 - slope * z + curvature * z**2, floor_ratio, cap_ratio)

so ``iv(S) = atm_iv`` and ``iv`` always lies within ``[floor_ratio, cap_ratio] * atm_iv``; with
``curvature = 0`` it is non-increasing in ``K``. Measuring moneyness in standard deviations
makes the shape of the smile — and so the risk-neutral skewness it implies — the same at every
volatility level, as Cboe observes of S&P 500 options (variations in its SKEW index have a low
correlation with the VIX). ``T <= 0`` or ``atm_iv <= 0`` returns ``atm_iv``.

Defaults (``research.backtest.smile`` derives and tests them from published facts):

- ``slope = DEFAULT_SKEW_SLOPE``: the model's 30-day risk-neutral skewness, computed from its
  out-of-the-money option prices by Cboe's SKEW method (Bakshi, Kapadia & Madan 2003), gives
  SKEW = 100 - 10 * skewness = 120, inside the 100-150 range Cboe's SKEW white paper (2010)
  calls typical.
- ``curvature = 0``, ``floor_ratio = 0.70`` (the call wing flattens there, about 1.4 standard
  deviations above spot), ``cap_ratio = 2.00``.
- The ATM level comes from the IV index: the VIX is the 30-day variance of the whole strip of
  out-of-the-money options (Cboe VIX white paper), so with a skew it sits above the ATM
  implied volatility. ``DEFAULT_ATM_RATIO`` is the ATM / index ratio at which the model's own
  VIX equals the index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit
from scipy.optimize import brentq

from research._typing import FloatArray, OptionKind

__all__ = [
    "DEFAULT_ATM_RATIO",
    "DEFAULT_SKEW_CAP_RATIO",
    "DEFAULT_SKEW_FLOOR_RATIO",
    "DEFAULT_SKEW_SLOPE",
    "OptionKind",
    "SkewModel",
    "bs_delta",
    "bs_delta_nb",
    "bs_price",
    "bs_price_nb",
    "implied_vol",
    "implied_vols",
    "norm_cdf",
    "skewed_iv_nb",
]

ArrayLike = npt.ArrayLike

DEFAULT_SKEW_SLOPE = 0.273
"""Model SKEW index 120 (``research.backtest.smile.slope_for_skew``; tested)."""
DEFAULT_SKEW_FLOOR_RATIO = 0.70
DEFAULT_SKEW_CAP_RATIO = 2.00
DEFAULT_ATM_RATIO = 0.880
"""ATM implied volatility / IV index at which the model's VIX equals the index
(``research.backtest.smile.atm_ratio_for`` at the default slope; tested)."""

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


# ------------------------------------------------------------------------------------------
# numba scalar kernels
# ------------------------------------------------------------------------------------------


@njit(cache=True)
def norm_cdf(x: float) -> float:
    """Standard normal CDF, ``0.5 * erfc(-x / sqrt(2))`` (accurate in both tails).

    Parameters
    ----------
    x : float
        Argument.

    Returns
    -------
    float
        ``P(Z <= x)`` for a standard normal ``Z``.
    """
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@njit(cache=True)
def bs_price_nb(
    S: float, K: float, T: float, r: float, q: float, sigma: float, is_call: bool
) -> float:
    """Black-Scholes-Merton price of a European option (numba kernel).

    Parameters
    ----------
    S : float
        Spot price (> 0).
    K : float
        Strike (> 0).
    T : float
        Time to expiry in years; ``T <= 0`` gives the intrinsic value.
    r : float
        Continuously compounded risk-free rate.
    q : float
        Continuous dividend yield.
    sigma : float
        Volatility (annualised); ``sigma <= 0`` gives the discounted intrinsic value of the
        forward.
    is_call : bool
        True for a call, False for a put.

    Returns
    -------
    float
        The option price.
    """
    if T <= 0.0:
        if is_call:
            return max(S - K, 0.0)
        return max(K - S, 0.0)
    disc_s = S * math.exp(-q * T)
    disc_k = K * math.exp(-r * T)
    if sigma <= 0.0:
        if is_call:
            return max(disc_s - disc_k, 0.0)
        return max(disc_k - disc_s, 0.0)
    vol_t = sigma * math.sqrt(T)
    d1 = (math.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vol_t
    d2 = d1 - vol_t
    if is_call:
        return disc_s * norm_cdf(d1) - disc_k * norm_cdf(d2)
    return disc_k * norm_cdf(-d2) - disc_s * norm_cdf(-d1)


@njit(cache=True)
def bs_delta_nb(
    S: float, K: float, T: float, r: float, q: float, sigma: float, is_call: bool
) -> float:
    """Black-Scholes-Merton delta ``dV/dS`` of a European option (numba kernel).

    Parameters
    ----------
    S, K, T, r, q, sigma, is_call
        As in ``bs_price_nb``.

    Returns
    -------
    float
        ``e^{-qT} N(d1)`` for a call (in (0, 1)), ``-e^{-qT} N(-d1)`` for a put (in (-1, 0)).
        Expired (``T <= 0``): 1 / 0 (call in / out of the money), -1 / 0 (put), +-0.5 at the
        money. ``sigma <= 0``: ``+-e^{-qT}`` when the forward is in the money, else 0, and
        ``+-0.5 e^{-qT}`` when the forward equals the strike.
    """
    if T <= 0.0:
        if S > K:
            return 1.0 if is_call else 0.0
        if S < K:
            return 0.0 if is_call else -1.0
        return 0.5 if is_call else -0.5
    div = math.exp(-q * T)
    if sigma <= 0.0:
        disc_s = S * div
        disc_k = K * math.exp(-r * T)
        if disc_s > disc_k:
            return div if is_call else 0.0
        if disc_s < disc_k:
            return 0.0 if is_call else -div
        return 0.5 * div if is_call else -0.5 * div
    vol_t = sigma * math.sqrt(T)
    d1 = (math.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vol_t
    if is_call:
        return div * norm_cdf(d1)
    return -div * norm_cdf(-d1)


@njit(cache=True)
def skewed_iv_nb(
    atm_iv: float,
    S: float,
    K: float,
    T: float,
    slope: float,
    floor_ratio: float,
    cap_ratio: float,
    curvature: float = 0.0,
) -> float:
    """Implied volatility at strike ``K`` from the at-the-money IV (numba kernel).

    ``atm_iv * clip(1 - slope * z + curvature * z**2, floor_ratio, cap_ratio)`` with
    ``z = ln(K/S) / (atm_iv * sqrt(T))``; see the module docstring.

    Parameters
    ----------
    atm_iv : float
        At-the-money implied volatility (annualised).
    S : float
        Spot price (> 0).
    K : float
        Strike (> 0).
    T : float
        Time to expiry in years; ``T <= 0`` returns ``atm_iv``.
    slope : float
        Skew slope per standard deviation of moneyness (> 0 for downside skew).
    floor_ratio, cap_ratio : float
        Bounds of ``iv / atm_iv``.
    curvature : float
        Smile term per squared standard deviation.

    Returns
    -------
    float
        The strike's implied volatility.
    """
    if T <= 0.0 or atm_iv <= 0.0:
        return atm_iv
    z = math.log(K / S) / (atm_iv * math.sqrt(T))
    ratio = 1.0 - slope * z + curvature * z * z
    ratio = min(max(ratio, floor_ratio), cap_ratio)
    return atm_iv * ratio


@njit(cache=True)
def _bs_price_loop(
    S: FloatArray,
    K: FloatArray,
    T: FloatArray,
    r: FloatArray,
    q: FloatArray,
    sigma: FloatArray,
    is_call: bool,
) -> FloatArray:
    out = np.empty(S.shape[0])
    for i in range(S.shape[0]):
        out[i] = bs_price_nb(S[i], K[i], T[i], r[i], q[i], sigma[i], is_call)
    return out


@njit(cache=True)
def _bs_delta_loop(
    S: FloatArray,
    K: FloatArray,
    T: FloatArray,
    r: FloatArray,
    q: FloatArray,
    sigma: FloatArray,
    is_call: bool,
) -> FloatArray:
    out = np.empty(S.shape[0])
    for i in range(S.shape[0]):
        out[i] = bs_delta_nb(S[i], K[i], T[i], r[i], q[i], sigma[i], is_call)
    return out


@njit(cache=True)
def _skewed_iv_loop(
    atm_iv: FloatArray,
    S: FloatArray,
    K: FloatArray,
    T: FloatArray,
    slope: float,
    floor_ratio: float,
    cap_ratio: float,
    curvature: float,
) -> FloatArray:
    out = np.empty(atm_iv.shape[0])
    for i in range(atm_iv.shape[0]):
        out[i] = skewed_iv_nb(atm_iv[i], S[i], K[i], T[i], slope, floor_ratio, cap_ratio, curvature)
    return out


# ------------------------------------------------------------------------------------------
# numpy wrappers
# ------------------------------------------------------------------------------------------


def _is_call(kind: str) -> bool:
    if kind == "call":
        return True
    if kind == "put":
        return False
    raise ValueError(f"kind must be 'call' or 'put', got {kind!r}")


def _broadcast(*args: ArrayLike) -> tuple[tuple[int, ...], list[FloatArray]]:
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    shape = arrays[0].shape
    return shape, [np.ascontiguousarray(a).ravel() for a in arrays]


def _check_positive(S: FloatArray, K: FloatArray) -> None:
    if not (np.all(S > 0) and np.all(K > 0)):
        raise ValueError("spot S and strike K must be positive")


def _result(out: FloatArray, shape: tuple[int, ...]) -> FloatArray | float:
    return float(out[0]) if shape == () else out.reshape(shape)


def bs_price(
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    sigma: ArrayLike,
    kind: OptionKind = "call",
    q: ArrayLike = 0.0,
) -> FloatArray | float:
    """Black-Scholes-Merton price of European options (broadcasting numpy wrapper).

    Parameters
    ----------
    S : array_like
        Spot price (> 0).
    K : array_like
        Strike (> 0).
    T : array_like
        Time to expiry in years; ``T <= 0`` gives the intrinsic value.
    r : array_like
        Continuously compounded risk-free rate.
    sigma : array_like
        Volatility (annualised); ``sigma <= 0`` gives the discounted intrinsic value of the
        forward.
    kind : {"call", "put"}
        Option type (one for all elements).
    q : array_like, default 0.0
        Continuous dividend yield.

    Returns
    -------
    numpy.ndarray or float
        Prices with the broadcast shape of the inputs (a float when all inputs are scalars).
        Computed by ``bs_price_nb``, so equal to it bit for bit.

    Raises
    ------
    ValueError
        If ``kind`` is not "call"/"put" or some ``S`` or ``K`` is not positive.

    Examples
    --------
    >>> round(bs_price(42.0, 40.0, 0.5, 0.10, 0.20, "call"), 2)
    4.76
    """
    is_call = _is_call(kind)
    shape, (s, k, t, rr, qq, vol) = _broadcast(S, K, T, r, q, sigma)
    _check_positive(s, k)
    return _result(_bs_price_loop(s, k, t, rr, qq, vol, is_call), shape)


def bs_delta(
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    sigma: ArrayLike,
    kind: OptionKind = "call",
    q: ArrayLike = 0.0,
) -> FloatArray | float:
    """Black-Scholes-Merton delta of European options (broadcasting numpy wrapper).

    Parameters
    ----------
    S, K, T, r, sigma, kind, q
        As in ``bs_price``.

    Returns
    -------
    numpy.ndarray or float
        ``e^{-qT} N(d1)`` for calls, ``-e^{-qT} N(-d1)`` for puts, with the degenerate cases of
        ``bs_delta_nb``; broadcast shape of the inputs (a float when all are scalars).

    Raises
    ------
    ValueError
        If ``kind`` is not "call"/"put" or some ``S`` or ``K`` is not positive.
    """
    is_call = _is_call(kind)
    shape, (s, k, t, rr, qq, vol) = _broadcast(S, K, T, r, q, sigma)
    _check_positive(s, k)
    return _result(_bs_delta_loop(s, k, t, rr, qq, vol, is_call), shape)


def implied_vol(
    price: float,
    S: float,
    K: float,
    T: float,
    r: float,
    kind: OptionKind = "call",
    q: float = 0.0,
    *,
    lower: float = 1e-6,
    upper: float = 5.0,
    xtol: float = 1e-12,
) -> float:
    """Black-Scholes implied volatility of one option price, by Brent's method.

    Parameters
    ----------
    price : float
        Option price.
    S, K, T, r, kind, q
        As in ``bs_price`` (scalars; ``T`` must be positive).
    lower, upper : float
        Volatility bracket searched.
    xtol : float
        Absolute tolerance on the volatility.

    Returns
    -------
    float
        The ``sigma`` with ``bs_price(S, K, T, r, sigma, kind, q) == price``.

    Raises
    ------
    ValueError
        If ``T <= 0`` or the price lies outside the prices at ``lower`` and ``upper`` (below
        the no-arbitrage bound or implying a volatility beyond ``upper``).
    """
    if not T > 0:
        raise ValueError(f"implied volatility needs T > 0, got {T}")
    is_call = _is_call(kind)
    if not (S > 0 and K > 0):
        raise ValueError("spot S and strike K must be positive")

    def excess(sigma: float) -> float:
        return float(bs_price_nb(S, K, T, r, q, sigma, is_call)) - price

    lo, hi = excess(lower), excess(upper)
    if lo > 0 or hi < 0:
        raise ValueError(
            f"price {price} is outside [{price + lo:.6g}, {price + hi:.6g}], the prices at "
            f"sigma in [{lower}, {upper}]"
        )
    if lo == 0:
        return lower
    if hi == 0:
        return upper
    return float(brentq(excess, lower, upper, xtol=xtol, rtol=4 * np.finfo(float).eps))


@njit(cache=True)
def _implied_vol_loop(  # type: ignore[no-untyped-def]
    price, s, k, t, r, q, call, low, high, iterations
):
    out = np.empty(price.shape[0])
    for i in range(price.shape[0]):
        lo, hi = low, high
        c = call[i]
        if not (
            bs_price_nb(s[i], k[i], t[i], r, q, lo, c)
            <= price[i]
            <= bs_price_nb(s[i], k[i], t[i], r, q, hi, c)
        ):
            out[i] = np.nan
            continue
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            if bs_price_nb(s[i], k[i], t[i], r, q, mid, c) > price[i]:
                hi = mid
            else:
                lo = mid
        out[i] = 0.5 * (lo + hi)
    return out


def implied_vols(
    price: npt.ArrayLike,
    s: npt.ArrayLike,
    k: npt.ArrayLike,
    t: npt.ArrayLike,
    r: float,
    q: float,
    call: npt.ArrayLike,
    *,
    low: float = 1e-4,
    high: float = 5.0,
    iterations: int = 60,
) -> FloatArray:
    """Black–Scholes–Merton implied volatilities by bisection, element by element in a
    compiled loop (NaN where the price is outside the prices at ``low`` and ``high``);
    the inputs broadcast together."""
    p, s_, k_, t_, c_ = np.broadcast_arrays(
        np.asarray(price, float),
        np.asarray(s, float),
        np.asarray(k, float),
        np.asarray(t, float),
        np.asarray(call, bool),
    )
    shape = p.shape
    out: FloatArray = _implied_vol_loop(
        np.ascontiguousarray(p.ravel()),
        np.ascontiguousarray(s_.ravel()),
        np.ascontiguousarray(k_.ravel()),
        np.ascontiguousarray(t_.ravel()),
        float(r),
        float(q),
        np.ascontiguousarray(c_.ravel()),
        float(low),
        float(high),
        int(iterations),
    ).reshape(shape)
    return out


@dataclass(frozen=True)
class SkewModel:
    """Smile ``iv(K) = atm_iv * clip(1 - slope * z + curvature * z**2, floor, cap)``,
    ``z = ln(K/S) / (atm_iv * sqrt(T))`` (module docstring).

    Parameters
    ----------
    slope : float
        Skew slope per standard deviation of moneyness; 0 gives a flat smile.
    curvature : float
        Smile term per squared standard deviation (>= 0).
    floor_ratio : float
        Lowest ``iv / atm_iv`` (far out-of-the-money calls).
    cap_ratio : float
        Highest ``iv / atm_iv`` (far out-of-the-money puts).

    """

    slope: float = DEFAULT_SKEW_SLOPE
    floor_ratio: float = DEFAULT_SKEW_FLOOR_RATIO
    cap_ratio: float = DEFAULT_SKEW_CAP_RATIO
    curvature: float = 0.0

    def __post_init__(self) -> None:
        if self.slope < 0:
            raise ValueError(f"slope must be >= 0 (downside skew), got {self.slope}")
        if self.curvature < 0:
            raise ValueError(f"curvature must be >= 0, got {self.curvature}")
        if not 0 < self.floor_ratio <= 1 <= self.cap_ratio:
            raise ValueError(
                "need 0 < floor_ratio <= 1 <= cap_ratio, got "
                f"floor_ratio={self.floor_ratio}, cap_ratio={self.cap_ratio}"
            )

    def iv(self, atm_iv: ArrayLike, S: ArrayLike, K: ArrayLike, T: ArrayLike) -> FloatArray | float:
        """Implied volatility at strike ``K`` (broadcasting wrapper of ``skewed_iv_nb``).

        Parameters
        ----------
        atm_iv : array_like
            At-the-money implied volatility (annualised).
        S : array_like
            Spot price (> 0).
        K : array_like
            Strike (> 0).
        T : array_like
            Time to expiry in years; ``T <= 0`` returns ``atm_iv``.

        Returns
        -------
        numpy.ndarray or float
            Broadcast shape of the inputs (a float when all are scalars).
        """
        shape, (a, s, k, t) = _broadcast(atm_iv, S, K, T)
        _check_positive(s, k)
        out = _skewed_iv_loop(
            a, s, k, t, self.slope, self.floor_ratio, self.cap_ratio, self.curvature
        )
        return _result(out, shape)
