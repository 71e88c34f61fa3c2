"""`research regimes classify|snapshot` on a user's CSV, run in-process (``run_cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.data.loaders import read_table
from research.testing.cli import CliResult, run_cli


def _run(*args: str) -> CliResult:
    return run_cli(*args)


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SPY/QQQ-like bars in a user's own CSV (random walk, seeded)."""
    rng = np.random.default_rng(11)
    frames = []
    for symbol, drift in (("SPY", 0.0004), ("QQQ", 0.0006)):
        close = 100 * np.exp(np.cumsum(rng.normal(drift, 0.012, 300)))
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.bdate_range("2021-01-04", periods=300).strftime("%Y-%m-%d"),
                    "symbol": symbol,
                    "open": close,
                    "high": close * 1.005,
                    "low": close * 0.995,
                    "close": close,
                    "volume": 1e6,
                }
            )
        )
    path = tmp_path_factory.mktemp("user") / "spy_qqq.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", ["vol_ratio", "tags"])
def test_classify_a_users_csv(user_csv: Path, tmp_path: Path, model: str) -> None:
    out = tmp_path / f"{model}.parquet"
    res = _run("regimes", "classify", "--model", model, "--bars", str(user_csv), "--out", str(out))
    assert res.returncode == 0, res.stderr
    table = read_table(out)
    assert len(table) == 600 and set(table["symbol"]) == {"SPY", "QQQ"}
    assert set(table["model"]) == {model}
    assert "wrote 600 rows" in res.stdout and "SPY: 2021-01-04.." in res.stdout


def test_iv_model_needs_iv_or_proxy(user_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "vt.csv"
    res = _run(
        "regimes", "classify", "--model", "vix_trend", "--bars", str(user_csv), "--out", str(out)
    )
    assert res.returncode == 1 and "--iv PATH or --iv-proxy" in res.stderr
    assert not out.exists()
    res = _run(
        "regimes",
        "classify",
        "--model",
        "vix_trend",
        "--bars",
        str(user_csv),
        "--out",
        str(out),
        "--iv-proxy",
    )
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(out)
    # the GARCH proxy needs 22 returns: earlier rows are flagged missing_iv
    assert (
        table.groupby("symbol")["flag"]
        .apply(lambda f: f.str.contains("missing_iv").sum())
        .eq(22)
        .all()
    )
    assert table["regime"].notna().sum() > 400


def test_unknown_model_bad_ruleset_and_bad_bars_exit_1(user_csv: Path, tmp_path: Path) -> None:
    res = _run(
        "regimes",
        "classify",
        "--model",
        "hmm",
        "--bars",
        str(user_csv),
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert res.returncode == 1 and "unknown regime model 'hmm'" in res.stderr
    rules = tmp_path / "r.yaml"
    rules.write_text("ruleset_id: r\nvol_ratio:\n  nope: 1\n")
    res = _run(
        "regimes",
        "classify",
        "--model",
        "vol_ratio",
        "--bars",
        str(user_csv),
        "--ruleset",
        str(rules),
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert res.returncode == 1 and "r.yaml: vol_ratio: unknown key(s) ['nope']" in res.stderr
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(user_csv)
    frame.loc[10, "close"] = None
    frame.to_csv(bad, index=False)
    res = _run(
        "regimes",
        "classify",
        "--model",
        "vol_ratio",
        "--bars",
        str(bad),
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert res.returncode == 1 and "column 'close'" in res.stderr and "row 11" in res.stderr


def test_snapshot_json(user_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    res = _run(
        "regimes", "snapshot", "--bars", str(user_csv), "--out", str(out), "--asof", "2021-06-30"
    )
    assert res.returncode == 0, res.stderr
    snap = json.loads(out.read_text())
    assert snap["asof"] == "2021-06-30" and set(snap["symbols"]) == {"SPY", "QQQ"}
    spy = snap["symbols"]["SPY"]
    assert spy["vol_regime"] in ("low", "normal", "high", "crisis")
    assert spy["vol"]["ratio"] == pytest.approx(spy["vol"]["short"] / spy["vol"]["long"])
    assert sum(snap["vol_regime_summary"].values()) == 2


def test_snapshot_asof_outside_the_data_is_an_error(tmp_path: Path) -> None:
    from research.data.market import load_bars

    bars = tmp_path / "bars.csv"
    load_bars(symbols=["SPX"], start="2018-01-01").to_csv(bars, index=False)
    for asof in ("2030-01-01", "1980-01-01"):
        out = tmp_path / f"snap_{asof}.json"
        res = _run("regimes", "snapshot", "--bars", str(bars), "--out", str(out), "--asof", asof)
        assert res.returncode == 1 and f"asof {asof} is outside the data" in res.stderr
        assert not out.exists()
