"""``research run``: execute the notebooks with papermill, then render the site.

Each notebook runs in its own spawned process (papermill is not thread-safe) on the project's
kernel, writes to a staging file, and is moved into ``reports/executed/`` only when it succeeds.
A failing notebook (cell error or cell timeout) is reported with its cell, kept under
``reports/executed/failed/`` for inspection, does not stop the others, and blocks publishing:
the previously published site stays as it was.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from research.config import KERNEL_NAME, PARAMS_ENV, ROOT_ENV, VARIANT_ENV, Paths
from research.pipeline.manifest import (
    MANIFEST_NAME,
    Fingerprint,
    Manifest,
    code_digest,
    data_digest,
    data_files,
    notebook_source_digest,
    params_digest,
)
from research.pipeline.provenance import Provenance, append_provenance
from research.pipeline.variants import Variant, retitle, variants_of

Status = Literal["executed", "skipped", "failed", "timeout"]
Log = Callable[[str], None]
ALL_KEY = "all"
"""Parameters under this key of a params file apply to every notebook."""
DEFAULT_TIMEOUT = 1800
"""Default per-cell execution timeout, seconds."""


def _print(msg: str) -> None:
    print(msg, flush=True)


@dataclass(frozen=True)
class NotebookJob:
    """One notebook execution, picklable for the worker process."""

    name: str
    source: Path
    staging: Path
    params: dict[str, Any]
    cwd: Path
    root: Path
    kernel: str
    timeout: int
    progress: bool
    params_file: str = ""
    """The parameters file the values came from (shown on the page)."""
    variant: str = ""
    """The named parameter set (``research.pipeline.variants``), empty for the default run."""


@dataclass(frozen=True)
class NotebookOutcome:
    """What happened to one notebook.

    ``cell_number`` is the failing cell's 1-based position in the source notebook;
    ``cell_source`` its first line.
    """

    name: str
    status: Status
    seconds: float
    reason: str
    cell_number: int | None = None
    execution_count: int | None = None
    cell_source: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("executed", "skipped")

    def describe(self) -> str:
        """One-line (or a few lines) human summary."""
        if self.status == "skipped":
            return f"{self.name}: unchanged, not re-executed ({self.reason})"
        if self.status == "executed":
            return f"{self.name}: executed in {self.seconds:.1f}s ({self.reason})"
        where = ""
        if self.cell_source is not None:
            number = f" #{self.cell_number}" if self.cell_number else ""
            count = f" (In [{self.execution_count}])" if self.execution_count else ""
            where = f" in cell{number}{count}: {self.cell_source!r}"
        what = "timed out" if self.status == "timeout" else "failed"
        return f"{self.name}: {what}{where}\n    {self.error}"


@dataclass(frozen=True)
class RunResult:
    """Outcome of ``run_pipeline``."""

    notebooks: tuple[NotebookOutcome, ...]
    site: Path
    rendered: bool
    render_note: str
    renderer: str | None = None
    failures: tuple[NotebookOutcome, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures


Job = tuple[Variant, Fingerprint, dict[str, Any], str]
"""A notebook execution to do: the run, its fingerprint, its parameters and why it runs."""


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def discover(paths: Paths) -> list[Path]:
    """Notebooks of the pipeline: ``notebooks/NN_*.ipynb`` in name order."""
    return sorted(p for p in paths.notebooks.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """Keep notebooks matching ``only`` (full stem, or its ``NN`` prefix, or a unique prefix)."""
    if not only:
        return list(notebooks)
    chosen: list[Path] = []
    for want in only:
        want = want.removesuffix(".ipynb")
        exact = [p for p in notebooks if p.stem == want]
        matches = exact or [p for p in notebooks if p.stem.startswith(want)]
        if len(matches) != 1:
            names = ", ".join(p.stem for p in notebooks)
            how = "matches several" if matches else "matches no notebook"
            raise ValueError(f"--only {want!r} {how}; notebooks: {names}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return sorted(chosen)


def load_params(path: Path | None, paths: Paths) -> dict[str, dict[str, Any]]:
    """Read a params YAML: ``{all: {...}, NN_name: {...}}`` → per-notebook dicts (unmerged)."""
    import yaml

    target = path if path is not None else paths.default_params
    if path is None and not target.exists():
        return {}
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"{target}: cannot read parameters file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{target}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) or v is None for v in data.values()
    ):
        raise ValueError(
            f"{target}: expected a mapping of notebook name (or '{ALL_KEY}') to a mapping of "
            "parameters"
        )
    return {str(k): dict(v or {}) for k, v in data.items()}


def params_for(name: str, params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the ``all`` section with the notebook's own section."""
    return {**params.get(ALL_KEY, {}), **params.get(name, {})}


def default_params(notebook: Path) -> dict[str, Any]:
    """Literal defaults of the notebook's ``parameters`` cell (``name = value`` lines whose
    value is a Python literal), so files named by a default parameter count as its input."""
    import ast
    import json

    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return {}
    out: dict[str, Any] = {}
    for cell in cells:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell.get("source", []))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return {}
        for node in tree.body:
            target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and value is not None:
                try:
                    out[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue
    return out


def check_params(notebook: Path, values: Mapping[str, Any], params_file: Path | None) -> None:
    """Fail early on parameters the notebook's ``parameters`` cell does not define."""
    import papermill as pm

    known = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(values) - set(known))
    if unknown:
        source = params_file or "parameters"
        raise ValueError(
            f"{source}: {notebook.stem} has no parameter(s) {unknown}; "
            f"its parameters are {sorted(known)}"
        )


def _locate_cell(
    staging: Path, source: Path, *, failed: bool
) -> tuple[int | None, int | None, str | None]:
    """Find the failing (or, for a timeout, the last started) cell of a partial output notebook.

    Returns ``(number, execution_count, first source line)`` where ``number`` is the cell's
    1-based position in the *source* notebook (matched by cell id: papermill's injected
    parameters cell and error markers shift positions in the output).
    """
    import nbformat

    try:
        out = nbformat.read(str(staging), as_version=4)
        src = nbformat.read(str(source), as_version=4)
    except Exception:
        return None, None, None
    meta = [c.get("metadata", {}).get("papermill", {}) for c in out.cells]
    hits = [
        i for i, m in enumerate(meta) if (m.get("exception") if failed else m.get("start_time"))
    ]
    if not hits:
        return None, None, None
    cell = out.cells[hits[0] if failed else hits[-1]]
    ids = [c.get("id") for c in src.cells]
    number = ids.index(cell.get("id")) + 1 if cell.get("id") in ids else None
    return number, cell.get("execution_count"), _first_line(cell.source)


def _first_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip()]
    return lines[0][:120] if lines else ""


def execute_job(job: NotebookJob) -> NotebookOutcome:
    """Execute one notebook with papermill (runs inside a worker process)."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    os.environ[ROOT_ENV] = str(job.root)
    os.environ[PARAMS_ENV] = job.params_file
    os.environ[VARIANT_ENV] = job.variant
    job.staging.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(job.source),
            str(job.staging),
            parameters=job.params,
            kernel_name=job.kernel,
            cwd=str(job.cwd),
            execution_timeout=job.timeout,
            start_timeout=120,  # kernel start: generous on a loaded 2-core machine
            progress_bar=job.progress,
            log_output=False,
        )
    except PapermillExecutionError as exc:
        number, _, _ = _locate_cell(job.staging, job.source, failed=True)
        return NotebookOutcome(
            job.name,
            "failed",
            time.perf_counter() - start,
            "cell error",
            cell_number=number,
            execution_count=exc.exec_count,
            cell_source=_first_line(exc.source),
            error=f"{exc.ename}: {exc.evalue}",
        )
    except CellTimeoutError as exc:
        number, count, source = _locate_cell(job.staging, job.source, failed=False)
        return NotebookOutcome(
            job.name,
            "timeout",
            time.perf_counter() - start,
            "cell timeout",
            cell_number=number,
            execution_count=count,
            cell_source=source,
            error=f"no result after {job.timeout}s ({type(exc).__name__})",
        )
    except Exception as exc:  # kernel died, kernel missing, unreadable notebook, ...
        return NotebookOutcome(
            job.name,
            "failed",
            time.perf_counter() - start,
            "execution error",
            error=f"{type(exc).__name__}: {exc}",
        )
    return NotebookOutcome(job.name, "executed", time.perf_counter() - start, "")


def run_pipeline(
    paths: Paths | None = None,
    *,
    only: Sequence[str] | None = None,
    params_file: Path | None = None,
    force: bool = False,
    jobs: int | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    render: bool = True,
    renderer: str = "auto",
    log: Log = _print,
) -> RunResult:
    """Execute stale notebooks and render the site.

    Parameters
    ----------
    paths
        Project layout (default: the detected project root).
    only
        Notebook names (or ``NN`` prefixes) to consider; others are neither run nor removed.
    params_file
        YAML of parameters (default ``notebooks/params/default.yaml``).
    force
        Re-execute even when nothing changed.
    jobs
        Worker processes (default: min(2, CPUs, notebooks to run)).
    timeout
        Per-cell timeout in seconds.
    render
        Render the site after executing (only when every notebook succeeded).
    renderer
        ``auto`` (quarto if on PATH, else nbconvert), ``quarto`` or ``nbconvert``.
    log
        Where progress lines go.

    Returns
    -------
    RunResult
    """
    paths = paths or Paths.from_root()
    t0 = time.perf_counter()
    notebooks = select(discover(paths), only)
    if not notebooks:
        raise ValueError(f"no notebooks matching NN_*.ipynb in {paths.notebooks}")
    params = load_params(params_file, paths)
    unknown_sections = set(params) - {ALL_KEY} - {p.stem for p in discover(paths)}
    if unknown_sections:
        raise ValueError(
            f"{params_file or paths.default_params}: sections {sorted(unknown_sections)} name no "
            f"notebook; notebooks: {[p.stem for p in discover(paths)]}"
        )
    manifest = Manifest.load(paths.executed / MANIFEST_NAME)
    code = code_digest()
    bases = (paths.root, paths.notebooks)

    outcomes: dict[str, NotebookOutcome] = {}
    todo: list[Job] = []
    runs = variants_of(paths, notebooks)
    for run in runs:
        nb = run.notebook
        values = {**params_for(nb.stem, params), **run.params}
        fp = Fingerprint(
            source=notebook_source_digest(nb),
            params=params_digest(values),
            data=data_digest(paths.sample, {**default_params(nb), **values}, bases),
            code=code,
        )
        changed = fp.changes(manifest.fingerprint(run.key))
        output = paths.executed / f"{run.key}.ipynb"
        if force:
            reason = "--force"
        elif not output.exists():
            reason = "no previous output"
        elif changed:
            reason = "changed: " + ", ".join(changed)
        else:
            outcomes[run.key] = NotebookOutcome(
                run.key, "skipped", 0.0, "source, parameters, data and code unchanged"
            )
            log(f"  = {outcomes[run.key].describe()}")
            continue
        todo.append((run, fp, values, reason))

    if todo:
        for run, _, values, _ in todo:
            check_params(run.notebook, values, run.file or params_file)
        from research.pipeline.kernel import ensure_kernel

        ensure_kernel()
        shown = params_file or paths.default_params
        try:
            shown = Path(shown).resolve().relative_to(paths.root)
        except ValueError:
            pass
        outcomes.update(_execute_all(todo, paths, manifest, jobs, timeout, log, str(shown)))

    prune_orphans(paths, manifest, log)
    ordered = tuple(outcomes[run.key] for run in runs)
    failures = tuple(o for o in ordered if not o.ok)
    rendered, note, used = False, "not requested", None
    if failures:
        note = (
            f"not rendered: {len(failures)} notebook(s) failed; the published site at "
            f"{paths.site} is unchanged"
        )
    elif render:
        from research.pipeline.findings import write_findings
        from research.pipeline.render import render_site, site_digest

        write_findings(paths)
        digest = site_digest(paths)
        index = paths.site / "index.html"
        if not force and manifest.site == digest and index.exists():
            note = "site unchanged, not re-rendered"
        else:
            log("  rendering site ...")
            used = render_site(paths, renderer=renderer, log=log)
            manifest.site = digest
            manifest.save()
            rendered, note = True, f"rendered with {used} → {index}"
    log(f"  {note}")
    log(
        f"done in {time.perf_counter() - t0:.1f}s: "
        + ", ".join(
            f"{sum(o.status == s for o in ordered)} {s}"
            for s in ("executed", "skipped", "failed", "timeout")
        )
    )
    return RunResult(ordered, paths.site, rendered, note, used, failures)


def prune_orphans(paths: Paths, manifest: Manifest, log: Log = _print) -> list[Path]:
    """Remove executed notebooks whose source is gone (a deleted parameter file or notebook), so
    their pages are no longer published; returns the removed files."""
    from research.pipeline.variants import published_keys

    keys = published_keys(paths)
    removed = [p for p in paths.executed.glob("*.ipynb") if p.stem not in keys]
    for path in removed:
        path.unlink(missing_ok=True)
        manifest.forget(path.stem)
        log(f"  - {path.stem}: its notebook or parameters file is gone; page removed")
    if removed:
        manifest.save()
    return removed


def expected_seconds(notebook: Path) -> float | None:
    """The run time hint in a notebook's metadata (``metadata.regime_lab.expected_seconds``: its
    default run on 2 cores), used to order a first run that has no recorded times."""
    import json

    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    value = (meta.get("regime_lab") or {}).get("expected_seconds")
    return float(value) if isinstance(value, int | float) else None


def longest_first(todo: list[Job], manifest: Manifest) -> list[Job]:
    """Start the longest notebooks first (shortest makespan on few workers): by the time each
    took last run, else its notebook's ``expected_seconds`` hint; notebooks with neither go
    first, in pipeline order (they may be long)."""

    def seconds(item: Job) -> float:
        entry = manifest.entries.get(item[0].key) or {}
        last = entry.get("seconds")
        if isinstance(last, int | float):
            return float(last)
        hint = expected_seconds(item[0].notebook)
        return hint if hint is not None else float("inf")

    return sorted(todo, key=lambda item: (-seconds(item), item[0].key))


def _execute_all(
    todo: list[Job],
    paths: Paths,
    manifest: Manifest,
    jobs: int | None,
    timeout: int,
    log: Log,
    params_file: str = "",
) -> dict[str, NotebookOutcome]:
    todo = longest_first(todo, manifest)
    staging_dir = paths.executed / ".staging"
    failed_dir = paths.executed / "failed"
    workers = max(1, min(jobs or 2, os.cpu_count() or 1, len(todo)))
    progress = workers == 1 and sys.stderr.isatty()
    jobs_by_name = {}
    for run, _, values, _ in todo:
        shown = params_file
        if run.file is not None:
            shown = f"{params_file} + {_relative(run.file, paths.root)}"
        jobs_by_name[run.key] = NotebookJob(
            name=run.key,
            source=run.notebook,
            staging=staging_dir / f"{run.key}.ipynb",
            params=values,
            cwd=paths.notebooks,
            root=paths.root,
            kernel=KERNEL_NAME,
            timeout=timeout,
            progress=progress,
            params_file=shown,
            variant=run.name,
        )
    reasons = {run.key: (fp, reason) for run, fp, _, reason in todo}
    total = len(todo)
    results: dict[str, NotebookOutcome] = {}
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {}
        for i, (name, job) in enumerate(jobs_by_name.items(), start=1):
            log(f"  > [{i}/{total}] {name}: executing ({reasons[name][1]})")
            futures[pool.submit(execute_job, job)] = name
        for future in cf.as_completed(futures):
            name = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker process itself died
                outcome = NotebookOutcome(
                    name, "failed", 0.0, "worker crashed", error=f"{type(exc).__name__}: {exc}"
                )
            job = jobs_by_name[name]
            fp, reason = reasons[name]
            if outcome.ok:
                outcome = NotebookOutcome(name, "executed", outcome.seconds, reason)
                append_provenance(
                    job.staging,
                    Provenance(
                        executed_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        seconds=outcome.seconds,
                        params=job.params,
                        params_file=job.params_file,
                        data_files=data_files(
                            paths.sample,
                            {**default_params(job.source), **job.params},
                            (paths.root, paths.notebooks),
                        ),
                        data_digest=fp.data,
                        code_digest=fp.code,
                        root=paths.root,
                    ),
                )
                retitle(job.staging, job.variant)
                os.replace(job.staging, paths.executed / f"{name}.ipynb")
                manifest.record(
                    name,
                    fp,
                    seconds=round(outcome.seconds, 2),
                    executed_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                manifest.save()
                (failed_dir / f"{name}.ipynb").unlink(missing_ok=True)
                log(f"  ✓ {outcome.describe()}")
            else:
                note = ""
                if job.staging.exists():
                    failed_dir.mkdir(parents=True, exist_ok=True)
                    os.replace(job.staging, failed_dir / f"{name}.ipynb")
                    note = f"\n    partial output: {failed_dir / name}.ipynb"
                log(f"  ✗ {outcome.describe()}{note}")
            results[name] = outcome
    return results
