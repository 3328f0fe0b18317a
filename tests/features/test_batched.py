"""The batched extractor (run on CPU here) against the per-utterance torchaudio path and Kaldi."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkit.errors import AudioError
from asrkit.features.batched import BatchedFeatureExtractor, batch_by_length, window_function
from asrkit.features.kaldi_feats import compute_features, load_feature_options
from tests.features.conftest import load_ark
from tests.features.test_kaldi_feats import KALDI_CASES, assert_close_to_kaldi, read_wav_scp

OPTION_SETS = [
    ("fbank", ["num-mel-bins=80"]),
    ("fbank", ["num-mel-bins=40", "snip-edges=false", "high-freq=-400", "use-energy=true"]),
    ("fbank", ["use-energy=true", "raw-energy=false", "htk-compat=true", "energy-floor=2", "window-type=hamming"]),
    ("fbank", ["use-power=false", "use-log-fbank=false", "remove-dc-offset=false", "window-type=blackman"]),
    ("fbank", ["dither=1.0", "preemphasis-coefficient=0", "window-type=rectangular", "round-to-power-of-two=false"]),
    ("fbank", ["vtln-warp=0.9", "subtract-mean=true", "frame-length=20", "window-type=hanning"]),
    ("mfcc", []),
    ("mfcc", ["num-ceps=20", "num-mel-bins=40", "snip-edges=false"]),
    ("mfcc", ["htk-compat=true", "use-energy=false", "cepstral-lifter=0"]),
]


@pytest.mark.parametrize("feat_type,options", OPTION_SETS, ids=[" ".join(o) or t for t, o in OPTION_SETS])
def test_batched_equals_per_utterance(waves, feat_type, options):
    opts = load_feature_options(feat_type, overrides=options)
    keys = list(waves)
    # Shortest first and a variety of lengths: masking must keep each utterance's frames apart.
    keys.sort(key=lambda k: len(waves[k][0]))
    batch = [torch.from_numpy(waves[k][0]) for k in keys]
    out = BatchedFeatureExtractor(opts)(batch, keys)
    assert len(out) == len(keys)
    for key, feats in zip(keys, out):
        ref = compute_features(waves[key][0], opts, key)
        assert feats.shape == ref.shape == (opts.num_frames(len(waves[key][0])), opts.dim)
        # Linear (non-log) fbanks are compared relative to their range; MFCCs carry the lifter's
        # gain of up to 12 on float32 rounding differences.
        scale = max(1.0, float(ref.abs().max())) if not opts.use_log_fbank else 1.0
        diff = (feats - ref).abs() / scale
        assert float(diff.mean()) <= (1e-4 if feat_type == "mfcc" else 1e-5), float(diff.mean())
        assert float(diff.max()) <= 5e-3, float(diff.max())


@pytest.mark.parametrize("ark,scp,feat_type,options", KALDI_CASES, ids=[c[0] for c in KALDI_CASES])
def test_batched_matches_kaldi(ark, scp, feat_type, options):
    golden = load_ark(ark)
    waves = read_wav_scp(scp)
    opts = load_feature_options(feat_type, overrides=options)
    keys = list(waves)
    out = BatchedFeatureExtractor(opts)([torch.from_numpy(waves[k][0]) for k in keys], keys)
    for key, feats in zip(keys, out):
        assert_close_to_kaldi(feats.numpy(), golden[key], opts)


def test_single_utterance_batches_agree_with_one_batch(waves):
    opts = load_feature_options("fbank", overrides=["num-mel-bins=80"])
    ext = BatchedFeatureExtractor(opts)
    keys = list(waves)
    together = ext([torch.from_numpy(waves[k][0]) for k in keys], keys)
    for key, feats in zip(keys, together):
        alone = ext([torch.from_numpy(waves[key][0])], [key])[0]
        torch.testing.assert_close(feats, alone, rtol=0, atol=1e-3)


def test_short_utterance_is_named():
    opts = load_feature_options("fbank")
    with pytest.raises(AudioError, match="^tiny: 100 samples is too short"):
        BatchedFeatureExtractor(opts)([torch.zeros(16000), torch.zeros(100)], ["ok", "tiny"])


def test_window_function_matches_kaldi_formula():
    opts = load_feature_options("fbank")
    w = window_function(opts).numpy()
    n = np.arange(400)
    expected = (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85
    np.testing.assert_allclose(w, expected, rtol=1e-6, atol=1e-7)
    assert w[0] == 0.0


def test_batch_by_length():
    assert batch_by_length([5, 5, 5, 20, 1], 10) == [[0, 1], [2], [3], [4]]
    assert batch_by_length([], 10) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu(waves):
    opts = load_feature_options("fbank", overrides=["num-mel-bins=80"])
    keys = list(waves)
    batch = [torch.from_numpy(waves[k][0]) for k in keys]
    cpu = BatchedFeatureExtractor(opts, "cpu")(batch, keys)
    gpu = BatchedFeatureExtractor(opts, "cuda")(batch, keys)
    for a, b in zip(cpu, gpu):
        assert b.device.type == "cuda"
        assert float((a - b.cpu()).abs().mean()) <= 1e-4
