"""`asrkit decode`: stage 7, hypotheses (or log-likelihoods for Kaldi decoders) for a data dir."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Model file: final.pt, ema.pt, best.pt, an averaged model or a checkpoint.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data dir with feats.scp (cmvn.scp, utt2lang, utt2dur used when present).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Decode dir, e.g. exp/NAME/decode_SET: gets text (or loglikes.scp), log/, num_jobs.")
@click.option("--search", type=click.Choice(["greedy", "beam"]),
              help="Best path (the default), or prefix beam search (CTC) / beam search (RNN-T). Not with --lm, "
                   "which is its own search.")
@click.option("--beam", type=click.IntRange(min=1),
              help="Hypotheses kept: for --search beam (default 8), or per frame with --lm (default 50).")
@click.option("--lang", default="auto", show_default=True,
              help="Language of every utterance, or auto: utt2lang (or the model's only language).")
@click.option("--device", default="cpu", show_default=True,
              help="auto (cuda when there is one), cpu, cuda or cuda:N.")
@click.option("--nj", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel CPU jobs over DATA split like utils/split_data.sh.")
@click.option("--batch-frames", type=click.IntRange(min=0), default=0,
              help="Padded input frames per batch (default 20000 on CPU, 400000 on a GPU).")
@click.option("--output", type=click.Choice(["text", "loglikes"]), default="text", show_default=True,
              help="Hypotheses, or per-frame log posterior - log prior (ark/scp for latgen-faster-mapped).")
@click.option("--priors", type=click.Path(dir_okay=False, path_type=Path),
              help="Class counts as a Kaldi vector ([ c0 c1 ... ], e.g. ali_train_pdf.counts) for --output loglikes.")
@click.option("--priors-from-ali", metavar="RSPECIFIER",
              help="Count frame labels of these alignments (e.g. 'ark:gunzip -c exp/ali/ali.*.gz|') into "
                   "OUT_DIR/priors.counts and use them.")
@click.option("--priors-from-data", type=click.Path(file_okay=False, path_type=Path),
              help="Sum the model's posteriors over this data dir (e.g. the training data) into "
                   "OUT_DIR/priors.counts and use them.")
@click.option("--streaming", is_flag=True, help="Decode chunk by chunk (streaming models).")
@click.option("--lm", "lm", multiple=True, metavar="[LANG=]DIR",
              help="LM dir (asrkit make-lm) for its language, or for LANG; repeat for each language. CTC "
                   "lexicon beam search (--beam) with the word n-gram; writes OUT_DIR/nbest/ too.")
@click.option("--lm-weight", type=float, default=1.0, show_default=True,
              help="With --lm: weight of the LM log probability against the acoustic one.")
@click.option("--word-penalty", type=float, default=0.0, show_default=True,
              help="With --lm: subtracted from the score per word.")
@click.option("--nbest", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --lm: hypotheses per utterance in OUT_DIR/nbest/ (for rescoring over LM weights).")
@click.option("--overwrite", is_flag=True, help="Decode again even if this decode already finished.")
def decode(model_path: Path, data_dir: Path, out_dir: Path, search: str | None, beam: int | None, lang: str,
           device: str, nj: int, batch_frames: int, output: str, priors: Path | None, priors_from_ali: str | None,
           priors_from_data: Path | None, streaming: bool, lm: tuple[str, ...], lm_weight: float, word_penalty: float,
           nbest: int, overwrite: bool) -> None:
    """Decode DATA with MODEL into OUT_DIR/text (Kaldi text, C-sorted); the log gives the real-time factor.

    Example: asrkit decode --model exp/ctc/final.pt --data data/test --out-dir exp/ctc/decode_test --search beam
    """
    from asrkit.decoding.decoder import decode_data_dir
    from asrkit.errors import ConfigError
    from asrkit.logutil import gpu_or_cpu_jobs, setup_logging

    setup_logging()
    device, nj = gpu_or_cpu_jobs(device, nj)
    sources = [s for s in (priors, priors_from_ali, priors_from_data) if s is not None]
    if len(sources) > 1:
        raise ConfigError("give at most one of --priors, --priors-from-ali, --priors-from-data")
    if sources and output != "loglikes":
        raise ConfigError("priors are used with --output loglikes only")
    if priors_from_ali is not None or priors_from_data is not None:
        from asrkit.decoding.loglikes import make_priors_file

        out_dir.mkdir(parents=True, exist_ok=True)
        priors = make_priors_file(model_path, out_dir / "priors.counts", alignments=priors_from_ali,
                                  data_dir=priors_from_data, lang=lang, device=device)
    result = decode_data_dir(model_path, data_dir, out_dir, search=search, beam=beam, lang=lang, device=device,
                             nj=nj, batch_frames=batch_frames, output=output, priors=priors, streaming=streaming,
                             lm=lm, lm_weight=lm_weight, word_penalty=word_penalty, nbest=nbest, overwrite=overwrite)
    if result.skipped:
        click.echo(f"{result.output}: already decoded with this model and these options (--overwrite to redo)", err=True)
