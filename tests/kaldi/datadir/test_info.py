"""data_dir_info: counts, hours and languages of a data dir (info.py)."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest

from asrkit.kaldi.datadir import data_dir_info, validate_data_dir
from tests.kaldi.datadir.helpers import FIXTURE_SECONDS, UTTS, to_segments


def test_info_on_fixture(fixture_datadir):
    info = data_dir_info(fixture_datadir)
    assert info["utterances"] == 6 and info["speakers"] == 3
    assert info["seconds"] == pytest.approx(13.61, abs=0.005)
    assert info["seconds"] == pytest.approx(FIXTURE_SECONDS)
    assert info["hours"] == pytest.approx(FIXTURE_SECONDS / 3600)
    assert info["duration_source"] == "utt2dur"
    assert list(info["languages"]) == ["de", "en", "fr"]
    assert info["languages"]["en"]["utterances"] == 2
    assert info["languages"]["en"]["seconds"] == pytest.approx(3.204875 + 2.634063)
    assert info["languages"]["fr"]["hours"] == pytest.approx((2.128813 + 1.164312) / 3600)
    assert (info["has_text"], info["has_feats"], info["has_cmvn"], info["feat_dim"]) == (True, False, False, None)


def test_info_reads_feat_dim_and_segment_durations(fixture_datadir):

    feats = {u: np.full((3 + i, 7), i, dtype=np.float32) for i, u in enumerate(UTTS)}
    kaldiio.save_ark(str(fixture_datadir / "feats.ark"), feats, scp=str(fixture_datadir / "feats.scp"))
    to_segments(fixture_datadir)
    (fixture_datadir / "utt2dur").unlink()
    info = data_dir_info(fixture_datadir)
    assert info["has_feats"] and info["feat_dim"] == 7
    assert info["duration_source"] == "segments" and info["recordings"] == 3
    # to_segments rounds each duration to 10 ms.
    assert info["seconds"] == pytest.approx(3.20 + 2.63 + 2.04 + 2.44 + 2.13 + 1.16)
    assert validate_data_dir(fixture_datadir) == []
