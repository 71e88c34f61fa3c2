"""``research attribute …``: what worked in which regime (signals, experiments, tuning runs).

Every command checks its options before any work: each numeric option against its range (one
line naming the option and the value), each output path (not one of the inputs, not a folder,
not under a file, a table format it can write), and the database target. Any error the package
raises on purpose (``research.exceptions.ResearchError``: bad options, unusable databases,
outputs the filesystem refuses) is one ``error:`` line and exit code 1, never a traceback.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from research.cli._common import (
    AT_LEAST_0,
    AT_LEAST_1,
    MODELS,
    MORE_THAN_0,
    RegimeModel,
    check_limits,
    choice,
    date_format_callback,
    fail,
    parse_regime_model,
    refusals,
)

app = typer.Typer(
    help="Regime attribution of signals, experiments and tuning runs.", no_args_is_help=True
)
app.callback()(date_format_callback("attribute"))


class SignalGroup(enum.StrEnum):
    """What ``attribute signals`` groups the records by."""

    agent = "agent"
    cluster = "cluster"


class Grouping(enum.StrEnum):
    """Which regime an experiment is counted in (``research.attribution.experiments``)."""

    entry_regime = "entry_regime"
    dominant_regime = "dominant_regime"


def _table_output(
    path: Path | None, option: str, inputs: Iterable[Path | str | None]
) -> Path | None:
    """Check a table output before any work: a format ``write_table`` writes, and
    ``research._io.check_output`` (not an input, not a folder, not under a file)."""
    if path is None:
        return None
    from research._io import check_output
    from research.data.writers import WRITABLE
    from research.exceptions import InputError

    check_output(path, inputs=list(inputs), option=option)
    name = path.name.lower()
    if not any(name.endswith(ext) for ext in WRITABLE):
        raise InputError(
            f"{option} {path}: cannot write this extension; use one of {', '.join(WRITABLE)}"
        )
    _writable(path, option)
    return path


def _writable(path: Path, option: str) -> None:
    """Refuse an output whose existing folder cannot be written (read-only folder or file
    system), before any work: a temporary file is made there and removed at once."""
    import tempfile

    from research._io import os_error_text
    from research.exceptions import OutputError

    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is None or not folder.is_dir():
        return  # check_output names a file standing where a folder should be
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"{option}: {os_error_text(exc, path)}") from exc


def _distinct(*outputs: tuple[str, Path | None]) -> None:
    """Refuse two options naming the same output file."""
    from research._io import same_file
    from research.exceptions import OutputError

    given = [(o, p) for o, p in outputs if p is not None]
    for i, (a, pa) in enumerate(given):
        for b, pb in given[i + 1 :]:
            if same_file(pa, pb):
                raise OutputError(f"{a} and {b} name the same file {pa}; name two files")


@app.command("signals")
@refusals(one_line=True)
def attribute_signals(
    signals: Annotated[
        Path | None,
        typer.Option(help="Signal records (signals contract; default data/sample/signals.csv)."),
    ] = None,
    bars: Annotated[
        Path | None, typer.Option(help="Bars of the signals' symbols (default: embedded).")
    ] = None,
    iv: Annotated[
        list[Path] | None, typer.Option(help="IV index file(s); repeatable, they add up.")
    ] = None,
    model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"Regime model for records without a regime: {MODELS}.",
            metavar="MODEL",
            parser=parse_regime_model,
        ),
    ] = RegimeModel.bull_bear_vol,
    by: Annotated[
        SignalGroup,
        typer.Option(
            help="agent or cluster.",
            parser=choice(SignalGroup, lambda w: f"--by must be agent or cluster, got {w!r}"),
        ),
    ] = SignalGroup.agent,
    min_n: Annotated[int, typer.Option(help="Fewer records: shown, not evidence.")] = 30,
    out: Annotated[Path | None, typer.Option(help="Write the agent x regime table.")] = None,
    heatmap_out: Annotated[
        Path | None, typer.Option(help="Write the regime x month heatmap table.")
    ] = None,
) -> None:
    """Per agent (or cluster) x regime: mean 20-day forward return with a month-cluster
    bootstrap interval, hit rate with a Wilson interval, and the excess over the regime's
    every-day base rate; decay by horizon; optionally the regime x month heatmap."""
    import pandas as pd

    from research._io import all_or_nothing
    from research.attribution import signals as sg
    from research.attribution.service import load_signal_study
    from research.data.writers import write_table

    group = by.value
    inputs = [signals, bars, *(iv or [])]
    check_limits([("--min-n", min_n, AT_LEAST_0)])
    _table_output(out, "--out", inputs)
    _table_output(heatmap_out, "--heatmap-out", inputs)
    _distinct(("--out", out), ("--heatmap-out", heatmap_out))
    study = load_signal_study(signals, bars_path=bars, iv_path=iv or None, model=model.value)
    table = sg.regime_table(study.prepared, by=group, min_n=min_n)
    decay = sg.decay(study.prepared, by=group)
    heat = sg.heatmap(study.prepared, by=group) if heatmap_out is not None else None
    for note in [*study.market.notes, *study.prepared.notes()]:
        typer.echo(f"note: {note}", err=True)
    cols = [group, "regime", "n", "mean_return", "ci_low", "ci_high", "hit_rate", "base_hit_rate"]
    cols += ["excess_return", "excess_ci_low", "excess_ci_high", "excess_p", "enough"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(
            f"{len(study.prepared.usable):,} signals with a regime and a 20-day outcome; "
            "in-sample; 95% intervals: mean by month-cluster bootstrap, hit rate Wilson "
            "(records counted as independent: too narrow), excess over the base rate by "
            f"{sg.EXCESS_METHOD}"
        )
        typer.echo(table[[c for c in cols if c in table]].round(4).to_string(index=False))
        wide = decay.pivot(index=group, columns="horizon", values="mean_return")
        typer.echo("\nmean forward return by horizon (trading days):")
        typer.echo(wide.round(4).to_string())
    written: list[Path] = []
    with all_or_nothing():  # the table and its heatmap, or neither
        if out is not None:
            written.append(write_table(table, out))
        if heat is not None and heatmap_out is not None:
            written.append(write_table(heat, heatmap_out))
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("experiments")
@refusals(one_line=True)
def attribute_experiments(
    experiments: Annotated[
        Path | None,
        typer.Option(help="Experiments file (CSV, Parquet, ...; default the sample)."),
    ] = None,
    db: Annotated[Path | None, typer.Option(help="The user's SQLite experiments database.")] = None,
    table: Annotated[str, typer.Option(help="Table in --db.")] = "experiments",
    bars: Annotated[Path | None, typer.Option(help="Bars (default: embedded).")] = None,
    iv: Annotated[list[Path] | None, typer.Option(help="IV index file(s).")] = None,
    model: Annotated[
        RegimeModel,
        typer.Option(
            help=f"Regime model for dominant_regime: {MODELS}.",
            metavar="MODEL",
            parser=parse_regime_model,
        ),
    ] = RegimeModel.vix_trend,
    metric: Annotated[str, typer.Option(help="Column ranking the configs.")] = "pnl_pct",
    min_experiments: Annotated[int, typer.Option(help="Runs per config in a regime.")] = 5,
    grouping: Annotated[
        Grouping,
        typer.Option(
            help="entry_regime (the regime known when each experiment started; default) or "
            "dominant_regime (the regime most of its days fell in: in-sample hindsight).",
            parser=choice(
                Grouping,
                lambda w: f"--grouping must be entry_regime or dominant_regime, got {w!r}",
            ),
        ),
    ] = Grouping.entry_regime,
    hmm: Annotated[
        bool,
        typer.Option(
            help="Compute avg_hmm_trend / avg_hmm_vol (--no-hmm: not computed, and values "
            "written earlier are left as they are)."
        ),
    ] = True,
    learned_out: Annotated[
        Path | None, typer.Option(help="Write the learned per-regime configs (JSON).")
    ] = None,
    column_prefix: Annotated[
        str,
        typer.Option(
            help="Prefix of the lab's columns in --db (e.g. lab_ writes lab_avg_vix, ...), for "
            "a table with columns of these names of its own."
        ),
    ] = "",
    write: Annotated[
        bool,
        typer.Option(
            "--write/--dry-run", help="Add the regime columns to --db (default: dry run)."
        ),
    ] = False,
) -> None:
    """Tag experiments with their regimes, print the best configuration per regime
    against its runner-up, export learned configs, and (with --db --write) write the regime
    columns back into the SQLite table in one transaction: only the lab's own columns (a
    column of the same name that the lab did not add is refused), only the columns this run
    computed, and never a null over a value written earlier."""
    import json

    import pandas as pd

    from research._io import check_output, write_text_atomic
    from research.attribution import experiments as ex
    from research.attribution import experiments_db
    from research.attribution.service import load_experiment_study
    from research.exceptions import InputError

    by = grouping.value
    if experiments is not None and db is not None:
        fail("give --experiments FILE or --db SQLITE, not both", one_line=True)
    if write and db is None:
        fail("--write needs --db (the SQLite file to write to)", one_line=True)
    check_limits([("--min-experiments", min_experiments, AT_LEAST_1)])
    experiments_db.check_prefix(column_prefix)
    if learned_out is not None:
        check_output(
            learned_out, inputs=[experiments, db, bars, *(iv or [])], option="--learned-out"
        )
        _writable(learned_out, "--learned-out")
    if db is not None and not db.is_file():
        missing = f"--db {db}: no such SQLite file" if not db.exists() else f"--db {db} is a folder"
        fail(missing, one_line=True)
    source = db if db is not None else experiments
    study = load_experiment_study(
        source,
        table=table if db is not None else None,
        bars_path=bars,
        iv_path=iv or None,
        model=model.value,
        markov=hmm,
    )
    if metric not in study.tagged.columns:
        numeric = [
            c for c in study.tagged.columns if pd.api.types.is_numeric_dtype(study.tagged[c])
        ]
        raise InputError(f"--metric: unknown metric {metric!r}; numeric columns: {numeric}")
    columns = [c for c, _ in experiments_db.SEED_COLUMNS]
    if not hmm:
        columns = [c for c in columns if c not in experiments_db.HMM_COLUMNS]
    plan = (
        experiments_db.plan(db, study.tagged, table=table, columns=columns, prefix=column_prefix)
        if db is not None
        else None
    )
    for note in study.market.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"{len(study.tagged):,} experiments from {study.source}; grouped by {model.value} "
        f"{ex.GROUPINGS[by]}; in-sample; best vs runner-up: {ex.RUNNER_UP_TEST}"
    )
    typer.echo(study.tagged[by].value_counts(dropna=False).to_string())
    # the analysis is separate from the write-back: its problem is a note, not a refusal
    best: pd.DataFrame | None = None
    analysis_problem = ""
    try:
        best = ex.best_by_regime(
            study.tagged, by=by, metric=metric, min_experiments=min_experiments
        )
    except ValueError as exc:
        analysis_problem = " ".join(str(exc).split())
        typer.echo(f"note: no best configuration per regime: {analysis_problem}", err=True)
    if best is not None:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            typer.echo("\nbest configuration per regime:")
            typer.echo(best.round(4).to_string(index=False))
        for _, row in best.loc[best["loses_money"]].iterrows():
            typer.echo(
                f"  {row['regime']}: the best configuration loses money (mean pnl_pct "
                f"{row['pnl_pct']:.2f}); the selector stands aside there unless opted in"
            )
        for regime, why in best.attrs.get("skipped", {}).items():
            typer.echo(f"  {regime}: not compared ({why})")
    if plan is not None:  # the write-back of what was computed, whatever the analysis gave
        typer.echo(("will: " if write else "dry run, would: ") + plan.describe())
        if write:
            n = experiments_db.apply(plan)
            typer.echo(f"updated {n} rows of {table} in {db}")
    if learned_out is not None:
        if best is None:
            fail(f"--learned-out {learned_out} not written: {analysis_problem}", one_line=True)
        learned = ex.learned_configs(study.tagged, best, metric=metric, model=model.value)
        write_text_atomic(learned_out, json.dumps(learned, indent=2, default=float))
        typer.echo(f"wrote {learned_out}")


@app.command("tunes")
@refusals(one_line=True)
def attribute_tunes(
    tunes: Annotated[
        Path | None,
        typer.Option(help="Tuning runs (tunes contract; default data/sample/tunes.csv)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(help="postgresql://… URL or DuckDB file (default data/lab.duckdb)."),
    ] = None,
    bars: Annotated[Path | None, typer.Option(help="Bars of the tunes' markets.")] = None,
    symbol: Annotated[
        str | None, typer.Option(help="The market of every tune (when there is no symbol column).")
    ] = None,
    ruleset: Annotated[
        Path | None, typer.Option(help="Ruleset file (schema version, ruleset id, tag rules).")
    ] = None,
    min_tunes: Annotated[
        int, typer.Option(help="Fewer tunes with a key: fall back to similar keys.")
    ] = 3,
    drift_window: Annotated[int, typer.Option(help="Recent tagged days for drift.")] = 63,
    drift_symbol: Annotated[
        str | None, typer.Option(help="Market whose current regime is checked for drift.")
    ] = None,
    allow_unattributed: Annotated[
        bool,
        typer.Option(
            help="Leave tunes that cannot be attributed (no OOS rows, no bars in the OOS window) "
            "null and write the rest, instead of stopping."
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Write the per-tune attribution table.")] = None,
    lock_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for a PostgreSQL table another session has locked, then stop "
            "naming the table."
        ),
    ] = 10.0,
    write: Annotated[
        bool,
        typer.Option(
            "--write/--dry-run",
            help="Add the regime columns to backtest_tunes and write them (default: dry run).",
        ),
    ] = False,
) -> None:
    """Attribute tuning runs to the regime of their out-of-sample window: regime key, fingerprint,
    tags, best OOS score/params/run, baseline; the walk-forward uplift of regime-selected parameters
    with a CI; drift of the current regime; and (with --write) the regime columns added to
    backtest_tunes and filled in, on PostgreSQL or the lab's DuckDB file."""

    from research.attribution import tunes as tu
    from research.attribution import tunes_db
    from research.attribution.service import load_tune_study
    from research.data.writers import write_table

    check_limits(
        [
            ("--min-tunes", min_tunes, AT_LEAST_1),
            ("--drift-window", drift_window, AT_LEAST_1),
            ("--lock-timeout", lock_timeout, MORE_THAN_0),
        ]
    )
    _table_output(out, "--out", [tunes, bars, ruleset])
    target = tunes_db.check_target(db)
    if write and target.kind == "duckdb" and not target.default:
        _writable(Path(target.location), "--db")
    study = load_tune_study(tunes, bars_path=bars, symbol=symbol, ruleset_path=ruleset)
    for note in study.market.notes:
        typer.echo(f"note: {note}", err=True)
    a = study.attributed
    bad = study.not_attributed
    if bad:
        listing = "; ".join(f"{t}: {why}" for t, why in list(bad.items())[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        if not allow_unattributed:
            fail(
                f"{study.source}: {len(bad)} of {len(a)} tunes cannot be attributed: "
                f"{listing}{more}. Nothing was written; --allow-unattributed leaves them null.",
                one_line=True,
            )
        typer.echo(f"note: {len(bad)} tunes left null: {listing}{more}", err=True)
    ok = a[a["reason"] == ""]
    typer.echo(
        f"{len(a):,} tunes from {study.source}; {len(ok):,} attributed to the regime of their "
        "best run's OOS window (best run = highest in-sample sharpe)"
    )
    typer.echo(ok["regime_key"].value_counts().rename("tunes").to_string())
    result = tu.uplift(study.records, a, min_tunes=min_tunes)
    shown = result.summary.drop(columns="method").round(3).to_string(index=False)
    typer.echo(
        "\nuplift of regime-selected parameters, out of sample, walk-forward (paired per tune, "
        f"95% {tu.UPLIFT_METHOD}):\n{shown}"
    )
    typer.echo(result.verdict())
    for note in result.notes:
        typer.echo(f"note: {note}")
    drift = tu.drift(study.labels, a, symbol=drift_symbol, window=drift_window, min_tunes=min_tunes)
    typer.echo("\n" + drift.text().replace("**", ""))
    if out is not None:
        write_table(a, out)
        typer.echo(f"wrote {out}")
    report = tunes_db.populate(db, a, study.records, write=write, lock_timeout=lock_timeout)
    typer.echo("\n" + report.describe())


tune_query_app = typer.Typer(
    help="The tune-attribution plan's three queries, run as written on PostgreSQL or DuckDB.",
    no_args_is_help=True,
)
app.add_typer(tune_query_app, name="tune-query")

_DB = Annotated[
    str | None, typer.Option(help="postgresql://… URL or DuckDB file (default data/lab.duckdb).")
]
_WORKSPACE = Annotated[str, typer.Option(help="workspace_id ($1).")]
_LOCK_TIMEOUT = Annotated[
    float,
    typer.Option(help="Seconds to wait for a PostgreSQL table another session has locked."),
]


def _show(frame: object, text: str | None = None) -> None:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        if text:
            typer.echo(text)
        typer.echo(frame.to_string(index=False) if len(frame) else "(no rows)")


@tune_query_app.command("best-key")
@refusals(one_line=True)
def query_best_key(
    key: Annotated[str, typer.Argument(help="Regime key ($2).")],
    workspace: _WORKSPACE = "regime-lab",
    db: _DB = None,
    min_tunes: Annotated[
        int, typer.Option(help="Fewer rows: fall back to keys within tag distance 1, 2, 3.")
    ] = 3,
    explain: Annotated[bool, typer.Option(help="Print PostgreSQL's plan.")] = False,
    lock_timeout: _LOCK_TIMEOUT = 10.0,
) -> None:
    """Best params for the same regime, falling back to similar keys."""
    from research.attribution import tunes_db

    check_limits(
        [("--min-tunes", min_tunes, AT_LEAST_1), ("--lock-timeout", lock_timeout, MORE_THAN_0)]
    )
    found = tunes_db.best_with_fallback(
        db, workspace, key, min_tunes=min_tunes, lock_timeout=lock_timeout
    )
    _show(found.rows, found.text())
    if explain:
        _explain(db, lock_timeout, "best_by_key", workspace, key)


@tune_query_app.command("best-trend-vol")
@refusals(one_line=True)
def query_best_trend_vol(
    trend: Annotated[str, typer.Argument(help="trend_tag ($2).")],
    vol: Annotated[str, typer.Argument(help="vol_tag ($3).")],
    workspace: _WORKSPACE = "regime-lab",
    db: _DB = None,
    explain: Annotated[bool, typer.Option(help="Print PostgreSQL's plan.")] = False,
    lock_timeout: _LOCK_TIMEOUT = 10.0,
) -> None:
    """Best params by trend + vol, ignoring efficiency."""
    from research.attribution import tunes_db

    check_limits([("--lock-timeout", lock_timeout, MORE_THAN_0)])
    _show(
        tunes_db.run_query(
            db, "best_by_trend_vol", workspace, trend, vol, lock_timeout=lock_timeout
        )
    )
    if explain:
        _explain(db, lock_timeout, "best_by_trend_vol", workspace, trend, vol)


@tune_query_app.command("summary")
@refusals(one_line=True)
def query_summary(
    workspace: _WORKSPACE = "regime-lab", db: _DB = None, lock_timeout: _LOCK_TIMEOUT = 10.0
) -> None:
    """Regime performance summary."""
    from research.attribution import tunes_db

    check_limits([("--lock-timeout", lock_timeout, MORE_THAN_0)])
    _show(tunes_db.run_query(db, "summary", workspace, lock_timeout=lock_timeout))


def _explain(db: str | None, lock_timeout: float, name: str, *params: object) -> None:
    from research.attribution import tunes_db

    target = tunes_db.parse_target(db)
    if db is None or target.kind != "postgresql":  # no --db: the lab's DuckDB file
        typer.echo("(--explain needs a postgresql:// database)", err=True)
        return
    typer.echo(str(tunes_db.explain(db, name, *params, lock_timeout=lock_timeout)))
