"""subset_data_dir: copy a selection of a data dir's utterances (Kaldi's `utils/subset_data_dir.sh`),
plus a per-language selector (`lang`) for multilingual dirs."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from asrkit.errors import ConfigError, DataDirError
from asrkit.fileio import check_not_an_input
from asrkit.kaldi.datadir.files import (
    DataDirFileError,
    Row,
    parse_count,
    parse_number,
    parse_segment,
    present_files,
    read_tables,
    require_utt2spk,
    two_fields,
    utt2spk_of,
    utt2spk_to_spk2utt,
)
from asrkit.kaldi.datadir.write import part_tables, write_data_dir
from asrkit.kaldi.textio import c_sorted
from asrkit.logutil import get_logger

log = get_logger("kaldi.datadir")

_COUNTS = ("first", "last", "shortest", "per_spk", "speakers", "random_utts")


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *, first: int | None = None,
                    last: int | None = None, shortest: int | None = None, per_spk: int | None = None,
                    speakers: int | None = None, spk_list: str | os.PathLike | None = None,
                    utt_list: str | os.PathLike | None = None, hours: float | None = None,
                    random_utts: int | None = None, lang: str | None = None, exclude: bool = False,
                    seed: int = 0, overwrite: bool = False) -> Path:
    """Copy a subset of data dir `src` to `dst`, like Kaldi's `utils/subset_data_dir.sh`.

    Exactly one selector:
        first / last: the first / last N lines of utt2spk.
        shortest: the N shortest utterances (by utt2num_frames, else utt2dur, else segments).
        per_spk: N utterances per speaker, evenly spaced through the speaker's list (Kaldi's rule).
        speakers: whole speakers in a seeded random order until at least N utterances (Kaldi's
            `--speakers N`, where N counts utterances).
        spk_list / utt_list: the speakers / utterances listed (first column) in a file; read once
            as text, so a pipe or process substitution (`<(...)`) works. With `exclude`, every
            utterance *except* those (Kaldi's `utils/filter_scp.pl --exclude`).
        hours: a seeded random subset of about `hours` hours: utterances in shuffled order until the
            total reaches it (durations from utt2dur, else segments).
        random_utts: N utterances chosen at random (seeded), Kaldi's default mode.
        lang: the utterances whose `utt2lang` entry is `lang` (an asrkit addition: the per-language
            test sets of multilingual recipes).

    Every per-utterance, per-speaker and per-recording file is filtered; lines are copied
    unchanged. `dst` is built in a temporary folder and renamed into place, replacing an existing
    `dst` whole if asrkit made it (or with `overwrite`); `dst` may not be, hold or be inside `src`.

    Returns:
        `dst` as a Path.

    Raises:
        ConfigError: zero or several selectors, N < 1, or `exclude` without spk_list / utt_list.
        DataDirError: N larger than the source, an empty selection (for `lang`: no utterance of that
            language, naming the languages there are), `lang` without `utt2lang`, or a bad source
            (DataDirFileError names the file and line).
    """
    src, dst = Path(src), Path(dst)
    selectors = {"first": first, "last": last, "shortest": shortest, "per_spk": per_spk, "speakers": speakers,
                 "spk_list": spk_list, "utt_list": utt_list, "hours": hours, "random_utts": random_utts,
                 "lang": lang}
    chosen = [k for k, v in selectors.items() if v is not None]
    if len(chosen) != 1:
        raise ConfigError(f"subset_data_dir: give exactly one selector of {', '.join(selectors)} "
                          f"(got {', '.join(chosen) or 'none'})")
    if exclude and chosen[0] not in ("spk_list", "utt_list"):
        raise ConfigError("subset_data_dir: exclude goes with spk_list or utt_list (the ids to leave out)")
    require_utt2spk(src)
    check_not_an_input(dst, [src], DataDirError, inside_ok=True)
    tables = read_tables(src, present_files(src))
    rows = tables["utt2spk"]
    utt2spk = utt2spk_of(src / "utt2spk", rows)
    if hours is not None and not hours > 0:
        raise ConfigError(f"subset_data_dir: hours must be positive, got {hours!r}")
    for name in _COUNTS:
        n = selectors[name]
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ConfigError(f"subset_data_dir: {name} must be a positive integer, got {n!r}")
        if n is not None and name != "per_spk" and n > len(rows):
            raise DataDirError(f"subset_data_dir: {src} has {len(rows)} utterances, cannot select {name} {n}")
    keep = _SELECTORS[chosen[0]](_Source(src, tables, utt2spk), selectors[chosen[0]], random.Random(seed))
    if exclude:
        keep = utt2spk.keys() - keep
    if not keep:
        raise DataDirError(f"subset_data_dir: the selection from {src} is empty")
    write_data_dir(dst, part_tables(tables, [[r for r in rows if r.key in keep]])[0], inputs=[src],
                   overwrite=overwrite)
    log.info("subset_data_dir: %s: %d of %d utterances into %s", src, len(keep), len(rows), dst)
    return dst


@dataclass
class _Source:
    """What a selector looks at: the source dir, its tables (rows by file name) and `{utt: spk}`.

    A selector (`_SELECTORS`, by subset_data_dir keyword) takes it, the keyword's value and the
    seeded random generator, and returns the utterance ids it keeps.
    """

    dir: Path
    tables: Mapping[str, list[Row]]
    utt2spk: dict[str, str]


def _first(src: _Source, n: int, rng: random.Random) -> set[str]:
    return {r.key for r in src.tables["utt2spk"][:n]}


def _last(src: _Source, n: int, rng: random.Random) -> set[str]:
    return {r.key for r in src.tables["utt2spk"][-n:]}


def _shortest(src: _Source, n: int, rng: random.Random) -> set[str]:
    lengths = _lengths(src.dir, src.tables)
    return set(sorted(src.utt2spk, key=lambda u: (lengths[u], u))[:n])


def _per_spk(src: _Source, n: int, rng: random.Random) -> set[str]:
    keep: set[str] = set()
    for spk_utts in utt2spk_to_spk2utt(src.utt2spk).values():
        # subset_data_dir.sh --per-spk: every `skip`-th utterance, skip = max(1, floor(#utts / N)).
        skip = max(1, len(spk_utts) // n)
        keep.update(spk_utts[0:n * skip:skip])
    return keep


def _spk_list(src: _Source, path, rng: random.Random) -> set[str]:
    wanted = _first_column(Path(path))
    return {u for u, s in src.utt2spk.items() if s in wanted}


def _utt_list(src: _Source, path, rng: random.Random) -> set[str]:
    wanted = _first_column(Path(path))
    unknown = len(wanted - src.utt2spk.keys())
    if unknown:
        log.warning("subset_data_dir: %d utterances of %s are not in %s", unknown, path, src.dir)
    return wanted & src.utt2spk.keys()


def _random_utts(src: _Source, n: int, rng: random.Random) -> set[str]:
    order = c_sorted(src.utt2spk)
    rng.shuffle(order)
    return set(order[:n])


def _whole_speakers(src: _Source, num_utts: int, rng: random.Random) -> set[str]:
    spk2utt = utt2spk_to_spk2utt(src.utt2spk)
    order = list(spk2utt)
    rng.shuffle(order)
    keep: set[str] = set()
    for spk in order:
        if len(keep) >= num_utts:
            break
        keep.update(spk2utt[spk])
    return keep


def _random_hours(src: _Source, hours: float, rng: random.Random) -> set[str]:
    seconds, source = _durations(src.dir, src.tables)
    total = sum(seconds.get(u, 0.0) for u in src.utt2spk)
    target = hours * 3600.0
    if target > total:
        raise DataDirError(f"subset_data_dir: cannot select {hours} hours from {src.dir}, which has "
                           f"{total / 3600.0:.3f} hours (from {source})")
    order = c_sorted(src.utt2spk)
    rng.shuffle(order)
    keep, acc = set(), 0.0
    for utt in order:
        if acc >= target:
            break
        if utt not in seconds:
            raise DataDirFileError(src.dir / source, f"no duration for utterance '{utt}'")
        keep.add(utt)
        acc += seconds[utt]
    log.info("subset_data_dir: selected %d utterances, %.3f hours", len(keep), acc / 3600.0)
    return keep


def _language(src: _Source, lang: str, rng: random.Random) -> set[str]:
    path = src.dir / "utt2lang"
    if "utt2lang" not in src.tables:
        raise DataDirFileError(path, "no such file (selecting by language needs utt2lang)")
    utt2lang = {row.key: two_fields(path, row, "language") for row in src.tables["utt2lang"]}
    keep = {u for u in src.utt2spk if utt2lang.get(u) == lang}
    if not keep:
        have = ", ".join(c_sorted(set(utt2lang.values()))) or "none"
        raise DataDirError(f"subset_data_dir: no utterance of {src.dir} has language '{lang}' in utt2lang "
                           f"(languages there: {have})")
    return keep


def _durations(d: Path, tables: Mapping[str, list[Row]]) -> tuple[dict[str, float], str]:
    """Seconds per utterance from utt2dur, else segments (+ reco2dur for end = -1); and the source name."""
    if "utt2dur" in tables:
        f = d / "utt2dur"
        return {r.key: parse_number(f, r) for r in tables["utt2dur"]}, "utt2dur"
    if "segments" in tables:
        f = d / "segments"
        reco2dur = {r.key: parse_number(d / "reco2dur", r) for r in tables.get("reco2dur", [])}
        out = {}
        for row in tables["segments"]:
            seg = parse_segment(f, row)
            if seg.end != -1:
                out[row.key] = seg.end - seg.start
            elif seg.reco in reco2dur:
                out[row.key] = reco2dur[seg.reco] - seg.start
            else:
                raise DataDirFileError(f, f"end time -1 and recording '{seg.reco}' is not in reco2dur; "
                                          "durations need utt2dur", row.lineno)
        return out, "segments"
    raise DataDirError(f"{d}: no utt2dur or segments to take durations from "
                       f"(`asrkit data get-utt2dur {d}` writes utt2dur)")


def _lengths(d: Path, tables: Mapping[str, list[Row]]) -> dict[str, float]:
    if "utt2num_frames" in tables:
        f = d / "utt2num_frames"
        return {r.key: float(parse_count(f, r)) for r in tables["utt2num_frames"]}
    try:
        return _durations(d, tables)[0]
    except DataDirError:
        raise DataDirError(f"{d}: --shortest needs utt2num_frames, utt2dur or segments") from None


def _first_column(path: Path) -> set[str]:
    """The first field of each line of a list file, read in one pass as text: the list may be a pipe
    (`--utt-list <(grep ...)`), which can be read only once and not seeked."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataDirFileError(path, f"cannot read: {e.strerror}") from None
    keys = set()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            fields = raw.decode("utf-8").split()
        except UnicodeDecodeError as e:
            raise DataDirFileError(path, f"not valid UTF-8 ({e.reason} at byte {e.start})", lineno) from None
        if fields:
            keys.add(fields[0])
    return keys


_SELECTORS = {"first": _first, "last": _last, "shortest": _shortest, "per_spk": _per_spk,
              "speakers": _whole_speakers, "spk_list": _spk_list, "utt_list": _utt_list, "hours": _random_hours,
              "random_utts": _random_utts, "lang": _language}
