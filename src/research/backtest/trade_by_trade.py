"""The same entries priced by the chain, the default model and the calibrated model: credits,
exit reasons and P&L, trade by trade.

Whole backtests of one configuration under different pricings open different spreads on
different days (the model picks strikes by its own delta, a cheaper credit fails the cost test,
a position held longer blocks the next entry), so their totals mix the pricing error with
everything it moves. This module holds the entries fixed and changes only the prices:

- ``model_priced_chain``: the chain's own rows (same dates, expirations, strikes, deltas, IVs
  and quoted/unquoted state) with each quoted row's bid and ask replaced by the model's mid
  (``calibrate.model_mids``' smile on the day's IV index) minus and plus the row's quoted half
  spread. The chain engine on it picks the same strikes by the same deltas and pays the same
  bid/ask, so credits, marks, profit-target and stop exits differ only by the model's mid.
- ``trade_by_trade``: the chain engine on the chain and on each model-priced copy, one contract
  a trade and no portfolio limit binding (so every day's entry is the screening's alone), trades
  matched on (ticker, entry date, expiration, strikes). An entry one pricing skips (its credit
  does not clear its costs) has no row under that pricing and is counted as ``skipped``.

Everything day t sees is day t's quotes (or the model's prices from day t's IV index).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from research.backtest.calibrate import SmileFit, model_prices
from research.backtest.chains import chain_book, with_implied_iv
from research.backtest.market_panel import MarketPanel
from research.backtest.run import run_backtest
from research.backtest.spreads import BacktestConfig
from research.numbers import money, signed

__all__ = ["Schedule", "TradeByTrade", "model_priced_chain", "trade_by_trade"]

KEY = ["ticker", "entry_date", "expiration", "short_strike", "long_strike"]


Schedule = tuple[tuple[pd.Timestamp, SmileFit], ...]
"""``(first day, fit)`` pairs: the fit in force from each day on (``calibration_oos``)."""


def model_priced_chain(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    config: BacktestConfig,
    fit: SmileFit | Schedule | None = None,
) -> pd.DataFrame:
    """``chains`` with each quoted row priced by the model (module docstring): bid and ask =
    model mid -/+ the row's half spread (bid floored at 0); rows without a quote, or without an
    IV index that day, stay (or become) unquoted (bid = ask = 0).

    Parameters
    ----------
    fit
        The smile: None for ``config``'s own, one ``SmileFit``, or a ``Schedule`` (each row
        priced with the fit in force on its quote date; rows before the first are unquoted).
    """
    frame = chains.reset_index(drop=True)
    rows = frame[["quote_date", "underlying", "expiration", "strike", "type"]].assign(
        spot=frame["underlying_price"].astype(float)
    )
    mid = np.full(len(frame), np.nan)
    if fit is None or isinstance(fit, SmileFit):
        cfg = config if fit is None else config.replace(**fit.config_changes())
        mid = model_prices(rows, index, cfg)
    else:
        starts = [*(pd.Timestamp(d) for d, _ in fit), pd.Timestamp.max]
        for (first, one), stop in zip(fit, starts[1:], strict=True):
            part = ((rows["quote_date"] >= first) & (rows["quote_date"] < stop)).to_numpy()
            cfg = config.replace(**one.config_changes())
            mid[part] = model_prices(rows.loc[part], index, cfg)
    bid, ask = frame["bid"].to_numpy(float), frame["ask"].to_numpy(float)
    quoted = (ask > 0) & (ask >= bid) & (bid >= 0) & np.isfinite(mid)
    half = 0.5 * (ask - bid)
    return frame.assign(
        bid=np.where(quoted, np.maximum(mid - half, 0.0), 0.0),
        ask=np.where(quoted, mid + half, 0.0),
    )


@dataclass(frozen=True, eq=False)
class TradeByTrade:
    """The chain's entries priced by the chain and by each model (module docstring)."""

    trades: pd.DataFrame = field(repr=False)
    """Per entry (``KEY``): for each pricing ``p``, ``credit_<p>``, ``exit_date_<p>``,
    ``exit_reason_<p>``, ``pnl_<p>`` ($ a contract, fees included; NaN where skipped)."""
    pricings: tuple[str, ...]

    def totals(self) -> pd.DataFrame:
        """Per pricing: entries taken and skipped, mean credit, total and mean P&L a
        contract, win rate, exits by reason; for the models the mean credit gap to the chain's
        and the share of trades whose exit reason differs from the chain's."""
        t = self.trades
        rows = []
        for p in self.pricings:
            taken = t[f"pnl_{p}"].notna()
            reasons = t.loc[taken, f"exit_reason_{p}"].value_counts(normalize=True)
            both = taken & t["pnl_chain"].notna()
            rows.append(
                {
                    "pricing": p,
                    "trades": int(taken.sum()),
                    "skipped": int((~taken).sum()),
                    "mean_credit": float(t.loc[taken, f"credit_{p}"].mean()),
                    "total_pnl": float(t.loc[taken, f"pnl_{p}"].sum()),
                    "mean_pnl": float(t.loc[taken, f"pnl_{p}"].mean()),
                    "win_rate": float((t.loc[taken, f"pnl_{p}"] > 0).mean()),
                    "profit_target": float(reasons.get("profit_target", 0.0)),
                    "stop_loss": float(reasons.get("stop_loss", 0.0)),
                    "expiration": float(reasons.get("expiration", 0.0)),
                    "credit_vs_chain": float(
                        (t.loc[both, f"credit_{p}"] / t.loc[both, "credit_chain"] - 1).median()
                    )
                    if p != "chain" and both.any()
                    else math.nan,
                    "other_exit": float(
                        (t.loc[both, f"exit_reason_{p}"] != t.loc[both, "exit_reason_chain"]).mean()
                    )
                    if p != "chain" and both.any()
                    else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def answer(self) -> str:
        """One sentence per model: its P&L on the chain's entries against the chain's."""
        tot: dict[str, dict[Any, Any]] = {
            str(r["pricing"]): r for r in self.totals().to_dict(orient="records")
        }
        if not len(self.trades):
            return "No entry on the chain's quote days: nothing to compare trade by trade."
        chain = tot["chain"]
        parts = [
            f"On the chain's {len(self.trades):,} entries (one contract each), the quotes made "
            f"{money(float(chain['total_pnl']), 0, plus=True)} in all "
            f"({money(float(chain['mean_pnl']), 0, plus=True)} a trade)"
        ]
        for p in self.pricings[1:]:
            row = tot[p]
            skipped = int(float(row["skipped"]))
            parts.append(
                f"the {p} {money(float(row['total_pnl']), 0, plus=True)} (credits "
                f"{signed(100 * float(row['credit_vs_chain']), 0)}% against the chain's at the "
                f"median, {float(row['other_exit']):.0%} of exits for another reason, "
                f"{skipped} {'entry' if skipped == 1 else 'entries'} skipped)"
            )
        return "; ".join(parts) + "."


def trade_by_trade(
    chains: pd.DataFrame,
    index: pd.DataFrame,
    panel: MarketPanel,
    config: BacktestConfig,
    fits: dict[str, SmileFit | Schedule | None],
    *,
    source: str = "",
) -> TradeByTrade:
    """The chain engine on ``chains`` and on each model-priced copy (``fits``: name -> smile,
    a walk-forward ``Schedule``, or None for ``config``'s own model), with one contract a trade
    and no portfolio limit binding; trades matched on ``KEY``.

    Parameters
    ----------
    panel
        The backtest's panel (its dates cover the chain's; its own ``chains`` are replaced).
    """
    cfg = config.replace(
        **{
            "sizing.mode": "fixed",
            "sizing.contracts": 1,
            "sizing.regime_multipliers": (),
            "limits.max_positions": 10_000,
            "limits.max_portfolio_heat_pct": 1e9,
            "limits.max_per_underlying_pct": 1e9,
        }
    )
    q = config.dividend_yield(panel.tickers[0]) if len(panel.tickers) == 1 else 0.0
    chains = with_implied_iv(chains, rate=config.rate, dividend_yield=q)
    priced = {"chain": chains}
    for name, fit in fits.items():
        priced[name] = model_priced_chain(chains, index, cfg, fit)
    merged: pd.DataFrame | None = None
    for name, frame in priced.items():
        book = chain_book(panel.dates, panel.tickers, frame, source)
        res = run_backtest(dataclasses.replace(panel, chains=book), cfg)
        t = res.trades[[*KEY, "credit", "exit_date", "exit_reason", "pnl_per_contract"]]
        t = t.rename(
            columns={
                "credit": f"credit_{name}",
                "exit_date": f"exit_date_{name}",
                "exit_reason": f"exit_reason_{name}",
                "pnl_per_contract": f"pnl_{name}",
            }
        )
        merged = t if merged is None else merged.merge(t, on=KEY, how="outer")
    assert merged is not None
    merged = merged.sort_values(["entry_date", "ticker"], ignore_index=True)
    return TradeByTrade(merged, tuple(priced))
