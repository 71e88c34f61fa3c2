"""The trade filter's client against a real language model: llama.cpp's ``llama-server`` on
127.0.0.1 with the default SmolLM2-135M model (``make test-llm-local`` builds the server when it
is missing; ``make test`` runs these wherever it is built and skips them, saying why, where not).

What is asserted is the contract, not the wording or the decisions (a 135M model's decisions
mean nothing): every reply through the OpenAI-compatible client is a valid decision under the
JSON schema the client sends — also when the prompt asks for values outside it; token counts
and latencies are recorded; a timeout is a recorded error and leaves the server serving; two
slots answer two requests at once (and one slot one at a time), all valid; ``research llm
evaluate --provider local`` starts its own server, records every reply with its provenance
(model SHA-256, server build, threads, sampling, prompt hash, date), stops the server when
interrupted and when done, and resumes from its journal; the recorded run replays offline with
the same decisions and is named by its provenance.

The server runs on one thread: the suite's other worker keeps the second core.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest

from research.config import PATHS
from research.data.loaders import load
from research.llm.harness import EvalConfig, evaluate, journal_path, prompt_hash
from research.llm.local_build import default_model_path, file_sha256
from research.llm.local_server import (
    LocalServer,
    ServerError,
    ServerSpec,
    find_server,
    server_version,
)
from research.llm.prompts import load_prompts
from research.llm.providers import Message, OpenAIProvider, ReplayProvider, Reply
from research.llm.service import TradeSet
from research.testing.bars import write_sample_period_bars
from research.testing.cli import run_cli

EXE = Path(sys.executable).with_name("research")


def _unavailable() -> str | None:
    try:
        find_server()
    except ServerError:
        return (
            "no llama-server built: `make llama-server` builds it once (about 4 minutes), "
            "`make test-llm-local` builds it and runs these tests"
        )
    if default_model_path() is None:
        return "no default model: `make llama-server` fetches it (98 MB)"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 4 sample trades, and synthetic SPX and IXIC bars over their dates (the entry
    regimes load in a fraction of the embedded history's time)."""
    folder = tmp_path_factory.mktemp("local")
    trades = folder / "trades.json"
    trades.write_text(json.dumps(json.loads((PATHS.sample / "trades.json").read_text())[:4]))
    return trades, write_sample_period_bars(folder / "bars.csv")


@pytest.fixture(scope="module")
def trade_set(files: tuple[Path, Path]) -> TradeSet:
    """The trades, without entry regimes (the context says the regime is unknown; the command
    line test computes them)."""
    trades = load("trades", files[0])
    return TradeSet(trades, pd.Series([None] * len(trades), dtype=object), "", "vix_trend")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """One server for the client tests: the default model, one thread, two slots."""
    spec = ServerSpec.of(None, threads=1, slots=2)
    with LocalServer(spec) as running:
        yield running


def _client(server: LocalServer, **kw: object) -> OpenAIProvider:
    return OpenAIProvider(
        model=server.spec.model_name,
        base_url=server.base_url,
        api_key="not-needed",
        json_schema=True,
        seed=42,
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class InFlight:
    """A provider wrapper counting the requests in flight at once."""

    inner: OpenAIProvider
    now: int = 0
    peak: int = 0
    started: list[float] = field(default_factory=list)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.started.append(time.perf_counter())
        try:
            return await self.inner.complete(
                messages, prompt_name=prompt_name, trade_id=trade_id, timeout=timeout
            )
        finally:
            self.now -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def _valid(frame: pd.DataFrame) -> None:
    """Every row a valid decision: no error, decision/confidence/contracts within the schema."""
    assert frame["error"].isna().all(), frame["error"].dropna().tolist()
    assert set(frame["decision"]) <= {"approve", "reject"}
    assert frame["confidence"].between(0, 1).all()
    assert frame["contracts"].between(1, 5).all()


def test_client_gets_schema_valid_decisions_one_at_a_time_with_tokens_and_a_cache(
    server: LocalServer, trade_set: TradeSet, tmp_path: Path
) -> None:
    trades, regimes = trade_set.trades.head(2), trade_set.regimes.head(2)
    prompts = load_prompts(["balanced"])
    config = EvalConfig(concurrency=1, timeout=120, retries=0)
    counted = InFlight(_client(server))
    first = evaluate(
        trades, counted, prompts, regimes=regimes,  # type: ignore[arg-type]
        cache_dir=tmp_path / "cache", config=config, progress=False,
    )  # fmt: skip
    d = first.decisions
    assert len(d) == 2 and first.requests == 2 and first.cache_hits == 0
    assert counted.peak == 1  # concurrency 1: one request at a time
    _valid(d)
    assert (d["prompt_tokens"] > 100).all() and (d["completion_tokens"] > 0).all()
    assert (d["latency_s"] > 0).all() and (d["attempts"] == 1).all()
    assert (d["prompt_sha256"] == prompt_hash(prompts[0].text)).all()
    sampling = json.loads(d["sampling"].iloc[0])
    assert len(sampling["json_schema"]) == 16 and sampling["seed"] == 42  # the schema's hash
    # asked again: the cache answers, no request reaches the server
    again = evaluate(
        trades, _client(server), prompts, regimes=regimes,
        cache_dir=tmp_path / "cache", config=config, progress=False,
    )  # fmt: skip
    assert again.requests == 0 and again.cache_hits == 2
    assert again.decisions["decision"].tolist() == d["decision"].tolist()
    assert again.decisions["recorded_at"].tolist() == d["recorded_at"].tolist()


def test_the_schema_holds_when_the_prompt_asks_for_values_outside_it(
    server: LocalServer, trade_set: TradeSet, tmp_path: Path
) -> None:
    (tmp_path / "rogue.md").write_text(
        "You are a trade filter. Reply with JSON: decision 'maybe', confidence 7, contracts 12, "
        "and a reason."
    )
    prompts = load_prompts(["rogue"], tmp_path)
    result = evaluate(
        trade_set.trades.head(1), _client(server), prompts, regimes=trade_set.regimes.head(1),
        config=EvalConfig(concurrency=1, timeout=120, retries=0), progress=False,
    )  # fmt: skip
    _valid(result.decisions)


def test_a_timeout_is_a_recorded_error_and_the_server_keeps_serving(
    server: LocalServer, trade_set: TradeSet
) -> None:
    prompts = load_prompts(["balanced"])
    result = evaluate(
        # 8 tokens: the server's work on the abandoned request stays short
        trade_set.trades.iloc[3:4], _client(server, max_tokens=8), prompts,
        regimes=trade_set.regimes.iloc[3:4],
        config=EvalConfig(concurrency=1, timeout=0.02, retries=0), progress=False,
    )  # fmt: skip
    (error,) = result.decisions["error"].tolist()
    assert "no answer within 0.02 s (timeout)" in error and "gave up after 1 attempt" in error
    assert result.decisions["decision"].isna().all()
    assert server.running()
    assert httpx.get(server.base_url.removesuffix("/v1") + "/health").status_code == 200


def test_two_slots_answer_two_requests_at_once(server: LocalServer, trade_set: TradeSet) -> None:
    slots_url = server.base_url.removesuffix("/v1") + "/slots"
    assert len(httpx.get(slots_url).json()) == 2
    busy: list[int] = []  # slots processing at once, as the server reports them
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=5) as client:
            while not done.is_set():
                slots = client.get(slots_url).json()
                busy.append(sum(bool(slot.get("is_processing")) for slot in slots))
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    counted = InFlight(_client(server))
    try:
        result = evaluate(
            trade_set.trades.iloc[2:4], counted, load_prompts(["conservative"]),  # type: ignore[arg-type]
            regimes=trade_set.regimes.iloc[2:4],
            config=EvalConfig(concurrency=2, timeout=120, retries=0), progress=False,
        )  # fmt: skip
    finally:
        done.set()
        watcher.join(10)
    assert len(result.decisions) == 2 and result.requests == 2
    _valid(result.decisions)
    assert counted.peak == 2  # two requests in flight from the client
    assert max(busy) == 2  # and the server decoding both at once


def _servers_of(model: Path) -> set[int]:
    """The pids of running processes serving ``model`` (a path only this test uses)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(model).encode() in cmd:
                found.add(int(proc.name))
    return found


def test_cli_local_provider_records_provenance_stops_its_server_and_resumes(
    files: tuple[Path, Path], trade_set: TradeSet, tmp_path: Path
) -> None:
    trades_file = tmp_path / "trades.json"
    raw = json.loads(files[0].read_text())[:2]
    trades_file.write_text(json.dumps(raw))
    out = tmp_path / "run.parquet"
    journal = journal_path(out)
    default = default_model_path()
    assert default is not None
    # the default model under a path of this test's own: its servers are told from any other
    model = tmp_path / "models" / default.name
    model.parent.mkdir()
    model.symlink_to(default)
    args = [
        str(EXE), "llm", "evaluate", "--provider", "local", "--threads", "1",
        "--model", str(model),
        "--trades", str(trades_file), "--out", str(out), "--cache", str(tmp_path / "cache"),
        "--bars", str(files[1]),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGIME_LAB_LLM")}
    log = tmp_path / "first.log"
    with log.open("w") as fh:
        # a subprocess on purpose: it is interrupted (Ctrl-C) once the first reply is journaled
        proc = subprocess.Popen(args, stdout=fh, stderr=fh, env=env)
    try:
        deadline = time.monotonic() + 180
        while not (journal.exists() and journal.read_text().count("\n") >= 1):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no reply journaled within 180 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    finally:
        proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 130, text
    assert "run the same command again to resume" in text
    assert "not meaningful" in text  # the default model is said to be a test model
    assert not _servers_of(model), "the interrupted run left its llama-server running"
    assert not out.exists()
    journaled = journal.read_text().count("\n")

    # the resume in-process: only the interruption needs a process of its own
    overlay = {k: None for k in os.environ if k.startswith("REGIME_LAB_LLM")}
    second = run_cli(*args[1:], env=overlay)
    assert second.returncode == 0, second.stderr
    assert f"{journaled} resumed from an earlier run" in second.stdout
    assert not _servers_of(model), "the finished run left its llama-server running"
    decisions = load("llm_decisions", out)
    assert len(decisions) == 2 and not journal.exists()
    _valid(decisions)
    assert (decisions["model_sha256"] == file_sha256(default)).all()
    assert (decisions["server_build"] == server_version(find_server())).all()
    assert decisions["server_build"].str.startswith("llama.cpp ").all()
    assert (decisions["threads"] == 1).all()
    sampling = json.loads(decisions["sampling"].iloc[0])
    assert sampling["temperature"] == 0 and sampling["seed"] == 42 and sampling["slots"] == 1
    assert (decisions["prompt_sha256"] == prompt_hash(load_prompts(["balanced"])[0].text)).all()
    today = pd.Timestamp.now(tz="UTC").date()
    recorded = pd.to_datetime(decisions["recorded_at"], utc=True).dt.date
    assert (recorded == today).all()

    # the recorded run replays offline: the same decisions, named by its provenance
    replay = ReplayProvider(decisions, source=str(out))
    assert str(today) in replay.label and file_sha256(default)[:16] in replay.about()
    ours = TradeSet(trade_set.trades.head(2), trade_set.regimes.head(2), "", "vix_trend")
    again = evaluate(
        ours.trades, replay, load_prompts(["balanced"]), regimes=ours.regimes, progress=False
    )
    assert again.requests == 0
    merged = again.decisions.merge(decisions, on="trade_id", suffixes=("", "_rec"))
    assert (merged["decision"] == merged["decision_rec"]).all()
    assert (merged["confidence"] == merged["confidence_rec"]).all()


def test_a_server_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)  # the magic, then nothing a model needs
    spec = ServerSpec.of(bad, threads=1)
    running = LocalServer(spec, ready_timeout=60, log_path=tmp_path / "server.log")
    with pytest.raises(ServerError, match=r"llama-server exited \(code \d+\) before it was ready"):
        running.start()
    assert not running.running()
    assert "error" in (tmp_path / "server.log").read_text().lower()  # the log is kept
