"""The package's import layers (issue 24): no module imports a module of a higher layer, and no
two modules import each other, directly or around a loop.

Every ``import`` and ``from ... import`` in every module under ``src/research`` counts: at the top
of the file, inside a function or method, and under ``if TYPE_CHECKING:`` alike (a
type-checking import names a dependency just as much as a runtime one; keeping it in order means
a later runtime import of the same name cannot close a loop). Relative imports are resolved
against the importing module's package. ``from pkg import name`` is an import of the module
``pkg.name`` when that is a module, else of ``pkg`` itself. The parent packages Python runs
before a submodule (``research.backtest`` before ``research.backtest.run``) are not counted.

The layers, lowest first; a module may import its own layer and any lower one:

==========  ========================================================================================
0 base      ``research`` itself and its top-level helper modules (``_io``, ``_text``, ``_typing``,
            ``exceptions``, ``constants``, ``numbers``, ``dates``, ``options``, ``config``,
            ``clustered``, ``summaries``): no pandas-heavy domain code, no domain packages
1           ``data``: contracts, loaders, writers, market data and IV
2           ``regimes``: regime models on market data
3           ``backtest``: pricing, engines, metrics, synthetic option chains
4           ``attribution``: signals, agents, tunes and experiments on trades and regimes
5           ``llm``: the LLM harness (context, prompts, replies) over trades
6           ``optimize``: grids, scenarios, walk-forward and studies over backtests (its
            datasets label trades with ``attribution``'s agents)
7           ``nulls``: null-hypothesis calibration of attribution, LLM and optimisation
8           ``plotting``: figures of everything above
9           ``pipeline``: notebooks, findings, the site
10          the command line: ``research.cli``, ``research.cli.*`` and ``research.cli_*``
11          ``research.__main__``
==========  ========================================================================================

``research.testing`` (throwaway servers and fixtures for tests) may import anything and is
imported only by tests.

``llm`` and ``attribution`` import neither each other nor ``optimize``; their order among
themselves is a choice.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "research"

BASE = 0
LAYERS: dict[str, int] = {
    "data": 1,
    "regimes": 2,
    "backtest": 3,
    "attribution": 4,
    "llm": 5,
    "optimize": 6,
    "nulls": 7,
    "plotting": 8,
    "pipeline": 9,
}
CLI = 10
MAIN = 11
ANYTHING = 99  # research.testing: imports anything, imported by nothing in the package


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, is a package's ``__init__``)."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


MODULES = _modules()


def layer(module: str) -> int:
    """The layer of a module of the package (see the module docstring)."""
    parts = module.split(".")
    if module == f"{PACKAGE}.__main__":
        return MAIN
    if len(parts) > 1 and (parts[1] == "cli" or parts[1].startswith("cli_")):
        return CLI
    if len(parts) == 1:
        return BASE
    if parts[1] == "testing":
        return ANYTHING
    return LAYERS.get(parts[1], BASE)


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports(module: str) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import of the package's own modules in ``module``."""
    path, is_package = MODULES[module]
    yield from imports_in(path.read_text(encoding="utf-8"), module, is_package=is_package)


def imports_in(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import of the package's own modules in ``source``
    (the text of ``module``): anywhere in the file, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            names = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else origin
                for alias in node.names
            ]
        for name in names:
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            target = _known(name)
            if target is not None and target != module:
                yield target, node.lineno


def upward(module: str, target: str) -> bool:
    """Whether ``module`` importing ``target`` goes up the layers (``research.testing`` sits
    above every other module, and imports anything itself)."""
    return layer(module) != ANYTHING and layer(target) > layer(module)


def upward_imports() -> list[str]:
    """``module -> imported (line)`` for every import of a higher layer."""
    return [
        f"{module} -> {target} ({line})  [layer {layer(module)} -> {layer(target)}]"
        for module in MODULES
        for target, line in sorted(set(imports(module)))
        if upward(module, target)
    ]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports."""
    return {module: {target for target, _ in imports(module)} for module in MODULES}


def test_the_layers_are_known() -> None:
    """Every subpackage has a layer: a new one must be placed in the order on purpose."""
    packages = {name.split(".")[1] for name in MODULES if name.count(".") >= 1}
    subpackages = {p for p in packages if (SRC / PACKAGE / p).is_dir()}
    assert subpackages - set(LAYERS) - {"cli", "testing"} == set()


def test_no_module_imports_a_higher_layer() -> None:
    upward = upward_imports()
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = import_graph()
    loops = cycles(graph)
    lines = []
    for component in loops:
        members = set(component)
        lines.append(" <-> ".join(component))
        lines.extend(
            f"    {module} -> {target} ({line})"
            for module in component
            for target, line in sorted(set(imports(module)))
            if target in members
        )
    assert not loops, "import cycles:\n" + "\n".join(lines)


def test_the_checker_finds_cycles_and_places_modules() -> None:
    """The checker itself: a cycle is found, and modules get their layers."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert layer("research.cli") == CLI and layer("research.cli_llm") == CLI
    assert layer("research.cli.run") == CLI and layer("research._io") == BASE
    assert layer("research.__main__") == MAIN and layer("research.summaries") == BASE
    assert layer("research.data.overview") < layer("research.backtest.run")
    assert upward("research.pipeline.runner", "research.testing.postgres")
    assert not upward("research.testing.postgres", "research.cli")


def test_the_checker_sees_every_kind_of_import() -> None:
    """Imports inside functions, under ``TYPE_CHECKING``, relative ones and ``from pkg import
    module`` are all found, and the upward ones among them are reported."""
    source = """
from typing import TYPE_CHECKING

import research.data.market
from . import market_panel
from .. import constants

if TYPE_CHECKING:
    from research.optimize.service import StudyInputs


def later():
    from research.pipeline import runner
    from research.backtest import run
"""
    found = sorted(imports_in(source, "research.backtest.iv"))
    assert found == [
        ("research.backtest.market_panel", 5),
        ("research.backtest.run", 14),
        ("research.constants", 6),
        ("research.data.market", 4),
        ("research.optimize.service", 9),
        ("research.pipeline.runner", 13),
    ]
    up = [target for target, _ in found if upward("research.backtest.iv", target)]
    assert up == ["research.optimize.service", "research.pipeline.runner"]
