"""Sensitivity scenarios: the same study under the modelling assumptions it rests on.

Options here are priced by a model from an implied volatility that, before 2014, is itself a
model (the GARCH proxy). A verdict that flips when those assumptions move within their
uncertainty is fragile. Each scenario changes one assumption:

==================  ==========================================================================
scenario            change
==================  ==========================================================================
baseline            the documented defaults
real_iv_only        only dates with a published IV index (VIX, 2014–2018 here): no proxy;
                    shorter walk-forward windows (``REAL_IV_SPLIT``)
proxy_minus_2       every proxy IV value 2 vol points lower (published values unchanged)
proxy_plus_2        every proxy IV value 2 vol points higher
proxy_map_early     each proxy map fitted on the first 40 % of its IV index's overlap only
                    (built-in VIX: 2014–15)
proxy_map_late      each proxy map fitted on the last 60 % of the overlap (VIX: 2016–18)
skew_x0.5           skew slope × 0.5
skew_x1.5           skew slope × 1.5
no_dividends        dividend yield 0 for every underlying (default: ``DEFAULT_DIVIDEND_YIELDS``)
next_open_fills     entries and early exits fill at the next day's open, not the signal close
intraday_stops      stops rest during the day (``fills.stop_fill = "intraday"``, approximated
                    from the bar's high and low) instead of being checked on the close
==================  ==========================================================================

Regime labels are recomputed from each scenario's IV (an IV-based model such as
``bull_bear_vol`` calls a different share of days high-vol when the proxy moves).

A scenario that changes nothing for the tickers studied is *not applicable*
(``StudyData.applies``) rather than counted as one the verdict survives: the proxy scenarios
when no ticker's IV is a proxy, the map scenarios when no ticker has its own mapped index,
no dividends when every ticker's yield is already 0, real IV only without a published index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from research.backtest.market_panel import MarketPanel
from research.backtest.pricing import DEFAULT_SKEW_SLOPE
from research.backtest.spreads import BacktestConfig

if TYPE_CHECKING:
    from research.data.iv import IvResolution

__all__ = [
    "REAL_IV_SPLIT",
    "SCENARIOS",
    "Scenario",
    "StudyData",
    "scenario_by_name",
]

REAL_IV_SPLIT: tuple[float, float] = (2.0, 1.0)
"""(IS years, OOS years) of the anchored walk-forward inside the real-IV-only period."""


@dataclass(frozen=True)
class Scenario:
    """One modelling assumption changed."""

    name: str
    description: str
    config_changes: Mapping[str, Any] = field(default_factory=dict)
    proxy_shift: float = 0.0
    """Added to proxy IV values (annualised)."""
    proxy_fit_part: tuple[float, float] | None = None
    """Refit each proxy map on this share of its own overlap (``research.data.iv.overlap_part``)."""
    real_iv_only: bool = False
    """Keep only dates with a published IV index."""
    skew_factor: float = 1.0
    """Multiply the configs' skew slope (the default or a calibrated one) by this."""

    @property
    def model_only(self) -> bool:
        """It changes only how the model prices options (skew, dividends, fills at the open,
        intraday stops): it does not apply to spreads priced from option chains."""
        changes_model = bool(self.config_changes) or self.skew_factor != 1.0
        return changes_model and not (self.proxy_shift or self.proxy_fit_part)

    def apply(self, config: BacktestConfig) -> BacktestConfig:
        """``config`` under this scenario's config changes and skew factor."""
        out = config.replace(**self.config_changes) if self.config_changes else config
        if self.skew_factor != 1.0:
            slope = DEFAULT_SKEW_SLOPE if out.skew_slope is None else out.skew_slope
            out = out.replace(skew_slope=slope * self.skew_factor)
        return out

    @property
    def market_key(self) -> tuple[float, tuple[float, float] | None, bool]:
        """What the market inputs (IV, labels) depend on."""
        return (self.proxy_shift, self.proxy_fit_part, self.real_iv_only)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("baseline", "documented defaults"),
    Scenario(
        "real_iv_only",
        "only dates with a published IV index (no proxy); walk-forward "
        f"{REAL_IV_SPLIT[0]:g}y IS / {REAL_IV_SPLIT[1]:g}y OOS",
        real_iv_only=True,
    ),
    Scenario("proxy_minus_2", "IV proxy 2 vol points lower", proxy_shift=-0.02),
    Scenario("proxy_plus_2", "IV proxy 2 vol points higher", proxy_shift=0.02),
    Scenario(
        "proxy_map_early",
        "proxy map fitted on the first 40% of its index overlap (VIX: 2014–15)",
        proxy_fit_part=(0.0, 0.4),
    ),
    Scenario(
        "proxy_map_late",
        "proxy map fitted on the last 60% of its index overlap (VIX: 2016–18)",
        proxy_fit_part=(0.4, 1.0),
    ),
    Scenario("skew_x0.5", "skew slope × 0.5", skew_factor=0.5),
    Scenario("skew_x1.5", "skew slope × 1.5", skew_factor=1.5),
    Scenario(
        "no_dividends",
        "dividend yield 0",
        config_changes={"dividend_yields": {}, "default_dividend_yield": 0.0},
    ),
    Scenario(
        "next_open_fills",
        "fills at the next day's open",
        config_changes={"fills.timing": "next_open"},
    ),
    Scenario(
        "intraday_stops",
        "stops rest during the day (approximated from the bar's high and low)",
        config_changes={"fills.stop_fill": "intraday"},
    ),
)


def scenario_by_name(names: Sequence[str] | None) -> tuple[Scenario, ...]:
    """The named scenarios (all when None), baseline always first; unknown names are errors."""
    known = {s.name: s for s in SCENARIOS}
    if names is None:
        return SCENARIOS
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(known)}")
    return (known["baseline"], *(known[n] for n in names if n != "baseline"))


@dataclass(frozen=True, eq=False)
class StudyData:
    """Bars, published IV and the proxy inputs of a study, with the slow parts (GARCH features)
    computed once and every scenario's IV (``research.data.iv.resolve_iv``) and labels
    cached."""

    bars: pd.DataFrame
    published: pd.DataFrame
    """IV index rows (``date, symbol, iv``), any number of symbols."""
    features: pd.DataFrame
    """``realized_vol_features(bars)``."""
    relations: dict[str, str] = field(default_factory=dict)
    """Symbol -> the symbol its IV is scaled from (``--iv-from``)."""
    chains: pd.DataFrame | None = field(default=None, repr=False)
    """Option quotes (``option_chains``): spreads are then priced from them."""
    chains_source: str = ""
    bars_source: str = "the embedded arch data"
    """Where the bars came from, for the page text."""
    iv_sources: tuple[str, ...] = ()
    """The IV index files (and the embedded VIX when it is SPX's), for the page text."""
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls,
        bars_path: str | Path | None = None,
        iv_path: str | Path | Sequence[str | Path] | None = None,
        *,
        symbols: Sequence[str] | None = None,
        relations: Mapping[str, str] | None = None,
        chains_path: str | Path | None = None,
        chain_layout: str = "auto",
    ) -> StudyData:
        """Bars (embedded or a file), the published IV indexes (embedded VIX, or one or several
        files), the relations between symbols, and optionally option quotes.

        Parameters
        ----------
        symbols
            The symbols studied (default: all of the bars); symbols they are scaled from are
            loaded too.
        relations
            Symbol -> the symbol its IV is scaled from; the built-in IXIC is scaled from SPX
            when the bars are the embedded ones.
        """
        from research.data import market
        from research.data.iv import effective_relations

        if symbols is None:
            wanted = None
            universe = sorted(set(market.load_bars(bars_path)["symbol"]))
            rel = effective_relations(universe, bars_path, relations)
        else:
            rel = effective_relations(symbols, bars_path, relations)
            wanted = list(dict.fromkeys([*symbols, *rel.values()]))
        bars = market.load_bars(bars_path, symbols=wanted)
        published = market.load_iv_indexes(iv_path, symbols=sorted(set(bars["symbol"])))
        own = bars.loc[~bars["symbol"].isin(list(rel))].reset_index(drop=True)
        features = market.realized_vol_features(own)
        chains = None
        if chains_path is not None:
            from research.backtest.service import CHAIN_MONEYNESS
            from research.data.chains import load_chains

            chains = load_chains(
                chains_path,
                layout=chain_layout,
                underlyings=None if symbols is None else list(symbols),
                max_dte=120,
                moneyness=CHAIN_MONEYNESS,
            )
        from research.data.overview import iv_source_names

        return cls(
            bars,
            published,
            features,
            rel,
            chains,
            str(chains_path or ""),
            bars_source="the embedded arch data" if bars_path is None else f"`{bars_path}`",
            iv_sources=iv_source_names(iv_path, published),
        )

    @property
    def symbols(self) -> list[str]:
        """Every symbol loaded (those scaled from included)."""
        return sorted(set(self.bars["symbol"]))

    def about(
        self,
        symbols: Sequence[str] | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> str:
        """A paragraph for the top of a page: the data of ``symbols`` (default all) between
        ``start`` and ``end``, where each one's IV comes from in the baseline, and the
        parameters file."""
        from research.data.overview import describe_data

        keep = list(symbols) if symbols is not None else self.symbols
        bars = self.bars.loc[self.bars["symbol"].isin(keep)]
        if start is not None:
            bars = bars.loc[bars["date"] >= pd.Timestamp(start)]
        if end is not None:
            bars = bars.loc[bars["date"] <= pd.Timestamp(end)]
        iv = self.iv(SCENARIOS[0])
        return describe_data(bars, iv, self.relations, self.bars_source, self.iv_sources)

    def with_chains(self, chains: pd.DataFrame | None, source: str = "") -> StudyData:
        """The same inputs with spreads priced from ``chains`` (or by the model: None)."""
        import dataclasses

        return dataclasses.replace(self, chains=chains, chains_source=source, _cache={})

    def resolution(self, scenario: Scenario) -> IvResolution:
        """Where every symbol's IV comes from under ``scenario`` (real IV only: the published
        rows alone, related symbols still scaled from them)."""
        from research.data.iv import IvResolution, resolve_iv

        key = ("resolution", scenario.market_key)
        if key not in self._cache:
            res = resolve_iv(
                self.bars,
                self.published,
                relations=self.relations,
                features=self.features,
                shift=scenario.proxy_shift,
                map_part=scenario.proxy_fit_part,
            )
            if scenario.real_iv_only:
                frame = res.frame.loc[res.frame["source"] == "index"].reset_index(drop=True)
                res = IvResolution(frame, res.relations, res.maps, res.notes)
            self._cache[key] = res
        out: IvResolution = self._cache[key]
        return out

    def applies(
        self, scenario: Scenario, tickers: Sequence[str], base: BacktestConfig
    ) -> tuple[bool, str]:
        """Whether ``scenario`` changes anything for ``tickers`` (and why not): see the module
        docstring."""
        base_res = self.resolution(SCENARIOS[0])
        own = {base_res.relations.get(t, t) for t in tickers}
        sources = set(base_res.frame.loc[base_res.frame["symbol"].isin(list(own)), "source"])
        if scenario.proxy_fit_part is not None and not own & set(base_res.maps):
            return False, "no ticker has its own IV index to map a proxy on"
        if scenario.proxy_shift and not sources - {"index"}:
            return False, "no ticker's IV is a proxy"
        if scenario.real_iv_only and "index" not in sources:
            return False, "no published IV index for these tickers"
        if "default_dividend_yield" in scenario.config_changes and not any(
            base.dividend_yield(t) for t in tickers
        ):
            return False, "every ticker's dividend yield is already 0"
        return True, ""

    @property
    def notes(self) -> tuple[str, ...]:
        """What the user should know about the baseline IV (uncalibrated proxies)."""
        return self.resolution(SCENARIOS[0]).notes

    def iv(self, scenario: Scenario) -> pd.DataFrame:
        """Every symbol's IV (``date, symbol, iv, source``; scaled symbols included) under
        ``scenario`` — what the regime models read."""
        key = ("iv", scenario.market_key)
        if key not in self._cache:
            self._cache[key] = self.resolution(scenario).per_symbol(self.bars)
        out: pd.DataFrame = self._cache[key]
        return out

    def labels(self, scenario: Scenario, model: str | None) -> pd.DataFrame | None:
        """Regime labels of ``model`` on the bars with the scenario's IV (None without a
        model)."""
        if model is None:
            return None
        from research.regimes import classify

        key = ("labels", model, scenario.market_key)
        if key not in self._cache:
            self._cache[key] = classify(model, self.bars, self.iv(scenario))
        out: pd.DataFrame = self._cache[key]
        return out

    def panel(
        self,
        scenario: Scenario,
        tickers: Sequence[str],
        start: str | None = None,
        end: str | None = None,
    ) -> MarketPanel | None:
        """The backtest panel of ``tickers`` under ``scenario`` (None when the scenario leaves
        no date, e.g. real IV only on a period before any published index)."""
        from research.backtest.market_panel import market_panel

        key = ("panel", tuple(tickers), start, end, scenario.market_key)
        if key not in self._cache:
            table = self.resolution(scenario).table(self.bars)
            lo, hi = start, end
            if scenario.real_iv_only:
                mine = table.loc[table["symbol"].isin(list(tickers)) & table["atm_iv"].notna()]
                if mine.empty:
                    self._cache[key] = None
                    return None
                first = mine.groupby("symbol")["date"].min().max()
                lo = str(max(pd.Timestamp(first), pd.Timestamp(start or first)).date())
            try:
                panel = market_panel(self.bars, table, tickers=list(tickers), start=lo, end=hi)
                if self.chains is not None:
                    import dataclasses

                    from research.backtest.chains import chain_book

                    book = chain_book(panel.dates, panel.tickers, self.chains, self.chains_source)
                    panel = dataclasses.replace(panel, chains=book)
                self._cache[key] = panel
            except ValueError:
                if not scenario.real_iv_only:
                    raise
                self._cache[key] = None
        out: MarketPanel | None = self._cache[key]
        return out
