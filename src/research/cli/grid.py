"""``research grid …``: configuration grids and the notebooks' study, stored in DuckDB."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from research.cli._common import (
    MODELS,
    BarsOption,
    ConventionOption,
    ConventionsOption,
    DateFormatOption,
    IvFromOption,
    IvOption,
    RegimeModel,
    choice,
    conventions_option,
    fail,
    parse_regime_model,
    refusals,
)
from research.options import Range

if TYPE_CHECKING:
    from research.optimize.scenarios import StudyData
    from research.optimize.service import StudyInputs

app = typer.Typer(help="Configuration grids, stored in DuckDB.", no_args_is_help=True)

SPA_REPS = Range(50, 100_000, integer=True)
SHARPE_REPS = Range(100, 1_000_000, integer=True)
PERMUTATIONS = Range(200, 100_000, integer=True)
YEARS = Range(0, 50, low_open=True)


class GridKind(enum.StrEnum):
    """The grids ``research grid run`` runs."""

    multipliers = "multipliers"
    limits = "limits"
    cartesian = "cartesian"


class StudyKind(enum.StrEnum):
    """The studies ``research grid study`` runs."""

    multipliers = "multipliers"
    limits = "limits"


class Executor(enum.StrEnum):
    """Where a grid's configurations run (``research.optimize.executors``)."""

    inline = "inline"
    local = "local"
    dask = "dask"


class Engine(enum.StrEnum):
    """How a grid's backtests are computed (``research.backtest.run.ENGINES``)."""

    auto = "auto"
    shared = "shared"
    per_config = "per_config"


def _study_inputs(
    kind: str,
    tickers: list[str] | None,
    bars: Path | None,
    iv: list[Path] | None,
    iv_from: list[str] | None,
    conventions: Path | None,
    convention: list[str] | None,
) -> StudyInputs:
    """Ticker sets (``--tickers``; default every symbol of ``--bars``, SPX and IXIC when
    embedded), their data and the base config with the conventions."""
    from research.backtest.service import parse_relations
    from research.optimize.service import study_inputs

    sets = [tuple(t.strip() for t in s.split(",") if t.strip()) for s in tickers or []]
    return study_inputs(
        kind,
        sets or None,
        bars_path=bars,
        iv_path=iv or None,
        iv_from=parse_relations(iv_from),
        conventions_path=conventions,
        conventions=conventions_option(None, convention),
    )


def _data_notes(data: StudyData) -> None:
    for note in data.notes:
        typer.echo(f"note: {note}", err=True)


@app.command("run")
@refusals()
def grid_run(
    kind: Annotated[
        GridKind,
        typer.Argument(
            help="multipliers, limits or cartesian.",
            parser=choice(
                GridKind, lambda w: f"unknown grid {w!r}; use multipliers, limits or cartesian"
            ),
        ),
    ],
    tickers: Annotated[
        list[str] | None,
        typer.Option("--tickers", help="Ticker set, e.g. SPX or SPX,IXIC; repeatable."),
    ] = None,
    grid_file: Annotated[Path | None, typer.Option(help="Cartesian grid YAML.")] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    regime_model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"Labels for the multipliers: {MODELS}.",
            metavar="MODEL",
            parser=parse_regime_model,
        ),
    ] = RegimeModel.bull_bear_vol,
    executor: Annotated[
        Executor,
        typer.Option(
            help="inline, local or dask.",
            parser=choice(
                Executor,
                lambda w: (
                    f"unknown executor {w!r}; choose one of: "
                    + ", ".join(e.value for e in Executor)
                ),
            ),
        ),
    ] = Executor.inline,
    address: Annotated[str | None, typer.Option(help="Dask scheduler tcp://host:port.")] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="auto: shared trade paths where several configs share a strategy; shared: "
            "always; per_config: the reference kernels (same results, slower).",
            parser=choice(
                Engine,
                lambda w: f"engine must be one of {', '.join(e.value for e in Engine)}; got {w!r}",
            ),
        ),
    ] = Engine.auto,
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default data/lab.duckdb).")] = None,
    spa_reps: Annotated[
        int, typer.Option(help=f"Bootstrap replications for SPA, {SPA_REPS}.")
    ] = 1000,
    bars: BarsOption = None,
    iv: IvOption = None,
    iv_from: IvFromOption = None,
    conventions: ConventionsOption = None,
    convention: ConventionOption = None,
    date_format: DateFormatOption = None,
) -> None:
    """Run a grid, store it in DuckDB and print the results with DSR, PBO and SPA."""
    import pandas as pd

    from research.config import PATHS
    from research.data.contracts import dates_read_as
    from research.optimize.service import run_named_grid
    from research.optimize.store import check_store
    from research.options import check_before_work

    fmt = check_before_work(
        numbers=[("--spa-reps", spa_reps, SPA_REPS)],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[
            ("--bars", bars),
            ("--iv", iv),
            ("--grid-file", grid_file),
            ("--conventions", conventions),
        ],
        outputs=[("--db", db or PATHS.database)],
    )
    check_store(db)  # a store that cannot be written fails now, not after the grid ran
    with dates_read_as(fmt):
        inputs = _study_inputs(kind.value, tickers, bars, iv, iv_from, conventions, convention)
    sets, data, base = inputs.ticker_sets, inputs.data, inputs.base
    ex = None
    if executor is not Executor.inline:
        from research.optimize.executors import get_executor

        ex = get_executor(executor.value, address)
    run = run_named_grid(
        kind.value,
        sets,
        grid_file=grid_file,
        regime_model=regime_model.value,
        start=start,
        end=end,
        executor=ex,
        store_path=db or PATHS.database,
        spa_reps=spa_reps,
        base=base,
        data=data,
        progress=lambda m: typer.echo(m, err=True),
        engine=engine.value,
    )
    _data_notes(data)
    cols = ["variant", "tickers", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        typer.echo(run.result.table[cols].round(4).to_string(index=False))
        for ticker_set, report in run.reports.items():
            typer.echo(f"\n{ticker_set} — in-sample diagnostics:\n{report.summary().to_string()}")
    typer.echo(f"\nstored as run {run.run_id} in {db or PATHS.database}")


@app.command("study")
@refusals()
def grid_study_cmd(
    kind: Annotated[
        StudyKind,
        typer.Argument(
            help="multipliers or limits.",
            parser=choice(StudyKind, lambda w: f"unknown study {w!r}; use multipliers or limits"),
        ),
    ],
    tickers: Annotated[
        list[str] | None,
        typer.Option("--tickers", help="Ticker set, e.g. SPX or SPX,IXIC; repeatable."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    is_years: Annotated[float, typer.Option(help=f"Walk-forward in-sample years, {YEARS}.")] = 6.0,
    oos_years: Annotated[
        float, typer.Option(help=f"Walk-forward out-of-sample years, {YEARS}.")
    ] = 2.0,
    scenarios: Annotated[
        str | None, typer.Option(help="Comma-separated sensitivity scenarios (default: all).")
    ] = None,
    n_permutations: Annotated[int, typer.Option(help=f"Label shuffles, {PERMUTATIONS}.")] = 200,
    sharpe_reps: Annotated[
        int, typer.Option(help=f"Sharpe-test bootstrap resamples, {SHARPE_REPS}.")
    ] = 2000,
    spa_reps: Annotated[int, typer.Option(help=f"SPA bootstrap replications, {SPA_REPS}.")] = 1000,
    db: Annotated[Path | None, typer.Option(help="Results store counted for DSR trials.")] = None,
    summary_out: Annotated[Path | None, typer.Option(help="Write the JSON summary here.")] = None,
    bars: BarsOption = None,
    iv: IvOption = None,
    iv_from: IvFromOption = None,
    conventions: ConventionsOption = None,
    convention: ConventionOption = None,
    regime_model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"Labels for the multipliers study: {MODELS}.",
            metavar="MODEL",
            parser=parse_regime_model,
        ),
    ] = RegimeModel.bull_bear_vol,
    date_format: DateFormatOption = None,
) -> None:
    """The notebooks' study headless: walk-forward, controls, permutation null, Sharpe tests
    and every sensitivity scenario; prints the verdicts and the sensitivity table."""
    import json

    import pandas as pd

    from research._io import write_text_atomic
    from research.config import PATHS
    from research.data.contracts import dates_read_as
    from research.optimize.study import grid_study
    from research.options import check_before_work

    store = db or PATHS.database
    fmt = check_before_work(
        numbers=[
            ("--is-years", is_years, YEARS),
            ("--oos-years", oos_years, YEARS),
            ("--n-permutations", n_permutations, PERMUTATIONS),
            ("--sharpe-reps", sharpe_reps, SHARPE_REPS),
            ("--spa-reps", spa_reps, SPA_REPS),
        ],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[
            ("--bars", bars),
            ("--iv", iv),
            ("--conventions", conventions),
            ("--db", store if Path(store).exists() else None),  # read: trials counted for DSR
        ],
        outputs=[("--summary-out", summary_out)],
    )
    multipliers = kind is StudyKind.multipliers
    with dates_read_as(fmt):
        inputs = _study_inputs(kind.value, tickers, bars, iv, iv_from, conventions, convention)
    data = inputs.data
    study = grid_study(
        kind.value,
        inputs.ticker_sets,
        benchmark="flat" if multipliers else "wide_open",
        start=start,
        end=end,
        regime_model=regime_model.value if multipliers else None,
        is_years=is_years,
        oos_years=oos_years,
        scenarios=None if scenarios is None else [x.strip() for x in scenarios.split(",")],
        n_permutations=n_permutations,
        sharpe_reps=sharpe_reps,
        spa_reps=spa_reps,
        store_path=store,
        data=data,
        base=inputs.base,
        progress=lambda m: typer.echo(m, err=True),
    )
    _data_notes(data)
    summary = study.summary()
    rows = summary["per_tickers"]
    assert isinstance(rows, list)
    for row in rows:
        typer.echo(f"{row['tickers']}: {row['verdict']}\n")
    cols = ["tickers", "scenario", "choice_oos_sharpe", "benchmark_oos_sharpe"]
    cols += ["control_oos_sharpe", "p_value", "verdict", "verdict_holds"]
    table = study.sensitivity_table()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(table[[c for c in cols if c in table]].round(3).to_string(index=False))
    typer.echo(f"\n{study.seconds:.1f} s")
    if summary_out is not None:
        write_text_atomic(summary_out, json.dumps(summary, indent=2, default=str))
        typer.echo(f"wrote {summary_out}")


@app.command("query")
def grid_query(
    sql: Annotated[str, typer.Argument(help="SQL over grid_runs, grid_results, grid_returns.")],
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default data/lab.duckdb).")] = None,
) -> None:
    """Query the results database with SQL (read-only; the file is never created)."""
    import duckdb
    import pandas as pd

    from research.config import PATHS

    path = db or PATHS.database
    if not Path(path).is_file():
        fail(f"no results database at {path} (research grid run writes one; --db names another)")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        fail(f"{path}: cannot open the results database: {exc}")
    try:
        frame = con.execute(sql).df()
    except duckdb.Error as exc:
        fail(f"{path}: the query failed: {str(exc).splitlines()[0]}")
    finally:
        con.close()
    with pd.option_context("display.width", 160):
        typer.echo(frame.to_string(index=False))
