"""Benchmark: grids and walk-forward on SPX/IXIC 1999–2018, on this machine (2 cores).

- the two named grids of seed 004: 6 multiplier sets x (SPX, IXIC) and 5 limit sets on SPX+IXIC
  (goal: both together under 10 s, data loading excluded);
- a 1,000-configuration cartesian grid (10 delta ranges x 10 profit targets x 10 stop losses)
  on SPX;
- the same cartesian grid on a Dask cluster of separate processes (``dask scheduler`` and 1 or 2
  ``dask worker`` processes on 127.0.0.1): configs/s and whether the table equals the inline one;
- a 10-fold anchored walk-forward of the 6 multiplier sets on SPX+IXIC.

Prints wall times and configs/second; data loading and regime labels are prepared first.
"""

from __future__ import annotations

import os
import time

import numpy as np

from research.backtest.spreads import BacktestConfig
from research.optimize import grids
from research.optimize.service import DEFAULT_BASE, panel_loader, regimes_for
from research.optimize.walkforward import walk_forward, walk_forward_splits


def main() -> None:
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
    grids.run_grid("warm", mult[:1], panels, [("SPX",)], regimes=regimes)  # compile / cache load

    start = time.perf_counter()
    g1 = grids.run_grid("multipliers", mult, panels, [("SPX",), ("IXIC",)], regimes=regimes)
    t1 = time.perf_counter() - start
    start = time.perf_counter()
    g2 = grids.run_grid("limits", lim, panels, [("SPX", "IXIC")], regimes=regimes)
    t2 = time.perf_counter() - start
    print(f"multiplier grid ({len(g1.table)} backtests): {t1:6.2f} s")
    print(f"limits grid     ({len(g2.table)} backtests): {t2:6.2f} s")
    print(
        f"both named grids: {t1 + t2:6.2f} s  (goal < 10 s: {'met' if t1 + t2 < 10 else 'NOT met'})"
    )

    axes = {
        "spread.min_delta": list(np.round(np.linspace(0.03, 0.21, 10), 3)),
        "spread.profit_target_pct": list(np.linspace(30, 100, 10)),
        "spread.stop_loss_pct": list(np.linspace(75, 300, 10)),
    }
    base = BacktestConfig().replace(**{"sizing.mode": "scaled", "spread.max_delta": 0.3})
    variants = grids.cartesian_variants(base, axes)
    start = time.perf_counter()
    g3 = grids.run_grid("cartesian", variants, panels, [("SPX",)])
    t3 = time.perf_counter() - start
    print(
        f"cartesian grid  ({len(g3.table)} configs, SPX): {t3:6.2f} s "
        f"-> {len(g3.table) / t3:,.0f} configs/s (metrics and returns included)"
    )

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
            start = time.perf_counter()
            gd = grids.run_grid(
                "cartesian", variants, panels, [("SPX",)], executor=ex, chunk_size=50
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
    main()
