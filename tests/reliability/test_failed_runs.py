"""Issue 17 class C (and B's `train --resume`): a run that fails writes nothing. make-feats follows
Kaldi's 5% rule all or nothing, compute-cmvn on a data dir it cannot write leaves no ark, and train
checks every input (data, lang dir, a resumed config) before it writes its exp dir."""

from __future__ import annotations

import errno
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import KALDI_FIXTURES
from tests.reliability.conftest import assert_one_line_error, copy_dir, run_cli, snapshot
from tests.reliability.test_train import train_args

WAV = KALDI_FIXTURES / "wav" / "spkA-en-001.wav"


def _data_dir(path, num_good: int, num_short: int):
    """A data dir of one speaker: `num_good` copies of a fixture wav and `num_short` 5 ms wavs (no frame)."""
    path.mkdir(parents=True)
    short = path.parent / "short.wav"
    sf.write(short, np.zeros(80, dtype=np.int16), 16000, subtype="PCM_16")
    utts = {f"spk-{i:03d}": WAV for i in range(num_good)}
    utts.update({f"spk-{num_good + i:03d}": short for i in range(num_short)})
    (path / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in sorted(utts.items())))
    (path / "utt2spk").write_text("".join(f"{u} spk\n" for u in sorted(utts)))
    (path / "spk2utt").write_text("spk " + " ".join(sorted(utts)) + "\n")
    return path


def test_make_feats_more_than_5_percent_without_features_writes_nothing(tmp_path):
    data = _data_dir(tmp_path / "data", num_good=5, num_short=1)
    before = snapshot(data)
    res = run_cli("make-feats", data, "--feat-dir", tmp_path / "fd")
    assert_one_line_error(res, "make-feats", r"data: 1 of 6 utterances got no features \(too short; see the warnings "
                                             r"in .*fd/log\): more than 5%, so nothing was written")
    assert {k: v for k, v in snapshot(data).items() if not k.startswith("split")} == before  # no feats.scp, conf/
    assert sorted(p.name for p in (tmp_path / "fd").iterdir()) == ["log"]  # no ark, no scp
    assert "skipping utterance: spk-005" in (tmp_path / "fd" / "log" / "make_fbank_data.1.log").read_text()


def test_make_feats_up_to_5_percent_without_features_keeps_the_rest_and_warns(tmp_path):
    data = _data_dir(tmp_path / "data", num_good=20, num_short=1)
    res = run_cli("make-feats", data, "--feat-dir", tmp_path / "fd")
    assert res.returncode == 0, res.stderr
    assert "data: 1 of 21 utterances got no features" in res.stderr and "left out of feats.scp" in res.stderr
    assert len((data / "feats.scp").read_text().splitlines()) == 20
    assert "spk-020" not in (data / "utt2num_frames").read_text()


def test_compute_cmvn_on_a_read_only_data_dir_writes_nothing(feats_dir, tmp_path, monkeypatch):
    """Root ignores permission bits, so the read-only data dir is simulated: creating a file there fails."""
    data = copy_dir(feats_dir, tmp_path / "data")
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and os.path.dirname(os.path.abspath(path)) == str(data):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    before = snapshot(tmp_path)
    monkeypatch.setattr(os, "open", read_only_open)
    res = run_cli("compute-cmvn", data, "--feat-dir", tmp_path / "cmvn")
    monkeypatch.undo()
    line = assert_one_line_error(res, "compute-cmvn", r"data: cannot write in this folder \(Permission denied\)")
    assert ".tmp" not in line
    assert snapshot(tmp_path) == before and not (tmp_path / "cmvn").exists()  # no cmvn ark anywhere


def test_train_on_a_missing_data_dir_leaves_no_exp_dir(feats_dir, lang_dir, tmp_path):
    """Issue 21 item 8: no checkpoints/, cmd, config.yaml or log/ for a run that never started."""
    res = run_cli(*train_args(tmp_path / "nodata", tmp_path / "exp", lang=lang_dir))
    assert_one_line_error(res, "train", r"nodata/feats\.scp")
    assert not (tmp_path / "exp").exists()
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", lang=tmp_path / "nolang"))
    assert_one_line_error(res, "train", r"nolang/lang\.yaml: not a lang dir")
    assert not (tmp_path / "exp").exists()


def test_train_failing_on_its_input_keeps_an_old_exp_dir(feats_dir, lang_dir, model, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(model.parent, exp)
    before = snapshot(exp)
    res = run_cli(*train_args(tmp_path / "nodata", exp, "--overwrite", lang=lang_dir))
    assert_one_line_error(res, "train", r"nodata/feats\.scp")
    assert snapshot(exp) == before  # config.yaml, cmd, the log and the checkpoints as they were


@pytest.mark.parametrize("change, key", [("model.encoder={type: dnn, hidden_dims: [32], context: 1}",
                                          r"model\.encoder\.hidden_dims"),
                                         ("optim.lr=1e-2", r"optim\.lr")])
def test_train_resume_with_another_config_names_the_keys_and_writes_nothing(change, key, feats_dir, lang_dir, model,
                                                                            tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(model.parent, exp)
    before = snapshot(exp)
    res = run_cli(*train_args(feats_dir, exp, "--resume", "--set", change, lang=lang_dir))
    assert_one_line_error(res, "train", rf"exp/config\.yaml: --resume with another config: {key} changed")
    assert snapshot(exp) == before
    # Running longer is a resume, not another config.
    res = run_cli(*train_args(feats_dir, exp, "--resume", "--set", "training.epochs=2", lang=lang_dir))
    assert res.returncode == 0, res.stderr


def test_a_second_train_into_one_exp_dir_stops(feats_dir, lang_dir, tmp_path):
    from asrkit.fileio import dir_lock

    with dir_lock(tmp_path / "exp", "train"):
        res = run_cli(*train_args(feats_dir, tmp_path / "exp", lang=lang_dir))
    assert_one_line_error(res, "train", rf"exp is being written by another asrkit train \(pid {os.getpid()}\)")
    assert not (tmp_path / "exp").exists()
