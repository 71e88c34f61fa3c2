"""Per-underlying market conventions: strike step, minimum tick, half-spread, spread width,
contract multiplier, fees and how expirations settle.

An index at 2,500, a $50 stock and a crude-oil future do not trade on the same grid: the
costs that suit SPX (5 % of mid, at least $0.05 a share) swamp the credit of a 1-wide spread
on a $50 stock. Every field of ``MarketConvention`` is optional; a field left out takes, in
order, the config's own value (``SpreadRules.width_pct``, ``FillModel.half_spread_pct``,
``FillModel.min_half_spread``, ``FillModel.fee_per_contract``) and otherwise the default that
scales with the day's price level:

================  ==========================================================================
field             default
================  ==========================================================================
strike_step       ``research.backtest.market_panel.strike_step`` of the day's close: the largest of
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
am_settled        on for SPX, NDX and RUT (``AM_SETTLED_SYMBOLS``), off for every other symbol
                  (the embedded IXIC stands in for QQQ, whose options are PM-settled)
================  ==========================================================================

Settlement: every engine (model, chain, shared paths) settles an open spread on the **last
trading day on or before its expiration date** — the panel's last day ``<=`` the expiration, so a
Saturday-dated expiration (every US monthly before 2015, so every ORATS history) or one dated on
an exchange holiday settles on the trading day before, never the day after. A PM-settled spread
settles at intrinsic value from that day's close. With ``am_settled`` on, a *monthly* expiration
— a third Friday, the Saturday right after a third Friday, or a Thursday whose next day is a third
Friday that is not a trading day (the monthly is then listed on the Thursday: Good Friday, e.g.
SPX 2022-04-14; Juneteenth, e.g. 2027-06-17) — settles at intrinsic value from that day's
**open** (the Special Opening Quotation of SPX, NDX and RUT monthlies): it is settled before
anything else that day (no profit-target or stop check, no mark at that close; an exit ordered
for that open is superseded by the settlement). The trading days the engines know are the
panel's days: a Friday inside the panel's range but not one of its days is a holiday; past the
panel's last day it is unknown, and the Thursday stays PM. Weekly and daily expirations of the
same symbols (SPXW) stay PM-settled, a Thursday before a third Friday that trades included —
but a third-Friday weekly cannot be told from the monthly by its date alone, so it is taken for
the monthly and AM-settled (telling them apart needs the option root, SPX vs SPXW, which the
chain files do not carry). A bars file without opens settles AM expirations at the previous
close (``MarketPanel.opens``).

A trade whose credit does not clear its costs is not taken (counted as
``credit_below_costs``): the credit after the entry half-spread, less the entry fees per
share, must be at least one tick, and buying the spread back at once (its mid plus the
half-spread) must not already reach the stop loss.

A YAML file maps symbols to their conventions::

    MSFT: {width_pct: 3.0, tick: 0.01}
    CL: {multiplier: 1000, strike_step: 0.5}
    XSP: {am_settled: true}
    SPX: {am_settled: false}

``am_settled`` takes true/false (also yes/no, on/off, 1/0); every other field a number.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AM_SETTLED_SYMBOLS",
    "CONVENTION_FIELDS",
    "INDEX_LEVEL",
    "MarketConvention",
    "am_settled",
    "conventions_from_mapping",
    "load_conventions",
    "merge",
    "parse_convention_options",
]

INDEX_LEVEL = 500.0
"""Underlying price at and above which the default tick (and minimum half-spread) is $0.05."""
AM_SETTLED_SYMBOLS: frozenset[str] = frozenset({"SPX", "NDX", "RUT"})
"""Symbols whose monthly expirations settle at the open by default (``am_settled``)."""
_FLAGS = ("am_settled",)
"""The true/false fields (the others are numbers)."""
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


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
    am_settled: bool | None = None
    """Monthly expirations (a third Friday, the Saturday right after one, or the Thursday
    before a third-Friday holiday) settle at the open of their last trading day (module
    docstring); None: ``AM_SETTLED_SYMBOLS`` decide."""

    def check(self, symbol: str, source: str = "") -> MarketConvention:
        """Raise ValueError naming the symbol (and file) on a non-positive value or a flag that
        is not a bool; return self."""
        where = f"{source}: " if source else ""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in _FLAGS:
                if not isinstance(value, bool):
                    raise ValueError(
                        f"{where}{symbol}: {f.name} must be true or false, got {value!r}"
                    )
                continue
            zero_ok = f.name in ("fee_per_contract", "half_spread_pct", "min_half_spread")
            if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
                raise ValueError(
                    f"{where}{symbol}: {f.name} must be {'>= 0' if zero_ok else '> 0'}, "
                    f"got {value!r}"
                )
        return self


CONVENTION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MarketConvention))


def am_settled(symbol: str, convention: MarketConvention | None = None) -> bool:
    """Whether ``symbol``'s monthly expirations settle at the open (module docstring).

    Parameters
    ----------
    symbol : str
        The underlying, as the bars name it (case-sensitive: ``"SPX"``).
    convention : MarketConvention or None
        The symbol's own conventions, if any.

    Returns
    -------
    bool
        The convention's ``am_settled`` when set, else whether ``symbol`` is one of
        ``AM_SETTLED_SYMBOLS`` (SPX, NDX, RUT).
    """
    if convention is not None and convention.am_settled is not None:
        return convention.am_settled
    return symbol in AM_SETTLED_SYMBOLS


def _flag(value: Any, where: str, symbol: str, key: str) -> bool:
    """A true/false field from YAML or ``--convention`` text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{where}{symbol}: {key} must be true or false, got {value!r}")


def conventions_from_mapping(
    data: Mapping[str, Any], source: str = ""
) -> tuple[tuple[str, MarketConvention], ...]:
    """``{symbol: {field: value}}`` -> ``((symbol, MarketConvention), ...)``, checked.

    Raises
    ------
    ValueError
        On an unknown field, a value that is not a number (``am_settled``: not true or false),
        or a non-positive value; the message names the source, the symbol and the field.
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
        parsed: dict[str, float | bool | None] = {}
        for key, value in values.items():
            if value is None:
                parsed[key] = None
            elif key in _FLAGS:
                parsed[key] = _flag(value, where, str(symbol), key)
            else:
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{where}{symbol}: {key} is not a number: {value!r}") from exc
        conv = MarketConvention(**parsed)  # type: ignore[arg-type]
        out.append((str(symbol), conv.check(str(symbol), source)))
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
    """``["MSFT:width_pct=3,tick=0.01", "SPX:am_settled=false", ...]`` (``--convention``) ->
    conventions."""
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
