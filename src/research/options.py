"""Checks of command-line options before any work: numbers, dates, date formats and paths.

A command declares each numeric option's range once, as a :class:`Range`, shows it in the
option's help (``str(range)``) and checks the value with :func:`check_number` before it reads a
file. A bad value is an :class:`~research.exceptions.InputError` (a ``ValueError``) whose message
is one line naming the option, the range and the value::

    --profit-target must be a finite number in (0, 100], got nan
    --spa-reps must be a whole number in [50, 100000], got -5

``nan``, ``inf`` and ``-inf`` are never accepted: click parses them as floats, and a comparison
with NaN is always false, so a check written as ``value <= 0 or value > 100`` lets NaN through.

:func:`check_before_work` runs every check a command needs — numbers, ``--start``/``--end``,
``--date-format``, input files (taken from the current folder, and existing) and outputs (never
one of the inputs, nor each other) — in that order, and raises on the first problem.

The module imports nothing heavy, so a command's option ranges can be built at import time.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from research import dates
from research.exceptions import InputError, OutputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Range",
    "check_before_work",
    "check_date",
    "check_date_format",
    "check_dates",
    "check_inputs",
    "check_number",
    "check_numbers",
    "check_outputs",
]

PathOption = tuple[str, "str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None"]
"""``(option, value)``: one path, several (a repeatable option) or ``None`` (not given)."""


@dataclass(frozen=True)
class Range:
    """The accepted values of a numeric option.

    Parameters
    ----------
    low, high
        Bounds; ``None`` for none. Every accepted value is finite in any case.
    low_open, high_open
        Whether the bound itself is excluded.
    integer
        Only whole numbers.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __str__(self) -> str:
        """The bounds as text: ``in (0, 100]``, ``>= 200``, ``> 0`` or ``""`` without bounds."""
        lo, hi = _text(self.low), _text(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {lo}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {hi}"
        return ""

    def describe(self) -> str:
        """What a value must be: ``a finite number in (0, 100]``, ``a whole number >= 200``."""
        kind = "a whole number" if self.integer else "a finite number"
        bounds = str(self)
        return f"{kind} {bounds}" if bounds else kind

    def contains(self, value: float) -> bool:
        """Whether a finite value lies within the bounds.

        Parameters
        ----------
        value
            A finite number.

        Returns
        -------
        bool
            True when ``value`` is inside the range (whole-number ranges are checked by
            :func:`check_number`).
        """
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )


def _text(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


def check_number(value: object, option: str, accepted: Range) -> float | int | None:
    """Check one numeric option before any work.

    Parameters
    ----------
    value
        The parsed value (``None``: the option was not given, accepted as is).
    option
        The option's name as the user typed it, e.g. ``"--profit-target"``.
    accepted
        The accepted values.

    Returns
    -------
    float, int or None
        ``value`` (an ``int`` for whole-number ranges).

    Raises
    ------
    research.exceptions.InputError
        ``value`` is not a number, not finite, not whole where it must be, or out of range; the
        message names the option, the range and the value.
    """
    if value is None:
        return None
    bad = InputError(f"{option} must be {accepted.describe()}, got {_shown(value)}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise bad
    number = float(value)
    if not math.isfinite(number) or not accepted.contains(number):
        raise bad
    if accepted.integer:
        if not number.is_integer():
            raise bad
        return int(number)
    return value  # type: ignore[return-value]


def check_numbers(values: Iterable[tuple[str, object, Range]]) -> None:
    """:func:`check_number` on ``(option, value, range)`` triples, in order; the first bad one
    raises.

    Parameters
    ----------
    values
        The options to check.

    Raises
    ------
    research.exceptions.InputError
        For the first value outside its range.
    """
    for option, value, accepted in values:
        check_number(value, option, accepted)


def _shown(value: object) -> str:
    if isinstance(value, float):
        return str(value)  # nan, inf, -inf, 1e+308
    return repr(value) if isinstance(value, str) else str(value)


def check_date(value: str | None, option: str) -> pd.Timestamp | None:
    """Check a date option (``--start``, ``--end``): a date written YYYY-MM-DD.

    Parameters
    ----------
    value
        The option's text, or ``None`` when not given.
    option
        The option's name, e.g. ``"--start"``.

    Returns
    -------
    pandas.Timestamp or None
        The date.

    Raises
    ------
    research.exceptions.InputError
        Not a YYYY-MM-DD date.
    """
    if value is None:
        return None
    parsed = dates.parse_iso_date(value)
    if parsed is None:
        raise InputError(f"{option} must be a date written YYYY-MM-DD, got {value!r}")
    return parsed


def check_dates(
    start: str | None, end: str | None, *, options: tuple[str, str] = ("--start", "--end")
) -> None:
    """Check a ``--start``/``--end`` pair: each a YYYY-MM-DD date, start not after end.

    Parameters
    ----------
    start, end
        The options' texts (``None``: not given).
    options
        Their names, for the messages.

    Raises
    ------
    research.exceptions.InputError
        A date that is not YYYY-MM-DD, or start after end.
    """
    first, last = check_date(start, options[0]), check_date(end, options[1])
    if first is not None and last is not None and first > last:
        raise InputError(f"{options[0]} {start} is after {options[1]} {end}")


def check_date_format(value: str | None, option: str = "--date-format") -> str | None:
    """Check a date format option: ``ISO`` or a ``strftime`` format naming year, month and day.

    Parameters
    ----------
    value
        The format (``None``: not given).
    option
        The option's name, for the message.

    Returns
    -------
    str or None
        The format (``"ISO"`` for ISO in any case).

    Raises
    ------
    research.exceptions.InputError
        A format that cannot write and read back a date (e.g. ``%d/%m``: no year).
    """
    if value is None:
        return None
    try:
        return dates.check_date_format(value)
    except ValueError as exc:
        raise InputError(f"{option} {exc}") from None


def check_inputs(inputs: Iterable[PathOption]) -> list[Path]:
    """Check that every input file a command was given exists, taken from the current folder.

    Parameters
    ----------
    inputs
        ``(option, value)`` pairs; a value may be one path, a list (a repeatable option) or
        ``None`` (not given, skipped).

    Returns
    -------
    list of pathlib.Path
        Every given path, as given, in order (for :func:`check_outputs`).

    Raises
    ------
    research.exceptions.InputError
        A path that does not exist; the message names the option, the path as given and the
        full path looked for (``research.config.input_path``).
    """
    from research.config import input_path

    found: list[Path] = []
    for option, value in inputs:
        if value is None:
            continue
        values = [value] if isinstance(value, str | os.PathLike) else list(value)
        found.extend(input_path(os.fspath(v), option) for v in values)
    return found


def check_outputs(
    outputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Check a command's outputs before any work: none is one of its inputs, a folder, under a
    file, or the same file as another output.

    Parameters
    ----------
    outputs
        ``(option, path)`` pairs; ``None`` paths (not given) are skipped.
    inputs
        The command's input files.

    Raises
    ------
    research.exceptions.OutputError
        Naming the option and the path (``research._io.check_output``).
    """
    from research._io import check_output, same_file

    given = list(inputs)
    seen: list[tuple[str, str | os.PathLike[str]]] = []
    for option, path in outputs:
        if path is None:
            continue
        check_output(path, inputs=given, option=option)
        for other_option, other in seen:
            if same_file(path, other):
                raise OutputError(
                    f"{option} {path} is also {other_option}; name two different files"
                )
        seen.append((option, path))


def check_before_work(
    *,
    numbers: Iterable[tuple[str, object, Range]] = (),
    dates: Sequence[tuple[str, str | None]] = (),
    date_format: str | None = None,
    inputs: Iterable[PathOption] = (),
    outputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
) -> str | None:
    """Every check a command runs before it reads a file, in order; the first problem raises.

    Parameters
    ----------
    numbers
        ``(option, value, range)`` triples (:func:`check_numbers`).
    dates
        ``(option, text)`` pairs of date options; two of them (``--start``, ``--end``) must
        also be in order (:func:`check_dates`).
    date_format
        The ``--date-format`` value, if any (:func:`check_date_format`).
    inputs
        Input files (:func:`check_inputs`).
    outputs
        Output files (:func:`check_outputs`, against the inputs).

    Returns
    -------
    str or None
        The checked date format (``"ISO"`` for any spelling of ISO), or ``None``.

    Raises
    ------
    research.exceptions.InputError
        A bad number, date, date format or a missing input.
    research.exceptions.OutputError
        An output that must not be written.
    """
    check_numbers(numbers)
    if len(dates) == 2:
        (first, start), (last, end) = dates
        check_dates(start, end, options=(first, last))
    else:
        for option, text in dates:
            check_date(text, option)
    checked = check_date_format(date_format)
    given = check_inputs(inputs)
    check_outputs(outputs, given)
    return checked
