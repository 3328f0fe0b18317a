"""Tests for asrkit/pruning/masks.py: prunable parameters, magnitude ranking, packed mask files, stats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from asrkit.errors import ConfigError
from asrkit.models import build_model
from asrkit.pruning.masks import foreign_parameter_names, magnitude_mask, mask_stats, prunable_parameters

TRANSDUCER = {"encoder": {"type": "emformer", "d_model": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 8,
                          "segment_length": 2, "left_context": 2, "right_context": 1, "stride": 2, "dropout": 0.0},
              "head": {"type": "mtl"}, "predictor": {"embed_dim": 4, "hidden_dim": 6, "dropout": 0.0},
              "joiner": {"dim": 8}}


def test_prunable_parameters_of_a_transducer():
    model = build_model(TRANSDUCER, feat_dim=3, vocab_sizes={"en": 5, "de": 6})
    names = list(prunable_parameters(model))
    assert "encoder.input_linear.weight" in names and "predictor.lstm.weight_ih_l0" in names
    assert "predictor.lstm.weight_hh_l0" in names and "head.outputs.de.weight" in names
    assert "encoder.emformer.emformer_layers.0.attention.emb_to_query.weight" in names
    assert not any(n.endswith("bias") or "layer_norm" in n or "embeddings" in n for n in names)
    with_extra = prunable_parameters(model, include_biases=True, include_embeddings=True)
    assert "predictor.embeddings.de.weight" in with_extra and "predictor.lstm.bias_ih_l0" in with_extra
    assert "head.outputs.en.bias" in with_extra
    assert foreign_parameter_names(model, "en") == {"head.outputs.de.weight", "head.outputs.de.bias",
                                                    "predictor.embeddings.de.weight"}


def test_conv_and_attention_weights_are_prunable():
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.MultiheadAttention(4, 2), nn.LayerNorm(4))
    assert list(prunable_parameters(model)) == ["0.weight", "1.in_proj_weight", "1.out_proj.weight"]


def test_layer_and_global_magnitude_ranking():
    params = {"a": torch.tensor([[1.0, -5.0], [0.5, 3.0]]), "b": torch.tensor([0.1, 0.2, 4.0, -0.3])}
    layer = magnitude_mask(params, 0.5, scope="layer")
    assert layer["a"].tolist() == [[False, True], [False, True]]
    assert layer["b"].tolist() == [False, False, True, True]
    glob = magnitude_mask(params, 0.5, scope="global")  # keeps the 4 largest of 8: 5, 4, 3, 1
    assert glob["a"].tolist() == [[True, True], [False, True]] and glob["b"].tolist() == [False, False, True, False]
    # Iterative pruning only removes: an earlier mask's pruned weights stay pruned, however large.
    earlier = {"a": torch.tensor([[True, False], [True, True]]), "b": torch.ones(4, dtype=torch.bool)}
    later = magnitude_mask(params, 0.5, scope="layer", current=earlier)
    assert later["a"].tolist() == [[True, False], [False, True]]
    with pytest.raises(ConfigError, match="would keep"):
        magnitude_mask(params, 0.1, scope="layer", current=earlier)
    excluded = magnitude_mask(params, 0.5, scope="global", exclude={"b"})
    assert not excluded["b"].any() and int(excluded["a"].sum()) == 2
    with pytest.raises(ConfigError, match="sparsity must be in"):
        magnitude_mask(params, 1.0)


def test_stats_sparsity_union_and_iou():
    a = {"x": torch.tensor([True, True, False, False]), "h": torch.tensor([True, False])}
    b = {"x": torch.tensor([False, True, True, False]), "h": torch.tensor([False, False])}
    stats = mask_stats({"a": a, "b": b}, foreign={"b": {"h"}}, fixed_params={"a": 10, "b": 10}, model_params=30)
    assert stats["languages"] == ["a", "b"]
    assert stats["languages_sparsity"] == {"a": 0.5, "b": 0.5}  # b never uses h
    assert stats["union_sparsity"] == pytest.approx(1 - 4 / 6)
    assert stats["layers"]["x"] == {"size": 4, "a": 0.5, "b": 0.5, "union": 0.25}
    assert stats["iou"]["a"]["b"] == pytest.approx(1 / 4) and stats["iou"]["a"]["a"] == 1.0
    assert stats["pathway_params"] == {"a": 13, "b": 12} and stats["union_params"] == 4 + 24
