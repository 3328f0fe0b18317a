"""CMVN stats and apply_cmvn against Kaldi's compute-cmvn-stats and apply-cmvn; compute_cmvn on a data dir."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch

from asrkit.errors import AsrkitError, DataDirError
from asrkit.features.cmvn import (
    acc_cmvn_stats,
    apply_cmvn,
    compute_cmvn,
    compute_cmvn_stats,
    init_cmvn_stats,
    read_cmvn_stats,
)
from tests.features.conftest import FIXTURES, load_ark

SPK2UTT = {"spkA": ["spkA-en-001", "spkA-en-002"], "spkB": ["spkB-de-001", "spkB-de-002"],
           "spkC": ["spkC-fr-001", "spkC-fr-002"]}
UTT2SPK = {u: s for s, us in SPK2UTT.items() for u in us}


def rel_diff(a, b) -> float:
    """Largest |a - b| relative to |b|, with values below 1 in magnitude compared absolutely (a
    normalised feature near 0 has no meaningful relative error)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))


def test_stats_match_kaldi(fbank80):
    per_spk = load_ark("cmvn_spk.ark")
    for spk, utts in SPK2UTT.items():
        stats = init_cmvn_stats(80)
        for utt in utts:
            acc_cmvn_stats(stats, fbank80[utt])
        assert stats.shape == (2, 81) and stats.dtype == np.float64
        assert stats[0, 80] == sum(fbank80[u].shape[0] for u in utts) and stats[1, 80] == 0
        assert rel_diff(stats, per_spk[spk]) <= 1e-4
    for utt, expected in load_ark("cmvn_utt.ark").items():
        assert rel_diff(compute_cmvn_stats(torch.from_numpy(fbank80[utt].copy())), expected) <= 1e-4


@pytest.mark.parametrize("norm_vars,ark", [(False, "fbank80_cmvn_mean.ark"), (True, "fbank80_cmvn_meanvar.ark")])
def test_apply_cmvn_matches_kaldi(fbank80, norm_vars, ark):
    stats = load_ark("cmvn_spk.ark")
    for utt, expected in load_ark(ark).items():
        out = apply_cmvn(fbank80[utt], stats[UTT2SPK[utt]], norm_vars=norm_vars)
        assert out.dtype == np.float32 and out.shape == expected.shape
        assert rel_diff(out, expected) <= 1e-4
        out_t = apply_cmvn(torch.from_numpy(fbank80[utt].copy()), torch.from_numpy(stats[UTT2SPK[utt]].copy()),
                           norm_vars=norm_vars)
        assert isinstance(out_t, torch.Tensor) and rel_diff(out_t.numpy(), expected) <= 1e-4


def test_apply_cmvn_errors():
    feats = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(AsrkitError, match="insufficient stats .* count = 0.5"):
        apply_cmvn(feats, np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    with pytest.raises(AsrkitError, match="features have dimension 2 but the CMVN stats have dimension 3"):
        apply_cmvn(feats, init_cmvn_stats(3))
    # A constant dimension: variance floored at 1e-20 (Kaldi), no NaN.
    stats = compute_cmvn_stats(np.ones((4, 2), dtype=np.float32))
    assert np.all(np.isfinite(apply_cmvn(np.ones((4, 2), dtype=np.float32), stats, norm_vars=True)))


def write_feats(data_dir, fbank80):
    """Give a data dir the fixture features: feats.scp pointing into an ark in data_dir/data."""
    (data_dir / "data").mkdir()
    ark, scp = data_dir / "data" / "raw_fbank_data.1.ark", data_dir / "feats.scp"
    kaldiio.save_ark(str(ark), fbank80, scp=str(scp))


def test_compute_cmvn_per_speaker_and_global(fixture_datadir, fbank80):
    write_feats(fixture_datadir, fbank80)
    result = compute_cmvn(fixture_datadir)
    assert result.num_keys == 3 and result.num_frames == sum(m.shape[0] for m in fbank80.values())
    cmvn_scp = (fixture_datadir / "cmvn.scp").read_text().splitlines()
    assert [ln.split()[0] for ln in cmvn_scp] == ["spkA", "spkB", "spkC"]
    assert cmvn_scp[0].split()[1].startswith(str((fixture_datadir / "data" / "cmvn_data.ark").resolve()) + ":")
    golden = load_ark("cmvn_spk.ark")
    stats = read_cmvn_stats(fixture_datadir)
    assert set(stats) == set(golden)
    for spk in golden:
        assert rel_diff(stats[spk], golden[spk]) <= 1e-4
    # The ark holds binary double matrices (DM), what Kaldi's apply-cmvn reads.
    assert b"\0BDM " in (fixture_datadir / "data" / "cmvn_data.ark").read_bytes()

    compute_cmvn(fixture_datadir, global_stats=True)
    total = sum(golden.values())
    raw = (fixture_datadir / "cmvn.ark").read_bytes()
    assert raw.startswith(b"\0BDM ")  # one keyless matrix, as `compute-cmvn-stats scp:feats.scp cmvn.ark`
    glob = np.asarray(kaldiio.load_mat(str(fixture_datadir / "cmvn.ark")))
    assert rel_diff(glob, total) <= 1e-4


def test_compute_cmvn_errors(fixture_datadir, fbank80):
    with pytest.raises(DataDirError, match="feats.scp: not found"):
        compute_cmvn(fixture_datadir)
    write_feats(fixture_datadir, {k: v for k, v in fbank80.items() if not k.startswith("spkB")})
    with pytest.raises(DataDirError, match="speaker 'spkB' has no utterance in"):
        compute_cmvn(fixture_datadir)


def test_fixture_folder_is_untouched():
    assert not (FIXTURES / "cmvn.scp").exists()
