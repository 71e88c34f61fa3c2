"""``research data …``: check files against the data contracts, generate and export data."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from research.cli._common import DateFormatOption, choice, error_line, fail, refusals

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(help="Data contracts: validate files.", no_args_is_help=True)


def summary(kind: str, path: Path | str, df: pd.DataFrame) -> str:
    """One-line description of a validated frame.

    Parameters
    ----------
    kind : str
        Contract name.
    path : Path or str
        The file that was validated.
    df : pandas.DataFrame
        The validated frame.

    Returns
    -------
    str
        ``"OK: PATH satisfies the 'KIND' contract (N rows, FIRST..LAST)"``; the date range is
        that of the contract's first date column and is left out when there is none.
    """
    from research.data.contracts import CONTRACTS

    n = len(df)
    parts = [f"{n} row{'s' if n != 1 else ''}"]
    date_cols = [f.name for f in CONTRACTS[kind].fields if f.type == "date" and f.name in df]
    if date_cols:
        dates = df[date_cols[0]].dropna()
        if not dates.empty:
            parts.append(f"{dates.min():%Y-%m-%d}..{dates.max():%Y-%m-%d}")
    return f"OK: {path} satisfies the '{kind}' contract ({', '.join(parts)})"


def validate_command(
    kind: str, path: Path, table: str | None, date_format: str | None = None
) -> int:
    """Validate one file against a contract and report on stdout / stderr (the body of
    ``research data validate``).

    Parameters
    ----------
    kind : str
        Contract name, e.g. ``"bars"``.
    path : Path
        File to check (any format :func:`research.data.loaders.read_table` accepts); a
        relative path is taken from the current folder only.
    table : str or None
        Table name for SQLite / DuckDB files.
    date_format : str or None
        How the file writes its dates (``"ISO"``, the default, or e.g. ``"%d/%m/%Y"``).

    Returns
    -------
    int
        0 after printing ``OK: PATH satisfies the 'KIND' contract (N rows, FIRST..LAST)`` to
        stdout; 1 after printing the :class:`~research.data.errors.ContractError` message (or
        ``error: <bad date format>``) to stderr.
    """
    from research.data.errors import ContractError
    from research.data.loaders import load
    from research.exceptions import InputError
    from research.options import check_date_format

    try:
        date_format = check_date_format(date_format)
    except InputError as exc:
        error_line(exc)
        return 1
    try:
        df = load(kind, path, table=table, date_format=date_format, project=False)
    except ContractError as err:
        typer.echo(str(err), err=True)
        return 1
    typer.echo(summary(kind, path, df))
    return 0


@app.command("validate")
def data_validate(
    kind: Annotated[
        str,
        typer.Argument(
            help="Contract: bars, iv_index, signals, experiments, tunes, trades, option_chains, "
            "paper_trades, llm_decisions."
        ),
    ],
    path: Annotated[Path, typer.Argument(help="CSV, Parquet, JSON/JSONL, SQLite or DuckDB file.")],
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB files.")] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Check a file against a data contract; print every problem and exit 1 if it fails."""
    raise typer.Exit(validate_command(kind, path, table, date_format))


@app.command("generate")
@refusals()
def data_generate(
    out: Annotated[Path | None, typer.Option(help="Folder (default data/sample).")] = None,
) -> None:
    """Regenerate the research tables (experiments, tunes, trades) from the embedded bars."""
    from research.config import PATHS
    from research.optimize.datasets import generate

    folder = out or PATHS.sample
    if folder.exists() and not folder.is_dir():
        fail(f"--out {folder} is a file; name a folder")
    written = generate(folder)
    for path in written.values():
        typer.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


@app.command("tunes")
@refusals()
def data_tunes(
    out: Annotated[Path, typer.Option(help="Where to write the tunes (CSV, Parquet, ...).")],
    bars: Annotated[Path | None, typer.Option(help="Bars file (default: embedded).")] = None,
    iv: Annotated[list[Path] | None, typer.Option(help="IV index file(s).")] = None,
    symbols: Annotated[
        list[str] | None, typer.Option(help="Symbols to tune (default: every one).")
    ] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Walk-forward tuning runs on your own bars, in the tunes contract: per symbol, one tune
    per year with two full years before it (2 years in sample, the year out of sample), the
    sample's 16 bear-call parameter sets as runs, delta 0.05-0.15 / PT 65 as the baseline.
    Feed the file to `research attribute tunes --tunes` and notebook 06."""
    import pandas as pd

    from research.backtest.service import load_panel
    from research.data import market
    from research.data.contracts import dates_read_as, validate
    from research.data.writers import write_table
    from research.optimize.datasets import fold_years, tunes
    from research.options import check_before_work

    fmt = check_before_work(
        date_format=date_format,
        inputs=[("--bars", bars), ("--iv", iv)],
        outputs=[("--out", out)],
    )
    with dates_read_as(fmt):
        available = sorted(set(market.load_bars(bars)["symbol"])) if bars else ["SPX", "IXIC"]
    wanted = symbols or available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise ValueError(f"--symbols {unknown} have no bars (bars: {available})")
    frames = []
    for sym in wanted:
        with dates_read_as(fmt):
            panel = load_panel([sym], bars_path=bars, iv_path=iv or None)[0]
        years = fold_years(pd.DatetimeIndex(panel.dates))
        if len(years) == 0:
            typer.echo(f"note: {sym}: fewer than three full calendar years: no tune", err=True)
            continue
        typer.echo(f"{sym}: {len(years)} tunes ({years[0]}..{years[-1]} out of sample) ...")
        frames.append(tunes({sym: panel}))
    if not frames:
        raise ValueError("no symbol has three full calendar years of bars")
    frame = validate("tunes", pd.concat(frames, ignore_index=True), source="generated tunes")
    write_table(frame, out)
    typer.echo(f"wrote {out}: {frame['tune_id'].nunique()} tunes, {len(frame):,} rows")


class ExportKind(enum.StrEnum):
    """The built-in data ``research data export`` writes."""

    bars = "bars"
    iv = "iv"


@app.command("export")
@refusals()
def data_export(
    kind: Annotated[
        ExportKind,
        typer.Argument(
            help="bars or iv.",
            parser=choice(ExportKind, lambda w: f"unknown kind {w!r}; use bars or iv"),
        ),
    ],
    out: Annotated[Path, typer.Option(help="File to write (.csv, .parquet, .json, ...).")],
    symbols: Annotated[
        str, typer.Option(help="Comma-separated built-in symbols: SPX, IXIC.")
    ] = "SPX,IXIC",
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    proxy: Annotated[
        bool, typer.Option(help="iv: add the labelled GARCH proxy where no index is published.")
    ] = False,
) -> None:
    """Write built-in market data in its contract, to see the expected shape or to mix the
    built-in series with your own files."""
    import pandas as pd

    from research.data import market
    from research.data.writers import write_table
    from research.options import check_before_work

    check_before_work(dates=[("--start", start), ("--end", end)], outputs=[("--out", out)])
    names = [s.strip() for s in symbols.split(",") if s.strip()]
    if kind is ExportKind.bars:
        frame = market.load_bars(symbols=names, start=start, end=end)
    else:
        published = market.load_iv_index(symbols=names, start=start, end=end)
        if proxy:
            bars = market.load_bars(symbols=names)
            fit = market.fit_iv_proxy(market.embedded_bars(["SPX"]), market.embedded_vix())
            frame = market.iv_with_proxy(bars, market.load_iv_index(), fit)
            frame = frame.loc[frame["symbol"].isin(names)]
            if start is not None:
                frame = frame.loc[frame["date"] >= pd.Timestamp(start)]
            if end is not None:
                frame = frame.loc[frame["date"] <= pd.Timestamp(end)]
        else:
            frame = published
        if frame.empty:
            raise ValueError(
                f"no IV for {names} between {start} and {end} (the built-in index is VIX for "
                "SPX, 2014-2018; --proxy adds the labelled proxy for every symbol)"
            )
    write_table(frame.reset_index(drop=True), out)
    typer.echo(f"wrote {len(frame):,} rows ({kind.value}) to {out}")
