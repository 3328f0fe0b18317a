"""The training core on the synthetic corpus at CI size (4 languages x 300 utterances):
an MTL and an LRMF Conformer-CTC train on CPU with falling validation loss, and LRMF reports
the output-layer reduction of the closed form."""

from __future__ import annotations

import json
import re

import pytest

from asrkit.corpora.synth import SynthConfig, prepare_synth
from asrkit.features.cmvn import compute_cmvn
from asrkit.features.make_feats import make_feats
from asrkit.text.tokenizer import make_lang_dir
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training

LANGS = ("en", "de", "fr", "es")
TINY_CONFORMER = ["model.encoder={type: conformer, d_model: 48, num_layers: 1, num_heads: 2, ffn_dim: 96, "
                  "depthwise_conv_kernel_size: 7}", "data.max_frames=8000", "optim.lr=3e-3",
                  "scheduler.warmup_steps=20", "training.epochs=3", "training.log_interval=50",
                  # Characters at x4 leave 8% of these utterances unalignable (issue 21.1); this test
                  # checks that the rest learns, as before that check existed.
                  "objective.max_unalignable=0.1"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    prepare_synth(root / "corpus", SynthConfig(langs=LANGS, utts_per_lang=300), nj=2)
    dirs = {}
    for split in ("train", "dev"):
        d = root / "corpus" / split
        make_feats(d, feat_type="fbank", options=("num-mel-bins=40",), nj=1, feat_dir=root / "fbank")
        compute_cmvn(d, feat_dir=root / "fbank")
        dirs[split] = d
    lang = make_lang_dir([dirs["train"]], root / "lang_char", token_type="char")
    return root, dirs, lang


def _valid_losses(out):
    rows = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
    return [r["valid_loss"] for r in rows if "valid_loss" in r]


@pytest.mark.parametrize("head", ["mtl", "lrmf"])
def test_conformer_ctc_learns_on_synth(synth, head):
    root, dirs, lang = synth
    rank = 16
    extra = [f"model.head={{type: {head}, rank: {rank}}}" if head == "lrmf" else "model.head={type: mtl}"]
    conf = load_config(None, [*TINY_CONFORMER, *extra])
    out = root / f"exp_{head}"
    run_training(conf, train_dirs=[dirs["train"]], valid_dirs=[dirs["dev"]], lang_dir=str(lang.path), out_dir=out)
    losses = _valid_losses(out)
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    log = (out / "log" / "train.log").read_text()
    if head == "lrmf":
        vocab = lang.vocab_sizes()
        hidden = 48
        lrmf = hidden * rank + sum(rank * v + v for v in vocab.values())
        full = sum(hidden * v + v for v in vocab.values())
        reduction = 100.0 * (full - lrmf) / full
        match = re.search(r"head/reduction_percent ([\d.]+)", log)
        assert match and float(match.group(1)) == pytest.approx(reduction, abs=0.06)
