"""Benchmark: load and backtest a year of daily option chains (about 2 million rows).

The chain is synthetic (``research.backtest.synthetic_chains``: SPX closes and VIX of 2017, every
Friday expiration out to 200 days, strikes within 15% of spot on the 5-point grid, calls and
puts) and written to Parquet first. Measured, each in this process:

- ``load_chains`` of the whole file with the backtest's filters (DTE <= 90, strikes within
  0.5-1.5x spot) — the DuckDB scan, the contract check — and the ``chain_book``;
- peak resident memory of the process (``ru_maxrss``);
- a 100-configuration grid (delta range x profit target x stop x regime multipliers) priced from
  the chain, one ``run_kernel`` call.

Goals: load under 10 s, memory under 2 GB, the 100-configuration grid under 30 s (2 cores).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import resource
import tempfile
import time
from pathlib import Path

from _record import recorded


def main() -> None:
    from research.backtest.chains import chain_book
    from research.backtest.run import run_kernel
    from research.backtest.service import load_panel, regime_labels
    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market
    from research.data.chains import load_chains
    from research.optimize.service import DEFAULT_BASE

    bars = market.load_bars(symbols=["SPX"])
    vix = market.load_iv_index()
    t0 = time.perf_counter()
    raw = synthetic_chains(bars, vix, start="2017-01-01", end="2017-12-31", max_dte=200)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spx_2017.parquet"
        raw.to_parquet(path)
        rows, size = len(raw), path.stat().st_size
        del raw
        print(
            f"cpus: {os.cpu_count()}  generated {rows:,} rows ({size / 1e6:.0f} MB Parquet) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        panel, bars_used, iv = load_panel(["SPX"], start="2017-01-01", end="2017-12-31")
        start = time.perf_counter()
        chains = load_chains(
            path, underlyings=["SPX"], max_dte=90, moneyness=(0.5, 1.5), start=panel.dates[0]
        )
        loaded = time.perf_counter() - start
        book = chain_book(panel.dates, panel.tickers, chains)
        built = time.perf_counter() - start
    print(f"load_chains: {len(chains):,} rows kept in {loaded:.2f} s; with the book {built:.2f} s")
    chained = dataclasses.replace(panel, chains=book)
    labels = regime_labels("bull_bear_vol", bars_used, iv)
    sets = {"flat": (1.0, 1.0, 1.0, 1.0), "aggressive": (1.0, 0.5, 0.25, 0.1)}
    names = ("bull_low_vol", "bull_high_vol", "bear_low_vol", "bear_high_vol")
    configs = [
        DEFAULT_BASE.replace(
            **{
                "spread.min_delta": lo,
                "spread.max_delta": lo + 0.10,
                "spread.profit_target_pct": pt,
                "spread.stop_loss_pct": sl,
                "sizing.regime_multipliers": dict(zip(names, sets[m], strict=True)),
            }
        )
        for lo, pt, sl, m in itertools.product(
            (0.05, 0.08, 0.10, 0.12, 0.15), (50, 65, 80, 95, 100), (100, 200), sets
        )
    ]
    run_kernel(chained, configs[:2], labels, record_trades=False)  # compile / load the cache
    start = time.perf_counter()
    out = run_kernel(chained, configs, labels, record_trades=False)
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(configs)}-configuration grid on {len(panel.dates)} days: {took:.2f} s "
        f"({len(configs) / took:.0f} configs/s), {int(out.n_trades.sum()):,} trades"
    )
    print(f"peak memory (whole process): {peak:.0f} MB")
    print(
        f"goals: load < 10 s: {'met' if built < 10 else 'missed'}; memory < 2 GB: "
        f"{'met' if peak < 2048 else 'missed'}; grid < 30 s: {'met' if took < 30 else 'missed'}"
    )


if __name__ == "__main__":
    with recorded("bench_chains"):
        main()
