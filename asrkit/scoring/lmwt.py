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
# The sweep files of an earlier grid, so that a smaller grid does not leave stale scores behind.
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
    """
    decode_dir = Path(decode_dir)
    nbest = read_nbest(decode_dir / NBEST_DIR)
    for old in decode_dir.iterdir():
        if _SWEEP_NAME.fullmatch(old.name):
            old.unlink()
    best: tuple[str, ErrorStats] | None = None
    for weight in lm_weights:
        for penalty in word_penalties:
            hyp = {utt: " ".join(words) for utt, words in best_hypotheses(nbest, weight, penalty).items()}
            if hyp_filter is not None:
                hyp = hyp_filter(hyp)
            stats = compute_wer(ref, {k: split_words(v) for k, v in hyp.items()}, mode=mode,
                                hyp_name=str(decode_dir / NBEST_DIR / "text"))
            name = sweep_name(weight, penalty)
            atomic_write_text(decode_dir / name, stats.compute_wer_output())
            if best is None or stats.wer < best[1].wer:
                best = (name, stats)
    name, stats = best
    line = stats.compute_wer_output().split("\n", 1)[0]
    atomic_write_text(decode_dir / BEST_WER, f"{line} {(decode_dir / name).as_posix()}\n")
    return best


__all__ = ["BEST_WER", "DEFAULT_LM_WEIGHTS", "DEFAULT_WORD_PENALTIES", "NbestEntry", "best_hypotheses",
           "parse_grid", "read_nbest", "score_lm_weights", "sweep_name"]
