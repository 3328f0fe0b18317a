"""Language pathways: a model whose every language runs with its own mask of the weights.

In training each batch runs with θ ⊙ m_lang and updates only the weights in m_lang: the trainer
(asrkit.training.trainer, config `training.pathways: MASKS_DIR`) calls `PathwayHook` around every
batch:

- `before_forward`: the true weights are stashed and the weights outside m_lang zeroed, so the
  forward computes with θ ⊙ m_lang; a gradient hook on each prunable parameter multiplies the
  incoming gradient by m_lang *before* it is accumulated (so gradient accumulation over batches of
  several languages, and DDP's all-reduce, see each batch's masked gradient);
- `after_backward`: the stashed weights are put back;
- `before_step` / `after_step`: the parameters and optimizer state (Adam moments, momentum) outside
  the step's mask are snapshotted before `optimizer.step()` and restored after it, so neither momentum
  nor weight decay moves a weight outside the mask and the optimizer state there is left untouched.
  The step's mask is the union of the masks of the languages in the step (over all ranks when
  distributed); a weight in several masks is updated by each of those languages.

At start the weights outside every mask (the union) are zeroed; they stay exactly zero.

In decoding (`DecodeMaskHook`, for a model file whose metadata carries masks from `asrkit prune`)
each batch runs with its language's mask applied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models.masks import Mask, check_mask_fits, load_masks, masks_from_meta, union_mask
from asrkit.models.modelfile import ModelMeta

log = logging.getLogger("asrkit.pathways")


class PathwayHook:
    """Training hook that confines each language's updates to its mask (see the module docstring).

    Args:
        model: the (unwrapped) model being trained.
        masks: `{lang: mask}` over the same prunable parameters.
        where: where the masks came from (for error messages).

    Raises:
        ConfigError: no masks, or a mask that does not fit the model.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, Mask], where: str = "masks"):
        if not masks:
            raise ConfigError(f"{where}: no language masks")
        params = dict(model.named_parameters())
        names = list(next(iter(masks.values())))
        self.params = {}
        for n in names:
            if n not in params:
                raise ConfigError(f"{where}: the mask has parameter '{n}', which the model has not")
            self.params[n] = params[n]
        for lang, mask in masks.items():
            check_mask_fits(mask, self.params, f"{where}/{lang}.pt")
        self.where = where
        self.languages = sorted(masks)
        self.masks = {lang: {n: m.to(self.params[n].device) for n, m in mask.items()} for lang, mask in masks.items()}
        self.union = union_mask(self.masks.values())
        with torch.no_grad():
            for n, p in self.params.items():
                p.mul_(self.union[n].to(p.dtype))
        self._current: Mask | None = None
        self._stash: dict[str, Tensor] | None = None
        self._step_langs: set[str] = set()
        self._snapshot: dict | None = None
        self._handles = [p.register_hook(self._grad_hook(n)) for n, p in self.params.items()]
        log.info("pathways: %d languages (%s) over %d prunable tensors from %s", len(self.languages),
                 ", ".join(self.languages), len(self.params), where)

    def _grad_hook(self, name: str):
        def mask_grad(grad: Tensor) -> Tensor:
            if self._current is None:
                return grad
            return torch.where(self._current[name], grad, torch.zeros((), dtype=grad.dtype, device=grad.device))
        return mask_grad

    def mask_of(self, lang: str | None) -> Mask:
        """The mask of a batch's language.

        Raises:
            AsrkitError: a mixed-language batch, or a language without a mask.
        """
        if lang is None:
            raise AsrkitError("pathway training needs language-homogeneous batches (data.language_homogeneous: true)")
        if lang not in self.masks:
            raise AsrkitError(f"language '{lang}' has no mask in {self.where} (it has: {', '.join(self.languages)})")
        return self.masks[lang]

    @torch.no_grad()
    def before_forward(self, model, batch) -> None:
        mask = self.mask_of(batch.lang)
        if self._stash is not None:  # a forward whose backward never came: put the weights back first
            self._restore_stash()
        if all(p.grad is None for p in self.params.values()):
            self._step_langs = set()  # a new optimizer step (also after a skipped one)
        self._stash = {n: p.detach().clone() for n, p in self.params.items()}
        for n, p in self.params.items():
            p.mul_(mask[n].to(p.dtype))
        self._current = mask
        self._step_langs.add(batch.lang)

    @torch.no_grad()
    def _restore_stash(self) -> None:
        for n, p in self.params.items():
            p.copy_(self._stash[n])
        self._stash = None

    def after_backward(self, model, batch) -> None:
        self._current = None
        if self._stash is not None:
            self._restore_stash()

    def _step_mask(self) -> Mask:
        langs = set(self._step_langs)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Gradients were all-reduced over ranks whose batches may be of other languages.
            device = next(iter(self.params.values())).device
            flags = torch.tensor([float(lang in langs) for lang in self.languages], device=device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            langs = {lang for lang, f in zip(self.languages, flags.tolist()) if f > 0}
        return union_mask(self.masks[lang] for lang in sorted(langs))

    @torch.no_grad()
    def before_step(self, model, optimizer, batch) -> None:
        snapshot = {}
        for n, p in self.params.items():
            state = optimizer.state.get(p, {})
            snapshot[n] = (p.detach().clone(), {k: v.clone() for k, v in state.items()
                                                if isinstance(v, Tensor) and v.shape == p.shape}, bool(state))
        self._snapshot = {"params": snapshot, "mask": self._step_mask()}

    @torch.no_grad()
    def after_step(self, model, optimizer, batch) -> None:
        if self._snapshot is None:
            return
        mask = self._snapshot["mask"]
        for n, p in self.params.items():
            old_p, old_state, had_state = self._snapshot["params"][n]
            m = mask.get(n)
            if m is None:  # no language of this step: nothing may change
                m = torch.zeros(p.shape, dtype=torch.bool, device=p.device)
            p.copy_(torch.where(m, p, old_p))
            for k, v in optimizer.state.get(p, {}).items():
                if isinstance(v, Tensor) and v.shape == p.shape:
                    # A state created by this step starts at zero outside the mask (its initial value).
                    before = old_state[k] if had_state and k in old_state else torch.zeros_like(v)
                    v.copy_(torch.where(m, v, before))
        self._snapshot = None
        self._step_langs = set()

    def close(self) -> None:
        """Remove the gradient hooks (and put back stashed weights)."""
        if self._stash is not None:
            self._restore_stash()
        for h in self._handles:
            h.remove()
        self._handles = []


def build_pathway_hook(pathways_conf, model: nn.Module) -> PathwayHook:
    """The trainer's entry point: `training.pathways` is a masks folder (`<lang>.pt` files), or
    `{"masks": folder}`.

    Raises:
        ConfigError: a bad value; FileNotFoundError / FormatError: missing or bad mask files.
    """
    if isinstance(pathways_conf, Mapping):
        unknown = set(pathways_conf) - {"masks"}
        if unknown or "masks" not in pathways_conf:
            raise ConfigError("training.pathways must be a masks folder or {masks: folder}")
        pathways_conf = pathways_conf["masks"]
    if not isinstance(pathways_conf, (str, os.PathLike)):
        raise ConfigError(f"training.pathways must be a masks folder, not {pathways_conf!r}")
    masks, _ = load_masks(pathways_conf)
    return PathwayHook(model, masks, where=str(pathways_conf))


class DecodeMaskHook:
    """Decoding with language pathways: before each batch, the batch language's mask is applied.

    Keeps a copy of the model file's weights (zero outside the union of the masks) and sets the
    prunable weights to `θ ⊙ m_lang` whenever the language changes.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, Mask], where: str = "model file"):
        params = dict(model.named_parameters())
        names = list(next(iter(masks.values())))
        missing = [n for n in names if n not in params]
        if missing:
            raise ConfigError(f"{where}: the mask has parameter '{missing[0]}', which the model has not")
        self.params = {n: params[n] for n in names}
        for lang, mask in masks.items():
            check_mask_fits(mask, self.params, f"{where} (mask of '{lang}')")
        self.masks = {lang: {n: m.to(self.params[n].device) for n, m in mask.items()} for lang, mask in masks.items()}
        self.dense = {n: p.detach().clone() for n, p in self.params.items()}
        self.current: str | None = None

    @torch.no_grad()
    def before_batch(self, model, lang: str) -> None:
        """Apply `lang`'s mask (a no-op when the previous batch had the same language).

        Raises:
            AsrkitError: the model has no mask for `lang`.
        """
        if lang == self.current:
            return
        if lang not in self.masks:
            raise AsrkitError(f"the model has no pathway mask for language '{lang}' "
                              f"(it has: {', '.join(sorted(self.masks))})")
        for n, p in self.params.items():
            p.copy_(self.dense[n] * self.masks[lang][n].to(p.dtype))
        self.current = lang


def build_decode_hook(model: nn.Module, meta: ModelMeta) -> DecodeMaskHook:
    """The decoder's entry point for a model file whose metadata has pathways (from `asrkit prune`).

    Raises:
        ConfigError: no masks, or masks that do not fit the model.
    """
    masks = masks_from_meta(meta)
    if not masks:
        raise ConfigError("the model file's 'pathways' entry has no masks")
    return DecodeMaskHook(model, masks)
