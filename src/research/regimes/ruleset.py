"""Versioned rulesets: every threshold and window of every regime model, with the built-in defaults.

A ruleset file (YAML or JSON) names its ``schema_version`` and ``ruleset_id`` (both enter the regime
key of the tune-attribution plan) and may override any block; blocks it leaves out keep their
defaults. Unknown blocks or keys are errors naming the file and the key::

    schema_version: regime_v1_1
    ruleset_id: my_rules_v2
    vix_trend:
      trend_band: 0.03
    vol_ratio:
      ratio_low_high: {low: 0.5, normal: 1.2, high: 2.0}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from research.exceptions import ResearchError

SCHEMA_VERSION = "regime_v1_1"
DEFAULT_RULESET_ID = "default_v1"


IV_SCALES: tuple[str, ...] = ("auto", "points", "percentile")
"""How ``vix_trend`` buckets IV: ``points`` (VIX points), ``percentile`` (trailing IV
percentile) or ``auto`` (points for ``points_symbols``, percentile for every other symbol)."""

VOL_SCALES: tuple[str, ...] = ("auto", "absolute", "percentile")
"""How ``bull_bear_vol`` judges IV and realized vol levels: ``absolute`` (fixed levels),
``percentile`` (trailing percentile ranks) or ``auto`` (absolute for ``points_symbols``,
percentile for every other symbol)."""


class RulesetError(ResearchError, ValueError):
    """A ruleset file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class VixTrendRules:
    """``vix_trend`` (from the regime-configuration plan): 6 IV buckets x 3 trends.

    ``iv_edges`` are the bucket boundaries in VIX points (iv x 100): below 12 ULTRA_LOW, 12-15 LOW,
    15-20 NORMAL, 20-25 ELEVATED, 25-35 HIGH, 35 and above EXTREME (a value on an edge belongs to
    the bucket above it). Trend: close vs its ``trend_window``-day simple moving average; above
    ``+trend_band`` BULLISH, below ``-trend_band`` BEARISH, else NEUTRAL.

    VIX points only mean something for a VIX-like index: a single stock or a commodity (IV often
    25-40%) would sit in the top buckets most days. ``iv_scale`` chooses the scale: ``points``,
    ``percentile``, or ``auto`` (default): ``points_symbols`` by points, every other symbol by
    percentile. The percentile scale buckets ``iv_rank``, the trailing percentile rank of the
    symbol's IV over its last ``percentile_window`` bars up to and including t (rank method
    "max", x 100, so in (0, 100]; NaN and flagged ``warmup`` while the window holds fewer than
    ``percentile_min_periods`` IV values), at ``percentile_edges`` (a rank on an edge belongs to
    the bucket above it).

    ``percentile_edges`` default: the share of days of the embedded VIX (``arch.data.vix``,
    1,259 closes 2014-01-03..2019-01-03) in each VIX-point bucket was ULTRA_LOW 23.75%, LOW
    40.35%, NORMAL 23.51%, ELEVATED 8.82%, HIGH 3.26%, EXTREME 0.32%; cumulative 23.75, 64.10,
    87.61, 96.43, 99.68, rounded to (24, 64, 88, 96, 100). So a percentile bucket is as rare for
    the symbol as the VIX bucket was for the S&P 500; EXTREME (rank 100) means IV at its highest
    of the window.
    """

    iv_edges: tuple[float, ...] = (12.0, 15.0, 20.0, 25.0, 35.0)
    bucket_names: tuple[str, ...] = ("ULTRA_LOW", "LOW", "NORMAL", "ELEVATED", "HIGH", "EXTREME")
    trend_window: int = 50
    trend_band: float = 0.02
    buckets_only: bool = False
    iv_scale: str = "auto"
    points_symbols: tuple[str, ...] = ("SPX", "SPY", "IXIC", "NDX", "QQQ")
    percentile_edges: tuple[float, ...] = (24.0, 64.0, 88.0, 96.0, 100.0)
    percentile_window: int = 252
    percentile_min_periods: int = 126

    def __post_init__(self) -> None:
        if self.iv_scale not in IV_SCALES:
            raise RulesetError(f"iv_scale must be one of {list(IV_SCALES)}, got {self.iv_scale!r}")

    def scale_for(self, symbol: str) -> str:
        """``points`` or ``percentile``: the scale ``symbol``'s IV is bucketed on."""
        if self.iv_scale != "auto":
            return self.iv_scale
        return "points" if symbol in self.points_symbols else "percentile"


@dataclass(frozen=True)
class VolRatioRules:
    """``vol_ratio`` (from the EWMA volatility-regime plan): EWMA short/long realized volatility
    ratio, per symbol, on daily bars.

    EWMA with decay ``0.5 ** (1 / halflife)`` over the last ``window`` log returns (the plan's
    window = 2 x halflife). ``ratio < low`` low, ``< normal`` normal, ``< high`` high, else
    crisis. Fewer than ``long_window_bars`` returns: ``normal`` with zero vols, ratio 1.0 and the
    flag ``insufficient_data`` (the plan's fallback).
    """

    short_halflife_bars: int = 7
    long_halflife_bars: int = 30
    short_window_bars: int = 14
    long_window_bars: int = 60
    ratio_low: float = 0.6
    ratio_normal: float = 1.2
    ratio_high: float = 1.8


@dataclass(frozen=True)
class BullBearVolRules:
    """``bull_bear_vol`` (from the validation plan): bull/bear x low/high vol from realized_vol_20,
    momentum_20, trend, iv, iv - rv.

    Bear when the close is below its ``trend_window``-day SMA *and* ``momentum_window``-day
    momentum is negative; bull otherwise. High vol when the IV level or the ``rv_window``-day
    realized vol level is high (see below), or realized exceeds implied by ``rv_over_iv`` or more
    (iv - rv <= -rv_over_iv: a difference in vol points, the same on every scale).

    ``vol_scale`` says what "high" means for a level: ``absolute``, iv >= ``iv_high`` or
    realized vol >= ``rv_high`` (levels set for the S&P 500); ``percentile``, the trailing
    percentile rank of the symbol's own IV >= ``iv_high_percentile`` or of its own realized vol
    >= ``rv_high_percentile`` (rank as ``vix_trend.trailing_percentile``: over the last
    ``percentile_window`` bars up to and including t, method "max", x 100, in (0, 100]; NaN and
    flagged ``warmup`` while the window holds fewer than ``percentile_min_periods`` values);
    ``auto`` (default), absolute for ``points_symbols``, percentile for every other symbol. On a
    single stock or a commodity the absolute levels call nearly every day high-vol: with IV from
    their own uncalibrated GARCH forecast, GOOG 2004-2013 100% of labelled days and WTI crude
    1986-2019 98.4%; by percentile 30.2% and 35.1% (SPX 1999-2018: 30.9% absolute, 32.6% by
    percentile).

    ``iv_high_percentile`` and ``rv_high_percentile`` defaults: how often the S&P 500 sat below
    the absolute levels. SPX's IV as every command resolves it (``research.data.iv.resolve_iv`` on
    the embedded SPX bars with ``research.data.market.load_iv_indexes(None)``: the VIX from
    2014-01-03 on, 1,257 days, and before it the GARCH proxy mapped on the VIX, 3,752 days from
    1999-02-04) was below 0.20 on 70.45% of its 5,009 days; SPX's 20-day realized vol
    (1999-2018) was below 0.20 on 75.03% of its 5,011 days. Rounded: 70 and 75. So "high vol"
    on a stock means as rare, for that stock, as a 20+ VIX / 20+ realized vol day was for the
    S&P 500 (a rank on the threshold is high, as a level on ``iv_high`` is).
    """

    rv_window: int = 20
    momentum_window: int = 20
    trend_window: int = 50
    iv_high: float = 0.20
    rv_high: float = 0.20
    rv_over_iv: float = 0.05
    size_multipliers: tuple[tuple[str, float], ...] = (
        ("bull_low_vol", 1.0),
        ("bull_high_vol", 0.75),
        ("bear_low_vol", 0.5),
        ("bear_high_vol", 0.4),
    )
    vol_scale: str = "auto"
    points_symbols: tuple[str, ...] = ("SPX", "SPY", "IXIC", "NDX", "QQQ")
    iv_high_percentile: float = 70.0
    rv_high_percentile: float = 75.0
    percentile_window: int = 252
    percentile_min_periods: int = 126

    def __post_init__(self) -> None:
        if self.vol_scale not in VOL_SCALES:
            raise RulesetError(
                f"vol_scale must be one of {list(VOL_SCALES)}, got {self.vol_scale!r}"
            )

    def scale_for(self, symbol: str) -> str:
        """``absolute`` or ``percentile``: how ``symbol``'s IV and realized vol levels are
        judged."""
        if self.vol_scale != "auto":
            return self.vol_scale
        return "absolute" if symbol in self.points_symbols else "percentile"


@dataclass(frozen=True)
class TagRules:
    """``tags`` (from the tune-attribution plan): trend / vol / efficiency tags and the regime key.

    Trend tag from the ``short_window`` and ``long_window`` returns: both above
    ``+trend_threshold`` uptrend, both below ``-trend_threshold`` downtrend, the long one beyond
    the threshold but the short one not agreeing: trending (a trend in place, pulling back),
    otherwise flat. Vol tag from annualised ``vol_window``-day realized vol: >= ``high_vol``
    high_vol, <= ``low_vol`` low_vol, between: no tag (``_`` in the key). Efficiency tag from the
    Kaufman efficiency ratio over ``efficiency_window`` bars: >= ``efficient_min`` efficient,
    else noisy.
    """

    short_window: int = 20
    long_window: int = 60
    trend_threshold: float = 0.03
    vol_window: int = 20
    high_vol: float = 0.20
    low_vol: float = 0.12
    efficiency_window: int = 20
    efficient_min: float = 0.30


@dataclass(frozen=True)
class MarkovRules:
    """``markov`` (the regime-configuration plan's HMM): statsmodels Markov-switching regression on
    daily log returns.

    Switching mean and variance, ``k_regimes`` states (2 or 3), refit every ``refit_every_bars``
    on an expanding window (first after ``min_train_bars``), labels from *filtered*
    probabilities only, states ordered by variance so labels are stable across refits.
    """

    k_regimes: int = 2
    min_train_bars: int = 500
    refit_every_bars: int = 252
    search_reps: int = 0
    seed: int = 0


@dataclass(frozen=True)
class Ruleset:
    """Every model's rules plus the identifiers that enter the regime key."""

    schema_version: str = SCHEMA_VERSION
    ruleset_id: str = DEFAULT_RULESET_ID
    max_gap_days: int = 5
    """A bar more than this many calendar days after the previous one is flagged ``gap``."""
    vix_trend: VixTrendRules = field(default_factory=VixTrendRules)
    vol_ratio: VolRatioRules = field(default_factory=VolRatioRules)
    bull_bear_vol: BullBearVolRules = field(default_factory=BullBearVolRules)
    tags: TagRules = field(default_factory=TagRules)
    markov: MarkovRules = field(default_factory=MarkovRules)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists, pairs as mappings), as written to YAML/JSON."""
        data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(self)))
        data["bull_bear_vol"]["size_multipliers"] = dict(self.bull_bear_vol.size_multipliers)
        return data


DEFAULT_RULESET = Ruleset()

_BLOCKS = {f.name: f.type for f in dataclasses.fields(Ruleset)}


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RulesetError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RulesetError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RulesetError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise RulesetError(f"{where}: expected a non-empty string, got {value!r}")
        return value
    if isinstance(default, tuple) and default and isinstance(default[0], tuple):
        if not isinstance(value, dict):
            raise RulesetError(f"{where}: expected a mapping, got {value!r}")
        return tuple((str(k), float(v)) for k, v in value.items())
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise RulesetError(f"{where}: expected a list, got {value!r}")
        kind = type(default[0]) if default else str
        return tuple(kind(v) for v in value)
    raise RulesetError(f"{where}: unsupported value {value!r}")


def _block(cls: Any, data: Any, where: str) -> Any:
    default = cls()
    if not isinstance(data, dict):
        raise RulesetError(f"{where}: expected a mapping of settings, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    # vol_ratio also accepts the plan's nested form ratio_low_high: {low, normal, high}
    if "ratio_low_high" in data and cls is VolRatioRules:
        nested = data.pop("ratio_low_high")
        if not isinstance(nested, dict) or set(nested) - {"low", "normal", "high"}:
            raise RulesetError(f"{where}.ratio_low_high: expected keys low, normal, high")
        data = {**data, **{f"ratio_{k}": v for k, v in nested.items()}}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RulesetError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    values = {k: _coerce(v, getattr(default, k), f"{where}.{k}") for k, v in data.items()}
    try:
        return dataclasses.replace(default, **values)
    except RulesetError as exc:  # a value the block rejects itself: "<key> must be …"
        raise RulesetError(f"{where}.{exc}") from exc


def ruleset_from_dict(data: dict[str, Any], source: str = "<ruleset>") -> Ruleset:
    """Build and check a ruleset from a mapping (defaults for everything not given)."""
    if not isinstance(data, dict):
        raise RulesetError(f"{source}: expected a mapping at the top level")
    unknown = sorted(set(data) - set(_BLOCKS))
    if unknown:
        raise RulesetError(f"{source}: unknown key(s) {unknown}; known: {sorted(_BLOCKS)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        default = getattr(DEFAULT_RULESET, key)
        if dataclasses.is_dataclass(default):
            values[key] = _block(type(default), dict(value or {}), f"{source}: {key}")
        else:
            values[key] = _coerce(value, default, f"{source}: {key}")
    ruleset = dataclasses.replace(DEFAULT_RULESET, **values)
    check_ruleset(ruleset, source)
    return ruleset


def load_ruleset(path: str | Path | None) -> Ruleset:
    """Read a ruleset YAML/JSON file; None gives the default ruleset."""
    if path is None:
        return DEFAULT_RULESET
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesetError(f"{path}: cannot read ruleset ({exc.strerror})") from exc
    import yaml

    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise RulesetError(f"{path}: not valid {kind}: {exc}") from exc
    if "ruleset_id" not in (data or {}):
        raise RulesetError(f"{path}: a ruleset file must name its ruleset_id")
    return ruleset_from_dict(data, str(path))


def check_ruleset(r: Ruleset, source: str = "<ruleset>") -> None:
    """Reject inconsistent settings (windows < 1, unordered thresholds)."""
    problems = []
    v = r.vix_trend
    if list(v.iv_edges) != sorted(v.iv_edges) or len(v.bucket_names) != len(v.iv_edges) + 1:
        problems.append(
            "vix_trend: iv_edges must increase and there must be one more "
            "bucket_names than iv_edges"
        )
    edges = list(v.percentile_edges)
    if (
        edges != sorted(edges)
        or not all(0 <= e <= 100 for e in edges)
        or len(v.bucket_names) != len(edges) + 1
    ):
        problems.append(
            "vix_trend: percentile_edges must increase within 0..100 and there must be one more "
            "bucket_names than percentile_edges"
        )
    if not 1 <= v.percentile_min_periods <= v.percentile_window:
        problems.append("vix_trend: need 1 <= percentile_min_periods <= percentile_window")
    b = r.bull_bear_vol
    if not all(0 <= p <= 100 for p in (b.iv_high_percentile, b.rv_high_percentile)):
        problems.append(
            "bull_bear_vol: iv_high_percentile and rv_high_percentile must be in 0..100"
        )
    if not 1 <= b.percentile_min_periods <= b.percentile_window:
        problems.append("bull_bear_vol: need 1 <= percentile_min_periods <= percentile_window")
    q = r.vol_ratio
    if not 0 < q.ratio_low < q.ratio_normal < q.ratio_high:
        problems.append("vol_ratio: need 0 < ratio_low < ratio_normal < ratio_high")
    if q.short_window_bars > q.long_window_bars:
        problems.append("vol_ratio: short_window_bars must not exceed long_window_bars")
    if r.tags.low_vol > r.tags.high_vol:
        problems.append("tags: low_vol must not exceed high_vol")
    if r.tags.short_window > r.tags.long_window:
        problems.append("tags: short_window must not exceed long_window")
    if r.markov.k_regimes not in (2, 3):
        problems.append("markov: k_regimes must be 2 or 3")
    for block in (v, q, b, r.tags, r.markov):
        for f in dataclasses.fields(block):
            val = getattr(block, f.name)
            if (
                f.name.endswith(("window", "_bars", "halflife_bars"))
                and isinstance(val, int)
                and val < 1
            ):
                problems.append(f"{type(block).__name__}.{f.name} must be >= 1")
    if problems:
        raise RulesetError(f"{source}: " + "; ".join(problems))
