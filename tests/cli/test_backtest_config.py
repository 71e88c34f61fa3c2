"""``research backtest run --config FILE``: a ``BacktestConfig`` as YAML is the base, the options
given on the command line go on top, and a file that cannot be used is one ``error:`` line
naming it, before any work.

Commands run in-process (``typer.testing.CliRunner`` on ``research.cli.app``) on SPX's first
quarter of 2015 (embedded data), so a run takes a second or two."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from research.backtest.spreads import BacktestConfig
from research.cli import app
from research.cli.backtest import CONFIG_OPTIONS, backtest_config, backtest_run

SHORT = ("--tickers", "SPX", "--start", "2015-01-01", "--end", "2015-03-31")

CONFIG = """\
spread:
  min_delta: 0.08
  max_delta: 0.2
  target_dte: 21
  profit_target_pct: 50
sizing:
  mode: scaled
  risk_pct: 3
fills:
  timing: next_open
  fee_per_contract: 1.0
rate: 0.03
"""
SAME_AS_OPTIONS = (
    "--min-delta", "0.08", "--max-delta", "0.2", "--dte", "21", "--profit-target", "50",
    "--sizing", "scaled", "--risk-pct", "3", "--fills", "next_open", "--fee", "1.0",
    "--rate", "0.03",
)  # fmt: skip


def invoke(*args: str | Path) -> tuple[int, str, str]:
    """``research ARGS`` in-process: (exit code, stdout, stderr); a traceback fails the test."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def backtest(*args: str | Path, trades: Path) -> tuple[str, list[dict[str, object]]]:
    """A short SPX backtest: its stdout and its exported trades."""
    code, out, err = invoke("backtest", "run", *SHORT, "--export-trades", trades, *args)
    assert code == 0, err
    return out.replace(str(trades), "TRADES"), json.loads(trades.read_text())


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_config_file_gives_the_same_run_as_the_same_options(in_tmp: Path) -> None:
    (in_tmp / "cfg.yaml").write_text(CONFIG)
    from_file = backtest("--config", "cfg.yaml", trades=in_tmp / "a.json")
    from_options = backtest(*SAME_AS_OPTIONS, trades=in_tmp / "b.json")
    assert from_file == from_options
    assert from_file[1], "no trade: the comparison would prove nothing"
    defaults = backtest(trades=in_tmp / "c.json")
    assert defaults[1] != from_file[1]  # the file was read


def test_an_option_given_on_the_command_line_overrides_the_file(in_tmp: Path) -> None:
    (in_tmp / "cfg.yaml").write_text(CONFIG)
    overridden = backtest("--config", "cfg.yaml", "--profit-target", "80", trades=in_tmp / "a.json")
    options = [*SAME_AS_OPTIONS]
    options[options.index("--profit-target") + 1] = "80"
    assert overridden == backtest(*options, trades=in_tmp / "b.json")
    # an option given at its default value still overrides the file
    again = backtest("--config", "cfg.yaml", "--fills", "close", trades=in_tmp / "c.json")
    options = [*SAME_AS_OPTIONS]
    options[options.index("--fills") + 1] = "close"
    assert again == backtest(*options, trades=in_tmp / "d.json")


def test_the_configuration_is_built_in_one_place(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(CONFIG + "dividend_yields: {SPX: 0.01}\nconventions: {SPX: {tick: 0.1}}\n")
    cfg = backtest_config(path, {"profit_target": 80.0}, dividend_yield=["IXIC=0.02"])
    assert cfg.spread.profit_target_pct == 80.0 and cfg.spread.min_delta == 0.08
    assert cfg.fills.timing == "next_open" and cfg.sizing.mode == "scaled" and cfg.rate == 0.03
    assert dict(cfg.dividend_yields) == {"SPX": 0.01, "IXIC": 0.02}
    assert cfg.convention("SPX").tick == 0.1
    with_item = backtest_config(path, {}, convention=["SPX:strike_step=5"])
    assert (with_item.convention("SPX").tick, with_item.convention("SPX").strike_step) == (0.1, 5)
    assert backtest_config(None, {}) == BacktestConfig()


def test_the_options_defaults_are_the_configurations() -> None:
    """``--help`` shows each option's default: it must be the configuration's."""
    params = inspect.signature(backtest_run).parameters
    defaults = {name: params[name].default for name in CONFIG_OPTIONS}
    assert backtest_config(None, defaults) == BacktestConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spread:\n  min_detla: 0.1\n", "unknown spread parameter(s) ['min_detla']; known ["),
        ("tickers: SPX\n", "unknown backtest parameter(s) ['tickers']; blocks ["),
        ("spread.stop_los_pct: 100\n", "unknown spread parameter(s) ['stop_los_pct']"),
        ("spread:\n  strategy: iron_condor\n",
         "invalid backtest parameters: strategy must be bear_call or bull_put, got "
         "'iron_condor'"),
        ("spread:\n  min_delta: abc\n",
         "invalid backtest parameters: spread.min_delta must be a finite number, got 'abc'"),
        ("spread:\n  target_dte: 5000\n",
         "spread.target_dte must be a whole number in [1, 1095], got 5000"),
        ("fills: {timing: tomorrow}\n",
         "invalid backtest parameters: fill timing must be close or next_open, got 'tomorrow'"),
        ("spread: 3\n", "spread must hold spread parameters (spread: {name: value, ...}), got 3"),
        ("sizing:\n  regime_multipliers: [1, 2]\n",
         "sizing.regime_multipliers must be a mapping ("),
        ("sizing:\n  regime_multipliers: {bull_low_vol: 0.5}\n",
         "sizing.regime_multipliers needs --regime-model"),
        ("- spread\n", "expected a mapping of backtest parameters"),
        ("spread:\n  min_delta: [0.1\n", "not valid YAML (line 3, column 1): expected ','"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_used_is_one_line_naming_it(
    in_tmp: Path, text: str, message: str
) -> None:
    (in_tmp / "cfg.yaml").write_text(text)
    code, out, err = invoke("backtest", "run", "--config", "cfg.yaml", "--export-trades", "t.json")
    assert code == 1 and out == ""
    assert one_error_line(err).startswith(f"error: cfg.yaml: {message}")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["cfg.yaml"]  # nothing written


def test_a_missing_config_file_is_named_like_any_input(in_tmp: Path) -> None:
    code, _, err = invoke("backtest", "run", "--config", "nope.yaml")
    assert code == 1
    assert one_error_line(err).startswith("error: --config nope.yaml: no such file")


def test_the_file_is_never_an_output(in_tmp: Path) -> None:
    (in_tmp / "cfg.json").write_text("{}")
    code, _, err = invoke("backtest", "run", "--config", "cfg.json", "--export-trades", "cfg.json")
    assert code == 1 and "--export-trades cfg.json is also an input" in one_error_line(err)
    assert (in_tmp / "cfg.json").read_text() == "{}"
