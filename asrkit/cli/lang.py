"""`asrkit make-lang`: stage 3, sentencepiece token sets per language (or joint) into a lang dir."""

from __future__ import annotations

import click


@click.command("make-lang")
@click.option("--type", "token_type", type=click.Choice(["bpe", "char", "word"]), default="bpe", show_default=True,
              help="Token unit: sentencepiece BPE pieces, characters, or whole words (one token per word).")
@click.option("--vocab-size", type=click.IntRange(min=3), default=None,
              help="Tokens per set, including <blk> and <unk>: for bpe (default 500); for word the most "
                   "frequent words (default: every word of the text).")
@click.option("--per-language/--joint", "per_language", default=True, show_default=True,
              help="One token set per language (default) or one joint set for all languages.")
@click.option("--overwrite", is_flag=True, help="Rebuild even if LANG_DIR was made from the same inputs.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="DATA_DIR... LANG_DIR")
def make_lang(token_type: str, vocab_size: int | None, per_language: bool, overwrite: bool, paths: tuple[str, ...]) -> None:
    """Train token sets on the `text` of DATA_DIR... grouped by `utt2lang`; write LANG_DIR.

    \b
    Example:
      asrkit make-lang --type bpe --vocab-size 300 data/train data/lang_bpe300
      asrkit make-lang --type word data/train data/lang_word
    """
    if len(paths) < 2:
        raise click.UsageError("give at least one DATA_DIR and the LANG_DIR")
    from asrkit.logutil import setup_logging
    from asrkit.text.tokenizer import make_lang_dir

    log = setup_logging()
    lang_dir = make_lang_dir(paths[:-1], paths[-1], token_type=token_type, vocab_size=vocab_size,
                             joint=not per_language, overwrite=overwrite)
    for lang in lang_dir.languages:
        log.info("make-lang: %s: %d tokens (%s)", lang, lang_dir.tokenizer(lang).vocab_size, lang_dir.lang2set[lang])
    click.echo(f"{paths[-1]}: {len(lang_dir.token_sets)} token set(s) for {', '.join(lang_dir.languages)}")
