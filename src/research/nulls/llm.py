"""Null calibration of the LLM trade filter's verdict (``research.llm.analysis``).

Every case simulates on the sample's own trades (``data/sample/trades.json`` through
``research.data.loaders``: their real P&L, wins, entry dates and months, in entry-date order) and
returns the p-value exactly as the package computes it (for the rule control, its one-sided form
in the direction of the verdict's claim: the filter beats the rule).

**Realistic null** — a filter that reads slow-moving state and knows nothing of the outcome: a
latent AR(1) process on the trades' distinct entry dates with ``PHI`` = 0.98 (trades of one day
share it; ``research.nulls.generators.ar1``), approving the top ``APPROVAL`` share. Its decisions
persist for months, like a real filter's, and are unrelated to P&L. Prompt variants: two such
filters that share half their latent (they read the same market) and approve different shares.

**Planted effect** — the same latent plus ``BETA`` times the trade's own standardised win
(0/1): a filter that partly foresees the outcome. It approves trades whose win rate is about 10
points above the rejected ones' (``effect_size`` measures it), a realistic size for a useful
filter.

**Rule control** — the filter against the best simple rule is simulated with the package's own
``controls()`` on the sample trades (their IV percentile, VIX and the ``vix_trend`` regime at
entry, as the page reads them): the rule is chosen in-sample and applied out of sample at the
filter's count exactly as the page does. On the second half the rule ranks the whole half at
once (a cut-off set with hindsight) and it is informative on the sample, so a filter unrelated to
P&L rarely beats it: that case is **conservative** (``conservative=True``: size below the 2 % end of
the band by design). The paired test itself is calibrated where its null holds exactly: against a
"rule" that is another persistent filter unrelated to P&L.

``core_cases()`` lists one case per test the verdict rests on (the fast test suite runs them);
``sensitivity_cases()`` repeats the approved-vs-rejected tests with regime-like persistence
(``PHI_SENSITIVITY`` = 0.999: the filter's spells last months, so neighbouring month clusters
share them);
``cases()`` is both (the benchmark's table). ``reference_cases()`` runs the old tests that
treated trades as independent on the same simulated data sets (same seeds): they over-reject,
which shows the null is realistic (an i.i.d. null would not tell them apart).

A test that is not run (``approval_tests`` below ``MIN_MONTHS`` entry months on a side, a rule
comparison without out-of-sample approvals) gives no p-value; the simulations count it as not
rejected, as the verdict does (``untested`` never claims an effect).

No generator was added to ``research.nulls.generators``; the shared-latent variants and the
planted effect are built here from its ``ar1``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.llm import analysis as an
from research.nulls.core import NullCase
from research.nulls.generators import ar1

__all__ = [
    "APPROVAL",
    "BETA",
    "EFFECT",
    "LAYER",
    "PHI",
    "PHI_SENSITIVITY",
    "ROTATION_NOTE",
    "RULE_CONTROL",
    "VARIANT_SHARES",
    "SampleTrades",
    "cases",
    "core_cases",
    "effect_size",
    "reference_cases",
    "rule_frame",
    "sample_trades",
    "sensitivity_cases",
]

LAYER = "LLM trade filter"
"""The layer name of every case (the pages' ``nulls.published(LAYER)``)."""
PHI = 0.98
"""Day-to-day persistence of the simulated filters' latent."""
PHI_SENSITIVITY = 0.999
"""Regime-like persistence (spells of months) for ``sensitivity_cases``."""
APPROVAL = 0.61
"""Share approved by the simulated filter (the sample's balanced prompt approves 61 %)."""
VARIANT_SHARES: tuple[float, float] = (0.74, 0.61)
"""Shares approved by the two simulated prompt variants (aggressive, balanced on the sample)."""
BETA = 0.11
"""Weight of the trade's standardised win in the planted effect's latent (about +10 points of
win rate approved minus rejected)."""
ROTATION_NOTE = "all n - 1 rotations (exact, FFT)"
"""How the rotation tests count their null distribution (named in the cases' test)."""
RULE_CONTROL = "filter vs the best simple rule as the page runs it"
"""The start of the rule-control case's test name."""

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SampleTrades:
    """The sample trades in entry-date order, as arrays."""

    pnl: npt.NDArray[np.float64]
    """P&L per contract."""
    win: npt.NDArray[np.float64]
    """1.0 where the P&L is above 0 (a win), else 0.0."""
    day: npt.NDArray[np.int64]
    """Index of each trade's distinct entry date (0 .. days - 1)."""
    days: int
    """Number of distinct entry dates."""
    months: npt.NDArray[np.int64]
    """Entry month of each trade (``analysis.entry_months``: the clusters)."""
    dates: pd.Series
    """Entry dates (datetime64)."""
    trade_id: pd.Series
    """Trade ids (``research.llm.context.trade_ids``)."""

    @property
    def n(self) -> int:
        """Number of trades."""
        return len(self.pnl)


@functools.cache
def sample_trades() -> SampleTrades:
    """``data/sample/trades.json`` through the package's loader, ordered by entry date (then
    trade id, as the analysis orders them)."""
    from research.config import PATHS
    from research.data.loaders import load
    from research.llm.context import trade_ids

    t = load("trades", PATHS.sample / "trades.json")
    t = t.assign(trade_id=trade_ids(t).to_numpy(), date=pd.to_datetime(t["date"]))
    t = t.sort_values(["date", "trade_id"], kind="stable").reset_index(drop=True)
    pnl = t["pnl"].to_numpy(float)
    _, day = np.unique(t["date"].to_numpy(), return_inverse=True)
    return SampleTrades(
        pnl=pnl,
        win=(pnl > 0).astype(float),
        day=day.astype(np.int64),
        days=int(day.max()) + 1,
        months=an.entry_months(t["date"]),
        dates=t["date"],
        trade_id=t["trade_id"],
    )


def _standardised(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    sd = x.std()
    z: npt.NDArray[np.float64] = (x - x.mean()) / sd if sd > 0 else x - x.mean()
    return z


@functools.cache
def rule_frame() -> pd.DataFrame:
    """The sample trades as ``controls()`` reads them, in ``sample_trades()`` order, without
    decisions: ``trade_id, date, iv_percentile, vix, regime`` (the ``vix_trend`` regime at
    entry, as ``research.llm.service.load_trades`` gives the page), ``pnl, win``."""
    from research.llm.context import trade_ids
    from research.llm.service import load_trades

    ts = load_trades(None)
    t = ts.trades.assign(
        trade_id=trade_ids(ts.trades).to_numpy(),
        regime=ts.regimes.to_numpy(),
        date=pd.to_datetime(ts.trades["date"]),
    )
    t = t.sort_values(["date", "trade_id"], kind="stable").reset_index(drop=True)
    s = sample_trades()
    if not (t["trade_id"].to_numpy() == s.trade_id.to_numpy()).all():
        raise RuntimeError("the sample trades and their regimes are not in the same order")
    cols = ["trade_id", "date", "iv_percentile", "vix", "regime", "pnl"]
    return t[cols].assign(win=t["pnl"] > 0)


def _p(value: float) -> float:
    """A p-value for the null tables: a test that did not run (NaN) is not a rejection."""
    return float(value) if np.isfinite(value) else 1.0


def _latent(
    s: SampleTrades, rng: np.random.Generator, effect: float, phi: float = PHI
) -> npt.NDArray[np.float64]:
    """AR(1) latent on the entry dates (shared by a day's trades), plus the planted effect."""
    latent = ar1(s.days, phi, rng)[s.day]
    latent = latent + 1e-9 * rng.standard_normal(s.n)  # breaks ties within a day
    return latent + effect * BETA * _standardised(s.win)


def _top(latent: npt.NDArray[np.float64], share: float) -> BoolArray:
    keep = np.zeros(len(latent), bool)
    keep[np.argsort(-latent, kind="stable")[: int(round(share * len(latent)))]] = True
    return keep


def _filter(rng: np.random.Generator, effect: float, phi: float = PHI) -> BoolArray:
    """The simulated filter's approvals (``APPROVAL`` of the sample trades)."""
    s = sample_trades()
    return _top(_latent(s, rng, effect, phi), APPROVAL)


def effect_size(runs: int = 200, seed: int = 0) -> dict[str, float]:
    """Mean approved-minus-rejected win rate and P&L of the planted-effect filter.

    Returns
    -------
    dict
        ``win_diff`` (share) and ``pnl_diff`` ($/trade), averaged over ``runs`` simulations.
    """
    s = sample_trades()
    rng = np.random.default_rng(seed)
    win, pnl = [], []
    for _ in range(runs):
        a = _filter(rng, 1.0)
        win.append(s.win[a].mean() - s.win[~a].mean())
        pnl.append(s.pnl[a].mean() - s.pnl[~a].mean())
    return {"win_diff": float(np.mean(win)), "pnl_diff": float(np.mean(pnl))}


# ---------------------------------------------------------------------------------------------
# the tests, as the package runs them


def _tests_frame(approve: BoolArray) -> pd.DataFrame:
    s = sample_trades()
    return pd.DataFrame(
        {
            "decision": np.where(approve, "approve", "reject"),
            "date": s.dates,
            "pnl": s.pnl,
            "win": s.win > 0,
        }
    )


def _win_p(rng: np.random.Generator, effect: float, phi: float = PHI) -> float:
    return _p(an.approval_tests(_tests_frame(_filter(rng, effect, phi)))["win_p"])


def _pnl_p(rng: np.random.Generator, effect: float, phi: float = PHI) -> float:
    return _p(an.approval_tests(_tests_frame(_filter(rng, effect, phi)))["pnl_p"])


def _win_p_sensitivity(rng: np.random.Generator, effect: float) -> float:
    return _win_p(rng, effect, PHI_SENSITIVITY)


def _pnl_p_sensitivity(rng: np.random.Generator, effect: float) -> float:
    return _pnl_p(rng, effect, PHI_SENSITIVITY)


def _rotation_p(rng: np.random.Generator, effect: float) -> float:
    s = sample_trades()
    return an.rotation_p(s.pnl, _filter(rng, effect))[0]


def _rule_p(rng: np.random.Generator, effect: float) -> float:
    """The package's ``controls()`` on the sample trades with the simulated decisions: the best
    simple rule chosen on the first half, compared on the second at the filter's count. The
    p-value of the verdict's claim, **one-sided** (the filter beats the rule), from the
    package's two-sided ``oos_diff_p``: half of it when the filter is ahead, one minus half of
    it when the rule is (the verdict's ``beats_rule`` is this p below 0.025). No comparison
    (NaN) counts as not rejected."""
    approve = _filter(rng, effect)
    frame = rule_frame().assign(decision=np.where(approve, "approve", "reject"))
    ctl = an.controls(frame)
    p = ctl.oos_diff_p
    return _p(p / 2 if ctl.oos_diff > 0 else 1 - p / 2)


def _paired_p(rng: np.random.Generator, effect: float) -> float:
    """Second half: the filter against a 'rule' that is another persistent filter unrelated to
    P&L keeping the same count (the package's paired test at the filter's count, where its null
    holds exactly)."""
    s = sample_trades()
    half = s.n // 2
    a = _filter(rng, effect)[half:]
    k = int(a.sum())
    rule = _top(_latent(s, rng, 0.0)[half:], k / (s.n - half))
    return _p(an.paired_kept_test(s.pnl[half:], a, rule, s.months[half:], scale=(s.n - half) / k).p)


def _confidence(
    latent: npt.NDArray[np.float64], approve: BoolArray, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """A stated confidence that rises with the latent among approvals (0.5 to 0.95, with noise,
    rounded to hundredths as models state it); rejections 0.5 to 0.9."""
    from scipy.stats import norm

    noisy = latent + 0.5 * rng.standard_normal(len(latent))
    u = norm.cdf(noisy - np.median(noisy))
    conf = np.where(approve, 0.5 + 0.45 * u, 0.5 + 0.4 * (1 - u))
    stated: npt.NDArray[np.float64] = np.round(conf, 2)
    return stated


def _threshold_p(rng: np.random.Generator, effect: float) -> float:
    """``recommend_threshold`` on simulated decisions and confidences: chosen on the first half by
    per-trade uplift, its rotation p-value on the second half."""
    s = sample_trades()
    latent = _latent(s, rng, effect)
    approve = _top(latent, APPROVAL)
    frame = pd.DataFrame(
        {
            "trade_id": s.trade_id,
            "date": s.dates,
            "decision": np.where(approve, "approve", "reject"),
            "confidence": _confidence(latent, approve, rng),
            "pnl": s.pnl,
        }
    )
    return _p(an.recommend_threshold(frame, reps=0).random_p)


def _variants(rng: np.random.Generator, effect: float) -> tuple[BoolArray, BoolArray]:
    """Two prompt variants that read the same market (half their latent variance shared) and
    approve different shares; the planted effect is in variant A only."""
    s = sample_trades()
    common = ar1(s.days, PHI, rng)[s.day]
    la = np.sqrt(0.5) * (common + ar1(s.days, PHI, rng)[s.day])
    lb = np.sqrt(0.5) * (common + ar1(s.days, PHI, rng)[s.day])
    la = la + 1e-9 * rng.standard_normal(s.n) + effect * BETA * _standardised(s.win)
    lb = lb + 1e-9 * rng.standard_normal(s.n)
    return _top(la, VARIANT_SHARES[0]), _top(lb, VARIANT_SHARES[1])


def _prompt_pnl_p(rng: np.random.Generator, effect: float) -> float:
    s = sample_trades()
    ya, yb = _variants(rng, effect)
    return an.paired_kept_test(s.pnl, ya, yb, s.months).p


def _prompt_win_p(rng: np.random.Generator, effect: float) -> float:
    s = sample_trades()
    ya, yb = _variants(rng, effect)
    return an.paired_kept_test(s.win, ya, yb, s.months).p


def _null(phi: float = PHI) -> str:
    return (
        f"persistent filter unrelated to P&L: AR(1) latent on the entry dates, phi = {phi}, "
        f"approving {APPROVAL:.0%} of the sample trades"
    )


EFFECT = (
    f"the latent plus {BETA} x the trade's standardised win (about +10 points of win rate "
    "approved minus rejected)"
)
"""The planted effect of the power runs, in words."""


def core_cases() -> list[NullCase]:
    """One case per test the LLM filter's verdict (and its threshold and prompt choice) rests
    on, under the realistic null (``PHI``); the fast test suite runs these.

    Returns
    -------
    list of NullCase
    """
    null = _null()
    variants = (
        f"two persistent variants (phi = {PHI}, half their latent shared) approving "
        f"{VARIANT_SHARES[0]:.0%} and {VARIANT_SHARES[1]:.0%}, unrelated to P&L"
    )
    return [
        NullCase(LAYER, "win-rate difference (" + an.DIFF_TEST + ")", null, EFFECT, _win_p),
        NullCase(LAYER, "P&L difference (" + an.DIFF_TEST + ")", null, EFFECT, _pnl_p),
        NullCase(
            LAYER,
            "random-filter control (" + an.ROTATION_TEST + ", " + ROTATION_NOTE + ")",
            null,
            EFFECT,
            _rotation_p,
        ),
        NullCase(
            LAYER,
            RULE_CONTROL + " (controls(): chosen in-sample at the filter's count, compared out "
            "of sample at its count; " + an.PAIRED_TEST + "; one-sided, filter beats rule) — "
            "CONSERVATIVE by design: size below the 2% end of the band",
            null + "; the package's own rule on the sample trades (IV percentile, VIX, vix_trend "
            "regime at entry), which ranks the whole second half at once (hindsight) and is "
            "better than a null filter there: the null lies inside the test's null hypothesis, "
            "not on its boundary",
            EFFECT + " (the filter only)",
            _rule_p,
            conservative=True,
        ),
        NullCase(
            LAYER,
            "filter vs simple rule, the paired test where its null holds: filter minus a "
            "null 'rule' at the same count (" + an.PAIRED_TEST + ")",
            null + "; the 'rule' another such filter keeping the same count on the second half",
            EFFECT + " (the filter only)",
            _paired_p,
        ),
        NullCase(
            LAYER,
            "threshold out of sample vs random filters keeping as many (chosen in-sample by "
            "per-trade uplift; " + an.ROTATION_TEST + ")",
            null + "; confidence rising with the latent",
            EFFECT,
            _threshold_p,
        ),
        NullCase(
            LAYER,
            "prompt variants, P&L edge of their disagreements (" + an.PAIRED_TEST + ")",
            variants,
            "variant A's latent plus the planted effect",
            _prompt_pnl_p,
        ),
        NullCase(
            LAYER,
            "prompt variants, win edge of their disagreements (" + an.PAIRED_TEST + ")",
            variants,
            "variant A's latent plus the planted effect",
            _prompt_win_p,
        ),
    ]


def sensitivity_cases() -> list[NullCase]:
    """The approved-vs-rejected tests (P&L and win-rate differences) under regime-like
    persistence, ``PHI_SENSITIVITY`` = 0.999: the filter's spells last months, so month clusters
    are not independent either. Benchmark only (``cases()``; the fast suite runs
    ``core_cases()``).

    Returns
    -------
    list of NullCase
    """
    note = f"; sensitivity: phi = {PHI_SENSITIVITY} (regime-like spells of months)"
    return [
        NullCase(
            LAYER,
            "P&L difference (" + an.DIFF_TEST + ")" + note,
            _null(PHI_SENSITIVITY),
            EFFECT,
            _pnl_p_sensitivity,
        ),
        NullCase(
            LAYER,
            "win-rate difference (" + an.DIFF_TEST + ")" + note,
            _null(PHI_SENSITIVITY),
            EFFECT,
            _win_p_sensitivity,
        ),
    ]


def cases() -> list[NullCase]:
    """Every case of the LLM trade filter: ``core_cases()`` then ``sensitivity_cases()`` (what
    ``research.nulls.all_cases`` and the benchmark's table hold).

    Returns
    -------
    list of NullCase
    """
    return [*core_cases(), *sensitivity_cases()]


# ---------------------------------------------------------------------------------------------
# the old tests, for reference


def _iid_ztest_p(rng: np.random.Generator, effect: float) -> float:
    from statsmodels.stats.proportion import proportions_ztest

    s = sample_trades()
    a = _filter(rng, effect)
    counts = np.array([s.win[a].sum(), s.win[~a].sum()])
    _, p = proportions_ztest(counts, np.array([a.sum(), (~a).sum()]))
    return float(p)


def _welch_p(rng: np.random.Generator, effect: float) -> float:
    from scipy import stats

    s = sample_trades()
    a = _filter(rng, effect)
    return float(stats.ttest_ind(s.pnl[a], s.pnl[~a], equal_var=False).pvalue)


def _iid_permutation_p(rng: np.random.Generator, effect: float, reps: int = 199) -> float:
    s = sample_trades()
    a = _filter(rng, effect)
    k = int(a.sum())
    observed = s.pnl[a].mean()
    idx = np.argsort(rng.random((reps, s.n)), axis=1)[:, :k]
    perm = s.pnl[idx].mean(axis=1)
    return float((1 + np.sum(perm >= observed)) / (reps + 1))


def _mcnemar_p(rng: np.random.Generator, effect: float) -> float:
    """McNemar tests equal approval rates, so its null needs variants with the same approval
    probability: both latents cut at the same level (counts vary with the draw)."""
    from scipy.stats import norm
    from statsmodels.stats.contingency_tables import mcnemar

    s = sample_trades()
    cut = norm.ppf(1 - APPROVAL)
    common = ar1(s.days, PHI, rng)[s.day]
    la = np.sqrt(0.5) * (common + ar1(s.days, PHI, rng)[s.day])
    lb = np.sqrt(0.5) * (common + ar1(s.days, PHI, rng)[s.day])
    ya = la + effect * BETA * _standardised(s.win) > cut
    yb = lb > cut
    table = [
        [int((ya & yb).sum()), int((ya & ~yb).sum())],
        [int((~ya & yb).sum()), int((~ya & ~yb).sum())],
    ]
    return float(mcnemar(table, exact=False).pvalue)


def reference_cases() -> list[NullCase]:
    """The tests the analysis used before (trades counted as independent), on the same simulated
    data sets as ``core_cases()`` (same seeds, same draws): they are expected to over-reject.

    Returns
    -------
    list of NullCase
        The two-proportion z-test (same data as the win-rate case), Welch's t (P&L case), the
        i.i.d. permutation of the random-filter control (199 permutations; rotation case) and
        McNemar on two persistent variants with the same approval probability (its own null:
        McNemar tests equal approval rates).
    """
    null = f"persistent filter unrelated to P&L (phi = {PHI})"
    effect = "planted effect as in cases()"
    return [
        NullCase(LAYER, "OLD two-proportion z-test (i.i.d.)", null, effect, _iid_ztest_p),
        NullCase(LAYER, "OLD Welch t on P&L (i.i.d.)", null, effect, _welch_p),
        NullCase(LAYER, "OLD i.i.d. permutation random filter", null, effect, _iid_permutation_p),
        NullCase(
            LAYER,
            "OLD McNemar on prompt decisions",
            f"two persistent variants (phi = {PHI}) with the same approval probability",
            "variant A's latent plus the planted effect",
            _mcnemar_p,
        ),
    ]
