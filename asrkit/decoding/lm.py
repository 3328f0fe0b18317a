"""CTC decoding with a word n-gram: lexicon-constrained beam search with shallow fusion, through
torchaudio's `ctc_decoder` (flashlight-text's LexiconDecoder with KenLM inside).

Every hypothesis is a sequence of lexicon words (asrkit.text.lmdir: each word spelled in the
model's tokens); its score is

    score = am + lm_weight * lm - word_penalty * num_words

with `am` the log probability of the hypothesis' best CTC alignment (natural log) and `lm` the
n-gram's log probability of the words and </s>, converted from KenLM's log10 to natural log, so the
weight means what Kaldi's LMWT means against acoustic log-likelihoods. The search returns `am`
and `lm` apart, so an n-best list can be rescored with other weights (`rescore_nbest`, Kaldi's
local/score.sh over LM weights and insertion penalties).

The blank token doubles as flashlight's word-boundary "silence": sentencepiece tokens carry their
word boundary inside the first piece of each word (the "▁" prefix), and the lexicon spells it so.

A word token set (`make-lang --type word`: every lexicon word is one token, the word itself or, as
make-lang writes it, the word with its "▁" boundary mark: `NO ▁NO`) is searched with flashlight's
lexicon-free decoder instead, the LM scoring each token as the lexicon word it spells.
The word penalty
then ranks the final beam (that decoder has no word score). Flashlight's lexicon decoder cannot keep
a one-token word over repeated frames: after the word it is
back at the lexicon root, where staying costs the "silence" token's score, so a word token emitted
on three frames comes out as the word twice (`[blk NO NO NO blk]` -> "NO NO"). The same holds for
one-piece words of a BPE or char lexicon; CTC models that emit a token on one frame (the usual
peaky outputs) do not meet it, models that hold a token over several frames (frame-rate DNNs on
word tokens) do.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from asrkit.errors import ConfigError, DataDirError, FormatError
from asrkit.kaldi.textio import write_table
from asrkit.text.lmdir import LmDir
from asrkit.text.tokenizer import BLANK, UNK

LN10 = math.log(10.0)
# What KenLM prints on std::cerr while it reads a text ARPA file (lm/model.cc, lm/read_arpa.cc,
# util/file_piece.cc): the advice to build a binary, the file name and a progress bar, and the
# notice that a file without <unk> gets log10 p(<unk>) = -100. flashlight-text's KenLM(path, dict)
# has no option to quiet it (its Config's `messages` stream is not exposed), so `read_kenlm_quietly`
# catches it at the file descriptor and keeps only what matters in one log line.
_KENLM_NOISE = ("Loading the LM will be faster if you build a binary file.", "Reading ", "----5---10---15",
                "****")
_KENLM_MISSING_UNK = "missing <unk>"


@dataclass(frozen=True)
class LmHypothesis:
    """One hypothesis: its words, acoustic log probability (best alignment) and LM log probability
    (natural log, </s> included), and the score the search ranked it by."""

    words: tuple[str, ...]
    am_score: float
    lm_score: float
    score: float


def _ctc_decoder():
    """torchaudio's CTC decoder factory, or a one-line error naming what is missing."""
    try:
        from torchaudio.models.decoder import ctc_decoder
        from torchaudio.models.decoder._ctc_decoder import _KenLM
    except ImportError as e:
        raise ConfigError(f"--lm needs the flashlight-text package (pip install flashlight-text): {e}") from None
    if _KenLM is None:
        raise ConfigError("--lm: this flashlight-text has no KenLM; install a flashlight-text wheel with KenLM")
    return ctc_decoder


@contextlib.contextmanager
def _stderr_captured(out: list[str]):
    """Send the process' file descriptor 2 to a temporary file for the block (C++ writes there,
    under Python's sys.stderr); `out` gets the captured text when the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                out.append(tmp.read().decode("utf-8", errors="replace"))
    finally:
        os.close(saved)


def read_kenlm_quietly(load, arpa: Path) -> tuple[object, str]:
    """Call `load()` (which makes KenLM read `arpa`) with KenLM's loading messages caught.

    Returns:
        what `load` returned, and one line saying what KenLM reported about the file ("" when it
        said nothing of note). Anything else written to stderr meanwhile is written out again.

    Raises:
        FormatError: KenLM could not read the file (its reason, in one line).
    """
    captured: list[str] = []
    try:
        with _stderr_captured(captured):
            result = load()
    except RuntimeError as e:  # KenLM's exception text: where in its source, then what was wrong
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise FormatError(arpa, f"KenLM cannot read this ARPA file: {reason}") from None
    notes, other = [], []
    for line in captured[0].splitlines():
        if _KENLM_MISSING_UNK in line:
            notes.append(f"{arpa} has no <unk>: KenLM gives words outside the LM log10 probability -100 "
                         "(the lexicon search proposes only LM words)")
        elif line.strip() and not line.startswith(_KENLM_NOISE):
            other.append(line)
    if other:
        sys.stderr.write("\n".join(other) + "\n")
    return result, "; ".join(notes)


class LexiconSearch:
    """Beam search of one language's CTC outputs with its LM dir.

    Args:
        lm: the LM dir (its tokens must be the model's tokens of that language).
        tokens: the model's token pieces by id (blank at 0).
        lm_weight: weight of the LM log probability (natural log).
        word_penalty: subtracted from the score per word.
        beam: hypotheses kept per frame.
        nbest: hypotheses returned per utterance (distinct word sequences).

    Raises:
        ConfigError: flashlight-text is missing; the LM dir's tokens are not the model's.
    """

    def __init__(self, lm: LmDir, tokens: list[str], *, lm_weight: float = 1.0, word_penalty: float = 0.0,
                 beam: int = 50, nbest: int = 1):
        if lm.tokens() != list(tokens):
            raise ConfigError(f"{lm.path}/tokens.txt: the LM dir was made for another token set than the "
                              f"model's '{lm.language}' tokens ({len(lm.tokens())} vs {len(tokens)} tokens); "
                              "make it with the model's lang dir")
        ctc_decoder = _ctc_decoder()
        self.lm_dir, self.lm_weight, self.word_penalty, self.nbest = lm, lm_weight, word_penalty, nbest
        self.tokens = list(tokens)
        # Word tokens: the lexicon-free decoder (see the module doc for why not the lexicon one).
        # token -> the lexicon word it spells; None unless every word is one token (a word token set).
        self.word_of_token = _word_of_token(lm.lexicon)
        self.word_tokens = (self.word_of_token is not None
                            and set(self.tokens) - {BLANK, UNK} <= set(self.word_of_token))
        # KenLM reads the ARPA file here; `kenlm_note` keeps what it said of note (for the job's log).
        with tempfile.TemporaryDirectory(prefix="asrkit-lm-") as tmp:
            lm_dict = None
            if self.word_tokens:
                # The lexicon-free decoder hands the LM token ids; torchaudio's own word dict for it is
                # not in token order (so "NO" would be scored as another word): give it the token ids'
                # words, as the ARPA file spells them ("NO", not the token "▁NO", which KenLM reads as <unk>).
                lm_dict = Path(tmp) / "lm_dict.txt"
                lm_dict.write_text("".join(f"{self.word_of_token.get(t, t)}\n" for t in self.tokens),
                                   encoding="utf-8")
            self._decoder, self.kenlm_note = read_kenlm_quietly(
                lambda: ctc_decoder(lexicon=None if self.word_tokens else str(lm.lexicon), tokens=self.tokens,
                                    lm=str(lm.arpa), lm_dict=None if lm_dict is None else str(lm_dict), nbest=nbest,
                                    beam_size=beam, lm_weight=lm_weight * LN10, word_score=-word_penalty,
                                    sil_score=0.0, blank_token=BLANK, sil_token=BLANK, unk_word=UNK),
                lm.arpa)

    def _words(self, result) -> tuple[str, ...]:
        """The words of one flashlight result: its word ids, or for word tokens its collapsed CTC tokens."""
        if not self.word_tokens:
            word_dict = self._decoder.word_dict
            return tuple(word_dict.get_entry(w) for w in result.words if w >= 0)
        blank = self.tokens.index(BLANK)
        ids = [i for i, _ in itertools.groupby(result.tokens) if i != blank]
        return tuple(self.word_of_token.get(self.tokens[i], self.tokens[i]) for i in ids)

    def search(self, log_probs: torch.Tensor, lens: torch.Tensor) -> list[list[LmHypothesis]]:
        """`log_probs (B, T, V)` CTC log posteriors, `lens (B,)` -> per utterance up to `nbest`
        hypotheses with distinct words, best first."""
        emissions = log_probs.detach().to("cpu", torch.float32).contiguous()
        lens = lens.cpu()
        flashlight = self._decoder.decoder
        out = []
        for b in range(emissions.shape[0]):
            results = flashlight.decode(emissions[b].data_ptr(), int(lens[b]), emissions.shape[2])
            hyps: dict[tuple[str, ...], LmHypothesis] = {}
            for r in results:  # the final beam, best first; one word sequence may come with several alignments
                words = self._words(r)
                if words in hyps:
                    continue
                am, lm = float(r.emittingModelScore), float(r.lmScore) * LN10
                # The lexicon-free decoder has no word score: the penalty ranks its final beam here.
                score = am + self.lm_weight * lm - self.word_penalty * len(words) if self.word_tokens else float(r.score)
                hyps[words] = LmHypothesis(words, am, lm, score)
                if len(hyps) == self.nbest and not self.word_tokens:
                    break
            out.append(sorted(hyps.values(), key=lambda h: -h.score)[:self.nbest])
        return out


def _word_of_token(lexicon: Path) -> dict[str, str] | None:
    """`{token: word}` when every line of `lexicon` spells its word as one token (a word token set: the
    word itself or "▁" + word, as `make-lang --type word` writes it), else None."""
    with open(lexicon, encoding="utf-8") as f:
        lines = [line.split() for line in f if line.strip()]
    if not lines or any(len(fields) != 2 or fields[1] not in (fields[0], "▁" + fields[0]) for fields in lines):
        return None
    return {token: word for word, token in lines}


def parse_lm_options(values: tuple[str, ...] | list[str]) -> dict[str, LmDir]:
    """`--lm DIR` (the language its lm.yaml names) or `--lm LANG=DIR`, repeated -> `{language: LmDir}`.

    Raises:
        ConfigError: two LM dirs for one language; FileNotFoundError / FormatError: not an LM dir.
    """
    out: dict[str, LmDir] = {}
    for value in values:
        lang, sep, path = value.partition("=")
        lm = LmDir.load(path if sep else value)
        lang = lang if sep else lm.language
        if lang in out:
            raise ConfigError(f"--lm: two LM dirs for language '{lang}' ({out[lang].path} and {lm.path})")
        out[lang] = lm
    return out


def check_lm_languages(lms: dict[str, LmDir], lang_counts: dict[str, int], data_dir: Path) -> None:
    """Every language of the data needs an LM dir.

    Raises:
        DataDirError: a language of the data without one (naming it and its utterance count).
    """
    for lang, count in sorted(lang_counts.items()):
        if lang not in lms:
            raise DataDirError(f"{data_dir}: {count} utterance(s) in language '{lang}' but no --lm for it "
                               f"(LM dirs for: {', '.join(sorted(lms)) or 'none'})")


class LmTextOutput:
    """What a decode job writes with `--lm`: every batch searched with its language's LM; `finish`
    writes the job's best hypotheses (Kaldi text) and its n-best lists, keyed `<utt>-<n>` as Kaldi's
    lattice-to-nbest names them: words, ac_cost (-am) and lm_cost (-lm, natural log)."""

    def __init__(self, meta, text: Path, nbest_files: tuple[Path, Path, Path], *, lms: dict[str, str],
                 lm_weight: float, word_penalty: float, beam: int, nbest: int, log):
        tokenizers = meta.tokenizers()
        self.searches: dict[str, LexiconSearch] = {}
        for lang, path in lms.items():
            if lang in tokenizers:
                self.searches[lang] = LexiconSearch(LmDir.load(path), tokenizers[lang].pieces(), lm_weight=lm_weight,
                                                    word_penalty=word_penalty, beam=beam, nbest=nbest)
                log.info("LM for '%s': %s (order %s), lm-weight %g, word-penalty %g, beam %d, nbest %d", lang, path,
                         self.searches[lang].lm_dir.manifest["order"], lm_weight, word_penalty, beam, nbest)
                if self.searches[lang].kenlm_note:
                    log.info("LM for '%s': %s", lang, self.searches[lang].kenlm_note)
        self.text, self.nbest_files = text, nbest_files
        self.hyps: dict[str, list[LmHypothesis]] = {}
        text.parent.mkdir(parents=True, exist_ok=True)

    def add_batch(self, model, feats, feat_lens, lang: str, keys: list[str]) -> None:
        """Search one language-homogeneous batch: `feats (B, T, D)`, `feat_lens (B,)`, B keys."""
        if hasattr(model, "transducer_loss"):
            raise ConfigError("--lm decodes CTC models; a transducer (RNN-T) model has no frame-level token "
                              "posteriors for the lexicon search")
        if lang not in self.searches:
            raise ConfigError(f"no --lm for language '{lang}' (LM dirs for: {', '.join(sorted(self.searches))})")
        logits, out_lens = model(feats, feat_lens, lang)  # (B, T', V), (B,)
        for key, hyps in zip(keys, self.searches[lang].search(logits.float().log_softmax(-1), out_lens)):
            self.hyps[key] = hyps

    def finish(self) -> None:
        write_table(self.text, {k: " ".join(h[0].words) if h else "" for k, h in self.hyps.items()}, sort=True)
        write_nbest(self.hyps, *self.nbest_files)

    def abort(self) -> None:
        """Nothing was written yet."""


def write_nbest(hyps: dict[str, list[LmHypothesis]], text: Path, ac_cost: Path, lm_cost: Path) -> None:
    """Write n-best lists as three Kaldi tables keyed `<utt>-<n>` (n from 1, best first)."""
    rows = [(f"{utt}-{n}", h) for utt, hs in hyps.items() for n, h in enumerate(hs, start=1)]
    write_table(text, [(k, " ".join(h.words)) for k, h in rows], sort=True)
    write_table(ac_cost, [(k, f"{-h.am_score:.6f}") for k, h in rows], sort=True)
    write_table(lm_cost, [(k, f"{-h.lm_score:.6f}") for k, h in rows], sort=True)


__all__ = ["LN10", "LexiconSearch", "LmHypothesis", "LmTextOutput", "check_lm_languages", "parse_lm_options",
           "read_kenlm_quietly", "write_nbest"]
