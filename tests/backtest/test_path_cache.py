"""Tests of the shared trade paths' cache: ``research.backtest.path_cache`` and the planning
functions of ``research.backtest.run`` that key it.

Notes
-----
On a real two-year SPX panel (2015-2016, model-priced):

- Grouping: ``plan_paths`` puts configs that differ only in sizing, portfolio limits, profit
  target, stop loss or the IV-percentile filter in one strategy group, and configs that differ
  in any pricing or strike field in groups of their own; digests are stable across calls and
  panel copies, and change with one close price.
- Disk round trip: ``prepare_paths`` computes a strategy's ``TradePaths`` once and writes one
  ``<digest>.npz``; a fresh ``PathCache`` reads back identical arrays (a disk hit, then memory
  hits); corrupt files are dropped.
- Reuse: ``run_kernel(engine="auto")`` uses cached paths for a single config, and the result
  equals the per-configuration reference kernel exactly.
- Budgets: the memory budget evicts least recently used entries, the disk budget the oldest
  files; ``default_cache`` follows ``RESEARCH_PATH_CACHE``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from research.backtest import path_cache as path_cache_mod
from research.backtest.market_panel import MarketPanel
from research.backtest.path_cache import ENV_VAR, PathCache, default_cache
from research.backtest.run import SHARED_MIN_CONFIGS, plan_paths, prepare_paths, run_kernel
from research.backtest.spreads import BacktestConfig
from research.backtest.trade_paths import ARRAYS, TradePaths

BASE = BacktestConfig()

SAME_STRATEGY: dict[str, object] = {
    "sizing.risk_pct": 1.0,
    "sizing.mode": "scaled",
    "sizing.contracts": 3,
    "limits.max_positions": 2,
    "limits.max_portfolio_heat_pct": 10.0,
    "limits.max_per_underlying_pct": 5.0,
    "spread.profit_target_pct": 50.0,
    "spread.stop_loss_pct": 200.0,
    "spread.min_iv_percentile": 30.0,
}
"""Fields phase 1 does not read: changing them keeps the strategy (and its paths)."""

OTHER_STRATEGY: dict[str, object] = {
    "spread.min_delta": 0.08,
    "spread.target_dte": 45,
    "spread.width_pct": 2.5,
    "fills.half_spread_pct": 3.0,
    "fills.fee_per_contract": 1.0,
    "rate": 0.03,
    "fills.timing": "next_open",
}
"""Fields of strikes and prices: each one makes another strategy."""


def _cfg(field: str, value: object) -> BacktestConfig:
    cfg = BASE.replace(**{field: value})
    cfg.check()
    return cfg


@pytest.fixture(scope="module")
def panel() -> MarketPanel:
    from research.backtest.service import load_panel

    panel, _, _ = load_panel(["SPX"], start="2015-01-01", end="2016-12-31")
    return panel


@pytest.fixture(scope="module")
def three_paths(panel: MarketPanel) -> list[TradePaths]:
    """Three strategies' paths (computed in a throwaway memory-only cache)."""
    scratch = PathCache(None)
    configs = [BASE, _cfg("spread.target_dte", 45), _cfg("spread.width_pct", 2.5)]
    out = prepare_paths(panel, configs, min_configs=1, cache=scratch)
    assert len(out) == 3 and scratch.stats["computed"] == 3
    return list(out.values())


def _assert_same_paths(got: TradePaths, want: TradePaths) -> None:
    assert (got.key, got.kind, got.lag) == (want.key, want.kind, want.lag)
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        # NaNs (unset fields, a fill's first open) compare equal where both hold them
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name


# ---------------------------------------------------------------------------------------------
# Grouping and digests
# ---------------------------------------------------------------------------------------------


def test_sizing_limits_and_exits_share_one_strategy(panel: MarketPanel) -> None:
    configs = [BASE] + [_cfg(k, v) for k, v in SAME_STRATEGY.items()]
    plan = plan_paths(panel, configs)
    assert len(plan.digests) == 1
    assert plan.members == (tuple(range(len(configs))),)


@pytest.mark.parametrize(("field", "value"), list(OTHER_STRATEGY.items()))
def test_pricing_field_makes_another_strategy(
    panel: MarketPanel, field: str, value: object
) -> None:
    other = _cfg(field, value)
    plan = plan_paths(panel, [BASE, other, BASE.replace(**{"sizing.risk_pct": 1.0})])
    assert plan.members == ((0, 2), (1,))
    assert len(set(plan.digests)) == 2


def test_all_groups_at_once(panel: MarketPanel) -> None:
    pricing = [_cfg(k, v) for k, v in OTHER_STRATEGY.items()]
    sizing = [_cfg(k, v) for k, v in SAME_STRATEGY.items()]
    configs = [BASE, *pricing, *sizing]
    plan = plan_paths(panel, configs)
    n_pricing = len(pricing)
    assert len(plan.digests) == 1 + n_pricing
    assert len(set(plan.digests)) == 1 + n_pricing
    # first-seen order: the base strategy (with every sizing variant), then each pricing one
    assert plan.members[0] == (0, *range(1 + n_pricing, len(configs)))
    assert plan.members[1:] == tuple((1 + i,) for i in range(n_pricing))


def test_digests_are_stable(panel: MarketPanel) -> None:
    configs = [BASE, _cfg("spread.target_dte", 45)]
    first = plan_paths(panel, configs)
    again = plan_paths(
        panel, [BacktestConfig(), BacktestConfig().replace(**{"spread.target_dte": 45})]
    )
    assert first == again
    # a copy of the panel's data (a new object, same values) has the same digest
    copy = dataclasses.replace(panel, close=panel.close.copy())
    assert copy.digest == panel.digest
    assert plan_paths(copy, configs).digests == first.digests


def test_digests_change_with_one_close(panel: MarketPanel) -> None:
    close = panel.close.copy()
    close[100, 0] *= 1.0001
    changed = dataclasses.replace(panel, close=close)
    assert changed.digest != panel.digest
    before = plan_paths(panel, [BASE, _cfg("rate", 0.03)]).digests
    after = plan_paths(changed, [BASE, _cfg("rate", 0.03)]).digests
    assert len(after) == 2
    assert not set(before) & set(after)


# ---------------------------------------------------------------------------------------------
# Disk round trip
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timing", ["close", "next_open"])
def test_disk_round_trip(panel: MarketPanel, tmp_path: Path, timing: str) -> None:
    cfg = _cfg("fills.timing", timing)
    cache = PathCache(tmp_path)
    out = prepare_paths(panel, [cfg] * 4, cache=cache)
    (digest,) = plan_paths(panel, [cfg]).digests
    assert list(out) == [digest]
    original = out[digest]
    assert cache.stats == {"memory_hits": 0, "disk_hits": 0, "computed": 1, "evicted": 0}
    assert [p.name for p in tmp_path.iterdir()] == [f"{digest}.npz"]
    assert original.kind == "model" and original.lag == (timing == "next_open")
    assert original.candidates > 0
    if timing == "next_open":
        assert len(original.fill) and np.isnan(original.open_debit).any()

    fresh = PathCache(tmp_path)
    assert digest in fresh
    loaded = fresh.get(digest)
    assert loaded is not None and loaded is not original
    _assert_same_paths(loaded, original)
    assert fresh.stats == {"memory_hits": 0, "disk_hits": 1, "computed": 0, "evicted": 0}
    assert fresh.get(digest) is loaded
    assert fresh.stats["memory_hits"] == 1 and fresh.stats["disk_hits"] == 1

    # preparing again computes nothing
    prepare_paths(panel, [cfg] * 4, cache=cache)
    assert cache.stats["computed"] == 1 and cache.stats["memory_hits"] == 1


def test_unknown_key_is_a_miss(tmp_path: Path) -> None:
    cache = PathCache(tmp_path)
    assert "0" * 32 not in cache
    assert cache.get("0" * 32) is None
    assert cache.stats == {"memory_hits": 0, "disk_hits": 0, "computed": 0, "evicted": 0}


def test_corrupt_file_is_dropped(panel: MarketPanel, tmp_path: Path) -> None:
    cache = PathCache(tmp_path)
    (digest,) = prepare_paths(panel, [BASE] * 4, cache=cache)
    path = tmp_path / f"{digest}.npz"
    path.write_bytes(b"this is not an npz archive\x00\xff" * 50)
    fresh = PathCache(tmp_path)
    assert digest in fresh
    assert fresh.get(digest) is None
    assert not path.exists()
    assert digest not in fresh
    assert fresh.stats["disk_hits"] == 0


def test_truncated_file_is_dropped(panel: MarketPanel, tmp_path: Path) -> None:
    cache = PathCache(tmp_path)
    (digest,) = prepare_paths(panel, [BASE] * 4, cache=cache)
    path = tmp_path / f"{digest}.npz"
    path.write_bytes(path.read_bytes()[:1000])  # a partial copy: still starts with PK\x03\x04
    assert PathCache(tmp_path).get(digest) is None
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# Reuse in run_kernel
# ---------------------------------------------------------------------------------------------


def test_run_kernel_reuses_cached_paths(panel: MarketPanel) -> None:
    assert SHARED_MIN_CONFIGS > 1  # one config alone is not worth phase 1
    cfg = BASE
    (digest,) = plan_paths(panel, [cfg]).digests
    reference = run_kernel(panel, [cfg], engine="per_config")

    cache = PathCache(None)
    run_kernel(panel, [cfg], engine="auto", cache=cache)
    # a lone config runs the per-configuration kernel: nothing computed nor looked up
    assert cache.stats == {"memory_hits": 0, "disk_hits": 0, "computed": 0, "evicted": 0}
    assert digest not in cache

    prepare_paths(panel, [cfg], min_configs=1, cache=cache)
    assert cache.stats["computed"] == 1 and digest in cache
    shared = run_kernel(panel, [cfg], engine="auto", cache=cache)
    assert cache.stats["memory_hits"] == 1 and cache.stats["computed"] == 1

    n = int(reference.n_trades[0])
    assert n > 50
    np.testing.assert_array_equal(shared.equity, reference.equity, strict=True)
    np.testing.assert_array_equal(shared.n_trades, reference.n_trades, strict=True)
    np.testing.assert_array_equal(shared.counters, reference.counters, strict=True)
    assert shared.trades is not None and reference.trades is not None
    assert np.array_equal(shared.trades[0, :n], reference.trades[0, :n], equal_nan=True)


def test_run_kernel_takes_given_paths(panel: MarketPanel) -> None:
    cfgs = [BASE, _cfg("sizing.risk_pct", 1.0)]
    paths = prepare_paths(panel, cfgs, min_configs=1, cache=PathCache(None))
    cache = PathCache(None)
    shared = run_kernel(panel, cfgs, engine="auto", paths=paths, cache=cache)
    assert cache.stats == {"memory_hits": 0, "disk_hits": 0, "computed": 0, "evicted": 0}
    reference = run_kernel(panel, cfgs, engine="per_config")
    np.testing.assert_array_equal(shared.equity, reference.equity, strict=True)
    np.testing.assert_array_equal(shared.counters, reference.counters, strict=True)


# ---------------------------------------------------------------------------------------------
# Budgets
# ---------------------------------------------------------------------------------------------


def test_memory_budget_evicts(panel: MarketPanel) -> None:
    first, second = BASE, _cfg("spread.target_dte", 45)
    a, b = plan_paths(panel, [first, second]).digests
    probe = PathCache(None)
    size_a = prepare_paths(panel, [first], min_configs=1, cache=probe)[a].nbytes
    cache = PathCache(None, memory_bytes=size_a + 1)  # room for one strategy only
    prepare_paths(panel, [first] * 4 + [second] * 4, cache=cache)
    assert cache.stats["computed"] == 2
    assert cache.stats["evicted"] == 1
    assert b in cache and a not in cache
    assert cache.get(a) is None  # memory only: evicted means gone
    # the next strategy pushes the current one out again
    prepare_paths(panel, [first] * 4, cache=cache)
    assert cache.stats["computed"] == 3 and cache.stats["evicted"] == 2
    assert a in cache and b not in cache


def test_memory_budget_is_least_recently_used(three_paths: list[TradePaths]) -> None:
    p, q, r = three_paths
    # room for p and r together, not for all three (nor p, q and r)
    cache = PathCache(None, memory_bytes=p.nbytes + max(q.nbytes, r.nbytes))
    cache.put(p)
    cache.put(q)
    assert p.key in cache and q.key in cache and cache.stats["evicted"] == 0
    assert cache.get(p.key) is p  # p is now the most recently used
    cache.put(r)
    assert cache.stats["evicted"] == 1
    assert q.key not in cache  # the least recently used goes, not the oldest put
    assert cache.get(p.key) is p and cache.get(r.key) is r
    assert cache.stats["memory_hits"] == 3 and cache.stats["computed"] == 3


def test_memory_budget_keeps_the_newest_entry(three_paths: list[TradePaths]) -> None:
    cache = PathCache(None, memory_bytes=1)
    for paths in three_paths:
        cache.put(paths)
        assert paths.key in cache
    assert cache.stats["evicted"] == 2
    assert [p.key in cache for p in three_paths] == [False, False, True]


def test_disk_budget_keeps_the_newest_file(three_paths: list[TradePaths], tmp_path: Path) -> None:
    old, new, _ = three_paths
    cache = PathCache(tmp_path, disk_bytes=1)
    cache.put(old)
    old_file = tmp_path / f"{old.key}.npz"
    assert old_file.is_file()
    # age the first file so the order does not rest on the clock's resolution
    stamp = old_file.stat().st_mtime - 60
    os.utime(old_file, (stamp, stamp))
    cache.put(new)
    assert [p.name for p in tmp_path.iterdir()] == [f"{new.key}.npz"]
    # the pruned file is still in memory; a fresh cache only finds the newest
    fresh = PathCache(tmp_path)
    assert old.key not in fresh and new.key in fresh


def test_disk_budget_large_enough_keeps_both(three_paths: list[TradePaths], tmp_path: Path) -> None:
    cache = PathCache(tmp_path)
    for paths in three_paths[:2]:
        cache.put(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{p.key}.npz" for p in three_paths[:2]
    )


# ---------------------------------------------------------------------------------------------
# default_cache
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def no_default_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from no process caches (and leave the module's own untouched)."""
    monkeypatch.setattr(path_cache_mod, "_DEFAULT", {})


@pytest.mark.parametrize("setting", ["off", "OFF", "0", "none", "false", ""])
@pytest.mark.usefixtures("no_default_caches")
def test_default_cache_off(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv(ENV_VAR, setting)
    cache = default_cache()
    assert cache.directory is None
    assert default_cache() is cache


@pytest.mark.usefixtures("no_default_caches")
def test_default_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "paths"))
    cache = default_cache()
    assert cache.directory == tmp_path / "paths"
    assert default_cache() is cache
    monkeypatch.setenv(ENV_VAR, "off")
    assert default_cache() is not cache and default_cache().directory is None


def test_another_process_renaming_or_deleting_a_file_mid_prune_is_skipped(
    panel: MarketPanel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two notebooks executing in parallel may write and prune the same folder: a file that
    disappears between listing and stat (renamed or pruned by the other process) is skipped,
    not an error, and temporary files are never listed as cache files."""
    cache = PathCache(tmp_path, disk_bytes=1)
    gone = tmp_path / "0000000000000000000000000000dead.npz"
    real_glob = Path.glob

    def glob_with_a_vanished_file(self: Path, pattern: str):  # type: ignore[no-untyped-def]
        yield from real_glob(self, pattern)
        yield gone  # listed, then gone before its stat

    monkeypatch.setattr(Path, "glob", glob_with_a_vanished_file)
    paths = next(iter(prepare_paths(panel, [BASE] * 4, cache=PathCache()).values()))
    cache.put(paths)  # writes and prunes: must not raise
    monkeypatch.undo()
    files = [p.name for p in tmp_path.iterdir()]
    assert files == [f"{paths.key}.npz"]  # no temporary file left behind
    written: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        written.append(str(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    other = PathCache(tmp_path / "other")
    other.put(paths)
    assert written and not written[0].endswith(".npz")  # invisible to a concurrent prune
