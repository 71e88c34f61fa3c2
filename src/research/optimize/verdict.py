"""The words of a study's verdict, generated from its numbers by one set of tested rules.

Rules (``word_verdict``), applied to the walk-forward choice's **out-of-sample** results, with
Sharpe ratios of excess returns over cash and one-sided p-values at level ``alpha``:

1. The choice "beats" a comparator only if its Sharpe is higher *and* the Sharpe-difference test
   rejects at ``alpha``; the test is named next to every p-value.
2. No significant gain over the benchmark → ``no_gain``.
3. A gain over the benchmark that the **exposure-matched control** matches (no significant
   difference against it) → ``exposure_explains``: risking less (or more), not the idea,
   explains it.
4. For regime-multiplier sets, a gain over the control that **shuffled regime labels** also
   reach (label-permutation p >= ``alpha``) → ``labels_explain``.
5. A gain over the control whose permutation test **was not run** (a regime-multiplier study
   with ``n_permutations = 0``, or a NaN p) → ``untested``: a missing p never counts as
   passed. So does an out-of-sample record shorter than ``MIN_OOS_DAYS`` (whatever its
   p-values: thin evidence is untested, never validated).
6. Everything significant but the choice's own Sharpe ≤ 0 → ``loses_less``: it loses less than
   the benchmark but does not beat cash. Never "adds value" with an out-of-sample Sharpe ≤ 0.
7. Otherwise → ``adds_value``.

Every text also says whether the strategy itself makes money over cash out of sample.

``robustness`` turns the scenario verdicts (``research.optimize.scenarios``) into the headline
"robust" (the verdict code is the same in every scenario that applies), "fragile — flips
under …", or "untested" when no scenario applies (untested is not fragile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from research.optimize.inference import SHARPE_TEST_NAME

__all__ = [
    "VERDICT_CODES",
    "Robustness",
    "MIN_OOS_DAYS",
    "Verdict",
    "VerdictInputs",
    "robustness",
    "word_verdict",
]

VERDICT_CODES: tuple[str, ...] = (
    "adds_value",
    "loses_less",
    "untested",
    "labels_explain",
    "exposure_explains",
    "no_gain",
)
MIN_OOS_DAYS = 504
"""Fewest out-of-sample trading days (two years) a verdict other than ``untested`` needs."""
PERMUTATION_TEST_NAME = "label-permutation test (duration-preserving shuffles)"


@dataclass(frozen=True)
class VerdictInputs:
    """The numbers a verdict is worded from (all out-of-sample)."""

    idea: str
    """What is tested, e.g. "regime sizing" or "the limit set"."""
    choice: str
    """Who is judged, e.g. "the walk-forward choice (aggressive in 7/7 folds)"."""
    benchmark: str
    choice_sharpe: float
    benchmark_sharpe: float
    control_sharpe: float
    """The choice's exposure-matched control."""
    p_vs_benchmark: float
    p_vs_control: float
    p_vs_cash: float
    choice_cagr: float
    cash_rate: float
    permutation_p: float | None = None
    """None when no permutation null applies (e.g. limit sets)."""
    n_permutations: int = 0
    permutation_required: bool = False
    """A regime-multiplier study: the verdict needs the label-permutation test; without it
    (``permutation_p`` None or NaN, or no shuffles) a gain is ``untested``."""
    oos_days: int | None = None
    """Out-of-sample trading days behind the numbers (None: not checked)."""
    alpha: float = 0.05
    test: str = SHARPE_TEST_NAME


@dataclass(frozen=True)
class Verdict:
    """A worded verdict: ``code`` (one of ``VERDICT_CODES``), a short ``headline`` and the
    ``text`` with every number and the test behind each p-value."""

    code: str
    headline: str
    text: str
    strategy_profitable: bool
    """The choice's out-of-sample Sharpe (excess over cash) is > 0."""


def _beats(sharpe: float, other: float, p: float, alpha: float) -> bool:
    return math.isfinite(sharpe) and math.isfinite(other) and sharpe > other and p < alpha


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:+.1f}%"


def _p(p: float | None) -> str:
    """``p = 0.012`` / ``p < 0.001`` / ``p n/a``."""
    if p is None or not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def word_verdict(v: VerdictInputs) -> Verdict:
    """Word the verdict from ``v`` by the module's rules.

    Returns
    -------
    Verdict
    """
    profitable = math.isfinite(v.choice_sharpe) and v.choice_sharpe > 0
    beats_bench = _beats(v.choice_sharpe, v.benchmark_sharpe, v.p_vs_benchmark, v.alpha)
    beats_control = _beats(v.choice_sharpe, v.control_sharpe, v.p_vs_control, v.alpha)
    perm_ran = (
        v.permutation_p is not None
        and math.isfinite(v.permutation_p)
        and (v.n_permutations > 0 or not v.permutation_required)
    )
    labels_tested = perm_ran or (v.permutation_p is None and not v.permutation_required)
    beats_labels = v.permutation_p is None or (perm_ran and v.permutation_p < v.alpha)
    too_short = v.oos_days is not None and v.oos_days < MIN_OOS_DAYS
    if too_short:
        code = "untested"
        headline = (
            f"untested: only {v.oos_days} out-of-sample days, fewer than the {MIN_OOS_DAYS} a "
            "verdict needs"
        )
    elif not beats_bench:
        code = "no_gain"
        headline = f"no significant out-of-sample gain over {v.benchmark}"
    elif not beats_control:
        code = "exposure_explains"
        gain = "beats" if profitable else "loses less than"
        headline = (
            f"{gain} {v.benchmark} out of sample only by changing exposure: no better than its "
            "exposure-matched control"
        )
    elif not labels_tested:
        code = "untested"
        headline = (
            "beats its exposure-matched control out of sample, but the label-permutation test "
            "was not run: untested whether regime information is what helps"
        )
    elif not beats_labels:
        code = "labels_explain"
        headline = (
            "beats its exposure-matched control out of sample, but shuffled regime labels do "
            "as well: no evidence that regime information helps"
        )
    elif not profitable:
        code = "loses_less"
        headline = (
            f"loses less than {v.benchmark} out of sample (beyond exposure), but does not beat cash"
        )
    else:
        code = "adds_value"
        headline = f"{v.idea} adds value out of sample"
    numbers = (
        f"{v.choice} had an out-of-sample Sharpe (excess over cash) of {v.choice_sharpe:.2f} "
        f"against {v.benchmark_sharpe:.2f} for {v.benchmark} ({_p(v.p_vs_benchmark)}), "
        f"{v.control_sharpe:.2f} for its exposure-matched control ({_p(v.p_vs_control)}) "
        f"and 0 for cash ({_p(v.p_vs_cash)}); p-values from a {v.test}"
    )
    if perm_ran and v.permutation_p is not None:
        numbers += (
            f"; {PERMUTATION_TEST_NAME} over {v.n_permutations} shuffles: {_p(v.permutation_p)}"
        )
    elif v.permutation_required or v.permutation_p is not None:
        numbers += f"; {PERMUTATION_TEST_NAME}: not run"
    significant = math.isfinite(v.p_vs_cash) and v.p_vs_cash < v.alpha
    if profitable:
        money = "makes money over cash" + ("" if significant else ", though not significantly")
    else:
        money = "does not beat cash"
    money = (
        f"The strategy itself {money} out of sample ({_p(v.p_vs_cash)}): CAGR "
        f"{_pct(v.choice_cagr)} against {_pct(v.cash_rate)} for cash."
    )
    text = f"{headline[0].upper()}{headline[1:]}: {numbers}. {money}"
    return Verdict(code, headline, text, profitable)


@dataclass(frozen=True)
class Robustness:
    """Whether a verdict survives the sensitivity scenarios."""

    robust: bool
    """At least one scenario applied and none flipped."""
    flips: tuple[str, ...]
    """Scenarios whose verdict code differs from the baseline's."""
    not_applicable: tuple[str, ...]
    headline: str
    tested: bool = True
    """At least one sensitivity scenario applied (False: untested — neither robust nor
    fragile)."""


def robustness(baseline_code: str, scenarios: Sequence[tuple[str, str | None]]) -> Robustness:
    """ "robust" when every applicable scenario (code not None) gives ``baseline_code``, else
    "fragile — flips under A, B"; scenarios that do not apply are named. A scenario whose own
    verdict is ``untested`` (e.g. too short an out-of-sample record under real IV only) tested
    nothing: it is named with the ones that do not apply, never counted as a flip.

    Parameters
    ----------
    baseline_code
        The baseline's verdict code.
    scenarios
        ``(scenario name, verdict code or None when the scenario does not apply)``.
    """
    untested = {name for name, code in scenarios if code == "untested" and code != baseline_code}
    flips = tuple(
        name
        for name, code in scenarios
        if code is not None and code != baseline_code and name not in untested
    )
    skipped = tuple(name for name, code in scenarios if code is None or name in untested)
    applied = len(scenarios) - len(skipped)
    if flips:
        headline = f"fragile — flips under {', '.join(flips)}"
    elif applied == 0:
        headline = "untested — no sensitivity scenario applies"
    else:
        headline = (
            "robust — holds in the one sensitivity scenario that applies"
            if applied == 1
            else f"robust — holds in all {applied} sensitivity scenarios"
        )
    parts = [n for n in skipped if n not in untested]
    if parts:
        headline += f" ({', '.join(parts)}: not applicable)"
    if untested:
        names = [n for n in skipped if n in untested]
        headline += f" ({', '.join(names)}: untested there)"
    return Robustness(not flips and applied > 0, flips, skipped, headline, applied > 0)
