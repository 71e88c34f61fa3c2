"""Plotly figures for every analysis. Compute modules never import plotly; figures take their
results (DataFrames or result dataclasses) and return ``plotly.graph_objects.Figure``."""

from __future__ import annotations

from typing import Any

OFFLINE_RENDERER = "regime_lab"
"""Plotly renderer used in the notebooks (``research.plotting.site``): figure HTML without
plotly.js, thinned to the figure's width, for the site; the figure JSON for JupyterLab."""


def use_offline_renderer() -> str:
    """Make plotly figures render offline in the site, with plotly.js loaded once per site.

    Call it in a cell whose output is kept (its input hidden: ``#| echo: false``): the cell shows
    the ``<script>`` tag that loads the site's shared plotly.js (``assets/plotly.min.js``, no CDN)
    before the page's first figure.

    Returns
    -------
    str
        The renderer name that was set.
    """
    import plotly.io as pio
    from IPython.display import HTML, display

    from research.plotting.site import plotly_script_tag, register

    name = register()
    pio.templates.default = "plotly_white"
    display(HTML(plotly_script_tag()))
    return name


def interval_bars(mid: Any, low: Any, high: Any) -> dict[str, Any]:
    """A plotly ``error_y`` drawing the interval ``[low, high]`` around ``mid`` (asymmetric)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": high - mid,
        "arrayminus": mid - low,
        "thickness": 1,
    }
