"""combine_data_dirs: concatenate data dirs into one (Kaldi's `utils/combine_data.sh`), validated
before it is put in place."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.fileio import check_not_an_input
from asrkit.kaldi.datadir.files import (
    BY_NAME,
    Row,
    make_row,
    read_tables,
    require_utt2spk,
    utt2spk_of,
)
from asrkit.kaldi.datadir.write import write_data_dir
from asrkit.logutil import get_logger

log = get_logger("kaldi.datadir")


def combine_data_dirs(dst: str | os.PathLike, srcs: Sequence[str | os.PathLike], *,
                      extra_files: Sequence[str] = (), overwrite: bool = False) -> Path:
    """Concatenate data dirs into `dst`, like Kaldi's `utils/combine_data.sh`.

    A file is combined when every source has it; a file only some sources have is dropped with a
    warning (Kaldi's behaviour). If any source has `segments`, sources without get one segment per
    utterance (`<utt> <utt> 0 <utt2dur or -1>`); likewise `utt2uniq` (`<utt> <utt>`). Files are
    C-sorted, spk2utt is regenerated and the result is validated before it is renamed into place
    (with `non_print`: combining does not change transcripts, so their characters are the sources'
    business).

    An existing `dst` is replaced only if asrkit made it, or with `overwrite`.

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
        require_utt2spk(s)
    check_not_an_input(dst, src_dirs, DataDirError, inside_ok=True)
    names = list(dict.fromkeys(["utt2spk", *BY_NAME, *extra_files]))
    per_src = [read_tables(s, names) for s in src_dirs]

    # Utterance ids must be unique across sources.
    owner: dict[str, Path] = {}
    for s, tables in zip(src_dirs, per_src):
        utt2spk_of(s / "utt2spk", tables["utt2spk"])  # every line must be `utt spk`
        for row in tables["utt2spk"]:
            if row.key in owner:
                raise DataDirError(f"combine_data_dirs: utterance '{row.key}' is in both {owner[row.key]} "
                                   f"and {s}")
            owner[row.key] = s
    _fill_in_segments_and_utt2uniq(src_dirs, per_src)

    combined: dict[str, list[Row]] = {}
    for name in names:
        have = [name in t for t in per_src]
        if all(have):
            combined[name] = _merge(name, src_dirs, [t[name] for t in per_src])
        elif any(have):
            missing = [str(s) for s, h in zip(src_dirs, have) if not h]
            log.warning("combine_data_dirs: not combining %s: it is missing from %s", name, ", ".join(missing))

    warnings = write_data_dir(dst, combined, inputs=src_dirs, overwrite=overwrite, validate={
        "no_feats": "feats.scp" not in combined, "no_text": "text" not in combined,
        "no_wav": "wav.scp" not in combined, "non_print": True})
    for w in warnings:
        log.warning("%s", w)
    log.info("combine_data_dirs: %d utterances from %d dirs into %s", len(owner), len(src_dirs), dst)
    return dst


def _fill_in_segments_and_utt2uniq(src_dirs: list[Path], per_src: list[dict[str, list[Row]]]) -> None:
    """combine_data.sh: when some sources have segments (utt2uniq), make them for the others."""
    if any("segments" in t for t in per_src):
        for s, tables in zip(src_dirs, per_src):
            if "segments" not in tables:
                log.info("combine_data_dirs: making segments for %s (one per utterance)", s)
                durs = {r.key: r.fields[1] for r in tables.get("utt2dur", []) if len(r.fields) == 2}
                tables["segments"] = [make_row(0, f"{r.key} {r.key} 0 {durs.get(r.key, '-1')}")
                                      for r in tables["utt2spk"]]
                # wav.scp, reco2dur, reco2file_and_channel were indexed by utterance = recording id.
    if any("utt2uniq" in t for t in per_src):
        for tables in per_src:
            if "utt2uniq" not in tables:
                tables["utt2uniq"] = [make_row(0, f"{r.key} {r.key}") for r in tables["utt2spk"]]


def _merge(name: str, src_dirs: list[Path], tables: list[list[Row]]) -> list[Row]:
    """Concatenate and C-sort; keys shared by sources (speakers, recordings) must carry identical lines."""
    seen: dict[str, tuple[str, Path]] = {}
    out: list[Row] = []
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
