"""Project paths and typed configuration loading.

Every path is built from the project root, so the package, the CLI, the notebooks and the tests
agree on where things live. The root is, in order: the ``REGIME_LAB_ROOT`` environment variable,
the source checkout this package was installed from (editable install), or the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "REGIME_LAB_ROOT"
PARAMS_ENV = "REGIME_LAB_PARAMS_FILE"
"""Set by ``research run`` for the notebooks: the parameters file their values came from."""
VARIANT_ENV = "REGIME_LAB_VARIANT"
"""Set by ``research run`` for the notebooks: the named parameter set being run (empty for the
default run); summaries are written under a name that includes it."""
KERNEL_NAME = "regime-lab"
"""Name of the Jupyter kernel registered for this project (used by papermill and JupyterLab)."""


def _find_root() -> Path:
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "notebooks").is_dir():
            return parent
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Paths:
    """Locations of the project's folders and files, all derived from ``root``."""

    root: Path

    @classmethod
    def from_root(cls, root: str | Path | None = None) -> Paths:
        """Build the paths for ``root`` (default: the detected project root)."""
        return cls(Path(root).resolve() if root is not None else _find_root())

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def params(self) -> Path:
        return self.notebooks / "params"

    @property
    def default_params(self) -> Path:
        return self.params / "default.yaml"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def executed(self) -> Path:
        return self.reports / "executed"

    @property
    def site(self) -> Path:
        return self.reports / "_site"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sample(self) -> Path:
        return self.data / "sample"

    @property
    def database(self) -> Path:
        return self.data / "lab.duckdb"


PATHS = Paths.from_root()
"""Paths of the detected project root."""


def resolve_path(value: str | Path, paths: Paths | None = None) -> Path:
    """A user-given path: absolute as is; a relative one from the current directory, the
    project root or notebooks/ (where notebooks run), the first where it exists — so
    ``data/own/bars.csv`` names the same file in the CLI (from the root) and in a notebook;
    the project root when it exists nowhere (the error then shows that full path)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    paths = paths or Paths.from_root()
    for base in (Path.cwd(), paths.root, paths.notebooks):
        if (base / path).exists():
            return (base / path).resolve()
    return (paths.root / path).resolve()
