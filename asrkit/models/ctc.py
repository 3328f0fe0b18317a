"""Reading a CTC model's output: the best path, and token errors against references.

Both decoding (`asrkit decode --search greedy`) and training (the validation token error rate) use
them, so they live with the models.
"""

from __future__ import annotations

import torch
import torchaudio.functional


def ctc_greedy(logits: torch.Tensor, lens: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        logits: (B, T, V) scores (log-probabilities or unnormalised; argmax is the same).
        lens: (B,) valid frames per utterance.
        blank: the blank id.

    Returns:
        B token-id lists.
    """
    best = logits.argmax(dim=-1)  # (B, T)
    t = torch.arange(best.shape[1], device=best.device)
    valid = t.unsqueeze(0) < lens.to(best.device).unsqueeze(1)
    prev = torch.nn.functional.pad(best[:, :-1], (1, 0), value=-1)
    keep = valid & (best != blank) & (best != prev)
    best, keep = best.cpu(), keep.cpu()
    return [best[i][keep[i]].tolist() for i in range(best.shape[0])]


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance between two token sequences (token error counting during validation)."""
    return int(torchaudio.functional.edit_distance(ref, hyp))
