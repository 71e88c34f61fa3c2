"""Tests for research.data.loaders: every format reads back the same validated frame."""

from __future__ import annotations

import gzip
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pandas.testing as pdt
import pytest

from research.data.contracts import validate
from research.data.errors import ContractError, Problem
from research.data.loaders import EXTENSIONS, load, read_table


def trades_raw() -> pd.DataFrame:
    """The seed-004 export format, as text dates (how every file format stores them)."""
    return pd.DataFrame(
        {
            "date": ["2022-03-15", "2022-03-16", "2022-04-01"],
            "ticker": ["QQQ", "QQQ", "SPY"],
            "short_strike": [350.0, 352.0, 470.0],
            "long_strike": [345.0, 347.0, 465.0],
            "expiration": ["2022-04-14", "2022-04-14", "2022-05-02"],
            "credit": [0.85, 0.90, 1.05],
            "max_loss": [4.15, 4.10, 3.95],
            "delta": [0.12, 0.13, 0.15],
            "dte": [30, 29, 31],
            "iv_percentile": [82.5, 80.1, 40.0],
            "vix": [28.3, 26.7, 19.6],
            "underlying_price": [340.0, 344.2, 452.9],
            "outcome": ["profit", "loss", "breakeven"],
            "pnl": [55.25, -310.0, 0.0],
            "exit_reason": ["profit_target", "stop_loss", "expiration"],
            "hold_days": [12, 7, 31],
        }
    )


EXPECTED = validate("trades", trades_raw())


def _sqlite(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    with sqlite3.connect(path) as con:
        for name, df in tables.items():
            df.to_sql(name, con, index=False)
    con.close()


def _duckdb(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    con = duckdb.connect(str(path))
    try:
        for name, df in tables.items():
            con.register("frame", df)
            if "." in name:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {name.split('.')[0]}")
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
    finally:
        con.close()


WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    "data.csv": lambda df, p: df.to_csv(p, index=False),
    "data.csv.gz": lambda df, p: df.to_csv(p, index=False, compression="gzip"),
    "data.parquet": lambda df, p: df.to_parquet(p, index=False),
    "data.pq": lambda df, p: df.to_parquet(p, index=False),
    "data.json": lambda df, p: df.to_json(p, orient="records"),
    "data.jsonl": lambda df, p: df.to_json(p, orient="records", lines=True),
    "data.ndjson": lambda df, p: df.to_json(p, orient="records", lines=True),
    "data.sqlite": lambda df, p: _sqlite(p, {"trades": df}),
    "data.sqlite3": lambda df, p: _sqlite(p, {"trades": df}),
    "data.db": lambda df, p: _sqlite(p, {"trades": df}),
    "data.duckdb": lambda df, p: _duckdb(p, {"trades": df}),
}


def load_error(kind: str, path: Path, **kwargs: str) -> ContractError:
    with pytest.raises(ContractError) as info:
        load(kind, path, **kwargs)
    assert str(path) in str(info.value)
    return info.value


def file_problem(err: ContractError) -> Problem:
    assert len(err.problems) == 1
    (p,) = err.problems
    assert p.column is None and p.n_rows == 0
    return p


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def test_every_extension_has_a_writer() -> None:
    assert {"data" + ext for ext in EXTENSIONS} == set(WRITERS)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    WRITERS[name](trades_raw(), path)
    pdt.assert_frame_equal(load("trades", path), EXPECTED)
    assert isinstance(read_table(path).index, pd.RangeIndex)


@pytest.mark.parametrize("name", ["data.parquet", "data.duckdb"])
def test_round_trip_native_dates(tmp_path: Path, name: str) -> None:
    """Binary formats keep dates as dates (datetime64 / DATE) instead of text."""
    raw = trades_raw()
    raw["date"] = pd.to_datetime(raw["date"])
    raw["expiration"] = pd.to_datetime(raw["expiration"]).dt.date  # object of datetime.date
    path = tmp_path / name
    WRITERS[name](raw, path)
    pdt.assert_frame_equal(load("trades", path), EXPECTED)


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "TRADES.CSV"
    trades_raw().to_csv(path, index=False)
    pdt.assert_frame_equal(load("trades", path), EXPECTED)


def test_string_path_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    trades_raw().to_csv(path, index=False)
    pdt.assert_frame_equal(load("trades", str(path)), EXPECTED)


def test_csv_with_spaces_after_commas(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    text = trades_raw().to_csv(index=False).replace(",", ", ")
    path.write_text(text)
    pdt.assert_frame_equal(load("trades", path), EXPECTED)


def test_read_table_keeps_raw_types(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    WRITERS["data.jsonl"](trades_raw(), path)
    raw = read_table(path)
    assert raw["date"].tolist() == ["2022-03-15", "2022-03-16", "2022-04-01"]  # not parsed


# --------------------------------------------------------------------------------------------
# Databases: table selection
# --------------------------------------------------------------------------------------------

OTHER = pd.DataFrame({"x": [1, 2]})


@pytest.mark.parametrize("suffix", [".sqlite", ".duckdb"])
def test_database_table_selection(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lab{suffix}"
    write = _sqlite if suffix == ".sqlite" else _duckdb
    write(path, {"trades": trades_raw(), "other": OTHER})
    pdt.assert_frame_equal(load("trades", path, table="trades"), EXPECTED)
    pdt.assert_frame_equal(read_table(path, table="other"), OTHER)


@pytest.mark.parametrize("suffix", [".sqlite", ".duckdb"])
def test_database_several_tables_none_named(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lab{suffix}"
    write = _sqlite if suffix == ".sqlite" else _duckdb
    write(path, {"trades": trades_raw(), "other": OTHER})
    p = file_problem(load_error("trades", path))
    assert p.check == "ambiguous table"
    assert "other, trades" in p.detail
    assert "table=" in p.detail


@pytest.mark.parametrize("suffix", [".sqlite", ".duckdb"])
def test_database_unknown_table(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lab{suffix}"
    write = _sqlite if suffix == ".sqlite" else _duckdb
    write(path, {"trades": trades_raw()})
    err = load_error("trades", path, table="missing")
    p = file_problem(err)
    assert (p.check, p.examples) == ("unknown table", ("'missing'",))
    assert "trades" in p.detail
    assert err.kind == "trades"


def test_duckdb_schema_qualified_table(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    _duckdb(path, {"results.trades": trades_raw(), "other": OTHER})
    pdt.assert_frame_equal(load("trades", path, table="results.trades"), EXPECTED)


@pytest.mark.parametrize("suffix", [".sqlite", ".duckdb"])
def test_database_empty_table(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lab{suffix}"
    write = _sqlite if suffix == ".sqlite" else _duckdb
    write(path, {"trades": trades_raw().iloc[:0]})
    p = file_problem(load_error("trades", path))
    assert p.check == "empty file"
    assert "'trades'" in p.detail


def test_table_for_non_database(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    trades_raw().to_csv(path, index=False)
    assert file_problem(load_error("trades", path, table="trades")).check == "unknown table"


def test_sqlite_is_opened_read_only(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    _sqlite(path, {"trades": trades_raw()})
    before = path.read_bytes()
    load("trades", path)
    assert path.read_bytes() == before


# --------------------------------------------------------------------------------------------
# Time zones
# --------------------------------------------------------------------------------------------


def test_tz_aware_parquet_rejected(tmp_path: Path) -> None:
    raw = trades_raw()
    raw["date"] = pd.to_datetime(raw["date"]).dt.tz_localize("UTC")
    path = tmp_path / "trades.parquet"
    raw.to_parquet(path)
    err = load_error("trades", path)
    assert len(err.problems) == 1
    p = err.problems[0]
    assert (p.column, p.check, p.n_rows, p.rows) == ("date", "timezone-aware dates", 3, (1, 2, 3))
    assert "naive dates" in str(err)


def test_tz_offset_csv_rejected(tmp_path: Path) -> None:
    raw = trades_raw()
    raw.loc[[0, 2], "expiration"] = ["2022-04-14T16:00:00-04:00", "2022-05-02 16:00:00Z"]
    path = tmp_path / "trades.csv"
    raw.to_csv(path, index=False)
    err = load_error("trades", path)
    p = err.find("timezone-aware dates", "expiration")[0]
    assert (p.n_rows, p.rows) == (2, (1, 3))
    assert p.examples == ("2022-04-14T16:00:00-04:00", "2022-05-02 16:00:00Z")


# --------------------------------------------------------------------------------------------
# Unreadable, empty, unknown
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.json", "empty.duckdb"])
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    err = load_error("trades", path)
    p = file_problem(err)
    assert p.check == "empty file"
    assert str(err).startswith(f"{path}: cannot load 'trades' data (1 problem)\n  - empty file")


def test_header_only_csv(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    trades_raw().iloc[:0].to_csv(path, index=False)
    assert file_problem(load_error("trades", path)).check == "empty file"


def test_empty_json_array_and_blank_lines(tmp_path: Path) -> None:
    array, lines = tmp_path / "t.json", tmp_path / "t.jsonl"
    array.write_text("[]")
    lines.write_text("\n\n")
    assert file_problem(load_error("trades", array)).check == "empty file"
    assert file_problem(load_error("trades", lines)).check == "empty file"


def test_empty_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"")
    assert file_problem(load_error("trades", path)).check == "empty file"


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "trades.xlsx"
    path.write_bytes(b"PK\x03\x04")
    p = file_problem(load_error("trades", path))
    assert (p.check, p.examples) == ("unknown extension", ("'.xlsx'",))
    assert ".csv.gz" in p.detail and ".duckdb" in p.detail


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    p = file_problem(load_error("trades", path))
    assert (p.check, p.detail) == ("unreadable file", "no such file")


def test_missing_sqlite_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nope.sqlite"
    assert file_problem(load_error("trades", path)).check == "unreadable file"
    assert not path.exists()


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.parquet"
    path.mkdir()
    p = file_problem(load_error("trades", path))
    assert p.check == "unreadable file"
    assert "directory" in p.detail


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied(tmp_path: Path) -> None:  # pragma: no cover - not run as root
    path = tmp_path / "t.csv"
    trades_raw().to_csv(path, index=False)
    path.chmod(0)
    try:
        p = file_problem(load_error("trades", path))
    finally:
        path.chmod(0o600)
    assert p.check == "unreadable file"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.parquet", b"this is not parquet at all, just text\n" * 3),
        ("truncated.parquet", None),
        ("garbage.sqlite", b"\x00\x01garbage bytes that are not sqlite" * 20),
        ("garbage.duckdb", b"\x00\x01garbage bytes that are not duckdb" * 200),
        ("garbage.json", b'[{"date": "2022-03-15", '),
        ("object.json", b'{"date": "2022-03-15"}'),
        ("garbage.jsonl", b'{"date": "2022-03-15"}\n{not json\n'),
        ("binary.csv", b"\xff\xfe\x00\x81\x82\x83,\xc3\x28\n\x80\x81,\x82\n"),
        ("garbage.csv.gz", b"not gzip data"),
    ],
)
def test_unreadable_content(tmp_path: Path, name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is None:  # a real parquet file cut in half
        trades_raw().to_parquet(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    err = load_error("trades", path)
    p = file_problem(err)
    assert p.check == "unreadable file", str(err)
    assert p.detail


def test_read_table_error_has_no_kind(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(ContractError) as info:
        read_table(path)
    assert info.value.kind == ""
    assert str(info.value) == f"{path}: cannot be read as a table (1 problem)\n" + (
        "  - unreadable file: no such file"
    )


def test_contract_problems_name_the_file(tmp_path: Path) -> None:
    raw = trades_raw()
    raw["credit"] = raw["credit"].astype(object)
    raw.loc[1, "credit"] = "n/a?"
    path = tmp_path / "trades.json"
    raw.to_json(path, orient="records")
    err = load_error("trades", path)
    assert err.source == str(path)
    p = err.find("wrong type", "credit")[0]
    assert (p.n_rows, p.rows, p.examples) == (1, (2,), ("n/a?",))
    assert str(err).startswith(f"{path}: does not satisfy the 'trades' contract (1 problem)")


def test_duckdb_without_tables(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    p = file_problem(load_error("trades", path))
    assert (p.check, p.detail) == ("empty file", "the database has no tables")
