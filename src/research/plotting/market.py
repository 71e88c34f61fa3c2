"""Figures for the market-data notebook."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from research.data.market import IvProxyFit
from research.plotting.axes import log_axis

IV_COLORS = {
    "index": "#8b0000",
    "proxy": "#ff9896",
    "scaled:index": "#ff7f0e",
    "scaled:proxy": "#ffbb78",
    "uncalibrated_proxy": "#9467bd",
}
"""IV line colour by ``source``: published index, proxy, another symbol's IV scaled, and the
uncalibrated GARCH forecast."""


def price_with_iv(bars: pd.DataFrame, iv: pd.DataFrame) -> go.Figure:
    """Close price (log scale) with the IV index / proxy on a second axis, one row per symbol.

    Parameters
    ----------
    bars
        Bars contract frame.
    iv
        ``date, symbol, iv, source`` (from ``iv_with_proxy``); proxy and index are drawn as
        separate, labelled traces.
    """
    symbols = list(dict.fromkeys(bars["symbol"]))
    fig = make_subplots(
        rows=len(symbols),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[f"{s}: close and implied volatility" for s in symbols],
        specs=[[{"secondary_y": True}] for _ in symbols],
    )
    for row, symbol in enumerate(symbols, start=1):
        b = bars.loc[bars["symbol"] == symbol]
        fig.add_trace(
            go.Scatter(
                x=b["date"],
                y=b["close"],
                name=f"{symbol} close",
                line={"color": "#1f77b4", "width": 1.2},
            ),
            row=row,
            col=1,
            secondary_y=False,
        )
        v = iv.loc[iv["symbol"] == symbol]
        for source, color in IV_COLORS.items():
            part = v.loc[v["source"] == source]
            if part.empty:
                continue
            # reindex on all dates so index and proxy segments are not joined across gaps
            series = part.set_index("date")["iv"].reindex(v["date"]) * 100
            fig.add_trace(
                go.Scatter(
                    x=series.index,
                    y=series.to_numpy(),
                    name=f"{symbol} IV ({source})",
                    line={"color": color, "width": 1},
                    connectgaps=False,
                ),
                row=row,
                col=1,
                secondary_y=True,
            )
        log_axis(fig, b["close"], title_text="close", row=row, col=1, secondary_y=False)
        fig.update_yaxes(
            title_text="IV (vol points)",
            row=row,
            col=1,
            secondary_y=True,
            tickmode="auto",
            showgrid=False,
        )
    fig.update_layout(
        height=330 * len(symbols),
        margin={"t": 40, "b": 40},
    )
    return fig


def iv_proxy_fit(fit: IvProxyFit) -> go.Figure:
    """Published IV index vs the proxy on the overlap; the holdout window is shaded.

    The proxy drawn is the fit-window model (so the shaded part is out-of-sample).
    """
    ov = fit.overlap
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ov["date"],
            y=ov["iv"] * 100,
            name=f"{fit.symbol} IV index",
            line={"color": "#d62728", "width": 1.2},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ov["date"],
            y=ov["proxy_fit"] * 100,
            name="proxy (fit before holdout)",
            line={"color": "#2ca02c", "width": 1},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ov["date"],
            y=ov["rv22"] * 100,
            name="raw 22-day realized vol",
            line={"color": "#7f7f7f", "width": 0.8, "dash": "dot"},
        )
    )
    fig.add_vrect(
        x0=fit.holdout_start,
        x1=ov["date"].max(),
        fillcolor="#cccccc",
        opacity=0.25,
        line_width=0,
        annotation_text="holdout (out-of-sample)",
        annotation_position="top left",
    )
    fig.update_layout(
        title=f"IV proxy vs {fit.symbol} IV index (holdout RMSE "
        f"{fit.out_of_sample.rmse:.2f} vol points)",
        yaxis_title="vol points",
        height=380,
    )
    return fig


def yearly_returns(summary: pd.DataFrame) -> go.Figure:
    """Calendar-year total return per symbol (grouped bars)."""
    fig = go.Figure()
    for symbol, part in summary.groupby("symbol", sort=False):
        fig.add_trace(go.Bar(x=part["year"], y=part["total_return"] * 100, name=str(symbol)))
    fig.update_layout(barmode="group", title="Calendar-year return", yaxis_title="%", height=340)
    return fig


def proxy_band(iv: pd.DataFrame, band: pd.DataFrame, symbol: str) -> go.Figure:
    """``symbol``'s IV: the published index, the proxy in use and the band of proxies whose map
    was fitted on sub-periods of the overlap (``research.data.market.proxy_band``)."""
    b = band.loc[band["symbol"] == symbol].sort_values("date")
    mine = iv.loc[iv["symbol"] == symbol].sort_values("date")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=b["date"], y=b["high"] * 100, line={"width": 0}, showlegend=False, hoverinfo="skip"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=b["date"],
            y=b["low"] * 100,
            fill="tonexty",
            fillcolor="rgba(214,39,40,0.18)",
            line={"width": 0},
            name="proxy band (sub-period map fits)",
        )
    )
    proxy = mine.loc[mine["source"] == "proxy"]
    fig.add_trace(
        go.Scatter(
            x=proxy["date"],
            y=proxy["iv"] * 100,
            mode="lines",
            line={"color": "#ff9896", "width": 0.8},
            name="proxy in use",
        )
    )
    index = mine.loc[mine["source"] == "index"]
    fig.add_trace(
        go.Scatter(
            x=index["date"],
            y=index["iv"] * 100,
            mode="lines",
            line={"color": "#8b0000", "width": 0.8},
            name="published index",
        )
    )
    fig.update_layout(
        title=f"{symbol} implied volatility and the uncertainty of its proxy",
        yaxis_title="vol points",
        height=380,
    )
    return fig
