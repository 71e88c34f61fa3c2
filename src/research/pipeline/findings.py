"""The findings page: seed 004's validated configuration, computed from the notebooks' summaries.

``write_findings(paths)`` reads ``reports/summaries/*.json`` (written by the notebooks) and writes

- ``reports/_findings.md``, included by ``reports/index.qmd`` (Quarto's ``include`` shortcode;
  the nbconvert fallback resolves it too): the validated-configuration table (layer → validated
  choice → evidence → robustness, each linking to its page), today's regime by every model, and
  what changed since the previous regeneration;
- ``reports/summaries/validated_config.json``: the same table for a trading bot or a script;
- ``reports/summaries/findings_state.json``: the state the next regeneration compares with.

Nothing in the table is typed by hand. One rule per layer (``layer_rows``) turns the numbers into
a status — ``validated``, ``fragile``, ``not validated``, ``in-sample only`` or ``no evidence``
— and a layer that is not validated names the baseline it keeps, never a winner.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from research.config import Paths

__all__ = [
    "STATUSES",
    "Findings",
    "LayerRow",
    "build_findings",
    "findings_markdown",
    "layer_rows",
    "write_findings",
]

STATUSES: tuple[str, ...] = (
    "validated",
    "fragile",
    "not validated",
    "in-sample only",
    "no evidence",
)
PAGES: dict[str, str] = {
    "02": "executed/02_market_regimes.ipynb",
    "03": "executed/03_regime_multiplier_grid.ipynb",
    "04": "executed/04_portfolio_limits_grid.ipynb",
    "05": "executed/05_regime_attribution.ipynb",
    "06": "executed/06_tune_attribution.ipynb",
    "07": "executed/07_llm_threshold_calibration.ipynb",
    "08": "executed/08_option_chains.ipynb",
}
SEED_EXITS = "profit target 65%, stop loss 125%"
"""Seed 004's exit parameters (its "already validated in Phase 1")."""
ALPHA = 0.05


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


def _num(value: Any, fmt: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(float(value), fmt).replace("-", "−")


def _p(value: Any) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "p n/a"
    return "p < 0.001" if float(value) < 0.001 else f"p = {float(value):.3f}"


def _grid_rows(summary: Mapping[str, Any], layer: str, page: str) -> list[LayerRow]:
    """Regime multipliers / portfolio limits: validated only when the verdict is ``adds_value``
    (it beat the benchmark, the exposure-matched control and, for multipliers, shuffled labels,
    out of sample, with a positive Sharpe) **and** it holds in every sensitivity scenario."""
    rows = []
    benchmark = str(summary.get("benchmark", "baseline"))
    for part in summary.get("per_tickers") or []:
        code = part.get("verdict_code")
        robust = bool(part.get("robust"))
        flips = list(part.get("flips_under") or [])
        winners: dict[str, int] = dict(part.get("wf_winners") or {})
        top = max(winners, key=lambda k: winners[k]) if winners else "?"
        folds = sum(winners.values()) if winners else 0
        if code == "adds_value" and robust:
            status, choice = "validated", f"{top} ({winners.get(top, 0)}/{folds} folds)"
        elif code == "adds_value":
            status, choice = "fragile", f"{benchmark} (kept: the gain of {top} is fragile)"
        else:
            status, choice = "not validated", f"{benchmark} (kept: no validated alternative)"
        controls = part.get("controls") or {}
        test = part.get("sharpe_test") or {}
        bench_sharpe = part.get(
            f"oos_sharpe_{benchmark}", (controls.get(benchmark) or {}).get("oos_sharpe")
        )
        matched = (controls.get("exposure_matched") or {}).get("oos_sharpe")
        evidence = (
            f"walk-forward choice {top} ({winners.get(top, 0)}/{folds} folds), out of sample "
            f"{str(part.get('oos_start', ''))[:4]}–{str(part.get('oos_end', ''))[:4]}: Sharpe "
            f"{_num(part.get('oos_sharpe_walk_forward'))} vs {_num(bench_sharpe)} for "
            f"{benchmark} and {_num(matched)} for "
            f"its exposure-matched control (Sharpe-difference test {_p(test.get('p_value'))}"
        )
        if part.get("permutation_p") is not None:
            evidence += f"; label permutations {_p(part.get('permutation_p'))}"
        evidence += f"); verdict: {str(code).replace('_', ' ')}"
        if not part.get("strategy_profitable_oos", True):
            evidence += "; the strategy does not beat cash"
        robustness = (
            "robust in every scenario"
            if robust
            else ("fragile — flips under " + ", ".join(flips) if flips else "fragile")
        )
        rows.append(
            LayerRow(
                layer, str(part.get("tickers", "")), choice, status, evidence, robustness, page
            )
        )
    return rows


def _filter_row(summary: Mapping[str, Any]) -> LayerRow:
    """The trade filter: validated when approved trades win more than rejected ones (z-test),
    the filter beats a random filter of the same size and the best simple rule out of sample,
    and the threshold's out-of-sample uplift interval is above zero."""
    tests = summary.get("tests") or {}
    controls = summary.get("controls") or {}
    threshold = summary.get("threshold") or {}
    oos = threshold.get("out_of_sample") or {}
    provider = str(summary.get("provider", "?"))
    significant = (tests.get("win_diff") or 0) > 0 and (tests.get("win_p") or 1) < ALPHA
    beats = bool(controls.get("beats_random")) and bool(controls.get("beats_rule"))
    uplift_low = oos.get("uplift_ci_low")
    holds = uplift_low is not None and math.isfinite(uplift_low) and uplift_low > 0
    recommended = threshold.get("recommended")
    if significant and beats and holds:
        status, choice = "validated", f"approve when confidence ≥ {recommended}"
    elif significant and beats:
        status, choice = "fragile", "no filter (kept: the threshold's gain is not significant)"
    else:
        status, choice = "not validated", "no filter (take every trade the rules take)"
    evidence = (
        f"{provider}, {summary.get('trades', '?')} trades: win rate approved − rejected "
        f"{_num(100 * (tests.get('win_diff') or math.nan), '+.1f')} points (z-test "
        f"{_p(tests.get('win_p'))}); vs a random filter {_p(controls.get('random_p'))}; "
        f"threshold {recommended} chosen in-sample, out of sample uplift "
        f"{_num(oos.get('uplift'), '+.0f')} $/trade (95% CI {_num(oos.get('uplift_ci_low'), '.0f')}"
        f" to {_num(oos.get('uplift_ci_high'), '.0f')})"
    )
    if not summary.get("is_llm", True):
        evidence += "; decisions from a heuristic rule, **not an LLM**"
    robustness = "out-of-sample interval above 0" if holds else "out-of-sample interval includes 0"
    return LayerRow("AI threshold", "all trades", choice, status, evidence, robustness, PAGES["07"])


def _exit_row(summary: Mapping[str, Any] | None) -> LayerRow:
    """Exits: the seed's profit target and stop stay unless parameters chosen by regime beat
    both the baseline and the same choice ignoring the regime out of sample (interval above
    zero)."""
    if summary is None:
        return LayerRow(
            "Exit parameters", "all trades", SEED_EXITS, "no evidence",
            "no tuning runs attributed yet", "—", PAGES["06"],
        )  # fmt: skip
    uplift = {u.get("vs"): u for u in (summary.get("uplift") or [])}
    base, blind = (uplift.get("baseline") or {}), (uplift.get("regime-blind") or {})

    def above(row: Mapping[str, Any]) -> bool:
        low = row.get("ci_low")
        return low is not None and math.isfinite(low) and low > 0

    current = summary.get("current") or []
    if above(base) and above(blind):
        status = "validated"
        choice = "by regime: " + "; ".join(
            f"{c.get('symbol')} ({c.get('current_regime')}): {c.get('best_params')}"
            for c in current
        )
    else:
        status = "not validated"
        choice = f"{SEED_EXITS} (the seed's; choosing by regime is not validated)"
    evidence = (
        f"{summary.get('tunes_count', '?')} tuning runs, out of sample (walk-forward): "
        f"parameters chosen by regime vs the baseline {_num(base.get('mean_diff'), '+.2f')} Sharpe "
        f"(95% CI {_num(base.get('ci_low'))} to {_num(base.get('ci_high'))}), vs the same "
        f"choice ignoring the regime {_num(blind.get('mean_diff'), '+.3f')} (95% CI "
        f"{_num(blind.get('ci_low'), '.3f')} to {_num(blind.get('ci_high'), '.3f')})"
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
    """The per-regime strategy configuration (experiments): in-sample evidence only."""
    if summary is None:
        return None
    best = summary.get("best_by_regime") or []
    if not best:
        return None
    beats = [b for b in best if b.get("beats_runner_up")]
    choice = "; ".join(f"{b.get('regime')}: {b.get('best_config')}" for b in best) or "—"
    evidence = (
        f"{len(best)} regimes; the best configuration beats its runner-up in {len(beats)} "
        "(in-sample: the experiments that chose a configuration also score it)"
    )
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
    return rows


def _load(folder: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out


def _state(rows: Sequence[LayerRow], regimes: Sequence[Mapping[str, str]], end: str | None) -> dict:
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
            from research.pipeline.manifest import write_text_atomic

            write_text_atomic(state_file, json.dumps(stored, indent=2))
    previous = stored.get("previous")
    return Findings(
        rows=tuple(rows),
        regimes=regimes,
        data_end=data_end,
        changes=tuple(_diff(previous, current)) if previous else (),
        changed_at=stored.get("changed_at"),
        first_run=previous is None,
    )


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: Findings) -> str:
    """The findings as Markdown (pipe tables, links to the pages)."""
    out = [
        "## Validated configuration",
        "",
        "Seed 004's last step: one configuration per layer with its evidence. A layer is "
        "*validated* only when its choice beats the controls out of sample and holds under "
        "every modelling assumption tested; otherwise the baseline stays and the row says why.",
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
    out += ["## Today's regime", ""]
    if findings.regimes:
        models = sorted({g["model"] for g in findings.regimes})
        symbols = sorted({g["symbol"] for g in findings.regimes})
        by = {(g["symbol"], g["model"]): g for g in findings.regimes}
        out += [
            f"The last bar of each market (data end {findings.data_end}), by every model "
            f"([Market regimes]({PAGES['02']})).",
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
    out.append("")
    return "\n".join(out)


def write_findings(paths: Paths, *, now: str | None = None) -> Path:
    """Write ``reports/_findings.md`` and ``reports/summaries/validated_config.json``."""
    from research.pipeline.manifest import write_text_atomic

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
