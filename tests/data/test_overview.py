"""The market-data page's answer (``ProxyStudy.answer``), worded from the coverage counts."""

from __future__ import annotations

import pandas as pd
import pytest

from research.data import market, overview


def _coverage(**days: int) -> pd.DataFrame:
    cols = ["iv_index_days", "iv_proxy_days", "iv_scaled_days", "iv_uncalibrated_days"]
    row = {c: days.get(c, 0) for c in [*cols, "iv_missing_days"]}
    return pd.DataFrame([{"symbol": "AAA", **row}])


EMPTY = overview.ProxyStudy(fits={}, maps=pd.DataFrame(), band=pd.DataFrame(), skipped={})


def test_answer_counts_each_source_by_hand() -> None:
    text = EMPTY.answer(_coverage(iv_index_days=300, iv_proxy_days=600, iv_missing_days=100))
    assert text.startswith("**30% of the 1,000 market-days price options from a published IV")
    assert "600 (60%) from a proxy mapped on an index" in text
    assert "100 (10%) from no IV at all" in text
    assert "scaled" not in text and "uncalibrated" not in text


def test_answer_without_any_index_says_so() -> None:
    text = EMPTY.answer(_coverage(iv_uncalibrated_days=250))
    assert text == (
        "**No market-day prices options from a published IV index**: 250 (100%) from an "
        "uncalibrated volatility forecast."
    )
    assert EMPTY.answer(_coverage(iv_index_days=10)).endswith("published IV index**.")


def test_answer_on_the_embedded_data_quotes_the_holdout_error() -> None:
    data = overview.load_market(None, None)
    proxies = overview.proxy_study(data, holdout_share=0.4)
    cov = market.coverage(data.bars, data.iv)
    text = proxies.answer(cov)
    index_days = int(cov["iv_index_days"].sum())
    assert f"**{index_days / int(cov['bars'].sum()):.0%} of the" in text
    oos = proxies.fits["SPX"].out_of_sample
    assert oos.rmse == pytest.approx(2.16, abs=0.01)
    assert f"**{oos.rmse:.2f} vol points** (RMS, out of sample over {oos.n:,} days" in text
    assert "IXIC" not in text  # scaled from SPX: no proxy of its own
