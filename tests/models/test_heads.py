"""Tests for asrkit/models/heads.py: per-language layers, LRMF parameter counts and SVD initialisation."""

from __future__ import annotations

import pytest
import torch

from asrkit.errors import ConfigError
from asrkit.models.heads import LinearHead, LrmfHead, MtlHead


def test_linear_head_shared_by_all_languages():
    head = LinearHead(6, {"all": 9})
    h = torch.randn(2, 3, 6)
    assert head(h, "en").shape == (2, 3, 9)
    torch.testing.assert_close(head(h, "xx"), head.output(h))


def test_linear_head_with_named_languages_rejects_others():
    head = LinearHead(6, {"en": 9, "de": 9})
    assert head(torch.randn(1, 2, 6), "de").shape == (1, 2, 9)
    with pytest.raises(ConfigError, match=r"language 'fr' has no output layer in this model \(languages: en, de\)"):
        head(torch.randn(1, 2, 6), "fr")


def test_linear_head_rejects_different_sizes():
    with pytest.raises(ConfigError, match="vocabulary sizes differ \\(en=9, de=7\\); use head type 'mtl' or 'lrmf'"):
        LinearHead(6, {"en": 9, "de": 7})


def test_mtl_head_picks_the_language_layer():
    torch.manual_seed(0)
    head = MtlHead(6, {"en": 5, "de": 7})
    h = torch.randn(2, 3, 6)
    assert head(h, "en").shape == (2, 3, 5) and head(h, "de").shape == (2, 3, 7)
    w, b = head.outputs["de"].weight, head.outputs["de"].bias
    torch.testing.assert_close(head(h, "de"), h @ w.T + b)
    with pytest.raises(ConfigError, match=r"language 'fr' has no output layer in this model \(languages: en, de\)"):
        head(h, "fr")


def test_lrmf_head_forward_is_b_after_a():
    torch.manual_seed(0)
    head = LrmfHead(6, {"en": 5, "de": 7}, rank=3)
    h = torch.randn(2, 3, 6)
    a = head.shared.weight
    assert a.shape == (3, 6) and head.shared.bias is None
    b, bias = head.outputs["de"].weight, head.outputs["de"].bias
    torch.testing.assert_close(head(h, "de"), (h @ a.T) @ b.T + bias)


def test_lrmf_parameter_counts_closed_form():
    hidden, rank, sizes = 40, 8, {"en": 30, "de": 50, "fr": 20}
    head = LrmfHead(hidden, sizes, rank)
    actual = sum(p.numel() for p in head.parameters())
    assert actual == LrmfHead.lrmf_params(hidden, sizes, rank) == 40 * 8 + (8 * 30 + 30) + (8 * 50 + 50) + (8 * 20 + 20)
    full = MtlHead(hidden, sizes)
    assert sum(p.numel() for p in full.parameters()) == LrmfHead.full_rank_params(hidden, sizes) == 41 * 100


def test_svd_init_at_full_rank_reproduces_mtl_logits():
    torch.manual_seed(0)
    mtl = MtlHead(8, {"en": 5, "de": 7})  # W is 12 x 8: full rank 8
    lrmf = LrmfHead.from_mtl(mtl, rank=8)
    h = torch.randn(3, 4, 8)
    for lang in ("en", "de"):
        torch.testing.assert_close(lrmf(h, lang), mtl(h, lang), rtol=0, atol=1e-4)
        torch.testing.assert_close(lrmf.outputs[lang].bias, mtl.outputs[lang].bias)


def test_svd_init_low_rank_is_the_best_rank_r_approximation():
    torch.manual_seed(0)
    mtl = MtlHead(8, {"en": 5, "de": 7})
    lrmf = LrmfHead.from_mtl(mtl, rank=3)
    w = torch.cat([mtl.outputs["en"].weight, mtl.outputs["de"].weight]).detach()
    approx = torch.cat([lrmf.outputs["en"].weight, lrmf.outputs["de"].weight]) @ lrmf.shared.weight
    s = torch.linalg.svdvals(w.double())
    # Eckart-Young: the Frobenius error of the best rank-3 approximation is the tail of the spectrum.
    err = torch.linalg.matrix_norm((w - approx.detach()).double())
    assert float(err) == pytest.approx(float(s[3:].square().sum().sqrt()), rel=1e-5)


def test_svd_init_rejects_rank_above_svd_rank():
    mtl = MtlHead(8, {"en": 2, "de": 3})
    with pytest.raises(ConfigError, match="needs 1 <= rank <= 5 .*got 6"):
        LrmfHead.from_mtl(mtl, rank=6)


def test_add_languages_to_each_head():
    lrmf = LrmfHead(6, {"en": 5}, rank=3)
    a_before = lrmf.shared.weight.detach().clone()
    lrmf.add_languages({"sw": 11})
    assert lrmf.languages == ["en", "sw"] and lrmf.outputs["sw"].in_features == 3
    assert lrmf(torch.randn(1, 2, 6), "sw").shape == (1, 2, 11)
    assert torch.equal(lrmf.shared.weight, a_before)
    mtl = MtlHead(6, {"en": 5})
    mtl.add_languages({"sw": 11})
    assert mtl.outputs["sw"].weight.shape == (11, 6)
    with pytest.raises(ConfigError, match="language\\(s\\) en already have an output layer"):
        mtl.add_languages({"en": 5})
    lin = LinearHead(6, {"en": 5})
    lin.add_languages({"sw": 5})
    assert lin(torch.randn(1, 1, 6), "sw").shape == (1, 1, 5)
    with pytest.raises(ConfigError, match="one output layer of size 5; cannot add fr=4"):
        lin.add_languages({"fr": 4})


@pytest.mark.parametrize("sizes, message", [
    ({}, "vocab_sizes is empty"),
    ({"en": 0}, "vocabulary size for language 'en' must be a positive integer, got 0"),
    ({"en.us": 3}, "invalid language tag 'en.us'"),
])
def test_bad_vocab_sizes(sizes, message):
    with pytest.raises(ConfigError, match=message):
        MtlHead(4, sizes)
