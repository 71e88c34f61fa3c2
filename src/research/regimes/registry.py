"""All regime models behind one call: ``classify(model, bars, iv, ruleset)``."""

from __future__ import annotations

import pandas as pd

from research.data.contracts import validate
from research.regimes.base import COMMON_COLUMNS, ModelSpec, add_flag, gap_mask
from research.regimes.ruleset import DEFAULT_RULESET, Ruleset


def _models() -> dict[str, ModelSpec]:
    from research.regimes import bull_bear_vol, markov, tags, vix_trend, vol_ratio

    specs = [vix_trend.SPEC, vol_ratio.SPEC, bull_bear_vol.SPEC, tags.SPEC, markov.SPEC]
    return {s.name: s for s in specs}


def models() -> dict[str, ModelSpec]:
    """Every registered model by name."""
    return _models()


def get_model(name: str) -> ModelSpec:
    """The model called ``name``; a clear error listing the models otherwise."""
    registry = _models()
    if name not in registry:
        raise ValueError(f"unknown regime model {name!r}; models: {sorted(registry)}")
    return registry[name]


def min_history(
    model: str, ruleset: Ruleset | None = None, symbol: str | None = None
) -> tuple[int, str]:
    """The fewest bars per symbol ``model`` needs under ``ruleset``, and why.

    With exactly that many bars at least one row gets a label (given IV on those dates, for the
    IV models); with one fewer none does, and ``classify`` refuses the input.

    Parameters
    ----------
    model
        A registered model name.
    ruleset
        Windows to use (default: the built-in defaults).
    symbol
        Only matters for ``vix_trend`` with ``iv_scale="auto"`` (points or percentile per
        symbol); None gives the most any symbol needs.

    Returns
    -------
    tuple of (int, str)
        Number of bars and the reason, e.g. ``(50, "trend_window 50")``.
    """
    return get_model(model).min_history(ruleset or DEFAULT_RULESET, symbol)


def check_history(model: str, bars: pd.DataFrame, ruleset: Ruleset | None = None) -> None:
    """Raise a ValueError naming every symbol of ``bars`` with fewer bars than ``model`` needs
    (its bar count, date range, the number needed and why), with a hint how to fix it."""
    short = []
    for symbol, dates in bars.groupby("symbol", sort=True)["date"]:
        need, reason = min_history(model, ruleset, str(symbol))
        if len(dates) < need:
            short.append(
                f"{symbol} has {len(dates)} bars ({dates.min().date()}..{dates.max().date()}), "
                f"needs {need} ({reason})"
            )
    if short:
        raise ValueError(
            f"model {model!r}: too little history to label any row: "
            + "; ".join(short)
            + "; use a longer history or shorter windows in a ruleset (--ruleset)"
        )


def _iv_by_row(bars: pd.DataFrame, iv: pd.DataFrame) -> pd.Series:
    keyed = iv.drop_duplicates(["date", "symbol"], keep="last").set_index(["date", "symbol"])
    index = pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    return pd.Series(keyed["iv"].reindex(index).to_numpy(float), index=bars.index)


def classify(
    model: str,
    bars: pd.DataFrame,
    iv: pd.DataFrame | None = None,
    ruleset: Ruleset | None = None,
    *,
    source: str = "bars",
) -> pd.DataFrame:
    """Classify every (date, symbol) of ``bars`` with ``model``.

    Parameters
    ----------
    model
        ``vix_trend``, ``vol_ratio``, ``bull_bear_vol``, ``tags`` or ``markov``.
    bars
        Bars contract frame (validated here: NaN closes, duplicate or unsorted dates are errors).
    iv
        IV index frame (``date, symbol, iv``), required by IV models; dates it lacks are labelled
        NaN with the flag ``missing_iv``; a symbol with no IV at all is an error.
    ruleset
        Thresholds and windows (default: the built-in defaults).

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, model, regime, trend_dim, vol_dim, flag`` then the model's features and
        ``prob_*`` columns; one row per bar, sorted by symbol and date. Bars more than
        ``ruleset.max_gap_days`` after the previous bar carry the flag ``gap``.

    Raises
    ------
    ValueError
        Before computing anything, when a symbol has fewer bars than the model needs
        (:func:`min_history`); the message names each such symbol, its bar count and dates.
    """
    spec = get_model(model)
    rules = ruleset or DEFAULT_RULESET
    bars = validate("bars", bars, source=source)
    bars = bars.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    iv_rows: pd.Series | None = None
    if spec.uses_iv:
        if iv is None:
            raise ValueError(f"model {model!r} needs an IV index (iv=... / --iv PATH)")
        iv_rows = _iv_by_row(bars, validate("iv_index", iv, source="iv"))
        empty = [s for s, g in iv_rows.groupby(bars["symbol"]) if g.isna().all()]
        if empty:
            raise ValueError(
                f"model {model!r}: the IV index has no value on any date of symbol(s) {empty}"
            )
    check_history(model, bars, rules)
    parts = []
    for _, idx in bars.groupby("symbol", sort=True).groups.items():
        one = bars.loc[idx].reset_index(drop=True)
        one_iv = iv_rows.loc[idx].reset_index(drop=True) if iv_rows is not None else None
        out = spec.compute(one, one_iv, rules)
        out["flag"] = add_flag(out["flag"], gap_mask(one["date"], rules.max_gap_days), "gap")
        out.insert(0, "date", one["date"].to_numpy())
        out.insert(1, "symbol", one["symbol"].to_numpy())
        out.insert(2, "model", model)
        parts.append(out)
    result = pd.concat(parts, ignore_index=True)
    ordered = list(COMMON_COLUMNS) + [c for c in result.columns if c not in COMMON_COLUMNS]
    return result[ordered]
