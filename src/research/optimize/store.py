"""The embedded results database (DuckDB, default ``data/lab.duckdb``).

Tables, written in one transaction per grid run (a failed write leaves nothing behind):

- ``grid_runs``: ``run_id, grid, created_at, n_rows, note``;
- ``grid_results``: ``run_id`` + the grid's long table (``row_id, grid, variant, tickers,
  window_start, window_end``, metrics, ``param_*``);
- ``grid_returns``: ``run_id, row_id, date, ret`` (daily simple returns of every row).

Query with SQL (``ResultStore.query``) or the ``duckdb`` CLI; results come back as DataFrames.

The filesystem's refusals are one line naming the file (``research.exceptions.OutputError``): a
path that is a folder or lies under a file, a read-only folder, a full disk. A failed ``COMMIT``
reports its own error (not the ``ROLLBACK`` that follows it, which has no transaction left), and a
store file this object created is removed again when nothing could be saved in it.
``check_store`` runs the checks a command makes before any work.
"""

from __future__ import annotations

import errno
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from research._io import os_error_text
from research.config import PATHS
from research.exceptions import OutputError
from research.optimize.grids import GridResult

__all__ = ["ResultStore", "TrialCount", "check_store", "count_trials"]

_ERRNO_WORDS = (
    ("no space left on device", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("operation not permitted", errno.EPERM),
    ("not a directory", errno.ENOTDIR),
    ("is a directory", errno.EISDIR),
)


def _duckdb_error_text(exc: BaseException, path: str | Path, doing: str = "write") -> str:
    """One line for a DuckDB failure on ``path``: the filesystem's reason when the message
    carries one (``os_error_text``'s wording), else DuckDB's own message."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    low = message.lower()
    for words, code in _ERRNO_WORDS:
        if words in low:
            text = os_error_text(OSError(code, words), path)
            return text if doing == "write" else text.replace("cannot write", f"cannot {doing}")
    return f"cannot {doing} {path}: {message}"


def _is_io(exc: BaseException) -> bool:
    import duckdb

    if isinstance(exc, duckdb.IOException):
        return True
    low = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(w in low for w, _ in _ERRNO_WORDS)


def check_store(path: str | Path | None, *, writable: bool = True) -> Path:
    """The checks a command makes on its results store before any work.

    Parameters
    ----------
    path
        The store file (default ``data/lab.duckdb``).
    writable
        Also make sure its folder can be written (a temporary file is made there and removed
        at once): a new store is created there, and an existing one writes its log there.

    Returns
    -------
    pathlib.Path
        The store's path.

    Raises
    ------
    research.exceptions.OutputError
        ``path`` is a folder, lies under a file, or its folder cannot be written (one line
        naming it and why).
    """
    store = Path(path) if path is not None else PATHS.database
    if store.is_dir():
        raise OutputError(f"cannot write {store}: it is a folder; name a DuckDB file in it")
    folder = next((p for p in store.absolute().parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise OutputError(
            f"cannot write {store}: {folder} is a file, so no folder can be made there"
        )
    if writable and folder is not None:
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise OutputError(os_error_text(exc, store)) from exc
    return store


def _remove_store(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


class ResultStore:
    """A DuckDB file holding grid results.

    Parameters
    ----------
    path
        Database file (default ``data/lab.duckdb``); ``":memory:"`` for a throwaway store.

    Raises
    ------
    research.exceptions.OutputError
        The file cannot be opened or created: a folder, under a file, a read-only folder, a
        full disk, not a DuckDB file (one line naming it and why). ``save_grid`` raises it too
        when the filesystem refuses the write or the commit (the store is left as it was).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        import duckdb

        self.path = str(path) if path is not None else str(PATHS.database)
        self._created = False
        self._saved = False
        self._failed = False
        if self.path != ":memory:":
            file = Path(self.path)
            self._created = not file.exists()
            check_store(file, writable=self._created)
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(os_error_text(exc, file)) from exc
        try:
            self.con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            if self._created:
                _remove_store(Path(self.path))
            raise OutputError(_duckdb_error_text(exc, self.path, "open")) from exc

    def close(self) -> None:
        """Close the store; a store file this object created is removed when a save failed and
        none succeeded (nothing half-written is left behind).

        Raises
        ------
        research.exceptions.OutputError
            The final checkpoint could not be written (full disk, ...): one line naming the
            file; what was committed stays in its write-ahead log.
        """
        import duckdb

        try:
            self.con.close()
        except duckdb.Error as exc:
            raise OutputError(_duckdb_error_text(exc, self.path)) from exc
        finally:
            if self._created and self._failed and not self._saved:
                _remove_store(Path(self.path))

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _table_exists(self, name: str) -> bool:
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()
        return bool(found and found[0])

    def _append(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register("_incoming", frame)
        try:
            if not self._table_exists(name):
                self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM _incoming")
            else:
                self.con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _incoming")
        finally:
            self.con.unregister("_incoming")

    def save_grid(self, result: GridResult, *, run_id: str | None = None, note: str = "") -> str:
        """Store a grid run in one transaction.

        Parameters
        ----------
        result
            The grid run.
        run_id
            Its id (default: a new random one).
        note
            Free text stored with it.

        Returns
        -------
        str
            The ``run_id``.

        Raises
        ------
        research.exceptions.OutputError
            The filesystem refused a write or the commit (full disk, read-only folder): one line
            naming the file and the commit's own error; nothing of this run is stored.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        table = result.table.copy()
        table.insert(0, "run_id", run_id)
        for col in table.columns:  # mixed object columns (e.g. multipliers text) as text
            if table[col].dtype == object:
                table[col] = table[col].astype(str)
        returns = (
            result.returns.rename_axis("date")
            .reset_index()
            .melt(id_vars="date", var_name="row_id", value_name="ret")
        )
        returns = returns.dropna(subset=["ret"])  # rows outside a row's window
        returns.insert(0, "run_id", run_id)
        returns["row_id"] = returns["row_id"].astype("int64")
        runs = pd.DataFrame(
            {
                "run_id": [run_id],
                "grid": [result.grid],
                "created_at": [pd.Timestamp.now()],
                "n_rows": [len(table)],
                "note": [note],
            }
        )
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._append("grid_runs", runs)
            self._append("grid_results", table)
            self._append("grid_returns", returns)
            self.con.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            self._failed = True
            if _is_io(exc):
                raise OutputError(
                    f"{_duckdb_error_text(exc, self.path)}; grid run not stored, the store is "
                    "as it was"
                ) from exc
            raise
        self._saved = True
        return run_id

    def _rollback(self) -> None:
        """Roll back, quietly: after a failed COMMIT there is no transaction left, and the
        error to report is the commit's (e.g. a full disk), not "cannot rollback"."""
        import duckdb

        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def runs(self) -> pd.DataFrame:
        """Every stored run, newest first."""
        if not self._table_exists("grid_runs"):
            return pd.DataFrame(columns=["run_id", "grid", "created_at", "n_rows", "note"])
        return self.query("SELECT * FROM grid_runs ORDER BY created_at DESC")

    def load_grid(self, run_id: str) -> GridResult:
        """A stored run back as a ``GridResult``."""
        run = self.query("SELECT grid FROM grid_runs WHERE run_id = ?", [run_id])
        if run.empty:
            raise KeyError(f"no grid run {run_id!r} in {self.path}")
        table = self.query(
            "SELECT * EXCLUDE (run_id) FROM grid_results WHERE run_id = ? ORDER BY row_id",
            [run_id],
        )
        long = self.query("SELECT row_id, date, ret FROM grid_returns WHERE run_id = ?", [run_id])
        returns = long.pivot(index="date", columns="row_id", values="ret").sort_index()
        returns.index = pd.DatetimeIndex(returns.index)
        returns.columns = [int(c) for c in returns.columns]
        return GridResult(str(run["grid"].iloc[0]), table, returns.rename_axis(None))


@dataclass(frozen=True)
class TrialCount:
    """How many configurations were evaluated on a study's data (for the deflated Sharpe)."""

    n: int
    grid: int
    stored: int
    """Distinct further configurations in the results store for the same tickers and period."""
    source: str

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "grid": self.grid, "stored": self.stored, "source": self.source}


def count_trials(table: pd.DataFrame, tickers: str, store_path: str | Path | None) -> TrialCount:
    """Distinct configurations of ``table`` (the grid's rows for ``tickers``) plus those stored
    in ``store_path`` for the same tickers and window (read-only; a missing store counts 0)."""
    rows = table.loc[table["tickers"] == tickers]
    params = [c for c in rows.columns if c.startswith("param_")]
    mine = rows[params].astype(str).drop_duplicates()
    start, end = rows["window_start"].min(), rows["window_end"].max()
    stored = pd.DataFrame(columns=params)
    source = "this grid only (no results store)"
    if store_path is not None and Path(store_path).exists():
        import duckdb

        try:
            con = duckdb.connect(str(store_path), read_only=True)
            try:
                cols = {
                    r[0]
                    for r in con.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = 'grid_results'"
                    ).fetchall()
                }
                common = [p for p in params if p in cols]
                if common:
                    stored = (
                        con.execute(
                            f"SELECT DISTINCT {', '.join(common)} FROM grid_results "
                            "WHERE tickers = ? AND CAST(window_start AS DATE) = ? "
                            "AND CAST(window_end AS DATE) = ?",
                            [tickers, pd.Timestamp(start).date(), pd.Timestamp(end).date()],
                        )
                        .df()
                        .astype(str)
                    )
                source = f"this grid + {store_path}"
            finally:
                con.close()
        except duckdb.Error as exc:
            source = f"this grid only ({store_path} unreadable: {exc})"
    both = pd.concat([mine, stored.reindex(columns=params)]).drop_duplicates()
    return TrialCount(len(both), len(mine), len(both) - len(mine), source)
