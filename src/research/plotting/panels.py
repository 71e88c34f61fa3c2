"""Several figures as one: panels stacked top to bottom in a single plotly figure.

A notebook cell that shows one figure per market (or per cluster) would give Quarto several
outputs for one labelled figure, which it lays out as sub-figures "(a)", "(b)" with their own
empty captions. :func:`stack` makes those figures one figure: one output, one caption, one legend
(an entry shown once however many panels repeat it), each panel titled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

_AXIS = re.compile(r"^([xy])axis(\d*)$")
_REF = re.compile(r"^([xy])(\d*)( domain)?$")
_AXIS_LINKS = ("anchor", "matches", "overlaying", "scaleanchor")
_NOT_CARTESIAN = {"pie", "table", "indicator", "sankey", "parcoords", "sunburst", "treemap"}
DEFAULT_HEIGHT = 450
TITLE_PX = 36
"""Room kept above each panel for its title."""


def _short(letter: str, number: int) -> str:
    return letter if number == 1 else f"{letter}{number}"


def stack(figures: Sequence[go.Figure], *, gap_px: int = 40) -> go.Figure | None:
    """Stack ``figures`` vertically into one figure.

    Parameters
    ----------
    figures
        Figures (with or without subplots); each keeps its height, axes, traces, shapes and
        annotations, and its title becomes the panel's heading.
    gap_px
        Space between panels, pixels.

    Returns
    -------
    plotly.graph_objects.Figure or None
        One figure, as tall as the panels together; layout options other than axes, title,
        height and margins (template, legend, bar mode, ...) come from the first figure. None
        for no figures (a cell showing it shows nothing).
    """
    if not figures:
        return None
    if len(figures) == 1:
        return figures[0]
    specs = [f.to_plotly_json() for f in figures]
    heights = [int(s["layout"].get("height") or DEFAULT_HEIGHT) for s in specs]
    total = sum(heights) + gap_px * (len(figures) - 1)
    layout: dict[str, Any] = {
        k: v
        for k, v in specs[0]["layout"].items()
        if not _AXIS.match(k) and k not in ("annotations", "shapes", "title", "height")
    }
    annotations: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    data: list[dict[str, Any]] = []
    shown: set[tuple[Any, Any]] = set()
    counters = {"x": 0, "y": 0}
    top_px = 0
    for spec, height in zip(specs, heights, strict=True):
        top = 1 - top_px / total
        bottom = 1 - (top_px + height) / total
        plot_top = top - TITLE_PX / total

        def y_paper(v: float, bottom: float = bottom, plot_top: float = plot_top) -> float:
            return bottom + float(v) * (plot_top - bottom)

        axes = {k: v for k, v in spec["layout"].items() if _AXIS.match(k)}
        for letter in ("x", "y"):  # every figure has at least the x and y axes
            axes.setdefault(f"{letter}axis", {})
        rename: dict[str, str] = {}
        for name in sorted(axes, key=lambda n: (n[0], int(_AXIS.match(n).group(2) or 1))):  # type: ignore[union-attr]
            letter, number = _AXIS.match(name).groups()  # type: ignore[union-attr]
            counters[letter] += 1
            rename[_short(letter, int(number or 1))] = _short(letter, counters[letter])

        def ref(value: Any, rename: dict[str, str] = rename) -> Any:
            match = _REF.match(str(value)) if isinstance(value, str) else None
            if match is None:
                return value
            short = match.group(1) + match.group(2)
            return rename.get(short, short) + (match.group(3) or "")

        for name, axis in axes.items():
            axis = dict(axis)
            letter, number = _AXIS.match(name).groups()  # type: ignore[union-attr]
            for link in _AXIS_LINKS:
                if link in axis:
                    axis[link] = ref(axis[link])
            if letter == "y":
                low, high = axis.get("domain", [0.0, 1.0])
                axis["domain"] = [y_paper(low), y_paper(high)]
            new = rename[_short(letter, int(number or 1))]
            layout[f"{letter}axis{new[1:]}"] = axis
        for trace in spec["data"]:
            trace = dict(trace)
            if trace.get("type", "scatter") not in _NOT_CARTESIAN:
                trace["xaxis"] = ref(trace.get("xaxis", "x"))
                trace["yaxis"] = ref(trace.get("yaxis", "y"))
            if isinstance(trace.get("colorbar"), dict) and trace.get("showscale") is not False:
                bar = dict(trace["colorbar"])
                bar["y"] = y_paper(bar.get("y", 0.5))
                bar["len"] = float(bar.get("len", 1.0)) * (plot_top - bottom)
                trace["colorbar"] = bar
            key = (trace.get("legendgroup"), trace.get("name"))
            if trace.get("showlegend") is not False and trace.get("name") is not None:
                if key in shown:
                    trace["showlegend"] = False
                shown.add(key)
            data.append(trace)
        for kind, target in (("annotations", annotations), ("shapes", shapes)):
            for item in spec["layout"].get(kind, []):
                item = dict(item)
                for axis_ref in ("xref", "yref"):  # plotly's default: the first axes
                    item[axis_ref] = ref(item.get(axis_ref, axis_ref[0]))
                if item.get("yref") == "paper":
                    for coordinate in ("y", "y0", "y1"):
                        if coordinate in item:
                            item[coordinate] = y_paper(item[coordinate])
                target.append(item)
        title = (spec["layout"].get("title") or {}).get("text")
        if title:
            annotations.append(
                {
                    "text": f"<b>{title}</b>",
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0,
                    "y": top,
                    "xanchor": "left",
                    "yanchor": "top",
                    "showarrow": False,
                    "font": {"size": 15},
                }
            )
        top_px += height + gap_px
    layout.update(height=total, annotations=annotations, shapes=shapes)
    layout["margin"] = {**layout.get("margin", {}), "t": 30}
    return go.Figure({"data": data, "layout": layout})
