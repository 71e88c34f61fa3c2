"""Tests for research.backtest.pricing: Black-Scholes kernels and wrappers, implied vol, skew."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from research.backtest.pricing import (
    DEFAULT_SKEW_CAP_RATIO,
    DEFAULT_SKEW_FLOOR_RATIO,
    DEFAULT_SKEW_SLOPE,
    SkewModel,
    bs_delta,
    bs_delta_nb,
    bs_price,
    bs_price_nb,
    implied_vol,
    norm_cdf,
    skewed_iv_nb,
)

T30 = 30.0 / 365.0


def peer_price(
    S: float, K: float, T: float, r: float, sigma: float, kind: str, q: float = 0.0
) -> float:
    """Independent Black-Scholes-Merton price with scipy.stats.norm (T > 0, sigma > 0)."""
    d1 = (np.log(S / K) + (r - q + sigma**2 / 2) * T) / (sigma * np.sqrt(T))
    d2 = d1 - sigma * np.sqrt(T)
    if kind == "call":
        return float(S * np.exp(-q * T) * norm.cdf(d1) - K * np.exp(-r * T) * norm.cdf(d2))
    return float(K * np.exp(-r * T) * norm.cdf(-d2) - S * np.exp(-q * T) * norm.cdf(-d1))


def peer_delta(
    S: float, K: float, T: float, r: float, sigma: float, kind: str, q: float = 0.0
) -> float:
    d1 = (np.log(S / K) + (r - q + sigma**2 / 2) * T) / (sigma * np.sqrt(T))
    if kind == "call":
        return float(np.exp(-q * T) * norm.cdf(d1))
    return float(-np.exp(-q * T) * norm.cdf(-d1))


# A grid of ordinary inputs: strikes deep ITM to deep OTM, a week to two years, with/without q.
GRID = list(
    itertools.product(
        [100.0],  # S
        [60.0, 80.0, 95.0, 100.0, 105.0, 120.0, 150.0],  # K
        [7 / 365, T30, 0.25, 1.0, 2.0],  # T
        [0.0, 0.03, 0.10],  # r
        [0.05, 0.15, 0.30, 0.80],  # sigma
        [0.0, 0.02],  # q
    )
)


def _grid_arrays() -> tuple[np.ndarray, ...]:
    arr = np.array(GRID)
    return tuple(arr[:, i] for i in range(arr.shape[1]))


# --------------------------------------------------------------------------------------------
# Normal CDF
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [-37.0, -20.0, -10.0, -5.0, -1.0, 0.0, 0.5, 3.0, 8.0])
def test_norm_cdf_matches_scipy_including_tails(x: float) -> None:
    assert norm_cdf(x) == pytest.approx(norm.cdf(x), rel=1e-12, abs=0)


def test_norm_cdf_far_left_tail_is_not_zero() -> None:
    # 0.5 * (1 + erf(x / sqrt(2))) underflows to 0 here
    assert norm_cdf(-10.0) > 7e-24


# --------------------------------------------------------------------------------------------
# Textbook values (Hull, Options, Futures and Other Derivatives)
# --------------------------------------------------------------------------------------------


def test_hull_example_call_and_put() -> None:
    # Hull: S=42, K=40, r=10%, sigma=20%, T=0.5 -> c = 4.76, p = 0.81
    call = bs_price(42.0, 40.0, 0.5, 0.10, 0.20, "call")
    put = bs_price(42.0, 40.0, 0.5, 0.10, 0.20, "put")
    assert round(call, 2) == 4.76
    assert round(put, 2) == 0.81


def test_hull_delta_example() -> None:
    # Hull (delta hedging example): S=49, K=50, r=5%, sigma=20%, T=20 weeks -> delta 0.522,
    # Black-Scholes price $2.40 per option
    T = 20 / 52
    assert round(bs_delta(49.0, 50.0, T, 0.05, 0.20, "call"), 3) == 0.522
    assert round(bs_price(49.0, 50.0, T, 0.05, 0.20, "call"), 2) == 2.40


def test_hull_index_option_with_dividend_yield() -> None:
    # Hull (European index call): S=930, K=900, r=8%, q=3%, sigma=20%, T=2 months -> c = 51.83
    S, K, T, r, q, sigma = 930.0, 900.0, 2 / 12, 0.08, 0.03, 0.20
    assert round(bs_price(S, K, T, r, sigma, "call", q=q), 2) == 51.83
    # d1 = 0.5444, call delta = e^{-qT} N(d1)
    d1 = (math.log(S / K) + (r - q + sigma**2 / 2) * T) / (sigma * math.sqrt(T))
    assert d1 == pytest.approx(0.5444, abs=1e-4)
    delta = bs_delta(S, K, T, r, sigma, "call", q=q)
    assert delta == pytest.approx(math.exp(-q * T) * norm.cdf(d1), abs=1e-14)
    assert round(delta, 4) == 0.7034
    # delta parity with a dividend yield: delta_call - delta_put = e^{-qT}
    put_delta = bs_delta(S, K, T, r, sigma, "put", q=q)
    assert delta - put_delta == pytest.approx(math.exp(-q * T), abs=1e-15)


# --------------------------------------------------------------------------------------------
# Identities over a grid
# --------------------------------------------------------------------------------------------


def test_put_call_parity_on_grid() -> None:
    S, K, T, r, sigma, q = _grid_arrays()
    call = bs_price(S, K, T, r, sigma, "call", q=q)
    put = bs_price(S, K, T, r, sigma, "put", q=q)
    np.testing.assert_allclose(
        call - put, S * np.exp(-q * T) - K * np.exp(-r * T), rtol=0, atol=1e-10
    )


def test_delta_parity_and_range_on_grid() -> None:
    S, K, T, r, sigma, q = _grid_arrays()
    dc = np.asarray(bs_delta(S, K, T, r, sigma, "call", q=q))
    dp = np.asarray(bs_delta(S, K, T, r, sigma, "put", q=q))
    np.testing.assert_allclose(dc - dp, np.exp(-q * T), rtol=0, atol=1e-14)
    assert np.all((dc >= 0) & (dc <= 1)) and np.all((dp >= -1) & (dp <= 0))


@pytest.mark.parametrize("kind", ["call", "put"])
def test_delta_matches_central_finite_difference(kind: str) -> None:
    S, K, T, r, sigma, q = _grid_arrays()
    h = 1e-3  # S = 100
    fd = (
        np.asarray(bs_price(S + h, K, T, r, sigma, kind, q=q))
        - np.asarray(bs_price(S - h, K, T, r, sigma, kind, q=q))
    ) / (2 * h)
    np.testing.assert_allclose(bs_delta(S, K, T, r, sigma, kind, q=q), fd, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["call", "put"])
def test_agrees_with_scipy_norm_peer_on_grid(kind: str) -> None:
    S, K, T, r, sigma, q = _grid_arrays()
    price = np.asarray(bs_price(S, K, T, r, sigma, kind, q=q))
    delta = np.asarray(bs_delta(S, K, T, r, sigma, kind, q=q))
    for i, (s, k, t, rr, vol, qq) in enumerate(GRID):
        assert price[i] == pytest.approx(peer_price(s, k, t, rr, vol, kind, qq), rel=0, abs=1e-12)
        assert delta[i] == pytest.approx(peer_delta(s, k, t, rr, vol, kind, qq), rel=0, abs=1e-12)


@pytest.mark.parametrize("kind", ["call", "put"])
def test_numba_kernels_equal_numpy_wrappers_exactly(kind: str) -> None:
    S, K, T, r, sigma, q = _grid_arrays()
    # add degenerate points (expired, zero vol)
    S = np.concatenate([S, [100.0, 100.0, 100.0, 100.0, 100.0]])
    K = np.concatenate([K, [90.0, 100.0, 110.0, 90.0, 110.0]])
    T = np.concatenate([T, [0.0, 0.0, -1.0, 0.5, 0.5]])
    r = np.concatenate([r, [0.05] * 5])
    sigma = np.concatenate([sigma, [0.2, 0.2, 0.2, 0.0, 0.0]])
    q = np.concatenate([q, [0.01] * 5])
    is_call = kind == "call"
    price = np.asarray(bs_price(S, K, T, r, sigma, kind, q=q))
    delta = np.asarray(bs_delta(S, K, T, r, sigma, kind, q=q))
    for i in range(len(S)):
        args = (S[i], K[i], T[i], r[i], q[i], sigma[i], is_call)
        assert price[i] == bs_price_nb(*args)
        assert delta[i] == bs_delta_nb(*args)
    model = SkewModel()
    iv = np.asarray(model.iv(0.2, S, K, T))
    for i in range(len(S)):
        expected = skewed_iv_nb(
            0.2, S[i], K[i], T[i], model.slope, model.floor_ratio, model.cap_ratio, 0.0
        )
        assert iv[i] == expected


def test_wrappers_broadcast_and_return_float_for_scalars() -> None:
    out = bs_price(100.0, np.array([[90.0], [100.0], [110.0]]), np.array([0.1, 0.5]), 0.02, 0.2)
    assert isinstance(out, np.ndarray) and out.shape == (3, 2)
    assert out[1, 1] == bs_price(100.0, 100.0, 0.5, 0.02, 0.2)
    assert isinstance(bs_price(100.0, 100.0, 0.5, 0.02, 0.2), float)
    assert isinstance(bs_delta(100.0, 100.0, 0.5, 0.02, 0.2, "put"), float)


def test_wrappers_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="kind"):
        bs_price(100.0, 100.0, 0.5, 0.0, 0.2, "straddle")
    with pytest.raises(ValueError, match="positive"):
        bs_delta(100.0, 0.0, 0.5, 0.0, 0.2)


# --------------------------------------------------------------------------------------------
# Degenerate inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [0.0, -0.1])
def test_expired_options_are_worth_intrinsic(T: float) -> None:
    K = np.array([90.0, 100.0, 110.0])
    np.testing.assert_array_equal(bs_price(100.0, K, T, 0.05, 0.2, "call", q=0.02), [10, 0, 0])
    np.testing.assert_array_equal(bs_price(100.0, K, T, 0.05, 0.2, "put", q=0.02), [0, 0, 10])
    np.testing.assert_array_equal(bs_delta(100.0, K, T, 0.05, 0.2, "call"), [1, 0.5, 0])
    np.testing.assert_array_equal(bs_delta(100.0, K, T, 0.05, 0.2, "put"), [0, -0.5, -1])


@pytest.mark.parametrize("sigma", [0.0, -0.1])
def test_zero_vol_gives_discounted_forward_intrinsic(sigma: float) -> None:
    S, T, r, q = 100.0, 0.5, 0.05, 0.01
    K = np.array([90.0, 110.0, S * math.exp((r - q) * T)])  # ITM, OTM, at the forward
    fwd_call = S * math.exp(-q * T) - K * math.exp(-r * T)
    call = np.asarray(bs_price(S, K, T, r, sigma, "call", q=q))
    put = np.asarray(bs_price(S, K, T, r, sigma, "put", q=q))
    np.testing.assert_allclose(call, np.maximum(fwd_call, 0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(put, np.maximum(-fwd_call, 0), rtol=0, atol=1e-12)
    dc = np.asarray(bs_delta(S, K[:2], T, r, sigma, "call", q=q))
    dp = np.asarray(bs_delta(S, K[:2], T, r, sigma, "put", q=q))
    np.testing.assert_array_equal(dc, [math.exp(-q * T), 0.0])
    np.testing.assert_array_equal(dp, [0.0, -math.exp(-q * T)])
    assert not np.isnan(bs_delta(S, K, T, r, sigma, "call", q=q)).any()


def test_small_vol_and_time_converge_to_degenerate_limits() -> None:
    # continuity: a tiny sigma is close to the sigma = 0 value
    assert bs_price(100.0, 95.0, 0.5, 0.03, 1e-9, "call") == pytest.approx(
        bs_price(100.0, 95.0, 0.5, 0.03, 0.0, "call"), abs=1e-12
    )
    assert bs_price(100.0, 95.0, 1e-12, 0.03, 0.2, "put") == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Implied volatility
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize("sigma", [0.08, 0.2, 0.65])
@pytest.mark.parametrize("K", [85.0, 100.0, 112.0])
def test_implied_vol_round_trip(kind: str, sigma: float, K: float) -> None:
    price = bs_price(100.0, K, 0.25, 0.03, sigma, kind, q=0.015)
    assert isinstance(price, float)
    assert implied_vol(price, 100.0, K, 0.25, 0.03, kind, q=0.015) == pytest.approx(sigma, abs=1e-9)


def test_implied_vol_hull_price() -> None:
    assert implied_vol(4.7594, 42.0, 40.0, 0.5, 0.10, "call") == pytest.approx(0.2, abs=1e-4)


def test_implied_vol_rejects_prices_outside_bounds() -> None:
    with pytest.raises(ValueError, match="outside"):
        implied_vol(1.0, 100.0, 50.0, 0.5, 0.0, "call")  # below intrinsic
    with pytest.raises(ValueError, match="T > 0"):
        implied_vol(1.0, 100.0, 100.0, 0.0, 0.0, "call")


# --------------------------------------------------------------------------------------------
# Skew
# --------------------------------------------------------------------------------------------


def test_skew_defaults() -> None:
    model = SkewModel()
    assert (model.slope, model.floor_ratio, model.cap_ratio) == (
        DEFAULT_SKEW_SLOPE,
        DEFAULT_SKEW_FLOOR_RATIO,
        DEFAULT_SKEW_CAP_RATIO,
    )


@pytest.mark.parametrize("moneyness", [0.80, 0.90, 0.95, 1.00, 1.05, 1.10])
def test_skew_is_linear_in_standard_deviations_of_moneyness(moneyness: float) -> None:
    z = math.log(moneyness) / (0.2 * math.sqrt(T30))
    want = 0.2 * min(max(1 - DEFAULT_SKEW_SLOPE * z, 0.7), 2.0)
    assert SkewModel().iv(0.2, 100.0, 100.0 * moneyness, T30) == pytest.approx(want, rel=1e-14)


def test_skew_shape_is_the_same_at_every_volatility_level() -> None:
    """In standard deviations of moneyness the smile scales with the ATM level: the same z
    gives the same ratio to ATM at 10% and 40% vol."""
    model = SkewModel(curvature=0.03)
    for z in (-2.0, -1.0, 0.5, 1.2):
        ratios = [
            model.iv(atm, 100.0, 100.0 * math.exp(z * atm * math.sqrt(T30)), T30) / atm
            for atm in (0.1, 0.25, 0.4)
        ]
        assert max(ratios) - min(ratios) < 1e-12


def test_skew_equals_atm_at_spot_and_at_expiry() -> None:
    model = SkewModel()
    for T in [7 / 365, T30, 1.0]:
        assert model.iv(0.17, 250.0, 250.0, T) == 0.17
    assert model.iv(0.17, 250.0, 200.0, 0.0) == 0.17


def test_skew_is_decreasing_in_strike_and_bounded() -> None:
    model = SkewModel()
    K = np.linspace(50.0, 160.0, 2001)
    for T in [2 / 365, T30, 0.5, 2.0]:
        iv = np.asarray(model.iv(0.2, 100.0, K, T))
        assert np.all(np.diff(iv) <= 0)
        assert np.all(iv >= 0.2 * model.floor_ratio - 1e-15)
        assert np.all(iv <= 0.2 * model.cap_ratio + 1e-15)
        # strictly decreasing where not clipped; calls above spot below ATM, puts above
        inner = (iv > 0.2 * model.floor_ratio) & (iv < 0.2 * model.cap_ratio)
        assert np.all(np.diff(iv)[inner[1:] & inner[:-1]] < 0)
        assert np.all(iv[K > 100.0] < 0.2) and np.all(iv[K < 100.0] > 0.2)
    # short expiries hit the floor/cap quickly
    assert model.iv(0.2, 100.0, 130.0, 1 / 365) == pytest.approx(0.2 * model.floor_ratio)
    assert model.iv(0.2, 100.0, 60.0, 1 / 365) == pytest.approx(0.2 * model.cap_ratio)


def test_skew_custom_parameters_and_validation() -> None:
    flat = SkewModel(slope=0.0)
    assert flat.iv(0.3, 100.0, 80.0, T30) == 0.3
    model = SkewModel(slope=0.3, floor_ratio=0.9, cap_ratio=1.2)
    z = math.log(1.02) / (0.25 * math.sqrt(T30))
    assert model.iv(0.25, 100.0, 102.0, T30) == pytest.approx(0.25 * (1 - 0.3 * z), rel=1e-14)
    smile = SkewModel(slope=0.3, curvature=0.05)
    want = 0.25 * (1 - 0.3 * z + 0.05 * z * z)
    assert smile.iv(0.25, 100.0, 102.0, T30) == pytest.approx(want, rel=1e-14)
    assert model.iv(0.25, 100.0, 110.0, T30) == pytest.approx(0.25 * 0.9)
    assert model.iv(0.25, 100.0, 90.0, T30) == pytest.approx(0.25 * 1.2)
    with pytest.raises(ValueError):
        SkewModel(slope=-0.1)
    with pytest.raises(ValueError):
        SkewModel(curvature=-0.1)
    with pytest.raises(ValueError):
        SkewModel(floor_ratio=1.1)
    with pytest.raises(ValueError):
        SkewModel(cap_ratio=0.9)
