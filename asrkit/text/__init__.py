"""Tokens: sentencepiece models per language (or one joint model) and their token tables."""

from asrkit.text.tokenizer import LangDir, Tokenizer, make_lang_dir

__all__ = ["LangDir", "Tokenizer", "make_lang_dir"]
