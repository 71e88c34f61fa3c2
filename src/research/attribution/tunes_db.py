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
exactly what a write would do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.attribution.tunes import ATTRIBUTION_COLUMNS, params_text, run_uuid

__all__ = [
    "MIGRATION_032",
    "MIGRATION_032_DUCKDB",
    "QUERIES",
    "DatabaseError",
    "FallbackResult",
    "PopulationReport",
    "Target",
    "best_params_by_key",
    "best_with_fallback",
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


class DatabaseError(RuntimeError):
    """A database that cannot be used; the message names it and says why. Nothing was
    written."""


@dataclass(frozen=True)
class Target:
    """Where the tunes live."""

    kind: str
    """``postgresql`` or ``duckdb``."""
    location: str
    """The URL or the file path."""

    @property
    def shown(self) -> str:
        """The location with any password masked."""
        text = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", self.location)
        return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", text)


def parse_target(db: str | Path | None) -> Target:
    """``postgresql://…`` / ``postgres://…`` → PostgreSQL; anything else is a DuckDB file
    (default ``data/lab.duckdb`` under the project root)."""
    if db is None:
        from research.config import PATHS

        return Target("duckdb", str(PATHS.root / "data" / "lab.duckdb"))
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        return Target("postgresql", text)
    return Target("duckdb", text)


class _Connection:
    """A thin layer over psycopg and duckdb: the same calls for both."""

    def __init__(self, target: Target, *, create: bool) -> None:
        self.target = target
        self.kind = target.kind
        self.in_memory = False
        if self.kind == "postgresql":
            import psycopg

            try:
                self.raw: Any = psycopg.connect(
                    target.location, cursor_factory=psycopg.RawCursor, connect_timeout=10
                )
            except psycopg.OperationalError as exc:
                msg = " ".join(str(exc).split()) or repr(exc)
                raise DatabaseError(f"cannot connect to {target.shown}: {msg}") from exc
        else:
            import duckdb

            path = Path(target.location)
            if not path.exists() and not create:
                self.raw = duckdb.connect(":memory:")
                self.in_memory = True
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.raw = duckdb.connect(str(path))
                except duckdb.Error as exc:
                    raise DatabaseError(f"cannot open {path}: {exc}") from exc
            self.raw.execute("BEGIN TRANSACTION")

    def execute(self, sql: str, params: Sequence[object] | None = None) -> Any:
        if self.kind == "postgresql":
            cur = self.raw.cursor()
            cur.execute(sql, params)
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
        return "table_schema = 'main'"

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
            sql = "SELECT index_name FROM duckdb_indexes() WHERE table_name = $1"
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

    def finish(self, commit: bool) -> None:
        if commit:
            self.raw.commit() if self.kind == "postgresql" else self.raw.execute("COMMIT")
        else:
            self.raw.rollback() if self.kind == "postgresql" else self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()


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


def _check(con: _Connection, create: bool) -> tuple[str, ...]:
    tables = con.tables()
    created = []
    missing = [t for t in ("backtest_runs", "backtest_tunes") if t not in tables]
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


def populate(
    db: str | Path | None,
    attributed: pd.DataFrame,
    records: pd.DataFrame,
    *,
    write: bool = False,
) -> PopulationReport:
    """Add the regime columns and write the values of ``attributed`` (one transaction).

    Parameters
    ----------
    db
        ``postgresql://…`` URL or DuckDB file (default ``data/lab.duckdb``, created on write).
    attributed
        ``research.attribution.tunes.attribute_tunes`` output.
    records
        The tunes records (to insert the runs of tunes the database does not have).
    write
        Commit; otherwise everything is rolled back (dry run).

    Raises
    ------
    DatabaseError
        Cannot connect, tables or columns missing, or a statement failed (rolled back: nothing
        written).
    """
    target = parse_target(db)
    con = _Connection(target, create=write)
    try:
        try:
            created = _check(con, create=True)
            before = con.columns("backtest_tunes")
            idx_before = con.indexes("backtest_tunes")
            con.execute(MIGRATION_032 if con.kind == "postgresql" else MIGRATION_032_DUCKDB)
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
            con.finish(commit=write and not con.in_memory)
        except DatabaseError:
            con.finish(commit=False)
            raise
        except Exception as exc:
            con.finish(commit=False)
            raise DatabaseError(
                f"{target.shown}: {type(exc).__name__}: {exc}; rolled back, nothing was written"
            ) from exc
    finally:
        con.close()
    return PopulationReport(
        target.shown,
        target.kind,
        write,
        ((f"{target.location} (new file)",) if con.in_memory else ()) + created,
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


def run_query(db: str | Path | None, name: str, *params: object) -> pd.DataFrame:
    """Run one of the tune-attribution plan's ``QUERIES`` as written (read-only).

    Raises
    ------
    DatabaseError
        Unknown query, wrong number of parameters, cannot connect, no such table or columns.
    """
    sql = _checked_query(name, params)
    target = parse_target(db)
    if target.kind == "duckdb" and not Path(target.location).exists():
        raise DatabaseError(
            f"{target.location}: no such DuckDB file (run `research attribute tunes --write` first)"
        )
    con = _Connection(target, create=False)
    try:
        try:
            frame = con.fetch_frame(sql, list(params))
        except Exception as exc:
            raise DatabaseError(f"{target.shown}: {type(exc).__name__}: {exc}") from exc
        finally:
            con.finish(commit=False)
    finally:
        con.close()
    if "best_oos_params" in frame:
        frame["best_oos_params"] = frame["best_oos_params"].map(
            lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
        )
    return frame


def explain(db: str, name: str, *params: object) -> str:
    """PostgreSQL's ``EXPLAIN`` of one of the ``QUERIES`` with its parameters (the plan as text).

    Raises
    ------
    DatabaseError
        Not a PostgreSQL URL, unknown query, wrong number of parameters, cannot connect, or
        the query fails.
    """
    target = parse_target(db)
    if target.kind != "postgresql":
        raise DatabaseError(f"{target.shown}: EXPLAIN is shown for PostgreSQL databases only")
    sql = _checked_query(name, params)
    con = _Connection(target, create=False)
    try:
        try:
            rows = con.execute("EXPLAIN " + sql, list(params)).fetchall()
        except Exception as exc:
            raise DatabaseError(f"{target.shown}: {type(exc).__name__}: {exc}") from exc
        finally:
            con.finish(commit=False)
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
) -> FallbackResult:
    """The best-by-key query for ``regime_key``; when it returns fewer than ``min_tunes`` rows, the
    same query for every key of the workspace (from the summary query) within tag distance 1, then
    2, ... (``research.attribution.tunes.key_distance``), best first, until ``min_tunes`` rows are
    found (the tune-attribution plan's "similar regime search")."""
    from research.attribution.tunes import key_distance

    exact = run_query(db, "best_by_key", workspace_id, regime_key)
    if len(exact) >= min_tunes:
        return FallbackResult(
            exact.assign(regime_key=regime_key), regime_key, 0, (regime_key,), min_tunes
        )
    keys = run_query(db, "summary", workspace_id)["regime_key"].tolist()
    dist = {k: key_distance(regime_key, k) for k in keys}
    found = exact.assign(regime_key=regime_key)
    used: tuple[str, ...] = (regime_key,)
    distance: int | None = 0 if len(exact) else None
    for d in range(1, max_distance + 1):
        near = [k for k in keys if (dk := dist[k]) is not None and dk <= d]
        if not near:
            continue
        frames = [run_query(db, "best_by_key", workspace_id, k).assign(regime_key=k) for k in near]
        found = pd.concat(frames, ignore_index=True).sort_values("best_oos_score", ascending=False)
        used, distance = tuple(near), d
        if len(found) >= min_tunes:
            break
    return FallbackResult(found.reset_index(drop=True), regime_key, distance, used, min_tunes)


def best_params_by_key(db: str | Path | None, workspace_id: str) -> pd.DataFrame:
    """Per regime key of the workspace (the summary query, best average first): its tune count,
    average and best OOS score, and the top row of the best-by-key query (the strategy and
    parameters of its best tune)."""
    summary = run_query(db, "summary", workspace_id)
    rows = []
    for _, r in summary.iterrows():
        top = run_query(db, "best_by_key", workspace_id, r["regime_key"]).iloc[0]
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
