"""data_dir_info: what `asrkit data info` prints — utterances, speakers, hours, per language."""

from __future__ import annotations

import os
from pathlib import Path

import kaldiio

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir.tables import load_data_dir
from asrkit.kaldi.textio import c_sorted
from asrkit.logutil import get_logger

log = get_logger("kaldi.datadir")

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
    first = next(iter(feats_scp.items()))
    try:
        mat = kaldiio.load_mat(first[1])
    except Exception as e:  # informational only: a summary must not fail on an unreadable ark
        log.warning("data_dir_info: cannot read features of '%s' from %s: %s", first[0], d / "feats.scp", e)
        return None
    return int(mat.shape[1]) if getattr(mat, "ndim", 0) == 2 else None
