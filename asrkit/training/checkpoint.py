"""Checkpoints (everything an exact resume needs) and self-describing model files.

A checkpoint holds model, optimizer, scheduler, EMA, the position in the epoch's batch list and
every RNG state. A model file (`final.pt`, `ema.pt`, `best.pt`) holds the architecture config, the
weights, the tokenizers, and the feature/CMVN settings, so later stages need only `--model`.
All files are written to a temporary name and renamed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from asrkit.errors import ConfigError
from asrkit.fileio import named_write_error, tmp_path_for

MODEL_FORMAT = "asrkit-model"
MODEL_VERSION = 1


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = tmp_path_for(path)
    try:
        try:
            with open(tmp, "wb") as f:
                torch.save(obj, f)
        except RuntimeError as e:
            # torch's zip writer turns a failed write (disk full) into a RuntimeError whose context
            # holds the OSError; report that, naming the file, instead of a traceback.
            if isinstance(e.__context__, OSError):
                raise named_write_error(e.__context__, path) from None
            raise
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints in a folder, oldest first."""
    return sorted(Path(ckpt_dir).glob("checkpoint-*.pt"))


def prune_checkpoints(ckpt_dir: str | os.PathLike, keep_last: int) -> None:
    """Delete all but the newest `keep_last` checkpoints (best.pt is a separate file)."""
    ckpts = list_checkpoints(ckpt_dir)
    for old in ckpts[: max(0, len(ckpts) - keep_last)]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def make_model_file(model, *, meta: dict, state_dict: dict | None = None) -> dict:
    """The dict saved as a model file: format tag, architecture and metadata, weights (on CPU)."""
    sd = state_dict if state_dict is not None else model.state_dict()
    return {"format": MODEL_FORMAT, "version": MODEL_VERSION, **meta,
            "state_dict": {k: v.detach().cpu().clone() for k, v in sd.items()}}


def read_model_file(path: str | os.PathLike) -> dict:
    """Load a model file's dict.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not an asrkit model file, or from a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such model file", str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: torch raises many kinds
        raise ConfigError(f"{path}: not a readable model file ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if isinstance(obj, dict) and "model" in obj and "optimizer" in obj and isinstance(obj["model"], dict) \
            and obj["model"].get("format") == MODEL_FORMAT:
        obj = obj["model"]  # a training checkpoint carries a model file inside
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise ConfigError(f"{path}: not an asrkit model file")
    if obj.get("version", 0) > MODEL_VERSION:
        raise ConfigError(f"{path}: model file version {obj['version']} is newer than this asrkit supports")
    return obj


def average_state_dicts(state_dicts: list[dict]) -> dict:
    """Element-wise mean of floating-point tensors (integer buffers taken from the last)."""
    if not state_dicts:
        raise ConfigError("no checkpoints to average")
    keys = list(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], start=1):
        if list(sd) != keys:
            raise ConfigError(f"checkpoint {i + 1} has different parameters from the first; cannot average")
    out = {}
    for k in keys:
        if state_dicts[0][k].is_floating_point():
            acc = torch.zeros_like(state_dicts[0][k], dtype=torch.float64)
            for sd in state_dicts:
                acc += sd[k].to(torch.float64)
            out[k] = (acc / len(state_dicts)).to(state_dicts[0][k].dtype)
        else:
            out[k] = state_dicts[-1][k].clone()
    return out


def average_model_files(paths: list[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Average the weights of model files / checkpoints of one architecture into a model file."""
    objs = [read_model_file(p) for p in paths]
    for p, o in zip(paths[1:], objs[1:]):
        if o["model_conf"] != objs[0]["model_conf"]:
            raise ConfigError(f"{p}: a different architecture from {paths[0]}; cannot average")
    avg = dict(objs[-1])
    avg["state_dict"] = average_state_dicts([o["state_dict"] for o in objs])
    avg["averaged_from"] = [str(p) for p in paths]
    atomic_torch_save(avg, out)
    return avg


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild a model from a model file: returns (model in eval mode, the file's metadata dict).

    Raises:
        ConfigError: not a model file, or its weights do not fit its own architecture.
    """
    from asrkit.models import build_model

    obj = read_model_file(path)
    try:
        model = build_model(obj["model_conf"], feat_dim=int(obj["feat_dim"]), vocab_sizes=dict(obj["vocab_sizes"]))
        model.load_state_dict(obj["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise ConfigError(f"{path}: model file does not match its architecture ({str(e).splitlines()[0][:200]})") from None
    model.to(device).eval()
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    return model, meta


def tokenizers_from_meta(meta: dict) -> dict:
    """{language: Tokenizer} from a model file's embedded sentencepiece models (empty if it has none)."""
    from asrkit.text.tokenizer import Tokenizer

    tokens = meta.get("tokens")
    if not tokens:
        return {}
    sets = {name: Tokenizer(proto, name=name) for name, proto in tokens["models"].items()}
    return {lang: sets[name] for lang, name in tokens["lang2set"].items()}
