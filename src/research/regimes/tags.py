"""``tags`` (from the tune-attribution plan): trend / vol / efficiency tags, the regime key and its
fingerprint.

Trend tag from the 20- and 60-day returns (both above +3% uptrend, both below −3% downtrend,
the 60-day beyond ±3% but the 20-day not agreeing trending, else flat); vol tag from annualised
20-day realized vol (>= 0.20 high_vol, <= 0.12 low_vol, between no tag); efficiency tag from the
20-bar Kaufman efficiency ratio (>= 0.30 efficient, else noisy). The label is
``{trend}|{vol}|{efficiency}``; ``regime_key`` prefixes the schema version and ruleset id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.regimes.base import (
    ModelSpec,
    add_flag,
    efficiency_ratio,
    empty_frame,
    log_returns,
    realized_vol,
)
from research.regimes.keys import EFFICIENCY_TAGS, MISSING, TREND_TAGS, VOL_TAGS, regime_keys
from research.regimes.ruleset import Ruleset

LABELS: tuple[str, ...] = tuple(
    f"{t}|{v}|{e}" for t in TREND_TAGS for v in (*VOL_TAGS, MISSING) for e in EFFICIENCY_TAGS
)


def min_history(rules: Ruleset, symbol: str | None = None) -> tuple[int, str]:
    """``1 +`` the longest of ``long_window``, ``short_window`` (returns over that many bars),
    ``vol_window`` (that many returns) and ``efficiency_window`` (that many daily changes); the
    first named wins a tie."""
    r = rules.tags
    needs = [
        (r.long_window, f"long_window {r.long_window} (+1 bar: a {r.long_window}-bar return)"),
        (r.short_window, f"short_window {r.short_window} (+1 bar: a {r.short_window}-bar return)"),
        (r.vol_window, f"vol_window {r.vol_window} (+1 bar: {r.vol_window} returns)"),
        (
            r.efficiency_window,
            f"efficiency_window {r.efficiency_window} (+1 bar: {r.efficiency_window} changes)",
        ),
    ]
    window, reason = max(needs, key=lambda need: need[0])
    return window + 1, reason


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Tag one symbol.

    Returns
    -------
    pandas.DataFrame
        Common columns plus ``ret_short``, ``ret_long``, ``realized_vol``,
        ``efficiency_ratio``, ``trend_tag``, ``vol_tag``, ``efficiency_tag`` (None = no tag),
        ``regime_key`` and ``regime_fingerprint`` (SHA-256 of the key).
    """
    r = rules.tags
    out = empty_frame(len(bars))
    close = bars["close"]
    short = close / close.shift(r.short_window) - 1
    long_ = close / close.shift(r.long_window) - 1
    th = r.trend_threshold
    trend = pd.Series(
        np.select(
            [(short > th) & (long_ > th), (short < -th) & (long_ < -th), long_.abs() > th],
            ["uptrend", "downtrend", "trending"],
            "flat",
        ),
        dtype=object,
    ).where(long_.notna() & short.notna())
    rv = realized_vol(log_returns(close), r.vol_window)
    vol = pd.Series(
        np.select([rv >= r.high_vol, rv <= r.low_vol], ["high_vol", "low_vol"], ""),
        dtype=object,
    ).where(rv.notna())
    er = efficiency_ratio(close, r.efficiency_window)
    eff = pd.Series(np.where(er >= r.efficient_min, "efficient", "noisy"), dtype=object).where(
        er.notna()
    )
    known = (trend.notna() & vol.notna() & eff.notna()).to_numpy()
    vol_tag = vol.replace("", None)
    key, fingerprint = regime_keys(trend, vol_tag, eff, rules.schema_version, rules.ruleset_id)
    label = trend.fillna("") + "|" + vol.replace("", MISSING).fillna("") + "|" + eff.fillna("")
    out["regime"] = label.where(known)
    direction = np.where(long_ > 0, "up", "down")
    trend_dim = trend.map({"uptrend": "up", "downtrend": "down", "flat": "flat"})
    trend_dim = trend_dim.where(trend != "trending", pd.Series(direction, dtype=object))
    out["trend_dim"] = trend_dim.where(known)
    out["vol_dim"] = vol.map({"high_vol": "high", "low_vol": "low", "": "normal"}).where(known)
    out["flag"] = add_flag(out["flag"], ~known, "warmup")
    out["ret_short"] = short.to_numpy()
    out["ret_long"] = long_.to_numpy()
    out["realized_vol"] = rv.to_numpy()
    out["efficiency_ratio"] = er.to_numpy()
    out["trend_tag"] = trend.where(known)
    out["vol_tag"] = vol_tag.where(known)
    out["efficiency_tag"] = eff.where(known)
    out["regime_key"] = key.where(known)
    out["regime_fingerprint"] = fingerprint.where(known)
    return out


SPEC = ModelSpec(
    name="tags",
    uses_iv=False,
    labels=LABELS,
    compute=compute,
    description=(
        "trend/vol/efficiency tags with regime key and SHA-256 fingerprint "
        "(from the tune-attribution plan)"
    ),
    min_history=min_history,
)
