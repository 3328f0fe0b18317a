"""Read audio the way Kaldi reads `wav.scp`: files, shell pipes, ark offsets, and `segments`.

Samples come back at int16 scale as Kaldi uses them (a full-scale int16 sample is 32767.0, no
normalisation to [-1, 1]). Pipes run under bash with their exit status checked. Kaldi's
speed-perturbation pipes (`... | sox -t wav - -t wav - speed 0.9 |`) are applied in-process when
`sox` (or `wav-copy`) is not installed, so a Kaldi-perturbed data dir reads anywhere; an emulated
`speed` gives slightly other samples than sox, so it is logged (once per process) and make-feats
records it in its job signature (`emulates_sox_speed`).
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import wave
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile

from asrkit.errors import AudioError, FormatError
from asrkit.kaldi import objects
from asrkit.kaldi.textio import c_sorted, iter_lines
from asrkit.logutil import get_logger

log = get_logger(__name__)

# extract-segments' --max-overshoot default: a segment may end this far past the recording's end
# (it is then cut at the end); further is an error.
MAX_OVERSHOOT_SECONDS = 0.5

INT16_SCALE = 32768.0
_SHELL_SPECIAL = set("'\"`$;&<>(){}\\*?[]~#\n")


def _have(program: str) -> bool:
    """Whether `program` is on PATH (tests replace this to force the in-process path)."""
    return shutil.which(program) is not None


# ------------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------------

# Data-chunk sizes that say "length unknown": a writer streaming to a pipe cannot seek back to fix
# the header, so sox writes 0x7ffff000 and others (ffmpeg) 0xffffffff. Not a truncation.
STREAMING_DATA_SIZES = (0x7FFFF000, 0xFFFFFFFF)


def _declared_frames(fileobj) -> int | None:
    """Number of frames a PCM WAV header declares, or None when it is not plain PCM WAV or its
    length is a streaming writer's placeholder (`STREAMING_DATA_SIZES`)."""
    try:
        with wave.open(fileobj) as w:
            frames, frame_bytes = w.getnframes(), w.getsampwidth() * w.getnchannels()
    except (wave.Error, EOFError, ValueError):
        return None
    return _unless_placeholder(frames, frame_bytes)


def _unless_placeholder(frames: int, frame_bytes: int) -> int | None:
    """`frames`, or None where it is a streaming writer's placeholder length."""
    # The wave module gives floor(data size / frame bytes); the placeholder is a data size.
    if any(frames == size // frame_bytes for size in STREAMING_DATA_SIZES):
        return None
    return frames


def _read_pcm16_wav(fileobj) -> tuple[np.ndarray, int, int | None] | None:
    """`(samples, rate, declared frames or None)` of a mono 16-bit PCM WAV (Kaldi's usual input), or None
    for anything else (soundfile decodes that). One read and one int16 -> float32 conversion:
    about 5x less CPU than soundfile's float read, scaling and second header parse, which showed
    as the largest cost of make-feats on WAV input (docs/benchmarks.md)."""
    try:
        with wave.open(fileobj) as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                return None
            declared = w.getnframes()
            data = w.readframes(declared)
            rate = w.getframerate()
    except (wave.Error, EOFError, ValueError):
        return None
    whole = len(data) - len(data) % 2  # a file truncated inside a sample: drop the half sample
    samples = np.frombuffer(data, dtype="<i2", count=whole // 2).astype(np.float32)
    return samples, rate, _unless_placeholder(declared, 2)


def _decode(source, key: str, what: str, *, from_pipe: bool = False) -> tuple[np.ndarray, int]:
    """Decode a file path or bytes (plain 16-bit WAV directly, the rest with soundfile); check mono,
    non-empty and not truncated."""
    if isinstance(source, bytes):
        wav = _read_pcm16_wav(io.BytesIO(source))
    else:
        with open(source, "rb") as f:
            wav = _read_pcm16_wav(f)
    if wav is not None:
        samples, rate, declared = wav
        if samples.shape[0] == 0:
            raise AudioError(f"{key}: {what} has no samples (empty audio)")
    else:
        samples, rate, declared = _decode_soundfile(source, key, what)
    if declared is not None and samples.shape[0] < declared:
        msg = f"{key}: {what} is truncated: the header says {declared} samples, found {samples.shape[0]}"
        if not from_pipe:
            raise AudioError(msg)
        # sox writing to a pipe cannot fix up the header length; Kaldi warns and reads what came.
        log.warning(msg)
    return samples, int(rate)


def _decode_soundfile(source, key: str, what: str) -> tuple[np.ndarray, int, int | None]:
    blob = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        samples, rate = soundfile.read(blob, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{key}: cannot decode audio from {what}: {e}") from None
    if samples.shape[1] != 1:
        raise AudioError(f"{key}: {what} has {samples.shape[1]} channels; Kaldi needs mono audio "
                         "(select a channel, e.g. `sox in.wav -t wav - remix 1 |`)")
    if samples.shape[0] == 0:
        raise AudioError(f"{key}: {what} has no samples (empty audio)")
    if isinstance(source, bytes):
        declared = _declared_frames(io.BytesIO(source))
    else:
        with open(source, "rb") as f:
            declared = _declared_frames(f)
    return samples[:, 0] * np.float32(INT16_SCALE), rate, declared


def _from_kaldiio(obj, key: str, what: str) -> tuple[np.ndarray, int]:
    if not (isinstance(obj, tuple) and len(obj) == 2):
        raise AudioError(f"{key}: {what} holds a matrix or vector, not audio")
    rate, array = obj
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] != 1:
        raise AudioError(f"{key}: {what} has {array.shape[1]} channels; Kaldi needs mono audio")
    array = array.reshape(-1)
    if array.size == 0:
        raise AudioError(f"{key}: {what} has no samples (empty audio)")
    if array.dtype == np.int16:
        samples = array.astype(np.float32)
    elif array.dtype == np.uint8:  # 8-bit PCM is unsigned
        samples = (array.astype(np.float32) - 128.0) * 256.0
    else:  # soundfile floats in [-1, 1]
        samples = (array.astype(np.float64) * INT16_SCALE).astype(np.float32)
    return samples, int(rate)


def _read_ark_audio(path: str, offset: int, key: str) -> tuple[np.ndarray, int]:
    what = f"'{path}:{offset}'"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset >= size:
                raise AudioError(f"{key}: offset {offset} is past the end of {path} ({size} bytes)")
            f.seek(offset)
            obj = objects.read_object(f)
    except FileNotFoundError:
        raise AudioError(f"{key}: cannot open '{path}': no such file") from None
    except objects.READ_ERRORS as e:
        raise AudioError(f"{key}: {what}: {objects.describe_read_error(e)}") from None
    return _from_kaldiio(obj, key, what)


def _run(command: str, key: str, stdin: bytes | None = None) -> bytes:
    """Run `command` with bash (pipefail) and return its stdout; a non-zero exit is an AudioError."""
    # pipefail: `sph2pipe missing.sph | sox ...` must fail on sph2pipe, not decode an empty stream.
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], input=stdin, capture_output=True)
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else "(no stderr output)"
        raise AudioError(f"{key}: command '{command}' failed with exit status {proc.returncode}: {last}")
    for line in err.splitlines():
        if line.strip():
            log.info("%s: %s: %s", key, command, line)
    return proc.stdout


# ------------------------------------------------------------------------------------------------
# Pipes, and the in-process stand-ins for sox and wav-copy
# ------------------------------------------------------------------------------------------------

def _split_pipeline(command: str) -> list[list[str]] | None:
    """Split a simple `a | b | c` pipeline into argument lists; None if it uses other shell syntax."""
    if any(c in _SHELL_SPECIAL for c in command):
        return None
    stages = [shlex.split(part) for part in command.split("|")]
    if any(not s for s in stages):
        return None
    return stages


def _parse_sox(args: list[str]) -> tuple[str, float | None] | None:
    """Recognise Kaldi's sox stages; return (input, speed factor or None), input '-' for stdin.

    Forms: `sox -t wav - -t wav - speed F`, `sox -t wav FILE -t wav - speed F`,
    `sox FILE -t wav - speed F` and the same without `speed F`.
    """
    i = 1
    if args[i : i + 1] == ["-t"]:
        if len(args) < i + 2 or args[i + 1] not in ("wav", "wavpcm", "flac", "sph", "nist"):
            return None
        i += 2
    if len(args) <= i:
        return None
    infile = args[i]
    i += 1
    if args[i : i + 3] != ["-t", "wav", "-"]:
        return None
    i += 3
    rest = args[i:]
    if not rest:
        return infile, None
    if len(rest) == 2 and rest[0] == "speed":
        try:
            factor = float(rest[1])
        except ValueError:
            return None
        if factor > 0:
            return infile, factor
    return None


def speed_perturb(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Change speed by `factor` as sox's `speed` effect does: pitch and tempo together.

    sox's `speed F` relabels the rate as rate*F and resamples back to the original rate; here the
    resampling is torchaudio.functional.resample (windowed sinc) from rate*F to rate. The result
    is rounded and clipped to int16 like the 16-bit WAV sox writes. It differs slightly from sox's
    output: sox uses its own polyphase "high quality" filter and adds TPDF dither when it reduces to
    16 bits, so samples differ by a few int16 steps; the length matches sox's within one sample.

    Args:
        samples: float32 (num_samples,) at int16 scale.
        sample_rate: the rate of `samples`, kept for the output.
        factor: > 1 is faster and shorter, < 1 slower and longer.

    Returns:
        float32 (ceil(num_samples / factor),) at int16 scale.
    """
    import torch
    import torchaudio.functional as taf

    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return samples.astype(np.float32, copy=True)
    # resample only uses the ratio; the reduced fraction keeps the filter bank small (0.9 -> 9/10).
    ratio = Fraction(factor).limit_denominator(1000)
    wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)
    out = taf.resample(wav, orig_freq=ratio.numerator, new_freq=ratio.denominator)[0].numpy()
    return np.clip(np.round(out), -32768.0, 32767.0).astype(np.float32)


# The code path a job signature records when sox's `speed` effect is emulated (other samples than sox's).
SOX_SPEED_EMULATED = "sox speed emulated"
_warned_speed_emulated = False


def _stand_in(command: str, have=None) -> tuple[str, str, float | None] | None:
    """How `command |` is read in this process because a program in it is not installed:
    `("sox", input, speed factor or None)` (input "-": the pipeline before sox) or
    `("wav-copy", input, None)`; None when the pipeline runs as it is."""
    have = have or _have
    stages = _split_pipeline(command)
    if stages is None or all(have(s[0]) for s in stages):
        return None
    last = stages[-1]
    prog = os.path.basename(last[0])
    if prog == "sox":
        parsed = _parse_sox(last)
        if parsed is not None and (parsed[0] == "-" or len(stages) == 1):
            return "sox", parsed[0], parsed[1]
    elif prog == "wav-copy" and len(stages) == 1 and len(last) == 3 and last[2] == "-":
        return "wav-copy", last[1], None
    return None


def emulates_sox_speed(wav_scp: str | os.PathLike) -> bool:
    """True if reading this `wav.scp` emulates sox's `speed` effect for some entry (sox is not
    installed): the features then differ slightly from those of a machine with sox."""
    found: dict[str, bool] = {}

    def have(program: str) -> bool:  # one PATH lookup per program, not per line
        if program not in found:
            found[program] = _have(program)
        return found[program]

    for _, line in iter_lines(wav_scp):
        value = line.split(maxsplit=1)[-1].strip()
        if value.endswith("|") and "speed" in value:
            stand_in = _stand_in(value[:-1].strip(), have)
            if stand_in is not None and stand_in[0] == "sox" and stand_in[2] is not None:
                return True
    return False


def _warn_speed_emulated(command: str) -> None:
    global _warned_speed_emulated
    if not _warned_speed_emulated:  # once per process: a perturbed data dir has it on most lines
        _warned_speed_emulated = True
        log.warning("sox is not installed: speed perturbation ('%s |' and the like) is emulated in-process; "
                    "samples differ from sox's by a few int16 steps", command)


def _read_pipe(command: str, key: str) -> tuple[np.ndarray, int]:
    """Read `command |`: run it, or stand in for sox / wav-copy when they are not installed."""
    stand_in = _stand_in(command)
    if stand_in is not None:
        prog, infile, factor = stand_in
        if prog == "wav-copy":
            return read_audio(infile, key)
        if infile != "-":
            samples, rate = read_audio(infile, key)
        elif "|" not in command:
            raise AudioError(f"{key}: '{command} |' reads sox input from stdin but has nothing before it")
        else:
            samples, rate = read_audio("|".join(command.split("|")[:-1]).strip() + " |", key)
        if factor is not None:
            _warn_speed_emulated(command)
            samples = speed_perturb(samples, rate, factor)
        return samples, rate
    data = _run(command, key)
    if not data:
        raise AudioError(f"{key}: command '{command}' produced no output (empty audio)")
    return _decode(data, key, f"the output of '{command}'", from_pipe=True)


def read_audio(extended_filename: str, key: str) -> tuple[np.ndarray, int]:
    """Read one recording given a wav.scp value (Kaldi's "extended filename").

    Accepts a path (WAV, FLAC, NIST SPHERE PCM, anything soundfile reads; relative to the current
    directory, as in Kaldi), a shell pipe ending in `|` (run with bash), or an archive offset
    `foo.ark:1234` (a wav object written by `wav-copy`).

    Args:
        extended_filename: the wav.scp value.
        key: the utterance or recording id, for error messages.

    Returns:
        (samples, sample_rate): float32 (num_samples,) at int16 scale, and the rate in Hz.

    Raises:
        AudioError: naming the key: missing or undecodable file, a failing pipe (with the command
            and the last line of its stderr), multi-channel, empty or truncated audio.
    """
    rx = extended_filename.strip()
    if not rx:
        raise AudioError(f"{key}: empty wav.scp entry")
    if rx.endswith("|"):
        return _read_pipe(rx[:-1].strip(), key)
    if rx.startswith("|") or rx == "-":
        raise AudioError(f"{key}: cannot read audio from '{rx}' (not a file, pipe or ark offset)")
    path, sep, tail = rx.rpartition(":")
    if sep and tail.isdigit() and not os.path.exists(rx):
        return _read_ark_audio(path, int(tail), key)
    if not os.path.exists(rx):
        raise AudioError(f"{key}: cannot open '{rx}': no such file")
    if os.path.isdir(rx):
        raise AudioError(f"{key}: '{rx}' is a directory, not an audio file")
    return _decode(rx, key, f"'{rx}'")


def audio_duration(extended_filename: str, key: str) -> float:
    """Duration in seconds of a wav.scp entry (header only for plain files, else a full read)."""
    rx = extended_filename.strip()
    if not rx.endswith("|") and os.path.isfile(rx):
        try:
            info = soundfile.info(rx)
            return info.frames / info.samplerate
        except (soundfile.LibsndfileError, RuntimeError):
            pass
    samples, rate = read_audio(rx, key)
    return samples.shape[0] / rate


# ------------------------------------------------------------------------------------------------
# wav.scp + segments
# ------------------------------------------------------------------------------------------------

class WavScpReader:
    """Audio per utterance from a data dir's `wav.scp` (and `segments`, if any).

    Iterating yields `(utt_id, samples, sample_rate)` in C-sorted utterance order, samples float32
    (num_samples,) at int16 scale. With segments, consecutive segments of one recording read it
    once. `reader[utt]` gives `(samples, sample_rate)` for one utterance.

    Segments follow Kaldi's extract-segments: start sample `int(start * rate)`, end sample
    `int(end * rate)` (end = -1: to the end of the recording); an end up to 0.5 s past the
    recording is cut at its end. Unlike extract-segments, which skips bad segments with a warning,
    a segment that starts past the end, ends more than 0.5 s past it, or is empty is an error
    naming the utterance (skipping would silently lose data). Segments shorter than
    extract-segments' 0.1 s minimum are returned, not skipped.

    Args:
        data_dir_or_wav_scp: a data dir (reads `wav.scp` and, if present, `segments`) or a
            wav.scp file.
        segments: a segments file; overrides the data dir's.

    Raises:
        FormatError: a malformed wav.scp or segments line (file:line), or a segment whose
            recording is not in wav.scp.
        AudioError: (when reading) see read_audio, and bad segment times, naming the utterance.
    """

    def __init__(self, data_dir_or_wav_scp: str | os.PathLike, *, segments: str | os.PathLike | None = None):
        src = Path(data_dir_or_wav_scp)
        if src.is_dir():
            self.wav_scp = src / "wav.scp"
            if segments is None and (src / "segments").exists():
                segments = src / "segments"
        else:
            self.wav_scp = src
        self.segments_path = Path(segments) if segments is not None else None
        self._wav: dict[str, str] = {}
        for lineno, line in iter_lines(self.wav_scp):
            parts = line.strip().split(maxsplit=1)
            if len(parts) != 2:
                raise FormatError(self.wav_scp, "expected '<id> <extended-filename>'", lineno)
            if parts[0] in self._wav:
                raise FormatError(self.wav_scp, f"duplicate key '{parts[0]}'", lineno)
            self._wav[parts[0]] = parts[1]
        self._segments: dict[str, tuple[str, float, float]] | None = None
        if self.segments_path is not None:
            self._segments = _read_segments(self.segments_path, self._wav)
        self._keys = c_sorted(self._segments if self._segments is not None else self._wav)
        self._cache: tuple[str, np.ndarray, int] | None = None

    def keys(self) -> list[str]:
        """Utterance ids in C order."""
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, utt: str) -> bool:
        return utt in (self._segments if self._segments is not None else self._wav)

    def _recording(self, reco: str) -> tuple[np.ndarray, int]:
        if self._cache is not None and self._cache[0] == reco:
            return self._cache[1], self._cache[2]
        samples, rate = read_audio(self._wav[reco], reco)
        self._cache = (reco, samples, rate)
        return samples, rate

    def __getitem__(self, utt: str) -> tuple[np.ndarray, int]:
        if self._segments is None:
            if utt not in self._wav:
                raise KeyError(utt)
            return read_audio(self._wav[utt], utt)
        if utt not in self._segments:
            raise KeyError(utt)
        reco, start, end = self._segments[utt]
        samples, rate = self._recording(reco)
        return _cut_segment(samples, rate, utt, reco, start, end), rate

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, int]]:
        for utt in self._keys:
            samples, rate = self[utt]
            yield utt, samples, rate
        self._cache = None

    def recording_durations(self) -> dict[str, float]:
        """`{recording_id: seconds}` for every wav.scp entry (headers only for plain files)."""
        return {reco: audio_duration(rx, reco) for reco, rx in self._wav.items()}

    def durations(self) -> dict[str, float]:
        """`{utt_id: seconds}` in C order.

        Without segments, the recording's length (like wav-to-duration); with segments, end - start
        as utils/data/get_utt2dur.sh computes it (end = -1 uses the recording's length).
        """
        if self._segments is None:
            return {utt: audio_duration(self._wav[utt], utt) for utt in self._keys}
        out = {}
        reco_dur: dict[str, float] = {}
        for utt in self._keys:
            reco, start, end = self._segments[utt]
            if end == -1:
                if reco not in reco_dur:
                    reco_dur[reco] = audio_duration(self._wav[reco], reco)
                end = reco_dur[reco]
            out[utt] = end - start
        return out


def _read_segments(path: Path, wav: dict[str, str]) -> dict[str, tuple[str, float, float]]:
    segments: dict[str, tuple[str, float, float]] = {}
    for lineno, line in iter_lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise FormatError(path, f"expected '<utt> <recording> <start> <end>', found {len(fields)} fields", lineno)
        utt, reco, start_s, end_s = fields
        try:
            start, end = float(start_s), float(end_s)
        except ValueError:
            raise FormatError(path, f"utterance '{utt}': start and end must be numbers", lineno) from None
        if start < 0 or (end != -1 and end <= start):
            raise FormatError(path, f"utterance '{utt}': invalid times {start_s} {end_s} (need 0 <= start < end, or end = -1)", lineno)
        if reco not in wav:
            raise FormatError(path, f"utterance '{utt}': recording '{reco}' is not in wav.scp", lineno)
        if utt in segments:
            raise FormatError(path, f"duplicate utterance '{utt}'", lineno)
        segments[utt] = (reco, start, end)
    return segments


def _cut_segment(samples: np.ndarray, rate: int, utt: str, reco: str, start: float, end: float) -> np.ndarray:
    num = samples.shape[0]
    start_samp = int(start * rate)
    end_samp = num if end == -1 else int(end * rate)
    if start_samp >= num:
        raise AudioError(f"{utt}: segment starts at {start} s, past the end of recording '{reco}' ({num / rate:.3f} s)")
    if end_samp > num:
        if end_samp >= num + int(MAX_OVERSHOOT_SECONDS * rate):
            raise AudioError(f"{utt}: segment ends at {end} s, more than {MAX_OVERSHOOT_SECONDS} s past the end "
                             f"of recording '{reco}' ({num / rate:.3f} s)")
        end_samp = num
    if end_samp <= start_samp:
        raise AudioError(f"{utt}: segment {start}-{end} s of recording '{reco}' is empty")
    return samples[start_samp:end_samp]
