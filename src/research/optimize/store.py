"""The embedded results database (DuckDB, default ``data/lab.duckdb``).

Tables, written in one transaction per grid run (a failed write leaves nothing behind):

- ``grid_runs``: ``run_id, grid, created_at, n_rows, note``;
- ``grid_results``: ``run_id`` + the grid's long table (``row_id, grid, variant, tickers,
  window_start, window_end``, metrics, ``param_*``);
- ``grid_returns``: ``run_id, row_id, date, ret`` (daily simple returns of every row).

Query with SQL (``ResultStore.query``) or the ``duckdb`` CLI; results come back as DataFrames.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from research.config import PATHS
from research.optimize.grids import GridResult


class ResultStore:
    """A DuckDB file holding grid results.

    Parameters
    ----------
    path
        Database file (default ``data/lab.duckdb``); ``":memory:"`` for a throwaway store.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        import duckdb

        self.path = str(path) if path is not None else str(PATHS.database)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(self.path)

    def close(self) -> None:
        self.con.close()

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
        """Store a grid run; returns its ``run_id``."""
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
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return run_id

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
