"""Does a test have the right size when trades overlap and filters persist? The machinery.

A ``NullCase`` is one test a verdict rests on, with a simulation of a **realistic null** (the
sample's own P&L, persistent filters, overlapping windows, regime labels with real durations)
and of a **planted effect** of realistic size. ``simulate(rng, effect)`` builds one data set —
under the null when ``effect`` is 0.0, with the planted effect when it is 1.0 — runs the test
exactly as the package runs it, and returns its p-value (one- or two-sided as the verdict uses
it).

``run_case`` repeats that ``runs`` times with independent seeds and reports the **size** (the
share of null runs rejected at ``alpha``, with its Wilson interval) and the **power** (the share
of effect runs rejected). A test is *calibrated* when its size lies in ``SIZE_BAND`` (2 %-8 %
at the 5 % level). A **conservative** case (``conservative=True``) rejects less than the nominal
rate by construction, for a reason its ``null`` text states — its null lies inside the test's
null hypothesis rather than on its boundary (a filter unrelated to P&L against an informative rule
it must beat), or the procedure selects what it tests (the best and runner-up of many equal
configurations) — and is calibrated when its size does not exceed the band's upper end. A cheap
case may ask for more runs than the table's (``min_runs``) so its size is measured precisely.

The cases themselves live next to each other in ``research.nulls.<area>`` (one module per layer
whose verdicts they check) and are listed by ``research.nulls.all_cases``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "SIZE_BAND",
    "CaseResult",
    "NullCase",
    "calibration_table",
    "run_case",
]

ALPHA = 0.05
"""The level every verdict uses."""
SIZE_BAND: tuple[float, float] = (0.02, 0.08)
"""Rejection rates under the null that count as a calibrated 5 % test."""

Simulator = Callable[[np.random.Generator, float], float]
"""``(rng, effect) -> p-value``; ``effect`` 0.0 simulates the null, 1.0 the planted effect."""


@dataclass(frozen=True)
class NullCase:
    """One verdict test and how to simulate it."""

    layer: str
    """The page / layer whose verdict rests on the test, e.g. ``"LLM trade filter"``."""
    test: str
    """The test as the page names it."""
    null: str
    """The realistic null that is simulated, in words."""
    effect: str
    """The planted effect of the power runs, in words."""
    simulate: Simulator
    conservative: bool = False
    """The test rejects less than ``alpha`` here by construction (the ``null`` text says why):
    its size only must not exceed the band's upper end."""
    min_runs: int = 0
    """Run at least this many data sets per arm (cheap cases: a tighter size estimate)."""


@dataclass(frozen=True)
class CaseResult:
    """Size and power of one case."""

    layer: str
    test: str
    null: str
    effect: str
    runs: int
    size: float
    size_ci_low: float
    size_ci_high: float
    power: float
    seconds: float
    alpha: float = ALPHA
    conservative: bool = False

    @property
    def calibrated(self) -> bool:
        """The size lies in ``SIZE_BAND`` (a conservative case: at most its upper end)."""
        if self.conservative:
            return self.size <= SIZE_BAND[1]
        return SIZE_BAND[0] <= self.size <= SIZE_BAND[1]


def _wilson(k: int, n: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def _rejections(case: NullCase, effect: float, runs: int, seed: int, alpha: float) -> int:
    seeds = np.random.SeedSequence([seed, int(round(effect * 1000))]).spawn(runs)
    hits = 0
    for s in seeds:
        p = case.simulate(np.random.default_rng(s), effect)
        if not (isinstance(p, float | int) and math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"{case.test}: the simulation returned p = {p!r}, not in [0, 1]")
        hits += p < alpha
    return hits


def run_case(
    case: NullCase, runs: int, *, seed: int = 0, alpha: float = ALPHA, power: bool = True
) -> CaseResult:
    """Size (``runs`` null data sets, at least the case's ``min_runs``) and power (as many
    planted-effect data sets; NaN when ``power`` is False) of one case.

    Raises
    ------
    ValueError
        ``runs`` < 1, or a simulation that returns something other than a p-value.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    runs = max(runs, case.min_runs)
    start = time.perf_counter()
    k = _rejections(case, 0.0, runs, seed, alpha)
    pw = _rejections(case, 1.0, runs, seed, alpha) / runs if power else math.nan
    lo, hi = _wilson(k, runs)
    return CaseResult(
        case.layer,
        case.test,
        case.null,
        case.effect,
        runs,
        k / runs,
        lo,
        hi,
        pw,
        time.perf_counter() - start,
        alpha,
        case.conservative,
    )


def calibration_table(
    cases: Sequence[NullCase],
    runs: int,
    *,
    seed: int = 0,
    alpha: float = ALPHA,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every case's size and power.

    Returns
    -------
    pandas.DataFrame
        ``layer, test, null, effect, runs, size, size_ci_low, size_ci_high, power,
        conservative, calibrated, seconds`` — one row per case, in the order given.
    """
    rows = []
    for case in cases:
        if progress is not None:
            progress(f"{case.layer}: {case.test}")
        r = run_case(case, runs, seed=seed, alpha=alpha)
        rows.append(
            {
                "layer": r.layer,
                "test": r.test,
                "null": r.null,
                "effect": r.effect,
                "runs": r.runs,
                "size": r.size,
                "size_ci_low": r.size_ci_low,
                "size_ci_high": r.size_ci_high,
                "power": r.power,
                "conservative": r.conservative,
                "calibrated": r.calibrated,
                "seconds": r.seconds,
            }
        )
    return pd.DataFrame(rows)
