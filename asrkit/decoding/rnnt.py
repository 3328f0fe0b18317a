"""RNN-T search for asrkit.models.transducer.TransducerModel: greedy and beam, full-utterance or streaming.

Greedy search is batched here, label-looping (each utterance at its own frame, one joint call per
step for the whole batch); beam search is torchaudio's `RNNTBeamSearch`, run on a per-language
view of the model (torchaudio's search takes the last output as blank, asrkit's token sets have blank
0, so the view rotates the outputs). Streaming runs the Emformer segment by segment with its state
carried (`EmformerEncoder.stream`) and continues the search on each segment's frames; it sees the
same encoder frames as full-utterance decoding, so both give the same hypotheses (up to float
rounding deciding a near-tie).

`RnntSearch` is the `asrkit decode` backend (asrkit.decoding.search.SearchBackend).
"""

from __future__ import annotations

import torch
from torch import Tensor

from asrkit.errors import ConfigError

MAX_SYMBOLS_PER_FRAME = 10


class _GreedyCarry:
    """The search state of a batch between encoder chunks: hypotheses and the predictor's output/state."""

    def __init__(self, model, batch: int, lang: str, device):
        start = torch.full((batch, 1), model.blank, dtype=torch.long, device=device)
        self.pred_out, self.pred_state = model.predict(start, lang)  # (B, 1, P), ((L, B, H), (L, B, H))
        self.hyps: list[list[int]] = [[] for _ in range(batch)]


def _greedy_frames(model, enc: Tensor, enc_lens: Tensor, lang: str, carry: _GreedyCarry,
                   max_symbols: int = MAX_SYMBOLS_PER_FRAME) -> _GreedyCarry:
    """Advance greedy search over `enc (B, T, E)` frames (`enc_lens (B,)` valid), at most `max_symbols`
    tokens per frame, label-looping: each utterance keeps its own frame index, and every step runs
    the joint once for the whole batch, each utterance at its frame; an utterance that emits a
    token stays on its frame, one that emits blank (or reached max_symbols) moves to its next
    frame. The loop ends when every utterance is past its last frame: about max(T_i + U_i) steps
    for the batch, with no per-frame loop and no per-token host copy (the tokens stay on the device
    until the end). Per utterance the decisions are those of frame-by-frame greedy search.
    """
    blank = model.blank
    batch, num_frames = enc.shape[0], enc.shape[1]
    device = enc.device
    rows = torch.arange(batch, device=device)
    enc_lens = enc_lens.to(device)
    frame_index = torch.zeros(batch, dtype=torch.long, device=device)
    symbols = torch.zeros(batch, dtype=torch.long, device=device)  # emitted at the current frame
    steps: list[tuple[Tensor, Tensor]] = []  # (best (B,), emitted (B,)) per step
    active = frame_index < enc_lens
    while bool(active.any()):
        frame = enc[rows, frame_index.clamp(max=num_frames - 1)].unsqueeze(1)  # (B, 1, E)
        best = model.joint(frame, carry.pred_out, lang)[:, 0, 0].argmax(-1)  # (B,)
        emit = active & (best != blank) & (symbols < max_symbols)
        if bool(emit.any()):
            out, (h, c) = model.predict(best.unsqueeze(1), lang, carry.pred_state)
            carry.pred_out = torch.where(emit.view(-1, 1, 1), out, carry.pred_out)
            keep = emit.view(1, -1, 1)
            carry.pred_state = (torch.where(keep, h, carry.pred_state[0]), torch.where(keep, c, carry.pred_state[1]))
            steps.append((best, emit))
        advance = active & ~emit
        frame_index = frame_index + advance.long()
        symbols = torch.where(advance, torch.zeros_like(symbols), symbols + emit.long())
        active = frame_index < enc_lens
    if steps:
        tokens = torch.stack([b for b, _ in steps], dim=1).cpu()  # (B, steps)
        emitted = torch.stack([e for _, e in steps], dim=1).cpu()
        for i in range(batch):
            carry.hyps[i].extend(tokens[i][emitted[i]].tolist())
    return carry


def _encode(model, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
    enc, enc_lens = model.encode(feats, feat_lens)
    return enc[:, : int(enc_lens.max())], enc_lens


def rnnt_greedy(model, feats: Tensor, feat_lens: Tensor, lang: str,
                max_symbols: int = MAX_SYMBOLS_PER_FRAME) -> list[list[int]]:
    """Full-utterance greedy search, batched.

    Args:
        model: a TransducerModel (eval mode).
        feats: `(B, T, D)`; feat_lens: `(B,)`; lang: the batch's language.
        max_symbols: most tokens emitted per encoder frame.

    Returns:
        B token-id lists (blank removed).
    """
    enc, enc_lens = _encode(model, feats, feat_lens)
    carry = _GreedyCarry(model, feats.shape[0], lang, feats.device)
    return _greedy_frames(model, enc, enc_lens, lang, carry, max_symbols).hyps


def _require_streaming(model) -> None:
    if not getattr(model, "streaming", False):
        raise ConfigError("streaming decoding needs an emformer encoder; this transducer's encoder is "
                          f"'{model.conf['encoder']['type']}'")


def rnnt_streaming_greedy(model, feats: Tensor, feat_lens: Tensor, lang: str,
                          max_symbols: int = MAX_SYMBOLS_PER_FRAME) -> list[list[int]]:
    """Streaming greedy search: the batch's utterances run as streams in lockstep, each encoded
    segment by segment (Emformer state carried, `EmformerEncoder.stream_batch`), the search
    continuing on each segment as it arrives. Per utterance this is what a single stream computes.

    Args / Returns: as `rnnt_greedy`.

    Raises:
        ConfigError: the model's encoder cannot stream.
    """
    _require_streaming(model)
    carry = _GreedyCarry(model, feats.shape[0], lang, feats.device)
    for hidden, n_out in model.encoder.stream_batch(feats, feat_lens):
        carry = _greedy_frames(model, hidden[:, : int(n_out.max())], n_out, lang, carry, max_symbols)
    return carry.hyps


class _BlankLastView(torch.nn.Module):
    """One language of a TransducerModel with torchaudio's RNNT interface and blank as the last output.

    Output index j < V-1 is token j+1, index V-1 is blank (token 0); `predict` maps back.
    """

    def __init__(self, model, lang: str):
        super().__init__()
        self.model, self.lang = model, lang
        self.vocab = model.vocab_sizes.get(lang) or next(iter(model.vocab_sizes.values()))
        self.perm = torch.cat([torch.arange(1, self.vocab), torch.tensor([0])])
        self.stream_total: int | None = None

    def transcribe(self, feats: Tensor, lengths: Tensor):
        enc, enc_lens = _encode(self.model, feats, lengths)
        return enc, enc_lens

    def transcribe_streaming(self, window: Tensor, lengths: Tensor, state):
        # `lengths` carries the utterance's total frames on its last windows, else -1.
        total = int(lengths[0])
        enc, state = self.model.encoder.infer(window, total if total >= 0 else None,
                                              state or self.model.encoder.init_stream())
        return enc, torch.tensor([enc.shape[1]], device=enc.device), state

    def predict(self, tokens: Tensor, lengths: Tensor, state):
        tokens = torch.remainder(tokens + 1, self.vocab)
        lstm_state = None
        if state is not None:
            h, c = state[0]
            lstm_state = (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous())
        out, (h, c) = self.model.predict(tokens, self.lang, lstm_state)
        return out, lengths, [[h.transpose(0, 1), c.transpose(0, 1)]]

    def join(self, enc: Tensor, enc_lens: Tensor, pred: Tensor, pred_lens: Tensor):
        logits = self.model.joint(enc, pred, self.lang)
        return logits[..., self.perm.to(logits.device)], enc_lens, pred_lens

    def tokens(self, hypothesis) -> list[int]:
        """Token ids of a torchaudio hypothesis (its first entry is the start blank)."""
        return [(t + 1) % self.vocab for t in hypothesis[0][1:]]


def rnnt_beam(model, feats: Tensor, feat_lens: Tensor, lang: str, beam: int = 8) -> list[list[int]]:
    """Full-utterance beam search (torchaudio's RNNTBeamSearch), one utterance at a time.

    Returns:
        B token-id lists, the best hypothesis of each (score normalised by length, torchaudio's default).
    """
    from torchaudio.models import RNNTBeamSearch

    view = _BlankLastView(model, lang)
    search = RNNTBeamSearch(view, blank=view.vocab - 1)
    out = []
    for i in range(feats.shape[0]):
        n = int(feat_lens[i])
        hyps = search(feats[i: i + 1, :n], feat_lens[i: i + 1], beam)
        out.append(view.tokens(hyps[0]))
    return out


def rnnt_streaming_beam(model, feats: Tensor, feat_lens: Tensor, lang: str, beam: int = 8) -> list[list[int]]:
    """Streaming beam search: torchaudio's `RNNTBeamSearch.infer` segment by segment, hypotheses and
    encoder state carried.

    Raises:
        ConfigError: the model's encoder cannot stream.
    """
    from torchaudio.models import RNNTBeamSearch

    _require_streaming(model)
    view = _BlankLastView(model, lang)
    search = RNNTBeamSearch(view, blank=view.vocab - 1)
    enc = model.encoder
    out = []
    for i in range(feats.shape[0]):
        n = int(feat_lens[i])
        state, hyps = None, None
        for begin in range(0, n, enc.chunk_frames):
            end = min(begin + enc.chunk_frames + enc.lookahead_frames, n)
            total = n if end >= n else -1
            hyps, state = search.infer(feats[i: i + 1, begin:end], torch.tensor([total], device=feats.device),
                                       beam, state, hyps)
        out.append(view.tokens(hyps[0]))
    return out


class RnntSearch:
    """The `asrkit decode` backend for transducer models: greedy or beam, full-utterance or streaming."""

    searches = ("greedy", "beam")
    supports_streaming = True

    def decode_batch(self, model, feats: Tensor, feat_lens: Tensor, lang: str, search: str, beam: int, *,
                     streaming: bool = False) -> list[list[int]]:
        """`feats (B, T, D)`, `feat_lens (B,)` -> B token-id lists of `lang`'s token set.

        Raises:
            ConfigError: unknown search, or streaming with an encoder that cannot stream.
        """
        if search == "greedy":
            return (rnnt_streaming_greedy if streaming else rnnt_greedy)(model, feats, feat_lens, lang)
        if search == "beam":
            return (rnnt_streaming_beam if streaming else rnnt_beam)(model, feats, feat_lens, lang, beam)
        raise ConfigError(f"unknown search '{search}' for an RNN-T model (choose from {', '.join(self.searches)})")

    def describe(self, model, frame_shift_ms: float = 10.0) -> list[str]:
        """Log lines: the encoder, and for a streaming model its segment, look-ahead and latency."""
        enc = model.conf["encoder"]
        if not getattr(model, "streaming", False):
            return [f"RNN-T model, {enc['type']} encoder (full-utterance only), "
                    f"{model.frame_subsampling}x frame subsampling"]
        return [f"RNN-T model, emformer encoder: segment {enc['segment_length']} frames x stride {enc['stride']} "
                f"= {model.encoder.chunk_frames} input frames, right context {model.encoder.lookahead_frames} "
                f"input frames, left context {enc['left_context']} output frames",
                f"algorithmic latency {model.algorithmic_latency_ms(frame_shift_ms):.0f} ms "
                f"({model.encoder.latency_frames} frames at {frame_shift_ms:g} ms)"]
