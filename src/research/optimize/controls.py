"""Regime-free controls for sizing and limit studies: what could explain a result without the
idea being tested.

- **Cash**: the account earns the risk-free rate and trades nothing (excess return 0, Sharpe 0).
- **Exposure-matched control**: the benchmark's sizing (flat multipliers, or the loosest limit
  set) scaled by one constant ``k`` so that its average capital at risk — the mean over days of
  (max loss of the open spreads / equity), ``GridOutput.heat`` — equals the candidate's over the
  **in-sample** window. ``k`` is known at selection time, so the control trades the
  out-of-sample window with no look-ahead. A candidate that merely risks less than flat beats a
  losing flat strategy; it does not beat its exposure-matched control unless *when* it risks
  more or less carries information.
- **Label-permutation null** (regime-multiplier sets): the candidate's multipliers applied to
  regime labels shuffled in blocks that keep the observed regime durations: the runs of
  consecutive equal labels (joint across tickers) are put in a random order in which no two
  runs of the same label touch (they would merge into a longer regime), so every permutation
  has exactly the observed run lengths and label frequencies but no link between label and
  market. A leading run without labels (model warm-up) stays in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

from research.backtest.spreads import BacktestConfig

__all__ = [
    "exposure_matched_config",
    "label_runs",
    "permutation_pvalue",
    "permuted_codes",
    "refine_scale",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def exposure_matched_config(benchmark: BacktestConfig, scale: float) -> BacktestConfig:
    """The benchmark with every day's size multiplied by ``scale`` and no regime multipliers
    (``sizing.regime_multipliers = ()``, ``sizing.unknown_multiplier = scale``)."""
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be a finite number >= 0, got {scale}")
    return benchmark.replace(
        **{"sizing.regime_multipliers": {}, "sizing.unknown_multiplier": float(scale)}
    )


def refine_scale(scale: float, target_heat: float, achieved_heat: float) -> float:
    """One fixed-point step ``k · target / achieved`` towards the target average heat (sizes are
    floored to whole contracts and capped by limits, so heat is only roughly linear in ``k``:
    with few contracts per trade the control can stay several percent off; the study reports
    the capital at risk each control reached). A target of 0 (a candidate that never risks
    anything) gives 0; an achieved heat of 0 leaves ``scale`` unchanged."""
    if not (target_heat > 0 and achieved_heat > 0):
        return float(scale) if target_heat > 0 else 0.0
    return float(scale * target_heat / achieved_heat)


def label_runs(codes: IntArray) -> tuple[IntArray, IntArray]:
    """Runs of equal rows of ``codes`` (days x tickers): start index and length of each run."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    n = len(codes)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    change = np.ones(n, dtype=bool)
    change[1:] = np.any(codes[1:] != codes[:-1], axis=1)
    starts = np.flatnonzero(change).astype(np.int64)
    lengths = np.diff(np.append(starts, n)).astype(np.int64)
    return starts, lengths


@njit(cache=True)
def _orders(keys: IntArray, n_keys: int, uniforms: FloatArray) -> IntArray:  # pragma: no cover
    """``n_perm`` random orders of runs (``keys[i]``: run i's label) in which no two adjacent
    runs share a label (so no two merge), when the label counts allow it.

    Each step draws uniformly among the remaining runs whose label differs from the previous
    run's; runs left over at the end (all of one label) go to random places between runs of
    other labels; only when there is no such place do they follow a run of their own label.
    ``uniforms`` (n_perm x 3n, from ``np.random.default_rng(seed).random``) are the random
    draws: ``int(u * m)`` picks one of ``m``.
    """
    n_perm = uniforms.shape[0]
    n = keys.shape[0]
    out = np.empty((n_perm, n), np.int64)
    grouped = np.argsort(keys, kind="mergesort")
    counts = np.bincount(keys, minlength=n_keys)
    offsets = np.zeros(n_keys + 1, np.int64)
    for k in range(n_keys):
        offsets[k + 1] = offsets[k] + counts[k]
    seq = np.empty(n, np.int64)
    for p in range(n_perm):
        u = uniforms[p]
        draw = 0
        pool = grouped.copy()
        for k in range(n_keys):  # shuffle within each label (Fisher-Yates)
            lo = offsets[k]
            for i in range(counts[k] - 1, 0, -1):
                j = min(int(u[draw] * (i + 1)), i)
                draw += 1
                pool[lo + i], pool[lo + j] = pool[lo + j], pool[lo + i]
        remaining = counts.copy()
        left = n
        prev = -1
        pos = 0
        while left > 0:
            eligible = left - (remaining[prev] if prev >= 0 else 0)
            if eligible == 0:
                break
            r = min(int(u[draw] * eligible), eligible - 1)
            draw += 1
            chosen = -1
            for k in range(n_keys):
                if k == prev:
                    continue
                if r < remaining[k]:
                    chosen = k
                    break
                r -= remaining[k]
            remaining[chosen] -= 1
            seq[pos] = pool[offsets[chosen] + remaining[chosen]]
            pos += 1
            left -= 1
            prev = chosen
        while left > 0:  # leftovers: all of label ``prev``
            k = prev
            remaining[k] -= 1
            run = pool[offsets[k] + remaining[k]]
            slots = 0
            for i in range(pos + 1):
                if (i == 0 or keys[seq[i - 1]] != k) and (i == pos or keys[seq[i]] != k):
                    slots += 1
            target = pos
            if slots > 0:
                pick = min(int(u[draw] * slots), slots - 1)
                draw += 1
                for i in range(pos + 1):
                    if (i == 0 or keys[seq[i - 1]] != k) and (i == pos or keys[seq[i]] != k):
                        if pick == 0:
                            target = i
                            break
                        pick -= 1
            for i in range(pos, target, -1):
                seq[i] = seq[i - 1]
            seq[target] = run
            pos += 1
            left -= 1
        out[p] = seq
    return out


def permuted_codes(codes: IntArray, n_perm: int, seed: int = 0) -> IntArray:
    """``n_perm`` duration-preserving permutations of ``codes`` (days x tickers, −1 = no label).

    The runs of equal rows are put in a random order in which no two runs with the same label
    touch, so every permutation has exactly the observed run lengths per label (and label
    frequencies); only if one label's runs outnumber all the others' can two of them meet. A
    leading run of −1 rows (warm-up) is kept in place. The draws come from
    ``np.random.default_rng(seed)``.

    Returns
    -------
    numpy.ndarray
        ``n_perm x days x tickers`` int64.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be days x tickers, got shape {codes.shape}")
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    starts, lengths = label_runs(codes)
    fixed = 1 if len(starts) and np.all(codes[0] < 0) else 0
    head = int(lengths[:fixed].sum())
    out = np.empty((n_perm, *codes.shape), dtype=np.int64)
    out[:, :head] = codes[:head]
    movable = np.arange(fixed, len(starts))
    if len(movable) == 0:
        return out
    _, keys = np.unique(codes[starts[movable]], axis=0, return_inverse=True)
    keys = np.asarray(keys, dtype=np.int64).ravel()
    uniforms = np.random.default_rng(seed).random((int(n_perm), 3 * len(keys) + 1))
    orders = _orders(keys, int(keys.max()) + 1, uniforms)
    for p in range(n_perm):
        order = movable[orders[p]]
        lens = lengths[order]
        offsets = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        out[p, head:] = codes[np.repeat(starts[order], lens) + offsets]
    return out


def permutation_pvalue(observed: float, null: Sequence[float] | npt.ArrayLike) -> float:
    """``(1 + #{null >= observed}) / (1 + n)`` over the finite null values (one-sided: is the
    observed statistic unusually high?); NaN when ``observed`` is not finite."""
    values = np.asarray(null, dtype=float)
    values = values[np.isfinite(values)]
    if not math.isfinite(observed) or len(values) == 0:
        return math.nan
    return float((1 + np.sum(values >= observed - 1e-12)) / (1 + len(values)))
