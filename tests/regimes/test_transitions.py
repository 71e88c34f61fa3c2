"""Hand-computed checks of research.regimes.transitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from research.regimes.transitions import (
    agreement,
    agreement_matrix,
    apply_min_dwell,
    change_events,
    durations,
    share_by_period,
    transition_matrix,
)

N = np.nan


def frame(seq: list[object], symbol: str = "X", start: str = "2024-01-01") -> pd.DataFrame:
    """One symbol's label table on consecutive calendar days."""
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=len(seq), freq="D"),
            "symbol": symbol,
            "model": "m",
            "regime": pd.Series(seq, dtype=object),
        }
    )


def smoothed(seq: list[object], min_dwell: int) -> list[object]:
    return apply_min_dwell(frame(seq), min_dwell)["regime_smoothed"].tolist()


def same(got: list[object], want: list[object]) -> bool:
    return len(got) == len(want) and all(
        (isinstance(g, float) and isinstance(w, float) and math.isnan(g) and math.isnan(w))
        or g == w
        for g, w in zip(got, want, strict=True)
    )


# ---------------------------------------------------------------------------- apply_min_dwell

RAW = ["A", "A", "B", "A", "A", "B", "B", "B", "A"]


@pytest.mark.parametrize(
    ("seq", "min_dwell", "want"),
    [
        # first label needs confirmation too; single B blips are ignored; B B confirms at t6
        (RAW, 2, [N, "A", "A", "A", "A", "A", "B", "B", "B"]),
        # nothing is seen 3 times in a row until B B B (t5..t7)
        (RAW, 3, [N, N, N, N, N, N, N, "B", "B"]),
        (
            ["A", "A", "A", "B", "A", "A", "B", "B", "B", "A"],
            3,
            [N, N, "A", "A", "A", "A", "A", "A", "B", "B"],
        ),
        (
            ["A", "A", "A", "B", "A", "A", "B", "B", "B", "A"],
            2,
            [N, "A", "A", "A", "A", "A", "A", "B", "B", "B"],
        ),
        # a candidate C interrupted by another candidate B restarts: B C B B
        (["A", "A", "B", "C", "B", "B"], 2, [N, "A", "A", "A", "A", "B"]),
    ],
)
def test_min_dwell_hand_sequences(seq: list[object], min_dwell: int, want: list[object]) -> None:
    assert same(smoothed(seq, min_dwell), want)


def test_min_dwell_nan_holds_label_and_breaks_confirmation() -> None:
    # NaN keeps A; the B before the NaN does not count with the B after it
    assert same(smoothed(["A", "A", "B", N, "B", "B"], 2), [N, "A", "A", "A", "A", "B"])
    # leading NaN (warm-up) stays NaN; the first label is adopted after 2 bars
    assert same(smoothed([N, N, "A", "A", N], 2), [N, N, N, "A", "A"])


def test_min_dwell_one_is_raw_forward_filled() -> None:
    seq: list[object] = [N, "A", "B", "B", N, "A", "C", N]
    assert same(smoothed(seq, 1), [N, "A", "B", "B", "B", "A", "C", "C"])
    labelled = [i for i, v in enumerate(seq) if isinstance(v, str)]
    got = smoothed(seq, 1)
    assert [got[i] for i in labelled] == [seq[i] for i in labelled]


def test_min_dwell_is_causal_on_every_prefix() -> None:
    rng = np.random.default_rng(7)
    seq: list[object] = list(
        rng.choice(np.array(["A", "B", "C", "nan"]), size=80, p=[0.45, 0.35, 0.1, 0.1])
    )
    seq = [N if v == "nan" else str(v) for v in seq]
    for min_dwell in (2, 3, 5):
        full = smoothed(seq, min_dwell)
        for t in range(len(seq)):
            prefix = smoothed(seq[: t + 1], min_dwell)
            assert same([prefix[-1]], [full[t]]), (min_dwell, t)
    # and on the hand sequence
    full = smoothed(RAW, 2)
    assert all(same([smoothed(RAW[: t + 1], 2)[-1]], [full[t]]) for t in range(len(RAW)))


def test_min_dwell_per_symbol_independent_and_keeps_row_order() -> None:
    x = frame(["A", "A", "B"], "X")  # ends with a pending candidate B
    y = frame(["B", "A", "A"], "Y")  # if X's state leaked, Y's first B would confirm B
    stacked = pd.concat([x, y]).sort_values(["date", "symbol"]).reset_index(drop=True)
    out = apply_min_dwell(stacked, 2)
    assert out[["date", "symbol", "regime"]].equals(stacked[["date", "symbol", "regime"]])
    got_y = out.loc[out["symbol"] == "Y", "regime_smoothed"].tolist()
    got_x = out.loc[out["symbol"] == "X", "regime_smoothed"].tolist()
    assert same(got_y, [N, N, "A"])
    assert same(got_x, [N, "A", "A"])
    assert same(got_y, smoothed(["B", "A", "A"], 2))


def test_min_dwell_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="min_dwell"):
        apply_min_dwell(frame(["A"]), 0)
    with pytest.raises(ValueError, match="duplicate"):
        apply_min_dwell(pd.concat([frame(["A"]), frame(["B"])]), 2)


# ---------------------------------------------------------------------------- change_events


def test_change_events_hand_sequence_with_nan() -> None:
    x = frame(["A", "A", N, "B", "B", "B", "A", N, "A"], "X")
    y = frame([N, N, "C", "C", "D"], "Y", start="2024-03-01")
    ev = change_events(pd.concat([y, x]))  # input order does not matter
    assert list(ev.columns) == ["symbol", "date", "from_regime", "to_regime", "duration_bars"]
    want = pd.DataFrame(
        {
            "symbol": ["X", "X", "Y"],
            "date": pd.to_datetime(["2024-01-04", "2024-01-07", "2024-03-05"]),
            "from_regime": ["A", "B", "C"],
            "to_regime": ["B", "A", "D"],
            "duration_bars": [2, 3, 2],  # labelled bars only: A A (NaN) -> 2
        }
    )
    assert ev["symbol"].tolist() == want["symbol"].tolist()
    assert (ev["date"].to_numpy() == want["date"].to_numpy()).all()
    assert ev["from_regime"].tolist() == want["from_regime"].tolist()
    assert ev["to_regime"].tolist() == want["to_regime"].tolist()
    assert ev["duration_bars"].tolist() == want["duration_bars"].tolist()


def test_change_events_none_for_constant_or_all_nan() -> None:
    assert change_events(frame([N, "A", N, "A"])).empty
    assert change_events(frame([N, N])).empty


def test_change_events_not_across_symbols() -> None:
    ev = change_events(pd.concat([frame(["A", "A"], "X"), frame(["B", "B"], "Y")]))
    assert ev.empty
    # X ends in A and Y starts in A: two separate runs, Y's A run lasted 1 bar, not 3
    labels = pd.concat([frame(["B", "A", "A"], "X"), frame(["A", "B"], "Y")])
    ev = change_events(labels)
    assert ev[["symbol", "from_regime", "to_regime", "duration_bars"]].values.tolist() == [
        ["X", "B", "A", 1],
        ["Y", "A", "B", 1],
    ]
    d = durations(labels).set_index("regime")
    assert d.loc["A", "n_runs"] == 2 and d.loc["A", "max_observed_duration"] == 2


# ---------------------------------------------------------------------------- transition_matrix


def test_transition_counts_and_normalisation() -> None:
    labels = frame(["A", "A", "B", "B", "B", "A"])
    counts = transition_matrix(labels, normalize=False)
    assert counts.loc["A", "A"] == 1
    assert counts.loc["A", "B"] == 1
    assert counts.loc["B", "B"] == 2
    assert counts.loc["B", "A"] == 1
    assert int(counts.to_numpy().sum()) == 5
    probs = transition_matrix(labels)
    assert probs.loc["A"].tolist() == [0.5, 0.5]
    assert probs.loc["B", "B"] == pytest.approx(2 / 3)
    assert probs.loc["B", "A"] == pytest.approx(1 / 3)
    assert probs.index.name == "from" and probs.columns.name == "to"


def test_transition_matrix_never_across_symbols() -> None:
    # concatenated naively, X's last B -> Y's first B would add one B -> B
    labels = pd.concat([frame(["A", "A", "B"], "X"), frame(["B", "B", "A"], "Y")])
    counts = transition_matrix(labels, normalize=False)
    assert counts.loc["B", "B"] == 1
    assert counts.loc["A", "A"] == 1
    assert counts.loc["A", "B"] == 1
    assert counts.loc["B", "A"] == 1
    assert int(counts.to_numpy().sum()) == 4


def test_transition_matrix_states_order_and_unseen_state() -> None:
    labels = frame(["A", "A", "B", N, "B", "A"])  # NaN skipped: B -> B across it
    counts = transition_matrix(labels, states=["C", "B", "A"], normalize=False)
    assert list(counts.index) == ["C", "B", "A"] and list(counts.columns) == ["C", "B", "A"]
    assert counts.loc["C"].tolist() == [0, 0, 0]
    assert counts.loc["B"].tolist() == [0, 1, 1]
    probs = transition_matrix(labels, states=["C", "B", "A"])
    assert probs.loc["C"].isna().all()
    assert probs.loc["A"].tolist() == [0.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="not in states"):
        transition_matrix(labels, states=["A"])


# ---------------------------------------------------------------------------- durations


def test_durations_hand_computed() -> None:
    # runs: A2 (first, censored) B3 A4 B1 (last, censored)
    labels = frame(["A", "A", "B", "B", "B", "A", "A", "A", "A", "B"])
    d = durations(labels).set_index("regime")
    assert d.loc["A", "share_of_time"] == pytest.approx(0.6)
    assert d.loc["B", "share_of_time"] == pytest.approx(0.4)
    assert d["n_runs"].tolist() == [2, 2]
    assert d["n_complete_runs"].tolist() == [1, 1]
    assert d["mean_observed_duration"].tolist() == [3.0, 2.0]
    assert d["median_observed_duration"].tolist() == [3.0, 2.0]
    assert d["max_observed_duration"].tolist() == [4.0, 3.0]
    assert d["mean_complete_duration"].tolist() == [4.0, 3.0]
    # AA = 4 of 6 transitions out of A, BB = 2 of 3 out of B
    assert d["p_stay"].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert d["expected_duration"].tolist() == pytest.approx([3.0, 3.0])
    counts = transition_matrix(labels, normalize=False)
    for s in ("A", "B"):  # self-transitions = bars - runs
        assert counts.loc[s, s] == d.loc[s, "n_bars"] - d.loc[s, "n_runs"]


def test_durations_absorbing_and_unseen_states() -> None:
    d = durations(frame(["A", "A", "A"]), states=["A", "B"]).set_index("regime")
    assert d.loc["A", "expected_duration"] == math.inf
    assert d.loc["B", "n_bars"] == 0 and d.loc["B", "share_of_time"] == 0.0
    assert math.isnan(d.loc["B", "expected_duration"])
    assert math.isnan(d.loc["B", "mean_observed_duration"])


def test_durations_match_markov_chain_and_statsmodels_formula() -> None:
    p = np.array([[0.95, 0.05], [0.10, 0.90]])
    rng = np.random.default_rng(20240101)
    n = 20_000
    states = np.empty(n, dtype=np.int64)
    states[0] = 0
    u = rng.random(n)
    for t in range(1, n):
        states[t] = 0 if u[t] < p[states[t - 1], 0] else 1
    labels = frame([("S0", "S1")[s] for s in states])
    d = durations(labels, states=["S0", "S1"]).set_index("regime")

    # observed mean run length ~ 1 / (1 - p_ii) within 4 standard errors
    runs = pd.Series(states).ne(pd.Series(states).shift()).cumsum()
    lengths = pd.Series(states).groupby(runs).agg(["first", "size"])
    for i, name in enumerate(["S0", "S1"]):
        own = lengths.loc[lengths["first"] == i, "size"]
        se = own.std() / math.sqrt(len(own))
        assert abs(d.loc[name, "mean_observed_duration"] - 1 / (1 - p[i, i])) < 4 * se
        assert abs(d.loc[name, "mean_complete_duration"] - 1 / (1 - p[i, i])) < 4 * se
        assert abs(d.loc[name, "expected_duration"] - 1 / (1 - p[i, i])) < 4 * se

    # expected_duration is statsmodels' MarkovSwitchingResults.expected_durations for the
    # estimated matrix (its params are p[0->0], p[1->0], const[0], const[1], sigma2)
    est = transition_matrix(labels, states=["S0", "S1"]).to_numpy()
    model = MarkovRegression(np.random.default_rng(0).normal(size=50), k_regimes=2)
    res = model.filter(np.array([est[0, 0], est[1, 0], 0.0, 1.0, 1.0]))
    assert d["expected_duration"].to_numpy() == pytest.approx(np.asarray(res.expected_durations))


# ---------------------------------------------------------------------------- agreement


def dims(values: list[str], column: str = "trend_dim", model: str = "m") -> pd.DataFrame:
    out = frame(list(values))
    out[column] = out.pop("regime")
    out["model"] = model
    return out


def test_agreement_identical_labels() -> None:
    rng = np.random.default_rng(1)
    values = list(rng.choice(np.array(["up", "flat", "down"]), size=300))
    res = agreement(dims(values, model="a"), dims(values, model="b"), "trend_dim")
    assert res.n == 300
    assert res.kappa == pytest.approx(1.0)
    assert res.cramers_v == pytest.approx(1.0)
    assert res.agreement_rate == 1.0
    assert (res.model_a, res.model_b) == ("a", "b")
    assert list(res.table.index) == ["up", "flat", "down"]


def test_agreement_relabelled_copy_has_cramers_v_one() -> None:
    rng = np.random.default_rng(2)
    a = frame(list(rng.choice(np.array(["A", "B", "C"]), size=400)))
    b = a.copy()
    b["regime"] = b["regime"].map({"A": "X", "B": "Y", "C": "Z"})
    res = agreement(a, b, "regime")
    assert res.cramers_v == pytest.approx(1.0)
    assert res.kappa is None and res.agreement_rate is None
    assert res.table.loc["A", "X"] == (a["regime"] == "A").sum()


def test_agreement_independent_labels_kappa_ci_covers_zero() -> None:
    rng = np.random.default_rng(3)
    levels = np.array(["low", "normal", "high"])
    a = dims(list(rng.choice(levels, size=5000)), "vol_dim")
    b = dims(list(rng.choice(levels, size=5000)), "vol_dim")
    res = agreement(a, b, "vol_dim")
    assert res.kappa is not None and res.kappa_ci_low is not None and res.kappa_ci_high is not None
    assert res.kappa_ci_low < 0 < res.kappa_ci_high
    assert abs(res.kappa) < 0.05
    assert res.cramers_v < 0.05


def test_agreement_hand_2x2_kappa_and_cramers_v() -> None:
    # table a x b: up/up 20, up/down 5, down/up 10, down/down 15 (n = 50)
    pairs = [("up", "up")] * 20 + [("up", "down")] * 5 + [("down", "up")] * 10
    pairs += [("down", "down")] * 15
    a = dims([p[0] for p in pairs])
    b = dims([p[1] for p in pairs])
    res = agreement(a, b, "trend_dim")
    p_o = (20 + 15) / 50
    p_e = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    assert res.agreement_rate == pytest.approx(p_o)
    assert res.kappa == pytest.approx((p_o - p_e) / (1 - p_e))  # = 0.4
    assert res.kappa == pytest.approx(0.4)
    phi = (20 * 15 - 5 * 10) / math.sqrt(25 * 25 * 30 * 20)
    assert res.cramers_v == pytest.approx(abs(phi))
    assert res.table.loc["flat"].sum() == 0  # unseen label kept as a zero row
    assert res.kappa_se is not None and res.kappa_se > 0
    assert res.kappa_ci_low == pytest.approx(0.4 - 1.959963984540054 * res.kappa_se)


def test_agreement_inner_join_and_nan_drop() -> None:
    a = dims(["up", "up", "down", "flat"])
    b = dims(["up", None, "down"])  # type: ignore[list-item]
    res = agreement(a, b, "trend_dim")
    assert res.n == 2  # row 1 NaN in b, row 3 missing from b


def test_agreement_matrix_kappa_and_cramers_v() -> None:
    rng = np.random.default_rng(4)
    base = list(rng.choice(np.array(["up", "flat", "down"]), size=500))
    noisy = [v if rng.random() < 0.7 else "flat" for v in base]
    frames = {"m1": dims(base), "m2": dims(noisy), "m3": dims(base)}
    km = agreement_matrix(frames, "trend_dim")
    assert list(km.index) == ["m1", "m2", "m3"] and list(km.columns) == ["m1", "m2", "m3"]
    assert np.allclose(np.diag(km.to_numpy()), 1.0)
    assert km.loc["m1", "m3"] == pytest.approx(1.0)
    assert km.loc["m1", "m2"] == pytest.approx(
        agreement(frames["m1"], frames["m2"], "trend_dim").kappa
    )
    assert km.loc["m2", "m1"] == km.loc["m1", "m2"]

    a = frame(list(rng.choice(np.array(["A", "B"]), size=200)))
    b = a.copy()
    b["regime"] = b["regime"].map({"A": "Q", "B": "R"})
    vm = agreement_matrix({"a": a, "b": b}, "regime")
    assert vm.loc["a", "b"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="comparable"):
        agreement_matrix({"a": a, "b": b}, "regime", statistic="kappa")


# ---------------------------------------------------------------------------- share_by_period


def test_share_by_period_hand_computed() -> None:
    labels = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2023-12-28", "2023-12-29", "2023-12-30", "2024-01-02", "2024-01-03", "2024-01-04"]
            ),
            "symbol": "X",
            "regime": pd.Series(["A", "B", "B", "A", "A", None], dtype=object),
        }
    )
    other = frame(["B"], "Y", start="2024-06-01")
    out = share_by_period(pd.concat([labels, other]), "YE", states=["B", "A"])
    assert list(out.columns) == ["symbol", "period", "regime", "n_bars", "share"]
    got = list(out.itertuples(index=False, name=None))
    want = [
        ("X", pd.Timestamp("2023-12-31"), "B", 2, 2 / 3),
        ("X", pd.Timestamp("2023-12-31"), "A", 1, 1 / 3),
        ("X", pd.Timestamp("2024-12-31"), "B", 0, 0.0),
        ("X", pd.Timestamp("2024-12-31"), "A", 2, 1.0),
        ("Y", pd.Timestamp("2024-12-31"), "B", 1, 1.0),
        ("Y", pd.Timestamp("2024-12-31"), "A", 0, 0.0),
    ]
    assert [g[:4] for g in got] == [w[:4] for w in want]
    assert [g[4] for g in got] == pytest.approx([w[4] for w in want])
