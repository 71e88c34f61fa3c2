"""Benchmark: the regime models over both default symbols (SPX + IXIC, 2 x 5,031 days).

Prints, per model, the best of 5 wall times of ``research.regimes.classify`` (contract
validation included; the IV with its proxy is prepared once, outside the timing), the four
rule-based models together, and ``markov`` with its expanding-window refits (one run: the
refits dominate). Goal: the rule-based models together under 1 s. Machine-dependent figures.
"""

from __future__ import annotations

import os
import time

from _record import recorded

from research.data import market
from research.regimes import classify
from research.regimes.markov import refit_points
from research.regimes.ruleset import DEFAULT_RULESET

RULE_MODELS = ("vix_trend", "vol_ratio", "bull_bear_vol", "tags")


def best_of(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    bars = market.load_bars()
    index = market.load_iv_index()
    iv = market.iv_with_proxy(bars, index, market.fit_iv_proxy(bars, index))
    print(f"cpus: {os.cpu_count()}  bars: {len(bars)} rows ({bars['symbol'].nunique()} symbols)")
    classify("vol_ratio", bars)  # warm imports
    total = 0.0
    for model in RULE_MODELS:
        seconds = best_of(lambda m=model: classify(m, bars, iv))
        total += seconds
        print(f"{model:14s}: {seconds * 1000:7.1f} ms  ({len(bars) / seconds / 1e6:.2f} M rows/s)")
    together = best_of(lambda: [classify(m, bars, iv) for m in RULE_MODELS])
    print(
        f"rule-based, together: {together * 1000:7.1f} ms  (goal < 1000 ms: "
        f"{'met' if together < 1 else 'NOT met'})"
    )
    m = DEFAULT_RULESET.markov
    fits = sum(
        len(refit_points(len(g), m.min_train_bars, m.refit_every_bars))
        for _, g in bars.groupby("symbol")
    )
    start = time.perf_counter()
    classify("markov", bars)
    markov = time.perf_counter() - start
    print(
        f"markov        : {markov:7.2f} s  ({fits} refits, {markov / fits:.2f} s per refit, "
        f"k={m.k_regimes}, refit every {m.refit_every_bars} bars)"
    )


if __name__ == "__main__":
    with recorded("bench_regimes"):
        main()
