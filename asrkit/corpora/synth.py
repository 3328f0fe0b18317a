"""`synth`: an offline multilingual speech corpus made with eSpeak NG, for demos, tests and benchmarks.

Sentences are sampled from each language's word list (wordfreq), plus numbers written out as words
and short everyday phrases; each language gets voice-variant speakers with their own pitch and
rate ranges, split so dev and test speakers never occur in train. Audio is 16 kHz 16-bit FLAC,
optionally with additive noise and reverberation; the output is Kaldi data dirs per language and
split plus combined `train`, `dev`, `test`. The same options and seed give byte-identical files.

Transcripts are exactly what eSpeak is given: the text is normalised (lower case, punctuation
removed) *before* synthesis, and numbers are spelled out here (0..99 for en, de, fr, es) rather than
left to eSpeak, so every transcript word is a spoken word. Languages without a number speller get
no number sentences.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from asrkit.corpora import espeak
from asrkit.errors import AsrkitError, ConfigError, DataDirError
from asrkit.fileio import atomic_write, atomic_write_text
from asrkit.kaldi.textio import write_table
from asrkit.logutil import get_logger

logger = get_logger("corpora.synth")

SAMPLE_RATE = 16000
DEFAULT_LANGS = ("en", "de", "fr", "es")
DEFAULT_UTTS_PER_LANG = 300
DEFAULT_SPEAKERS_PER_LANG = 12
DEFAULT_VOCAB_SIZE = 2000
SPLITS = ("train", "dev", "test")
#: dev and test each get this share of a language's utterances (or hours); train gets the rest.
HELD_OUT_FRACTION = 0.1
#: Bumped when the same options would produce different files, so old stamps stop matching.
FORMAT_VERSION = 1
DONE_STAMP = ".done"
PARTIAL_STAMP = ".partial"

_DATA_DIR_RE = re.compile(r"^(train|dev|test)(_[A-Za-z0-9-]+)?$")

# ---------------------------------------------------------------------------------------------
# Text: letters, word lists, numbers, phrases, normalisation

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


#: Number spellers for 0..99, already in normalised transcript form (hyphens are spaces).
NUMBER_WORDS = {"en": _en_number, "de": _de_number, "fr": _fr_number, "es": _es_number}

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
    """Spell `n` (0..99) as normalised words in `lang` (en, de, fr, es), e.g. `(71, "fr")` -> `soixante et onze`.

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
    import wordfreq

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
                   has_numbers=base in NUMBER_WORDS)


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


# ---------------------------------------------------------------------------------------------
# Options, speakers, utterance plans


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synth corpus (recorded in OUT_DIR/.done).

    Attributes:
        langs: eSpeak language codes.
        utts_per_lang: utterances per language over train+dev+test (default 300 when no size given).
        hours_per_lang: hours of audio per language over train+dev+test (exclusive with utts_per_lang).
        low_resource: `(lang, hours)` pairs: that language's train set is cut to `hours` hours.
        speakers_per_lang: speakers per language, one voice variant each (3..number of variants).
        vocab_size: most frequent usable words per language to sample from.
        noise_snr: `(low_db, high_db)` to add noise at an SNR drawn per utterance, or None.
        reverb: convolve with a synthetic room response (RT60 0.2..0.7 s) per utterance.
        seed: the corpus seed.
        relative: wav.scp paths relative to the current directory instead of absolute.
        backend: eSpeak backend, "auto", "library" or "binary".
    """

    langs: tuple[str, ...] = DEFAULT_LANGS
    utts_per_lang: int | None = None
    hours_per_lang: float | None = None
    low_resource: tuple[tuple[str, float], ...] = ()
    speakers_per_lang: int = DEFAULT_SPEAKERS_PER_LANG
    vocab_size: int = DEFAULT_VOCAB_SIZE
    noise_snr: tuple[float, float] | None = None
    reverb: bool = False
    seed: int = 0
    relative: bool = False
    backend: str = "auto"


def parse_langs(text: str) -> tuple[str, ...]:
    """`"en,de"` -> `("en", "de")`. Raises ConfigError on an empty or repeated language."""
    langs = tuple(x.strip().lower() for x in text.split(",") if x.strip())
    if not langs:
        raise ConfigError("--langs: no language given")
    dup = sorted({x for x in langs if langs.count(x) > 1})
    if dup:
        raise ConfigError(f"--langs: language '{dup[0]}' given twice")
    return langs


def parse_snr_range(text: str) -> tuple[float, float]:
    """`"10:30"` -> `(10.0, 30.0)` (dB). A single number `"20"` means exactly that SNR.

    Raises:
        ConfigError: not `LOW:HIGH` numbers with LOW <= HIGH, or not finite.
    """
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--noise-snr '{text}': expected LOW:HIGH in dB, e.g. 10:30")
    low, high = values[0], values[-1]
    if low > high:
        raise ConfigError(f"--noise-snr '{text}': LOW ({low:g}) is greater than HIGH ({high:g})")
    return low, high


def parse_low_resource(text: str) -> tuple[str, float]:
    """`"de:0.1"` -> `("de", 0.1)`. Raises ConfigError unless `LANG:HOURS` with HOURS > 0."""
    lang, sep, hours = text.partition(":")
    try:
        value = float(hours)
    except ValueError:
        value = float("nan")
    if not sep or not lang.strip() or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"--low-resource '{text}': expected LANG:HOURS with HOURS > 0, e.g. de:0.1")
    return lang.strip().lower(), value


def check_config(config: SynthConfig, languages: Sequence[str] | None = None) -> None:
    """Check options that need no synthesis; `languages` is eSpeak's list (looked up when None).

    Raises:
        ConfigError: naming the option and value at fault.
    """
    if config.utts_per_lang is not None and config.hours_per_lang is not None:
        raise ConfigError("give either --utts-per-lang or --hours-per-lang, not both")
    if config.utts_per_lang is not None and config.utts_per_lang < 3:
        raise ConfigError(f"--utts-per-lang {config.utts_per_lang}: need at least 3 (train, dev and test)")
    if config.hours_per_lang is not None and not config.hours_per_lang > 0:
        raise ConfigError(f"--hours-per-lang {config.hours_per_lang}: must be > 0")
    if config.noise_snr is not None:
        low, high = config.noise_snr
        if low > high:
            raise ConfigError(f"--noise-snr {low:g}:{high:g}: LOW is greater than HIGH")
    if not config.langs:
        raise ConfigError("--langs: no language given")
    known = set(languages if languages is not None else espeak.available_languages(config.backend))
    for lang in config.langs:
        if lang not in known:
            close = sorted(k for k in known if k.split("-")[0] == lang.split("-")[0] or k[:1] == lang[:1])
            examples = ", ".join((close or sorted(known))[:12])
            raise ConfigError(f"unknown language '{lang}': eSpeak NG has no voice for it "
                              f"(available include: {examples}; {len(known)} in all)")
        if not re.fullmatch(r"[a-z0-9-]+", lang):
            raise ConfigError(f"language '{lang}': codes may use only a-z, 0-9 and '-'")
    seen = set()
    for lang, hours in config.low_resource:
        if lang not in config.langs:
            raise ConfigError(f"--low-resource {lang}:{hours:g}: language '{lang}' is not in --langs "
                              f"({','.join(config.langs)})")
        if lang in seen:
            raise ConfigError(f"--low-resource: language '{lang}' given twice")
        seen.add(lang)
    n_variants = len(espeak.available_variants(config.backend))
    if not 3 <= config.speakers_per_lang <= n_variants:
        raise ConfigError(f"--speakers-per-lang {config.speakers_per_lang}: must be between 3 and {n_variants} "
                          "(one eSpeak voice variant per speaker)")
    if config.vocab_size < 50:
        raise ConfigError(f"--vocab-size {config.vocab_size}: must be at least 50")


def _lang_key(lang: str) -> int:
    return zlib.crc32(lang.encode("utf-8"))


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a voice variant with its own pitch, pitch-range and rate intervals.

    Attributes:
        spk_id: `<lang>-<variant>`, e.g. `en-m3`.
        lang, variant, gender ("m"/"f").
        pitch, pitch_range, rate: inclusive `(low, high)` eSpeak values each utterance draws from.
    """

    spk_id: str
    lang: str
    variant: str
    gender: str
    pitch: tuple[int, int]
    pitch_range: tuple[int, int]
    rate: tuple[int, int]


def make_speakers(lang: str, num_speakers: int, seed: int, variants: Sequence[str]) -> dict[str, list[Speaker]]:
    """Draw `num_speakers` speakers of `lang` and split them into train/dev/test.

    dev and test get `max(1, round(num_speakers / 6))` speakers each (2 of the default 12), train the
    rest; no speaker is in two splits.

    Returns:
        `{"train": [...], "dev": [...], "test": [...]}`, each list sorted by speaker id.
    """
    rng = np.random.default_rng([seed, _lang_key(lang), 1])
    chosen = [variants[i] for i in rng.permutation(len(variants))[:num_speakers]]
    speakers = []
    for variant in chosen:
        pitch = int(rng.integers(25, 76))
        prange = int(rng.integers(30, 81))
        rate = int(rng.integers(140, 206))
        speakers.append(Speaker(spk_id=f"{lang}-{variant}", lang=lang, variant=variant,
                                gender=espeak.VARIANT_GENDER[variant],
                                pitch=(pitch - 8, pitch + 8), pitch_range=(prange - 10, prange + 10),
                                rate=(rate - 15, rate + 15)))
    n_held = max(1, round(num_speakers / 6))
    splits = {"dev": speakers[:n_held], "test": speakers[n_held:2 * n_held], "train": speakers[2 * n_held:]}
    return {name: sorted(spks, key=lambda s: s.spk_id) for name, spks in splits.items()}


@dataclass(frozen=True)
class UttPlan:
    """One utterance to synthesise; everything random about it is decided here, from its seed.

    Attributes:
        utt_id: `<spk_id>-<5-digit index within the speaker>`.
        spk_id, lang, split, index (position within the language's split).
        text: normalised transcript, which is also what eSpeak says.
        voice: eSpeak voice settings.
        espeak_seed: seed for eSpeak's own noise generator.
        effects_seed: seed for the noise and room response.
        snr_db: additive noise SNR, or None. noise_color: "white", "pink" or "brown".
        rt60: reverberation time in seconds, or None.
        audio_path: where the FLAC goes (absolute).
    """

    utt_id: str
    spk_id: str
    lang: str
    split: str
    index: int
    text: str
    voice: espeak.Voice
    espeak_seed: int
    effects_seed: int
    snr_db: float | None
    noise_color: str
    rt60: float | None
    audio_path: str


def plan_utterance(config: SynthConfig, lexicon: Lexicon, speakers: Sequence[Speaker], split: str, index: int,
                   audio_dir: Path) -> UttPlan:
    """Plan utterance `index` of `split` in `lexicon.lang`: a function of (seed, lang, split, index) only.

    Speakers take turns (`index % len(speakers)`). The text and voice are drawn before the effects,
    so adding --noise-snr or --reverb changes the audio but not what is said or by whom.
    """
    lang = lexicon.lang
    rng = np.random.default_rng([config.seed, _lang_key(lang), 2, SPLITS.index(split), index])
    text = make_sentence(rng, lexicon)
    spk = speakers[index % len(speakers)]
    voice = espeak.Voice(lang=lang, variant=spk.variant,
                         rate=int(rng.integers(spk.rate[0], spk.rate[1] + 1)),
                         pitch=int(rng.integers(spk.pitch[0], spk.pitch[1] + 1)),
                         pitch_range=int(rng.integers(spk.pitch_range[0], spk.pitch_range[1] + 1)))
    espeak_seed = int(rng.integers(1, 2**31 - 1))
    effects_seed = int(rng.integers(0, 2**62))
    snr_db, color, rt60 = None, "white", None
    if config.noise_snr is not None:
        snr_db = float(rng.uniform(config.noise_snr[0], config.noise_snr[1]))
        color = ("white", "pink", "brown")[int(rng.integers(3))]
    if config.reverb:
        rt60 = float(rng.uniform(0.2, 0.7))
    utt_id = f"{spk.spk_id}-{index // len(speakers):05d}"
    return UttPlan(utt_id=utt_id, spk_id=spk.spk_id, lang=lang, split=split, index=index, text=text,
                   voice=voice, espeak_seed=espeak_seed, effects_seed=effects_seed, snr_db=snr_db,
                   noise_color=color, rt60=rt60,
                   audio_path=str(audio_dir / lang / spk.spk_id / f"{utt_id}.flac"))


def estimated_seconds(plan: UttPlan) -> float:
    """A rough duration of a planned utterance (words at the voice's rate plus pauses), for sizing by hours."""
    return len(plan.text.split()) * 60.0 / plan.voice.rate + 0.6


# ---------------------------------------------------------------------------------------------
# Audio: synthesis, resampling, effects, FLAC (runs in worker processes)


def add_noise(speech: np.ndarray, snr_db: float, color: str, rng: np.random.Generator) -> np.ndarray:
    """Add white, pink or brown noise at `snr_db` (speech power over the whole utterance).

    Args:
        speech: float64 samples, shape `(num_samples,)`.
    Returns:
        float64 `(num_samples,)`.
    """
    n = speech.shape[0]
    noise = rng.standard_normal(n)
    if color != "white":
        spectrum = np.fft.rfft(noise)
        freqs = np.arange(spectrum.shape[0], dtype=np.float64)
        freqs[0] = 1.0
        spectrum /= np.sqrt(freqs) if color == "pink" else freqs
        noise = np.fft.irfft(spectrum, n=n)
    speech_power = float(np.mean(speech**2)) or 1e-10
    noise_power = float(np.mean(noise**2)) or 1e-10
    return speech + noise * math.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))


def add_reverb(speech: np.ndarray, rt60: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path plus an exponentially decaying noise tail.

    The tail decays by 60 dB in `rt60` seconds; the direct-to-reverberant ratio is drawn in 0..8 dB.
    The output keeps the input's length and RMS.

    Args:
        speech: float64 samples, shape `(num_samples,)`.
    Returns:
        float64 `(num_samples,)`.
    """
    import torch
    import torchaudio.functional as AF

    length = max(2, int(rt60 * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.908 * t / rt60)
    tail[0] = 0.0
    drr_db = rng.uniform(0.0, 8.0)
    tail *= math.sqrt(10 ** (-drr_db / 10) / float(np.sum(tail**2)))
    rir = tail
    rir[0] = 1.0
    out = AF.fftconvolve(torch.from_numpy(speech), torch.from_numpy(rir)).numpy()[: speech.shape[0]]
    rms_in, rms_out = math.sqrt(float(np.mean(speech**2))), math.sqrt(float(np.mean(out**2)))
    return out * (rms_in / rms_out) if rms_out > 0 else out


def render_utterance(engine, plan: UttPlan) -> np.ndarray:
    """Synthesise, resample to 16 kHz and apply the planned effects.

    Args:
        engine: an `espeak.EspeakLibrary` or `espeak.EspeakBinary`.
    Returns:
        int16 samples at 16 kHz, shape `(num_samples,)`.
    Raises:
        AsrkitError: eSpeak failed or produced no audio.
    """
    import torch
    import torchaudio.functional as AF

    raw = engine.synthesize(plan.text, plan.voice, seed=plan.espeak_seed)
    if raw.size == 0:
        raise AsrkitError(f"{plan.utt_id}: eSpeak produced no audio for {plan.text!r}")
    wave = torch.from_numpy(raw.astype(np.float32) / 32768.0)
    audio = AF.resample(wave, engine.sample_rate, SAMPLE_RATE).numpy().astype(np.float64)
    rng = np.random.default_rng(plan.effects_seed)
    if plan.rt60 is not None:
        audio = add_reverb(audio, plan.rt60, rng)
    if plan.snr_db is not None:
        audio = add_noise(audio, plan.snr_db, plan.noise_color, rng)
    peak = float(np.max(np.abs(audio)))
    if peak > 0.97:  # eSpeak speaks near full scale; resampling, noise and reverb can overshoot
        audio *= 0.97 / peak
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def write_flac(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write int16 `samples` `(num_samples,)` as 16-bit FLAC, atomically (libFLAC output is deterministic)."""
    import soundfile as sf

    with atomic_write(path, "wb") as f:
        sf.write(f, samples, sample_rate, format="FLAC", subtype="PCM_16")


_ENGINE = None


def _init_worker(backend: str) -> None:
    global _ENGINE
    import torch

    # One thread per worker: no oversubscription, and float results that do not depend on --nj.
    torch.set_num_threads(1)
    _ENGINE = espeak.open_engine(backend)


def _synthesize_chunk(plans: list[UttPlan]) -> list[tuple[str, int]]:
    out = []
    for plan in plans:
        samples = render_utterance(_ENGINE, plan)
        Path(plan.audio_path).parent.mkdir(parents=True, exist_ok=True)
        write_flac(plan.audio_path, samples)
        out.append((plan.utt_id, int(samples.shape[0])))
    return out


def synthesize_plans(plans: Sequence[UttPlan], nj: int, backend: str) -> dict[str, int]:
    """Synthesise `plans` with `nj` worker processes (each initialises eSpeak once).

    Returns:
        `{utt_id: num_samples_at_16k}`.
    Raises:
        AsrkitError: from any worker.
    """
    import multiprocessing as mp

    if not plans:
        return {}
    chunk = max(1, min(16, len(plans) // (4 * nj) or 1))
    chunks = [list(plans[i:i + chunk]) for i in range(0, len(plans), chunk)]
    # fork: workers start instantly; they never inherit an initialised eSpeak (the parent never has one).
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    if method == "fork":
        # Imported once here rather than in every worker (seconds each); nothing runs on it before the fork.
        import torchaudio.functional  # noqa: F401
    ctx = mp.get_context(method)
    results: dict[str, int] = {}
    start = time.time()
    progress = _progress(len(plans))
    with ctx.Pool(processes=nj, initializer=_init_worker, initargs=(backend,)) as pool:
        for done in pool.imap_unordered(_synthesize_chunk, chunks):
            results.update(done)
            progress(len(results))
    logger.info("synthesised %d utterances in %.1f s with %d job(s)", len(plans), time.time() - start, nj)
    return results


def _progress(total: int):
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="utt", leave=False)

        def update(n: int) -> None:
            bar.update(n - bar.n)
            if n >= total:
                bar.close()

        return update
    marks = {max(1, round(total * k / 10)) for k in range(1, 11)}

    def log_line(n: int) -> None:
        if n in marks:
            logger.info("synthesised %d / %d utterances", n, total)

    return log_line


# ---------------------------------------------------------------------------------------------
# The corpus


@dataclass
class SynthSummary:
    """What `prepare_synth` made (or found already made).

    Attributes:
        out_dir: the corpus folder.
        data_dirs: every data dir, per-language ones first, then `train`, `dev`, `test`.
        num_utts: `{data_dir_name: utterances}`.
        hours: `{data_dir_name: hours of audio}`.
        skipped: True when a finished corpus with the same options was already there.
        seconds: wall time of the build.
    """

    out_dir: Path
    data_dirs: list[Path]
    num_utts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    seconds: float = 0.0


def _stamp(config: SynthConfig, backend_version: str) -> dict:
    stamp = {"format": FORMAT_VERSION, "espeak": backend_version, **asdict(config)}
    stamp["langs"] = list(config.langs)
    stamp["low_resource"] = [list(x) for x in config.low_resource]
    stamp["noise_snr"] = list(config.noise_snr) if config.noise_snr is not None else None
    if config.relative:
        stamp["relative_to"] = os.getcwd()
    return stamp


def _data_dir_names(langs: Sequence[str]) -> list[str]:
    return [f"{split}_{lang}" for lang in langs for split in SPLITS] + list(SPLITS)


def _our_entries(out_dir: Path) -> list[Path]:
    """Everything in `out_dir` a synth build writes (and may remove)."""
    entries = []
    for p in out_dir.iterdir():
        name = p.name
        if name in ("audio", DONE_STAMP, PARTIAL_STAMP) or _DATA_DIR_RE.match(name) \
                or (name.startswith(".") and ".tmp" in name):
            entries.append(p)
    return entries


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _prepare_out_dir(out_dir: Path, stamp: dict, expected: list[str], overwrite: bool) -> bool:
    """Decide between skip (returns True) and (re)build (cleans what a build owns, returns False)."""
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return False
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory")
    done = out_dir / DONE_STAMP
    if done.exists() and not overwrite:
        try:
            old = json.loads(done.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        complete = all((out_dir / d / "wav.scp").is_file() for d in expected) and (out_dir / "audio").is_dir()
        if old == stamp and complete and not (out_dir / PARTIAL_STAMP).exists():
            return True
        if old != stamp and old is not None and complete:
            changed = sorted(k for k in set(old) | set(stamp) if old.get(k) != stamp.get(k))
            raise ConfigError(f"{out_dir}: holds a synth corpus built with other options ({', '.join(changed)} "
                              "differ); use --overwrite to rebuild it, or another OUT_DIR")
        logger.warning("%s: previous build is incomplete; rebuilding", out_dir)
    elif (out_dir / PARTIAL_STAMP).exists():
        logger.warning("%s: found a partial previous run; rebuilding from scratch", out_dir)
    elif not overwrite:
        foreign = [p.name for p in out_dir.iterdir() if p.name != "log"]
        if foreign:
            raise ConfigError(f"{out_dir}: exists, is not empty ({', '.join(sorted(foreign)[:3])}...) and holds no "
                              "synth corpus; use --overwrite to build into it anyway")
    # Stamps go first: a build killed while cleaning is still recognised as partial.
    (out_dir / DONE_STAMP).unlink(missing_ok=True)
    atomic_write_text(out_dir / PARTIAL_STAMP, json.dumps(stamp, sort_keys=True, indent=1) + "\n")
    for p in _our_entries(out_dir):
        if p.name != PARTIAL_STAMP:
            _remove(p)
    return False


def _targets(config: SynthConfig) -> dict[tuple[str, str], tuple[str, float]]:
    """`{(lang, split): ("utts", n) | ("seconds", s)}`."""
    targets: dict[tuple[str, str], tuple[str, float]] = {}
    low = dict(config.low_resource)
    for lang in config.langs:
        if config.hours_per_lang is not None:
            total = config.hours_per_lang * 3600.0
            held = total * HELD_OUT_FRACTION
            sizes = {"train": ("seconds", total - 2 * held), "dev": ("seconds", held), "test": ("seconds", held)}
        else:
            n = config.utts_per_lang if config.utts_per_lang is not None else DEFAULT_UTTS_PER_LANG
            held = max(1, round(n * HELD_OUT_FRACTION))
            sizes = {"train": ("utts", n - 2 * held), "dev": ("utts", held), "test": ("utts", held)}
        if lang in low:
            sizes["train"] = ("seconds", low[lang] * 3600.0)
        for split in SPLITS:
            targets[(lang, split)] = sizes[split]
    return targets


def _plan_corpus(config: SynthConfig, out_dir: Path, nj: int) -> tuple[list[UttPlan], dict[str, int]]:
    """Plan and synthesise every utterance; returns the kept plans and their sample counts."""
    audio_dir = (out_dir / "audio").resolve()
    variants = espeak.available_variants(config.backend)
    lexicons = {lang: load_lexicon(lang, config.vocab_size) for lang in config.langs}
    speakers = {lang: make_speakers(lang, config.speakers_per_lang, config.seed, variants) for lang in config.langs}
    targets = _targets(config)

    def plan(key: tuple[str, str], index: int) -> UttPlan:
        lang, split = key
        return plan_utterance(config, lexicons[lang], speakers[lang][split], split, index, audio_dir)

    planned: dict[tuple[str, str], list[UttPlan]] = {}
    todo: list[UttPlan] = []
    for key, (kind, size) in targets.items():
        if kind == "utts":
            planned[key] = [plan(key, i) for i in range(int(size))]
        else:  # by duration: plan by estimate now, top up after measuring
            planned[key] = []
            est = 0.0
            while est < size * 1.05:
                p = plan(key, len(planned[key]))
                planned[key].append(p)
                est += estimated_seconds(p)
        todo.extend(planned[key])
    num_samples: dict[str, int] = {}
    while todo:
        num_samples.update(synthesize_plans(todo, nj, config.backend))
        todo = []
        for key, (kind, size) in targets.items():
            if kind != "seconds":
                continue
            have = sum(num_samples[p.utt_id] for p in planned[key]) / SAMPLE_RATE
            if have >= size:
                continue
            measured = have / len(planned[key])
            extra = max(1, math.ceil((size - have) / measured * 1.05))
            new = [plan(key, len(planned[key]) + i) for i in range(extra)]
            planned[key].extend(new)
            todo.extend(new)
    kept: list[UttPlan] = []
    for key, (kind, size) in targets.items():
        plans = planned[key]
        if kind == "seconds":
            # The shortest prefix that reaches the target: the same utterances whatever --nj was.
            total, cut = 0.0, len(plans)
            for i, p in enumerate(plans):
                total += num_samples[p.utt_id] / SAMPLE_RATE
                if total >= size:
                    cut = i + 1
                    break
            for p in plans[cut:]:
                Path(p.audio_path).unlink(missing_ok=True)
                num_samples.pop(p.utt_id)
            plans = plans[:cut]
        kept.extend(plans)
    return kept, num_samples


def _format_seconds(num_samples: int) -> str:
    # 1/16000 s = 0.0000625 s: seven decimals are exact.
    return f"{num_samples / SAMPLE_RATE:.7f}".rstrip("0").rstrip(".")


def write_data_dir(path: Path, plans: Sequence[UttPlan], num_samples: dict[str, int], relative: bool) -> None:
    """Write a Kaldi data dir (wav.scp, text, utt2spk, spk2utt, utt2lang, utt2dur) atomically.

    The files go into a temporary sibling folder that is renamed to `path` when complete; an
    existing `path` is replaced.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    cwd = os.getcwd()
    wav = {p.utt_id: (os.path.relpath(p.audio_path, cwd) if relative else p.audio_path) for p in plans}
    write_table(tmp / "wav.scp", wav)
    write_table(tmp / "text", {p.utt_id: p.text for p in plans})
    write_table(tmp / "utt2spk", {p.utt_id: p.spk_id for p in plans})
    spk2utt: dict[str, list[str]] = {}
    for p in sorted(plans, key=lambda p: p.utt_id):
        spk2utt.setdefault(p.spk_id, []).append(p.utt_id)
    write_table(tmp / "spk2utt", spk2utt)
    write_table(tmp / "utt2lang", {p.utt_id: p.lang for p in plans})
    write_table(tmp / "utt2dur", {p.utt_id: _format_seconds(num_samples[p.utt_id]) for p in plans})
    old = path.with_name(f".{path.name}.tmp{os.getpid()}old")
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    if old.exists():
        shutil.rmtree(old)


def _validate(dirs: Sequence[Path]) -> None:
    try:
        from asrkit.kaldi.datadir import validate_data_dir
    except ImportError as e:
        if getattr(e, "name", "") == "asrkit.kaldi.datadir" or "validate_data_dir" in str(e):
            logger.warning("asrkit.kaldi.datadir.validate_data_dir is not available: data dirs not validated")
            return
        raise
    for d in dirs:
        try:
            validate_data_dir(d, no_feats=True)
        except AsrkitError as e:
            raise DataDirError(f"{d}: synth wrote an invalid data dir: {e}") from e


def prepare_synth(out_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), nj: int = 1,
                  overwrite: bool = False) -> SynthSummary:
    """Build (or find built) the synth corpus in `out_dir`.

    Writes `out_dir/audio/<lang>/<spk>/<utt>.flac` and the Kaldi data dirs `train_<lang>`,
    `dev_<lang>`, `test_<lang>` for each language plus the combined `train`, `dev` and `test`, then
    validates them and writes `out_dir/.done` holding the options. A second call with the same
    options returns at once (`skipped=True`); `overwrite=True` rebuilds; a run that was killed
    (`.partial` present, or a data dir missing) is rebuilt from scratch, never reused.

    Args:
        out_dir: the corpus folder (created if missing).
        config: the corpus options.
        nj: worker processes for synthesis (the output does not depend on it).
        overwrite: rebuild even if a finished corpus (of any options) is there.

    Returns:
        a `SynthSummary`.

    Raises:
        ConfigError: bad options (unknown language, bad SNR range, low-resource language not in
            langs, ...), or `out_dir` holds something else.
        AsrkitError: eSpeak failed.
    """
    start = time.time()
    out_dir = Path(out_dir)
    if nj < 1:
        raise ConfigError(f"--nj {nj}: must be at least 1")
    check_config(config)
    expected = _data_dir_names(config.langs)
    stamp = _stamp(config, espeak.backend_version(config.backend))
    if _prepare_out_dir(out_dir, stamp, expected, overwrite):
        logger.info("%s: synth corpus already built with these options; skipping (--overwrite rebuilds)", out_dir)
        return _summarise(out_dir, expected, skipped=True, seconds=time.time() - start)
    logger.info("%s: building synth corpus for %s (seed %d, %d job(s))", out_dir, ",".join(config.langs),
                config.seed, nj)
    plans, num_samples = _plan_corpus(config, out_dir, nj)
    dirs = []
    for name in expected:
        split, _, lang = name.partition("_")
        subset = [p for p in plans if p.split == split and (not lang or p.lang == lang)]
        write_data_dir(out_dir / name, subset, num_samples, config.relative)
        dirs.append(out_dir / name)
    _validate(dirs)
    atomic_write_text(out_dir / DONE_STAMP, json.dumps(stamp, sort_keys=True, indent=1) + "\n")
    (out_dir / PARTIAL_STAMP).unlink(missing_ok=True)
    summary = _summarise(out_dir, expected, skipped=False, seconds=time.time() - start)
    for name in SPLITS:
        logger.info("%s: %d utterances, %.2f hours", name, summary.num_utts[name], summary.hours[name])
    logger.info("built %s in %.1f s", out_dir, summary.seconds)
    return summary


def _summarise(out_dir: Path, names: Sequence[str], skipped: bool, seconds: float) -> SynthSummary:
    summary = SynthSummary(out_dir=out_dir, data_dirs=[out_dir / n for n in names], skipped=skipped, seconds=seconds)
    for name in names:
        durs = [float(line.split()[1]) for line in (out_dir / name / "utt2dur").read_text(encoding="utf-8").splitlines()]
        summary.num_utts[name] = len(durs)
        summary.hours[name] = sum(durs) / 3600.0
    return summary
