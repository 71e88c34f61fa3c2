"""Who answers: an OpenAI-compatible chat-completions server, recorded decisions, or an offline
heuristic.

- ``OpenAIProvider``: the ``openai`` SDK against any compatible server — OpenRouter by default
  (``https://openrouter.ai/api/v1``), or a local llama.cpp / Ollama / vLLM server. Base URL, model
  and key come from arguments or the environment (``REGIME_LAB_LLM_BASE_URL``,
  ``REGIME_LAB_LLM_MODEL``, ``OPENROUTER_API_KEY`` / ``OPENAI_API_KEY``). The SDK's own retries
  are off: the harness retries, honouring ``Retry-After``.
- ``ReplayProvider``: decisions recorded earlier (``llm_decisions`` contract), answered again
  without a network.
- ``HeuristicProvider``: a deterministic rule on the numbers in the context — **not an LLM**,
  and labelled so wherever its decisions go — so the pipeline runs without a key.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

__all__ = [
    "DEFAULT_BASE_URL",
    "HeuristicProvider",
    "OpenAIProvider",
    "Provider",
    "ReplayProvider",
    "Reply",
    "FatalError",
    "TransportError",
    "make_provider",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "x-ai/grok-2"
"""The validation plan's choice: a cheap, fast model through OpenRouter."""

Message = Mapping[str, str]


@dataclass(frozen=True)
class Reply:
    """A provider's answer: the raw text and the token counts (None when unknown)."""

    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class TransportError(RuntimeError):
    """A request that may succeed when retried (rate limit, 5xx, timeout, dropped connection).

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(RuntimeError):
    """A request that will not succeed when retried (e.g. 401, 404, 400); ``raw`` holds the
    body when the server answered something that is not a chat completion."""

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


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
        llama.cpp) gets a placeholder.
    json_mode
        Ask for ``response_format={"type": "json_object"}`` (servers that reject it get a 400:
        turn it off).
    """

    model: str = ""
    base_url: str = ""
    api_key: str | None = None
    temperature: float = 0.0
    max_tokens: int = 300
    json_mode: bool = True
    concurrency: int = 8
    name: str = "openai"
    is_llm: bool = True
    uses_cache: bool = True
    network: bool = True
    _client: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.model = self.model or os.environ.get("REGIME_LAB_LLM_MODEL", DEFAULT_MODEL)
        self.base_url = self.base_url or os.environ.get("REGIME_LAB_LLM_BASE_URL", DEFAULT_BASE_URL)
        if self.api_key is None:
            self.api_key = os.environ.get("OPENROUTER_API_KEY") or os.environ.get("OPENAI_API_KEY")

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def label(self) -> str:
        return f"{self.model} via {self.base_url}"

    @property
    def params(self) -> dict[str, object]:
        """The request parameters that enter the cache key."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
        }

    def secrets(self) -> list[str]:
        """Strings that must never be written (the key)."""
        return [self.api_key] if self.api_key else []

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
        if self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
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
            raise FatalError(f"HTTP {code}: {exc.message}") from exc
        except openai.APITimeoutError as exc:
            raise TransportError(f"no answer within {timeout:g} s (timeout)") from exc
        except openai.APIConnectionError as exc:
            raise TransportError(f"connection failed: {exc.__cause__ or exc}") from exc
        body = raw.http_response.text
        try:
            resp = raw.parse()
        except Exception as exc:  # a 200 whose body is not a chat completion
            raise FatalError(
                f"the server's answer is not a chat completion ({type(exc).__name__})", raw=body
            ) from exc
        choices = getattr(resp, "choices", None) or []
        if not choices:
            return Reply(None)
        text = choices[0].message.content
        usage = getattr(resp, "usage", None)
        return Reply(
            text,
            getattr(usage, "prompt_tokens", None) if usage else None,
            getattr(usage, "completion_tokens", None) if usage else None,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


@dataclass
class ReplayProvider:
    """Answers recorded earlier: the row of ``decisions`` (``llm_decisions`` contract) with the
    same trade id and prompt variant (and model, when the file holds several)."""

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
        self._rows = {(str(r["trade_id"]), str(r["prompt_variant"])): r for _, r in part.iterrows()}

    @property
    def label(self) -> str:
        return f"{self.model} (recorded decisions from {self.source})"

    def secrets(self) -> list[str]:
        return []

    async def complete(
        self, messages: Sequence[Message], *, prompt_name: str, trade_id: str, timeout: float
    ) -> Reply:
        row = self._rows.get((trade_id, prompt_name))
        if row is None:
            raise FatalError(f"no recorded decision for trade {trade_id} / prompt {prompt_name}")
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
    kind: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    replay_path: str | Path | None = None,
    concurrency: int = 8,
    json_mode: bool = True,
) -> Provider:
    """``openai``, ``replay`` (needs ``replay_path``) or ``heuristic``.

    Raises
    ------
    ValueError
        Unknown kind, or replay without a file.
    """
    if kind == "openai":
        return OpenAIProvider(
            model=model or "",
            base_url=base_url or "",
            api_key=api_key,
            concurrency=concurrency,
            json_mode=json_mode,
        )
    if kind == "replay":
        if replay_path is None:
            raise ValueError("--provider replay needs the recorded decisions (--replay FILE)")
        from research.data.loaders import load

        return ReplayProvider(load("llm_decisions", replay_path), model or "", str(replay_path))
    if kind == "heuristic":
        return HeuristicProvider()
    raise ValueError(f"unknown provider {kind!r} (openai, replay or heuristic)")
