"""How figures reach the rendered site: plotly.js once per site, and thin figure data.

The ``regime_lab`` renderer writes each figure twice into the cell output:

- ``text/html``: a ``<div>`` and a ``Plotly.newPlot`` call *without* plotly.js. The site loads
  plotly.js once, from the shared file :data:`PLOTLY_ASSET` (copied there at render time, no
  CDN), through the ``<script>`` tag :func:`plotly_script_tag` that the notebook's renderer cell
  prints before the first figure. Quarto and the nbconvert fallback both show this output.
- ``application/vnd.plotly.v1+json``: the figure itself, which JupyterLab draws with its own
  plotly extension (it prefers this over ``text/html``), so notebooks opened in the lab work.

Before either, :func:`thin_figure` reduces every line with more points than the figure has
pixels with min-max down-sampling (``tsdownsample``, the down-sampler behind
``plotly-resampler``): the x range is cut into ``n/2`` equal buckets and each keeps its lowest and
highest point, so the drawn envelope (spikes, the deepest drawdown) is the full line's; the
first and last points are kept too. Stacked areas and filled bands keep
one shared set of points so their layers still line up. Dates at midnight are written as
``YYYY-MM-DD`` and floats as 32-bit, which is all a chart can show.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from plotly.io._base_renderers import MimetypeRenderer  # plotly's base for custom renderers

RENDERER = "regime_lab"
PLOTLY_ASSET = "assets/plotly.min.js"
"""Where the site keeps plotly.js, relative to the site root (``reports/_site``)."""
PAGE_DEPTH = 1
"""Notebook pages live one folder below the site root (``executed/NAME.html``)."""
DEFAULT_WIDTH_PX = 1200
"""Width assumed for a figure without ``layout.width`` (the content column is narrower)."""
_NESTED = ("marker", "line", "error_x", "error_y", "hoverlabel")
_LINE_TYPES = {"scatter", "scattergl"}


def plotly_js_file() -> Path:
    """The installed plotly package's minified plotly.js (shipped with the package)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.js not found at {path}; reinstall plotly")
    return path


def plotly_script_tag(depth: int = PAGE_DEPTH) -> str:
    """``<script>`` tags loading the site's shared plotly.js from a page ``depth`` folders deep.

    Quarto's notebook pages load require.js (from a CDN); once it has loaded, plotly.js would
    register itself as an anonymous AMD module instead of ``window.Plotly`` and no figure would
    draw. ``define`` is therefore hidden while plotly.js runs, then put back.
    """
    return (
        "<script>window.__rlDefine = window.define; window.define = undefined;</script>"
        f'<script src="{"../" * depth}{PLOTLY_ASSET}" charset="utf-8"></script>'
        "<script>window.define = window.__rlDefine;</script>"
    )


def _points(trace: Mapping[str, Any]) -> int:
    y = trace.get("y")
    return len(y) if isinstance(y, list | tuple | np.ndarray) else 0


def _thinnable(trace: Mapping[str, Any]) -> bool:
    """A line (no markers) of a scatter trace: its points can be thinned without losing any."""
    if trace.get("type", "scatter") not in _LINE_TYPES:
        return False
    mode = trace.get("mode")
    return (mode is None or "lines" in mode) and "markers" not in (mode or "")


def _x_numbers(trace: Mapping[str, Any], n: int) -> np.ndarray | None:
    """The trace's x as increasing numbers (None when x is not sorted or not numeric/dates)."""
    x = trace.get("x")
    if x is None:
        return np.arange(n, dtype=np.float64)
    arr = np.asarray(x)
    if len(arr) != n:
        return None
    if np.issubdtype(arr.dtype, np.datetime64):
        values = arr.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    elif arr.dtype == object:
        try:
            import pandas as pd

            values = pd.to_datetime(arr).asi8.astype(np.float64)
        except (ValueError, TypeError):
            return None
    elif np.issubdtype(arr.dtype, np.number):
        values = arr.astype(np.float64)
    else:
        return None
    if not np.all(np.isfinite(values)) or np.any(np.diff(values) < 0):
        return None
    return values


def _keep(trace: Mapping[str, Any], n_out: int) -> np.ndarray | None:
    """Indices min-max down-sampling keeps for one trace (None: leave the trace as it is)."""
    from tsdownsample import MinMaxDownsampler

    n = _points(trace)
    if n <= n_out or not _thinnable(trace):
        return None
    x = _x_numbers(trace, n)
    if x is None:
        return None
    y = np.asarray(trace["y"], dtype=np.float64)
    finite = np.isfinite(y)
    if not finite.all():  # gaps stay gaps: keep every missing point and the thinned rest
        idx = np.flatnonzero(finite)
        if len(idx) <= n_out:
            return None
        picked = MinMaxDownsampler().downsample(x[idx], y[idx], n_out=n_out).astype(np.int64)
        ends = np.array([idx[0], idx[-1]], dtype=np.int64)
        return np.union1d(np.union1d(idx[picked], ends), np.flatnonzero(~finite))
    # the first and last points too: the line spans the whole range and ends on its last value
    picked = MinMaxDownsampler().downsample(x, y, n_out=n_out).astype(np.int64)
    return np.union1d(picked, np.array([0, n - 1], dtype=np.int64))


def _groups(data: list[dict[str, Any]]) -> list[list[int]]:
    """Traces that must keep the same points: a stack group, or a band filled to the previous
    trace (``fill: tonexty``)."""
    parent = list(range(len(data)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    stacks: dict[tuple[Any, ...], int] = {}
    for i, trace in enumerate(data):
        group = trace.get("stackgroup")
        if group is not None:
            key = (group, trace.get("xaxis"), trace.get("yaxis"))
            parent[root(i)] = root(stacks.setdefault(key, i))
        if i > 0 and str(trace.get("fill", "")).startswith("tonext"):
            parent[root(i)] = root(i - 1)
    groups: dict[int, list[int]] = {}
    for i in range(len(data)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _decoded(value: Any) -> Any:
    """A plotly typed-array spec (``{"dtype": "f8", "bdata": …}``, how plotly ≥ 6 stores numeric
    arrays in figure dicts) as a numpy array; anything else unchanged."""
    if isinstance(value, Mapping) and "bdata" in value and "dtype" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            dims = [int(v) for v in str(shape).split(",")] if isinstance(shape, str) else shape
            arr = arr.reshape(dims)
        return arr.copy()
    return value


def _decode_trace(trace: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: _decoded(value) for key, value in trace.items()}
    for key in _NESTED:
        if isinstance(out.get(key), Mapping):
            out[key] = {k: _decoded(v) for k, v in out[key].items()}
    return out


def _subset(trace: dict[str, Any], keep: np.ndarray, n: int) -> dict[str, Any]:
    """The trace with every per-point array cut to ``keep``."""

    def cut(value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n:
            return value[keep]
        if isinstance(value, list | tuple) and len(value) == n:
            return [value[int(k)] for k in keep]
        return value

    out = {key: cut(value) for key, value in trace.items()}
    for key in _NESTED:
        if isinstance(out.get(key), Mapping):
            out[key] = {k: cut(v) for k, v in out[key].items()}
    return out


def _compact(value: Any) -> Any:
    """Dates at midnight as ``YYYY-MM-DD`` strings, floats as float32 (plotly encodes both)."""
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.datetime64):
            days = value.astype("datetime64[D]")
            unit: Any = "D" if np.all(days == value) else "s"
            return np.asarray(np.datetime_as_string(value, unit=unit), dtype=object)
        if value.dtype == np.float64:
            return value.astype(np.float32)
    return value


def thin_figure(fig: Any, max_points: int | None = None) -> dict[str, Any]:
    """A figure dict whose lines carry no more points than the figure has pixels.

    Parameters
    ----------
    fig
        A ``plotly.graph_objects.Figure`` or its dict.
    max_points
        Points kept per line (default: ``layout.width`` or :data:`DEFAULT_WIDTH_PX`).

    Returns
    -------
    dict
        ``{"data": [...], "layout": {...}}`` with thinned traces (other traces untouched).
    """
    spec = fig.to_dict() if hasattr(fig, "to_dict") else dict(fig)
    data = [_decode_trace(t) for t in spec.get("data", [])]
    layout = dict(spec.get("layout", {}))
    n_out = int(max_points or layout.get("width") or DEFAULT_WIDTH_PX)
    for group in _groups(data):
        sizes = [_points(data[i]) for i in group]
        picks = [_keep(data[i], n_out) for i in group]
        kept = [k for k in picks if k is not None]
        if len(set(sizes)) != 1 or len(kept) != len(picks):
            continue  # a trace of the group cannot be thinned: the group stays whole
        keep = functools.reduce(lambda a, b: np.union1d(a, b), kept)
        for i, n in zip(group, sizes, strict=True):
            data[i] = _subset(data[i], keep, n)
    for trace in data:
        for key in ("x", "y"):
            if key in trace:
                value = trace[key]
                trace[key] = _compact(np.asarray(value) if _is_array(value) else value)
    return {**spec, "data": data, "layout": layout}


def _is_array(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, list | tuple) and value:
        try:
            arr = np.asarray(value)
        except ValueError:
            return False
        return arr.dtype.kind in "fMi" and arr.ndim == 1
    return False


# plotly ships no type information (no py.typed), so its MimetypeRenderer is Any to mypy
class SiteRenderer(MimetypeRenderer):  # type: ignore[misc]
    """Plotly renderer ``regime_lab``: thin figure data, HTML without plotly.js for the site and
    the figure JSON for JupyterLab (see the module docstring)."""

    def __init__(self, max_points: int | None = None) -> None:
        self.max_points = max_points
        self.config: dict[str, Any] = {"responsive": True, "displaylogo": False}

    def to_mimebundle(self, fig_dict: Mapping[str, Any]) -> dict[str, Any]:
        import json

        import plotly.io as pio

        thin = thin_figure(fig_dict, self.max_points)
        html = pio.to_html(
            thin,
            config=self.config,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=525,
            validate=False,
        )
        spec = json.loads(pio.to_json(thin, validate=False))
        return {
            "text/html": html,
            "application/vnd.plotly.v1+json": {**spec, "config": self.config},
        }


def register() -> str:
    """Register the ``regime_lab`` renderer with plotly and make it the default."""
    import plotly.io as pio

    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = SiteRenderer()
    pio.renderers.default = RENDERER
    return RENDERER
