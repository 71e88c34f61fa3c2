"""One notebook, many parameter sets: named parameter files that each make a page.

A file ``notebooks/params/NOTEBOOK/NAME.yaml`` (``NOTEBOOK`` a pipeline notebook's stem, e.g.
``02_market_regimes``; ``NAME`` letters, digits, ``_`` or ``-``) holds parameters for that
notebook::

    # notebooks/params/02_market_regimes/nasdaq.yaml
    symbols: [IXIC]
    share_model: markov

``research run`` executes the notebook once more per file, with the run's parameters for the
notebook (its ``all`` and own sections) overridden by the file's, into
``reports/executed/NOTEBOOK--NAME.ipynb``: a page of its own, titled ``… · NAME`` and listed with
the others. Adding a file is all it takes; an unchanged one is skipped like any notebook; a
deleted one's page is no longer published. The notebook's summary goes to
``reports/summaries/SUMMARY--NAME.json`` (``REGIME_LAB_VARIANT`` tells
``research.summaries.write_summary``), so a parameter set never overwrites the findings of the
default run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from research._io import atomic_write
from research.config import Paths
from research.pipeline.parameters import yaml_problem
from research.summaries import SEPARATOR

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Variant:
    """One execution of a pipeline notebook: its default run (``name`` empty) or a named
    parameter set."""

    notebook: Path
    name: str = ""
    file: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """The parameter file's values (applied over the run's parameters for the notebook)."""

    @property
    def key(self) -> str:
        """Output name: ``02_market_regimes`` or ``02_market_regimes--nasdaq``."""
        return self.notebook.stem + (SEPARATOR + self.name if self.name else "")


def variant_folder(paths: Paths, notebook: Path) -> Path:
    """Where the named parameter files of ``notebook`` live."""
    return paths.params / notebook.stem


def parameter_files(paths: Paths, notebook: Path) -> list[Path]:
    """The named parameter files of ``notebook`` (``*.yaml``, ``*.yml``), in name order."""
    folder = variant_folder(paths, notebook)
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_variant(notebook: Path, file: Path) -> Variant:
    """Read one parameter file (a mapping of parameter names to values)."""
    import yaml

    name = file.stem
    if not _NAME.match(name):
        raise ValueError(
            f"{file}: a parameter set's name may only hold letters, digits, '_' and '-'"
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{file}: cannot read parameters file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{file}: not valid YAML at {yaml_problem(exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ValueError(
            f"{file}: expected a mapping of {notebook.stem}'s parameter names to values"
        )
    return Variant(notebook, name, file, dict(data))


def variants_of(paths: Paths, notebooks: Sequence[Path]) -> list[Variant]:
    """Every execution of ``notebooks``: each notebook's default run, then its parameter sets
    (``notebooks/params/NOTEBOOK/*.yaml``) in name order."""
    out: list[Variant] = []
    for nb in notebooks:
        out.append(Variant(nb))
        out.extend(load_variant(nb, f) for f in parameter_files(paths, nb))
    return out


def published_keys(paths: Paths) -> set[str]:
    """Output names whose source still exists: pipeline notebooks and their parameter files."""
    notebooks = sorted(paths.notebooks.glob("[0-9][0-9]_*.ipynb"))
    keys = {nb.stem for nb in notebooks}
    for nb in notebooks:
        keys.update(nb.stem + SEPARATOR + f.stem for f in parameter_files(paths, nb))
    return keys


def variant_title(title: str, name: str) -> str:
    """A parameter set's page title: the notebook's title and the set's name."""
    return f"{title} · {name}" if name else title


def retitle(notebook: Path, name: str) -> None:
    """Add the parameter set's name to an executed notebook's title (its front matter cell)."""
    import nbformat
    import yaml

    if not name:
        return
    nb = nbformat.read(str(notebook), as_version=4)
    cells = nb.cells
    if cells and cells[0].cell_type == "raw" and cells[0].source.strip().startswith("---"):
        body = cells[0].source.strip().strip("-").strip("\n")
        meta = yaml.safe_load(body) or {}
        if not isinstance(meta, dict):
            return
    else:
        meta = {}
        cells.insert(0, nbformat.v4.new_raw_cell(""))
    meta["title"] = variant_title(str(meta.get("title") or notebook.stem), name)
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()
    cells[0].source = f"---\n{text}\n---"
    atomic_write(notebook, lambda tmp: nbformat.write(nb, str(tmp)))
