"""Axis helpers shared by the figures."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["log_axis", "log_ticks"]

_STEPS = (1.0, 2.0, 5.0)
_FINE = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)


def log_ticks(low: float, high: float, most: int = 8) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log axis from ``low`` to ``high`` (both > 0): the 1-2-5
    values in range (1, 1.5, 2, 3, ... 9 when that gives fewer than three; the ends and the
    middle for a very narrow range), thinned to at most ``most``, written out in full ("0.2",
    "0.5", "1", "2") — plotly's own minor labels on a log axis show the leading digit only
    ("2" for 0.2), which reads as growth of two.
    """
    if not (low > 0 and high > 0 and math.isfinite(low) and math.isfinite(high)):
        return [], []
    low, high = min(low, high), max(low, high)
    values: list[float] = []
    for steps in (_STEPS, _FINE):
        values = [
            step * 10.0**exponent
            for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
            for step in steps
            if low <= step * 10.0**exponent <= high
        ]
        if len(values) >= 3:
            break
    if len(values) < 3:  # a narrow range: the ends and the middle, three significant digits
        values = sorted({float(f"{v:.3g}") for v in np.geomspace(low, high, 3)})
    values = [float(f"{v:.12g}") for v in values]
    while len(values) > most:
        values = values[::2]
    return values, [f"{v:,.10g}" for v in values]


def log_axis(fig: go.Figure, values: Any, **where: Any) -> go.Figure:
    """Make a y axis logarithmic with :func:`log_ticks` labels for ``values`` (the data it
    shows; NaN and non-positive values ignored). ``where``: ``row``/``col`` of a subplot, and
    other ``update_yaxes`` options (``title_text``, ``secondary_y``)."""
    data = np.asarray(values, dtype=float).ravel()
    data = data[np.isfinite(data) & (data > 0)]
    vals, text = log_ticks(float(data.min()), float(data.max())) if len(data) else ([], [])
    if vals:
        fig.update_yaxes(type="log", tickvals=vals, ticktext=text, **where)
    else:
        fig.update_yaxes(type="log", **where)
    return fig
