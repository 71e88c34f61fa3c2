"""Ask a provider about every trade under every prompt, safely.

- **Concurrency**: at most ``concurrency`` requests in flight (an asyncio semaphore).
- **Retries**: rate limits (429, waiting the server's ``Retry-After`` when it sends one), 5xx,
  timeouts and dropped connections are retried ``retries`` times with exponential backoff
  (``backoff`` x 2^attempt, capped at ``max_backoff``, with jitter); other HTTP errors are not.
- **Strict replies**: a reply that is not a valid decision is recorded as an error with its raw
  text, never a crash; every (trade, prompt) ends with a decision or an error.
- **Cache**: each answered request is stored under ``cache_dir`` by the SHA-256 of the provider,
  model, messages and parameters, so asking the same again makes no request.
- **Resumable**: each finished record is appended, one JSON line at a time, to a journal next to
  the output (``OUT.partial.jsonl``); a re-run (after Ctrl-C or a kill) skips what is there, and a
  torn last line is ignored. The output file is written atomically at the end, then the journal
  removed.
- **Tallies**: requests, cache hits, tokens, latency and cost (a per-model price table, dollars
  per million input and output tokens).
- **Secrets**: the API key is scrubbed from every text the harness writes (records, errors,
  journal, cache); it is never part of a cache key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from research.llm.context import build_context, trade_ids
from research.llm.prompts import Prompt
from research.llm.providers import FatalError, Provider, Reply, TransportError
from research.llm.replies import BadReply, parse_reply

__all__ = ["EvalConfig", "EvalResult", "Prices", "cache_key", "evaluate", "journal_path"]

RECORD_COLUMNS: tuple[str, ...] = (
    "trade_id",
    "model",
    "prompt_variant",
    "decision",
    "confidence",
    "contracts",
    "reason",
    "error",
    "latency_s",
    "tokens",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "attempts",
    "cached",
    "provider",
    "raw",
)


@dataclass(frozen=True)
class EvalConfig:
    """How to ask."""

    concurrency: int = 8
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    retry_errors: bool = False
    """Ask again the (trade, prompt) pairs the journal holds as errors."""


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens, per model: ``{model: (input, output)}``."""

    per_million: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> Prices:
        """From a YAML or JSON file ``{model: {input: $, output: $}}`` (None: no prices)."""
        if path is None:
            return cls({})
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        try:
            table = {str(m): (float(v["input"]), float(v["output"])) for m, v in data.items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"{path}: prices must map model -> {{input: $ per 1M tokens, output: $ per 1M}}"
            ) from exc
        return cls(table)

    def cost(self, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        """Dollars for one request (NaN without a price or token counts)."""
        if model not in self.per_million or prompt_tokens is None or completion_tokens is None:
            return float("nan")
        pin, pout = self.per_million[model]
        return (prompt_tokens * pin + completion_tokens * pout) / 1e6


@dataclass(frozen=True)
class EvalResult:
    """The decisions and the run's tallies."""

    decisions: pd.DataFrame
    """One row per (trade, prompt): the ``llm_decisions`` contract's columns plus
    ``prompt_tokens, completion_tokens, cost_usd, attempts, cached, provider, raw``."""
    provider: str
    """The provider's label (says "not an LLM" for the heuristic)."""
    requests: int
    cache_hits: int
    resumed: int
    errors: int
    wall_s: float
    out: Path | None
    online: bool = True
    """False for the heuristic and replay providers (no network)."""

    @property
    def tokens(self) -> int:
        return int(pd.to_numeric(self.decisions["tokens"], errors="coerce").fillna(0).sum())

    @property
    def cost_usd(self) -> float:
        return float(pd.to_numeric(self.decisions["cost_usd"], errors="coerce").sum(min_count=1))

    def text(self) -> str:
        """One paragraph of tallies."""
        d = self.decisions
        lat = pd.to_numeric(d.loc[~d["cached"].astype(bool), "latency_s"], errors="coerce")
        cost = self.cost_usd
        head = (
            f"{len(d):,} decisions from {self.provider}: {self.requests:,} requests, "
            f"{self.cache_hits:,} answered from the cache"
            if self.online
            else f"{len(d):,} decisions from {self.provider} (offline: no requests)"
        )
        return (
            f"{head}, {self.resumed:,} resumed from an earlier run, {self.errors:,} errors; "
            + (f"{self.tokens:,} tokens; " if self.online else "")
            + (f"cost ${cost:.4f}; " if cost == cost else "cost unknown (no price); ") * self.online
            + (
                f"median latency {lat.median():.2f} s; "
                if self.online and len(lat.dropna())
                else ""
            )
            + f"{self.wall_s:.1f} s wall time."
        )


def _run_sync(make: Callable[[], Any]) -> None:
    """Run the coroutine ``make()`` to completion, also from inside a running event loop
    (Jupyter): then in a worker thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make()).result()


def journal_path(out: str | Path) -> Path:
    """The journal a run appends to: ``OUT.partial.jsonl``."""
    out = Path(out)
    return out.with_name(out.name + ".partial.jsonl")


def cache_key(provider: Provider, messages: Sequence[Mapping[str, str]]) -> str:
    """SHA-256 of the provider kind, model, messages and request parameters."""
    payload = {
        "provider": provider.name,
        "model": provider.model,
        "messages": [dict(m) for m in messages],
        "params": getattr(provider, "params", {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _scrub(text: Any, secrets: Sequence[str]) -> Any:
    if not isinstance(text, str):
        return text
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{random.randrange(1 << 30)}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Cache:
    def __init__(self, root: Path | None, secrets: Sequence[str]) -> None:
        self.root = root
        self.secrets = secrets

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer: ``{"text", "prompt_tokens", "completion_tokens"}`` for a chat
        completion, ``{"error", "raw"}`` for an answer that was not one."""
        if self.root is None:
            return None
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, body: dict[str, Any]) -> None:
        if self.root is None:
            return
        clean = {k: _scrub(v, self.secrets) for k, v in body.items()}
        _write_atomic(self._path(key), json.dumps(clean))


def _read_journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a kill: asked again
    return out


def _read_existing(out: Path | None) -> list[dict[str, Any]]:
    """Records already in a finished output file (a re-run of a completed evaluation)."""
    if out is None or not out.exists():
        return []
    from research.data.loaders import read_table

    try:
        frame = read_table(out)
    except Exception:  # an unreadable output is rewritten from scratch
        return []
    if not {"trade_id", "prompt_variant", "model"} <= set(frame.columns):
        return []
    frame = frame.astype(object).where(frame.notna(), None)
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]


async def _ask(
    provider: Provider,
    messages: list[dict[str, str]],
    *,
    prompt_name: str,
    trade_id: str,
    config: EvalConfig,
    cache: _Cache,
    sem: asyncio.Semaphore,
    counters: dict[str, int],
) -> tuple[Reply | None, str | None, int, float, bool, str | None]:
    """(reply, error, attempts, latency, cached, raw body of a non-completion answer)."""
    key = cache_key(provider, messages)
    if provider.uses_cache:
        hit = cache.get(key)
        if hit is not None:
            counters["cache_hits"] += 1
            if "error" in hit:
                return None, str(hit["error"]), 0, 0.0, True, hit.get("raw")
            reply = Reply(hit.get("text"), hit.get("prompt_tokens"), hit.get("completion_tokens"))
            return reply, None, 0, 0.0, True, None
    attempt, error = 0, None
    start = time.perf_counter()
    while True:
        attempt += 1
        async with sem:
            counters["requests"] += int(provider.network)
            try:
                reply = await provider.complete(
                    messages, prompt_name=prompt_name, trade_id=trade_id, timeout=config.timeout
                )
            except TransportError as exc:
                error, wait = str(exc), exc.retry_after
            except FatalError as exc:
                if exc.raw is not None and provider.uses_cache:
                    # the server answered, with something that is not a completion: keep it
                    cache.put(key, {"error": str(exc), "raw": exc.raw})
                return None, str(exc), attempt, time.perf_counter() - start, False, exc.raw
            else:
                if provider.uses_cache:
                    cache.put(
                        key,
                        {
                            "text": reply.text,
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                        },
                    )
                return reply, None, attempt, time.perf_counter() - start, False, None
        if attempt > config.retries:
            return (
                None,
                f"gave up after {attempt} attempts: {error}",
                attempt,
                time.perf_counter() - start,
                False,
                None,
            )
        backoff = min(config.max_backoff, config.backoff * 2 ** (attempt - 1))
        delay = wait if wait is not None else backoff * (0.5 + random.random() / 2)
        await asyncio.sleep(min(delay, config.max_backoff))


def _record(
    provider: Provider,
    trade_id: str,
    prompt: str,
    reply: Reply | None,
    error: str | None,
    attempts: int,
    latency: float,
    cached: bool,
    prices: Prices,
    raw: str | None = None,
) -> dict[str, Any]:
    secrets = provider.secrets() if hasattr(provider, "secrets") else []
    rec: dict[str, Any] = {
        "trade_id": trade_id,
        "model": provider.model,
        "prompt_variant": prompt,
        "decision": None,
        "confidence": None,
        "contracts": None,
        "reason": None,
        "error": None,
        "latency_s": round(latency, 4),
        "tokens": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "cost_usd": None,
        "attempts": attempts,
        "cached": cached,
        "provider": provider.label,
        "raw": None,
    }
    if reply is not None:
        pt, ct = reply.prompt_tokens, reply.completion_tokens
        rec["prompt_tokens"], rec["completion_tokens"] = pt, ct
        rec["tokens"] = (pt or 0) + (ct or 0) if (pt is not None or ct is not None) else None
        cost = prices.cost(provider.model, pt, ct)
        cost = 0.0 if cached and cost == cost else cost  # a cached answer costs nothing now
        rec["cost_usd"] = None if cost != cost else cost
        try:
            d = parse_reply(reply.text)
        except BadReply as exc:
            rec["error"] = f"bad reply: {exc}"
            rec["raw"] = _scrub(reply.text, secrets)
        else:
            rec |= {
                "decision": d.decision,
                "confidence": d.confidence,
                "contracts": d.contracts,
                "reason": _scrub(d.reason, secrets),
            }
    else:
        rec["error"] = _scrub(error, secrets)
        rec["raw"] = _scrub(raw, secrets)
    return rec


def _finish(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(RECORD_COLUMNS))
    for col in ("confidence", "latency_s", "cost_usd"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("contracts", "tokens", "prompt_tokens", "completion_tokens", "attempts"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    frame["cached"] = frame["cached"].fillna(False).astype(bool)
    return frame


def evaluate(
    trades: pd.DataFrame,
    provider: Provider,
    prompts: Sequence[Prompt],
    *,
    regimes: pd.Series | None = None,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    config: EvalConfig | None = None,
    prices: Prices | None = None,
    progress: bool | Callable[[int, int], None] = True,
) -> EvalResult:
    """Ask ``provider`` about every trade under every prompt (see the module docstring).

    Parameters
    ----------
    trades
        Validated ``trades`` records (outcome columns are never shown to the provider).
    regimes
        The regime at entry per trade (``research.llm.context.entry_regimes``), or None.
    out
        Output file (CSV, Parquet, JSON, JSONL); its journal makes the run resumable. None: no
        file, no journal.
    cache_dir
        Reply cache (None: no cache).
    progress
        A tqdm bar (True), nothing (False), or a callback ``(done, total)``.

    Returns
    -------
    EvalResult
    """
    config = config or EvalConfig()
    prices = prices or Prices()
    secrets = provider.secrets() if hasattr(provider, "secrets") else []
    out_path = Path(out) if out is not None else None
    journal = journal_path(out_path) if out_path is not None else None
    ids = trade_ids(trades).tolist()
    done: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in [*_read_existing(out_path), *(_read_journal(journal) if journal else [])]:
        k = (str(rec["trade_id"]), str(rec["prompt_variant"]), str(rec["model"]))
        if config.retry_errors and rec.get("error"):
            continue
        done[k] = rec
    rows = trades.reset_index(drop=True)
    regime_list = (
        list(regimes.reset_index(drop=True)) if regimes is not None else [None] * len(rows)
    )
    jobs = []
    for i, tid in enumerate(ids):
        for p in prompts:
            if (tid, p.name, provider.model) in done:
                continue
            jobs.append((i, tid, p))
    resumed = sum(1 for tid in ids for p in prompts if (tid, p.name, provider.model) in done)
    counters = {"requests": 0, "cache_hits": 0}
    cache = _Cache(Path(cache_dir) if cache_dir is not None else None, secrets)
    new_records: list[dict[str, Any]] = []
    total = len(jobs)
    start = time.perf_counter()

    async def run() -> None:
        sem = asyncio.Semaphore(max(1, config.concurrency))
        bar = None
        if progress is True and total:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"asking {provider.label}", unit="decision")
        fh = journal.open("a") if journal is not None else None
        try:

            async def one(i: int, tid: str, p: Prompt) -> None:
                context = build_context(
                    {str(c): v for c, v in rows.iloc[i].items()}, regime_list[i]
                )
                messages = [
                    {"role": "system", "content": p.text},
                    {"role": "user", "content": context},
                ]
                reply, error, attempts, latency, cached, raw = await _ask(
                    provider,
                    messages,
                    prompt_name=p.name,
                    trade_id=tid,
                    config=config,
                    cache=cache,
                    sem=sem,
                    counters=counters,
                )
                rec = _record(
                    provider, tid, p.name, reply, error, attempts, latency, cached, prices, raw
                )
                new_records.append(rec)
                if fh is not None:
                    fh.write(json.dumps(rec, default=str) + "\n")
                    fh.flush()
                if bar is not None:
                    bar.update(1)
                elif callable(progress):
                    progress(len(new_records), total)

            await asyncio.gather(*(one(i, tid, p) for i, tid, p in jobs))
        finally:
            if fh is not None:
                fh.close()
            if bar is not None:
                bar.close()
            await provider.aclose()

    if jobs:
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
        _run_sync(run)
    wanted = {(tid, p.name, provider.model) for tid in ids for p in prompts}
    merged = {k: v for k, v in done.items() if k in wanted}
    for rec in new_records:
        merged[(rec["trade_id"], rec["prompt_variant"], rec["model"])] = rec
    order = {(tid, p.name): n for n, (tid, p) in enumerate((t, p) for t in ids for p in prompts)}
    records = sorted(
        merged.values(), key=lambda r: order[(str(r["trade_id"]), r["prompt_variant"])]
    )
    frame = _finish(records)
    if out_path is not None:
        from research.data.writers import write_table

        write_table(frame, out_path)
        if journal is not None and journal.exists():
            journal.unlink()
    return EvalResult(
        frame,
        provider.label,
        counters["requests"],
        counters["cache_hits"],
        resumed,
        int(frame["error"].notna().sum()),
        time.perf_counter() - start,
        out_path,
        provider.network,
    )
