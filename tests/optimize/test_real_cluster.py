"""Scale-out the way users run it: a Dask scheduler and workers started as separate processes on
127.0.0.1, the CLI connecting by ``--address``, no default client in the calling process.

- ``research grid run limits --executor dask --address …`` prints the same results and diagnostics
  as inline (before
  the fix it failed with "No clients found": ``distributed.as_completed`` wanted a default
  client the executor never makes);
- a worker killed mid-map: the scheduler re-runs its tasks on the other worker and the results
  are complete and in order;
- every worker killed: the map fails with a message saying the cluster has no workers, within
  the executor's ``no_worker_timeout``, instead of hanging.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from research.optimize.executors import DaskExecutor
from research.testing.dask_cluster import ProcessCluster, slow_square

EXE = Path(sys.executable).with_name("research")


def _grid(tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "grid", "run", "limits", "--tickers", "SPX,IXIC", "--start", "2015-01-01",
         "--end", "2017-12-31", "--spa-reps", "50", "--db", str(tmp_path / f"{name}.duckdb"),
         *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _printed(stdout: str) -> str:
    """What the grid printed — results table and diagnostics — without the stored run id."""
    return "\n".join(line for line in stdout.splitlines() if not line.startswith("stored as run"))


def test_cli_grid_on_a_separate_process_cluster_equals_inline(tmp_path: Path) -> None:
    inline = _grid(tmp_path, "inline")
    assert inline.returncode == 0, inline.stderr
    with ProcessCluster(workers=2) as cluster:
        dask = _grid(tmp_path, "dask", "--executor", "dask", "--address", cluster.address)
    assert dask.returncode == 0, dask.stderr + cluster.logs()
    assert "No clients found" not in dask.stderr
    assert "variant" in inline.stdout and "SPA p" in inline.stdout
    assert _printed(dask.stdout) == _printed(inline.stdout)
    # the shared trade paths (the default) print what the reference kernels print
    reference = _grid(tmp_path, "reference", "--engine", "per_config")
    assert reference.returncode == 0, reference.stderr
    assert _printed(reference.stdout) == _printed(inline.stdout)
    assert "phase 1" in inline.stderr


def test_a_worker_killed_mid_map_is_recovered() -> None:
    items = list(range(16))
    with ProcessCluster(workers=2) as cluster:
        ex = DaskExecutor(cluster.address, progress=False, scatter=())
        killer = threading.Timer(1.0, cluster.kill_worker, args=(0,))
        killer.start()
        start = time.monotonic()
        try:
            out = ex.map(slow_square, items)
        finally:
            killer.cancel()
        took = time.monotonic() - start
    assert out == [x * x for x in items]  # complete and in order
    assert took > 1.0  # the kill happened while tasks were running


def test_no_workers_left_fails_with_a_message_not_a_hang() -> None:
    with ProcessCluster(workers=1) as cluster:
        ex = DaskExecutor(
            cluster.address, progress=False, scatter=(), no_worker_timeout=3, poll=0.5
        )
        threading.Timer(0.8, cluster.kill_worker, args=(0,)).start()
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="has had no workers for 3 s"):
            ex.map(slow_square, list(range(40)))
        assert time.monotonic() - start < 30
