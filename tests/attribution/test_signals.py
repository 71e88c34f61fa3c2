"""Signal attribution (seed 000): hand-computed forward returns, regimes, base rates, tables,
intervals and bad input; the sample agents without look-ahead."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from research.attribution import signals as sg
from research.attribution.agents import COOLDOWN, generate_signals
from research.clustered import cluster_bootstrap_ci


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
    assert a["enough"] and not t.loc["B", "enough"]
    assert np.isnan(t.loc["B", "ci_low"])  # one month: no interval
    # base rate: every labelled day with an outcome (days 0..39 of a +1-a-day market)
    base = np.mean([(k + 120) / (k + 100) - 1 for k in range(40)])
    assert a["base_return"] == pytest.approx(base)
    assert a["excess_return"] == pytest.approx(0.08 / 6 - base)
    # the signals' two months and the base rate's fall in one 3-month circular block: every
    # draw holds both months, so the draws cannot measure anything — no interval and no p
    # (never a zero-width interval with p = 0)
    assert np.isnan(a["excess_ci_low"]) and np.isnan(a["excess_ci_high"])
    assert np.isnan(a["excess_p"])


def _monthly_market(seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame, list[float]]:
    """Bars with large month-to-month moves; regime "up" on the first 10 trading days of every
    month of 2021 (and "down" on the rest), so each month has the same number of base-rate days.

    Returns bars, labels and, per month, the mean 20-day forward return of its "up" days."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-01", "2022-02-28")
    month = dates.year * 12 + dates.month
    drift = {m: rng.normal(0, 0.01) for m in np.unique(month)}  # a market move per month
    steps = np.array([drift[m] for m in month]) + rng.normal(0, 0.002, len(dates))
    bars = _bars(100 * np.exp(np.cumsum(steps)))
    bars["date"] = dates
    rank = pd.Series(1, index=dates).groupby([dates.year, dates.month]).cumsum().to_numpy()
    up = (rank <= 10) & (dates.year == 2021)
    labels = pd.DataFrame(
        {"date": dates, "symbol": "AAA", "model": "toy", "regime": np.where(up, "up", "down")}
    )
    fwd = sg.forward_returns(bars).set_index("date")["fwd_20"]
    per_month = [float(fwd[up & (dates.month == m)].mean()) for m in range(1, 13)]
    return bars, labels, per_month


def test_the_excess_interval_resamples_the_base_rate_with_the_signals() -> None:
    """Every month, one signal returns its month's base rate + 1 %: the market's moves are shared
    by the signals and the base-rate days of the same month, so every joint draw of months gives
    an excess of exactly +1 % — no spread at all (then no interval and no p: a p of 0 would
    claim a certainty nothing measured). Resampling the signals alone against a constant base
    rate (the former method) spreads the month-to-month moves into the interval."""
    bars, labels, per_month = _monthly_market()
    rows = []
    for m, rate in enumerate(per_month, start=1):
        first_up = labels.loc[(labels["regime"] == "up") & (labels["date"].dt.month == m)]
        rows.append((first_up["date"].iloc[0], "A", "c", "AAA", rate + 0.01))
    prepared = sg.prepare(_signals(rows), bars, labels)
    row = sg.regime_table(prepared, min_n=5).set_index("agent").loc["A"]
    assert row["excess_return"] == pytest.approx(0.01, abs=1e-12)
    base = prepared.base_days
    assert base is not None
    up = base["regime"] == "up"
    joint = sg.excess_interval(
        sg.month_numbers(prepared.usable["asof"]),
        prepared.usable["symbol"],
        prepared.usable["forward_return_20d"],
        sg.month_numbers(base.loc[up, "date"]),
        base.loc[up, "symbol"],
        base.loc[up, "fwd_20"],
        reps=500,
        rng=np.random.default_rng(0),
    )
    assert joint.excess == pytest.approx(0.01, abs=1e-12) and joint.se < 1e-12
    assert np.isnan(joint.p) and np.isnan(joint.ci_low) and np.isnan(joint.ci_high)
    assert np.isnan(row["excess_p"]) and np.isnan(row["excess_ci_low"])
    # the former interval: the signals' months resampled, the base rate a constant
    excess = np.array(per_month) + 0.01 - row["base_return"]
    lo, hi = cluster_bootstrap_ci(excess, np.arange(12), 2000, 0.05, np.random.default_rng(0))
    assert hi - lo > 0.01  # wide: the months' market moves count as noise


def test_excess_interval_agrees_with_an_independent_block_bootstrap() -> None:
    """The package's vectorised joint bootstrap against a pandas re-computation of the same
    draws (arch's circular block bootstrap with the same seed over the same month timeline) and
    scipy's t quantile."""
    from arch.bootstrap import CircularBlockBootstrap
    from scipy import stats

    rng = np.random.default_rng(11)
    base = pd.DataFrame(
        {
            "month": rng.integers(0, 30, 400) + 24_000,
            "symbol": rng.choice(["SPX", "IXIC"], 400),
            "ret": rng.normal(0.005, 0.04, 400),
        }
    )
    sig = base.sample(60, random_state=1).assign(ret=lambda f: f["ret"] + 0.003)
    got = sg.excess_interval(
        sig["month"], sig["symbol"], sig["ret"], base["month"], base["symbol"], base["ret"],
        reps=500, alpha=0.1, block=3, rng=np.random.default_rng(5),
    )  # fmt: skip
    rates = base.groupby("symbol")["ret"].mean()
    want = float((sig["ret"] - sig["symbol"].map(rates)).mean())
    assert got.excess == pytest.approx(want)
    timeline = np.arange(base["month"].min(), base["month"].max() + 1)
    boot = CircularBlockBootstrap(3, timeline, seed=np.random.default_rng(5))
    draws = []
    for (months,), _ in boot.bootstrap(500):
        drawn = pd.Series(months).value_counts()  # month -> times drawn
        s_w = sig["month"].map(drawn).fillna(0)
        b_w = base["month"].map(drawn).fillna(0)
        rate = (base["ret"] * b_w).groupby(base["symbol"]).sum() / b_w.groupby(base["symbol"]).sum()
        draws.append(float(((sig["ret"] - sig["symbol"].map(rate)) * s_w).sum() / s_w.sum()))
    se = np.std(draws, ddof=1)
    df = sig["month"].nunique() / 3 - 1
    half = stats.t.ppf(0.95, df) * se
    assert (got.se, got.df) == pytest.approx((se, df), rel=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx((want - half, want + half), rel=1e-12)
    assert got.p == pytest.approx(2 * stats.t.sf(abs(want) / se, df), rel=1e-9)
    assert got.months == len(timeline)


def test_excess_interval_edge_cases() -> None:
    one_month = sg.excess_interval(
        [5, 5], ["A", "A"], [0.1, 0.2], [5, 6], ["A", "A"], [0.0, 0.1],
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert one_month.excess == pytest.approx(0.15 - 0.05) and np.isnan(one_month.ci_low)
    no_base = sg.excess_interval(
        [5, 6], ["A", "B"], [0.1, 0.2], [5, 6], ["A", "A"], [0.0, 0.1],
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert np.isnan(no_base.excess) and np.isnan(no_base.p)


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


def test_circular_block_counts_are_arch_circular_block_resamples() -> None:
    """The vectorised draws are ``arch``'s circular block bootstrap: each resample is ``m``
    periods made of blocks of 3 consecutive periods (wrapping around), and the bootstrap
    variance of a mean agrees with arch's own resamples."""
    from arch.bootstrap import CircularBlockBootstrap

    m, block, reps = 40, 3, 20_000
    counts = sg.circular_block_counts(m, block, reps, np.random.default_rng(0))
    assert counts.shape == (reps, m) and (counts.sum(axis=1) == m).all()
    assert counts.mean(axis=0) == pytest.approx(np.ones(m), abs=0.03)
    # a hand case: one resample of m = 5 periods, two blocks of 3 from the same draws
    one = sg.circular_block_counts(5, 3, 1, np.random.default_rng(1))[0]
    starts = np.random.default_rng(1).integers(0, 5, size=(1, 2))[0]
    expected = np.bincount([(s + j) % 5 for s in starts for j in range(3)][:5], minlength=5)
    assert one.tolist() == expected.tolist()
    x = np.sin(np.arange(m) / 3.0) + np.arange(m) % 4  # autocorrelated values
    ours = (counts @ x) / m
    boot = CircularBlockBootstrap(block, x, seed=np.random.default_rng(2))
    theirs = np.array([data[0][0].mean() for data in boot.bootstrap(reps)])
    assert ours.var() == pytest.approx(theirs.var(), rel=0.05)
    assert ours.mean() == pytest.approx(theirs.mean(), abs=0.01)


def test_circular_block_totals_are_the_counts_times_the_values() -> None:
    """The fast totals ``excess_interval`` uses are ``circular_block_counts @ values`` from the
    same draws: m a multiple of the block or not, a block longer than m, one-period blocks,
    resamples spread over several chunks."""
    x = np.random.default_rng(7).normal(size=(23, 4))
    for m, block, reps, chunk in (
        (23, 3, 1000, 256),
        (21, 3, 7, 2),
        (5, 9, 50, 256),
        (23, 1, 9, 4),
    ):
        values = x[:m]
        counts = sg.circular_block_counts(m, block, reps, np.random.default_rng(3))
        got = sg.circular_block_totals(values, block, reps, np.random.default_rng(3), chunk=chunk)
        assert got.shape == (reps, 4)
        assert got == pytest.approx(counts @ values, abs=1e-12), (m, block, reps, chunk)
    one = sg.circular_block_totals(x[:, 0], 3, 10, np.random.default_rng(3))
    assert one.shape == (10,)


def _two_agents() -> sg.PreparedSignals:
    """Agents A and B firing on random days of a random-walk market in regime "up"."""
    rng = np.random.default_rng(8)
    dates = pd.bdate_range("2019-01-01", "2021-12-31")
    bars = _bars(100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates)))))
    bars["date"] = dates
    labels = pd.DataFrame({"date": dates, "symbol": "AAA", "model": "toy", "regime": "up"})
    days = rng.choice(len(dates) - 30, size=120, replace=False)
    rows = [(dates[d], "AB"[i % 2], "c", "AAA", None) for i, d in enumerate(days)]
    return sg.prepare(_signals(rows), bars, labels)


def test_a_cells_result_does_not_depend_on_the_other_cells() -> None:
    """Each cell draws from its own seeded stream: agent B's row is the same whether the table
    also holds agent A (drawn first) or not — with one generator shared along the cells, B's
    draws would start where A's ended."""
    import dataclasses

    prepared = _two_agents()
    both = sg.regime_table(prepared, min_n=5).set_index("agent")
    only_b = dataclasses.replace(prepared, frame=prepared.frame[prepared.frame["agent"] == "B"])
    alone = sg.regime_table(only_b, min_n=5).set_index("agent")
    cols = ["ci_low", "ci_high", "excess_ci_low", "excess_ci_high", "excess_p"]
    assert np.isfinite(both.loc["B", cols].astype(float)).all()
    assert both.loc["B", cols].tolist() == alone.loc["B", cols].tolist()
    # the seed still matters, and the stream is the documented one
    other = sg.regime_table(only_b, min_n=5, seed=1).set_index("agent")
    assert other.loc["B", "excess_p"] != alone.loc["B", "excess_p"]
    a, b = sg.cell_seed(0, ("forward_return_20d", "B", "up")), sg.cell_seed(0, ("A",))
    assert a.entropy != b.entropy and sg.cell_seed(
        0, ["forward_return_20d", "B", "up"]
    ).entropy == (a.entropy)


def test_cell_seeds_are_the_same_in_every_python_process() -> None:
    """Python salts ``hash`` of strings per process: the cell seed must not use it."""
    import os

    code = (
        "from research.attribution.signals import cell_seed; "
        "print(cell_seed(3, ('forward_return_20d', 'DefensiveAgent', 'bear_high_vol')).entropy)"
    )
    outs = set()
    for salt in ("1", "2"):
        # subprocesses on purpose: PYTHONHASHSEED is read once, when an interpreter starts
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": salt},
        )
        assert res.returncode == 0, res.stderr
        outs.add(res.stdout.strip())
    here = sg.cell_seed(3, ("forward_return_20d", "DefensiveAgent", "bear_high_vol")).entropy
    assert outs == {str(here)}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block": 0}, r"block must be an integer >= 1, got 0"),
        ({"block": -2}, r"block must be an integer >= 1, got -2"),
        ({"block": 2.5}, r"block must be an integer >= 1, got 2.5"),
        ({"reps": 1}, r"reps must be an integer >= 2, got 1"),
        ({"alpha": 1.5}, r"alpha must be a number in \(0, 1\), got 1.5"),
    ],
)
def test_excess_interval_bad_options_are_named(options: dict, message: str) -> None:
    args = ([5, 6], ["A", "A"], [0.1, 0.2], [5, 6], ["A", "A"], [0.0, 0.1])
    with pytest.raises(ValueError, match=message):
        sg.excess_interval(*args, rng=np.random.default_rng(0), **options)


def test_excess_interval_arrays_of_different_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"signal_months, signal_symbols, signal_values need one"):
        sg.excess_interval(
            [5, 6], ["A"], [0.1, 0.2], [5], ["A"], [0.0], rng=np.random.default_rng(0)
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block": 0}, r"block must be an integer >= 1, got 0"),
        ({"block": -2}, r"block must be an integer >= 1, got -2"),
        ({"excess_reps": 0}, r"excess_reps must be an integer >= 2, got 0"),
        ({"reps": 0}, r"reps must be an integer >= 1, got 0"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, r"seed must be an integer >= 0, got 1.5"),
        ({"min_n": -1}, r"min_n must be an integer >= 0, got -1"),
        ({"alpha": 0.0}, r"alpha must be a number in \(0, 1\), got 0.0"),
        ({"by": "symbol"}, r"by must be None, 'agent' or 'cluster', got 'symbol'"),
    ],
)
def test_regime_table_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        sg.regime_table(_prepared(), **options)
    assert "\n" not in str(err.value)


def test_block_counts_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match=r"block must be an integer >= 1, got 0"):
        sg.circular_block_counts(10, 0, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"reps must be an integer >= 1, got 0"):
        sg.circular_block_totals(np.ones(10), 3, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"values has no rows"):
        sg.circular_block_totals(np.ones(0), 3, 5, np.random.default_rng(0))
