"""DataDir and load_data_dir: parsing the registry's typed files, saving them back (tables.py)."""

from __future__ import annotations

import re

import pytest

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir import DataDir, DataDirFileError, Segment, load_data_dir, validate_data_dir
from tests.kaldi.datadir.helpers import UTTS, edit, lines, to_segments, write


def test_load_fixture(fixture_datadir):
    d = load_data_dir(fixture_datadir)
    assert d.utts == UTTS
    assert d.speakers == ["spkA", "spkB", "spkC"]
    assert d.spk2utt == {"spkA": UTTS[0:2], "spkB": UTTS[2:4], "spkC": UTTS[4:6]}
    assert d.langs == ["de", "en", "fr"]
    assert d.text["spkC-fr-002"] == "bonjour tout le monde"
    assert d.utt2dur["spkA-en-001"] == 3.204875
    assert d.utt_duration("spkC-fr-002") == 1.164312
    assert d.feats_scp is None and d.segments is None
    assert d.wav_scp["spkA-en-001"].endswith("wav/spkA-en-001.wav")


def test_load_parses_segments_and_numbers(fixture_datadir):
    to_segments(fixture_datadir)
    write(fixture_datadir, "utt2num_frames", "".join(f"{u} {100 + i}\n" for i, u in enumerate(UTTS)))
    edit(fixture_datadir, "segments", lambda ls: ls[:-1] + ["spkC-fr-002 recC 10.00 -1"])
    write(fixture_datadir, "reco2dur", "recA 20\nrecB 20\nrecC 12.5\n")
    (fixture_datadir / "utt2dur").unlink()
    d = load_data_dir(fixture_datadir)
    assert d.segments["spkB-de-002"] == Segment("recB", 10.0, 12.44)
    assert d.utt2num_frames["spkC-fr-002"] == 105
    assert d.utt_duration("spkB-de-002") == pytest.approx(2.44)
    assert d.utt_duration("spkC-fr-002") == pytest.approx(2.5)  # end -1: to the end of the recording


def test_load_rejects_bad_values(fixture_datadir):
    edit(fixture_datadir, "utt2dur", lambda ls: [ls[0], "spkA-en-002 long"] + ls[2:])
    with pytest.raises(DataDirFileError, match=re.escape(f"{fixture_datadir}/utt2dur:2: expected a number, found 'long'")):
        load_data_dir(fixture_datadir)


def test_utt_duration_errors(fixture_datadir):
    d = load_data_dir(fixture_datadir)
    with pytest.raises(DataDirError, match="unknown utterance 'nope'"):
        d.utt_duration("nope")
    d.utt2dur = None
    with pytest.raises(DataDirError, match="no duration for utterance 'spkA-en-001'"):
        d.utt_duration("spkA-en-001")


def test_save_sorts_regenerates_spk2utt_and_removes_absent_files(tmp_path, fixture_datadir):
    d = DataDir(utt2spk={"b-2": "b", "a-1": "a", "b-1": "b"},
                text={"b-2": "two", "a-1": "one", "b-1": "three"},
                segments={"a-1": Segment("r1", 0.0, 1.5), "b-1": Segment("r2", 0.25, 2.0),
                          "b-2": Segment("r2", 2.0, -1)},
                wav_scp={"r2": "r2.wav", "r1": "sox r1.flac -t wav - |"},
                utt2dur={"a-1": 1.5, "b-1": 1.75, "b-2": 3.204875})
    out = tmp_path / "out"
    out.mkdir()
    write(out, "feats.scp", "stale\n")
    d.save(out)
    assert lines(out, "utt2spk") == ["a-1 a", "b-1 b", "b-2 b"]
    assert lines(out, "spk2utt") == ["a a-1", "b b-1 b-2"]
    assert lines(out, "segments") == ["a-1 r1 0 1.5", "b-1 r2 0.25 2", "b-2 r2 2 -1"]
    assert lines(out, "wav.scp") == ["r1 sox r1.flac -t wav - |", "r2 r2.wav"]
    assert lines(out, "utt2dur") == ["a-1 1.5", "b-1 1.75", "b-2 3.204875"]
    assert not (out / "feats.scp").exists()
    assert load_data_dir(out).segments == d.segments
    # A loaded dir saves to files that validate again.
    load_data_dir(fixture_datadir).save(tmp_path / "copy")
    assert validate_data_dir(tmp_path / "copy", no_feats=True) == []
    assert lines(tmp_path / "copy", "text") == lines(fixture_datadir, "text")
