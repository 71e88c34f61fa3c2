"""Figures for the attribution notebooks: the regime x time heatmap drawn under the price,
the decay of forward returns by horizon, and the walk-forward uplift of
regime-selected parameters and the drift of the regime mix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from research.plotting import interval_bars
from research.plotting.axes import log_axis

__all__ = ["decay_figure", "drift_figure", "regime_heatmap", "uplift_figure"]


def regime_heatmap(
    heat: pd.DataFrame, bars: pd.DataFrame, symbol: str, title: str, regimes: list[str]
) -> go.Figure:
    """``symbol``'s close (log scale) above a regime x month heatmap of the signals' mean
    20-day forward return, red below zero and green above (diverging around 0); hover shows
    the hit rate and the count.

    Parameters
    ----------
    heat
        ``research.attribution.signals.heatmap`` rows (``period, regime, mean_return,
        hit_rate, n``) of one group.
    regimes
        Row order (low risk first).
    """
    price = bars.loc[bars["symbol"] == symbol].sort_values("date")
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55], vertical_spacing=0.04
    )
    fig.add_trace(
        go.Scatter(x=price["date"], y=price["close"], name=f"{symbol} close", line={"width": 1.1}),
        row=1,
        col=1,
    )
    grid = heat.pivot(index="regime", columns="period", values="mean_return")
    hit = heat.pivot(index="regime", columns="period", values="hit_rate")
    n = heat.pivot(index="regime", columns="period", values="n")
    order = [r for r in regimes if r in grid.index]
    grid, hit, n = (x.reindex(order) for x in (grid, hit, n))
    bound = float(max(abs(heat["mean_return"].quantile(0.05)), heat["mean_return"].quantile(0.95)))
    fig.add_trace(
        go.Heatmap(
            x=grid.columns,
            y=grid.index,
            z=grid.to_numpy() * 100,
            customdata=np.dstack([hit.to_numpy() * 100, n.to_numpy()]),
            zmid=0,
            zmin=-bound * 100,
            zmax=bound * 100,
            colorscale="RdYlGn",
            colorbar={"title": "mean 20d<br>return %", "len": 0.5, "y": 0.27},
            hovertemplate="%{y} %{x|%Y-%m}: mean %{z:.1f}%, hit %{customdata[0]:.0f}%, "
            "n %{customdata[1]}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    log_axis(fig, price["close"], title_text="close", row=1, col=1)
    fig.update_yaxes(type="category", row=2, col=1)
    fig.update_layout(title=title, height=520, showlegend=False, margin={"t": 50, "b": 30})
    return fig


def decay_figure(decay: pd.DataFrame, by: str, title: str) -> go.Figure:
    """Mean forward return (%) by horizon per group, with its 95 % interval as error bars."""
    fig = go.Figure()
    for name, part in decay.groupby(by, sort=True):
        part = part.sort_values("horizon")
        fig.add_trace(
            go.Scatter(
                x=part["horizon"],
                y=part["mean_return"] * 100,
                name=str(name),
                mode="lines+markers",
                error_y=interval_bars(
                    part["mean_return"] * 100, part["ci_low"] * 100, part["ci_high"] * 100
                ),
            )
        )
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    fig.update_layout(
        title=title,
        xaxis_title="trading days after the signal",
        yaxis_title="mean forward return (%)",
        height=380,
    )
    return fig


def uplift_figure(per_tune: pd.DataFrame, title: str) -> go.Figure:
    """Out-of-sample sharpe per tune (by OOS start) of the regime-selected parameters, the
    baseline, and the same lookup ignoring the regime.

    Parameters
    ----------
    per_tune
        ``research.attribution.tunes.UpliftResult.per_tune``.
    """
    fig = go.Figure()
    f = per_tune.sort_values(["oos_start", "tune_id"])
    hover = f["tune_id"] + "<br>" + f["entry_key"].astype(str)
    for col, name, style in (
        ("selected_oos", "regime-selected", {"size": 9, "symbol": "circle"}),
        ("agnostic_oos", "ignoring the regime", {"size": 7, "symbol": "diamond-open"}),
        ("baseline_oos", "baseline", {"size": 7, "symbol": "x"}),
    ):
        fig.add_trace(
            go.Scatter(
                x=f["oos_start"],
                y=f[col],
                name=name,
                mode="markers",
                marker=style,
                text=hover,
                hovertemplate="%{text}<br>OOS sharpe %{y:.2f}<extra>" + name + "</extra>",
            )
        )
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    fig.update_layout(
        title=title,
        xaxis_title="start of the out-of-sample window",
        yaxis_title="out-of-sample sharpe",
        height=400,
    )
    return fig


def drift_figure(table: pd.DataFrame, current_key: str | None, title: str) -> go.Figure:
    """Share of days per regime key: the tunes' in-sample days against the recent window
    (horizontal bars, keys shortened to trend|vol|efficiency; the current key marked)."""
    f = table.sort_values("training_share")
    short = f["regime_key"].str.split("|").str[2:].str.join("|")
    labels = [
        f"{k} ◀ now" if full == current_key else k
        for k, full in zip(short, f["regime_key"], strict=True)
    ]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(y=labels, x=f["training_share"] * 100, name="tunes' in-sample days", orientation="h")
    )
    fig.add_trace(go.Bar(y=labels, x=f["current_share"] * 100, name="recent days", orientation="h"))
    fig.update_layout(
        title=title,
        barmode="group",
        xaxis_title="share of days (%)",
        height=max(320, 28 * len(f) + 140),
        margin={"l": 220},
    )
    return fig
