"""LibriSpeech preparation on a tiny fake tree; expected files follow Kaldi's local/data_prep.sh."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora.librispeech import prepare_librispeech
from asrkit.errors import AsrkitError, DataDirError, FormatError

SPEAKERS_TXT = """; Some comment
;ID  |SEX| SUBSET           |MINUTES| NAME
103  | F | train-clean-100  | 25.00 | Someone
1034 | M | dev-clean        | 25.00 | Someone Else
"""
# (reader, chapter, n, transcript, samples)
UTTS = [("103", "1240", "0000", "CHAPTER ONE", 1600), ("103", "1240", "0001", "MISSUS RACHEL LYNDE", 3200),
        ("1034", "121", "0000", "HE SAID", 2400), ("1034", "121", "0001", "YES", 4000)]


def make_librispeech(root: Path, subset: str = "dev-clean", speakers: str | None = SPEAKERS_TXT) -> Path:
    ls = root / "LibriSpeech"
    trans: dict[Path, str] = {}
    for reader, chapter, n, words, samples in UTTS:
        d = ls / subset / reader / chapter
        d.mkdir(parents=True, exist_ok=True)
        sf.write(str(d / f"{reader}-{chapter}-{n}.flac"), (0.1 * np.sin(np.arange(samples) / 3.0)).astype("float32"),
                 16000, format="FLAC")
        trans[d / f"{reader}-{chapter}.trans.txt"] = trans.get(d / f"{reader}-{chapter}.trans.txt", "") + \
            f"{reader}-{chapter}-{n} {words}\n"
    for path, text in trans.items():
        path.write_text(text)
    if speakers is not None:
        (ls / "SPEAKERS.TXT").write_text(speakers)
    return ls


def read_dir(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.name != ".asrkit"}


def test_prepare_librispeech_matches_kaldi(tmp_path):
    ls = make_librispeech(tmp_path)
    make_librispeech(tmp_path, "test-other")
    out = tmp_path / "data"
    dirs = prepare_librispeech(tmp_path, out)
    assert [d.name for d in dirs] == ["dev_clean", "test_other"]
    a = os.path.abspath(ls / "dev-clean")
    d = read_dir(out / "dev_clean")
    assert sorted(d) == ["spk2gender", "spk2utt", "text", "utt2dur", "utt2lang", "utt2spk", "wav.scp"]
    assert d["wav.scp"] == (f"103-1240-0000 {a}/103/1240/103-1240-0000.flac\n"
                            f"103-1240-0001 {a}/103/1240/103-1240-0001.flac\n"
                            f"1034-121-0000 {a}/1034/121/1034-121-0000.flac\n"
                            f"1034-121-0001 {a}/1034/121/1034-121-0001.flac\n")
    assert d["text"] == ("103-1240-0000 CHAPTER ONE\n103-1240-0001 MISSUS RACHEL LYNDE\n"
                         "1034-121-0000 HE SAID\n1034-121-0001 YES\n")
    assert d["utt2spk"] == ("103-1240-0000 103-1240\n103-1240-0001 103-1240\n"
                            "1034-121-0000 1034-121\n1034-121-0001 1034-121\n")
    assert d["spk2utt"] == "103-1240 103-1240-0000 103-1240-0001\n1034-121 1034-121-0000 1034-121-0001\n"
    assert d["spk2gender"] == "103-1240 f\n1034-121 m\n"
    assert d["utt2lang"] == "103-1240-0000 en\n103-1240-0001 en\n1034-121-0000 en\n1034-121-0001 en\n"
    assert d["utt2dur"] == "103-1240-0000 0.1\n103-1240-0001 0.2\n1034-121-0000 0.15\n1034-121-0001 0.25\n"
    assert read_dir(out / "test_other")["text"] == d["text"]


def test_prepare_librispeech_without_speakers_txt_and_one_subset(tmp_path):
    make_librispeech(tmp_path / "c", speakers=None)
    make_librispeech(tmp_path / "c", "train-clean-100", speakers=None)
    (dest,) = prepare_librispeech(tmp_path / "c" / "LibriSpeech", tmp_path / "data", subsets=("train-clean-100",))
    assert dest.name == "train_clean_100"
    assert sorted(p.name for p in dest.iterdir() if p.name != ".asrkit") == ["spk2utt", "text", "utt2dur", "utt2lang", "utt2spk", "wav.scp"]


def test_prepare_librispeech_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AsrkitError, match=r"empty: no LibriSpeech subset folder \(train-clean-100, .*\) here or in "
                                          r".*empty/LibriSpeech \(expected layout: <subset>/<reader>/<chapter>/"):
        prepare_librispeech(tmp_path / "empty", tmp_path / "data")
    ls = make_librispeech(tmp_path)
    with pytest.raises(AsrkitError, match=r"dev-other: LibriSpeech subset does not exist"):
        prepare_librispeech(tmp_path, tmp_path / "data", subsets=("dev-other",))
    (ls / "dev-clean/103/1240/103-1240-0001.flac").unlink()
    (ls / "dev-clean/1034/121/1034-121.trans.txt").write_text("1034-121-0000 HE SAID\n")
    with pytest.raises(DataDirError, match=r"dev-clean: transcript without audio: 1 \(first: 103-1240-0001\); "
                                           r"audio without transcript: 1 \(first: 1034-121-0001\)"):
        prepare_librispeech(tmp_path, tmp_path / "data")
    (ls / "dev-clean/1034/121/1034-121.trans.txt").write_text("1034-122-0000 HE SAID\n")
    with pytest.raises(FormatError, match=r"1034-121\.trans\.txt:1: utterance id '1034-122-0000' does not start "
                                          r"with '1034-121-'"):
        prepare_librispeech(tmp_path, tmp_path / "data")
    assert not (tmp_path / "data" / "dev_clean").exists()


def test_cli_librispeech(tmp_path, asrkit_cli):
    make_librispeech(tmp_path)
    out = tmp_path / "data"
    proc = asrkit_cli("prepare", "librispeech", tmp_path, out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "dev_clean")]
    assert (out / "dev_clean" / "utt2spk").read_text().startswith("103-1240-0000 103-1240\n")
    proc = asrkit_cli("prepare", "librispeech", tmp_path / "nope", out)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == f"asrkit prepare librispeech: error: {tmp_path / 'nope'}: LibriSpeech folder does not exist"
