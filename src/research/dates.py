"""Dates as the user writes them (base layer): the ISO default, a named ``strftime`` format, a
``YYYY-MM-DD`` option value.

``research.data.contracts`` reads whole date columns with these rules; ``research.options``
checks ``--start``, ``--end`` and ``--date-format`` with them before any work. pandas is
imported on first use only.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ISO", "ISO_DATE", "check_date_format", "parse_iso_date"]

ISO = "ISO"
"""The default date format of every date column: year first, ``YYYY-MM-DD`` (also ``YYYYMMDD``
and ``YYYY/MM/DD``), optionally followed by a time (``2020-01-02 16:00:00``,
``2020-01-02T16:00``). Any other format must be named (``validate(..., date_format=...)``, the
commands' ``--date-format``) and then reads the whole column: a column is never read value by
value, so ``02/03/2018`` cannot become 3 February in one row while ``13/03/2018`` is 13 March
in the next."""
ISO_DATE = re.compile(
    r"(?:\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{8})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
"""A year-first date (``2020-01-02``, ``2020/1/2``, ``20200102``), optionally with a time."""


def check_date_format(value: str) -> str:
    """Check a date format: ``"ISO"`` or a ``strftime`` format naming year, month and day.

    Parameters
    ----------
    value : str
        ``"ISO"`` (any case; also ``"ISO8601"``) or a format such as ``"%d/%m/%Y"``.

    Returns
    -------
    str
        :data:`ISO` or ``value``.

    Raises
    ------
    ValueError
        A format that cannot write a date and read it back (``"%d/%m"``: no year;
        ``"dd/mm/yyyy"``: no ``%`` directive); the message starts with ``must``.
    """
    text = str(value).strip()
    if text.upper().replace(" ", "").replace("-", "") in ("ISO", "ISO8601"):
        return ISO
    sample = datetime(2001, 2, 3, 4, 5, 6)
    try:
        back = datetime.strptime(sample.strftime(text), text)
    except ValueError:
        back = None
    if "%" not in text or back is None or back.date() != sample.date():
        raise ValueError(
            "must be ISO or a strftime format naming the year, month and day, e.g. %d/%m/%Y "
            f"(day first) or %m/%d/%Y (month first); got {value!r}"
        )
    return text


def parse_iso_date(value: str) -> pd.Timestamp | None:
    """One date written year first (``YYYY-MM-DD``, optionally with a time), or ``None``.

    Parameters
    ----------
    value : str
        The text, e.g. ``"2020-01-02"``.

    Returns
    -------
    pandas.Timestamp or None
        The date; ``None`` when ``value`` is not such a date (``02/03/2018``, ``2020-13-45``).
    """
    import pandas as pd  # on first use: the module stays light for the option checks

    text = str(value).strip()
    if not ISO_DATE.fullmatch(text):
        return None
    out = pd.to_datetime(text, format="ISO8601", errors="coerce")
    return None if pd.isna(out) else pd.Timestamp(out)
