"""Amounts in sentences: a typographic minus before the currency symbol, never "$-93.11"."""

from __future__ import annotations

import math

import pytest

from research.numbers import MINUS, money, signed


@pytest.mark.parametrize(
    ("value", "plus", "text"),
    [
        (-93.11, False, f"{MINUS}$93.11"),
        (108.84, True, "+$108.84"),
        (108.84, False, "$108.84"),
        (-1234.5, False, f"{MINUS}$1,234.50"),
        (-0.004, True, "$0.00"),  # rounds to zero: no sign
        (math.nan, False, "n/a"),
    ],
)
def test_money(value: float, plus: bool, text: str) -> None:
    assert money(value, plus=plus) == text


def test_signed() -> None:
    assert signed(-167.997) == f"{MINUS}168.00" and signed(290.7486) == "+290.75"
    assert signed(0.001) == "0.00" and signed(math.inf) == "n/a"
    assert signed(-0.25, 1) == f"{MINUS}0.2"  # round half to even, like format()


def test_p_text() -> None:
    from research.numbers import p_text

    assert p_text(0.0123) == "p = 0.012"
    assert p_text(0.0) == "p < 0.001" and p_text(0.0009) == "p < 0.001"
    assert p_text(float("nan")) == "p n/a" and p_text(None) == "p n/a"
