"""Type aliases of the package's public signatures (base layer: imports nothing of the package).

Arrays say their element type (``FloatArray`` rather than a bare ``np.ndarray``); a string
parameter that takes a few words is a ``Literal`` of them, so a type checker catches a typo
that would otherwise only fail at run time.

>>> from research._typing import FloatArray
>>> def mean(x: FloatArray) -> float: ...
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "BoolArray",
    "FloatArray",
    "IntArray",
    "ObjectArray",
    "OptionKind",
    "PricedBy",
    "TradeRecording",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
"""An array of float64 (prices, IV, returns, equity)."""
IntArray: TypeAlias = npt.NDArray[np.int64]
"""An array of int64 (day ordinals, codes, counts)."""
BoolArray: TypeAlias = npt.NDArray[np.bool_]
"""An array of booleans (masks)."""
ObjectArray: TypeAlias = npt.NDArray[np.object_]
"""An array of Python objects (labels, source names)."""

OptionKind: TypeAlias = Literal["call", "put"]
"""The type of an option."""
PricedBy: TypeAlias = Literal["model", "chain"]
"""What prices a backtest's spreads: the Black–Scholes model with a smile, or option chains."""
TradeRecording: TypeAlias = bool | Literal["pnl"]
"""What a grid run keeps of each trade: the whole record (``True``), nothing (``False``) or its
P&L only (``"pnl"``)."""
