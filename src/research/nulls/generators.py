"""Realistic nulls: the dependence real filters, trades and regimes have.

- ``persistent_filter``: a 0/1 decision per trade from a latent AR(1) process along the trades'
  dates (``phi`` = 0.98 by default: a filter that reads slow-moving state such as IV, VIX or the
  regime), approving a given share — unrelated to P&L, yet far from independent;
- ``circular_shift``: rotate an array by a random offset (keeps its autocorrelation, breaks its
  alignment with the other series);
- ``regime_path``: a label path that keeps the real spell durations of a label series (spells
  drawn with replacement from the real ones, labels in the real order of alternation).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ar1", "circular_shift", "persistent_filter", "regime_path", "spells"]


def ar1(n: int, phi: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A stationary Gaussian AR(1) path of length ``n`` with unit variance."""
    if not -1.0 < phi < 1.0:
        raise ValueError(f"phi must be in (-1, 1), got {phi}")
    from scipy.signal import lfilter

    eps = rng.standard_normal(n)
    if n == 0:
        return eps
    scale = np.sqrt(1.0 - phi * phi)
    # x[0] = eps[0] (stationary start); x[i] = phi x[i-1] + scale eps[i]
    rest, _ = lfilter([scale], [1.0, -phi], eps[1:], zi=[phi * eps[0]])
    return np.concatenate([eps[:1], rest])


def persistent_filter(
    days: npt.ArrayLike, share: float, rng: np.random.Generator, *, phi: float = 0.98
) -> npt.NDArray[np.bool_]:
    """Approve/reject per trade from an AR(1) latent on the trades' **distinct dates** (trades of
    the same day share the latent), approving the top ``share`` of the latent values.

    Parameters
    ----------
    days
        The trades' entry dates (anything ``np.unique`` orders: dates, ordinals).
    share
        Share of trades approved, in (0, 1).
    phi
        Day-to-day persistence of the latent.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    uniq, inv = np.unique(np.asarray(days), return_inverse=True)
    latent = ar1(len(uniq), phi, rng)[inv]
    # a little per-trade noise breaks ties between trades of the same day
    latent = latent + 1e-9 * rng.standard_normal(len(latent))
    k = int(round(share * len(latent)))
    keep = np.zeros(len(latent), bool)
    keep[np.argsort(-latent, kind="stable")[:k]] = True
    return keep


def circular_shift(values: npt.ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """``values`` rotated by a uniform random offset in ``1 .. n-1``."""
    v = np.asarray(values)
    n = len(v)
    if n < 2:
        return v.copy()
    return np.roll(v, int(rng.integers(1, n)))


def spells(labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding: ``(label of each spell, its length)``."""
    v = np.asarray(labels)
    if len(v) == 0:
        return v[:0], np.zeros(0, np.int64)
    change = np.flatnonzero(v[1:] != v[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(v)]]))
    return v[starts], lengths


def regime_path(labels: npt.ArrayLike, rng: np.random.Generator) -> np.ndarray:
    """A path as long as ``labels`` whose spells are drawn (with replacement) from the real spells
    of ``labels`` — label and duration together — starting at a random spell: the real
    durations and label frequencies, no alignment with the real dates."""
    lab, length = spells(labels)
    n = len(np.asarray(labels))
    if n == 0:
        return np.asarray(labels).copy()
    out = []
    total = 0
    while total < n:
        i = int(rng.integers(0, len(lab)))
        take = min(int(length[i]), n - total)
        out.append(np.repeat(lab[i : i + 1], take))
        total += take
    return np.concatenate(out)[:n]
