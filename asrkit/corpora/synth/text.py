"""synth text: what the synthetic speakers say — word lists, numbers spelled out, phrases, normalisation.

Transcripts are exactly what eSpeak is given: the text is normalised (lower case, punctuation
removed) *before* synthesis, and numbers are spelled out here (0..99 for en, de, fr, es, it) rather
than left to eSpeak, so every transcript word is a spoken word. Open-vocabulary sentences use
numbers in en, de, fr and es only (`OPEN_NUMBER_LANGS`); the closed-vocabulary sentences (closed.py)
use them in all five.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import wordfreq

from asrkit.errors import ConfigError

DEFAULT_VOCAB_SIZE = 2000

_AZ = "abcdefghijklmnopqrstuvwxyz"
#: The letters a word may use, for languages we know; other languages derive theirs from the word list.
ALPHABETS: dict[str, str] = {
    "en": _AZ,
    "de": _AZ + "äöüß",
    "fr": _AZ + "àâæçéèêëîïôœùûüÿ",
    "es": _AZ + "áéíñóúü",
    "it": _AZ + "àèéìíîòóùú",
    "pt": _AZ + "áâãàçéêíóôõú",
    "nl": _AZ + "éëïóöü",
}
#: One-letter words that are real words (other single letters are spelled out by eSpeak).
ONE_LETTER_WORDS: dict[str, set[str]] = {
    "en": {"a", "i"}, "fr": {"a", "à", "y"}, "es": {"a", "y", "o", "e", "u"},
    "it": {"a", "e", "è", "i", "o"}, "pt": {"a", "e", "o", "é"}, "nl": set(), "de": set(),
}
#: Abbreviations that eSpeak expands or spells although they contain a vowel.
ABBREVIATIONS: dict[str, set[str]] = {
    "en": {"etc", "ok", "usa", "uk", "eu", "ie", "eg", "ii", "iii", "iv", "vi", "vii", "viii", "ix", "xi",
           "ai", "id", "ceo", "fbi", "nba", "nfl", "ufc", "abc", "nyc", "gop", "ios", "api", "ui", "oh"},
    "de": {"usw", "bzw", "eu", "usa", "ii", "iii", "iv", "vi", "ag", "ok"},
    "fr": {"etc", "eu", "usa", "ii", "iii", "iv", "vi", "ok"},
    "es": {"etc", "eu", "ee", "uu", "usa", "ii", "iii", "iv", "vi", "ok"},
}

_EN_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DE_ONES = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf",
            "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn", "neunzehn"]
_DE_TENS = ["", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig"]
_FR_ONES = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
            "douze", "treize", "quatorze", "quinze", "seize", "dix sept", "dix huit", "dix neuf"]
_FR_TENS = ["", "", "vingt", "trente", "quarante", "cinquante", "soixante", "soixante", "quatre vingt",
            "quatre vingt"]
_ES_ONES = ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once",
            "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve",
            "veinte", "veintiuno", "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis",
            "veintisiete", "veintiocho", "veintinueve"]
_ES_TENS = ["", "", "veinte", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa"]
_IT_ONES = ["zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci", "undici",
            "dodici", "tredici", "quattordici", "quindici", "sedici", "diciassette", "diciotto", "diciannove"]
_IT_TENS = ["", "", "venti", "trenta", "quaranta", "cinquanta", "sessanta", "settanta", "ottanta", "novanta"]


def _en_number(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    tens, ones = divmod(n, 10)
    return _EN_TENS[tens] + (f" {_EN_ONES[ones]}" if ones else "")


def _de_number(n: int) -> str:
    if n < 20:
        return _DE_ONES[n]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return _DE_TENS[tens]
    return ("ein" if ones == 1 else _DE_ONES[ones]) + "und" + _DE_TENS[tens]


def _fr_number(n: int) -> str:
    if n < 20:
        return _FR_ONES[n]
    tens, ones = divmod(n, 10)
    if tens in (7, 9):  # soixante-dix.., quatre-vingt-dix..: the base-20 tens
        rest = 10 + ones
        joiner = " et " if (tens == 7 and ones == 1) else " "
        return _FR_TENS[tens] + joiner + _FR_ONES[rest]
    if ones == 0:
        return "quatre vingts" if tens == 8 else _FR_TENS[tens]
    if ones == 1 and tens != 8:
        return f"{_FR_TENS[tens]} et un"
    return f"{_FR_TENS[tens]} {_FR_ONES[ones]}"


def _es_number(n: int) -> str:
    if n < 30:
        return _ES_ONES[n]
    tens, ones = divmod(n, 10)
    return _ES_TENS[tens] + (f" y {_ES_ONES[ones]}" if ones else "")


def _it_number(n: int) -> str:
    if n < 20:
        return _IT_ONES[n]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return _IT_TENS[tens]
    if ones in (1, 8):  # the tens lose their vowel before a vowel: ventuno, trentotto
        return _IT_TENS[tens][:-1] + _IT_ONES[ones]
    return _IT_TENS[tens] + ("tré" if ones == 3 else _IT_ONES[ones])


#: Number spellers for 0..99, already in normalised transcript form (hyphens are spaces).
NUMBER_WORDS = {"en": _en_number, "de": _de_number, "fr": _fr_number, "es": _es_number, "it": _it_number}
#: The languages whose open-vocabulary sentences include numbers. Italian got its speller later (for
#: the closed sentences) and stays out: the open corpus must not change under the same options.
OPEN_NUMBER_LANGS = ("en", "de", "fr", "es")

#: Short everyday phrases, normalised. Languages without a list get one- to three-word snippets.
PHRASES: dict[str, list[str]] = {
    "en": ["good morning", "thank you very much", "see you tomorrow", "how are you", "please sit down",
           "where is the station", "i do not know", "have a nice day", "what time is it", "turn left here"],
    "de": ["guten morgen", "vielen dank", "bis morgen", "wie geht es dir", "bitte setzen sie sich",
           "wo ist der bahnhof", "ich weiß es nicht", "schönen tag noch", "wie spät ist es", "hier links abbiegen"],
    "fr": ["bonjour", "merci beaucoup", "à demain", "comment allez vous", "asseyez vous", "où est la gare",
           "je ne sais pas", "bonne journée", "quelle heure est il", "tournez à gauche ici"],
    "es": ["buenos días", "muchas gracias", "hasta mañana", "cómo estás", "siéntese por favor",
           "dónde está la estación", "no lo sé", "que tengas un buen día", "qué hora es", "gire a la izquierda aquí"],
}


def number_to_words(n: int, lang: str) -> str:
    """Spell `n` (0..99) as normalised words in `lang` (en, de, fr, es, it), e.g. `(71, "fr")` -> `soixante et onze`.

    Raises:
        ConfigError: no speller for `lang`, or `n` out of range.
    """
    base = lang.split("-")[0]
    if base not in NUMBER_WORDS:
        raise ConfigError(f"no number speller for language '{lang}' (have: {', '.join(NUMBER_WORDS)})")
    if not 0 <= n <= 99:
        raise ConfigError(f"number {n} out of range 0..99")
    return NUMBER_WORDS[base](n)


def normalize_transcript(text: str) -> str:
    """Normalise a transcript the way recipes expect: NFC, lower case, punctuation and symbols removed.

    Letters (with their combining marks) and digits are kept; every other character becomes a word
    boundary, so `"Dix-sept, l'homme!"` becomes `"dix sept l homme"`. Whitespace is collapsed.
    """
    text = unicodedata.normalize("NFC", text).lower()
    kept = [c if unicodedata.category(c)[0] in "LMN" else " " for c in text]
    return " ".join("".join(kept).split())


def _wordfreq_lang(lang: str) -> str:
    return {"cmn": "zh", "yue": "zh"}.get(lang.split("-")[0], lang.split("-")[0])


def _base_letter(c: str) -> str:
    return unicodedata.normalize("NFD", c)[0]


def language_letters(lang: str, words: Sequence[str]) -> set[str]:
    """The letters of `lang`: a known alphabet, or the letters used by >= 0.2% of its frequent `words`."""
    base = lang.split("-")[0]
    if base in ALPHABETS:
        return set(ALPHABETS[base])
    counts: dict[str, int] = {}
    for w in words:
        for c in set(w):
            if unicodedata.category(c)[0] in "LM":
                counts[c] = counts.get(c, 0) + 1
    threshold = max(1, int(0.002 * len(words)))
    return {c for c, n in counts.items() if n >= threshold}


def filter_words(lang: str, words: Iterable[str], letters: set[str]) -> list[str]:
    """Keep the words eSpeak will say as written: only `letters`, no abbreviations, a vowel where we know them."""
    base = lang.split("-")[0]
    one_letter = ONE_LETTER_WORDS.get(base, set())
    banned = ABBREVIATIONS.get(base, set())
    check_vowel = base in ALPHABETS
    kept = []
    for w in words:
        w = unicodedata.normalize("NFC", w)
        if not w or any(c not in letters for c in w) or w in banned:
            continue
        if len(w) == 1 and w not in one_letter:
            continue
        if check_vowel and not any(_base_letter(c) in "aeiouyæœ" for c in w):
            continue
        kept.append(w)
    return kept


@dataclass
class Lexicon:
    """What sentences in one language are made of.

    Attributes:
        lang: eSpeak language code.
        words: the vocabulary, most frequent first.
        probs: sampling probability per word (flattened Zipf: proportional to 1/sqrt(rank)).
        phrases: normalised short phrases (may be empty).
        has_numbers: whether `number_to_words` covers the language.
    """

    lang: str
    words: list[str]
    probs: np.ndarray
    phrases: list[str]
    has_numbers: bool


def load_lexicon(lang: str, vocab_size: int = DEFAULT_VOCAB_SIZE) -> Lexicon:
    """Build the lexicon of `lang` from wordfreq's word list (shipped in the package: works offline).

    Raises:
        ConfigError: wordfreq has no list for the language, or too few usable words.
    """
    wf = _wordfreq_lang(lang)
    if wf not in wordfreq.available_languages():
        # wordfreq would silently fall back to English for an unknown code: refuse instead.
        have = ", ".join(sorted(wordfreq.available_languages())[:20])
        raise ConfigError(f"language '{lang}' has no word list in wordfreq (word lists exist for: {have}, ...)")
    raw = wordfreq.top_n_list(wf, max(5000, vocab_size * 3))
    letters = language_letters(lang, raw)
    words = filter_words(lang, raw, letters)[:vocab_size]
    if len(words) < 50:
        raise ConfigError(f"language '{lang}': only {len(words)} usable words in wordfreq's list (need 50)")
    weights = 1.0 / np.sqrt(np.arange(1, len(words) + 1))
    base = lang.split("-")[0]
    return Lexicon(lang=lang, words=words, probs=weights / weights.sum(), phrases=list(PHRASES.get(base, [])),
                   has_numbers=base in OPEN_NUMBER_LANGS)


def make_sentence(rng: np.random.Generator, lexicon: Lexicon) -> str:
    """Draw one normalised sentence: a phrase (12%), a number in context (15%) or 3..10 words."""
    kind = rng.random()
    if kind < 0.12:
        if lexicon.phrases:
            return lexicon.phrases[int(rng.integers(len(lexicon.phrases)))]
        return _words(rng, lexicon, int(rng.integers(1, 4)))
    if kind < 0.27 and lexicon.has_numbers:
        before = _words(rng, lexicon, int(rng.integers(1, 4)))
        after = _words(rng, lexicon, int(rng.integers(0, 3)))
        number = number_to_words(int(rng.integers(0, 100)), lexicon.lang)
        return " ".join(p for p in (before, number, after) if p)
    return _words(rng, lexicon, int(rng.integers(3, 11)))


def _words(rng: np.random.Generator, lexicon: Lexicon, n: int) -> str:
    if n == 0:
        return ""
    idx = rng.choice(len(lexicon.words), size=n, p=lexicon.probs)
    return " ".join(lexicon.words[i] for i in idx)
