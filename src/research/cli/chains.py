"""``research chains calibrate``: fit the pricing model's smile to option-chain quotes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import (
    ChainLayout,
    Strategy,
    parse_chain_layout,
    parse_strategy,
    refusals,
)
from research.cli.backtest import DELTA, DTE, WIDTH_PCT

app = typer.Typer(help="Option chains: calibrate the pricing model.", no_args_is_help=True)


@app.command("calibrate")
@refusals()
def chains_calibrate(
    chains: Annotated[Path, typer.Option(help="Option-chain file (any layout).")],
    out: Annotated[Path, typer.Option(help="Where to write the smile parameters (YAML).")],
    iv: Annotated[
        Path | None, typer.Option(help="IV index file for the chain's underlying (default: VIX).")
    ] = None,
    layout: Annotated[
        ChainLayout,
        typer.Option(help="auto, long, orats or cboe.", parser=parse_chain_layout("--layout")),
    ] = ChainLayout.auto,
    underlying: Annotated[
        str | None, typer.Option(help="Underlying to fit (default: the file's only one).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First quote date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last quote date, YYYY-MM-DD.")] = None,
    strategy: Annotated[
        Strategy,
        typer.Option(help="bear_call or bull_put (the spreads compared).", parser=parse_strategy),
    ] = Strategy.bear_call,
    dte: Annotated[int, typer.Option(help=f"Target days to expiry, {DTE}.")] = 30,
    min_delta: Annotated[float, typer.Option(help=f"Short leg's |delta|, {DELTA}.")] = 0.05,
    max_delta: Annotated[float, typer.Option(help=f"Short leg's |delta|, {DELTA}.")] = 0.15,
    width_pct: Annotated[float, typer.Option(help=f"Spread width, % of spot, {WIDTH_PCT}.")] = 1.5,
    date_format: Annotated[
        str | None,
        typer.Option(
            "--date-format",
            help="How the files write their dates: ISO (YYYY-MM-DD) or a strftime format such "
            "as %d/%m/%Y; default: YYYY-MM-DD, and MM/DD/YYYY (month first, US vendors) in "
            "option chains. One format reads a whole column.",
        ),
    ] = None,
) -> None:
    """Fit the model's ATM level and smile to the quotes the strategy trades (and, beside it,
    to every out-of-the-money quote), score both against the default model out of sample on
    the strategy's own spreads, say which to trust, and write parameters `backtest run --skew`
    accepts."""
    from research.backtest.calibrate import calibrate, quote_day_book
    from research.backtest.calibration_oos import out_of_sample
    from research.backtest.chain_entries import entry_spreads
    from research.backtest.spreads import BacktestConfig
    from research.data.chains import load_chains
    from research.data.contracts import dates_read_as
    from research.data.market import load_iv_index
    from research.options import check_before_work

    fmt = check_before_work(
        numbers=[
            ("--dte", dte, DTE),
            ("--min-delta", min_delta, DELTA),
            ("--max-delta", max_delta, DELTA),
            ("--width-pct", width_pct, WIDTH_PCT),
        ],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[("--chains", chains), ("--iv", iv)],
        outputs=[("--out", out)],
    )
    cfg = BacktestConfig().replace(
        **{
            "spread.strategy": strategy.value,
            "spread.target_dte": dte,
            "spread.min_delta": min_delta,
            "spread.max_delta": max_delta,
            "spread.width_pct": width_pct,
        }
    )
    with dates_read_as(fmt):
        frame = load_chains(
            chains,
            layout=layout.value,
            underlyings=None if underlying is None else [underlying],
            start=start,
            end=end,
            max_dte=max(120, dte + 60),
            moneyness=(0.5, 1.5),
        )
        names = sorted(frame["underlying"].unique())
        if len(names) != 1:
            raise ValueError(f"{chains}: underlyings {names[:10]}; choose one with --underlying")
        index = load_iv_index(iv)
    book, dates, tickers, spot = quote_day_book(frame, cfg)
    entries = entry_spreads(book, dates, tickers, spot, cfg, inside_data=False)
    entries = dataclasses.replace(entries, source=str(chains))
    fit = calibrate(frame, index, config=cfg, source=str(chains), entries=entries)
    pooled = calibrate(
        frame, index, config=cfg, source=str(chains), scope="pooled", entries=entries
    )
    oos = out_of_sample(frame, index, cfg, source=str(chains), entries=entries)
    table = oos.table().set_index("model")
    verdict = oos.verdict()
    fit = dataclasses.replace(
        fit,
        oos_days=verdict.days,
        oos_ratio_default=float(table["median_ratio"].iloc[0]),
        oos_ratio_calibrated=float(table["median_ratio"].iloc[1]),
        oos_verdict=verdict.choice,
    )
    fit.write(out)
    side = "calls" if strategy.value == "bear_call" else "puts"
    typer.echo(
        f"{fit.underlying} {fit.start}..{fit.end}: {strategy.value} spreads, short |delta| "
        f"{min_delta:g}-{max_delta:g}, {dte} days to expiry, {width_pct:g}% wide\n"
        f"fitted to the strategy's quotes ({side}, |delta| 0.02-0.5, at most {dte + 30} days to "
        f"expiry): {fit.quotes:,} quotes\n"
        f"  ATM = {fit.atm_intercept:+.4f} + {fit.atm_ratio:.4f} x index IV\n"
        f"  slope {fit.slope:.4f}, curvature {fit.curvature:.4f} (floor {fit.floor:g}, "
        f"cap {fit.cap:g})\n"
        f"  IV error (RMS, vol points): before {fit.iv_rmse_before:.2f}, "
        f"after {fit.iv_rmse_after:.2f}\n"
        f"pooled fit, beside it (every out-of-the-money quote, 7-90 days): {pooled.quotes:,} "
        f"quotes, ATM ratio {pooled.atm_ratio:.4f}, slope {pooled.slope:.4f}, curvature "
        f"{pooled.curvature:.4f}; IV error {pooled.iv_rmse_before:.2f} -> "
        f"{pooled.iv_rmse_after:.2f}\n"
        + (
            f"in sample (the quote days fitted on): strategy spreads priced on "
            f"{fit.spread_days} days, model/chain mid {fit.ratio_before:.3f} default, "
            f"{fit.ratio_after:.3f} calibrated, {pooled.ratio_after:.3f} pooled"
            if fit.spread_days
            else "in sample: no strategy spread on any quote day to price (below)"
        )
    )
    why = entries.explain()
    if why:
        typer.echo(why)
    if len(oos.folds):
        f0 = oos.folds.iloc[0]
        typer.echo(
            f"out of sample ({len(oos.folds)} fold{'s' if len(oos.folds) > 1 else ''}: fitted "
            f"on the quote days before {f0['scored_start'].date()}, then each later block on "
            "every day before it):\n"
            + table.to_string(
                formatters={
                    "median_ratio": "{:.3f}".format,
                    "median_error": "{:.1%}".format,
                    "within_5pct": "{:.0%}".format,
                }
            )
        )
    typer.echo(verdict.text.replace("**", ""))
    typer.echo(f"wrote {out}")
    typer.echo(
        f"model/chain spread mid ratio out of sample (median): default "
        f"{fit.oos_ratio_default:.3f}, calibrated {fit.oos_ratio_calibrated:.3f}"
        if fit.oos_days
        else "model/chain spread mid ratio out of sample: not measured (no quote day scored)"
    )
