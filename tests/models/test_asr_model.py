"""Tests for asrkit/models/asr_model.py (build_model, AsrModel) and asrkit/models/specaugment.py."""

from __future__ import annotations

import pytest
import torch

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models import AsrModel, build_model, lrmf_model_from_mtl, model_config_defaults
from asrkit.models.specaugment import SpecAugment

TINY = {
    "dnn": {"type": "dnn", "context": 1, "num_layers": 2, "hidden_dim": 16, "bottleneck_dim": 8},
    "lstm": {"type": "lstm", "hidden_dim": 8, "num_layers": 1, "bidirectional": True},
    "conformer": {"type": "conformer", "d_model": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 16,
                  "depthwise_conv_kernel_size": 3, "subsampling_channels": 4},
}
VOCABS = {"en": 7, "de": 9}


@pytest.mark.parametrize("enc", ["dnn", "lstm", "conformer"])
@pytest.mark.parametrize("head", ["mtl", "lrmf"])
def test_forward_shapes_and_lengths(enc, head):
    torch.manual_seed(0)
    model = build_model({"encoder": TINY[enc], "head": {"type": head, **({"rank": 4} if head == "lrmf" else {})}},
                        feat_dim=10, vocab_sizes=VOCABS)
    assert isinstance(model, AsrModel)
    lens = torch.tensor([21, 15])
    logits, out_lens = model(torch.randn(2, 21, 10), lens, "de")
    sub = model.frame_subsampling
    assert sub == (4 if enc == "conformer" else 1)
    expected = [4, 3] if enc == "conformer" else [21, 15]
    assert out_lens.tolist() == expected == model.output_lengths(lens).tolist()
    assert logits.shape == (2, expected[0], 9)
    assert model(torch.randn(2, 21, 10), lens, "en")[0].shape[-1] == 7


def test_linear_head_with_all_vocab():
    model = build_model({"encoder": TINY["dnn"], "head": {"type": "linear"}}, feat_dim=10, vocab_sizes={"all": 5})
    assert model(torch.randn(1, 4, 10), torch.tensor([4]), "anything")[0].shape == (1, 4, 5)
    assert model.param_counts() == {"encoder": (30 * 16 + 16) + (16 * 16 + 16) + (16 * 8 + 8),
                                    "head/shared": 8 * 5 + 5, "total": 904 + 45}


def test_resolved_config_and_defaults():
    model = build_model({"encoder": TINY["dnn"], "head": {"type": "lrmf", "rank": 4}}, feat_dim=10,
                        vocab_sizes=VOCABS)
    assert model.conf == {"encoder": {"type": "dnn", "context": 1, "hidden_dims": [16, 16], "bottleneck_dim": 8,
                                      "dropout": 0.0, "subsample": 1},
                          "head": {"type": "lrmf", "rank": 4}}
    rebuilt = build_model(model.conf, feat_dim=model.feat_dim, vocab_sizes=model.vocab_sizes)
    rebuilt.load_state_dict(model.state_dict())  # the resolved conf rebuilds the same architecture
    defaults = model_config_defaults()
    assert defaults["encoder"]["type"] == "conformer" and defaults["head"] == {"type": "linear"}
    assert defaults["encoder"]["subsampling_channels"] == defaults["encoder"]["d_model"]
    assert model_config_defaults({"head": {"type": "lrmf"}})["head"] == {"type": "lrmf", "rank": 64}
    assert model_config_defaults({"head": None, "predictor": None}) == defaults


@pytest.mark.parametrize("head", [{"type": "linear"}, {"type": "mtl"}, {"type": "lrmf", "rank": 4}])
def test_blank_bias_starts_every_output_layer_at_blank(head):
    # Every frame starts out as blank (output 0) with most of the probability; the other outputs keep
    # PyTorch's initialisation, and the resolved config keeps the option so decode rebuilds the same.
    torch.manual_seed(0)
    vocabs = {"en": 7, "de": 7} if head["type"] == "linear" else VOCABS
    model = build_model({"encoder": TINY["dnn"], "head": {**head, "blank_bias": 6.0}}, feat_dim=10,
                        vocab_sizes=vocabs)
    assert model.conf["head"]["blank_bias"] == 6.0
    for lang in vocabs:
        posteriors = model(torch.randn(2, 30, 10), torch.tensor([30, 30]), lang)[0].softmax(-1)
        assert posteriors[..., 0].min() > 0.9
    torch.manual_seed(0)
    plain = build_model({"encoder": TINY["dnn"], "head": head}, feat_dim=10, vocab_sizes=vocabs)
    assert "blank_bias" not in plain.conf["head"]
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, plain.state_dict()[k])]
    assert changed and all(k.endswith(".bias") for k in changed)
    assert all(torch.equal(model.state_dict()[k][1:], plain.state_dict()[k][1:]) for k in changed)


@pytest.mark.parametrize("conf, message", [
    ({"encoder": {"type": "tdnn"}}, r"model.encoder.type: unknown type 'tdnn' \(choose from dnn, lstm, conformer, emformer\)"),
    ({"encoder": {"type": "lstm", "hiden_dim": 3}}, r"model.encoder: unknown option\(s\) 'hiden_dim' for type 'lstm'"),
    ({"encoder": {"type": "dnn", "dropout": 1.5}}, r"model.encoder.dropout: expected a number in \[0, 1\), got 1.5"),
    ({"encoder": {"type": "dnn", "num_layers": 2}}, "num_layers and hidden_dim go together"),
    ({"encoder": {"type": "dnn", "num_layers": 2, "hidden_dim": 3, "hidden_dims": [4]}}, "either hidden_dims or"),
    ({"encoder": {"type": "conformer", "d_model": 10, "num_heads": 4}}, r"d_model \(10\) must be divisible"),
    ({"encoder": {"type": "conformer", "depthwise_conv_kernel_size": 4}}, "must be odd, got 4"),
    ({"encoder": {"type": "lstm", "hidden_dim": 8, "proj_size": 8}}, "proj_size: must be smaller than hidden_dim"),
    ({"head": {"type": "mtl", "rank": 4}}, r"model.head: unknown option\(s\) 'rank' for type 'mtl'"),
    ({"head": {"type": "lrmf", "rank": 0}}, "model.head.rank: expected a positive integer, got 0"),
    ({"decoder": {}}, r"model: unknown section\(s\) 'decoder'"),
])
def test_config_errors_name_the_key(conf, message):
    with pytest.raises(ConfigError, match=message):
        build_model(conf, feat_dim=10, vocab_sizes=VOCABS)


def test_wrong_feature_dimension():
    model = build_model({"encoder": TINY["dnn"]}, feat_dim=10, vocab_sizes={"all": 5})
    with pytest.raises(AsrkitError, match=r"features of shape \(1, 4, 13\) do not fit this model.*\(batch, time, 10\)"):
        model(torch.randn(1, 4, 13), torch.tensor([4]), "en")


def test_unknown_language_lists_model_languages():
    model = build_model({"encoder": TINY["dnn"], "head": {"type": "mtl"}}, feat_dim=10, vocab_sizes=VOCABS)
    with pytest.raises(ConfigError, match=r"language 'fr' has no output layer in this model \(languages: en, de\)"):
        model(torch.randn(1, 4, 10), torch.tensor([4]), "fr")


def test_lrmf_param_counts():
    model = build_model({"encoder": TINY["lstm"], "head": {"type": "lrmf", "rank": 4}}, feat_dim=10,
                        vocab_sizes=VOCABS)
    counts = model.param_counts()
    hidden = 16  # bidirectional 8
    assert counts["head/shared"] == hidden * 4
    assert counts["head/en"] == 4 * 7 + 7 and counts["head/de"] == 4 * 9 + 9
    assert counts["head/full_rank_equivalent"] == (hidden * 7 + 7) + (hidden * 9 + 9)
    lrmf_total = hidden * 4 + (4 * 7 + 7) + (4 * 9 + 9)
    assert counts["head/reduction_percent"] == pytest.approx(100 * (1 - lrmf_total / (hidden * 16 + 16)))
    assert counts["total"] == counts["encoder"] + lrmf_total == sum(p.numel() for p in model.parameters())


def test_add_languages_and_freeze():
    model = build_model({"encoder": TINY["dnn"], "head": {"type": "lrmf", "rank": 4}}, feat_dim=10,
                        vocab_sizes=VOCABS)
    model.freeze("shared")
    model.add_languages({"sw": 11})
    assert model.vocab_sizes == {"en": 7, "de": 9, "sw": 11} and model.languages == ["en", "de", "sw"]
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert not model.head.shared.weight.requires_grad
    assert all(p.requires_grad for p in model.head.outputs["sw"].parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"head.outputs.{lang}.{w}" for lang in ("en", "de", "sw") for w in ("weight", "bias")}
    logits, _ = model(torch.randn(1, 5, 10), torch.tensor([5]), "sw")
    assert logits.shape == (1, 5, 11)
    logits.sum().backward()
    assert model.head.shared.weight.grad is None and model.head.outputs["sw"].weight.grad is not None
    model.freeze("encoder")
    assert model.head.shared.weight.requires_grad and not any(p.requires_grad for p in model.encoder.parameters())
    model.freeze("none")
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ConfigError, match="freeze: unknown part 'head'"):
        model.freeze("head")


def test_freeze_shared_with_linear_head_is_refused():
    model = build_model({"encoder": TINY["dnn"]}, feat_dim=10, vocab_sizes={"all": 5})
    with pytest.raises(ConfigError, match="would leave nothing to train"):
        model.freeze("shared")


def test_lrmf_model_from_mtl_keeps_outputs_at_full_rank():
    torch.manual_seed(0)
    mtl = build_model({"encoder": TINY["dnn"], "head": {"type": "mtl"}}, feat_dim=10, vocab_sizes=VOCABS).eval()
    lrmf = lrmf_model_from_mtl(mtl, rank=8).eval()  # H = 8 (bottleneck): full rank
    assert lrmf.conf["head"] == {"type": "lrmf", "rank": 8} and lrmf.conf["encoder"] == mtl.conf["encoder"]
    x, lens = torch.randn(2, 6, 10), torch.tensor([6, 4])
    with torch.no_grad():
        torch.testing.assert_close(lrmf(x, lens, "de")[0], mtl(x, lens, "de")[0], rtol=0, atol=1e-4)
    assert lrmf.encoder is not mtl.encoder


# --- SpecAugment (asrkit/models/specaugment.py) ------------------------------------------------

def test_specaugment_masks_within_lengths_and_is_seeded():
    aug = SpecAugment({"num_freq_masks": 0, "num_time_masks": 3, "time_mask_width": 5, "time_mask_ratio": 1.0})
    feats = torch.ones(4, 30, 6)
    lens = torch.tensor([30, 20, 8, 3])
    out = aug(feats, lens, generator=torch.Generator().manual_seed(7))
    again = aug(feats, lens, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out, again) and torch.equal(feats, torch.ones(4, 30, 6))  # input untouched
    assert torch.all(out[1, 20:] == 1) and torch.all(out[2, 8:] == 1) and torch.all(out[3, 3:] == 1)
    frame_masked = out[..., 0] == 0
    assert torch.all((out == 0) == frame_masked.unsqueeze(-1))  # time masks cover whole frames
    assert 0 < int(frame_masked[0].sum()) <= 15
    assert int(frame_masked[3].sum()) <= 3
    aug.eval()
    assert aug(feats, lens) is feats


def test_specaugment_frequency_masks_and_mean_fill():
    aug = SpecAugment({"num_time_masks": 0, "num_freq_masks": 1, "freq_mask_width": 3, "fill": "mean"})
    feats = torch.arange(2 * 5 * 8, dtype=torch.float32).view(2, 5, 8)
    lens = torch.tensor([5, 2])
    g = torch.Generator().manual_seed(0)
    outs = [aug(feats, lens, generator=g) for _ in range(20)]
    widths = {int((o[0, 0] != feats[0, 0]).sum()) for o in outs}
    assert widths <= {0, 1, 2, 3} and len(widths) > 1
    for o in outs:
        changed = o[1] != feats[1]
        assert torch.all(changed == changed[0])  # same bins masked in every frame
        assert torch.all(o[1][changed] == feats[1, :2].mean())


def test_specaugment_config_errors():
    with pytest.raises(ConfigError, match=r"specaugment: unknown option\(s\) 'time_masks'"):
        SpecAugment({"time_masks": 2})
    with pytest.raises(ConfigError, match="specaugment.time_mask_ratio: expected a number in \\[0, 1\\], got 2"):
        SpecAugment({"time_mask_ratio": 2})
