"""The ``markov`` regime model: parameter recovery, filtered-only probabilities, no look-ahead,
stable state order, failures, and claims about real SPX history."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from research.regimes import markov
from research.regimes.markov import SPEC, MarkovFit, compute, fit_markov, labels_for
from research.regimes.ruleset import DEFAULT_RULESET, Ruleset

P2 = np.array([[0.98, 0.02], [0.05, 0.95]])
MU2 = np.array([0.05, -0.1])
SD2 = np.array([0.5, 2.0])


def simulate(
    n: int, seed: int, start: int, P: np.ndarray, mu: np.ndarray, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` returns (percent) from a Markov chain starting in ``start``, and the true states."""
    rng = np.random.default_rng(seed)
    states = np.empty(n, dtype=int)
    states[0] = start
    for t in range(1, n):
        states[t] = rng.choice(len(mu), p=P[states[t - 1]])
    return rng.normal(mu[states], sd[states]), states


def bars_from_returns(returns_pct: np.ndarray, symbol: str = "SIM") -> pd.DataFrame:
    """Bars whose close-to-close log returns are ``returns_pct / 100`` (one more bar than
    returns)."""
    close = 100.0 * np.exp(np.r_[0.0, np.cumsum(returns_pct / 100.0)])
    dates = pd.bdate_range("2000-01-03", periods=len(close))
    return pd.DataFrame(
        {
            "date": dates,
            "symbol": symbol,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": np.nan,
        }
    )


def rules(**markov_kw: int) -> Ruleset:
    return dataclasses.replace(
        DEFAULT_RULESET, markov=dataclasses.replace(DEFAULT_RULESET.markov, **markov_kw)
    )


@pytest.fixture(scope="module")
def sim2() -> tuple[np.ndarray, np.ndarray, MarkovFit]:
    y, s = simulate(2000, 0, 0, P2, MU2, SD2)
    return y, s, fit_markov(y, 2)


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    from research.data.market import load_bars

    bars = load_bars()
    return bars[bars["symbol"] == "SPX"].reset_index(drop=True)


SMALL = rules(min_train_bars=300, refit_every_bars=150)


@pytest.fixture(scope="module")
def spx_small(spx: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first 1,000 SPX bars and their classification with small windows (fits at rows 300,
    450, 600, 750, 900)."""
    bars = spx.iloc[:1000].reset_index(drop=True)
    return bars, compute(bars, None, SMALL)


# --- fit_markov on simulated data ----------------------------------------------------------


def test_fit_recovers_parameters(sim2: tuple[np.ndarray, np.ndarray, MarkovFit]) -> None:
    _, _, fit = sim2
    np.testing.assert_allclose(np.sqrt(fit.variances), SD2, rtol=0.1)
    assert abs(fit.means[0] - MU2[0]) < 0.03  # se ~0.015 (~1,400 calm returns, sd 0.5)
    assert abs(fit.means[1] - MU2[1]) < 0.15  # se ~0.08 (~600 turbulent returns, sd 2)
    np.testing.assert_allclose(fit.transition, P2, atol=0.015)
    np.testing.assert_allclose(fit.transition.sum(axis=1), 1.0)
    np.testing.assert_allclose(fit.expected_durations, 1 / (1 - np.diag(fit.transition)))
    assert fit.k == 2 and fit.converged and np.isfinite(fit.loglike)


def test_filtered_labels_match_true_states(sim2: tuple[np.ndarray, np.ndarray, MarkovFit]) -> None:
    y, states, fit = sim2
    probs = markov.filtered_probabilities(y, fit)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == states).mean() > 0.9


def test_state_order_is_by_variance_even_when_chain_starts_turbulent() -> None:
    y, states = simulate(2000, 1, 1, P2, MU2, SD2)
    assert states[:5].tolist() == [1] * 5
    fit = fit_markov(y, 2)
    assert fit.variances[0] < fit.variances[1]
    np.testing.assert_allclose(np.sqrt(fit.variances), SD2, rtol=0.1)
    np.testing.assert_allclose(np.diag(fit.transition), np.diag(P2), atol=0.015)
    assert (markov.filtered_probabilities(y, fit).argmax(axis=1) == states).mean() > 0.9
    # the ordering maps statsmodels' own state numbering, whichever it was
    names = MarkovRegression(y, k_regimes=2, trend="c", switching_variance=True).param_names
    raw_sigma2 = fit.raw_params[[names.index("sigma2[0]"), names.index("sigma2[1]")]]
    np.testing.assert_allclose(raw_sigma2[list(fit.order)], fit.variances)


def test_state_order_does_not_depend_on_statsmodels_numbering(
    sim2: tuple[np.ndarray, np.ndarray, MarkovFit],
) -> None:
    y, _, fit = sim2
    names = MarkovRegression(y, k_regimes=2, trend="c", switching_variance=True).param_names
    start = markov.persistent_start(y, 2)
    s0, s1 = names.index("sigma2[0]"), names.index("sigma2[1]")
    start[[s0, s1]] = start[[s1, s0]]  # statsmodels' state 0 starts as the turbulent one
    swapped = fit_markov(y, 2, start_params=start)
    assert swapped.order == (1, 0) and fit.order == (0, 1)
    assert swapped.raw_params[s0] > swapped.raw_params[s1]
    np.testing.assert_allclose(swapped.variances, fit.variances, rtol=1e-3)
    np.testing.assert_allclose(swapped.means, fit.means, atol=1e-3)
    np.testing.assert_allclose(swapped.transition, fit.transition, atol=1e-3)
    probs = markov.filtered_probabilities(y, swapped)
    np.testing.assert_allclose(probs, markov.filtered_probabilities(y, fit), atol=1e-3)


def test_fit_failure_raises_value_error() -> None:
    with pytest.raises(ValueError, match="markov"):
        fit_markov(np.zeros(300), 2)
    with pytest.raises(ValueError, match="finite"):
        fit_markov(np.r_[np.ones(10), np.nan], 2)


# --- compute: filtered probabilities, structure -------------------------------------------


def test_probabilities_are_statsmodels_filtered_not_smoothed() -> None:
    y, _ = simulate(800, 2, 0, P2, MU2, SD2)
    bars = bars_from_returns(y)
    out = compute(bars, None, rules(min_train_bars=500, refit_every_bars=1000))
    # one fit on the returns of rows 1..499 (= y[:499]), filter applied to rows 1..800 (= y)
    fit = fit_markov(y[:499], 2)
    names = MarkovRegression(y, k_regimes=2, trend="c", switching_variance=True).param_names
    order = np.argsort([fit.raw_params[names.index(f"sigma2[{i}]")] for i in range(2)])
    model = MarkovRegression(y, k_regimes=2, trend="c", switching_variance=True)
    filtered = np.asarray(model.filter(fit.raw_params).filtered_marginal_probabilities)[:, order]
    smoothed = np.asarray(model.smooth(fit.raw_params).smoothed_marginal_probabilities)[:, order]
    ours = out[["prob_state0", "prob_state1"]].to_numpy()[500:]
    np.testing.assert_allclose(ours, filtered[499:], atol=1e-10)
    assert np.abs(ours - smoothed[499:]).max() > 0.2
    expected_mean = filtered[499:] @ fit.means / 100
    np.testing.assert_allclose(out["expected_mean"].to_numpy()[500:], expected_mean, atol=1e-12)


def test_two_starts_beat_statsmodels_default_on_a_short_spx_window(spx: pd.DataFrame) -> None:
    y = np.diff(np.log(spx["close"].to_numpy(float)))[:751] * 100  # rows 1..751 (1999-2001)
    model = MarkovRegression(y, k_regimes=2, trend="c", switching_variance=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = model.fit()
    fit = fit_markov(y, 2)
    # statsmodels' start ends in a non-persistent optimum (P(stay calm) = 0), 12 lower
    assert default.llf < fit.loglike - 5
    assert (np.diag(fit.transition) > 0.9).all() and fit.converged
    # with an explicit start only that start is used
    only = fit_markov(y, 2, start_params=model.start_params)
    assert only.loglike == pytest.approx(default.llf, abs=1e-6)


def test_columns_labels_and_dimensions(spx_small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, out = spx_small
    assert list(out.columns) == [
        "regime",
        "trend_dim",
        "vol_dim",
        "flag",
        "ret",
        "expected_mean",
        "prob_state0",
        "prob_state1",
        "state_sigma",
        "refit_date",
    ]
    assert len(out) == len(bars)
    lab = out.iloc[300:]
    assert set(lab["regime"]) <= set(labels_for(2)) <= set(SPEC.labels)
    np.testing.assert_allclose(lab[["prob_state0", "prob_state1"]].sum(axis=1), 1.0)
    calm = lab["prob_state0"] >= lab["prob_state1"]
    assert (lab["vol_dim"] == np.where(calm, "low", "high")).all()
    assert (lab["trend_dim"] == np.where(lab["expected_mean"] > 0, "up", "down")).all()
    expected = [
        f"{'calm' if c else 'turbulent'}_{'bull' if m > 0 else 'bear'}"
        for c, m in zip(calm, lab["expected_mean"], strict=True)
    ]
    assert lab["regime"].tolist() == expected
    np.testing.assert_allclose(out["ret"], np.log(bars["close"]).diff())
    # returns are reported as plain log returns: SPX daily sigma between 0.3% and 5%
    assert lab["state_sigma"].between(0.003, 0.05).all()
    assert lab["expected_mean"].abs().max() < 0.01


def test_spec_labels() -> None:
    assert SPEC.name == "markov" and not SPEC.uses_iv
    assert SPEC.labels == (
        "calm_bull",
        "calm_bear",
        "normal_bull",
        "normal_bear",
        "turbulent_bull",
        "turbulent_bear",
    )
    assert labels_for(2) == ("calm_bull", "calm_bear", "turbulent_bull", "turbulent_bear")


def test_warmup_and_refit_dates(spx_small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, out = spx_small
    warm = out.iloc[:300]
    assert (warm["flag"] == "warmup").all() and warm["regime"].isna().all()
    assert warm["prob_state0"].isna().all() and warm["refit_date"].isna().all()
    assert warm["ret"].iloc[1:].notna().all()
    assert (out["flag"].iloc[300:] == "").all() and out["regime"].iloc[300:].notna().all()
    # each block uses the fit whose training window ends on the bar before the refit point
    for p, q in [(300, 450), (450, 600), (600, 750), (750, 900), (900, 1000)]:
        assert (out["refit_date"].iloc[p:q] == bars["date"].iloc[p - 1]).all()
    assert out["refit_date"].nunique() == 5


@pytest.mark.parametrize("n", [0, 1, 299, 300])
def test_too_few_bars_is_all_warmup(spx: pd.DataFrame, n: int) -> None:
    out = compute(spx.iloc[:n].reset_index(drop=True), None, SMALL)
    assert len(out) == n
    assert (out["flag"] == "warmup").all() and out["regime"].isna().all()


def test_one_bar_past_min_train_labels_the_last_bar(spx: pd.DataFrame) -> None:
    out = compute(spx.iloc[:301].reset_index(drop=True), None, SMALL)
    assert out["regime"].iloc[:300].isna().all() and out["regime"].iloc[300] in labels_for(2)


def test_consecutive_refits_keep_the_state_order(
    sim2: tuple[np.ndarray, np.ndarray, MarkovFit],
) -> None:
    y, _, _ = sim2
    fits = [fit_markov(y[:n], 2) for n in range(800, 2001, 400)]
    for a, b in itertools.pairwise(fits):
        assert a.variances[0] < a.variances[1] and b.variances[0] < b.variances[1]
        # consecutive expanding-window fits describe the same states in the same order
        np.testing.assert_allclose(b.variances, a.variances, rtol=0.25)
        np.testing.assert_allclose(b.means, a.means, atol=0.2)
        np.testing.assert_allclose(np.diag(b.transition), np.diag(a.transition), atol=0.03)


def test_each_block_uses_its_own_fit(spx_small: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, out = spx_small
    y = np.diff(np.log(bars["close"].to_numpy(float))) * 100
    fits = [fit_markov(y[: p - 1], 2) for p in (300, 450, 600, 750, 900)]
    for (_, block), fit in zip(out.iloc[300:].groupby("refit_date"), fits, strict=True):
        sig = block.groupby("vol_dim")["state_sigma"].unique()
        np.testing.assert_allclose(sig["low"], np.sqrt(fit.variances[0]) / 100)
        np.testing.assert_allclose(sig["high"], np.sqrt(fit.variances[1]) / 100)
        calm = block["vol_dim"] == "low"
        assert (block.loc[calm, "prob_state0"] >= 0.5).all()
        assert (block.loc[~calm, "prob_state0"] < 0.5).all()


# --- no look-ahead --------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [301, 449, 450, 451, 600, 601, 777])
def test_truncated_history_gives_the_same_values(
    spx_small: tuple[pd.DataFrame, pd.DataFrame], cut: int
) -> None:
    bars, full = spx_small
    part = compute(bars.iloc[:cut].reset_index(drop=True), None, SMALL)
    pd.testing.assert_frame_equal(part, full.iloc[:cut].reset_index(drop=True), check_exact=True)


@settings(max_examples=5, deadline=None)
@given(cut=st.integers(min_value=2, max_value=999))
def test_truncated_history_property(spx_small: tuple[pd.DataFrame, pd.DataFrame], cut: int) -> None:
    bars, full = spx_small
    part = compute(bars.iloc[:cut].reset_index(drop=True), None, SMALL)
    pd.testing.assert_frame_equal(part, full.iloc[:cut].reset_index(drop=True), check_exact=True)


# --- failures, warnings, randomness ---------------------------------------------------------


def test_failed_first_fit_gives_nan_with_flag_and_no_warnings() -> None:
    y, _ = simulate(500, 3, 0, P2, MU2, SD2)
    y[:250] = 0.0  # a constant close: statsmodels raises on the first window
    bars = bars_from_returns(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compute(bars, None, rules(min_train_bars=200, refit_every_bars=100))
    first = out.iloc[200:300]
    assert (first["flag"] == "refit_failed").all() and first["regime"].isna().all()
    assert first["refit_date"].isna().all()
    assert (out["flag"].iloc[:200] == "warmup").all()


def test_failed_later_fit_keeps_previous_parameters(
    spx_small: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    bars, full = spx_small
    real = markov.fit_markov
    calls = []

    def flaky(returns: np.ndarray, k: int, **kw: object) -> MarkovFit:
        calls.append(len(returns))
        if len(calls) == 2:
            raise ValueError("markov: simulated failure")
        return real(returns, k, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(markov, "fit_markov", flaky)
    monkeypatch.setenv("RESEARCH_FIT_CACHE", "off")  # every window fitted, none from the cache
    out = compute(bars.iloc[:700].reset_index(drop=True), None, SMALL)
    assert calls == [299, 449, 599]
    failed = out.iloc[450:600]
    assert (failed["flag"] == "refit_failed").all() and failed["regime"].notna().all()
    assert (failed["refit_date"] == bars["date"].iloc[299]).all()
    # the first fit's parameters, filtered on through the failed block
    first_only = compute(
        bars.iloc[:600].reset_index(drop=True),
        None,
        rules(min_train_bars=300, refit_every_bars=10_000),
    )
    pd.testing.assert_series_equal(failed["prob_state0"], first_only["prob_state0"].iloc[450:])
    assert (out["flag"].iloc[600:] == "").all()
    pd.testing.assert_frame_equal(out.iloc[600:], full.iloc[600:700])


def test_search_reps_is_reproducible() -> None:
    y, _ = simulate(400, 4, 0, P2, MU2, SD2)
    bars = bars_from_returns(y)
    r = rules(min_train_bars=300, refit_every_bars=1000, search_reps=3, seed=7)
    a, b = compute(bars, None, r), compute(bars, None, r)
    pd.testing.assert_frame_equal(a, b)
    assert a["regime"].iloc[300:].notna().all()


# --- k = 3 -----------------------------------------------------------------------------------


def test_three_states() -> None:
    P3 = np.array([[0.98, 0.015, 0.005], [0.03, 0.95, 0.02], [0.02, 0.05, 0.93]])
    y, states = simulate(600, 1, 0, P3, np.array([0.05, 0.0, -0.3]), np.array([0.3, 1.0, 3.0]))
    bars = bars_from_returns(y)
    out = compute(bars, None, rules(k_regimes=3, min_train_bars=450, refit_every_bars=1000))
    lab = out.iloc[450:]
    probs = lab[["prob_state0", "prob_state1", "prob_state2"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert set(lab["regime"]) <= set(labels_for(3))
    assert set(lab["vol_dim"]) == {"low", "normal", "high"}
    sig = lab.groupby("vol_dim")["state_sigma"].first()
    assert sig["low"] < sig["normal"] < sig["high"]
    # rows 450.. carry the returns y[449..]
    assert (probs.argmax(axis=1) == states[449:]).mean() > 0.8


# --- real SPX history -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def spx_full(spx: pd.DataFrame) -> pd.DataFrame:
    from research.regimes import classify

    return classify("markov", spx).set_index("date")


def test_spx_turbulent_in_late_2008_calm_in_2017(spx_full: pd.DataFrame) -> None:
    def turbulent_share(a: str, b: str) -> float:
        return float((spx_full.loc[a:b, "vol_dim"] == "high").mean())

    # measured: 100% in Oct-Nov 2008, 0% in 2017, 0% in 2005, 98% in Jul-Oct 2002
    assert turbulent_share("2008-10-01", "2008-11-30") > 0.95
    assert turbulent_share("2017-01-01", "2017-12-31") < 0.05
    assert turbulent_share("2005-01-01", "2005-12-31") < 0.1
    assert turbulent_share("2002-07-01", "2002-10-31") > 0.6
    assert spx_full["regime"].iloc[:500].isna().all()
    assert spx_full["refit_date"].nunique() == 18
    assert spx_full["flag"].str.contains("refit_failed").sum() == 0


def test_spx_calm_and_turbulent_mean_the_same_across_refits(spx_full: pd.DataFrame) -> None:
    sig = spx_full.groupby(["refit_date", "vol_dim"])["state_sigma"].first().unstack()
    assert len(sig) == 18
    low, high = sig["low"].dropna(), sig["high"].dropna()
    assert len(low) == 18 and len(high) >= 12  # some calm years never left the calm state
    # every fit's calm sigma is below every fit's turbulent sigma (measured: calm 0.70%-1.13%,
    # turbulent 1.44%-2.09% daily)
    assert low.max() < high.min()
    assert low.between(0.006, 0.012).all() and high.between(0.013, 0.023).all()
