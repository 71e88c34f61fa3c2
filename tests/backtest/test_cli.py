"""`research backtest run`, run in-process (``research.testing.cli.run_cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from research.testing.cli import CliResult, run_cli


def _run(*args: str) -> CliResult:
    return run_cli("backtest", "run", *args)


def test_regime_sized_two_ticker_run_exports_seed_trades(tmp_path: Path) -> None:
    trades, equity = tmp_path / "trades.json", tmp_path / "equity.csv"
    res = _run(
        "--tickers",
        "SPX,IXIC",
        "--start",
        "2008-01-01",
        "--end",
        "2009-12-31",
        "--regime-model",
        "bull_bear_vol",
        "--regime-multipliers",
        "1.0,0.75,0.5,0.4",
        "--sizing",
        "scaled",
        "--export-trades",
        str(trades),
        "--equity-out",
        str(equity),
    )
    assert res.returncode == 0, res.stderr
    assert "SPX, IXIC  2008-01-02..2009-12-31" in res.stdout and "2008 crisis" in res.stdout
    assert "where the P&L came from ($; they add up to the change in equity)" in res.stdout
    assert "Overshoot past the stop" in res.stdout and "Cash interest" in res.stdout
    rows = json.loads(trades.read_text())
    assert rows and {r["ticker"] for r in rows} == {"SPX", "IXIC"}
    assert {r["regime"] for r in rows} <= {
        "bull_low_vol",
        "bull_high_vol",
        "bear_low_vol",
        "bear_high_vol",
        None,
    }
    curve = pd.read_csv(equity)
    assert list(curve.columns) == ["date", "equity"] and len(curve) == 505  # trading days


def test_bad_parameters_fail_before_work(tmp_path: Path) -> None:
    res = _run("--min-delta", "0.3", "--max-delta", "0.1")
    assert res.returncode == 1 and "min_delta <= max_delta" in res.stderr
    res = _run("--regime-multipliers", "1,1,1,1")
    assert res.returncode == 1 and "needs --regime-model" in res.stderr
    res = _run("--regime-model", "bull_bear_vol", "--regime-multipliers", "1,1")
    assert res.returncode == 1 and "2 values for 4 regimes" in res.stderr
    res = _run("--tickers", "SPX,QQQ")
    assert res.returncode == 1 and "QQQ" in res.stderr
    res = _run("--start", "2030-01-01")
    assert res.returncode == 1 and "no bars" in res.stderr


def test_pricing_and_fill_options(tmp_path: Path) -> None:
    """--fills next_open, --dividend-yield and --rate reach the engine: entries at the open,
    different strikes without dividends, and the Sharpe of excess returns over --rate."""
    from research.data.market import load_bars

    def trades(*extra: str) -> list[dict]:
        out = tmp_path / f"t{len(list(tmp_path.iterdir()))}.json"
        res = _run(
            "--start", "2015-01-01", "--end", "2015-12-31", "--export-trades", str(out), *extra
        )
        assert res.returncode == 0, res.stderr
        return json.loads(out.read_text())

    base = trades()
    opens = load_bars(symbols=["SPX"]).set_index("date")["open"]
    nxt = trades("--fills", "next_open")
    assert all(r["underlying_price"] == opens[pd.Timestamp(r["date"])] for r in nxt)
    assert [r["underlying_price"] for r in base] != [r["underlying_price"] for r in nxt]
    nodiv = trades("--dividend-yield", "SPX=0")
    assert [r["short_strike"] for r in nodiv] != [r["short_strike"] for r in base]
    assert trades("--dividend-yield", "SPX=0.018") == base  # the documented default
    res = _run("--dividend-yield", "SPX=abc")
    assert res.returncode == 1 and "expected SYMBOL=YIELD" in res.stderr
    res = _run("--fills", "tomorrow")
    assert res.returncode == 1 and "fill timing must be close or next_open" in res.stderr
