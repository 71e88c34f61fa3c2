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


@pytest.mark.parametrize(
    ("first", "last", "want"),
    [
        ("1999-01-04", "2018-12-31", (2001, 2018)),  # the embedded SPX: the sample's folds
        ("2004-08-19", "2013-03-01", (2007, 2012)),  # GOOG: 2004 and 2013 are not full years
        ("2000-01-10", "2002-12-20", (2002, 2002)),  # both edges count as full
        ("2000-01-11", "2002-12-19", None),  # neither does: one full year, no fold
    ],
)
def test_fold_years_need_two_full_years_before_each(
    first: str, last: str, want: tuple[int, int] | None
) -> None:
    years = datasets.fold_years(pd.Series(pd.to_datetime([first, last])))
    assert (None if len(years) == 0 else (years[0], years[-1])) == want


def test_data_tunes_on_own_bars_and_unknown_symbols(tmp_path: Path, goog_csv: Path) -> None:
    from research.testing.cli import run_cli

    out = tmp_path / "tunes.csv"
    done = run_cli("data", "tunes", "--bars", str(goog_csv), "--out", str(out))
    assert done.returncode == 0, done.stderr
    tunes = pd.read_csv(out)
    assert sorted(tunes["tune_id"].unique()) == [f"TUNE-GOOG-{i:02d}" for i in range(1, 7)]
    oos = tunes[tunes["split"] == "oos"].groupby("tune_id")["window_start"].first()
    assert list(oos) == [f"{y}-01-01" for y in range(2007, 2013)]
    assert len(tunes) == 6 * 16 * 2 and tunes.groupby("tune_id")["is_baseline"].sum().eq(2).all()
    bad = run_cli(
        "data",
        "tunes",
        "--bars",
        str(goog_csv),
        "--out",
        str(tmp_path / "x.csv"),
        "--symbols",
        "MSFT",
    )
    assert bad.returncode == 1 and "--symbols ['MSFT'] have no bars (bars: ['GOOG'])" in bad.stderr
    assert not (tmp_path / "x.csv").exists()
