"""Learning-rate schedules: warm-up then decay, as a multiplier of the base learning rate per step."""

from __future__ import annotations

import math

import torch

from asrkit.errors import ConfigError


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


def build_scheduler(optimizer: torch.optim.Optimizer, conf, total_steps: int):
    """A LambdaLR over `lr_factor` from the `scheduler` config section (asrkit.training.config.SchedulerConfig);
    `total_steps` is the run's length, used unless the section sets its own."""
    total = conf.total_steps or total_steps

    def factor(step: int) -> float:
        return lr_factor(step, name=conf.name, warmup_steps=conf.warmup_steps, total_steps=total,
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
