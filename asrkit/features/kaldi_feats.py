"""Kaldi-exact fbank and MFCC: the options of compute-fbank-feats / compute-mfcc-feats and extraction.

`FeatureOptions` holds every option under Kaldi's name and default (except `dither`, which is 0 unless
set, so that features are reproducible); `read_kaldi_conf` reads a Kaldi `.conf` file; and
`compute_features` turns one utterance of int16-scale samples into a `(num_frames, dim)` matrix with
`torchaudio.compliance.kaldi`, the way the Kaldi binaries do.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from asrkit.errors import AudioError, ConfigError, FormatError
from asrkit.kaldi.textio import iter_lines

FEATURE_TYPES = ("fbank", "mfcc")
WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "blackman")


@dataclass(frozen=True)
class _Opt:
    attr: str
    kind: type
    types: tuple[str, ...] = FEATURE_TYPES  # feature types whose Kaldi binary has this option


# Kaldi option name -> attribute. Names and meanings follow FrameExtractionOptions, MelBanksOptions,
# FbankOptions, MfccOptions and the compute-*-feats program options.
_OPTIONS: dict[str, _Opt] = {
    # FrameExtractionOptions
    "sample-frequency": _Opt("sample_frequency", float),
    "frame-length": _Opt("frame_length", float),
    "frame-shift": _Opt("frame_shift", float),
    "dither": _Opt("dither", float),
    "preemphasis-coefficient": _Opt("preemphasis_coefficient", float),
    "remove-dc-offset": _Opt("remove_dc_offset", bool),
    "window-type": _Opt("window_type", str),
    "blackman-coeff": _Opt("blackman_coeff", float),
    "round-to-power-of-two": _Opt("round_to_power_of_two", bool),
    "snip-edges": _Opt("snip_edges", bool),
    # MelBanksOptions
    "num-mel-bins": _Opt("num_mel_bins", int),
    "low-freq": _Opt("low_freq", float),
    "high-freq": _Opt("high_freq", float),
    "vtln-low": _Opt("vtln_low", float),
    "vtln-high": _Opt("vtln_high", float),
    # FbankOptions / MfccOptions
    "use-energy": _Opt("use_energy", bool),
    "energy-floor": _Opt("energy_floor", float),
    "raw-energy": _Opt("raw_energy", bool),
    "htk-compat": _Opt("htk_compat", bool),
    "use-log-fbank": _Opt("use_log_fbank", bool, ("fbank",)),
    "use-power": _Opt("use_power", bool, ("fbank",)),
    "num-ceps": _Opt("num_ceps", int, ("mfcc",)),
    "cepstral-lifter": _Opt("cepstral_lifter", float, ("mfcc",)),
    # compute-*-feats program options
    "vtln-warp": _Opt("vtln_warp", float),
    "subtract-mean": _Opt("subtract_mean", bool),
    "min-duration": _Opt("min_duration", float),
}

# Kaldi options that exist but that asrkit does not implement: named so the error says so, instead of
# calling a real Kaldi option unknown.
_UNSUPPORTED = {
    "allow-downsample": "resample the audio in wav.scp instead (e.g. a `sox ... -r 16000 - |` pipe)",
    "allow-upsample": "resample the audio in wav.scp instead (e.g. a `sox ... -r 16000 - |` pipe)",
    "max-feature-vectors": "it only bounds memory in online decoding",
    "debug-mel": "it only prints the mel banks",
    "channel": "wav.scp audio must be mono; pick a channel with a `sox ... remix 1 |` pipe",
    "output-format": "asrkit writes Kaldi matrices",
    "utt2spk": "per-speaker VTLN warps are not supported",
    "vtln-map": "per-speaker VTLN warps are not supported",
    "write-utt2dur": "use `asrkit data` to write utt2dur",
    "config": "give the conf file with --conf",
}


@dataclass(frozen=True)
class FeatureOptions:
    """All options of Kaldi's compute-fbank-feats / compute-mfcc-feats, under their Kaldi defaults.

    Attribute names are the Kaldi option names with `-` turned into `_`. The only default that
    differs from Kaldi is `dither` (Kaldi: 1.0), which is 0 so that the same input always gives the
    same features; where it is set, the noise is seeded per utterance (see `dither_seed`).
    `use_energy` defaults to False for fbank and True for MFCC, as in Kaldi.
    """

    feat_type: str = "fbank"
    sample_frequency: float = 16000.0
    frame_length: float = 25.0
    frame_shift: float = 10.0
    dither: float = 0.0
    preemphasis_coefficient: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    blackman_coeff: float = 0.42
    round_to_power_of_two: bool = True
    snip_edges: bool = True
    num_mel_bins: int = 23
    low_freq: float = 20.0
    high_freq: float = 0.0
    vtln_low: float = 100.0
    vtln_high: float = -500.0
    use_energy: bool | None = None  # None: the feature type's Kaldi default
    energy_floor: float = 0.0
    raw_energy: bool = True
    htk_compat: bool = False
    use_log_fbank: bool = True
    use_power: bool = True
    num_ceps: int = 13
    cepstral_lifter: float = 22.0
    vtln_warp: float = 1.0
    subtract_mean: bool = False
    min_duration: float = 0.0
    _explicit: frozenset = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self):
        if self.feat_type not in FEATURE_TYPES:
            raise ConfigError(f"unknown feature type '{self.feat_type}' (expected one of {', '.join(FEATURE_TYPES)})")
        if self.use_energy is None:
            object.__setattr__(self, "use_energy", self.feat_type == "mfcc")
        self.validate()

    # -- derived sizes, computed in Kaldi's order of operations so rounding matches its int casts --
    @property
    def window_shift(self) -> int:
        """Frame shift in samples (Kaldi: `samp_freq * 0.001 * frame_shift_ms`, truncated)."""
        return int(self.sample_frequency * 0.001 * self.frame_shift)

    @property
    def window_size(self) -> int:
        """Frame length in samples."""
        return int(self.sample_frequency * 0.001 * self.frame_length)

    @property
    def padded_window_size(self) -> int:
        """FFT length: the window size, rounded up to a power of two if `round_to_power_of_two`."""
        n = self.window_size
        return 1 << (n - 1).bit_length() if self.round_to_power_of_two else n

    @property
    def dim(self) -> int:
        """Number of columns of the features."""
        if self.feat_type == "mfcc":
            return self.num_ceps
        return self.num_mel_bins + int(bool(self.use_energy))

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi outputs for `num_samples` samples (feature-window.cc: NumFrames)."""
        shift, size = self.window_shift, self.window_size
        if self.snip_edges:
            return 0 if num_samples < size else 1 + (num_samples - size) // shift
        return (num_samples + shift // 2) // shift

    def validate(self) -> None:
        """Check values the way Kaldi's option classes do.

        Raises:
            ConfigError: naming the option at fault.
        """
        def bad(name: str, why: str):
            raise ConfigError(f"--{name}={getattr(self, name.replace('-', '_'))}: {why}")

        if self.sample_frequency <= 0:
            bad("sample-frequency", "must be positive")
        if self.window_shift <= 0:
            bad("frame-shift", "is less than one sample")
        if self.window_size < 2:
            bad("frame-length", "is less than two samples")
        if self.padded_window_size % 2:
            bad("frame-length", "the FFT length must be even: use --round-to-power-of-two=true or change it")
        if not 0.0 <= self.preemphasis_coefficient <= 1.0:
            bad("preemphasis-coefficient", "must lie in [0, 1]")
        if self.window_type not in WINDOW_TYPES:
            bad("window-type", f"must be one of {', '.join(WINDOW_TYPES)}")
        if self.dither < 0:
            bad("dither", "must not be negative")
        if self.num_mel_bins < 3:
            bad("num-mel-bins", "must be at least 3")
        nyquist = 0.5 * self.sample_frequency
        high = self.high_freq + nyquist if self.high_freq <= 0 else self.high_freq
        if not (0.0 <= self.low_freq < nyquist and 0.0 < high <= nyquist and self.low_freq < high):
            raise ConfigError(f"bad values in options: --low-freq={self.low_freq} and --high-freq={self.high_freq} "
                              f"vs. Nyquist {nyquist}")
        if self.vtln_warp <= 0:
            bad("vtln-warp", "must be positive")
        if self.vtln_warp != 1.0:
            vtln_high = self.vtln_high + high if self.vtln_high < 0 else self.vtln_high
            if not (self.low_freq < self.vtln_low < high and 0.0 < vtln_high < high and self.vtln_low < vtln_high):
                raise ConfigError(f"bad values in options: --vtln-low={self.vtln_low} and --vtln-high={self.vtln_high}"
                                  f" vs. --low-freq={self.low_freq} and --high-freq={self.high_freq}")
        if self.feat_type == "mfcc":
            if not 1 <= self.num_ceps <= self.num_mel_bins:
                bad("num-ceps", f"must lie in [1, --num-mel-bins={self.num_mel_bins}]")
            if self.cepstral_lifter < 0:
                bad("cepstral-lifter", "must not be negative")

    def collapsed_mel_channels(self, num_mel_bins: int | None = None) -> list[tuple[int, int]]:
        """Pairs `(i, i + 1)` of mel channels (0-based) that each weigh one and the same FFT bin.

        Such channels differ by a constant after the log (identical after CMVN): the bank is finer
        than the FFT resolution at its low end, as 80 bins are at 8 kHz (a 256-point FFT).

        Args:
            num_mel_bins: check this many bins instead of `self.num_mel_bins`.
        """
        import torchaudio.compliance.kaldi as ta_kaldi

        n = self.num_mel_bins if num_mel_bins is None else num_mel_bins
        if n <= 3:  # torchaudio builds banks of 4 bins or more (Kaldi allows 3, too coarse to collapse)
            return []
        banks, _ = ta_kaldi.get_mel_banks(n, self.padded_window_size, float(self.sample_frequency),
                                          float(self.low_freq), float(self.high_freq), float(self.vtln_low),
                                          float(self.vtln_high), float(self.vtln_warp))
        support = [tuple(row.nonzero().flatten().tolist()) for row in banks]
        return [(i, i + 1) for i in range(n - 1) if len(support[i]) == 1 and support[i] == support[i + 1]]

    def mel_bank_warning(self) -> str | None:
        """A one-line warning when mel channels collapse (`collapsed_mel_channels`), naming them and
        the largest `--num-mel-bins` that keeps every channel distinct at this sample rate; else None."""
        pairs = self.collapsed_mel_channels()
        if not pairs:
            return None
        fine = next(n for n in range(self.num_mel_bins - 1, 3, -1) if not self.collapsed_mel_channels(n))
        shown = ", ".join(f"{a} = {b}" for a, b in pairs[:4]) + (", ..." if len(pairs) > 4 else "")
        return (f"--num-mel-bins={self.num_mel_bins} is too fine for {self.sample_frequency:g} Hz audio "
                f"({self.padded_window_size}-point FFT): mel channels {shown} weigh one and the same FFT bin "
                f"and carry the same information; use --num-mel-bins={fine} or fewer (e.g. 40 at 8 kHz)")

    def to_kaldi_args(self, only_explicit: bool = False) -> list[str]:
        """The options as Kaldi command-line arguments (`--num-mel-bins=80`), in table order.

        Args:
            only_explicit: give only the options that were set (from a conf file or the command
                line) rather than every option of this feature type.
        """
        args = []
        for name, opt in _OPTIONS.items():
            if self.feat_type not in opt.types or (only_explicit and name not in self._explicit):
                continue
            value = getattr(self, opt.attr)
            if opt.kind is bool:
                text = "true" if value else "false"
            elif opt.kind is float:
                text = repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))
            else:
                text = str(value)
            args.append(f"--{name}={text}")
        return args

    def to_kaldi_conf(self) -> str:
        """A Kaldi `.conf` holding every option (Kaldi's defaults spelled out, including --dither)."""
        return "".join(f"{a}\n" for a in self.to_kaldi_args())

    def torchaudio_kwargs(self) -> dict:
        """Keyword arguments for `torchaudio.compliance.kaldi.fbank` / `.mfcc` with these options."""
        kw = dict(
            blackman_coeff=self.blackman_coeff, dither=self.dither, energy_floor=self.energy_floor,
            frame_length=self.frame_length, frame_shift=self.frame_shift, high_freq=self.high_freq,
            htk_compat=self.htk_compat, low_freq=self.low_freq, min_duration=0.0,
            num_mel_bins=self.num_mel_bins, preemphasis_coefficient=self.preemphasis_coefficient,
            raw_energy=self.raw_energy, remove_dc_offset=self.remove_dc_offset,
            round_to_power_of_two=self.round_to_power_of_two, sample_frequency=self.sample_frequency,
            snip_edges=self.snip_edges, subtract_mean=self.subtract_mean, use_energy=bool(self.use_energy),
            vtln_high=self.vtln_high, vtln_low=self.vtln_low, vtln_warp=self.vtln_warp,
            window_type=self.window_type,
        )
        if self.feat_type == "fbank":
            kw.update(use_log_fbank=self.use_log_fbank, use_power=self.use_power)
        else:
            kw.update(num_ceps=self.num_ceps, cepstral_lifter=self.cepstral_lifter)
        return kw


def _parse_value(name: str, opt: _Opt, text: str):
    if opt.kind is bool:
        low = text.lower()
        # Kaldi's ParseOptions::ToBool: "" (a bare --flag) means true.
        if low in ("true", "t", "1", ""):
            return True
        if low in ("false", "f", "0"):
            return False
        raise ValueError(f"invalid value '{text}' for boolean option --{name} (expected true or false)")
    if text == "":
        raise ValueError(f"option --{name} needs a value")
    try:
        return opt.kind(text)
    except ValueError:
        raise ValueError(f"invalid value '{text}' for option --{name} (expected {opt.kind.__name__})") from None


def parse_kaldi_option(arg: str, feat_type: str) -> tuple[str, str, object]:
    """Parse one Kaldi option, `--num-mel-bins=80` (the leading `--` is optional, `_` counts as `-`).

    Returns:
        `(kaldi_name, attribute, value)`.

    Raises:
        ValueError: unknown option, an option the feature type's Kaldi binary lacks, an option asrkit
            does not implement, or a bad value; the message names the option.
    """
    body = arg[2:] if arg.startswith("--") else arg
    name, sep, text = body.partition("=")
    name = name.strip().replace("_", "-")
    text = text.strip()
    program = f"compute-{feat_type}-feats"
    if name in _UNSUPPORTED:
        raise ValueError(f"Kaldi option --{name} is not supported by asrkit: {_UNSUPPORTED[name]}")
    opt = _OPTIONS.get(name)
    if opt is None:
        raise ValueError(f"unknown option --{name} for {program}")
    if feat_type not in opt.types:
        raise ValueError(f"option --{name} is not an option of {program}")
    if not sep and opt.kind is not bool:
        raise ValueError(f"option --{name} needs a value (--{name}=VALUE)")
    return name, opt.attr, _parse_value(name, opt, text)


def read_kaldi_conf(path: str | os.PathLike, feat_type: str) -> dict[str, tuple[str, object]]:
    """Read a Kaldi `.conf` file: one `--name=value` per line, `#` starts a comment, blank lines skipped.

    This is what Kaldi's `--config=FILE` accepts (ParseOptions::ReadConfigFile).

    Returns:
        `{attribute: (kaldi_name, value)}` in file order; a later line overrides an earlier one.

    Raises:
        FileNotFoundError: no such file.
        FormatError: a line that is not an option, or an unknown/invalid option, naming file and line.
    """
    path = Path(path)
    values: dict[str, tuple[str, object]] = {}
    for lineno, line in iter_lines(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--"):
            raise FormatError(path, f"expected an option of the form --name=value, found '{line}'", lineno)
        try:
            name, attr, value = parse_kaldi_option(line, feat_type)
        except ValueError as e:
            raise FormatError(path, str(e), lineno) from None
        values[attr] = (name, value)
    return values


def load_feature_options(feat_type: str = "fbank", conf: str | os.PathLike | None = None,
                         overrides: Iterable[str] | Mapping[str, object] = ()) -> FeatureOptions:
    """Build `FeatureOptions` from Kaldi defaults, then a `.conf` file, then command-line overrides.

    Args:
        feat_type: "fbank" or "mfcc".
        conf: a Kaldi `.conf` file (e.g. `conf/fbank.conf`), or None.
        overrides: Kaldi options applied after the conf file, either as strings
            (`"num-mel-bins=80"` or `"--num-mel-bins=80"`) or as `{kaldi_name_or_attribute: value}`.

    Raises:
        FormatError: a bad conf line (file and line named).
        ConfigError: a bad override or an invalid combination of values.
    """
    if feat_type not in FEATURE_TYPES:
        raise ConfigError(f"unknown feature type '{feat_type}' (expected one of {', '.join(FEATURE_TYPES)})")
    values: dict[str, tuple[str, object]] = {}
    if conf is not None:
        values.update(read_kaldi_conf(conf, feat_type))
    items = overrides.items() if isinstance(overrides, Mapping) else ((o, None) for o in overrides)
    for key, value in items:
        arg = str(key) if value is None else f"{key}={_format_value(value)}"
        try:
            name, attr, parsed = parse_kaldi_option(arg, feat_type)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        values[attr] = (name, parsed)
    kwargs = {attr: value for attr, (_, value) in values.items()}
    try:
        return FeatureOptions(feat_type=feat_type, _explicit=frozenset(n for n, _ in values.values()), **kwargs)
    except ConfigError as e:
        where = f" (in {conf})" if conf is not None else ""
        raise ConfigError(f"{e}{where}") from None


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dither_seed(key: str) -> int:
    """The RNG seed of the dither noise for utterance `key`: the same features for any --nj or device."""
    return zlib.crc32(key.encode("utf-8"))


def compute_features(samples, opts: FeatureOptions, key: str = ""):
    """Compute Kaldi fbank or MFCC features of one utterance with `torchaudio.compliance.kaldi`.

    Args:
        samples: `(num_samples,)` float array or tensor on the int16 scale (Kaldi reads PCM without
            normalising; soundfile's [-1, 1] floats must be multiplied by 32768 first).
        opts: the feature options; `opts.sample_frequency` must be the audio's sample rate.
        key: the utterance id, used in error messages and to seed the dither noise.

    Returns:
        `(num_frames, opts.dim)` float32 tensor on the device of `samples` (CPU for numpy input);
        `num_frames == opts.num_frames(num_samples)`.

    Raises:
        AudioError: the utterance is too short for one frame or shorter than --min-duration
            (Kaldi skips such utterances with a warning; callers may do the same).
    """
    import torch
    import torchaudio.compliance.kaldi as ta_kaldi

    wave = torch.as_tensor(samples, dtype=torch.float32)
    if wave.dim() != 1:
        raise AudioError(f"{key}: expected mono audio of shape (num_samples,), got {tuple(wave.shape)}")
    num_samples = wave.numel()
    check_duration(num_samples, opts, key)
    fn = ta_kaldi.fbank if opts.feat_type == "fbank" else ta_kaldi.mfcc
    kwargs = opts.torchaudio_kwargs()
    if opts.dither != 0.0:
        # torchaudio draws dither noise from the global RNG; seed it per utterance without
        # disturbing the caller's RNG state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(dither_seed(key))
            return fn(wave.unsqueeze(0), **kwargs)
    return fn(wave.unsqueeze(0), **kwargs)


def check_duration(num_samples: int, opts: FeatureOptions, key: str) -> None:
    """Raise AudioError if an utterance of `num_samples` gives no frames or is under --min-duration."""
    if num_samples < opts.min_duration * opts.sample_frequency:
        raise AudioError(f"{key}: {num_samples / opts.sample_frequency:.3f} s is shorter than "
                         f"--min-duration={opts.min_duration}")
    if opts.num_frames(num_samples) == 0 or num_samples < opts.window_size:
        raise AudioError(f"{key}: {num_samples} samples is too short for one {opts.frame_length} ms frame")


def replace(opts: FeatureOptions, **changes) -> FeatureOptions:
    """A copy of `opts` with some attributes changed (and validated)."""
    return dataclasses.replace(opts, **changes)


__all__ = [
    "FEATURE_TYPES", "FeatureOptions", "check_duration", "compute_features", "dither_seed",
    "load_feature_options", "parse_kaldi_option", "read_kaldi_conf", "replace",
]
