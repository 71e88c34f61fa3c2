"""A throwaway PostgreSQL server in a temporary directory, for tests and benchmarks.

Uses the PostgreSQL binaries already on the machine (``pg_ctl`` on the PATH or Debian's
``/usr/lib/postgresql/<version>/bin``): ``initdb`` a fresh cluster with trust authentication,
start it on a free port of 127.0.0.1 (and a Unix socket in the same directory), hand out its URL,
and stop and delete it afterwards. ``initdb`` refuses to run as root, so as root the server runs
as the ``postgres`` system user that Debian's package creates.

    with throwaway_server() as url:
        psycopg.connect(url)

``unavailable()`` says why a server cannot be started here (``None`` when it can), so tests can
skip with that reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["bin_dir", "throwaway_server", "unavailable"]

USER = "lab"
"""Database superuser of the throwaway cluster."""


def bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [
        Path(p)
        for p in sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
            reverse=True,
        )
    ]
    for d in candidates:
        if all((d / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _run_as() -> str | None:
    """The system user to run the server as (None: the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return ""
    return "postgres"


def unavailable() -> str | None:
    """Why no throwaway server can be started here, or None when one can."""
    if bin_dir() is None:
        return (
            "PostgreSQL binaries not found (no pg_ctl on the PATH or in /usr/lib/postgresql/*/bin);"
            " install Debian's postgresql package (make test does when run as root)"
        )
    if _run_as() == "":
        return "running as root and there is no 'postgres' system user to run initdb as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_server(database: str = "postgres") -> Iterator[str]:
    """Start a fresh PostgreSQL cluster; yield its URL; stop it and delete its files.

    Raises
    ------
    RuntimeError
        When the binaries are missing or the server does not start (the message carries
        the server log).
    """
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    bins = bin_dir()
    assert bins is not None
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="regime-lab-pg-"))
    data, log = root / "data", root / "server.log"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*args: str) -> None:
        done = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, env=env, user=user or None
        )
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n"
                f"{server_log}"
            )

    port = _free_port()
    try:
        run(
            str(bins / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(bins / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        try:
            yield f"postgresql://{USER}@127.0.0.1:{port}/{database}"
        finally:
            subprocess.run(
                [str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=env,
                user=user or None,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
