"""The LM dir (`data/lang_<name>_lm/`): a word n-gram and the lexicon that spells its words in one
language's model tokens, what `asrkit decode --lm` needs.

    lm.arpa      the n-gram, ARPA with tab-separated fields (KenLM's layout; estimated by
                 asrkit.text.ngram or copied from an existing ARPA file, gzipped or not)
    words.txt    Kaldi word table: <eps> 0, the words, #0, <s>, </s> (what arpa2fst / a TLG build reads)
    lexicon.txt  `<word> <token> <token> ...`: each word the token set can spell, as its tokenizer
                 spells it (a character or sentencepiece piece per token)
    tokens.txt   the token set (`<piece> <id>`), to check it against a model's outputs
    lm.yaml      order, n-gram counts, language, token set, source (kind, path, sha256), the sha256
                 of lm.arpa, words and lexicon sizes, the words left out of the lexicon

Written whole or not at all (asrkit.fileio.staged_dir).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from asrkit import jobs
from asrkit.errors import ConfigError, DataDirError, FormatError
from asrkit.fileio import atomic_write, atomic_write_text, staged_dir
from asrkit.kaldi.textio import iter_lines, read_table, write_table
from asrkit.text.ngram import BOS, EOS, UNK, ArpaInfo, copy_arpa, estimate_kneser_ney, word_loop, write_arpa
from asrkit.text.tokenizer import BLANK_ID, UNK_ID, LangDir, Tokenizer

MANIFEST = "lm.yaml"
SPECIAL_WORDS = {BOS, EOS, UNK, "<eps>", "#0"}


@dataclass
class LmDir:
    """A loaded LM dir: its folder, manifest and the file paths the decoder uses."""

    path: Path
    manifest: dict

    @classmethod
    def load(cls, path: str | os.PathLike) -> LmDir:
        """Read `path/lm.yaml` and check the files it describes are there.

        Raises:
            FileNotFoundError: no lm.yaml.
            FormatError: lm.yaml lacks a field, or a file of the dir is missing.
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(2, "not an LM dir (no lm.yaml); make one with `asrkit make-lm`", str(manifest_path))
        manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8")) or {}
        for key in ("language", "order", "counts", "arpa_sha256"):
            if key not in manifest:
                raise FormatError(manifest_path, f"no '{key}' field")
        for name in ("lm.arpa", "lexicon.txt", "tokens.txt", "words.txt"):
            if not (path / name).is_file():
                raise FormatError(manifest_path, f"the LM dir has no {name}")
        return cls(path, manifest)

    @property
    def language(self) -> str:
        return str(self.manifest["language"])

    @property
    def arpa(self) -> Path:
        return self.path / "lm.arpa"

    @property
    def lexicon(self) -> Path:
        return self.path / "lexicon.txt"

    def tokens(self) -> list[str]:
        """The token pieces, by id."""
        table = read_table(self.path / "tokens.txt", num_fields=2)
        return [piece for piece, _ in sorted(table.items(), key=lambda kv: int(kv[1]))]


def read_sentences(text: str | os.PathLike | None = None, data_dirs: Sequence[str | os.PathLike] = (),
                   language: str | None = None) -> list[str]:
    """Sentences for estimation: the lines of a plain text file (no utterance ids), and/or the
    transcripts of data dirs (their `text`, only utterances of `language` when the dir has utt2lang).

    Raises:
        DataDirError: a data dir without `text`, or with utt2lang but not for every utterance.
    """
    sentences = []
    if text is not None:
        sentences += [" ".join(line.split()) for _, line in iter_lines(text) if line.strip()]
    for d in map(Path, data_dirs):
        if not (d / "text").is_file():
            raise DataDirError(f"{d / 'text'}: missing")
        transcripts = read_table(d / "text")
        utt2lang = read_table(d / "utt2lang", num_fields=2) if language and (d / "utt2lang").is_file() else None
        for utt, words in transcripts.items():
            if utt2lang is not None:
                if utt not in utt2lang:
                    raise DataDirError(f"{d / 'utt2lang'}: no language for utterance '{utt}'")
                if utt2lang[utt] != language:
                    continue
            if words.strip():
                sentences.append(" ".join(words.split()))
    return sentences


def spell(words: Sequence[str], tokenizer: Tokenizer) -> tuple[dict[str, list[str]], list[str]]:
    """The tokens of each word as the tokenizer spells it alone; returns `(lexicon, unspellable)`,
    the second the words with a token the set does not have (they would decode as <unk>)."""
    pieces = tokenizer.pieces()
    lexicon, unspellable = {}, []
    for word in words:
        ids = tokenizer.encode(word)
        if not ids or UNK_ID in ids or BLANK_ID in ids:
            unspellable.append(word)
        else:
            lexicon[word] = [pieces[i] for i in ids]
    return lexicon, unspellable


def make_lm_dir(out_dir: str | os.PathLike, lang_dir: str | os.PathLike, *, language: str | None = None,
                text: str | os.PathLike | None = None, data_dirs: Sequence[str | os.PathLike] = (),
                arpa: str | os.PathLike | None = None, words: str | os.PathLike | None = None,
                order: int = 3, min_count: int = 1, interpolate: bool = False, loop: bool = False) -> LmDir:
    """Write an LM dir: an n-gram estimated from text (`text` and/or `data_dirs`), or an existing ARPA.

    Args:
        out_dir: the LM dir, e.g. `data/lang_char_lm` (replaced whole when finished).
        lang_dir: the model's lang dir (asrkit make-lang): its token set spells the words.
        language: which language (and token set) the LM is for; may be left out when the lang dir has one.
        text: a plain text file, one sentence per line, to estimate from.
        data_dirs: data dirs whose transcripts (of `language`) to estimate from.
        arpa: an existing ARPA file (plain or gzipped) instead of estimating one.
        words: with `arpa`, the word list for the lexicon (one word per line, or a Kaldi words.txt);
            default: the ARPA's unigrams.
        order, min_count, interpolate: for estimation (asrkit.text.ngram.estimate_kneser_ney).
        loop: instead of estimating, a word loop over the words of the text / data dirs
            (asrkit.text.ngram.word_loop: no word preferred anywhere; order, min_count and
            interpolate do not apply).

    Returns:
        the LmDir.

    Raises:
        ConfigError: neither or both of text/data and arpa; loop with arpa; a language the lang dir does not have;
            no word the token set can spell.
        FormatError: a bad ARPA or word list line (naming file and line).
    """
    out_dir = Path(out_dir)
    lang = LangDir.load(lang_dir)
    if language is None:
        if len(lang.languages) != 1:
            raise ConfigError(f"lang dir {lang_dir} has several languages ({', '.join(lang.languages)}); "
                              "name the LM's with --language")
        language = lang.languages[0]
    tokenizer = lang.tokenizer(language)
    from_text = text is not None or bool(data_dirs)
    if from_text == (arpa is not None):
        raise ConfigError("give either a text / data dirs to estimate from, or an existing --arpa file")
    if words is not None and arpa is None:
        raise ConfigError("--words goes with --arpa (a word list for an existing ARPA file)")
    if loop and arpa is not None:
        raise ConfigError("--loop builds a word loop from a text or data dirs, not from an --arpa file")

    with staged_dir(out_dir, ConfigError) as tmp:
        if from_text:
            sentences = read_sentences(text, data_dirs, language)
            if not sentences:
                raise ConfigError(f"no sentences of language '{language}' in "
                                  f"{', '.join(str(p) for p in [text, *data_dirs] if p is not None)}")
            if loop:
                model = word_loop(w for sentence in sentences for w in sentence.split())
            else:
                model = estimate_kneser_ney(sentences, order=order, min_count=min_count, interpolate=interpolate)
            write_arpa(model, tmp / "lm.arpa")
            info = ArpaInfo(order=model.order, counts=model.counts, words=model.words)
            sources = [str(p) for p in [text, *data_dirs] if p is not None]
            source = {"kind": "text", "paths": sources, "sentences": len(sentences),
                      "estimation": "word loop" if loop else "interpolated Kneser-Ney" if interpolate
                      else "Kneser-Ney (backoff, as make_kn_lm.py)"}
            if not loop:
                source["min_count"] = min_count
            if text is not None:
                source["sha256"] = jobs.file_digest(text)
        else:
            info = copy_arpa(arpa, tmp / "lm.arpa")
            source = {"kind": "arpa", "paths": [str(arpa)], "sha256": jobs.file_digest(arpa)}
        vocabulary = read_word_list(words) if words is not None else info.words
        lexicon, unspellable = spell([w for w in vocabulary if w not in SPECIAL_WORDS], tokenizer)
        if not lexicon:
            raise ConfigError(f"none of the LM's {len(vocabulary)} words can be spelled with the tokens of "
                              f"'{language}' in {lang_dir}")
        _write_word_tables(tmp, info, lexicon, tokenizer)
        manifest = {
            "language": language, "order": info.order, "counts": info.counts,
            "lang_dir": str(lang_dir), "token_set": lang.lang2set[language], "token_type": lang.token_type,
            "vocab_size": tokenizer.vocab_size, "source": source,
            "arpa_sha256": jobs.file_digest(tmp / "lm.arpa"),
            "words": len(vocabulary), "lexicon_words": len(lexicon),
            "unspellable_words": len(unspellable), "unspellable_examples": unspellable[:20],
        }
        atomic_write_text(tmp / MANIFEST, yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    return LmDir.load(out_dir)


def _write_word_tables(folder: Path, info: ArpaInfo, lexicon: dict[str, list[str]], tokenizer: Tokenizer) -> None:
    words = sorted(w for w in info.words if w not in SPECIAL_WORDS)
    if UNK in info.words:
        words = [UNK, *words]
    table = ["<eps>", *words, "#0", BOS, EOS]
    write_table(folder / "words.txt", [(w, i) for i, w in enumerate(table)], sort=False)
    with atomic_write(folder / "lexicon.txt") as f:
        for word in sorted(lexicon):
            f.write(f"{word} {' '.join(lexicon[word])}\n")
    write_table(folder / "tokens.txt", [(p, i) for i, p in enumerate(tokenizer.pieces())], sort=False)


def read_word_list(path: str | os.PathLike) -> list[str]:
    """Words of a word list: the first field of each line (a plain list, or a Kaldi words.txt).

    Raises:
        FormatError: an empty line.
    """
    out = []
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            raise FormatError(path, "empty line in the word list", lineno)
        out.append(fields[0])
    return out


__all__ = ["MANIFEST", "LmDir", "make_lm_dir", "read_sentences", "read_word_list", "spell"]
