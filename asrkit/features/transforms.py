"""Frame-level feature transforms exactly as Kaldi's add-deltas, splice-feats and subsample-feats.

Each function takes a `(num_frames, dim)` matrix as a numpy array or a torch tensor and returns the
same type (and, for floating input, the same dtype). Edge frames are replicated, as in Kaldi.
"""

from __future__ import annotations

from asrkit.errors import ConfigError


def _to_torch(feats):
    import numpy as np
    import torch

    if isinstance(feats, torch.Tensor):
        return feats, None
    if isinstance(feats, np.ndarray):
        # torch refuses to wrap read-only arrays (e.g. kaldiio's memory maps) without a warning.
        arr = np.ascontiguousarray(feats) if feats.flags.writeable else np.array(feats)
        return torch.from_numpy(arr), "numpy"
    raise TypeError(f"expected a numpy array or a torch tensor, got {type(feats).__name__}")


def _back(out, kind):
    return out.numpy() if kind == "numpy" else out


def _check_2d(x) -> None:
    if x.dim() != 2:
        raise ValueError(f"expected a (num_frames, dim) matrix, got shape {tuple(x.shape)}")


def delta_scales(order: int = 2, window: int = 2) -> list[list[float]]:
    """Kaldi's delta filters (feature-functions.cc: DeltaFeatures): one list per order 0..order.

    Order 0 is `[1.0]`; order i is order i-1 convolved with `j / sum(j*j)` for j in [-window, window],
    so order i has `2 * i * window + 1` taps centred on the current frame.
    """
    if order < 0 or window <= 0:
        raise ConfigError(f"add-deltas: need order >= 0 and window > 0 (got order={order}, window={window})")
    scales = [[1.0]]
    normalizer = float(sum(j * j for j in range(-window, window + 1)))
    for _ in range(order):
        prev = scales[-1]
        prev_offset = (len(prev) - 1) // 2
        cur = [0.0] * (len(prev) + 2 * window)
        cur_offset = prev_offset + window
        for j in range(-window, window + 1):
            for k in range(-prev_offset, prev_offset + 1):
                cur[j + k + cur_offset] += j * prev[k + prev_offset]
        scales.append([c / normalizer for c in cur])
    return scales


def add_deltas(feats, order: int = 2, window: int = 2):
    """Append delta features as Kaldi's `add-deltas --delta-order=ORDER --delta-window=WINDOW`.

    Every order is a filter over the *original* features with frames outside the utterance replaced
    by the first/last frame (so delta-deltas are not deltas of the edge-padded deltas, which is what
    `torchaudio.functional.compute_deltas` applied twice gives at the edges).

    Args:
        feats: `(num_frames, dim)` numpy array or tensor.
        order: highest delta order (2: deltas and delta-deltas).
        window: frames each side of the current one in each delta stage.

    Returns:
        `(num_frames, dim * (order + 1))`, the same type as `feats`: `[feats, delta, delta-delta ...]`.
    """
    import torch

    x, kind = _to_torch(feats)
    _check_2d(x)
    scales = delta_scales(order, window)
    max_offset = (len(scales[-1]) - 1) // 2
    num_frames = x.shape[0]
    work = x.to(torch.float64) if x.is_floating_point() else x.double()
    # Clamped frame indices implement Kaldi's edge replication.
    idx = torch.arange(-max_offset, num_frames + max_offset, device=x.device).clamp_(0, max(num_frames - 1, 0))
    padded = work[idx] if num_frames else work.new_zeros((0, x.shape[1]))
    outputs = []
    for scale in scales:
        offset = (len(scale) - 1) // 2
        acc = torch.zeros_like(work)
        for j, s in enumerate(scale):
            if s != 0.0:
                start = max_offset - offset + j
                acc += s * padded[start:start + num_frames]
        outputs.append(acc)
    out = torch.cat(outputs, dim=1).to(x.dtype if x.is_floating_point() else torch.float32)
    return _back(out, kind)


def splice_feats(feats, left: int, right: int):
    """Stack each frame with its neighbours, as Kaldi's `splice-feats --left-context --right-context`.

    Args:
        feats: `(num_frames, dim)` numpy array or tensor.
        left, right: frames of context before and after; frames outside the utterance are the
            first/last frame.

    Returns:
        `(num_frames, dim * (left + 1 + right))`, the same type as `feats`; row t is
        `[x[t-left], ..., x[t], ..., x[t+right]]`.
    """
    import torch

    if left < 0 or right < 0:
        raise ConfigError(f"splice-feats: context must not be negative (got left={left}, right={right})")
    x, kind = _to_torch(feats)
    _check_2d(x)
    num_frames = x.shape[0]
    if num_frames == 0:
        return _back(x.new_zeros((0, x.shape[1] * (left + 1 + right))), kind)
    offsets = torch.arange(-left, right + 1, device=x.device)
    idx = (torch.arange(num_frames, device=x.device)[:, None] + offsets[None, :]).clamp_(0, num_frames - 1)
    out = x[idx].reshape(num_frames, -1)  # (T, left+1+right, D) -> (T, (left+1+right) * D)
    return _back(out, kind)


def subsample_feats(feats, n: int, offset: int = 0):
    """Keep every n-th frame starting at `offset`, as Kaldi's `subsample-feats --n=N --offset=OFFSET`.

    A negative `n` repeats each frame `-n` times instead (Kaldi's meaning of a negative --n).

    Returns:
        `(ceil((num_frames - offset) / n), dim)` (or `(num_frames * -n, dim)`), the same type as `feats`.
    """
    import torch

    x, kind = _to_torch(feats)
    _check_2d(x)
    if n == 0:
        raise ConfigError("subsample-feats: --n must not be 0")
    if n > 0:
        if not 0 <= offset < n:
            raise ConfigError(f"subsample-feats: need 0 <= --offset < --n (got offset={offset}, n={n})")
        out = x[offset::n]
    else:
        if offset != 0:
            raise ConfigError("subsample-feats: --offset must be 0 with a negative --n")
        out = torch.repeat_interleave(x, -n, dim=0)
    return _back(out.contiguous(), kind)


__all__ = ["add_deltas", "delta_scales", "splice_feats", "subsample_feats"]
