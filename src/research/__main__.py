"""``python -m research …`` is the ``research`` command."""

from research.cli import app

app(prog_name="research")
