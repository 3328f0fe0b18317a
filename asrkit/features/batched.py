"""Batched Kaldi fbank/MFCC: many utterances framed and transformed together, on CPU or GPU.

The per-utterance path (`kaldi_feats.compute_features`) calls torchaudio once per utterance; this
path pads a batch of waveforms, frames them all with one `unfold` (Kaldi's snip-edges semantics,
or its reflected edges), keeps only each utterance's real frames (a length mask), and runs dither,
DC removal, energy, pre-emphasis, window, `torch.fft.rfft`, mel banks, log and DCT+lifter on all
frames at once. The numerics are those of `torchaudio.compliance.kaldi` (tests compare the two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from asrkit.features.kaldi_feats import FeatureOptions, check_duration, dither_seed

# Kaldi floors log arguments at std::numeric_limits<float>::epsilon().
_EPSILON = float(torch.finfo(torch.float32).eps)


def window_function(opts: FeatureOptions) -> torch.Tensor:
    """Kaldi's analysis window (feature-window.cc: FeatureWindowFunction), `(window_size,)` float32.

    Computed in double and rounded to float, as Kaldi does.
    """
    n = opts.window_size
    i = torch.arange(n, dtype=torch.float64)
    a = 2 * math.pi / (n - 1)
    if opts.window_type == "hanning":
        w = 0.5 - 0.5 * torch.cos(a * i)
    elif opts.window_type == "povey":
        w = (0.5 - 0.5 * torch.cos(a * i)).pow(0.85)
    elif opts.window_type == "hamming":
        w = 0.54 - 0.46 * torch.cos(a * i)
    elif opts.window_type == "rectangular":
        w = torch.ones(n, dtype=torch.float64)
    else:  # blackman
        b = opts.blackman_coeff
        w = b - 0.5 * torch.cos(a * i) + (0.5 - b) * torch.cos(2 * a * i)
    return w.to(torch.float32)


class BatchedFeatureExtractor:
    """Computes Kaldi fbank/MFCC for a list of utterances at once on one device.

    Args:
        opts: feature options (`FeatureOptions`).
        device: "cpu", "cuda", "cuda:1" or a `torch.device`.

    Example:
        >>> extractor = BatchedFeatureExtractor(load_feature_options("fbank", overrides=["num-mel-bins=80"]))
        >>> feats = extractor([wave1, wave2], keys=["utt1", "utt2"])   # [(T1, 80), (T2, 80)]
    """

    def __init__(self, opts: FeatureOptions, device: str | torch.device = "cpu"):
        import torchaudio
        import torchaudio.compliance.kaldi as ta_kaldi

        self.opts = opts
        self.device = torch.device(device)
        self._host: torch.Tensor | None = None
        self.window = window_function(opts).to(self.device)
        banks, _ = ta_kaldi.get_mel_banks(opts.num_mel_bins, opts.padded_window_size, opts.sample_frequency,
                                          opts.low_freq, opts.high_freq, opts.vtln_low, opts.vtln_high,
                                          opts.vtln_warp)
        # get_mel_banks leaves out the Nyquist bin; Kaldi gives it weight 0.
        banks = torch.nn.functional.pad(banks.float(), (0, 1))  # (num_mel_bins, padded // 2 + 1)
        self.mel_banks_t = banks.t().contiguous().to(self.device)  # (padded // 2 + 1, num_mel_bins)
        self.dct = None
        self.lifter = None
        if opts.feat_type == "mfcc":
            # Kaldi's DCT is the orthonormal DCT-II (ComputeDctMatrix); torchaudio builds the same.
            dct = torchaudio.functional.create_dct(opts.num_mel_bins, opts.num_mel_bins, "ortho")
            dct[:, 0] = math.sqrt(1.0 / opts.num_mel_bins)
            self.dct = dct[:, :opts.num_ceps].contiguous().to(self.device)  # (num_mel_bins, num_ceps)
            if opts.cepstral_lifter != 0.0:
                i = torch.arange(opts.num_ceps, dtype=torch.float64)
                lifter = 1.0 + 0.5 * opts.cepstral_lifter * torch.sin(math.pi * i / opts.cepstral_lifter)
                self.lifter = lifter.to(torch.float32).to(self.device)

    def frame(self, waveforms: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
        """Cut every waveform into Kaldi frames and pack the real frames of all of them.

        The waveforms are laid end to end in one buffer, each starting at a multiple of the frame
        shift, so one `unfold` (a strided view, no copy) frames them all; each utterance's real
        frames (`num_frames(len)`, snip-edges semantics or reflected edges) are then picked by index,
        which drops the frames that would straddle two utterances.

        Args:
            waveforms: B tensors of shape `(num_samples_b,)`, int16 scale.

        Returns:
            `(frames, num_frames)`: `(sum(num_frames), window_size)` float32 on the device, utterance
            after utterance, and the frame count of each utterance.
        """
        opts = self.opts
        size, shift = opts.window_size, opts.window_shift
        num_frames = [opts.num_frames(int(torch.as_tensor(w).numel())) for w in waveforms]
        spans = [(m - 1) * shift + size for m in num_frames]  # samples covered by each utterance's frames
        slots = [-(-n // shift) * shift for n in spans]  # rounded up to whole shifts
        buffer = self._buffer(sum(slots) + size)
        starts = []
        pos = 0
        for wave, m, span, slot in zip(waveforms, num_frames, spans, slots):
            wave = torch.as_tensor(wave, dtype=torch.float32)
            if not opts.snip_edges:
                wave = self._reflect_edges(wave, m)
            buffer[pos:pos + span] = wave[:span]
            starts.append(pos // shift)
            pos += slot
        rows = torch.cat([torch.arange(r, r + m) for r, m in zip(starts, num_frames)])
        buffer = buffer.to(self.device, non_blocking=True)
        frames = buffer.unfold(0, size, shift)  # (num_shifts, window_size), a view
        return frames.index_select(0, rows.to(self.device)), num_frames  # (N, window_size)

    def _buffer(self, num_samples: int) -> torch.Tensor:
        # One host buffer reused across batches: a fresh allocation per batch costs page faults
        # comparable to the framing itself.
        if self._host is None or self._host.numel() < num_samples:
            self._host = torch.empty(max(num_samples, 2 * (0 if self._host is None else self._host.numel())))
        return self._host[:num_samples].zero_()

    def _reflect_edges(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        # snip-edges=false: frame t is centred at t*shift + shift/2 and samples outside the signal are
        # mirrored (s < 0 -> -s-1, s >= n -> 2n-1-s), as Kaldi's ExtractWindow does.
        size, shift = self.opts.window_size, self.opts.window_shift
        n = wave.numel()
        pad = size // 2 - shift // 2
        need_right = max(0, (num_frames - 1) * shift + size - pad - n)
        right = wave.flip(0)[:need_right]
        if pad > 0:
            return torch.cat((wave[:pad].flip(0), wave, right))
        return torch.cat((wave[-pad:], right))

    def _dither(self, frames: torch.Tensor, num_frames: list[int], keys: Sequence[str]) -> torch.Tensor:
        # Same noise as the per-utterance path: a CPU generator seeded from the utterance id.
        noise = []
        for m, key in zip(num_frames, keys):
            g = torch.Generator().manual_seed(dither_seed(key))
            noise.append(torch.randn((m, frames.shape[1]), generator=g))
        return frames + self.opts.dither * torch.cat(noise).to(self.device)

    @torch.no_grad()
    def __call__(self, waveforms: Sequence[torch.Tensor], keys: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Compute features of every waveform.

        Args:
            waveforms: B tensors (or arrays) of shape `(num_samples_b,)` on the int16 scale.
            keys: utterance ids (for errors and dither seeds); defaults to "0", "1", ...

        Returns:
            B float32 tensors of shape `(num_frames_b, opts.dim)` on the extractor's device.

        Raises:
            AudioError: an utterance too short for one frame (or below --min-duration), naming it.
        """
        opts = self.opts
        keys = list(keys) if keys is not None else [str(i) for i in range(len(waveforms))]
        if not waveforms:
            return []
        for wave, key in zip(waveforms, keys):
            check_duration(int(torch.as_tensor(wave).numel()), opts, key)
        frames, num_frames = self.frame(waveforms)  # (N, window_size)
        if opts.dither != 0.0:
            frames = self._dither(frames, num_frames, keys)
        # `frames` is our own copy from here on, so the steps below work in place (fewer passes
        # over memory, which is what bounds this on CPU).
        if opts.remove_dc_offset:
            frames -= frames.mean(dim=1, keepdim=True)
        log_energy = None
        if opts.use_energy and opts.raw_energy:
            log_energy = self._log_energy(frames)
        if opts.preemphasis_coefficient != 0.0:
            # x[j] -= c * x[j-1] for j >= 1, and x[0] -= c * x[0] (Kaldi's Preemphasize).
            coeff = opts.preemphasis_coefficient
            previous = frames[:, :-1] * coeff
            frames[:, 1:] -= previous
            frames[:, 0] *= 1.0 - coeff
        frames *= self.window
        if opts.use_energy and not opts.raw_energy:
            log_energy = self._log_energy(frames)
        spectrum = torch.fft.rfft(frames, n=opts.padded_window_size)  # (N, padded // 2 + 1)
        if opts.feat_type == "mfcc" or opts.use_power:
            spectrum = spectrum.real.square() + spectrum.imag.square()
        else:
            spectrum = spectrum.abs()
        feats = spectrum @ self.mel_banks_t  # (N, num_mel_bins)
        if opts.feat_type == "mfcc" or opts.use_log_fbank:
            feats = feats.clamp_min(_EPSILON).log()
        feats = self._finish_mfcc(feats, log_energy) if opts.feat_type == "mfcc" else self._finish_fbank(feats, log_energy)
        out = list(torch.split(feats, num_frames))
        if opts.subtract_mean:
            out = [f - f.mean(dim=0, keepdim=True) for f in out]
        return out

    def _log_energy(self, frames: torch.Tensor) -> torch.Tensor:
        log_energy = frames.square().sum(dim=1).clamp_min(_EPSILON).log()  # (N,)
        if self.opts.energy_floor > 0.0:
            log_energy = log_energy.clamp_min(math.log(self.opts.energy_floor))
        return log_energy

    def _finish_fbank(self, feats: torch.Tensor, log_energy: torch.Tensor | None) -> torch.Tensor:
        if log_energy is None:
            return feats
        energy = log_energy.unsqueeze(1)
        return torch.cat((feats, energy) if self.opts.htk_compat else (energy, feats), dim=1)

    def _finish_mfcc(self, feats: torch.Tensor, log_energy: torch.Tensor | None) -> torch.Tensor:
        opts = self.opts
        ceps = feats @ self.dct  # (N, num_ceps)
        if self.lifter is not None:
            ceps = ceps * self.lifter
        if log_energy is not None:
            ceps[:, 0] = log_energy
        if opts.htk_compat:
            # HTK order: C1..C(n-1), then C0 (scaled by sqrt(2) when it is not the energy).
            c0 = ceps[:, :1] if opts.use_energy else ceps[:, :1] * math.sqrt(2.0)
            ceps = torch.cat((ceps[:, 1:], c0), dim=1)
        return ceps


def batch_by_length(lengths: Sequence[int], max_samples: int) -> list[list[int]]:
    """Group consecutive items into batches of at most `max_samples` total samples (at least one each).

    Returns:
        lists of indices into `lengths`, in order.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, n in enumerate(lengths):
        if current and total + n > max_samples:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        batches.append(current)
    return batches


__all__ = ["BatchedFeatureExtractor", "batch_by_length", "window_function"]
