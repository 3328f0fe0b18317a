"""asrkit/fileio.py: the umask helper and the staged folder that every whole-folder writer uses."""

from __future__ import annotations

import os

import pytest

from asrkit.errors import AsrkitError
from asrkit.fileio import current_umask, set_default_mode, staged_dir


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
    with staged_dir(dst) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.") and not any(tmp.iterdir())
        (tmp / "new").write_text("new")
        assert (dst / "old").exists()  # nothing visible until the block ends
    assert [p.name for p in dst.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staged_dir_keeps_the_old_folder_on_an_error(tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "old").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(dst) as tmp:
            (tmp / "half").write_text("half")
            raise KeyboardInterrupt
    assert [p.name for p in dst.iterdir()] == ["old"]
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
