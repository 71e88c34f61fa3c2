"""Tests for research.data.market: embedded arch data, user files, volatility features, IV proxy.

Expensive things (GARCH over the 20-year SPX history, the proxy fit, the full IV table) are
computed once per module in fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from arch import arch_model
from arch.data import nasdaq, sp500, vix

from research.data import market
from research.data.contracts import validate
from research.data.market import (
    IvProxyFit,
    coverage,
    embedded_bars,
    embedded_vix,
    fit_iv_proxy,
    garch_forecast_vol,
    iv_with_proxy,
    load_bars,
    load_iv_index,
    realized_vol_features,
    yearly_summary,
)

SQRT252 = np.sqrt(252.0)


# --------------------------------------------------------------------------------------------
# Module fixtures (computed once)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return embedded_bars()


@pytest.fixture(scope="module")
def vix_iv() -> pd.DataFrame:
    return embedded_vix()


@pytest.fixture(scope="module")
def spx_bars(bars: pd.DataFrame) -> pd.DataFrame:
    return bars.loc[bars["symbol"] == "SPX"].reset_index(drop=True)


@pytest.fixture(scope="module")
def spx_features(spx_bars: pd.DataFrame) -> pd.DataFrame:
    """realized_vol_features of SPX alone (includes the full-history GARCH forecast)."""
    return realized_vol_features(spx_bars)


@pytest.fixture(scope="module")
def spx_pct_returns(spx_bars: pd.DataFrame) -> np.ndarray:
    """The returns garch_forecast_vol models: ret[i] = 100 * log(close[i+1] / close[i])."""
    return np.diff(100 * np.log(spx_bars["close"].to_numpy(float)))


@pytest.fixture(scope="module")
def proxy_fit(bars: pd.DataFrame, vix_iv: pd.DataFrame) -> IvProxyFit:
    return fit_iv_proxy(bars, vix_iv)


@pytest.fixture(scope="module")
def iv_all(bars: pd.DataFrame, vix_iv: pd.DataFrame, proxy_fit: IvProxyFit) -> pd.DataFrame:
    return iv_with_proxy(bars, vix_iv, proxy_fit)


@pytest.fixture(scope="module")
def overlap_design(proxy_fit: IvProxyFit, spx_features: pd.DataFrame) -> pd.DataFrame:
    """fit.overlap with the garch22 feature merged back in (the overlap does not carry it)."""
    merged = proxy_fit.overlap.merge(
        spx_features[["date", "garch22"]], on="date", how="left", validate="one_to_one"
    )
    assert merged["garch22"].notna().all()
    return merged


def _bars_frame(symbol: str, dates: list[str], closes: list[float]) -> pd.DataFrame:
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(dates),
            "symbol": symbol,
            "open": c,
            "high": c * 1.01,
            "low": c * 0.99,
            "close": c,
            "volume": 1000.0,
        }
    )


def _closes_from_log_returns(log_returns: np.ndarray, first: float = 100.0) -> np.ndarray:
    return first * np.exp(np.concatenate([[0.0], np.cumsum(log_returns)]))


def _synthetic_bars(
    symbol: str, closes: np.ndarray, first_date: str = "2020-01-01"
) -> pd.DataFrame:
    dates = pd.bdate_range(first_date, periods=len(closes))
    return _bars_frame(symbol, [d.strftime("%Y-%m-%d") for d in dates], list(closes))


# --------------------------------------------------------------------------------------------
# embedded_bars / embedded_vix
# --------------------------------------------------------------------------------------------


def test_embedded_bars_rows_dates_and_dtypes(bars: pd.DataFrame) -> None:
    assert list(bars.columns) == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert bars["date"].dtype == np.dtype("datetime64[ns]")
    for col in ("open", "high", "low", "close", "volume"):
        assert bars[col].dtype == np.dtype("float64")
    assert bars.groupby("symbol").size().to_dict() == {"IXIC": 5031, "SPX": 5031}
    # default order: SPX block first, then IXIC, each in date order
    assert bars["symbol"].iloc[0] == "SPX" and bars["symbol"].iloc[-1] == "IXIC"
    for symbol in ("SPX", "IXIC"):
        dates = bars.loc[bars["symbol"] == symbol, "date"]
        assert dates.is_monotonic_increasing
        assert dates.iloc[0] == pd.Timestamp("1999-01-04")
        assert dates.iloc[-1] == pd.Timestamp("2018-12-31")


def test_embedded_bars_sp500_reference_returns(spx_bars: pd.DataFrame) -> None:
    close = spx_bars.set_index("date")["close"]
    # Published S&P 500 closes: 1213.27 -> 1106.42 (29 Sep 2008, TARP vote), 899.22 -> 1003.35
    # (13 Oct 2008).
    assert close.loc["2008-09-26"] == pytest.approx(1213.27, abs=1e-4)
    assert close.loc["2008-09-29"] == pytest.approx(1106.42, abs=1e-4)
    assert close.loc["2008-10-10"] == pytest.approx(899.22, abs=1e-4)
    assert close.loc["2008-10-13"] == pytest.approx(1003.35, abs=1e-4)
    simple = close.pct_change()
    assert simple.loc["2008-09-29"] == pytest.approx(-0.0881, abs=5e-5)  # -8.81%
    assert simple.loc["2008-10-13"] == pytest.approx(0.1158, abs=5e-5)  # +11.58%
    # 13 Oct 2008 is the best day of the 20 years; 29 Sep 2008 the third worst (after 15 Oct
    # 2008, -9.03%, and 1 Dec 2008, -8.93%)
    assert simple.idxmax() == pd.Timestamp("2008-10-13")
    assert list(simple.nsmallest(3).index.strftime("%Y-%m-%d")) == [
        "2008-10-15",
        "2008-12-01",
        "2008-09-29",
    ]
    assert simple.loc["2008-10-15"] == pytest.approx(-0.0903, abs=5e-5)


@pytest.mark.parametrize(
    ("symbol", "raw_loader"), [("SPX", sp500.load), ("IXIC", nasdaq.load)], ids=["SPX", "IXIC"]
)
def test_embedded_bars_column_mapping(bars: pd.DataFrame, symbol: str, raw_loader) -> None:
    raw = raw_loader()
    ours = bars.loc[bars["symbol"] == symbol].set_index("date")
    for day in ("1999-01-04", "2008-09-29", "2013-06-03", "2018-12-31"):
        row, ref = ours.loc[day], raw.loc[day]
        assert row["open"] == ref["Open"]
        assert row["high"] == ref["High"]
        assert row["low"] == ref["Low"]
        assert row["close"] == ref["Close"]
        assert row["volume"] == float(ref["Volume"])
    # a mix-up of open/high/low would show: on 2008-09-29 SPX opened at its high
    if symbol == "SPX":
        assert ours.loc["2008-09-29", "high"] == pytest.approx(1209.07, abs=1e-4)
        assert ours.loc["2008-09-29", "low"] == pytest.approx(1106.42, abs=1e-4)


def test_embedded_bars_symbol_subset_and_unknown_symbol() -> None:
    ixic = embedded_bars(("IXIC",))
    assert set(ixic["symbol"]) == {"IXIC"} and len(ixic) == 5031
    with pytest.raises(ValueError, match=r"'RUT'.*\['IXIC', 'SPX'\]"):
        embedded_bars(("SPX", "RUT"))


def test_embedded_vix_drops_holiday_rows(vix_iv: pd.DataFrame) -> None:
    raw = vix.load()
    assert len(raw) == 1305 and int(raw["vix"].isna().sum()) == 46
    assert len(vix_iv) == 1259
    assert list(vix_iv.columns) == ["date", "symbol", "iv", "source"]
    assert vix_iv["date"].dtype == np.dtype("datetime64[ns]")
    assert vix_iv["iv"].notna().all()
    assert set(vix_iv["symbol"]) == {"SPX"} and set(vix_iv["source"]) == {"index"}
    holidays = set(raw.index[raw["vix"].isna()])
    assert pd.Timestamp("2014-01-20") in holidays  # MLK day
    assert not holidays & set(vix_iv["date"])
    by_date = vix_iv.set_index("date")["iv"]
    assert by_date.loc["2014-01-03"] == 0.1376  # VIX 13.76
    assert vix_iv["date"].iloc[0] == pd.Timestamp("2014-01-03")
    assert vix_iv["date"].iloc[-1] == pd.Timestamp("2019-01-03")


# --------------------------------------------------------------------------------------------
# load_bars / load_iv_index
# --------------------------------------------------------------------------------------------


@pytest.fixture
def user_bars_csv(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """SPY/QQQ bars interleaved by date (as an export would have them)."""
    rows = pd.DataFrame(
        {
            "date": ["2021-03-01", "2021-03-01", "2021-03-02", "2021-03-02", "2021-03-03"],
            "symbol": ["SPY", "QQQ", "SPY", "QQQ", "SPY"],
            "open": [390.0, 320.0, 391.0, 321.0, 392.0],
            "high": [392.0, 322.5, 393.0, 323.0, 394.0],
            "low": [388.5, 318.0, 389.0, 319.5, 390.0],
            "close": [391.5, 321.0, 389.5, 320.0, 393.0],
            "volume": [1e6, 2e6, 1.1e6, 2.1e6, 1.2e6],
        }
    )
    path = tmp_path / "bars.csv"
    rows.to_csv(path, index=False)
    return path, rows


def test_load_bars_user_csv_round_trip(user_bars_csv: tuple[Path, pd.DataFrame]) -> None:
    path, rows = user_bars_csv
    out = load_bars(path)
    assert out["date"].dtype == np.dtype("datetime64[ns]")
    assert list(out["symbol"]) == ["QQQ", "QQQ", "SPY", "SPY", "SPY"]  # sorted symbol, date
    assert list(out["close"]) == [321.0, 320.0, 391.5, 389.5, 393.0]
    expected = rows.assign(date=pd.to_datetime(rows["date"]))
    expected = expected.sort_values(["symbol", "date"]).reset_index(drop=True)
    pdt.assert_frame_equal(out, expected, check_dtype=False)


def test_load_bars_symbols_and_inclusive_dates(user_bars_csv: tuple[Path, pd.DataFrame]) -> None:
    path, _ = user_bars_csv
    qqq = load_bars(path, symbols=["QQQ"])
    assert list(qqq["symbol"]) == ["QQQ", "QQQ"]
    assert list(qqq["close"]) == [321.0, 320.0]
    clipped = load_bars(path, start="2021-03-02", end="2021-03-03")
    assert list(zip(clipped["symbol"], clipped["date"].dt.day, strict=True)) == [
        ("QQQ", 2),
        ("SPY", 2),
        ("SPY", 3),
    ]
    one_day = load_bars(path, symbols=("SPY",), start="2021-03-02", end="2021-03-02")
    assert list(one_day["close"]) == [389.5]


def test_load_bars_errors(user_bars_csv: tuple[Path, pd.DataFrame]) -> None:
    path, _ = user_bars_csv
    with pytest.raises(ValueError, match=r"\['IWM'\] not found.*\['QQQ', 'SPY'\]"):
        load_bars(path, symbols=["SPY", "IWM"])
    with pytest.raises(ValueError, match="no bars between 2022-01-01 and None"):
        load_bars(path, start="2022-01-01")
    with pytest.raises(ValueError, match="no bars"):
        load_bars(path, start="2021-03-03", end="2021-03-02")


def test_load_bars_embedded_default_with_filters() -> None:
    out = load_bars(symbols=["SPX"], start="2008-09-26", end="2008-09-29")
    assert list(out["date"]) == [pd.Timestamp("2008-09-26"), pd.Timestamp("2008-09-29")]
    assert out["close"].to_numpy() == pytest.approx([1213.27, 1106.42], abs=1e-4)
    with pytest.raises(ValueError, match="RUT"):
        load_bars(symbols=["RUT"])


def test_load_iv_index_user_csv_without_source(tmp_path: Path) -> None:
    path = tmp_path / "iv.csv"
    pd.DataFrame(
        {
            "date": ["2021-03-01", "2021-03-02", "2021-03-01", "2021-03-02"],
            "symbol": ["SPY", "SPY", "QQQ", "QQQ"],
            "iv": [0.231, 0.219, 0.301, 0.287],
        }
    ).to_csv(path, index=False)
    out = load_iv_index(path)
    assert list(out["source"]) == ["index"] * 4
    assert out["iv"].tolist() == [0.231, 0.219, 0.301, 0.287]
    spy = load_iv_index(path, symbols=["SPY", "DIA"], start="2021-03-02")  # DIA: just absent
    assert spy[["symbol", "iv", "source"]].values.tolist() == [["SPY", 0.219, "index"]]


def test_load_iv_index_keeps_given_source_and_defaults_to_vix(tmp_path: Path) -> None:
    path = tmp_path / "iv_src.csv"
    pd.DataFrame({"date": ["2021-03-01", "2021-03-02"], "symbol": "SPY", "iv": [0.2, 0.21]}).assign(
        source=["index", "proxy"]
    ).to_csv(path, index=False)
    assert load_iv_index(path)["source"].tolist() == ["index", "proxy"]
    embedded = load_iv_index(start="2014-01-03", end="2014-01-06")
    assert embedded["iv"].tolist() == [0.1376, 0.1355]
    assert set(embedded["symbol"]) == {"SPX"}


# --------------------------------------------------------------------------------------------
# realized_vol_features
# --------------------------------------------------------------------------------------------


def test_realized_vol_features_constant_abs_return_per_symbol() -> None:
    n_a, n_b = 40, 30
    signs_a = np.where(np.arange(n_a - 1) % 2 == 0, 1.0, -1.0)
    signs_b = np.where(np.arange(n_b - 1) % 2 == 0, -1.0, 1.0)
    a = _synthetic_bars("AAA", _closes_from_log_returns(0.01 * signs_a, 100.0))
    # a very different level: a return leaking across the symbol boundary would be log(50)
    b = _synthetic_bars("BBB", _closes_from_log_returns(0.02 * signs_b, 5000.0), "2020-01-15")
    stacked = pd.concat([a, b], ignore_index=True)
    feats = realized_vol_features(stacked)
    assert list(feats.columns) == ["date", "symbol", "rv22", "ewma", "garch22"]

    for symbol, n, level in (("AAA", n_a, 0.01 * SQRT252), ("BBB", n_b, 0.02 * SQRT252)):
        f = feats.loc[feats["symbol"] == symbol].reset_index(drop=True)
        assert len(f) == n
        for col in ("rv22", "ewma", "garch22"):
            # rows 0..21 have fewer than 22 returns
            assert f[col].iloc[:22].isna().all(), (symbol, col)
            np.testing.assert_allclose(f[col].iloc[22:], level, rtol=1e-9)

    # the same values when each symbol is computed alone, and when rows are interleaved by date
    alone = pd.concat(
        [realized_vol_features(a), realized_vol_features(b)], ignore_index=True
    ).reset_index(drop=True)
    pdt.assert_frame_equal(feats, alone)
    interleaved = stacked.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    feats_i = realized_vol_features(interleaved)
    key = ["symbol", "date"]
    pdt.assert_frame_equal(
        feats_i.sort_values(key).reset_index(drop=True),
        feats.sort_values(key).reset_index(drop=True),
    )


def _warmup_series() -> np.ndarray:
    """24 closes: 21 log returns of +1%, then +2%, then 0%."""
    return _closes_from_log_returns(np.array([0.01] * 21 + [0.02, 0.0]))


def test_realized_vol_features_hand_computed_window() -> None:
    feats = realized_vol_features(_synthetic_bars("AAA", _warmup_series()))
    # row 22: 21 returns of 1% and one of 2% -> mean square (21 + 4) / 22 * 1e-4
    assert feats["rv22"].iloc[22] == pytest.approx(np.sqrt(25e-4 / 22 * 252), rel=1e-9)
    # row 23: the first 1% drops out, a 0% enters -> (20 + 4 + 0) / 22 * 1e-4
    assert feats["rv22"].iloc[23] == pytest.approx(np.sqrt(24e-4 / 22 * 252), rel=1e-9)
    # EWMA (lambda 0.94) in %^2: 1 after 21 returns of 1%; 0.94 + 0.06 * 4 = 1.18; 0.94 * 1.18
    assert feats["ewma"].iloc[22] == pytest.approx(np.sqrt(1.18 * 252) / 100, rel=1e-9)
    assert feats["ewma"].iloc[23] == pytest.approx(np.sqrt(1.1092 * 252) / 100, rel=1e-9)


# --------------------------------------------------------------------------------------------
# garch_forecast_vol
# --------------------------------------------------------------------------------------------


def test_garch_warmup_is_riskmetrics_ewma() -> None:
    out = garch_forecast_vol(pd.Series(_warmup_series()))
    assert len(out) == 24
    assert out.iloc[:22].isna().all()
    # hand-computed EWMA: variance 1.18 %^2 at close 22, 0.94 * 1.18 = 1.1092 at close 23
    assert out.iloc[22] == pytest.approx(0.1724412944, rel=1e-9)  # sqrt(1.18 * 252) / 100
    assert out.iloc[23] == pytest.approx(0.1671880378, rel=1e-9)  # sqrt(1.1092 * 252) / 100


def _garch_params_for_close(ret: np.ndarray, k: int) -> pd.Series:
    """Parameters in force at close k: fitted on the returns before the last refit point <= k."""
    refit = 500 + 252 * ((k - 500) // 252)
    res = arch_model(ret[:refit], mean="Constant", vol="GARCH", p=1, q=1).fit(
        disp="off", show_warning=False
    )
    assert res.params["alpha[1]"] >= 0.01  # not a degenerate fit: it is the one used
    return res.params


@pytest.mark.parametrize("k", [500, 752, 800, 1003, 2500, 5030])
def test_garch_agrees_with_arch(
    spx_features: pd.DataFrame, spx_pct_returns: np.ndarray, k: int
) -> None:
    # Alignment: ret[i] = 100 * log(close[i+1] / close[i]). The value at close k is the forecast
    # from origin k-1 (returns ret[0..k-1], i.e. closes 0..k), with parameters fitted on
    # ret[:refit] for the last refit point refit = 500 + 252 j <= k (a refit close itself uses
    # its new fit: ret[:refit] ends with the return into that close).
    ret = spx_pct_returns
    params = _garch_params_for_close(ret, k)
    model = arch_model(ret[:k], mean="Constant", vol="GARCH", p=1, q=1)
    fc = model.forecast(params, horizon=22, start=k - 1, reindex=False, method="analytic")
    assert fc.variance.shape == (1, 22)
    expected = np.sqrt(fc.variance.to_numpy().mean() * 252) / 100
    np.testing.assert_allclose(spx_features["garch22"].iloc[k], expected, rtol=1e-8)


def test_garch_matches_hand_recursion(
    spx_features: pd.DataFrame, spx_pct_returns: np.ndarray
) -> None:
    """The same value from a plain numpy GARCH(1,1) filter and the analytic h-step formula."""
    k = 800
    ret = spx_pct_returns
    p = _garch_params_for_close(ret, k)
    mu, omega, alpha, beta = p["mu"], p["omega"], p["alpha[1]"], p["beta[1]"]
    eps = ret[:k] - mu
    w = 0.94 ** np.arange(75)
    backcast = float(np.sum(eps[:75] ** 2 * w / w.sum()))  # arch's GARCH backcast
    sigma2 = omega + (alpha + beta) * backcast
    for t in range(1, k):
        sigma2 = omega + alpha * eps[t - 1] ** 2 + beta * sigma2
    f = [omega + alpha * eps[k - 1] ** 2 + beta * sigma2]  # 1-step from origin k-1
    for _ in range(21):
        f.append(omega + (alpha + beta) * f[-1])
    expected = np.sqrt(np.mean(f) * 252) / 100
    np.testing.assert_allclose(spx_features["garch22"].iloc[k], expected, rtol=1e-8)
    assert 0.05 < expected < 0.6  # a plausible annualised vol for 2002


@pytest.mark.parametrize("length", [400, 600, 900, 1300, 2600])
def test_garch_no_look_ahead(spx_bars: pd.DataFrame, spx_features: pd.DataFrame, length: int):
    prefix = garch_forecast_vol(spx_bars["close"].iloc[:length])
    np.testing.assert_array_equal(
        prefix.to_numpy(), spx_features["garch22"].iloc[:length].to_numpy()
    )


@pytest.mark.parametrize("length", [501, 753, 1005])
def test_garch_no_look_ahead_at_refit_close(
    spx_bars: pd.DataFrame, spx_features: pd.DataFrame, length: int
) -> None:
    prefix = garch_forecast_vol(spx_bars["close"].iloc[:length])
    np.testing.assert_array_equal(
        prefix.to_numpy(), spx_features["garch22"].iloc[:length].to_numpy()
    )


def _clustered_then_calm(seed: int, n_garch: int, n_iid: int) -> np.ndarray:
    """% returns: a strongly clustered GARCH(1,1) stretch, then iid N(0, 1)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n_garch + n_iid)
    r = z.copy()
    s2 = 1.0
    for t in range(n_garch):
        r[t] = np.sqrt(s2) * z[t]
        s2 = 0.05 + 0.2 * r[t] ** 2 + 0.75 * s2
    return r


def _fit_params(ret: np.ndarray) -> pd.Series:
    return (
        arch_model(ret, mean="Constant", vol="GARCH", p=1, q=1)
        .fit(disp="off", show_warning=False)
        .params
    )


def test_garch_degenerate_refit_keeps_previous_parameters() -> None:
    r = _clustered_then_calm(seed=2, n_garch=150, n_iid=1550)
    close = pd.Series(_closes_from_log_returns(r / 100))
    ret = np.diff(100 * np.log(close.to_numpy()))
    first, second = _fit_params(ret[:150]), _fit_params(ret[:1650])
    # preconditions: refit points 150 and 1650; the first fit is usable, the second degenerate
    assert first["alpha[1]"] >= 0.01
    assert second["alpha[1]"] < 0.01
    out = garch_forecast_vol(close, min_train=150, refit_every=1500)

    def forecast(params: pd.Series) -> np.ndarray:
        fc = arch_model(ret, mean="Constant", vol="GARCH", p=1, q=1).forecast(
            params, horizon=22, start=149, reindex=False, method="analytic"
        )
        return np.sqrt(fc.variance.to_numpy().mean(axis=1) * 252) / 100

    kept = forecast(first)
    # closes 150..1700 (origins 149..1699) all use the first fit's parameters
    np.testing.assert_allclose(out.iloc[150:].to_numpy(), kept, rtol=1e-8)
    # and the test can tell: the degenerate parameters would give different values after 1650
    switched = forecast(second)
    assert np.max(np.abs(switched[1650 - 149 :] - kept[1650 - 149 :])) > 1e-3


def test_garch_no_usable_fit_keeps_ewma() -> None:
    z = np.random.default_rng(2).standard_normal(400)
    close = pd.Series(_closes_from_log_returns(z / 100))
    ret = np.diff(100 * np.log(close.to_numpy()))
    assert _fit_params(ret[:300])["alpha[1]"] < 0.01  # precondition: degenerate first fit
    out = garch_forecast_vol(close, min_train=300)
    var = ret[0] ** 2
    expected = [np.nan] * 22
    for i in range(1, len(ret)):
        var = 0.94 * var + 0.06 * ret[i] ** 2
        if i >= 21:
            expected.append(np.sqrt(var * 252) / 100)
    np.testing.assert_allclose(out.to_numpy(), np.array(expected), rtol=1e-10)


# --------------------------------------------------------------------------------------------
# fit_iv_proxy
# --------------------------------------------------------------------------------------------


def test_fit_iv_proxy_overlap_and_holdout(
    proxy_fit: IvProxyFit, vix_iv: pd.DataFrame, spx_bars: pd.DataFrame
) -> None:
    ov = proxy_fit.overlap
    assert list(ov.columns) == ["date", "iv", "rv22", "proxy_fit", "proxy_final", "in_holdout"]
    # every VIX date that is also an SPX bar date (VIX has 2019-01-02/03, the bars end 2018-12-31)
    expected_dates = sorted(set(vix_iv["date"]) & set(spx_bars["date"]))
    assert len(expected_dates) == 1257
    assert list(ov["date"]) == expected_dates
    cut = pd.Timestamp("2017-01-01")
    assert proxy_fit.holdout_start == cut
    assert (ov["in_holdout"] == (ov["date"] >= cut)).all()
    assert int(ov["in_holdout"].sum()) == 502
    assert ov.loc[ov["in_holdout"], "date"].min() == pd.Timestamp("2017-01-03")
    assert proxy_fit.fit_start == pd.Timestamp("2014-01-03")
    assert proxy_fit.fit_end == pd.Timestamp("2018-12-31")
    iv_by_date = vix_iv.set_index("date")["iv"]
    np.testing.assert_array_equal(ov["iv"].to_numpy(), iv_by_date.loc[ov["date"]].to_numpy())


def test_fit_iv_proxy_coefficients_are_ols(
    proxy_fit: IvProxyFit, overlap_design: pd.DataFrame
) -> None:
    d = overlap_design
    x = np.column_stack([np.ones(len(d)), d["garch22"].to_numpy()])
    y = d["iv"].to_numpy()
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert proxy_fit.features == ("garch22",)
    np.testing.assert_allclose(
        [proxy_fit.coefficients["const"], proxy_fit.coefficients["garch22"]], beta, rtol=1e-9
    )
    np.testing.assert_allclose(d["proxy_final"], x @ beta, rtol=1e-9)
    # the fit-window coefficients use the pre-holdout rows only
    fit_rows = ~d["in_holdout"].to_numpy()
    beta_fit, *_ = np.linalg.lstsq(x[fit_rows], y[fit_rows], rcond=None)
    np.testing.assert_allclose(d["proxy_fit"], x @ beta_fit, rtol=1e-9)
    assert not np.allclose(beta_fit, beta)
    # predict() applies the final mapping
    np.testing.assert_allclose(proxy_fit.predict(d), x @ beta, rtol=1e-12)
    coef = proxy_fit.coefficient_frame()
    assert coef["term"].tolist() == ["const", "garch22"]


def test_fit_iv_proxy_hac_standard_errors(
    proxy_fit: IvProxyFit, overlap_design: pd.DataFrame
) -> None:
    """Newey-West (Bartlett, 22 lags, no small-sample correction) by hand."""
    d = overlap_design
    x = np.column_stack([np.ones(len(d)), d["garch22"].to_numpy()])
    y = d["iv"].to_numpy()
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    scores = x * (y - x @ beta)[:, None]
    s = scores.T @ scores
    lags = 22
    for lag in range(1, lags + 1):
        gamma = scores[lag:].T @ scores[:-lag]
        s += (1 - lag / (lags + 1)) * (gamma + gamma.T)
    bread = np.linalg.inv(x.T @ x)
    se = np.sqrt(np.diag(bread @ s @ bread))
    np.testing.assert_allclose(
        [proxy_fit.std_errors["const"], proxy_fit.std_errors["garch22"]], se, rtol=1e-8
    )


def _stats(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    a, p = 100 * actual, 100 * predicted
    return {
        "n": len(a),
        "rmse": float(np.sqrt(np.mean((a - p) ** 2))),
        "mae": float(np.mean(np.abs(a - p))),
        "bias": float(np.mean(p - a)),
        "r2": float(1 - np.sum((a - p) ** 2) / np.sum((a - a.mean()) ** 2)),
    }


def test_fit_iv_proxy_error_stats(proxy_fit: IvProxyFit) -> None:
    ov = proxy_fit.overlap
    fit_rows, hold = ov.loc[~ov["in_holdout"]], ov.loc[ov["in_holdout"]]
    cases = [
        (proxy_fit.in_sample, fit_rows["iv"], fit_rows["proxy_fit"]),
        (proxy_fit.out_of_sample, hold["iv"], hold["proxy_fit"]),
        (proxy_fit.naive_out_of_sample, hold["iv"], hold["rv22"]),
    ]
    for stats, actual, predicted in cases:
        want = _stats(actual.to_numpy(), predicted.to_numpy())
        assert stats.n == want["n"]
        for name in ("rmse", "mae", "bias", "r2"):
            assert getattr(stats, name) == pytest.approx(want[name], rel=1e-10, abs=1e-12), name
    assert proxy_fit.in_sample.n == 755 and proxy_fit.out_of_sample.n == 502
    # OLS with an intercept: zero in-sample bias
    assert abs(proxy_fit.in_sample.bias) < 1e-9
    # errors are in VIX points: a proxy within a few points, not a few hundredths
    assert 1.0 < proxy_fit.out_of_sample.rmse < 5.0
    summary = proxy_fit.summary_frame()
    assert summary["n"].tolist() == [755, 502, 502]
    assert summary["rmse"].tolist() == [
        proxy_fit.in_sample.rmse,
        proxy_fit.out_of_sample.rmse,
        proxy_fit.naive_out_of_sample.rmse,
    ]


def test_fit_iv_proxy_beats_raw_realized_vol_out_of_sample(proxy_fit: IvProxyFit) -> None:
    # empirical claim on 2017-2018: the mapped GARCH forecast tracks VIX better than raw rv22
    assert proxy_fit.out_of_sample.rmse < proxy_fit.naive_out_of_sample.rmse
    assert proxy_fit.out_of_sample.mae < proxy_fit.naive_out_of_sample.mae
    # raw realized vol sits below implied vol (the variance risk premium)
    assert proxy_fit.naive_out_of_sample.bias < 0


@pytest.fixture(scope="module")
def short_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars from mid-2013 (features available for the whole VIX overlap, cheap GARCH)."""
    return bars.loc[bars["date"] >= "2013-06-03"].reset_index(drop=True)


@pytest.mark.parametrize(
    ("holdout_start", "message"),
    [
        ("2014-03-01", "leaves 39 fit and 1218 holdout dates"),  # fit window too short
        ("2018-11-29", "leaves 1236 fit and 21 holdout dates"),  # holdout too short
    ],
)
def test_fit_iv_proxy_rejects_bad_holdout(
    short_bars: pd.DataFrame, vix_iv: pd.DataFrame, holdout_start: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_iv_proxy(short_bars, vix_iv, holdout_start=holdout_start)


def test_fit_iv_proxy_without_overlap(short_bars: pd.DataFrame, vix_iv: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="only 0 dates"):
        fit_iv_proxy(short_bars, vix_iv, symbol="IXIC")


# --------------------------------------------------------------------------------------------
# iv_with_proxy / coverage
# --------------------------------------------------------------------------------------------


def test_iv_with_proxy_sources(
    iv_all: pd.DataFrame, vix_iv: pd.DataFrame, bars: pd.DataFrame
) -> None:
    spx = iv_all.loc[iv_all["symbol"] == "SPX"].set_index("date")
    ixic = iv_all.loc[iv_all["symbol"] == "IXIC"]
    vix_by_date = vix.load()["vix"].dropna()
    vix_by_date.index = vix_by_date.index.astype("datetime64[ns]")
    index_rows = spx.loc[spx["source"] == "index"]
    assert len(index_rows) == 1257
    assert set(index_rows.index) == set(vix_iv["date"]) & set(spx.index)
    np.testing.assert_array_equal(
        index_rows["iv"].to_numpy(), vix_by_date.loc[index_rows.index].to_numpy() / 100
    )
    assert index_rows.loc["2014-01-03", "iv"] == 0.1376
    assert (spx.loc[spx.index < "2014-01-01", "source"] == "proxy").all()
    assert (spx.loc[spx.index >= "2014-01-03", "source"] == "index").all()
    assert set(ixic["source"]) == {"proxy"}
    assert len(ixic) == 5031 - 22
    # the first 22 bars of each symbol have no forecast and are absent
    for symbol in ("SPX", "IXIC"):
        bar_dates = bars.loc[bars["symbol"] == symbol, "date"].reset_index(drop=True)
        got = iv_all.loc[iv_all["symbol"] == symbol, "date"].reset_index(drop=True)
        pdt.assert_series_equal(got, bar_dates.iloc[22:].reset_index(drop=True))
    assert iv_all.loc[iv_all["symbol"] == "SPX", "date"].iloc[0] == pd.Timestamp("1999-02-04")


def test_iv_with_proxy_values_and_contract(
    iv_all: pd.DataFrame, proxy_fit: IvProxyFit, spx_features: pd.DataFrame
) -> None:
    a, b = proxy_fit.coefficients["const"], proxy_fit.coefficients["garch22"]
    spx = iv_all.loc[(iv_all["symbol"] == "SPX") & (iv_all["source"] == "proxy")]
    garch = spx_features.set_index("date")["garch22"].loc[spx["date"]]
    np.testing.assert_allclose(spx["iv"].to_numpy(), a + b * garch.to_numpy(), rtol=1e-12)
    # Oct 2008 (post-Lehman): the proxy reads as a crisis, well above 40 vol points
    oct08 = spx.loc[(spx["date"] >= "2008-10-01") & (spx["date"] <= "2008-11-30"), "iv"]
    assert oct08.mean() > 0.40
    pdt.assert_frame_equal(validate("iv_index", iv_all), iv_all)
    assert list(iv_all.columns) == ["date", "symbol", "iv", "source"]


def test_coverage_real_data(bars: pd.DataFrame, iv_all: pd.DataFrame) -> None:
    cov = coverage(bars, iv_all).set_index("symbol")
    assert cov.loc[
        "SPX", ["bars", "iv_index_days", "iv_proxy_days", "iv_missing_days"]
    ].tolist() == [
        5031,
        1257,
        5031 - 22 - 1257,
        22,
    ]
    assert cov.loc["IXIC", ["iv_index_days", "iv_proxy_days", "iv_missing_days"]].tolist() == [
        0,
        5009,
        22,
    ]


def test_coverage_hand_built() -> None:
    bars = pd.concat(
        [
            _bars_frame(
                "AAA", ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07"], [1, 2, 3, 4]
            ),
            _bars_frame("BBB", ["2021-01-05", "2021-01-06", "2021-01-08"], [5, 6, 7]),
        ],
        ignore_index=True,
    )
    iv = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2021-01-04", "2021-01-05", "2021-01-07", "2021-01-11", "2021-01-06"]
            ),
            "symbol": ["AAA", "AAA", "AAA", "AAA", "BBB"],
            "iv": [0.2, 0.21, 0.22, 0.23, 0.3],
            "source": ["index", "index", "proxy", "index", "proxy"],  # 01-11: no bar, not counted
        }
    )
    cov = coverage(bars, iv)
    expected = pd.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "first_date": pd.to_datetime(["2021-01-04", "2021-01-05"]),
            "last_date": pd.to_datetime(["2021-01-07", "2021-01-08"]),
            "bars": [4, 3],
            "iv_index_days": [2, 0],
            "iv_proxy_days": [1, 1],
            "iv_scaled_days": [0, 0],
            "iv_uncalibrated_days": [0, 0],
            "iv_missing_days": [1, 2],
        }
    )
    pdt.assert_frame_equal(cov, expected, check_dtype=False)


# --------------------------------------------------------------------------------------------
# yearly_summary
# --------------------------------------------------------------------------------------------


def test_yearly_summary_hand_computed() -> None:
    a = _bars_frame(
        "AAA",
        ["2021-12-29", "2021-12-30", "2021-12-31", "2022-01-03", "2022-01-04", "2022-01-05"],
        [100.0, 110.0, 99.0, 108.9, 87.12, 95.832],
    )
    b = _bars_frame("BBB", ["2021-12-31", "2022-01-03"], [50.0, 50.0])
    out = yearly_summary(pd.concat([a, b], ignore_index=True))
    assert list(out.columns) == [
        "symbol",
        "year",
        "days",
        "total_return",
        "ann_vol",
        "max_drawdown",
        "best_day",
        "worst_day",
    ]
    assert out[["symbol", "year", "days"]].values.tolist() == [
        ["AAA", 2021, 3],
        ["AAA", 2022, 3],
        ["BBB", 2021, 1],
        ["BBB", 2022, 1],
    ]
    row = out.set_index(["symbol", "year"])
    # 2021: 100 -> 110 (+10%) -> 99 (-10%): total -1%, drawdown 110 -> 99 = -10%
    assert row.loc[("AAA", 2021), "total_return"] == pytest.approx(-0.01, abs=1e-12)
    assert row.loc[("AAA", 2021), "max_drawdown"] == pytest.approx(-0.10, abs=1e-12)
    assert row.loc[("AAA", 2021), "best_day"] == pytest.approx(0.10, abs=1e-12)
    assert row.loc[("AAA", 2021), "worst_day"] == pytest.approx(-0.10, abs=1e-12)
    # std of {ln 1.1, ln 0.9} = ln(11/9) / sqrt(2); x sqrt(252) = ln(11/9) * sqrt(126)
    assert row.loc[("AAA", 2021), "ann_vol"] == pytest.approx(
        np.log(11 / 9) * np.sqrt(126), rel=1e-12
    )
    # 2022 from 2021's last close 99: 108.9 (+10%), 87.12 (-20%), 95.832 (+10%): 95.832/99 - 1
    assert row.loc[("AAA", 2022), "total_return"] == pytest.approx(-0.032, abs=1e-12)
    # within 2022 the peak is 108.9 (the 99 of 2021 is not part of the year): 87.12/108.9 - 1
    assert row.loc[("AAA", 2022), "max_drawdown"] == pytest.approx(-0.20, abs=1e-12)
    assert row.loc[("AAA", 2022), "best_day"] == pytest.approx(0.10, abs=1e-12)
    assert row.loc[("AAA", 2022), "worst_day"] == pytest.approx(-0.20, abs=1e-12)
    x = np.log([1.1, 0.8, 1.1])
    sd = np.sqrt(np.sum((x - x.mean()) ** 2) / 2)
    assert row.loc[("AAA", 2022), "ann_vol"] == pytest.approx(sd * np.sqrt(252), rel=1e-12)
    # BBB: a first bar has no return (not AAA's last close); then a flat day
    assert np.isnan(row.loc[("BBB", 2021), "total_return"])
    assert np.isnan(row.loc[("BBB", 2021), "best_day"])
    assert row.loc[("BBB", 2022), "total_return"] == 0.0
    assert row.loc[("BBB", 2022), "max_drawdown"] == 0.0


# --------------------------------------------------------------------------------------------
# sub-period maps, shifted proxies and the proxy band
# --------------------------------------------------------------------------------------------


def test_fit_proxy_map_is_ols_on_the_window(
    spx_features: pd.DataFrame, vix_iv: pd.DataFrame, proxy_fit: IvProxyFit
) -> None:
    whole, _ = market.fit_proxy_map(spx_features, vix_iv)
    assert whole == pytest.approx(proxy_fit.coefficients, rel=1e-12)
    coef, se = market.fit_proxy_map(spx_features, vix_iv, start="2016-01-01", end="2018-12-31")
    rows = spx_features.merge(vix_iv[["date", "iv"]], on="date").dropna(subset=["garch22"])
    rows = rows.loc[(rows["date"] >= "2016-01-01") & (rows["date"] <= "2018-12-31")]
    x = np.column_stack([np.ones(len(rows)), rows["garch22"]])
    beta = np.linalg.lstsq(x, rows["iv"].to_numpy(), rcond=None)[0]
    assert [coef["const"], coef["garch22"]] == pytest.approx(beta, rel=1e-9)
    assert se["const"] > 0 and coef != pytest.approx(whole, rel=1e-3)
    with pytest.raises(ValueError, match="only 0 dates"):
        market.fit_proxy_map(spx_features, vix_iv, start="2030-01-01")


def test_iv_with_proxy_shift_moves_only_the_proxy(
    bars: pd.DataFrame, vix_iv: pd.DataFrame, proxy_fit: IvProxyFit, iv_all: pd.DataFrame
) -> None:
    feats = market.realized_vol_features(bars)
    same = market.iv_with_proxy(bars, vix_iv, proxy_fit, features=feats)
    pdt.assert_frame_equal(same, iv_all)
    up = market.iv_with_proxy(bars, vix_iv, proxy_fit, features=feats, shift=0.02)
    proxy = iv_all["source"] == "proxy"
    np.testing.assert_allclose(up.loc[proxy, "iv"], iv_all.loc[proxy, "iv"] + 0.02, rtol=1e-12)
    np.testing.assert_array_equal(up.loc[~proxy, "iv"], iv_all.loc[~proxy, "iv"])
    # a proxy pushed below the floor is held at it (IV stays positive); the index is untouched
    down = market.iv_with_proxy(bars, vix_iv, proxy_fit, features=feats, shift=-5.0)
    assert (down.loc[proxy, "iv"] == market.MIN_PROXY_IV).all()
    np.testing.assert_array_equal(down.loc[~proxy, "iv"], iv_all.loc[~proxy, "iv"])
    # a map given as coefficients is the same as the fit object
    coef = market.iv_with_proxy(bars, vix_iv, dict(proxy_fit.coefficients), features=feats)
    pdt.assert_frame_equal(coef, iv_all)


def test_proxy_band_is_the_range_of_sub_period_maps(
    bars: pd.DataFrame, vix_iv: pd.DataFrame, spx_features: pd.DataFrame
) -> None:
    maps, band = market.proxy_band(bars, vix_iv)
    # each year 2014-2018 and the two halves of the overlap
    assert list(maps["window"][:5]) == ["2014", "2015", "2016", "2017", "2018"]
    assert len(maps) == 7 and maps["start"].iloc[5] == "2014-01-03"
    spx = band.loc[band["symbol"] == "SPX"].set_index("date")
    g = spx_features.set_index("date")["garch22"].loc[spx.index]
    values = np.column_stack([m["const"] + m["garch22"] * g.to_numpy() for _, m in maps.iterrows()])
    np.testing.assert_allclose(spx["low"], values.min(axis=1), rtol=1e-12)
    np.testing.assert_allclose(spx["high"], values.max(axis=1), rtol=1e-12)
    # the intercepts span about two and a half vol points; the band is not negligible in 2008
    assert 0.015 < maps["const"].max() - maps["const"].min() < 0.04
    assert (
        spx.loc["2008-10-01":"2008-11-30", "high"] - spx.loc["2008-10-01":"2008-11-30", "low"]
    ).mean() > 0.05
    with pytest.raises(ValueError, match="too short"):
        market.proxy_band(bars, vix_iv.iloc[:30])


def test_band_windows_years_and_halves() -> None:
    dates = pd.bdate_range("2014-01-02", "2016-03-31")
    windows = market.band_windows(dates)
    # 2016 has only 65 business days (>= 44): kept; halves split at the middle date
    assert windows[:3] == [
        ("2014-01-01", "2014-12-31"),
        ("2015-01-01", "2015-12-31"),
        ("2016-01-01", "2016-12-31"),
    ]
    mid = dates[len(dates) // 2]
    assert windows[3] == ("2014-01-02", str((mid - pd.Timedelta(days=1)).date()))
    assert windows[4] == (str(mid.date()), "2016-03-31")
    assert market.band_windows(dates[:50]) == []
