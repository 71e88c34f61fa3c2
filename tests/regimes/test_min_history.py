"""Minimum history: every model states the bars it needs, labels a row with exactly that many
and none with one fewer; ``classify`` refuses shorter input with a clear message. Real data:
the embedded SPX bars from 2014-01-03 (the first VIX close) and the VIX."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from research.data import market
from research.regimes import classify, get_model, min_history
from research.regimes.ruleset import DEFAULT_RULESET, Ruleset

HINT = "use a longer history or shorter windows in a ruleset (--ruleset)"


@pytest.fixture(scope="module")
def spx() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = market.load_bars(symbols=["SPX"], start="2014-01-03")
    return bars, market.load_iv_index()


def _as(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return frame.assign(symbol=symbol)


def _iv_rows(bars: pd.DataFrame, iv: pd.DataFrame) -> pd.Series:
    return bars[["date", "symbol"]].merge(iv, on=["date", "symbol"], how="left")["iv"]


def _labelled(out: pd.DataFrame) -> pd.Series:
    """Rows with a real label (vol_ratio's ``insufficient_data`` fallback is not one)."""
    return out["regime"].notna() & ~out["flag"].str.contains("insufficient_data")


BUCKETS_ONLY = dataclasses.replace(
    DEFAULT_RULESET, vix_trend=dataclasses.replace(DEFAULT_RULESET.vix_trend, buckets_only=True)
)

CASES = [
    # model, symbol, ruleset, bars needed, reason
    ("vix_trend", "SPX", DEFAULT_RULESET, 50, "trend_window 50"),
    ("vix_trend", "GOOG", DEFAULT_RULESET, 126, "percentile_min_periods 126"),
    ("vol_ratio", "SPX", DEFAULT_RULESET, 61, "long_window_bars 60"),
    ("bull_bear_vol", "SPX", DEFAULT_RULESET, 50, "trend_window 50"),
    # percentile scale: the first realized vol with bar 21, its rank 125 bars later
    ("bull_bear_vol", "GOOG", DEFAULT_RULESET, 146, "percentile_min_periods 126 realized vols"),
    ("tags", "SPX", DEFAULT_RULESET, 61, "long_window 60"),
    ("markov", "SPX", DEFAULT_RULESET, 501, "min_train_bars 500"),
]


@pytest.mark.parametrize(("model", "symbol", "rules", "need", "reason"), CASES)
def test_exactly_min_history_labels_a_row_and_one_fewer_none(
    spx: tuple[pd.DataFrame, pd.DataFrame],
    model: str,
    symbol: str,
    rules: Ruleset,
    need: int,
    reason: str,
) -> None:
    bars, iv = _as(spx[0], symbol), _as(spx[1], symbol)
    got_need, got_reason = min_history(model, rules, symbol)
    assert got_need == need and got_reason.startswith(reason)

    enough = bars.iloc[:need].reset_index(drop=True)
    out = classify(model, enough, iv, rules)
    assert _labelled(out).sum() >= 1 and _labelled(out).iloc[-1]

    short = bars.iloc[: need - 1].reset_index(drop=True)
    spec = get_model(model)
    direct = spec.compute(short, _iv_rows(short, iv) if spec.uses_iv else None, rules)
    assert not _labelled(direct).any()
    first, last = short["date"].iloc[0].date(), short["date"].iloc[-1].date()
    expected = (
        f"model '{model}': too little history to label any row: {symbol} has {need - 1} bars "
        f"({first}..{last}), needs {need} ({got_reason}); {HINT}"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        classify(model, short, iv, rules)


def test_buckets_only_vix_trend_needs_one_bar(spx: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, iv = spx
    assert min_history("vix_trend", BUCKETS_ONLY, "SPX") == (1, "one bar")
    out = classify("vix_trend", bars.iloc[:1], iv, BUCKETS_ONLY)
    assert out["regime"].tolist() == ["LOW_VOL"]  # VIX 13.76 on 2014-01-03
    # on the percentile scale the first rank still needs percentile_min_periods IVs
    assert min_history("vix_trend", BUCKETS_ONLY, "GOOG") == (126, "percentile_min_periods 126")


def test_only_the_short_symbols_are_named(spx: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, iv = spx
    both = pd.concat([bars.iloc[:130], _as(bars.iloc[:100], "GOOG")])
    ivs = pd.concat([iv, _as(iv, "GOOG")])
    with pytest.raises(ValueError) as err:
        classify("vix_trend", both, ivs)
    message = str(err.value)
    assert "GOOG has 100 bars (2014-01-03..2014-05-28), needs 126" in message
    assert "SPX" not in message and message.endswith(HINT)
    # SPX by VIX points needs only its 50-bar SMA
    out = classify("vix_trend", both.loc[both["symbol"] == "SPX"].iloc[:50], iv)
    assert out["regime"].notna().sum() == 1


def test_min_history_follows_the_ruleset() -> None:
    def with_(block: str, **kw: object) -> Ruleset:
        return dataclasses.replace(
            DEFAULT_RULESET, **{block: dataclasses.replace(getattr(DEFAULT_RULESET, block), **kw)}
        )

    assert min_history("vix_trend") == (126, "percentile_min_periods 126")  # any symbol
    assert min_history("vix_trend", symbol="QQQ") == (50, "trend_window 50")
    assert min_history("vix_trend", with_("vix_trend", iv_scale="points"))[0] == 50
    assert min_history("vix_trend", with_("vix_trend", trend_window=200), "GOOG")[0] == 200
    assert min_history("vol_ratio", with_("vol_ratio", long_window_bars=100))[0] == 101
    assert min_history("bull_bear_vol", with_("bull_bear_vol", trend_window=10), "SPX") == (
        21,
        "rv_window 20 (+1 bar: 20 returns)",
    )
    assert min_history("bull_bear_vol", with_("bull_bear_vol", momentum_window=90), "SPX")[0] == 91
    assert min_history("bull_bear_vol")[0] == 146  # any symbol: the percentile scale
    assert min_history("bull_bear_vol", with_("bull_bear_vol", vol_scale="absolute"))[0] == 50
    assert min_history("bull_bear_vol", with_("bull_bear_vol", rv_window=30), "GOOG")[0] == 156
    assert min_history("bull_bear_vol", with_("bull_bear_vol", trend_window=200), "GOOG")[0] == 200
    assert min_history("tags", with_("tags", efficiency_window=80)) == (
        81,
        "efficiency_window 80 (+1 bar: 80 changes)",
    )
    assert min_history("markov", with_("markov", min_train_bars=120))[0] == 121
    with pytest.raises(ValueError, match="unknown regime model"):
        min_history("hmm")
