"""Hostile input is read one way, or refused in one line before any work: dates with one format
per column, OHLC bars that hold together, numeric options in range (NaN never passes), outputs
never over an input, relative paths from the current folder.

Every command runs in-process (``typer.testing.CliRunner`` on ``research.cli.app``); each error
case checks the exit code, the one-line message and that nothing was written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from research.cli import app
from research.data.contracts import validate
from research.data.errors import ContractError
from research.data.loaders import load, read_table

HEADER = "date,symbol,open,high,low,close,volume\n"


def invoke(*args: str | Path) -> tuple[int, str]:
    """Run ``research ARGS`` in-process: (exit code, stdout and stderr)."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is a failure of its own
    return res.exit_code, res.output


def one_error_line(output: str) -> str:
    """The single ``error: ...`` line a refused command prints."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def bars_csv(path: Path, dates: list[str], *, close: float = 100.0) -> Path:
    rows = "".join(f"{d},X,100,101,99,{close},1000\n" for d in dates)
    path.write_text(HEADER + rows)
    return path


def walk(n: int = 90, symbol: str = "X", start: str = "2018-01-02") -> pd.DataFrame:
    """Consistent daily bars (a seeded random walk) with ISO text dates."""
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, n)))
    return pd.DataFrame(
        {
            "date": pd.bdate_range(start, periods=n),
            "symbol": symbol,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1e6,
        }
    )


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test runs in its own empty folder (relative paths are taken from there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- 1. one date format per column ------------------------------------------------------------

DAY_FIRST = ["01/03/2018", "02/03/2018", "05/03/2018", "06/03/2018", "13/03/2018"]


def test_a_day_first_file_is_refused_naming_file_column_rows_and_the_format(in_tmp: Path) -> None:
    bars_csv(in_tmp / "bars.csv", DAY_FIRST)
    code, out = invoke("data", "validate", "bars", "bars.csv")
    assert code == 1
    assert out.startswith("bars.csv: does not satisfy the 'bars' contract (1 problem)")
    assert (
        "column 'date': date format in 5 rows (rows 1, 2, 3, 4, 5; values 01/03/2018, "
        "02/03/2018, 05/03/2018, 06/03/2018, 13/03/2018): dates are not all YYYY-MM-DD; they "
        "all read as %d/%m/%Y: give --date-format %d/%m/%Y"
    ) in out


def test_date_format_reads_the_whole_column_one_way(in_tmp: Path) -> None:
    bars_csv(in_tmp / "bars.csv", DAY_FIRST)
    code, out = invoke("data", "validate", "bars", "bars.csv", "--date-format", "%d/%m/%Y")
    assert code == 0, out
    assert out == "OK: bars.csv satisfies the 'bars' contract (5 rows, 2018-03-01..2018-03-13)\n"
    frame = load("bars", "bars.csv", date_format="%d/%m/%Y")
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2018-03-01",
        "2018-03-02",
        "2018-03-05",
        "2018-03-06",
        "2018-03-13",
    ]


def test_ambiguous_and_mixed_columns_are_errors() -> None:
    ambiguous = walk(3).assign(date=["01/03/2018", "02/03/2018", "05/03/2018"])
    with pytest.raises(ContractError) as err:
        validate("bars", ambiguous, source="bars.csv")
    (problem,) = err.value.find("date format", "date")
    assert problem.rows == (1, 2, 3)
    assert "day and month cannot be told apart" in problem.detail
    assert "%d/%m/%Y" in problem.detail and "%m/%d/%Y" in problem.detail
    mixed = walk(4).assign(date=["2018-03-01", "02/03/2018", "2018-03-05", "13/03/2018"])
    with pytest.raises(ContractError) as err:
        validate("bars", mixed, source="bars.csv")
    (problem,) = err.value.find("date format", "date")
    assert (problem.rows, problem.examples) == ((2, 4), ("02/03/2018", "13/03/2018"))
    assert "mixed formats" in problem.detail
    # a named format does not read ISO rows mixed into the column either
    with pytest.raises(ContractError) as err:
        validate("bars", mixed, source="bars.csv", date_format="%d/%m/%Y")
    assert [p.rows for p in err.value.find("date format", "date")] == [(1, 3)]


def test_iso_stays_the_default_and_garbage_is_still_wrong_type() -> None:
    iso = walk(3).assign(date=["2018-03-01", "2018-03-02 16:00:00", "20180305"])
    assert validate("bars", iso)["date"].dt.day.tolist() == [1, 2, 5]
    # an explicit format still accepts a column written entirely in ISO
    assert validate("bars", iso, date_format="%d/%m/%Y")["date"].dt.day.tolist() == [1, 2, 5]
    bad = walk(3).assign(date=["2018-03-01", "yesterday", "2018-03-05"])
    with pytest.raises(ContractError) as err:
        validate("bars", bad)
    assert [p.rows for p in err.value.find("wrong type", "date")] == [(2,)]
    assert not err.value.find("date format")


def test_dates_read_as_reaches_loaders_through_services(in_tmp: Path) -> None:
    from research.data.contracts import dates_read_as

    bars_csv(in_tmp / "bars.csv", DAY_FIRST)
    with pytest.raises(ContractError):
        load("bars", "bars.csv")
    with dates_read_as("%d/%m/%Y"):
        assert load("bars", "bars.csv")["date"].iloc[-1] == pd.Timestamp("2018-03-13")
    with pytest.raises(ContractError):  # the format does not outlive the block
        load("bars", "bars.csv")


def test_commands_take_date_format_and_refuse_a_day_first_file(in_tmp: Path) -> None:
    frame = walk(90)
    frame["date"] = frame["date"].dt.strftime("%d/%m/%Y")
    frame.to_csv(in_tmp / "bars.csv", index=False)
    out = in_tmp / "labels.csv"
    code, text = invoke("regimes", "classify", "--model", "vol_ratio", "--bars", "bars.csv",
                        "--out", out)  # fmt: skip
    assert code == 1 and "give --date-format %d/%m/%Y" in text and not out.exists()
    code, text = invoke("regimes", "classify", "--model", "vol_ratio", "--bars", "bars.csv",
                        "--out", out, "--date-format", "%d/%m/%Y")  # fmt: skip
    assert code == 0, text
    labels = read_table(out)
    assert labels["date"].iloc[0] == "2018-01-02" and labels["date"].iloc[-1] == "2018-05-07"


def test_a_bad_date_format_is_refused_before_any_work(in_tmp: Path) -> None:
    bars_csv(in_tmp / "bars.csv", DAY_FIRST)
    for args in (
        ("data", "validate", "bars", "bars.csv", "--date-format", "%d/%m"),
        ("backtest", "run", "--bars", "bars.csv", "--date-format", "dd/mm/yyyy"),
    ):
        code, out = invoke(*args)
        assert code == 1
        assert one_error_line(out).startswith(
            "error: --date-format must be ISO or a strftime format naming the year, month and day"
        )


# --- 2. bars that hold together ---------------------------------------------------------------


def test_close_above_high_and_an_absurd_close_are_contract_problems() -> None:
    frame = walk(5)
    frame.loc[1, "close"] = frame.loc[1, "high"] + 1
    frame.loc[3, "close"] = 1e308
    frame.loc[4, "open"] = frame.loc[4, "low"] - 1
    with pytest.raises(ContractError) as err:
        validate("bars", frame, source="bars.csv")
    (above,) = err.value.find("close outside high-low")
    assert above.columns == ("close", "high", "low") and above.rows == (2,)
    assert above.examples[0].startswith("close ") and " > high " in above.examples[0]
    (absurd,) = err.value.find("implausible price", "close")
    assert (absurd.rows, absurd.examples) == ((4,), ("1e+308",))
    assert "below 10,000,000" in absurd.detail
    (below,) = err.value.find("open outside high-low")
    assert below.rows == (5,) and " < low " in below.examples[0]
    assert "columns 'close', 'high', 'low': close outside high-low in 1 row (row 2;" in str(
        err.value
    )


def test_a_backtest_on_inconsistent_bars_exits_1_without_output(in_tmp: Path) -> None:
    frame = walk(300)
    frame.loc[10, "close"] = frame.loc[10, "high"] * 2
    frame.to_csv(in_tmp / "bars.csv", index=False)
    trades = in_tmp / "trades.json"
    code, out = invoke("backtest", "run", "--tickers", "X", "--bars", "bars.csv",
                       "--export-trades", trades)  # fmt: skip
    assert code == 1 and not trades.exists()
    assert "error: bars.csv: does not satisfy the 'bars' contract" in out
    assert "close outside high-low in 1 row (row 11;" in out


# --- 3. numeric options: finite, in range, before any work ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("backtest", "run", "--profit-target", "nan"),
         "--profit-target must be a finite number in (0, 100], got nan"),
        (("backtest", "run", "--profit-target", "inf"),
         "--profit-target must be a finite number in (0, 100], got inf"),
        (("backtest", "run", "--min-delta", "nan"),
         "--min-delta must be a finite number in (0, 1), got nan"),
        (("backtest", "run", "--stop-loss", "-1"),
         "--stop-loss must be a finite number in (0, 10000], got -1.0"),
        (("backtest", "run", "--dte", "0"), "--dte must be a whole number in [1, 1095], got 0"),
        (("backtest", "run", "--rate", "nan"),
         "--rate must be a finite number in (-0.5, 1), got nan"),
        (("backtest", "run", "--chain-fill", "1.5"),
         "--chain-fill must be a finite number in [0, 1], got 1.5"),
        (("backtest", "run", "--initial-equity", "1e308"),
         "--initial-equity must be a finite number in (0, 1e+12], got 1e+308"),
        (("backtest", "run", "--skew-slope", "nan"),
         "--skew-slope must be a finite number in [0, 10], got nan"),
        (("backtest", "run", "--dividend-yield", "SPX=nan"),
         "--dividend-yield SPX=nan: the yield must be a finite number in [0, 1), got nan"),
        (("backtest", "run", "--regime-model", "bull_bear_vol", "--regime-multipliers",
          "1,nan,1,1"),
         "--regime-multipliers (bull_high_vol) must be a finite number in [0, 100], got nan"),
        (("grid", "run", "limits", "--spa-reps", "-5"),
         "--spa-reps must be a whole number in [50, 100000], got -5"),
        (("grid", "study", "multipliers", "--n-permutations", "5"),
         "--n-permutations must be a whole number in [200, 100000], got 5"),
        (("grid", "study", "limits", "--is-years", "nan"),
         "--is-years must be a finite number in (0, 50], got nan"),
        (("grid", "study", "limits", "--sharpe-reps", "0"),
         "--sharpe-reps must be a whole number in [100, 1e+06], got 0"),
        (("backtest", "run", "--start", "2015-13-01"),
         "--start must be a date written YYYY-MM-DD, got '2015-13-01'"),
        (("backtest", "run", "--start", "2016-01-01", "--end", "2015-01-01"),
         "--start 2016-01-01 is after --end 2015-01-01"),
        (("regimes", "snapshot", "--bars", "x.csv", "--out", "s.json", "--asof", "03/01/2018"),
         "--asof must be a date written YYYY-MM-DD, got '03/01/2018'"),
    ],
)  # fmt: skip
def test_numeric_and_date_options_are_checked_first(
    in_tmp: Path, args: tuple[str, ...], message: str
) -> None:
    code, out = invoke(*args)
    assert code == 1
    assert one_error_line(out) == f"error: {message}"
    assert list(in_tmp.iterdir()) == []


def test_range_helper() -> None:
    from research.exceptions import InputError
    from research.options import Range, check_number

    pct = Range(0, 100, low_open=True)
    assert str(pct) == "in (0, 100]" and str(Range(200, integer=True)) == ">= 200"
    assert check_number(65.0, "--x", pct) == 65.0 and check_number(None, "--x", pct) is None
    assert check_number(3.0, "--n", Range(1, 5, integer=True)) == 3
    for bad in (math.nan, math.inf, -math.inf, 0.0, 100.5, True, "65"):
        with pytest.raises(InputError, match=r"^--x must be a finite number in \(0, 100\], got"):
            check_number(bad, "--x", pct)
    with pytest.raises(InputError, match="whole number"):
        check_number(2.5, "--n", Range(1, 5, integer=True))


def test_a_config_with_nan_is_rejected_too() -> None:
    import yaml

    from research.backtest.spreads import BacktestConfig, ConfigError, config_from_dict

    data = yaml.safe_load("spread:\n  profit_target_pct: .nan\n")
    with pytest.raises(
        ConfigError, match=r"spread.profit_target_pct must be a finite number, got nan"
    ):
        config_from_dict(data)
    with pytest.raises(ConfigError, match=r"initial_equity must be a finite number, got inf"):
        BacktestConfig().replace(initial_equity=math.inf)
    with pytest.raises(ConfigError, match=r"sizing.regime_multipliers\['a'\] must be a finite"):
        BacktestConfig().replace(**{"sizing.regime_multipliers": {"a": math.nan}})
    with pytest.raises(ConfigError, match=r"spread.min_delta must be a finite number, got 'abc'"):
        config_from_dict({"spread.min_delta": "abc"})


def test_a_grid_file_with_nan_is_refused(tmp_path: Path) -> None:
    from research.backtest.spreads import ConfigError
    from research.optimize.grids import cartesian_variants, load_grid_file

    base_nan = tmp_path / "base.yaml"
    base_nan.write_text("base: {spread.stop_loss_pct: .nan}\ngrid: {spread.min_delta: [0.05]}\n")
    with pytest.raises(ConfigError, match=r"spread.stop_loss_pct must be a finite number, got nan"):
        load_grid_file(base_nan)
    axis_nan = tmp_path / "axis.yaml"
    axis_nan.write_text("grid: {spread.profit_target_pct: [50, .nan]}\n")
    base, axes = load_grid_file(axis_nan)
    with pytest.raises(ConfigError, match=r"grid point profit_target_pct=nan: .*finite number"):
        cartesian_variants(base, axes)


# --- 4. no output over an input ---------------------------------------------------------------


@pytest.fixture
def own_files(in_tmp: Path) -> Path:
    walk(300).to_csv(in_tmp / "bars.csv", index=False)
    (in_tmp / "chains.csv").write_text(
        "quote_date,underlying,expiration,type,strike,bid,ask,underlying_price\n"
        "2018-01-02,X,2018-02-16,C,105,1.5,1.6,100\n"
    )
    return in_tmp


@pytest.mark.parametrize(
    ("args", "option", "target"),
    [
        (("regimes", "classify", "--model", "vol_ratio", "--bars", "bars.csv", "--out",
          "bars.csv"), "--out", "bars.csv"),
        (("regimes", "classify", "--model", "vol_ratio", "--bars", "bars.csv", "--out",
          "./sub/../bars.csv"), "--out", "sub/../bars.csv"),
        (("regimes", "snapshot", "--bars", "bars.csv", "--out", "bars.csv"), "--out", "bars.csv"),
        (("backtest", "run", "--tickers", "X", "--bars", "bars.csv", "--export-trades",
          "bars.csv"), "--export-trades", "bars.csv"),
        (("backtest", "run", "--tickers", "X", "--bars", "bars.csv", "--equity-out",
          "bars.csv"), "--equity-out", "bars.csv"),
        (("data", "tunes", "--bars", "bars.csv", "--out", "bars.csv"), "--out", "bars.csv"),
        (("chains", "calibrate", "--chains", "chains.csv", "--out", "chains.csv"), "--out",
         "chains.csv"),
        (("grid", "study", "limits", "--bars", "bars.csv", "--summary-out", "bars.csv"),
         "--summary-out", "bars.csv"),
        (("grid", "run", "limits", "--bars", "bars.csv", "--db", "bars.csv"), "--db",
         "bars.csv"),
    ],
)  # fmt: skip
def test_no_command_writes_over_its_own_input(
    own_files: Path, args: tuple[str, ...], option: str, target: str
) -> None:
    (own_files / "sub").mkdir()
    before = {p.name: p.read_bytes() for p in own_files.iterdir() if p.is_file()}
    code, out = invoke(*args)
    assert code == 1
    assert one_error_line(out).startswith(f"error: {option} {target} is also an input")
    after = {p.name: p.read_bytes() for p in own_files.iterdir() if p.is_file()}
    assert after == before


def test_two_outputs_of_one_command_must_differ(in_tmp: Path) -> None:
    code, out = invoke("backtest", "run", "--export-trades", "t.json", "--equity-out", "t.json")
    assert code == 1
    assert (
        one_error_line(out)
        == "error: --equity-out t.json is also --export-trades; name two different files"
    )
    code, out = invoke("data", "export", "bars", "--out", str(in_tmp))
    assert (
        code == 1 and one_error_line(out) == f"error: --out {in_tmp} is a folder; name a file in it"
    )
    assert list(in_tmp.iterdir()) == []
    (in_tmp / "sample.txt").write_text("mine")
    code, out = invoke("data", "generate", "--out", "sample.txt")
    assert code == 1 and one_error_line(out) == "error: --out sample.txt is a file; name a folder"
    assert (in_tmp / "sample.txt").read_text() == "mine"


# --- 5. relative paths: from the current folder -----------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root holding data/bars.csv, and an empty folder the commands run in."""
    from research.config import ROOT_ENV

    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "notebooks").mkdir()
    walk(300).to_csv(root / "data" / "bars.csv", index=False)
    monkeypatch.setenv(ROOT_ENV, str(root))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root


@pytest.mark.parametrize(
    "args",
    [
        ("backtest", "run", "--tickers", "X", "--bars", "data/bars.csv"),
        ("regimes", "classify", "--model", "vol_ratio", "--bars", "data/bars.csv",
         "--out", "o.csv"),
        ("grid", "run", "limits", "--tickers", "X", "--bars", "data/bars.csv"),
        ("data", "tunes", "--bars", "data/bars.csv", "--out", "t.csv"),
    ],
)  # fmt: skip
def test_a_relative_input_never_falls_back_to_the_projects_file(
    project: Path, args: tuple[str, ...]
) -> None:
    code, out = invoke(*args)
    assert code == 1
    here = Path.cwd().resolve()
    assert one_error_line(out) == (
        f"error: --bars data/bars.csv: no such file (looked for {here}/data/bars.csv; a relative "
        f"path is taken from the current folder; the project has {project}/data/bars.csv: give "
        "that path to use it)"
    )
    assert list(here.iterdir()) == []


def test_loaders_say_where_they_looked(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = Path.cwd().resolve()
    code, out = invoke("data", "validate", "bars", "data/bars.csv")
    assert code == 1
    assert out == (
        "data/bars.csv: cannot load 'bars' data (1 problem)\n"
        f"  - unreadable file: no such file (looked for {here}/data/bars.csv)\n"
    )
    with pytest.raises(ContractError, match=r"looked for .*elsewhere/data/bars\.csv\)"):
        read_table("data/bars.csv")
    # a notebook runs in the project's notebooks/ and names files from the project root
    monkeypatch.chdir(project / "notebooks")
    assert len(read_table("data/bars.csv")) == 300
    with pytest.raises(ContractError, match="looked for"):
        read_table("data/bars.csv", project=False)


def test_attribute_and_llm_groups_take_date_format_before_the_command(in_tmp: Path) -> None:
    """The hint "give --date-format" holds for every command that reads user files: the attribute
    and llm groups take it before the command, for every file the command reads."""
    bars_csv(in_tmp / "bars.csv", DAY_FIRST)
    code, out = invoke("attribute", "signals", "--bars", "bars.csv")
    assert code == 1 and "give --date-format %d/%m/%Y" in out
    code, out = invoke("attribute", "--date-format", "%d/%m/%Y", "signals", "--bars", "bars.csv")
    assert code == 1 and "date format" not in out  # read; what fails now is the content
    for group, command in (("attribute", "signals"), ("llm", "evaluate")):
        code, out = invoke(group, "--date-format", "%d/%m", command)
        assert code == 1 and one_error_line(out).startswith("error: --date-format must be ISO or")


def test_export_trades_writes_the_format_its_extension_names(in_tmp: Path) -> None:
    code, out = invoke("backtest", "run", "--export-trades", "t.txt")
    assert code == 1 and one_error_line(out).startswith(
        "error: --export-trades t.txt: cannot write this extension; use one of .csv"
    )
    assert list(in_tmp.iterdir()) == []
    args = ("backtest", "run", "--tickers", "SPX", "--start", "2015-01-01", "--end", "2015-03-31")
    code, out = invoke(*args, "--export-trades", "t.csv")
    assert code == 0, out
    trades = load("trades", in_tmp / "t.csv")  # a CSV in the trades contract, not JSON
    assert len(trades) > 0 and trades["date"].min() >= pd.Timestamp("2015-01-01")


def test_python_dash_m_research_is_the_command() -> None:
    import subprocess
    import sys

    for module in ("research", "research.cli"):
        res = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False
        )
        assert res.returncode == 0 and "Usage:" in res.stdout and "backtest" in res.stdout
