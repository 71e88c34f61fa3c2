"""Calibrating the pricing model's smile to quotes: recovery of a known smile, the spread-mid
ratios before and after, the parameter file and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.backtest.calibrate import SmileFit, calibrate, implied_vols, load_smile, spread_ratios
from research.backtest.pricing import (
    DEFAULT_ATM_RATIO,
    DEFAULT_SKEW_SLOPE,
    SkewModel,
    bs_price,
    implied_vol,
)
from research.backtest.smile import atm_ratio_for
from research.backtest.spreads import BacktestConfig, ConfigError
from research.backtest.synthetic_chains import TrueSmile, synthetic_chains
from research.data import market
from research.data.contracts import validate
from research.testing.cli import run_cli

TRUE = TrueSmile(atm_ratio=0.86, slope=0.38, curvature=0.04)


@pytest.fixture(scope="module")
def vix() -> pd.DataFrame:
    return market.load_iv_index()


@pytest.fixture(scope="module")
def chain(vix: pd.DataFrame) -> pd.DataFrame:
    bars = market.load_bars(symbols=["SPX"])
    raw = synthetic_chains(bars, vix, start="2016-02-01", end="2016-03-31", smile=TRUE)
    return validate("option_chains", raw)


def test_implied_vols_agree_with_scipy() -> None:
    rng = np.random.default_rng(1)
    s, k = 100.0, rng.uniform(80, 120, 40)
    t, sigma = rng.uniform(0.02, 1.0, 40), rng.uniform(0.08, 0.9, 40)
    call = rng.random(40) < 0.5
    price = np.where(
        call,
        np.asarray(bs_price(s, k, t, 0.02, sigma, "call", 0.01)),
        np.asarray(bs_price(s, k, t, 0.02, sigma, "put", 0.01)),
    )
    got = implied_vols(price, s, k, t, 0.02, 0.01, call)
    for i in range(40):
        want = implied_vol(price[i], s, k[i], t[i], 0.02, "call" if call[i] else "put", q=0.01)
        assert got[i] == pytest.approx(want, abs=1e-9)
    # a price below intrinsic has no implied volatility
    assert np.isnan(implied_vols(np.array([0.0]), 100.0, 80.0, 0.5, 0.0, 0.0, np.array([True])))[0]


def test_recovers_a_known_smile_from_its_iv_column(chain: pd.DataFrame, vix: pd.DataFrame) -> None:
    fit = calibrate(chain, vix)
    assert fit.atm_ratio == pytest.approx(TRUE.atm_ratio, abs=1e-6)
    assert fit.atm_intercept == pytest.approx(0.0, abs=1e-6)
    assert fit.slope == pytest.approx(TRUE.slope, abs=1e-6)
    assert fit.curvature == pytest.approx(TRUE.curvature, abs=1e-6)
    assert fit.iv_rmse_after < 1e-6 < fit.iv_rmse_before
    # the default model is off on the strategy's spreads; the fitted one is not
    assert abs(fit.ratio_before - 1) > 0.05
    assert fit.ratio_after == pytest.approx(1.0, abs=0.005)
    assert fit.spread_days == chain["quote_date"].nunique()


def test_recovers_it_from_bid_ask_quotes_alone(chain: pd.DataFrame, vix: pd.DataFrame) -> None:
    fit = calibrate(chain.drop(columns=["iv", "delta"]), vix)
    # IVs implied from mids of quotes rounded to cents: close, not exact
    assert fit.slope == pytest.approx(TRUE.slope, abs=0.01)
    assert fit.atm_ratio + fit.atm_intercept / 0.15 == pytest.approx(TRUE.atm_ratio, abs=0.01)
    assert fit.ratio_after == pytest.approx(1.0, abs=0.02)


def test_spread_ratios_price_the_strategy_spread(chain: pd.DataFrame, vix: pd.DataFrame) -> None:
    truth = SmileFit(TRUE.atm_ratio, 0.0, TRUE.slope, TRUE.curvature)
    rows = spread_ratios(chain, vix, truth)
    first = rows.iloc[0]
    day = chain.loc[chain["quote_date"] == first["quote_date"]]
    assert (first["expiration"] - first["quote_date"]).days >= 30
    assert first["long_strike"] > first["short_strike"] > day["underlying_price"].iloc[0]
    # the true smile prices the chain's mids up to the quotes' cent rounding
    assert rows["ratio"].between(0.97, 1.03).all()
    default = spread_ratios(chain, vix, None)
    assert default["ratio"].median() != pytest.approx(1.0, abs=0.05)


def test_parameter_file_round_trip_and_errors(tmp_path: Path) -> None:
    fit = SmileFit(0.9, 0.01, 0.3, 0.02, quotes=10, ratio_before=1.4, ratio_after=1.01)
    path = fit.write(tmp_path / "skew.yaml")
    back = load_smile(path)
    assert back.config_changes() == fit.config_changes()
    cfg = BacktestConfig().replace(**back.config_changes())
    assert (cfg.atm_ratio, cfg.skew_slope, cfg.skew_curvature) == (0.9, 0.3, 0.02)
    (tmp_path / "bad.yaml").write_text("atm_ratio: 0.9\nslope: 0.3\ncolour: red\n")
    with pytest.raises(ConfigError, match=r"unknown keys \['colour'\]"):
        load_smile(tmp_path / "bad.yaml")
    (tmp_path / "neg.yaml").write_text(
        "atm_ratio: -1\natm_intercept: 0\nslope: 0.3\ncurvature: 0\n"
    )
    with pytest.raises(ConfigError, match="atm_ratio"):
        load_smile(tmp_path / "neg.yaml")


def test_too_few_quotes_is_an_error(chain: pd.DataFrame, vix: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="usable out-of-the-money quotes"):
        calibrate(chain.iloc[:20], vix)
    with pytest.raises(ValueError, match="IV index symbols"):
        calibrate(chain, vix.assign(symbol="NOPE"))


def test_cli_calibrate_then_backtest_with_the_fitted_smile(
    chain: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "chain.parquet"
    chain.drop(columns=["iv", "delta"]).to_parquet(path)
    out = tmp_path / "skew.yaml"
    res = run_cli("chains", "calibrate", "--chains", str(path), "--out", str(out))
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    fit = load_smile(out)
    assert last == (
        "model/chain spread mid ratio out of sample (median): default "
        f"{fit.oos_ratio_default:.3f}, calibrated {fit.oos_ratio_calibrated:.3f}"
    )
    # the in-sample figures are printed too, and written with the fit
    assert f"{fit.ratio_before:.3f} default, {fit.ratio_after:.3f} calibrated" in res.stdout
    args = ["backtest", "run", "--start", "2016-01-01", "--end", "2016-06-30"]
    default = run_cli(*args)
    fitted = run_cli(*args, "--skew", str(out))
    assert default.returncode == fitted.returncode == 0, fitted.stderr
    assert default.stdout != fitted.stdout  # the fitted smile prices differently
    assert DEFAULT_SKEW_SLOPE != pytest.approx(fit.slope, abs=0.01)
    # the default ATM map, recomputed as pricing documents it: the ATM / index ratio at which
    # the default smile's own VIX (Cboe's method, research.backtest.smile) equals the index
    assert DEFAULT_ATM_RATIO == pytest.approx(atm_ratio_for(SkewModel()), abs=5e-4)
    assert DEFAULT_ATM_RATIO == pytest.approx(0.880, abs=5e-4)
    # the fitted map at an index of 15 % is the chain's own (0.86), not the default's
    fitted = fit.atm_ratio + fit.atm_intercept / 0.15
    assert fitted == pytest.approx(TRUE.atm_ratio, abs=0.01)
    assert abs(fitted - DEFAULT_ATM_RATIO) > 0.01
    bad = run_cli("chains", "calibrate", "--chains", str(tmp_path / "none.csv"), "--out", str(out))
    assert bad.returncode == 1 and "none.csv" in bad.stderr
