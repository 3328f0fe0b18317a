"""Tests for asrkit/training/checkpoint.py: names, listing and pruning of checkpoints (with other ranks' files)."""

from __future__ import annotations

from asrkit.training.checkpoint import checkpoint_name, list_checkpoints, prune_checkpoints


def test_prune_keeps_the_newest_steps_with_every_ranks_file(tmp_path):
    for step in (1, 2, 3):
        for rank in (0, 1, 2):
            (tmp_path / checkpoint_name(step, rank)).write_bytes(b"x")
    (tmp_path / "best.pt").write_bytes(b"x")
    assert checkpoint_name(3, 2) == "checkpoint-00000003.rank2.pt"
    assert [p.name for p in list_checkpoints(tmp_path)] == [checkpoint_name(s) for s in (1, 2, 3)]
    prune_checkpoints(tmp_path, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["best.pt"] + [checkpoint_name(s, r) for s in (2, 3) for r in (0, 1, 2)])
    prune_checkpoints(tmp_path, keep_last=0)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]
