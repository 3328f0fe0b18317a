"""fix_data_dir: sort a data dir and keep only the utterances every file has (Kaldi's `utils/fix_data_dir.sh`).

Which files limit the utterances and speakers, and which are filtered by what, comes from the
registry (`files.FILES`: `restricts`, `usable` and the key kind of each file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.fileio import atomic_write
from asrkit.kaldi.datadir.files import (
    BY_NAME,
    FILES,
    DataDirFileError,
    Row,
    read_rows,
    require_utt2spk,
    utt2spk_of,
    utt2spk_to_spk2utt,
)
from asrkit.logutil import get_logger

log = get_logger("kaldi.datadir")


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
    require_utt2spk(d)
    names = [n for n in dict.fromkeys(["utt2spk", "spk2utt", *BY_NAME, *utt_extra_files, *spk_extra_files])
             if (d / n).is_file()]
    original = {n: (d / n).read_bytes() for n in names}
    backup = d / ".backup"
    backup.mkdir(exist_ok=True)
    for n, data in original.items():
        with atomic_write(backup / n, "wb") as f:
            f.write(data)

    fixer = _Fixer(d, {n: _sorted_unique(d / n) for n in names}, utt_extra_files, spk_extra_files)
    fixer.filter_recordings()
    fixer.filter_speakers()
    kept = fixer.filter_utts()
    fixer.filter_speakers()
    fixer.filter_recordings()

    new_text = {n: "".join(r.line + "\n" for r in rows) for n, rows in fixer.tables.items()}
    spk2utt = utt2spk_to_spk2utt((r.key, r.fields[1]) for r in fixer.tables["utt2spk"])
    new_text["spk2utt"] = "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in spk2utt.items())
    for n, text in new_text.items():
        if original.get(n) != text.encode("utf-8"):
            with atomic_write(d / n) as f:
                f.write(text)
    log.info("fix_data_dir: old files are kept in %s", backup)
    return kept, fixer.num_before


def _sorted_unique(path: Path) -> list[Row]:
    """`sort -k1,1 -u`: the non-blank rows sorted by key, the first line of each key kept."""
    rows = [r for r in read_rows(path)[0] if r.key != ""]
    seen: set[str] = set()
    unique = []
    for row in sorted(rows, key=lambda r: r.key):  # stable: the first of equal keys wins
        if row.key not in seen:
            seen.add(row.key)
            unique.append(row)
    if unique != rows:
        log.info("fix_data_dir: %s is not in sorted order or not unique, sorting it", path)
    return unique


class _Fixer:
    """The tables of one fix_data_dir run and its three filters (fix_data_dir.sh's functions)."""

    def __init__(self, d: Path, tables: dict[str, list[Row]], utt_extra_files: Sequence[str],
                 spk_extra_files: Sequence[str]):
        self.d = d
        self.tables = tables
        utt2spk_of(d / "utt2spk", tables["utt2spk"])  # every line must be `utt spk`
        self.num_before = len(tables["utt2spk"])
        self.kinds = {f.name: f.key for f in FILES}
        self.kinds.update({n: "utt" for n in utt_extra_files})
        self.kinds.update({n: "spk" for n in spk_extra_files})

    def keys(self, name: str) -> set[str]:
        return {r.key for r in self.tables[name]}

    def present(self, kind: str) -> list[str]:
        return [n for n in self.tables if self.kinds.get(n) == kind]

    def filter_table(self, name: str, keep: set[str], column: int = 0) -> None:
        if name not in self.tables:
            return
        before = len(self.tables[name])
        self.tables[name] = [r for r in self.tables[name] if r.field(column) in keep]
        if len(self.tables[name]) != before:
            log.info("fix_data_dir: filtered %s from %d to %d lines", self.d / name, before, len(self.tables[name]))

    def filter_recordings(self) -> None:
        if "segments" not in self.tables:
            return
        if "wav.scp" not in self.tables:
            raise DataDirFileError(self.d / "segments", "exists but there is no wav.scp")
        recordings = {r.fields[1] for r in self.tables["segments"] if len(r.fields) > 1} & self.keys("wav.scp")
        if not recordings:
            raise DataDirFileError(self.d / "segments", "no recording of segments is in wav.scp")
        self.filter_table("segments", recordings, column=1)
        for n in self.present("reco"):
            self.filter_table(n, recordings)

    def filter_speakers(self) -> None:
        speakers = {r.fields[1] for r in self.tables["utt2spk"]}
        for n in self.present("spk"):
            if n in BY_NAME and BY_NAME[n].restricts:
                speakers &= self.keys(n)
        self.filter_table("utt2spk", speakers, column=1)
        for n in self.present("spk"):
            self.filter_table(n, speakers)

    def filter_utts(self) -> int:
        rows = self.tables["utt2spk"]
        spks = [r.field(1) for r in rows]
        for i in range(1, len(rows)):
            if spks[i] < spks[i - 1]:
                raise DataDirFileError(self.d / "utt2spk", f"not sorted by speaker: '{spks[i]}' after "
                                       f"'{spks[i - 1]}'; fix_data_dir cannot fix this (make "
                                       "speaker-ids prefixes of utt-ids)", rows[i].lineno)
        # Without segments, wav.scp and the other per-recording files are keyed by utterance.
        by_utt = ["utt"] if "segments" in self.tables else ["utt", "reco"]
        per_utt = [n for kind in by_utt for n in self.present(kind)]
        utts = self.keys("utt2spk")
        for n in per_utt:
            spec = BY_NAME.get(n)
            if spec is not None and spec.restricts:
                utts &= {r.key for r in self.tables[n] if spec.usable is None or spec.usable(r)}
        if not utts:
            raise DataDirError(f"{self.d}: fix_data_dir: no utterances remained: not proceeding further")
        log.info("fix_data_dir: kept %d utterances out of %d", len(utts), self.num_before)
        for n in ["utt2spk", *per_utt]:
            self.filter_table(n, utts)
        return len(utts)
