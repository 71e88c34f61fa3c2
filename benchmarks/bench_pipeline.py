"""Benchmark: cold `research run` and a warm no-op re-run.

Copies the notebooks, report sources and sample data into a temporary project (so the real
reports/ is untouched), then times, as whole commands in fresh processes:

- cold: every notebook executed with default parameters and the site rendered;
- warm no-op: nothing changed, so nothing is executed or rendered (median of 5 runs).

Goal: warm no-op under 3 s. Figures depend on the machine; run with `make bench`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import recorded

ROOT = Path(__file__).resolve().parents[1]
RESEARCH = Path(sys.executable).with_name("research")


def _timed(env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([str(RESEARCH), "run"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"research run failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "notebooks", root / "notebooks")
        shutil.copytree(ROOT / "data" / "sample", root / "data" / "sample")
        (root / "reports").mkdir()
        for f in ("index.qmd", "_quarto.yml"):
            shutil.copy(ROOT / "reports" / f, root / "reports" / f)
        env = {**os.environ, "REGIME_LAB_ROOT": str(root)}
        cold, out = _timed(env)
        executed = out.count("✓")
        warm = [_timed(env)[0] for _ in range(5)]
        site = root / "reports" / "_site"
        pages = len(list(site.rglob("*.html")))
        size_mb = sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 1e6
    median = statistics.median(warm)
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    print(
        f"cold research run : {cold:6.2f} s  ({executed} notebooks executed, {pages} pages, "
        f"{size_mb:.1f} MB site)"
    )
    print(
        f"warm no-op re-run : {median:6.2f} s  median of 5 (min {min(warm):.2f}, "
        f"max {max(warm):.2f})"
    )
    print(f"cold / warm       : {cold / median:6.1f}x")
    print(f"goal warm < 3 s   : {'met' if median < 3 else 'NOT met'}")


if __name__ == "__main__":
    with recorded("bench_pipeline"):
        main()
