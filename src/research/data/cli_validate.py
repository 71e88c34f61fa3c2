"""Body of ``research data validate KIND PATH [--table NAME] [--date-format FORMAT]``.

The command reads a file, checks it against a data contract and reports either a one-line
summary or the full :class:`~research.data.errors.ContractError` message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from research.data.contracts import CONTRACTS
from research.data.errors import ContractError
from research.data.loaders import load
from research.exceptions import InputError
from research.options import check_date_format

__all__ = ["summary", "validate_command"]


def summary(kind: str, path: Path | str, df: pd.DataFrame) -> str:
    """One-line description of a validated frame.

    Parameters
    ----------
    kind : str
        Contract name.
    path : Path or str
        The file that was validated.
    df : pandas.DataFrame
        The validated frame.

    Returns
    -------
    str
        ``"OK: PATH satisfies the 'KIND' contract (N rows, FIRST..LAST)"``; the date range is
        that of the contract's first date column and is left out when there is none.
    """
    n = len(df)
    parts = [f"{n} row{'s' if n != 1 else ''}"]
    date_cols = [f.name for f in CONTRACTS[kind].fields if f.type == "date" and f.name in df]
    if date_cols:
        dates = df[date_cols[0]].dropna()
        if not dates.empty:
            parts.append(f"{dates.min():%Y-%m-%d}..{dates.max():%Y-%m-%d}")
    return f"OK: {path} satisfies the '{kind}' contract ({', '.join(parts)})"


def validate_command(
    kind: str, path: Path, table: str | None, date_format: str | None = None
) -> int:
    """Validate one file against a contract and report on stdout / stderr.

    Parameters
    ----------
    kind : str
        Contract name, e.g. ``"bars"``.
    path : Path
        File to check (any format :func:`research.data.loaders.read_table` accepts); a
        relative path is taken from the current folder only.
    table : str or None
        Table name for SQLite / DuckDB files.
    date_format : str or None
        How the file writes its dates (``"ISO"``, the default, or e.g. ``"%d/%m/%Y"``).

    Returns
    -------
    int
        0 after printing ``OK: PATH satisfies the 'KIND' contract (N rows, FIRST..LAST)`` to
        stdout; 1 after printing the :class:`ContractError` message to stderr.
    """
    try:
        date_format = check_date_format(date_format)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        df = load(kind, path, table=table, date_format=date_format, project=False)
    except ContractError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(summary(kind, path, df))
    return 0
