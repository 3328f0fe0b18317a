"""`asrkit prepare synth OUT_DIR`: build the offline multilingual eSpeak NG corpus as Kaldi data dirs."""

from __future__ import annotations

import click


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--langs", default="en,de,fr,es", show_default=True,
              help="Comma-separated eSpeak NG language codes (any language eSpeak and wordfreq both know).")
@click.option("--utts-per-lang", type=int, default=None,
              help="Utterances per language over train+dev+test (80/10/10). Default 300.")
@click.option("--hours-per-lang", type=float, default=None,
              help="Hours of audio per language over train+dev+test, instead of --utts-per-lang.")
@click.option("--low-resource", "low_resource", multiple=True, metavar="LANG:HOURS",
              help="Cut LANG's training set to HOURS hours (dev/test keep their size). Repeatable.")
@click.option("--speakers-per-lang", type=int, default=12, show_default=True,
              help="Speakers per language, one eSpeak voice variant each; 1/6 each go to dev and test.")
@click.option("--text", "text_mode", type=click.Choice(["open", "closed"]), default="open", show_default=True,
              help="open: sentences from each language's frequent words; closed: numbers, times, dates and "
                   "short commands from a small word list (en, de, fr, es, it), as in connected-digit tasks.")
@click.option("--vocab-size", type=int, default=2000, show_default=True,
              help="Most frequent usable words per language that open sentences are drawn from.")
@click.option("--noise-snr", default=None, metavar="LOW:HIGH",
              help="Add white/pink/brown noise at an SNR drawn from LOW..HIGH dB per utterance, e.g. 10:30.")
@click.option("--reverb", is_flag=True, help="Add synthetic room reverberation (RT60 0.2-0.7 s) to every utterance.")
@click.option("--seed", type=int, default=0, show_default=True, help="Corpus seed: the same seed gives identical files.")
@click.option("--nj", type=int, default=1, show_default=True, help="Parallel synthesis processes.")
@click.option("--relative", is_flag=True,
              help="Write wav.scp paths relative to the current directory (run from the recipe dir) instead of absolute.")
@click.option("--backend", type=click.Choice(["auto", "library", "binary"]), default="auto", show_default=True,
              help="eSpeak NG from the espeakng-loader package (library) or an espeak-ng program (binary).")
@click.option("--overwrite", is_flag=True, help="Rebuild even if OUT_DIR already holds a finished corpus.")
def synth(out_dir, langs, utts_per_lang, hours_per_lang, low_resource, speakers_per_lang, text_mode, vocab_size,
          noise_snr, reverb, seed, nj, relative, backend, overwrite) -> None:
    """Synthesise a multilingual speech corpus with eSpeak NG into OUT_DIR.

    Writes OUT_DIR/audio/<lang>/<spk>/<utt>.flac (16 kHz, 16-bit) and the Kaldi data dirs
    train_<lang>, dev_<lang>, test_<lang> and the combined train, dev, test (wav.scp, text,
    utt2spk, spk2utt, utt2lang, utt2dur). Re-running with the same options skips.
    """
    from pathlib import Path

    from asrkit.corpora.synth import (
        SynthConfig,
        parse_langs,
        parse_low_resource,
        parse_snr_range,
        prepare_synth,
    )
    from asrkit.logutil import command_line, setup_logging, versions

    config = SynthConfig(
        langs=parse_langs(langs), utts_per_lang=utts_per_lang, hours_per_lang=hours_per_lang,
        low_resource=tuple(parse_low_resource(x) for x in low_resource), speakers_per_lang=speakers_per_lang,
        vocab_size=vocab_size, text=text_mode, noise_snr=parse_snr_range(noise_snr) if noise_snr is not None else None,
        reverb=reverb, seed=seed, relative=relative, backend=backend)
    log = setup_logging(Path(out_dir) / "log" / "prepare_synth.log")
    log.info("%s", command_line())
    log.info("%s", versions())
    prepare_synth(out_dir, config, nj=nj, overwrite=overwrite)
