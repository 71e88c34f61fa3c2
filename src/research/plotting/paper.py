"""Figures for the paper-tracking page: the account's equity against the backtest's band."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def equity_band_figure(band: pd.DataFrame, title: str = "") -> go.Figure:
    """Cumulative P&L of one contract a trade: the paper account, and the backtest's 5-95 %
    block-bootstrap band and median for the same days.

    Parameters
    ----------
    band
        ``backtest.paper.PaperComparison.band``.
    """
    fig = go.Figure()
    if {"low", "high"} <= set(band.columns):
        fig.add_trace(
            go.Scatter(
                x=band["date"], y=band["high"], mode="lines", line={"width": 0},
                showlegend=False, hoverinfo="skip",
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=band["date"],
                y=band["low"],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(31, 119, 180, 0.18)",
                name="backtest, 90% band",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=band["date"],
                y=band["median"],
                mode="lines",
                line={"color": "#1f77b4", "dash": "dot", "width": 1},
                name="backtest, median",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=band["date"],
            y=band["paper"],
            mode="lines",
            line={"color": "#d62728", "width": 2},
            name="paper account",
        )
    )
    fig.update_layout(title=title, yaxis_title="$ (one contract a trade)", height=380)
    return fig
