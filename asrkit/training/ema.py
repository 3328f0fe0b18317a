"""An exponential moving average of the model, kept beside the workers and never sent back to them.

Built on torch.optim.swa_utils.AveragedModel with PyTorch's EMA update; updated after each
synchronisation (every optimizer step in a single process), saved as `ema.pt`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from asrkit.errors import ConfigError
from asrkit.schema import NON_NEGATIVE_INT, OPTIONS_WORDING, PROBABILITY, Section, option


@dataclass
class EmaConfig(Section):
    """`training.ema`: e <- decay * e + (1 - decay) * w after each synchronisation, from `start_step` on."""

    wording = OPTIONS_WORDING

    decay: float = option(0.999, PROBABILITY)
    start_step: int = option(0, NON_NEGATIVE_INT)


class ModelEma:
    """EMA of a model's parameters and buffers: e <- decay * e + (1 - decay) * w.

    Each rank keeps its own (under allreduce / model-averaging / bmuf they are identical, since
    they are fed the synchronised weights); nothing is ever copied back into the trained model.

    Args:
        model: the model being trained (unwrapped, not DDP).
        decay: weight of the old average, in [0, 1).
        start_step: steps before which the EMA just copies the model.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999, start_step: int = 0):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"training.ema.decay must be in [0, 1), not {decay}")
        self.decay, self.start_step = float(decay), int(start_step)
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        self.averaged.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Fold the current weights in (or copy them before start_step)."""
        if step <= self.start_step:
            for e, p in zip(self.averaged.module.state_dict().values(), model.state_dict().values()):
                e.copy_(p)
            self.averaged.n_averaged.fill_(1)
            return
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)

    def model_state_dict(self) -> dict:
        """The averaged weights, with the plain model's key names."""
        return self.averaged.module.state_dict()


def build_ema(conf: EmaConfig | Mapping | None, model: torch.nn.Module) -> ModelEma | None:
    """The EMA of `model` that `training.ema` asks for (None, or `{}`: no EMA; any option given turns it on)."""
    if conf is None or (isinstance(conf, Mapping) and not conf):
        return None
    conf = EmaConfig.read(conf, "training.ema")
    return ModelEma(model, decay=conf.decay, start_step=conf.start_step)
