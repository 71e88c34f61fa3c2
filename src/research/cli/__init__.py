"""The ``research`` command line: every notebook's computation, headless.

One module per command group, each with its own ``app`` (``research.cli.backtest.app`` is
``research backtest``); ``research run`` is :func:`research.cli.run.run`. What they share — the
one way a command refuses (``error: <message>`` and an exit code), the choices, the shared
options — is in :mod:`research.cli._common`.

The command line is the package's top layer: nothing else in ``research`` imports it (but
``research.__main__``). Heavy libraries are imported inside the commands, so that
``research --help`` stays fast.
"""

from __future__ import annotations

import typer

from research.cli import attribute, backtest, chains, data, grid, llm, notebooks, paper, regimes
from research.cli.run import run

__all__ = ["app"]

app = typer.Typer(
    help="Regime Lab research commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(notebooks.app, name="notebooks")
app.add_typer(attribute.app, name="attribute")
app.add_typer(llm.app, name="llm")
app.command()(run)
app.add_typer(regimes.app, name="regimes")
app.add_typer(backtest.app, name="backtest")
app.add_typer(grid.app, name="grid")
app.add_typer(chains.app, name="chains")
app.add_typer(paper.app, name="paper")
