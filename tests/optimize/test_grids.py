"""Named and cartesian grids, the long results table, and the DuckDB store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.backtest.run import run_backtest
from research.backtest.spreads import BacktestConfig, ConfigError
from research.optimize import grids
from research.optimize.store import ResultStore
from research.testing.cli import run_cli


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    from research.backtest.service import load_panel, regime_labels

    panel, bars, iv = load_panel(["SPX", "IXIC"], start="2007-01-01", end="2009-12-31")
    cache = {("SPX", "IXIC"): panel}

    def panel_for(tickers: tuple[str, ...]):  # type: ignore[no-untyped-def]
        if tickers not in cache:
            cache[tickers] = load_panel(list(tickers), start="2007-01-01", end="2009-12-31")[0]
        return cache[tickers]

    return panel_for, regime_labels("bull_bear_vol", bars, iv)


BASE = BacktestConfig().replace(**{"sizing.mode": "scaled"})


def test_named_sets_are_the_seeds() -> None:
    mult = {
        v.name: dict(v.config.sizing.regime_multipliers) for v in grids.multiplier_variants(BASE)
    }
    assert list(mult) == ["flat", "prod", "mild", "aggressive", "bear_boost", "inverse"]
    assert mult["prod"] == {
        "bull_low_vol": 1.0,
        "bull_high_vol": 0.75,
        "bear_low_vol": 0.5,
        "bear_high_vol": 0.4,
    }
    assert mult["inverse"]["bull_low_vol"] == 0.5 and mult["bear_boost"]["bear_high_vol"] == 1.5
    lim = {v.name: v.config.limits for v in grids.limit_variants(BASE)}
    assert (
        lim["tight"].max_positions,
        lim["tight"].max_portfolio_heat_pct,
        lim["tight"].max_per_underlying_pct,
    ) == (3, 10.0, 10.0)
    assert (lim["single_only"].max_positions, lim["wide_open"].max_portfolio_heat_pct) == (1, 50)


def test_cartesian_grid_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(
        "base:\n  sizing.mode: scaled\ngrid:\n  spread.min_delta: [0.05, 0.1]\n"
        "  spread.profit_target_pct: [50, 65, 80]\n"
    )
    base, axes = grids.load_grid_file(path)
    variants = grids.cartesian_variants(base, axes)
    assert len(variants) == 6 and base.sizing.mode == "scaled"
    assert variants[0].name == "min_delta=0.05,profit_target_pct=50"
    assert {(v.config.spread.min_delta, v.config.spread.profit_target_pct) for v in variants} == {
        (a, b) for a in (0.05, 0.1) for b in (50, 65, 80)
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  spread.min_delta: [0.2]\n  spread.max_delta: [0.1]\n")
    with pytest.raises(ConfigError, match="grid point min_delta=0.2,max_delta=0.1"):
        grids.cartesian_variants(*grids.load_grid_file(bad))
    with pytest.raises(ConfigError, match="expected keys"):
        (tmp_path / "x.yaml").write_text("points: {}\n")
        grids.load_grid_file(tmp_path / "x.yaml")


def test_grid_rows_equal_single_backtests(setup) -> None:  # type: ignore[no-untyped-def]
    panel_for, labels = setup
    variants = grids.multiplier_variants(BASE)
    result = grids.run_grid(
        "mult",
        variants,
        panel_for,
        [("SPX",), ("IXIC",)],
        regimes=labels,
        windows=[("2007-01-01", "2008-06-30"), ("2008-07-01", "2009-12-31")],
    )
    table = result.table
    assert len(table) == 6 * 2 * 2 and list(table["row_id"]) == list(range(24))
    assert set(table["tickers"]) == {"SPX", "IXIC"}
    # one row, recomputed as an ordinary backtest on the same window
    row = table.loc[(table["variant"] == "prod") & (table["tickers"] == "IXIC")].iloc[1]
    panel = grids._window(panel_for(("IXIC",)), "2008-07-01", "2009-12-31")
    single = run_backtest(panel, variants[1].config, labels)
    assert row["trades"] == len(single.trades)
    assert row["cagr"] == pytest.approx(single.metrics.cagr, rel=1e-12)
    np.testing.assert_allclose(
        result.returns[row["row_id"]].dropna().to_numpy(),
        single.equity.pct_change().fillna(0).to_numpy(),
    )
    assert row["param_sizing_regime_multipliers"].startswith("bull_low_vol=1,bull_high_vol=0.75")
    # chunking does not change anything
    chunked = grids.run_grid(
        "mult",
        variants,
        panel_for,
        [("SPX",), ("IXIC",)],
        regimes=labels,
        windows=[("2007-01-01", "2008-06-30"), ("2008-07-01", "2009-12-31")],
        chunk_size=4,
    )
    pd.testing.assert_frame_equal(chunked.table, table)


def test_store_round_trip_sql_and_rollback(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel_for, labels = setup
    result = grids.run_grid(
        "limits", grids.limit_variants(BASE), panel_for, [("SPX", "IXIC")], regimes=labels
    )
    db = tmp_path / "lab.duckdb"
    with ResultStore(db) as store:
        run_id = store.save_grid(result, note="test")
        best = store.query(
            "SELECT variant, sharpe FROM grid_results WHERE run_id = ? "
            "ORDER BY sharpe DESC LIMIT 1",
            [run_id],
        )
        assert (
            best["variant"].iloc[0]
            == result.table.sort_values("sharpe", ascending=False)["variant"].iloc[0]
        )
        back = store.load_grid(run_id)
    pd.testing.assert_frame_equal(back.table, result.table, check_dtype=False)
    np.testing.assert_allclose(back.returns.to_numpy(), result.returns.to_numpy())
    with ResultStore(db) as store:
        assert list(store.runs()["grid"]) == ["limits"]
        broken = grids.GridResult(
            "broken", result.table.assign(sharpe="not a number"), result.returns
        )
        with pytest.raises(Exception):  # noqa: B017 - duckdb's conversion error type
            store.save_grid(broken)
        assert list(store.runs()["grid"]) == ["limits"]  # nothing half-written
        assert store.query("SELECT count(*) AS n FROM grid_results")["n"].iloc[0] == 5


def test_grid_cli_runs_stores_reports_and_queries(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "base: {sizing.mode: scaled, spread.max_delta: 0.3}\n"
        "grid:\n  spread.min_delta: [0.05, 0.1, 0.15]\n"
        "  spread.profit_target_pct: [50, 65, 80]\n"
    )
    db = tmp_path / "lab.duckdb"
    res = run_cli(
        "grid",
        "run",
        "cartesian",
        "--grid-file",
        str(grid),
        "--tickers",
        "SPX",
        "--start",
        "2010-01-01",
        "--end",
        "2013-12-31",
        "--db",
        str(db),
        "--spa-reps",
        "100",
    )
    assert res.returncode == 0, res.stderr
    assert "DSR" in res.stdout and "PBO" in res.stdout and "neighbourhood" in res.stdout
    out = run_cli("grid", "query", "SELECT count(*) AS n FROM grid_results", "--db", str(db))
    assert out.returncode == 0 and out.stdout.split()[-1] == "9"
    bad = run_cli("grid", "run", "sideways", "--db", str(db))
    assert bad.returncode == 1 and "unknown grid 'sideways'" in bad.stderr


def test_cli_grid_study_prints_verdicts_and_writes_the_summary(tmp_path: Path) -> None:
    import json

    out = tmp_path / "study.json"
    args = ["grid", "study", "multipliers", "--tickers", "SPX", "--start", "2007-01-01"]
    args += ["--end", "2011-12-31", "--is-years", "2", "--oos-years", "1.5"]
    args += ["--scenarios", "skew_x1.5,real_iv_only", "--sharpe-reps", "300"]
    args += ["--db", str(tmp_path / "none.duckdb"), "--summary-out", str(out)]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    row = summary["per_tickers"][0]
    assert res.stdout.startswith(f"SPX: {row['verdict']}")
    assert [s["scenario"] for s in row["sensitivity"]] == ["baseline", "skew_x1.5", "real_iv_only"]
    assert "not applicable" in res.stdout and "skew_x1.5" in res.stdout
    bad = run_cli("grid", "study", "sideways")
    assert bad.returncode == 1 and "unknown study 'sideways'" in bad.stderr
    bad = run_cli("grid", "study", "limits", "--scenarios", "nope")
    assert bad.returncode == 1 and "unknown scenario(s) ['nope']" in bad.stderr


def test_cli_grid_query_errors_never_create_the_database(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    res = run_cli("grid", "query", "SELECT 1", "--db", str(missing))
    assert res.returncode == 1 and "no results database" in res.stderr
    assert not missing.exists() and "Traceback" not in res.stderr
    from research.optimize.store import ResultStore

    db = tmp_path / "lab.duckdb"
    with ResultStore(db) as store:
        store.con.execute("CREATE TABLE grid_runs AS SELECT 1 AS n")
    res = run_cli("grid", "query", "SELEC nonsense", "--db", str(db))
    assert (
        res.returncode == 1 and "the query failed" in res.stderr and "Traceback" not in res.stderr
    )
    ok = run_cli("grid", "query", "SELECT n FROM grid_runs", "--db", str(db))
    assert ok.returncode == 0 and ok.stdout.split()[-1] == "1"
