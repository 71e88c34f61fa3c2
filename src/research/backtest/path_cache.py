"""Where phase-1 trade paths are kept: in memory (least recently used first out) and on disk.

Paths are keyed by ``trade_paths.path_digest``: a hash of the panel's data, the strategy's
parameters and the engine's code, so a cached entry is only ever reused for the same inputs
computed by the same code. The disk folder defaults to ``data/cache/trade_paths`` in the
project; ``RESEARCH_PATH_CACHE`` sets another folder, or ``off`` to keep paths in memory only.

>>> cache = default_cache()                  # doctest: +SKIP
>>> cache.stats                              # doctest: +SKIP
{'memory_hits': 12, 'disk_hits': 1, 'computed': 2, 'evicted': 0}
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from research._io import atomic_write
from research._typing import PricedBy
from research.backtest.trade_paths import ARRAYS, TradePaths

__all__ = ["ENV_VAR", "PathCache", "default_cache"]

ENV_VAR = "RESEARCH_PATH_CACHE"
"""Environment variable: the disk cache folder, or ``off``."""
MEMORY_BYTES = 384 << 20
"""Default memory budget (a 20-year two-ticker strategy's paths take about 8 MB)."""
DISK_BYTES = 2 << 30
"""Default disk budget; the oldest files go first beyond it."""


_KINDS: dict[str, PricedBy] = {"model": "model", "chain": "chain"}
"""A stored file's ``kind`` (another is unreadable: computed again)."""


class PathCache:
    """Trade paths by key, in memory and (optionally) in a folder of ``.npz`` files.

    Parameters
    ----------
    directory
        Folder for the disk copies (created on first write); None keeps them in memory only.
    memory_bytes, disk_bytes
        Budgets: beyond them the least recently used entries (memory) or the oldest files
        (disk) are dropped.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        memory_bytes: int = MEMORY_BYTES,
        disk_bytes: int = DISK_BYTES,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.memory_bytes = memory_bytes
        self.disk_bytes = disk_bytes
        self._entries: OrderedDict[str, TradePaths] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.stats = {"memory_hits": 0, "disk_hits": 0, "computed": 0, "evicted": 0}

    def __repr__(self) -> str:
        return (
            f"PathCache({self.directory}, {len(self._entries)} in memory, "
            f"{self._size / 2**20:.1f} MB)"
        )

    def _file(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        if key in self._entries:
            return True
        path = self._file(key)
        return path is not None and path.is_file()

    def get(self, key: str) -> TradePaths | None:
        """The paths under ``key`` (memory first, then disk), or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.stats["memory_hits"] += 1
                return hit
        paths = self._load(key)
        if paths is not None:
            self.stats["disk_hits"] += 1
            self._remember(paths)
        return paths

    def put(self, paths: TradePaths, *, computed: bool = True) -> None:
        """Keep ``paths`` in memory and write them to disk (atomically)."""
        if computed:
            self.stats["computed"] += 1
        self._remember(paths)
        self._save(paths)

    def clear(self) -> None:
        """Forget the in-memory entries (files stay)."""
        with self._lock:
            self._entries.clear()
            self._size = 0

    def _remember(self, paths: TradePaths) -> None:
        with self._lock:
            if paths.key in self._entries:
                self._entries.move_to_end(paths.key)
                return
            self._entries[paths.key] = paths
            self._size += paths.nbytes
            while self._size > self.memory_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                self._size -= old.nbytes
                self.stats["evicted"] += 1

    def _load(self, key: str) -> TradePaths | None:
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in ARRAYS}
                kind, lag = _KINDS[str(data["kind"])], int(data["lag"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # unreadable (e.g. a partial copy): recompute
            return None
        return TradePaths(key=key, kind=kind, lag=lag, **arrays)

    def _save(self, paths: TradePaths) -> None:
        path = self._file(paths.key)
        if path is None or path.is_file():
            return

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    kind=np.array(paths.kind),
                    lag=np.array(paths.lag),
                    **{name: getattr(paths, name) for name in ARRAYS},
                )

        # another process may write the same key at the same time: each writes its own
        # temporary file (".NAME.*.tmp", not *.npz, so no one prunes or reads it) and renames it
        # in place; a cache file needs no fsync
        try:
            atomic_write(path, write, fsync=False)
        except OSError:  # OutputError included
            return  # a read-only or full disk only costs the reuse
        self._prune(keep=path)

    def _prune(self, keep: Path) -> None:
        """Delete the oldest files beyond the disk budget, never ``keep`` (the newest); files
        other processes delete meanwhile are skipped."""
        sizes: list[tuple[float, int, Path]] = []
        for p in keep.parent.glob("[!.]*.npz"):
            try:
                st = p.stat()
            except OSError:
                continue
            if p != keep:
                sizes.append((st.st_mtime, st.st_size, p))
        try:
            total = keep.stat().st_size + sum(size for _, size, _ in sizes)
        except OSError:
            return
        for _, size, old in sorted(sizes):
            if total <= self.disk_bytes:
                break
            total -= size
            old.unlink(missing_ok=True)


_DEFAULT: dict[str, PathCache] = {}


def default_cache() -> PathCache:
    """The process's cache: disk folder from ``RESEARCH_PATH_CACHE`` (``off``: memory only),
    else ``data/cache/trade_paths`` in the project."""
    setting = os.environ.get(ENV_VAR)
    if setting is None:
        from research.config import PATHS

        folder: Path | None = PATHS.data / "cache" / "trade_paths"
    elif setting.strip().lower() in ("", "off", "0", "none", "false"):
        folder = None
    else:
        folder = Path(setting).expanduser()
    name = str(folder)
    if name not in _DEFAULT:
        _DEFAULT[name] = PathCache(folder)
    return _DEFAULT[name]
