"""What the command groups share: the one way a command refuses, choices, option types.

**Refusals.** A command that cannot do what it was asked prints one ``error: <message>`` line
on stderr and exits with its group's code (1; 2 for ``run`` and ``notebooks``), never a
traceback. :func:`fail` does that for a message; :func:`refusals` (a decorator or a ``with``
block) does it for the package's errors raised inside it:

* :class:`~research.exceptions.ResearchError` (``InputError``, ``OutputError``, database and
  lock errors) and ``ValueError`` (``ContractError``, ``ConfigError``, ``RulesetError``, ...):
  their message;
* any other ``OSError``: ``FILE: REASON`` (``subject`` when it names no file);
* the ``also`` classes (``RuntimeError`` for ``research run``): their message.

``one_line=True`` (the ``attribute`` and ``llm`` groups) joins a message's lines into one; the
other groups print a data contract's problems one per line under the ``error:`` line.

**Choices.** An option that takes one of a few words is a :class:`enum.StrEnum` parsed by
:func:`choice`: ``--help`` lists the words, and any other word is refused before the command
runs, with the message and exit code the command has always given for it.

**Numbers.** :func:`check_limits` checks counts and durations against a
:class:`research.options.Range` with the option's own wording (``--concurrency must be at least
1, got 0``); the backtest and grid commands use ``research.options.check_before_work``.

Only light modules are imported here (typer, the package's exceptions and options): the heavy
ones are imported inside the commands, so ``research --help`` stays fast.

No ``from __future__ import annotations`` here: typer evaluates the group callback's
annotations, which name the group (a closure variable) in the help text.
"""

import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from research.exceptions import InputError, ResearchError
from research.options import Range, check_number

if TYPE_CHECKING:
    from research.backtest.conventions import MarketConvention

__all__ = [
    "AT_LEAST_0",
    "AT_LEAST_1",
    "MODELS",
    "MORE_THAN_0",
    "BarsOption",
    "ChainLayout",
    "ConventionOption",
    "ConventionsOption",
    "DateFormatOption",
    "IvFromOption",
    "IvOption",
    "Limit",
    "RegimeModel",
    "Strategy",
    "check_limits",
    "choice",
    "conventions_option",
    "date_format_callback",
    "error_line",
    "fail",
    "parse_chain_layout",
    "parse_regime_model",
    "parse_strategy",
    "refusals",
    "words",
]

# --- refusals ---------------------------------------------------------------------------------


def error_line(message: object, *, one_line: bool = False) -> None:
    """Print ``error: <message>`` on stderr (``one_line``: its whitespace runs, line breaks
    included, as single spaces)."""
    text = " ".join(str(message).split()) if one_line else str(message)
    typer.echo(f"error: {text}", err=True)


def fail(message: object, *, code: int = 1, one_line: bool = False) -> NoReturn:
    """Refuse: ``error: <message>`` on stderr, then exit with ``code``.

    Parameters
    ----------
    message
        What went wrong (an exception: its message).
    code
        The exit code.
    one_line
        Join the message's lines into one.
    """
    error_line(message, one_line=one_line)
    raise typer.Exit(code)


@contextlib.contextmanager
def refusals(
    *,
    code: int = 1,
    one_line: bool = False,
    subject: object = None,
    also: tuple[type[Exception], ...] = (),
) -> Iterator[None]:
    """Turn the package's errors raised inside into :func:`fail` (module docstring); a
    decorator of a whole command or a ``with`` block.

    Parameters
    ----------
    code
        The exit code.
    one_line
        Join a message's lines into one.
    subject
        What an ``OSError`` that names no file is about (e.g. ``"research run"``).
    also
        More exception classes refused with their message.
    """
    refused: tuple[type[Exception], ...] = (ResearchError, ValueError, *also)
    try:
        yield
    except (typer.Exit, typer.Abort):  # a refusal already made (both are RuntimeErrors)
        raise
    except refused as exc:
        fail(exc, code=code, one_line=one_line)
    except OSError as exc:
        where = exc.filename or subject
        reason = exc.strerror or exc
        fail(f"{where}: {reason}" if where else reason, code=code, one_line=one_line)


# --- choices ----------------------------------------------------------------------------------

E = TypeVar("E", bound=enum.Enum)


def choice(
    accepted: type[E], refusal: Callable[[str], str], *, code: int = 1
) -> Callable[[object], E]:
    """The ``parser`` of an option or argument typed ``accepted``: the member a word names; any
    other word is refused (``fail(refusal(word), code=code)``) before the command runs.

    Parameters
    ----------
    accepted
        The accepted words (an enum whose values are the words; ``--help`` lists them).
    refusal
        The message for a word that is not one of them.
    code
        The exit code of the refusal.
    """

    def parse(value: object) -> E:
        if isinstance(value, accepted):
            return value
        try:
            return accepted(value)
        except ValueError:
            fail(refusal(str(value)), code=code)

    return parse


class RegimeModel(enum.StrEnum):
    """The regime models (``research.regimes.registry``)."""

    vix_trend = "vix_trend"
    vol_ratio = "vol_ratio"
    bull_bear_vol = "bull_bear_vol"
    tags = "tags"
    markov = "markov"


def words(choices: type[enum.Enum]) -> str:
    """The accepted words for a help text: ``a, b or c``."""
    names = [str(member.value) for member in choices]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


MODELS = words(RegimeModel)
"""The regime models, for help texts (their options show ``MODEL``, a shorter metavar than the
list of names)."""


def _unknown_model(word: str) -> str:
    return f"unknown regime model {word!r}; models: {sorted(m.value for m in RegimeModel)}"


parse_regime_model = choice(RegimeModel, _unknown_model)
"""Parser of every ``--model`` / ``--regime-model`` option naming a regime model."""


class Strategy(enum.StrEnum):
    """The spreads sold (``spread.strategy``)."""

    bear_call = "bear_call"
    bull_put = "bull_put"


parse_strategy = choice(
    Strategy,
    lambda w: f"invalid backtest parameters: strategy must be bear_call or bull_put, got {w!r}",
)


class ChainLayout(enum.StrEnum):
    """How an option-chain file is laid out (``research.data.chains``)."""

    auto = "auto"
    long = "long"
    orats = "orats"
    cboe = "cboe"


def parse_chain_layout(option: str) -> Callable[[object], ChainLayout]:
    """Parser of ``option`` naming a chain layout."""
    names = ", ".join(m.value for m in ChainLayout)
    return choice(ChainLayout, lambda w: f"{option} must be one of {names}, got {w!r}")


# --- numbers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A numeric option's accepted values and how its refusal words them.

    Attributes
    ----------
    accepted
        The values (finite ones only, whatever the bounds).
    words
        What the value must be, e.g. ``at least 1``.
    """

    accepted: Range
    words: str


AT_LEAST_0 = Limit(Range(0, integer=True), "at least 0")
AT_LEAST_1 = Limit(Range(1, integer=True), "at least 1")
MORE_THAN_0 = Limit(Range(0, low_open=True), "a number more than 0")


def check_limits(values: Iterable[tuple[str, float, Limit]]) -> None:
    """Check ``(option, value, limit)`` triples before any work, in order.

    Raises
    ------
    research.exceptions.InputError
        ``<option> must be <words>, got <value>`` for the first value out of its limit
        (``research.options.check_number``: NaN and infinities never pass).
    """
    for option, value, limit in values:
        try:
            check_number(value, option, limit.accepted)
        except InputError:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise InputError(f"{option} must be {limit.words}, got {shown}") from None


# --- options shared by several commands -------------------------------------------------------

DateFormatOption = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="How the files write their dates: ISO (YYYY-MM-DD, the default) or a strftime "
        "format such as %d/%m/%Y (day first) or %m/%d/%Y (month first); one format reads a "
        "whole column.",
    ),
]
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


def date_format_callback(group: str) -> Callable[..., None]:
    """The callback of the ``group`` command group: every file its command reads parses its
    dates with ``--date-format`` (``research.data.contracts.dates_read_as``); a bad format is
    one ``error:`` line and exit code 1.

    Parameters
    ----------
    group
        The group's name, for the help text.
    """

    def read_dates(
        ctx: typer.Context,
        date_format: Annotated[
            str | None,
            typer.Option(
                "--date-format",
                help="How the input files write their dates: ISO (YYYY-MM-DD, the default) or "
                "a strftime format such as %d/%m/%Y; one format reads a whole column. Give it "
                f"before the command: research {group} --date-format %d/%m/%Y ...",
            ),
        ] = None,
    ) -> None:
        """Every file the command reads parses its dates with ``--date-format``."""
        if date_format is None:
            return
        from research.data.contracts import dates_read_as

        try:
            ctx.with_resource(dates_read_as(date_format))
        except ValueError as exc:
            fail(f"--date-format {exc}")

    return read_dates


def conventions_option(
    path: Path | None,
    items: list[str] | None,
    base: "Iterable[tuple[str, MarketConvention]]" = (),
) -> dict[str, dict[str, float]]:
    """``--conventions FILE`` with ``--convention`` items on top (both on top of ``base``, a
    config's conventions), as a config mapping."""
    import dataclasses

    from research.backtest.conventions import load_conventions, merge, parse_convention_options
    from research.config import resolve_path

    start = tuple(base)
    if path is not None:
        start = merge(start, load_conventions(resolve_path(path)))
    merged = merge(start, parse_convention_options(items))
    return {
        sym: {k: v for k, v in dataclasses.asdict(conv).items() if v is not None}
        for sym, conv in merged
    }
