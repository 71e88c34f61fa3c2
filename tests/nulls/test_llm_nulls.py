"""Null calibration of the LLM trade filter's tests (``research.nulls.llm``), fast subset.

Each case of ``core_cases()`` runs 300 (the cheap ones 800) seeded null simulations on the
sample trades (a persistent AR(1) filter, phi = 0.98, unrelated to P&L) and its size at 5 % must
lie in the calibrated band (2 %-8 %) — or, for a case that is conservative by design
(``conservative=True``: the rule control as the page runs it, whose rule is informative and ranked
with hindsight), at most 8 %. The old two-proportion z-test, run on the **same** simulated data
sets (same seeds), must over-reject — so the simulated null is a realistic one, not an i.i.d.
world where every test looks fine. The sensitivity cases (phi = 0.999) run only in the
benchmark; the full table (500 runs, with power) is
``research.nulls.calibration_table(research.nulls.llm.cases(), 500)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from research.llm import analysis as an
from research.nulls import all_cases, core
from research.nulls import llm as nl

RUNS = 300
CHEAP_RUNS = 800
"""Runs of the cases that cost well under a millisecond each (rotation and paired tests): more
runs, a tighter estimate of their size (a few of them sit near 3 %)."""


CONSERVATIVE_RUNS = 100
"""Runs of the conservative case (the package's ``controls()`` per run, about 5 ms): its size
sits far below the 8 % it must not exceed."""


def _runs(case: core.NullCase) -> int:
    cheap = ("random-filter", "filter vs simple rule", "prompt variants")
    if case.conservative:
        return CONSERVATIVE_RUNS
    return CHEAP_RUNS if case.test.startswith(cheap) else RUNS


@pytest.mark.parametrize("case", nl.core_cases(), ids=lambda c: c.test.split(" (")[0])
def test_each_verdict_test_has_its_size_under_a_persistent_null(case: core.NullCase) -> None:
    res = core.run_case(case, _runs(case), seed=0, power=False)
    if case.conservative:
        assert res.size <= core.SIZE_BAND[1], (case.test, res.size)
    else:
        assert core.SIZE_BAND[0] <= res.size <= core.SIZE_BAND[1], (case.test, res.size)


def test_cases_are_the_core_and_the_sensitivity_cases_and_all_reach_the_benchmark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core_tests = [c.test for c in nl.core_cases()]
    sensitivity = [c.test for c in nl.sensitivity_cases()]
    assert [c.test for c in nl.cases()] == core_tests + sensitivity
    assert len(set(core_tests + sensitivity)) == len(core_tests) + len(sensitivity)
    # the benchmark's list (the other layers' cases left out here: they load their own data)
    from research.nulls import attribution, grids

    monkeypatch.setattr(attribution, "cases", list)
    monkeypatch.setattr(grids, "cases", list)
    everything = {(c.layer, c.test) for c in all_cases()}
    assert {(nl.LAYER, t) for t in core_tests + sensitivity} <= everything
    # the sensitivity cases: the P&L and win-rate differences at regime-like persistence
    assert len(sensitivity) == 2
    assert all(f"phi = {nl.PHI_SENSITIVITY}" in c.null for c in nl.sensitivity_cases())
    assert sensitivity[0].startswith("P&L difference") and sensitivity[1].startswith("win-rate")
    # exactly one case is conservative by design, and it says so in its name
    conservative = [c.test for c in nl.core_cases() if c.conservative]
    assert len(conservative) == 1 and "CONSERVATIVE" in conservative[0]


def test_the_sensitivity_filter_persists_for_months() -> None:
    """phi = 0.999 on the entry dates: the filter's spells are far longer than at phi = 0.98."""
    s = nl.sample_trades()
    rng = np.random.default_rng(3)
    switches = {  # approve/reject switches along the trades by date, mean of 40 draws
        phi: np.mean([np.sum(np.diff(nl._filter(rng, 0.0, phi)) != 0) for _ in range(40)])
        for phi in (nl.PHI, nl.PHI_SENSITIVITY)
    }
    assert switches[nl.PHI_SENSITIVITY] < 0.75 * switches[nl.PHI]  # about 26 against 50
    # same seed, same draw as the case runs it
    a = nl._pnl_p_sensitivity(np.random.default_rng(9), 0.0)
    frame = nl._tests_frame(nl._filter(np.random.default_rng(9), 0.0, nl.PHI_SENSITIVITY))
    b = an.approval_tests(frame)["pnl_p"]
    assert a == (b if np.isfinite(b) else 1.0) and s.n == len(frame)


def test_the_rule_case_runs_the_packages_own_controls() -> None:
    """The rule control's simulation is ``controls()`` on the sample trades with the simulated
    decisions (the rule chosen in-sample among the package's rules, at the filter's count out of
    sample), and its p-value is the one-sided p of 'the filter beats the rule'."""
    frame = nl.rule_frame()
    s = nl.sample_trades()
    assert (frame["trade_id"].to_numpy() == s.trade_id.to_numpy()).all()
    assert frame["regime"].notna().mean() > 0.9  # the page's entry regimes, not empty
    for seed in (0, 1, 2):
        approve = nl._filter(np.random.default_rng(seed), 0.0)
        ctl = an.controls(frame.assign(decision=np.where(approve, "approve", "reject")))
        assert ctl.rule in set(ctl.rules_tried["rule"])
        assert ctl.oos_kept_rule == ctl.oos_kept_filter == approve[s.n // 2 :].sum()
        one_sided = ctl.oos_diff_p / 2 if ctl.oos_diff > 0 else 1 - ctl.oos_diff_p / 2
        assert nl._rule_p(np.random.default_rng(seed), 0.0) == pytest.approx(one_sided)


def test_a_test_that_did_not_run_counts_as_not_rejected() -> None:
    assert nl._p(float("nan")) == 1.0 and nl._p(0.03) == 0.03


def test_the_old_iid_z_test_over_rejects_on_the_same_simulated_data() -> None:
    cases = {c.test: c for c in nl.reference_cases()}
    # the same seeds as the win-rate case above (whose size is in the band)
    old = core.run_case(cases["OLD two-proportion z-test (i.i.d.)"], RUNS, seed=0, power=False)
    assert old.size_ci_low > core.SIZE_BAND[1]  # far above 8 %: the null is realistic
    assert old.size > 0.15


def test_same_seed_same_data_for_the_new_and_the_old_test() -> None:
    """The win-rate case and the z-test reference draw the same filter from the same seed."""
    s = nl.sample_trades()
    a = nl._filter(np.random.default_rng(7), 0.0)
    b = nl._filter(np.random.default_rng(7), 0.0)
    assert (a == b).all() and a.sum() == round(nl.APPROVAL * s.n)


def test_the_planted_effect_has_a_realistic_size() -> None:
    size = nl.effect_size(runs=60, seed=1)
    assert 0.07 < size["win_diff"] < 0.13  # about 10 points of win rate
    assert size["pnl_diff"] > 0


def test_the_sample_trades_come_in_entry_date_order() -> None:
    s = nl.sample_trades()
    assert s.n == len(s.pnl) == len(s.months) == len(s.dates)
    assert s.dates.is_monotonic_increasing
    assert (np.diff(s.day) >= 0).all() and s.day.max() + 1 == s.days
