"""MLS preparation on a tiny fake tree (FLAC written with soundfile)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora.mls import mls_language, prepare_mls
from asrkit.errors import AsrkitError, DataDirError, FormatError

# Speakers 103 and 1034: C-sorting the utterance ids puts 1034_* before 103_* while speaker
# "103" sorts before "1034" (espnet#5264), so the ids must be re-keyed with zero-padding.
TRAIN = {"103_1240_000000": ("ein hund", 1600), "103_1240_000001": ("zwei katzen", 3200),
         "1034_121_000000": ("drei", 2400), "1034_121_000001": ("vier fünf", 4000)}
DEV = {"5_77_000000": ("guten tag", 1600), "5_77_000001": ("gute nacht", 1600)}
TEST = {"12_3_000000": ("hallo", 800)}


def _tone(path: Path, n: int, ext: str = "flac") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.1 * np.sin(np.arange(n) / 5.0)).astype("float32"), 16000, format=ext.upper())


def make_mls_tree(root: Path, language: str = "german", splits=None) -> Path:
    lang_dir = root / f"mls_{language}"
    for split, utts in (splits or {"train": TRAIN, "dev": DEV, "test": TEST}).items():
        d = lang_dir / split
        d.mkdir(parents=True)
        (d / "transcripts.txt").write_text("".join(f"{u}\t{t}\n" for u, (t, _) in utts.items()))
        (d / "segments.txt").write_text("".join(f"{u}\thttp://x/{u}.mp3\t0.0\t1.0\n" for u in utts))
        for u, (_, n) in utts.items():
            spk, book, _ = u.split("_")
            _tone(d / "audio" / spk / book / f"{u}.flac", n)
    ls = lang_dir / "train" / "limited_supervision"
    for sub, ids in (("1hr/0", ["103_1240_000000"]), ("1hr/1", ["1034_121_000001"]), ("9hr", ["103_1240_000001"])):
        (ls / sub).mkdir(parents=True, exist_ok=True)
        (ls / sub / "handles.txt").write_text("".join(f"{i}\n" for i in ids))
    return lang_dir


def read_dir(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.name != ".asrkit"}


def test_mls_language_accepts_name_or_code():
    assert mls_language("de") == ("german", "de")
    assert mls_language("Polish") == ("polish", "pl")
    with pytest.raises(AsrkitError, match="unknown MLS language 'xx'; choose from english \\(en\\)"):
        mls_language("xx")


def test_prepare_mls_rekeys_variable_length_speakers(tmp_path):
    lang_dir = make_mls_tree(tmp_path / "corpus")
    out = tmp_path / "data"
    dirs = prepare_mls(tmp_path / "corpus", "de", out)
    assert [d.name for d in dirs] == ["mls_de_train", "mls_de_dev", "mls_de_test"]
    a = os.path.abspath(lang_dir)
    train = read_dir(out / "mls_de_train")
    assert train["wav.scp"] == (
        f"0103_1240_000000 {a}/train/audio/103/1240/103_1240_000000.flac\n"
        f"0103_1240_000001 {a}/train/audio/103/1240/103_1240_000001.flac\n"
        f"1034_121_000000 {a}/train/audio/1034/121/1034_121_000000.flac\n"
        f"1034_121_000001 {a}/train/audio/1034/121/1034_121_000001.flac\n")
    assert train["text"] == ("0103_1240_000000 ein hund\n0103_1240_000001 zwei katzen\n"
                             "1034_121_000000 drei\n1034_121_000001 vier fünf\n")
    assert train["utt2spk"] == ("0103_1240_000000 0103\n0103_1240_000001 0103\n"
                                "1034_121_000000 1034\n1034_121_000001 1034\n")
    assert train["spk2utt"] == "0103 0103_1240_000000 0103_1240_000001\n1034 1034_121_000000 1034_121_000001\n"
    assert train["utt2lang"] == ("0103_1240_000000 de\n0103_1240_000001 de\n"
                                 "1034_121_000000 de\n1034_121_000001 de\n")
    assert train["utt2dur"] == ("0103_1240_000000 0.1\n0103_1240_000001 0.2\n"
                                "1034_121_000000 0.15\n1034_121_000001 0.25\n")
    # One width for the whole language: dev and test speakers are padded too.
    dev = read_dir(out / "mls_de_dev")
    assert dev["utt2spk"] == "0005_77_000000 0005\n0005_77_000001 0005\n"
    assert dev["text"] == "0005_77_000000 guten tag\n0005_77_000001 gute nacht\n"
    test = read_dir(out / "mls_de_test")
    assert test["wav.scp"] == f"0012_3_000000 {a}/test/audio/12/3/12_3_000000.flac\n"
    assert test["utt2dur"] == "0012_3_000000 0.05\n"


def test_prepare_mls_keeps_ids_when_they_sort(tmp_path):
    make_mls_tree(tmp_path, "english", {"dev": {"12_3_000001": ("hello there", 1600), "34_5_000000": ("bye", 800)}})
    (dest,) = prepare_mls(tmp_path / "mls_english", "english", tmp_path / "data", splits=("dev",))
    assert dest.name == "mls_en_dev"
    d = read_dir(dest)
    assert d["utt2spk"] == "12_3_000001 12\n34_5_000000 34\n"
    assert d["utt2lang"] == "12_3_000001 en\n34_5_000000 en\n"
    assert d["text"] == "12_3_000001 hello there\n34_5_000000 bye\n"


@pytest.mark.parametrize("hours,expected", [
    ("1", ["0103_1240_000000", "1034_121_000001"]),
    ("9", ["0103_1240_000001"]),
    ("10", ["0103_1240_000000", "0103_1240_000001", "1034_121_000001"]),
])
def test_prepare_mls_limited_supervision(tmp_path, hours, expected):
    make_mls_tree(tmp_path / "corpus")
    dirs = prepare_mls(tmp_path / "corpus", "german", tmp_path / "data", hours=hours, splits=("train",))
    assert [d.name for d in dirs] == [f"mls_de_train_{hours}h"]
    assert [ln.split()[0] for ln in (dirs[0] / "utt2spk").read_text().splitlines()] == expected


def test_prepare_mls_errors(tmp_path):
    with pytest.raises(AsrkitError, match=r"corpus: MLS folder does not exist"):
        prepare_mls(tmp_path / "corpus", "de", tmp_path / "data")
    (tmp_path / "corpus").mkdir()
    with pytest.raises(AsrkitError, match=r"corpus: no mls_german/ or mls_german_opus/ folder \(expected layout"):
        prepare_mls(tmp_path / "corpus", "de", tmp_path / "data")
    lang_dir = make_mls_tree(tmp_path / "corpus")
    (lang_dir / "train/audio/103/1240/103_1240_000001.flac").unlink()
    _tone(lang_dir / "train/audio/1034/121/1034_121_000007.flac", 800)
    with pytest.raises(DataDirError, match=r"mls_german/train: transcript without audio: 1 \(first: 103_1240_000001\); "
                                           r"audio without transcript: 1 \(first: 1034_121_000007\)"):
        prepare_mls(tmp_path / "corpus", "de", tmp_path / "data", splits=("train",))
    (lang_dir / "test/transcripts.txt").write_text("12_3_000000\thallo\nbad-id\tx\n")
    with pytest.raises(FormatError, match=r"test/transcripts\.txt:2: utterance id 'bad-id' is not <speaker>_<book>_<number>"):
        prepare_mls(tmp_path / "corpus", "de", tmp_path / "data", splits=("test",))
    (lang_dir / "test/transcripts.txt").write_text("12_3_000000\thallo\n")
    (lang_dir / "dev/audio/5/77/5_77_000000.flac").write_bytes(b"not audio")
    with pytest.raises(AsrkitError, match=r"unreadable audio: 1 file\(s\) \(first: .*5_77_000000\.flac: "):
        prepare_mls(tmp_path / "corpus", "de", tmp_path / "data", splits=("dev",))


def test_prepare_mls_missing_limited_supervision(tmp_path):
    lang_dir = make_mls_tree(tmp_path / "corpus")
    (lang_dir / "train/limited_supervision/9hr/handles.txt").unlink()
    with pytest.raises(AsrkitError, match=r"9hr/handles\.txt: MLS 9-hour limited-supervision list does not exist"):
        prepare_mls(lang_dir, "de", tmp_path / "data", hours="9", splits=("train",))


def test_cli_mls(tmp_path, asrkit_cli):
    make_mls_tree(tmp_path / "corpus")
    out = tmp_path / "data"
    proc = asrkit_cli("prepare", "mls", "--lang", "de", "--hours", "1", tmp_path / "corpus", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / n) for n in ("mls_de_train_1h", "mls_de_dev", "mls_de_test")]
    assert (out / "mls_de_dev" / "utt2lang").read_text() == "0005_77_000000 de\n0005_77_000001 de\n"
    proc = asrkit_cli("prepare", "mls", "--lang", "de", tmp_path / "missing", out)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == f"asrkit prepare mls: error: {tmp_path / 'missing'}: MLS folder does not exist"


def test_prepare_mls_ids_do_not_depend_on_the_splits_asked_for(tmp_path):
    make_mls_tree(tmp_path / "corpus")
    (dest,) = prepare_mls(tmp_path / "corpus", "de", tmp_path / "data", splits=("test",))
    assert (dest / "utt2spk").read_text() == "0012_3_000000 0012\n"
