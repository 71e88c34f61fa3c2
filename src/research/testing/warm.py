"""Compile the package's numba kernels once into their on-disk cache, before many processes
need them (``python -m research.testing.warm``; ``make test`` runs it first).

The kernels are compiled with ``cache=True``: the first process that calls one writes it to
``__pycache__``, later processes load it in milliseconds. On a fresh clone nothing is cached,
and the test workers and the notebooks' kernels, all starting together, would each compile the
same kernels — minutes of processor time spent several times over. This runs the main code
paths once, on two years of the embedded data: the per-configuration and shared-path engines
(with and without portfolio limits, close and next-open fills, regime sizing), trades recorded,
an option-chain backtest, the SMA grid and the permutation control. A kernel it misses is
compiled where it is first needed, as before; nothing here changes a result.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

__all__ = ["warm"]


def warm() -> float:
    """Run the main numba code paths once, the model engines in one process and the rest in
    another at the same time; the seconds it took.

    Returns
    -------
    float
        Wall-clock seconds (mostly compilation on a fresh clone, a few seconds once cached).
    """
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in [pool.submit(_model_engines), pool.submit(_chains_and_the_rest)]:
            done.result()
    return time.perf_counter() - started


def _model_engines() -> None:
    """The per-configuration and shared-path engines, limits, fills and regime sizing."""
    from research.backtest.path_cache import PathCache
    from research.backtest.run import run_backtests, run_kernel
    from research.backtest.service import load_panel
    from research.optimize import grids
    from research.optimize.service import DEFAULT_BASE, regimes_for

    tickers = ["SPX", "IXIC"]
    panel, _, _ = load_panel(tickers, start="2015-01-01", end="2016-12-31")
    regimes = regimes_for("bull_bear_vol", tickers)
    configs = [v.config for v in grids.limit_variants(DEFAULT_BASE)][:3]
    configs += [v.config for v in grids.multiplier_variants(DEFAULT_BASE)][:3]
    next_open = [c.replace(**{"fills.timing": "next_open"}) for c in configs[:2]]
    for engine in ("per_config", "shared"):
        for batch in (configs, next_open):
            run_kernel(panel, batch, regimes, engine=engine, cache=PathCache())
    run_kernel(panel, configs, regimes)
    run_backtests(panel, configs[:2], regimes)


def _chains_and_the_rest() -> None:
    """An option-chain backtest, the SMA grid and the permutation control."""
    from research.backtest.chains import chain_book
    from research.backtest.path_cache import PathCache
    from research.backtest.run import run_backtests, run_kernel
    from research.backtest.service import load_panel
    from research.backtest.sma import sma_grid
    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market
    from research.optimize.controls import permuted_codes
    from research.optimize.service import DEFAULT_BASE

    spx, _, _ = load_panel(["SPX"], start="2015-01-01", end="2015-12-31")
    quotes = synthetic_chains(
        market.load_bars(symbols=["SPX"]),
        market.load_iv_index(),
        start="2015-01-01",
        end="2015-12-31",
        missing=0.01,
        seed=5,
    )
    chained = dataclasses.replace(spx, chains=chain_book(spx.dates, spx.tickers, quotes))
    # quotes without greeks: their IV implied from the mid (pricing.implied_vols)
    chain_book(spx.dates, spx.tickers, quotes.head(200).drop(columns=["iv", "delta"]))
    run_backtests(chained, [DEFAULT_BASE])
    variants = [DEFAULT_BASE, DEFAULT_BASE.replace(**{"spread.stop_loss_pct": 150.0})]
    for engine in ("per_config", "shared"):
        run_kernel(chained, variants, engine=engine, cache=PathCache())

    bars = market.load_bars(symbols=["SPX"]).tail(500)
    o, h, lo, c = (bars[col].to_numpy(float) for col in ("open", "high", "low", "close"))
    for record in (True, False):
        sma_grid(
            o, h, lo, c, np.array([5, 10]), np.array([20, 50]), 0.05, 0.1, record_trades=record
        )
    permuted_codes(np.array([[0, 1], [0, 1], [1, 2], [2, 2], [0, 1]], dtype=np.int64), 4, seed=0)


if __name__ == "__main__":  # pragma: no cover - a command
    seconds = warm()
    print(f"numba kernels compiled into their cache (or loaded from it) in {seconds:.1f} s")
    sys.exit(0)
