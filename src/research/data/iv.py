"""The at-the-money implied volatility each underlying gets in the backtest, with no look-ahead.

The credit-spread engine prices options from the close and one ATM implied volatility per
(date, symbol). ``underlying_iv`` builds that table from the bars and an IV frame such as
``research.data.market.iv_with_proxy`` (``date, symbol, iv, source``; ``source`` is ``'index'``
for a published IV index such as VIX, ``'proxy'`` for the GARCH-based proxy).

Anchor and scaled symbols
-------------------------
One symbol is the *anchor* (default ``SPX``, whose IV index is VIX). Its ATM IV is its own IV
(VIX where published, the proxy elsewhere).

Every other symbol uses its own *published* index when there is one that day (e.g. a user's own
index for a symbol); otherwise its IV is the anchor's scaled by the ratio of realized volatilities::

    atm_iv[sym, t] = anchor_iv[t] * clip(rv[sym, t] / rv[anchor, t], *ratio_bounds)

where ``rv[., t]`` is the annualised root mean square of the last ``rv_window`` close-to-close
log returns up to and including t. Why not the symbol's own GARCH proxy: no IV index is
published for the NASDAQ Composite (IXIC; VXN belongs to the Nasdaq-100), so an IXIC proxy
would be a pure volatility forecast mapped with coefficients fitted on SPX/VIX. Scaling VIX
instead keeps the market's actual fear level, and its variance risk premium, on the dates VIX
exists (2014-2018 here), and makes IXIC move with VIX the way a real IXIC
implied vol does, while the realized-volatility ratio carries IXIC's higher volatility. Before
VIX the anchor IV is itself the labelled proxy. The ratio is clipped to ``ratio_bounds`` so a
calm or erratic window in one market cannot produce an implausible IV.

Every value is labelled in ``iv_source``:

* ``'index'`` / ``'proxy'``: the symbol's own IV with that source (the anchor's source is passed
  through as is; other symbols only take their own IV when it is ``'index'``);
* ``'scaled:<anchor source>'``: scaled anchor IV, e.g. ``'scaled:index'`` on VIX days,
  ``'scaled:proxy'`` before 2014;
* ``'missing'``: no IV that day (``atm_iv`` NaN): the anchor has no IV for the date, or a
  realized volatility needs more history (the first ``rv_window`` returns of either symbol).
  Such rows are kept, not dropped, so the engine sees the gap (and skips the entry) instead of
  silently shifting days.

Percentile
----------
``iv_percentile[t]`` = 100 x (number of the window's values <= ``atm_iv[t]``) / (number of
values in the window), where the window is the symbol's last ``pct_window`` rows up to and
including t (its own bars, in date order) and "values" are the non-NaN ``atm_iv`` in it
(today's included, so the result lies in ``(0, 100]``). It is NaN when ``atm_iv[t]`` is NaN or
the window holds fewer than ``pct_min_periods`` (default 20) values. The history mixes sources
(e.g. SPX proxy before 2014, VIX after) as the engine would have seen them.

No look-ahead
-------------
Every value at t uses bars and IVs dated <= t only: computing on data cut at any date gives the
same rows as computing on the full data and then cutting. (The IV frame itself must have that
property: ``iv_with_proxy``'s proxy does, up to its two mapping coefficients, see
``research.data.market``.)

``vix`` is the anchor IV x 100 on the row's date (VIX points, the trade export's ``vix`` field);
whether that day's anchor IV is the published index or the proxy shows in the anchor's
``iv_source`` and in the ``scaled:`` suffix of the other symbols.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.constants import TRADING_DAYS
from research.exceptions import ResearchError

__all__ = [
    "BUILTIN_RELATIONS",
    "MISSING_SOURCE",
    "UNCALIBRATED",
    "IvResolution",
    "effective_relations",
    "resolve_iv",
    "underlying_iv",
]

MISSING_SOURCE = "missing"
OUTPUT_COLUMNS: tuple[str, ...] = (
    "date",
    "symbol",
    "atm_iv",
    "iv_source",
    "vix",
    "iv_percentile",
)


def _check_unique(df: pd.DataFrame, what: str) -> None:
    dup = df.duplicated(["date", "symbol"], keep=False)
    if dup.any():
        first = df.loc[dup, ["date", "symbol"]].iloc[0]
        raise ValueError(
            f"{what}: {int(dup.sum())} rows share a (date, symbol), e.g. "
            f"({first['date']}, {first['symbol']})"
        )


def _check_columns(df: pd.DataFrame, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; have {list(df.columns)}")


def _realized_vol(bars: pd.DataFrame, window: int) -> pd.Series:
    """Annualised RMS of the last ``window`` log returns per symbol (NaN until ``window`` exist).

    ``bars`` must be sorted by symbol and date with a default index.
    """
    logret = np.log(bars["close"]).groupby(bars["symbol"], sort=False).diff()
    mean_sq = (
        logret.pow(2)
        .groupby(bars["symbol"], sort=False)
        .transform(lambda s: s.rolling(window, min_periods=window).mean())
    )
    vol: pd.Series = np.sqrt(mean_sq * TRADING_DAYS)
    return vol


def underlying_iv(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    *,
    anchor: str | None = "SPX",
    relations: Mapping[str, str] | None = None,
    rv_window: int = 60,
    pct_window: int = 252,
    ratio_bounds: tuple[float, float] = (0.5, 3.0),
    pct_min_periods: int = 20,
) -> pd.DataFrame:
    """ATM implied volatility, its source, VIX and IV percentile per (date, symbol) of ``bars``.

    See the module docstring for the definitions; every value at t uses data up to t only.

    Parameters
    ----------
    bars : pandas.DataFrame
        Bars with at least ``date, symbol, close``; must contain ``anchor``.
    iv : pandas.DataFrame
        ``date, symbol, iv`` (annualised, e.g. 0.15) and ``source`` (``'index'``/``'proxy'``; a
        frame without ``source`` is taken as all ``'index'``), e.g. from
        ``research.data.market.iv_with_proxy``.
    anchor : str or None, default "SPX"
        Symbol whose IV anchors every other symbol and gives ``vix`` (the legacy single-anchor
        form). None: only the symbols named in ``relations`` are scaled; every other symbol uses
        its own IV from ``iv`` whatever its source, and ``vix`` is the symbol's own anchor's IV
        (or its own IV) x 100.
    relations : mapping, optional
        With ``anchor=None``: symbol -> the symbol whose IV it is scaled from (e.g.
        ``{"IXIC": "SPX"}``); a symbol's own published index still wins where it exists.
    rv_window : int, default 60
        Returns in the realized volatilities of the scaling ratio.
    pct_window : int, default 252
        Rows (trading days of the symbol) in the percentile window, today included.
    ratio_bounds : tuple of float, default (0.5, 3.0)
        Bounds of the realized-volatility ratio ``rv[sym] / rv[anchor]``.
    pct_min_periods : int, default 20
        Fewest non-NaN ``atm_iv`` values in the window for a percentile (<= ``pct_window``).

    Returns
    -------
    pandas.DataFrame
        One row per row of ``bars``, sorted by symbol and date, with columns

        - ``date``, ``symbol``;
        - ``atm_iv``: annualised ATM IV (NaN when missing);
        - ``iv_source``: ``'index'``, ``'proxy'``, ``'scaled:index'``, ``'scaled:proxy'`` or
          ``'missing'``;
        - ``vix``: anchor IV x 100 that date (NaN when the anchor has none);
        - ``iv_percentile``: percentile rank in ``(0, 100]`` of today's ``atm_iv`` in its
          trailing window (NaN until ``pct_min_periods`` values exist).

    Raises
    ------
    ValueError
        On missing columns, duplicate (date, symbol) rows, ``anchor`` absent from ``bars``, or
        invalid windows/bounds.
    """
    if rv_window < 2:
        raise ValueError(f"rv_window must be >= 2, got {rv_window}")
    if not 1 <= pct_min_periods <= pct_window:
        raise ValueError(
            f"need 1 <= pct_min_periods <= pct_window, got {pct_min_periods}, {pct_window}"
        )
    lo, hi = (float(x) for x in ratio_bounds)
    if not 0 < lo <= hi:
        raise ValueError(f"ratio_bounds must satisfy 0 < low <= high, got {ratio_bounds}")
    _check_columns(bars, ("date", "symbol", "close"), "bars")
    _check_columns(iv, ("date", "symbol", "iv"), "iv")
    _check_unique(bars, "bars")
    _check_unique(iv, "iv")

    b = (
        bars[["date", "symbol", "close"]]
        .sort_values(["symbol", "date"], kind="stable")
        .reset_index(drop=True)
    )
    if anchor is None:
        return _related_iv(
            b, iv, dict(relations or {}), rv_window, (lo, hi), pct_window, pct_min_periods
        )
    if not (b["symbol"] == anchor).any():
        raise ValueError(
            f"anchor {anchor!r} has no bars (symbols: {sorted(b['symbol'].unique())}); its "
            "bars are needed for the realized-volatility ratio"
        )
    b["rv"] = _realized_vol(b, rv_window)

    ivf = iv[["date", "symbol", "iv"]].copy()
    ivf["source"] = iv["source"].astype(str) if "source" in iv.columns else "index"
    ivf = ivf.dropna(subset=["iv"])

    anchor_iv = ivf.loc[ivf["symbol"] == anchor, ["date", "iv", "source"]].rename(
        columns={"iv": "anchor_iv", "source": "anchor_source"}
    )
    anchor_rv = b.loc[b["symbol"] == anchor, ["date", "rv"]].rename(columns={"rv": "anchor_rv"})
    own_index = ivf.loc[ivf["source"] == "index", ["date", "symbol", "iv"]].rename(
        columns={"iv": "own_index"}
    )
    df = (
        b.merge(anchor_iv, on="date", how="left", validate="many_to_one")
        .merge(anchor_rv, on="date", how="left", validate="many_to_one")
        .merge(own_index, on=["date", "symbol"], how="left", validate="one_to_one")
    )

    is_anchor = (df["symbol"] == anchor).to_numpy()
    anchor_val = df["anchor_iv"].to_numpy(float)
    anchor_src = df["anchor_source"].astype(object).to_numpy()
    has_anchor = ~np.isnan(anchor_val)
    own = df["own_index"].to_numpy(float)
    has_own = ~np.isnan(own)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(df["rv"].to_numpy(float) / df["anchor_rv"].to_numpy(float), lo, hi)
    scaled = anchor_val * ratio
    has_scaled = has_anchor & ~np.isnan(scaled)

    atm = np.full(len(df), np.nan)
    source = np.full(len(df), MISSING_SOURCE, dtype=object)
    # anchor: its own IV, whatever the source
    sel = is_anchor & has_anchor
    atm[sel] = anchor_val[sel]
    source[sel] = anchor_src[sel]
    # other symbols: a published index of their own, else the scaled anchor IV
    sel = ~is_anchor & has_own
    atm[sel] = own[sel]
    source[sel] = "index"
    sel = ~is_anchor & ~has_own & has_scaled
    atm[sel] = scaled[sel]
    source[sel] = np.char.add("scaled:", anchor_src[sel].astype(str)).astype(object)

    out = pd.DataFrame(
        {
            "date": df["date"],
            "symbol": df["symbol"],
            "atm_iv": atm,
            "iv_source": pd.Series(source, index=df.index, dtype="str"),
            "vix": anchor_val * 100.0,
        }
    )
    return _with_percentile(out, pct_window, pct_min_periods)


def _with_percentile(out: pd.DataFrame, pct_window: int, pct_min_periods: int) -> pd.DataFrame:
    out = out.copy()
    out["iv_percentile"] = (
        out.groupby("symbol", sort=False)["atm_iv"].transform(
            lambda s: s.rolling(pct_window, min_periods=pct_min_periods).rank(
                method="max", pct=True
            )
        )
        * 100.0
    )
    return out[list(OUTPUT_COLUMNS)]


def _related_iv(
    b: pd.DataFrame,
    iv: pd.DataFrame,
    relations: dict[str, str],
    rv_window: int,
    bounds: tuple[float, float],
    pct_window: int,
    pct_min_periods: int,
) -> pd.DataFrame:
    """``underlying_iv`` without a global anchor: each symbol's own IV, or (``relations``) its
    own published index where it exists and its anchor's IV scaled by the realized-volatility
    ratio elsewhere."""
    symbols = set(b["symbol"])
    missing = sorted({a for a in relations.values() if a not in symbols})
    if missing:
        raise ValueError(
            f"IV anchors {missing} have no bars (symbols: {sorted(symbols)}); a symbol's IV "
            "can only be scaled from a symbol whose bars are loaded"
        )
    chained = sorted(s for s, a in relations.items() if a in relations)
    if chained:
        raise ValueError(f"IV relations must point at symbols with their own IV; {chained} do not")
    ivf = iv[["date", "symbol", "iv"]].copy()
    ivf["source"] = iv["source"].astype(str) if "source" in iv.columns else "index"
    ivf = ivf.dropna(subset=["iv"])
    own = b.merge(
        ivf.rename(columns={"iv": "own_iv", "source": "own_source"}),
        on=["date", "symbol"],
        how="left",
        validate="one_to_one",
    )
    atm = own["own_iv"].to_numpy(float).copy()
    source = np.array(
        own["own_source"].astype(object).where(own["own_source"].notna(), MISSING_SOURCE),
        dtype=object,
    )
    anchor_of = own["symbol"].map(relations)
    vix = np.full(len(own), np.nan)
    if relations:
        b = b.copy()
        b["rv"] = _realized_vol(b, rv_window)
        lo, hi = bounds
        for sym, anc in relations.items():
            rows = (own["symbol"] == sym).to_numpy()
            if not rows.any():
                continue
            a_iv = ivf.loc[ivf["symbol"] == anc, ["date", "iv", "source"]]
            merged = (
                own.loc[rows, ["date", "own_iv", "own_source"]]
                .merge(a_iv, on="date", how="left")
                .merge(b.loc[b["symbol"] == sym, ["date", "rv"]], on="date", how="left")
                .merge(
                    b.loc[b["symbol"] == anc, ["date", "rv"]].rename(columns={"rv": "a_rv"}),
                    on="date",
                    how="left",
                )
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = merged["iv"].to_numpy(float) * np.clip(
                    merged["rv"].to_numpy(float) / merged["a_rv"].to_numpy(float), lo, hi
                )
            own_index = (merged["own_source"] == "index").to_numpy() & merged[
                "own_iv"
            ].notna().to_numpy()
            values = np.where(own_index, merged["own_iv"].to_numpy(float), scaled)
            labels = np.where(
                own_index,
                "index",
                np.char.add("scaled:", merged["source"].astype(str).to_numpy().astype(str)),
            ).astype(object)
            labels[~own_index & np.isnan(scaled)] = MISSING_SOURCE
            atm[rows] = values
            source[rows] = labels
            vix[rows] = merged["iv"].to_numpy(float) * 100.0
    plain = anchor_of.isna().to_numpy()
    vix[plain] = atm[plain] * 100.0
    out = pd.DataFrame(
        {
            "date": own["date"],
            "symbol": own["symbol"],
            "atm_iv": atm,
            "iv_source": pd.Series(source, index=own.index, dtype="str"),
            "vix": vix,
        }
    )
    return _with_percentile(out, pct_window, pct_min_periods)


# --------------------------------------------------------------------------------------------
# Which IV each symbol gets
# --------------------------------------------------------------------------------------------

UNCALIBRATED = "uncalibrated_proxy"
"""Source label of a symbol's own GARCH volatility forecast used as its IV, with no map to an
IV index (no variance premium): the last resort, always with a note."""
BUILTIN_RELATIONS: dict[str, str] = {"IXIC": "SPX"}
"""For the built-in data only: the NASDAQ Composite has no IV index, so its IV is the S&P 500's
(VIX or its proxy) scaled by the ratio of their realized volatilities."""


def effective_relations(
    tickers: Sequence[str], bars_path: str | Path | None, relations: Mapping[str, str] | None
) -> dict[str, str]:
    """The user's ``--iv-from`` relations, plus the built-in ones (IXIC from SPX) when the bars
    are the embedded data."""
    out = dict(BUILTIN_RELATIONS) if bars_path is None else {}
    out.update(relations or {})
    return {t: a for t, a in out.items() if t in tickers}


@dataclass(frozen=True, eq=False)
class IvResolution:
    """The IV of every symbol and where it comes from (``resolve_iv``)."""

    frame: pd.DataFrame = field(repr=False)
    """``date, symbol, iv, source`` of the symbols with an IV of their own (``index``,
    ``proxy``, ``uncalibrated_proxy``); related symbols keep only their own published rows."""
    relations: dict[str, str]
    """Symbol -> the symbol its IV is scaled from."""
    maps: dict[str, dict[str, float]]
    """Symbol -> the proxy map fitted on its own IV index (``const``, ``garch22``)."""
    notes: tuple[str, ...]
    """What the user should know (uncalibrated proxies, maps that could not be fitted)."""

    def table(self, bars: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        """``underlying_iv`` of ``bars``: ATM IV with scaled symbols, source, ``vix``,
        percentile."""
        return underlying_iv(bars, self.frame, anchor=None, relations=self.relations, **kwargs)  # type: ignore[arg-type]

    def per_symbol(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Every symbol's final IV (scaled ones included) as ``date, symbol, iv, source`` — what
        the IV-based regime models read."""
        t = self.table(bars)
        t = t.loc[t["atm_iv"].notna()]
        return pd.DataFrame(
            {
                "date": t["date"].to_numpy(),
                "symbol": t["symbol"].to_numpy(),
                "iv": t["atm_iv"].to_numpy(float),
                "source": t["iv_source"].astype(str).to_numpy(),
            }
        )

    def describe(self) -> pd.DataFrame:
        """One row per symbol: where its IV comes from."""
        rows = []
        for sym, part in self.frame.groupby("symbol", sort=True):
            counts = part["source"].value_counts()
            rows.append(
                {
                    "symbol": sym,
                    "iv_from": "own index and proxy"
                    if "proxy" in counts and "index" in counts
                    else (
                        "own index"
                        if "index" in counts and len(counts) == 1
                        else ", ".join(counts.index)
                    ),
                    "index_days": int(counts.get("index", 0)),
                    "proxy_days": int(counts.get("proxy", 0)),
                    "uncalibrated_days": int(counts.get(UNCALIBRATED, 0)),
                }
            )
        for sym, anc in sorted(self.relations.items()):
            rows.append(
                {
                    "symbol": sym,
                    "iv_from": f"{anc}'s IV x realized-vol ratio",
                    "index_days": int(
                        ((self.frame["symbol"] == sym) & (self.frame["source"] == "index")).sum()
                    ),
                    "proxy_days": 0,
                    "uncalibrated_days": 0,
                }
            )
        return pd.DataFrame(rows)


class PartTooShort(ResearchError, ValueError):
    """A share of a symbol's overlap too short to fit a proxy map on (``overlap_part``)."""


def overlap_part(
    features: pd.DataFrame, published: pd.DataFrame, symbol: str, part: tuple[float, float]
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last date of the ``part`` share (e.g. ``(0.0, 0.4)``) of ``symbol``'s overlap
    of proxy features and published index, in date order.

    Raises
    ------
    PartTooShort
        When the part holds fewer than ``2 * RV_WINDOW`` dates.
    """
    from research.data.market import PROXY_FEATURES, RV_WINDOW

    lo, hi = part
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"map part must satisfy 0 <= start < end <= 1, got {part}")
    feats = features.loc[features["symbol"] == symbol, ["date", *PROXY_FEATURES]]
    index = published.loc[published["symbol"] == symbol, ["date", "iv"]]
    dates = (
        feats.merge(index, on="date").dropna(subset=[*PROXY_FEATURES, "iv"])["date"].sort_values()
    )
    n = len(dates)
    first, last = int(math.floor(lo * n)), int(math.floor(hi * n)) - 1  # parts are disjoint
    if last - first + 1 < 2 * RV_WINDOW:
        raise PartTooShort(
            f"{symbol}: the {lo:.0%}–{hi:.0%} part of its IV index overlap holds "
            f"{max(last - first + 1, 0)} dates; a proxy map needs at least {2 * RV_WINDOW}"
        )
    return dates.iloc[first], dates.iloc[last]


def resolve_iv(
    bars: pd.DataFrame,
    published: pd.DataFrame,
    *,
    relations: Mapping[str, str] | None = None,
    features: pd.DataFrame | None = None,
    shift: float = 0.0,
    map_part: tuple[float, float] | None = None,
) -> IvResolution:
    """Each symbol's IV, in order of preference:

    1. its own published index (``published`` rows for the symbol), and where the index has no
       value, the GARCH proxy whose map is fitted on the symbol's own overlap of index and
       forecast (``proxy``);
    2. for a symbol in ``relations``, the named symbol's IV scaled by the ratio of realized
       volatilities (``scaled:...``; its own published rows still win);
    3. otherwise its own GARCH forecast, unmapped (``uncalibrated_proxy``), with a note.

    Parameters
    ----------
    bars
        Bars of every symbol (and of every symbol named in ``relations``).
    published
        Published IV index rows (``date, symbol, iv``), any number of symbols.
    relations
        Symbol -> the symbol its IV is scaled from.
    features
        ``realized_vol_features(bars)`` when already computed.
    shift
        Added to every proxy value (annualised): a sensitivity check.
    map_part
        Fit each own map on this share of the symbol's own overlap of index and forecast
        only, e.g. ``(0.0, 0.4)``: its first 40 % of dates (a sensitivity check).

    Raises
    ------
    ValueError
        With ``map_part``, when that part of a symbol's overlap is too short to fit a map.

    Returns
    -------
    IvResolution
    """
    from research.data.market import (
        MIN_PROXY_IV,
        PROXY_FEATURES,
        RV_WINDOW,
        _linear,
        fit_proxy_map,
        realized_vol_features,
    )

    relations = {k: v for k, v in (relations or {}).items() if k in set(bars["symbol"])}
    pub = published[["date", "symbol", "iv"]].dropna(subset=["iv"])
    own_symbols = sorted(set(bars["symbol"]) - set(relations))
    need_features = own_symbols
    feats = features
    if feats is None or not set(need_features) <= set(feats["symbol"]):
        feats = realized_vol_features(
            bars.loc[bars["symbol"].isin(need_features)].reset_index(drop=True)
        )
    frames, maps, notes = [], {}, []
    for sym in own_symbols:
        f = feats.loc[feats["symbol"] == sym, ["date", "symbol", *PROXY_FEATURES]]
        mine = pub.loc[pub["symbol"] == sym]
        proxy_source = "proxy"
        try:
            if mine.empty:
                raise ValueError("no index")
            coef, _ = fit_proxy_map(feats, pub, symbol=sym)
            if map_part is not None:
                start, end = overlap_part(feats, pub, sym, map_part)
                coef, _ = fit_proxy_map(feats, pub, symbol=sym, start=start, end=end)
            maps[sym] = coef
            proxy = _linear(coef, f, PROXY_FEATURES)
        except PartTooShort:
            raise
        except ValueError:
            proxy = f["garch22"].astype(float)
            proxy_source = UNCALIBRATED
            reason = (
                "no IV index given for it"
                if mine.empty
                else f"its IV index overlaps its history on fewer than {2 * RV_WINDOW} dates"
            )
            notes.append(
                f"{sym}: {reason}; its IV is its own GARCH volatility forecast (labelled "
                f"{UNCALIBRATED!r}: no variance premium, usually below option-implied "
                "volatility). Give an IV file for it (--iv / iv_path), or scale it from another "
                "symbol's IV (--iv-from / iv_from)."
            )
        values = (proxy + float(shift)).clip(lower=MIN_PROXY_IV).where(proxy.notna())
        frame = pd.DataFrame(
            {
                "date": f["date"].to_numpy(),
                "symbol": sym,
                "iv": values.to_numpy(float),
                "source": proxy_source,
            }
        ).merge(
            mine.rename(columns={"iv": "index_iv"})[["date", "index_iv"]], on="date", how="outer"
        )
        frame["symbol"] = sym
        index_iv = pd.to_numeric(frame["index_iv"], errors="coerce").astype(float)
        has = index_iv.notna()
        if has.any():
            frame.loc[has, "iv"] = index_iv[has]
            frame.loc[has, "source"] = "index"
        frames.append(frame.dropna(subset=["iv"])[["date", "symbol", "iv", "source"]])
    for sym in relations:
        mine = pub.loc[pub["symbol"] == sym]
        if len(mine):
            frames.append(mine.assign(source="index")[["date", "symbol", "iv", "source"]])
    out = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["date", "symbol", "iv", "source"])
    )
    out = out.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    return IvResolution(out, relations, maps, tuple(notes))
