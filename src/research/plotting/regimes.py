"""Figures and styled tables for the market-regimes notebook."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from research.plotting.axes import log_axis
from research.regimes.sizing import BADGE_COLORS, badge

NAMED_COLORS = {
    "low": "#1f77b4",
    "normal": "#9aa79a",
    "high": "#ff7f0e",
    "crisis": "#d62728",
    "bull_low_vol": "#2ca02c",
    "bull_high_vol": "#bcbd22",
    "bear_low_vol": "#ff7f0e",
    "bear_high_vol": "#d62728",
}


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per label: fixed colours for known labels, else a green→red scale in order
    (labels are ordered low risk → high risk)."""
    if labels and all(lab in NAMED_COLORS for lab in labels):
        return {lab: NAMED_COLORS[lab] for lab in labels}
    points = np.linspace(0, 1, max(len(labels), 2))[: len(labels)]
    colors = sample_colorscale("RdYlGn_r", list(points))
    return dict(zip(labels, colors, strict=True))


def label_runs(dates: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Runs of equal consecutive labels: ``start, end`` (first and last date), ``label`` (None for
    a run of missing labels) and ``days`` (rows in the run)."""
    values = labels.astype(object).where(labels.notna(), None).to_numpy()
    d = pd.to_datetime(dates).to_numpy()
    if len(values) == 0:
        return pd.DataFrame({"start": [], "end": [], "label": [], "days": []})
    new = np.ones(len(values), dtype=bool)
    new[1:] = values[1:] != values[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, len(values) - 1)
    return pd.DataFrame(
        {
            "start": pd.to_datetime(d[starts]),
            "end": pd.to_datetime(d[ends]),
            "label": values[starts],
            "days": ends - starts + 1,
        }
    )


def legend_swatch(label: str, color: str, **options: Any) -> go.Scatter:
    """A legend entry only (a coloured square, no data) for a label of a regime band."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=label,
        marker={"color": color, "size": 10, "symbol": "square"},
        **options,
    )


def regime_band(
    dates: pd.Series,
    labels: pd.Series,
    order: Sequence[str],
    colors: Mapping[str, str],
    name: str = "regime",
) -> go.Heatmap:
    """A one-row band of regime colours over time: one cell per run of equal labels (x holds
    the cells' edges, one more than z, so the band is exact with as many cells as runs rather
    than one per day), a discrete colour per label of ``order``, the run in the hover text."""
    runs = label_runs(dates, labels)
    codes = pd.Categorical(runs["label"], categories=list(order)).codes.astype(float)
    codes[codes < 0] = np.nan
    n = max(len(order), 1)
    # discrete colour scale: code k occupies [k/n, (k+1)/n]
    scale: list[list[Any]] = []
    for k, lab in enumerate(order):
        scale += [[k / n, colors[lab]], [(k + 1) / n, colors[lab]]]
    edges = pd.concat([runs["start"], runs["end"].iloc[-1:] + pd.Timedelta(days=1)])
    hover = [
        f"{a:%Y-%m-%d} – {b:%Y-%m-%d}: {lab} ({d} days)"
        for a, b, lab, d in zip(
            runs["start"], runs["end"], runs["label"].fillna("—"), runs["days"], strict=True
        )
    ]
    return go.Heatmap(
        x=edges.to_numpy(),
        y=[name],
        z=[codes],
        zmin=-0.5,
        zmax=n - 0.5,
        colorscale=scale or [[0, "#ccc"], [1, "#ccc"]],
        showscale=False,
        text=[hover],
        hovertemplate="%{text}<extra>" + name + "</extra>",
    )


def regime_strips(
    bars: pd.DataFrame,
    labels_by_model: Mapping[str, pd.DataFrame],
    orders: Mapping[str, Sequence[str]],
    symbol: str,
    column: str = "regime",
) -> go.Figure:
    """Close price on top and, below it on the same time axis, one colour band per model.

    Parameters
    ----------
    bars
        Bars contract frame.
    labels_by_model
        Model → ``classify`` table.
    orders
        Model → its labels in display order (low risk first).
    symbol
        Which symbol to draw.
    column
        Label column (``regime`` or ``regime_smoothed``).
    """
    models = list(labels_by_model)
    rows = 1 + len(models)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.025,
        row_heights=[0.42] + [0.58 / max(len(models), 1)] * len(models),
        subplot_titles=[f"{symbol} close"] + models,
    )
    b = bars.loc[bars["symbol"] == symbol]
    fig.add_trace(
        go.Scatter(
            x=b["date"],
            y=b["close"],
            name=f"{symbol} close",
            line={"color": "#1f3b5a", "width": 1.1},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    log_axis(fig, b["close"], row=1, col=1)
    for i, model in enumerate(models, start=2):
        frame = labels_by_model[model]
        part = frame.loc[frame["symbol"] == symbol]
        order = list(orders[model])
        colors = label_colors(order)
        fig.add_trace(
            regime_band(part["date"], part[column], order, colors, name=model), row=i, col=1
        )
        fig.update_yaxes(showticklabels=False, row=i, col=1)
        for lab in order:  # legend entries, grouped per model
            swatch = legend_swatch(lab, colors[lab], legendgroup=model, legendgrouptitle_text=model)
            fig.add_trace(swatch, row=i, col=1)
    fig.update_layout(
        height=260 + 70 * len(models),
        margin={"t": 40, "b": 30},
        legend={"groupclick": "toggleitem", "font": {"size": 10}},
    )
    return fig


def matrix_heatmaps(
    matrices: Mapping[str, pd.DataFrame],
    title: str,
    *,
    zmin: float = 0.0,
    zmax: float = 1.0,
    fmt: str = ".2f",
    cols: int = 2,
) -> go.Figure:
    """A grid of heatmaps (transition matrices, agreement matrices); values are written in the
    cells of matrices up to 8 x 8 and shown on hover for larger ones."""
    names = list(matrices)
    nrows = int(np.ceil(len(names) / cols))
    fig = make_subplots(
        rows=nrows, cols=cols, subplot_titles=names, horizontal_spacing=0.12, vertical_spacing=0.16
    )
    for i, name in enumerate(names):
        m = matrices[name]
        r, c = divmod(i, cols)
        fig.add_trace(
            go.Heatmap(
                z=m.to_numpy(float),
                x=[str(v) for v in m.columns],
                y=[str(v) for v in m.index],
                zmin=zmin,
                zmax=zmax,
                colorscale="Blues",
                showscale=i == 0,
                texttemplate="%{z:" + fmt + "}" if len(m) <= 8 else None,
                textfont={"size": 9},
                hovertemplate="%{y} → %{x}: %{z:" + fmt + "}<extra>" + name + "</extra>",
            ),
            row=r + 1,
            col=c + 1,
        )
        fig.update_yaxes(autorange="reversed", tickfont={"size": 9}, row=r + 1, col=c + 1)
        fig.update_xaxes(tickfont={"size": 9}, tickangle=45, row=r + 1, col=c + 1)
    fig.update_layout(title=title, height=430 * nrows, margin={"t": 70, "l": 170})
    return fig


def share_over_time(shares: pd.DataFrame, order: Sequence[str], title: str) -> go.Figure:
    """Stacked share of time per regime by period (from ``transitions.share_by_period``), one
    panel per symbol, so every bar stacks to 100 %."""
    colors = label_colors(list(order))
    symbols = list(dict.fromkeys(shares["symbol"])) if "symbol" in shares else [None]
    fig = make_subplots(
        rows=1,
        cols=max(len(symbols), 1),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[str(s) for s in symbols] if symbols != [None] else None,
    )
    for col, symbol in enumerate(symbols, start=1):
        frame = shares if symbol is None else shares.loc[shares["symbol"] == symbol]
        for lab in order:
            part = frame.loc[frame["regime"] == lab]
            period = pd.to_datetime(part["period"])
            yearly = bool(((period.dt.month == 12) & (period.dt.day == 31)).all())
            fig.add_trace(
                go.Bar(
                    x=period.dt.year if yearly else period,
                    y=part["share"],
                    name=lab,
                    legendgroup=lab,
                    showlegend=col == 1,
                    marker_color=colors[lab],
                    hovertemplate="%{x}: %{y:.0%}<extra>" + str(lab) + "</extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(barmode="stack", title=title, height=360)
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig


def snapshot_badges(snapshot: Mapping[str, Any]) -> Styler:
    """The vol-regime snapshot as a table with L/N/H/C badges (the EWMA volatility-regime plan's
    dashboard panel).

    Parameters
    ----------
    snapshot
        ``research.regimes.sizing.regime_snapshot`` output.
    """
    rows = []
    for symbol, entry in snapshot["symbols"].items():
        vol = entry.get("vol", {})
        rows.append(
            {
                "symbol": symbol,
                "badge": badge(entry.get("vol_regime")),
                "vol_regime": entry.get("vol_regime"),
                "short vol": vol.get("short"),
                "long vol": vol.get("long"),
                "ratio": vol.get("ratio"),
                "as of": entry.get("date", snapshot.get("asof")),
            }
        )
    table = pd.DataFrame(rows)

    def _color(value: Any) -> str:
        return (
            f"background-color: {BADGE_COLORS.get(value, '#ddd')}; color: white; "
            "font-weight: bold; text-align: center; border-radius: 4px"
        )

    return (
        table.style.hide(axis="index")
        .map(_color, subset=["badge"])
        .format({"short vol": "{:.4f}", "long vol": "{:.4f}", "ratio": "{:.2f}"}, na_rep="—")
    )


def summary_counts(snapshot: Mapping[str, Any]) -> go.Figure:
    """Bar chart of ``vol_regime_summary`` (symbols per regime)."""
    summary = snapshot["vol_regime_summary"]
    labels = list(summary)
    fig = go.Figure(
        go.Bar(
            x=[f"{badge(lab)} · {lab}" for lab in labels],
            y=[summary[k] for k in labels],
            marker_color=[BADGE_COLORS.get(badge(lab), "#ccc") for lab in labels],
            text=[summary[k] for k in labels],
            textposition="outside",
        )
    )
    fig.update_layout(
        title=f"Symbols per volatility regime ({snapshot['asof']})",
        yaxis_title="symbols",
        height=300,
    )
    return fig
