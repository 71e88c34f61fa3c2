"""Who answers: an OpenAI-compatible chat-completions server, recorded decisions, or an offline
heuristic.

- ``OpenAIProvider``: the ``openai`` SDK against any compatible server — OpenRouter by default
  (``https://openrouter.ai/api/v1``), or a local llama.cpp / Ollama / vLLM server. Base URL, model
  and key come from arguments or the environment (``REGIME_LAB_LLM_BASE_URL``,
  ``REGIME_LAB_LLM_MODEL``, ``OPENROUTER_API_KEY`` / ``OPENAI_API_KEY``). The SDK's own retries
  are off: the harness retries, honouring ``Retry-After``. A body that is not a chat completion
  is a ``FatalError`` saying what came back (``not a chat completion: <first 200 characters>``)
  with the body kept in ``raw``.
- ``LocalProvider``: a model on this machine — llama.cpp's ``llama-server`` started on
  127.0.0.1 at the first request and stopped at the end (``research.llm.local_server``), asked
  through ``OpenAIProvider`` with the decision's JSON schema enforced; its replies carry their
  provenance (model SHA-256, server build, threads, slots, sampling).
- ``ReplayProvider``: decisions recorded earlier (``llm_decisions`` contract), answered again
  without a network.
- ``HeuristicProvider``: a deterministic rule on the numbers in the context — **not an LLM**,
  and labelled so wherever its decisions go — so the pipeline runs without a key.

Credentials in a base URL (``http://user:secret@host/v1``, ``?api_key=...``) are masked
(``mask_url``) in every label, record and message; they are never part of a cache key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import pandas as pd

from research._text import is_secret_parameter, mask_credentials
from research.exceptions import InputError, ResearchError
from research.llm.local_build import DEFAULT_MODEL_FILE, TEST_MODEL_NOTE
from research.llm.local_server import LocalServer, ServerSpec
from research.llm.replies import DECISION_SCHEMA
from research.numbers import count

__all__ = [
    "DEFAULT_BASE_URL",
    "HeuristicProvider",
    "LocalProvider",
    "OpenAIProvider",
    "Provider",
    "ReplayProvider",
    "Reply",
    "FatalError",
    "TransportError",
    "check_base_url",
    "make_provider",
    "mask_url",
    "mask_urls",
    "parse_completion",
    "url_secrets",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "x-ai/grok-2"
"""The validation plan's choice: a cheap, fast model through OpenRouter."""

Message = Mapping[str, str]


@dataclass(frozen=True)
class Reply:
    """A provider's answer: the raw text and the token counts (None when unknown).

    ``body`` is the server's whole answer when the completion's message had no text (so what
    came back is kept), else None. ``recorded_at``: when a cached answer was first recorded
    (UTC, ISO 8601), None for a fresh one."""

    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    body: str | None = None
    recorded_at: str | None = None


class TransportError(ResearchError, RuntimeError):
    """A request that may succeed when retried (rate limit, 5xx, timeout, dropped connection).

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(ResearchError, RuntimeError):
    """A request that will not succeed when retried (e.g. 401, 404, 400); ``raw`` holds the
    body the server sent, when it sent one. ``cacheable``: the server answered (HTTP 200) with
    something that is not a chat completion — an answer to this question, which the cache may
    keep (default: when there is a body); an HTTP error such as a 401 is about the request, and
    is raised with ``cacheable=False``."""

    def __init__(
        self, message: str, *, raw: str | None = None, cacheable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.raw = raw
        self.cacheable = raw is not None if cacheable is None else cacheable


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_url(url: str) -> str:
    """``url`` with its credentials masked: the password of ``user:password@`` (a user name
    alone, often a token, entirely) and the values of query parameters such as ``api_key``,
    ``token``, ``password`` or ``sig``.

    Examples
    --------
    >>> mask_url("http://user:secret@127.0.0.1:8080/v1")
    'http://user:***@127.0.0.1:8080/v1'
    >>> mask_url("https://host/v1?api_key=abc&x=1")
    'https://host/v1?api_key=***&x=1'
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable: mask whatever stands before an @ of the authority
        return mask_credentials(re.sub(r"(//)[^/@]*@", r"\1***@", url))
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return mask_credentials(url)  # also "http//user:pw@host" (no authority to parse)


def mask_urls(text: str) -> str:
    """Every URL in ``text`` through ``mask_url``."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


def url_secrets(url: str) -> list[str]:
    """The credentials in ``url`` (as written and decoded), for scrubbing texts: the password
    (or a user name given alone) and secret query values, when at least 4 characters long."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    found += [
        v for k, v in parse_qsl(parts.query, keep_blank_values=True) if is_secret_parameter(k)
    ]
    out: list[str] = []
    for s in found:
        for form in (s, unquote(s)):
            if len(form) >= 4 and form not in out:
                out.append(form)
    return out


def check_base_url(url: str, *, option: str = "base_url") -> str:
    """``url`` when it is an ``http://`` or ``https://`` URL with a host.

    Raises
    ------
    research.exceptions.InputError
        Anything else (the message shows the URL with its credentials masked).
    """
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        ok = False
    if not ok:
        raise InputError(
            f"{option} {mask_url(url)!r} is not an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:8080/v1)"
        )
    return url


def _excerpt(body: str, n: int = 200) -> str:
    """The first ``n`` characters of ``body`` on one line."""
    one = " ".join(body.split())
    if not one:
        return "(an empty body)"
    return one[:n] + ("…" if len(one) > n else "")


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_completion(body: str) -> Reply:
    """A chat-completion body as a ``Reply``: the first choice's message text and the usage.

    Raises
    ------
    FatalError
        The body is not a chat completion (not JSON, no ``choices[0].message``): the message
        says what came back (``not a chat completion: <first 200 characters>``), ``raw`` holds
        the body, ``cacheable`` is set.
    """

    def fail() -> FatalError:
        return FatalError(f"not a chat completion: {_excerpt(body)}", raw=body, cacheable=True)

    try:
        data = json.loads(body)
    except ValueError:
        raise fail() from None
    choices = data.get("choices") if isinstance(data, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        raise fail()
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    elif content is not None and not isinstance(content, str):
        raise fail()
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Reply(
        content,
        _int_or_none(usage.get("prompt_tokens")),
        _int_or_none(usage.get("completion_tokens")),
        body=None if content and content.strip() else body,
    )


class Provider(Protocol):
    """What the harness needs of a provider."""

    name: str
    model: str
    is_llm: bool
    uses_cache: bool
    network: bool
    """Answers come over the network (counted as requests)."""

    @property
    def label(self) -> str:
        """How tables, figures and summaries name it."""
        ...

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        """One answer; raises ``TransportError`` (retryable) or ``FatalError``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def _body_of(response: Any) -> str | None:
    """The text of an HTTP response, or None when it cannot be read."""
    try:
        text = response.text
    except Exception:  # a streamed or closed response
        return None
    return text if isinstance(text, str) and text else None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), or None."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - pd.Timestamp.now(tz="UTC").to_pydatetime()).total_seconds())


@dataclass
class OpenAIProvider:
    """Chat completions through the ``openai`` SDK (any OpenAI-compatible server).

    Parameters
    ----------
    model, base_url, api_key
        Default from ``REGIME_LAB_LLM_MODEL`` / ``REGIME_LAB_LLM_BASE_URL`` and
        ``OPENROUTER_API_KEY`` or ``OPENAI_API_KEY``; a server that needs no key (a local
        llama.cpp) gets a placeholder. Credentials in the base URL are used, and masked
        wherever the URL is shown (``label``, ``endpoint``, ``repr``, error texts).
    temperature, max_tokens
        Request parameters (0 to 2; at least 1): part of the cache key.
    json_mode
        Ask for ``response_format={"type": "json_object"}`` (servers that reject it get a 400:
        turn it off).
    json_schema
        Ask for ``response_format={"type": "json_schema", ...}`` with the decision's schema
        (``research.llm.replies.DECISION_SCHEMA``) instead: a server that enforces it (llama.cpp)
        cannot answer outside it.
    seed
        The sampling seed sent with each request (None: not sent).

    Raises
    ------
    research.exceptions.InputError
        A base URL that is not an http(s) URL with a host, a temperature or token limit out of
        range.
    """

    model: str = ""
    base_url: str = ""
    api_key: str | None = None
    temperature: float = 0.0
    max_tokens: int = 300
    json_mode: bool = True
    concurrency: int = 8
    json_schema: bool = False
    seed: int | None = None
    name: str = "openai"
    is_llm: bool = True
    uses_cache: bool = True
    network: bool = True
    _client: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.model = self.model or os.environ.get("REGIME_LAB_LLM_MODEL", DEFAULT_MODEL)
        given = bool(self.base_url)
        self.base_url = self.base_url or os.environ.get("REGIME_LAB_LLM_BASE_URL", DEFAULT_BASE_URL)
        check_base_url(self.base_url, option="base_url" if given else "$REGIME_LAB_LLM_BASE_URL")
        if self.api_key is None:
            self.api_key = os.environ.get("OPENROUTER_API_KEY") or os.environ.get("OPENAI_API_KEY")
        temperature = self.temperature
        if isinstance(temperature, bool) or not (
            isinstance(temperature, int | float) and math.isfinite(temperature)
        ):
            raise InputError(f"temperature must be a number from 0 to 2, got {temperature!r}")
        if not 0 <= temperature <= 2:
            raise InputError(f"temperature must be from 0 to 2, got {temperature:g}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise InputError(f"max_tokens must be a whole number, got {self.max_tokens!r}")
        if self.max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {self.max_tokens}")

    def __repr__(self) -> str:  # never show the key, nor credentials in the URL
        return f"OpenAIProvider(model={self.model!r}, base_url={mask_url(self.base_url)!r})"

    @property
    def endpoint(self) -> str:
        """The server, as labels and cache keys name it: the base URL with its credentials
        masked and no trailing slash."""
        return mask_url(self.base_url).rstrip("/")

    @property
    def label(self) -> str:
        return f"{self.model} via {self.endpoint}"

    @property
    def params(self) -> dict[str, object]:
        """The request parameters that enter the cache key."""
        params: dict[str, object] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
        }
        if self.json_schema:  # the schema's own hash: a changed schema is asked again
            params["json_schema"] = hashlib.sha256(
                json.dumps(DECISION_SCHEMA, sort_keys=True).encode()
            ).hexdigest()[:16]
        if self.seed is not None:
            params["seed"] = self.seed
        return params

    def secrets(self) -> list[str]:
        """Strings that must never be written: the key and the credentials in the base URL."""
        return [s for s in [self.api_key, *url_secrets(self.base_url)] if s]

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            # retries are the harness's (it honours Retry-After); the harness's semaphore
            # bounds the requests in flight
            self._client = AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key or "not-needed", max_retries=0
            )
        return self._client

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        import openai

        client = self._get_client()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": timeout,
        }
        if self.json_schema:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "decision", "strict": True, "schema": DECISION_SCHEMA},
            }
        elif self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if self.seed is not None:
            kwargs["seed"] = self.seed
        try:
            raw = await client.chat.completions.with_raw_response.create(**kwargs)
        except openai.RateLimitError as exc:
            raise TransportError(
                "HTTP 429 rate limited", retry_after=_retry_after(exc.response.headers)
            ) from exc
        except openai.APIStatusError as exc:
            code = exc.status_code
            if code >= 500 or code in (408, 409):
                raise TransportError(
                    f"HTTP {code} from the server", retry_after=_retry_after(exc.response.headers)
                ) from exc
            raise FatalError(
                mask_urls(f"HTTP {code}: {exc.message}"),
                raw=_body_of(exc.response),
                cacheable=False,
            ) from exc
        except openai.APITimeoutError as exc:
            raise TransportError(f"no answer within {timeout:g} s (timeout)") from exc
        except openai.APIConnectionError as exc:
            raise TransportError(mask_urls(f"connection failed: {exc.__cause__ or exc}")) from exc
        return parse_completion(raw.http_response.text)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


@dataclass
class LocalProvider:
    """A GGUF model served by ``llama-server`` on 127.0.0.1, started at the first request (not
    at all when the cache answers everything) and stopped by ``aclose``.

    Parameters
    ----------
    spec
        The server: model file, threads, slots (= the evaluation's concurrency).
    temperature, max_tokens, seed
        Sampling settings, sent with every request and recorded.

    Its ``endpoint`` (part of the cache key) is the server build, not the port; its ``params``
    hold the model file's SHA-256, the threads and the slots, so a reply is reused only from the
    same model, build and settings.
    """

    spec: ServerSpec
    temperature: float = 0.0
    max_tokens: int = 300
    seed: int = 42
    name: str = "local"
    is_llm: bool = True
    uses_cache: bool = True
    network: bool = True
    _server: LocalServer | None = field(default=None, repr=False)
    _client: OpenAIProvider | None = field(default=None, repr=False)
    _lock: Any = field(default=None, repr=False)
    _failed: Exception | None = field(default=None, repr=False)

    model: str = ""

    def __post_init__(self) -> None:
        self.model = self.spec.model_name

    @property
    def endpoint(self) -> str:
        return f"local llama-server: {self.spec.build}"

    @property
    def label(self) -> str:
        return f"{self.model} via local llama-server ({count(self.spec.threads, 'thread')})"

    @property
    def sampling(self) -> dict[str, object]:
        """The sampling settings of every request."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "response_format": "json_schema",
            "schema_sha256": hashlib.sha256(
                json.dumps(DECISION_SCHEMA, sort_keys=True).encode()
            ).hexdigest()[:16],
            "cache_prompt": True,
        }

    @property
    def params(self) -> dict[str, object]:
        return {**self.sampling, **self.spec.provenance()}

    def provenance(self) -> dict[str, object]:
        """What each recorded reply is stored with."""
        p = self.spec.provenance()
        return {
            "model_sha256": p["model_sha256"],
            "server_build": p["server_build"],
            "threads": p["threads"],
            "sampling": json.dumps(
                {**self.sampling, "slots": p["slots"], "ctx_per_slot": p["ctx_per_slot"]},
                sort_keys=True,
            ),
        }

    def about(self) -> str:
        """The local model in one sentence (with a warning for the default test model)."""
        p = self.spec.provenance()
        text = (
            f"**Local model:** `{self.model}` (model file SHA-256 `{self.spec.model_sha256[:16]}…`)"
            f" on {p['server_build']}, {count(int(str(p['threads'])), 'thread')}, "
            f"{count(int(str(p['slots'])), 'slot')}, sampling "
            f"`{json.dumps(self.sampling, sort_keys=True)}`; every reply is recorded with this "
            "provenance."
        )
        if self.spec.model.name == DEFAULT_MODEL_FILE:
            text += " " + TEST_MODEL_NOTE
        return text

    def secrets(self) -> list[str]:
        return []

    @property
    def server(self) -> LocalServer | None:
        """The running server, once started."""
        return self._server

    async def _ready(self) -> OpenAIProvider:
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._failed is not None:  # the first request's start failed: so do the others
                raise self._failed
            if self._client is None:
                server = LocalServer(self.spec)
                self._server = server  # ``aclose`` stops it, also while it loads
                try:
                    # launched from the event loop's thread, which outlives the run; the model
                    # loads while a worker thread waits
                    server.launch()
                    base = await asyncio.to_thread(server.wait_ready)
                except Exception as exc:
                    self._failed = exc
                    raise
                self._client = OpenAIProvider(
                    model=self.model,
                    base_url=base,
                    api_key="not-needed",
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    json_schema=True,
                    seed=self.seed,
                    concurrency=self.spec.slots,
                )
        return self._client

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        client = await self._ready()
        if self._server is not None and not self._server.running():
            raise FatalError(
                f"the local llama-server stopped (log: {self._server.log_path})", cacheable=False
            )
        return await client.complete(
            messages, prompt_name=prompt_name, trade_id=trade_id, timeout=timeout
        )

    async def aclose(self) -> None:
        """Close the connections and stop the server; the provider can be used again (in
        another event loop: the next request starts a new server)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._lock = None  # bound to this run's event loop
        self._failed = None


@dataclass
class ReplayProvider:
    """Answers recorded earlier: the row of ``decisions`` (``llm_decisions`` contract) with the
    same trade id and prompt variant (and model, when the file holds several).

    A recorded run's provenance columns (``research.llm.harness.PROVENANCE_COLUMNS``), when the
    file has them, name the run (``about``), and its prompt hashes are checked: a reply recorded
    under another text of the prompt is not replayed as an answer to this one (a ``FatalError``
    naming both hashes)."""

    decisions: pd.DataFrame
    model: str = ""
    source: str = "replay"
    name: str = "replay"
    is_llm: bool = True
    uses_cache: bool = False
    network: bool = False
    params: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        models = sorted(set(self.decisions["model"].astype(str)))
        if not self.model:
            if len(models) != 1:
                raise ValueError(
                    f"{self.source}: the file holds models {models}; say which one (--model)"
                )
            self.model = models[0]
        elif self.model not in models:
            raise ValueError(f"{self.source}: no decisions of model {self.model!r} ({models})")
        part = self.decisions[self.decisions["model"].astype(str) == self.model]
        self._part = part
        self._rows = {(str(r["trade_id"]), str(r["prompt_variant"])): r for _, r in part.iterrows()}

    def _values(self, column: str) -> list[str]:
        if column not in self._part.columns:
            return []
        return sorted({str(v) for v in self._part[column].dropna()})

    @property
    def recorded(self) -> str | None:
        """The day(s) the run was recorded (``2026-12-06`` or ``2026-12-05 to 2026-12-06``), or
        None when the file does not say."""
        stamps = pd.to_datetime(pd.Series(self._values("recorded_at")), errors="coerce", utc=True)
        stamps = stamps.dropna()
        if stamps.empty:
            return None
        first, last = stamps.min().date(), stamps.max().date()
        return str(first) if first == last else f"{first} to {last}"

    @property
    def label(self) -> str:
        when = self.recorded
        if when is None:  # as earlier versions named it: their outputs can be continued
            return f"{self.model} (recorded decisions from {self.source})"
        return f"{self.model} (run recorded {when}, replayed from {self.source})"

    def about(self) -> str:
        """The recorded run in one sentence: model, its file's hash, server, threads, sampling,
        date and size; what is unknown is said to be."""
        n = len(self._part)
        parts = [f"**Recorded run replayed:** {n:,} replies of `{self.model}` from {self.source}"]
        when = self.recorded
        parts.append(f"recorded {when}" if when else "recording date not in the file")
        sha = self._values("model_sha256")
        if sha:
            parts.append("model file SHA-256 " + ", ".join(f"`{h[:16]}…`" for h in sha))
        build = self._values("server_build")
        if build:
            parts.append("server " + "; ".join(build))
        threads = self._values("threads")
        if threads:
            parts.append(f"{' / '.join(t.removesuffix('.0') for t in threads)} threads")
        sampling = self._values("sampling")
        if sampling:
            parts.append("sampling " + "; ".join(f"`{s}`" for s in sampling))
        if not (sha or build):
            parts.append("no model provenance in the file (recorded before provenance was kept)")
        text = ", ".join(parts) + "."
        if self.model == DEFAULT_MODEL_FILE.removesuffix(".gguf"):
            text += " " + TEST_MODEL_NOTE
        return text

    def secrets(self) -> list[str]:
        return []

    def row_provenance(self, trade_id: str, prompt_name: str) -> dict[str, object]:
        """The recorded reply's own provenance (model hash, build, threads, sampling, when it
        was recorded), for the replay's records: a replayed run keeps naming its model."""
        row = self._rows.get((trade_id, prompt_name))
        keys = ("model_sha256", "server_build", "threads", "sampling", "recorded_at")
        if row is None:
            return {}
        return {k: row[k] for k in keys if k in row.index and pd.notna(row[k])}

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        row = self._rows.get((trade_id, prompt_name))
        if row is None:
            raise FatalError(f"no recorded decision for trade {trade_id} / prompt {prompt_name}")
        recorded_hash = row.get("prompt_sha256")
        if isinstance(recorded_hash, str) and recorded_hash:
            system = next((m["content"] for m in messages if m["role"] == "system"), "")
            now = hashlib.sha256(system.encode("utf-8")).hexdigest()
            if now != recorded_hash:
                raise FatalError(
                    f"prompt {prompt_name!r} was recorded with another text (sha256 "
                    f"{recorded_hash[:12]}…, now {now[:12]}…): record the run again"
                )
        if isinstance(row.get("error"), str) and row["error"]:
            raise FatalError(f"recorded error: {row['error']}")
        payload = {
            "decision": row["decision"],
            "confidence": float(row["confidence"]),
            "contracts": int(row["contracts"]) if pd.notna(row.get("contracts")) else 1,
            "reason": "" if pd.isna(row.get("reason")) else str(row.get("reason")),
        }
        tokens = row.get("tokens")
        return Reply(json.dumps(payload), None, int(tokens) if pd.notna(tokens) else None)

    async def aclose(self) -> None:
        return None


_NUM = r"(-?\d+(?:\.\d+)?)"
_FIELDS = {
    "iv_percentile": re.compile(r"IV Percentile: " + _NUM),
    "vix": re.compile(r"VIX: " + _NUM),
    "risk_reward": re.compile(r"Risk/Reward: " + _NUM),
    "delta": re.compile(r"\(delta: " + _NUM),
}
_BAR = {"aggressive": 0.40, "balanced": 0.50, "conservative": 0.60}


@dataclass
class HeuristicProvider:
    """A deterministic offline stand-in, **not an LLM**: it reads the numbers in the context
    text and scores the trade.

    ``score = 0.5 + (IV percentile - 50) / 200 - (risk/reward - 15) / 100 - 0.1 [VIX > 30]
    - 0.1 [regime names a bear or high/extreme volatility]``, clipped to [0.05, 0.95]; the bar
    is 0.40 for a prompt that says "Approve unless", 0.60 for "Reject unless", else 0.50.
    Approve when the score reaches the bar; confidence = the score when approving, 1 - score
    when rejecting; contracts 1-5 rising with the margin over the bar.
    """

    model: str = "heuristic-v1"
    name: str = "heuristic"
    is_llm: bool = False
    uses_cache: bool = False
    network: bool = False
    params: dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "heuristic rule (not an LLM)"

    def secrets(self) -> list[str]:
        return []

    @staticmethod
    def score(context: str) -> float:
        """The rule's score for a context text (see the class docstring)."""
        vals = {}
        for key, rx in _FIELDS.items():
            m = rx.search(context)
            vals[key] = float(m.group(1)) if m else math.nan
        s = 0.5
        if not math.isnan(vals["iv_percentile"]):
            s += (vals["iv_percentile"] - 50) / 200
        if not math.isnan(vals["risk_reward"]):
            s -= (vals["risk_reward"] - 15) / 100
        if vals["vix"] > 30:
            s -= 0.1
        regime = re.search(r"Market regime: (\S+)", context)
        if regime and re.search(r"bear|high|extreme", regime.group(1), re.I):
            s -= 0.1
        return min(0.95, max(0.05, s))

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        bar = (
            _BAR["aggressive"]
            if "Approve unless" in system
            else _BAR["conservative"]
            if "Reject unless" in system
            else _BAR["balanced"]
        )
        s = self.score(user)
        approve = s >= bar
        margin = max(0.0, s - bar) / (1 - bar)
        payload = {
            "decision": "approve" if approve else "reject",
            "confidence": round(s if approve else 1 - s, 4),
            "contracts": 1 + min(4, int(margin * 5)) if approve else 1,
            "reason": f"rule score {s:.3f} against a bar of {bar:.2f}",
        }
        return Reply(json.dumps(payload), None, None)

    async def aclose(self) -> None:
        return None


def make_provider(
    kind: str | None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    replay_path: str | Path | None = None,
    concurrency: int = 8,
    json_mode: bool = True,
    threads: int = 0,
) -> Provider:
    """``openai``, ``local`` (``model``: a GGUF file, default SmolLM2-135M; ``threads``: 0 for
    the CPU count; ``concurrency`` server slots), ``replay`` (needs ``replay_path``) or
    ``heuristic``; None: ``replay`` when ``replay_path`` is given, else ``heuristic``.

    Raises
    ------
    ValueError
        Unknown kind, replay without a file, or a base URL that is not an http(s) URL
        (``research.exceptions.InputError``).
    """
    if kind is None:
        kind = "replay" if replay_path else "heuristic"
    if kind == "openai":
        return OpenAIProvider(
            model=model or "",
            base_url=base_url or "",
            api_key=api_key,
            concurrency=concurrency,
            json_mode=json_mode,
        )
    if kind == "local":
        return LocalProvider(ServerSpec.of(model or None, threads=threads, slots=concurrency))
    if kind == "replay":
        if replay_path is None:
            raise ValueError("--provider replay needs the recorded decisions (--replay FILE)")
        from research.data.loaders import load

        return ReplayProvider(load("llm_decisions", replay_path), model or "", str(replay_path))
    if kind == "heuristic":
        return HeuristicProvider()
    raise ValueError(f"unknown provider {kind!r} (openai, local, replay or heuristic)")
