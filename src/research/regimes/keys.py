"""Regime keys and fingerprints exactly as the tune-attribution plan specifies.

Key format ``{schema}|{ruleset}|{trend}|{vol}|{efficiency}`` with ``_`` for a dimension without a
tag, e.g. ``regime_v1_1|default_v1|uptrend|high_vol|noisy``; fingerprint = SHA-256 hex of the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

from research.regimes.ruleset import DEFAULT_RULESET_ID, SCHEMA_VERSION

TREND_TAGS: tuple[str, ...] = ("uptrend", "downtrend", "trending", "flat")
VOL_TAGS: tuple[str, ...] = ("high_vol", "low_vol")
EFFICIENCY_TAGS: tuple[str, ...] = ("efficient", "noisy")
MISSING = "_"


def _first(tags: set[str], options: tuple[str, ...]) -> str | None:
    return next((t for t in options if t in tags), None)


def tag_dimensions(tags: Iterable[str]) -> tuple[str | None, str | None, str | None]:
    """One tag per dimension (trend, vol, efficiency) in the tune-attribution plan's priority order,
    or None."""
    present = set(tags)
    return (
        _first(present, TREND_TAGS),
        _first(present, VOL_TAGS),
        _first(present, EFFICIENCY_TAGS),
    )


def compute_regime_key(
    tags: Iterable[str],
    schema_version: str = SCHEMA_VERSION,
    ruleset_id: str = DEFAULT_RULESET_ID,
) -> str:
    """Human-readable regime key ``{schema}|{ruleset}|{trend}|{vol}|{efficiency}``.

    Uses ``_`` for dimensions without a tag.
    """
    dims = tag_dimensions(tags)
    parts = [d if d is not None else MISSING for d in dims]
    return f"{schema_version}|{ruleset_id}|{parts[0]}|{parts[1]}|{parts[2]}"


def compute_regime_fingerprint(regime_key: str) -> str:
    """SHA-256 hex digest of a regime key (for indexing)."""
    return hashlib.sha256(regime_key.encode()).hexdigest()


def regime_keys(
    trend: pd.Series,
    vol: pd.Series,
    efficiency: pd.Series,
    schema_version: str = SCHEMA_VERSION,
    ruleset_id: str = DEFAULT_RULESET_ID,
) -> tuple[pd.Series, pd.Series]:
    """Vectorised keys and fingerprints from three tag columns (None/NaN → ``_``).

    Returns
    -------
    tuple of pandas.Series
        ``(regime_key, regime_fingerprint)`` aligned with the inputs.
    """

    def part(s: pd.Series) -> pd.Series:
        return s.astype(object).where(s.notna(), MISSING).astype(str)

    key = f"{schema_version}|{ruleset_id}|" + part(trend) + "|" + part(vol) + "|" + part(efficiency)
    digests = {k: compute_regime_fingerprint(k) for k in key.unique()}
    return key, key.map(digests)
