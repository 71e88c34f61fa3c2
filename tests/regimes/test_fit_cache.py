"""The disk cache of Markov fits: a cached fit is the fit, keys follow the inputs, and notebooks
classifying the same bars share fits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.regimes import fit_cache, markov
from research.regimes.markov import MarkovFit, cached_fit, compute, fit_markov
from research.regimes.ruleset import DEFAULT_RULESET

RULES = dataclasses.replace(
    DEFAULT_RULESET,
    markov=dataclasses.replace(DEFAULT_RULESET.markov, min_train_bars=300, refit_every_bars=200),
)


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(fit_cache.ENV_VAR, str(tmp_path / "fits"))
    return tmp_path / "fits"


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    from research.data.market import load_bars

    bars = load_bars()
    return bars[bars["symbol"] == "SPX"].iloc[:800].reset_index(drop=True)


def _returns(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(4, size=n)


def _same(a: MarkovFit, b: MarkovFit) -> None:
    for field in dataclasses.fields(MarkovFit):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, np.ndarray):
            np.testing.assert_array_equal(left, right)
        else:
            assert left == right, field.name


def test_a_cached_fit_is_bit_for_bit_the_fit(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    y = _returns(400)
    first = cached_fit(y, 2, search_reps=0, seed=0, point=401)
    _same(first, fit_markov(y, 2))
    assert len(list(folder.rglob("*.pkl"))) == 1

    def refuse(*args: object, **kwargs: object) -> MarkovFit:
        raise AssertionError("fitted again instead of reading the cache")

    monkeypatch.setattr(markov, "fit_markov", refuse)
    _same(cached_fit(y, 2, search_reps=0, seed=0, point=999), first)  # point: not in the key


def test_keys_follow_window_k_and_search_settings() -> None:
    y = _returns(300)
    base = fit_cache.fit_key(y, k=2, search_reps=0, seed=None, point=None)
    assert fit_cache.fit_key(y.copy(), k=2, search_reps=0, seed=None, point=None) == base
    other = y.copy()
    other[-1] += 1e-12
    assert fit_cache.fit_key(other, k=2, search_reps=0, seed=None, point=None) != base
    assert fit_cache.fit_key(y, k=3, search_reps=0, seed=None, point=None) != base
    assert fit_cache.fit_key(y, k=2, search_reps=2, seed=1, point=301) != base
    assert fit_cache.fit_key(y, k=2, search_reps=2, seed=1, point=301) != fit_cache.fit_key(
        y, k=2, search_reps=2, seed=1, point=302
    )


def test_off_fits_every_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(fit_cache.ENV_VAR, "off")
    assert fit_cache.cache_folder() is None
    calls: list[int] = []
    assert fit_cache.cached("k", lambda: calls.append(1) or 5) == 5
    assert fit_cache.cached("k", lambda: calls.append(1) or 6) == 6
    assert calls == [1, 1]


def test_unreadable_entry_is_refitted(folder: Path) -> None:
    key = "ab" + "0" * 62
    path = folder / "ab" / f"{key}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    assert fit_cache.cached(key, lambda: 7) == 7
    assert fit_cache.cached(key, lambda: 8) == 7  # rewritten, then read
    assert not list(folder.rglob(".fit-*"))  # no temporary files left behind


def test_failures_are_not_cached(folder: Path) -> None:
    def fail() -> int:
        raise ValueError("markov: fit failed")

    with pytest.raises(ValueError, match="fit failed"):
        fit_cache.cached("cd" + "1" * 62, fail)
    assert not list(folder.rglob("*.pkl"))


def test_classification_is_the_same_with_and_without_the_cache(
    spx: pd.DataFrame, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = compute(spx, None, RULES)  # fills the cache: 3 windows (300, 500, 700)
    assert len(list(folder.rglob("*.pkl"))) == 3
    warm = compute(spx, None, RULES)  # every window from the cache
    monkeypatch.setenv(fit_cache.ENV_VAR, "off")
    fresh = compute(spx, None, RULES)
    pd.testing.assert_frame_equal(cold, fresh)
    pd.testing.assert_frame_equal(warm, fresh)


def test_appended_bars_reuse_the_earlier_windows(
    spx: pd.DataFrame, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compute(spx.iloc[:600].reset_index(drop=True), None, RULES)  # windows 300, 500
    fitted: list[int] = []
    real = markov.fit_markov

    def counting(returns: np.ndarray, k: int, **kw: object) -> MarkovFit:
        fitted.append(len(returns))
        return real(returns, k, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(markov, "fit_markov", counting)
    compute(spx, None, RULES)
    assert fitted == [699]  # only the new window (rows 1..699 before point 700) is fitted
