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

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.pricing import (
    DEFAULT_ATM_RATIO,
    DEFAULT_SKEW_CAP_RATIO,
    DEFAULT_SKEW_FLOOR_RATIO,
    DEFAULT_SKEW_SLOPE,
    bs_delta,
    bs_price,
)
from research.backtest.spreads import BacktestConfig, ConfigError

__all__ = ["SmileFit", "calibrate", "implied_vols", "load_smile", "spread_ratios"]

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


def implied_vols(
    price: npt.ArrayLike,
    s: npt.ArrayLike,
    k: npt.ArrayLike,
    t: npt.ArrayLike,
    r: float,
    q: float,
    call: npt.ArrayLike,
    *,
    low: float = 1e-4,
    high: float = 5.0,
    iterations: int = 60,
) -> np.ndarray:
    """Black–Scholes–Merton implied volatilities by vectorised bisection (NaN where the price
    is outside the prices at ``low`` and ``high``)."""
    price = np.asarray(price, float)
    lo = np.full(price.shape, low)
    hi = np.full(price.shape, high)

    def value(sig: np.ndarray) -> np.ndarray:
        c = np.asarray(bs_price(s, k, t, r, sig, "call", q))
        p = np.asarray(bs_price(s, k, t, r, sig, "put", q))
        return np.where(call, c, p)

    ok = (value(lo) <= price) & (price <= value(hi))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = value(mid) > price
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(ok, 0.5 * (lo + hi), np.nan)


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


def spread_ratios(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    fit: SmileFit | None,
    *,
    config: BacktestConfig | None = None,
) -> pd.DataFrame:
    """Per quote date: the strategy's spread from the chain and the model's mid for it.

    Returns
    -------
    pandas.DataFrame
        ``quote_date, expiration, short_strike, long_strike, chain_mid, model_mid, ratio``.
    """
    cfg = config or BacktestConfig()
    if fit is not None:
        cfg = cfg.replace(**fit.config_changes())
    sp = cfg.spread
    call = sp.strategy == "bear_call"
    kind: Literal["call", "put"] = "call" if call else "put"
    rows = []
    index_of = index.set_index(["date", "symbol"])["iv"]
    sub = chains.loc[chains["type"] == kind]
    # numpy columns once; each quote date is then a slice of positions (no per-day pandas work)
    price = sub["underlying_price"].to_numpy(dtype=float, na_value=np.nan)
    bid = sub["bid"].to_numpy(dtype=float, na_value=np.nan)
    ask = sub["ask"].to_numpy(dtype=float, na_value=np.nan)
    strike = sub["strike"].to_numpy(dtype=float, na_value=np.nan)
    expiry = pd.to_datetime(sub["expiration"]).to_numpy("datetime64[ns]")
    deltas = sub["delta"].to_numpy(dtype=float, na_value=np.nan) if "delta" in sub.columns else None
    vols = sub["iv"].to_numpy(dtype=float, na_value=np.nan) if "iv" in sub.columns else None
    day_ns = np.timedelta64(1, "D")
    groups: dict[tuple[Any, Any], np.ndarray] = dict(
        sub.groupby(["quote_date", "underlying"], sort=True).indices  # type: ignore[arg-type]
    )
    for quote_day, und in sorted(groups):
        pos = groups[(quote_day, und)]
        day = pd.Timestamp(quote_day)
        key = (day, str(und))
        if key not in index_of.index:
            continue
        s = float(price[pos[0]])
        quoted = pos[(ask[pos] > 0) & (ask[pos] >= bid[pos])]
        days_left = (expiry[quoted] - day.to_datetime64()) // day_ns
        future = quoted[days_left >= sp.target_dte]
        if not len(future):
            continue
        exp = expiry[future].min()
        legs = future[expiry[future] == exp]
        t = int((exp - day.to_datetime64()) // day_ns) / 365.0
        q = cfg.dividend_yield(str(und))
        ks_all = strike[legs]
        if deltas is not None and not np.isnan(deltas[legs]).any():
            delta = np.abs(deltas[legs])
        else:
            iv = vols[legs] if vols is not None else None
            if iv is None or np.isnan(iv).any():
                iv = implied_vols(
                    0.5 * (bid[legs] + ask[legs]),
                    s,
                    ks_all,
                    t,
                    cfg.rate,
                    q,
                    np.full(len(legs), call),
                )
            delta = np.abs(np.asarray(bs_delta(s, ks_all, t, cfg.rate, iv, kind, q)))
        otm = (ks_all > s) if call else (ks_all < s)
        ok = otm & (delta >= sp.min_delta) & (delta <= sp.max_delta)
        if not ok.any():
            continue
        mid_d = 0.5 * (sp.min_delta + sp.max_delta)
        i = np.flatnonzero(ok)[np.argmin(np.abs(delta[ok] - mid_d))]
        ks = float(ks_all[i])
        want = ks + sp.width_pct / 100 * s if call else ks - sp.width_pct / 100 * s
        beyond = ks_all[(ks_all > ks) if call else (ks_all < ks)]
        if not len(beyond):
            continue
        kl = float(beyond[np.argmin(np.abs(beyond - want))])
        short, long_ = legs[i], legs[np.flatnonzero(ks_all == kl)[0]]
        chain_mid = 0.5 * (bid[short] + ask[short]) - 0.5 * (bid[long_] + ask[long_])
        if not chain_mid > 0:
            continue
        atm = cfg.atm_intercept + cfg.atm_ratio * float(index_of.loc[key])
        theta = np.array(
            [
                1.0,
                0.0,
                cfg.skew_slope if cfg.skew_slope is not None else DEFAULT_SKEW_SLOPE,
                cfg.skew_curvature,
            ]
        )
        ivs = _model_iv(
            theta,
            np.full(2, atm),
            s,
            np.array([ks, kl]),
            np.full(2, t),
            cfg.skew_floor,
            cfg.skew_cap,
        )
        prices = np.asarray(bs_price(s, np.array([ks, kl]), t, cfg.rate, ivs, kind, q))
        model_mid = float(prices[0] - prices[1])
        rows.append(
            {
                "quote_date": day,
                "underlying": und,
                "expiration": pd.Timestamp(exp),
                "short_strike": ks,
                "long_strike": kl,
                "chain_mid": float(chain_mid),
                "model_mid": model_mid,
                "ratio": model_mid / float(chain_mid),
            }
        )
    return pd.DataFrame(rows)


def calibrate(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    *,
    dte: tuple[int, int] = (7, 90),
    config: BacktestConfig | None = None,
    source: str = "",
) -> SmileFit:
    """Fit the smile to ``chains`` (``option_chains`` rows) given the IV index (``date,
    symbol, iv``) of their underlyings; report the error before and after.

    Raises
    ------
    ValueError
        Fewer than ``MIN_QUOTES`` usable out-of-the-money quotes, or no IV index for the
        chain's underlyings on its dates.
    """
    from scipy.optimize import least_squares

    cfg = config or BacktestConfig()
    unds = sorted(chains["underlying"].unique())
    q = cfg.dividend_yield(unds[0]) if len(unds) == 1 else cfg.default_dividend_yield
    quotes = _quotes(chains, index, dte, cfg.rate, q)
    if len(quotes) < MIN_QUOTES:
        covered = sorted(set(index["symbol"]))
        raise ValueError(
            f"{source or 'option chains'}: only {len(quotes)} usable out-of-the-money quotes with "
            f"{dte[0]}-{dte[1]} days to expiry and an IV index on the same date (need "
            f"{MIN_QUOTES}); chain underlyings {unds}, IV index symbols {covered}"
        )
    args = (
        quotes["index_iv"].to_numpy(),
        quotes["underlying_price"].to_numpy(),
        quotes["strike"].to_numpy(),
        quotes["t"].to_numpy(),
        cfg.skew_floor,
        cfg.skew_cap,
    )
    market = quotes["market_iv"].to_numpy()
    before = np.array([DEFAULT_ATM_RATIO, 0.0, DEFAULT_SKEW_SLOPE, 0.0])

    def residuals(theta: np.ndarray) -> np.ndarray:
        diff: np.ndarray = _model_iv(theta, *args) - market
        return diff

    result = least_squares(
        residuals, before, bounds=([0.2, -0.2, 0.0, 0.0], [2.0, 0.2, 2.0, 1.0]), x_scale="jac"
    )
    ratio, intercept, slope, curvature = (float(x) for x in result.x)
    fit = SmileFit(
        atm_ratio=ratio,
        atm_intercept=intercept,
        slope=slope,
        curvature=curvature,
        floor=cfg.skew_floor,
        cap=cfg.skew_cap,
        underlying=",".join(unds),
        source=source,
        start=str(chains["quote_date"].min().date()),
        end=str(chains["quote_date"].max().date()),
        quotes=len(quotes),
        iv_rmse_before=float(np.sqrt(np.mean(residuals(before) ** 2)) * 100),
        iv_rmse_after=float(np.sqrt(np.mean(result.fun**2)) * 100),
    )
    default = SmileFit(
        DEFAULT_ATM_RATIO, 0.0, DEFAULT_SKEW_SLOPE, 0.0, cfg.skew_floor, cfg.skew_cap
    )
    was = spread_ratios(chains, index, default, config=cfg)
    now = spread_ratios(chains, index, fit, config=cfg)
    if len(now) == 0:
        return fit
    return SmileFit(
        **{
            **{k: getattr(fit, k) for k in fit.__dataclass_fields__},
            "spread_days": len(now),
            "ratio_before": float(was["ratio"].median()),
            "ratio_after": float(now["ratio"].median()),
            "ratio_after_range": (float(now["ratio"].min()), float(now["ratio"].max())),
        }
    )
