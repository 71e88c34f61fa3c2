"""Market regime models without look-ahead, behind one interface.

>>> from research.regimes import classify
>>> labels = classify("vol_ratio", bars)          # doctest: +SKIP
"""

from research.regimes.registry import classify, get_model, min_history, models
from research.regimes.ruleset import DEFAULT_RULESET, Ruleset, load_ruleset

__all__ = [
    "DEFAULT_RULESET",
    "Ruleset",
    "classify",
    "get_model",
    "load_ruleset",
    "min_history",
    "models",
]
