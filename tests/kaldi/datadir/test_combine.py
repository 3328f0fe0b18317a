"""combine_data_dirs: utils/combine_data.sh, validated before it is put in place (combine.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir import combine_data_dirs, subset_data_dir, validate_data_dir
from tests.kaldi.datadir.helpers import edit, lines, to_segments, utt_ids, write


def _two_halves(src: Path, tmp_path: Path) -> tuple[Path, Path]:
    write(tmp_path, "ab.list", "spkA\nspkB\n")
    write(tmp_path, "c.list", "spkC\n")
    return (subset_data_dir(src, tmp_path / "ab", spk_list=tmp_path / "ab.list"),
            subset_data_dir(src, tmp_path / "c", spk_list=tmp_path / "c.list"))


def test_combine_restores_the_whole(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    out = combine_data_dirs(tmp_path / "all", [c, ab])
    for name in ("utt2spk", "spk2utt", "text", "utt2lang", "utt2dur", "wav.scp"):
        assert lines(out, name) == lines(fixture_datadir, name), name
    assert validate_data_dir(out, no_feats=True) == []


def test_combine_drops_files_not_everywhere(fixture_datadir, tmp_path, log_records):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    (c / "utt2lang").unlink()
    write(ab, "utt2category", "".join(f"{u} read\n" for u in utt_ids(ab)))
    write(c, "utt2category", "".join(f"{u} spont\n" for u in utt_ids(c)))
    out = combine_data_dirs(tmp_path / "all", [ab, c], extra_files=["utt2category"])
    assert not (out / "utt2lang").exists()
    assert "not combining utt2lang" in log_records.text
    assert [x.split()[1] for x in lines(out, "utt2category")] == ["read"] * 4 + ["spont"] * 2


def test_combine_makes_segments_where_needed(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    to_segments(ab)
    out = combine_data_dirs(tmp_path / "all", [ab, c])
    segs = lines(out, "segments")
    assert segs[-2:] == ["spkC-fr-001 spkC-fr-001 0 2.128813", "spkC-fr-002 spkC-fr-002 0 1.164312"]
    assert [x.split()[0] for x in lines(out, "wav.scp")] == ["recA", "recB", "spkC-fr-001", "spkC-fr-002"]
    assert validate_data_dir(out, no_feats=True) == []


def test_combine_duplicate_utterance_names_both_dirs(fixture_datadir, tmp_path):
    ab, _ = _two_halves(fixture_datadir, tmp_path)
    with pytest.raises(DataDirError, match=re.escape(f"utterance 'spkA-en-001' is in both {ab} and {fixture_datadir}")):
        combine_data_dirs(tmp_path / "all", [ab, fixture_datadir])
    assert not (tmp_path / "all").exists()


def test_combine_validates_the_result(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    edit(c, "text", lambda ls: [ls[0], "spkC-fr-002 </s>"])
    with pytest.raises(DataDirError, match=re.escape(f"{tmp_path / 'all'}/text:6: illegal symbol '</s>'")):
        combine_data_dirs(tmp_path / "all", [ab, c])
    assert not (tmp_path / "all").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".all")]


def test_combine_conflicting_speaker_lines(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    write(ab, "spk2gender", "spkA m\nspkB f\n")
    write(c, "spk2gender", "spkC f\n")
    shutil.copytree(c, tmp_path / "c2")
    for f in ("utt2spk", "spk2utt"):
        (tmp_path / "c2" / f).write_text((c / f).read_text().replace("spkC", "spkB").replace("spkB-fr", "spkC-fr"))
    write(tmp_path / "c2", "spk2gender", "spkB m\n")
    with pytest.raises(DataDirError, match="'spkB' has different lines in"):
        combine_data_dirs(tmp_path / "all", [ab, tmp_path / "c2"])
