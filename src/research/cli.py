"""The ``research`` command line: every notebook's computation, headless.

Heavy libraries are imported inside the commands so that ``research --help`` and a no-op
``research run`` stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Regime Lab research commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Data contracts: validate files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
notebooks_app = typer.Typer(help="Notebook utilities.", no_args_is_help=True)
app.add_typer(notebooks_app, name="notebooks")


@app.command()
def run(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this notebook (name or NN prefix); repeatable."),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option("--params", help="Parameters YAML (default notebooks/params/default.yaml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-execute even if unchanged.")] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Notebooks executed in parallel.")
    ] = None,
    timeout: Annotated[int, typer.Option(help="Per-cell timeout, seconds.")] = 1800,
    renderer: Annotated[
        str, typer.Option(help="auto (quarto if on PATH, else nbconvert), quarto or nbconvert.")
    ] = "auto",
    no_render: Annotated[bool, typer.Option("--no-render", help="Execute only.")] = False,
) -> None:
    """Execute the notebooks with papermill (incrementally) and render reports/_site."""
    from research.pipeline.runner import run_pipeline

    try:
        result = run_pipeline(
            only=only,
            params_file=params,
            force=force,
            jobs=jobs,
            timeout=timeout,
            render=not no_render,
            renderer=renderer,
        )
    except (ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not result.ok:
        typer.echo("failed notebooks:", err=True)
        for outcome in result.failures:
            typer.echo(f"  {outcome.describe()}", err=True)
        raise typer.Exit(1)


@data_app.command("validate")
def data_validate(
    kind: Annotated[
        str,
        typer.Argument(
            help="Contract: bars, iv_index, signals, experiments, tunes, trades, llm_decisions."
        ),
    ],
    path: Annotated[Path, typer.Argument(help="CSV, Parquet, JSON/JSONL, SQLite or DuckDB file.")],
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB files.")] = None,
) -> None:
    """Check a file against a data contract; print every problem and exit 1 if it fails."""
    from research.data.cli_validate import validate_command

    raise typer.Exit(validate_command(kind, path, table))


@notebooks_app.command("prepare")
def notebooks_prepare(
    out: Annotated[Path, typer.Option(help="Folder for the parameterised notebooks.")],
    params: Annotated[
        Path | None, typer.Option(help="Parameters YAML (e.g. notebooks/params/small.yaml).")
    ] = None,
) -> None:
    """Inject parameters into copies of the notebooks without executing them (for nbval)."""
    from research.pipeline.prepare import prepare_notebooks

    for path in prepare_notebooks(out, params_file=params):
        typer.echo(str(path))


regimes_app = typer.Typer(
    help="Market regimes: classify bars with any model.", no_args_is_help=True
)
app.add_typer(regimes_app, name="regimes")


@regimes_app.command("classify")
def regimes_classify(
    model: Annotated[str, typer.Option(help="vix_trend, vol_ratio, bull_bear_vol, tags, markov.")],
    bars: Annotated[Path, typer.Option(help="A file in the bars contract.")],
    out: Annotated[Path, typer.Option(help="Output table (.csv, .parquet, .json, .jsonl).")],
    iv: Annotated[
        Path | None, typer.Option(help="A file in the iv_index contract (IV models).")
    ] = None,
    iv_proxy: Annotated[
        bool,
        typer.Option(
            "--iv-proxy",
            help="Fill dates without IV with the GARCH proxy fitted on "
            "the embedded SPX/VIX (labelled source=proxy).",
        ),
    ] = False,
    ruleset: Annotated[
        Path | None, typer.Option(help="Ruleset YAML/JSON (default: the seeds' defaults).")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB.")] = None,
) -> None:
    """Classify every (date, symbol) of BARS and write the long regime table to OUT."""
    from research.data.errors import ContractError
    from research.data.writers import write_table
    from research.regimes.ruleset import RulesetError
    from research.regimes.service import classify_files

    try:
        labels = classify_files(model, bars, iv=iv, iv_proxy=iv_proxy, ruleset=ruleset, table=table)
        write_table(labels, out)
    except (ContractError, RulesetError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    from research.regimes.service import summarize

    typer.echo(summarize(labels))
    typer.echo(f"wrote {len(labels)} rows to {out}")


@regimes_app.command("snapshot")
def regimes_snapshot(
    bars: Annotated[Path, typer.Option(help="A file in the bars contract.")],
    out: Annotated[Path, typer.Option(help="JSON file to write.")],
    asof: Annotated[str | None, typer.Option(help="Date (default: the last bar).")] = None,
    ruleset: Annotated[Path | None, typer.Option(help="Ruleset YAML/JSON.")] = None,
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB.")] = None,
) -> None:
    """Write the seed-003 volatility-regime snapshot (vol_regime, vol.short/long/ratio per symbol
    and vol_regime_summary) as JSON."""
    import json

    from research.data.errors import ContractError
    from research.regimes import sizing
    from research.regimes.ruleset import RulesetError
    from research.regimes.service import classify_files

    try:
        labels = classify_files("vol_ratio", bars, ruleset=ruleset, table=table)
        snap = sizing.regime_snapshot(labels, asof=asof)
        sizing.write_snapshot(snap, out)
    except (ContractError, RulesetError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(snap["vol_regime_summary"]))
    typer.echo(f"wrote {out}")
