"""`synth`: an offline multilingual speech corpus made with eSpeak NG, for demos, tests and benchmarks.

Sentences are sampled from each language's word list (wordfreq), plus numbers written out as words
and short everyday phrases (`--text open`), or drawn from a small closed vocabulary of numbers,
times, dates and commands (`--text closed`); each language gets voice-variant speakers with their own pitch and
rate ranges, split so dev and test speakers never occur in train. Audio is 16 kHz 16-bit FLAC,
optionally with additive noise and reverberation; the output is Kaldi data dirs per language and
split plus combined `train`, `dev`, `test`. The same options and seed give byte-identical files.

    text    what is said: word lists, numbers spelled out, phrases, normalisation
    closed  the closed-vocabulary sentences: per-language word lists and templates
    plan    the options, the speakers, and one seeded plan per utterance
    audio   synthesis, resampling, noise and reverberation, FLAC, the worker pool
    corpus  `prepare_synth`: the corpus folder, its data dirs and its stamp
"""

from asrkit.corpora.synth.audio import (
    SAMPLE_RATE,
    add_noise,
    add_reverb,
    render_utterance,
    synthesize_plans,
    write_flac,
)
from asrkit.corpora.synth.closed import GRAMMARS, ClosedGrammar, closed_grammar
from asrkit.corpora.synth.corpus import (
    DONE_STAMP,
    FORMAT_VERSION,
    HELD_OUT_FRACTION,
    PARTIAL_STAMP,
    SynthSummary,
    prepare_synth,
    write_data_dir,
)
from asrkit.corpora.synth.plan import (
    DEFAULT_LANGS,
    DEFAULT_SPEAKERS_PER_LANG,
    DEFAULT_UTTS_PER_LANG,
    SPLITS,
    TEXT_MODES,
    Speaker,
    SynthConfig,
    UttPlan,
    check_config,
    estimated_seconds,
    load_sentences,
    make_speakers,
    parse_langs,
    parse_low_resource,
    parse_snr_range,
    plan_utterance,
)
from asrkit.corpora.synth.text import (
    ABBREVIATIONS,
    ALPHABETS,
    DEFAULT_VOCAB_SIZE,
    NUMBER_WORDS,
    ONE_LETTER_WORDS,
    OPEN_NUMBER_LANGS,
    PHRASES,
    Lexicon,
    filter_words,
    language_letters,
    load_lexicon,
    make_sentence,
    normalize_transcript,
    number_to_words,
)

__all__ = [
    "SAMPLE_RATE", "DEFAULT_LANGS", "DEFAULT_UTTS_PER_LANG", "DEFAULT_SPEAKERS_PER_LANG", "DEFAULT_VOCAB_SIZE",
    "SPLITS", "TEXT_MODES", "HELD_OUT_FRACTION", "FORMAT_VERSION", "DONE_STAMP", "PARTIAL_STAMP",
    "ALPHABETS", "ONE_LETTER_WORDS", "ABBREVIATIONS", "NUMBER_WORDS", "OPEN_NUMBER_LANGS", "PHRASES",
    "GRAMMARS", "ClosedGrammar", "closed_grammar", "load_sentences",
    "number_to_words", "normalize_transcript", "language_letters", "filter_words", "Lexicon", "load_lexicon",
    "make_sentence", "SynthConfig", "parse_langs", "parse_snr_range", "parse_low_resource", "check_config",
    "Speaker", "make_speakers", "UttPlan", "plan_utterance", "estimated_seconds",
    "add_noise", "add_reverb", "render_utterance", "write_flac", "synthesize_plans",
    "SynthSummary", "write_data_dir", "prepare_synth",
]
