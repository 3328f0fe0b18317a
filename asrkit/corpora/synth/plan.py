"""synth plans: the corpus options, the speakers, and one plan per utterance that fixes everything
random about it (text, voice, effects) from the seed, so the corpus does not depend on the order of
synthesis or the number of workers."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkit.corpora import espeak
from asrkit.corpora.synth.closed import ClosedGrammar, closed_grammar
from asrkit.corpora.synth.text import DEFAULT_VOCAB_SIZE, Lexicon, load_lexicon, make_sentence
from asrkit.errors import ConfigError

DEFAULT_LANGS = ("en", "de", "fr", "es")
DEFAULT_UTTS_PER_LANG = 300
DEFAULT_SPEAKERS_PER_LANG = 12
SPLITS = ("train", "dev", "test")
#: `--text`: open-vocabulary sentences from word lists (text.py), or closed-vocabulary ones (closed.py).
TEXT_MODES = ("open", "closed")

@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synth corpus (recorded in OUT_DIR/.done).

    Attributes:
        langs: eSpeak language codes.
        utts_per_lang: utterances per language over train+dev+test (default 300 when no size given).
        hours_per_lang: hours of audio per language over train+dev+test (exclusive with utts_per_lang).
        low_resource: `(lang, hours)` pairs: that language's train set is cut to `hours` hours.
        speakers_per_lang: speakers per language, one voice variant each (3..number of variants).
        vocab_size: most frequent usable words per language to sample from (open text only).
        text: "open" (wordfreq sentences) or "closed" (numbers, times, dates, commands; closed.py).
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
    text: str = "open"
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
    if config.text not in TEXT_MODES:
        raise ConfigError(f"--text {config.text}: must be one of {', '.join(TEXT_MODES)}")
    if config.text == "closed":
        for lang in config.langs:
            closed_grammar(lang)
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


def load_sentences(config: SynthConfig, lang: str) -> Lexicon | ClosedGrammar:
    """What `lang`'s sentences are drawn from under `config.text`."""
    return closed_grammar(lang) if config.text == "closed" else load_lexicon(lang, config.vocab_size)


def plan_utterance(config: SynthConfig, lexicon: Lexicon | ClosedGrammar, speakers: Sequence[Speaker], split: str, index: int,
                   audio_dir: Path) -> UttPlan:
    """Plan utterance `index` of `split` in `lexicon.lang`: a function of (seed, lang, split, index) only.

    `lexicon` is what `load_sentences` gives for the corpus's text mode.

    Speakers take turns (`index % len(speakers)`). The text and voice are drawn before the effects,
    so adding --noise-snr or --reverb changes the audio but not what is said or by whom.
    """
    lang = lexicon.lang
    rng = np.random.default_rng([config.seed, _lang_key(lang), 2, SPLITS.index(split), index])
    text = lexicon.sentence(rng) if isinstance(lexicon, ClosedGrammar) else make_sentence(rng, lexicon)
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
