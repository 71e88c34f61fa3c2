"""The chain's own entries priced by the chain and by the models: a model-priced chain keeps
rows, quotes states and half-spreads; the true smile reproduces the chain's trades; the default
model's credits are off by its measured spread ratio."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from research.backtest.calibrate import SmileFit, spread_ratios
from research.backtest.market_panel import MarketPanel
from research.backtest.spreads import BacktestConfig
from research.backtest.synthetic_chains import TrueSmile, synthetic_chains
from research.backtest.trade_by_trade import model_priced_chain, trade_by_trade
from research.data import market
from research.data.contracts import validate

TRUE = TrueSmile(atm_ratio=0.86, slope=0.38, curvature=0.04)


@pytest.fixture(scope="module")
def setting() -> tuple[pd.DataFrame, pd.DataFrame, MarketPanel]:
    from research.backtest.service import load_panel

    panel, _, iv = load_panel(["SPX"], start="2016-01-01", end="2016-06-30")
    bars = market.load_bars(symbols=["SPX"])
    raw = synthetic_chains(bars, iv, start="2016-01-01", end="2016-06-30", smile=TRUE, missing=0.01)
    return validate("option_chains", raw), iv, panel


def test_a_model_priced_chain_keeps_rows_quote_states_and_half_spreads(
    setting: tuple[pd.DataFrame, pd.DataFrame, MarketPanel],
) -> None:
    chain, iv, _ = setting
    chain = chain.copy()
    chain.loc[chain.index[:3], ["bid", "ask"]] = 0.0  # three unquoted rows
    priced = model_priced_chain(chain, iv, BacktestConfig())
    keep = ["quote_date", "expiration", "type", "strike", "underlying_price", "iv", "delta"]
    pd.testing.assert_frame_equal(priced[keep], chain.reset_index(drop=True)[keep])
    assert (priced.loc[:2, ["bid", "ask"]] == 0).all().all()
    quoted = chain["ask"].to_numpy() > 0
    half = (chain["ask"] - chain["bid"]).to_numpy() / 2
    got_half = (priced["ask"] - priced["bid"]).to_numpy() / 2
    mid = (priced["ask"] - half).to_numpy()
    # bid = max(mid - half, 0): where it is not floored the half spread is the chain's
    free = quoted & (priced["bid"].to_numpy() > 0)
    assert np.allclose(got_half[free], half[free])
    assert np.allclose(priced["bid"].to_numpy()[quoted], np.maximum(mid - half, 0)[quoted])


def test_the_true_smile_reproduces_the_chains_trades_and_the_default_is_off_by_its_ratio(
    setting: tuple[pd.DataFrame, pd.DataFrame, MarketPanel],
) -> None:
    chain, iv, panel = setting
    truth = SmileFit(TRUE.atm_ratio, 0.0, TRUE.slope, TRUE.curvature)
    tbt = trade_by_trade(chain, iv, panel, BacktestConfig(), {"default": None, "truth": truth})
    tot = tbt.totals().set_index("pricing")
    assert tot.loc["chain", "trades"] > 50 and tot.loc["chain", "skipped"] == 0
    # the true smile prices the chain's mids up to its cent rounding
    assert abs(tot.loc["truth", "credit_vs_chain"]) < 0.01
    assert tot.loc["truth", "other_exit"] <= 0.05
    assert tot.loc["truth", "total_pnl"] == pytest.approx(tot.loc["chain", "total_pnl"], rel=0.05)
    # the default model misprices these spreads (its median ratio to the chain's mid), and its
    # credits sit on the same side of the chain's on nearly every trade
    ratio = spread_ratios(chain, iv, None)["ratio"].median()
    assert abs(ratio - 1) > 0.1
    t = tbt.trades.dropna(subset=["credit_default", "credit_chain"])
    same_side = np.sign(t["credit_default"] - t["credit_chain"]) == np.sign(ratio - 1)
    assert same_side.mean() > 0.9
    assert np.sign(tot.loc["default", "credit_vs_chain"]) == np.sign(ratio - 1)
    text = tbt.answer()
    assert f"On the chain's {len(tbt.trades):,} entries" in text

    # amounts with a typographic minus before the dollar sign, the credit gap signed
    assert re.search(r"the default [+\u2212]\$[\d,]+ \(credits [+\u2212]?\d+% against", text)
    assert "$-" not in text and "1 entries" not in text
