"""Default market data: real S&P 500 / NASDAQ Composite bars and VIX shipped with ``arch``.

The ``arch`` package embeds daily bars of the S&P 500 (symbol ``SPX``) and the NASDAQ Composite
(symbol ``IXIC``) for 1999-01-04..2018-12-31, and the VIX close for 2014-01-03..2019-01-03.
Everything here returns frames in the data contracts (``research.data.contracts``), so the same
code runs on a user's own files (``load_bars(path)``, ``load_iv_index(path)``).

IV proxy
--------
Dates without a published IV index (SPX before 2014, all of IXIC) get a *proxy* implied
volatility, always labelled ``source == "proxy"``:

``iv_t = a + b * garch22_t``

where ``garch22_t`` is a GARCH(1,1) forecast (``arch``) of the average volatility over the next
22 trading days, made at the close of day t, annualised. The GARCH parameters are refitted every
252 returns on an expanding window of the returns *before* the refit (first fit after 500
returns; before that, the RiskMetrics EWMA forecast, a GARCH with fixed parameters), and filtered
forward with those fixed parameters, so ``garch22_t`` uses returns up to t only.
The mapping ``a, b`` is fitted by OLS on the SPX/VIX overlap; its error is reported in VIX points
in-sample (fit window) and out-of-sample (a later holdout window the fit never saw), with HAC
(Newey-West) standard errors. The mapping comes from the overlap (2014-2018), so proxy values
before 2014 use two coefficients estimated on later data: the one documented exception to "data
up to t", and why the proxy is always labelled. A log-log map on realized volatility was tried and
rejected: it compressed crises (its Oct-Nov 2008 proxy averaged 38 vol points). The IXIC proxy
applies the same mapping to IXIC's own GARCH forecast (no IV index is published for the NASDAQ
Composite; VXN belongs to the Nasdaq-100, a different index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.constants import TRADING_DAYS
from research.data.contracts import validate
from research.data.loaders import load

EWMA_LAMBDA = 0.94
RV_WINDOW = 22
DEFAULT_SYMBOLS: tuple[str, ...] = ("SPX", "IXIC")
_ARCH_DATASETS = {"SPX": "sp500", "IXIC": "nasdaq"}
GARCH_HORIZON = 22
GARCH_MIN_TRAIN = 500
PROXY_FEATURES: tuple[str, ...] = ("garch22",)
MIN_PROXY_IV = 0.05
"""Floor of a proxy value (5 vol points; the lowest VIX close on record is 8.6)."""


def _clip_dates(
    df: pd.DataFrame, start: str | pd.Timestamp | None, end: str | pd.Timestamp | None
) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    if start is not None:
        mask &= df["date"] >= pd.Timestamp(start)
    if end is not None:
        mask &= df["date"] <= pd.Timestamp(end)
    return df.loc[mask].reset_index(drop=True)


def _select_symbols(
    df: pd.DataFrame, symbols: tuple[str, ...] | list[str] | None, source: str
) -> pd.DataFrame:
    if symbols is None:
        return df
    wanted = list(symbols)
    missing = sorted(set(wanted) - set(df["symbol"].unique()))
    if missing:
        raise ValueError(
            f"{source}: symbols {missing} not found; available: {sorted(df['symbol'].unique())}"
        )
    return df.loc[df["symbol"].isin(wanted)].reset_index(drop=True)


def embedded_bars(symbols: tuple[str, ...] | list[str] = DEFAULT_SYMBOLS) -> pd.DataFrame:
    """Daily bars of the S&P 500 (SPX) and NASDAQ Composite (IXIC) shipped with ``arch``.

    Parameters
    ----------
    symbols
        Any of ``"SPX"``, ``"IXIC"``.

    Returns
    -------
    pandas.DataFrame
        The bars contract: ``date, symbol, open, high, low, close, volume``, sorted by symbol and
        date (1999-01-04..2018-12-31, 5,031 rows per symbol).
    """
    import importlib

    frames = []
    for symbol in symbols:
        if symbol not in _ARCH_DATASETS:
            raise ValueError(
                f"no embedded data for symbol {symbol!r}; embedded: {sorted(_ARCH_DATASETS)}"
            )
        raw = importlib.import_module(f"arch.data.{_ARCH_DATASETS[symbol]}").load()
        frame = pd.DataFrame(
            {
                "date": raw.index,
                "symbol": symbol,
                "open": raw["Open"].to_numpy(float),
                "high": raw["High"].to_numpy(float),
                "low": raw["Low"].to_numpy(float),
                "close": raw["Close"].to_numpy(float),
                "volume": raw["Volume"].to_numpy(float),
            }
        )
        frames.append(frame)
    return validate("bars", pd.concat(frames, ignore_index=True), source="arch.data")


def embedded_vix() -> pd.DataFrame:
    """The VIX close shipped with ``arch`` as an IV index for SPX (2014-01-03..2019-01-03).

    Returns
    -------
    pandas.DataFrame
        The iv_index contract: ``date, symbol ('SPX'), iv`` (VIX / 100, annualised) and
        ``source`` (``'index'``).
    """
    from arch.data import vix

    raw = vix.load().dropna(subset=["vix"])
    frame = pd.DataFrame(
        {
            "date": raw.index,
            "symbol": "SPX",
            "iv": raw["vix"].to_numpy(float) / 100.0,
            "source": "index",
        }
    )
    return validate("iv_index", frame, source="arch.data.vix")


def load_bars(
    path: str | Path | None = None,
    *,
    symbols: tuple[str, ...] | list[str] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    table: str | None = None,
) -> pd.DataFrame:
    """Bars from ``path`` (any loader format) or, when ``path`` is None, the embedded data.

    Parameters
    ----------
    path
        A file in the bars contract, or None for the embedded SPX/IXIC bars.
    symbols
        Keep only these symbols (error if one is absent).
    start, end
        Inclusive date range.
    table
        Table name for SQLite/DuckDB files.

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, open, high, low, close, volume`` (validated), sorted by symbol and date.
    """
    if path is None:
        wanted = tuple(symbols) if symbols is not None else DEFAULT_SYMBOLS
        bars = embedded_bars(wanted)
        source = "embedded arch data"
    else:
        bars = load("bars", path, table=table)
        source = str(path)
    bars = _clip_dates(_select_symbols(bars, symbols, source), start, end)
    if bars.empty:
        raise ValueError(f"{source}: no bars between {start} and {end}")
    return bars.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def load_iv_index(
    path: str | Path | None = None,
    *,
    symbols: tuple[str, ...] | list[str] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    table: str | None = None,
) -> pd.DataFrame:
    """IV index from ``path`` or, when None, the embedded VIX (for SPX).

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, iv, source`` with ``source == 'index'`` (a published IV index).
        Symbols in ``symbols`` without an IV index are simply absent (the proxy fills them).
    """
    iv = embedded_vix() if path is None else load("iv_index", path, table=table)
    if "source" not in iv.columns:
        iv = iv.assign(source="index")
    if symbols is not None:
        iv = iv.loc[iv["symbol"].isin(list(symbols))]
    return _clip_dates(iv.reset_index(drop=True), start, end)


def load_iv_indexes(
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    symbols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Published IV indexes from any number of files (each in the ``iv_index`` contract, one or
    several symbols), plus the embedded VIX for SPX unless a file already gives SPX's.

    Raises
    ------
    ValueError
        When two files give the same (date, symbol).

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, iv, source`` (``source`` ``index`` unless a file says otherwise).
    """
    if paths is None:
        items: list[str | Path] = []
    elif isinstance(paths, str | Path):
        items = [paths]
    else:
        items = list(paths)
    frames = [load_iv_index(p).assign(_file=str(p)) for p in items]
    given = set().union(*(set(f["symbol"]) for f in frames)) if frames else set()
    if "SPX" not in given and (symbols is None or "SPX" in symbols):
        frames.append(embedded_vix().assign(_file="embedded VIX"))
    if not frames:
        return pd.DataFrame(columns=["date", "symbol", "iv", "source"])
    out = pd.concat(frames, ignore_index=True)
    dup = out.duplicated(["date", "symbol"], keep=False)
    if dup.any():
        first = out.loc[dup].iloc[0]
        files = sorted(set(out.loc[dup & (out["symbol"] == first["symbol"]), "_file"]))
        raise ValueError(
            f"IV files {files} both give {first['symbol']} on {first['date'].date()} "
            f"({int(dup.sum())} duplicated rows): give each symbol's IV once"
        )
    if symbols is not None:
        out = out.loc[out["symbol"].isin(list(symbols))]
    if "source" not in out.columns:
        out["source"] = "index"
    out["source"] = out["source"].fillna("index")
    return out.drop(columns="_file").sort_values(["symbol", "date"]).reset_index(drop=True)


def log_returns(bars: pd.DataFrame) -> pd.Series:
    """Close-to-close log returns per symbol (NaN on each symbol's first bar).

    Returns
    -------
    pandas.Series
        Aligned with ``bars``' index.
    """
    logret: pd.Series = np.log(bars["close"]).groupby(bars["symbol"], sort=False).diff()
    return logret


def realized_vol_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Annualised realized-volatility features per symbol, each using returns up to t only.

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, rv22`` (root mean square of the last 22 log returns, annualised),
        ``ewma`` (RiskMetrics EWMA volatility, lambda 0.94, annualised; NaN until 22 returns
        exist), ``garch22`` (see ``garch_forecast_vol``).
    """
    ret = log_returns(bars)
    sq = ret.pow(2)
    by = sq.groupby(bars["symbol"], sort=False)
    rv22 = np.sqrt(
        by.transform(lambda s: s.rolling(RV_WINDOW, min_periods=RV_WINDOW).mean()) * TRADING_DAYS
    )
    ewma_var = by.transform(lambda s: s.ewm(alpha=1 - EWMA_LAMBDA, adjust=False).mean())
    count = by.transform(lambda s: s.notna().cumsum())
    ewma = np.sqrt(ewma_var * TRADING_DAYS).where(count >= RV_WINDOW)
    out = pd.DataFrame({"date": bars["date"], "symbol": bars["symbol"], "rv22": rv22, "ewma": ewma})
    out["garch22"] = np.nan
    for _, idx in bars.groupby("symbol", sort=False).groups.items():
        out.loc[idx, "garch22"] = garch_forecast_vol(bars.loc[idx, "close"]).to_numpy()
    return out


def garch_forecast_vol(
    close: pd.Series,
    *,
    horizon: int = GARCH_HORIZON,
    min_train: int = GARCH_MIN_TRAIN,
    refit_every: int = TRADING_DAYS,
) -> pd.Series:
    """GARCH(1,1) forecast of the mean volatility over the next ``horizon`` days, annualised.

    The value at t is the forecast made at the close of t (returns up to t only). Parameters are
    fitted on an expanding window of the returns before each refit point (every ``refit_every``
    returns, first after ``min_train``) and held fixed until the next refit. A refit that
    degenerates (ARCH coefficient below 0.01, as happens on short calm samples) keeps the previous
    parameters. Before the first fit the forecast is the RiskMetrics EWMA volatility (lambda 0.94,
    a GARCH with fixed parameters and a flat forecast), from the 22nd return on.

    Parameters
    ----------
    close
        One symbol's closes in date order.

    Returns
    -------
    pandas.Series
        Aligned with ``close``; NaN for the first 22 closes.
    """
    from arch import arch_model

    ret = np.diff(100 * np.log(close.to_numpy(float)))
    out = np.full(len(close), np.nan)
    n = len(ret)
    # warm-up: RiskMetrics EWMA variance after return i is the forecast made at close i+1
    ewma_var = pd.Series(ret**2).ewm(alpha=1 - EWMA_LAMBDA, adjust=False).mean().to_numpy()
    warm = np.sqrt(ewma_var * TRADING_DAYS) / 100
    warm[: RV_WINDOW - 1] = np.nan
    out[1 : min(min_train, n) + 1] = warm[: min(min_train, n)]
    params = None
    for start in range(min_train, n + 1, refit_every):
        stop = min(start + refit_every, n)
        fitted = arch_model(ret[:start], mean="Constant", vol="GARCH", p=1, q=1).fit(
            disp="off", show_warning=False
        )
        if fitted.params["alpha[1]"] >= 0.01 or params is None:
            params = fitted.params
        if params["alpha[1]"] < 0.01:  # no usable fit yet: keep the EWMA forecast
            out[start + 1 : stop + 1] = warm[start:stop]
            continue
        model = arch_model(ret[:stop], mean="Constant", vol="GARCH", p=1, q=1)
        fc = model.forecast(
            params, horizon=horizon, start=start - 1, reindex=False, method="analytic"
        )
        # the forecast from origin i uses returns 0..i, i.e. closes 0..i+1
        mean_var = fc.variance.to_numpy().mean(axis=1)
        out[start : stop + 1] = np.sqrt(mean_var * TRADING_DAYS) / 100
    return pd.Series(out, index=close.index)


@dataclass(frozen=True)
class ErrorStats:
    """Error of the proxy against the published index, in VIX points (iv x 100)."""

    n: int
    rmse: float
    mae: float
    bias: float
    r2: float


def _error_stats(actual: pd.Series, predicted: pd.Series) -> ErrorStats:
    a = actual.to_numpy(float) * 100
    p = predicted.to_numpy(float) * 100
    resid = a - p
    ss_tot = float(np.sum((a - a.mean()) ** 2))
    return ErrorStats(
        n=len(a),
        rmse=float(np.sqrt(np.mean(resid**2))),
        mae=float(np.mean(np.abs(resid))),
        bias=float(np.mean(p - a)),
        r2=float(1 - np.sum(resid**2) / ss_tot) if ss_tot > 0 else float("nan"),
    )


@dataclass(frozen=True)
class IvProxyFit:
    """Result of fitting the IV proxy on the overlap of an IV index and realized volatility.

    Attributes
    ----------
    symbol
        The market whose IV index was used for the fit (e.g. ``'SPX'`` with VIX).
    coefficients, std_errors
        Final coefficients (fitted on the whole overlap) and their HAC standard errors, keyed by
        ``const`` and the feature names.
    in_sample, out_of_sample
        Errors (VIX points) of a fit on the dates before ``holdout_start``, on those dates and on
        the holdout dates after it (which that fit never saw).
    naive_out_of_sample
        Holdout error of the unmapped 22-day realized volatility, for comparison.
    overlap
        ``date, iv, proxy_fit, proxy_final, in_holdout``: the index and the proxies on the overlap.
    """

    symbol: str
    features: tuple[str, ...]
    coefficients: dict[str, float]
    std_errors: dict[str, float]
    fit_start: pd.Timestamp
    holdout_start: pd.Timestamp
    fit_end: pd.Timestamp
    in_sample: ErrorStats
    out_of_sample: ErrorStats
    naive_out_of_sample: ErrorStats
    overlap: pd.DataFrame = field(repr=False)

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Proxy iv (annualised) from a frame with the feature columns."""
        return _linear(self.coefficients, features, self.features)

    def summary_frame(self) -> pd.DataFrame:
        """Errors as a table.

        Returns
        -------
        pandas.DataFrame
            One row per evaluation: ``evaluation, sample, n, rmse, mae, bias, r2`` (VIX points).
        """
        rows = [
            ("proxy, fit window", "in-sample", self.in_sample),
            ("proxy, holdout", "out-of-sample", self.out_of_sample),
            ("raw rv22 (no mapping), holdout", "out-of-sample", self.naive_out_of_sample),
        ]
        return pd.DataFrame(
            [
                {
                    "evaluation": name,
                    "sample": sample,
                    "n": s.n,
                    "rmse": s.rmse,
                    "mae": s.mae,
                    "bias": s.bias,
                    "r2": s.r2,
                }
                for name, sample, s in rows
            ]
        )

    def coefficient_frame(self) -> pd.DataFrame:
        """Final coefficients with HAC standard errors.

        Returns
        -------
        pandas.DataFrame
            ``term, coefficient, std_error``.
        """
        return pd.DataFrame(
            {
                "term": list(self.coefficients),
                "coefficient": list(self.coefficients.values()),
                "std_error": [self.std_errors[k] for k in self.coefficients],
            }
        )


def _linear(coef: dict[str, float], frame: pd.DataFrame, features: tuple[str, ...]) -> pd.Series:
    x = coef["const"] + sum(coef[f] * frame[f] for f in features)
    return pd.Series(x, index=frame.index, dtype=float)


def _ols(y: pd.Series, x: pd.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    import statsmodels.api as sm

    model = sm.OLS(y.to_numpy(float), sm.add_constant(x.to_numpy(float), has_constant="add"))
    res = model.fit(cov_type="HAC", cov_kwds={"maxlags": RV_WINDOW})
    names = ["const", *x.columns]
    return dict(zip(names, map(float, res.params), strict=True)), dict(
        zip(names, map(float, res.bse), strict=True)
    )


def fit_iv_proxy(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    *,
    symbol: str = "SPX",
    holdout_start: str | pd.Timestamp = "2017-01-01",
    features: pd.DataFrame | None = None,
) -> IvProxyFit:
    """Fit the IV proxy on the overlap of ``symbol``'s bars and IV index.

    Parameters
    ----------
    bars
        Bars contract frame containing ``symbol``.
    iv
        IV index frame (``date, symbol, iv``) containing ``symbol``.
    symbol
        The market whose index anchors the fit.
    holdout_start
        Overlap dates on/after this are held out to measure out-of-sample error; the final
        coefficients are then refit on the whole overlap.
    features
        ``realized_vol_features`` of the symbol's bars when already computed.

    Returns
    -------
    IvProxyFit
    """
    feats = (
        realized_vol_features(bars.loc[bars["symbol"] == symbol].reset_index(drop=True))
        if features is None
        else features.loc[features["symbol"] == symbol].reset_index(drop=True)
    )
    index = iv.loc[iv["symbol"] == symbol, ["date", "iv"]]
    overlap = feats.merge(index, on="date", how="inner").dropna(subset=[*PROXY_FEATURES, "iv"])
    if len(overlap) < 2 * RV_WINDOW:
        raise ValueError(
            f"IV proxy for {symbol}: only {len(overlap)} dates where both the IV index and "
            f"{RV_WINDOW}-day realized volatility exist; need at least {2 * RV_WINDOW}"
        )
    cut = pd.Timestamp(holdout_start)
    fit_mask = overlap["date"] < cut
    if fit_mask.sum() < 2 * RV_WINDOW or (~fit_mask).sum() < RV_WINDOW:
        raise ValueError(
            f"IV proxy for {symbol}: holdout_start {cut.date()} leaves {int(fit_mask.sum())} fit "
            f"and {int((~fit_mask).sum())} holdout dates; need >= {2 * RV_WINDOW} and "
            f">= {RV_WINDOW} (overlap {overlap['date'].min().date()}.."
            f"{overlap['date'].max().date()})"
        )
    x = overlap[list(PROXY_FEATURES)]
    y = overlap["iv"]
    coef_fit, _ = _ols(y[fit_mask], x[fit_mask])
    coef_final, se_final = _ols(y, x)

    overlap = overlap.assign(
        proxy_fit=_linear(coef_fit, overlap, PROXY_FEATURES),
        proxy_final=_linear(coef_final, overlap, PROXY_FEATURES),
        in_holdout=~fit_mask,
    )
    hold = overlap.loc[~fit_mask]
    fit_rows = overlap.loc[fit_mask]
    return IvProxyFit(
        symbol=symbol,
        features=PROXY_FEATURES,
        coefficients=coef_final,
        std_errors=se_final,
        fit_start=overlap["date"].min(),
        holdout_start=cut,
        fit_end=overlap["date"].max(),
        in_sample=_error_stats(fit_rows["iv"], fit_rows["proxy_fit"]),
        out_of_sample=_error_stats(hold["iv"], hold["proxy_fit"]),
        naive_out_of_sample=_error_stats(hold["iv"], hold["rv22"]),
        overlap=overlap[
            ["date", "iv", "rv22", "proxy_fit", "proxy_final", "in_holdout"]
        ].reset_index(drop=True),
    )


ProxyMap = Mapping[str, float]
"""Map coefficients: ``const`` and one per feature (``garch22``)."""


def fit_proxy_map(
    features: pd.DataFrame,
    iv: pd.DataFrame,
    *,
    symbol: str = "SPX",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """OLS fit (HAC standard errors) of the proxy map on ``symbol``'s overlap of features and
    IV index between ``start`` and ``end`` (e.g. a sub-period, to see how much the map moves).

    Parameters
    ----------
    features
        ``realized_vol_features`` output (``date, symbol, garch22``, ...).
    iv
        IV index rows (``date, symbol, iv``).

    Returns
    -------
    tuple
        ``(coefficients, std_errors)`` keyed by ``const`` and the feature names.
    """
    feats = features.loc[features["symbol"] == symbol]
    index = iv.loc[iv["symbol"] == symbol, ["date", "iv"]]
    overlap = _clip_dates(
        feats.merge(index, on="date", how="inner").dropna(subset=[*PROXY_FEATURES, "iv"]),
        start,
        end,
    )
    if len(overlap) < 2 * RV_WINDOW:
        raise ValueError(
            f"IV proxy map for {symbol} between {start} and {end}: only {len(overlap)} dates "
            f"with both the IV index and the features; need at least {2 * RV_WINDOW}"
        )
    return _ols(overlap["iv"], overlap[list(PROXY_FEATURES)])


def iv_with_proxy(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    fit: IvProxyFit | ProxyMap,
    *,
    features: pd.DataFrame | None = None,
    shift: float = 0.0,
) -> pd.DataFrame:
    """IV for every bar: the published index where it exists, else the labelled proxy.

    Dates in a symbol's first 22 bars have no proxy (not enough history) and are left out.

    Parameters
    ----------
    bars
        Bars contract frame.
    iv
        Published IV index rows (``date, symbol, iv``).
    fit
        The proxy map: an ``IvProxyFit`` or its coefficients (``fit_proxy_map``).
    features
        ``realized_vol_features(bars)`` when already computed (the GARCH refits are the slow
        part); computed here otherwise.
    shift
        Added to every proxy value (annualised, e.g. -0.02 = two vol points lower): a
        sensitivity check on the proxy's level. Published values are never shifted.

    Returns
    -------
    pandas.DataFrame
        The iv_index contract with ``source``: ``date, symbol, iv, source`` where ``source`` is
        ``'index'`` or ``'proxy'``; one row per (date, symbol) of ``bars`` that has either.
    """
    feats = realized_vol_features(bars) if features is None else features
    coef = fit.coefficients if isinstance(fit, IvProxyFit) else dict(fit)
    proxy = feats[["date", "symbol"]].assign(iv=_linear(coef, feats, PROXY_FEATURES) + float(shift))
    published = iv[["date", "symbol", "iv"]].rename(columns={"iv": "iv_index"})
    out = proxy.merge(published, on=["date", "symbol"], how="left")
    has_index = out["iv_index"].notna()
    out["source"] = np.where(has_index, "index", "proxy")
    out["iv"] = out["iv_index"].where(has_index, out["iv"])
    # a shifted or sub-period map can reach zero in the calmest weeks: keep IV positive
    out.loc[~has_index, "iv"] = out.loc[~has_index, "iv"].clip(lower=MIN_PROXY_IV)
    out = out.dropna(subset=["iv"])[["date", "symbol", "iv", "source"]]
    return validate("iv_index", out.reset_index(drop=True), source="iv_with_proxy")


def _window_label(start: str, end: str) -> str:
    if start[:4] == end[:4] and start[4:] == "-01-01" and end[4:] == "-12-31":
        return start[:4]
    return f"{start}..{end}"


def band_windows(dates: pd.Series | pd.DatetimeIndex) -> list[tuple[str, str]]:
    """Sub-periods of an overlap for ``proxy_band``: every calendar year with at least 44
    dates, and the first and second half of the overlap."""
    d = pd.DatetimeIndex(pd.Series(dates).dropna().sort_values().unique())
    if len(d) < 4 * RV_WINDOW:
        return []
    out = [
        (f"{y}-01-01", f"{y}-12-31")
        for y in sorted(set(d.year))
        if ((d.year == y).sum()) >= 2 * RV_WINDOW
    ]
    mid = d[len(d) // 2]
    out += [
        (str(d[0].date()), str((mid - pd.Timedelta(days=1)).date())),
        (str(mid.date()), str(d[-1].date())),
    ]
    return out


def proxy_band(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    windows: Sequence[tuple[str, str]] | None = None,
    *,
    symbol: str = "SPX",
    features: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How much the proxy moves when its map is fitted on sub-periods of the overlap.

    Parameters
    ----------
    bars, iv
        Bars and IV index; the maps are fitted on ``symbol``'s overlap.
    windows
        ``(start, end)`` sub-periods, one map each (default ``band_windows`` of the overlap:
        on the embedded data each year 2014-2018 and the halves 2014-16 / 2016-18).
    features
        ``realized_vol_features(bars)`` when already computed.

    Returns
    -------
    tuple
        ``(maps, band)``: ``maps`` has one row per window (``window, const, garch22,
        const_se, garch22_se``); ``band`` has ``date, symbol, low, high`` (the lowest and
        highest proxy over the windows' maps, annualised) for every bar with features.
    """
    feats = realized_vol_features(bars) if features is None else features
    if windows is None:
        overlap = feats.loc[feats["symbol"] == symbol, ["date", *PROXY_FEATURES]].merge(
            iv.loc[iv["symbol"] == symbol, ["date", "iv"]], on="date"
        )
        windows = band_windows(overlap.dropna()["date"])
    if not windows:
        raise ValueError(
            f"IV proxy band for {symbol}: the overlap of its IV index and features is too short "
            f"for sub-period fits (need at least {4 * RV_WINDOW} dates)"
        )
    rows, values = [], []
    for start, end in windows:
        coef, se = fit_proxy_map(feats, iv, symbol=symbol, start=start, end=end)
        rows.append(
            {"window": _window_label(start, end), "start": start, "end": end}
            | coef
            | {f"{k}_se": v for k, v in se.items()}
        )
        values.append(_linear(coef, feats, PROXY_FEATURES).to_numpy())
    stack = np.vstack(values)
    band = feats[["date", "symbol"]].assign(low=stack.min(axis=0), high=stack.max(axis=0))
    return pd.DataFrame(rows), band.dropna(subset=["low", "high"]).reset_index(drop=True)


def coverage(bars: pd.DataFrame, iv: pd.DataFrame) -> pd.DataFrame:
    """What is loaded: per symbol, the bar range and how many days have each kind of IV.

    Returns
    -------
    pandas.DataFrame
        ``symbol, first_date, last_date, bars, iv_index_days, iv_proxy_days,
        iv_scaled_days`` (another symbol's IV scaled), ``iv_uncalibrated_days`` (its own GARCH
        forecast, unmapped) and ``iv_missing_days``.
    """
    merged = bars[["date", "symbol"]].merge(
        iv[["date", "symbol", "source"]], on=["date", "symbol"], how="left"
    )
    source = merged["source"].astype(object)
    merged = merged.assign(
        index=source.eq("index"),
        proxy=source.eq("proxy"),
        scaled=source.astype(str).str.startswith("scaled") & source.notna(),
        uncalibrated=source.eq("uncalibrated_proxy"),
        missing=source.isna(),
    )
    grouped = merged.groupby("symbol", sort=True)
    counts = grouped[["index", "proxy", "scaled", "uncalibrated", "missing"]].sum().astype(int)
    return pd.DataFrame(
        {
            "first_date": grouped["date"].min(),
            "last_date": grouped["date"].max(),
            "bars": grouped.size(),
            **{f"iv_{k}_days": counts[k] for k in counts.columns},
        }
    ).reset_index()


def yearly_summary(bars: pd.DataFrame) -> pd.DataFrame:
    """Return and volatility by calendar year and symbol.

    Returns
    -------
    pandas.DataFrame
        ``symbol, year, days, total_return`` (close-to-close, from the previous year's last close
        where there is one), ``ann_vol`` (std of daily log returns x sqrt(252)),
        ``max_drawdown`` (worst peak-to-trough of the close within the year, <= 0),
        ``best_day``, ``worst_day`` (simple daily returns).
    """
    df = bars[["date", "symbol", "close"]].copy()
    df["logret"] = log_returns(bars)
    df["ret"] = np.expm1(df["logret"])
    df["year"] = df["date"].dt.year
    g = df.groupby(["symbol", "year"], sort=True)

    def _max_dd(close: pd.Series) -> float:
        return float((close / close.cummax() - 1).min())

    out = pd.DataFrame(
        {
            "days": g.size(),
            "total_return": np.expm1(g["logret"].sum(min_count=1)),
            "ann_vol": g["logret"].std() * np.sqrt(TRADING_DAYS),
            "max_drawdown": g["close"].agg(_max_dd),
            "best_day": g["ret"].max(),
            "worst_day": g["ret"].min(),
        }
    )
    return out.reset_index()
