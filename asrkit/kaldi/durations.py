"""utt2dur for a data dir, as Kaldi's `utils/data/get_utt2dur.sh` writes it.

Without `segments`, each recording's length (`wav-to-duration`: the header of plain files, a full
read of pipes and archive offsets); with `segments`, end - start (end -1: to the recording's end).
The values are written the way Kaldi's tools print them, so the file compares equal to Kaldi's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asrkit.errors import DataDirError
from asrkit.kaldi.textio import write_table
from asrkit.logutil import get_logger

log = get_logger(__name__)


def kaldi_float(x: float) -> str:
    """How Kaldi's text tables write a BaseFloat (wav-to-duration): float32, 7 significant digits."""
    return f"{float(np.float32(x)):.7g}"


def awk_number(x: float) -> str:
    """How awk's `print` writes a number: integers as integers, others with OFMT `%.6g`."""
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return f"{x:.6g}"


def utt_durations(data_dir: str | os.PathLike) -> dict[str, str]:
    """`{utt: seconds}` in C order, formatted as get_utt2dur.sh writes them.

    Raises:
        DataDirError: no wav.scp.
        FormatError / AudioError: a bad wav.scp or segments line, unreadable audio (naming it).
    """
    from asrkit.kaldi.wav import WavScpReader

    d = Path(data_dir)
    if not (d / "wav.scp").is_file():
        raise DataDirError(f"{d / 'wav.scp'}: no such file (durations are read from the audio)")
    reader = WavScpReader(d)
    # get_utt2dur.sh: awk's `$4 - $3` for segments, wav-to-duration's float for recordings.
    fmt = awk_number if reader.segments_path is not None else kaldi_float
    return {utt: fmt(seconds) for utt, seconds in reader.durations().items()}


def write_utt2dur(data_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write `DATA_DIR/utt2dur` (atomically); an existing one is kept unless `overwrite`.

    Returns:
        the path of utt2dur.
    """
    path = Path(data_dir) / "utt2dur"
    if path.is_file() and not overwrite:
        log.info("%s exists; keeping it (--overwrite to compute it again)", path)
        return path
    durations = utt_durations(data_dir)
    write_table(path, durations)
    log.info("wrote %s: %d utterances, %.3f hours", path, len(durations),
             sum(float(v) for v in durations.values()) / 3600.0)
    return path
