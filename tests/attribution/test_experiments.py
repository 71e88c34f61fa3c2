"""Experiment attribution (seed 001): tagging by hand, best config per regime with the
runner-up test, the learned-config file, and the dependency-light selector."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.attribution import experiments as ex
from research.attribution.selector import RegimeConfigSelector, vix_trend_regime

DATES = pd.bdate_range("2021-01-04", periods=20)


def _labels() -> pd.DataFrame:
    regimes = ["A"] * 12 + ["B"] * 8
    return pd.DataFrame({"date": DATES, "symbol": "SPX", "regime": regimes})


def _exp(eid: str, start: int, end: int, config: str, pnl: float, **extra: object) -> dict:
    return {
        "experiment_id": eid,
        "start": DATES[start],
        "end": DATES[end],
        "symbol": "SPX",
        "config_name": config,
        "param_stop": {"c1": 1.0, "c2": 2.0, "c3": 3.0}[config],
        "pnl_pct": pnl,
        "win_rate": 0.6,
        "trades": 10,
        **extra,
    }


def test_tagging_by_hand() -> None:
    e = pd.DataFrame([_exp("E1", 0, 9, "c1", 1.0), _exp("E2", 8, 19, "c1", 1.0)])
    iv = pd.DataFrame({"date": DATES, "symbol": "SPX", "iv": np.linspace(0.10, 0.29, 20)})
    markov = pd.DataFrame(
        {
            "date": DATES,
            "symbol": "SPX",
            "trend_dim": ["up"] * 10 + ["down"] * 10,
            "prob_state0": 0.75,
            "prob_state1": 0.25,
        }
    )
    t = ex.tag_experiments(e, _labels(), iv, markov).set_index("experiment_id")
    assert t.loc["E1", "dominant_regime"] == "A" and t.loc["E1", "regime_days"] == 10
    assert json.loads(t.loc["E1", "regime_breakdown"]) == {"A": 1.0}
    # E2: days 8..19 = 4 of A, 8 of B
    assert t.loc["E2", "dominant_regime"] == "B"
    assert json.loads(t.loc["E2", "regime_breakdown"]) == {"A": 0.3333, "B": 0.6667}
    assert t.loc["E1", "avg_vix"] == pytest.approx(np.linspace(10, 29, 20)[:10].mean())
    assert t.loc["E2", "avg_hmm_trend"] == pytest.approx((2 * 1 - 10) / 12)
    assert t.loc["E1", "avg_hmm_vol"] == pytest.approx(0.25)
    # the entry regime: the label on the start day (E2 starts on day 8, in A, though B dominates)
    assert t.loc["E1", "entry_regime"] == "A" and t.loc["E2", "entry_regime"] == "A"
    assert t.loc["E2", "entry_date"] == DATES[8]


def test_the_entry_regime_is_known_at_the_start() -> None:
    """The last labelled day on or before ``start``: a start on a weekend takes Friday's label; a
    label change after the start (even on the next day) leaves it as it was; a start before the
    first label has none."""
    e = pd.DataFrame(
        [
            _exp("E1", 8, 19, "c1", 1.0),
            _exp("E2", 11, 19, "c1", 1.0),  # day 11: the last A day
            _exp("E3", 0, 5, "c1", 1.0),
        ]
    )
    e.loc[2, "start"] = DATES[0] - pd.Timedelta(days=3)  # the Friday before the first label
    sat = _exp("E4", 0, 19, "c1", 1.0)
    sat["start"] = DATES[4] + pd.Timedelta(days=1)  # a Saturday: Friday (day 4) is known
    e = pd.concat([e, pd.DataFrame([sat])], ignore_index=True)
    labels = _labels()
    base = ex.tag_experiments(e, labels).set_index("experiment_id")
    entry = base["entry_regime"]
    assert entry[["E1", "E2", "E4"]].tolist() == ["A", "A", "A"] and pd.isna(entry["E3"])
    assert base.loc["E4", "entry_date"] == DATES[4] and pd.isna(base.loc["E3", "entry_date"])
    # relabel everything after each start: no entry regime changes (no look-ahead)
    for eid, row in base.iterrows():
        after = labels.assign(regime=np.where(labels["date"] > row["start"], "Z", labels["regime"]))
        got = ex.tag_experiments(e, after).set_index("experiment_id")
        same = got.loc[eid, "entry_regime"] == row["entry_regime"]
        assert same or (pd.isna(row["entry_regime"]) and pd.isna(got.loc[eid, "entry_regime"]))
    # relabelling the start day itself does change it
    moved = labels.assign(regime=np.where(labels["date"] == DATES[11], "Z", labels["regime"]))
    assert ex.tag_experiments(e, moved).set_index("experiment_id").loc["E2", "entry_regime"] == "Z"


def test_experiments_outside_the_data_are_named() -> None:
    e = pd.DataFrame([_exp("E9", 0, 3, "c1", 1.0)]).assign(
        start=pd.Timestamp("2030-01-01"), end=pd.Timestamp("2030-06-30")
    )
    with pytest.raises(ValueError, match=r"1 experiments have no labelled market day.*E9"):
        ex.tag_experiments(e, _labels())


def _year_labels() -> pd.DataFrame:
    """Every business day from December 1999 to 2020 in regime A (SPX)."""
    days = pd.bdate_range("1999-12-01", "2020-12-31")
    return pd.DataFrame({"date": days, "symbol": "SPX", "regime": "A"})


def _yearly(eid: str, first: int, last: int, config: str, pnl: float) -> dict:
    """An experiment from 1 January of ``first`` to 31 December of ``last``."""
    return {
        **_exp(eid, 0, 0, config, pnl),
        "start": pd.Timestamp(f"{first}-01-01"),
        "end": pd.Timestamp(f"{last}-12-31"),
    }


def _grid(width: int = 0) -> pd.DataFrame:
    """Six windows starting on 1 January 2000, 2003, ..., 2015 (all in regime A), ``width`` + 1
    years long: c1 beats c2 on every window by 2, c3 has too few runs. With ``width`` 0 two full
    years lie between consecutive windows (six independent blocks); with ``width`` 1 one year
    (2000-01, 2003-04, ...: one block under the two-year rule — six under the former one-year
    rule); with ``width`` 2 they touch (one block under either); with ``width`` 3 they overlap
    (2000-03, 2003-06, ...: one block under any rule)."""
    rows = []
    for w in range(6):
        first = 2000 + 3 * w
        rows.append(_yearly(f"a{w}", first, first + width, "c1", 10.0 + w))
        rows.append(_yearly(f"b{w}", first, first + width, "c2", 8.0 + w))
    rows.append(_yearly("c0", 2000, 2000, "c3", 99.0))
    return ex.tag_experiments(pd.DataFrame(rows), _year_labels())


def test_best_by_regime_and_the_exact_block_test() -> None:
    from scipy import stats

    best = ex.best_by_regime(_grid())
    row = best.iloc[0]
    assert row["regime"] == "A" and row["best_config"] == "c1" and row["runner_up"] == "c2"
    assert row["metric_mean"] == pytest.approx(12.5) and row["experiments"] == 6
    assert row["diff_vs_runner_up"] == pytest.approx(2.0)
    assert (row["pairs"], row["blocks"], row["grouping"]) == (6, 6, "entry_regime")
    # six independent blocks, all +2: of the 2**6 sign patterns only all-plus and all-minus
    # reach |mean| >= 2 -> p = 2 / 64, the smallest six blocks allow
    assert row["p_vs_runner_up"] == pytest.approx(2 / 64) and row["min_p"] == pytest.approx(2 / 64)
    assert row["beats_runner_up"]
    # six single-window blocks: the cluster-robust interval is the one-sample t-interval
    ci = stats.ttest_1samp(np.arange(10.0, 16.0), 0.0).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["key_settings"] == "stop=1"  # c3's 99 % never counts: one experiment only
    assert not row["loses_money"]
    # c1 and c2 compared (c3 has one experiment), neither lost money; the test could reject
    assert (row["configs"], row["configs_losing"], row["tested"]) == (2, 0, True)
    assert row["evidence"] == "beats the runner-up (p = 0.0312, 6 independent blocks)"


def test_overlapping_windows_are_one_block_and_cannot_be_significant() -> None:
    chained = ex.best_by_regime(_grid(width=3)).iloc[0]  # 2000-03, 2003-06, ... share days
    assert (chained["pairs"], chained["blocks"]) == (6, 1)
    assert chained["p_vs_runner_up"] == 1.0 and not chained["beats_runner_up"]
    assert np.isnan(chained["ci_low"])  # one block: no interval
    assert not chained["tested"] and chained["evidence"] == (
        "untested: cannot reject with 1 independent block (minimum p 1); a verdict needs at "
        "least 6 blocks, i.e. at least 34 years of 4-year windows two years apart"
    )
    assert ex.best_by_regime(_grid(width=3), gap_days=0).iloc[0]["blocks"] == 1


def test_windows_less_than_two_years_apart_are_one_block() -> None:
    """Two-year windows 2000-01, 2003-04, ..., 2015-16 share no day and have a full year
    between them, but a year's conditions persist beyond the next year (yearly AR(1)): one
    block under the two-year rule, so the comparison is untested — while the former one-year
    rule (and joining only overlapping windows, before it) counted six independent blocks and
    a significant win (p = 2 / 64) out of data whose blocks are dependent."""
    one_year = ex.best_by_regime(_grid(width=1)).iloc[0]
    assert (one_year["pairs"], one_year["blocks"], one_year["min_p"]) == (6, 1, 1.0)
    assert not one_year["tested"] and not one_year["beats_runner_up"]
    assert one_year["evidence"] == (
        "untested: cannot reject with 1 independent block (minimum p 1); a verdict needs at "
        "least 6 blocks, i.e. at least 22 years of 2-year windows two years apart"
    )
    for former in (365, 0):
        before = ex.best_by_regime(_grid(width=1), gap_days=former).iloc[0]
        assert before["blocks"] == 6 and before["beats_runner_up"], former
        assert before["p_vs_runner_up"] == pytest.approx(2 / 64)
        assert before["evidence"] == "beats the runner-up (p = 0.0312, 6 independent blocks)"
    # two full years between the windows (2000, 2003, ...): six blocks, the test can reject
    apart = ex.best_by_regime(_grid(width=0)).iloc[0]
    assert apart["blocks"] == 6 and apart["p_vs_runner_up"] == pytest.approx(2 / 64)
    touching = ex.best_by_regime(_grid(width=2), gap_days=365).iloc[0]
    assert touching["blocks"] == 1  # 2000-02, 2003-05: no year between them
    best = ex.best_by_regime(_grid(width=1))
    assert best.attrs["gap_days"] == ex.BLOCK_GAP_DAYS == 730 and best.attrs["blocks_needed"] == 6


def test_blocks_need_two_full_years_between_them() -> None:
    """The edge of the rule, worked by hand: windows share a block when fewer than 730 days lie
    strictly between one's end and the next's start (they are at most 730 days apart),
    whatever their symbol, and through a chain."""
    d = pd.Timestamp
    first = (d("2000-01-01"), d("2001-12-31"))
    for apart, same in (
        (1, True),  # touching: 2002-01-01
        (366, True),  # all of 2002 between them: separate under the former one-year rule
        (700, True),
        (730, True),  # 2003-12-31: 729 days between them
        (731, False),  # 2004-01-01: all of 2002 and 2003 between them
    ):
        nxt = first[1] + pd.Timedelta(days=apart)
        assert (nxt - first[1]).days == apart and (nxt == d("2004-01-01")) is (apart == 731)
        blocks = ex.overlap_blocks([first[0], nxt], [first[1], nxt + pd.Timedelta(days=1)])
        assert (blocks.tolist() == [0, 0]) is same, apart
        former = ex.overlap_blocks(
            [first[0], nxt], [first[1], nxt + pd.Timedelta(days=1)], gap_days=365
        )
        assert (former.tolist() == [0, 0]) is (apart <= 365), apart
    # the overlap-only rule (gap_days=0) joins only windows that share a day
    for start, want in (("2002-01-01", [0, 1]), ("2001-12-31", [0, 0])):
        s, e = [first[0], d(start)], [first[1], d("2002-06-30")]
        assert ex.overlap_blocks(s, e, gap_days=0).tolist() == want, start
    # mid-year ends, another symbol's window in between joining a chain: one block of three
    starts = [d("2000-01-01"), d("2001-04-01"), d("2002-03-01"), d("2005-01-01")]
    ends = [d("2000-06-30"), d("2001-05-31"), d("2002-12-31"), d("2005-12-31")]
    # 2000-06-30 -> 2001-04-01: 274 days between; 2001-05-31 -> 2002-03-01: 273; then 731
    assert (starts[3] - ends[2]).days - 1 == 731
    assert ex.overlap_blocks(starts, ends).tolist() == [0, 0, 0, 1]
    assert ex.overlap_blocks(starts, ends, gap_days=0).tolist() == [0, 1, 2, 3]
    # the block test uses the same blocks: two blocks here, so p = 2 / 4 at best
    test = ex.paired_block_test([1.0, 2.0, 3.0, 4.0], starts, ends)
    assert (test.blocks, test.min_p, test.p) == (2, 0.5, 0.5)


def test_blocks_join_overlaps_across_symbols_and_chains() -> None:
    d = pd.to_datetime
    starts = d(["2000-01-01", "2001-01-01", "2002-01-01", "2007-01-01", "2007-01-01", "2011-01-01"])
    ends = d(["2001-12-31", "2002-12-31", "2003-12-31", "2008-12-31", "2008-12-31", "2011-06-30"])
    # three chained SPX windows 2000-03; SPX and IXIC on the same 2007-08 window; one alone
    # (2009 and 2010 between: two full years)
    assert ex.overlap_blocks(starts, ends).tolist() == [0, 0, 0, 1, 1, 2]
    test = ex.paired_block_test([1.0, 3.0, 2.0, 4.0, 6.0, 1.0], starts, ends)
    assert (test.pairs, test.blocks, test.min_p) == (6, 3, 0.25)
    # block means 2, 5, 1: the 8 sign patterns give |mean| >= 8/3 only for +++ and ---
    assert test.p == pytest.approx(0.25) and test.mean_diff == pytest.approx(17 / 6)
    # five pairs in two blocks, all positive: an exact test cannot go below 2 / 4
    five = ex.paired_block_test([5.0, 4.0, 6.0, 7.0, 5.0], starts[:5], ends[:5])
    assert five.blocks == 2 and five.p == pytest.approx(0.5) == five.min_p


def test_the_block_test_agrees_with_a_hand_enumeration() -> None:
    import itertools

    rng = np.random.default_rng(3)
    starts = pd.date_range("2000-01-01", periods=9, freq="1000D")
    ends = starts + pd.Timedelta(days=200)  # 799 days between windows: nine blocks
    d = rng.normal(0.4, 1.0, 9)
    assert ex.overlap_blocks(starts, ends).tolist() == list(range(9))
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=9)))
    want = float(np.mean(np.abs((flips * d).mean(axis=1)) >= abs(d.mean()) - 1e-12))
    assert ex.paired_block_test(d, starts, ends).p == pytest.approx(want)


def test_no_difference_is_not_called_a_win() -> None:
    g = _grid()
    g.loc[g["config_name"] == "c2", "pnl_pct"] = g.loc[
        g["config_name"] == "c1", "pnl_pct"
    ].to_numpy() + np.array([-3, 3, -3, 3, -3, 2.5])
    best = ex.best_by_regime(g)
    # c1 wins by 1/12 on average: the sign patterns as extreme are those whose flipped
    # differences average >= 1/12 in size
    assert not best.iloc[0]["beats_runner_up"] and best.iloc[0]["p_vs_runner_up"] > 0.5


def test_entry_and_dominant_groupings_differ() -> None:
    """Windows from day 10 to 19 on five markets: they start in A (what a bot knows) but most of
    their days are B (known afterwards). The default groups them under A; the hindsight grouping
    under B, and says so."""
    labels = pd.concat([_labels().assign(symbol=f"S{k}") for k in range(5)], ignore_index=True)
    rows = []
    for k in range(5):
        rows.append({**_exp(f"a{k}", 10, 19, "c1", 5.0 + k), "symbol": f"S{k}"})
        rows.append({**_exp(f"b{k}", 10, 19, "c2", 4.0 + k), "symbol": f"S{k}"})
    tagged = ex.tag_experiments(pd.DataFrame(rows), labels)
    assert set(tagged["entry_regime"]) == {"A"} and set(tagged["dominant_regime"]) == {"B"}
    entry = ex.best_by_regime(tagged)
    hindsight = ex.best_by_regime(tagged, by="dominant_regime")
    assert entry["regime"].tolist() == ["A"] and entry.attrs["grouping"] == "entry_regime"
    assert hindsight["regime"].tolist() == ["B"] and hindsight["grouping"].tolist() == [
        "dominant_regime"
    ]
    # the same dates on five markets: one block, p = 1
    assert entry.iloc[0]["blocks"] == 1 and entry.iloc[0]["p_vs_runner_up"] == 1.0
    learned = ex.learned_configs(tagged, hindsight)
    assert learned["grouping"] == "dominant_regime" and "hindsight" in learned["grouping_text"]
    assert learned["regimes"]["B"]["source_experiments"] == [f"a{k}" for k in range(5)]


def test_four_blocks_are_untested_in_words() -> None:
    """Four independent blocks: no p-value can fall below 2 / 2**4 = 0.125, so a p of 0.125 is
    not evidence against the best — the comparison is untested, and the row says so."""
    g = _grid()
    four = g[~g["experiment_id"].isin(["a4", "b4", "a5", "b5"])]
    row = ex.best_by_regime(four, min_experiments=4).iloc[0]
    assert (row["blocks"], row["min_p"], row["p_vs_runner_up"]) == (4, 0.125, 0.125)
    assert not row["tested"] and not row["beats_runner_up"]
    # one-year windows: 6 windows and 5 gaps of two years, 6 + 5 x 2 = 16 years
    assert row["evidence"] == (
        "untested: cannot reject with 4 independent blocks (minimum p 0.125); a verdict needs at "
        "least 6 blocks, i.e. at least 16 years of 1-year windows two years apart"
    )
    # two-year windows: 6 x 2 + 5 x 2 = 22 years; five blocks (20 years) still cannot reject
    assert ex.evidence_text(0.125, 1.0, 4, 0.125, window_years=2.0) == (
        "untested: cannot reject with 4 independent blocks (minimum p 0.125); a verdict needs at "
        "least 6 blocks, i.e. at least 22 years of 2-year windows two years apart"
    )
    assert ex.evidence_text(0.0625, 1.0, 5, 2 / 32) == (
        "untested: cannot reject with 5 independent blocks (minimum p 0.0625); a verdict needs at "
        "least 6 blocks"
    )
    assert ex.evidence_text(0.5, 1.0, 2, 0.5, window_years=2.0, gap_days=365) == (
        "untested: cannot reject with 2 independent blocks (minimum p 0.5); a verdict needs at "
        "least 6 blocks, i.e. at least 17 years of 2-year windows a year apart"
    )
    # the fewest blocks whose smallest p falls below alpha: 2 / 2**k < alpha
    assert [ex.blocks_needed(a) for a in (0.2, 0.1, 0.05, 0.01)] == [4, 5, 6, 8]
    assert ex.evidence_text(0.0625, 1.0, 5, 2 / 32, alpha=0.1).startswith("beats the runner-up")
    assert ex.evidence_text(0.01, -1.0, 7, 1 / 64).startswith("the runner-up does better")
    assert ex.evidence_text(0.4, 1.0, 7, 1 / 64) == (
        "not shown (p = 0.4, 7 independent blocks; minimum p 0.0156)"
    )


def test_a_result_without_spread_has_no_interval() -> None:
    """The best scores 20 on every window: its mean has no measured uncertainty — no interval
    (NaN) rather than a zero-width one."""
    g = _grid()
    g.loc[g["config_name"] == "c1", "pnl_pct"] = 20.0
    row = ex.best_by_regime(g).iloc[0]
    assert row["best_config"] == "c1" and row["metric_mean"] == 20.0
    assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])


def test_learned_configs_needs_a_known_grouping() -> None:
    g = _grid()
    best = ex.best_by_regime(g)
    bare = pd.DataFrame(best.drop(columns="grouping"))  # a copy without attrs or column
    bare.attrs = {}
    with pytest.raises(ValueError, match=r"best names no grouping .*best_by_regime returned"):
        ex.learned_configs(g, bare)
    odd = best.assign(grouping="exit_regime")
    odd.attrs = {}
    with pytest.raises(ValueError, match=r"best's grouping must be one of .* got 'exit_regime'"):
        ex.learned_configs(g, odd)
    clash = best.copy()
    clash.attrs["grouping"] = "dominant_regime"
    with pytest.raises(ValueError, match=r"attrs\['grouping'\] is 'dominant_regime' but its"):
        ex.learned_configs(g, clash)
    mixed = pd.concat([best, best.assign(grouping="dominant_regime")], ignore_index=True)
    mixed.attrs = {}
    with pytest.raises(ValueError, match=r"best mixes groupings"):
        ex.learned_configs(g, mixed)
    # the column alone is enough
    only_column = best.copy()
    only_column.attrs = {}
    assert ex.learned_configs(g, only_column)["grouping"] == "entry_regime"


def test_losing_words_are_true_for_any_metric() -> None:
    """Ranked by sharpe, the best (c1) loses money while c2 makes money: the export and the
    selector say how many compared configurations lost — not "every one"."""
    g = _grid()
    g["sharpe"] = np.where(g["config_name"] == "c1", 2.0, 1.0)
    g["pnl_pct"] = np.where(g["config_name"] == "c1", -5.0, 5.0) + 0.1 * np.arange(len(g))
    best = ex.best_by_regime(g, metric="sharpe")
    row = best.iloc[0]
    assert row["best_config"] == "c1" and row["loses_money"]
    assert (row["configs"], row["configs_losing"]) == (2, 1)
    assert ex.losing_text(1, 2) == "1 of the 2 configurations compared there lost money on average"
    assert ex.losing_text(2, 2) == (
        "every one of the 2 configurations compared there lost money on average"
    )
    assert "every configuration compared there lost" not in ex.LOSING_POLICY
    learned = ex.learned_configs(g, best, metric="sharpe")
    evidence = learned["regimes"]["A"]["evidence"]
    assert (evidence["configs"], evidence["configs_losing"]) == (2, 1)
    reason = RegimeConfigSelector(learned).select("A").reason
    assert "(1 of the 2 configurations compared there lost money)" in reason
    assert "so did every configuration" not in reason
    # ranked by pnl_pct, the best losing means every compared configuration lost
    g2 = g.assign(pnl_pct=lambda f: f["pnl_pct"] - 30)
    learned2 = ex.learned_configs(g2, ex.best_by_regime(g2))
    assert (
        "so did every configuration compared there"
        in RegimeConfigSelector(learned2).select("A").reason
    )


def test_the_section_text_says_untested_and_counts_losers() -> None:
    from typing import cast

    from research.attribution.service import ExperimentSection, ExperimentStudy
    from research.data.overview import MarketData

    g = _grid()
    four = g[~g["experiment_id"].isin(["a4", "b4", "a5", "b5"])]
    four = four.assign(pnl_pct=four["pnl_pct"] - 20)
    best = ex.best_by_regime(four, min_experiments=4)
    study = ExperimentStudy(four, cast(MarketData, None), "toy experiments", "toy")
    section = ExperimentSection(study, best, ex.learned_configs(four, best), metric="pnl_pct")
    text = section.text()
    assert "windows that overlap or lie less than two years apart, across symbols too" in text
    assert "with at most 4 blocks in a regime no p-value can fall below 0.125" in text
    assert "too few independent blocks to test, not evidence against the best; a verdict " in text
    assert "untested: cannot reject with 4 independent blocks (minimum p 0.125); a verdict" in text
    assert "persist" not in text  # no estimate given: no sentence
    assert "In 1 of them (A) even the best loses money on average (A: mean pnl_pct" in text
    assert "every one of the 2 configurations compared there lost money on average" in text
    by_sharpe = ExperimentSection(study, best, None, metric="sharpe").text()
    assert "In 1 of them (A) the best by `sharpe` loses money on average" in by_sharpe
    summary = section.summary()
    assert summary["experiments_untested"] == ["A"]
    assert summary["learned_configs"][0]["evidence"].startswith("untested: cannot reject")
    assert summary["experiments_blocks_needed"] == 6 and summary["experiments_persistence"] is None
    estimate = ex.WindowPersistence(0.35, 0.5, 0.6, 0.17, 240, 19)
    with_phi = ExperimentSection(
        study, best, ex.learned_configs(four, best), metric="pnl_pct", persistence=estimate
    )
    # phi = 0.5 (the larger estimate): 0.5**3 * 1.5 / 2 two years apart, 0.5**2 * 1.5 / 2 one
    assert (
        "yearly persistence phi = 0.35 (matched on the median lag-1 autocorrelation 0.60 of 240 "
        "configuration-pair differences over up to 19 consecutive windows; 0.50 matched on the "
        "lag-2 autocorrelation 0.17). That is why blocks need two full years between them: at "
        "phi = 0.50, two-year windows two years apart correlate 0.094 (a year apart 0.19)."
    ) in with_phi.text()
    assert with_phi.summary()["experiments_persistence"] == {
        "phi": 0.35, "phi_lag2": 0.5, "acf1": 0.6, "acf2": 0.17, "series": 240, "windows": 19
    }  # fmt: skip


def test_bad_options_are_named() -> None:
    g = _grid()
    s, e = g["start"].to_numpy()[:2], g["end"].to_numpy()[:2]
    for kwargs, message in (
        ({"max_exact_blocks": 0}, r"max_exact_blocks must be an integer >= 1, got 0"),
        ({"max_exact_blocks": 2.5}, r"max_exact_blocks must be an integer >= 1, got 2.5"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"gap_days": -1}, r"gap_days must be an integer >= 0, got -1"),
        ({"gap_days": 365.0}, r"gap_days must be an integer >= 0, got 365.0"),
    ):
        with pytest.raises(ValueError, match=message):
            ex.paired_block_test([1.0, 2.0], s, e, **kwargs)
    with pytest.raises(ValueError, match=r"gap_days must be an integer >= 0, got True"):
        ex.overlap_blocks(s, e, gap_days=True)
    with pytest.raises(ValueError, match=r"diffs, starts and ends need the same length"):
        ex.paired_block_test([1.0], s, e)
    for kwargs, message in (
        ({"min_experiments": 0}, r"min_experiments must be an integer >= 1, got 0"),
        ({"seed": -3}, r"seed must be an integer >= 0, got -3"),
        ({"alpha": 1.0}, r"alpha must be a number in \(0, 1\), got 1.0"),
        ({"gap_days": -5}, r"gap_days must be an integer >= 0, got -5"),
    ):
        with pytest.raises(ValueError, match=message):
            ex.best_by_regime(g, **kwargs)


def test_bad_input() -> None:
    g = _grid()
    with pytest.raises(ValueError, match="unknown metric 'sortino'"):
        ex.best_by_regime(g, metric="sortino")
    with pytest.raises(ValueError, match=r"1 experiments have zero trades \(e.g. \['a0'\]\)"):
        ex.best_by_regime(g.assign(trades=np.where(g["experiment_id"] == "a0", 0, 10)))
    with pytest.raises(ValueError, match="no regime \\(entry_regime\\) has two configurations"):
        ex.best_by_regime(g, min_experiments=7)
    with pytest.raises(ValueError, match="by must be one of .* got 'start_regime'"):
        ex.best_by_regime(g, by="start_regime")


def test_learned_configs_and_the_selector(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    g = _grid()
    best = ex.best_by_regime(g)
    learned = ex.learned_configs(g, best, default="c2", model="toy")
    assert learned["grouping"] == "entry_regime" and learned["losing_regimes"] == []
    assert learned["regimes"]["A"]["params"] == {"stop": 1.0}
    assert learned["regimes"]["A"]["source_experiments"] == [f"a{w}" for w in range(6)]
    assert learned["regimes"]["A"]["served"] == "learned"
    assert learned["default"]["config"] == "c2" and learned["default"]["params"] == {"stop": 2.0}
    evidence = learned["regimes"]["A"]["evidence"]
    assert evidence["loses_money"] is False and evidence["blocks"] == 6  # mean 12.5
    # the same grid shifted down by 20: c1 is still best in A, but loses money on average
    g_losing = g.assign(pnl_pct=g["pnl_pct"] - 20)
    best_losing = ex.best_by_regime(g_losing)
    losing = ex.learned_configs(g_losing, best_losing, default="c2", model="toy")
    assert losing["regimes"]["A"]["config"] == "c1"
    assert losing["regimes"]["A"]["evidence"]["mean"] == pytest.approx(-7.5)
    assert losing["regimes"]["A"]["evidence"]["loses_money"] is True
    assert losing["regimes"]["A"]["served"] == "stand aside" and losing["losing_regimes"] == ["A"]
    # every configuration compared in A lost money, the default (c2) too: mean -9.5 there
    assert losing["regimes"]["A"]["evidence"]["default_pnl_pct"] == pytest.approx(-9.5)
    assert losing["default"]["evidence"]["loses_money"] is True
    stand = RegimeConfigSelector(losing)
    assert stand.config_for("A") is None and stand.select("A").learned_loses_money
    assert "config_for / get_config return None" in stand.select("A").reason
    # the documented way to keep the old contract: always a dict
    keep = RegimeConfigSelector(losing, on_losing="default")
    assert all(keep.config_for(r) is not None for r in ("A", "NO_SUCH_REGIME"))
    fallback = RegimeConfigSelector(losing, on_losing="default").select("A")
    assert fallback.params == {"stop": 2.0} and fallback.loses_money
    assert "it lost money in A too (mean pnl_pct -9.50)" in fallback.reason
    path = tmp_path / "learned.json"
    path.write_text(json.dumps(learned, default=float))
    sel = RegimeConfigSelector(path)
    sel.regime_configs["LOW_VOL_BULLISH"] = {"stop": 7.0}
    rising = list(np.linspace(100, 110, 50))
    with caplog.at_level(logging.INFO, logger="research.regime_selector"):
        assert sel.get_config(13.0, rising) == {"stop": 7.0}
        assert sel.get_config(13.5, rising) == {"stop": 7.0}  # same regime: no new log line
        assert sel.get_config(40.0, rising) == {"stop": 2.0}  # nothing learned: the default
    switches = [r.getMessage() for r in caplog.records]
    assert switches == [
        "[REGIME] Changed: None -> LOW_VOL_BULLISH (learned config)",
        "[REGIME] Changed: LOW_VOL_BULLISH -> EXTREME_VOL_BULLISH (default config)",
    ]


def _losing_export() -> dict:
    """A learned-config export: LOW_VOL_BULLISH learned and losing (the default lost there too),
    NORMAL_VOL_NEUTRAL learned and winning, a default that wins overall."""
    return {
        "regimes": {
            "LOW_VOL_BULLISH": {
                "params": {"stop": 7.0},
                "evidence": {"loses_money": True, "default_pnl_pct": -4.0},
            },
            "NORMAL_VOL_NEUTRAL": {"params": {"stop": 3.0}, "evidence": {"loses_money": False}},
        },
        "default": {"params": {"stop": 2.0}, "evidence": {"loses_money": False}},
    }


def test_the_selector_never_serves_a_losing_config_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rising = list(np.linspace(100, 110, 50))  # BULLISH
    sel = RegimeConfigSelector(_losing_export())
    with caplog.at_level(logging.INFO, logger="research.regime_selector"):
        chosen = sel.get_selection(13.0, rising)  # LOW_VOL_BULLISH
        assert sel.get_config(13.0, rising) is None  # the default policy: stand aside
    assert chosen.params is None and chosen.source == "stand aside"
    assert chosen.learned_loses_money and not chosen.loses_money
    assert "standing aside" in chosen.reason
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages[0] == (logging.INFO, "[REGIME] Changed: None -> LOW_VOL_BULLISH (stand aside)")
    assert messages[1][0] == logging.WARNING and "LOW_VOL_BULLISH" in messages[1][1]
    assert len(messages) == 2  # the same regime again: no new lines
    assert sel.config_for("NORMAL_VOL_NEUTRAL") == {"stop": 3.0}
    assert sel.select("NORMAL_VOL_NEUTRAL").source == "learned"
    # opting in to the default: served, flagged — it lost money in that regime too
    fallback = RegimeConfigSelector(_losing_export(), on_losing="default").select("LOW_VOL_BULLISH")
    assert fallback.params == {"stop": 2.0} and fallback.source == "default"
    assert fallback.loses_money and "lost money in LOW_VOL_BULLISH too" in fallback.reason
    # a default that never ran in the regime carries its overall flag
    export = _losing_export()
    del export["regimes"]["LOW_VOL_BULLISH"]["evidence"]["default_pnl_pct"]
    never_ran = RegimeConfigSelector(export, on_losing="default").select("LOW_VOL_BULLISH")
    assert not never_ran.loses_money
    export["default"]["evidence"]["loses_money"] = True
    flagged = RegimeConfigSelector(export, on_losing="default").select("LOW_VOL_BULLISH")
    assert flagged.loses_money and "the default itself lost money" in flagged.reason
    # opting in to the losing learned configuration
    opted = RegimeConfigSelector(_losing_export(), on_losing="learned").select("LOW_VOL_BULLISH")
    assert opted.params == {"stop": 7.0} and opted.loses_money and "opted in" in opted.reason
    with pytest.raises(ValueError, match="on_losing must be one of"):
        RegimeConfigSelector(_losing_export(), on_losing="trade")


@pytest.mark.parametrize(
    ("vix", "last", "want"),
    [
        (11.99, 100.0, "ULTRA_LOW_VOL_NEUTRAL"),
        (12.0, 103.0, "LOW_VOL_BULLISH"),  # on an edge: the bucket above
        (35.0, 96.0, "EXTREME_VOL_BEARISH"),
        (20.0, 101.9, "ELEVATED_VOL_NEUTRAL"),
    ],
)
def test_vix_trend_regime_by_hand(vix: float, last: float, want: str) -> None:
    closes = [100.0] * 49 + [last]  # SMA = (4900 + last) / 50
    assert vix_trend_regime(vix, closes) == want


def test_the_selector_imports_without_pandas() -> None:
    code = (
        "import sys; import research.attribution.selector as s; "
        "bad = [m for m in ('pandas', 'numpy', 'plotly', 'matplotlib') if m in sys.modules]; "
        "print(bad)"
    )
    # a subprocess on purpose: only a fresh interpreter shows what the import pulls into sys.modules
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def _persistent_experiments(phi: float, seed: int, configs: int = 12) -> pd.DataFrame:
    """``configs`` independent configurations on rolling two-year windows starting every year
    1960-2019 on one symbol, each window's result the sum of its two years' shocks, the shocks a
    stationary yearly AR(1) with coefficient ``phi`` per configuration."""
    rng = np.random.default_rng(seed)
    years = 61
    eps = rng.standard_normal((years, configs))
    x = np.empty_like(eps)
    x[0] = eps[0]
    for t in range(1, years):
        x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * eps[t]
    sums = x[:-1] + x[1:]  # window t: years t and t + 1
    rows = [
        {
            "experiment_id": f"w{t}-c{c}",
            "start": pd.Timestamp(f"{1960 + t}-01-01"),
            "end": pd.Timestamp(f"{1961 + t}-12-31"),
            "symbol": "SPX",
            "config_name": f"c{c}",
            "pnl_pct": float(sums[t, c]),
        }
        for t in range(years - 1)
        for c in range(configs)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_window_persistence_recovers_a_known_phi(phi: float) -> None:
    """Simulated experiments with a known yearly persistence: the estimate is within 0.1 of it
    (66 configuration pairs over 60 windows), matched on lag 1 and on lag 2; the
    autocorrelations are those of the pairs' differences, by hand."""
    e = _persistent_experiments(phi, seed=int(phi * 10))
    w = ex.window_persistence(e, reps=500)
    assert abs(w.phi - phi) < 0.1 and abs(w.phi_lag2 - phi) < 0.15, w
    assert (w.series, w.windows) == (66, 60)
    wide = e.pivot(index="start", columns="config_name", values="pnl_pct")
    d = wide["c0"] - wide["c1"]
    lag1 = [
        pd.Series(wide[a] - wide[b]).autocorr(1)
        for i, a in enumerate(wide.columns)
        for b in wide.columns[i + 1 :]
    ]
    assert w.acf1 == pytest.approx(np.median(lag1))
    assert d.autocorr(2) == pytest.approx(ex._lag_corr(d.to_numpy()[None, :], 2)[0])


def test_window_persistence_corrects_for_short_series() -> None:
    """19 two-year windows (the sample's length): the median lag-1 autocorrelation falls well
    short of the population's (1 + phi) / 2, and inverting that closed form would understate
    phi; the simulation on the same windows recovers it."""
    e = _persistent_experiments(0.5, seed=7, configs=16)
    short = e[e["start"] < pd.Timestamp("1979-01-01")]  # start years 1960-1978
    w = ex.window_persistence(short, reps=500)
    assert w.windows == 19
    assert w.acf1 < 0.7  # the population value is 0.75
    naive = 2 * w.acf1 - 1  # (1 + phi) / 2 = acf1, solved for phi
    assert naive < w.phi - 0.1 and abs(w.phi - 0.5) < 0.1, (naive, w)
    assert "yearly persistence phi = " in w.text() and "of 120 configuration-pair" in w.text()


def test_window_persistence_bad_input_is_named() -> None:
    e = _persistent_experiments(0.5, seed=1, configs=3)
    with pytest.raises(ValueError, match=r"reps must be an integer >= 100, got 50"):
        ex.window_persistence(e, reps=50)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        ex.window_persistence(e, seed=-1)
    with pytest.raises(ValueError, match=r"unknown metric 'sharpe'"):
        ex.window_persistence(e, metric="sharpe")
    with pytest.raises(ValueError, match=r"two configurations run on the same five or more"):
        ex.window_persistence(e[e["start"] < pd.Timestamp("1964-01-01")])
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\), got 0"):
        ex.blocks_needed(0)
