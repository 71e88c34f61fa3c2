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
