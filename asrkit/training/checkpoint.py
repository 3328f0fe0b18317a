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
import yaml

from asrkit.errors import ConfigError


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


#: Config keys a resumed run may change: how long it runs and how it saves and logs, not what it
#: computes. Any other change (the architecture, the data, the optimizer) is refused on --resume.
RESUMABLE_CHANGES = ("training.epochs", "training.max_steps", "training.save_interval", "training.log_interval",
                     "training.keep_last", "training.dist_timeout")


def changed_config_keys(old: object, new: object, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two resolved configs (sorted)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in changed_config_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_resume_config(conf: dict, saved_path: str | os.PathLike) -> None:
    """Refuse a --resume whose config differs from the run's (its `config.yaml`) in what it computes.

    Raises:
        ConfigError: naming the changed keys (nothing has been written then).
    """
    saved_path = Path(saved_path)
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    changed = [k for k in changed_config_keys(saved, conf) if k not in RESUMABLE_CHANGES]
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ConfigError(f"{saved_path}: --resume with another config: {shown} changed (a resumed run may change "
                          f"only {', '.join(RESUMABLE_CHANGES)}); use the same config, or --overwrite to start over")
