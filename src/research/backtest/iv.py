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

import numpy as np
import pandas as pd

__all__ = ["MISSING_SOURCE", "TRADING_DAYS", "underlying_iv"]

TRADING_DAYS = 252
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
    return np.sqrt(mean_sq * TRADING_DAYS)


def underlying_iv(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    *,
    anchor: str = "SPX",
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
    anchor : str, default "SPX"
        Symbol whose IV anchors the others and gives ``vix``.
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
    out["iv_percentile"] = (
        out.groupby("symbol", sort=False)["atm_iv"].transform(
            lambda s: s.rolling(pct_window, min_periods=pct_min_periods).rank(
                method="max", pct=True
            )
        )
        * 100.0
    )
    return out[list(OUTPUT_COLUMNS)]
