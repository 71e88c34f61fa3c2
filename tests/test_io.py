"""The base layer's writers (``research._io``): atomic, the user's umask, inputs kept, filesystem
faults as one line naming the path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from research._io import all_or_nothing, atomic_write, check_output, write_text_atomic
from research.data.writers import write_table
from research.exceptions import InputError, OutputError, ResearchError
from research.testing.filesystem import full_disk_command, read_only


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_the_users_umask_not_the_temp_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert _mode(write_text_atomic(tmp_path / "a.txt", "x")) == 0o644
        assert _mode(write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")) == 0o644
        os.umask(0o007)
        assert _mode(write_text_atomic(tmp_path / "b.txt", "x")) == 0o660
    finally:
        os.umask(old)


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "kept.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old")

    def boom(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]


def test_read_only_folder_is_one_line_naming_the_path(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder), pytest.raises(OutputError) as err:
        write_table(pd.DataFrame({"a": [1]}), folder / "t.csv")
    target = folder / "t.csv"
    assert str(err.value) == f"cannot write {target}: permission denied (read-only folder or file?)"
    assert list(folder.iterdir()) == []


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    disk = tmp_path / "disk"
    disk.mkdir()
    code = (
        "import pandas as pd, sys\n"
        "from research.data.writers import write_table\n"
        "from research.exceptions import OutputError\n"
        "try:\n"
        f"    write_table(pd.DataFrame({{'a': range(100_000)}}), {str(disk / 'big.csv')!r})\n"
        "except OutputError as e:\n"
        "    import os; print(e); print(sorted(os.listdir(sys.argv[1])))\n"
    )
    # a subprocess on purpose: the full disk is a tmpfs mounted in its own mount namespace
    cmd = full_disk_command([sys.executable, "-c", code, str(disk)], disk)
    if cmd is None:
        pytest.skip("no mount namespace here to fake a full disk")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [f"cannot write {disk / 'big.csv'}: no space left on the device", "[]"]


def test_a_file_where_a_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("I am a file")
    with pytest.raises(OutputError, match="a file stands where a folder should be"):
        write_text_atomic(tmp_path / "f" / "out.txt", "x")
    with pytest.raises(OutputError, match=r"f is a file, so no folder can be made there"):
        check_output(tmp_path / "f" / "sub" / "out.csv")
    assert (tmp_path / "f").read_text() == "I am a file"


def test_check_output_refuses_an_input_however_spelled(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("date\n")
    (tmp_path / "link.csv").symlink_to(bars)
    for spelled in (bars, tmp_path / "." / "bars.csv", tmp_path / "link.csv"):
        with pytest.raises(OutputError, match="is also an input of this command"):
            check_output(spelled, inputs=[None, bars], option="--out")
    with pytest.raises(OutputError, match="--trades-out .* is a folder"):
        check_output(tmp_path, option="--trades-out")
    assert check_output(tmp_path / "new.csv", inputs=[bars]) == tmp_path / "new.csv"


def test_one_base_class() -> None:
    assert issubclass(InputError, ResearchError) and issubclass(InputError, ValueError)
    assert issubclass(OutputError, ResearchError) and issubclass(OutputError, OSError)
    with pytest.raises(InputError, match="cannot write this extension"):
        write_table(pd.DataFrame({"a": [1]}), "t.xlsx")


def test_all_or_nothing_replaces_every_target_or_none(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.csv"
    a.write_text("old a")
    with pytest.raises(RuntimeError), all_or_nothing():
        write_text_atomic(a, "new a")
        assert a.read_text() == "old a"  # staged, not yet in place
        raise RuntimeError("the second output failed")
    assert a.read_text() == "old a" and sorted(tmp_path.iterdir()) == [a]
    with all_or_nothing():
        write_text_atomic(a, "new a")
        write_table(pd.DataFrame({"x": [1]}), b)
    assert a.read_text() == "new a" and b.read_text() == "x\n1\n"
    assert sorted(tmp_path.iterdir()) == [a, b]
    write_text_atomic(a, "outside")  # the block is over: written at once again
    assert a.read_text() == "outside"


def test_attribute_signals_writes_its_table_and_heatmap_or_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import research.data.writers as writers
    from research.cli import app

    out, heat = tmp_path / "table.csv", tmp_path / "heat.csv"
    args = ["attribute", "signals", "--out", str(out), "--heatmap-out", str(heat)]
    real = writers.write_table

    def full_disk_on_the_heatmap(df: pd.DataFrame, path: str | Path) -> Path:
        if Path(path) == heat:
            raise OutputError(f"cannot write {heat}: no space left on the device")
        return real(df, path)

    monkeypatch.setattr(writers, "write_table", full_disk_on_the_heatmap)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines()[-1] == (
        f"error: cannot write {heat}: no space left on the device"
    )
    assert "wrote" not in res.output and sorted(tmp_path.iterdir()) == []
    monkeypatch.setattr(writers, "write_table", real)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and out.exists() and heat.exists(), res.output


def test_write_table_replaces_only_an_earlier_output_of_the_same_kind(tmp_path: Path) -> None:
    frame = pd.DataFrame({"date": ["2018-01-02"], "label": ["bull"]})
    for name in ("t.csv", "t.csv.gz", "t.parquet", "t.json", "t.jsonl"):
        path = tmp_path / name
        write_table(frame, path)
        write_table(frame.assign(label="bear"), path)  # its own earlier output: replaced
        before = path.read_bytes()
        with pytest.raises(OutputError, match="exists and is not an earlier output of this kind"):
            write_table(pd.DataFrame({"other": [1]}), path)
        assert path.read_bytes() == before, name
        write_table(pd.DataFrame({"other": [1]}), path, replace=True)  # the caller checked it
    notes = tmp_path / "notes.json"
    notes.write_text("my notes, not JSON")
    with pytest.raises(OutputError, match=r"\(not a table this can read\); it is kept"):
        write_table(frame, notes)
    assert notes.read_text() == "my notes, not JSON"
    empty = tmp_path / "empty.csv"
    empty.touch()
    write_table(frame, empty)  # nothing to lose
    assert empty.read_text().startswith("date,label")


def test_regimes_classify_keeps_an_unrelated_file_named_as_its_output(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from research.cli import app

    mine = tmp_path / "mine.csv"
    mine.write_text("name,score\nalice,3\n")
    args = ["regimes", "classify", "--model", "vol_ratio", "--bars", "", "--out", str(mine)]
    bars = tmp_path / "bars.csv"
    from research.data import market

    market.load_bars(symbols=["SPX"]).head(300).to_csv(bars, index=False)
    args[5] = str(bars)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines() == [
        f"error: {mine} exists and is not an earlier output of this kind (its columns: name, "
        "score); it is kept: choose another file, or move it away"
    ]
    assert mine.read_text() == "name,score\nalice,3\n"
    out = tmp_path / "labels.csv"
    for _ in range(2):  # its own output is replaced on the next run
        res = CliRunner().invoke(app, [*args[:-1], str(out)])
        assert res.exit_code == 0, res.output
