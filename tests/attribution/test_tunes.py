"""Regime attribution of tuning runs (seed 002), proven on hand-built frames.

What is proven, each against values counted or computed by hand in the test:

- the seed's regime key (``{schema}|{ruleset}|{trend}|{vol}|{eff}``, ``_`` for a dimension
  without a tag), its SHA-256 fingerprint, its change with the schema or ruleset, and the
  denormalised tags, all as ``attribute_tunes`` writes them (seed tests 1-4, 7);
- the window snapshot (most days per dimension, the seed's priority order on ties, a vol "no
  tag" majority gives no tag, untagged days ignored) and the entry snapshot (only tagged days
  strictly before the date: no look-ahead);
- the best run is ``leaderboard[0]``, the highest *in-sample* sharpe, and its out-of-sample
  score, parameters and run UUID fill the columns (seed test 10); null-safety (seed test 6);
- tag distance, the regime lookup and its fallback, the walk-forward uplift (history strictly
  before the OOS window, same workspace), the verdict's wording per branch, and regime drift
  (training and current shares, total variation, PSI, each alert rule, ``asof``);
- on the shipped sample, every tune is attributed and ``best_oos_score`` agrees with an
  independent pandas computation from ``data/sample/tunes.csv``.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from research.attribution import tunes as tn
from research.regimes.keys import compute_regime_key

SCHEMA = "regime_v1_1"
RULES = "default_v1"
Tags = tuple[str | None, str | None, str | None]

A: Tags = ("uptrend", "low_vol", "efficient")
B: Tags = ("downtrend", "high_vol", "noisy")
DECOY: Tags = ("flat", "high_vol", "efficient")
"""Tags carried by untagged (warm-up) days: they must never be counted."""


def _key(tags: Tags, schema: str = SCHEMA, rules: str = RULES) -> str:
    return compute_regime_key([t for t in tags if t], schema, rules)


def _labels(symbol: str, dates: pd.DatetimeIndex, tags: Sequence[Tags | None]) -> pd.DataFrame:
    """``tags`` model output: ``None`` in ``tags`` = an untagged day (null key, decoy tags)."""
    rows = []
    for d, t in zip(dates, tags, strict=True):
        shown = DECOY if t is None else t
        rows.append(
            {
                "date": d,
                "symbol": symbol,
                "trend_tag": shown[0],
                "vol_tag": shown[1],
                "efficiency_tag": shown[2],
                "regime_key": None if t is None else _key(t),
            }
        )
    return pd.DataFrame(rows)


def _run(
    tune: str,
    run: str,
    split: str,
    window: tuple[object, object],
    sharpe: float,
    *,
    a: int = 1,
    b: float = 0.5,
    baseline: bool = False,
    symbol: str = "SPX",
    ws: str = "ws1",
) -> dict:
    return {
        "tune_id": tune,
        "workspace_id": ws,
        "strategy_id": "strat",
        "run_id": run,
        "split": split,
        "window_start": pd.Timestamp(str(window[0])),
        "window_end": pd.Timestamp(str(window[1])),
        "param_a": a,
        "param_b": b,
        "sharpe": sharpe,
        "is_baseline": baseline,
        "symbol": symbol,
    }


def _tune(
    tune: str,
    is_window: tuple[object, object] | None,
    oos_window: tuple[object, object] | None,
    is_sharpe: list[float],
    oos_sharpe: list[float],
    *,
    symbol: str = "SPX",
    ws: str = "ws1",
) -> list[dict]:
    """Runs ``{tune}-R1``, ``-R2``, ... with ``param_a`` = 1, 2, ...; R1 is the baseline."""
    rows = []
    for split, window, sharpes in (("is", is_window, is_sharpe), ("oos", oos_window, oos_sharpe)):
        if window is None:
            continue
        for i, s in enumerate(sharpes, start=1):
            rows.append(
                _run(
                    tune,
                    f"{tune}-R{i}",
                    split,
                    window,
                    s,
                    a=i,
                    baseline=i == 1,
                    symbol=symbol,
                    ws=ws,
                )
            )
    return rows


def _attribute(
    rows: list[dict],
    labels: pd.DataFrame,
    *,
    schema_version: str = SCHEMA,
    ruleset_id: str = RULES,
    symbol: str | None = None,
) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    out = tn.attribute_tunes(
        frame, labels, schema_version=schema_version, ruleset_id=ruleset_id, symbol=symbol
    )
    return out.set_index("tune_id")


# ---------------------------------------------------------------------------------------------
# regime key, fingerprint and denormalised tags through attribute_tunes (seed tests 1-4, 7)

DAYS10 = pd.bdate_range("2024-01-01", periods=10)
IS_W = (DAYS10[0].date(), DAYS10[4].date())
OOS_W = (DAYS10[5].date(), DAYS10[9].date())

REGIMES: dict[str, Tags] = {
    "S1": ("uptrend", "high_vol", "noisy"),
    "S2": ("downtrend", None, None),
    "S3": (None, "low_vol", "efficient"),
    "S4": ("flat", "low_vol", "efficient"),
}


def _four_markets(schema: str = SCHEMA, rules: str = RULES) -> pd.DataFrame:
    labels = pd.concat([_labels(s, DAYS10, [t] * 10) for s, t in REGIMES.items()])
    rows = [r for s in REGIMES for r in _tune(f"T-{s}", IS_W, OOS_W, [1, 2], [3, 4], symbol=s)]
    rows += _tune("T-S1b", IS_W, OOS_W, [5, 1], [0, 1], symbol="S1")
    return _attribute(rows, labels, schema_version=schema, ruleset_id=rules)


def test_regime_key_format_with_all_tags_and_with_missing_dimensions() -> None:
    t = _four_markets()
    assert t.loc["T-S1", "regime_key"] == "regime_v1_1|default_v1|uptrend|high_vol|noisy"
    assert t.loc["T-S2", "regime_key"] == "regime_v1_1|default_v1|downtrend|_|_"
    assert t.loc["T-S3", "regime_key"] == "regime_v1_1|default_v1|_|low_vol|efficient"
    assert t.loc["T-S4", "regime_key"] == "regime_v1_1|default_v1|flat|low_vol|efficient"
    assert (t["regime_schema_version"] == SCHEMA).all() and (t["tag_ruleset_id"] == RULES).all()
    assert (t["snapshot_days"] == 5).all() and (t["reason"] == "").all()


def test_fingerprint_is_sha256_of_the_key_and_stable() -> None:
    t = _four_markets()
    for tid, row in t.iterrows():
        want = hashlib.sha256(str(row["regime_key"]).encode()).hexdigest()
        assert row["regime_fingerprint"] == want, tid
        assert len(want) == 64
    # same regime (two tunes on S1) -> same fingerprint; a rerun gives the same fingerprints
    assert str(t.loc["T-S1", "regime_fingerprint"]) == str(t.loc["T-S1b", "regime_fingerprint"])
    assert t["regime_fingerprint"].tolist() == _four_markets()["regime_fingerprint"].tolist()
    assert t["regime_fingerprint"].nunique() == 4


def test_fingerprint_changes_with_schema_or_ruleset() -> None:
    base = _four_markets()
    other_schema = _four_markets(schema="regime_v2_0")
    other_rules = _four_markets(rules="custom_v7")
    assert other_schema.loc["T-S1", "regime_key"] == "regime_v2_0|default_v1|uptrend|high_vol|noisy"
    assert other_rules.loc["T-S1", "regime_key"] == "regime_v1_1|custom_v7|uptrend|high_vol|noisy"
    assert (other_schema["regime_schema_version"] == "regime_v2_0").all()
    assert (other_rules["tag_ruleset_id"] == "custom_v7").all()
    for tid in base.index:
        prints = {
            base.loc[tid, "regime_fingerprint"],
            other_schema.loc[tid, "regime_fingerprint"],
            other_rules.loc[tid, "regime_fingerprint"],
        }
        assert len(prints) == 3, tid
        assert (
            other_rules.loc[tid, "regime_fingerprint"]
            == hashlib.sha256(str(other_rules.loc[tid, "regime_key"]).encode()).hexdigest()
        )


def test_denormalised_tags_match_the_key() -> None:
    t = _four_markets()
    for tid, row in t.iterrows():
        parts = str(row["regime_key"]).split("|")
        assert parts[:2] == [SCHEMA, RULES]
        for col, part in zip(("trend_tag", "vol_tag", "efficiency_tag"), parts[2:], strict=True):
            value = row[col]
            assert (pd.isna(value) and part == "_") or value == part, (tid, col, value, part)
        want = REGIMES[str(row["symbol"])]
        got = tuple(
            None if pd.isna(row[c]) else row[c] for c in ("trend_tag", "vol_tag", "efficiency_tag")
        )
        assert got == want, tid


# ---------------------------------------------------------------------------------------------
# snapshot_tags and entry_snapshot

DAYS12 = pd.bdate_range("2024-01-01", periods=12)  # D0 = Mon 1 Jan .. D11 = Tue 16 Jan
SNAP_TAGS: list[Tags | None] = [
    None,  # D0 untagged
    ("uptrend", "high_vol", "efficient"),  # D1
    ("flat", None, "noisy"),  # D2
    ("flat", None, "noisy"),  # D3
    ("uptrend", "low_vol", "noisy"),  # D4
    None,  # D5 untagged (decoy flat / high_vol / efficient)
    ("flat", None, "efficient"),  # D6
    ("downtrend", "high_vol", "noisy"),  # D7
    ("flat", "low_vol", "noisy"),  # D8
    ("trending", "high_vol", "efficient"),  # D9
    ("trending", "high_vol", "efficient"),  # D10
    ("trending", "high_vol", "efficient"),  # D11
]


def _snap_labels() -> pd.DataFrame:
    return _labels("SPX", DAYS12, SNAP_TAGS)


def _rows(frame: pd.DataFrame) -> list[tuple]:
    """(trend, vol, efficiency, days) per row, null tags as None."""
    return [
        (
            *(None if pd.isna(r[c]) else r[c] for c in ("trend_tag", "vol_tag", "efficiency_tag")),
            int(r["days"]),
        )
        for r in frame.to_dict("records")
    ]


def test_snapshot_is_the_mode_per_dimension_counted_by_hand() -> None:
    d = DAYS12
    windows = [
        # D1..D8: 7 tagged days (D5 is not). trend flat 4 / uptrend 2 / downtrend 1; vol "no tag"
        # 3 / high 2 / low 2 -> no tag (with D5's decoy high_vol it would be a high_vol tie win);
        # efficiency noisy 5 / efficient 2
        (d[1], d[8], ("flat", None, "noisy", 7)),
        # D7..D8: trend downtrend 1 / flat 1 -> downtrend first; vol high 1 / low 1 -> high_vol
        (d[7], d[8], ("downtrend", "high_vol", "noisy", 2)),
        # D3..D4: trend flat 1 / uptrend 1 -> uptrend; vol none 1 / low 1 -> low_vol
        (d[3], d[4], ("uptrend", "low_vol", "noisy", 2)),
        # D1..D2: efficient 1 / noisy 1 -> efficient; vol high 1 / none 1 -> high_vol
        (d[1], d[2], ("uptrend", "high_vol", "efficient", 2)),
        # D8..D9: trend flat 1 / trending 1 -> trending
        (d[8], d[9], ("trending", "high_vol", "efficient", 2)),
        # D6..D8: vol none 1 / high 1 / low 1 -> high_vol
        (d[6], d[8], ("flat", "high_vol", "noisy", 3)),
        # D9..D11: all the same
        (d[9], d[11], ("trending", "high_vol", "efficient", 3)),
    ]
    s = tn.snapshot_tags(
        _snap_labels(), ["SPX"] * len(windows), [w[0] for w in windows], [w[1] for w in windows]
    )
    assert _rows(s) == [w[2] for w in windows]


def test_snapshot_without_tagged_days_is_empty() -> None:
    d = DAYS12
    s = tn.snapshot_tags(
        _snap_labels(),
        ["SPX", "SPX", "SPX", "NDX"],
        [d[5], "2030-01-01", "2023-01-01", d[0]],
        [d[5], "2030-02-01", d[0], d[11]],
    )
    # D5 alone is untagged; 2030 and 2023 are outside the data; NDX has no labels
    assert _rows(s) == [(None, None, None, 0)] * 4


def test_snapshot_ignores_row_order_and_other_symbols() -> None:
    d = DAYS12
    other = _labels("NDX", DAYS12, [B] * 12)
    mixed = pd.concat([_snap_labels(), other]).sample(frac=1.0, random_state=3)
    s = tn.snapshot_tags(mixed, ["SPX", "NDX"], [d[1], d[1]], [d[8], d[8]])
    assert _rows(s) == [("flat", None, "noisy", 7), ("downtrend", "high_vol", "noisy", 8)]


def test_entry_snapshot_uses_the_tagged_days_strictly_before_the_date() -> None:
    d = DAYS12
    labels = _snap_labels()
    # window 4 before D8: tagged D3, D4, D6, D7 (D5 untagged is skipped, D8 itself excluded):
    # trend flat 2 / uptrend 1 / downtrend 1; vol none 2 / low 1 / high 1; noisy 3 / efficient 1
    want = ("flat", None, "noisy", 4)
    e = tn.entry_snapshot(labels, ["SPX"], [d[8]], window=4)
    assert _rows(e) == [want]
    # no look-ahead: whatever the labels say on and after D8, the snapshot is the same
    future = labels.copy()
    late = future["date"] >= d[8]
    future.loc[late, ["trend_tag", "vol_tag", "efficiency_tag"]] = [
        "uptrend",
        "low_vol",
        "efficient",
    ]
    future.loc[late, "regime_key"] = _key(A)
    assert _rows(tn.entry_snapshot(future, ["SPX"], [d[8]], window=4)) == [want]
    assert _rows(tn.entry_snapshot(future.iloc[:8], ["SPX"], [d[8]], window=4)) == [want]
    # ... while a change on D7 (the last day before) does change it (the test can fail)
    past = labels.copy()
    past.loc[past["date"].isin([d[6], d[7]]), ["trend_tag", "regime_key"]] = ["uptrend", _key(A)]
    assert _rows(tn.entry_snapshot(past, ["SPX"], [d[8]], window=4))[0][0] == "uptrend"


def test_entry_snapshot_edges() -> None:
    d = DAYS12
    e = tn.entry_snapshot(
        _snap_labels(),
        ["SPX", "SPX", "SPX", "SPX"],
        [d[1], d[0], "2030-01-01", "2024-01-13"],  # 13 Jan is a Saturday: D0..D9 are before
        window=4,
    )
    assert _rows(e) == [
        (None, None, None, 0),  # only untagged D0 before D1
        (None, None, None, 0),
        # last 4 tagged days D8..D11: trending 3 / flat 1, high 3 / low 1, efficient 3 / noisy 1
        ("trending", "high_vol", "efficient", 4),
        # D6..D9: flat 2, downtrend 1, trending 1; vol none/high/low/high -> high 2; eff 2-2 tie
        ("flat", "high_vol", "efficient", 4),
    ]
    # a window longer than the history takes what there is (D1..D4: 4 tagged days)
    assert _rows(tn.entry_snapshot(_snap_labels(), ["SPX"], [d[5]], window=63)) == [
        ("uptrend", None, "noisy", 4)
    ]


# ---------------------------------------------------------------------------------------------
# attribute_tunes: the best run, its columns, ids


def _best_run_rows() -> list[dict]:
    rows = [
        # T1: IS ranks R2 > R1 > R3; OOS ranks R3 > R1 > R2. leaderboard[0] is R2.
        _run("T1", "R1", "is", IS_W, 1.0, a=10, b=0.5, baseline=True),
        _run("T1", "R2", "is", IS_W, 2.0, a=20, b=0.25),
        _run("T1", "R3", "is", IS_W, 0.5, a=30, b=0.75),
        _run("T1", "R1", "oos", OOS_W, 3.0, a=10, b=0.5, baseline=True),
        _run("T1", "R2", "oos", OOS_W, -0.5, a=20, b=0.25),
        _run("T1", "R3", "oos", OOS_W, 5.0, a=30, b=0.75),
        # T2: R2 and R1 tie in sample (R2 listed first): the first run_id, R1, wins
        _run("T2", "R2", "is", IS_W, 2.0, a=20, baseline=True),
        _run("T2", "R1", "is", IS_W, 2.0, a=10),
        _run("T2", "R2", "oos", OOS_W, 0.9, a=20, baseline=True),
        _run("T2", "R1", "oos", OOS_W, 0.7, a=10),
        # T3: a run without an IS sharpe is never the best
        _run("T3", "R1", "is", IS_W, float("nan"), a=10, baseline=True),
        _run("T3", "R2", "is", IS_W, -1.0, a=20),
        _run("T3", "R1", "oos", OOS_W, 8.0, a=10, baseline=True),
        _run("T3", "R2", "oos", OOS_W, -2.0, a=20),
    ]
    return rows


def test_best_run_is_the_highest_in_sample_sharpe_not_the_best_oos() -> None:
    frame = pd.DataFrame(_best_run_rows())
    frame = frame[["param_b", *[c for c in frame.columns if c != "param_b"]]]  # b before a
    frame["pnl_pct"] = 1.0  # a metric column, not a parameter
    labels = _labels("SPX", DAYS10, [A] * 10)
    t = tn.attribute_tunes(frame, labels, schema_version=SCHEMA, ruleset_id=RULES).set_index(
        "tune_id"
    )
    assert t.loc["T1", "best_run"] == "R2"
    assert t.loc["T1", "best_oos_score"] == -0.5  # R2's OOS sharpe, not R3's 5.0
    assert t.loc["T1", "best_oos_params"] == '{"a": 20, "b": 0.25}'
    assert json.loads(t.loc["T1", "best_oos_params"]) == {"a": 20, "b": 0.25}
    assert t.loc["T1", "baseline_oos_score"] == 3.0
    assert t.loc["T2", "best_run"] == "R1" and t.loc["T2", "best_oos_score"] == 0.7
    assert t.loc["T2", "baseline_oos_score"] == 0.9
    assert t.loc["T3", "best_run"] == "R2" and t.loc["T3", "best_oos_score"] == -2.0
    assert t.loc["T3", "baseline_oos_score"] == 8.0
    assert list(t.index) == ["T1", "T2", "T3"]
    for col, want in (
        ("is_start", DAYS10[0]),
        ("is_end", DAYS10[4]),
        ("oos_start", DAYS10[5]),
        ("oos_end", DAYS10[9]),
    ):
        assert (t[col] == want).all(), col
    # the entry key: the 5 tagged days before the OOS window, all regime A
    assert (t["entry_key"] == _key(A)).all()


def test_run_and_tune_ids_are_uuids() -> None:
    labels = _labels("SPX", DAYS10, [A] * 10)
    t = _attribute(_best_run_rows(), labels)
    rid = str(t.loc["T1", "best_oos_run_id"])
    assert rid == tn.run_uuid("R2") and str(uuid.UUID(rid)) == rid
    assert uuid.UUID(rid).version == 5
    assert t.loc["T2", "best_oos_run_id"] == tn.run_uuid("R1") != rid
    tid1 = str(t.loc["T1", "id"])
    assert tid1 == tn.tune_uuid("T1") and uuid.UUID(tid1).version == 5
    # stable, distinct per id, and distinct between a tune and a run of the same name
    assert tn.tune_uuid("T1") == tn.tune_uuid("T1") != tn.tune_uuid("T2")
    assert tn.tune_uuid("T1") != tn.run_uuid("T1")
    # ids that already are UUIDs pass through
    tid, run = "1b4e28ba-2fa1-11d2-883f-0001c0a8e4c1", "9f0e6c3a-8d52-4c1e-b7a4-2f6f3f1d2a10"
    assert tn.tune_uuid(tid) == tid and tn.run_uuid(run) == run
    rows = [
        {**r, "tune_id": tid, "run_id": run if r["run_id"] == "R2" else r["run_id"]}
        for r in _best_run_rows()
        if r["tune_id"] == "T1"
    ]
    u = _attribute(rows, labels)
    assert u.loc[tid, "id"] == tid and u.loc[tid, "best_oos_run_id"] == run


def test_symbol_argument_when_records_have_no_symbol() -> None:
    rows = [{k: v for k, v in r.items() if k != "symbol"} for r in _best_run_rows()]
    labels = pd.concat([_labels("SPX", DAYS10, [A] * 10), _labels("NDX", DAYS10, [B] * 10)])
    with pytest.raises(ValueError, match="no 'symbol' column"):
        tn.attribute_tunes(pd.DataFrame(rows), labels, schema_version=SCHEMA, ruleset_id=RULES)
    t = _attribute(rows, labels, symbol="NDX")
    assert (t["symbol"] == "NDX").all() and (t["regime_key"] == _key(B)).all()


# ---------------------------------------------------------------------------------------------
# null-safety (seed test 6)


def test_unattributable_tunes_are_null_with_a_reason() -> None:
    d = DAYS12
    labels = _labels("SPX", d, [None, None, None] + [A] * 9)  # D0..D2 untagged warm-up
    is_w, oos_w = (d[3], d[6]), (d[7], d[11])
    ok = _tune("OK", is_w, oos_w, [1, 2, 0], [0.1, 0.2, 0.3])
    rows = ok + _tune("NOOOS", is_w, None, [1, 2], [])
    rows += _tune("NOIS", None, oos_w, [], [1, 2])
    best_missing = _tune("BESTMISS", is_w, oos_w, [1, 2, 0], [0.1, 0.2, 0.3])
    rows += [r for r in best_missing if not (r["split"] == "oos" and r["run_id"] == "BESTMISS-R2")]
    rows += _tune("NOTAG", (d[0], d[0]), (d[0], d[2]), [1, 2], [0.5, 0.6])
    rows += _tune("OUTSIDE", is_w, ("2030-01-01", "2030-12-31"), [1, 2], [0.5, 0.6])
    t = _attribute(rows, labels)
    reasons = {
        "NOOOS": "no OOS rows",
        "NOIS": "no in-sample rows to rank the runs",
        "BESTMISS": "the best run (highest in-sample sharpe) has no OOS row",
        "NOTAG": "no tagged bars in the OOS window",
        "OUTSIDE": "no tagged bars in the OOS window",
    }
    for tid, why in reasons.items():
        assert t.loc[tid, "reason"] == why, tid
        for col in tn.ATTRIBUTION_COLUMNS:
            assert pd.isna(t.loc[tid, col]), (tid, col, t.loc[tid, col])
    assert t.loc["NOTAG", "snapshot_days"] == 0 and t.loc["OUTSIDE", "snapshot_days"] == 0
    assert t.loc["BESTMISS", "best_run"] == "BESTMISS-R2"
    # the good tune is attributed exactly as on its own
    alone = _attribute(ok, labels)
    assert t.loc["OK", "reason"] == "" and t.loc["OK", "regime_key"] == _key(A)
    for col in tn.ATTRIBUTION_COLUMNS:
        assert t.loc["OK", col] == alone.loc["OK", col], col
    assert t.loc["OK", "best_oos_score"] == 0.2 and t.loc["OK", "baseline_oos_score"] == 0.1
    assert list(t.columns[4:15]) == list(tn.ATTRIBUTION_COLUMNS)  # seed order, after the ids


# ---------------------------------------------------------------------------------------------
# key_distance and lookup

KA = _key(("uptrend", "low_vol", "efficient"))
KA1 = _key(("uptrend", "low_vol", "noisy"))  # 1 tag from KA
KA2 = _key(("uptrend", "high_vol", "noisy"))  # 2 tags
KA3 = _key(("downtrend", "high_vol", "noisy"))  # 3 tags
KX = _key(("uptrend", "low_vol", "efficient"), rules="other_v1")  # other ruleset
KS = _key(("uptrend", "low_vol", "efficient"), schema="regime_v9")  # other schema


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (KA, KA, 0),
        (KA, KA1, 1),
        (KA, KA2, 2),
        (KA, KA3, 3),
        (KA3, KA, 3),
        (KA, _key(("uptrend", None, "efficient")), 1),  # a tag against "_" differs
        (_key((None, None, None)), _key((None, None, None)), 0),
        (KA, KX, None),
        (KA, KS, None),
        (KA, "not|a|key", None),
    ],
)
def test_key_distance_by_hand(a: str, b: str, want: int | None) -> None:
    assert tn.key_distance(a, b) == want


def _history() -> pd.DataFrame:
    rows = [
        ("T1", KA, 1.0),
        ("T2", KA, 0.5),
        ("T3", KA1, 3.0),
        ("T4", KA2, 4.0),
        ("T5", KA3, 9.0),
        ("T6", KX, 100.0),  # other ruleset: never comparable
        ("T7", KA, float("nan")),  # no OOS score: not a candidate
        ("T8", None, 80.0),  # no key: not a candidate
    ]
    return pd.DataFrame(
        {
            "tune_id": [r[0] for r in rows],
            "regime_key": [r[1] for r in rows],
            "best_oos_score": [r[2] for r in rows],
            "best_oos_params": [json.dumps({"a": i}) for i in range(1, len(rows) + 1)],
        }
    )


@pytest.mark.parametrize(
    ("min_tunes", "max_distance", "distance", "candidates", "tune", "score"),
    [
        (2, 3, 0, 2, "T1", 1.0),  # exact key has T1, T2: the better is T1
        (3, 3, 1, 3, "T3", 3.0),  # + T3 at distance 1
        (4, 3, 2, 4, "T4", 4.0),
        (5, 3, 3, 5, "T5", 9.0),
        (6, 3, 3, 5, "T5", 9.0),  # never enough: the widest non-empty set
        (10, 1, 1, 3, "T3", 3.0),  # capped at distance 1
    ],
)
def test_lookup_widens_until_enough_tunes(
    min_tunes: int, max_distance: int, distance: int, candidates: int, tune: str, score: float
) -> None:
    found = tn.lookup(_history(), KA, min_tunes=min_tunes, max_distance=max_distance)
    assert (found.distance, found.candidates, found.tune_id) == (distance, candidates, tune)
    assert found.score == score
    assert found.params == json.dumps({"a": int(tune[1:])})
    assert found.fell_back == (distance > 0)
    assert ("fell back" in found.text()) == (distance > 0)
    count = f"{candidates} tune{'s' if candidates != 1 else ''}"
    if distance == 0:
        assert f"the exact key ({count})" in found.text()
    else:
        assert f"fell back to keys within tag distance {distance} ({count})" in found.text()
    assert found.text().startswith(f"{KA}: best tune {tune} (OOS sharpe {score:.2f})")


def test_lookup_finds_nothing() -> None:
    h = _history()
    for found in (
        tn.lookup(h, KS),  # no key of that schema
        tn.lookup(h, _key(("flat", None, None)), max_distance=1),  # nothing within 1 tag
        tn.lookup(h.iloc[:0], KA),
    ):
        assert found.tune_id is None and found.distance is None and found.candidates == 0
        assert found.params is None and math.isnan(found.score) and not found.fell_back
        assert "no tune within tag distance" in found.text()
    # the other ruleset's T6 (score 100) is found under its own key only
    assert tn.lookup(h, KX, min_tunes=1).tune_id == "T6"


def test_lookup_ties_go_to_the_first_tune_id() -> None:
    h = pd.DataFrame(
        {
            "tune_id": ["TB", "TA", "TC"],
            "regime_key": [KA, KA, KA],
            "best_oos_score": [2.0, 2.0, 1.0],
            "best_oos_params": ['{"a": 2}', '{"a": 1}', '{"a": 3}'],
        }
    )
    found = tn.lookup(h, KA, min_tunes=1)
    assert found.tune_id == "TA" and found.params == '{"a": 1}' and found.candidates == 3


# ---------------------------------------------------------------------------------------------
# uplift: a walk-forward computed by hand

YEAR_REGIME = {2019: A, 2020: A, 2021: B, 2022: B, 2023: A}


def _walk_labels() -> pd.DataFrame:
    spx_days = pd.bdate_range("2019-01-01", "2023-12-29")
    spx = _labels("SPX", spx_days, [YEAR_REGIME[d.year] for d in spx_days])
    ndx_days = pd.bdate_range("2022-10-03", "2023-01-06")
    return pd.concat([spx, _labels("NDX", ndx_days, [B] * len(ndx_days))], ignore_index=True)


def _year(y: int) -> tuple[str, str]:
    return (f"{y}-01-01", f"{y}-12-31")


def _walk_rows(t5_oos_end: str = "2023-01-06") -> list[dict]:
    """Runs R1, R2, R3 have param a = 1, 2, 3 in every tune; R1 is the baseline.

    tune  OOS        key  entry  IS sharpe      OOS sharpe       best (IS)  best_oos
    T1    2020       A    A      0, 1, .5       .1, 2.0, .3      a=2        2.0
    T2    2021       B    A      0, .5, 1       .2, .4, 1.0      a=3        1.0
    T3    2022       B    B      1, 0, .5       .6, -.2, .9      a=1        0.6
    T4    2023       A    B      0, 1, 0        .3, .7, -.4      a=2        0.7
    T5    NDX, 2022-10-03..2023-01-06, key B, 99.0 with a=1; no bars before: not evaluated
    T6    other workspace, 2019, key A, 50.0 with a=3
    T7    no OOS rows
    """
    rows = _tune("T1", _year(2019), _year(2020), [0, 1, 0.5], [0.1, 2.0, 0.3])
    rows += _tune("T2", _year(2020), _year(2021), [0, 0.5, 1], [0.2, 0.4, 1.0])
    rows += _tune("T3", _year(2021), _year(2022), [1, 0, 0.5], [0.6, -0.2, 0.9])
    rows += _tune("T4", _year(2022), _year(2023), [0, 1, 0], [0.3, 0.7, -0.4])
    rows += _tune(
        "T5",
        ("2021-10-01", "2022-09-30"),
        ("2022-10-03", t5_oos_end),
        [1, 0, 0],
        [99.0, 0.1, 0.5],
        symbol="NDX",
    )
    rows += _tune("T6", _year(2018), _year(2019), [0, 0, 1], [0, 0, 50.0], ws="ws2")
    rows += _tune("T7", _year(2021), None, [1, 2, 3], [])
    return rows


def _walk(rows: list[dict], *, min_tunes: int) -> tuple[pd.DataFrame, tn.UpliftResult]:
    records = pd.DataFrame(rows)
    attributed = tn.attribute_tunes(
        records, _walk_labels(), schema_version=SCHEMA, ruleset_id=RULES
    )
    return attributed, tn.uplift(records, attributed, min_tunes=min_tunes)


def test_walk_forward_attribution_is_as_designed() -> None:
    attributed, _ = _walk(_walk_rows(), min_tunes=1)
    t = attributed.set_index("tune_id")
    keys = {"T1": A, "T2": B, "T3": B, "T4": A, "T5": B, "T6": A}
    entries = {"T1": A, "T2": A, "T3": B, "T4": B}
    best = {"T1": 2.0, "T2": 1.0, "T3": 0.6, "T4": 0.7, "T5": 99.0, "T6": 50.0}
    for tid, tags in keys.items():
        assert t.loc[tid, "regime_key"] == _key(tags), tid
        assert t.loc[tid, "best_oos_score"] == best[tid], tid
    for tid, tags in entries.items():
        assert t.loc[tid, "entry_key"] == _key(tags), tid
    assert t.loc["T5", "entry_key"] is None and t.loc["T6", "entry_key"] is None


def test_uplift_walk_forward_by_hand() -> None:
    _, res = _walk(_walk_rows(), min_tunes=1)
    per = res.per_tune.set_index("tune_id")
    assert list(per.index) == ["T2", "T3", "T4"]
    # T2 (entry A): history T1 only (T6 is another workspace) -> T1's a=2 -> T2's a=2 run: 0.4
    # T3 (entry B): history T1 (A), T2 (B) -> T2's a=3 -> 0.9; regime-blind: T1 (2.0) a=2 -> -0.2
    # T4 (entry B): T1, T2, T3 (T5's OOS window runs to 2023-01-06, after T4 starts) -> exact B:
    #   T2 (1.0) over T3 (0.6) -> a=3 -> -0.4; regime-blind T1's a=2 -> 0.7
    want = {
        # source, candidates, selected, baseline, blind params, blind, tuned, random
        "T2": ("T1", 1, 0.4, 0.2, '{"a": 2, "b": 0.5}', 0.4, 1.0, (0.2 + 0.4 + 1.0) / 3),
        "T3": ("T2", 1, 0.9, 0.6, '{"a": 2, "b": 0.5}', -0.2, 0.6, (0.6 - 0.2 + 0.9) / 3),
        "T4": ("T2", 2, -0.4, 0.3, '{"a": 2, "b": 0.5}', 0.7, 0.7, (0.3 + 0.7 - 0.4) / 3),
    }
    sel_params = {
        "T2": '{"a": 2, "b": 0.5}',
        "T3": '{"a": 3, "b": 0.5}',
        "T4": '{"a": 3, "b": 0.5}',
    }
    for tid, (src, cand, sel, base, bp, blind, tuned, rnd) in want.items():
        row = per.loc[tid]
        assert row["source_tune"] == src and row["candidates"] == cand, tid
        assert row["distance"] == 0 and row["selected_params"] == sel_params[tid], tid
        assert row["selected_oos"] == pytest.approx(sel), tid
        assert row["baseline_oos"] == pytest.approx(base), tid
        assert row["agnostic_tune"] == "T1" and row["agnostic_params"] == bp, tid
        assert row["agnostic_oos"] == pytest.approx(blind), tid
        assert row["tuned_oos"] == pytest.approx(tuned), tid
        assert row["random_oos"] == pytest.approx(rnd), tid
    diffs = {
        "baseline": [0.4 - 0.2, 0.9 - 0.6, -0.4 - 0.3],
        "regime-blind": [0.4 - 0.4, 0.9 - (-0.2), -0.4 - 0.7],
        "tuned": [0.4 - 1.0, 0.9 - 0.6, -0.4 - 0.7],
        "random": [0.4 - 1.6 / 3, 0.9 - 1.3 / 3, -0.4 - 0.6 / 3],
    }
    assert res.summary["vs"].tolist() == list(diffs)
    # OOS years 2021-2023 span 3 years: blocks of 2 (the smallest L with L**3 >= 3) aligned on
    # 2021 -> {2021, 2022}, {2023}: two clusters, one degree of freedom
    assert res.block_years == 2 and res.clusters == "blocks of 2 consecutive OOS start years"
    groups = [[0, 1], [2]]
    for vs, d in diffs.items():
        row = res.row(vs)
        assert row["n"] == 3 and row["mean_diff"] == pytest.approx(sum(d) / 3), vs
        # the CR1 variance of a mean by hand: G/(G-1) * (N-1)/(N-K) * sum of squared cluster
        # sums of the residuals / N**2, with G = 2 blocks, N = 3 tunes, K = 1
        e = np.asarray(d) - np.mean(d)
        var = 2 / 1 * (3 - 1) / (3 - 1) * sum(e[g].sum() ** 2 for g in groups) / 9
        half = stats.t.ppf(0.975, 1) * math.sqrt(var)
        interval = (np.mean(d) - half, np.mean(d) + half)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(interval, rel=1e-9), vs
        p = 2 * stats.t.sf(abs(np.mean(d)) / math.sqrt(var), 1)
        assert row["p"] == pytest.approx(p, rel=1e-9), vs
        assert (row["clusters"], row["years"], row["block_years"]) == (2, 3, 2), vs
        # clustered by single years (the former rule) it was the one-sample t-interval
        single = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
        assert row["ci_low"] != pytest.approx(single.low), vs
        assert row["method"] == tn.UPLIFT_METHOD
    assert res.skipped == {
        "T1": "no earlier tune with an OOS score",
        "T5": "no tagged bar before the OOS window",
        "T6": "no tagged bar before the OOS window",
        "T7": "no OOS rows",
    }
    assert res.notes[0].startswith("0 of 3 evaluated tunes fell back")
    assert res.verdict() == "only 3 tunes could be evaluated: too few for a verdict"
    assert res.evaluated == 3 < tn.MIN_TUNES_FOR_VERDICT


def test_uplift_history_ends_before_the_oos_window() -> None:
    # T5 (key B, 99.0, a=1) ends on 2023-01-06, after T4's OOS start (2023-01-01): not in T4's
    # history. Ending it on 2022-12-30 puts it there, and both the lookup and the control take it.
    _, res = _walk(_walk_rows(), min_tunes=1)
    t4 = res.per_tune.set_index("tune_id").loc["T4"]
    assert t4["source_tune"] == "T2" and t4["agnostic_tune"] == "T1"
    # ending exactly on T4's OOS start is not "before" it either
    _, edge = _walk(_walk_rows(t5_oos_end="2023-01-01"), min_tunes=1)
    e4 = edge.per_tune.set_index("tune_id").loc["T4"]
    assert e4["source_tune"] == "T2" and e4["agnostic_tune"] == "T1"
    _, moved = _walk(_walk_rows(t5_oos_end="2022-12-30"), min_tunes=1)
    m4 = moved.per_tune.set_index("tune_id").loc["T4"]
    assert m4["source_tune"] == "T5" and m4["agnostic_tune"] == "T5" and m4["candidates"] == 3
    assert m4["selected_oos"] == pytest.approx(0.3)  # T4's a=1 run
    assert m4["agnostic_oos"] == pytest.approx(0.3)


def test_uplift_falls_back_when_the_exact_key_is_rare() -> None:
    # min_tunes 2: T2 (entry A) has only T1 -> widest set, still T1, distance 3; T3 (entry B) has
    # only T2 with B -> widened to distance 3: T1 and T2, T1 (2.0) wins -> a=2 -> -0.2;
    # T4 (entry B) has T2 and T3 -> exact
    _, res = _walk(_walk_rows(), min_tunes=2)
    per = res.per_tune.set_index("tune_id")
    assert per["distance"].tolist() == [3, 3, 0]
    assert per["source_tune"].tolist() == ["T1", "T1", "T2"]
    assert per["selected_oos"].tolist() == pytest.approx([0.4, -0.2, -0.4])
    assert res.notes[0].startswith("2 of 3 evaluated tunes fell back")


def test_uplift_skips_a_tune_without_the_selected_parameters() -> None:
    rows = _tune("T1", _year(2019), _year(2020), [0, 1, 0.5], [0.1, 2.0, 0.3])
    t2 = _tune("T2", _year(2020), _year(2021), [0, 0.5, 1], [0.2, 0.4, 1.0])
    rows += [r for r in t2 if r["run_id"] != "T2-R2"]  # T2 never ran a=2
    _, res = _walk(rows, min_tunes=1)
    assert res.skipped == {
        "T1": "no earlier tune with an OOS score",
        "T2": 'no run with the selected parameters {"a": 2, "b": 0.5}',
    }
    assert res.per_tune.empty
    assert res.summary["n"].tolist() == [0, 0, 0, 0]
    assert res.summary["mean_diff"].isna().all()


# ---------------------------------------------------------------------------------------------
# uplift_verdict


def _summary(
    n: int,
    base: tuple[float, float, float],
    blind: tuple[float, float, float],
    blocks: int | None = 6,
) -> pd.DataFrame:
    """A summary with ``blocks`` blocks of 3 OOS years (None: a summary without the columns)."""
    extra = {} if blocks is None else {"clusters": blocks, "block_years": 3}
    return pd.DataFrame(
        [
            {
                "vs": "baseline",
                "n": n,
                "mean_diff": base[0],
                "ci_low": base[1],
                "ci_high": base[2],
                **extra,
            },
            {
                "vs": "regime-blind",
                "n": n,
                "mean_diff": blind[0],
                "ci_low": blind[1],
                "ci_high": blind[2],
                **extra,
            },
        ]
    )


def test_uplift_verdict_branches() -> None:
    few = tn.uplift_verdict(_summary(4, (1.0, 0.5, 1.5), (1.0, 0.5, 1.5)))
    assert few == "only 4 tunes could be evaluated: too few for a verdict"
    assert tn.MIN_TUNES_FOR_VERDICT == 5  # the page reads the rule from here

    both = tn.uplift_verdict(_summary(8, (0.3, 0.1, 0.5), (0.2, 0.05, 0.4)))
    assert both.startswith("regime-selected parameters beat the baseline out of sample")
    assert "mean OOS sharpe difference +0.30 (95% CI +0.10 to +0.50, 8 tunes in 6 blocks" in both
    assert both.endswith("and beat the same lookup ignoring the regime (+0.20, CI +0.05 to +0.40)")

    only = tn.uplift_verdict(_summary(8, (0.3, 0.1, 0.5), (0.0, -0.2, 0.2)))
    assert only.startswith("regime-selected parameters beat the baseline out of sample")
    assert "but not the same lookup ignoring the regime (+0.00, CI -0.20 to +0.20)" in only
    assert only.endswith("no evidence the regime is what helps")

    worse = tn.uplift_verdict(_summary(6, (-0.4, -0.7, -0.1), (0.3, 0.1, 0.5)))
    assert worse == (
        "regime-selected parameters do worse than the baseline out of sample, mean OOS sharpe "
        "difference -0.40 (95% CI -0.70 to -0.10, 6 tunes in 6 blocks of years)"
    )

    # an interval touching 0 is not evidence either way
    for base in ((0.2, 0.0, 0.4), (-0.2, -0.4, 0.0), (0.0, -0.3, 0.3)):
        none = tn.uplift_verdict(_summary(5, base, (0.3, 0.1, 0.5)))
        assert none.startswith("no evidence that regime-selected parameters beat the baseline")

    assert "(90% CI" in tn.uplift_verdict(_summary(8, (0.3, 0.1, 0.5), (0, -1, 1)), alpha=0.1)


def test_too_few_blocks_of_years_give_no_verdict() -> None:
    """Intervals above zero on 40 tunes, but in 4 blocks of years: no verdict (the interval
    rests on 3 degrees of freedom); 5 blocks are enough."""
    assert tn.MIN_BLOCKS_FOR_VERDICT == 5
    few = tn.uplift_verdict(_summary(40, (0.3, 0.1, 0.5), (0.2, 0.05, 0.4), blocks=4))
    assert few == (
        "the 40 evaluated tunes fall in 4 blocks of 3 consecutive out-of-sample years: too few "
        "independent blocks for a verdict (at least 5 needed)"
    )
    one = tn.uplift_verdict(_summary(40, (0.3, np.nan, np.nan), (0.2, np.nan, np.nan), blocks=1))
    assert one.startswith("the 40 evaluated tunes fall in 1 block of 3 consecutive")
    enough = tn.uplift_verdict(_summary(40, (0.3, 0.1, 0.5), (0.2, 0.05, 0.4), blocks=5))
    assert enough.startswith("regime-selected parameters beat the baseline out of sample")
    # fewer tunes than the minimum is said first
    assert tn.uplift_verdict(_summary(4, (0.3, 0.1, 0.5), (0.2, 0.05, 0.4), blocks=1)) == (
        "only 4 tunes could be evaluated: too few for a verdict"
    )


def test_year_blocks_by_hand() -> None:
    """Block length: the smallest L with L**3 >= the years spanned; aligned on the first year."""
    blocks, length = tn.year_blocks(np.arange(2002, 2019).repeat(2))  # the sample: 17 years
    assert length == 3 and blocks.max() == 5  # 2002-04, ..., 2014-16, 2017-18: 6 blocks
    assert blocks[:8].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    for span, want in ((1, 1), (2, 2), (8, 2), (9, 3), (27, 3), (28, 4)):
        assert tn.year_blocks([2000, 2000 + span - 1])[1] == want, span
    # a gap in the years: blocks stay on the calendar (2000-01, 2002-03, 2004-05 for 6 years)
    assert tn.year_blocks([2000, 2001, 2005, 2003])[0].tolist() == [0, 0, 2, 1]
    empty, one = tn.year_blocks([])
    assert empty.tolist() == [] and one == 1


def test_uplift_without_spread_has_no_p_value() -> None:
    """Every evaluated tune's selected parameters beat its baseline by the same 0.2: a
    difference without spread (up to rounding) measures no uncertainty, so the interval and
    p are NaN — never a p of 0, which the former own t-interval gave for equal values."""
    # T3's selected a=3 run: 0.9 -> 0.8 (baseline 0.6); T4's baseline: 0.3 -> -0.6 (selected -0.4)
    changes = {("T3", "oos", "T3-R3"): 0.8, ("T4", "oos", "T4-R1"): -0.6}
    rows = [
        {**r, "sharpe": changes.get((r["tune_id"], r["split"], r["run_id"]), r["sharpe"])}
        for r in _walk_rows()
    ]
    _, res = _walk(rows, min_tunes=1)
    per = res.per_tune.set_index("tune_id")
    d = (per["selected_oos"] - per["baseline_oos"]).to_numpy()
    assert d == pytest.approx([0.2, 0.2, 0.2])
    row = res.row("baseline")
    assert row["mean_diff"] == pytest.approx(0.2) and row["clusters"] == 2
    assert np.isnan(row["p"]) and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    assert "have no spread (all +0.20): no interval, no verdict" in tn.uplift_verdict(
        res.summary.assign(n=6, clusters=5)
    )


def test_uplift_without_an_interval_gives_no_verdict() -> None:
    # a summary that does not say how many blocks, and has no interval
    assert tn.uplift_verdict(
        _summary(6, (0.2, np.nan, np.nan), (0.1, np.nan, np.nan), blocks=None)
    ) == ("the 6 evaluated tunes give no interval: no verdict")


# ---------------------------------------------------------------------------------------------
# drift


def _tv_psi(p: dict[str, float], q: dict[str, float]) -> tuple[float, float]:
    keys = set(p) | set(q)
    tv = 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)
    psi = 0.0
    for k in keys:
        pk, qk = max(p.get(k, 0.0), 1e-4), max(q.get(k, 0.0), 1e-4)
        psi += (qk - pk) * math.log(qk / pk)
    return tv, psi


KC = _key(("flat", None, "noisy"))


def _drift_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """SPX D0 untagged, D1-D4 A, D5-D7 B, D8-D11 C; NDX D0-D2 A, D3-D11 B.

    Tunes: t1 SPX IS D1..D5 (A x4, B x1), t2 NDX IS D0..D3 (A x3, B x1), t3 no IS window, key C.
    """
    d = DAYS12
    c: Tags = ("flat", None, "noisy")
    spx = _labels("SPX", d, [None] + [A] * 4 + [B] * 3 + [c] * 4)
    ndx = _labels("NDX", d, [A] * 3 + [B] * 9)
    attributed = pd.DataFrame(
        {
            "tune_id": ["t1", "t2", "t3"],
            "symbol": ["SPX", "NDX", "SPX"],
            "is_start": [d[1], d[0], pd.NaT],
            "is_end": [d[5], d[3], pd.NaT],
            "regime_key": [_key(A), _key(B), KC],
        }
    )
    return pd.concat([spx, ndx], ignore_index=True), attributed


def test_drift_shares_tv_psi_and_alerts_by_hand() -> None:
    labels, attributed = _drift_frames()
    res = tn.drift(labels, attributed, window=6)  # symbol: SPX, the tunes' most common
    # training: A 4 + 3 = 7, B 1 + 1 = 2 of 9 days; current (SPX D6..D11): B 2, C 4 of 6
    p = {_key(A): 7 / 9, _key(B): 2 / 9}
    q = {_key(B): 2 / 6, KC: 4 / 6}
    tv, psi = _tv_psi(p, q)
    assert tv == pytest.approx(7 / 9)
    assert res.symbol == "SPX" and res.current_key == KC and res.asof == DAYS12[11]
    assert res.total_variation == pytest.approx(tv) and res.psi == pytest.approx(psi)
    table = res.table.set_index("regime_key")
    assert set(table.index) == {_key(A), _key(B), KC}
    for k in table.index:
        assert table.loc[k, "training_share"] == pytest.approx(p.get(k, 0.0)), k
        assert table.loc[k, "current_share"] == pytest.approx(q.get(k, 0.0)), k
        assert table.loc[k, "tunes"] == 1, k
    assert res.table["current_share"].tolist() == sorted(q.values(), reverse=True) + [0.0]
    reasons = res.reasons()
    assert len(reasons) == 3 and res.alert
    assert "total variation 0.78 > 0.5" in reasons[0]
    assert "was 0.0% of training days (< 5%)" in reasons[1]
    assert reasons[2].startswith("only 1 tunes have the current regime key (< 3)")
    assert "**Drift:**" in res.text()


def test_drift_asof() -> None:
    labels, attributed = _drift_frames()
    d = DAYS12
    # up to D7, last 3 tagged SPX days D5..D7: all B
    res = tn.drift(labels, attributed, symbol="SPX", window=3, asof=d[7].date(), min_tunes=1)
    p, q = {_key(A): 7 / 9, _key(B): 2 / 9}, {_key(B): 1.0}
    tv, psi = _tv_psi(p, q)
    assert res.current_key == _key(B) and res.asof == d[7]
    assert res.total_variation == pytest.approx(tv) and res.psi == pytest.approx(psi)
    assert len(res.reasons()) == 1 and "total variation" in res.reasons()[0]
    # a Saturday: the last tagged day before it (Fri D4, regime A); NDX's own labels differ
    sat = tn.drift(labels, attributed, symbol="SPX", window=2, asof="2024-01-06")
    assert sat.asof == d[4] and sat.current_key == _key(A)
    ndx = tn.drift(labels, attributed, symbol="NDX", window=2, asof="2024-01-06")
    assert ndx.current_key == _key(B)
    with pytest.raises(ValueError, match="no tagged bars for 'SPX'"):
        tn.drift(labels, attributed, symbol="SPX", asof=d[0])


def _drift_case(
    train: list[Tags], current: list[Tags], tune_keys: list[str], min_tunes: int = 3
) -> tuple[tn.DriftResult, float, float]:
    """Training days, then the current window; one tune's IS window spans the training days."""
    days = pd.bdate_range("2024-01-01", periods=len(train) + len(current))
    labels = _labels("SPX", days, [*train, *current])
    n = len(train)
    attributed = pd.DataFrame(
        {
            "symbol": "SPX",
            "is_start": [days[0]] + [pd.NaT] * len(tune_keys),
            "is_end": [days[n - 1]] + [pd.NaT] * len(tune_keys),
            "regime_key": [None, *tune_keys],
        }
    )
    res = tn.drift(labels, attributed, window=len(current), min_tunes=min_tunes)
    p = {_key(k): train.count(k) / n for k in set(train)}
    q = {_key(k): current.count(k) / len(current) for k in set(current)}
    tv, psi = _tv_psi(p, q)
    return res, tv, psi


@pytest.mark.parametrize(
    ("train", "current", "tunes", "tv", "want"),
    [
        ([A] * 8 + [B] * 2, [B] + [A] * 4, [_key(A)] * 3, 0.0, []),
        ([A] * 6 + [B] * 4, [B] * 5, [_key(B)] * 3, 0.6, ["total variation 0.60 > 0.5"]),
        ([A] * 39 + [B], [A] * 3 + [B], [_key(B)] * 3, 0.225, ["was 2.5% of training days"]),
        ([A] * 8 + [B] * 2, [A] * 5, [_key(A)] * 2, 0.2, ["only 2 tunes have the current"]),
    ],
    ids=["no-drift", "tv", "rare-key", "few-tunes"],
)
def test_drift_each_alert_rule(
    train: list[Tags], current: list[Tags], tunes: list[str], tv: float, want: list[str]
) -> None:
    res, tv_ind, psi_ind = _drift_case(train, current, tunes)
    assert tv_ind == pytest.approx(tv)
    assert res.total_variation == pytest.approx(tv) and res.psi == pytest.approx(psi_ind)
    assert res.current_key == _key(current[-1])
    reasons = res.reasons()
    assert len(reasons) == len(want) and res.alert == bool(want)
    for got, part in zip(reasons, want, strict=True):
        assert part in got
    if not want:
        assert res.text().endswith("No drift by the rule.")


def test_drift_does_not_depend_on_label_row_order() -> None:
    labels, attributed = _drift_frames()
    shuffled = labels.iloc[::-1].reset_index(drop=True)
    res = tn.drift(shuffled, attributed, window=6)
    table = res.table.set_index("regime_key")
    assert table.loc[_key(A), "training_share"] == pytest.approx(7 / 9)
    assert table.loc[_key(B), "training_share"] == pytest.approx(2 / 9)


# ---------------------------------------------------------------------------------------------
# the shipped sample


def test_sample_tunes_are_all_attributed_with_the_in_sample_best_run() -> None:
    from research.attribution.service import load_tune_study
    from research.config import PATHS

    study = load_tune_study()
    t = study.attributed.set_index("tune_id")
    assert len(t) == 36 and (t["reason"] == "").all()
    assert t["regime_key"].str.startswith("regime_v1_1|default_v1|").all()
    for key, fp in zip(t["regime_key"], t["regime_fingerprint"], strict=True):
        assert fp == hashlib.sha256(key.encode()).hexdigest()
    for col in tn.ATTRIBUTION_COLUMNS:
        if col not in ("trend_tag", "vol_tag", "efficiency_tag"):  # a tag may be "_" (null)
            assert t[col].notna().all(), col

    raw = pd.read_csv(PATHS.sample / "tunes.csv")
    assert raw["tune_id"].nunique() == 36
    ins = raw[raw["split"] == "is"].sort_values(
        ["tune_id", "sharpe", "run_id"], ascending=[True, False, True]
    )
    best = ins.groupby("tune_id").head(1).set_index("tune_id")["run_id"]
    oos = raw[raw["split"] == "oos"][["tune_id", "run_id", "sharpe"]]
    picked = best.reset_index().merge(oos, on=["tune_id", "run_id"], how="left")
    want = picked.set_index("tune_id")["sharpe"]
    assert want.notna().all() and len(want) == 36
    base = raw[(raw["split"] == "oos") & raw["is_baseline"]].set_index("tune_id")["sharpe"]
    best_oos_anywhere = raw[raw["split"] == "oos"].groupby("tune_id")["sharpe"].max()
    assert (t.loc[want.index, "best_run"] == best).all()
    np.testing.assert_allclose(
        t.loc[want.index, "best_oos_score"].to_numpy(float), want.to_numpy(float)
    )
    np.testing.assert_allclose(
        t.loc[base.index, "baseline_oos_score"].to_numpy(float), base.to_numpy()
    )
    # the in-sample pick is not, in general, the run that did best out of sample
    assert (want < best_oos_anywhere.loc[want.index]).any()
    assert (t["best_oos_run_id"] == [tn.run_uuid(r) for r in t["best_run"]]).all()
