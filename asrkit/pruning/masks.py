"""Pruning masks: which parameters are prunable, magnitude ranking, and the packed-bit mask files.

A mask is `{parameter name: bool tensor of the parameter's shape}` over the prunable parameters
(True = kept). A language's mask never keeps parameters only other languages use (their output
layers and predictor embeddings). Files: `masks/<lang>.pt`, one per language, bits packed 8 per
byte (numpy.packbits, big-endian bit order), with the shapes to unpack them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from asrkit.errors import ConfigError, FormatError

MASK_FORMAT = "asrkit-mask"
MASK_VERSION = 1
SCOPES = ("layer", "global")

Mask = dict[str, Tensor]


def prunable_parameters(model: nn.Module, *, include_biases: bool = False,
                        include_embeddings: bool = False) -> dict[str, nn.Parameter]:
    """The prunable parameters of a model, by name, in `named_parameters` order.

    Prunable: the weight matrices of Linear, Conv1d/2d/3d, LSTM/GRU/RNN (`weight_ih_l*`,
    `weight_hh_l*`, `weight_hr_l*`) and MultiheadAttention (`in_proj_weight`); with
    `include_biases` their biases too, with `include_embeddings` Embedding tables. Norms are never
    pruned.
    """
    wanted: set[int] = set()
    for module in model.modules():
        names: list[str] = []
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            names = ["weight"] + (["bias"] if include_biases else [])
        elif isinstance(module, nn.RNNBase):
            names = [n for n, _ in module.named_parameters(recurse=False)
                     if n.startswith("weight_") or (include_biases and n.startswith("bias_"))]
        elif isinstance(module, nn.MultiheadAttention):
            names = ["in_proj_weight"] + (["in_proj_bias"] if include_biases else [])
        elif isinstance(module, nn.Embedding) and include_embeddings:
            names = ["weight"]
        for n in names:
            p = getattr(module, n, None)
            if isinstance(p, nn.Parameter):
                wanted.add(id(p))
    return {name: p for name, p in model.named_parameters() if id(p) in wanted}


def foreign_parameter_names(model: nn.Module, lang: str) -> set[str]:
    """Names of the parameters only languages other than `lang` use (their output layers, and for a
    transducer their predictor embeddings)."""
    if not hasattr(model, "languages"):
        return set()
    ids: set[int] = set()
    for other in model.languages:
        if other == lang:
            continue
        params = model.language_parameters(other) if hasattr(model, "language_parameters") \
            else model.head.language_parameters(other)
        ids.update(id(p) for p in params)
    return {name for name, p in model.named_parameters() if id(p) in ids}


def magnitude_mask(params: Mapping[str, Tensor], sparsity: float, *, scope: str = "layer",
                   current: Mask | None = None, exclude: Iterable[str] = ()) -> Mask:
    """Keep the largest-magnitude weights so that a fraction `sparsity` of them is pruned.

    Args:
        params: `{name: weight}`.
        sparsity: fraction to prune, in [0, 1).
        scope: "layer" (each tensor pruned to `sparsity`) or "global" (one ranking over all tensors).
        current: an earlier mask; weights it pruned stay pruned (iterative pruning only removes).
        exclude: names whose mask is all False (parameters this mask's language never uses); they do
            not count towards the sparsity.

    Returns:
        `{name: bool tensor}` (on the CPU). Ties are broken by position, so the count is exact.

    Raises:
        ConfigError: bad sparsity or scope, or `current` prunes more than `sparsity` already.
    """
    if not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity}")
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r} (choose from {', '.join(SCOPES)})")
    exclude = set(exclude)
    names = [n for n in params if n not in exclude]
    scores = {}
    for n in names:
        s = params[n].detach().abs().float().cpu().flatten()
        if current is not None:
            s = torch.where(current[n].flatten(), s, torch.full_like(s, -1.0))  # pruned ones rank last
        scores[n] = s
    mask: Mask = {n: torch.zeros(params[n].shape, dtype=torch.bool) for n in exclude if n in params}
    groups = [[n] for n in names] if scope == "layer" else [names]
    for group in groups:
        flat = torch.cat([scores[n] for n in group]) if group else torch.zeros(0)
        keep = flat.numel() - int(round(float(sparsity) * flat.numel()))
        if current is not None:
            kept_now = int(sum(int(current[n].sum()) for n in group))
            if keep > kept_now:
                raise ConfigError(f"the earlier mask keeps {kept_now} weights of {', '.join(group[:3])}; "
                                  f"sparsity {sparsity} would keep {keep}")
        kept = torch.zeros(flat.numel(), dtype=torch.bool)
        order = torch.sort(flat, descending=True, stable=True).indices
        kept[order[:keep]] = True
        start = 0
        for n in group:
            size = scores[n].numel()
            mask[n] = kept[start:start + size].view(params[n].shape)
            start += size
    return {n: mask[n] for n in params}


def mask_density(mask: Mask, exclude: Iterable[str] = ()) -> float:
    """Fraction of weights kept, over the mask's parameters except `exclude`."""
    exclude = set(exclude)
    total = sum(m.numel() for n, m in mask.items() if n not in exclude)
    kept = sum(int(m.sum()) for n, m in mask.items() if n not in exclude)
    return kept / max(total, 1)


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
    from asrkit.training.checkpoint import atomic_torch_save

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


def masks_from_meta(meta: Mapping) -> dict[str, Mask]:
    """The per-language masks a model file carries (`meta["pathways"]["masks"]`), or {} if none."""
    packed = (meta.get("pathways") or {}).get("masks") or {}
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


def mask_stats(masks: Mapping[str, Mask], *, foreign: Mapping[str, Iterable[str]] | None = None,
               fixed_params: Mapping[str, int] | None = None, model_params: int | None = None) -> dict:
    """Sparsity per language and layer, union sparsity and pairwise IoU.

    Args:
        masks: `{lang: mask}` over the same parameters.
        foreign: `{lang: names}` of the parameters a language never uses (other languages' output
            layers); a language's sparsity is over the parameters it uses.
        fixed_params: `{lang: count}` of the never-pruned parameters (biases, norms, ...) a language uses.
        model_params: the model's total parameter count (all parameters, prunable or not).

    Returns:
        `{"languages": [...], "layers": {name: {"size": n, lang: sparsity, "union": sparsity}},
        "languages_sparsity": {lang: s}, "union_sparsity": s, "kept": {lang: n}, "union_kept": n,
        "iou": {a: {b: iou}}, "pathway_params": {lang: n} and "union_params": n (when the counts are given)}`;
        sparsities are fractions pruned: a language's over the prunable weights it uses (layer rows
        over the whole tensor), the union's over all prunable weights.
    """
    langs = sorted(masks)
    union = union_mask(masks[lang] for lang in langs)
    layers = {}
    for n, u in union.items():
        row = {"size": u.numel()}
        for lang in langs:
            row[lang] = 1.0 - float(masks[lang][n].sum()) / u.numel()
        row["union"] = 1.0 - float(u.sum()) / u.numel()
        layers[n] = row
    total = sum(u.numel() for u in union.values())
    kept = {lang: int(sum(int(m.sum()) for m in masks[lang].values())) for lang in langs}
    union_kept = int(sum(int(u.sum()) for u in union.values()))
    used = {lang: total - sum(union[n].numel() for n in set((foreign or {}).get(lang, ())) if n in union)
            for lang in langs}
    iou = {}
    for a in langs:
        iou[a] = {}
        for b in langs:
            inter = sum(int((masks[a][n] & masks[b][n]).sum()) for n in union)
            uni = sum(int((masks[a][n] | masks[b][n]).sum()) for n in union)
            iou[a][b] = inter / uni if uni else 1.0
    out = {"languages": langs, "layers": layers, "prunable": total,
           "languages_sparsity": {lang: 1.0 - kept[lang] / max(used[lang], 1) for lang in langs},
           "union_sparsity": 1.0 - union_kept / max(total, 1), "kept": kept, "union_kept": union_kept, "iou": iou}
    if fixed_params is not None:
        out["pathway_params"] = {lang: kept[lang] + int(fixed_params.get(lang, 0)) for lang in langs}
    if model_params is not None:
        out["union_params"] = union_kept + (int(model_params) - total)
    return out
