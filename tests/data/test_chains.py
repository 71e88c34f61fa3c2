"""Tests for research.data.chains: vendor layouts, DuckDB filters and the option_chains contract.

Every chain file is built here, in ``tmp_path``, from small hand-made frames (and one generated
with numpy for the push-down check); expected values are written out by hand.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from research.data.chains import LAYOUTS, detect_layout, load_chains
from research.data.contracts import validate
from research.data.errors import ContractError, Problem

CONTRACT_COLUMNS = [
    "quote_date",
    "underlying",
    "expiration",
    "type",
    "strike",
    "bid",
    "ask",
    "underlying_price",
]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def long_raw() -> pd.DataFrame:
    """A long-layout chain as a vendor would write it: text dates, mixed type spellings, not
    sorted, an optional column with a null."""
    return pd.DataFrame(
        {
            "quote_date": ["2024-01-03", "2024-01-02", "2024-01-02", "2024-01-02", "2024-01-02"],
            "underlying": ["SPY", "SPY", "SPY", "QQQ", "SPY"],
            "expiration": ["2024-01-19", "2024-01-19", "2024-01-19", "2024-01-19", "2024-02-16"],
            "type": ["C", "P", "Call", "put", "call"],
            "strike": [470.0, 460.0, 470.0, 400.0, 470.0],
            "bid": [1.5, 2.0, 1.2, 3.0, 4.4],
            "ask": [1.6, 2.1, 1.3, 3.2, 4.6],
            "underlying_price": [468.0, 472.0, 472.0, 405.0, 472.0],
            "iv": [0.15, None, 0.14, 0.2, 0.13],
        }
    )


def long_expected() -> pd.DataFrame:
    """``long_raw`` validated: sorted by underlying, quote_date, type, expiration, strike."""
    return pd.DataFrame(
        {
            "quote_date": pd.to_datetime(
                ["2024-01-02", "2024-01-02", "2024-01-02", "2024-01-02", "2024-01-03"]
            ).astype("datetime64[ns]"),
            "underlying": pd.Series(["QQQ", "SPY", "SPY", "SPY", "SPY"], dtype="str"),
            "expiration": pd.to_datetime(
                ["2024-01-19", "2024-01-19", "2024-02-16", "2024-01-19", "2024-01-19"]
            ).astype("datetime64[ns]"),
            "type": pd.Series(["put", "call", "call", "put", "call"], dtype="str"),
            "strike": [400.0, 470.0, 470.0, 460.0, 470.0],
            "bid": [3.0, 1.2, 4.4, 2.0, 1.5],
            "ask": [3.2, 1.3, 4.6, 2.1, 1.6],
            "underlying_price": [405.0, 472.0, 472.0, 472.0, 468.0],
            "iv": [0.2, 0.14, 0.13, np.nan, 0.15],
        }
    )


def write_duckdb(path: Path, tables: dict[str, pd.DataFrame], *, native_dates: bool) -> None:
    con = duckdb.connect(str(path))
    try:
        for name, df in tables.items():
            con.register("frame", df)
            if native_dates:
                con.execute(
                    f"CREATE TABLE {name} AS SELECT * REPLACE ("
                    "CAST(quote_date AS DATE) AS quote_date, "
                    "CAST(expiration AS DATE) AS expiration) FROM frame"
                )
            else:
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
    finally:
        con.close()


def write_sqlite(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    con = sqlite3.connect(path)
    try:
        for name, df in tables.items():
            df.to_sql(name, con, index=False)
        con.commit()
    finally:
        con.close()


def write_parquet_native(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    for col in ("quote_date", "expiration", "tradeDate", "expirDate"):
        if col in out:
            out[col] = pd.to_datetime(out[col])
    out.to_parquet(path, index=False)


WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    "chains.csv": lambda df, p: df.to_csv(p, index=False),
    "chains.csv.gz": lambda df, p: df.to_csv(p, index=False, compression="gzip"),
    "chains.parquet": lambda df, p: df.to_parquet(p, index=False),
    "native.parquet": write_parquet_native,
    "chains.json": lambda df, p: df.to_json(p, orient="records"),
    "chains.jsonl": lambda df, p: df.to_json(p, orient="records", lines=True),
    "chains.sqlite": lambda df, p: write_sqlite(p, {"chains": df}),
    "chains.duckdb": lambda df, p: write_duckdb(p, {"chains": df}, native_dates=False),
    "native.duckdb": lambda df, p: write_duckdb(p, {"chains": df}, native_dates=True),
}


def chain_error(path: Path, **kwargs: object) -> ContractError:
    """Load and expect a ContractError whose message names the file."""
    with pytest.raises(ContractError) as info:
        load_chains(path, **kwargs)
    err = info.value
    assert err.source == str(path)
    assert str(path) in str(err)
    assert err.kind == "option_chains"
    return err


def only(err: ContractError, check: str, column: str | None = None) -> Problem:
    found = err.find(check, column)
    assert len(found) == 1, f"expected one {check!r} on {column!r}, got:\n{err}"
    assert len(err.problems) == 1, f"expected a single problem, got:\n{err}"
    return found[0]


def file_problem(err: ContractError) -> Problem:
    assert len(err.problems) == 1, str(err)
    (p,) = err.problems
    assert p.column is None and p.n_rows == 0
    return p


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "chains.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------------------------
# Long layout
# --------------------------------------------------------------------------------------------


def test_layouts_constant() -> None:
    assert LAYOUTS == ("long", "orats", "cboe")


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_long_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    WRITERS[name](long_raw(), path)
    out = load_chains(path)
    pdt.assert_frame_equal(out, long_expected())
    assert isinstance(out.index, pd.RangeIndex)
    assert str(out["quote_date"].dtype) == "datetime64[ns]"
    assert str(out["expiration"].dtype) == "datetime64[ns]"
    assert str(out["underlying"].dtype) == "str"
    assert str(out["type"].dtype) == "str"
    for col in ("strike", "bid", "ask", "underlying_price", "iv"):
        assert out[col].dtype == np.float64, col


def test_long_explicit_layout_and_string_path(tmp_path: Path) -> None:
    path = write_csv(tmp_path, long_raw())
    pdt.assert_frame_equal(load_chains(str(path), layout="long"), long_expected())


def test_long_output_is_a_validated_contract_frame(tmp_path: Path) -> None:
    out = load_chains(write_csv(tmp_path, long_raw()))
    pdt.assert_frame_equal(validate("option_chains", out), out)


def test_long_columns_renaming(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "date": ["2024-03-01", "2024-03-01"],
            "root": ["IWM", "IWM"],
            "exp": ["2024-03-15", "2024-03-15"],
            "cp": ["P", "C"],
            "K": [200.0, 205.0],
            "b": [1.05, 0.9],
            "a": [1.1, 0.95],
            "spot": [203.25, 203.25],
            "note": ["x", "y"],  # not a contract column: dropped
        }
    )
    path = write_csv(tmp_path, raw)
    mapping = {
        "quote_date": "date",
        "underlying": "root",
        "expiration": "exp",
        "type": "cp",
        "strike": "K",
        "bid": "b",
        "ask": "a",
        "underlying_price": "spot",
    }
    out = load_chains(path, columns=mapping)
    assert list(out.columns) == CONTRACT_COLUMNS
    assert out["type"].tolist() == ["call", "put"]
    assert out["strike"].tolist() == [205.0, 200.0]
    assert out["bid"].tolist() == [0.9, 1.05]
    assert out["ask"].tolist() == [0.95, 1.1]
    assert out["underlying_price"].tolist() == [203.25, 203.25]
    assert out["underlying"].tolist() == ["IWM", "IWM"]
    assert out["quote_date"].tolist() == [pd.Timestamp("2024-03-01")] * 2
    assert out["expiration"].tolist() == [pd.Timestamp("2024-03-15")] * 2


def test_type_spellings_are_mapped(tmp_path: Path) -> None:
    spellings = ["C", "P", "Call", "Put", "call", "put", "CALL", "PUT", " c ", "p"]
    n = len(spellings)
    raw = pd.DataFrame(
        {
            "quote_date": ["2024-01-02"] * n,
            "underlying": ["SPY"] * n,
            "expiration": ["2024-01-19"] * n,
            "type": spellings,
            "strike": [float(100 + i) for i in range(n)],
            "bid": [1.0] * n,
            "ask": [1.1] * n,
            "underlying_price": [105.0] * n,
        }
    )
    out = load_chains(write_csv(tmp_path, raw))
    # sorted by type then strike: calls are strikes 100, 102, 104, 106, 108
    assert out["type"].tolist() == ["call"] * 5 + ["put"] * 5
    assert out["strike"].tolist() == [100.0, 102.0, 104.0, 106.0, 108.0] + [
        101.0,
        103.0,
        105.0,
        107.0,
        109.0,
    ]


def test_optional_columns_absent_stay_absent(tmp_path: Path) -> None:
    raw = long_raw().drop(columns="iv")
    out = load_chains(write_csv(tmp_path, raw))
    assert list(out.columns) == CONTRACT_COLUMNS


def test_optional_columns_present_are_kept(tmp_path: Path) -> None:
    raw = long_raw()
    raw["delta"] = [0.45, -0.35, 0.52, -0.40, 0.55]
    raw["volume"] = [10, 0, 7, 3, 1]
    raw["open_interest"] = [100, 50, 70, 30, 10]
    raw["vendor_id"] = ["a", "b", "c", "d", "e"]
    path = tmp_path / "chains.parquet"
    raw.to_parquet(path, index=False)
    out = load_chains(path)
    assert list(out.columns) == [*CONTRACT_COLUMNS, "iv", "delta", "volume", "open_interest"]
    # sorted order is QQQ put, SPY 01-02 call 01-19, SPY 01-02 call 02-16, SPY put, SPY 01-03
    assert out["delta"].tolist() == [-0.40, 0.52, 0.55, -0.35, 0.45]
    assert out["volume"].tolist() == [3.0, 7.0, 1.0, 0.0, 10.0]
    assert out["open_interest"].tolist() == [30.0, 70.0, 10.0, 50.0, 100.0]
    assert out["volume"].dtype == np.float64


# --------------------------------------------------------------------------------------------
# ORATS layout
# --------------------------------------------------------------------------------------------


def orats_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ["SPY", "SPY"],
            "tradeDate": ["2024-01-02", "2024-01-02"],
            "expirDate": ["2024-01-19", "2024-01-19"],
            "dte": [17, 17],
            "strike": [470.0, 480.0],
            "stockPrice": [472.65, 472.65],
            "callBidPrice": [7.1, 2.05],
            "callAskPrice": [7.2, 2.1],
            "putBidPrice": [3.3, 8.4],
            "putAskPrice": [3.4, 8.6],
            "callMidIv": [0.14, 0.0],  # 0 = no IV
            "putMidIv": [0.16, 0.155],
            "delta": [0.62, 0.31],
            "callVolume": [100, 50],
            "putVolume": [20, 0],
            "callOpenInterest": [1000, 500],
            "putOpenInterest": [300, 400],
        }
    )


@pytest.mark.parametrize("name", ["orats.csv", "orats.parquet", "orats.json"])
@pytest.mark.parametrize("layout", ["auto", "orats"])
def test_orats_wide_rows_become_calls_and_puts(tmp_path: Path, name: str, layout: str) -> None:
    path = tmp_path / name
    WRITERS["chains" + path.suffix](orats_raw(), path)
    out = load_chains(path, layout=layout)
    expected = pd.DataFrame(
        {
            "quote_date": pd.to_datetime(["2024-01-02"] * 4).astype("datetime64[ns]"),
            "underlying": pd.Series(["SPY"] * 4, dtype="str"),
            "expiration": pd.to_datetime(["2024-01-19"] * 4).astype("datetime64[ns]"),
            "type": pd.Series(["call", "call", "put", "put"], dtype="str"),
            "strike": [470.0, 480.0, 470.0, 480.0],
            "bid": [7.1, 2.05, 3.3, 8.4],
            "ask": [7.2, 2.1, 3.4, 8.6],
            "underlying_price": [472.65] * 4,
            "iv": [0.14, np.nan, 0.16, 0.155],
            "delta": [0.62, 0.31, 0.62 - 1, 0.31 - 1],
            "volume": [100.0, 50.0, 20.0, 0.0],
            "open_interest": [1000.0, 500.0, 300.0, 400.0],
        }
    )
    pdt.assert_frame_equal(out, expected)
    assert out["delta"].tolist()[2:] == pytest.approx([-0.38, -0.69])


def test_orats_without_optional_columns(tmp_path: Path) -> None:
    raw = orats_raw()[
        [
            "ticker",
            "tradeDate",
            "expirDate",
            "strike",
            "stockPrice",
            "callBidPrice",
            "callAskPrice",
            "putBidPrice",
            "putAskPrice",
        ]
    ]
    out = load_chains(write_csv(tmp_path, raw))
    assert list(out.columns) == CONTRACT_COLUMNS
    assert len(out) == 4


def test_detect_layout() -> None:
    assert detect_layout(list(orats_raw().columns)) == "orats"
    assert detect_layout(list(cboe_raw().columns)) == "cboe"
    assert detect_layout(list(long_raw().columns)) == "long"
    # one column short of ORATS / Cboe: still recognised, so the missing column is reported
    assert detect_layout([c for c in orats_raw().columns if c != "putAskPrice"]) == "orats"
    assert detect_layout([c for c in orats_raw().columns if c != "tradeDate"]) == "orats"
    assert detect_layout([c for c in cboe_raw().columns if c != "option_type"]) == "cboe"
    # two distinctive columns are not enough
    assert detect_layout(["callBidPrice", "putAskPrice", "strike"]) == "long"


def test_orats_missing_identifying_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, orats_raw().drop(columns="tradeDate"))
    for layout in ("orats", "auto"):
        (p,) = chain_error(path, layout=layout).problems
        assert (p.check, p.column) == ("missing column", "tradeDate")
        assert "orats" in p.detail


@pytest.mark.parametrize("column", ["callAskPrice", "putBidPrice", "stockPrice"])
def test_orats_missing_price_column_is_named(tmp_path: Path, column: str) -> None:
    path = write_csv(tmp_path, orats_raw().drop(columns=column))
    err = chain_error(path)  # still detected as ORATS
    (p,) = err.problems
    assert (p.check, p.column) == ("missing column", column)
    assert column in str(err)


# --------------------------------------------------------------------------------------------
# Cboe layout
# --------------------------------------------------------------------------------------------


def cboe_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "underlying_symbol": ["^SPX", "^SPX", "^SPX"],
            "quote_date": ["2024-01-02"] * 3,
            "root": ["SPXW"] * 3,
            "expiration": ["2024-01-19", "2024-01-19", "2024-01-19"],
            "strike": [4700.0, 4700.0, 4800.0],
            "option_type": ["P", "C", "C"],
            "bid_1545": [45.2, 80.1, 20.3],
            "ask_1545": [45.8, 80.9, 20.7],
            "active_underlying_price_1545": [4742.5, 4742.5, 4742.5],
            "implied_volatility_1545": [0.0, 0.1234, 0.118],
            "delta_1545": [-0.39, 0.61, 0.27],
            "bid_eod": [46.0, 79.5, 19.9],
            "ask_eod": [46.6, 80.3, 20.1],
            "underlying_bid_eod": [4740.0, 4740.0, 4740.0],
            "underlying_ask_eod": [4741.0, 4741.0, 4741.0],
            "trade_volume": [0, 12, 3],
            "open_interest": [7000, 5000, 800],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("layout", ["auto", "cboe"])
def test_cboe_1545_snapshot(tmp_path: Path, suffix: str, layout: str) -> None:
    path = tmp_path / f"cboe{suffix}"
    WRITERS["chains" + suffix](cboe_raw(), path)
    out = load_chains(path, layout=layout)
    expected = pd.DataFrame(
        {
            "quote_date": pd.to_datetime(["2024-01-02"] * 3).astype("datetime64[ns]"),
            "underlying": pd.Series(["^SPX"] * 3, dtype="str"),
            "expiration": pd.to_datetime(["2024-01-19"] * 3).astype("datetime64[ns]"),
            "type": pd.Series(["call", "call", "put"], dtype="str"),
            "strike": [4700.0, 4800.0, 4700.0],
            "bid": [80.1, 20.3, 45.2],
            "ask": [80.9, 20.7, 45.8],
            "underlying_price": [4742.5] * 3,
            "iv": [0.1234, 0.118, np.nan],  # implied_volatility_1545 == 0 -> null
            "delta": [0.61, 0.27, -0.39],
            "volume": [12.0, 3.0, 0.0],
            "open_interest": [5000.0, 800.0, 7000.0],
        }
    )
    pdt.assert_frame_equal(out, expected)


def test_cboe_eod_snapshot(tmp_path: Path) -> None:
    path = write_csv(tmp_path, cboe_raw(), "cboe.csv")
    out = load_chains(path, snapshot="eod")
    assert list(out.columns) == [*CONTRACT_COLUMNS, "volume", "open_interest"]  # no iv, delta
    assert out["type"].tolist() == ["call", "call", "put"]
    assert out["strike"].tolist() == [4700.0, 4800.0, 4700.0]
    assert out["bid"].tolist() == [79.5, 19.9, 46.0]
    assert out["ask"].tolist() == [80.3, 20.1, 46.6]
    assert out["underlying_price"].tolist() == [4740.5] * 3  # (4740 + 4741) / 2


def test_cboe_missing_identifying_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, cboe_raw().drop(columns="underlying_symbol"), "cboe.csv")
    (p,) = chain_error(path, layout="cboe").problems
    assert (p.check, p.column) == ("missing column", "underlying_symbol")


# --------------------------------------------------------------------------------------------
# Contract rules (each on an otherwise good long file)
# --------------------------------------------------------------------------------------------


def good_rows() -> pd.DataFrame:
    """Four good rows, already in sorted order (rows 1-4 of the file are rows 1-4 checked)."""
    return pd.DataFrame(
        {
            "quote_date": ["2024-01-02", "2024-01-02", "2024-01-02", "2024-01-03"],
            "underlying": ["SPY", "SPY", "SPY", "SPY"],
            "expiration": ["2024-01-19", "2024-01-19", "2024-01-19", "2024-01-19"],
            "type": ["call", "call", "put", "call"],
            "strike": [470.0, 475.0, 470.0, 470.0],
            "bid": [2.5, 1.0, 1.8, 2.7],
            "ask": [2.6, 1.1, 1.9, 2.8],
            "underlying_price": [471.0, 471.0, 471.0, 472.0],
        }
    )


def test_good_rows_load(tmp_path: Path) -> None:
    out = load_chains(write_csv(tmp_path, good_rows()))
    assert out["strike"].tolist() == [470.0, 475.0, 470.0, 470.0]
    assert out["type"].tolist() == ["call", "call", "put", "call"]


def test_crossed_quote(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[1, ["bid", "ask"]] = [1.2, 1.1]
    raw.loc[3, ["bid", "ask"]] = [3.0, 2.8]
    path = write_csv(tmp_path, raw)
    err = chain_error(path)
    p = only(err, "crossed quote", "bid, ask")
    assert (p.n_rows, p.rows) == (2, (2, 4))
    assert p.examples == ("bid 1.2 > ask 1.1", "bid 3.0 > ask 2.8")
    assert "crossed quote in 2 rows" in str(err)
    assert "bid 1.2 > ask 1.1" in str(err)
    assert "'bid'" in str(err) and "'ask'" in str(err)


def test_negative_bid(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[2, "bid"] = -0.05
    err = chain_error(write_csv(tmp_path, raw))
    p = only(err, "out of range", "bid")
    assert (p.n_rows, p.rows, p.examples) == (1, (3,), ("-0.05",))
    assert "column 'bid': out of range in 1 row" in str(err)


def test_zero_bid_and_ask_is_allowed(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[1, ["bid", "ask"]] = [0.0, 0.0]
    out = load_chains(write_csv(tmp_path, raw))
    assert out.loc[1, ["bid", "ask"]].tolist() == [0.0, 0.0]


def test_duplicate_key(tmp_path: Path) -> None:
    raw = pd.concat([good_rows(), good_rows().iloc[[0]]], ignore_index=True)
    raw.loc[4, ["bid", "ask"]] = [2.4, 2.7]  # same contract, other quote
    err = chain_error(write_csv(tmp_path, raw))
    p = only(err, "duplicate key", "quote_date, underlying, expiration, type, strike")
    assert (p.n_rows, p.rows) == (2, (1, 5))
    assert p.examples == ("2024-01-02|SPY|2024-01-19|call|470.0",) * 2
    assert "duplicate key in 2 rows" in str(err)


def test_same_strike_call_and_put_is_not_a_duplicate(tmp_path: Path) -> None:
    # rows 1 and 3 share date, underlying, expiration and strike; only the type differs
    out = load_chains(write_csv(tmp_path, good_rows()))
    assert len(out) == 4


def test_expiration_before_quote_date(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[3, "expiration"] = "2024-01-02"  # quoted 2024-01-03
    err = chain_error(write_csv(tmp_path, raw))
    p = only(err, "expiration before quote date", "quote_date, expiration")
    assert (p.n_rows, p.rows) == (1, (4,))
    # "expiration 2024-01-02 < quote_date 2024-01-03" is cut to 40 characters by short_value
    assert p.examples == ("expiration 2024-01-02 < quote_date 20...",)
    assert "expiration before quote date in 1 row" in str(err)


def test_expiring_on_the_quote_date_is_allowed(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[3, "expiration"] = "2024-01-03"
    out = load_chains(write_csv(tmp_path, raw))
    assert out.loc[3, "expiration"] == pd.Timestamp("2024-01-03")


def test_missing_underlying_price(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[[0, 2], "underlying_price"] = np.nan
    err = chain_error(write_csv(tmp_path, raw))
    p = only(err, "missing value", "underlying_price")
    assert (p.n_rows, p.rows) == (2, (1, 3))
    assert "column 'underlying_price': missing value in 2 rows" in str(err)


def test_bad_type_value(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[1, "type"] = "X"
    err = chain_error(write_csv(tmp_path, raw))
    p = only(err, "invalid value", "type")
    assert (p.n_rows, p.rows, p.examples) == (1, (2,), ("X",))
    assert "column 'type': invalid value in 1 row" in str(err)


@pytest.mark.parametrize("fmt", ["chains.csv", "chains.parquet", "chains.json"])
def test_unparseable_date_is_reported(tmp_path: Path, fmt: str) -> None:
    raw = good_rows()
    raw.loc[3, "quote_date"] = "2024-13-45"
    path = tmp_path / fmt
    WRITERS[fmt](raw, path)
    err = chain_error(path)
    p = only(err, "wrong type", "quote_date")
    assert (p.n_rows, p.rows, p.examples) == (1, (4,), ("2024-13-45",))
    assert "column 'quote_date': wrong type in 1 row" in str(err)


def test_unparseable_date_survives_the_filters(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[1, "quote_date"] = "not a date"
    raw.loc[2, "expiration"] = "someday"
    path = write_csv(tmp_path, raw)
    err = chain_error(path, start="2024-01-02", end="2024-01-02", max_dte=30, underlyings=["SPY"])
    # rows 1-3 pass the filters (row 4 is quoted 2024-01-03 and dropped)
    assert len(err.problems) == 2, str(err)
    q = err.find("wrong type", "quote_date")[0]
    e = err.find("wrong type", "expiration")[0]
    assert (q.n_rows, q.examples) == (1, ("not a date",))
    assert (e.n_rows, e.examples) == (1, ("someday",))
    assert "column 'quote_date': wrong type in 1 row" in str(err)


def test_unparseable_strike_survives_the_moneyness_filter(tmp_path: Path) -> None:
    raw = good_rows()
    raw["strike"] = raw["strike"].astype("object")
    raw.loc[1, "strike"] = "abc"
    err = chain_error(write_csv(tmp_path, raw), moneyness=(0.9, 1.1))
    p = only(err, "wrong type", "strike")
    assert (p.n_rows, p.examples) == (1, ("abc",))


def test_several_problems_in_one_error(tmp_path: Path) -> None:
    raw = good_rows()
    raw.loc[0, "type"] = "X"
    raw.loc[1, ["bid", "ask"]] = [1.2, 1.1]
    raw.loc[3, "underlying_price"] = np.nan
    err = chain_error(write_csv(tmp_path, raw))
    assert len(err.problems) == 3, str(err)
    assert err.find("invalid value", "type")[0].n_rows == 1
    assert err.find("crossed quote", "bid, ask")[0].n_rows == 1
    assert err.find("missing value", "underlying_price")[0].n_rows == 1
    assert str(err).startswith(f"{tmp_path / 'chains.csv'}: does not satisfy the 'option_chains'")


# --------------------------------------------------------------------------------------------
# Filters (run inside DuckDB)
# --------------------------------------------------------------------------------------------


def filter_rows() -> pd.DataFrame:
    """Eight rows with distinct strikes (the strike identifies a row in the assertions).

    strike  underlying  quote_date  expiration  type  dte  strike/underlying_price
    470     SPY         2024-01-02  2024-01-05  call    3  470/470 = 1.0
    450     SPY         2024-01-02  2024-01-19  put    17  450/470 = 0.957
    500     SPY         2024-01-03  2024-02-02  call   30  500/475 = 1.0526
    475     SPY         2024-01-04  2024-01-04  put     0  475/475 = 1.0
    420     QQQ         2024-01-04  2024-01-31  call   27  420/400 = 1.05
    380     QQQ         2024-01-05  2024-02-05  put    31  380/400 = 0.95
    210     IWM         2024-01-05  2024-01-12  call    7  210/200 = 1.05
    150     IWM         2024-01-08  2024-03-15  put    67  150/200 = 0.75
    """
    return pd.DataFrame(
        {
            "quote_date": [
                "2024-01-02",
                "2024-01-02",
                "2024-01-03",
                "2024-01-04",
                "2024-01-04",
                "2024-01-05",
                "2024-01-05",
                "2024-01-08",
            ],
            "underlying": ["SPY", "SPY", "SPY", "SPY", "QQQ", "QQQ", "IWM", "IWM"],
            "expiration": [
                "2024-01-05",
                "2024-01-19",
                "2024-02-02",
                "2024-01-04",
                "2024-01-31",
                "2024-02-05",
                "2024-01-12",
                "2024-03-15",
            ],
            "type": ["call", "put", "call", "put", "call", "put", "call", "put"],
            "strike": [470.0, 450.0, 500.0, 475.0, 420.0, 380.0, 210.0, 150.0],
            "bid": [1.0] * 8,
            "ask": [1.2] * 8,
            "underlying_price": [470.0, 470.0, 475.0, 475.0, 400.0, 400.0, 200.0, 200.0],
        }
    )


# output order: underlying, quote_date, type, expiration, strike
ALL_SORTED = [210.0, 150.0, 420.0, 380.0, 470.0, 450.0, 500.0, 475.0]

FILTER_CASES: dict[str, tuple[dict[str, object], list[float]]] = {
    "none": ({}, ALL_SORTED),
    "underlyings": ({"underlyings": ["SPY", "IWM"]}, [210.0, 150.0, 470.0, 450.0, 500.0, 475.0]),
    "one underlying": ({"underlyings": ["QQQ"]}, [420.0, 380.0]),
    "puts": ({"option_type": "put"}, [150.0, 380.0, 450.0, 475.0]),
    "calls": ({"option_type": "call"}, [210.0, 420.0, 470.0, 500.0]),
    "start end inclusive": (
        {"start": "2024-01-03", "end": "2024-01-05"},
        [210.0, 420.0, 380.0, 500.0, 475.0],
    ),
    "start timestamp": ({"start": pd.Timestamp("2024-01-05")}, [210.0, 150.0, 380.0]),
    "end only": ({"end": "2024-01-02"}, [470.0, 450.0]),
    "max_dte": ({"max_dte": 27}, [210.0, 420.0, 470.0, 450.0, 475.0]),
    "max_dte 0": ({"max_dte": 0}, [475.0]),
    "moneyness inclusive": (
        {"moneyness": (0.95, 1.05)},
        [210.0, 420.0, 380.0, 470.0, 450.0, 475.0],
    ),
    "combined": (
        {
            "underlyings": ["SPY", "QQQ"],
            "start": "2024-01-03",
            "max_dte": 30,
            "moneyness": (0.95, 1.05),
        },
        [420.0, 475.0],
    ),
}


@pytest.mark.parametrize("fmt", ["chains.csv", "native.parquet", "native.duckdb"])
@pytest.mark.parametrize("case", sorted(FILTER_CASES))
def test_filters(tmp_path: Path, fmt: str, case: str) -> None:
    path = tmp_path / fmt
    WRITERS[fmt](filter_rows(), path)
    kwargs, strikes = FILTER_CASES[case]
    out = load_chains(path, **kwargs)
    assert out["strike"].tolist() == strikes
    assert isinstance(out.index, pd.RangeIndex)


def test_filters_apply_to_orats_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, orats_raw(), "orats.csv")
    out = load_chains(path, option_type="put", moneyness=(1.0, 1.1))
    # 470 / 472.65 = 0.9944 is outside, 480 / 472.65 = 1.0156 inside
    assert out["type"].tolist() == ["put"]
    assert out["strike"].tolist() == [480.0]
    assert out["delta"].tolist() == pytest.approx([0.31 - 1])


def test_filters_apply_to_cboe_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, cboe_raw(), "cboe.csv")
    out = load_chains(path, option_type="call", underlyings=["^SPX"], max_dte=17)
    assert out["strike"].tolist() == [4700.0, 4800.0]
    assert out["type"].tolist() == ["call", "call"]


# --------------------------------------------------------------------------------------------
# File-level errors
# --------------------------------------------------------------------------------------------


def test_unknown_layout(tmp_path: Path) -> None:
    path = write_csv(tmp_path, long_raw())
    p = file_problem(chain_error(path, layout="wide"))
    assert (p.check, p.examples) == ("unknown layout", ("'wide'",))
    assert p.detail == "layouts: auto, long, orats, cboe"


def test_unknown_snapshot(tmp_path: Path) -> None:
    path = write_csv(tmp_path, cboe_raw(), "cboe.csv")
    p = file_problem(chain_error(path, snapshot="close"))
    assert (p.check, p.examples) == ("unknown snapshot", ("'close'",))
    assert "1545" in p.detail and "eod" in p.detail


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    p = file_problem(chain_error(path))
    assert (p.check, p.detail) == ("unreadable file", "no such file")
    assert not path.exists()


@pytest.mark.parametrize(
    "name, content",
    [
        ("garbled.parquet", b"PAR1 this is not really parquet PAR1"),
        ("truncated.parquet", None),
    ],
)
def test_unreadable_parquet(tmp_path: Path, name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is None:
        long_raw().to_parquet(path, index=False)
        path.write_bytes(path.read_bytes()[:-20])
    else:
        path.write_bytes(content)
    p = file_problem(chain_error(path))
    assert p.check == "unreadable file"
    assert p.detail  # DuckDB's reason, one line
    assert "\n" not in p.detail


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "chains.xlsx"
    path.write_bytes(b"not a table")
    with pytest.raises(ContractError) as info:
        load_chains(path)
    assert str(path) in str(info.value)
    assert info.value.find("unknown extension")


def test_duckdb_two_tables_without_table(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    write_duckdb(path, {"spy": long_raw(), "qqq": long_raw()}, native_dates=False)
    p = file_problem(chain_error(path))
    assert p.check == "ambiguous table"
    assert sorted(p.examples) == ["qqq", "spy"]
    assert "2 tables" in p.detail and "table=" in p.detail


def test_duckdb_table_selection(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    other = long_raw().iloc[[0]]
    write_duckdb(path, {"spy": long_raw(), "qqq": other}, native_dates=True)
    pdt.assert_frame_equal(load_chains(path, table="spy"), long_expected())
    assert load_chains(path, table="qqq")["strike"].tolist() == [470.0]


def test_duckdb_missing_table(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    write_duckdb(path, {"spy": long_raw(), "qqq": long_raw()}, native_dates=False)
    p = file_problem(chain_error(path, table="iwm"))
    assert (p.check, p.examples) == ("missing table", ("'iwm'",))
    assert p.detail == "tables: qqq, spy" or p.detail == "tables: spy, qqq"


def test_sqlite_table_selection(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    write_sqlite(path, {"spy": long_raw(), "other": pd.DataFrame({"x": [1]})})
    pdt.assert_frame_equal(load_chains(path, table="spy"), long_expected())


def test_duckdb_file_is_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "lab.duckdb"
    write_duckdb(path, {"chains": long_raw()}, native_dates=True)
    before = path.read_bytes()
    load_chains(path, underlyings=["SPY"])
    assert path.read_bytes() == before


# --------------------------------------------------------------------------------------------
# A large file: the filters keep a small fraction (push-down path)
# --------------------------------------------------------------------------------------------


def test_large_parquet_with_filters(tmp_path: Path) -> None:
    # 3 underlyings x 50 daily quote dates x 10 expiries (7..70 days) x 2 types x 100 strikes
    underlyings = np.array(["SPY", "QQQ", "IWM"])
    days = np.arange(50)
    dtes = np.arange(1, 11) * 7
    types = np.array(["C", "P"])
    strikes = np.arange(50.0, 150.0)
    grid = np.meshgrid(np.arange(3), days, dtes, np.arange(2), strikes, indexing="ij", sparse=False)
    u, d, t, k, s = (g.ravel() for g in grid)
    n = u.size
    assert n == 300_000
    quote = np.datetime64("2024-01-01") + d.astype("timedelta64[D]")
    rng = np.random.default_rng(7)
    bid = np.round(rng.uniform(0.05, 20.0, n), 2)
    frame = pd.DataFrame(
        {
            "quote_date": quote.astype("datetime64[ns]"),
            "underlying": underlyings[u],
            "expiration": (quote + t.astype("timedelta64[D]")).astype("datetime64[ns]"),
            "type": types[k],
            "strike": s,
            "bid": bid,
            "ask": bid + 0.1,
            "underlying_price": np.full(n, 100.0),
            "iv": np.round(rng.uniform(0.1, 0.5, n), 4),
        }
    )
    path = tmp_path / "big.parquet"
    frame.to_parquet(path, index=False)
    del frame

    out = load_chains(
        path,
        underlyings=["QQQ"],
        option_type="put",
        start="2024-01-11",
        end="2024-01-20",
        max_dte=28,
        moneyness=(0.95, 1.05),
    )
    # 1 underlying x 10 days x 4 expiries (7, 14, 21, 28) x 1 type x 11 strikes (95..105)
    assert len(out) == 440
    assert set(out["underlying"]) == {"QQQ"}
    assert set(out["type"]) == {"put"}
    assert out["quote_date"].min() == pd.Timestamp("2024-01-11")
    assert out["quote_date"].max() == pd.Timestamp("2024-01-20")
    assert sorted(set(out["strike"])) == [float(x) for x in range(95, 106)]
    dte = (out["expiration"] - out["quote_date"]).dt.days
    assert sorted(set(dte)) == [7, 14, 21, 28]
    first = out.iloc[0]
    assert (first["quote_date"], first["expiration"], first["strike"]) == (
        pd.Timestamp("2024-01-11"),
        pd.Timestamp("2024-01-18"),
        95.0,
    )
    assert (out["ask"] - out["bid"]).round(10).eq(0.1).all()


# --------------------------------------------------------------------------------------------
# Defects found in review, fixed: empty selections, US dates in CSV, non-ISO date filters
# --------------------------------------------------------------------------------------------


def test_filters_keeping_no_row_give_an_empty_frame(tmp_path: Path) -> None:
    path = write_csv(tmp_path, filter_rows())
    out = load_chains(path, underlyings=["DIA"])
    assert len(out) == 0
    assert list(out.columns)[:8] == CONTRACT_COLUMNS


def test_us_dates_in_csv_are_month_first(tmp_path: Path) -> None:
    path = tmp_path / "us.csv"
    path.write_text(
        "quote_date,underlying,expiration,type,strike,bid,ask,underlying_price\n"
        "01/03/2024,SPY,06/21/2024,C,470,1.5,1.6,468\n"
        "01/04/2024,SPY,06/21/2024,C,470,1.5,1.6,468\n"
    )
    out = load_chains(path)
    assert out["quote_date"].tolist() == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-04")]


def test_date_filter_applies_to_non_iso_text_dates(tmp_path: Path) -> None:
    raw = good_rows()
    raw["quote_date"] = ["01/02/2024", "01/02/2024", "01/02/2024", "01/03/2024"]
    path = tmp_path / "chains.json"
    raw.to_json(path, orient="records")
    out = load_chains(path, start="2024-01-03")
    assert out["quote_date"].tolist() == [pd.Timestamp("2024-01-03")]


def test_option_type_filter_accepts_c_p_and_keeps_bad_rows_for_the_check(tmp_path: Path) -> None:
    path = write_csv(tmp_path, filter_rows())
    calls = load_chains(path, option_type="call")
    assert set(calls["type"]) == {"call"} and len(calls) > 0
    for spelling in ("C", "Call", " c "):
        pd.testing.assert_frame_equal(load_chains(path, option_type=spelling), calls)
    raw = filter_rows()
    raw.loc[0, "type"] = None
    bad = write_csv(tmp_path, raw, "bad.csv")
    err = chain_error(bad, option_type="put")  # the row without a type is reported, not dropped
    assert err.find("null in key", "type") or err.find("missing value", "type")
    with pytest.raises(ContractError, match="unknown option type"):
        load_chains(path, option_type="straddle")


def test_table_only_for_database_files(tmp_path: Path) -> None:
    path = write_csv(tmp_path, good_rows())
    p = file_problem(chain_error(path, table="chains"))
    assert p.check == "unknown table"


def test_duckdb_table_in_another_schema(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "vendor.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA results")
    con.register("frame", good_rows())
    con.execute("CREATE TABLE results.chains AS SELECT * FROM frame")
    con.close()
    out = load_chains(path)  # the only table
    assert len(out) == 4
    pd.testing.assert_frame_equal(load_chains(path, table="results.chains"), out)
    p = file_problem(chain_error(path, table="chains"))
    assert p.check == "missing table" and "results.chains" in p.detail


# --------------------------------------------------------------------------------------------
# Large selections: fetched and checked a few quote dates at a time


def _many_days(n_days: int) -> pd.DataFrame:
    days = pd.bdate_range("2024-01-02", periods=n_days)
    rows = [
        {
            "quote_date": d.strftime("%Y-%m-%d"),
            "underlying": "SPY",
            "expiration": "2024-12-20",
            "type": kind,
            "strike": k,
            "bid": 1.0,
            "ask": 1.2,
            "underlying_price": 470.0,
        }
        for d in days
        for kind in ("call", "put")
        for k in (460.0, 470.0, 480.0)
    ]
    return pd.DataFrame(rows)


def test_a_large_selection_is_checked_in_chunks_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import research.data.chains as chains_module

    path = tmp_path / "many.parquet"
    _many_days(30).to_parquet(path, index=False)
    whole = load_chains(path)
    seen: list[int] = []
    real = chains_module.validate

    def counting(kind: str, frame: pd.DataFrame, **kw: object) -> pd.DataFrame:
        seen.append(len(frame))
        return real(kind, frame, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(chains_module, "CHUNK_ROWS", 40)  # 6 rows a day: ~7 days a chunk
    monkeypatch.setattr(chains_module, "validate", counting)
    chunked = load_chains(path)
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(seen) == 5 and sum(seen) == len(whole) == 180 and max(seen) <= 42


def test_a_bad_row_in_a_later_chunk_is_reported_as_in_one_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import research.data.chains as chains_module

    raw = _many_days(30)
    raw.loc[150, ["bid", "ask"]] = [2.0, 1.0]  # crossed, in the 26th quote date
    path = tmp_path / "many.parquet"
    raw.to_parquet(path, index=False)
    one_piece = chain_error(path)
    monkeypatch.setattr(chains_module, "CHUNK_ROWS", 40)
    chunked = chain_error(path)
    assert str(chunked) == str(one_piece)
    assert only(chunked, "crossed quote").rows == (151,)
