"""`asrkit make-feats` on bad data dirs and audio: one error line naming the file:line or utterance, no
feats.scp, no ark, no temporary file (the feature folder keeps only the job log)."""

from __future__ import annotations

import shutil

import kaldiio
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


def _features(data) -> dict[str, bytes]:
    """{utterance: the matrix's bytes} of a data dir's feats.scp, read through its arks."""
    return {k: np.asarray(v).tobytes() for k, v in kaldiio.load_scp(str(data / "feats.scp")).items()}


def test_failed_overwrite_run_with_two_jobs_keeps_the_old_features_and_resumes(wav_dir, tmp_path):
    """Job 1 finishes (other options: other arks), job 2 fails: the old feats.scp must still read the old
    arks. Before the fix job 1 renamed its ark into place, under the old feats.scp's offsets."""
    data = copy_dir(wav_dir, tmp_path / "data")
    assert run_cli("make-feats", data, "--nj", "2").returncode == 0
    old_files = {name: (data / name).read_bytes() for name in ("feats.scp", "utt2num_frames", "conf/fbank.conf")}
    old_arks, old_features = snapshot(data / "data"), _features(data)
    last = edit_line(data / "wav.scp", -1, "spkC-fr-002 false |")  # spkC: job 2 of split2
    res = run_cli("make-feats", data, "--nj", "2", "--overwrite", "--opt", "num-mel-bins=40")
    assert_one_line_error(res, "make-feats", r"1 / 2 jobs failed, log is in .*data/log/make_fbank_data\.2\.log: "
                                             r"spkC-fr-002: command 'false' failed")
    assert {name: (data / name).read_bytes() for name in old_files} == old_files
    assert _features(data) == old_features
    visible = {k: v for k, v in snapshot(data / "data").items() if not k.startswith("log/") and "/." not in f"/{k}"}
    assert visible == {k: v for k, v in old_arks.items() if not k.startswith("log/")}
    assert "# Ended (code 1)" in (data / "data" / "log" / "make_fbank_data.2.log").read_text()
    # Job 1 waits under staged names; the re-run after the fix skips it and renames the run into place.
    edit_line(data / "wav.scp", -1, last)
    res = run_cli("make-feats", data, "--nj", "2", "--opt", "num-mel-bins=40")
    assert res.returncode == 0, res.stderr
    assert "1 of 2 job(s) already done" in res.stderr
    assert {np.frombuffer(v, dtype=np.float32).size % 40 for v in _features(data).values()} == {0}
    assert not [p for p in (data / "data").rglob(".*")]  # no staged or temporary file is left
    fresh = copy_dir(wav_dir, tmp_path / "fresh" / "data")
    assert run_cli("make-feats", fresh, "--nj", "2", "--opt", "num-mel-bins=40").returncode == 0
    assert _features(data) == _features(fresh)


def test_rejected_overwrite_run_keeps_the_old_features(tmp_path):
    """Kaldi's 5% rule rejects the whole run: before the fix it removed the arks the old feats.scp read."""
    from tests.reliability.test_failed_runs import _data_dir

    data = _data_dir(tmp_path / "data", num_good=20, num_short=0)
    assert run_cli("make-feats", data, "--nj", "2", "--feat-dir", tmp_path / "fd").returncode == 0
    old_files = {name: (data / name).read_bytes() for name in ("feats.scp", "utt2num_frames")}
    old_arks, old_features = snapshot(tmp_path / "fd"), _features(data)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(80, dtype=np.int16), 16000, subtype="PCM_16")
    for i in (0, 19):  # one in each job: 2 of 20 utterances without features
        edit_line(data / "wav.scp", i, f"spk-{i:03d} {short}")
    res = run_cli("make-feats", data, "--nj", "2", "--overwrite", "--opt", "num-mel-bins=40",
                  "--feat-dir", tmp_path / "fd")
    assert_one_line_error(res, "make-feats", r"2 of 20 utterances got no features .*more than 5%, so nothing was "
                                             r"written")
    assert {name: (data / name).read_bytes() for name in old_files} == old_files
    assert _features(data) == old_features
    assert_no_partial_output(tmp_path / "fd", old_arks)
    assert not [p for p in (tmp_path / "fd").rglob(".*")]
    # The run's logs are in the log folder, say why nothing was merged, and mark no job done.
    logs = [(tmp_path / "fd" / "log" / f"make_fbank_data.{j}.log").read_text() for j in (1, 2)]
    assert all("skipping utterance" in log and log.splitlines()[-1].startswith("# not merged: ") for log in logs)
    res = run_cli("make-feats", data, "--nj", "2", "--opt", "num-mel-bins=40", "--feat-dir", tmp_path / "fd")
    assert "already done" not in res.stderr and res.returncode != 0
