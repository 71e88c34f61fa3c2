"""No look-ahead, for every model: appending future bars never changes an earlier label,
feature or probability. Hypothesis draws the cut points; the data is real (SPX and IXIC)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from research.data import market
from research.regimes import classify
from research.regimes.ruleset import DEFAULT_RULESET

RULE_MODELS = ("vix_trend", "vol_ratio", "bull_bear_vol", "tags")
# every cut leaves at least the 61 bars the rule models need (registry.min_history)
MIN_CUT = 60
# a fast Markov schedule: first fit after 120 returns, refit every 60
FAST_MARKOV = dataclasses.replace(
    DEFAULT_RULESET,
    markov=dataclasses.replace(DEFAULT_RULESET.markov, min_train_bars=120, refit_every_bars=60),
)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = market.load_bars(start="2007-01-01", end="2010-12-31")
    index = market.load_iv_index()
    fit = market.fit_iv_proxy(market.load_bars(symbols=["SPX"]), index)
    iv = market.iv_with_proxy(bars, index, fit)
    return bars, iv


def _prefix(frame: pd.DataFrame, last: pd.Timestamp) -> pd.DataFrame:
    return frame.loc[frame["date"] <= last].reset_index(drop=True)


def _assert_prefix_invariant(
    model: str, bars: pd.DataFrame, iv: pd.DataFrame, cut: int, rules=DEFAULT_RULESET
) -> None:  # type: ignore[no-untyped-def]
    dates = bars["date"].drop_duplicates().sort_values().reset_index(drop=True)
    last = dates.iloc[cut]
    full = classify(model, bars, iv, rules)
    part = classify(model, _prefix(bars, last), _prefix(iv, last), rules)
    expected = full.loc[full["date"] <= last].reset_index(drop=True)
    assert len(part) == len(expected) > 0
    pd.testing.assert_frame_equal(part, expected, check_exact=True)


@pytest.mark.parametrize("model", RULE_MODELS)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=MIN_CUT, max_value=1000))
def test_rule_models_have_no_look_ahead(model: str, cut: int, data) -> None:  # type: ignore[no-untyped-def]
    bars, iv = data
    _assert_prefix_invariant(model, bars, iv, cut)


PERCENTILE = dataclasses.replace(
    DEFAULT_RULESET, vix_trend=dataclasses.replace(DEFAULT_RULESET.vix_trend, iv_scale="percentile")
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=125, max_value=1000))  # 126 bars: the first IV rank
def test_vix_trend_percentile_scale_has_no_look_ahead(cut: int, data) -> None:  # type: ignore[no-untyped-def]
    bars, iv = data
    _assert_prefix_invariant("vix_trend", bars, iv, cut, PERCENTILE)


BULL_BEAR_PERCENTILE = dataclasses.replace(
    DEFAULT_RULESET,
    bull_bear_vol=dataclasses.replace(DEFAULT_RULESET.bull_bear_vol, vol_scale="percentile"),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=145, max_value=1000))  # 146 bars: the first realized-vol rank
def test_bull_bear_vol_percentile_scale_has_no_look_ahead(cut: int, data) -> None:  # type: ignore[no-untyped-def]
    bars, iv = data
    _assert_prefix_invariant("bull_bear_vol", bars, iv, cut, BULL_BEAR_PERCENTILE)


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=120, max_value=370))  # 121 bars: min_train_bars + 1
def test_markov_has_no_look_ahead(cut: int, data) -> None:  # type: ignore[no-untyped-def]
    # one symbol keeps it fast; tests/regimes/test_markov.py checks exact cuts at refit points
    bars, iv = data
    bars = bars.loc[(bars["date"] <= "2008-06-30") & (bars["symbol"] == "SPX")]
    _assert_prefix_invariant("markov", bars, iv, cut, FAST_MARKOV)


@pytest.mark.parametrize("model", RULE_MODELS)
def test_changing_a_future_bar_changes_nothing_before_it(model: str, data) -> None:  # type: ignore[no-untyped-def]
    """A crash injected after t leaves every value up to t as it was (and changes later ones)."""
    bars, iv = data
    full = classify(model, bars, iv)
    shocked = bars.copy()
    when = shocked["date"] >= "2009-06-01"
    for col in ("open", "high", "low", "close"):
        shocked.loc[when, col] = shocked.loc[when, col] * 0.5
    iv_shocked = iv.copy()
    iv_shocked.loc[iv_shocked["date"] >= "2009-06-01", "iv"] = 0.9
    after = classify(model, shocked, iv_shocked)
    before = full["date"] < "2009-06-01"
    pd.testing.assert_frame_equal(after.loc[before], full.loc[before], check_exact=True)
    assert not after.loc[~before].equals(full.loc[~before])
