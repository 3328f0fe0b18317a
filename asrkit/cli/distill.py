"""`asrkit dump-posteriors`: stage 6, a teacher's per-frame posteriors as soft targets for a student."""

from __future__ import annotations

import click


@click.command("dump-posteriors")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Teacher model file (e.g. exp/teacher/final.pt).")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="Data dir with feats.scp (and cmvn.scp, utt2lang).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Where post.JOB.{ark,scp}, the merged post.scp and the logs go (exp/<teacher>/post_<set>).")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Softmax temperature of the teacher; train the student with the same objective.temperature.")
@click.option("--topk", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the K largest posteriors per frame (renormalised) in Kaldi's Posterior format; 0: dense matrices.")
@click.option("--frame-rate-of", "frame_rate_of", type=click.Path(dir_okay=False), default=None,
              help="Student training YAML (or model file): write posteriors at its output frame rate.")
@click.option("--resample", type=click.Choice(["average", "pick"]), default="average", show_default=True,
              help="When the student subsamples more than the teacher: average each group of teacher frames, "
                   "or pick the frame the student keeps.")
@click.option("--device", default="cpu", show_default=True,
              help="auto (cuda when there is one), cpu, cuda or cuda:N.")
@click.option("--nj", type=click.IntRange(min=1), default=1, show_default=True,
              help="Jobs, over a per-speaker split{NJ} of the data dir.")
@click.option("--job", type=click.IntRange(min=1), default=None,
              help="Run only job JOB of NJ and do not merge (for run.pl/queue.pl JOB=1:NJ).")
@click.option("--batch-frames", type=click.IntRange(min=1), default=20000, show_default=True,
              help="Padded input frames per batch.")
@click.option("--compress", is_flag=True, help="Write Kaldi-compressed matrices (two-byte CM2).")
@click.option("--overwrite", is_flag=True, help="Recompute jobs that are already done.")
def dump_posteriors(model_path, data_dir, out_dir, temperature, topk, frame_rate_of, resample, device, nj, job,
                    batch_frames, compress, overwrite) -> None:
    """Write a teacher's per-frame posteriors for DATA as OUT_DIR/post.scp (soft targets for
    `asrkit train` with `objective: kl`).

    Rows are frames at the student's output rate, columns the teacher's outputs for the utterance's
    language. A finished job is skipped when the command is re-run.

    \b
    Example:
      asrkit dump-posteriors --model exp/blstm/final.pt --data data/train \\
          --out-dir exp/blstm/post_train --frame-rate-of conf/student_dnn.yaml --nj 4
    """
    from asrkit.distill.posteriors import dump_posteriors as run
    from asrkit.logutil import command_line, gpu_or_cpu_jobs, setup_logging, versions

    log = setup_logging()
    if job is None:  # (one job of a split, --job, keeps the split's --nj)
        device, nj = gpu_or_cpu_jobs(device, nj)
    log.info("%s", command_line())
    log.info("%s", versions())
    result = run(model_path, data_dir, out_dir, temperature=temperature, topk=topk, frame_rate_of=frame_rate_of,
                 resample=resample, device=device, nj=nj, job=job, compress=compress, overwrite=overwrite,
                 max_frames=batch_frames)
    skipped = f", {len(result.jobs_skipped)} job(s) already done" if result.jobs_skipped else ""
    if result.post_scp is None:
        click.echo(f"job {job} of {nj} done{skipped}")
    else:
        click.echo(f"{result.post_scp}: {result.num_utts} utterances, {result.num_frames} frames{skipped}")
