"""Benchmark: do the tests the verdicts rest on have the right size when trades overlap, filters
persist and regimes last? Every case of ``research.nulls.all_cases()`` (the LLM trade filter,
signal / experiment / tuning-run attribution, the grid studies) is simulated on the sample's own
data under its realistic null and with a planted effect.

Prints one row per test — layer, test, null, runs, size (share rejected at 5 % under the null,
with its 95 % Wilson interval), power (share rejected with the planted effect) — and writes the
table to ``src/research/nulls/calibration.json`` (package data, dated, with the commit and the
machine), which the pages show. A test is *calibrated* when its size lies in 2 %-8 %.

Usage: ``python benchmarks/bench_null_calibration.py [--runs 500] [--seed 0] [--only TEXT]
[--no-write]`` (``--only``: cases whose layer or test contains TEXT).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _record import recorded

from research.nulls import all_cases, calibration_table
from research.nulls.core import SIZE_BAND
from research.nulls.results import write_published

ROOT = Path(__file__).resolve().parents[1]


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="data sets per case and arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="cases whose layer or test contains this")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.runs < 100:
        parser.error(f"--runs must be >= 100 for a size to mean something, got {args.runs}")
    cases = all_cases()
    if args.only:
        key = args.only.lower()
        cases = [c for c in cases if key in c.layer.lower() or key in c.test.lower()]
        if not cases:
            parser.error(f"--only {args.only!r} matches no case")
    start = time.perf_counter()
    table = calibration_table(
        cases,
        args.runs,
        seed=args.seed,
        progress=lambda name: print(f"… {name}", file=sys.stderr, flush=True),
    )
    wall = time.perf_counter() - start
    pd.set_option("display.width", 220)
    pd.set_option("display.max_colwidth", 70)
    shown = table.assign(
        size=lambda t: (100 * t["size"]).map("{:.1f}%".format),
        size_ci=lambda t: [
            f"{100 * lo:.1f}–{100 * hi:.1f}%"
            for lo, hi in zip(t["size_ci_low"], t["size_ci_high"], strict=True)
        ],
        power=lambda t: (100 * t["power"]).map("{:.1f}%".format),
        seconds=lambda t: t["seconds"].map("{:.0f}".format),
    )[["layer", "test", "null", "runs", "size", "size_ci", "power", "calibrated", "seconds"]]
    print(shown.to_string(index=False, max_colwidth=60))
    lo, hi = SIZE_BAND
    bad = table.loc[~table["calibrated"]]
    print(
        f"\n{len(table) - len(bad)} of {len(table)} tests calibrated (size in "
        f"{100 * lo:.0f}–{100 * hi:.0f}% at the 5% level); {wall:.0f} s on "
        f"{os.cpu_count()} cores"
    )
    if not args.no_write and not args.only:
        path = write_published(
            table,
            date=dt.date.today().isoformat(),
            commit=_commit(),
            machine=(
                f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            ),
        )
        print(f"written: {path}")
    return 0 if bad.empty else 1


if __name__ == "__main__":
    # a run of a few cases (--only) or without writing the table is not the page's record
    partial = any(a.startswith(("--only", "--no-write")) for a in sys.argv[1:])
    with recorded("bench_null_calibration", enabled=not partial):
        code = main()
    raise SystemExit(code)
