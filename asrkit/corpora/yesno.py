"""Kaldi's "yesno" corpus (OpenSLR 1): data dirs as `egs/yesno/s5/local/prepare_data.sh` makes them.

60 WAV files, 8 kHz, one speaker saying eight Hebrew words ("ken" = yes, "lo" = no) per file; the
file name is the transcript, `1` for YES and `0` for NO (`0_1_1_0_0_1_1_0.wav`). Kaldi trains on the
first 30 files sorted by name and tests on the last 30.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from asrkit.corpora.common import (
    format_duration,
    output_exists,
    probe_audio,
    require_dir,
    write_data_dir,
)
from asrkit.errors import AsrkitError, DataDirError

SPEAKER = "global"  # Kaldi's yesno puts every file under one speaker of this name
LANGUAGE = "he"
WORDS = {"0": "NO", "1": "YES"}
NUM_TRAIN = 30
_NAME = re.compile(r"[01](_[01])*\.wav")
_LAYOUT = "waves_yesno/<0|1>_<0|1>_..._<0|1>.wav"


def find_yesno_dir(root: str | os.PathLike) -> Path:
    """The folder holding the WAV files: `root` or `root/waves_yesno`.

    Raises:
        AsrkitError: neither holds a file named like `0_1_1_0_0_1_1_0.wav`.
    """
    root = require_dir(root, "yesno corpus folder")
    for cand in (root, root / "waves_yesno"):
        if cand.is_dir() and any(_NAME.fullmatch(f.name) for f in cand.iterdir()):
            return cand
    raise AsrkitError(f"{root}: no yesno WAV files here or in {root / 'waves_yesno'} (expected layout: {_LAYOUT})")


def yesno_transcript(file_name: str) -> str:
    """`0_1_1.wav` -> `NO YES YES` (Kaldi's `sed -e s/1/YES/g -e s/0/NO/g -e s/_/ /g`)."""
    return " ".join(WORDS[d] for d in file_name[: -len(".wav")].split("_"))


def prepare_yesno(root: str | os.PathLike, out_dir: str | os.PathLike, *, num_train: int = NUM_TRAIN,
                  overwrite: bool = False, num_workers: int = 4) -> list[Path]:
    """Write `<out_dir>/train_yesno` (the first `num_train` files by name) and `<out_dir>/test_yesno` (the rest).

    As Kaldi's recipe: one speaker (`global`), transcripts of YES and NO. Utterance ids are
    `global-<file name>` (asrkit's data dirs prefix utterance ids with the speaker id); `wav.scp`
    holds absolute paths, `utt2lang` is `he`, `utt2dur` comes from the WAV headers.

    Raises:
        AsrkitError: no yesno files, too few files for the split, or unreadable audio.
        DataDirError: a `.wav` file whose name is not a yes/no sequence (naming it).
    """
    wav_dir = find_yesno_dir(root)
    names = sorted(f.name for f in wav_dir.iterdir() if f.name.endswith(".wav"))
    odd = [n for n in names if not _NAME.fullmatch(n)]
    if odd:
        raise DataDirError(f"{wav_dir / odd[0]}: not a yesno file name (expected {_LAYOUT})")
    if not 0 < num_train < len(names):
        raise AsrkitError(f"{wav_dir}: {len(names)} files; cannot train on the first {num_train} and test on the rest")
    out_dir = Path(out_dir)
    done = []
    for name, files in (("train_yesno", names[:num_train]), ("test_yesno", names[num_train:])):
        dest = out_dir / name
        if output_exists(dest, overwrite):
            done.append(dest)
            continue
        audio = {f"{SPEAKER}-{f[: -len('.wav')]}": wav_dir / f for f in files}
        infos = probe_audio(audio, num_workers, desc=f"reading {name} headers")
        tables = {
            "wav.scp": {u: os.path.abspath(p) for u, p in audio.items()},
            "text": {u: yesno_transcript(p.name) for u, p in audio.items()},
            "utt2spk": {u: SPEAKER for u in audio},
            "utt2lang": {u: LANGUAGE for u in audio},
            "utt2dur": {u: format_duration(infos[u].duration) for u in audio},
        }
        done.append(write_data_dir(dest, tables, overwrite=overwrite))
    return done
