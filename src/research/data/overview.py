"""The market data a page reads, said in words: which symbols, from which files, where each
symbol's IV comes from, and which parameters file set it all.

``load_market`` is what the market-data and regime notebooks call: bars (embedded or the user's
file), the published IV indexes (several files add up; the embedded VIX stays SPX's), and every
symbol's IV by ``research.data.iv.resolve_iv``. ``proxy_study`` fits and scores the IV proxy of
every symbol that has its own IV index, and says why the others have none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from research.data.iv import UNCALIBRATED, IvResolution
from research.data.market import IvProxyFit

__all__ = [
    "MarketData",
    "ProxyStudy",
    "describe_data",
    "iv_source_names",
    "iv_text",
    "load_market",
    "params_text",
    "proxy_study",
]

EMBEDDED_NAMES = {"SPX": "S&P 500", "IXIC": "NASDAQ Composite"}


def _as_list(paths: str | Path | Sequence[str | Path] | None) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, str | Path):
        return [str(paths)]
    return [str(p) for p in paths]


def params_text() -> str:
    """Which parameters file the page's values came from (``research run`` says so through
    ``research.config.PARAMS_ENV``), else the notebook's own parameters cell."""
    from research.config import PARAMS_ENV

    used = os.environ.get(PARAMS_ENV, "")
    return f"`{used}`" if used else "the notebook's parameters cell (run by hand)"


@dataclass(frozen=True)
class MarketData:
    """Bars, published IV and every symbol's resolved IV, with where they came from."""

    bars: pd.DataFrame = field(repr=False)
    published: pd.DataFrame = field(repr=False)
    """IV index rows as given (``date, symbol, iv, source``)."""
    resolution: IvResolution = field(repr=False)
    iv: pd.DataFrame = field(repr=False)
    """Every symbol's IV (``date, symbol, iv, source``), what the IV models read."""
    bars_source: str
    iv_sources: tuple[str, ...]

    @property
    def symbols(self) -> list[str]:
        return sorted(set(self.bars["symbol"]))

    @property
    def notes(self) -> tuple[str, ...]:
        return self.resolution.notes

    def about(self) -> str:
        """A paragraph for the top of a page (``describe_data``)."""
        return describe_data(
            self.bars, self.iv, self.resolution.relations, self.bars_source, self.iv_sources
        )


def iv_text(symbol: str, iv: pd.DataFrame, relations: Mapping[str, str]) -> str:
    """Where ``symbol``'s IV comes from, in words (``iv``: ``date, symbol, iv, source``)."""
    if symbol in relations:
        return f"{relations[symbol]}'s IV scaled by the realized-vol ratio"
    counts = iv.loc[iv["symbol"] == symbol, "source"].value_counts()
    parts = []
    if counts.get("index", 0):
        parts.append(f"its IV index ({int(counts['index']):,} days)")
    if counts.get("proxy", 0):
        parts.append(f"the proxy mapped on that index ({int(counts['proxy']):,} days)")
    if counts.get(UNCALIBRATED, 0):
        parts.append(
            f"its own GARCH forecast, **uncalibrated** ({int(counts[UNCALIBRATED]):,} days: "
            "no IV index to map it to, so no variance premium)"
        )
    return ", then ".join(parts) if parts else "none"


def describe_data(
    bars: pd.DataFrame,
    iv: pd.DataFrame,
    relations: Mapping[str, str],
    bars_source: str,
    iv_sources: Sequence[str],
) -> str:
    """A paragraph for the top of a page: symbols and dates, files, IV per symbol, and the
    parameters file."""
    spans = []
    for key, part in bars.groupby("symbol", sort=True):
        sym = str(key)
        name = (
            f" ({EMBEDDED_NAMES[sym]})"
            if sym in EMBEDDED_NAMES and "embedded" in bars_source
            else ""
        )
        spans.append(
            f"**{sym}**{name} {part['date'].min().date()} to {part['date'].max().date()} "
            f"({len(part):,} days)"
        )
    symbols = sorted(set(bars["symbol"]))
    iv = iv.merge(bars[["date", "symbol"]], on=["date", "symbol"])  # the days shown only
    iv_lines = "; ".join(f"{s}: {iv_text(s, iv, relations)}" for s in symbols)
    return (
        f"**Data:** {', '.join(spans)}, from {bars_source}. "
        f"**IV indexes:** {', '.join(iv_sources) or 'none given'}. "
        f"**IV per market:** {iv_lines}. **Parameters:** {params_text()}."
    )


def iv_source_names(
    iv_path: str | Path | Sequence[str | Path] | None, published: pd.DataFrame
) -> tuple[str, ...]:
    """The IV files given, and the embedded VIX when it is SPX's IV."""
    from research.data import market

    files = _as_list(iv_path)
    out = [f"`{f}`" for f in files]
    if "SPX" in set(published["symbol"]) and not any(
        "SPX" in set(market.load_iv_index(f)["symbol"]) for f in files
    ):
        out.append("the embedded VIX (for SPX)")
    return tuple(out)


def load_market(
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    *,
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    iv_from: Mapping[str, str] | None = None,
) -> MarketData:
    """Load bars and IV the way every command does (``research.backtest.service.load_panel``).

    Parameters
    ----------
    bars_path
        A bars file (relative paths from the project root), or None for the embedded SPX and
        IXIC.
    iv_path
        IV index file(s); None: the embedded VIX for SPX only.
    symbols
        Symbols to keep (default: SPX and IXIC when embedded, every symbol of the file).
    iv_from
        Symbol -> the symbol its IV is scaled from (the built-in IXIC from SPX when embedded).

    Returns
    -------
    MarketData
    """
    from research.data import market
    from research.data.iv import effective_relations, resolve_iv

    if symbols is None:
        universe = (
            list(market.DEFAULT_SYMBOLS)
            if bars_path is None
            else sorted(set(market.load_bars(bars_path)["symbol"]))
        )
    else:
        universe = list(symbols)
    rel = effective_relations(universe, bars_path, iv_from)
    wanted = list(dict.fromkeys([*universe, *rel.values()]))
    bars = market.load_bars(bars_path, symbols=wanted, start=start, end=end)
    published = market.load_iv_indexes(iv_path, symbols=wanted)
    published = published.loc[published["date"].isin(set(bars["date"]))].reset_index(drop=True)
    resolution = resolve_iv(bars, published, relations=rel)
    bars = bars.loc[bars["symbol"].isin(universe)].reset_index(drop=True)
    iv = resolution.per_symbol(bars)
    return MarketData(
        bars=bars,
        published=published,
        resolution=resolution,
        iv=iv,
        bars_source="the embedded arch data" if bars_path is None else f"`{bars_path}`",
        iv_sources=iv_source_names(iv_path, published),
    )


@dataclass(frozen=True)
class ProxyStudy:
    """The IV proxy of every symbol with its own IV index: the fit scored on a holdout, the
    sub-period maps and the band they span; and why the other symbols have none."""

    fits: dict[str, IvProxyFit]
    maps: pd.DataFrame
    """``symbol, window, const, const_se, garch22, garch22_se``."""
    band: pd.DataFrame
    """``date, symbol, low, high``."""
    skipped: dict[str, str]
    """Symbol -> why it has no proxy fit."""

    def text(self) -> str:
        """Which symbols have a proxy fit, and why the others have none."""
        done = [s for s in self.fits if s not in self.skipped]
        head = (
            f"Proxy fitted for {', '.join(f'**{s}**' for s in done)}."
            if done
            else "No symbol has an IV index long enough for a proxy fit."
            if any("no IV index given" not in why for why in self.skipped.values())
            else "No symbol has an IV index of its own, so there is no proxy map to fit."
        )
        return " ".join([head, *(f"**{s}**: {why}." for s, why in sorted(self.skipped.items()))])

    def answer(self, coverage: pd.DataFrame) -> str:
        """The page's answer: how many market-days price options from a published IV index
        rather than a proxy, a scaled or an uncalibrated IV, and each proxy's out-of-sample
        error in vol points against the raw realized volatility's.

        Parameters
        ----------
        coverage
            ``research.data.market.coverage`` of the same bars and IV.
        """
        kinds = {
            "iv_index_days": "a published IV index",
            "iv_proxy_days": "a proxy mapped on an index",
            "iv_scaled_days": "another market's IV scaled",
            "iv_uncalibrated_days": "an uncalibrated volatility forecast",
            "iv_missing_days": "no IV at all (no trade can be priced)",
        }
        days = coverage[list(kinds)].sum()
        total = int(days.sum())
        if total == 0:
            return "No market-days are loaded."
        parts = [
            f"{int(n):,} ({n / total:.0%}) from {kinds[str(k)]}" for k, n in days.items() if n > 0
        ]
        share = days["iv_index_days"] / total
        lead = (
            f"**{share:.0%} of the {total:,} market-days price options from a published IV "
            f"index**" + (f"; the rest are modelled: {', '.join(parts[1:])}." if share < 1 else ".")
            if days["iv_index_days"] > 0
            else f"**No market-day prices options from a published IV index**: {', '.join(parts)}."
        )
        errors = []
        for sym, fit in self.fits.items():
            if sym in self.skipped:
                continue
            oos, raw = fit.out_of_sample, fit.naive_out_of_sample
            errors.append(
                f"**{sym}**'s proxy misses its index by **{oos.rmse:.2f} vol points** (RMS, out of "
                f"sample over {oos.n:,} days; bias {oos.bias:+.2f}), against {raw.rmse:.2f} for "
                "the raw 22-day realized volatility."
            )
        return " ".join([lead, *errors])

    def summary_table(self) -> pd.DataFrame:
        """Every fit's errors (vol points), in and out of sample, one block per symbol."""
        return pd.concat(
            [f.summary_frame().assign(symbol=s) for s, f in self.fits.items()], ignore_index=True
        )[["symbol", "evaluation", "sample", "n", "rmse", "mae", "bias", "r2"]]

    def coefficient_table(self) -> pd.DataFrame:
        """Every symbol's map in use (whole overlap; HAC standard errors)."""
        return pd.concat(
            [f.coefficient_frame().assign(symbol=s) for s, f in self.fits.items()],
            ignore_index=True,
        )[["symbol", "term", "coefficient", "std_error"]]


def proxy_study(market_data: MarketData, *, holdout_share: float = 0.4) -> ProxyStudy:
    """Fit the proxy map of each symbol that has its own IV index, holding out the last
    ``holdout_share`` of its overlap of index and volatility forecast (out-of-sample), and
    the band of sub-period maps.

    Returns
    -------
    ProxyStudy
    """
    from research.data import market

    if not 0.05 <= holdout_share <= 0.8:
        raise ValueError(f"holdout_share must be between 0.05 and 0.8, got {holdout_share}")
    bars, published = market_data.bars, market_data.published
    fits: dict[str, IvProxyFit] = {}
    maps, bands = [], []
    skipped: dict[str, str] = {}
    for sym in market_data.symbols:
        if sym in market_data.resolution.relations:
            anchor = market_data.resolution.relations[sym]
            skipped[sym] = f"its IV is {anchor}'s scaled by the realized-volatility ratio"
            continue
        index = published.loc[published["symbol"] == sym]
        if index.empty:
            skipped[sym] = (
                "no IV index given, so no proxy map to fit; its IV is its own GARCH forecast, "
                "labelled uncalibrated"
            )
            continue
        mine = bars.loc[bars["symbol"] == sym].reset_index(drop=True)
        feats = market.realized_vol_features(mine)
        overlap = (
            feats.merge(index[["date", "iv"]], on="date")
            .dropna(subset=[*market.PROXY_FEATURES, "iv"])["date"]
            .sort_values()
        )
        if len(overlap) < 3 * market.RV_WINDOW:
            skipped[sym] = (
                f"its IV index overlaps its volatility forecast on {len(overlap)} days; a fit "
                f"scored on a holdout needs at least {3 * market.RV_WINDOW}"
            )
            continue
        cut = overlap.iloc[int(round(len(overlap) * (1 - holdout_share)))]
        try:
            fits[sym] = market.fit_iv_proxy(
                mine, index, symbol=sym, holdout_start=cut, features=feats
            )
        except ValueError as exc:
            skipped[sym] = str(exc)
            continue
        try:
            m, b = market.proxy_band(mine, index, symbol=sym, features=feats)
        except ValueError as exc:
            skipped[sym] = f"fitted, but {exc}"
            continue
        maps.append(m.assign(symbol=sym))
        bands.append(b)
    cols = ["symbol", "window", "const", "const_se", "garch22", "garch22_se"]
    return ProxyStudy(
        fits=fits,
        maps=pd.concat(maps, ignore_index=True)[cols] if maps else pd.DataFrame(columns=cols),
        band=(
            pd.concat(bands, ignore_index=True)
            if bands
            else pd.DataFrame(columns=["date", "symbol", "low", "high"])
        ),
        skipped=skipped,
    )
