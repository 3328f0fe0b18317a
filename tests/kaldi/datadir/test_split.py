"""split_data_dir: per speaker as split_scp.pl, per utterance, idempotent (split.py)."""

from __future__ import annotations

import os

import pytest

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir import split_data_dir
from tests.kaldi.datadir.helpers import UTTS, assert_valid, lines, to_segments, utt_ids, write


def test_split_per_speaker(fixture_datadir):
    write(fixture_datadir, "cmvn.scp", "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n")
    parts = split_data_dir(fixture_datadir, 3)
    assert parts == [fixture_datadir / "split3" / str(i) for i in (1, 2, 3)]
    for part, spk in zip(parts, ("spkA", "spkB", "spkC")):
        assert {x.split()[1] for x in lines(part, "utt2spk")} == {spk}
        assert lines(part, "cmvn.scp") == [x for x in lines(fixture_datadir, "cmvn.scp") if x.startswith(spk)]
        assert sorted(p.name for p in part.iterdir()) == ["cmvn.scp", "spk2utt", "text", "utt2dur", "utt2lang",
                                                          "utt2spk", "wav.scp"]
        assert_valid(part, no_feats=True)
    two = split_data_dir(fixture_datadir, 2)
    assert [utt_ids(p) for p in two] == [UTTS[:4], UTTS[4:]]


def test_split_balances_speakers_like_split_scp(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    counts = {"s1": 5, "s2": 1, "s3": 1, "s4": 1}
    write(d, "utt2spk", "".join(f"{s}-{i} {s}\n" for s, n in counts.items() for i in range(n)))
    parts = split_data_dir(d, 2)
    # Initial assignment [s1 s2] [s3 s4] (6 vs 2 utterances); moving s2 over gives 5 vs 3.
    assert [sorted({x.split()[1] for x in lines(p, "utt2spk")}) for p in parts] == [["s1"], ["s2", "s3", "s4"]]


def test_split_per_utt(fixture_datadir):
    parts = split_data_dir(fixture_datadir, 4, per_utt=True)
    assert parts[0] == fixture_datadir / "split4utt" / "1"
    assert [utt_ids(p) for p in parts] == [UTTS[0:2], UTTS[2:4], UTTS[4:5], UTTS[5:6]]
    assert lines(parts[2], "spk2utt") == ["spkC spkC-fr-001"]


def test_split_with_segments(fixture_datadir):
    to_segments(fixture_datadir)
    parts = split_data_dir(fixture_datadir, 3)
    assert [lines(p, "wav.scp")[0].split()[0] for p in parts] == ["recA", "recB", "recC"]
    for p in parts:
        assert_valid(p, no_feats=True)


def test_split_is_idempotent(fixture_datadir):
    parts = split_data_dir(fixture_datadir, 2)

    def mtimes():
        return {p: p.stat().st_mtime_ns for part in parts for p in part.iterdir()}

    before = mtimes()
    assert split_data_dir(fixture_datadir, 2) == parts
    assert mtimes() == before                                   # nothing rewritten
    # A source newer than its copy in split2/1 triggers a re-split.
    newest = max(before.values())
    os.utime(fixture_datadir / "text", ns=(newest + 10**9, newest + 10**9))
    edit_time = (fixture_datadir / "text").stat().st_mtime_ns
    split_data_dir(fixture_datadir, 2)
    assert all(t >= edit_time - 10**9 for t in mtimes().values())
    assert mtimes() != before
    # A new source file (feats.scp) is not in split2/1 yet: re-split too.
    write(fixture_datadir, "feats.scp", "".join(f"{u} f.ark:{i}\n" for i, u in enumerate(UTTS)))
    split_data_dir(fixture_datadir, 2)
    assert (parts[1] / "feats.scp").is_file()


def test_split_errors(fixture_datadir):
    with pytest.raises(DataDirError, match="number of speakers 3 is less than the number of parts 4"):
        split_data_dir(fixture_datadir, 4)
    with pytest.raises(DataDirError, match="cannot split 6 utterances"):
        split_data_dir(fixture_datadir, 7, per_utt=True)
    with pytest.raises(DataDirError, match="invalid number of parts 0"):
        split_data_dir(fixture_datadir, 0)
    assert not (fixture_datadir / "split4").exists()
