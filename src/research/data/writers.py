"""Write tables atomically (``research._io.atomic_write``: temp file in the same folder, the
user's umask, then rename): nothing half-written, and never over a file the command did not
create — an existing file is replaced only when it holds the same columns (an earlier output
of the same kind); an empty file may be replaced too."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from research._io import atomic_write
from research.exceptions import InputError, OutputError

WRITABLE = (".csv", ".csv.gz", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")


def table_format(path: str | Path, option: str | None = None) -> str:
    """The table format ``path``'s extension names (one of ``WRITABLE``), checked before any
    work by commands that will ``write_table`` there.

    Raises
    ------
    research.exceptions.InputError
        Another extension (the message names ``option`` when given).
    """
    name = Path(path).name.lower()
    ext = next((e for e in sorted(WRITABLE, key=len, reverse=True) if name.endswith(e)), None)
    if ext is None:
        where = f"{option} {path}" if option else str(path)
        raise InputError(f"{where}: cannot write this extension; use one of {', '.join(WRITABLE)}")
    return ext


def _columns_of(path: Path, ext: str) -> list[str] | None:
    """The column names an existing table file holds (``None``: not a table it can read)."""
    try:
        if ext in (".csv", ".csv.gz"):
            return [str(c) for c in pd.read_csv(path, nrows=0).columns]
        if ext in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            if ext == ".json":
                rows = json.load(fh)
                first = rows[0] if isinstance(rows, list) and rows else None
            else:
                first = json.loads(next(line for line in fh if line.strip()))
        return [str(k) for k in first] if isinstance(first, dict) else None
    except (OSError, ValueError, StopIteration, UnicodeDecodeError, ImportError):
        return None
    except Exception:  # e.g. pyarrow's ArrowInvalid on a file that is not parquet
        return None


def check_replaceable(path: str | Path, columns: Sequence[str], option: str | None = None) -> None:
    """Refuse to replace an existing file that is not an earlier output of the same kind.

    Parameters
    ----------
    path
        The output about to be written.
    columns
        The columns the output will hold.
    option
        The option that named ``path``, for the message.

    Raises
    ------
    research.exceptions.OutputError
        ``path`` exists, is not empty, and holds other columns (or is no table at all).
    """
    target = Path(path)
    if not target.is_file() or target.stat().st_size == 0:
        return
    ext = table_format(target, option)
    found = _columns_of(target, ext)
    if found is not None and set(found) == {str(c) for c in columns}:
        return
    where = f"{option} {target}" if option else str(target)
    held = (
        f"its columns: {', '.join(found[:8])}{', ...' if len(found) > 8 else ''}"
        if found
        else "not a table this can read"
    )
    raise OutputError(
        f"{where} exists and is not an earlier output of this kind ({held}); it is kept: "
        "choose another file, or move it away"
    )


def write_table(df: pd.DataFrame, path: str | Path, *, replace: bool = False) -> Path:
    """Write ``df`` to ``path`` in the format its extension names.

    Parameters
    ----------
    df
        The table; dates are written as ISO dates (``YYYY-MM-DD``) in text formats.
    path
        ``.csv``, ``.csv.gz``, ``.parquet``/``.pq``, ``.json`` (array of records) or
        ``.jsonl``/``.ndjson``.
    replace
        The caller has checked that an existing ``path`` is its own (e.g. a decisions file it
        continues): replace it whatever its columns.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    research.exceptions.OutputError
        ``path`` exists with other columns (``check_replaceable``), or cannot be written.
    """
    path = Path(path)
    ext = table_format(path)
    if not replace:
        check_replaceable(path, [str(c) for c in df.columns])
    text = df.copy()
    for col in text.columns:
        if pd.api.types.is_datetime64_any_dtype(text[col]):
            text[col] = text[col].dt.strftime("%Y-%m-%d")

    def write(tmp: Path) -> None:
        if ext in (".csv", ".csv.gz"):
            text.to_csv(tmp, index=False, compression="gzip" if ext == ".csv.gz" else None)
        elif ext in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        elif ext == ".json":
            text.to_json(tmp, orient="records", indent=1, force_ascii=False)
        else:
            text.to_json(tmp, orient="records", lines=True, force_ascii=False)

    atomic_write(path, write)
    return path
