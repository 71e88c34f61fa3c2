"""Sensitivity scenarios: each changes exactly the assumption it names."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.data import market
from research.optimize.scenarios import SCENARIOS, StudyData, scenario_by_name
from research.optimize.study import _scenario_variants

BY_NAME = {s.name: s for s in SCENARIOS}


@pytest.fixture(scope="module")
def data() -> StudyData:
    return StudyData.load(symbols=["SPX", "IXIC"])


def test_scenario_names_and_order() -> None:
    assert [s.name for s in SCENARIOS] == [
        "baseline",
        "real_iv_only",
        "proxy_minus_2",
        "proxy_plus_2",
        "proxy_map_early",
        "proxy_map_late",
        "skew_x0.5",
        "skew_x1.5",
        "no_dividends",
        "next_open_fills",
        "intraday_stops",
    ]
    picked = scenario_by_name(["skew_x0.5", "baseline"])
    assert [s.name for s in picked] == ["baseline", "skew_x0.5"]
    with pytest.raises(ValueError, match=r"unknown scenario\(s\) \['nope'\]"):
        scenario_by_name(["nope"])


def test_proxy_shift_moves_only_proxy_values(data: StudyData) -> None:
    base = data.iv(BY_NAME["baseline"])
    for name, shift in (("proxy_minus_2", -0.02), ("proxy_plus_2", 0.02)):
        moved = data.iv(BY_NAME[name])
        proxy = base["source"] == "proxy"
        np.testing.assert_allclose(
            moved.loc[proxy, "iv"], np.maximum(base.loc[proxy, "iv"] + shift, 0.05), rtol=1e-12
        )
        published = base["source"].isin(["index", "scaled:index"])
        np.testing.assert_array_equal(moved.loc[published, "iv"], base.loc[published, "iv"])
        # IXIC's IV is SPX's scaled: it moves with SPX's proxy, by the same factor
        scaled = (base["source"] == "scaled:proxy").to_numpy()
        assert scaled.sum() > 1000
        spx = base.loc[base["symbol"] == "SPX", ["date", "iv"]].set_index("date")["iv"]
        spx_moved = moved.loc[moved["symbol"] == "SPX", ["date", "iv"]].set_index("date")["iv"]
        dates = base.loc[scaled, "date"]
        ratio_base = base.loc[scaled, "iv"].to_numpy() / spx.loc[dates].to_numpy()
        ratio_moved = moved.loc[scaled, "iv"].to_numpy() / spx_moved.loc[dates].to_numpy()
        np.testing.assert_allclose(ratio_moved, ratio_base, rtol=1e-9)


def test_sub_period_maps_are_refits_on_their_share_of_the_overlap(data: StudyData) -> None:
    # the SPX/VIX overlap of proxy features and index, by hand: 40 % of its dates, then the rest
    overlap = (
        data.features.loc[data.features["symbol"] == "SPX", ["date", "garch22"]]
        .merge(data.published.loc[data.published["symbol"] == "SPX", ["date", "iv"]], on="date")
        .dropna()["date"]
        .sort_values()
        .reset_index(drop=True)
    )
    cut = int(math.floor(0.4 * len(overlap)))
    windows = {
        "proxy_map_early": (overlap[0], overlap[cut - 1]),
        "proxy_map_late": (overlap[cut], overlap.iloc[-1]),
    }
    # on the built-in data the shares are the calendar periods 2014–15 and 2016–18
    assert windows["proxy_map_early"][1].year == 2015 and windows["proxy_map_late"][0].year in (
        2015,
        2016,
    )
    for name, (start, end) in windows.items():
        coef, _ = market.fit_proxy_map(data.features, data.published, start=start, end=end)
        iv = data.iv(BY_NAME[name])
        rows = iv.loc[iv["source"] == "proxy"].merge(data.features, on=["date", "symbol"])
        want = np.maximum(coef["const"] + coef["garch22"] * rows["garch22"], 0.05)
        np.testing.assert_allclose(rows["iv"], want, rtol=1e-12)
    # the two parts disagree (by up to about one vol point here)
    a = data.iv(BY_NAME["proxy_map_early"])["iv"].to_numpy()
    b = data.iv(BY_NAME["proxy_map_late"])["iv"].to_numpy()
    assert 0.005 < np.abs(a - b).max() < 0.02


def test_scenarios_that_change_nothing_are_not_applicable(goog_csv: Path) -> None:
    from research.optimize.service import DEFAULT_BASE

    own = StudyData.load(goog_csv, symbols=["GOOG"])  # no IV file: the uncalibrated forecast
    status = {sc.name: own.applies(sc, ["GOOG"], DEFAULT_BASE) for sc in SCENARIOS}
    assert status["proxy_map_early"] == (False, "no ticker has its own IV index to map a proxy on")
    assert status["no_dividends"] == (False, "every ticker's dividend yield is already 0")
    assert status["real_iv_only"] == (False, "no published IV index for these tickers")
    assert status["proxy_minus_2"] == (True, "")  # the uncalibrated level moves too
    assert status["skew_x0.5"] == (True, "")
    builtin = StudyData.load(symbols=["SPX", "IXIC"])
    assert all(builtin.applies(sc, ["IXIC"], DEFAULT_BASE)[0] for sc in SCENARIOS)


def test_real_iv_only_has_no_proxy_and_starts_with_the_index(data: StudyData) -> None:
    sc = BY_NAME["real_iv_only"]
    iv = data.iv(sc)
    assert set(iv["source"]) == {"index", "scaled:index"}
    assert set(iv.loc[iv["symbol"] == "SPX", "source"]) == {"index"}
    assert iv.loc[iv["symbol"] == "SPX", "date"].min() == pd.Timestamp("2014-01-03")
    panel = data.panel(sc, ("SPX", "IXIC"))
    assert panel is not None and panel.dates[0] == pd.Timestamp("2014-01-03")
    assert set(np.unique(panel.iv_source)) == {"index", "scaled:index"}
    # the IV percentile starts afresh from published values only (NaN for the first 19 days)
    assert np.isnan(panel.iv_percentile[:19]).all() and np.isfinite(panel.iv_percentile[19:]).all()
    # a study period before any published index: the scenario does not apply
    assert data.panel(sc, ("SPX",), "2007-01-01", "2011-12-31") is None


def test_labels_follow_the_scenario_iv(data: StudyData) -> None:
    def high_vol_share(name: str) -> float:
        labels = data.labels(BY_NAME[name], "bull_bear_vol")
        assert labels is not None
        early = labels.loc[(labels["symbol"] == "SPX") & (labels["date"] < "2014-01-01")]
        return float(early["regime"].str.endswith("high_vol").mean())

    low, mid, high = (high_vol_share(n) for n in ("proxy_minus_2", "baseline", "proxy_plus_2"))
    assert low < mid < high
    assert high - low > 0.05
    assert data.labels(BY_NAME["baseline"], None) is None


def test_config_scenarios_change_every_variant() -> None:
    from research.optimize import grids
    from research.optimize.service import DEFAULT_BASE

    variants = grids.multiplier_variants(DEFAULT_BASE)
    skew = _scenario_variants(variants, BY_NAME["skew_x1.5"])
    from research.backtest.pricing import DEFAULT_SKEW_SLOPE

    assert all(v.config.skew_slope == pytest.approx(1.5 * DEFAULT_SKEW_SLOPE) for v in skew)
    assert [v.config.sizing for v in skew] == [v.config.sizing for v in variants]
    fills = _scenario_variants(variants, BY_NAME["next_open_fills"])
    assert {v.config.fills.timing for v in fills} == {"next_open"}
    intraday = _scenario_variants(variants, BY_NAME["intraday_stops"])
    assert {v.config.fills.stop_fill for v in intraday} == {"intraday"}
    assert BY_NAME["intraday_stops"].model_only
    nodiv = _scenario_variants(variants, BY_NAME["no_dividends"])
    assert {v.config.dividend_yield("SPX") for v in nodiv} == {0.0}
    assert {v.config.dividend_yield("SPX") for v in variants} == {0.018}
    assert _scenario_variants(variants, BY_NAME["proxy_plus_2"]) == variants


def test_skew_scenarios_scale_the_slope_in_use() -> None:
    from research.backtest.spreads import BacktestConfig

    calibrated = BacktestConfig().replace(skew_slope=0.4)
    assert BY_NAME["skew_x0.5"].apply(calibrated).skew_slope == pytest.approx(0.2)
    assert BY_NAME["skew_x1.5"].apply(calibrated).skew_slope == pytest.approx(0.6)
    assert BY_NAME["proxy_plus_2"].apply(calibrated) == calibrated
    assert BY_NAME["skew_x0.5"].model_only and BY_NAME["no_dividends"].model_only
    assert not BY_NAME["proxy_plus_2"].model_only and not BY_NAME["real_iv_only"].model_only
