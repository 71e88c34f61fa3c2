"""The command line's choices and its one way of refusing (``research.cli._common``).

An option that takes one of a few words lists them in ``--help`` and refuses any other word
before the command runs, with the one line and the exit code the command has always given; the
words are the ones the library accepts. ``refusals`` turns the package's errors into one
``error:`` line."""

from __future__ import annotations

import enum
import errno
from pathlib import Path
from typing import get_args

import pytest
import typer
from typer.testing import CliRunner

from research.cli import app
from research.cli._common import ChainLayout, RegimeModel, Strategy, fail, refusals
from research.exceptions import InputError, OutputError


def invoke(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def values(choices: type[enum.Enum]) -> set[str]:
    return {str(m.value) for m in choices}


def test_the_choices_are_the_words_the_library_accepts() -> None:
    from research.backtest import spreads
    from research.backtest.run import ENGINES
    from research.cli.backtest import FillTiming, MissingQuote, SizingMode, StopFill
    from research.cli.grid import Engine, Executor
    from research.cli.run import Renderer
    from research.data.chains import LAYOUTS
    from research.optimize.executors import EXECUTORS
    from research.pipeline.runner import RENDERERS
    from research.regimes.registry import models

    assert values(RegimeModel) == set(models())
    assert values(Strategy) == set(get_args(spreads.Strategy))
    assert values(SizingMode) == set(get_args(spreads.SizingMode))
    assert values(FillTiming) == set(get_args(spreads.FillTiming))
    assert values(StopFill) == set(get_args(spreads.StopFill))
    assert values(MissingQuote) == set(get_args(spreads.MissingQuote))
    assert values(ChainLayout) == {"auto", *LAYOUTS}
    assert values(Engine) == set(ENGINES)
    assert values(Executor) == set(EXECUTORS)
    assert [r.value for r in Renderer] == list(RENDERERS)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("run", "--renderer", "foo"), 2,
         "--renderer must be one of auto, quarto, nbconvert, got foo"),
        (("backtest", "run", "--strategy", "x", "--bars", "missing.csv"), 1,
         "invalid backtest parameters: strategy must be bear_call or bull_put, got 'x'"),
        (("backtest", "run", "--fills", "tomorrow"), 1,
         "invalid backtest parameters: fill timing must be close or next_open, got 'tomorrow'"),
        (("backtest", "run", "--chain-layout", "wide"), 1,
         "--chain-layout must be one of auto, long, orats, cboe, got 'wide'"),
        (("regimes", "classify", "--model", "x", "--bars", "missing.csv", "--out", "o.csv"), 1,
         "unknown regime model 'x'; models: ['bull_bear_vol', 'markov', 'tags', 'vix_trend', "
         "'vol_ratio']"),
        (("grid", "run", "sideways"), 1,
         "unknown grid 'sideways'; use multipliers, limits or cartesian"),
        (("grid", "study", "sideways"), 1, "unknown study 'sideways'; use multipliers or limits"),
        (("grid", "run", "limits", "--engine", "fast"), 1,
         "engine must be one of auto, shared, per_config; got 'fast'"),
        (("grid", "run", "limits", "--executor", "ray"), 1,
         "unknown executor 'ray'; choose one of: inline, local, dask"),
        (("data", "export", "quotes", "--out", "q.csv"), 1,
         "unknown kind 'quotes'; use bars or iv"),
        (("attribute", "signals", "--by", "desk"), 1, "--by must be agent or cluster, got 'desk'"),
        (("attribute", "experiments", "--grouping", "x"), 1,
         "--grouping must be entry_regime or dominant_regime, got 'x'"),
        (("llm", "evaluate", "--provider", "nope", "--out", "d.csv"), 1,
         "unknown provider 'nope' (openai, local, replay or heuristic)"),
    ],
)  # fmt: skip
def test_a_word_that_is_not_a_choice_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], code: int, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    got, out, err = invoke(*args)
    assert (got, out, err) == (code, "", f"error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_choices() -> None:
    for args, shown in (
        (("run", "--help"), "<auto|quarto|nbconvert>"),
        (("backtest", "run", "--help"), "<bear_call|bull_put>"),
        (("backtest", "run", "--help"), "<close|next_open>"),
        (("grid", "run", "--help"), "<inline|local|dask>"),
    ):
        code, out, _ = invoke(*args)
        assert code == 0 and shown in out, (args, out)
    code, out, _ = invoke("regimes", "classify", "--help")  # MODEL, the models in the help text
    assert code == 0 and "MODEL" in out and all(m.value in out for m in RegimeModel), out


def refused(raised: BaseException, **how: object) -> tuple[int, str]:
    """What ``refusals(**how)`` makes of ``raised``: (exit code, stderr)."""
    command = typer.Typer()

    @command.command()
    @refusals(**how)
    def go() -> None:
        raise raised

    res = CliRunner().invoke(command, [])
    assert isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stderr


def test_refusals_turn_the_package_errors_into_one_line() -> None:
    assert refused(InputError("--x must be at least 1, got 0")) == (
        1,
        "error: --x must be at least 1, got 0\n",
    )
    assert refused(OutputError("cannot write a.csv: disk full"), code=2) == (
        2,
        "error: cannot write a.csv: disk full\n",
    )
    multi = ValueError("bars.csv: does not satisfy the 'bars' contract (1 problem)\n  - column x")
    assert refused(multi)[1] == f"error: {multi}\n"  # a contract's problems, one per line
    assert refused(multi, one_line=True)[1] == (
        "error: bars.csv: does not satisfy the 'bars' contract (1 problem) - column x\n"
    )
    denied = PermissionError(errno.EACCES, "Permission denied", "/ro/out.csv")
    assert refused(denied) == (1, "error: /ro/out.csv: Permission denied\n")
    assert refused(OSError(errno.EIO, "I/O error"), subject="research run", code=2) == (
        2,
        "error: research run: I/O error\n",
    )
    assert refused(RuntimeError("kernel died"), also=(RuntimeError,), code=2) == (
        2,
        "error: kernel died\n",
    )
    assert refused(typer.Exit(130)) == (130, "")  # a refusal already made passes through


def test_fail_is_one_error_line_and_the_exit_code() -> None:
    with pytest.raises(typer.Exit) as exc:
        fail("no  such\nfile", code=3, one_line=True)
    assert exc.value.exit_code == 3
