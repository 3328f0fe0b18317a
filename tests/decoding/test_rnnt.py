"""Tests for asrkit/decoding/rnnt.py: greedy and beam search, full-utterance against streaming."""

from __future__ import annotations

import pytest
import torch

from asrkit.decoding.rnnt import (
    RnntSearch,
    _greedy_frames,
    _GreedyCarry,
    rnnt_beam,
    rnnt_greedy,
    rnnt_streaming_beam,
    rnnt_streaming_greedy,
)
from asrkit.errors import ConfigError
from asrkit.models import build_model

ENC = {"type": "emformer", "d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32, "segment_length": 3,
       "left_context": 4, "right_context": 1, "stride": 2, "dropout": 0.0}
CONF = {"encoder": ENC, "head": {"type": "mtl"}, "predictor": {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.0},
        "joiner": {"dim": 16}}


@pytest.fixture(scope="module")
def model():
    """A random transducer whose blank is made less likely, so that hypotheses are long and varied."""
    torch.manual_seed(3)
    m = build_model(CONF, feat_dim=5, vocab_sizes={"en": 7, "de": 9}).eval()
    with torch.no_grad():
        for lang in ("en", "de"):
            m.head.outputs[lang].weight.mul_(4.0)
            m.head.outputs[lang].bias[0] -= 1.5
    return m


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(4)
    return torch.randn(3, 37, 5), torch.tensor([37, 26, 9])


def test_streaming_greedy_equals_full_utterance_greedy(model, batch):
    feats, lens = batch
    with torch.inference_mode():
        full = rnnt_greedy(model, feats, lens, "de")
        stream = rnnt_streaming_greedy(model, feats, lens, "de")
        singles = [rnnt_greedy(model, feats[i: i + 1, : lens[i]], lens[i: i + 1], "de")[0] for i in range(3)]
    assert full == stream == singles
    assert all(len(h) >= 3 for h in full) and len({tuple(h) for h in full}) == 3
    assert all(0 < t < 9 for h in full for t in h)


def test_streaming_beam_equals_full_utterance_beam(model, batch):
    feats, lens = batch
    with torch.inference_mode():
        full = rnnt_beam(model, feats, lens, "en", beam=3)
        stream = rnnt_streaming_beam(model, feats, lens, "en", beam=3)
    assert full == stream
    assert all(len(h) >= 3 for h in full) and all(0 < t < 7 for h in full for t in h)


class _ScriptedModel:
    """A fake transducer that, at frame t, emits `script[t]` (a list of tokens) then blank."""

    blank = 0

    def __init__(self, scripts, vocab=6):
        self.scripts, self.vocab = scripts, vocab

    def predict(self, tokens, lang, state=None):
        # The "predictor output" counts tokens emitted so far at the current frame (reset by joint).
        n = tokens.shape[0]
        count = torch.zeros(n, 1, 1) if state is None else state[0][0].view(n, 1, 1) + (tokens.view(n, 1, 1) != 0)
        return count, (count.view(1, n, 1), count.view(1, n, 1))

    def joint(self, frame, pred, lang):
        t = int(frame[0, 0, 0])  # frames carry their index
        out = torch.full((pred.shape[0], 1, 1, self.vocab), -10.0)
        for i in range(pred.shape[0]):
            emitted = int(pred[i, 0, 0]) - self.base[i]
            script = self.scripts[i][t] if t < len(self.scripts[i]) else []
            out[i, 0, 0, script[emitted] if emitted < len(script) else 0] = 0.0
        return out


def test_batched_greedy_follows_the_joint_per_utterance():
    scripts = [[[1], [], [2, 3], [4]], [[5, 5], [1, 2, 3, 4, 5], []]]
    fake = _ScriptedModel(scripts)
    enc = torch.arange(4.0).view(1, 4, 1).expand(2, 4, 1)
    carry = _GreedyCarry(fake, 2, "x", "cpu")
    for t in range(4):  # the fake's per-frame emission count starts from the predictor's count at the frame
        fake.base = [int(carry.pred_out[i, 0, 0]) for i in range(2)]
        carry = _greedy_frames(fake, enc[:, t: t + 1], torch.tensor([1, 1 if t < 3 else 0]), "x", carry, max_symbols=3)
    hyps = carry.hyps
    # Utterance 2 has 3 frames; at frame 1 at most 3 symbols are emitted.
    assert hyps == [[1, 2, 3, 4], [5, 5, 1, 2, 3]]


def test_backend_dispatch_and_description(model, batch):
    feats, lens = batch
    backend = RnntSearch()
    assert backend.searches == ("greedy", "beam") and backend.supports_streaming
    with torch.inference_mode():
        assert backend.decode_batch(model, feats, lens, "de", "greedy", 1, streaming=True) == \
            rnnt_greedy(model, feats, lens, "de")
    lines = backend.describe(model)
    assert "segment 3 frames x stride 2 = 6 input frames, right context 2 input frames" in lines[0]
    assert lines[1] == "algorithmic latency 80 ms (8 frames at 10 ms)"
    with pytest.raises(ConfigError, match="unknown search 'prefix'"):
        backend.decode_batch(model, feats, lens, "de", "prefix", 1)
    blstm = build_model({**CONF, "encoder": {"type": "lstm", "hidden_dim": 8, "num_layers": 1}},
                            feat_dim=5, vocab_sizes={"en": 7}).eval()
    with torch.inference_mode():
        assert len(backend.decode_batch(blstm, feats, lens, "en", "greedy", 1)) == 3
        with pytest.raises(ConfigError, match="streaming decoding needs an emformer encoder"):
            backend.decode_batch(blstm, feats, lens, "en", "greedy", 1, streaming=True)
    assert "full-utterance only" in backend.describe(blstm)[0]


@pytest.mark.slow  # trains a transducer, then two `asrkit decode` processes
def test_asrkit_decode_of_a_pathway_transducer_streaming_and_full(tmp_path):
    from asrkit.decoding.decoder import decode_data_dir
    from asrkit.kaldi.textio import read_table
    from asrkit.pruning.prune import PruneOptions, prune
    from asrkit.text.tokenizer import make_lang_dir
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training
    from tests.pruning.conftest import FINE_TUNING
    from tests.training.conftest import make_toy_data_dir

    train = make_toy_data_dir(tmp_path, "train", utts_per_lang=6, seed=1)
    test = make_toy_data_dir(tmp_path, "test", utts_per_lang=2, seed=5)
    make_lang_dir([train], tmp_path / "lang", token_type="char")
    conf = load_config(None, [f"model.encoder={ENC}".replace("'", ""), "model.predictor={embed_dim: 8, hidden_dim: 16}",
                              "model.joiner={dim: 16}", "objective.type=rnnt", "training.epochs=2", "optim.lr=0.01",
                              "data.max_frames=300", "training.progress=none"])
    dense = run_training(conf, train_dirs=[train], lang_dir=str(tmp_path / "lang"), out_dir=tmp_path / "exp")
    pruned = prune("mono", dense, [train], tmp_path / "mono", PruneOptions(sparsity=0.5, rounds=1, steps_per_round=0),
                   fine_tuning=FINE_TUNING)
    res = prune("pathways", dense, [train], tmp_path / "pw",
                PruneOptions(sparsity=0.5, joint_steps=0, masks_from=str(pruned.out_dir)), fine_tuning=FINE_TUNING)
    texts = {}
    for streaming in (False, True):
        out = tmp_path / f"decode_{streaming}"
        decode_data_dir(res.models["all"], test, out, streaming=streaming)
        texts[streaming] = read_table(out / "text")
        log = (out / "log" / "decode.log").read_text()
        assert "algorithmic latency 80 ms" in log
    assert texts[False] == texts[True] and len(texts[True]) == 4


def _frame_by_frame_greedy(model, enc, length, lang, max_symbols):
    """Textbook greedy search of one utterance: frame by frame, up to max_symbols tokens each."""
    pred_out, state = model.predict(torch.full((1, 1), model.blank, dtype=torch.long), lang)
    hyp = []
    for t in range(length):
        for _ in range(max_symbols):
            best = int(model.joint(enc[:, t: t + 1], pred_out, lang)[0, 0, 0].argmax())
            if best == model.blank:
                break
            hyp.append(best)
            pred_out, state = model.predict(torch.tensor([[best]]), lang, state)
    return hyp


@pytest.mark.parametrize("max_symbols", [1, 2, 10])
def test_label_looping_equals_frame_by_frame_search_per_utterance(model, batch, max_symbols):
    feats, lens = batch
    with torch.inference_mode():
        enc, enc_lens = model.encode(feats, lens)
        batched = _greedy_frames(model, enc, enc_lens, "de", _GreedyCarry(model, 3, "de", "cpu"), max_symbols).hyps
        singles = [_frame_by_frame_greedy(model, enc[i: i + 1], int(enc_lens[i]), "de", max_symbols) for i in range(3)]
    assert batched == singles
    assert max_symbols > 1 or all(len(h) <= int(n) for h, n in zip(batched, enc_lens))
