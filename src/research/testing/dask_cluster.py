"""A Dask cluster made of separate processes on 127.0.0.1, the way users run one: a
``dask scheduler`` process and ``dask worker`` processes started from this environment's
``dask`` command, for tests and benchmarks.

    with ProcessCluster(workers=2) as cluster:
        research grid run limits --executor dask --address {cluster.address}

``kill_worker(i)`` kills one worker process (SIGKILL), to test what a grid does when a worker
dies. ``slow_square`` is a task function the workers can import (it lives in the package).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ProcessCluster", "slow_square"]


def slow_square(x: int, seconds: float = 0.3) -> int:
    """``x * x`` after ``seconds`` (a task that takes long enough to be interrupted)."""
    time.sleep(seconds)
    return x * x


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ProcessCluster:
    """``workers`` worker processes (one thread each) and a scheduler, all separate processes."""

    workers: int = 2
    threads: int = 1
    start_timeout: float = 60.0
    address: str = ""
    _scheduler: subprocess.Popen[bytes] | None = None
    _workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _dir: Path | None = None

    def _dask(self) -> str:
        return str(Path(sys.executable).with_name("dask"))

    def __enter__(self) -> ProcessCluster:
        self._dir = Path(tempfile.mkdtemp(prefix="regime-lab-dask-"))
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = (self._dir / "scheduler.log").open("wb")
        self._scheduler = subprocess.Popen(
            [self._dask(), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self._dir,
        )  # fmt: skip
        for i in range(self.workers):
            self.add_worker(i)
        self.wait_for_workers(self.workers)
        return self

    def add_worker(self, i: int | None = None) -> None:
        """Start one more worker process."""
        assert self._dir is not None
        n = len(self._workers) if i is None else i
        log = (self._dir / f"worker-{n}.log").open("wb")
        self._workers.append(
            subprocess.Popen(
                [
                    self._dask(),
                    "worker",
                    self.address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    str(self.threads),
                    "--no-dashboard",
                    "--name",
                    f"w{n}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        )

    def wait_for_workers(self, n: int) -> None:
        """Block until the scheduler has ``n`` workers (raises with the logs after a timeout)."""
        from distributed import Client

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with Client(self.address, timeout=5, set_as_default=False) as c:
                    c.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                    return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Dask cluster did not start: {exc}\n{self.logs()}"
                    ) from exc
                time.sleep(0.5)

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i``'s whole process group member (no clean shutdown)."""
        proc = self._workers[i]
        # `dask worker` runs a nanny that spawns the worker: kill both
        try:
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                child.send_signal(signal.SIGKILL)
        except Exception:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def logs(self) -> str:
        if self._dir is None:
            return ""
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self._dir.glob("*.log"))
        )

    def __exit__(self, *exc: object) -> None:
        for proc in [*self._workers, self._scheduler]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self._workers, self._scheduler]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
