"""The attribution layer's public API is declared and documented: every public function and
class a module defines is in its ``__all__``, and it — and every public method or property of
a public class — has a docstring."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = (
    "research.attribution.agents",
    "research.attribution.experiments",
    "research.attribution.experiments_db",
    "research.attribution.selector",
    "research.attribution.service",
    "research.attribution.signals",
    "research.attribution.tunes",
    "research.attribution.tunes_db",
    "research.nulls.attribution",
)


@pytest.mark.parametrize("name", MODULES)
def test_public_names_are_declared_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    declared = set(getattr(module, "__all__", ()))
    missing, undocumented = [], []
    for attr, obj in vars(module).items():
        if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) != name:
            continue  # imported from elsewhere
        if attr not in declared:
            missing.append(attr)
        if not inspect.getdoc(obj):
            undocumented.append(attr)
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_"):
                    continue
                if isinstance(value, property) and not value.__doc__:
                    undocumented.append(f"{attr}.{member}")
                elif inspect.isfunction(value) and not inspect.getdoc(value):
                    undocumented.append(f"{attr}.{member}")
    assert not missing, f"{name}: public but not in __all__: {missing}"
    assert not undocumented, f"{name}: no docstring: {undocumented}"
    for attr in declared:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"
