"""Null calibration of the attribution verdicts (``research.nulls.attribution``), with modest
seeded runs: the cases run the package's own functions, their nulls are nulls (no effect
built in), each new test keeps its size where the simulation says it does, says so where it does
not, and the old test it replaced misbehaves on the very same simulated data sets.

``benchmarks/bench_null_calibration.py`` runs 500 data sets per case with the table's own
bootstrap draws; here the signals' intervals use 2,000 draws (``signal_case(reps=...)``) and
the runs are few, to keep the file fast.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from research.attribution import experiments as ex
from research.nulls import SIZE_BAND, NullCase, run_case
from research.nulls import attribution as na


@pytest.fixture(scope="module")
def new() -> list[NullCase]:
    return na.cases()


@pytest.fixture(scope="module")
def old() -> dict[str, NullCase]:
    out: dict[str, NullCase] = {}
    for c in na.reference_cases():
        out.setdefault(c.layer, c)  # the first reference case of each layer: the replaced test
    return out


def test_cases_cover_every_attribution_verdict_with_unique_names(new: list[NullCase]) -> None:
    assert {c.layer for c in new} == set(na.LAYERS.values())
    keys = [(c.layer, c.test) for c in new]
    assert len(set(keys)) == len(keys)  # the published table's key
    for case in new:
        p = case.simulate(np.random.default_rng(0), 0.0)
        assert isinstance(p, float) and 0.0 <= p <= 1.0 and math.isfinite(p)
    signals = [c for c in new if c.layer == na.LAYERS["signals"]]
    assert [na.SIGNAL_CELL[0] in c.null for c in signals] == [True, False]
    assert na.HELDOUT_CELL[0] in signals[1].null and "held out" in signals[1].null
    # as many configurations as the sample's regimes compare (16 configurations each)
    assert na.experiment_configs() == 16


def test_the_experiment_case_runs_best_by_regime_on_simulated_experiments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[pd.DataFrame] = []
    real = ex.best_by_regime

    def spy(tagged: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        seen.append(tagged)
        return real(tagged, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ex, "best_by_regime", spy)
    case = na.experiment_case("two_years_apart")
    p = case.simulate(np.random.default_rng(1), 0.0)
    assert len(seen) == 1
    frame = seen[0]
    assert frame["config_name"].nunique() == 16 and len(frame) == 16 * 20
    row = real(frame).iloc[0]
    assert p == row["p_vs_runner_up"]  # the package's default block rule
    # 40 years (1979-2018), two-year windows two years apart on SPX and IXIC: 10 blocks
    assert (row["blocks"], row["tested"]) == (10, True)
    assert frame["start"].min() == pd.Timestamp("1979-01-01")
    assert frame["end"].max() == pd.Timestamp("2016-12-31")


def test_the_nulls_have_no_effect_built_in() -> None:
    """Under the null a simulated agent's mean excess over the base rate is about 0, well
    inside one standard error of the cell's excess (the table's); the planted effect moves it."""
    for heldout, se in ((False, 0.0047), (True, 0.0005)):
        sizes = na.signal_effect_size(15, seed=1, heldout=heldout)
        assert abs(sizes["null_excess"]) < se / 3, (heldout, sizes)
        assert sizes["effect_excess"] > sizes["null_excess"] + se / 3, (heldout, sizes)
    # the experiment null: every configuration's mean over many groups is 0
    rng = np.random.default_rng(2)
    means = np.mean(
        [na.simulate_experiments("two_years_apart", 4, rng).groupby("config_name")["pnl_pct"]
         .mean() for _ in range(100)], axis=0,
    )  # fmt: skip
    assert np.abs(means).max() < 0.5  # sd of one group's config mean: about 1 (10 blocks)


def test_selection_among_equal_configurations_is_conservative_and_says_why(
    new: list[NullCase], old: dict[str, NullCase]
) -> None:
    """Best and runner-up chosen among 16 equal configurations are close: the sign-flip test
    on their difference rejects less than 5 % (the benchmark: under 1 %), so the case is marked
    conservative and its null says why; the i.i.d. bootstrap over windows it replaced
    over-rejects on the same data sets. The two-configuration cases are not conservative."""
    experiments = [c for c in new if c.layer == na.LAYERS["experiments"]]
    assert [c.conservative for c in experiments] == [True, False, False]
    k16 = experiments[0]
    assert "among 16 configurations" in k16.test
    assert (
        "selecting the top two of many equal configurations makes their gap small relative to "
        "its noise"
    ) in k16.null
    r = run_case(k16, 60, seed=1, power=False)
    assert r.size < SIZE_BAND[0] and r.calibrated, r
    o = run_case(old[na.LAYERS["experiments"]], 150, seed=1, power=False)
    assert o.size > 0.2, o  # the i.i.d. bootstrap counts dependent windows as independent


def test_windows_less_than_two_years_apart_share_a_block_in_the_simulation() -> None:
    """The sample's windows a year apart (7 blocks under the former one-year rule) are one block
    under the two-year rule — untested, p = 1 — and the 40-year design keeps 10 blocks under
    every rule. The cases' persistences: 0.5, the sample's own estimate computed from its
    window differences (lag 1: between 0.25 and 0.42, lag 2 near 0.5), and the checks."""
    rng = np.random.default_rng(5)
    year_apart = na.simulate_experiments("a_year_apart", 2, rng)
    now = ex.best_by_regime(year_apart).iloc[0]
    before = ex.best_by_regime(year_apart, gap_days=365).iloc[0]
    assert (now["blocks"], now["p_vs_runner_up"], now["tested"]) == (1, 1.0, False)
    assert (before["blocks"], before["tested"]) == (7, True)
    apart = na.experiment_design("two_years_apart")
    blocks = ex.overlap_blocks(apart["start"], apart["end"])
    assert len(apart) == 20 and blocks.max() == 9
    for gap in (365, 0):
        assert (blocks == ex.overlap_blocks(apart["start"], apart["end"], gap_days=gap)).all()
    estimate = na.sample_persistence()
    assert 0.25 < estimate.phi < 0.42 and 0.42 < estimate.phi_lag2 < 0.58, estimate
    two = na.experiment_case(configs=2)
    assert "two equal configurations (no selection)" in two.null and "phi = 0.5," in two.null
    assert "two years apart correlate 0.094" in two.null
    sample = na.experiment_case(configs=2, phi=None)
    assert sample.test.endswith(
        f"yearly persistence {round(estimate.phi, 2):g} (the sample's estimate)"
    )
    assert "persistence 0.7" in na.experiment_case(configs=2, phi=0.7).test
    with pytest.raises(ValueError, match=r"phi must be a number in \[0, 1\), got 1.0"):
        na.simulate_experiments("two_years_apart", 2, rng, phi=1.0)
    with pytest.raises(ValueError, match=r"phi must be a number in \[0, 1\), got 1.2"):
        na.experiment_case(configs=2, phi=1.2)


def test_uplift_on_blocks_of_years_keeps_its_size_where_single_years_did_not(
    new: list[NullCase], old: dict[str, NullCase]
) -> None:
    """Both tunes nulls — the selected pair persisting from year to year as on the sample, and
    independent years — within the 2-8 % band for the t-test clustered by blocks of 3 OOS
    years (2,000 cheap runs each); the former single-year clusters over-reject on the very
    same draws. The real, uncentred sharpes (not a null) are no longer a case."""
    tunes = [c for c in new if c.layer == na.LAYERS["tunes"]]
    assert [c.test.split(" (")[0] for c in tunes] == [
        "uplift vs baseline, persistent selection",
        "uplift vs baseline, independent years",
    ]
    assert na.sample_tune_scores().persistence == pytest.approx(28 / 32)
    assert "0.875" in tunes[0].null and "independent years" in tunes[1].null
    assert all("centred" in c.null for c in tunes)
    # the benchmark runs them 5,000 times (``min_runs``); 2,000 here
    tunes = [dataclasses.replace(c, min_runs=0) for c in tunes]
    for case in tunes:
        r = run_case(case, 2000, seed=2, power=False)
        assert SIZE_BAND[0] <= r.size <= SIZE_BAND[1], r
    single = old[na.LAYERS["tunes"]]
    assert "single OOS years" in single.test
    assert run_case(single, 2000, seed=2, power=False).size > 0.12
    power = run_case(tunes[0], 200, seed=2)
    assert power.power > 0.6, power
    with pytest.raises(ValueError, match=r"persistence must be in \[0, 1\], got 1.5"):
        na.tune_case(persistence=1.5)


def test_signals_excess_interval_keeps_its_size_under_both_nulls(
    old: dict[str, NullCase],
) -> None:
    for heldout, runs in ((False, 150), (True, 80)):
        r = run_case(na.signal_case(heldout, reps=2000), runs, seed=3, power=False)
        assert r.size <= SIZE_BAND[1], r
    o = run_case(old[na.LAYERS["signals"]], 150, seed=3, power=False)
    assert o.size == 0.0  # the former interval is far too wide ...
    rp = run_case(na.signal_case(reps=2000), 60, seed=4)
    op = run_case(old[na.LAYERS["signals"]], 60, seed=4)
    assert rp.power > op.power + 0.1  # ... and misses real effects the joint one finds
    with pytest.raises(ValueError, match="reps must be an integer >= 2, got 1"):
        na.signal_case(reps=1)
