"""Null calibration: every test a verdict rests on, simulated under a realistic null and with a
planted effect, to show its size (2 %-8 % at the 5 % level) and its power.

- ``research.nulls.core``: ``NullCase``, ``run_case``, ``calibration_table``;
- ``research.nulls.generators``: the realistic nulls (persistent filters, circular shifts,
  regime paths with the real durations);
- ``research.nulls.llm`` / ``attribution`` / ``grids``: the cases of each layer;
- ``research.nulls.results``: the benchmark's committed table (``published``), which the pages
  show.

``benchmarks/bench_null_calibration.py`` prints the table; the test suite runs a fast subset.
"""

from __future__ import annotations

from research.nulls.core import ALPHA, SIZE_BAND, CaseResult, NullCase, calibration_table, run_case
from research.nulls.results import Published, published

__all__ = [
    "ALPHA",
    "SIZE_BAND",
    "CaseResult",
    "NullCase",
    "Published",
    "all_cases",
    "calibration_table",
    "published",
    "run_case",
]


def all_cases() -> list[NullCase]:
    """Every layer's cases, on the sample data (``data/sample``) and the embedded markets."""
    from research.nulls import attribution, grids, llm

    return [*llm.cases(), *attribution.cases(), *grids.cases()]
