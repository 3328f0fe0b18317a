"""The acoustic model: an encoder and an output head.

`AsrModel` holds the resolved model config (`conf`), `feat_dim` and the head's `vocab_sizes`: all
that asrkit.models.build needs to build it again. asrkit.models.transducer.TransducerModel extends it
with a predictor and a joiner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models.heads import Head, LinearHead, LrmfHead


class AsrModel(nn.Module):
    """Encoder + output head.

    Attributes:
        encoder: the encoder module (`forward(x, lens) -> (h, out_lens)`, `.output_dim`, `.subsampling`).
        head: the output head (`forward(h, lang) -> logits`).
        conf: the resolved model config (`{"encoder": {...}, "head": {...}}`).
        feat_dim: the input feature dimension.
    """

    def __init__(self, encoder: nn.Module, head: Head, conf: dict, feat_dim: int):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.conf = conf
        self.feat_dim = feat_dim

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """`{lang: V_lang}` in the head's language order (a copy)."""
        return dict(self.head.vocab_sizes)

    @property
    def languages(self) -> list[str]:
        return self.head.languages

    @property
    def frame_subsampling(self) -> int:
        """Input frames per output frame (4 for the conformer, the `subsample` option for dnn/lstm)."""
        return self.encoder.subsampling

    def output_lengths(self, feat_lens: Tensor) -> Tensor:
        """`(batch,)` exact output frame counts T' for input frame counts `feat_lens (batch,)`."""
        return self.encoder.output_lengths(feat_lens)

    def encode(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
        """`feats (B, T, D)` float, `feat_lens (B,)` int64 -> `hidden (B, T', H)`, `out_lens (B,)`.

        Raises:
            AsrkitError: the features' dimension is not the model's `feat_dim`.
        """
        if feats.dim() != 3 or feats.shape[-1] != self.feat_dim:
            raise AsrkitError(f"features of shape {tuple(feats.shape)} do not fit this model, which expects "
                              f"(batch, time, {self.feat_dim})")
        return self.encoder(feats, feat_lens)

    def forward(self, feats: Tensor, feat_lens: Tensor, lang: str | Sequence[str]) -> tuple[Tensor, Tensor]:
        """`feats (B, T, D)` float, `feat_lens (B,)` int64 -> unnormalised `logits (B, T', V_lang)`, `out_lens (B,)`.

        `lang` may also be a list of B languages, one per utterance (a batch that mixes languages):
        each utterance goes through its language's output layer and the logits are padded to the
        largest vocabulary with -inf, so a softmax over an utterance's row is its language's
        distribution (what CTC needs; the padded outputs get no probability and no gradient).

        Raises:
            ConfigError: `lang` has no output layer (the message lists the model's languages).
        """
        hidden, out_lens = self.encode(feats, feat_lens)
        if isinstance(lang, str):
            return self.head(hidden, lang), out_lens
        langs = list(lang)
        if len(langs) != feats.shape[0]:
            raise AsrkitError(f"{len(langs)} languages for a batch of {feats.shape[0]} utterances")
        groups: dict[str, list[int]] = {}
        for i, tag in enumerate(langs):
            groups.setdefault(tag, []).append(i)
        parts = {tag: self.head(hidden[idx], tag) for tag, idx in groups.items()}
        if len(parts) == 1:
            return next(iter(parts.values())), out_lens
        width = max(p.shape[-1] for p in parts.values())
        logits = hidden.new_full((*hidden.shape[:2], width), float("-inf"))
        for tag, idx in groups.items():
            index = torch.tensor(idx, device=hidden.device)
            logits = logits.index_put((index,), nn.functional.pad(parts[tag], (0, width - parts[tag].shape[-1]),
                                                                    value=float("-inf")))
        return logits, out_lens

    def param_counts(self) -> dict[str, int | float]:
        """Parameter counts: `encoder`, `head/<lang>` (per-language layers), `head/shared`, `total`.

        An lrmf head adds `head/full_rank_equivalent` (one full-rank layer per language,
        `sum_l (H*V_l + V_l)`) and `head/reduction_percent` (how much smaller the lrmf head is, in %).
        """
        counts: dict[str, int | float] = {"encoder": sum(p.numel() for p in self.encoder.parameters())}
        if not isinstance(self.head, LinearHead):
            for lang in self.head.languages:
                counts[f"head/{lang}"] = sum(p.numel() for p in self.head.language_parameters(lang))
        counts["head/shared"] = sum(p.numel() for p in self.head.shared_parameters())
        if isinstance(self.head, LrmfHead):
            head_total = sum(p.numel() for p in self.head.parameters())
            full = LrmfHead.full_rank_params(self.head.input_dim, self.head.vocab_sizes)
            counts["head/full_rank_equivalent"] = full
            counts["head/reduction_percent"] = 100.0 * (1.0 - head_total / full)
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        """Add output layers for new languages (lrmf: a new `B_l` on the shared `A`; mtl: a full-rank layer).

        New layers are trainable whatever `freeze` said before.

        Raises:
            ConfigError: a language is already in the model, or (linear head) its size differs.
        """
        self.head.add_languages(vocab_sizes)

    def freeze(self, part: str) -> None:
        """Set which parameters train: exactly `part` is frozen (`requires_grad=False`), the rest trains.

        Args:
            part: "encoder" (the encoder), "shared" (everything used by all languages: the encoder,
                and for lrmf the shared `A`), or "none" (unfreeze everything).

        Raises:
            ConfigError: unknown `part`, or "shared" with a linear head (nothing would train).
        """
        if part not in ("encoder", "shared", "none"):
            raise ConfigError(f"freeze: unknown part {part!r} (choose from encoder, shared, none)")
        if part == "shared" and isinstance(self.head, LinearHead):
            raise ConfigError("freeze 'shared' with a linear head would leave nothing to train "
                              "(its one output layer is shared by all languages)")
        for p in self.parameters():
            p.requires_grad_(True)
        if part == "none":
            return
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        if part == "shared":
            for p in self.head.shared_parameters():
                p.requires_grad_(False)
