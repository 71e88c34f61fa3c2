"""Benchmark: the numba SMA-crossover grid (research.backtest.sma) against vectorbt.

The grid: fast 2..100 x slow 2..100 with fast < slow (4,851 configurations), long-only, SL 5%,
TP 10%, all-in, no fees, on the S&P 500 daily bars (5,031 days, 1999-2018). Both engines get
the same bars and the same fill convention (``research.backtest.sma`` docstring).

What is timed, per engine, each in its own fresh subprocess:

- ours: ``sma_grid`` end to end (input checks, SMA table, signals, simulation, summary);
- vectorbt end to end: ``vbt.MA.run`` (fast and slow windows), ``ma_crossed_above`` /
  ``ma_crossed_below``, ``Portfolio.from_signals`` with the matching options, then
  ``total_return()`` and ``trades.count()`` (the same outputs ``sma_grid`` returns);
- vectorbt simulation only: ``from_signals`` + ``total_return()`` + ``trades.count()`` on
  precomputed signals (its simulation core, no indicator work), as a second, harder ratio.

Warm throughput = configs / median wall time over repeated calls made after a first call that
compiled (ours: numba JIT on a tiny input, timed separately as "compile"; vectorbt: a small
grid, which loads or compiles its numba functions). Ours is timed with numba's 2 threads and
with 1 (vectorbt's simulation is single-threaded). The machine is shared, so medians and the
best run are both printed.

Memory, honestly: each engine runs in its own subprocess; just before the first full-size call
the kernel's peak-RSS mark is reset (``echo 5 > /proc/self/clear_refs``), and after it
``VmHWM`` (peak resident set) is read from ``/proc/self/status``. RSS counts everything the
call touched, numba's own (NRT) allocations included, which ``tracemalloc`` would miss.
Printed: the process's lifetime peak RSS (interpreter, libraries and, for ours, the JIT
included: ``ru_maxrss`` read before the reset, and the call's peak), the call's peak and its
increment over the RSS just before it. If the reset is not available, ``ru_maxrss``
before/after deltas are used instead (said so in the output).

vectorbt batching: all 4,851 configurations fit in one batch well inside the ~4 GB budget
(about 1.9 GB peak RSS here), but it runs faster in batches of 1,000 (less memory traffic), so
by default it is run both ways (``--vbt-chunks 0,1000``; throughput of a batched run is over
all its batches) and each ratio is taken against the faster of the two.

Usage: ``python benchmarks/bench_engine.py [--repeat-vbt 3] [--vbt-chunks 0,1000]``. Prints;
asserts nothing. Goals: >= 50x vectorbt's warm throughput with matching trades, and < 500 MB
peak RSS for ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _record import recorded

SL, TP, CASH = 0.05, 0.10, 100_000.0
VBT_BUDGET_MB = 4096


def grid() -> tuple[np.ndarray, np.ndarray]:
    pairs = [(f, s) for f in range(2, 101) for s in range(f + 1, 101)]
    fast, slow = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
    return fast, slow


# --------------------------------------------------------------------------------------------
# Memory probes
# --------------------------------------------------------------------------------------------


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_peak(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` once; return its result and the process's peak RSS during the call."""
    lifetime_before = _maxrss_mb()  # imports, data, JIT so far (the reset below clears it)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        method = "VmHWM reset via /proc/self/clear_refs"
    except OSError:
        method = "ru_maxrss delta (no VmHWM reset available)"
    before_rss = _status_mb("VmRSS")
    before_max = _maxrss_mb()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    if method.startswith("VmHWM"):
        peak = _status_mb("VmHWM")
        increment = peak - before_rss
    else:
        peak = _maxrss_mb()
        increment = peak - before_max
    mem = {
        "method": method,
        "rss_before_mb": before_rss,
        "peak_mb": peak,
        "increment_mb": increment,
        "process_peak_mb": max(lifetime_before, peak),
        "first_call_s": seconds,
    }
    return out, mem


# --------------------------------------------------------------------------------------------
# Workers (run in fresh subprocesses)
# --------------------------------------------------------------------------------------------


def worker_ours(data: Path, out: Path, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import numba

    from research.backtest.sma import sma_grid

    import_s = time.perf_counter() - t0
    o, h, lo, c = np.load(data)
    fast, slow = grid()

    t0 = time.perf_counter()  # JIT: both kernels, on a tiny input (NUMBA_CACHE_DIR is empty)
    sma_grid(o[:300], h[:300], lo[:300], c[:300], fast[:2], slow[:2], SL, TP)
    compile_s = time.perf_counter() - t0

    def call() -> Any:
        return sma_grid(o, h, lo, c, fast, slow, SL, TP, init_cash=CASH)

    res, mem = measure_peak(call)
    timings: dict[str, list[float]] = {}
    for threads in (numba.config.NUMBA_NUM_THREADS, 1):
        numba.set_num_threads(threads)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            runs.append(time.perf_counter() - start)
        timings[str(threads)] = runs
    np.savez(out, n_trades=res.n_trades, total_return=res.total_return)
    return {
        "import_s": import_s,
        "compile_s": compile_s,
        "threading_layer": numba.threading_layer(),
        "timings": timings,
        "memory": mem,
    }


def _vbt_run(vbt: Any, o: Any, h: Any, lo: Any, c: Any, entries: Any, exits: Any) -> Any:
    col = (slice(None), None)
    pf = vbt.Portfolio.from_signals(
        c[col],
        entries,
        exits,
        open=o[col],
        high=h[col],
        low=lo[col],
        price=c[col],
        size=np.inf,
        size_type="amount",
        accumulate=False,
        direction="longonly",
        sl_stop=SL,
        tp_stop=TP,
        stop_entry_price="close",
        stop_exit_price="stoplimit",
        upon_stop_exit="close",
        init_cash=CASH,
        fees=0.0,
    )
    return pf.total_return().to_numpy(), pf.trades.count().to_numpy()


def _vbt_signals(vbt: Any, c: Any, fast: Any, slow: Any) -> tuple[Any, Any]:
    f = vbt.MA.run(c, window=fast.tolist(), short_name="fast")
    s = vbt.MA.run(c, window=slow.tolist(), short_name="slow")
    return f.ma_crossed_above(s).to_numpy(), f.ma_crossed_below(s).to_numpy()


def worker_vectorbt(data: Path, out: Path, repeat: int, chunk: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    warnings.filterwarnings("ignore")
    import vectorbt as vbt

    import_s = time.perf_counter() - t0
    o, h, lo, c = np.load(data)
    fast, slow = grid()
    n = len(fast)
    size = chunk if chunk > 0 else n
    bounds = [(i, min(i + size, n)) for i in range(0, n, size)]

    def end_to_end(f: Any, s: Any) -> tuple[Any, Any]:
        entries, exits = _vbt_signals(vbt, c, f, s)
        return _vbt_run(vbt, o, h, lo, c, entries, exits)

    def full() -> tuple[Any, Any]:
        parts = [end_to_end(fast[a:b], slow[a:b]) for a, b in bounds]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    t0 = time.perf_counter()  # warm-up: a small grid loads/compiles vectorbt's numba code
    end_to_end(fast[:6], slow[:6])
    warm_s = time.perf_counter() - t0

    (total_return, n_trades), mem = measure_peak(full)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        full()
        runs.append(time.perf_counter() - start)

    signals = [_vbt_signals(vbt, c, fast[a:b], slow[a:b]) for a, b in bounds]
    sim_runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for entries, exits in signals:
            _vbt_run(vbt, o, h, lo, c, entries, exits)
        sim_runs.append(time.perf_counter() - start)
    np.savez(out, n_trades=n_trades, total_return=total_return)
    return {
        "import_s": import_s,
        "warm_s": warm_s,
        "chunks": len(bounds),
        "chunk_size": size,
        "timings": {"end_to_end": runs, "simulation_only": sim_runs},
        "memory": mem,
        "version": vbt.__version__,
    }


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def _spawn(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {args[:2]} failed:\n{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _fmt_runs(runs: list[float]) -> str:
    return f"median {statistics.median(runs) * 1e3:9.1f} ms, best {min(runs) * 1e3:9.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["ours", "vectorbt"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--repeat", type=int, default=20, help="timed calls of ours")
    parser.add_argument("--repeat-vbt", type=int, default=3, help="timed calls of vectorbt")
    parser.add_argument(
        "--vbt-chunks",
        default="0,1000",
        help="vectorbt batch sizes to run, comma-separated (0 = all configs in one batch)",
    )
    parser.add_argument("--vbt-chunk", type=int, default=0, help=argparse.SUPPRESS)  # worker
    args = parser.parse_args(argv)

    if args.worker == "ours":
        print(json.dumps(worker_ours(args.data, args.out, args.repeat)))
        return
    if args.worker == "vectorbt":
        print(json.dumps(worker_vectorbt(args.data, args.out, args.repeat_vbt, args.vbt_chunk)))
        return

    from research.data.market import load_bars

    bars = load_bars(symbols=["SPX"])
    ohlc = np.vstack([bars[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close")])
    fast, _ = grid()
    n_cfg, n_bars = len(fast), ohlc.shape[1]
    print(
        f"cpus: {os.cpu_count()}  bars: {n_bars} (SPX)  configs: {n_cfg}  SL {SL:.0%} TP {TP:.0%}"
    )

    vbts: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        data = root / "ohlc.npy"
        np.save(data, ohlc)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(root / "numba-cache"))  # forces a real JIT
        ours = _spawn(
            ["--worker", "ours", "--data", str(data), "--out", str(root / "ours.npz"),
             "--repeat", str(args.repeat)],
            env,
        )  # fmt: skip
        mine = np.load(root / "ours.npz")
        for chunk in (int(x) for x in args.vbt_chunks.split(",")):
            out = root / f"vbt-{chunk}.npz"
            res = _spawn(
                ["--worker", "vectorbt", "--data", str(data), "--out", str(out),
                 "--repeat-vbt", str(args.repeat_vbt), "--vbt-chunk", str(chunk)],
                dict(os.environ),
            )  # fmt: skip
            theirs = np.load(out)
            res["mismatches"] = int((mine["n_trades"] != theirs["n_trades"]).sum())
            res["max_rel"] = float(
                np.max(
                    np.abs(mine["total_return"] - theirs["total_return"])
                    / np.abs(1 + theirs["total_return"])
                )
            )
            vbts[chunk] = res

    ours_med = {k: statistics.median(v) for k, v in ours["timings"].items()}
    threads = max(ours_med, key=int)
    print()
    print(f"ours (numba, threading layer {ours['threading_layer']}):")
    print(f"  import {ours['import_s']:.2f} s, JIT compile (fresh cache) {ours['compile_s']:.2f} s")
    for k, runs in ours["timings"].items():
        print(
            f"  {k} thread(s): {_fmt_runs(runs)} -> {n_cfg / ours_med[k]:10,.0f} configs/s "
            f"({n_cfg * n_bars / ours_med[k] / 1e6:,.0f} M config-bars/s)"
        )
    best: dict[str, float] = {}
    for chunk, res in vbts.items():
        label = "one batch" if res["chunks"] == 1 else f"{res['chunks']} batches of <= {chunk}"
        print(f"vectorbt {res['version']} ({label}):")
        print(f"  import {res['import_s']:.2f} s, warm-up call (6 configs) {res['warm_s']:.2f} s")
        for k, runs in res["timings"].items():
            med = statistics.median(runs)
            best[k] = min(best.get(k, np.inf), med)
            print(f"  {k:15s}: {_fmt_runs(runs)} -> {n_cfg / med:10,.0f} configs/s")

    print("\nwarm throughput ratio ours / vectorbt (medians; vectorbt at its faster batching):")
    for k in ours_med:
        for v, med in best.items():
            print(f"  ours {k} thread(s) vs vectorbt {v:15s}: {med / ours_med[k]:8.1f}x")
    goal = best["end_to_end"] / ours_med[threads]
    print(
        f"  goal >= 50x (ours {threads} threads vs vectorbt end to end): "
        f"{'met' if goal >= 50 else 'NOT met'} ({goal:.0f}x)"
    )

    print("\npeak memory (RSS, separate fresh processes; first full-size call):")
    rows = [("ours", ours)] + [(f"vectorbt/{c or 'all'}", r) for c, r in vbts.items()]
    for name, res in rows:
        m = res["memory"]
        print(
            f"  {name:13s}: process peak {m['process_peak_mb']:7.1f} MB (during the call "
            f"{m['peak_mb']:7.1f} MB = {m['rss_before_mb']:.1f} MB before + "
            f"{m['increment_mb']:.1f} MB)"
        )
    print(f"  method: {ours['memory']['method']}")
    peak = ours["memory"]["process_peak_mb"]
    print(f"  goal ours < 500 MB (whole process): {'met' if peak < 500 else 'NOT met'}")
    for chunk, res in vbts.items():
        if res["memory"]["process_peak_mb"] > VBT_BUDGET_MB:
            print(f"  vectorbt/{chunk or 'all'} exceeded {VBT_BUDGET_MB} MB: use smaller chunks")

    print("\ntrade counts, ours vs vectorbt (its own MA / crossover signals):")
    for chunk, res in vbts.items():
        print(
            f"  vectorbt/{chunk or 'all'}: {res['mismatches']} mismatching configs of {n_cfg}; "
            f"total return max |diff| / (1 + r) = {res['max_rel']:.1e}"
        )
    print()
    credit_spread_throughput()


# --------------------------------------------------------------------------------------------
# PLACEHOLDER (owner fills in): credit-spread engine throughput on the same machine.
# --------------------------------------------------------------------------------------------


def credit_spread_throughput() -> None:
    """Credit-spread engine on SPX+IXIC 1999–2018: a 48-config grid (delta range x profit target x
    stop loss), warm, with and without trade records; compile time separately."""
    import itertools

    from research.backtest.run import run_kernel
    from research.backtest.service import load_panel
    from research.backtest.spreads import BacktestConfig

    panel, _, _ = load_panel(["SPX", "IXIC"])
    base = BacktestConfig()
    grid = [
        base.replace(
            **{
                "spread.min_delta": lo,
                "spread.max_delta": lo + 0.1,
                "spread.profit_target_pct": pt,
                "spread.stop_loss_pct": sl,
            }
        )
        for lo, pt, sl in itertools.product(
            [0.05, 0.1, 0.15, 0.2], [50, 65, 80], [100, 125, 150, 200]
        )
    ]
    start = time.perf_counter()
    run_kernel(panel, grid[:1], record_trades=False)
    first = time.perf_counter() - start
    print(
        f"\ncredit-spread engine, SPX+IXIC ({len(panel.dates)} days x {len(panel.tickers)} "
        f"tickers): first call (compile or cache load) {first:.2f} s"
    )
    for record in (False, True):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run_kernel(panel, grid, record_trades=record)
            times.append(time.perf_counter() - start)
        best = min(times)
        print(
            f"  {len(grid)} configs, record_trades={record}: {best:.3f} s "
            f"-> {len(grid) / best:,.0f} configs/s"
        )


if __name__ == "__main__":
    with recorded("bench_engine", enabled="--worker" not in sys.argv):
        main()
