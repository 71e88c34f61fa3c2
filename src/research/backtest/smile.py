"""What a smile implies about the 30-day distribution, by Cboe's own index methods: the model's
VIX and SKEW, from which the pricing defaults are set.

- **VIX** (Cboe, *VIX White Paper*): the 30-day risk-neutral variance is replicated by a strip of
  out-of-the-money options, ``sigma^2 = (2/T) e^{rT} sum Q(K)/K^2 dK - (1/T)(F/K0 - 1)^2``; the
  index is ``100 sigma``. A downside skew puts more value in the put wing, so the VIX sits above
  the at-the-money implied volatility.
- **SKEW** (Cboe, *The CBOE Skew Index*, 2010): ``SKEW = 100 - 10 S`` where ``S`` is the
  30-day risk-neutral skewness of log returns, from the same strip by Bakshi, Kapadia & Madan
  (2003, *Review of Financial Studies* 16(1)): with ``V, W, X`` the prices of the quadratic,
  cubic and quartic log contracts, ``mu = e^{rT} - 1 - e^{rT}(V/2 + W/6 + X/24)`` and
  ``S = (e^{rT} W - 3 mu e^{rT} V + 2 mu^3) / (e^{rT} V - mu^2)^{3/2}``. Cboe describes SKEW as
  "typically ranging from 100 to 150".

``model_vix_skew`` integrates the model smile's Black–Scholes prices numerically on a fine strike
grid (integrals converge to the 4th significant digit; the tests check a flat smile gives VIX =
ATM and SKEW close to the lognormal 100).

The defaults in ``research.backtest.pricing`` come from here: ``DEFAULT_SKEW_SLOPE`` gives a
model SKEW of ``SKEW_TARGET`` (120, inside Cboe's typical range); ``DEFAULT_ATM_RATIO`` is ATM /
VIX at which the model's VIX equals the index. Both are level-free because the smile is
written in standard deviations of moneyness.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from research.backtest.pricing import SkewModel, bs_price

__all__ = ["SKEW_TARGET", "atm_ratio_for", "model_vix_skew", "slope_for_skew"]

SKEW_TARGET = 120.0
"""The model's SKEW at the default slope (Cboe: SKEW typically ranges from 100 to 150)."""
HORIZON = 30 / 365


def model_vix_skew(
    skew: SkewModel, atm_iv: float, *, T: float = HORIZON, r: float = 0.0, q: float = 0.0
) -> tuple[float, float]:
    """The model smile's VIX (annualised, e.g. 0.165) and risk-neutral skewness of ``T``-year
    log returns, by Cboe's VIX and SKEW methods (module docstring).

    Returns
    -------
    tuple
        ``(vix, skewness)``; Cboe's SKEW index is ``100 - 10 * skewness``.
    """
    s = 100.0
    width = 12 * atm_iv * math.sqrt(T)
    k = s * np.exp(np.linspace(-width, width * 0.75, 60001))
    iv = np.asarray(skew.iv(atm_iv, s, k, T))
    call = np.asarray(bs_price(s, k, T, r, iv, "call", q))
    put = np.asarray(bs_price(s, k, T, r, iv, "put", q))
    fwd = s * math.exp((r - q) * T)
    otm = np.where(k >= fwd, call, put)
    dk = np.gradient(k)
    e = math.exp(r * T)
    var = 2 / T * e * np.sum(otm / k**2 * dk)
    lk = np.log(k / s)
    up = k > s
    v = np.sum(np.where(up, 2 * (1 - lk) * call, 2 * (1 - lk) * put) / k**2 * dk)
    w = np.sum(np.where(up, (6 * lk - 3 * lk**2) * call, (6 * lk - 3 * lk**2) * put) / k**2 * dk)
    x = np.sum(
        np.where(up, (12 * lk**2 - 4 * lk**3) * call, (12 * lk**2 - 4 * lk**3) * put) / k**2 * dk
    )
    mu = e - 1 - e * v / 2 - e * w / 6 - e * x / 24
    skewness = (e * w - 3 * mu * e * v + 2 * mu**3) / (e * v - mu**2) ** 1.5
    return float(math.sqrt(var)), float(skewness)


def slope_for_skew(
    target: float = SKEW_TARGET, *, atm_iv: float = 0.15, floor: float = 0.7, cap: float = 2.0
) -> float:
    """The skew slope at which the model's SKEW index equals ``target``."""

    def gap(slope: float) -> float:
        model = SkewModel(slope=slope, floor_ratio=floor, cap_ratio=cap)
        return 100 - 10 * model_vix_skew(model, atm_iv)[1] - target

    # the model SKEW rises with the slope up to about 0.45, where the floor and cap bind
    return float(brentq(gap, 0.0, 0.45, xtol=1e-6))


def atm_ratio_for(skew: SkewModel, *, atm_iv: float = 0.15) -> float:
    """ATM implied volatility / the model's VIX (so ``atm = ratio * index`` matches the index)."""
    return atm_iv / model_vix_skew(skew, atm_iv)[0]
