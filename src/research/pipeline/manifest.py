"""Incremental execution: fingerprints of what a notebook's output depends on.

A notebook is re-executed only when one of these changed since its last successful run:

- ``source``: the notebook's cells (type, source, tags; outputs and execution counts ignored);
- ``params``: the parameters papermill injects (canonical JSON);
- ``data``: files under ``data/sample/``, files named by a parameter, and the market data
  shipped inside ``arch``;
- ``code``: every file of the installed ``research`` package, and the Python version.

The manifest lives at ``reports/executed/.manifest.json`` and is written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from research._io import write_text_atomic

MANIFEST_NAME = ".manifest.json"
_CODE_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".j2", ".sql"}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (memoised per path, size and modification time, so files shared
    by several notebooks are read once per run)."""
    st = path.stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(files: Iterable[Path], base: Path | None = None) -> str:
    """SHA-256 over (relative name, content digest) of ``files``, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(set(files)):
        name = str(f.relative_to(base)) if base is not None and f.is_relative_to(base) else str(f)
        h.update(name.encode())
        h.update(b"\0")
        h.update(file_digest(f).encode())
        h.update(b"\n")
    return h.hexdigest()


def _files_under(folder: Path, suffixes: set[str] | None = None) -> list[Path]:
    if not folder.is_dir():
        return []
    return [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not p.name.startswith(".")
        and (suffixes is None or p.suffix in suffixes)
    ]


def notebook_source_digest(path: Path) -> str:
    """Digest of a notebook's cells, ignoring outputs, execution counts and metadata noise."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [
        {
            "type": c.get("cell_type"),
            "source": "".join(c["source"])
            if isinstance(c.get("source"), list)
            else c.get("source"),
            "tags": sorted(c.get("metadata", {}).get("tags", [])),
        }
        for c in nb.get("cells", [])
    ]
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    return hashlib.sha256(json.dumps([kernel, cells], sort_keys=True).encode()).hexdigest()


def params_digest(params: Mapping[str, Any]) -> str:
    """Digest of the injected parameters (canonical JSON)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def code_digest() -> str:
    """Digest of the ``research`` package files and the Python version."""
    pkg = _package_dir("research")
    files = _files_under(pkg, _CODE_SUFFIXES) if pkg else []
    return hashlib.sha256((tree_digest(files, pkg) + sys.version).encode()).hexdigest()


def _param_paths(value: Any, bases: tuple[Path, ...]) -> list[Path]:
    """Existing files/folders named by string parameter values (searched recursively)."""
    found: list[Path] = []
    if isinstance(value, str) and value and len(value) < 4096:
        for base in bases:
            candidate = (base / value).resolve() if not os.path.isabs(value) else Path(value)
            if candidate.exists():
                found.append(candidate)
                break
    elif isinstance(value, Mapping):
        for v in value.values():
            found.extend(_param_paths(v, bases))
    elif isinstance(value, list | tuple):
        for v in value:
            found.extend(_param_paths(v, bases))
    return found


def data_files(sample_dir: Path, params: Mapping[str, Any], bases: tuple[Path, ...]) -> list[Path]:
    """The input data files a notebook may read (see ``data_digest``), sorted."""
    files = _files_under(sample_dir)
    for p in _param_paths(dict(params), bases):
        files.extend(_files_under(p) if p.is_dir() else [p])
    arch = _package_dir("arch")  # top-level lookup: does not import arch (and numpy, scipy, …)
    if arch is not None:
        files.extend(_files_under(arch / "data", {".gz", ".csv"}))
    return sorted(set(files))


def data_digest(sample_dir: Path, params: Mapping[str, Any], bases: tuple[Path, ...]) -> str:
    """Digest of the input data a notebook may read.

    Parameters
    ----------
    sample_dir
        ``data/sample``: small committed inputs.
    params
        The notebook's parameters; string values naming existing files or folders (relative to
        one of ``bases``) are included.
    bases
        Folders relative paths are resolved against (project root, notebooks folder).
    """
    return tree_digest(data_files(sample_dir, params, bases))


@dataclass(frozen=True)
class Fingerprint:
    """What a notebook's output depends on, as digests."""

    source: str
    params: str
    data: str
    code: str

    def changes(self, previous: Mapping[str, str] | None) -> list[str]:
        """Names of the parts that differ from ``previous`` (all parts if there is none)."""
        mine = asdict(self)
        if not previous:
            return list(mine)
        return [k for k, v in mine.items() if previous.get(k) != v]


class Manifest:
    """Fingerprints and timings of the last successful execution of each notebook."""

    def __init__(
        self,
        path: Path,
        entries: dict[str, dict[str, Any]] | None = None,
        site: str | None = None,
    ) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = entries or {}
        self.site = site
        """Digest of everything the published site was rendered from (None: never rendered)."""

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read the manifest (an unreadable or missing one counts as empty)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(path, data.get("notebooks", {}), data.get("site"))

    def fingerprint(self, name: str) -> dict[str, str] | None:
        entry = self.entries.get(name)
        return entry.get("fingerprint") if entry else None

    def record(self, name: str, fingerprint: Fingerprint, **extra: Any) -> None:
        self.entries[name] = {"fingerprint": asdict(fingerprint), **extra}

    def forget(self, name: str) -> None:
        self.entries.pop(name, None)

    def save(self) -> None:
        """Write atomically (temp file in the same folder, then rename)."""
        write_text_atomic(
            self.path,
            json.dumps(
                {"version": 1, "notebooks": self.entries, "site": self.site},
                indent=2,
                sort_keys=True,
            ),
        )
