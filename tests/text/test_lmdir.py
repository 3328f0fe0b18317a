"""LM dirs (`asrkit make-lm`): estimated or copied ARPA, the lexicon in a language's tokens, lm.yaml."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from asrkit.cli.main import cli
from asrkit.errors import ConfigError, FormatError
from asrkit.text.lmdir import LmDir, make_lm_dir
from asrkit.text.ngram import read_arpa
from asrkit.text.tokenizer import LangDir, make_lang_dir


@pytest.fixture
def lang_dir(fixture_datadir, tmp_path):
    make_lang_dir([fixture_datadir], tmp_path / "lang", token_type="char")
    return tmp_path / "lang"


def test_lm_dir_round_trips(fixture_datadir, lang_dir, tmp_path):
    lm = make_lm_dir(tmp_path / "lm_en", lang_dir, language="en", data_dirs=[fixture_datadir], order=2)
    again = LmDir.load(tmp_path / "lm_en")
    assert again.manifest == lm.manifest and again.language == "en"
    m = again.manifest
    assert m["order"] == 2 and m["counts"] == read_arpa(again.arpa).counts
    assert m["source"]["kind"] == "text" and m["source"]["sentences"] == 2  # the two English utterances
    # every word of the English transcripts, spelled in English characters, decodes back to itself
    tok = LangDir.load(lang_dir).tokenizer("en")
    lexicon = {ln.split()[0]: ln.split()[1:] for ln in again.lexicon.read_text().splitlines()}
    assert set(lexicon) == set("the quick brown fox jumps over lazy dog seven hundred and twelve green bottles".split())
    pieces = tok.pieces()
    assert all(tok.decode([pieces.index(p) for p in spelling]) == w for w, spelling in lexicon.items())
    assert again.tokens() == pieces
    words = (tmp_path / "lm_en" / "words.txt").read_text().splitlines()
    assert words[0] == "<eps> 0" and words[-3:] == [f"#0 {len(words) - 3}", f"<s> {len(words) - 2}",
                                                    f"</s> {len(words) - 1}"]
    assert not list(tmp_path.glob(".lm_en*"))  # nothing left of the staged folder


def test_existing_arpa_and_word_list(lang_dir, tmp_path):
    arpa = tmp_path / "g.arpa"
    arpa.write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1 <s>\n-1 </s>\n-1 der\n-1 fuchs\n-1 ñandú\n\n\\end\\\n")
    (tmp_path / "wlist").write_text("der\nfuchs\nñandú\n")
    lm = make_lm_dir(tmp_path / "lm_de", lang_dir, language="de", arpa=arpa, words=tmp_path / "wlist")
    m = lm.manifest
    assert m["source"]["kind"] == "arpa" and m["order"] == 1 and m["counts"] == [5]
    # German characters spell 'der' and 'fuchs'; 'ñ' is not in the German token set
    assert m["lexicon_words"] == 2 and m["unspellable_examples"] == ["ñandú"]
    assert "-1\tder\n" in lm.arpa.read_text()


def test_errors_are_one_line(fixture_datadir, lang_dir, tmp_path):
    with pytest.raises(ConfigError, match="several languages"):
        make_lm_dir(tmp_path / "lm", lang_dir, data_dirs=[fixture_datadir])
    with pytest.raises(ConfigError, match="language 'xx' is not in lang dir"):
        make_lm_dir(tmp_path / "lm", lang_dir, language="xx", data_dirs=[fixture_datadir])
    with pytest.raises(ConfigError, match="either a text"):
        make_lm_dir(tmp_path / "lm", lang_dir, language="en")
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n\n\\end\\\n")
    with pytest.raises(FormatError, match=r"bad\.arpa:5: a 1-gram line"):
        make_lm_dir(tmp_path / "lm", lang_dir, language="en", arpa=tmp_path / "bad.arpa")
    assert not (tmp_path / "lm").exists()


def test_make_lm_cli(fixture_datadir, lang_dir, tmp_path):
    (tmp_path / "corpus.txt").write_text("the dog\nthe fox\n\nthe lazy dog\n")
    result = CliRunner().invoke(cli, ["make-lm", "--text", str(tmp_path / "corpus.txt"), "--language", "en",
                                      "--order", "2", str(lang_dir), str(tmp_path / "lm")])
    assert result.exit_code == 0, result.output
    assert "en, order 2 (1-grams 6, 2-grams" in result.output
    manifest = yaml.safe_load((tmp_path / "lm" / "lm.yaml").read_text())
    assert manifest["source"]["sentences"] == 3 and len(manifest["source"]["sha256"]) == 64
    result = CliRunner().invoke(cli, ["make-lm", "--arpa", str(tmp_path / "nope.arpa"), "--language", "en",
                                      str(lang_dir), str(tmp_path / "lm2")])
    assert result.exit_code == 1 and "nope.arpa" in result.output and "Traceback" not in result.output
    # A unigram-only ARPA cannot be read by the decoder's KenLM (it wrote one, then decode failed
    # with a raw traceback): refused up front.
    result = CliRunner().invoke(cli, ["make-lm", "--text", str(tmp_path / "corpus.txt"), "--language", "en",
                                      "--order", "1", str(lang_dir), str(tmp_path / "lm1")])
    assert result.exit_code == 2 and "--order" in result.output and not (tmp_path / "lm1").exists()


def test_make_lm_loop(lang_dir, tmp_path):
    (tmp_path / "corpus.txt").write_text("the dog\nthe lazy dog\n")
    result = CliRunner().invoke(cli, ["make-lm", "--text", str(tmp_path / "corpus.txt"), "--language", "en",
                                      "--loop", str(lang_dir), str(tmp_path / "lm")])
    assert result.exit_code == 0, result.output
    assert "en, order 2 (1-grams 5, 2-grams 15), 3 words in the lexicon" in result.output  # 3 + 3 x 4 bigrams
    lm = LmDir.load(tmp_path / "lm")
    assert lm.manifest["source"]["estimation"] == "word loop" and "min_count" not in lm.manifest["source"]
    arpa = lm.arpa.read_text()
    assert "-0.4771213\t<s> dog\n" in arpa and "-0.60206\tlazy the\n" in arpa  # 1/3 at the start, 1/4 after
    with pytest.raises(ConfigError, match="--loop builds a word loop"):
        make_lm_dir(tmp_path / "lm2", lang_dir, language="en", arpa=lm.arpa, loop=True)


def test_bpe_lexicon_spells_words_as_in_sentences(fixture_datadir, tmp_path):
    lang = make_lang_dir([fixture_datadir], tmp_path / "bpe", token_type="bpe", vocab_size=40, joint=True)
    lm = make_lm_dir(tmp_path / "lm_fr", tmp_path / "bpe", language="fr", data_dirs=[fixture_datadir], order=2)
    tok = lang.tokenizer("fr")
    pieces = tok.pieces()
    lexicon = {ln.split()[0]: ln.split()[1:] for ln in lm.lexicon.read_text().splitlines()}
    sentence = "le petit chat dort sur le canape"
    # a sentence's tokens are its words' spellings one after the other (pieces never cross a space)
    assert [pieces[i] for i in tok.encode(sentence)] == [p for w in sentence.split() for p in lexicon[w]]
    assert all(spelling[0].startswith("▁") for spelling in lexicon.values())
