"""Parameterised copies of the notebooks, not executed (what nbval runs in ``make test``)."""

from __future__ import annotations

from pathlib import Path

from research.config import Paths
from research.pipeline.runner import check_params, discover, load_params, params_for


def prepare_notebooks(
    out: Path, *, params_file: Path | None = None, paths: Paths | None = None
) -> list[Path]:
    """Write each pipeline notebook to ``out`` with the parameters of ``params_file`` injected.

    Returns
    -------
    list of pathlib.Path
        The written notebooks.
    """
    import papermill as pm

    paths = paths or Paths.from_root()
    params = load_params(params_file, paths)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for nb in discover(paths):
        values = params_for(nb.stem, params)
        check_params(nb, values, params_file)
        target = out / nb.name
        pm.execute_notebook(
            str(nb),
            str(target),
            parameters=values,
            prepare_only=True,
            progress_bar=False,
            log_output=False,
        )
        written.append(target)
    return written
