"""``research notebooks …``: notebook utilities (a refusal exits 2, like ``research run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import refusals

app = typer.Typer(help="Notebook utilities.", no_args_is_help=True)


@app.command("prepare")
def notebooks_prepare(
    out: Annotated[
        Path,
        typer.Option(help="Folder for the parameterised notebooks (not the notebooks folder)."),
    ],
    params: Annotated[
        Path | None, typer.Option(help="Parameters YAML (e.g. notebooks/params/small.yaml).")
    ] = None,
) -> None:
    """Inject parameters into copies of the notebooks without executing them (for nbval)."""
    from research.pipeline.prepare import prepare_notebooks

    with refusals(code=2, subject=out):
        written = prepare_notebooks(out, params_file=params)
    for path in written:
        typer.echo(str(path))
