"""The ``research`` command line: every notebook's computation, headless.

Heavy libraries are imported inside the commands so that ``research --help`` and a no-op
``research run`` stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from research.options import Range

if TYPE_CHECKING:
    from research.optimize.scenarios import StudyData
    from research.optimize.service import StudyInputs

app = typer.Typer(
    help="Regime Lab research commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Data contracts: validate files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
notebooks_app = typer.Typer(help="Notebook utilities.", no_args_is_help=True)
app.add_typer(notebooks_app, name="notebooks")


def _add_attribute_app() -> None:
    from research.cli_attribute import attribute_app

    app.add_typer(attribute_app, name="attribute")


def _add_llm_app() -> None:
    from research.cli_llm import llm_app

    app.add_typer(llm_app, name="llm")


_add_attribute_app()
_add_llm_app()


@app.command()
def run(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this notebook (name or NN prefix); repeatable."),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option("--params", help="Parameters YAML (default notebooks/params/default.yaml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-execute even if unchanged.")] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Notebooks executed in parallel (>= 1).")
    ] = None,
    timeout: Annotated[int, typer.Option(help="Per-cell timeout, seconds (>= 1).")] = 1800,
    renderer: Annotated[
        str, typer.Option(help="auto (quarto if on PATH, else nbconvert), quarto or nbconvert.")
    ] = "auto",
    no_render: Annotated[bool, typer.Option("--no-render", help="Execute only.")] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="If another research run is running in this project, wait for it to finish "
            "instead of failing.",
        ),
    ] = False,
) -> None:
    """Execute the notebooks with papermill (incrementally) and render reports/_site.

    One run at a time per project. Ctrl-C stops it (exit code 130): the notebooks that finished
    are kept, the published site is unchanged.
    """
    from research.exceptions import ResearchError
    from research.pipeline.runner import RunInterrupted, run_pipeline

    try:
        result = run_pipeline(
            only=only,
            params_file=params,
            force=force,
            jobs=jobs,
            timeout=timeout,
            render=not no_render,
            renderer=renderer,
            wait=wait,
        )
    except RunInterrupted as exc:  # Ctrl-C: one line saying what was kept
        typer.echo(str(exc), err=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was executed; the published site is unchanged", err=True)
        raise typer.Exit(130) from None
    except (ResearchError, ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {exc.filename or 'research run'}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    if not result.ok:
        typer.echo("failed notebooks:", err=True)
        for outcome in result.failures:
            typer.echo(f"  {outcome.describe()}", err=True)
        raise typer.Exit(1)


@data_app.command("validate")
def data_validate(
    kind: Annotated[
        str,
        typer.Argument(
            help="Contract: bars, iv_index, signals, experiments, tunes, trades, llm_decisions."
        ),
    ],
    path: Annotated[Path, typer.Argument(help="CSV, Parquet, JSON/JSONL, SQLite or DuckDB file.")],
    table: Annotated[str | None, typer.Option(help="Table name for SQLite/DuckDB files.")] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Check a file against a data contract; print every problem and exit 1 if it fails."""
    from research.data.cli_validate import validate_command

    raise typer.Exit(validate_command(kind, path, table, date_format))


@notebooks_app.command("prepare")
def notebooks_prepare(
    out: Annotated[
        Path,
        typer.Option(help="Folder for the parameterised notebooks (not the notebooks folder)."),
    ],
    params: Annotated[
        Path | None, typer.Option(help="Parameters YAML (e.g. notebooks/params/small.yaml).")
    ] = None,
) -> None:
    """Inject parameters into copies of the notebooks without executing them (for nbval)."""
    from research.exceptions import ResearchError
    from research.pipeline.prepare import prepare_notebooks

    try:
        written = prepare_notebooks(out, params_file=params)
    except (ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {exc.filename or out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))


regimes_app = typer.Typer(
    help="Market regimes: classify bars with any model.", no_args_is_help=True
)
app.add_typer(regimes_app, name="regimes")

# Shared by the data, regimes, backtest, grid and chains commands (annotations are read when
# the app runs, so data validate above may use DateFormatOption too).
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="How the files write their dates: ISO (YYYY-MM-DD, the default) or a strftime "
        "format such as %d/%m/%Y (day first) or %m/%d/%Y (month first); one format reads a "
        "whole column.",
    ),
]


def _checked(**checks: Any) -> str | None:
    """``research.options.check_before_work`` (numbers, dates, date format, inputs, outputs),
    or print its one-line error and exit 1 before any work. Returns the date format."""
    from research.exceptions import ResearchError
    from research.options import check_before_work

    try:
        return check_before_work(**checks)
    except (ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@regimes_app.command("classify")
def regimes_classify(
    model: Annotated[str, typer.Option(help="vix_trend, vol_ratio, bull_bear_vol, tags, markov.")],
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
    from research.backtest.spreads import ConfigError
    from research.data.contracts import dates_read_as
    from research.data.errors import ContractError
    from research.data.writers import write_table
    from research.exceptions import ResearchError
    from research.regimes.ruleset import RulesetError
    from research.regimes.service import classify_files

    fmt = _checked(
        date_format=date_format,
        inputs=[("--bars", bars), ("--iv", iv), ("--ruleset", ruleset)],
        outputs=[("--out", out)],
    )
    notes: list[str] = []
    try:
        with dates_read_as(fmt):
            labels = classify_files(
                model,
                bars,
                iv=iv or None,
                iv_proxy=iv_proxy,
                ruleset=ruleset,
                table=table,
                relations=parse_relations(iv_from),
                notes=notes,
            )
        write_table(labels, out)
    except (ConfigError, ContractError, RulesetError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    from research.regimes.ruleset import load_ruleset
    from research.regimes.service import summarize

    typer.echo(summarize(labels, load_ruleset(ruleset)))
    typer.echo(f"wrote {len(labels)} rows to {out}")


@regimes_app.command("snapshot")
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
    from research.data.errors import ContractError
    from research.exceptions import ResearchError
    from research.regimes import sizing
    from research.regimes.ruleset import RulesetError
    from research.regimes.service import classify_files

    fmt = _checked(
        dates=[("--asof", asof)],
        date_format=date_format,
        inputs=[("--bars", bars), ("--ruleset", ruleset)],
        outputs=[("--out", out)],
    )
    try:
        with dates_read_as(fmt):
            labels = classify_files("vol_ratio", bars, ruleset=ruleset, table=table)
        snap = sizing.regime_snapshot(labels, asof=asof)
        sizing.write_snapshot(snap, out)
    except (ContractError, RulesetError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(snap["vol_regime_summary"]))
    typer.echo(f"wrote {out}")


def _dividend_options(values: list[str] | None) -> dict[str, object]:
    """``--dividend-yield SPX=0.018 --dividend-yield 0.01`` → config changes."""
    from research.backtest.spreads import DEFAULT_DIVIDEND_YIELDS, ConfigError
    from research.options import check_number

    if not values:
        return {}
    yields = dict(DEFAULT_DIVIDEND_YIELDS)
    out: dict[str, object] = {}
    for value in values:
        name, _, number = value.rpartition("=")
        try:
            q = float(number)
        except ValueError as exc:
            raise ConfigError(
                f"--dividend-yield {value!r}: expected SYMBOL=YIELD or YIELD, e.g. SPX=0.018"
            ) from exc
        check_number(q, f"--dividend-yield {value}: the yield", DIVIDEND_YIELD)
        if name:
            yields[name.strip()] = q
        else:
            out["default_dividend_yield"] = q
    out["dividend_yields"] = yields
    return out


backtest_app = typer.Typer(help="Credit-spread backtests.", no_args_is_help=True)
app.add_typer(backtest_app, name="backtest")

# The accepted values of the numeric options (checked before any work; shown in the help).
DELTA = Range(0, 1, low_open=True, high_open=True)
DTE = Range(1, 1095, integer=True)
WIDTH_PCT = Range(0, 100, low_open=True)
PERCENTILE = Range(0, 100)
PROFIT_TARGET = Range(0, 100, low_open=True)
STOP_LOSS = Range(0, 10_000, low_open=True)
CONTRACTS = Range(1, 100_000, integer=True)
PERCENT = Range(0, 100, low_open=True)
POSITIONS = Range(1, 1_000, integer=True)
HALF_SPREAD = Range(0, 100)
FEE = Range(0, 1_000)
EQUITY = Range(0, 1e12, low_open=True)
RATE = Range(-0.5, 1, low_open=True, high_open=True)
DIVIDEND_YIELD = Range(0, 1, high_open=True)
SKEW_SLOPE = Range(0, 10)
CHAIN_FILL = Range(0, 1)
MULTIPLIER = Range(0, 100)


@backtest_app.command("run")
def backtest_run(
    tickers: Annotated[str, typer.Option(help="Comma-separated, e.g. SPX,IXIC.")] = "SPX",
    bars: Annotated[Path | None, typer.Option(help="Bars file (default: embedded).")] = None,
    iv: Annotated[
        list[Path] | None,
        typer.Option(help="IV index file(s); repeatable, they add up (VIX stays SPX's)."),
    ] = None,
    iv_from: Annotated[
        list[str] | None,
        typer.Option(help="SYMBOL=ANCHOR: scale SYMBOL's IV from ANCHOR's; repeatable."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    strategy: Annotated[str, typer.Option(help="bear_call or bull_put.")] = "bear_call",
    min_delta: Annotated[float, typer.Option(help=f"Short leg's |delta|, {DELTA}.")] = 0.05,
    max_delta: Annotated[float, typer.Option(help=f"Short leg's |delta|, {DELTA}.")] = 0.15,
    dte: Annotated[int, typer.Option(help=f"Target days to expiry, {DTE}.")] = 30,
    width_pct: Annotated[float, typer.Option(help=f"Spread width, % of spot, {WIDTH_PCT}.")] = 1.5,
    min_iv_percentile: Annotated[
        float, typer.Option(help=f"Enter only at this IV percentile or above, {PERCENTILE}.")
    ] = 0.0,
    profit_target: Annotated[float, typer.Option(help=f"% of credit, {PROFIT_TARGET}.")] = 65.0,
    stop_loss: Annotated[float, typer.Option(help=f"% of credit, {STOP_LOSS}.")] = 125.0,
    sizing: Annotated[str, typer.Option(help="fixed or scaled.")] = "fixed",
    contracts: Annotated[int, typer.Option(help=f"Contracts (fixed sizing), {CONTRACTS}.")] = 1,
    risk_pct: Annotated[
        float, typer.Option(help=f"% of equity at risk (scaled), {PERCENT}.")
    ] = 2.0,
    regime_model: Annotated[str | None, typer.Option(help="Regime model for sizing.")] = None,
    regime_multipliers: Annotated[
        str | None,
        typer.Option(
            help=f"e.g. 1.0,0.75,0.5,0.4 (model's label order) or a=1,b=0.5; each {MULTIPLIER}."
        ),
    ] = None,
    max_positions: Annotated[int, typer.Option(help=f"Open positions at most, {POSITIONS}.")] = 5,
    max_portfolio_heat: Annotated[float, typer.Option(help=f"% of equity, {PERCENT}.")] = 20.0,
    max_per_underlying: Annotated[float, typer.Option(help=f"% of equity, {PERCENT}.")] = 15.0,
    half_spread_pct: Annotated[
        float, typer.Option(help=f"% of each leg's mid, {HALF_SPREAD}.")
    ] = 5.0,
    fee: Annotated[float, typer.Option(help=f"$ per contract per leg, {FEE}.")] = 0.65,
    initial_equity: Annotated[float, typer.Option(help=f"$, {EQUITY}.")] = 1_000_000.0,
    fills: Annotated[str, typer.Option(help="close (signal day's close) or next_open.")] = "close",
    stop_fill: Annotated[
        str,
        typer.Option(
            help="close (stops checked on the close) or intraday (the stop rests during the "
            "day, approximated from the bar's high/low; model pricing only)."
        ),
    ] = "close",
    rate: Annotated[
        float, typer.Option(help=f"Risk-free rate: pricing, cash interest and Sharpe, {RATE}.")
    ] = 0.02,
    dividend_yield: Annotated[
        list[str] | None,
        typer.Option(
            help="SYMBOL=YIELD (e.g. SPX=0.018), repeatable; a bare number applies to symbols "
            f"not listed (default: SPX 0.018, IXIC 0.008, others 0); {DIVIDEND_YIELD}."
        ),
    ] = None,
    skew_slope: Annotated[
        float | None, typer.Option(help=f"Skew slope (default 0.85), {SKEW_SLOPE}.")
    ] = None,
    skew: Annotated[
        Path | None,
        typer.Option(help="Smile parameters from `research chains calibrate` (YAML)."),
    ] = None,
    chains: Annotated[
        Path | None,
        typer.Option(help="Option-chain file: price spreads from its quotes, not the model."),
    ] = None,
    chain_layout: Annotated[str, typer.Option(help="auto, long, orats or cboe.")] = "auto",
    chain_fill: Annotated[
        float, typer.Option(help=f"Chains: 0 fills at mid, 1 at the natural price, {CHAIN_FILL}.")
    ] = 0.5,
    missing_quote: Annotated[
        str, typer.Option(help="Chains, a leg without a quote: carry (last mark) or close.")
    ] = "carry",
    conventions: Annotated[
        Path | None,
        typer.Option(help="Per-symbol market conventions YAML (strike_step, tick, ...)."),
    ] = None,
    convention: Annotated[
        list[str] | None,
        typer.Option(help="SYMBOL:FIELD=VALUE[,...], e.g. MSFT:width_pct=3; repeatable."),
    ] = None,
    export_trades: Annotated[
        Path | None, typer.Option(help="Trades JSON (the validation plan's export format).")
    ] = None,
    equity_out: Annotated[Path | None, typer.Option(help="Equity curve (.csv/.parquet).")] = None,
    date_format: DateFormatOption = None,
) -> None:
    """Backtest bear call (or bull put) spreads with regime sizing and portfolio limits."""
    import pandas as pd

    from research.backtest.run import run_backtest
    from research.backtest.service import (
        check_history,
        load_panel,
        multipliers_for,
        parse_relations,
        regime_labels,
    )
    from research.backtest.spreads import ConfigError, config_from_dict
    from research.backtest.tearsheet import tear_sheet
    from research.data.contracts import dates_read_as
    from research.data.errors import ContractError
    from research.exceptions import ResearchError
    from research.options import check_numbers

    fmt = _checked(
        numbers=[
            ("--min-delta", min_delta, DELTA),
            ("--max-delta", max_delta, DELTA),
            ("--dte", dte, DTE),
            ("--width-pct", width_pct, WIDTH_PCT),
            ("--min-iv-percentile", min_iv_percentile, PERCENTILE),
            ("--profit-target", profit_target, PROFIT_TARGET),
            ("--stop-loss", stop_loss, STOP_LOSS),
            ("--contracts", contracts, CONTRACTS),
            ("--risk-pct", risk_pct, PERCENT),
            ("--max-positions", max_positions, POSITIONS),
            ("--max-portfolio-heat", max_portfolio_heat, PERCENT),
            ("--max-per-underlying", max_per_underlying, PERCENT),
            ("--half-spread-pct", half_spread_pct, HALF_SPREAD),
            ("--fee", fee, FEE),
            ("--initial-equity", initial_equity, EQUITY),
            ("--rate", rate, RATE),
            ("--skew-slope", skew_slope, SKEW_SLOPE),
            ("--chain-fill", chain_fill, CHAIN_FILL),
        ],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[
            ("--bars", bars),
            ("--iv", iv),
            ("--skew", skew),
            ("--chains", chains),
            ("--conventions", conventions),
        ],
        outputs=[("--export-trades", export_trades), ("--equity-out", equity_out)],
    )
    if export_trades is not None:
        from research.data.writers import table_format

        try:
            table_format(export_trades, "--export-trades")
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    names = [t.strip() for t in tickers.split(",") if t.strip()]
    notes: list[str] = []
    try:
        mults: tuple[tuple[str, float], ...] = ()
        if regime_multipliers and not regime_model:
            raise ConfigError("--regime-multipliers needs --regime-model")
        if regime_model:
            from research.regimes import get_model

            get_model(regime_model)
            mults = (
                multipliers_for(regime_model, regime_multipliers or "")
                if regime_multipliers
                else ()
            )
            check_numbers((f"--regime-multipliers ({label})", m, MULTIPLIER) for label, m in mults)
        cfg = config_from_dict(
            {
                "spread": {
                    "strategy": strategy,
                    "min_delta": min_delta,
                    "max_delta": max_delta,
                    "target_dte": dte,
                    "width_pct": width_pct,
                    "min_iv_percentile": min_iv_percentile,
                    "profit_target_pct": profit_target,
                    "stop_loss_pct": stop_loss,
                },
                "sizing": {
                    "mode": sizing,
                    "contracts": contracts,
                    "risk_pct": risk_pct,
                    "regime_multipliers": mults,
                },
                "limits": {
                    "max_positions": max_positions,
                    "max_portfolio_heat_pct": max_portfolio_heat,
                    "max_per_underlying_pct": max_per_underlying,
                },
                "fills": {
                    "half_spread_pct": half_spread_pct,
                    "fee_per_contract": fee,
                    "timing": fills,
                    "stop_fill": stop_fill,
                    "chain_fill": chain_fill,
                    "missing_quote": missing_quote,
                },
                "initial_equity": initial_equity,
                "rate": rate,
                "skew_slope": skew_slope,
                **_dividend_options(dividend_yield),
            }
        )
        cfg = cfg.replace(conventions=_conventions_option(conventions, convention))
        if skew is not None:
            from research.backtest.calibrate import load_smile

            cfg = cfg.replace(**load_smile(skew).config_changes())
        with dates_read_as(fmt):
            panel, bars_frame, iv_frame = load_panel(
                names,
                bars_path=bars,
                iv_path=iv or None,
                relations=parse_relations(iv_from),
                notes=notes,
                start=start,
                end=end,
                chains_path=chains,
                chain_layout=chain_layout,
                max_dte=dte + 60,
            )
        check_history(panel, dte)
        labels = regime_labels(regime_model, bars_frame, iv_frame) if regime_model else None
        result = run_backtest(panel, cfg, labels)
        if export_trades is not None:
            result.export_frame()  # the trades contract, checked before anything is printed
    except (ConfigError, ContractError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        typer.echo(
            f"{', '.join(panel.tickers)}  {panel.dates[0].date()}..{panel.dates[-1].date()}"
            f"  ({len(panel.dates)} days traded, {panel.dropped_days} dropped)"
        )
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        if panel.chains is not None:
            typer.echo(
                f"priced from {panel.chains.rows:,} quotes in {chains}: fills at "
                f"{chain_fill:g} of the way from mid to natural; missing quotes "
                f"({result.counters['missing_quotes']} leg-days): {missing_quote}"
            )
        else:
            typer.echo("priced by the Black-Scholes model with skew (no option chains given)")
        typer.echo(pd.Series(result.metrics.to_dict()).to_string())
        sheet = tear_sheet(result, "the configuration")
        lines = sheet.decomposition[["line", "trades", "dollars", "per_contract"]]
        typer.echo(
            "\nwhere the P&L came from ($; they add up to the change in equity):\n"
            + lines.to_string(index=False, float_format=lambda x: f"{x:,.2f}")
            + f"\n{sheet.answer()}"
        )
        typer.echo(
            "\nskipped entries: " + ", ".join(f"{k} {v}" for k, v in result.counters.items())
        )
        typer.echo(_conventions_text(cfg, panel.tickers, result.counters))
        typer.echo("\nstress windows:\n" + result.stress().to_string(index=False))
        typer.echo("\nper year:\n" + result.yearly().to_string(index=False))
    try:
        if export_trades is not None:
            result.export_trades(export_trades)
            typer.echo(f"wrote {len(result.trades)} trades to {export_trades}")
        if equity_out is not None:
            from research.data.writers import write_table

            write_table(result.equity.rename_axis("date").reset_index(), equity_out)
            typer.echo(f"wrote equity curve to {equity_out}")
    except (ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _conventions_option(path: Path | None, items: list[str] | None) -> dict[str, dict[str, float]]:
    """``--conventions FILE`` with ``--convention`` items on top, as a config mapping."""
    import dataclasses

    from research.backtest.conventions import (
        load_conventions,
        merge,
        parse_convention_options,
    )
    from research.config import resolve_path

    base = load_conventions(resolve_path(path)) if path is not None else ()
    merged = merge(base, parse_convention_options(items))
    return {
        sym: {k: v for k, v in dataclasses.asdict(conv).items() if v is not None}
        for sym, conv in merged
    }


def _conventions_text(cfg: object, tickers: tuple[str, ...], counters: dict[str, int]) -> str:
    """One line per ticker: the conventions in force, and why entries were skipped."""
    lines = ["market conventions (unset: by price level, research.backtest.conventions):"]
    for t in tickers:
        m = cfg.convention(t)  # type: ignore[attr-defined]
        lines.append(
            f"  {t}: strike step {m.strike_step or 'by price'}, tick {m.tick or 'by price'}, "
            f"half-spread {m.half_spread_pct:g}% of mid (min "
            f"{'one tick' if m.min_half_spread is None else f'${m.min_half_spread:g}'}), "
            f"width {m.width_pct:g}% of spot (>= {cfg.spread.min_width_steps} steps), "  # type: ignore[attr-defined]
            f"x{m.multiplier:g} per contract, ${m.fee_per_contract:g} per contract per leg, "
            f"monthly expirations settle at the {'open (AM)' if m.am_settled else 'close (PM)'}"
        )
    skipped = counters.get("credit_below_costs", 0)
    if skipped:
        lines.append(
            f"  {skipped} entries skipped: the credit did not clear one tick after fees, or "
            "buying it back at once would already reach the stop loss"
        )
    return "\n".join(lines)


BarsOption = Annotated[
    Path | None,
    typer.Option(help="Bars file (bars contract; default: the embedded SPX and IXIC)."),
]
IvOption = Annotated[
    list[Path] | None,
    typer.Option(help="IV index file(s); repeatable, they add up (VIX stays SPX's)."),
]
IvFromOption = Annotated[
    list[str] | None,
    typer.Option(help="SYMBOL=ANCHOR: scale SYMBOL's IV from ANCHOR's; repeatable."),
]
ConventionsOption = Annotated[
    Path | None,
    typer.Option(help="Per-symbol market conventions YAML (strike_step, tick, ...)."),
]
ConventionOption = Annotated[
    list[str] | None,
    typer.Option(help="SYMBOL:FIELD=VALUE[,...], e.g. MSFT:width_pct=3; repeatable."),
]


def _study_inputs(
    kind: str,
    tickers: list[str] | None,
    bars: Path | None,
    iv: list[Path] | None,
    iv_from: list[str] | None,
    conventions: Path | None,
    convention: list[str] | None,
) -> StudyInputs:
    """Ticker sets (``--tickers``; default every symbol of ``--bars``, SPX and IXIC when
    embedded), their data and the base config with the conventions."""
    from research.backtest.service import parse_relations
    from research.optimize.service import study_inputs

    sets = [tuple(t.strip() for t in s.split(",") if t.strip()) for s in tickers or []]
    return study_inputs(
        kind,
        sets or None,
        bars_path=bars,
        iv_path=iv or None,
        iv_from=parse_relations(iv_from),
        conventions_path=conventions,
        conventions=_conventions_option(None, convention),
    )


def _data_notes(data: StudyData) -> None:
    for note in data.notes:
        typer.echo(f"note: {note}", err=True)


grid_app = typer.Typer(help="Configuration grids, stored in DuckDB.", no_args_is_help=True)
app.add_typer(grid_app, name="grid")

SPA_REPS = Range(50, 100_000, integer=True)
SHARPE_REPS = Range(100, 1_000_000, integer=True)
PERMUTATIONS = Range(200, 100_000, integer=True)
YEARS = Range(0, 50, low_open=True)


@grid_app.command("run")
def grid_run(
    kind: Annotated[str, typer.Argument(help="multipliers, limits or cartesian.")],
    tickers: Annotated[
        list[str] | None,
        typer.Option("--tickers", help="Ticker set, e.g. SPX or SPX,IXIC; repeatable."),
    ] = None,
    grid_file: Annotated[Path | None, typer.Option(help="Cartesian grid YAML.")] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    regime_model: Annotated[
        str, typer.Option(help="Labels for the multipliers.")
    ] = "bull_bear_vol",
    executor: Annotated[str, typer.Option(help="inline, local or dask.")] = "inline",
    address: Annotated[str | None, typer.Option(help="Dask scheduler tcp://host:port.")] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="auto: shared trade paths where several configs share a strategy; "
            "per_config: the reference kernels (same results, slower)."
        ),
    ] = "auto",
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default data/lab.duckdb).")] = None,
    spa_reps: Annotated[
        int, typer.Option(help=f"Bootstrap replications for SPA, {SPA_REPS}.")
    ] = 1000,
    bars: BarsOption = None,
    iv: IvOption = None,
    iv_from: IvFromOption = None,
    conventions: ConventionsOption = None,
    convention: ConventionOption = None,
    date_format: DateFormatOption = None,
) -> None:
    """Run a grid, store it in DuckDB and print the results with DSR, PBO and SPA."""
    import pandas as pd

    from research.backtest.spreads import ConfigError
    from research.config import PATHS
    from research.data.contracts import dates_read_as
    from research.data.errors import ContractError
    from research.exceptions import ResearchError
    from research.optimize.service import run_named_grid
    from research.optimize.store import check_store

    fmt = _checked(
        numbers=[("--spa-reps", spa_reps, SPA_REPS)],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[
            ("--bars", bars),
            ("--iv", iv),
            ("--grid-file", grid_file),
            ("--conventions", conventions),
        ],
        outputs=[("--db", db or PATHS.database)],
    )
    try:
        check_store(db)  # a store that cannot be written fails now, not after the grid ran
        with dates_read_as(fmt):
            inputs = _study_inputs(kind, tickers, bars, iv, iv_from, conventions, convention)
        sets, data, base = inputs.ticker_sets, inputs.data, inputs.base
        ex = None
        if executor != "inline":
            from research.optimize.executors import get_executor

            ex = get_executor(executor, address)
        run = run_named_grid(
            kind,
            sets,
            grid_file=grid_file,
            regime_model=regime_model,
            start=start,
            end=end,
            executor=ex,
            store_path=db or PATHS.database,
            spa_reps=spa_reps,
            base=base,
            data=data,
            progress=lambda m: typer.echo(m, err=True),
            engine=engine,
        )
    except (ConfigError, ContractError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _data_notes(data)
    cols = ["variant", "tickers", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        typer.echo(run.result.table[cols].round(4).to_string(index=False))
        for ticker_set, report in run.reports.items():
            typer.echo(f"\n{ticker_set} — in-sample diagnostics:\n{report.summary().to_string()}")
    typer.echo(f"\nstored as run {run.run_id} in {db or PATHS.database}")


@grid_app.command("study")
def grid_study_cmd(
    kind: Annotated[str, typer.Argument(help="multipliers or limits.")],
    tickers: Annotated[
        list[str] | None,
        typer.Option("--tickers", help="Ticker set, e.g. SPX or SPX,IXIC; repeatable."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM-DD.")] = None,
    is_years: Annotated[float, typer.Option(help=f"Walk-forward in-sample years, {YEARS}.")] = 6.0,
    oos_years: Annotated[
        float, typer.Option(help=f"Walk-forward out-of-sample years, {YEARS}.")
    ] = 2.0,
    scenarios: Annotated[
        str | None, typer.Option(help="Comma-separated sensitivity scenarios (default: all).")
    ] = None,
    n_permutations: Annotated[int, typer.Option(help=f"Label shuffles, {PERMUTATIONS}.")] = 200,
    sharpe_reps: Annotated[
        int, typer.Option(help=f"Sharpe-test bootstrap resamples, {SHARPE_REPS}.")
    ] = 2000,
    spa_reps: Annotated[int, typer.Option(help=f"SPA bootstrap replications, {SPA_REPS}.")] = 1000,
    db: Annotated[Path | None, typer.Option(help="Results store counted for DSR trials.")] = None,
    summary_out: Annotated[Path | None, typer.Option(help="Write the JSON summary here.")] = None,
    bars: BarsOption = None,
    iv: IvOption = None,
    iv_from: IvFromOption = None,
    conventions: ConventionsOption = None,
    convention: ConventionOption = None,
    regime_model: Annotated[
        str, typer.Option(help="Labels for the multipliers study.")
    ] = "bull_bear_vol",
    date_format: DateFormatOption = None,
) -> None:
    """The notebooks' study headless: walk-forward, controls, permutation null, Sharpe tests
    and every sensitivity scenario; prints the verdicts and the sensitivity table."""
    import json

    import pandas as pd

    from research.backtest.spreads import ConfigError
    from research.config import PATHS
    from research.data.contracts import dates_read_as
    from research.data.errors import ContractError
    from research.exceptions import ResearchError
    from research.optimize.study import grid_study

    if kind not in ("multipliers", "limits"):
        typer.echo(f"error: unknown study {kind!r}; use multipliers or limits", err=True)
        raise typer.Exit(1)
    store = db or PATHS.database
    fmt = _checked(
        numbers=[
            ("--is-years", is_years, YEARS),
            ("--oos-years", oos_years, YEARS),
            ("--n-permutations", n_permutations, PERMUTATIONS),
            ("--sharpe-reps", sharpe_reps, SHARPE_REPS),
            ("--spa-reps", spa_reps, SPA_REPS),
        ],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[
            ("--bars", bars),
            ("--iv", iv),
            ("--conventions", conventions),
            ("--db", store if Path(store).exists() else None),  # read: trials counted for DSR
        ],
        outputs=[("--summary-out", summary_out)],
    )
    try:
        with dates_read_as(fmt):
            inputs = _study_inputs(kind, tickers, bars, iv, iv_from, conventions, convention)
        sets, data, base = inputs.ticker_sets, inputs.data, inputs.base
        study = grid_study(
            kind,
            sets,
            benchmark="flat" if kind == "multipliers" else "wide_open",
            start=start,
            end=end,
            regime_model=regime_model if kind == "multipliers" else None,
            is_years=is_years,
            oos_years=oos_years,
            scenarios=None if scenarios is None else [x.strip() for x in scenarios.split(",")],
            n_permutations=n_permutations,
            sharpe_reps=sharpe_reps,
            spa_reps=spa_reps,
            store_path=db or PATHS.database,
            data=data,
            base=base,
            progress=lambda m: typer.echo(m, err=True),
        )
    except (ConfigError, ContractError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _data_notes(data)
    summary = study.summary()
    rows = summary["per_tickers"]
    assert isinstance(rows, list)
    for row in rows:
        typer.echo(f"{row['tickers']}: {row['verdict']}\n")
    cols = ["tickers", "scenario", "choice_oos_sharpe", "benchmark_oos_sharpe"]
    cols += ["control_oos_sharpe", "p_value", "verdict", "verdict_holds"]
    table = study.sensitivity_table()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(table[[c for c in cols if c in table]].round(3).to_string(index=False))
    typer.echo(f"\n{study.seconds:.1f} s")
    if summary_out is not None:
        from research._io import write_text_atomic

        try:
            write_text_atomic(summary_out, json.dumps(summary, indent=2, default=str))
        except ResearchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"wrote {summary_out}")


@grid_app.command("query")
def grid_query(
    sql: Annotated[str, typer.Argument(help="SQL over grid_runs, grid_results, grid_returns.")],
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default data/lab.duckdb).")] = None,
) -> None:
    """Query the results database with SQL (read-only; the file is never created)."""
    import duckdb
    import pandas as pd

    from research.config import PATHS

    path = db or PATHS.database
    if not Path(path).is_file():
        typer.echo(
            f"error: no results database at {path} (research grid run writes one; --db names "
            "another)",
            err=True,
        )
        raise typer.Exit(1)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        typer.echo(f"error: {path}: cannot open the results database: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        frame = con.execute(sql).df()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        typer.echo(f"error: {path}: the query failed: {first}", err=True)
        raise typer.Exit(1) from exc
    finally:
        con.close()
    with pd.option_context("display.width", 160):
        typer.echo(frame.to_string(index=False))


@data_app.command("generate")
def data_generate(
    out: Annotated[Path | None, typer.Option(help="Folder (default data/sample).")] = None,
) -> None:
    """Regenerate the research tables (experiments, tunes, trades) from the embedded bars."""
    from research.config import PATHS
    from research.exceptions import ResearchError
    from research.optimize.datasets import generate

    folder = out or PATHS.sample
    if folder.exists() and not folder.is_dir():
        typer.echo(f"error: --out {folder} is a file; name a folder", err=True)
        raise typer.Exit(1)
    try:
        written = generate(folder)
    except (ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for path in written.values():
        typer.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


@data_app.command("tunes")
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
    from research.data.errors import ContractError
    from research.data.writers import write_table
    from research.exceptions import ResearchError
    from research.optimize.datasets import fold_years, tunes

    fmt = _checked(
        date_format=date_format,
        inputs=[("--bars", bars), ("--iv", iv)],
        outputs=[("--out", out)],
    )
    try:
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
    except (ContractError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {out}: {frame['tune_id'].nunique()} tunes, {len(frame):,} rows")


chains_app = typer.Typer(help="Option chains: calibrate the pricing model.", no_args_is_help=True)
app.add_typer(chains_app, name="chains")


@chains_app.command("calibrate")
def chains_calibrate(
    chains: Annotated[Path, typer.Option(help="Option-chain file (any layout).")],
    out: Annotated[Path, typer.Option(help="Where to write the smile parameters (YAML).")],
    iv: Annotated[
        Path | None, typer.Option(help="IV index file for the chain's underlying (default: VIX).")
    ] = None,
    layout: Annotated[str, typer.Option(help="auto, long, orats or cboe.")] = "auto",
    underlying: Annotated[
        str | None, typer.Option(help="Underlying to fit (default: the file's only one).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First quote date, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last quote date, YYYY-MM-DD.")] = None,
    strategy: Annotated[str, typer.Option(help="bear_call or bull_put (the spreads compared).")] = (
        "bear_call"
    ),
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
    from research.backtest.spreads import BacktestConfig, ConfigError
    from research.data.chains import load_chains
    from research.data.contracts import dates_read_as
    from research.data.errors import ContractError
    from research.data.market import load_iv_index
    from research.exceptions import ResearchError

    fmt = _checked(
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[("--chains", chains), ("--iv", iv)],
        outputs=[("--out", out)],
    )
    try:
        with dates_read_as(fmt):
            frame = load_chains(
                chains,
                layout=layout,
                underlyings=None if underlying is None else [underlying],
                start=start,
                end=end,
                max_dte=120,
                moneyness=(0.5, 1.5),
            )
            names = sorted(frame["underlying"].unique())
            if len(names) != 1:
                raise ValueError(
                    f"{chains}: underlyings {names[:10]}; choose one with --underlying"
                )
            index = load_iv_index(iv)
        cfg = BacktestConfig().replace(**{"spread.strategy": strategy})
        fit = calibrate(frame, index, config=cfg, source=str(chains))
        fit.write(out)
    except (ConfigError, ContractError, ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
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


@data_app.command("export")
def data_export(
    kind: Annotated[str, typer.Argument(help="bars or iv.")],
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
    from research.exceptions import ResearchError

    _checked(dates=[("--start", start), ("--end", end)], outputs=[("--out", out)])
    names = [s.strip() for s in symbols.split(",") if s.strip()]
    try:
        if kind == "bars":
            frame = market.load_bars(symbols=names, start=start, end=end)
        elif kind == "iv":
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
        else:
            raise ValueError(f"unknown kind {kind!r}; use bars or iv")
        write_table(frame.reset_index(drop=True), out)
    except (ResearchError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {len(frame):,} rows ({kind}) to {out}")


if __name__ == "__main__":  # python -m research.cli
    app()
