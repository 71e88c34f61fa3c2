"""Figures and tables of a strategy tear sheet (``research.backtest.tearsheet``)."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler
from plotly.subplots import make_subplots

from research.backtest.tearsheet import TearSheet, money
from research.plotting.axes import log_axis
from research.plotting.regimes import label_colors, legend_swatch, regime_band
from research.plotting.tables import styled

__all__ = [
    "decomposition_table",
    "equity_drawdown_regimes",
    "pnl_waterfall",
    "regime_table",
    "year_table",
]

SHORT = {
    "credits": "Credits sold",
    "profit_target": "Profit targets",
    "expiry": "Expiries",
    "stop": "Stops (at the stop)",
    "overshoot": "Stop overshoot",
    "other": "Other closes",
    "bid_ask": "Bid/ask",
    "fees": "Fees",
    "interest": "Cash interest",
}
"""Axis labels of the waterfall (``tearsheet.LINES`` has the full ones)."""


def equity_drawdown_regimes(sheet: TearSheet, title: str | None = None) -> go.Figure:
    """Growth of 1 (log axis), the regime in force (a colour band, when the sheet has day
    labels) and the drawdown, on one time axis; the date it stopped trading marked."""
    growth = sheet.equity / float(sheet.equity.iloc[0])
    has_labels = sheet.labels is not None and sheet.labels.notna().any()
    rows = 3 if has_labels else 2
    heights = [0.62, 0.08, 0.30] if has_labels else [0.68, 0.32]
    titles = ["Growth of 1", "Regime", "Drawdown"] if has_labels else ["Growth of 1", "Drawdown"]
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=heights,
        subplot_titles=titles,
    )
    fig.add_trace(
        go.Scatter(
            x=growth.index,
            y=growth,
            name="growth of 1",
            line={"color": "#1f3b5a", "width": 1.4},
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    log_axis(fig, growth, row=1, col=1)
    if sheet.idle is not None:
        fig.add_vline(
            x=sheet.idle.since,
            line={"color": "#d62728", "dash": "dot", "width": 1.2},
            row=1,
            col=1,
        )
        fig.add_annotation(
            x=sheet.idle.since,
            y=1.0,
            yref="y domain",
            text=f"stopped trading {sheet.idle.since:%Y-%m-%d}",
            showarrow=False,
            xanchor="left",
            font={"color": "#d62728", "size": 11},
        )
    if has_labels:
        assert sheet.labels is not None
        labels = sheet.labels.reindex(sheet.equity.index)
        order = [str(v) for v in pd.unique(labels.dropna())]
        order.sort()
        colors = label_colors(order)
        band = regime_band(pd.Series(labels.index), pd.Series(labels.to_numpy()), order, colors)
        fig.add_trace(band, row=2, col=1)
        fig.update_yaxes(showticklabels=False, row=2, col=1)
        for lab in order:
            fig.add_trace(legend_swatch(lab, colors[lab]), row=2, col=1)
    fig.add_trace(
        go.Scatter(
            x=sheet.drawdown.index,
            y=sheet.drawdown * 100,
            fill="tozeroy",
            name="drawdown",
            line={"color": "#d62728", "width": 1},
            showlegend=False,
        ),
        row=rows,
        col=1,
    )
    fig.update_yaxes(title_text="%", row=rows, col=1)
    fig.update_layout(
        title=title or f"{sheet.name}: growth, regime and drawdown",
        height=520 if has_labels else 460,
        margin={"t": 60, "b": 30},
        legend={"orientation": "h", "y": -0.08, "font": {"size": 10}},
    )
    return fig


def pnl_waterfall(sheet: TearSheet, title: str | None = None) -> go.Figure:
    """The P&L decomposition as a waterfall from the credits sold to the change in equity."""
    frame = sheet.decomposition
    keep = frame[(frame["dollars"].abs() > 0.005) | (frame["key"] == "credits")]
    labels = [*(SHORT[k] for k in keep["key"]), "Change in equity"]
    values = [*keep["dollars"], sheet.total]
    fig = go.Figure(
        go.Waterfall(
            orientation="v",
            x=labels,
            y=values,
            measure=["relative"] * len(keep) + ["total"],
            text=[money(v) for v in values],
            textposition="outside",
            connector={"line": {"color": "#999", "width": 1}},
            increasing={"marker": {"color": "#2ca02c"}},
            decreasing={"marker": {"color": "#d62728"}},
            totals={"marker": {"color": "#1f3b5a"}},
        )
    )
    fig.update_layout(
        title=title or f"{sheet.name}: where the P&L came from ($)",
        height=430,
        showlegend=False,
        margin={"t": 60, "b": 60},
        xaxis={"tickangle": 0, "tickfont": {"size": 10}},
        yaxis={"title": "$", "tickformat": ",.0f"},
    )
    return fig


def decomposition_table(sheet: TearSheet) -> Styler:
    """The decomposition's lines: trades, $, $ a contract traded, share of the credits sold."""
    frame = sheet.decomposition.drop(columns=["key"]).copy()
    total = {
        "line": "Change in equity",
        "trades": float(frame["trades"].iloc[0]),
        "dollars": sheet.total,
        "per_contract": sheet.total / sheet.decomposition.attrs["contracts"]
        if sheet.decomposition.attrs["contracts"]
        else math.nan,
        "share": sheet.total / float(frame["dollars"].iloc[0])
        if float(frame["dollars"].iloc[0])
        else math.nan,
    }
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    frame = frame.rename(
        columns={"dollars": "$", "per_contract": "$ a contract", "share": "of credits sold"}
    )
    return styled(frame, percent=["of credits sold"], integers=["trades", "$", "$ a contract"])


def year_table(sheet: TearSheet) -> Styler:
    """Per calendar year: return, drawdown, trades closed, win rate, P&L."""
    return styled(
        sheet.yearly.rename(columns={"pnl": "P&L $"}),
        percent=["return", "max_drawdown", "win_rate"],
        integers=["year", "trades", "P&L $"],
    )


def regime_table(sheet: TearSheet) -> Styler:
    """Per regime: trades by entry label, and the account's daily returns by the label held."""
    frame = sheet.by_regime.rename(columns={"pnl": "P&L $", "per_contract": "$ a contract"})
    return styled(
        frame,
        percent=[c for c in ("win_rate", "annual_return", "growth") if c in frame.columns],
        integers=[c for c in ("trades", "P&L $", "$ a contract", "days") if c in frame.columns],
    )
