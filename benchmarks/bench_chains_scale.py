"""Benchmark: the validation plan's scale — an ORATS-shaped history of two ETFs over 2007–2018
(about 44 M rows), loaded with the backtest's filters and backtested from the quotes with the
multiplier and limit grids walked forward.

The history is synthetic (``research.backtest.synthetic_orats``: SPY and QQQ at ETF price levels
on the embedded S&P 500 and NASDAQ closes and the lab's IV; weekly, monthly — Saturday-dated
before 2015 — quarterly and LEAPS expirations; $1 and $5 strike grids; both sides on one row) and
is written once, as hive-partitioned Parquet (one file per year and ticker), into
``$REGIME_LAB_SCALE_DIR`` (default ``~/.cache/regime-lab/orats-synthetic``); later runs reuse it.

Phases, each timed, with the process's peak resident memory after it (``ru_maxrss``):

1. generate (first run only): rows, Parquet size;
2. load: ``load_chains`` of the folder — DuckDB over the Parquet files with the backtest's
   filters pushed down: the strategy's side only (bear calls read calls), at most
   ``target_dte + 60`` days to expiry, strikes within 0.5–1.5x spot — and the contract check;
   then ``chain_book`` on the SPY+QQQ panel;
3. the regime-multiplier study and 4. the portfolio-limits study (``optimize.study.grid_study``,
   the grid notebooks' computation): every variant priced from the quotes, anchored
   walk-forward (6 years in sample, 2 out), the exposure-matched control, a permutation null
   and the Sharpe tests (``--permutations`` and ``--reps`` set their sizes).

Goals (the issue's): peak memory under 8 GB and the whole under 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from _record import recorded

GOAL_GB, GOAL_MIN = 8.0, 10.0


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="where the history is kept")
    parser.add_argument("--start", default="2007-01-01")
    parser.add_argument("--end", default="2018-12-31")
    parser.add_argument("--permutations", type=int, default=50)
    parser.add_argument("--reps", type=int, default=500, help="Sharpe and SPA bootstrap draws")
    args = parser.parse_args()

    from research.backtest.chains import chain_book
    from research.backtest.service import CHAIN_MONEYNESS, load_panel
    from research.backtest.synthetic_orats import ETFS, market_files, write_orats_history
    from research.data.chains import load_chains
    from research.optimize import study as studies
    from research.optimize.scenarios import StudyData
    from research.optimize.service import DEFAULT_BASE

    folder = args.folder or Path(
        os.environ.get(
            "REGIME_LAB_SCALE_DIR", Path.home() / ".cache" / "regime-lab" / "orats-synthetic"
        )
    )
    history = folder / "history"
    t_all = time.perf_counter()
    print(f"cpus: {os.cpu_count()}; history in {history}")
    t0 = time.perf_counter()
    made_file = folder / "generated.json"
    if not history.exists() or not any(history.iterdir()):
        made = write_orats_history(history, start=args.start, end=args.end, progress=print)
        said = (
            f"{made.rows:,} ORATS rows, {made.bytes / 1e9:.2f} GB Parquet in {made.files} files, "
            f"{time.perf_counter() - t0:.0f} s, peak {_peak_gb():.2f} GB"
        )
        made_file.write_text(json.dumps({"said": said}), encoding="utf-8")
        print(f"1. generate: {said}")
    else:
        import pyarrow.dataset as ds

        rows = ds.dataset(history, format="parquet", partitioning="hive").count_rows()
        first = (
            json.loads(made_file.read_text(encoding="utf-8"))["said"] if made_file.exists() else "?"
        )
        print(f"1. generate: reused {rows:,} ORATS rows (written on the first run: {first})")
    bars_path, iv_path = market_files(folder / "market")

    tickers = list(ETFS)
    base = DEFAULT_BASE
    side = "call" if base.spread.strategy == "bear_call" else "put"
    t0 = time.perf_counter()
    panel, _, _ = load_panel(
        tickers, bars_path=bars_path, iv_path=iv_path, start=args.start, end=args.end
    )
    chains = load_chains(
        history,
        layout="orats",
        underlyings=tickers,
        option_type=side,
        start=panel.dates[0],
        end=panel.dates[-1],
        max_dte=base.spread.target_dte + 60,
        moneyness=CHAIN_MONEYNESS,
    )
    loaded = time.perf_counter() - t0
    book = chain_book(panel.dates, panel.tickers, chains, str(history))
    built = time.perf_counter() - t0 - loaded
    print(
        f"2. load: {len(chains):,} {side} rows kept (of {len(panel.dates):,} days x "
        f"{len(tickers)} tickers) in {loaded:.1f} s, chain book {built:.1f} s "
        f"({book.rows:,} rows); peak {_peak_gb():.2f} GB"
    )
    data = StudyData.load(bars_path, iv_path, symbols=tickers).with_chains(chains, str(history))
    del chains, book
    timings = {}
    # the grid notebooks' benchmarks: flat multipliers, wide-open limits
    for phase, kind, benchmark in ((3, "multipliers", "flat"), (4, "limits", "wide_open")):
        t0 = time.perf_counter()
        result = studies.grid_study(
            kind,
            [tuple(tickers)],
            benchmark=benchmark,
            start=args.start,
            end=args.end,
            is_years=6.0,
            oos_years=2.0,
            scenarios=[],
            n_permutations=args.permutations,
            sharpe_reps=args.reps,
            spa_reps=args.reps,
            data=data,
            progress=lambda msg: print(f"   {msg}"),
        )
        timings[kind] = time.perf_counter() - t0
        verdict = result.verdicts().iloc[0]
        print(
            f"{phase}. {kind} study, priced from the quotes: {timings[kind]:.0f} s; verdict "
            f'"{verdict["verdict"]}"; peak {_peak_gb():.2f} GB'
        )
    total = (time.perf_counter() - t_all) / 60
    peak = _peak_gb()
    print(
        f"whole: {total:.1f} min, peak {peak:.2f} GB; goals: memory < {GOAL_GB:g} GB "
        f"{'met' if peak < GOAL_GB else 'missed'}, time < {GOAL_MIN:g} min "
        f"{'met' if total < GOAL_MIN else 'missed'}"
    )


if __name__ == "__main__":
    with recorded("bench_chains_scale"):
        main()
