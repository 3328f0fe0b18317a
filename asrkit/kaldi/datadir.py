"""Kaldi data directories: load/save, validate, fix, subset, split, combine and summarise them.

The rules are Kaldi's own (`utils/validate_data_dir.sh`, `fix_data_dir.sh`, `subset_data_dir.sh`,
`split_data.sh`, `combine_data.sh`; KALDI_CONVENTIONS.md §1), except that every failure raises
(Kaldi exits 0 on some) and every output is written atomically.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from asrkit.errors import ConfigError, DataDirError, FormatError
from asrkit.fileio import atomic_write, replace_dir
from asrkit.kaldi.textio import c_sorted, iter_lines, read_table
from asrkit.logutil import get_logger

log = get_logger("kaldi.datadir")

# Files indexed by utterance id (besides utt2spk, text and segments, which get special treatment).
UTT_FILES = ("text", "feats.scp", "vad.scp", "utt2lang", "utt2dur", "utt2num_frames", "utt2uniq", "utt2warp")
# Files indexed by speaker id.
SPK_FILES = ("cmvn.scp", "spk2gender", "spk2warp")
# Files indexed by recording id when `segments` exists, by utterance id otherwise.
RECO_FILES = ("wav.scp", "reco2dur", "reco2file_and_channel")
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


class _Row(NamedTuple):
    lineno: int
    line: str  # the raw line, without its newline
    key: str  # the first field ("" for a blank line)

    @property
    def fields(self) -> list[str]:
        return self.line.split()

    @property
    def value(self) -> str:
        parts = self.line.strip().split(maxsplit=1)
        return parts[1] if len(parts) > 1 else ""


def _row(lineno: int, line: str) -> _Row:
    parts = line.split(maxsplit=1)
    return _Row(lineno, line, parts[0] if parts else "")


def _read_rows(path: Path) -> tuple[list[_Row], bool]:
    """Read a UTF-8 text file as rows; also return whether it ends in a newline (or is empty).

    Raises:
        DataDirFileError: not UTF-8, or a carriage return, naming file and line.
        FileNotFoundError: no such file.
    """
    try:
        rows = [_row(n, line) for n, line in iter_lines(path)]
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


def _read_checked(path: Path) -> list[_Row]:
    """Read a table and run Kaldi's `check_sorted_and_uniq` on it.

    Every line must end in a newline, no line may be empty, and the first column must be strictly
    increasing in C-locale order (sorted, no duplicates).
    """
    rows, ends_in_newline = _read_rows(path)
    _check_sorted_and_uniq(path, rows, ends_in_newline)
    return rows


def _check_sorted_and_uniq(path: Path, rows: list[_Row], ends_in_newline: bool) -> None:
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


def _check_keys(path: Path, rows: Sequence[_Row], expected: Sequence[str], what: str) -> None:
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


def _parse_float(path: Path, row: _Row, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataDirFileError(path, f"expected a number, found '{text}'", row.lineno) from None
    if not math.isfinite(value):
        raise DataDirFileError(path, f"expected a finite number, found '{text}'", row.lineno)
    return value


def _parse_segment(path: Path, row: _Row) -> Segment:
    f = row.fields
    if len(f) != 4:
        raise DataDirFileError(path, f"expected 4 fields (utt-id reco-id start end), found {len(f)}", row.lineno)
    start = _parse_float(path, row, f[2])
    end = _parse_float(path, row, f[3])
    # validate_data_dir.sh wants end > start; extract-segments (and lhotse) also read end = -1 as
    # "to the end of the recording", which combine_data_dirs writes when no duration is known.
    if end != -1 and end <= start:
        raise DataDirFileError(path, f"end time {f[3]} is not after start time {f[2]}", row.lineno)
    if start < 0:
        raise DataDirFileError(path, f"negative start time {f[2]}", row.lineno)
    return Segment(f[1], start, end)


def _positive_int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def _two_fields(path: Path, row: _Row, what: str) -> str:
    f = row.fields
    if len(f) != 2:
        raise DataDirFileError(path, f"expected 2 fields (id {what}), found {len(f)}", row.lineno)
    return f[1]


# ---------------------------------------------------------------------------------------------
# The DataDir type


def _fmt_float(x: float) -> str:
    # %.15g round-trips what the files usually hold (3.204875, 0.01) without binary noise.
    return f"{x:.15g}"


@dataclass
class _FileSpec:
    name: str
    attr: str
    index: str  # "utt", "spk" or "reco"
    parse: Callable[[Path, _Row], object] | None = None  # None: keep the raw value string
    fmt: Callable[[object], str] = str


def _p_float(path: Path, row: _Row) -> float:
    return _parse_float(path, row, _two_fields(path, row, "value"))


def _p_int(path: Path, row: _Row) -> int:
    text = _two_fields(path, row, "value")
    value = _positive_int(text)
    if value is None:
        raise DataDirFileError(path, f"expected a positive integer, found '{text}'", row.lineno)
    return value


_SPECS: tuple[_FileSpec, ...] = (
    _FileSpec("wav.scp", "wav_scp", "reco"),
    _FileSpec("text", "text", "utt"),
    _FileSpec("segments", "segments", "utt", _parse_segment,
              lambda s: f"{s.reco} {_fmt_float(s.start)} {_fmt_float(s.end)}"),
    _FileSpec("utt2lang", "utt2lang", "utt"),
    _FileSpec("utt2dur", "utt2dur", "utt", _p_float, _fmt_float),
    _FileSpec("utt2num_frames", "utt2num_frames", "utt", _p_int),
    _FileSpec("feats.scp", "feats_scp", "utt"),
    _FileSpec("cmvn.scp", "cmvn_scp", "spk"),
    _FileSpec("vad.scp", "vad_scp", "utt"),
    _FileSpec("utt2uniq", "utt2uniq", "utt"),
    _FileSpec("utt2warp", "utt2warp", "utt", _p_float, _fmt_float),
    _FileSpec("spk2gender", "spk2gender", "spk"),
    _FileSpec("spk2warp", "spk2warp", "spk", _p_float, _fmt_float),
    _FileSpec("reco2dur", "reco2dur", "reco", _p_float, _fmt_float),
    _FileSpec("reco2file_and_channel", "reco2file_and_channel", "reco"),
)


@dataclass
class DataDir:
    """The tables of a Kaldi data directory, each a `{key: value}` dict or None when the file is absent.

    Values are the raw strings of the file (a `wav.scp` command, a transcript) except where a type
    is given: `segments` -> `Segment`, `utt2dur`/`reco2dur`/`utt2warp`/`spk2warp` -> float,
    `utt2num_frames` -> int. `utt2spk` is the primary speaker map; `spk2utt` is derived from it.

    Example:
        >>> d = load_data_dir("data/train")
        >>> d.speakers, d.langs, d.utt_duration(d.utts[0])
    """

    utt2spk: dict[str, str] = field(default_factory=dict)
    wav_scp: dict[str, str] | None = None
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    utt2lang: dict[str, str] | None = None
    utt2dur: dict[str, float] | None = None
    utt2num_frames: dict[str, int] | None = None
    feats_scp: dict[str, str] | None = None
    cmvn_scp: dict[str, str] | None = None
    vad_scp: dict[str, str] | None = None
    utt2uniq: dict[str, str] | None = None
    utt2warp: dict[str, float] | None = None
    spk2gender: dict[str, str] | None = None
    spk2warp: dict[str, float] | None = None
    reco2dur: dict[str, float] | None = None
    reco2file_and_channel: dict[str, str] | None = None
    path: Path | None = None

    @property
    def utts(self) -> list[str]:
        """Utterance ids, C-sorted."""
        return c_sorted(self.utt2spk)

    @property
    def speakers(self) -> list[str]:
        """Speaker ids, C-sorted."""
        return c_sorted(set(self.utt2spk.values()))

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        """`{speaker: [utt, ...]}` derived from `utt2spk`, both levels C-sorted."""
        return _spk2utt(self.utt2spk)

    @property
    def langs(self) -> list[str]:
        """The language tags of `utt2lang`, C-sorted (empty without `utt2lang`)."""
        return c_sorted(set(self.utt2lang.values())) if self.utt2lang else []

    def utt_duration(self, utt: str) -> float:
        """Duration of `utt` in seconds, from `utt2dur`, else `segments` (with `reco2dur` for end = -1),
        else `reco2dur` of a wav.scp indexed by utterance.

        Raises:
            DataDirError: unknown utterance, or no file gives its duration.
        """
        if utt not in self.utt2spk:
            raise DataDirError(f"{self._where()}: unknown utterance '{utt}'")
        if self.utt2dur is not None and utt in self.utt2dur:
            return self.utt2dur[utt]
        if self.segments is not None and utt in self.segments:
            seg = self.segments[utt]
            if seg.end != -1:
                return seg.end - seg.start
            if self.reco2dur is not None and seg.reco in self.reco2dur:
                return self.reco2dur[seg.reco] - seg.start
        elif self.segments is None and self.reco2dur is not None and utt in self.reco2dur:
            return self.reco2dur[utt]
        raise DataDirError(f"{self._where()}: no duration for utterance '{utt}' "
                           "(needs utt2dur, segments or reco2dur)")

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "data dir"

    def save(self, path: str | os.PathLike) -> None:
        """Write the tables into folder `path` (created if needed), each file atomically and C-sorted.

        `spk2utt` is regenerated from `utt2spk`. Known files whose attribute is None are removed
        from `path`, so the folder then holds exactly this data dir.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        _write_lines(path / "utt2spk", [f"{u} {s}" for u, s in sorted(self.utt2spk.items())])
        _write_lines(path / "spk2utt", [f"{s} {' '.join(us)}" for s, us in self.spk2utt.items()])
        for spec in _SPECS:
            table = getattr(self, spec.attr)
            target = path / spec.name
            if table is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                continue
            lines = []
            for key, value in sorted(table.items()):
                text = spec.fmt(value)
                lines.append(f"{key} {text}" if text != "" else key)
            _write_lines(target, lines)
        self.path = path


def _spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for utt in c_sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return {spk: out[spk] for spk in c_sorted(out)}


def load_data_dir(path: str | os.PathLike) -> DataDir:
    """Read every known file present in data dir `path` (see `DataDir`); `utt2spk` is required.

    Only per-line formats are checked here (field counts, numbers, duplicate keys); use
    `validate_data_dir` for Kaldi's cross-file rules.

    Raises:
        DataDirError: no such folder or no `utt2spk`.
        DataDirFileError: a malformed line, naming file and line.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: no such data directory")
    if not (path / "utt2spk").is_file():
        raise DataDirFileError(path / "utt2spk", "no such file")
    d = DataDir(path=path)
    d.utt2spk = _load_table(path / "utt2spk", lambda p, r: _two_fields(p, r, "speaker-id"))
    for spec in _SPECS:
        f = path / spec.name
        if f.is_file():
            setattr(d, spec.attr, _load_table(f, spec.parse))
    return d


def _load_table(path: Path, parse: Callable[[Path, _Row], object] | None) -> dict:
    rows, _ = _read_rows(path)
    table: dict = {}
    for row in rows:
        key = row.key
        if key == "":
            raise DataDirFileError(path, "empty line", row.lineno)
        if key in table:
            raise DataDirFileError(path, f"duplicate key '{key}'", row.lineno)
        table[key] = parse(path, row) if parse is not None else row.value
    return table


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with atomic_write(path) as f:
        for line in lines:
            f.write(line + "\n")


# ---------------------------------------------------------------------------------------------
# validate_data_dir


def validate_data_dir(path: str | os.PathLike, *, no_feats: bool = False, no_text: bool = False,
                      no_wav: bool = False, no_spk_sort: bool = False, non_print: bool = False) -> list[str]:
    """Check a data dir with every rule of Kaldi's `utils/validate_data_dir.sh`, in its order.

    Args:
        path: the data directory.
        no_feats, no_text, no_wav: do not require `feats.scp` / `text` / `wav.scp` (each is still
            checked when present).
        no_spk_sort: do not require `utt2spk` to be sorted on the speaker column as well.
        non_print: allow non-printable characters in `text`.

    Returns:
        warnings (e.g. a single speaker, a `reco2file_and_channel` channel written as `1`).

    Raises:
        DataDirError: the folder, `utt2spk` or `spk2utt` is missing.
        DataDirFileError: the first rule broken, naming the file and, where one line is at fault,
            the line: e.g. `data/train/utt2spk:3: not sorted: 'b' after 'c' (sort with LC_ALL=C)`.
    """
    d = Path(path)
    if not d.is_dir():
        raise DataDirError(f"{d}: no such data directory")
    warnings: list[str] = []

    # 1. utt2spk and spk2utt exist and are non-empty.
    for name in ("spk2utt", "utt2spk"):
        f = d / name
        if not f.is_file():
            raise DataDirFileError(f, "no such file")
        if f.stat().st_size == 0:
            raise DataDirFileError(f, "empty file")

    # 2. utt2spk has exactly two fields per line.
    utt2spk_path = d / "utt2spk"
    utt2spk_rows, utt2spk_nl = _read_rows(utt2spk_path)
    for row in utt2spk_rows:
        if len(row.fields) != 2:
            raise DataDirFileError(utt2spk_path, f"expected 2 fields (utt-id speaker-id), found {len(row.fields)}",
                                   row.lineno)
    spk2utt_path = d / "spk2utt"
    spk2utt_rows, spk2utt_nl = _read_rows(spk2utt_path)
    if len(spk2utt_rows) == 1:
        warnings.append(f"{spk2utt_path}: only one speaker; this is probably a bad idea "
                        "(search for 'bold' in https://kaldi-asr.org/doc/data_prep.html)")

    # 3. sorted and unique.
    _check_sorted_and_uniq(utt2spk_path, utt2spk_rows, utt2spk_nl)

    # 4. utt2spk sorted on the speaker column too (`sort -k2 -C`).
    if not no_spk_sort:
        for prev, row in zip(utt2spk_rows, utt2spk_rows[1:]):
            if (row.fields[1], row.line) < (prev.fields[1], prev.line):
                raise DataDirFileError(utt2spk_path, f"not sorted by speaker: '{row.fields[1]}' after "
                                       f"'{prev.fields[1]}' (make speaker-ids prefixes of utt-ids)", row.lineno)

    # 5. spk2utt expands back to utt2spk.
    _check_sorted_and_uniq(spk2utt_path, spk2utt_rows, spk2utt_nl)
    _check_spk2utt(spk2utt_path, spk2utt_rows, utt2spk_rows)
    utts = [r.key for r in utt2spk_rows]
    speakers = [r.key for r in spk2utt_rows]

    # 6. text.
    text_path = d / "text"
    if text_path.is_file():
        _check_text(text_path, utts, non_print)
    elif not no_text:
        raise DataDirFileError(text_path, "no such file (if this is by design, use --no-text)")

    # 7. segments needs wav.scp.
    segments_path, wav_path = d / "segments", d / "wav.scp"
    if segments_path.is_file() and not wav_path.is_file():
        raise DataDirFileError(segments_path, "exists but there is no wav.scp")

    # 8. wav.scp, segments, reco2file_and_channel.
    recordings: list[str] | None = None
    if wav_path.is_file():
        recordings = _check_wav(d, utts, warnings)
    elif not no_wav:
        raise DataDirFileError(wav_path, "no such file (if this is by design, use --no-wav)")

    # 9. feats.scp.
    feats_path = d / "feats.scp"
    if feats_path.is_file():
        _check_keys(feats_path, _read_checked(feats_path), utts, "utterances of utt2spk")
    elif not no_feats:
        raise DataDirFileError(feats_path, "no such file (if this is by design, use --no-feats)")

    # 10. cmvn.scp is per speaker.
    cmvn_path = d / "cmvn.scp"
    if cmvn_path.is_file():
        _check_keys(cmvn_path, _read_checked(cmvn_path), speakers, "speakers of spk2utt")

    # 11. spk2gender, spk2warp, utt2warp.
    f = d / "spk2gender"
    if f.is_file():
        rows = _read_checked(f)
        for row in rows:
            if len(row.fields) != 2 or row.fields[1] not in ("m", "f"):
                raise DataDirFileError(f, f"expected '<speaker> m' or '<speaker> f', found '{row.line}'", row.lineno)
        _check_keys(f, rows, speakers, "speakers of spk2utt")
    for name, expected, what in (("spk2warp", speakers, "speakers of spk2utt"),
                                 ("utt2warp", utts, "utterances of utt2spk")):
        f = d / name
        if f.is_file():
            rows = _read_checked(f)
            for row in rows:
                value = _parse_float(f, row, _two_fields(f, row, "warp-factor"))
                if not 0.5 < value < 1.5:
                    raise DataDirFileError(f, f"warp factor {row.fields[1]} is not in (0.5, 1.5)", row.lineno)
            _check_keys(f, rows, expected, what)

    # 12. vad.scp, utt2lang, utt2uniq.
    for name in ("vad.scp", "utt2lang", "utt2uniq"):
        f = d / name
        if f.is_file():
            rows = _read_checked(f)
            if name == "utt2lang":
                for row in rows:
                    _two_fields(f, row, "language")
            _check_keys(f, rows, utts, "utterances of utt2spk")

    # 13. utt2dur, utt2num_frames, reco2dur.
    f = d / "utt2dur"
    if f.is_file():
        rows = _read_checked(f)
        _check_keys(f, rows, utts, "utterances of utt2spk")
        for row in rows:
            if _p_float(f, row) <= 0:
                raise DataDirFileError(f, f"duration {row.fields[1]} is not > 0", row.lineno)
    f = d / "utt2num_frames"
    if f.is_file():
        rows = _read_checked(f)
        _check_keys(f, rows, utts, "utterances of utt2spk")
        for row in rows:
            _p_int(f, row)
    f = d / "reco2dur"
    if f.is_file():
        rows = _read_checked(f)
        if recordings is not None:
            _check_keys(f, rows, recordings, "recordings of segments")
        else:
            _check_keys(f, rows, utts, "utterances of utt2spk")
        for row in rows:
            if _p_float(f, row) <= 0:
                raise DataDirFileError(f, f"duration {row.fields[1]} is not > 0", row.lineno)
    return warnings


def _check_spk2utt(path: Path, spk2utt_rows: list[_Row], utt2spk_rows: list[_Row]) -> None:
    expanded: list[tuple[str, str, int]] = []
    for row in spk2utt_rows:
        f = row.fields
        if len(f) < 2:
            raise DataDirFileError(path, f"speaker '{f[0]}' has no utterances", row.lineno)
        expanded.extend((utt, f[0], row.lineno) for utt in f[1:])
    for i in range(max(len(expanded), len(utt2spk_rows))):
        got = expanded[i] if i < len(expanded) else None
        want = utt2spk_rows[i] if i < len(utt2spk_rows) else None
        if got is None:
            assert want is not None
            raise DataDirFileError(path, f"does not match utt2spk: utt2spk line {want.lineno} "
                                         f"('{want.line.strip()}') is missing")
        if want is None:
            raise DataDirFileError(path, f"does not match utt2spk: utterance '{got[0]}' of speaker "
                                         f"'{got[1]}' is not in utt2spk", got[2])
        if (got[0], got[1]) != tuple(want.fields):
            raise DataDirFileError(path, f"does not match utt2spk: found utterance '{got[0]}' of speaker "
                                         f"'{got[1]}' where utt2spk line {want.lineno} has "
                                         f"'{want.line.strip()}'", got[2])


def _check_text(path: Path, utts: list[str], non_print: bool) -> None:
    rows, ends_in_newline = _read_rows(path)  # non-UTF-8 and CR are refused here
    for row in rows:
        # Fast path: str.isprintable() is false for every control and non-ASCII space character.
        if row.line.replace("\t", " ").isprintable():
            continue
        for ch in row.line:
            if not non_print and not ch.isprintable() and not ch.isspace():
                raise DataDirFileError(path, f"non-printable character U+{ord(ch):04X} "
                                             "(use --non-print to allow it)", row.lineno)
            # utils/validate_text.pl: only ASCII space and tab may separate words.
            if ch.isspace() and ch not in " \t":
                raise DataDirFileError(path, f"disallowed whitespace character U+{ord(ch):04X}", row.lineno)
    _check_sorted_and_uniq(path, rows, ends_in_newline)
    for row in rows:
        for word in row.fields[1:]:
            if word in ILLEGAL_TEXT_SYMBOLS:
                raise DataDirFileError(path, f"illegal symbol '{word}'", row.lineno)
    _check_keys(path, rows, utts, "utterances of utt2spk")


def _check_wav(d: Path, utts: list[str], warnings: list[str]) -> list[str] | None:
    """Step 8; returns the recording ids when there is a `segments` file."""
    wav_path = d / "wav.scp"
    wav_rows = _read_checked(wav_path)
    for row in wav_rows:
        f = row.fields
        if len(f) < 2:
            raise DataDirFileError(wav_path, "expected '<id> <extended-filename>'", row.lineno)
        if f[1].startswith("~"):
            raise DataDirFileError(wav_path, "tilde (~) is not expanded in wav.scp; use a full path", row.lineno)
    segments_path = d / "segments"
    r2fc = d / "reco2file_and_channel"
    recordings: list[str] | None = None
    if segments_path.is_file():
        seg_rows = _read_checked(segments_path)
        segments = [_parse_segment(segments_path, row) for row in seg_rows]
        _check_keys(segments_path, seg_rows, utts, "utterances of utt2spk")
        recordings = c_sorted({s.reco for s in segments})
        _check_keys(wav_path, wav_rows, recordings, "recordings of segments")
        expected, what = recordings, "recordings of segments"
    else:
        _check_keys(wav_path, wav_rows, utts, "utterances of utt2spk")
        expected, what = utts, "utterances of utt2spk"
    if r2fc.is_file():
        rows = _read_checked(r2fc)
        channel_one = False
        for row in rows:
            f = row.fields
            if len(f) == 3 and f[2] == "1":
                channel_one = True
            elif len(f) != 3 or f[2] not in ("A", "B"):
                raise DataDirFileError(r2fc, f"expected '<reco-id> <file> <A|B>', found '{row.line}'", row.lineno)
        if channel_one:
            warnings.append(f"{r2fc}: the channel should be marked as A or B, not 1")
        _check_keys(r2fc, rows, expected, what)
    return recordings


# ---------------------------------------------------------------------------------------------
# Raw tables: the file operations below filter lines and keep them byte for byte, as Kaldi's
# filter_scp.pl does, so a subset or split never reformats a value.

_Table = list[_Row]


def _read_tables(d: Path, names: Iterable[str]) -> dict[str, _Table]:
    tables = {}
    for name in dict.fromkeys(names):
        f = d / name
        if f.is_file():
            tables[name] = [row for row in _read_rows(f)[0] if row.key != ""]
    return tables


def _known_files(d: Path, extra: Iterable[str] = ()) -> list[str]:
    """The per-utt/per-spk/per-reco files present in `d`, plus utt2*/spk2* files Kaldi does not list."""
    names = ["utt2spk", "segments", *UTT_FILES, *SPK_FILES, *RECO_FILES, *extra]
    for f in sorted(d.iterdir()):
        n = f.name
        if f.is_file() and ((n.startswith("utt2") and n != "utt2spk") or (n.startswith("spk2") and n != "spk2utt")):
            names.append(n)
    return [n for n in dict.fromkeys(names) if (d / n).is_file()]


def _index_of(name: str) -> str:
    if name in SPK_FILES or (name.startswith("spk2") and name != "spk2utt"):
        return "spk"
    if name in RECO_FILES:
        return "reco"
    return "utt"


def _utt2spk_of(path: Path, rows: _Table) -> dict[str, str]:
    out = {}
    for row in rows:
        out[row.key] = _two_fields(path, row, "speaker-id")
    return out


def _spk2utt_lines(utt2spk_rows: _Table) -> list[str]:
    spk2utt: dict[str, list[str]] = {}
    for row in utt2spk_rows:
        f = row.fields
        spk2utt.setdefault(f[1], []).append(f[0])
    return [f"{spk} {' '.join(spk2utt[spk])}" for spk in c_sorted(spk2utt)]


def _write_parts(tables: dict[str, _Table], groups: Sequence[_Table], dsts: Sequence[Path]) -> None:
    """Write into each folder `dsts[i]` the data dir made of `groups[i]` (lines of utt2spk): every
    line of `tables` that belongs to its utterances, their speakers and their recordings.

    One pass over each table, whatever the number of parts.
    """
    utt_part: dict[str, int] = {}
    spk_parts: dict[str, set[int]] = {}
    for i, group in enumerate(groups):
        for row in group:
            utt_part[row.key] = i
            spk_parts.setdefault(row.fields[1], set()).add(i)
    has_segments = "segments" in tables
    reco_parts: dict[str, set[int]] = {}
    for row in tables.get("segments", []):
        f = row.fields
        if row.key in utt_part and len(f) > 1:
            reco_parts.setdefault(f[1], set()).add(utt_part[row.key])
    for group, dst in zip(groups, dsts):
        _write_lines(dst / "utt2spk", [r.line for r in group])
        _write_lines(dst / "spk2utt", _spk2utt_lines(group))
    for name, rows in tables.items():
        if name == "utt2spk":
            continue
        index = _index_of(name)
        by_key: Mapping[str, set[int]] | None = None
        if index == "spk":
            by_key = spk_parts
        elif index == "reco" and has_segments:
            by_key = reco_parts
        buckets: list[list[str]] = [[] for _ in groups]
        for row in rows:
            if by_key is None:
                i = utt_part.get(row.key)
                if i is not None:
                    buckets[i].append(row.line)
            else:
                for i in by_key.get(row.key, ()):
                    buckets[i].append(row.line)
        for bucket, dst in zip(buckets, dsts):
            _write_lines(dst / name, bucket)


def _durations(d: Path, tables: dict[str, _Table]) -> tuple[dict[str, float], str]:
    """Seconds per utterance from utt2dur, else segments (+ reco2dur for end = -1); and the source name."""
    if "utt2dur" in tables:
        f = d / "utt2dur"
        return {r.key: _p_float(f, r) for r in tables["utt2dur"]}, "utt2dur"
    if "segments" in tables:
        f = d / "segments"
        reco2dur = {r.key: _p_float(d / "reco2dur", r) for r in tables.get("reco2dur", [])}
        out = {}
        for row in tables["segments"]:
            seg = _parse_segment(f, row)
            if seg.end != -1:
                out[row.key] = seg.end - seg.start
            elif seg.reco in reco2dur:
                out[row.key] = reco2dur[seg.reco] - seg.start
            else:
                raise DataDirFileError(f, f"end time -1 and recording '{seg.reco}' is not in reco2dur; "
                                          "durations need utt2dur", row.lineno)
        return out, "segments"
    raise DataDirError(f"{d}: no utt2dur or segments to take durations from")


# ---------------------------------------------------------------------------------------------
# Writing whole folders atomically


@contextlib.contextmanager
def _staged_dir(dst: Path):
    """Yield an empty temporary folder beside `dst`; on success it replaces `dst` in one rename."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and not dst.is_dir():
        raise DataDirError(f"{dst}: exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 folders
        replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_not_inside(dst: Path, srcs: Iterable[Path]) -> None:
    rdst = dst.resolve()
    for src in srcs:
        rsrc = src.resolve()
        if rsrc == rdst or rdst in rsrc.parents:
            raise DataDirError(f"{dst}: the destination would replace source {src}")


def _require_utt2spk(d: Path) -> None:
    if not d.is_dir():
        raise DataDirError(f"{d}: no such data directory")
    if not (d / "utt2spk").is_file():
        raise DataDirFileError(d / "utt2spk", "no such file")


# ---------------------------------------------------------------------------------------------
# fix_data_dir

_FIX_FILES = ("utt2spk", "spk2utt", "feats.scp", "text", "segments", "wav.scp", "cmvn.scp", "vad.scp",
              "reco2file_and_channel", "spk2gender", "spk2warp", "utt2lang", "utt2uniq", "utt2dur",
              "utt2num_frames", "utt2warp", "reco2dur")


def fix_data_dir(path: str | os.PathLike, *, utt_extra_files: Sequence[str] = (),
                 spk_extra_files: Sequence[str] = ()) -> tuple[int, int]:
    """Sort a data dir and keep only utterances present everywhere, like Kaldi's `fix_data_dir.sh`.

    Every file present is first copied to `<dir>/.backup/`. Files are re-sorted (`sort -k1,1 -u`:
    the first line of a duplicated key wins). Utterances are kept when they are in `feats.scp`,
    `text`, `segments`, `utt2lang` and (without segments) `wav.scp`, and have a positive duration in
    `utt2dur` and a positive integer in `utt2num_frames` where those exist. Recordings and speakers are
    filtered in Kaldi's order (recordings, speakers, utterances, speakers, recordings; speakers lacking
    `cmvn.scp` or `spk2gender` entries are dropped), and `spk2utt` is regenerated. Only files whose
    content changes are rewritten (atomically).

    Args:
        path: the data directory.
        utt_extra_files, spk_extra_files: more files indexed by utterance / speaker to filter.

    Returns:
        (utterances kept, utterances in the original utt2spk).

    Raises:
        DataDirError: no folder or utt2spk, segments without wav.scp, utt2spk not sortable by
            speaker, or no utterance would remain (nothing is written then).
    """
    d = Path(path)
    _require_utt2spk(d)
    names = [n for n in dict.fromkeys([*_FIX_FILES, *utt_extra_files, *spk_extra_files]) if (d / n).is_file()]
    original = {n: (d / n).read_bytes() for n in names}
    backup = d / ".backup"
    backup.mkdir(exist_ok=True)
    for n, data in original.items():
        with atomic_write(backup / n, "wb") as f:
            f.write(data)

    tables: dict[str, _Table] = {}
    for n in names:
        rows = [r for r in _read_rows(d / n)[0] if r.key != ""]
        seen: set[str] = set()
        unique = []
        for row in sorted(rows, key=lambda r: r.key):  # stable: the first of equal keys wins
            if row.key not in seen:
                seen.add(row.key)
                unique.append(row)
        if unique != rows:
            log.info("fix_data_dir: %s is not in sorted order or not unique, sorting it", d / n)
        tables[n] = unique
    utt2spk_path = d / "utt2spk"
    _utt2spk_of(utt2spk_path, tables["utt2spk"])  # every line must be `utt spk`
    num_before = len(tables["utt2spk"])

    def keys(name: str) -> set[str]:
        return {r.key for r in tables[name]}

    def filter_table(name: str, keep: set[str], column: int = 0) -> None:
        if name in tables:
            before = len(tables[name])
            if column == 0:
                tables[name] = [r for r in tables[name] if r.key in keep]
            else:
                tables[name] = [r for r in tables[name] if _field(r, column) in keep]
            if len(tables[name]) != before:
                log.info("fix_data_dir: filtered %s from %d to %d lines", d / name, before, len(tables[name]))

    def filter_recordings() -> None:
        if "segments" not in tables:
            return
        if "wav.scp" not in tables:
            raise DataDirFileError(d / "segments", "exists but there is no wav.scp")
        recordings = {r.fields[1] for r in tables["segments"] if len(r.fields) > 1} & keys("wav.scp")
        if not recordings:
            raise DataDirFileError(d / "segments", "no recording of segments is in wav.scp")
        filter_table("segments", recordings, column=1)
        for n in RECO_FILES:
            filter_table(n, recordings)

    def filter_speakers() -> None:
        speakers = {r.fields[1] for r in tables["utt2spk"]}
        for n in ("cmvn.scp", "spk2gender"):
            if n in tables:
                speakers &= keys(n)
        filter_table("utt2spk", speakers, column=1)
        for n in (*SPK_FILES, *spk_extra_files):
            filter_table(n, speakers)

    def filter_utts() -> int:
        rows = tables["utt2spk"]
        spks = [_field(r, 1) for r in rows]
        for i in range(1, len(rows)):
            if spks[i] < spks[i - 1]:
                raise DataDirFileError(utt2spk_path, f"not sorted by speaker: '{spks[i]}' after "
                                       f"'{spks[i - 1]}'; fix_data_dir cannot fix this (make "
                                       "speaker-ids prefixes of utt-ids)", rows[i].lineno)
        utts = keys("utt2spk")
        maybe_wav = () if "segments" in tables else ("wav.scp",)
        for n in ("feats.scp", "text", "segments", "utt2lang", *maybe_wav):
            if n in tables:
                utts &= keys(n)
        if "utt2dur" in tables:
            utts &= {r.key for r in tables["utt2dur"] if len(r.fields) == 2 and _float_or_zero(r.fields[1]) > 0}
        if "utt2num_frames" in tables:
            utts &= {r.key for r in tables["utt2num_frames"] if len(r.fields) == 2 and _positive_int(r.fields[1])}
        if not utts:
            raise DataDirError(f"{d}: fix_data_dir: no utterances remained: not proceeding further")
        log.info("fix_data_dir: kept %d utterances out of %d", len(utts), num_before)
        maybe_reco = () if "segments" in tables else RECO_FILES
        for n in ("utt2spk", *UTT_FILES, "segments", *maybe_reco, *utt_extra_files):
            filter_table(n, utts)
        return len(utts)

    filter_recordings()
    filter_speakers()
    kept = filter_utts()
    filter_speakers()
    filter_recordings()
    new_text = {n: "".join(r.line + "\n" for r in rows) for n, rows in tables.items()}
    new_text["spk2utt"] = "".join(line + "\n" for line in _spk2utt_lines(tables["utt2spk"]))
    for n, text in new_text.items():
        if original.get(n) != text.encode("utf-8"):
            with atomic_write(d / n) as f:
                f.write(text)
    log.info("fix_data_dir: old files are kept in %s", backup)
    return kept, num_before


def _field(row: _Row, column: int) -> str | None:
    f = row.line.split(None, column + 1)
    return f[column] if len(f) > column else None


def _float_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


# ---------------------------------------------------------------------------------------------
# subset_data_dir


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *, first: int | None = None,
                    last: int | None = None, shortest: int | None = None, per_spk: int | None = None,
                    speakers: int | None = None, spk_list: str | os.PathLike | None = None,
                    utt_list: str | os.PathLike | None = None, hours: float | None = None,
                    random_utts: int | None = None, seed: int = 0) -> Path:
    """Copy a subset of data dir `src` to `dst`, like Kaldi's `utils/subset_data_dir.sh`.

    Exactly one selector:
        first / last: the first / last N lines of utt2spk.
        shortest: the N shortest utterances (by utt2num_frames, else utt2dur, else segments).
        per_spk: N utterances per speaker, evenly spaced through the speaker's list (Kaldi's rule).
        speakers: whole speakers in a seeded random order until at least N utterances (Kaldi's
            `--speakers N`, where N counts utterances).
        spk_list / utt_list: the speakers / utterances listed (first column) in a file.
        hours: a seeded random subset of about `hours` hours: utterances in shuffled order until the
            total reaches it (durations from utt2dur, else segments).
        random_utts: N utterances chosen at random (seeded), Kaldi's default mode.

    Every per-utterance, per-speaker and per-recording file is filtered; lines are copied
    unchanged. `dst` is built in a temporary folder and renamed into place, replacing an existing
    `dst` whole.

    Returns:
        `dst` as a Path.

    Raises:
        ConfigError: zero or several selectors, or N < 1.
        DataDirError: N larger than the source, an empty selection, or a bad source
            (DataDirFileError names the file and line).
    """
    src, dst = Path(src), Path(dst)
    selectors = {"first": first, "last": last, "shortest": shortest, "per_spk": per_spk, "speakers": speakers,
                 "spk_list": spk_list, "utt_list": utt_list, "hours": hours, "random_utts": random_utts}
    chosen = [k for k, v in selectors.items() if v is not None]
    if len(chosen) != 1:
        raise ConfigError(f"subset_data_dir: give exactly one selector of {', '.join(selectors)} "
                           f"(got {', '.join(chosen) or 'none'})")
    _require_utt2spk(src)
    _check_not_inside(dst, [src])
    tables = _read_tables(src, _known_files(src))
    rows = tables["utt2spk"]
    utt2spk = _utt2spk_of(src / "utt2spk", rows)
    rng = random.Random(seed)
    if hours is not None and not hours > 0:
        raise ConfigError(f"subset_data_dir: hours must be positive, got {hours!r}")
    for name in ("first", "last", "shortest", "per_spk", "speakers", "random_utts"):
        n = selectors[name]
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ConfigError(f"subset_data_dir: {name} must be a positive integer, got {n!r}")
        if n is not None and name != "per_spk" and n > len(rows):
            raise DataDirError(f"subset_data_dir: {src} has {len(rows)} utterances, cannot select {name} {n}")

    keep: set[str]
    if first is not None:
        keep = {r.key for r in rows[:first]}
    elif last is not None:
        keep = {r.key for r in rows[-last:]}
    elif shortest is not None:
        lengths = _lengths(src, tables)
        keep = set(sorted(utt2spk, key=lambda u: (lengths[u], u))[:shortest])
    elif per_spk is not None:
        keep = set()
        for spk_utts in _spk2utt(utt2spk).values():
            # subset_data_dir.sh --per-spk: every `skip`-th utterance, skip = max(1, floor(#utts / N)).
            skip = max(1, len(spk_utts) // per_spk)
            keep.update(spk_utts[0:per_spk * skip:skip])
    elif speakers is not None:
        spk2utt = _spk2utt(utt2spk)
        order = list(spk2utt)
        rng.shuffle(order)
        keep = set()
        for spk in order:
            if len(keep) >= speakers:
                break
            keep.update(spk2utt[spk])
    elif spk_list is not None:
        wanted = _first_column(Path(spk_list))
        keep = {u for u, s in utt2spk.items() if s in wanted}
    elif utt_list is not None:
        wanted = _first_column(Path(utt_list))
        unknown = len(wanted - utt2spk.keys())
        if unknown:
            log.warning("subset_data_dir: %d utterances of %s are not in %s", unknown, utt_list, src)
        keep = wanted & utt2spk.keys()
    elif hours is not None:
        durations, source = _durations(src, tables)
        total = sum(durations.get(u, 0.0) for u in utt2spk)
        target = hours * 3600.0
        if target > total:
            raise DataDirError(f"subset_data_dir: cannot select {hours} hours from {src}, which has "
                               f"{total / 3600.0:.3f} hours (from {source})")
        order = c_sorted(utt2spk)
        rng.shuffle(order)
        keep, acc = set(), 0.0
        for utt in order:
            if acc >= target:
                break
            if utt not in durations:
                raise DataDirFileError(src / source, f"no duration for utterance '{utt}'")
            keep.add(utt)
            acc += durations[utt]
        log.info("subset_data_dir: selected %d utterances, %.3f hours", len(keep), acc / 3600.0)
    else:
        order = c_sorted(utt2spk)
        rng.shuffle(order)
        keep = set(order[:random_utts])
    if not keep:
        raise DataDirError(f"subset_data_dir: the selection from {src} is empty")
    with _staged_dir(dst) as tmp:
        _write_parts(tables, [[r for r in rows if r.key in keep]], [tmp])
    log.info("subset_data_dir: %s: %d of %d utterances into %s", src, len(keep), len(rows), dst)
    return dst


def _lengths(d: Path, tables: dict[str, _Table]) -> dict[str, float]:
    if "utt2num_frames" in tables:
        f = d / "utt2num_frames"
        return {r.key: float(_p_int(f, r)) for r in tables["utt2num_frames"]}
    try:
        return _durations(d, tables)[0]
    except DataDirError:
        raise DataDirError(f"{d}: --shortest needs utt2num_frames, utt2dur or segments") from None


def _first_column(path: Path) -> set[str]:
    rows, _ = _read_rows(path)
    return {r.key for r in rows if r.key}


# ---------------------------------------------------------------------------------------------
# split_data_dir

_SPLIT_FILES = ("utt2spk", "spk2utt", "segments", *UTT_FILES, *SPK_FILES, *RECO_FILES)


def split_for_jobs(path: str | os.PathLike, nj: int) -> list[Path]:
    """The data dirs of `nj` parallel jobs of a stage with no per-speaker state (decoding, dumping
    posteriors): the dir itself for one job, else `split_data_dir` per speaker, or per utterance when
    there are fewer speakers than jobs (where split_data.sh would refuse). CMVN stays per speaker:
    every part keeps utt2spk and the speakers' cmvn.scp lines.
    """
    d = Path(path)
    if nj == 1:
        return [d]
    _require_utt2spk(d)
    num_speakers = len(set(read_table(d / "utt2spk", num_fields=2).values()))
    return split_data_dir(d, nj, per_utt=num_speakers < nj)


def split_data_dir(path: str | os.PathLike, n: int, *, per_utt: bool = False) -> list[Path]:
    """Split a data dir into `n` parts, like Kaldi's `utils/split_data.sh`.

    Writes `<path>/split{n}/{1..n}` (per speaker: each speaker in one part, speakers assigned as
    `split_scp.pl --utt2spk` does, balancing utterance counts) or `<path>/split{n}utt/{1..n}`
    (`per_utt`: consecutive chunks of utt2spk, the first `#utts mod n` one line longer). Each part
    gets utt2spk, spk2utt and every per-utt, per-speaker and per-recording file of the source.

    It is idempotent: when `split{n}/1` exists and no source file is newer than its copy there,
    nothing is written. The split folder is built aside and renamed into place.

    Returns:
        the `n` part folders, in order.

    Raises:
        DataDirError: n < 1, more parts than speakers (per speaker) or utterances (per utt).
    """
    d = Path(path)
    _require_utt2spk(d)
    if not isinstance(n, int) or n < 1:
        raise DataDirError(f"split_data_dir: invalid number of parts {n!r}")
    root = d / f"split{n}{'utt' if per_utt else ''}"
    parts = [root / str(i) for i in range(1, n + 1)]
    names = _known_files(d)
    if "spk2utt" not in names and (d / "spk2utt").is_file():
        names.append("spk2utt")
    if _split_up_to_date(d, parts[0], names):
        log.info("split_data_dir: %s is up to date", root)
        return parts
    tables = _read_tables(d, [x for x in names if x != "spk2utt"])
    rows = _check_utt2spk_rows(d, tables["utt2spk"])
    for name in ("feats.scp", "text"):
        if name in tables and len(tables[name]) != len(rows):
            log.warning("split_data_dir: #lines in (utt2spk, %s) is (%d, %d); fix_data_dir %s would fix this",
                        name, len(rows), len(tables[name]), d)
    groups = _split_per_utt(d, rows, n) if per_utt else _split_per_speaker(d, rows, n)
    with _staged_dir(root) as tmp:
        part_dirs = [tmp / str(i) for i in range(1, n + 1)]
        for p in part_dirs:
            p.mkdir()
        _write_parts(tables, groups, part_dirs)
    log.info("split_data_dir: %s into %d parts (%s)", d, n, "per utterance" if per_utt else "per speaker")
    return parts


def _split_up_to_date(d: Path, first_part: Path, names: list[str]) -> bool:
    if not first_part.is_dir():
        return False
    for name in names:
        copy = first_part / name
        if not copy.is_file() or copy.stat().st_mtime_ns < (d / name).stat().st_mtime_ns:
            return False
    return True


def _split_per_utt(d: Path, rows: _Table, n: int) -> list[_Table]:
    if n > len(rows):
        raise DataDirError(f"split_data_dir: cannot split {len(rows)} utterances of {d} into {n} parts")
    size, remainder = divmod(len(rows), n)
    groups, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < remainder else 0)
        groups.append(rows[start:end])
        start = end
    return groups


def _split_per_speaker(d: Path, rows: _Table, n: int) -> list[_Table]:
    """split_scp.pl --utt2spk: contiguous speaker ranges, then edge speakers moved while that evens
    out the utterance counts of neighbouring parts."""
    spk_rows: dict[str, list[_Row]] = {}
    for row in rows:
        spk_rows.setdefault(row.fields[1], []).append(row)
    spks = list(spk_rows)
    if len(spks) < n:
        raise DataDirError(f"split_data_dir: refusing to split {d}: number of speakers {len(spks)} "
                           f"is less than the number of parts {n} (use per_utt / --per-utt)")
    count = {s: len(r) for s, r in spk_rows.items()}
    groups: list[list[str]] = [[] for _ in range(n)]
    sizes = [0] * n
    for i, spk in enumerate(spks):
        j = i * n // len(spks)
        groups[j].append(spk)
        sizes[j] += count[spk]
    changed = True
    while changed:
        changed = False
        for j in range(n):
            if j < n - 1 and groups[j]:
                c = count[groups[j][-1]]
                if abs((sizes[j + 1] + c) - (sizes[j] - c)) < abs(sizes[j + 1] - sizes[j]):
                    groups[j + 1].insert(0, groups[j].pop())
                    sizes[j] -= c
                    sizes[j + 1] += c
                    changed = True
            if j > 0 and groups[j]:
                c = count[groups[j][0]]
                if abs((sizes[j] - c) - (sizes[j - 1] + c)) < abs(sizes[j] - sizes[j - 1]):
                    groups[j - 1].append(groups[j].pop(0))
                    sizes[j] -= c
                    sizes[j - 1] += c
                    changed = True
    if any(not g for g in groups):
        raise DataDirError(f"split_data_dir: an empty part when splitting {d} into {n} (too few speakers?)")
    return [[row for spk in g for row in spk_rows[spk]] for g in groups]


def _check_utt2spk_rows(d: Path, rows: _Table) -> _Table:
    path = d / "utt2spk"
    for row in rows:
        _two_fields(path, row, "speaker-id")
    return rows


# ---------------------------------------------------------------------------------------------
# combine_data_dirs

_COMBINE_FILES = ("utt2spk", "utt2lang", "utt2dur", "utt2num_frames", "reco2dur", "feats.scp", "text",
                  "cmvn.scp", "vad.scp", "reco2file_and_channel", "wav.scp", "spk2gender", "spk2warp", "utt2warp")


def combine_data_dirs(dst: str | os.PathLike, srcs: Sequence[str | os.PathLike], *,
                      extra_files: Sequence[str] = ()) -> Path:
    """Concatenate data dirs into `dst`, like Kaldi's `utils/combine_data.sh`.

    A file is combined when every source has it; a file only some sources have is dropped with a
    warning (Kaldi's behaviour). If any source has `segments`, sources without get one segment per
    utterance (`<utt> <utt> 0 <utt2dur or -1>`); likewise `utt2uniq` (`<utt> <utt>`). Files are
    C-sorted, spk2utt is regenerated and the result is validated before it is renamed into place
    (with `non_print`: combining does not change transcripts, so their characters are the sources'
    business).

    Returns:
        `dst` as a Path.

    Raises:
        DataDirError: no sources, a source without utt2spk, an utterance id in two sources (naming
            both), a speaker/recording with different lines in two sources, or the combined dir
            failing validation (the message names `dst`; nothing is written then).
    """
    dst = Path(dst)
    src_dirs = [Path(s) for s in srcs]
    if not src_dirs:
        raise DataDirError("combine_data_dirs: no source directories")
    for s in src_dirs:
        _require_utt2spk(s)
    _check_not_inside(dst, src_dirs)
    names = list(dict.fromkeys([*_COMBINE_FILES, "segments", "utt2uniq", *extra_files]))
    per_src = [_read_tables(s, names) for s in src_dirs]

    # Utterance ids must be unique across sources.
    owner: dict[str, Path] = {}
    for s, tables in zip(src_dirs, per_src):
        _check_utt2spk_rows(s, tables["utt2spk"])
        for row in tables["utt2spk"]:
            if row.key in owner:
                raise DataDirError(f"combine_data_dirs: utterance '{row.key}' is in both {owner[row.key]} "
                                   f"and {s}")
            owner[row.key] = s

    has_segments = any("segments" in t for t in per_src)
    if has_segments:
        for s, tables in zip(src_dirs, per_src):
            if "segments" not in tables:
                log.info("combine_data_dirs: making segments for %s (one per utterance)", s)
                durs = {r.key: r.fields[1] for r in tables.get("utt2dur", []) if len(r.fields) == 2}
                tables["segments"] = [_row(0, f"{r.key} {r.key} 0 {durs.get(r.key, '-1')}") for r in tables["utt2spk"]]
                # wav.scp, reco2dur, reco2file_and_channel were indexed by utterance = recording id.
    if any("utt2uniq" in t for t in per_src):
        for tables in per_src:
            if "utt2uniq" not in tables:
                tables["utt2uniq"] = [_row(0, f"{r.key} {r.key}") for r in tables["utt2spk"]]

    combined: dict[str, _Table] = {}
    for name in names:
        have = [name in t for t in per_src]
        if all(have):
            combined[name] = _merge(name, src_dirs, [t[name] for t in per_src])
        elif any(have):
            missing = [str(s) for s, h in zip(src_dirs, have) if not h]
            log.warning("combine_data_dirs: not combining %s: it is missing from %s", name, ", ".join(missing))

    with _staged_dir(dst) as tmp:
        for name, rows in combined.items():
            _write_lines(tmp / name, [r.line for r in rows])
        _write_lines(tmp / "spk2utt", _spk2utt_lines(combined["utt2spk"]))
        try:
            warnings = validate_data_dir(tmp, no_feats="feats.scp" not in combined, no_text="text" not in combined,
                                         no_wav="wav.scp" not in combined, non_print=True)
        except DataDirError as e:
            raise DataDirError(str(e).replace(str(tmp), str(dst))) from None
        for w in warnings:
            log.warning("%s", w.replace(str(tmp), str(dst)))
    log.info("combine_data_dirs: %d utterances from %d dirs into %s", len(owner), len(src_dirs), dst)
    return dst


def _merge(name: str, src_dirs: list[Path], tables: list[_Table]) -> _Table:
    """Concatenate and C-sort; keys shared by sources (speakers, recordings) must carry identical lines."""
    seen: dict[str, tuple[str, Path]] = {}
    out: _Table = []
    for s, rows in zip(src_dirs, tables):
        for row in rows:
            if row.key in seen:
                line, other = seen[row.key]
                if line.split() != row.fields:
                    raise DataDirError(f"combine_data_dirs: '{row.key}' has different lines in {other}/{name} "
                                       f"and {s}/{name}")
                continue
            seen[row.key] = (row.line, s)
            out.append(row)
    out.sort(key=lambda r: r.key)
    return out


# ---------------------------------------------------------------------------------------------
# data_dir_info


def data_dir_info(path: str | os.PathLike) -> dict:
    """Summarise a data dir.

    Returns:
        a JSON-serialisable dict: `path`, `utterances`, `speakers`, `recordings` (with segments, else
        None), `seconds` and `hours` (None without utt2dur/segments), `duration_source`
        ("utt2dur", "segments" or None), `languages` (`{lang: {"utterances": n, "seconds": s,
        "hours": h}}`, empty without utt2lang), `has_text`, `has_feats`, `has_cmvn`, `feat_dim`
        (read from the first feats.scp entry; None without features or if it cannot be read).

    Raises:
        DataDirError/DataDirFileError: no folder, no utt2spk, or a malformed file.
    """
    d = Path(path)
    dd = load_data_dir(d)
    durations: dict[str, float] | None = None
    source = None
    if dd.utt2dur is not None:
        durations, source = dd.utt2dur, "utt2dur"
    elif dd.segments is not None:
        try:
            durations, source = {u: dd.utt_duration(u) for u in dd.utt2spk}, "segments"
        except DataDirError as e:
            log.warning("data_dir_info: %s", e)
    seconds = sum(durations.get(u, 0.0) for u in dd.utt2spk) if durations is not None else None
    languages: dict[str, dict] = {}
    if dd.utt2lang is not None:
        for utt in dd.utts:
            lang = dd.utt2lang.get(utt)
            if lang is None:
                continue
            entry = languages.setdefault(lang, {"utterances": 0, "seconds": 0.0 if durations is not None else None})
            entry["utterances"] += 1
            if durations is not None:
                entry["seconds"] += durations.get(utt, 0.0)
        languages = {k: languages[k] for k in c_sorted(languages)}
        for entry in languages.values():
            entry["hours"] = entry["seconds"] / 3600.0 if entry["seconds"] is not None else None
    return {
        "path": str(d),
        "utterances": len(dd.utt2spk),
        "speakers": len(dd.speakers),
        "recordings": len({s.reco for s in dd.segments.values()}) if dd.segments is not None else None,
        "seconds": seconds,
        "hours": seconds / 3600.0 if seconds is not None else None,
        "duration_source": source,
        "languages": languages,
        "has_text": dd.text is not None,
        "has_feats": dd.feats_scp is not None,
        "has_cmvn": dd.cmvn_scp is not None,
        "feat_dim": _feat_dim(d, dd.feats_scp),
    }


def _feat_dim(d: Path, feats_scp: dict[str, str] | None) -> int | None:
    if not feats_scp:
        return None
    import kaldiio

    first = next(iter(feats_scp.items()))
    try:
        mat = kaldiio.load_mat(first[1])
    except Exception as e:  # informational only: a summary must not fail on an unreadable ark
        log.warning("data_dir_info: cannot read features of '%s' from %s: %s", first[0], d / "feats.scp", e)
        return None
    return int(mat.shape[1]) if getattr(mat, "ndim", 0) == 2 else None


__all__ = [
    "DataDir", "DataDirFileError", "Segment", "load_data_dir", "validate_data_dir", "fix_data_dir",
    "subset_data_dir", "split_data_dir", "combine_data_dirs", "data_dir_info",
    "UTT_FILES", "SPK_FILES", "RECO_FILES", "ILLEGAL_TEXT_SYMBOLS",
]
