"""Which configuration worked in which regime (from the regime-configuration plan): experiments
tagged with the regimes their days fell in, the best configuration per regime with its uncertainty,
and the learned per-regime configs a bot loads (``research.attribution.selector``).

``tag_experiments`` adds the regime columns to each experiment (its ``start``..``end`` window
on its ``symbol``; experiments without a symbol use the first symbol of the labels):

- ``dominant_regime``: the regime most of its trading days fell in;
- ``regime_breakdown``: JSON ``{regime: share of days}``;
- ``avg_vix``: the mean IV of the symbol over the window, in VIX points (the VIX itself for
  SPX where published);
- ``avg_hmm_trend``: the mean of the Markov model's trend dimension (+1 up, 0 flat, -1 down)
  over the window; ``avg_hmm_vol``: the mean filtered probability of its highest-variance state
  (both from ``research.regimes.markov``, filtered, so each day uses data up to that day);
- ``entry_regime`` / ``entry_date``: the label on the last labelled day on or before ``start``
  (each label computed from data up to its day) — the regime a bot knows when it picks a
  configuration, and the one ``RegimeConfigSelector`` applies. ``dominant_regime`` and
  ``regime_breakdown`` are known only after the window has run: descriptive, hindsight.

``best_by_regime`` groups experiments by **entry regime** (default; ``by="dominant_regime"``
gives the in-sample hindsight grouping, labelled so) and configuration, ranks the
configurations by the mean of a metric, and says whether the best beats the runner-up.

**Overlapping and neighbouring windows.** Rolling windows overlap in time (and SPX and IXIC
run on the same dates), and the market conditions behind a window's result persist from one
year into the following ones, so a window is not independent of one that overlaps it or that
ends shortly before it starts. The windows both configurations ran on are joined into
**independent blocks**: windows that overlap in time or lie **less than two years apart**
(fewer than ``BLOCK_GAP_DAYS`` = 730 days strictly between one's end and the next's start) —
across symbols too, directly or through a chain — form one block (connected components). A
two-year window ending in December 2001 and one starting on 31 December 2003 share a block; one
starting in January 2004 (all of 2002 and 2003 between them) does not.

The gap is a rule stated before looking at any comparison, from the persistence of the windows
themselves: if each window's result is the sum of yearly shocks that follow an AR(1) from year
to year with coefficient phi, two two-year windows with ``g`` clear years between them
correlate ``phi**(g + 1) * (1 + phi) / 2`` — 0.375 for touching windows at phi = 0.5, 0.19 a
year apart, **0.094 two years apart** (0.029 at phi = 0.35). The sample's own windows give phi
between about 0.35 and 0.5 (``window_persistence``: the median lag-1 and lag-2
autocorrelations of the configuration pairs' differences over consecutive windows, 0.59 and
0.16, matched by simulating the same windows at phi = 0.33 and 0.50), so blocks two years apart
correlate below about 0.1, and a year's gap (0.19 at phi = 0.5) is not enough: under that rule
the test between two equal configurations rejected 9 % at the 5 % level.

The test is an **exact two-sided sign-flip (randomisation) test on the block means** of the
paired differences (``scipy.stats.permutation_test``, all ``2**blocks`` sign patterns): exact
whatever the dependence inside a block, and never below ``2 / 2**blocks`` (``min_p``) — with 5
blocks no p-value can fall under 0.0625, with 4 none under 0.125. Two-sided, because "best" is
chosen by the same data (a one-sided p of the observed direction would double the size). A
regime whose blocks cannot give a p below ``alpha`` (fewer than ``blocks_needed(alpha)`` = 6
blocks at 5 %) is **untested** (``tested`` False; ``evidence`` says "untested: cannot reject
with 4 independent blocks (minimum p 0.125); a verdict needs at least 6 blocks, i.e. at least
22 years of 2-year windows two years apart"): a large p there is no evidence either way.
**On the sample every comparison is untested, by construction**: two-year windows two years
apart fit at most 5 blocks in its 20 years (1999-2018), and 5 blocks cannot reject (minimum p
0.0625). The interval of the best configuration's mean is a cluster-robust t-interval
(``research.clustered.clustered_test``: clusters = the same blocks, CR1, ``blocks - 1``
degrees of freedom); NaN with one block or no spread.

**Size, simulated** (``research.nulls.attribution``: ``best_by_regime`` itself on simulated
experiments, yearly shocks AR(1) across years, the sample's noise scale and SPX/IXIC
correlation). Where the test can reject — a 40-year history of yearly two-year windows on SPX
and IXIC whose regime group keeps the windows two years apart, 10 blocks — the test between
two equal configurations rejects within the 2-8 % band at phi = 0.5 and at the sample's
estimate (2,000 runs: 5.7 % and 4.7 %; 4.6 % at phi = 0.3; the benchmark's table gives the
current figures and the power), and 11 % at phi = 0.7, more persistent than the sample's
windows. **Selection**: the best and the runner-up are the top two of the ``configs``
configurations compared, chosen on the same data the test then uses; with 16 equal
configurations the top two are close — their gap is small next to its noise — and the test is
conservative (its size under 2 %), so no selection-aware replacement is needed: one that
permutes all the configurations' labels would test that all of them are equal, not that the
best beats the runner-up. In-sample: the experiments that chose the config also score it.

``window_persistence`` estimates phi from a set of experiments (the page reports it).
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.clustered import clustered_test

__all__ = [
    "BEST_COLUMNS",
    "BLOCK_GAP_DAYS",
    "GROUPINGS",
    "LOSING_POLICY",
    "RUNNER_UP_TEST",
    "PERSISTENCE_GRID",
    "BlockTest",
    "WindowPersistence",
    "best_by_regime",
    "blocks_needed",
    "config_keys",
    "evidence_text",
    "learned_configs",
    "losing_text",
    "overlap_blocks",
    "paired_block_test",
    "tag_experiments",
    "window_persistence",
]

TREND_SCORE = {"up": 1.0, "flat": 0.0, "down": -1.0}

GROUPINGS: dict[str, str] = {
    "entry_regime": (
        "entry regime: the label on the last labelled day on or before the experiment's start "
        "(known when it started; what RegimeConfigSelector applies)"
    ),
    "dominant_regime": (
        "dominant regime: the regime most of the window's days fell in (in-sample hindsight: "
        "known only after the window ran)"
    ),
}
"""The groupings ``best_by_regime`` accepts, in words."""

BLOCK_GAP_DAYS = 730
"""Windows (of any symbol) that overlap in time or have fewer than this many days strictly
between them share a block: two blocks need two full years between them. Why two: the sample's
window differences imply a yearly persistence phi of about 0.35-0.5 (``window_persistence``),
and two-year windows two years apart then correlate ``phi**3 * (1 + phi) / 2`` = 0.094 at
phi = 0.5 (a year apart: 0.19; module docstring)."""

RUNNER_UP_TEST = (
    "exact two-sided sign-flip test on the block means of the paired differences (windows that "
    "overlap in time or lie less than two years apart, across symbols too, form one block)"
)
"""The best-vs-runner-up test, in words (for pages and summaries)."""


def config_keys(experiments: pd.DataFrame) -> pd.Series:
    """A configuration name per experiment: ``config_name`` when given, else the parameter
    values joined (``param_a=1|param_b=2``)."""
    if "config_name" in experiments.columns and experiments["config_name"].notna().all():
        return experiments["config_name"].astype(str)
    params = sorted(c for c in experiments.columns if c.startswith("param_"))
    return (
        experiments[params]
        .astype(str)
        .apply(lambda r: "|".join(f"{k}={v}" for k, v in r.items()), axis=1)
    )


def tag_experiments(
    experiments: pd.DataFrame,
    labels: pd.DataFrame,
    iv: pd.DataFrame | None = None,
    markov: pd.DataFrame | None = None,
    *,
    source: str = "experiments",
) -> pd.DataFrame:
    """Add ``dominant_regime, regime_breakdown, avg_vix, avg_hmm_trend, avg_hmm_vol``,
    ``regime_days``, ``entry_regime`` and ``entry_date`` (module docstring).

    Parameters
    ----------
    labels
        A ``classify`` table (``date, symbol, regime``) covering the experiments' windows.
    iv
        ``date, symbol, iv`` (annualised) for ``avg_vix`` (NaN without).
    markov
        A ``classify("markov", …)`` table for the ``avg_hmm_*`` columns (NaN without).

    Raises
    ------
    ValueError
        Experiments whose window has no labelled day of their symbol (outside the market
        data, or an unknown symbol), naming them.

    Returns
    -------
    pandas.DataFrame
        ``experiments`` with the columns added (or recomputed, when already there), same row
        order. ``entry_regime`` / ``entry_date`` are None / NaT when no labelled day of the
        symbol lies on or before ``start`` (the model's warm-up).
    """
    default_symbol = str(sorted(set(labels["symbol"]))[0])
    sym = (
        experiments["symbol"].fillna(default_symbol)
        if "symbol" in experiments.columns
        else pd.Series(default_symbol, index=experiments.index)
    )
    lab = labels.dropna(subset=["regime"])
    by_symbol = {s: g.sort_values("date") for s, g in lab.groupby("symbol")}
    iv_by = (
        {s: g.set_index("date")["iv"] for s, g in iv.groupby("symbol")} if iv is not None else {}
    )
    mk_by = {}
    if markov is not None:
        prob_cols = sorted(c for c in markov.columns if c.startswith("prob_state"))
        top = prob_cols[-1] if prob_cols else None
        for s, g in markov.groupby("symbol"):
            mk_by[s] = pd.DataFrame(
                {
                    "trend": g["trend_dim"].map(TREND_SCORE).to_numpy(float),
                    "vol": g[top].to_numpy(float) if top else np.nan,
                },
                index=g["date"].to_numpy(),
            )
    n = len(experiments)
    starts = pd.to_datetime(experiments["start"]).to_numpy()
    ends = pd.to_datetime(experiments["end"]).to_numpy()
    sym_arr = sym.astype(str).to_numpy()
    dominant = np.full(n, None, dtype=object)
    breakdown = np.full(n, None, dtype=object)
    n_days = np.zeros(n, dtype=np.int64)
    avg_vix = np.full(n, np.nan)
    avg_trend = np.full(n, np.nan)
    avg_vol = np.full(n, np.nan)
    entry = np.full(n, None, dtype=object)
    entry_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    for s in np.unique(sym_arr):
        rows_s = np.flatnonzero(sym_arr == s)
        days = by_symbol.get(s)
        if days is None:
            continue
        dates = days["date"].to_numpy()
        lo = np.searchsorted(dates, starts[rows_s], side="left")
        hi = np.maximum(np.searchsorted(dates, ends[rows_s], side="right"), lo)
        n_days[rows_s] = hi - lo
        regimes = days["regime"].astype(str).to_numpy()
        dominant[rows_s], breakdown[rows_s] = _window_regimes(regimes, lo, hi)
        # the last labelled day on or before start: known when the experiment started
        last = np.searchsorted(dates, starts[rows_s], side="right") - 1
        known = last >= 0
        entry[rows_s[known]] = regimes[last[known]]
        entry_date[rows_s[known]] = dates[last[known]]
        if s in iv_by:
            avg_vix[rows_s] = _window_means(iv_by[s], starts[rows_s], ends[rows_s]) * 100
        if s in mk_by:
            m = mk_by[s]
            avg_trend[rows_s] = _window_means(m["trend"], starts[rows_s], ends[rows_s])
            avg_vol[rows_s] = _window_means(m["vol"], starts[rows_s], ends[rows_s])
    empty = [
        f"{eid} ({s} {pd.Timestamp(a).date()}..{pd.Timestamp(b).date()})"
        for eid, s, a, b, d in zip(
            experiments["experiment_id"], sym_arr, starts, ends, n_days, strict=True
        )
        if d == 0
    ]
    if empty:
        raise ValueError(
            f"{source}: {len(empty)} experiments have no labelled market day in their window "
            f"(outside the market data or an unknown symbol), e.g. {'; '.join(empty[:3])}"
        )
    added = pd.DataFrame(
        {
            "dominant_regime": dominant,
            "regime_breakdown": breakdown,
            "regime_days": n_days,
            "avg_vix": avg_vix,
            "avg_hmm_trend": avg_trend,
            "avg_hmm_vol": avg_vol,
            "entry_regime": entry,
            "entry_date": entry_date,
        },
        index=experiments.index,
    )
    # columns from an earlier tagging (e.g. read back from the database) are recomputed
    kept = experiments.drop(columns=[c for c in added.columns if c in experiments.columns])
    return pd.concat([kept, added], axis=1)


def _window_regimes(
    regimes: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per window ``[lo, hi)`` of the day-ordered ``regimes``: the regime most days carried (a
    tie goes to the regime seen first in the window) and the JSON ``{regime: share}`` (4
    decimals, sorted keys); None for an empty window."""
    names, codes = np.unique(regimes, return_inverse=True)
    k, m = len(names), len(regimes)
    onehot = np.zeros((m, k), dtype=np.int64)
    onehot[np.arange(m), codes] = 1
    cum = np.vstack([np.zeros((1, k), dtype=np.int64), onehot.cumsum(axis=0)])
    counts = cum[hi] - cum[lo]
    # first position of each regime at or after i: for the tie rule
    nxt = np.full((m + 1, k), m, dtype=np.int64)
    for i in range(m - 1, -1, -1):
        nxt[i] = nxt[i + 1]
        nxt[i, codes[i]] = i
    first = nxt[lo]
    best = counts.max(axis=1, keepdims=True)
    tie_key = np.where(counts == best, first, m + 1)
    top = tie_key.argmin(axis=1)
    total = (hi - lo).astype(float)
    dominant = np.full(len(lo), None, dtype=object)
    breakdown = np.full(len(lo), None, dtype=object)
    for j in np.flatnonzero(total > 0):
        row = counts[j]
        dominant[j] = str(names[top[j]])
        breakdown[j] = json.dumps(
            {str(names[c]): round(float(row[c] / total[j]), 4) for c in np.flatnonzero(row)},
            sort_keys=True,
        )
    return dominant, breakdown


def _window_means(values: pd.Series, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (date-indexed) over each inclusive ``[start, end]``, NaNs skipped
    (NaN when the window holds no value)."""
    v = values.sort_index()
    dates = v.index.to_numpy()
    x = v.to_numpy(dtype=float)
    ok = ~np.isnan(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(ok)])
    lo = np.searchsorted(dates, starts, side="left")
    hi = np.maximum(np.searchsorted(dates, ends, side="right"), lo)
    cnt = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (csum[hi] - csum[lo]) / np.maximum(cnt, 1), np.nan)


BEST_COLUMNS = (
    "regime",
    "best_config",
    "experiments",
    "metric_mean",
    "ci_low",
    "ci_high",
    "pnl_pct",
    "win_rate",
    "runner_up",
    "diff_vs_runner_up",
    "p_vs_runner_up",
    "beats_runner_up",
    "key_settings",
    "pairs",
    "blocks",
    "min_p",
    "tested",
    "evidence",
    "configs",
    "configs_losing",
    "loses_money",
    "grouping",
)
"""Columns of ``best_by_regime``: the original ones, then ``pairs`` (windows both ran on),
``blocks`` (independent blocks of those windows: windows that overlap or lie less than two
years apart share one), ``min_p`` (the smallest p-value the blocks allow), ``tested``
(``min_p`` below ``alpha``: the test can reject at all), ``evidence`` (the comparison in words,
``evidence_text``: *untested* when it cannot reject, with the blocks a verdict needs),
``configs`` (the configurations compared: the best and runner-up are the top two of them),
``configs_losing`` (how many of them lost money: mean ``pnl_pct`` below 0), ``loses_money``
(the best's mean ``pnl_pct`` below 0) and ``grouping`` (``GROUPINGS`` key)."""


def overlap_blocks(
    starts: npt.ArrayLike, ends: npt.ArrayLike, *, gap_days: int = BLOCK_GAP_DAYS
) -> np.ndarray:
    """Independent blocks of windows: windows whose inclusive ``[start, end]`` spans overlap, or
    have fewer than ``gap_days`` days strictly between them — directly or through a chain of
    such windows, whatever their symbol — share a block. With the default (``BLOCK_GAP_DAYS``
    = 730) a window ending on 2001-12-31 and one starting on 2002-01-01 or 2003-12-31 (729 days
    between them) share a block, one starting on 2004-01-01 (all of 2002 and 2003 between them,
    730 days) does not; ``gap_days=365`` gives the former one-year rule, ``gap_days=0`` joins
    only windows that share a day.

    Raises
    ------
    ValueError
        ``gap_days`` not an integer >= 0 (naming the option and the value).

    Returns
    -------
    numpy.ndarray
        A block number per window (0, 1, ... in time order).
    """
    gap_days = _check_int("gap_days", gap_days, 0)
    s = pd.to_datetime(pd.Series(np.asarray(starts))).to_numpy()
    e = pd.to_datetime(pd.Series(np.asarray(ends))).to_numpy()
    out = np.zeros(len(s), dtype=np.int64)
    if len(s) == 0:
        return out
    gap = np.timedelta64(gap_days, "D")
    order = np.argsort(s, kind="stable")
    block, reach = 0, e[order[0]]
    for i in order:
        if s[i] > reach + gap:
            block += 1
            reach = e[i]
        else:
            reach = max(reach, e[i])
        out[i] = block
    return out


@dataclass(frozen=True)
class BlockTest:
    """The exact block test of paired differences (``paired_block_test``)."""

    mean_diff: float
    """Mean of the paired differences (over windows)."""
    pairs: int
    blocks: int
    p: float
    """Two-sided p of the exact sign-flip test on the block means (NaN without pairs)."""
    min_p: float
    """The smallest p the blocks allow: ``min(1, 2 / 2**blocks)``."""


def paired_block_test(
    diffs: npt.ArrayLike,
    starts: npt.ArrayLike,
    ends: npt.ArrayLike,
    *,
    max_exact_blocks: int = 20,
    seed: int = 0,
    gap_days: int = BLOCK_GAP_DAYS,
) -> BlockTest:
    """Exact two-sided sign-flip test of paired differences on independent blocks.

    The windows (``starts``/``ends``) are joined into blocks by ``overlap_blocks`` (windows
    that overlap or lie fewer than ``gap_days`` days apart share one); the block
    means of ``diffs`` are the independent observations; under the null (no difference between
    the configurations) each block mean is symmetric about 0, so every one of the ``2**blocks``
    sign patterns is equally likely. ``scipy.stats.permutation_test`` enumerates them all (a
    random 100,000 of them, seeded by ``seed``, above ``max_exact_blocks`` blocks).

    Raises
    ------
    ValueError
        ``max_exact_blocks`` not an integer >= 1, ``seed`` or ``gap_days`` not an integer >= 0
        (naming the option and the value), or ``diffs``, ``starts`` and ``ends`` of different
        lengths.

    Returns
    -------
    BlockTest
        One block gives p = 1; no pair gives NaN.
    """
    from scipy import stats

    max_exact_blocks = _check_int("max_exact_blocks", max_exact_blocks, 1)
    seed = _check_int("seed", seed, 0)
    gap_days = _check_int("gap_days", gap_days, 0)
    d = np.asarray(diffs, dtype=float)
    if not len(d) == len(np.asarray(starts)) == len(np.asarray(ends)):
        raise ValueError(
            f"diffs, starts and ends need the same length, got {len(d)}, "
            f"{len(np.asarray(starts))} and {len(np.asarray(ends))}"
        )
    if len(d) == 0:
        return BlockTest(np.nan, 0, 0, np.nan, np.nan)
    blocks = overlap_blocks(starts, ends, gap_days=gap_days)
    k = int(blocks.max()) + 1
    means = np.bincount(blocks, weights=d, minlength=k) / np.bincount(blocks, minlength=k)
    min_p = min(1.0, 2.0 / 2.0**k)
    if k < 2:
        return BlockTest(float(d.mean()), len(d), k, 1.0, min_p)
    exact = k <= max_exact_blocks
    res = stats.permutation_test(
        (means,),
        np.mean,
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=np.inf if exact else 100_000,
        vectorized=True,
        axis=-1,
        rng=np.random.default_rng(seed),
    )
    return BlockTest(float(d.mean()), len(d), k, float(min(1.0, res.pvalue)), min_p)


def _window_years(starts: pd.Series, ends: pd.Series) -> float | None:
    """The median length of the windows ``[start, end]`` (inclusive) in years, to one decimal
    (2 for 1999-01-01..2000-12-31); None without windows."""
    if len(starts) == 0:
        return None
    days = (pd.to_datetime(ends) - pd.to_datetime(starts)).dt.days.to_numpy() + 1
    return round(float(np.median(days)) / 365.25, 1)


def _check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int when it is an integer >= ``minimum``; else a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def blocks_needed(alpha: float = 0.05) -> int:
    """The fewest independent blocks whose exact sign-flip test can give a p-value below
    ``alpha``: the smallest ``k`` with ``2 / 2**k < alpha`` (6 at 5 %: 2 / 64 = 0.031, while
    5 blocks allow no p below 2 / 32 = 0.0625).

    Raises
    ------
    ValueError
        ``alpha`` not a number in (0, 1).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    k = 1
    while not 2.0 / 2.0**k < alpha:
        k += 1
    return k


def _apart(gap_days: int) -> str:
    """``gap_days`` in words: ``"two years apart"`` for 730, ``"a year apart"`` for 365."""
    if gap_days == 0:
        return "not overlapping"
    if gap_days % 365 == 0:
        n = gap_days // 365
        words = {1: "a year", 2: "two years", 3: "three years"}
        return f"{words.get(n, f'{n} years')} apart"
    return f"{gap_days} days apart"


def evidence_text(
    p: float,
    diff: float,
    blocks: int,
    min_p: float,
    *,
    alpha: float = 0.05,
    window_years: float | None = None,
    gap_days: int = BLOCK_GAP_DAYS,
) -> str:
    """The best-vs-runner-up comparison of one regime in words (``p`` the block test's,
    ``diff`` the mean paired difference best - runner-up): *untested* when the blocks cannot
    give a p-value below ``alpha`` (``min_p >= alpha``: the test can never reject, so a
    non-significant p says nothing) — with the blocks a verdict needs (``blocks_needed``) and,
    given ``window_years`` (the windows' length), the years of history they take: that many
    windows with ``gap_days`` between consecutive ones — else whether the best beats the
    runner-up.

    Examples: ``"untested: cannot reject with 4 independent blocks (minimum p 0.125); a verdict
    needs at least 6 blocks, i.e. at least 22 years of 2-year windows two years apart"``,
    ``"beats the runner-up (p = 0.016, 7 independent blocks)"``, ``"not shown (p = 0.38, 7
    independent blocks; minimum p 0.0156)"``.
    """
    unit = "block" if blocks == 1 else "blocks"
    if blocks == 0 or not np.isfinite(p):
        return "untested: no window that both configurations ran on"
    if not min_p < alpha:
        need = blocks_needed(alpha)
        text = (
            f"untested: cannot reject with {blocks} independent {unit} (minimum p {min_p:.3g}); "
            f"a verdict needs at least {need} blocks"
        )
        if window_years is not None and np.isfinite(window_years) and window_years > 0:
            years = need * window_years + (need - 1) * gap_days / 365.25
            text += (
                f", i.e. at least {years:.0f} years of {window_years:g}-year windows "
                f"{_apart(gap_days)}"
            )
        return text
    if p < alpha and diff > 0:
        return f"beats the runner-up (p = {p:.3g}, {blocks} independent {unit})"
    if p < alpha:
        return (
            f"the runner-up does better on the windows both ran on (p = {p:.3g}, {blocks} "
            f"independent {unit})"
        )
    return f"not shown (p = {p:.3g}, {blocks} independent {unit}; minimum p {min_p:.3g})"


def best_by_regime(
    tagged: pd.DataFrame,
    *,
    by: str = "entry_regime",
    metric: str = "pnl_pct",
    min_experiments: int = 5,
    alpha: float = 0.05,
    seed: int = 0,
    gap_days: int = BLOCK_GAP_DAYS,
) -> pd.DataFrame:
    """Per regime, the configuration with the highest mean ``metric`` among those with at least
    ``min_experiments`` experiments in it, with a block-level interval, its P&L and win
    rate, and the exact block test against the runner-up (module docstring).

    Parameters
    ----------
    by
        ``"entry_regime"`` (default: the regime known when each experiment started) or
        ``"dominant_regime"`` (in-sample hindsight; ``GROUPINGS``). Experiments without a
        regime in that column are left out (counted in ``.attrs["no_regime"]``).
    min_experiments
        Experiments a configuration needs in a regime to be compared (an integer >= 1).
    seed
        Seeds the random sign patterns when a regime has more than ``max_exact_blocks``
        independent blocks (fewer: every pattern is enumerated, no randomness).
    gap_days
        Windows with fewer days than this strictly between them share a block
        (``overlap_blocks``; default ``BLOCK_GAP_DAYS``, two years; 0: only overlapping
        windows).

    Raises
    ------
    ValueError
        An unknown metric or grouping, ``min_experiments`` not an integer >= 1, ``seed`` or
        ``gap_days`` not an integer >= 0, ``alpha`` not in (0, 1), experiments with zero trades,
        or no regime with two qualifying configurations.

    Returns
    -------
    pandas.DataFrame
        ``BEST_COLUMNS``: ``regime, best_config, experiments, metric_mean, ci_low, ci_high``
        (cluster-robust t-interval over the best's blocks, ``research.clustered
        .clustered_test``; NaN with one block or no spread), ``pnl_pct, win_rate`` (means),
        ``runner_up, diff_vs_runner_up`` (mean paired difference), ``p_vs_runner_up``
        (two-sided exact block sign-flip p), ``beats_runner_up`` (p < ``alpha`` and a positive
        difference), ``key_settings``, ``pairs, blocks, min_p, tested, evidence, configs,
        configs_losing, loses_money, grouping``. Regimes where fewer than two configurations
        qualify are left out (listed in ``.attrs["skipped"]``); ``.attrs["grouping"]`` names
        the grouping.
    """
    min_experiments = _check_int("min_experiments", min_experiments, 1)
    seed = _check_int("seed", seed, 0)
    gap_days = _check_int("gap_days", gap_days, 0)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if by not in GROUPINGS:
        raise ValueError(
            f"by must be one of {sorted(GROUPINGS)} ('entry_regime': known when the experiment "
            f"started; 'dominant_regime': in-sample hindsight), got {by!r}"
        )
    if by not in tagged.columns:
        raise ValueError(f"no {by!r} column: tag the experiments first (tag_experiments)")
    if metric not in tagged.columns:
        raise ValueError(f"unknown metric {metric!r}; columns: {sorted(tagged.columns)}")
    zero = tagged["trades"] == 0
    if zero.any():
        ids = tagged.loc[zero, "experiment_id"].head(3).tolist()
        raise ValueError(
            f"{int(zero.sum())} experiments have zero trades (e.g. {ids}): their metrics are "
            "not results; drop them or rerun"
        )
    symbol = tagged["symbol"].astype(str) if "symbol" in tagged.columns else ""
    frame = tagged.assign(
        _config=config_keys(tagged).to_numpy(),
        _window=tagged["start"].astype(str) + ".." + tagged["end"].astype(str) + "|" + symbol,
    )
    no_regime = int(frame[by].isna().sum())
    frame = frame.loc[frame[by].notna()]
    params = sorted(c for c in tagged.columns if c.startswith("param_"))
    # key settings: the parameters that differ between configurations
    params = [c for c in params if tagged[c].nunique(dropna=False) > 1] or params
    rows, skipped = [], {}
    for regime, part in frame.groupby(by, sort=True):
        counts = part["_config"].value_counts()
        ok = counts.index[counts >= min_experiments]
        if len(ok) < 2:
            skipped[str(regime)] = f"{len(ok)} configurations with >= {min_experiments} experiments"
            continue
        compared = part.loc[part["_config"].isin(ok)].groupby("_config")
        means = compared[metric].mean()
        ranked = means.sort_values(ascending=False, kind="stable")
        best, second = ranked.index[0], ranked.index[1]
        mine = part.loc[part["_config"] == best]
        ci = clustered_test(
            mine[metric].to_numpy(float),
            overlap_blocks(mine["start"].to_numpy(), mine["end"].to_numpy(), gap_days=gap_days),
            alpha=alpha,
        )
        a = mine.drop_duplicates("_window").set_index("_window")
        b = part.loc[part["_config"] == second].drop_duplicates("_window").set_index("_window")
        shared = a.index.intersection(b.index)
        test = paired_block_test(
            (a.loc[shared, metric] - b.loc[shared, metric]).to_numpy(float),
            a.loc[shared, "start"].to_numpy(),
            a.loc[shared, "end"].to_numpy(),
            seed=seed,
            gap_days=gap_days,
        )
        first = mine.iloc[0]
        pnl = float(mine["pnl_pct"].mean())
        rows.append(
            {
                "regime": str(regime),
                "best_config": str(best),
                "experiments": len(mine),
                "metric_mean": float(ranked.iloc[0]),
                "ci_low": ci.ci_low,
                "ci_high": ci.ci_high,
                "pnl_pct": pnl,
                "win_rate": float(mine["win_rate"].mean()),
                "runner_up": str(second),
                "diff_vs_runner_up": test.mean_diff,
                "p_vs_runner_up": test.p,
                "beats_runner_up": bool(test.p < alpha and test.mean_diff > 0)
                if not np.isnan(test.p)
                else False,
                "key_settings": ", ".join(f"{c[6:]}={first[c]:g}" for c in params)
                if all(isinstance(first[c], int | float) for c in params)
                else ", ".join(f"{c[6:]}={first[c]}" for c in params),
                "pairs": test.pairs,
                "blocks": test.blocks,
                "min_p": test.min_p,
                "tested": bool(test.min_p < alpha),
                "evidence": evidence_text(
                    test.p,
                    test.mean_diff,
                    test.blocks,
                    test.min_p,
                    alpha=alpha,
                    window_years=_window_years(a.loc[shared, "start"], a.loc[shared, "end"]),
                    gap_days=gap_days,
                ),
                "configs": len(ok),
                "configs_losing": int((compared["pnl_pct"].mean() < 0).sum()),
                "loses_money": bool(pnl < 0),
                "grouping": by,
            }
        )
    if not rows and not skipped:
        raise ValueError(
            f"no experiment has a regime in {by} ({no_regime} experiments without one), so no "
            "configurations can be compared"
        )
    if not rows:
        raise ValueError(
            f"no regime ({by}) has two configurations with enough experiments to compare: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    out = pd.DataFrame(rows)[list(BEST_COLUMNS)]
    out.attrs["skipped"] = skipped
    out.attrs["grouping"] = by
    out.attrs["gap_days"] = gap_days
    out.attrs["blocks_needed"] = blocks_needed(alpha)
    out.attrs["no_regime"] = no_regime
    return out


PERSISTENCE_GRID: npt.NDArray[np.float64] = np.round(np.arange(0.0, 0.951, 0.01), 2)
"""The yearly AR(1) coefficients ``window_persistence`` simulates (0 to 0.95 by 0.01)."""


@dataclass(frozen=True)
class WindowPersistence:
    """How persistent the windows' results are from year to year (``window_persistence``)."""

    phi: float
    """The yearly AR(1) coefficient whose simulated windows give the observed median lag-1
    autocorrelation (the estimate)."""
    phi_lag2: float
    """The same matched on the median lag-2 autocorrelation (a check on the estimate)."""
    acf1: float
    """Median lag-1 autocorrelation of the configuration pairs' differences over consecutive
    windows (one series per pair and symbol)."""
    acf2: float
    """The same at lag 2."""
    series: int
    """Series the medians are taken over (configuration pairs x symbols)."""
    windows: int
    """Windows per symbol (the most of any symbol)."""

    def text(self) -> str:
        """The estimate in words."""
        return (
            f"yearly persistence phi = {self.phi:.2f} (matched on the median lag-1 "
            f"autocorrelation {self.acf1:.2f} of {self.series} configuration-pair differences "
            f"over up to {self.windows} consecutive windows; {self.phi_lag2:.2f} matched on the "
            f"lag-2 autocorrelation {self.acf2:.2f})"
        )


def _lag_corr(d: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.float64]:
    """Pearson correlation of ``d[..., k:]`` with ``d[..., :-k]`` along the last axis (NaN
    without spread)."""
    a = d[..., k:] - d[..., k:].mean(axis=-1, keepdims=True)
    b = d[..., :-k] - d[..., :-k].mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: npt.NDArray[np.float64] = (a * b).sum(axis=-1) / np.sqrt(
            (a * a).sum(axis=-1) * (b * b).sum(axis=-1)
        )
    return out


def _simulated_medians(
    layouts: list[tuple[np.ndarray, np.ndarray]], reps: int, seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per ``PERSISTENCE_GRID`` coefficient: the median lag-1 and lag-2 autocorrelation of
    windows laid out as ``layouts`` (per symbol: each window's first and last calendar year,
    in order), each window the sum of its years' shocks, the shocks a stationary AR(1) across
    years; ``reps`` series per layout, the same draws for every coefficient."""
    y0 = min(int(s.min()) for s, _ in layouts)
    span = max(int(e.max()) for _, e in layouts) - y0 + 1
    eps = np.random.default_rng(seed).standard_normal((reps, len(layouts), span))
    m1 = np.empty(len(PERSISTENCE_GRID))
    m2 = np.empty(len(PERSISTENCE_GRID))
    for g, phi in enumerate(PERSISTENCE_GRID):
        x = np.empty_like(eps)
        x[..., 0] = eps[..., 0]
        scale = np.sqrt(1.0 - phi * phi)
        for t in range(1, span):
            x[..., t] = phi * x[..., t - 1] + scale * eps[..., t]
        cum = np.concatenate([np.zeros((reps, len(layouts), 1)), x.cumsum(axis=-1)], axis=-1)
        r1, r2 = [], []
        for j, (first, last) in enumerate(layouts):
            sums = cum[:, j, last - y0 + 1] - cum[:, j, first - y0]
            r1.append(_lag_corr(sums, 1))
            r2.append(_lag_corr(sums, 2))
        m1[g] = np.nanmedian(np.concatenate(r1))
        m2[g] = np.nanmedian(np.concatenate(r2))
    return m1, m2


def window_persistence(
    experiments: pd.DataFrame,
    *,
    metric: str = "pnl_pct",
    reps: int = 2000,
    seed: int = 0,
) -> WindowPersistence:
    """The yearly persistence of the windows' results, estimated from the experiments.

    Per symbol, the configurations that ran on every window of it, the windows in order of
    start; for each pair of them the difference of their ``metric`` on each window, and its
    lag-1 and lag-2 autocorrelation (Pearson, over consecutive windows); the medians over the
    pairs and symbols. A model reads them: each window's result the sum of yearly shocks over
    the calendar years it spans, the shocks an AR(1) across years with coefficient phi
    (stationary). Short series bias autocorrelations down (19 two-year windows a year apart
    give a median lag-1 autocorrelation of 0.67 at phi = 0.5, where the series' own is 0.75), so
    phi is matched by simulation on the same windows — ``reps`` series per symbol at each
    coefficient of ``PERSISTENCE_GRID``, the same draws (seeded by ``seed``) for every
    coefficient, linear interpolation between them — not by the closed form. Clipped to the
    grid: 0 when the windows are less persistent than independent years, 0.95 when more.

    Raises
    ------
    ValueError
        An unknown ``metric``, ``reps`` not an integer >= 100, ``seed`` not an integer >= 0, or
        no symbol with two configurations run on the same five or more windows.

    Returns
    -------
    WindowPersistence
        ``phi`` (matched on lag 1: the estimate), ``phi_lag2``, ``acf1``, ``acf2``, ``series``,
        ``windows``.
    """
    reps = _check_int("reps", reps, 100)
    seed = _check_int("seed", seed, 0)
    if metric not in experiments.columns:
        raise ValueError(f"unknown metric {metric!r}; columns: {sorted(experiments.columns)}")
    symbol = (
        experiments["symbol"].astype(str).to_numpy()
        if "symbol" in experiments.columns
        else np.full(len(experiments), "")
    )
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "start": pd.to_datetime(experiments["start"]).to_numpy(),
            "end": pd.to_datetime(experiments["end"]).to_numpy(),
            "config": config_keys(experiments).to_numpy(),
            "value": experiments[metric].to_numpy(float),
        }
    )
    r1: list[np.ndarray] = []
    r2: list[np.ndarray] = []
    layouts: list[tuple[np.ndarray, np.ndarray]] = []
    for _, part in frame.groupby("symbol", sort=True):
        wide = part.pivot_table(index=["start", "end"], columns="config", values="value")
        wide = wide.sort_index().dropna(axis=1, how="any")
        if wide.shape[1] < 2 or len(wide) < 5:
            continue
        values = wide.to_numpy(float)
        i, j = np.triu_indices(values.shape[1], k=1)
        diffs = (values[:, i] - values[:, j]).T  # pairs x windows
        r1.append(_lag_corr(diffs, 1))
        r2.append(_lag_corr(diffs, 2))
        starts = pd.DatetimeIndex(wide.index.get_level_values("start"))
        ends = pd.DatetimeIndex(wide.index.get_level_values("end"))
        layouts.append((starts.year.to_numpy(np.int64), ends.year.to_numpy(np.int64)))
    if not layouts:
        raise ValueError(
            "window_persistence needs a symbol with two configurations run on the same five or "
            "more windows"
        )
    lag1, lag2 = np.concatenate(r1), np.concatenate(r2)
    acf1, acf2 = float(np.nanmedian(lag1)), float(np.nanmedian(lag2))
    m1, m2 = _simulated_medians(layouts, reps, seed)
    # the simulated medians rise with phi; a Monte Carlo wiggle must not break the inversion
    m1, m2 = np.maximum.accumulate(m1), np.maximum.accumulate(m2)
    return WindowPersistence(
        phi=float(np.interp(acf1, m1, PERSISTENCE_GRID)),
        phi_lag2=float(np.interp(acf2, m2, PERSISTENCE_GRID)),
        acf1=acf1,
        acf2=acf2,
        series=int(np.isfinite(lag1).sum()),
        windows=max(len(s) for s, _ in layouts),
    )


LOSING_POLICY = (
    "RegimeConfigSelector stands aside (serves no configuration) in a regime whose best "
    "configuration — the highest mean of the ranking metric there — lost money on average "
    "(mean pnl_pct below 0; loses_money: true; the export says how many of the configurations "
    "compared there lost money, configs_losing of configs) and flags it; a caller may opt in "
    "to the default (on_losing='default') or to the losing learned configuration "
    "(on_losing='learned'), each served with its loses-money flag"
)
"""What the selector does with a losing learned configuration, in words (in the export)."""


def losing_text(configs_losing: int, configs: int) -> str:
    """How many of a regime's compared configurations lost money, in words that are true
    whatever metric ranked them: ``"every one of the 16 configurations compared there lost
    money on average"`` or ``"3 of the 16 configurations compared there lost money on
    average"``."""
    if configs_losing == configs:
        return f"every one of the {configs} configurations compared there lost money on average"
    return f"{configs_losing} of the {configs} configurations compared there lost money on average"


def _grouping_of(best: pd.DataFrame) -> str:
    """The grouping of a ``best_by_regime`` table: ``.attrs["grouping"]``, else its one
    ``grouping`` value; a ValueError naming the problem otherwise."""
    from_attrs = best.attrs.get("grouping")
    column = None
    if "grouping" in best.columns:
        values = sorted({str(v) for v in best["grouping"].dropna()})
        if len(values) > 1:
            raise ValueError(f"best mixes groupings {values}: pass one best_by_regime table")
        column = values[0] if values else None
    if from_attrs is None and column is None:
        raise ValueError(
            "best names no grouping (no .attrs['grouping'] and no 'grouping' column): pass the "
            "table best_by_regime returned"
        )
    if from_attrs is not None and column is not None and str(from_attrs) != column:
        raise ValueError(
            f"best's .attrs['grouping'] is {from_attrs!r} but its 'grouping' column says {column!r}"
        )
    by = str(from_attrs if from_attrs is not None else column)
    if by not in GROUPINGS:
        raise ValueError(f"best's grouping must be one of {sorted(GROUPINGS)}, got {by!r}")
    return by


def learned_configs(
    tagged: pd.DataFrame,
    best: pd.DataFrame,
    *,
    default: str | None = None,
    metric: str = "pnl_pct",
    model: str = "",
) -> dict[str, object]:
    """The learned per-regime configuration file (JSON-ready): for each regime of ``best``,
    the parameters of its best configuration (``param_`` prefix dropped), the experiments it
    came from and the evidence — ``loses_money``: the best configuration by ``metric`` lost
    money on average (mean ``pnl_pct`` below zero; with ``metric="pnl_pct"`` every
    configuration compared there lost too, with another metric ``configs_losing`` of
    ``configs`` say how many did); the selector stands aside there unless the caller opts in,
    and ``served`` says what it serves: ``"learned"`` or ``"stand aside"``;
    ``default_pnl_pct`` is the default configuration's mean ``pnl_pct`` in the regime, None
    when it never ran there; ``tested`` and ``evidence_text``: whether the block test could
    reject at all, and the comparison in words — and the ``default`` configuration (the best
    overall by mean ``metric`` unless named) for regimes without a learned one.

    The regimes are those of ``best``'s grouping (``best.attrs["grouping"]``, or its
    ``grouping`` column): the file says which, and that a dominant-regime grouping is
    hindsight.

    Raises
    ------
    ValueError
        ``best`` names no grouping (neither ``.attrs["grouping"]`` nor a ``grouping``
        column), names an unknown one, or two that disagree; or ``tagged`` has no column of
        that grouping.

    Returns
    -------
    dict
        ``{"regime_model", "metric", "sample", "grouping", "grouping_text", "test",
        "losing_policy", "losing_regimes", "regimes": {regime: {"config", "params",
        "source_experiments", "served", "evidence": {"metric", "mean", "ci", "runner_up",
        "p_vs_runner_up", "beats_runner_up", "pairs", "blocks", "min_p", "tested",
        "evidence_text", "configs", "configs_losing", "pnl_pct", "loses_money",
        "default_pnl_pct"}}}, "default": {"config", "params", "evidence": {"metric", "mean",
        "pnl_pct", "loses_money"}}}``.
    """
    by = _grouping_of(best)
    if by not in tagged.columns:
        raise ValueError(f"tagged has no {by!r} column (best's grouping): tag the experiments")
    keys = config_keys(tagged)
    params = sorted(c for c in tagged.columns if c.startswith("param_"))

    def params_of(config: str) -> dict[str, object]:
        row = tagged.loc[keys == config].iloc[0]
        return {c[6:]: (row[c].item() if hasattr(row[c], "item") else row[c]) for c in params}

    overall = tagged.groupby(keys)[metric].mean().sort_values(ascending=False, kind="stable")
    default_name = default if default is not None else str(overall.index[0])
    default_pnl = float(tagged.loc[keys == default_name, "pnl_pct"].mean())
    regimes = {}
    for _, r in best.iterrows():
        in_regime = tagged[by] == r["regime"]
        sources = tagged.loc[(keys == r["best_config"]) & in_regime, "experiment_id"].tolist()
        default_here = tagged.loc[(keys == default_name) & in_regime, "pnl_pct"]
        pnl = float(r["pnl_pct"])
        losing = bool(pnl < 0)
        regimes[r["regime"]] = {
            "config": r["best_config"],
            "params": params_of(r["best_config"]),
            "source_experiments": sources,
            # what RegimeConfigSelector serves for this regime unless the caller opts in
            "served": "stand aside" if losing else "learned",
            "evidence": {
                "metric": metric,
                "mean": r["metric_mean"],
                "ci": [r["ci_low"], r["ci_high"]],
                "runner_up": r["runner_up"],
                "p_vs_runner_up": r["p_vs_runner_up"],
                "beats_runner_up": bool(r["beats_runner_up"]),
                "pairs": int(r["pairs"]) if "pairs" in r else None,
                "blocks": int(r["blocks"]) if "blocks" in r else None,
                "min_p": float(r["min_p"]) if "min_p" in r else None,
                "tested": bool(r["tested"]) if "tested" in r else None,
                "evidence_text": str(r["evidence"]) if "evidence" in r else None,
                "configs": int(r["configs"]) if "configs" in r else None,
                "configs_losing": int(r["configs_losing"]) if "configs_losing" in r else None,
                "pnl_pct": pnl,
                # the best of a regime can still lose money: not a configuration to trade
                "loses_money": losing,
                "default_pnl_pct": float(default_here.mean()) if len(default_here) else None,
            },
        }
    return {
        "regime_model": model,
        "metric": metric,
        "sample": "in-sample: the experiments that chose each config also score it",
        "grouping": by,
        "grouping_text": GROUPINGS[by],
        "test": RUNNER_UP_TEST,
        "losing_policy": LOSING_POLICY,
        "losing_regimes": [k for k, v in regimes.items() if v["evidence"]["loses_money"]],
        "regimes": regimes,
        "default": {
            "config": default_name,
            "params": params_of(default_name),
            "evidence": {
                "metric": metric,
                "mean": float(overall.get(default_name, np.nan)),
                "pnl_pct": default_pnl,
                "loses_money": bool(default_pnl < 0),
            },
        },
    }
