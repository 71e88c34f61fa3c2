"""Errors raised when input data does not satisfy a data contract.

A :class:`ContractError` names the file (or label) that was checked, the contract kind and every
problem found, each as a :class:`Problem` with the column, a short check name, how many rows
fail, up to five example row numbers (1-based data rows, header not counted) and up to five
example values. ``str(err)`` is a readable multi-line message::

    data/bars.csv: does not satisfy the 'bars' contract (2 problems)
      - column 'close': negative price in 3 rows (rows 4, 9, 17; values -1.0, -3.2, -0.5)
      - columns 'date', 'symbol': duplicate key in 2 rows (rows 5, 6; values ...)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from research.exceptions import ResearchError

__all__ = ["MAX_EXAMPLES", "ContractError", "Problem", "short_value"]

#: How many example rows / values a :class:`Problem` keeps.
MAX_EXAMPLES = 5
_MAX_VALUE_CHARS = 40


@dataclass(frozen=True)
class Problem:
    """One way in which a file or frame breaks its contract.

    Parameters
    ----------
    column : str or None
        The offending column; several columns are joined with ``", "`` (for example
        ``"date, symbol"`` for a duplicate key). ``None`` for file-level problems (empty file,
        unreadable file, unknown extension, ...).
    check : str
        Short name of the failed rule, e.g. ``"missing column"``, ``"wrong type"``,
        ``"null in key"``, ``"duplicate key"``, ``"unsorted dates"``, ``"negative price"``,
        ``"high < low"``, ``"open outside high-low"``, ``"close outside high-low"``,
        ``"implausible price"``, ``"date format"`` (dates not in the column's one format),
        ``"timezone-aware dates"``, ``"out of range"``, ``"empty file"``,
        ``"unknown extension"``, ``"unreadable file"``.
    n_rows : int
        Number of failing rows (0 for file- and column-level problems).
    rows : tuple of int
        Up to five failing data-row numbers, 1-based, header not counted.
    examples : tuple of str
        Up to five offending values as short strings (aligned with ``rows`` when both are given).
    detail : str
        Optional explanation of the rule, e.g. ``"iv must be annualised, e.g. 0.185 for VIX 18.5"``.
    """

    column: str | None
    check: str
    n_rows: int = 0
    rows: tuple[int, ...] = ()
    examples: tuple[str, ...] = ()
    detail: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """The offending columns as a tuple (empty for file-level problems)."""
        if self.column is None:
            return ()
        return tuple(self.column.split(", "))

    def describe(self) -> str:
        """One line (without the leading bullet) describing the problem.

        Returns
        -------
        str
            For example ``"column 'close': negative price in 3 rows (rows 4, 9, 17; values
            -1.0, -3.2, -0.5)"``.
        """
        cols = self.columns
        if not cols:
            where = ""
        elif len(cols) == 1:
            where = f"column '{cols[0]}': "
        else:
            where = "columns " + ", ".join(f"'{c}'" for c in cols) + ": "
        text = f"{where}{self.check}"
        if self.n_rows:
            text += f" in {self.n_rows} row{'s' if self.n_rows != 1 else ''}"
            parts: list[str] = []
            if self.rows:
                label = "rows" if len(self.rows) > 1 else "row"
                if self.n_rows > len(self.rows):
                    label = "first " + label
                parts.append(f"{label} {', '.join(str(r) for r in self.rows)}")
            if self.examples:
                label = "values" if len(self.examples) > 1 else "value"
                parts.append(f"{label} {', '.join(self.examples)}")
            if parts:
                text += f" ({'; '.join(parts)})"
        elif self.examples:
            text += f" ({', '.join(self.examples)})"
        if self.detail:
            text += f": {self.detail}"
        return text


def short_value(value: Any) -> str:
    """Format one value for an error message, truncated to a few dozen characters.

    Parameters
    ----------
    value : Any
        The value to show.

    Returns
    -------
    str
        ``str(value)``, cut to 40 characters with a trailing ``...`` when longer.
    """
    text = str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


class ContractError(ResearchError, ValueError):
    """Bad input: names the file, the contract kind, and each problem.

    Parameters
    ----------
    source : str
        The file path, or ``"<dataframe>"`` / a caller-given label.
    kind : str
        The contract name, e.g. ``"bars"``; empty when only reading the file failed.
    problems : iterable of Problem
        Everything that is wrong (at least one).

    Attributes
    ----------
    source : str
    kind : str
    problems : tuple of Problem
    """

    source: str
    kind: str
    problems: tuple[Problem, ...]

    def __init__(self, source: str, kind: str, problems: Iterable[Problem]) -> None:
        self.source = str(source)
        self.kind = kind
        self.problems = tuple(problems)
        super().__init__(self._message())

    def __reduce__(self) -> tuple[Any, ...]:
        """Support pickling (for multiprocessing / dask executors)."""
        return (type(self), (self.source, self.kind, self.problems))

    def __str__(self) -> str:
        return self._message()

    def _message(self) -> str:
        n = len(self.problems)
        count = f"{n} problem{'s' if n != 1 else ''}"
        file_level = all(p.column is None for p in self.problems)
        if not self.kind:
            head = f"{self.source}: cannot be read as a table ({count})"
        elif file_level:
            head = f"{self.source}: cannot load '{self.kind}' data ({count})"
        else:
            head = f"{self.source}: does not satisfy the '{self.kind}' contract ({count})"
        return "\n".join([head, *(f"  - {p.describe()}" for p in self.problems)])

    def with_kind(self, kind: str) -> ContractError:
        """Return the same error relabelled with a contract kind.

        Parameters
        ----------
        kind : str
            The contract the caller was loading.

        Returns
        -------
        ContractError
            A new error with the same source and problems.
        """
        return ContractError(self.source, kind, self.problems)

    def find(self, check: str, column: str | None = None) -> list[Problem]:
        """Problems with the given check name (and column, if given).

        Parameters
        ----------
        check : str
            Short check name, e.g. ``"duplicate key"``.
        column : str, optional
            Restrict to problems on this column (exact ``Problem.column`` match).

        Returns
        -------
        list of Problem
            Matching problems, possibly empty.
        """
        return [
            p for p in self.problems if p.check == check and (column is None or p.column == column)
        ]
