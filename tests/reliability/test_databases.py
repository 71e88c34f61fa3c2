"""The user's data is sacred; databases fail fast and clearly.

The experiments write-back into a user's SQLite file writes only the lab's own columns, only those
the run computed, never a null over a value written earlier, matches ids by value and is never
held back by the analysis; ``attribute tunes`` refuses a ``--db`` that is neither a URL nor a
plausible file, stops on a locked PostgreSQL table naming it, and dry-runs a DuckDB file it may
not write; every numeric option and output is checked before any work; the results store reports
a failed commit's own error; and what the filesystem refuses is one line naming the path, with
nothing half-written.

Commands run in-process (``typer.testing.CliRunner`` on ``research.cli.app``); the full-disk
cases run a command in its own mount namespace with a tiny tmpfs
(``research.testing.filesystem.full_disk_command``), PostgreSQL cases on the session's
throwaway server.
"""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from research.attribution import experiments_db, tunes_db
from research.cli import app
from research.config import PATHS
from research.exceptions import OutputError, ResearchError
from research.optimize.grids import GridResult
from research.optimize.store import ResultStore
from research.testing.filesystem import full_disk_command, read_only

if TYPE_CHECKING:
    from research.attribution.service import TuneStudy

EXE = Path(sys.executable).with_name("research")
LAB = [c for c, _ in experiments_db.SEED_COLUMNS]


# --------------------------------------------------------------------------- helpers


def invoke(*args: str | Path) -> tuple[int, str, str]:
    """``research ARGS`` in-process: exit code, stdout, stderr (a traceback fails the test)."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def one_error_line(stderr: str) -> str:
    """The single ``error: ...`` line a refused command prints."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def sqlite_db(path: Path, frame: pd.DataFrame, **dtype: str) -> Path:
    with sqlite3.connect(path) as con:
        frame.to_sql("experiments", con, index=False, dtype=dtype or None)
    con.close()
    return path


def dump(path: Path, columns: str = "*") -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT {columns} FROM experiments ORDER BY rowid").fetchall()
    finally:
        con.close()


def grid(rows: int, days: int, name: str) -> GridResult:
    """A synthetic grid run: ``rows`` rows with ``days`` daily returns each."""
    table = pd.DataFrame(
        {
            "row_id": range(rows),
            "grid": name,
            "variant": [f"v{i}" for i in range(rows)],
            "tickers": "SPX",
            "sharpe": np.linspace(0.0, 1.0, rows),
        }
    )
    idx = pd.bdate_range("2000-01-03", periods=days)
    rets = np.random.default_rng(0).normal(0, 0.01, (days, rows))
    return GridResult(name, table, pd.DataFrame(rets, index=idx, columns=range(rows)))


def full_disk(script: str, mount: Path, size_kb: int = 64) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` with a ``size_kb`` tmpfs on ``mount``; skips where impossible."""
    cmd = full_disk_command(["sh", "-c", script], mount, size_kb=size_kb)
    if cmd is None:
        pytest.skip("no private tmpfs here (needs root and unshare)")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading any study fails the test: the command must refuse before any work."""
    from research.attribution import service

    def work(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the command started its work before checking its options")

    for name in ("load_signal_study", "load_experiment_study", "load_tune_study"):
        monkeypatch.setattr(service, name, work)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(PATHS.sample / "experiments.csv")


@pytest.fixture(scope="module")
def tagged_hmm() -> pd.DataFrame:
    """The sample experiments tagged with every lab column, as a run with the Markov model
    tags them (its two columns filled with made-up values: fitting the model here takes a
    minute, and which values they are does not matter)."""
    from research.attribution.service import load_experiment_study

    tagged = load_experiment_study(markov=False).tagged
    n = len(tagged)
    return tagged.assign(avg_hmm_trend=np.linspace(-1, 1, n), avg_hmm_vol=np.linspace(0, 1, n))


@pytest.fixture(scope="module")
def tune_study() -> TuneStudy:
    from research.attribution.service import load_tune_study

    return load_tune_study()


@pytest.fixture(scope="module")
def pg_db(pg_server: str) -> Iterator[str]:
    """A database of its own on the session's PostgreSQL server, with the tunes tables as they
    were before the regime columns."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE backtest_runs (id uuid PRIMARY KEY, tune_id uuid, params jsonb)")
        con.execute(
            "CREATE TABLE backtest_tunes (id uuid PRIMARY KEY, workspace_id text NOT NULL, "
            "strategy_entity_id text NOT NULL, status text)"
        )
    yield url
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------- 1. computed less


def test_a_run_without_hmm_keeps_the_hmm_values_written_earlier(
    tmp_path: Path, sample: pd.DataFrame, tagged_hmm: pd.DataFrame
) -> None:
    db = sqlite_db(tmp_path / "mine.db", sample.assign(notes="kept as is"))
    experiments_db.apply(experiments_db.plan(db, tagged_hmm))  # a run with the Markov model
    hmm = "experiment_id, avg_hmm_trend, avg_hmm_vol"
    before = dump(db, hmm)
    assert len(before) == len(sample) and all(v is not None for row in before for v in row)

    code, out, err = invoke("attribute", "experiments", "--db", db, "--write", "--no-hmm")
    assert code == 0, err
    assert dump(db, hmm) == before  # not nulled
    assert "avg_hmm_trend, avg_hmm_vol not computed in this run: left as they are" in out
    assert "updated 0 rows" in out  # the columns this run computed hold these values already

    # a value this run could not compute (null) never replaces one written earlier
    fewer = tagged_hmm.copy()
    fewer.loc[fewer.index[:5], "avg_vix"] = np.nan
    plan = experiments_db.plan(db, fewer)
    assert plan.kept == 5 and plan.updates == ()
    assert "5 earlier values kept where this run computed none" in plan.describe()


# --------------------------------------------------------------------------- 2. the user's column


def test_a_column_of_the_users_with_a_lab_name_is_refused(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    db = sqlite_db(tmp_path / "mine.db", sample.assign(avg_vix="my own"), avg_vix="TEXT")
    before = db.read_bytes()
    for mode in ("--write", "--dry-run"):
        code, out, err = invoke("attribute", "experiments", "--db", db, mode, "--no-hmm")
        line = one_error_line(err)
        assert code == 1 and out == ""
        assert "avg_vix is declared TEXT, the lab's is REAL" in line
        assert 'RENAME COLUMN "avg_vix"' in line and "--column-prefix lab_" in line
        assert db.read_bytes() == before

    code, out, err = invoke(
        "attribute", "experiments", "--db", db, "--write", "--no-hmm", "--column-prefix", "lab_"
    )
    assert code == 0, err
    assert f"updated {len(sample)} rows" in out
    rows = dump(db, "avg_vix, lab_avg_vix, lab_dominant_regime")
    assert {r[0] for r in rows} == {"my own"}  # the user's column untouched
    assert all(isinstance(r[1], float) and isinstance(r[2], str) for r in rows)

    # same name and type, but not added by the lab (origin): refused too
    real = sqlite_db(tmp_path / "real.db", sample.assign(avg_vix=12.5))
    tagged = pd.DataFrame({"experiment_id": sample["experiment_id"].astype(str), "avg_vix": 20.0})
    with pytest.raises(experiments_db.DatabaseError, match=r"avg_vix \(REAL\) was not added"):
        experiments_db.plan(real, tagged)
    # a column the lab added is its own: filled on later runs
    experiments_db.apply(experiments_db.plan(real, tagged, prefix="lab_"))
    again = experiments_db.plan(real, tagged.assign(avg_vix=21.0), prefix="lab_")
    assert again.add_columns == () and len(again.updates) == len(sample)
    with pytest.raises(ResearchError, match="--column-prefix must be letters"):
        experiments_db.plan(real, tagged, prefix="1; DROP TABLE experiments")


def test_a_tunes_column_of_another_type_is_refused(tmp_path: Path, tune_study: TuneStudy) -> None:
    """The same rule for ``backtest_tunes``: a regime column the table already has with another
    type is named, and nothing is written into it."""
    path = tmp_path / "lab.duckdb"
    con = duckdb.connect(str(path))
    con.execute(tunes_db.PRE_032_DUCKDB)
    con.execute("ALTER TABLE backtest_tunes ADD COLUMN regime_key INTEGER")
    con.close()
    before = path.read_bytes()
    for write in (False, True):
        with pytest.raises(
            tunes_db.DatabaseError, match="regime_key is integer, the migration's is TEXT"
        ):
            tunes_db.populate(path, tune_study.attributed, tune_study.records, write=write)
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- 3. ids by value


def test_integer_ids_in_an_untyped_column_are_matched_by_value(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    frame = sample.assign(experiment_id=range(1, len(sample) + 1))
    db = tmp_path / "ints.db"
    con = sqlite3.connect(db)
    con.execute(f"CREATE TABLE experiments ({', '.join(frame.columns)})")  # no declared types
    marks = ", ".join("?" * len(frame.columns))
    con.executemany(
        f"INSERT INTO experiments VALUES ({marks})", frame.astype(object).values.tolist()
    )
    con.commit()
    con.close()
    code, out, err = invoke("attribute", "experiments", "--db", db, "--write", "--no-hmm")
    assert code == 0, err
    assert f"updated {len(frame)} rows" in out
    assert dump(db, "typeof(experiment_id), count(*), count(dominant_regime)") == [
        ("integer", len(frame), len(frame))
    ]

    # REAL ids (1.0) and text ids read as the loader reads them, matched by the stored value
    for kind, ids in (("REAL", [1.0, 2.0]), ("TEXT", ["EXP-1", "EXP-2"])):
        path = tmp_path / f"{kind}.db"
        with sqlite3.connect(path) as c:
            c.execute(f"CREATE TABLE experiments (experiment_id {kind}, x)")
            c.executemany("INSERT INTO experiments VALUES (?, 0)", [(i,) for i in ids])
        c.close()
        keys = ["1", "2"] if kind == "REAL" else ids
        tagged = pd.DataFrame({"experiment_id": keys, "dominant_regime": ["A", "B"]})
        assert experiments_db.apply(experiments_db.plan(path, tagged)) == 2
        assert dump(path, "experiment_id, dominant_regime") == list(zip(ids, "AB", strict=True))
        # an id the table does not have: an error, never "success, 0 rows"
        with pytest.raises(experiments_db.DatabaseError, match="match no row by experiment_id"):
            experiments_db.plan(path, pd.DataFrame({"experiment_id": ["9"], "avg_vix": [1.0]}))
    # a row gone between the plan and the write: rolled back, named
    plan = experiments_db.plan(path, tagged.assign(dominant_regime=["C", "D"]))
    with sqlite3.connect(path) as c:
        c.execute("DELETE FROM experiments WHERE experiment_id = 'EXP-2'")
    c.close()
    with pytest.raises(experiments_db.DatabaseError, match="no row has experiment_id 'EXP-2'"):
        experiments_db.apply(plan)
    assert dump(path, "dominant_regime") == [("A",)]


# --------------------------------------------------------------------------- 4. the target


@pytest.mark.parametrize(
    ("db", "words"),
    [
        ("postgres//me@host/lab", "looks like a PostgreSQL URL missing '://'"),
        ("postgresql:me@host/lab", "looks like a URL but has no '://' after postgresql:"),
        ("mysql://me@host/lab", "unsupported URL scheme mysql://"),
        ("nowhere/lab.duckdb", "the folder nowhere does not exist"),
        (".", "is a folder; name a DuckDB file in it"),
    ],
)
def test_a_db_that_is_neither_a_url_nor_a_plausible_file_is_refused(
    db: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_work: None
) -> None:
    monkeypatch.chdir(tmp_path)
    for mode in ("--write", "--dry-run"):
        code, out, err = invoke("attribute", "tunes", "--db", db, mode)
        assert code == 1 and words in one_error_line(err), err
    assert list(tmp_path.iterdir()) == []  # no ./postgres/me@host/lab


# --------------------------------------------------------------------------- 5. a locked table


def test_a_locked_postgres_table_fails_naming_it(pg_db: str, tune_study: TuneStudy) -> None:
    import psycopg

    a, r = tune_study.attributed, tune_study.records
    holder = psycopg.connect(pg_db)
    try:
        # the holder lets go after 30 s at most, so a missing lock timeout fails, never hangs
        holder.execute("SET idle_in_transaction_session_timeout = '30s'")
        for hold, table in (
            ("LOCK TABLE backtest_tunes IN ACCESS EXCLUSIVE MODE", "backtest_tunes"),
            ("LOCK TABLE backtest_runs IN ACCESS EXCLUSIVE MODE", "backtest_runs"),
            # a run being inserted: the new foreign key waits for backtest_runs
            (f"INSERT INTO backtest_runs (id) VALUES ('{uuid.uuid4()}')", "backtest_runs"),
        ):
            holder.execute(hold)
            started = time.monotonic()
            with pytest.raises(tunes_db.DatabaseError) as exc:
                tunes_db.populate(pg_db, a, r, write=True, lock_timeout=0.3)
            assert time.monotonic() - started < 10
            message = str(exc.value)
            assert f"table {table} is locked by another session (waited 0.3 s" in message
            assert "nothing was written" in message and "\n" not in message
            holder.rollback()
        holder.execute("LOCK TABLE backtest_tunes IN ACCESS EXCLUSIVE MODE")
        code, out, err = invoke(
            "attribute", "tune-query", "summary", "--db", pg_db, "--lock-timeout", "0.3"
        )
        assert code == 1 and "table backtest_tunes is locked" in one_error_line(err)
        code, out, err = invoke(
            "attribute", "tunes", "--db", pg_db, "--write", "--lock-timeout", "0.3"
        )
        assert code == 1 and "table backtest_tunes is locked" in one_error_line(err)
        holder.rollback()
    finally:
        holder.close()
    with psycopg.connect(pg_db) as con:  # nothing was written
        assert con.execute("SELECT count(*) FROM backtest_tunes").fetchall() == [(0,)]
    rep = tunes_db.populate(pg_db, a, r, write=True, lock_timeout=0.3)  # released: it goes through
    assert rep.inserted_tunes == 36


# --------------------------------------------------------------------------- 6. a failed commit


class _FailingCommit:
    """A DuckDB connection whose COMMIT fails the way a full disk makes it fail: the
    transaction is gone, and the error names the write-ahead log."""

    def __init__(self, con: Any, path: Path) -> None:
        self._con, self._path = con, path

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self._con.execute("ROLLBACK")
            raise duckdb.TransactionException(
                f'TransactionContext Error: Failed to commit: Could not write file "{self._path}'
                '.wal": No space left on device'
            )
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def test_a_failed_commit_reports_its_own_error(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    with ResultStore(path) as store:
        store.save_grid(grid(2, 5, "small"), run_id="first")
        real = store.con
        store.con = _FailingCommit(real, path)
        with pytest.raises(OutputError) as exc:
            store.save_grid(grid(3, 10, "big"), run_id="second")
        store.con = real
        assert list(store.runs()["run_id"]) == ["first"]
    assert "no space left on the device" in str(exc.value) and str(path) in str(exc.value)
    assert "rollback" not in str(exc.value)


def test_a_full_disk_under_the_store(tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = tmp_path / "store.py"
    script.write_text(
        "import os, sys\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "from research.exceptions import OutputError\n"
        "from research.optimize.grids import GridResult\n"
        "from research.optimize.store import ResultStore\n"
        + inspect.getsource(grid)
        + "path = os.path.join(sys.argv[1], 'lab.duckdb')\n"
        "with ResultStore(path) as s:\n"
        "    s.save_grid(grid(2, 5, 'small'), run_id='first')\n"
        "try:\n"
        "    with ResultStore(path) as s:\n"
        "        s.save_grid(grid(20, 500, 'big'), run_id='second')\n"
        "except OutputError as exc:\n"
        "    print('error:', exc)\n"
        "with ResultStore(path) as s:\n"
        "    print('runs:', ' '.join(s.runs()['run_id']))\n"
        "try:\n"
        "    with ResultStore(os.path.join(sys.argv[1], 'new.duckdb')) as s:\n"
        "        s.save_grid(grid(20, 500, 'x'))\n"
        "except OutputError as exc:\n"
        "    print('error:', exc)\n"
        "print('files:', ' '.join(sorted(os.listdir(sys.argv[1]))))\n"
    )
    res = full_disk(f"{sys.executable} {script} {mount}", mount)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == (
        f"error: cannot write {mount}/lab.duckdb: no space left on the device; grid run not "
        "stored, the store is as it was"
    )
    assert lines[1] == "runs: first"  # the earlier run is intact, the failed one absent
    assert f"{mount}/new.duckdb: no space left on the device" in lines[2]
    assert "new.duckdb" not in lines[3]  # a store made for a failed save is removed


# --------------------------------------------------------------------------- 7. options first


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("tunes", "--drift-window", "0"), "--drift-window must be at least 1, got 0"),
        (("tunes", "--drift-window", "-5"), "--drift-window must be at least 1, got -5"),
        (("tunes", "--min-tunes", "-1"), "--min-tunes must be at least 1, got -1"),
        (("tunes", "--lock-timeout", "0"), "--lock-timeout must be a number more than 0, got 0"),
        (("tunes", "--lock-timeout", "nan"), "--lock-timeout must be a number more than 0"),
        (("experiments", "--min-experiments", "0"), "--min-experiments must be at least 1"),
        (("experiments", "--column-prefix", "a b"), "--column-prefix must be letters"),
        (("signals", "--min-n", "-1"), "--min-n must be at least 0, got -1"),
        (("tune-query", "best-key", "k", "--min-tunes", "0"), "--min-tunes must be at least 1"),
        (("tune-query", "summary", "--lock-timeout", "-1"), "--lock-timeout must be a number"),
    ],
)
def test_numeric_options_are_checked_before_any_work(
    args: tuple[str, ...], line: str, no_work: None
) -> None:
    code, out, err = invoke("attribute", *args)
    assert code == 1 and out == "" and one_error_line(err).startswith(f"error: {line}")


def test_outputs_are_checked_before_any_work(tmp_path: Path, no_work: None) -> None:
    afile = tmp_path / "afile.csv"
    afile.write_text("x\n1\n")
    cases = [
        (("tunes", "--out", tmp_path), f"--out {tmp_path} is a folder"),
        (("experiments", "--learned-out", tmp_path), f"--learned-out {tmp_path} is a folder"),
        (("signals", "--out", afile / "t.csv"), f"{afile} is a file, so no folder"),
        (("tunes", "--tunes", afile, "--out", afile), "is also an input of this command"),
        (("tunes", "--out", tmp_path / "t.txt"), "cannot write this extension"),
        (
            ("signals", "--out", tmp_path / "s.csv", "--heatmap-out", tmp_path / "s.csv"),
            "--out and --heatmap-out name the same file",
        ),
    ]
    for args, words in cases:
        code, out, err = invoke("attribute", *args)
        assert code == 1 and words in one_error_line(err), (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.csv"]


# --------------------------------------------------------------------------- 8. read-only dry run


def test_the_duckdb_dry_run_needs_no_write_access(tmp_path: Path, tune_study: TuneStudy) -> None:
    a, r = tune_study.attributed, tune_study.records
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "lab.duckdb"
    con = duckdb.connect(str(path))
    con.execute(tunes_db.PRE_032_DUCKDB)
    con.close()
    before = path.read_bytes()
    with read_only(path), read_only(folder):
        dry = tunes_db.populate(path, a, r, write=False)
        code, out, err = invoke("attribute", "tunes", "--db", path)
        assert code == 0, err
    assert dry.created_tables == () and len(dry.added_columns) == 11
    assert len(dry.added_indexes) == 4
    assert (dry.inserted_tunes, dry.inserted_runs, dry.updated) == (36, 576, 36)
    assert "would insert 36 tunes and 576 runs" in out and "dry run, nothing written" in out
    assert path.read_bytes() == before and sorted(folder.iterdir()) == [path]
    written = tunes_db.populate(path, a, r, write=True)  # the dry run said what a write does
    assert (written.inserted_tunes, written.inserted_runs, written.updated) == (36, 576, 36)
    with read_only(path), read_only(folder):
        again = tunes_db.populate(path, a, r, write=False)
        summary = tunes_db.run_query(path, "summary", "regime-lab")
    assert (again.added_columns, again.inserted_tunes, again.updated) == ((), 0, 0)
    assert int(summary["tune_count"].sum()) == 36


# --------------------------------------------------------------------------- 9. analysis apart


def test_the_write_back_does_not_depend_on_the_analysis(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    db = sqlite_db(tmp_path / "small.db", sample.head(12))  # too few to compare configurations
    code, out, err = invoke("attribute", "experiments", "--db", db, "--write", "--no-hmm")
    assert code == 0, err
    assert "note: no best configuration per regime: no experiment has a regime" in err
    assert "updated 12 rows of experiments" in out
    assert dump(db, "count(dominant_regime), count(avg_vix)") == [(12, 12)]
    learned = tmp_path / "learned.json"
    code, out, err = invoke(
        "attribute", "experiments", "--db", db, "--write", "--no-hmm", "--learned-out", learned
    )
    assert code == 1 and "nothing to change" in out  # the write-back ran; the export could not
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [err.splitlines()[-1]] and "Traceback" not in err
    assert errors[0].startswith(f"error: --learned-out {learned} not written: no experiment has")
    assert not learned.exists()


# --------------------------------------------------------------------------- 10. the filesystem


def test_the_store_refuses_in_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(OutputError, match=f"^cannot write {afile}/lab.duckdb: {afile} is a file"):
        ResultStore(afile / "lab.duckdb")
    with pytest.raises(OutputError, match="it is a folder"):
        ResultStore(tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(OutputError, match=f"^cannot write {folder}/lab.duckdb: permission"):
            ResultStore(folder / "lab.duckdb")
        with pytest.raises(OutputError, match="permission denied"):
            ResultStore(folder / "sub" / "lab.duckdb")
    assert list(folder.iterdir()) == []


def test_grid_run_refuses_an_unwritable_store_before_the_grid_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import research.optimize.service as service

    def ran(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the grid ran before the store was checked")

    monkeypatch.setattr(service, "run_named_grid", ran)
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        res = CliRunner().invoke(
            app, ["grid", "run", "multipliers", "--db", str(folder / "x.duckdb")]
        )
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines() == [
        f"error: cannot write {folder / 'x.duckdb'}: permission denied (read-only folder or file?)"
    ]


def test_attribute_writers_refuse_in_one_line(
    tmp_path: Path, sample: pd.DataFrame, no_work: None
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = sqlite_db(tmp_path / "mine.db", sample.head(3))
    with read_only(folder):
        for args in (
            ("tunes", "--out", folder / "t.csv"),
            ("signals", "--heatmap-out", folder / "h.parquet"),
            ("experiments", "--learned-out", folder / "l.json"),
            ("tunes", "--db", folder / "lab.duckdb", "--write"),
        ):
            code, out, err = invoke("attribute", *args)
            line = one_error_line(err)
            assert code == 1 and f"cannot write {folder}/" in line and "permission" in line
    assert list(folder.iterdir()) == []
    # the user's database itself read-only: the write-back fails in one line, file unchanged
    tagged = pd.DataFrame({"experiment_id": sample["experiment_id"].head(3), "avg_vix": 1.0})
    plan = experiments_db.plan(db, tagged)
    before = db.read_bytes()
    with read_only(db), pytest.raises(experiments_db.DatabaseError) as exc:
        experiments_db.apply(plan)
    assert "readonly" in str(exc.value) and "nothing was written" in str(exc.value)
    assert "\n" not in str(exc.value) and db.read_bytes() == before


def test_a_full_disk_under_an_attribute_output(tmp_path: Path) -> None:
    """``--out`` (the 19 kB tunes table) and a new DuckDB file written by ``--write`` on a 16 kB
    disk: one line naming the path each, and nothing left behind (one process for both)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    out, db = mount / "tunes.csv", mount / "lab.duckdb"
    script = tmp_path / "full.py"
    script.write_text(
        "import os\n"
        "from typer.testing import CliRunner\n"
        "from research.cli import app\n"
        "from research.attribution.service import load_tune_study\n"
        "from research.attribution.tunes_db import DatabaseError, populate\n"
        f"args = ['attribute', 'tunes', '--db', {str(tmp_path / 'x.duckdb')!r}, '--out', "
        f"{str(out)!r}]\n"
        "res = CliRunner().invoke(app, args)\n"
        "print('rc:', res.exit_code, repr(res.exception))\n"
        "print('stderr:', res.stderr.strip())\n"
        f"print('files:', os.listdir({str(mount)!r}))\n"
        "s = load_tune_study()\n"
        "try:\n"
        f"    populate({str(db)!r}, s.attributed, s.records, write=True)\n"
        "except DatabaseError as exc:\n"
        "    print('error:', exc)\n"
        f"print('files:', os.listdir({str(mount)!r}))\n"
    )
    res = full_disk(f"{sys.executable} {script}", mount, size_kb=16)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "rc: 1 SystemExit(1)",
        f"stderr: error: cannot write {out}: no space left on the device",
        "files: []",  # nothing half-written
        f"error: cannot write {db}: no space left on the device; rolled back, nothing was written",
        "files: []",  # the new file is removed again
    ]
