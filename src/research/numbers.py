"""How amounts are written in the pages' sentences: a minus sign (−), never a hyphen, and the
sign before the currency symbol ("−$93.11", "+$108.84")."""

from __future__ import annotations

import math

__all__ = ["count", "money", "p_text", "signed"]

MINUS = "\u2212"


def signed(value: float, digits: int = 2) -> str:
    """``+1.50`` / ``−1.50`` / ``0.00`` (typographic minus; ``n/a`` for NaN)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{abs(value):,.{digits}f}"
    if round(value, digits) == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


def money(value: float, digits: int = 2, *, plus: bool = False) -> str:
    """``$93.11``, ``−$93.11`` (``+$108.84`` with ``plus``); ``n/a`` for NaN."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"${abs(value):,.{digits}f}"
    if round(value, digits) == 0:
        return text
    if value < 0:
        return MINUS + text
    return "+" + text if plus else text


def p_text(value: float | None) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a`` (p = 0 is ``p < 0.001``, not missing)."""
    if value is None or not math.isfinite(value):
        return "p n/a"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``count(1, "thread")`` is "1 thread",
    ``count(2, "slot")`` "2 slots"."""
    return f"{n} {noun}{'s' * (n != 1)}"
