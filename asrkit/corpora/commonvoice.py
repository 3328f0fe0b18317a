"""Mozilla Common Voice: Kaldi data dirs from one language's `train/dev/test.tsv` and `clips/`.

The tsv files have a header row naming their columns (`client_id`, `path`, `sentence`, ...);
`clips/` holds the mp3 files of every split (and of clips no split uses), which asrkit reads
through libsndfile (>= 1.1 reads mp3), so `wav.scp` lists the mp3 paths.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
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

CV_SPLITS = ("train", "dev", "test")
REQUIRED_COLUMNS = ("client_id", "path", "sentence")
SPEAKER_ID_CHARS = 8  # shortest speaker id; grown where two clients would collide

_HEX_RE = re.compile(r"^[0-9a-f]+$")
_APOSTROPHES = {"'", "\u2019", "\u02bc"}  # ', right single quote, modifier letter apostrophe


def normalize_cv_sentence(sentence: str) -> str:
    """Normalise a Common Voice sentence: Unicode NFC, lower case, punctuation removed.

    Punctuation is every character of a Unicode `P*` category; it becomes a space (so
    `"well,then"` gives two words), except an apostrophe between two letters, which is kept as
    `'` (`don't`, `l'homme`). Whitespace runs become one space. Symbols (`S*`, e.g. `€`) and
    digits are kept.

    Returns:
        the normalised sentence (may be empty).
    """
    s = unicodedata.normalize("NFC", sentence)
    s = unicodedata.normalize("NFC", s.lower())  # lower() may decompose (e.g. U+0130)
    chars = []
    for i, ch in enumerate(s):
        if unicodedata.category(ch).startswith("P"):
            inner = 0 < i < len(s) - 1 and s[i - 1].isalpha() and s[i + 1].isalpha()
            chars.append("'" if ch in _APOSTROPHES and inner else " ")
        else:
            chars.append(ch)
    return " ".join("".join(chars).split())


def find_cv_dir(root: str | os.PathLike, lang: str) -> Path:
    """The language folder (holding `clips/` and the tsv files): `root/<lang>` or `root` itself.

    Raises:
        AsrkitError: neither has a `clips/` folder, naming the expected layout.
    """
    root = require_dir(root, "Common Voice folder")
    for cand in (root / lang, root):
        if (cand / "clips").is_dir():
            return cand
    raise AsrkitError(f"{root}: no {lang}/clips/ or clips/ folder (expected layout: "
                      f"{root}/{lang}/{{train,dev,test}}.tsv and {root}/{lang}/clips/*.mp3)")


def read_cv_tsv(path: Path) -> list[tuple[str, str, str]]:
    """`[(client_id, clip file name, sentence)]` from a Common Voice tsv, in file order.

    Raises:
        FormatError: a missing column, a short row, an empty field or a clip listed twice.
    """
    rows: list[tuple[str, str, str]] = []
    with open(path, encoding="utf-8", newline="") as f:
        # Sentences contain quotes that are not CSV quoting, hence QUOTE_NONE.
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise FormatError(path, "empty file (expected a header row)") from None
        except UnicodeDecodeError as e:
            raise FormatError(path, f"not valid UTF-8 ({e.reason})", 1) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise FormatError(path, f"header lacks column(s) {', '.join(missing)} (has: {', '.join(header)})", 1)
        idx = [header.index(c) for c in REQUIRED_COLUMNS]
        seen: dict[str, int] = {}
        try:
            for row in reader:
                lineno = reader.line_num
                if not row or row == [""]:
                    continue
                if len(row) <= max(idx):
                    raise FormatError(path, f"expected {len(header)} tab-separated fields, found {len(row)}", lineno)
                client, clip, sentence = (row[i].strip() for i in idx)
                if not client or not clip:
                    raise FormatError(path, "empty client_id or path", lineno)
                if clip in seen:
                    raise FormatError(path, f"clip '{clip}' listed twice (also line {seen[clip]})", lineno)
                seen[clip] = lineno
                rows.append((client, clip, sentence))
        except UnicodeDecodeError as e:
            raise FormatError(path, f"not valid UTF-8 ({e.reason})", reader.line_num + 1) from None
    return rows


def speaker_ids(client_ids: set[str], min_chars: int = SPEAKER_ID_CHARS) -> dict[str, str]:
    """Short speaker ids for Common Voice client ids.

    A client id is already a hex hash (sha512); the speaker id is its first `n` characters, with
    `n >= min_chars` the smallest length at which no two clients collide, so all speaker ids have
    one length and sort like the utterance ids they prefix. A client id that is not lower-case hex
    is hashed with sha256 first.

    Returns:
        `{client_id: speaker_id}`.
    """
    hexed = {c: c if _HEX_RE.match(c) else hashlib.sha256(c.encode("utf-8")).hexdigest() for c in client_ids}
    longest = max((len(h) for h in hexed.values()), default=min_chars)
    n = min_chars
    while n < longest and len({h[:n] for h in hexed.values()}) < len(hexed):
        n += 1
    if len({h[:n] for h in hexed.values()}) < len(hexed):
        # Distinct client ids that are prefixes of one another: fall back to full sha256 hashes.
        return {c: hashlib.sha256(c.encode("utf-8")).hexdigest() for c in client_ids}
    return {c: h[:n] for c, h in hexed.items()}


def prepare_commonvoice(root: str | os.PathLike, lang: str, out_dir: str | os.PathLike, *,
                        splits: tuple[str, ...] = CV_SPLITS, overwrite: bool = False,
                        num_workers: int = 4) -> list[Path]:
    """Prepare `<out_dir>/cv_<lang>_{train,dev,test}` from a Common Voice language folder.

    Speaker = the shortened client id (see `speaker_ids`, computed over all splits given so a
    speaker keeps one id), utterance id = `<speaker>-<clip name without extension>`, text =
    `normalize_cv_sentence(sentence)` (clips whose sentence normalises to nothing are left out,
    with a warning), `utt2lang` = `lang`, `utt2dur` from the audio headers. `clips/` may hold
    clips no tsv lists (other.tsv, invalidated.tsv), so only tsv rows without a clip are errors.

    Args:
        root: the language folder (`cv-corpus-*/de`) or the folder holding it.
        lang: the Common Voice locale (`de`, `zh-CN`), written to `utt2lang`.
        out_dir: where the data dirs go.
        splits: which tsv files to read; a missing or empty one is skipped with a warning, none
            at all is an error.
        overwrite: replace existing data dirs (otherwise they are kept and skipped).
        num_workers: threads reading audio headers.

    Returns:
        the data dirs written or kept.

    Raises:
        AsrkitError: missing folder or tsv, bad tsv row, tsv row without a clip, unreadable audio.
    """
    if not lang or any(c.isspace() or c == "/" for c in lang):
        raise AsrkitError(f"bad Common Voice language '{lang}'")
    cv_dir = find_cv_dir(root, lang)
    clips_dir = cv_dir / "clips"
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for split in splits:
        tsv = cv_dir / f"{split}.tsv"
        if not tsv.is_file():
            logger.warning("%s does not exist; skipping the %s split", tsv, split)
            continue
        rows[split] = read_cv_tsv(tsv)
    if not rows:
        raise AsrkitError(f"{cv_dir}: none of {', '.join(s + '.tsv' for s in splits)} exists")
    spk_of = speaker_ids({client for r in rows.values() for client, _, _ in r})
    out_dir = Path(out_dir)
    done: list[Path] = []
    for split, split_rows in rows.items():
        dest = out_dir / f"cv_{lang}_{split}"
        if output_exists(dest, overwrite):
            done.append(dest)
            continue
        utt2clip: dict[str, Path] = {}
        text: dict[str, str] = {}
        utt2spk: dict[str, str] = {}
        empty = []
        for client, clip, sentence in split_rows:
            spk = spk_of[client]
            utt = f"{spk}-{Path(clip).stem}"
            words = normalize_cv_sentence(sentence)
            if not words:
                empty.append(utt)
                continue
            utt2clip[utt] = clips_dir / clip
            text[utt] = words
            utt2spk[utt] = spk
        if empty:
            logger.warning("%s.tsv: %d clip(s) with no words after normalisation left out (first: %s)",
                           cv_dir / split, len(empty), ", ".join(sorted(empty)[:5]))
        if not text:
            logger.warning("%s.tsv: no utterances; no data dir written for %s", cv_dir / split, split)
            continue
        present = {u for u, p in utt2clip.items() if p.is_file()}
        check_pairing(present, utt2clip, f"{cv_dir / split}.tsv (clips in {clips_dir})",
                      check_audio_without_transcript=False)
        infos = probe_audio(utt2clip, num_workers, desc=f"reading Common Voice {lang} {split} headers")
        tables = {
            "wav.scp": {u: os.path.abspath(p) for u, p in utt2clip.items()},
            "text": text,
            "utt2spk": utt2spk,
            "utt2lang": {u: lang for u in text},
            "utt2dur": {u: format_duration(infos[u].duration) for u in text},
        }
        # Many scripts need format characters (ZWNJ in Persian, ZWJ in Indic scripts) that
        # Kaldi's check calls non-printable; ESPnet validates Common Voice with --non-print too.
        done.append(write_data_dir(dest, tables, overwrite=overwrite, validate_options={"non_print": True}))
    return done
