"""Seed 002's ``backtest_tunes`` in a real database: migration 032 on PostgreSQL (a throwaway
server) and on the lab's DuckDB file, the population of the regime columns (existing rows and
columns untouched, dry run by default, idempotent, all or nothing), the seed's three queries run
as written against an independent pandas computation, the indexes they use, the similar-regime
fallback, bad databases, and the ``research attribute tunes`` / ``tune-query`` commands."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pytest

from research.attribution import tunes_db
from research.attribution.tunes import ATTRIBUTION_COLUMNS, run_uuid, tune_uuid
from research.config import PATHS
from research.testing.cli import CliResult, run_cli

if TYPE_CHECKING:
    from research.attribution.service import TuneStudy

WS = "regime-lab"
COLS = list(ATTRIBUTION_COLUMNS)
K = "regime_v1_1|default_v1|"
REFUSED = "postgresql://lab:s3cret@127.0.0.1:1/nodb"

PRE_032_PG = """
CREATE TABLE backtest_runs (
  id uuid PRIMARY KEY, tune_id uuid, params jsonb, metrics_oos jsonb,
  created_at timestamptz DEFAULT now()
);
CREATE TABLE backtest_tunes (
  id uuid PRIMARY KEY, workspace_id text NOT NULL, strategy_entity_id text NOT NULL,
  status text, best_score double precision, best_params jsonb,
  created_at timestamptz DEFAULT now()
);
"""
"""The seed's tables as they were before migration 032."""

# Sample tunes the user's database already has, with values of its own in every column.
PRE_TUNES = ["TUNE-SPX-01", "TUNE-SPX-07", "TUNE-IXIC-03", "TUNE-IXIC-18"]
# Rows the file does not have: another workspace, and an unrelated tune of the same workspace.
OTHER_IDS = [
    ("0a000000-0000-4000-8000-000000000001", "other-ws", "iron_condor"),
    ("0a000000-0000-4000-8000-000000000002", "other-ws", "bear_call_spx"),
    ("0a000000-0000-4000-8000-000000000003", WS, "hand_made"),
]
PRE_RUN = "TUNE-SPX-01-R01"  # a run of the file the database already has (kept as it is)

DUMP_TUNES = (
    "SELECT id::text, workspace_id, strategy_entity_id, status, best_score::text, "
    "best_params::text, created_at::text FROM backtest_tunes ORDER BY id"
)
DUMP_RUNS = (
    "SELECT id::text, tune_id::text, params::text, metrics_oos::text, created_at::text "
    "FROM backtest_runs ORDER BY id"
)


# --------------------------------------------------------------------------- helpers


def _cli(*args: str) -> CliResult:
    return run_cli("attribute", *args)


def _clis(*runs: tuple[str, ...]) -> list[CliResult]:
    """Independent commands, one after the other (in-process, no interpreter start each)."""
    return [_cli(*args) for args in runs]


def _pg(url: str, sql: str, params: tuple | list | None = None) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        cur = con.execute(sql, params)
        return cur.fetchall() if cur.description else []


def _pg_columns(url: str, table: str = "backtest_tunes") -> dict[str, tuple[str, str]]:
    rows = _pg(
        url,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    return {c: (t, n) for c, t, n in rows}


def _pg_indexes(url: str) -> dict[str, str]:
    rows = _pg(url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'backtest_tunes'")
    return dict(rows)


def _pre_032(url: str) -> None:
    """The seed's world before 032: both tables, some sample tunes and a sample run already
    there with the user's values, and rows the file does not have."""
    _pg(url, PRE_032_PG)
    for i, tid in enumerate(PRE_TUNES):
        _pg(
            url,
            "INSERT INTO backtest_tunes (id, workspace_id, strategy_entity_id, status, best_score,"
            " best_params, created_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)",
            (
                tune_uuid(tid),
                WS,
                "bear_call_spx" if "SPX" in tid else "bear_call_ixic",  # as in the file
                "completed",
                1.25 + i,
                json.dumps({"user": i, "note": "IS best, kept"}),
                f"2020-01-0{i + 1} 10:00:00+00",
            ),
        )
    for i, (uid, ws, strat) in enumerate(OTHER_IDS):
        _pg(
            url,
            "INSERT INTO backtest_tunes (id, workspace_id, strategy_entity_id, status, best_score,"
            " best_params) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
            (uid, ws, strat, "running" if i else None, None if i else -0.5, '{"x": [1, 2]}'),
        )
    _pg(
        url,
        "INSERT INTO backtest_runs (id, tune_id, params, metrics_oos) VALUES "
        '(%s, %s, \'{"user": "kept"}\', \'{"sharpe": 42}\')',
        (run_uuid(PRE_RUN), tune_uuid("TUNE-SPX-01")),
    )


def _ok(attributed: pd.DataFrame) -> pd.DataFrame:
    return attributed[(attributed["reason"] == "") & attributed["best_oos_score"].notna()]


def _expect_best_by_key(a: pd.DataFrame, key: str) -> list[tuple]:
    f = _ok(a)
    f = f[(f["workspace_id"] == WS) & (f["regime_key"] == key)]
    f = f.sort_values("best_oos_score", ascending=False).head(10)
    return [
        (s, float(v), json.loads(p))
        for s, v, p in zip(f["strategy_id"], f["best_oos_score"], f["best_oos_params"], strict=True)
    ]


def _expect_best_by_trend_vol(a: pd.DataFrame, trend: str, vol: str) -> list[tuple]:
    f = _ok(a)
    f = f[(f["workspace_id"] == WS) & (f["trend_tag"] == trend) & (f["vol_tag"] == vol)]
    f = f.sort_values("best_oos_score", ascending=False).head(10)
    return [
        (s, float(v), json.loads(p), k)
        for s, v, p, k in zip(
            f["strategy_id"],
            f["best_oos_score"],
            f["best_oos_params"],
            f["regime_key"],
            strict=True,
        )
    ]


def _got(frame: pd.DataFrame) -> list[tuple]:
    """Query rows with the params parsed (so JSON spacing cannot matter)."""
    out = []
    for row in frame.itertuples(index=False):
        vals = list(row)
        vals[1] = float(vals[1])
        vals[2] = json.loads(vals[2])
        out.append(tuple(vals))
    return out


def _expect_summary(a: pd.DataFrame) -> pd.DataFrame:
    f = _ok(a)
    f = f[(f["workspace_id"] == WS) & f["regime_key"].notna()]
    g = f.groupby("regime_key")["best_oos_score"].agg(["count", "mean", "max"])
    return g.sort_values("mean", ascending=False).reset_index()


def _check_summary(got: pd.DataFrame, a: pd.DataFrame) -> None:
    exp = _expect_summary(a)
    assert list(got.columns) == ["regime_key", "tune_count", "avg_score", "max_score"]
    assert got["regime_key"].tolist() == exp["regime_key"].tolist()
    assert got["tune_count"].astype(int).tolist() == exp["count"].tolist()
    assert got["max_score"].astype(float).tolist() == exp["max"].tolist()
    assert got["avg_score"].astype(float).tolist() == pytest.approx(exp["mean"].tolist(), rel=1e-12)


def _key_distance(a: str, b: str) -> int | None:
    """Hand-written tag distance (independent of ``tunes.key_distance``)."""
    pa_, pb = a.split("|"), b.split("|")
    if pa_[:2] != pb[:2]:
        return None
    return sum(x != y for x, y in zip(pa_[2:], pb[2:], strict=True))


def _add_other_workspace(execute: Callable[[str], object]) -> None:
    """Rows of another workspace with the sample's keys and better scores: a query that ignored
    ``workspace_id`` would return them first."""
    for i, (trend, vol) in enumerate([("trending", "_"), ("downtrend", "high_vol")]):
        key = f"{K}{trend}|{vol}|noisy"
        execute(
            "INSERT INTO backtest_tunes (id, workspace_id, strategy_entity_id, regime_key, "
            "trend_tag, vol_tag, efficiency_tag, best_oos_score, best_oos_params) VALUES "
            f"('0b000000-0000-4000-8000-00000000000{i}', 'intruder', 'x', '{key}', '{trend}', "
            f"{'NULL' if vol == '_' else repr(vol)}, 'noisy', 99.0, '{{\"z\": 1}}')"
        )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def study() -> TuneStudy:
    from research.attribution.service import load_tune_study

    return load_tune_study()


@pytest.fixture(scope="module")
def duck_file(study: TuneStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample tunes written to a new DuckDB file, plus an intruding workspace."""
    path = tmp_path_factory.mktemp("duck") / "lab.duckdb"
    tunes_db.populate(path, study.attributed, study.records, write=True)
    con = duckdb.connect(str(path))
    _add_other_workspace(con.execute)
    con.close()
    return path


@pytest.fixture()
def pre032(pg_url: str) -> str:
    _pre_032(pg_url)
    return pg_url


# --------------------------------------------------------------------------- PostgreSQL


def test_migration_on_postgres_keeps_existing_rows_and_adds_the_seed_schema(
    study: TuneStudy, pre032: str
) -> None:
    url = pre032
    a, records = study.attributed, study.records
    before, runs_before = _pg(url, DUMP_TUNES), _pg(url, DUMP_RUNS)
    cols_before = _pg_columns(url)
    assert len(before) == len(PRE_TUNES) + len(OTHER_IDS) and len(runs_before) == 1

    rep = tunes_db.populate(url, a, records, write=True)
    assert rep.written and rep.kind == "postgresql"
    assert rep.added_columns == tuple(COLS)
    assert rep.added_indexes == (
        "idx_tunes_regime_key",
        "idx_tunes_trend_vol",
        "idx_tunes_best_oos_score",
        "idx_tunes_workspace_regime",
    )
    assert rep.inserted_tunes == 36 - len(PRE_TUNES)  # the sample has 36 tunes
    assert rep.inserted_runs == records["run_id"].nunique() - 1 == 575  # 36 x 16 runs, one known
    assert rep.updated == rep.attributed == 36 and rep.not_attributed == {}

    after = {r[0]: r for r in _pg(url, DUMP_TUNES)}
    assert [after[r[0]] for r in before] == before  # pre-existing columns byte-for-byte
    assert len(after) == len(before) + 32
    runs_after = {r[0]: r for r in _pg(url, DUMP_RUNS)}
    assert runs_after[runs_before[0][0]] == runs_before[0] and len(runs_after) == 576

    # rows not in the file: every migration column still NULL
    others = _pg(
        url,
        f"SELECT {', '.join(COLS)} FROM backtest_tunes WHERE id = ANY(%s::uuid[])",
        ([u for u, _, _ in OTHER_IDS],),
    )
    assert others == [(None,) * len(COLS)] * len(OTHER_IDS)

    # the 11 columns with the seed's types, all nullable; the old ones unchanged
    cols = _pg_columns(url)
    assert {c: cols[c] for c in cols_before} == cols_before
    assert {c: cols[c] for c in COLS} == {
        "regime_schema_version": ("text", "YES"),
        "tag_ruleset_id": ("text", "YES"),
        "regime_key": ("text", "YES"),
        "regime_fingerprint": ("text", "YES"),
        "trend_tag": ("text", "YES"),
        "vol_tag": ("text", "YES"),
        "efficiency_tag": ("text", "YES"),
        "best_oos_score": ("double precision", "YES"),
        "best_oos_params": ("jsonb", "YES"),
        "best_oos_run_id": ("uuid", "YES"),
        "baseline_oos_score": ("double precision", "YES"),
    }
    fks = _pg(
        url,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'backtest_tunes'::regclass AND contype = 'f'",
    )
    assert fks == [("FOREIGN KEY (best_oos_run_id) REFERENCES backtest_runs(id)",)]
    idx = _pg_indexes(url)
    expected = {
        "idx_tunes_regime_key": "(regime_key) WHERE (regime_key IS NOT NULL)",
        "idx_tunes_trend_vol": "(trend_tag, vol_tag) WHERE (trend_tag IS NOT NULL)",
        "idx_tunes_best_oos_score": (
            "(best_oos_score DESC NULLS LAST) WHERE (best_oos_score IS NOT NULL)"
        ),
        "idx_tunes_workspace_regime": "(workspace_id, regime_key) WHERE (regime_key IS NOT NULL)",
    }
    for name, tail in expected.items():
        assert idx[name].endswith("USING btree " + tail), idx[name]


def test_populated_values_equal_the_attribution_and_the_leaderboard(
    study: TuneStudy, pre032: str
) -> None:
    """Seed items 5, 7 and 10: every column populated, tags match the key, best OOS score,
    params and run from leaderboard[0] (highest in-sample sharpe), baseline from the baseline
    run — recomputed here from the records."""
    url = pre032
    a, r = study.attributed, study.records
    tunes_db.populate(url, a, r, write=True)
    rows = _pg(
        url,
        f"SELECT id::text, {', '.join(COLS).replace('_run_id', '_run_id::text')} "
        "FROM backtest_tunes WHERE workspace_id = %s AND strategy_entity_id <> 'hand_made'",
        (WS,),
    )
    got = {row[0]: dict(zip(COLS, row[1:], strict=True)) for row in rows}
    assert len(got) == 36
    for t in a.itertuples(index=False):
        g = got[tune_uuid(t.tune_id)]
        want = {c: getattr(t, c) for c in COLS}
        want = {c: (None if not isinstance(v, str) and pd.isna(v) else v) for c, v in want.items()}
        want["best_oos_params"] = json.loads(want["best_oos_params"])
        assert g == want, t.tune_id

    # independent recomputation from the records
    ins = r[r["split"] == "is"].sort_values(
        ["tune_id", "sharpe", "run_id"], ascending=[True, False, True]
    )
    best_run = ins.drop_duplicates("tune_id").set_index("tune_id")["run_id"]
    oos = r[r["split"] == "oos"].set_index("run_id")
    params = [c for c in r.columns if c.startswith("param_")]
    base = r[(r["split"] == "oos") & r["is_baseline"].astype(bool)].set_index("tune_id")["sharpe"]
    for tid, run in best_run.items():
        g = got[tune_uuid(tid)]
        assert g["best_oos_score"] == float(oos.loc[run, "sharpe"])
        assert g["best_oos_params"] == {c[6:]: float(oos.loc[run, c]) for c in params}
        assert g["best_oos_run_id"] == run_uuid(run)
        assert g["baseline_oos_score"] == float(base[tid])
        key = g["regime_key"]
        schema, ruleset, trend, vol, eff = key.split("|")
        assert (g["regime_schema_version"], g["tag_ruleset_id"]) == (schema, ruleset)
        assert (schema, ruleset) == ("regime_v1_1", "default_v1")
        assert [g["trend_tag"], g["vol_tag"], g["efficiency_tag"]] == [
            None if x == "_" else x for x in (trend, vol, eff)
        ]
        assert g["regime_fingerprint"] == hashlib.sha256(key.encode()).hexdigest()
    # a hand-checked tune: TUNE-SPX-01's best in-sample run is R13
    spx01 = got[tune_uuid("TUNE-SPX-01")]
    assert best_run["TUNE-SPX-01"] == "TUNE-SPX-01-R13"
    assert spx01["regime_key"] == K + "trending|_|noisy" and spx01["vol_tag"] is None
    assert spx01["best_oos_score"] == float(oos.loc["TUNE-SPX-01-R13", "sharpe"])
    # the best run id points at the stored run, whose params and OOS sharpe are the same
    joined = _pg(
        url,
        "SELECT t.best_oos_params = r.params, t.best_oos_score = (r.metrics_oos->>'sharpe')::float8"
        " FROM backtest_tunes t JOIN backtest_runs r ON r.id = t.best_oos_run_id",
    )
    assert joined == [(True, True)] * 36


def test_dry_run_changes_nothing_and_a_second_write_changes_nothing(
    study: TuneStudy, pre032: str
) -> None:
    url = pre032
    a, r = study.attributed, study.records
    state = (_pg(url, DUMP_TUNES), _pg(url, DUMP_RUNS), _pg_columns(url), _pg_indexes(url))

    dry = tunes_db.populate(url, a, r, write=False)
    assert not dry.written
    assert dry.added_columns == tuple(COLS) and len(dry.added_indexes) == 4
    assert (dry.inserted_tunes, dry.inserted_runs, dry.updated) == (32, 575, 36)
    text = dry.describe()
    assert text.endswith("— dry run, nothing written")
    assert "would add columns regime_schema_version" in text
    assert "would insert 32 tunes and 575 runs" in text
    assert "would set the regime columns on 36 of 36 attributed tunes" in text
    assert (_pg(url, DUMP_TUNES), _pg(url, DUMP_RUNS), _pg_columns(url), _pg_indexes(url)) == state

    first = tunes_db.populate(url, a, r, write=True)
    assert (first.inserted_tunes, first.inserted_runs, first.updated) == (32, 575, 36)
    full = f"SELECT *, {', '.join(c + '::text' for c in COLS)} FROM backtest_tunes ORDER BY id"
    snapshot = (_pg(url, full), _pg(url, "SELECT * FROM backtest_runs ORDER BY id"))
    second = tunes_db.populate(url, a, r, write=True)
    assert second.added_columns == () and second.added_indexes == ()
    assert (second.inserted_tunes, second.inserted_runs, second.updated) == (0, 0, 0)
    assert "regime columns all present" in second.describe()
    assert "on 0 of 36 attributed tunes" in second.describe()
    assert (_pg(url, full), _pg(url, "SELECT * FROM backtest_runs ORDER BY id")) == snapshot

    # one changed value: exactly that row is updated
    changed = a.copy()
    changed.loc[changed["tune_id"] == "TUNE-IXIC-05", "best_oos_score"] = 7.5
    third = tunes_db.populate(url, changed, r, write=True)
    assert third.updated == 1
    assert _pg(
        url, "SELECT best_oos_score FROM backtest_tunes WHERE id = %s", (tune_uuid("TUNE-IXIC-05"),)
    ) == [(7.5,)]


def test_seed_queries_match_pandas_and_duckdb(
    study: TuneStudy, pre032: str, duck_file: Path
) -> None:
    url = pre032
    a = study.attributed
    tunes_db.populate(url, a, study.records, write=True)
    _add_other_workspace(lambda sql: _pg(url, sql))
    keys = sorted(set(_ok(a)["regime_key"]))
    assert len(keys) == 9
    for key in keys:
        pg = tunes_db.run_query(url, "best_by_key", WS, key)
        dk = tunes_db.run_query(duck_file, "best_by_key", WS, key)
        assert list(pg.columns) == ["strategy_entity_id", "best_oos_score", "best_oos_params"]
        assert _got(pg) == _expect_best_by_key(a, key) and len(pg) >= 1
        assert pg.to_dict("records") == dk.to_dict("records")
    # the largest key has exactly 10 tunes: LIMIT 10 keeps all of them
    assert len(tunes_db.run_query(url, "best_by_key", WS, K + "trending|_|noisy")) == 10
    pairs = _ok(a)[["trend_tag", "vol_tag"]].dropna().drop_duplicates()
    assert len(pairs) == 6
    for trend, vol in pairs.itertuples(index=False):
        pg = tunes_db.run_query(url, "best_by_trend_vol", WS, trend, vol)
        dk = tunes_db.run_query(duck_file, "best_by_trend_vol", WS, trend, vol)
        assert _got(pg) == _expect_best_by_trend_vol(a, trend, vol) and len(pg) >= 1
        assert pg.to_dict("records") == dk.to_dict("records")
    # trending + low_vol: 8 tunes, best first
    tl = tunes_db.run_query(url, "best_by_trend_vol", WS, "trending", "low_vol")
    assert len(tl) == 8 and tl["best_oos_score"].is_monotonic_decreasing
    pg = tunes_db.run_query(url, "summary", WS)
    dk = tunes_db.run_query(duck_file, "summary", WS)
    _check_summary(pg, a)
    _check_summary(dk, a)
    assert pg[["regime_key", "tune_count", "max_score"]].to_dict("records") == dk[
        ["regime_key", "tune_count", "max_score"]
    ].to_dict("records")
    assert pg["avg_score"].tolist() == pytest.approx(dk["avg_score"].tolist(), rel=1e-12)
    assert pg.set_index("regime_key")["tune_count"].to_dict()[K + "trending|_|noisy"] == 10
    # the intruding workspace is only visible under its own id
    assert _got(tunes_db.run_query(url, "best_by_key", "intruder", K + "trending|_|noisy")) == [
        ("x", 99.0, {"z": 1})
    ]


def test_queries_use_the_indexes_on_postgres(study: TuneStudy, pre032: str) -> None:
    """Seed items 8-9: among 5,000 tunes of 50 other workspaces (all low_vol, keys shared with
    the sample), the workspace + key and the trend + vol lookups go through the 032 indexes."""
    url = pre032
    a = study.attributed
    tunes_db.populate(url, a, study.records, write=True)
    _pg(
        url,
        "INSERT INTO backtest_tunes (id, workspace_id, strategy_entity_id, regime_schema_version,"
        " tag_ruleset_id, regime_key, regime_fingerprint, trend_tag, vol_tag, efficiency_tag,"
        " best_oos_score, best_oos_params, baseline_oos_score) "
        "SELECT gen_random_uuid(), 'ws-' || (g % 50), 'strat-' || (g % 7), 'regime_v1_1',"
        f" 'default_v1', '{K}' || t.tag || '|low_vol|noisy', md5(g::text), t.tag, 'low_vol',"
        " 'noisy', (g % 1000) / 100.0, '{\"g\": 1}'::jsonb, 0 "
        "FROM generate_series(1, 5000) AS g, "
        "LATERAL (SELECT (ARRAY['trending', 'flat', 'uptrend'])[1 + g % 3] AS tag) AS t",
    )
    _pg(url, "ANALYZE backtest_tunes")
    assert _pg(url, "SELECT count(*) FROM backtest_tunes") == [(5000 + 36 + len(OTHER_IDS),)]
    key = K + "trending|low_vol|noisy"  # 8 sample tunes, ~1,667 of other workspaces
    plan = tunes_db.explain(url, "best_by_key", WS, key)
    assert "idx_tunes_workspace_regime" in plan or "idx_tunes_regime_key" in plan, plan
    assert "Seq Scan" not in plan, plan
    plan = tunes_db.explain(url, "best_by_trend_vol", WS, "downtrend", "high_vol")
    assert "idx_tunes_trend_vol" in plan and "Seq Scan" not in plan, plan
    # still the right rows
    assert _got(tunes_db.run_query(url, "best_by_key", WS, key)) == _expect_best_by_key(a, key)
    got = _got(tunes_db.run_query(url, "best_by_trend_vol", WS, "downtrend", "high_vol"))
    assert got == _expect_best_by_trend_vol(a, "downtrend", "high_vol") and len(got) == 4
    _check_summary(tunes_db.run_query(url, "summary", WS), a)


# --------------------------------------------------------------------------- fallback


def test_best_with_fallback(study: TuneStudy, duck_file: Path) -> None:
    a = _ok(study.attributed)
    rare = K + "flat|high_vol|noisy"  # one tune
    assert (a["regime_key"] == rare).sum() == 1
    res = tunes_db.best_with_fallback(duck_file, WS, rare, min_tunes=3)
    assert res.distance == 1 and res.key == rare
    near = a[[(d := _key_distance(rare, k)) is not None and d <= 1 for k in a["regime_key"]]]
    assert set(res.keys_used) == set(near["regime_key"]) and len(res.keys_used) == 6
    assert len(res.rows) == len(near) == 16
    got = zip(res.rows["strategy_entity_id"], res.rows["best_oos_score"], strict=True)
    want = zip(near["strategy_id"], near["best_oos_score"], strict=True)
    assert sorted(got) == sorted(want)
    assert res.rows["best_oos_score"].is_monotonic_decreasing
    assert {_key_distance(rare, k) for k in res.rows["regime_key"]} == {0, 1}
    assert "fell back" in res.text() and "within tag distance 1 (16 tunes)" in res.text()

    common = K + "trending|_|noisy"  # ten tunes
    res = tunes_db.best_with_fallback(duck_file, WS, common, min_tunes=3)
    assert res.distance == 0 and res.keys_used == (common,) and len(res.rows) == 10
    assert set(res.rows["regime_key"]) == {common}
    assert res.text() == f"{common}: 10 tunes with this exact key"

    # fewer than min_tunes at the exact key (8 < 9): widened to distance 1
    res = tunes_db.best_with_fallback(duck_file, WS, K + "trending|low_vol|noisy", min_tunes=9)
    assert res.distance == 1 and len(res.rows) >= 9 and "fell back" in res.text()
    # another schema version: nothing comparable
    res = tunes_db.best_with_fallback(duck_file, WS, "regime_v9|default_v1|flat|_|noisy")
    assert res.distance is None and res.rows.empty and "no tunes" in res.text()


# --------------------------------------------------------------------------- uplift summary


def test_the_sample_uplift_is_clustered_by_blocks_of_years(study: TuneStudy) -> None:
    """On the sample's 34 evaluated tunes (OOS years 2002-2018): blocks of 3 years aligned on
    2002 (6 blocks), the baseline interval the CR1 t-interval on them, worked by hand; the
    notebook summary carries the blocks and the rule."""
    import math

    from scipy import stats

    from research.attribution import tunes as tn

    uplift = tn.uplift(study.records, study.attributed)
    summary = study.summary(uplift, tn.drift(study.labels, study.attributed))
    per = uplift.per_tune
    years = pd.to_datetime(per["oos_start"]).dt.year.to_numpy()
    assert (years.min(), years.max(), len(per)) == (2002, 2018, 34)
    blocks = (years - 2002) // 3
    d = (per["selected_oos"] - per["baseline_oos"]).to_numpy(float)
    e = d - d.mean()
    g, n = 6, len(d)
    # CR1: G/(G-1) * (N-1)/(N-K) (K = 1 coefficient) * the squared block sums of the residuals
    var = g / (g - 1) * sum(e[blocks == b].sum() ** 2 for b in range(g))
    se = math.sqrt(var) / n
    half = stats.t.ppf(0.975, g - 1) * se
    row = uplift.row("baseline")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row["p"] == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, g - 1))
    assert (row["clusters"], row["years"], row["block_years"]) == (6, 17, 3)
    assert summary["uplift_blocks"] == 6 and summary["uplift_block_years"] == 3
    assert summary["min_blocks_for_verdict"] == tn.MIN_BLOCKS_FOR_VERDICT == 5
    assert summary["uplift_method"] == tn.UPLIFT_METHOD and "blocks of" in tn.UPLIFT_METHOD
    assert summary["uplift_verdict"] == uplift.verdict()
    assert "34 tunes in 6 blocks of years" in summary["uplift_verdict"]


# --------------------------------------------------------------------------- bad input


def test_unreachable_postgres_is_a_clear_error(study: TuneStudy, tmp_path: Path) -> None:
    with pytest.raises(tunes_db.DatabaseError, match="cannot connect") as exc:
        tunes_db.populate(REFUSED, study.attributed, study.records, write=True)
    assert "s3cret" not in str(exc.value) and "lab:***@127.0.0.1:1" in str(exc.value)
    with pytest.raises(tunes_db.DatabaseError, match="cannot connect"):
        tunes_db.run_query(REFUSED, "summary", WS)
    res = _cli("tune-query", "summary", "--db", REFUSED)
    assert res.returncode == 1 and "error:" in res.stderr and "cannot connect" in res.stderr
    assert "s3cret" not in res.stderr + res.stdout


def test_missing_tables_or_columns_on_postgres(study: TuneStudy, pg_url: str) -> None:
    a, r = study.attributed, study.records
    _pg(pg_url, "CREATE TABLE backtest_runs (id uuid PRIMARY KEY)")
    with pytest.raises(tunes_db.DatabaseError, match="no table backtest_tunes"):
        tunes_db.populate(pg_url, a, r, write=True)
    tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    assert _pg(pg_url, tables) == [("backtest_runs",)]  # nothing created
    _pg(pg_url, "CREATE TABLE backtest_tunes (id uuid PRIMARY KEY, strategy_entity_id text)")
    with pytest.raises(tunes_db.DatabaseError, match="workspace_id") as exc:
        tunes_db.populate(pg_url, a, r, write=True)
    assert "backtest_tunes" in str(exc.value)
    assert list(_pg_columns(pg_url)) == ["id", "strategy_entity_id"]  # no 032 columns
    assert _pg(pg_url, "SELECT count(*) FROM backtest_runs") == [(0,)]
    # the queries on a table without the 032 columns: a DatabaseError, not a traceback
    with pytest.raises(tunes_db.DatabaseError, match="does not exist"):
        tunes_db.run_query(pg_url, "summary", WS)


def test_a_failure_after_the_migration_rolls_everything_back(study: TuneStudy, pg_url: str) -> None:
    """backtest_runs has a NOT NULL column the lab does not fill: the run insert fails after
    the ALTERs and the tune inserts ran — all of it is rolled back."""
    _pg(
        pg_url,
        PRE_032_PG.replace(
            "created_at timestamptz DEFAULT now()\n);",
            "created_at timestamptz DEFAULT now(), owner text NOT NULL\n);",
            1,
        ),
    )
    assert "owner" in _pg_columns(pg_url, "backtest_runs")
    cols, idx = _pg_columns(pg_url), _pg_indexes(pg_url)
    with pytest.raises(tunes_db.DatabaseError, match="rolled back, nothing was written") as exc:
        tunes_db.populate(pg_url, study.attributed, study.records, write=True)
    assert "owner" in str(exc.value)
    assert _pg_columns(pg_url) == cols and _pg_indexes(pg_url) == idx
    assert _pg(pg_url, "SELECT count(*) FROM backtest_tunes") == [(0,)]


def test_target_parsing_and_masking() -> None:
    t = tunes_db.parse_target("postgresql://alice:pa55word@db.example:5432/lab")
    assert t.kind == "postgresql" and t.shown == "postgresql://alice:***@db.example:5432/lab"
    assert tunes_db.parse_target("postgres://u:x%40y@h/d").shown == "postgres://u:***@h/d"
    assert tunes_db.parse_target("postgresql://u@h/d").shown == "postgresql://u@h/d"
    assert tunes_db.parse_target("some/file.duckdb") == tunes_db.Target(
        "duckdb", "some/file.duckdb"
    )
    assert tunes_db.parse_target(None) == tunes_db.Target(
        "duckdb", str(PATHS.root / "data" / "lab.duckdb")
    )


def test_password_in_the_query_string_is_masked() -> None:
    shown = tunes_db.parse_target("postgresql://db.example/lab?user=alice&password=pa55word").shown
    assert "pa55word" not in shown


def test_query_arguments_and_missing_duckdb_file(tmp_path: Path, duck_file: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(tunes_db.DatabaseError, match="no such DuckDB file"):
        tunes_db.run_query(missing, "summary", WS)
    assert not missing.exists()
    with pytest.raises(tunes_db.DatabaseError, match="unknown query 'best'"):
        tunes_db.run_query(duck_file, "best", WS)
    with pytest.raises(tunes_db.DatabaseError, match="query summary takes 1 parameters, got 2"):
        tunes_db.run_query(duck_file, "summary", WS, "extra")
    with pytest.raises(
        tunes_db.DatabaseError, match="query best_by_trend_vol takes 3 parameters, got 2"
    ):
        tunes_db.run_query(duck_file, "best_by_trend_vol", WS, "flat")


# --------------------------------------------------------------------------- DuckDB


def test_duckdb_file_is_created_only_on_write(study: TuneStudy, tmp_path: Path) -> None:
    a, r = study.attributed, study.records
    # a file in a folder that does not exist is not a path the user meant: refused, nothing made
    # (before, the folder was created)
    nowhere = tmp_path / "sub" / "lab.duckdb"
    for write in (False, True):
        with pytest.raises(tunes_db.DatabaseError, match="folder .*sub does not exist"):
            tunes_db.populate(nowhere, a, r, write=write)
    assert not nowhere.parent.exists()
    path = tmp_path / "lab.duckdb"
    dry = tunes_db.populate(path, a, r, write=False)
    assert not path.exists() and sorted(tmp_path.iterdir()) == []
    assert dry.created_tables == (f"{path} (new file)", "backtest_runs", "backtest_tunes")
    assert (dry.inserted_tunes, dry.inserted_runs, dry.updated) == (36, 576, 36)
    assert "would create" in dry.describe() and "dry run, nothing written" in dry.describe()

    rep = tunes_db.populate(path, a, r, write=True)
    assert path.exists() and rep.written
    assert rep.created_tables == ("backtest_runs", "backtest_tunes")
    assert (rep.inserted_tunes, rep.inserted_runs, rep.updated) == (36, 576, 36)

    # the schema is PRE_032_DUCKDB + MIGRATION_032_DUCKDB, run by hand on an empty database
    ref = duckdb.connect(":memory:")
    ref.execute(tunes_db.PRE_032_DUCKDB)
    ref.execute(tunes_db.MIGRATION_032_DUCKDB)
    con = duckdb.connect(str(path), read_only=True)
    schema = (
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    )
    indexes = "SELECT index_name, sql FROM duckdb_indexes() ORDER BY index_name"
    assert con.execute(schema).fetchall() == ref.execute(schema).fetchall()
    assert con.execute(indexes).fetchall() == ref.execute(indexes).fetchall()
    types = {c: t for _, c, t, _ in con.execute(schema).fetchall() if c in COLS}
    assert types == {
        **dict.fromkeys(COLS[:7], "VARCHAR"),
        "best_oos_score": "DOUBLE",
        "best_oos_params": "JSON",
        "best_oos_run_id": "UUID",
        "baseline_oos_score": "DOUBLE",
    }
    assert [n for n, _ in con.execute(indexes).fetchall()] == sorted(tunes_db.INDEXES)
    keyed = "SELECT count(*) FROM backtest_tunes WHERE regime_key IS NOT NULL"
    assert con.execute(keyed).fetchall() == [(36,)]
    assert con.execute("SELECT count(*) FROM backtest_runs").fetchall() == [(576,)]
    con.close()
    ref.close()
    # the PostgreSQL text does not run on DuckDB (JSONB, partial / DESC NULLS LAST indexes)
    pre = duckdb.connect(":memory:")
    pre.execute(tunes_db.PRE_032_DUCKDB)
    with pytest.raises(duckdb.Error):
        pre.execute(tunes_db.MIGRATION_032)
    pre.close()

    # idempotent on DuckDB too
    again = tunes_db.populate(path, a, r, write=True)
    assert (again.inserted_tunes, again.inserted_runs, again.updated) == (0, 0, 0)
    assert again.created_tables == () and again.added_columns == ()


def test_duckdb_dry_run_on_an_existing_pre_032_file(study: TuneStudy, tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(tunes_db.PRE_032_DUCKDB)
    con.execute(
        "INSERT INTO backtest_tunes (id, workspace_id, strategy_entity_id, tune_name, status, "
        "created_at) VALUES (?, 'regime-lab', 'mine', 'TUNE-SPX-02', 'done', "
        "'2021-05-06 07:08:09')",
        [tune_uuid("TUNE-SPX-02")],
    )
    before = con.execute("SELECT * FROM backtest_tunes").fetchall()
    names = "SELECT column_name FROM information_schema.columns WHERE table_name = 'backtest_tunes'"
    cols = con.execute(names).fetchall()
    con.close()
    dry = tunes_db.populate(path, study.attributed, study.records, write=False)
    assert dry.created_tables == () and dry.added_columns == tuple(COLS)
    assert (dry.inserted_tunes, dry.updated) == (35, 36)
    con = duckdb.connect(str(path))
    assert con.execute("SELECT * FROM backtest_tunes").fetchall() == before
    assert con.execute(names).fetchall() == cols
    assert con.execute("SELECT count(*) FROM backtest_runs").fetchall() == [(0,)]
    con.close()
    tunes_db.populate(path, study.attributed, study.records, write=True)
    con = duckdb.connect(str(path))
    n_old = len(before[0])
    rows = con.execute(
        f"SELECT * EXCLUDE ({', '.join(COLS)}), regime_key FROM backtest_tunes WHERE id = ?",
        [tune_uuid("TUNE-SPX-02")],
    ).fetchall()
    con.close()
    assert rows[0][:n_old] == before[0] and rows[0][n_old] == K + "downtrend|high_vol|noisy"


# --------------------------------------------------------------------------- CLI


def test_cli_duckdb_dry_run_write_and_queries(tmp_path: Path) -> None:
    db, dry_db = tmp_path / "lab.duckdb", tmp_path / "dry.duckdb"
    res, written = _clis(("tunes", "--db", str(dry_db)), ("tunes", "--db", str(db), "--write"))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "36 tunes from the sample tunes" in out
    assert "dry run, nothing written" in out and not dry_db.exists()
    assert "would insert 36 tunes and 576 runs" in out
    lines = out.splitlines()
    columns = ["vs", "n", "mean_diff", "ci_low", "ci_high", "p", "clusters", "years", "block_years"]
    head = next(i for i, s in enumerate(lines) if s.split() == columns)
    assert [lines[head + j].split()[0] for j in range(1, 5)] == [
        "baseline",
        "regime-blind",
        "tuned",
        "random",
    ]
    assert "Current regime of " in out and "total variation" in out

    res = written
    assert res.returncode == 0, res.stderr
    assert db.exists() and "dry run" not in res.stdout
    assert "insert 36 tunes and 576 runs" in res.stdout

    res = _cli("tune-query", "summary", "--db", str(db))
    assert res.returncode == 0, res.stderr
    summary = {
        parts[0]: int(parts[1]) for parts in (s.split() for s in res.stdout.splitlines()[1:])
    }
    assert summary == {
        K + "trending|_|noisy": 10,
        K + "trending|low_vol|noisy": 8,
        K + "downtrend|high_vol|noisy": 4,
        K + "trending|high_vol|noisy": 4,
        K + "flat|low_vol|noisy": 3,
        K + "uptrend|_|noisy": 2,
        K + "flat|_|noisy": 2,
        K + "uptrend|high_vol|noisy": 2,
        K + "flat|high_vol|noisy": 1,
    }

    key = K + "downtrend|high_vol|noisy"
    res = _cli("tune-query", "best-key", key, "--db", str(db))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{key}: 4 tunes with this exact key"
    assert lines[1].split()[:3] == ["strategy_entity_id", "best_oos_score", "best_oos_params"]
    assert len(lines) == 6 and lines[2].split()[1] == "2.062545"  # TUNE-SPX-02 leads
    res = _cli("tune-query", "best-key", K + "flat|high_vol|noisy", "--db", str(db))
    assert res.returncode == 0
    assert "fell back to 6 keys within tag distance 1 (16 tunes)" in res.stdout
    res = _cli("tune-query", "best-trend-vol", "trending", "low_vol", "--db", str(db))
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 9  # header + 8 tunes


def _without_oos(tmp_path: Path, tune: str) -> Path:
    src = (PATHS.sample / "tunes.csv").read_text().splitlines(keepends=True)
    kept = [s for s in src if not (s.startswith(tune + ",") and ",oos," in s)]
    assert len(src) - len(kept) == 16
    path = tmp_path / "tunes.csv"
    path.write_text("".join(kept))
    return path


def test_cli_unattributable_tune(tmp_path: Path) -> None:
    tunes = _without_oos(tmp_path, "TUNE-SPX-05")
    db, refused_db = tmp_path / "lab.duckdb", tmp_path / "refused.duckdb"
    res, allowed = _clis(
        ("tunes", "--tunes", str(tunes), "--db", str(refused_db), "--write"),
        ("tunes", "--tunes", str(tunes), "--db", str(db), "--write", "--allow-unattributed"),
    )
    assert res.returncode == 1
    assert "TUNE-SPX-05: no OOS rows" in res.stderr and "Nothing was written" in res.stderr
    assert not refused_db.exists()

    res = allowed
    assert res.returncode == 0, res.stderr
    assert "1 tunes left null: TUNE-SPX-05: no OOS rows" in res.stderr
    assert "1 tunes not attributed (left null)" in res.stdout
    con = duckdb.connect(str(db), read_only=True)
    nulls = con.execute(
        f"SELECT {', '.join(COLS)} FROM backtest_tunes WHERE id = ?", [tune_uuid("TUNE-SPX-05")]
    ).fetchall()
    counts = con.execute(
        "SELECT count(*), count(regime_key), count(best_oos_score) FROM backtest_tunes"
    ).fetchall()
    con.close()
    assert nulls == [(None,) * len(COLS)] and counts == [(36, 35, 35)]


def test_cli_postgres_end_to_end(pre032: str) -> None:
    url = pre032
    before = _pg(url, DUMP_TUNES)
    res, refused = _clis(("tunes", "--db", url, "--write"), ("tunes", "--db", REFUSED))
    assert refused.returncode == 1 and "error:" in refused.stderr
    assert "cannot connect" in refused.stderr and "s3cret" not in refused.stderr
    assert res.returncode == 0, res.stderr
    assert "insert 32 tunes and 575 runs" in res.stdout
    after = {r[0]: r for r in _pg(url, DUMP_TUNES)}
    assert [after[r[0]] for r in before] == before
    assert _pg(url, "SELECT count(regime_key), count(best_oos_run_id) FROM backtest_tunes") == [
        (36, 36)
    ]
    res = _cli("tune-query", "summary", "--db", url)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1].split()[:2] == [K + "downtrend|high_vol|noisy", "4"]
    res = _cli("tune-query", "best-trend-vol", "downtrend", "high_vol", "--db", url, "--explain")
    assert res.returncode == 0, res.stderr
    assert "Limit" in res.stdout and len(res.stdout.split("Limit")[0].splitlines()) == 5
