"""Word n-gram language models in ARPA format: estimation from text and reading existing files.

`estimate_kneser_ney` is Kneser-Ney with one discount per order, D = n1 / (n1 + 2 n2), as Kaldi's
utils/lang/make_kn_lm.py and icefall's shared/make_kn_lm.py estimate it (backoff, not
interpolated: the same numbers as SRILM's `ngram-count -ukndiscount`), or interpolated on request;
the highest order uses raw counts, lower orders the number of distinct words seen before an n-gram
(except n-grams that start with <s>, which have no left context and keep raw counts). `word_loop`
is a bigram grammar of free word sequences (every word equally likely everywhere). `write_arpa`
writes the model as an ARPA backoff model with tab-separated fields, the layout KenLM reads. `read_arpa` checks an existing ARPA file (plain
or gzipped) line by line and returns its order, n-gram counts and words.
"""

from __future__ import annotations

import gzip
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from asrkit.errors import ConfigError, FormatError
from asrkit.fileio import atomic_write

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# ARPA's log10 probability for <s>, which is never predicted (SRILM and Kaldi write -99).
BOS_LOG10_PROB = -99.0
_SECTION = re.compile(r"^\\(\d+)-grams:$")
_COUNT = re.compile(r"^ngram (\d+)=(\d+)$")


@dataclass
class ArpaModel:
    """A backoff n-gram model: `ngrams[k - 1]` maps each k-gram (a word tuple) to (log10 prob,
    log10 backoff weight or None)."""

    order: int
    ngrams: list[dict[tuple[str, ...], tuple[float, float | None]]] = field(default_factory=list)

    @property
    def counts(self) -> list[int]:
        return [len(n) for n in self.ngrams]

    @property
    def words(self) -> list[str]:
        return sorted(w for (w,) in self.ngrams[0])


@dataclass
class ArpaInfo:
    """What `read_arpa` found: the order, the n-gram counts of the \\data\\ section, and the words."""

    order: int
    counts: list[int]
    words: list[str]


# ------------------------------------------------------------------------------------------------
# Estimation
# ------------------------------------------------------------------------------------------------

def count_ngrams(sentences: Iterable[str], order: int) -> list[Counter]:
    """Raw counts of every k-gram (k = 1..order) of the sentences, each padded with <s> and </s>."""
    raw = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = [BOS, *sentence.split(), EOS]
        for k in range(1, order + 1):
            for i in range(len(words) - k + 1):
                raw[k - 1][tuple(words[i:i + k])] += 1
    return raw


def _kneser_ney_counts(raw: list[Counter]) -> list[dict[tuple[str, ...], int]]:
    """Highest order: raw counts; lower orders: distinct left contexts (raw counts after <s>)."""
    kn: list[dict[tuple[str, ...], int]] = [dict() for _ in raw]
    kn[-1] = dict(raw[-1])
    for k in range(len(raw) - 1, 0, -1):
        left_contexts = Counter(g[1:] for g in raw[k])
        kn[k - 1] = {g: (c if g[0] == BOS else left_contexts[g]) for g, c in raw[k - 1].items()}
    return kn


def _discount(raw_counts: Iterable[int]) -> float:
    """D = n1 / (n1 + 2 n2) from the numbers of n-grams seen once and twice (raw counts, as
    make_kn_lm.py; n1 is floored at 0.001 there too, so that D is never 0)."""
    of_count = Counter(raw_counts)
    n1, n2 = of_count[1], of_count[2]
    return max(n1, 0.001) / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5


def estimate_kneser_ney(sentences: Iterable[str], order: int = 3, min_count: int = 1,
                        interpolate: bool = False) -> ArpaModel:
    """Estimate a Kneser-Ney model and express it as an ARPA backoff model.

    By default this is what Kaldi's utils/lang/make_kn_lm.py (and icefall's copy) computes, the
    same as SRILM's `ngram-count -kn-modify-counts-at-end -ukndiscount -gtNmin 0`: backoff
    (not interpolated) Kneser-Ney, one discount D = n1 / (n1 + 2 n2) per order from the raw
    counts-of-counts, no discount for unigrams, continuation counts for the lower orders (raw
    counts for n-grams that start with <s>). `interpolate=True` gives interpolated Kneser-Ney
    instead (SRILM's `-interpolate`): every probability mixes in the lower order with the mass the
    discount took, and unigrams are discounted too and mixed with the uniform distribution.

    Args:
        sentences: one sentence per item, words separated by whitespace.
        order: n-gram order (>= 1).
        min_count: n-grams of order >= 2 seen fewer times than this (raw count) are left out of
            the model after estimation; their probability goes to the backoff (SRILM's
            -gt2min/-gt3min). A k-gram's raw count is never above its prefix's or suffix's, so every
            kept n-gram keeps its context, as ARPA readers require.
        interpolate: interpolated instead of backoff Kneser-Ney.

    Returns:
        the model; unigrams include <s> (log10 prob -99) and </s>.

    Raises:
        ConfigError: order < 1, min_count < 1, or no words.
    """
    if order < 1:
        raise ConfigError(f"LM order must be at least 1 (got {order})")
    if min_count < 1:
        raise ConfigError(f"--min-count must be at least 1 (got {min_count})")
    raw = count_ngrams(sentences, order)
    if len(raw[0]) <= 2:
        raise ConfigError("no words to estimate a language model from")
    kn = _kneser_ney_counts(raw)

    prob: list[dict[tuple[str, ...], float]] = []  # probability of each seen n-gram, per order
    vocab = [w for (w,) in kn[0] if w != BOS]
    for k, counts in enumerate(kn, start=1):
        d = _discount(raw[k - 1].values()) if k > 1 or interpolate else 0.0
        totals: dict[tuple[str, ...], int] = defaultdict(int)
        types: dict[tuple[str, ...], int] = defaultdict(int)
        for g, c in counts.items():
            if g[-1] != BOS:
                totals[g[:-1]] += c
                types[g[:-1]] += 1
        probs: dict[tuple[str, ...], float] = {}
        for g, c in counts.items():
            if g[-1] == BOS:
                continue
            h = g[:-1]
            probs[g] = max(c - d, 0.0) / totals[h]
            if interpolate:
                lower = 1.0 / len(vocab) if k == 1 else prob[-1][g[1:]]
                probs[g] += d * types[h] * lower / totals[h]
        prob.append(probs)

    keep = [set(prob[0])] + [{g for g in prob[k] if raw[k][g] >= min_count} for k in range(1, order)]
    model = ArpaModel(order=order, ngrams=[{} for _ in range(order)])
    for k in range(order):
        for g in sorted(keep[k]):
            model.ngrams[k][g] = (math.log10(prob[k][g]) if prob[k][g] > 0 else BOS_LOG10_PROB, None)
    model.ngrams[0][(BOS,)] = (BOS_LOG10_PROB, None)
    _set_backoffs(model, prob, keep)
    return model


def word_loop(words: Iterable[str]) -> ArpaModel:
    """A word loop as a bigram: every word equally likely after <s> (1/n each) and after every
    word, where the sentence may also end (1/(n + 1) each for the n words and </s>). Unlike a
    bigram estimated from few transcripts it prefers no word anywhere, e.g. no first word (Kaldi's
    egs/yesno decodes with such a grammar); the decoder's word penalty alone sets the length.

    Raises:
        ConfigError: no words.
    """
    vocab = sorted({w for w in words if w not in (BOS, EOS)})
    if not vocab:
        raise ConfigError("no words for a word loop")
    start, step = -math.log10(len(vocab)), -math.log10(len(vocab) + 1)
    # Every bigram of a word is listed, so nothing is left to back off to (backoff weight -99, as
    # for <s> never predicted); KenLM still reads the unigrams. <s> backs off to nothing either:
    # no empty sentence.
    unigrams = {(w,): (step, BOS_LOG10_PROB) for w in [*vocab, BOS]}
    unigrams[(EOS,)] = (step, None)
    unigrams[(BOS,)] = (BOS_LOG10_PROB, BOS_LOG10_PROB)
    bigrams = {(BOS, w): (start, None) for w in vocab}
    bigrams.update({(v, w): (step, None) for v in vocab for w in [*vocab, EOS]})
    return ArpaModel(order=2, ngrams=[unigrams, bigrams])


def _set_backoffs(model: ArpaModel, prob: list[dict], keep: list[set]) -> None:
    """Backoff weight of every history: the probability its kept words leave, over what the same
    words have in the lower order, so that every conditional distribution sums to one."""
    children: list[dict[tuple[str, ...], list[str]]] = [defaultdict(list) for _ in range(model.order)]
    for k in range(1, model.order):
        for g in keep[k]:
            children[k][g[:-1]].append(g[-1])
    for k in range(1, model.order):
        for h, words in children[k].items():
            left = 1.0 - sum(prob[k][h + (w,)] for w in words)
            lower = 1.0 - sum(10.0 ** model.ngrams[k - 1][h[1:] + (w,)][0] for w in words)
            bow = max(left, 1e-12) / max(lower, 1e-12)
            logprob, _ = model.ngrams[k - 1][h]
            model.ngrams[k - 1][h] = (logprob, math.log10(bow))


# ------------------------------------------------------------------------------------------------
# ARPA files
# ------------------------------------------------------------------------------------------------

def _format_line(logprob: float, ngram: tuple[str, ...], backoff: float | None) -> str:
    fields = [f"{logprob:.7g}", " ".join(ngram)]
    if backoff is not None:
        fields.append(f"{backoff:.7g}")
    return "\t".join(fields) + "\n"


def write_arpa(model: ArpaModel, path: str | os.PathLike) -> None:
    """Write `model` to `path` atomically, fields separated by tabs (n-grams sorted in each order)."""
    with atomic_write(path) as f:
        f.write("\n\\data\\\n")
        for k, n in enumerate(model.counts, start=1):
            f.write(f"ngram {k}={n}\n")
        for k, ngrams in enumerate(model.ngrams, start=1):
            f.write(f"\n\\{k}-grams:\n")
            for g in sorted(ngrams):
                f.write(_format_line(*ngrams[g][:1], g, ngrams[g][1]))
        f.write("\n\\end\\\n")


def _open_text(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_arpa(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Check an ARPA file (plain or gzipped) and yield its lines normalised: `(order or 0, line)`,
    n-gram lines with tab-separated fields (KenLM's layout), the others as they are.

    Raises:
        FormatError: no \\data\\ header, a bad count or n-gram line, an n-gram of the wrong order,
            counts that differ from the header, or no \\end\\ (naming the file and line).
    """
    path = Path(path)
    header: dict[int, int] = {}
    seen: dict[int, int] = {}
    section = -1  # -1 before \data\, 0 in \data\, k in the k-grams
    ended = False
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                text = line.strip()
                if not text:
                    yield 0, "\n"
                    continue
                if ended:
                    raise FormatError(path, "text after \\end\\", lineno)
                if text == "\\data\\":
                    section = 0
                    yield 0, text + "\n"
                elif text == "\\end\\":
                    ended = True
                    yield 0, text + "\n"
                elif (m := _SECTION.match(text)) is not None:
                    section = int(m.group(1))
                    if section not in header:
                        raise FormatError(path, f"section \\{section}-grams: has no 'ngram {section}=' count",
                                          lineno)
                    yield 0, text + "\n"
                elif section == 0:
                    m = _COUNT.match(text)
                    if m is None:
                        raise FormatError(path, f"expected 'ngram N=COUNT' in \\data\\, got '{text[:40]}'", lineno)
                    header[int(m.group(1))] = int(m.group(2))
                    yield 0, text + "\n"
                elif section > 0:
                    yield section, _ngram_line(path, lineno, text, section)
                    seen[section] = seen.get(section, 0) + 1
                else:
                    raise FormatError(path, "expected the \\data\\ header", lineno)
    except UnicodeDecodeError:
        raise FormatError(path, "not UTF-8 text", lineno + 1) from None
    except (OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise FormatError(path, f"cannot read: {e}", lineno + 1) from None
    if not header:
        raise FormatError(path, "no \\data\\ section: not an ARPA file")
    if not ended:
        raise FormatError(path, "no \\end\\ line (truncated file?)", lineno)
    for k, n in sorted(header.items()):
        if seen.get(k, 0) != n:
            raise FormatError(path, f"\\data\\ says ngram {k}={n} but the file has {seen.get(k, 0)} {k}-grams")


def _ngram_line(path: Path, lineno: int, text: str, order: int) -> str:
    fields = text.split()
    if len(fields) not in (order + 1, order + 2):
        raise FormatError(path, f"a {order}-gram line needs a log10 probability, {order} word(s) and an "
                          f"optional backoff weight, got {len(fields)} field(s)", lineno)
    has_backoff = len(fields) == order + 2
    try:
        float(fields[0])
        if has_backoff:
            float(fields[-1])
    except ValueError:
        raise FormatError(path, f"bad number in '{text[:60]}'", lineno) from None
    out = [fields[0], " ".join(fields[1:order + 1])] + ([fields[-1]] if has_backoff else [])
    return "\t".join(out) + "\n"


def read_arpa(path: str | os.PathLike) -> ArpaInfo:
    """Check an ARPA file and return its order, n-gram counts and unigram words (see `iter_arpa`)."""
    return _summarise(iter_arpa(path), write=None)


def copy_arpa(src: str | os.PathLike, dst: str | os.PathLike) -> ArpaInfo:
    """Check `src` (plain or gzipped ARPA) and write it to `dst` uncompressed with tab-separated
    fields, atomically; returns what `read_arpa` would."""
    with atomic_write(dst) as f:
        return _summarise(iter_arpa(src), write=f.write)


def _summarise(lines: Iterator[tuple[int, str]], write) -> ArpaInfo:
    counts: Counter = Counter()
    words = set()
    for order, line in lines:
        if order:
            counts[order] += 1
            if order == 1:
                words.add(line.split("\t")[1].strip())
        if write is not None:
            write(line)
    order = max(counts) if counts else 0
    return ArpaInfo(order=order, counts=[counts[k] for k in range(1, order + 1)], words=sorted(words))


__all__ = ["BOS", "EOS", "UNK", "ArpaInfo", "ArpaModel", "copy_arpa", "count_ngrams", "estimate_kneser_ney",
           "iter_arpa", "read_arpa", "word_loop", "write_arpa"]
