"""``research run``: execute the notebooks with papermill, then render the site.

Every option and every given parameter is checked before anything executes (a parameter's value
against the type its notebook's ``parameters`` cell declares: ``research.pipeline.parameters``),
and so is every folder the run writes. One run at a time per project: the run holds a lock on
the reports folder (``research.pipeline.lock``); a second one fails, or waits with ``wait``.

Each notebook runs in its own spawned process (papermill is not thread-safe) on the project's
kernel, writes to a staging file, and is moved into ``reports/executed/`` only when it succeeds.
A failing notebook (cell error or cell timeout) is reported with its cell, kept under
``reports/executed/failed/`` for inspection, does not stop the others, and blocks publishing:
the previously published site stays as it was.

Ctrl-C (SIGINT) stops the workers and their kernels (they ignore the terminal's SIGINT, so they
print nothing), drops the staging files of the notebooks it stopped, and raises
:class:`RunInterrupted`, whose message says what was kept: the notebooks that finished are in the
manifest, and the published site is only ever swapped whole. A filesystem fault (read-only
folder, a file where a folder should be, full disk) ends the run the same way, as one
:class:`research.exceptions.OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from research._io import os_error_text
from research.config import KERNEL_NAME, PARAMS_ENV, ROOT_ENV, VARIANT_ENV, Paths
from research.exceptions import InputError, OutputError, ResearchError
from research.pipeline.interrupts import interrupt_deferred, sigint_handled
from research.pipeline.lock import run_lock
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
from research.pipeline.parameters import check_params, yaml_problem
from research.pipeline.provenance import Provenance, append_provenance
from research.pipeline.variants import Variant, retitle, variants_of

__all__ = [
    "ALL_KEY",
    "DEFAULT_TIMEOUT",
    "RENDERERS",
    "NotebookJob",
    "NotebookOutcome",
    "RunInterrupted",
    "RunResult",
    "check_options",
    "check_params",
    "default_params",
    "discover",
    "execute_job",
    "load_params",
    "longest_first",
    "params_for",
    "prune_orphans",
    "run_pipeline",
    "select",
]

Status = Literal["executed", "skipped", "failed", "timeout"]
Log = Callable[[str], None]
ALL_KEY = "all"
"""Parameters under this key of a params file apply to every notebook."""
DEFAULT_TIMEOUT = 1800
"""Default per-cell execution timeout, seconds."""
RENDERERS = ("auto", "quarto", "nbconvert")
"""What ``renderer`` may be."""
STAGING = ".staging"
"""Folder of ``reports/executed`` where notebooks are written while they execute."""
FAILED = "failed"
"""Folder of ``reports/executed`` that keeps the partial output of a failed notebook."""
OUTPUT_ERROR = "output error"
"""The reason of an outcome whose output could not be written (it ends the run)."""
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_REFUSED = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR}


class RunInterrupted(ResearchError):
    """Ctrl-C (SIGINT) stopped the run; the message says what was kept."""


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
            raise InputError(f"--only {want!r} {how}; notebooks: {names}")
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
        raise InputError(f"{target}: cannot read parameters file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{target}: not valid YAML at {yaml_problem(exc)}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) or v is None for v in data.values()
    ):
        raise InputError(
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


def check_options(*, jobs: int | None, timeout: int, renderer: str, render: bool = True) -> None:
    """Refuse bad options before anything executes, naming the option.

    Parameters
    ----------
    jobs
        Worker processes (``None``: the default).
    timeout
        Per-cell timeout, seconds.
    renderer
        One of :data:`RENDERERS`.
    render
        Whether the site will be rendered (``quarto`` must then be on PATH when asked for).

    Raises
    ------
    research.exceptions.InputError
        ``--jobs must be at least 1, got -4``, ``--timeout must be at least 1 second, got 0``,
        ``--renderer must be one of auto, quarto, nbconvert, got foo``.
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise InputError(f"--timeout must be at least 1 second, got {timeout}")
    if renderer not in RENDERERS:
        raise InputError(f"--renderer must be one of {', '.join(RENDERERS)}, got {renderer}")
    if render and renderer == "quarto" and shutil.which("quarto") is None:
        raise InputError(
            "--renderer quarto: quarto is not on PATH; install it or pass --renderer nbconvert"
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


KERNEL_START_ATTEMPTS = 3
"""Kernel starts tried per notebook when a kernel dies before replying (a port clash)."""


def _died_at_start(exc: BaseException) -> bool:
    """Whether ``exc`` is a kernel that died before it replied to ``kernel_info``: no cell ran."""
    return "before replying to kernel_info" in str(exc)


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
        for attempt in range(KERNEL_START_ATTEMPTS):
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
                break
            except RuntimeError as exc:
                # two kernels started at once by different workers can pick the same free TCP
                # port (jupyter_client picks, the kernel binds later): the loser dies before
                # any cell ran, and a new kernel on new ports is all it takes
                if not _died_at_start(exc) or attempt == KERNEL_START_ATTEMPTS - 1:
                    raise
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
        if isinstance(exc, OSError) and _output_fault(exc, job.staging.parent):
            return NotebookOutcome(
                job.name,
                "failed",
                time.perf_counter() - start,
                OUTPUT_ERROR,
                error=os_error_text(exc, exc.filename or job.staging),
            )
        return NotebookOutcome(
            job.name,
            "failed",
            time.perf_counter() - start,
            "execution error",
            error=f"{type(exc).__name__}: {exc}",
        )
    return NotebookOutcome(job.name, "executed", time.perf_counter() - start, "")


def _output_fault(exc: OSError, folder: Path) -> bool:
    """Whether ``exc`` is the filesystem refusing an output: a full disk or a read-only
    filesystem anywhere, a refused path under ``folder``."""
    if exc.errno in _DISK_FULL:
        return True
    if exc.errno in _REFUSED and exc.filename:
        try:
            return Path(exc.filename).resolve().is_relative_to(folder.resolve())
        except (OSError, ValueError):
            return False
    return False


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
    wait: bool = False,
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
    wait
        When another run holds the project's lock, wait for it instead of failing.
    log
        Where progress lines go.

    Returns
    -------
    RunResult

    Raises
    ------
    research.exceptions.InputError
        A bad option, parameters file or parameter (before anything executes).
    research.pipeline.lock.RunLocked
        Another run is running in the project (and ``wait`` is false).
    research.exceptions.OutputError
        A folder the run writes cannot be written (checked before anything executes), or the
        disk filled up: nothing half-written is left, the published site is unchanged.
    RunInterrupted
        Ctrl-C (SIGINT); the message says what was kept.
    """
    paths = paths or Paths.from_root()
    check_options(jobs=jobs, timeout=timeout, renderer=renderer, render=render)
    t0 = time.perf_counter()
    notebooks = select(discover(paths), only)
    if not notebooks:
        raise InputError(f"no notebooks matching NN_*.ipynb in {paths.notebooks}")
    params = load_params(params_file, paths)
    given = params_file if params_file is not None else paths.default_params
    unknown_sections = set(params) - {ALL_KEY} - {p.stem for p in discover(paths)}
    if unknown_sections:
        raise InputError(
            f"{given}: sections {sorted(unknown_sections)} name no "
            f"notebook; notebooks: {[p.stem for p in discover(paths)]}"
        )
    runs = variants_of(paths, notebooks)
    planned: list[tuple[Variant, dict[str, Any]]] = []
    for run in runs:
        values = {**params_for(run.notebook.stem, params), **run.params}
        sources = {name: run.file for name in run.params} if run.file is not None else {}
        check_params(run.notebook, values, given, sources=sources, root=paths.root)
        planned.append((run, values))

    progress = _Progress()
    try:
        with run_lock(paths.reports, wait=wait, log=log):
            return _run_locked(
                paths, planned, given, force, jobs, timeout, render, renderer, log, progress, t0
            )
    except KeyboardInterrupt:
        raise RunInterrupted(progress.interrupted()) from None
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(_fault_text(exc, paths.reports)) from exc


@dataclass
class _Progress:
    """What a run has done so far (for the message when it is interrupted)."""

    executed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    rendering: bool = False
    published: bool = False

    def interrupted(self) -> str:
        """``interrupted: 3 notebooks executed and kept in the manifest; …``."""
        n = len(self.executed)
        kept = (
            f"{n} notebook{'' if n == 1 else 's'} executed and kept in the manifest"
            if n
            else "no notebook was executed"
        )
        if self.stopped:
            kept += f"; stopped before finishing: {', '.join(self.stopped)}"
        site = "the site was published" if self.published else "the published site is unchanged"
        when = " while rendering" if self.rendering and not self.published else ""
        return f"interrupted{when}: {kept}; {site}"


def _fault_text(exc: OSError, fallback: Path) -> str:
    """One line for a filesystem error: what could not be written and why."""
    path = exc.filename or fallback
    if exc.errno in _DISK_FULL or exc.errno in _REFUSED:
        return os_error_text(exc, path)
    return f"{path}: {exc.strerror or exc}"


def _writable(folder: Path) -> None:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises
    ------
    research.exceptions.OutputError
        It cannot: ``cannot write reports/executed: permission denied (…)``.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(os_error_text(exc, folder)) from exc


def _not_a_file(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write {folder}: a file stands where a folder should be")


def _run_locked(
    paths: Paths,
    planned: list[tuple[Variant, dict[str, Any]]],
    params_file: Path,
    force: bool,
    jobs: int | None,
    timeout: int,
    render: bool,
    renderer: str,
    log: Log,
    progress: _Progress,
    t0: float,
) -> RunResult:
    """``run_pipeline`` once the options are checked and the project's lock is held."""
    manifest = Manifest.load(paths.executed / MANIFEST_NAME)
    code = code_digest()
    bases = (paths.root, paths.notebooks)

    outcomes: dict[str, NotebookOutcome] = {}
    todo: list[Job] = []
    for run, values in planned:
        nb = run.notebook
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

    # every folder the run writes, before anything executes
    if todo:
        _writable(paths.executed)
        _writable(paths.executed / STAGING)
        _not_a_file(paths.executed / FAILED)
    if render:
        _writable(paths.reports)
        _not_a_file(paths.reports / "assets")
        _not_a_file(paths.site)

    if todo:
        from research.pipeline.kernel import ensure_kernel

        ensure_kernel()
        shown = _relative(params_file, paths.root)
        _execute_all(todo, paths, manifest, jobs, timeout, log, shown, outcomes, progress)

    prune_orphans(paths, manifest, log)
    ordered = tuple(outcomes[run.key] for run, _ in planned)
    failures = tuple(o for o in ordered if not o.ok)
    rendered, note, used = False, "site not rendered (--no-render)", None
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
            progress.rendering = True
            used = render_site(paths, renderer=renderer, log=log)
            progress.published = True
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


@dataclass
class _Worker:
    """A notebook executing in its own process; its outcome comes back through ``reader``."""

    job: NotebookJob
    process: multiprocessing.process.BaseProcess
    reader: multiprocessing.connection.Connection

    def outcome(self) -> NotebookOutcome:
        """The outcome it sent, or a crash when it ended without one (call once it is done)."""
        result = None
        try:
            if self.reader.poll():
                result = self.reader.recv()
        except (EOFError, OSError):
            pass
        self.process.join(timeout=60)  # it exits right after sending
        if self.process.exitcode is None and self.process.pid is not None:
            _kill_descendants(self.process.pid)
            self.process.kill()
            self.process.join()
        if isinstance(result, NotebookOutcome):
            return result
        return NotebookOutcome(
            self.job.name,
            "failed",
            0.0,
            "worker crashed",
            error=f"the worker process ended with exit code {self.process.exitcode}",
        )


def _worker_main(job: NotebookJob, conn: multiprocessing.connection.Connection) -> None:
    """A worker process: execute ``job`` and send its outcome."""
    try:
        outcome = execute_job(job)
    except BaseException as exc:  # noqa: BLE001 - reported as the notebook's failure
        outcome = NotebookOutcome(
            job.name, "failed", 0.0, "worker crashed", error=f"{type(exc).__name__}: {exc}"
        )
    try:
        conn.send(outcome)
    finally:
        conn.close()


def _start(job: NotebookJob, context: Any) -> _Worker:
    """Start ``job`` in a spawned process that ignores the terminal's SIGINT (a signal ignored
    at ``exec`` stays ignored, and Python keeps it so): Ctrl-C reaches this process alone."""
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker_main, args=(job, writer), name=f"research run {job.name}"
    )
    with sigint_handled(signal.SIG_IGN):
        process.start()
    writer.close()
    return _Worker(job, process, reader)


def _kill_descendants(pid: int) -> None:
    """Kill every process below ``pid``: its kernels and their process groups (a kernel runs
    in a session of its own, so anything it started goes with it)."""
    try:
        import psutil
    except ImportError:  # the kernel's parent poller ends it once its worker is gone
        return
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    own = os.getpgrp()
    for child in children:
        with contextlib.suppress(OSError, psutil.Error):
            group = os.getpgid(child.pid)
            if group == child.pid and group != own:
                os.killpg(group, signal.SIGKILL)
            else:
                child.kill()


def _stop(workers: Iterable[_Worker]) -> None:
    """Stop workers at once, with their kernels, so none of them prints on its way out: each is
    frozen first (it can start nothing more), its descendants killed, then itself."""
    workers = list(workers)
    freeze = getattr(signal, "SIGSTOP", None)
    for w in workers:
        if freeze is not None and w.process.pid is not None and w.process.exitcode is None:
            with contextlib.suppress(OSError):
                os.kill(w.process.pid, freeze)
    for w in workers:
        if w.process.pid is not None:
            _kill_descendants(w.process.pid)
    for w in workers:
        with contextlib.suppress(Exception):
            w.process.kill()
    for w in workers:
        w.process.join(timeout=10)
        w.reader.close()
        w.job.staging.unlink(missing_ok=True)


def _finish(
    outcome: NotebookOutcome,
    job: NotebookJob,
    fp: Fingerprint,
    reason: str,
    paths: Paths,
    manifest: Manifest,
    log: Log,
) -> NotebookOutcome:
    """Keep a finished notebook: provenance, then into ``reports/executed`` and the manifest
    (or, failed, its partial output into ``failed/``).

    Raises
    ------
    research.exceptions.OutputError
        The notebook's output could not be written (its staging file is removed).
    """
    name = job.name
    failed_dir = paths.executed / FAILED
    if outcome.reason == OUTPUT_ERROR:
        job.staging.unlink(missing_ok=True)
        raise OutputError(outcome.error or f"cannot write {job.staging}")
    if outcome.ok:
        outcome = NotebookOutcome(name, "executed", outcome.seconds, reason)
        target = paths.executed / f"{name}.ipynb"
        try:
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
            try:
                os.replace(job.staging, target)
            except OSError as exc:
                raise OutputError(os_error_text(exc, target)) from exc
        except BaseException:
            job.staging.unlink(missing_ok=True)
            raise
        manifest.record(
            name,
            fp,
            seconds=round(outcome.seconds, 2),
            executed_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        manifest.save()
        (failed_dir / f"{name}.ipynb").unlink(missing_ok=True)
        log(f"  ✓ {outcome.describe()}")
        return outcome
    note = ""
    if job.staging.exists():
        kept = failed_dir / f"{name}.ipynb"
        try:
            failed_dir.mkdir(parents=True, exist_ok=True)
            os.replace(job.staging, kept)
        except OSError as exc:
            job.staging.unlink(missing_ok=True)
            raise OutputError(os_error_text(exc, kept)) from exc
        note = f"\n    partial output: {failed_dir / name}.ipynb"
    log(f"  ✗ {outcome.describe()}{note}")
    return outcome


def _execute_all(
    todo: list[Job],
    paths: Paths,
    manifest: Manifest,
    jobs: int | None,
    timeout: int,
    log: Log,
    params_file: str,
    outcomes: dict[str, NotebookOutcome],
    progress: _Progress,
) -> None:
    """Execute ``todo`` on up to ``jobs`` worker processes, adding each outcome to ``outcomes``
    as it comes; on Ctrl-C or an output error, stop the running ones and re-raise."""
    todo = longest_first(todo, manifest)
    staging_dir = paths.executed / STAGING
    workers = max(1, min(jobs or 2, os.cpu_count() or 1, len(todo)))
    show_progress = workers == 1 and sys.stderr.isatty()
    queue: list[NotebookJob] = []
    for run, _, values, _ in todo:
        shown = params_file
        if run.file is not None:
            shown = f"{params_file} + {_relative(run.file, paths.root)}"
        queue.append(
            NotebookJob(
                name=run.key,
                source=run.notebook,
                staging=staging_dir / f"{run.key}.ipynb",
                params=values,
                cwd=paths.notebooks,
                root=paths.root,
                kernel=KERNEL_NAME,
                timeout=timeout,
                progress=show_progress,
                params_file=shown,
                variant=run.name,
            )
        )
    reasons = {run.key: (fp, reason) for run, fp, _, reason in todo}
    total = len(queue)
    context = multiprocessing.get_context("spawn")
    running: dict[str, _Worker] = {}
    started = 0
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                started += 1
                log(f"  > [{started}/{total}] {job.name}: executing ({reasons[job.name][1]})")
                running[job.name] = _start(job, context)
            handles: list[Any] = [w.reader for w in running.values()]
            handles += [w.process.sentinel for w in running.values()]
            ready = set(multiprocessing.connection.wait(handles))
            for name, worker in list(running.items()):
                if worker.reader not in ready and worker.process.sentinel not in ready:
                    continue
                outcome = worker.outcome()
                worker.reader.close()
                del running[name]
                fp, reason = reasons[name]
                with interrupt_deferred():
                    outcome = _finish(outcome, worker.job, fp, reason, paths, manifest, log)
                    outcomes[name] = outcome
                    if outcome.status == "executed":
                        progress.executed.append(name)
    except BaseException:
        progress.stopped = list(running)
        with sigint_handled(signal.SIG_IGN):
            _stop(running.values())
        raise
