"""Benchmark: both sceptic-proof studies on SPX / IXIC 1999–2018, on this machine (2 cores).

Each study runs its in-sample grid, stress windows, the anchored walk-forward (6y IS / 2y OOS),
the exposure-matched controls, the Sharpe-difference bootstrap (2,000 resamples), SPA / PBO /
DSR and — for the regime multipliers — the label-permutation null (200 shuffles per candidate
in the baseline, for the choice in every scenario), under the baseline and all nine
sensitivity scenarios.

Goal: both studies together under 60 s (data loading — bars, VIX, GARCH features — counted
once, printed separately). Prints wall times and the verdicts.
"""

from __future__ import annotations

import os
import time

from _record import recorded

from research.optimize.scenarios import SCENARIOS, StudyData
from research.optimize.study import grid_study


def main() -> None:
    start = time.perf_counter()
    data = StudyData.load(symbols=["SPX", "IXIC"])
    load = time.perf_counter() - start
    print(f"cpus: {os.cpu_count()}  data (bars, VIX, GARCH features, proxy map): {load:.1f} s")
    # compile / load the numba caches outside the timings
    grid_study(
        "limits",
        [("SPX",)],
        benchmark="wide_open",
        regime_model=None,
        start="2010-01-01",
        end="2013-12-31",
        is_years=2,
        oos_years=1,
        scenarios=["next_open_fills"],
        data=data,
        spa_reps=50,
        sharpe_reps=50,
    )
    runs = (
        ("multipliers", [("SPX",), ("IXIC",)], "flat", "bull_bear_vol"),
        ("limits", [("SPX", "IXIC")], "wide_open", None),
    )
    total = 0.0
    for kind, sets, benchmark, model in runs:
        t0 = time.perf_counter()
        study = grid_study(kind, sets, benchmark=benchmark, regime_model=model, data=data)
        took = time.perf_counter() - t0
        total += took
        print(f"\n{kind}: {len(sets)} ticker set(s) x {len(SCENARIOS)} scenarios in {took:.1f} s")
        for row in study.verdicts().itertuples():
            print(f"  {row.tickers}: {row.verdict} | {row.robustness}")
    print(f"\nboth studies, all controls and scenarios: {total:.1f} s (goal < 60 s)")
    print(f"including data loading: {total + load:.1f} s")


if __name__ == "__main__":
    with recorded("bench_study"):
        main()
