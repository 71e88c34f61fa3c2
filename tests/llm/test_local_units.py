"""The local model server's parts that need no build: the build's instruction-set options (never
AMX), finding the binary and the model with one-line errors, the server's life cycle against a
stand-in ``llama-server`` (a real HTTP server on 127.0.0.1 that answers ``/health`` 503 while
"loading", then 200 — or exits, or never gets ready), a recorded run's provenance columns and its
replay (named by model and date; refused when the prompt's text changed), and the command line's
bad input."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from research.config import PATHS
from research.data.loaders import load
from research.exceptions import InputError
from research.llm import local_build
from research.llm.harness import PROVENANCE_COLUMNS, EvalConfig, evaluate, prompt_hash
from research.llm.local_build import isa_flags
from research.llm.local_server import LocalServer, ServerError, ServerSpec, find_server
from research.llm.prompts import load_prompts
from research.llm.providers import HeuristicProvider, ReplayProvider, make_provider
from research.testing.cli import run_cli

CPUINFO = (
    "processor : 0\n"
    "flags : fpu sse4_2 avx avx2 bmi2 fma f16c avx512f avx512_vnni amx_tile amx_int8\n"
)

FAKE = textwrap.dedent(
    """\
    #!{python}
    import http.server, json, os, sys, time
    if "--version" in sys.argv:
        print("version: 9 (fake0001)"); sys.exit(0)
    mode = os.environ.get("FAKE_LLAMA_MODE", "ok")
    print("loading model", sys.argv[sys.argv.index("--model") + 1], flush=True)
    if mode == "exit":
        print("error: failed to load model: not a model", flush=True); sys.exit(1)
    port = int(sys.argv[sys.argv.index("--port") + 1])
    born = time.time()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ready = mode == "ok" and time.time() - born > 0.3
            self.send_response(200 if ready else 503)
            self.end_headers()
            self.wfile.write(b"{{}}")

        def do_POST(self):  # a chat completion with a valid decision, after 0.2 s
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.2)
            text = json.dumps({{"decision": "approve", "confidence": 0.6, "contracts": 2,
                               "reason": "fake"}})
            message = {{"role": "assistant", "content": text}}
            body = json.dumps({{"choices": [{{"message": message}}],
                               "usage": {{"prompt_tokens": 50, "completion_tokens": 9}}}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


@pytest.fixture()
def fake_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``llama-server`` as ``$REGIME_LAB_LLAMA_SERVER``, an empty cache."""
    exe = tmp_path / "llama-server"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("REGIME_LAB_LLAMA_SERVER", str(exe))
    monkeypatch.setenv("REGIME_LAB_CACHE", str(tmp_path / "cache"))
    return exe


@pytest.fixture()
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(60)))
    return path


def test_the_build_turns_on_the_cpus_instruction_sets_but_never_amx() -> None:
    flags = isa_flags(cpuinfo=CPUINFO)
    assert flags[0] == "-DGGML_NATIVE=OFF"  # -march=native would compile AMX tile code
    assert "-DGGML_AVX512=ON" in flags and "-DGGML_AVX512_VNNI=ON" in flags
    assert "-DGGML_AVX2=ON" in flags and "-DGGML_AVX512_BF16=OFF" in flags
    assert not any("AMX" in f for f in flags)
    no_avx512 = isa_flags(cpuinfo=CPUINFO.replace("avx512f", "").replace("avx512_vnni", ""))
    assert "-DGGML_AVX512=OFF" in no_avx512
    assert isa_flags(portable=True, cpuinfo=CPUINFO) == ("-DGGML_NATIVE=OFF",)
    info = local_build.BuildInfo(
        Path("x"), local_build.SDIST, "1 (abc)", (*local_build.CMAKE_FLAGS, *flags), "g++",
        "x86_64", 200.0, "2026-12-06T00:00:00Z",
    )  # fmt: skip
    assert info.label == "llama.cpp 1 (abc) (llama-cpp-python==0.3.36, AVX-512 x86_64 build)"


def test_missing_server_and_model_are_one_line_errors_saying_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGIME_LAB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("REGIME_LAB_LLAMA_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match=r"no llama-server: build it once with `make llama-"):
        find_server()
    monkeypatch.setenv("REGIME_LAB_LLAMA_SERVER", str(tmp_path / "nope"))
    with pytest.raises(ServerError, match=r"REGIME_LAB_LLAMA_SERVER .*nope is not an executable"):
        find_server()
    with pytest.raises(InputError, match=r"--model .*absent.gguf: no such file"):
        ServerSpec.of(tmp_path / "absent.gguf")
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(InputError, match=r"notes.gguf: not a GGUF model file"):
        ServerSpec.of(text)
    monkeypatch.setattr(local_build, "_installed_default_model", lambda: None)
    with pytest.raises(InputError, match=r"no default model yet; fetch it once with `make llama"):
        ServerSpec.of(None)


def test_the_server_starts_waits_for_health_and_stops(fake_server: Path, gguf: Path) -> None:
    spec = ServerSpec.of(gguf, threads=2, slots=3)
    assert spec.build == f"llama.cpp 9 (fake0001) ({fake_server})"
    assert spec.model_sha256 == local_build.file_sha256(gguf) and spec.model_name == "tiny-model"
    command = spec.command(1234)
    assert command[command.index("--ctx-size") + 1] == str(3 * 4096)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    server = LocalServer(spec)
    with server:
        assert server.running() and server.ready_s >= 0.3  # waited through the 503s
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        pid = server.pid
        # a second server on the same port is refused before starting
        with pytest.raises(ServerError, match=rf"--port {server.port}: something already"):
            LocalServer(spec, port=server.port).start()
    assert not server.running() and pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not server.log_path.exists()  # a clean stop removes its temporary log
    refused = LocalServer(spec, port=server.port)
    assert refused.log_path == Path()  # no temporary log made for a start that never ran


def test_a_server_that_exits_or_never_gets_ready_is_a_clear_error(
    fake_server: Path, gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ServerSpec.of(gguf, threads=1)
    monkeypatch.setenv("FAKE_LLAMA_MODE", "exit")
    gone = LocalServer(spec)  # its own temporary log
    with pytest.raises(ServerError, match=r"exited \(code 1\) before it was ready: error: failed"):
        gone.start()
    gone.stop()  # the clean-up after the error keeps the log the error names
    assert "failed to load model" in gone.log_path.read_text()
    gone.log_path.unlink()
    monkeypatch.setenv("FAKE_LLAMA_MODE", "hang")
    slow = LocalServer(spec, ready_timeout=0.5, log_path=tmp_path / "hang.log")
    with pytest.raises(ServerError, match=r"not ready within 0.5 s: loading model"):
        slow.start()
    assert not slow.running() and slow.log_path.exists()  # kept for the user to read
    # stopped before it started: it never starts
    monkeypatch.setenv("FAKE_LLAMA_MODE", "ok")
    early = LocalServer(spec, log_path=tmp_path / "early.log")
    early.stop()
    with pytest.raises(ServerError, match="stopped before it started"):
        early.start()
    assert early.pid is None
    with pytest.raises(InputError, match=r"--threads 100000 is more than this machine's"):
        ServerSpec.of(gguf, threads=100_000)


def _sample(n: int) -> tuple[pd.DataFrame, pd.Series]:
    """The first ``n`` sample trades, without entry regimes (the context says "unknown")."""
    trades = load("trades", PATHS.sample / "trades.json").head(n)
    return trades, pd.Series([None] * n, dtype=object)


def _recorded(tmp_path: Path) -> tuple[pd.DataFrame, tuple[pd.DataFrame, pd.Series]]:
    trades, regimes = _sample(5)
    result = evaluate(
        trades, HeuristicProvider(), load_prompts(["balanced"]), regimes=regimes, progress=False
    )
    frame = result.decisions.copy()
    # as a local run records them
    frame["model"] = "tiny-model"
    frame["model_sha256"] = "ab" * 32
    frame["server_build"] = "llama.cpp 9 (fake0001)"
    frame["threads"] = 2
    frame["sampling"] = json.dumps({"temperature": 0.0, "seed": 42})
    frame["recorded_at"] = ["2026-12-05T23:59:00Z"] + ["2026-12-06T01:00:00Z"] * 4
    return frame, (trades, regimes)


def test_every_record_carries_its_prompt_hash_sampling_and_date(tmp_path: Path) -> None:
    trades, regimes = _sample(2)
    prompts = load_prompts(["balanced", "conservative"])
    result = evaluate(trades, HeuristicProvider(), prompts, regimes=regimes, progress=False)
    d = result.decisions
    assert list(d.columns[-len(PROVENANCE_COLUMNS) :]) == list(PROVENANCE_COLUMNS)
    for p in prompts:
        assert (d.loc[d["prompt_variant"] == p.name, "prompt_sha256"] == prompt_hash(p.text)).all()
    assert d["model_sha256"].isna().all() and d["server_build"].isna().all()
    assert pd.to_datetime(d["recorded_at"], utc=True).notna().all()


def test_a_recorded_run_replays_named_by_its_model_and_dates(tmp_path: Path) -> None:
    frame, (trades, regimes) = _recorded(tmp_path)
    path = tmp_path / "run.parquet"
    frame.to_parquet(path)
    provider = make_provider(None, replay_path=path)
    assert isinstance(provider, ReplayProvider)
    assert (
        provider.label
        == f"tiny-model (run recorded 2026-12-05 to 2026-12-06, replayed from {path})"
    )
    about = provider.about()
    assert "5 replies of `tiny-model`" in about and "recorded 2026-12-05 to 2026-12-06" in about
    assert "`abababababababab…`" in about and "llama.cpp 9 (fake0001)" in about
    assert "2 threads" in about
    again = evaluate(trades, provider, load_prompts(["balanced"]), regimes=regimes, progress=False)
    assert again.decisions["error"].isna().all()
    assert again.decisions["decision"].tolist() == frame["decision"].tolist()
    assert again.about == about  # the run's text names the recorded run
    # the replay's records keep the recorded replies' provenance, not the replay's
    for column in ("model_sha256", "server_build", "sampling", "recorded_at"):
        assert again.decisions[column].tolist() == frame[column].tolist(), column
    # without provenance (a file of an older version): said so, still replayed
    old = frame.drop(columns=list(PROVENANCE_COLUMNS))
    plain = ReplayProvider(old, source="old.csv")
    assert plain.label == "tiny-model (recorded decisions from old.csv)"  # as earlier versions
    assert "no model provenance in the file" in plain.about()
    assert make_provider(None).name == "heuristic"


def test_a_reply_recorded_under_another_prompt_text_is_not_replayed(tmp_path: Path) -> None:
    frame, (trades, regimes) = _recorded(tmp_path)
    frame.loc[0, "prompt_sha256"] = prompt_hash("an older wording of the prompt")
    result = evaluate(
        trades, ReplayProvider(frame), load_prompts(["balanced"]), regimes=regimes, progress=False
    )
    errors = result.decisions["error"]
    assert errors.iloc[1:].isna().all()
    assert "prompt 'balanced' was recorded with another text" in errors.iloc[0]
    assert "record the run again" in errors.iloc[0]


def _sample_file(folder: Path) -> Path:
    path = folder / "trades.json"
    path.write_text(json.dumps(json.loads((PATHS.sample / "trades.json").read_text())[:2]))
    return path


def _bars(folder: Path) -> Path:
    from research.testing.bars import write_sample_period_bars

    return write_sample_period_bars(folder / "bars.csv")


def test_command_line_refuses_bad_local_options_in_one_line(
    tmp_path: Path, gguf: Path, fake_server: Path
) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    res = run_cli("llm", "serve-local", "--model", str(text))
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert "notes.gguf: not a GGUF model file" in res.stderr
    res = run_cli("llm", "serve-local", "--threads", "-1", "--model", str(gguf))
    assert res.returncode == 1 and "--threads" in res.stderr and res.stderr.count("\n") == 1
    res = run_cli(
        "llm", "evaluate", "--provider", "local", "--model", str(tmp_path / "x.gguf"),
        "--out", str(tmp_path / "o.csv"),
    )  # fmt: skip
    assert res.returncode == 1 and "x.gguf: no such file" in res.stderr
    assert not (tmp_path / "o.csv").exists()
    # a server that cannot start: one line, its log named, no file and no journal left
    os.environ["FAKE_LLAMA_MODE"] = "exit"
    try:
        res = run_cli(
            "llm", "evaluate", "--provider", "local", "--model", str(gguf), "--trades",
            str(_sample_file(tmp_path)), "--bars", str(_bars(tmp_path)),
            "--out", str(tmp_path / "o.csv"), "--cache", str(tmp_path / "cache"),
        )  # fmt: skip
    finally:
        del os.environ["FAKE_LLAMA_MODE"]
    (error,) = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "exited (code 1) before it was ready: error: failed to load model" in error
    log = re.search(r"\(log: (\S+)\)", error)
    assert log is not None and Path(log.group(1)).exists()  # kept: the error names it
    Path(log.group(1)).unlink()
    assert sorted(p.name for p in tmp_path.glob("o.csv*")) == []
    out = str(tmp_path / "o.csv")
    res = run_cli(
        "llm", "evaluate", "--provider", "local", "--base-url", "http://h/v1", "--out", out
    )
    assert res.returncode == 1
    assert "--base-url does not apply to --provider local" in res.stderr
    res = run_cli("llm", "evaluate", "--threads", "2", "--out", out)
    assert res.returncode == 1
    assert "--threads applies to --provider local only, not heuristic" in res.stderr
    assert not (tmp_path / "o.csv").exists()


def test_a_stop_while_the_server_loads_leaves_nothing_running(
    fake_server: Path, gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.setenv("FAKE_LLAMA_MODE", "hang")  # "loading" until stopped
    server = LocalServer(ServerSpec.of(gguf, threads=1), log_path=tmp_path / "s.log")
    errors: list[Exception] = []

    def start() -> None:
        try:
            server.start()
        except ServerError as exc:
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    deadline = time.monotonic() + 10
    while server.pid is None:  # the process is up, its /health answers 503
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pid = server.pid
    server.stop()  # as an interrupted run's clean-up does, from another thread
    thread.join(10)
    assert not thread.is_alive()
    assert [str(e) for e in errors] == ["llama-server was stopped while it loaded the model"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_local_provider_serves_two_runs_and_stops_its_server_after_each(
    fake_server: Path, gguf: Path
) -> None:
    trades, regimes = _sample(3)
    provider = make_provider("local", model=str(gguf), threads=1, concurrency=2)
    assert (
        provider.name == "local"
        and provider.label == "tiny-model via local llama-server (1 thread)"
    )
    for _ in range(2):  # a new event loop each time: nothing of the first run's loop is reused
        result = evaluate(
            trades, provider, load_prompts(["balanced"]), regimes=regimes,
            config=EvalConfig(concurrency=2, timeout=10, retries=0), progress=False,
        )  # fmt: skip
        d = result.decisions
        assert d["error"].isna().all() and (d["decision"] == "approve").all()
        assert (d["model_sha256"] == local_build.file_sha256(gguf)).all()
        assert (d["server_build"] == f"llama.cpp 9 (fake0001) ({fake_server})").all()
        assert (d["threads"] == 1).all()
        assert json.loads(d["sampling"].iloc[0])["slots"] == 2
        assert "**Local model:** `tiny-model`" in result.about
        assert provider.server is None  # stopped at the end of the run


def test_an_output_of_another_model_file_or_build_is_not_continued(
    fake_server: Path, gguf: Path, tmp_path: Path
) -> None:
    from research.exceptions import OutputError
    from research.llm.harness import existing_decisions

    trades, regimes = _sample(1)
    out = tmp_path / "run.csv"
    prompts = load_prompts(["balanced"])
    first = make_provider("local", model=str(gguf), threads=1)
    evaluate(trades, first, prompts, regimes=regimes, out=out, progress=False)
    assert len(existing_decisions(out, first, prompts)) == 1  # the same: continued
    # a file of the same name with other bytes (a re-download, another quantisation)
    other = tmp_path / "other" / gguf.name
    other.parent.mkdir()
    other.write_bytes(gguf.read_bytes() + b"more")
    second = make_provider("local", model=str(other), threads=1)
    assert second.label == first.label  # the label alone cannot tell them apart
    with pytest.raises(OutputError, match=r"holds decisions with another model_sha256"):
        existing_decisions(out, second, prompts)
