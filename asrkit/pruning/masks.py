"""Pruning masks: which parameters are prunable, magnitude ranking, and mask statistics.

A mask (asrkit.models.masks, with the mask files) is `{parameter name: bool tensor}` over the
prunable parameters (True = kept). A language's mask never keeps parameters only other languages
use (their output layers and predictor embeddings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from asrkit.errors import ConfigError

# Exported model files written before the masks moved to asrkit.models pickle their pruned weights
# as calls to asrkit.pruning.masks._dense_from_packed: the name stays here so that they still load.
from asrkit.models.masks import Mask, _dense_from_packed, union_mask  # noqa: F401

SCOPES = ("layer", "global")


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
