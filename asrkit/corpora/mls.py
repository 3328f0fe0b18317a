"""Multilingual LibriSpeech (OpenSLR 94): Kaldi data dirs for one language's train/dev/test.

Layout: `mls_<language>[_opus]/{train,dev,test}/transcripts.txt` (`<spk>_<book>_<seq><TAB>text`),
`audio/<spk>/<book>/<utt>.flac|.opus`, and `train/limited_supervision/{1hr/<0-5>,9hr}/handles.txt`.
`segments.txt` gives each utterance's place in the original LibriVox recording and is not needed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from asrkit.corpora.common import (
    check_pairing,
    describe_ids,
    format_duration,
    logger,
    output_exists,
    probe_audio,
    require_dir,
    require_file,
    write_data_dir,
)
from asrkit.errors import AsrkitError, FormatError
from asrkit.kaldi.textio import c_sorted, iter_lines

# MLS language folder name -> ISO 639-1 code (what utt2lang holds).
MLS_LANGUAGES: dict[str, str] = {
    "english": "en", "german": "de", "dutch": "nl", "french": "fr",
    "spanish": "es", "italian": "it", "portuguese": "pt", "polish": "pl",
}
MLS_SPLITS = ("train", "dev", "test")
# --hours: the limited-supervision lists of the train split (Libri-light style: 10h = 9h + 1h).
HOURS_CHOICES = ("1", "9", "10", "all")
AUDIO_EXTENSIONS = (".flac", ".opus")

_UTT_RE = re.compile(r"^([0-9]+)_([0-9]+)_([0-9]+)$")


def mls_language(lang: str) -> tuple[str, str]:
    """`(folder name, ISO code)` for a language given either way (`german` or `de`).

    Raises:
        AsrkitError: not an MLS language.
    """
    key = lang.lower()
    if key in MLS_LANGUAGES:
        return key, MLS_LANGUAGES[key]
    for name, iso in MLS_LANGUAGES.items():
        if iso == key:
            return name, iso
    choices = ", ".join(f"{n} ({c})" for n, c in MLS_LANGUAGES.items())
    raise AsrkitError(f"unknown MLS language '{lang}'; choose from {choices}")


def find_mls_dir(root: str | os.PathLike, language: str) -> Path:
    """The `mls_<language>` (or `mls_<language>_opus`) folder: `root` itself or a child of it.

    Raises:
        AsrkitError: neither exists, naming the expected layout.
    """
    root = require_dir(root, "MLS folder")
    names = (f"mls_{language}", f"mls_{language}_opus")
    if root.name in names:
        return root
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise AsrkitError(f"{root}: no {names[0]}/ or {names[1]}/ folder (expected layout: "
                      f"{root}/{names[0]}/{{train,dev,test}}/transcripts.txt and .../audio/<spk>/<book>/<utt>.flac)")


def read_transcripts(path: Path) -> dict[str, str]:
    """`{utt: transcript}` from an MLS `transcripts.txt` (`<spk>_<book>_<seq><TAB or space>text`).

    Raises:
        FormatError: a line without text, a malformed id or a duplicate id (file and line).
    """
    out: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
        utt = parts[0].strip()
        if _UTT_RE.match(utt) is None:
            raise FormatError(path, f"utterance id '{utt}' is not <speaker>_<book>_<number>", lineno)
        if utt in out:
            raise FormatError(path, f"duplicate utterance id '{utt}'", lineno)
        words = parts[1].split() if len(parts) > 1 else []
        if not words:
            raise FormatError(path, f"no transcript for '{utt}'", lineno)
        out[utt] = " ".join(words)
    return out


def find_audio(audio_dir: Path) -> dict[str, Path]:
    """`{utt: file}` for every `audio/<spk>/<book>/<utt>.flac|.opus`.

    Raises:
        AsrkitError: the same utterance twice (e.g. as .flac and .opus).
    """
    found: dict[str, Path] = {}
    for spk in sorted(os.scandir(audio_dir), key=lambda e: e.name):
        if not spk.is_dir():
            continue
        for book in sorted(os.scandir(spk.path), key=lambda e: e.name):
            if not book.is_dir():
                continue
            for f in os.scandir(book.path):
                stem, ext = os.path.splitext(f.name)
                if ext.lower() not in AUDIO_EXTENSIONS:
                    continue
                if stem in found:
                    raise AsrkitError(f"{f.path}: utterance '{stem}' has two audio files (also {found[stem]})")
                found[stem] = Path(f.path)
    return found


def read_handles(train_dir: Path, hours: str) -> set[str]:
    """The utterance ids of a limited-supervision train subset.

    `1`: the six 10-minute lists `limited_supervision/1hr/*/handles.txt`; `9`:
    `limited_supervision/9hr/handles.txt`; `10`: both.

    Raises:
        AsrkitError: a list is missing.
    """
    ls_dir = train_dir / "limited_supervision"
    files: list[Path] = []
    if hours in ("1", "10"):
        one = require_dir(ls_dir / "1hr", "MLS 1-hour limited-supervision folder", "1hr/<0-5>/handles.txt")
        files += sorted(one.glob("*/handles.txt"))
        if not files:
            raise AsrkitError(f"{one}: no */handles.txt lists (expected 1hr/0/handles.txt ... 1hr/5/handles.txt)")
    if hours in ("9", "10"):
        files.append(require_file(ls_dir / "9hr" / "handles.txt", "MLS 9-hour limited-supervision list"))
    handles: set[str] = set()
    for f in files:
        handles.update(line.strip() for _, line in iter_lines(f) if line.strip())
    return handles


def _speaker_order_ok(utts: list[str]) -> bool:
    """Whether C-sorting `<spk>_<book>_<seq>` ids also sorts their speakers (espnet#5264)."""
    prev = None
    for utt in c_sorted(utts):
        spk = utt.split("_", 1)[0]
        if prev is not None and spk < prev:
            return False
        prev = spk
    return True


def _rekey(utt: str, width: int) -> str:
    spk, rest = utt.split("_", 1)
    return f"{spk.zfill(width)}_{rest}"


def prepare_mls(root: str | os.PathLike, lang: str, out_dir: str | os.PathLike, *, hours: str = "all",
                splits: tuple[str, ...] = MLS_SPLITS, overwrite: bool = False, num_workers: int = 4) -> list[Path]:
    """Prepare `<out_dir>/mls_<iso>_{train,dev,test}` for one MLS language.

    Utterance ids are MLS's `<spk>_<book>_<seq>`, speaker `<spk>`, `utt2lang` the ISO code,
    `wav.scp` lists the .flac/.opus files (asrkit reads both), `utt2dur` comes from the headers.

    Ids and sort order: Kaldi needs `utt2spk` sorted by utterance *and* by speaker. With
    variable-length numeric speakers that fails (`103_...` sorts after `1034_...` while speaker
    `103` sorts before `1034`: the espnet#5264 trap). When that happens in any split, every
    split's speaker field is zero-padded to the widest speaker id of the language (`103_1240_000000`
    becomes `00103_1240_000000`, speaker `00103`), so the same speaker keeps one id across splits.

    Args:
        root: the folder holding `mls_<language>/` (or that folder itself).
        lang: language name or ISO code (`german` or `de`).
        out_dir: where the data dirs go.
        hours: `all`, or a limited-supervision train subset: `1`, `9` or `10` (= 1 + 9); the train
            dir is then named `mls_<iso>_train_<hours>h`.
        splits: which of train/dev/test to prepare.
        overwrite: replace existing data dirs (otherwise they are kept and skipped).
        num_workers: threads reading audio headers.

    Returns:
        the data dirs written or kept.

    Raises:
        AsrkitError: a missing folder or list, a bad transcript line, transcript without audio or
            audio without transcript, unreadable audio.
    """
    if hours not in HOURS_CHOICES:
        raise AsrkitError(f"--hours must be one of {', '.join(HOURS_CHOICES)}, not '{hours}'")
    language, iso = mls_language(lang)
    mls_dir = find_mls_dir(root, language)
    out_dir = Path(out_dir)
    layout = "<split>/transcripts.txt and <split>/audio/<spk>/<book>/<utt>.flac"
    for split in splits:
        if split not in MLS_SPLITS:
            raise AsrkitError(f"unknown MLS split '{split}'; choose from {', '.join(MLS_SPLITS)}")
        require_dir(mls_dir / split, f"MLS {split} folder", layout)
        require_file(mls_dir / split / "transcripts.txt", f"MLS {split} transcript list")
    # Every split of the language decides the ids, so a speaker keeps its id whichever splits
    # one run prepares.
    transcripts: dict[str, dict[str, str]] = {}
    for split in MLS_SPLITS:
        if split in splits or (mls_dir / split / "transcripts.txt").is_file():
            transcripts[split] = read_transcripts(mls_dir / split / "transcripts.txt")
    rekey = not all(_speaker_order_ok(list(t)) for t in transcripts.values())
    width = max((len(u.split("_", 1)[0]) for t in transcripts.values() for u in t), default=0)
    if rekey:
        logger.info("%s: speaker ids of different lengths break Kaldi's sort order; zero-padding them to %d "
                    "digits in utterance and speaker ids", mls_dir, width)
    done: list[Path] = []
    for split in splits:
        name = f"mls_{iso}_{split}" + (f"_{hours}h" if split == "train" and hours != "all" else "")
        dest = out_dir / name
        if output_exists(dest, overwrite):
            done.append(dest)
            continue
        split_dir = mls_dir / split
        text = transcripts[split]
        audio_dir = require_dir(split_dir / "audio", f"MLS {split} audio folder", "audio/<spk>/<book>/<utt>.flac")
        audio = find_audio(audio_dir)
        check_pairing(audio, text, str(split_dir))
        if split == "train" and hours != "all":
            handles = read_handles(split_dir, hours)
            unknown = handles - set(text)
            if unknown:
                raise AsrkitError(f"{split_dir / 'limited_supervision'}: handles without a transcript: "
                                  f"{describe_ids(unknown)}")
            text = {u: t for u, t in text.items() if u in handles}
        audio = {u: audio[u] for u in text}
        infos = probe_audio(audio, num_workers, desc=f"reading MLS {iso} {split} headers")
        key = (lambda u: _rekey(u, width)) if rekey else (lambda u: u)
        tables = {
            "wav.scp": {key(u): os.path.abspath(p) for u, p in audio.items()},
            "text": {key(u): t for u, t in text.items()},
            "utt2spk": {key(u): key(u).split("_", 1)[0] for u in text},
            "utt2lang": {key(u): iso for u in text},
            "utt2dur": {key(u): format_duration(infos[u].duration) for u in text},
        }
        done.append(write_data_dir(dest, tables, overwrite=overwrite))
    return done
