"""``research run``: execute the notebooks (incrementally) and render the site.

A refused run (a bad option, another run holding the project's lock, parameters the notebooks
do not declare) is one ``error:`` line and exit code 2; failed notebooks exit 1; Ctrl-C 130.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import choice, refusals


class Renderer(enum.StrEnum):
    """How the site is rendered (``research.pipeline.runner.RENDERERS``)."""

    auto = "auto"
    quarto = "quarto"
    nbconvert = "nbconvert"


_renderer = choice(
    Renderer,
    lambda w: f"--renderer must be one of {', '.join(r.value for r in Renderer)}, got {w}",
    code=2,
)


@refusals(code=2, subject="research run", also=(RuntimeError,))
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
        int | None, typer.Option("--jobs", "-j", help="Notebooks executed in parallel (>= 1).")
    ] = None,
    timeout: Annotated[int, typer.Option(help="Per-cell timeout, seconds (>= 1).")] = 1800,
    renderer: Annotated[
        Renderer,
        typer.Option(
            help="auto (quarto if on PATH, else nbconvert), quarto or nbconvert.", parser=_renderer
        ),
    ] = Renderer.auto,
    no_render: Annotated[bool, typer.Option("--no-render", help="Execute only.")] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="If another research run is running in this project, wait for it to finish "
            "instead of failing.",
        ),
    ] = False,
) -> None:
    """Execute the notebooks with papermill (incrementally) and render reports/_site.

    One run at a time per project. Ctrl-C stops it (exit code 130): the notebooks that finished
    are kept, the published site is unchanged.
    """
    from research.pipeline.runner import RunInterrupted, run_pipeline

    try:
        result = run_pipeline(
            only=only,
            params_file=params,
            force=force,
            jobs=jobs,
            timeout=timeout,
            render=not no_render,
            renderer=renderer.value,
            wait=wait,
        )
    except RunInterrupted as exc:  # Ctrl-C: one line saying what was kept
        typer.echo(str(exc), err=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was executed; the published site is unchanged", err=True)
        raise typer.Exit(130) from None
    if not result.ok:
        typer.echo("failed notebooks:", err=True)
        for outcome in result.failures:
            typer.echo(f"  {outcome.describe()}", err=True)
        raise typer.Exit(1)
