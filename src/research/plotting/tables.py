"""Tables for the rendered pages: numbers formatted, no index column, long text wrapped.

A ``pandas.io.formats.style.Styler`` renders as an HTML table in JupyterLab, nbconvert and
Quarto alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

if TYPE_CHECKING:
    from IPython.display import Markdown


def _pvalue(x: object) -> str:
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(float(x)):
        return "–"
    return "< 0.001" if float(x) < 0.001 else f"{float(x):.3f}"


def _number(decimals: int) -> Callable[[object], str]:
    def fmt(x: object) -> str:
        if isinstance(x, bool) or not isinstance(x, int | float):
            return "–" if x is None else str(x)
        if not math.isfinite(float(x)):
            return "–"
        return f"{float(x):,.{decimals}f}"

    return fmt


def significant_decimals(values: pd.Series, digits: int = 3, most: int = 4) -> int:
    """Decimals that show the column's largest magnitude with ``digits`` significant digits
    (0.1606 → 3 decimals, 1.52 → 2, 25.3 → 1, 1,530 → 0; at most ``most``)."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = np.abs(numbers[np.isfinite(numbers)])
    if not len(finite) or finite.max() == 0:
        return min(2, most)
    return int(min(max(digits - 1 - math.floor(math.log10(finite.max())), 0), most))


def _percent(x: object) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(float(x)):
        return "–"
    return f"{100 * float(x):.1f}%"


def styled(
    frame: pd.DataFrame,
    *,
    percent: Sequence[str] = (),
    pvalues: Sequence[str] = (),
    decimals: int | None = None,
    integers: Sequence[str] = (),
    dates: Sequence[str] = (),
    wrap: Sequence[str] = (),
    caption: str | None = None,
) -> Styler:
    """``frame`` formatted for reading.

    Parameters
    ----------
    frame
        The table.
    percent
        Columns of fractions shown as percentages with one decimal.
    pvalues
        Columns of p-values (three decimals, "< 0.001").
    decimals
        Decimals of the other float columns (default: per column, three significant digits of
        its largest value, see :func:`significant_decimals`).
    integers
        Columns shown without decimals.
    dates
        Date columns shown as YYYY-MM-DD.
    wrap
        Long-text columns that wrap (at most about 40 characters wide).
    caption
        Table caption.
    """
    out = frame.reset_index(drop=True)
    formats: dict[str, object] = {}
    for col in out.columns:
        if col in percent:
            formats[col] = _percent
        elif col in pvalues:
            formats[col] = _pvalue
        elif col in integers:
            formats[col] = _number(0)
        elif col in dates:
            formats[col] = lambda x: "–" if pd.isna(x) else pd.Timestamp(x).strftime("%Y-%m-%d")
        elif pd.api.types.is_float_dtype(out[col]) or out[col].dtype == object:
            places = significant_decimals(out[col]) if decimals is None else decimals
            formats[col] = _number(places)
    style = out.style.format(formats).hide(axis="index")  # type: ignore[arg-type]
    # headers break at the underscores, so narrow numeric columns stay narrow
    style = style.relabel_index([str(c).replace("_", " ") for c in out.columns], axis="columns")
    rules: list[Any] = [
        {"selector": "th", "props": "text-align: left; padding: 2px 8px;"},
        {"selector": "td", "props": "padding: 2px 8px; white-space: nowrap;"},
    ]
    for col in wrap:  # ``td.colN`` outranks the ``td`` rule above
        n = list(out.columns).index(col)
        rules.append(
            {
                "selector": f"td.col{n}",
                "props": "white-space: normal; min-width: 14em; max-width: 26em;",
            }
        )
    style = style.set_table_styles(rules)
    # a table wider than the page scrolls sideways inside its own box instead of overflowing
    style = style.set_table_attributes(
        'style="display: block; max-width: 100%; overflow-x: auto; border-collapse: collapse;"'
    )
    if caption:
        style = style.set_caption(caption)
    return style


def prose(paragraphs: Iterable[str]) -> Markdown:
    """Paragraphs of text (Markdown) for a page, e.g. the worded verdicts."""
    from IPython.display import Markdown

    return Markdown("\n\n".join(paragraphs))
