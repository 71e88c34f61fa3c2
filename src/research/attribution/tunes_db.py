"""``backtest_tunes`` in a real database: the regime columns, population, the three queries.

Two targets:

- **PostgreSQL** (``postgresql://…``, psycopg 3): the user's database. ``MIGRATION_032`` runs
  exactly as the tune-attribution plan writes it (it references ``backtest_runs(id)``, so that table
  must exist); the queries run as written, ``$1`` parameters included (psycopg's ``RawCursor``).
- **DuckDB** (a file, default ``data/lab.duckdb``): the lab's embedded equivalent. When the file or
  the tables are missing they are created in the shape the tables had before the regime columns
  (``PRE_032_DUCKDB``). ``MIGRATION_032_DUCKDB`` is the same migration in DuckDB's dialect: JSON for
  JSONB, no foreign key (DuckDB cannot add one to an existing table), and plain indexes (DuckDB has
  no partial or ``DESC NULLS LAST`` indexes). The queries run as written.

``populate`` does everything in one transaction: migration, staging the attributed tunes,
inserting tunes (and their runs) the table does not have yet, and one ``UPDATE`` of the
regime columns on rows whose values differ. Only the migration's nullable columns are written on
existing rows, rows not in the input are untouched, and a second run changes nothing. With
``write=False`` (the dry run) the same statements run and are rolled back, so the report says
exactly what a write would do. The DuckDB dry run opens the file read-only and works on an
in-memory copy of the two tables (their schema, rows and indexes), so it needs no write access.

Hostile input fails fast, in one line naming the database, table or column, with nothing
written: a ``--db`` that looks like a URL but is not a ``postgresql://`` one (``postgres//…``,
``mysql://…``), a DuckDB path whose folder does not exist or that is a folder; a migration
column the table already has with another type; a PostgreSQL table locked by another session
(every statement runs under ``SET lock_timeout``, ``DEFAULT_LOCK_TIMEOUT`` seconds unless told
otherwise, and the error names the locked table); a full disk or a failed commit (the real error,
never the rollback's).
"""

from __future__ import annotations

import errno
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from research._io import os_error_text
from research._text import mask_credentials
from research.attribution.tunes import ATTRIBUTION_COLUMNS, params_text, run_uuid
from research.exceptions import ResearchError

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MIGRATION_032",
    "MIGRATION_032_DUCKDB",
    "QUERIES",
    "DatabaseError",
    "FallbackResult",
    "PopulationReport",
    "Target",
    "best_params_by_key",
    "best_with_fallback",
    "check_target",
    "explain",
    "parse_target",
    "populate",
    "run_query",
]

MIGRATION_032 = """\
-- Migration: 032_tune_regime_attribution.sql

-- Regime versioning (for fingerprint stability)
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS regime_schema_version TEXT,
  ADD COLUMN IF NOT EXISTS tag_ruleset_id TEXT;

-- Human-readable regime key: "regime_v1_1|default_v1|uptrend|high_vol|noisy"
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS regime_key TEXT;

-- SHA256 hash for indexing (derived from regime_key)
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS regime_fingerprint TEXT;

-- Denormalized tags for fast SQL filtering
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS trend_tag TEXT;
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS vol_tag TEXT;
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS efficiency_tag TEXT;

-- Explicit OOS best (existing best_score may be IS or ambiguous)
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS best_oos_score DOUBLE PRECISION;
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS best_oos_params JSONB;
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS best_oos_run_id UUID REFERENCES backtest_runs(id);

-- Optional: baseline for uplift calculation
ALTER TABLE backtest_tunes
  ADD COLUMN IF NOT EXISTS baseline_oos_score DOUBLE PRECISION;

-- Fast regime-based lookups
CREATE INDEX IF NOT EXISTS idx_tunes_regime_key
  ON backtest_tunes(regime_key)
  WHERE regime_key IS NOT NULL;

CREATE INDEX IF NOT EXISTS idx_tunes_trend_vol
  ON backtest_tunes(trend_tag, vol_tag)
  WHERE trend_tag IS NOT NULL;

CREATE INDEX IF NOT EXISTS idx_tunes_best_oos_score
  ON backtest_tunes(best_oos_score DESC NULLS LAST)
  WHERE best_oos_score IS NOT NULL;

-- Multi-tenant regime lookup
CREATE INDEX IF NOT EXISTS idx_tunes_workspace_regime
  ON backtest_tunes(workspace_id, regime_key)
  WHERE regime_key IS NOT NULL;
"""
"""The migration that adds the regime columns and indexes to ``backtest_tunes``, verbatim, for
PostgreSQL."""

_TYPES_DUCKDB = {
    "regime_schema_version": "TEXT",
    "tag_ruleset_id": "TEXT",
    "regime_key": "TEXT",
    "regime_fingerprint": "TEXT",
    "trend_tag": "TEXT",
    "vol_tag": "TEXT",
    "efficiency_tag": "TEXT",
    "best_oos_score": "DOUBLE",
    "best_oos_params": "JSON",
    "best_oos_run_id": "UUID",
    "baseline_oos_score": "DOUBLE",
}

INDEXES: dict[str, str] = {
    "idx_tunes_regime_key": "regime_key",
    "idx_tunes_trend_vol": "trend_tag, vol_tag",
    "idx_tunes_best_oos_score": "best_oos_score",
    "idx_tunes_workspace_regime": "workspace_id, regime_key",
}
"""The migration's four indexes and their columns."""

MIGRATION_032_DUCKDB = (
    "\n".join(
        f"ALTER TABLE backtest_tunes ADD COLUMN IF NOT EXISTS {c} {t};"
        for c, t in _TYPES_DUCKDB.items()
    )
    + "\n"
    + "\n".join(
        f"CREATE INDEX IF NOT EXISTS {name} ON backtest_tunes({cols});"
        for name, cols in INDEXES.items()
    )
    + "\n"
)
"""The regime-column migration in DuckDB's dialect (differences: see the module docstring)."""

PRE_032_DUCKDB = """\
CREATE TABLE IF NOT EXISTS backtest_runs (
  id UUID PRIMARY KEY,
  tune_id UUID,
  run_name TEXT,
  params JSON,
  metrics_is JSON,
  metrics_oos JSON
);
CREATE TABLE IF NOT EXISTS backtest_tunes (
  id UUID PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  strategy_entity_id TEXT NOT NULL,
  tune_name TEXT,
  status TEXT,
  created_at TIMESTAMP DEFAULT current_timestamp
);
"""
"""The tables as the lab creates them in a new DuckDB file (before the regime columns)."""

QUERIES: dict[str, str] = {
    "best_by_key": """\
SELECT strategy_entity_id, best_oos_score, best_oos_params
FROM backtest_tunes
WHERE workspace_id = $1
  AND regime_key = $2
  AND best_oos_score IS NOT NULL
ORDER BY best_oos_score DESC
LIMIT 10;""",
    "best_by_trend_vol": """\
SELECT strategy_entity_id, best_oos_score, best_oos_params, regime_key
FROM backtest_tunes
WHERE workspace_id = $1
  AND trend_tag = $2
  AND vol_tag = $3
  AND best_oos_score IS NOT NULL
ORDER BY best_oos_score DESC
LIMIT 10;""",
    "summary": """\
SELECT
  regime_key,
  COUNT(*) as tune_count,
  AVG(best_oos_score) as avg_score,
  MAX(best_oos_score) as max_score
FROM backtest_tunes
WHERE workspace_id = $1
  AND regime_key IS NOT NULL
  AND best_oos_score IS NOT NULL
GROUP BY regime_key
ORDER BY avg_score DESC;""",
}
"""The tune-attribution plan's three queries, verbatim: best by regime key ($1 workspace, $2 key),
best by trend and vol ($1 workspace, $2 trend, $3 vol), regime performance summary
($1 workspace)."""

NEEDED_COLUMNS: tuple[str, ...] = ("id", "workspace_id", "strategy_entity_id")
"""Columns of ``backtest_tunes`` the population and the queries need."""

_RUN_COLUMNS: tuple[str, ...] = ("tune_id", "run_name", "params", "metrics_is", "metrics_oos")


DEFAULT_LOCK_TIMEOUT = 10.0
"""Seconds a PostgreSQL statement waits for a lock another session holds before it fails,
naming the table (``SET lock_timeout``)."""

Mode = Literal["write", "dry", "read"]
"""How a database is opened: ``write`` (commit), ``dry`` (everything rolled back; a DuckDB file
is opened read-only and copied into memory) or ``read`` (queries only, read-only)."""


class DatabaseError(ResearchError, RuntimeError):
    """A database that cannot be used; the message (one line) names it and says why. Nothing
    was written."""


@dataclass(frozen=True)
class Target:
    """Where the tunes live."""

    kind: str
    """``postgresql`` or ``duckdb``."""
    location: str
    """The URL or the file path."""
    default: bool = field(default=False, compare=False)
    """The lab's own default file (``data/lab.duckdb``; its folder is created when missing)."""

    @property
    def shown(self) -> str:
        """The location with any password masked."""
        return mask_credentials(self.location)  # also "postgres//me:pw@host" (no "://")


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCHEME_NO_SLASHES = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_POSTGRES_LIKE = re.compile(r"^(postgres(?:ql)?)(?=[:/\\]|$)", re.IGNORECASE)


def parse_target(db: str | Path | None) -> Target:
    """Where ``db`` points: ``postgresql://…`` / ``postgres://…`` → PostgreSQL; a path → a
    DuckDB file (default ``data/lab.duckdb`` under the project root).

    Raises
    ------
    DatabaseError
        ``db`` looks like a URL but is not a PostgreSQL one: another scheme (``mysql://…``,
        ``duckdb://…``) or a scheme without ``://`` (``postgres//me@host/lab``,
        ``postgresql:me@host``).
    """
    if db is None:
        from research.config import PATHS

        return Target("duckdb", str(PATHS.root / "data" / "lab.duckdb"), default=True)
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        return Target("postgresql", text)
    shown = Target("postgresql", text).shown
    scheme = _URL_SCHEME.match(text)
    if scheme is not None:
        raise DatabaseError(
            f"--db {shown}: unsupported URL scheme {scheme.group(1)}://; give a "
            "postgresql://user@host/database URL or the path of a DuckDB file"
        )
    loose = _SCHEME_NO_SLASHES.match(text)
    if loose is not None and not re.match(r"^[A-Za-z]:[\\/]", text):
        raise DatabaseError(
            f"--db {shown}: looks like a URL but has no '://' after {loose.group(1)}:; write "
            f"{loose.group(1)}://… (e.g. postgresql://user@host/database), or give the path of a "
            "DuckDB file"
        )
    return Target("duckdb", text)


def check_target(db: str | Path | None) -> Target:
    """``parse_target`` plus the checks a DuckDB path must pass before any work: not a folder,
    and in a folder that exists (the lab's default file excepted, whose folder is created); a
    path that does not exist and starts like a PostgreSQL URL whose ``://`` is missing
    (``postgres//me@host/lab``) is named as such.

    Parameters
    ----------
    db
        As for ``populate``.

    Returns
    -------
    Target

    Raises
    ------
    DatabaseError
        One line naming the target and how to proceed.
    """
    target = parse_target(db)
    if target.kind != "duckdb" or target.default:
        return target
    path = Path(target.location)
    if path.is_dir():
        raise DatabaseError(f"--db {path} is a folder; name a DuckDB file in it")
    folder = path.parent
    if path.exists() or folder.is_dir():
        return target
    if _POSTGRES_LIKE.match(target.location):
        raise DatabaseError(
            f"--db {target.shown}: no such file or folder, and it looks like a PostgreSQL URL "
            "missing '://' (write postgresql://user@host/database); a DuckDB file needs a path in "
            "an existing folder"
        )
    why = (
        f"{folder} is a file, not a folder"
        if folder.exists()
        else f"the folder {folder} does not exist"
    )
    raise DatabaseError(
        f"--db {path}: {why}, so no DuckDB file can be made there; create the folder first or "
        "name a file in an existing folder"
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


_IO_WORDS = (
    ("no space left on device", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("operation not permitted", errno.EPERM),
)


def _failure_text(exc: BaseException, target: Target) -> str:
    """One line for a failed statement or commit: on a DuckDB file the filesystem's reason in
    ``research._io.os_error_text``'s words when the error carries one (a full disk, a read-only
    folder), else the database's own message."""
    low = str(exc).lower()
    if target.kind == "duckdb":
        for words, code in _IO_WORDS:
            if words in low:
                return os_error_text(OSError(code, words), target.location)
    return f"{target.shown}: {type(exc).__name__}: {_one_line(exc)}"


_TABLE_OF = re.compile(
    r"\b(?:LOCK\s+TABLE|ALTER\s+TABLE|INSERT\s+INTO|UPDATE|FROM)\s+(?:IF\s+EXISTS\s+)?"
    r"(?:ONLY\s+)?([A-Za-z_][A-Za-z0-9_.]*)",
    re.IGNORECASE,
)


def _table_of(sql: str) -> str:
    """The first table a statement names (for a lock-timeout message)."""
    found = _TABLE_OF.search(sql)
    return found.group(1) if found else "a table"


class _Connection:
    """A thin layer over psycopg and duckdb: the same calls for both."""

    def __init__(
        self, target: Target, mode: Mode, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        self.target = target
        self.kind = target.kind
        self.mode = mode
        self.lock_timeout = lock_timeout
        self.new_file = False
        """A DuckDB file that does not exist yet (dry run and queries: an empty in-memory
        database; write: created, and removed again when the write fails)."""
        if self.kind == "postgresql":
            import psycopg

            try:
                self.raw: Any = psycopg.connect(
                    target.location, cursor_factory=psycopg.RawCursor, connect_timeout=10
                )
            except psycopg.Error as exc:
                raise DatabaseError(f"cannot connect to {target.shown}: {_one_line(exc)}") from exc
            if mode == "read":
                self.raw.read_only = True
            try:
                self.raw.execute(f"SET lock_timeout = {max(1, round(lock_timeout * 1000))}")
            except psycopg.Error as exc:
                self.raw.close()
                raise DatabaseError(f"{target.shown}: {_one_line(exc)}") from exc
            return
        import duckdb

        path = Path(target.location)
        self.new_file = not path.exists()
        try:
            if mode == "write":
                if target.default:
                    path.parent.mkdir(parents=True, exist_ok=True)
                self.raw = duckdb.connect(str(path))
            elif self.new_file:
                self.raw = duckdb.connect(":memory:")
            elif mode == "read":
                self.raw = duckdb.connect(str(path), read_only=True)
            else:
                self.raw = _in_memory_copy(path)
        except (duckdb.Error, OSError) as exc:
            if mode == "write" and self.new_file:
                _remove_duckdb(path)
            text = _failure_text(exc, target)
            if mode != "write" or text.startswith(f"{target.shown}: "):
                text = f"cannot open {path}: {_one_line(exc)}"
            raise DatabaseError(
                text + ("; nothing was written" if mode == "write" else "")
            ) from exc
        self.raw.execute("BEGIN TRANSACTION")

    def execute(
        self, sql: str, params: Sequence[object] | None = None, *, table: str | None = None
    ) -> Any:
        """Run ``sql``; a PostgreSQL lock wait longer than the lock timeout is a
        ``DatabaseError`` naming ``table`` (default: the first table ``sql`` names)."""
        if self.kind == "postgresql":
            import psycopg

            cur = self.raw.cursor()
            try:
                cur.execute(sql, params)
            except psycopg.errors.LockNotAvailable as exc:
                tail = "" if self.mode == "read" else "; rolled back, nothing was written"
                raise DatabaseError(
                    f"{self.target.shown}: table {table or _table_of(sql)} is locked by another "
                    f"session (waited {self.lock_timeout:g} s, --lock-timeout){tail}; try again "
                    "once that session commits or rolls back"
                ) from exc
            return cur
        return self.raw.execute(sql, list(params) if params is not None else None)

    def fetch_frame(self, sql: str, params: Sequence[object] | None = None) -> pd.DataFrame:
        cur = self.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)

    def rowcount(self, cur: Any) -> int:
        if self.kind == "postgresql":
            return int(cur.rowcount)
        row = cur.fetchone()
        return int(row[0]) if row else 0

    @property
    def schema(self) -> str:
        """SQL condition on ``table_schema`` for the tables the connection sees unqualified."""
        if self.kind == "postgresql":
            return "table_schema = ANY(current_schemas(false))"
        return "table_schema = 'main' AND table_catalog = current_database()"

    def tables(self) -> set[str]:
        sql = f"SELECT table_name FROM information_schema.tables WHERE {self.schema}"
        return {r[0] for r in self.execute(sql).fetchall()}

    def column_types(self, table: str) -> dict[str, str]:
        sql = (
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_name = $1 AND {self.schema} ORDER BY ordinal_position"
        )
        return {r[0]: str(r[1]).lower() for r in self.execute(sql, [table]).fetchall()}

    def columns(self, table: str) -> list[str]:
        return list(self.column_types(table))

    def indexes(self, table: str) -> set[str]:
        if self.kind == "postgresql":
            sql = "SELECT indexname FROM pg_indexes WHERE tablename = $1"
        else:
            sql = (
                "SELECT index_name FROM duckdb_indexes() WHERE table_name = $1 "
                "AND database_name = current_database()"
            )
        return {r[0] for r in self.execute(sql, [table]).fetchall()}

    def stage(self, name: str, frame: pd.DataFrame, types: dict[str, str]) -> None:
        """A temporary table ``name`` holding ``frame`` (columns typed by ``types``)."""
        cols = list(frame.columns)
        ddl = ", ".join(f"{c} {types.get(c, 'TEXT')}" for c in cols)
        if self.kind == "postgresql":
            self.execute(f"CREATE TEMP TABLE {name} ({ddl}) ON COMMIT DROP")
            rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False)
            with self.raw.cursor().copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        else:
            self.raw.register("_lab_frame", frame)
            casts = ", ".join(f"CAST({c} AS {types.get(c, 'TEXT')}) AS {c}" for c in cols)
            self.execute(f"CREATE TEMP TABLE {name} AS SELECT {casts} FROM _lab_frame")
            self.raw.unregister("_lab_frame")

    def commit(self) -> None:
        """Commit; a failure raises the commit's own error (the transaction is gone)."""
        self.raw.commit() if self.kind == "postgresql" else self.raw.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back, quietly: after a failed statement or commit there may be no transaction
        left, and the error to report is the one that got us here, not the rollback's."""
        try:
            self.raw.rollback() if self.kind == "postgresql" else self.raw.execute("ROLLBACK")
        except Exception:  # the original error is the one reported
            pass

    def finish(self, commit: bool) -> None:
        self.commit() if commit else self.rollback()

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # closing after a failure: nothing left to report
            pass


_LAB_TABLES = ("backtest_runs", "backtest_tunes")


def _in_memory_copy(path: Path) -> Any:
    """An in-memory DuckDB database holding copies of ``path``'s ``backtest_runs`` and
    ``backtest_tunes`` (their definitions, rows and indexes), the file opened read-only: what
    the dry run works on."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS lab_source (READ_ONLY)")
        tables = dict(
            con.execute(
                "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = 'lab_source' "
                "AND schema_name = 'main' AND table_name IN ('backtest_runs', 'backtest_tunes')"
            ).fetchall()
        )
        for name in _LAB_TABLES:
            if name not in tables:
                continue
            try:
                con.execute(tables[name])
                con.execute(f"INSERT INTO memory.main.{name} SELECT * FROM lab_source.main.{name}")
            except duckdb.Error:  # a definition naming other tables: the columns and rows
                con.execute(f"DROP TABLE IF EXISTS memory.main.{name}")
                con.execute(
                    f"CREATE TABLE memory.main.{name} AS SELECT * FROM lab_source.main.{name}"
                )
        for (sql,) in con.execute(
            "SELECT sql FROM duckdb_indexes() WHERE database_name = 'lab_source' "
            "AND schema_name = 'main' AND table_name IN ('backtest_runs', 'backtest_tunes') "
            "AND sql IS NOT NULL"
        ).fetchall():
            con.execute(sql)
        con.execute("DETACH lab_source")
    except BaseException:
        con.close()
        raise
    return con


def _remove_duckdb(path: Path) -> None:
    """Remove a DuckDB file this command created (and its write-ahead log)."""
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


@dataclass(frozen=True)
class PopulationReport:
    """What ``populate`` did (or, in a dry run, would do)."""

    target: str
    kind: str
    written: bool
    created_tables: tuple[str, ...]
    added_columns: tuple[str, ...]
    added_indexes: tuple[str, ...]
    inserted_tunes: int
    inserted_runs: int
    updated: int
    attributed: int
    not_attributed: dict[str, str]

    def describe(self) -> str:
        """What happened, in one paragraph."""
        verb = "" if self.written else "would "
        parts = []
        if self.created_tables:
            parts.append(f"{verb}create {', '.join(self.created_tables)}")
        parts.append(
            f"{verb}add columns {', '.join(self.added_columns)}"
            if self.added_columns
            else "regime columns all present"
        )
        if self.added_indexes:
            parts.append(f"{verb}create indexes {', '.join(self.added_indexes)}")
        if self.inserted_tunes or self.inserted_runs:
            parts.append(
                f"{verb}insert {self.inserted_tunes} tunes and {self.inserted_runs} runs the "
                "database did not have"
            )
        parts.append(
            f"{verb}set the regime columns on {self.updated} of {self.attributed} attributed tunes"
            + (" (the others already hold these values)" if self.updated < self.attributed else "")
        )
        if self.not_attributed:
            parts.append(f"{len(self.not_attributed)} tunes not attributed (left null)")
        head = f"{self.target} ({self.kind}): "
        return head + "; ".join(parts) + ("" if self.written else " — dry run, nothing written")


_STAGE_TYPES = {
    "pg": {
        "best_oos_score": "DOUBLE PRECISION",
        "baseline_oos_score": "DOUBLE PRECISION",
    },
    "duckdb": {"best_oos_score": "DOUBLE", "baseline_oos_score": "DOUBLE"},
}


def _runs_frame(records: pd.DataFrame, tune_ids: pd.Series) -> pd.DataFrame:
    """One row per run: uuid, tune uuid, name, params JSON, IS and OOS metrics JSON."""
    from research.attribution.tunes import _params_json

    params = _params_json(records)
    metric_cols = [
        c
        for c in records.columns
        if c not in {"tune_id", "workspace_id", "strategy_id", "run_id", "split", "symbol"}
        and not c.startswith("param_")
        and c not in {"window_start", "window_end", "is_baseline", "config_name"}
        and pd.api.types.is_numeric_dtype(records[c])
    ]

    def metrics(frame: pd.DataFrame) -> pd.Series:
        vals = frame[metric_cols].astype(float)
        return pd.Series(
            [
                json.dumps(
                    {k: (None if np.isnan(v) else v) for k, v in row.items()}, sort_keys=True
                )
                for row in vals.to_dict(orient="records")
            ],
            index=frame["run_id"].to_numpy(),
        )

    base = records.assign(_params=params).drop_duplicates("run_id")
    ins = records[records["split"] == "is"]
    oos = records[records["split"] == "oos"]
    out = pd.DataFrame(
        {
            "id": base["run_id"].map(run_uuid).to_numpy(),
            "tune_id": base["tune_id"]
            .map(dict(zip(tune_ids.index, tune_ids, strict=True)))
            .to_numpy(),
            "run_name": base["run_id"].astype(str).to_numpy(),
            "params": base["_params"].to_numpy(),
        }
    )
    mi, mo = metrics(ins), metrics(oos)
    out["metrics_is"] = base["run_id"].map(mi).to_numpy()
    out["metrics_oos"] = base["run_id"].map(mo).to_numpy()
    return out


def _check(con: _Connection) -> tuple[str, ...]:
    tables = con.tables()
    created = []
    missing = [t for t in _LAB_TABLES if t not in tables]
    if missing and con.kind == "postgresql":
        raise DatabaseError(
            f"{con.target.shown}: no table {' or '.join(missing)} (the regime-column migration "
            "alters backtest_tunes and references backtest_runs(id)); the lab creates tables only "
            "in its DuckDB file"
        )
    if missing:
        con.execute(PRE_032_DUCKDB)
        created = missing
    have = con.columns("backtest_tunes")
    lacking = [c for c in NEEDED_COLUMNS if c not in have]
    if lacking:
        raise DatabaseError(
            f"{con.target.shown}: table backtest_tunes has no column(s) {lacking}, which the "
            f"population needs (it has {have})"
        )
    if "id" not in con.columns("backtest_runs"):
        raise DatabaseError(f"{con.target.shown}: table backtest_runs has no id column")
    return tuple(created)


_TYPE_FAMILIES: dict[str, frozenset[str]] = {
    "TEXT": frozenset({"text", "character varying", "varchar", "character", "string"}),
    "DOUBLE": frozenset({"double precision", "double", "real", "float", "numeric", "decimal"}),
    "JSON": frozenset({"jsonb", "json"}),
    "UUID": frozenset({"uuid"}),
}


def _check_types(con: _Connection, have: dict[str, str]) -> None:
    """Refuse a migration column the table already has with another type: the migration
    (``ADD COLUMN IF NOT EXISTS``) would keep it and the population write into it."""
    wrong = []
    for col, want in _TYPES_DUCKDB.items():
        got = have.get(col)
        if got is None:
            continue
        base = got.split("(")[0].strip()
        if base not in _TYPE_FAMILIES[want]:
            shown = "DOUBLE PRECISION" if want == "DOUBLE" and con.kind == "postgresql" else want
            if want == "JSON" and con.kind == "postgresql":
                shown = "JSONB"
            wrong.append(f"{col} is {got}, the migration's is {shown}")
    if wrong:
        raise DatabaseError(
            f"{con.target.shown}: table backtest_tunes already has regime column(s) of another "
            f"type ({'; '.join(wrong)}); the lab does not write into a column it did not define: "
            "rename yours (ALTER TABLE backtest_tunes RENAME COLUMN … TO …) and run again"
        )


def _check_lock_timeout(lock_timeout: float) -> float:
    if (
        isinstance(lock_timeout, bool)
        or not isinstance(lock_timeout, int | float)
        or not (lock_timeout > 0 and math.isfinite(lock_timeout))
    ):
        raise DatabaseError(
            f"--lock-timeout must be a number of seconds more than 0, got {lock_timeout!r}"
        )
    return float(lock_timeout)


def populate(
    db: str | Path | None,
    attributed: pd.DataFrame,
    records: pd.DataFrame,
    *,
    write: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> PopulationReport:
    """Add the regime columns and write the values of ``attributed`` (one transaction).

    Parameters
    ----------
    db
        ``postgresql://…`` URL or DuckDB file (default ``data/lab.duckdb``, created on write;
        another file must be in an existing folder, ``check_target``).
    attributed
        ``research.attribution.tunes.attribute_tunes`` output.
    records
        The tunes records (to insert the runs of tunes the database does not have).
    write
        Commit; otherwise everything is rolled back (dry run: a DuckDB file is opened
        read-only and the statements run on an in-memory copy of its two tables).
    lock_timeout
        Seconds a PostgreSQL statement waits for a lock held by another session before the
        population fails naming the table.

    Returns
    -------
    PopulationReport

    Raises
    ------
    DatabaseError
        A malformed target, cannot connect, tables or columns missing, a regime column of
        another type, a table locked longer than ``lock_timeout``, or a statement or the commit
        failed (rolled back: nothing written; a DuckDB file this call created is removed).
    """
    target = check_target(db)
    lock_timeout = _check_lock_timeout(lock_timeout)
    con = _Connection(target, "write" if write else "dry", lock_timeout=lock_timeout)
    done = False
    try:
        try:
            created = _check(con)
            before_types = con.column_types("backtest_tunes")
            _check_types(con, before_types)
            before = list(before_types)
            if con.kind == "postgresql":  # the locks the statements take, one table at a time
                con.execute("LOCK TABLE backtest_tunes IN ACCESS EXCLUSIVE MODE")  # the ALTERs'
                con.execute("LOCK TABLE backtest_runs IN ROW EXCLUSIVE MODE")  # the INSERTs'
            idx_before = con.indexes("backtest_tunes")
            # holding backtest_tunes, the migration can wait only for the lock its new foreign key
            # takes on backtest_runs
            con.execute(
                MIGRATION_032 if con.kind == "postgresql" else MIGRATION_032_DUCKDB,
                table="backtest_runs",
            )
            added = tuple(c for c in con.columns("backtest_tunes") if c not in before)
            new_idx = tuple(i for i in INDEXES if i not in idx_before)
            ok = attributed["reason"] == ""
            stage = pd.DataFrame(
                {
                    "id": attributed["id"].astype(str),
                    "workspace_id": attributed["workspace_id"].astype(str),
                    "strategy_entity_id": attributed["strategy_id"].astype(str),
                    "tune_name": attributed["tune_id"].astype(str),
                    "attributed": ok.map({True: "y", False: "n"}),
                    **{c: attributed[c] for c in ATTRIBUTION_COLUMNS},
                }
            )
            types = _STAGE_TYPES["pg" if con.kind == "postgresql" else "duckdb"]
            con.stage("_lab_tunes", stage, types)
            id_text = "CAST(t.id AS TEXT)" if con.kind == "postgresql" else "CAST(t.id AS VARCHAR)"
            have = con.columns("backtest_tunes")
            extra = ["tune_name"] if "tune_name" in have else []
            cols = ["id", "workspace_id", "strategy_entity_id", *extra]
            select = ", ".join(
                (
                    "CAST(a.id AS UUID)"
                    if c == "id" and _is_uuid(con, "backtest_tunes")
                    else f"a.{c}"
                )
                for c in cols
            )
            cur = con.execute(
                f"INSERT INTO backtest_tunes ({', '.join(cols)}) SELECT {select} FROM _lab_tunes a "
                f"WHERE NOT EXISTS (SELECT 1 FROM backtest_tunes t WHERE {id_text} = a.id)"
            )
            inserted_tunes = con.rowcount(cur)
            inserted_runs = _insert_runs(con, records, attributed)
            updated = _update(con, id_text)
            con.finish(commit=write)
            done = True
        except DatabaseError:
            con.rollback()
            raise
        except Exception as exc:
            con.rollback()
            raise DatabaseError(
                f"{_failure_text(exc, target)}; rolled back, nothing was written"
            ) from exc
    finally:
        con.close()
        if not done and write and con.new_file and con.kind == "duckdb":
            _remove_duckdb(Path(target.location))
    return PopulationReport(
        target.shown,
        target.kind,
        write,
        ((f"{target.location} (new file)",) if con.new_file and not write else ()) + created,
        added,
        new_idx,
        inserted_tunes,
        inserted_runs,
        updated,
        int(ok.sum()),
        dict(zip(attributed.loc[~ok, "tune_id"], attributed.loc[~ok, "reason"], strict=True)),
    )


def _is_uuid(con: _Connection, table: str) -> bool:
    return con.column_types(table).get("id") == "uuid"


def _insert_runs(con: _Connection, records: pd.DataFrame, attributed: pd.DataFrame) -> int:
    have = con.columns("backtest_runs")
    id_text = "CAST(r.id AS TEXT)" if con.kind == "postgresql" else "CAST(r.id AS VARCHAR)"
    # which runs are missing, from their ids alone (the full rows are built only for those)
    run_ids = records["run_id"].drop_duplicates()
    uuids = run_ids.map(run_uuid)
    con.stage("_lab_run_ids", pd.DataFrame({"id": uuids.to_numpy()}), {})
    missing = {
        str(r[0])
        for r in con.execute(
            "SELECT a.id FROM _lab_run_ids a WHERE NOT EXISTS "
            f"(SELECT 1 FROM backtest_runs r WHERE {id_text} = a.id)"
        ).fetchall()
    }
    if not missing:
        return 0
    wanted = set(run_ids[uuids.isin(missing).to_numpy()])
    tune_ids = pd.Series(attributed["id"].to_numpy(), index=attributed["tune_id"].to_numpy())
    runs = _runs_frame(records[records["run_id"].isin(wanted)], tune_ids)
    runs = runs[["id", *[c for c in _RUN_COLUMNS if c in have]]]
    json_type = "JSONB" if con.kind == "postgresql" else "JSON"
    con.stage("_lab_runs", runs, {})
    uuid_run = _is_uuid(con, "backtest_runs")
    casts = {"params": json_type, "metrics_is": json_type, "metrics_oos": json_type}
    if uuid_run:
        casts["id"] = "UUID"
    casts["tune_id"] = "UUID"
    select = ", ".join(
        f"CAST(a.{c} AS {casts[c]})" if c in casts else f"a.{c}" for c in runs.columns
    )
    cur = con.execute(
        f"INSERT INTO backtest_runs ({', '.join(runs.columns)}) SELECT {select} FROM _lab_runs a "
        f"WHERE NOT EXISTS (SELECT 1 FROM backtest_runs r WHERE {id_text} = a.id)"
    )
    return con.rowcount(cur)


def _update(con: _Connection, id_text: str) -> int:
    json_type = "JSONB" if con.kind == "postgresql" else "JSON"
    value = {
        c: (
            f"CAST(a.{c} AS {json_type})"
            if c == "best_oos_params"
            else "CAST(a.best_oos_run_id AS UUID)"
            if c == "best_oos_run_id"
            else f"a.{c}"
        )
        for c in ATTRIBUTION_COLUMNS
    }
    sets = ", ".join(f"{c} = {v}" for c, v in value.items())
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM {v}" for c, v in value.items())
    sql = (
        f"UPDATE backtest_tunes AS t SET {sets} FROM _lab_tunes a "
        f"WHERE {id_text} = a.id AND a.attributed = 'y' AND ({differs})"
    )
    return con.rowcount(con.execute(sql))


def _checked_query(name: str, params: Sequence[object]) -> str:
    if name not in QUERIES:
        raise DatabaseError(f"unknown query {name!r} (known: {sorted(QUERIES)})")
    sql = QUERIES[name]
    want = len(set(re.findall(r"\$(\d+)", sql)))
    if len(params) != want:
        raise DatabaseError(f"query {name} takes {want} parameters, got {len(params)}")
    return sql


def run_query(
    db: str | Path | None,
    name: str,
    *params: object,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> pd.DataFrame:
    """Run one of the tune-attribution plan's ``QUERIES`` as written (read-only: a DuckDB file
    is opened read-only, a PostgreSQL transaction is read-only).

    Parameters
    ----------
    db
        ``postgresql://…`` URL or DuckDB file (default ``data/lab.duckdb``).
    name
        A key of ``QUERIES``.
    *params
        The query's ``$1``, ``$2``, … in order.
    lock_timeout
        Seconds to wait for a PostgreSQL table locked by another session.

    Returns
    -------
    pandas.DataFrame
        The rows (``best_oos_params`` as JSON text).

    Raises
    ------
    DatabaseError
        Unknown query, wrong number of parameters, a malformed target, no such file, cannot
        connect, no such table or columns, or the table is locked longer than
        ``lock_timeout``.
    """
    sql = _checked_query(name, params)
    target = parse_target(db)
    lock_timeout = _check_lock_timeout(lock_timeout)
    if target.kind == "duckdb" and not Path(target.location).is_file():
        what = (
            "a folder, not a DuckDB file"
            if Path(target.location).is_dir()
            else "no such DuckDB file"
        )
        raise DatabaseError(
            f"{target.location}: {what} (run `research attribute tunes --write` first)"
        )
    con = _Connection(target, "read", lock_timeout=lock_timeout)
    try:
        try:
            frame = con.fetch_frame(sql, list(params))
        except DatabaseError:
            raise
        except Exception as exc:
            raise DatabaseError(f"{target.shown}: {type(exc).__name__}: {_one_line(exc)}") from exc
        finally:
            con.rollback()
    finally:
        con.close()
    if "best_oos_params" in frame:
        frame["best_oos_params"] = frame["best_oos_params"].map(
            lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
        )
    return frame


def explain(db: str, name: str, *params: object, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> str:
    """PostgreSQL's ``EXPLAIN`` of one of the ``QUERIES`` with its parameters (the plan as text).

    Raises
    ------
    DatabaseError
        Not a PostgreSQL URL, unknown query, wrong number of parameters, cannot connect, the
        table is locked longer than ``lock_timeout`` seconds, or the query fails.
    """
    target = parse_target(db)
    if target.kind != "postgresql":
        raise DatabaseError(f"{target.shown}: EXPLAIN is shown for PostgreSQL databases only")
    sql = _checked_query(name, params)
    lock_timeout = _check_lock_timeout(lock_timeout)
    con = _Connection(target, "read", lock_timeout=lock_timeout)
    try:
        try:
            rows = con.execute("EXPLAIN " + sql, list(params)).fetchall()
        except DatabaseError:
            raise
        except Exception as exc:
            raise DatabaseError(f"{target.shown}: {type(exc).__name__}: {_one_line(exc)}") from exc
        finally:
            con.rollback()
    finally:
        con.close()
    return "\n".join(str(r[0]) for r in rows)


@dataclass(frozen=True)
class FallbackResult:
    """The best-by-key query for a key, widened to similar keys when the key has too few tunes."""

    rows: pd.DataFrame
    key: str
    distance: int | None
    keys_used: tuple[str, ...]
    min_tunes: int

    def text(self) -> str:
        """The lookup in words: exact key or how far it widened, and what it found."""
        n = len(self.rows)
        if self.distance is None:
            return f"{self.key}: no tunes with an OOS score within tag distance 3"
        if self.distance == 0:
            return f"{self.key}: {n} tunes with this exact key"
        return (
            f"{self.key}: fewer than {self.min_tunes} tunes with this exact key; fell back to "
            f"{len(self.keys_used)} keys within tag distance {self.distance} ({n} tunes)"
        )


def best_with_fallback(
    db: str | Path | None,
    workspace_id: str,
    regime_key: str,
    *,
    min_tunes: int = 3,
    max_distance: int = 3,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> FallbackResult:
    """The best-by-key query for ``regime_key``; when it returns fewer than ``min_tunes`` rows, the
    same query for every key of the workspace (from the summary query) within tag distance 1, then
    2, ... (``research.attribution.tunes.key_distance``), best first, until ``min_tunes`` rows are
    found (the tune-attribution plan's "similar regime search").

    Raises
    ------
    DatabaseError
        As ``run_query``; also ``min_tunes`` below 1 or ``max_distance`` below 0.
    """
    from research.attribution.tunes import key_distance

    for option, value, least in (("--min-tunes", min_tunes, 1), ("max_distance", max_distance, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise DatabaseError(f"{option} must be at least {least}, got {value!r}")

    def query(name: str, *params: object) -> pd.DataFrame:
        return run_query(db, name, *params, lock_timeout=lock_timeout)

    exact = query("best_by_key", workspace_id, regime_key)
    if len(exact) >= min_tunes:
        return FallbackResult(
            exact.assign(regime_key=regime_key), regime_key, 0, (regime_key,), min_tunes
        )
    keys = query("summary", workspace_id)["regime_key"].tolist()
    dist = {k: key_distance(regime_key, k) for k in keys}
    found = exact.assign(regime_key=regime_key)
    used: tuple[str, ...] = (regime_key,)
    distance: int | None = 0 if len(exact) else None
    for d in range(1, max_distance + 1):
        near = [k for k in keys if (dk := dist[k]) is not None and dk <= d]
        if not near:
            continue
        frames = [query("best_by_key", workspace_id, k).assign(regime_key=k) for k in near]
        found = pd.concat(frames, ignore_index=True).sort_values("best_oos_score", ascending=False)
        used, distance = tuple(near), d
        if len(found) >= min_tunes:
            break
    return FallbackResult(found.reset_index(drop=True), regime_key, distance, used, min_tunes)


def best_params_by_key(
    db: str | Path | None, workspace_id: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> pd.DataFrame:
    """Per regime key of the workspace (the summary query, best average first): its tune count,
    average and best OOS score, and the top row of the best-by-key query (the strategy and
    parameters of its best tune)."""
    summary = run_query(db, "summary", workspace_id, lock_timeout=lock_timeout)
    rows = []
    for _, r in summary.iterrows():
        top = run_query(
            db, "best_by_key", workspace_id, r["regime_key"], lock_timeout=lock_timeout
        ).iloc[0]
        rows.append(
            {
                "regime_key": r["regime_key"],
                "tunes": int(r["tune_count"]),
                "avg_oos_sharpe": float(r["avg_score"]),
                "best_oos_sharpe": float(top["best_oos_score"]),
                "best_strategy": top["strategy_entity_id"],
                "best_params": params_text(top["best_oos_params"]),
            }
        )
    return pd.DataFrame(rows)
