"""Figures for the grid notebooks (regime multipliers, portfolio limits)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from research.plotting.axes import log_axis


def equity_by_variant(
    returns: Mapping[str, pd.DataFrame], title: str, initial: float = 1.0
) -> go.Figure:
    """Growth of 1 per variant (columns), one panel per ticker set (log scale).

    Parameters
    ----------
    returns
        Ticker set → daily returns (dates × variants).
    """
    names = list(returns)
    fig = make_subplots(
        rows=len(names), cols=1, shared_xaxes=False, subplot_titles=names, vertical_spacing=0.12
    )
    palette = [
        "#1f77b4",
        "#2ca02c",
        "#ff7f0e",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    for row, name in enumerate(names, start=1):
        frame = returns[name].dropna(how="all").fillna(0.0)
        growth = initial * (1 + frame).cumprod()
        for i, col in enumerate(growth.columns):
            fig.add_trace(
                go.Scatter(
                    x=growth.index,
                    y=growth[col],
                    name=str(col),
                    legendgroup=str(col),
                    showlegend=row == 1,
                    line={
                        "color": palette[i % len(palette)],
                        "width": 2.2 if col == "flat" else 1.2,
                        "dash": "dash" if col == "flat" else "solid",
                    },
                ),
                row=row,
                col=1,
            )
        log_axis(fig, growth, title_text="growth of 1", row=row, col=1)
    fig.update_layout(
        title=title,
        height=120 + 320 * len(names),
        # one entry per variant: a column right of the panels, clear of every axis
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
    )
    return fig


def stress_heatmap(table: pd.DataFrame, title: str, value: str = "return") -> go.Figure:
    """Variants × stress windows, coloured by return (or drawdown).

    A cell whose window the variant spent wholly in cash (``in_cash`` = 1, when the table has
    that column: no position on any day) says "no trades" and is left uncoloured: its 0.0 %
    drawdown is cash interest, not protection.

    Parameters
    ----------
    table
        Long table with columns ``variant, window`` and ``value`` (and optionally ``in_cash``).
    """
    order = [c for c in dict.fromkeys(table["window"])]
    pivot = table.pivot(index="variant", columns="window", values=value)
    pivot = pivot[[c for c in order if c in pivot.columns]]
    z = pivot.to_numpy(float) * 100
    idle = np.zeros_like(z, dtype=bool)
    if "in_cash" in table.columns:
        cash = table.pivot(index="variant", columns="window", values="in_cash")
        idle = cash.reindex(index=pivot.index, columns=pivot.columns).to_numpy(float) >= 1.0
        z = np.where(idle, np.nan, z)
    text = [
        ["no trades" if idle[i, j] else ("–" if not np.isfinite(z[i, j]) else f"{z[i, j]:.1f}%")
         for j in range(z.shape[1])]
        for i in range(z.shape[0])
    ]  # fmt: skip
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(pivot.columns),
            y=list(pivot.index),
            colorscale="RdYlGn",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            text=text,
            texttemplate="%{text}",
            colorbar={"title": "%"},
            hovertemplate="%{y} in %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        height=120 + 40 * len(pivot),
        yaxis={"autorange": "reversed"},
        plot_bgcolor="#eeeeee",
    )
    return fig


def walk_forward_equity(
    oos: Mapping[str, pd.Series],
    baseline: Mapping[str, pd.Series],
    folds: pd.DataFrame | None = None,
    title: str = "",
) -> go.Figure:
    """Stitched out-of-sample equity of the walk-forward winners vs the baseline, per ticker
    set; fold boundaries as dotted lines."""
    names = list(oos)
    fig = make_subplots(rows=len(names), cols=1, subplot_titles=names, vertical_spacing=0.1)
    for row, name in enumerate(names, start=1):
        w, b = oos[name], baseline.get(name)
        fig.add_trace(
            go.Scatter(
                x=w.index,
                y=w / w.iloc[0],
                name="walk-forward winners",
                legendgroup="wf",
                showlegend=row == 1,
                line={"color": "#1f77b4"},
            ),
            row=row,
            col=1,
        )
        if b is not None:
            fig.add_trace(
                go.Scatter(
                    x=b.index,
                    y=b / b.iloc[0],
                    name="flat (baseline)",
                    legendgroup="flat",
                    showlegend=row == 1,
                    line={"color": "#7f7f7f", "dash": "dash"},
                ),
                row=row,
                col=1,
            )
        if folds is not None and "oos_start" in folds:
            for start in folds["oos_start"]:
                fig.add_vline(
                    x=start, line={"color": "#bbbbbb", "dash": "dot", "width": 1}, row=row, col=1
                )
    fig.update_layout(title=title, height=320 * len(names))
    return fig


def permutation_null(
    nulls: Mapping[str, tuple[np.ndarray, float, float]], title: str = ""
) -> go.Figure:
    """Histogram of the label-permutation null per ticker set, with the observed value.

    Parameters
    ----------
    nulls
        Ticker set → (null OOS Sharpe ratios, observed OOS Sharpe, permutation p-value).
    """
    names = list(nulls)
    fig = make_subplots(
        rows=1,
        cols=max(len(names), 1),
        subplot_titles=[f"{n}: permutation p = {nulls[n][2]:.3f}" for n in names],
    )
    for col, name in enumerate(names, start=1):
        null, observed, _ = nulls[name]
        fig.add_trace(
            go.Histogram(
                x=np.asarray(null, float),
                nbinsx=30,
                name="shuffled labels",
                marker={"color": "#9ecae1"},
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        fig.add_vline(x=observed, line={"color": "#d62728", "width": 2}, row=1, col=col)
        fig.update_xaxes(title_text="OOS Sharpe (excess over cash)", row=1, col=col)
    fig.update_layout(title=title, height=340, bargap=0.05)
    return fig


def sensitivity_chart(table: pd.DataFrame, benchmark: str, title: str = "") -> go.Figure:
    """OOS Sharpe of the walk-forward choice, the benchmark and the exposure-matched control in
    every scenario (one panel per ticker set); hollow markers where the verdict flips.

    Parameters
    ----------
    table
        ``GridStudy.sensitivity_table()``.
    """
    ok = table.dropna(subset=["choice_oos_sharpe"]) if "choice_oos_sharpe" in table else table
    names = list(dict.fromkeys(ok["tickers"]))
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names, shared_yaxes=True)
    series = (
        ("choice_oos_sharpe", "walk-forward choice", "#1f77b4", "circle"),
        ("benchmark_oos_sharpe", benchmark, "#7f7f7f", "square"),
        ("control_oos_sharpe", "exposure-matched control", "#ff7f0e", "diamond"),
    )
    for col, name in enumerate(names, start=1):
        part = ok.loc[ok["tickers"] == name]
        holds = part["verdict_holds"].astype(bool).to_numpy()
        for column, label, color, symbol in series:
            fig.add_trace(
                go.Scatter(
                    x=part[column],
                    y=part["scenario"],
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    marker={
                        "color": color,
                        "symbol": [symbol if h else f"{symbol}-open" for h in holds],
                        "size": 10,
                        "line": {"width": 2, "color": color},
                    },
                    hovertemplate="%{y}: %{x:.2f}<extra>" + label + "</extra>",
                ),
                row=1,
                col=col,
            )
        fig.add_vline(x=0, line={"color": "#bbbbbb", "dash": "dot"}, row=1, col=col)
        fig.update_xaxes(title_text="OOS Sharpe (excess over cash)", row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title=title,
        height=140 + 32 * max(len(dict.fromkeys(ok["scenario"])), 1),
    )
    return fig
