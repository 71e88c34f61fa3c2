"""``research paper``: the paper (or live) account against the validated backtest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import (
    BarsOption,
    DateFormatOption,
    IvOption,
    RegimeModel,
    parse_regime_model,
    refusals,
)

app = typer.Typer(
    help="Paper trading: compare the account's trades with the backtest.", no_args_is_help=True
)


@app.command("compare")
@refusals()
def paper_compare(
    paper: Annotated[Path, typer.Option(help="The account's trades (paper_trades contract).")],
    config: Annotated[
        Path | None,
        typer.Option(help="The validated configuration (YAML, as backtest run --config)."),
    ] = None,
    bars: BarsOption = None,
    iv: IvOption = None,
    chains: Annotated[
        Path | None, typer.Option(help="Option-chain file: price the backtest from quotes.")
    ] = None,
    regime_model: Annotated[
        RegimeModel,
        typer.Option(help="Regimes of the by-regime checks.", parser=parse_regime_model),
    ] = RegimeModel.bull_bear_vol,
    history_years: Annotated[
        float, typer.Option(help="Years of backtest before the paper log (its distributions).")
    ] = 6.0,
    expected_approval: Annotated[
        float | None,
        typer.Option(help="The trade filter's approval rate in its backtest, in [0, 1]."),
    ] = None,
    stage: Annotated[
        str, typer.Option(help="paper, or half (live at 50% of the validated size).")
    ] = "paper",
    days_at_stage: Annotated[
        int, typer.Option(help="Trading days at half size so far (with --stage half).")
    ] = 0,
    date_format: DateFormatOption = None,
) -> None:
    """Run the validated configuration's backtest over the paper log's dates and print every
    daily, weekly and monthly check of the validation plan with its uncertainty, the trades
    matched and unmatched, and the graduation verdict."""
    import pandas as pd

    from research.backtest.paper import paper_against_backtest
    from research.cli.backtest import backtest_config
    from research.data.contracts import dates_read_as
    from research.data.loaders import load
    from research.options import Range, check_before_work

    fmt = check_before_work(
        numbers=[
            ("--history-years", history_years, Range(1, 50)),
            ("--days-at-stage", days_at_stage, Range(0, 10_000, integer=True)),
            *(
                [("--expected-approval", expected_approval, Range(0, 1))]
                if expected_approval is not None
                else []
            ),
        ],
        date_format=date_format,
        inputs=[("--paper", paper), ("--config", config), ("--bars", bars), ("--chains", chains)],
    )
    if stage not in ("paper", "half"):
        raise ValueError(f"--stage {stage!r}: use paper or half")
    cfg = backtest_config(config, {})
    with dates_read_as(fmt):
        log = load("paper_trades", paper)
        if log.empty:
            raise ValueError(f"{paper}: no trades")
        comparison, _ = paper_against_backtest(
            log,
            cfg,
            bars_path=None if bars is None else str(bars),
            iv_path=iv or None,
            chains_path=None if chains is None else str(chains),
            regime_model=regime_model.value,
            history_years=history_years,
            expected_approval=expected_approval,
            stage=stage,
            days_at_stage=days_at_stage,
        )
    typer.echo(comparison.answer().replace("**", ""))
    table = comparison.table()[
        ["period", "name", "status", "value", "expected", "low", "high", "p"]
    ]
    with pd.option_context("display.width", 160, "display.max_columns", 10):
        typer.echo("\nchecks:\n" + table.to_string(index=False, float_format=lambda x: f"{x:,.3g}"))
    for title, frame, columns in (
        (
            "paper trades the backtest did not take",
            comparison.paper_only,
            ["entry_time", "underlying", "short_strike", "long_strike", "expiration"],
        ),
        (
            "backtest entries the paper account skipped",
            comparison.backtest_only,
            ["entry_date", "ticker", "short_strike", "long_strike", "expiration"],
        ),
    ):
        if len(frame):
            typer.echo(
                f"\n{title} ({len(frame)}):\n" + frame[columns].head(10).to_string(index=False)
            )
    typer.echo(f"\nverdict: {comparison.verdict}")
