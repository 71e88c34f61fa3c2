"""Write the experiments' regime columns back into the user's SQLite experiments database.

The regime-configuration plan's migration, applied only where a column is missing::

    ALTER TABLE experiments ADD COLUMN dominant_regime TEXT;
    ALTER TABLE experiments ADD COLUMN avg_vix REAL;
    ALTER TABLE experiments ADD COLUMN avg_hmm_trend REAL;
    ALTER TABLE experiments ADD COLUMN avg_hmm_vol REAL;
    ALTER TABLE experiments ADD COLUMN regime_breakdown TEXT;  -- JSON: {regime: pct_time}

then one ``UPDATE`` per experiment whose values differ, all in one transaction: nothing but
nullable columns is added, no existing value of another column changes, and a second run
changes nothing. ``plan`` says what ``apply`` would do without touching the file (it opens the
database read-only).

The user's data is sacred:

- **Only the lab's own columns.** A column the lab adds carries the mark ``CONSTRAINT
  research_lab NULL`` in its definition (``LAB_MARK``; SQLite keeps it in the table's ``CREATE``
  text, and ``NULL`` is the constraint a nullable column has anyway). A column of the same name
  that does not carry it — the user's own ``avg_vix``, of any type — is never written into:
  ``plan`` refuses, naming the column, and the user renames it or passes a column prefix
  (``prefix="lab_"`` writes ``lab_avg_vix`` …).
- **Only what this run computed.** ``columns`` names the columns the run computed
  (``avg_hmm_*`` are left out without the Markov model); a column with no value at all in this
  run is left out too, and a value this run could not compute (null) never replaces one written
  earlier: it is kept, and counted.
- **Ids by value.** The ids are read as stored (an integer ``1`` in an untyped column, a
  ``REAL`` ``1.0``, a text ``"EXP-1"``), matched to the analysis' ids the way the loader turned
  them into text, and every ``UPDATE`` uses the stored value: an id that matches no row is an
  error, never "success, 0 rows".
- **All or nothing.** Every failure is a one-line ``DatabaseError`` naming the file and table,
  and the transaction is rolled back (the ``ALTER``\\ s too).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.attribution.tunes_db import DatabaseError
from research.exceptions import InputError

__all__ = [
    "HMM_COLUMNS",
    "LAB_MARK",
    "SEED_COLUMNS",
    "DatabaseError",
    "WritePlan",
    "apply",
    "check_prefix",
    "plan",
]

SEED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dominant_regime", "TEXT"),
    ("avg_vix", "REAL"),
    ("avg_hmm_trend", "REAL"),
    ("avg_hmm_vol", "REAL"),
    ("regime_breakdown", "TEXT"),
)
"""The lab's columns and their declared types, in the order they are added."""

HMM_COLUMNS: tuple[str, ...] = ("avg_hmm_trend", "avg_hmm_vol")
"""The columns only a run with the Markov model computes."""

LAB_MARK = "CONSTRAINT research_lab NULL"
"""What the definition of every column the lab adds ends with (its origin, in the schema)."""

_NAMES = tuple(c for c, _ in SEED_COLUMNS)
_TYPES = dict(SEED_COLUMNS)
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class WritePlan:
    """What a write would do."""

    path: Path
    table: str
    add_columns: tuple[str, ...]
    """Columns to add, as named in the table (with the prefix)."""
    updates: tuple[tuple[object, dict[str, object]], ...]
    """``(experiment_id as stored, {column: new value})`` for rows with values to change (only
    the columns whose value changes)."""
    columns: tuple[str, ...] = _NAMES
    """The lab columns this run writes (without the prefix)."""
    prefix: str = ""
    kept: int = 0
    """Values written earlier and kept because this run computed none there."""

    @property
    def skipped(self) -> tuple[str, ...]:
        """The lab columns this run did not compute (left as they are)."""
        return tuple(self.prefix + c for c in _NAMES if c not in self.columns)

    def describe(self) -> str:
        """The plan in words: the columns to add, the rows to change, what is left alone."""
        cols = ", ".join(self.add_columns) or "none (all present)"
        written = ", ".join(self.prefix + c for c in self.columns) or "no column"
        text = (
            f"{self.path} table {self.table}: add columns {cols}; set {written} on "
            f"{len(self.updates)} experiments"
        )
        if self.skipped:
            text += f"; {', '.join(self.skipped)} not computed in this run: left as they are"
        if self.kept:
            text += f"; {self.kept} earlier values kept where this run computed none"
        if not self.updates and not self.add_columns:
            text += " — nothing to change"
        return text


def check_prefix(prefix: str) -> str:
    """``prefix`` when it can start a column name (letters, digits, ``_``; not a digit first).

    Raises
    ------
    research.exceptions.InputError
        Otherwise, naming ``--column-prefix``.
    """
    if prefix and not _PREFIX.match(prefix):
        raise InputError(
            f"--column-prefix must be letters, digits and _ (not starting with a digit), "
            f"got {prefix!r}"
        )
    return prefix


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) and isinstance(b, int | float):
        return a == float(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _value(v: object) -> object:
    if v is None or isinstance(v, list | dict | tuple):
        return v
    try:
        if pd.isna(v):  # type: ignore[call-overload]
            return None
    except (TypeError, ValueError):
        pass
    return v.item() if hasattr(v, "item") else v


def _id_keys(values: Sequence[object]) -> list[str]:
    """The ids as the loader turns a database column into text (``data.contracts``: a float
    column of whole numbers as integers, then ``str``), so stored ids meet the analysis'."""
    s = pd.DataFrame.from_records([(v,) for v in values], columns=["id"], coerce_float=True)["id"]
    if pd.api.types.is_float_dtype(s.dtype):
        finite = s.dropna()
        if bool((finite == np.floor(finite)).all()):
            s = s.astype("Int64")
    return [str(v) for v in s.astype(object).where(s.notna(), None)]


def _lab_made(table_sql: str, name: str, declared: str) -> bool:
    """Whether the table's ``CREATE`` text defines ``name`` the way the lab adds a column."""
    q = re.escape(name)
    pattern = (
        rf'(?:^|[(,])\s*(?:"{q}"|`{q}`|\[{q}\]|{q})\s+{re.escape(declared)}\s+'
        r"CONSTRAINT\s+research_lab\s+NULL\b"
    )
    return re.search(pattern, table_sql or "", re.IGNORECASE) is not None


def _refuse_foreign(
    path: Path,
    table: str,
    table_sql: str,
    declared: dict[str, tuple[str, str]],
    names: dict[str, str],
    prefix: str,
) -> None:
    """Refuse columns the lab would write that exist but were not added by the lab."""
    problems, first = [], None
    for lab, name in names.items():
        found = declared.get(name.lower())
        if found is None:
            continue
        real, decl = found
        want = _TYPES[lab]
        if decl.strip().upper() != want:
            problems.append(f"{real} is declared {decl or 'without a type'}, the lab's is {want}")
        elif not _lab_made(table_sql, real, decl.strip()):
            problems.append(f"{real} ({decl}) was not added by the lab")
        else:
            continue
        first = first or real
    if problems:
        other = "lab_" if prefix != "lab_" else "regime_lab_"
        raise DatabaseError(
            f"{path}: table {table!r} already has a column the lab would write: "
            f"{'; '.join(problems)}. The lab never writes into a column of yours: rename it "
            f"(ALTER TABLE {_quote(table)} RENAME COLUMN {_quote(str(first))} TO "
            f'"my_{first}") or pass --column-prefix {other} to write the lab\'s columns as '
            f"{other}dominant_regime, {other}avg_vix, …; nothing was written"
        )


def plan(
    path: str | Path,
    tagged: pd.DataFrame,
    *,
    table: str = "experiments",
    columns: Iterable[str] | None = None,
    prefix: str = "",
) -> WritePlan:
    """Compare ``tagged`` (``tag_experiments`` output) with the database, opened read-only.

    Parameters
    ----------
    path
        The user's SQLite file.
    tagged
        The experiments with the lab's columns (``experiment_id`` as the loader gives it).
    table
        The experiments table in ``path``.
    columns
        The lab columns this run computed (default all of ``SEED_COLUMNS``; a CLI run without
        the Markov model leaves out ``HMM_COLUMNS``). A column with no value at all in
        ``tagged`` is left out too. Columns left out are neither added nor written.
    prefix
        Written before every lab column's name (``"lab_"``: ``lab_avg_vix`` …), for tables that
        have columns of these names of their own.

    Returns
    -------
    WritePlan

    Raises
    ------
    DatabaseError
        No such file, not a SQLite database, no such table, no ``experiment_id`` column, a
        column of a lab column's name that the lab did not add (another type or origin), or
        experiments of ``tagged`` that match no row by ``experiment_id``.
    research.exceptions.InputError
        An unknown column name or a prefix that cannot start a column name.
    """
    path = Path(path)
    prefix = check_prefix(prefix)
    wanted = _NAMES if columns is None else tuple(columns)
    unknown = [c for c in wanted if c not in _TYPES]
    if unknown:
        raise InputError(f"unknown lab column(s) {unknown}; the lab's are {list(_NAMES)}")
    computed = tuple(
        c
        for c in _NAMES
        if c in wanted and c in tagged.columns and any(_value(v) is not None for v in tagged[c])
    )
    names = {c: prefix + c for c in computed}
    if not path.is_file():
        raise DatabaseError(f"{path}: no such database file")
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            tables = dict(con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
            if table not in tables:
                raise DatabaseError(f"{path}: no table {table!r} (tables: {sorted(tables)})")
            info = con.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
            declared = {str(r[1]).lower(): (str(r[1]), str(r[2] or "")) for r in info}
            if "experiment_id" not in declared:
                have = [r[1] for r in info]
                raise DatabaseError(f"{path}: table {table!r} has no experiment_id column ({have})")
            _refuse_foreign(path, table, str(tables[table] or ""), declared, names, prefix)
            add = tuple(names[c] for c in computed if names[c].lower() not in declared)
            present = [names[c] for c in computed if names[c].lower() in declared]
            select = "".join(", " + _quote(declared[p.lower()][0]) for p in present)
            rows = con.execute(f'SELECT "experiment_id"{select} FROM {_quote(table)}').fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise DatabaseError(f"{path}: {_one_line(exc)}") from exc
    stored: dict[str, list[tuple[object, dict[str, object]]]] = {}
    for key, row in zip(_id_keys([r[0] for r in rows]), rows, strict=True):
        stored.setdefault(key, []).append((row[0], dict(zip(present, row[1:], strict=True))))
    ids = tagged["experiment_id"].astype(str)
    missing = [i for i in ids if i not in stored]
    if missing:
        raise DatabaseError(
            f"{path}: table {table!r}: {len(missing)} of {len(ids)} experiments match no row by "
            f"experiment_id (e.g. {missing[:3]}); nothing was written"
        )
    updates: list[tuple[object, dict[str, object]]] = []
    kept = 0
    values = {c: [_value(v) for v in tagged[c].tolist()] for c in computed}
    for i, key in enumerate(ids):
        for raw, old in stored[key]:
            changes: dict[str, object] = {}
            for c in computed:
                new, was = values[c][i], old.get(names[c])
                if new is None and was is not None:
                    kept += 1  # computed less this time: the earlier value stays
                elif not _same(new, was):
                    changes[names[c]] = new
            if changes:
                updates.append((raw, changes))
    return WritePlan(path, table, add, tuple(updates), computed, prefix, kept)


def apply(write_plan: WritePlan) -> int:
    """Carry out ``write_plan`` in one transaction (all or nothing).

    Returns
    -------
    int
        Rows updated.

    Raises
    ------
    DatabaseError
        The database is locked, read-only or full, a statement failed, or an experiment's row
        is gone (one line naming the file and table; rolled back, nothing was written).
    """
    p, table = write_plan.path, _quote(write_plan.table)
    try:
        con = sqlite3.connect(str(p), isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {p}: {_one_line(exc)}; nothing was written") from exc
    try:
        con.execute("BEGIN IMMEDIATE")
        n = 0
        for col in write_plan.add_columns:
            lab = col[len(write_plan.prefix) :]
            con.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(col)} {_TYPES[lab]} {LAB_MARK}")
        for eid, values in write_plan.updates:
            sets = ", ".join(f"{_quote(c)} = ?" for c in values)
            sql = f'UPDATE {table} SET {sets} WHERE "experiment_id" = ?'
            hit = con.execute(sql, [*values.values(), eid]).rowcount
            if hit < 1:
                raise DatabaseError(
                    f"{p}: table {write_plan.table!r}: no row has experiment_id {eid!r} any more "
                    "(the table changed since it was read); rolled back, nothing was written"
                )
            n += hit
        con.execute("COMMIT")
    except BaseException as exc:
        try:
            con.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left: the error to report is the one that got us here
        if isinstance(exc, sqlite3.Error | ValueError | TypeError | OverflowError):
            raise DatabaseError(
                f"{p}: table {write_plan.table!r}: {_one_line(exc)}; rolled back, nothing was "
                "written"
            ) from exc
        raise
    finally:
        con.close()
    return n
