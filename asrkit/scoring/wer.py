"""Word and character error rates with Kaldi's exact numbers: compute-wer's counts and align-text's alignment.

Kaldi breaks ties between equally cheap edit sequences in two different ways: `compute-wer`
(`LevenshteinEditDistance` in `src/util/edit-distance-inl.h`) prefers an insertion over a
substitution when both cost the same, while `align-text` (`LevenshteinAlignment`) prefers
correct/substitution, then deletion, then insertion. jiwer (rapidfuzz) finds the same total number of
errors but splits it into ins/del/sub its own way (ref `b b c`, hyp `c a`: compute-wer says 1 ins,
2 del, 0 sub; jiwer 0 ins, 1 del, 2 sub), so `wer` files would not match Kaldi's byte for byte.
This module therefore fills one Levenshtein cost table per utterance and traces it back twice, with
each of Kaldi's two tie-breaking rules.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from asrkit.errors import AsrkitError, ConfigError

EPS = "<eps>"
"""What `align-text` writes opposite an inserted or deleted word."""

MODES = ("present", "all", "strict")
"""compute-wer's `--mode` values: score only utterances with a hypothesis / count a missing one as
empty (all deletions) / fail when one is missing."""

# Kaldi reads tokens separated by ASCII whitespace only; str.split() would also split on U+3000 etc.
_KALDI_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")


def split_words(transcript: str) -> list[str]:
    """Split a transcript into words the way Kaldi's token reader does (ASCII whitespace only)."""
    return [w for w in _KALDI_WHITESPACE.split(transcript) if w]


def to_chars(words: Iterable[str]) -> list[str]:
    """Characters (Unicode code points) of a transcript with the spaces removed, for CER.

    This is what Kaldi's `steps/scoring/score_kaldi_cer.sh` feeds to compute-wer
    (`perl -CSDA ... split(//, $word)`): `["ni3hao", "ma"]` -> `["n", "i", "3", "h", "a", "o", "m", "a"]`.
    """
    return [c for w in words for c in w]


@dataclass(frozen=True)
class EditCounts:
    """Edit operations turning a reference into a hypothesis.

    Attributes:
        ins, dels, subs: inserted, deleted and substituted words.
        correct: reference words matched unchanged.
    """

    ins: int = 0
    dels: int = 0
    subs: int = 0
    correct: int = 0

    @property
    def errors(self) -> int:
        """Total number of errors, ins + dels + subs (the Levenshtein distance)."""
        return self.ins + self.dels + self.subs

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(self.ins + other.ins, self.dels + other.dels, self.subs + other.subs,
                          self.correct + other.correct)


def _cost_table(ref: Sequence[str], hyp: Sequence[str]) -> list[list[int]]:
    """Levenshtein costs: table[m][n] = edit distance of ref[:m] and hyp[:n] (unit costs)."""
    n_hyp = len(hyp)
    prev = list(range(n_hyp + 1))
    table = [prev]
    for m, word in enumerate(ref, start=1):
        cur = [m] * (n_hyp + 1)
        for n in range(1, n_hyp + 1):
            best = prev[n - 1] + (word != hyp[n - 1])
            deletion = prev[n] + 1
            if deletion < best:
                best = deletion
            insertion = cur[n - 1] + 1
            if insertion < best:
                best = insertion
            cur[n] = best
        table.append(cur)
        prev = cur
    return table


def edit_counts(ref: Sequence[str], hyp: Sequence[str]) -> EditCounts:
    """Count insertions, deletions and substitutions exactly as Kaldi's compute-wer does.

    Args:
        ref: reference words (or characters).
        hyp: hypothesis words (or characters).

    Returns:
        the counts; `errors` is the Levenshtein distance. On ties compute-wer takes a substitution
        only when it is strictly cheaper than both alternatives, then a deletion when strictly
        cheaper than an insertion, else an insertion.
    """
    if list(ref) == list(hyp):
        return EditCounts(correct=len(ref))
    table = _cost_table(ref, hyp)
    m, n = len(ref), len(hyp)
    ins = dels = subs = correct = 0
    # Walk back through the predecessor each cell of compute-wer's forward recursion copied its
    # counts from: same choices, same counts.
    while m > 0 and n > 0:
        differ = ref[m - 1] != hyp[n - 1]
        sub_cost = table[m - 1][n - 1] + differ
        del_cost = table[m - 1][n] + 1
        ins_cost = table[m][n - 1] + 1
        if sub_cost < ins_cost and sub_cost < del_cost:
            if differ:
                subs += 1
            else:
                correct += 1
            m -= 1
            n -= 1
        elif del_cost < ins_cost:
            dels += 1
            m -= 1
        else:
            ins += 1
            n -= 1
    return EditCounts(ins=ins + n, dels=dels + m, subs=subs, correct=correct)


def align(ref: Sequence[str], hyp: Sequence[str], eps: str = EPS) -> list[tuple[str, str]]:
    """Align two word sequences exactly as Kaldi's `align-text` does.

    Args:
        ref: reference words.
        hyp: hypothesis words.
        eps: the symbol paired with an inserted or deleted word.

    Returns:
        `(ref_word, hyp_word)` pairs in order: `(w, w)` correct, `(a, b)` substitution, `(eps, b)`
        insertion, `(a, eps)` deletion. Ties prefer correct/substitution, then deletion, then insertion.
    """
    return [(eps if r is None else r, eps if h is None else h) for r, h in _align_pairs(ref, hyp)]


def _align_pairs(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str | None, str | None]]:
    # None marks the empty side, so a word that happens to equal the eps symbol is still classified right.
    table = _cost_table(ref, hyp)
    m, n = len(ref), len(hyp)
    pairs: list[tuple[str | None, str | None]] = []
    while m > 0 or n > 0:
        if m == 0:
            n -= 1
            pairs.append((None, hyp[n]))
        elif n == 0:
            m -= 1
            pairs.append((ref[m], None))
        else:
            sub_cost = table[m - 1][n - 1] + (ref[m - 1] != hyp[n - 1])
            del_cost = table[m - 1][n] + 1
            ins_cost = table[m][n - 1] + 1
            if sub_cost <= min(del_cost, ins_cost):
                m -= 1
                n -= 1
                pairs.append((ref[m], hyp[n]))
            elif del_cost <= ins_cost:
                m -= 1
                pairs.append((ref[m], None))
            else:
                n -= 1
                pairs.append((None, hyp[n]))
    pairs.reverse()
    return pairs


def alignment_ops(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str | None, str | None, str]]:
    """align-text's alignment with the operation of each pair.

    Returns:
        `(ref_word or None, hyp_word or None, op)` triples, op one of `C S I D` (correct,
        substitution, insertion, deletion), as `utils/scoring/wer_per_utt_details.pl` labels them.
    """
    out = []
    for r, h in _align_pairs(ref, hyp):
        op = "I" if r is None else "D" if h is None else "C" if r == h else "S"
        out.append((r, h, op))
    return out


def format_align_text(key: str, pairs: Sequence[tuple[str, str]], separator: str = ";") -> str:
    """One line of `align-text ... ark,t:` output: `key r1 h1 ; r2 h2 ; ... rN hN \\n` (trailing space)."""
    tokens: list[str] = []
    for i, (r, h) in enumerate(pairs):
        if i:
            tokens.append(separator)
        tokens += [r, h]
    return key + " " + "".join(t + " " for t in tokens) + "\n"


def kaldi_percent(numerator: int, denominator: int) -> str:
    """`100 * numerator / denominator` printed as compute-wer prints it (single precision, 2 decimals).

    compute-wer stores the percentage in a float before printing it; rounding through float32
    here keeps the last digit identical. A zero denominator gives `0.00` when there are no errors
    either (Kaldi prints `-nan`, which `utils/best_wer.sh` would rank as best) and `inf` otherwise
    (as Kaldi does; best_wer.sh never picks it).
    """
    if denominator == 0:
        return "0.00" if numerator == 0 else "inf"
    value = struct.unpack("f", struct.pack("f", 100.0 * numerator / denominator))[0]
    return f"{value:.2f}"


@dataclass
class ErrorStats:
    """Totals over a set of utterances, as compute-wer prints them.

    Attributes:
        num_words: reference words (or characters) of the scored utterances.
        counts: ins/del/sub/correct summed over the scored utterances (compute-wer's split).
        num_sent: utterances scored.
        sent_errors: scored utterances whose hypothesis differs from the reference.
        absent_keys: reference utterances with no hypothesis, in reference order. In mode `all`
            they are scored as empty hypotheses; in mode `present` they are left out.
    """

    num_words: int = 0
    counts: EditCounts = field(default_factory=EditCounts)
    num_sent: int = 0
    sent_errors: int = 0
    absent_keys: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.counts.errors

    @property
    def partial(self) -> bool:
        """True when some reference utterance had no hypothesis (compute-wer's `[PARTIAL]`)."""
        return bool(self.absent_keys)

    @property
    def wer(self) -> float:
        """The error rate in percent, as printed (2 decimals; inf when there are errors but no words)."""
        return float(kaldi_percent(self.errors, self.num_words))

    @property
    def ser(self) -> float:
        """The sentence error rate in percent, as printed."""
        return float(kaldi_percent(self.sent_errors, self.num_sent))

    def add(self, ref: Sequence[str], hyp: Sequence[str] | None, counts: EditCounts | None = None,
            *, key: str = "", mode: str = "present") -> None:
        """Accumulate one utterance.

        Args:
            ref: its reference words (or characters).
            hyp: its hypothesis, or None when the hypothesis is missing.
            counts: `edit_counts(ref, hyp)` if already computed.
            key: the utterance id (recorded in `absent_keys` when `hyp` is None).
            mode: `present` leaves a missing hypothesis out; `all` scores it as empty; `strict`
                must not be given a missing one (checked by `compute_wer`).
        """
        if hyp is None:
            self.absent_keys.append(key)
            if mode == "present":
                return
            hyp = []
            counts = EditCounts(dels=len(ref))
        if counts is None:
            counts = edit_counts(ref, hyp)
        self.num_words += len(ref)
        self.counts = self.counts + counts
        self.num_sent += 1
        self.sent_errors += list(ref) != list(hyp)

    def compute_wer_output(self) -> str:
        """The three lines compute-wer prints, each ending in a newline.

        Example: `%WER 50.00 [ 6 / 12, 3 ins, 1 del, 2 sub ]`, `%SER 100.00 [ 3 / 3 ]`,
        `Scored 3 sentences, 0 not present in hyp.` (` [PARTIAL]` ends the first line when hypotheses
        are missing).
        """
        c = self.counts
        partial = " [PARTIAL]" if self.partial else ""
        return (f"%WER {kaldi_percent(c.errors, self.num_words)} [ {c.errors} / {self.num_words}, "
                f"{c.ins} ins, {c.dels} del, {c.subs} sub ]{partial}\n"
                f"%SER {kaldi_percent(self.sent_errors, self.num_sent)} [ {self.sent_errors} / {self.num_sent} ]\n"
                f"Scored {self.num_sent} sentences, {len(self.absent_keys)} not present in hyp.\n")


def check_mode(mode: str) -> None:
    """Raise ConfigError unless `mode` is one of compute-wer's modes."""
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {'|'.join(MODES)}, got '{mode}'")


def compute_wer(ref: dict[str, Sequence[str]], hyp: dict[str, Sequence[str]], *,
                mode: str = "present", hyp_name: str = "hyp") -> ErrorStats:
    """Score hypotheses against references, like `compute-wer --text --mode=MODE ark:ref ark:hyp`.

    Args:
        ref: `{utt_id: words}` in reference order.
        hyp: `{utt_id: words}`; ids not in `ref` are ignored, as compute-wer ignores them.
        mode: `present`, `all` or `strict` (see `MODES`).
        hyp_name: how the hypotheses are named in an error message (e.g. their file).

    Returns:
        the totals; `compute_wer_output()` gives compute-wer's exact text.

    Raises:
        ConfigError: unknown mode.
        AsrkitError: mode `strict` and a reference utterance has no hypothesis.
    """
    check_mode(mode)
    stats = ErrorStats()
    for key, ref_words in ref.items():
        hyp_words = hyp.get(key)
        if hyp_words is None and mode == "strict":
            raise_missing_strict(key, hyp_name)
        stats.add(ref_words, hyp_words, key=key, mode=mode)
    return stats


def raise_missing_strict(key: str, hyp_name: str) -> None:
    """Raise the error compute-wer's strict mode gives for a reference utterance without hypothesis."""
    raise AsrkitError(f"{hyp_name}: no hypothesis for utterance '{key}' (--mode strict)")
