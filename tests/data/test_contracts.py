"""Tests for research.data.contracts: good frames pass typed, bad ones fail loudly."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from research.data.contracts import CONTRACTS, contract_columns, contract_markdown, validate
from research.data.errors import ContractError, Problem

SRC = "data/sample/input.csv"


# --------------------------------------------------------------------------------------------
# Good frames, as a reader would deliver them (dates as strings, ints as text or floats, ...)
# --------------------------------------------------------------------------------------------


def good_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": ["2020-01-02", "2020-01-03", "2020-01-06"] * 2,
            "symbol": ["SPX"] * 3 + ["IXIC"] * 3,
            "open": [3244.67, 3226.36, 3217.55, 8872.1, 8834.7, 8788.9],
            "high": [3258.14, 3246.15, 3246.84, 8946.3, 8903.2, 8960.1],
            "low": [3235.53, 3222.34, 3214.64, 8853.4, 8827.1, 8781.0],
            "close": [3257.85, 3234.85, 3246.28, 8945.0, 8876.7, 8910.7],
            "volume": [3.46e9, 3.46e9, np.nan, np.nan, np.nan, np.nan],
        }
    )


def good_frames() -> dict[str, pd.DataFrame]:
    return {
        "bars": good_bars(),
        "iv_index": pd.DataFrame(
            {
                "date": ["2020-01-02", "2020-01-03", "2020-01-02", "2020-01-03"],
                "symbol": ["SPX", "SPX", "IXIC", "IXIC"],
                "iv": [0.1247, 0.1402, 0.1610, 0.1755],
                "source": ["index", "index", "proxy", "proxy"],
            }
        ),
        "signals": pd.DataFrame(
            {
                "asof": ["2010-05-06", "2010-05-06", "2010-05-07"],
                "agent": ["MarketCorrectionAgent", "MomentumAgent", "MarketCorrectionAgent"],
                "cluster": ["macro_defensive", "trend", "macro_defensive"],
                "symbol": ["SPY", "SPY", "SPY"],
                "forward_return_20d": [0.062, -0.013, None],
                "regime": ["risk_off", "risk_off", None],
            }
        ),
        "experiments": pd.DataFrame(
            {
                "experiment_id": ["exp-001", "exp-002"],
                "start": ["2020-01-02", "2021-01-04"],
                "end": ["2020-12-31", "2021-12-31"],
                "param_delta": [0.12, 0.16],
                "param_dte": [30, 45],
                "pnl_pct": [12.5, -3.1],
                "win_rate": [0.71, 0.55],
                "trades": ["42", "37"],
                "sharpe": [1.35, None],
                "max_drawdown": [-0.08, -0.23],
                "symbol": ["QQQ", "SPY"],
                "notes": ["baseline", "wider"],
            }
        ),
        "tunes": pd.DataFrame(
            {
                "tune_id": ["t1", "t1", "t1", "t1"],
                "workspace_id": ["ws"] * 4,
                "strategy_id": ["bear_call"] * 4,
                "run_id": ["r1", "r1", "r2", "r2"],
                "split": ["is", "oos", "is", "oos"],
                "window_start": ["2020-01-02", "2021-01-04", "2020-01-02", "2021-01-04"],
                "window_end": ["2020-12-31", "2021-06-30", "2020-12-31", "2021-06-30"],
                "param_lookback": [20, 20, 40, 40],
                "sharpe": [1.1, 0.7, 0.9, None],
                "is_baseline": ["true", "True", 0, "false"],
                "sortino": [1.5, 0.9, 1.2, 0.3],
            }
        ),
        "trades": good_trades(),
        "option_chains": pd.DataFrame(
            {
                "quote_date": ["2018-01-02", "2018-01-02", "2018-01-03"],
                "underlying": ["SPX", "SPX", "SPX"],
                "expiration": ["2018-02-02", "2018-02-02", "2018-02-02"],
                "type": ["call", "put", "call"],
                "strike": [2750.0, 2600.0, 2750.0],
                "bid": [4.1, 6.2, 0.0],
                "ask": [4.6, 6.8, 0.05],
                "underlying_price": [2695.8, 2695.8, 2713.1],
                "iv": [0.085, 0.142, None],
                "delta": [0.17, -0.12, None],
            }
        ),
        "paper_trades": pd.DataFrame(
            {
                "entry_time": ["2024-03-01 10:35", "2024-03-04 10:41", "2024-03-05"],
                "exit_time": ["2024-03-08 15:45", None, "2024-03-05 15:58"],
                "underlying": ["SPX", "SPX", "QQQ"],
                "short_strike": [5200.0, 5225.0, 460.0],
                "long_strike": [5280.0, 5300.0, 467.0],
                "expiration": ["2024-04-05", "2024-04-05", "2024-04-05"],
                "contracts": [2, 1, 3],
                "credit": [3.1, 2.85, 0.42],
                "debit": [1.05, None, 0.0],
                "entry_mid": [3.2, 2.95, None],
                "exit_reason": ["profit_target", None, "manual"],
                "llm_decision": ["approve", "approve", None],
                "regime": ["bull_low_vol", "bull_low_vol", None],
            }
        ),
        "llm_decisions": pd.DataFrame(
            {
                "trade_id": ["QQQ-2022-03-15-350", "QQQ-2022-03-15-350", "QQQ-2022-04-01-360"],
                "model": ["x-ai/grok-2", "x-ai/grok-2", "x-ai/grok-2"],
                "prompt_variant": ["base", "risk_first", "base"],
                "decision": ["approve", "reject", None],
                "confidence": [0.8, 0.35, None],
                "contracts": [2, 0, None],
                "reason": ["IV rank high, trend down", "VIX spike", None],
                "error": [None, None, "timeout after 30 s"],
                "latency_s": [1.42, 1.10, 30.0],
                "tokens": [812, 790, None],
            }
        ),
    }


def good_trades() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": ["2022-03-15", "2022-03-16", "2022-04-01"],
            "ticker": ["QQQ", "QQQ", "SPY"],
            "short_strike": [350.0, 352.0, 470.0],
            "long_strike": [345.0, 347.0, 465.0],
            "expiration": ["2022-04-14", "2022-04-14", "2022-05-02"],
            "credit": [0.85, 0.90, 1.05],
            "max_loss": [4.15, 4.10, 3.95],
            "delta": [0.12, 0.13, 0.15],
            "dte": [30, 29, 31],
            "iv_percentile": [82.5, 80.1, 40.0],
            "vix": [28.3, 26.7, 19.6],
            "underlying_price": [340.0, 344.2, 452.9],
            "outcome": ["profit", "loss", "breakeven"],
            "pnl": [55.25, -310.0, 0.0],
            "exit_reason": ["profit_target", "stop_loss", "expiration"],
            "hold_days": [12, 7, 31],
        }
    )


def problems_of(kind: str, df: pd.DataFrame, source: str = SRC) -> ContractError:
    with pytest.raises(ContractError) as info:
        validate(kind, df, source=source)
    err = info.value
    assert source in str(err)
    return err


def only(err: ContractError, check: str, column: str | None = None) -> Problem:
    found = err.find(check, column)
    assert len(found) == 1, f"expected one {check!r} on {column!r}, got:\n{err}"
    return found[0]


# --------------------------------------------------------------------------------------------
# Good frames
# --------------------------------------------------------------------------------------------


def test_every_contract_has_a_good_frame() -> None:
    assert (
        set(good_frames())
        == set(CONTRACTS)
        == {
            "bars",
            "iv_index",
            "signals",
            "experiments",
            "tunes",
            "trades",
            "option_chains",
            "paper_trades",
            "llm_decisions",
        }
    )


@pytest.mark.parametrize("kind", sorted(CONTRACTS))
def test_good_frame_validates_with_contract_types(kind: str) -> None:
    raw = good_frames()[kind]
    before = raw.copy()
    out = validate(kind, raw)
    pdt.assert_frame_equal(raw, before)  # input untouched
    assert isinstance(out.index, pd.RangeIndex)
    assert len(out) == len(raw)
    contract = CONTRACTS[kind]
    for f in contract.fields:
        if f.pattern or f.name not in out:
            continue
        expected = f.dtype
        assert str(out[f.name].dtype) == expected, (f.name, out[f.name].dtype)
    # contract columns first, in contract order, extras after
    known = [c for c in out.columns if contract.field(c) is not None]
    assert list(out.columns[: len(known)]) == known
    positions = [contract.fields.index(contract.field(c)) for c in known]  # type: ignore[arg-type]
    assert positions == sorted(positions)
    # idempotent
    pdt.assert_frame_equal(validate(kind, out), out)


def test_bars_values_and_dtypes() -> None:
    out = validate("bars", good_bars())
    assert list(out.columns) == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert out["date"].dtype == np.dtype("datetime64[ns]")
    assert out.loc[2, "date"] == pd.Timestamp("2020-01-06")
    assert out["volume"].isna().sum() == 4
    assert out.loc[0, "close"] == 3257.85


def test_column_order_params_and_extras() -> None:
    out = validate("experiments", good_frames()["experiments"])
    assert list(out.columns) == [
        "experiment_id",
        "start",
        "end",
        "param_delta",
        "param_dte",
        "pnl_pct",
        "win_rate",
        "trades",
        "sharpe",
        "max_drawdown",
        "symbol",
        "notes",
    ]
    assert out["trades"].dtype == np.dtype("int64")
    assert out["trades"].tolist() == [42, 37]
    assert out["end"].tolist() == [pd.Timestamp("2020-12-31"), pd.Timestamp("2021-12-31")]


def test_tunes_booleans_accept_text_and_numbers() -> None:
    out = validate("tunes", good_frames()["tunes"])
    assert out["is_baseline"].dtype == np.dtype("bool")
    assert out["is_baseline"].tolist() == [True, True, False, False]
    assert out.columns[-1] == "sortino"


def test_llm_nullable_ints_and_error_rows() -> None:
    out = validate("llm_decisions", good_frames()["llm_decisions"])
    assert str(out["contracts"].dtype) == "Int64"
    assert out["contracts"].tolist()[:2] == [2, 0]
    assert pd.isna(out.loc[2, "contracts"])
    assert pd.isna(out.loc[2, "decision"])


def test_trades_ints_are_int64_and_dates_ns() -> None:
    out = validate("trades", good_trades())
    for col in ("dte", "hold_days"):
        assert out[col].dtype == np.dtype("int64")
    for col in ("date", "expiration"):
        assert out[col].dtype == np.dtype("datetime64[ns]")
    assert (out["expiration"] - out["date"]).dt.days.tolist() == [30, 29, 31]


def test_datetime_column_in_other_units_is_normalised_to_ns() -> None:
    df = good_bars()
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[s]")
    out = validate("bars", df)
    assert out["date"].dtype == np.dtype("datetime64[ns]")


def test_non_range_index_is_reset_and_rows_are_positions() -> None:
    df = good_bars()
    df.index = [10, 11, 12, 13, 14, 15]
    df.loc[13, "close"] = -1.0
    err = problems_of("bars", df)
    assert only(err, "negative price", "close").rows == (4,)
    df.loc[13, "close"] = 1.0
    df.loc[13, "low"] = 0.5
    assert isinstance(validate("bars", df).index, pd.RangeIndex)


def test_contract_columns() -> None:
    assert contract_columns("bars") == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert contract_columns("iv_index") == ["date", "symbol", "iv"]  # source is optional
    assert "param_" not in contract_columns("experiments")
    assert contract_columns("trades")[-1] == "hold_days"
    assert len(contract_columns("trades")) == 16


def test_unknown_kind() -> None:
    with pytest.raises(ValueError) as info:
        validate("candles", good_bars())
    assert isinstance(info.value, ContractError)
    msg = str(info.value)
    assert "'candles'" in msg
    for kind in CONTRACTS:
        assert kind in msg


def test_schemas_are_pandera() -> None:
    import pandera.pandas as pa

    assert isinstance(CONTRACTS["bars"].schema, pa.DataFrameSchema)
    assert CONTRACTS["bars"].schema.name == "bars"


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_missing_column() -> None:
    df = good_bars().drop(columns=["close"])
    err = problems_of("bars", df)
    p = only(err, "missing column", "close")
    assert p.n_rows == 0
    assert "column 'close': missing column" in str(err)
    assert len(err.problems) == 1  # no knock-on failures


def test_missing_column_hints_at_case() -> None:
    df = good_bars().rename(columns={"date": "Date"})
    err = problems_of("bars", df)
    assert "'Date'" in only(err, "missing column", "date").detail


def test_wrong_type_in_float_column() -> None:
    df = good_bars()
    df["close"] = df["close"].astype(object)
    df.loc[1, "close"] = "abc"
    df.loc[4, "close"] = "1,234.5"
    err = problems_of("bars", df)
    p = only(err, "wrong type", "close")
    assert (p.n_rows, p.rows, p.examples) == (2, (2, 5), ("abc", "1,234.5"))
    # the coerced NaN is not reported a second time as a missing value
    assert not err.find("missing value", "close")
    assert "column 'close': wrong type in 2 rows (rows 2, 5; values abc, 1,234.5)" in str(err)


def test_unparseable_date() -> None:
    df = good_bars()
    df.loc[2, "date"] = "2020-13-45"
    err = problems_of("bars", df)
    p = only(err, "wrong type", "date")
    assert (p.n_rows, p.rows, p.examples) == (1, (3,), ("2020-13-45",))
    assert not err.find("null in key")


def test_non_integer_in_int_column() -> None:
    df = good_trades()
    df["dte"] = [30, 2.5, 31]
    err = problems_of("trades", df)
    p = only(err, "wrong type", "dte")
    assert (p.rows, p.examples) == ((2,), ("2.5",))


def test_bad_boolean() -> None:
    df = good_frames()["tunes"]
    df.loc[3, "is_baseline"] = "maybe"
    err = problems_of("tunes", df)
    assert only(err, "wrong type", "is_baseline").rows == (4,)


def test_null_in_key() -> None:
    df = good_bars()
    df.loc[[1, 3], "symbol"] = None
    err = problems_of("bars", df)
    p = only(err, "null in key", "symbol")
    assert (p.n_rows, p.rows) == (2, (2, 4))
    assert p.examples == ("2020-01-03|<null>", "2020-01-02|<null>")


def test_blank_string_counts_as_null() -> None:
    df = good_frames()["signals"]
    df.loc[0, "agent"] = "   "
    err = problems_of("signals", df)
    assert only(err, "null in key", "agent").rows == (1,)


def test_null_in_required_value() -> None:
    df = good_bars()
    df.loc[5, "open"] = np.nan
    err = problems_of("bars", df)
    p = only(err, "missing value", "open")
    assert (p.n_rows, p.rows) == (1, (6,))


def test_duplicate_key() -> None:
    df = pd.concat([good_bars(), good_bars().iloc[[4]]], ignore_index=True)
    # bars must also be sorted, so the duplicate appended last is also "unsorted"
    err = problems_of("bars", df)
    p = only(err, "duplicate key", "date, symbol")
    assert (p.n_rows, p.rows) == (2, (5, 7))
    assert p.examples == ("2020-01-03|IXIC", "2020-01-03|IXIC")
    assert p.columns == ("date", "symbol")
    assert "columns 'date', 'symbol': duplicate key in 2 rows (rows 5, 7;" in str(err)


def test_duplicate_key_signals() -> None:
    df = good_frames()["signals"]
    df.loc[1, "agent"] = "MarketCorrectionAgent"
    err = problems_of("signals", df)
    p = only(err, "duplicate key", "asof, agent, symbol")
    assert p.rows == (1, 2)


def test_unsorted_dates_rows_4_and_9() -> None:
    dates = pd.bdate_range("2020-01-01", periods=10).strftime("%Y-%m-%d").tolist()
    dates[3], dates[8] = "2019-12-01", "2019-12-31"  # rows 4 and 9 go back in time
    df = pd.DataFrame(
        {
            "date": dates,
            "symbol": "SPX",
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": None,
        }
    )
    err = problems_of("bars", df)
    p = only(err, "unsorted dates", "date")
    assert (p.n_rows, p.rows) == (2, (4, 9))
    assert p.examples == (
        "SPX 2019-12-01 not after 2020-01-03",
        "SPX 2019-12-31 not after 2020-01-10",
    )
    assert len(err.problems) == 1


def test_unsorted_dates_are_per_symbol() -> None:
    # interleaved symbols are fine as long as each symbol's dates increase
    df = good_bars().iloc[[0, 3, 1, 4, 2, 5]]
    validate("bars", df)


def test_unsorted_iv_index() -> None:
    df = good_frames()["iv_index"].iloc[[1, 0, 2, 3]]
    err = problems_of("iv_index", df)
    assert only(err, "unsorted dates", "date").rows == (2,)


def test_iv_in_vix_points_is_explained() -> None:
    df = good_frames()["iv_index"]
    df["iv"] = [12.47, 14.02, 0.161, 0.0]
    err = problems_of("iv_index", df)
    p = only(err, "out of range", "iv")
    assert (p.n_rows, p.rows, p.examples) == (3, (1, 2, 4), ("12.47", "14.02", "0.0"))
    assert "iv must be annualised" in str(err)
    assert "0.185 for VIX 18.5" in str(err)


def test_negative_and_zero_prices() -> None:
    df = good_bars()
    df.loc[[3, 5], "close"] = [-1.0, 0.0]
    df.loc[3, "low"] = -2.0
    err = problems_of("bars", df)
    close = only(err, "negative price", "close")
    assert (close.n_rows, close.rows, close.examples) == (2, (4, 6), ("-1.0", "0.0"))
    assert only(err, "negative price", "low").rows == (4,)


def test_high_below_low() -> None:
    df = good_bars()
    df.loc[[1, 4], "high"] = [3200.0, 8800.0]
    err = problems_of("bars", df)
    p = only(err, "high < low", "high, low")
    assert (p.n_rows, p.rows, p.examples) == (2, (2, 5), ("3200.0 < 3222.34", "8800.0 < 8827.1"))


def test_negative_volume() -> None:
    df = good_bars()
    df.loc[0, "volume"] = -5.0
    assert only(problems_of("bars", df), "out of range", "volume").rows == (1,)


def test_timezone_offset_strings() -> None:
    df = good_bars()
    df["date"] = df["date"] + "T00:00:00+00:00"
    df.loc[0, "date"] = "2020-01-02"
    err = problems_of("bars", df)
    p = only(err, "timezone-aware dates", "date")
    assert (p.n_rows, p.rows[:2]) == (5, (2, 3))
    assert p.examples[0] == "2020-01-03T00:00:00+00:00"
    assert "naive dates" in str(err)
    assert len(err.problems) == 1  # offsets do not cascade into null/duplicate problems


def test_timezone_aware_datetime_column() -> None:
    df = good_bars()
    df["date"] = pd.to_datetime(df["date"]).dt.tz_localize("America/New_York")
    err = problems_of("bars", df)
    p = only(err, "timezone-aware dates", "date")
    assert (p.n_rows, p.rows) == (6, (1, 2, 3, 4, 5))
    assert "America/New_York" in p.detail


def test_all_problems_at_once() -> None:
    df = good_trades()
    df.loc[0, "delta"] = 12.0  # percent instead of fraction
    df.loc[1, "outcome"] = "win"
    df.loc[2, "expiration"] = "2022-03-01"  # before the trade date
    df.loc[2, "credit"] = 0.0
    df = df.drop(columns=["hold_days"])
    err = problems_of("trades", df)
    assert {(p.column, p.check, p.rows) for p in err.problems} == {
        ("hold_days", "missing column", ()),
        ("delta", "out of range", (1,)),
        ("outcome", "invalid value", (2,)),
        ("date, expiration", "expiration before date", (3,)),
        ("credit", "out of range", (3,)),
    }
    assert f"{SRC}: does not satisfy the 'trades' contract (5 problems)" in str(err)


def test_many_failing_rows_keep_five_examples() -> None:
    df = pd.concat([good_bars()] * 3, ignore_index=True)
    df["symbol"] = [f"S{i}" for i in range(len(df))]
    df["close"] = -np.arange(1, len(df) + 1, dtype=float)
    err = problems_of("bars", df)
    p = only(err, "negative price", "close")
    assert (p.n_rows, p.rows, p.examples) == (
        18,
        (1, 2, 3, 4, 5),
        ("-1.0", "-2.0", "-3.0", "-4.0", "-5.0"),
    )
    assert "in 18 rows (first rows 1, 2, 3, 4, 5;" in str(err)


def test_experiment_rules() -> None:
    df = good_frames()["experiments"].drop(columns=["param_delta", "param_dte"])
    df.loc[0, "win_rate"] = 71.0
    df.loc[1, "max_drawdown"] = -23.0
    df.loc[1, "end"] = "2020-12-31"
    df.loc[1, "experiment_id"] = "exp-001"
    err = problems_of("experiments", df)
    assert only(err, "missing column", "param_*").n_rows == 0
    assert only(err, "out of range", "win_rate").rows == (1,)
    assert "-0.23" in only(err, "out of range", "max_drawdown").detail
    assert only(err, "end before start", "start, end").examples == (
        "end 2020-12-31 < start 2021-01-04",
    )
    assert only(err, "duplicate key", "experiment_id").rows == (1, 2)


def test_tunes_split_and_key() -> None:
    df = good_frames()["tunes"]
    df.loc[1, "split"] = "train"
    df.loc[3, "run_id"] = "r1"
    df.loc[3, "split"] = "is"
    err = problems_of("tunes", df)
    p = only(err, "invalid value", "split")
    assert (p.rows, p.examples) == ((2,), ("train",))
    assert "'is', 'oos'" in p.detail
    assert only(err, "duplicate key", "tune_id, run_id, split").rows == (1, 4)


def test_llm_decision_null_needs_error() -> None:
    df = good_frames()["llm_decisions"]
    df.loc[2, "error"] = None
    df.loc[0, "confidence"] = 1.2
    err = problems_of("llm_decisions", df)
    decision = only(err, "missing value", "decision")
    assert (decision.rows, decision.examples) == ((3,), ("QQQ-2022-04-01-360|x-ai/grok-2|base",))
    assert only(err, "missing value", "confidence").rows == (3,)
    assert only(err, "out of range", "confidence").examples == ("1.2",)


def test_duplicate_column_names() -> None:
    df = good_bars()
    df.columns = ["date", "symbol", "open", "high", "low", "close", "close"]
    err = problems_of("bars", df)
    assert only(err, "duplicate column", "close")
    assert only(err, "missing column", "volume")


# --------------------------------------------------------------------------------------------
# Error object and documentation
# --------------------------------------------------------------------------------------------


def test_error_message_format_and_pickle() -> None:
    err = ContractError(
        "data/bars.csv",
        "bars",
        [
            Problem("close", "negative price", 3, (4, 9, 17), ("-1.0", "-3.2", "-0.5")),
            Problem("date, symbol", "duplicate key", 2, (5, 6), ("2020-01-03|SPX",) * 2),
        ],
    )
    assert str(err) == (
        "data/bars.csv: does not satisfy the 'bars' contract (2 problems)\n"
        "  - column 'close': negative price in 3 rows (rows 4, 9, 17; values -1.0, -3.2, -0.5)\n"
        "  - columns 'date', 'symbol': duplicate key in 2 rows "
        "(rows 5, 6; values 2020-01-03|SPX, 2020-01-03|SPX)"
    )
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)
    assert again.problems == err.problems


def test_readme_documents_every_contract() -> None:
    readme = Path(__file__).resolve().parents[2] / "data" / "README.md"
    text = readme.read_text(encoding="utf-8")
    for kind in CONTRACTS:
        assert f"### `{kind}`" in text
        assert contract_markdown(kind) in text, f"data/README.md is out of date for {kind}"
