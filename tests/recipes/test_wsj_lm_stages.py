"""recipes/wsj's word-LM stages (11: LM dirs, 12: LM decoding and the LM-weight sweep, 13: results) on a
tiny fake WSJ layout: disk 13-32.1's NIST LMs (an ARPA of the toy task's words, the trigram stored as
plain text after header lines under an upper-cased name), a stand-in for IRSTLM's prune-lm, a CMU-style
dictionary, a bd_tgpr ARPA, and a toy CTC model in place of the averaged Conformer."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytest.importorskip("flashlight.lib.text.decoder", reason="--lm needs flashlight-text (not installed here)")


def arpa_words(arpa: str) -> set[str]:
    section = arpa.split("\\1-grams:\n", 1)[1].split("\n\n", 1)[0]
    return {line.split()[1] for line in section.splitlines()} - {"<s>", "</s>"}


def lexicon_words(lm_dir: Path) -> set[str]:
    return {line.split()[0] for line in (lm_dir / "lexicon.txt").read_text().splitlines()}


@pytest.fixture(scope="module")
def wsj_lm_run(tmp_path_factory):
    from asrkit.text.ngram import estimate_kneser_ney, write_arpa
    from asrkit.text.tokenizer import make_lang_dir
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training
    from tests.training.conftest import make_toy_data_dir

    root = tmp_path_factory.mktemp("wsj_lm")
    shutil.copytree(REPO / "recipes" / "utils", root / "utils")
    recipe = root / "wsj"
    shutil.copytree(REPO / "recipes" / "wsj", recipe, symlinks=True, ignore=shutil.ignore_patterns("data", "exp"))
    train = make_toy_data_dir(root, "train", langs=("en",), utts_per_lang=8, seed=1)
    sets = [make_toy_data_dir(recipe / "data", name, langs=("en",), utts_per_lang=4, seed=seed)
            for name, seed in (("test_dev93", 5), ("test_eval92", 6))]
    make_lang_dir([train, *sets], recipe / "data" / "lang_bpe200", token_type="char")
    conf = load_config(None, ["model.encoder={type: dnn, hidden_dims: [32], context: 1}", "training.epochs=1",
                              "training.device=cpu"])
    model = run_training(conf, train_dirs=[train], valid_dirs=[], lang_dir=str(recipe / "data" / "lang_bpe200"),
                         out_dir=root / "exp")
    (recipe / "exp" / "conformer_ctc").mkdir(parents=True)
    shutil.copy(model, recipe / "exp" / "conformer_ctc" / "avg5.pt")

    sentences = [line.split(maxsplit=1)[1] for d in (train, *sets) for line in (d / "text").read_text().splitlines()]
    write_arpa(estimate_kneser_ney(sentences, order=3), root / "lm.arpa")
    arpa = (root / "lm.arpa").read_text()
    base_lm = root / "wsj1" / "13-32.1" / "wsj1" / "doc" / "lng_modl" / "base_lm"
    base_lm.mkdir(parents=True)
    (base_lm / "TCB20ONP.Z").write_text("tcb20onp: 20k open vocabulary trigram\nheader line two\n" + arpa)
    (base_lm / "bcb20onp.z").write_bytes(gzip.compress(arpa.encode()))
    (root / "bd.arpa.gz").write_bytes(gzip.compress(arpa.encode()))
    words = sorted(arpa_words(arpa))
    in_dict = words[::2]  # the dictionary has every other LM word, one with a variant, and a word the LM lacks
    (root / "cmudict").write_text(";;; a CMU-style dictionary\n" + "".join(f"{w}  AH0 B\n" for w in in_dict)
                                  + f"{in_dict[0]}(2)  AH1 B\nNOTINLM  N AA1 T\n<UNK>  SPN\n")
    fake_bin = root / "bin"
    fake_bin.mkdir()
    (fake_bin / "prune-lm").write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/prune-lm.args"\n'
                                       'gzip -dcf < "$2" > "$3"\n')
    (fake_bin / "prune-lm").chmod(0o755)

    env = dict(os.environ, PATH=f"{fake_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(["./run.sh", "--stage", "11", "--stop-stage", "13", "--wsj1", str(root / "wsj1"),
                           "--dict", str(root / "cmudict"), "--bd-lm", str(root / "bd.arpa.gz"), "--nj", "1",
                           "--device", "cpu", "--lm-beam", "8", "--nbest", "3"],
                          cwd=recipe, env=env, capture_output=True, text=True, timeout=1200)
    return recipe, proc, arpa, set(in_dict), fake_bin


@pytest.mark.slow  # a dozen asrkit commands (a torch import each): about a minute on a quiet 2-core CPU
def test_lm_stages_build_the_nist_lms_and_lexicons(wsj_lm_run):
    recipe, proc, arpa, in_dict, fake_bin = wsj_lm_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    nist = recipe / "data" / "local" / "nist_lm"
    # wsj_data_prep.sh: the trigram from its \data\ line on, the bigram as it is, tgpr pruned at 1e-7
    from_data = arpa[arpa.index("\\data\\"):]
    assert gzip.decompress((nist / "lm_tg.arpa.gz").read_bytes()).decode() == from_data
    assert gzip.decompress((nist / "lm_bg.arpa.gz").read_bytes()).decode() == arpa
    assert gzip.decompress((nist / "lm_tgpr.arpa.gz").read_bytes()).decode() == from_data
    assert (fake_bin / "prune-lm.args").read_text().split() == ["--threshold=1e-7", "data/local/nist_lm/lm_tg.arpa.gz",
                                                                 "data/local/nist_lm/.lm_tgpr.arpa.tmp"]
    assert not list(nist.glob(".*"))  # no temporary left
    words = (recipe / "data" / "local" / "lm_tgpr_words.txt").read_text().split()
    assert words == sorted(in_dict)  # the LM's words that the dictionary has: not NOTINLM, not <UNK>
    assert lexicon_words(recipe / "data" / "lang_bpe200_tgpr_lm") == in_dict
    assert lexicon_words(recipe / "data" / "lang_bpe200_bd_tgpr_lm") == arpa_words(arpa)


@pytest.mark.slow
def test_lm_stages_decode_dev93_and_eval92_with_both_lms(wsj_lm_run):
    recipe, proc, arpa, in_dict, _ = wsj_lm_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Loading the LM" not in proc.stderr and "----5---10" not in proc.stderr  # KenLM's noise is caught
    exp = recipe / "exp" / "conformer_ctc"
    for lm, vocabulary in (("tgpr", in_dict), ("bd_tgpr", arpa_words(arpa))):
        for test_set in ("dev93", "eval92"):
            decode = exp / f"decode_avg5_{lm}_{test_set}"
            log = (decode / "log" / "decode.log").read_text()
            assert "search lexicon beam with a word LM, beam 8," in log and "lm-weight 0.5" in log
            assert f"lang_bpe200_{lm}_lm" in log
            hyps = (decode / "text").read_text().splitlines()
            assert len(hyps) == 4 and all(set(h.split()[1:]) <= vocabulary for h in hyps)
            assert (decode / "best_wer").read_text().startswith("%WER ")
            assert len(list(decode.glob("wer_*_*"))) == 27  # the default grid: 9 LM weights x 3 penalties
            assert f"| conformer_ctc | avg5_{lm}_{test_set} |" in (recipe / "exp" / "RESULTS.md").read_text()


def test_lm_stage_needs_an_lm_source_or_is_skipped(tmp_path):
    shutil.copytree(REPO / "recipes" / "utils", tmp_path / "utils")
    shutil.copytree(REPO / "recipes" / "wsj", tmp_path / "wsj", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp"))
    (tmp_path / "wsj" / "data" / "lang_bpe200").mkdir(parents=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    proc = subprocess.run(["./run.sh", "--stage", "11", "--stop-stage", "11"], cwd=tmp_path / "wsj", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == ("./run.sh: stage 11 needs --nist-lm DIR (Kaldi's "
                                                    "data/local/nist_lm) or --wsj1 DIR (the LMs on disk 13-32.1)")
    # a run that takes in the LM stages on its way (here from stage 10 on) skips them instead
    proc = subprocess.run(["./run.sh", "--stage", "10", "--stop-stage", "12"], cwd=tmp_path / "wsj", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tgpr skipped: stage 11 needs --nist-lm DIR" in proc.stderr and "no --bd-lm: bd_tgpr skipped" in proc.stderr
