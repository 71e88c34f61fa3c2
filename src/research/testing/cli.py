"""The ``research`` command line run in-process for tests, read like a finished subprocess.

``run_cli("backtest", "run", ...)`` invokes ``research.cli.app`` through typer's ``CliRunner``
(no new interpreter, no re-import of pandas and numba) and returns a :class:`CliResult` with the
``returncode``, ``stdout`` and ``stderr`` of a ``subprocess.CompletedProcess``, so a test written
against the installed entry point reads the same. Stdout and stderr are kept apart
(``output`` has both, interleaved, as a terminal would show them).

A command that ends with an uncaught exception is not a result: a subprocess would print a
traceback and exit 1, which a test expecting "one error line and exit 1" could mistake for a
refusal. ``run_cli`` raises ``AssertionError`` with that traceback instead.

What a subprocess would have of its own is set for the call and restored after it: ``cwd``
(``os.chdir``, process-wide: not for threads), ``env`` (added to ``os.environ``; ``None``
values unset a variable) and ``input`` (stdin).
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

__all__ = ["CliResult", "run_cli"]


@dataclass(frozen=True)
class CliResult:
    """One finished ``research`` command: what ``subprocess.run(..., text=True)`` would give."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    output: str  # stdout and stderr interleaved


def run_cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> CliResult:
    """Run ``research ARGS`` in-process.

    Raises
    ------
    AssertionError
        The command raised an exception other than ``SystemExit`` (the message holds the
        traceback).
    """
    from research.cli import app

    argv = tuple(os.fspath(a) for a in args)
    with contextlib.chdir(Path(cwd)) if cwd is not None else contextlib.nullcontext():
        res = CliRunner().invoke(
            app, list(argv), input=input, env=env, prog_name="research", catch_exceptions=True
        )
    exc = res.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(exc))
        raise AssertionError(
            f"research {' '.join(argv)} raised instead of exiting:\n{tb}\n"
            f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
        )
    return CliResult(argv, res.exit_code, res.stdout, res.stderr, res.output)
