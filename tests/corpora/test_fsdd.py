"""Free Spoken Digit Dataset preparation: utterance ids, speaker folds and dev takes, on a fake tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora.fsdd import prepare_fsdd
from asrkit.errors import AsrkitError, DataDirError


def make_fsdd(root: Path, speakers=("ann", "bob", "cat"), digits=(0, 7), takes=3) -> Path:
    d = root / "recordings"
    d.mkdir(parents=True)
    for spk in speakers:
        for digit in digits:
            for take in range(takes):
                sf.write(str(d / f"{digit}_{spk}_{take}.wav"), np.zeros(400, dtype="int16"), 8000, subtype="PCM_16")
    return d


def keys(d: Path) -> list[str]:
    return [ln.split()[0] for ln in (d / "text").read_text().splitlines()]


def test_folds_hold_out_whole_speakers(tmp_path):
    make_fsdd(tmp_path)
    out = tmp_path / "data"
    dirs = prepare_fsdd(tmp_path, out, dev_takes=1)
    assert [str(d.relative_to(out)) for d in dirs] == [
        "all", "fold_ann/test", "fold_ann/train", "fold_ann/dev", "fold_bob/test", "fold_bob/train",
        "fold_bob/dev", "fold_cat/test", "fold_cat/train", "fold_cat/dev"]
    assert len(keys(out / "all")) == 18
    assert keys(out / "fold_ann/test") == ["ann-0-0", "ann-0-1", "ann-0-2", "ann-7-0", "ann-7-1", "ann-7-2"]
    assert keys(out / "fold_ann/dev") == ["bob-0-0", "bob-7-0", "cat-0-0", "cat-7-0"]
    assert keys(out / "fold_ann/train") == ["bob-0-1", "bob-0-2", "bob-7-1", "bob-7-2",
                                            "cat-0-1", "cat-0-2", "cat-7-1", "cat-7-2"]
    assert (out / "fold_ann/test/text").read_text().splitlines()[3] == "ann-7-0 seven"
    assert (out / "fold_ann/train/spk2utt").read_text().splitlines()[0] == "bob bob-0-1 bob-0-2 bob-7-1 bob-7-2"
    assert (out / "all/utt2dur").read_text().splitlines()[0] == "ann-0-0 0.05"


def test_speaker_choice_and_no_dev(tmp_path):
    make_fsdd(tmp_path)
    dirs = prepare_fsdd(tmp_path / "recordings", tmp_path / "data", dev_takes=0, speakers=("ann", "cat"))
    assert [d.name for d in dirs] == ["all", "test", "train", "test", "train"]
    assert keys(tmp_path / "data/fold_ann/train")[0] == "cat-0-0"


def test_refusals(tmp_path):
    with pytest.raises(AsrkitError, match="no FSDD WAV files"):
        prepare_fsdd(tmp_path, tmp_path / "data")
    d = make_fsdd(tmp_path / "c", speakers=("ann",))
    with pytest.raises(AsrkitError, match="at least two speakers, found ann"):
        prepare_fsdd(d, tmp_path / "data")
    with pytest.raises(AsrkitError, match="no recordings of speaker.s. zed .speakers there: ann."):
        prepare_fsdd(d, tmp_path / "data", speakers=("ann", "zed"))
    (d / "seven.wav").write_bytes(b"")
    with pytest.raises(DataDirError, match=r"seven\.wav: not an FSDD file name"):
        prepare_fsdd(d, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_cli(tmp_path, asrkit_cli):
    make_fsdd(tmp_path)
    proc = asrkit_cli("prepare", "fsdd", "--dev-takes", "1", "--speaker", "ann", "--speaker", "bob",
                      tmp_path, tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    assert keys(tmp_path / "data/fold_bob/dev") == ["ann-0-0", "ann-7-0"]
