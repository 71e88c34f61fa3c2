"""Filesystem faults for tests: a folder nobody can write, even root, and a disk that is full.

``read_only(folder)`` removes the write permission and, when the process is root (who ignores
permissions), also sets the immutable attribute (``chattr +i``), so writes fail with
``EACCES``/``EPERM`` either way. ``full_disk_command(cmd, mountpoint)`` wraps a command so it runs
in its own mount namespace with a tiny tmpfs mounted on ``mountpoint`` (root and ``unshare``
needed; ``None`` when unavailable), where any real write soon fails with ``ENOSPC``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["full_disk_command", "read_only"]


def _chattr(flag: str, path: Path) -> bool:
    exe = shutil.which("chattr")
    if exe is None:
        return False
    return subprocess.run([exe, flag, str(path)], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Make ``folder`` unwritable for the duration (also for root, via ``chattr +i``).

    Raises
    ------
    RuntimeError
        Root without a working ``chattr`` (the test cannot make a folder read-only).
    """
    path = Path(folder)
    mode = path.stat().st_mode & 0o7777
    path.chmod(0o555)
    immutable = False
    try:
        if not os.access(path, os.W_OK) or os.geteuid() != 0:
            yield path
            return
        immutable = _chattr("+i", path)
        if not immutable:
            raise RuntimeError(f"cannot make {path} read-only for root (chattr +i failed)")
        yield path
    finally:
        if immutable:
            _chattr("-i", path)
        path.chmod(mode)


def full_disk_command(
    cmd: Sequence[str], mountpoint: str | os.PathLike[str], size_kb: int = 16
) -> list[str] | None:
    """``cmd`` run with a ``size_kb`` tmpfs on ``mountpoint`` (an existing folder), or ``None``
    when this machine cannot (not root, no ``unshare``, or mounts not permitted)."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return None
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    mp = shlex.quote(str(mountpoint))
    script = f"mount -t tmpfs -o size={size_kb}k tmpfs {mp} && exec {shlex.join(cmd)}"
    return [unshare, "-m", "sh", "-c", script]
