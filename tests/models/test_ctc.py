"""Tests for asrkit/models/ctc.py: best-path decoding and token edit distance."""

from __future__ import annotations

import torch

from asrkit.models.ctc import ctc_greedy, edit_distance


def test_greedy_merges_repeats_and_drops_blanks():
    # frames: a a _ a b b _ ; padding frame ignored
    ids = [1, 1, 0, 1, 2, 2, 0, 2]
    logits = torch.nn.functional.one_hot(torch.tensor([ids, [2, 0, 0, 1, 1, 1, 1, 1]]), 3).float()
    assert ctc_greedy(logits, torch.tensor([7, 3])) == [[1, 1, 2], [2]]


def test_edit_distance_counts_token_errors():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([1, 2, 3], [4, 2, 3, 5]) == 2
    assert edit_distance([], [7, 7]) == 2


def test_ctc_min_frames_counts_a_blank_between_repeats():
    from asrkit.models.ctc import count_unalignable, ctc_min_frames, ctc_min_frames_batch

    assert ctc_min_frames([]) == 0
    assert ctc_min_frames([5, 6, 6, 7]) == 5            # Y E E S needs a blank between the Es
    assert ctc_min_frames([3, 3, 3]) == 5
    targets = torch.tensor([[5, 6, 6, 7], [3, 3, 3, 0], [4, 4, 9, 9]])
    assert ctc_min_frames_batch(targets, torch.tensor([4, 3, 2])).tolist() == [5, 5, 3]
    count = count_unalignable([("a", 20, [5, 6, 6, 7]), ("b", 16, [5, 6, 6, 7]), ("c", 40, [1])],
                              lambda n: n // 4)
    assert (count.lost, count.total, count.first) == (1, 3, ("b", 5, 4))
    assert count.describe(4) == ("1 of 3 utterances (33.3%) have more target tokens than the model's output frames "
                                 "at x4 subsampling (first: 'b' needs 5 output frames, the model gives it 4)")
