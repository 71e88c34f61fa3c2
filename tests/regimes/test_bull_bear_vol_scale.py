"""``bull_bear_vol`` vol levels by absolute level or by trailing percentile (``vol_scale``):
hand-computed ranks, the per-symbol choice, overrides, errors, the defaults recomputed from the
embedded S&P 500, and the high-vol share on a stock (GOOG) and a commodity (WTI)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.regimes import classify, min_history
from research.regimes.ruleset import DEFAULT_RULESET, Ruleset, RulesetError, load_ruleset
from research.regimes.service import iv_scale_text, summarize

# 2-bar realized vol and momentum, 3-bar SMA, ranks over 5 bars from 3 values on: the first
# realized vol comes with bar 3, its first rank with bar 5 (min_history 2 + 3)
SMALL = dataclasses.replace(
    DEFAULT_RULESET,
    bull_bear_vol=dataclasses.replace(
        DEFAULT_RULESET.bull_bear_vol,
        rv_window=2,
        momentum_window=2,
        trend_window=3,
        percentile_window=5,
        percentile_min_periods=3,
    ),
)
# log returns of bars 1..9; realized vol over 2 returns = |r_t - r_{t-1}| / sqrt(2) x sqrt(252)
# = |r_t - r_{t-1}| x sqrt(126): rows 2..9 get .010 .020 .005 .025 .003 .015 .008 .030 x sqrt(126)
RETURNS = [0.010, 0.000, 0.020, 0.015, -0.010, -0.007, 0.008, 0.000, 0.030]
IV = [0.40, 0.30, 0.50, 0.35, 0.45, 0.38, 0.60, 0.42, 0.03, 0.44]


def _rules(**kw: object) -> Ruleset:
    return dataclasses.replace(SMALL, bull_bear_vol=dataclasses.replace(SMALL.bull_bear_vol, **kw))


def _bars(symbol: str, closes: np.ndarray | None = None) -> pd.DataFrame:
    """Bars of ``closes`` (default: the closes of ``RETURNS``) from 2020-01-01 on."""
    if closes is None:
        closes = 100 * np.exp(np.concatenate([[0.0], np.cumsum(RETURNS)]))
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2020-01-01", periods=len(closes)),
            "symbol": symbol,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1000.0,
        }
    )


def _iv(bars: pd.DataFrame, values: list[float] = IV) -> pd.DataFrame:
    return pd.DataFrame({"date": bars["date"], "symbol": bars["symbol"], "iv": values})


def test_percentile_rule_hand_computed() -> None:
    out = classify("bull_bear_vol", _bars("GOOG"), _iv(_bars("GOOG")), SMALL)
    assert (out["vol_scale"] == "percentile").all()
    # rank = 100 x (window values <= today's) / (window values), window = the last 5 rows:
    # rv row 4 [.010 .020 .005] 1/3; row 5 4/4; row 6 [.010 .020 .005 .025 .003] 1/5;
    # row 7 [.020 .005 .025 .003 .015] 3/5; row 8 [.005 .025 .003 .015 .008] 3/5; row 9 5/5
    expected_rv_rank = [np.nan] * 4 + [100 / 3, 100, 20, 60, 60, 100]
    np.testing.assert_allclose(out["rv_rank"], expected_rv_rank)
    # iv row 2 [.40 .30 .50] 3/3; row 3 2/4; row 4 [.40 .30 .50 .35 .45] 4/5; row 5 3/5;
    # row 6 5/5; row 7 [.35 .45 .38 .60 .42] 3/5; row 8 (.03, the lowest) 1/5; row 9 4/5
    expected_iv_rank = [np.nan, np.nan, 100, 50, 80, 60, 100, 60, 20, 80]
    np.testing.assert_allclose(out["iv_rank"], expected_iv_rank)
    # high: iv_rank >= 70 (rows 4, 6, 9) or rv_rank >= 75 (rows 5, 9) or iv - rv <= -0.05
    # (row 8: 0.03 - 0.008 x sqrt(126) = -0.0598); row 7 (ranks 60 / 60, iv > rv) is low.
    # Bear only on row 6: momentum exp(.028 - .045) - 1 < 0 and the close below its 3-bar SMA
    assert out["iv_rv_spread"].iloc[8] == pytest.approx(0.03 - 0.008 * np.sqrt(126))
    assert list(out["regime"].fillna("-")) == [
        "-",
        "-",
        "-",
        "-",
        "bull_high_vol",
        "bull_high_vol",
        "bear_high_vol",
        "bull_low_vol",
        "bull_high_vol",
        "bull_high_vol",
    ]
    # rows before the first realized-vol rank: no label, flagged warmup (one flag)
    assert list(out["flag"]) == ["warmup"] * 4 + [""] * 6
    assert out["size_multiplier"].iloc[7] == 1.0 and out["size_multiplier"].iloc[6] == 0.4
    # the thresholds are settings: at 85 / 85 only rank-100 days and the spread rule stay high
    strict = classify(
        "bull_bear_vol",
        _bars("GOOG"),
        _iv(_bars("GOOG")),
        _rules(iv_high_percentile=85.0, rv_high_percentile=85.0),
    )
    assert list(strict["vol_dim"].iloc[4:]) == ["low", "high", "high", "low", "high", "high"]


def test_percentile_missing_iv_is_flagged_missing_iv_not_warmup() -> None:
    bars = _bars("GOOG")
    iv = _iv(bars).iloc[:-1]  # no IV on the last date
    out = classify("bull_bear_vol", bars, iv, SMALL)
    assert pd.isna(out["regime"].iloc[-1]) and out["flag"].iloc[-1] == "missing_iv"
    assert np.isnan(out["iv_rank"].iloc[-1]) and out["rv_rank"].iloc[-1] == 100
    assert out["regime"].iloc[4:9].notna().all()


def test_auto_scale_absolute_for_spx_percentile_for_goog() -> None:
    spx, goog = _bars("SPX"), _bars("GOOG")
    out = classify(
        "bull_bear_vol", pd.concat([spx, goog]), pd.concat([_iv(spx), _iv(goog)]), SMALL
    ).set_index("symbol")
    assert (out.loc["SPX", "vol_scale"] == "absolute").all()
    assert (out.loc["GOOG", "vol_scale"] == "percentile").all()
    # SPX absolute: every IV but row 8's is >= 0.20, row 8 high by the spread rule; labels
    # from row 2 (no rank needed)
    assert list(out.loc["SPX", "vol_dim"].fillna("-")) == ["-", "-"] + ["high"] * 8
    assert out.loc["GOOG", "vol_dim"].iloc[7] == "low"
    # the ranks are computed for every symbol, whatever the scale
    np.testing.assert_allclose(out.loc["SPX", "rv_rank"], out.loc["GOOG", "rv_rank"])
    np.testing.assert_allclose(out.loc["SPX", "iv_rank"], out.loc["GOOG", "iv_rank"])


def test_explicit_scale_overrides_the_symbol() -> None:
    spx, goog = _bars("SPX"), _bars("GOOG")
    by_pct = classify("bull_bear_vol", spx, _iv(spx), _rules(vol_scale="percentile"))
    assert (by_pct["vol_scale"] == "percentile").all()
    assert by_pct["vol_dim"].iloc[7] == "low" and by_pct["regime"].iloc[:4].isna().all()
    by_abs = classify("bull_bear_vol", goog, _iv(goog), _rules(vol_scale="absolute"))
    assert (by_abs["vol_scale"] == "absolute").all()
    assert (by_abs["vol_dim"].iloc[2:] == "high").all()
    # points_symbols decides in auto mode
    listed = classify("bull_bear_vol", goog, _iv(goog), _rules(points_symbols=("GOOG",)))
    assert (listed["vol_scale"] == "absolute").all()


def test_min_history_by_scale() -> None:
    assert min_history("bull_bear_vol", SMALL, "GOOG")[0] == 5
    assert min_history("bull_bear_vol", SMALL, "SPX")[0] == 3
    assert min_history("bull_bear_vol", _rules(vol_scale="absolute"), "GOOG")[0] == 3
    assert min_history("bull_bear_vol", symbol="QQQ") == (50, "trend_window 50")
    assert min_history("bull_bear_vol") == (  # auto, any symbol: the percentile need
        146,
        "percentile_min_periods 126 realized vols (+20 bars: the first realized vol needs "
        "rv_window 20 returns)",
    )


def test_bad_vol_scale_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        RulesetError,
        match=r"vol_scale must be one of \['auto', 'absolute', 'percentile'\], got 'points'",
    ):
        dataclasses.replace(DEFAULT_RULESET.bull_bear_vol, vol_scale="points")
    path = tmp_path / "rules.yaml"
    path.write_text("ruleset_id: x\nbull_bear_vol:\n  vol_scale: Absolute\n")
    with pytest.raises(RulesetError, match=r"rules.yaml: bull_bear_vol\.vol_scale must be one of"):
        load_ruleset(path)
    path.write_text("ruleset_id: x\nbull_bear_vol:\n  vol_scale: 1\n")
    with pytest.raises(RulesetError, match=r"bull_bear_vol\.vol_scale: expected a non-empty"):
        load_ruleset(path)
    for text, message in [
        ("iv_high_percentile: 120", "iv_high_percentile and rv_high_percentile must be in 0..100"),
        ("percentile_min_periods: 300", r"bull_bear_vol: need 1 <= percentile_min_periods"),
    ]:
        path.write_text(f"ruleset_id: x\nbull_bear_vol:\n  {text}\n")
        with pytest.raises(RulesetError, match=message):
            load_ruleset(path)


def test_scale_settings_load_from_a_ruleset_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "ruleset_id: x\nbull_bear_vol:\n  vol_scale: percentile\n  points_symbols: [SPX, GC]\n"
        "  iv_high_percentile: 80\n  rv_high_percentile: 90\n  percentile_window: 500\n"
    )
    r = load_ruleset(path).bull_bear_vol
    assert (r.vol_scale, r.points_symbols, r.percentile_window) == (
        "percentile",
        ("SPX", "GC"),
        500,
    )
    assert (r.iv_high_percentile, r.rv_high_percentile) == (80.0, 90.0)
    assert r.percentile_min_periods == 126 and r.iv_high == 0.20  # untouched defaults


def test_scale_text_and_summary_name_each_symbols_scale() -> None:
    spx, goog = _bars("SPX"), _bars("GOOG")
    bars, iv = pd.concat([spx, goog]), pd.concat([_iv(spx), _iv(goog)])
    out = classify("bull_bear_vol", bars, iv, SMALL)
    text = "bull_bear_vol vol thresholds: GOOG by trailing 5-day percentile; SPX by absolute level"
    assert iv_scale_text(out, SMALL) == text
    assert text in summarize(out, SMALL)
    # vix_trend still says its own; both models' labels together give both sentences
    vix_rules = dataclasses.replace(
        SMALL,
        vix_trend=dataclasses.replace(SMALL.vix_trend, buckets_only=True, percentile_min_periods=3),
    )
    vix = classify("vix_trend", bars, iv, vix_rules)
    vix_text = "vix_trend IV buckets: GOOG by trailing 252-day IV percentile; SPX by VIX points"
    assert iv_scale_text(vix, vix_rules) == vix_text
    assert iv_scale_text(pd.concat([vix, out]), vix_rules) == f"{vix_text}. {text}"
    # other models: nothing
    long = _bars("GOOG", np.linspace(100, 110, 80))
    assert iv_scale_text(classify("vol_ratio", long)) == ""


# --- real data ------------------------------------------------------------------------------


def test_default_percentiles_are_how_often_spx_sat_below_the_absolute_levels() -> None:
    from research.data import market
    from research.data.iv import resolve_iv
    from research.regimes.base import log_returns, realized_vol

    bars = market.embedded_bars(["SPX"])
    resolution = resolve_iv(bars, market.load_iv_indexes(None))
    iv = resolution.per_symbol(bars)
    # the VIX from 2014-01-03, the proxy mapped on it before (from 1999-02-04, GARCH warm-up)
    assert iv["source"].value_counts().to_dict() == {"proxy": 3752, "index": 1257}
    assert str(iv["date"].min().date()) == "1999-02-04"
    rv = realized_vol(log_returns(bars["close"]), 20).dropna()
    r = DEFAULT_RULESET.bull_bear_vol
    iv_below = (iv["iv"] < r.iv_high).mean() * 100
    rv_below = (rv < r.rv_high).mean() * 100
    assert (len(iv), len(rv)) == (5009, 5011)
    assert iv_below == pytest.approx(70.45, abs=0.005)
    assert rv_below == pytest.approx(75.03, abs=0.005)
    assert (r.iv_high_percentile, r.rv_high_percentile) == (round(iv_below), round(rv_below))


@pytest.mark.parametrize(
    ("csv", "absolute_share", "percentile_share", "labelled"),
    [("goog_csv", 100.0, 30.18, 2001), ("wti_csv", 98.42, 35.12, 8174)],
)
def test_stock_and_commodity_are_no_longer_always_high_vol(
    request: pytest.FixtureRequest,
    csv: str,
    absolute_share: float,
    percentile_share: float,
    labelled: int,
) -> None:
    """IV: the symbol's own uncalibrated GARCH forecast (no IV file given), as every command."""
    from research.data.overview import load_market

    data = load_market(request.getfixturevalue(csv))
    absolute = dataclasses.replace(DEFAULT_RULESET.bull_bear_vol, vol_scale="absolute")
    by_abs = classify(
        "bull_bear_vol",
        data.bars,
        data.iv,
        dataclasses.replace(DEFAULT_RULESET, bull_bear_vol=absolute),
    )
    auto = classify("bull_bear_vol", data.bars, data.iv)
    assert (auto["vol_scale"] == "percentile").all()

    def high_share(out: pd.DataFrame) -> float:
        return float((out["vol_dim"].dropna() == "high").mean() * 100)

    assert high_share(by_abs) == pytest.approx(absolute_share, abs=0.005)
    assert high_share(auto) == pytest.approx(percentile_share, abs=0.005)
    assert auto["regime"].notna().sum() == labelled
    assert set(auto["regime"].dropna()) == {
        "bull_low_vol",
        "bull_high_vol",
        "bear_low_vol",
        "bear_high_vol",
    }
