"""File-level entry points for regimes (what the CLI and notebooks call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from research.data.loaders import load
from research.regimes.registry import classify, get_model
from research.regimes.ruleset import DEFAULT_RULESET, Ruleset, load_ruleset

if TYPE_CHECKING:
    from research.regimes.sizing import VolRegimesConfig


def classify_files(
    model: str,
    bars_path: str | Path,
    *,
    iv: str | Path | Sequence[str | Path] | None = None,
    iv_proxy: bool = False,
    ruleset: str | Path | None = None,
    table: str | None = None,
    relations: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Load bars (and IV) through the contracts, then ``classify``.

    IV for the IV-based models comes from the ``iv`` files (several add up); with ``iv_proxy``
    every symbol also gets an IV where none is published, by ``research.data.iv.resolve_iv``:
    the proxy fitted on its own index, a symbol's IV scaled from another (``relations``), or its
    own uncalibrated GARCH forecast (a note says so).

    Returns
    -------
    pandas.DataFrame
        As ``research.regimes.classify``.
    """
    spec = get_model(model)  # unknown model: fail before reading anything
    rules = load_ruleset(ruleset)
    bars = load("bars", bars_path, table=table)
    iv_frame = None
    if spec.uses_iv:
        if iv is None and not iv_proxy:
            raise ValueError(f"model {model!r} needs an IV index: pass --iv PATH or --iv-proxy")
        iv_frame = iv_for(bars, iv, relations=relations, proxy=iv_proxy, notes=notes)
    return classify(model, bars, iv_frame, rules, source=str(bars_path))


def summarize(labels: pd.DataFrame, ruleset: Ruleset | None = None) -> str:
    """A few lines: per symbol the date range, the latest label and label counts; for
    ``vix_trend`` and ``bull_bear_vol`` the scale each symbol's volatility was judged on
    (:func:`iv_scale_text`); flags.

    Parameters
    ----------
    labels
        A ``classify`` table.
    ruleset
        The ruleset it was classified with (only its ``percentile_window`` settings are
        named; default: the built-in defaults).
    """
    lines = []
    for symbol, part in labels.groupby("symbol", sort=True):
        counts = part["regime"].value_counts()
        last = part.iloc[-1]
        lines.append(
            f"{symbol}: {part['date'].min().date()}..{part['date'].max().date()}, "
            f"latest {last['regime']} ({last['date'].date()}); "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    scale = iv_scale_text(labels, ruleset)
    if scale:
        lines.append(scale)
    exploded = labels["flag"].str.split(";").explode()
    flag_counts = exploded[exploded != ""].value_counts()
    if len(flag_counts):
        lines.append("flags: " + ", ".join(f"{k} {v}" for k, v in flag_counts.items()))
    return "\n".join(lines)


def iv_scale_text(labels: pd.DataFrame, ruleset: Ruleset | None = None) -> str:
    """Which scale each symbol's volatility was judged on, for the models that choose one per
    symbol (empty for other models).

    ``vix_trend``: ``vix_trend IV buckets: GOOG by trailing 252-day IV percentile; SPX by VIX
    points``; ``bull_bear_vol``: ``bull_bear_vol vol thresholds: GOOG by trailing 252-day
    percentile; SPX by absolute level``. Labels of both models (concatenated) give both
    sentences, joined by ``". "``.

    Parameters
    ----------
    labels
        A ``classify`` table (or several concatenated).
    ruleset
        The ruleset it was classified with (only the ``percentile_window`` is named; default:
        the built-in defaults).
    """
    if "model" not in labels.columns:
        return ""
    rules = ruleset or DEFAULT_RULESET
    vix_window = rules.vix_trend.percentile_window
    bbv_window = rules.bull_bear_vol.percentile_window
    models = [
        (
            "vix_trend",
            "iv_scale",
            "IV buckets",
            {"points": "VIX points", "percentile": f"trailing {vix_window}-day IV percentile"},
        ),
        (
            "bull_bear_vol",
            "vol_scale",
            "vol thresholds",
            {"absolute": "absolute level", "percentile": f"trailing {bbv_window}-day percentile"},
        ),
    ]
    parts = []
    for model, column, what, words in models:
        rows = labels.loc[labels["model"] == model]
        if column not in rows.columns or rows.empty:
            continue
        scales = rows.groupby("symbol", sort=True)[column].first()
        parts.append(
            f"{model} {what}: "
            + "; ".join(f"{sym} by {words.get(sc, sc)}" for sym, sc in scales.items())
        )
    return ". ".join(parts)


def iv_for(
    bars: pd.DataFrame,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    *,
    relations: Mapping[str, str] | None = None,
    proxy: bool = True,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Every symbol's IV for the regime models (``research.data.iv.resolve_iv``): the published
    indexes of ``iv_path`` (several files add up; the embedded VIX stays SPX's), and with
    ``proxy`` the proxies where none is published.

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, iv, source``.
    """
    from research.data import market
    from research.data.iv import resolve_iv

    published = market.load_iv_indexes(iv_path, symbols=sorted(set(bars["symbol"])))
    if not proxy:
        return published.reset_index(drop=True)
    resolution = resolve_iv(bars, published, relations=relations)
    if notes is not None:
        notes.extend(resolution.notes)
    return resolution.per_symbol(bars)


def classify_all(
    bars: pd.DataFrame,
    iv: pd.DataFrame | None,
    ruleset: Ruleset | None = None,
    models: tuple[str, ...] | list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Run several models on the same bars.

    Returns
    -------
    dict
        Model name → the ``classify`` table (IV models are skipped when ``iv`` is None).
    """
    from research.regimes.registry import models as registry

    names = list(models) if models is not None else list(registry())
    return {
        name: classify(name, bars, iv, ruleset)
        for name in names
        if iv is not None or not get_model(name).uses_iv
    }


def min_history_table(
    models: Sequence[str], symbols: Sequence[str], ruleset: Ruleset | None = None
) -> pd.DataFrame:
    """What each model needs: bars per symbol before its first label, and why (for a page).

    Returns
    -------
    pandas.DataFrame
        ``model, symbol, bars_needed, because``; one row per model and symbol when the need
        depends on the symbol (vix_trend by VIX points or by percentile), else one per model.
    """
    from research.regimes.registry import min_history

    rows = []
    for model in models:
        needs = {s: min_history(model, ruleset, symbol=s) for s in symbols}
        if len(set(needs.values())) == 1:
            bars, why = next(iter(needs.values()))
            rows.append({"model": model, "symbol": "all", "bars_needed": bars, "because": why})
            continue
        for sym, (bars, why) in needs.items():
            rows.append({"model": model, "symbol": sym, "bars_needed": bars, "because": why})
    return pd.DataFrame(rows)


def label_order(model: str, labels: pd.DataFrame, column: str = "regime") -> list[str]:
    """The model's labels that occur in ``labels``, in the model's display order."""
    seen = set(labels[column].dropna())
    order = [lab for lab in get_model(model).labels if lab in seen]
    return order + sorted(seen - set(order))


def latest(labels_by_model: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The last label of every model for every symbol.

    Returns
    -------
    pandas.DataFrame
        ``symbol, model, date, regime, trend_dim, vol_dim, flag``.
    """
    rows = [
        frame.groupby("symbol", sort=True).tail(1)[
            ["symbol", "model", "date", "regime", "trend_dim", "vol_dim", "flag"]
        ]
        for frame in labels_by_model.values()
    ]
    return pd.concat(rows, ignore_index=True).sort_values(["symbol", "model"], ignore_index=True)


def regime_summary(labels_by_model: dict[str, pd.DataFrame]) -> dict[str, object]:
    """The machine-readable summary of the regimes page (``reports/summaries``): the data's last
    date and every model's latest label per market (what the findings page shows as today's
    regime)."""
    last = latest(labels_by_model)
    days = pd.to_datetime(last["date"]).dt.strftime("%Y-%m-%d")
    return {
        "data_end": days.max() if len(last) else None,
        "latest": [
            {"symbol": str(sym), "model": str(model), "date": day, "regime": str(regime)}
            for sym, model, day, regime in zip(
                last["symbol"], last["model"], days, last["regime"], strict=True
            )
        ],
    }


def duration_table(labels_by_model: dict[str, pd.DataFrame], min_dwell: int = 1) -> pd.DataFrame:
    """Share of time and durations per model and regime (labels smoothed by ``min_dwell``).

    Returns
    -------
    pandas.DataFrame
        ``model`` then the columns of ``transitions.durations`` (regime, share_of_time,
        mean_observed_duration, expected_duration, …).
    """
    from research.regimes import transitions

    parts = []
    for name, frame in labels_by_model.items():
        col = "regime"
        if min_dwell > 1:
            frame = transitions.apply_min_dwell(frame, min_dwell)
            col = "regime_smoothed"
        table = transitions.durations(frame, column=col, states=label_order(name, frame, col))
        parts.append(table.assign(model=name))
    out = pd.concat(parts, ignore_index=True)
    return out[["model", *[c for c in out.columns if c != "model"]]]


def transition_matrices(
    labels_by_model: dict[str, pd.DataFrame], min_dwell: int = 1
) -> dict[str, pd.DataFrame]:
    """Row-normalised day-to-day transition matrix per model (pooled over symbols)."""
    from research.regimes import transitions

    out = {}
    for name, frame in labels_by_model.items():
        col = "regime"
        if min_dwell > 1:
            frame = transitions.apply_min_dwell(frame, min_dwell)
            col = "regime_smoothed"
        out[name] = transitions.transition_matrix(
            frame, column=col, states=label_order(name, frame, col)
        )
    return out


def agreement_table(labels_by_model: dict[str, pd.DataFrame], column: str) -> pd.DataFrame:
    """Pairwise agreement of models on a common dimension, with uncertainty.

    Models without the dimension (all NaN) are left out. Kappa's 95% interval is the normal
    approximation with statsmodels' asymptotic standard error; daily labels are autocorrelated,
    so the interval is narrower than an honest block-bootstrap one would be (read it as a lower
    bound on uncertainty).

    Returns
    -------
    pandas.DataFrame
        ``model_a, model_b, n, agreement_rate, kappa, kappa_ci_low, kappa_ci_high,
        cramers_v``.
    """
    from research.regimes import transitions

    usable = {m: f for m, f in labels_by_model.items() if f[column].notna().any()}
    names = list(usable)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            res = transitions.agreement(usable[a], usable[b], column)
            rows.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "n": res.n,
                    "agreement_rate": res.agreement_rate,
                    "kappa": res.kappa,
                    "kappa_ci_low": res.kappa_ci_low,
                    "kappa_ci_high": res.kappa_ci_high,
                    "cramers_v": res.cramers_v,
                }
            )
    return pd.DataFrame(rows)


def snapshot_sizing(
    snapshot: Mapping[str, Any], config: VolRegimesConfig | None = None
) -> pd.DataFrame:
    """What the vol-regime sizing layer does with the snapshot's regimes, per symbol and tier.

    Parameters
    ----------
    snapshot
        ``sizing.regime_snapshot`` output.
    config
        A ``VolRegimesConfig`` (default: the built-in defaults).

    Returns
    -------
    pandas.DataFrame
        ``symbol, vol_regime, tier, sizing_multiplier, w_trend, w_carry, w_expectancy,
        w_router`` (hybrid weights after the regime's modifiers, renormalised).
    """
    from research.regimes import sizing

    cfg = config if config is not None else sizing.DEFAULT_VOL_REGIMES
    rows = []
    for symbol, entry in snapshot["symbols"].items():
        regime = entry.get("vol_regime")
        if regime is None:
            continue
        weights = sizing.hybrid_weights(regime, cfg)
        for tier in sizing.TIERS:
            rows.append(
                {
                    "symbol": symbol,
                    "vol_regime": regime,
                    "tier": tier,
                    "sizing_multiplier": sizing.sizing_multiplier(cfg, tier, regime),
                    **{f"w_{k}": v for k, v in weights.as_dict().items()},
                }
            )
    return pd.DataFrame(rows)
