"""Why a configuration makes or loses money: the tear sheet of one backtest.

``tear_sheet(result)`` takes a ``BacktestResult`` (its equity, trades and configuration) and
returns a ``TearSheet``:

- **P&L decomposition** (``decomposition``): the change in equity split into cash flows that
  add up to it to the cent:

  ========================  ====================================================================
  line                      sum over the closed trades (U = contract multiplier x contracts)
  ========================  ====================================================================
  credits sold              ``entry_mid x U`` — the spreads' mids when they were sold
  profit-target exits       ``-exit_mid x U`` of trades closed at the profit target
  expiries                  ``-exit_mid x U`` of trades settled at expiry (intrinsic value)
  stop-outs at the stop     ``-(stop_debit - (debit - exit_mid)) x U``: bought back exactly at
                            the stop (``stop_debit = (1 + stop_loss_pct / 100) x credit``, the
                            debit at which the stop fires), less the half spread paid on it
                            (in the bid/ask line)
  overshoot past the stop   ``-(debit - stop_debit) x U``: how far past the stop the fill was
                            (stops are checked at the close; the next open with next-open fills)
  other closes              ``-exit_mid x U`` of trades closed at the end of the data or for a
                            missing quote
  bid/ask paid              ``-((entry_mid - credit) + (debit - exit_mid)) x U``
  fees                      entry and exit fees (``2 x fee x contracts`` per fill; none at
                            expiry)
  cash interest             interest earned on the account's cash (recomputed day by day from
                            the trades' cash flows, not taken as a residual)
  ========================  ====================================================================

  ``check`` is the change in equity minus the sum of the lines (zero to rounding: a test
  holds it to the cent on a hand-made case, and the function raises when it exceeds a cent per
  trade).
- **Years** (``yearly``): return and drawdown (``metrics.yearly_returns``), trades closed, win
  rate and P&L per calendar year of the exit.
- **Exits** (``exits``): per exit reason, trades, share, P&L and mean P&L a contract; and
  ``stops``: the stop-outs' mean loss a contract had they filled exactly at the stop
  (``stop_loss_pct`` x credit, fees included) and as filled.
- **Held to expiry** (``held``): the same entries held to their expiry instead (settled at
  intrinsic value from the settlement day's close, or open for AM-settled monthlies; entry fees
  only), for the trades whose expiry lies inside the data — the exits' contribution.
- **By regime** (``by_regime``): trades by their entry day's label (win rate, P&L, P&L a
  contract) and, when day labels are given, the account's daily returns by the label in force
  (the previous day's: the label known when the position was held overnight).
- **Ruin and idleness** (``idle``, ``backtest.activity``): the date the configuration stopped
  trading, if it did.
- **Standard statistics** (``stats``) from empyrical-reloaded: annual return, volatility,
  Sharpe and Sortino ratios on returns in excess of the cash rate, maximum drawdown, Calmar.

Only closed trades count; the engines close every open spread on the data's last day (exit
reason ``end_of_data``), so the lines cover the whole curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from research.backtest.activity import Idle, idle_since
from research.backtest.metrics import PERIODS_PER_YEAR, drawdown_series, yearly_returns
from research.exceptions import ResearchError

if TYPE_CHECKING:
    from research.backtest.run import BacktestResult

__all__ = [
    "LINES",
    "TearSheet",
    "comparison",
    "decompose",
    "money",
    "parts_table",
    "tear_sheet",
]

LINES: tuple[tuple[str, str], ...] = (
    ("credits", "Credits sold (at mid)"),
    ("profit_target", "Bought back at the profit target (at mid)"),
    ("expiry", "Settled at expiry"),
    ("stop", "Stop-outs at the stop"),
    ("overshoot", "Overshoot past the stop"),
    ("other", "Closed at the end of the data or for a missing quote (at mid)"),
    ("bid_ask", "Bid/ask paid"),
    ("fees", "Fees"),
    ("interest", "Cash interest"),
)
"""The decomposition's lines in order: key, label."""
_CENT = 0.01


def money(value: float, sign: bool = False) -> str:
    """Dollars for a sentence: "−$1,234", "$56" (``sign``: "+$56")."""
    if not math.isfinite(value):
        return "–"
    if value < 0:
        return f"−${abs(value):,.0f}"
    return f"{'+' if sign else ''}${value:,.0f}"


class DecompositionError(ResearchError, ValueError):
    """The decomposition does not add up to the change in equity."""


@dataclass(frozen=True)
class TearSheet:
    """One backtest explained (module docstring)."""

    name: str
    equity: pd.Series = field(repr=False)
    drawdown: pd.Series = field(repr=False)
    decomposition: pd.DataFrame
    yearly: pd.DataFrame
    exits: pd.DataFrame
    stops: dict[str, float]
    held: pd.DataFrame
    by_regime: pd.DataFrame
    idle: Idle | None
    stats: dict[str, float]
    labels: pd.Series | None = field(default=None, repr=False)
    """Day labels for shading the equity curve (None: not given)."""

    @property
    def total(self) -> float:
        """Change in equity from the initial account ($)."""
        return float(self.decomposition.attrs["total"])

    def line(self, key: str) -> float:
        """One decomposition line in $."""
        lines = self.decomposition.set_index("key")["dollars"]
        return float(lines[key])

    def answer(self) -> str:
        """The sheet in two sentences, worded from the numbers."""
        n = int(self.exits["trades"].sum())
        if n == 0:
            return f"{self.name}: no trade in the period; the account earned cash interest only."
        total = self.total
        verb = "made" if total > 0 else "lost"
        per = self.decomposition.attrs["per_contract"]
        parts = [
            f"{self.name} {verb} {money(abs(total))} "
            f"({self.stats['annual_return']:+.1%} a year) over {n:,} trades, "
            f"{money(per, sign=True)} a contract on average.".replace("(-", "(−")
        ]
        costs = {
            "the stop-outs (bought back at the stop)": self.line("stop"),
            "the overshoot past the stops": self.line("overshoot"),
            "the bid/ask paid": self.line("bid_ask"),
            "fees": self.line("fees"),
        }
        worst = min(costs, key=lambda k: costs[k])
        parts.append(
            f"Credits sold brought {money(self.line('credits'))}; the largest cost was "
            f"{worst} ({money(costs[worst])})."
        )
        if self.stops["trades"] > 0:
            parts.append(
                f"Stops closed {self.stops['share']:.0%} of trades at "
                f"{money(self.stops['filled_per_contract'])} a contract where a fill exactly "
                f"at the stop would have cost {money(self.stops['at_stop_per_contract'])}."
            )
        if self.idle is not None:
            parts.append(f"It {self.idle.text()}.")
        return " ".join(parts)

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary (for the findings page)."""
        return {
            "name": self.name,
            "total": self.total,
            "trades": int(self.exits["trades"].sum()),
            "lines": {
                str(k): float(v)
                for k, v in zip(
                    self.decomposition["key"], self.decomposition["dollars"], strict=True
                )
            },
            "stats": dict(self.stats),
            "stops": dict(self.stops),
            "held_to_expiry": self.held.set_index("policy")["pnl"].to_dict()
            if len(self.held)
            else {},
            "idle_since": None if self.idle is None else f"{self.idle.since:%Y-%m-%d}",
            "answer": self.answer(),
        }


def _units(result: BacktestResult, tickers: pd.Series) -> np.ndarray:
    mult = {t: result.config.convention(t).multiplier for t in result.tickers}
    return tickers.map(mult).to_numpy(dtype=float)


def _fees(result: BacktestResult, trades: pd.DataFrame) -> np.ndarray:
    """Fees of each trade: ``2 x fee x contracts`` at entry and again at an early exit."""
    fee = trades["ticker"].map(
        {t: result.config.convention(t).fee_per_contract for t in result.tickers}
    )
    fills = np.where(trades["exit_reason"].to_numpy() == "expiration", 1.0, 2.0)
    fees: np.ndarray = (
        2.0 * fee.to_numpy(dtype=float) * trades["contracts"].to_numpy(dtype=float)
    ) * fills
    return fees


def _interest(result: BacktestResult, trades: pd.DataFrame, fees: np.ndarray) -> float:
    """Interest on the account's cash, replayed day by day from the trades' cash flows.

    The account's cash (``engine``: realized equity) grows by the daily cash rate, then takes
    the day's flows: entry fees on the entry day, the rest of the trade's P&L on its exit day.
    """
    dates = pd.DatetimeIndex(result.equity.index)
    flows = np.zeros(len(dates))
    entry_fee = np.where(trades["exit_reason"].to_numpy() == "expiration", fees, fees / 2.0)
    np.add.at(flows, dates.get_indexer(pd.DatetimeIndex(trades["entry_date"])), -entry_fee)
    np.add.at(
        flows,
        dates.get_indexer(pd.DatetimeIndex(trades["exit_date"])),
        trades["pnl"].to_numpy(dtype=float) + entry_fee,
    )
    growth = (1.0 + result.config.rate) ** (1.0 / PERIODS_PER_YEAR)
    cash = float(result.config.initial_equity)
    interest = 0.0
    for d in range(len(dates)):
        if d > 0:
            earned = cash * (growth - 1.0)
            interest += earned
            cash += earned
        cash += flows[d]
    return interest


def decompose(result: BacktestResult) -> pd.DataFrame:
    """The P&L decomposition of a backtest (module docstring), one row per line.

    Returns
    -------
    pd.DataFrame
        Columns ``key``, ``line`` (label), ``trades`` (trades in the line, NaN for interest),
        ``dollars``, ``per_contract`` ($ per contract traded), ``share`` (of the credits
        sold); ``attrs``: ``total`` (change in equity), ``check`` (total minus the lines),
        ``contracts``, ``per_contract`` (total per contract).

    Raises
    ------
    DecompositionError
        The lines miss the change in equity by more than a cent per trade.
    """
    t = result.trades
    if t["entry_mid"].isna().any() or t["exit_mid"].isna().any():
        raise DecompositionError("trades without the mids behind their fills (entry_mid/exit_mid)")
    units = _units(result, t["ticker"]) * t["contracts"].to_numpy(dtype=float)
    credit, debit = t["credit"].to_numpy(float), t["debit"].to_numpy(float)
    mid_in, mid_out = t["entry_mid"].to_numpy(float), t["exit_mid"].to_numpy(float)
    reason = t["exit_reason"].to_numpy()
    sl = result.config.spread.stop_loss_pct / 100.0
    stop_debit = (1.0 + sl) * credit
    is_pt, is_exp, is_sl = reason == "profit_target", reason == "expiration", reason == "stop_loss"
    other = ~(is_pt | is_exp | is_sl)
    fees = _fees(result, t)
    interest = _interest(result, t, fees)
    values = {
        "credits": (len(t), float((mid_in * units).sum())),
        "profit_target": (int(is_pt.sum()), -float((mid_out * units)[is_pt].sum())),
        "expiry": (int(is_exp.sum()), -float((mid_out * units)[is_exp].sum())),
        "stop": (int(is_sl.sum()), -float(((stop_debit - (debit - mid_out)) * units)[is_sl].sum())),
        "overshoot": (int(is_sl.sum()), -float(((debit - stop_debit) * units)[is_sl].sum())),
        "other": (int(other.sum()), -float((mid_out * units)[other].sum())),
        "bid_ask": (len(t), -float((((mid_in - credit) + (debit - mid_out)) * units).sum())),
        "fees": (len(t), -float(fees.sum())),
        "interest": (math.nan, interest),
    }
    contracts = float(t["contracts"].sum())
    credits = values["credits"][1]
    frame = pd.DataFrame(
        [
            {
                "key": key,
                "line": label,
                "trades": values[key][0],
                "dollars": values[key][1],
                "per_contract": values[key][1] / contracts if contracts else math.nan,
                "share": values[key][1] / credits if credits else math.nan,
            }
            for key, label in LINES
        ]
    )
    total = float(result.equity.iloc[-1] - result.config.initial_equity)
    check = total - float(frame["dollars"].sum())
    if abs(check) > _CENT * max(len(t), 1):
        raise DecompositionError(
            f"the P&L lines miss the change in equity by ${check:,.2f} over {len(t)} trades"
        )
    frame.attrs.update(
        total=total,
        check=check,
        contracts=contracts,
        per_contract=float(t["pnl"].sum()) / contracts if contracts else math.nan,
    )
    return frame


def _settlement(result: BacktestResult, trades: pd.DataFrame) -> np.ndarray:
    """Each trade's value at its expiry (a share; NaN when the expiry lies past the data)."""
    from research.backtest.kernels import intrinsic, monthly_on

    panel = result.panel
    dates = pd.DatetimeIndex(panel.dates)
    day_ord = panel.day_ordinals
    opens = panel.opens()
    call = result.config.spread.strategy == "bear_call"
    col = {t: j for j, t in enumerate(panel.tickers)}
    out = np.full(len(trades), np.nan)
    columns = zip(
        pd.DatetimeIndex(trades["expiration"]),
        trades["ticker"].astype(str),
        trades["short_strike"].to_numpy(float),
        trades["long_strike"].to_numpy(float),
        strict=True,
    )
    for n, (expiry, ticker, ks, kl) in enumerate(columns):
        if expiry > dates[-1]:
            continue
        d = int(dates.searchsorted(expiry, side="right")) - 1
        j = col[ticker]
        am = result.config.convention(ticker).am_settled and monthly_on(
            day_ord, int(expiry.to_datetime64().astype("datetime64[D]").astype(np.int64))
        )
        spot = opens[d, j] if am else panel.close[d, j]
        out[n] = intrinsic(float(spot), float(ks), float(kl), call)
    return out


def _held(result: BacktestResult, fees: np.ndarray) -> pd.DataFrame:
    """The trades as exited against the same entries held to expiry."""
    t = result.trades
    settle = _settlement(result, t)
    known = ~np.isnan(settle)
    units = _units(result, t["ticker"]) * t["contracts"].to_numpy(dtype=float)
    entry_fee = np.where(t["exit_reason"].to_numpy() == "expiration", fees, fees / 2.0)
    held_pnl = (t["credit"].to_numpy(float) - settle) * units - entry_fee
    contracts = t["contracts"].to_numpy(dtype=float)
    rows = []
    for policy, pnl in (("as traded", t["pnl"].to_numpy(float)), ("held to expiry", held_pnl)):
        p, c = pnl[known], contracts[known]
        rows.append(
            {
                "policy": policy,
                "trades": int(known.sum()),
                "win_rate": float((p > 0).mean()) if len(p) else math.nan,
                "pnl": float(p.sum()),
                "per_contract": float(p.sum() / c.sum()) if c.sum() else math.nan,
                "worst_per_contract": float((p / c).min()) if len(p) else math.nan,
            }
        )
    frame = pd.DataFrame(rows)
    frame.attrs["unknown"] = int((~known).sum())
    return frame


def _yearly(result: BacktestResult) -> pd.DataFrame:
    years = yearly_returns(result.equity)
    t = result.trades
    by = t.assign(year=pd.DatetimeIndex(t["exit_date"]).year, win=t["pnl"] > 0).groupby("year")
    trades = pd.DataFrame(
        {
            "trades": by.size(),
            "win_rate": by["win"].mean(),
            "pnl": by["pnl"].sum(),
        }
    )
    out = years.merge(trades, left_on="year", right_index=True, how="left")
    out["trades"] = out["trades"].fillna(0).astype("int64")
    out["pnl"] = out["pnl"].fillna(0.0)
    return out


def _exits(result: BacktestResult) -> tuple[pd.DataFrame, dict[str, float]]:
    t = result.trades
    n = len(t)
    by = t.groupby("exit_reason")
    exits = pd.DataFrame(
        {
            "trades": by.size(),
            "pnl": by["pnl"].sum(),
            "contracts": by["contracts"].sum(),
        }
    )
    exits["share"] = exits["trades"] / n if n else math.nan
    exits["per_contract"] = exits["pnl"] / exits["contracts"]
    exits = exits.reset_index().sort_values("trades", ascending=False, ignore_index=True)
    is_stop = (t["exit_reason"] == "stop_loss").to_numpy()
    stops = t[is_stop]
    units = _units(result, stops["ticker"])
    sl = result.config.spread.stop_loss_pct / 100.0
    contracts = float(stops["contracts"].sum())
    # a fill exactly at the stop: the loss of sl x credit, and the same fees
    at_stop = float(
        (-sl * stops["credit"].to_numpy(float) * units * stops["contracts"]).sum()
        - _fees(result, t)[is_stop].sum()
    )
    info = {
        "trades": float(len(stops)),
        "share": len(stops) / n if n else math.nan,
        "credit_per_contract": float((stops["credit"] * units * stops["contracts"]).sum())
        / contracts
        if contracts
        else math.nan,
        "at_stop_per_contract": at_stop / contracts if contracts else math.nan,
        "filled_per_contract": float(stops["pnl"].sum()) / contracts if contracts else math.nan,
    }
    info["overshoot_ratio"] = (
        info["filled_per_contract"] / info["at_stop_per_contract"] - 1.0
        if contracts and info["at_stop_per_contract"]
        else math.nan
    )
    return exits[["exit_reason", "trades", "share", "pnl", "per_contract"]], info


def _by_regime(result: BacktestResult, labels: pd.Series | None) -> pd.DataFrame:
    t = result.trades.assign(win=lambda f: f["pnl"] > 0)
    t["regime"] = t["regime"].fillna("(no label)")
    by = t.groupby("regime")
    frame = pd.DataFrame(
        {
            "trades": by.size(),
            "win_rate": by["win"].mean(),
            "pnl": by["pnl"].sum(),
            "per_contract": by["pnl"].sum() / by["contracts"].sum(),
        }
    )
    if labels is not None:
        returns = result.equity.pct_change().iloc[1:]
        held = labels.reindex(result.equity.index).shift(1).iloc[1:]
        days = pd.DataFrame({"r": returns.to_numpy(), "regime": held.to_numpy()}).dropna()
        g = days.groupby("regime")["r"]
        frame = frame.join(
            pd.DataFrame(
                {
                    "days": g.size(),
                    "annual_return": g.mean() * PERIODS_PER_YEAR,
                    "growth": g.apply(lambda r: float(np.prod(1.0 + r) - 1.0)),
                }
            ),
            how="outer",
        )
    frame.index.name = "regime"
    return frame.reset_index()


def _stats(result: BacktestResult) -> dict[str, float]:
    import empyrical as ep

    returns = result.equity.pct_change().iloc[1:]
    rf = (1.0 + result.config.rate) ** (1.0 / PERIODS_PER_YEAR) - 1.0
    return {
        "annual_return": float(ep.annual_return(returns)),
        "annual_volatility": float(ep.annual_volatility(returns)),
        "sharpe": float(ep.sharpe_ratio(returns, risk_free=rf)),
        "sortino": float(ep.sortino_ratio(returns, required_return=rf)),
        "max_drawdown": float(ep.max_drawdown(returns)),
        "calmar": float(ep.calmar_ratio(returns)),
    }


def tear_sheet(
    result: BacktestResult, name: str = "the configuration", labels: pd.Series | None = None
) -> TearSheet:
    """The tear sheet of one backtest (module docstring).

    Parameters
    ----------
    result
        A backtest with its trades (``run_backtest``/``run_backtests``).
    name
        How pages call the configuration ("the base configuration", "prod", ...).
    labels
        Regime label per day (indexed by date) to shade the equity curve and split its daily
        returns; the trades' own entry labels are used either way.
    """
    fees = _fees(result, result.trades)
    exits, stops = _exits(result)
    return TearSheet(
        name=name,
        equity=result.equity,
        drawdown=drawdown_series(result.equity),
        decomposition=decompose(result),
        yearly=_yearly(result),
        exits=exits,
        stops=stops,
        held=_held(result, fees),
        by_regime=_by_regime(result, labels),
        idle=idle_since(result.equity, result.config.rate),
        stats=_stats(result),
        labels=labels,
    )


def comparison(sheets: Sequence[TearSheet]) -> pd.DataFrame:
    """One row per sheet: the numbers that compare configurations on a page.

    Columns ``configuration, trades, annual_return, max_drawdown`` and the decomposition in
    groups: ``credits_sold``, ``stop_outs`` (at the stop and the overshoot), ``overshoot``,
    ``costs`` (bid/ask and fees), ``interest``, ``change`` (in equity), ``stopped_trading``.
    """
    rows = []
    for s in sheets:
        rows.append(
            {
                "configuration": s.name,
                "trades": int(s.exits["trades"].sum()),
                "annual_return": s.stats["annual_return"],
                "max_drawdown": s.stats["max_drawdown"],
                "credits_sold": s.line("credits"),
                "stop_outs": s.line("stop") + s.line("overshoot"),
                "overshoot": s.line("overshoot"),
                "costs": s.line("bid_ask") + s.line("fees"),
                "interest": s.line("interest"),
                "change": s.total,
                "stopped_trading": None if s.idle is None else s.idle.since,
            }
        )
    return pd.DataFrame(rows)


PARTS: tuple[str, ...] = ("decomposition", "yearly", "exits", "held", "by_regime")
"""The per-sheet tables ``parts_table`` can put together."""


def parts_table(sheets: Mapping[str, Sequence[TearSheet]], part: str) -> pd.DataFrame:
    """One of the sheets' tables (``decomposition``, ``yearly``, ``exits``, ``held``,
    ``by_regime``) for every sheet, one under the other, with ``tickers`` and ``configuration``
    columns first (the decomposition without its ``key`` column)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    frames = [
        getattr(s, part)
        .drop(columns=["key"], errors="ignore")
        .assign(tickers=t, configuration=s.name)
        for t, group in sheets.items()
        for s in group
    ]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    first = ["tickers", "configuration"]
    table: pd.DataFrame = out[[*first, *[c for c in out.columns if c not in first]]]
    return table
