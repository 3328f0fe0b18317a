"""fix_data_dir: sorting and keeping the utterances every file has (fix.py)."""

from __future__ import annotations

import pytest

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir import DataDirFileError, fix_data_dir, validate_data_dir
from tests.kaldi.datadir.helpers import (
    UTTS,
    edit,
    lines,
    replace_line,
    to_segments,
    utt2spk_spk_unsorted,
    write,
)


def test_fix_keeps_the_intersection_and_backs_up(fixture_datadir, log_records):
    d = fixture_datadir
    original_text = (d / "text").read_bytes()
    edit(d, "text", lambda ls: [ls[1], ls[0], *ls[3:]])           # unsorted, spkB-de-001 missing
    edit(d, "utt2dur", replace_line(4, "spkC-fr-001 0"))          # invalid duration
    write(d, "feats.scp", "".join(f"{u} f.ark:{i}\n" for i, u in enumerate(UTTS) if u != "spkA-en-002"))
    write(d, "utt2spk", (d / "utt2spk").read_text() + "spkA-en-001 spkA\n")  # a duplicate line at the end
    text_before = (d / "text").read_bytes()
    assert fix_data_dir(d) == (3, 6)
    kept = ["spkA-en-001", "spkB-de-002", "spkC-fr-002"]
    assert [x.split()[0] for x in lines(d, "utt2spk")] == kept
    assert lines(d, "spk2utt") == ["spkA spkA-en-001", "spkB spkB-de-002", "spkC spkC-fr-002"]
    for name in ("text", "wav.scp", "utt2lang", "utt2dur", "feats.scp"):
        assert [x.split()[0] for x in lines(d, name)] == kept, name
    assert lines(d, "text")[0] == "spkA-en-001 the quick brown fox jumps over the lazy dog"
    assert (d / ".backup" / "text").read_bytes() == text_before != original_text
    assert "kept" not in (d / ".backup" / "utt2spk").read_text()
    assert len(lines(d / ".backup", "utt2spk")) == 7
    assert "fix_data_dir: kept 3 utterances out of 6" in log_records.text
    assert validate_data_dir(d) == []


def test_fix_leaves_a_valid_dir_alone(fixture_datadir):
    before = {f.name: f.stat().st_mtime_ns for f in fixture_datadir.iterdir()}
    assert fix_data_dir(fixture_datadir) == (6, 6)
    after = {f.name: f.stat().st_mtime_ns for f in fixture_datadir.iterdir() if f.is_file()}
    assert after == before


def test_fix_filters_speakers_and_recordings(fixture_datadir):
    d = fixture_datadir
    to_segments(d)
    write(d, "cmvn.scp", "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n")
    edit(d, "cmvn.scp", lambda ls: [ls[0], ls[2]])            # spkB has no CMVN stats
    edit(d, "wav.scp", lambda ls: ls[:2])                     # recording recC is gone
    write(d, "spk2gender", "spkA f\nspkB m\nspkC f\nspkD m\n")
    write(d, "reco2dur", "recA 20\nrecB 20\nrecC 20\n")
    assert fix_data_dir(d, spk_extra_files=["spk2age"]) == (2, 6)
    assert lines(d, "utt2spk") == ["spkA-en-001 spkA", "spkA-en-002 spkA"]
    assert lines(d, "spk2gender") == ["spkA f"]
    assert lines(d, "cmvn.scp") == ["spkA c.ark:1"]
    assert [x.split()[0] for x in lines(d, "wav.scp")] == ["recA"]
    assert lines(d, "reco2dur") == ["recA 20"]
    assert [x.split()[1] for x in lines(d, "segments")] == ["recA", "recA"]
    assert ["only one speaker" in w for w in validate_data_dir(d, no_feats=True)] == [True]


def test_fix_extra_files(fixture_datadir):
    write(fixture_datadir, "utt2category", "".join(f"{u} read\n" for u in UTTS))
    edit(fixture_datadir, "text", lambda ls: ls[1:])
    fix_data_dir(fixture_datadir, utt_extra_files=["utt2category"])
    assert [x.split()[0] for x in lines(fixture_datadir, "utt2category")] == UTTS[1:]


def test_fix_refuses_to_empty_the_dir(fixture_datadir):
    edit(fixture_datadir, "text", lambda ls: ["zzz hello"])
    before = {f.name: f.read_bytes() for f in fixture_datadir.iterdir() if f.is_file()}
    with pytest.raises(DataDirError, match="no utterances remained"):
        fix_data_dir(fixture_datadir)
    assert {f.name: f.read_bytes() for f in fixture_datadir.iterdir() if f.is_file()} == before


def test_fix_cannot_fix_speaker_order(fixture_datadir):
    utt2spk_spk_unsorted(fixture_datadir)
    with pytest.raises(DataDirFileError, match="utt2spk:3: not sorted by speaker"):
        fix_data_dir(fixture_datadir)
