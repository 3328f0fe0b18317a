"""Tests for asrkit/data/dataset.py: languages of utterances, features with CMVN, padded batches."""

from __future__ import annotations

import numpy as np
import pytest

from asrkit.data.dataset import AsrDataset, collate
from asrkit.errors import DataDirError
from tests.training.conftest import make_toy_data_dir


def test_languages_from_utt2lang_a_default_or_one_for_every_utterance(tmp_path):
    data = make_toy_data_dir(tmp_path, "data", utts_per_lang=3)
    ds = AsrDataset([data], target_kinds=())
    assert ds.languages == ["de", "en"] and all(u.lang == ds.utt_lang[u.key] for u in ds.utts)
    # `lang` sets every utterance's language; utt2lang is not read (here it even lacks an utterance).
    lines = (data / "utt2lang").read_text().splitlines()
    (data / "utt2lang").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataDirError, match="utt2lang: no language for utterance"):
        AsrDataset([data], target_kinds=())
    forced = AsrDataset([data], target_kinds=(), lang="fr")
    assert forced.languages == ["fr"] and {u.lang for u in forced.utts} == {"fr"}
    assert [u.key for u in forced.utts] == [u.key for u in ds.utts]
    assert forced.index[ds.utts[0].key].lang == "fr"
    (data / "utt2lang").unlink()
    with pytest.raises(DataDirError, match="utt2lang: missing"):
        AsrDataset([data], target_kinds=())
    assert AsrDataset([data], target_kinds=(), default_lang="en").languages == ["en"]


def test_features_get_the_speakers_cmvn_and_batches_are_padded(tmp_path):
    data = make_toy_data_dir(tmp_path, "data", utts_per_lang=2)
    ds = AsrDataset([data], target_kinds=())
    raw = AsrDataset([data], target_kinds=(), global_cmvn=np.array([[0.0] * 12 + [1.0], [1.0] * 12 + [1.0]]))
    key = ds.utts[0].key
    feats = ds.load_feats(key)
    # Per-speaker CMVN (means): a speaker's frames average to zero over its utterances.
    spk = key.split("-")[0]
    frames = np.concatenate([ds.load_feats(u.key) for u in ds.utts if u.key.startswith(spk)])
    np.testing.assert_allclose(frames.mean(axis=0), 0.0, atol=1e-4)
    assert not np.allclose(raw.load_feats(key), feats)
    batch = collate([ds.load(u.key) for u in ds.utts[:3]])
    assert batch.feats.shape == (3, max(u.num_frames for u in ds.utts[:3]), 12)
    assert batch.feat_lens.tolist() == [u.num_frames for u in ds.utts[:3]]
