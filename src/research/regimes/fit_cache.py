"""Disk cache of Markov-switching fits, so notebooks that classify the same bars share them.

A fit is a pure function of its training window and settings; its key hashes the window's
returns (bytes), ``k``, the search settings, the optimiser's iteration limit, the versions of
statsmodels, scipy and numpy, and the source of ``research.regimes.markov``. An entry is
therefore only reused for the same inputs computed by the same code, and a cached fit is
bit-for-bit the fit that would be computed (a test checks this).

The folder defaults to ``data/cache/markov_fits`` in the project; ``RESEARCH_FIT_CACHE`` sets
another folder, or ``off`` to always fit. Files are written atomically (temporary file, then
rename), so notebooks running at the same time can share the folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from research._io import write_bytes_atomic
from research._typing import FloatArray

ENV_VAR = "RESEARCH_FIT_CACHE"
"""Environment variable: the cache folder, or ``off``."""
_OFF = ("", "off", "0", "none", "false")
T = TypeVar("T")


def cache_folder() -> Path | None:
    """Where fits are kept (None: caching is off)."""
    setting = os.environ.get(ENV_VAR)
    if setting is None:
        from research.config import PATHS

        return PATHS.data / "cache" / "markov_fits"
    if setting.strip().lower() in _OFF:
        return None
    return Path(setting).expanduser()


_MODEL_SOURCE = Path(__file__).with_name("markov.py")
"""The fitting code (``research.regimes.markov``, which imports this module: read, not
imported)."""


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    import scipy
    import statsmodels

    source = _MODEL_SOURCE.read_bytes()
    versions = f"{statsmodels.__version__}|{scipy.__version__}|{np.__version__}"
    return hashlib.sha256(source + versions.encode()).hexdigest()


def fit_key(returns: FloatArray, **settings: object) -> str:
    """Key of one fit: the window's returns and the settings, with the code version."""
    h = hashlib.sha256(np.ascontiguousarray(returns, dtype=np.float64).tobytes())
    h.update(repr(sorted(settings.items())).encode())
    h.update(_code_version().encode())
    return h.hexdigest()


def cached(key: str, compute: Callable[[], T]) -> T:
    """The value stored under ``key``, or ``compute()`` stored there (exceptions not cached)."""
    folder = cache_folder()
    if folder is None:
        return compute()
    path = folder / key[:2] / f"{key}.pkl"
    try:
        with path.open("rb") as fh:
            stored: T = pickle.load(fh)  # what compute() returned under this key
            return stored
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        pass  # missing or unreadable (e.g. written by another version): fit again
    value = compute()
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        write_bytes_atomic(path, data)
    except OSError:  # a read-only or full disk only costs the next run a refit
        pass
    return value
