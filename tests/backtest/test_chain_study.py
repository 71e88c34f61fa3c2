"""The option-chain page's answer (``PricingComparison.answer``): worded from the fit's ratios,
the three backtests' trades and the verdicts under each pricing."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from research.backtest import chain_study
from research.backtest.service import load_panel
from research.backtest.tearsheet import money
from research.optimize import service


@pytest.fixture(scope="module")
def comparison() -> chain_study.PricingComparison:
    chain = chain_study.chains_or_synthetic(
        None, underlying="SPX", start="2016-01-04", end="2016-06-30"
    )
    panel, _, iv = load_panel(["SPX"], start=chain.first_date, end=chain.last_date)
    return chain_study.compare_pricing(chain, iv, panel, service.DEFAULT_BASE)


def test_answer_quotes_the_ratios_and_each_pricing(
    comparison: chain_study.PricingComparison,
) -> None:
    text = comparison.answer()
    fit = comparison.fit
    assert f"({fit.ratio_before:.2f}×)" in text and f"({fit.ratio_after:.2f}×)" in text
    for name, res in comparison.results.items():
        t = res.trades
        assert len(t) > 0
        said = f"{name} {money(t['pnl_per_contract'].mean(), sign=True)} ({len(t):,} trades, "
        assert said + f"{(t['pnl'] > 0).mean():.0%} won)" in text
    assert "verdict" not in text


def test_five_percent_rule_and_direction(comparison: chain_study.PricingComparison) -> None:
    def with_ratios(before: float, after: float) -> str:
        fit = dataclasses.replace(comparison.fit, ratio_before=before, ratio_after=after)
        return dataclasses.replace(comparison, fit=fit).answer()

    text = with_ratios(1.30, 1.04)
    assert "default smile overprices the strategy's spread by 30% (1.30×)" in text
    assert "it matches the chain's spread mid within 5% (1.04×)" in text
    assert "underprices the strategy's spread by 20% (0.80×)" in with_ratios(0.80, 0.949)
    assert "underprices the strategy's spread by 6% (0.94×)" in with_ratios(1.0, 0.94)
    assert "it matches the chain's spread mid within 5% (0.95×)" in with_ratios(1.0, 0.95)
    assert "could not be compared" in with_ratios(float("nan"), 1.0)


def test_verdict_sentence_says_whether_it_moves(comparison: chain_study.PricingComparison) -> None:
    same = pd.DataFrame(
        {"pricing": ["model", "chain"], "tickers": ["SPX", "SPX"], "verdict": ["loses less"] * 2}
    )
    assert (
        '**SPX: the regime-multiplier verdict does not move with the pricing** ("loses less"'
        in (comparison.answer(same))
    )
    moved = same.assign(verdict=["adds value", "untested"])
    assert 'moves with the pricing**: model "adds value"; chain "untested".' in comparison.answer(
        moved
    )
