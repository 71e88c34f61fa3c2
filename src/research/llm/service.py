"""The trade filter from files, for the command line and notebook 07: load the trades and their
entry regimes, ask a provider (or read its decisions), and run the whole analysis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.data.overview import MarketData
from research.llm import analysis as an
from research.numbers import money, signed

__all__ = [
    "LOCAL_MIN_TIMEOUT",
    "FilterAnalysis",
    "TradeSet",
    "analyze",
    "evaluate_trades",
    "load_trades",
]

LOCAL_MIN_TIMEOUT = 300.0
"""Seconds a local model's request may take at least: a 1.5B model answers in about 5 s on 2
cores, and its slots share them."""


@dataclass(frozen=True)
class TradeSet:
    """Trades (``trades`` contract) with the regime at entry of one regime model."""

    trades: pd.DataFrame
    """``trades`` rows, as loaded."""
    regimes: pd.Series
    """The regime at entry of each trade (aligned with ``trades``; None where unknown)."""
    source: str
    """Where the trades came from, in words."""
    regime_model: str
    """The regime model behind ``regimes``."""
    market: MarketData | None = None
    """The bars and IV the entry regimes came from."""

    def about(self) -> str:
        """The trades in one paragraph: how many, from where, when, how they did."""
        t = self.trades
        wins = (t["pnl"] > 0).mean()
        return (
            f"**Trades:** {len(t):,} from {self.source} on {', '.join(sorted(set(t['ticker'])))}, "
            f"entered {pd.Timestamp(t['date'].min()).date()} to "
            f"{pd.Timestamp(t['date'].max()).date()}; {wins:.1%} won, mean P&L "
            f"{money(t['pnl'].mean())} per contract. Regime at entry: the `{self.regime_model}` "
            "model, from bars up to the entry date."
            + (f" {self.market.about()}" if self.market is not None else "")
        )


def load_trades(
    trades_path: str | Path | None = None,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    regime_model: str = "vix_trend",
) -> TradeSet:
    """Trades (default ``data/sample/trades.json``) and their entry regimes.

    Raises
    ------
    ValueError
        A ticker of the trades has no bars (names the file and the tickers).
    """
    from research.config import PATHS
    from research.data import market as market_data
    from research.data.loaders import load
    from research.data.overview import load_market
    from research.llm.context import entry_regimes
    from research.regimes import classify, load_ruleset

    path = trades_path if trades_path is not None else PATHS.sample / "trades.json"
    trades = load("trades", path)
    available = set(
        market_data.DEFAULT_SYMBOLS
        if bars_path is None
        else market_data.load_bars(bars_path)["symbol"]
    )
    missing = sorted(set(trades["ticker"]) - available)
    if missing:
        raise ValueError(
            f"{path}: column 'ticker': {missing} have no bars for the entry regime (bars: "
            f"{sorted(available)}); give their bars (--bars)"
        )
    market = load_market(bars_path, iv_path, symbols=sorted(set(trades["ticker"])))
    labels = classify(regime_model, market.bars, market.iv, load_ruleset(None))
    shown = "the sample trades (`data/sample/trades.json`)" if trades_path is None else f"`{path}`"
    return TradeSet(trades, entry_regimes(trades, labels), shown, regime_model, market)


@dataclass(frozen=True)
class FilterAnalysis:
    """Everything the notebook and ``research llm analyze`` show, for one provider."""

    provider: str
    """Who decided, as the page names it (a heuristic says "not an LLM")."""
    is_llm: bool
    """The decisions come from a language model."""
    model: str
    """The model whose decisions are analysed."""
    primary: str
    """The prompt variant the single-variant parts use (balanced when present)."""
    joined: pd.DataFrame
    """``analysis.join`` of every prompt variant's decisions."""
    approval: pd.DataFrame
    """``analysis.approval_table`` of the primary variant."""
    tests: dict[str, float]
    """``analysis.approval_tests`` of the primary variant."""
    controls: an.Controls
    """``analysis.controls`` of the primary variant."""
    sweep: pd.DataFrame
    """``analysis.threshold_sweep`` of the primary variant, all trades."""
    threshold: an.ThresholdChoice
    """``analysis.recommend_threshold`` of the primary variant."""
    prompts: pd.DataFrame
    """``analysis.compare_prompts`` of every pair of variants."""
    calibration_bins: pd.DataFrame
    """Reliability bins of ``analysis.calibration``."""
    calibration_scores: dict[str, float]
    """Brier, base-rate Brier, skill and ECE of ``analysis.calibration``."""
    regimes: pd.DataFrame
    """``analysis.by_regime``, at the recommended threshold (no threshold columns when none is
    recommended)."""
    verdict: str
    """``analysis.verdict``: the code worded, with the numbers it rests on."""
    verdict_code: str
    """One of ``research.llm.analysis.VERDICT_CODES``: ``analysis.verdict_code`` of the same
    ``tests`` and ``controls`` (no default: it cannot contradict ``verdict``)."""

    @property
    def decided(self) -> int:
        """Trades the primary prompt variant decided (approve or reject; failed calls left
        out)."""
        return int(self.tests["n_approved"] + self.tests["n_rejected"])

    @property
    def months(self) -> int:
        """Entry months of those trades (the clustered tests' clusters)."""
        return int(self.tests["months"])

    @property
    def regime_percent_columns(self) -> list[str]:
        """The by-regime table's columns that are shares (for formatting)."""
        shares = ["approval_rate", "approved_win_rate", "rejected_win_rate"]
        return shares + [c for c in self.regimes.columns if c.startswith("approve_")]

    def headline(self) -> str:
        """What the page says first: who decided (an LLM or not) and the verdict."""
        who = (
            f"Decisions by **{self.provider}**."
            if self.is_llm
            else f"Decisions by a **{self.provider}** — a deterministic offline stand-in so the "
            "pipeline runs without an API key; nothing here measures an LLM. Set the notebook's "
            "`provider` to `openai` (with a key) or `local` (a GGUF model on this machine), or "
            "give `replay_path` (a recorded run), for a real model."
        )
        return (
            f"{who} Prompt `{self.primary}`. **Verdict** (`{self.verdict_code}`): {self.verdict}."
        )

    def tests_text(self) -> str:
        """Approved minus rejected, in words (in-sample: nothing is fitted)."""
        t = self.tests
        if t.get("pnl_diff") != t.get("pnl_diff"):
            return "Too few approved or rejected trades to compare."
        if t.get("pnl_p") != t.get("pnl_p"):
            return (
                f"Approved {int(t['n_approved'])} of {self.decided} trades "
                f"({t['approval_rate']:.0%}). Mean P&L approved minus rejected: "
                f"{money(t['pnl_diff'], plus=True)} per contract; win rate approved minus "
                f"rejected: {signed(100 * t['win_diff'], 1)} points. **Not tested**: the "
                f"approved trades span {int(t['months_approved'])} entry months and the rejected "
                f"ones {int(t['months_rejected'])}; errors clustered by entry month need at least "
                f"{int(t['min_months'])} on each side (and two trades each) for a p-value that "
                "keeps its size."
            )
        return (
            f"Approved {int(t['n_approved'])} of {int(t['n_approved'] + t['n_rejected'])} "
            f"trades ({t['approval_rate']:.0%}). Mean P&L approved minus rejected: "
            f"{money(t['pnl_diff'], plus=True)} per contract (95% CI "
            f"{signed(t['pnl_diff_ci_low'])} to {signed(t['pnl_diff_ci_high'])}, p = "
            f"{t['pnl_p']:.3f}); win rate approved minus rejected: "
            f"{signed(100 * t['win_diff'], 1)} points (95% CI "
            f"{signed(100 * t['win_diff_ci_low'], 1)} to "
            f"{signed(100 * t['win_diff_ci_high'], 1)}, p = {t['win_p']:.3f}). Both from OLS on an "
            f"approve dummy with errors clustered by entry month ({int(t['months'])} months; CR1 "
            "correction, t with months − 1 degrees of freedom): trades that overlap and "
            "decisions that persist are not counted as independent evidence."
        )

    def controls_text(self) -> str:
        """The filter against random filters and the best simple rule, in words; a control that
        did not run is said to be untested, never passed or failed."""
        c = self.controls
        if c.random_tested:
            rnd = "beats" if c.beats_random else "does not beat"
            random_text = (
                f"rotating the filter's decisions along the trades by date (all "
                f"{c.random_reps:,} shifts: random filters with the same count and the same "
                f"persistence) gives a mean at least as high with p = {c.random_p:.3f}: it {rnd} "
                "them."
            )
        else:
            random_text = "the rotation test did not run (too few trades with a P&L): untested."
        head = (
            f"**Random filters** approving the same {c.approval_rate:.0%}: the approved trades' "
            f"mean P&L {money(c.mean_approved)} against {money(c.mean_all)} for all trades; "
            f"{random_text} **Best simple rule**, chosen on the first half of the trades at the "
            f"filter's count (in-sample): *{c.rule}*. "
        )
        hindsight = (
            " (On the second half the rule picks its trades by ranking the whole half at once — "
            "its highest or lowest IV percentiles or VIX values, or the best regimes' trades "
            "until the count is reached: a cut-off set with hindsight, which favours the rule.)"
        )
        if c.same_as_rule:
            return head + (
                f"On the other {c.oos_trades} trades (out-of-sample) the filter approves "
                f"{c.oos_kept_filter}, exactly the trades the rule keeps: it is that rule there "
                "(difference 0, nothing to test); it does not beat the rule." + hindsight
            )
        if not c.rule_tested:
            return head + (
                f"On the other {c.oos_trades} trades (out-of-sample) the comparison did not run: "
                f"{c.rule_note} (the filter approves {c.oos_kept_filter}). Untested — neither "
                "beaten nor passed." + hindsight
            )
        rule = "beats" if c.beats_rule else "does not beat"
        return head + (
            f"On the other {c.oos_trades} trades (out-of-sample) the filter approves "
            f"{c.oos_kept_filter} and the rule keeps as many ({c.oos_kept_rule}); the filter's "
            f"average {money(c.oos_filter_mean)} against the rule's {money(c.oos_rule_mean)}: "
            f"difference {money(c.oos_diff, plus=True)} (95% CI {signed(c.oos_diff_ci[0])} to "
            f"{signed(c.oos_diff_ci[1])}, month-clustered, p = {c.oos_diff_p:.3f}); "
            f"it {rule} the rule." + hindsight
        )

    def calibration_text(self) -> str:
        """The Brier score and calibration error, in words."""
        s = self.calibration_scores
        skill = "better" if s["brier_skill"] > 0 else "no better"
        return (
            f"Brier score {s['brier']:.3f} against {s['brier_base']:.3f} for always forecasting "
            f"the base win rate (skill {s['brier_skill']:+.3f}: {skill} than the base rate); "
            f"expected calibration error {s['ece']:.3f} over {int(s['n'])} decisions."
        )

    def summary(self) -> dict[str, object]:
        """The machine-readable summary (names the provider).

        Keys read by the findings page: ``verdict_code`` (one of ``VERDICT_CODES``),
        ``verdict``, ``tests`` (``win_diff, win_p, pnl_diff, pnl_p`` and ``method``),
        ``controls`` (``random_p, beats_random, beats_rule, rule_tested, oos_kept_filter,
        oos_kept_rule``), ``threshold`` (``recommended`` — None when no threshold helps in
        sample, the least bad then under ``least_bad`` — ``helps_in_sample``, ``out_of_sample``
        with ``kept, uplift, uplift_ci_low, uplift_ci_high``, ``random_p``, ``beats_random``),
        ``trades`` (distinct trades in the decisions, failed calls included), ``decided``
        (trades the primary prompt decided: approve or reject) and ``months`` (their entry
        months); ``methods`` names each test.
        """
        c = self.controls
        th = self.threshold
        return {
            "provider": self.provider,
            "is_llm": self.is_llm,
            "model": self.model,
            "prompt": self.primary,
            "prompts": sorted(set(self.joined["prompt_variant"])),
            "trades": int(self.joined["trade_id"].nunique()),
            "decided": self.decided,
            "months": self.months,
            "min_months": an.MIN_MONTHS,
            "errors": int(self.joined["error"].notna().sum()),
            "verdict": self.verdict,
            "verdict_code": self.verdict_code,
            "verdict_codes": list(an.VERDICT_CODES),
            "approval": self.approval.to_dict(orient="records"),
            "tests": {**self.tests, "method": an.DIFF_TEST},
            "controls": {
                "random_p": c.random_p,
                "random_method": an.ROTATION_TEST,
                "rotations": c.random_reps,
                "beats_random": c.beats_random,
                "best_rule": c.rule,
                "oos_trades": c.oos_trades,
                "oos_kept_filter": c.oos_kept_filter,
                "oos_kept_rule": c.oos_kept_rule,
                "oos_diff": c.oos_diff,
                "oos_diff_ci": list(c.oos_diff_ci),
                "oos_diff_p": c.oos_diff_p,
                "rule_tested": c.rule_tested,
                "same_as_rule": c.same_as_rule,
                "beats_rule": c.beats_rule,
                "rule_note": c.rule_note,
            },
            "threshold": {
                "recommended": th.recommended,
                "least_bad": None if th.recommended is not None else th.threshold,
                "helps_in_sample": th.helps_in_sample,
                "chosen_on": "first half of the trades by date (in-sample)",
                "chosen_by": f"per-trade uplift, at least {th.min_kept} trades kept",
                "reported_on": "second half (out-of-sample)",
                "out_of_sample": th.out_of_sample.to_dict(),
                "random_p": th.random_p,
                "rotations": th.rotations,
                "beats_random": th.beats_random,
                "text": th.text(),
            },
            "methods": dict(an.METHODS),
            "sweep": self.sweep.to_dict(orient="records"),
            "prompt_comparison": self.prompts.to_dict(orient="records"),
            "calibration": self.calibration_scores,
            "by_regime": self.regimes.to_dict(orient="records"),
        }


def analyze(
    decisions: pd.DataFrame,
    trade_set: TradeSet,
    *,
    provider: str | None = None,
    is_llm: bool | None = None,
    prompt: str | None = None,
    model: str | None = None,
    seed: int = 0,
) -> FilterAnalysis:
    """Run the analysis of ``research.llm.analysis`` on ``decisions``.

    Parameters
    ----------
    provider, is_llm
        How to name the decisions (default: the ``provider`` column of the decisions, when
        there, else the model; a heuristic's label says "not an LLM").
    prompt
        The variant for the single-variant parts (default ``balanced`` when present).
    model
        Keep this model's decisions (default: the only one; several are an error).
    seed
        Seed of the bootstrap intervals (group means, threshold uplift); the tests are analytic
        or exhaustive and do not depend on it.

    The verdict needs the approved and the rejected trades to span ``analysis.MIN_MONTHS`` entry
    months each; below that it is ``untested``.

    Raises
    ------
    ValueError
        Several models and none chosen, an unknown prompt, or decisions of unknown trades.
    """
    d = decisions
    models = sorted(set(d["model"].astype(str)))
    if model is None:
        if len(models) != 1:
            raise ValueError(f"the decisions hold models {models}: choose one (--model)")
        model = models[0]
    d = d[d["model"].astype(str) == model]
    if d.empty:
        raise ValueError(f"no decisions of model {model!r} (models: {models})")
    variants = sorted(set(d["prompt_variant"].astype(str)))
    primary = prompt or ("balanced" if "balanced" in variants else variants[0])
    if primary not in variants:
        raise ValueError(f"no decisions for prompt {primary!r} (prompts: {variants})")
    if provider is None:  # credentials in a URL of an older file are not shown
        from research.llm.providers import mask_urls

        labels = d["provider"].dropna().astype(str) if "provider" in d.columns else pd.Series()
        provider = mask_urls(str(labels.iloc[0])) if len(labels) else model
    if is_llm is None:
        is_llm = "not an LLM" not in provider
    joined = an.join(d, trade_set.trades, trade_set.regimes)
    one = joined[joined["prompt_variant"] == primary]
    tests = an.approval_tests(one)
    ctl = an.controls(one)
    bins, scores = an.calibration(one)
    choice = an.recommend_threshold(one, seed=seed)
    return FilterAnalysis(
        provider=provider,
        is_llm=bool(is_llm),
        model=model,
        primary=primary,
        joined=joined,
        approval=an.approval_table(one, seed=seed),
        tests=tests,
        controls=ctl,
        sweep=an.threshold_sweep(one, seed=seed),
        threshold=choice,
        prompts=an.compare_prompts(joined),
        calibration_bins=bins,
        calibration_scores=scores,
        # the primary prompt's approval rate is already there; Brier skill stands for Brier; no
        # uplift at a threshold that is not recommended
        regimes=an.by_regime(one, threshold=choice.recommended, variants=joined).drop(
            columns=[f"approve_{primary}", "brier"], errors="ignore"
        ),
        verdict=an.verdict(tests, ctl, provider),
        verdict_code=an.verdict_code(tests, ctl),
    )


def evaluate_trades(
    trade_set: TradeSet,
    provider: object,
    prompts: Sequence[str],
    *,
    prompts_dir: str | Path | None = None,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    concurrency: int = 8,
    timeout: float = 30.0,
) -> object:
    """``research.llm.harness.evaluate`` for a notebook: no progress bar; the cache defaults to
    ``data/llm_cache`` for network providers; a local model's requests get at least
    ``LOCAL_MIN_TIMEOUT`` seconds (its slots share the machine's cores).

    Returns
    -------
    research.llm.harness.EvalResult
    """
    from research.config import PATHS
    from research.llm.harness import EvalConfig, evaluate
    from research.llm.prompts import load_prompts

    return evaluate(
        trade_set.trades,
        provider,  # type: ignore[arg-type]
        load_prompts(list(prompts), prompts_dir),
        regimes=trade_set.regimes,
        out=out or None,
        cache_dir=cache_dir if cache_dir is not None else PATHS.root / "data" / "llm_cache",
        config=EvalConfig(
            concurrency=concurrency,
            timeout=max(timeout, LOCAL_MIN_TIMEOUT)
            if getattr(provider, "name", "") == "local"
            else timeout,
        ),
        progress=False,
    )
