"""Tests for asrkit/features/cmvn.py: compute_cmvn on a data dir against Kaldi's compute-cmvn-stats."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest

from asrkit.errors import DataDirError
from asrkit.features.cmvn import compute_cmvn
from asrkit.kaldi.cmvn import read_cmvn_stats
from tests.features.conftest import FIXTURES, load_ark, rel_diff


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
    # The ark holds binary double matrices (DM), byte for byte what compute-cmvn-stats writes.
    assert (fixture_datadir / "data" / "cmvn_data.ark").read_bytes() == (FIXTURES / "cmvn_spk.ark").read_bytes()

    compute_cmvn(fixture_datadir, global_stats=True)
    total = sum(golden.values())
    raw = (fixture_datadir / "cmvn.ark").read_bytes()
    assert raw.startswith(b"\0BFM ")  # one keyless float matrix, as `compute-cmvn-stats scp:feats.scp cmvn.ark`
    glob = np.asarray(kaldiio.load_mat(str(fixture_datadir / "cmvn.ark")))
    assert rel_diff(glob, total) <= 1e-4


def test_global_stats_beside_per_speaker_ones_warn(fixture_datadir, fbank80, caplog):
    # train/decode prefer cmvn.scp over cmvn.ark: a --global run next to an earlier per-speaker one
    # would otherwise normalise with the per-speaker stats without a word.
    write_feats(fixture_datadir, fbank80)
    compute_cmvn(fixture_datadir, global_stats=True)
    assert "per-speaker stats are there too" not in caplog.text
    compute_cmvn(fixture_datadir)
    compute_cmvn(fixture_datadir, global_stats=True)
    assert f"{fixture_datadir / 'cmvn.scp'}: per-speaker stats are there too" in caplog.text
    assert (fixture_datadir / "cmvn.scp").is_file()  # left alone: it may be the user's


def test_compute_cmvn_errors(fixture_datadir, fbank80):
    with pytest.raises(DataDirError, match="feats.scp: not found"):
        compute_cmvn(fixture_datadir)
    write_feats(fixture_datadir, {k: v for k, v in fbank80.items() if not k.startswith("spkB")})
    with pytest.raises(DataDirError, match="speaker 'spkB' has no utterance in"):
        compute_cmvn(fixture_datadir)


def test_fixture_folder_is_untouched():
    assert not (FIXTURES / "cmvn.scp").exists()
