"""Figures for the option-chain page: the model's spread-mid error by day, and credits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
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


def oos_ratio_figure(days: pd.DataFrame, title: str = "") -> go.Figure:
    """Model / chain mid of the strategy's spread on each quote day scored out of sample:
    the default model and both fits (each day priced with the fit of the days before its
    block); dotted verticals start each walk-forward block.

    Parameters
    ----------
    days
        ``calibration_oos.OutOfSample.days``.
    """
    lines = {
        "ratio_default": ("default model", "#d62728"),
        "ratio_strategy": ("calibrated to the strategy's quotes", "#1f77b4"),
        "ratio_pooled": ("calibrated to every quote", "#9467bd"),
    }
    fig = go.Figure()
    for column, (name, colour) in lines.items():
        if column in days:
            fig.add_trace(
                go.Scatter(
                    x=days["quote_date"],
                    y=days[column],
                    mode="lines",
                    name=name,
                    line={"color": colour, "width": 1},
                )
            )
    if len(days):
        for start in days.groupby("fold")["quote_date"].min():
            fig.add_vline(x=start, line={"color": "#bbbbbb", "dash": "dot", "width": 1})
    fig.add_hline(y=1.0, line={"color": "#7f7f7f", "dash": "dot"})
    fig.update_layout(title=title, yaxis_title="model mid / chain mid", height=360)
    return fig


def trade_pnl_figure(trades: pd.DataFrame, models: tuple[str, ...], title: str = "") -> go.Figure:
    """P&L a contract of each of the chain's entries: priced from the chain (x) against each
    model (y); on the diagonal the model made what the quotes made.

    Parameters
    ----------
    trades
        ``trade_by_trade.TradeByTrade.trades``.
    models
        The model pricings to show (``TradeByTrade.pricings`` after ``chain``).
    """
    colours = ("#d62728", "#1f77b4", "#9467bd")
    fig = go.Figure()
    for model, colour in zip(models, colours, strict=False):
        fig.add_trace(
            go.Scatter(
                x=trades["pnl_chain"],
                y=trades[f"pnl_{model}"],
                mode="markers",
                name=model,
                marker={"size": 5, "color": colour, "opacity": 0.7},
            )
        )
    both = trades[["pnl_chain", *(f"pnl_{m}" for m in models)]].stack()
    if len(both):
        values = both.to_numpy(float)
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="same as the chain",
                line={"color": "#7f7f7f", "dash": "dot"},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="$ a contract, priced from the chain",
        yaxis_title="$ a contract, priced by the model",
        height=420,
    )
    return fig
