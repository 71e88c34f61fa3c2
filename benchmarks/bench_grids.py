"""Benchmark: grids and walk-forward on SPX/IXIC 1999–2018, on this machine (2 cores).

- a 10,000-configuration sizing/limits grid (200 regime-multiplier sets x 10 risks per trade x
  the five limit sets of seed 004) on SPX+IXIC with the per-configuration engine and with shared
  trade paths (``run_grid(engine="per_config" | "auto")``, metrics and daily returns included),
  each in its own process (its peak memory is that process's max RSS: data, libraries and the
  grid's 10,000 x 5,031 daily returns included); goal: ratio >= 10, >= 2,000 configs/s,
  identical tables and returns, peak memory < 1 GB;
- the two named grids of seed 004: 6 multiplier sets x (SPX, IXIC) and 5 limit sets on SPX+IXIC
  (goal: both together under 10 s, data loading excluded);
- a 1,000-configuration cartesian grid (10 delta ranges x 10 profit targets x 10 stop losses)
  on SPX, both engines;
- the same cartesian grid on a Dask cluster of separate processes (``dask scheduler`` and 1 or 2
  ``dask worker`` processes on 127.0.0.1): configs/s and whether the table equals the inline one;
- a 10-fold anchored walk-forward of the 6 multiplier sets on SPX+IXIC.

Prints wall times and configs/second; data loading and regime labels are prepared first, and
each timed run follows a warm-up run (numba compilation or cache load). Trade paths are cached
in memory only here (``RESEARCH_PATH_CACHE=off``), so every figure includes computing them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _record import recorded

os.environ["RESEARCH_PATH_CACHE"] = "off"

from research.backtest.path_cache import default_cache  # noqa: E402
from research.backtest.spreads import BacktestConfig  # noqa: E402
from research.optimize import grids  # noqa: E402
from research.optimize.service import DEFAULT_BASE, panel_loader, regimes_for  # noqa: E402
from research.optimize.walkforward import walk_forward, walk_forward_splits  # noqa: E402

BULL_HIGH = (0.5, 0.75, 1.0, 1.25)
BEAR_LOW = (0.25, 0.5, 0.75, 1.0, 1.25)
BEAR_HIGH = (0.1, 0.25, 0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
RISKS = tuple(float(r) for r in np.round(np.linspace(0.5, 5.0, 10), 2))


def sizing_variants() -> list[grids.Variant]:
    """200 multiplier sets x 10 risks per trade x the 5 limit sets = 10,000 variants."""
    sets = [
        dict(zip(grids.BULL_BEAR_LABELS, (1.0, *m), strict=True))
        for m in itertools.product(BULL_HIGH, BEAR_LOW, BEAR_HIGH)
    ]
    axes = {"sizing.regime_multipliers": sets, "sizing.risk_pct": list(RISKS)}
    out: list[grids.Variant] = []
    for name, variant in zip(grids.LIMIT_SETS, grids.limit_variants(DEFAULT_BASE), strict=True):
        out += [
            grids.Variant(f"{name},{v.name}", {**variant.changes, **v.changes}, v.config)
            for v in grids.cartesian_variants(variant.config, axes)
        ]
    return out


def sizing_child(engine: str, out_dir: str) -> None:
    """Run the sizing grid with ``engine`` in this (fresh) process; print JSON figures."""
    panels = panel_loader()
    panels(("SPX", "IXIC"))
    regimes = regimes_for("bull_bear_vol", ["SPX", "IXIC"])
    variants = sizing_variants()
    grids.run_grid("warm", variants[:8], panels, [("SPX", "IXIC")], regimes=regimes, engine=engine)
    start = time.perf_counter()
    result = grids.run_grid(
        "sizing", variants, panels, [("SPX", "IXIC")], regimes=regimes, engine=engine
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.table.to_pickle(Path(out_dir) / f"{engine}.pkl")
    digest = hashlib.sha256(np.ascontiguousarray(result.returns.to_numpy()).tobytes()).hexdigest()
    print(
        json.dumps(
            {"seconds": seconds, "configs": len(variants), "peak_mb": peak, "returns": digest}
        )
    )


def sizing_grid() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for engine in ("auto", "per_config"):
            done = subprocess.run(
                [sys.executable, __file__, "--sizing-child", engine, tmp],
                check=True,
                capture_output=True,
                text=True,
            )
            runs[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        a, b = runs["auto"], runs["per_config"]
        same_table = pd.read_pickle(Path(tmp) / "auto.pkl").equals(
            pd.read_pickle(Path(tmp) / "per_config.pkl")
        )
    r1, r0 = a["configs"] / a["seconds"], b["configs"] / b["seconds"]
    identical = same_table and a["returns"] == b["returns"]
    print(
        f"sizing-grid: {a['configs']} configs: shared {r1:,.0f} configs/s, per-config "
        f"{r0:,.0f} configs/s, ratio {r1 / r0:.1f}, identical: {'yes' if identical else 'no'}"
    )
    met = r1 / r0 >= 10 and r1 >= 2000 and identical and a["peak_mb"] < 1024
    print(
        f"  ({a['seconds']:.2f} s vs {b['seconds']:.2f} s, metrics and daily returns included; "
        f"peak memory (max RSS, data + libraries + results): shared {a['peak_mb']:,.0f} MB, "
        f"per-config {b['peak_mb']:,.0f} MB; goal ratio >= 10, >= 2,000 configs/s, < 1 GB: "
        f"{'met' if met else 'NOT met'})"
    )


def main() -> None:
    sizing_grid()
    start = time.perf_counter()
    panels = panel_loader()
    for t in (("SPX",), ("IXIC",), ("SPX", "IXIC")):
        panels(t)
    regimes = regimes_for("bull_bear_vol", ["SPX", "IXIC"])
    print(
        f"cpus: {os.cpu_count()}  data + regime labels prepared in "
        f"{time.perf_counter() - start:.1f} s"
    )
    mult, lim = grids.multiplier_variants(DEFAULT_BASE), grids.limit_variants(DEFAULT_BASE)
    for engine in ("auto", "per_config"):
        grids.run_grid("warm", mult, panels, [("SPX",)], regimes=regimes, engine=engine)
        t1s, t2s = [], []
        for _ in range(5):  # small and noisy: the median of 5, phase 1 recomputed every time
            default_cache().clear()
            start = time.perf_counter()
            g1 = grids.run_grid(
                "multipliers", mult, panels, [("SPX",), ("IXIC",)], regimes=regimes, engine=engine
            )
            t1s.append(time.perf_counter() - start)
            start = time.perf_counter()
            g2 = grids.run_grid(
                "limits", lim, panels, [("SPX", "IXIC")], regimes=regimes, engine=engine
            )
            t2s.append(time.perf_counter() - start)
        t1, t2 = float(np.median(t1s)), float(np.median(t2s))
        print(
            f"named grids, {'shared paths' if engine == 'auto' else 'per-config   '}: multipliers "
            f"({len(g1.table)} backtests) {t1:5.2f} s, limits ({len(g2.table)}) {t2:5.2f} s, "
            f"both {t1 + t2:5.2f} s (median of 5; goal < 10 s: "
            f"{'met' if t1 + t2 < 10 else 'NOT met'})"
        )

    axes = {
        "spread.min_delta": list(np.round(np.linspace(0.03, 0.21, 10), 3)),
        "spread.profit_target_pct": list(np.linspace(30, 100, 10)),
        "spread.stop_loss_pct": list(np.linspace(75, 300, 10)),
    }
    base = BacktestConfig().replace(**{"sizing.mode": "scaled", "spread.max_delta": 0.3})
    variants = grids.cartesian_variants(base, axes)
    tables = {}
    for engine in ("auto", "per_config"):
        grids.run_grid("warm", variants[:4], panels, [("SPX",)], engine=engine)
        default_cache().clear()
        start = time.perf_counter()
        tables[engine] = grids.run_grid("cartesian", variants, panels, [("SPX",)], engine=engine)
        t3 = time.perf_counter() - start
        print(
            f"cartesian grid  ({len(variants)} configs, SPX, "
            f"{'shared paths: 10 strategies' if engine == 'auto' else 'per-config'}): {t3:6.2f} s "
            f"-> {len(variants) / t3:,.0f} configs/s"
        )
    same = (
        tables["auto"]
        .table.drop(columns="grid")
        .equals(tables["per_config"].table.drop(columns="grid"))
    )
    print(f"  identical tables: {'yes' if same else 'no'}")
    g3 = tables["auto"]

    # the same grid on a Dask cluster of separate processes (scheduler + 1 or 2 worker
    # processes on this machine, one thread each; start-up excluded, first run warms the workers)
    from research.optimize.executors import DaskExecutor
    from research.testing.dask_cluster import ProcessCluster

    for n in (1, 2):
        with (
            ProcessCluster(workers=n) as cluster,
            DaskExecutor(cluster.address, progress=False) as ex,
        ):
            grids.run_grid("warm", variants[:2], panels, [("SPX",)], executor=ex, chunk_size=1)
            default_cache().clear()  # phase 1 in the timing
            start = time.perf_counter()
            gd = grids.run_grid(
                "cartesian", variants, panels, [("SPX",)], executor=ex, chunk_size=100
            )
            td = time.perf_counter() - start
        same = gd.table.drop(columns=["grid"], errors="ignore").equals(
            g3.table.drop(columns=["grid"], errors="ignore")
        )
        print(
            f"cartesian grid on a Dask cluster, {n} worker process{'es' if n > 1 else ''}: "
            f"{td:6.2f} s -> {len(gd.table) / td:,.0f} configs/s; identical to inline: "
            f"{'yes' if same else 'no'}"
        )

    panel = panels(("SPX", "IXIC"))
    splits = walk_forward_splits(panel.dates, is_years=5, oos_years=1.5, mode="anchored")
    start = time.perf_counter()
    wf = walk_forward(panel, mult, splits, regimes=regimes)
    t4 = time.perf_counter() - start
    print(
        f"walk-forward    ({len(wf.folds)} anchored folds x {len(mult)} configs, IS + OOS, "
        f"SPX+IXIC): {t4:6.2f} s"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sizing-child":
        sizing_child(sys.argv[2], sys.argv[3])
    else:
        with recorded("bench_grids"):
            main()
