"""``research regimes …``: classify bars with any regime model; the volatility snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import (
    MODELS,
    DateFormatOption,
    RegimeModel,
    parse_regime_model,
    refusals,
)

app = typer.Typer(help="Market regimes: classify bars with any model.", no_args_is_help=True)


@app.command("classify")
@refusals()
def regimes_classify(
    model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"The regime model: {MODELS}.", metavar="MODEL", parser=parse_regime_model
        ),
    ],
    bars: Annotated[Path, typer.Option(help="A file in the bars contract.")],
    out: Annotated[Path, typer.Option(help="Output table (.csv, .parquet, .json, .jsonl).")],
    iv: Annotated[
        list[Path] | None,
        typer.Option(help="IV index file(s) (iv_index contract); repeatable, they add up."),
    ] = None,
    iv_proxy: Annotated[
        bool,
        typer.Option(
            "--iv-proxy",
            help="Give every symbol an IV where none is published: the proxy fitted on its own "
            "index, a symbol's IV scaled (--iv-from), or its uncalibrated GARCH forecast.",
        ),
    ] = False,
    iv_from: Annotated[
        list[str] | None,
        typer.Option(help="SYMBOL=ANCHOR: scale SYMBOL's IV from ANCHOR's; repeatable."),
    ] = None,
    ruleset: Annotated[
        Path | None, typer.Option(help="Ruleset YAML/JSON (default: the built-in defaults).")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB.")] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Classify every (date, symbol) of BARS and write the long regime table to OUT."""
    from research.backtest.service import parse_relations
    from research.data.contracts import dates_read_as
    from research.data.writers import write_table
    from research.options import check_before_work
    from research.regimes.ruleset import load_ruleset
    from research.regimes.service import classify_files, summarize

    fmt = check_before_work(
        date_format=date_format,
        inputs=[("--bars", bars), ("--iv", iv), ("--ruleset", ruleset)],
        outputs=[("--out", out)],
    )
    notes: list[str] = []
    with dates_read_as(fmt):
        labels = classify_files(
            model.value,
            bars,
            iv=iv or None,
            iv_proxy=iv_proxy,
            ruleset=ruleset,
            table=table,
            relations=parse_relations(iv_from),
            notes=notes,
        )
    write_table(labels, out)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(summarize(labels, load_ruleset(ruleset)))
    typer.echo(f"wrote {len(labels)} rows to {out}")


@app.command("snapshot")
@refusals()
def regimes_snapshot(
    bars: Annotated[Path, typer.Option(help="A file in the bars contract.")],
    out: Annotated[Path, typer.Option(help="JSON file to write.")],
    asof: Annotated[
        str | None, typer.Option(help="Date, YYYY-MM-DD (default: the last bar).")
    ] = None,
    ruleset: Annotated[Path | None, typer.Option(help="Ruleset YAML/JSON.")] = None,
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB.")] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Write the EWMA volatility-regime snapshot (vol_regime, vol.short/long/ratio per symbol
    and vol_regime_summary) as JSON."""
    import json

    from research.data.contracts import dates_read_as
    from research.options import check_before_work
    from research.regimes import sizing
    from research.regimes.service import classify_files

    fmt = check_before_work(
        dates=[("--asof", asof)],
        date_format=date_format,
        inputs=[("--bars", bars), ("--ruleset", ruleset)],
        outputs=[("--out", out)],
    )
    with dates_read_as(fmt):
        labels = classify_files("vol_ratio", bars, ruleset=ruleset, table=table)
    snap = sizing.regime_snapshot(labels, asof=asof)
    sizing.write_snapshot(snap, out)
    typer.echo(json.dumps(snap["vol_regime_summary"]))
    typer.echo(f"wrote {out}")
