"""Write tables atomically (``research._io.atomic_write``: temp file in the same folder, the
user's umask, then rename): nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research._io import atomic_write
from research.exceptions import InputError

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


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` in the format its extension names.

    Parameters
    ----------
    df
        The table; dates are written as ISO dates (``YYYY-MM-DD``) in text formats.
    path
        ``.csv``, ``.csv.gz``, ``.parquet``/``.pq``, ``.json`` (array of records) or
        ``.jsonl``/``.ndjson``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    ext = table_format(path)
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
