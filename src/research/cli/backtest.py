"""``research backtest run``: one credit-spread backtest, from options or a configuration file.

The configuration is built in one place, :func:`backtest_config`: the ``--config`` YAML file (a
:class:`~research.backtest.spreads.BacktestConfig`: ``spread:``, ``fills:``, ``sizing:``,
``limits:`` and the top-level settings) or the defaults, with the options given on the command
line on top (:data:`CONFIG_OPTIONS` names the parameter each one sets). A file that cannot be
read, an unknown key or a bad value is one ``error:`` line naming the file.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from research.cli._common import (
    MODELS,
    ChainLayout,
    DateFormatOption,
    RegimeModel,
    Strategy,
    choice,
    conventions_option,
    parse_chain_layout,
    parse_regime_model,
    parse_strategy,
    refusals,
)
from research.options import Range

if TYPE_CHECKING:
    from research.backtest.spreads import BacktestConfig

app = typer.Typer(help="Credit-spread backtests.", no_args_is_help=True)
E = TypeVar("E", bound=enum.Enum)

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


@dataclass(frozen=True)
class ConfigOption:
    """A command-line option that sets one configuration parameter.

    Attributes
    ----------
    flag
        The option, e.g. ``--min-delta``.
    key
        The parameter it sets, e.g. ``spread.min_delta`` (``BacktestConfig.replace``).
    accepted
        Its accepted values, checked before any work (``None``: a word, checked by its choice).
    """

    flag: str
    key: str
    accepted: Range | None = None


CONFIG_OPTIONS: dict[str, ConfigOption] = {
    "strategy": ConfigOption("--strategy", "spread.strategy"),
    "min_delta": ConfigOption("--min-delta", "spread.min_delta", DELTA),
    "max_delta": ConfigOption("--max-delta", "spread.max_delta", DELTA),
    "dte": ConfigOption("--dte", "spread.target_dte", DTE),
    "width_pct": ConfigOption("--width-pct", "spread.width_pct", WIDTH_PCT),
    "min_iv_percentile": ConfigOption(
        "--min-iv-percentile", "spread.min_iv_percentile", PERCENTILE
    ),
    "profit_target": ConfigOption("--profit-target", "spread.profit_target_pct", PROFIT_TARGET),
    "stop_loss": ConfigOption("--stop-loss", "spread.stop_loss_pct", STOP_LOSS),
    "sizing": ConfigOption("--sizing", "sizing.mode"),
    "contracts": ConfigOption("--contracts", "sizing.contracts", CONTRACTS),
    "risk_pct": ConfigOption("--risk-pct", "sizing.risk_pct", PERCENT),
    "max_positions": ConfigOption("--max-positions", "limits.max_positions", POSITIONS),
    "max_portfolio_heat": ConfigOption(
        "--max-portfolio-heat", "limits.max_portfolio_heat_pct", PERCENT
    ),
    "max_per_underlying": ConfigOption(
        "--max-per-underlying", "limits.max_per_underlying_pct", PERCENT
    ),
    "half_spread_pct": ConfigOption("--half-spread-pct", "fills.half_spread_pct", HALF_SPREAD),
    "fee": ConfigOption("--fee", "fills.fee_per_contract", FEE),
    "fills": ConfigOption("--fills", "fills.timing"),
    "stop_fill": ConfigOption("--stop-fill", "fills.stop_fill"),
    "initial_equity": ConfigOption("--initial-equity", "initial_equity", EQUITY),
    "rate": ConfigOption("--rate", "rate", RATE),
    "skew_slope": ConfigOption("--skew-slope", "skew_slope", SKEW_SLOPE),
    "chain_fill": ConfigOption("--chain-fill", "fills.chain_fill", CHAIN_FILL),
    "missing_quote": ConfigOption("--missing-quote", "fills.missing_quote"),
}
"""The options that set a configuration parameter, by the command's parameter name, in the
order their values are checked."""


class SizingMode(enum.StrEnum):
    """How contracts per trade are sized (``sizing.mode``)."""

    fixed = "fixed"
    scaled = "scaled"


class FillTiming(enum.StrEnum):
    """When orders fill (``fills.timing``)."""

    close = "close"
    next_open = "next_open"


class StopFill(enum.StrEnum):
    """Where stops are checked (``fills.stop_fill``)."""

    close = "close"
    intraday = "intraday"


class MissingQuote(enum.StrEnum):
    """Chains: what a leg without a quote does (``fills.missing_quote``)."""

    carry = "carry"
    close = "close"


def _config_choice(words: type[E], must_be: str) -> Callable[[object], E]:
    """The parser of an option whose bad word the configuration check would refuse: the same
    message, before any work."""
    return choice(words, lambda w: f"invalid backtest parameters: {must_be}, got {w!r}")


_MAPPINGS = {
    "sizing.regime_multipliers": "{bull_low_vol: 1.0, bear_high_vol: 0.4}",
    "dividend_yields": "{SPX: 0.018}",
    "conventions": "{MSFT: {width_pct: 3}}",
}
"""The parameters a configuration file writes as a mapping, with an example."""


def load_config_file(path: Path) -> BacktestConfig:
    """Read a ``--config`` YAML file: a ``BacktestConfig`` in nested (``spread: {min_delta:
    0.1}``) or dotted (``spread.min_delta: 0.1``) keys, the defaults for the rest.

    Raises
    ------
    research.backtest.spreads.ConfigError
        One line naming the file: unreadable, not YAML (with the line), not a mapping, an
        unknown key, a value of the wrong type or out of range.
    """
    import dataclasses

    import yaml

    from research._io import os_error_text
    from research.backtest.spreads import BacktestConfig, ConfigError, config_from_dict

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = os_error_text(exc, path) if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read the backtest configuration: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}  # an empty file: the defaults
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of backtest parameters (spread:, fills:, sizing:, "
            f"limits:, initial_equity:, ...), got a {type(data).__name__}"
        )
    defaults = BacktestConfig()
    flat: dict[str, object] = {}  # dotted keys: spread.min_delta
    for key, value in data.items():
        if dataclasses.is_dataclass(getattr(defaults, str(key), None)):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path}: {key} must hold {key} parameters ({key}: {{name: value, ...}}), "
                    f"got {value!r}"
                )
            flat.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            flat[str(key)] = value
    for key, example in _MAPPINGS.items():
        if key in flat and not isinstance(flat[key], dict):
            raise ConfigError(f"{path}: {key} must be a mapping ({example}), got {flat[key]!r}")
    try:
        return config_from_dict(flat)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (TypeError, AttributeError) as exc:  # a value of a type no parameter takes
        raise ConfigError(f"{path}: a parameter of the wrong type: {exc}") from None


def _parameter(cfg: BacktestConfig, key: str) -> object:
    """``cfg``'s value of a dotted parameter, e.g. ``spread.min_delta``."""
    value: object = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _dividend_options(
    values: Sequence[str] | None, yields: Sequence[tuple[str, float]]
) -> dict[str, object]:
    """``--dividend-yield SPX=0.018 --dividend-yield 0.01`` on top of ``yields`` → config
    changes."""
    from research.backtest.spreads import ConfigError
    from research.options import check_number

    if not values:
        return {}
    out: dict[str, object] = {}
    changed = dict(yields)
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
            changed[name.strip()] = q
        else:
            out["default_dividend_yield"] = q
    out["dividend_yields"] = tuple(changed.items())
    return out


def _regime_multipliers(
    base: BacktestConfig,
    config_file: Path | None,
    model: str | None,
    text: str | None,
) -> tuple[tuple[str, float], ...]:
    """The multipliers the run sizes with: ``--regime-multipliers`` (in ``model``'s label
    order, or ``label=value``), else the configuration file's, whose labels must be
    ``model``'s."""
    from research.backtest.service import multipliers_for
    from research.backtest.spreads import ConfigError
    from research.options import check_numbers

    if text:
        if not model:
            raise ConfigError("--regime-multipliers needs --regime-model")
        mults = multipliers_for(model, text)
        check_numbers((f"--regime-multipliers ({label})", m, MULTIPLIER) for label, m in mults)
        return mults
    mults = base.sizing.regime_multipliers
    if mults:
        from research.regimes import get_model

        if not model:
            raise ConfigError(
                f"{config_file}: sizing.regime_multipliers needs --regime-model (the model "
                "whose labels they size)"
            )
        labels = get_model(model).labels
        unknown = [label for label, _ in mults if label not in labels]
        if unknown:
            raise ConfigError(
                f"{config_file}: sizing.regime_multipliers: {unknown} not among the {model} labels "
                f"({', '.join(labels)})"
            )
    return mults


def backtest_config(
    config_file: Path | None,
    options: Mapping[str, object],
    *,
    regime_model: str | None = None,
    regime_multipliers: str | None = None,
    dividend_yield: Sequence[str] | None = None,
    conventions: Path | None = None,
    convention: Sequence[str] | None = None,
    skew: Path | None = None,
) -> BacktestConfig:
    """The run's configuration, built in one place.

    1. The base: ``config_file`` (:func:`load_config_file`) or the defaults; each of its
       values that no option changes must lie in the option's range.
    2. On top, the options given on the command line: ``options`` (parameter name →
       value, :data:`CONFIG_OPTIONS`), the regime multipliers and the dividend yields.
    3. The market conventions: the base's, with ``--conventions FILE`` and the
       ``--convention`` items on top.
    4. The smile of ``--skew FILE``.

    Parameters
    ----------
    config_file
        The ``--config`` file, if any.
    options
        The configuration options given on the command line, by parameter name.
    regime_model, regime_multipliers, dividend_yield, conventions, convention, skew
        The other options that change the configuration.

    Returns
    -------
    BacktestConfig
        Checked (``BacktestConfig.check``).

    Raises
    ------
    research.backtest.spreads.ConfigError, ValueError
        One line: the file, the option or the parameter, and what is wrong.
    """
    from research.backtest.spreads import BacktestConfig
    from research.options import check_number

    base = load_config_file(config_file) if config_file is not None else BacktestConfig()
    for name, option in CONFIG_OPTIONS.items():
        if config_file is not None and option.accepted is not None and name not in options:
            check_number(
                _parameter(base, option.key), f"{config_file}: {option.key}", option.accepted
            )
    changes: dict[str, object] = {
        CONFIG_OPTIONS[name].key: value.value if isinstance(value, enum.Enum) else value
        for name, value in options.items()
    }
    changes["sizing.regime_multipliers"] = _regime_multipliers(
        base, config_file, regime_model, regime_multipliers
    )
    changes.update(_dividend_options(dividend_yield, base.dividend_yields))
    cfg = base.replace(**changes)
    if conventions is not None or convention:
        cfg = cfg.replace(
            conventions=conventions_option(conventions, list(convention or []), cfg.conventions)
        )
    if skew is not None:
        from research.backtest.calibrate import load_smile

        cfg = cfg.replace(**load_smile(skew).config_changes())
    return cfg


def given_options(ctx: typer.Context) -> dict[str, object]:
    """The configuration options (:data:`CONFIG_OPTIONS`) given on the command line, by
    parameter name; the ones left at their defaults are not."""
    given: dict[str, object] = {}
    for name in CONFIG_OPTIONS:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given[name] = ctx.params[name]
    return given


@app.command("run")
@refusals()
def backtest_run(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A backtest configuration (YAML: spread:, fills:, sizing:, limits:, rate:, "
            "...): the base the options given here change; the defaults without it.",
        ),
    ] = None,
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
    strategy: Annotated[
        Strategy, typer.Option(help="bear_call or bull_put.", parser=parse_strategy)
    ] = Strategy.bear_call,
    min_delta: Annotated[float, typer.Option(help=f"Short leg's |delta|, {DELTA}.")] = 0.05,
    max_delta: Annotated[float, typer.Option(help=f"Short leg's |delta|, {DELTA}.")] = 0.15,
    dte: Annotated[int, typer.Option(help=f"Target days to expiry, {DTE}.")] = 30,
    width_pct: Annotated[float, typer.Option(help=f"Spread width, % of spot, {WIDTH_PCT}.")] = 1.5,
    min_iv_percentile: Annotated[
        float, typer.Option(help=f"Enter only at this IV percentile or above, {PERCENTILE}.")
    ] = 0.0,
    profit_target: Annotated[float, typer.Option(help=f"% of credit, {PROFIT_TARGET}.")] = 65.0,
    stop_loss: Annotated[float, typer.Option(help=f"% of credit, {STOP_LOSS}.")] = 125.0,
    sizing: Annotated[
        SizingMode,
        typer.Option(
            help="fixed or scaled.",
            parser=_config_choice(SizingMode, "sizing mode must be fixed or scaled"),
        ),
    ] = SizingMode.fixed,
    contracts: Annotated[int, typer.Option(help=f"Contracts (fixed sizing), {CONTRACTS}.")] = 1,
    risk_pct: Annotated[
        float, typer.Option(help=f"% of equity at risk (scaled), {PERCENT}.")
    ] = 2.0,
    regime_model: Annotated[
        RegimeModel | None,
        typer.Option(
            help=f"Regime model for sizing: {MODELS}.", metavar="MODEL", parser=parse_regime_model
        ),
    ] = None,
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
    fills: Annotated[
        FillTiming,
        typer.Option(
            help="close (signal day's close) or next_open.",
            parser=_config_choice(FillTiming, "fill timing must be close or next_open"),
        ),
    ] = FillTiming.close,
    stop_fill: Annotated[
        StopFill,
        typer.Option(
            help="close (stops checked on the close) or intraday (the stop rests during the "
            "day, approximated from the bar's high/low; model pricing only).",
            parser=_config_choice(StopFill, "stop fill must be close or intraday"),
        ),
    ] = StopFill.close,
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
    chain_layout: Annotated[
        ChainLayout,
        typer.Option(
            help="auto, long, orats or cboe.", parser=parse_chain_layout("--chain-layout")
        ),
    ] = ChainLayout.auto,
    chain_fill: Annotated[
        float, typer.Option(help=f"Chains: 0 fills at mid, 1 at the natural price, {CHAIN_FILL}.")
    ] = 0.5,
    missing_quote: Annotated[
        MissingQuote,
        typer.Option(
            help="Chains, a leg without a quote: carry (last mark) or close.",
            parser=_config_choice(MissingQuote, "missing_quote must be carry or close"),
        ),
    ] = MissingQuote.carry,
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
    from research.backtest.service import check_history, load_panel, parse_relations
    from research.backtest.service import regime_labels as labels_of
    from research.backtest.tearsheet import tear_sheet
    from research.data.contracts import dates_read_as
    from research.options import check_before_work

    fmt = check_before_work(
        numbers=[
            (option.flag, ctx.params[name], option.accepted)
            for name, option in CONFIG_OPTIONS.items()
            if option.accepted is not None
        ],
        dates=[("--start", start), ("--end", end)],
        date_format=date_format,
        inputs=[
            ("--config", config),
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

        table_format(export_trades, "--export-trades")
    names = [t.strip() for t in tickers.split(",") if t.strip()]
    model = regime_model.value if regime_model is not None else None
    cfg = backtest_config(
        config,
        given_options(ctx),
        regime_model=model,
        regime_multipliers=regime_multipliers,
        dividend_yield=dividend_yield,
        conventions=conventions,
        convention=convention,
        skew=skew,
    )
    notes: list[str] = []
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
            chain_layout=chain_layout.value,
            max_dte=cfg.spread.target_dte + 60,
        )
    check_history(panel, cfg.spread.target_dte)
    labels = labels_of(model, bars_frame, iv_frame) if model else None
    result = run_backtest(panel, cfg, labels)
    if export_trades is not None:
        result.export_frame()  # the trades contract, checked before anything is printed
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
                f"{cfg.fills.chain_fill:g} of the way from mid to natural; missing quotes "
                f"({result.counters['missing_quotes']} leg-days): {cfg.fills.missing_quote}"
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
        if panel.chains is not None and result.counters["no_strike"]:
            from research.backtest.chain_entries import entry_spreads

            entries = entry_spreads(panel.chains, panel.dates, panel.tickers, panel.close, cfg)
            typer.echo(
                f"why {result.counters['no_strike']:,} entries found no spread in the quotes:\n"
                + dataclasses.replace(entries, source=str(chains)).explain()
            )
        typer.echo(_conventions_text(cfg, panel.tickers, result.counters))
        typer.echo("\nstress windows:\n" + result.stress().to_string(index=False))
        typer.echo("\nper year:\n" + result.yearly().to_string(index=False))
    if export_trades is not None:
        result.export_trades(export_trades)
        typer.echo(f"wrote {len(result.trades)} trades to {export_trades}")
    if equity_out is not None:
        from research.data.writers import write_table

        write_table(result.equity.rename_axis("date").reset_index(), equity_out)
        typer.echo(f"wrote equity curve to {equity_out}")


def _conventions_text(
    cfg: BacktestConfig, tickers: tuple[str, ...], counters: Mapping[str, int]
) -> str:
    """One line per ticker: the conventions in force, and why entries were skipped."""
    lines = ["market conventions (unset: by price level, research.backtest.conventions):"]
    for t in tickers:
        m = cfg.convention(t)
        lines.append(
            f"  {t}: strike step {m.strike_step or 'by price'}, tick {m.tick or 'by price'}, "
            f"half-spread {m.half_spread_pct:g}% of mid (min "
            f"{'one tick' if m.min_half_spread is None else f'${m.min_half_spread:g}'}), "
            f"width {m.width_pct:g}% of spot (>= {cfg.spread.min_width_steps} steps), "
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
