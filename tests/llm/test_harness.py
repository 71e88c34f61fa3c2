"""The evaluation harness against a real OpenAI-compatible server on 127.0.0.1
(``research.testing.chat_server``) with scripted faults keyed on each trade's date and ticker:
429 (with ``Retry-After``), 5xx, hangs past the timeout, dropped connections, malformed bodies and
wrong-schema replies all end in exactly one record per (trade, prompt), the transient ones with a
valid decision after exactly two attempts and the request count the hand-computed one; the server's
``Retry-After`` is waited; the server receives the prompt and the entry-only context; the cache
answers a re-run with zero requests; a finished file is not asked again, ``retry_errors`` asks its
errors again, a torn journal line is asked again; ``research llm evaluate`` killed with SIGKILL
resumes from its journal without asking again what the journal holds; the API
key is used but never written (records, journal, cache, output) and scrubbed from error texts;
requests in flight never exceed the concurrency; the heuristic (labelled "not an LLM") and replay
providers; and the command line's output contract and bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from research.config import PATHS
from research.data.loaders import load
from research.llm.context import build_context, trade_ids
from research.llm.harness import EvalConfig, EvalResult, evaluate, journal_path
from research.llm.prompts import load_prompts
from research.llm.providers import (
    FatalError,
    OpenAIProvider,
    TransportError,
    make_provider,
)
from research.testing.bars import write_sample_period_bars
from research.testing.chat_server import (
    Action,
    ChatServer,
    Drop,
    Hang,
    Malformed,
    Ok,
    RateLimited,
    ServerError,
)
from research.testing.cli import CliResult, run_cli

EXE = Path(sys.executable).with_name("research")
KEY = "sk-test-SECRET-123"
FAST = EvalConfig(concurrency=4, timeout=0.5, retries=2, backoff=0.01, max_backoff=1.0)
"""Concurrency 4: ``ChatServer`` listens with a backlog of 5, so more simultaneous connects can
wait for a SYN retransmit (1 s), past these short timeouts."""
TRADES = load("trades", PATHS.sample / "trades.json")
BALANCED = load_prompts(["balanced"])
TWO = load_prompts(["balanced", "conservative"])


# --------------------------------------------------------------------------- helpers


def who(request: dict[str, Any]) -> tuple[str, str]:
    """(entry date, ticker) of the trade a request asks about, read from the user message."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    date = re.search(r"^Date: (\S+)$", user, re.M)
    ticker = re.search(r"^- Underlying: (\S+) at ", user, re.M)
    assert date and ticker, user
    return date.group(1), ticker.group(1)


def key_of(trade: pd.Series) -> tuple[str, str]:
    return pd.Timestamp(trade["date"]).strftime("%Y-%m-%d"), str(trade["ticker"])


def answer(date: str, ticker: str) -> dict[str, Any]:
    """The scripted model's decision for a trade (a function of its date and ticker)."""
    day = int(date[-2:])
    return {
        "decision": "approve" if ticker == "SPX" else "reject",
        "confidence": day / 40,
        "contracts": 1 + day % 5,
        "reason": f"{ticker} on {date}",
    }


def ok(request: dict[str, Any]) -> Ok:
    return Ok(json.dumps(answer(*who(request))), prompt_tokens=100, completion_tokens=20)


def provider(server: ChatServer, key: str | None = KEY) -> OpenAIProvider:
    return OpenAIProvider(model="m", base_url=server.base_url, api_key=key)


def run(trades: pd.DataFrame, prov: Any, prompts: Any = BALANCED, **kw: Any) -> EvalResult:
    kw.setdefault("config", FAST)
    return evaluate(trades, prov, prompts, progress=False, **kw)


def by_id(result: EvalResult, prompt: str = "balanced") -> pd.DataFrame:
    d = result.decisions
    return d[d["prompt_variant"] == prompt].set_index("trade_id")


def files_text(*roots: Path) -> dict[Path, str]:
    """Every file under the roots, as text."""
    out = {}
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for p in paths:
            out[p] = p.read_bytes().decode("utf-8", "replace")
    return out


def _cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """``research llm ARGS`` in-process; ``env``, as for a subprocess, is the whole environment
    (a variable not in it is unset for the call)."""
    overlay = None if env is None else {k: env.get(k) for k in {*os.environ, *env}}
    return run_cli("llm", *args, env=overlay)


def _clis(*runs: tuple[str, ...]) -> list[CliResult]:
    """Independent commands, one after the other (in-process, no interpreter start each)."""
    return [_cli(*args) for args in runs]


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any outgoing connection fail the test."""
    import socket

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def small_bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic SPX and IXIC bars over the first sample trades' dates (the CLI loads them in a
    fraction of the embedded history's time)."""
    return write_sample_period_bars(tmp_path_factory.mktemp("bars") / "bars.csv")


def cli_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "OPENROUTER_API_KEY") and not k.startswith("REGIME_LAB_LLM")
    }
    env["OPENROUTER_API_KEY"] = KEY
    return env


# --------------------------------------------------------------------------- faults

TRANSIENT: dict[str, Callable[[], Action]] = {
    "429": lambda: RateLimited(0.2),
    "500": lambda: ServerError(500),
    "503": lambda: ServerError(503),
    "hang": lambda: Hang(1.5),  # past FAST.timeout = 0.5 s
    "drop": lambda: Drop(),
}
KINDS = [*TRANSIENT, *TRANSIENT, "malformed", "schema", "always500", "ok", "ok", "ok"]
WRONG_SCHEMA = '{"decision":"maybe","confidence":2}'
REQUESTS_PER_KIND = {
    **{k: 2 for k in TRANSIENT},
    "malformed": 1,
    "schema": 1,
    "always500": FAST.retries + 1,
    "ok": 1,
}


def fault_script(kinds: dict[tuple[str, str], str]) -> Callable[[dict[str, Any], int], Action]:
    def script(request: dict[str, Any], n: int) -> Action:
        kind = kinds[who(request)]
        if kind in TRANSIENT:
            return TRANSIENT[kind]() if n == 0 else ok(request)
        if kind == "malformed":
            return Malformed()
        if kind == "schema":
            return Ok(WRONG_SCHEMA)
        if kind == "always500":
            return ServerError(500)
        return ok(request)

    return script


def test_faults_end_in_one_record_each(tmp_path: Path) -> None:
    trades = TRADES.head(len(KINDS))
    kinds = {key_of(t): k for (_, t), k in zip(trades.iterrows(), KINDS, strict=True)}
    ids = trade_ids(trades).tolist()
    kind_of = dict(zip(ids, KINDS, strict=True))
    out = tmp_path / "out.csv"
    with ChatServer(fault_script(kinds)) as server:
        result = run(trades, provider(server), TWO, out=out)
        assert server.requests == 2 * sum(REQUESTS_PER_KIND[k] for k in KINDS) == 56
    assert result.requests == 56  # the harness's tally agrees with the server
    d = result.decisions
    assert len(d) == 2 * len(trades)
    assert sorted(zip(d["trade_id"], d["prompt_variant"], strict=True)) == sorted(
        (t, p.name) for t in ids for p in TWO
    )
    assert result.errors == 2 * 3 and int(d["error"].notna().sum()) == 6
    for prompt in ("balanced", "conservative"):
        rows = by_id(result, prompt)
        for tid, kind in kind_of.items():
            r = rows.loc[tid]
            if kind in TRANSIENT or kind == "ok":
                want = answer(tid[:10], tid.split("-")[3])
                assert pd.isna(r["error"]), (kind, r["error"])
                assert (r["decision"], r["confidence"], r["contracts"], r["reason"]) == (
                    want["decision"],
                    want["confidence"],
                    want["contracts"],
                    want["reason"],
                ), kind
                assert r["attempts"] == (2 if kind in TRANSIENT else 1), kind
                assert r["tokens"] == 120 and not r["cached"]
            elif kind == "malformed":
                assert "not a chat completion" in r["error"] and pd.isna(r["decision"])
                assert r["attempts"] == 1
            elif kind == "schema":
                assert (
                    r["error"] == "bad reply: decision must be 'approve' or 'reject', got 'maybe'"
                )
                assert r["raw"] == WRONG_SCHEMA and pd.isna(r["decision"])
                assert r["attempts"] == 1
            else:
                assert r["error"] == "gave up after 3 attempts: HTTP 500 from the server"
                assert r["attempts"] == FAST.retries + 1 and pd.isna(r["decision"])
            if kind == "429":
                assert r["latency_s"] >= 0.2  # waited the Retry-After
            if kind == "hang":
                assert r["latency_s"] >= FAST.timeout  # waited the timeout, then asked again
    # the output satisfies the contract; the journal is gone once the file is written
    assert len(load("llm_decisions", out)) == 32
    assert not journal_path(out).exists()


def test_requests_carry_the_prompt_and_the_entry_context_only() -> None:
    """What the server receives: the prompt as the system message and ``build_context`` of the
    trade (with its regime) as the user message; the outcome columns change nothing."""
    trades = TRADES.head(4)
    # as entry_regimes gives them: object dtype, None where unknown
    regimes = pd.Series(["LOW_VOL_BULLISH", None, "HIGH_VOL_BEARISH", None], dtype=object)
    seen: list[dict[str, Any]] = []

    def script(request: dict[str, Any], n: int) -> Action:
        seen.append(request)
        return ok(request)

    flipped = trades.assign(outcome="loss", pnl=-999.0, exit_reason="stop_loss", hold_days=0)
    with ChatServer(script) as server:
        run(trades, provider(server), regimes=regimes, config=EvalConfig(concurrency=1))
        run(flipped, provider(server), regimes=regimes, config=EvalConfig(concurrency=1))
        assert server.requests == 8
    first, second = seen[:4], seen[4:]
    for (_, row), regime, request in zip(trades.iterrows(), regimes, first, strict=True):
        assert request["messages"] == [
            {"role": "system", "content": BALANCED[0].text},
            {"role": "user", "content": build_context(row.to_dict(), regime)},
        ]
        assert request["model"] == "m" and request["temperature"] == 0
        assert request["response_format"] == {"type": "json_object"}
    assert [r["messages"] for r in second] == [r["messages"] for r in first]
    assert "Market regime: LOW_VOL_BULLISH" in first[0]["messages"][1]["content"]
    assert "Market regime" not in first[1]["messages"][1]["content"]


@pytest.mark.parametrize("dtype", ["str", "string"])
def test_a_missing_regime_in_a_pandas_series_is_no_regime_line(dtype: str) -> None:
    """pandas marks a missing string as NaN (``str``) or ``pd.NA`` (``string``): either is "no
    regime", neither "Market regime: nan" nor a crash."""
    trades = TRADES.head(2)
    regimes = pd.Series(["LOW_VOL_BULLISH", None], dtype=dtype)
    seen: list[str] = []

    def script(request: dict[str, Any], n: int) -> Action:
        seen.append(request["messages"][1]["content"])
        return ok(request)

    with ChatServer(script) as server:
        result = run(trades, provider(server), regimes=regimes, config=EvalConfig(concurrency=1))
        assert server.requests == 2
    assert result.errors == 0
    assert seen[0] == build_context(trades.iloc[0].to_dict(), "LOW_VOL_BULLISH")
    assert seen[1] == build_context(trades.iloc[1].to_dict(), None)


def test_client_errors_are_not_retried() -> None:
    trades = TRADES.head(3)
    status = dict(zip((key_of(t) for _, t in trades.iterrows()), (400, 401, 404), strict=True))
    with ChatServer(lambda request, n: ServerError(status[who(request)])) as server:
        result = run(trades, provider(server))
        assert server.requests == 3
    d = result.decisions
    assert d["attempts"].tolist() == [1, 1, 1]
    assert [e.split(":")[0] for e in d["error"]] == ["HTTP 400", "HTTP 401", "HTTP 404"]
    assert d["decision"].isna().all()


def test_non_completion_body_is_recorded_raw() -> None:
    """A 200 whose body is not a chat completion: an error, with the body kept in ``raw``."""
    body = "<html>upstream proxy error</html>"
    with ChatServer(lambda request, n: Malformed(body)) as server:
        result = run(TRADES.head(1), provider(server))
        assert server.requests == 1
    r = result.decisions.iloc[0]
    assert "not a chat completion" in r["error"]
    assert r["raw"] == body


def test_retry_after_is_honoured() -> None:
    def script(request: dict[str, Any], n: int) -> Action:
        return RateLimited(0.3) if n == 0 else ok(request)

    config = EvalConfig(concurrency=2, timeout=1.0, retries=2, backoff=0.01, max_backoff=5.0)
    with ChatServer(script) as server:
        result = run(TRADES.head(2), provider(server), config=config)
        assert server.requests == 4
    d = result.decisions
    assert d["attempts"].tolist() == [2, 2] and d["error"].isna().all()
    assert (d["latency_s"] >= 0.3).all(), d["latency_s"].tolist()
    # the tiny backoff alone would have retried within ~0.01 s
    assert (d["latency_s"] < 2.0).all()


def test_retry_after_as_http_date() -> None:
    from email.utils import formatdate

    from research.llm.providers import _retry_after

    assert _retry_after({"retry-after": "1.5"}) == 1.5
    assert _retry_after({"Retry-After": "-3"}) == 0.0
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None
    wait = _retry_after({"retry-after": formatdate(time.time() + 20, usegmt=True)})
    assert wait is not None and 17 <= wait <= 21


# --------------------------------------------------------------------------- cache


def test_cache_answers_a_rerun_without_requests(tmp_path: Path) -> None:
    trades = TRADES.head(12)
    special = {key_of(trades.iloc[3]): "schema", key_of(trades.iloc[7]): "malformed"}

    def script(request: dict[str, Any], n: int) -> Action:
        kind = special.get(who(request))
        return Ok(WRONG_SCHEMA) if kind == "schema" else Malformed() if kind else ok(request)

    cache = tmp_path / "cache"
    cols = ["trade_id", "prompt_variant", "decision", "confidence", "contracts", "reason", "error"]
    with ChatServer(script) as server:
        first = run(trades, provider(server), TWO, out=tmp_path / "a.csv", cache_dir=cache)
        assert server.requests == first.requests == 24 and first.cache_hits == 0
        assert not first.decisions["cached"].any()
        # same cache, new output file, and another key (the key is not part of the cache key)
        second = run(
            trades, provider(server, "other-key"), TWO, out=tmp_path / "b.csv", cache_dir=cache
        )
        assert server.requests == 24  # zero new requests
        assert second.requests == 0 and second.cache_hits == 24 and second.resumed == 0
        pd.testing.assert_frame_equal(first.decisions[cols], second.decisions[cols])
        assert second.decisions["cached"].all()
        assert (second.decisions["attempts"] == 0).all()
        assert second.errors == first.errors == 4
        # another prompt text is another question: asked again
        mine = tmp_path / "prompts"
        mine.mkdir()
        (mine / "balanced.md").write_text("Be brief. Return JSON.")
        third = run(trades, provider(server), load_prompts(["balanced"], mine), cache_dir=cache)
        assert third.requests == 12 and server.requests == 36
    # every answer is cached: completions (the wrong-schema one as its text) and the
    # malformed body as an error
    stored = [json.loads(t) for t in files_text(cache).values()]
    assert len(stored) == 36
    assert sum("error" in b for b in stored) == 3
    assert sum(b.get("text") == WRONG_SCHEMA for b in stored) == 3


def test_rerun_of_a_finished_file_and_retry_errors(tmp_path: Path) -> None:
    """A finished output is not asked again; ``retry_errors`` asks again only its errors."""
    trades = TRADES.head(6)
    failing = {"on": True}
    bad = key_of(trades.iloc[2])

    def script(request: dict[str, Any], n: int) -> Action:
        return ServerError(500) if failing["on"] and who(request) == bad else ok(request)

    out = tmp_path / "out.csv"
    once = EvalConfig(concurrency=2, timeout=1.0, retries=0, backoff=0.01)
    with ChatServer(script) as server:
        first = run(trades, provider(server), out=out, config=once)
        assert server.requests == 6 and first.errors == 1
        again = run(trades, provider(server), out=out, config=once)
        assert server.requests == 6 and again.resumed == 6 and again.errors == 1
        failing["on"] = False
        retry = EvalConfig(concurrency=2, timeout=1.0, retries=0, backoff=0.01, retry_errors=True)
        fixed = run(trades, provider(server), out=out, config=retry)
        assert server.requests == 7 and fixed.resumed == 5 and fixed.errors == 0
    final = load("llm_decisions", out)
    assert final["error"].isna().all() and len(final) == 6
    tid = trade_ids(trades).iloc[2]
    assert final.set_index("trade_id").loc[tid, "decision"] == answer(*bad)["decision"]


def test_journal_resume_skips_a_torn_last_line(tmp_path: Path) -> None:
    trades = TRADES.head(6)
    with ChatServer(lambda request, n: ok(request)) as server:
        done = run(trades.head(3), provider(server), out=tmp_path / "first.csv")
        assert server.requests == 3
        out = tmp_path / "out.csv"
        lines = [json.dumps(r, default=str) for r in done.decisions.to_dict(orient="records")]
        journal_path(out).write_text("\n".join(lines) + "\n" + lines[0][:40])  # torn by a kill
        result = run(trades, provider(server), out=out)
        assert server.requests == 3 + 3
    assert result.resumed == 3 and result.requests == 3 and result.errors == 0
    final = load("llm_decisions", out)
    assert final["trade_id"].tolist() == trade_ids(trades).tolist()
    assert not journal_path(out).exists()


# --------------------------------------------------------------------------- secrets


@dataclass(repr=False)
class EchoingProvider(OpenAIProvider):
    """An SDK whose error messages quote the key (as some do with request details)."""

    async def complete(self, messages: Any, **kw: Any) -> Any:
        try:
            return await super().complete(messages, **kw)
        except TransportError as exc:
            raise TransportError(f"{exc} [auth {self.api_key}]") from exc
        except FatalError as exc:
            raise FatalError(
                f"{exc} [auth {self.api_key}]", raw=exc.raw, cacheable=exc.cacheable
            ) from exc


def test_key_is_used_but_never_written(tmp_path: Path) -> None:
    trades = TRADES.head(10)
    kinds = dict(
        zip(
            (key_of(t) for _, t in trades.iterrows()),
            ["reason", "bad", "malformed", "500", "401", "ok", "ok", "ok", "ok", "ok"],
            strict=True,
        )
    )

    def script(request: dict[str, Any], n: int) -> Action:
        kind = kinds[who(request)]
        if kind == "reason":  # a model that repeats the key
            return Ok(json.dumps({**answer(*who(request)), "reason": f"key is {KEY}"}))
        if kind == "bad":
            return Ok(f"I cannot decide. {KEY}")
        if kind == "malformed":
            return Malformed(f"{{oops {KEY}")
        if kind == "500":
            return ServerError(500)
        if kind == "401":
            return ServerError(401)
        return ok(request)

    out_dir, cache = tmp_path / "out", tmp_path / "cache"
    out = out_dir / "decisions.csv"
    journal_seen: list[str] = []

    def progress(done: int, total: int) -> None:
        journal_seen.append(journal_path(out).read_text())

    prov = EchoingProvider(model="m", base_url="", api_key=KEY)
    with ChatServer(script) as server:
        prov.base_url = server.base_url
        result = evaluate(
            trades, prov, BALANCED, out=out, cache_dir=cache, config=FAST, progress=progress
        )
        assert server.authorizations == [f"Bearer {KEY}"] * server.requests
        assert server.requests == 1 + 1 + 1 + 3 + 1 + 5
    assert len(journal_seen) == 10 and journal_seen[-1].count("\n") == 10
    written = files_text(out_dir, cache)
    assert out in written and len(written) >= 7  # the output and the cached answers
    leaks = [p for p, text in written.items() if KEY in text]
    assert leaks == [] and not any(KEY in j for j in journal_seen)
    assert KEY not in result.decisions.to_csv()
    assert KEY not in repr(prov)
    # the texts that quoted the key are there, scrubbed
    rows = by_id(result)
    ids = trade_ids(trades).tolist()
    assert rows.loc[ids[0], "reason"] == "key is ***"
    assert rows.loc[ids[1], "raw"] == "I cannot decide. ***"
    assert rows.loc[ids[3], "error"] == (
        "gave up after 3 attempts: HTTP 500 from the server [auth ***]"
    )
    assert rows.loc[ids[4], "error"].startswith("HTTP 401: ")
    assert rows.loc[ids[4], "error"].endswith("[auth ***]")
    assert rows.loc[ids[2], "error"].endswith("[auth ***]")
    cached_raw = [json.loads(t).get("raw") for t in written.values() if '"raw"' in t]
    assert "{oops ***" in cached_raw


# --------------------------------------------------------------------------- concurrency


def test_requests_in_flight_never_exceed_the_concurrency() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def script(request: dict[str, Any], n: int) -> Action:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return ok(request)

    config = EvalConfig(concurrency=4, timeout=5.0, retries=0, backoff=0.01)
    with ChatServer(script) as server:
        start = time.perf_counter()
        result = run(TRADES.head(20), provider(server), config=config)
        wall = time.perf_counter() - start
        assert server.requests == 20
    assert state["max"] == 4  # reached, never passed
    assert wall >= 1.0  # 20 requests of 0.2 s, 4 at a time (no upper bound: machines are noisy)
    assert result.errors == 0


# --------------------------------------------------------------------------- resume (CLI)


def test_cli_resumes_after_sigkill_without_asking_again(tmp_path: Path, small_bars: Path) -> None:
    trades_file = tmp_path / "trades.json"
    raw = json.loads((PATHS.sample / "trades.json").read_text())[:30]
    trades_file.write_text(json.dumps(raw))
    trades = load("trades", trades_file)
    ids = trade_ids(trades).tolist()
    asked: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def script(request: dict[str, Any], n: int) -> Action:
        with lock:
            asked[who(request)] += 1
        return ok(request)

    out_dir, cache = tmp_path / "out", tmp_path / "cache"
    out = out_dir / "out.csv"
    journal = journal_path(out)
    assert journal.name == "out.csv.partial.jsonl"
    with ChatServer(script, delay=0.2) as server:
        args = [
            str(EXE), "llm", "evaluate", "--provider", "openai", "--base-url", server.base_url,
            "--model", "m", "--trades", str(trades_file), "--out", str(out),
            "--cache", str(cache), "--concurrency", "2", "--timeout", "5",
            "--bars", str(small_bars),
        ]  # fmt: skip
        log = tmp_path / "first.log"
        with log.open("w") as fh:
            # a subprocess on purpose: it is killed with SIGKILL mid-run (the resume is in-process)
            proc = subprocess.Popen(args, stdout=fh, stderr=fh, env=cli_env())
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if journal.exists() and journal.read_text().count("\n") >= 5:
                    break
                assert proc.poll() is None, log.read_text()
                time.sleep(0.01)
            else:
                pytest.fail("the journal never reached 5 lines")
            assert proc.poll() is None
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert not out.exists()
        text = journal.read_text()
        complete = text[: text.rfind("\n") + 1].splitlines()
        records = [json.loads(line) for line in complete]  # every complete line parses
        journaled = {r["trade_id"] for r in records}
        assert 5 <= len(journaled) == len(records) < 30
        assert journaled <= set(ids)
        assert {r["prompt_variant"] for r in records} == {"balanced"}
        before = server.requests
        # the key was used, and is in none of the files the killed run left
        assert server.authorizations == [f"Bearer {KEY}"] * before
        assert [p for p, t in files_text(out_dir, cache).items() if KEY in t] == []

        second = _cli(*args[2:], env=cli_env())
        assert second.returncode == 0, second.stderr
        after = server.requests
        assert server.authorizations == [f"Bearer {KEY}"] * after
    assert f"{len(journaled)} resumed from an earlier run" in second.stdout
    assert not journal.exists()
    decisions = load("llm_decisions", out)
    assert sorted(decisions["trade_id"]) == sorted(ids)  # every trade exactly once
    rows = decisions.set_index("trade_id")
    for tid in journaled:  # taken from the journal as recorded, not from the cache
        assert not rows.loc[tid, "cached"] and rows.loc[tid, "attempts"] == 1
    key = {tid: key_of(t) for tid, (_, t) in zip(ids, trades.iterrows(), strict=True)}
    assert all(asked[key[tid]] == 1 for tid in journaled)
    twice = [tid for tid in ids if asked[key[tid]] > 1]
    assert len(twice) <= 2 and not set(twice) & journaled  # at most the ones in flight
    assert all(asked[key[tid]] >= 1 for tid in ids)
    assert max(asked.values()) <= 2
    tally = re.search(
        r"(\d+) requests, (\d+) answered from the cache, (\d+) resumed", second.stdout
    )
    assert tally, second.stdout
    requests, hits, resumed = map(int, tally.groups())
    assert requests == after - before and resumed == len(journaled)
    assert requests + hits + resumed == 30 and hits <= 2  # hits: answered but not journaled
    for tid in ids:
        want = answer(*key[tid])
        assert (rows.loc[tid, "decision"], rows.loc[tid, "confidence"]) == (
            want["decision"],
            want["confidence"],
        )
    assert [p for p, t in files_text(out_dir, cache).items() if KEY in t] == []
    assert KEY not in second.stdout + second.stderr


# --------------------------------------------------------------------------- heuristic, replay


def test_heuristic_is_deterministic_offline_and_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    no_network(monkeypatch)
    trades = TRADES.head(40)
    three = load_prompts(["aggressive", "balanced", "conservative"])
    a = run(trades, make_provider("heuristic"), three)
    b = run(trades, make_provider("heuristic"), three)
    cols = ["trade_id", "prompt_variant", "decision", "confidence", "contracts", "reason"]
    pd.testing.assert_frame_equal(a.decisions[cols], b.decisions[cols])
    assert "not an LLM" in a.provider and set(a.decisions["provider"]) == {a.provider}
    assert a.cache_hits == 0 and not a.online and a.errors == 0
    assert "offline: no requests" in a.text() and "0 errors" in a.text()
    assert a.requests == 0 and a.cache_hits == 0
    # trade 0: IV pct 42.1, R/R 14.9, VIX 13.2 -> 0.5 - 7.9/200 + 0.1/100 = 0.4615
    first = by_id(a).loc["2014-01-02-IXIC-4310-4370-2014-02-03"]
    assert (first["decision"], first["confidence"], first["contracts"]) == ("reject", 0.5385, 1)
    assert first["reason"] == "rule score 0.462 against a bar of 0.50"
    approved = {
        p: set(by_id(a, p).index[by_id(a, p)["decision"] == "approve"])
        for p in ("aggressive", "balanced", "conservative")
    }
    assert approved["conservative"] <= approved["balanced"] <= approved["aggressive"]
    assert len(approved["aggressive"]) > len(approved["conservative"])


def test_heuristic_reads_the_regime() -> None:
    trades = TRADES.head(40)
    calm = run(trades, make_provider("heuristic"), regimes=pd.Series(["LOW_VOL_BULLISH"] * 40))
    bear = run(trades, make_provider("heuristic"), regimes=pd.Series(["HIGH_VOL_BEARISH"] * 40))
    c, b = by_id(calm), by_id(bear)
    diff = (c["confidence"] - b["confidence"]).where(c["decision"] == "reject")
    # a bear regime lowers every score by 0.1 (until the clip at 0.05)
    assert (b["decision"] == "approve").sum() < (c["decision"] == "approve").sum()
    assert ((diff.dropna() + 0.1).abs() < 1e-3).sum() > 10


def test_replay_gives_back_a_recorded_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trades = TRADES.head(10)
    broken = {key_of(trades.iloc[2]), key_of(trades.iloc[6])}

    def script(request: dict[str, Any], n: int) -> Action:
        return Malformed() if who(request) in broken else ok(request)

    recorded = tmp_path / "recorded.csv"
    with ChatServer(script) as server:
        first = run(trades, provider(server), TWO, out=recorded)
        assert server.requests == 20
    no_network(monkeypatch)  # the server is gone anyway; replay must not try
    replay = make_provider("replay", replay_path=recorded)
    assert replay.model == "m" and "replayed from" in replay.label
    again = run(trades, replay, TWO)
    assert not again.online and again.cache_hits == 0
    cols = ["trade_id", "prompt_variant", "decision", "confidence", "contracts", "reason"]
    pd.testing.assert_frame_equal(first.decisions[cols], again.decisions[cols])
    assert again.errors == first.errors == 4
    for (_, a), (_, b) in zip(first.decisions.iterrows(), again.decisions.iterrows(), strict=True):
        if pd.isna(a["error"]):
            assert pd.isna(b["error"])
        else:
            assert b["error"] == f"recorded error: {a['error']}"
    # a trade the file does not hold is an error, not a made-up decision
    more = run(TRADES.head(11), make_provider("replay", replay_path=recorded))
    tid = trade_ids(TRADES.head(11)).iloc[10]
    assert (
        by_id(more).loc[tid, "error"] == f"no recorded decision for trade {tid} / prompt balanced"
    )


# --------------------------------------------------------------------------- CLI


def test_cli_heuristic_and_bad_input(tmp_path: Path, small_bars: Path) -> None:
    out = tmp_path / "h.csv"
    cache = str(tmp_path / "cache")
    few = tmp_path / "few.json"
    few.write_text(json.dumps(json.loads((PATHS.sample / "trades.json").read_text())[:4]))
    small = ("--trades", str(few), "--bars", str(small_bars), "--cache", cache)
    never = [str(tmp_path / f"never{i}.csv") for i in range(3)]
    good, unknown, no_replay, bad_prompt = _clis(
        ("evaluate", "--provider", "heuristic", "--out", str(out), "--cache", cache),
        ("evaluate", "--provider", "nope", "--out", never[0], *small),
        ("evaluate", "--provider", "replay", "--out", never[1], *small),
        ("evaluate", "--prompt", "balanced", "--prompt", "nope", "--out", never[2], *small),
    )
    assert good.returncode == 0, good.stderr
    assert "do not measure any LLM" in good.stderr
    assert "1,100 decisions from heuristic rule (not an LLM) (offline: no requests)" in (
        good.stdout
    )
    decisions = load("llm_decisions", out)
    assert len(decisions) == 1100 and decisions["trade_id"].is_unique
    assert set(decisions["trade_id"]) == set(trade_ids(TRADES))
    assert decisions["error"].isna().all() and set(decisions["decision"]) == {"approve", "reject"}
    assert set(decisions["model"]) == {"heuristic-v1"}
    assert set(decisions["prompt_variant"]) == {"balanced"}
    assert set(decisions["provider"]) == {"heuristic rule (not an LLM)"}
    assert not journal_path(out).exists()

    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: ")
    assert "unknown provider 'nope' (openai, local, replay or heuristic)" in unknown.stderr
    assert no_replay.returncode == 1
    assert "error: --provider replay needs the recorded decisions (--replay FILE)" in (
        no_replay.stderr
    )
    assert bad_prompt.returncode == 1
    assert (
        "error: no prompt 'nope' (prompts: ['aggressive', 'balanced', 'conservative'])"
        in bad_prompt.stderr
    )
    assert not any(Path(p).exists() for p in never)
    assert not any(journal_path(p).exists() for p in never)
