"""Where grid chunks run: inline, in local worker processes, or on a Dask cluster.

``run_grid(..., executor=...)`` calls ``executor.map(evaluate_chunk, chunks)``; every executor
here returns the results in the order of the chunks, whatever order they finish in, so a grid's
table does not depend on where it ran.

>>> with LocalExecutor(workers=2) as ex:                                        # doctest: +SKIP
...     result = run_grid("mult", variants, panel_for, [("SPX",)], executor=ex, chunk_size=2)
>>> ex = DaskExecutor("tcp://scheduler:8786")                                   # doctest: +SKIP
>>> ex = get_executor("local", workers=2)                                       # doctest: +SKIP

Worker processes start with the "spawn" method (forking a process whose numba/OpenMP threads
are running is unsafe), so a script that uses ``LocalExecutor`` must keep its top-level code
under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import reprlib
import shutil
import sys
import tempfile
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from research.exceptions import ResearchError

if TYPE_CHECKING:
    from distributed import Client

    from research.optimize.grids import Executor

EXECUTORS: tuple[str, ...] = ("inline", "local", "dask")
"""Names accepted by ``get_executor`` (the CLI's ``--executor``)."""
SCATTER_FIELDS: tuple[str, ...] = ("panel", "regimes", "paths")
"""Fields of a dataclass item (``grids.Chunk``) that ``DaskExecutor`` sends to each worker once."""

__all__ = [
    "EXECUTORS",
    "SCATTER_FIELDS",
    "ChunkError",
    "DaskExecutor",
    "LocalExecutor",
    "describe_item",
    "get_executor",
]


class ChunkError(ResearchError, RuntimeError):
    """A chunk (item) failed in a worker; the worker's exception is the ``__cause__``.

    Attributes
    ----------
    index
        Position of the failed item in the ``items`` given to ``map``.
    description
        ``describe_item`` of it (grid, tickers, window, variant names for a grid chunk).
    """

    def __init__(self, message: str, index: int, description: str) -> None:
        super().__init__(message)
        self.index = index
        self.description = description

    def __reduce__(self) -> tuple[type[ChunkError], tuple[str, int, str]]:
        return type(self), (str(self), self.index, self.description)

    @classmethod
    def wrap(cls, exc: BaseException, index: int, items: Sequence[Any]) -> ChunkError:
        """The error for ``exc`` raised by ``items[index]``."""
        description = describe_item(items[index])
        message = (
            f"chunk {index + 1}/{len(items)} ({description}) failed: {type(exc).__name__}: {exc}"
        )
        return cls(message, index, description)


def describe_item(item: Any) -> str:
    """A short description of a work item: for a grid chunk the grid, tickers, window and
    variant names; otherwise a shortened ``repr``."""
    panel = getattr(item, "panel", None)
    variants = getattr(item, "variants", None)
    if panel is None or variants is None or not hasattr(item, "grid"):
        return reprlib.repr(item)
    dates = getattr(panel, "dates", None)
    window = (
        f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}"
        if dates is not None and len(dates)
        else "empty window"
    )
    names = ", ".join(str(getattr(v, "name", v)) for v in variants)
    return (
        f"grid {item.grid!r}, tickers {getattr(item, 'tickers', '?')}, window {window}, "
        f"variants [{names}]"
    )


def _shared_fields(
    items: list[Any], fields: Sequence[str]
) -> tuple[list[list[str]], dict[int, Any]]:
    """Per item, its ``fields`` that are set; and the objects several items share, by id."""
    names_of: list[list[str]] = []
    objects: dict[int, Any] = {}
    uses: Counter[int] = Counter()
    for item in items:
        names = (
            [n for n in fields if getattr(item, n, None) is not None]
            if dataclasses.is_dataclass(item) and not isinstance(item, type)
            else []
        )
        names_of.append(names)
        for n in names:
            obj = getattr(item, n)
            objects.setdefault(id(obj), obj)
            uses[id(obj)] += 1
    return names_of, {i: objects[i] for i, count in uses.items() if count > 1}


_LOADED: OrderedDict[str, Any] = OrderedDict()
"""In a worker process: the shared objects already read, by file (the most recent few)."""
_LOADED_KEEP = 8


def _load_shared(path: str) -> Any:
    """Unpickling a ``_SharedFile`` in a worker: the object, read from its file once per
    process."""
    hit = _LOADED.get(path)
    if hit is None:
        with open(path, "rb") as fh:
            hit = pickle.load(fh)
        _LOADED[path] = hit
        while len(_LOADED) > _LOADED_KEEP:
            _LOADED.popitem(last=False)
    else:
        _LOADED.move_to_end(path)
    return hit


class _SharedFile:
    """Stands for an object several items share: pickles as its file's path, so each worker
    process reads the object once instead of receiving it with every item."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[[str], Any], tuple[str]]:
        return _load_shared, (self.path,)


def _progress_bar(total: int, enabled: bool, desc: str, outer: Any | None = None) -> Any:
    """tqdm over completed chunks on stderr; silent unless enabled and stderr is a terminal.
    ``outer``: the caller's bar, advanced instead (and left open)."""
    if outer is not None:
        return contextlib.nullcontext(outer)
    show = enabled and total > 0 and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="chunk", file=sys.stderr, disable=not show)


def _limit_numba(threads: int | None) -> None:
    """Cap numba's threads in this worker (``None``: leave numba's default).

    Before numba is imported, ``NUMBA_NUM_THREADS`` makes it start only ``threads`` threads;
    after, ``numba.set_num_threads`` masks the rest, for the calling thread only (which is why
    ``DaskExecutor`` calls this in every task, in the task's own thread).
    """
    if threads is None:
        return
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
        return
    import numba

    launched = int(getattr(numba.config, "NUMBA_NUM_THREADS", threads))
    numba.set_num_threads(max(1, min(threads, launched)))


def _check_numba_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise ValueError(f"numba_threads must be at least 1 or None, got {threads}")


class LocalExecutor:
    """Chunks in worker processes on this machine (``concurrent.futures``, "spawn" start).

    Parameters
    ----------
    workers
        Worker processes (default: ``min(2, os.cpu_count())``).
    progress
        A progress bar over completed chunks on stderr (shown only when stderr is a terminal).
    numba_threads
        Threads numba may use inside each worker (default 1: the workers already occupy the
        cores; ``None`` leaves numba's default, one per core, in every worker).
    share
        Fields of dataclass items (``grids.Chunk``: the window's panel, the regime labels, the
        shared trade paths) that several items share: written once to a temporary file and
        read once per worker process, instead of pickled with every item; ``()`` sends every
        item whole.

    Notes
    -----
    Each ``map`` outside a ``with`` block starts and stops its own pool; inside
    ``with LocalExecutor() as ex:`` one pool serves every ``map`` and stops at the end of the
    block. Results come back in the order of ``items``; the first failing item stops the run
    with a ``ChunkError`` naming it (the worker's exception and traceback as its cause).
    """

    def __init__(
        self,
        workers: int | None = None,
        progress: bool = True,
        *,
        numba_threads: int | None = 1,
        share: Sequence[str] = SCATTER_FIELDS,
    ) -> None:
        if workers is None:
            workers = min(2, os.cpu_count() or 1)
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        _check_numba_threads(numba_threads)
        self.workers = workers
        self.progress = progress
        self.numba_threads = numba_threads
        self.share = tuple(share)
        self._pool: ProcessPoolExecutor | None = None
        self._managed = False

    def __repr__(self) -> str:
        return (
            f"LocalExecutor(workers={self.workers}, progress={self.progress}, "
            f"numba_threads={self.numba_threads}, share={self.share})"
        )

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_limit_numba,
            initargs=(self.numba_threads,),
        )

    def __enter__(self) -> LocalExecutor:
        self._managed = True
        if self._pool is None:
            self._pool = self._new_pool()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._managed = False
        self.close(wait=exc_type is None)

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes (queued chunks are cancelled)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], bar: Any | None = None
    ) -> list[Any]:
        """``[fn(item) for item in items]``, computed in the worker processes.

        ``fn`` and the items must be picklable (``fn`` a module-level function). ``bar``: a
        tqdm-like bar to advance per finished item instead of this executor's own.

        Raises
        ------
        ChunkError
            An item failed (or its worker died); the original exception is the cause.
        """
        items = list(items)
        if not items:
            return []
        pool = self._pool if self._pool is not None else self._new_pool()
        if self._managed:
            self._pool = pool
        ok = False
        try:
            results = self._run(pool, fn, items, bar)
            ok = True
            return results
        finally:
            if not self._managed:
                pool.shutdown(wait=ok, cancel_futures=True)

    def _run(
        self,
        pool: ProcessPoolExecutor,
        fn: Callable[[Any], Any],
        items: list[Any],
        outer: Any | None = None,
    ) -> list[Any]:
        futures: dict[Future[Any], int] = {}
        folder = tempfile.mkdtemp(prefix="research-shared-")
        try:
            for i, item in enumerate(self._ship(items, folder)):
                futures[pool.submit(fn, item)] = i
            results: list[Any] = [None] * len(items)
            with _progress_bar(len(items), self.progress, "chunks", outer) as bar:
                for fut in as_completed(futures):
                    i = futures[fut]
                    exc = fut.exception()
                    if exc is not None:
                        raise ChunkError.wrap(exc, i, items) from exc
                    results[i] = fut.result()
                    bar.update(1)
            return results
        except BaseException as exc:
            for fut in futures:
                fut.cancel()
            if isinstance(exc, BrokenProcessPool) or isinstance(exc.__cause__, BrokenProcessPool):
                # a dead worker breaks the whole pool: the next map starts a new one
                if self._pool is pool:
                    self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _ship(self, items: list[Any], folder: str) -> list[Any]:
        """The items with the objects several of them share replaced by ``_SharedFile``s."""
        if not self.share:
            return items
        fields, shared = _shared_fields(items, self.share)
        files: dict[int, _SharedFile] = {}
        for key, obj in shared.items():
            path = os.path.join(folder, f"{uuid.uuid4().hex}.pkl")
            with open(path, "wb") as fh:
                pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            files[key] = _SharedFile(path)
        out = []
        for item, names in zip(items, fields, strict=True):
            moved = {n: files[id(getattr(item, n))] for n in names if id(getattr(item, n)) in files}
            out.append(dataclasses.replace(item, **moved) if moved else item)
        return out


def _call_in_worker(
    fn: Callable[[Any], Any], numba_threads: int | None, item: Any, shared: dict[str, Any]
) -> Any:
    """Runs in a Dask worker thread: cap numba, put the scattered fields back, call ``fn``."""
    _limit_numba(numba_threads)
    if shared:
        item = dataclasses.replace(item, **shared)
    return fn(item)


class DaskExecutor:
    """Chunks on a Dask cluster (``distributed``), e.g. a scheduler at ``tcp://host:8786``.

    Parameters
    ----------
    address
        Scheduler address; the executor connects (``distributed.Client(address)``) and closes
        the connection after each ``map``, or at the end of a ``with`` block.
    client
        An existing ``distributed.Client`` (e.g. on a ``LocalCluster``); used as is, never
        closed here. Give ``address`` or ``client``, not both.
    progress
        A progress bar over completed chunks on stderr (shown only when stderr is a terminal).
    scatter
        Fields of dataclass items (``grids.Chunk``) sent to every worker once with
        ``client.scatter(..., broadcast=True)`` instead of inside every task, when several items
        share the object (a window's panel, the regime labels); ``()`` sends every item whole.
        Measured on the multiplier grid (SPX+IXIC 1999–2018, 6 chunks of one variant) it cut a
        run by ~25–40%; with one or two chunks it makes no difference.
    numba_threads
        Threads numba may use in each task (default 1, for workers with one thread per core;
        ``None`` leaves the workers' numba default).
    no_worker_timeout
        Seconds the cluster may have no worker at all, with tasks pending, before the run fails
        with a message saying so (instead of waiting forever). A worker killed mid-grid while
        others live is not a failure: the scheduler re-runs its tasks elsewhere (a task whose
        workers die three times fails with ``KilledWorker``, named in the ``ChunkError``).
    poll
        Seconds between those checks while no task completes.

    Notes
    -----
    Tasks are submitted with ``client.map(..., pure=False)`` and collected with
    ``client.gather``, so results come in the order of ``items``; the first failing item stops
    the run (other tasks are cancelled) with a ``ChunkError`` naming it. Functions and items
    must be importable/picklable on the workers (the workers need this package installed).
    """

    def __init__(
        self,
        address: str | None = None,
        client: Client | None = None,
        progress: bool = True,
        *,
        scatter: Sequence[str] = SCATTER_FIELDS,
        numba_threads: int | None = 1,
        no_worker_timeout: float = 60.0,
        poll: float = 1.0,
    ) -> None:
        if address is None and client is None:
            raise ValueError(
                "DaskExecutor needs a scheduler address (e.g. 'tcp://host:8786') or a client, "
                "e.g. DaskExecutor(client=distributed.Client(distributed.LocalCluster()))"
            )
        if address is not None and client is not None:
            raise ValueError("give DaskExecutor an address or a client, not both")
        _check_numba_threads(numba_threads)
        self.address = address
        self.progress = progress
        self.scatter = tuple(scatter)
        self.numba_threads = numba_threads
        self.no_worker_timeout = no_worker_timeout
        self.poll = poll
        self._client = client
        self._owns_client = False
        self._managed = False

    def __repr__(self) -> str:
        where = self.address if self.address is not None else self._client
        return f"DaskExecutor({where!r}, progress={self.progress}, scatter={self.scatter})"

    def _connect(self) -> Client:
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, set_as_default=False)
            self._owns_client = True
        return self._client

    def __enter__(self) -> DaskExecutor:
        self._managed = True
        self._connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._managed = False
        self.close()

    def close(self) -> None:
        """Close the connection if this executor opened it (a given client stays open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
            self._owns_client = False

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], bar: Any | None = None
    ) -> list[Any]:
        """``[fn(item) for item in items]``, computed on the cluster (``bar``: a tqdm-like bar
        to advance per finished item instead of this executor's own).

        Raises
        ------
        ChunkError
            An item failed; the original exception (with the worker's traceback) is the cause.
        """
        items = list(items)
        if not items:
            return []
        client = self._connect()
        try:
            return self._run(client, fn, items, bar)
        finally:
            if not self._managed:
                self.close()

    def _split(self, client: Client, items: list[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
        """Items without their scattered fields, and each item's ``{field: future}``.

        Only objects that several items share are scattered: one used by a single task gains
        nothing from being broadcast to every worker.
        """
        if not self.scatter:
            return items, [{} for _ in items]
        fields, shared = _shared_fields(items, self.scatter)
        shared_ids = list(shared)
        if not shared_ids:
            return items, [{} for _ in items]
        futures = client.scatter([shared[i] for i in shared_ids], broadcast=True, hash=False)
        by_id = dict(zip(shared_ids, futures, strict=True))
        stripped: list[Any] = []
        refs: list[dict[str, Any]] = []
        for item, names in zip(items, fields, strict=True):
            moved = {n: by_id[id(getattr(item, n))] for n in names if id(getattr(item, n)) in by_id}
            refs.append(moved)
            stripped.append(dataclasses.replace(item, **dict.fromkeys(moved)) if moved else item)
        return stripped, refs

    def _run(
        self, client: Client, fn: Callable[[Any], Any], items: list[Any], outer: Any | None = None
    ) -> list[Any]:
        import time

        stripped, shared = self._split(client, items)
        token = uuid.uuid4().hex[:12]
        name = getattr(fn, "__name__", "task")
        futures = client.map(
            partial(_call_in_worker, fn, self.numba_threads),
            stripped,
            shared,
            key=[f"{name}-{token}-{i}" for i in range(len(items))],
            pure=False,
        )
        index = {fut.key: i for i, fut in enumerate(futures)}
        try:
            with _progress_bar(len(items), self.progress, "chunks", outer) as bar:
                # wait on this client's futures (no default client needed: the executor's own
                # client, possibly one of several, is not made the default), checking that the
                # cluster still has workers: with none left the tasks would wait forever
                # (distributed.wait / as_completed would need a default client)
                pending = list(futures)
                idle_since: float | None = None
                last_progress = time.monotonic()
                while pending:
                    done = [f for f in pending if f.done()]
                    for fut in done:
                        if fut.status == "error":
                            exc = fut.exception()
                            raise ChunkError.wrap(exc, index[fut.key], items) from exc
                        bar.update(1)
                    if done:
                        finished = {f.key for f in done}
                        pending = [f for f in pending if f.key not in finished]
                        idle_since, last_progress = None, time.monotonic()
                        continue
                    if time.monotonic() - last_progress >= self.poll:
                        idle_since = self._check_workers(client, idle_since)
                        last_progress = time.monotonic()
                    time.sleep(0.02)
            return list(client.gather(futures))
        except BaseException:
            client.cancel(futures)
            raise

    def _check_workers(self, client: Client, idle_since: float | None) -> float | None:
        """Raise when the cluster has had no worker for ``no_worker_timeout`` seconds; return
        since when it has had none (None while it has workers)."""
        import time

        if client.scheduler_info().get("workers"):
            return None
        now = time.monotonic()
        since = idle_since if idle_since is not None else now
        if now - since >= self.no_worker_timeout:
            # connected: scheduler_info() above has just asked the scheduler
            assert client.scheduler is not None
            raise RuntimeError(
                f"the Dask cluster at {client.scheduler.address} has had no workers for "
                f"{self.no_worker_timeout:g} s (all killed or never started): start workers "
                f"(dask worker {client.scheduler.address}) and run the grid again"
            )
        return since


def get_executor(name: str, address: str | None = None, workers: int | None = None) -> Executor:
    """The executor behind the CLI's ``--executor NAME [--address URL] [--workers N]``.

    Parameters
    ----------
    name
        ``"inline"`` (this process; numba uses every core), ``"local"`` (``workers`` processes
        on this machine) or ``"dask"`` (the cluster whose scheduler is at ``address``).
    address
        Dask scheduler address, e.g. ``tcp://host:8786`` (``dask`` only).
    workers
        Worker processes (``local`` only; default ``min(2, cpu count)``).

    Raises
    ------
    ValueError
        An unknown name, or options that do not apply to it (``dask`` without an address).
    """
    from research.optimize.grids import InlineExecutor

    key = name.strip().lower()
    if key not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    if address is not None and key != "dask":
        raise ValueError(f"--address is for the dask executor, not {key!r}")
    if workers is not None and key != "local":
        hint = (
            "the cluster's workers are set where it is started (dask worker --nworkers N)"
            if key == "dask"
            else "the inline executor runs in this process"
        )
        raise ValueError(f"--workers is for the local executor; {hint}")
    if key == "inline":
        return InlineExecutor()
    if key == "local":
        return LocalExecutor(workers=workers)
    if not address:
        raise ValueError(
            "the dask executor needs the scheduler's address: --address tcp://HOST:8786 "
            "(start one with `dask scheduler` and workers with `dask worker tcp://HOST:8786 "
            "--nthreads 1`); from Python, pass DaskExecutor(client=distributed.Client("
            "distributed.LocalCluster(n_workers=2, threads_per_worker=1))); "
            "or use --executor local for worker processes on this machine"
        )
    return DaskExecutor(address)
