"""LibriSpeech (OpenSLR 12): Kaldi data dirs as `egs/librispeech/s5/local/data_prep.sh` makes them.

Layout: `<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt` and `<reader>-<chapter>-<n>.flac`;
`SPEAKERS.TXT` (reader | sex | subset | minutes | name) beside the subsets.
"""

from __future__ import annotations

import os
from pathlib import Path

from asrkit.corpora.common import (
    check_pairing,
    format_duration,
    logger,
    output_exists,
    probe_audio,
    require_dir,
    write_data_dir,
)
from asrkit.errors import AsrkitError, FormatError
from asrkit.kaldi.textio import iter_lines

LIBRISPEECH_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500",
                       "dev-clean", "dev-other", "test-clean", "test-other")
_LAYOUT = "<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt and <reader>-<chapter>-<n>.flac"


def find_librispeech_dir(root: str | os.PathLike) -> Path:
    """The folder holding the subsets: `root` or `root/LibriSpeech`.

    Raises:
        AsrkitError: neither holds any of `LIBRISPEECH_SUBSETS`.
    """
    root = require_dir(root, "LibriSpeech folder")
    for cand in (root, root / "LibriSpeech"):
        if any((cand / s).is_dir() for s in LIBRISPEECH_SUBSETS):
            return cand
    raise AsrkitError(f"{root}: no LibriSpeech subset folder ({', '.join(LIBRISPEECH_SUBSETS)}) here or in "
                      f"{root / 'LibriSpeech'} (expected layout: {_LAYOUT})")


def read_speakers_txt(path: Path) -> dict[str, str]:
    """`{reader: 'm'|'f'}` from LibriSpeech's SPEAKERS.TXT (`;` lines are comments).

    Raises:
        FormatError: a line without `|`-separated reader and sex, or a sex other than M/F.
    """
    out: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        if line.startswith(";") or not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2 or fields[1].upper() not in ("M", "F"):
            raise FormatError(path, "expected '<reader> | <M|F> | ...'", lineno)
        out[fields[0]] = fields[1].lower()
    return out


def _scan_subset(subset_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """`({utt: flac}, {utt: transcript})` for one subset folder."""
    audio: dict[str, Path] = {}
    text: dict[str, str] = {}
    for reader in sorted(os.scandir(subset_dir), key=lambda e: e.name):
        if not reader.is_dir():
            continue
        for chapter in sorted(os.scandir(reader.path), key=lambda e: e.name):
            if not chapter.is_dir():
                continue
            prefix = f"{reader.name}-{chapter.name}-"
            for f in os.scandir(chapter.path):
                if f.name.lower().endswith(".flac"):
                    audio[f.name[: -len(".flac")]] = Path(f.path)
            trans = Path(chapter.path) / f"{reader.name}-{chapter.name}.trans.txt"
            if not trans.is_file():
                # data_prep.sh: "expected file $chapter_trans to exist"; its audio is then
                # reported below as audio without transcript.
                logger.warning("%s does not exist", trans)
                continue
            for lineno, line in iter_lines(trans):
                parts = line.split(None, 1)
                if not parts:
                    continue
                utt = parts[0]
                if not utt.startswith(prefix):
                    raise FormatError(trans, f"utterance id '{utt}' does not start with '{prefix}'", lineno)
                if utt in text:
                    raise FormatError(trans, f"duplicate utterance id '{utt}'", lineno)
                text[utt] = " ".join(parts[1].split()) if len(parts) > 1 else ""
    return audio, text


def prepare_librispeech(root: str | os.PathLike, out_dir: str | os.PathLike, *,
                        subsets: tuple[str, ...] | None = None, overwrite: bool = False,
                        num_workers: int = 4) -> list[Path]:
    """Prepare `<out_dir>/<subset with _>` (e.g. `train_clean_100`, `dev_clean`) for each subset found.

    As Kaldi's `local/data_prep.sh`: utterance id `<reader>-<chapter>-<n>`, speaker
    `<reader>-<chapter>` (one speaker per chapter, so CMVN is per chapter), transcripts as in the
    corpus (upper case), `spk2gender` from SPEAKERS.TXT when it is there and names every reader.
    `wav.scp` lists the flac files (asrkit reads flac; Kaldi pipes through `flac -c -d -s`),
    `utt2lang` is `en`, `utt2dur` comes from the flac headers.

    Args:
        root: the `LibriSpeech` folder or its parent.
        out_dir: where the data dirs go.
        subsets: only these (default: every one of `LIBRISPEECH_SUBSETS` that exists).
        overwrite: replace existing data dirs (otherwise they are kept and skipped).
        num_workers: threads reading audio headers.

    Returns:
        the data dirs written or kept.

    Raises:
        AsrkitError: no subset, a requested subset missing, a bad transcript line, transcript
            without audio or audio without transcript, unreadable audio.
    """
    ls_dir = find_librispeech_dir(root)
    if subsets is None:
        chosen = [s for s in LIBRISPEECH_SUBSETS if (ls_dir / s).is_dir()]
    else:
        unknown = [s for s in subsets if s not in LIBRISPEECH_SUBSETS]
        if unknown:
            raise AsrkitError(f"unknown LibriSpeech subset(s) {', '.join(unknown)}; choose from "
                              f"{', '.join(LIBRISPEECH_SUBSETS)}")
        chosen = [require_dir(ls_dir / s, "LibriSpeech subset", _LAYOUT).name for s in subsets]
    speakers_txt = ls_dir / "SPEAKERS.TXT"
    genders = read_speakers_txt(speakers_txt) if speakers_txt.is_file() else None
    out_dir = Path(out_dir)
    done: list[Path] = []
    for subset in chosen:
        dest = out_dir / subset.replace("-", "_")
        if output_exists(dest, overwrite):
            done.append(dest)
            continue
        subset_dir = ls_dir / subset
        audio, text = _scan_subset(subset_dir)
        if not text and not audio:
            raise AsrkitError(f"{subset_dir}: no utterances (expected layout: {_LAYOUT})")
        check_pairing(audio, text, str(subset_dir))
        infos = probe_audio(audio, num_workers, desc=f"reading {subset} headers")
        # data_prep.sh: `printf "%s %s-%s\n", $1, reader, chapter` (per-chapter speakers)
        utt2spk = {u: u.rsplit("-", 1)[0] for u in text}
        tables = {
            "wav.scp": {u: os.path.abspath(audio[u]) for u in text},
            "text": text,
            "utt2spk": utt2spk,
            "utt2lang": {u: "en" for u in text},
            "utt2dur": {u: format_duration(infos[u].duration) for u in text},
        }
        if genders is not None:
            spk2gender = {}
            for spk in set(utt2spk.values()):
                reader = spk.split("-", 1)[0]
                if reader in genders:
                    spk2gender[spk] = genders[reader]
            if len(spk2gender) == len(set(utt2spk.values())):
                tables["spk2gender"] = spk2gender
            else:
                logger.warning("%s does not name every reader of %s; no spk2gender written", speakers_txt, subset)
        done.append(write_data_dir(dest, tables, overwrite=overwrite))
    return done
