"""`asrkit make-feats` on bad data dirs and audio: one error line naming the file:line or utterance, no
feats.scp, no ark, no temporary file (the feature folder keeps only the job log)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import KALDI_FIXTURES
from tests.reliability.conftest import (
    assert_no_partial_output,
    assert_one_line_error,
    copy_dir,
    edit_line,
    run_cli,
    run_cli_subprocess,
    snapshot,
)

UTT = "spkB-de-001"  # the utterance the audio cases break (line 3 of wav.scp)


def _set_audio(data, rxfile: str) -> None:
    edit_line(data / "wav.scp", 2, f"{UTT} {rxfile}")


def _make_stereo(path):
    sf.write(path, np.zeros((1600, 2), dtype=np.int16), 16000, subtype="PCM_16")


def _make_truncated_header(path):
    path.write_bytes((KALDI_FIXTURES / "wav" / f"{UTT}.wav").read_bytes()[:30])


def _make_truncated_data(path):
    b = (KALDI_FIXTURES / "wav" / f"{UTT}.wav").read_bytes()
    path.write_bytes(b[: len(b) // 2])


AUDIO_CASES = {
    # case: (make the file at PATH or None, wav.scp entry (PATH substituted), expected message regex)
    "stereo": (_make_stereo, "{path}", rf"{UTT}: '.*' has 2 channels; Kaldi needs mono audio"),
    "empty": (lambda p: p.write_bytes(b""), "{path}", rf"{UTT}: cannot decode audio from '.*bad\.wav'"),
    "truncated-header": (_make_truncated_header, "{path}", rf"{UTT}: cannot decode audio from '.*'.*No 'data' chunk"),
    "truncated-data": (_make_truncated_data, "{path}", rf"{UTT}: '.*bad\.wav' is truncated: the header says \d+ "
                                                       r"samples, found \d+"),
    "wrong-sample-rate": (None, str(KALDI_FIXTURES / "wav8k-spkA-en-001.wav"),
                          rf"{UTT}: sample rate 8000 Hz does not match the feature config's --sample-frequency=16000"),
    "failing-pipe": (None, "cat /nonexistent/x.wav |",
                     rf"{UTT}: command 'cat /nonexistent/x.wav' failed with exit status 1: cat: /nonexistent/x.wav: "
                     "No such file"),
    "missing-audio-file": (None, "/nonexistent/x.wav", rf"{UTT}: cannot open '/nonexistent/x.wav': no such file"),
}


@pytest.mark.parametrize("case", list(AUDIO_CASES))
def test_bad_audio_names_the_utterance(case, wav_dir, tmp_path):
    make, entry, message = AUDIO_CASES[case]
    data = copy_dir(wav_dir, tmp_path / "data")
    if make is not None:
        make(tmp_path / "bad.wav")
    _set_audio(data, entry.format(path=tmp_path / "bad.wav"))
    res = run_cli("make-feats", data)
    assert_one_line_error(res, "make-feats", r"1 / 1 jobs failed, log is in .*make_fbank_data\.1\.log: ", message)
    assert not (data / "feats.scp").exists() and not (data / "utt2num_frames").exists()
    assert_no_partial_output(data / "data", {})  # the feature folder holds the job log only


def _unsorted(data):
    lines = (data / "wav.scp").read_text().splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    (data / "wav.scp").write_text("".join(lines))


def _duplicate(data):
    lines = (data / "wav.scp").read_text().splitlines(keepends=True)
    (data / "wav.scp").write_text("".join([lines[0], *lines]))


def _not_utf8(data):
    with open(data / "wav.scp", "ab") as f:
        f.write(b"spkC-fr-003 /x/\xff\xfe.wav\n")


DIR_CASES = {
    "missing-wav.scp": (lambda d: (d / "wav.scp").unlink(),
                        r"data/wav\.scp: not found \(make-feats needs wav\.scp, utt2spk and spk2utt\)"),
    "unsorted-keys": (_unsorted, r"data/wav\.scp:2: not sorted: 'spkA-en-001' after 'spkA-en-002' \(sort with LC_ALL=C\)"),
    "duplicate-keys": (_duplicate, r"data/wav\.scp:2: duplicate key 'spkA-en-001'"),
    "ids-do-not-match": (lambda d: edit_line(d / "utt2spk", 3, None),
                         r"data/spk2utt:2: does not match utt2spk: found utterance 'spkB-de-002'"),
    "cr-line-endings": (lambda d: (d / "utt2spk").write_text((d / "utt2spk").read_text().replace("\n", "\r\n")),
                        r"data/utt2spk:1: carriage return \(CR\) in line; convert the file to Unix line endings"),
    "not-utf8": (_not_utf8, r"data/wav\.scp:7: not valid UTF-8"),
}


@pytest.mark.parametrize("case", list(DIR_CASES))
def test_bad_data_dir_names_file_and_line(case, wav_dir, tmp_path):
    breaker, message = DIR_CASES[case]
    data = copy_dir(wav_dir, tmp_path / "data")
    breaker(data)
    res = run_cli("make-feats", data)
    assert_one_line_error(res, "make-feats", message)
    assert not (data / "feats.scp").exists()
    assert not (data / "data").exists() or not [p for p in (data / "data").rglob("*") if p.suffix in (".ark", ".scp")]


def test_missing_data_dir(tmp_path):
    res = run_cli("make-feats", tmp_path / "nowhere")
    assert_one_line_error(res, "make-feats", r"nowhere/wav\.scp: not found")
    assert not (tmp_path / "nowhere").exists()


def test_unwritable_feat_dir(wav_dir, tmp_path):
    # Root ignores permission bits, so "unwritable" is a folder whose parent is a regular file.
    data = copy_dir(wav_dir, tmp_path / "data")
    (tmp_path / "a_file").write_text("")
    res = run_cli("make-feats", data, "--feat-dir", tmp_path / "a_file" / "feats")
    assert_one_line_error(res, "make-feats", r"a_file/feats/log: Not a directory")
    assert not (data / "feats.scp").exists()


def test_disk_full_names_the_ark_and_leaves_nothing(wav_dir, tmp_path):
    data = copy_dir(wav_dir, tmp_path / "data")
    res = run_cli_subprocess("make-feats", data, max_file_bytes=20_000)  # the ark needs ~130 kB
    assert_one_line_error(res, "make-feats", r"\[Errno 27\] cannot write: File too large: '.*data/raw_fbank_data\.1\.ark'")
    assert not (data / "feats.scp").exists()
    assert_no_partial_output(data / "data", {})


def test_failed_rerun_keeps_the_old_features(wav_dir, tmp_path):
    data = copy_dir(wav_dir, tmp_path / "data")
    assert run_cli("make-feats", data).returncode == 0
    before = snapshot(data / "data"), (data / "feats.scp").read_text()
    _set_audio(data, "false |")
    res = run_cli("make-feats", data, "--overwrite")
    assert_one_line_error(res, "make-feats", rf"{UTT}: command 'false' failed with exit status 1")
    assert_no_partial_output(data / "data", before[0])
    assert (data / "feats.scp").read_text() == before[1]
    shutil.rmtree(data)
