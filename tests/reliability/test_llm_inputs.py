"""Hostile input to ``research llm``: nothing a user owns is lost, overwritten or silently wrong.

Each test drives the command line in-process (``typer.testing.CliRunner`` on ``research.cli.app``)
or the harness, against real OpenAI-compatible servers on 127.0.0.1
(``research.testing.chat_server``); no network.

1. answers belong to their source: the reply cache key holds the provider, the server, the model,
   the prompt text and the request parameters — two servers whose models are both called
   ``local`` do not share answers, and a cache does not answer for a server on a closed port;
2. ``--out`` is never one of the inputs, an unrelated file, another prompt's or another
   provider's decisions, nor a file in a format the decisions cannot be written in; a decisions
   file of the same provider and prompts is continued, its rows all kept (``--summary-out``
   likewise);
3. ``--retry-errors`` asks again the errors the cache holds;
4. an evaluation in which every request failed exits 1 with one line;
5. a body that is not a chat completion says what came back and is kept in ``raw``;
6. credentials in the base URL are masked wherever they are written or printed;
7. every numeric option is checked before any work, the error naming the option.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from research.cli import app
from research.config import PATHS
from research.data.loaders import load
from research.exceptions import InputError, OutputError
from research.llm.harness import EvalConfig, Prices, cache_key, evaluate, journal_path
from research.llm.prompts import load_prompts
from research.llm.providers import HeuristicProvider, OpenAIProvider, mask_url
from research.testing.bars import write_sample_period_bars
from research.testing.chat_server import Action, ChatServer, Malformed, Ok, ServerError

APPROVE = json.dumps({"decision": "approve", "confidence": 0.7, "contracts": 2, "reason": "A"})
REJECT = json.dumps({"decision": "reject", "confidence": 0.8, "contracts": 1, "reason": "B"})
SAMPLE = json.loads((PATHS.sample / "trades.json").read_text())
BALANCED = load_prompts(["balanced"])


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic SPX and IXIC bars over the first sample trades' dates (fast to load)."""
    return write_sample_period_bars(tmp_path_factory.mktemp("bars") / "bars.csv")


def trades_file(folder: Path, rows: slice = slice(0, 4), name: str = "trades.json") -> Path:
    """The sample's trades ``rows`` as a user's file."""
    path = folder / name
    path.write_text(json.dumps(SAMPLE[rows]))
    return path


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("REGIME_LAB_LLM"):
            monkeypatch.delenv(name, raising=False)


def llm(*args: str | Path) -> Result:
    """``research llm ARGS`` in-process."""
    return CliRunner().invoke(app, ["llm", *map(str, args)])


def evaluate_args(
    out: Path, trades: Path, bars: Path, cache: Path, *, url: str | None = None, **opts: Any
) -> list[str | Path]:
    """``evaluate`` of ``trades`` into ``out``: the heuristic, or model ``local`` at ``url``."""
    args: list[str | Path] = ["evaluate", "--out", out, "--trades", trades, "--bars", bars]
    args += ["--cache", cache]
    if url is not None:
        args += ["--provider", "openai", "--base-url", url, "--model", "local"]
        opts = {"timeout": "2", "retries": "0", "concurrency": "2", **opts}
    for name, value in opts.items():
        for v in value if isinstance(value, list | tuple) else [value]:
            flag = f"--{name.replace('_', '-')}"
            args += [flag] if v is True else [flag, v]
    return args


def succeeds(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def fails(result: Result, *expected: str) -> str:
    """The command exited 1 with exactly one ``error:`` line (no traceback) holding
    ``expected``; returns that line."""
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def always(action: Action) -> Callable[[dict[str, Any], int], Action]:
    return lambda request, n: action


# --------------------------------------------------------------------------- 1. cache key


def test_two_servers_whose_models_are_both_local_do_not_share_answers(
    tmp_path: Path, bars: Path
) -> None:
    trades, cache = trades_file(tmp_path), tmp_path / "cache"
    with ChatServer(always(Ok(APPROVE))) as a, ChatServer(always(Ok(REJECT))) as b:
        succeeds(llm(*evaluate_args(tmp_path / "a.csv", trades, bars, cache, url=a.base_url)))
        succeeds(llm(*evaluate_args(tmp_path / "b.csv", trades, bars, cache, url=b.base_url)))
        assert (a.requests, b.requests) == (4, 4)  # B was asked, not answered from A's cache
        urls = a.base_url, b.base_url
    da, db = load("llm_decisions", tmp_path / "a.csv"), load("llm_decisions", tmp_path / "b.csv")
    assert set(da["decision"]) == {"approve"} and set(db["decision"]) == {"reject"}
    assert set(da["provider"]) == {f"local via {urls[0]}"}
    assert set(db["provider"]) == {f"local via {urls[1]}"}


def test_a_cache_does_not_answer_for_a_server_on_a_closed_port(tmp_path: Path, bars: Path) -> None:
    trades, cache = trades_file(tmp_path), tmp_path / "cache"
    with ChatServer(always(Ok(APPROVE))) as server:
        succeeds(llm(*evaluate_args(tmp_path / "a.csv", trades, bars, cache, url=server.base_url)))
    result = llm(*evaluate_args(tmp_path / "c.csv", trades, bars, cache, url=closed_port_url()))
    fails(result, "all 4 requests of this run failed", "connection failed")
    d = load("llm_decisions", tmp_path / "c.csv")
    assert d["decision"].isna().all() and not d["cached"].any()
    assert d["error"].str.contains("connection failed").all()


def test_the_cache_key_holds_everything_an_answer_depends_on() -> None:
    base = OpenAIProvider(model="local", base_url="http://127.0.0.1:1/v1", api_key="k1")
    messages = [{"role": "system", "content": "P"}, {"role": "user", "content": "trade"}]
    key = cache_key(base, messages)
    other = {
        "server": OpenAIProvider(model="local", base_url="http://127.0.0.1:2/v1"),
        "path": OpenAIProvider(model="local", base_url="http://127.0.0.1:1/v2"),
        "model": OpenAIProvider(model="other", base_url="http://127.0.0.1:1/v1"),
        "temperature": OpenAIProvider(
            model="local", base_url="http://127.0.0.1:1/v1", temperature=0.7
        ),
        "max_tokens": OpenAIProvider(
            model="local", base_url="http://127.0.0.1:1/v1", max_tokens=50
        ),
        "json_mode": OpenAIProvider(
            model="local", base_url="http://127.0.0.1:1/v1", json_mode=False
        ),
    }
    for what, prov in other.items():
        assert cache_key(prov, messages) != key, what
    prompt = [{"role": "system", "content": "P2"}, messages[1]]
    assert cache_key(base, prompt) != key
    # the API key, a trailing slash and the URL's password are not part of it
    same = [
        OpenAIProvider(model="local", base_url="http://127.0.0.1:1/v1", api_key="k2"),
        OpenAIProvider(model="local", base_url="http://127.0.0.1:1/v1/"),
    ]
    assert {cache_key(p, messages) for p in same} == {key}
    a = OpenAIProvider(model="local", base_url="http://u:pw-one@127.0.0.1:1/v1")
    b = OpenAIProvider(model="local", base_url="http://u:pw-two@127.0.0.1:1/v1")
    assert cache_key(a, messages) == cache_key(b, messages) != key


# --------------------------------------------------------------------------- 2. outputs


def test_out_over_an_input_is_refused(tmp_path: Path, bars: Path) -> None:
    trades = trades_file(tmp_path)
    link = tmp_path / "another-name.json"
    link.symlink_to(trades)
    before = trades.read_bytes()
    for out in (trades, link):
        fails(
            llm(*evaluate_args(out, trades, bars, tmp_path / "cache")),
            f"--out {out} is also an input of this command",
        )
    assert trades.read_bytes() == before
    # the bars and a replay file are inputs too
    fails(llm(*evaluate_args(bars, trades, bars, tmp_path / "cache")), "is also an input")
    assert not journal_path(trades).exists()


def test_out_over_an_unrelated_csv_is_refused(tmp_path: Path, bars: Path) -> None:
    trades = trades_file(tmp_path)
    mine = tmp_path / "portfolio.csv"
    mine.write_text("date,close\n2024-01-02,100.5\n2024-01-03,101.0\n")
    before = mine.read_bytes()
    line = fails(
        llm(*evaluate_args(mine, trades, bars, tmp_path / "cache")),
        f"{mine} exists and is not a decisions file of llm evaluate",
        "its columns: date, close",
        "choose another output file",
    )
    assert "missing trade_id" in line
    assert mine.read_bytes() == before and not journal_path(mine).exists()


def test_out_over_another_prompts_or_providers_decisions_is_refused(
    tmp_path: Path, bars: Path
) -> None:
    trades, cache = trades_file(tmp_path), tmp_path / "cache"
    out = tmp_path / "decisions.csv"
    succeeds(llm(*evaluate_args(out, trades, bars, cache, prompt="balanced")))
    before = out.read_bytes()
    fails(
        llm(*evaluate_args(out, trades, bars, cache, prompt="conservative")),
        f"{out} holds decisions of prompt 'balanced'; this run asks prompt 'conservative'",
        "choose another output file, or ask prompts 'balanced', 'conservative' to continue it",
    )
    with ChatServer(always(Ok(APPROVE))) as server:
        fails(
            llm(*evaluate_args(out, trades, bars, cache, url=server.base_url)),
            f"{out} holds decisions from heuristic rule (not an LLM)",
            f"this run asks local via {server.base_url}",
        )
        assert server.requests == 0  # refused before any request
    assert out.read_bytes() == before


def test_a_decisions_file_of_the_same_source_is_continued_with_every_row_kept(
    tmp_path: Path, bars: Path
) -> None:
    first, later = trades_file(tmp_path, slice(0, 4)), trades_file(tmp_path, slice(4, 6), "b.json")
    cache, out = tmp_path / "cache", tmp_path / "decisions.csv"
    succeeds(llm(*evaluate_args(out, first, bars, cache)))
    kept = load("llm_decisions", out)
    succeeds(llm(*evaluate_args(out, later, bars, cache)))  # other trades: appended
    both = load("llm_decisions", out)
    assert len(both) == 6 and both["trade_id"].is_unique
    pd.testing.assert_frame_equal(both.head(4), kept)  # the first run's rows, in place
    # another prompt added to the same file: appended too, nothing lost
    succeeds(llm(*evaluate_args(out, first, bars, cache, prompt=["balanced", "conservative"])))
    three = load("llm_decisions", out)
    assert len(three) == 10
    pd.testing.assert_frame_equal(three.head(6), both)
    assert sorted(three["prompt_variant"].value_counts().items()) == [
        ("balanced", 6),
        ("conservative", 4),
    ]


def test_a_journal_that_is_not_one_is_kept(tmp_path: Path, bars: Path) -> None:
    trades, out = trades_file(tmp_path), tmp_path / "decisions.csv"
    notes = journal_path(out)
    notes.write_text("my notes\nsecond line\n")
    fails(
        llm(*evaluate_args(out, trades, bars, tmp_path / "cache")),
        f"{notes} exists and is not a journal of llm evaluate (line 1: 'my notes')",
    )
    assert notes.read_text() == "my notes\nsecond line\n" and not out.exists()


def test_a_run_after_a_torn_journal_line_keeps_what_it_journals(tmp_path: Path) -> None:
    """Killed twice: the second run's records are not glued to the first kill's torn line (they
    used to be, and were asked a third time)."""
    trades = load("trades", PATHS.sample / "trades.json").head(4)
    out = tmp_path / "d.csv"
    config = EvalConfig(concurrency=1, timeout=2, retries=0)
    with ChatServer(always(Ok(APPROVE))) as server:
        prov = OpenAIProvider(model="local", base_url=server.base_url)
        whole = evaluate(trades.head(1), prov, BALANCED, config=config, progress=False)
        line = json.dumps(whole.decisions.iloc[0].to_dict(), default=str)
        journal_path(out).write_text(line + "\n" + line[:30])  # killed while writing

        def killed(done: int, total: int) -> None:
            raise RuntimeError("killed")

        with pytest.raises(RuntimeError, match="killed"):
            evaluate(trades, prov, BALANCED, out=out, config=config, progress=killed)
        # the records there (a request in flight at the kill may have finished too)
        journaled = journal_path(out).read_text().count('{"trade_id": ') - 1
        assert journaled >= 2
        before = server.requests
        result = evaluate(trades, prov, BALANCED, out=out, config=config, progress=False)
        assert server.requests - before == 4 - journaled  # none of them asked again
    assert result.resumed == journaled and result.errors == 0
    assert len(load("llm_decisions", out)) == 4


def test_out_in_a_format_the_decisions_cannot_be_written_in_is_refused_before_any_work(
    tmp_path: Path, bars: Path
) -> None:
    out = tmp_path / "decisions.txt"
    fails(
        llm(*evaluate_args(out, tmp_path / "nowhere.json", bars, tmp_path / "cache")),
        f"{out}: cannot write decisions with this extension; use one of .csv",
    )
    assert list(tmp_path.iterdir()) == []  # the (missing) trades were not even read


def test_summary_out_over_an_input_or_an_unrelated_file_is_refused(tmp_path: Path) -> None:
    """60 sample trades (enough for the analysis to run) on the built-in bars."""
    trades = trades_file(tmp_path, slice(0, 60))
    decisions = tmp_path / "d.csv"
    evaluate(load("trades", trades), HeuristicProvider(), BALANCED, out=decisions, progress=False)
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    kept = {p: p.read_bytes() for p in (decisions, trades, notes)}
    base = ["analyze", "--decisions", decisions, "--trades", trades]
    fails(llm(*base, "--summary-out", decisions), f"--summary-out {decisions} is also an input")
    fails(llm(*base, "--summary-out", trades), f"--summary-out {trades} is also an input")
    fails(
        llm(*base, "--summary-out", notes),
        f"--summary-out {notes} exists and is not a summary of llm analyze",
    )
    assert {p: p.read_bytes() for p in kept} == kept
    # a summary is replaced by the next one
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"provider": "x", "verdict_code": "untested", "methods": {}}))
    succeeds(llm(*base, "--summary-out", summary))
    assert json.loads(summary.read_text())["provider"] == "heuristic rule (not an LLM)"


# --------------------------------------------------------------------------- 3. retry errors


def test_retry_errors_asks_again_what_the_cache_holds_as_errors(tmp_path: Path, bars: Path) -> None:
    trades, cache, out = trades_file(tmp_path), tmp_path / "cache", tmp_path / "d.csv"
    state = {"broken": True}

    def script(request: dict[str, Any], n: int) -> Action:
        return Malformed("<html>upstream busy</html>") if state["broken"] else Ok(APPROVE)

    with ChatServer(script) as server:
        first = llm(*evaluate_args(out, trades, bars, cache, url=server.base_url))
        assert server.requests == 4
        state["broken"] = False
        # without --retry-errors the recorded errors stand (no request) ...
        again = llm(*evaluate_args(out, trades, bars, cache, url=server.base_url))
        assert server.requests == 4
        # ... with it they are asked again, not replayed from the cache
        args = evaluate_args(out, trades, bars, cache, url=server.base_url, retry_errors=True)
        retried = llm(*args)
        assert server.requests == 8
        succeeds(retried)
    fails(first, "all 4 requests of this run failed (e.g. not a chat completion: <html>")
    fails(again, "every one of the 4 decisions is an error", "run again with --retry-errors")
    d = load("llm_decisions", out)
    assert len(d) == 4 and d["error"].isna().all() and set(d["decision"]) == {"approve"}
    assert not d["cached"].any()


# --------------------------------------------------------------------------- 4. all failed


def test_every_request_failing_exits_1_with_one_line(tmp_path: Path, bars: Path) -> None:
    trades, cache = trades_file(tmp_path), tmp_path / "cache"
    out = tmp_path / "d.csv"
    with ChatServer(always(ServerError(401))) as server:
        result = llm(*evaluate_args(out, trades, bars, cache, url=server.base_url))
    fails(
        result,
        "all 4 requests of this run failed (e.g. HTTP 401",
        f"the errors are recorded in {out}",
        "--retry-errors",
    )
    assert len(load("llm_decisions", out)) == 4  # what came back is on record
    # some failing is not all failing
    bad = f"Date: {SAMPLE[0]['date'][:10]}\nMarket Context:\n- Underlying: {SAMPLE[0]['ticker']} "
    with ChatServer(
        lambda r, n: ServerError(401) if bad in r["messages"][1]["content"] else Ok(APPROVE)
    ) as server:
        out2 = tmp_path / "d2.csv"
        result = succeeds(llm(*evaluate_args(out2, trades, bars, cache, url=server.base_url)))
    assert "1 errors" in result.stdout


# --------------------------------------------------------------------------- 5. not a completion


@pytest.mark.parametrize(
    "body",
    [
        '{"object": "error", "message": "model \\"local\\" is not loaded"}',
        '{"id": "x", "choices": []}',
        "<html><body>" + "Bad gateway. " * 40 + "</body></html>",
        "",
    ],
)
def test_a_body_that_is_not_a_chat_completion_is_named_and_kept(body: str) -> None:
    with ChatServer(always(Malformed(body))) as server:
        result = evaluate(
            pd.DataFrame(load("trades", PATHS.sample / "trades.json").head(1)),
            OpenAIProvider(model="local", base_url=server.base_url),
            BALANCED,
            config=EvalConfig(concurrency=1, timeout=2, retries=0),
            progress=False,
        )
    r = result.decisions.iloc[0]
    one_line = " ".join(body.split())
    shown = one_line[:200] + ("…" if len(one_line) > 200 else "") if body else "(an empty body)"
    assert r["error"] == f"not a chat completion: {shown}"
    assert (r["raw"] == body if body else not r["raw"]) and pd.isna(r["decision"])
    assert result.failed


def test_an_empty_completion_keeps_the_whole_answer(tmp_path: Path) -> None:
    with ChatServer(always(Ok(""))) as server:
        out = tmp_path / "d.csv"
        evaluate(
            load("trades", PATHS.sample / "trades.json").head(1),
            OpenAIProvider(model="local", base_url=server.base_url),
            BALANCED,
            out=out,
            config=EvalConfig(concurrency=1, timeout=2, retries=0),
            progress=False,
        )
    r = load("llm_decisions", out).iloc[0]
    assert r["error"] == "bad reply: empty reply"
    assert json.loads(r["raw"])["object"] == "chat.completion"  # the body, not nothing


# --------------------------------------------------------------------------- 6. credentials


def test_credentials_in_the_base_url_are_masked_everywhere(tmp_path: Path, bars: Path) -> None:
    secret = "s3cr3t-pw"
    trades, cache, out = trades_file(tmp_path), tmp_path / "cache", tmp_path / "d.csv"
    first = f"Date: {SAMPLE[0]['date'][:10]}\nMarket Context:\n- Underlying: {SAMPLE[0]['ticker']} "
    url_box: list[str] = []

    def script(request: dict[str, Any], n: int) -> Action:
        if first in request["messages"][1]["content"]:  # a proxy that quotes the URL
            return Malformed(f"<html>proxy error for {url_box[0]}/chat/completions</html>")
        return Ok(APPROVE)

    with ChatServer(script) as server:
        url = server.base_url.replace("http://", f"http://user:{secret}@")
        url_box.append(url)
        masked = server.base_url.replace("http://", "http://user:***@")
        result = succeeds(llm(*evaluate_args(out, trades, bars, cache, url=url)))
        assert server.requests == 4
    d = load("llm_decisions", out)
    assert set(d["provider"]) == {f"local via {masked}"}
    assert d["raw"].dropna().str.contains(masked, regex=False).all()
    written = [p.read_text() for p in [out, *cache.rglob("*")] if p.is_file()]
    assert len(written) == 5
    assert not any(secret in text for text in [*written, result.stdout, result.stderr])
    assert masked in result.stdout
    # a server that cannot be reached: the error line does not show it either
    dead = closed_port_url().replace("http://", f"http://user:{secret}@")
    result = llm(*evaluate_args(tmp_path / "e.csv", trades, bars, cache, url=dead))
    assert secret not in fails(result) + result.stdout + result.stderr
    assert secret not in (tmp_path / "e.csv").read_text()
    assert secret not in repr(OpenAIProvider(model="m", base_url=dead))


def test_mask_url() -> None:
    assert mask_url("http://user:secret@host:8080/v1") == "http://user:***@host:8080/v1"
    assert mask_url("https://sk-token@host/v1") == "https://***@host/v1"
    assert mask_url("https://host/v1?api_key=abc&x=1") == "https://host/v1?api_key=***&x=1"
    assert mask_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"


# --------------------------------------------------------------------------- 7. numbers


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("concurrency", "0", "--concurrency must be at least 1, got 0"),
        ("concurrency", "-3", "--concurrency must be at least 1, got -3"),
        ("retries", "-1", "--retries must be at least 0, got -1"),
        ("timeout", "0", "--timeout must be a finite number of seconds above 0, got 0"),
        ("timeout", "-2.5", "--timeout must be a finite number of seconds above 0, got -2.5"),
        ("timeout", "nan", "--timeout must be a finite number of seconds above 0, got nan"),
        ("timeout", "inf", "--timeout must be a finite number of seconds above 0, got inf"),
        ("base-url", "localhost:8080", "--base-url 'localhost:8080' is not an http:// or"),
    ],
)
def test_numeric_options_are_checked_before_any_work(
    tmp_path: Path, bars: Path, option: str, value: str, message: str
) -> None:
    out = tmp_path / "d.csv"
    # trades that do not exist: the option must be refused before they are looked for
    args = evaluate_args(out, tmp_path / "nowhere.json", bars, tmp_path / "cache")
    line = fails(llm(*args, f"--{option}", value))
    assert line == f"error: {message}" or line.startswith(f"error: {message}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value"), [("concurrency", "0"), ("timeout", "nan"), ("retries", "-1")]
)
def test_numeric_options_are_not_accepted(
    tmp_path: Path, bars: Path, option: str, value: str
) -> None:
    """With trades that load, a bad number is still refused (it used to run: exit 0)."""
    out = tmp_path / "d.csv"
    args = evaluate_args(out, trades_file(tmp_path), bars, tmp_path / "cache")
    fails(llm(*args, f"--{option}", value), f"error: --{option} must be ")
    assert not out.exists()


def test_the_library_checks_its_numbers_too(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="concurrency must be at least 1, got 0"):
        EvalConfig(concurrency=0)
    with pytest.raises(InputError, match="timeout must be a finite number of seconds"):
        EvalConfig(timeout=math.nan)
    with pytest.raises(InputError, match="retries must be at least 0, got -1"):
        EvalConfig(retries=-1)
    with pytest.raises(InputError, match="temperature must be a number from 0 to 2, got nan"):
        OpenAIProvider(model="m", base_url="http://127.0.0.1:1/v1", temperature=math.nan)
    prices = tmp_path / "prices.yaml"
    prices.write_text("local: {input: .nan, output: 1}\n")
    with pytest.raises(InputError, match=f"{prices}: the prices of 'local' must be finite"):
        Prices.load(prices)
    with pytest.raises(InputError, match="cannot read the prices"):
        Prices.load(tmp_path / "missing.yaml")


def test_the_harness_refuses_an_output_it_must_not_continue(tmp_path: Path) -> None:
    """The notebook's path (``evaluate`` with ``out=``) is guarded like the command line."""
    trades = load("trades", PATHS.sample / "trades.json").head(3)
    out = tmp_path / "d.csv"
    evaluate(trades, HeuristicProvider(), BALANCED, out=out, progress=False)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="holds decisions of prompt 'balanced'"):
        evaluate(trades, HeuristicProvider(), load_prompts(["aggressive"]), out=out)
    assert out.read_bytes() == before
