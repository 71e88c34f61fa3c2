"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

``ChatServer(script)`` answers ``POST …/chat/completions``; ``script(request_json, n)`` (``n`` =
how many requests this conversation — same messages — has made before) returns what to do:

- ``Ok(content)``: 200 with a chat completion whose message is ``content`` (usage filled in);
- ``RateLimited(retry_after)``: 429 with a ``Retry-After`` header;
- ``ServerError(status)``: a 5xx;
- ``Hang(seconds)``: wait, then answer 200 (past the client's timeout);
- ``Malformed()``: 200 whose body is not JSON;
- ``Drop()``: close the connection without an answer.

``delay`` adds a pause before every answer (the bench's 200 ms). ``requests`` counts requests;
``authorizations`` records the Authorization headers seen.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ChatServer", "Drop", "Hang", "Malformed", "Ok", "RateLimited", "ServerError"]


@dataclass(frozen=True)
class Ok:
    content: str
    prompt_tokens: int = 120
    completion_tokens: int = 30


@dataclass(frozen=True)
class RateLimited:
    retry_after: float = 1.0


@dataclass(frozen=True)
class ServerError:
    status: int = 500


@dataclass(frozen=True)
class Hang:
    seconds: float = 5.0


@dataclass(frozen=True)
class Malformed:
    body: str = "{not json"


@dataclass(frozen=True)
class Drop:
    pass


Action = Ok | RateLimited | ServerError | Hang | Malformed | Drop
Script = Callable[[dict[str, Any], int], Action]


def _default(request: dict[str, Any], n: int) -> Action:
    return Ok(
        json.dumps({"decision": "approve", "confidence": 0.6, "contracts": 1, "reason": "ok"})
    )


@dataclass
class ChatServer:
    """Start with ``with ChatServer(script) as server:``; ``server.base_url`` ends in ``/v1``."""

    script: Script = _default
    delay: float = 0.0
    requests: int = 0
    authorizations: list[str] = field(default_factory=list)
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                key = json.dumps(request.get("messages"), sort_keys=True)
                with owner._lock:
                    owner.requests += 1
                    owner.authorizations.append(self.headers.get("Authorization", ""))
                    n = owner._seen[key]
                    owner._seen[key] += 1
                action = owner.script(request, n)
                if owner.delay:
                    time.sleep(owner.delay)
                if isinstance(action, Drop):
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if isinstance(action, Hang):
                    time.sleep(action.seconds)
                    action = _default(request, n)
                if isinstance(action, RateLimited):
                    body = json.dumps({"error": {"message": "rate limited"}}).encode()
                    self._send(429, body, {"Retry-After": f"{action.retry_after:g}"})
                elif isinstance(action, ServerError):
                    body = json.dumps({"error": {"message": "server error"}}).encode()
                    self._send(action.status, body)
                elif isinstance(action, Malformed):
                    self._send(200, action.body.encode())
                else:
                    assert isinstance(action, Ok)
                    payload = {
                        "id": f"chatcmpl-{owner.requests}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": request.get("model", "test-model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": action.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": action.prompt_tokens,
                            "completion_tokens": action.completion_tokens,
                            "total_tokens": action.prompt_tokens + action.completion_tokens,
                        },
                    }
                    self._send(200, json.dumps(payload).encode())

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops bursts of new connections

        server = Server(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
