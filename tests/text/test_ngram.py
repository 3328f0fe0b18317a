"""Word n-grams: interpolated Kneser-Ney estimation, ARPA writing, and checking existing ARPA files."""

from __future__ import annotations

import gzip
import math

import pytest

from asrkit.errors import ConfigError, FormatError
from asrkit.text.ngram import BOS, EOS, copy_arpa, estimate_kneser_ney, read_arpa, word_loop, write_arpa


def prob(model, history: tuple[str, ...], word: str) -> float:
    """P(word | history) of a backoff model, by the ARPA rules."""
    backoff = 0.0
    for k in range(len(history), -1, -1):
        h = history[len(history) - k:]
        if h + (word,) in model.ngrams[k]:
            return 10.0 ** (model.ngrams[k][h + (word,)][0] + backoff)
        if k:
            backoff += model.ngrams[k - 1].get(h, (0.0, None))[1] or 0.0
    raise AssertionError(f"{word} is not in the model")


def test_backoff_kneser_ney_as_make_kn_lm_py():
    # "a b" and "b". Unigrams (no discount): continuation counts a 1, b 2, </s> 1 of 4. Bigrams:
    # raw counts <s>a 1, ab 1, <s>b 1, b</s> 2, so D = 3 / (3 + 2) and, backing off (not
    # interpolating), P(b | a) = (1 - D) / 1, P(a | <s>) = (1 - D) / 2.
    model = estimate_kneser_ney(["a b", "b"], order=2)
    assert prob(model, (), "a") == pytest.approx(0.25)
    assert prob(model, (), "b") == pytest.approx(0.5)
    assert prob(model, ("a",), "b") == pytest.approx(0.4)
    assert prob(model, (BOS,), "a") == pytest.approx(0.2)
    assert model.ngrams[0][(BOS,)][0] == -99.0
    # backoff weights: bow(a) = (1 - 0.4) / (1 - P(b)); an unseen bigram backs off: P(a | b) = bow(b) P(a)
    assert 10 ** model.ngrams[0][("a",)][1] == pytest.approx(0.6 / 0.5)
    assert prob(model, ("b",), "a") == pytest.approx((1 - 0.7) / (1 - 0.25) * 0.25)


def test_interpolated_kneser_ney():
    # Unigram D = 1 / (1 + 2 * 3) (raw counts <s> 2, a 1, b 2, </s> 2), its mass spread uniformly
    # over a, b, </s>; bigrams mix in the unigram with the discounted mass D * types / total.
    model = estimate_kneser_ney(["a b", "b"], order=2, interpolate=True)
    assert prob(model, (), "a") == pytest.approx((1 - 1 / 7 + 1 / 7 * 3 / 3) / 4)
    assert prob(model, ("a",), "b") == pytest.approx(0.4 + 0.6 * 0.5)
    assert prob(model, (BOS,), "a") == pytest.approx((0.4 + 0.6 * 2 * 0.25) / 2)


@pytest.mark.parametrize("min_count", [1, 2])
@pytest.mark.parametrize("interpolate", [False, True])
def test_every_history_sums_to_one(min_count, interpolate):
    sents = ["a b c", "a b d", "b c a", "c a b", "a a b c d", "a b c", "e f", "f e a"]
    model = estimate_kneser_ney(sents, order=3, min_count=min_count, interpolate=interpolate)
    vocab = [w for w in model.words if w != BOS]
    for history in [(), ("a",), (BOS, "a"), ("a", "b"), ("d",), ("b", "a"), ("c", "d")]:
        assert sum(prob(model, history, w) for w in vocab) == pytest.approx(1.0)
    if min_count == 2:
        assert ("b", "d") not in model.ngrams[1] and ("a", "b", "c") in model.ngrams[2]
        assert model.counts[2] < estimate_kneser_ney(sents, order=3, interpolate=interpolate).counts[2]


def test_word_loop_prefers_no_word():
    # A bigram of yesno's training transcripts (every one starts with NO) gives a first YES almost
    # nothing; the loop gives every word the same probability after every word and at the start.
    biased = estimate_kneser_ney(["NO NO YES YES", "NO YES NO YES"], order=2)
    assert prob(biased, (BOS,), "YES") < prob(biased, (BOS,), "NO") / 5
    model = word_loop(["NO", "YES", "NO", BOS, EOS])
    assert model.order == 2 and model.words == [EOS, BOS, "NO", "YES"]
    assert prob(model, (BOS,), "YES") == prob(model, (BOS,), "NO") == pytest.approx(1 / 2)
    assert prob(model, (BOS,), EOS) < 1e-90  # no empty sentence: each history sums to one
    for history in [("NO",), ("YES",)]:
        assert [prob(model, history, w) for w in ["NO", "YES", EOS]] == pytest.approx([1 / 3] * 3)
    with pytest.raises(ConfigError, match="no words"):
        word_loop([BOS, EOS])


def test_arpa_round_trip_tab_separated(tmp_path):
    model = estimate_kneser_ney(["x y z", "y z", "z x"], order=3)
    write_arpa(model, tmp_path / "lm.arpa")
    lines = (tmp_path / "lm.arpa").read_text().splitlines()
    assert "\t" in lines[lines.index("\\2-grams:") + 1]
    info = read_arpa(tmp_path / "lm.arpa")
    assert info.order == 3 and info.counts == model.counts
    assert info.words == ["</s>", "<s>", "x", "y", "z"]


def test_existing_gzipped_arpa_with_spaces_is_normalised(tmp_path):
    text = "\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1.0 <s> -0.5\n-0.5 hello -0.2\n-0.5 </s>\n\n" \
           "\\2-grams:\n-0.1 <s> hello\n\n\\end\\\n"
    with gzip.open(tmp_path / "lm.arpa.gz", "wt") as f:
        f.write(text)
    info = copy_arpa(tmp_path / "lm.arpa.gz", tmp_path / "out.arpa")
    assert info.order == 2 and info.counts == [3, 1]
    assert "-0.1\t<s> hello\n" in (tmp_path / "out.arpa").read_text()


@pytest.mark.parametrize("text, message", [
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0 a\n-x b\n\n\\end\\\n", ":6: bad number"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0 a\n\n\\end\\\n", "says ngram 1=2 but the file has 1"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 a b c d\n\n\\end\\\n", ":5: a 1-gram line needs"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 a\n", "no \\end\\"),
    ("hello\n", ":1: expected the \\data\\ header"),
    ("\\data\\\nngram 1=1\n\n\\2-grams:\n", ":4: section \\2-grams: has no"),
])
def test_bad_arpa_names_file_and_line(tmp_path, text, message):
    (tmp_path / "bad.arpa").write_text(text)
    with pytest.raises(FormatError) as e:
        read_arpa(tmp_path / "bad.arpa")
    assert str(tmp_path / "bad.arpa") in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_options():
    with pytest.raises(ConfigError, match="order"):
        estimate_kneser_ney(["a"], order=0)
    with pytest.raises(ConfigError, match="no words"):
        estimate_kneser_ney(["", "  "], order=2)
    assert math.isfinite(estimate_kneser_ney(["a"], order=1).ngrams[0][("a",)][0])
