"""One ``research run`` at a time per project: a lock on its reports folder.

Two runs in one project would each load the manifest, execute, and save it: the last to save
drops what the other recorded, and both would swap the published site. ``run_lock`` takes an
exclusive ``fcntl.flock`` on ``reports/executed/.research-run.lock`` (in the git-ignored
``executed`` folder) for the whole run. The kernel releases a ``flock`` when its holder exits,
however it ends, so a killed run never blocks the next one; the pid and start time written in
the file name the holder in the message a second run prints, and a run that finds a holder
written but no lock held takes it over with a note. The file is emptied, not removed, on release
(removing it would let a waiting run lock a file a third run no longer sees).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from research._io import os_error_text
from research.exceptions import OutputError, ResearchError

__all__ = ["LOCK_NAME", "LockHolder", "RunLocked", "read_holder", "run_lock"]

LOCK_NAME = ".research-run.lock"
"""The lock file, in ``reports/executed/``."""
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}
"""``flock`` errors of a filesystem without locks: fall back to the pid written in the file."""


class RunLocked(ResearchError, RuntimeError):
    """Another ``research run`` holds the project's lock."""


@dataclass(frozen=True)
class LockHolder:
    """The run a lock file names."""

    pid: int
    since: float
    """Start, seconds since the epoch."""
    host: str = ""

    def describe(self) -> str:
        """``pid 123, since 14:02:11`` (the date too when not today)."""
        stamp = time.localtime(self.since)
        same_day = time.strftime("%Y-%m-%d", stamp) == time.strftime("%Y-%m-%d")
        when = time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", stamp)
        host = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"pid {self.pid}{host}, since {when}"

    def alive(self) -> bool:
        """Whether the process still runs (a process on another host counts as running)."""
        if self.host and self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _read(fd: int) -> LockHolder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "null")
        return LockHolder(int(data["pid"]), float(data["since"]), str(data.get("host", "")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def read_holder(path: Path) -> LockHolder | None:
    """The run named in the lock file ``path`` (``None``: none, or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read(fd)
    finally:
        os.close(fd)


def _write(fd: int, path: Path) -> None:
    data = {"pid": os.getpid(), "since": time.time(), "host": socket.gethostname()}
    text = json.dumps(data).encode("utf-8")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        os.fsync(fd)
    except OSError as exc:
        raise OutputError(os_error_text(exc, path)) from exc


def _busy(folder: Path, holder: LockHolder | None) -> RunLocked:
    who = f" ({holder.describe()})" if holder is not None else ""
    return RunLocked(
        f"another research run is already running in {folder}{who}; wait for it or pass --wait"
    )


@contextlib.contextmanager
def run_lock(
    reports: Path,
    *,
    wait: bool = False,
    log: Callable[[str], None] = print,
    poll: float = 1.0,
) -> Iterator[Path]:
    """Hold the project's run lock for the duration.

    Parameters
    ----------
    reports
        The project's reports folder; the lock file is ``executed/.research-run.lock`` in it.
    wait
        Wait for a running run to finish instead of failing.
    log
        Where the waiting and take-over notes go.
    poll
        Seconds between checks, where the filesystem has no ``flock`` (the pid decides).

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    RunLocked
        Another run holds the lock and ``wait`` is false.
    research.exceptions.OutputError
        The lock file cannot be written (read-only folder, a file where a folder should be,
        full disk).
    """
    path = reports / "executed" / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        where = path.parent if exc.errno == errno.EEXIST else path
        raise OutputError(os_error_text(exc, where)) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            if not wait:
                raise _busy(reports, holder) from None
            who = f" ({holder.describe()})" if holder is not None else ""
            log(f"  waiting for the research run in {reports}{who} to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise OutputError(os_error_text(exc, path)) from exc
            holder = _read(fd)
            while holder is not None and holder.pid != os.getpid() and holder.alive():
                if not wait:
                    raise _busy(reports, holder) from None
                time.sleep(poll)
                holder = _read(fd)
        previous = _read(fd)
        if previous is not None and previous.pid != os.getpid():
            log(
                f"  note: took over a stale lock in {reports}: the research run it names "
                f"({previous.describe()}) ended without releasing it"
            )
        _write(fd, path)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)
