"""The synth corpus: valid data dirs, disjoint speaker splits, byte-identical rebuilds, sizes, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora import espeak, synth
from asrkit.corpora.synth import SynthConfig, prepare_synth
from asrkit.errors import ConfigError
from asrkit.kaldi.textio import read_table

TINY = SynthConfig(langs=("en", "de"), utts_per_lang=6, speakers_per_lang=6, seed=1)


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` except the log, by relative path, with `root` replaced in its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "log" not in p.relative_to(root).parts:
            out[str(p.relative_to(root))] = p.read_bytes().replace(str(root.resolve()).encode(), b"ROOT")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = prepare_synth(out, TINY, nj=1)
    assert not summary.skipped
    return out


def test_writes_every_data_dir_and_they_validate(corpus):
    from asrkit.kaldi.datadir import validate_data_dir

    names = sorted(p.name for p in corpus.iterdir() if p.is_dir() and p.name not in ("audio", "log"))
    assert names == ["dev", "dev_de", "dev_en", "test", "test_de", "test_en", "train", "train_de", "train_en"]
    for name in names:
        validate_data_dir(corpus / name, no_feats=True)
        for f in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2dur"):
            assert (corpus / name / f).is_file()
    # 6 per language: 1 dev, 1 test, 4 train; combined dirs hold both languages.
    assert len(read_table(corpus / "train_en" / "text")) == 4
    assert len(read_table(corpus / "dev_de" / "text")) == 1
    assert len(read_table(corpus / "train" / "text")) == 8
    assert set(read_table(corpus / "train" / "utt2lang").values()) == {"en", "de"}
    utt2spk = read_table(corpus / "train" / "utt2spk")
    for utt, spk in utt2spk.items():
        assert utt.startswith(spk + "-") and len(utt) == len(spk) + 6  # `<spk>-<5 digits>`
        assert utt.split("-")[0] == read_table(corpus / "train" / "utt2lang")[utt]
    wav = read_table(corpus / "train" / "wav.scp")
    assert all(Path(v).is_absolute() and Path(v).is_file() for v in wav.values())
    stamp = json.loads((corpus / ".done").read_text())
    assert stamp["seed"] == 1 and stamp["langs"] == ["en", "de"] and not (corpus / ".partial").exists()


def test_dev_and_test_speakers_never_in_train(corpus):
    spk = {s: set(read_table(corpus / s / "utt2spk").values()) for s in ("train", "dev", "test")}
    assert spk["train"] and spk["dev"] and spk["test"]
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"] and not spk["dev"] & spk["test"]
    # The split itself (not only the few speakers used here) is disjoint.
    splits = synth.make_speakers("en", 12, 0, espeak.available_variants())
    ids = {k: {s.spk_id for s in v} for k, v in splits.items()}
    assert len(ids["train"]) == 8 and len(ids["dev"]) == 2 and len(ids["test"]) == 2
    assert not ids["train"] & (ids["dev"] | ids["test"]) and not ids["dev"] & ids["test"]


def test_audio_is_16k_int16_flac_and_utt2dur_matches(corpus):
    utt2dur = read_table(corpus / "train" / "utt2dur")
    wav = read_table(corpus / "train" / "wav.scp")
    for utt, path in wav.items():
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1)
        assert info.frames > 8000  # at least half a second of speech
        assert float(utt2dur[utt]) == info.frames / 16000
        samples, _ = sf.read(path, dtype="int16")
        assert 3000 < np.abs(samples).max() <= 32767


def test_transcripts_are_normalised_words_of_the_language(corpus):
    text = read_table(corpus / "train" / "text")
    for utt, words in text.items():
        assert words == synth.normalize_transcript(words) and words
        letters = set(synth.ALPHABETS[utt.split("-")[0]]) | {" "}
        assert set(words) <= letters, words


def test_same_seed_rebuild_is_byte_identical_and_nj_does_not_matter(corpus, tmp_path):
    before = _files(corpus)
    assert any(k.endswith(".flac") for k in before)
    again = prepare_synth(corpus, TINY, nj=1)  # same options: skipped
    assert again.skipped and _files(corpus) == before
    prepare_synth(corpus, TINY, nj=2, overwrite=True)
    assert _files(corpus) == before
    other = tmp_path / "other"
    prepare_synth(other, TINY, nj=2)
    assert _files(other) == before


def test_different_seed_differs(corpus, tmp_path):
    out = tmp_path / "seed2"
    prepare_synth(out, SynthConfig(langs=("en", "de"), utts_per_lang=6, speakers_per_lang=6, seed=2))
    a, b = _files(corpus), _files(out)
    assert read_table(corpus / "train" / "text") != read_table(out / "train" / "text")
    common = [k for k in a if k.endswith(".flac") and k in b]
    assert all(a[k] != b[k] for k in common)


def test_noise_and_reverb_change_audio_not_text(tmp_path):
    clean = SynthConfig(langs=("en",), utts_per_lang=3, speakers_per_lang=6, seed=3)
    noisy = SynthConfig(langs=("en",), utts_per_lang=3, speakers_per_lang=6, seed=3, noise_snr=(5.0, 5.0), reverb=True)
    prepare_synth(tmp_path / "clean", clean)
    prepare_synth(tmp_path / "noisy", noisy)
    assert (tmp_path / "clean/train/text").read_bytes() == (tmp_path / "noisy/train/text").read_bytes()
    for utt, path in read_table(tmp_path / "clean/train/wav.scp").items():
        x, _ = sf.read(path)
        y, _ = sf.read(read_table(tmp_path / "noisy/train/wav.scp")[utt])
        assert x.shape == y.shape and not np.array_equal(x, y)
        # Noise at 5 dB fills the pauses: the quietest 10% of samples get much louder.
        assert np.percentile(np.abs(y), 10) > 5 * np.percentile(np.abs(x), 10) + 1e-4


def test_noise_hits_the_requested_snr():
    rng = np.random.default_rng(0)
    speech = np.sin(np.arange(16000) * 0.05)
    for color in ("white", "pink", "brown"):
        noisy = synth.add_noise(speech, 10.0, color, rng)
        snr = 10 * np.log10(np.mean(speech**2) / np.mean((noisy - speech) ** 2))
        assert snr == pytest.approx(10.0, abs=1e-6)


def test_low_resource_language_gets_only_its_hours(tmp_path):
    config = SynthConfig(langs=("en", "de"), utts_per_lang=6, speakers_per_lang=6, seed=1,
                         low_resource=(("de", 10.0 / 3600),))
    summary = prepare_synth(tmp_path / "lr", config)
    durs = [float(d) for d in read_table(tmp_path / "lr/train_de/utt2dur").values()]
    order = sorted(read_table(tmp_path / "lr/train_de/utt2dur"), key=lambda u: (int(u[-5:]), u))
    assert sum(durs) >= 10.0
    # The shortest prefix (in synthesis order) that reaches 10 s: dropping the last one falls short.
    by_index = [float(read_table(tmp_path / "lr/train_de/utt2dur")[u]) for u in order]
    assert sum(by_index[:-1]) < 10.0
    assert summary.num_utts["train_en"] == 4
    assert summary.num_utts["dev_de"] == summary.num_utts["dev_en"] == 1
    assert summary.num_utts["test_de"] == 1
    # No stray audio from utterances synthesised past the target.
    flacs = {p.stem for p in (tmp_path / "lr/audio/de").rglob("*.flac")}
    assert flacs == set(read_table(tmp_path / "lr/train_de/text")) | set(read_table(tmp_path / "lr/dev_de/text")) \
        | set(read_table(tmp_path / "lr/test_de/text"))


def test_partial_run_is_rebuilt_and_other_options_refused(tmp_path):
    out = tmp_path / "c"
    config = SynthConfig(langs=("en",), utts_per_lang=3, speakers_per_lang=6, seed=4)
    prepare_synth(out, config)
    good = _files(out)
    # A killed build: stamp gone, a data dir half written, a stray temp dir.
    (out / ".done").unlink()
    (out / ".partial").write_text("{}")
    (out / "train_en" / "text").write_text("junk\n")
    (out / ".train.tmp123").mkdir()
    summary = prepare_synth(out, config)
    assert not summary.skipped and _files(out) == good
    with pytest.raises(ConfigError, match="other options.*seed.*--overwrite"):
        prepare_synth(out, SynthConfig(langs=("en",), utts_per_lang=3, speakers_per_lang=6, seed=5))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty.*mine.txt"):
        prepare_synth(tmp_path / "busy", config)


def test_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepare_synth("rel", SynthConfig(langs=("en",), utts_per_lang=3, speakers_per_lang=6, relative=True))
    for path in read_table(tmp_path / "rel/train/wav.scp").values():
        assert path.startswith("rel/audio/en/") and (tmp_path / path).is_file()


def test_normalize_transcript():
    assert synth.normalize_transcript("Dix-sept, l'Homme!  Ça va?") == "dix sept l homme ça va"
    assert synth.normalize_transcript("STRASSE Straße\tÜber") == "strasse straße über"
    assert synth.normalize_transcript("e\u0301te\u0301") == "été"  # NFC


def test_number_words():
    assert synth.number_to_words(0, "en") == "zero"
    assert synth.number_to_words(47, "en") == "forty seven"
    assert synth.number_to_words(21, "de") == "einundzwanzig"
    assert synth.number_to_words(97, "de") == "siebenundneunzig"
    assert [synth.number_to_words(n, "fr") for n in (17, 21, 71, 80, 81, 99)] == [
        "dix sept", "vingt et un", "soixante et onze", "quatre vingts", "quatre vingt un", "quatre vingt dix neuf"]
    assert [synth.number_to_words(n, "es") for n in (16, 22, 30, 45)] == [
        "dieciséis", "veintidós", "treinta", "cuarenta y cinco"]
    assert [synth.number_to_words(n, "it") for n in (17, 21, 23, 28, 30, 83)] == [
        "diciassette", "ventuno", "ventitré", "ventotto", "trenta", "ottantatré"]
    with pytest.raises(ConfigError, match="no number speller for language 'nl'"):
        synth.number_to_words(3, "nl")


def test_word_filter_keeps_only_letters_of_the_language():
    letters = set(synth.ALPHABETS["en"])
    words = ["the", "don't", "a", "x", "mr", "etc", "café", "covid19", "hello"]
    assert synth.filter_words("en", words, letters) == ["the", "a", "hello"]
    lex = synth.load_lexicon("fr", vocab_size=300)
    assert len(lex.words) == 300 and "à" not in lex.words[:0] and all(set(w) <= set(synth.ALPHABETS["fr"]) for w in lex.words)
    assert lex.probs.sum() == pytest.approx(1.0)


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown language 'xx'.*available include"):
        synth.check_config(SynthConfig(langs=("en", "xx")))
    with pytest.raises(ConfigError, match="'sw' has no word list in wordfreq"):
        synth.load_lexicon("sw")
    with pytest.raises(ConfigError, match="LOW \\(30\\) is greater than HIGH \\(10\\)"):
        synth.parse_snr_range("30:10")
    with pytest.raises(ConfigError, match="expected LOW:HIGH"):
        synth.parse_snr_range("loud")
    with pytest.raises(ConfigError, match="language 'it' is not in --langs"):
        synth.check_config(SynthConfig(langs=("en",), low_resource=(("it", 1.0),)))
    with pytest.raises(ConfigError, match="expected LANG:HOURS"):
        synth.parse_low_resource("de")
    with pytest.raises(ConfigError, match="either --utts-per-lang or --hours-per-lang"):
        synth.check_config(SynthConfig(utts_per_lang=10, hours_per_lang=1.0))


@pytest.mark.parametrize("args, message", [
    (["--langs", "en,qq"], "unknown language 'qq': eSpeak NG has no voice for it (available include:"),
    (["--noise-snr", "10-30"], "--noise-snr '10-30': expected LOW:HIGH in dB"),
    (["--langs", "en,de", "--low-resource", "fr:0.5"], "--low-resource fr:0.5: language 'fr' is not in --langs (en,de)"),
])
def test_cli_errors(asrkit_cli, tmp_path, args, message):
    proc = asrkit_cli("prepare", "synth", tmp_path / "out", *args)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"asrkit prepare synth: error: {message}")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "train").exists()


def test_cli_builds_and_skips(asrkit_cli, tmp_path):
    args = ("prepare", "synth", tmp_path / "cli", "--langs", "es", "--utts-per-lang", "3", "--speakers-per-lang", "6")
    proc = asrkit_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert len(read_table(tmp_path / "cli/test_es/text")) == 1
    again = asrkit_cli(*args)
    assert again.returncode == 0 and "skipping" in again.stderr




@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="no espeak-ng program (the fallback backend)")
def test_binary_backend_builds_a_valid_corpus(tmp_path):
    from asrkit.kaldi.datadir import validate_data_dir

    prepare_synth(tmp_path / "bin", SynthConfig(langs=("en",), utts_per_lang=3, speakers_per_lang=6, backend="binary"))
    validate_data_dir(tmp_path / "bin" / "train", no_feats=True)
    assert json.loads((tmp_path / "bin" / ".done").read_text())["espeak"].startswith("binary ")
    path = next(iter(read_table(tmp_path / "bin/test/wav.scp").values()))
    assert sf.info(path).samplerate == 16000
