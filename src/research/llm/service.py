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

__all__ = ["FilterAnalysis", "TradeSet", "analyze", "evaluate_trades", "load_trades"]


@dataclass(frozen=True)
class TradeSet:
    """Trades (``trades`` contract) with the regime at entry of one regime model."""

    trades: pd.DataFrame
    regimes: pd.Series
    source: str
    regime_model: str
    market: MarketData | None = None
    """The bars and IV the entry regimes came from."""

    def about(self) -> str:
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
    is_llm: bool
    model: str
    primary: str
    """The prompt variant the single-variant parts use (balanced when present)."""
    joined: pd.DataFrame
    approval: pd.DataFrame
    tests: dict[str, float]
    controls: an.Controls
    sweep: pd.DataFrame
    threshold: an.ThresholdChoice
    prompts: pd.DataFrame
    calibration_bins: pd.DataFrame
    calibration_scores: dict[str, float]
    regimes: pd.DataFrame
    verdict: str

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
            "`provider` to `openai` (with a key) or `replay` (recorded decisions) for a real model."
        )
        return f"{who} Prompt `{self.primary}`. **Verdict:** {self.verdict}."

    def tests_text(self) -> str:
        """Approved minus rejected, in words (in-sample: nothing is fitted)."""
        t = self.tests
        if t.get("win_diff") != t.get("win_diff"):
            return "Too few approved or rejected trades to compare."
        return (
            f"Approved {int(t['n_approved'])} of {int(t['n_approved'] + t['n_rejected'])} "
            f"trades ({t['approval_rate']:.0%}). Win rate approved minus rejected: "
            f"{100 * t['win_diff']:+.1f} points (two-proportion z-test p = {t['win_p']:.3f}); "
            f"mean P&L approved minus rejected: {money(t['pnl_diff'], plus=True)} per contract "
            f"(95% CI {signed(t['pnl_diff_ci_low'])} to {signed(t['pnl_diff_ci_high'])}, "
            f"month-cluster bootstrap; Welch p = {t['pnl_p']:.3f}). The tests count trades as "
            "independent; overlapping trades are not, so their p-values are optimistic."
        )

    def controls_text(self) -> str:
        """The filter against a random filter and the best simple rule, in words."""
        c = self.controls
        rnd = "beats" if c.beats_random else "does not beat"
        rule = "beats" if c.beats_rule else "does not beat"
        return (
            f"**Random filter** approving the same {c.approval_rate:.0%}: the approved trades' "
            f"mean P&L {money(c.mean_approved)} against {money(c.mean_all)} for all trades; "
            f"{c.random_reps:,} random filters give a mean at least as high with p = "
            f"{c.random_p:.3f}: it {rnd} chance. **Best simple rule** of the same approval "
            f"rate, chosen on the first half of the trades (in-sample): *{c.rule}*. On the "
            f"other {c.oos_trades} trades (out-of-sample) the filter's approved trades average "
            f"{money(c.oos_filter_mean)} against the rule's {money(c.oos_rule_mean)}: difference "
            f"{money(c.oos_diff, plus=True)} (95% CI {signed(c.oos_diff_ci[0])} to "
            f"{signed(c.oos_diff_ci[1])}); "
            f"it {rule} the rule."
        )

    def calibration_text(self) -> str:
        s = self.calibration_scores
        skill = "better" if s["brier_skill"] > 0 else "no better"
        return (
            f"Brier score {s['brier']:.3f} against {s['brier_base']:.3f} for always forecasting "
            f"the base win rate (skill {s['brier_skill']:+.3f}: {skill} than the base rate); "
            f"expected calibration error {s['ece']:.3f} over {int(s['n'])} decisions."
        )

    def summary(self) -> dict[str, object]:
        """The machine-readable summary (names the provider)."""
        c = self.controls
        return {
            "provider": self.provider,
            "is_llm": self.is_llm,
            "model": self.model,
            "prompt": self.primary,
            "prompts": sorted(set(self.joined["prompt_variant"])),
            "trades": int(self.joined["trade_id"].nunique()),
            "errors": int(self.joined["error"].notna().sum()),
            "verdict": self.verdict,
            "approval": self.approval.to_dict(orient="records"),
            "tests": self.tests,
            "controls": {
                "random_p": c.random_p,
                "best_rule": c.rule,
                "oos_diff": c.oos_diff,
                "oos_diff_ci": list(c.oos_diff_ci),
                "beats_random": c.beats_random,
                "beats_rule": c.beats_rule,
            },
            "threshold": {
                "recommended": self.threshold.threshold,
                "chosen_on": "first half of the trades by date (in-sample)",
                "reported_on": "second half (out-of-sample)",
                "out_of_sample": self.threshold.out_of_sample.to_dict(),
                "text": self.threshold.text(),
            },
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
    if provider is None:
        labels = d["provider"].dropna().astype(str) if "provider" in d.columns else pd.Series()
        provider = str(labels.iloc[0]) if len(labels) else model
    if is_llm is None:
        is_llm = "not an LLM" not in provider
    joined = an.join(d, trade_set.trades, trade_set.regimes)
    one = joined[joined["prompt_variant"] == primary]
    tests = an.approval_tests(one, seed=seed)
    ctl = an.controls(one, seed=seed)
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
        prompts=an.compare_prompts(joined, seed=seed),
        calibration_bins=bins,
        calibration_scores=scores,
        # the primary prompt's approval rate is already there; Brier skill stands for Brier
        regimes=an.by_regime(one, threshold=choice.threshold, variants=joined, seed=seed).drop(
            columns=[f"approve_{primary}", "brier"], errors="ignore"
        ),
        verdict=an.verdict(tests, ctl, provider),
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
    ``data/llm_cache`` for network providers.

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
        config=EvalConfig(concurrency=concurrency, timeout=timeout),
        progress=False,
    )
