"""Learning-rate schedules: warm-up then decay, as a multiplier of the base learning rate per step."""

from __future__ import annotations

import logging
import math

import torch

from asrkit.errors import ConfigError

log = logging.getLogger("asrkit.train")

# Warn when the warm-up takes this share of the planned steps or more: the peak learning rate then
# comes late or never, and a short run (a small corpus) ends before the model has trained at it.
WARMUP_WARN_SHARE = 0.3


def lr_factor(step: int, *, name: str, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """The multiplier of the base learning rate for optimizer step `step` (0-based).

    constant: 1. warmup_constant: linear warm-up to 1. warmup_linear / warmup_cosine: warm-up, then
    linear / cosine decay to `min_lr_ratio` at `total_steps`. noam: warm-up, then ∝ 1/sqrt(step),
    peaking at 1 after warm-up (the Transformer schedule normalised to the configured lr).
    """
    s = step + 1
    warm = min(1.0, s / warmup_steps) if warmup_steps > 0 else 1.0
    if name == "constant":
        return 1.0
    if name == "warmup_constant":
        return warm
    if name == "noam":
        w = max(1, warmup_steps)
        return min(s / w, math.sqrt(w / s))
    if s <= warmup_steps:
        return warm
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (s - warmup_steps) / span)
    if name == "warmup_linear":
        return 1.0 - (1.0 - min_lr_ratio) * progress
    if name == "warmup_cosine":
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ConfigError(f"unknown scheduler '{name}'")


def warmup_steps_for(warmup_steps: float, total_steps: int) -> int:
    """The warm-up in optimizer steps: `scheduler.warmup_steps` as given, or, when it is a number
    between 0 and 1, that share of the planned steps (so the warm-up scales with the data size).
    (SchedulerConfig refuses a negative warm-up or a fractional one above 1.)"""
    if 0 < warmup_steps < 1:
        return max(1, round(warmup_steps * total_steps))
    return int(warmup_steps)


def check_warmup(warmup_steps: int, total_steps: int, name: str) -> str | None:
    """A warning when the warm-up takes `WARMUP_WARN_SHARE` of the planned steps or more, else None."""
    if name == "constant" or total_steps <= 0 or warmup_steps < WARMUP_WARN_SHARE * total_steps:
        return None
    if warmup_steps >= total_steps:
        what = "the learning rate never reaches its peak"
    else:
        what = f"the learning rate peaks only at step {warmup_steps}"
    return (f"scheduler.warmup_steps={warmup_steps} with {total_steps} steps planned: {what}; use fewer "
            f"warm-up steps (e.g. scheduler.warmup_steps=0.1, a tenth of the planned steps) or more epochs")


def build_scheduler(optimizer: torch.optim.Optimizer, conf, total_steps: int):
    """A LambdaLR over `lr_factor` from the `scheduler` config section (asrkit.training.config.SchedulerConfig);
    `total_steps` is the run's length, used unless the section sets its own. Logs a warning when the
    warm-up is a large share of the planned steps (`check_warmup`)."""
    total = conf.total_steps or total_steps
    warmup = warmup_steps_for(conf.warmup_steps, total)
    problem = check_warmup(warmup, min(total, total_steps) if total_steps else total, conf.name)
    if problem:
        log.warning("%s", problem)

    def factor(step: int) -> float:
        return lr_factor(step, name=conf.name, warmup_steps=warmup, total_steps=total,
                         min_lr_ratio=conf.min_lr_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def scaled_lr(base_lr: float, rule: str, world_size: int, accum_grad: int) -> float:
    """Scale the learning rate with the global batch (world size x accumulation): linear or sqrt rule."""
    k = world_size * accum_grad
    if rule == "none" or k == 1:
        return base_lr
    if rule == "linear":
        return base_lr * k
    if rule == "sqrt":
        return base_lr * math.sqrt(k)
    raise ConfigError(f"unknown lr scaling rule '{rule}'")
