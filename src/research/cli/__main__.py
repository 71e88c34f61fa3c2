"""``python -m research.cli …`` is the ``research`` command."""

from research.cli import app

app(prog_name="research")
