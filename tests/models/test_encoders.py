"""Tests for asrkit/models/encoders.py: shapes, output lengths, Kaldi splicing, padding invariance."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models.build import build_model
from asrkit.models.encoders import (
    ConformerEncoder,
    Conv2dSubsampling,
    DnnEncoder,
    LstmEncoder,
    splice_frames,
    subsample_frames,
)


def _pad(mats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([m.shape[0] for m in mats])
    batch = torch.zeros(len(mats), int(lens.max()), mats[0].shape[1])
    for i, m in enumerate(mats):
        batch[i, : m.shape[0]] = torch.from_numpy(np.array(m))
    return batch, lens


def _first_two(path) -> dict[str, np.ndarray]:
    feats = {}
    for key, mat in kaldiio.load_ark(str(path)):
        feats[key] = mat
        if len(feats) == 2:
            break
    return feats


def _tiny_conformer(**kw) -> ConformerEncoder:
    torch.manual_seed(0)
    return ConformerEncoder(10, d_model=16, num_layers=2, num_heads=2, ffn_dim=32, depthwise_conv_kernel_size=5,
                            subsampling_channels=4, **kw).eval()


def test_splice_matches_kaldi_splice_feats(kaldi_fixtures):
    # splice-feats --left-context=3 --right-context=3 on the first two utterances, batched here with
    # padding, so the shorter one's right edge must replicate its own last frame, not the padding.
    feats = _first_two(kaldi_fixtures / "fbank80.ark")
    expected = dict(kaldiio.load_ark(str(kaldi_fixtures / "fbank80_splice3.ark")))
    assert list(expected) == list(feats)
    batch, lens = _pad(list(feats.values()))
    spliced = splice_frames(batch, lens, 3, 3)
    assert spliced.shape == (2, 318, 560)
    for i, key in enumerate(feats):
        n = int(lens[i])
        np.testing.assert_allclose(spliced[i, :n].numpy(), expected[key], rtol=0, atol=1e-5)


def test_subsample_matches_kaldi_subsample_feats(kaldi_fixtures):
    feats = _first_two(kaldi_fixtures / "fbank80.ark")
    expected = dict(kaldiio.load_ark(str(kaldi_fixtures / "fbank80_subsample3.ark")))
    batch, lens = _pad(list(feats.values()))
    sub, sub_lens = subsample_frames(batch, lens, 3)
    assert sub_lens.tolist() == [106, 87]
    for i, key in enumerate(feats):
        np.testing.assert_array_equal(sub[i, : int(sub_lens[i])].numpy(), expected[key])


def test_subsample_length_is_ceiling():
    x = torch.arange(10.0).view(1, 10, 1)
    sub, lens = subsample_frames(x, torch.tensor([10]), 3)
    assert lens.tolist() == [4]
    assert sub.flatten().tolist() == [0.0, 3.0, 6.0, 9.0]


def test_dnn_shapes_and_lengths():
    enc = DnnEncoder(10, [32, 24], context=2, bottleneck_dim=8, subsample=3)
    assert enc.output_dim == 8 and enc.subsampling == 3
    assert enc.layers[0].in_features == 50  # (2 * 2 + 1) * 10
    h, out_lens = enc(torch.randn(2, 10, 10), torch.tensor([10, 7]))
    assert h.shape == (2, 4, 8)
    assert out_lens.tolist() == [4, 3] == enc.output_lengths(torch.tensor([10, 7])).tolist()
    assert torch.all(h[1, 3] == 0)  # padded output frame


def test_lstm_shapes_and_lengths():
    enc = LstmEncoder(10, hidden_dim=12, num_layers=2, bidirectional=True, proj_size=5, subsample=2)
    assert enc.output_dim == 10
    h, out_lens = enc(torch.randn(3, 9, 10), torch.tensor([9, 4, 1]))
    assert h.shape == (3, 5, 10)
    assert out_lens.tolist() == [5, 2, 1]
    assert torch.all(h[1, 2:] == 0) and torch.all(h[2, 1:] == 0)
    uni = LstmEncoder(10, hidden_dim=12, num_layers=1, bidirectional=False)
    assert uni.output_dim == 12 and uni(torch.randn(1, 5, 10), torch.tensor([5]))[0].shape == (1, 5, 12)


@pytest.mark.parametrize("length", [7, 8, 9, 10, 11, 12, 13, 17, 31, 64, 101])
def test_conformer_subsampling_formula_matches_output(length):
    enc = _tiny_conformer()
    with torch.no_grad():
        h, out_lens = enc(torch.randn(1, length, 10), torch.tensor([length]))
    assert h.shape == (1, ((length - 1) // 2 - 1) // 2, 16)
    assert out_lens.tolist() == [h.shape[1]] == enc.output_lengths(torch.tensor([length])).tolist()
    assert enc.subsampling == 4


def test_conv2d_subsampling_lengths_table():
    lens = torch.tensor([6, 7, 8, 9, 10, 11, 100, 1001])
    assert Conv2dSubsampling.output_lengths(lens).tolist() == [0, 1, 1, 1, 1, 2, 24, 249]


def test_conformer_rejects_too_short_utterance():
    enc = _tiny_conformer()
    with pytest.raises(AsrkitError, match="utterance of 6 frames is too short.*at least 7"):
        enc(torch.randn(2, 20, 10), torch.tensor([20, 6]))


def test_conformer_batch_padded_beyond_longest_utterance():
    enc = _tiny_conformer()
    x = torch.randn(1, 30, 10)
    with torch.no_grad():
        ref, _ = enc(x, torch.tensor([30]))
        padded = torch.cat([x, torch.randn(1, 12, 10)], dim=1)
        out, out_lens = enc(padded, torch.tensor([30]))
    assert out.shape == ref.shape and out_lens.tolist() == [6]
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def _padding_invariance(enc, atol: float):
    torch.manual_seed(1)
    short = torch.randn(1, 23, 10)
    long = torch.randn(1, 41, 10)
    with torch.no_grad():
        alone, alone_lens = enc(short, torch.tensor([23]))
        # Garbage (not zeros) in the padding: it must not reach the valid frames.
        padded_short = torch.cat([short, 100 * torch.randn(1, 18, 10)], dim=1)
        batched, batched_lens = enc(torch.cat([long, padded_short]), torch.tensor([41, 23]))
    n = int(alone_lens[0])
    assert int(batched_lens[1]) == n
    torch.testing.assert_close(batched[1, :n], alone[0, :n], rtol=0, atol=atol)
    assert torch.all(batched[1, n:] == 0)


def test_dnn_padding_invariance():
    torch.manual_seed(0)
    _padding_invariance(DnnEncoder(10, [16, 16], context=3).eval(), atol=0.0)


def test_lstm_padding_invariance():
    torch.manual_seed(0)
    # Not bit-exact: BLAS may block a matmul differently for another batch size (diffs ~1e-7).
    _padding_invariance(LstmEncoder(10, hidden_dim=8, num_layers=2, bidirectional=True).eval(), atol=1e-6)


def test_conformer_padding_invariance():
    _padding_invariance(_tiny_conformer(), atol=1e-4)


def test_conformer_without_padding_mask_would_leak():
    # Guards the masking hook: with it removed the short utterance's output does change, so the
    # invariance test above is not passing by accident (e.g. a kernel too small to reach the padding).
    enc = _tiny_conformer()
    layer = enc.conformer.conformer_layers[0]
    short = torch.randn(1, 23, 10)
    with torch.no_grad():
        alone, _ = enc(short, torch.tensor([23]))
        depthwise = layer.conv_module.sequential[2]
        original = depthwise.register_forward_pre_hook
        depthwise.register_forward_pre_hook = lambda fn: original(lambda m, a: None)
        batched, _ = enc(torch.cat([torch.randn(1, 41, 10), torch.cat([short, torch.randn(1, 18, 10)], 1)]),
                         torch.tensor([41, 23]))
    assert (batched[1, :4] - alone[0, :4]).abs().max() > 1e-3


def test_lstm_frame_stacking_lengths_and_padding_invariance():
    from asrkit.models.encoders import LstmEncoder

    torch.manual_seed(0)
    enc = LstmEncoder(5, hidden_dim=8, num_layers=1, bidirectional=True, stack=3, subsample=2).eval()
    assert enc.subsampling == 6
    lens = torch.tensor([13, 7, 6, 1])
    assert enc.output_lengths(lens).tolist() == [3, 2, 1, 1]  # ceil(ceil(T / 3) / 2)
    feats = torch.randn(4, 13, 5)
    out, out_lens = enc(feats, lens)
    assert out.shape == (4, 3, 16) and out_lens.tolist() == [3, 2, 1, 1]
    alone, _ = enc(feats[1:2, :7], lens[1:2])  # a short utterance gives the same output alone
    assert torch.allclose(out[1, :2], alone[0], atol=1e-6)


@pytest.mark.parametrize("factor,formula", [
    (2, lambda t: (t - 1) // 2 - 2),
    (4, lambda t: ((t - 1) // 2 - 1) // 2),
    (6, lambda t: ((t - 1) // 2 - 2) // 3),
    (8, lambda t: (((t - 1) // 2 - 1) // 2 - 1) // 2),
])
def test_conformer_subsampling_factors(factor, formula):
    # ESPnet's Conv2dSubsampling2/6/8 formulas; x2 keeps enough frames for short utterances and
    # dense targets, x8 suits one token per word.
    torch.manual_seed(0)
    enc = ConformerEncoder(16, d_model=16, num_layers=1, num_heads=2, ffn_dim=32, depthwise_conv_kernel_size=5,
                           subsampling_channels=4, subsampling=factor).eval()
    assert enc.subsampling == factor
    first = next(t for t in range(1, 40) if formula(t) >= 1)
    assert enc.min_input_frames == first
    lens = torch.tensor([97, first + 30, first])
    feats = torch.randn(3, 97, 16)
    with torch.no_grad():
        h, out_lens = enc(feats, lens)
        alone, _ = enc(feats[2:, :first], lens[2:])  # padding never reaches a valid frame
    assert out_lens.tolist() == [formula(int(t)) for t in lens] == enc.output_lengths(lens).tolist()
    assert h.shape[1] == formula(97)
    torch.testing.assert_close(h[2, :1], alone[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(AsrkitError, match=f"utterance of {first - 1} frames is too short for the conformer's "
                                          f"x{factor} conv subsampling"):
        enc(torch.randn(1, first - 1, 16), torch.tensor([first - 1]))


def test_conformer_subsampling_factor_is_checked():
    with pytest.raises(ConfigError, match="model.encoder.subsampling: expected one of 2, 4, 6, 8, got 3"):
        build_model({"encoder": {"type": "conformer", "subsampling": 3}}, feat_dim=10, vocab_sizes={"all": 5})
    with pytest.raises(ConfigError, match="subsamples by 2, 4, 6, 8, not 3"):  # the encoder built directly
        ConformerEncoder(10, d_model=16, num_layers=1, num_heads=2, ffn_dim=32, subsampling=3)
