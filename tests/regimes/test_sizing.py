"""Seed 003 §5.2 / §5.3: tier x regime sizing, hybrid weight modulation, the regime snapshot.

Every expected number is computed by hand from the seed's ``vol_regimes`` block.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from research.regimes.ruleset import DEFAULT_RULESET, RulesetError, VolRatioRules
from research.regimes.sizing import (
    BADGE_COLORS,
    DEFAULT_VOL_REGIMES,
    MISSING_BADGE,
    REGIMES,
    HybridBaseWeights,
    HybridModifiers,
    HybridScores,
    HybridWeights,
    VolRegimeDefaults,
    VolRegimesConfig,
    apply_sizing,
    badge,
    effective_nav_pct,
    hybrid_score,
    hybrid_weights,
    load_vol_regimes_config,
    read_snapshot,
    regime_snapshot,
    sizing_multiplier,
    write_snapshot,
)

# The seed's block, verbatim except for the daily-bar windows (config/strategy_config.json, §1).
SEED_BLOCK: dict[str, Any] = {
    "vol_regimes": {
        "defaults": {
            "short_window_bars": 14,
            "long_window_bars": 60,
            "short_halflife_bars": 7,
            "long_halflife_bars": 30,
            "ratio_low_high": {"low": 0.6, "normal": 1.2, "high": 1.8},
        },
        "sizing_multipliers": {
            "CORE": {"low": 1.15, "normal": 1.0, "high": 0.75, "crisis": 0.5},
            "SATELLITE": {"low": 1.1, "normal": 1.0, "high": 0.7, "crisis": 0.4},
            "TACTICAL": {"low": 1.0, "normal": 0.9, "high": 0.6, "crisis": 0.3},
            "ALT-EXT": {"low": 0.9, "normal": 0.8, "high": 0.5, "crisis": 0.2},
        },
        "hybrid_weight_modifiers": {
            "default": {
                "low": {"carry": 1.0, "expectancy": 1.0, "router": 1.0},
                "normal": {"carry": 1.0, "expectancy": 1.0, "router": 1.0},
                "high": {"carry": 0.7, "expectancy": 0.9, "router": 1.0},
                "crisis": {"carry": 0.4, "expectancy": 0.8, "router": 1.1},
            }
        },
    }
}

BASE = 0.02  # base per_trade_nav_pct


@pytest.fixture
def cfg() -> VolRegimesConfig:
    loaded = load_vol_regimes_config(copy.deepcopy(SEED_BLOCK))
    assert loaded is not None
    return loaded


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------------------------------
# config
# ------------------------------------------------------------------------------------------


def test_seed_block_equals_code_defaults(cfg: VolRegimesConfig) -> None:
    assert cfg == DEFAULT_VOL_REGIMES == VolRegimesConfig()
    assert DEFAULT_VOL_REGIMES.to_dict() == SEED_BLOCK
    # the inner block alone is accepted too, and a whole strategy config with other blocks
    assert load_vol_regimes_config(SEED_BLOCK["vol_regimes"]) == cfg
    assert load_vol_regimes_config({"other_block": {"x": 1}, **SEED_BLOCK}) == cfg


def test_defaults_match_vol_ratio_rules() -> None:
    d = DEFAULT_VOL_REGIMES.defaults
    assert (d.short_halflife_bars, d.long_halflife_bars) == (7, 30)
    assert (d.short_window_bars, d.long_window_bars) == (14, 60)
    assert (d.ratio_low, d.ratio_normal, d.ratio_high) == (0.6, 1.2, 1.8)
    rules = DEFAULT_VOL_REGIMES.to_vol_ratio_rules()
    assert isinstance(rules, VolRatioRules)
    assert rules == DEFAULT_RULESET.vol_ratio


def test_custom_defaults_convert_to_rules() -> None:
    cfg = load_vol_regimes_config(
        {"defaults": {"long_window_bars": 90, "ratio_low_high": {"high": 2.0}}}
    )
    assert cfg is not None
    assert cfg.to_vol_ratio_rules() == dataclasses.replace(
        DEFAULT_RULESET.vol_ratio, long_window_bars=90, ratio_high=2.0
    )


def test_config_is_frozen(cfg: VolRegimesConfig) -> None:
    loose: Any = cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        loose.defaults = VolRegimeDefaults()
    with pytest.raises(TypeError):
        loose.sizing_multipliers["CORE"]["low"] = 9.0
    with pytest.raises(TypeError):
        loose.hybrid_weight_modifiers["default"] = {}
    hash(cfg)


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"sizing_multiplier": {}}, "sizing_multiplier"),
        ({"sizing_multipliers": {"SATELITE": {"low": 1.0}}}, "SATELITE"),
        ({"sizing_multipliers": {"CORE": {"panic": 0.1}}}, "panic"),
        (
            {"sizing_multipliers": {"CORE": {"low": "big"}}},
            "vol_regimes.sizing_multipliers.CORE.low",
        ),
        (
            {"sizing_multipliers": {"CORE": {"low": -0.5}}},
            "vol_regimes.sizing_multipliers.CORE.low",
        ),
        ({"hybrid_weight_modifiers": {"default": {"panic": {}}}}, "panic"),
        ({"hybrid_weight_modifiers": {"default": {"high": {"trend": 0.5}}}}, "trend"),
        ({"defaults": {"short_halflife": 7}}, "short_halflife"),
        ({"defaults": {"ratio_low_high": {"extreme": 3.0}}}, "extreme"),
        ({"defaults": {"long_window_bars": 0}}, "long_window_bars"),
    ],
)
def test_bad_config_keys_raise_naming_the_key(block: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        load_vol_regimes_config({"vol_regimes": block})


def test_inconsistent_thresholds_raise() -> None:
    with pytest.raises(RulesetError, match="ratio_low < ratio_normal"):
        load_vol_regimes_config({"defaults": {"ratio_low_high": {"low": 1.5}}})


# ------------------------------------------------------------------------------------------
# §5.2 sizing
# ------------------------------------------------------------------------------------------


def test_core_sizing_across_regimes(cfg: VolRegimesConfig) -> None:
    # 0.02 x 1.15 / 1.0 / 0.75 / 0.5
    expected = {"low": 0.023, "normal": 0.02, "high": 0.015, "crisis": 0.01}
    for regime, nav in expected.items():
        assert effective_nav_pct(BASE, cfg, "CORE", regime) == approx(nav)


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        # 0.02 x 1.1 / 1.0 / 0.7 / 0.4
        ("SATELLITE", {"low": 0.022, "normal": 0.02, "high": 0.014, "crisis": 0.008}),
        # 0.02 x 1.0 / 0.9 / 0.6 / 0.3
        ("TACTICAL", {"low": 0.02, "normal": 0.018, "high": 0.012, "crisis": 0.006}),
        # 0.02 x 0.9 / 0.8 / 0.5 / 0.2
        ("ALT-EXT", {"low": 0.018, "normal": 0.016, "high": 0.01, "crisis": 0.004}),
    ],
)
def test_sizing_is_tier_aware(cfg: VolRegimesConfig, tier: str, expected: dict[str, float]) -> None:
    for regime, nav in expected.items():
        assert effective_nav_pct(BASE, cfg, tier, regime) == approx(nav)
    # same regime, different tier, different size
    assert sizing_multiplier(cfg, tier, "crisis") != sizing_multiplier(cfg, "CORE", "crisis")


def test_tier_spelling_variants(cfg: VolRegimesConfig) -> None:
    assert sizing_multiplier(cfg, "sat", "high") == 0.7
    assert sizing_multiplier(cfg, "alt_ext", "crisis") == 0.2
    assert sizing_multiplier(cfg, " tactical ", "normal") == 0.9


@pytest.mark.parametrize("tier", ["MEME", None, "", float("nan")])
def test_unknown_tier_uses_core_row(cfg: VolRegimesConfig, tier: Any) -> None:
    core = [1.15, 1.0, 0.75, 0.5]
    assert [sizing_multiplier(cfg, tier, r) for r in REGIMES] == core


def test_unknown_regime_raises(cfg: VolRegimesConfig) -> None:
    for config in (cfg, None):
        with pytest.raises(ValueError, match="'panic'"):
            sizing_multiplier(config, "CORE", "panic")
        with pytest.raises(ValueError, match="'panic'"):
            hybrid_weights("panic", config)


MISSING_CONFIGS: dict[str, Any] = {
    "None": None,
    "empty dict": {},
    "block absent": {"some_other_block": {"a": 1}},
    "block null": {"vol_regimes": None},
    "block empty": {"vol_regimes": {}},
    "defaults only": {"vol_regimes": {"defaults": {"short_halflife_bars": 5}}},
}


@pytest.mark.parametrize("data", MISSING_CONFIGS.values(), ids=list(MISSING_CONFIGS))
def test_missing_config_falls_back(data: Any) -> None:
    cfg = load_vol_regimes_config(data)
    for tier in ("CORE", "SATELLITE", "TACTICAL", "ALT-EXT", "MEME", None):
        for regime in REGIMES:
            assert sizing_multiplier(cfg, tier, regime) == 1.0
            assert effective_nav_pct(BASE, cfg, tier, regime) == BASE
    for regime in REGIMES:
        assert hybrid_weights(regime, cfg) == HybridWeights(0.40, 0.25, 0.20, 0.15)


def test_none_for_absent_block() -> None:
    for key in ("None", "empty dict", "block absent", "block null"):
        assert load_vol_regimes_config(MISSING_CONFIGS[key]) is None


def test_incomplete_tier_rows() -> None:
    cfg = load_vol_regimes_config(
        {"sizing_multipliers": {"CORE": {"crisis": 0.5}, "TACTICAL": {"high": 0.6}}}
    )
    assert sizing_multiplier(cfg, "TACTICAL", "high") == 0.6
    assert sizing_multiplier(cfg, "TACTICAL", "crisis") == 1.0  # regime missing in the row
    assert sizing_multiplier(cfg, "SATELLITE", "crisis") == 0.5  # no row: CORE row
    assert sizing_multiplier(cfg, "SATELLITE", "low") == 1.0  # ... which lacks "low"


# ------------------------------------------------------------------------------------------
# §5.2 hybrid weight modulation
# ------------------------------------------------------------------------------------------

# crisis: trend 0.40, carry 0.25*0.4 = 0.10, expectancy 0.20*0.8 = 0.16,
# router 0.15*1.1 = 0.165; total 0.825
CRISIS = HybridWeights(0.40 / 0.825, 0.10 / 0.825, 0.16 / 0.825, 0.165 / 0.825)
# high: trend 0.40, carry 0.25*0.7 = 0.175, expectancy 0.20*0.9 = 0.18, router 0.15; total 0.905
HIGH = HybridWeights(0.40 / 0.905, 0.175 / 0.905, 0.18 / 0.905, 0.15 / 0.905)
NORMAL = HybridWeights(0.40, 0.25, 0.20, 0.15)


def assert_weights(w: HybridWeights, expected: HybridWeights) -> None:
    assert w.as_dict() == {k: approx(v) for k, v in expected.as_dict().items()}
    assert sum(w.as_dict().values()) == approx(1.0)


def test_hybrid_weights_by_regime(cfg: VolRegimesConfig) -> None:
    assert_weights(hybrid_weights("crisis", cfg), CRISIS)
    assert hybrid_weights("crisis", cfg).carry == approx(0.12121212121212122)
    assert hybrid_weights("crisis", cfg).router == approx(0.2)
    assert_weights(hybrid_weights("high", cfg), HIGH)
    assert_weights(hybrid_weights("normal", cfg), NORMAL)
    assert_weights(hybrid_weights("low", cfg), NORMAL)


def test_carry_downweighted_in_stress(cfg: VolRegimesConfig) -> None:
    carry = {r: hybrid_weights(r, cfg).carry for r in REGIMES}
    assert carry["crisis"] < carry["high"] < carry["normal"] == carry["low"]
    # trend is never modified, so its share rises as the others shrink
    assert hybrid_weights("crisis", cfg).trend > hybrid_weights("normal", cfg).trend


def test_base_weights_are_renormalised() -> None:
    w = hybrid_weights("normal", None, base=HybridBaseWeights(1.0, 1.0, 1.0, 1.0))
    assert w == HybridWeights(0.25, 0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="cannot normalise"):
        hybrid_weights("normal", None, base=HybridBaseWeights(0.0, 0.0, 0.0, 0.0))


def test_modifier_sets_fall_back_to_default(cfg: VolRegimesConfig) -> None:
    per_tier = VolRegimesConfig(
        hybrid_weight_modifiers={
            **cfg.hybrid_weight_modifiers,
            "TACTICAL": {"crisis": HybridModifiers(carry=0.0, expectancy=1.0, router=1.0)},
        }
    )
    # TACTICAL crisis: carry 0 -> trend 0.40, expectancy 0.20, router 0.15; total 0.75
    w = hybrid_weights("crisis", per_tier, modifiers_key="TACTICAL")
    assert_weights(w, HybridWeights(0.40 / 0.75, 0.0, 0.20 / 0.75, 0.15 / 0.75))
    # TACTICAL set lacks "high": unmodified; an absent set uses "default"
    assert_weights(hybrid_weights("high", per_tier, modifiers_key="TACTICAL"), NORMAL)
    assert_weights(hybrid_weights("crisis", per_tier, modifiers_key="CORE"), CRISIS)


SCORES = HybridScores(trend=0.5, carry=1.0, expectancy=0.2, router=0.8)


def test_hybrid_score_by_regime(cfg: VolRegimesConfig) -> None:
    # normal: 0.40*0.5 + 0.25*1.0 + 0.20*0.2 + 0.15*0.8 = 0.2 + 0.25 + 0.04 + 0.12 = 0.61
    assert hybrid_score(SCORES, "normal", cfg) == approx(0.61)
    assert hybrid_score(SCORES, "low", cfg) == approx(0.61)
    # high: (0.2 + 0.175*1.0 + 0.18*0.2 + 0.15*0.8) / 0.905 = 0.531 / 0.905 = 0.586740...
    assert hybrid_score(SCORES, "high", cfg) == approx(0.531 / 0.905)
    # crisis: (0.2 + 0.10*1.0 + 0.16*0.2 + 0.165*0.8) / 0.825 = 0.464 / 0.825 = 0.562424...
    assert hybrid_score(SCORES, "crisis", cfg) == approx(0.464 / 0.825)
    assert hybrid_score(SCORES, "crisis", cfg) == pytest.approx(0.5624242424, abs=1e-10)
    # carry-heavy candidate loses score in crisis; without config the regime is irrelevant
    assert hybrid_score(SCORES, "crisis", cfg) < hybrid_score(SCORES, "normal", cfg)
    assert hybrid_score(SCORES, "crisis", None) == approx(0.61)


def test_apply_sizing_matches_scalar_functions(cfg: VolRegimesConfig) -> None:
    candidates = pd.DataFrame(
        {
            "symbol": ["SPY", "QQQ", "IWM", "TLT", "GLD"],
            "tier": ["CORE", "SATELLITE", "TACTICAL", None, "MEME"],
            "regime": ["low", "crisis", "high", "normal", "crisis"],
            "trend": [0.5, 0.5, 0.5, 0.5, 0.5],
            "carry": [1.0, 1.0, 1.0, 1.0, np.nan],
            "expectancy": [0.2, 0.2, 0.2, 0.2, 0.2],
            "router": [0.8, 0.8, 0.8, 0.8, 0.8],
            "base_nav_pct": [0.02, 0.02, 0.01, 0.02, 0.02],
        },
        index=[10, 11, 12, 13, 14],
    )
    out = apply_sizing(candidates, cfg)
    assert list(out.index) == [10, 11, 12, 13, 14]
    assert "sizing_multiplier" not in candidates.columns  # input untouched
    # CORE low 1.15, SATELLITE crisis 0.4, TACTICAL high 0.6, None -> CORE normal 1.0,
    # MEME -> CORE crisis 0.5
    assert out["sizing_multiplier"].tolist() == [1.15, 0.4, 0.6, 1.0, 0.5]
    assert out["effective_nav_pct"].tolist() == [
        approx(0.023),
        approx(0.008),
        approx(0.006),
        approx(0.02),
        approx(0.01),
    ]
    assert out["hybrid_score"].iloc[:4].tolist() == [
        approx(0.61),
        approx(0.464 / 0.825),
        approx(0.531 / 0.905),
        approx(0.61),
    ]
    assert math.isnan(out["hybrid_score"].iloc[4])  # NaN carry propagates
    assert out.loc[11, "w_carry"] == approx(0.10 / 0.825)
    records = out.to_dict("records")
    for row in records:
        s = HybridScores(row["trend"], row["carry"], row["expectancy"], row["router"])
        if not math.isnan(row["carry"]):
            assert row["hybrid_score"] == approx(hybrid_score(s, row["regime"], cfg))
        assert row["effective_nav_pct"] == approx(
            effective_nav_pct(row["base_nav_pct"], cfg, row["tier"], row["regime"])
        )


def test_apply_sizing_errors_and_missing_config() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["A"],
            "tier": ["CORE"],
            "regime": ["crisis"],
            "trend": [0.5],
            "carry": [1.0],
            "expectancy": [0.2],
            "router": [0.8],
            "base_nav_pct": [0.02],
        }
    )
    out = apply_sizing(frame, None)
    assert out["effective_nav_pct"].iloc[0] == 0.02
    assert out["hybrid_score"].iloc[0] == approx(0.61)
    with pytest.raises(ValueError, match="base_nav_pct"):
        apply_sizing(frame.drop(columns="base_nav_pct"), None)
    with pytest.raises(ValueError, match="'panic'.*'A'"):
        apply_sizing(frame.assign(regime="panic"), None)
    assert apply_sizing(frame.iloc[:0], DEFAULT_VOL_REGIMES).empty


# ------------------------------------------------------------------------------------------
# §5.3 snapshot
# ------------------------------------------------------------------------------------------


def labels_frame() -> pd.DataFrame:
    """vol_ratio labels for 3 symbols; TLT has no row on the last day."""
    rows = [
        # date, symbol, regime, flag, vol_short, vol_long, vol_ratio
        ("2024-03-26", "SPY", "normal", "", 0.0090, 0.0085, 0.0090 / 0.0085),
        ("2024-03-27", "SPY", "normal", "", 0.0100, 0.0085, 0.0100 / 0.0085),
        ("2024-03-28", "SPY", "high", "", 0.0123, 0.0085, 0.0123 / 0.0085),
        ("2024-03-26", "QQQ", "crisis", "", 0.0300, 0.0150, 2.0),
        ("2024-03-28", "QQQ", "high", "gap", 0.0240, 0.0150, 1.6),
        ("2024-03-26", "TLT", "normal", "insufficient_data", 0.0, 0.0, 1.0),
        ("2024-03-27", "TLT", "low", "", 0.0040, 0.0080, 0.5),
    ]
    frame = pd.DataFrame(
        rows, columns=["date", "symbol", "regime", "flag", "vol_short", "vol_long", "vol_ratio"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame.insert(2, "model", "vol_ratio")
    frame.insert(4, "trend_dim", np.nan)
    frame.insert(5, "vol_dim", frame["regime"].replace({"crisis": "high"}))
    return frame.sample(frac=1.0, random_state=0)  # order must not matter


def test_snapshot_latest_rows() -> None:
    snap = regime_snapshot(labels_frame())
    assert snap["asof"] == "2024-03-28"
    assert set(snap["symbols"]) == {"SPY", "QQQ", "TLT"}
    spy = snap["symbols"]["SPY"]
    assert spy["vol_regime"] == "high"
    assert spy["vol"] == {"short": 0.0123, "long": 0.0085, "ratio": 0.0123 / 0.0085}
    assert spy["flag"] == ""
    assert spy["date"] == "2024-03-28"
    assert snap["symbols"]["QQQ"]["flag"] == "gap"
    assert snap["symbols"]["TLT"]["vol_regime"] == "low"  # its latest row, a day older
    assert snap["symbols"]["TLT"]["date"] == "2024-03-27"
    assert snap["vol_regime_summary"] == {"low": 1, "normal": 0, "high": 2, "crisis": 0}
    assert list(snap["vol_regime_summary"]) == list(REGIMES)
    for sym in snap["symbols"].values():
        assert all(type(v) is float for v in sym["vol"].values())


@pytest.mark.parametrize("asof", [date(2024, 3, 26), "2024-03-26", pd.Timestamp("2024-03-26")])
def test_snapshot_asof_first_day(asof: Any) -> None:
    snap = regime_snapshot(labels_frame(), asof=asof)
    assert snap["asof"] == "2024-03-26"
    assert {s: v["vol_regime"] for s, v in snap["symbols"].items()} == {
        "SPY": "normal",
        "QQQ": "crisis",
        "TLT": "normal",
    }
    assert snap["symbols"]["TLT"]["flag"] == "insufficient_data"
    assert snap["symbols"]["TLT"]["vol"] == {"short": 0.0, "long": 0.0, "ratio": 1.0}
    assert snap["vol_regime_summary"] == {"low": 0, "normal": 2, "high": 0, "crisis": 1}


def test_snapshot_asof_between_rows() -> None:
    # 2024-03-27: SPY and TLT have rows that day, QQQ's latest is 03-26
    snap = regime_snapshot(labels_frame(), asof=date(2024, 3, 27))
    assert {s: (v["vol_regime"], v["date"]) for s, v in snap["symbols"].items()} == {
        "SPY": ("normal", "2024-03-27"),
        "QQQ": ("crisis", "2024-03-26"),
        "TLT": ("low", "2024-03-27"),
    }
    assert snap["vol_regime_summary"] == {"low": 1, "normal": 1, "high": 0, "crisis": 1}


def test_snapshot_outside_the_data_is_an_error_and_empty_input_is_empty() -> None:
    frame = labels_frame()
    first, last = frame["date"].min(), frame["date"].max()
    with pytest.raises(ValueError, match=r"asof 2024-01-01 is outside the data"):
        regime_snapshot(frame, asof=date(2024, 1, 1))
    late = (last + pd.Timedelta(days=6)).date()
    with pytest.raises(ValueError, match=f"asof {late} is outside the data"):
        regime_snapshot(frame, asof=late)
    # a weekend after the last bar uses the last bar
    weekend = regime_snapshot(frame, asof=(last + pd.Timedelta(days=2)).date())
    assert weekend["asof"] == (last + pd.Timedelta(days=2)).date().isoformat()
    assert max(s["date"] for s in weekend["symbols"].values()) == last.date().isoformat()
    assert regime_snapshot(frame, asof=first.date())["symbols"]
    empty = regime_snapshot(labels_frame().iloc[:0])
    assert empty["asof"] is None and empty["symbols"] == {}


def test_snapshot_missing_values_are_json_null() -> None:
    frame = labels_frame()
    last = frame["date"] == frame["date"].max()
    frame.loc[last & (frame["symbol"] == "QQQ"), ["regime", "vol_short", "flag"]] = np.nan
    snap = regime_snapshot(frame)
    qqq = snap["symbols"]["QQQ"]
    assert qqq["vol_regime"] is None and qqq["vol"]["short"] is None and qqq["flag"] == ""
    assert snap["vol_regime_summary"] == {"low": 1, "normal": 0, "high": 1, "crisis": 0}
    json.dumps(snap, allow_nan=False)


def test_snapshot_rejects_bad_labels() -> None:
    frame = labels_frame()
    with pytest.raises(ValueError, match="vol_ratio"):
        regime_snapshot(frame.drop(columns="vol_ratio"))
    with pytest.raises(ValueError, match="vix_trend"):
        regime_snapshot(frame.assign(model="vix_trend"))
    with pytest.raises(ValueError, match="duplicate"):
        regime_snapshot(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ValueError, match="'BULLISH'"):
        regime_snapshot(frame.assign(regime="BULLISH"))


def test_snapshot_json_round_trip(tmp_path: Path) -> None:
    snap = regime_snapshot(labels_frame())
    path = write_snapshot(snap, tmp_path / "state" / "vol_regimes.json")
    assert path == tmp_path / "state" / "vol_regimes.json"
    assert read_snapshot(path) == snap
    assert json.loads(path.read_text(encoding="utf-8")) == snap
    # overwriting replaces the file; no temp files are left behind
    snap2 = regime_snapshot(labels_frame(), asof="2024-03-26")
    write_snapshot(snap2, path)
    assert read_snapshot(path) == snap2
    assert [p.name for p in path.parent.iterdir()] == ["vol_regimes.json"]


def test_write_snapshot_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_snapshot({"asof": "2024-03-28"}, tmp_path / "snap.json")
    with pytest.raises(ValueError):
        write_snapshot({"bad": float("nan")}, path)
    assert read_snapshot(path) == {"asof": "2024-03-28"}

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("research.regimes.sizing.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_snapshot({"asof": "2024-03-29"}, path)
    assert read_snapshot(path) == {"asof": "2024-03-28"}
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"]  # temp file removed


# ------------------------------------------------------------------------------------------
# badges
# ------------------------------------------------------------------------------------------


def test_badges() -> None:
    assert [badge(r) for r in REGIMES] == ["L", "N", "H", "C"]
    assert badge(None) == MISSING_BADGE == badge(float("nan"))
    assert set(BADGE_COLORS) == {"L", "N", "H", "C", MISSING_BADGE}
    assert all(c.startswith("#") and len(c) == 7 for c in BADGE_COLORS.values())
    with pytest.raises(ValueError, match="'panic'"):
        badge("panic")
