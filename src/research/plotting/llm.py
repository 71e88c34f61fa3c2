"""Figures for the trade-filter notebook: the confidence-threshold sweep and the reliability
of the stated confidence. Titles carry the provider's label (the heuristic says it is not an
LLM)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from research.plotting import interval_bars

__all__ = ["reliability_figure", "threshold_figure"]


def threshold_figure(sweep: pd.DataFrame, label: str) -> go.Figure:
    """Uplift of the kept trades' mean P&L over taking every trade (with its 95% interval) and
    the share of trades kept, by confidence threshold."""
    f = sweep[sweep["kept"] > 0]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=f["threshold"],
            y=f["uplift"],
            name="uplift of mean P&L ($/trade)",
            mode="lines+markers",
            error_y=interval_bars(f["uplift"], f["uplift_ci_low"], f["uplift_ci_high"]),
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Bar(x=f["threshold"], y=f["kept_share"] * 100, name="trades kept (%)", opacity=0.25),
        secondary_y=True,
    )
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    fig.update_layout(
        title=f"Confidence threshold sweep — {label}",
        xaxis_title="keep approved trades with confidence ≥",
        height=400,
    )
    fig.update_yaxes(title_text="uplift over all trades ($/trade)", secondary_y=False)
    fig.update_yaxes(
        title_text="trades kept (%)", secondary_y=True, range=[0, 100], dtick=25, showgrid=False
    )
    return fig


def reliability_figure(bins: pd.DataFrame, label: str) -> go.Figure:
    """Observed win rate (Wilson 95% interval) against the mean stated probability of winning
    per bin, with the diagonal of perfect calibration; marker size ~ trades in the bin."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            name="perfectly calibrated",
            mode="lines",
            line={"dash": "dash", "color": "#888"},
        )
    )
    size = 8 + 22 * (bins["n"] / bins["n"].max()) if len(bins) else 8
    fig.add_trace(
        go.Scatter(
            x=bins["mean_forecast"],
            y=bins["win_rate"],
            name="observed win rate",
            mode="markers+lines",
            marker={"size": size},
            text=bins["n"].map(lambda n: f"{n} trades"),
            error_y=interval_bars(bins["win_rate"], bins["win_ci_low"], bins["win_ci_high"]),
        )
    )
    fig.update_layout(
        title=f"Reliability of the stated confidence — {label}",
        xaxis_title="stated probability of winning (confidence; 1 − confidence when rejecting)",
        yaxis_title="observed win rate",
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1]},
        height=420,
    )
    return fig
