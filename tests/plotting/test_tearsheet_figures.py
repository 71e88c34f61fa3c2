"""Tear-sheet figures: log-axis labels written out in full (never "2" for 0.2), a waterfall
whose bars add up to the change in equity, the regime band and the stopped-trading marker."""

from __future__ import annotations

import dataclasses

import pandas as pd
import plotly.graph_objects as go
import pytest
from tests.backtest.test_tearsheet import DATES, _result

from research.backtest.activity import Idle
from research.backtest.tearsheet import tear_sheet
from research.plotting.axes import log_axis, log_ticks
from research.plotting.tearsheet import equity_drawdown_regimes, pnl_waterfall


@pytest.mark.parametrize(
    ("low", "high", "want"),
    [
        (0.06, 1.0, ["0.1", "0.2", "0.5", "1"]),
        (0.2, 30.0, ["0.2", "0.5", "1", "2", "5", "10", "20"]),
        (0.5, 1.3, ["0.5", "0.6", "0.7", "0.8", "0.9", "1"]),
        (700.0, 2900.0, ["700", "800", "900", "1,000", "1,500", "2,000"]),
        (0.93, 1.08, ["0.93", "1", "1.08"]),
    ],
)
def test_log_ticks_are_written_in_full(low: float, high: float, want: list[str]) -> None:
    values, text = log_ticks(low, high)
    assert text == want
    assert all(low <= v <= high for v in values)


def test_log_axis_sets_the_ticks_on_the_right_subplot() -> None:
    fig = go.Figure(go.Scatter(y=[0.15, 0.4, 1.0]))
    log_axis(fig, [0.15, 0.4, 1.0])
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.ticktext) == ["0.2", "0.5", "1"]


def test_waterfall_adds_up_to_the_change_in_equity() -> None:
    sheet = tear_sheet(_result(), "hand")
    fig = pnl_waterfall(sheet)
    bars = fig.data[0]
    assert list(bars.measure[-1:]) == ["total"]
    assert sum(bars.y[:-1]) == pytest.approx(bars.y[-1]) == pytest.approx(-91.70)
    assert bars.text[0] == "$585" and bars.text[-1] == "−$92"
    assert "Expiries" in bars.x and "Other closes" not in bars.x  # zero lines left out


def test_equity_figure_shades_regimes_and_marks_when_it_stopped() -> None:
    labels = pd.Series(["calm"] * 4 + ["storm"] * 3, index=DATES)
    sheet = tear_sheet(_result(), "hand", labels=labels)
    fig = equity_drawdown_regimes(sheet)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 1 and list(heat[0].z[0]) == [0.0, 1.0]  # two runs: calm, storm
    assert not fig.layout.shapes  # it traded to the end
    stopped = dataclasses.replace(sheet, idle=Idle(since=DATES[4], days=2, share=2 / 6))
    fig = equity_drawdown_regimes(stopped)
    assert len(fig.layout.shapes) == 1
    assert "stopped trading 2021-03-05" in str(fig.layout.annotations)
