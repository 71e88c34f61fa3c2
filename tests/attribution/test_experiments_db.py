"""Seed-001 write-back into a user's SQLite experiments database: dry run by default, the
seed's columns added in one transaction, nothing else changed, idempotent, all or nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from research.attribution import experiments_db
from research.config import PATHS

EXE = Path(sys.executable).with_name("research")
SEED = [c for c, _ in experiments_db.SEED_COLUMNS]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "attribute", "experiments", "--no-hmm", *args], capture_output=True, text=True
    )


@pytest.fixture()
def user_db(tmp_path: Path) -> Path:
    """The sample experiments in a SQLite file, with a column of the user's own."""
    frame = pd.read_csv(PATHS.sample / "experiments.csv").assign(notes="kept as is")
    path = tmp_path / "experiments.db"
    with sqlite3.connect(path) as con:
        frame.to_sql("experiments", con, index=False)
    return path


def _dump(path: Path, columns: str = "*") -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT {columns} FROM experiments ORDER BY rowid").fetchall()


def test_dry_run_then_write_then_nothing_to_change(user_db: Path) -> None:
    before_bytes = user_db.read_bytes()
    before = _dump(user_db)
    res = _run("--db", str(user_db))
    assert res.returncode == 0, res.stderr
    assert "dry run, would: " in res.stdout and "on 608 experiments" in res.stdout
    assert user_db.read_bytes() == before_bytes  # a dry run writes nothing
    res = _run("--db", str(user_db), "--write")
    assert res.returncode == 0, res.stderr
    assert "updated 608 rows of experiments" in res.stdout
    with sqlite3.connect(user_db) as con:
        info = {r[1]: (r[2], r[3]) for r in con.execute("PRAGMA table_info(experiments)")}
    assert {c: info[c] for c in SEED} == {
        "dominant_regime": ("TEXT", 0),
        "avg_vix": ("REAL", 0),
        "avg_hmm_trend": ("REAL", 0),
        "avg_hmm_vol": ("REAL", 0),
        "regime_breakdown": ("TEXT", 0),
    }  # nullable columns only
    n_old = len(before[0])
    after = _dump(user_db)
    assert [row[:n_old] for row in after] == before  # every existing value unchanged
    row = dict(zip([*info], after[0], strict=True))
    assert row["dominant_regime"] == "NORMAL_VOL_NEUTRAL" and row["avg_hmm_trend"] is None
    assert row["avg_vix"] == pytest.approx(20.0789, abs=1e-4)
    res = _run("--db", str(user_db), "--write")
    assert res.returncode == 0 and "nothing to change" in res.stdout
    assert "updated 0 rows" in res.stdout and _dump(user_db) == after


def test_a_failed_write_leaves_the_file_as_it_was(user_db: Path) -> None:
    tagged = pd.DataFrame({"experiment_id": ["EXP-0001"], **{c: [None] for c in SEED}}).assign(
        dominant_regime=[["not", "bindable"]]
    )
    plan = experiments_db.plan(user_db, tagged)
    assert plan.add_columns == tuple(SEED)
    before = _dump(user_db)
    with pytest.raises(sqlite3.Error):
        experiments_db.apply(plan)
    with sqlite3.connect(user_db) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(experiments)")]
    assert not set(SEED) & set(cols) and _dump(user_db) == before  # rolled back, ALTERs too


def test_bad_databases_and_options(tmp_path: Path, user_db: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE runs (id TEXT)")
        con.execute("CREATE TABLE more (id TEXT)")
    res = _run("--db", str(other))
    assert res.returncode == 1 and "other.db" in res.stderr and "experiments" in res.stderr
    res = _run("--write")
    assert res.returncode == 1 and "--write needs --db" in res.stderr
    res = _run("--db", str(user_db), "--experiments", str(PATHS.sample / "experiments.csv"))
    assert res.returncode == 1 and "not both" in res.stderr
    res = _run("--db", str(user_db), "--metric", "sortino")
    assert res.returncode == 1 and "unknown metric 'sortino'" in res.stderr


def test_learned_configs_file(tmp_path: Path) -> None:
    import json

    from research.attribution.selector import RegimeConfigSelector

    out = tmp_path / "learned.json"
    res = _run("--learned-out", str(out))
    assert res.returncode == 0, res.stderr
    learned = json.loads(out.read_text())
    assert learned["regime_model"] == "vix_trend" and learned["sample"].startswith("in-sample")
    best = learned["regimes"]["ELEVATED_VOL_BEARISH"]
    assert best["config"] == "d0.20-0.30_pt50" and best["evidence"]["beats_runner_up"]
    assert best["params"]["profit_target_pct"] == 50.0 and len(best["source_experiments"]) == 5
    sel = RegimeConfigSelector(out)
    assert sel.config_for("ELEVATED_VOL_BEARISH") == best["params"]
    assert sel.config_for("NO_SUCH_REGIME") == learned["default"]["params"]
