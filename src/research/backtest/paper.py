"""Paper trading against the validated backtest: does the live system trade the way the backtest
said it would?

The validation plan's last task (monitor paper trading, then graduate to live) as tested checks.
Inputs: the paper account's spreads (``paper_trades`` contract) and a backtest of the same
configuration over the same dates (``backtest.run.BacktestResult``).

**Matching.** A paper trade matches a backtest trade of the same underlying and expiration
entered within ``MATCH_DAYS`` calendar days, short strikes within ``MATCH_STRIKE`` of spot
(nearest first, each used once). The unmatched are listed on both sides: entries the live system
skipped, and entries it added.

**Checks** (``Check``; the plan's daily, weekly and monthly lists). Every comparison of a paper
statistic with the backtest uses the backtest's own sampling distribution *for the paper's
number of trades or days*, resampled in blocks so overlapping trades and persistent days keep
their dependence (``BLOCK_TRADES`` consecutive trades, ``BLOCK_DAYS`` consecutive days, circular):

- daily: the longest run of trading days the backtest entered and the paper did not (``IDLE_WARN``
  / ``IDLE_FAIL`` days); contracts against the backtest's on matched trades; profit-target and stop
  exits against their levels (the realized share of the credit);
- weekly: the win rate and the mean P&L a contract against the backtest's distribution for the
  same number of trades (two-sided); slippage, the paper's credit below the order's mid in dollars
  and, with the spread's natural prices, as a fraction of the half spread against the fill the
  backtest assumes (``chain_fill``), errors clustered by week;
- monthly: the cumulative P&L of one contract a trade against the backtest's block-bootstrap
  band for the same number of days; each regime's mean P&L (at least ``MIN_REGIME_TRADES``
  trades) against the backtest's in that regime, Holm-adjusted across regimes; the trade filter's
  approval rate against its backtest's (binomial).

A check *fails* at p < ``FAIL_P`` in the harmful direction (fewer wins, lower P&L, worse fills,
an equity curve below the band), *warns* at p < ``WARN_P`` either way, and is *untested* with
fewer than ``MIN_TRADES`` trades (or no input for it).

**Graduation** (``graduation``, the plan's step 4, a written rule): any failed check: *stop and
investigate*; fewer than ``MIN_DAYS`` trading days or ``MIN_TRADES`` closed trades, or any
warning: *keep paper*; otherwise *go to 50 %*, and — for an account already at half size for at
least ``HALF_DAYS`` trading days (``stage="half"``) — *go to 100 %*.

No check reads anything after the paper log's last day.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.backtest.run import BacktestResult
from research.backtest.spreads import BacktestConfig
from research.clustered import clustered_test
from research.numbers import money, p_text

__all__ = [
    "Check",
    "PaperComparison",
    "compare_paper",
    "graduation",
    "match_trades",
    "paper_against_backtest",
]

MATCH_DAYS = 1
MATCH_STRIKE = 0.01
BLOCK_TRADES = 5
BLOCK_DAYS = 10
IDLE_WARN, IDLE_FAIL = 3, 5
MIN_TRADES = 20
MIN_DAYS = 21
HALF_DAYS = 10
MIN_REGIME_TRADES = 10
WARN_P, FAIL_P = 0.05, 0.01
REPS = 2000
VERDICTS = ("stop and investigate", "keep paper", "go to 50%", "go to 100%")


@dataclass(frozen=True)
class Check:
    """One check of the paper account against the backtest."""

    name: str
    period: str
    """``daily``, ``weekly`` or ``monthly`` (the plan's lists)."""
    status: str
    """``ok``, ``warn``, ``fail`` or ``untested``; ``info`` for a figure shown for reference
    (the market against the validation history), never part of the verdict."""
    value: float
    expected: float
    low: float
    high: float
    """The backtest's 90 % range for the paper's sample size (NaN where none applies)."""
    p: float
    text: str


def _status(p: float, harmful: bool) -> str:
    if not math.isfinite(p):
        return "untested"
    if p < FAIL_P and harmful:
        return "fail"
    return "warn" if p < WARN_P else "ok"


def _block_means(values: np.ndarray, n: int, block: int, reps: int, seed: int) -> np.ndarray:
    """Means of ``n`` values drawn as circular blocks of ``block`` consecutive values."""
    rng = np.random.default_rng(seed)
    m = len(values)
    blocks = -(-n // block)
    starts = rng.integers(0, m, size=(reps, blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % m
    draws = values[idx.reshape(reps, -1)[:, :n]]
    out: np.ndarray = draws.mean(axis=1)
    return out


def _two_sided(draws: np.ndarray, value: float) -> float:
    # values within a cent of a draw count as ties (a log rounds its prices)
    tie = 0.01 + 1e-9 * abs(value)
    below = (np.sum(draws <= value + tie) + 1) / (len(draws) + 1)
    above = (np.sum(draws >= value - tie) + 1) / (len(draws) + 1)
    return float(min(1.0, 2 * min(below, above)))


def match_trades(
    paper: pd.DataFrame, backtest: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(matched, paper_only, backtest_only)``: ``matched`` has the paper row's columns and
    the backtest trade's as ``bt_<column>`` (module docstring)."""
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    bt = backtest.reset_index(drop=True)
    for i, row in enumerate(paper.reset_index(drop=True).to_dict(orient="records")):
        day = pd.Timestamp(row["entry_time"]).normalize()
        cand = bt.loc[
            (bt["ticker"] == row["underlying"])
            & (bt["expiration"] == row["expiration"])
            & ((bt["entry_date"] - day).abs() <= pd.Timedelta(days=MATCH_DAYS))
            & (
                (bt["short_strike"] - row["short_strike"]).abs()
                <= MATCH_STRIKE * bt["underlying_price"]
            )
        ]
        cand = cand.loc[~cand.index.isin(used)]
        if cand.empty:
            continue
        gap = (cand["entry_date"] - day).abs().dt.days * 1e6 + (
            cand["short_strike"] - row["short_strike"]
        ).abs()
        j = int(gap.idxmin())
        used.add(j)
        pairs.append((i, j))
    p = paper.reset_index(drop=True)
    pi = [a for a, _ in pairs]
    bi = [b for _, b in pairs]
    matched = pd.concat(
        [
            p.loc[pi].reset_index(drop=True),
            bt.loc[bi].add_prefix("bt_").reset_index(drop=True),
        ],
        axis=1,
    )
    return (
        matched,
        p.drop(index=pi).reset_index(drop=True),
        bt.drop(index=bi).reset_index(drop=True),
    )


@dataclass(frozen=True, eq=False)
class PaperComparison:
    """The paper account against the backtest: matches, checks and the graduation verdict."""

    checks: tuple[Check, ...]
    matched: pd.DataFrame = field(repr=False)
    paper_only: pd.DataFrame = field(repr=False)
    backtest_only: pd.DataFrame = field(repr=False)
    paper: pd.DataFrame = field(repr=False)
    band: pd.DataFrame = field(repr=False)
    """Per paper day: ``date, paper`` (cumulative P&L of one contract a trade) and the
    backtest's ``low`` / ``median`` / ``high`` (5 %, 50 %, 95 %) for that many days."""
    trading_days: int
    stage: str
    verdict: str
    reason: str
    notes: tuple[str, ...] = ()
    """Where the backtest's IV came from (``backtest.service.load_panel``'s notes)."""

    def table(self) -> pd.DataFrame:
        """The checks as a table (period, name, status, value, expected, range, p, text)."""
        return pd.DataFrame([c.__dict__ for c in self.checks])

    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def summary(self) -> dict[str, object]:
        """JSON-ready: the verdict, its reason, the counts and every check."""

        def clean(v: object) -> object:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "stage": self.stage,
            "trading_days": self.trading_days,
            "closed_trades": int(self.paper["debit"].notna().sum()),
            "matched": len(self.matched),
            "paper_only": len(self.paper_only),
            "backtest_only": len(self.backtest_only),
            "checks": [{k: clean(v) for k, v in c.__dict__.items()} for c in self.checks],
        }

    def answer(self) -> str:
        """The verdict and the numbers behind it, worded from the checks."""
        bad = [c for c in self.checks if c.status in ("fail", "warn")]
        closed = int(self.paper["debit"].notna().sum())
        head = (
            f"**{self.verdict[0].upper() + self.verdict[1:]}**: {self.reason} "
            f"({closed} closed paper trades over {self.trading_days} trading days; "
            f"{len(self.matched)} matched a backtest trade, {len(self.paper_only)} "
            f"{'was' if len(self.paper_only) == 1 else 'were'} added by the live system, "
            f"{len(self.backtest_only)} backtest "
            f"{'entry was' if len(self.backtest_only) == 1 else 'entries were'} skipped)."
        )
        if not bad:
            return head + " Every check tracks the backtest."
        return (
            head
            + " "
            + " ".join(f"{'Failed' if c.status == 'fail' else 'Warning'} — {c.text}" for c in bad)
        )


def graduation(
    checks: tuple[Check, ...] | list[Check],
    trading_days: int,
    closed_trades: int,
    *,
    stage: str = "paper",
    days_at_stage: int = 0,
) -> tuple[str, str]:
    """``(verdict, reason)`` by the written rule (module docstring).

    Parameters
    ----------
    stage
        ``paper`` (the log is the paper account) or ``half`` (live at 50 % of the validated
        size since ``days_at_stage`` trading days).
    """
    if stage not in ("paper", "half"):
        raise ValueError(f"stage must be paper or half, got {stage!r}")
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        return VERDICTS[0], "failed: " + ", ".join(failed)
    if trading_days < MIN_DAYS or closed_trades < MIN_TRADES:
        return VERDICTS[1], (
            f"too little evidence yet (the rule needs {MIN_DAYS} trading days and "
            f"{MIN_TRADES} closed trades)"
        )
    warned = [c.name for c in checks if c.status == "warn"]
    if warned:
        return VERDICTS[1], "warnings: " + ", ".join(warned)
    if stage == "half":
        if days_at_stage >= HALF_DAYS:
            return VERDICTS[3], f"{days_at_stage} trading days at half size track the backtest"
        return VERDICTS[2], (
            f"stay at half size: {days_at_stage} of the {HALF_DAYS} trading days the rule needs"
        )
    return VERDICTS[2], "the paper account tracks the backtest"


def compare_paper(
    paper: pd.DataFrame,
    backtest: pd.DataFrame,
    history: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    *,
    profit_target: float,
    stop_loss: float,
    assumed_fill: float,
    multiplier: float = 100.0,
    screened: dict[str, int] | None = None,
    expected_approval: float | None = None,
    stage: str = "paper",
    days_at_stage: int = 0,
    horizon_days: int = 30,
    seed: int = 0,
) -> PaperComparison:
    """Every check of the module docstring, and the graduation verdict.

    Parameters
    ----------
    paper
        Validated ``paper_trades`` rows.
    backtest
        The backtest's trades (``BacktestResult.trades``) of the same configuration over the
        paper's days, started like the account on its first day: matched with the paper's.
    history
        The backtest's trades over its validation history before the paper's first day (only
        those closed before it are read): the sampling distributions, one contract a trade.
    calendar
        The backtest's trading days.
    profit_target, stop_loss
        The configuration's levels as fractions of the credit (0.65, 1.25).
    assumed_fill
        The fill the backtest assumes: the share of the half spread given up from the mid.
    screened
        The backtest's screening counters (``position_size_zero``, ``entries``, ...).
    expected_approval
        The trade filter's approval rate in its backtest (None: that check is untested).
    horizon_days
        The strategy's days to expiry: the backtest cannot open a spread whose expiration is
        past its data, so paper trades expiring after the calendar's last day, and the last
        ``horizon_days`` calendar days of entries, are not compared (they await data).
    """
    paper = paper.sort_values("entry_time").reset_index(drop=True)
    first = pd.Timestamp(paper["entry_time"].min()).normalize()
    last_seen = paper[["entry_time", "exit_time"]].max().max()
    last = pd.Timestamp(last_seen).normalize()
    days = calendar[(calendar >= first) & (calendar <= last)]
    # the validated history: trades entered, and closed, before the paper's first day
    past = history.loc[(history["entry_date"] < first) & (history["exit_date"] < first)]
    past = past.assign(gross=(past["credit"] - past["debit"]) * multiplier)
    # what the backtest could have opened: an expiration inside its data
    awaiting = paper.loc[paper["expiration"] > calendar[-1]]
    paper = paper.loc[paper["expiration"] <= calendar[-1]].reset_index(drop=True)
    comparable = min(last, calendar[-1] - pd.Timedelta(days=horizon_days))
    bt = backtest.loc[(backtest["entry_date"] >= first) & (backtest["entry_date"] <= last)]
    # the reference: the backtest of the paper's own days, its trades closed by the last day
    # (P&L before fees, as the paper log records it: credit - debit)
    bt_all = bt.loc[bt["exit_date"] <= last]
    bt_all = bt_all.assign(gross=(bt_all["credit"] - bt_all["debit"]) * multiplier)
    daily_pnl = bt_all.groupby("exit_date")["gross"].sum().reindex(days, fill_value=0.0)
    matched, paper_only, bt_only = match_trades(paper, bt)
    closed = paper.loc[paper["debit"].notna()].copy()
    closed["pnl_pc"] = (closed["credit"] - closed["debit"]) * multiplier
    n = len(closed)
    checks: list[Check] = []

    # daily: idle runs where the backtest traded
    entered_bt = set(pd.DatetimeIndex(bt["entry_date"]).normalize())
    entered_paper = set(pd.DatetimeIndex(paper["entry_time"]).normalize())
    run = longest = 0
    for d in days[days <= comparable]:
        if d in entered_bt and d not in entered_paper:
            run += 1
            longest = max(longest, run)
        elif d in entered_paper:
            run = 0
    status = "fail" if longest >= IDLE_FAIL else "warn" if longest >= IDLE_WARN else "ok"
    checks.append(
        Check(
            "idle days",
            "daily",
            status,
            float(longest),
            0.0,
            math.nan,
            math.nan,
            math.nan,
            f"the longest run of trading days the backtest entered and the paper account did "
            f"not: {longest} (warn at {IDLE_WARN}, fail at {IDLE_FAIL})",
        )
    )
    if screened is not None:
        zero, entries = screened.get("position_size_zero", 0), screened.get("entries", 0)
        blocked = entries == 0 and zero > 0
        checks.append(
            Check(
                "position size zero",
                "daily",
                "fail" if blocked else "ok",
                float(zero),
                0.0,
                math.nan,
                math.nan,
                math.nan,
                f"position_size_zero blocked {zero} entries and {entries} were taken in the "
                "backtest of these dates",
            )
        )
    if len(matched):
        ratio = float((matched["contracts"] / matched["bt_contracts"]).median())
        off = not 0.5 <= ratio <= 2.0
        checks.append(
            Check(
                "position sizes",
                "daily",
                "warn" if off else "ok",
                ratio,
                1.0,
                0.5,
                2.0,
                math.nan,
                f"paper contracts / backtest contracts on matched trades: median {ratio:.2f}",
            )
        )
    for reason, level, name, tolerance in (
        ("profit_target", profit_target, "profit-target exits", 0.10),
        ("stop_loss", -stop_loss, "stop exits", 0.25),
    ):
        hit = closed.loc[closed["exit_reason"] == reason]
        before = bt_all.loc[bt_all["exit_reason"] == reason]
        if len(hit) < 3 or len(before) < 3:
            checks.append(
                Check(
                    name, "daily", "untested", math.nan, level, math.nan, math.nan, math.nan,
                    f"{len(hit)} {name} in the log: too few to compare with the backtest's",
                )
            )  # fmt: skip
            continue
        share = float(((hit["credit"] - hit["debit"]) / hit["credit"]).median())
        # the backtest's own exits of these days (a close past the stop overshoots it)
        usual = float(((before["credit"] - before["debit"]) / before["credit"]).median())
        checks.append(
            Check(
                name,
                "daily",
                "warn" if abs(share - usual) > tolerance else "ok",
                share,
                usual,
                usual - tolerance,
                usual + tolerance,
                math.nan,
                f"{name}: median realized {share:+.0%} of the credit against the backtest's "
                f"{usual:+.0%} at the level {level:+.0%}",
            )
        )

    # weekly: the same trades, paper against backtest (execution fidelity)
    both = matched.loc[
        matched["debit"].notna() & matched["bt_debit"].notna() & (matched["bt_exit_date"] <= last)
    ]
    if len(both) >= MIN_TRADES:
        bt_gross = (both["bt_credit"] - both["bt_debit"]) * multiplier
        diff = ((both["credit"] - both["debit"]) * multiplier - bt_gross).to_numpy(float)
        weeks = pd.DatetimeIndex(both["entry_time"]).to_period("W").astype(str).to_numpy()
        test = clustered_test(diff, weeks)
        exact = bool(np.allclose(diff, 0.0, atol=0.01))
        checks.append(
            Check(
                "matched P&L",
                "weekly",
                "ok" if exact else _status(test.p, test.estimate < 0),
                float(np.mean(diff)),
                0.0,
                test.ci_low,
                test.ci_high,
                test.p,
                f"on the {len(both)} trades both took, the paper account made "
                f"{money(float(np.mean(diff)), 0, plus=True)} a contract against the backtest of "
                "the same days "
                f"({p_text(test.p)}, clustered by week)",
            )
        )
    else:
        checks.append(
            Check(
                "matched P&L", "weekly", "untested", math.nan, 0.0, math.nan, math.nan, math.nan,
                f"{len(both)} closed trades matched a backtest trade (the test needs {MIN_TRADES})",
            )
        )  # fmt: skip

    # weekly: win rate and mean P&L against the backtest's distribution for n trades
    bt_pc = bt_all["gross"].to_numpy(float)
    for name, paper_value, values, harmful_low, fmt in (
        ("win rate", float((closed["pnl_pc"] > 0).mean()) if n else math.nan,
         (bt_pc > 0).astype(float), True, "{:.0%}"),
        ("mean P&L a contract", float(closed["pnl_pc"].mean()) if n else math.nan,
         bt_pc, True, "money"),
    ):  # fmt: skip
        if n < MIN_TRADES or len(values) < MIN_TRADES:
            checks.append(
                Check(
                    name, "weekly", "untested", paper_value,
                    float(np.mean(values)) if len(values) else math.nan, math.nan, math.nan,
                    math.nan,
                    f"{name}: {n} closed paper trades (the test needs {MIN_TRADES})",
                )
            )  # fmt: skip
            continue

        def show(x: float, fmt: str = fmt) -> str:
            return money(x, 0) if fmt == "money" else fmt.format(x)

        draws = _block_means(values, n, BLOCK_TRADES, REPS, seed)
        p = _two_sided(draws, paper_value)
        low, high = np.quantile(draws, [0.05, 0.95])
        harmful = paper_value < np.median(draws) if harmful_low else True
        checks.append(
            Check(
                name,
                "weekly",
                _status(p, harmful),
                paper_value,
                float(np.mean(values)),
                float(low),
                float(high),
                p,
                f"{name} {show(paper_value)} against the backtest's "
                f"{show(float(np.mean(values)))} (90% of {n}-trade samples in "
                f"{show(float(low))}..{show(float(high))}; {p_text(p)})",
            )
        )
    # slippage: credit below the order's mid
    if "entry_mid" in paper.columns and paper["entry_mid"].notna().sum() >= 3:
        has = paper.loc[paper["entry_mid"].notna()]
        dollars = float(((has["entry_mid"] - has["credit"]) * multiplier * has["contracts"]).sum())
        if "entry_bid" in has.columns and has["entry_bid"].notna().sum() >= MIN_TRADES:
            h = has.loc[has["entry_bid"].notna() & (has["entry_mid"] > has["entry_bid"])]
            frac = ((h["entry_mid"] - h["credit"]) / (h["entry_mid"] - h["entry_bid"])).to_numpy()
            weeks = pd.DatetimeIndex(h["entry_time"]).to_period("W").astype(str).to_numpy()
            test = clustered_test(frac - assumed_fill, weeks)
            value = float(np.mean(frac))
            # every fill exactly as assumed: nothing to test, nothing to flag
            exact = bool(np.allclose(frac, assumed_fill, atol=1e-6))
            checks.append(
                Check(
                    "slippage",
                    "weekly",
                    "ok" if exact else _status(test.p, value > assumed_fill),
                    value,
                    assumed_fill,
                    assumed_fill + test.ci_low - test.estimate,
                    assumed_fill + test.ci_high - test.estimate,
                    test.p,
                    f"fills gave up {value:.0%} of the half spread from the mid against the "
                    f"{assumed_fill:.0%} the backtest assumes ({money(dollars, 0)} below the mids "
                    "in all; "
                    + ("exactly as assumed" if exact else f"{p_text(test.p)}, clustered by week")
                    + ")",
                )
            )
        else:
            checks.append(
                Check(
                    "slippage", "weekly", "untested", dollars, math.nan, math.nan, math.nan,
                    math.nan,
                    f"{money(dollars, 0)} below the order mids; without the spread's natural "
                    "prices "
                    "(entry_bid) the fill cannot be set against the assumed one",
                )
            )  # fmt: skip

    # monthly: equity against the block-bootstrap band of the backtest's days
    paper_daily = (
        closed.assign(day=pd.DatetimeIndex(closed["exit_time"]).normalize())
        .groupby("day")["pnl_pc"]
        .sum()
        .reindex(days, fill_value=0.0)
    )
    curve = paper_daily.cumsum()
    daily = daily_pnl.to_numpy(float)
    band = pd.DataFrame({"date": days, "paper": curve.to_numpy()})
    if len(days) >= MIN_DAYS and len(daily) >= 2 * BLOCK_DAYS:
        rng = np.random.default_rng(seed + 1)
        blocks = -(-len(days) // BLOCK_DAYS)
        starts = rng.integers(0, len(daily), size=(REPS, blocks))
        idx = (starts[:, :, None] + np.arange(BLOCK_DAYS)[None, None, :]) % len(daily)
        paths = np.cumsum(daily[idx.reshape(REPS, -1)[:, : len(days)]], axis=1)
        lo, mid, hi = np.quantile(paths, [0.05, 0.5, 0.95], axis=0)
        band = band.assign(low=lo, median=mid, high=hi)
        end = float(curve.iloc[-1])
        p = _two_sided(paths[:, -1], end)
        outside = float(((curve.to_numpy() < lo) | (curve.to_numpy() > hi)).mean())
        checks.append(
            Check(
                "equity band",
                "monthly",
                _status(p, end < float(mid[-1])),
                end,
                float(mid[-1]),
                float(lo[-1]),
                float(hi[-1]),
                p,
                f"one contract a trade made {money(end, 0)} over {len(days)} trading days against "
                f"the backtest's {money(float(mid[-1]), 0)} (90% band {money(float(lo[-1]), 0)}.."
                f"{money(float(hi[-1]), 0)}; outside the band on {outside:.0%} of days; "
                f"{p_text(p)})",
            )
        )
    else:
        checks.append(
            Check(
                "equity band", "monthly", "untested", math.nan, math.nan, math.nan, math.nan,
                math.nan, f"{len(days)} trading days (the band needs {MIN_DAYS})",
            )
        )  # fmt: skip

    # monthly: regimes, Holm across them
    if "regime" in closed.columns and "regime" in bt_all.columns:
        rows = []
        for regime, group in closed.groupby("regime"):
            values = bt_all.loc[bt_all["regime"] == regime, "gross"].to_numpy(float)
            if len(group) < MIN_REGIME_TRADES or len(values) < MIN_REGIME_TRADES:
                continue
            draws = _block_means(values, len(group), BLOCK_TRADES, REPS, seed + 2)
            value = float(group["pnl_pc"].mean())
            rows.append((str(regime), value, float(values.mean()), _two_sided(draws, value)))
        if rows:
            order = np.argsort([r[3] for r in rows])
            m = len(rows)
            adjusted = np.empty(m)
            running = 0.0
            for rank, i in enumerate(order):
                running = max(running, min(1.0, (m - rank) * rows[i][3]))
                adjusted[i] = running
            for (regime, value, expected, _), p in zip(rows, adjusted, strict=True):
                checks.append(
                    Check(
                        f"regime {regime}",
                        "monthly",
                        _status(float(p), value < expected),
                        value,
                        expected,
                        math.nan,
                        math.nan,
                        float(p),
                        f"in {regime}: {money(value, 0)} a contract on paper against the "
                        f"backtest's {money(expected, 0)} (Holm-adjusted {p_text(float(p))} "
                        f"across {m} regimes)",
                    )
                )
    if "llm_decision" in paper.columns and paper["llm_decision"].notna().any():
        decided = paper["llm_decision"].dropna()
        k, total = int((decided == "approve").sum()), len(decided)
        if expected_approval is None:
            checks.append(
                Check(
                    "filter approvals", "monthly", "untested", k / total, math.nan, math.nan,
                    math.nan, math.nan,
                    f"the filter approved {k} of {total}; no backtest approval rate to compare",
                )
            )  # fmt: skip
        else:
            from scipy.stats import binomtest

            p = float(binomtest(k, total, expected_approval).pvalue)
            checks.append(
                Check(
                    "filter approvals",
                    "monthly",
                    _status(p, False),
                    k / total,
                    expected_approval,
                    math.nan,
                    math.nan,
                    p,
                    f"the filter approved {k / total:.0%} of {total} against "
                    f"{expected_approval:.0%} in its backtest ({p_text(p)})",
                )
            )
    past_pc = past["gross"].to_numpy(float)
    if len(bt_all) >= MIN_TRADES and len(past_pc) >= MIN_TRADES:
        draws = _block_means(past_pc, len(bt_all), BLOCK_TRADES, REPS, seed + 3)
        value = float(bt_all["gross"].mean())
        p = _two_sided(draws, value)
        low, high = np.quantile(draws, [0.05, 0.95])
        checks.append(
            Check(
                "market against the validation",
                "monthly",
                "info",
                value,
                float(past_pc.mean()),
                float(low),
                float(high),
                p,
                f"for reference, not the account: the backtest itself made {money(value, 0)} a "
                f"contract on these days against {money(float(past_pc.mean()), 0)} over its "
                f"validation history (90% of {len(bt_all)}-trade samples in "
                f"{money(float(low), 0)}.."
                f"{money(float(high), 0)}; {p_text(p)})",
            )
        )
    if len(awaiting):
        checks.append(
            Check(
                "awaiting data", "daily", "info", float(len(awaiting)), math.nan, math.nan,
                math.nan, math.nan,
                f"{len(awaiting)} paper trades expire after the data's last day "
                f"{calendar[-1].date()}: compared once the bars cover their expiration",
            )
        )  # fmt: skip
    verdict, reason = graduation(checks, len(days), n, stage=stage, days_at_stage=days_at_stage)
    return PaperComparison(
        tuple(checks), matched, paper_only, bt_only, paper, band, len(days), stage, verdict, reason
    )


def paper_against_backtest(
    paper: pd.DataFrame,
    config: BacktestConfig,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    chains_path: str | Path | None = None,
    regime_model: str | None = "bull_bear_vol",
    history_years: float = 6.0,
    expected_approval: float | None = None,
    stage: str = "paper",
    days_at_stage: int = 0,
) -> tuple[PaperComparison, BacktestResult]:
    """Backtest ``config`` on the paper's underlyings from ``history_years`` before its first
    day to its last (the user's bars and IV, or the embedded data; priced from
    ``chains_path`` when given) — the history before the paper's first day for the
    distributions, and the paper's days started afresh like the account — and compare
    (``compare_paper``). Returns the comparison and the backtest of the paper's days."""
    from research.backtest.run import run_backtest
    from research.backtest.service import load_panel, regime_labels

    tickers = sorted(str(u) for u in paper["underlying"].unique())
    first = pd.Timestamp(paper["entry_time"].min()).normalize()
    last = pd.Timestamp(paper[["entry_time", "exit_time"]].max().max()).normalize()
    start = first - pd.Timedelta(days=round(365.25 * history_years))
    notes: list[str] = []
    panel, bars, iv = load_panel(
        tickers,
        notes=notes,
        bars_path=bars_path,
        iv_path=iv_path,
        start=str(start.date()),
        chains_path=chains_path,
        max_dte=config.spread.target_dte + 60,
    )
    if panel.dates[-1] < last:
        raise ValueError(
            f"the bars end on {panel.dates[-1].date()}, before the paper log's last day "
            f"{last.date()}: give bars (--bars) that cover the paper period"
        )
    labels = regime_labels(regime_model, bars, iv) if regime_model else None
    cut = int(panel.dates.searchsorted(first))
    if cut < 2:
        raise ValueError(
            f"no backtest history before the paper log's first day {first.date()}: give bars "
            "that start earlier"
        )
    history = run_backtest(panel.slice(slice(0, cut)), config, labels)
    # the account started on its first day with nothing open: so does this backtest
    result = run_backtest(panel.slice(slice(cut, len(panel.dates))), config, labels)
    assumed = config.fills.chain_fill if panel.chains is not None else 1.0
    comparison = compare_paper(
        paper,
        result.trades,
        history.trades,
        panel.dates,
        profit_target=config.spread.profit_target_pct / 100,
        stop_loss=config.spread.stop_loss_pct / 100,
        assumed_fill=assumed,
        multiplier=float(config.convention(tickers[0]).multiplier or 100.0),
        screened=result.counters,
        expected_approval=expected_approval,
        stage=stage,
        days_at_stage=days_at_stage,
        horizon_days=config.spread.target_dte,
    )
    return dataclasses.replace(comparison, notes=tuple(notes)), result
