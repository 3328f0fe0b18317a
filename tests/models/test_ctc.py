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
