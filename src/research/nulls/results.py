"""The null-calibration table as last measured by ``benchmarks/bench_null_calibration.py``.

The benchmark writes ``RESULTS``, ``calibration.json`` beside this module (package data,
committed: the date, the commit and the machine it ran on, and one row per test). The sizes are a
property of the package's tests, so every project that uses the package — the lab's own pages and
a user's own data alike — reads the same table. Pages show the rows of their layer with
``published(layer=...)`` so a reader sees which tests are calibrated by simulation, under which
null, with what size and power — the figures the benchmark produced, never typed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["RESULTS", "Published", "published", "write_published"]

RESULTS = Path(__file__).with_name("calibration.json")
"""Where the benchmark writes the table (package data)."""
COLUMNS = ("layer", "test", "null", "effect", "runs", "size", "size_ci_low", "size_ci_high",
           "power", "conservative", "calibrated")  # fmt: skip


@dataclass(frozen=True)
class Published:
    """The table and where it came from."""

    table: pd.DataFrame
    """``layer, test, null, effect, runs, size, size_ci_low, size_ci_high, power, conservative,
    calibrated`` (a conservative case's size only must not exceed the band)."""
    measured: str
    """``date · commit · machine`` of the benchmark run."""

    def display(self) -> pd.DataFrame:
        """The table for a page, the numbers first: ``test`` (its name without the method in
        parentheses), ``size``, ``size 95% CI`` (text), ``power``, ``runs`` and ``calibrated``
        ("yes", "yes (conservative)" or "no"). The nulls, simulated on the lab's sample data,
        are described in ``table`` and in ``research.nulls`` (not on a page about a user's own
        markets, which never names the built-in ones)."""
        t = self.table
        verdict = [
            ("yes (conservative)" if cons else "yes") if ok else "no"
            for ok, cons in zip(t["calibrated"], t["conservative"], strict=True)
        ]
        return pd.DataFrame(
            {
                "test": t["test"].str.split(" (", n=1, regex=False).str[0],
                "size": t["size"],
                "size 95% CI": [
                    f"{100 * lo:.1f}–{100 * hi:.1f}%"
                    for lo, hi in zip(t["size_ci_low"], t["size_ci_high"], strict=True)
                ],
                "power": t["power"],
                "runs": t["runs"],
                "calibrated": verdict,
            }
        )

    def caption(self) -> str:
        """One line for a table caption."""
        return (
            "Size (rejections at the 5% level under a realistic null; calibrated: 2–8%, or at most "
            "8% for a conservative case, which rejects less by construction) "
            "and power (with a planted effect) of the tests, simulated by the null-calibration "
            "benchmark on the lab's sample data "
            f"({self.measured})"
        )


def published(
    layer: str | Sequence[str] | None = None, path: str | Path | None = None
) -> Published:
    """The committed table (rows of ``layer`` only, when given: a layer name, or several; exact
    names), from ``path`` (default ``RESULTS``).

    Raises
    ------
    FileNotFoundError
        No table at ``path`` (names the file and the command that writes it).
    """
    path = Path(path) if path is not None else RESULTS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no null-calibration results; run "
            "`python benchmarks/bench_null_calibration.py`"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    table = pd.DataFrame(data["rows"], columns=list(COLUMNS))
    if layer is not None:
        wanted = [layer] if isinstance(layer, str) else list(layer)
        table = table.loc[table["layer"].isin(wanted)]
    measured = (
        f"{data.get('date', '?')} · commit {data.get('commit', '?')} · {data.get('machine', '?')}"
    )
    return Published(table.reset_index(drop=True), measured)


def write_published(
    table: pd.DataFrame, *, date: str, commit: str, machine: str, path: str | Path | None = None
) -> Path:
    """Write the benchmark's table (atomically) where ``published`` reads it (default
    ``RESULTS``)."""
    from research._io import write_text_atomic

    path = Path(path) if path is not None else RESULTS
    rows = table[list(COLUMNS)].to_dict(orient="records")
    write_text_atomic(
        path,
        json.dumps({"date": date, "commit": commit, "machine": machine, "rows": rows}, indent=2)
        + "\n",
    )
    return path
