"""The same configuration priced from option chains and by the model: what the model gets wrong
on the strategy's own trades, before and after calibrating it to the quotes.

``compare_pricing`` runs one configuration three ways on the chain's dates — from the quotes,
by the model with its defaults, by the model with the smile fitted to the quotes
(``research.backtest.calibrate``) — and returns the calibration, the daily spread-mid ratios and
the three backtests. ``chains_or_synthetic`` reads the user's chain file or, without one, makes a
**synthetic** chain (``research.backtest.synthetic_chains``: quotes from a known smile around the
real closes) so the page still shows what the tools do; everything made from it says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from research.backtest.calibrate import SmileFit, calibrate, spread_ratios
from research.backtest.calibration_oos import OutOfSample, out_of_sample
from research.backtest.market_panel import MarketPanel
from research.backtest.run import BacktestResult, run_backtest
from research.backtest.spreads import BacktestConfig
from research.backtest.synthetic_chains import TrueSmile
from research.backtest.tearsheet import TearSheet, money, tear_sheet
from research.backtest.trade_by_trade import TradeByTrade, trade_by_trade

__all__ = ["ChainInput", "PricingComparison", "chains_or_synthetic", "compare_pricing"]

SYNTHETIC_LABEL = "SYNTHETIC quotes (a known smile around real closes), not market data"
PAGE_SMILE = TrueSmile(call_slope=0.1)
"""The synthetic chain's smile: the default ``TrueSmile`` puts with a flatter call wing (as
index smiles are), outside the model's one-slope family — so a fit to every quote misprices the
strategy's calls and the fit to the strategy's own side does not."""


@dataclass(frozen=True, eq=False)
class ChainInput:
    """Quotes for the page: the user's file, or a labelled synthetic chain."""

    chains: pd.DataFrame = field(repr=False)
    label: str
    synthetic: bool

    @property
    def first_date(self) -> str:
        return str(self.chains["quote_date"].min().date())

    @property
    def last_date(self) -> str:
        return str(self.chains["quote_date"].max().date())

    def coverage(self) -> pd.DataFrame:
        """Per underlying: dates, quote days, expirations and quotes (calls and puts)."""
        g = self.chains.groupby("underlying")
        return pd.DataFrame(
            {
                "first_date": g["quote_date"].min(),
                "last_date": g["quote_date"].max(),
                "quote_days": g["quote_date"].nunique(),
                "expirations": g["expiration"].nunique(),
                "calls": g["type"].apply(lambda s: int((s == "call").sum())),
                "puts": g["type"].apply(lambda s: int((s == "put").sum())),
            }
        ).reset_index()


def chains_or_synthetic(
    chains_path: str | None,
    *,
    layout: str = "auto",
    underlying: str = "SPX",
    start: str | None = None,
    end: str | None = None,
    seed: int = 0,
    bars_path: str | None = None,
    iv_path: str | None = None,
) -> ChainInput:
    """The user's chain file (resolved like every notebook path), or a synthetic chain of
    ``underlying`` around its real closes and IV when ``chains_path`` is None: the embedded
    SPX bars and VIX (default 2015-2018), or the bars of ``bars_path`` with the IV of
    ``iv_path`` as every command resolves it (default: the last four years of the bars)."""
    from research.data.chains import load_chains

    if chains_path is not None:
        from research.config import resolve_path

        path = resolve_path(chains_path)
        frame = load_chains(
            path,
            layout=layout,
            underlyings=[underlying],
            start=start,
            end=end,
            max_dte=120,
            moneyness=(0.5, 1.5),
        )
        if frame.empty:
            raise ValueError(f"{path}: no quotes for {underlying} between {start} and {end}")
        from research.backtest.chains import with_implied_iv

        # quotes without greeks get their IV once here, not in every book the page builds
        frame = with_implied_iv(frame, dividend_yield=BacktestConfig().dividend_yield(underlying))
        return ChainInput(frame, str(chains_path), synthetic=False)
    from research.backtest.synthetic_chains import synthetic_chains
    from research.data import market
    from research.data.contracts import validate

    if bars_path is None and iv_path is None:
        bars, iv = market.load_bars(symbols=[underlying]), market.load_iv_index()
        start, end = start or "2015-01-01", end or "2018-12-31"
    else:
        from research.data.overview import load_market

        own = load_market(bars_path, iv_path, symbols=[underlying])
        bars, iv = own.bars, own.iv
        last = bars["date"].max()
        start = start or str((last - pd.DateOffset(years=4)).date())
        end = end or str(last.date())
    raw = synthetic_chains(
        bars,
        iv,
        symbol=underlying,
        start=start,
        end=end,
        missing=0.001,
        seed=seed,
        smile=PAGE_SMILE,
    )
    return ChainInput(validate("option_chains", raw, "synthetic"), SYNTHETIC_LABEL, synthetic=True)


@dataclass(frozen=True, eq=False)
class PricingComparison:
    """One configuration priced from the chain and by the model (default and calibrated)."""

    fit: SmileFit
    """Fitted to the quotes the strategy trades, on every quote day (in sample)."""
    ratios: pd.DataFrame = field(repr=False)
    """Per quote date, in sample: ``quote_date, ratio_before, ratio_after`` (model / chain
    spread mid, default and calibrated)."""
    results: dict[str, BacktestResult] = field(repr=False)
    """``chain``, ``model (default)``, ``model (calibrated)``: whole backtests."""
    pooled: SmileFit | None = None
    """Fitted to every out-of-the-money quote (reported beside ``fit``)."""
    oos: OutOfSample | None = field(default=None, repr=False)
    """The fits scored out of sample (walk-forward) on the strategy's spreads."""
    trades: TradeByTrade | None = field(default=None, repr=False)
    """The chain's entries on the scored days priced by the chain, the default model and the
    calibrated model refitted walk-forward."""

    def calibration_table(self) -> pd.DataFrame:
        """The model's parameters and in-sample errors: default, fitted to the strategy's
        quotes, fitted to every out-of-the-money quote."""
        from research.backtest.pricing import DEFAULT_ATM_RATIO, DEFAULT_SKEW_SLOPE

        f, p = self.fit, self.pooled
        table = pd.DataFrame(
            {
                "parameter": [
                    "ATM / index",
                    "ATM intercept",
                    "skew slope",
                    "curvature",
                    "IV error (RMS, vol points)",
                    "model / chain spread mid (median, in sample)",
                ],
                "default": [
                    DEFAULT_ATM_RATIO,
                    0.0,
                    DEFAULT_SKEW_SLOPE,
                    0.0,
                    f.iv_rmse_before,
                    f.ratio_before,
                ],
                "calibrated (strategy's quotes)": [
                    f.atm_ratio,
                    f.atm_intercept,
                    f.slope,
                    f.curvature,
                    f.iv_rmse_after,
                    f.ratio_after,
                ],
            }
        )
        if p is not None:
            table["calibrated (every quote)"] = [
                p.atm_ratio,
                p.atm_intercept,
                p.slope,
                p.curvature,
                p.iv_rmse_after,
                p.ratio_after,
            ]
        return table

    def summary(self, chain: ChainInput) -> dict[str, object]:
        """JSON-ready: the quotes used, the calibration and the three backtests' metrics."""
        from dataclasses import asdict

        def clean(v: object) -> object:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        fit = {k: clean(v) for k, v in asdict(self.fit).items()}
        rows = [
            {k: clean(v) for k, v in row.items()}
            for row in self.metrics_table().to_dict(orient="records")
        ]
        return {
            "quotes": chain.label,
            "synthetic": chain.synthetic,
            "dates": [chain.first_date, chain.last_date],
            "calibration": fit,
            "model_chain_spread_mid_ratio": {
                "before": clean(self.fit.ratio_before),
                "after": clean(self.fit.ratio_after),
            },
            "backtests": rows,
            "pooled_fit": None
            if self.pooled is None
            else {k: clean(v) for k, v in asdict(self.pooled).items()},
            "out_of_sample": None
            if self.oos is None
            else {
                "models": [
                    {k: clean(v) for k, v in r.items()}
                    for r in self.oos.table().to_dict(orient="records")
                ],
                "trust": self.oos.verdict().choice,
                "text": self.oos.verdict().text,
                "folds": len(self.oos.folds),
            },
            "trade_by_trade": None
            if self.trades is None
            else [
                {k: clean(v) for k, v in r.items()}
                for r in self.trades.totals().to_dict(orient="records")
            ],
            "entries": self.oos.entries.counts() if self.oos is not None else None,
        }

    def answer(self, verdicts: pd.DataFrame | None = None) -> str:
        """The page's answer, worded from the numbers: how far the model's spread mid is from
        the chain's (within 5 % counts as matching), before and after calibration; what the same
        configuration made a contract under each pricing; and whether the regime-multiplier
        verdict moves with the pricing.

        Parameters
        ----------
        verdicts
            ``research.optimize.study.compare_verdicts`` of the same study under each pricing
            (``pricing, tickers, verdict``); omitted, the sentence on verdicts is left out.
        """

        def off(ratio: float) -> str:
            if not math.isfinite(ratio):
                return "could not be compared with the chain (no quote date priced by both)"
            if abs(ratio - 1.0) <= 0.05 + 1e-12:
                return f"matches the chain's spread mid within 5% ({ratio:.2f}×)"
            side = "over" if ratio > 1.0 else "under"
            return f"{side}prices the strategy's spread by {abs(ratio - 1.0):.0%} ({ratio:.2f}×)"

        parts = []
        if self.oos is not None:
            parts.append(self.oos.verdict().text)
        if self.trades is not None and len(self.trades.trades):
            parts.append(self.trades.answer())
        parts.append(
            f"In sample, **the model with its default smile {off(self.fit.ratio_before)}**; "
            f"calibrated to the strategy's quotes it {off(self.fit.ratio_after)} (median over "
            "quote dates of model mid / chain mid)."
        )
        made = [
            f"{row['pricing']} {money(float(row['pnl_per_contract']), sign=True)} "
            f"({int(row['trades']):,} trades, {float(row['win_rate']):.0%} won)"
            if row["trades"]
            else f"{row['pricing']}: no trade"
            for row in self.metrics_table().to_dict(orient="records")
        ]
        parts.append(f"The same configuration made a contract: {'; '.join(made)}.")
        if verdicts is not None and len(verdicts):
            for tickers, rows in verdicts.groupby("tickers", sort=False):
                said = dict(zip(rows["pricing"], rows["verdict"], strict=True))
                if len(set(said.values())) == 1:
                    parts.append(
                        f"**{tickers}: the regime-multiplier verdict does not move with the "
                        f'pricing** ("{next(iter(said.values()))}" under each).'
                    )
                else:
                    parts.append(
                        f"**{tickers}: the regime-multiplier verdict moves with the pricing**: "
                        + "; ".join(f'{p} "{v}"' for p, v in said.items())
                        + "."
                    )
        return " ".join(parts)

    def sheets(self) -> dict[str, tuple[TearSheet, ...]]:
        """The three backtests' tear sheets (``backtest.tearsheet``), keyed by the underlying:
        where the P&L of each pricing comes from."""
        first = next(iter(self.results.values()))
        name = "+".join(first.tickers)
        return {
            name: tuple(
                tear_sheet(r, "priced from the chain" if p == "chain" else f"priced by the {p}")
                for p, r in self.results.items()
            )
        }

    def metrics_table(self) -> pd.DataFrame:
        """Per pricing: trades, win rate, mean credit and P&L per contract, exits, CAGR,
        Sharpe (excess over cash), max drawdown."""
        rows = []
        for name, res in self.results.items():
            t, m = res.trades, res.metrics
            reasons = t["exit_reason"].value_counts(normalize=True)
            rows.append(
                {
                    "pricing": name,
                    "trades": len(t),
                    "win_rate": m.win_rate,
                    "mean_credit": float(t["credit"].mean()) if len(t) else float("nan"),
                    "pnl_per_contract": float(t["pnl_per_contract"].mean())
                    if len(t)
                    else float("nan"),
                    "profit_target": float(reasons.get("profit_target", 0.0)),
                    "stop_loss": float(reasons.get("stop_loss", 0.0)),
                    "expiration": float(reasons.get("expiration", 0.0)),
                    "cagr": m.cagr,
                    "sharpe": m.sharpe,
                    "max_drawdown": m.max_drawdown,
                }
            )
        return pd.DataFrame(rows)


def compare_pricing(
    chain: ChainInput,
    index: pd.DataFrame,
    panel: MarketPanel,
    config: BacktestConfig,
    labels: pd.DataFrame | None = None,
) -> PricingComparison:
    """Calibrate on ``chain`` (to the strategy's quotes, and pooled), score both out of sample,
    price the chain's entries trade by trade, and backtest ``config`` three ways on ``panel``'s
    days (the panel must cover the chain's dates; its own ``chains`` are replaced)."""
    import dataclasses

    from research.backtest.calibrate import quote_day_book
    from research.backtest.chain_entries import entry_spreads
    from research.backtest.chains import chain_book

    book, dates, tickers, spot = quote_day_book(chain.chains, config)
    entries = dataclasses.replace(
        entry_spreads(book, dates, tickers, spot, config, inside_data=False), source=chain.label
    )
    fit = calibrate(chain.chains, index, config=config, source=chain.label, entries=entries)
    pooled = calibrate(
        chain.chains, index, config=config, source=chain.label, scope="pooled", entries=entries
    )
    before = spread_ratios(chain.chains, index, None, config=config, entries=entries)
    after = spread_ratios(chain.chains, index, fit, config=config, entries=entries)
    ratios = (
        before[["quote_date", "ratio"]]
        .rename(columns={"ratio": "ratio_before"})
        .merge(
            after[["quote_date", "ratio"]].rename(columns={"ratio": "ratio_after"}), on="quote_date"
        )
    )
    oos = out_of_sample(chain.chains, index, config, source=chain.label, entries=entries)
    trades = None
    if oos.schedules.get("strategy"):
        first = oos.schedules["strategy"][0][0]
        scored = chain.chains.loc[chain.chains["quote_date"] >= first]
        window = panel.slice(slice(int(panel.dates.searchsorted(first)), len(panel.dates)))
        trades = trade_by_trade(
            scored,
            index,
            window,
            config,
            {"default model": None, "calibrated model": oos.schedules["strategy"]},
            source=chain.label,
        )
    model_panel = dataclasses.replace(panel, chains=None)
    q = config.dividend_yield(panel.tickers[0]) if len(panel.tickers) == 1 else 0.0
    book = chain_book(
        panel.dates, panel.tickers, chain.chains, chain.label, rate=config.rate, dividend_yield=q
    )
    results = {
        "chain": run_backtest(dataclasses.replace(panel, chains=book), config, labels),
        "model (default)": run_backtest(model_panel, config, labels),
        "model (calibrated)": run_backtest(
            model_panel, config.replace(**fit.config_changes()), labels
        ),
    }
    return PricingComparison(fit, ratios, results, pooled, oos, trades)
