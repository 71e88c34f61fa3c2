"""Tests for research.data.cli_validate.validate_command (the `research data validate` body)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.cli.data import validate_command


def bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": ["2020-01-02", "2020-01-03", "2020-01-06"] * 2,
            "symbol": ["SPX"] * 3 + ["IXIC"] * 3,
            "open": [3244.67, 3226.36, 3217.55, 8872.1, 8834.7, 8788.9],
            "high": [3258.14, 3246.15, 3246.84, 8946.3, 8903.2, 8960.1],
            "low": [3235.53, 3222.34, 3214.64, 8853.4, 8827.1, 8781.0],
            "close": [3257.85, 3234.85, 3246.28, 8945.0, 8876.7, 8910.7],
            "volume": [None] * 6,
        }
    )


def test_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bars.csv"
    bars().to_csv(path, index=False)
    assert validate_command("bars", path, None) == 0
    out, err = capsys.readouterr()
    assert out == f"OK: {path} satisfies the 'bars' contract (6 rows, 2020-01-02..2020-01-06)\n"
    assert err == ""


def test_ok_database_table_without_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    path = tmp_path / "lab.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE llm AS SELECT 'T1' AS trade_id, 'm' AS model, 'base' AS prompt_variant, "
        "'approve' AS decision, 0.7 AS confidence, 1 AS contracts, 'ok' AS reason, "
        "NULL::VARCHAR AS error, 0.5 AS latency_s, 100 AS tokens"
    )
    con.execute("CREATE TABLE other AS SELECT 1 AS x")
    con.close()
    assert validate_command("llm_decisions", path, "llm") == 0
    out, _ = capsys.readouterr()
    assert out == f"OK: {path} satisfies the 'llm_decisions' contract (1 row)\n"


def test_contract_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = bars()
    df.loc[[3, 5], "close"] = [-1.0, -3.2]
    path = tmp_path / "bars.csv"
    df.to_csv(path, index=False)
    assert validate_command("bars", path, None) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"{path}: does not satisfy the 'bars' contract (1 problem)\n"
        "  - column 'close': negative price in 2 rows (rows 4, 6; values -1.0, -3.2): "
        "must be > 0 (zero also fails)\n"
    )


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "missing.parquet"
    assert validate_command("bars", path, None) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err == f"{path}: cannot load 'bars' data (1 problem)\n  - unreadable file: no such file\n"
    )


def test_unknown_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bars.csv"
    bars().to_csv(path, index=False)
    assert validate_command("candles", path, None) == 1
    _, err = capsys.readouterr()
    assert "unknown contract" in err and "bars, iv_index, signals" in err


def test_research_data_validate_entry_point(tmp_path: Path) -> None:
    """The installed `research` console script: exit 0 on good input, 1 with the message."""
    # a subprocess on purpose: the suite's one run of the installed console script, whose exit
    # codes a shell sees (every other command test runs in-process through run_cli)
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("research")
    good = tmp_path / "bars.csv"
    good.write_text(
        "date,symbol,open,high,low,close,volume\n"
        "2020-01-02,SPY,100,101,99,100.5,1000\n2020-01-03,SPY,100.5,102,100,101,1200\n"
    )
    ok = subprocess.run(
        [exe, "data", "validate", "bars", str(good)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "satisfies the 'bars' contract (2 rows, 2020-01-02..2020-01-03)" in ok.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,symbol,open,high,low,close,volume\n"
        "2020-01-02,SPY,100,101,99,100.5,1000\n2020-01-03,SPY,100.5,99,100,101,1200\n"
    )
    res = subprocess.run(
        [exe, "data", "validate", "bars", str(bad)], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert str(bad) in res.stderr and "high < low in 1 row (row 2" in res.stderr


HEADER = "date,symbol,open,high,low,close,volume\n"


def _problem_text(tmp_path: Path, body: str, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + body)
    assert validate_command("bars", path, None) == 1
    captured = capsys.readouterr()
    return captured.err + captured.out


def test_text_meaning_no_value_is_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _problem_text(tmp_path, "2020-01-02,AAA,1,2,1,n/a,\n2020-01-03,AAA,1,2,1,1.5,\n", capsys)
    assert "column 'close': missing value in 1 row (row 1; value n/a)" in err


def test_a_ticker_named_na_is_a_ticker(tmp_path: Path) -> None:
    from research.data.loaders import load

    path = tmp_path / "na.csv"
    path.write_text(HEADER + "2020-01-02,NA,1,2,1,1.5,\n2020-01-03,NA,1,2,1,1.6,NA\n")
    bars = load("bars", path)
    assert set(bars["symbol"]) == {"NA"} and bars["volume"].isna().all()


def test_broken_csv_is_named_not_a_parser_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _problem_text(
        tmp_path, "2020-01-02,AAA,1,2,1,1.5,\n2020-01-03,AAA,1,2,1,1.5,,,x\n", capsys
    )
    assert "unreadable file: not valid CSV: Expected 7 fields in line 3, saw 9" in err
    assert "ParserError" not in err and "Traceback" not in err


def test_newest_first_files_get_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = "2020-01-06,AAA,1,2,1,1.5,\n2020-01-03,AAA,1,2,1,1.5,\n2020-01-02,AAA,1,2,1,1.5,\n"
    err = _problem_text(tmp_path, rows, capsys)
    assert "unsorted dates in 2 rows" in err and "newest-first: sort the file oldest first" in err
    # a file out of order in one place only gets no such hint
    mixed = "2020-01-02,AAA,1,2,1,1.5,\n2020-01-06,AAA,1,2,1,1.5,\n2020-01-03,AAA,1,2,1,1.5,\n"
    err = _problem_text(tmp_path, mixed, capsys)
    assert "unsorted dates in 1 row" in err and "newest-first" not in err


def test_data_export_writes_the_contracts(tmp_path: Path) -> None:
    from research.data.loaders import load
    from research.data.market import load_bars
    from research.testing.cli import run_cli

    bars = tmp_path / "bars.csv"
    res = run_cli(
        "data", "export", "bars", "--symbols", "IXIC", "--start", "2018-06-01", "--out", str(bars)
    )
    assert res.returncode == 0, res.stderr
    back = load("bars", bars)
    want = load_bars(symbols=["IXIC"], start="2018-06-01")
    pd.testing.assert_frame_equal(back, want, check_exact=False, rtol=1e-12)
    iv = tmp_path / "iv.parquet"
    res = run_cli(
        "data",
        "export",
        "iv",
        "--symbols",
        "SPX,IXIC",
        "--proxy",
        "--start",
        "2018-06-01",
        "--out",
        str(iv),
    )
    assert res.returncode == 0, res.stderr
    frame = load("iv_index", iv)
    assert set(frame["symbol"]) == {"SPX", "IXIC"}
    assert set(frame.loc[frame["symbol"] == "SPX", "source"]) == {"index"}
    assert set(frame.loc[frame["symbol"] == "IXIC", "source"]) == {"proxy"}
    bad = run_cli("data", "export", "iv", "--symbols", "IXIC", "--out", str(tmp_path / "x.csv"))
    assert bad.returncode == 1 and "--proxy" in bad.stderr and not (tmp_path / "x.csv").exists()
