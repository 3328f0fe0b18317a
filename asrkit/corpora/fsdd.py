"""The Free Spoken Digit Dataset (Jakobovski/free-spoken-digit-dataset): data dirs in speaker folds.

`recordings/{digit}_{speaker}_{take}.wav`, 8 kHz mono, one English digit word per file. A fair test
holds out whole speakers, so the data dirs come as folds: for each speaker, a test set of that
speaker and train / dev sets of the others (dev: the first takes of each digit, FSDD's own
"takes 0-4 are the test set" convention, applied inside the training speakers).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from asrkit.corpora.common import (
    describe_ids,
    format_duration,
    output_exists,
    probe_audio,
    require_dir,
    write_data_dir,
)
from asrkit.errors import AsrkitError, DataDirError

LANGUAGE = "en"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DEV_TAKES = 5
_NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[a-z][a-z0-9]*)_(?P<take>[0-9]+)\.wav")
_LAYOUT = "recordings/<digit>_<speaker>_<take>.wav"


def find_fsdd_dir(root: str | os.PathLike) -> Path:
    """The folder holding the WAV files: `root` or `root/recordings`.

    Raises:
        AsrkitError: neither holds a file named like `7_george_12.wav`.
    """
    root = require_dir(root, "Free Spoken Digit Dataset folder")
    for cand in (root, root / "recordings"):
        if cand.is_dir() and any(_NAME.fullmatch(f.name) for f in cand.iterdir()):
            return cand
    raise AsrkitError(f"{root}: no FSDD WAV files here or in {root / 'recordings'} (expected layout: {_LAYOUT})")


def scan_fsdd(wav_dir: Path) -> dict[str, tuple[Path, str, str, int]]:
    """`{utt: (wav path, speaker, digit word, take)}` with utterance id `{speaker}-{digit}-{take}`.

    Raises:
        DataDirError: a `.wav` file whose name is not `{digit}_{speaker}_{take}.wav` (naming it).
    """
    utts = {}
    for f in sorted(wav_dir.iterdir()):
        if not f.name.endswith(".wav"):
            continue
        m = _NAME.fullmatch(f.name)
        if m is None:
            raise DataDirError(f"{f}: not an FSDD file name (expected {_LAYOUT})")
        spk, digit, take = m["speaker"], m["digit"], int(m["take"])
        utts[f"{spk}-{digit}-{take}"] = (f, spk, DIGITS[int(digit)], take)
    return utts


def prepare_fsdd(root: str | os.PathLike, out_dir: str | os.PathLike, *, dev_takes: int = DEV_TAKES,
                 speakers: tuple[str, ...] | None = None, overwrite: bool = False,
                 num_workers: int = 4) -> list[Path]:
    """Write `<out_dir>/all` and, for each held-out speaker S, `<out_dir>/fold_S/{train,dev,test}`.

    `test` is every recording of S; `train` and `dev` are those of the other speakers, `dev` their
    takes `0 .. dev_takes-1` of each digit (0: no dev set). Transcripts are the digit words
    (`zero` ... `nine`), utt2lang `en`, utt2dur from the WAV headers.

    Args:
        speakers: only these speakers (default: every speaker found); at least two.

    Raises:
        AsrkitError: no FSDD files, fewer than two speakers, a requested speaker not found, or
            unreadable audio.
        DataDirError: a `.wav` file with another kind of name.
    """
    wav_dir = find_fsdd_dir(root)
    utts = scan_fsdd(wav_dir)
    found = sorted({spk for _, spk, _, _ in utts.values()})
    if speakers:
        missing = [s for s in speakers if s not in found]
        if missing:
            raise AsrkitError(f"{wav_dir}: no recordings of speaker(s) {', '.join(missing)} "
                              f"(speakers there: {', '.join(found)})")
        utts = {u: v for u, v in utts.items() if v[1] in speakers}
        found = sorted(set(speakers))
    if len(found) < 2:
        raise AsrkitError(f"{wav_dir}: speaker folds need at least two speakers, found {', '.join(found) or 'none'}")
    if dev_takes < 0:
        raise AsrkitError(f"dev_takes must not be negative, got {dev_takes}")
    infos = probe_audio({u: v[0] for u, v in utts.items()}, num_workers, desc="reading FSDD headers")
    out_dir = Path(out_dir)

    def tables(selected: list[str]) -> dict[str, dict[str, str]]:
        return {"wav.scp": {u: os.path.abspath(utts[u][0]) for u in selected},
                "text": {u: utts[u][2] for u in selected},
                "utt2spk": {u: utts[u][1] for u in selected},
                "utt2lang": {u: LANGUAGE for u in selected},
                "utt2dur": {u: format_duration(infos[u].duration) for u in selected}}

    sets = {"all": list(utts)}
    for held_out in found:
        rest = [u for u in utts if utts[u][1] != held_out]
        dev = [u for u in rest if utts[u][3] < dev_takes]
        sets[f"fold_{held_out}/test"] = [u for u in utts if utts[u][1] == held_out]
        sets[f"fold_{held_out}/train"] = [u for u in rest if utts[u][3] >= dev_takes]
        if dev_takes:
            if not dev:
                raise DataDirError(f"{wav_dir}: no take below {dev_takes} among the speakers other than "
                                   f"{held_out} ({describe_ids(rest)}): no dev set")
            sets[f"fold_{held_out}/dev"] = dev
    done = []
    for name, selected in sets.items():
        dest = out_dir / name
        if not output_exists(dest, overwrite):
            write_data_dir(dest, tables(selected), overwrite=overwrite)
        done.append(dest)
    return done
