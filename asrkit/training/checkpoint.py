"""Training checkpoints: everything an exact resume needs.

A checkpoint (`checkpoints/checkpoint-<step>.pt`, `.rank<R>.pt` per extra rank) holds the model file
(asrkit.models.modelfile), optimizer, scheduler, EMA, strategy state, the position in the epoch's
batch list and every RNG state. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_name(step: int, rank: int = 0) -> str:
    """`checkpoint-<step>.pt`, or for rank R > 0 of a distributed run `checkpoint-<step>.rank<R>.pt`."""
    return f"checkpoint-{step:08d}.pt" if not rank else f"checkpoint-{step:08d}.rank{rank}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    """The checkpoints in a folder, oldest first: rank 0's files (a distributed run's other ranks
    write `<name>.rank<R>.pt` beside each)."""
    return sorted(p for p in Path(ckpt_dir).glob("checkpoint-*.pt") if ".rank" not in p.name)


def prune_checkpoints(ckpt_dir: str | os.PathLike, keep_last: int) -> None:
    """Delete all but the newest `keep_last` checkpoints (0: all of them), with their other ranks'
    files (best.pt is a separate file)."""
    ckpts = list_checkpoints(ckpt_dir)
    for old in ckpts[: max(0, len(ckpts) - int(keep_last))]:
        old.unlink(missing_ok=True)
        for other in old.parent.glob(old.stem + ".rank*.pt"):
            other.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)
