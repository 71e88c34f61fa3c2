"""`research attribute signals`, run in-process (``research.testing.cli.run_cli``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.data.loaders import read_table
from research.testing.cli import CliResult, run_cli


def _run(*args: str) -> CliResult:
    return run_cli("attribute", "signals", *args)


def test_sample_signals_table_and_heatmap(tmp_path: Path) -> None:
    out, heat = tmp_path / "t.csv", tmp_path / "h.parquet"
    from research.attribution.service import load_signal_study

    prepared = load_signal_study().prepared  # the counts, derived from the sample itself
    n, ended = len(prepared.usable), prepared.without_return
    res = _run("--out", str(out), "--heatmap-out", str(heat), "--by", "cluster")
    assert res.returncode == 0, res.stderr
    assert f"{n:,} signals with a regime and a 20-day outcome; in-sample" in res.stdout
    assert f"{ended} records have no 20-day forward return" in res.stderr
    assert "excess over the base rate by joint date-matched bootstrap" in res.stdout
    table = read_table(out)
    assert set(table["cluster"]) == {"trend_following", "contrarian", "macro_defensive"}
    assert table["n"].sum() == n and read_table(heat)["n"].sum() == n
    assert "excess_p" in table.columns


def test_own_signals_on_own_bars_and_bad_input(goog_csv: Path, tmp_path: Path) -> None:
    from research.attribution.agents import generate_signals
    from research.data.loaders import load

    sig = generate_signals(load("bars", goog_csv))
    path = tmp_path / "sig.csv"
    sig.to_csv(path, index=False, date_format="%Y-%m-%d")
    res = _run("--signals", str(path), "--bars", str(goog_csv), "--model", "vix_trend")
    assert res.returncode == 0, res.stderr
    assert "GOOG: no IV index given" in res.stderr and "MomentumAgent" in res.stdout
    # a symbol without bars, and a date that is not a trading day: named, exit 1, no output
    bad = pd.concat([sig.head(3), sig.head(1).assign(symbol="MSFT")])
    bad.to_csv(path, index=False, date_format="%Y-%m-%d")
    out = tmp_path / "never.csv"
    res = _run("--signals", str(path), "--bars", str(goog_csv), "--out", str(out))
    assert res.returncode == 1 and not out.exists()
    assert "column 'symbol': 1 rows name symbols without bars ['MSFT']" in res.stderr
    sat = sig.head(1).assign(asof=pd.Timestamp("2010-01-02"))
    sat.to_csv(path, index=False, date_format="%Y-%m-%d")
    res = _run("--signals", str(path), "--bars", str(goog_csv))
    assert res.returncode == 1 and "column 'asof': 1 rows are not trading days" in res.stderr
