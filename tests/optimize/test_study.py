"""The study: controls fixed in sample, the choice's control, the permutation null's power and
its degenerate case, verdict text from the numbers, and the DSR trial count."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from research.backtest.market_panel import MarketPanel
from research.backtest.run import run_backtest
from research.optimize import grids
from research.optimize.scenarios import SCENARIOS, StudyData
from research.optimize.service import DEFAULT_BASE
from research.optimize.store import count_trials
from research.optimize.study import CHOICE, evaluate_scenario
from research.optimize.walkforward import walk_forward_splits

BASELINE = SCENARIOS[0]
VARIANTS = [
    v for v in grids.multiplier_variants(DEFAULT_BASE) if v.name in ("flat", "prod", "aggressive")
]


@pytest.fixture(scope="module")
def data() -> StudyData:
    return StudyData.load(symbols=["SPX"])


@pytest.fixture(scope="module")
def panel(data: StudyData) -> MarketPanel:
    p = data.panel(BASELINE, ("SPX",), "2005-01-01", "2010-12-31")
    assert p is not None
    return p


@pytest.fixture(scope="module")
def labels(data: StudyData) -> pd.DataFrame:
    out = data.labels(BASELINE, "bull_bear_vol")
    assert out is not None
    return out


def _evaluate(  # type: ignore[no-untyped-def]
    panel: MarketPanel,
    labels: pd.DataFrame | None,
    variants: list[grids.Variant] = VARIANTS,
):
    splits = walk_forward_splits(panel.dates, is_years=2.0, oos_years=1.0, mode="anchored")
    return evaluate_scenario(
        panel,
        variants,
        "flat",
        splits,
        labels,
        scenario=BASELINE,
        tickers="SPX",
        kind="multipliers",
        n_permutations=200,
        sharpe_reps=500,
        verify_controls=True,
    )


@pytest.fixture(scope="module")
def result(panel: MarketPanel, labels: pd.DataFrame):  # type: ignore[no-untyped-def]
    return _evaluate(panel, labels)


def test_exposure_control_matches_in_sample_capital_at_risk(result) -> None:  # type: ignore[no-untyped-def]
    ex = result.exposure
    assert len(ex) == 4 * 3  # 4 folds x 3 variants
    flat = ex.loc[ex["variant"] == "flat"]
    np.testing.assert_allclose(flat["scale"], 1.0)
    # after one refinement step the control risks what the candidate risked, in sample (±5%:
    # whole contracts and equity paths make capital at risk only roughly linear in the scale)
    np.testing.assert_allclose(ex["control_is_heat"], ex["is_heat"], rtol=0.05)
    aggressive = ex.loc[ex["variant"] == "aggressive"]
    assert (aggressive["scale"] < 0.9).all()  # it risks less than flat


def test_controls_use_only_in_sample_data(panel: MarketPanel, labels: pd.DataFrame, result) -> None:  # type: ignore[no-untyped-def]
    # crash the prices after fold 1's in-sample window: folds 0 and 1 keep their scales
    fold1 = result.walk_forward.splits[1]
    after = panel.dates > fold1.is_end
    crash = np.where(after[:, None], panel.close * 0.7, panel.close)
    changed = dataclasses.replace(panel, close=crash, open=crash)
    other = _evaluate(changed, labels)
    for fold in (0, 1):
        a = result.exposure.loc[result.exposure["fold"] == fold, "scale"].to_numpy()
        b = other.exposure.loc[other.exposure["fold"] == fold, "scale"].to_numpy()
        np.testing.assert_array_equal(a, b)
    later = result.exposure.loc[result.exposure["fold"] == 3, "scale"].to_numpy()
    assert not np.array_equal(later, other.exposure.loc[other.exposure["fold"] == 3, "scale"])


def test_choice_control_is_the_winners_control_fold_by_fold(result) -> None:  # type: ignore[no-untyped-def]
    wf = result.walk_forward
    for _, fold in wf.folds.iterrows():
        window = result.returns.loc[fold["oos_start"] : fold["oos_end"]]
        np.testing.assert_array_equal(
            window[f"control:{CHOICE}"], window[f"control:{fold['winner']}"]
        )
        np.testing.assert_array_equal(window[CHOICE], window[fold["winner"]])


def test_verdict_text_is_built_from_the_numbers(result) -> None:  # type: ignore[no-untyped-def]
    text = result.verdict.text
    t = result.test(CHOICE, "control")
    assert f"{result.choice_sharpe:.2f}" in text and f"{t.sharpe_b:.2f}" in text
    assert "paired circular-block bootstrap" in text and "label-permutation test" in text
    p = result.permutation_p
    assert (f"p = {p:.3f}" if p >= 0.001 else "p < 0.001") in text
    assert result.verdict.strategy_profitable == (result.choice_sharpe > 0)


def test_oracle_labels_beat_every_shuffle(panel: MarketPanel, data: StudyData) -> None:
    """Labels that know which entries lose (look-ahead on purpose): aggressive sizing on them
    must beat every duration-preserving shuffle — the null has power."""
    flat = run_backtest(panel, VARIANTS[0].config)
    losing = set(flat.trades.loc[flat.trades["pnl"] < 0, "entry_date"])
    oracle = pd.DataFrame(
        {
            "date": panel.dates,
            "symbol": "SPX",
            "regime": ["bear_high_vol" if d in losing else "bull_low_vol" for d in panel.dates],
        }
    )
    res = _evaluate(panel, oracle, variants=[VARIANTS[0], VARIANTS[2]])
    assert set(res.walk_forward.folds["winner"]) == {"aggressive"}
    assert res.permutation_p == pytest.approx(1 / 201)
    null = res.permutation[CHOICE][1]
    assert len(null) == 200 and (null < res.choice_sharpe).all()


def test_constant_labels_give_no_information(panel: MarketPanel) -> None:
    """One label every day: shuffling changes nothing, so the null equals the observed value
    and p = 1."""
    constant = pd.DataFrame({"date": panel.dates, "symbol": "SPX", "regime": "bull_high_vol"})
    res = _evaluate(panel, constant, variants=[VARIANTS[0], VARIANTS[2]])
    assert res.permutation_p == 1.0
    np.testing.assert_allclose(res.permutation[CHOICE][1], res.choice_sharpe, rtol=1e-12)
    # aggressive on a constant label is flat scaled by 0.5: no better than its control
    assert res.verdict.code in ("no_gain", "exposure_explains")


def test_count_trials_adds_the_stored_configs_for_the_same_data(tmp_path, panel) -> None:  # type: ignore[no-untyped-def]
    from research.optimize.store import ResultStore

    def run(variants: list[grids.Variant], start: str = "2005-01-01") -> grids.GridResult:
        return grids.run_grid(
            "g", variants, lambda _t: grids._window(panel, start, "2010-12-31"), [("SPX",)]
        )

    mine = run(VARIANTS)
    path = tmp_path / "lab.duckdb"
    assert count_trials(mine.table, "SPX", path).to_dict() == {
        "n": 3,
        "grid": 3,
        "stored": 0,
        "source": "this grid only (no results store)",
    }
    other = grids.cartesian_variants(DEFAULT_BASE, {"spread.profit_target_pct": [50, 65, 80]})
    with ResultStore(path) as store:
        store.save_grid(run(VARIANTS))  # the same configs again: not new trials
        store.save_grid(run(other))  # 3 configs without multipliers: new
        store.save_grid(run(other, start="2006-01-03"))  # another period: not counted
    got = count_trials(mine.table, "SPX", path)
    assert (got.n, got.grid, got.stored) == (6, 3, 3)
    assert str(path) in got.source
