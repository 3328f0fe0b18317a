"""asrkit/fileio.py: the umask helper and the staged folder that every whole-folder writer uses."""

from __future__ import annotations

import os

import pytest

from asrkit.errors import AsrkitError
from asrkit.fileio import MARKER, current_umask, set_default_mode, staged_dir


def test_current_umask_reads_without_changing_it():
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        assert current_umask() == 0o022  # reading it set it straight back
    finally:
        os.umask(old)


def test_set_default_mode(tmp_path):
    f, d = tmp_path / "f", tmp_path / "d"
    f.write_text("x")
    d.mkdir()
    os.chmod(f, 0o600)
    os.chmod(d, 0o700)
    old = os.umask(0o002)
    try:
        set_default_mode(f)
        set_default_mode(d, directory=True)
    finally:
        os.umask(old)
    assert (f.stat().st_mode & 0o777, d.stat().st_mode & 0o777) == (0o664, 0o775)


def test_staged_dir_replaces_the_folder_in_one_step(tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "old").write_text("old")
    (dst / MARKER).write_text("")
    with staged_dir(dst) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.")
        assert [p.name for p in tmp.iterdir()] == [MARKER]
        (tmp / "new").write_text("new")
        assert (dst / "old").exists()  # nothing visible until the block ends
    assert sorted(p.name for p in dst.iterdir()) == [MARKER, "new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staged_dir_keeps_the_old_folder_on_an_error(tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "old").write_text("old")
    (dst / MARKER).write_text("")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(dst) as tmp:
            (tmp / "half").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in dst.iterdir()) == [MARKER, "old"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staged_dir_creates_parents_and_refuses_a_file(tmp_path):
    with staged_dir(tmp_path / "a" / "b") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "a" / "b" / "x").read_text() == "x"
    (tmp_path / "f").write_text("f")
    with pytest.raises(AsrkitError, match="exists and is not a directory"):
        with staged_dir(tmp_path / "f"):
            pass
    assert (tmp_path / "f").read_text() == "f"


def test_staged_dir_replaces_only_a_folder_asrkit_made(tmp_path):
    """Issue 17 A: a user's own folder is never replaced without --overwrite (empty ones are)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(AsrkitError, match=r"mine: exists and was not made by asrkit; use --overwrite"):
        with staged_dir(mine) as tmp:
            (tmp / "new").write_text("new")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    with staged_dir(mine, markers=("notes.txt",)) as tmp:  # a stage's own manifest marks it too
        (tmp / "new").write_text("new")
    (tmp_path / "empty").mkdir()
    with staged_dir(tmp_path / "empty") as tmp:
        (tmp / "new").write_text("new")
    assert (tmp_path / "empty" / "new").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with staged_dir(tmp_path / "other", overwrite=True) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == [MARKER, "new"]


@pytest.mark.parametrize("dst, message", [("data", "holds the input"), ("data/test", "is also an input"),
                                          ("data/test/lang", "is inside the input")])
def test_staged_dir_refuses_an_input_even_with_overwrite(tmp_path, dst, message):
    (tmp_path / "data" / "test").mkdir(parents=True)
    (tmp_path / "data" / "test" / "text").write_text("u1 hello\n")
    with pytest.raises(AsrkitError, match=message):
        with staged_dir(tmp_path / dst, inputs=[tmp_path / "data" / "test"], overwrite=True):
            pass
    assert (tmp_path / "data" / "test" / "text").read_text() == "u1 hello\n"


def test_staged_dir_gives_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with staged_dir(tmp_path / "out") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_dir_lock_stops_a_second_writer_naming_the_first(tmp_path):
    """Issue 17 A: a second writer of a folder stops, naming the command and pid that holds it."""
    import subprocess
    import sys

    from asrkit.fileio import dir_lock

    folder = tmp_path / "d"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom asrkit.fileio import dir_lock\n"
         f"with dir_lock({str(folder)!r}, 'make-feats'):\n    print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(AsrkitError, match=rf"d is being written by another asrkit make-feats \(pid {holder.pid}\)"):
            with dir_lock(folder, "decode"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with dir_lock(folder, "decode"):  # a killed holder leaves no stale lock
        pass
