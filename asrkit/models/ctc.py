"""Reading a CTC model's output: the best path, token errors against references, and the frames a
target needs.

Decoding (`asrkit decode --search greedy`, the check of references that cannot fit) and training
(the validation token error rate, the count of targets that cannot be aligned) use them, so they
live with the models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

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


def ctc_min_frames(tokens: Sequence[int]) -> int:
    """The fewest output frames CTC needs for a target: one per token, plus a blank between two
    equal tokens in a row (`Y E E S` needs 5)."""
    tokens = list(tokens)
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def ctc_min_frames_batch(targets: torch.Tensor, target_lens: torch.Tensor) -> torch.Tensor:
    """`ctc_min_frames` of each row of a padded `(B, S)` target batch with lengths `(B,)`: `(B,)`."""
    if targets.shape[1] < 2:
        return target_lens.clone()
    inside = torch.arange(1, targets.shape[1], device=targets.device) < target_lens.unsqueeze(1)  # (B, S-1)
    repeats = ((targets[:, 1:] == targets[:, :-1]) & inside).sum(dim=1)
    return target_lens + repeats


@dataclass
class UnalignableCount:
    """Utterances whose target needs more frames than the model outputs (CTC cannot align them;
    with zero_infinity their loss is 0, so they teach nothing). `first`: `(key, frames needed,
    output frames)` of the first one, for messages."""

    lost: int = 0
    total: int = 0
    first: tuple[str, int, int] | None = None

    @property
    def share(self) -> float:
        return self.lost / self.total if self.total else 0.0

    def describe(self, subsampling: int | None) -> str:
        """`"3 of 40 utterances (7.5%) ... (first: 'u1' needs 9 frames, the model outputs 6)"`."""
        rate = f" at x{subsampling} subsampling" if subsampling else ""
        first = "" if self.first is None else (f" (first: '{self.first[0]}' needs {self.first[1]} output frames, "
                                               f"the model gives it {self.first[2]})")
        return (f"{self.lost} of {self.total} utterances ({self.share:.1%}) have more target tokens than the "
                f"model's output frames{rate}{first}")


def count_unalignable(utts: Iterable[tuple[str, int, Sequence[int]]],
                      output_lengths: Callable[[torch.Tensor], torch.Tensor]) -> UnalignableCount:
    """Count the utterances CTC cannot align.

    Args:
        utts: `(key, input frames, token ids)` per utterance.
        output_lengths: the model's `output_lengths` (input frame counts `(N,)` -> output counts `(N,)`).
    """
    utts = list(utts)
    count = UnalignableCount(total=len(utts))
    if not utts:
        return count
    out = output_lengths(torch.tensor([n for _, n, _ in utts], dtype=torch.int64)).tolist()
    for (key, _, tokens), frames in zip(utts, out):
        need = ctc_min_frames(tokens)
        if need > frames:
            count.lost += 1
            if count.first is None:
                count.first = (key, need, int(frames))
    return count
