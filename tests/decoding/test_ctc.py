"""Tests for asrkit/decoding/ctc.py: the vectorised prefix beam search against plain-Python references and greedy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from asrkit.decoding.ctc import ctc_prefix_beam_search
from asrkit.models.ctc import ctc_greedy


def _log_probs(probs) -> torch.Tensor:
    return torch.tensor(np.log(np.asarray(probs, dtype=np.float64)), dtype=torch.float32)


def _exact_label_probs(log_probs: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """log P(labels | x) of every label sequence, by enumerating all V**T frame paths."""
    num_frames, vocab = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=num_frames):
        labels, prev = [], None
        for s in path:
            if s != blank and s != prev:
                labels.append(s)
            prev = s
        score = float(sum(log_probs[t, s] for t, s in enumerate(path)))
        key = tuple(labels)
        totals[key] = np.logaddexp(totals.get(key, -math.inf), score)
    return totals


def _reference_prefix_beam(log_probs: np.ndarray, beam: int, blank: int = 0) -> list[tuple[tuple[int, ...], float]]:
    """The textbook prefix beam search, one hypothesis and one label at a time (dicts, no pruning of labels)."""
    def add(nxt, prefix, pb=-math.inf, pnb=-math.inf):
        cur = nxt.setdefault(prefix, [-math.inf, -math.inf])
        cur[0] = np.logaddexp(cur[0], pb)
        cur[1] = np.logaddexp(cur[1], pnb)

    beams = {(): (0.0, -math.inf)}  # prefix -> (pb, pnb)
    for frame in log_probs:
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = np.logaddexp(pb, pnb)
            add(nxt, prefix, pb=total + frame[blank])
            if prefix:
                add(nxt, prefix, pnb=pnb + frame[prefix[-1]])
            for c in range(len(frame)):
                if c == blank:
                    continue
                base = pb if prefix and prefix[-1] == c else total
                add(nxt, prefix + (c,), pnb=base + frame[c])
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam]
        beams = {p: tuple(s) for p, s in ranked}
    return sorted(((p, float(np.logaddexp(*s))) for p, s in beams.items()), key=lambda x: -x[1])


def _random_log_probs(rng, batch, frames, vocab, peak=0.0):
    logits = rng.normal(0, 1.5, size=(batch, frames, vocab))
    if peak:
        logits[np.arange(batch)[:, None], np.arange(frames)[None, :], rng.integers(0, vocab, (batch, frames))] += peak
    return torch.log_softmax(torch.tensor(logits), dim=-1).float()


def test_wide_beam_gives_exact_label_probabilities():
    rng = np.random.default_rng(0)
    lp = _random_log_probs(rng, 3, 5, 3)
    lens = torch.tensor([5, 4, 2])
    # 2 labels and <= 5 frames give at most 63 distinct prefixes: a beam of 64 keeps them all.
    result = ctc_prefix_beam_search(lp, lens, beam=64)
    for b in range(3):
        exact = _exact_label_probs(lp[b, : lens[b]].double().numpy())
        got = {tuple(seq): score for seq, score in result[b]}
        assert set(got) == set(exact)
        for seq, score in exact.items():
            assert got[seq] == pytest.approx(score, abs=1e-4), seq
        best = max(exact, key=exact.get)
        assert tuple(result[b][0][0]) == best


@pytest.mark.parametrize("beam", [1, 2, 4, 8])
def test_matches_reference_search_on_random_batches(beam):
    rng = np.random.default_rng(beam)
    lp = _random_log_probs(rng, 6, 12, 7, peak=2.0)
    lens = torch.tensor([12, 11, 9, 5, 1, 12])
    result = ctc_prefix_beam_search(lp, lens, beam=beam)
    for b in range(6):
        ref = _reference_prefix_beam(lp[b, : lens[b]].double().numpy(), beam)
        assert [tuple(s) for s, _ in result[b]] == [p for p, _ in ref]
        assert [s for _, s in result[b]] == pytest.approx([s for _, s in ref], abs=1e-4)


def test_large_vocabulary_only_best_labels_matter():
    # V = 50 with beam 3: labels outside the 6 best of a frame are never tried as new extensions,
    # yet the result equals the full search.
    rng = np.random.default_rng(7)
    lp = _random_log_probs(rng, 2, 10, 50, peak=3.0)
    result = ctc_prefix_beam_search(lp, torch.tensor([10, 10]), beam=3)
    for b in range(2):
        ref = _reference_prefix_beam(lp[b].double().numpy(), 3)
        assert [tuple(s) for s, _ in result[b]] == [p for p, _ in ref]


def test_beam_one_equals_greedy_when_the_best_path_dominates():
    # If the best path has probability > 0.5 it is the most probable prefix at every frame, so any
    # beam (1 included) keeps it and returns greedy's answer.
    rng = np.random.default_rng(3)
    probs = np.full((4, 15, 5), 0.0025 / 4)
    best = rng.integers(0, 5, size=(4, 15))
    probs[np.arange(4)[:, None], np.arange(15)[None, :], best] = 0.9975
    lp = _log_probs(probs / probs.sum(-1, keepdims=True))
    lens = torch.tensor([15, 15, 10, 3])
    greedy = ctc_greedy(lp, lens)
    for beam in (1, 4):
        assert [h[0][0] for h in ctc_prefix_beam_search(lp, lens, beam=beam)] == greedy


def test_beam_one_differs_from_greedy_by_summing_alignments():
    # Frame 1 says "a"; frame 2 has b 0.4 > a 0.3 = blank 0.3. Greedy reads "a b" (path prob 0.36);
    # the prefix "a" gathers a-a and a-blank (0.27 + 0.27 = 0.54), so beam 1 keeps "a".
    lp = _log_probs([[[0.05, 0.9, 0.05], [0.3, 0.3, 0.4]]])
    lens = torch.tensor([2])
    assert ctc_greedy(lp, lens) == [[1, 2]]
    (best, score), = ctc_prefix_beam_search(lp, lens, beam=1)[0]
    assert best == [1] and score == pytest.approx(math.log(0.54), abs=1e-5)


def test_beam_finds_prefix_that_greedy_misses():
    # blank 0.6 / a 0.4 on both frames: greedy says "" (0.36) but P("a") = 0.64.
    lp = _log_probs([[[0.6, 0.4], [0.6, 0.4]]])
    lens = torch.tensor([2])
    assert ctc_greedy(lp, lens) == [[]]
    assert ctc_prefix_beam_search(lp, lens, beam=1)[0][0][0] == []
    hyps = ctc_prefix_beam_search(lp, lens, beam=2)[0]
    assert hyps[0][0] == [1] and hyps[0][1] == pytest.approx(math.log(0.64), abs=1e-5)
    assert hyps[1][0] == [] and hyps[1][1] == pytest.approx(math.log(0.36), abs=1e-5)


def test_repeated_label_needs_a_blank():
    # "a a" only through a-blank-a; "a" through a-a-a etc.
    lp = _log_probs([[[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]]])
    hyps = dict((tuple(s), p) for s, p in ctc_prefix_beam_search(lp, torch.tensor([3]), beam=8)[0])
    exact = _exact_label_probs(lp[0].double().numpy())
    assert hyps[(1, 1)] == pytest.approx(exact[(1, 1)], abs=1e-5)
    assert hyps[(1,)] == pytest.approx(exact[(1,)], abs=1e-5)


def test_zero_length_and_blank_only_vocabulary():
    lp = _random_log_probs(np.random.default_rng(1), 2, 4, 3)
    result = ctc_prefix_beam_search(lp, torch.tensor([0, 4]), beam=2)
    assert result[0] == [([], 0.0)]
    blank_only = torch.zeros(1, 3, 1)
    assert ctc_prefix_beam_search(blank_only, torch.tensor([3]), beam=2) == [[([], 0.0)]]


def test_rejects_bad_beam():
    with pytest.raises(ValueError, match="beam must be at least 1"):
        ctc_prefix_beam_search(torch.zeros(1, 2, 3), torch.tensor([2]), beam=0)
