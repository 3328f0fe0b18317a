"""Common Voice preparation on a tiny fake tree (mp3 clips written with soundfile/libsndfile)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora.commonvoice import normalize_cv_sentence, prepare_commonvoice, speaker_ids
from asrkit.errors import AsrkitError, DataDirError, FormatError

CLIENT_A = "a1b2c3d4" + "0" * 120
CLIENT_B = "ffee0011" + "1" * 120
HEADER = "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\n"


def _row(client: str, clip: str, sentence: str) -> str:
    return f"{client}\t{clip}\tsid\t{sentence}\t\t2\t0\t\t\t\tfr\n"


def _mp3(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.1 * np.sin(np.arange(n) / 5.0)).astype("float32"), 16000, format="MP3")


def make_cv_tree(root: Path) -> Path:
    d = root / "fr"
    clips = d / "clips"
    for name, n in (("common_voice_fr_1.mp3", 1600), ("common_voice_fr_2.mp3", 3200), ("common_voice_fr_3.mp3", 4000),
                    ("common_voice_fr_4.mp3", 2400), ("common_voice_fr_5.mp3", 1600), ("common_voice_fr_9.mp3", 800)):
        _mp3(clips / name, n)  # clip 9 belongs to no split (as other.tsv clips do)
    (d / "train.tsv").write_text(HEADER
                                 + _row(CLIENT_B, "common_voice_fr_2.mp3", "«Ça va?» L’homme répond: \"oui\".")
                                 + _row(CLIENT_A, "common_voice_fr_1.mp3", "Bonjour, le Monde!")
                                 + _row(CLIENT_A, "common_voice_fr_3.mp3", "Cafe\u0301 -- vingt-deux")
                                 + _row(CLIENT_B, "common_voice_fr_5.mp3", "...!"))
    (d / "dev.tsv").write_text(HEADER + _row(CLIENT_A, "common_voice_fr_4.mp3", "C'est l'été."))
    (d / "test.tsv").write_text(HEADER)
    return d


def read_dir(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.name != ".asrkit"}


def test_normalize_cv_sentence():
    assert normalize_cv_sentence("Bonjour, le Monde!") == "bonjour le monde"
    assert normalize_cv_sentence("«Ça va?» L’homme") == "ça va l'homme"
    assert normalize_cv_sentence("Cafe\u0301") == "caf\u00e9"  # NFC: one code point
    assert normalize_cv_sentence("don't 'quoted' rock-n-roll 3€") == "don't quoted rock n roll 3€"
    assert normalize_cv_sentence(" ...! ") == ""


def test_speaker_ids_are_short_unique_and_equal_length():
    ids = speaker_ids({CLIENT_A, CLIENT_B})
    assert ids == {CLIENT_A: "a1b2c3d4", CLIENT_B: "ffee0011"}
    clash = "a1b2c3d4e5" + "9" * 118
    ids = speaker_ids({CLIENT_A, clash})
    assert ids == {CLIENT_A: "a1b2c3d40", clash: "a1b2c3d4e"}
    ids = speaker_ids({"Not Hex!"})
    assert len(ids["Not Hex!"]) == 8 and all(c in "0123456789abcdef" for c in ids["Not Hex!"])


def test_prepare_commonvoice(tmp_path):
    d = make_cv_tree(tmp_path / "cv-corpus")
    out = tmp_path / "data"
    dirs = prepare_commonvoice(tmp_path / "cv-corpus", "fr", out)
    assert [x.name for x in dirs] == ["cv_fr_train", "cv_fr_dev"]  # test.tsv has no rows
    c = os.path.abspath(d / "clips")
    train = read_dir(out / "cv_fr_train")
    assert train["wav.scp"] == (f"a1b2c3d4-common_voice_fr_1 {c}/common_voice_fr_1.mp3\n"
                                f"a1b2c3d4-common_voice_fr_3 {c}/common_voice_fr_3.mp3\n"
                                f"ffee0011-common_voice_fr_2 {c}/common_voice_fr_2.mp3\n")
    assert train["text"] == ("a1b2c3d4-common_voice_fr_1 bonjour le monde\n"
                             "a1b2c3d4-common_voice_fr_3 caf\u00e9 vingt deux\n"
                             "ffee0011-common_voice_fr_2 ça va l'homme répond oui\n")
    assert train["utt2spk"] == ("a1b2c3d4-common_voice_fr_1 a1b2c3d4\na1b2c3d4-common_voice_fr_3 a1b2c3d4\n"
                                "ffee0011-common_voice_fr_2 ffee0011\n")
    assert train["spk2utt"] == ("a1b2c3d4 a1b2c3d4-common_voice_fr_1 a1b2c3d4-common_voice_fr_3\n"
                                "ffee0011 ffee0011-common_voice_fr_2\n")
    assert train["utt2lang"] == ("a1b2c3d4-common_voice_fr_1 fr\na1b2c3d4-common_voice_fr_3 fr\n"
                                 "ffee0011-common_voice_fr_2 fr\n")
    assert train["utt2dur"] == ("a1b2c3d4-common_voice_fr_1 0.1\na1b2c3d4-common_voice_fr_3 0.25\n"
                                "ffee0011-common_voice_fr_2 0.2\n")
    dev = read_dir(out / "cv_fr_dev")
    assert dev["text"] == "a1b2c3d4-common_voice_fr_4 c'est l'été\n"
    assert dev["utt2dur"] == "a1b2c3d4-common_voice_fr_4 0.15\n"


def test_prepare_commonvoice_errors(tmp_path):
    with pytest.raises(AsrkitError, match=r"cv-corpus: Common Voice folder does not exist"):
        prepare_commonvoice(tmp_path / "cv-corpus", "fr", tmp_path / "data")
    (tmp_path / "cv-corpus").mkdir()
    with pytest.raises(AsrkitError, match=r"cv-corpus: no fr/clips/ or clips/ folder \(expected layout"):
        prepare_commonvoice(tmp_path / "cv-corpus", "fr", tmp_path / "data")
    d = make_cv_tree(tmp_path / "cv-corpus")
    (d / "clips" / "common_voice_fr_3.mp3").unlink()
    with pytest.raises(DataDirError, match=r"train\.tsv \(clips in .*\): transcript without audio: "
                                           r"1 \(first: a1b2c3d4-common_voice_fr_3\)$"):
        prepare_commonvoice(d, "fr", tmp_path / "data")
    (d / "dev.tsv").write_text("client_id\tpath\n")
    with pytest.raises(FormatError, match=r"dev\.tsv:1: header lacks column\(s\) sentence"):
        prepare_commonvoice(d, "fr", tmp_path / "data")
    (d / "dev.tsv").write_text(HEADER + _row(CLIENT_A, "x.mp3", "a") + _row(CLIENT_B, "x.mp3", "b"))
    with pytest.raises(FormatError, match=r"dev\.tsv:3: clip 'x\.mp3' listed twice \(also line 2\)"):
        prepare_commonvoice(d, "fr", tmp_path / "data")
    for split in ("train", "dev", "test"):
        (d / f"{split}.tsv").unlink()
    with pytest.raises(AsrkitError, match=r"fr: none of train\.tsv, dev\.tsv, test\.tsv exists"):
        prepare_commonvoice(d, "fr", tmp_path / "data")


def test_cli_commonvoice(tmp_path, asrkit_cli):
    make_cv_tree(tmp_path / "cv")
    proc = asrkit_cli("prepare", "commonvoice", "--lang", "fr", tmp_path / "cv", tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(tmp_path / "data" / n) for n in ("cv_fr_train", "cv_fr_dev")]
    assert "common_voice_fr_5" not in (tmp_path / "data/cv_fr_train/text").read_text()
    assert "1 clip(s) with no words after normalisation left out" in proc.stderr
