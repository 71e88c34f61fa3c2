"""A grid study says when a configuration stopped trading (the date its account fell below one
contract's risk, checked against the trades of the same backtest), shows cash-only stress
windows as "no trades", and carries tear sheets of the benchmark, the in-sample best and the
walk-forward's last choice whose P&L lines add up."""

from __future__ import annotations

import pandas as pd
import pytest

from research.backtest.run import run_backtests
from research.optimize import grids
from research.optimize.scenarios import SCENARIOS, StudyData
from research.optimize.service import DEFAULT_BASE
from research.optimize.study import GridStudy, grid_study
from research.plotting.grids import stress_heatmap

SMALL = DEFAULT_BASE.replace(initial_equity=150_000.0)
"""$150k at 2 % risk cannot buy one SPX spread for long: the limit sets stop trading."""


@pytest.fixture(scope="module")
def study() -> GridStudy:
    return grid_study(
        "limits",
        [("SPX",)],
        benchmark="wide_open",
        start="2004-01-01",
        end="2012-12-31",
        regime_model="bull_bear_vol",
        is_years=3.0,
        oos_years=2.0,
        spa_reps=50,
        n_permutations=0,
        sharpe_reps=100,
        scenarios=["baseline"],
        base=SMALL,
    )


def test_stopped_trading_is_the_day_after_the_last_trade(study: GridStudy) -> None:
    table = study.in_sample_table().set_index("variant")
    stopped = table["stopped_trading"].dropna()
    assert len(stopped) >= 1, "the small account should stop trading in some limit set"
    panel = StudyData.load(symbols=["SPX"]).panel(
        SCENARIOS[0], ("SPX",), "2004-01-01", "2012-12-31"
    )
    assert panel is not None
    configs = {v.name: v.config for v in grids.limit_variants(SMALL)}
    for variant, since in stopped.items():
        (result,) = run_backtests(panel, [configs[variant]])
        last_exit = result.trades["exit_date"].max()
        after = panel.dates[panel.dates.searchsorted(last_exit, side="right")]
        assert since == after, variant
        # nothing entered after it, and sizing is what stopped it
        assert result.counters["position_size_zero"] > 0
    note = study.idle_note("SPX")
    assert f"{len(stopped)} of 5 variants stopped trading in sample" in note
    assert all(f"{v} on {d:%Y-%m-%d}" in note for v, d in stopped.items())


def test_cash_only_stress_windows_say_no_trades(study: GridStudy) -> None:
    stress = study.stress
    idle = stress.loc[stress["in_cash"] >= 1.0]
    assert len(idle) > 0
    # a cash-only window "returns" the cash rate and has no drawdown: not protection
    assert (idle["max_drawdown"].abs() < 1e-9).all() and (idle["return"] > 0).all()
    fig = stress_heatmap(stress, "drawdown", value="max_drawdown")
    text = [cell for row in fig.data[0].text for cell in row]
    assert text.count("no trades") == len(idle)
    assert "0.0%" not in text or (stress["max_drawdown"].abs() < 5e-4).sum() > len(idle)


def test_tear_sheets_name_their_role_and_add_up(study: GridStudy) -> None:
    sheets = study.sheets["SPX"]
    names = [s.name for s in sheets]
    assert names[0].startswith("wide_open (benchmark")
    assert any("in-sample best" in n for n in names)
    assert any("walk-forward's last" in n for n in names)
    assert len(set(names)) == len(names)
    for sheet in sheets:
        frame = sheet.decomposition
        assert abs(frame.attrs["check"]) < 1e-4
        assert sheet.labels is not None and sheet.labels.notna().any()
    table = study.sheet_table()
    assert list(table["configuration"]) == names
    assert table["change"].tolist() == pytest.approx([s.total for s in sheets])
    summary = study.summary()["per_tickers"][0]
    assert [s["name"] for s in summary["tear_sheets"]] == names
    assert set(summary["stopped_trading"]) == set(
        study.in_sample_table().dropna(subset=["stopped_trading"])["variant"]
    )
    assert isinstance(pd.Timestamp(next(iter(summary["stopped_trading"].values()))), pd.Timestamp)
