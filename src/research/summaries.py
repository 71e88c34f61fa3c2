"""A notebook's machine-readable summary (base layer): ``reports/summaries/NAME.json``.

Every pipeline notebook ends with ``write_summary(NAME, {...})``; ``research.pipeline``
reads the files back for the findings page. When ``research run`` executes a named parameter
set ``SET`` (``research.pipeline.variants``), it sets ``REGIME_LAB_VARIANT`` and the summary
goes to ``NAME--SET.json`` instead, so a parameter set never overwrites the default run's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from research._io import write_text_atomic
from research.config import VARIANT_ENV, Paths

__all__ = ["SEPARATOR", "write_summary"]

SEPARATOR = "--"
"""Between a notebook's stem and a parameter set's name in output names."""


def write_summary(name: str, summary: dict[str, object]) -> Path:
    """Write a notebook's machine-readable summary to ``reports/summaries/NAME.json``
    (``NAME--SET.json`` when ``research run`` runs a named parameter set ``SET``).

    Parameters
    ----------
    name
        The summary's name, usually the notebook's stem (``"02_market_regimes"``).
    summary
        JSON-able values (anything else is written as its ``str``).

    Returns
    -------
    pathlib.Path
        The file written (atomically).
    """
    variant = os.environ.get(VARIANT_ENV, "")
    stem = f"{name}{SEPARATOR}{variant}" if variant else name
    path = Paths.from_root().reports / "summaries" / f"{stem}.json"
    write_text_atomic(path, json.dumps(summary, indent=2, default=str))
    return path
