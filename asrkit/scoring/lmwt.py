"""Scoring over LM weights and word insertion penalties, as Kaldi's local/score.sh does it: the
decode's n-best lists (`DIR/nbest/{text,ac_cost,lm_cost}`, keyed `<utt>-<n>`, written by
`asrkit decode --lm`) are rescored for every weight W and penalty P of a grid,

    cost = ac_cost + W * lm_cost + P * words

the cheapest hypothesis of each utterance is scored into `DIR/wer_<W>_<P>` (compute-wer's output,
the names Kaldi's sweep gives), and the best of the grid goes to `DIR/best_wer` in the line format
of `utils/best_wer.sh` (`%WER 4.60 [ 379 / 8234, 53 ins, 37 del, 289 sub ] DIR/wer_1.5_0.5`).

Rescoring an n-best list approximates decoding again with each weight: the list holds what the
decode's beam found with its own weight, so far-away weights can only choose among those.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asrkit.errors import ConfigError, FormatError
from asrkit.fileio import atomic_write_text
from asrkit.kaldi.textio import read_table
from asrkit.scoring.wer import ErrorStats, compute_wer, split_words

NBEST_DIR = "nbest"
DEFAULT_LM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
DEFAULT_WORD_PENALTIES = (0.0, 0.5, 1.0)
BEST_WER = "best_wer"
# What the last sweep wrote (`<sha256> <name>` lines), so that the next one removes exactly those
# files, and only while they still hold what asrkit wrote: a Kaldi sweep's wer_10_0.5, or a file a
# user put there under such a name, is never removed.
SWEEP_RECORD = ".wer_sweep"
_SWEEP_NAME = re.compile(r"wer_-?\d+(?:\.\d+)?_-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class NbestEntry:
    """One n-best hypothesis: its words and costs (-log probabilities, natural log)."""

    words: tuple[str, ...]
    ac_cost: float
    lm_cost: float


def read_nbest(nbest_dir: str | os.PathLike) -> dict[str, list[NbestEntry]]:
    """Read `nbest_dir/{text,ac_cost,lm_cost}` into `{utt: [entries in rank order]}`.

    Raises:
        FormatError: a key without `-<n>`, a cost that is not a number, or keys that differ
            between the three tables (naming the file).
    """
    nbest_dir = Path(nbest_dir)
    text = read_table(nbest_dir / "text")
    costs = {name: read_table(nbest_dir / name, num_fields=2) for name in ("ac_cost", "lm_cost")}
    out: dict[str, list[tuple[int, NbestEntry]]] = {}
    for key, words in text.items():
        utt, sep, rank = key.rpartition("-")
        if not sep or not rank.isdigit():
            raise FormatError(nbest_dir / "text", f"n-best key '{key}' is not <utt>-<n>")
        values = []
        for name, table in costs.items():
            if key not in table:
                raise FormatError(nbest_dir / name, f"no cost for '{key}' of {nbest_dir / 'text'}")
            try:
                values.append(float(table[key]))
            except ValueError:
                raise FormatError(nbest_dir / name, f"cost of '{key}' is not a number") from None
        out.setdefault(utt, []).append((int(rank), NbestEntry(tuple(split_words(words)), *values)))
    return {utt: [e for _, e in sorted(entries, key=lambda x: x[0])] for utt, entries in out.items()}


def best_hypotheses(nbest: Mapping[str, Sequence[NbestEntry]], lm_weight: float,
                    word_penalty: float) -> dict[str, list[str]]:
    """The cheapest entry of each utterance under `ac_cost + lm_weight * lm_cost + word_penalty * words`
    (the earlier rank on a tie)."""
    out = {}
    for utt, entries in nbest.items():
        best = min(entries, key=lambda e: e.ac_cost + lm_weight * e.lm_cost + word_penalty * len(e.words))
        out[utt] = list(best.words)
    return out


def sweep_name(lm_weight: float, word_penalty: float) -> str:
    return f"wer_{lm_weight:g}_{word_penalty:g}"


def parse_grid(values: str, what: str) -> tuple[float, ...]:
    """`"0,0.5,1"` -> (0.0, 0.5, 1.0). Raises ConfigError on an empty list or a non-number."""
    try:
        grid = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, got '{values}'") from None
    if not grid:
        raise ConfigError(f"{what}: no values in '{values}'")
    return grid


def score_lm_weights(ref: Mapping[str, list[str]], decode_dir: str | os.PathLike, *,
                     lm_weights: Sequence[float] = DEFAULT_LM_WEIGHTS,
                     word_penalties: Sequence[float] = DEFAULT_WORD_PENALTIES, mode: str = "present",
                     hyp_filter: Callable[[dict[str, str]], dict[str, str]] | None = None) -> tuple[str, ErrorStats]:
    """Rescore `decode_dir/nbest` over the grid, write `wer_<W>_<P>` and `best_wer`; returns the best
    file's name and its ErrorStats (the first in grid order on a tie, as best_wer.sh's sort keeps).

    Args:
        ref: `{utt: reference words}` (already filtered as the caller scores them).
        decode_dir: a decode dir with `nbest/`.
        lm_weights, word_penalties: the grid.
        mode: compute-wer's mode.
        hyp_filter: applied to each grid point's `{utt: text}` (the caller's `--filter`).

    Raises:
        FormatError: bad n-best tables (see `read_nbest`).
        ConfigError: a file of the grid's names (or `best_wer`) that asrkit did not write is in the
            way (nothing is written then).
    """
    decode_dir = Path(decode_dir)
    nbest = read_nbest(decode_dir / NBEST_DIR)
    earlier = _earlier_sweep(decode_dir)
    names = [sweep_name(w, p) for w in lm_weights for p in word_penalties] + [BEST_WER]
    for name in names:
        if (decode_dir / name).is_file() and not (name in earlier and _is_ours(decode_dir / name, earlier[name])):
            raise ConfigError(f"{decode_dir / name}: not written by asrkit score (or changed since), and the "
                              "sweep would replace it; move it away first")
    # Recorded before writing: a sweep cut off midway leaves every file it may have written listed.
    _write_sweep_record(decode_dir, {**earlier, **{n: "" for n in names}})
    written: dict[str, str] = {}
    best: tuple[str, ErrorStats] | None = None
    for weight in lm_weights:
        for penalty in word_penalties:
            hyp = {utt: " ".join(words) for utt, words in best_hypotheses(nbest, weight, penalty).items()}
            if hyp_filter is not None:
                hyp = hyp_filter(hyp)
            stats = compute_wer(ref, {k: split_words(v) for k, v in hyp.items()}, mode=mode,
                                hyp_name=str(decode_dir / NBEST_DIR / "text"))
            name = sweep_name(weight, penalty)
            written[name] = _write(decode_dir / name, stats.compute_wer_output())
            if best is None or stats.wer < best[1].wer:
                best = (name, stats)
    name, stats = best
    line = stats.compute_wer_output().split("\n", 1)[0]
    written[BEST_WER] = _write(decode_dir / BEST_WER, f"{line} {(decode_dir / name).as_posix()}\n")
    remove_sweep(decode_dir, keep=written)
    return best


def remove_sweep(decode_dir: str | os.PathLike, *, keep: Mapping[str, str] | None = None) -> list[str]:
    """Remove what an earlier sweep of asrkit wrote into `decode_dir` (`wer_<W>_<P>`, `best_wer`), except
    the names in `keep`, and record `keep` (`{name: sha256 of its content}`) as the sweep now in place.
    Returns the names removed.

    Only asrkit's own files go: those its record lists with the content it wrote (a file changed
    since stays). A decode dir scored before asrkit kept the record has its `wer_<W>_<P>` files
    recognised by their content (compute-wer's three lines, which Kaldi's sweep files do not start
    with: they start with the command line).
    """
    decode_dir = Path(decode_dir)
    keep = dict(keep or {})
    removed = []
    for name, digest in sorted(_earlier_sweep(decode_dir).items()):
        path = decode_dir / name
        if name not in keep and path.is_file() and _is_ours(path, digest):
            path.unlink()
            removed.append(name)
    if keep:
        _write_sweep_record(decode_dir, keep)
    else:
        (decode_dir / SWEEP_RECORD).unlink(missing_ok=True)
    return removed


def _write(path: Path, text: str) -> str:
    atomic_write_text(path, text)
    return _digest(text.encode())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_ours(path: Path, digest: str) -> bool:
    """Whether a file of the sweep's record still holds what asrkit wrote: its recorded digest; where
    none was recorded ("": a sweep cut off before it wrote the file, or a dir scored before the
    record), asrkit's format: compute-wer's three lines for `wer_<W>_<P>`, and for `best_wer` one
    %WER line naming a sweep file of this dir."""
    if digest:
        return _digest(path.read_bytes()) == digest
    lines = path.read_text(errors="replace").splitlines()
    if path.name == BEST_WER:
        head, _, named = lines[0].rpartition(" ") if len(lines) == 1 else ("", "", "")
        return (head.startswith("%WER ") and Path(named).parent == path.parent
                and _SWEEP_NAME.fullmatch(Path(named).name) is not None)
    return (len(lines) == 3 and lines[0].startswith("%WER ") and lines[1].startswith("%SER ")
            and lines[2].startswith("Scored "))


def _earlier_sweep(decode_dir: Path) -> dict[str, str]:
    """`{name: digest}` of the earlier sweep ("" where it was listed but not yet written); without a
    record, the `wer_<W>_<P>` files and `best_wer` in asrkit's format (scored before the record was
    kept). A file not listed here is never asrkit's to replace or remove."""
    path = decode_dir / SWEEP_RECORD
    if not path.is_file():
        found = [p for p in (*decode_dir.glob("wer_*_*"), decode_dir / BEST_WER)
                 if (p.name == BEST_WER or _SWEEP_NAME.fullmatch(p.name)) and p.is_file()]
        return {p.name: "" for p in found if _is_ours(p, "")}
    out = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition(" ")
        if name == BEST_WER or _SWEEP_NAME.fullmatch(name):  # never a path outside the decode dir
            out[name] = "" if digest == "-" else digest
    return out


def _write_sweep_record(decode_dir: Path, entries: Mapping[str, str]) -> None:
    atomic_write_text(decode_dir / SWEEP_RECORD, "".join(f"{d or '-'} {n}\n" for n, d in sorted(entries.items())))


__all__ = ["BEST_WER", "DEFAULT_LM_WEIGHTS", "DEFAULT_WORD_PENALTIES", "NbestEntry", "best_hypotheses",
           "parse_grid", "read_nbest", "remove_sweep", "score_lm_weights", "sweep_name"]
