"""Provenance on every page: what a notebook was executed from, appended to its executed copy.

After a successful execution the runner appends one Markdown cell (tagged ``provenance``) to the
executed notebook: when it ran and for how long, the parameters injected and the file they came
from, the input data (a SHA-256 over every file the notebook may read, and each file's own
digest), the package version, the git commit (and whether the checkout had uncommitted
changes), the code digest and the Python and library versions. Both renderers show it as the
page's last section.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from research._io import atomic_write

__all__ = ["Provenance", "append_provenance", "git_commit", "provenance_markdown"]

LIBRARIES: tuple[str, ...] = ("numpy", "pandas", "numba", "statsmodels", "arch", "plotly")
TAG = "provenance"


@dataclass(frozen=True)
class Provenance:
    """What an executed page records about its own run."""

    executed_at: str
    seconds: float
    params: Mapping[str, Any]
    params_file: str
    data_files: Sequence[Path]
    data_digest: str
    code_digest: str
    root: Path


def git_commit(root: Path) -> str:
    """``abc1234`` (``abc1234, with uncommitted changes``), or why there is none."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return "not a git checkout"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "git not available"
    commit = head.stdout.strip()
    return f"{commit}, with uncommitted changes" if dirty else commit


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _short(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        parts = path.parts
        return f"{parts[-3]}/{parts[-2]}/{parts[-1]}" if len(parts) >= 3 else str(path)


def provenance_markdown(p: Provenance) -> str:
    """The provenance section (a two-column table)."""
    from research.pipeline.manifest import file_digest

    own = [f for f in p.data_files if "site-packages" not in f.parts]
    bundled = len(p.data_files) - len(own)
    listed = ", ".join(f"`{_short(f, p.root)}` ({file_digest(f)[:8]})" for f in own[:12])
    if len(own) > 12:
        listed += f", … {len(own) - 12} more"
    if bundled:
        listed += ("; " if listed else "") + f"{bundled} market-data files shipped with `arch`"
    params = json.dumps(dict(p.params), sort_keys=True, default=str)
    if len(params) > 400:
        params = params[:400] + "…"
    versions = ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)
    rows = [
        ("Executed", f"{p.executed_at}, in {p.seconds:.1f} s"),
        (
            "Parameters",
            f"`{p.params_file}`: `{params}`"
            if p.params
            else f"the notebook's defaults (`{p.params_file or 'no parameters file'}` sets none)",
        ),
        ("Input data", f"SHA-256 `{p.data_digest[:16]}` over {len(p.data_files)} files: {listed}"),
        (
            "Code",
            f"regime-lab {_version('regime-lab')}, git commit `{git_commit(p.root)}`, package "
            f"SHA-256 `{p.code_digest[:16]}`",
        ),
        ("Environment", f"Python {platform.python_version()}, {versions}"),
    ]
    body = "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in rows)
    return (
        "## Provenance\n\n| | |\n|---|---|\n"
        + body
        + "\n\n: What this page was computed from {#tbl-provenance}\n"
    )


def append_provenance(notebook: Path, p: Provenance) -> None:
    """Append (or replace) the provenance cell of an executed notebook, in place."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells = [c for c in nb.cells if TAG not in c.get("metadata", {}).get("tags", [])]
    nb.cells.append(new_markdown_cell(provenance_markdown(p), metadata={"tags": [TAG]}))
    atomic_write(notebook, lambda tmp: nbformat.write(nb, str(tmp)))
