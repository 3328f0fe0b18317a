"""Tests for asrkit/kaldi/cmvn.py: CMVN stats and apply_cmvn against Kaldi's compute-cmvn-stats and apply-cmvn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkit.errors import AsrkitError
from asrkit.kaldi.cmvn import acc_cmvn_stats, apply_cmvn, compute_cmvn_stats, init_cmvn_stats
from tests.features.conftest import SPK2UTT, UTT2SPK, load_ark


@pytest.fixture(scope="module")
def fbank80() -> dict[str, np.ndarray]:
    return load_ark("fbank80.ark")


def test_stats_match_kaldi(fbank80):
    per_spk = load_ark("cmvn_spk.ark")
    for spk, utts in SPK2UTT.items():
        stats = init_cmvn_stats(80)
        for utt in utts:
            acc_cmvn_stats(stats, fbank80[utt])
        assert stats.shape == (2, 81) and stats.dtype == np.float64
        assert stats[0, 80] == sum(fbank80[u].shape[0] for u in utts) and stats[1, 80] == 0
        # Issue 17 F: bit-exact (squares in float32, summed frame after frame in double, as Kaldi).
        np.testing.assert_array_equal(stats, per_spk[spk])
    for utt, expected in load_ark("cmvn_utt.ark").items():
        np.testing.assert_array_equal(compute_cmvn_stats(torch.from_numpy(fbank80[utt].copy())), expected)


@pytest.mark.parametrize("norm_vars,ark", [(False, "fbank80_cmvn_mean.ark"), (True, "fbank80_cmvn_meanvar.ark")])
def test_apply_cmvn_matches_kaldi(fbank80, norm_vars, ark):
    stats = load_ark("cmvn_spk.ark")
    for utt, expected in load_ark(ark).items():
        out = apply_cmvn(fbank80[utt], stats[UTT2SPK[utt]], norm_vars=norm_vars)
        assert out.dtype == np.float32 and out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)  # bit-exact with apply-cmvn (issue 17 F)
        out_t = apply_cmvn(torch.from_numpy(fbank80[utt].copy()), torch.from_numpy(stats[UTT2SPK[utt]].copy()),
                           norm_vars=norm_vars)
        assert isinstance(out_t, torch.Tensor)
        np.testing.assert_array_equal(out_t.numpy(), expected)


def test_apply_cmvn_errors():
    feats = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(AsrkitError, match="insufficient stats .* count = 0.5"):
        apply_cmvn(feats, np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    with pytest.raises(AsrkitError, match="features have dimension 2 but the CMVN stats have dimension 3"):
        apply_cmvn(feats, init_cmvn_stats(3))
    # A constant dimension: variance floored at 1e-20 (Kaldi), no NaN.
    stats = compute_cmvn_stats(np.ones((4, 2), dtype=np.float32))
    assert np.all(np.isfinite(apply_cmvn(np.ones((4, 2), dtype=np.float32), stats, norm_vars=True)))
