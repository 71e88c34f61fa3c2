"""The findings page: the validated configuration, computed from the notebooks' summaries.

``write_findings(paths)`` reads ``reports/summaries/*.json`` (written by the notebooks) and writes

- ``reports/_findings.md``, included by ``reports/index.qmd`` (Quarto's ``include`` shortcode;
  the nbconvert fallback resolves it too): the validated-configuration table (layer → validated
  choice → evidence → robustness, each linking to its page), today's regime by every model, and
  what changed since the previous regeneration;
- ``reports/summaries/validated_config.json``: the same table for a trading bot or a script;
- ``reports/summaries/findings_state.json``: the state the next regeneration compares with.

Nothing in the table is typed by hand. One rule per layer (``layer_rows``) turns the numbers into
a status — ``validated``, ``fragile``, ``untested``, ``not validated``, ``in-sample only`` or
``no evidence`` — and a layer that is not validated names the baseline it keeps, never a winner.
The rules cannot validate thin or missing evidence: each layer has a minimum sample, a control or
test that did not run makes the layer ``untested`` (never passed), a p-value of 0 is a p-value,
and what is validated is what was tested (the walk-forward procedure; a single variant only
when its own out-of-sample series passes). The page names one base strategy (the package's
defaults), and the in-sample per-regime configurations are evidence, each flagged when even
the best of its regime loses money.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from research.attribution.tunes import MIN_BLOCKS_FOR_VERDICT, MIN_TUNES_FOR_VERDICT
from research.config import Paths
from research.numbers import p_text
from research.optimize.verdict import MIN_OOS_DAYS

__all__ = [
    "STATUSES",
    "Findings",
    "LayerRow",
    "bottom_line",
    "build_findings",
    "findings_markdown",
    "layer_rows",
    "write_findings",
]

STATUSES: tuple[str, ...] = (
    "validated",
    "fragile",
    "untested",
    "not validated",
    "in-sample only",
    "no evidence",
)
"""What a layer's row can say. *untested*: the evidence a verdict needs is missing or too thin
(a control or test that was not run, too few trades or tunes, no sensitivity scenario that
applies) — never counted as passed; *fragile*: it passed, but flips under a sensitivity
scenario."""
PAGES: dict[str, str] = {
    "02": "executed/02_market_regimes.ipynb",
    "03": "executed/03_regime_multiplier_grid.ipynb",
    "04": "executed/04_portfolio_limits_grid.ipynb",
    "05": "executed/05_regime_attribution.ipynb",
    "06": "executed/06_tune_attribution.ipynb",
    "07": "executed/07_llm_threshold_calibration.ipynb",
    "08": "executed/08_option_chains.ipynb",
    "09": "executed/09_strategy_explained.ipynb",
    "10": "executed/10_paper_tracking.ipynb",
}
ALPHA = 0.05
MIN_FILTER_TRADES = 100
"""Fewest trades the filter decided (approve or reject; failed calls excluded) for it to be
validated."""
MIN_FILTER_MONTHS = 12
"""Fewest entry months those trades span (the clustered tests' clusters)."""
MIN_THRESHOLD_TRADES = 30
"""Fewest out-of-sample trades the recommended threshold must keep."""


def base_strategy() -> str:
    """The strategy every layer keeps unless a row validates something else, from the package's
    defaults (``research.backtest.spreads.SpreadRules``): one exit configuration for the page."""
    from research.backtest.spreads import SpreadRules

    r = SpreadRules()
    return (
        f"{r.strategy.replace('_', ' ')} spreads, delta {r.min_delta:g}–{r.max_delta:g}, "
        f"{r.target_dte} DTE, profit target {r.profit_target_pct:g}%, stop loss "
        f"{r.stop_loss_pct:g}%"
    )


def base_exits() -> str:
    """The base strategy's exits: ``profit target 65%, stop loss 125%``."""
    from research.backtest.spreads import SpreadRules

    r = SpreadRules()
    return f"profit target {r.profit_target_pct:g}%, stop loss {r.stop_loss_pct:g}%"


@dataclass(frozen=True)
class LayerRow:
    """One row of the validated-configuration table."""

    layer: str
    scope: str
    """What it applies to (a ticker set, all trades, …)."""
    choice: str
    """The validated choice, or the baseline kept when nothing is validated."""
    status: str
    """One of ``STATUSES``."""
    evidence: str
    robustness: str
    page: str
    """Link (relative to ``reports/``) to the notebook with the evidence."""


@dataclass(frozen=True)
class Findings:
    """What the findings page shows."""

    rows: tuple[LayerRow, ...]
    regimes: tuple[dict[str, str], ...]
    """Latest label per market and model: ``symbol, model, date, regime``."""
    data_end: str | None
    changes: tuple[str, ...]
    changed_at: str | None
    """When the state last changed (the regeneration the changes come from)."""
    first_run: bool
    bottom_line: tuple[str, ...] = ()
    """The page's answer, first: the configuration to run now and its status, why the base
    strategy makes or loses money, and the data's last date (``bottom_line``)."""
    generated_at: str | None = None
    commit: str | None = None
    sources: tuple[tuple[str, str], ...] = ()
    """The summaries the page was computed from: (file, when it was written)."""


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (0.0 included), else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _below(p: Any, alpha: float = ALPHA) -> bool:
    """A p-value that was computed and is below ``alpha`` (a missing p never passes; p = 0 does)."""
    x = _finite(p)
    return x is not None and x < alpha


def _num(value: Any, fmt: str = ".2f") -> str:
    x = _finite(value)
    return "n/a" if x is None else format(x, fmt).replace("-", "−")


def _pct(value: Any) -> str:
    x = _finite(value)
    return "n/a" if x is None else f"{100 * x:+.1f}%".replace("-", "−")


def _p(value: Any) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a`` (``research.numbers.p_text``)."""
    return p_text(_finite(value))


def _procedure(winners: Mapping[str, int]) -> str:
    folds = sum(winners.values())
    picks = ", ".join(
        f"{k} {v}/{folds}" for k, v in sorted(winners.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"the walk-forward procedure ({picks or 'no folds'})"


def _variant_passes(row: Mapping[str, Any], needs_permutation: bool) -> bool:
    """A named variant's own out-of-sample series passes: positive Sharpe, beats the benchmark
    and its exposure-matched control (Sharpe tests) and, for regime sets, the permutation test."""
    sharpe = _finite(row.get("oos_sharpe"))
    ok = (
        sharpe is not None
        and sharpe > 0
        and _below(row.get("p_vs_benchmark"))
        and _below(row.get("p_vs_control"))
    )
    return ok and (not needs_permutation or _below(row.get("permutation_p")))


def _grid_rows(summary: Mapping[str, Any], layer: str, page: str) -> list[LayerRow]:
    """Regime multipliers / portfolio limits, per ticker set. What was tested is the walk-forward
    **procedure** (it switches between variants fold by fold), so that is what can be validated:

    - ``validated``: the verdict is ``adds_value`` (it beat the benchmark, the exposure-matched
      control and, for regime sets, shuffled labels, out of sample, with a positive Sharpe and
      at least two years out of sample) **and** it holds in every sensitivity scenario that
      applies (at least one). A single variant is named as well only when its own
      out-of-sample series passes the same tests;
    - ``fragile``: ``adds_value`` but it flips under some scenario;
    - ``untested``: the verdict is ``untested`` (a test that did not run, too short a sample),
      or ``adds_value`` with no sensitivity scenario that applies, with no permutation test
      for a regime study, or with fewer than ``MIN_OOS_DAYS`` (or no recorded) out-of-sample
      days — whatever an older summary's code says;
    - ``not validated`` otherwise. A layer that is not validated keeps the benchmark.
    """
    rows = []
    benchmark = str(summary.get("benchmark", "baseline"))
    for part in summary.get("per_tickers") or []:
        code = part.get("verdict_code")
        robust = bool(part.get("robust"))
        tested = bool(part.get("robustness_tested", robust or bool(part.get("flips_under"))))
        flips = list(part.get("flips_under") or [])
        winners: dict[str, int] = dict(part.get("wf_winners") or {})
        procedure = _procedure(winners)
        needs_perm = bool(part.get("permutation_required", layer == "Regime multipliers"))
        named = [
            str(v.get("variant"))
            for v in part.get("variants") or []
            if _variant_passes(v, needs_perm)
        ]
        perm_ran = _finite(part.get("permutation_p")) is not None and bool(
            part.get("n_permutations") or 0
        )
        if needs_perm and not perm_ran and code not in ("no_gain", "exposure_explains"):
            # a missing permutation test never counts as passed, whatever the code says
            code = "untested"
        days = _finite(part.get("oos_days"))
        if code == "adds_value" and (days is None or days < MIN_OOS_DAYS):
            code = "untested"  # too short (or unknown) an out-of-sample record
        if code == "adds_value" and tested and robust:
            status = "validated"
            choice = procedure
            if named:
                choice += "; on its own: " + ", ".join(named)
        elif code == "adds_value" and not tested:
            status, choice = "untested", f"{benchmark} (kept: no sensitivity scenario applies)"
        elif code == "adds_value":
            status, choice = "fragile", f"{benchmark} (kept: the gain of {procedure} is fragile)"
        elif code == "untested":
            status, choice = "untested", f"{benchmark} (kept: the evidence is incomplete)"
        else:
            status, choice = "not validated", f"{benchmark} (kept: no validated alternative)"
        controls = part.get("controls") or {}
        test = part.get("sharpe_test") or {}
        bench = controls.get(benchmark) or {}
        matched = controls.get("exposure_matched") or {}
        bench_sharpe = part.get(f"oos_sharpe_{benchmark}", bench.get("oos_sharpe"))
        evidence = (
            f"{procedure}, out of sample {str(part.get('oos_start', ''))[:4]}–"
            f"{str(part.get('oos_end', ''))[:4]}: Sharpe "
            f"{_num(part.get('oos_sharpe_walk_forward'))} vs {_num(bench_sharpe)} for "
            f"{benchmark} and {_num(matched.get('oos_sharpe'))} for its exposure-matched "
            f"control (Sharpe-difference test {_p(test.get('p_value'))}); CAGR "
            f"{_pct(part.get('oos_cagr_walk_forward'))} vs {_pct(bench.get('oos_cagr'))} for "
            f"{benchmark} and {_pct(matched.get('oos_cagr'))} for the control (total return "
            f"{_pct(part.get('oos_return_walk_forward'))} vs {_pct(bench.get('oos_return'))} and "
            f"{_pct(matched.get('oos_return'))})"
        )
        if perm_ran:
            evidence += f"; label permutations {_p(part.get('permutation_p'))}"
        elif needs_perm:
            evidence += "; label permutations: not run"
        evidence += f"; verdict: {str(code).replace('_', ' ')}"
        if not part.get("strategy_profitable_oos", True):
            evidence += "; the strategy does not beat cash"
        stopped = dict(part.get("stopped_trading") or {})
        if stopped:
            first = min(stopped, key=lambda v: str(stopped[v]))
            evidence += (
                f"; in sample {len(stopped)} variants stopped trading (equity below one "
                f"contract's risk), {first} first on {stopped[first]}"
            )
            if "stopped trading first" in str(part.get("idle_note") or ""):
                evidence += " — the in-sample best is only the one that stopped first"
        if not tested:
            robustness = "untested — no sensitivity scenario applies"
        elif robust:
            robustness = "robust in every scenario that applies"
        else:
            robustness = "fragile — flips under " + ", ".join(flips) if flips else "fragile"
        rows.append(
            LayerRow(
                layer, str(part.get("tickers", "")), choice, status, evidence, robustness, page
            )
        )
    return rows


def _filter_row(summary: Mapping[str, Any]) -> LayerRow:
    """The trade filter: ``validated`` only when the calibration page's verdict code is
    ``adds_value`` (approved trades beat rejected ones with month-clustered errors, the filter
    beats a rotated filter of the same size and the best simple rule at the same count out of
    sample), the confidence threshold chosen in-sample helps in sample and, out of sample, keeps
    at least ``MIN_THRESHOLD_TRADES`` trades, beats rotated filters keeping as many and has an
    uplift interval above zero; and at least ``MIN_FILTER_TRADES`` decided trades over
    ``MIN_FILTER_MONTHS`` entry months. ``untested`` below those counts or when a verdict, test
    or control is missing; ``not validated`` otherwise (no filter is kept)."""
    tests = summary.get("tests") or {}
    controls = summary.get("controls") or {}
    threshold = summary.get("threshold") or {}
    oos = threshold.get("out_of_sample") or {}
    provider = str(summary.get("provider", "?"))
    code = summary.get("verdict_code")
    trades = _finite(summary.get("trades"))
    decided = _finite(summary.get("decided"))
    months = _finite(summary.get("months"))
    recommended = threshold.get("recommended")
    uplift_low = _finite(oos.get("uplift_ci_low"))
    kept = _finite(oos.get("kept"))
    threshold_holds = (
        recommended is not None
        and threshold.get("helps_in_sample") is not False
        and threshold.get("beats_random") is True
        and kept is not None
        and kept >= MIN_THRESHOLD_TRADES
        and uplift_low is not None
        and uplift_low > 0
    )
    tested = (
        code is not None
        and all(k in controls for k in ("beats_random", "beats_rule"))
        and _finite(tests.get("pnl_p")) is not None
        and _finite(controls.get("random_p")) is not None
    )
    enough = (
        decided is not None
        and decided >= MIN_FILTER_TRADES
        and months is not None
        and months >= MIN_FILTER_MONTHS
    )
    if not tested or code == "untested":
        status, choice = "untested", "no filter (kept: the verdict, a test or a control is missing)"
    elif not enough:
        status = "untested"
        choice = (
            f"no filter (kept: fewer than {MIN_FILTER_TRADES} trades decided over "
            f"{MIN_FILTER_MONTHS} months)"
        )
    elif code == "adds_value" and threshold_holds:
        status, choice = "validated", f"approve when confidence ≥ {recommended}"
    elif code == "adds_value":
        status = "fragile"
        choice = "no filter (kept: the confidence threshold does not hold out of sample)"
    else:
        status, choice = "not validated", "no filter (take every trade the rules take)"
    win = _finite(tests.get("win_diff"))
    evidence = (
        f"{provider}, {_num(decided if decided is not None else trades, '.0f')} trades decided"
        f"{'' if months is None else f' over {months:.0f} months'}: win rate approved − rejected "
        f"{_num(None if win is None else 100 * win, '+.1f')} points ({_p(tests.get('win_p'))}), "
        f"mean P&L approved − rejected {_num(tests.get('pnl_diff'), '+.0f')} $/trade "
        f"({_p(tests.get('pnl_p'))}); vs a random filter of the same size "
        f"{_p(controls.get('random_p'))}; "
        + (
            "no confidence threshold recommended (none improved on every trade in sample); "
            "out of sample the least bad keeps "
            if recommended is None
            else f"threshold {recommended} chosen in-sample, out of sample keeps "
        )
        + f"{_num(kept, '.0f')} trades, uplift {_num(oos.get('uplift'), '+.0f')} $/trade (95% CI "
        f"{_num(oos.get('uplift_ci_low'), '.0f')} to {_num(oos.get('uplift_ci_high'), '.0f')}), "
        f"vs random filters keeping as many {_p(threshold.get('random_p'))}"
    )
    if code is not None:
        evidence += f"; verdict: {str(code).replace('_', ' ')}"
    if not summary.get("is_llm", True):
        evidence += "; decisions from a heuristic rule, **not an LLM**"
    robustness = (
        "out of sample the threshold holds (interval above 0, beats random filters)"
        if threshold_holds
        else "out of sample the threshold does not hold"
    )
    return LayerRow("AI threshold", "all trades", choice, status, evidence, robustness, PAGES["07"])


def _exit_row(summary: Mapping[str, Any] | None) -> LayerRow:
    """Exits: the base strategy's profit target and stop stay unless parameters chosen by
    regime beat both the baseline and the same choice ignoring the regime out of sample
    (intervals above zero) on at least ``MIN_TUNES_FOR_VERDICT`` evaluated tuning runs in at
    least ``MIN_BLOCKS_FOR_VERDICT`` independent blocks of years (fewer, or unknown: ``untested``;
    a summary may ask for more, never fewer)."""
    exits = base_exits()
    if summary is None:
        return LayerRow(
            "Exit parameters", "all trades", exits, "no evidence",
            "no tuning runs attributed yet", "—", PAGES["06"],
        )  # fmt: skip
    uplift = {u.get("vs"): u for u in (summary.get("uplift") or [])}
    base, blind = (uplift.get("baseline") or {}), (uplift.get("regime-blind") or {})
    # a summary may ask for more tunes, never fewer than the tunes page's own minimum
    needed = max(MIN_TUNES_FOR_VERDICT, int(_finite(summary.get("min_tunes_for_verdict")) or 0))
    evaluated = _finite(base.get("n"))
    n = int(evaluated) if evaluated is not None else 0

    def above(row: Mapping[str, Any]) -> bool:
        low = _finite(row.get("ci_low"))
        return low is not None and low > 0

    blocks_needed = max(
        MIN_BLOCKS_FOR_VERDICT, int(_finite(summary.get("min_blocks_for_verdict")) or 0)
    )
    blocks = _finite(summary.get("uplift_blocks"))
    current = summary.get("current") or []
    if n >= needed and (blocks is None or blocks < blocks_needed):
        status = "untested"
        choice = (
            f"{exits} (kept: the evaluated tuning runs fall in "
            f"{'an unknown number of' if blocks is None else f'{blocks:.0f}'} independent blocks "
            f"of years, fewer than the {blocks_needed} a verdict needs)"
        )
    elif n < needed:
        status = "untested"
        choice = (
            f"{exits} (kept: {n} tuning runs evaluated, fewer than the {needed} a verdict needs)"
        )
    elif above(base) and above(blind):
        status = "validated"
        choice = "by regime: " + "; ".join(
            f"{c.get('symbol')} ({c.get('current_regime')}): {c.get('best_params')}"
            for c in current
        )
    else:
        status = "not validated"
        choice = f"{exits} (kept: choosing by regime is not validated)"
    evidence = (
        f"{summary.get('tunes_count', '?')} tuning runs, {n} evaluated out of sample "
        f"(walk-forward): parameters chosen by regime vs the baseline "
        f"{_num(base.get('mean_diff'), '+.2f')} Sharpe (95% CI {_num(base.get('ci_low'))} to "
        f"{_num(base.get('ci_high'))}), vs the same choice ignoring the regime "
        f"{_num(blind.get('mean_diff'), '+.3f')} (95% CI {_num(blind.get('ci_low'), '.3f')} to "
        f"{_num(blind.get('ci_high'), '.3f')})"
    )
    drift = summary.get("drift") or {}
    robustness = (
        f"today's regime mix has drifted from the tunes' ({drift.get('symbol')})"
        if drift.get("alert")
        else "regime mix close to the tunes'"
    )
    return LayerRow(
        "Exit parameters", "all trades", choice, status, evidence, robustness, PAGES["06"]
    )


def _config_row(summary: Mapping[str, Any] | None) -> LayerRow | None:
    """The per-regime strategy configuration (experiments): in-sample evidence only, so the
    base strategy stays (the page shows one configuration); the per-regime bests are evidence,
    each flagged when even the best of its regime loses money (not a configuration to trade)."""
    if summary is None:
        return None
    best = summary.get("best_by_regime") or []
    if not best:
        return None

    def loses(b: Mapping[str, Any]) -> bool:
        flag = b.get("loses_money")
        if flag is not None:
            return bool(flag)
        mean = _finite(b.get("metric_mean"))
        return mean is not None and mean < 0

    beats = [b for b in best if b.get("beats_runner_up")]
    untested = [str(b.get("regime")) for b in best if b.get("tested") is False]
    losing = [str(b.get("regime")) for b in best if loses(b)]
    listed = "; ".join(
        f"{b.get('regime')}: {b.get('best_config')}"
        + (" (**loses money — not a configuration to trade**)" if loses(b) else "")
        for b in best
    )
    choice = f"{base_strategy()} in every regime (kept: per-regime choices are in-sample only)"
    evidence = (
        f"in-sample best per regime — {listed}; the best beats its runner-up in {len(beats)} of "
        f"{len(best)} regimes (the experiments that chose a configuration also score it)"
    )
    if untested:
        evidence += (
            f"; untested in {len(untested)} ({', '.join(untested)}): too few independent blocks "
            "of experiments for the test to reject"
        )
    if losing:
        evidence += f"; even the best loses money in {len(losing)}: {', '.join(losing)}"
    return LayerRow(
        "Strategy configuration by regime", "experiments", choice, "in-sample only",
        evidence, "not tested out of sample", PAGES["05"],
    )  # fmt: skip


def layer_rows(summaries: Mapping[str, Mapping[str, Any]]) -> list[LayerRow]:
    """The validated-configuration rows from the notebooks' summaries (by notebook name)."""
    rows: list[LayerRow] = []
    for name, layer, page in (
        ("03_regime_multiplier_grid", "Regime multipliers", PAGES["03"]),
        ("04_portfolio_limits_grid", "Portfolio limits", PAGES["04"]),
    ):
        part = summaries.get(name)
        found = _grid_rows(part, layer, page) if part else []
        rows += found or [
            LayerRow(
                layer, "—", "baseline (kept)", "no evidence", "the study has not run", "—", page
            )
        ]
    llm = summaries.get("07_llm_threshold_calibration")
    rows.append(
        _filter_row(llm)
        if llm
        else LayerRow(
            "AI threshold",
            "all trades",
            "no filter",
            "no evidence",
            "the calibration has not run",
            "—",
            PAGES["07"],
        )  # fmt: skip
    )
    rows.append(_exit_row(summaries.get("06_tune_attribution")))
    extra = _config_row(summaries.get("05_regime_attribution"))
    if extra is not None:
        rows.append(extra)
    paper = _paper_row(summaries.get("10_paper_tracking"))
    if paper is not None:
        rows.append(paper)
    return rows


def _paper_row(summary: Mapping[str, Any] | None) -> LayerRow | None:
    """Paper tracking: the graduation verdict of ``research.backtest.paper`` — validated only
    when the account tracks the backtest (go to 50 % or 100 %), not validated when a check
    failed, untested while the evidence is thin or a check warns. The page's synthetic sample
    log is no account: its row is untested whatever the sample's verdict."""
    if summary is None:
        return None
    verdict = str(summary.get("verdict", ""))
    status = {
        "go to 50%": "validated",
        "go to 100%": "validated",
        "stop and investigate": "not validated",
    }.get(verdict, "untested")
    scope = "SYNTHETIC sample log" if summary.get("synthetic") else str(summary.get("paper_log"))
    if summary.get("synthetic"):
        status, verdict = "untested", f"no paper log yet (the synthetic sample: {verdict})"
    failed = [c["name"] for c in summary.get("checks") or [] if c.get("status") == "fail"]
    evidence = (
        f"{summary.get('closed_trades')} closed paper trades over {summary.get('trading_days')} "
        f"trading days; {summary.get('matched')} matched the backtest, "
        f"{summary.get('backtest_only')} backtest entries skipped"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return LayerRow(
        "Paper tracking", scope, verdict, status, evidence,
        "checks against the backtest of the same days", PAGES["10"],
    )  # fmt: skip


def _grid_outcomes(summaries: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The grid studies' per-market rows (regime multipliers, portfolio limits)."""
    rows: list[Mapping[str, Any]] = []
    for name in ("03_regime_multiplier_grid", "04_portfolio_limits_grid"):
        rows += list((summaries.get(name) or {}).get("per_tickers") or [])
    return rows


def bottom_line(
    rows: Sequence[LayerRow],
    summaries: Mapping[str, Mapping[str, Any]],
    data_end: str | None,
    generated_at: str | None,
) -> tuple[str, ...]:
    """The page's answer in a few sentences, worded from the rows and summaries by one rule.

    1. *What to run now*: the base strategy (``base_strategy``) with every layer's choice; the
       layers that are validated (or fragile) are named with their status, and when none is,
       the sentence says that the baseline stays everywhere.
    2. *Does it make money*: from the grid studies' out-of-sample CAGR of the walk-forward
       choice (range over markets) and whether it beats cash; when none does, "not a
       configuration to trade as it stands".
    3. *Why*: the first tear sheet of the strategy page (else of the first grid study: its
       benchmark, in sample) — credits sold against stop-outs, overshoot and costs — the gap to
       the validation plan's figures (``backtest.plan_gap``) when the strategy page ran, and any
       configuration that stopped trading.
    4. *As of when*: the data's last date, which is "today" on this page, and when the page was
       regenerated.
    """
    out: list[str] = []
    good = [r for r in rows if r.status in ("validated", "fragile")]
    counts = {st: sum(1 for r in rows if r.status == st) for st in STATUSES}
    tally = ", ".join(f"{n} {st}" for st, n in counts.items() if n)
    if good:
        named = "; ".join(f"{r.layer} ({r.scope}): {r.choice} — {r.status}" for r in good)
        out.append(
            f"**Run now: {base_strategy()}, with {named}; every other layer keeps its "
            f"baseline.** Layers: {tally}."
        )
    elif rows:
        out.append(
            f"**Run now: nothing validated — the base strategy ({base_strategy()}) with every "
            f"layer at its baseline (flat sizing, no extra portfolio limit, no trade filter).** "
            f"Layers: {tally}."
        )
    else:
        out.append("**No findings yet: no notebook summary has been written.**")
    grid = _grid_outcomes(summaries)
    cagr = [c for c in (_finite(g.get("oos_cagr_walk_forward")) for g in grid) if c is not None]
    if cagr:
        profitable = [g for g in grid if g.get("strategy_profitable_oos")]
        span = _pct(min(cagr)) if len(cagr) == 1 else f"{_pct(min(cagr))} to {_pct(max(cagr))}"
        if profitable:
            out.append(
                f"Out of sample the strategy grows {span} a year across the {len(cagr)} "
                f"markets and limit studies, and beats cash in {len(profitable)} of them."
            )
        else:
            out.append(
                f"It loses money: out of sample it grows {span} a year across the {len(cagr)} "
                "markets and limit studies and beats cash in none — not a configuration to "
                "trade as it stands."
            )
    explained = list((summaries.get("09_strategy_explained") or {}).get("per_tickers") or [])
    sheets = [s for g in [*explained, *grid] for s in (g.get("tear_sheets") or [])]
    where = f" ([The strategy explained]({PAGES['09']}))" if explained else ""
    if sheets:
        out.append(f"Why, in sample{where}: {sheets[0].get('answer', '')}")
    gap = next((g["gap"].get("verdict") for g in explained if g.get("gap")), None)
    if gap:
        out.append(f"Against the validation plan's figures: {gap}")
    stopped = sorted(
        {
            f"{v} ({g.get('tickers')}) on {d}"
            for g in grid
            for v, d in (g.get("stopped_trading") or {}).items()
        }
    )
    if stopped:
        out.append(
            f"{len(stopped)} grid configurations stopped trading in sample (equity below one "
            f"contract's risk): {', '.join(stopped[:6])}{' …' if len(stopped) > 6 else ''}; "
            "a grid winner among them may only be the one that stopped first."
        )
    if data_end:
        when = f", regenerated {generated_at}" if generated_at else ""
        out.append(
            f'Data end {data_end}{when}: "today" on this page is {data_end}, the last bar '
            "of the data."
        )
    return tuple(out)


def _load(folder: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out


def _state(
    rows: Sequence[LayerRow], regimes: Sequence[Mapping[str, str]], end: str | None
) -> dict[str, Any]:
    return {
        "layers": {f"{r.layer} · {r.scope}": f"{r.status}: {r.choice}" for r in rows},
        "regimes": {f"{g['symbol']} · {g['model']}": g["regime"] for g in regimes},
        "data_end": end,
    }


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    if old.get("data_end") != new.get("data_end"):
        lines.append(f"Data now end on {new.get('data_end')} (were {old.get('data_end')}).")
    for part, noun in (("layers", "Layer"), ("regimes", "Regime of")):
        before, after = old.get(part, {}), new.get(part, {})
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                lines.append(
                    f"{noun} {key}: {before.get(key, 'absent')} → {after.get(key, 'absent')}."
                )
    return lines


def build_findings(paths: Paths, *, now: str | None = None) -> Findings:
    """Read the summaries, compare with the stored state, update it; return what to show."""
    folder = paths.reports / "summaries"
    summaries = _load(folder)
    rows = layer_rows(summaries)
    regimes_part = summaries.get("02_market_regimes") or {}
    regimes = tuple(
        {k: str(v) for k, v in g.items() if k in ("symbol", "model", "date", "regime")}
        for g in (regimes_part.get("latest") or [])
    )
    data_end = regimes_part.get("data_end")
    state_file = folder / "findings_state.json"
    try:
        stored = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    current = _state(rows, regimes, data_end)
    stamp = now or time.strftime("%Y-%m-%d %H:%M")
    if stored.get("current") != current:
        stored = {
            "previous": stored.get("current"),
            "current": current,
            "changed_at": stamp,
        }
        if folder.is_dir():
            from research._io import write_text_atomic

            write_text_atomic(state_file, json.dumps(stored, indent=2))
    previous = stored.get("previous")
    from research.pipeline.provenance import git_commit

    sources = tuple(
        (f"summaries/{p.name}", time.strftime("%Y-%m-%d %H:%M", time.localtime(p.stat().st_mtime)))
        for p in sorted(folder.glob("[0-9][0-9]_*.json"))
    )
    return Findings(
        rows=tuple(rows),
        regimes=regimes,
        data_end=data_end,
        changes=tuple(_diff(previous, current)) if previous else (),
        changed_at=stored.get("changed_at"),
        first_run=previous is None,
        bottom_line=bottom_line(rows, summaries, data_end, stamp),
        generated_at=stamp,
        commit=git_commit(paths.root),
        sources=sources,
    )


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: Findings) -> str:
    """The findings as Markdown (pipe tables, links to the pages): the bottom line first, then
    the evidence (the validated-configuration table), the regimes at the data's last date,
    what changed, and the page's provenance."""
    out = ["## Bottom line", ""]
    for line in findings.bottom_line:
        out += [line, ""]
    out += [
        "## Validated configuration",
        "",
        "One configuration per layer with its evidence. A layer is *validated* only when its "
        "choice beats the controls out of sample, on enough data, and holds under every "
        "modelling assumption tested; *untested* when a test or control it needs did not run "
        "or the sample is too thin; otherwise the baseline stays and the row says why.",
        "",
        "| Layer | Validated choice | Evidence | Robustness |",
        "|:---|:---|:---|:---|",
    ]
    for r in findings.rows:
        out.append(
            f"| [{_cell(r.layer)}]({r.page})<br>{_cell(r.scope)} | **{_cell(r.status)}**: "
            f"{_cell(r.choice)} | {_cell(r.evidence)} | {_cell(r.robustness)} |"
        )
    out += ["", ": The validated configuration, computed from the notebooks' summaries "
            '{#tbl-validated tbl-colwidths="[14,22,46,18]"}', ""]  # fmt: skip
    out += [f"## Regime on the data's last day ({findings.data_end or 'no data'})", ""]
    if findings.regimes:
        models = sorted({g["model"] for g in findings.regimes})
        symbols = sorted({g["symbol"] for g in findings.regimes})
        by = {(g["symbol"], g["model"]): g for g in findings.regimes}
        out += [
            f"The data end on {findings.data_end}: these are the regimes of that day by every "
            f"model, not of the day the page was regenerated ([Market regimes]({PAGES['02']})).",
            "",
            "",
            '::: {style="overflow-x: auto;"}',  # many markets: the table scrolls, not the page
            "",
            "| Model | " + " | ".join(symbols) + " |",
            "|:---|" + ":---|" * len(symbols),
        ]
        for m in models:
            cells = [_cell(by[(sym, m)]["regime"]) if (sym, m) in by else "—" for sym in symbols]
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out += ["", ": Latest regime label per model and market {#tbl-today}", "", ":::", ""]
    else:
        out += ["No regime snapshot yet: the *Market regimes* notebook has not run.", ""]
    out += ["## What changed since the previous regeneration", ""]
    if findings.first_run:
        out.append("This is the first regeneration: nothing to compare with yet.")
    elif findings.changes:
        out.append(f"At the regeneration of {findings.changed_at}:")
        out.append("")
        out += [f"- {_cell(line)}" for line in findings.changes]
    else:
        out.append("Nothing changed.")
    out += ["", "## Provenance of this page", ""]
    out.append(
        f"Computed by `research.pipeline.findings` at {findings.generated_at or 'unknown time'} "
        f"from the notebooks' summaries (nothing typed by hand); code at git commit "
        f"{findings.commit or 'unknown'}; data end {findings.data_end or 'unknown'}."
    )
    if findings.sources:
        out += ["", "| Summary | Written |", "|:---|:---|"]
        out += [f"| `{_cell(name)}` | {_cell(when)} |" for name, when in findings.sources]
        out += ["", ": The summaries this page was computed from {#tbl-findings-sources}"]
    out.append("")
    return "\n".join(out)


def write_findings(paths: Paths, *, now: str | None = None) -> Path:
    """Write ``reports/_findings.md`` and ``reports/summaries/validated_config.json``."""
    from research._io import write_text_atomic

    findings = build_findings(paths, now=now)
    target = paths.reports / "_findings.md"
    write_text_atomic(target, findings_markdown(findings))
    folder = paths.reports / "summaries"
    if folder.is_dir():
        write_text_atomic(
            folder / "validated_config.json",
            json.dumps([asdict(r) for r in findings.rows], indent=2),
        )
    return target
