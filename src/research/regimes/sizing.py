"""Volatility-regime sizing and hybrid-weight modulation, and the per-symbol regime snapshot.

The EWMA volatility-regime plan, adapted to daily bars. The classification itself (EWMA short/long
volatility ratio → ``low`` / ``normal`` / ``high`` / ``crisis``) is the ``vol_ratio`` regime model;
this module only *consumes* its labels:

- :class:`VolRegimesConfig` is the plan's ``vol_regimes`` block: the classification ``defaults``
  (the same values as :class:`~research.regimes.ruleset.VolRatioRules`, convertible with
  :meth:`VolRegimeDefaults.to_vol_ratio_rules`), tier ``sizing_multipliers`` and
  ``hybrid_weight_modifiers``. :func:`load_vol_regimes_config` reads it from a dict shaped like
  the plan's JSON.
- :func:`sizing_multiplier` / :func:`effective_nav_pct` scale a base ``per_trade_nav_pct`` by
  tier and regime; :func:`hybrid_weights` / :func:`hybrid_score` re-weight the hybrid score
  components (trend, carry, expectancy, router); :func:`apply_sizing` does both for a frame of
  candidates.
- :func:`regime_snapshot` / :func:`write_snapshot` publish the latest regime per symbol with its
  vols and the ``vol_regime_summary`` counts; :func:`badge` and :data:`BADGE_COLORS` render it.

Missing configuration is never an error: no config (``None``), an empty mapping or an absent
``vol_regimes`` block give multiplier 1.0 and the unmodified base hybrid weights, as do tiers or
regimes left out of an incomplete block. Unknown keys, tiers, regimes or components in a block
*are* errors (:class:`ValueError` naming the key), so typos cannot silently fall back.

>>> cfg = load_vol_regimes_config({"vol_regimes": DEFAULT_VOL_REGIMES.to_dict()["vol_regimes"]})
>>> round(effective_nav_pct(0.02, cfg, "CORE", "crisis"), 6)
0.01
>>> round(hybrid_weights("crisis", cfg).carry, 4)
0.1212
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd

from research._io import write_text_atomic
from research.regimes.ruleset import DEFAULT_RULESET, VolRatioRules, check_ruleset

__all__ = [
    "BADGE_COLORS",
    "CANDIDATE_COLUMNS",
    "DEFAULT_VOL_REGIMES",
    "HYBRID_COMPONENTS",
    "MISSING_BADGE",
    "MODIFIED_COMPONENTS",
    "REGIMES",
    "TIERS",
    "HybridBaseWeights",
    "HybridModifiers",
    "HybridScores",
    "HybridWeights",
    "VolRegimeDefaults",
    "VolRegimesConfig",
    "apply_sizing",
    "badge",
    "effective_nav_pct",
    "hybrid_score",
    "hybrid_weights",
    "load_vol_regimes_config",
    "read_snapshot",
    "regime_snapshot",
    "sizing_multiplier",
    "write_snapshot",
]

REGIMES: Final[tuple[str, ...]] = ("low", "normal", "high", "crisis")
"""The ``vol_ratio`` labels, lowest risk first (also the order of ``vol_regime_summary``)."""

TIERS: Final[tuple[str, ...]] = ("CORE", "SATELLITE", "TACTICAL", "ALT-EXT")
"""The EWMA volatility-regime plan's tiers. Lookups upper-case the tier, read ``_`` as ``-`` and
``SAT`` as SATELLITE."""

FALLBACK_TIER: Final[str] = "CORE"
"""Unknown or missing tiers are sized with this tier's row (the EWMA volatility-regime
plan's "CORE-like default")."""

HYBRID_COMPONENTS: Final[tuple[str, ...]] = ("trend", "carry", "expectancy", "router")
MODIFIED_COMPONENTS: Final[tuple[str, ...]] = ("carry", "expectancy", "router")
"""Components the regime modifiers scale; trend always keeps its base weight."""

DEFAULT_MODIFIERS_KEY: Final[str] = "default"

_TIER_ALIASES: Final[Mapping[str, str]] = MappingProxyType({"SAT": "SATELLITE"})
_BLOCK_KEY: Final[str] = "vol_regimes"
_SECTIONS: Final[tuple[str, ...]] = ("defaults", "sizing_multipliers", "hybrid_weight_modifiers")
_RATIO_KEYS: Final[tuple[str, ...]] = ("low", "normal", "high")

_VR_DEFAULTS: Final[VolRatioRules] = DEFAULT_RULESET.vol_ratio


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _number(value: Any, where: str, *, nonnegative: bool = True) -> float:
    """A finite (non-negative) float, or a ValueError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or (nonnegative and out < 0):
        raise ValueError(f"{where}: expected a finite non-negative number, got {value!r}")
    return out


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{where}: must be >= 1, got {value!r}")
    return int(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    return value


def _check_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)}; known: {list(known)}"
        )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _check_regime(regime: Any) -> str:
    if not isinstance(regime, str) or regime not in REGIMES:
        raise ValueError(f"unknown vol regime {regime!r}; known: {list(REGIMES)}")
    return regime


def _row_tier(tier: Any) -> str:
    """The tier whose row sizes ``tier``: itself when known, else :data:`FALLBACK_TIER`."""
    key = _canonical_tier(tier)
    return key if key in TIERS else FALLBACK_TIER


def _canonical_tier(tier: Any) -> str | None:
    """Upper-cased tier with ``_`` read as ``-`` and aliases resolved; None when missing."""
    if _is_missing(tier):
        return None
    key = str(tier).strip().upper().replace("_", "-")
    return _TIER_ALIASES.get(key, key)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolRegimeDefaults:
    """The ``defaults`` section: windows, half-lives and ratio thresholds of the classification.

    Field defaults are those of :class:`~research.regimes.ruleset.VolRatioRules` (daily bars:
    half-lives 7 / 30, windows 14 / 60, ``ratio_low_high`` 0.6 / 1.2 / 1.8). In JSON the
    thresholds are nested as ``ratio_low_high: {low, normal, high}``.
    """

    short_window_bars: int = _VR_DEFAULTS.short_window_bars
    long_window_bars: int = _VR_DEFAULTS.long_window_bars
    short_halflife_bars: int = _VR_DEFAULTS.short_halflife_bars
    long_halflife_bars: int = _VR_DEFAULTS.long_halflife_bars
    ratio_low: float = _VR_DEFAULTS.ratio_low
    ratio_normal: float = _VR_DEFAULTS.ratio_normal
    ratio_high: float = _VR_DEFAULTS.ratio_high

    def to_vol_ratio_rules(self) -> VolRatioRules:
        """These settings as the ``vol_ratio`` model's rules.

        Returns
        -------
        VolRatioRules
            ``dataclasses.replace(DEFAULT_RULESET.vol_ratio, ...)`` with every field of this
            section; checked like a ruleset (ordered thresholds, short window <= long window).

        Raises
        ------
        ValueError
            If the settings are inconsistent (a ``RulesetError``).
        """
        rules = dataclasses.replace(
            DEFAULT_RULESET.vol_ratio,
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
        )
        check_ruleset(dataclasses.replace(DEFAULT_RULESET, vol_ratio=rules), "vol_regimes.defaults")
        return rules

    def to_dict(self) -> dict[str, Any]:
        """The EWMA volatility-regime plan's JSON shape (``ratio_low_high`` nested)."""
        return {
            "short_window_bars": self.short_window_bars,
            "long_window_bars": self.long_window_bars,
            "short_halflife_bars": self.short_halflife_bars,
            "long_halflife_bars": self.long_halflife_bars,
            "ratio_low_high": {
                "low": self.ratio_low,
                "normal": self.ratio_normal,
                "high": self.ratio_high,
            },
        }


@dataclass(frozen=True)
class HybridModifiers:
    """Regime multipliers of the carry, expectancy and router weights (1.0: unchanged)."""

    carry: float = 1.0
    expectancy: float = 1.0
    router: float = 1.0


@dataclass(frozen=True)
class HybridBaseWeights:
    """B1's base hybrid weights (renormalised after modulation, so need not sum to 1)."""

    trend: float = 0.40
    carry: float = 0.25
    expectancy: float = 0.20
    router: float = 0.15


@dataclass(frozen=True)
class HybridWeights:
    """Regime-modulated hybrid weights; they sum to 1."""

    trend: float
    carry: float
    expectancy: float
    router: float

    def as_dict(self) -> dict[str, float]:
        """``{component: weight}`` in :data:`HYBRID_COMPONENTS` order."""
        return {c: float(getattr(self, c)) for c in HYBRID_COMPONENTS}


@dataclass(frozen=True)
class HybridScores:
    """One candidate's component scores (router = router quality score)."""

    trend: float
    carry: float
    expectancy: float
    router: float


SizingTable = Mapping[str, Mapping[str, float]]
ModifierTable = Mapping[str, Mapping[str, HybridModifiers]]

_SEED_SIZING: Final[dict[str, dict[str, float]]] = {
    "CORE": {"low": 1.15, "normal": 1.0, "high": 0.75, "crisis": 0.5},
    "SATELLITE": {"low": 1.1, "normal": 1.0, "high": 0.7, "crisis": 0.4},
    "TACTICAL": {"low": 1.0, "normal": 0.9, "high": 0.6, "crisis": 0.3},
    "ALT-EXT": {"low": 0.9, "normal": 0.8, "high": 0.5, "crisis": 0.2},
}
_SEED_MODIFIERS: Final[dict[str, dict[str, HybridModifiers]]] = {
    "default": {
        "low": HybridModifiers(1.0, 1.0, 1.0),
        "normal": HybridModifiers(1.0, 1.0, 1.0),
        "high": HybridModifiers(carry=0.7, expectancy=0.9, router=1.0),
        "crisis": HybridModifiers(carry=0.4, expectancy=0.8, router=1.1),
    }
}


def _parse_defaults(raw: Any, where: str) -> VolRegimeDefaults:
    if isinstance(raw, VolRegimeDefaults):
        return raw
    data = dict(_mapping(raw, where))
    plain = ("short_window_bars", "long_window_bars", "short_halflife_bars", "long_halflife_bars")
    _check_keys(data, (*plain, "ratio_low_high"), where)
    values: dict[str, Any] = {k: _integer(data[k], f"{where}.{k}") for k in plain if k in data}
    if "ratio_low_high" in data:
        ratios = _mapping(data["ratio_low_high"], f"{where}.ratio_low_high")
        _check_keys(ratios, _RATIO_KEYS, f"{where}.ratio_low_high")
        for k in _RATIO_KEYS:
            if k in ratios:
                values[f"ratio_{k}"] = _number(ratios[k], f"{where}.ratio_low_high.{k}")
    out = VolRegimeDefaults(**values)
    out.to_vol_ratio_rules()  # consistency check (ordered thresholds, windows)
    return out


def _parse_sizing(raw: Any, where: str) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for tier, row in _mapping(raw, where).items():
        key = _canonical_tier(tier) if isinstance(tier, str) else None
        if key not in TIERS:
            raise ValueError(f"{where}: unknown tier {tier!r}; known: {list(TIERS)}")
        if key in table:
            raise ValueError(f"{where}: tier {tier!r} given twice (as {key!r})")
        row = _mapping(row, f"{where}.{tier}")
        _check_keys(row, REGIMES, f"{where}.{tier}")
        table[key] = {r: _number(v, f"{where}.{tier}.{r}") for r, v in row.items()}
    return table


def _parse_modifiers(raw: Any, where: str) -> dict[str, dict[str, HybridModifiers]]:
    table: dict[str, dict[str, HybridModifiers]] = {}
    for name, by_regime in _mapping(raw, where).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: modifier set names must be non-empty strings, got {name!r}")
        by_regime = _mapping(by_regime, f"{where}.{name}")
        _check_keys(by_regime, REGIMES, f"{where}.{name}")
        sets: dict[str, HybridModifiers] = {}
        for regime, mods in by_regime.items():
            here = f"{where}.{name}.{regime}"
            if isinstance(mods, HybridModifiers):
                mods = dataclasses.asdict(mods)
            mods = _mapping(mods, here)
            _check_keys(mods, MODIFIED_COMPONENTS, here)
            sets[regime] = HybridModifiers(
                **{c: _number(v, f"{here}.{c}") for c, v in mods.items()}
            )
        table[name] = sets
    return table


def _freeze(table: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in table.items()})


@dataclass(frozen=True)
class VolRegimesConfig:
    """The EWMA volatility-regime plan's ``vol_regimes`` block; ``VolRegimesConfig()`` holds
    its defaults.

    Parameters
    ----------
    defaults
        Classification settings (see :class:`VolRegimeDefaults`).
    sizing_multipliers
        ``{tier: {regime: multiplier}}`` for tiers in :data:`TIERS`. A tier or regime left out
        means multiplier 1.0 (but an unknown tier is sized with the CORE row, see
        :func:`sizing_multiplier`).
    hybrid_weight_modifiers
        ``{set name: {regime: HybridModifiers}}``; the plan's set is ``"default"``. A regime
        left out of a set leaves the weights unmodified.

    Notes
    -----
    The tables are validated (unknown tiers, regimes or components raise ``ValueError``) and
    stored read-only. Instances are hashable on ``defaults`` only.
    """

    defaults: VolRegimeDefaults = field(default_factory=VolRegimeDefaults)
    sizing_multipliers: SizingTable = field(default_factory=lambda: _SEED_SIZING, hash=False)
    hybrid_weight_modifiers: ModifierTable = field(
        default_factory=lambda: _SEED_MODIFIERS, hash=False
    )

    def __post_init__(self) -> None:
        defaults = _parse_defaults(self.defaults, "vol_regimes.defaults")
        sizing = _parse_sizing(self.sizing_multipliers, "vol_regimes.sizing_multipliers")
        mods = _parse_modifiers(self.hybrid_weight_modifiers, "vol_regimes.hybrid_weight_modifiers")
        object.__setattr__(self, "defaults", defaults)
        object.__setattr__(self, "sizing_multipliers", _freeze(sizing))
        object.__setattr__(self, "hybrid_weight_modifiers", _freeze(mods))

    def to_vol_ratio_rules(self) -> VolRatioRules:
        """The ``defaults`` section as ``vol_ratio`` rules (see
        :meth:`VolRegimeDefaults.to_vol_ratio_rules`)."""
        return self.defaults.to_vol_ratio_rules()

    def to_dict(self) -> dict[str, Any]:
        """``{"vol_regimes": {...}}`` in the EWMA volatility-regime plan's JSON shape (round-trips
        through :func:`load_vol_regimes_config`)."""
        return {
            _BLOCK_KEY: {
                "defaults": self.defaults.to_dict(),
                "sizing_multipliers": {t: dict(row) for t, row in self.sizing_multipliers.items()},
                "hybrid_weight_modifiers": {
                    name: {r: dataclasses.asdict(m) for r, m in sets.items()}
                    for name, sets in self.hybrid_weight_modifiers.items()
                },
            }
        }


DEFAULT_VOL_REGIMES: Final[VolRegimesConfig] = VolRegimesConfig()
"""The EWMA volatility-regime plan's ``vol_regimes`` block with the daily-bar defaults."""


def load_vol_regimes_config(data: Mapping[str, Any] | None) -> VolRegimesConfig | None:
    """Read the ``vol_regimes`` block from a dict in the EWMA volatility-regime plan's JSON shape.

    Parameters
    ----------
    data
        Either a mapping with a ``vol_regimes`` key (e.g. a whole strategy config; its other keys
        are ignored) or the inner block itself (keys ``defaults``, ``sizing_multipliers``,
        ``hybrid_weight_modifiers``).

    Returns
    -------
    VolRegimesConfig or None
        ``None`` when there is no block: ``data`` is ``None`` or empty, ``vol_regimes`` is
        ``null``, or the mapping has neither a ``vol_regimes`` key nor any section key. A block
        that is present is taken *as given*: a section left out is empty (multipliers 1.0,
        unmodified weights), except ``defaults``, whose missing settings take the
        :class:`VolRegimeDefaults` values.

    Raises
    ------
    ValueError
        Unknown section, tier, regime, component or setting, or a bad value; the message names
        the key path (e.g. ``vol_regimes.sizing_multipliers.CORE: unknown key(s) 'panic'``).
    """
    if data is None:
        return None
    data = _mapping(data, "vol_regimes config")
    if _BLOCK_KEY in data:
        block = data[_BLOCK_KEY]
        if block is None:
            return None
    elif any(k in _SECTIONS for k in data):
        block = data
    else:
        return None
    block = _mapping(block, _BLOCK_KEY)
    _check_keys(block, _SECTIONS, _BLOCK_KEY)
    return VolRegimesConfig(
        defaults=_parse_defaults(block.get("defaults") or {}, f"{_BLOCK_KEY}.defaults"),
        sizing_multipliers=block.get("sizing_multipliers") or {},
        hybrid_weight_modifiers=block.get("hybrid_weight_modifiers") or {},
    )


# --------------------------------------------------------------------------------------------
# sizing and hybrid weights
# --------------------------------------------------------------------------------------------


def sizing_multiplier(config: VolRegimesConfig | None, tier: str | None, regime: str) -> float:
    """The ``per_trade_nav_pct`` multiplier for ``tier`` in ``regime``.

    Parameters
    ----------
    config
        The ``vol_regimes`` block; ``None`` gives 1.0.
    tier
        CORE, SATELLITE (or SAT), TACTICAL or ALT-EXT, case-insensitive, ``_`` read as ``-``.
        A tier that is missing (``None``/NaN) or not among these, or one the config has no row
        for, is sized with the CORE row (the EWMA volatility-regime plan's "CORE-like default").
    regime
        ``low``, ``normal``, ``high`` or ``crisis``.

    Returns
    -------
    float
        ``config.sizing_multipliers[tier][regime]``; 1.0 when the config has no such entry.

    Raises
    ------
    ValueError
        If ``regime`` is not one of :data:`REGIMES` (also when ``config`` is None).
    """
    regime = _check_regime(regime)
    if config is None:
        return 1.0
    key = _canonical_tier(tier)
    table = config.sizing_multipliers
    row = table.get(key) if key is not None else None
    if row is None:
        row = table.get(FALLBACK_TIER, {})
    return float(row.get(regime, 1.0))


def effective_nav_pct(
    base_per_trade_nav_pct: float,
    config: VolRegimesConfig | None,
    tier: str | None,
    regime: str,
) -> float:
    """``base_per_trade_nav_pct * sizing_multiplier(config, tier, regime)``.

    Risk limits and caps are applied afterwards, unchanged.
    """
    return float(base_per_trade_nav_pct) * sizing_multiplier(config, tier, regime)


def _modifiers(config: VolRegimesConfig | None, regime: str, modifiers_key: str) -> HybridModifiers:
    if config is None:
        return HybridModifiers()
    table = config.hybrid_weight_modifiers
    sets = table.get(modifiers_key)
    if sets is None:
        sets = table.get(DEFAULT_MODIFIERS_KEY, {})
    return sets.get(regime, HybridModifiers())


def hybrid_weights(
    regime: str,
    config: VolRegimesConfig | None,
    base: HybridBaseWeights = HybridBaseWeights(),  # noqa: B008 (frozen, immutable)
    modifiers_key: str = DEFAULT_MODIFIERS_KEY,
) -> HybridWeights:
    """Regime-modulated hybrid weights, renormalised to sum to 1.

    ``trend`` keeps its base weight; carry, expectancy and router are multiplied by the regime's
    modifiers; then all four are divided by their total.

    Parameters
    ----------
    regime
        ``low``, ``normal``, ``high`` or ``crisis``.
    config
        The ``vol_regimes`` block; ``None`` gives the (renormalised) base weights.
    base
        Base weights (default B1's 0.40 / 0.25 / 0.20 / 0.15).
    modifiers_key
        Modifier set to use (e.g. a tier); a set the config lacks falls back to ``"default"``,
        and a missing ``"default"`` (or regime entry) leaves the weights unmodified.

    Returns
    -------
    HybridWeights

    Raises
    ------
    ValueError
        Unknown regime, negative base weights, or weights summing to zero.

    Examples
    --------
    Crisis with the default modifiers: carry 0.25*0.4 = 0.10, expectancy 0.20*0.8 = 0.16,
    router 0.15*1.1 = 0.165, trend 0.40; total 0.825, so carry = 0.10 / 0.825:

    >>> round(hybrid_weights("crisis", DEFAULT_VOL_REGIMES).carry, 6)
    0.121212
    """
    regime = _check_regime(regime)
    for c in HYBRID_COMPONENTS:
        _number(getattr(base, c), f"base weight {c}")
    mods = _modifiers(config, regime, modifiers_key)
    raw = {
        "trend": base.trend,
        "carry": base.carry * mods.carry,
        "expectancy": base.expectancy * mods.expectancy,
        "router": base.router * mods.router,
    }
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(f"hybrid weights sum to {total} in regime {regime!r}; cannot normalise")
    return HybridWeights(**{c: float(w / total) for c, w in raw.items()})


def hybrid_score(
    scores: HybridScores,
    regime: str,
    config: VolRegimesConfig | None,
    base: HybridBaseWeights = HybridBaseWeights(),  # noqa: B008 (frozen, immutable)
    modifiers_key: str = DEFAULT_MODIFIERS_KEY,
) -> float:
    """``sum(w_c * score_c)`` with the weights of :func:`hybrid_weights`.

    Examples
    --------
    >>> s = HybridScores(trend=0.5, carry=1.0, expectancy=0.2, router=0.8)
    >>> round(hybrid_score(s, "normal", DEFAULT_VOL_REGIMES), 6)
    0.61
    """
    w = hybrid_weights(regime, config, base, modifiers_key)
    return float(sum(getattr(w, c) * float(getattr(scores, c)) for c in HYBRID_COMPONENTS))


CANDIDATE_COLUMNS: Final[tuple[str, ...]] = (
    "symbol",
    "tier",
    "regime",
    "trend",
    "carry",
    "expectancy",
    "router",
    "base_nav_pct",
)
"""Columns :func:`apply_sizing` needs."""


def apply_sizing(
    candidates: pd.DataFrame,
    config: VolRegimesConfig | None,
    base: HybridBaseWeights = HybridBaseWeights(),  # noqa: B008 (frozen, immutable)
    modifiers_key: str = DEFAULT_MODIFIERS_KEY,
) -> pd.DataFrame:
    """Regime sizing and hybrid scores for a frame of candidates.

    Parameters
    ----------
    candidates
        One row per candidate with :data:`CANDIDATE_COLUMNS`: ``symbol``, ``tier`` (may be
        missing per row: CORE row), ``regime`` (one of :data:`REGIMES`), the component scores
        ``trend``, ``carry``, ``expectancy``, ``router`` and ``base_nav_pct``.
    config, base, modifiers_key
        As in :func:`sizing_multiplier` and :func:`hybrid_weights`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``candidates`` (same index) with ``sizing_multiplier``, ``effective_nav_pct``,
        ``w_trend``, ``w_carry``, ``w_expectancy``, ``w_router`` and ``hybrid_score`` added.
        NaN scores or base sizes propagate as NaN.

    Raises
    ------
    ValueError
        Missing columns, or regimes not in :data:`REGIMES` (including NaN; fill them first,
        e.g. with ``"normal"`` as the regime model does when history is missing).
    """
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise ValueError(f"apply_sizing: candidates lack column(s) {missing}")
    out = candidates.copy()
    regimes = out["regime"]
    bad = ~regimes.isin(REGIMES)
    if bad.any():
        shown = sorted({repr(v) for v in regimes[bad]})
        symbols = sorted({str(s) for s in out.loc[bad, "symbol"]})
        raise ValueError(
            f"apply_sizing: unknown vol regime(s) {', '.join(shown)} for symbol(s) {symbols}; "
            f"known: {list(REGIMES)}"
        )
    rows = out["tier"].map(_row_tier, na_action=None).astype(str)
    pairs = rows + "|" + regimes.astype(str)
    lookup = {
        f"{t}|{r}": sizing_multiplier(config, t, r)
        for t, r in set(zip(rows, regimes.astype(str), strict=True))
    }
    mult = pairs.map(lookup).to_numpy(dtype=float)
    out["sizing_multiplier"] = mult
    out["effective_nav_pct"] = out["base_nav_pct"].astype(float).to_numpy() * mult
    by_regime = {r: hybrid_weights(r, config, base, modifiers_key) for r in REGIMES}
    score = pd.Series(0.0, index=out.index)
    for c in HYBRID_COMPONENTS:
        weight = regimes.map({r: getattr(w, c) for r, w in by_regime.items()}).astype(float)
        out[f"w_{c}"] = weight
        score = score + weight * out[c].astype(float)
    out["hybrid_score"] = score
    return out


# --------------------------------------------------------------------------------------------
# snapshot
# --------------------------------------------------------------------------------------------

_SNAPSHOT_COLUMNS: Final[tuple[str, ...]] = (
    "date",
    "symbol",
    "regime",
    "vol_short",
    "vol_long",
    "vol_ratio",
)


def _plain_float(value: Any) -> float | None:
    """A Python float, or None for NaN/missing (strict JSON has no NaN)."""
    if _is_missing(value):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


ASOF_SLACK_DAYS = 5
"""An ``asof`` up to this many calendar days after the last bar (a weekend or holiday) uses the
last bar; later, or before the first bar, is an error."""


def regime_snapshot(labels: pd.DataFrame, asof: date | str | None = None) -> dict[str, Any]:
    """The latest volatility regime per symbol, as published to state.

    Parameters
    ----------
    labels
        ``vol_ratio`` labels: ``date, symbol, regime, vol_short, vol_long, vol_ratio`` and
        optionally ``flag`` and ``model`` (which must then be ``vol_ratio`` throughout). One row
        per (date, symbol). Values are reused as they are; no vol is recomputed.
    asof
        Use, per symbol, the latest row dated at or before this day (default: the last date in
        ``labels``). Symbols with no such row are left out.

    Returns
    -------
    dict
        JSON-serialisable (plain floats, NaN as ``None``)::

            {"asof": "2024-03-28",
             "symbols": {"SPY": {"date": "2024-03-28", "vol_regime": "high",
                                 "vol": {"short": 0.0123, "long": 0.0085, "ratio": 1.45},
                                 "flag": ""}},
             "vol_regime_summary": {"low": 0, "normal": 1, "high": 1, "crisis": 0}}

        ``date`` is the day of the row used (older than ``asof`` when the symbol has no row that
        day). ``vol_regime_summary`` always has the four regimes; a symbol whose regime is
        missing (``vol_regime: None``) is not counted. ``asof`` is ``None`` only for an empty
        frame without ``asof``.

    Raises
    ------
    ValueError
        Missing columns, another model's labels, duplicate (date, symbol) rows, a regime that
        is not one of :data:`REGIMES`, or an ``asof`` outside the data (``ASOF_SLACK_DAYS``).
    """
    missing = [c for c in _SNAPSHOT_COLUMNS if c not in labels.columns]
    if missing:
        raise ValueError(f"regime_snapshot: labels lack column(s) {missing}")
    if "model" in labels.columns:
        others = sorted({str(m) for m in labels["model"].dropna().unique()} - {"vol_ratio"})
        if others:
            raise ValueError(f"regime_snapshot: expected vol_ratio labels, got model(s) {others}")
    frame = labels.assign(date=pd.to_datetime(labels["date"]))
    dupes = frame.duplicated(["date", "symbol"])
    if dupes.any():
        first = frame.loc[dupes, ["date", "symbol"]].iloc[0]
        raise ValueError(
            f"regime_snapshot: duplicate rows for (date, symbol), e.g. "
            f"({first['date'].date().isoformat()}, {first['symbol']})"
        )
    bad = frame["regime"].notna() & ~frame["regime"].isin(REGIMES)
    if bad.any():
        shown = sorted({repr(v) for v in frame.loc[bad, "regime"]})
        raise ValueError(f"regime_snapshot: unknown vol regime(s) {', '.join(shown)}")

    if asof is None:
        cutoff = frame["date"].max() if len(frame) else None
    else:
        cutoff = pd.Timestamp(asof)
        if len(frame):
            first, last = frame["date"].min(), frame["date"].max()
            if cutoff < first or cutoff > last + pd.Timedelta(days=ASOF_SLACK_DAYS):
                raise ValueError(
                    f"regime_snapshot: asof {cutoff.date()} is outside the data "
                    f"({first.date()}..{last.date()}; at most {ASOF_SLACK_DAYS} days after the "
                    "last bar)"
                )
    summary = dict.fromkeys(REGIMES, 0)
    symbols: dict[str, Any] = {}
    if cutoff is not None and not pd.isna(cutoff):
        eligible = frame[frame["date"] <= cutoff].sort_values(["symbol", "date"], kind="stable")
        latest = eligible.groupby("symbol", sort=True).tail(1)
        for row in latest.to_dict("records"):
            regime = None if _is_missing(row["regime"]) else str(row["regime"])
            flag = row.get("flag", "")
            symbols[str(row["symbol"])] = {
                "date": pd.Timestamp(row["date"]).date().isoformat(),
                "vol_regime": regime,
                "vol": {
                    "short": _plain_float(row["vol_short"]),
                    "long": _plain_float(row["vol_long"]),
                    "ratio": _plain_float(row["vol_ratio"]),
                },
                "flag": "" if _is_missing(flag) else str(flag),
            }
            if regime is not None:
                summary[regime] += 1
    return {
        "asof": None if cutoff is None or pd.isna(cutoff) else cutoff.date().isoformat(),
        "symbols": symbols,
        "vol_regime_summary": summary,
    }


def write_snapshot(snapshot: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``snapshot`` as JSON atomically (temp file in the same folder, then ``os.replace``).

    Parameters
    ----------
    snapshot
        E.g. the result of :func:`regime_snapshot`; must be strict JSON (no NaN).
    path
        Target file; missing parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``. Readers never see a partly written file; on error the old file is kept.
    """
    text = json.dumps(snapshot, indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def read_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a snapshot written by :func:`write_snapshot`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a vol regime snapshot (expected a JSON object)")
    return data


# --------------------------------------------------------------------------------------------
# badges
# --------------------------------------------------------------------------------------------

MISSING_BADGE: Final[str] = "—"
"""Rendered where a symbol has no regime (the dashboard's rule: "render — when absent")."""

_BADGES: Final[Mapping[str, str]] = MappingProxyType(
    {"low": "L", "normal": "N", "high": "H", "crisis": "C"}
)

BADGE_COLORS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "L": "#1f77b4",  # blue
        "N": "#7f8c7f",  # grey/green
        "H": "#ff7f0e",  # orange
        "C": "#d62728",  # red
        MISSING_BADGE: "#c7c7c7",  # light grey
    }
)
"""Badge letter → colour (the dashboard's colours: L blue, N grey/green, H orange, C red)."""


def badge(regime: str | float | None) -> str:
    """``"L"``, ``"N"``, ``"H"`` or ``"C"`` for a regime; :data:`MISSING_BADGE` when missing.

    Raises
    ------
    ValueError
        For a regime that is neither missing nor one of :data:`REGIMES`.
    """
    if _is_missing(regime):
        return MISSING_BADGE
    return _BADGES[_check_regime(regime)]
