"""Fit the pricing model's smile to option quotes, and measure the model's error on the
strategy's own spreads before and after.

The model (``research.backtest.pricing``) prices an option from the IV input (the index: VIX,
its proxy, or the VIX-scaled IV) as::

    atm = atm_intercept + atm_ratio * index
    iv(K) = atm * clip(1 - slope * z + curvature * z**2, floor, cap),  z = ln(K/S) / (atm sqrt(T))

``calibrate`` fits ``atm_ratio``, ``atm_intercept``, ``slope`` and ``curvature`` (floor and cap
stay at the defaults) by least squares on the implied volatilities of out-of-the-money quotes
(``scipy.optimize.least_squares``): the chain's ``iv`` column, or the IV implied by the quote's
mid (vectorised bisection on Black–Scholes–Merton) when the file has none.

It then measures what matters to the backtests — the mid of the strategy's spread: on each
quote date, the spread the chain-priced backtest would open (expiry the first listed on or after
``target_dte``, short strike by the chain's delta closest to the middle of the delta range, long
strike nearest ``width_pct`` further out) is priced by the model with the default parameters
(*before*) and with the fitted ones (*after*); the medians of model mid / chain mid are the
figures ``research chains calibrate`` prints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.chain_entries import EntrySpreads, entry_spreads
from research.backtest.chains import ChainBook, chain_book
from research.backtest.pricing import (
    DEFAULT_ATM_RATIO,
    DEFAULT_SKEW_CAP_RATIO,
    DEFAULT_SKEW_FLOOR_RATIO,
    DEFAULT_SKEW_SLOPE,
    bs_price,
    implied_vols,
)
from research.backtest.spreads import BacktestConfig, ConfigError

__all__ = [
    "SCOPES",
    "SmileFit",
    "calibrate",
    "fit_smile",
    "implied_vols",
    "load_smile",
    "model_mids",
    "model_prices",
    "quote_day_book",
    "scope_quotes",
    "spread_ratios",
    "usable_quotes",
]

MIN_QUOTES = 50
DELTA_RANGE = (0.02, 0.6)
"""|delta| of the quotes fitted when the chain has deltas."""


@dataclass(frozen=True)
class SmileFit:
    """Fitted smile parameters and the model's measured error (YAML-serialisable)."""

    atm_ratio: float
    atm_intercept: float
    slope: float
    curvature: float
    floor: float = DEFAULT_SKEW_FLOOR_RATIO
    cap: float = DEFAULT_SKEW_CAP_RATIO
    underlying: str = ""
    source: str = ""
    start: str = ""
    end: str = ""
    quotes: int = 0
    iv_rmse_before: float = math.nan
    """Root mean square IV error of the default model on the fitted quotes (vol points)."""
    iv_rmse_after: float = math.nan
    spread_days: int = 0
    ratio_before: float = math.nan
    """Median model / chain mid of the strategy's spread, default parameters."""
    ratio_after: float = math.nan
    ratio_after_range: tuple[float, float] = field(default=(math.nan, math.nan))
    scope: str = "pooled"
    """``strategy``: fitted to the quotes the strategy trades; ``pooled``: to every
    out-of-the-money quote (files written before scopes existed are pooled fits)."""
    strategy: str = ""
    target_dte: int = 0
    oos_days: int = 0
    """Quote days the fit was scored on out of sample (``calibration_oos``; 0: not scored)."""
    oos_ratio_default: float = math.nan
    """Median model / chain mid of the strategy's spread out of sample, default parameters."""
    oos_ratio_calibrated: float = math.nan
    oos_verdict: str = ""
    """``calibration_oos.trust``: calibrated, default, either or untested."""

    def config_changes(self) -> dict[str, float]:
        """The changes that make a ``BacktestConfig`` price with this smile."""
        return {
            "atm_ratio": self.atm_ratio,
            "atm_intercept": self.atm_intercept,
            "skew_slope": self.slope,
            "skew_curvature": self.curvature,
            "skew_floor": self.floor,
            "skew_cap": self.cap,
        }

    def write(self, path: str | Path) -> Path:
        """Write as YAML (atomically)."""
        import yaml

        from research._io import write_text_atomic

        data = asdict(self)
        data["ratio_after_range"] = list(self.ratio_after_range)
        clean = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()
        }
        path = Path(path)
        write_text_atomic(path, yaml.safe_dump(clean, sort_keys=False))
        return path


def load_smile(path: str | Path) -> SmileFit:
    """Read a ``research chains calibrate`` YAML file; unknown keys and bad values are errors
    naming the file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read smile parameters: {exc}") from exc
    known = set(SmileFit.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    missing = sorted({"atm_ratio", "atm_intercept", "slope", "curvature"} - set(data))
    if unknown or missing:
        raise ConfigError(f"{path}: unknown keys {unknown} / missing keys {missing}")
    data = {k: (math.nan if v is None else v) for k, v in data.items()}
    if "ratio_after_range" in data:
        data["ratio_after_range"] = tuple(data["ratio_after_range"])
    fit = SmileFit(**data)
    BacktestConfig().replace(**fit.config_changes())  # validates the values
    return fit


def _model_iv(
    theta: npt.ArrayLike,
    index: npt.ArrayLike,
    s: npt.ArrayLike,
    k: npt.ArrayLike,
    t: npt.ArrayLike,
    floor: float,
    cap: float,
) -> np.ndarray:
    ratio, intercept, slope, curvature = np.asarray(theta, dtype=float)
    atm = np.maximum(intercept + ratio * np.asarray(index, float), 1e-4)
    z = np.log(np.asarray(k, float) / np.asarray(s, float)) / (atm * np.sqrt(np.asarray(t, float)))
    iv: np.ndarray = atm * np.clip(1 - slope * z + curvature * z**2, floor, cap)
    return iv


def _quotes(
    chains: pd.DataFrame, index: pd.DataFrame, dte: tuple[int, int], rate: float, q: float
) -> pd.DataFrame:
    c = chains.merge(
        index.rename(columns={"date": "quote_date", "symbol": "underlying", "iv": "index_iv"})[
            ["quote_date", "underlying", "index_iv"]
        ],
        on=["quote_date", "underlying"],
        how="inner",
    )
    c = c.assign(t=(c["expiration"] - c["quote_date"]).dt.days / 365.0)
    days = c["t"] * 365
    call = c["type"] == "call"
    otm = (call & (c["strike"] > c["underlying_price"])) | (
        ~call & (c["strike"] < c["underlying_price"])
    )
    quoted = (c["ask"] > 0) & (c["bid"] > 0) & (c["ask"] >= c["bid"])
    keep = otm & quoted & (days >= dte[0]) & (days <= dte[1])
    if "delta" in c.columns:  # the part of the smile spreads are sold in, not the far wings
        keep &= c["delta"].abs().between(*DELTA_RANGE) | c["delta"].isna()
    c = c.loc[keep].copy()
    mid = 0.5 * (c["bid"] + c["ask"])
    if "iv" in c.columns and c["iv"].notna().any():
        c["market_iv"] = c["iv"]
    else:
        c["market_iv"] = np.nan
    missing = c["market_iv"].isna()
    if missing.any():
        m = c.loc[missing]
        c.loc[missing, "market_iv"] = implied_vols(
            mid[missing].to_numpy(),
            m["underlying_price"].to_numpy(),
            m["strike"].to_numpy(),
            m["t"].to_numpy(),
            rate,
            q,
            (m["type"] == "call").to_numpy(),
        )
    return c.dropna(subset=["market_iv"])


def quote_day_book(
    chains: pd.DataFrame, config: BacktestConfig | None = None
) -> tuple[ChainBook, pd.DatetimeIndex, tuple[str, ...], np.ndarray]:
    """A chain book on the chain's own quote dates, with each day's ``underlying_price`` as
    the spot (NaN where an underlying has no quote that day): the input of
    ``chain_entries.entry_spreads`` without a backtest panel."""
    tickers = tuple(sorted(str(u) for u in chains["underlying"].unique()))
    dates = pd.DatetimeIndex(sorted(chains["quote_date"].unique()))
    spot = (
        chains.groupby(["quote_date", "underlying"])["underlying_price"]
        .first()
        .unstack("underlying")
        .reindex(index=dates, columns=list(tickers))
    )
    cfg = config or BacktestConfig()
    q = cfg.dividend_yield(tickers[0]) if len(tickers) == 1 else cfg.default_dividend_yield
    book = chain_book(dates, tickers, chains, rate=cfg.rate, dividend_yield=q)
    return book, dates, tickers, spot.to_numpy(float)


def model_prices(rows: pd.DataFrame, index: pd.DataFrame, config: BacktestConfig) -> np.ndarray:
    """The model's price of each option (``quote_date, underlying, expiration, spot, strike,
    type``) with ``config``'s ATM map and smile, from the IV index on the quote date (NaN where
    the index has none)."""
    if not len(rows):
        return np.empty(0)
    cfg = config
    level = (
        rows[["quote_date", "underlying"]]
        .merge(
            index.rename(columns={"date": "quote_date", "symbol": "underlying"})[
                ["quote_date", "underlying", "iv"]
            ],
            on=["quote_date", "underlying"],
            how="left",
        )["iv"]
        .to_numpy(float)
    )
    s = rows["spot"].to_numpy(float)
    k = rows["strike"].to_numpy(float)
    t = (rows["expiration"] - rows["quote_date"]).dt.days.to_numpy(float) / 365.0
    found, names = pd.factorize(rows["underlying"])
    q = np.array([cfg.dividend_yield(str(u)) for u in names], float)[found]
    atm = cfg.atm_intercept + cfg.atm_ratio * level
    slope = cfg.skew_slope if cfg.skew_slope is not None else DEFAULT_SKEW_SLOPE
    theta = np.array([1.0, 0.0, slope, cfg.skew_curvature])
    known = np.isfinite(atm)
    iv = _model_iv(theta, np.where(known, atm, 0.2), s, k, t, cfg.skew_floor, cfg.skew_cap)
    call = (rows["type"] == "call").to_numpy()
    out = np.where(
        call,
        np.asarray(bs_price(s, k, t, cfg.rate, iv, "call", q), float),
        np.asarray(bs_price(s, k, t, cfg.rate, iv, "put", q), float),
    )
    prices: np.ndarray = np.where(known, out, np.nan)
    return prices


def model_mids(spreads: pd.DataFrame, index: pd.DataFrame, config: BacktestConfig) -> np.ndarray:
    """The model's mid (short minus long) of each spread (``quote_date, underlying,
    expiration, short_strike, long_strike, spot``) of ``config``'s strategy (``model_prices``
    of both legs)."""
    kind = "call" if config.spread.strategy == "bear_call" else "put"
    base = spreads[["quote_date", "underlying", "expiration", "spot"]].assign(type=kind)
    short = model_prices(base.assign(strike=spreads["short_strike"]), index, config)
    long_ = model_prices(base.assign(strike=spreads["long_strike"]), index, config)
    mids: np.ndarray = short - long_
    return mids


def spread_ratios(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    fit: SmileFit | None,
    *,
    config: BacktestConfig | None = None,
    entries: EntrySpreads | None = None,
) -> pd.DataFrame:
    """Per quote date: the strategy's spread from the chain (``chain_entries.entry_spreads``,
    the engine's own choice, on every quote day) and the model's mid for it.

    Parameters
    ----------
    fit
        The smile to price with (None: ``config``'s own, the defaults unless changed).
    entries
        The chain's spreads when already computed (they do not depend on the fit).

    Returns
    -------
    pandas.DataFrame
        ``quote_date, underlying, expiration, short_strike, long_strike, chain_mid, model_mid,
        ratio``: days whose spread has a positive chain mid and an IV index.
    """
    cfg = config or BacktestConfig()
    if entries is None:
        book, dates, tickers, spot = quote_day_book(chains, cfg)
        entries = entry_spreads(book, dates, tickers, spot, cfg, inside_data=False)
    if fit is not None:
        cfg = cfg.replace(**fit.config_changes())
    sp = entries.spreads
    sp = sp.loc[sp["chain_mid"] > 0].reset_index(drop=True)
    out = sp[["quote_date", "underlying", "expiration", "short_strike", "long_strike", "chain_mid"]]
    out = out.assign(model_mid=model_mids(sp, index, cfg))
    out = out.loc[out["model_mid"].notna()].reset_index(drop=True)
    return out.assign(ratio=out["model_mid"] / out["chain_mid"])


Scope = Literal["strategy", "pooled"]
SCOPES: tuple[str, ...] = ("strategy", "pooled")
STRATEGY_DELTAS = (0.02, 0.5)
"""|delta| of the strategy-scoped quotes: from the far wing its long legs sit in to the money,
where its stops are hit."""


def scope_quotes(quotes: pd.DataFrame, config: BacktestConfig, scope: Scope) -> pd.DataFrame:
    """The quotes a fit uses: every out-of-the-money quote (``pooled``), or only what the
    strategy trades (``strategy``): its side (calls for the bear call, puts for the bull put),
    |delta| in ``STRATEGY_DELTAS`` (from the moneyness when the chain has no delta: strikes
    out of the money by at most 4 ATM standard deviations) and at most ``target_dte + 30``
    days to expiry (its expirations, from entry to settlement)."""
    if scope == "pooled":
        return quotes
    sp = config.spread
    side = "call" if sp.strategy == "bear_call" else "put"
    keep = (quotes["type"] == side) & (quotes["t"] * 365 <= sp.target_dte + 30)
    if "delta" in quotes.columns and quotes["delta"].notna().all():
        keep &= quotes["delta"].abs().between(*STRATEGY_DELTAS)
    else:
        sd = quotes["market_iv"] * np.sqrt(quotes["t"])
        keep &= np.abs(np.log(quotes["strike"] / quotes["underlying_price"])) <= 4 * sd
    return quotes.loc[keep]


MAX_FIT_QUOTES = 5_000
"""Quotes a least-squares fit reads at most: an evenly spaced subsample (every k-th quote in
date order, so every part of the period and smile is kept); the reported errors use every
quote."""


def _jacobian(
    theta: np.ndarray,
    index: np.ndarray,
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    floor: float,
    cap: float,
) -> np.ndarray:
    """d iv / d (atm_ratio, atm_intercept, slope, curvature) of ``_model_iv``: with ``x =
    ln(K/S)``, unclipped ``iv = atm - slope x / sqrt(t) + curvature x^2 / (atm t)``; clipped
    ``iv = atm * floor`` (or cap)."""
    ratio, intercept, slope, curvature = theta
    atm = np.maximum(intercept + ratio * index, 1e-4)
    x = np.log(k / s)
    g = 1 - slope * x / (atm * np.sqrt(t)) + curvature * x**2 / (atm**2 * t)
    free = (g > floor) & (g < cap)
    d_atm = np.where(free, 1 - curvature * x**2 / (atm**2 * t), np.clip(g, floor, cap))
    jac = np.empty((len(index), 4))
    jac[:, 0] = d_atm * index
    jac[:, 1] = d_atm
    jac[:, 2] = np.where(free, -x / np.sqrt(t), 0.0)
    jac[:, 3] = np.where(free, x**2 / (atm * t), 0.0)
    return jac


def _fit(quotes: pd.DataFrame, cfg: BacktestConfig) -> tuple[np.ndarray, float, float]:
    """Least-squares smile parameters on ``quotes`` (at most ``MAX_FIT_QUOTES`` of them);
    RMS IV error (vol points) of the default and the fitted parameters on all of them."""
    from scipy.optimize import least_squares

    Four = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    def arrays(q: pd.DataFrame) -> tuple[Four, np.ndarray]:
        index, s, k, t = (
            q[c].to_numpy(float) for c in ("index_iv", "underlying_price", "strike", "t")
        )
        return (index, s, k, t), q["market_iv"].to_numpy(float)

    every, market_all = arrays(quotes)
    step = -(-len(quotes) // MAX_FIT_QUOTES)
    used, market = arrays(quotes.sort_values("quote_date", kind="stable").iloc[::step])
    before = np.array([DEFAULT_ATM_RATIO, 0.0, DEFAULT_SKEW_SLOPE, 0.0])
    clip = (cfg.skew_floor, cfg.skew_cap)

    def residuals(theta: np.ndarray) -> np.ndarray:
        diff: np.ndarray = _model_iv(theta, *used, *clip) - market
        return diff

    def jacobian(theta: np.ndarray) -> np.ndarray:
        return _jacobian(theta, *used, *clip)

    # the clip makes the cost flat where the floor or cap binds: start from the defaults and
    # from a flat smile, keep the better of the two solutions
    result = min(
        (
            least_squares(
                residuals,
                start,
                jac=jacobian,
                bounds=([0.2, -0.2, 0.0, 0.0], [2.0, 0.2, 2.0, 1.0]),
                x_scale="jac",
            )
            for start in (before, np.array([DEFAULT_ATM_RATIO, 0.0, 0.0, 0.0]))
        ),
        key=lambda r: float(r.cost),
    )

    def rmse(theta: np.ndarray) -> float:
        return float(np.sqrt(np.mean((_model_iv(theta, *every, *clip) - market_all) ** 2)) * 100)

    return result.x, rmse(before), rmse(result.x)


def usable_quotes(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    config: BacktestConfig,
    *,
    dte: tuple[int, int] = (7, 90),
) -> pd.DataFrame:
    """Out-of-the-money, quoted, ``dte`` days to expiry, with an IV index on the quote date
    and an implied volatility (the chain's, else implied from the mid): what every fit reads."""
    unds = sorted(chains["underlying"].unique())
    q = config.dividend_yield(unds[0]) if len(unds) == 1 else config.default_dividend_yield
    return _quotes(chains, index, dte, config.rate, q)


def fit_smile(
    quotes: pd.DataFrame,
    config: BacktestConfig,
    *,
    scope: Scope = "strategy",
    source: str = "",
    what: str = "option chains",
) -> SmileFit:
    """The smile fitted to ``usable_quotes`` restricted to ``scope`` (no spread ratios).

    Raises
    ------
    ValueError
        Fewer than ``MIN_QUOTES`` quotes in scope.
    """
    cfg = config
    use = scope_quotes(quotes, cfg, scope)
    if len(use) < MIN_QUOTES:
        where = (
            "usable out-of-the-money quotes"
            if scope == "pooled"
            else f"usable quotes of the strategy's side ({cfg.spread.strategy}) within "
            f"{cfg.spread.target_dte + 30} days to expiry"
        )
        raise ValueError(f"{what}: only {len(use)} {where} (need {MIN_QUOTES})")
    theta, rmse_before, rmse_after = _fit(use, cfg)
    ratio, intercept, slope, curvature = (float(x) for x in theta)
    return SmileFit(
        atm_ratio=ratio,
        atm_intercept=intercept,
        slope=slope,
        curvature=curvature,
        floor=cfg.skew_floor,
        cap=cfg.skew_cap,
        underlying=",".join(sorted(str(u) for u in use["underlying"].unique())),
        source=source,
        start=str(use["quote_date"].min().date()),
        end=str(use["quote_date"].max().date()),
        quotes=len(use),
        iv_rmse_before=rmse_before,
        iv_rmse_after=rmse_after,
        scope=scope,
        strategy=cfg.spread.strategy,
        target_dte=cfg.spread.target_dte,
    )


def calibrate(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    *,
    dte: tuple[int, int] = (7, 90),
    config: BacktestConfig | None = None,
    source: str = "",
    scope: Scope = "strategy",
    entries: EntrySpreads | None = None,
) -> SmileFit:
    """Fit the smile to ``chains`` (``option_chains`` rows) given the IV index (``date,
    symbol, iv``) of their underlyings; report the error before and after (in sample: on the
    quotes and the quote days it was fitted to — ``calibration_oos`` scores it out of sample).

    Parameters
    ----------
    scope
        ``strategy`` (default): fit only the quotes the strategy trades (``scope_quotes``);
        ``pooled``: every out-of-the-money quote of both sides.
    entries
        The chain's strategy spreads when already computed (``chain_entries.entry_spreads``).

    Raises
    ------
    ValueError
        Fewer than ``MIN_QUOTES`` usable quotes in scope, or no IV index for the chain's
        underlyings on its dates.
    """
    cfg = config or BacktestConfig()
    unds = sorted(chains["underlying"].unique())
    quotes = usable_quotes(chains, index, cfg, dte=dte)
    if len(quotes) < MIN_QUOTES:
        covered = sorted(set(index["symbol"]))
        raise ValueError(
            f"{source or 'option chains'}: only {len(quotes)} usable out-of-the-money quotes with "
            f"{dte[0]}-{dte[1]} days to expiry and an IV index on the same date (need "
            f"{MIN_QUOTES}); chain underlyings {unds}, IV index symbols {covered}"
        )
    fit = fit_smile(quotes, cfg, scope=scope, source=source, what=source or "option chains")
    default = SmileFit(
        DEFAULT_ATM_RATIO, 0.0, DEFAULT_SKEW_SLOPE, 0.0, cfg.skew_floor, cfg.skew_cap
    )
    if entries is None:
        book, dates, tickers, spot = quote_day_book(chains, cfg)
        entries = entry_spreads(book, dates, tickers, spot, cfg, inside_data=False)
    was = spread_ratios(chains, index, default, config=cfg, entries=entries)
    now = spread_ratios(chains, index, fit, config=cfg, entries=entries)
    if len(now) == 0:
        return fit
    return dataclasses.replace(
        fit,
        spread_days=len(now),
        ratio_before=float(was["ratio"].median()),
        ratio_after=float(now["ratio"].median()),
        ratio_after_range=(float(now["ratio"].min()), float(now["ratio"].max())),
    )
