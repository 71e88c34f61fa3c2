"""Record a benchmark's printed figures for the Guide's performance page.

``with recorded("bench_x"): main()`` prints as before and, when the block finishes without an
error, also writes what it printed to ``reports/guide/benchmarks/bench_x.md``: a line saying when,
on which machine (CPU count and model, memory) and how busy it was (the load average), with
which Python and at which git commit it was measured, then the output verbatim.
``reports/guide/performance.qmd`` includes these fragments (``{{< include >}}``), so the figures
on the page are the ones the benchmark printed, never typed text. Set
``REGIME_LAB_BENCH_RECORD=0`` to print only.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
FRAGMENTS = ROOT / "reports" / "guide" / "benchmarks"


class _Tee:
    """Writes to the real stdout and keeps a copy (everything else is the real stdout's)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine() -> str:
    """``2 CPUs (model name), 23.4 GB RAM, Linux x86_64`` from ``/proc`` where it exists."""
    model = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    mem = _proc_field("/proc/meminfo", "MemTotal")
    ram = f"{int(mem.split()[0]) / 1024**2:.1f} GB RAM" if mem else "RAM unknown"
    return f"{os.cpu_count()} CPUs ({model}), {ram}, {platform.system()} {platform.machine()}"


def commit() -> str:
    """The checkout's short commit, ``+ uncommitted changes`` when it has them."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def load_average() -> str:
    """The 1-minute load average (how busy the machine was), or ``unknown``."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def fragment(
    name: str, output: str, *, when: dt.datetime | None = None, load: str | None = None
) -> str:
    """The Markdown fragment for ``name``'s printed ``output`` (``load``: the load average when
    the benchmark started)."""
    when = when or dt.datetime.now()
    args = " ".join(sys.argv[1:])
    command = f"python benchmarks/{name}.py{' ' + args if args else ''}"
    return (
        f"*Recorded {when:%Y-%m-%d %H:%M} by `{command}` on {machine()}, load average "
        f"{load or load_average()} at the start; Python {platform.python_version()}; "
        f"commit {commit()}.*\n\n"
        f"```text\n{output.rstrip()}\n```\n"
    )


@contextmanager
def recorded(name: str, *, enabled: bool = True) -> Iterator[None]:
    """Print as usual and, when the block completes, write the output to the fragment of
    ``name`` (``bench_x`` for ``benchmarks/bench_x.py``). ``enabled=False`` (a worker
    process, a partial run) only prints."""
    if not enabled or os.environ.get("REGIME_LAB_BENCH_RECORD", "1") == "0":
        yield
        return
    load = load_average()
    tee = _Tee(sys.stdout)
    sys.stdout = tee  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = tee.stream
    FRAGMENTS.mkdir(parents=True, exist_ok=True)
    target = FRAGMENTS / f"{name}.md"
    tmp = target.with_suffix(".md.tmp")
    tmp.write_text(fragment(name, tee.copy.getvalue(), load=load), encoding="utf-8")
    tmp.replace(target)
    print(f"recorded: {target.relative_to(ROOT)}")
