"""Option chains: end-of-day quotes in the ``option_chains`` contract, from vendor files of any
size.

Layouts
-------
``long``
    One row per contract with the contract's column names (``quote_date, underlying,
    expiration, type, strike, bid, ask, underlying_price``, optional ``iv, delta, volume,
    open_interest``); ``columns={"quote_date": "date", ...}`` renames a file's own names.
``orats``
    ORATS' wide *strikes* rows (Data API ``/strikes`` or its history files): one row per
    (``tradeDate, ticker, expirDate, strike``) with ``callBidPrice, callAskPrice,
    putBidPrice, putAskPrice, stockPrice`` and optional ``callMidIv, putMidIv, delta`` (the
    call's; the put's is taken as ``delta - 1``), ``callVolume, putVolume, callOpenInterest,
    putOpenInterest``. Each row becomes a call and a put.
``cboe``
    Cboe DataShop's *Option EOD Summary* rows (``underlying_symbol, quote_date, expiration,
    strike, option_type``): the 15:45 snapshot by default (``bid_1545, ask_1545,
    active_underlying_price_1545, implied_volatility_1545`` (0 = none), ``delta_1545``), or
    the closing quotes with ``snapshot="eod"`` (``bid_eod, ask_eod``, underlying mid of
    ``underlying_bid_eod / underlying_ask_eod``; no IV or delta).

``auto`` picks the layout from the column names. Types ``C``/``P``/``Call``/``Put`` are mapped
to ``call``/``put``.

Large files
-----------
Every file is read through DuckDB (Parquet and CSV are scanned in place; a ``.duckdb`` file is
attached read-only; other formats go through ``loaders.read_table``). The layout's ``SELECT``
and the filters — underlyings, option type, quote dates, days to expiry, strikes within a
moneyness band — run inside DuckDB, so only the rows a backtest needs reach pandas and the
contract check: a year of daily chains (millions of rows) loads in seconds within a few hundred
MB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from research.data.contracts import validate
from research.data.errors import ContractError, Problem
from research.data.loaders import _format_of, read_table

__all__ = ["LAYOUTS", "detect_layout", "load_chains"]

LAYOUTS: tuple[str, ...] = ("long", "orats", "cboe")
REQUIRED: tuple[str, ...] = (
    "quote_date",
    "underlying",
    "expiration",
    "type",
    "strike",
    "bid",
    "ask",
    "underlying_price",
)
OPTIONAL: tuple[str, ...] = ("iv", "delta", "volume", "open_interest")
_ORATS_KEYS = (
    "tradeDate",
    "ticker",
    "expirDate",
    "strike",
    "stockPrice",
    "callBidPrice",
    "callAskPrice",
    "putBidPrice",
    "putAskPrice",
)
_ORATS_MARKS = ("callBidPrice", "callAskPrice", "putBidPrice", "putAskPrice", "expirDate")
_CBOE_KEYS = ("underlying_symbol", "quote_date", "expiration", "strike", "option_type")
_CBOE_SNAPSHOT = {
    "1545": ("bid_1545", "ask_1545", "active_underlying_price_1545"),
    "eod": ("bid_eod", "ask_eod", "underlying_bid_eod", "underlying_ask_eod"),
}
_CBOE_MARKS = ("underlying_symbol", "option_type", "bid_1545", "ask_1545", "bid_eod", "ask_eod")


def _fail(path: str, check: str, detail: str, *examples: str) -> ContractError:
    return ContractError(
        path, "option_chains", [Problem(None, check, examples=examples, detail=detail)]
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def detect_layout(columns: Sequence[str]) -> str:
    """``orats`` / ``cboe`` when at least three of their distinctive columns are present
    (a file missing one of their other columns is then reported as such), else ``long``."""
    have = set(columns)
    if len(have & set(_ORATS_MARKS)) >= 3:
        return "orats"
    if len(have & set(_CBOE_MARKS)) >= 3:
        return "cboe"
    return "long"


def _num(expr: str) -> str:
    """A column as a number (text columns of CSV files included; unparseable text is null)."""
    return f"TRY_CAST({expr} AS DOUBLE)"


def _type_sql(expr: str) -> str:
    return (
        f"CASE WHEN lower(trim(CAST({expr} AS VARCHAR))) IN ('c', 'call') THEN 'call' "
        f"WHEN lower(trim(CAST({expr} AS VARCHAR))) IN ('p', 'put') THEN 'put' "
        f"ELSE CAST({expr} AS VARCHAR) END"
    )


def _long_sql(have: set[str], columns: Mapping[str, str]) -> str:
    parts = []
    for name in (*REQUIRED, *OPTIONAL):
        source = columns.get(name, name)
        if source not in have:
            continue  # required ones were reported before (``_missing``)
        expr = _q(source)
        parts.append(f"{_type_sql(expr)} AS type" if name == "type" else f"{expr} AS {name}")
    return "SELECT " + ", ".join(parts) + " FROM src"


def _orats_sql(have: set[str]) -> str:
    def side(kind: str) -> str:
        cols = [
            '"tradeDate" AS quote_date',
            '"ticker" AS underlying',
            '"expirDate" AS expiration',
            f"'{kind}' AS type",
            '"strike" AS strike',
            f'"{kind}BidPrice" AS bid',
            f'"{kind}AskPrice" AS ask',
            '"stockPrice" AS underlying_price',
        ]
        if f"{kind}MidIv" in have:
            cols.append(f"NULLIF({_num(_q(kind + 'MidIv'))}, 0) AS iv")
        if "delta" in have:
            cols.append(
                '"delta" AS delta' if kind == "call" else f"{_num(_q('delta'))} - 1 AS delta"
            )
        if f"{kind}Volume" in have:
            cols.append(f'"{kind}Volume" AS volume')
        if f"{kind}OpenInterest" in have:
            cols.append(f'"{kind}OpenInterest" AS open_interest')
        return "SELECT " + ", ".join(cols) + " FROM src"

    return side("call") + " UNION ALL " + side("put")


def _cboe_sql(have: set[str], snapshot: str) -> str:
    cols = [
        '"quote_date" AS quote_date',
        '"underlying_symbol" AS underlying',
        '"expiration" AS expiration',
        f"{_type_sql(_q('option_type'))} AS type",
        '"strike" AS strike',
    ]
    if snapshot == "eod":
        cols += [
            '"bid_eod" AS bid',
            '"ask_eod" AS ask',
            f"({_num(_q('underlying_bid_eod'))} + {_num(_q('underlying_ask_eod'))}) / 2 "
            "AS underlying_price",
        ]
    else:
        cols += [
            '"bid_1545" AS bid',
            '"ask_1545" AS ask',
            '"active_underlying_price_1545" AS underlying_price',
        ]
        if "implied_volatility_1545" in have:
            cols.append(f"NULLIF({_num(_q('implied_volatility_1545'))}, 0) AS iv")
        if "delta_1545" in have:
            cols.append('"delta_1545" AS delta')
    if "trade_volume" in have:
        cols.append('"trade_volume" AS volume')
    if "open_interest" in have:
        cols.append('"open_interest" AS open_interest')
    return "SELECT " + ", ".join(cols) + " FROM src"


def _open(con: object, path: Path, table: str | None) -> None:
    """Create the view ``src`` over the file."""
    if path.is_dir():  # a Parquet dataset: every file below, hive partitions as columns
        glob = "'" + str(path / "**" / "*.parquet").replace("'", "''") + "'"
        con.execute(  # type: ignore[attr-defined]
            f"CREATE VIEW src AS SELECT * FROM read_parquet({glob}, hive_partitioning = true, "
            "union_by_name = true)"
        )
        return
    fmt = _format_of(path)
    literal = "'" + str(path).replace("'", "''") + "'"
    if table is not None and fmt not in ("duckdb", "sqlite"):
        raise _fail(str(path), "unknown table", "table= applies to database files", repr(table))
    if fmt == "parquet":
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet({literal})")  # type: ignore[attr-defined]
    elif fmt == "csv":
        # text columns: dates and numbers are parsed by the contract, as for every other file
        # (DuckDB's sniffer would read 01/03/2024 day-first)
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_csv({literal}, all_varchar=true)")  # type: ignore[attr-defined]
    elif fmt == "duckdb":
        con.execute(f"ATTACH {literal} AS chainsdb (READ_ONLY)")  # type: ignore[attr-defined]
        found = con.execute(  # type: ignore[attr-defined]
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = 'chainsdb' ORDER BY table_schema, table_name"
        ).fetchall()
        names = {(n if sch == "main" else f"{sch}.{n}"): (sch, n) for sch, n in found}
        if table is None:
            if len(names) != 1:
                raise _fail(
                    str(path),
                    "ambiguous table",
                    f"the file holds {len(names)} tables; name one with table=",
                    *list(names)[:5],
                )
            table = next(iter(names))
        elif table not in names:
            raise _fail(str(path), "missing table", "tables: " + ", ".join(names), repr(table))
        schema, name = names[table]
        con.execute(f"CREATE VIEW src AS SELECT * FROM chainsdb.{_q(schema)}.{_q(name)}")  # type: ignore[attr-defined]
    else:
        frame = read_table(path, table=table)
        con.register("src_frame", frame)  # type: ignore[attr-defined]
        con.execute("CREATE VIEW src AS SELECT * FROM src_frame")  # type: ignore[attr-defined]


CHUNK_ROWS = 3_000_000
"""Selections larger than this are fetched and checked a few quote dates at a time."""


def _fetch(con: Any, sql: str, params: list[object]) -> pd.DataFrame:
    """A query's rows through Arrow: a third of the memory and time of a DB-API ``.df()`` on
    tens of millions of rows (strings stay Arrow-backed, blocks freed as converted)."""
    result: Any = con.sql(sql, params=params).to_arrow_table()
    frame: pd.DataFrame = result.to_pandas(split_blocks=True, self_destruct=True)
    return frame


def _read_checked(con: Any, sql: str, params: list[object], source: str) -> list[pd.DataFrame]:
    """The selection, checked against the contract. Up to ``CHUNK_ROWS`` rows: fetched and
    checked at once. Above: kept in a DuckDB table and fetched and checked by ranges of quote
    dates of about ``CHUNK_ROWS`` rows (every contract rule is within a quote date: the key
    includes it), so the check's temporaries scale with a chunk, not the history. A chunk that
    breaks the contract sends the whole selection through the one-piece check, whose message
    numbers the rows as usual. Returns the checked parts, in order."""
    con.execute(f"CREATE TEMP TABLE sel AS {sql}", params)
    ((n,),) = con.execute("SELECT count(*) FROM sel").fetchall()
    whole = "SELECT * FROM sel"
    if n <= CHUNK_ROWS:
        return [validate("option_chains", _fetch(con, whole, []), source=source)]
    day = "TRY_CAST(quote_date AS DATE)"
    counts = con.execute(f"SELECT {day} AS d, count(*) FROM sel GROUP BY d ORDER BY d").fetchall()
    if any(d is None for d, _ in counts):  # unparseable dates: the one-piece check reports them
        return [validate("option_chains", _fetch(con, whole, []), source=source)]
    ranges, first, rows = [], counts[0][0], 0
    for i, (d, k) in enumerate(counts):
        rows += k
        if rows >= CHUNK_ROWS or i == len(counts) - 1:
            ranges.append((first, d))
            rows = 0
            if i + 1 < len(counts):
                first = counts[i + 1][0]
    parts = []
    try:
        for lo, hi in ranges:
            chunk = _fetch(con, f"SELECT * FROM sel WHERE {day} BETWEEN ? AND ?", [lo, hi])
            parts.append(validate("option_chains", chunk, source=source))
    except ContractError:
        parts.clear()
        return [validate("option_chains", _fetch(con, whole, []), source=source)]
    return parts


def load_chains(
    path: str | Path,
    *,
    layout: str = "auto",
    columns: Mapping[str, str] | None = None,
    table: str | None = None,
    snapshot: str = "1545",
    underlyings: Sequence[str] | None = None,
    option_type: str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    max_dte: int | None = None,
    moneyness: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Read an option-chain file into the ``option_chains`` contract.

    Parameters
    ----------
    path
        CSV (also ``.csv.gz``), Parquet, JSON/JSONL, SQLite or DuckDB file; or a folder of
        Parquet files (a dataset, e.g. one file per year, hive partitions such as
        ``year=2015/`` read as columns), read as one table.
    layout
        ``auto``, ``long``, ``orats`` or ``cboe`` (module docstring).
    columns
        For ``long``: contract column → the file's column, for names that differ.
    table
        Table of a database file.
    snapshot
        Cboe layout: ``1545`` (default) or ``eod``.
    underlyings, option_type, start, end
        Keep only these underlyings, ``call`` or ``put``, and quote dates in [start, end].
    max_dte
        Keep only expirations at most this many calendar days after the quote date.
    moneyness
        Keep only strikes with ``low <= strike / underlying_price <= high``.

    Returns
    -------
    pandas.DataFrame
        Validated ``option_chains`` rows sorted by underlying, quote date, type, expiration and
        strike.

    Raises
    ------
    ContractError
        Unreadable file, unknown layout or table, or rows that break the contract (crossed or
        negative quotes, duplicate keys, expirations before the quote date, missing underlying
        prices, ...), naming the file, the column and example rows. Row numbers count the rows
        the layout and filters selected (for ORATS: the calls, then the puts).
    """
    import duckdb

    from research.config import resolve_path

    path = resolve_path(path)
    source = str(path)
    if layout not in ("auto", *LAYOUTS):
        raise _fail(source, "unknown layout", "layouts: auto, " + ", ".join(LAYOUTS), repr(layout))
    if snapshot not in ("1545", "eod"):
        raise _fail(source, "unknown snapshot", "snapshots: 1545, eod", repr(snapshot))
    if path.is_dir():
        if not any(path.rglob("*.parquet")):
            raise _fail(source, "unreadable file", "a folder without Parquet files")
    elif not path.is_file():
        raise _fail(source, "unreadable file", "no such file")
    con = duckdb.connect()
    try:
        try:
            _open(con, path, table)
            have = [r[0] for r in con.execute("DESCRIBE src").fetchall()]
        except duckdb.Error as exc:
            raise _fail(source, "unreadable file", str(exc).splitlines()[0]) from exc
        chosen = detect_layout(have) if layout == "auto" else layout
        select = {
            "long": lambda: _long_sql(set(have), columns or {}),
            "orats": lambda: _orats_sql(set(have)),
            "cboe": lambda: _cboe_sql(set(have), snapshot),
        }[chosen]()
        _missing(source, chosen, have, columns or {}, snapshot)
        kind = None if option_type is None else _option_type(source, option_type)
        where, params = _filters(underlyings, kind, start, end, max_dte, moneyness)
        sql = f"SELECT * FROM ({select}) AS chain" + (f" WHERE {where}" if where else "")
        try:
            parts = _read_checked(con, sql, params, source)
        except duckdb.Error as exc:
            raise _fail(source, "unreadable file", str(exc).splitlines()[0]) from exc
    finally:
        con.close()  # DuckDB's copy of the selection is freed before the parts are joined
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    parts.clear()
    # the filters again on the parsed values: DuckDB's pass keeps whatever it cannot parse
    keep = pd.Series(True, index=out.index)
    if start is not None:
        keep &= out["quote_date"] >= pd.Timestamp(start)
    if end is not None:
        keep &= out["quote_date"] <= pd.Timestamp(end)
    if max_dte is not None:
        keep &= (out["expiration"] - out["quote_date"]).dt.days <= int(max_dte)
    if moneyness is not None:
        ratio = out["strike"] / out["underlying_price"]
        keep &= (ratio >= moneyness[0]) & (ratio <= moneyness[1])
    if not keep.all():
        out = out.loc[keep]
    return out.sort_values(
        ["underlying", "quote_date", "type", "expiration", "strike"], kind="stable"
    ).reset_index(drop=True)


def _option_type(source: str, value: str) -> str:
    kind = {"c": "call", "call": "call", "p": "put", "put": "put"}.get(value.strip().lower())
    if kind is None:
        raise _fail(source, "unknown option type", "use call or put (C/P)", repr(value))
    return kind


def _missing(
    source: str, layout: str, have: Sequence[str], columns: Mapping[str, str], snapshot: str
) -> None:
    """Raise a ``missing column`` error for every column the layout needs and the file lacks."""
    if layout == "long":
        needed = {name: columns.get(name, name) for name in REQUIRED}
    elif layout == "orats":
        needed = {k: k for k in _ORATS_KEYS}
    else:
        needed = {k: k for k in (*_CBOE_KEYS, *_CBOE_SNAPSHOT[snapshot])}
    absent = [src for src in needed.values() if src not in have]
    if absent:
        detail = "required column is absent"
        if layout != "long":
            detail += f" (the {layout} layout)"
        raise ContractError(
            source,
            "option_chains",
            [Problem(col, "missing column", detail=detail) for col in absent],
        )


def _filters(
    underlyings: Sequence[str] | None,
    option_type: str | None,
    start: str | pd.Timestamp | None,
    end: str | pd.Timestamp | None,
    max_dte: int | None,
    moneyness: tuple[float, float] | None,
) -> tuple[str, list[object]]:
    """SQL ``WHERE`` for the filters; rows whose dates or numbers do not parse are kept, so the
    contract check reports them."""
    clauses: list[str] = []
    params: list[object] = []
    qd = "TRY_CAST(quote_date AS DATE)"
    ex = "TRY_CAST(expiration AS DATE)"
    if underlyings is not None:
        clauses.append(
            "CAST(underlying AS VARCHAR) IN (" + ", ".join("?" for _ in underlyings) + ")"
        )
        params += list(underlyings)
    if option_type is not None:
        # rows with another or no type are kept: the contract check reports them
        clauses.append("(type = ? OR type NOT IN ('call', 'put') OR type IS NULL)")
        params.append(option_type)
    if start is not None:
        clauses.append(f"({qd} >= ? OR {qd} IS NULL)")
        params.append(pd.Timestamp(start).date())
    if end is not None:
        clauses.append(f"({qd} <= ? OR {qd} IS NULL)")
        params.append(pd.Timestamp(end).date())
    if max_dte is not None:
        clauses.append(f"(date_diff('day', {qd}, {ex}) <= ? OR {qd} IS NULL OR {ex} IS NULL)")
        params.append(int(max_dte))
    if moneyness is not None:
        ratio = "TRY_CAST(strike AS DOUBLE) / NULLIF(TRY_CAST(underlying_price AS DOUBLE), 0)"
        clauses.append(f"({ratio} BETWEEN ? AND ? OR {ratio} IS NULL)")
        params += [float(moneyness[0]), float(moneyness[1])]
    return " AND ".join(clauses), params
