"""add_deltas / splice_feats / subsample_feats against Kaldi's add-deltas, splice-feats, subsample-feats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkit.errors import ConfigError
from asrkit.features.transforms import add_deltas, delta_scales, splice_feats, subsample_feats
from tests.features.conftest import load_ark

CASES = [
    ("fbank80_deltas.ark", lambda x: add_deltas(x), 240),
    ("fbank80_splice3.ark", lambda x: splice_feats(x, 3, 3), 560),
    ("fbank80_subsample3.ark", lambda x: subsample_feats(x, 3), 80),
]


@pytest.mark.parametrize("ark,transform,dim", CASES, ids=[c[0] for c in CASES])
def test_matches_kaldi_numpy_and_torch(fbank80, ark, transform, dim):
    golden = load_ark(ark)
    assert len(golden) == 2  # the first two utterances (KALDI_COMMANDS.txt)
    for utt, expected in golden.items():
        assert expected.shape[1] == dim
        out_np = transform(fbank80[utt])
        assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32
        np.testing.assert_allclose(out_np, expected, rtol=0, atol=1e-5)
        out_t = transform(torch.from_numpy(fbank80[utt].copy()))
        assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
        np.testing.assert_allclose(out_t.numpy(), expected, rtol=0, atol=1e-5)


def test_delta_scales_are_kaldis():
    scales = delta_scales(2, 2)
    assert scales[0] == [1.0]
    np.testing.assert_allclose(scales[1], [-0.2, -0.1, 0.0, 0.1, 0.2])
    assert len(scales[2]) == 9 and abs(sum(scales[2])) < 1e-12
    np.testing.assert_allclose(scales[2][4], -0.1)  # centre tap: -sum(j^2)/100


def test_edges_replicate_first_and_last_frame():
    x = np.arange(4, dtype=np.float32)[:, None]  # frames 0, 1, 2, 3
    np.testing.assert_array_equal(splice_feats(x, 1, 2)[0], [0, 0, 1, 2])
    np.testing.assert_array_equal(splice_feats(x, 1, 2)[3], [2, 3, 3, 3])
    d = add_deltas(x, order=1, window=1)  # delta[t] = (x[t+1] - x[t-1]) / 2 with clamping
    np.testing.assert_allclose(d[:, 1], [0.5, 1.0, 1.0, 0.5])


def test_subsample_offsets_and_repeat():
    x = torch.arange(7.0)[:, None]
    assert subsample_feats(x, 3, offset=1)[:, 0].tolist() == [1.0, 4.0]
    assert subsample_feats(x[:2], -2)[:, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="--n must not be 0"):
        subsample_feats(x, 0)
    with pytest.raises(ConfigError, match="need 0 <= --offset < --n"):
        subsample_feats(x, 3, offset=3)


def test_rejects_non_matrices():
    with pytest.raises(ValueError, match="expected a \\(num_frames, dim\\) matrix"):
        add_deltas(np.zeros(5, dtype=np.float32))
    with pytest.raises(TypeError, match="expected a numpy array or a torch tensor"):
        splice_feats([[1.0]], 1, 1)
