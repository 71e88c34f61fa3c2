"""Paper trading against the backtest: a faithful log passes every check, each planted deviation
(slippage, missed entries, a losing regime) is caught by its check, the graduation rule on
hand cases, the CLI on a user's file, and the false-alarm rate over repeated faithful logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.backtest.market_panel import MarketPanel
from research.backtest.paper import Check, PaperComparison, compare_paper, graduation
from research.backtest.paper_sample import sample_paper_log
from research.backtest.run import BacktestResult, run_backtest
from research.backtest.spreads import BacktestConfig
from research.data.contracts import validate
from research.testing.cli import run_cli

CFG = BacktestConfig()
START, END = pd.Timestamp("2017-09-01"), pd.Timestamp("2018-06-29")


@pytest.fixture(scope="module")
def market() -> tuple[MarketPanel, pd.DataFrame]:
    from research.backtest.service import load_panel, regime_labels

    panel, bars, iv = load_panel(["SPX"], start="2011-01-01", end="2018-12-31")
    return panel, regime_labels("bull_bear_vol", bars, iv)


def _runs(
    market: tuple[MarketPanel, pd.DataFrame], start: pd.Timestamp
) -> tuple[BacktestResult, BacktestResult]:
    panel, labels = market
    cut = int(panel.dates.searchsorted(start))
    history = run_backtest(panel.slice(slice(0, cut)), CFG, labels)
    window = run_backtest(panel.slice(slice(cut, len(panel.dates))), CFG, labels)
    return history, window


@pytest.fixture(scope="module")
def runs(market: tuple[MarketPanel, pd.DataFrame]) -> tuple[BacktestResult, BacktestResult]:
    return _runs(market, START)


def _compare(
    market: tuple[MarketPanel, pd.DataFrame],
    runs: tuple[BacktestResult, BacktestResult],
    start: pd.Timestamp = START,
    end: pd.Timestamp = END,
    **deviations: object,
) -> PaperComparison:
    history, window = runs
    log = sample_paper_log(
        window.trades, start=start, end=end, assumed_fill=1.0, stop_loss=1.25, **deviations
    )  # type: ignore[arg-type]
    return compare_paper(
        validate("paper_trades", log),
        window.trades,
        history.trades,
        market[0].dates,
        profit_target=0.65,
        stop_loss=1.25,
        assumed_fill=1.0,
        screened=window.counters,
    )


def _status(c: PaperComparison) -> dict[str, str]:
    return {check.name: check.status for check in c.checks}


def test_a_faithful_log_passes_every_check(
    market: tuple[MarketPanel, pd.DataFrame], runs: tuple[BacktestResult, BacktestResult]
) -> None:
    c = _compare(market, runs)
    status = _status(c)
    assert not [n for n, s in status.items() if s in ("warn", "fail")], c.table()
    for name in ("idle days", "matched P&L", "win rate", "mean P&L a contract", "slippage"):
        assert status[name] == "ok", name
    assert c.verdict == "go to 50%" and len(c.paper_only) == 0
    # every paper trade is the backtest's trade of the same days
    assert len(c.matched) == len(c.paper) > 40
    window = runs[1].trades
    assert len(c.backtest_only) == int(
        ((window["entry_date"] >= START) & (window["entry_date"] <= END)).sum()
    ) - len(c.matched)


def test_slippage_is_caught(
    market: tuple[MarketPanel, pd.DataFrame], runs: tuple[BacktestResult, BacktestResult]
) -> None:
    c = _compare(market, runs, slippage=0.3)
    slip = next(x for x in c.checks if x.name == "slippage")
    assert slip.status == "fail" and slip.value == pytest.approx(1.3, abs=0.01)
    assert c.verdict == "stop and investigate" and "slippage" in c.reason
    assert _status(c)["matched P&L"] == "fail"  # the lower credits cost on every trade


def test_missed_entries_are_caught_and_listed(
    market: tuple[MarketPanel, pd.DataFrame], runs: tuple[BacktestResult, BacktestResult]
) -> None:
    c = _compare(market, runs, missed_days=6)
    idle = next(x for x in c.checks if x.name == "idle days")
    assert idle.status == "fail" and idle.value >= 5
    skipped = pd.DatetimeIndex(c.backtest_only["entry_date"]).unique()
    assert len(skipped) >= 6 and c.verdict == "stop and investigate"
    assert _status(c)["matched P&L"] == "ok"  # what it did trade, it traded as the backtest


def test_a_regime_that_loses_live_is_caught(
    market: tuple[MarketPanel, pd.DataFrame], runs: tuple[BacktestResult, BacktestResult]
) -> None:
    window = runs[1].trades
    inside = window.loc[(window["entry_date"] >= START) & (window["entry_date"] <= END)]
    regime = str(inside["regime"].value_counts().index[0])
    c = _compare(market, runs, losing_regime=regime)
    status = _status(c)
    assert status[f"regime {regime}"] == "fail"
    assert status["matched P&L"] == "fail"
    assert c.verdict == "stop and investigate"
    others = [n for n in status if n.startswith("regime ") and n != f"regime {regime}"]
    assert all(status[n] != "fail" for n in others)


def _check(name: str, status: str) -> Check:
    nan = float("nan")
    return Check(name, "weekly", status, nan, nan, nan, nan, nan, "")


def test_graduation_rule() -> None:
    ok = [_check("win rate", "ok"), _check("slippage", "untested")]
    assert graduation(ok, 30, 40) == ("go to 50%", "the paper account tracks the backtest")
    assert graduation(ok, 15, 40)[0] == "keep paper"  # under a month
    assert graduation(ok, 30, 10)[0] == "keep paper"  # under 20 closed trades
    assert graduation([*ok, _check("idle days", "warn")], 30, 40) == (
        "keep paper",
        "warnings: idle days",
    )
    assert graduation([*ok, _check("equity band", "fail")], 5, 3)[0] == "stop and investigate"
    assert graduation(ok, 30, 40, stage="half", days_at_stage=10)[0] == "go to 100%"
    assert graduation(ok, 30, 40, stage="half", days_at_stage=9)[0] == "go to 50%"
    with pytest.raises(ValueError, match="stage"):
        graduation(ok, 30, 40, stage="live")


def test_false_alarms_over_repeated_faithful_logs(
    market: tuple[MarketPanel, pd.DataFrame],
) -> None:
    """48 logs that trade like the backtest up to realistic noise — each fill's share of the
    half spread drawn around the assumed one (sd 0.15), 5 % of entries missed at random — over
    12 four-month windows 2014-2018, 4 noise draws each. The rule stops fewer than 10 % of them
    (its checks fail at p < 0.01 in the harmful direction) and no check fails more than 5 %."""
    starts = pd.date_range("2014-01-01", "2018-01-01", periods=12).normalize()
    verdicts: list[str] = []
    fails: dict[str, int] = {}
    for start in starts:
        first = market[0].dates[market[0].dates.searchsorted(start)]
        runs = _runs(market, first)
        for seed in range(4):
            c = _compare(
                market,
                runs,
                first,
                first + pd.DateOffset(months=4),
                fill_noise=0.15,
                miss_share=0.05,
                seed=seed,
            )
            verdicts.append(c.verdict)
            for check in c.checks:
                fails[check.name] = fails.get(check.name, 0) + (check.status == "fail")
    n = len(verdicts)
    stops = sum(v == "stop and investigate" for v in verdicts)
    assert n == 48 and stops / n < 0.10, (stops, fails)
    assert max(fails.values()) / n <= 0.05, fails
    assert sum(v == "go to 50%" for v in verdicts) / n > 0.5  # the rule does let them graduate


def test_cli_compares_a_users_log(
    market: tuple[MarketPanel, pd.DataFrame],
    runs: tuple[BacktestResult, BacktestResult],
    tmp_path: Path,
) -> None:
    log = sample_paper_log(
        runs[1].trades, start=START, end=END, assumed_fill=1.0, stop_loss=1.25, missed_days=6
    )
    path = tmp_path / "paper.csv"
    log.to_csv(path, index=False)
    out = run_cli("paper", "compare", "--paper", str(path), "--history-years", "6.6")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Stop and investigate: failed: idle days")
    assert "backtest entries the paper account skipped" in out.stdout
    assert out.stdout.strip().endswith("verdict: stop and investigate")
    bad = log.copy()
    bad.loc[3, "debit"] = -1.0
    bad.to_csv(path, index=False)
    refused = run_cli("paper", "compare", "--paper", str(path))
    assert (
        refused.returncode == 1
        and "debit" in refused.stderr
        and "(row 4; value -1.0)" in refused.stderr
    )
