"""Hostile input to ``research run`` and ``research notebooks prepare``: one run at a time,
Ctrl-C and filesystem faults end in one line, and nothing is executed before every option and
parameter is checked.

Each test builds a tiny throwaway project (notebooks that print, sleep or write a marker file),
never the project's own notebooks (they are only read, for their declared parameter types).

1. one ``research run`` per project: a second one is refused naming the first (pid, start), or
   waits with ``--wait``; two at once keep both manifest entries; a stale lock is taken over;
2. Ctrl-C (SIGINT to the process group, as a terminal sends it) while a cell runs: exit 130, one
   line saying what was kept, no traceback, no kernel left running, the published site as it was;
3. every option is checked before anything executes, the error naming the option;
4. every given parameter is checked against the type its notebook declares, naming the
   parameter, the notebook and the parameters file;
5. ``notebooks prepare --out`` refuses the source notebooks folder however spelled, and a folder
   inside it;
6. a read-only folder, a file where a folder should be and a full disk are one line naming the
   path; nothing half-written; the published site untouched.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_raw_cell
from typer.testing import CliRunner, Result

from research.cli import app
from research.config import KERNEL_NAME, Paths
from research.exceptions import InputError, OutputError
from research.pipeline.lock import LOCK_NAME, RunLocked, read_holder, run_lock
from research.pipeline.manifest import Fingerprint, Manifest
from research.pipeline.parameters import check_params, declared_types, notebook_parameters
from research.pipeline.runner import run_pipeline
from research.testing.filesystem import full_disk_command, read_only

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
RESEARCH = str(Path(sys.executable).with_name("research"))
PARAMS = (
    "x = 1\n"
    "share: float = 0.4  # share of the sample held out\n"
    "start = None  # str or None. first date\n"
    "paths = None  # str, list or None. input file(s)\n"
)
KERNEL_NOISE = "[IPKernelApp]"
"""ipykernel's own log lines on stderr (its TCP warning), not the run's."""


# --------------------------------------------------------------------------- helpers


def write_notebook(path: Path, body: str, params: str = PARAMS) -> None:
    cells = [
        new_raw_cell(f'---\ntitle: "{path.stem}"\n---'),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
        new_code_cell(body),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "RL", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture
def project(tmp_path: Path) -> Paths:
    """Two notebooks that write a marker file each time they execute, and a published site."""
    root = tmp_path / "project"
    for sub in ("notebooks/params", "reports/_site", "data/sample"):
        (root / sub).mkdir(parents=True)
    (root / "reports/index.qmd").write_text('---\ntitle: "Test"\n---\n\nHello.\n')
    (root / "reports/_site/index.html").write_text("<html>published</html>")
    for name in ("01_a", "02_b"):
        write_notebook(
            root / f"notebooks/{name}.ipynb",
            f"from pathlib import Path\nPath('../ran-{name}').write_text('x')\nprint(x)",
        )
    return Paths.from_root(root)


def cli(project: Paths, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("REGIME_LAB_ROOT", str(project.root))
    return CliRunner().invoke(app, list(args))


def lines(text: str) -> list[str]:
    """The run's own stderr lines (ipykernel's log lines left out)."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(KERNEL_NOISE)]


def nothing_executed(project: Paths) -> bool:
    ran = list(project.root.glob("ran-*"))
    outputs = list(project.executed.glob("*.ipynb")) if project.executed.is_dir() else []
    return not ran and not outputs and not (project.executed / ".manifest.json").exists()


def site_untouched(project: Paths) -> bool:
    site = project.site
    return (
        sorted(p.name for p in site.iterdir()) == ["index.html"]
        and (site / "index.html").read_text() == "<html>published</html>"
    )


def env_for(project: Paths, **extra: str) -> dict[str, str]:
    return {**os.environ, "REGIME_LAB_ROOT": str(project.root), **extra}


HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from research.pipeline.lock import run_lock\n"
    "with run_lock(Path(sys.argv[1]), log=lambda m: None):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(float(sys.argv[2]))\n"
)


def hold_lock(reports: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the project's lock for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(reports), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


# --------------------------------------------------------------------------- 1. one run at a time


def test_a_second_run_is_refused_naming_the_first(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = hold_lock(project.reports, 60)
    try:
        since = time.strftime("%H:%M")
        result = cli(project, monkeypatch, "run", "--no-render")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2
    message = lines(result.output)
    assert len(message) == 1, result.output
    assert message[0].startswith(
        f"error: another research run is already running in {project.reports} "
        f"(pid {holder.pid}, since {since}"
    )
    assert message[0].endswith("); wait for it or pass --wait")
    assert nothing_executed(project)


def test_wait_waits_for_the_running_one(project: Paths) -> None:
    holder = hold_lock(project.reports, 2)
    notes: list[str] = []
    start = time.monotonic()
    with run_lock(project.reports, wait=True, log=notes.append) as path:
        waited = time.monotonic() - start
        holding = read_holder(path)
        assert holding is not None and holding.pid == os.getpid()
    holder.wait()
    assert waited > 1.0
    assert len(notes) == 1 and f"(pid {holder.pid}, since" in notes[0]
    assert "waiting for the research run" in notes[0]
    assert read_holder(path) is None  # released: emptied, not removed (see research.pipeline.lock)
    with pytest.raises(RunLocked, match="pass --wait"):
        other = hold_lock(project.reports, 30)
        try:
            with run_lock(project.reports):
                pass
        finally:
            other.kill()
            other.wait()


def test_a_stale_lock_is_taken_over_with_a_note(project: Paths) -> None:
    # a run killed with SIGKILL: the kernel released its flock, its pid stays in the file
    holder = hold_lock(project.reports, 60)
    holder.kill()
    holder.wait()
    path = project.executed / LOCK_NAME
    left = read_holder(path)
    assert left is not None and left.pid == holder.pid
    notes: list[str] = []
    with run_lock(project.reports, log=notes.append):
        pass
    assert len(notes) == 1
    assert f"took over a stale lock in {project.reports}" in notes[0]
    assert f"(pid {holder.pid}, since" in notes[0] and "ended without releasing it" in notes[0]


def test_two_runs_at_once_keep_both_manifest_entries(project: Paths) -> None:
    # today's probe: both ran, each saved the manifest it had loaded, one entry was lost
    write_notebook(
        project.notebooks / "01_a.ipynb",
        "import time\nfrom pathlib import Path\nPath('../ran-01_a').write_text('x')\ntime.sleep(2)",
    )
    first = subprocess.Popen(
        [RESEARCH, "run", "--no-render", "--only", "01"],
        env=env_for(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = project.executed / LOCK_NAME
    deadline = time.monotonic() + 60
    while read_holder(lock) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    notes: list[str] = []
    second = run_pipeline(project, only=["02"], render=False, wait=True, log=notes.append)
    first.communicate(timeout=120)
    assert first.returncode == 0 and second.ok
    assert f"waiting for the research run in {project.reports} (pid {first.pid}" in notes[0]
    manifest = json.loads((project.executed / ".manifest.json").read_text())
    assert sorted(manifest["notebooks"]) == ["01_a", "02_b"]


# --------------------------------------------------------------------------- 2. Ctrl-C


def test_ctrl_c_ends_with_one_line_saying_what_was_kept(project: Paths, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    started = tmp_path / "slow-started"
    write_notebook(
        project.notebooks / "02_b.ipynb",
        f"import time\nfrom pathlib import Path\nPath({str(started)!r}).write_text('x')\n"
        "time.sleep(120)",
    )
    proc = subprocess.Popen(
        [RESEARCH, "run", "--renderer", "nbconvert", "--jobs", "1"],
        env=env_for(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C goes to the whole group
    )
    deadline = time.monotonic() + 90
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), "the slow cell never started"
    kernels = [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(project.notebooks)]
    assert kernels  # the slow notebook's kernel
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err
    assert lines(err) == [
        "interrupted: 1 notebook executed and kept in the manifest; stopped before finishing: "
        "02_b; the published site is unchanged"
    ]
    assert "✓ 01_a" in out
    manifest = json.loads((project.executed / ".manifest.json").read_text())
    assert sorted(manifest["notebooks"]) == ["01_a"]
    assert sorted(p.name for p in project.executed.glob("*.ipynb")) == ["01_a.ipynb"]
    assert list((project.executed / ".staging").iterdir()) == []
    assert site_untouched(project)
    time.sleep(0.5)
    assert not [k for k in kernels if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]


# --------------------------------------------------------------------------- 3. options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--renderer", "foo"],
            "error: --renderer must be one of auto, quarto, nbconvert, got foo",
        ),
        (["--jobs", "-4"], "error: --jobs must be at least 1, got -4"),
        (["-j", "0"], "error: --jobs must be at least 1, got 0"),
        (["--timeout", "0"], "error: --timeout must be at least 1 second, got 0"),
        (["--timeout", "-5"], "error: --timeout must be at least 1 second, got -5"),
    ],
)
def test_every_option_is_checked_before_anything_executes(
    project: Paths, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    result = cli(project, monkeypatch, "run", *args)
    assert result.exit_code == 2
    assert lines(result.output) == [message]
    assert nothing_executed(project) and site_untouched(project)


def test_quarto_asked_for_but_missing_is_refused_first(
    project: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from research.pipeline.runner import check_options

    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None)
    with pytest.raises(InputError, match="--renderer quarto: quarto is not on PATH"):
        run_pipeline(project, renderer="quarto", log=lambda m: None)
    assert nothing_executed(project)
    check_options(jobs=None, timeout=1, renderer="quarto", render=False)  # not rendering: fine


# --------------------------------------------------------------------------- 4. parameter types


def test_a_parameter_of_the_wrong_type_names_it_the_notebook_and_the_file(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = project.params / "x.yaml"
    params.write_text('01_a:\n  share: "forty"\n')
    result = cli(project, monkeypatch, "run", "--params", str(params))
    assert result.exit_code == 2
    assert lines(result.output) == [
        "error: notebooks/params/x.yaml: 01_a: share must be float, got 'forty'"
    ]
    assert nothing_executed(project)


def test_a_parameters_file_that_is_not_yaml_is_one_line(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = project.params / "x.yaml"
    params.write_text("01_a:\n  share: [1\n")
    result = cli(project, monkeypatch, "run", "--params", str(params))
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: {params}: not valid YAML at line 3, column 1: expected ',' or ']', but got "
        "'<stream end>'"
    ]
    assert nothing_executed(project)


def test_a_parameter_set_file_is_named_for_its_own_values(project: Paths) -> None:
    (project.params / "02_b").mkdir()
    (project.params / "02_b" / "wide.yaml").write_text("start: 5\n")
    with pytest.raises(
        InputError,
        match=r"^notebooks/params/02_b/wide\.yaml: 02_b: start must be str or None, got 5$",
    ):
        run_pipeline(project, log=lambda m: None)
    assert nothing_executed(project)


def test_values_of_the_declared_types_pass(project: Paths) -> None:
    nb = project.notebooks / "01_a.ipynb"
    for values in (
        {"share": 1},  # an integer is a float
        {"share": 0.25, "start": None, "paths": ["a.csv", "b.csv"]},
        {"start": datetime.date(2013, 1, 1)},  # unquoted YAML date: papermill writes its text
        {"paths": "a.csv", "x": [1, 2]},  # x declares no type: anything goes
    ):
        check_params(nb, values, None)
    with pytest.raises(InputError, match="share must be float, got True"):
        check_params(nb, {"share": True}, None)
    with pytest.raises(InputError, match=r"paths must be str, list or None, got \{'a': 1\}"):
        check_params(nb, {"paths": {"a": 1}}, None)
    with pytest.raises(InputError, match=r"YAML reads 1e-3 as text; write it as 0\.001"):
        check_params(nb, {"share": "1e-3"}, None)
    with pytest.raises(InputError, match=r"01_a has no parameter\(s\) \['nope'\]"):
        check_params(nb, {"nope": 1}, None)  # unknown names: still an error


def test_declared_types_read_annotations_and_comments() -> None:
    assert declared_types("float") == ("float",)
    assert declared_types("str | None") == ("str", "None")
    assert declared_types("Optional[int]") == ("int", "None")
    assert declared_types("typing.List[str]") == ("list",)
    assert declared_types("'float'") == ("float",)
    assert declared_types("dict", "str or None. the annotation wins") == ("dict",)
    assert declared_types(None, "str, list or None. IV index file(s)") == ("str", "list", "None")
    assert declared_types(None, "int") == ("int",)
    for prose in ("None: every symbol", "M (months) or W", "auto, long, orats or cboe", "models"):
        assert declared_types(None, prose) is None
    assert declared_types("Any") is None


def test_the_projects_notebooks_declare_types_their_parameter_files_meet() -> None:
    paths = Paths.from_root(ROOT)
    market = paths.notebooks / "01_market_data.ipynb"
    declared = notebook_parameters(market)
    assert declared["proxy_holdout_share"].types == ("float",)
    assert declared["start"].types == ("str", "None")
    with pytest.raises(InputError) as info:
        check_params(
            market,
            {"proxy_holdout_share": "forty"},
            paths.params / "x.yaml",
            root=paths.root,
        )
    assert str(info.value) == (
        "notebooks/params/x.yaml: 01_market_data: proxy_holdout_share must be float, got 'forty'"
    )
    from research.pipeline.runner import discover, load_params, params_for

    for name in ("default.yaml", "small.yaml"):
        given = load_params(paths.params / name, paths)
        for nb in discover(paths):
            check_params(nb, params_for(nb.stem, given), paths.params / name, root=paths.root)


# --------------------------------------------------------------------------- 5. prepare --out


def _prepare(project: Paths, monkeypatch: pytest.MonkeyPatch, out: Path) -> Result:
    return cli(project, monkeypatch, "notebooks", "prepare", "--out", str(out))


def test_prepare_refuses_the_source_notebooks_folder_however_spelled(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = {p: p.read_bytes() for p in project.notebooks.glob("*.ipynb")}
    link = project.root / "link"
    link.symlink_to(project.notebooks)
    for out in (
        project.notebooks,
        project.root / "notebooks" / ".." / "notebooks",
        link,
        project.notebooks / "params",
        project.notebooks / "build" / "nbval",
    ):
        result = _prepare(project, monkeypatch, out)
        assert result.exit_code == 2, (out, result.output)
        (message,) = lines(result.output)
        assert message.startswith(f"error: --out {out} ")
        assert "source notebooks folder" in message
    assert {p: p.read_bytes() for p in project.notebooks.glob("*.ipynb")} == sources
    assert not (project.notebooks / "build").exists()
    assert sorted(p.name for p in (project.notebooks / "params").iterdir()) == []


def test_prepare_into_a_folder_that_holds_the_sources_writes_beside_them(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = {p: p.read_bytes() for p in project.notebooks.glob("*.ipynb")}
    result = _prepare(project, monkeypatch, project.root)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in project.root.glob("*.ipynb")) == ["01_a.ipynb", "02_b.ipynb"]
    assert {p: p.read_bytes() for p in project.notebooks.glob("*.ipynb")} == sources
    copy = nbformat.read(str(project.root / "01_a.ipynb"), as_version=4)
    assert copy.metadata.papermill["output_path"] == str(project.root / "01_a.ipynb")


def test_prepare_into_a_read_only_folder_or_under_a_file_is_one_line(
    project: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out):
        result = _prepare(project, monkeypatch, out)
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: cannot write {out / '01_a.ipynb'}: permission denied (read-only folder or file?)"
    ]
    assert list(out.iterdir()) == []
    (tmp_path / "file").write_text("a file")
    result = _prepare(project, monkeypatch, tmp_path / "file" / "sub")
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: --out {tmp_path / 'file' / 'sub'}: {tmp_path / 'file'} is a file, so no folder "
        "can be made there"
    ]


# --------------------------------------------------------------------------- 6. filesystem


def test_a_read_only_executed_folder_is_one_line_before_anything_runs(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.executed.mkdir()
    with read_only(project.executed):
        result = cli(project, monkeypatch, "run", "--renderer", "nbconvert")
    assert result.exit_code == 2
    (message,) = lines(result.output)
    assert message.startswith(f"error: cannot write {project.executed}")
    assert message.endswith(": permission denied (read-only folder or file?)")
    assert nothing_executed(project) and site_untouched(project)


def test_a_read_only_reports_folder_is_refused_before_anything_runs(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.executed.mkdir()
    with read_only(project.reports):
        result = cli(project, monkeypatch, "run", "--renderer", "nbconvert")
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: cannot write {project.reports}: permission denied (read-only folder or file?)"
    ]
    assert nothing_executed(project) and site_untouched(project)


def test_a_file_where_the_executed_folder_should_be(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.executed.write_text("not a folder")
    result = cli(project, monkeypatch, "run", "--renderer", "nbconvert")
    assert result.exit_code == 2
    assert lines(result.output) == [
        f"error: cannot write {project.executed}: a file stands where a folder should be"
    ]
    assert project.executed.read_text() == "not a folder"
    assert not list(project.root.glob("ran-*")) and site_untouched(project)


def test_a_full_disk_while_a_notebook_runs_is_one_line_and_keeps_nothing(
    project: Paths,
) -> None:
    write_notebook(project.notebooks / "01_a.ipynb", "print('x' * 200_000)")
    staging = project.executed / ".staging"
    staging.mkdir(parents=True)
    cmd = full_disk_command([RESEARCH, "run", "--renderer", "nbconvert", "--only", "01"], staging)
    if cmd is None:
        pytest.skip("no mount namespace here to fake a full disk")
    proc = subprocess.run(cmd, env=env_for(project), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines(proc.stderr) == [
        f"error: cannot write {staging / '01_a.ipynb'}: no space left on the device"
    ]
    assert not list(project.executed.glob("*.ipynb"))
    assert not (project.executed / ".manifest.json").exists()
    assert list(staging.iterdir()) == [] and site_untouched(project)


def test_the_manifest_writer_on_a_full_disk_or_under_a_file(tmp_path: Path) -> None:
    fp = Fingerprint("s", "p", "d", "c")
    disk = tmp_path / "disk"
    disk.mkdir()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from research.exceptions import OutputError\n"
        "from research.pipeline.manifest import Fingerprint, Manifest\n"
        "m = Manifest(Path(sys.argv[1]) / '.manifest.json')\n"
        "m.record('01_a', Fingerprint('s', 'p', 'd', 'c'))\n"
        "m.save()\n"
        "m.record('02_b', Fingerprint('s', 'p', 'd', 'c'), blob='x' * 200_000)\n"
        "try:\n"
        "    m.save()\n"
        "except OutputError as e:\n"
        "    import os; print(e); print(sorted(os.listdir(sys.argv[1])))\n"
        "    print(sorted(Manifest.load(m.path).entries))\n"
    )
    cmd = full_disk_command([sys.executable, "-c", code, str(disk)], disk)
    if cmd is None:
        pytest.skip("no mount namespace here to fake a full disk")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [
        f"cannot write {disk / '.manifest.json'}: no space left on the device",
        "['.manifest.json']",
        "['01_a']",  # the previous manifest, whole
    ]
    (tmp_path / "executed").write_text("a file")
    manifest = Manifest(tmp_path / "executed" / ".manifest.json")
    manifest.record("01_a", fp)
    with pytest.raises(OutputError, match="a file stands where a folder should be"):
        manifest.save()


def test_a_render_that_hits_a_full_disk_keeps_the_published_site(
    project: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from research.pipeline import render

    def full(paths: Paths, out: Path, log: object) -> None:
        (out / "index.html").write_text("<html>half</html>")
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "executed/01_a.html"))

    monkeypatch.setattr(render, "render_nbconvert", full)
    with pytest.raises(OutputError) as info:
        render.render_site(project, renderer="nbconvert", log=lambda m: None)
    assert str(info.value).startswith("cannot write ")
    assert str(info.value).endswith(
        "executed/01_a.html: no space left on the device; the published site is unchanged"
    )
    assert site_untouched(project) and not list(project.reports.glob(".site-build-*"))
