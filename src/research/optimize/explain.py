"""The strategy explained: the base configuration's tear sheet on every market studied, and the
gap between its result and the validation plan's figures (``backtest.plan_gap``).

``explain_strategy(inputs, start, end)`` runs, per ticker set of ``inputs`` (the same inputs the
grid pages use: the user's bars, IV and conventions, or the embedded data):

- the base configuration (``inputs.base``: scaled sizing, 2 % of equity at risk a trade) over
  the whole window, explained by ``backtest.tearsheet`` with the ``bull_bear_vol`` regime of
  each day shaded;
- the plan's setting with one contract a trade and the factors that could explain its gap to
  the plan (``backtest.plan_gap``), from the plan's first year (``PLAN_START``) where the data
  reach back that far.

Nothing here chooses a configuration: the page says where the base strategy's P&L comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from research.backtest.plan_gap import PLAN, GapStudy, plan_gap
from research.backtest.run import run_backtests
from research.backtest.tearsheet import TearSheet, tear_sheet
from research.optimize.scenarios import SCENARIOS
from research.optimize.service import StudyInputs

__all__ = ["PLAN_START", "Explained", "explain_strategy"]

PLAN_START = "2007-01-01"
"""The first day of the validation plan's own backtests (its option data starts in 2007)."""


@dataclass(frozen=True)
class Explained:
    """Per ticker set: the base configuration's tear sheet and the plan-gap study."""

    sheets: dict[str, tuple[TearSheet, ...]] = field(repr=False)
    gaps: dict[str, GapStudy] = field(repr=False)

    def gap_table(self) -> pd.DataFrame:
        """Every market's gap table, one under the other, with a ``tickers`` column first."""
        frames = [g.table.assign(tickers=t) for t, g in self.gaps.items()]
        out = pd.concat(frames, ignore_index=True)
        return out[["tickers", *[c for c in out.columns if c != "tickers"]]]

    def answers(self) -> list[str]:
        """The page's answer: each market's tear-sheet sentence and gap verdict."""
        out: list[str] = []
        for tickers, sheets in self.sheets.items():
            out += [f"**{tickers}** — {s.answer()}" for s in sheets]
            if tickers in self.gaps:
                out.append(self.gaps[tickers].verdict())
        return out

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary for the findings page."""
        return {
            "plan": {
                "win_rate": PLAN.win_rate,
                "per_trade": PLAN.per_trade,
                "underlying": PLAN.underlying,
                "period": PLAN.period,
            },
            "per_tickers": [
                {
                    "tickers": t,
                    "tear_sheets": [s.summary() for s in self.sheets[t]],
                    "gap": {
                        "verdict": self.gaps[t].verdict(),
                        "breakeven_win_rate": self.gaps[t].breakeven,
                        "rows": self.gaps[t]
                        .table.drop(columns=["how"])
                        .astype(object)
                        .where(self.gaps[t].table.drop(columns=["how"]).notna(), None)
                        .to_dict(orient="records"),
                    },
                }
                for t in self.sheets
            ],
        }


def explain_strategy(
    inputs: StudyInputs,
    start: str | None = None,
    end: str | None = None,
    regime_model: str = "bull_bear_vol",
    plan_start: str | None = PLAN_START,
) -> Explained:
    """The base configuration explained on every ticker set of ``inputs`` (module docstring).

    Parameters
    ----------
    inputs
        ``optimize.service.study_inputs`` output (ticker sets, market data, base config).
    start, end
        The window (None: the data's).
    regime_model
        The regime labels shaded on the equity curve and used for the trend split.
    plan_start
        The gap study starts here (the validation plan's first year), or at ``start`` if later;
        None: at ``start``. The tear sheets cover the whole window.
    """
    baseline = SCENARIOS[0]
    labels = inputs.data.labels(baseline, regime_model)
    sheets: dict[str, tuple[TearSheet, ...]] = {}
    gaps: dict[str, GapStudy] = {}
    for tickers in inputs.ticker_sets:
        name = "+".join(tickers)
        panel = inputs.data.panel(baseline, tickers, start, end)
        if panel is None:
            raise ValueError(f"{name}: no data between {start} and {end}")
        (result,) = run_backtests(panel, [inputs.base], labels)
        day_labels = None
        if labels is not None:
            mine = labels.loc[labels["symbol"] == tickers[0]]
            day_labels = pd.Series(mine["regime"].to_numpy(), index=pd.DatetimeIndex(mine["date"]))
        sheets[name] = (tear_sheet(result, "the base configuration", labels=day_labels),)
        first = max(filter(None, (start, plan_start)), key=pd.Timestamp, default=None)
        gap_panel = inputs.data.panel(baseline, tickers, first, end) if first != start else panel
        gaps[name] = plan_gap(gap_panel or panel, inputs.base, labels)
    return Explained(sheets=sheets, gaps=gaps)
