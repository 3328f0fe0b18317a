"""A data directory in memory: `DataDir` holds one `{key: value}` table per file of the registry,
`load_data_dir` reads one from disk and `DataDir.save` writes it back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir.files import (
    FILES,
    DataDirFileError,
    Row,
    parse_speaker,
    read_rows,
    utt2spk_to_spk2utt,
)
from asrkit.kaldi.textio import c_sorted, write_table


def _with_file_tables(cls):
    """Give `cls` one attribute per file of `FILES` (`wav.scp` -> `wav_scp`, None when the file is
    absent) and a `path`, then make it a dataclass: the file list is written once, in `FILES`."""
    annotations = dict(cls.__dict__.get("__annotations__", {}))
    for f in FILES:
        annotations[f.attr] = f"dict[str, {f.value_type.__name__}] | None"
        setattr(cls, f.attr, None)
    annotations["path"] = "Path | None"
    cls.path = None
    cls.__annotations__ = annotations
    return dataclass(cls)


@_with_file_tables
class DataDir:
    """The tables of a Kaldi data directory, each a `{key: value}` dict or None when the file is absent.

    There is one attribute per file of `asrkit.kaldi.datadir.files.FILES`, named like the file with
    `.` as `_` (`wav_scp`, `text`, `segments`, `utt2lang`, `utt2dur`, `feats_scp`, `cmvn_scp`, ...),
    plus `path` (the folder it was loaded from or saved to). Values are the raw strings of the file
    (a `wav.scp` command, a transcript) except where the registry gives a type: `segments` ->
    `Segment`, `utt2dur`/`reco2dur`/`utt2warp`/`spk2warp` -> float, `utt2num_frames` -> int.
    `utt2spk` is the primary speaker map; `spk2utt` is derived from it.

    Example:
        >>> d = load_data_dir("data/train")
        >>> d.speakers, d.langs, d.utt_duration(d.utts[0])
    """

    utt2spk: dict[str, str] = field(default_factory=dict)

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
        return utt2spk_to_spk2utt(self.utt2spk)

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
        write_table(path / "utt2spk", self.utt2spk)
        write_table(path / "spk2utt", self.spk2utt, sort=False)
        for spec in FILES:
            table = getattr(self, spec.attr)
            target = path / spec.name
            if table is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                continue
            write_table(target, {key: spec.fmt(value) for key, value in table.items()})
        self.path = path


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
    d.utt2spk = _load_table(path / "utt2spk", parse_speaker)
    for spec in FILES:
        f = path / spec.name
        if f.is_file():
            setattr(d, spec.attr, _load_table(f, spec.parse))
    return d


def _load_table(path: Path, parse: Callable[[Path, Row], object] | None) -> dict:
    rows, _ = read_rows(path)
    table: dict = {}
    for row in rows:
        key = row.key
        if key == "":
            raise DataDirFileError(path, "empty line", row.lineno)
        if key in table:
            raise DataDirFileError(path, f"duplicate key '{key}'", row.lineno)
        table[key] = parse(path, row) if parse is not None else row.value
    return table
