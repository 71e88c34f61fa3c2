"""Plotly figures for every analysis. Compute modules never import plotly; figures take their
results (DataFrames or result dataclasses) and return ``plotly.graph_objects.Figure``."""

from __future__ import annotations

from typing import Any

OFFLINE_RENDERER = "notebook"
"""Plotly renderer used in the notebooks.

``notebook`` embeds plotly.js once (inline, no CDN) in the first figure's output and then emits
plain ``text/html`` figures, which draw in nbconvert HTML and Quarto pages opened offline.
Plotly's default mimetype output (``application/vnd.plotly.v1+json``) renders empty there.
"""


def use_offline_renderer() -> str:
    """Make plotly figures render as self-contained HTML (works offline in the rendered site).

    Call it in a cell whose output is kept (its input hidden: ``#| echo: false``): plotly.js is
    embedded in that output, once per page.

    Returns
    -------
    str
        The renderer name that was set.
    """
    import plotly.io as pio

    pio.renderers.default = OFFLINE_RENDERER
    pio.templates.default = "plotly_white"
    # embed plotly.js now, in this cell's output, rather than as an extra output of the first
    # figure (Quarto would show that extra output as an empty "(a)" sub-figure)
    activate = getattr(pio.renderers, "_activate_pending_renderers", None)
    if activate is not None:
        activate()
    return OFFLINE_RENDERER


def interval_bars(mid: Any, low: Any, high: Any) -> dict[str, Any]:
    """A plotly ``error_y`` drawing the interval ``[low, high]`` around ``mid`` (asymmetric)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": high - mid,
        "arrayminus": mid - low,
        "thickness": 1,
    }
