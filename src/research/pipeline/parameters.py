"""A notebook's parameters as its ``parameters`` cell declares them, and the check of given values
against them before anything executes.

Each top-level assignment of the cell tagged ``parameters`` is a parameter. Its type is declared
either by an annotation or by the comment's first words, as the pipeline notebooks do::

    proxy_holdout_share: float = 0.4  # last share of each IV index's overlap held out
    start = None  # str or None. first date, inclusive (None: the data's first)
    iv_path = None  # str, list or None. IV index file(s), they add up

The annotation wins when both are given; a parameter with neither (or with a type this module
does not know, such as ``Any`` or a class) is not checked. The cell is read with :mod:`ast` and
:mod:`tokenize` rather than ``papermill.inspect_notebook``, whose pattern misses annotations such
as ``str | None`` or ``typing.List[int]`` (the parameter would then count as unknown).

A value is checked as the notebook will receive it: papermill writes YAML scalars it has no
literal for (a date such as ``2013-01-01`` unquoted) as strings, so they count as ``str``; an
integer counts as a ``float`` too.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from research.exceptions import InputError

__all__ = [
    "Parameter",
    "check_params",
    "declared_types",
    "notebook_parameters",
    "type_mismatch",
    "yaml_problem",
]

_TYPES = {
    "str": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "list": "list",
    "List": "list",
    "Sequence": "list",
    "tuple": "tuple",
    "Tuple": "tuple",
    "dict": "dict",
    "Dict": "dict",
    "Mapping": "dict",
    "None": "None",
    "NoneType": "None",
}
"""Type names a declaration may use, and the kind each checks."""
_COMMENT_TYPES = re.compile(r"^\s*(\w+(?:\s*(?:,|\bor\b|\|)\s*\w+)*)\s*(?:\.|$)")
"""``str or None. first date`` → ``str or None``: type names, then a full stop or the end."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    types: tuple[str, ...] | None
    """The declared kinds (``str``, ``int``, ``float``, ``bool``, ``list``, ``tuple``, ``dict``,
    ``None``), or ``None`` when nothing checkable is declared."""
    annotation: str | None = None
    comment: str = ""


def _annotation_types(node: ast.expr) -> list[str] | None:
    """Kinds of an annotation (``float``, ``str | None``, ``Optional[int]``, ``list[str]``,
    ``'float'``), or ``None`` when any part is not a known type."""
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ["None"]
        if isinstance(node.value, str):
            try:
                return _annotation_types(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                return None
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _annotation_types(node.left), _annotation_types(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Subscript):
        base = node.value
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if name in ("Optional", "Union"):
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            found: list[str] = []
            for part in parts:
                kinds = _annotation_types(part)
                if kinds is None:
                    return None
                found += kinds
            return found + ["None"] if name == "Optional" else found
        return _annotation_types(base)
    if isinstance(node, ast.Attribute):
        return [_TYPES[node.attr]] if node.attr in _TYPES else None
    if isinstance(node, ast.Name):
        return [_TYPES[node.id]] if node.id in _TYPES else None
    return None


def _comment_types(comment: str) -> list[str] | None:
    """Kinds named by a comment's first words (``str, list or None. …``), or ``None``."""
    match = _COMMENT_TYPES.match(comment)
    if match is None:
        return None
    words = [w for w in re.split(r"\s*(?:,|\bor\b|\|)\s*", match.group(1)) if w]
    if not words or any(w not in _TYPES for w in words):
        return None
    kinds = [_TYPES[w] for w in words]
    return kinds if any(k != "None" for k in kinds) else None


def declared_types(annotation: str | None, comment: str = "") -> tuple[str, ...] | None:
    """The kinds a parameter is declared with: its annotation's, else its comment's.

    Parameters
    ----------
    annotation
        The annotation's source (``float``, ``str | None``), or ``None``.
    comment
        The comment after the assignment, without ``#``.

    Returns
    -------
    tuple of str or None
        The kinds, without duplicates, in declaration order; ``None`` when nothing checkable is
        declared.
    """
    kinds: list[str] | None = None
    if annotation:
        try:
            kinds = _annotation_types(ast.parse(annotation, mode="eval").body)
        except SyntaxError:
            kinds = None
    if kinds is None:
        kinds = _comment_types(comment)
    return tuple(dict.fromkeys(kinds)) if kinds else None


def _parameters_source(notebook: Path) -> str | None:
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{notebook}: cannot read the notebook ({exc})") from exc
    for cell in cells:
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else str(source)
    return None


def _comments(source: str) -> dict[int, str]:
    """Line number → text of the comment on that line."""
    found: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                found[token.start[0]] = token.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def notebook_parameters(notebook: Path) -> dict[str, Parameter]:
    """The parameters of ``notebook``'s cell tagged ``parameters`` (none without one).

    Raises
    ------
    research.exceptions.InputError
        The notebook cannot be read, or its parameters cell is not valid Python.
    """
    source = _parameters_source(notebook)
    if source is None:
        return {}
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InputError(
            f"{notebook}: its parameters cell is not valid Python (line {exc.lineno}: {exc.msg})"
        ) from exc
    comments = _comments(source)
    found: dict[str, Parameter] = {}
    for node in tree.body:
        annotation: str | None = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets: list[ast.expr] = [node.target]
            annotation = ast.get_source_segment(source, node.annotation)
        elif isinstance(node, ast.Assign):
            targets = []
            for target in node.targets:
                targets += target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
        else:
            continue
        comment = comments.get(node.end_lineno or node.lineno, "")
        for target in targets:
            if isinstance(target, ast.Name):
                kinds = declared_types(annotation, comment)
                found[target.id] = Parameter(target.id, kinds, annotation, comment)
    return found


def _matches(value: Any, kind: str) -> bool:
    """Whether ``value``, as papermill injects it, is of ``kind``."""
    literal = (bool, int, float, list, tuple, dict)
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "str":  # papermill writes any other scalar (a YAML date) as its text
        return value is not None and not isinstance(value, literal)
    if kind in ("list", "tuple"):
        return isinstance(value, list | tuple)
    if kind == "dict":
        return isinstance(value, dict)
    return True


def _spelled(kinds: tuple[str, ...]) -> str:
    return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]


def type_mismatch(parameter: Parameter, value: Any) -> str | None:
    """Why ``value`` does not fit ``parameter``'s declared type (``must be float, got 'forty'``),
    or ``None`` when it fits or no type is declared."""
    if parameter.types is None or any(_matches(value, k) for k in parameter.types):
        return None
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    why = f"{parameter.name} must be {_spelled(parameter.types)}, got {shown}"
    if isinstance(value, str) and ("float" in parameter.types or "int" in parameter.types):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            why += f" (YAML reads {value} as text; write it as {number!r})"
    return why


def _shown(path: Path | str | None, root: Path | None) -> str:
    if path is None:
        return "parameters"
    if root is not None:
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def check_params(
    notebook: Path,
    values: Mapping[str, Any],
    params_file: Path | str | None,
    *,
    sources: Mapping[str, Path | str] | None = None,
    root: Path | None = None,
) -> None:
    """Fail before any execution on a parameter the notebook's ``parameters`` cell does not
    define, or whose value is not of the type the cell declares.

    Parameters
    ----------
    notebook
        The notebook the values are for.
    values
        The parameters that will be injected.
    params_file
        The file the values came from (named in the message).
    sources
        The file of each parameter, where it is not ``params_file`` (a parameter set's file).
    root
        The project root: files under it are named relative to it.

    Raises
    ------
    research.exceptions.InputError
        ``notebooks/params/x.yaml: 01_market_data: proxy_holdout_share must be float, got
        'forty'``, or ``…: 01_market_data has no parameter(s) ['nope']; its parameters are […]``.
    """
    known = notebook_parameters(notebook)
    sources = sources or {}

    def source_of(names: list[str]) -> str:
        files = dict.fromkeys(_shown(sources.get(n, params_file), root) for n in names)
        return ", ".join(files)

    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(
            f"{source_of(unknown)}: {notebook.stem} has no parameter(s) {unknown}; "
            f"its parameters are {sorted(known)}"
        )
    for name, value in values.items():
        why = type_mismatch(known[name], value)
        if why is not None:
            raise InputError(f"{source_of([name])}: {notebook.stem}: {why}")


def yaml_problem(exc: Exception) -> str:
    """A YAML error in one line: ``line 2, column 6: expected ',' or ']', but got …``."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
