"""Credit-spread backtest configuration: strategy, fills, sizing and portfolio limits.

Every config is a frozen dataclass with the validation plan's defaults; ``check()`` rejects
inconsistent parameters with a message naming the parameter, before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from research.backtest.conventions import MarketConvention, am_settled
from research.backtest.pricing import (
    DEFAULT_ATM_RATIO,
    DEFAULT_SKEW_CAP_RATIO,
    DEFAULT_SKEW_FLOOR_RATIO,
)
from research.exceptions import ResearchError

Strategy = Literal["bear_call", "bull_put"]
SizingMode = Literal["fixed", "scaled"]
FillTiming = Literal["close", "next_open"]
StopFill = Literal["close", "intraday"]
CONTRACT_MULTIPLIER = 100
EXIT_REASONS: tuple[str, ...] = (
    "profit_target",
    "stop_loss",
    "expiration",
    "end_of_data",
    "missing_quote",
)
MissingQuote = Literal["carry", "close"]


DEFAULT_DIVIDEND_YIELDS: tuple[tuple[str, float], ...] = (("SPX", 0.018), ("IXIC", 0.008))
"""Documented defaults (no dividend data is embedded): the S&P 500's trailing dividend yield
averaged about 1.8% over 1999–2018 (1.1–3.2% by year) and the NASDAQ Composite's about 0.8%
(0.2–1.4%); both rounded. Other symbols default to ``default_dividend_yield`` (0)."""


class ConfigError(ResearchError, ValueError):
    """Inconsistent backtest parameters."""


@dataclass(frozen=True)
class SpreadRules:
    """Which spread to sell and when to close it (the validation plan's defaults).

    The short leg is the strike on the grid whose |delta| lies in [min_delta, max_delta] and is
    closest to the middle of that range; the long leg is ``width_pct`` of spot further out
    (rounded to the strike grid, at least ``min_width_steps`` steps). Expiry: the first trading
    day at least ``target_dte`` calendar days after entry. Exits, checked at each close: profit
    target when the cost to close is at most (1 − profit_target_pct/100) × credit, stop loss
    when the loss reaches stop_loss_pct/100 × credit, else held to expiry and settled at
    intrinsic value.
    """

    strategy: Strategy = "bear_call"
    min_delta: float = 0.05
    max_delta: float = 0.15
    target_dte: int = 30
    width_pct: float = 1.5
    min_width_steps: int = 5
    """The width is at least this many strike steps: on a low-priced underlying 1.5 % of spot
    is one strike, and a one-strike spread's few cents of credit do not clear the tick and
    fees (on SPX and IXIC 1.5 % is always wider). Model pricing only; with option chains the
    long leg is the quoted strike nearest ``width_pct``."""
    min_iv_percentile: float = 0.0
    profit_target_pct: float = 65.0
    stop_loss_pct: float = 125.0


@dataclass(frozen=True)
class FillModel:
    """Bid/ask, fees and when orders fill. The spread trades as one combo order
    ``half_spread_pct`` % of its mid (at least ``min_half_spread`` $ per share) worse than mid,
    per underlying unless its ``conventions`` say otherwise;
    on entry and on early exits; a closing debit never exceeds the width; expiry settles at
    intrinsic value at no cost. Fees per contract per leg, on entry and on early exit.

    ``timing``: ``"close"`` fills every order at the close of the day it is decided (the default, as
    in the validation plan); ``"next_open"`` fills entries and early exits decided at a close at the
    next day's open, priced from the open and the last known IV (the decision day's close), a
    sensitivity check on the close-fill assumption."""

    half_spread_pct: float = 5.0
    min_half_spread: float | None = None
    """$ per share; None: one tick of the underlying (``research.backtest.conventions``: $0.05
    at index-like levels, 500 and above, $0.01 below)."""
    fee_per_contract: float = 0.65
    timing: FillTiming = "close"
    chain_fill: float = 0.5
    """Spreads priced from option chains: where between the mid (0) and the natural price (1:
    sell at the short's bid and buy at the long's ask; close at the short's ask and the long's
    bid) each spread trades."""
    stop_fill: StopFill = "close"
    """``close``: stops are checked on the daily close (and fill there, or at the next open with
    next-open fills), so a close past the stop overshoots it. ``intraday``: the stop rests
    during the day, approximated from the bar — a spread held since before today whose value
    at the day's high (call spreads) or low (put spreads), priced with the close's IV, reaches
    the stop is closed at the stop, or at the open when it gapped through (model pricing only:
    quotes carry no intraday prices). An approximation: the bar does not say when in the day
    the extreme came, and IV at that moment is unknown."""
    missing_quote: MissingQuote = "carry"
    """Chains: a day without a quote for an open spread's leg either carries the last mark
    (``carry``; no exit that day) or closes the spread at its last quoted closing price
    (``close``, exit reason ``missing_quote``). Counted either way."""


@dataclass(frozen=True)
class Sizing:
    """Contracts per trade: ``fixed`` = ``contracts``; ``scaled`` = floor(equity × risk_pct/100
    / max loss per contract). Either is multiplied by the regime multiplier of the entry day's
    label (``regime_multipliers``; labels not listed, or no label, use ``unknown_multiplier``)
    and floored; zero contracts means no trade (counted as ``position_size_zero``)."""

    mode: SizingMode = "fixed"
    contracts: int = 1
    risk_pct: float = 2.0
    regime_multipliers: tuple[tuple[str, float], ...] = ()
    unknown_multiplier: float = 1.0


@dataclass(frozen=True)
class PortfolioLimits:
    """Shared-equity limits checked before each entry (a trade is cut down to fit, or skipped):
    open positions, total max loss at risk (heat) and max loss at risk per underlying, both as
    % of current equity."""

    max_positions: int = 5
    max_portfolio_heat_pct: float = 20.0
    max_per_underlying_pct: float = 15.0


@dataclass(frozen=True)
class BacktestConfig:
    """Everything one backtest needs besides the data."""

    spread: SpreadRules = field(default_factory=SpreadRules)
    fills: FillModel = field(default_factory=FillModel)
    sizing: Sizing = field(default_factory=Sizing)
    limits: PortfolioLimits = field(default_factory=PortfolioLimits)
    initial_equity: float = 1_000_000.0
    """Starting account ($). One SPX/IXIC contract controls index x 100 (e.g. $250k of SPX at
    2,500), so the default account is $1M: with $100k, 2% risk cannot buy one 1.5%-wide SPX
    spread after about 2010 and scaled sizing stops trading (``position_size_zero``)."""
    rate: float = 0.02
    """The one risk-free rate (annual): used in option pricing, earned by the account's cash
    (``(1 + rate) ** (1/252)`` per trading day) and subtracted from returns in Sharpe ratios
    (excess returns). No rates data is embedded: 2% flat, documented."""
    skew_slope: float | None = None
    """Skew slope per standard deviation of moneyness (None: the pricing module's default,
    ``DEFAULT_SKEW_SLOPE``)."""
    skew_curvature: float = 0.0
    """Smile term per squared standard deviation (``research.backtest.pricing``)."""
    skew_floor: float = DEFAULT_SKEW_FLOOR_RATIO
    skew_cap: float = DEFAULT_SKEW_CAP_RATIO
    atm_ratio: float = DEFAULT_ATM_RATIO
    """ATM implied volatility = ``atm_intercept + atm_ratio x`` the IV input (VIX, its proxy or
    the VIX-scaled IV): the default makes the model's own VIX equal the index."""
    atm_intercept: float = 0.0
    dividend_yields: tuple[tuple[str, float], ...] = DEFAULT_DIVIDEND_YIELDS
    """Continuous dividend yield per underlying, used in pricing and deltas (symbol, yield)."""
    default_dividend_yield: float = 0.0
    """Dividend yield of an underlying not listed in ``dividend_yields``."""
    conventions: tuple[tuple[str, MarketConvention], ...] = ()
    """Per-underlying market conventions (``research.backtest.conventions``): strike step,
    tick, half-spread, width, contract multiplier and fees; unset fields use this config's."""

    def convention(self, symbol: str) -> MarketConvention:
        """``symbol``'s conventions with this config's values filled in (strike step, tick and
        minimum half-spread may stay None: they then follow the day's price level; ``am_settled``
        is the symbol's own setting or its default, ``conventions.am_settled``). The one place
        a backtest's settlement style is decided: the kernels' arrays (``run._config_arrays``)
        read it from here."""
        own = dict(self.conventions).get(symbol, MarketConvention())
        return MarketConvention(
            strike_step=own.strike_step,
            tick=own.tick,
            half_spread_pct=_first(own.half_spread_pct, self.fills.half_spread_pct),
            min_half_spread=_first(own.min_half_spread, self.fills.min_half_spread),
            width_pct=_first(own.width_pct, self.spread.width_pct),
            multiplier=_first(own.multiplier, float(CONTRACT_MULTIPLIER)),
            fee_per_contract=_first(own.fee_per_contract, self.fills.fee_per_contract),
            am_settled=am_settled(symbol, own),
        )

    def dividend_yield(self, symbol: str) -> float:
        """The dividend yield used for ``symbol``."""
        return dict(self.dividend_yields).get(symbol, self.default_dividend_yield)

    def check(self) -> BacktestConfig:
        """Raise ConfigError on inconsistent parameters; return self.

        Every number must be finite first (a YAML ``.nan`` or ``.inf`` fails here, naming the
        parameter: a comparison with NaN is always false, so a range check alone lets it
        through); then the ranges and the combinations are checked.
        """
        s, f, z, lim = self.spread, self.fills, self.sizing, self.limits
        problems = _number_problems(self)
        if problems:
            raise ConfigError("invalid backtest parameters: " + "; ".join(problems))
        if s.strategy not in ("bear_call", "bull_put"):
            problems.append(f"strategy must be bear_call or bull_put, got {s.strategy!r}")
        if not 0 < s.min_delta <= s.max_delta < 1:
            problems.append(
                f"need 0 < min_delta <= max_delta < 1 (min_delta={s.min_delta}, "
                f"max_delta={s.max_delta})"
            )
        if s.width_pct <= 0:
            problems.append(f"width_pct must be > 0, got {s.width_pct}")
        if s.min_width_steps < 1:
            problems.append(f"min_width_steps must be >= 1, got {s.min_width_steps}")
        if s.target_dte <= 0:
            problems.append(f"target_dte must be > 0 days, got {s.target_dte}")
        if s.profit_target_pct <= 0 or s.profit_target_pct > 100:
            problems.append(f"profit_target_pct must be in (0, 100], got {s.profit_target_pct}")
        if s.stop_loss_pct <= 0:
            problems.append(f"stop_loss_pct must be > 0, got {s.stop_loss_pct}")
        if not 0 <= s.min_iv_percentile <= 100:
            problems.append(f"min_iv_percentile must be in [0, 100], got {s.min_iv_percentile}")
        if not 0 <= f.chain_fill <= 1:
            problems.append(f"chain_fill must be in [0, 1] (0 mid, 1 natural), got {f.chain_fill}")
        if f.missing_quote not in ("carry", "close"):
            problems.append(f"missing_quote must be carry or close, got {f.missing_quote!r}")
        if f.timing not in ("close", "next_open"):
            problems.append(f"fill timing must be close or next_open, got {f.timing!r}")
        if f.stop_fill not in ("close", "intraday"):
            problems.append(f"stop fill must be close or intraday, got {f.stop_fill!r}")
        if not all(0 <= q < 1 for _, q in self.dividend_yields) or not (
            0 <= self.default_dividend_yield < 1
        ):
            problems.append("dividend yields must be in [0, 1) (annual, e.g. 0.018)")
        if self.skew_curvature < 0 or (self.skew_slope is not None and self.skew_slope < 0):
            problems.append("skew_slope and skew_curvature must be >= 0")
        if not 0 < self.skew_floor <= 1 <= self.skew_cap:
            problems.append(
                f"need 0 < skew_floor <= 1 <= skew_cap, got {self.skew_floor}, {self.skew_cap}"
            )
        if self.atm_ratio <= 0:
            problems.append(f"atm_ratio must be > 0, got {self.atm_ratio}")
        if not -0.5 < self.rate < 1:
            problems.append(f"rate must be an annual rate in (-0.5, 1), got {self.rate}")
        if f.half_spread_pct < 0 or (f.min_half_spread or 0) < 0 or f.fee_per_contract < 0:
            problems.append(
                "fills: half_spread_pct, min_half_spread and fee_per_contract must be >= 0"
            )
        if z.mode not in ("fixed", "scaled"):
            problems.append(f"sizing mode must be fixed or scaled, got {z.mode!r}")
        if z.mode == "fixed" and z.contracts < 1:
            problems.append(f"fixed sizing needs contracts >= 1, got {z.contracts}")
        if z.mode == "scaled" and not 0 < z.risk_pct <= 100:
            problems.append(f"scaled sizing needs 0 < risk_pct <= 100, got {z.risk_pct}")
        if any(m < 0 for _, m in z.regime_multipliers) or z.unknown_multiplier < 0:
            problems.append("regime multipliers must be >= 0")
        if lim.max_positions < 1:
            problems.append(f"max_positions must be >= 1, got {lim.max_positions}")
        if lim.max_portfolio_heat_pct <= 0 or lim.max_per_underlying_pct <= 0:
            problems.append("max_portfolio_heat_pct and max_per_underlying_pct must be > 0")
        if self.initial_equity <= 0:
            problems.append(f"initial_equity must be > 0, got {self.initial_equity}")
        if problems:
            raise ConfigError("invalid backtest parameters: " + "; ".join(problems))
        return self

    def replace(self, **changes: Any) -> BacktestConfig:
        """A copy with dotted-path changes, e.g. ``replace(**{"spread.min_delta": 0.1})``."""
        return config_from_dict(changes, base=self)


_NUMBER_TYPES = frozenset({"float", "int", "float | None", "int | None"})
_PAIRS = frozenset({"regime_multipliers", "dividend_yields"})


def _number_problems(obj: object, prefix: str = "") -> list[str]:
    """Each numeric parameter of a config (blocks included) that is not a finite number."""
    problems: list[str] = []

    def bad(name: str, value: object) -> None:
        shown = repr(value) if isinstance(value, str) else str(value)
        problems.append(f"{name} must be a finite number, got {shown}")

    def finite(value: object) -> bool:
        return (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        )

    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            problems.extend(_number_problems(value, f"{name}."))
        elif f.name in _PAIRS:
            for key, number in value:
                if not finite(number):
                    bad(f"{name}[{key!r}]", number)
        elif f.type in _NUMBER_TYPES and value is not None and not finite(value):
            bad(name, value)
    return problems


def _first(value: float | None, default: float | None) -> float | None:
    return default if value is None else value


def parse_multipliers(text: str, labels: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """``"1.0,0.75,0.5,0.4"`` → pairs with ``labels`` in order (the validation plan's CLI form)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise ConfigError(f"--regime-multipliers {text!r}: not comma-separated numbers") from exc
    if len(values) != len(labels):
        raise ConfigError(
            f"--regime-multipliers {text!r}: {len(values)} values for {len(labels)} regimes "
            f"({', '.join(labels)})"
        )
    return tuple(zip(labels, values, strict=True))


def config_from_dict(data: Mapping[str, Any], base: BacktestConfig | None = None) -> BacktestConfig:
    """Build a config from nested or dotted keys (``{"spread": {"min_delta": 0.1}}`` or
    ``{"spread.min_delta": 0.1}``), defaults for the rest; unknown keys are errors."""
    cfg = base or BacktestConfig()
    blocks = {
        f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))
    }
    nested: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in data.items():
        if "." in key:
            block, name = key.split(".", 1)
            nested.setdefault(block, {})[name] = value
        elif isinstance(value, Mapping) and key in blocks:
            nested.setdefault(key, {}).update(value)
        else:
            top[key] = value
    scalars = {f.name for f in dataclasses.fields(cfg)} - blocks
    unknown = sorted((set(nested) - blocks) | (set(top) - scalars))
    if unknown:
        raise ConfigError(
            f"unknown backtest parameter(s) {unknown}; blocks {sorted(blocks)}, "
            f"settings {sorted(scalars)}"
        )
    changes: dict[str, Any] = dict(top)
    if "conventions" in changes:
        from research.backtest.conventions import conventions_from_mapping

        given = changes["conventions"]
        try:
            changes["conventions"] = (
                conventions_from_mapping(given, "conventions")
                if isinstance(given, Mapping)
                else conventions_from_mapping(dict(given), "conventions")
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if isinstance(changes.get("dividend_yields"), Mapping):
        changes["dividend_yields"] = tuple(
            (str(k), float(v)) for k, v in changes["dividend_yields"].items()
        )
    for block, values in nested.items():
        current = getattr(cfg, block)
        names = {f.name for f in dataclasses.fields(current)}
        bad = sorted(set(values) - names)
        if bad:
            raise ConfigError(f"unknown {block} parameter(s) {bad}; known {sorted(names)}")
        if "regime_multipliers" in values and isinstance(values["regime_multipliers"], Mapping):
            values = {
                **values,
                "regime_multipliers": tuple(
                    (str(k), float(v)) for k, v in values["regime_multipliers"].items()
                ),
            }
        changes[block] = dataclasses.replace(current, **values)
    return dataclasses.replace(cfg, **changes).check()
