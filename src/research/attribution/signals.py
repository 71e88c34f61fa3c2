"""Which agents work in which regime (from the regime-heatmap plan): signal records joined to
regimes and to the returns that followed them.

``prepare`` checks the records against the bars (every symbol known, every ``asof`` a trading
day of its symbol), fills a null ``forward_return_20d`` from the bars, adds the forward returns
at every horizon of ``HORIZONS`` (for decay), and, where a record carries no regime, the label
of a regime model at ``asof`` (computed from data up to ``asof`` only). The tables then read:

- ``heatmap``: regime x period (month or week) mean forward return, hit rate and count — for all
  agents, or per agent or cluster — the regime-heatmap plan's regime effectiveness matrix;
- ``regime_table``: per agent (or cluster) x regime, the mean forward return with a
  cluster-bootstrap interval and the hit rate with a Wilson interval — and, as the control a
  sceptic asks for, the same regime's base rate (every day of the symbol in that regime, signal
  or not) and the signals' mean excess over it with its interval: an agent that "works" in a
  bull regime may only be long a rising market;
- ``decay``: the same per horizon (1, 5, 10, 20 days).

**Uncertainty.** Forward returns of signals a few days apart overlap (a 20-day window), so
records are not independent. Mean-return intervals resample whole calendar months of
signals (a cluster bootstrap), which keeps the overlap inside a month together; hit-rate Wilson
intervals count records as independent and are therefore too narrow — the table says so.

The **excess over the base rate** is resampled *jointly* (``excess_interval``): each bootstrap
draw of calendar months recomputes both the signals' mean and the base rate of the same regime
and symbol over the same, date-matched months — a market move shared by the signals and the
base-rate days of a month cancels in the excess instead of counting as noise (resampling the
signals alone, against a constant base rate, gave intervals 1.2-3.4x too wide on the sample).
Months are drawn in circular blocks of ``EXCESS_BLOCK_MONTHS`` consecutive calendar months
(``arch.bootstrap.CircularBlockBootstrap``), because a 20-day forward return at the end of a
month overlaps the next month and signal spells cross month ends (single months over-rejected in
the calibration, up to 10 %); the interval is a t-interval on the draws' standard error with
the effective number of signal blocks minus one degrees of freedom (``excess_interval``). Its
size is checked by simulation in ``research.nulls.attribution`` (under the null the block
length and the degrees of freedom were chosen on, and under a second, held-out one).

**Reproducible cells.** Each cell of a table draws from its own generator, derived from the
table's ``seed`` and the cell's key (``cell_seed``: a SHA-256 of the key, not Python's salted
``hash``), so a cell's interval and p-value are the same whichever other cells the table holds,
in every run and process; ``EXCESS_REPS`` draws keep the Monte Carlo error of a p-value near
0.05 at about 0.001. All figures are in-sample descriptions of what happened after the
signals, not forecasts.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.clustered import cluster_bootstrap_ci

__all__ = [
    "EXCESS_BLOCK_MONTHS",
    "EXCESS_METHOD",
    "EXCESS_REPS",
    "HORIZONS",
    "ExcessInterval",
    "PreparedSignals",
    "cell_seed",
    "circular_block_counts",
    "circular_block_totals",
    "decay",
    "excess_interval",
    "findings",
    "forward_returns",
    "heatmap",
    "month_numbers",
    "prepare",
    "regime_table",
]

HORIZONS: tuple[int, ...] = (1, 5, 10, 20)
"""Forward-return horizons in trading days."""

EXCESS_BLOCK_MONTHS = 3
"""Consecutive calendar months per bootstrap block of the excess interval (the calibration in
``research.nulls.attribution`` chose it)."""

EXCESS_REPS = 20_000
"""Bootstrap draws per excess interval. The p-value rests on the draws' standard deviation,
whose relative Monte Carlo error is about ``1 / sqrt(2 * reps)`` (0.5 % here): on the sample's
DefensiveAgent x bear_high_vol cell (p near 0.057, 20 degrees of freedom) the p-value's
standard deviation over seeds 0-39 is 0.0012, where 2,000 draws gave 0.004."""

EXCESS_METHOD = (
    f"joint date-matched bootstrap of calendar months (circular blocks of {EXCESS_BLOCK_MONTHS} "
    "months; each draw recomputes the signals' mean and the regime's base rate over the same "
    f"months; {EXCESS_REPS:,} draws per cell, seeded by the cell), t-interval on its standard "
    f"error with signal months / {EXCESS_BLOCK_MONTHS} - 1 degrees of freedom"
)
"""The excess interval's method, in words (for pages and summaries)."""


def forward_returns(bars: pd.DataFrame, horizons: Sequence[int] = HORIZONS) -> pd.DataFrame:
    """Simple returns from each close to the close ``h`` trading days later, per symbol.

    Returns
    -------
    pandas.DataFrame
        ``date, symbol, fwd_<h>`` for every horizon (NaN where the data ends first).
    """
    parts = []
    for symbol, part in bars.sort_values(["symbol", "date"]).groupby("symbol", sort=True):
        close = part["close"].astype(float).reset_index(drop=True)
        frame = pd.DataFrame({"date": part["date"].to_numpy(), "symbol": symbol})
        for h in horizons:
            frame[f"fwd_{h}"] = (close.shift(-h) / close - 1).to_numpy()
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class PreparedSignals:
    """Signal records with their regime and forward returns, ready for the tables."""

    frame: pd.DataFrame
    """``asof, agent, cluster, symbol, regime, regime_source, forward_return_20d, fwd_<h>``
    and, with model labels, ``base_return_20d`` / ``base_hit_rate``: the mean 20-day forward
    return and hit rate over every day of the symbol in the same regime."""
    filled_returns: int
    """Records whose null ``forward_return_20d`` was computed from the bars."""
    without_return: int
    """Records with no 20-day forward return (the data ends first): left out of the tables."""
    without_regime: int
    """Records with no regime (the model's warm-up): left out of the tables."""
    regime_model: str | None
    base_days: pd.DataFrame | None = None
    """With model labels: ``date, symbol, regime, fwd_20`` — every labelled day of the records'
    symbols with a 20-day outcome (the base rate's days); None when every record carries its own
    regime."""

    def notes(self) -> list[str]:
        """What was filled in or left out, in words."""
        out = []
        if self.filled_returns:
            out.append(f"{self.filled_returns:,} null 20-day forward returns computed from bars")
        if self.without_return:
            out.append(
                f"{self.without_return:,} records have no 20-day forward return (the data "
                "ends first) and are left out"
            )
        if self.without_regime:
            out.append(
                f"{self.without_regime:,} records have no regime label (the model's warm-up) "
                "and are left out"
            )
        return out

    @property
    def usable(self) -> pd.DataFrame:
        """Records with a regime and a 20-day forward return."""
        f = self.frame
        return f.loc[f["regime"].notna() & f["forward_return_20d"].notna()].reset_index(drop=True)


def _examples(frame: pd.DataFrame, mask: pd.Series, cols: list[str]) -> str:
    rows = frame.loc[mask, cols].head(3)
    return "; ".join(", ".join(f"{c}={r[c]}" for c in cols) for _, r in rows.iterrows())


def prepare(
    signals: pd.DataFrame,
    bars: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    source: str = "signals",
    horizons: Sequence[int] = HORIZONS,
) -> PreparedSignals:
    """Check ``signals`` against ``bars``, fill forward returns and attach regimes.

    Parameters
    ----------
    signals
        Records in the ``signals`` contract (``regime`` optional).
    bars
        Bars of every symbol the records name.
    labels
        A ``research.regimes.classify`` table (``date, symbol, model, regime``): the regime of
        records that carry none. Required when some record has no regime.
    source
        Name of the signals file, for messages.

    Raises
    ------
    ValueError
        Unknown symbols, or ``asof`` dates that are not trading days of their symbol (naming
        the rows), or records without a regime and no ``labels``.

    Returns
    -------
    PreparedSignals
    """
    from research.data.contracts import validate

    sig = validate("signals", signals, source=source).reset_index(drop=True)
    if "regime" not in sig.columns:
        sig["regime"] = pd.Series([None] * len(sig), dtype=object)
    known = set(bars["symbol"])
    unknown = ~sig["symbol"].isin(known)
    if unknown.any():
        raise ValueError(
            f"{source}: column 'symbol': {int(unknown.sum())} rows name symbols without bars "
            f"{sorted(set(sig.loc[unknown, 'symbol']))} (bars: {sorted(known)}); e.g. "
            + _examples(sig, unknown, ["asof", "agent", "symbol"])
        )
    fwd = forward_returns(bars, horizons)
    merged = sig.merge(
        fwd.rename(columns={"date": "asof"}), on=["asof", "symbol"], how="left", indicator=True
    )
    outside = merged["_merge"] == "left_only"
    if outside.any():
        spans = bars.groupby("symbol")["date"].agg(["min", "max"])
        span_text = ", ".join(
            f"{s} {r['min'].date()}..{r['max'].date()}"
            for s, r in spans.iterrows()
            if s in set(sig["symbol"])
        )
        raise ValueError(
            f"{source}: column 'asof': {int(outside.sum())} rows are not trading days of their "
            f"symbol's bars ({span_text}); e.g. "
            + _examples(merged, outside, ["asof", "agent", "symbol"])
        )
    merged = merged.drop(columns="_merge")
    missing = merged["forward_return_20d"].isna()
    fill_col = "fwd_20" if 20 in horizons else None
    filled = 0
    if fill_col is not None:
        can = missing & merged[fill_col].notna()
        merged.loc[can, "forward_return_20d"] = merged.loc[can, fill_col]
        filled = int(can.sum())
    merged["regime_source"] = pd.Series(
        np.where(merged["regime"].notna().to_numpy(), "records", ""), dtype=object
    ).replace("", None)
    no_regime = merged["regime"].isna()
    model = None
    if no_regime.any():
        if labels is None:
            raise ValueError(
                f"{source}: {int(no_regime.sum())} records carry no regime; name a regime model "
                "to label them (e.g. --model bull_bear_vol)"
            )
        model = str(labels["model"].iloc[0]) if "model" in labels.columns else "labels"
        lab = labels[["date", "symbol", "regime"]].rename(
            columns={"date": "asof", "regime": "model_regime"}
        )
        merged = merged.merge(lab, on=["asof", "symbol"], how="left")
        take = merged["regime"].isna() & merged["model_regime"].notna()
        merged.loc[take, "regime"] = merged.loc[take, "model_regime"]
        merged.loc[take, "regime_source"] = model
        merged = merged.drop(columns="model_regime")
        # the control: every day of the symbol in the regime, signal or not
        days = fwd[["date", "symbol", "fwd_20"]].merge(
            labels[["date", "symbol", "regime"]], on=["date", "symbol"]
        )
        days = days.assign(hit=days["fwd_20"] > 0).dropna(subset=["fwd_20", "regime"])
        base = days.groupby(["symbol", "regime"]).agg(
            base_return_20d=("fwd_20", "mean"), base_hit_rate=("hit", "mean")
        )
        merged = merged.merge(base.reset_index(), on=["symbol", "regime"], how="left")
        base_days = days[["date", "symbol", "regime", "fwd_20"]].reset_index(drop=True)
    else:
        base_days = None
    without_return = int(merged["forward_return_20d"].isna().sum())
    without_regime = int(merged["regime"].isna().sum())
    return PreparedSignals(merged, filled, without_return, without_regime, model, base_days)


def _group_keys(by: str | None) -> list[str]:
    if by is None:
        return []
    if by not in ("agent", "cluster"):
        raise ValueError(f"by must be None, 'agent' or 'cluster', got {by!r}")
    return [by]


def heatmap(prepared: PreparedSignals, *, freq: str = "M", by: str | None = None) -> pd.DataFrame:
    """Regime x period: mean 20-day forward return, hit rate (share > 0) and count.

    Parameters
    ----------
    freq
        ``"M"`` (calendar months) or ``"W"`` (weeks ending Friday).
    by
        None (all agents together), ``"agent"`` or ``"cluster"``.

    Returns
    -------
    pandas.DataFrame
        ``[by,] period, regime, mean_return, hit_rate, n`` (``period``: the period's start).
    """
    if freq not in ("M", "W"):
        raise ValueError(f"freq must be 'M' or 'W', got {freq!r}")
    f = prepared.usable
    period = f["asof"].dt.to_period("M" if freq == "M" else "W-FRI").dt.start_time
    keys = [*_group_keys(by), "period", "regime"]
    g = f.assign(period=period, hit=f["forward_return_20d"] > 0).groupby(keys, sort=True)
    out = g.agg(
        mean_return=("forward_return_20d", "mean"),
        hit_rate=("hit", "mean"),
        n=("forward_return_20d", "size"),
    )
    return out.reset_index()


def month_numbers(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Calendar months as consecutive integers (``year * 12 + month - 1``): the bootstrap's
    clusters, adjacent months one apart."""
    d = pd.DatetimeIndex(dates)
    return (d.year.to_numpy(np.int64) * 12 + d.month.to_numpy(np.int64) - 1).astype(np.int64)


@dataclass(frozen=True)
class ExcessInterval:
    """The signals' mean excess over their regime's base rate, with its joint interval."""

    excess: float
    """Mean over the signals of (forward return - the base rate of the signal's symbol)."""
    ci_low: float
    ci_high: float
    p: float
    """Two-sided p of the matching t-test (``p < alpha`` exactly when the interval excludes 0)."""
    se: float
    """Standard deviation of the bootstrap draws of the excess."""
    df: float
    """Degrees of freedom: the signals' calendar months / ``block`` - 1 (at least 1)."""
    months: int
    """Calendar months in the resampled timeline (first to last month of the signals and the
    base-rate days)."""


def _check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int when it is an integer >= ``minimum``; else a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_alpha(alpha: object) -> float:
    """``alpha`` as a float when it is a number in (0, 1); else a one-line ValueError."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def cell_seed(seed: int, key: Sequence[object]) -> np.random.SeedSequence:
    """The random stream of one table cell: ``SeedSequence([seed, *words])`` with ``words`` the
    first 16 bytes of the SHA-256 of the cell's key (its values as text, joined by ``\\x1f``),
    as four 32-bit integers — the same in every run and Python process (Python's ``hash`` of a
    string is salted per process), and independent of the other cells of the table.

    Raises
    ------
    ValueError
        ``seed`` not an integer >= 0.
    """
    seed = _check_int("seed", seed, 0)
    text = "\x1f".join(str(k) for k in key).encode("utf-8")
    digest = hashlib.sha256(text).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.SeedSequence([seed, *words])


def _block_starts(m: int, block: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps x ceil(m / block)`` block starts, uniform on ``0 .. m - 1`` (one draw for all)."""
    return rng.integers(0, m, size=(reps, -(-m // block)))


def circular_block_counts(m: int, block: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``m`` periods is drawn in each of ``reps`` circular block bootstrap
    resamples (blocks of ``block`` consecutive periods starting anywhere, wrapping around the
    end; the first ``m`` periods drawn kept) — the resamples of
    ``arch.bootstrap.CircularBlockBootstrap``, drawn for all ``reps`` at once.
    ``circular_block_totals`` gives ``counts @ values`` from the same draws without the
    ``reps x m`` matrix.

    Raises
    ------
    ValueError
        ``m``, ``block`` or ``reps`` not an integer >= 1.

    Returns
    -------
    numpy.ndarray
        ``reps x m`` int64 counts; every row sums to ``m``.
    """
    m = _check_int("m", m, 1)
    block = _check_int("block", block, 1)
    reps = _check_int("reps", reps, 1)
    starts = _block_starts(m, block, reps, rng)
    n_blocks = starts.shape[1]
    idx = ((starts[:, :, None] + np.arange(block)) % m).reshape(reps, n_blocks * block)[:, :m]
    flat = (idx + m * np.arange(reps)[:, None]).ravel()
    return np.bincount(flat, minlength=reps * m).reshape(reps, m)


def circular_block_totals(
    values: npt.ArrayLike, block: int, reps: int, rng: np.random.Generator, *, chunk: int = 256
) -> np.ndarray:
    """``circular_block_counts(m, block, reps, rng) @ values`` for ``m`` periods (the rows of
    ``values``), from the same draws, without the ``reps x m x block`` index array: each full
    block adds a precomputed circular block sum of ``values`` (a histogram of the block starts,
    ``chunk`` resamples at a time, times the block sums), the last, truncated block its own
    partial sum.

    Raises
    ------
    ValueError
        ``block``, ``reps`` or ``chunk`` not an integer >= 1, or ``values`` without rows.

    Returns
    -------
    numpy.ndarray
        ``reps x q`` float totals (``q`` the columns of ``values``; a 1-d ``values`` gives
        ``reps``).
    """
    x = np.asarray(values, dtype=float)
    flat_out = x.ndim == 1
    m = len(x)
    if m == 0:
        raise ValueError("values has no rows (periods)")
    x = x.reshape(m, -1)
    block = _check_int("block", block, 1)
    reps = _check_int("reps", reps, 1)
    chunk = _check_int("chunk", chunk, 1)
    starts = _block_starts(m, block, reps, rng)
    n_blocks = starts.shape[1]
    last = m - (n_blocks - 1) * block  # the truncated last block's length, 1 .. block
    wrapped = np.vstack([x] * (-(-(m + block) // m)))[: m + block]
    cum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(wrapped, axis=0)])
    at = np.arange(m)
    full = cum[at + block] - cum[at]  # sum of the block starting at each period
    part = cum[at + last] - cum[at]
    out = part[starts[:, -1]]
    if n_blocks > 1:
        size = min(chunk, reps)
        offsets = m * np.arange(size)[:, None]
        ones = np.ones(size * (n_blocks - 1))  # weights: the histogram comes out as float
        for i in range(0, reps, size):
            s = starts[i : i + size, :-1]
            where = (s + offsets[: len(s)]).ravel()
            hist = np.bincount(where, weights=ones[: where.size], minlength=len(s) * m)
            out[i : i + size] += hist.reshape(len(s), m) @ full
    totals: np.ndarray = out[:, 0] if flat_out else out
    return totals


def excess_interval(
    signal_months: npt.ArrayLike,
    signal_symbols: npt.ArrayLike,
    signal_values: npt.ArrayLike,
    base_months: npt.ArrayLike,
    base_symbols: npt.ArrayLike,
    base_values: npt.ArrayLike,
    *,
    reps: int = EXCESS_REPS,
    alpha: float = 0.05,
    block: int = EXCESS_BLOCK_MONTHS,
    rng: np.random.Generator,
) -> ExcessInterval:
    """Excess of the signals' mean forward return over the base rate, with a joint, date-matched
    block bootstrap interval (module docstring).

    The timeline is every calendar month from the first to the last month of the signals and
    the base-rate days; each draw takes circular blocks of ``block`` consecutive months
    (``circular_block_totals``: the resamples of ``arch.bootstrap.CircularBlockBootstrap``,
    drawn for every replication at once) and recomputes, over the drawn months, the
    signals' sum and count per symbol and the base rate per symbol (the mean of the base-rate
    days of that symbol in the drawn months); the draw's excess is
    ``sum_s(signal sum_s - signal count_s * base rate_s) / signal count``. The interval is
    ``excess +/- t(df) * se``: ``se`` the standard deviation of the draws, ``df`` the effective
    number of independent blocks of signals minus one (the signals' calendar months / ``block``
    - 1, at least 1) — a percentile interval of the draws rejected up to 10 % of true nulls in
    the calibration (``research.nulls.attribution``), this one about 4 % at the 5 % level, under
    the null the block length and degrees of freedom were chosen on and under a held-out one.

    Parameters
    ----------
    signal_months, base_months
        ``month_numbers`` of the signals' dates and of the base-rate days.
    signal_symbols, base_symbols
        The symbol of each (any comparable labels).
    signal_values, base_values
        The 20-day forward returns.
    reps
        Bootstrap draws (``EXCESS_REPS``: its Monte Carlo error).
    block
        Consecutive calendar months per block (``EXCESS_BLOCK_MONTHS``).

    Raises
    ------
    ValueError
        ``reps`` not an integer >= 2, ``block`` not an integer >= 1, ``alpha`` not in (0, 1),
        or arrays of different lengths (each naming the option and the value).

    Returns
    -------
    ExcessInterval
        NaN interval and p when the signals fall in fewer than two calendar months or every
        draw gives the same excess up to rounding (no p of 0: nothing was measured); NaN
        everywhere when a symbol of the signals has no base-rate day.
    """
    from scipy import stats

    reps = _check_int("reps", reps, 2)
    block = _check_int("block", block, 1)
    alpha = _check_alpha(alpha)
    sm = np.asarray(signal_months, dtype=np.int64)
    bm = np.asarray(base_months, dtype=np.int64)
    sv = np.asarray(signal_values, dtype=float)
    bv = np.asarray(base_values, dtype=float)
    ss_, bs_ = np.asarray(signal_symbols), np.asarray(base_symbols)
    if not len(sm) == len(ss_) == len(sv) or not len(bm) == len(bs_) == len(bv):
        raise ValueError(
            "signal_months, signal_symbols, signal_values need one length, and base_months, "
            f"base_symbols, base_values another: got {len(sm)}, {len(ss_)}, {len(sv)} and "
            f"{len(bm)}, {len(bs_)}, {len(bv)}"
        )
    names, codes = np.unique(np.concatenate([ss_, bs_]).astype(str), return_inverse=True)
    sc, bc = codes[: len(sm)], codes[len(sm) :]
    nan = np.nan
    if len(sm) == 0:
        return ExcessInterval(nan, nan, nan, nan, nan, nan, 0)
    first = int(min(sm.min(), bm.min() if len(bm) else sm.min()))
    last = int(max(sm.max(), bm.max() if len(bm) else sm.max()))
    m, k = last - first + 1, len(names)

    def totals(month: np.ndarray, code: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        flat = (month - first) * k + code
        return np.bincount(flat, weights=w, minlength=m * k).reshape(m, k)

    sig_sum, sig_n = totals(sm, sc, sv), totals(sm, sc, None).astype(float)
    base_sum, base_n = totals(bm, bc, bv), totals(bm, bc, None).astype(float)
    has_sig, has_base = sig_n.sum(axis=0) > 0, base_n.sum(axis=0) > 0
    if (has_sig & ~has_base).any():
        return ExcessInterval(nan, nan, nan, nan, nan, nan, m)
    rate = np.divide(base_sum.sum(axis=0), base_n.sum(axis=0), out=np.zeros(k), where=has_base)
    excess = float((sig_sum.sum() - (sig_n.sum(axis=0) * rate).sum()) / sig_n.sum())
    signal_months_count = len(np.unique(sm))
    if signal_months_count < 2:
        return ExcessInterval(excess, nan, nan, nan, nan, nan, m)
    drawn = circular_block_totals(
        np.hstack([sig_sum, sig_n, base_sum, base_n]), min(block, m), reps, rng
    )
    ss, sn, bs, bn = (drawn[:, i * k : (i + 1) * k] for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.where(sn > 0, ss - sn * (bs / bn), 0.0)
        draws = part.sum(axis=1) / sn.sum(axis=1)
    draws = draws[np.isfinite(draws)]
    if len(draws) < 2:
        return ExcessInterval(excess, nan, nan, nan, nan, nan, m)
    se = float(draws.std(ddof=1))
    df = max(1.0, signal_months_count / block - 1.0)
    scale = abs(excess) + float(np.abs(sv).max(initial=0.0)) + 1.0
    if not se > 1e-12 * scale:  # every draw the same (up to rounding): nothing to test
        return ExcessInterval(excess, nan, nan, nan, se, df, m)
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    p = float(2 * stats.t.sf(abs(excess) / se, df))
    return ExcessInterval(excess, excess - half, excess + half, p, se, df, m)


def _summaries(
    frame: pd.DataFrame,
    keys: list[str],
    value: str,
    *,
    alpha: float,
    reps: int,
    seed: int,
    min_n: int,
    base_days: pd.DataFrame | None = None,
    block: int = EXCESS_BLOCK_MONTHS,
    excess_reps: int = EXCESS_REPS,
) -> pd.DataFrame:
    from statsmodels.stats.proportion import proportion_confint

    alpha = _check_alpha(alpha)
    reps = _check_int("reps", reps, 1)
    seed = _check_int("seed", seed, 0)
    min_n = _check_int("min_n", min_n, 0)
    block = _check_int("block", block, 1)
    excess_reps = _check_int("excess_reps", excess_reps, 2)
    rows = []
    frame = frame.reset_index(drop=True)
    # calendar months as integers: the bootstrap's clusters
    months = month_numbers(frame["asof"])
    if base_days is not None:
        base_months = month_numbers(base_days["date"])
        base_regime = base_days["regime"].astype(str).to_numpy()
        base_symbol = base_days["symbol"].astype(str).to_numpy()
        base_value = base_days["fwd_20"].to_numpy(float)
    for key, part in frame.groupby(keys, sort=True):
        key_values = key if isinstance(key, tuple) else (key,)
        # each cell's own streams: its results do not depend on the other cells
        mean_stream, excess_stream = cell_seed(seed, (value, *key_values)).spawn(2)
        vals = part[value].to_numpy(float)
        n = len(vals)
        hits = int((vals > 0).sum())
        cell_months = months[part.index.to_numpy()]
        lo, hi = cluster_bootstrap_ci(
            vals, cell_months, reps, alpha, np.random.default_rng(mean_stream)
        )
        w_lo, w_hi = proportion_confint(hits, n, alpha=alpha, method="wilson")
        row = {
            **dict(zip(keys, key_values, strict=True)),
            "n": n,
            "months": int(len(np.unique(cell_months))),
            "mean_return": float(vals.mean()),
            "ci_low": lo,
            "ci_high": hi,
            "hit_rate": hits / n,
            "hit_ci_low": float(w_lo),
            "hit_ci_high": float(w_hi),
        }
        if (
            base_days is not None
            and "base_return_20d" in part.columns
            and part["base_return_20d"].notna().all()
        ):
            symbols = part["symbol"].astype(str).to_numpy()
            mine = (base_regime == str(part["regime"].iloc[0])) & np.isin(
                base_symbol, np.unique(symbols)
            )
            joint = excess_interval(
                cell_months,
                symbols,
                vals,
                base_months[mine],
                base_symbol[mine],
                base_value[mine],
                reps=excess_reps,
                alpha=alpha,
                block=block,
                rng=np.random.default_rng(excess_stream),
            )
            row |= {
                "base_return": float(part["base_return_20d"].mean()),
                "excess_return": joint.excess,
                "excess_ci_low": joint.ci_low,
                "excess_ci_high": joint.ci_high,
                "excess_p": joint.p,
                "base_hit_rate": float(part["base_hit_rate"].mean()),
            }
        rows.append(row | {"enough": n >= min_n})
    return pd.DataFrame(rows)


def regime_table(
    prepared: PreparedSignals,
    *,
    by: str = "agent",
    alpha: float = 0.05,
    reps: int = 2000,
    seed: int = 0,
    min_n: int = 30,
    block: int = EXCESS_BLOCK_MONTHS,
    excess_reps: int = EXCESS_REPS,
) -> pd.DataFrame:
    """Per ``by`` (agent or cluster) x regime: mean 20-day forward return with a cluster-
    bootstrap interval (whole calendar months resampled, ``reps`` draws), hit rate with a
    Wilson interval, and the excess over the regime's base rate with a joint, date-matched block
    bootstrap interval (``excess_interval``: blocks of ``block`` calendar months,
    ``excess_reps`` draws).

    Every cell draws from its own generator, ``cell_seed(seed, (value column, by value,
    regime))``: a cell's intervals and p-value depend on ``seed`` and on its own records and
    base-rate days only — not on which other cells the table holds or their order.

    Raises
    ------
    ValueError
        ``by`` not agent or cluster; ``alpha`` not in (0, 1); ``reps`` or ``block`` not an
        integer >= 1, ``excess_reps`` not an integer >= 2, ``seed`` or ``min_n`` not an
        integer >= 0 (each naming the option and the value).

    Returns
    -------
    pandas.DataFrame
        ``by, regime, n, months, mean_return, ci_low, ci_high, hit_rate, hit_ci_low,
        hit_ci_high``; with model labels also ``base_return, excess_return, excess_ci_low,
        excess_ci_high, excess_p, base_hit_rate`` (the regime's every-day base rate for the
        records' symbols, the signals' mean excess over it, its interval and the matching
        two-sided p); then ``enough`` (at least ``min_n`` records; fewer are shown but not to be
        read as evidence).
    """
    keys = [*_group_keys(by), "regime"]
    return _summaries(
        prepared.usable,
        keys,
        "forward_return_20d",
        alpha=alpha,
        reps=reps,
        seed=seed,
        min_n=min_n,
        base_days=prepared.base_days,
        block=block,
        excess_reps=excess_reps,
    )


def decay(
    prepared: PreparedSignals,
    *,
    by: str = "agent",
    horizons: Sequence[int] = HORIZONS,
    alpha: float = 0.05,
    reps: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per ``by`` and horizon: mean forward return (cluster-bootstrap interval) and hit rate —
    how an agent's edge builds or fades after the signal. Each cell draws from its own
    generator (``cell_seed(seed, (forward-return column, by value))``, as ``regime_table``).

    Returns
    -------
    pandas.DataFrame
        ``by, horizon, n, months, mean_return, ci_low, ci_high, hit_rate, hit_ci_low,
        hit_ci_high``.
    """
    f = prepared.frame
    parts = []
    for h in horizons:
        col = f"fwd_{h}"
        if col not in f.columns:
            raise ValueError(f"no forward returns at horizon {h}; prepare(..., horizons=...)")
        mine = f.loc[f[col].notna()]
        table = _summaries(
            mine, _group_keys(by), col, alpha=alpha, reps=reps, seed=seed, min_n=0
        ).drop(columns="enough")
        parts.append(table.assign(horizon=h))
    out = pd.concat(parts, ignore_index=True)
    cols = [*_group_keys(by), "horizon"]
    return out[cols + [c for c in out.columns if c not in cols]].sort_values(
        cols, ignore_index=True
    )


def findings(table: pd.DataFrame, *, by: str = "agent") -> dict[str, object]:
    """The regime table worded by one rule: a cell (``by`` x regime with ``enough`` records)
    *beats* its regime's base rate when the excess interval lies above 0, *trails* it when it
    lies below, else is indistinguishable from it; and how many such calls chance alone would
    make (5 % of the cells tested, two-sided at 95 %: no multiple-testing correction).

    Returns
    -------
    dict
        ``tested, beats, trails, expected_by_chance`` (cells as ``"agent in regime"`` text) and
        ``sentence``.
    """
    if "excess_ci_low" not in table.columns:
        raise ValueError("the table has no base-rate comparison (records carry their regimes)")
    rows = table.loc[table["enough"] & table["excess_ci_low"].notna()]
    name = [f"{r[by]} in {r['regime']}" for _, r in rows.iterrows()]
    beats = [n for n, (_, r) in zip(name, rows.iterrows(), strict=True) if r["excess_ci_low"] > 0]
    trails = [n for n, (_, r) in zip(name, rows.iterrows(), strict=True) if r["excess_ci_high"] < 0]
    expected = 0.05 * len(rows)
    if not beats and not trails:
        verdict = "none differs from its regime's base rate"
    else:
        parts = []
        if beats:
            parts.append(f"{len(beats)} beat it ({', '.join(beats)})")
        if trails:
            parts.append(f"{len(trails)} trail it ({', '.join(trails)})")
        verdict = "; ".join(parts)
    sentence = (
        f"Of {len(rows)} {by} x regime cells with enough records, {verdict} at 95% "
        f"(in-sample; excess over every day of the same regime and symbol, resampling "
        f"{EXCESS_BLOCK_MONTHS}-month blocks jointly for the signals and the base rate; "
        f"about {expected:.1f} such calls are expected by chance alone)."
    )
    return {
        "tested": len(rows),
        "beats": beats,
        "trails": trails,
        "expected_by_chance": expected,
        "sentence": sentence,
    }
