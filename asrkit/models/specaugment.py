"""SpecAugment time and frequency masking (Park et al., 2019) for padded batches.

torchaudio's FrequencyMasking/TimeMasking draw masks over the whole padded time axis (a time mask
can fall on padding) and only from the global RNG, so this small vectorised version draws each
utterance's masks within its own length, optionally from a `torch.Generator`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from asrkit.schema import FRACTION, NON_NEGATIVE_INT, Section, one_of, option


@dataclass
class SpecAugmentConfig(Section):
    """SpecAugment's options; the defaults are the LibriSpeech "LD" policy of the paper (F=27, mF=2,
    T=100, p=0.2, mT=2)."""

    num_freq_masks: int = option(2, NON_NEGATIVE_INT)     # mF
    freq_mask_width: int = option(27, NON_NEGATIVE_INT)   # F: the largest frequency mask; widths 0..F
    num_time_masks: int = option(2, NON_NEGATIVE_INT)     # mT
    time_mask_width: int = option(100, NON_NEGATIVE_INT)  # T: the largest time mask
    time_mask_ratio: float = option(0.2, FRACTION)        # p: a time mask is also at most p * length wide
    fill: str = option("zero", one_of("zero", "mean"))   # zero (features are mean-normalised) or the utterance's mean


def _draw_spans(num_masks: int, max_width: Tensor, extent: Tensor, generator: torch.Generator | None,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """Per utterance, `num_masks` spans `[start, start + width)` with width in 0..max_width inside 0..extent.

    `max_width`, `extent`: `(batch,)` int64 on the generator's device. Returns `(batch, num_masks)`
    starts and ends on `device`.
    """
    batch = extent.shape[0]
    width = (torch.rand(batch, num_masks, generator=generator, device=extent.device)
             * (max_width.unsqueeze(1) + 1)).floor().long()
    width = torch.minimum(width, max_width.unsqueeze(1))  # rand < 1, but guard against rounding up
    start = (torch.rand(batch, num_masks, generator=generator, device=extent.device)
             * (extent.unsqueeze(1) - width + 1)).floor().long()
    start = torch.minimum(start, extent.unsqueeze(1) - width).clamp(min=0)
    return start.to(device), (start + width).to(device)


def _span_mask(start: Tensor, end: Tensor, size: int) -> Tensor:
    """`(batch, size)` bool mask, True inside any of the `(batch, num_masks)` spans."""
    pos = torch.arange(size, device=start.device).view(1, 1, size)
    return ((pos >= start.unsqueeze(2)) & (pos < end.unsqueeze(2))).any(dim=1)


class SpecAugment(nn.Module):
    """Time and frequency masking, active in training mode only (`module.train()`).

    Args:
        conf: a SpecAugmentConfig, or its options as a mapping (missing ones take the defaults).
            The resolved options are in `.conf`.

    Call: `(feats (B, T, D), lens (B,), generator=None) -> feats (B, T, D)`, a new tensor. Time
    masks lie within each utterance's `lens` frames; frequency masks cover all its frames. Random
    draws come from `generator` (any device) or else the global RNG of `feats`' device, so a seeded
    generator makes the masks reproducible.

    Raises:
        ConfigError: unknown option or bad value.
    """

    def __init__(self, conf: SpecAugmentConfig | Mapping | None = None):
        super().__init__()
        self.conf = SpecAugmentConfig.read(conf, "specaugment")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.conf.to_dict().items())

    def forward(self, feats: Tensor, lens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not self.training:
            return feats
        batch, time, dim = feats.shape
        c = self.conf
        draw_device = generator.device if generator is not None else feats.device
        lens_d = lens.to(device=draw_device, dtype=torch.long).clamp(max=time)
        masked = torch.zeros(batch, time, dim, dtype=torch.bool, device=feats.device)
        if c.num_freq_masks and c.freq_mask_width:
            extent = torch.full((batch,), dim, dtype=torch.long, device=draw_device)
            max_width = extent.clamp(max=c.freq_mask_width)
            start, end = _draw_spans(c.num_freq_masks, max_width, extent, generator, feats.device)
            masked |= _span_mask(start, end, dim).unsqueeze(1)
        if c.num_time_masks and c.time_mask_width:
            max_width = (lens_d.double() * c.time_mask_ratio).floor().long().clamp(max=c.time_mask_width)
            start, end = _draw_spans(c.num_time_masks, max_width, lens_d, generator, feats.device)
            masked |= _span_mask(start, end, time).unsqueeze(2)
        if c.fill == "zero":
            return feats.masked_fill(masked, 0.0)
        valid = (torch.arange(time, device=feats.device) < lens.to(feats.device).unsqueeze(1)).unsqueeze(2)
        count = (valid.sum(dim=(1, 2)) * dim).clamp(min=1)
        mean = (feats * valid).sum(dim=(1, 2)) / count  # (B,) mean over the valid frames
        return torch.where(masked, mean.view(batch, 1, 1).to(feats.dtype), feats)
