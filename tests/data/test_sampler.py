"""Tests for asrkit/data/sampler.py: padded-size bound, language homogeneity, language sampling,
determinism, rank shares, the fixed batches of inference."""

from __future__ import annotations

import numpy as np
import pytest

from asrkit.data.sampler import (
    BatchPlan,
    UttInfo,
    inference_batches,
    language_probs,
    make_batches,
    padding_ratio,
)
from asrkit.errors import ConfigError


def _utts(n_en=40, n_de=10):
    rng = np.random.default_rng(0)
    return ([UttInfo(f"en-{i:03d}", "en", int(rng.integers(50, 300))) for i in range(n_en)]
            + [UttInfo(f"de-{i:03d}", "de", int(rng.integers(50, 300))) for i in range(n_de)])


def test_batches_respect_padded_frame_budget():
    utts = _utts()
    frames = {u.key: u.num_frames for u in utts}
    batches = make_batches(utts, max_frames=1000, max_utts=6, rng=np.random.default_rng(1))
    assert sorted(k for b in batches for k in b) == sorted(frames)
    for b in batches:
        assert len(b) <= 6
        assert len(b) == 1 or max(frames[k] for k in b) * len(b) <= 1000


def test_language_probabilities():
    assert language_probs({"en": 300, "de": 100}, "proportional") == {"de": 0.25, "en": 0.75}
    assert language_probs({"en": 300, "de": 100}, "balanced") == {"de": 0.5, "en": 0.5}
    p = language_probs({"en": 400, "de": 100}, "temperature", 0.5)
    assert p["en"] == pytest.approx(20 / 30) and p["de"] == pytest.approx(10 / 30)
    with pytest.raises(ConfigError):
        language_probs({"en": 1}, "temperature", 0.0)


def test_homogeneous_deterministic_and_epoch_dependent():
    plan = BatchPlan(_utts(), max_frames=800, seed=3)
    again = BatchPlan(_utts(), max_frames=800, seed=3)
    assert plan.epoch_batches(0) == again.epoch_batches(0)
    assert plan.epoch_batches(0) != plan.epoch_batches(1)
    for b in plan.epoch_batches(0):
        assert len({k[:2] for k in b}) == 1


def test_balanced_sampling_oversamples_small_language():
    plan = BatchPlan(_utts(n_en=80, n_de=8), max_frames=400, lang_sampling="balanced", seed=0)
    batches = plan.epoch_batches(0)
    de = sum(1 for b in batches if b[0].startswith("de"))
    en = len(batches) - de
    assert abs(de - en) < 0.3 * len(batches)  # ~half each although de has a tenth of the data
    proportional = BatchPlan(_utts(n_en=80, n_de=8), max_frames=400, seed=0).epoch_batches(0)
    assert sum(1 for b in proportional if b[0].startswith("de")) < de


def test_ranks_get_equal_disjoint_shares():
    utts = _utts()
    shares = [BatchPlan(utts, max_frames=700, seed=5, rank=r, world_size=2).epoch_batches(2) for r in range(2)]
    assert len(shares[0]) == len(shares[1])
    assert not {k for b in shares[0] for k in b} & {k for b in shares[1] for k in b}
    whole = BatchPlan(utts, max_frames=700, seed=5).global_batches(2)
    assert shares[0] == whole[0::2] and shares[1] == whole[1::2]


def test_inference_batches_are_fixed_homogeneous_and_cover_every_utterance_once():
    utts = _utts()
    batches = inference_batches(utts, max_frames=600)
    assert batches == inference_batches(utts, max_frames=600)  # the same every run
    frames = {u.key: u.num_frames for u in utts}
    assert all(len(b) == 1 or max(frames[k] for k in b) * len(b) <= 600 for b in batches)
    langs = {u.key: u.lang for u in utts}
    assert all(len({langs[k] for k in b}) == 1 for b in batches)
    assert sorted(k for b in batches for k in b) == sorted(langs)
    assert inference_batches(utts, max_frames=600, max_utts=2) != batches
    assert max(len(b) for b in inference_batches(utts, max_frames=10**6, max_utts=2)) == 2


def test_padding_ratio():
    frames = {"a": 10, "b": 6, "c": 4}
    assert padding_ratio([["a", "b"], ["c"]], frames) == pytest.approx(4 / 20)
    assert padding_ratio([], frames) == 0.0
