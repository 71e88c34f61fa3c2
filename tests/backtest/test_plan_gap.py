"""The gap to the validation plan's figures: the breakeven win rate by hand, every factor row
recomputed from its own backtest, the overshoot counterfactual from the trades, and the verdict
worded from the table by its rule."""

from __future__ import annotations

import pandas as pd
import pytest

from research.backtest.market_panel import MarketPanel
from research.backtest.plan_gap import GapStudy, breakeven_win_rate, plan_gap
from research.backtest.run import run_backtest
from research.backtest.spreads import BacktestConfig

ONE = BacktestConfig().replace(**{"sizing.mode": "fixed", "sizing.contracts": 1})


def test_breakeven_win_rate_by_hand() -> None:
    # a winner keeps 0.65 credit, a loser gives up 1.25: p x 0.65 = (1 - p) x 1.25
    assert breakeven_win_rate(65, 125) == pytest.approx(1.25 / 1.90)
    assert breakeven_win_rate(50, 200) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        breakeven_win_rate(0, 125)


@pytest.fixture(scope="module")
def market() -> tuple[MarketPanel, pd.DataFrame]:
    from research.backtest.service import load_panel
    from research.optimize.service import regimes_for

    panel, _, _ = load_panel(["SPX"], start="2012-01-01", end="2016-12-31")
    return panel, regimes_for("bull_bear_vol", ["SPX"])


def _per_credit(trades: pd.DataFrame) -> float:
    return float(trades["pnl"].sum() / (trades["credit"] * 100 * trades["contracts"]).sum())


def test_every_row_is_its_own_backtest(market: tuple[MarketPanel, pd.DataFrame]) -> None:
    panel, labels = market
    gap = plan_gap(panel, BacktestConfig(), labels)
    table = gap.table.set_index("factor")
    assert list(gap.table["factor"]) == [
        "as configured",
        "stops filled at the stop",
        "intraday stops",
        "no costs",
        "richer credits",
        "bear regimes only",
        "bull regimes only",
        "all three",
    ]
    base = run_backtest(panel, ONE, labels).trades
    assert (base["contracts"] == 1).all()
    row = table.loc["as configured"]
    assert row["trades"] == len(base)
    assert row["win_rate"] == pytest.approx((base["pnl"] > 0).mean())
    assert row["per_contract"] == pytest.approx(base["pnl"].mean())
    assert row["per_credit"] == pytest.approx(_per_credit(base))
    # the overshoot removed: every stop-out closed at 2.25 credits
    stops = base["exit_reason"] == "stop_loss"
    fixed = base["pnl"].where(~stops, -1.25 * base["credit"] * 100 - 4 * 0.65)
    assert table.loc["stops filled at the stop", "per_contract"] == pytest.approx(fixed.mean())
    assert table.loc["stops filled at the stop", "change"] > 0
    free = run_backtest(
        panel,
        ONE.replace(
            **{
                "fills.half_spread_pct": 0.0,
                "fills.min_half_spread": 0.0,
                "fills.fee_per_contract": 0.0,
            }
        ),
        labels,
    ).trades
    assert (free["entry_mid"] - free["credit"]).abs().max() < 1e-12  # no bid/ask paid
    assert table.loc["no costs", "per_credit"] == pytest.approx(_per_credit(free))
    bear = base[base["regime"].isin(["bear_low_vol", "bear_high_vol"])]
    assert table.loc["bear regimes only", "trades"] == len(bear) > 0
    assert table.loc["bear regimes only", "per_credit"] == pytest.approx(_per_credit(bear))
    assert table["change"].iloc[0] == 0.0
    assert "SPX 2012–2016, the plan's setting as configured" in gap.verdict()


def _study(per_credit: dict[str, float]) -> GapStudy:
    rows = [
        {"factor": f, "how": "", "trades": 100, "win_rate": 0.55, "per_contract": 10 * v,
         "credit_to_width": 0.07, "per_credit": v}
        for f, v in per_credit.items()
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    table["change"] = table["per_credit"] - per_credit["as configured"]
    return GapStudy("SPX", pd.Timestamp("2007-01-03"), pd.Timestamp("2018-12-31"), ONE, table)


def test_verdict_names_the_largest_move_and_whether_anything_turns_positive() -> None:
    study = _study({"as configured": -0.5, "intraday stops": -0.3, "no costs": 0.1,
                    "all three": 0.2})  # fmt: skip
    text = study.verdict()
    assert "win rate 55% (breakeven 66%; the plan reports about 70%)" in text
    assert "−$0.50 per $ of credit (−$5 a contract)" in text
    assert "The largest single move comes from no costs: +$0.60 per $ of credit, to +$0.10." in text
    assert "Alone, no costs make the expectancy positive." in text
    assert "together: +$0.20 per $ of credit (positive)" in text
    none = _study({"as configured": -0.5, "intraday stops": -0.4, "all three": -0.1}).verdict()
    assert "No single factor makes the expectancy positive." in none
    assert "(still negative)" in none
