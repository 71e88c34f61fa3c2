"""environment.yml (conda) mirrors pyproject.toml's dependencies and extras."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge package names that differ from the PyPI names
CONDA_NAMES = {"arch": "arch-py", "duckdb": "python-duckdb", "types-pyyaml": "types-pyyaml"}
CONDA_ONLY = {"python", "pip", "quarto"}
_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$")  # extras dropped


def _parse(spec: str) -> tuple[str, str]:
    match = _SPEC.match(spec)
    assert match, spec
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = list(data["project"]["dependencies"])
    for extra in ("dev", "lab", "bench"):
        specs += data["project"]["optional-dependencies"][extra]
    out = {}
    for spec in specs:
        name, version = _parse(spec)
        out[CONDA_NAMES.get(name, name)] = version
    return out


def _environment() -> dict[str, str]:
    data = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in data["dependencies"]:
        if isinstance(dep, str):
            name, version = _parse(dep)
            out[name] = version
    return out


def test_environment_lists_every_pyproject_dependency_with_the_same_bound() -> None:
    pyproject, env = _pyproject(), _environment()
    assert {k: v for k, v in env.items() if k not in CONDA_ONLY} == pyproject


def test_environment_has_quarto_and_conda_forge() -> None:
    data = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert data["channels"] == ["conda-forge"]
    assert "quarto" in _environment()
