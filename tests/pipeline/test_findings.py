"""The findings page: one rule per layer turns the summaries' numbers into a status and a
choice (never a winner that is not validated), the numbers shown are the summaries', what changed
since the previous regeneration is detected, and the fallback renders the included page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from research.config import Paths
from research.pipeline.findings import (
    bottom_line,
    build_findings,
    findings_markdown,
    layer_rows,
    write_findings,
)

THRESHOLD: dict[str, Any] = {
    "recommended": 0.7,
    "helps_in_sample": True,
    "beats_random": True,
    "random_p": 0.01,
}
OOS: dict[str, Any] = {"kept": 120, "uplift": 55.0, "uplift_ci_low": 12.0, "uplift_ci_high": 99.0}
THRESHOLD["out_of_sample"] = OOS


def _grid_part(code: str, robust: bool, flips: list[str], tickers: str = "SPX") -> dict[str, Any]:
    return {
        "tickers": tickers,
        "verdict_code": code,
        "robust": robust,
        "robustness_tested": True,
        "flips_under": flips,
        "strategy_profitable_oos": code == "adds_value",
        "oos_start": "2005-01-04",
        "oos_end": "2018-12-31",
        "oos_sharpe_walk_forward": 0.4321,
        "oos_sharpe_flat": 0.1234,
        "oos_cagr_walk_forward": 0.061,
        "oos_days": 3500,
        "oos_return_walk_forward": 1.234,
        "controls": {
            "flat": {"oos_sharpe": 0.1234, "oos_cagr": 0.02, "oos_return": 0.31},
            "exposure_matched": {"oos_sharpe": 0.2222, "oos_cagr": -0.034, "oos_return": -0.4},
        },
        "sharpe_test": {"p_value": 0.0123},
        "permutation_p": 0.0456,
        "n_permutations": 200,
        "permutation_required": True,
        "wf_winners": {"aggressive": 5, "prod": 2},
        "variants": [
            # aggressive's own series fails its control; prod's passes everything
            {"variant": "aggressive", "oos_sharpe": 0.5, "p_vs_benchmark": 0.01,
             "p_vs_control": 0.2, "permutation_p": 0.01},
            {"variant": "prod", "oos_sharpe": 0.3, "p_vs_benchmark": 0.0,
             "p_vs_control": 0.004, "permutation_p": 0.02},
            {"variant": "flat", "oos_sharpe": 0.12, "p_vs_benchmark": None,
             "p_vs_control": 0.5, "permutation_p": None},
        ],
    }  # fmt: skip


def _summaries(**override: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        "03_regime_multiplier_grid": {
            "benchmark": "flat",
            "per_tickers": [
                _grid_part("adds_value", True, [], "SPX"),
                _grid_part("adds_value", False, ["real_iv_only", "skew_x1.5"], "IXIC"),
                _grid_part("loses_less", False, [], "SPX+IXIC"),
            ],
        },
        "07_llm_threshold_calibration": {
            "provider": "gpt-test",
            "is_llm": True,
            "trades": 500,
            "verdict_code": "adds_value",
            "decided": 480,
            "months": 59,
            "tests": {"win_diff": 0.08, "win_p": 0.01, "pnl_diff": 41.0, "pnl_p": 0.0},
            "controls": {"random_p": 0.02, "beats_random": True, "beats_rule": True},
            "threshold": {
                "recommended": 0.7,
                "helps_in_sample": True,
                "beats_random": True,
                "random_p": 0.01,
                "out_of_sample": {
                    "kept": 120,
                    "uplift": 55.0,
                    "uplift_ci_low": 12.0,
                    "uplift_ci_high": 99.0,
                },
            },
        },
        "06_tune_attribution": {
            "tunes_count": 36,
            "min_tunes_for_verdict": 5,
            "uplift_blocks": 6,
            "min_blocks_for_verdict": 5,
            "uplift": [
                {"vs": "baseline", "n": 12, "mean_diff": 2.3, "ci_low": 1.9, "ci_high": 2.7},
                {
                    "vs": "regime-blind",
                    "n": 12,
                    "mean_diff": 0.015,
                    "ci_low": 0.0,
                    "ci_high": 0.038,
                },
            ],  # fmt: skip
            "current": [{"symbol": "SPX", "current_regime": "uptrend", "best_params": "pt=50"}],
            "drift": {"alert": False},
        },
        "02_market_regimes": {
            "data_end": "2018-12-31",
            "latest": [
                {"symbol": "SPX", "model": "vix_trend", "date": "2018-12-31", "regime": "CALM"},
                {"symbol": "SPX", "model": "markov", "date": "2018-12-31", "regime": "high"},
            ],
        },
    }
    out.update(override)
    return out


def test_grid_layers_validate_only_a_robust_gain_and_never_name_a_fragile_winner() -> None:
    rows = [r for r in layer_rows(_summaries()) if r.layer == "Regime multipliers"]
    assert [r.status for r in rows] == ["validated", "fragile", "not validated"]
    # what was tested is the procedure that switches between sets; a set is named on its own
    # only when its own out-of-sample series passes (prod does, p = 0 included; aggressive,
    # the most frequent fold winner, fails its exposure-matched control)
    assert rows[0].choice == (
        "the walk-forward procedure (aggressive 5/7, prod 2/7); on its own: prod"
    )
    assert rows[1].choice.startswith("flat (kept") and "aggressive" in rows[1].choice
    assert rows[1].robustness == "fragile — flips under real_iv_only, skew_x1.5"
    assert rows[2].choice == "flat (kept: no validated alternative)"
    # the evidence carries the summary's numbers, formatted, and links to the page
    assert "Sharpe 0.43 vs 0.12 for flat and 0.22" in rows[0].evidence
    assert "(Sharpe-difference test p = 0.012)" in rows[0].evidence
    assert "label permutations p = 0.046" in rows[0].evidence
    # the exposure-matched control by its growth too (scaling positions leaves Sharpe alone)
    assert (
        "CAGR +6.1% vs +2.0% for flat and −3.4% for the control (total return +123.4% vs +31.0% "
        "and −40.0%)"
    ) in rows[0].evidence
    assert rows[0].page == "executed/03_regime_multiplier_grid.ipynb"
    # a study that has not run says so
    limits = [r for r in layer_rows(_summaries()) if r.layer == "Portfolio limits"]
    assert [(r.status, r.evidence) for r in limits] == [("no evidence", "the study has not run")]


def _one_grid_row(**changes: Any) -> Any:
    part = {**_grid_part("adds_value", True, []), **changes}
    summaries = _summaries(
        **{"03_regime_multiplier_grid": {"benchmark": "flat", "per_tickers": [part]}}
    )
    return next(r for r in layer_rows(summaries) if r.layer == "Regime multipliers")


def test_grid_gain_without_an_applicable_scenario_is_untested_not_fragile() -> None:
    row = _one_grid_row(robust=False, robustness_tested=False, flips_under=[])
    assert row.status == "untested"
    assert row.choice == "flat (kept: no sensitivity scenario applies)"
    assert row.robustness == "untested — no sensitivity scenario applies"


@pytest.mark.parametrize(
    "changes",
    [
        {"permutation_p": None, "n_permutations": 0},  # not run: never counts as passed
        {"permutation_p": None, "n_permutations": 200},
        {"permutation_p": 0.01, "n_permutations": 0},
    ],
)
def test_regime_sets_without_their_permutation_test_are_untested(changes: dict[str, Any]) -> None:
    # even if an old summary's verdict code claims a gain
    row = _one_grid_row(**changes)
    assert row.status == "untested"
    assert row.choice.startswith("flat (kept")
    assert "label permutations: not run" in row.evidence


def test_limit_sets_need_no_permutation_test() -> None:
    part = {**_grid_part("adds_value", True, []), "permutation_p": None, "n_permutations": 0,
            "permutation_required": False, "variants": []}  # fmt: skip
    summaries = _summaries(
        **{"04_portfolio_limits_grid": {"benchmark": "wide_open", "per_tickers": [part]}}
    )
    row = next(r for r in layer_rows(summaries) if r.layer == "Portfolio limits")
    assert row.status == "validated"
    assert "permutation" not in row.evidence


def test_grid_verdict_untested_keeps_the_benchmark() -> None:
    row = _one_grid_row(verdict_code="untested")
    assert (row.status, row.choice) == ("untested", "flat (kept: the evidence is incomplete)")


def test_p_value_of_zero_is_a_p_value() -> None:
    """``(p or 1)`` would turn a p of 0.0 into 1: a stored 0 is significant and printed."""
    row = _one_grid_row(sharpe_test={"p_value": 0.0}, permutation_p=0.0)
    assert row.status == "validated"
    assert "(Sharpe-difference test p < 0.001)" in row.evidence
    assert "label permutations p < 0.001" in row.evidence
    filt = next(r for r in layer_rows(_summaries()) if r.layer == "AI threshold")
    assert "mean P&L approved − rejected +41 $/trade (p < 0.001)" in filt.evidence


@pytest.mark.parametrize(
    ("change", "status", "choice"),
    [
        ({}, "validated", "approve when confidence ≥ 0.7"),
        (
            {"threshold": {**THRESHOLD, "out_of_sample": {**OOS, "uplift_ci_low": -5.0}}},
            "fragile",
            "no filter (kept: the confidence threshold does not hold out of sample)",
        ),
        # the calibrated test of the threshold (rotations) must pass too, not only the interval
        ({"threshold": {**THRESHOLD, "beats_random": False, "random_p": 0.6}}, "fragile", "no"),
        ({"threshold": {**THRESHOLD, "out_of_sample": {**OOS, "kept": 2}}}, "fragile", "no"),
        ({"verdict_code": "no_value_shown"}, "not validated", "no filter (take every trade"),
        (
            {"threshold": {**THRESHOLD, "recommended": None, "helps_in_sample": False}},
            "fragile",
            "no filter (kept: the confidence threshold does not hold",
        ),
        ({"verdict_code": "hurts"}, "not validated", "no filter"),
        # thin or missing evidence is untested, never validated
        ({"decided": 99}, "untested", "no filter (kept: fewer than 100 trades decided over 12"),
        ({"months": 11}, "untested", "no filter (kept: fewer than 100 trades decided"),
        ({"decided": None, "trades": 5000}, "untested", "no filter (kept: fewer than"),
        ({"verdict_code": None}, "untested", "no filter (kept: the verdict, a test or a control"),
        ({"controls": {"random_p": 0.02}}, "untested", "no filter (kept: the verdict"),
        ({"tests": {}}, "untested", "no filter (kept: the verdict, a test or a control"),
        ({"verdict_code": "untested"}, "untested", "no filter (kept: the verdict, a test or a"),
    ],
)
def test_trade_filter_rule(change: dict[str, Any], status: str, choice: str) -> None:
    summary = {**_summaries()["07_llm_threshold_calibration"], **change}
    (row,) = [r for r in layer_rows(_summaries(**{"07_llm_threshold_calibration": summary}))
              if r.layer == "AI threshold"]  # fmt: skip
    assert row.status == status and row.choice.startswith(choice)


def test_trade_filter_from_a_heuristic_says_it_is_not_an_llm() -> None:
    summary = {**_summaries()["07_llm_threshold_calibration"], "is_llm": False}
    rows = layer_rows(_summaries(**{"07_llm_threshold_calibration": summary}))
    assert "**not an LLM**" in next(r for r in rows if r.layer == "AI threshold").evidence


def test_exits_stay_the_base_strategys_unless_the_regime_choice_beats_ignoring_the_regime() -> None:
    row = next(r for r in layer_rows(_summaries()) if r.layer == "Exit parameters")
    assert row.status == "not validated"  # regime-blind interval touches 0
    assert row.choice.startswith("profit target 65%, stop loss 125%")
    assert "(95% CI 0.000 to 0.038)" in row.evidence
    tunes = _summaries()["06_tune_attribution"]
    tunes["uplift"][1]["ci_low"] = 0.004
    row = next(
        r for r in layer_rows(_summaries(**{"06_tune_attribution": tunes}))
        if r.layer == "Exit parameters"
    )  # fmt: skip
    assert row.status == "validated" and row.choice == "by regime: SPX (uptrend): pt=50"


@pytest.mark.parametrize(("n", "status"), [(3, "untested"), (4, "untested"), (5, "validated")])
def test_exits_need_the_tunes_pages_minimum(n: int, status: str) -> None:
    """Both intervals above zero from 3 tunes is not a verdict (the tunes page itself says
    "too few for a verdict" below 5)."""
    tunes = _summaries()["06_tune_attribution"]
    tunes["uplift"] = [
        {"vs": "baseline", "n": n, "mean_diff": 2.3, "ci_low": 1.9, "ci_high": 2.7},
        {"vs": "regime-blind", "n": n, "mean_diff": 0.2, "ci_low": 0.1, "ci_high": 0.3},
    ]
    row = next(
        r for r in layer_rows(_summaries(**{"06_tune_attribution": tunes}))
        if r.layer == "Exit parameters"
    )  # fmt: skip
    assert row.status == status
    if status == "untested":
        assert row.choice == (
            f"profit target 65%, stop loss 125% (kept: {n} tuning runs evaluated, fewer than "
            "the 5 a verdict needs)"
        )


def test_strategy_configuration_keeps_one_base_strategy_and_flags_losing_regimes() -> None:
    """The page names one configuration (the base strategy, whose exits the exit row keeps);
    the in-sample per-regime bests are evidence, flagged when even the best loses money."""
    experiments = {
        "best_by_regime": [
            {"regime": "LOW_VOL_BULLISH", "best_config": "d0.20-0.30_pt50", "metric_mean": 3.1,
             "beats_runner_up": True, "loses_money": False},
            {"regime": "NORMAL_VOL_BULLISH", "best_config": "d0.05-0.15_pt50",
             "metric_mean": -4.2, "beats_runner_up": False},  # no flag: from the mean
            {"regime": "HIGH_VOL_BEARISH", "best_config": "d0.05-0.15_pt80", "metric_mean": 0.5,
             "beats_runner_up": False, "loses_money": True, "tested": False},
        ]
    }  # fmt: skip
    rows = layer_rows(_summaries(**{"05_regime_attribution": experiments}))
    row = next(r for r in rows if r.layer == "Strategy configuration by regime")
    exits = next(r for r in rows if r.layer == "Exit parameters")
    assert row.status == "in-sample only"
    assert row.choice == (
        "bear call spreads, delta 0.05–0.15, 30 DTE, profit target 65%, stop loss 125% in every "
        "regime (kept: per-regime choices are in-sample only)"
    )
    assert exits.choice.startswith("profit target 65%, stop loss 125%")  # the same exits
    assert "NORMAL_VOL_BULLISH: d0.05-0.15_pt50 (**loses money — not a configuration to " in (
        row.evidence
    )
    assert "LOW_VOL_BULLISH: d0.20-0.30_pt50;" in row.evidence
    assert "even the best loses money in 2: NORMAL_VOL_BULLISH, HIGH_VOL_BEARISH" in row.evidence
    assert "beats its runner-up in 1 of 3 regimes" in row.evidence
    assert "untested in 1 (HIGH_VOL_BEARISH): too few independent blocks" in row.evidence


def _project(tmp_path: Path, summaries: dict[str, dict[str, Any]]) -> Paths:
    folder = tmp_path / "reports" / "summaries"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("[0-9][0-9]_*.json"):
        old.unlink()
    for name, data in summaries.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return Paths.from_root(tmp_path)


def test_changes_since_the_previous_regeneration(tmp_path: Path) -> None:
    paths = _project(tmp_path, _summaries())
    first = build_findings(paths, now="2026-01-01 06:00")
    assert first.first_run and "first regeneration" in findings_markdown(first)
    again = build_findings(paths, now="2026-01-08 06:00")  # nothing new: nothing changed
    assert again.first_run and again.changed_at == "2026-01-01 06:00"
    changed = _summaries()
    changed["03_regime_multiplier_grid"]["per_tickers"][0]["robust"] = False
    changed["03_regime_multiplier_grid"]["per_tickers"][0]["flips_under"] = ["no_dividends"]
    changed["02_market_regimes"]["data_end"] = "2019-01-31"
    changed["02_market_regimes"]["latest"][0]["regime"] = "ELEVATED"
    paths = _project(tmp_path, changed)
    third = build_findings(paths, now="2026-01-15 06:00")
    assert not third.first_run and third.changed_at == "2026-01-15 06:00"
    text = "\n".join(third.changes)
    assert "Data now end on 2019-01-31 (were 2018-12-31)." in text
    assert (
        "Layer Regime multipliers · SPX: validated: the walk-forward procedure (aggressive 5/7, "
        "prod 2/7); on its own: prod → fragile:"
    ) in text
    assert "Regime of SPX · vix_trend: CALM → ELEVATED." in text
    assert "IXIC" not in text  # unchanged rows are not listed
    page = findings_markdown(build_findings(paths, now="2026-01-22 06:00"))
    assert "At the regeneration of 2026-01-15 06:00:" in page  # kept until the next change


def test_written_page_and_fallback_render(tmp_path: Path) -> None:
    from research.pipeline.render import index_page

    paths = _project(tmp_path, _summaries())
    (paths.reports / "index.qmd").write_text(
        "---\ntitle: Lab\n---\n\nIntro.\n\n{{< include _findings.md >}}\n"
    )
    write_findings(paths, now="2026-01-01 06:00")
    stored = json.loads((paths.reports / "summaries" / "validated_config.json").read_text())
    assert stored[0]["layer"] == "Regime multipliers" and stored[0]["status"] == "validated"
    html = index_page(paths, [])
    assert "<table>" in html and "Validated configuration" in html
    assert 'href="executed/03_regime_multiplier_grid.html"' in html  # .ipynb → .html
    assert '<p class="rl-caption">Table: The validated configuration' in html
    assert "{{<" not in html and "{#tbl" not in html
    assert ">CALM</td>" in html and ">high</td>" in html


def test_fallback_keeps_the_heading_after_a_caption(tmp_path: Path) -> None:
    from research.pipeline.render import qmd_to_html

    _, body = qmd_to_html("| a |\n|---|\n| 1 |\n\n: Cap {#tbl-x}\n\n## Next\n\nText.\n")
    assert '<p class="rl-caption">Table: Cap</p>' in body
    assert "<h2>Next</h2>" in body and "## Next" not in body


def test_the_scheduled_workflow_regenerates_incrementally_and_keeps_the_last_good_site() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    flow = yaml.safe_load((root / ".github/workflows/regenerate.yml").read_text())
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["schedule"][0]["cron"] == "0 6 * * 1" and "workflow_dispatch" in on
    steps = flow["jobs"]["regenerate"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert "make report" in runs  # the same command as on a laptop
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache"))
    assert "reports/executed" in cache["with"]["path"]  # incremental: the manifest comes back
    upload = next(s for s in steps if "upload-pages-artifact" in str(s.get("uses", "")))
    assert upload["if"] == "success()" and upload["with"]["path"] == "reports/_site"
    failed = next(s for s in steps if "upload-artifact@" in str(s.get("uses", "")))
    assert failed["if"] == "failure()" and failed["with"]["path"] == "reports/executed/failed"
    assert flow["jobs"]["deploy"]["needs"] == "regenerate"
    assert flow["jobs"]["deploy"]["if"] == "success()"


def test_summaries_of_a_users_own_data_with_empty_parts_do_not_break_the_page() -> None:
    """Own-data notebooks write ``None`` where a part did not run (no experiments, no tunes)."""
    summaries = _summaries(
        **{
            "05_regime_attribution": {"best_by_regime": None, "finding": None},
            "06_tune_attribution": {"uplift": None, "current": None, "drift": None},
            "07_llm_threshold_calibration": {"tests": None, "controls": None, "threshold": None},
        }
    )
    summaries["03_regime_multiplier_grid"]["per_tickers"][0]["controls"] = None
    summaries["03_regime_multiplier_grid"]["per_tickers"][0]["sharpe_test"] = None
    rows = {(r.layer, r.scope): r for r in layer_rows(summaries)}
    assert ("Strategy configuration by regime", "experiments") not in rows  # nothing to show
    # nothing evaluated, no verdict: untested, never validated
    assert rows[("Exit parameters", "all trades")].status == "untested"
    assert rows[("AI threshold", "all trades")].status == "untested"
    assert "p n/a" in rows[("Regime multipliers", "SPX")].evidence


def test_a_summary_cannot_lower_the_tunes_minimum() -> None:
    tunes = _summaries()["06_tune_attribution"]
    tunes["min_tunes_for_verdict"] = 1
    tunes["uplift"] = [
        {"vs": "baseline", "n": 2, "mean_diff": 2.3, "ci_low": 1.9, "ci_high": 2.7},
        {"vs": "regime-blind", "n": 2, "mean_diff": 0.2, "ci_low": 0.1, "ci_high": 0.3},
    ]
    row = next(
        r for r in layer_rows(_summaries(**{"06_tune_attribution": tunes}))
        if r.layer == "Exit parameters"
    )  # fmt: skip
    assert row.status == "untested"


@pytest.mark.parametrize("days", [None, 100, 503])
def test_grid_gain_on_a_short_or_unknown_out_of_sample_record_is_untested(
    days: int | None,
) -> None:
    """An older summary with ``adds_value`` but fewer than two years out of sample (or none
    recorded) is not validated."""
    row = _one_grid_row(oos_days=days)
    assert row.status == "untested"
    assert _one_grid_row(oos_days=504).status == "validated"


@pytest.mark.parametrize(
    ("blocks", "status"), [(None, "untested"), (4, "untested"), (5, "validated")]
)
def test_exits_need_enough_independent_blocks_of_years(blocks: int | None, status: str) -> None:
    tunes = _summaries()["06_tune_attribution"]
    tunes["uplift"][1]["ci_low"] = 0.004
    tunes["uplift_blocks"] = blocks
    tunes["min_blocks_for_verdict"] = 1  # cannot lower the page's own minimum
    row = next(
        r for r in layer_rows(_summaries(**{"06_tune_attribution": tunes}))
        if r.layer == "Exit parameters"
    )  # fmt: skip
    assert row.status == status
    if blocks == 4:
        assert "fall in 4 independent blocks of years, fewer than the 5" in row.choice


def test_trade_filter_without_a_recommended_threshold_says_so() -> None:
    summary = {
        **_summaries()["07_llm_threshold_calibration"],
        "threshold": {**THRESHOLD, "recommended": None, "helps_in_sample": False},
    }
    row = next(
        r for r in layer_rows(_summaries(**{"07_llm_threshold_calibration": summary}))
        if r.layer == "AI threshold"
    )  # fmt: skip
    assert (
        "no confidence threshold recommended (none improved on every trade in sample); out of "
        "sample the least bad keeps 120 trades"
    ) in row.evidence
    assert "threshold None" not in row.evidence


def _losing(tickers: str) -> dict[str, Any]:
    part = _grid_part("loses_less", False, [], tickers)
    part["oos_cagr_walk_forward"] = {"SPX": -0.068, "IXIC": -0.083}.get(tickers, -0.265)
    part["tear_sheets"] = [
        {"name": "flat (benchmark)", "answer": "flat (benchmark) lost $790,007 over 2,510 trades."}
    ]
    part["stopped_trading"] = {"loose": "2010-09-07"} if tickers == "SPX+IXIC" else {}
    return part


def test_bottom_line_of_a_losing_strategy_names_the_baseline_and_says_why() -> None:
    summaries = _summaries(
        **{
            "03_regime_multiplier_grid": {"per_tickers": [_losing("SPX"), _losing("IXIC")]},
            "04_portfolio_limits_grid": {"per_tickers": [_losing("SPX+IXIC")]},
        }
    )
    summaries.pop("07_llm_threshold_calibration")
    rows = layer_rows(summaries)
    lines = bottom_line(rows, summaries, "2018-12-31", "2026-01-01 06:00")
    assert lines[0].startswith("**Run now: nothing validated — the base strategy (bear call")
    assert "not validated" in lines[0]
    assert lines[1] == (
        "It loses money: out of sample it grows −26.5% to −6.8% a year across the 3 markets and "
        "limit studies and beats cash in none — not a configuration to trade as it stands."
    )
    assert lines[2] == "Why, in sample: flat (benchmark) lost $790,007 over 2,510 trades."
    assert "loose (SPX+IXIC) on 2010-09-07" in lines[3]
    assert lines[-1].startswith('Data end 2018-12-31, regenerated 2026-01-01 06:00: "today"')


def test_bottom_line_names_what_is_validated() -> None:
    summaries = _summaries()
    lines = bottom_line(layer_rows(summaries), summaries, "2018-12-31", None)
    assert lines[0].startswith("**Run now: bear call spreads")
    assert "Regime multipliers (SPX): the walk-forward procedure" in lines[0]
    assert "— validated" in lines[0] and "every other layer keeps its baseline" in lines[0]
    assert "beats cash in 2 of them" in lines[1]
    assert lines[-1].startswith('Data end 2018-12-31: "today" on this page is 2018-12-31')


def test_page_opens_with_the_bottom_line_and_ends_with_its_provenance(tmp_path: Path) -> None:
    paths = _project(tmp_path, _summaries())
    page = findings_markdown(build_findings(paths, now="2026-01-01 06:00"))
    assert page.startswith("## Bottom line\n\n**Run now:")
    assert page.index("## Bottom line") < page.index("## Validated configuration")
    assert "## Regime on the data's last day (2018-12-31)" in page
    tail = page[page.index("## Provenance of this page") :]
    assert "at 2026-01-01 06:00" in tail and "data end 2018-12-31" in tail
    assert "| `summaries/03_regime_multiplier_grid.json` |" in tail


def test_grid_evidence_names_the_variants_that_stopped_trading() -> None:
    part = _losing("SPX+IXIC")
    part["stopped_trading"] = {"loose": "2010-09-07", "tight": "2013-06-27"}
    part["idle_note"] = "… The in-sample best, loose, is the one that stopped trading first: …"
    limits = {"04_portfolio_limits_grid": {"benchmark": "wide_open", "per_tickers": [part]}}
    evidence = layer_rows(limits)[1].evidence
    assert "in sample 2 variants stopped trading (equity below one contract's risk)" in evidence
    assert "loose first on 2010-09-07 — the in-sample best is only the one that stopped first" in (
        evidence
    )
    part.pop("idle_note")
    assert "only the one that stopped first" not in layer_rows(limits)[1].evidence


@pytest.mark.parametrize(
    ("verdict", "status"),
    [
        ("stop and investigate", "not validated"),
        ("keep paper", "untested"),
        ("go to 50%", "validated"),
        ("go to 100%", "validated"),
    ],
)
def test_paper_tracking_row_reads_the_graduation_verdict(verdict: str, status: str) -> None:
    from research.pipeline.findings import layer_rows

    summary = {
        "verdict": verdict,
        "synthetic": True,
        "closed_trades": 48,
        "trading_days": 66,
        "matched": 48,
        "backtest_only": 6,
        "checks": [{"name": "idle days", "status": "fail"}, {"name": "win rate", "status": "ok"}],
    }
    (row,) = [
        r
        for r in layer_rows(
            {"10_paper_tracking": {**summary, "synthetic": False, "paper_log": "f"}}
        )
        if r.layer == "Paper tracking"
    ]
    assert (row.choice, row.status, row.scope) == (verdict, status, "f")
    assert "48 closed paper trades over 66 trading days" in row.evidence
    assert "failed: idle days" in row.evidence and row.page.endswith("10_paper_tracking.ipynb")
    assert not [r for r in layer_rows({}) if r.layer == "Paper tracking"]
    # the page's synthetic sample is no account: untested, whatever its verdict
    (sample,) = [
        r for r in layer_rows({"10_paper_tracking": summary}) if r.layer == "Paper tracking"
    ]
    assert sample.status == "untested" and sample.scope == "SYNTHETIC sample log"
    assert sample.choice == f"no paper log yet (the synthetic sample: {verdict})"
