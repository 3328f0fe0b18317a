"""CTC prefix beam search, vectorised over the batch (greedy, best-path decoding is
asrkit.models.ctc.ctc_greedy, which validation uses too).

`ctc_prefix_beam_search` keeps the `beam` most
probable label prefixes (summing over every alignment of each prefix, as in Hannun et al. 2014,
"First-pass large vocabulary continuous speech recognition using bi-directional recurrent DNNs"),
with every utterance of the batch and every hypothesis of its beam advanced by one tensor
operation per frame: there is no Python loop over hypotheses or over the vocabulary.
"""

from __future__ import annotations

import numpy as np
import torch

# Prefixes are identified by a pair of polynomial hashes modulo two primes below 2**31, packed into
# one int64 (h1 * P2 + h2 < 2**62): equal prefixes always hash equal, and two different prefixes of
# one beam collide with probability about 2**-62. A single hash modulo 2**64 (int64 wrap-around)
# would be weaker: Thue-Morse strings collide for every odd base.
_P1, _P2 = 2_147_483_647, 2_147_483_629
_B1, _B2 = 1_000_003, 1_000_033
_NO_HASH, _NO_PARENT = -1, -2  # unused beam slots; the empty prefix has hash 0 and no parent


def _extend_hash(h: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Hash of `prefix + [token]` from the hash of `prefix` (int64 tensors of one shape)."""
    h1, h2 = h // _P2, h % _P2
    h1 = (h1 * _B1 + token + 1) % _P1
    h2 = (h2 * _B2 + token + 1) % _P2
    return h1 * _P2 + h2


def ctc_prefix_beam_search(log_probs: torch.Tensor, lens: torch.Tensor, beam: int = 8,
                           blank: int = 0) -> list[list[tuple[list[int], float]]]:
    """CTC prefix beam search over a batch.

    Each hypothesis is a label prefix with two scores, the log probability of all alignments of
    the frames so far that produce it and end in blank (`pb`) or in its last label (`pnb`). Per
    frame, every prefix is kept (blank, or a repeat of its last label) or extended by a label; an
    extension that equals a prefix already in the beam is merged into it; the `beam` best prefixes
    by `logaddexp(pb, pnb)` survive. Only the 2*beam best non-blank labels of a frame are tried as
    new extensions: no other label can produce one of the `beam` best new prefixes (each prefix has
    at most beam-1 extensions already in the beam, and a repeated label scores below its rank), so
    the result is that of the search over the whole vocabulary, at a cost independent of V.

    With a beam at least as large as the number of distinct prefixes, the scores are the exact CTC
    log probabilities log P(labels | x). The search is not a generalisation of greedy decoding:
    even with beam 1 it compares prefixes (summed over alignments), not single paths, so it can
    differ from `ctc_greedy`; both agree whenever the best path has probability above 0.5.

    Args:
        log_probs: (B, T, V) log-probabilities (log_softmax of the model output), any device.
        lens: (B,) valid frames per utterance.
        beam: hypotheses kept per utterance (>= 1).
        blank: the blank id.

    Returns:
        for each utterance, up to `beam` `(token ids, log probability)` pairs, best first.

    Raises:
        ValueError: beam < 1 or a tensor of the wrong shape.
    """
    if beam < 1:
        raise ValueError(f"beam must be at least 1, got {beam}")
    if log_probs.dim() != 3 or lens.dim() != 1 or lens.shape[0] != log_probs.shape[0]:
        raise ValueError(f"expected log_probs (B, T, V) and lens (B,), got {tuple(log_probs.shape)} and "
                         f"{tuple(lens.shape)}")
    batch, _, vocab = log_probs.shape
    device = log_probs.device
    lens = lens.to(device)
    num_frames = int(lens.max()) if batch else 0
    lp = log_probs[:, :num_frames].float()
    neg_inf = torch.tensor(float("-inf"), device=device)
    K = beam

    # Candidate labels per frame for new prefixes: the 2K best non-blank labels.
    num_cand = min(2 * K, vocab - 1)
    if num_cand > 0:
        cand_lp, cand_tok = lp.index_fill(2, torch.tensor([blank], device=device), float("-inf")).topk(num_cand, dim=-1)
    else:  # a vocabulary of blank alone
        cand_lp = lp.new_empty(batch, num_frames, 0)
        cand_tok = torch.empty(batch, num_frames, 0, dtype=torch.long, device=device)

    pb = torch.full((batch, K), float("-inf"), device=device)
    pb[:, 0] = 0.0  # the empty prefix, before any frame
    pnb = torch.full((batch, K), float("-inf"), device=device)
    last = torch.full((batch, K), -1, dtype=torch.long, device=device)  # last label, -1 for none
    hashes = torch.full((batch, K), _NO_HASH, dtype=torch.long, device=device)
    hashes[:, 0] = 0
    parent_hashes = torch.full((batch, K), _NO_PARENT, dtype=torch.long, device=device)
    slots = torch.arange(K, device=device).expand(batch, K)
    back_slot, back_token = [], []  # per frame (B, K): the slot each hypothesis came from, label added

    for t in range(num_frames):
        frame = lp[:, t]  # (B, V)
        total = torch.logaddexp(pb, pnb)  # (B, K)
        last_lp = frame.gather(1, last.clamp(min=0))  # (B, K) log p(last label)
        # Staying on the same prefix: a blank, or the last label repeated (collapsed).
        same_b = total + frame[:, blank : blank + 1]
        same_nb = torch.where(last >= 0, pnb + last_lp, neg_inf)
        # Merging: prefix j of the beam is prefix i plus j's last label when hash[i] == parent[j].
        is_parent = hashes.unsqueeze(2) == parent_hashes.unsqueeze(1)  # (B, K_parent, K_child)
        same_label = last.unsqueeze(2) == last.unsqueeze(1)  # a repeated label needs a blank between
        from_parent = torch.where(same_label, pb.unsqueeze(2), total.unsqueeze(2)) + last_lp.unsqueeze(1)
        merged = torch.where(is_parent, from_parent, neg_inf).logsumexp(dim=1)  # (B, K_child)
        same_nb = torch.logaddexp(same_nb, merged)
        # New prefixes: hypothesis i extended by candidate label c (not already in the beam).
        tok = cand_tok[:, t]  # (B, C)
        ext = torch.where(last.unsqueeze(2) == tok.unsqueeze(1), pb.unsqueeze(2), total.unsqueeze(2)) \
            + cand_lp[:, t].unsqueeze(1)  # (B, K, C)
        in_beam = (is_parent.unsqueeze(2) & (last.unsqueeze(1).unsqueeze(1) == tok.unsqueeze(1).unsqueeze(3))).any(-1)
        ext = ext.masked_fill(in_beam, float("-inf")).flatten(1)  # (B, K*C)

        cand = torch.cat([torch.logaddexp(same_b, same_nb), ext], dim=1)
        score, idx = cand.topk(K, dim=1)
        is_new = idx >= K
        new_idx = (idx - K).clamp(min=0)
        src = torch.where(is_new, new_idx // max(num_cand, 1), idx)  # the hypothesis it came from
        label = torch.where(is_new, tok.gather(1, new_idx % max(num_cand, 1)) if num_cand else src, -1)
        src_hash = hashes.gather(1, src)
        n_pb = torch.where(is_new, neg_inf, same_b.gather(1, src))
        n_pnb = torch.where(is_new, ext.gather(1, new_idx) if num_cand else neg_inf, same_nb.gather(1, src))
        n_hash = torch.where(is_new, _extend_hash(src_hash, label.clamp(min=0)), src_hash)
        n_parent = torch.where(is_new, src_hash, parent_hashes.gather(1, src))
        n_last = torch.where(is_new, label, last.gather(1, src))
        valid = score > float("-inf")
        n_hash = torch.where(valid, n_hash, _NO_HASH)
        n_parent = torch.where(valid, n_parent, _NO_PARENT)
        n_last = torch.where(valid, n_last, -1)
        # Utterances that have ended keep their beam.
        active = (t < lens).unsqueeze(1)
        pb, pnb = torch.where(active, n_pb, pb), torch.where(active, n_pnb, pnb)
        hashes, parent_hashes = torch.where(active, n_hash, hashes), torch.where(active, n_parent, parent_hashes)
        last = torch.where(active, n_last, last)
        back_slot.append(torch.where(active, src, slots))
        back_token.append(torch.where(active & valid, label, -1))

    total = torch.logaddexp(pb, pnb)
    scores, order = total.sort(dim=1, descending=True)
    return _backtrack(order.cpu().numpy(), scores.cpu().numpy(),
                      torch.stack(back_slot).cpu().numpy() if back_slot else np.zeros((0, batch, K), np.int64),
                      torch.stack(back_token).cpu().numpy() if back_token else np.zeros((0, batch, K), np.int64))


def _backtrack(order: np.ndarray, scores: np.ndarray, back_slot: np.ndarray,
               back_token: np.ndarray) -> list[list[tuple[list[int], float]]]:
    """Label sequences of the final hypotheses from the per-frame back-pointers.

    order, scores: (B, K) final slots best first and their scores; back_slot, back_token: (T, B, K).
    """
    batch, K = order.shape
    rows = np.arange(batch)[:, None]
    slot = order.copy()
    labels = []
    for t in range(back_slot.shape[0] - 1, -1, -1):
        labels.append(back_token[t][rows, slot])
        slot = back_slot[t][rows, slot]
    seqs = np.stack(labels[::-1], axis=-1) if labels else np.zeros((batch, K, 0), np.int64)  # (B, K, T)
    out = []
    for b in range(batch):
        hyps = []
        for k in range(K):
            if scores[b, k] == float("-inf"):
                break
            row = seqs[b, k]
            hyps.append((row[row >= 0].tolist(), float(scores[b, k])))
        out.append(hyps)
    return out
