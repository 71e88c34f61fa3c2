"""Write the experiments' regime columns back into the user's SQLite experiments database.

The regime-configuration plan's migration, applied only where a column is missing::

    ALTER TABLE experiments ADD COLUMN dominant_regime TEXT;
    ALTER TABLE experiments ADD COLUMN avg_vix REAL;
    ALTER TABLE experiments ADD COLUMN avg_hmm_trend REAL;
    ALTER TABLE experiments ADD COLUMN avg_hmm_vol REAL;
    ALTER TABLE experiments ADD COLUMN regime_breakdown TEXT;  -- JSON: {regime: pct_time}

then one ``UPDATE`` per experiment whose values differ, all in one transaction: nothing but
nullable columns is added, no existing value of another column changes, and a second run
changes nothing. ``plan`` says what ``apply`` would do without touching the file.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["SEED_COLUMNS", "WritePlan", "apply", "plan"]

SEED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dominant_regime", "TEXT"),
    ("avg_vix", "REAL"),
    ("avg_hmm_trend", "REAL"),
    ("avg_hmm_vol", "REAL"),
    ("regime_breakdown", "TEXT"),
)


@dataclass(frozen=True)
class WritePlan:
    """What a write would do."""

    path: Path
    table: str
    add_columns: tuple[str, ...]
    updates: tuple[tuple[str, dict[str, object]], ...]
    """``(experiment_id, {column: new value})`` for rows whose values differ."""

    def describe(self) -> str:
        """The plan in words: the columns to add and the rows to change."""
        cols = ", ".join(self.add_columns) or "none (all present)"
        return (
            f"{self.path} table {self.table}: add columns {cols}; set the regime columns on "
            f"{len(self.updates)} experiments"
            + ("" if self.updates or self.add_columns else " — nothing to change")
        )


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) and isinstance(b, int | float):
        return math.isclose(a, float(b), rel_tol=0, abs_tol=0)
    return a == b


def _value(v: object) -> object:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def plan(path: str | Path, tagged: pd.DataFrame, *, table: str = "experiments") -> WritePlan:
    """Compare ``tagged`` (``tag_experiments`` output) with the database (read-only).

    Raises
    ------
    ValueError
        No such file, no such table, or no ``experiment_id`` column in it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such database file")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if table not in tables:
            raise ValueError(f"{path}: no table {table!r} (tables: {sorted(tables)})")
        have = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
        if "experiment_id" not in have:
            raise ValueError(f"{path}: table {table!r} has no experiment_id column ({have})")
        add = tuple(c for c, _ in SEED_COLUMNS if c not in have)
        present = [c for c, _ in SEED_COLUMNS if c in have]
        current: dict[str, dict[str, object]] = {}
        if present:
            sql = f'SELECT experiment_id, {", ".join(present)} FROM "{table}"'
            for row in con.execute(sql):
                current[str(row[0])] = dict(zip(present, row[1:], strict=True))
    finally:
        con.close()
    updates = []
    for _, r in tagged.iterrows():
        new = {c: _value(r[c]) for c, _ in SEED_COLUMNS}
        old = current.get(str(r["experiment_id"]), {})
        if add or any(not _same(new[c], old.get(c)) for c in new):
            updates.append((str(r["experiment_id"]), new))
    return WritePlan(path, table, add, tuple(updates))


def apply(write_plan: WritePlan) -> int:
    """Carry out ``write_plan`` in one transaction (all or nothing).

    Returns
    -------
    int
        Rows updated.
    """
    con = sqlite3.connect(write_plan.path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            types = dict(SEED_COLUMNS)
            for col in write_plan.add_columns:
                con.execute(f'ALTER TABLE "{write_plan.table}" ADD COLUMN {col} {types[col]}')
            cols = [c for c, _ in SEED_COLUMNS]
            sets = ", ".join(f"{c} = ?" for c in cols)
            sql = f'UPDATE "{write_plan.table}" SET {sets} WHERE experiment_id = ?'
            n = 0
            for eid, values in write_plan.updates:
                n += con.execute(sql, [*(values[c] for c in cols), eid]).rowcount
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return n
