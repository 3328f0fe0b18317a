"""kill -9 in the middle of `asrkit train` and `asrkit make-feats`, then the same command again (with
--resume for training): the final outputs are bit-identical to an uninterrupted run on CPU.

decode and dump-posteriors have theirs beside their other tests: tests/decoding/test_decode.py
(test_kill_9_midway_then_rerun_gives_identical_output) and tests/distill/test_posteriors.py
(test_killed_cli_run_then_rerun_gives_identical_post_scp).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from asrkit.models.modelfile import read_model_file
from tests.conftest import REPO
from tests.reliability.conftest import copy_dir, run_cli, snapshot
from tests.reliability.test_train import train_args

ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _start(args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "asrkit", *map(str, args)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_train_kill_9_then_resume_gives_identical_weights(feats_dir, lang_dir, tmp_path):
    # A checkpoint every step, so the kill lands mid-epoch with several checkpoints behind it.
    extra = ("--set", "training.epochs=12", "--set", "training.save_interval=1", "--set", "training.log_interval=50")
    straight = tmp_path / "straight"
    assert run_cli(*train_args(feats_dir, straight, *extra, lang=lang_dir)).returncode == 0

    killed = tmp_path / "killed"
    proc = _start(train_args(feats_dir, killed, *extra, lang=lang_dir))
    _kill_when(proc, lambda: len(list((killed / "checkpoints").glob("checkpoint-*.pt"))) >= 2)
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not (killed / "final.pt").exists()

    res = run_cli(*train_args(feats_dir, killed, *extra, "--resume", lang=lang_dir))
    assert res.returncode == 0, res.stderr
    assert "resum" in res.stderr.lower()
    a, b = read_model_file(straight / "final.pt")["state_dict"], read_model_file(killed / "final.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_make_feats_kill_9_then_rerun_gives_identical_features(wav_dir, tmp_path):
    # The same set name in both runs: it is part of the ark names.
    reference = copy_dir(wav_dir, tmp_path / "reference" / "data")
    assert run_cli("make-feats", reference).returncode == 0

    data = copy_dir(wav_dir, tmp_path / "killed" / "data")
    proc = _start(["make-feats", data])
    _kill_when(proc, lambda: (data / "data" / "log").is_dir())  # jobs started: splitting done, arks being written
    res = run_cli("make-feats", data)
    assert res.returncode == 0, res.stderr
    assert (data / "utt2num_frames").read_text() == (reference / "utt2num_frames").read_text()
    ref, got = snapshot(reference / "data"), snapshot(data / "data")
    arks = sorted(k for k in ref if k.endswith(".ark"))
    assert len(arks) == 1 and {k: ref[k] for k in arks} == {k: got.get(k) for k in arks}  # byte-identical
    assert (data / "feats.scp").read_text() == (reference / "feats.scp").read_text().replace(
        str(tmp_path / "reference"), str(tmp_path / "killed"))
    assert not [k for k in got if k.endswith(".tmp")]
