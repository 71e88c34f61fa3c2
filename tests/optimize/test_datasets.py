"""The committed research tables regenerate byte-identically from the embedded bars, and
satisfy their contracts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.data.loaders import load
from research.optimize import datasets

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return datasets.generate(tmp_path_factory.mktemp("sample"))


@pytest.mark.parametrize("name", ["experiments.csv", "tunes.csv", "signals.csv", "trades.json"])
def test_regenerates_identically(regenerated: dict[str, Path], name: str) -> None:
    assert regenerated[name].read_bytes() == (SAMPLE / name).read_bytes(), (
        f"data/sample/{name} is stale: run `research data generate`"
    )


def test_tables_have_the_documented_shape() -> None:
    exp = load("experiments", SAMPLE / "experiments.csv")
    assert len(exp) == 16 * 19 * 2 == 608 and exp["experiment_id"].is_unique
    assert set(exp["symbol"]) == {"SPX", "IXIC"}
    assert (exp["end"] - exp["start"]).dt.days.between(729, 731).all()
    tunes = load("tunes", SAMPLE / "tunes.csv")
    per_tune = tunes.groupby("tune_id")
    assert per_tune["run_id"].nunique().eq(16).all() and per_tune.size().eq(32).all()
    assert set(tunes["split"]) == {"is", "oos"}
    baseline = tunes.loc[tunes["is_baseline"]]
    assert (baseline["param_min_delta"] == 0.05).all() and (
        baseline["param_profit_target_pct"] == 65
    ).all()
    # OOS windows follow their IS windows without overlap
    windows = tunes.pivot_table(
        index="tune_id", columns="split", values=["window_start", "window_end"], aggfunc="first"
    )
    assert (windows[("window_start", "oos")] > windows[("window_end", "is")]).all()
    trades = load("trades", SAMPLE / "trades.json")
    assert trades["date"].min() >= pd.Timestamp("2014-01-01") and len(trades) > 300
