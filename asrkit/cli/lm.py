"""`asrkit make-lm`: a word n-gram (estimated, or an existing ARPA) and its lexicon into an LM dir."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("make-lm")
@click.option("--text", "text", type=click.Path(dir_okay=False, path_type=Path),
              help="Plain text to estimate from, one sentence per line (no utterance ids).")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data dir whose transcripts (of --language, by utt2lang) to estimate from; repeatable.")
@click.option("--arpa", type=click.Path(dir_okay=False, path_type=Path),
              help="An existing ARPA file (plain or .gz) instead of estimating one.")
@click.option("--words", type=click.Path(dir_okay=False, path_type=Path),
              help="With --arpa: the word list for the lexicon (default: the ARPA's unigrams).")
@click.option("--language", help="The LM's language (its token set spells the words); default: the lang dir's only one.")
@click.option("--order", type=click.IntRange(min=2), default=3, show_default=True,
              help="n-gram order (at least 2: the decoder's KenLM reads no unigram-only model).")
@click.option("--min-count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Leave out n-grams of order >= 2 seen fewer times than this.")
@click.option("--interpolate", is_flag=True,
              help="Interpolated Kneser-Ney (SRILM -interpolate) instead of backoff, as Kaldi's make_kn_lm.py.")
@click.option("--loop", is_flag=True,
              help="A word loop over the words of --text / --data instead of an estimated n-gram: every word "
                   "equally likely after every word and at the start (a grammar of free word sequences).")
@click.argument("lang_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("lm_dir", type=click.Path(file_okay=False, path_type=Path))
def make_lm(text: Path | None, data_dirs: tuple[Path, ...], arpa: Path | None, words: Path | None,
            language: str | None, order: int, min_count: int, interpolate: bool, loop: bool, lang_dir: Path,
            lm_dir: Path) -> None:
    """Write LM_DIR (lm.arpa, lexicon.txt in LANG_DIR's tokens, words.txt, tokens.txt, lm.yaml).

    \b
    Examples:
      asrkit make-lm --data data/train --language en --order 3 data/lang_char data/lang_char_en_lm
      asrkit make-lm --data data/train_yesno --loop data/lang_char data/lang_char_loop
      asrkit make-lm --arpa lm_tgpr.arpa.gz --words wlist data/lang_bpe500 data/lang_bpe500_tgpr_lm
    """
    from asrkit.logutil import setup_logging
    from asrkit.text.lmdir import make_lm_dir

    log = setup_logging()
    lm = make_lm_dir(lm_dir, lang_dir, language=language, text=text, data_dirs=data_dirs, arpa=arpa,
                     words=words, order=order, min_count=min_count, interpolate=interpolate, loop=loop)
    m = lm.manifest
    if m["unspellable_words"]:
        log.warning("make-lm: %d word(s) cannot be spelled with the tokens of '%s' and are not in the lexicon "
                    "(e.g. %s)", m["unspellable_words"], lm.language, ", ".join(m["unspellable_examples"][:5]))
    counts = ", ".join(f"{k}-grams {n}" for k, n in enumerate(m["counts"], start=1))
    click.echo(f"{lm_dir}: {lm.language}, order {m['order']} ({counts}), {m['lexicon_words']} words in the lexicon")
