"""The ORATS-shaped synthetic history: its expiration calendar (Saturday-dated monthlies before
2015, Good Friday moved, weeklies, quarterlies, LEAPS), its $1/$5 strike grid, and that the
lab reads the written folder as ORATS rows — both sides of each row, through the backtest's
filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.backtest.synthetic_orats import (
    WEEKLY_WEEKS,
    _strikes,
    expirations,
    orats_rows,
    write_orats_history,
)

TRADING = pd.bdate_range("2012-01-03", "2016-12-30").drop(
    pd.DatetimeIndex(["2014-04-18", "2016-03-25"])  # Good Fridays
)


def test_monthlies_are_dated_the_saturday_after_the_third_friday_before_2015() -> None:
    listed = expirations(pd.Timestamp("2014-01-06"), TRADING)
    assert pd.Timestamp("2014-01-18") in listed  # Saturday after 2014-01-17
    assert pd.Timestamp("2014-01-17") in listed  # the Friday weekly is listed too
    assert pd.Timestamp("2014-12-20") in listed  # December 2014: still a Saturday
    later = expirations(pd.Timestamp("2015-03-02"), TRADING)
    assert pd.Timestamp("2015-03-20") in later and pd.Timestamp("2015-03-21") not in later


def test_weeklies_quarterlies_leaps_and_a_good_friday() -> None:
    day = pd.Timestamp("2014-03-31")  # a Monday
    listed = expirations(day, TRADING)
    fridays = pd.date_range(day + pd.Timedelta(days=1), periods=WEEKLY_WEEKS, freq="W-FRI")
    # Good Friday 2014-04-18 is not a trading day: that weekly is listed on the Thursday
    assert pd.Timestamp("2014-04-18") not in listed and pd.Timestamp("2014-04-17") in listed
    assert set(fridays.drop(pd.Timestamp("2014-04-18"))) <= set(listed)
    assert {pd.Timestamp("2014-06-30"), pd.Timestamp("2014-09-30")} <= set(listed)  # quarters
    # LEAPS: the January monthlies of the next two years (Saturday-dated before 2015)
    assert {pd.Timestamp("2015-01-17"), pd.Timestamp("2016-01-15")} <= set(listed)
    assert listed.is_monotonic_increasing and listed.is_unique and (listed > day).all()
    # Monday and Wednesday weeklies from 2016 only
    mw = expirations(pd.Timestamp("2016-01-04"), TRADING)
    assert pd.Timestamp("2016-01-06") in mw and pd.Timestamp("2016-01-11") in mw
    assert pd.Timestamp("2014-04-02") not in listed  # a Wednesday inside the weekly window


def test_strike_grid_is_one_dollar_near_and_five_dollars_far() -> None:
    k = _strikes(200.0, 0.2, 30 / 365)
    sd = 0.2 * np.sqrt(30 / 365)
    near, far = min(0.8, 0.6 + 2 * sd), min(0.95, 0.8 + 4 * sd)
    inner = k[(k >= 200 * (1 - near)) & (k <= 200 * (1 + near))]
    assert np.all(np.diff(inner) == 1.0) and inner[0] == np.ceil(200 * (1 - near))
    outer = k[k > inner[-1]]
    assert len(outer) and np.all(outer % 5 == 0) and outer[-1] <= 200 * (1 + far)
    assert k.min() > 0 and np.all(np.diff(k) > 0)


def test_rows_carry_both_sides_and_read_back_as_orats(tmp_path: Path) -> None:
    from research.data.chains import load_chains

    days = TRADING[(TRADING >= "2014-03-03") & (TRADING <= "2014-03-07")]
    rows = orats_rows(
        "SPY", days, np.full(5, 187.0), np.array([0.14, 0.15, np.nan, 0.16, 0.15]), TRADING
    )
    assert set(rows["tradeDate"].unique()) == set(days.drop(days[2]).to_numpy())  # NaN IV: none
    assert {"callBidPrice", "callAskPrice", "putBidPrice", "putAskPrice", "delta"} <= set(rows)
    assert (rows["callAskPrice"] >= rows["callBidPrice"]).all()
    assert (rows["putAskPrice"] >= rows["putBidPrice"]).all()
    # put-call parity holds on the mids up to the rounding of the quotes
    t = rows["dte"] / 365
    parity = (rows["callBidPrice"] + rows["callAskPrice"]) / 2 - (
        rows["putBidPrice"] + rows["putAskPrice"]
    ) / 2
    want = 187.0 * np.exp(-0.018 * t) - rows["strike"] * np.exp(-0.02 * t)
    near = (rows["strike"] - 187).abs() < 20
    assert np.allclose(parity[near], want[near], atol=0.05 + 0.03 * rows.loc[near, "callAskPrice"])
    folder = tmp_path / "history" / "year=2014"
    folder.mkdir(parents=True)
    rows.to_parquet(folder / "SPY.parquet")
    back = load_chains(tmp_path / "history", max_dte=90, moneyness=(0.5, 1.5))
    kept = rows.loc[(rows["dte"] <= 90) & (rows["strike"] / 187).between(0.5, 1.5)]
    assert len(back) == 2 * len(kept)  # a call and a put per ORATS row
    assert set(back["type"]) == {"call", "put"} and set(back["underlying"]) == {"SPY"}
    calls = load_chains(tmp_path / "history", option_type="call", max_dte=90)
    assert (calls["type"] == "call").all()


def test_an_existing_folder_is_never_written_over(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        write_orats_history(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
