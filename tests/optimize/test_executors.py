"""Tests of research.optimize.executors: local worker processes and a Dask LocalCluster give
exactly the inline grid, in input order, and failures name their chunk."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import pandas as pd
import pytest

from research.backtest.market_panel import MarketPanel
from research.backtest.service import load_panel, regime_labels
from research.backtest.spreads import BacktestConfig
from research.optimize.executors import (
    EXECUTORS,
    ChunkError,
    DaskExecutor,
    LocalExecutor,
    describe_item,
    get_executor,
)
from research.optimize.grids import (
    Chunk,
    GridResult,
    InlineExecutor,
    Variant,
    evaluate_chunk,
    multiplier_variants,
    run_grid,
)

distributed = pytest.importorskip("distributed")

WINDOWS = [("2008-01-01", "2009-06-30"), ("2009-07-01", "2010-12-31")]

# --------------------------------------------------------------------------------------------
# toy functions (module level: the workers import them by name)
# --------------------------------------------------------------------------------------------


def _sleepy(item: tuple[int, float]) -> tuple[int, float]:
    """Sleep, then report the item's index and when it finished."""
    index, delay = item
    time.sleep(delay)
    return index, time.time()


def _probe(_: Any) -> tuple[int, int]:
    """The worker's process id and the threads numba may use in this task."""
    import numba

    return os.getpid(), numba.get_num_threads()


def _fail_on_three(item: int) -> int:
    if item == 3:
        raise ValueError("three is not allowed")
    return item * 10


def _die_on_one(item: int) -> int:
    if item == 1:
        os._exit(3)  # the worker process dies
    return item


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def market() -> tuple[MarketPanel, pd.DataFrame, list[Variant]]:
    panel, bars, iv = load_panel(["SPX"], start="2008-01-01", end="2010-12-31")
    regimes = regime_labels("bull_bear_vol", bars, iv)
    variants = multiplier_variants(BacktestConfig().replace(**{"sizing.mode": "scaled"}))
    return panel, regimes, variants


def _grid(market: Any, executor: Any = None, windows: Any = None) -> GridResult:
    panel, regimes, variants = market
    return run_grid(
        "mult",
        variants,
        lambda tickers: panel,
        [("SPX",)],
        windows,
        regimes,
        executor=executor,
        chunk_size=2,
    )


@pytest.fixture(scope="module")
def inline(market: Any) -> GridResult:
    return _grid(market, InlineExecutor())


@pytest.fixture(scope="module")
def inline_windows(market: Any) -> GridResult:
    return _grid(market, InlineExecutor(), WINDOWS)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalExecutor]:
    with LocalExecutor(workers=2, progress=False) as ex:
        # both workers up and warm, so the ordering test's timings mean what they say
        for _ in range(20):
            if len({pid for pid, _ in ex.map(_probe, range(4))}) == 2:
                break
        yield ex


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        client.run(importlib.import_module, __name__)  # the toy functions, on every worker
        yield client


def _assert_same(got: GridResult, want: GridResult) -> None:
    pd.testing.assert_frame_equal(got.table, want.table, check_exact=True)
    pd.testing.assert_frame_equal(got.returns, want.returns, check_exact=True)


# --------------------------------------------------------------------------------------------
# the grid on real data: identical to inline
# --------------------------------------------------------------------------------------------


def test_local_grid_identical_to_inline(market: Any, inline: GridResult) -> None:
    assert len(inline.table) == 6 and inline.table["trades"].gt(0).all()
    # outside a with-block: the map starts and stops its own pool
    got = _grid(market, LocalExecutor(workers=2, progress=False))
    _assert_same(got, inline)


@pytest.mark.parametrize("scatter", [("panel", "regimes"), ()], ids=["scatter", "whole"])
def test_dask_grid_identical_to_inline(
    market: Any,
    inline: GridResult,
    inline_windows: GridResult,
    dask_client: Any,
    scatter: tuple[str, ...],
) -> None:
    ex = DaskExecutor(client=dask_client, progress=False, scatter=scatter)
    _assert_same(_grid(market, ex), inline)
    # two windows: two panels and the regimes shared by six chunks
    _assert_same(_grid(market, ex, WINDOWS), inline_windows)
    assert dask_client.status == "running"  # a given client is not closed


def test_dask_scatters_only_shared_objects(market: Any, dask_client: Any) -> None:
    panel, regimes, variants = market
    other = dataclasses.replace(panel)  # equal content, another object
    chunks = [
        Chunk(panel, tuple(variants[:2]), regimes, "g", "SPX"),
        Chunk(other, tuple(variants[2:4]), regimes, "g", "SPX"),
        Chunk(other, tuple(variants[4:]), regimes, "g", "SPX"),
    ]
    stripped, shared = DaskExecutor(client=dask_client)._split(dask_client, chunks)
    assert stripped[0].panel is panel and stripped[0].regimes is None
    assert stripped[1].panel is None and stripped[2].panel is None
    assert [sorted(s) for s in shared] == [["regimes"], ["panel", "regimes"], ["panel", "regimes"]]
    assert shared[0]["regimes"].key == shared[2]["regimes"].key
    assert shared[1]["panel"].key == shared[2]["panel"].key
    assert DaskExecutor(client=dask_client, scatter=())._split(dask_client, chunks)[0] == chunks


# --------------------------------------------------------------------------------------------
# order, reuse, numba threads
# --------------------------------------------------------------------------------------------

# the first item finishes last: results must still come back in input order
DECREASING = [(0, 1.2), (1, 0.4), (2, 0.2), (3, 0.1), (4, 0.0), (5, 0.0)]


def _check_order(results: list[tuple[int, float]]) -> None:
    assert [i for i, _ in results] == list(range(len(DECREASING)))
    finished = [t for _, t in results]
    assert finished[1] < finished[0]  # the run really completed out of order


def test_local_results_in_input_order(local: LocalExecutor) -> None:
    _check_order(local.map(_sleepy, DECREASING))


def test_dask_results_in_input_order(dask_client: Any) -> None:
    _check_order(DaskExecutor(client=dask_client, progress=False).map(_sleepy, DECREASING))


def test_local_pool_reused_and_numba_limited(local: LocalExecutor) -> None:
    first = local.map(_probe, range(4))
    second = local.map(_probe, range(4))
    pids = {pid for pid, _ in first + second}
    assert len(pids) <= 2 and os.getpid() not in pids
    assert {threads for _, threads in first + second} == {1}


def test_dask_executor_owns_its_connection(dask_client: Any) -> None:
    address = dask_client.scheduler.address
    ex = DaskExecutor(address, progress=False)
    assert ex.map(_fail_on_three, [1, 2]) == [10, 20]
    assert ex._client is None  # connected for that map only
    with DaskExecutor(address, progress=False) as ex:
        client = ex._client
        assert ex.map(_fail_on_three, [1]) == [10]
        assert ex.map(_fail_on_three, [2]) == [20]
        assert ex._client is client
    assert ex._client is None and client is not None and client.status == "closed"


def test_dask_numba_limited(dask_client: Any) -> None:
    out = DaskExecutor(client=dask_client, progress=False).map(_probe, range(4))
    assert {threads for _, threads in out} == {1}


def test_empty_items() -> None:
    ex = LocalExecutor(workers=2)
    assert ex.map(_probe, []) == []
    assert ex._pool is None  # nothing started


def test_progress_bar_on_a_terminal(
    local: LocalExecutor, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(local, "progress", True)
    assert local.map(_fail_on_three, [0, 1]) == [0, 10]
    assert "2/2" in capsys.readouterr().err
    monkeypatch.setattr(local, "progress", False)
    local.map(_fail_on_three, [0, 1])
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------------------------
# failures name the chunk
# --------------------------------------------------------------------------------------------


def _bad_chunks(market: Any) -> list[Chunk]:
    panel, regimes, variants = market
    broken = regimes.drop(columns="regime")  # evaluate_chunk fails looking up the labels
    return [
        Chunk(panel, tuple(variants[:2]), regimes, "ok", "SPX"),
        Chunk(panel, tuple(variants[2:4]), broken, "boom", "SPX"),
    ]


def _check_chunk_error(err: ChunkError, panel: MarketPanel) -> None:
    message = str(err)
    assert err.index == 1
    assert message.startswith("chunk 2/2 (grid 'boom', tickers SPX, window ")
    assert f"{panel.dates[0]:%Y-%m-%d}..{panel.dates[-1]:%Y-%m-%d}" in message
    assert "variants [mild, aggressive]" in message
    assert isinstance(err.__cause__, KeyError)


def test_local_failure_names_the_chunk(market: Any, local: LocalExecutor) -> None:
    with pytest.raises(ChunkError) as info:
        local.map(evaluate_chunk, _bad_chunks(market))
    _check_chunk_error(info.value, market[0])
    # the pool survives a failed chunk
    assert local.map(_fail_on_three, [1, 2]) == [10, 20]


def test_dask_failure_names_the_chunk(market: Any, dask_client: Any) -> None:
    ex = DaskExecutor(client=dask_client, progress=False)
    with pytest.raises(ChunkError) as info:
        ex.map(evaluate_chunk, _bad_chunks(market))
    _check_chunk_error(info.value, market[0])


def test_failure_of_a_plain_item(local: LocalExecutor) -> None:
    with pytest.raises(ChunkError, match=r"chunk 4/5 \(3\) failed: ValueError: three") as info:
        local.map(_fail_on_three, range(5))
    assert info.value.index == 3 and info.value.description == "3"
    assert isinstance(info.value.__cause__, ValueError)


def test_dead_worker_is_reported_and_the_pool_replaced() -> None:
    with LocalExecutor(workers=2, progress=False) as ex:
        with pytest.raises(ChunkError, match=r"failed: BrokenProcessPool") as info:
            ex.map(_die_on_one, [0, 1, 2])
        assert isinstance(info.value.__cause__, BrokenProcessPool)
        assert ex.map(_fail_on_three, [1]) == [10]  # a new pool


def test_describe_item(market: Any) -> None:
    chunk = _bad_chunks(market)[0]
    assert describe_item(chunk) == (
        "grid 'ok', tickers SPX, window 2008-01-02..2010-12-31, variants [flat, prod]"
    )
    assert describe_item((1, "a")) == "(1, 'a')"
    assert len(describe_item(list(range(1000)))) < 100


# --------------------------------------------------------------------------------------------
# construction and the CLI's get_executor
# --------------------------------------------------------------------------------------------


def test_get_executor_builds_each_kind() -> None:
    assert EXECUTORS == ("inline", "local", "dask")
    assert isinstance(get_executor("inline"), InlineExecutor)
    local = get_executor("Local", workers=3)
    assert isinstance(local, LocalExecutor) and local.workers == 3
    default = get_executor("local")
    assert isinstance(default, LocalExecutor)
    assert default.workers == min(2, os.cpu_count() or 1)
    dask = get_executor("dask", address="tcp://127.0.0.1:8786")
    assert isinstance(dask, DaskExecutor) and dask.address == "tcp://127.0.0.1:8786"
    assert dask._client is None  # connects on first use


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "ray"}, r"unknown executor 'ray'; choose one of: inline, local, dask"),
        ({"name": "dask"}, r"--address tcp://HOST:8786.*LocalCluster.*--executor local"),
        ({"name": "local", "address": "tcp://h:8786"}, r"--address is for the dask executor"),
        ({"name": "inline", "workers": 2}, r"--workers is for the local executor"),
        ({"name": "dask", "address": "tcp://h:8786", "workers": 2}, r"dask worker --nworkers"),
        ({"name": "local", "workers": 0}, r"workers must be at least 1"),
    ],
)
def test_get_executor_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_executor(**kwargs)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="scheduler address"):
        DaskExecutor()
    client: Any = object()
    with pytest.raises(ValueError, match="not both"):
        DaskExecutor("tcp://h:8786", client=client)
    with pytest.raises(ValueError, match="numba_threads"):
        LocalExecutor(numba_threads=0)


# --------------------------------------------------------------------------------------------
# shared objects: once per worker process
# --------------------------------------------------------------------------------------------


def test_local_grid_with_shared_paths_over_windows(
    market: Any, inline_windows: GridResult, local: LocalExecutor
) -> None:
    # 2 windows x 3 chunks: each window's panel and trade paths, and the labels, are shared
    assert local.share == ("panel", "regimes", "paths")
    _assert_same(_grid(market, local, WINDOWS), inline_windows)


def test_shared_objects_travel_as_one_file_read_once_per_process(
    market: Any, tmp_path: Any
) -> None:
    import pickle

    from research.backtest.run import prepare_paths
    from research.optimize import executors

    panel, regimes, variants = market
    paths = prepare_paths(panel, [v.config for v in variants])
    assert len(paths) == 1  # six multiplier sets, one strategy
    chunks = [
        Chunk(panel, tuple(variants[i : i + 2]), regimes, "g", "SPX", paths) for i in (0, 2, 4)
    ]
    shipped = LocalExecutor(progress=False)._ship(chunks, str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 3  # panel, labels, paths: one file each
    whole = len(pickle.dumps(chunks[0]))
    light = len(pickle.dumps(shipped[0]))
    assert light < whole / 20  # the item carries file names, not the data
    executors._LOADED.clear()
    first, second = (pickle.loads(pickle.dumps(item)) for item in shipped[:2])
    assert first.panel is second.panel and first.paths is second.paths  # read once
    np.testing.assert_array_equal(first.panel.close, panel.close)
    (tp,) = first.paths.values()
    np.testing.assert_array_equal(tp.value, next(iter(paths.values())).value)
    assert first.variants == chunks[0].variants and second.variants == chunks[1].variants
    unshared = LocalExecutor(progress=False, share=())._ship(chunks, str(tmp_path))
    assert unshared == chunks
