"""Figures for the site: lines thinned to the figure's width with min-max buckets (the same
points as tsdownsample picks), stacked layers kept aligned, nothing else touched, and the renderer's
output without plotly.js or a CDN."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from tsdownsample import MinMaxDownsampler

from research.plotting.regimes import label_runs, regime_strips
from research.plotting.site import PLOTLY_ASSET, SiteRenderer, plotly_script_tag, thin_figure

N = 5000
DATES = pd.bdate_range("2000-01-03", periods=N)


def _walk(seed: int = 0) -> np.ndarray:
    return 100 + np.random.default_rng(seed).standard_normal(N).cumsum()


def test_a_long_line_keeps_each_buckets_lowest_and_highest_point() -> None:
    y = _walk()
    out = thin_figure(go.Figure(go.Scatter(x=DATES, y=y)), max_points=1000)
    trace = out["data"][0]
    picked = MinMaxDownsampler().downsample(DATES.asi8.astype(float), y, n_out=1000)
    expected = np.union1d(picked.astype(np.int64), np.array([0, N - 1]))  # plus both ends
    assert len(picked) == 1000 and len(trace["y"]) == len(expected) <= 1002
    np.testing.assert_array_equal(trace["y"], y[expected].astype(np.float32))
    assert list(trace["x"]) == list(DATES[expected].strftime("%Y-%m-%d"))
    # the extremes and both ends survive
    assert trace["y"].max() == np.float32(y.max()) and trace["y"].min() == np.float32(y.min())
    assert trace["x"][0] == "2000-01-03" and trace["x"][-1] == DATES[-1].strftime("%Y-%m-%d")


def test_width_sets_the_budget_and_short_lines_stay_whole() -> None:
    fig = go.Figure(go.Scatter(x=DATES, y=_walk()), layout={"width": 700})
    fig.add_scatter(x=DATES[:300], y=_walk(1)[:300])
    out = thin_figure(fig)
    assert 700 <= len(out["data"][0]["y"]) <= 702
    assert len(out["data"][1]["y"]) == 300


@pytest.mark.parametrize(
    "trace",
    [
        go.Scatter(x=DATES, y=_walk(), mode="markers"),  # every marker is a data point
        go.Scatter(x=DATES, y=_walk(), mode="lines+markers"),
        go.Scatter(x=np.random.default_rng(2).random(N), y=_walk()),  # x not sorted
        go.Bar(x=DATES, y=_walk()),
    ],
)
def test_markers_unsorted_x_and_other_types_are_not_thinned(trace: go.BaseTraceType) -> None:
    out = thin_figure(go.Figure(trace), max_points=500)
    assert len(out["data"][0]["y"]) == N


def test_stacked_layers_keep_one_set_of_dates() -> None:
    shares = np.random.default_rng(3).dirichlet([1, 1, 1], size=N)
    fig = go.Figure()
    for j in range(3):
        fig.add_scatter(x=DATES, y=shares[:, j], stackgroup="share", name=str(j))
    out = thin_figure(fig, max_points=400)
    xs = [tuple(t["x"]) for t in out["data"]]
    assert xs[0] == xs[1] == xs[2] and 400 <= len(xs[0]) < N / 2
    total = sum(np.asarray(t["y"], dtype=float) for t in out["data"])
    np.testing.assert_allclose(total, 1.0, atol=1e-6)  # still 100 % at every kept date


def test_a_band_filled_to_the_previous_trace_is_aligned_with_it() -> None:
    low, high = _walk(4), _walk(4) + 5
    fig = go.Figure([go.Scatter(x=DATES, y=low), go.Scatter(x=DATES, y=high, fill="tonexty")])
    out = thin_figure(fig, max_points=300)
    assert list(out["data"][0]["x"]) == list(out["data"][1]["x"])


def test_gaps_stay_gaps_and_per_point_arrays_follow() -> None:
    y = _walk(5)
    y[1000:1010] = np.nan
    text = np.array([f"p{i}" for i in range(N)], dtype=object)
    fig = go.Figure(go.Scatter(x=DATES, y=y, text=text, line={"width": 1}))
    trace = thin_figure(fig, max_points=500)["data"][0]
    assert np.isnan(np.asarray(trace["y"], dtype=float)).sum() == 10
    kept = [int(t[1:]) for t in trace["text"]]
    np.testing.assert_array_equal(np.asarray(trace["y"], dtype=float), y[kept].astype(np.float32))


def test_the_renderer_writes_no_plotly_js_and_no_cdn() -> None:
    fig = go.Figure(go.Scatter(x=DATES, y=_walk()))
    bundle = SiteRenderer().to_mimebundle(fig.to_dict())
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "cdn" not in html.lower()
    assert len(html) < 60_000  # 5,000 daily points would take about 200 kB
    spec = bundle["application/vnd.plotly.v1+json"]
    assert 1200 <= len(spec["data"][0]["y"]) <= 1202  # JupyterLab gets the same thin figure
    assert json.dumps(spec)
    tag = plotly_script_tag()
    assert f'<script src="../{PLOTLY_ASSET}" charset="utf-8"></script>' in tag
    assert tag.index("window.define = undefined") < tag.index(PLOTLY_ASSET)  # AMD hidden


def test_label_runs_by_hand() -> None:
    dates = pd.Series(pd.bdate_range("2020-01-01", periods=7))  # Wed 1 .. Thu 9 January
    runs = label_runs(dates, pd.Series(["a", "a", None, None, "b", "a", "a"]))
    assert list(runs["days"]) == [2, 2, 1, 2]
    assert list(runs["label"].fillna("-")) == ["a", "-", "b", "a"]
    assert list(runs["start"].dt.strftime("%m-%d")) == ["01-01", "01-03", "01-07", "01-08"]
    assert list(runs["end"].dt.strftime("%m-%d")) == ["01-02", "01-06", "01-07", "01-09"]


def test_regime_strips_draw_one_cell_per_run() -> None:
    dates = pd.bdate_range("2020-01-01", periods=6)
    bars = pd.DataFrame({"date": dates, "symbol": "X", "close": np.arange(6.0) + 10})
    labels = pd.DataFrame(
        {"date": dates, "symbol": "X", "regime": ["lo", "lo", "hi", "hi", "hi", "lo"]}
    )
    fig = regime_strips(bars, {"m": labels}, {"m": ["lo", "hi"]}, "X")
    heat = next(t for t in fig.data if t.type == "heatmap")
    assert list(np.asarray(heat.z)[0]) == [0.0, 1.0, 0.0]
    edges = pd.to_datetime(np.asarray(heat.x)).strftime("%m-%d").tolist()
    assert edges == ["01-01", "01-03", "01-08", "01-09"]  # run starts, then the day after the end
    assert np.asarray(heat.text)[0][1] == "2020-01-03 – 2020-01-07: hi (3 days)"
