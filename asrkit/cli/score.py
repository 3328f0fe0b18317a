"""`asrkit score` and `asrkit results`: stage 8, Kaldi-format WER/CER reports and the results table."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path),
              help="Data dir whose `text` holds the references (and `utt2lang` the languages).")
@click.option("--decode-dir", required=True, type=click.Path(path_type=Path),
              help="Decode dir whose `text` holds the hypotheses; the reports are written here.")
@click.option("--cer/--no-cer", default=None,
              help="Also write `cer` and `cer_<lang>` (default: only for languages written without spaces).")
@click.option("--filter", "filter_cmd", metavar="CMD",
              help="Shell command applied to reference and hypothesis text (stdin to stdout, ids kept), "
                   "like Kaldi's local/wer_output_filter.")
@click.option("--mode", type=click.Choice(["present", "all", "strict"]), default="present", show_default=True,
              help="compute-wer's --mode: score only utterances with a hypothesis, count missing ones as "
                   "empty, or fail when one is missing.")
@click.option("--lm-weights", metavar="W,W,...",
              help="With n-best lists (decode --lm): LM weights to rescore them with (default 0,0.25,...,2,3).")
@click.option("--word-penalties", metavar="P,P,...",
              help="With n-best lists (decode --lm): word insertion penalties to rescore them with (default 0,0.5,1).")
def score(data_dir: Path, decode_dir: Path, cer: bool | None, filter_cmd: str | None, mode: str,
          lm_weights: str | None, word_penalties: str | None) -> None:
    """Score DECODE_DIR/text against DATA/text: writes wer, wer_<lang>, cer*, per_utt into the decode dir.

    With DECODE_DIR/nbest (asrkit decode --lm) the n-best lists are rescored over the LM weights and
    word penalties into wer_<W>_<P>, and the best goes to DECODE_DIR/best_wer, as Kaldi's local/score.sh.

    Prints the %WER line of every file written, followed by its path (the format of
    `grep WER exp/*/decode*/wer* | utils/best_wer.sh`); of the rescoring only the best.
    """
    import contextlib

    from asrkit.logutil import command_line, job_log, setup_logging, versions
    from asrkit.scoring.lmwt import DEFAULT_LM_WEIGHTS, DEFAULT_WORD_PENALTIES, parse_grid
    from asrkit.scoring.report import score_decode_dir

    # Log to stderr (missing hypotheses are reported there) and, like Kaldi's scoring_kaldi/log,
    # to a log in the decode dir; a missing decode dir is left for the library to report.
    logger = setup_logging()
    log = job_log(decode_dir / "log" / "score.log") if decode_dir.is_dir() else contextlib.nullcontext()
    with log:
        logger.info("%s", command_line())
        logger.info("%s", versions())
        reports = score_decode_dir(data_dir, decode_dir, cer=cer, filter_cmd=filter_cmd, mode=mode,
                                   lm_weights=parse_grid(lm_weights, "--lm-weights") if lm_weights else DEFAULT_LM_WEIGHTS,
                                   word_penalties=(parse_grid(word_penalties, "--word-penalties") if word_penalties
                                                   else DEFAULT_WORD_PENALTIES))
    for name, stats in reports.items():
        first_line = stats.compute_wer_output().split("\n", 1)[0]
        click.echo(f"{first_line} {(decode_dir / name).as_posix()}")


@click.command()
@click.argument("exp_roots", metavar="EXP_ROOT...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--markdown", is_flag=True, help="A Markdown table for RESULTS.md.")
@click.option("--raw", is_flag=True, help="best_wer.sh-style lines: the %WER line and its file, one per score.")
def results(exp_roots: tuple[Path, ...], markdown: bool, raw: bool) -> None:
    """Table of the WER/CER of every EXP_ROOT/**/decode* dir: rows experiment x test set, a column per language.

    With several EXP_ROOTs (the same recipe trained with different seeds), each cell is the mean and
    sample standard deviation over them, `12.34 ± 0.56`, with `(n=K)` where only K roots have it.
    """
    from asrkit.errors import AsrkitError
    from asrkit.logutil import setup_logging
    from asrkit.scoring.results import collect_results, format_results, format_seed_results

    setup_logging()  # skipped files are reported on stderr
    runs = []
    for root in exp_roots:
        found = collect_results(root)
        if not found:
            raise AsrkitError(f"{root}: no scored decode dir (no decode*/wer* or cer* file with a %WER line)")
        runs.append(found)
    if len(runs) == 1:
        click.echo(format_results(runs[0], markdown=markdown, raw=raw), nl=False)
    elif raw:
        raise click.UsageError("--raw takes one EXP_ROOT (its lines name their files; several roots are a table)")
    else:
        click.echo(format_seed_results(runs, markdown=markdown), nl=False)
