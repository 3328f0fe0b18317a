"""recipes/synth/run.sh end to end at --size tiny: every stage runs, the results table lists every model,
and a single stage re-runs from the files on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# The whole recipe at --size tiny: about 11 minutes of a loaded 2-core machine (make test runs it).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("recipes")
    shutil.copytree(REPO / "recipes" / "utils", root / "utils")
    shutil.copytree(REPO / "recipes" / "synth", root / "synth", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "fbank"))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(["./run.sh", "--size", "tiny", "--nj", "2"], cwd=root / "synth", env=env,
                          capture_output=True, text=True, timeout=1500)
    return root / "synth", proc


EXPERIMENTS = ["mtl_conformer", "lrmf_conformer", "transfer_it", "scratch_it", "mtl_conformer_dist",
               "rnnt_dense", "rnnt_agnostic70", "rnnt_pathways70", "teacher_blstm", "student_dnn", "hard_dnn"]


def test_every_stage_runs_and_the_table_lists_every_model(tiny_recipe):
    recipe, proc = tiny_recipe
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (recipe / "exp" / "RESULTS.md").read_text()
    for exp in EXPERIMENTS:
        assert f"| {exp} |" in table, exp
    for lang in ("de", "en", "es", "fr"):
        assert f"| rnnt_mono70/{lang} |" in table
        assert (recipe / "exp" / "mtl_conformer" / "decode_test" / f"wer_{lang}").is_file()
    assert "| mtl_conformer_dist | test_ema |" in table  # the EMA model decoded beside the final one
    # The word-trigram decode: LM weight and penalty swept on dev, test decoded at dev's best only.
    for exp in ("mtl_conformer", "lrmf_conformer", "mtl_conformer_dist"):
        assert f"| {exp} | lm_test |" in table
        best = (recipe / "exp" / exp / "decode_lm_dev" / "best_wer").read_text().split()[-1].rsplit("/", 1)[-1]
        swept = sorted(p.name for p in (recipe / "exp" / exp / "decode_lm_test").glob("wer_*_*"))
        assert swept == [best]
    assert (recipe / "exp" / "teacher_blstm" / "post_train" / "post.scp").is_file()
    # Stage 4 starts from stage 3's model, its output layers factorised by SVD (as --size demo ships it).
    assert "from an SVD of its mtl output layers" in (recipe / "exp" / "lrmf_conformer" / "log" / "train.log").read_text()
    first = (recipe / "exp" / "mtl_conformer" / "decode_test" / "wer").read_text().splitlines()[0]
    assert first.startswith("%WER ")


def test_one_stage_reruns_from_files_on_disk(tiny_recipe):
    recipe, proc = tiny_recipe
    assert proc.returncode == 0
    model = recipe / "exp" / "mtl_conformer" / "final.pt"
    stamp = model.stat().st_mtime_ns
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    again = subprocess.run(["./run.sh", "--size", "tiny", "--stage", "3", "--stop-stage", "3"], cwd=recipe, env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert model.stat().st_mtime_ns == stamp  # same inputs and config: training is skipped
    results = subprocess.run(["./run.sh", "--size", "tiny", "--stage", "10", "--stop-stage", "10"], cwd=recipe,
                             env=env, capture_output=True, text=True, timeout=600)
    assert results.returncode == 0, results.stderr[-2000:]
    assert "| mtl_conformer | test |" in results.stdout
