"""``research attribute …``: what worked in which regime (seeds 000, 001, 002)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

attribute_app = typer.Typer(
    help="Regime attribution of signals, experiments and tuning runs.", no_args_is_help=True
)


@attribute_app.command("signals")
def attribute_signals(
    signals: Annotated[
        Path | None,
        typer.Option(help="Signal records (signals contract; default data/sample/signals.csv)."),
    ] = None,
    bars: Annotated[
        Path | None, typer.Option(help="Bars of the signals' symbols (default: embedded).")
    ] = None,
    iv: Annotated[
        list[Path] | None, typer.Option(help="IV index file(s); repeatable, they add up.")
    ] = None,
    model: Annotated[
        str, typer.Option(help="Regime model for records without a regime.")
    ] = "bull_bear_vol",
    by: Annotated[str, typer.Option(help="agent or cluster.")] = "agent",
    min_n: Annotated[int, typer.Option(help="Fewer records: shown, not evidence.")] = 30,
    out: Annotated[Path | None, typer.Option(help="Write the agent x regime table.")] = None,
    heatmap_out: Annotated[
        Path | None, typer.Option(help="Write the regime x month heatmap table.")
    ] = None,
) -> None:
    """Per agent (or cluster) x regime: mean 20-day forward return with a month-cluster
    bootstrap interval, hit rate with a Wilson interval, and the excess over the regime's
    every-day base rate; decay by horizon; optionally the regime x month heatmap."""
    import pandas as pd

    from research.attribution import signals as sg
    from research.attribution.service import load_signal_study
    from research.data.errors import ContractError
    from research.data.writers import write_table
    from research.regimes.ruleset import RulesetError

    if by not in ("agent", "cluster"):
        typer.echo(f"error: --by must be agent or cluster, got {by!r}", err=True)
        raise typer.Exit(1)
    try:
        study = load_signal_study(signals, bars_path=bars, iv_path=iv or None, model=model)
        table = sg.regime_table(study.prepared, by=by, min_n=min_n)
        decay = sg.decay(study.prepared, by=by)
        heat = sg.heatmap(study.prepared, by=by) if heatmap_out is not None else None
    except (ContractError, RulesetError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for note in [*study.market.notes, *study.prepared.notes()]:
        typer.echo(f"note: {note}", err=True)
    cols = [by, "regime", "n", "mean_return", "ci_low", "ci_high", "hit_rate", "base_hit_rate"]
    cols += ["excess_return", "excess_ci_low", "excess_ci_high", "enough"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(
            f"{len(study.prepared.usable):,} signals with a regime and a 20-day outcome; "
            "in-sample; 95% intervals: mean by month-cluster bootstrap, hit rate Wilson "
            "(records counted as independent: too narrow)"
        )
        typer.echo(table[[c for c in cols if c in table]].round(4).to_string(index=False))
        wide = decay.pivot(index=by, columns="horizon", values="mean_return")
        typer.echo("\nmean forward return by horizon (trading days):")
        typer.echo(wide.round(4).to_string())
    if out is not None:
        write_table(table, out)
        typer.echo(f"wrote {out}")
    if heat is not None and heatmap_out is not None:
        write_table(heat, heatmap_out)
        typer.echo(f"wrote {heatmap_out}")
