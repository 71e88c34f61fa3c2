"""Per-underlying market conventions: strike step, minimum tick, half-spread, spread width,
contract multiplier and fees.

An index at 2,500, a $50 stock and a crude-oil future do not trade on the same grid: the
costs that suit SPX (5 % of mid, at least $0.05 a share) swamp the credit of a 1-wide spread
on a $50 stock. Every field of ``MarketConvention`` is optional; a field left out takes, in
order, the config's own value (``SpreadRules.width_pct``, ``FillModel.half_spread_pct``,
``FillModel.min_half_spread``, ``FillModel.fee_per_contract``) and otherwise the default that
scales with the day's price level:

================  ==========================================================================
field             default
================  ==========================================================================
strike_step       ``research.backtest.run.strike_step`` of the day's close: the largest of
                  0.5, 1, 2.5, 5, 10, 25, 50, 100 not above 0.25 % of the price
tick              0.05 when the underlying closes at or above ``INDEX_LEVEL`` (500), else
                  0.01 (index options and high-priced names quote in nickels; the rest in
                  pennies)
min_half_spread   one tick (``FillModel.min_half_spread`` when set)
half_spread_pct   ``FillModel.half_spread_pct`` (5 % of the spread's mid)
width_pct         ``SpreadRules.width_pct`` (1.5 % of spot, at least one strike step)
multiplier        100 shares per contract (equity and index options; e.g. 1,000 for crude
                  oil futures options)
fee_per_contract  ``FillModel.fee_per_contract`` ($0.65 per contract per leg)
================  ==========================================================================

A trade whose credit does not clear its costs is not taken (counted as
``credit_below_costs``): the credit after the entry half-spread, less the entry fees per
share, must be at least one tick, and buying the spread back at once (its mid plus the
half-spread) must not already reach the stop loss.

A YAML file maps symbols to their conventions::

    MSFT: {width_pct: 3.0, tick: 0.01}
    CL: {multiplier: 1000, strike_step: 0.5}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONVENTION_FIELDS",
    "INDEX_LEVEL",
    "MarketConvention",
    "conventions_from_mapping",
    "load_conventions",
    "merge",
    "parse_convention_options",
]

INDEX_LEVEL = 500.0
"""Underlying price at and above which the default tick (and minimum half-spread) is $0.05."""


@dataclass(frozen=True)
class MarketConvention:
    """How one underlying's options trade (module docstring); None = the default."""

    strike_step: float | None = None
    """Strike grid spacing ($)."""
    tick: float | None = None
    """Minimum price increment of the spread ($ per share)."""
    half_spread_pct: float | None = None
    """Half the bid/ask spread as % of the spread's mid."""
    min_half_spread: float | None = None
    """Smallest half-spread ($ per share)."""
    width_pct: float | None = None
    """Spread width as % of spot (rounded to the strike grid, at least one step)."""
    multiplier: float | None = None
    """Units of the underlying per contract."""
    fee_per_contract: float | None = None
    """Fees per contract per leg ($)."""

    def check(self, symbol: str, source: str = "") -> MarketConvention:
        """Raise ValueError naming the symbol (and file) on a non-positive value; return self."""
        where = f"{source}: " if source else ""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            zero_ok = f.name in ("fee_per_contract", "half_spread_pct", "min_half_spread")
            if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
                raise ValueError(
                    f"{where}{symbol}: {f.name} must be {'>= 0' if zero_ok else '> 0'}, "
                    f"got {value!r}"
                )
        return self


CONVENTION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MarketConvention))


def conventions_from_mapping(
    data: Mapping[str, Any], source: str = ""
) -> tuple[tuple[str, MarketConvention], ...]:
    """``{symbol: {field: value}}`` -> ``((symbol, MarketConvention), ...)``, checked.

    Raises
    ------
    ValueError
        On an unknown field, a value that is not a number, or a non-positive value; the
        message names the source, the symbol and the field.
    """
    where = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}expected a mapping of symbols to conventions, got {data!r}")
    out = []
    for symbol, values in data.items():
        if isinstance(values, MarketConvention):
            out.append((str(symbol), values.check(str(symbol), source)))
            continue
        if not isinstance(values, Mapping):
            raise ValueError(f"{where}{symbol}: expected a mapping of fields, got {values!r}")
        unknown = sorted(set(values) - set(CONVENTION_FIELDS))
        if unknown:
            known = ", ".join(CONVENTION_FIELDS)
            raise ValueError(f"{where}{symbol}: unknown field(s) {unknown}; known: {known}")
        parsed: dict[str, float | None] = {}
        for key, value in values.items():
            try:
                parsed[key] = None if value is None else float(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}{symbol}: {key} is not a number: {value!r}") from exc
        out.append((str(symbol), MarketConvention(**parsed).check(str(symbol), source)))
    return tuple(out)


def load_conventions(path: str | Path) -> tuple[tuple[str, MarketConvention], ...]:
    """Read a conventions YAML file (module docstring)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read conventions file: {exc}") from exc
    return conventions_from_mapping(data, str(path))


def parse_convention_options(
    items: Sequence[str] | None,
) -> tuple[tuple[str, MarketConvention], ...]:
    """``["MSFT:width_pct=3,tick=0.01", ...]`` (``--convention``) -> conventions."""
    data: dict[str, dict[str, str]] = {}
    for item in items or []:
        symbol, sep, rest = item.partition(":")
        pairs = [p for p in rest.split(",") if p.strip()]
        if not sep or not symbol.strip() or not pairs or any("=" not in p for p in pairs):
            raise ValueError(
                f"--convention {item!r}: expected SYMBOL:FIELD=VALUE[,FIELD=VALUE], "
                "e.g. MSFT:width_pct=3,tick=0.01"
            )
        fields = data.setdefault(symbol.strip(), {})
        for p in pairs:
            key, _, value = p.partition("=")
            fields[key.strip()] = value.strip()
    return conventions_from_mapping(data, "--convention")


def merge(
    base: Sequence[tuple[str, MarketConvention]], extra: Sequence[tuple[str, MarketConvention]]
) -> tuple[tuple[str, MarketConvention], ...]:
    """``base`` with ``extra``'s set fields on top, symbol by symbol."""
    out = dict(base)
    for symbol, conv in extra:
        current = out.get(symbol, MarketConvention())
        changes = {
            f.name: getattr(conv, f.name)
            for f in dataclasses.fields(conv)
            if getattr(conv, f.name) is not None
        }
        out[symbol] = dataclasses.replace(current, **changes)
    return tuple(sorted(out.items()))
