"""Small synthetic bars for tests of the trade filter: SPX and IXIC business days over the first
sample trades' dates (2013-01-01 to 2014-03-31), rising by half a point a day, so a command
computes the trades' entry regimes in a fraction of the embedded history's time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["write_sample_period_bars"]


def write_sample_period_bars(path: str | Path) -> Path:
    """Write the bars (``bars`` contract, CSV) to ``path``; returns it."""
    days = pd.bdate_range("2013-01-01", "2014-03-31")
    frames = []
    for symbol, base in (("SPX", 1800.0), ("IXIC", 4100.0)):
        close = base + 0.5 * pd.Series(range(len(days)), dtype=float)
        frames.append(
            pd.DataFrame(
                {
                    "date": days,
                    "symbol": symbol,
                    "open": close,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close,
                    "volume": 1e9,
                }
            )
        )
    out = Path(path)
    pd.concat(frames).to_csv(out, index=False, date_format="%Y-%m-%d")
    return out
