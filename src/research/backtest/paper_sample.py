"""A SYNTHETIC paper-trading log made from the engine's own trades, with planted deviations:
what the paper-tracking checks (``backtest.paper``) are shown on when the user has no log yet,
and what their tests plant.

Each backtest trade of the chosen window becomes a paper row: ``entry_time`` the entry day at
10:35, ``exit_time`` the exit day at 15:45, the same strikes, expiration, contracts, exit reason
and regime; ``entry_mid`` the backtest's mid at entry and ``entry_bid`` the spread's natural
price ``mid - H``, where ``H = (mid - credit) / assumed_fill`` is the half spread the backtest's
fill implies. A faithful log (every deviation off) fills exactly like the backtest. Deviations,
each off by default:

- ``slippage``: the credit is ``slippage x H`` lower (fills worse than assumed);
- ``missed_days``: every entry of that many consecutive trading days (from the window's middle)
  is missing — the live system did not trade;
- ``losing_regime``: every trade entered in that regime loses its maximum (debit = the
  spread's width, exit reason ``stop_loss``), as if the live system's stops failed there.

Realistic noise that is *not* a deviation (for measuring false alarms): ``fill_noise``, each
fill's share of the half spread drawn around the assumed one (normal, that standard deviation);
``miss_share``, entries missed at random (each with that probability).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.backtest.spreads import BacktestConfig

__all__ = ["LABEL", "PaperInput", "paper_or_sample", "sample_for", "sample_paper_log"]

LABEL = "SYNTHETIC paper log (the engine's own trades with planted deviations), not an account"


def sample_paper_log(
    trades: pd.DataFrame,
    *,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    assumed_fill: float,
    stop_loss: float,
    slippage: float = 0.0,
    missed_days: int = 0,
    losing_regime: str | None = None,
    fill_noise: float = 0.0,
    miss_share: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """``paper_trades`` rows from the backtest ``trades`` entered in ``[start, end]``
    (module docstring); trades still open after ``end`` stay open (no exit, no debit)."""
    if not 0 < assumed_fill <= 1:
        raise ValueError(f"assumed_fill must be in (0, 1], got {assumed_fill}")
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    t = trades.loc[(trades["entry_date"] >= start) & (trades["entry_date"] <= end)].copy()
    if missed_days > 0 and len(t):
        days = pd.DatetimeIndex(sorted(t["entry_date"].unique()))
        first = days[len(days) // 2]
        gone = days[(days >= first)][:missed_days]
        t = t.loc[~t["entry_date"].isin(gone)]
    rng = np.random.default_rng(seed)
    if miss_share > 0:
        t = t.loc[rng.random(len(t)) >= miss_share]
    half = (t["entry_mid"] - t["credit"]) / assumed_fill
    noise = rng.normal(0.0, fill_noise, len(t)) if fill_noise > 0 else 0.0
    credit = (t["credit"] - (slippage + noise) * half).clip(lower=0.01)
    debit = t["debit"].where(t["exit_date"] <= end)
    reason = t["exit_reason"].where(t["exit_date"] <= end)
    if losing_regime is not None:
        lose = (t["regime"] == losing_regime).to_numpy() & debit.notna().to_numpy()
        width = (t["long_strike"] - t["short_strike"]).abs()
        debit = debit.where(~lose, width)
        reason = reason.where(~lose, "stop_loss")
    open_ = t["exit_date"] > end
    out = pd.DataFrame(
        {
            "entry_time": t["entry_date"] + pd.Timedelta(hours=10, minutes=35),
            "exit_time": (t["exit_date"] + pd.Timedelta(hours=15, minutes=45)).where(~open_),
            "underlying": t["ticker"],
            "short_strike": t["short_strike"],
            "long_strike": t["long_strike"],
            "expiration": t["expiration"],
            "contracts": t["contracts"].astype(int),
            "credit": credit.round(4),
            "debit": debit.round(4),
            "entry_mid": t["entry_mid"].round(4),
            "entry_bid": (t["entry_mid"] - half).round(4),
            "exit_reason": reason,
            "regime": t["regime"],
        }
    )
    out.loc[out["debit"].isna(), "exit_reason"] = np.nan
    return out.reset_index(drop=True)


def sample_for(
    tickers: list[str],
    config: BacktestConfig,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    regime_model: str | None = "bull_bear_vol",
    start: str | None = None,
    end: str | None = None,
) -> pd.DataFrame:
    """The page's SYNTHETIC log: the backtest of ``config`` on ``tickers`` started afresh on
    ``start`` (default: four months before the bars' last day) to ``end``, with all three
    deviations planted — fills 25 % of the half spread worse than assumed (with noise), six
    consecutive days of entries missed, and the most traded regime losing the maximum."""
    from research.backtest.run import run_backtest
    from research.backtest.service import load_panel, regime_labels

    panel, bars, iv = load_panel(tickers, bars_path=bars_path, iv_path=iv_path, end=end)
    last = panel.dates[-1]
    first = pd.Timestamp(start) if start is not None else last - pd.DateOffset(months=4)
    cut = int(panel.dates.searchsorted(first))
    labels = regime_labels(regime_model, bars, iv) if regime_model else None
    window = run_backtest(panel.slice(slice(cut, len(panel.dates))), config, labels).trades
    if window.empty:
        raise ValueError(
            f"{', '.join(tickers)}: the backtest made no trade from {first.date()} to "
            f"{last.date()}; choose another window (start, end)"
        )
    regime = window["regime"].value_counts().index[0] if window["regime"].notna().any() else None
    assumed = config.fills.chain_fill if panel.chains is not None else 1.0
    return sample_paper_log(
        window,
        start=panel.dates[cut],
        end=last,
        assumed_fill=assumed,
        stop_loss=config.spread.stop_loss_pct / 100,
        slippage=0.25,
        missed_days=6,
        losing_regime=None if regime is None else str(regime),
        fill_noise=0.1,
    )


@dataclass(frozen=True, eq=False)
class PaperInput:
    """The paper log a page reads: the user's file, or the labelled synthetic sample."""

    log: pd.DataFrame = field(repr=False)
    label: str
    synthetic: bool

    @property
    def tickers(self) -> list[str]:
        return sorted(str(u) for u in self.log["underlying"].unique())


def paper_or_sample(
    paper_path: str | None,
    config: BacktestConfig,
    *,
    tickers: Sequence[str] | None = None,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> PaperInput:
    """The user's ``paper_trades`` file (resolved like every notebook path), or, without one,
    ``sample_for`` on ``tickers`` (default: SPX on the embedded data, else the first symbol of
    ``bars_path``)."""
    if paper_path is not None:
        from research.config import resolve_path
        from research.data.loaders import load

        log = load("paper_trades", resolve_path(paper_path))
        if log.empty:
            raise ValueError(f"{paper_path}: no trades")
        return PaperInput(log, str(paper_path), synthetic=False)
    if tickers is None:
        if bars_path is None:
            tickers = ["SPX"]
        else:
            from research.data import market

            tickers = [str(sorted(market.load_bars(bars_path)["symbol"].unique())[0])]
    log = sample_for(
        list(tickers), config, bars_path=bars_path, iv_path=iv_path, start=start, end=end
    )
    from research.data.contracts import validate

    return PaperInput(validate("paper_trades", log, "synthetic"), LABEL, synthetic=True)
