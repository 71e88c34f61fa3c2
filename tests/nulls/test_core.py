"""The null-calibration machinery: size and power counted right, realistic nulls that keep the
dependence they claim to keep, and the published table complete and calibrated."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from research.nulls import SIZE_BAND, NullCase, all_cases, calibration_table, run_case
from research.nulls.generators import (
    ar1,
    circular_shift,
    persistent_filter,
    regime_path,
    spells,
)
from research.nulls.results import RESULTS, published, write_published


def _uniform(rng: np.random.Generator, effect: float) -> float:
    """An exact test: p uniform under the null, p = u / 10 with the effect."""
    u = float(rng.random())
    return u / 10 if effect else u


def test_min_runs_raises_the_runs_of_a_cheap_case() -> None:
    case = NullCase("l", "t", "", "", _uniform, min_runs=300)
    assert run_case(case, 100, power=False).runs == 300
    assert run_case(case, 500, power=False).runs == 500


def test_run_case_counts_rejections_exactly() -> None:
    case = NullCase("layer", "exact", "uniform p", "p / 10", _uniform)
    r = run_case(case, 400, seed=3)
    # the same seeds by hand: SeedSequence([seed, 0]) for the null, ([seed, 1000]) for effect
    null = [np.random.default_rng(s).random() for s in np.random.SeedSequence([3, 0]).spawn(400)]
    eff = [np.random.default_rng(s).random() / 10
           for s in np.random.SeedSequence([3, 1000]).spawn(400)]  # fmt: skip
    assert r.size == np.mean(np.asarray(null) < 0.05)
    assert r.power == np.mean(np.asarray(eff) < 0.05)
    assert 0.02 <= r.size <= 0.08 and r.calibrated
    assert 0.45 <= r.power <= 0.55  # P(u < 0.5)
    assert r.size_ci_low < r.size < r.size_ci_high
    # a test that never rejects is not calibrated, nor one that rejects too often
    never = run_case(NullCase("l", "never", "", "", lambda rng, e: 1.0), 50, power=False)
    assert never.size == 0.0 and not never.calibrated and math.isnan(never.power)
    always = run_case(NullCase("l", "a", "", "", lambda rng, e: 0.01), 50, power=False)
    assert always.size == 1.0 and not always.calibrated


def test_bad_p_values_and_runs_are_errors() -> None:
    with pytest.raises(ValueError, match="returned p = nan"):
        run_case(NullCase("l", "t", "", "", lambda rng, e: math.nan), 5)
    with pytest.raises(ValueError, match=r"returned p = 1.5, not in \[0, 1\]"):
        run_case(NullCase("l", "t", "", "", lambda rng, e: 1.5), 5)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        run_case(NullCase("l", "t", "", "", _uniform), 0)


def test_calibration_table_columns() -> None:
    table = calibration_table([NullCase("a", "b", "c", "d", _uniform)], 20)
    assert list(table.columns) == [
        "layer", "test", "null", "effect", "runs", "size", "size_ci_low", "size_ci_high",
        "power", "conservative", "calibrated", "seconds",
    ]  # fmt: skip
    assert table["runs"].tolist() == [20]


def test_a_conservative_case_is_calibrated_below_the_band_but_not_above() -> None:
    low = NullCase("l", "t", "", "", lambda rng, e: 1.0, conservative=True)
    assert run_case(low, 50, power=False).calibrated  # size 0: conservative, fine
    high = NullCase("l", "t", "", "", lambda rng, e: 0.01, conservative=True)
    assert not run_case(high, 50, power=False).calibrated


def test_ar1_has_its_persistence_and_unit_variance() -> None:
    x = ar1(100_000, 0.98, np.random.default_rng(1))
    assert np.corrcoef(x[1:], x[:-1])[0, 1] == pytest.approx(0.98, abs=0.005)
    assert x.std() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="phi must be in"):
        ar1(10, 1.0, np.random.default_rng(0))


def test_persistent_filter_approves_the_share_and_persists_by_date() -> None:
    days = np.repeat(np.arange(1000), 2)  # two trades a day
    keep = persistent_filter(days, 0.6, np.random.default_rng(0))
    assert keep.sum() == 1200
    # trades of the same day almost always agree; consecutive days mostly do
    assert (keep[0::2] == keep[1::2]).mean() > 0.99
    same_next_day = (keep[0:-2:2] == keep[2::2]).mean()
    iid = persistent_filter(days, 0.6, np.random.default_rng(0), phi=0.0)
    assert same_next_day > 0.9 > (iid[0:-2:2] == iid[2::2]).mean()
    with pytest.raises(ValueError, match="share must be in"):
        persistent_filter(days, 1.0, np.random.default_rng(0))


def test_circular_shift_and_regime_path_keep_what_they_claim() -> None:
    rng = np.random.default_rng(5)
    v = np.arange(10)
    shifted = circular_shift(v, rng)
    assert sorted(shifted) == list(v) and not np.array_equal(shifted, v)
    assert np.all(np.diff(shifted) % 10 == 1)  # still consecutive, rotated
    labels = np.array(list("aaabbbbbccaaaaaaab"))
    lab, length = spells(labels)
    assert lab.tolist() == ["a", "b", "c", "a", "b"] and length.tolist() == [3, 5, 2, 7, 1]
    path = regime_path(labels, rng)
    assert len(path) == len(labels)
    # every spell of the path (but the last, cut at the end) is a real (label, duration) pair
    p_lab, p_len = spells(path)
    real = set(zip(lab.tolist(), length.tolist(), strict=True))
    for pair in list(zip(p_lab.tolist(), p_len.tolist(), strict=True))[:-1]:
        # two drawn spells of the same label may touch: then their durations add up
        assert pair in real or pair[1] in {a + b for (la, a) in real for (lb, b) in real
                                           if la == lb == pair[0]}  # fmt: skip


def test_the_published_table_covers_every_case_and_each_is_calibrated() -> None:
    """The benchmark's committed table names every verdict test the package simulates, with
    enough runs for the 2-8 % band to mean something, each within it and with power; a new case
    without a new benchmark run fails here."""
    table = published().table
    assert RESULTS.is_file() and RESULTS.parent.name == "nulls"  # package data
    expected = {(c.layer, c.test) for c in all_cases()}
    assert set(zip(table["layer"], table["test"], strict=True)) == expected
    assert (table["runs"] >= 500).all()
    lo, hi = SIZE_BAND
    declared = {(c.layer, c.test): c.conservative for c in all_cases()}
    flags = [declared[key] for key in zip(table["layer"], table["test"], strict=True)]
    assert table["conservative"].tolist() == flags  # as the cases declare it
    on = table[[not f for f in flags]]
    assert on["size"].between(lo, hi).all(), on.loc[~on["size"].between(lo, hi)]
    assert (table["size"] <= hi).all()  # conservative cases: at most the upper end
    assert table["calibrated"].all()
    assert (table["power"] > table["size"]).all()


def test_the_page_display_puts_the_numbers_first() -> None:
    shown = published("Tuning-run attribution").display()
    assert list(shown.columns) == [
        "test", "size", "size 95% CI", "power", "runs", "calibrated",
    ]  # fmt: skip
    assert shown["test"].str.startswith("uplift vs baseline").all()
    assert "(" not in shown["test"].iloc[0]  # the method's parenthesis left to the docs
    assert set(shown["calibrated"]) <= {"yes", "yes (conservative)", "no"}
    full = published("Experiment attribution").display()
    assert "yes (conservative)" in set(full["calibrated"])  # the 16-configuration selection


def test_missing_table_and_round_trip(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope.json: no null-calibration results; run"):
        published(path=tmp_path / "nope.json")
    table = calibration_table([NullCase("a", "b", "c", "d", _uniform)], 20)
    written = write_published(table, date="2026-01-01", commit="abc", machine="m",
                              path=tmp_path / "t.json")  # fmt: skip
    back = published("a", path=written)
    assert back.measured == "2026-01-01 · commit abc · m"
    assert back.table["size"].tolist() == table["size"].tolist()
    assert published("other", path=written).table.empty
