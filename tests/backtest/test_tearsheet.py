"""The tear sheet: the P&L decomposition to the cent on a hand-made book, its lines adding up to
the change in equity on real backtests in every engine (close and next-open fills, model and
chain pricing, the shared-path engine), held-to-expiry, years, exits, regimes and idleness.

The hand-made book (ticker XYZ, PM-settled, multiplier 100, fees $0.65 per contract per leg,
stop 125 %, rate 0)::

    trade  exit    n  entry mid  credit  exit mid  debit  P&L
    A      target  2  1.05       1.00    0.30      0.35   (1.00-0.35)x200 - 4x0.65x2 = +124.80
    B      stop    1  2.10       2.00    4.80      5.00   (2.00-5.00)x100 - 4x0.65x1 = -302.60
    C      expiry  3  0.55       0.50    0.20      0.20   (0.50-0.20)x300 - 2x0.65x3 =  +86.10

    credits sold        1.05x200 + 2.10x100 + 0.55x300           = +585.00
    profit target       -0.30x200                                 =  -60.00
    expiry              -0.20x300                                 =  -60.00
    stop at the stop    stop debit 2.25x2.00 = 4.50; -(4.50 - 0.20)x100 = -430.00
    overshoot           -(5.00 - 4.50)x100                        =  -50.00
    bid/ask             -((0.05+0.05)x200 + (0.10+0.20)x100 + 0.05x300) = -65.00
    fees                -(5.20 + 2.60 + 3.90)                     =  -11.70
    total                                                         =  -91.70
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from research.backtest.activity import cash_days, cash_share, idle_since
from research.backtest.market_panel import MarketPanel
from research.backtest.run import BacktestResult, run_backtests
from research.backtest.spreads import BacktestConfig
from research.backtest.tearsheet import DecompositionError, decompose, tear_sheet

DATES = pd.bdate_range("2021-03-01", periods=7)  # Mon 1 .. Tue 9 March
INITIAL = 10_000.0


def _panel(close: list[float]) -> MarketPanel:
    n = len(close)
    col = np.asarray(close, float)[:, None]
    return MarketPanel(
        dates=DATES[:n],
        tickers=("XYZ",),
        close=col,
        atm_iv=np.full((n, 1), 0.2),
        mark_iv=np.full((n, 1), 0.2),
        iv_percentile=np.full((n, 1), 50.0),
        vix=np.full((n, 1), 20.0),
        iv_source=np.full((n, 1), "test", dtype=object),
        strike_steps=np.ones(1),
        dropped_days=0,
        open=col.copy(),
    )


def _trade(entry: int, exit_: int, expiry: int, reason: str, **kw: float) -> dict:
    units = 100 * kw["contracts"]
    fees = 2 * 0.65 * kw["contracts"] * (1 if reason == "expiration" else 2)
    return {
        "entry_date": DATES[entry],
        "exit_date": DATES[exit_],
        "ticker": "XYZ",
        "expiration": DATES[expiry],
        "exit_reason": reason,
        "regime": kw.get("regime", "calm"),
        "pnl": (kw["credit"] - kw["debit"]) * units - fees,
        **{k: v for k, v in kw.items() if k != "regime"},
    }


BOOK = [
    _trade(0, 2, 6, "profit_target", short_strike=105, long_strike=110, contracts=2,
           entry_mid=1.05, credit=1.00, exit_mid=0.30, debit=0.35),
    _trade(1, 3, 6, "stop_loss", short_strike=104, long_strike=109, contracts=1,
           entry_mid=2.10, credit=2.00, exit_mid=4.80, debit=5.00, regime="storm"),
    _trade(2, 5, 5, "expiration", short_strike=100, long_strike=105, contracts=3,
           entry_mid=0.55, credit=0.50, exit_mid=0.20, debit=0.20),
]  # fmt: skip
# closes: C settles at 100.20 on day 5 (intrinsic 0.20); A and B expire on day 6 at 107
CLOSE = [100.0, 101.0, 102.0, 103.0, 101.0, 100.2, 107.0]


def _result(rate: float = 0.0, equity: list[float] | None = None) -> BacktestResult:
    trades = pd.DataFrame(BOOK)
    final = INITIAL + trades["pnl"].sum()
    values = equity or [INITIAL, 9_990.0, 10_050.0, 9_800.0, 9_850.0, 9_900.0, final]
    config = BacktestConfig(rate=rate, initial_equity=INITIAL)
    return BacktestResult(
        config=config,
        tickers=("XYZ",),
        equity=pd.Series(values, index=DATES, name="equity"),
        trades=trades,
        counters={},
        panel=_panel(CLOSE),
    )


def test_hand_made_book_to_the_cent() -> None:
    frame = decompose(_result()).set_index("key")
    want = {
        "credits": 585.00,
        "profit_target": -60.00,
        "expiry": -60.00,
        "stop": -430.00,
        "overshoot": -50.00,
        "other": 0.0,
        "bid_ask": -65.00,
        "fees": -11.70,
        "interest": 0.0,
    }
    for key, dollars in want.items():
        assert frame.loc[key, "dollars"] == pytest.approx(dollars, abs=0.005), key
    assert frame.attrs["total"] == pytest.approx(-91.70, abs=0.005)
    assert abs(frame.attrs["check"]) < 0.005
    assert frame.loc["stop", "trades"] == 1 and frame.loc["credits", "trades"] == 3
    # per contract traded: 6 contracts
    assert frame.loc["credits", "per_contract"] == pytest.approx(97.50)


def test_cash_interest_is_replayed_from_the_flows_by_hand() -> None:
    """Rate 2.52 %: cash grows by g = 1.0252 ** (1/252) a day before the day's flows."""
    g = 1.0252 ** (1 / 252)
    # entry fees on the entry day (A 2.60, B 1.30, C 3.90), the rest of the P&L on the exit day
    flows = [-2.60, -1.30, 124.80 + 2.60 - 3.90, -302.60 + 1.30, 0.0, 86.10 + 3.90, 0.0]
    cash, interest = INITIAL, 0.0
    for d, flow in enumerate(flows):
        if d:
            interest += cash * (g - 1)
            cash *= g
        cash += flow
    # by hand, g - 1 = 9.8766e-5 and the cash after each day's flows is 9997.40, 9997.09,
    # 10121.57, 9821.27, 9822.24, 9913.21: interest 0.98740 + 0.98737 + 0.99966 + 0.97000
    # + 0.97010 + 0.97909 = 5.8936 (to the cent: 5.89)
    assert g - 1 == pytest.approx(9.8766e-5, rel=1e-4)
    result = _result(rate=0.0252, equity=[INITIAL] * 6 + [cash])
    frame = decompose(result).set_index("key")
    assert frame.loc["interest", "dollars"] == pytest.approx(interest, abs=0.005)
    assert interest == pytest.approx(5.89, abs=0.005)
    assert abs(frame.attrs["check"]) < 0.005


def test_lines_that_do_not_add_up_are_refused() -> None:
    bad = _result(equity=[INITIAL] * 6 + [INITIAL - 91.70 + 50.0])
    with pytest.raises(DecompositionError, match="miss the change in equity by \\$50.00"):
        decompose(bad)


def test_held_to_expiry_exits_stops_years_and_regimes_by_hand() -> None:
    sheet = tear_sheet(_result(), "hand", labels=pd.Series("calm", index=DATES))
    held = sheet.held.set_index("policy")
    # A: (1.00 - min(max(107 - 105, 0), 5)) x 200 - 2.60 = -202.60; B: (2.00 - 3) x 100 - 1.30
    assert held.loc["held to expiry", "pnl"] == pytest.approx(-202.60 - 101.30 + 86.10)
    assert held.loc["as traded", "pnl"] == pytest.approx(-91.70)
    assert held.loc["held to expiry", "win_rate"] == pytest.approx(1 / 3)
    stops = sheet.stops
    assert stops["trades"] == 1 and stops["share"] == pytest.approx(1 / 3)
    assert stops["at_stop_per_contract"] == pytest.approx(-252.60)  # 1.25 x 2.00 x 100 + fees
    assert stops["filled_per_contract"] == pytest.approx(-302.60)
    exits = sheet.exits.set_index("exit_reason")
    assert exits.loc["profit_target", "per_contract"] == pytest.approx(62.40)
    year = sheet.yearly.iloc[0]
    assert (year["trades"], year["win_rate"]) == (3, pytest.approx(2 / 3))
    regimes = sheet.by_regime.set_index("regime")
    assert regimes.loc["storm", "pnl"] == pytest.approx(-302.60)
    assert regimes.loc["calm", "trades"] == 2
    assert regimes.loc["calm", "days"] == 6
    answer = sheet.answer()
    assert "lost $92" in answer and "33% of trades at −$303 a contract" in answer
    assert "at the stop would have cost −$253" in answer


@pytest.fixture(scope="module")
def spx() -> tuple[MarketPanel, pd.DataFrame]:
    from research.backtest.service import load_panel
    from research.optimize.service import regimes_for

    panel, _, _ = load_panel(["SPX", "IXIC"], start="2006-01-01", end="2012-12-31")
    return panel, regimes_for("bull_bear_vol", ["SPX", "IXIC"])


@pytest.mark.parametrize("timing", ["close", "next_open"])
def test_lines_add_up_on_real_backtests(spx: tuple[MarketPanel, pd.DataFrame], timing: str) -> None:
    """The kernels record the mids behind every fill (the shared-path engine records the same
    bits: ``test_shared_paths``), so the lines add up to the equity curve's change."""
    from research.optimize.service import DEFAULT_BASE

    panel, labels = spx
    cfg = DEFAULT_BASE.replace(**{"fills.timing": timing, "rate": 0.03})
    configs = [cfg, cfg.replace(**{"spread.stop_loss_pct": 200.0})]
    for result in run_backtests(panel, configs, labels):
        frame = decompose(result)
        assert abs(frame.attrs["check"]) < 1e-4
        assert frame.set_index("key").loc["credits", "trades"] == len(result.trades) > 100
    # the bid/ask paid at entry is the model's half spread (5 % of mid, at least a $0.05 tick)
    t = run_backtests(panel, [cfg], labels)[0].trades
    entry_half = t["entry_mid"] - t["credit"]
    assert np.allclose(entry_half, np.maximum(0.05 * t["entry_mid"], 0.05), atol=1e-9)


def test_lines_add_up_on_chain_prices(chain_panel: MarketPanel) -> None:
    fills = dataclasses.replace(BacktestConfig().fills, missing_quote="close")
    (result,) = run_backtests(chain_panel, [BacktestConfig(rate=0.02, fills=fills)])
    frame = decompose(result).set_index("key")
    assert abs(frame.attrs["check"]) < 1e-4
    assert frame.loc["other", "trades"] > 0  # missing-quote closes
    half = result.trades["entry_mid"] - result.trades["credit"]
    assert (half > 0).all()  # half of the quoted bid/ask at chain_fill 0.5


def test_idle_since_reads_the_final_cash_stretch() -> None:
    rate = 0.02
    g = 1.02 ** (1 / 252)
    days = pd.bdate_range("2010-01-01", periods=400)
    values = [1e6]
    for d in range(1, 400):
        values.append(values[-1] * (1.001 if d < 200 else g))
    equity = pd.Series(values, index=days)
    idle = idle_since(equity, rate)
    assert idle is not None and idle.since == days[200] and idle.days == 200
    assert "stopped trading on" in idle.text() and "50% of the period" in idle.text()
    assert idle_since(equity, rate, min_days=201) is None
    assert idle_since(equity, 0.03) is None  # another rate: never cash
    assert cash_days(equity, rate).sum() == 200
    assert cash_share(equity, rate, days[150], days[249]) == pytest.approx(0.5)
    assert math.isnan(
        cash_share(equity, rate, pd.Timestamp("2030-01-01"), pd.Timestamp("2030-02-01"))
    )


def test_a_configuration_that_never_trades_earns_cash_interest_only() -> None:
    from tests.backtest.test_engine import make_panel

    panel = make_panel(np.full(300, 100.0), ivp=50.0)
    cfg = BacktestConfig(rate=0.02).replace(**{"spread.min_iv_percentile": 90.0})
    (result,) = run_backtests(panel, [cfg])
    sheet = tear_sheet(result, "idle")
    assert len(result.trades) == 0
    frame = sheet.decomposition.set_index("key")
    assert frame.loc["credits", "dollars"] == 0.0
    assert frame.loc["interest", "dollars"] == pytest.approx(sheet.total, abs=0.005)
    assert sheet.total == pytest.approx(1e6 * (1.02 ** (299 / 252) - 1), rel=1e-9)
    assert sheet.answer() == "idle: no trade in the period; the account earned cash interest only."
    assert sheet.idle is not None and sheet.idle.since == panel.dates[1]
