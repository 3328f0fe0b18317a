"""validate_data_dir: every rule of Kaldi's `utils/validate_data_dir.sh`, in its order.

The speaker maps, `text` and the recordings (`wav.scp`, `segments`, `reco2file_and_channel`) have
steps of their own; every other file is checked by one loop over the registry (`files.FILES`): sorted
and unique, its own line rules, and its keys equal to the utterances, speakers or recordings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir.files import (
    BY_NAME,
    FILES,
    ILLEGAL_TEXT_SYMBOLS,
    DataDirFileError,
    KaldiFile,
    Row,
    check_keys,
    check_sorted_and_uniq,
    parse_segment,
    read_checked,
    read_rows,
)
from asrkit.kaldi.textio import c_sorted

# Checked by steps of their own, before the registry loop.
_OWN_STEPS = ("text", "segments", "wav.scp", "reco2file_and_channel")


@dataclass
class _Ids:
    """What the other files are keyed by: utterances, speakers, and the recordings of `segments`."""

    utts: list[str]
    speakers: list[str]
    recordings: list[str] | None = None

    def expected(self, kind: str) -> tuple[list[str], str]:
        if kind == "spk":
            return self.speakers, "speakers of spk2utt"
        if kind == "reco" and self.recordings is not None:
            return self.recordings, "recordings of segments"
        return self.utts, "utterances of utt2spk"


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
    ids, warnings = _check_speaker_maps(d, no_spk_sort)                                 # steps 1-5
    _require(d / "text", no_text, "--no-text")                                           # step 6
    if (d / "text").is_file():
        _check_text(d / "text", ids.utts, non_print)
    if (d / "segments").is_file() and not (d / "wav.scp").is_file():                     # step 7
        raise DataDirFileError(d / "segments", "exists but there is no wav.scp")
    _require(d / "wav.scp", no_wav, "--no-wav")                                          # step 8
    if (d / "wav.scp").is_file():
        warnings += _check_recordings(d, ids)
    _require(d / "feats.scp", no_feats, "--no-feats")                                    # steps 9-13
    for spec in FILES:
        f = d / spec.name
        if spec.name not in _OWN_STEPS and f.is_file():
            warnings += _check_file(f, spec, ids)
    return warnings


def _require(f: Path, optional: bool, option: str) -> None:
    if not optional and not f.is_file():
        raise DataDirFileError(f, f"no such file (if this is by design, use {option})")


def _check_file(f: Path, spec: KaldiFile, ids: _Ids) -> list[str]:
    """Sorted and unique, then the file's line rules and its keys, in validate_data_dir.sh's order for it."""
    rows = read_checked(f)
    expected, what = ids.expected(spec.key)
    warnings: list[str] = []
    if spec.keys_first:
        check_keys(f, rows, expected, what)
    if spec.check_rows is not None:
        warnings = spec.check_rows(f, rows)
    if not spec.keys_first:
        check_keys(f, rows, expected, what)
    return warnings


def _check_speaker_maps(d: Path, no_spk_sort: bool) -> tuple[_Ids, list[str]]:
    """Steps 1-5: utt2spk and spk2utt exist, utt2spk has two fields a line, both are sorted and
    unique, utt2spk is sorted by speaker too (`sort -k2 -C`), and spk2utt expands back to utt2spk.
    Returns the utterance and speaker ids, and a warning if there is only one speaker."""
    warnings = []
    for name in ("spk2utt", "utt2spk"):
        f = d / name
        if not f.is_file():
            raise DataDirFileError(f, "no such file")
        if f.stat().st_size == 0:
            raise DataDirFileError(f, "empty file")
    utt2spk_path = d / "utt2spk"
    utt2spk_rows, utt2spk_nl = read_rows(utt2spk_path)
    for row in utt2spk_rows:
        if len(row.fields) != 2:
            raise DataDirFileError(utt2spk_path, f"expected 2 fields (utt-id speaker-id), found {len(row.fields)}",
                                   row.lineno)
    spk2utt_path = d / "spk2utt"
    spk2utt_rows, spk2utt_nl = read_rows(spk2utt_path)
    if len(spk2utt_rows) == 1:
        warnings.append(f"{spk2utt_path}: only one speaker; this is probably a bad idea "
                        "(search for 'bold' in https://kaldi-asr.org/doc/data_prep.html)")
    check_sorted_and_uniq(utt2spk_path, utt2spk_rows, utt2spk_nl)
    if not no_spk_sort:
        for prev, row in zip(utt2spk_rows, utt2spk_rows[1:]):
            if (row.fields[1], row.line) < (prev.fields[1], prev.line):
                raise DataDirFileError(utt2spk_path, f"not sorted by speaker: '{row.fields[1]}' after "
                                       f"'{prev.fields[1]}' (make speaker-ids prefixes of utt-ids)", row.lineno)
    check_sorted_and_uniq(spk2utt_path, spk2utt_rows, spk2utt_nl)
    _check_spk2utt(spk2utt_path, spk2utt_rows, utt2spk_rows)
    return _Ids(utts=[r.key for r in utt2spk_rows], speakers=[r.key for r in spk2utt_rows]), warnings


def _check_spk2utt(path: Path, spk2utt_rows: list[Row], utt2spk_rows: list[Row]) -> None:
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
    """Step 6 (with utils/validate_text.pl's character rules)."""
    rows, ends_in_newline = read_rows(path)  # non-UTF-8 and CR are refused here
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
    check_sorted_and_uniq(path, rows, ends_in_newline)
    for row in rows:
        for word in row.fields[1:]:
            if word in ILLEGAL_TEXT_SYMBOLS:
                raise DataDirFileError(path, f"illegal symbol '{word}'", row.lineno)
    check_keys(path, rows, utts, "utterances of utt2spk")


def _check_recordings(d: Path, ids: _Ids) -> list[str]:
    """Step 8: wav.scp, segments and reco2file_and_channel; sets `ids.recordings` when there are
    segments. Returns reco2file_and_channel's warnings."""
    wav_path = d / "wav.scp"
    wav_rows = read_checked(wav_path)
    BY_NAME["wav.scp"].check_rows(wav_path, wav_rows)
    segments_path = d / "segments"
    if segments_path.is_file():
        seg_rows = read_checked(segments_path)
        segments = [parse_segment(segments_path, row) for row in seg_rows]
        check_keys(segments_path, seg_rows, ids.utts, "utterances of utt2spk")
        ids.recordings = c_sorted({s.reco for s in segments})
    check_keys(wav_path, wav_rows, *ids.expected("reco"))
    r2fc = d / "reco2file_and_channel"
    return _check_file(r2fc, BY_NAME["reco2file_and_channel"], ids) if r2fc.is_file() else []
