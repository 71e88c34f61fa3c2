"""What the command groups share: a group-level ``--date-format`` for every file a command
reads (``research attribute --date-format %d/%m/%Y signals ...``).

No ``from __future__ import annotations`` here: typer evaluates the callback's annotations,
which name the group (a closure variable) in the help text."""

from collections.abc import Callable
from typing import Annotated

import typer

__all__ = ["date_format_callback"]


def date_format_callback(group: str) -> Callable[..., None]:
    """The callback of the ``group`` command group: every file its command reads parses its
    dates with ``--date-format`` (``research.data.contracts.dates_read_as``); a bad format is
    one ``error:`` line and exit code 1.

    Parameters
    ----------
    group
        The group's name, for the help text.
    """

    def read_dates(
        ctx: typer.Context,
        date_format: Annotated[
            str | None,
            typer.Option(
                "--date-format",
                help="How the input files write their dates: ISO (YYYY-MM-DD, the default) or "
                "a strftime format such as %d/%m/%Y; one format reads a whole column. Give it "
                f"before the command: research {group} --date-format %d/%m/%Y ...",
            ),
        ] = None,
    ) -> None:
        """Every file the command reads parses its dates with ``--date-format``."""
        if date_format is None:
            return
        from research.data.contracts import dates_read_as

        try:
            ctx.with_resource(dates_read_as(date_format))
        except ValueError as exc:
            typer.echo(f"error: --date-format {exc}", err=True)
            raise typer.Exit(1) from exc

    return read_dates
