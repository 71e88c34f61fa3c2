"""Every command on a user's own markets — a stock (GOOG) and a commodity (WTI crude), real
series shipped in packages, never the built-in S&P 500 / NASDAQ — through the command line (run
in-process), without SPX; and the error cases, each exiting 1 and writing nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.data.loaders import read_table
from research.testing.cli import CliResult, run_cli


def _run(*args: str, cwd: Path | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd)


def _metric(out: str, name: str) -> float:
    match = re.search(rf"^{name}\s+(-?[\d.]+)", out, re.M)
    assert match, f"{name} not in output"
    return float(match.group(1))


def _counter(out: str, name: str) -> int:
    match = re.search(rf"{name} (\d+)", out)
    assert match, f"{name} not in output"
    return int(match.group(1))


# --- backtest ---------------------------------------------------------------------------------


def test_backtest_a_stock_without_spx(goog_csv: Path, tmp_path: Path) -> None:
    trades = tmp_path / "trades.json"
    res = _run(
        "backtest", "run", "--tickers", "GOOG", "--bars", str(goog_csv),
        "--export-trades", str(trades),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # no IV file: the uncalibrated forecast, said so
    assert "GOOG: no IV index given for it" in res.stderr and "uncalibrated_proxy" in res.stderr
    assert "GOOG  2004-08-19..2013-03-01" in res.stdout
    assert _metric(res.stdout, "trades") == 1860
    assert _metric(res.stdout, "win_rate") == pytest.approx(0.570, abs=0.001)
    assert _counter(res.stdout, "credit_below_costs") == 0
    assert "GOOG: strike step by price, tick by price" in res.stdout
    rows = json.loads(trades.read_text())
    assert len(rows) == 1860 and {r["ticker"] for r in rows} == {"GOOG"}
    assert all(r["credit"] > 0 for r in rows)


def test_backtest_a_commodity_with_its_conventions(wti_csv: Path, tmp_path: Path) -> None:
    conv = tmp_path / "conv.yaml"
    conv.write_text("WTI: {multiplier: 1000, strike_step: 0.5}\n")
    base = ["backtest", "run", "--tickers", "WTI", "--bars", str(wti_csv), "--start", "2010-01-01"]
    plain = _run(*base, "--export-trades", str(tmp_path / "a.json"))
    futures = _run(*base, "--conventions", str(conv), "--export-trades", str(tmp_path / "b.json"))
    assert plain.returncode == 0 and futures.returncode == 0, futures.stderr
    assert "WTI: strike step 0.5, tick by price" in futures.stdout and "x1000 per contract" in (
        futures.stdout
    )
    a = pd.DataFrame(json.loads((tmp_path / "a.json").read_text()))
    b = pd.DataFrame(json.loads((tmp_path / "b.json").read_text()))
    assert len(b) > 100
    # below $100 the default grid is 0.5 too: the same spreads, exits and contracts
    keys = ["date", "short_strike", "long_strike", "exit_reason", "contracts"]
    pd.testing.assert_frame_equal(a[keys], b[keys])
    assert (np.mod(b["short_strike"], 0.5) == 0).all()
    # 1,000 barrels a contract instead of 100: ten times the P&L before fees, and max loss
    fees = 2 * 0.65 * (1 + a["exit_reason"].isin(["profit_target", "stop_loss"]))
    assert (b["pnl"] + fees).to_numpy() == pytest.approx(10 * (a["pnl"] + fees), abs=0.11)
    assert (b["max_loss"] == a["max_loss"]).all()


def test_bad_conventions_fail_before_any_output(goog_csv: Path, tmp_path: Path) -> None:
    conv = tmp_path / "conv.yaml"
    conv.write_text("GOOG: {multiplyer: 100}\n")
    trades = tmp_path / "t.json"
    res = _run(
        "backtest", "run", "--tickers", "GOOG", "--bars", str(goog_csv),
        "--conventions", str(conv), "--export-trades", str(trades),
    )  # fmt: skip
    assert res.returncode == 1 and not trades.exists()
    assert f"{conv}: GOOG: unknown field(s) ['multiplyer']" in res.stderr
    res = _run(
        "backtest", "run", "--tickers", "GOOG", "--bars", str(goog_csv),
        "--convention", "GOOG:tick=-1",
    )  # fmt: skip
    assert res.returncode == 1 and "--convention: GOOG: tick must be > 0" in res.stderr


# --- regimes ----------------------------------------------------------------------------------


def test_regimes_on_two_own_markets(stock_and_commodity_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "vt.csv"
    res = _run(
        "regimes", "classify", "--model", "vix_trend", "--bars", str(stock_and_commodity_csv),
        "--iv-proxy", "--out", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (
        "vix_trend IV buckets: GOOG by trailing 252-day IV percentile; "
        "WTI by trailing 252-day IV percentile" in res.stdout
    )
    table = read_table(out)
    assert set(table["symbol"]) == {"GOOG", "WTI"}
    # by percentile, the top bucket is as rare as VIX >= 35 was, not 47 % of the days
    extreme = table["regime"].astype(str).str.startswith("EXTREME").mean()
    assert extreme < 0.01
    snap = tmp_path / "snap.json"
    res = _run("regimes", "snapshot", "--bars", str(stock_and_commodity_csv), "--out", str(snap))
    assert res.returncode == 0, res.stderr
    assert set(json.loads(snap.read_text())["symbols"]) == {"GOOG", "WTI"}


def test_a_short_history_is_refused_with_what_it_needs(goog_csv: Path, tmp_path: Path) -> None:
    short = tmp_path / "goog60.csv"
    pd.read_csv(goog_csv).head(60).to_csv(short, index=False)
    for model, need in (("vix_trend", 126), ("vol_ratio", 61), ("markov", 501)):
        out = tmp_path / f"{model}.csv"
        res = _run(
            "regimes", "classify", "--model", model, "--bars", str(short), "--iv-proxy",
            "--out", str(out),
        )  # fmt: skip
        assert res.returncode == 1 and not out.exists()
        assert f"GOOG has 60 bars (2004-08-19..2004-11-11), needs {need}" in res.stderr
    res = _run("grid", "study", "multipliers", "--bars", str(short), "--db", str(tmp_path / "x.db"))
    assert res.returncode == 1 and "'bull_bear_vol': too little history" in res.stderr
    assert "GOOG has 60 bars (2004-08-19..2004-11-11), needs 146" in res.stderr
    res = _run("grid", "study", "limits", "--bars", str(short), "--db", str(tmp_path / "x.db"))
    assert res.returncode == 1 and "too short for one fold" in res.stderr
    # a backtest: IV from bar 23, its percentile from 20 IV values, then a 30-day expiry
    trades = tmp_path / "t.json"
    res = _run(
        "backtest", "run", "--tickers", "GOOG", "--bars", str(short), "--export-trades",
        str(trades),
    )  # fmt: skip
    assert res.returncode == 1 and not trades.exists()
    assert (
        "GOOG: too little history for a 30-day spread: IV and its percentile from 2004-10-18"
        in res.stderr
    )
    longer = tmp_path / "goog80.csv"
    pd.read_csv(goog_csv).head(80).to_csv(longer, index=False)
    res = _run("backtest", "run", "--tickers", "GOOG", "--bars", str(longer))
    assert res.returncode == 0 and _metric(res.stdout, "trades") > 0


# --- grids ------------------------------------------------------------------------------------


def test_grid_run_and_study_on_own_markets(
    stock_and_commodity_csv: Path, goog_csv: Path, tmp_path: Path
) -> None:
    db = tmp_path / "lab.duckdb"
    res = _run(
        "grid", "run", "multipliers", "--bars", str(stock_and_commodity_csv), "--db", str(db),
        "--spa-reps", "100",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "GOOG — in-sample diagnostics" in res.stdout and "WTI — in-sample" in res.stdout
    stored = _run("grid", "query", "SELECT DISTINCT tickers FROM grid_results", "--db", str(db))
    assert stored.returncode == 0 and set(stored.stdout.split()[1:]) == {"GOOG", "WTI"}
    res = _run(
        "grid", "study", "limits", "--bars", str(stock_and_commodity_csv), "--is-years", "4",
        "--oos-years", "2", "--scenarios", "baseline", "--db", str(db),
        "--summary-out", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert [r["tickers"] for r in summary["per_tickers"]] == ["GOOG+WTI"]
    assert res.stdout.startswith("GOOG+WTI: ")


def test_relative_paths_resolve_from_the_current_folder(
    goog_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command takes a relative path from the current folder and never falls back silently
    to the project's file of the same name; notebooks (run in the project's notebooks/) name
    files relative to the project root, as their parameters cells say."""
    import shutil

    from typer.testing import CliRunner

    from research.cli import app
    from research.config import ROOT_ENV, Paths, resolve_path

    root = tmp_path / "project"
    (root / "data" / "own").mkdir(parents=True)
    (root / "notebooks").mkdir()
    shutil.copy(goog_csv, root / "data" / "own" / "goog.csv")
    paths = Paths.from_root(root)
    want = (root / "data" / "own" / "goog.csv").resolve()
    monkeypatch.setenv(ROOT_ENV, str(root))
    # in a notebook: from notebooks/, the project root's file (as the parameters cells say)
    monkeypatch.chdir(root / "notebooks")
    assert resolve_path("data/own/goog.csv", paths) == want
    assert resolve_path("../data/own/goog.csv", paths) == want
    assert resolve_path(want, paths) == want
    # anywhere else: the current folder only, unless the caller asks for the project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve_path("data/own/goog.csv", paths) == elsewhere.resolve() / "data/own/goog.csv"
    assert resolve_path("data/own/goog.csv", paths, project=True) == want
    # the command, run from elsewhere, names the path, where it looked and the project's file
    res = CliRunner().invoke(
        app, ["backtest", "run", "--tickers", "GOOG", "--bars", "data/own/goog.csv"]
    )
    assert res.exit_code == 1
    assert res.output.strip() == (
        "error: --bars data/own/goog.csv: no such file (looked for "
        f"{elsewhere.resolve()}/data/own/goog.csv; a relative path is taken from the current "
        f"folder; the project has {root}/data/own/goog.csv: give that path to use it)"
    )
    # from the project root the same relative path is the project's file
    monkeypatch.chdir(root)
    res = CliRunner().invoke(
        app, ["data", "validate", "bars", "data/own/goog.csv"], catch_exceptions=False
    )
    assert res.exit_code == 0 and "OK: data/own/goog.csv satisfies" in res.output
