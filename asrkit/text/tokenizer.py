"""Sentencepiece tokenizers per language, and the lang dir that holds them.

A lang dir (`data/lang_<name>/`) holds `lang.yaml` (the manifest), and for each token set a folder
with `tokens.model` (sentencepiece), `tokens.txt` (Kaldi-style `<piece> <id>`) and `train_text`.
Token id 0 is the CTC/RNN-T blank `<blk>` and id 1 is `<unk>`, in every token set, so a model's
blank index never depends on the language.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asrkit.errors import ConfigError, DataDirError
from asrkit.fileio import check_replaceable_dir, naming_write_errors, staged_dir
from asrkit.kaldi.textio import read_table, write_table

BLANK = "<blk>"
UNK = "<unk>"
BLANK_ID = 0
UNK_ID = 1
# sentencepiece's surface for <unk> (U+2047, with the spaces around it).
_SP_UNK = "\u2047"
_SP_UNK_RUN = re.compile(r"\s*\u2047\s*")
JOINT = "joint"
MANIFEST = "lang.yaml"


class Tokenizer:
    """One sentencepiece model: text <-> token ids, with blank 0 and unk 1.

    Built from the serialized model bytes, so a model file can carry its tokenizer with it.
    """

    def __init__(self, model_proto: bytes, name: str = ""):
        import sentencepiece as spm

        self.name = name
        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        if self._sp.id_to_piece(BLANK_ID) != BLANK or self._sp.unk_id() != UNK_ID:
            raise ConfigError(f"tokenizer {name!r}: expected {BLANK} at id 0 and {UNK} at id 1 "
                              "(was it made by `asrkit make-lang`?)")

    @property
    def vocab_size(self) -> int:
        """Number of output units including blank and unk."""
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of a normalised transcript (no blank)."""
        return self._sp.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a token id sequence; blank ids are dropped, and `<unk>` is written as the word
        `<unk>` (Kaldi's spelling) where sentencepiece would write ` \u2047 `."""
        text = self._sp.decode([int(i) for i in ids if int(i) != BLANK_ID])
        if _SP_UNK in text:
            text = " ".join(_SP_UNK_RUN.sub(" <unk> ", text).split())
        return text

    def pieces(self) -> list[str]:
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

    def count_unk(self, ids: Sequence[int]) -> int:
        return sum(1 for i in ids if i == UNK_ID)


@dataclass
class LangDir:
    """A lang dir: which token set each language uses.

    Attributes:
        path: the folder.
        token_type: "bpe", "char" or "word".
        token_sets: {set_name: Tokenizer}; set_name is a language, or "joint".
        lang2set: {language: set_name}.
    """

    path: Path
    token_type: str
    token_sets: dict[str, Tokenizer] = field(default_factory=dict)
    lang2set: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LangDir:
        """Read a lang dir written by `make_lang_dir`.

        Raises:
            FileNotFoundError: no lang.yaml.
            ConfigError: the manifest names a token set whose model is missing.
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(2, "not a lang dir (no lang.yaml); make one with `asrkit make-lang`",
                                    str(manifest_path))
        manifest = yaml.safe_load(manifest_path.read_text())
        lang_dir = cls(path=path, token_type=manifest["token_type"], lang2set=dict(manifest["languages"]))
        for set_name in sorted(set(lang_dir.lang2set.values())):
            model_path = path / set_name / "tokens.model"
            if not model_path.is_file():
                raise ConfigError(f"{manifest_path}: token set '{set_name}' has no {model_path}")
            lang_dir.token_sets[set_name] = Tokenizer(model_path.read_bytes(), name=set_name)
        return lang_dir

    @property
    def languages(self) -> list[str]:
        return sorted(self.lang2set)

    @property
    def joint(self) -> bool:
        return set(self.lang2set.values()) == {JOINT}

    def tokenizer(self, lang: str) -> Tokenizer:
        """The tokenizer of a language.

        Raises:
            ConfigError: the language is not in this lang dir (the message lists those that are).
        """
        if lang not in self.lang2set:
            raise ConfigError(f"language '{lang}' is not in lang dir {self.path} "
                              f"(it has: {', '.join(self.languages)})")
        return self.token_sets[self.lang2set[lang]]

    def vocab_sizes(self) -> dict[str, int]:
        return {lang: self.tokenizer(lang).vocab_size for lang in self.languages}


def read_transcripts(data_dirs: Sequence[str | os.PathLike]) -> dict[str, list[str]]:
    """Collect transcripts by language from `text` and `utt2lang` of each data dir.

    Returns:
        {language: [transcript, ...]} in data-dir order.

    Raises:
        DataDirError: a data dir has no `text` or no `utt2lang`, or an utterance has no language.
    """
    by_lang: dict[str, list[str]] = {}
    for d in map(Path, data_dirs):
        for name in ("text", "utt2lang"):
            if not (d / name).is_file():
                raise DataDirError(f"{d / name}: missing (make-lang needs text and utt2lang)")
        text = read_table(d / "text")
        utt2lang = read_table(d / "utt2lang", num_fields=2)
        for utt, words in text.items():
            if utt not in utt2lang:
                raise DataDirError(f"{d / 'utt2lang'}: no language for utterance '{utt}'")
            if words.strip():
                by_lang.setdefault(utt2lang[utt], []).append(words.strip())
    return by_lang


TOKEN_TYPES = ("bpe", "char", "word")
DEFAULT_VOCAB_SIZE = 500  # bpe tokens per set when none is given


def train_sentencepiece(sentences: Sequence[str], *, token_type: str, vocab_size: int | None) -> bytes:
    """Train a sentencepiece model with blank at 0 and unk at 1; returns the serialized model.

    `token_type` "word" gives one token per distinct word (Kaldi's word-level targets): the
    `vocab_size - 2` most frequent words, or every word when `vocab_size` is None; other words
    become <unk>. Single-threaded so that the same text gives the same model byte for byte.
    """
    import sentencepiece as spm

    if token_type not in TOKEN_TYPES:
        raise ConfigError(f"token type must be one of {', '.join(TOKEN_TYPES)}, not '{token_type}'")
    if token_type == "word":
        num_words = len({w for s in sentences for w in s.split()})
        vocab_size = num_words + 2 if vocab_size is None else min(vocab_size, num_words + 2)
    elif vocab_size is None:
        vocab_size = DEFAULT_VOCAB_SIZE
    # Sentences are fed from memory: a file input would record its (temporary) path in the model,
    # and the same text would then give different bytes.
    model = io.BytesIO()
    options = dict(
        sentence_iterator=iter(list(sentences)), model_writer=model, model_type=token_type, vocab_size=vocab_size,
        pad_id=BLANK_ID, pad_piece=BLANK, unk_id=UNK_ID, bos_id=-1, eos_id=-1,
        character_coverage=1.0, num_threads=1, minloglevel=2, input_sentence_size=2_000_000,
        shuffle_input_sentence=False,
        # For char the alphabet decides the size; for bpe a vocabulary larger than the text supports
        # shrinks to fit, so tiny corpora (tests, a low-resource language) still get a model.
        hard_vocab_limit=False,
    )
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as e:
        raise ConfigError(f"sentencepiece could not train a {token_type} model of {vocab_size} "
                          f"tokens: {str(e).splitlines()[-1]}") from None
    return model.getvalue()


def make_lang_dir(data_dirs: Sequence[str | os.PathLike], lang_dir: str | os.PathLike, *,
                  token_type: str = "bpe", vocab_size: int | None = None, joint: bool = False,
                  overwrite: bool = False) -> LangDir:
    """Train token sets from data dirs' transcripts and write a lang dir atomically.

    Args:
        data_dirs: data dirs with `text` and `utt2lang`.
        lang_dir: output folder; replaced only when the new one is complete.
        token_type: "bpe", "char" or "word".
        vocab_size: tokens per set for bpe (including blank and unk); ignored for char.
        joint: one token set for all languages instead of one per language.
        overwrite: rebuild even if `lang_dir` exists with the same inputs.

    Returns:
        the loaded LangDir.
    """
    lang_dir = Path(lang_dir)
    # Refused before the (long) training: a lang dir that would replace the user's data.
    check_replaceable_dir(lang_dir, ConfigError, inputs=data_dirs, overwrite=overwrite, markers=(MANIFEST,))
    by_lang = read_transcripts(data_dirs)
    if not by_lang:
        raise DataDirError(f"no transcripts in {', '.join(map(str, data_dirs))}")
    if token_type not in TOKEN_TYPES:
        raise ConfigError(f"token type must be one of {', '.join(TOKEN_TYPES)}, not '{token_type}'")
    if token_type == "bpe" and vocab_size is None:
        vocab_size = DEFAULT_VOCAB_SIZE
    request = {"token_type": token_type, "vocab_size": vocab_size if token_type != "char" else None,
               "joint": joint, "data_dirs": [str(Path(d).resolve()) for d in data_dirs]}
    if (lang_dir / MANIFEST).is_file() and not overwrite:
        existing = yaml.safe_load((lang_dir / MANIFEST).read_text())
        if existing.get("request") == request:
            return LangDir.load(lang_dir)
        raise ConfigError(f"{lang_dir} exists and was made from other inputs; use --overwrite to replace it")

    groups = {JOINT: [s for lang in sorted(by_lang) for s in by_lang[lang]]} if joint else by_lang
    with staged_dir(lang_dir, ConfigError, inputs=data_dirs, overwrite=overwrite, markers=(MANIFEST,)) as tmp:
        sizes = {}
        for set_name, sentences in sorted(groups.items()):
            proto = train_sentencepiece(sentences, token_type=token_type, vocab_size=vocab_size)
            out = tmp / set_name
            out.mkdir()
            with naming_write_errors(lang_dir / set_name / "tokens.model"):
                (out / "tokens.model").write_bytes(proto)
            tok = Tokenizer(proto, name=set_name)
            write_table(out / "tokens.txt", [(p, i) for i, p in enumerate(tok.pieces())], sort=False)
            with naming_write_errors(lang_dir / set_name / "train_text"):
                (out / "train_text").write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
            sizes[set_name] = tok.vocab_size
            if token_type == "bpe" and tok.vocab_size < vocab_size:
                # hard_vocab_limit=False lets a small text give fewer tokens; say so, with both numbers.
                logging.getLogger("asrkit.lang").warning(
                    "%s: --vocab-size %d asked, but its text supports only %d tokens; the token set has %d",
                    set_name, vocab_size, tok.vocab_size, tok.vocab_size)
        manifest = {
            "token_type": token_type,
            "languages": {lang: (JOINT if joint else lang) for lang in sorted(by_lang)},
            "vocab_sizes": sizes,
            "request": request,
        }
        with naming_write_errors(lang_dir / MANIFEST):
            (tmp / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=True))
    return LangDir.load(lang_dir)
