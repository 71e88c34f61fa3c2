"""Prompt variants as files: ``research/llm/prompts/NAME.md`` (balanced — the validation plan's
fund-manager prompt — aggressive, conservative) and any ``NAME.md`` or ``NAME.txt`` in a folder of
the user's, which takes precedence. The text is the system message; the trade context is the user
message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUILTIN_DIR", "Prompt", "available", "load_prompts"]

BUILTIN_DIR = Path(__file__).with_name("prompts")


@dataclass(frozen=True)
class Prompt:
    """A named system prompt and the file it came from."""

    name: str
    text: str
    path: Path


def _dirs(user_dir: str | Path | None) -> list[Path]:
    return ([Path(user_dir)] if user_dir is not None else []) + [BUILTIN_DIR]


def available(user_dir: str | Path | None = None) -> dict[str, Path]:
    """Prompt name -> file, the user's folder first."""
    out: dict[str, Path] = {}
    for d in reversed(_dirs(user_dir)):
        if d.is_dir():
            for f in sorted([*d.glob("*.md"), *d.glob("*.txt")]):
                out[f.stem] = f
    return out


def load_prompts(names: Sequence[str], user_dir: str | Path | None = None) -> list[Prompt]:
    """The named prompts.

    Raises
    ------
    ValueError
        A name with no file (lists the ones there are), an empty file, or a missing folder.
    """
    if user_dir is not None and not Path(user_dir).is_dir():
        raise ValueError(f"{user_dir}: no such prompts folder")
    files = available(user_dir)
    out = []
    for name in names:
        if name not in files:
            raise ValueError(f"no prompt {name!r} (prompts: {sorted(files)})")
        text = files[name].read_text().strip()
        if not text:
            raise ValueError(f"{files[name]}: the prompt file is empty")
        out.append(Prompt(name, text, files[name]))
    return out
