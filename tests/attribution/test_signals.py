"""Signal attribution (seed 000): hand-computed forward returns, regimes, base rates, tables,
intervals and bad input; the sample agents without look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from research.attribution import signals as sg
from research.attribution.agents import COOLDOWN, generate_signals


def _bars(closes: list[float] | np.ndarray, symbol: str = "AAA", start: str = "2021-01-04"):
    closes = np.asarray(closes, float)
    return pd.DataFrame(
        {
            "date": pd.bdate_range(start, periods=len(closes)),
            "symbol": symbol,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )


BARS = _bars(100.0 + np.arange(60))  # +1 a day
DATES = BARS["date"]


def _signals(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["asof", "agent", "cluster", "symbol", "forward_return_20d"])


def _labels(regimes: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {"date": DATES, "symbol": "AAA", "model": "toy", "regime": pd.Series(regimes, dtype=object)}
    )


def test_forward_returns_by_hand() -> None:
    fwd = sg.forward_returns(BARS).set_index("date")
    assert fwd.loc[DATES[0], "fwd_1"] == pytest.approx(101 / 100 - 1)
    assert fwd.loc[DATES[10], "fwd_20"] == pytest.approx(130 / 110 - 1)
    assert fwd["fwd_20"].isna().sum() == 20  # the last 20 days have no 20-day outcome


def test_prepare_fills_returns_and_attaches_model_regimes() -> None:
    sig = _signals(
        [
            (DATES[0], "A", "c1", "AAA", None),  # filled from bars: 120/100 - 1
            (DATES[5], "A", "c1", "AAA", 0.5),  # kept as given
            (DATES[50], "B", "c2", "AAA", None),  # no outcome yet: left out
        ]
    )
    labels = _labels(["up"] * 30 + ["down"] * 30)
    p = sg.prepare(sig, BARS, labels)
    f = p.frame.set_index("asof")
    assert f.loc[DATES[0], "forward_return_20d"] == pytest.approx(0.2)
    assert f.loc[DATES[5], "forward_return_20d"] == 0.5
    assert p.filled_returns == 1 and p.without_return == 1 and p.regime_model == "toy"
    assert list(f["regime"]) == ["up", "up", "down"] and set(f["regime_source"]) == {"toy"}
    # base rate: every "up" day with an outcome (days 0..29): mean of (k+120)/(k+100) - 1
    want = np.mean([(k + 120) / (k + 100) - 1 for k in range(30)])
    assert f.loc[DATES[0], "base_return_20d"] == pytest.approx(want)
    assert f.loc[DATES[0], "base_hit_rate"] == 1.0
    assert len(p.usable) == 2


def test_records_keep_their_own_regime() -> None:
    sig = _signals([(DATES[0], "A", "c1", "AAA", 0.1)]).assign(regime=["risk_off"])
    p = sg.prepare(sig, BARS)
    assert p.frame["regime"].tolist() == ["risk_off"] and p.regime_model is None
    assert p.frame["regime_source"].tolist() == ["records"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [(DATES[0], "A", "c", "ZZZ", 0.1)],
            r"column 'symbol': 1 rows name symbols without bars \['ZZZ'\]",
        ),
        (
            [(pd.Timestamp("2021-01-09"), "A", "c", "AAA", 0.1)],  # a Saturday
            r"column 'asof': 1 rows are not trading days of their symbol's bars \(AAA 2021-01-04",
        ),
        ([(DATES[0], "A", "c", "AAA", 0.1)], r"1 records carry no regime; name a regime model"),
    ],
)
def test_bad_records_are_named(rows: list[tuple], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sg.prepare(_signals(rows), BARS, None, source="sig.csv")


def _prepared() -> sg.PreparedSignals:
    # January: A fires on days 0-3 (+,+,-,+), February: A on days 20, 21 (-,+); B once in Jan
    rets = {0: 0.02, 1: 0.01, 2: -0.03, 3: 0.04, 20: -0.01, 21: 0.05}
    rows = [(DATES[d], "A", "trend", "AAA", r) for d, r in rets.items()]
    rows.append((DATES[4], "B", "contra", "AAA", -0.02))
    rows.append((DATES[59], "C", "contra", "AAA", None))  # the last day: no outcome at all
    return sg.prepare(_signals(rows), BARS, _labels(["up"] * 60))


def test_heatmap_by_month_and_agent() -> None:
    heat = sg.heatmap(_prepared(), by="agent").set_index(["agent", "period"])
    jan, feb = pd.Timestamp("2021-01-01"), pd.Timestamp("2021-02-01")
    assert heat.loc[("A", jan), "mean_return"] == pytest.approx(0.01)
    assert heat.loc[("A", jan), "hit_rate"] == 0.75 and heat.loc[("A", jan), "n"] == 4
    assert heat.loc[("A", feb), "mean_return"] == pytest.approx(0.02)
    assert heat.loc[("B", jan), "n"] == 1
    weekly = sg.heatmap(_prepared(), freq="W")
    assert weekly["n"].sum() == 7 and weekly["period"].min() == pd.Timestamp("2021-01-02")


def test_regime_table_intervals() -> None:
    t = sg.regime_table(_prepared(), min_n=5).set_index("agent")
    a = t.loc["A"]
    assert a["n"] == 6 and a["months"] == 2 and a["mean_return"] == pytest.approx(0.08 / 6)
    lo, hi = proportion_confint(4, 6, alpha=0.05, method="wilson")
    assert (a["hit_rate"], a["hit_ci_low"], a["hit_ci_high"]) == pytest.approx((4 / 6, lo, hi))
    # two months: the bootstrap means lie between the all-January and all-February means
    assert 0.01 - 1e-12 <= a["ci_low"] <= a["mean_return"] <= a["ci_high"] <= 0.02 + 1e-12
    assert a["enough"] and not t.loc["B", "enough"]
    assert np.isnan(t.loc["B", "ci_low"])  # one month: no interval
    assert a["excess_return"] == pytest.approx(a["mean_return"] - a["base_return"])


def test_decay_by_horizon() -> None:
    d = sg.decay(_prepared(), by="cluster").set_index(["cluster", "horizon"])
    # horizon 1 comes from the bars (+1 a day), whatever the record says at 20 days
    days = [0, 1, 2, 3, 20, 21]
    want = np.mean([1 / (100 + k) for k in days])
    assert d.loc[("trend", 1), "mean_return"] == pytest.approx(want)
    assert d.loc[("trend", 1), "hit_rate"] == 1.0
    assert sorted(set(d.index.get_level_values("horizon"))) == [1, 5, 10, 20]
    # the last day's record has no outcome at any horizon: in no row
    assert d.loc[("contra", 1), "n"] == 1 and d.loc[("trend", 20), "n"] == 6


# --- the sample agents ------------------------------------------------------------------------


def test_mean_reversion_fires_after_a_3pct_drop_with_a_cooldown() -> None:
    closes = np.full(40, 100.0)
    closes[10:] = 96.0  # day 10: 5-day return -4 %
    closes[12:] = 92.0  # day 12: still down, but inside the cooldown
    closes[20:] = 88.0  # day 20: -4.3 % vs day 15
    sig = generate_signals(_bars(closes))
    mr = sig.loc[sig["agent"] == "MeanReversionAgent", "asof"]
    idx = [int(np.flatnonzero(_bars(closes)["date"] == d)[0]) for d in mr]
    assert idx[0] == 10 and all(b - a >= COOLDOWN for a, b in zip(idx, idx[1:], strict=False))
    assert 12 not in idx and 20 in idx


def test_agents_use_no_future_data() -> None:
    rng = np.random.default_rng(3)
    bars = _bars(100 * np.exp(np.cumsum(rng.normal(0, 0.02, 400))))
    full = generate_signals(bars).drop(columns="forward_return_20d")
    for cut in (150, 260, 330):
        part = generate_signals(bars.iloc[:cut]).drop(columns="forward_return_20d")
        upto = full.loc[full["asof"] <= bars["date"].iloc[cut - 1]].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, upto)


def _table(rows: list[tuple]) -> pd.DataFrame:
    cols = ["agent", "regime", "excess_ci_low", "excess_ci_high", "enough"]
    return pd.DataFrame(rows, columns=cols)


def test_findings_wording_rule() -> None:
    t = _table(
        [
            ("A", "up", 0.001, 0.02, True),  # beats
            ("A", "down", -0.03, -0.001, True),  # trails
            ("B", "up", -0.01, 0.01, True),  # indistinguishable
            ("B", "down", 0.01, 0.02, False),  # too few records: not tested
        ]
    )
    f = sg.findings(t)
    assert f["tested"] == 3 and f["beats"] == ["A in up"] and f["trails"] == ["A in down"]
    assert f["expected_by_chance"] == pytest.approx(0.15)
    assert f["sentence"].startswith(
        "Of 3 agent x regime cells with enough records, 1 beat it (A in up); 1 trail it (A in down)"
    )
    none = sg.findings(t.iloc[[2]])
    assert "none differs from its regime's base rate" in none["sentence"]
    with pytest.raises(ValueError, match="no base-rate comparison"):
        sg.findings(t.drop(columns=["excess_ci_low"]))
