"""Write the Guide's command-line reference, ``reports/guide/cli.qmd``, from the program itself.

Walks the ``research`` command tree (Typer's Click commands) and writes, for every command, its
help text, its usage line and a table of its arguments and options with their types, defaults
and help, in the tree's own order. Nothing depends on the terminal's width, so the output is
the same on every machine; ``tests/test_guide.py`` regenerates it and compares it with the
committed page.

Usage: ``.venv/bin/python reports/guide/_make_cli_reference.py [OUT]`` (default: the page).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().with_name("cli.qmd")
COMMAND = "python reports/guide/_make_cli_reference.py"
SEPARATOR = "|" + "-" * 28 + "|" + "-" * 9 + "|" + "-" * 63 + "|"
"""A table's column widths in Quarto follow its dashes: 28% / 9% / 63%."""

HEADER = f"""---
title: "Command-line reference"
subtitle: "Every research command, its arguments and options"
---

*What it answers:* which command does what, and every option it takes, with its default. The
same text is each command's `--help`.

This page is generated from the program by `{COMMAND}` (a test fails when it is out of date);
do not edit it by hand. Relative paths on the command line are taken from the current folder;
every numeric option is checked against its range before any work (see
[Troubleshooting](pipeline.qmd#troubleshooting)).
"""


def _cell(text: str) -> str:
    """Help text as one Markdown table cell: one line, pipes and angle brackets escaped
    (backticks kept: help texts quote commands in them)."""
    text = " ".join(text.split())
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """``text`` as inline code inside a table cell: raw HTML with its pipes as ``&#124;``, so
    that neither Pandoc nor the fallback splits the cell there and no backslash shows."""
    return f"<code>{html.escape(text).replace('|', '&#124;')}</code>"


def _paragraphs(text: str) -> str:
    """A command's help as Markdown paragraphs (Click's ``\\b`` no-rewrap marker dropped)."""
    text = text.replace("\b", "")
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "\n\n".join(_cell(p).replace("\\|", "|") for p in paras)


def _anchor(path: list[str]) -> str:
    return "-".join(path)


def _command_section(command: Any, ctx: Any, path: list[str], level: int) -> list[str]:
    """The Markdown lines of one command (and, for a group, of its subcommands)."""
    name = " ".join(path)
    lines = [f"{'#' * level} `{name}` {{#{_anchor(path)}}}", ""]
    if command.help:
        lines += [_paragraphs(command.help), ""]
    pieces = command.collect_usage_pieces(ctx)
    lines += ["```text", f"{name} {' '.join(pieces)}".rstrip(), "```", ""]
    rows = []
    for param in command.get_params(ctx):
        if param.name == "help" or getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        opts, help_text = record
        kind = "argument" if param.param_type_name == "argument" else "option"
        if kind == "argument":
            opts = opts or (param.name or "").upper()
        rows.append(f"| {_code(opts)} | {kind} | {_cell(help_text)} |")
    if rows:
        lines += ["| argument or option | kind | what it does |", SEPARATOR, *rows, ""]
    subcommands = getattr(command, "commands", None)
    if subcommands:
        names = command.list_commands(ctx)
        lines += ["Subcommands: " + ", ".join(f"[`{n}`](#{_anchor([*path, n])})" for n in names)]
        lines.append("")
        for sub_name in names:
            sub = command.get_command(ctx, sub_name)
            sub_ctx = type(ctx)(sub, info_name=sub_name, parent=ctx)
            lines += _command_section(sub, sub_ctx, [*path, sub_name], level + 1)
    return lines


def reference() -> str:
    """The whole page as text."""
    import typer.main

    from research.cli import app

    root = typer.main.get_command(app)
    ctx_type = type(root.make_context("research", [], resilient_parsing=True))
    ctx = ctx_type(root, info_name="research")
    lines = [HEADER]
    names = root.list_commands(ctx)
    lines += [
        "Commands: " + ", ".join(f"[`{n}`](#{_anchor(['research', n])})" for n in names),
        "",
    ]
    for name in names:
        sub = root.get_command(ctx, name)
        sub_ctx = ctx_type(sub, info_name=name, parent=ctx)
        lines += _command_section(sub, sub_ctx, ["research", name], 2)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else PAGE
    out.write_text(reference(), encoding="utf-8")
    print(f"written: {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
