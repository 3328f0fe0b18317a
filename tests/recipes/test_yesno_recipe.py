"""recipes/yesno/run.sh end to end on the real corpus (../shared/corpora/yesno; skipped without it).

It trains for one epoch: every stage runs, the numbers mean nothing. The issue-18 target (0.00% WER
with the shipped settings, 3 seeds) is not reached yet (recipes/yesno/RESULTS.md); a test of it comes
with the settings that reach it, not as an expected failure that costs CI a whole recipe run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, real_corpus


def run_recipe(tmp_path: Path, *args: str) -> tuple[Path, subprocess.CompletedProcess]:
    corpus = real_corpus("yesno")
    shutil.copytree(REPO / "recipes" / "utils", tmp_path / "utils")
    shutil.copytree(REPO / "recipes" / "yesno", tmp_path / "yesno", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "fbank"))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO))
    proc = subprocess.run(["./run.sh", "--corpus", str(corpus), *args], cwd=tmp_path / "yesno", env=env,
                          capture_output=True, text=True, timeout=1200)
    return tmp_path / "yesno", proc


@pytest.mark.slow  # ten asrkit commands (a torch import each): about a minute on a quiet 2-core CPU
def test_every_stage_runs(tmp_path):
    recipe, proc = run_recipe(tmp_path, "--epochs", "1", "--nj", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len((recipe / "data" / "test_yesno" / "text").read_text().splitlines()) == 30
    assert (recipe / "data" / "lang_word" / "he" / "tokens.txt").read_text().split()[::2] == ["<blk>", "<unk>",
                                                                                             "▁NO", "▁YES"]
    wer = (recipe / "exp" / "dnn_word_seed1" / "decode_test_yesno" / "wer").read_text()
    assert wer.startswith("%WER ") and "/ 240," in wer
    assert "| dnn_word_seed1 | test_yesno |" in (recipe / "exp" / "RESULTS.md").read_text()

