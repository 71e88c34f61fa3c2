"""``research llm …``: ask a trade filter about every trade, then measure it.

Every option is checked before any work: numbers against their range (the message names the
option), outputs against the inputs (``research._io.check_output``) and against what is already
there (an existing decisions file is continued only when it holds the same provider's decisions
of the same prompts; a summary is replaced only when it is one). Errors are one line after
``error:`` with exit code 1; an evaluation in which every request failed exits 1 too.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import (
    AT_LEAST_0,
    AT_LEAST_1,
    MODELS,
    Limit,
    RegimeModel,
    check_limits,
    choice,
    date_format_callback,
    fail,
    parse_regime_model,
    refusals,
)
from research.exceptions import OutputError
from research.options import Range

app = typer.Typer(
    help="LLM trade-filter calibration: evaluate trades with a provider, analyze the decisions.",
    no_args_is_help=True,
)
app.callback()(date_format_callback("llm"))

SECONDS = Limit(Range(0, low_open=True), "a finite number of seconds above 0")


class Provider(enum.StrEnum):
    """Who decides the trades (``research.llm.providers.make_provider``)."""

    openai = "openai"
    local = "local"
    replay = "replay"
    heuristic = "heuristic"


def _inputs(*paths: Path | None | Iterable[Path]) -> list[Path]:
    """The command's input files as the loaders find them (``resolve_path``)."""
    from research.config import resolve_path

    out: list[Path] = []
    for item in paths:
        if item is None:
            continue
        for path in [item] if isinstance(item, Path) else item:
            out.append(resolve_path(path))
    return out


def _check_summary_out(path: Path, inputs: list[Path]) -> None:
    """``--summary-out``: not an input, and when it exists, a summary of ``llm analyze``."""
    from research._io import check_output

    check_output(path, inputs=inputs, option="--summary-out")
    if not path.exists():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not (isinstance(data, dict) and {"verdict_code", "methods", "provider"} <= set(data)):
        raise OutputError(
            f"--summary-out {path} exists and is not a summary of llm analyze; name a new file, "
            f"or move {path} away"
        )


@app.command("evaluate")
@refusals(one_line=True)
def llm_evaluate(
    out: Annotated[Path, typer.Option(help="Decisions file to write (CSV, Parquet, JSON, JSONL).")],
    trades: Annotated[
        Path | None, typer.Option(help="Trades (trades contract; default data/sample/trades.json).")
    ] = None,
    provider: Annotated[
        Provider,
        typer.Option(
            help="openai, local (a GGUF model on this machine, served by llama-server), replay "
            "or heuristic.",
            parser=choice(
                Provider,
                lambda w: f"unknown provider {w!r} (openai, local, replay or heuristic)",
            ),
        ),
    ] = Provider.heuristic,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible server (default $REGIME_LAB_LLM_BASE_URL or OpenRouter)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model name (default $REGIME_LAB_LLM_MODEL or x-ai/grok-2); with --provider "
            "local, a GGUF file (default SmolLM2-135M, a test model whose decisions mean nothing)."
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option(help="--provider local: CPU threads of the server (0: all cores, max 8).")
    ] = 0,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the key (default OPENROUTER_API_KEY, then "
            "OPENAI_API_KEY). Keys are never taken as flags."
        ),
    ] = None,
    prompt: Annotated[
        list[str] | None, typer.Option(help="Prompt variant(s); repeatable (default balanced).")
    ] = None,
    prompts_dir: Annotated[
        Path | None, typer.Option(help="Your prompt files (NAME.md / NAME.txt).")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Recorded decisions (llm_decisions) for --provider replay.")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Requests in flight, at least 1 (default 8; --provider local: 1, the server's "
            "slots)."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds per request, above 0 (default 30; --provider local: 300)."),
    ] = None,
    retries: Annotated[
        int, typer.Option(help="Retries on 429, 5xx, timeouts, drops (0 or more).")
    ] = 4,
    cache: Annotated[
        Path | None, typer.Option(help="Reply cache folder (default data/llm_cache).")
    ] = None,
    prices: Annotated[
        Path | None, typer.Option(help="Price table: {model: {input: $/1M, output: $/1M}}.")
    ] = None,
    json_mode: Annotated[
        bool,
        typer.Option(help="Ask for a JSON response format (turn off if the server rejects it)."),
    ] = True,
    retry_errors: Annotated[
        bool, typer.Option(help="Ask again the trades an earlier run recorded as errors.")
    ] = False,
    bars: Annotated[Path | None, typer.Option(help="Bars for the entry regime.")] = None,
    iv: Annotated[list[Path] | None, typer.Option(help="IV index file(s).")] = None,
    regime_model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"Regime model for the context: {MODELS}.",
            metavar="MODEL",
            parser=parse_regime_model,
        ),
    ] = RegimeModel.vix_trend,
) -> None:
    """Ask the provider to approve or reject every trade under each prompt; resumable (run the
    same command again after an interruption), cached (a re-run makes no request)."""
    from research._io import check_output
    from research.config import PATHS
    from research.llm.harness import (
        EvalConfig,
        Prices,
        check_output_extension,
        evaluate,
        existing_decisions,
        journal_path,
    )
    from research.llm.prompts import load_prompts
    from research.llm.providers import check_base_url, make_provider
    from research.llm.service import load_trades

    local = provider is Provider.local
    concurrency = concurrency if concurrency is not None else (1 if local else 8)
    timeout = timeout if timeout is not None else (300.0 if local else 30.0)
    check_limits(
        [
            ("--concurrency", concurrency, AT_LEAST_1),
            ("--timeout", timeout, SECONDS),
            ("--retries", retries, AT_LEAST_0),
            ("--threads", threads, AT_LEAST_0),
        ]
    )
    if local and base_url is not None:
        fail(
            "--base-url does not apply to --provider local (it starts its own server)",
            one_line=True,
        )
    if threads and not local:
        fail(f"--threads applies to --provider local only, not {provider.value}", one_line=True)
    if base_url is not None:
        check_base_url(base_url, option="--base-url")
    check_output_extension(out)
    cache_dir = cache if cache is not None else PATHS.root / "data" / "llm_cache"
    if cache_dir.exists() and not cache_dir.is_dir():
        raise OutputError(f"--cache {cache_dir} is a file; name a folder for the reply cache")
    key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        fail(f"${api_key_env} is not set", one_line=True)
    chosen = load_prompts(prompt or ["balanced"], prompts_dir)
    inputs = _inputs(
        trades if trades is not None else PATHS.sample / "trades.json",
        replay,
        prices,
        bars,
        iv or [],
        [p.path for p in chosen],
    )
    check_output(out, inputs=inputs, option="--out")
    check_output(journal_path(out), inputs=inputs, option="--out (its journal)")
    prov = make_provider(
        provider.value,
        model=model,
        base_url=base_url,
        api_key=key,
        replay_path=replay,
        concurrency=concurrency,
        json_mode=json_mode,
        threads=threads,
    )
    existing_decisions(out, prov, chosen)  # refuses a file it must not continue
    price_table = Prices.load(prices)
    config = EvalConfig(
        concurrency=concurrency, timeout=timeout, retries=retries, retry_errors=retry_errors
    )
    trade_set = load_trades(
        trades, bars_path=bars, iv_path=iv or None, regime_model=regime_model.value
    )
    if provider is Provider.openai and not getattr(prov, "api_key", None):
        typer.echo(
            "note: no API key in the environment (OPENROUTER_API_KEY / OPENAI_API_KEY); fine for "
            "a local server, a hosted one will answer 401",
            err=True,
        )
    if not prov.is_llm:
        typer.echo(f"note: {prov.label}: these decisions do not measure any LLM", err=True)
    if local:
        typer.echo(_local_note(prov), err=True)
    typer.echo(
        f"{len(trade_set.trades):,} trades x {len(chosen)} prompt(s) -> {prov.label}; "
        f"journal {journal_path(out)}"
    )
    try:
        result = evaluate(
            trade_set.trades,
            prov,
            chosen,
            regimes=trade_set.regimes,
            out=out,
            cache_dir=cache_dir,
            config=config,
            prices=price_table,
        )
    except KeyboardInterrupt:
        typer.echo(
            f"\ninterrupted: the finished decisions are in {journal_path(out)}; run the same "
            "command again to resume",
            err=True,
        )
        raise typer.Exit(130) from None
    typer.echo(result.text().replace("**", "").replace("`", ""))
    typer.echo(f"wrote {out}")
    if result.failed:
        fail(result.failure_text(), one_line=True)


def _local_note(prov: object) -> str:
    """What a local run records, and a warning for the default test model."""
    about = str(getattr(prov, "about")())  # noqa: B009
    return (
        "note: "
        + about.replace("**", "").replace("`", "")
        + (" The server starts at the first request and stops at the end.")
    )


@app.command("build-server")
@refusals(one_line=True)
def llm_build_server(
    portable: Annotated[
        bool,
        typer.Option(help="Build for any AVX2 x86-64 CPU instead of this machine's."),
    ] = False,
    force: Annotated[bool, typer.Option(help="Build again even when one is built.")] = False,
    jobs: Annotated[int, typer.Option(help="Compile jobs (0: one per core).")] = 0,
) -> None:
    """Build llama.cpp's llama-server once into the user cache (from the llama-cpp-python source
    distribution on PyPI: about 4 minutes on 2 cores, needs cmake, ninja and a C++ compiler)
    and fetch the default model (SmolLM2-135M-Instruct, 98 MB)."""
    from research.llm.local_build import build_server, fetch_default_model
    from research.llm.local_server import LocalServer, ServerSpec

    check_limits([("--jobs", jobs, AT_LEAST_0)])
    model = fetch_default_model(log=typer.echo)
    build_server(jobs=jobs or None, portable=portable, force=force, log=typer.echo)
    # a binary that compiles may still not run here (an instruction set the kernel withholds)
    with LocalServer(ServerSpec.of(model, threads=1)) as server:
        typer.echo(f"checked: it serves the default model ({server.ready_s:.2f} s to ready)")


@app.command("serve-local")
@refusals(one_line=True)
def llm_serve_local(
    model: Annotated[
        Path | None,
        typer.Option(help="A GGUF model file (default SmolLM2-135M, a 135M-parameter test model)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads (0: all cores, max 8).")] = 0,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8080,
    concurrency: Annotated[
        int, typer.Option(help="Requests decoded at once (the server's slots).")
    ] = 1,
) -> None:
    """Start llama-server on 127.0.0.1 with the model, wait until it is ready, print its
    OpenAI-compatible base URL, and serve until Ctrl-C (then stop it cleanly)."""
    import signal
    import threading

    from research.llm.local_server import LocalServer, ServerSpec

    check_limits([("--threads", threads, AT_LEAST_0), ("--concurrency", concurrency, AT_LEAST_1)])
    spec = ServerSpec.of(model, threads=threads, slots=concurrency)
    server = LocalServer(spec, port=port)
    typer.echo(f"starting {spec.build} with {spec.model} (sha256 {spec.model_sha256[:12]}...)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        base = server.start(log=typer.echo)
        typer.echo(f"base URL: {base}  (model name: {spec.model_name})")
        typer.echo(
            f"ask it: research llm evaluate --provider openai --base-url {base} --model "
            f"{spec.model_name} --out FILE   (Ctrl-C stops the server)"
        )
        while not stop.is_set() and server.running():
            stop.wait(0.5)
        if not server.running() and not stop.is_set():
            fail(f"llama-server stopped by itself (log: {server.log_path})", one_line=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    typer.echo("llama-server stopped")


@app.command("analyze")
@refusals(one_line=True)
def llm_analyze(
    decisions: Annotated[Path, typer.Option(help="Decisions (llm_decisions contract).")],
    trades: Annotated[
        Path | None, typer.Option(help="The trades they decided (default the sample).")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="Variant for the single-prompt parts (default balanced).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model, when the file holds several.")] = None,
    bars: Annotated[Path | None, typer.Option(help="Bars for the entry regime.")] = None,
    iv: Annotated[list[Path] | None, typer.Option(help="IV index file(s).")] = None,
    regime_model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"Regime model for the by-regime part: {MODELS}.",
            metavar="MODEL",
            parser=parse_regime_model,
        ),
    ] = RegimeModel.vix_trend,
    summary_out: Annotated[
        Path | None, typer.Option(help="Write the machine-readable summary (JSON).")
    ] = None,
) -> None:
    """Approved vs rejected with intervals and tests, against a random filter and the best
    simple rule; the confidence-threshold sweep and a threshold chosen in-sample, reported
    out-of-sample; prompt variants compared; calibration; all by regime."""
    import pandas as pd

    from research._io import write_text_atomic
    from research.config import PATHS
    from research.data.loaders import load
    from research.llm.service import analyze, load_trades

    if summary_out is not None:
        inputs = _inputs(
            decisions,
            trades if trades is not None else PATHS.sample / "trades.json",
            bars,
            iv or [],
        )
        _check_summary_out(summary_out, inputs)
    trade_set = load_trades(
        trades, bars_path=bars, iv_path=iv or None, regime_model=regime_model.value
    )
    frame = load("llm_decisions", decisions)
    result = analyze(frame, trade_set, prompt=prompt, model=model)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(result.headline().replace("**", ""))
        typer.echo("\napproved vs rejected (95%: Wilson; month-cluster bootstrap):")
        typer.echo(result.approval.round(3).to_string(index=False))
        typer.echo(result.tests_text())
        typer.echo(result.controls_text().replace("**", "").replace("*", ""))
        typer.echo("\nconfidence thresholds (approved trades with confidence >= t):")
        typer.echo(result.sweep.round(3).to_string(index=False))
        typer.echo(result.threshold.text())
        if len(result.prompts):
            typer.echo("\nprompt variants, paired (edges of their disagreements, month-clustered):")
            typer.echo(result.prompts.round(4).to_string(index=False))
        s = result.calibration_scores
        typer.echo(
            f"\ncalibration: Brier {s['brier']:.3f} (base rate {s['brier_base']:.3f}, skill "
            f"{s['brier_skill']:+.3f}), ECE {s['ece']:.3f}"
        )
        typer.echo("\nby regime at entry:")
        typer.echo(result.regimes.round(3).to_string(index=False))
    if summary_out is not None:
        write_text_atomic(summary_out, json.dumps(result.summary(), indent=2, default=str))
        typer.echo(f"wrote {summary_out}")
