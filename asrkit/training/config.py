"""Training configs: YAML files plus `--set key=value` overrides, read into a typed `TrainConfig`.

Every section is an asrkit.schema section: a key that is not in it is an error at start (naming
the key and the known ones), and so is a value of the wrong kind, so a typo never silently trains
the wrong model. The options of the model, SpecAugment, the objective, EMA and the strategies are
declared where they are used (asrkit.models.build, asrkit.models.specaugment, and
asrkit.training.objectives / ema / strategies); this module assembles them with the data,
optimizer, schedule and training sections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from asrkit.data.sampler import MAX_PADDING
from asrkit.errors import ConfigError
from asrkit.fileio import atomic_write_text
from asrkit.models.build import ModelConfig
from asrkit.models.specaugment import SpecAugmentConfig
from asrkit.schema import (
    BOOL,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    TEXT,
    TRAINING_CONFIG_WORDING,
    Kind,
    Section,
    integer,
    merge,
    number,
    one_of,
    option,
    optional,
    section,
)
from asrkit.training.ema import EmaConfig
from asrkit.training.objectives import ObjectiveConfig
from asrkit.training.strategies import STRATEGY_OPTIONS


@dataclass
class DataConfig(Section):
    wording = TRAINING_CONFIG_WORDING
    max_frames: int = option(20000, POSITIVE_INT)     # input frames per batch (sum over utterances)
    max_utts: int = option(256, POSITIVE_INT)
    # Length buckets keep padding within this share of each language's real frames, with the fewest
    # batches that allows (asrkit.data.sampler, docs/training.md); null: batches filled up to max_frames.
    max_padding: float | None = option(MAX_PADDING, optional(NON_NEGATIVE))
    min_frames: int = option(1, NON_NEGATIVE_INT)
    max_utt_frames: int = option(3000, POSITIVE_INT)  # longer utterances are skipped (and counted in the log)
    lang_sampling: str = option("proportional", one_of("proportional", "balanced", "temperature"))
    lang_alpha: float = option(0.5, number())         # temperature sampling: p(lang) ∝ n_lang ** alpha
    language_homogeneous: bool = option(True, BOOL)
    num_workers: int = option(0, NON_NEGATIVE_INT)
    norm_vars: bool = option(False, BOOL)             # CMVN: normalise variances too (apply-cmvn --norm-vars)
    specaugment: SpecAugmentConfig | None = section(SpecAugmentConfig, optional=True, empty_is_off=True)
    shuffle: bool = option(True, BOOL)


def _betas(v) -> list:
    return [PROBABILITY.check(x, "optim.betas") for x in v] if isinstance(v, (list, tuple)) else v


@dataclass
class OptimConfig(Section):
    wording = TRAINING_CONFIG_WORDING
    name: str = option("adamw", one_of("adamw", "sgd"))
    lr: float = option(1e-3, POSITIVE)
    weight_decay: float = option(1e-2, NON_NEGATIVE)
    betas: list = option([0.9, 0.98], Kind("two numbers in [0, 1)", lambda v: isinstance(v, list) and len(v) == 2,
                                           _betas))
    eps: float = option(1e-8, POSITIVE)
    momentum: float = option(0.9, NON_NEGATIVE)
    nesterov: bool = option(False, BOOL)
    # Scale lr with the global batch (world size x accum_grad): none | linear | sqrt.
    lr_scaling: str = option("none", one_of("none", "linear", "sqrt"))


_SHARE = number(0.0, 1.0, low_open=True, high_open=True)
WARMUP = Kind("a non-negative integer or a share of the planned steps in (0, 1)",
              lambda v: NON_NEGATIVE_INT.test(v) or _SHARE.test(v), NON_NEGATIVE_INT.convert)


@dataclass
class SchedulerConfig(Section):
    wording = TRAINING_CONFIG_WORDING
    name: str = option("warmup_cosine", one_of("constant", "warmup_constant", "warmup_linear", "warmup_cosine",
                                               "noam"))
    # Steps, or below 1 a share of the planned steps (0.1: a tenth), so that the warm-up scales
    # with the data: a fixed count may outlast a small corpus's whole run.
    warmup_steps: int | float = option(200, WARMUP)
    total_steps: int | None = option(None, optional(POSITIVE_INT))  # default: training.max_steps, else epochs x steps per epoch
    min_lr_ratio: float = option(0.05, FRACTION)


def _is_masks(v) -> bool:
    if isinstance(v, Mapping):
        return set(v) == {"masks"} and isinstance(v["masks"], str) and v["masks"] != ""
    return v is None or (isinstance(v, str) and v != "")


@dataclass
class TrainingConfig(Section):
    wording = TRAINING_CONFIG_WORDING
    epochs: int = option(10, POSITIVE_INT)
    # The run ends after this many optimizer steps, however many epochs that takes (epochs then
    # count no more); it is also the schedule's default length.
    max_steps: int | None = option(None, optional(POSITIVE_INT))
    grad_clip: float = option(5.0, NON_NEGATIVE)  # 0: no clipping
    accum_grad: int = option(1, POSITIVE_INT)
    seed: int = option(0, integer())
    log_interval: int = option(10, POSITIVE_INT)
    save_interval: int = option(0, NON_NEGATIVE_INT)  # also checkpoint every N steps (0: only at epoch ends)
    keep_last: int = option(3, NON_NEGATIVE_INT)
    device: str = option("auto", one_of("auto", "cpu", "cuda"))
    amp: str = option("auto", one_of("auto", "bf16", "none"))  # auto: bf16 on cuda
    # Several processes: allreduce | model-averaging | bmuf | gossip, synchronised every
    # sync_interval steps (not allreduce), with the strategy's own options.
    strategy: str = option("allreduce", one_of("allreduce", "model-averaging", "bmuf", "gossip"))
    sync_interval: int = option(1, POSITIVE_INT)
    strategy_opts: Section = section(STRATEGY_OPTIONS)
    ema: EmaConfig | None = section(EmaConfig, optional=True, empty_is_off=True)
    init_from: str | None = option(None, optional(TEXT))
    init_lrmf_svd: bool = option(False, BOOL)  # with init_from an mtl model and an lrmf head: A, B_l from an SVD
    freeze: str = option("none", one_of("none", "encoder", "shared"))
    # A masks dir of `asrkit prune`: train each language only inside its mask.
    pathways: str | dict | None = option(None, Kind("a masks folder or null", _is_masks))
    dist_timeout: float = option(300.0, POSITIVE)
    progress: str = option("auto", one_of("auto", "none", "always"))


@dataclass
class TrainConfig(Section):
    """The whole training config: `conf.model.encoder.d_model`, `conf.training.epochs`, ..."""

    wording = TRAINING_CONFIG_WORDING

    model: ModelConfig = section(ModelConfig)
    objective: ObjectiveConfig = section(ObjectiveConfig)
    data: DataConfig = section(DataConfig)
    optim: OptimConfig = section(OptimConfig)
    scheduler: SchedulerConfig = section(SchedulerConfig)
    training: TrainingConfig = section(TrainingConfig)

    @classmethod
    def prepare(cls, data: dict, where: str) -> dict:
        # The trainer's default head is mtl (one output layer per language); a bare model's is linear.
        model = data.get("model")
        if model is None or isinstance(model, Mapping):
            model = dict(model or {})
            head = model.get("head")
            if head is None or (isinstance(head, Mapping) and "type" not in head):
                model["head"] = {"type": "mtl", **(head or {})}
            data = {**data, "model": model}
        return data

    def validate(self, where: str) -> None:
        if self.objective.type == "rnnt" and not self.model.is_transducer:
            raise ConfigError("objective 'rnnt' needs a transducer: add model.predictor (and model.joiner), "
                              "e.g. --set 'model.predictor={}'")


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


def _read_yaml(path: Path) -> dict:
    raw = path.read_bytes()
    try:
        loaded = yaml.safe_load(raw.decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        line, start = raw[:e.start].count(b"\n") + 1, raw.rfind(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({e.reason} at byte {e.start - start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping")
    return loaded


def load_config(path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                overrides: Sequence[str] = (), base: Mapping | None = None) -> TrainConfig:
    """Resolve a training config: defaults <- base (e.g. a resumed run) <- YAML file(s), in order <- overrides.

    Each layer is laid over the ones before it (asrkit.schema.merge: a section that changes its type
    starts over) and its keys are checked as it comes, so an unknown key names the file or `--set`
    that brought it; values are checked once all layers are in.

    Raises:
        FileNotFoundError: a YAML file does not exist.
        ConfigError: unknown key, bad YAML, or a value of the wrong kind.
    """
    paths = [] if path is None else [path] if isinstance(path, (str, os.PathLike)) else list(path)
    raw: dict = {}

    def lay(layer: Mapping, source: str | None) -> dict:
        merged = merge(TrainConfig, raw, layer)
        try:
            TrainConfig.check_keys(merged, "")
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}" if source else str(e)) from None
        return merged

    if base:
        raw = lay(base, None)
    for p in paths:
        raw = lay(_read_yaml(Path(p)), str(p))
    for item in overrides:
        keys, value = parse_override(item)
        raw = lay(_nest(keys, value), f"--set {item}")
    return TrainConfig.read(raw, "")


def same_config(path: str | os.PathLike, conf: TrainConfig) -> bool:
    """Whether the config.yaml at `path` resolves to `conf` (False if it does not read as a config)."""
    try:
        return load_config(base=yaml.safe_load(Path(path).read_text(encoding="utf-8"))).to_dict() == conf.to_dict()
    except (ConfigError, yaml.YAMLError, OSError):
        return False


def save_config(conf: TrainConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(conf.to_dict(), sort_keys=False, default_flow_style=None))
