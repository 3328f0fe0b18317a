"""Cepstral mean and variance normalisation stats, as Kaldi's src/transform/cmvn.cc.

Stats are Kaldi's `2 x (dim + 1)` double matrix: row 0 holds per-dimension sums with the frame count
in the last column, row 1 per-dimension sums of squares. `apply_cmvn` is `apply-cmvn`; a data dir
holds its stats per speaker (`cmvn.scp`) or once for the whole set (`cmvn.ark`), as
`asrkit compute-cmvn` (asrkit.features.cmvn) writes them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import kaldiio
import numpy as np

from asrkit.errors import AsrkitError, DataDirError, FormatError
from asrkit.kaldi.table import load_table_scp

# Kaldi's variance floor in ApplyCmvn.
_VAR_FLOOR = 1.0e-20


def init_cmvn_stats(dim: int) -> np.ndarray:
    """Zero stats for `dim`-dimensional features: a `(2, dim + 1)` float64 matrix."""
    return np.zeros((2, dim + 1), dtype=np.float64)


def acc_cmvn_stats(stats: np.ndarray, feats) -> np.ndarray:
    """Add the frames of `feats` (`(num_frames, dim)` array or tensor) to `stats` in place; returns `stats`.

    Bit-exact with Kaldi's `AccCmvnStats`: each frame's values and their squares are float32
    (Kaldi squares the float feature, `*feats_ptr * *feats_ptr`, in float) and are added to the
    double stats one frame after another (a running sum, not numpy's pairwise one).

    Raises:
        ValueError: `feats` does not have `stats.shape[1] - 1` columns.
    """
    x = _as_numpy(feats).astype(np.float32, copy=False)
    dim = stats.shape[1] - 1
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"features of shape {tuple(x.shape)} do not match CMVN stats of dimension {dim}")
    if x.shape[0]:
        # cumsum adds in order; starting from the old stats keeps Kaldi's order of additions.
        stats[0, :dim] = np.cumsum(np.vstack([stats[0:1, :dim], x.astype(np.float64)]), axis=0)[-1]
        stats[1, :dim] = np.cumsum(np.vstack([stats[1:2, :dim], np.square(x).astype(np.float64)]), axis=0)[-1]
    stats[0, dim] += x.shape[0]
    return stats


def compute_cmvn_stats(feats) -> np.ndarray:
    """Kaldi CMVN stats of one matrix: `(2, dim + 1)` float64, as `compute-cmvn-stats` per utterance."""
    x = _as_numpy(feats)
    return acc_cmvn_stats(init_cmvn_stats(x.shape[1]), x)


def apply_cmvn(feats, stats, norm_vars: bool = False):
    """Normalise features with CMVN stats exactly as Kaldi's `apply-cmvn` (ApplyCmvn in cmvn.cc).

    Means (and, with `norm_vars`, variances) are computed in double from the stats; the variance is
    floored at 1e-20. The offset and scale are applied in float32, as Kaldi does to float features.

    Args:
        feats: `(num_frames, dim)` numpy array or torch tensor.
        stats: `(2, dim + 1)` stats (numpy or tensor); a `(1, dim + 1)` matrix is enough without
            `norm_vars`.
        norm_vars: also normalise the variance (Kaldi's `--norm-vars=true`).

    Returns:
        normalised features, the same type, shape and dtype as `feats`.

    Raises:
        AsrkitError: the stats count fewer than one frame, their dimension does not match, or the
            variance gives NaN/infinity.
    """
    import torch  # here, not at the top: `asrkit compute-cmvn` uses these stats without torch

    stats_np = _as_numpy(stats).astype(np.float64, copy=False)
    is_torch = isinstance(feats, torch.Tensor)
    dim = stats_np.shape[1] - 1
    if feats.shape[-1] != dim:
        raise AsrkitError(f"features have dimension {feats.shape[-1]} but the CMVN stats have dimension {dim}")
    if norm_vars and stats_np.shape[0] < 2:
        raise AsrkitError("variance normalisation needs 2-row CMVN stats")
    count = stats_np[0, dim]
    if count < 1.0:
        raise AsrkitError(f"insufficient stats for cepstral mean and variance normalization: count = {count}")
    mean = stats_np[0, :dim] / count
    if not norm_vars:
        # Kaldi: offset.AddVec(-1.0 / count, mean_stats) on a float vector: the factor is rounded
        # to float, the product is double, the offset float.
        offset = (np.float64(np.float32(-1.0 / count)) * stats_np[0, :dim]).astype(np.float32)
        scale = None
    else:
        var = stats_np[1, :dim] / count - mean * mean
        var = np.maximum(var, _VAR_FLOOR)
        scale = 1.0 / np.sqrt(var)
        if not np.all(np.isfinite(scale)) or np.any(scale == 0):
            raise AsrkitError("NaN or infinity in cepstral mean/variance computation")
        offset = -(mean * scale)
    if is_torch:
        dtype = feats.dtype if feats.is_floating_point() else torch.float32
        out = feats.to(dtype)
        if scale is not None:
            out = out * torch.as_tensor(scale, dtype=dtype, device=feats.device)
        return out + torch.as_tensor(offset, dtype=dtype, device=feats.device)
    x = np.asarray(feats)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    out = x.astype(dtype, copy=True)
    if scale is not None:
        out *= scale.astype(dtype)
    out += offset.astype(dtype)
    return out


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def read_cmvn_stats(data_dir: str | os.PathLike) -> dict[str, np.ndarray] | np.ndarray:
    """Load the CMVN stats `compute_cmvn` wrote for a data dir.

    Returns:
        `{speaker: (2, dim + 1) float64}` from `DATA_DIR/cmvn.scp`, or, if only a global
        `DATA_DIR/cmvn.ark` exists, that one `(2, dim + 1)` matrix.

    Raises:
        DataDirError: neither file exists.
    """
    data_dir = Path(data_dir)
    if (data_dir / "cmvn.scp").is_file():
        with load_table_scp(data_dir / "cmvn.scp") as table:
            return {k: np.asarray(table[k]) for k in table}
    if (data_dir / "cmvn.ark").is_file():
        return np.asarray(kaldiio.load_mat(str(data_dir / "cmvn.ark")))
    raise DataDirError(f"{data_dir}: no cmvn.scp or cmvn.ark (run `asrkit compute-cmvn {data_dir}`)")


def training_cmvn(data_dirs: Sequence[str | os.PathLike]) -> np.ndarray | None:
    """How training data dirs want their features normalised: None for per-speaker CMVN (`cmvn.scp`)
    or none at all, or the summed global stats `(2, dim + 1)` when every dir has only a global
    `cmvn.ark` (`compute-cmvn --global`). The trainer records global stats in the model file, and
    validation, decode and dump-posteriors apply those same training stats to every utterance
    (as Kaldi-style global-CMVN recipes apply the training set's cmvn.ark to every set).

    Raises:
        DataDirError: the dirs differ in kind (some per speaker, some global, some without CMVN),
            which would train on differently normalised features; the message names each dir's kind.
    """
    kinds = {}
    for d in map(Path, data_dirs):
        kinds[d] = "per-speaker" if (d / "cmvn.scp").is_file() else "global" if (d / "cmvn.ark").is_file() else "none"
    if len(set(kinds.values())) > 1:
        raise DataDirError("training data dirs differ in CMVN (" + ", ".join(f"{d}: {k}" for d, k in kinds.items())
                           + "); run `asrkit compute-cmvn` the same way on each")
    if not kinds or next(iter(kinds.values())) != "global":
        return None
    total = None
    for d in kinds:
        try:
            stats = np.asarray(kaldiio.load_mat(str(d / "cmvn.ark")), dtype=np.float64)
        except Exception as e:  # kaldiio raises several types on a bad file
            raise FormatError(d / "cmvn.ark", f"not a Kaldi matrix: {e}") from None
        if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
            raise FormatError(d / "cmvn.ark", f"CMVN stats must be a (2, dim + 1) matrix, not {stats.shape}")
        if total is not None and stats.shape != total.shape:
            raise DataDirError(f"{d}/cmvn.ark: stats of dimension {stats.shape[1] - 1}, but "
                               f"{next(iter(kinds))}/cmvn.ark has {total.shape[1] - 1}")
        total = stats if total is None else total + stats
    return total
