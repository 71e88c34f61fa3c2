"""Write tables atomically (temp file in the same folder, then rename): nothing half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

WRITABLE = (".csv", ".csv.gz", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")


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
    name = path.name.lower()
    ext = next((e for e in sorted(WRITABLE, key=len, reverse=True) if name.endswith(e)), None)
    if ext is None:
        raise ValueError(f"{path}: cannot write this extension; use one of {', '.join(WRITABLE)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        text = df.copy()
        for col in text.columns:
            if pd.api.types.is_datetime64_any_dtype(text[col]):
                text[col] = text[col].dt.strftime("%Y-%m-%d")
        if ext in (".csv", ".csv.gz"):
            text.to_csv(tmp, index=False, compression="gzip" if ext == ".csv.gz" else None)
        elif ext in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        elif ext == ".json":
            text.to_json(tmp, orient="records", indent=1, force_ascii=False)
        else:
            text.to_json(tmp, orient="records", lines=True, force_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
