"""``research chains calibrate``: fit the pricing model's smile to option-chain quotes."""

from __future__ import annotations

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
    """Fit the model's ATM level and smile to the quotes, print its error on the strategy's
    spreads before and after, and write parameters `backtest run --skew` accepts."""
    from research.backtest.calibrate import calibrate
    from research.backtest.spreads import BacktestConfig
    from research.data.chains import load_chains
    from research.data.contracts import dates_read_as
    from research.data.market import load_iv_index
    from research.options import check_before_work

    fmt = check_before_work(
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[("--chains", chains), ("--iv", iv)],
        outputs=[("--out", out)],
    )
    with dates_read_as(fmt):
        frame = load_chains(
            chains,
            layout=layout.value,
            underlyings=None if underlying is None else [underlying],
            start=start,
            end=end,
            max_dte=120,
            moneyness=(0.5, 1.5),
        )
        names = sorted(frame["underlying"].unique())
        if len(names) != 1:
            raise ValueError(f"{chains}: underlyings {names[:10]}; choose one with --underlying")
        index = load_iv_index(iv)
    cfg = BacktestConfig().replace(**{"spread.strategy": strategy.value})
    fit = calibrate(frame, index, config=cfg, source=str(chains))
    fit.write(out)
    typer.echo(
        f"{fit.underlying} {fit.start}..{fit.end}: fitted {fit.quotes:,} out-of-the-money quotes\n"
        f"  ATM = {fit.atm_intercept:+.4f} + {fit.atm_ratio:.4f} x index IV\n"
        f"  slope {fit.slope:.4f}, curvature {fit.curvature:.4f} (floor {fit.floor:g}, "
        f"cap {fit.cap:g})\n"
        f"  IV error (RMS, vol points): before {fit.iv_rmse_before:.2f}, "
        f"after {fit.iv_rmse_after:.2f}\n"
        f"  strategy spreads compared on {fit.spread_days} days\n"
        f"wrote {out}"
    )
    typer.echo(
        f"model/chain spread mid ratio: before {fit.ratio_before:.3f}, after {fit.ratio_after:.3f}"
    )
