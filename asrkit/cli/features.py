"""`asrkit make-feats` and `asrkit compute-cmvn`: stage 2, Kaldi features and CMVN stats for a data dir."""

from __future__ import annotations

import click


@click.command("make-feats")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--type", "feat_type", type=click.Choice(["fbank", "mfcc"]), default="fbank", show_default=True,
              help="Feature type (Kaldi's compute-fbank-feats or compute-mfcc-feats).")
@click.option("--conf", type=click.Path(dir_okay=False), default=None,
              help="Kaldi .conf file: one --name=value per line, # comments (e.g. conf/fbank.conf).")
@click.option("--opt", "options", multiple=True, metavar="NAME=VALUE",
              help="A Kaldi option applied after --conf, e.g. --opt num-mel-bins=80 (repeatable).")
@click.option("--nj", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel jobs, over a per-speaker split{NJ} of the data dir.")
@click.option("--device", default="cpu", show_default=True,
              help="auto (cuda when there is one), cpu, cuda or cuda:N.")
@click.option("--compress", is_flag=True, help="Write Kaldi-compressed matrices (copy-feats --compress=true).")
@click.option("--feat-dir", type=click.Path(file_okay=False), default=None,
              help="Where the arks and logs go.  [default: DATA_DIR/data, as make_fbank.sh]")
@click.option("--batch-seconds", type=click.FloatRange(min=0), default=None,
              help="Seconds of audio per batch (default 8 on cpu, 600 on cuda); 0: one utterance at a time.")
@click.option("--overwrite", is_flag=True, help="Recompute jobs that are already done.")
def make_feats(data_dir: str, feat_type: str, conf: str | None, options: tuple[str, ...], nj: int, device: str,
               compress: bool, feat_dir: str | None, batch_seconds: float | None, overwrite: bool) -> None:
    """Compute Kaldi fbank/MFCC features for DATA_DIR; write DATA_DIR/feats.scp and utt2num_frames.

    Options are Kaldi's (names and defaults of compute-fbank-feats / compute-mfcc-feats), except
    that --dither is 0 unless set. Job j writes FEAT_DIR/raw_<type>_<set>.j.{ark,scp} and the log
    FEAT_DIR/log/make_<type>_<set>.j.log; a finished job is skipped when the command is re-run.

    \b
    Example:
      asrkit make-feats --type fbank --conf conf/fbank.conf --nj 4 --compress data/train
      asrkit make-feats --opt num-mel-bins=80 --opt snip-edges=false data/dev
    """
    from asrkit.features.make_feats import make_feats as run
    from asrkit.logutil import command_line, setup_logging, versions

    log = setup_logging()
    log.info("%s", command_line())
    log.info("%s", versions())
    result = run(data_dir, feat_type=feat_type, conf=conf, options=options, nj=nj, device=device,
                 compress=compress, feat_dir=feat_dir, overwrite=overwrite, batch_seconds=batch_seconds)
    skipped = f", {len(result.jobs_skipped)} job(s) already done" if result.jobs_skipped else ""
    click.echo(f"{result.feats_scp}: {result.num_utts} utterances, {result.num_frames} frames{skipped}")


@click.command("compute-cmvn")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--global", "global_stats", is_flag=True,
              help="One set of stats for the whole data dir (DATA_DIR/cmvn.ark) instead of per speaker.")
@click.option("--feat-dir", type=click.Path(file_okay=False), default=None,
              help="Where cmvn_<set>.{ark,scp} go.  [default: the folder of the arks in feats.scp]")
def compute_cmvn(data_dir: str, global_stats: bool, feat_dir: str | None) -> None:
    """Accumulate CMVN stats of DATA_DIR/feats.scp: per speaker into DATA_DIR/cmvn.scp (Kaldi's
    compute_cmvn_stats.sh), or with --global into DATA_DIR/cmvn.ark.

    \b
    Example:
      asrkit compute-cmvn data/train
    """
    from asrkit.features.cmvn import compute_cmvn as run
    from asrkit.logutil import command_line, setup_logging

    log = setup_logging()
    log.info("%s", command_line())
    result = run(data_dir, global_stats=global_stats, feat_dir=feat_dir)
    where = result.cmvn_scp or result.cmvn_ark
    what = "global stats" if global_stats else f"{result.num_keys} speakers"
    click.echo(f"{where}: {what}, {result.num_frames} frames")
