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


def search_folders(paths: Paths | None = None, *, project: bool | None = None) -> list[Path]:
    """The folders a relative path is looked up in, in order (see :func:`resolve_path`).

    Parameters
    ----------
    paths
        The project's paths (default: the detected project root).
    project
        ``True``: the current folder, then the project root and notebooks/; ``False``: the
        current folder only; ``None``: the current folder only, unless it is the project's
        notebooks/ folder (where notebooks run), then the project root too.

    Returns
    -------
    list of pathlib.Path
        Absolute folders, without repeats.
    """
    cwd = Path.cwd().resolve()
    paths = paths or Paths.from_root()
    if project is None:
        project = cwd == paths.notebooks.resolve()
    folders = [cwd, paths.root.resolve(), paths.notebooks.resolve()] if project else [cwd]
    return list(dict.fromkeys(folders))


def resolve_path(
    value: str | Path, paths: Paths | None = None, *, project: bool | None = None
) -> Path:
    """A user-given path: absolute as is; a relative one from the current folder.

    Notebooks run in the project's notebooks/ folder and their parameters name files relative
    to the project root (each parameters cell says so), so there, and wherever the caller asks
    for it with ``project=True``, a relative path that is not in the current folder is looked
    up in the project root (and notebooks/). Anywhere else a relative path is taken from the
    current folder only: a command run from another folder never falls back silently to the
    project's file of the same name.

    Parameters
    ----------
    value
        The path as the user gave it.
    paths
        The project's paths (default: the detected project root).
    project
        See :func:`search_folders`.

    Returns
    -------
    pathlib.Path
        The first existing candidate; when none exists, the path in the first folder searched
        (the current folder), which the caller's "no such file" error then names.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    folders = search_folders(paths, project=project)
    for base in folders:
        if (base / path).exists():
            return (base / path).resolve()
    return folders[0] / path


def input_path(value: str | Path, option: str) -> Path:
    """A command's input file: absolute as is, relative from the current folder, and existing.

    Parameters
    ----------
    value
        The path as the user gave it.
    option
        The option that named it (``"--bars"``), for the message.

    Returns
    -------
    pathlib.Path
        ``value`` unchanged (it exists as given).

    Raises
    ------
    research.exceptions.InputError
        No such file or folder; one line naming the option, the path as given and the full
        path looked for (and the project's file of that name, when there is one).
    """
    from research.exceptions import InputError

    path = Path(value).expanduser()
    if path.exists():
        return Path(value)
    where = path if path.is_absolute() else Path.cwd().resolve() / path
    text = f"{option} {value}: no such file (looked for {where}"
    if not path.is_absolute():
        text += "; a relative path is taken from the current folder"
        own = Paths.from_root().root / path
        if own.exists():
            text += f"; the project has {own}: give that path to use it"
    raise InputError(text + ")")
