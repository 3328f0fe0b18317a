"""The staged data-dir writer (write.py) that data prep, speed perturbation, subset, split and combine share."""

from __future__ import annotations

import os
import re

import pytest

from asrkit.errors import DataDirError
from asrkit.fileio import MARKER
from asrkit.kaldi.datadir import validate_data_dir, write_data_dir
from asrkit.kaldi.datadir.files import make_row
from tests.kaldi.datadir.helpers import lines, write

TABLES = {
    "utt2spk": {"b-2": "b", "a-1": "a", "b-1": "b"},
    "text": {"b-2": "two words", "a-1": "one", "b-1": ["a", "list"]},
    "wav.scp": {"a-1": "a.wav", "b-1": "b1.wav", "b-2": "sox b2.flac -t wav - |"},
}


def test_writes_sorted_tables_and_spk2utt(tmp_path):
    dst = tmp_path / "d"
    assert write_data_dir(dst, TABLES, validate={"no_feats": True}) == []
    assert lines(dst, "utt2spk") == ["a-1 a", "b-1 b", "b-2 b"]
    assert lines(dst, "spk2utt") == ["a a-1", "b b-1 b-2"]
    assert lines(dst, "text") == ["a-1 one", "b-1 a list", "b-2 two words"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary folder left


def test_rows_are_written_as_they_are(tmp_path):
    rows = [make_row(1, "x-1   x"), make_row(2, "x-2 x")]  # odd spacing is kept, as filter_scp.pl keeps it
    write_data_dir(tmp_path / "d", {"utt2spk": rows, "utt2lang": [make_row(1, "x-1 en"), make_row(2, "x-2 en")]})
    assert lines(tmp_path / "d", "utt2spk") == ["x-1   x", "x-2 x"]
    assert lines(tmp_path / "d", "spk2utt") == ["x x-1 x-2"]


def test_replaces_an_existing_dir_whole(tmp_path):
    dst = tmp_path / "d"
    dst.mkdir()
    write(dst, "feats.scp", "stale f.ark:1\n")
    write(dst, MARKER, "")  # made by asrkit: replaced whole
    write_data_dir(dst, TABLES)
    assert sorted(p.name for p in dst.iterdir()) == [MARKER, "spk2utt", "text", "utt2spk", "wav.scp"]


def test_an_invalid_dir_is_never_put_in_place(tmp_path):
    dst = tmp_path / "d"
    dst.mkdir()
    write(dst, "utt2spk", "old old\n")
    write(dst, MARKER, "")
    bad = dict(TABLES, text={"a-1": "one", "b-1": "<s> x", "b-2": "two"})
    with pytest.raises(DataDirError, match=re.escape(f"prepared: {dst}/text:2: illegal symbol '<s>'")):
        write_data_dir(dst, bad, validate={"no_feats": True}, error_prefix="prepared: ")
    assert lines(dst, "utt2spk") == ["old old"]  # the old dir is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_warnings_name_the_destination(tmp_path):
    one_speaker = {"utt2spk": {"a-1": "a", "a-2": "a"}, "wav.scp": {"a-1": "1.wav", "a-2": "2.wav"}}
    warnings = write_data_dir(tmp_path / "d", one_speaker, validate={"no_feats": True, "no_text": True})
    assert len(warnings) == 1 and warnings[0].startswith(f"{tmp_path / 'd'}/spk2utt: only one speaker")
    assert validate_data_dir(tmp_path / "d", no_feats=True, no_text=True) == warnings


def test_refuses_a_file_in_the_way(tmp_path):
    write(tmp_path, "d", "not a folder\n")
    with pytest.raises(DataDirError, match=re.escape(f"{tmp_path / 'd'}: exists and is not a directory")):
        write_data_dir(tmp_path / "d", TABLES)


def test_folder_and_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write_data_dir(tmp_path / "d", TABLES)
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750  # not mkdtemp's 0700
    assert (tmp_path / "d" / "text").stat().st_mode & 0o777 == 0o640


def test_tables_must_include_utt2spk(tmp_path):
    with pytest.raises(ValueError, match="must include utt2spk"):
        write_data_dir(tmp_path / "d", {"text": {"a": "b"}})
