"""Several figures stacked into one: every trace keeps an axis that exists, panels do not
overlap, a repeated legend entry shows once, and panel titles become headings."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from research.plotting.panels import stack


def _two_row(title: str, height: int) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=["top", "bottom"])
    fig.add_scatter(y=[1, 2, 3], name="line", legendgroup="g", row=1, col=1)
    fig.add_trace(go.Heatmap(z=[[1, 2, 3]], colorbar={"y": 0.25, "len": 0.5}), row=2, col=1)
    fig.add_hline(y=2, row=1, col=1)
    fig.update_layout(title=title, height=height)
    return fig


def test_two_subplot_figures_become_one() -> None:
    first, second = _two_row("A", 400), _two_row("B", 600)
    fig = stack([first, second], gap_px=40)
    layout = fig.layout.to_plotly_json()
    assert fig.layout.height == 1040
    axes = {k for k in layout if k.startswith(("xaxis", "yaxis"))}
    assert axes == {"xaxis", "xaxis2", "xaxis3", "xaxis4", "yaxis", "yaxis2", "yaxis3", "yaxis4"}
    for trace in fig.data:  # every trace points at an axis of the figure
        assert f"xaxis{trace.xaxis[1:]}" in axes and f"yaxis{trace.yaxis[1:]}" in axes
    # the second figure's traces moved to the new axes 3 and 4
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [
        ("x", "y"),
        ("x2", "y2"),
        ("x3", "y3"),
        ("x4", "y4"),
    ]
    # x axes still anchored to their own y axes (shared x kept within a panel)
    assert layout["xaxis3"]["anchor"] == "y3" and layout["xaxis3"].get("matches") == "x4"
    # y domains: panel A in the top 400/1040 of the height, B below; no overlap
    domains = sorted(tuple(layout[f"yaxis{n}"]["domain"]) for n in ("", "2", "3", "4"))
    assert all(low < high for low, high in domains)
    assert all(domains[i][1] <= domains[i + 1][0] + 1e-9 for i in range(3))
    a_low = min(layout["yaxis"]["domain"][0], layout["yaxis2"]["domain"][0])
    assert np.isclose(a_low, 1 - 400 / 1040)
    assert max(layout["yaxis3"]["domain"][1], layout["yaxis4"]["domain"][1]) < 600 / 1040
    # the repeated legend entry shows once; colorbars squeezed into their panel
    assert [t.showlegend for t in fig.data if t.type == "scatter"] == [None, False]
    bar_b = fig.data[3].colorbar
    assert bar_b.y < 600 / 1040 and bar_b.len < 0.5
    # titles are headings; subplot titles and the hlines moved with their panels
    texts = [a.text for a in fig.layout.annotations]
    assert "<b>A</b>" in texts and "<b>B</b>" in texts and texts.count("top") == 2
    assert sorted(s.yref for s in fig.layout.shapes) == ["y", "y3"]


def test_one_figure_is_itself_and_none_is_nothing() -> None:
    fig = _two_row("A", 400)
    assert stack([fig]) is fig
    assert stack([]) is None
