"""Tables for reading: three significant digits per column, percentages, no index column, and
a box that scrolls sideways instead of overflowing the page."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from research.plotting.regimes import share_over_time
from research.plotting.tables import significant_decimals, styled


@pytest.mark.parametrize(
    ("values", "decimals"),
    [
        ([0.160559, 0.02], 3),
        ([1.52, -0.3], 2),
        ([25.3, 1.0], 1),
        ([1530.2, 12.0], 0),
        ([-0.0004, 0.0001], 4),  # capped at four decimals
        ([0.0, np.nan], 2),
    ],
)
def test_significant_decimals(values: list[float], decimals: int) -> None:
    assert significant_decimals(pd.Series(values)) == decimals


def test_styled_table_by_hand() -> None:
    frame = pd.DataFrame(
        {
            "model": ["a", "b"],
            "kappa": [0.160559, 0.5],
            "share_of_time": [0.1234, 0.8766],
            "n": [9953, 12],
            "date": pd.to_datetime(["2018-12-31", "2019-01-02"]),
        },
        index=[7, 8],
    )
    html = styled(frame, percent=["share_of_time"], integers=["n"], dates=["date"]).to_html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells == ["a", "0.161", "12.3%", "9,953", "2018-12-31"] + [
        "b",
        "0.500",
        "87.7%",
        "12",
        "2019-01-02",
    ]
    assert ">7<" not in html and ">8<" not in html  # no index column
    assert "share of time" in html  # headers break at underscores
    assert "overflow-x: auto" in html  # wide tables scroll in their own box


def test_stacked_shares_make_100_percent_per_panel() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for symbol in ("SPX", "IXIC"):
        for year in range(2010, 2015):
            parts = rng.dirichlet([1, 1, 1])
            for regime, share in zip(("a", "b", "c"), parts, strict=True):
                rows.append((symbol, pd.Timestamp(f"{year}-12-31"), regime, share))
    shares = pd.DataFrame(rows, columns=["symbol", "period", "regime", "share"])
    fig = share_over_time(shares, ["a", "b", "c"], "share")
    assert {t.xaxis for t in fig.data} == {"x", "x2"}  # one panel per symbol
    for axis in ("x", "x2"):
        bars = [t for t in fig.data if t.xaxis == axis]
        np.testing.assert_allclose(sum(np.asarray(t.y, dtype=float) for t in bars), 1.0)
        assert list(bars[0].x) == list(range(2010, 2015))
    assert sum(bool(t.showlegend) for t in fig.data) == 3  # one legend entry per regime
