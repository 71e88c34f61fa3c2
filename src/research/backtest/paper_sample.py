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

import numpy as np
import pandas as pd

__all__ = ["sample_paper_log"]

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
