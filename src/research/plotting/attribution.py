"""Figures for the regime-attribution notebook: the seed-000 regime x time heatmap drawn under
the price, and the decay of forward returns by horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["decay_figure", "regime_heatmap"]


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
    fig.update_yaxes(type="log", title_text="close", row=1, col=1)
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
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (part["ci_high"] - part["mean_return"]) * 100,
                    "arrayminus": (part["mean_return"] - part["ci_low"]) * 100,
                    "thickness": 1,
                },
            )
        )
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    fig.update_layout(
        title=title,
        xaxis_title="trading days after the signal",
        yaxis_title="mean forward return (%)",
        height=380,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
