"""synth --text closed: small per-language vocabularies, sentences fixed by the seed, the open corpus unchanged,
and the text mode in the corpus stamp."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from asrkit.corpora import espeak, synth
from asrkit.corpora.synth import SynthConfig
from asrkit.corpora.synth.corpus import _stamp
from asrkit.errors import ConfigError
from asrkit.kaldi.textio import read_table

CLOSED_LANGS = ("en", "de", "fr", "es", "it")


def _texts(config: SynthConfig, lang: str, n: int) -> list[str]:
    speakers = synth.make_speakers(lang, 12, config.seed, sorted(espeak.VARIANT_GENDER))["train"]
    source = synth.load_sentences(config, lang)
    return [synth.plan_utterance(config, source, speakers, "train", i, Path("/a")).text for i in range(n)]


@pytest.mark.parametrize("lang", CLOSED_LANGS)
def test_closed_sentences_use_only_the_word_list_and_the_numbers(lang):
    grammar = synth.closed_grammar(lang)
    assert 30 <= len(grammar.words()) <= 80
    # 17 numbers of one word each: German says 21..99 in one word, so it must not say them (issue 18.4).
    numbers = grammar.numbers()
    assert len(numbers) == 17 and all(len(w.split()) == 1 for w in numbers)
    rng = np.random.default_rng(0)
    sentences = [grammar.sentence(rng) for _ in range(1000)]
    used = {w for s in sentences for w in s.split()}
    assert used <= grammar.words() | numbers
    assert grammar.words() | numbers <= used  # every word is said somewhere in 1000 sentences
    # Each number word is heard often: the rarest at least 1% as often as the commonest.
    counts = {w: sum(s.split().count(w) for s in sentences) for w in numbers}
    assert min(counts.values()) >= 0.01 * max(counts.values())
    assert all(synth.normalize_transcript(s) == s for s in sentences)
    assert all(set(s.replace(" ", "")) <= set(synth.ALPHABETS[lang]) for s in sentences)
    lengths = [len(s.split()) for s in sentences]
    assert 2 <= min(lengths) and max(lengths) <= 16
    # 3-5 digits: about a third of the sentences are digit strings.
    all_numbers = sum(set(s.split()) <= numbers | {grammar.number_prefix} for s in sentences)
    assert 0.25 < all_numbers / len(sentences) < 0.45


def test_closed_text_is_fixed_by_the_seed():
    closed = SynthConfig(langs=("de",), text="closed", seed=2)
    first = _texts(closed, "de", 50)
    assert first == _texts(closed, "de", 50)
    assert first != _texts(SynthConfig(langs=("de",), text="closed", seed=3), "de", 50)
    grammar = synth.closed_grammar("de")
    assert set(" ".join(first).split()) <= grammar.words() | grammar.numbers()


def test_open_text_is_what_it_was_before_closed_mode():
    # The hash of main's open sentences before --text existed (Italian then had no number speller;
    # its open sentences must still have no numbers).
    config = SynthConfig(langs=("en", "it"), seed=3)
    digest = hashlib.sha256()
    for lang in config.langs:
        for text in _texts(config, lang, 200):
            digest.update(text.encode() + b"\n")
    assert digest.hexdigest() == "437222734c8b27fc5e5428ee26573dceec37dfc7562998e5ce5fd3d823d088c1"
    assert not synth.load_lexicon("it", 100).has_numbers


def test_stamp_records_the_text_mode_and_old_open_stamps_still_match():
    open_stamp = _stamp(SynthConfig(), "library 1.52")
    assert "text" not in open_stamp and open_stamp["vocab_size"] == 2000
    closed_stamp = _stamp(SynthConfig(text="closed"), "library 1.52")
    assert closed_stamp["text"] == "closed" and "vocab_size" not in closed_stamp
    assert closed_stamp["grammar"] == synth.closed.GRAMMAR_VERSION and "grammar" not in open_stamp


def test_closed_config_errors():
    with pytest.raises(ConfigError, match="--text closed: no closed-vocabulary word list for language 'nl'"):
        synth.check_config(SynthConfig(langs=("en", "nl"), text="closed"))
    with pytest.raises(ConfigError, match="--text shut: must be one of open, closed"):
        synth.check_config(SynthConfig(text="shut"))


def test_cli_builds_closed_and_a_mode_change_is_not_reused(asrkit_cli, tmp_path):
    out = tmp_path / "c"
    args = ("prepare", "synth", out, "--langs", "it", "--utts-per-lang", "3", "--speakers-per-lang", "6")
    proc = asrkit_cli(*args, "--text", "closed")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / ".done").read_text())["text"] == "closed"
    texts = read_table(out / "train_it/text")
    vocab = synth.closed_grammar("it").words() | synth.closed_grammar("it").numbers()
    assert texts and all(set(t.split()) <= vocab for t in texts.values())
    again = asrkit_cli(*args)  # --text open now
    assert again.returncode == 1
    assert "other options (grammar, text, vocab_size differ)" in again.stderr
    rebuilt = asrkit_cli(*args, "--overwrite")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "text" not in json.loads((out / ".done").read_text())
    assert read_table(out / "train_it/text") != texts
