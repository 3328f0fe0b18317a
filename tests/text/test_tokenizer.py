"""Token sets: per-language and joint sentencepiece models with blank 0 and unk 1."""

from __future__ import annotations

import shutil

import pytest

from asrkit.errors import ConfigError, DataDirError
from asrkit.text.tokenizer import BLANK_ID, LangDir, make_lang_dir


def test_per_language_sets(fixture_datadir, tmp_path):
    lang = make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="char")
    assert lang.languages == ["de", "en", "fr"]
    assert not lang.joint
    en = lang.tokenizer("en")
    ids = en.encode("the lazy dog")
    assert BLANK_ID not in ids
    assert en.decode(ids) == "the lazy dog"
    # 'ß'-free German text has no 'q'; English does: per-language alphabets differ.
    assert "q" in en.pieces() and "q" not in lang.tokenizer("de").pieces()
    assert (tmp_path / "lang" / "en" / "tokens.txt").read_text().splitlines()[:2] == ["<blk> 0", "<unk> 1"]


def test_joint_set_and_reload(fixture_datadir, tmp_path):
    lang = make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="bpe", vocab_size=40, joint=True)
    assert lang.joint and set(lang.lang2set.values()) == {"joint"}
    again = LangDir.load(tmp_path / "lang")
    assert again.vocab_sizes() == lang.vocab_sizes()
    assert again.tokenizer("fr").encode("bonjour") == lang.tokenizer("de").encode("bonjour")


def test_same_inputs_skip_other_inputs_refused(fixture_datadir, tmp_path):
    make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="char")
    model = (tmp_path / "lang" / "en" / "tokens.model").read_bytes()
    make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="char")  # no error, no change
    assert (tmp_path / "lang" / "en" / "tokens.model").read_bytes() == model
    with pytest.raises(ConfigError, match="--overwrite"):
        make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="bpe", vocab_size=30)
    make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="bpe", vocab_size=30, overwrite=True)
    assert LangDir.load(tmp_path / "lang").token_type == "bpe"


def test_deterministic(fixture_datadir, tmp_path):
    make_lang_dir([fixture_datadir], tmp_path / "a", vocab_size=40)
    make_lang_dir([fixture_datadir], tmp_path / "b", vocab_size=40)
    for lang in ("en", "de", "fr"):
        assert (tmp_path / "a" / lang / "tokens.model").read_bytes() == (tmp_path / "b" / lang / "tokens.model").read_bytes()


def test_unknown_language_and_missing_utt2lang(fixture_datadir, tmp_path):
    lang = make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="char")
    with pytest.raises(ConfigError, match=r"language .es. is not in lang dir .*\(it has: de, en, fr\)"):
        lang.tokenizer("es")
    broken = tmp_path / "broken"
    shutil.copytree(fixture_datadir, broken)
    (broken / "utt2lang").unlink()
    with pytest.raises(DataDirError, match="utt2lang: missing"):
        make_lang_dir([broken], tmp_path / "lang2")
    assert not (tmp_path / "lang2").exists()


def test_cli(fixture_datadir, tmp_path, asrkit_cli):
    proc = asrkit_cli("make-lang", "--type", "char", fixture_datadir, tmp_path / "lang")
    assert proc.returncode == 0, proc.stderr
    assert "3 token set(s) for de, en, fr" in proc.stdout
    proc = asrkit_cli("make-lang", tmp_path / "nothing", tmp_path / "lang3")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("asrkit make-lang: error:")
    assert "Traceback" not in proc.stderr


def _yesno_dir(root, lines):
    d = root / "yn"
    d.mkdir()
    (d / "text").write_text("".join(f"u{i} {t}\n" for i, t in enumerate(lines)))
    (d / "utt2lang").write_text("".join(f"u{i} he\n" for i in range(len(lines))))
    return d


def test_word_tokens_one_per_word(tmp_path):
    d = _yesno_dir(tmp_path, ["NO YES YES NO", "YES YES YES NO", "NO NO"])
    lang = make_lang_dir([d], tmp_path / "lang", token_type="word")
    tok = lang.tokenizer("he")
    assert tok.pieces() == ["<blk>", "<unk>", "▁NO", "▁YES"]
    ids = tok.encode("NO YES YES NO")
    assert ids == [2, 3, 3, 2]
    assert tok.decode(ids) == "NO YES YES NO"
    # A word not in the training text is one <unk>, not a spelling.
    assert tok.count_unk(tok.encode("MAYBE YES")) == 1 and len(tok.encode("MAYBE YES")) == 2


def test_word_tokens_vocab_size_keeps_most_frequent(tmp_path):
    d = _yesno_dir(tmp_path, ["A A A B B C", "A B D"])
    lang = make_lang_dir([d], tmp_path / "lang", token_type="word", vocab_size=4)
    assert lang.tokenizer("he").pieces() == ["<blk>", "<unk>", "▁A", "▁B"]


def test_word_tokens_cli(tmp_path, asrkit_cli):
    d = _yesno_dir(tmp_path, ["NO YES", "YES"])
    proc = asrkit_cli("make-lang", "--type", "word", d, tmp_path / "lang")
    assert proc.returncode == 0, proc.stderr
    # Ordered by frequency: YES is said twice.
    assert (tmp_path / "lang" / "he" / "tokens.txt").read_text() == "<blk> 0\n<unk> 1\n▁YES 2\n▁NO 3\n"
