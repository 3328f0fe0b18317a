"""utt2dur as Kaldi's utils/data/get_utt2dur.sh writes it (durations.py)."""

from __future__ import annotations

import pytest

from asrkit.errors import DataDirError
from asrkit.kaldi.durations import utt_durations, write_utt2dur


def test_recordings_are_read_like_wav_to_duration(fixture_datadir, kaldi_fixtures):
    kaldi = dict(line.split() for line in (kaldi_fixtures / "utt2dur").read_text().splitlines())
    (fixture_datadir / "utt2dur").unlink()
    assert utt_durations(fixture_datadir) == kaldi
    path = write_utt2dur(fixture_datadir)
    assert dict(line.split() for line in path.read_text().splitlines()) == kaldi


def test_segments_give_end_minus_start_and_an_existing_file_is_kept(fixture_datadir):
    (fixture_datadir / "segments").write_text("spkA-en-001 spkA-en-001 0.5 1.75\nspkA-en-002 spkA-en-002 1 -1\n")
    for name in ("utt2spk", "text", "utt2lang"):
        lines = (fixture_datadir / name).read_text().splitlines()[:2]
        (fixture_datadir / name).write_text("".join(x + "\n" for x in lines))
    # awk's print for end - start; end -1 runs to the recording's end (2.634063 s).
    assert utt_durations(fixture_datadir) == {"spkA-en-001": "1.25", "spkA-en-002": "1.63406"}
    before = (fixture_datadir / "utt2dur").read_text()
    write_utt2dur(fixture_datadir)
    assert (fixture_datadir / "utt2dur").read_text() == before
    write_utt2dur(fixture_datadir, overwrite=True)
    assert (fixture_datadir / "utt2dur").read_text() == "spkA-en-001 1.25\nspkA-en-002 1.63406\n"


def test_no_wav_scp(tmp_path):
    with pytest.raises(DataDirError, match=r"wav.scp: no such file"):
        utt_durations(tmp_path)
