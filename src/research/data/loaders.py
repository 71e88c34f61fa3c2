"""Read tables from CSV, Parquet, JSON/JSONL, SQLite and DuckDB files, and load them by contract.

=====================================  ===================================================
extension                              reader
=====================================  ===================================================
``.csv``, ``.csv.gz``                  :func:`pandas.read_csv` (compression inferred)
``.parquet``, ``.pq``                  :func:`pandas.read_parquet` (pyarrow)
``.json``                              a JSON array of records, :func:`pandas.read_json`
``.jsonl``, ``.ndjson``                one JSON record per line
``.sqlite``, ``.sqlite3``, ``.db``     the stdlib :mod:`sqlite3`, opened read-only
``.duckdb``                            :mod:`duckdb`, read-only connection
=====================================  ===================================================

For databases ``table`` names the table (or view; ``schema.table`` for DuckDB schemas other
than ``main``); without it the file must hold exactly one table. Every failure to read is a
:class:`~research.data.errors.ContractError` with a file-level
:class:`~research.data.errors.Problem` naming the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from research.data.contracts import contract_columns, validate
from research.data.errors import ContractError, Problem

__all__ = ["EXTENSIONS", "load", "read_table"]

#: Accepted file extensions (lower case) and the reader used for each.
EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
    ".duckdb": "duckdb",
}
_DATABASES = ("sqlite", "duckdb")


def _fail(path: Path | str, check: str, detail: str, *examples: str) -> ContractError:
    return ContractError(str(path), "", [Problem(None, check, examples=examples, detail=detail)])


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return EXTENSIONS[ext]
    suffix = "".join(path.suffixes[-2:]) or "(none)"
    raise _fail(
        path,
        "unknown extension",
        "accepted: " + ", ".join(EXTENSIONS),
        repr(suffix),
    )


def read_table(
    path: str | Path, *, table: str | None = None, project: bool | None = None
) -> pd.DataFrame:
    """Read a file into a DataFrame, choosing the reader by extension.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.csv.gz``, ``.parquet``/``.pq``, ``.json`` (array of records),
        ``.jsonl``/``.ndjson``, ``.sqlite``/``.sqlite3``/``.db`` or ``.duckdb`` file; a
        relative path is taken from the current folder (in the project's notebooks/ folder,
        where notebooks run, also from the project root: ``research.config.resolve_path``).
    table : str, optional
        Table (or view) to read from a database file. Default: the only table, if there is
        exactly one. Not allowed for other formats.
    project : bool, optional
        Where a relative path is looked up (``research.config.search_folders``): ``False``
        the current folder only (the commands), ``True`` also the project root and notebooks/,
        ``None`` (default) also the project root when the current folder is the project's
        notebooks/ folder.

    Returns
    -------
    pandas.DataFrame
        The raw rows with a ``RangeIndex``; column types as the reader inferred them (dates
        in text files stay strings — :func:`load` coerces them through the contract).

    Raises
    ------
    ContractError
        With one file-level problem: ``unknown extension``, ``unreadable file`` (missing path,
        directory, no permission, corrupt content, parse failure), ``empty file`` (0 bytes,
        header only, zero rows), ``unknown table`` or ``ambiguous table``.
    """
    from research.config import resolve_path, search_folders

    p = resolve_path(path, project=project)
    fmt = _format_of(p)
    if not p.exists():
        given = Path(path).expanduser()
        if given.is_absolute():
            raise _fail(p, "unreadable file", "no such file")
        looked = ", ".join(str(folder / given) for folder in search_folders(project=project))
        raise _fail(path, "unreadable file", f"no such file (looked for {looked})")
    if p.is_dir():
        raise _fail(p, "unreadable file", "is a directory, not a file")
    if table is not None and fmt not in _DATABASES:
        raise _fail(
            p,
            "unknown table",
            "table= applies only to .sqlite/.sqlite3/.db/.duckdb files",
            repr(table),
        )
    try:
        size = p.stat().st_size
        with p.open("rb"):
            pass
    except OSError as exc:
        raise _fail(p, "unreadable file", exc.strerror or str(exc)) from exc
    if size == 0:
        raise _fail(p, "empty file", "the file is 0 bytes")

    readers: dict[str, Callable[[Path, str | None], tuple[pd.DataFrame, str]]] = {
        "csv": _read_csv,
        "parquet": _read_parquet,
        "json": _read_json,
        "jsonl": _read_jsonl,
        "sqlite": _read_sqlite,
        "duckdb": _read_duckdb,
    }
    try:
        df, what = readers[fmt](p, table)
    except ContractError:
        raise
    except Exception as exc:  # any reader failure is an unreadable file
        raise _fail(p, "unreadable file", _reason(exc)) from exc
    if len(df) == 0:
        raise _fail(p, "empty file", f"{what} has no data rows")
    return df.reset_index(drop=True)


def load(
    kind: str,
    path: str | Path,
    *,
    table: str | None = None,
    date_format: str | None = None,
    project: bool | None = None,
) -> pd.DataFrame:
    """Read a file and validate it against a data contract.

    Parameters
    ----------
    kind : str
        Contract name (see :data:`research.data.contracts.CONTRACTS`).
    path : str or Path
        File to read (see :func:`read_table` for formats).
    table : str, optional
        Table name for database files.
    date_format : str, optional
        How the file writes its text dates, for every date column: ``"ISO"`` (YYYY-MM-DD, the
        default) or a ``strftime`` format such as ``"%d/%m/%Y"``; one format reads a whole
        column (:func:`research.data.contracts.validate`).
    project : bool, optional
        Where a relative path is looked up (:func:`read_table`).

    Returns
    -------
    pandas.DataFrame
        The validated frame (see :func:`research.data.contracts.validate`).

    Raises
    ------
    ContractError
        When the file cannot be read or does not satisfy the contract; names the file.
    """
    contract_columns(kind)  # unknown kind: fail before touching the file
    try:
        df = read_table(path, table=table, project=project)
    except ContractError as err:
        raise err.with_kind(kind) from None
    return validate(kind, df, source=str(path), date_format=date_format)


# --------------------------------------------------------------------------------------------
# Readers: (path, table) -> (frame, description of what was read for "empty" messages)
# --------------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _read_csv(path: Path, table: str | None) -> tuple[pd.DataFrame, str]:
    try:
        # only empty cells are missing here: "n/a", "NA" ... stay text, so the contract can
        # name them (and a ticker "NA" stays a ticker)
        df = pd.read_csv(
            path,
            compression="infer",
            skipinitialspace=True,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.EmptyDataError:
        raise _fail(path, "empty file", "no header and no rows") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[0]
        detail = detail.replace("Error tokenizing data. C error: ", "")
        raise _fail(path, "unreadable file", f"not valid CSV: {detail}") from None
    return df, "the file (header only)"


def _read_parquet(path: Path, table: str | None) -> tuple[pd.DataFrame, str]:
    return pd.read_parquet(path, engine="pyarrow"), "the file"


def _read_json(path: Path, table: str | None) -> tuple[pd.DataFrame, str]:
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if not head.startswith(b"["):
        raise _fail(path, "unreadable file", "expected a JSON array of records ([{...}, ...])")
    df = pd.read_json(path, orient="records", dtype=False)
    return df, "the JSON array"


def _read_jsonl(path: Path, table: str | None) -> tuple[pd.DataFrame, str]:
    df = pd.read_json(path, lines=True, orient="records", dtype=False)
    return df, "the file"


def _choose(path: Path, tables: list[str], table: str | None) -> str:
    if table is not None:
        if table not in tables:
            raise _fail(
                path,
                "unknown table",
                "tables in the file: " + (", ".join(tables) or "(none)"),
                repr(table),
            )
        return table
    if len(tables) == 1:
        return tables[0]
    if not tables:
        raise _fail(path, "empty file", "the database has no tables")
    raise _fail(
        path,
        "ambiguous table",
        f"{len(tables)} tables ({', '.join(tables)}); pass table= to choose one",
    )


def _quote(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _read_sqlite(path: Path, table: str | None) -> tuple[pd.DataFrame, str]:
    uri = path.resolve().as_uri() + "?mode=ro"
    con = sqlite3.connect(uri, uri=True)
    try:
        names = con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        chosen = _choose(path, [str(n[0]) for n in names], table)
        quoted = '"' + chosen.replace('"', '""') + '"'
        df = pd.read_sql_query(f"SELECT * FROM {quoted}", con)
    finally:
        con.close()
    return df, f"table {chosen!r}"


def _read_duckdb(path: Path, table: str | None) -> tuple[pd.DataFrame, str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() "
            "ORDER BY table_schema = 'main' DESC, table_schema, table_name"
        ).fetchall()
        names = [str(t) if str(s) == "main" else f"{s}.{t}" for s, t in rows]
        chosen = _choose(path, names, table)
        df = con.execute(f"SELECT * FROM {_quote(chosen)}").df()
    finally:
        con.close()
    return df, f"table {chosen!r}"
