"""Language masks over a model's weights: the mask files, and applying masks when a model runs.

A mask is `{parameter name: bool tensor of the parameter's shape}` over the prunable parameters
(True = kept). Files: `masks/<lang>.pt`, one per language, bits packed 8 per byte (numpy.packbits,
big-endian bit order), with the shapes to unpack them; a pruned model file carries its languages'
masks packed the same way (`ModelMeta.pathways`). How masks are found (magnitude pruning) is
asrkit.pruning; training and decoding with them is asrkit.models.pathways.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from asrkit.errors import ConfigError, FormatError
from asrkit.models.modelfile import ModelMeta, atomic_torch_save

MASK_FORMAT = "asrkit-mask"
MASK_VERSION = 1

Mask = dict[str, Tensor]


def pack_mask(mask: Mask) -> dict:
    """`{"shapes": {name: [dims]}, "bits": {name: uint8 tensor}}` with 8 weights per byte."""
    shapes, bits = {}, {}
    for name, m in mask.items():
        shapes[name] = list(m.shape)
        bits[name] = torch.from_numpy(np.packbits(m.detach().cpu().numpy().astype(bool).ravel()))
    return {"shapes": shapes, "bits": bits}


def unpack_mask(packed: Mapping, where: str = "mask") -> Mask:
    """Inverse of `pack_mask`.

    Raises:
        FormatError: a parameter's bits do not fit its shape (names `where` and the parameter).
    """
    mask: Mask = {}
    for name, shape in packed["shapes"].items():
        n = int(np.prod(shape)) if shape else 1
        raw = np.asarray(packed["bits"][name], dtype=np.uint8)
        if raw.size != (n + 7) // 8:
            raise FormatError(where, f"parameter '{name}': {raw.size} bytes of bits for shape {shape}")
        mask[name] = torch.from_numpy(np.unpackbits(raw, count=n).astype(bool)).view(*shape)
    return mask


def save_mask(path: str | os.PathLike, mask: Mask, *, lang: str, info: Mapping | None = None) -> None:
    """Write one language's mask as packed bits (atomically)."""
    obj = {"format": MASK_FORMAT, "version": MASK_VERSION, "lang": lang, **pack_mask(mask), "info": dict(info or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(obj, path)


def load_mask(path: str | os.PathLike) -> tuple[Mask, dict]:
    """Read a mask file: `(mask, {"lang": ..., "info": {...}})`.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not an asrkit mask file, or bits that do not fit their shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such mask file", str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise FormatError(path, f"not a readable mask file ({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != MASK_FORMAT:
        raise FormatError(path, "not an asrkit mask file")
    if obj.get("version", 0) > MASK_VERSION:
        raise FormatError(path, f"mask format version {obj['version']} is newer than this asrkit supports")
    return unpack_mask(obj, str(path)), {"lang": obj["lang"], "info": obj.get("info", {})}


def save_masks(masks_dir: str | os.PathLike, masks: Mapping[str, Mask], info: Mapping[str, Mapping] | None = None) -> Path:
    """Write `masks_dir/<lang>.pt` for every language; returns the folder."""
    masks_dir = Path(masks_dir)
    masks_dir.mkdir(parents=True, exist_ok=True)
    for lang, mask in masks.items():
        save_mask(masks_dir / f"{lang}.pt", mask, lang=lang, info=(info or {}).get(lang))
    return masks_dir


def load_masks(masks_dir: str | os.PathLike) -> tuple[dict[str, Mask], dict[str, dict]]:
    """Read every `<lang>.pt` of a masks folder: `({lang: mask}, {lang: info})`, languages sorted.

    Raises:
        FileNotFoundError: no folder, or no mask file in it.
        FormatError: a bad file, or one whose language differs from its name.
    """
    masks_dir = Path(masks_dir)
    files = sorted(masks_dir.glob("*.pt")) if masks_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(2, "no mask files (<lang>.pt); make them with `asrkit prune`", str(masks_dir))
    masks, infos = {}, {}
    for f in files:
        mask, meta = load_mask(f)
        if meta["lang"] != f.stem:
            raise FormatError(f, f"holds the mask of language '{meta['lang']}', not '{f.stem}'")
        masks[f.stem], infos[f.stem] = mask, meta["info"]
    return masks, infos


def check_mask_fits(mask: Mask, params: Mapping[str, Tensor], where: str) -> None:
    """Raise ConfigError unless the mask has exactly the parameters' names and shapes."""
    missing = [n for n in params if n not in mask]
    extra = [n for n in mask if n not in params]
    if missing or extra:
        what = f"lacks '{missing[0]}'" if missing else f"has '{extra[0]}', which the model has not"
        raise ConfigError(f"{where}: the mask does not fit this model (it {what}; "
                          f"{len(missing)} missing, {len(extra)} unknown)")
    for n, p in params.items():
        if tuple(mask[n].shape) != tuple(p.shape):
            raise ConfigError(f"{where}: parameter '{n}' has shape {tuple(p.shape)} but its mask "
                              f"{tuple(mask[n].shape)}")


def union_mask(masks: Iterable[Mask]) -> Mask:
    """Element-wise OR of masks over the same parameters."""
    out: Mask = {}
    for mask in masks:
        for n, m in mask.items():
            out[n] = out[n] | m if n in out else m.clone()
    return out


@torch.no_grad()
def apply_mask_(model: nn.Module, mask: Mask) -> None:
    """Zero, in place, the model's weights that `mask` prunes."""
    params = dict(model.named_parameters())
    for n, m in mask.items():
        params[n].mul_(m.to(device=params[n].device, dtype=params[n].dtype))


class language_pathway:  # noqa: N801 - used as a context manager, like torch.no_grad
    """Run a model with one language's mask applied, then put the weights back.

    `with language_pathway(model, masks["de"]): ...` zeroes the weights outside the mask for the
    block (decoding an utterance of that language) and restores them after it.
    """

    def __init__(self, model: nn.Module, mask: Mask | None):
        self.model, self.mask, self.saved = model, mask, {}

    def __enter__(self):
        if self.mask is not None:
            params = dict(self.model.named_parameters())
            self.saved = {n: params[n].detach().clone() for n in self.mask}
            apply_mask_(self.model, self.mask)
        return self.model

    def __exit__(self, *exc):
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for n, v in self.saved.items():
                params[n].copy_(v)
        self.saved = {}
        return False


def masks_from_meta(meta: ModelMeta) -> dict[str, Mask]:
    """The per-language masks a model file carries (`meta.pathways["masks"]`), or {} if none."""
    packed = (meta.pathways or {}).get("masks") or {}
    return {lang: unpack_mask(p, f"model file mask of '{lang}'") for lang, p in packed.items()}


def _dense_from_packed(shape: list[int], bits: Tensor, values: Tensor) -> Tensor:
    """Unpickling side of SparseWeight: the dense tensor with `values` where the bits are set."""
    keep = torch.from_numpy(np.unpackbits(bits.numpy(), count=int(np.prod(shape)) if shape else 1).astype(bool))
    out = torch.zeros(keep.numel(), dtype=values.dtype)
    out[keep] = values
    return out.view(*shape)


class SparseWeight:
    """A pruned weight that pickles as packed mask bits + its kept values and unpickles as a dense tensor.

    Put in a state dict saved with `torch.save`, it stores about `kept * element_size + numel / 8`
    bytes; `torch.load(..., weights_only=False)` gives back the ordinary dense tensor, so model files
    exported with it load anywhere a model file does.
    """

    def __init__(self, weight: Tensor, mask: Tensor):
        self.shape = list(weight.shape)
        self.bits = torch.from_numpy(np.packbits(mask.detach().cpu().numpy().astype(bool).ravel()))
        self.values = weight.detach().cpu().flatten()[mask.cpu().flatten()].clone()

    def __reduce__(self):
        return _dense_from_packed, (self.shape, self.bits, self.values)
