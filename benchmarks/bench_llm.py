"""Benchmark: the trade-filter harness against a loopback OpenAI-compatible server.

1,000 sample trades (``data/sample/trades.json``, first 1,000), one prompt, a server on
127.0.0.1 (``research.testing.chat_server``) that answers every request after 200 ms. Prints the
wall time and the requests made at ``--concurrency`` 50, then the re-run with the same cache (a
new output file, so only the cache can answer): wall time and requests (goal: zero). Peer: the
seed's loop, one request after another (``concurrency`` 1), timed on the first 50 trades and
extrapolated to 1,000. Goal: under 10 s. Machine-dependent figures.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from _record import recorded

from research.config import PATHS
from research.data.loaders import load
from research.llm.harness import EvalConfig, evaluate
from research.llm.prompts import load_prompts
from research.llm.providers import OpenAIProvider
from research.testing.chat_server import ChatServer, Ok

DELAY = 0.2
N = 1000
CONCURRENCY = 50


def answer(request: dict[str, object], n: int) -> Ok:
    messages = request["messages"]
    assert isinstance(messages, list)
    user = str(messages[-1]["content"])
    decision = "approve" if "IXIC" in user else "reject"
    return Ok(json.dumps({"decision": decision, "confidence": 0.7, "contracts": 1, "reason": "."}))


def main() -> None:
    trades = load("trades", PATHS.sample / "trades.json").head(N)
    prompts = load_prompts(["balanced"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    print(f"cpus: {os.cpu_count()}  trades: {len(trades):,}  server delay: {DELAY * 1000:.0f} ms")
    with ChatServer(answer, delay=DELAY) as server:

        def run(out: str, cache: str, concurrency: int, frame=trades):  # type: ignore[no-untyped-def]
            provider = OpenAIProvider(
                model="bench", base_url=server.base_url, api_key="sk-bench", concurrency=concurrency
            )
            before = server.requests
            start = time.perf_counter()
            result = evaluate(
                frame,
                provider,
                prompts,
                out=tmp / out,
                cache_dir=tmp / cache,
                config=EvalConfig(concurrency=concurrency, timeout=10.0),
                progress=False,
            )
            return time.perf_counter() - start, server.requests - before, result

        seconds, requests, result = run("first.csv", "cache", CONCURRENCY)
        ok = int(result.decisions["decision"].notna().sum())
        print(
            f"first run, concurrency {CONCURRENCY}: {seconds:6.2f} s, {requests:,} requests, "
            f"{ok:,} decisions (goal < 10 s: {'met' if seconds < 10 else 'NOT met'})"
        )
        again, requests2, result2 = run("second.csv", "cache", CONCURRENCY)
        same = result2.decisions["decision"].equals(result.decisions["decision"])
        print(
            f"re-run, same cache:        {again:6.2f} s, {requests2:,} requests "
            f"({result2.cache_hits:,} cache hits; decisions identical: {same})"
        )
        seq, seq_requests, _ = run("seq.csv", "cache-seq", 1, trades.head(50))
        per = seq / max(seq_requests, 1)
        print(
            f"peer, one request after another (concurrency 1) on 50 trades: {seq:6.2f} s "
            f"({per * 1000:.0f} ms per trade) -> {per * N:.0f} s for {N:,} extrapolated; the "
            f"harness at {CONCURRENCY} is {per * N / seconds:.0f}x faster"
        )


if __name__ == "__main__":
    with recorded("bench_llm"):
        main()
