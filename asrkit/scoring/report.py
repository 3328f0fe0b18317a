"""Score a decode dir into Kaldi's report files: `wer`, `wer_<lang>`, `cer`, `cer_<lang>`, `per_utt`.

`wer*` and `cer*` hold compute-wer's exact output, so `grep WER exp/*/decode*/wer* | utils/best_wer.sh`
works unchanged. CER files keep the `%WER` label, as Kaldi's `steps/scoring/score_kaldi_cer.sh`
(compute-wer run on characters) and icefall's `errs-*` files do: the file name says it is a CER.
`per_utt` follows `utils/scoring/wer_per_utt_details.pl` as run by `steps/scoring/score_kaldi_wer.sh`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asrkit.errors import AsrkitError, DataDirError, FormatError
from asrkit.fileio import atomic_write_text
from asrkit.kaldi.textio import read_table
from asrkit.logutil import get_logger
from asrkit.scoring.lmwt import (
    DEFAULT_LM_WEIGHTS,
    DEFAULT_WORD_PENALTIES,
    NBEST_DIR,
    remove_sweep,
    score_lm_weights,
)
from asrkit.scoring.wer import (
    ErrorStats,
    alignment_ops,
    check_mode,
    edit_counts,
    raise_missing_strict,
    split_words,
    to_chars,
)

NO_SPACE_LANGUAGES = frozenset({
    # Chinese (macrolanguage, Mandarin, Cantonese, Wu, Min Nan, Hakka, Gan, Xiang, Jin)
    "zh", "zho", "chi", "cmn", "yue", "wuu", "nan", "hak", "gan", "hsn", "cjy",
    "ja", "jpn",  # Japanese
    "th", "tha",  # Thai
    "lo", "lao",  # Lao
    "km", "khm",  # Khmer
    "my", "mya", "bur",  # Burmese
    "bo", "bod", "tib",  # Tibetan
    "dz", "dzo",  # Dzongkha
})
"""Languages written without spaces between words: scored by CER by default.

Matched on the primary subtag of the utt2lang value, case-insensitively, so `zh`, `zh-CN`, `zh_TW`,
`cmn_hans_cn` (FLEURS) and `ja_jp` all count; ISO 639-1 and 639-2/3 codes are both listed."""

PER_UTT_EPS = "***"
"""The empty-side symbol in `per_utt`: score_kaldi_wer.sh runs align-text with `--special-symbol '***'`."""

_LANGUAGE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

_log = get_logger(__name__)


def is_no_space_language(lang: str) -> bool:
    """True if `lang` (an utt2lang value) names a language in `NO_SPACE_LANGUAGES`."""
    primary = lang.strip().lower().replace("_", "-").split("-")[0]
    return primary in NO_SPACE_LANGUAGES


@dataclass
class _Utt:
    key: str
    ref: list[str]
    hyp: list[str] | None  # None: no hypothesis
    lang: str | None


def score_decode_dir(data_dir: str | os.PathLike, decode_dir: str | os.PathLike, *, cer: bool | None = None,
                     filter_cmd: str | None = None, mode: str = "present",
                     lm_weights: Sequence[float] = DEFAULT_LM_WEIGHTS,
                     word_penalties: Sequence[float] = DEFAULT_WORD_PENALTIES) -> dict[str, ErrorStats]:
    """Score `decode_dir/text` against `data_dir/text` and write Kaldi-format reports into `decode_dir`.

    Files written (each atomically, and only after every number was computed):
        `wer`: compute-wer's output over all utterances.
        `wer_<lang>`: the same per language of `data_dir/utt2lang`, when that file exists.
        `cer`, `cer_<lang>`: the same on characters with spaces removed. `cer=True` writes all of
            them, `cer=False` none; `cer=None` writes `cer_<lang>` for the languages in
            `NO_SPACE_LANGUAGES`, and `cer` too when every utterance is in one of them (without
            utt2lang the language is unknown and no CER is written).
        `per_utt`: for each scored utterance, in reference order, the lines `<utt> ref ...`,
            `<utt> hyp ...`, `<utt> op ...` (C S I D) and `<utt> #csid <c> <s> <i> <d>`, as
            `utils/scoring/wer_per_utt_details.pl` writes them from align-text's alignment.
        `wer_<W>_<P>`, `best_wer`: when the decode dir has n-best lists (`asrkit decode --lm`),
            their rescoring over LM weights W and word penalties P (asrkit.scoring.lmwt).

    Args:
        data_dir: data dir with `text` (and optionally `utt2lang`).
        decode_dir: decode dir with `text` (the hypotheses; a key alone is an empty hypothesis).
        cer: see above.
        filter_cmd: shell command run on both the reference and the hypothesis text (`key words`
            lines on stdin, the same keys on stdout), like Kaldi's `local/wer_output_filter`.
        mode: compute-wer's `--mode`: `present` scores only utterances with a hypothesis (the
            reports say `[PARTIAL]` when some are missing), `all` counts a missing hypothesis as
            empty (all deletions, also `[PARTIAL]`), `strict` fails when one is missing.
            Hypotheses for utterances not in the reference are ignored, as compute-wer ignores
            them, and logged as a warning.
        lm_weights, word_penalties: the grid for the n-best rescoring.

    Returns:
        `{file_name: ErrorStats}` for every file written except `per_utt`, e.g. `{"wer": ...,
        "wer_en": ..., "cer_zh": ...}`, and of the n-best rescoring only the best `wer_<W>_<P>`. `ErrorStats.absent_keys` lists the missing hypotheses.

    Raises:
        ConfigError: unknown mode.
        AsrkitError: a text file is missing; `filter_cmd` fails or changes the keys; mode strict
            and a hypothesis is missing; mode present and no reference utterance has a hypothesis.
        FormatError: a bad line in `text` or `utt2lang`.
        DataDirError: an utterance of `text` has no language in `utt2lang`.
    """
    check_mode(mode)
    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    ref_path, hyp_path = data_dir / "text", decode_dir / "text"
    ref_text = _read_text(ref_path)
    hyp_text = _read_text(hyp_path)
    if filter_cmd:
        ref_text = apply_filter(filter_cmd, ref_text, source=ref_path)
        hyp_text = apply_filter(filter_cmd, hyp_text, source=hyp_path)
    if not ref_text:
        raise FormatError(ref_path, "no utterances to score")

    utt2lang = _read_utt2lang(data_dir / "utt2lang", ref_text)
    utts = [_Utt(key, split_words(value), None if key not in hyp_text else split_words(hyp_text[key]),
                 None if utt2lang is None else utt2lang[key])
            for key, value in ref_text.items()]

    absent = [u.key for u in utts if u.hyp is None]
    if absent and mode == "strict":
        raise_missing_strict(absent[0], str(hyp_path))
    if absent:
        _log.warning("%d of %d utterances in %s have no hypothesis in %s (%s); mode %s: %s",
                     len(absent), len(utts), ref_path, hyp_path, _first_keys(absent), mode,
                     "left out" if mode == "present" else "scored as empty")
    if mode == "present" and len(absent) == len(utts):
        raise AsrkitError(f"{hyp_path}: none of the {len(utts)} utterances of {ref_path} has a hypothesis "
                          f"(first reference id '{utts[0].key}')")
    extra = [k for k in hyp_text if k not in ref_text]
    if extra:
        _log.warning("%d hypotheses in %s have no reference in %s and are ignored (%s)",
                     len(extra), hyp_path, ref_path, _first_keys(extra))

    reports = _compute_reports(utts, cer=cer, mode=mode)
    per_utt = format_per_utt(((u.key, u.ref, u.hyp) for u in utts), mode=mode)

    for name, stats in reports.items():
        atomic_write_text(decode_dir / name, stats.compute_wer_output())
    atomic_write_text(decode_dir / "per_utt", per_utt)
    if (decode_dir / NBEST_DIR / "text").is_file():
        hyp_filter = (lambda h: apply_filter(filter_cmd, h, source=decode_dir / NBEST_DIR)) if filter_cmd else None
        name, stats = score_lm_weights({u.key: u.ref for u in utts}, decode_dir, lm_weights=lm_weights,
                                       word_penalties=word_penalties, mode=mode, hyp_filter=hyp_filter)
        reports[name] = stats
        _log.info("n-best over %d LM weights x %d word penalties: best %s", len(lm_weights), len(word_penalties),
                  name)
    else:  # decoded again without --lm: an earlier sweep's scores would pass for this decode's
        for stale in remove_sweep(decode_dir):
            _log.info("removed %s of an earlier decode with n-best lists", decode_dir / stale)
    wer = reports["wer"]
    _log.info("scored %d utterances of %s: %s", wer.num_sent, decode_dir, wer.compute_wer_output().split("\n")[0])
    return reports


def _compute_reports(utts: Sequence[_Utt], *, cer: bool | None, mode: str) -> dict[str, ErrorStats]:
    # Edit counts are computed once per utterance and summed into every report that includes it.
    languages = sorted({u.lang for u in utts if u.lang is not None})
    cer_langs: list[str] = []
    cer_all = False
    if cer is True:
        cer_langs, cer_all = languages, True
    elif cer is None and languages:
        cer_langs = [lang for lang in languages if is_no_space_language(lang)]
        cer_all = len(cer_langs) == len(languages)

    word_reports = {"wer": ErrorStats(), **{f"wer_{lang}": ErrorStats() for lang in languages}}
    char_reports = {}
    if cer_all:
        char_reports["cer"] = ErrorStats()
    char_reports.update({f"cer_{lang}": ErrorStats() for lang in cer_langs})

    for u in utts:
        counts = None if u.hyp is None else edit_counts(u.ref, u.hyp)
        suffixes = ["", f"_{u.lang}"] if u.lang is not None else [""]
        for name in (f"wer{s}" for s in suffixes):
            word_reports[name].add(u.ref, u.hyp, counts, key=u.key, mode=mode)
        char_names = [f"cer{s}" for s in suffixes if f"cer{s}" in char_reports]
        if char_names:
            ref_chars = to_chars(u.ref)
            hyp_chars = None if u.hyp is None else to_chars(u.hyp)
            char_counts = None if hyp_chars is None else edit_counts(ref_chars, hyp_chars)
            for name in char_names:
                char_reports[name].add(ref_chars, hyp_chars, char_counts, key=u.key, mode=mode)
    return {**word_reports, **char_reports}


def format_per_utt(utts: Iterable[tuple[str, Sequence[str], Sequence[str] | None]], *,
                   mode: str = "present", eps: str = PER_UTT_EPS) -> str:
    """Kaldi's `wer_details/per_utt` text for the scored utterances.

    Args:
        utts: `(utt_id, ref_words, hyp_words or None)` in the order to write them.
        mode: `present` leaves utterances without hypothesis out (as Kaldi's align-text does);
            `all` and `strict` show them as empty hypotheses (all deletions).
        eps: the symbol shown opposite an inserted or deleted word.

    Returns:
        four lines per utterance, columns centred as wer_per_utt_details.pl does, e.g.::

            u1 ref  the  cat  ***
            u1 hyp  the  dog  sat
            u1 op    C    S    I
            u1 #csid 1 1 1 0
    """
    lines: list[str] = []
    for key, ref, hyp in utts:
        if hyp is None and mode == "present":
            continue
        ops = alignment_ops(ref, hyp or [])
        refs, hyps, opcol = [], [], []
        tally = dict.fromkeys("CSID", 0)
        for r, h, op in ops:
            r = eps if r is None else r
            h = eps if h is None else h
            width = max(len(r), len(h), len(op))
            refs.append(_centre(r, width))
            hyps.append(_centre(h, width))
            opcol.append(_centre(op, width))
            tally[op] += 1
        lines.append(f"{key} ref  " + "  ".join(refs))
        lines.append(f"{key} hyp  " + "  ".join(hyps))
        lines.append(f"{key} op   " + "  ".join(opcol))
        lines.append(f"{key} #csid {tally['C']} {tally['S']} {tally['I']} {tally['D']}")
    return "".join(line + "\n" for line in lines)


def _centre(text: str, width: int) -> str:
    # wer_per_utt_details.pl's cjustify: the odd space goes to the left.
    right = (width - len(text)) // 2
    left = width - len(text) - right
    return " " * left + text + " " * right


def apply_filter(filter_cmd: str, text: Mapping[str, str], *, source: str | os.PathLike = "text") -> dict[str, str]:
    """Run a transcript filter (`key words` lines in, the same keys out), like `local/wer_output_filter`.

    Args:
        filter_cmd: a shell command reading stdin and writing stdout, e.g. `sed s/um//g`.
        text: `{utt_id: transcript}`.
        source: the file `text` came from, for error messages.

    Returns:
        the filtered `{utt_id: transcript}`, in the order the command wrote it.

    Raises:
        AsrkitError: the command exits non-zero, writes an unreadable line, or adds, drops or
            repeats a key; the message names the command.
    """
    stdin = "".join(f"{k} {v}\n" if v else f"{k}\n" for k, v in text.items())
    try:
        proc = subprocess.run(filter_cmd, shell=True, input=stdin.encode("utf-8"), capture_output=True)
    except OSError as e:
        raise AsrkitError(f"filter command '{filter_cmd}' could not run on {source}: {e}") from None
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.decode("utf-8", "replace").split())
        raise AsrkitError(f"filter command '{filter_cmd}' failed on {source} (exit status {proc.returncode})"
                          + (f": {detail[-300:]}" if detail else ""))
    try:
        out = proc.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise AsrkitError(f"filter command '{filter_cmd}' wrote invalid UTF-8 for {source}") from None
    filtered: dict[str, str] = {}
    for lineno, line in enumerate(out.splitlines(), start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            raise AsrkitError(f"filter command '{filter_cmd}' wrote an empty line {lineno} for {source}; "
                              f"it must keep the utterance id at the start of every line")
        if parts[0] in filtered:
            raise AsrkitError(f"filter command '{filter_cmd}' wrote utterance '{parts[0]}' twice for {source}")
        filtered[parts[0]] = parts[1] if len(parts) > 1 else ""
    if filtered.keys() != text.keys():
        lost = [k for k in text if k not in filtered]
        new = [k for k in filtered if k not in text]
        what = f"dropped {_first_keys(lost)}" if lost else f"made up {_first_keys(new)}"
        raise AsrkitError(f"filter command '{filter_cmd}' changed the utterance ids of {source}: {what}")
    return filtered


def _read_text(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise AsrkitError(f"{path}: no such file")
    return read_table(path)


def _read_utt2lang(path: Path, ref_text: Mapping[str, str]) -> dict[str, str] | None:
    if not path.is_file():
        return None
    utt2lang = read_table(path, num_fields=2)
    for lineno, (key, lang) in enumerate(utt2lang.items(), start=1):
        # The tag becomes part of a file name (wer_<lang>) that `asrkit results` must recognise.
        if not _LANGUAGE_TAG.fullmatch(lang):
            raise FormatError(path, f"language tag '{lang}' of '{key}' must be letters, digits, '_' or '-', "
                                    f"starting with a letter", lineno)
    for key in ref_text:
        if key not in utt2lang:
            raise DataDirError(f"{path}: no language for utterance '{key}' of {path.parent / 'text'}")
    return utt2lang


def _first_keys(keys: Sequence[str], n: int = 5) -> str:
    shown = " ".join(keys[:n])
    return shown + (f" ... ({len(keys) - n} more)" if len(keys) > n else "")

