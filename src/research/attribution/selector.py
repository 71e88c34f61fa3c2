"""``RegimeConfigSelector``: current market data -> regime -> the learned
configuration, for a trading bot.

Standard library only — no pandas, numpy, notebooks or plotting — so a bot can import it
alone. It reads the JSON written by ``research.attribution.experiments.learned_configs``
(``regimes`` -> config, ``default``), classifies the current market the way the
``vix_trend`` model does (6 VIX buckets x 3 trends from the close against its 50-day average,
±2 %), returns the regime's config or the default, and logs a switch when the regime changes.

**Losing configurations.** The export flags a regime whose best configuration (by the ranking
metric) still lost money on average (``evidence.loses_money``; ``configs_losing`` of ``configs``
say how many of the configurations compared there lost too), so the selector never serves one
silently. ``on_losing`` decides — ``"stand_aside"`` (no configuration; the default policy),
``"default"`` (the default configuration, flagged as losing when it lost money in that regime's
experiments) or ``"learned"`` (the caller opts in to the losing learned one) — and every
``Selection`` says what was served and whether it loses money; such a choice is logged as a
warning at each regime switch.

**Use ``select`` / ``get_selection``.** They return a ``Selection``: the parameters (or None),
where they came from (``"learned"``, ``"default"`` or ``"stand aside"``), the loses-money flags
and the reason in words — the recommended API for a bot.

**Return type of ``config_for`` / ``get_config``: ``dict | None``.** They were written for
callers that always got a parameter dict; they now return **None** for a regime whose learned
configuration loses money under the default policy ``on_losing="stand_aside"`` — meaning: do
not trade in this regime. A bot that calls them must handle None (skip trading), or construct
the selector with ``on_losing="default"`` (or ``"learned"``), under which they always return a
dict, as before. The None is never silent: ``get_config`` logs a warning with the reason when
the regime switches to such a regime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BUCKETS", "ON_LOSING", "RegimeConfigSelector", "Selection", "vix_trend_regime"]

log = logging.getLogger("research.regime_selector")

BUCKETS: tuple[tuple[float, str], ...] = (
    (12.0, "ULTRA_LOW"),
    (15.0, "LOW"),
    (20.0, "NORMAL"),
    (25.0, "ELEVATED"),
    (35.0, "HIGH"),
)
"""Upper edges in VIX points (a value on an edge belongs to the bucket above); EXTREME above."""

ON_LOSING: tuple[str, ...] = ("stand_aside", "default", "learned")
"""What to serve for a regime whose learned configuration loses money: nothing (stand aside;
the default policy), the default configuration, or — opted in — the losing learned one."""


def vix_trend_regime(
    vix: float, closes: Sequence[float], *, window: int = 50, band: float = 0.02
) -> str:
    """The ``vix_trend`` regime name from the VIX level and recent closes (oldest first; the last
    ``window`` are averaged), e.g. ``LOW_VOL_BULLISH``.

    Raises
    ------
    ValueError
        Fewer than ``window`` closes, or a VIX that is not a positive number.
    """
    if not vix > 0:
        raise ValueError(f"vix must be a positive number, got {vix!r}")
    if len(closes) < window:
        raise ValueError(f"need {window} closes for the trend, got {len(closes)}")
    bucket = next((name for edge, name in BUCKETS if vix < edge), "EXTREME")
    last = closes[-window:]
    distance = closes[-1] / (sum(last) / window) - 1
    trend = "BULLISH" if distance > band else "BEARISH" if distance < -band else "NEUTRAL"
    return f"{bucket}_VOL_{trend}"


@dataclass(frozen=True)
class Selection:
    """What the selector serves for a regime, and why."""

    regime: str
    params: dict[str, Any] | None = field(hash=False)
    """The parameters to trade with (a copy); None = stand aside."""
    source: str
    """``"learned"``, ``"default"`` or ``"stand aside"``."""
    learned_loses_money: bool
    """The regime's learned configuration lost money in its experiments (the export's
    ``loses_money``); False when none was learned."""
    loses_money: bool
    """What is served lost money: the losing learned config served on opt-in, or the default
    when it lost money in this regime's experiments (or overall, when it never ran there)."""
    reason: str
    """The choice in words."""


class RegimeConfigSelector:
    """The learned config for the current regime, with a default fallback — or none (stand
    aside) where the learned one loses money, unless ``on_losing`` says otherwise (module
    docstring: ``config_for`` / ``get_config`` return ``dict | None``; ``select`` /
    ``get_selection`` return a ``Selection``).

    Parameters
    ----------
    configs
        The learned-config mapping, or a path to its JSON file.
    on_losing
        For a regime whose learned configuration loses money (``ON_LOSING``):
        ``"stand_aside"`` serve nothing (``None``; the default), ``"default"`` serve the
        default configuration (flagged when it lost money there too), or ``"learned"`` serve
        the losing configuration anyway (an explicit opt-in).

    Raises
    ------
    ValueError
        A file without ``regimes`` and ``default``, or an unknown ``on_losing``.
    """

    def __init__(
        self, configs: Mapping[str, Any] | str | Path, *, on_losing: str = "stand_aside"
    ) -> None:
        if on_losing not in ON_LOSING:
            raise ValueError(f"on_losing must be one of {ON_LOSING}, got {on_losing!r}")
        data: Mapping[str, Any] = (
            json.loads(Path(configs).read_text(encoding="utf-8"))
            if isinstance(configs, str | Path)
            else configs
        )
        if "default" not in data or "regimes" not in data:
            raise ValueError("a learned-config file needs 'regimes' and 'default'")
        self.on_losing = on_losing
        self.regime_configs: dict[str, dict[str, Any]] = {
            k: dict(v["params"]) for k, v in data["regimes"].items()
        }
        self.losing: set[str] = {
            k
            for k, v in data["regimes"].items()
            if bool((v.get("evidence") or {}).get("loses_money", False))
        }
        """Regimes whose learned configuration loses money (the export's ``loses_money``)."""
        self.losing_counts: dict[str, tuple[int, int]] = {
            k: (int(v["evidence"]["configs_losing"]), int(v["evidence"]["configs"]))
            for k, v in data["regimes"].items()
            if (v.get("evidence") or {}).get("configs_losing") is not None
            and (v.get("evidence") or {}).get("configs") is not None
        }
        """Regime -> (configurations that lost money, configurations compared), when the export
        says."""
        self.default_pnl: dict[str, float] = {
            k: float(v["evidence"]["default_pnl_pct"])
            for k, v in data["regimes"].items()
            if (v.get("evidence") or {}).get("default_pnl_pct") is not None
        }
        """Regime -> the default configuration's mean ``pnl_pct`` in its experiments."""
        self.default_config: dict[str, Any] = dict(data["default"]["params"])
        self.default_loses_money = bool(
            (data["default"].get("evidence") or {}).get("loses_money", False)
        )
        self.current_regime: str | None = None

    def select(self, regime: str) -> Selection:
        """What to serve for ``regime`` under ``on_losing`` (class docstring): the recommended
        call (``Selection.params`` is None when standing aside)."""
        default_note = " (the default itself lost money)" if self.default_loses_money else ""
        if regime not in self.regime_configs:
            return Selection(
                regime,
                dict(self.default_config),
                "default",
                False,
                self.default_loses_money,
                f"no configuration learned for {regime}: the default{default_note}",
            )
        if regime not in self.losing:
            return Selection(
                regime, dict(self.regime_configs[regime]), "learned", False, False, "learned"
            )
        if self.on_losing == "learned":
            return Selection(
                regime,
                dict(self.regime_configs[regime]),
                "learned",
                True,
                True,
                f"the learned configuration of {regime} loses money; served because the caller "
                "opted in (on_losing='learned')",
            )
        if self.on_losing == "stand_aside":
            how_many = self.losing_counts.get(regime)
            others = (
                ""
                if how_many is None
                else " (so did every configuration compared there)"
                if how_many[0] == how_many[1]
                else f" ({how_many[0]} of the {how_many[1]} configurations compared there lost "
                "money)"
            )
            return Selection(
                regime,
                None,
                "stand aside",
                True,
                False,
                f"the learned configuration of {regime} loses money{others}: standing aside "
                "(config_for / get_config return None)",
            )
        here = self.default_pnl.get(regime)
        default_loses = self.default_loses_money if here is None else here < 0
        note = (
            f" — it lost money in {regime} too (mean pnl_pct {here:.2f})"
            if here is not None and here < 0
            else default_note
        )
        return Selection(
            regime,
            dict(self.default_config),
            "default",
            True,
            default_loses,
            f"the learned configuration of {regime} loses money: the default instead" + note,
        )

    def config_for(self, regime: str) -> dict[str, Any] | None:
        """The parameters ``select`` serves for ``regime`` (a copy).

        Returns
        -------
        dict or None
            **None means stand aside** (do not trade): the regime's learned configuration loses
            money and ``on_losing`` is ``"stand_aside"`` (the default). With ``on_losing=
            "default"`` or ``"learned"`` always a dict. Prefer ``select``, whose ``Selection``
            says why (module docstring).
        """
        return self.select(regime).params

    def get_config(self, vix: float, closes: Sequence[float]) -> dict[str, Any] | None:
        """Classify the market (``vix_trend_regime``), log a switch if the regime changed (a
        warning when the regime's learned configuration loses money), and return what
        ``select`` serves.

        Returns
        -------
        dict or None
            **None means stand aside** (do not trade), as ``config_for``; prefer
            ``get_selection``, which returns the full ``Selection``.
        """
        return self.get_selection(vix, closes).params

    def get_selection(self, vix: float, closes: Sequence[float]) -> Selection:
        """``get_config`` with the full ``Selection`` (parameters or None, source, loses-money
        flags, reason): the recommended call for a bot."""
        regime = vix_trend_regime(vix, closes)
        chosen = self.select(regime)
        if regime != self.current_regime:
            log.info(
                "[REGIME] Changed: %s -> %s (%s)",
                self.current_regime,
                regime,
                f"{chosen.source} config" if chosen.params is not None else "stand aside",
            )
            if chosen.learned_loses_money or chosen.loses_money:
                log.warning("[REGIME] %s: %s", regime, chosen.reason)
            self.current_regime = regime
        return chosen
