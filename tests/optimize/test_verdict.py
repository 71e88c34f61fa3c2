"""Tests of ``research.optimize.verdict``: one test per wording rule, the boundaries, the
numbers in the text and the robustness headline."""

from __future__ import annotations

import dataclasses
import math

import pytest

from research.optimize.inference import SHARPE_TEST_NAME
from research.optimize.verdict import (
    MIN_OOS_DAYS,
    PERMUTATION_TEST_NAME,
    VERDICT_CODES,
    VerdictInputs,
    robustness,
    word_verdict,
)


def _inputs(**changes: object) -> VerdictInputs:
    """All significant, positive Sharpe, with a permutation p: "adds_value" by default."""
    base = VerdictInputs(
        idea="regime sizing",
        choice="the walk-forward choice",
        benchmark="flat sizing",
        choice_sharpe=0.8,
        benchmark_sharpe=0.3,
        control_sharpe=0.4,
        p_vs_benchmark=0.01,
        p_vs_control=0.02,
        p_vs_cash=0.004,
        choice_cagr=0.061,
        cash_rate=0.02,
        permutation_p=0.03,
        n_permutations=200,
    )
    return dataclasses.replace(base, **changes)


# --- the rules -------------------------------------------------------------------------------


def test_rule_no_gain() -> None:
    # higher Sharpe but the test does not reject
    v = word_verdict(_inputs(p_vs_benchmark=0.2))
    assert v.code == "no_gain"
    assert v.headline == "no significant out-of-sample gain over flat sizing"
    assert v.text.startswith("No significant out-of-sample gain over flat sizing: ")
    # significant p but a lower Sharpe is not a gain either
    v = word_verdict(_inputs(choice_sharpe=0.2, p_vs_benchmark=0.001))
    assert v.code == "no_gain"
    # equal Sharpe is not "higher"
    assert word_verdict(_inputs(choice_sharpe=0.3, p_vs_benchmark=0.001)).code == "no_gain"


def test_rule_exposure_explains_positive_sharpe_beats() -> None:
    v = word_verdict(_inputs(p_vs_control=0.3))
    assert v.code == "exposure_explains"
    assert v.headline == (
        "beats flat sizing out of sample only by changing exposure: no better than its "
        "exposure-matched control"
    )
    assert "loses less than" not in v.text
    assert v.strategy_profitable


def test_rule_exposure_explains_nonpositive_sharpe_loses_less() -> None:
    v = word_verdict(
        _inputs(choice_sharpe=-0.1, benchmark_sharpe=-0.6, control_sharpe=-0.05, p_vs_cash=0.7)
    )
    assert v.code == "exposure_explains"
    assert v.headline.startswith("loses less than flat sizing out of sample only by changing")
    assert " beats flat sizing" not in v.text
    assert not v.strategy_profitable
    # Sharpe exactly 0 counts as not profitable: "loses less than"
    v0 = word_verdict(_inputs(choice_sharpe=0.0, benchmark_sharpe=-0.6, p_vs_control=0.5))
    assert v0.code == "exposure_explains" and v0.headline.startswith("loses less than")
    # a control with a higher Sharpe is not beaten even with a small p
    vc = word_verdict(_inputs(control_sharpe=0.9, p_vs_control=0.001))
    assert vc.code == "exposure_explains"


def test_rule_labels_explain() -> None:
    v = word_verdict(_inputs(permutation_p=0.2))
    assert v.code == "labels_explain"
    assert v.headline == (
        "beats its exposure-matched control out of sample, but shuffled regime labels do "
        "as well: no evidence that regime information helps"
    )
    assert "adds value" not in v.text


def test_rule_loses_less() -> None:
    v = word_verdict(
        _inputs(
            choice_sharpe=-0.2,
            benchmark_sharpe=-0.9,
            control_sharpe=-0.7,
            p_vs_cash=0.8,
            choice_cagr=0.004,
        )
    )
    assert v.code == "loses_less"
    assert v.headline == (
        "loses less than flat sizing out of sample (beyond exposure), but does not beat cash"
    )
    assert "adds value" not in v.text
    assert "does not beat cash" in v.text
    assert not v.strategy_profitable


def test_rule_adds_value() -> None:
    v = word_verdict(_inputs())
    assert v.code == "adds_value"
    assert v.headline == "regime sizing adds value out of sample"
    assert v.text.startswith("Regime sizing adds value out of sample: ")
    assert v.strategy_profitable
    assert set(VERDICT_CODES) == {
        "adds_value",
        "loses_less",
        "untested",
        "labels_explain",
        "exposure_explains",
        "no_gain",
    }


def test_no_permutation_null_for_limit_sets_skips_rule_4() -> None:
    # limit sets have no labels to shuffle: no permutation test is required
    v = word_verdict(_inputs(permutation_p=None, n_permutations=0, idea="the limit set"))
    assert v.code == "adds_value"
    assert v.headline == "the limit set adds value out of sample"
    assert PERMUTATION_TEST_NAME not in v.text
    assert "shuffles" not in v.text
    # and with a non-positive Sharpe it is "loses_less", not "labels_explain"
    v = word_verdict(
        _inputs(permutation_p=None, choice_sharpe=-0.1, benchmark_sharpe=-0.8, control_sharpe=-0.7)
    )
    assert v.code == "loses_less"


@pytest.mark.parametrize(
    ("permutation_p", "n_permutations"),
    [(None, 0), (None, 200), (math.nan, 200), (0.01, 0)],
)
def test_multiplier_study_without_its_permutation_test_is_untested(
    permutation_p: float | None, n_permutations: int
) -> None:
    """A regime-multiplier study needs the label-permutation test: a missing p (not run, NaN,
    or zero shuffles) never counts as passed."""
    v = word_verdict(
        _inputs(
            permutation_p=permutation_p,
            n_permutations=n_permutations,
            permutation_required=True,
        )
    )
    assert v.code == "untested"
    assert "label-permutation test was not run" in v.headline
    assert f"{PERMUTATION_TEST_NAME}: not run" in v.text
    assert "adds value" not in v.text
    # the same numbers with the test run and passed do add value
    ran = word_verdict(_inputs(permutation_p=0.01, permutation_required=True))
    assert ran.code == "adds_value"
    # untested never hides an earlier failure: no gain over the benchmark stays no_gain
    assert (
        word_verdict(
            _inputs(permutation_p=None, permutation_required=True, p_vs_benchmark=0.4)
        ).code
        == "no_gain"
    )


def test_too_short_out_of_sample_is_untested_whatever_the_pvalues() -> None:
    assert word_verdict(_inputs(oos_days=MIN_OOS_DAYS)).code == "adds_value"
    v = word_verdict(_inputs(oos_days=MIN_OOS_DAYS - 1))
    assert v.code == "untested"
    assert v.headline == (
        f"untested: only {MIN_OOS_DAYS - 1} out-of-sample days, fewer than the {MIN_OOS_DAYS} "
        "a verdict needs"
    )
    assert word_verdict(_inputs(oos_days=100, p_vs_benchmark=0.5)).code == "untested"


# --- boundaries ------------------------------------------------------------------------------


def test_sharpe_exactly_zero_is_not_adds_value() -> None:
    v = word_verdict(_inputs(choice_sharpe=0.0, benchmark_sharpe=-0.5, control_sharpe=-0.4))
    assert v.code == "loses_less"
    assert not v.strategy_profitable
    assert "adds value" not in v.text
    assert "does not beat cash" in v.text
    # just above zero is profitable
    v = word_verdict(_inputs(choice_sharpe=0.001, benchmark_sharpe=-0.5, control_sharpe=-0.4))
    assert v.code == "adds_value" and v.strategy_profitable


def test_p_exactly_alpha_is_not_significant() -> None:
    assert word_verdict(_inputs(p_vs_benchmark=0.05)).code == "no_gain"
    assert word_verdict(_inputs(p_vs_control=0.05)).code == "exposure_explains"
    assert word_verdict(_inputs(permutation_p=0.05)).code == "labels_explain"
    v = word_verdict(_inputs(p_vs_cash=0.05))
    assert v.code == "adds_value"
    assert "makes money over cash, though not significantly" in v.text
    # a different alpha moves the boundary
    assert word_verdict(_inputs(p_vs_benchmark=0.05, alpha=0.1)).code == "adds_value"
    assert word_verdict(_inputs(p_vs_benchmark=0.011, alpha=0.01)).code == "no_gain"


def test_nan_pvalues_are_not_significant() -> None:
    v = word_verdict(_inputs(p_vs_benchmark=math.nan))
    assert v.code == "no_gain"
    assert "(p n/a)" in v.text
    assert word_verdict(_inputs(p_vs_control=math.nan)).code == "exposure_explains"
    # a NaN permutation p is a test that did not run: untested, never passed or failed
    assert word_verdict(_inputs(permutation_p=math.nan)).code == "untested"
    v = word_verdict(_inputs(p_vs_cash=math.nan))
    assert v.code == "adds_value"
    assert "makes money over cash, though not significantly out of sample (p n/a)" in v.text
    # NaN Sharpe ratios never "beat" and are not profitable
    v = word_verdict(_inputs(choice_sharpe=math.nan))
    assert v.code == "no_gain" and not v.strategy_profitable
    assert word_verdict(_inputs(benchmark_sharpe=math.nan)).code == "no_gain"


# --- the text --------------------------------------------------------------------------------


def test_text_contains_every_number_and_both_test_names() -> None:
    v = word_verdict(_inputs(p_vs_cash=0.0004))
    expected = (
        "Regime sizing adds value out of sample: the walk-forward choice had an out-of-sample "
        "Sharpe (excess over cash) of 0.80 against 0.30 for flat sizing (p = 0.010), 0.40 for "
        "its exposure-matched control (p = 0.020) and 0 for cash (p < 0.001); p-values from a "
        f"{SHARPE_TEST_NAME}; {PERMUTATION_TEST_NAME} over 200 shuffles: p = 0.030. "
        "The strategy itself makes money over cash out of sample (p < 0.001): CAGR +6.1% "
        "against +2.0% for cash."
    )
    assert v.text == expected


def test_text_number_formats() -> None:
    v = word_verdict(
        _inputs(
            choice_sharpe=1.23456,
            benchmark_sharpe=-0.005,
            control_sharpe=0.996,
            p_vs_benchmark=0.0123,
            p_vs_control=0.001,
            p_vs_cash=0.00099,
            choice_cagr=-0.0456,
            cash_rate=0.0,
            permutation_p=0.0005,
        )
    )
    assert "of 1.23 against -0.01 for flat sizing (p = 0.012)" in v.text
    assert "1.00 for its exposure-matched control (p = 0.001)" in v.text
    assert "0 for cash (p < 0.001)" in v.text
    assert "200 shuffles: p < 0.001" in v.text
    assert "CAGR -4.6% against +0.0% for cash" in v.text
    v = word_verdict(_inputs(choice_cagr=math.nan))
    assert "CAGR n/a against" in v.text


def test_text_always_says_whether_it_beats_cash() -> None:
    cases = [
        _inputs(),  # adds_value
        _inputs(p_vs_benchmark=0.5),  # no_gain, profitable
        _inputs(p_vs_control=0.5, p_vs_cash=0.3),  # exposure_explains, not significant
        _inputs(permutation_p=0.5),  # labels_explain
        _inputs(choice_sharpe=-0.1, benchmark_sharpe=-0.5, control_sharpe=-0.4, p_vs_cash=0.9),
        _inputs(choice_sharpe=-0.1, p_vs_cash=0.9),  # no_gain, losing
    ]
    codes = []
    for inp in cases:
        v = word_verdict(inp)
        codes.append(v.code)
        assert v.code in VERDICT_CODES
        assert SHARPE_TEST_NAME in v.text
        assert (PERMUTATION_TEST_NAME in v.text) == (inp.permutation_p is not None)
        if inp.choice_sharpe > 0:
            assert "The strategy itself makes money over cash" in v.text
            assert "does not beat cash" not in v.text
            significant = inp.p_vs_cash < inp.alpha
            assert ("though not significantly" in v.text) == (not significant)
        else:
            assert "The strategy itself does not beat cash out of sample" in v.text
            assert "makes money over cash" not in v.text
            assert "adds value" not in v.text
    assert codes == [
        "adds_value",
        "no_gain",
        "exposure_explains",
        "labels_explain",
        "loses_less",
        "no_gain",
    ]


def test_custom_test_name_is_used() -> None:
    v = word_verdict(_inputs(test="studentised bootstrap"))
    assert "p-values from a studentised bootstrap;" in v.text
    assert SHARPE_TEST_NAME not in v.text


# --- robustness ------------------------------------------------------------------------------


def test_robustness_all_agree() -> None:
    r = robustness("adds_value", [("a", "adds_value"), ("b", "adds_value"), ("c", "adds_value")])
    assert r.robust
    assert r.flips == () and r.not_applicable == ()
    assert r.headline == "robust — holds in all 3 sensitivity scenarios"


def test_robustness_some_flip() -> None:
    r = robustness(
        "adds_value",
        [("a", "no_gain"), ("b", "adds_value"), ("c", "exposure_explains"), ("d", "adds_value")],
    )
    assert not r.robust
    assert r.flips == ("a", "c")
    assert r.headline == "fragile — flips under a, c"


def test_robustness_not_applicable_listed_and_not_counted() -> None:
    r = robustness("no_gain", [("a", "no_gain"), ("perm", None), ("b", "no_gain"), ("x", None)])
    assert r.robust
    assert r.not_applicable == ("perm", "x")
    assert r.headline == ("robust — holds in all 2 sensitivity scenarios (perm, x: not applicable)")
    r = robustness("no_gain", [("a", "loses_less"), ("perm", None)])
    assert not r.robust and r.flips == ("a",)
    assert r.headline == "fragile — flips under a (perm: not applicable)"


def test_robustness_none_applicable_is_untested() -> None:
    r = robustness("adds_value", [("a", None), ("b", None)])
    assert not r.robust
    assert not r.tested  # untested, which the findings must not call fragile
    assert r.flips == ()
    assert r.headline == "untested — no sensitivity scenario applies (a, b: not applicable)"
    r = robustness("adds_value", [])
    assert not r.robust
    assert r.headline == "untested — no sensitivity scenario applies"


@pytest.mark.parametrize("code", VERDICT_CODES)
def test_robustness_compares_against_the_baseline_code(code: str) -> None:
    # every other code flips, except "untested" (a scenario that tested nothing)
    others = [c for c in VERDICT_CODES if c not in (code, "untested")]
    r = robustness(code, [(f"s_{c}", c) for c in VERDICT_CODES])
    assert r.flips == tuple(f"s_{c}" for c in others)
    assert not r.robust


def test_robustness_with_a_single_applicable_scenario() -> None:
    r = robustness("no_gain", [("a", "no_gain"), ("b", None)])
    assert r.robust
    assert r.headline == (
        "robust — holds in the one sensitivity scenario that applies (b: not applicable)"
    )


def test_robustness_an_untested_scenario_is_not_a_flip() -> None:
    """A scenario too short for a verdict (untested) tested nothing: it neither flips a robust
    result nor counts as holding."""
    r = robustness("adds_value", [("real_iv_only", "untested"), ("skew", "adds_value")])
    assert r.robust and r.flips == () and r.tested
    assert r.headline == (
        "robust — holds in the one sensitivity scenario that applies (real_iv_only: untested there)"
    )
    r = robustness("adds_value", [("real_iv_only", "untested"), ("x", None)])
    assert not r.robust and not r.tested
    assert r.headline == (
        "untested — no sensitivity scenario applies (x: not applicable) (real_iv_only: "
        "untested there)"
    )
    # an untested baseline compared with untested scenarios: they agree
    assert robustness("untested", [("a", "untested")]).robust
