"""Shared fixtures: real daily series that are not the built-in S&P 500 / NASDAQ, written as
a user's own files — a stock (Google, 2004–2013, shipped with ``backtesting``) and a commodity
(WTI crude oil spot, 1986–2019, FRED DCOILWTICO shipped with ``arch``) — and a throwaway
PostgreSQL server. Trade paths and Markov fits cached on disk go to temporary folders, not the
project's ``data/cache``."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest


def goog_bars() -> pd.DataFrame:
    """GOOG daily OHLCV in the bars contract (2,148 days, 2004-08-19..2013-03-01)."""
    from backtesting.test import GOOG

    frame = GOOG.rename(columns=str.lower).rename_axis("date").reset_index()
    frame.insert(1, "symbol", "GOOG")
    return frame[["date", "symbol", "open", "high", "low", "close", "volume"]]


def wti_bars() -> pd.DataFrame:
    """WTI spot closes as bars: the series has closes only, so open = high = low = close and
    volume is empty (the documented way to bring a close-only series); holidays (no price)
    dropped."""
    from arch.data import wti

    close = wti.load()["DCOILWTICO"].dropna()
    frame = pd.DataFrame({"date": close.index, "symbol": "WTI"})
    for col in ("open", "high", "low", "close"):
        frame[col] = close.to_numpy(float)
    frame["volume"] = float("nan")
    return frame


# tests that need the session's notebook executions, renders or browser: the slow tier
# (``make test-fast`` deselects it with ``-m "not slow"``)
SLOW_FIXTURES = frozenset({"rendered", "quarto_site", "own_site", "browser"})
# the one execution of the notebooks each of these fixtures stands for, and the test files that
# use it: under pytest-xdist (``make test`` runs two workers) each execution's files are one unit
# of work, run by one worker, so the notebooks are still executed once per session
SHARED_RUNS = {
    "rendered": "notebooks",
    "quarto_site": "notebooks",
    "browser": "notebooks",
    "own_site": "own notebooks",
}
RUN_FILES = {
    "tests/pipeline/test_browser.py": "notebooks",
    "tests/pipeline/test_cells.py": "notebooks",
    "tests/pipeline/test_notebooks.py": "notebooks",
    "tests/pipeline/test_own_notebooks.py": "own notebooks",
}


def work_unit(nodeid: str) -> str:
    """What one pytest-xdist worker runs together: a notebook execution's files, else a file
    (its module-scoped fixtures then run once)."""
    path = nodeid.split("::", 1)[0]
    return RUN_FILES.get(path, path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a slow fixture ``slow``; refuse a test that shares a notebook
    execution from a file not listed with it in ``RUN_FILES`` (a second worker would execute the
    notebooks again); and start with the notebook executions, the longest units, so that the
    other worker does the rest meanwhile."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
        for name in fixtures & SHARED_RUNS.keys():
            if work_unit(item.nodeid) != SHARED_RUNS[name]:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the fixture {name!r}: list its file in RUN_FILES "
                    f"(tests/conftest.py) as {SHARED_RUNS[name]!r}"
                )
    runs = set(RUN_FILES.values())
    items.sort(key=lambda item: work_unit(item.nodeid) not in runs)  # stable otherwise


if importlib.util.find_spec("xdist") is not None:

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        """Schedule whole work units (:func:`work_unit`), in collection order."""
        from xdist.scheduler import LoadScopeScheduling

        class ByWorkUnit(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                return work_unit(nodeid)

        return ByWorkUnit(config, log)


@pytest.fixture(scope="session", autouse=True)
def _trade_path_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The shared-path engine's disk cache in a temporary folder (unless set already)."""
    os.environ.setdefault("RESEARCH_PATH_CACHE", str(tmp_path_factory.mktemp("trade_paths")))
    os.environ.setdefault("RESEARCH_FIT_CACHE", str(tmp_path_factory.mktemp("markov_fits")))


@pytest.fixture(scope="session")
def goog_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("own") / "goog.csv"
    goog_bars().to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


@pytest.fixture(scope="session")
def wti_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("own") / "wti.csv"
    wti_bars().to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


@pytest.fixture(scope="session")
def stock_and_commodity_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CSV of two symbols, GOOG and WTI, each on its own calendar."""
    path = tmp_path_factory.mktemp("own") / "two.csv"
    both = pd.concat([goog_bars(), wti_bars()], ignore_index=True)
    both.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (``research.testing.postgres``); skips,
    with the reason, where the binaries are missing (``make test`` installs them as root)."""
    from research.testing.postgres import throwaway_server, unavailable

    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no PostgreSQL: {reason}")
    with throwaway_server() as url:
        yield url


@pytest.fixture()
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server; its URL."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def _dev_null_intact(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test after which ``/dev/null`` is no longer the device (once, on this machine,
    it was found replaced by a regular file after a session; the suite writes over user paths
    as root, so it names the test that would do it)."""
    import stat

    yield
    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        raise RuntimeError(f"/dev/null is no longer a device after {request.node.nodeid}")
