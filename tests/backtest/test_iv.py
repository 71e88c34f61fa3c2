"""Tests for research.backtest.iv.underlying_iv: sources, scaling, percentile, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from research.backtest.iv import underlying_iv
from research.data import market

COLUMNS = ["date", "symbol", "atm_iv", "iv_source", "vix", "iv_percentile"]
DATES = pd.bdate_range("2020-01-01", periods=30)


def _bars(symbol: str, logrets: list[float] | np.ndarray, start: float = 100.0) -> pd.DataFrame:
    """Bars whose close-to-close log returns are exactly ``logrets`` (first bar has none)."""
    closes = start * np.exp(np.concatenate([[0.0], np.cumsum(logrets)]))
    n = len(closes)
    return pd.DataFrame(
        {
            "date": DATES[:n],
            "symbol": symbol,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )


def _alternating(size: float, n: int) -> np.ndarray:
    return size * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def _iv(symbol: str, values: list[float], sources: list[str], offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": DATES[offset : offset + len(values)],
            "symbol": symbol,
            "iv": values,
            "source": sources,
        }
    )


def _rows(out: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return out.loc[out["symbol"] == symbol].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Anchor
# --------------------------------------------------------------------------------------------


def test_anchor_passthrough_with_sources_and_gaps() -> None:
    n = 12
    bars = _bars("SPX", _alternating(0.01, n - 1))
    values = [0.10 + 0.01 * i for i in range(n)]
    sources = ["proxy"] * 5 + ["index"] * (n - 5)
    iv = _iv("SPX", values, sources).drop(index=7)  # no IV on day 7
    out = underlying_iv(bars, iv, pct_window=5, pct_min_periods=3)

    assert list(out.columns) == COLUMNS
    assert len(out) == n
    pdt.assert_series_equal(out["date"], bars["date"], check_names=False)
    expected_iv = pd.Series(values)
    expected_iv[7] = np.nan
    np.testing.assert_array_equal(out["atm_iv"], expected_iv)
    expected_src = sources.copy()
    expected_src[7] = "missing"
    assert out["iv_source"].tolist() == expected_src
    np.testing.assert_allclose(out["vix"], expected_iv * 100, rtol=1e-15)


def test_iv_without_source_column_counts_as_index() -> None:
    bars = _bars("SPX", _alternating(0.01, 4))
    iv = _iv("SPX", [0.2] * 5, ["x"] * 5).drop(columns="source")
    out = underlying_iv(bars, iv)
    assert out["iv_source"].tolist() == ["index"] * 5


# --------------------------------------------------------------------------------------------
# Scaled symbols
# --------------------------------------------------------------------------------------------


def test_ixic_scaled_by_realized_vol_ratio() -> None:
    n, w = 16, 4
    bars = pd.concat(
        [_bars("SPX", _alternating(0.01, n - 1)), _bars("IXIC", _alternating(0.02, n - 1))]
    )
    sources = ["proxy"] * 8 + ["index"] * (n - 8)
    iv = _iv("SPX", [0.15] * n, sources)
    out = underlying_iv(bars, iv, rv_window=w)
    ixic = _rows(out, "IXIC")
    spx = _rows(out, "SPX")

    # rv needs w returns: the first w bars (indices 0..w-1) have none
    assert ixic["atm_iv"].iloc[:w].isna().all()
    assert (ixic["iv_source"].iloc[:w] == "missing").all()
    # |r| = 2% vs 1% every day -> ratio 2
    np.testing.assert_allclose(ixic["atm_iv"].iloc[w:], 0.30, rtol=1e-12)
    assert ixic["iv_source"].iloc[w:8].eq("scaled:proxy").all()
    assert ixic["iv_source"].iloc[8:].eq("scaled:index").all()
    # vix is the anchor's, on every row of every symbol
    np.testing.assert_allclose(ixic["vix"], 15.0, rtol=1e-15)
    np.testing.assert_array_equal(ixic["vix"], spx["vix"])
    assert spx["iv_source"].tolist() == sources


def test_scaling_ratio_tracks_trailing_window() -> None:
    # IXIC: |r| = 1% for 6 returns then 3%; rv_window 2. At the first 3% return the window holds
    # one 1% and one 3% return: rv_ndx / rv_spx = sqrt((1 + 9) / 2) = sqrt(5).
    n = 12
    ixic_r = np.concatenate([_alternating(0.01, 6), _alternating(0.03, n - 1 - 6)])
    bars = pd.concat([_bars("SPX", _alternating(0.01, n - 1)), _bars("IXIC", ixic_r)])
    anchor = [0.10 + 0.005 * i for i in range(n)]
    iv = _iv("SPX", anchor, ["index"] * n)
    ixic = _rows(underlying_iv(bars, iv, rv_window=2, ratio_bounds=(0.5, 10.0)), "IXIC")
    expected = np.array(anchor) * np.array(
        [np.nan, np.nan] + [1.0] * 5 + [math.sqrt(5.0)] + [3.0] * 4
    )
    np.testing.assert_allclose(ixic["atm_iv"], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("size", "bounds", "ratio"),
    [
        (0.04, (0.5, 3.0), 3.0),  # raw ratio 4 -> capped at 3
        (0.0025, (0.5, 3.0), 0.5),  # raw ratio 0.25 -> floored at 0.5
        (0.04, (0.8, 1.5), 1.5),
        (0.0025, (0.8, 1.5), 0.8),
        (0.012, (0.8, 1.5), 1.2),  # inside the bounds: unclipped
    ],
)
def test_ratio_bounds_clip(size: float, bounds: tuple[float, float], ratio: float) -> None:
    n = 10
    bars = pd.concat(
        [_bars("SPX", _alternating(0.01, n - 1)), _bars("IXIC", _alternating(size, n - 1))]
    )
    iv = _iv("SPX", [0.2] * n, ["index"] * n)
    ixic = _rows(underlying_iv(bars, iv, rv_window=3, ratio_bounds=bounds), "IXIC")
    np.testing.assert_allclose(ixic["atm_iv"].iloc[3:], 0.2 * ratio, rtol=1e-12)


def test_published_ixic_index_used_when_present() -> None:
    n = 10
    bars = pd.concat(
        [_bars("SPX", _alternating(0.01, n - 1)), _bars("IXIC", _alternating(0.02, n - 1))]
    )
    spx_iv = _iv("SPX", [0.2] * n, ["index"] * n)
    # IXIC: a published index on days 0-1 and 6-7, a proxy on days 2-5 (ignored: scaled instead)
    ixic_iv = pd.concat(
        [
            _iv("IXIC", [0.33, 0.34], ["index"] * 2, offset=0),
            _iv("IXIC", [0.9] * 4, ["proxy"] * 4, offset=2),
            _iv("IXIC", [0.35, 0.36], ["index"] * 2, offset=6),
        ]
    )
    out = underlying_iv(bars, pd.concat([spx_iv, ixic_iv]), rv_window=3)
    ixic = _rows(out, "IXIC")
    assert ixic["iv_source"].tolist() == [
        "index",
        "index",
        "missing",  # rv needs 3 returns
        "scaled:index",
        "scaled:index",
        "scaled:index",
        "index",
        "index",
        "scaled:index",
        "scaled:index",
    ]
    np.testing.assert_allclose(
        ixic["atm_iv"],
        [0.33, 0.34, np.nan, 0.4, 0.4, 0.4, 0.35, 0.36, 0.4, 0.4],
        rtol=1e-12,
    )
    np.testing.assert_allclose(ixic["vix"], 20.0)


def test_rows_follow_each_symbols_bars() -> None:
    n = 10
    spx = _bars("SPX", _alternating(0.01, n - 1))
    ixic = _bars("IXIC", _alternating(0.02, n - 1)).drop(index=[4])  # IXIC closed on day 4
    iv = pd.concat([_iv("SPX", [0.2] * (n + 3), ["index"] * (n + 3)), _iv("XYZ", [0.5], ["index"])])
    # shuffled input: output is sorted by symbol, date
    bars = pd.concat([ixic, spx]).sample(frac=1.0, random_state=0)
    out = underlying_iv(bars, iv, rv_window=2)
    assert len(out) == len(spx) + len(ixic)
    assert out["symbol"].tolist() == ["IXIC"] * len(ixic) + ["SPX"] * len(spx)
    assert _rows(out, "IXIC")["date"].tolist() == ixic["date"].tolist()
    assert _rows(out, "SPX")["date"].tolist() == spx["date"].tolist()


def test_anchor_iv_missing_leaves_scaled_symbol_missing() -> None:
    n = 8
    bars = pd.concat(
        [_bars("SPX", _alternating(0.01, n - 1)), _bars("IXIC", _alternating(0.02, n - 1))]
    )
    iv = _iv("SPX", [0.2] * n, ["index"] * n).drop(index=5)
    ixic = _rows(underlying_iv(bars, iv, rv_window=2), "IXIC")
    assert np.isnan(ixic["atm_iv"].iloc[5]) and ixic["iv_source"].iloc[5] == "missing"
    assert np.isnan(ixic["vix"].iloc[5])
    assert ixic["atm_iv"].iloc[[4, 6]].tolist() == pytest.approx([0.4, 0.4])


# --------------------------------------------------------------------------------------------
# Percentile
# --------------------------------------------------------------------------------------------


def test_percentile_hand_computed() -> None:
    values = [0.20, 0.10, 0.30, 0.20, 0.25, 0.05, 0.40, 0.99, 0.22]
    n = len(values)
    bars = _bars("SPX", _alternating(0.01, n - 1))
    iv = _iv("SPX", values, ["index"] * n).drop(index=7)  # day 7 has no IV
    out = underlying_iv(bars, iv, pct_window=5, pct_min_periods=3)
    # share of the last 5 rows' non-NaN values <= today's, x 100
    expected = [
        np.nan,  # 1 value
        np.nan,  # 2 values
        100.0,  # [.2 .1 .3]: 3/3
        75.0,  # [.2 .1 .3 .2] <= .2: 3/4
        80.0,  # [.2 .1 .3 .2 .25] <= .25: 4/5
        20.0,  # [.1 .3 .2 .25 .05] <= .05: 1/5
        100.0,  # [.3 .2 .25 .05 .4]: 5/5
        np.nan,  # no IV today
        50.0,  # [.25 .05 .4 nan .22] <= .22: 2/4
    ]
    np.testing.assert_allclose(out["iv_percentile"], expected, rtol=1e-12)


def test_percentile_default_needs_20_values() -> None:
    n = 30
    bars = _bars("SPX", _alternating(0.01, n - 1))
    iv = _iv("SPX", list(np.linspace(0.1, 0.3, n)), ["index"] * n)
    pct = underlying_iv(bars, iv)["iv_percentile"]
    assert pct.iloc[:19].isna().all()
    np.testing.assert_allclose(pct.iloc[19:], 100.0)  # increasing series: always the maximum


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def test_rejects_bad_input() -> None:
    spx = _bars("SPX", _alternating(0.01, 5))
    ixic = _bars("IXIC", _alternating(0.01, 5))
    iv = _iv("SPX", [0.2] * 6, ["index"] * 6)
    with pytest.raises(ValueError, match="anchor"):
        underlying_iv(ixic, iv)
    with pytest.raises(ValueError, match="share a"):
        underlying_iv(pd.concat([spx, spx.iloc[:1]]), iv)
    with pytest.raises(ValueError, match="share a"):
        underlying_iv(spx, pd.concat([iv, iv.iloc[:1]]))
    with pytest.raises(ValueError, match="missing columns"):
        underlying_iv(spx.drop(columns="close"), iv)
    with pytest.raises(ValueError, match="ratio_bounds"):
        underlying_iv(spx, iv, ratio_bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="pct_min_periods"):
        underlying_iv(spx, iv, pct_window=5)


# --------------------------------------------------------------------------------------------
# Real data: sources and no look-ahead
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Embedded SPX/IXIC bars from 2013 and iv_with_proxy (VIX from 2014, GARCH proxy before)."""
    bars = market.load_bars(start="2013-01-01")
    index = market.load_iv_index()
    iv = market.iv_with_proxy(bars, index, market.fit_iv_proxy(bars, index))
    return bars, iv


def test_real_data_sources(real: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, iv = real
    out = underlying_iv(bars, iv)
    assert len(out) == len(bars)
    spx, ixic = _rows(out, "SPX"), _rows(out, "IXIC")
    assert set(spx["iv_source"]) == {"index", "proxy", "missing"}
    assert set(ixic["iv_source"]) == {"scaled:index", "scaled:proxy", "missing"}
    vix_days = spx["date"] >= pd.Timestamp("2014-01-03")
    assert spx.loc[vix_days, "iv_source"].eq("index").all()
    assert (
        ixic.loc[ixic["date"] >= pd.Timestamp("2014-01-03"), "iv_source"].eq("scaled:index").all()
    )
    # the anchor column is the SPX IV in points on every symbol's rows
    merged = ixic.merge(spx, on="date", suffixes=("_ndx", "_spx"))
    np.testing.assert_allclose(merged["vix_ndx"], merged["atm_iv_spx"] * 100, rtol=1e-15)
    ratio = (merged["atm_iv_ndx"] / merged["atm_iv_spx"]).dropna()
    assert ratio.between(0.5, 3.0).all() and ratio.median() > 1.0  # IXIC is the more volatile
    pct = out["iv_percentile"].dropna()
    assert pct.between(0, 100, inclusive="right").all()


@pytest.mark.parametrize("cut", ["2013-06-28", "2013-12-31", "2014-01-03", "2016-02-11"])
def test_prefix_invariance_on_real_data(real: tuple[pd.DataFrame, pd.DataFrame], cut: str) -> None:
    bars, iv = real
    full = underlying_iv(bars, iv)
    c = pd.Timestamp(cut)
    part = underlying_iv(bars.loc[bars["date"] <= c], iv.loc[iv["date"] <= c])
    expected = full.loc[full["date"] <= c].reset_index(drop=True)
    pdt.assert_frame_equal(part, expected, check_exact=True)
    assert part["atm_iv"].notna().sum() > 0


@pytest.mark.parametrize("cut", ["2003-06-30", "2008-10-15", "2015-03-02"])
def test_iv_rebuilt_from_truncated_history_is_the_same(cut: str) -> None:
    """The IV each backtest day sees — published index, GARCH proxy, VIX-scaled IXIC, the
    percentile — rebuilt from bars and VIX cut at ``cut`` equals the full history's up to
    ``cut`` (the proxy map's two coefficients held fixed: the documented exception)."""
    bars = market.load_bars()
    vix = market.load_iv_index()
    fit = market.fit_iv_proxy(market.embedded_bars(["SPX"]), market.embedded_vix())
    full = underlying_iv(bars, market.iv_with_proxy(bars, vix, fit))
    end = pd.Timestamp(cut)
    bars_cut = bars.loc[bars["date"] <= end].reset_index(drop=True)
    vix_cut = vix.loc[vix["date"] <= end].reset_index(drop=True)
    part = underlying_iv(bars_cut, market.iv_with_proxy(bars_cut, vix_cut, fit))
    want = full.loc[full["date"] <= end].reset_index(drop=True)
    assert len(part) == len(want) > 2000
    pdt.assert_frame_equal(part, want, check_exact=False, rtol=1e-12, atol=0.0)
