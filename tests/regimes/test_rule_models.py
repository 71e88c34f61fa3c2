"""The rule-based regime models, regime keys and rulesets: hand-computed cases and the seeds'
scenarios."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import pytest

from research.data.errors import ContractError
from research.regimes import bull_bear_vol, tags, vix_trend, vol_ratio
from research.regimes.keys import (
    compute_regime_fingerprint,
    compute_regime_key,
    regime_keys,
    tag_dimensions,
)
from research.regimes.registry import classify, get_model
from research.regimes.ruleset import (
    DEFAULT_RULESET,
    Ruleset,
    RulesetError,
    load_ruleset,
    ruleset_from_dict,
)


def make_bars(
    closes: list[float] | np.ndarray, symbol: str = "TST", start: str = "2020-01-01"
) -> pd.DataFrame:
    closes = np.asarray(closes, float)
    dates = pd.bdate_range(start, periods=len(closes))
    return pd.DataFrame(
        {
            "date": dates,
            "symbol": symbol,
            "open": closes,
            "high": closes * 1.001,
            "low": closes * 0.999,
            "close": closes,
            "volume": 1000.0,
        }
    )


def flat_iv(bars: pd.DataFrame, value: float | list[float]) -> pd.DataFrame:
    return pd.DataFrame({"date": bars["date"], "symbol": bars["symbol"], "iv": value})


# --- regime keys (seed 002) -------------------------------------------------------------


def test_regime_key_format_and_missing_tags_use_underscore() -> None:
    assert (
        compute_regime_key({"uptrend", "high_vol", "noisy"})
        == "regime_v1_1|default_v1|uptrend|high_vol|noisy"
    )
    assert (
        compute_regime_key({"flat", "low_vol", "efficient"})
        == "regime_v1_1|default_v1|flat|low_vol|efficient"
    )
    assert compute_regime_key({"downtrend"}) == "regime_v1_1|default_v1|downtrend|_|_"
    assert compute_regime_key([]) == "regime_v1_1|default_v1|_|_|_"


def test_one_tag_per_dimension_in_the_seed_priority_order() -> None:
    # the seed picks the first of [uptrend, downtrend, trending, flat] present
    assert tag_dimensions({"trending", "uptrend", "noisy", "efficient"}) == (
        "uptrend",
        None,
        "efficient",
    )
    assert tag_dimensions({"flat", "trending", "unrelated"}) == ("trending", None, None)


def test_fingerprint_is_sha256_hex_stable_and_changes_with_schema_or_ruleset() -> None:
    # FIPS 180-2 test vector
    assert (
        compute_regime_fingerprint("abc")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    key = compute_regime_key({"uptrend", "high_vol", "noisy"})
    assert compute_regime_fingerprint(key) == compute_regime_fingerprint(key)
    assert len(compute_regime_fingerprint(key)) == 64
    other_schema = compute_regime_key({"uptrend", "high_vol", "noisy"}, schema_version="regime_v2")
    other_rules = compute_regime_key({"uptrend", "high_vol", "noisy"}, ruleset_id="custom_v2")
    digests = {compute_regime_fingerprint(k) for k in (key, other_schema, other_rules)}
    assert len(digests) == 3


def test_vectorised_keys_match_the_scalar_function() -> None:
    trend = pd.Series(["uptrend", "flat", None])
    vol = pd.Series(["high_vol", None, None])
    eff = pd.Series(["noisy", "efficient", None])
    keys, prints = regime_keys(trend, vol, eff)
    expected = [
        compute_regime_key(t)
        for t in ({"uptrend", "high_vol", "noisy"}, {"flat", "efficient"}, set())
    ]
    assert list(keys) == expected
    assert list(prints) == [hashlib.sha256(k.encode()).hexdigest() for k in expected]


# --- vix_trend (seed 001) ---------------------------------------------------------------


def test_vix_buckets_at_and_around_the_edges() -> None:
    values = [0.1199, 0.12, 0.1499, 0.15, 0.20, 0.2499, 0.25, 0.3499, 0.35, 0.80]
    closes = np.full(60 + len(values), 100.0)
    bars = make_bars(closes, symbol="SPX")  # SPX: bucketed by VIX points (iv_scale auto)
    iv = flat_iv(bars, [0.16] * 60 + values)
    out = classify("vix_trend", bars, iv)
    tail = out.iloc[60:]
    assert list(tail["iv_bucket"]) == [
        "ULTRA_LOW",
        "LOW",
        "LOW",
        "NORMAL",
        "ELEVATED",
        "ELEVATED",
        "HIGH",
        "HIGH",
        "EXTREME",
        "EXTREME",
    ]
    # flat prices: close == SMA → NEUTRAL
    assert list(tail["regime"])[:2] == ["ULTRA_LOW_VOL_NEUTRAL", "LOW_VOL_NEUTRAL"]
    assert list(tail["vol_dim"])[:4] == ["low", "low", "low", "normal"]


def test_vix_trend_band_and_warmup() -> None:
    # 50 closes at 100 then one close: distance to the 50-day SMA decides the trend
    def last(close: float) -> pd.Series:
        bars = make_bars([100.0] * 50 + [close], symbol="SPX")
        return classify("vix_trend", bars, flat_iv(bars, 0.13)).iloc[-1]

    # SMA of the last 50 closes = (49 * 100 + c) / 50
    up = last(103.0)  # SMA 100.06 → +2.94% > 2% band
    assert up["regime"] == "LOW_VOL_BULLISH" and up["trend_dim"] == "up"
    assert up["trend_distance"] == pytest.approx(103 / 100.06 - 1)
    assert last(102.0)["trend"] == "NEUTRAL"  # +1.96%: inside the band
    assert last(97.0)["regime"] == "LOW_VOL_BEARISH"  # -2.94%
    bars = make_bars([100.0] * 51, symbol="SPX")
    out = classify("vix_trend", bars, flat_iv(bars, 0.13))
    assert out["regime"].iloc[:49].isna().all() and (out["flag"].iloc[:49] == "warmup").all()
    assert out["regime"].iloc[49] == "LOW_VOL_NEUTRAL"


def test_vix_buckets_only_mode_and_missing_iv_flag() -> None:
    rules = dataclasses.replace(
        DEFAULT_RULESET, vix_trend=dataclasses.replace(DEFAULT_RULESET.vix_trend, buckets_only=True)
    )
    bars = make_bars(np.linspace(100, 120, 5), symbol="SPX")
    iv = flat_iv(bars, [0.11, 0.13, np.nan, 0.22, 0.40]).dropna()
    out = classify("vix_trend", bars, iv, rules)
    assert list(out["regime"].fillna("-")) == [
        "ULTRA_LOW_VOL",
        "LOW_VOL",
        "-",
        "ELEVATED_VOL",
        "EXTREME_VOL",
    ]
    assert out["flag"].iloc[2] == "missing_iv"
    assert len(vix_trend.labels_for(rules.vix_trend)) == 6
    assert len(vix_trend.labels_for(DEFAULT_RULESET.vix_trend)) == 18


# --- vix_trend IV scale: VIX points or trailing IV percentile -----------------------------

# a 5-bar percentile window (ranks from 3 IVs on) and a 3-bar SMA keep the hand computation short
SMALL_WINDOWS = dataclasses.replace(
    DEFAULT_RULESET,
    vix_trend=dataclasses.replace(
        DEFAULT_RULESET.vix_trend, percentile_window=5, percentile_min_periods=3, trend_window=3
    ),
)
IV_SERIES = [0.30, 0.25, 0.35, 0.40, 0.20, np.nan, 0.28, 0.50, 0.38, 0.10, 0.50]


def _vix_rules(**kw: object) -> Ruleset:
    return dataclasses.replace(
        SMALL_WINDOWS, vix_trend=dataclasses.replace(SMALL_WINDOWS.vix_trend, **kw)
    )


def test_vix_percentile_buckets_hand_computed() -> None:
    bars = make_bars([100.0] * len(IV_SERIES), symbol="GOOG")
    out = classify("vix_trend", bars, flat_iv(bars, IV_SERIES).dropna(), SMALL_WINDOWS)
    # rank = 100 x (window IVs <= today's) / (window IVs), window = last 5 rows, NaN IVs left out:
    # row 2 [.30 .25 .35] 3/3; row 3 4/4; row 4 [.30 .25 .35 .40 .20] 1/5; row 5 no IV;
    # row 6 [.35 .40 .20 - .28] 2/4; row 7 [.40 .20 - .28 .50] 4/4; row 8 [.20 - .28 .50 .38] 3/4;
    # row 9 [- .28 .50 .38 .10] 1/4; row 10 [.28 .50 .38 .10 .50] 5/5 (a tie counts as <=)
    expected_rank = [np.nan, np.nan, 100, 100, 20, np.nan, 50, 100, 75, 25, 100]
    np.testing.assert_allclose(out["iv_rank"], expected_rank)
    # default edges 24 / 64 / 88 / 96 / 100, a rank on an edge goes to the bucket above
    assert list(out["iv_bucket"].fillna("-")) == [
        "-",
        "-",
        "EXTREME",
        "EXTREME",
        "ULTRA_LOW",
        "-",
        "LOW",
        "EXTREME",
        "NORMAL",
        "LOW",
        "EXTREME",
    ]
    assert (out["iv_scale"] == "percentile").all()
    assert out["regime"].iloc[8] == "NORMAL_VOL_NEUTRAL" and out["vol_dim"].iloc[4] == "low"
    assert list(out["flag"].iloc[:2]) == ["warmup", "warmup"]  # one flag for rank and SMA
    assert out["flag"].iloc[5] == "missing_iv" and pd.isna(out["regime"].iloc[5])
    assert (out["flag"].drop([0, 1, 5]) == "").all()
    assert out["regime"].drop([0, 1, 5]).notna().all()


def test_vix_percentile_warmup_without_trend_in_buckets_only_mode() -> None:
    bars = make_bars([100.0] * 5, symbol="GOOG")
    rules = _vix_rules(buckets_only=True)
    out = classify("vix_trend", bars, flat_iv(bars, IV_SERIES[:5]), rules)
    assert list(out["regime"].fillna("-")) == [
        "-",
        "-",
        "EXTREME_VOL",
        "EXTREME_VOL",
        "ULTRA_LOW_VOL",
    ]
    assert list(out["flag"]) == ["warmup", "warmup", "", "", ""]


def test_vix_auto_scale_points_for_index_symbols_percentile_otherwise() -> None:
    spx = make_bars([100.0] * len(IV_SERIES), symbol="SPX")
    goog = make_bars([100.0] * len(IV_SERIES), symbol="GOOG")
    bars = pd.concat([spx, goog])
    iv = pd.concat([flat_iv(spx, IV_SERIES).dropna(), flat_iv(goog, IV_SERIES).dropna()])
    out = classify("vix_trend", bars, iv, SMALL_WINDOWS).set_index("symbol")
    assert (out.loc["SPX", "iv_scale"] == "points").all()
    assert (out.loc["GOOG", "iv_scale"] == "percentile").all()
    # SPX by points: 30 -> HIGH, 25 -> HIGH (edge), 35 -> EXTREME, 40, 20 -> ELEVATED
    assert list(out.loc["SPX", "iv_bucket"].iloc[:5]) == [
        "HIGH",
        "HIGH",
        "EXTREME",
        "EXTREME",
        "ELEVATED",
    ]
    assert out.loc["GOOG", "iv_bucket"].iloc[4] == "ULTRA_LOW"
    # the rank is computed for every symbol, whatever the scale
    np.testing.assert_allclose(out.loc["SPX", "iv_rank"], out.loc["GOOG", "iv_rank"])
    assert out.loc["SPX", "regime"].iloc[2] == "EXTREME_VOL_NEUTRAL"  # no rank warmup on points


def test_vix_explicit_scale_overrides_the_symbol() -> None:
    spx = make_bars([100.0] * len(IV_SERIES), symbol="SPX")
    goog = make_bars([100.0] * len(IV_SERIES), symbol="GOOG")
    by_pct = classify(
        "vix_trend", spx, flat_iv(spx, IV_SERIES).dropna(), _vix_rules(iv_scale="percentile")
    )
    assert (by_pct["iv_scale"] == "percentile").all()
    assert by_pct["iv_bucket"].iloc[4] == "ULTRA_LOW" and by_pct["iv_bucket"].iloc[8] == "NORMAL"
    by_pts = classify(
        "vix_trend", goog, flat_iv(goog, IV_SERIES).dropna(), _vix_rules(iv_scale="points")
    )
    assert (by_pts["iv_scale"] == "points").all()
    assert by_pts["iv_bucket"].iloc[4] == "ELEVATED" and by_pts["iv_bucket"].iloc[9] == "ULTRA_LOW"
    # points_symbols decides in auto mode
    listed = classify(
        "vix_trend", goog, flat_iv(goog, IV_SERIES).dropna(), _vix_rules(points_symbols=("GOOG",))
    )
    assert (listed["iv_scale"] == "points").all()


def test_vix_percentile_edges_come_from_the_embedded_vix() -> None:
    from research.data.market import embedded_vix

    points = embedded_vix()["iv"].to_numpy() * 100
    idx = np.searchsorted(DEFAULT_RULESET.vix_trend.iv_edges, points, "right")
    cumulative = np.cumsum(np.bincount(idx, minlength=6))[:5] / len(points) * 100
    np.testing.assert_allclose(cumulative, [23.75, 64.10, 87.61, 96.43, 99.68], atol=0.005)
    assert DEFAULT_RULESET.vix_trend.percentile_edges == tuple(np.round(cumulative))


def test_vix_bad_iv_scale_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        RulesetError, match=r"iv_scale must be one of \['auto', 'points', 'percentile'\], got 'vix'"
    ):
        dataclasses.replace(DEFAULT_RULESET.vix_trend, iv_scale="vix")
    path = tmp_path / "rules.yaml"
    path.write_text("ruleset_id: x\nvix_trend:\n  iv_scale: vix\n")
    with pytest.raises(RulesetError, match=r"rules.yaml: vix_trend\.iv_scale must be one of"):
        load_ruleset(path)
    path.write_text("ruleset_id: x\nvix_trend:\n  iv_scale: 3\n")
    with pytest.raises(RulesetError, match=r"vix_trend\.iv_scale: expected a non-empty string"):
        load_ruleset(path)


def test_vix_scale_settings_load_from_a_ruleset_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.yaml"
    path.write_text(
        "ruleset_id: x\nvix_trend:\n  iv_scale: percentile\n  points_symbols: [SPX, GC]\n"
        "  percentile_edges: [10, 50, 90, 95, 99]\n  percentile_window: 500\n"
    )
    r = load_ruleset(path).vix_trend
    assert (r.iv_scale, r.points_symbols, r.percentile_window) == ("percentile", ("SPX", "GC"), 500)
    assert r.percentile_edges == (10.0, 50.0, 90.0, 95.0, 99.0)
    assert r.percentile_min_periods == 126  # untouched default
    for text, message in [
        ("percentile_edges: [10, 50, 40, 95, 99]", "percentile_edges must increase"),
        ("percentile_edges: [10, 50, 90, 95]", "one more bucket_names than percentile_edges"),
        ("percentile_min_periods: 300", "percentile_min_periods <= percentile_window"),
    ]:
        path.write_text(f"ruleset_id: x\nvix_trend:\n  {text}\n")
        with pytest.raises(RulesetError, match=message):
            load_ruleset(path)


def test_summary_names_each_symbols_iv_scale() -> None:
    from research.regimes.service import summarize

    spx = make_bars([100.0] * len(IV_SERIES), symbol="SPX")
    goog = make_bars([100.0] * len(IV_SERIES), symbol="GOOG")
    iv = pd.concat([flat_iv(spx, IV_SERIES).dropna(), flat_iv(goog, IV_SERIES).dropna()])
    out = classify("vix_trend", pd.concat([spx, goog]), iv, SMALL_WINDOWS)
    text = summarize(out, SMALL_WINDOWS)
    assert "vix_trend IV buckets: GOOG by trailing 5-day IV percentile; SPX by VIX points" in text
    assert "trailing 252-day IV percentile" in summarize(out)  # default ruleset
    assert "IV buckets" not in summarize(
        classify("vol_ratio", make_bars(np.linspace(100, 110, 80)))
    )


# --- vol_ratio (seed 003) ---------------------------------------------------------------


def test_ewma_window_vol_hand_computed() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    got = vol_ratio.ewma_window_vol(r, window=3, halflife=1)  # lambda = 0.5
    # newest weight 1, then 0.5, 0.25
    first = np.sqrt((0.25 * 0.01**2 + 0.5 * 0.02**2 + 1 * 0.03**2) / 1.75)
    second = np.sqrt((0.25 * 0.02**2 + 0.5 * 0.03**2 + 1 * 0.0**2) / 1.75)
    assert np.isnan(got[:2]).all()
    np.testing.assert_allclose(got[2:], [first, second], rtol=1e-12)


def _returns_to_closes(returns: np.ndarray) -> np.ndarray:
    return 100 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))


def test_seed_scenarios_stable_spike_compression_insufficient() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(0, 0.01, 200)
    stable = classify("vol_ratio", make_bars(_returns_to_closes(base))).iloc[-1]
    assert stable["regime"] == "normal" and 0.6 < stable["vol_ratio"] < 1.2

    spike = np.concatenate([base, rng.normal(0, 0.06, 8)])
    crisis = classify("vol_ratio", make_bars(_returns_to_closes(spike))).iloc[-1]
    assert crisis["regime"] == "crisis" and crisis["vol_ratio"] >= 1.8

    calm = np.concatenate([rng.normal(0, 0.03, 200), rng.normal(0, 0.004, 14)])
    low = classify("vol_ratio", make_bars(_returns_to_closes(calm))).iloc[-1]
    assert low["regime"] == "low" and low["vol_ratio"] < 0.6

    # the fallback: rows 0..59 have fewer than 60 returns (row 60 is the first with a ratio)
    out = classify("vol_ratio", make_bars(_returns_to_closes(base)))
    short = out.iloc[:60]
    assert (short["regime"] == "normal").all()
    assert (short[["vol_short", "vol_long"]] == 0).all().all() and (short["vol_ratio"] == 1).all()
    assert (short["flag"] == "insufficient_data").all()
    assert out["flag"].iloc[60] == "" and out["vol_long"].iloc[60] > 0
    # a history with no row past the fallback is refused
    with pytest.raises(ValueError, match=r"TST has 60 bars .* needs 61 \(long_window_bars 60"):
        classify("vol_ratio", make_bars(_returns_to_closes(base[:59])))


def test_vol_ratio_thresholds_are_strict_lower_bounds() -> None:
    got = vol_ratio.classify_ratio(np.array([0.59, 0.6, 1.19, 1.2, 1.79, 1.8]), 0.6, 1.2, 1.8)
    assert list(got) == ["low", "normal", "normal", "high", "high", "crisis"]


def test_vol_ratio_constant_prices_fall_back_with_zero_vol_flag() -> None:
    out = classify("vol_ratio", make_bars([100.0] * 80))
    assert out["flag"].iloc[-1] == "zero_vol" and out["regime"].iloc[-1] == "normal"


# --- bull_bear_vol (seed 004) -----------------------------------------------------------


def test_bull_bear_vol_states_and_multipliers() -> None:
    # SPX and IXIC: vol levels judged absolute (vol_scale auto)
    up = make_bars(100 * 1.002 ** np.arange(80), symbol="SPX")
    down = make_bars(100 * 0.998 ** np.arange(80), symbol="IXIC")
    iv = pd.concat([flat_iv(up, 0.15), flat_iv(down, 0.15)])
    out = classify("bull_bear_vol", pd.concat([up, down]), iv).groupby("symbol").last()
    assert out.loc["SPX", "regime"] == "bull_low_vol" and out.loc["SPX", "size_multiplier"] == 1.0
    assert out.loc["IXIC", "regime"] == "bear_low_vol" and out.loc["IXIC", "size_multiplier"] == 0.5
    # momentum_20 and trend hand-computed for the rising series
    assert out.loc["SPX", "momentum_20"] == pytest.approx(1.002**20 - 1)
    sma50 = np.mean(100 * 1.002 ** np.arange(30, 80))
    assert out.loc["SPX", "trend"] == pytest.approx(100 * 1.002**79 / sma50 - 1)
    # constant log returns: realized vol exactly 0, so iv - rv = iv
    assert out.loc["SPX", "realized_vol_20"] == pytest.approx(0, abs=1e-12)

    high = classify("bull_bear_vol", up, flat_iv(up, 0.20)).iloc[-1]
    assert high["regime"] == "bull_high_vol" and high["size_multiplier"] == 0.75
    bear_high = classify("bull_bear_vol", down, flat_iv(down, 0.30)).iloc[-1]
    assert bear_high["size_multiplier"] == 0.4


def test_bull_bear_realized_over_implied_triggers_high_vol() -> None:
    rng = np.random.default_rng(3)
    bars = make_bars(_returns_to_closes(0.001 + rng.choice([-0.008, 0.008], 79)), symbol="SPX")
    row = classify("bull_bear_vol", bars, flat_iv(bars, 0.05)).iloc[-1]
    assert 0.10 < row["realized_vol_20"] < 0.20  # below the 0.20 rv threshold …
    assert row["iv_rv_spread"] <= -0.05  # … but realized exceeds implied by >= 5 points
    assert row["vol_dim"] == "high"


# --- tags (seed 002) --------------------------------------------------------------------


def test_tags_uptrend_efficient_low_vol_and_its_key() -> None:
    out = classify("tags", make_bars(100 * 1.003 ** np.arange(80))).iloc[-1]
    assert (out["trend_tag"], out["vol_tag"], out["efficiency_tag"]) == (
        "uptrend",
        "low_vol",
        "efficient",
    )
    assert out["efficiency_ratio"] == pytest.approx(1.0)
    assert out["regime_key"] == "regime_v1_1|default_v1|uptrend|low_vol|efficient"
    assert out["regime_fingerprint"] == compute_regime_fingerprint(out["regime_key"])
    assert out["regime"] == "uptrend|low_vol|efficient"


def test_tags_flat_noisy_middle_vol_gets_underscore() -> None:
    # +/-1.1% zig-zag: 20- and 60-day returns ~0, ER ~0, realized vol ~17.5% (no vol tag)
    closes = 100 * np.exp(np.cumsum(np.tile([0.011, -0.011], 40)))
    out = classify("tags", make_bars(closes)).iloc[-1]
    assert (out["trend_tag"], out["efficiency_tag"]) == ("flat", "noisy")
    assert 0.12 < out["realized_vol"] < 0.20 and out["vol_tag"] is None
    assert out["regime_key"] == "regime_v1_1|default_v1|flat|_|noisy"
    assert out["vol_dim"] == "normal"


def test_tags_trending_when_long_move_but_short_pullback() -> None:
    closes = np.concatenate(
        [100 * 1.004 ** np.arange(60), 100 * 1.004**59 * 0.999 ** np.arange(1, 21)]
    )
    out = classify("tags", make_bars(closes)).iloc[-1]
    assert out["ret_long"] > 0.03 and out["ret_short"] < 0.03
    assert out["trend_tag"] == "trending" and out["trend_dim"] == "up"


def test_tags_key_uses_the_ruleset_ids() -> None:
    rules = dataclasses.replace(DEFAULT_RULESET, schema_version="regime_v2", ruleset_id="mine")
    out = classify("tags", make_bars(100 * 1.003 ** np.arange(80)), ruleset=rules).iloc[-1]
    assert out["regime_key"] == "regime_v2|mine|uptrend|low_vol|efficient"


# --- registry, bad input ----------------------------------------------------------------


def test_unknown_model_and_missing_iv_are_clear_errors() -> None:
    bars = make_bars(np.linspace(100, 110, 30))
    with pytest.raises(ValueError, match=r"unknown regime model 'hmm'.*vix_trend"):
        classify("hmm", bars)
    with pytest.raises(ValueError, match="needs an IV index"):
        classify("vix_trend", bars)
    other = flat_iv(make_bars(np.linspace(100, 110, 30), symbol="OTHER"), 0.2)
    with pytest.raises(ValueError, match=r"no value on any date of symbol\(s\) \['TST'\]"):
        classify("bull_bear_vol", bars, other)


def test_nan_close_duplicate_and_unsorted_dates_are_contract_errors() -> None:
    bars = make_bars(np.linspace(100, 110, 30))
    nan = bars.copy()
    nan.loc[5, "close"] = np.nan
    with pytest.raises(ContractError, match="close"):
        classify("vol_ratio", nan)
    dup = pd.concat([bars, bars.iloc[[3]]])
    with pytest.raises(ContractError, match="duplicate key"):
        classify("tags", dup)
    unsorted = bars.iloc[[0, 2, 1, *range(3, 30)]]
    with pytest.raises(ContractError, match="unsorted dates"):
        classify("vol_ratio", unsorted)


def test_gaps_are_flagged() -> None:
    bars = make_bars(np.linspace(100, 110, 80))
    bars.loc[20:, "date"] = bars.loc[20:, "date"] + pd.Timedelta(days=10)
    out = classify("vol_ratio", bars)
    assert out["flag"].str.contains("gap").sum() == 1
    assert "gap" in out["flag"].iloc[20]


def test_every_model_is_registered_with_its_labels() -> None:
    for name, uses_iv in [
        ("vix_trend", True),
        ("vol_ratio", False),
        ("bull_bear_vol", True),
        ("tags", False),
        ("markov", False),
    ]:
        spec = get_model(name)
        assert spec.uses_iv is uses_iv and spec.labels
    assert vol_ratio.SPEC.labels == ("low", "normal", "high", "crisis")
    assert bull_bear_vol.SPEC.labels == (
        "bull_low_vol",
        "bull_high_vol",
        "bear_low_vol",
        "bear_high_vol",
    )
    assert "uptrend|high_vol|noisy" in tags.SPEC.labels


# --- rulesets ---------------------------------------------------------------------------


def test_ruleset_defaults_are_the_seeds() -> None:
    r = DEFAULT_RULESET
    assert r.vix_trend.iv_edges == (12, 15, 20, 25, 35)
    assert (r.vol_ratio.ratio_low, r.vol_ratio.ratio_normal, r.vol_ratio.ratio_high) == (
        0.6,
        1.2,
        1.8,
    )
    assert (r.vol_ratio.short_halflife_bars, r.vol_ratio.long_halflife_bars) == (7, 30)
    assert dict(r.bull_bear_vol.size_multipliers) == {
        "bull_low_vol": 1.0,
        "bull_high_vol": 0.75,
        "bear_low_vol": 0.5,
        "bear_high_vol": 0.4,
    }
    assert (r.schema_version, r.ruleset_id) == ("regime_v1_1", "default_v1")


def test_ruleset_file_overrides_only_what_it_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.yaml"
    path.write_text(
        "ruleset_id: tight_v2\nvol_ratio:\n  ratio_low_high: {low: 0.5, normal: 1.1, high: 2.0}\n"
        "bull_bear_vol:\n  size_multipliers: {bull_low_vol: 1, bull_high_vol: 0.9, "
        "bear_low_vol: 1.25, bear_high_vol: 1.5}\n"
    )
    rules = load_ruleset(path)
    assert rules.ruleset_id == "tight_v2" and rules.schema_version == "regime_v1_1"
    assert (rules.vol_ratio.ratio_low, rules.vol_ratio.ratio_high) == (0.5, 2.0)
    assert rules.vol_ratio.long_halflife_bars == 30  # untouched default
    assert dict(rules.bull_bear_vol.size_multipliers)["bear_high_vol"] == 1.5
    json_path = tmp_path / "rules.json"
    json_path.write_text('{"ruleset_id": "j", "tags": {"trend_threshold": 0.05}}')
    assert load_ruleset(json_path).tags.trend_threshold == 0.05


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ruleset_id: x\nvol_ratio:\n  halflife: 3\n", r"rules.yaml: vol_ratio: unknown key"),
        ("ruleset_id: x\nmodels: {}\n", r"unknown key\(s\) \['models'\]"),
        ("vol_ratio: {}\n", "must name its ruleset_id"),
        (
            "ruleset_id: x\nvol_ratio:\n  ratio_low_high: {low: 1.5, normal: 1.2, high: 1.8}\n",
            "0 < ratio_low < ratio_normal < ratio_high",
        ),
        ("ruleset_id: x\ntags:\n  long_window: ten\n", r"tags\.long_window: expected an integer"),
        ("ruleset_id: x\nmarkov:\n  k_regimes: 4\n", "k_regimes must be 2 or 3"),
        ("ruleset_id: x\nvix_trend:\n  iv_scale: Points\n", r"vix_trend\.iv_scale must be one of"),
        ("ruleset_id: [unclosed\n", "not valid"),
    ],
)
def test_bad_rulesets_name_the_file_and_key(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesetError, match=message):
        load_ruleset(path)


def test_ruleset_round_trips_through_a_dict() -> None:
    data = DEFAULT_RULESET.to_dict()
    assert ruleset_from_dict(data) == DEFAULT_RULESET
