"""Figures for the option-chain page: the model's spread-mid error by day, and credits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

if TYPE_CHECKING:
    from research.backtest.run import BacktestResult


def spread_ratio_figure(ratios: pd.DataFrame, title: str = "") -> go.Figure:
    """Model / chain mid of the strategy's spread per quote date, default and calibrated model
    (1 = the model prices the spread as the market did).

    Parameters
    ----------
    ratios
        ``PricingComparison.ratios``.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ratios["quote_date"],
            y=ratios["ratio_before"],
            mode="lines",
            name="model, default parameters",
            line={"color": "#d62728", "width": 1},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ratios["quote_date"],
            y=ratios["ratio_after"],
            mode="lines",
            name="model, calibrated to the quotes",
            line={"color": "#1f77b4", "width": 1},
        )
    )
    fig.add_hline(y=1.0, line={"color": "#7f7f7f", "dash": "dot"})
    fig.update_layout(
        title=title,
        yaxis_title="model mid / chain mid",
        height=360,
    )
    return fig


def credits_figure(results: Mapping[str, BacktestResult], title: str = "") -> go.Figure:
    """Credit per share of every trade, by entry date, for each pricing."""
    colours = {"chain": "#2ca02c", "model (default)": "#d62728", "model (calibrated)": "#1f77b4"}
    fig = go.Figure()
    for name, res in results.items():
        t = res.trades
        fig.add_trace(
            go.Scatter(
                x=t["entry_date"],
                y=t["credit"],
                mode="markers",
                name=name,
                marker={"size": 4, "color": colours.get(name)},
            )
        )
    fig.update_layout(
        title=title,
        yaxis_title="credit per share",
        height=360,
    )
    return fig
