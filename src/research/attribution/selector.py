"""``RegimeConfigSelector`` (seed 001, phase 4): current market data -> regime -> the learned
configuration, for a trading bot.

Standard library only — no pandas, numpy, notebooks or plotting — so a bot can import it
alone. It reads the JSON written by ``research.attribution.experiments.learned_configs``
(``regimes`` -> config, ``default``), classifies the current market the way the seed's
``vix_trend`` model does (6 VIX buckets x 3 trends from the close against its 50-day average,
±2 %), returns the regime's config or the default, and logs a switch when the regime changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUCKETS", "RegimeConfigSelector", "vix_trend_regime"]

log = logging.getLogger("research.regime_selector")

BUCKETS: tuple[tuple[float, str], ...] = (
    (12.0, "ULTRA_LOW"),
    (15.0, "LOW"),
    (20.0, "NORMAL"),
    (25.0, "ELEVATED"),
    (35.0, "HIGH"),
)
"""Upper edges in VIX points (a value on an edge belongs to the bucket above); EXTREME above."""


def vix_trend_regime(
    vix: float, closes: Sequence[float], *, window: int = 50, band: float = 0.02
) -> str:
    """The seed-001 regime name from the VIX level and recent closes (oldest first; the last
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


class RegimeConfigSelector:
    """The learned config for the current regime, with a default fallback.

    Parameters
    ----------
    configs
        The learned-config mapping, or a path to its JSON file.
    """

    def __init__(self, configs: Mapping[str, Any] | str | Path) -> None:
        data: Mapping[str, Any] = (
            json.loads(Path(configs).read_text(encoding="utf-8"))
            if isinstance(configs, str | Path)
            else configs
        )
        if "default" not in data or "regimes" not in data:
            raise ValueError("a learned-config file needs 'regimes' and 'default'")
        self.regime_configs: dict[str, dict[str, Any]] = {
            k: dict(v["params"]) for k, v in data["regimes"].items()
        }
        self.default_config: dict[str, Any] = dict(data["default"]["params"])
        self.current_regime: str | None = None

    def config_for(self, regime: str) -> dict[str, Any]:
        """The learned parameters of ``regime``, else the default (a copy)."""
        return dict(self.regime_configs.get(regime, self.default_config))

    def get_config(self, vix: float, closes: Sequence[float]) -> dict[str, Any]:
        """Classify the market (``vix_trend_regime``), log a switch if the regime changed, and
        return that regime's config (the default when none was learned for it)."""
        regime = vix_trend_regime(vix, closes)
        if regime != self.current_regime:
            learned = regime in self.regime_configs
            log.info(
                "[REGIME] Changed: %s -> %s (%s config)",
                self.current_regime,
                regime,
                "learned" if learned else "default",
            )
            self.current_regime = regime
        return self.config_for(regime)
