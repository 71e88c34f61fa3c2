"""The papermill → site pipeline on a small temporary project (real kernels, real papermill)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from research.config import KERNEL_NAME, Paths
from research.pipeline.runner import run_pipeline, select
from research.pipeline.variants import load_variant, variants_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def write_notebook(path: Path, body: str, params: str = "x = 1", title: str = "T") -> None:
    cells = [
        new_raw_cell(f'---\ntitle: "{title}"\n---'),
        new_markdown_cell(f"Intro of {title}"),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
        new_code_cell(body),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "RL", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture
def project(tmp_path: Path) -> Paths:
    for sub in ("notebooks/params", "reports", "data/sample"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "reports/index.qmd").write_text(
        '---\ntitle: "Test site"\n---\n\nSee [A](executed/01_a.ipynb).\n\n::: {.callout-note}\n'
        "note\n:::\n"
    )
    write_notebook(tmp_path / "notebooks/01_a.ipynb", "print('value of x:', x * 10)", title="Alpha")
    write_notebook(tmp_path / "notebooks/02_b.ipynb", "print('b says', x + 100)", title="Beta")
    return Paths.from_root(tmp_path)


def _quiet(msg: str) -> None:
    pass


def _statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {o.name: o.status for o in result.notebooks}


def test_run_executes_renders_then_skips_and_force_reruns(project: Paths) -> None:
    lines: list[str] = []
    first = run_pipeline(project, log=lines.append, renderer="nbconvert")
    assert first.ok and first.rendered and first.renderer == "nbconvert"
    assert _statuses(first) == {"01_a": "executed", "02_b": "executed"}
    executed = nbformat.read(str(project.executed / "01_a.ipynb"), as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "value of x: 10" in outputs
    page = (project.site / "executed/01_a.html").read_text()
    assert "value of x: 10" in page and "Alpha" in page
    # no input cells and no injected parameters cell in the rendered page
    assert "print(" not in page and "injected-parameters" not in page
    index = (project.site / "index.html").read_text()
    assert 'href="executed/01_a.html"' in index and "Beta" in index and ":::" not in index
    assert not list(project.reports.glob(".site-build-*"))
    assert any("executing" in ln for ln in lines)

    lines.clear()
    second = run_pipeline(project, log=lines.append, renderer="nbconvert")
    assert _statuses(second) == {"01_a": "skipped", "02_b": "skipped"}
    assert not second.rendered and "unchanged" in second.render_note
    assert sum("not re-executed" in ln for ln in lines) == 2

    third = run_pipeline(project, force=True, log=_quiet, renderer="nbconvert")
    assert _statuses(third) == {"01_a": "executed", "02_b": "executed"}
    assert third.rendered


def test_changed_params_or_source_reexecute_only_that_notebook(project: Paths) -> None:
    run_pipeline(project, log=_quiet, renderer="nbconvert")
    params = project.params / "other.yaml"
    params.write_text("01_a:\n  x: 7\n")
    result = run_pipeline(project, params_file=params, log=_quiet, renderer="nbconvert")
    assert _statuses(result) == {"01_a": "executed", "02_b": "skipped"}
    assert result.notebooks[0].reason == "changed: params"
    assert "value of x: 70" in (project.site / "executed/01_a.html").read_text()

    write_notebook(project.notebooks / "02_b.ipynb", "print('b now says', x)", title="Beta")
    result = run_pipeline(project, params_file=params, log=_quiet, renderer="nbconvert")
    assert _statuses(result) == {"01_a": "skipped", "02_b": "executed"}
    assert result.notebooks[1].reason == "changed: source"

    (project.sample / "input.csv").write_text("a,b\n1,2\n")
    result = run_pipeline(project, params_file=params, log=_quiet, renderer="nbconvert")
    assert {o.reason for o in result.notebooks} == {"changed: data"}


def test_failing_notebook_is_named_others_run_and_old_site_stays(project: Paths) -> None:
    run_pipeline(project, log=_quiet, renderer="nbconvert")
    index = project.site / "index.html"
    before = index.read_text()
    before_page = (project.site / "executed/02_b.html").read_text()

    write_notebook(
        project.notebooks / "01_a.ipynb",
        "y = 2\nraise ValueError('boom in alpha')",
        title="Alpha v2",
    )
    write_notebook(project.notebooks / "02_b.ipynb", "print('b changed', x)", title="Beta v2")
    lines: list[str] = []
    result = run_pipeline(project, log=lines.append, renderer="nbconvert")
    assert not result.ok and not result.rendered
    failed, ok = result.notebooks
    assert (failed.status, ok.status) == ("failed", "executed")
    assert failed.error == "ValueError: boom in alpha"
    # cell #4 of the source notebook: raw, markdown, parameters, body
    assert failed.cell_number == 4 and failed.cell_source == "y = 2"
    assert "01_a: failed in cell #4 (In [2]): 'y = 2'" in "\n".join(lines)
    assert (project.executed / "failed/01_a.ipynb").exists()
    # previous site untouched (same pages), no half-built folder left
    assert index.read_text() == before
    assert (project.site / "executed/02_b.html").read_text() == before_page
    assert not list(project.reports.glob(".site-build-*"))
    assert "unchanged" in result.render_note

    # fixing the notebook: only it re-runs, and the site is published again
    write_notebook(project.notebooks / "01_a.ipynb", "print('fixed')", title="Alpha v3")
    result = run_pipeline(project, log=_quiet, renderer="nbconvert")
    assert _statuses(result) == {"01_a": "executed", "02_b": "skipped"} and result.rendered
    assert "Alpha v3" in index.read_text()
    assert not (project.executed / "failed/01_a.ipynb").exists()


def test_cell_timeout_is_reported_with_its_cell(project: Paths) -> None:
    write_notebook(project.notebooks / "02_b.ipynb", "import time\ntime.sleep(60)")
    result = run_pipeline(project, only=["02"], timeout=3, log=_quiet, renderer="nbconvert")
    (outcome,) = result.notebooks
    assert outcome.status == "timeout"
    assert outcome.cell_number == 4 and outcome.cell_source == "import time"
    assert outcome.seconds < 40
    assert not result.rendered and not (project.site / "index.html").exists()


def test_cli_exit_codes(project: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from research.cli import app

    monkeypatch.setenv("REGIME_LAB_ROOT", str(project.root))
    runner = CliRunner()
    ok = runner.invoke(app, ["run", "--renderer", "nbconvert", "--only", "01_a"])
    assert ok.exit_code == 0, ok.output
    write_notebook(project.notebooks / "01_a.ipynb", "1/0")
    bad = runner.invoke(app, ["run", "--renderer", "nbconvert", "--only", "01_a"])
    assert bad.exit_code == 1
    assert "ZeroDivisionError" in bad.output and "01_a: failed in cell #4" in bad.output
    params = project.params / "bad.yaml"
    params.write_text("01_a:\n  nope: 3\n")
    err = runner.invoke(app, ["run", "--params", str(params)])
    assert err.exit_code == 2
    assert "bad.yaml" in err.output and "nope" in err.output and "['x']" in err.output


def test_quarto_is_used_when_on_path(
    project: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in `quarto` that records its arguments and writes the index into --output-dir:
    # this checks the wiring (arguments, temp build folder, swap), not Quarto itself.
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    fake = bindir / "quarto"
    log = tmp_path / "quarto-args.txt"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$@" > {log}\n'
        'while [ $# -gt 0 ]; do if [ "$1" = --output-dir ]; then out=$2; fi; shift; done\n'
        'echo "<html>quarto site</html>" > "$out/index.html"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    result = run_pipeline(project, only=["01"], log=_quiet)
    assert result.renderer == "quarto"
    args = log.read_text().split()
    assert args[:2] == ["render", str(project.reports)]
    assert "--output-dir" in args and "--no-execute" in args
    assert (project.site / "index.html").read_text().strip() == "<html>quarto site</html>"


def test_select_matches_prefixes_and_rejects_ambiguous(project: Paths) -> None:
    nbs = sorted(project.notebooks.glob("*.ipynb"))
    assert [p.stem for p in select(nbs, ["02"])] == ["02_b"]
    assert [p.stem for p in select(nbs, ["01_a.ipynb", "02_b"])] == ["01_a", "02_b"]
    with pytest.raises(ValueError, match="matches several"):
        select(nbs, ["0"])
    with pytest.raises(ValueError, match="matches no notebook"):
        select(nbs, ["99"])


def test_every_page_records_its_provenance(project: Paths) -> None:
    import json

    params = project.params / "other.yaml"
    params.write_text("01_a:\n  x: 7\n")
    (project.sample / "input.csv").write_text("a,b\n1,2\n")
    run_pipeline(project, params_file=params, log=_quiet, renderer="nbconvert")
    manifest = json.loads((project.executed / ".manifest.json").read_text())
    for name in ("01_a", "02_b"):
        executed = nbformat.read(str(project.executed / f"{name}.ipynb"), as_version=4)
        cell = executed.cells[-1]
        assert cell.cell_type == "markdown" and cell.metadata["tags"] == ["provenance"]
        fp = manifest["notebooks"][name]["fingerprint"]
        text = cell.source
        assert f"SHA-256 `{fp['data'][:16]}`" in text and f"SHA-256 `{fp['code'][:16]}`" in text
        assert "`data/sample/input.csv` (" in text  # the input file, with its own digest
        assert "git commit `not a git checkout`" in text  # a temporary project
        took = float(re.search(r"UTC, in (\d+\.\d) s", text).group(1))  # type: ignore[union-attr]
        assert abs(took - manifest["notebooks"][name]["seconds"]) <= 0.051
        page = (project.site / "executed" / f"{name}.html").read_text()
        assert "Provenance" in page and "Table: What this page was computed from" in page
    first = nbformat.read(str(project.executed / "01_a.ipynb"), as_version=4).cells[-1].source
    assert '`notebooks/params/other.yaml`: `{"x": 7}`' in first
    second = nbformat.read(str(project.executed / "02_b.ipynb"), as_version=4).cells[-1].source
    assert "the notebook's defaults (`notebooks/params/other.yaml` sets none)" in second


# One notebook, many parameter sets: a parameters file adds a page with its own values and
# title, unchanged ones are skipped, a deleted one's page goes, and bad files are named.

SUMMARY_BODY = (
    "from research.summaries import write_summary\n"
    "summary_path = write_summary('01_a', {'x': x})\n"
    "print('value of x:', x * 10)"
)


def _outputs(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_a_parameters_file_adds_a_page(project: Paths) -> None:
    write_notebook(project.notebooks / "01_a.ipynb", SUMMARY_BODY, title="Alpha")
    folder = project.params / "01_a"
    folder.mkdir()
    (folder / "big.yaml").write_text("x: 7\n")

    first = run_pipeline(project, log=_quiet, renderer="nbconvert")
    assert first.ok, [o.describe() for o in first.failures]
    assert _statuses(first) == {"01_a": "executed", "01_a--big": "executed", "02_b": "executed"}
    assert "value of x: 10" in _outputs(project.executed / "01_a.ipynb")
    assert "value of x: 70" in _outputs(project.executed / "01_a--big.ipynb")
    # its own page, titled with the set's name, listed in the navigation and on the index
    page = (project.site / "executed/01_a--big.html").read_text()
    assert "value of x: 70" in page and "Alpha · big" in page
    assert "notebooks/params/01_a/big.yaml" in page  # provenance names the file
    index = (project.site / "index.html").read_text()
    assert 'href="executed/01_a--big.html"' in index
    # summaries do not overwrite each other
    summaries = project.reports / "summaries"
    assert json.loads((summaries / "01_a.json").read_text()) == {"x": 1}
    assert json.loads((summaries / "01_a--big.json").read_text()) == {"x": 7}

    # unchanged: skipped; a second file: only it runs
    (folder / "small.yaml").write_text("x: 2\n")
    second = run_pipeline(project, log=_quiet, renderer="nbconvert")
    assert _statuses(second) == {
        "01_a": "skipped",
        "01_a--big": "skipped",
        "01_a--small": "executed",
        "02_b": "skipped",
    }
    assert (project.site / "executed/01_a--small.html").is_file()

    # a changed file re-runs that set only
    (folder / "big.yaml").write_text("x: 8\n")
    third = run_pipeline(project, log=_quiet, renderer="nbconvert")
    assert _statuses(third)["01_a--big"] == "executed"
    assert _statuses(third)["01_a--small"] == "skipped"
    assert "value of x: 80" in _outputs(project.executed / "01_a--big.ipynb")

    # a deleted file: its page is gone
    (folder / "small.yaml").unlink()
    lines: list[str] = []
    fourth = run_pipeline(project, log=lines.append, renderer="nbconvert")
    assert "01_a--small" not in _statuses(fourth)
    assert not (project.executed / "01_a--small.ipynb").exists()
    assert not (project.site / "executed/01_a--small.html").exists()
    assert any("01_a--small" in ln and "removed" in ln for ln in lines)


def test_a_parameter_the_notebook_lacks_names_the_file(project: Paths) -> None:
    folder = project.params / "02_b"
    folder.mkdir()
    (folder / "typo.yaml").write_text("y: 3\n")
    with pytest.raises(ValueError, match=r"typo\.yaml: 02_b has no parameter\(s\) \['y'\]"):
        run_pipeline(project, log=_quiet, renderer="nbconvert")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("ok.yaml", "- 1\n- 2\n", "expected a mapping of 01_a's parameter names"),
        ("ok.yaml", "x: [1,\n", "not valid YAML"),
        ("bad name.yaml", "x: 1\n", "may only hold letters, digits"),
    ],
)
def test_bad_parameter_files_are_named(
    project: Paths,
    name: str,
    text: str,
    message: str,
) -> None:
    folder = project.params / "01_a"
    folder.mkdir()
    (folder / name).write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        variants_of(project, [project.notebooks / "01_a.ipynb"])
    assert name in str(info.value)


def test_empty_file_is_the_default_parameters(project: Paths) -> None:
    (project.params / "01_a").mkdir()
    file = project.params / "01_a" / "same.yaml"
    file.write_text("")
    variant = load_variant(project.notebooks / "01_a.ipynb", file)
    assert variant.key == "01_a--same" and variant.params == {}


def test_longest_first_uses_last_times_then_hints(project: Paths) -> None:
    from research.pipeline.manifest import Fingerprint, Manifest
    from research.pipeline.runner import longest_first
    from research.pipeline.variants import Variant

    for name, hint in (("01_a", 5), ("02_b", 30)):
        path = project.notebooks / f"{name}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        nb.metadata["regime_lab"] = {"expected_seconds": hint}
        nbformat.write(nb, str(path))
    write_notebook(project.notebooks / "03_c.ipynb", "pass")  # no hint, never run
    fp = Fingerprint("s", "p", "d", "c")
    todo = [
        (Variant(project.notebooks / f"{n}.ipynb"), fp, {}, "r") for n in ("01_a", "02_b", "03_c")
    ]
    manifest = Manifest(project.executed / ".manifest.json")
    order = [job[0].key for job in longest_first(todo, manifest)]
    assert order == ["03_c", "02_b", "01_a"]  # unknown first, then the hints, longest first
    manifest.record("01_a", fp, seconds=60.0)  # a recorded time beats the hint
    order = [job[0].key for job in longest_first(todo, manifest)]
    assert order == ["03_c", "01_a", "02_b"]


def test_a_kernel_that_dies_at_start_is_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' kernels can clash on a port; the loser dies before replying to kernel_info
    (no cell ran) and a new kernel is started — a kernel that dies later is a failure."""
    import papermill as pm

    from research.config import PARAMS_ENV, ROOT_ENV, VARIANT_ENV
    from research.pipeline.runner import KERNEL_START_ATTEMPTS, NotebookJob, execute_job

    for name in (ROOT_ENV, PARAMS_ENV, VARIANT_ENV):  # execute_job sets them: restored after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    calls: list[int] = []

    def flaky(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) < KERNEL_START_ATTEMPTS:
            raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(pm, "execute_notebook", flaky)
    job = NotebookJob(
        "01_a", tmp_path / "a.ipynb", tmp_path / "out.ipynb", {}, tmp_path, tmp_path, "k", 5, False
    )
    assert execute_job(job).status == "executed" and len(calls) == KERNEL_START_ATTEMPTS
    calls.clear()
    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("Kernel died before replying to kernel_info")))  # fmt: skip
    outcome = execute_job(job)
    assert outcome.status == "failed" and "before replying" in outcome.error

    def died_later(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise RuntimeError("Kernel died")

    monkeypatch.setattr(pm, "execute_notebook", died_later)
    calls.clear()
    assert execute_job(job).status == "failed" and len(calls) == 1
