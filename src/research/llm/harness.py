"""Ask a provider about every trade under every prompt, safely.

- **Concurrency**: at most ``concurrency`` requests in flight (an asyncio semaphore).
- **Retries**: rate limits (429, waiting the server's ``Retry-After`` when it sends one), 5xx,
  timeouts and dropped connections are retried ``retries`` times with exponential backoff
  (``backoff`` x 2^attempt, capped at ``max_backoff``, with jitter); other HTTP errors are not.
- **Strict replies**: a reply that is not a valid decision is recorded as an error with its raw
  text, never a crash; every (trade, prompt) ends with a decision or an error.
- **Cache**: each answered request is stored under ``cache_dir`` by the SHA-256 of the provider
  kind, its server (base URL, credentials masked), model, messages (prompt text and trade
  context) and parameters (temperature, token limit, JSON mode), so asking the same source the
  same again makes no request, and two servers never share answers. ``retry_errors`` does not
  take errors from the cache: it asks again.
- **Resumable**: each finished record is appended, one JSON line at a time, to a journal next to
  the output (``OUT.partial.jsonl``); a re-run (after Ctrl-C or a kill) skips what is there, and a
  torn last line is ignored. The output file is written atomically at the end
  (``research._io``), then the journal removed.
- **Outputs kept**: an existing output is continued only when it is a decisions file of this
  harness from the same provider, model and prompts (``existing_decisions``): its rows are all
  kept and the new ones appended; any other file (a CSV of something else, another provider's or
  another prompt's decisions, a journal that is not one) is refused before any request, with an
  ``OutputError`` saying what was found.
- **Tallies**: requests, cache hits, tokens, latency and cost (a per-model price table, dollars
  per million input and output tokens).
- **Provenance**: every record carries the prompt text's SHA-256, the sampling settings and the
  time the answer was recorded, and for a local model the model file's SHA-256, the server build
  and its threads (``PROVENANCE_COLUMNS``), so a recorded run can be replayed and named.
- **Secrets**: the API key and the credentials of the base URL are scrubbed from every text the
  harness writes (records, errors, journal, cache); they are never part of a cache key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from research._io import check_output, os_error_text, write_text_atomic
from research.exceptions import InputError, OutputError
from research.llm.context import build_context, trade_ids
from research.llm.prompts import Prompt
from research.llm.providers import FatalError, Provider, Reply, TransportError, mask_urls
from research.llm.replies import BadReply, parse_reply

__all__ = [
    "EvalConfig",
    "EvalResult",
    "Prices",
    "cache_key",
    "check_output_extension",
    "evaluate",
    "existing_decisions",
    "journal_path",
    "prompt_hash",
]

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
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "prompt_sha256",
    "model_sha256",
    "server_build",
    "threads",
    "sampling",
    "recorded_at",
)
"""Written with every record (not required of a file a run continues): the SHA-256 of the
prompt's text; for a local model the model file's SHA-256, the server build and its threads;
the sampling settings (JSON); when the answer was recorded (UTC; for a cached answer, when it
was first recorded)."""


def _whole(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")


def _seconds(name: str, value: object, *, zero: bool) -> None:
    bound = "at least 0" if zero else "above 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise InputError(f"{name} must be a finite number of seconds {bound}, got {value:g}")


@dataclass(frozen=True)
class EvalConfig:
    """How to ask.

    Raises
    ------
    research.exceptions.InputError
        ``concurrency`` below 1, ``retries`` below 0, a ``timeout`` that is not a finite
        number above 0, a negative or NaN backoff (the message names the field).
    """

    concurrency: int = 8
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    retry_errors: bool = False
    """Ask again the (trade, prompt) pairs recorded as errors (journal, output, cache)."""

    def __post_init__(self) -> None:
        _whole("concurrency", self.concurrency, 1)
        _whole("retries", self.retries, 0)
        _seconds("timeout", self.timeout, zero=False)
        _seconds("backoff", self.backoff, zero=True)
        _seconds("max_backoff", self.max_backoff, zero=True)


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens, per model: ``{model: (input, output)}``."""

    per_million: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> Prices:
        """From a YAML or JSON file ``{model: {input: $, output: $}}`` (None: no prices).

        Raises
        ------
        research.exceptions.InputError
            The file cannot be read, is not that shape, or holds a negative or NaN price.
        """
        if path is None:
            return cls({})
        import yaml

        shape = "prices must map model -> {input: $ per 1M tokens, output: $ per 1M}"
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise InputError(f"{path}: cannot read the prices ({exc.strerror or exc})") from exc
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not YAML or JSON; {shape}") from exc
        try:
            table = {str(m): (float(v["input"]), float(v["output"])) for m, v in data.items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{path}: {shape}") from exc
        for model, pair in table.items():
            if not all(math.isfinite(x) and x >= 0 for x in pair):
                raise InputError(
                    f"{path}: the prices of {model!r} must be finite and at least 0, got "
                    f"input {pair[0]:g}, output {pair[1]:g}"
                )
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
    asked: int = 0
    """(trade, prompt) pairs answered in this run (by the provider or the cache)."""
    new_errors: int = 0
    """Of those, the ones that ended in an error."""
    about: str = ""
    """The provider in a sentence, when it says more than its label (a local model's or a
    recorded run's provenance)."""

    @property
    def failed(self) -> bool:
        """Nothing came back: every pair asked in this run ended in an error, or (nothing asked)
        every decision of the result is one."""
        if self.asked:
            return self.new_errors == self.asked
        return len(self.decisions) > 0 and self.errors == len(self.decisions)

    def failure_text(self) -> str:
        """One line for a run that ``failed``: how many, the commonest error, what to do."""
        errors = self.decisions["error"].dropna().astype(str)
        common = " ".join(errors.value_counts().index[0].split()) if len(errors) else "?"
        where = f"; the errors are recorded in {self.out}" if self.out is not None else ""
        if self.asked:
            head = f"all {self.asked:,} requests of this run failed"
        else:
            head = f"every one of the {len(self.decisions):,} decisions is an error"
        return (
            f"{head} (e.g. {common}){where}; fix the cause, then run again with --retry-errors "
            "to ask them again"
        )

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
            + (f" {self.about}" if self.about else "")
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


CACHE_VERSION = 2
"""Part of every cache key: answers stored under the keys of an older layout (which left out
the server) are never read."""


def cache_key(provider: Provider, messages: Sequence[Mapping[str, str]]) -> str:
    """SHA-256 of everything an answer depends on: the provider kind, its server (``endpoint``:
    the base URL with credentials masked, for a network provider), the model, the messages (the
    prompt text and the trade context) and the request parameters (temperature, token limit,
    JSON mode). The API key is not part of it.

    Parameters
    ----------
    provider
        Who answers.
    messages
        The chat messages of the request.

    Returns
    -------
    str
        64 hex digits.
    """
    payload = {
        "v": CACHE_VERSION,
        "provider": provider.name,
        "endpoint": str(getattr(provider, "endpoint", "") or ""),
        "model": provider.model,
        "messages": [dict(m) for m in messages],
        "params": getattr(provider, "params", {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _scrub(text: Any, secrets: Sequence[str]) -> Any:
    """``text`` with every secret replaced by ``***`` and URL credentials masked."""
    if not isinstance(text, str):
        return text
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, "***")
    return mask_urls(text)


def _is_error(hit: Mapping[str, Any]) -> bool:
    """A cached answer that gives no decision: a non-completion body, or a completion whose text
    is not a valid decision."""
    if "error" in hit:
        return True
    try:
        parse_reply(hit.get("text"))
    except BadReply:
        return True
    return False


class _Cache:
    def __init__(self, root: Path | None, secrets: Sequence[str]) -> None:
        self.root = root
        self.secrets = secrets

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer: ``{"text", "prompt_tokens", "completion_tokens"}`` (and ``body``
        when the text was empty) for a chat completion, ``{"error", "raw"}`` for an answer that
        was not one."""
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
        write_text_atomic(self._path(key), json.dumps(clean))


RECORD_KEYS = ("trade_id", "prompt_variant", "model")
"""The fields that name a record: its (trade, prompt, model)."""
_RECORD_START = '{"trade_id": '
"""How every journal line begins (``json.dumps`` of a record, ``trade_id`` first)."""


def _open_journal(path: Path) -> Any:
    """The journal, opened to append on a line of its own (after a torn last line)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if path.exists() and path.stat().st_size:
            with path.open("rb") as raw:
                raw.seek(-1, os.SEEK_END)
                torn = raw.read(1) != b"\n"
        fh = path.open("a", encoding="utf-8")
        if torn:
            fh.write("\n")
        return fh
    except OSError as exc:
        raise OutputError(os_error_text(exc, path)) from exc


def _read_journal(path: Path) -> list[dict[str, Any]]:
    """The records of a journal; a record torn by a kill is skipped (asked again).

    Raises
    ------
    research.exceptions.OutputError
        The file is not a journal of this harness (a line that is neither a record nor the
        beginning of one).
    """
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(
            f"{path} exists and cannot be read as a journal of llm evaluate ({exc}); move it "
            "away (or choose another output file)"
        ) from exc
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict) and all(k in rec for k in RECORD_KEYS):
            out.append(rec)
        elif not (rec is None and line.startswith(_RECORD_START)):
            # a record torn by a kill is expected; anything else is not our journal
            raise OutputError(
                f"{path} exists and is not a journal of llm evaluate (line {i + 1}: "
                f"{' '.join(line.split())[:60]!r}); move it away (or choose another output "
                "file)"
            )
    return out


def check_output_extension(out: str | Path) -> Path:
    """``out`` when the decisions can be written in its format (and read back to resume).

    Parameters
    ----------
    out
        The output file.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    research.exceptions.InputError
        Another extension (the message lists the ones that work).
    """
    from research.data.writers import WRITABLE

    path = Path(out)
    if not path.name.lower().endswith(WRITABLE):
        raise InputError(
            f"{path}: cannot write decisions with this extension; use one of {', '.join(WRITABLE)}"
        )
    return path


def _describe(values: Sequence[str] | set[str], what: str) -> str:
    names = sorted({str(v) for v in values})
    return f"{what}{'s' if len(names) != 1 else ''} " + ", ".join(repr(n) for n in names)


def _short(values: set[str]) -> str:
    return ", ".join(v if len(v) <= 40 else v[:37] + "..." for v in sorted(values))


def _same_source(
    where: Path,
    records: Sequence[Mapping[str, Any]],
    provider: Provider,
    prompts: Sequence[Prompt],
) -> None:
    """Refuse ``records`` (of an existing output or journal) from another source or prompt."""
    sources = {str(r.get("provider")) for r in records if r.get("provider") is not None}
    models = {str(r.get("model")) for r in records}
    held = {str(r.get("prompt_variant")) for r in records}
    asked = {p.name for p in prompts}
    if sources != {provider.label} or models != {provider.model}:
        named = ", ".join(sorted(sources)) or "an unnamed provider"
        raise OutputError(
            f"{where} holds decisions from {named} ({_describe(models, 'model')}); this run "
            f"asks {provider.label}: choose another output file, or delete {where} to start over"
        )
    mine = _provenance(provider)
    for column in ("model_sha256", "server_build", "sampling"):
        found = {
            str(r[column])
            for r in records
            if r.get(column) not in (None, "") and r.get(column) == r.get(column)
        }
        if found and mine.get(column) is not None and found != {str(mine[column])}:
            raise OutputError(
                f"{where} holds decisions with another {column} ({_short(found)}) than this "
                f"run's ({_short({str(mine[column])})}): choose another output file, or delete "
                f"{where} to start over"
            )
    if not held <= asked:
        raise OutputError(
            f"{where} holds decisions of {_describe(held, 'prompt')}; this run asks "
            f"{_describe(asked, 'prompt')}: choose another output file, or ask "
            f"{_describe(held | asked, 'prompt')} to continue it"
        )


def existing_decisions(
    out: str | Path | None, provider: Provider, prompts: Sequence[Prompt]
) -> list[dict[str, Any]]:
    """The records already in the output ``out`` and its journal (a re-run continues them),
    after checking that both are this harness's files from the same source.

    Parameters
    ----------
    out
        The output file (None, or no file and no journal: no records).
    provider, prompts
        Who this run asks, and what.

    Returns
    -------
    list of dict
        The file's records in its order (missing values as None), then the journal's.

    Raises
    ------
    research.exceptions.OutputError
        ``out`` exists and is not a decisions file written by ``evaluate`` (another table, an
        unreadable file, missing columns), its journal is not a journal, or either holds
        decisions of another provider or model, or of a prompt this run does not ask:
        continuing it would mix sources or drop rows.
    """
    from_file, from_journal = _existing(out, provider, prompts)
    return from_file + from_journal


def _existing(
    out: str | Path | None, provider: Provider, prompts: Sequence[Prompt]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``existing_decisions``, as (the file's records, the journal's)."""
    if out is None:
        return [], []
    path = Path(out)
    journal = journal_path(path)
    check_output(path)  # a folder, or a path under a file
    if journal.is_dir():
        raise OutputError(f"{journal} (the journal of {path}) is a folder; move it away")
    records: list[dict[str, Any]] = []
    if path.exists():
        from research.data.errors import ContractError
        from research.data.loaders import read_table

        try:
            frame = read_table(path.absolute())
        except ContractError as exc:
            why = str(exc).splitlines()[-1].strip(" -")
            raise OutputError(
                f"{path} exists and cannot be read as a decisions file ({why}); choose another "
                f"output file, or move {path} away"
            ) from exc
        missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
        if missing:
            cols = ", ".join(map(str, frame.columns[:8])) + (", ..." if frame.shape[1] > 8 else "")
            raise OutputError(
                f"{path} exists and is not a decisions file of llm evaluate (its columns: "
                f"{cols}; missing {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})"
                f": choose another output file, or move {path} away"
            )
        frame = frame.astype(object).where(frame.notna(), None)
        records = [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]
        _same_source(path, records, provider, prompts)
    journaled = _read_journal(journal)
    if journaled:
        _same_source(journal, journaled, provider, prompts)
    return records, journaled


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
    """(reply, error, attempts, latency, cached, raw body of a non-completion answer); the
    latency runs from the first request's start (not the wait for a free slot before it) to
    the answer, retries and their waits included.

    With ``config.retry_errors`` a cached answer that gives no decision is not used: the
    provider is asked again (and the new answer replaces it in the cache)."""
    key = cache_key(provider, messages)
    if provider.uses_cache:
        hit = cache.get(key)
        if hit is not None and not (config.retry_errors and _is_error(hit)):
            counters["cache_hits"] += 1
            if "error" in hit:
                return None, str(hit["error"]), 0, 0.0, True, hit.get("raw")
            reply = Reply(
                hit.get("text"),
                hit.get("prompt_tokens"),
                hit.get("completion_tokens"),
                hit.get("body"),
                hit.get("recorded_at"),
            )
            return reply, None, 0, 0.0, True, None
    attempt, error = 0, None
    start: float | None = None  # the first request's start: not the wait for a free slot
    while True:
        attempt += 1
        async with sem:
            counters["requests"] += int(provider.network)
            start = time.perf_counter() if start is None else start
            try:
                reply = await provider.complete(
                    messages, prompt_name=prompt_name, trade_id=trade_id, timeout=config.timeout
                )
            except TransportError as exc:
                error, wait = str(exc), exc.retry_after
            except FatalError as exc:
                if getattr(exc, "cacheable", False) and provider.uses_cache:
                    # the server answered, with something that is not a completion: keep it
                    cache.put(key, {"error": str(exc), "raw": exc.raw})
                return None, str(exc), attempt, time.perf_counter() - start, False, exc.raw
            else:
                if provider.uses_cache:
                    stored: dict[str, Any] = {
                        "text": reply.text,
                        "prompt_tokens": reply.prompt_tokens,
                        "completion_tokens": reply.completion_tokens,
                        "recorded_at": _now(),
                    }
                    if reply.body is not None:
                        stored["body"] = reply.body
                    cache.put(key, stored)
                return reply, None, attempt, time.perf_counter() - start, False, None
        if attempt > config.retries:
            return (
                None,
                f"gave up after {attempt} attempt{'s' * (attempt != 1)}: {error}",
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
    *,
    prompt_sha256: str | None = None,
    recorded_at: str | None = None,
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
        **_provenance(provider),
        "prompt_sha256": prompt_sha256,
        "recorded_at": recorded_at,
    }
    row_provenance = getattr(provider, "row_provenance", None)
    if callable(row_provenance):  # a replay: the recorded reply's own
        rec |= row_provenance(trade_id, prompt)
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
            # an empty message: keep the whole answer, so what came back is on record
            text = reply.text if reply.text and reply.text.strip() else reply.body
            rec["raw"] = _scrub(text, secrets)
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


def _provenance(provider: Provider) -> dict[str, Any]:
    """The provider's part of a record's provenance: its own (a local model's) or, for any
    other, its request parameters as the sampling settings."""
    own = getattr(provider, "provenance", None)
    if callable(own):
        given = own()
        return {k: given.get(k) for k in ("model_sha256", "server_build", "threads", "sampling")}
    params = getattr(provider, "params", None)
    return {
        "model_sha256": None,
        "server_build": None,
        "threads": None,
        "sampling": json.dumps(params, sort_keys=True, default=str) if params else None,
    }


def prompt_hash(text: str) -> str:
    """The SHA-256 of a prompt's text (UTF-8), as records store it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _finish(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=[*RECORD_COLUMNS, *PROVENANCE_COLUMNS])
    for col in ("confidence", "latency_s", "cost_usd"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("contracts", "tokens", "prompt_tokens", "completion_tokens", "attempts", "threads"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    frame["cached"] = frame["cached"].fillna(False).astype(bool)
    return frame


def _key(rec: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(rec["trade_id"]), str(rec["prompt_variant"]), str(rec["model"])


def _cache_folder(cache_dir: str | Path | None) -> Path | None:
    """The cache folder, created; refused when it cannot be written (before any request)."""
    if cache_dir is None:
        return None
    root = Path(cache_dir)
    if root.exists() and not root.is_dir():
        raise OutputError(f"the cache folder {root} is a file; name a folder for the reply cache")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(os_error_text(exc, root)) from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {root}: permission denied (read-only folder?)")
    return root


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
    provider
        Who answers (``research.llm.providers``).
    prompts
        The prompt variants to ask under.
    regimes
        The regime at entry per trade (``research.llm.context.entry_regimes``), or None.
    out
        Output file (CSV, Parquet, JSON, JSONL); its journal makes the run resumable. None: no
        file, no journal. An existing file is continued only when ``existing_decisions``
        accepts it: its rows are kept (those of other trades too) and the new ones appended.
    cache_dir
        Reply cache (None: no cache).
    config
        Concurrency, timeout, retries, ``retry_errors``.
    prices
        Dollars per million tokens, for the cost.
    progress
        A tqdm bar (True), nothing (False), or a callback ``(done, total)``.

    Returns
    -------
    EvalResult
        ``decisions`` holds this run's (trade, prompt) pairs, in trade order.

    Raises
    ------
    research.exceptions.OutputError
        ``out`` (or its journal) is not this harness's file from the same provider, model and
        prompts; the cache folder or the output cannot be written. Raised before any request,
        except a write that fails on the way (a full disk): the journal then keeps what was
        finished.
    research.exceptions.InputError
        ``out`` has an extension the decisions cannot be written in.
    """
    config = config or EvalConfig()
    prices = prices or Prices()
    secrets = provider.secrets() if hasattr(provider, "secrets") else []
    out_path = check_output_extension(out) if out is not None else None
    journal = journal_path(out_path) if out_path is not None else None
    from_file, from_journal = _existing(out_path, provider, prompts)
    cache = _Cache(_cache_folder(cache_dir) if provider.uses_cache else None, secrets)
    ids = trade_ids(trades).tolist()
    done: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in [*from_file, *from_journal]:
        if config.retry_errors and rec.get("error"):
            continue
        done[_key(rec)] = rec
    rows = trades.reset_index(drop=True)
    regime_list = (
        list(regimes.reset_index(drop=True)) if regimes is not None else [None] * len(rows)
    )
    run_keys = [(tid, p.name, provider.model) for tid in ids for p in prompts]
    hashes = {p.name: prompt_hash(p.text) for p in prompts}
    prompt_of = {p.name: p for p in prompts}
    index_of = {tid: i for i, tid in enumerate(ids)}
    jobs = [(index_of[k[0]], k[0], prompt_of[k[1]]) for k in run_keys if k not in done]
    resumed = sum(1 for k in run_keys if k in done)
    counters = {"requests": 0, "cache_hits": 0}
    new_records: list[dict[str, Any]] = []
    total = len(jobs)
    start = time.perf_counter()

    async def run(fh: Any) -> None:
        sem = asyncio.Semaphore(config.concurrency)
        bar = None
        if progress is True and total:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"asking {provider.label}", unit="decision")
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
                    provider,
                    tid,
                    p.name,
                    reply,
                    error,
                    attempts,
                    latency,
                    cached,
                    prices,
                    raw,
                    prompt_sha256=hashes[p.name],
                    recorded_at=(reply.recorded_at if reply is not None else None) or _now(),
                )
                new_records.append(rec)
                if fh is not None:
                    fh.write(json.dumps(rec, default=str) + "\n")
                    fh.flush()
                if bar is not None:
                    bar.update(1)
                elif callable(progress):
                    progress(len(new_records), total)

            tasks = [asyncio.ensure_future(one(i, tid, p)) for i, tid, p in jobs]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                # a failure (Ctrl-C, a full disk, a server that did not start): no request
                # starts after it, also not one already woken by a free slot
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            if bar is not None:
                bar.close()
            await provider.aclose()

    if jobs:
        fh = _open_journal(journal) if journal is not None else None
        try:
            _run_sync(lambda: run(fh))
        finally:
            if fh is not None:
                fh.close()
            if journal is not None and journal.exists() and journal.stat().st_size == 0:
                journal.unlink()  # nothing was answered (a server that did not start)
    # every record there was (the journal's are the later), then this run's answers over them:
    # errors asked again are replaced, records this run did not ask are kept
    latest = {_key(rec): rec for rec in [*from_file, *from_journal, *new_records]}
    frame = _finish([latest[k] for k in run_keys if k in latest])
    if out_path is not None and (new_records or from_journal or not out_path.exists()):
        from research.data.writers import write_table

        # the file's rows in place, then the rest: this run's in trade order, then any other
        # trades' records the journal held
        in_file = [_key(rec) for rec in from_file]
        placed = set(in_file)
        rest = [k for k in run_keys if k in latest and k not in placed]
        placed |= set(rest)
        rest += list(dict.fromkeys(k for k in map(_key, from_journal) if k not in placed))
        # a decisions file of the same provider (checked above): continued, whatever columns
        # an earlier version wrote
        write_table(_finish([latest[k] for k in [*in_file, *rest]]), out_path, replace=True)
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
        asked=len(new_records),
        new_errors=sum(1 for rec in new_records if rec.get("error")),
        about=about() if callable(about := getattr(provider, "about", None)) else "",
    )
