"""Acoustic encoders: a spliced-frame DNN, an (B)LSTM, a Conformer and a streaming Emformer (torchaudio).

Every encoder maps padded features `(batch, time, feat)` and their lengths to hidden frames
`(batch, time', hidden)` and output lengths, exposes `output_dim`, `subsampling` (input frames per
output frame) and `output_lengths(lens)` (the exact `time'` for given input lengths), and leaves an
utterance's output unchanged when it is batched with longer ones (padded frames never reach valid
ones; padded output frames are zero). The Emformer (the streaming RNN-T's encoder, usable with CTC
too) can also encode a stream segment by segment (`infer`, `stream_batch`), giving the frames of its
full-utterance `forward`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asrkit.errors import AsrkitError, ConfigError


def valid_frame_mask(lens: Tensor, max_len: int) -> Tensor:
    """`(batch, max_len)` bool mask, True where frame index < the utterance's length."""
    return torch.arange(max_len, device=lens.device) < lens.to(torch.long).unsqueeze(1)


def splice_frames(feats: Tensor, lens: Tensor, left: int, right: int) -> Tensor:
    """Splice each frame with `left` frames before and `right` frames after it, as Kaldi's splice-feats.

    Frames beyond an utterance's edges are replaced by its first / last *valid* frame (Kaldi
    replicates edge frames), so splicing is per utterance even in a padded batch. A padding +
    `unfold` version would replicate the batch's padding at the right edge of short utterances; an
    index gather with per-utterance clamping is just as vectorised and exact.

    Args:
        feats: `(batch, time, feat)` padded features.
        lens: `(batch,)` valid frame counts.
        left, right: context frames on each side (>= 0).

    Returns:
        `(batch, time, (left + 1 + right) * feat)`; the block of frame `t + j` comes before that of
        `t + j + 1` (Kaldi's column order).
    """
    batch, time, dim = feats.shape
    offsets = torch.arange(-left, right + 1, device=feats.device)
    idx = torch.arange(time, device=feats.device).view(1, time, 1) + offsets.view(1, 1, -1)
    last = (lens.to(device=feats.device, dtype=torch.long) - 1).clamp(min=0).view(batch, 1, 1)
    idx = torch.minimum(idx.clamp(min=0).expand(batch, -1, -1), last)
    idx = idx + (torch.arange(batch, device=feats.device) * time).view(batch, 1, 1)
    spliced = feats.reshape(batch * time, dim)[idx.reshape(-1)]
    return spliced.view(batch, time, (left + 1 + right) * dim)


def subsample_frames(feats: Tensor, lens: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Keep frames 0, n, 2n, ... as Kaldi's `subsample-feats --n=N` (offset 0).

    Args:
        feats: `(batch, time, feat)`; lens: `(batch,)`.

    Returns:
        `(batch, ceil(time / n), feat)` and the new lengths `ceil(lens / n)`.
    """
    if n == 1:
        return feats, lens
    return feats[:, ::n], torch.div(lens + (n - 1), n, rounding_mode="floor")


class DnnEncoder(nn.Module):
    """Feed-forward network on spliced frames (Kaldi nnet1/nnet2 style).

    Args:
        input_dim: feature dimension D.
        hidden_dims: width of each hidden layer (Linear + ReLU + dropout).
        context: frames of context on each side (input is `(2 * context + 1) * D`).
        bottleneck_dim: if > 0, a final Linear to this size without activation.
        dropout: dropout after each hidden activation.
        subsample: keep every n-th output frame (frame i of the output is input frame i * n).

    Forward: `(feats (B, T, D), lens (B,)) -> (hidden (B, ceil(T / n), output_dim), out_lens)`.
    """

    def __init__(self, input_dim: int, hidden_dims: list[int], *, context: int = 5, bottleneck_dim: int = 0,
                 dropout: float = 0.0, subsample: int = 1):
        super().__init__()
        self.context = context
        self.subsampling = subsample
        layers: list[nn.Module] = []
        prev = (2 * context + 1) * input_dim
        for width in hidden_dims:
            layers += [nn.Linear(prev, width), nn.ReLU(), nn.Dropout(dropout)]
            prev = width
        if bottleneck_dim:
            layers.append(nn.Linear(prev, bottleneck_dim))
            prev = bottleneck_dim
        self.layers = nn.Sequential(*layers)
        self.output_dim = prev

    def output_lengths(self, lens: Tensor) -> Tensor:
        """`(batch,)` output frame counts for input lengths `lens`: `ceil(lens / subsample)`."""
        return torch.div(lens + (self.subsampling - 1), self.subsampling, rounding_mode="floor")

    def forward(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        x = splice_frames(feats, lens, self.context, self.context)
        # Subsampling before the (frame-wise) layers gives the same frames for less work.
        x, out_lens = subsample_frames(x, lens, self.subsampling)
        h = self.layers(x)
        return h * valid_frame_mask(out_lens, h.shape[1]).unsqueeze(-1), out_lens


class LstmEncoder(nn.Module):
    """Uni- or bidirectional LSTM over packed sequences, with optional projection (LSTMP).

    Args:
        input_dim: feature dimension D.
        hidden_dim, num_layers, bidirectional, dropout: as `torch.nn.LSTM` (dropout between layers).
        proj_size: `torch.nn.LSTM`'s projection size (0 = none).
        subsample: keep every n-th output frame. The recurrence runs at the (stacked) input frame
            rate, so frame i of the output is the LSTM state at (stacked) frame i * n.
        stack: concatenate `stack` consecutive input frames (the last group zero-padded) before the
            LSTM, so the recurrence runs `stack` times fewer steps (low frame rate input, as in
            LFR / frame-stacking acoustic models); the output frame rate is divided by `stack` too.

    Forward: `(feats (B, T, D), lens (B,)) -> (hidden (B, ceil(ceil(T / stack) / n), output_dim), out_lens)`,
    with `output_dim = (proj_size or hidden_dim) * (2 if bidirectional else 1)`.
    """

    def __init__(self, input_dim: int, *, hidden_dim: int = 512, num_layers: int = 3, bidirectional: bool = True,
                 proj_size: int = 0, dropout: float = 0.0, subsample: int = 1, stack: int = 1):
        super().__init__()
        if stack < 1:
            raise ConfigError(f"model.encoder.stack must be at least 1, not {stack}")
        self.stack, self.subsample = stack, subsample
        self.subsampling = stack * subsample
        self.lstm = nn.LSTM(input_dim * stack, hidden_dim, num_layers=num_layers, bidirectional=bidirectional,
                            proj_size=proj_size, dropout=dropout if num_layers > 1 else 0.0, batch_first=True)
        self.output_dim = (proj_size or hidden_dim) * (2 if bidirectional else 1)

    def output_lengths(self, lens: Tensor) -> Tensor:
        """`(batch,)` output frame counts for input lengths `lens`: `ceil(ceil(lens / stack) / subsample)`."""
        stacked = torch.div(lens + (self.stack - 1), self.stack, rounding_mode="floor")
        return torch.div(stacked + (self.subsample - 1), self.subsample, rounding_mode="floor")

    def forward(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        if self.stack > 1:
            b, t, d = feats.shape
            pad = (-t) % self.stack
            # Zero the padding of each utterance first: a stacked group must not mix in a longer
            # neighbour's frames (batched output equals the output alone).
            feats = feats * valid_frame_mask(lens, t).unsqueeze(-1).to(feats.dtype)
            feats = torch.nn.functional.pad(feats, (0, 0, 0, pad)).reshape(b, (t + pad) // self.stack, d * self.stack)
            lens = torch.div(lens + (self.stack - 1), self.stack, rounding_mode="floor")
        # pack_padded_sequence wants lengths on the CPU; the padding never enters the recurrence.
        packed = pack_padded_sequence(feats, lens.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=feats.shape[1])
        return subsample_frames(h, lens, self.subsample)


class Conv2dSubsampling(nn.Module):
    """Two 3x3 stride-2 Conv2d + ReLU layers and a Linear to `d_model` (ESPnet's Conv2dSubsampling).

    Time is reduced by 4: `T' = ((T - 1) // 2 - 1) // 2`. Without padding, output frame t only sees
    input frames 4t .. 4t + 6, all valid when t < T', so padding cannot leak into valid frames. The
    subclasses change only the layers (`(kernel, stride)` per Conv2d), as ESPnet's
    Conv2dSubsampling2 / 6 / 8: a lower factor keeps enough frames for short utterances and dense
    targets (characters of fast speech), a higher one suits long units (words) and long utterances.

    Forward: `(feats (B, T, D), lens (B,)) -> ((B, T', d_model), out_lens)`.
    """

    factor = 4
    layers: tuple[tuple[int, int], ...] = ((3, 2), (3, 2))

    def __init__(self, input_dim: int, d_model: int, channels: int):
        super().__init__()
        convs: list[nn.Module] = []
        for i, (kernel, stride) in enumerate(self.layers):
            convs += [nn.Conv2d(1 if i == 0 else channels, channels, kernel, stride), nn.ReLU()]
        self.conv = nn.Sequential(*convs)
        freq = self._reduce(input_dim)
        if freq < 1:
            raise AsrkitError(f"conformer conv subsampling (x{self.factor}) needs feature dimension >= "
                              f"{self.min_input_frames()}, got {input_dim}")
        self.out = nn.Linear(channels * freq, d_model)

    @classmethod
    def _reduce(cls, n):
        for kernel, stride in cls.layers:
            n = (n - kernel) // stride + 1
        return n

    @classmethod
    def output_lengths(cls, lens: Tensor) -> Tensor:
        """`(batch,)` output frame counts: for x4 `((lens - 1) // 2 - 1) // 2` (0 for inputs under 7 frames)."""
        for kernel, stride in cls.layers:
            lens = torch.div(lens - kernel, stride, rounding_mode="floor") + 1
        return lens.clamp(min=0)

    @classmethod
    def min_input_frames(cls) -> int:
        """The fewest input frames that give one output frame."""
        n = 1
        for kernel, stride in reversed(cls.layers):
            n = (n - 1) * stride + kernel
        return n

    def forward(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv(feats.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(b, t, c * f)), self.output_lengths(lens)


class Conv2dSubsampling2(Conv2dSubsampling):
    """x2: `T' = (T - 1) // 2 - 2` (a 3x3 stride-2 then a 3x3 stride-1 Conv2d)."""

    factor = 2
    layers = ((3, 2), (3, 1))


class Conv2dSubsampling6(Conv2dSubsampling):
    """x6: `T' = ((T - 1) // 2 - 2) // 3` (a 3x3 stride-2 then a 5x5 stride-3 Conv2d)."""

    factor = 6
    layers = ((3, 2), (5, 3))


class Conv2dSubsampling8(Conv2dSubsampling):
    """x8: `T' = (((T - 1) // 2 - 1) // 2 - 1) // 2` (three 3x3 stride-2 Conv2d)."""

    factor = 8
    layers = ((3, 2), (3, 2), (3, 2))


CONV_SUBSAMPLING = {cls.factor: cls for cls in (Conv2dSubsampling2, Conv2dSubsampling, Conv2dSubsampling6,
                                                 Conv2dSubsampling8)}


def sinusoidal_positions(length: int, dim: int, device=None, dtype=torch.float32) -> Tensor:
    """`(length, dim)` absolute sinusoidal position encodings (Vaswani et al.; ESPnet's abs_pos)."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq[: dim // 2])
    return pe.to(dtype)


class ConformerEncoder(nn.Module):
    """Conv2d subsampling (x4; or x2, x6, x8), optional sinusoidal positions, then `torchaudio.models.Conformer`.

    torchaudio's convolution module runs its depthwise convolution over padded frames too, so an
    utterance's output would change with the padding around it. A forward pre-hook on each layer's
    depthwise convolution zeroes the padded frames of its input (which would otherwise carry the
    pointwise convolution's bias and whatever the padding held), as ESPnet's and WeNet's
    convolution modules mask theirs. (BatchNorm in training still pools statistics over the whole
    batch; in eval mode outputs are padding-invariant.)

    Args:
        input_dim: feature dimension D (>= 7).
        d_model, num_layers, num_heads, ffn_dim, depthwise_conv_kernel_size (odd), dropout,
        convolution_first: as `torchaudio.models.Conformer`.
        subsampling_channels: Conv2d channels of the front end.
        subsampling: its time reduction, 2, 4, 6 or 8 (`CONV_SUBSAMPLING`).
        pos_enc: add sinusoidal absolute positions (scaled input, as ESPnet's abs_pos); torchaudio's
            Conformer has no positional encoding of its own.

    Forward: `(feats (B, T, D), lens (B,)) -> (hidden (B, T', d_model), out_lens)` with
    `T' = ((T - 1) // 2 - 1) // 2` for x4 (see the Conv2dSubsampling classes for the others).

    Raises:
        ConfigError: a subsampling factor other than 2, 4, 6 or 8.
        AsrkitError: an utterance too short for one output frame (under 7 input frames for x4).
    """

    def __init__(self, input_dim: int, *, d_model: int = 256, num_layers: int = 12, num_heads: int = 4,
                 ffn_dim: int = 1024, depthwise_conv_kernel_size: int = 31, dropout: float = 0.1,
                 subsampling_channels: int = 256, pos_enc: bool = True, convolution_first: bool = False,
                 subsampling: int = 4):
        super().__init__()
        from torchaudio.models import Conformer

        if subsampling not in CONV_SUBSAMPLING:
            raise ConfigError(f"model.encoder.subsampling: the conformer subsamples by "
                              f"{', '.join(map(str, CONV_SUBSAMPLING))}, not {subsampling}")
        frontend = CONV_SUBSAMPLING[subsampling]
        self.subsampling = frontend.factor
        self.min_input_frames = frontend.min_input_frames()
        self.output_dim = d_model
        self.d_model = d_model
        self.pos_enc = pos_enc
        self.frontend = frontend(input_dim, d_model, subsampling_channels)
        self.dropout = nn.Dropout(dropout)
        self.conformer = Conformer(input_dim=d_model, num_heads=num_heads, ffn_dim=ffn_dim, num_layers=num_layers,
                                   depthwise_conv_kernel_size=depthwise_conv_kernel_size, dropout=dropout,
                                   convolution_first=convolution_first)

    @staticmethod
    def _depthwise_conv(layer: nn.Module) -> nn.Conv1d:
        # torchaudio's _ConvolutionModule.sequential: pointwise conv, GLU, depthwise conv, norm, ...
        conv = layer.conv_module.sequential[2]
        if not (isinstance(conv, nn.Conv1d) and conv.groups == conv.in_channels > 1):
            raise RuntimeError("torchaudio's Conformer layout changed: no depthwise Conv1d at conv_module.sequential[2]")
        return conv

    def output_lengths(self, lens: Tensor) -> Tensor:
        """`(batch,)` output frame counts: `((lens - 1) // 2 - 1) // 2` for x4 (the front end's formula)."""
        return self.frontend.output_lengths(lens)

    def forward(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        # One device sync per batch (torchaudio's own padding mask needs one too); an utterance
        # without output frames would make attention produce NaN (and a batch of only such
        # utterances is too short for the convolutions), so stop with its length instead.
        expected = self.frontend.output_lengths(lens)
        if bool((expected < 1).any()):
            short = int(lens[expected < 1].min())
            raise AsrkitError(f"an utterance of {short} frames is too short for the conformer's x{self.subsampling} "
                              f"conv subsampling (it needs at least {self.min_input_frames} input frames)")
        x, out_lens = self.frontend(feats, lens)
        # A batch padded beyond its longest utterance: torchaudio sizes its mask by the longest length.
        x = x[:, : int(out_lens.max())]
        if self.pos_enc:
            x = x * math.sqrt(self.d_model) + sinusoidal_positions(x.shape[1], self.d_model, x.device, x.dtype)
        x = self.dropout(x)
        keep = valid_frame_mask(out_lens, x.shape[1])  # (B, T')
        conv_keep = keep.unsqueeze(1).to(x.dtype)  # (B, 1, T'), the conv stack's layout

        def zero_padding(_module, args):
            return (args[0] * conv_keep,)

        hooks = [self._depthwise_conv(layer).register_forward_pre_hook(zero_padding)
                 for layer in self.conformer.conformer_layers]
        try:
            h, _ = self.conformer(x, out_lens)
        finally:
            for hook in hooks:
                hook.remove()
        return h * keep.unsqueeze(-1).to(h.dtype), out_lens


def _ceil_div(x: Tensor, n: int) -> Tensor:
    return torch.div(x + (n - 1), n, rounding_mode="floor")


class EmformerEncoder(nn.Module):
    """Frame stacking (`stride` input frames -> one) + Linear, then torchaudio's Emformer.

    Every utterance is zero-padded to whole segments (and `right_context` zero frames after its
    end), in training, full-utterance decoding and streaming alike, so the three see exactly the
    same frames: a padded batch gives each utterance the output it has alone, and `infer` segment by
    segment gives the output of `forward` (to float rounding).

    Args:
        input_dim: feature dimension D.
        d_model, num_heads, ffn_dim, num_layers, dropout, activation: as `torchaudio.models.Emformer`.
        segment_length: output frames per segment (the chunk a stream is processed in).
        left_context: output frames of left context each segment attends to.
        right_context: output frames of look-ahead per segment.
        max_memory_size: Emformer memory bank size (0: none).
        stride: input frames stacked into one output frame.

    Forward: `(feats (B, T, D), lens (B,)) -> (hidden (B, T', d_model), out_lens (B,))` with
    `out_lens = ceil(lens / stride)` and `T' >= max(out_lens)` (padded to whole segments; padded
    frames are zero).
    """

    def __init__(self, input_dim: int, *, d_model: int = 256, num_layers: int = 12, num_heads: int = 4,
                 ffn_dim: int = 1024, segment_length: int = 16, left_context: int = 32, right_context: int = 4,
                 max_memory_size: int = 0, stride: int = 4, dropout: float = 0.1, activation: str = "gelu"):
        super().__init__()
        from torchaudio.models import Emformer

        self.input_dim = input_dim
        self.subsampling = stride
        self.segment_length = segment_length
        self.right_context = right_context
        self.output_dim = d_model
        self.input_linear = nn.Linear(stride * input_dim, d_model)
        self.emformer = Emformer(d_model, num_heads, ffn_dim, num_layers, segment_length, dropout=dropout,
                                 activation=activation, left_context_length=left_context,
                                 right_context_length=right_context, max_memory_size=max_memory_size)

    @property
    def chunk_frames(self) -> int:
        """Input frames a stream consumes per step (one segment)."""
        return self.segment_length * self.subsampling

    @property
    def lookahead_frames(self) -> int:
        """Input frames after a segment that must have arrived before it is processed."""
        return self.right_context * self.subsampling

    @property
    def latency_frames(self) -> int:
        """Algorithmic latency in input frames: the first frame of a segment waits for the whole
        segment and its right context, `(segment_length + right_context) * stride`."""
        return self.chunk_frames + self.lookahead_frames

    def output_lengths(self, lens: Tensor) -> Tensor:
        """`(batch,)` output frame counts: `ceil(lens / stride)`."""
        return _ceil_div(lens, self.subsampling)

    def _project(self, feats: Tensor, num_valid_inputs: Tensor, num_out: int) -> Tensor:
        """Stack + project `feats (B, num_out * stride, D)`; input frames from `num_valid_inputs (B,)` on
        and output frames from `ceil(num_valid_inputs / stride)` on are zeroed -> `(B, num_out, d_model)`."""
        b = feats.shape[0]
        feats = feats * valid_frame_mask(num_valid_inputs, feats.shape[1]).unsqueeze(-1).to(feats.dtype)
        x = self.input_linear(feats.reshape(b, num_out, self.subsampling * self.input_dim))
        keep = valid_frame_mask(self.output_lengths(num_valid_inputs), num_out)
        return x * keep.unsqueeze(-1).to(x.dtype)

    def forward(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        out_lens = self.output_lengths(lens)
        if bool((lens < 1).any()):
            raise AsrkitError("an utterance has no frames; the emformer needs at least one")
        seg = self.segment_length
        padded = int(_ceil_div(out_lens.max(), seg)) * seg  # whole segments
        total = (padded + self.right_context) * self.subsampling
        feats = feats[:, :total]
        if feats.shape[1] < total:
            feats = nn.functional.pad(feats, (0, 0, 0, total - feats.shape[1]))
        x = self._project(feats, lens, padded + self.right_context)
        # Lengths in whole segments: the zero frames up to a segment end are part of every utterance
        # (so a stream, which must fill its last segment, computes the same); later ones are masked.
        h, _ = self.emformer(x, _ceil_div(out_lens, seg) * seg)
        return h * valid_frame_mask(out_lens, h.shape[1]).unsqueeze(-1).to(h.dtype), out_lens

    def init_stream(self) -> dict:
        """A fresh stream state for `infer`."""
        return {"emformer": None, "start": 0}

    @torch.no_grad()
    def infer(self, window: Tensor, total_frames: int | None, state: dict) -> tuple[Tensor, dict]:
        """Encode the next segment of one stream.

        Args:
            window: `(1, W, D)` the stream's input frames from the segment's first frame on, `W <=
                chunk_frames + lookahead_frames` (zero-padded to that size here).
            total_frames: the utterance's total input frames once its end is known (the last
                windows), else None.
            state: from `init_stream()` or the previous call (updated and returned).

        Returns:
            `(hidden (1, n, d_model), state)` with n the segment's valid output frames (`segment_length`
            until the end of the utterance).
        """
        total = None if total_frames is None else torch.tensor([total_frames], device=window.device)
        hidden, n_out, state = self.infer_batch(window, total, state)
        return hidden[:, : int(n_out[0])], state

    @torch.no_grad()
    def infer_batch(self, window: Tensor, total_frames: Tensor | None, state: dict
                    ) -> tuple[Tensor, Tensor, dict]:
        """Encode the next segment of B streams in lockstep (the same segment index in each).

        Args:
            window: `(B, W, D)`, each stream's input frames from the segment's first frame on, `W <=
                chunk_frames + lookahead_frames` (zero-padded to that size here).
            total_frames: `(B,)` each stream's total input frames where its end is known (the last
                windows) and -1 where it is not yet; None: no stream has ended.
            state: from `init_stream()` or the previous call (updated and returned).

        Returns:
            `(hidden (B, segment_length, d_model), n_out (B,), state)`: `n_out` valid output frames
            per stream (`segment_length` until its end, then fewer, then 0).
        """
        size = self.chunk_frames + self.lookahead_frames
        if window.shape[1] > size:
            raise AsrkitError(f"a stream window has {window.shape[1]} frames; at most {size} fit")
        b = window.shape[0]
        window = nn.functional.pad(window, (0, 0, 0, size - window.shape[1]))
        start = state["start"]  # output frame index of the segment's first frame
        full = torch.full((b,), size, device=window.device, dtype=torch.long)
        seg = torch.full((b,), self.segment_length, device=window.device, dtype=torch.long)
        valid, n_out = full, seg
        if total_frames is not None:
            ended = total_frames >= 0
            left = (total_frames - start * self.subsampling).clamp(min=0)
            valid = torch.where(ended, left, full)
            n_out = torch.where(ended, torch.minimum(seg, self.output_lengths(left)), seg)
        x = self._project(window, valid.clamp(max=size), self.segment_length + self.right_context)
        lengths = torch.full((b,), self.segment_length + self.right_context, device=window.device)
        h, _, emformer_state = self.emformer.infer(x, lengths, state["emformer"])
        return h, n_out, {"emformer": emformer_state, "start": start + self.segment_length}

    def stream(self, feats: Tensor, num_frames: int) -> Iterator[Tensor]:
        """Encode one utterance segment by segment, as a stream would: yields `(1, n, d_model)` chunks
        whose concatenation is the utterance's `forward` output (to float rounding).

        Args:
            feats: `(1, T, D)`, `num_frames <= T` of them valid.
        """
        for hidden, n_out in self.stream_batch(feats[:, :num_frames], torch.tensor([num_frames])):
            yield hidden[:, : int(n_out[0])]

    def stream_batch(self, feats: Tensor, lens: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        """Encode B utterances as B streams in lockstep, one segment per step: yields
        `(hidden (B, segment_length, d_model), n_out (B,))`, each stream's valid frames first. A
        stream knows its end only when its window reaches it; one that has ended yields 0 frames
        until the longest is done. Per stream, the output is that of `stream` (to float rounding).

        Args:
            feats: `(B, T, D)`; lens: `(B,)` valid frames of each.
        """
        state = self.init_stream()
        step, look = self.chunk_frames, self.lookahead_frames
        lens = lens.to(feats.device)
        for begin in range(0, int(lens.max()), step):
            window = feats[:, begin: begin + step + look]
            ended = begin + step + look >= lens
            total = torch.where(ended, lens, torch.full_like(lens, -1)) if bool(ended.any()) else None
            hidden, n_out, state = self.infer_batch(window, total, state)
            yield hidden, n_out
