"""The base layer for files the package writes: atomically, with the user's umask, never over an
input, and with filesystem faults as one-line errors.

``atomic_write`` is the one writer: the content goes to a temporary file in the target's folder,
is flushed to disk, gets the permissions a plain ``open(path, "w")`` would give (the existing
file's mode when it is replaced, else ``0o666`` minus the umask — a temporary file alone would
leave ``0o600``), and is renamed over the target. Readers never see a half-written file; on any
error the temporary file is removed and the old file is kept. ``write_text_atomic`` and
``write_bytes_atomic`` wrap it.

``check_output`` is what a command calls on each output path before any work: it refuses a path
that is one of the command's inputs (the same file, also through a link or another spelling),
an existing folder, or a path under a file; ``os_error_text`` says in one line why the
filesystem refused (read-only folder, full disk, a file where a folder should be).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path

from research.exceptions import OutputError

__all__ = [
    "all_or_nothing",
    "atomic_write",
    "check_output",
    "os_error_text",
    "same_file",
    "user_mode",
    "write_bytes_atomic",
    "write_text_atomic",
]

_REASONS = {
    errno.EACCES: "permission denied (read-only folder or file?)",
    errno.EPERM: "permission denied (read-only folder or file?)",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EISDIR: "it is a folder",
    errno.EEXIST: "a file stands where a folder should be",
    errno.ENAMETOOLONG: "the name is too long",
}


_STAGED: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("_STAGED", default=None)
"""Inside ``all_or_nothing``: the (temporary file, target) pairs written so far."""


def user_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def os_error_text(exc: OSError, path: str | os.PathLike[str]) -> str:
    """One line: the path and why the filesystem refused it (``cannot write <path>: <why>``)."""
    why = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
    return f"cannot write {path}: {why}"


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same existing file (links and spellings resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    option: str = "--out",
) -> Path:
    """Refuse an output path before any work is done.

    Parameters
    ----------
    path
        The output the command will write.
    inputs
        The command's input files (``None`` entries are skipped).
    option
        The option that named ``path``, for the message.

    Returns
    -------
    pathlib.Path
        ``path``, unchanged.

    Raises
    ------
    research.exceptions.OutputError
        ``path`` is one of ``inputs``, an existing folder, or lies under a file.
    """
    out = Path(path)
    for given in inputs:
        if given is not None and same_file(out, given):
            raise OutputError(
                f"{option} {out} is also an input of this command ({given}); "
                "name another file so the input is kept"
            )
    if out.is_dir():
        raise OutputError(f"{option} {out} is a folder; name a file in it")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"{option} {out}: {parent} is a file, so no folder can be made there"
                )
            break
    return out


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], object], *, fsync: bool = True
) -> Path:
    """Write ``path`` atomically: ``write`` fills a temporary file in the same folder, which is
    then renamed over ``path`` with the mode a plain write would give.

    Parameters
    ----------
    path
        Target; missing parent folders are created.
    write
        Called with the temporary file's path (the file exists, empty); writes it by any means
        (``open``, ``DataFrame.to_csv``, ``numpy.savez``...).
    fsync
        Flush the content to disk before the rename (default).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    research.exceptions.OutputError
        The filesystem refused (one line naming the path and why); nothing is left behind.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder")
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else user_mode()
    except OSError:
        mode = user_mode()
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        write(Path(tmp))
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        staged = _STAGED.get()
        if staged is not None:  # all_or_nothing: renamed when the block ends well
            staged.append((Path(tmp), target))
        else:
            os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(os_error_text(exc, target)) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Several outputs as one: every ``atomic_write`` inside the block is staged, and the
    targets are replaced only when the block ends without an error — otherwise none is
    (e.g. a table and its heatmap, the second failing on a full disk, leave neither).

    Raises
    ------
    research.exceptions.OutputError
        A rename failed; the targets not yet replaced keep their old content.
    """
    staged: list[tuple[Path, Path]] = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _STAGED.reset(token)
    for i, (tmp, target) in enumerate(staged):
        try:
            os.replace(tmp, target)
        except OSError as exc:
            for rest, _ in staged[i:]:
                rest.unlink(missing_ok=True)
            raise OutputError(os_error_text(exc, target)) from exc


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """``atomic_write`` of ``data``."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """``atomic_write`` of ``text`` as UTF-8."""
    return write_bytes_atomic(path, text.encode("utf-8"))
