"""yesno preparation on a tiny fake corpus (Kaldi's egs/yesno/s5/local/prepare_data.sh), and on the real one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora.yesno import prepare_yesno, yesno_transcript
from asrkit.errors import AsrkitError, DataDirError
from tests.conftest import real_corpus


def make_yesno(root: Path, names: list[str]) -> Path:
    d = root / "waves_yesno"
    d.mkdir(parents=True)
    for i, name in enumerate(names):
        sf.write(str(d / f"{name}.wav"), np.zeros(800 * (i + 1), dtype="int16"), 8000, subtype="PCM_16")
    return d


def test_transcript():
    assert yesno_transcript("0_1_1_0.wav") == "NO YES YES NO"


def test_prepare_splits_by_name(tmp_path):
    waves = make_yesno(tmp_path, ["1_1", "0_0", "0_1", "1_0"])
    train, test = prepare_yesno(tmp_path, tmp_path / "data", num_train=2)
    assert (train / "text").read_text() == "global-0_0 NO NO\nglobal-0_1 NO YES\n"
    assert (test / "text").read_text() == "global-1_0 YES NO\nglobal-1_1 YES YES\n"
    assert (train / "wav.scp").read_text().splitlines()[0] == f"global-0_0 {os.path.abspath(waves / '0_0.wav')}"
    assert (train / "spk2utt").read_text() == "global global-0_0 global-0_1\n"
    assert (train / "utt2lang").read_text() == "global-0_0 he\nglobal-0_1 he\n"
    # 0_0 was written second (1,600 samples at 8 kHz).
    assert (train / "utt2dur").read_text().splitlines()[0] == "global-0_0 0.2"


def test_prepare_refuses_bad_layouts(tmp_path):
    with pytest.raises(AsrkitError, match="no yesno WAV files"):
        prepare_yesno(tmp_path, tmp_path / "data")
    waves = make_yesno(tmp_path / "c", ["0_1", "1_0"])
    with pytest.raises(AsrkitError, match="2 files; cannot train on the first 30"):
        prepare_yesno(waves, tmp_path / "data")
    (waves / "notes.wav").write_bytes(b"")
    with pytest.raises(DataDirError, match=r"notes\.wav: not a yesno file name"):
        prepare_yesno(waves, tmp_path / "data", num_train=1)
    assert not (tmp_path / "data").exists()


def test_cli_on_real_corpus(tmp_path, asrkit_cli):
    proc = asrkit_cli("prepare", "yesno", real_corpus("yesno"), tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    for name, first in (("train_yesno", "global-0_0_0_0_1_1_1_1 NO NO NO NO YES YES YES YES"),
                        ("test_yesno", "global-0_1_1_1_1_1_1_1 NO YES YES YES YES YES YES YES")):
        lines = (tmp_path / "data" / name / "text").read_text().splitlines()
        assert len(lines) == 30 and lines[0] == first
