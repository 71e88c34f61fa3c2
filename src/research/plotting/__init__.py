"""Plotly figures for every analysis. Compute modules never import plotly; figures take their
results (DataFrames or result dataclasses) and return ``plotly.graph_objects.Figure``."""

from __future__ import annotations

OFFLINE_RENDERER = "notebook"
"""Plotly renderer used in the notebooks.

``notebook`` embeds plotly.js once (inline, no CDN) in the first figure's output and then emits
plain ``text/html`` figures, which draw in nbconvert HTML and Quarto pages opened offline.
Plotly's default mimetype output (``application/vnd.plotly.v1+json``) renders empty there.
"""


def use_offline_renderer() -> str:
    """Make plotly figures render as self-contained HTML (works offline in the rendered site).

    Returns
    -------
    str
        The renderer name that was set.
    """
    import plotly.io as pio

    pio.renderers.default = OFFLINE_RENDERER
    pio.templates.default = "plotly_white"
    return OFFLINE_RENDERER
