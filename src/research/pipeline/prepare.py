"""Parameterised copies of the notebooks, not executed (to run them elsewhere, e.g. with
``pytest --nbval-lax``; ``make test`` checks every cell of its one execution instead).

The output folder is checked before anything is written: it may not be the source notebooks
folder (the copies would overwrite the notebooks) nor lie inside it (``notebooks/build``,
``notebooks/params``: the copies would be mixed with the sources, where git, JupyterLab and a
reader take them for notebooks of the project). A folder that *contains* the source folder (the
project root) is allowed: the copies land beside ``notebooks/``, not in it; a copy that would
be a source file itself (through a link) is refused too. Every notebook's parameters are checked
before the first copy is written, and each copy is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from research._io import atomic_write, os_error_text, same_file
from research.config import Paths
from research.exceptions import OutputError
from research.pipeline.runner import check_params, discover, load_params, params_for

__all__ = ["check_prepare_out", "prepare_notebooks"]


def check_prepare_out(out: Path, paths: Paths, option: str = "--out") -> Path:
    """Refuse an output folder for the prepared notebooks before anything is written.

    Parameters
    ----------
    out
        The folder the copies go to.
    paths
        The project (its ``notebooks/`` folder holds the sources).
    option
        The option that named ``out``, for the message.

    Returns
    -------
    pathlib.Path
        ``out``, unchanged.

    Raises
    ------
    research.exceptions.OutputError
        ``out`` is the source notebooks folder (however spelled, also through a link), lies
        inside it, is a file, or lies under a file.
    """
    source = paths.notebooks.resolve()
    target = Path(os.path.abspath(out.expanduser()))
    resolved = target.resolve()
    if resolved == source or same_file(target, paths.notebooks):
        raise OutputError(
            f"{option} {out} is the source notebooks folder {paths.notebooks}: the copies would "
            "overwrite the notebooks; name another folder (e.g. build/nbval)"
        )
    if resolved.is_relative_to(source):
        raise OutputError(
            f"{option} {out} lies inside the source notebooks folder {paths.notebooks}: the "
            "copies would be mixed with the notebooks; name a folder outside it (e.g. build/nbval)"
        )
    if target.exists() and not target.is_dir():
        raise OutputError(f"{option} {out} is a file; name a folder")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"{option} {out}: {parent} is a file, so no folder can be made there"
                )
            break
    return out


def prepare_notebooks(
    out: Path, *, params_file: Path | None = None, paths: Paths | None = None
) -> list[Path]:
    """Write each pipeline notebook to ``out`` with the parameters of ``params_file`` injected.

    Parameters
    ----------
    out
        Folder for the copies (created if needed); see :func:`check_prepare_out`.
    params_file
        Parameters YAML (default ``notebooks/params/default.yaml``).
    paths
        Project layout (default: the detected project root).

    Returns
    -------
    list of pathlib.Path
        The written notebooks.

    Raises
    ------
    research.exceptions.InputError
        A bad parameters file or parameter (nothing is written).
    research.exceptions.OutputError
        ``out`` is refused by :func:`check_prepare_out`, or cannot be written (read-only
        folder, full disk): one line naming the path; no copy is left half-written.
    """
    import nbformat
    import papermill as pm

    paths = paths or Paths.from_root()
    check_prepare_out(out, paths)
    params = load_params(params_file, paths)
    given = params_file if params_file is not None else paths.default_params
    notebooks = discover(paths)
    values = {nb: params_for(nb.stem, params) for nb in notebooks}
    for nb in notebooks:
        check_params(nb, values[nb], given, root=paths.root)
        if same_file(out / nb.name, nb):
            raise OutputError(
                f"--out {out}: {out / nb.name} is the source notebook {nb}; name another folder"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(os_error_text(exc, out)) from exc
    written = []
    for nb in notebooks:
        target = out / nb.name
        node = pm.execute_notebook(
            str(nb),
            None,
            parameters=values[nb],
            prepare_only=True,
            progress_bar=False,
            log_output=False,
        )
        node.metadata.papermill["output_path"] = str(target)

        def write(tmp: Path, node: Any = node) -> None:
            nbformat.write(node, str(tmp))

        atomic_write(target, write)
        written.append(target)
    return written
