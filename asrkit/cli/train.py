"""`asrkit train`, `asrkit average-checkpoints`, `asrkit plot`: stage 4, training and its tools."""

from __future__ import annotations

import os
import sys

import click


def _relaunch_under_torchrun(nproc: int, device: str) -> None:
    """Re-execute this command under `torchrun --standalone` with N processes (and wait for it)."""
    import subprocess

    argv = list(sys.argv[1:])
    cleaned, skip = [], False
    for a in argv:  # drop --ngpu/--nproc so the children do not relaunch again
        if skip:
            skip = False
            continue
        if a in ("--ngpu", "--nproc"):
            skip = True
            continue
        if a.startswith(("--ngpu=", "--nproc=")):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "asrkit", *cleaned, "--set", f"training.device={device}"]
    # Share the cores between the ranks (torchrun would otherwise set 1 thread each, with a warning).
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    env = dict(os.environ, OMP_NUM_THREADS=threads)
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
    errors, root_cause = _pass_stderr_through(proc.stderr)
    code = proc.wait()
    if code != 0:
        from asrkit.errors import AsrkitError

        cause = f"torchrun: {root_cause}" if root_cause else f"torchrun exited with status {code}"
        if errors:  # every rank printed the same error: say it once, last
            raise AsrkitError(f"{errors[0]} ({cause})" if root_cause else errors[0])
        raise AsrkitError(f"training stopped ({cause}); the rank logs are in the out dir's log/")
    sys.exit(0)


_RANK_ERROR = "asrkit train: error: "


def _pass_stderr_through(stream) -> tuple[list[str], str]:
    """Copy the ranks' stderr to ours, keeping back their one-line errors and torchrun's failure
    report (its `failed (exitcode: ...)` line and ChildFailedError traceback), which adds nothing
    but the rank that failed first and how (its "Root Cause" block, returned as one phrase). A
    rank's own traceback (a bug) comes before that report and is shown.

    Returns:
        `(errors, root_cause)`: the ranks' error messages in order without repeats, and e.g.
        "rank 1 failed first: Signal 9 (SIGKILL) received by PID 123" or "".
    """
    errors: list[str] = []
    hiding = in_root_cause = False
    rank = how = ""
    for line in stream:
        if line.startswith(_RANK_ERROR):
            message = line[len(_RANK_ERROR):].rstrip("\n")
            if message not in errors:
                errors.append(message)
            continue
        if "torch/distributed/elastic" in line and "failed (exitcode:" in line:
            hiding = True
        if not hiding:
            sys.stderr.write(line)
            sys.stderr.flush()
            continue
        in_root_cause = in_root_cause or "Root Cause" in line
        field, _, value = line.strip().partition(":")
        if in_root_cause and field.strip() == "rank" and not rank:
            rank = value.split("(")[0].strip()
        if in_root_cause and field.strip() == "traceback" and not how:
            how = value.strip()
    return errors, (f"rank {rank} failed first: {how}" if rank and how and "<N/A>" not in how else "")


@click.command("train")
@click.option("--config", "config_paths", type=click.Path(dir_okay=False), multiple=True,
              help="Training config (YAML, values only); repeat to lay one over another (e.g. a size preset).")
@click.option("--train-data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Training data dir (repeat for several).")
@click.option("--valid-data", multiple=True, type=click.Path(file_okay=False), help="Validation data dir (repeat for several).")
@click.option("--lang", "lang_dir", type=click.Path(file_okay=False), help="Lang dir from `asrkit make-lang` (needed for ctc/rnnt).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Experiment dir (exp/<name>).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. optim.lr=5e-4.")
@click.option("--init-from", type=click.Path(), metavar="FILE", help="Model file to initialise from (cross-language transfer).")
@click.option("--freeze", type=click.Choice(["none", "encoder", "shared"]), help="Parts to keep fixed.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out-dir, exactly.")
@click.option("--overwrite", is_flag=True, help="Discard an earlier run in --out-dir and start again.")
@click.option("--ngpu", type=click.IntRange(min=0), default=0, help="Run N processes, one per GPU, under torchrun (NCCL).")
@click.option("--nproc", type=click.IntRange(min=0), default=0, help="Run N CPU processes under torchrun (gloo).")
def train(config_paths, train_data, valid_data, lang_dir, out_dir, overrides, init_from, freeze, resume, overwrite,
          ngpu, nproc) -> None:
    """Train an acoustic model on DATA dirs with features (feats.scp) and targets.

    \b
    Example:
      asrkit train --config conf/mtl_conformer.yaml --train-data data/train --valid-data data/dev \\
          --lang data/lang_bpe300 --out-dir exp/mtl_conformer
      asrkit train --config conf/mtl_conformer.yaml --config conf/size_demo/conformer.yaml ...
    """
    if ngpu > 1 or nproc > 1:
        if "WORLD_SIZE" in os.environ:
            raise click.UsageError("--ngpu/--nproc given inside a torchrun job; drop them (torchrun sets the processes)")
        _relaunch_under_torchrun(ngpu or nproc, "cuda" if ngpu else "cpu")
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training

    extra = list(overrides)
    if init_from:
        extra.append(f"training.init_from={init_from}")
    if freeze:
        extra.append(f"training.freeze={freeze}")
    if ngpu == 1:
        extra.append("training.device=cuda")
    conf = load_config(list(config_paths), extra)
    final = run_training(conf, train_dirs=list(train_data), valid_dirs=list(valid_data), lang_dir=lang_dir,
                         out_dir=out_dir, resume=resume, overwrite=overwrite)
    click.echo(str(final))


@click.command("average-checkpoints")
@click.option("--out", required=True, help="Averaged model file to write.")
@click.option("--last", type=int, default=0, help="Average the newest N checkpoints of EXP_DIR instead of listing files.")
@click.argument("inputs", nargs=-1, required=True)
def average_checkpoints(out, last, inputs) -> None:
    """Average the weights of model files or checkpoints (or the last N checkpoints of an exp dir).

    \b
    Example:
      asrkit average-checkpoints --last 3 --out exp/mtl/avg3.pt exp/mtl
    """
    from pathlib import Path

    from asrkit.models.modelfile import average_model_files
    from asrkit.training.checkpoint import list_checkpoints

    paths = list(inputs)
    if last:
        if len(inputs) != 1:
            raise click.UsageError("--last N takes one EXP_DIR")
        ckpts = list_checkpoints(Path(inputs[0]) / "checkpoints")
        if len(ckpts) < last:
            from asrkit.errors import AsrkitError

            raise AsrkitError(f"{inputs[0]}/checkpoints has {len(ckpts)} checkpoint(s), fewer than --last {last}")
        paths = ckpts[-last:]
    average_model_files(paths, out)
    click.echo(f"{out}: average of {len(paths)} model(s)")


@click.command("plot")
@click.option("--out", help="PNG to write (default EXP/log/curves.png).")
@click.argument("exp_dir")
def plot(exp_dir, out) -> None:
    """Plot training/validation loss, learning rate and frames/s of EXP_DIR into a PNG."""
    from asrkit.training.plot import plot_curves

    path = plot_curves(exp_dir, out)
    click.echo(str(path))
