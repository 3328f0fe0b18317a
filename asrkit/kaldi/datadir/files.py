"""The files of a Kaldi data directory: one registry of their names, key kinds and formats, and the
line reader every data-dir operation shares.

`FILES` is the single list of the per-utterance, per-speaker and per-recording files asrkit knows
(KALDI_CONVENTIONS.md §1). Validate, fix, subset, split, combine, info, `DataDir` and the writers
all take their file lists and rules from it, so a new file is added here once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from asrkit.errors import DataDirError, FormatError
from asrkit.kaldi.textio import c_sorted, iter_lines

ILLEGAL_TEXT_SYMBOLS = ("<s>", "</s>", "#0")


class DataDirFileError(FormatError, DataDirError):
    """A file of a data directory is malformed or disagrees with the others.

    The message starts with `<path>:<line>: ` (or `<path>: ` when no single line is at fault); it is
    both a `FormatError` (so `.path`/`.line` are set) and a `DataDirError`.
    """


class Segment(NamedTuple):
    """One line of `segments`: the recording and the times in seconds (end = -1 means "to the end")."""

    reco: str
    start: float
    end: float


# ---------------------------------------------------------------------------------------------
# Reading lines


class Row(NamedTuple):
    """One line of a table: its number, the raw text (no newline) and its first field ("" if blank)."""

    lineno: int
    line: str
    key: str

    @property
    def fields(self) -> list[str]:
        return self.line.split()

    @property
    def value(self) -> str:
        parts = self.line.strip().split(maxsplit=1)
        return parts[1] if len(parts) > 1 else ""

    def field(self, column: int) -> str | None:
        """Field `column` (0 is the key), or None when the line is shorter."""
        f = self.line.split(None, column + 1)
        return f[column] if len(f) > column else None


def make_row(lineno: int, line: str) -> Row:
    parts = line.split(maxsplit=1)
    return Row(lineno, line, parts[0] if parts else "")


def read_rows(path: Path) -> tuple[list[Row], bool]:
    """Read a UTF-8 text file as rows; also return whether it ends in a newline (or is empty).

    Raises:
        DataDirFileError: not UTF-8, or a carriage return, naming file and line.
        FileNotFoundError: no such file.
    """
    try:
        rows = [make_row(n, line) for n, line in iter_lines(path)]
    except FormatError as e:
        if isinstance(e, DataDirError):
            raise
        prefix = f"{e.path}:{e.line}: " if e.line is not None else f"{e.path}: "
        message = str(e)[len(prefix):] if str(e).startswith(prefix) else str(e)
        raise DataDirFileError(e.path, message, e.line) from None
    ends_in_newline = True
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            ends_in_newline = f.read(1) == b"\n"
    return rows, ends_in_newline


def read_checked(path: Path) -> list[Row]:
    """Read a table and run Kaldi's `check_sorted_and_uniq` on it.

    Every line must end in a newline, no line may be empty, and the first column must be strictly
    increasing in C-locale order (sorted, no duplicates).
    """
    rows, ends_in_newline = read_rows(path)
    check_sorted_and_uniq(path, rows, ends_in_newline)
    return rows


def check_sorted_and_uniq(path: Path, rows: list[Row], ends_in_newline: bool) -> None:
    if not ends_in_newline:
        raise DataDirFileError(path, "last line does not end in a newline", rows[-1].lineno)
    prev: str | None = None
    for row in rows:
        key = row.key
        if key == "":
            raise DataDirFileError(path, "empty line", row.lineno)
        if prev is not None:
            if key == prev:
                raise DataDirFileError(path, f"duplicate key '{key}'", row.lineno)
            if key < prev:
                raise DataDirFileError(path, f"not sorted: '{key}' after '{prev}' (sort with LC_ALL=C)", row.lineno)
        prev = key


def check_keys(path: Path, rows: Sequence[Row], expected: Sequence[str], what: str) -> None:
    """Require the keys of `rows` to be exactly `expected` (both C-sorted), naming the first difference."""
    keys = [r.key for r in rows]
    if keys == list(expected):
        return
    key_set, expected_set = set(keys), set(expected)
    extra = [k for k in keys if k not in expected_set]
    missing = [k for k in expected if k not in key_set]
    first = min(extra[:1] + missing[:1]) if (extra or missing) else keys[0]
    raise DataDirFileError(path, f"keys are not the {what} (first: '{first}'); "
                                 f"{len(missing)} missing, {len(extra)} extra")


def read_tables(d: Path, names: Iterable[str]) -> dict[str, list[Row]]:
    """The non-blank rows of each file of `names` present in `d`, lines kept byte for byte."""
    tables = {}
    for name in dict.fromkeys(names):
        f = d / name
        if f.is_file():
            tables[name] = [row for row in read_rows(f)[0] if row.key != ""]
    return tables


# ---------------------------------------------------------------------------------------------
# Values


def parse_float(path: Path, row: Row, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataDirFileError(path, f"expected a number, found '{text}'", row.lineno) from None
    if not math.isfinite(value):
        raise DataDirFileError(path, f"expected a finite number, found '{text}'", row.lineno)
    return value


def positive_int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def positive_float(text: str) -> float | None:
    """`text` as a finite number > 0, else None (fix_data_dir's `$2 > 0`)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def two_fields(path: Path, row: Row, what: str) -> str:
    f = row.fields
    if len(f) != 2:
        raise DataDirFileError(path, f"expected 2 fields (id {what}), found {len(f)}", row.lineno)
    return f[1]


def parse_speaker(path: Path, row: Row) -> str:
    return two_fields(path, row, "speaker-id")


def parse_segment(path: Path, row: Row) -> Segment:
    f = row.fields
    if len(f) != 4:
        raise DataDirFileError(path, f"expected 4 fields (utt-id reco-id start end), found {len(f)}", row.lineno)
    start = parse_float(path, row, f[2])
    end = parse_float(path, row, f[3])
    # validate_data_dir.sh wants end > start; extract-segments (and lhotse) also read end = -1 as
    # "to the end of the recording", which combine_data_dirs writes when no duration is known.
    if end != -1 and end <= start:
        raise DataDirFileError(path, f"end time {f[3]} is not after start time {f[2]}", row.lineno)
    if start < 0:
        raise DataDirFileError(path, f"negative start time {f[2]}", row.lineno)
    return Segment(f[1], start, end)


def parse_number(path: Path, row: Row) -> float:
    return parse_float(path, row, two_fields(path, row, "value"))


def parse_count(path: Path, row: Row) -> int:
    text = two_fields(path, row, "value")
    value = positive_int(text)
    if value is None:
        raise DataDirFileError(path, f"expected a positive integer, found '{text}'", row.lineno)
    return value


def fmt_float(x: float) -> str:
    # %.15g round-trips what the files usually hold (3.204875, 0.01) without binary noise.
    return f"{x:.15g}"


def fmt_segment(s: Segment) -> str:
    return f"{s.reco} {fmt_float(s.start)} {fmt_float(s.end)}"


# ---------------------------------------------------------------------------------------------
# Per-file rules of validate_data_dir.sh (the cross-file key checks are common to all files)

Warnings = list[str]


def _check_wav_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        f = row.fields
        if len(f) < 2:
            raise DataDirFileError(path, "expected '<id> <extended-filename>'", row.lineno)
        if f[1].startswith("~"):
            raise DataDirFileError(path, "tilde (~) is not expanded in wav.scp; use a full path", row.lineno)
    return []


def _check_segment_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        parse_segment(path, row)
    return []


def _check_channel_rows(path: Path, rows: list[Row]) -> Warnings:
    channel_one = False
    for row in rows:
        f = row.fields
        if len(f) == 3 and f[2] == "1":
            channel_one = True
        elif len(f) != 3 or f[2] not in ("A", "B"):
            raise DataDirFileError(path, f"expected '<reco-id> <file> <A|B>', found '{row.line}'", row.lineno)
    return [f"{path}: the channel should be marked as A or B, not 1"] if channel_one else []


def _check_gender_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        if len(row.fields) != 2 or row.fields[1] not in ("m", "f"):
            raise DataDirFileError(path, f"expected '<speaker> m' or '<speaker> f', found '{row.line}'", row.lineno)
    return []


def _check_warp_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        value = parse_float(path, row, two_fields(path, row, "warp-factor"))
        if not 0.5 < value < 1.5:
            raise DataDirFileError(path, f"warp factor {row.fields[1]} is not in (0.5, 1.5)", row.lineno)
    return []


def _check_lang_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        two_fields(path, row, "language")
    return []


def _check_duration_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        if parse_number(path, row) <= 0:
            raise DataDirFileError(path, f"duration {row.fields[1]} is not > 0", row.lineno)
    return []


def _check_count_rows(path: Path, rows: list[Row]) -> Warnings:
    for row in rows:
        parse_count(path, row)
    return []


# ---------------------------------------------------------------------------------------------
# The registry

KeyKind = Literal["utt", "spk", "reco"]


@dataclass(frozen=True)
class KaldiFile:
    """One kind of data-dir file.

    Attributes:
        name: the file name (`wav.scp`, `utt2dur`, ...).
        key: what its first column holds: "utt", "spk", or "reco" (recordings when `segments`
            exists, utterances otherwise).
        value_type: the Python type of a loaded value (`DataDir`'s attribute holds `{key: value_type}`).
        parse: reads one row into a `value_type` (None keeps the value string).
        fmt: writes a value back.
        check_rows: validate_data_dir.sh's per-line rules for the file; returns warnings.
        keys_first: validate_data_dir.sh compares this file's keys before it checks the lines.
        restricts: fix_data_dir.sh keeps only the utterances (speakers for a per-speaker file) that
            this file has...
        usable: ...and, where given, whose line passes this test (`utt2dur`'s `$2 > 0`).
    """

    name: str
    key: KeyKind
    value_type: type = str
    parse: Callable[[Path, Row], object] | None = None
    fmt: Callable[[object], str] = str
    check_rows: Callable[[Path, list[Row]], Warnings] | None = None
    keys_first: bool = False
    restricts: bool = False
    usable: Callable[[Row], bool] | None = None

    @property
    def attr(self) -> str:
        """The `DataDir` attribute holding the table: the name with `.` as `_` (`wav.scp` -> `wav_scp`)."""
        return self.name.replace(".", "_")


def _positive_duration(row: Row) -> bool:
    return len(row.fields) == 2 and positive_float(row.fields[1]) is not None


def _positive_count(row: Row) -> bool:
    return len(row.fields) == 2 and positive_int(row.fields[1]) is not None


# In the order validate_data_dir.sh checks them. `utt2spk` and `spk2utt` are not listed: every data
# dir has them, `spk2utt` is always derived from `utt2spk`, and each operation treats them first.
FILES: tuple[KaldiFile, ...] = (
    KaldiFile("text", "utt", restricts=True),
    KaldiFile("segments", "utt", Segment, parse_segment, fmt_segment, _check_segment_rows, restricts=True),
    KaldiFile("wav.scp", "reco", check_rows=_check_wav_rows, restricts=True),
    KaldiFile("reco2file_and_channel", "reco", check_rows=_check_channel_rows),
    KaldiFile("feats.scp", "utt", restricts=True),
    KaldiFile("cmvn.scp", "spk", restricts=True),
    KaldiFile("spk2gender", "spk", check_rows=_check_gender_rows, restricts=True),
    KaldiFile("spk2warp", "spk", float, parse_number, fmt_float, _check_warp_rows),
    KaldiFile("utt2warp", "utt", float, parse_number, fmt_float, _check_warp_rows),
    KaldiFile("vad.scp", "utt"),
    KaldiFile("utt2lang", "utt", check_rows=_check_lang_rows, restricts=True),
    KaldiFile("utt2uniq", "utt"),
    KaldiFile("utt2dur", "utt", float, parse_number, fmt_float, _check_duration_rows, keys_first=True,
              restricts=True, usable=_positive_duration),
    KaldiFile("utt2num_frames", "utt", int, parse_count, str, _check_count_rows, keys_first=True,
              restricts=True, usable=_positive_count),
    KaldiFile("reco2dur", "reco", float, parse_number, fmt_float, _check_duration_rows, keys_first=True),
)
BY_NAME: dict[str, KaldiFile] = {f.name: f for f in FILES}

# Files indexed by utterance id (besides utt2spk, and segments, which also maps to recordings).
UTT_FILES = tuple(f.name for f in FILES if f.key == "utt" and f.name != "segments")
# Files indexed by speaker id.
SPK_FILES = tuple(f.name for f in FILES if f.key == "spk")
# Files indexed by recording id when `segments` exists, by utterance id otherwise.
RECO_FILES = tuple(f.name for f in FILES if f.key == "reco")


def key_kind(name: str) -> KeyKind:
    """The key kind of file `name`; files not in `FILES` are per speaker when named `spk2*`, else per utterance."""
    if name in BY_NAME:
        return BY_NAME[name].key
    return "spk" if name.startswith("spk2") and name != "spk2utt" else "utt"


def present_files(d: Path, extra: Iterable[str] = ()) -> list[str]:
    """utt2spk and every per-utt/per-spk/per-reco file present in `d`, plus `extra` and the utt2*/spk2*
    files Kaldi does not list (spk2utt excluded: it is derived)."""
    names = ["utt2spk", *BY_NAME, *extra]
    for f in sorted(d.iterdir()):
        n = f.name
        if f.is_file() and ((n.startswith("utt2") and n != "utt2spk") or (n.startswith("spk2") and n != "spk2utt")):
            names.append(n)
    return [n for n in dict.fromkeys(names) if (d / n).is_file()]


# ---------------------------------------------------------------------------------------------
# utt2spk and spk2utt


def utt2spk_to_spk2utt(pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """`{spk: [utt, ...]}` from `(utt, spk)` pairs (or a `{utt: spk}` mapping, taken C-sorted).

    Speakers come out C-sorted and each speaker's utterances in the order given: for a sorted
    `utt2spk` this is what Kaldi's `utils/utt2spk_to_spk2utt.pl` writes.
    """
    items = sorted(pairs.items()) if isinstance(pairs, Mapping) else pairs
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in items:
        spk2utt.setdefault(spk, []).append(utt)
    return {spk: spk2utt[spk] for spk in c_sorted(spk2utt)}


def utt2spk_of(path: Path, rows: Sequence[Row]) -> dict[str, str]:
    """`{utt: spk}` of utt2spk rows, each of which must have exactly two fields."""
    return {row.key: parse_speaker(path, row) for row in rows}


def require_utt2spk(d: Path) -> None:
    if not d.is_dir():
        raise DataDirError(f"{d}: no such data directory")
    if not (d / "utt2spk").is_file():
        raise DataDirFileError(d / "utt2spk", "no such file")
