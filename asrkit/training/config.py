"""Training configs: YAML values plus `--set key=value` overrides, checked against the defaults.

The defaults below are the schema: a key that is not in them is an error at start (naming the key),
so a typo never silently trains the wrong model. Sections whose contents depend on a chosen type
(`model.encoder`, `model.head`, `objective.mix`, `data.specaugment`, `training.ema`) are checked by
the code that builds them.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

from asrkit.errors import ConfigError
from asrkit.fileio import atomic_write_text

# Sections whose keys are free-form here (validated by their builders).
FREE_FORM = {("model", "encoder"), ("model", "head"), ("model", "predictor"), ("model", "joiner"), ("model", "aux_ctc"),
             ("objective", "mix"), ("data", "specaugment"), ("training", "ema"), ("training", "strategy_opts")}

DEFAULTS: dict = {
    "model": {
        "encoder": {"type": "conformer"},
        "head": {"type": "mtl"},
        "predictor": None,
        "joiner": None,
        "aux_ctc": None,          # transducers: {weight: w}, loss = (1-w)*rnnt + w*ctc on the encoder
    },
    "objective": {
        "type": "ctc",            # ctc | ce | kl | rnnt
        "targets": None,          # ce: alignment rspecifier/scp; kl: soft-target scp (train data)
        "valid_targets": None,    # the same for the validation data
        "temperature": 1.0,       # kl: softmax temperature of the student (teacher's is applied at dump time)
        "mix": None,              # {type: ctc|ce, weight: w}: loss = (1-w)*kl + w*mix
        "max_unalignable": 0.01,  # ctc: refuse training when a larger share of utterances has more
                                  # tokens than output frames (they would silently teach nothing)
    },
    "data": {
        "max_frames": 20000,      # input frames per batch (sum over utterances)
        "max_utts": 256,
        "min_frames": 1,
        "max_utt_frames": 3000,   # longer utterances are skipped (and counted in the log)
        "lang_sampling": "proportional",  # proportional | balanced | temperature
        "lang_alpha": 0.5,        # temperature sampling: p(lang) ∝ n_lang ** alpha
        "language_homogeneous": True,
        "num_workers": 0,
        "norm_vars": False,       # CMVN: normalise variances too (apply-cmvn --norm-vars)
        "specaugment": None,
        "shuffle": True,
    },
    "optim": {
        "name": "adamw",          # adamw | sgd
        "lr": 1e-3,
        "weight_decay": 1e-2,
        "betas": [0.9, 0.98],
        "eps": 1e-8,
        "momentum": 0.9,
        "nesterov": False,
        "lr_scaling": "none",     # none | linear | sqrt: scale lr with the global batch (world size x accum)
    },
    "scheduler": {
        "name": "warmup_cosine",  # constant | warmup_constant | warmup_linear | warmup_cosine | noam
        "warmup_steps": 200,
        "total_steps": None,      # default: epochs x batches per epoch
        "min_lr_ratio": 0.05,
    },
    "training": {
        "epochs": 10,
        "max_steps": None,        # stop after this many optimizer steps (does not change the schedule)
        "grad_clip": 5.0,
        "accum_grad": 1,
        "seed": 0,
        "log_interval": 10,
        "save_interval": 0,       # also checkpoint every N steps (0: only at epoch ends)
        "keep_last": 3,
        "device": "auto",         # auto | cpu | cuda
        "amp": "auto",            # auto (bf16 on cuda) | bf16 | none
        "strategy": "allreduce",  # allreduce | model-averaging | bmuf | gossip (several processes)
        "sync_interval": 1,       # K: steps between model synchronisations (not allreduce)
        "strategy_opts": {},
        "ema": None,              # {decay: 0.999, start_step: 0}
        "init_from": None,
        "init_lrmf_svd": False,   # with init_from an mtl model and an lrmf head: A and B_l from an SVD
        "freeze": "none",         # none | encoder | shared
        "pathways": None,         # masks dir (asrkit prune): train each language only inside its mask
        "dist_timeout": 300,
        "progress": "auto",
    },
}


def _merge(base: dict, override: dict, path: tuple[str, ...] = ()) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        here = (*path, key)
        if key not in base:
            if path in FREE_FORM or (len(path) >= 2 and path[:2] in FREE_FORM):
                out[key] = value
                continue
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"unknown config key '{'.'.join(here)}' (known keys here: {known})")
        if isinstance(base[key], dict) and here not in FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{'.'.join(here)}' must be a mapping, not {value!r}")
            out[key] = _merge(base[key], value, here)
        elif isinstance(base[key], dict) and here in FREE_FORM and isinstance(value, dict):
            merged = copy.deepcopy(base[key])
            if "type" in value and value.get("type") != base[key].get("type"):
                merged = {}
            merged.update(copy.deepcopy(value))
            out[key] = merged
        else:
            out[key] = _coerce_number(value, base[key], here)
    return out


def _coerce_number(value: object, default: object, here: tuple[str, ...]) -> object:
    # YAML 1.1 reads `1e-3` (no dot) as a string; where the default is a number, take it as one.
    if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            return float(value) if any(c in value for c in ".eE") or isinstance(default, float) else int(value)
        except ValueError:
            raise ConfigError(f"config key '{'.'.join(here)}' must be a number, not '{value}'") from None
    return copy.deepcopy(value)


def parse_override(item: str) -> tuple[list[str], object]:
    """Parse `a.b.c=value` (value read as YAML, so `1e-3`, `true`, `[1, 2]` have their types)."""
    if "=" not in item:
        raise ConfigError(f"--set '{item}': expected key=value")
    key, raw = item.split("=", 1)
    if not key.strip():
        raise ConfigError(f"--set '{item}': empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _nest(keys: list[str], value: object) -> dict:
    out: dict = value  # type: ignore[assignment]
    for k in reversed(keys):
        out = {k: out}
    return out


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict | None = None) -> dict:
    """Resolve a training config: defaults <- base (e.g. a resumed run) <- YAML file <- overrides.

    Raises:
        FileNotFoundError: the YAML file does not exist.
        ConfigError: unknown key, bad YAML, or a value of the wrong kind.
    """
    conf = copy.deepcopy(DEFAULTS)
    if base:
        conf = _merge(conf, base)
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config must be a YAML mapping")
        try:
            conf = _merge(conf, loaded)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    for item in overrides:
        keys, value = parse_override(item)
        try:
            conf = _merge(conf, _nest(keys, value))
        except ConfigError as e:
            raise ConfigError(f"--set {item}: {e}") from None
    check_config(conf)
    return conf


_CHOICES = {
    ("objective", "type"): ("ctc", "ce", "kl", "rnnt"),
    ("data", "lang_sampling"): ("proportional", "balanced", "temperature"),
    ("optim", "name"): ("adamw", "sgd"),
    ("optim", "lr_scaling"): ("none", "linear", "sqrt"),
    ("scheduler", "name"): ("constant", "warmup_constant", "warmup_linear", "warmup_cosine", "noam"),
    ("training", "device"): ("auto", "cpu", "cuda"),
    ("training", "amp"): ("auto", "bf16", "none"),
    ("training", "strategy"): ("allreduce", "model-averaging", "bmuf", "gossip"),
    ("training", "freeze"): ("none", "encoder", "shared"),
}


def check_config(conf: dict) -> None:
    """Check choices and ranges that would otherwise fail late (mid-training)."""
    for (section, key), choices in _CHOICES.items():
        if conf[section][key] not in choices:
            raise ConfigError(f"config '{section}.{key}' is '{conf[section][key]}'; choose one of {', '.join(choices)}")
    positive = [("data", "max_frames"), ("data", "max_utts"), ("training", "epochs"), ("training", "accum_grad"),
                ("training", "sync_interval"), ("optim", "lr")]
    for section, key in positive:
        v = conf[section][key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"config '{section}.{key}' must be a positive number, not {v!r}")
    if conf["objective"]["type"] in ("ce", "kl") and not conf["objective"]["targets"]:
        raise ConfigError(f"objective '{conf['objective']['type']}' needs 'objective.targets' "
                          "(an alignment or soft-target scp)")
    share = conf["objective"]["max_unalignable"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ConfigError(f"config 'objective.max_unalignable' must be a share between 0 and 1, not {share!r}")
    mix = conf["objective"]["mix"]
    if mix is not None:
        if not isinstance(mix, dict) or mix.get("type") not in ("ctc", "ce") or not 0 <= float(mix.get("weight", -1)) <= 1:
            raise ConfigError("objective.mix must be {type: ctc|ce, weight: 0..1}")


def save_config(conf: dict, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(conf, sort_keys=False, default_flow_style=None))
