"""The gap between the lab's backtest of the base strategy and the validation plan's figures,
explained factor by factor.

The plan reports, on its own option data (QQQ 2007–2025, bear call spreads, delta 0.05–0.15,
profit target 65 %, stop loss 125 %, no IV-percentile filter), a win rate of about 70 % and about
+$65 a trade (``PLAN``). Its dollars are per QQQ contract and do not transfer to index spreads;
what does transfer is the win rate and the expectancy **per dollar of credit**. With these exits
a winner keeps at most 65 % of the credit and a stopped loser gives up at least 125 %, so before
costs the strategy breaks even at a win rate of ``1.25 / (0.65 + 1.25)`` = 65.8 %
(``breakeven_win_rate``): the plan's 70 % is just above it, which is consistent with a small
positive expectancy (about +8 % of the credit a trade at exactly those exits).

``plan_gap(panel, base, labels)`` runs the plan's setting (the base strategy, one contract a
trade so that no account size or ruin enters) and then one factor at a time, and reports every
row's trades, win rate, $ a contract, credit relative to width and expectancy per $ of credit
(``GapStudy.table``):

- **as configured** — stops checked on the daily close (the lab's default);
- **stops filled at the stop** — the same trades with every stop-out closed exactly at its stop
  (the overshoot past it removed; computed from the trades, a bound rather than a fill model);
- **intraday stops** — the stop rests during the day, approximated from the bar's high and low
  (``FillModel.stop_fill = "intraday"``): it closes spreads that the close would have let
  recover, and fills near the stop;
- **no costs** — no bid/ask and no fees;
- **richer credits** — options priced 10 % richer (``atm_ratio`` x 1.1), for a model that may
  price credits low against real quotes (the option-chains page measures that error);
- **bear regimes only / bull regimes only** — the as-configured trades split by the trend of
  their entry day (``bull_bear_vol``): how much the period's trend decides the result;
- **all three** — intraday stops, no costs and richer credits together.

``GapStudy.verdict()`` words the result by one rule: the factor that moves the expectancy most
(largest change in $ per $ of credit), whether any factor alone or the three together make it
positive, and the win rate against the breakeven.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from research.backtest.run import run_backtests
from research.backtest.spreads import BacktestConfig

if TYPE_CHECKING:
    from research.backtest.market_panel import MarketPanel
    from research.backtest.run import BacktestResult

__all__ = ["PLAN", "GapStudy", "PlanFigures", "breakeven_win_rate", "plan_gap"]


@dataclass(frozen=True)
class PlanFigures:
    """What the plan reports for its setting."""

    win_rate: float
    per_trade: float
    """$ a trade, per contract of ``underlying``."""
    underlying: str
    period: str


PLAN = PlanFigures(win_rate=0.70, per_trade=65.0, underlying="QQQ", period="2007–2025")
"""The validation plan's backtest expectations for its base setting (its paper-trading check:
"win rate: backtest says ~70 %", "avg trade P/L: backtest says ~$65")."""

RICHER = 1.1
"""The richer-credits factor: ATM implied volatility x this."""
BEAR_LABELS = ("bear_low_vol", "bear_high_vol")
BULL_LABELS = ("bull_low_vol", "bull_high_vol")


def breakeven_win_rate(profit_target_pct: float, stop_loss_pct: float) -> float:
    """The win rate at which exits at exactly the profit target and the stop break even before
    costs: ``stop / (target + stop)`` (both as % of the credit)."""
    if profit_target_pct <= 0 or stop_loss_pct <= 0:
        raise ValueError("profit target and stop loss must be > 0")
    return stop_loss_pct / (profit_target_pct + stop_loss_pct)


def _row(factor: str, how: str, trades: pd.DataFrame, units: np.ndarray) -> dict[str, object]:
    n = len(trades)
    if n == 0:
        return {"factor": factor, "how": how, "trades": 0}
    contracts = trades["contracts"].to_numpy(float)
    pnl = trades["pnl"].to_numpy(float)
    credit = trades["credit"].to_numpy(float) * units * contracts
    width = (trades["long_strike"] - trades["short_strike"]).abs().to_numpy(float)
    return {
        "factor": factor,
        "how": how,
        "trades": n,
        "win_rate": float((pnl > 0).mean()),
        "per_contract": float(pnl.sum() / contracts.sum()),
        "credit_to_width": float((trades["credit"].to_numpy(float) / width).mean()),
        "per_credit": float(pnl.sum() / credit.sum()),
    }


@dataclass(frozen=True)
class GapStudy:
    """The plan's setting on one market and the factors that could explain the gap."""

    tickers: str
    start: pd.Timestamp
    end: pd.Timestamp
    config: BacktestConfig = field(repr=False)
    table: pd.DataFrame
    """One row per factor: ``factor, how, trades, win_rate, per_contract, credit_to_width,
    per_credit, change`` (per $ of credit, against *as configured*)."""

    @property
    def breakeven(self) -> float:
        s = self.config.spread
        return breakeven_win_rate(s.profit_target_pct, s.stop_loss_pct)

    def _base(self) -> pd.Series:
        rows = self.table.loc[self.table["factor"] == "as configured"]
        return rows.iloc[0]

    def verdict(self) -> str:
        """The gap in a few sentences, worded from the table by one rule (module docstring)."""
        base = self._base()
        singles = self.table[~self.table["factor"].isin(["as configured", "all three"])]
        singles = singles.dropna(subset=["change"])
        where = f"{self.tickers} {self.start:%Y}–{self.end:%Y}"
        parts = [
            f"{where}, the plan's setting as configured: win rate {base['win_rate']:.0%} "
            f"(breakeven {self.breakeven:.0%}; the plan reports about {PLAN.win_rate:.0%}), "
            f"{_signed(base['per_credit'])} per $ of credit ({_money(base['per_contract'])} a "
            "contract)."
        ]
        if len(singles):
            top = singles.iloc[int(np.argmax(singles["change"].abs().to_numpy()))]
            parts.append(
                f"The largest single move comes from {top['factor']}: "
                f"{_signed(top['change'])} per $ of credit, to {_signed(top['per_credit'])}."
            )
            turn = singles.loc[singles["per_credit"] > 0, "factor"].tolist()
            if turn:
                parts.append(f"Alone, {' and '.join(turn)} make the expectancy positive.")
            else:
                parts.append("No single factor makes the expectancy positive.")
        together = self.table.set_index("factor").get("per_credit", pd.Series()).get("all three")
        if together is not None and math.isfinite(float(together)):
            sign = "positive" if together > 0 else "still negative"
            parts.append(
                f"Intraday stops, no costs and richer credits together: {_signed(together)} "
                f"per $ of credit ({sign})."
            )
        return " ".join(parts)


def _signed(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}${abs(x):.2f}"


def _money(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}${abs(x):,.0f}"


def _factors(base: BacktestConfig) -> list[tuple[str, str, BacktestConfig]]:
    intraday = {"fills.stop_fill": "intraday"}
    free = {
        "fills.half_spread_pct": 0.0,
        "fills.min_half_spread": 0.0,
        "fills.fee_per_contract": 0.0,
    }
    rich = {"atm_ratio": base.atm_ratio * RICHER}
    return [
        ("as configured", "stops checked on the daily close", base),
        ("intraday stops", "the stop rests during the day (bar high/low)",
         base.replace(**intraday)),
        ("no costs", "no bid/ask, no fees", base.replace(**free)),
        ("richer credits", f"implied volatility x {RICHER:g}", base.replace(**rich)),
        ("all three", "intraday stops, no costs, richer credits",
         base.replace(**intraday, **free, **rich)),
    ]  # fmt: skip


def plan_gap(
    panel: MarketPanel,
    base: BacktestConfig | None = None,
    labels: pd.DataFrame | None = None,
) -> GapStudy:
    """The plan's setting on ``panel`` and the factors (module docstring).

    Parameters
    ----------
    panel
        The market(s), model-priced (intraday stops need the bars' highs and lows).
    base
        The setting (default: the package's defaults — the plan's delta, exits and filter —
        with one contract a trade).
    labels
        ``bull_bear_vol`` labels (``date, symbol, regime``) for the trend split (None: no split).
    """
    base = (base or BacktestConfig()).replace(**{"sizing.mode": "fixed", "sizing.contracts": 1})
    factors = _factors(base)
    results: Sequence[BacktestResult] = run_backtests(panel, [c for _, _, c in factors], labels)
    mult = {t: base.convention(t).multiplier for t in panel.tickers}
    rows = []
    for (name, how, _), result in zip(factors, results, strict=True):
        t = result.trades
        units = t["ticker"].map(mult).to_numpy(float)
        rows.append(_row(name, how, t, units))
        if name == "as configured":
            sl = base.spread.stop_loss_pct / 100.0
            at_stop = t.copy()
            stopped = (at_stop["exit_reason"] == "stop_loss").to_numpy()
            over = (at_stop["debit"] - (1.0 + sl) * at_stop["credit"]).to_numpy(float)
            at_stop.loc[stopped, "pnl"] = (
                at_stop.loc[stopped, "pnl"]
                + (over * units * at_stop["contracts"].to_numpy(float))[stopped]
            )
            rows.append(_row("stops filled at the stop", "the overshoot removed", at_stop, units))
            splits = (("bear regimes only", BEAR_LABELS), ("bull regimes only", BULL_LABELS))
            for label, group in splits if labels is not None else ():
                part = t["regime"].isin(group).to_numpy()
                rows.append(_row(label, "entries on those days", t[part], units[part]))
    table = pd.DataFrame(rows)
    base_per_credit = float(table.loc[table["factor"] == "as configured", "per_credit"].iloc[0])
    table["change"] = table["per_credit"] - base_per_credit
    order = [
        "as configured",
        "stops filled at the stop",
        "intraday stops",
        "no costs",
        "richer credits",
        "bear regimes only",
        "bull regimes only",
        "all three",
    ]
    table["rank"] = table["factor"].map({f: i for i, f in enumerate(order)})
    table = table.sort_values("rank", ignore_index=True).drop(columns=["rank"])
    return GapStudy(
        tickers="+".join(panel.tickers),
        start=pd.Timestamp(panel.dates[0]),
        end=pd.Timestamp(panel.dates[-1]),
        config=base,
        table=table,
    )
