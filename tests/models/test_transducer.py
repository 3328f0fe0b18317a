"""Tests for asrkit/models/transducer.py and the Emformer of asrkit/models/encoders.py (batched, full and
streaming): the RNN-T model."""

from __future__ import annotations

import pytest
import torch

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models import build_model, model_config_defaults
from asrkit.models.encoders import EmformerEncoder
from asrkit.models.transducer import TransducerModel

ENC = {"type": "emformer", "d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32, "segment_length": 3,
       "left_context": 4, "right_context": 2, "stride": 2, "dropout": 0.0}
TINY = {"encoder": ENC, "head": {"type": "mtl"}, "predictor": {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.0},
        "joiner": {"dim": 16}}
VOCABS = {"en": 7, "de": 9}


def _model(conf=TINY, vocabs=VOCABS, seed=0):
    torch.manual_seed(seed)
    return build_model(conf, feat_dim=5, vocab_sizes=vocabs).eval()


def test_config_defaults_and_errors():
    conf = model_config_defaults({"encoder": {"type": "emformer"}, "predictor": {}})
    assert conf["predictor"] == {"type": "lstm", "embed_dim": 256, "hidden_dim": 512, "num_layers": 1, "dropout": 0.1}
    assert conf["joiner"] == {"type": "additive", "dim": 512, "activation": "tanh"}
    assert conf["encoder"]["segment_length"] == 16 and conf["encoder"]["right_context"] == 4
    assert set(model_config_defaults({"encoder": {"type": "emformer"}})) == {"encoder", "head"}  # CTC emformer
    with pytest.raises(ConfigError, match="model.predictor: unknown option"):
        model_config_defaults({"predictor": {"hiden_dim": 3}})
    with pytest.raises(ConfigError, match="model.joiner.activation: expected one of relu, gelu, silu, tanh"):
        model_config_defaults({"joiner": {"activation": "sigmoid"}})
    with pytest.raises(ConfigError, match="the emformer takes relu, gelu or silu"):
        model_config_defaults({"encoder": {**ENC, "activation": "tanh"}})
    with pytest.raises(ConfigError, match="d_model .16. must be divisible by num_heads .3."):
        model_config_defaults({"encoder": {**ENC, "num_heads": 3}})


def test_model_parts_counts_and_rebuild():
    model = _model()
    assert isinstance(model, TransducerModel) and isinstance(model.encoder, EmformerEncoder)
    assert model.streaming and model.frame_subsampling == 2
    # (segment 3 + right context 2) x stride 2 = 10 input frames = 100 ms at 10 ms.
    assert model.algorithmic_latency_ms() == 100.0 and model.algorithmic_latency_ms(25.0) == 250.0
    counts = model.param_counts()
    assert counts["predictor"] == 7 * 8 + 9 * 8 + 4 * 16 * (8 + 16) + 2 * 4 * 16
    assert counts["joiner"] == 16 * 16 + 16 + 16 * 16
    assert counts["head/de"] == 16 * 9 + 9
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    rebuilt = build_model(model.conf, feat_dim=5, vocab_sizes=VOCABS)
    rebuilt.load_state_dict(model.state_dict())
    joint = _model({**TINY, "head": {"type": "linear"}}, {"all": 7})
    assert list(joint.predictor.embeddings) == ["shared"]  # joint tokens: one embedding
    with pytest.raises(AsrkitError, match="needs tokens"):
        model(torch.randn(1, 4, 5), torch.tensor([4]), "en")


def test_batched_full_and_streaming_encoder_outputs_agree():
    model = _model()
    feats, lens = torch.randn(3, 23, 5), torch.tensor([23, 17, 5])
    with torch.no_grad():
        hidden, out_lens = model.encode(feats, lens)
        assert out_lens.tolist() == [12, 9, 3]
        assert hidden.shape == (3, 12, 16) and not hidden[1, 9:].any()
        for i in range(3):
            n = int(lens[i])
            alone, _ = model.encode(feats[i: i + 1, :n], lens[i: i + 1])
            torch.testing.assert_close(alone[0, : out_lens[i]], hidden[i, : out_lens[i]], atol=1e-5, rtol=0)
            chunks = list(model.encoder.stream(feats[i: i + 1, :n], n))
            assert [c.shape[1] for c in chunks][:-1] == [3] * (len(chunks) - 1)  # one segment per step
            torch.testing.assert_close(torch.cat(chunks, 1)[0], hidden[i, : out_lens[i]], atol=1e-5, rtol=0)
        # The three as streams in lockstep: each stream's valid frames are its own stream's output, and
        # a stream that ended yields nothing more.
        steps = list(model.encoder.stream_batch(feats, lens))
        assert len(steps) == 4 and [int(n[2]) for _, n in steps] == [3, 0, 0, 0]
        for i in range(3):
            got = torch.cat([h[i, : int(n[i])] for h, n in steps])
            torch.testing.assert_close(got, hidden[i, : out_lens[i]], atol=1e-5, rtol=0)


def test_streaming_depends_only_on_the_past_and_right_context():
    model = _model()
    feats = torch.randn(1, 30, 5)
    changed = feats.clone()
    changed[:, 20:] += 5.0  # frames from 20 on: output frame 10, segment 3 (frames 9..11) and later
    with torch.no_grad():
        a = torch.cat(list(model.encoder.stream(feats, 30)), 1)
        b = torch.cat(list(model.encoder.stream(changed, 30)), 1)
    # Segment 2 (output frames 6..8) looks ahead 2 frames (9, 10) = input frames 18..21: it sees the change.
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:9], b[:, 6:9])


def test_transducer_loss_is_batch_invariant_and_trains():
    model = _model()
    feats, lens = torch.randn(3, 20, 5), torch.tensor([20, 14, 9])
    tokens, token_lens = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [8, 0, 0, 0]]), torch.tensor([4, 2, 1])
    loss, norm = model.transducer_loss(feats, lens, tokens, token_lens, "de")
    assert norm == 3.0 and torch.isfinite(loss)
    singles = [model.transducer_loss(feats[i: i + 1, : lens[i]], lens[i: i + 1], tokens[i: i + 1, : token_lens[i]],
                                     token_lens[i: i + 1], "de")[0] for i in range(3)]
    torch.testing.assert_close(loss, torch.stack(singles).mean(), atol=1e-4, rtol=1e-5)
    same, _ = model(feats, lens, "de", tokens=tokens, token_lens=token_lens)
    torch.testing.assert_close(same, loss)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    first = None
    for _ in range(12):  # overfit one batch
        opt.zero_grad()
        loss, _ = model.transducer_loss(feats, lens, tokens, token_lens, "de")
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.7 * first
    with pytest.raises(ConfigError, match="language 'fr' has no output layer"):
        model.transducer_loss(feats, lens, tokens, token_lens, "fr")


def test_trainer_trains_a_transducer(tmp_path):
    from asrkit.models.modelfile import load_model
    from asrkit.text.tokenizer import make_lang_dir
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training
    from tests.training.conftest import make_toy_data_dir

    train = make_toy_data_dir(tmp_path, "train", utts_per_lang=6, seed=1)
    make_lang_dir([train], tmp_path / "lang", token_type="char")
    conf = load_config(None, [f"model.encoder={ENC}".replace("'", ""), "model.predictor={embed_dim: 8, hidden_dim: 16}",
                              "model.joiner={dim: 16}", "objective.type=rnnt", "training.epochs=2",
                              "data.max_frames=300", "training.ema={decay: 0.9}", "training.progress=none"])
    final = run_training(conf, train_dirs=[train], valid_dirs=[train], lang_dir=str(tmp_path / "lang"),
                         out_dir=tmp_path / "exp")
    model, meta = load_model(final)
    assert isinstance(model, TransducerModel) and meta.objective == "rnnt" and meta.frame_subsampling == 2
    assert (tmp_path / "exp" / "ema.pt").is_file()
    assert "valid_loss" in (tmp_path / "exp" / "log" / "train.log").read_text()


def test_auxiliary_ctc_loss_mixes_with_the_rnnt_loss():
    aux = {**TINY, "aux_ctc": {"weight": 0.25}}
    assert model_config_defaults(aux)["aux_ctc"] == {"weight": 0.25}
    for bad in ({"weight": 0}, {"weight": 1.5}, {"w": 0.3}, 0.3):
        with pytest.raises(ConfigError, match="model.aux_ctc"):
            model_config_defaults({**TINY, "aux_ctc": bad})
    with pytest.raises(ConfigError, match="model.aux_ctc: an auxiliary CTC loss is for transducers"):
        model_config_defaults({"encoder": ENC, "aux_ctc": {"weight": 0.3}})
    plain, mixed = _model(), _model(aux)
    # The same seed builds the same transducer; the CTC layer is built after it.
    missing = mixed.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("ctc_head.") for k in missing)
    counts = mixed.param_counts()
    assert counts["aux_ctc_head"] == 16 * 7 + 7 + 16 * 9 + 9 and counts["total"] == sum(
        p.numel() for p in mixed.parameters())
    assert {id(p) for p in mixed.ctc_head.language_parameters("de")} <= {id(p) for p in mixed.language_parameters("de")}
    feats, lens = torch.randn(2, 20, 5), torch.tensor([20, 14])
    tokens, token_lens = torch.tensor([[1, 2, 3], [5, 6, 0]]), torch.tensor([3, 2])
    rnnt, _ = plain.transducer_loss(feats, lens, tokens, token_lens, "de")
    hidden, out_lens = mixed.encode(feats, lens)
    log_probs = mixed.ctc_head(hidden, "de").log_softmax(-1).transpose(0, 1)
    ctc = torch.nn.functional.ctc_loss(log_probs, tokens, out_lens, token_lens, reduction="sum") / 2
    loss, norm = mixed.transducer_loss(feats, lens, tokens, token_lens, "de")
    assert norm == 2.0
    torch.testing.assert_close(loss, 0.75 * rnnt + 0.25 * ctc)
    loss.backward()
    assert mixed.ctc_head.outputs["de"].weight.grad.abs().sum() > 0
    assert mixed.ctc_head.outputs["en"].weight.grad is None
