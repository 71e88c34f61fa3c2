"""The findings page: one rule per layer turns the summaries' numbers into a status and a
choice (never a winner that is not validated), the numbers shown are the summaries', what changed
since the previous regeneration is detected, and the fallback renders the included page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from research.config import Paths
from research.pipeline.findings import build_findings, findings_markdown, layer_rows, write_findings


def _grid_part(code: str, robust: bool, flips: list[str], tickers: str = "SPX") -> dict[str, Any]:
    return {
        "tickers": tickers,
        "verdict_code": code,
        "robust": robust,
        "flips_under": flips,
        "strategy_profitable_oos": code == "adds_value",
        "oos_start": "2005-01-04",
        "oos_end": "2018-12-31",
        "oos_sharpe_walk_forward": 0.4321,
        "oos_sharpe_flat": 0.1234,
        "controls": {"exposure_matched": {"oos_sharpe": 0.2222}},
        "sharpe_test": {"p_value": 0.0123},
        "permutation_p": 0.0456,
        "wf_winners": {"aggressive": 5, "prod": 2},
    }


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
            "tests": {"win_diff": 0.08, "win_p": 0.01},
            "controls": {"random_p": 0.02, "beats_random": True, "beats_rule": True},
            "threshold": {
                "recommended": 0.7,
                "out_of_sample": {"uplift": 55.0, "uplift_ci_low": 12.0, "uplift_ci_high": 99.0},
            },
        },
        "06_tune_attribution": {
            "tunes_count": 36,
            "uplift": [
                {"vs": "baseline", "mean_diff": 2.3, "ci_low": 1.9, "ci_high": 2.7},
                {"vs": "regime-blind", "mean_diff": 0.015, "ci_low": 0.0, "ci_high": 0.038},
            ],
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
    assert rows[0].choice == "aggressive (5/7 folds)"
    assert rows[1].choice.startswith("flat (kept") and "aggressive" in rows[1].choice
    assert rows[1].robustness == "fragile — flips under real_iv_only, skew_x1.5"
    assert rows[2].choice == "flat (kept: no validated alternative)"
    # the evidence carries the summary's numbers, formatted, and links to the page
    assert "Sharpe 0.43 vs 0.12 for flat and 0.22" in rows[0].evidence
    assert "(Sharpe-difference test p = 0.012; label permutations p = 0.046)" in rows[0].evidence
    assert rows[0].page == "executed/03_regime_multiplier_grid.ipynb"
    # a study that has not run says so
    limits = [r for r in layer_rows(_summaries()) if r.layer == "Portfolio limits"]
    assert [(r.status, r.evidence) for r in limits] == [("no evidence", "the study has not run")]


@pytest.mark.parametrize(
    ("change", "status", "choice"),
    [
        ({}, "validated", "approve when confidence ≥ 0.7"),
        (
            {"threshold": {"recommended": 0.7, "out_of_sample": {"uplift_ci_low": -5.0}}},
            "fragile",
            "no filter (kept: the threshold's gain is not significant)",
        ),
        (
            {"controls": {"random_p": 0.5, "beats_random": False, "beats_rule": True}},
            "not validated",
            "no filter (take every trade the rules take)",
        ),
        ({"tests": {"win_diff": -0.05, "win_p": 0.01}}, "not validated", "no filter"),
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


def test_exits_stay_the_seeds_unless_the_regime_choice_beats_ignoring_the_regime() -> None:
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
    assert "Layer Regime multipliers · SPX: validated: aggressive (5/7 folds) → fragile:" in text
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
    assert rows[("Exit parameters", "all trades")].status == "not validated"
    assert rows[("AI threshold", "all trades")].status == "not validated"
    assert "p n/a" in rows[("Regime multipliers", "SPX")].evidence
