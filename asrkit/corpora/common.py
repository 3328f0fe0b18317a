"""Shared pieces of the corpus preparers: input checks, audio probing, and writing a data dir.

Every preparer (wsj, mls, commonvoice, librispeech) builds plain dicts (`wav.scp`, `text`,
`utt2spk`, ...), then calls `write_data_dir`, which checks the corpus-level rules and hands them to
the staged data-dir writer (`asrkit.kaldi.datadir.write_data_dir`): C-sorted into a temporary folder,
`spk2utt` derived, validated, renamed into place, so a killed run never leaves a half-written data dir.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asrkit.errors import AsrkitError, AudioError, DataDirError
from asrkit.kaldi import datadir
from asrkit.kaldi.textio import c_sorted
from asrkit.logutil import get_logger

logger = get_logger("asrkit.corpora")

# How many offending ids an error message lists before it says "...".
MAX_IDS_SHOWN = 5


def describe_ids(ids: Iterable[str], max_shown: int = MAX_IDS_SHOWN) -> str:
    """`"3 (first: a, b, c)"`: a count and the first few ids in C-sort order, for error messages."""
    ids = c_sorted(set(ids))
    shown = ", ".join(ids[:max_shown])
    more = ", ..." if len(ids) > max_shown else ""
    return f"{len(ids)} (first: {shown}{more})"


def require_dir(path: str | os.PathLike, what: str, layout: str | None = None) -> Path:
    """Return `path` as a Path if it is a folder, else raise naming what was expected there.

    Args:
        path: the folder to check.
        what: what the folder should be, e.g. "LibriSpeech subset".
        layout: the expected layout, appended to the message (e.g. "<spk>/<chapter>/...").

    Raises:
        AsrkitError: `path` does not exist or is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        hint = f"; expected layout: {layout}" if layout else ""
        raise AsrkitError(f"{path}: {what} {state}{hint}")
    return path


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return `path` as a Path if it is a regular file, else raise naming what was expected.

    Raises:
        AsrkitError: `path` does not exist or is not a file.
    """
    path = Path(path)
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise AsrkitError(f"{path}: {what} {state}")
    return path


def check_pairing(audio_ids: Collection[str], transcript_ids: Collection[str], where: str, *,
                  check_audio_without_transcript: bool = True) -> None:
    """Check that every transcript has audio and (optionally) every audio file has a transcript.

    Args:
        audio_ids: utterance ids for which an audio file was found.
        transcript_ids: utterance ids that have a transcript.
        where: the corpus folder or subset, named in the message.
        check_audio_without_transcript: False where a corpus ships audio that no transcript list
            uses on purpose (Common Voice's `clips/` holds every clip of every split).

    Raises:
        DataDirError: naming both kinds of mismatch with counts and the first few ids.
    """
    audio, trans = set(audio_ids), set(transcript_ids)
    problems = []
    missing_audio = trans - audio
    if missing_audio:
        problems.append(f"transcript without audio: {describe_ids(missing_audio)}")
    if check_audio_without_transcript:
        missing_trans = audio - trans
        if missing_trans:
            problems.append(f"audio without transcript: {describe_ids(missing_trans)}")
    if problems:
        raise DataDirError(f"{where}: " + "; ".join(problems))


@dataclass(frozen=True)
class AudioInfo:
    """What an audio header says: sample rate (Hz), number of samples per channel, channels."""

    sample_rate: int
    num_samples: int
    num_channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_samples / self.sample_rate


def _soundfile_info(path: Path) -> AudioInfo | str:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
        return " ".join(str(e).split())
    if info.samplerate <= 0 or info.frames <= 0:
        return f"empty audio ({info.frames} samples at {info.samplerate} Hz)"
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def probe_audio(paths: Mapping[str, str | os.PathLike], num_workers: int = 4,
                desc: str = "reading audio headers") -> dict[str, AudioInfo]:
    """Read the header of every audio file with `soundfile.info` (no samples are decoded for
    WAV/FLAC/SPHERE; MP3 and Opus are scanned for their length).

    Args:
        paths: `{utt_id: audio_path}`.
        num_workers: threads reading headers in parallel (the work is file-system bound).
        desc: label of the progress bar shown on a terminal.

    Returns:
        `{utt_id: AudioInfo}` for every key of `paths`.

    Raises:
        AudioError: any file cannot be read, naming the count and the first few files with
            libsndfile's reason.
    """
    from tqdm import tqdm

    keys = list(paths)
    files = [Path(paths[k]) for k in keys]
    logger.info("%s: %d files", desc, len(files))
    bar = tqdm(total=len(files), desc=desc, unit="file", disable=not sys.stderr.isatty(), leave=False)
    results: list[AudioInfo | str] = []
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        for res in pool.map(_soundfile_info, files):
            results.append(res)
            bar.update(1)
    bar.close()
    bad = [(f, r) for f, r in zip(files, results) if isinstance(r, str)]
    if bad:
        shown = "; ".join(f"{f}: {r}" for f, r in bad[:MAX_IDS_SHOWN])
        more = "; ..." if len(bad) > MAX_IDS_SHOWN else ""
        raise AudioError(f"unreadable audio: {len(bad)} file(s) (first: {shown}{more})")
    multi = [k for k, r in zip(keys, results) if r.num_channels != 1]
    if multi:
        # Kaldi expects mono; readers take the first channel, so this is worth a warning only.
        logger.warning("audio with more than one channel (the first is used): %s", describe_ids(multi))
    return dict(zip(keys, results))


def format_duration(seconds: float) -> str:
    """Seconds as Kaldi's `wav-to-duration ... ark,t:utt2dur` prints them (7 significant digits)."""
    return f"{seconds:.7g}"


def check_speaker_order(utt2spk: Mapping[str, str], where: str) -> None:
    """Check Kaldi's id rules: each speaker id prefixes its utterance ids, and sorting `utt2spk`
    by utterance also sorts it by speaker (`validate_data_dir.sh` runs `sort -k2 -C`).

    Raises:
        DataDirError: naming the first utterance that breaks a rule.
    """
    prev_spk = None
    for utt in c_sorted(utt2spk):
        spk = utt2spk[utt]
        if not utt.startswith(spk):
            raise DataDirError(f"{where}: speaker id '{spk}' is not a prefix of utterance id '{utt}'")
        if prev_spk is not None and spk < prev_spk:
            raise DataDirError(f"{where}: utt2spk sorted by utterance is not sorted by speaker at "
                               f"'{utt}' (speaker '{spk}' after '{prev_spk}')")
        prev_spk = spk


def output_exists(dest: str | os.PathLike, overwrite: bool) -> bool:
    """True (and a log line) if `dest` already holds a data dir that should be kept.

    A preparer calls this before doing any work for a set, so that re-running a finished stage
    costs nothing unless `overwrite` is set.
    """
    dest = Path(dest)
    if (dest / "utt2spk").is_file() and not overwrite:
        logger.info("%s exists; skipping it (use --overwrite to prepare it again)", dest)
        return True
    return False


def write_data_dir(dest: str | os.PathLike, tables: Mapping[str, Mapping[str, object]], *,
                   overwrite: bool = False, validate_options: Mapping[str, bool] | None = None) -> Path:
    """Write a Kaldi data dir from `{file_name: {key: value}}` tables, atomically.

    The tables must include `utt2spk`; `spk2utt` is derived from it. Every file is written
    C-sorted by key. The folder is assembled under a temporary name next to `dest`, validated with
    `asrkit.kaldi.datadir.validate_data_dir`, then renamed to `dest` (an existing `dest` is
    replaced only if `overwrite`).

    Args:
        dest: the data dir to create, e.g. `data/train_clean_100`.
        tables: e.g. `{"wav.scp": {...}, "text": {...}, "utt2spk": {...}, "utt2lang": {...}}`;
            values that are lists are joined with spaces.
        overwrite: replace an existing `dest`.
        validate_options: extra keyword options of `validate_data_dir`, e.g. `{"non_print": True}`
            for scripts whose text holds format characters such as ZWNJ.

    Returns:
        `dest` as a Path.

    Raises:
        AsrkitError: `dest` exists and `overwrite` is False.
        DataDirError: the tables do not form a valid data dir (the message names the file).
    """
    dest = Path(dest)
    if "utt2spk" not in tables:
        raise ValueError("write_data_dir: tables must include utt2spk")
    if dest.exists() and not overwrite:
        raise AsrkitError(f"{dest}: already exists (use --overwrite to replace it)")
    check_speaker_order(tables["utt2spk"], str(dest))
    # Validated before the rename, so an invalid dir never appears under its final name. Features
    # come at the next stage, hence no_feats.
    warnings = datadir.write_data_dir(dest, tables, validate={"no_feats": True, **(validate_options or {})},
                                      overwrite=overwrite,
                                      error_prefix="prepared data dir fails validation: ")
    for w in warnings:
        logger.warning("%s", w)
    num_spk = len(set(tables["utt2spk"].values()))
    logger.info("wrote %s: %d utterances, %d speakers", dest, len(tables["utt2spk"]), num_spk)
    return dest
