"""Credentials never reach a message, however the URL was written (``research._text``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from research._text import mask_userinfo
from research.cli import app


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://me:secret@host/lab", "postgresql://me:***@host/lab"),
        ("--db postgres//me:secret@host/lab: no", "--db postgres//me:***@host/lab: no"),
        ("'http//user:secret@127.0.0.1:1/v1'", "'http//user:***@127.0.0.1:1/v1'"),
        ("user:secret@127.0.0.1:1/v1", "user:***@127.0.0.1:1/v1"),
        ("(a:b@c) and x:y@z", "(a:***@c) and x:***@z"),
        ("no credentials at 10:30 on host@example", "no credentials at 10:30 on host@example"),
    ],
)
def test_mask_userinfo(text: str, masked: str) -> None:
    assert mask_userinfo(text) == masked


def test_malformed_urls_in_cli_errors_hide_the_password(tmp_path: Path) -> None:
    runs = [
        ["attribute", "tunes", "--db", "postgres//me:secret@host/lab", "--write"],
        [
            "llm",
            "evaluate",
            "--provider",
            "openai",
            "--model",
            "x",
            "--out",
            str(tmp_path / "d.csv"),
            "--base-url",
            "http//user:secret@127.0.0.1:1/v1",
        ],  # fmt: skip
        [
            "llm",
            "evaluate",
            "--provider",
            "openai",
            "--model",
            "x",
            "--out",
            str(tmp_path / "d.csv"),
            "--base-url",
            "user:secret@127.0.0.1:1/v1",
        ],  # fmt: skip
    ]
    for args in runs:
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 1 and res.output.startswith("error: "), res.output
        assert "secret" not in res.output and ":***@" in res.output
    assert list(tmp_path.iterdir()) == []
