"""Regime changes, transitions, durations and agreement between models.

Every function here takes a long label table as returned by
``research.regimes.classify`` (``date, symbol, <column>, ...``; one row per (date, symbol)) and
works per symbol along dates: nothing is ever carried or counted across two symbols. The row
order of the input does not matter (rows are sorted by symbol then date internally); duplicate
(symbol, date) rows are an error.

Unlabelled bars (``NaN`` in ``column``: warm-up, missing IV, ...)
----------------------------------------------------------------
- ``apply_min_dwell`` holds the previous smoothed label through them, and they interrupt the
  confirmation of a new label (they are not an observation of anything).
- ``change_events``, ``transition_matrix``, ``durations`` and ``share_by_period`` drop them
  first and analyse each symbol's sequence of *labelled* bars. So ``A NaN A`` is one run of
  2 bars with one ``A -> A`` transition, ``A NaN B`` is a change ``A -> B`` dated at the ``B``
  bar (and one ``A -> B`` transition), and the first label after a leading NaN stretch
  (warm-up) is the start of a run, not a change. Durations are counted in labelled bars.

With this single rule the views agree: for every regime, the number of ``i -> i``
transitions is its labelled bars minus its runs (``n_bars - n_runs``), and the ``i -> j``
transitions (i != j) are exactly the ``change_events`` from i to j.

The label in every output is called ``regime`` (``from_regime``/``to_regime``,
``from``/``to``) whichever ``column`` was analysed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats.contingency import association
from statsmodels.stats.inter_rater import cohens_kappa

from research.regimes.base import TREND_DIM, VOL_DIM

__all__ = [
    "COMMON_DIMENSIONS",
    "Agreement",
    "agreement",
    "agreement_matrix",
    "apply_min_dwell",
    "change_events",
    "durations",
    "share_by_period",
    "transition_matrix",
]

COMMON_DIMENSIONS: dict[str, tuple[str, ...]] = {"trend_dim": TREND_DIM, "vol_dim": VOL_DIM}
"""Columns every model fills from the same label set: kappa is defined on them."""

_KEYS = ["symbol", "date"]


# --------------------------------------------------------------------------------------------
# helpers


def _check(labels: pd.DataFrame, column: str, *, unique: bool = True) -> None:
    missing = [c for c in ("date", "symbol", column) if c not in labels.columns]
    if missing:
        raise ValueError(f"label table lacks column(s) {missing}; has {list(labels.columns)}")
    if unique and labels.duplicated(_KEYS).any():
        dup = labels.loc[labels.duplicated(_KEYS, keep=False), _KEYS].head(3)
        raise ValueError(
            f"label table has duplicate (symbol, date) rows, e.g. {dup.to_dict('records')}"
        )


def _labelled(labels: pd.DataFrame, column: str) -> pd.DataFrame:
    """``symbol, date, regime`` of the labelled rows, sorted by symbol then date."""
    _check(labels, column)
    out = labels.loc[labels[column].notna(), ["symbol", "date", column]]
    out = out.rename(columns={column: "regime"})
    return out.sort_values(_KEYS, kind="stable").reset_index(drop=True)


def _states(observed: Sequence[object], states: Sequence[str] | None) -> list[str]:
    seen = sorted({str(s) for s in observed})
    if states is None:
        return seen
    wanted = [str(s) for s in states]
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"states has duplicates: {wanted}")
    unknown = [s for s in seen if s not in wanted]
    if unknown:
        raise ValueError(f"labels {unknown} are not in states {wanted}")
    return wanted


def _runs(seq: pd.DataFrame) -> pd.DataFrame:
    """One row per run of equal consecutive labels in a ``_labelled`` frame.

    Columns ``symbol, regime, start, end, n_bars, first, last``: ``first``/``last`` are true for
    the run that opens/closes the symbol's labelled sample (its start/end was not observed).
    """
    if seq.empty:
        return pd.DataFrame(
            {
                "symbol": pd.Series(dtype=object),
                "regime": pd.Series(dtype=object),
                "start": pd.Series(dtype="datetime64[ns]"),
                "end": pd.Series(dtype="datetime64[ns]"),
                "n_bars": pd.Series(dtype=np.int64),
                "first": pd.Series(dtype=bool),
                "last": pd.Series(dtype=bool),
            }
        )
    new_symbol = seq["symbol"].ne(seq["symbol"].shift())
    new_run = new_symbol | seq["regime"].ne(seq["regime"].shift())
    run_id = new_run.cumsum()
    grouped = seq.assign(_run=run_id.to_numpy(), _first=new_symbol.to_numpy()).groupby(
        "_run", sort=True
    )
    runs = grouped.agg(
        symbol=("symbol", "first"),
        regime=("regime", "first"),
        start=("date", "first"),
        end=("date", "last"),
        n_bars=("date", "size"),
        first=("_first", "first"),
    ).reset_index(drop=True)
    runs["last"] = runs["symbol"].ne(runs["symbol"].shift(-1)).to_numpy()
    return runs


# --------------------------------------------------------------------------------------------
# 1. hysteresis


def _dwell(codes: list[int], starts: list[bool], min_dwell: int) -> np.ndarray:
    """The smoothed code per row (-1: no label yet); see ``apply_min_dwell``."""
    out = np.empty(len(codes), dtype=np.int64)
    current = candidate = -1
    count = 0
    for i, (code, start) in enumerate(zip(codes, starts, strict=True)):
        if start:  # a new symbol: forget everything
            current = candidate = -1
            count = 0
        if code < 0 or code == current:  # unknown bar, or the held label again: no candidate
            candidate = -1
            count = 0
        else:
            if code == candidate:
                count += 1
            else:
                candidate = code
                count = 1
            if count >= min_dwell:
                current = code
                candidate = -1
                count = 0
        out[i] = current
    return out


def apply_min_dwell(labels: pd.DataFrame, min_dwell: int, column: str = "regime") -> pd.DataFrame:
    """Causal hysteresis: switch only to a label seen on ``min_dwell`` consecutive bars.

    Per symbol, walking forward in date order, the smoothed label switches to a new raw label
    on the bar where that raw label has just been observed for the ``min_dwell``-th consecutive
    bar; until then it keeps its previous value. The value at date t depends only on raw labels
    up to t (no look-ahead), so it equals what the same call returns on the data truncated at t.

    - The first label of a symbol also needs ``min_dwell`` consecutive bars: the smoothed label
      is NaN until then (there is no previous label to keep).
    - A NaN raw label keeps the previous smoothed label and does not count toward the dwell of
      anything: it restarts the count of a pending candidate (``B NaN B`` is not two consecutive
      ``B``).
    - Any bar showing the currently held label cancels a pending candidate.
    - ``min_dwell=1`` returns the raw label on every labelled bar; on NaN bars it holds the
      previous label, i.e. it is the raw label forward-filled within the symbol.

    Parameters
    ----------
    labels
        Label table with ``date, symbol`` and ``column`` (one row per (date, symbol)).
    min_dwell
        Consecutive bars a new label must be observed on before it is adopted (>= 1).
    column
        The raw label column.

    Returns
    -------
    pandas.DataFrame
        A copy of ``labels`` (same rows, same order) with the raw ``column`` kept and a new
        column ``f"{column}_smoothed"`` (replaced if it already exists).
    """
    if isinstance(min_dwell, bool) or not isinstance(min_dwell, (int, np.integer)):
        raise TypeError(f"min_dwell must be an int, got {min_dwell!r}")
    if min_dwell < 1:
        raise ValueError(f"min_dwell must be >= 1, got {min_dwell}")
    _check(labels, column)
    out = labels.copy()
    n = len(out)
    if n == 0:
        out[f"{column}_smoothed"] = out[column].copy()
        return out
    order = np.lexsort((out["date"].to_numpy(), pd.factorize(out["symbol"], sort=True)[0]))
    raw = out[column].to_numpy()[order]
    codes, uniques = pd.factorize(pd.Series(raw, dtype=object), use_na_sentinel=True)
    symbols = out["symbol"].to_numpy()[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = symbols[1:] != symbols[:-1]
    smoothed_codes = _dwell(codes.tolist(), starts.tolist(), min_dwell)
    values = np.asarray(uniques, dtype=object)
    smoothed = np.full(n, np.nan, dtype=object)
    known = smoothed_codes >= 0
    smoothed[known] = values[smoothed_codes[known]]
    result = np.empty(n, dtype=object)
    result[order] = smoothed
    series = pd.Series(result, index=out.index, dtype=object)
    if out[column].dtype != object:
        try:
            series = series.astype(out[column].dtype)
        except (TypeError, ValueError):
            pass
    out[f"{column}_smoothed"] = series
    return out


# --------------------------------------------------------------------------------------------
# 2. change events


def change_events(labels: pd.DataFrame, column: str = "regime") -> pd.DataFrame:
    """Every regime change, per symbol.

    A change is a labelled bar whose label differs from the symbol's previous *labelled* bar;
    NaN bars are skipped (``A NaN B`` is a change at the ``B`` bar, ``A NaN A`` is none) and
    the first label of a symbol (e.g. after warm-up) is not a change.

    Parameters
    ----------
    labels
        Label table with ``date, symbol`` and ``column``.
    column
        The label column (e.g. ``regime`` or ``regime_smoothed``).

    Returns
    -------
    pandas.DataFrame
        ``symbol, date, from_regime, to_regime, duration_bars``: one row per change, sorted by
        symbol and date; ``date`` is the first bar of the new label and ``duration_bars`` the
        number of labelled bars of the run that just ended (its first run may have started
        before the sample or its warm-up).
    """
    runs = _runs(_labelled(labels, column))
    prev = runs.shift(1)
    is_change = ~runs["first"].to_numpy(dtype=bool)
    events = pd.DataFrame(
        {
            "symbol": runs["symbol"].to_numpy()[is_change],
            "date": runs["start"].to_numpy()[is_change],
            "from_regime": prev["regime"].to_numpy()[is_change],
            "to_regime": runs["regime"].to_numpy()[is_change],
            "duration_bars": prev["n_bars"].to_numpy()[is_change].astype(np.int64),
        }
    )
    return events.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 3. transition matrix


def transition_matrix(
    labels: pd.DataFrame,
    column: str = "regime",
    states: Sequence[str] | None = None,
    normalize: bool = True,
) -> pd.DataFrame:
    """Bar-to-bar regime transitions pooled over symbols (never across two symbols).

    A transition is a pair of consecutive labelled bars of one symbol (NaN bars are skipped,
    see the module docstring), so the counts sum to ``labelled bars - symbols with a label``.

    Parameters
    ----------
    labels
        Label table with ``date, symbol`` and ``column``.
    column
        The label column.
    states
        Row and column order; states never observed get zero rows/columns. Default: the
        observed labels, sorted. Observed labels missing from ``states`` are an error.
    normalize
        Row-normalise to probabilities P(to | from). A row without any transition out of it
        (state unseen, or seen only on the last bar of each symbol) is all NaN.

    Returns
    -------
    pandas.DataFrame
        Square frame, index ``from`` (previous label) x columns ``to`` (next label): ``int64``
        counts, or ``float`` row probabilities when ``normalize``.
    """
    seq = _labelled(labels, column)
    order = _states(seq["regime"].unique().tolist(), states)
    same = seq["symbol"].eq(seq["symbol"].shift()).to_numpy()
    prev = seq["regime"].shift().to_numpy()[same]
    nxt = seq["regime"].to_numpy()[same]
    index = {s: i for i, s in enumerate(order)}
    counts = np.zeros((len(order), len(order)), dtype=np.int64)
    if len(nxt):
        np.add.at(counts, ([index[str(p)] for p in prev], [index[str(q)] for q in nxt]), 1)
    frame = pd.DataFrame(
        counts, index=pd.Index(order, name="from"), columns=pd.Index(order, name="to")
    )
    if not normalize:
        return frame
    totals = frame.sum(axis=1)
    return frame.astype(float).div(totals.where(totals > 0), axis=0)


# --------------------------------------------------------------------------------------------
# 4. durations


def durations(
    labels: pd.DataFrame, column: str = "regime", states: Sequence[str] | None = None
) -> pd.DataFrame:
    """How long each regime lasts, observed and implied by the transition matrix.

    Runs are maximal stretches of one label over a symbol's labelled bars (NaN bars skipped);
    lengths are in labelled bars. The first run of a symbol (started before the sample or the
    warm-up) and the last (cut by the end of the sample) are *censored*: their true length is
    at least the observed one. ``*_observed_duration`` include them; ``mean_complete_duration``
    uses only the runs that both start and end with an observed change.

    Parameters
    ----------
    labels
        Label table with ``date, symbol`` and ``column``.
    column
        The label column.
    states
        Row order (unseen states get a row with zero counts and NaN statistics). Default: the
        observed labels, sorted.

    Returns
    -------
    pandas.DataFrame
        One row per state, columns ``regime, n_bars, share_of_time`` (share of all labelled
        bars, pooled over symbols), ``n_runs, n_complete_runs, mean_observed_duration,
        median_observed_duration, max_observed_duration, mean_complete_duration, p_stay``
        (P(i -> i) from ``transition_matrix``) and ``expected_duration`` = 1 / (1 - p_stay),
        the mean run length of a Markov chain with that matrix (``inf`` when p_stay = 1, NaN
        when the state has no transition out of it) — the formula of statsmodels'
        ``MarkovSwitchingResults.expected_durations``.
    """
    seq = _labelled(labels, column)
    order = _states(seq["regime"].unique().tolist(), states)
    runs = _runs(seq)
    runs["regime"] = runs["regime"].astype(str)
    runs["complete"] = ~(runs["first"] | runs["last"])
    n_bars = seq["regime"].astype(str).value_counts().reindex(order, fill_value=0)
    total = int(n_bars.sum())
    by = runs.groupby("regime")["n_bars"]
    complete = runs.loc[runs["complete"]].groupby("regime")["n_bars"]
    p = transition_matrix(labels, column, states=order, normalize=True)
    p_stay = pd.Series(np.diag(p.to_numpy(dtype=float)), index=order)
    with np.errstate(divide="ignore"):
        expected = 1.0 / (1.0 - p_stay)
    out = pd.DataFrame(
        {
            "regime": order,
            "n_bars": n_bars.to_numpy(dtype=np.int64),
            "share_of_time": n_bars.to_numpy(dtype=float) / total if total else np.nan,
            "n_runs": by.size().reindex(order, fill_value=0).to_numpy(dtype=np.int64),
            "n_complete_runs": complete.size().reindex(order, fill_value=0).to_numpy(np.int64),
            "mean_observed_duration": by.mean().reindex(order).to_numpy(dtype=float),
            "median_observed_duration": by.median().reindex(order).to_numpy(dtype=float),
            "max_observed_duration": by.max().reindex(order).to_numpy(dtype=float),
            "mean_complete_duration": complete.mean().reindex(order).to_numpy(dtype=float),
            "p_stay": p_stay.to_numpy(dtype=float),
            "expected_duration": expected.to_numpy(dtype=float),
        }
    )
    return out


# --------------------------------------------------------------------------------------------
# 5. agreement between models


@dataclass(frozen=True, eq=False)
class Agreement:
    """Agreement of two label tables on one column (see ``agreement``).

    ``eq=False``: compared by identity (it holds a DataFrame).
    """

    column: str
    model_a: str | None
    """The ``model`` value of the first table when it has a single one."""
    model_b: str | None
    n: int
    """(date, symbol) rows labelled in both tables."""
    table: pd.DataFrame
    """Contingency counts: index = labels of ``a``, columns = labels of ``b``."""
    cramers_v: float
    """Cramér's V of ``table`` (0 independent .. 1 one determines the other up to renaming);
    NaN when either side shows fewer than two labels."""
    agreement_rate: float | None
    """Share of rows with the same label (None when the labels are not comparable)."""
    kappa: float | None
    """Cohen's kappa (None when not comparable; NaN when undefined: both constant)."""
    kappa_se: float | None
    """Asymptotic standard error of kappa (statsmodels ``std_kappa``)."""
    kappa_ci_low: float | None
    kappa_ci_high: float | None
    """95% normal confidence interval of kappa."""
    kappa_pvalue: float | None
    """Two-sided p-value of H0: kappa = 0 (statsmodels ``pvalue_two_sided``)."""


def _single_model(frame: pd.DataFrame) -> str | None:
    if "model" not in frame.columns:
        return None
    values = frame["model"].dropna().unique()
    return str(values[0]) if len(values) == 1 else None


def agreement(
    a: pd.DataFrame,
    b: pd.DataFrame,
    column: str,
    *,
    labels: Sequence[str] | None = None,
) -> Agreement:
    """How far two models' labels agree on the same (date, symbol) rows.

    Rows are inner-joined on (date, symbol) and rows NaN on either side dropped. Cramér's V
    (``scipy.stats.contingency.association``, no continuity correction) is computed on the
    contingency table with its all-zero rows/columns removed. When the labels are comparable
    — ``column`` is a common dimension (``trend_dim``, ``vol_dim``: the label set of
    ``base.TREND_DIM``/``VOL_DIM``) or ``labels`` is given — the table is square over that label
    set and the raw agreement rate and Cohen's kappa (``statsmodels.stats.inter_rater.
    cohens_kappa``) with its standard error, 95% CI and p-value are filled in.

    Parameters
    ----------
    a, b
        Label tables (``date, symbol, column``; one row per (date, symbol) each).
    column
        The column to compare.
    labels
        The shared label set (order of the square table) for any other column, e.g. two tables
        of one model; labels outside it are an error.

    Returns
    -------
    Agreement
        ``column, model_a, model_b, n, table, cramers_v, agreement_rate, kappa, kappa_se,
        kappa_ci_low, kappa_ci_high, kappa_pvalue``.
    """
    _check(a, column)
    _check(b, column)
    merged = a[["date", "symbol", column]].merge(
        b[["date", "symbol", column]], on=["date", "symbol"], how="inner", suffixes=("_a", "_b")
    )
    left, right = f"{column}_a", f"{column}_b"
    merged = merged.dropna(subset=[left, right])
    la = merged[left].astype(str)
    lb = merged[right].astype(str)
    n = len(merged)
    label_set: list[str] | None = None
    if labels is not None:
        label_set = [str(s) for s in labels]
    elif column in COMMON_DIMENSIONS:
        label_set = list(COMMON_DIMENSIONS[column])
    rows = label_set if label_set is not None else sorted(la.unique())
    cols = label_set if label_set is not None else sorted(lb.unique())
    if label_set is not None:
        unknown = sorted((set(la) | set(lb)) - set(label_set))
        if unknown:
            raise ValueError(f"{column}: labels {unknown} are not in {label_set}")
    table = pd.crosstab(la, lb).reindex(index=rows, columns=cols, fill_value=0).astype(np.int64)
    table.index.name = "a"
    table.columns.name = "b"

    counts = table.to_numpy(dtype=np.int64)
    nonzero = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    if min(nonzero.shape) >= 2:
        cramers_v = float(association(nonzero, method="cramer", correction=False))
    else:
        cramers_v = float("nan")

    rate = kappa = se = low = high = pvalue = None
    if label_set is not None:
        nan = float("nan")
        rate = float(np.trace(counts) / n) if n else nan
        kappa = se = low = high = pvalue = nan
        if n:
            p_row = counts.sum(axis=1) / n
            p_col = counts.sum(axis=0) / n
            if float(p_row @ p_col) < 1.0:  # else both constant on one label: kappa is 0/0
                res = cohens_kappa(counts)
                kappa = float(res.kappa)
                se = float(np.sqrt(max(float(res.var_kappa), 0.0)))
                z = float(norm.isf(0.025))
                low, high = kappa - z * se, kappa + z * se
                pvalue = float(res.pvalue_two_sided)
    return Agreement(
        column=column,
        model_a=_single_model(a),
        model_b=_single_model(b),
        n=n,
        table=table,
        cramers_v=cramers_v,
        agreement_rate=rate,
        kappa=kappa,
        kappa_se=se,
        kappa_ci_low=low,
        kappa_ci_high=high,
        kappa_pvalue=pvalue,
    )


Statistic = Literal["auto", "kappa", "cramers_v", "agreement_rate"]


def agreement_matrix(
    frames: Mapping[str, pd.DataFrame],
    column: str,
    *,
    statistic: Statistic = "auto",
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Pairwise agreement of several models' labels on ``column``.

    Parameters
    ----------
    frames
        Label table per model name.
    column
        The column to compare.
    statistic
        ``auto``: Cohen's kappa when the labels are comparable (a common dimension, or
        ``labels`` given), else Cramér's V (e.g. for ``regime``, whose labels differ by model).
        ``kappa`` and ``agreement_rate`` need comparable labels.
    labels
        Shared label set, passed to ``agreement``.

    Returns
    -------
    pandas.DataFrame
        Symmetric model x model frame (index and columns = the keys of ``frames``, in order) of
        the statistic; the diagonal is each model against itself.
    """
    comparable = labels is not None or column in COMMON_DIMENSIONS
    stat = statistic
    if stat == "auto":
        stat = "kappa" if comparable else "cramers_v"
    if stat in ("kappa", "agreement_rate") and not comparable:
        raise ValueError(
            f"{stat} needs comparable labels: {column!r} is not one of "
            f"{sorted(COMMON_DIMENSIONS)}; pass labels=... or statistic='cramers_v'"
        )
    names = list(frames)
    out = pd.DataFrame(np.nan, index=pd.Index(names), columns=pd.Index(names), dtype=float)
    for i, x in enumerate(names):
        for y in names[i:]:
            res = agreement(frames[x], frames[y], column, labels=labels)
            value = getattr(res, stat)
            out.loc[x, y] = out.loc[y, x] = float("nan") if value is None else float(value)
    return out


# --------------------------------------------------------------------------------------------
# 6. share of time per period


def share_by_period(
    labels: pd.DataFrame,
    freq: str = "YE",
    column: str = "regime",
    states: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Share of time in each regime per symbol and calendar period (for stacked area charts).

    Parameters
    ----------
    labels
        Label table with ``date`` (datetime), ``symbol`` and ``column``.
    freq
        pandas offset alias of the periods (``YE``, ``QE``, ``ME``, ...).
    column
        The label column.
    states
        Order of the regimes (default: observed labels, sorted).

    Returns
    -------
    pandas.DataFrame
        ``symbol, period, regime, n_bars, share``: one row per (symbol, period, state) for every
        period in which the symbol has at least one labelled bar, zero rows included (so the
        shares of a (symbol, period) sum to 1); ``period`` is the period label pandas' resample
        gives (the period end for ``YE``/``QE``/``ME``); ``share`` is over the labelled bars of
        that period (NaN bars excluded); sorted by symbol, period, then ``states`` order.
    """
    seq = _labelled(labels, column)
    order = _states(seq["regime"].unique().tolist(), states)
    columns = ["symbol", "period", "regime", "n_bars", "share"]
    if seq.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    seq["regime"] = seq["regime"].astype(str)
    seq["date"] = pd.to_datetime(seq["date"])
    counts = seq.groupby(["symbol", pd.Grouper(key="date", freq=freq), "regime"]).size()
    wide = counts.unstack("regime", fill_value=0).reindex(columns=order, fill_value=0)
    wide.columns.name = "regime"
    wide.index.names = ["symbol", "period"]
    n_bars = wide.reset_index().melt(
        id_vars=["symbol", "period"], var_name="regime", value_name="n_bars"
    )
    totals = n_bars.groupby(["symbol", "period"])["n_bars"].transform("sum")
    n_bars["share"] = n_bars["n_bars"] / totals
    n_bars["n_bars"] = n_bars["n_bars"].astype(np.int64)
    rank = n_bars["regime"].map({s: i for i, s in enumerate(order)})
    n_bars = n_bars.assign(_rank=rank).sort_values(["symbol", "period", "_rank"], kind="stable")
    return n_bars[columns].reset_index(drop=True)
