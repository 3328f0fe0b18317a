"""Training objectives on padded batches: CTC, frame cross-entropy, KL to soft targets, and mixes.

Each loss takes unnormalised logits `(batch, time, vocab)` with the model's output lengths, works in
float32 whatever the logits' dtype (bf16 autocast included), and returns `(loss, normaliser)`: the
normalised scalar loss and the count it was divided by, so a trainer can re-weight losses across
gradient-accumulation steps or ranks (`loss * normaliser` is the sum).

Normalisation conventions:
    - ctc: `reduction="mean"` is the sum over utterances / number of utterances (ESPnet's and
      WeNet's per-utterance convention; torch's own "mean" divides each utterance by its target
      length first). `"token"` divides by the number of target tokens, `"sum"` by nothing.
    - ce and kl: the mean over valid frames (frames inside `out_lens` whose target is present).
    - kl: the KL term is multiplied by T^2 (Hinton et al., 2015), so gradients keep their scale
      when the temperature changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models.ctc import count_unalignable, ctc_min_frames_batch
from asrkit.schema import (
    CONFIG_KEYS_WORDING,
    FRACTION,
    NON_NEGATIVE_INT,
    POSITIVE,
    TEXT,
    OneOf,
    Section,
    one_of,
    option,
    optional,
    section,
)

log = logging.getLogger("asrkit.train")

IGNORE_LABEL = -100  # padding value of frame-label batches (torch's cross_entropy ignore_index)
CTC_REDUCTIONS = ("mean", "token", "sum")


def _valid_frames(out_lens: Tensor, time: int) -> Tensor:
    """`(batch, time)` bool, True for frame indices below each utterance's output length."""
    return torch.arange(time, device=out_lens.device) < out_lens.to(torch.long).unsqueeze(1)


def _fit_time(t: Tensor, time: int, pad_value) -> Tensor:
    """Crop or pad dim 1 of a target batch to the logits' `time` (valid frames are checked elsewhere)."""
    if t.shape[1] > time:
        return t[:, :time]
    if t.shape[1] < time:
        pad_shape = (t.shape[0], time - t.shape[1], *t.shape[2:])
        return torch.cat([t, t.new_full(pad_shape, pad_value)], dim=1)
    return t


def ctc_loss(logits: Tensor, out_lens: Tensor, targets: Tensor, target_lens: Tensor, blank: int = 0,
             reduction: str = "mean") -> tuple[Tensor, float]:
    """CTC loss via `torch.nn.functional.ctc_loss` on float32 log-softmax, with `zero_infinity=True`.

    Args:
        logits: `(B, T, V)` unnormalised; out_lens: `(B,)` valid frames.
        targets: `(B, S)` int64 token ids, padded (the padding value is not read); target_lens: `(B,)`.
        blank: the blank token id.
        reduction: "mean" (sum / B, ESPnet/WeNet), "token" (sum / total target tokens) or "sum".

    Returns:
        `(loss, normaliser)`: the scalar loss and B, the token count or 1. Utterances that cannot be
        aligned (more tokens than frames) contribute 0, as with Kaldi's and ESPnet's zero_infinity.

    Raises:
        ValueError: unknown reduction.
    """
    if reduction not in CTC_REDUCTIONS:
        raise ValueError(f"ctc_loss: unknown reduction {reduction!r} (choose from {', '.join(CTC_REDUCTIONS)})")
    log_probs = logits.float().log_softmax(dim=-1).transpose(0, 1)  # (T, B, V) as torch expects
    per_utt = F.ctc_loss(log_probs, targets, out_lens, target_lens, blank=blank, reduction="none",
                         zero_infinity=True)
    total = per_utt.sum()
    if reduction == "mean":
        normaliser = float(logits.shape[0])
    elif reduction == "token":
        normaliser = float(target_lens.sum())
    else:
        normaliser = 1.0
    return total / max(normaliser, 1.0), normaliser


def ce_loss(logits: Tensor, out_lens: Tensor, labels: Tensor) -> tuple[Tensor, float]:
    """Frame-level cross-entropy against frame labels (e.g. Kaldi pdf-ids from an alignment).

    Args:
        logits: `(B, T, V)` unnormalised; out_lens: `(B,)` valid output frames.
        labels: `(B, T_lab)` int64, padded with -100. It is cropped / padded to T; call
            `check_frame_counts` first so that each utterance's label count equals its output frames.

    Returns:
        `(loss, num_frames)`: the mean over frames inside `out_lens` with a label, and their number
        (the loss is 0 when there are none).
    """
    time = logits.shape[1]
    labels = _fit_time(labels, time, IGNORE_LABEL).to(logits.device)
    labels = labels.masked_fill(~_valid_frames(out_lens.to(logits.device), time), IGNORE_LABEL)
    num_frames = float((labels != IGNORE_LABEL).sum())
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                            ignore_index=IGNORE_LABEL, reduction="sum")
    return total / max(num_frames, 1.0), num_frames


def kl_loss(logits: Tensor, out_lens: Tensor, soft_targets: Tensor, temperature: float = 1.0) -> tuple[Tensor, float]:
    """Knowledge-distillation loss `T^2 * KL(p || softmax(logits / T))`, averaged over valid frames.

    `soft_targets` are the teacher's probabilities, already computed at temperature T when the
    posteriors were dumped; only the student's logits are divided by T here. `0 * log 0` counts as
    0, so with T=1 and one-hot targets this equals `ce_loss`.

    Args:
        logits: `(B, T, V)` unnormalised; out_lens: `(B,)` valid output frames.
        soft_targets: `(B, T_s, V)` float, each valid row a distribution. Cropped / padded to T; call
            `check_frame_counts` first.
        temperature: T > 0.

    Returns:
        `(loss, num_frames)`: the mean per-frame KL times T^2, and the number of valid frames.

    Raises:
        AsrkitError: the soft targets' last dimension is not the model's output dimension.
        ValueError: temperature <= 0.
    """
    if temperature <= 0:
        raise ValueError(f"kl_loss: temperature must be > 0, got {temperature}")
    if soft_targets.shape[-1] != logits.shape[-1]:
        raise AsrkitError(f"soft targets have {soft_targets.shape[-1]} columns but the model outputs "
                          f"{logits.shape[-1]} classes (were the posteriors dumped by a teacher with this vocabulary?)")
    time = logits.shape[1]
    targets = _fit_time(soft_targets, time, 0.0).to(device=logits.device, dtype=torch.float32)
    valid = _valid_frames(out_lens.to(logits.device), time)
    log_q = (logits.float() / temperature).log_softmax(dim=-1)
    per_frame = (torch.special.xlogy(targets, targets) - targets * log_q).sum(dim=-1)  # (B, T)
    num_frames = float(valid.sum())
    total = per_frame.masked_fill(~valid, 0.0).sum() * (temperature ** 2)
    return total / max(num_frames, 1.0), num_frames


def check_frame_counts(out_lens: Tensor | Sequence[int], label_lens: Tensor | Sequence[int],
                       keys: Sequence[str], *, subsampling: int | None = None) -> None:
    """Check that each utterance's frame targets (alignment / soft targets) match the model's output frames.

    Args:
        out_lens: `(B,)` model output frame counts (`AsrModel.output_lengths(feat_lens)`).
        label_lens: `(B,)` target frame counts, in the same order.
        keys: the B utterance ids.
        subsampling: the model's `frame_subsampling`, quoted in the message when given.

    Raises:
        AsrkitError: names the first mismatching utterance, both counts, and the likely cause.
    """
    # One transfer each (a tensor on the GPU would otherwise sync once per element).
    out = out_lens.tolist() if isinstance(out_lens, Tensor) else [int(n) for n in out_lens]
    lab = label_lens.tolist() if isinstance(label_lens, Tensor) else [int(n) for n in label_lens]
    for key, n_out, n_lab in zip(keys, out, lab):
        if n_out == n_lab:
            continue
        factor = f"{subsampling}" if subsampling is not None else "the model's frame subsampling"
        if n_out and n_lab >= 2 * n_out:
            cause = (f"the targets are about {n_lab / n_out:.1f}x denser than the model output; the model "
                     f"subsamples frames by {factor}, so the targets must be at the same reduced rate")
        elif n_lab and n_out >= 2 * n_lab:
            cause = (f"the model output is about {n_out / n_lab:.1f}x denser than the targets (e.g. an alignment "
                     f"made with frame_subsampling_factor={round(n_out / n_lab)}); set the encoder's subsampling "
                     f"(now {factor}) to match")
        else:
            cause = (f"a small difference usually means the targets were made from features with other "
                     f"options (snip-edges) or at another subsampling than the model's ({factor})")
        raise AsrkitError(f"utterance '{key}': the targets have {n_lab} frames but the model outputs "
                          f"{n_out} frames: {cause}")


# --- configurable objective --------------------------------------------------------------------

@dataclass
class CtcLoss(Section):
    type = "ctc"
    blank: int = option(0, NON_NEGATIVE_INT)
    reduction: str = option("mean", one_of(*CTC_REDUCTIONS))


@dataclass
class CeLoss(Section):
    type = "ce"


@dataclass
class KlLoss(Section):
    type = "kl"
    temperature: float = option(1.0, POSITIVE)


@dataclass
class CtcMix(CtcLoss):
    """CTC mixed into another objective with weight w: loss = (1 - w) * main + w * ctc."""

    weight: float = option(None, FRACTION)


@dataclass
class CeMix(CeLoss):
    """Frame CE mixed into another objective; its alignments are `targets` / `valid_targets`."""

    weight: float = option(None, FRACTION)
    targets: str | None = option(None, optional(TEXT), omit_none=True)
    valid_targets: str | None = option(None, optional(TEXT), omit_none=True)


LOSSES = OneOf((CtcLoss, CeLoss, KlLoss))
MIXES = OneOf((CtcMix, CeMix))
# Which batch fields (keyword arguments of Objective.__call__) each objective reads.
REQUIRED_TARGETS = {"ctc": ("tokens", "token_lens"), "ce": ("frame_labels",), "kl": ("soft_targets",)}


@dataclass
class ObjectiveConfig(Section):
    """The training config's `objective` section."""

    wording = CONFIG_KEYS_WORDING

    type: str = option("ctc", one_of("ctc", "ce", "kl", "rnnt"))
    targets: str | None = option(None, optional(TEXT))        # ce: alignments; kl: soft targets (train data)
    valid_targets: str | None = option(None, optional(TEXT))  # the same for the validation data
    temperature: float = option(1.0, POSITIVE)                 # kl: the student's softmax temperature
    mix: Section | None = section(MIXES, optional=True)       # loss = (1 - w) * main + w * mix
    # ctc: refuse training when a larger share of the training utterances has more tokens than
    # output frames (CTC cannot align them, so they would silently teach nothing); see check_ctc_lengths.
    max_unalignable: float = option(0.01, FRACTION)

    def validate(self, where: str) -> None:
        if self.type in ("ce", "kl") and not self.targets:
            raise ConfigError(f"objective '{self.type}' needs '{where}.targets' (an alignment or soft-target scp)")
        if self.mix is not None:
            _check_mix(self.type, self.mix, where)
            if self.type == "rnnt":
                raise ConfigError(f"{where}.mix: a transducer computes its own loss (use model.aux_ctc for CTC)")
            if isinstance(self.mix, CeMix) and not self.mix.targets:
                raise ConfigError(f"{where}.mix: type ce needs 'targets' (an alignment rspecifier or scp)")


def _check_mix(main: str, mix: Section, where: str) -> None:
    if mix.type == main:
        raise ConfigError(f"{where}.mix.type: mixing '{main}' with itself has no effect")


class Objective:
    """A training objective, optionally mixed with a second one.

    Args:
        conf: the main loss: a CtcLoss / CeLoss / KlLoss, or its plain values `{"type": "ctc"|"ce"|"kl",
            <options>, "mix": {"type": ..., "weight": w, <options>}}` with options `blank` (0) and
            `reduction` ("mean") for ctc, `temperature` (1.0) for kl.
        mix: a CtcMix / CeMix (or its plain values) when `conf` is a section.

    With a mix, `loss = (1 - w) * main + w * mixed` (Hinton's distillation form for kl + ce/ctc).
    Each term keeps its own normalisation (see the module docstring), so `w` also balances their
    scales.

    Call: `objective(logits (B, T, V), out_lens (B,), *, tokens=(B, S) int64, token_lens=(B,),
    frame_labels=(B, T) int64 padded with -100, soft_targets=(B, T, V) float)` with the fields in
    `required_targets`; returns `(loss, stats)` where stats holds floats: `loss`, `loss_<type>` and
    `norm_<type>` (the normaliser) for each term, and for a ctc term `unalignable`: the utterances
    whose tokens need more frames than they have (their CTC loss is 0; see `check_ctc_lengths`).

    Raises:
        ConfigError: unknown type or option, a bad value, or a mix of a type with itself.
    """

    def __init__(self, conf: Mapping | Section, mix: Mapping | Section | None = None):
        if isinstance(conf, Mapping):
            conf = dict(conf)
            mix = conf.pop("mix", mix)
        self.main = LOSSES.read(conf, "objective")
        self.mix = None if mix is None else MIXES.read(mix, "objective.mix")
        if self.mix is not None:
            _check_mix(self.main.type, self.mix, "objective")
        self.conf = {"type": self.main.type, **self.main.to_dict()}
        if self.mix is not None:
            self.conf["mix"] = {"type": self.mix.type, **self.mix.to_dict()}

    @property
    def required_targets(self) -> tuple[str, ...]:
        """Names of the keyword arguments (batch fields) this objective needs."""
        fields = REQUIRED_TARGETS[self.main.type]
        if self.mix:
            fields += REQUIRED_TARGETS[self.mix.type]
        return fields

    @staticmethod
    def _term(term: Section, logits: Tensor, out_lens: Tensor, targets: Mapping) -> tuple[Tensor, float]:
        missing = [f for f in REQUIRED_TARGETS[term.type] if targets.get(f) is None]
        if missing:
            raise ValueError(f"objective '{term.type}' needs batch field(s) {', '.join(missing)}")
        if isinstance(term, CtcLoss):
            return ctc_loss(logits, out_lens, targets["tokens"], targets["token_lens"], blank=term.blank,
                            reduction=term.reduction)
        if isinstance(term, CeLoss):
            return ce_loss(logits, out_lens, targets["frame_labels"])
        return kl_loss(logits, out_lens, targets["soft_targets"], temperature=term.temperature)

    def __call__(self, logits: Tensor, out_lens: Tensor, *, tokens: Tensor | None = None,
                 token_lens: Tensor | None = None, frame_labels: Tensor | None = None,
                 soft_targets: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        targets = {"tokens": tokens, "token_lens": token_lens, "frame_labels": frame_labels,
                   "soft_targets": soft_targets}
        loss, norm = self._term(self.main, logits, out_lens, targets)
        stats = {f"loss_{self.main.type}": float(loss.detach()), f"norm_{self.main.type}": norm}
        if self.mix:
            w = float(self.mix.weight)
            mixed, mix_norm = self._term(self.mix, logits, out_lens, targets)
            stats[f"loss_{self.mix.type}"] = float(mixed.detach())
            stats[f"norm_{self.mix.type}"] = mix_norm
            loss = (1.0 - w) * loss + w * mixed
        stats["loss"] = float(loss.detach())
        if tokens is not None and "ctc" in (self.main.type, self.mix.type if self.mix else None):
            need = ctc_min_frames_batch(tokens, token_lens.to(tokens.device))
            stats["unalignable"] = float((out_lens.to(need.device) < need).sum())
        return loss, stats


def build_objective(conf: ObjectiveConfig) -> Objective | None:
    """The Objective of a training config's `objective` section; None for rnnt (a transducer
    computes its own loss)."""
    if conf.type == "rnnt":
        return None
    main = KlLoss(temperature=conf.temperature) if conf.type == "kl" else LOSSES.variant(conf.type, "objective")()
    return Objective(main, conf.mix)


def objective_loss(objective, logits: torch.Tensor, out_lens: torch.Tensor,
                   targets: dict[str, tuple[torch.Tensor, torch.Tensor]], keys: list[str],
                   subsampling: int | None = None) -> tuple[torch.Tensor, dict]:
    """Loss of a batch; frame targets are checked against the model's output frames first.

    Returns (loss, stats) with stats["normaliser"] the count the loss is averaged over.
    """
    fields = {}
    if "text" in targets:
        fields["tokens"], fields["token_lens"] = targets["text"]
    if "ali" in targets:
        labels, lens = targets["ali"]
        check_frame_counts(out_lens, lens, keys, subsampling=subsampling)
        fields["frame_labels"] = labels
        if int(labels.max()) >= logits.shape[-1]:
            bad = int((labels.max(dim=1).values >= logits.shape[-1]).nonzero()[0])
            raise AsrkitError(f"utterance '{keys[bad]}': alignment label {int(labels[bad].max())} is outside "
                              f"the model's {logits.shape[-1]} outputs")
    if "post" in targets:
        post, lens = targets["post"]
        check_frame_counts(out_lens, lens, keys, subsampling=subsampling)
        if post.shape[-1] != logits.shape[-1]:
            raise AsrkitError(f"utterance '{keys[0]}': soft targets have {post.shape[-1]} columns but the model "
                              f"has {logits.shape[-1]} outputs for this language")
        fields["soft_targets"] = post
    loss, stats = objective(logits, out_lens, **fields)
    main = objective.main.type
    stats["normaliser"] = float(stats[f"norm_{main}"])
    return loss, stats


def check_ctc_lengths(conf: ObjectiveConfig, model, train, valid=None) -> None:
    """Before training with CTC (the objective, its mix, or a transducer's aux_ctc): count the
    utterances whose tokens need more frames than the model outputs (`count_unalignable`). CTC
    cannot align them, zero_infinity makes their loss 0, and they would teach nothing, silently.
    Logs a warning naming the count and the first one.

    Args:
        conf: the training config's `objective` section; model: the AsrModel; train, valid:
            `AsrDataset`s (valid may be None).

    Raises:
        ConfigError: more than `objective.max_unalignable` of the training utterances cannot be
            aligned: the token unit is too fine for the model's frame rate on this data.
    """
    mix = conf.mix.type if conf.mix else None
    uses_ctc = "ctc" in (conf.type, mix) or bool(model.conf.get("aux_ctc"))
    if not uses_ctc or "text" not in train.target_kinds:
        return
    for dataset, what in ((train, "training"), (valid, "validation")):
        if dataset is None:
            continue
        utts = ((u.key, u.num_frames, dataset.lang_dir.tokenizer(u.lang).encode(dataset.text[u.key]))
                for u in dataset.utts)
        count = count_unalignable(utts, model.output_lengths)
        if not count.lost:
            continue
        message = f"{what} data: {count.describe(model.frame_subsampling)}: CTC cannot align them, so they are lost"
        advice = ("use larger tokens (make-lang --type word, or bpe) or less subsampling (e.g. "
                  "model.encoder.subsampling=2 for a conformer)")
        if what == "training" and count.share > conf.max_unalignable:
            raise ConfigError(f"{message}; {advice} (objective.max_unalignable={conf.max_unalignable:g} is the "
                              "share accepted)")
        log.warning("%s; %s", message, advice)
