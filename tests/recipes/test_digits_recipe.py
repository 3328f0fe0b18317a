"""recipes/digits/run.sh end to end on the real corpus (../shared/corpora/fsdd4; skipped without it).

One fold, takes 0-9 of each speaker (dev: takes 0-4, train: takes 5-9, their speed copies and one
VTLN-warped copy), an ensemble of two models of one epoch, one round of self-training of one epoch:
every stage runs, the numbers mean nothing (recipes/digits/RESULTS.md holds the real ones).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, real_corpus


@pytest.mark.slow  # ~15 asrkit commands (a torch import each) and 1,200 feature files: 1-2 minutes
def test_every_stage_runs(tmp_path):
    wavs = real_corpus("fsdd4") / "recordings"
    small = tmp_path / "fsdd" / "recordings"
    small.mkdir(parents=True)
    for f in wavs.glob("*_[0-9].wav"):  # takes 0-9 of every digit and speaker: 400 files
        (small / f.name).symlink_to(f)
    shutil.copytree(REPO / "recipes" / "utils", tmp_path / "utils")
    shutil.copytree(REPO / "recipes" / "digits", tmp_path / "digits", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "fbank"))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO))
    # --train-warps 1.1: one warped training copy (its features are made for the test-time average anyway).
    proc = subprocess.run(["./run.sh", "--corpus", str(small.parent), "--folds", "george", "--epochs", "1",
                           "--nj", "1", "--train-warps", "1.1", "--ensemble", "2", "--adapt-rounds", "1",
                           "--adapt-epochs", "1"], cwd=tmp_path / "digits", env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recipe = tmp_path / "digits"
    assert len((recipe / "data" / "george" / "test" / "text").read_text().splitlines()) == 100
    train_aug = (recipe / "data" / "george" / "train_aug" / "text").read_text().splitlines()
    assert len(train_aug) == 4 * 150 and sum(ln.startswith("sp0.9-jackson-") for ln in train_aug) == 50
    assert sum(ln.startswith("w1.1-lucas-") for ln in train_aug) == 50
    assert "w1.1-lucas" in (recipe / "data" / "george" / "train_aug" / "spk2utt").read_text()
    exp = recipe / "exp" / "blstm_word_george"
    # Test-time VTLN: the test speaker's files at 1.0 and each of the 6 default warps, in one decode.
    vtln = (recipe / "data" / "george" / "test_vtln" / "text").read_text().splitlines()
    assert len(vtln) == 7 * 100 and sum(ln.startswith("w0.85-george-") for ln in vtln) == 100
    for decode in ("decode_test_george", "decode_test_george_lm", "decode_test_george_vtln"):
        wer = (exp / decode / "wer").read_text()
        assert wer.startswith("%WER ") and "/ 100," in wer
    # The ensemble's second model (its own seed), decoded alone and averaged with the first.
    member = recipe / "exp" / "blstm_word_george_m1"
    assert "seed: 1000" in (member / "config.yaml").read_text()
    assert "seed: 0" in (exp / "config.yaml").read_text()
    for decode in (member / "decode_test_george_vtln", recipe / "exp" / "blstm_word_george_ens" / "decode_test_george_vtln"):
        assert "/ 100," in (decode / "wer").read_text()
    # The grammar allows exactly one digit word per utterance: every LM hypothesis is one word.
    hyps = (exp / "decode_test_george_lm" / "text").read_text().splitlines()
    assert len(hyps) == 100 and all(len(ln.split()) == 2 for ln in hyps)
    # Self-training: the kept files are held-out speaker files with the first pass's words, not the labels
    # (with one epoch of training these are mostly wrong), each file with its speed copies.
    st = recipe / "exp" / "blstm_word_george_st1"
    first_pass = dict(ln.split(maxsplit=1) for ln in (st / "pseudo" / "scores").read_text().splitlines())
    kept = dict(ln.split() for ln in (st / "pseudo" / "text").read_text().splitlines())
    assert 0 < len(kept) <= 100 and all(u.startswith("george-") for u in kept)
    assert all(first_pass[u].split()[0] == w for u, w in kept.items())
    adapt = dict(ln.split() for ln in (recipe / "data" / "george" / "adapt_r1" / "text").read_text().splitlines())
    assert len(adapt) == 3 * len(kept) and all(adapt[f"sp0.9-{u}"] == w for u, w in kept.items())
    # The fine-tuning data: what the fold's model trained on (train_aug, 600 files with the copies) + those.
    assert f"{len(train_aug) + len(adapt)} training utterances" in (st / "log" / "train.log").read_text()
    assert (st / "decode_test_george_vtln" / "wer").read_text().startswith("%WER ")
    results = (recipe / "exp" / "RESULTS.md").read_text()
    assert "mean WER over 1 folds (greedy, no LM):" in results
    assert "mean WER over 1 folds with the grammar LM:" in results
    assert "mean WER over 1 folds averaged over VTLN warps 0.85,0.9,0.95,1.05,1.1,1.15 and 1.0 (greedy):" in results
    assert "mean WER over 1 folds the 2 models' word posteriors averaged, each over the VTLN warps:" in results
    assert "mean WER over 1 folds after 1 round(s) of self-training, VTLN average (greedy):" in results
