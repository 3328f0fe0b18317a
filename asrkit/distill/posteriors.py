"""Teacher posteriors for knowledge distillation ("soft alignments"), written and read as Kaldi tables.

`dump_posteriors` runs a trained teacher over a data dir, batched (on a GPU with `device="cuda"`),
and writes each utterance's per-frame output distribution `softmax(logits / T)` at the *student's*
output frame rate: as float matrices (rows = frames, columns = the utterance's language head) in
`post.JOB.ark/scp`, or with `topk` as Kaldi's `Posterior` format (the k largest entries per frame,
renormalised). Jobs run over `split{nj}` of the data dir (in a pool of processes, through
asrkit.jobs), finished jobs are skipped on a re-run, and the parts are merged into `DIR/post.scp`.
`asrkit.data.targets.open_soft_targets` reads either format back for `asrkit train` (`objective:
kl`), expanding Posterior archives to dense matrices at load time.

The Posterior format itself (Kaldi's src/hmm/posterior.cc, which kaldiio does not handle) is
asrkit.kaldi.posterior; its names are re-exported here.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from asrkit import jobs
from asrkit.data.dataset import batch_loader
from asrkit.data.sampler import inference_batches
from asrkit.data.targets import INFO_NAME
from asrkit.errors import AsrkitError, ConfigError, DataDirError
from asrkit.fileio import atomic_write, atomic_write_text, check_not_an_input, dir_lock
from asrkit.kaldi.posterior import (
    PosteriorArkWriter,
    PosteriorTable,
    dense_to_topk,
    iter_posterior_ark,
    posterior_bytes,
    posterior_to_dense,
    read_posterior,
)
from asrkit.kaldi.textio import read_table, write_table
from asrkit.kaldi.writer import COMPRESSION_TWO_BYTE, ArkScpWriter, merge_scp
from asrkit.logutil import check_device, command_line, get_logger
from asrkit.models import build_model, model_config_defaults
from asrkit.models.modelfile import ModelMeta, load_model, open_data, read_model_meta

log = get_logger("distill")

RESAMPLE_METHODS = ("average", "pick")
# Frames a resampled teacher output may differ from the student's count (conformer-style
# subsampling drops a few edge frames that ceil(T / n) keeps), in teacher frames.
EDGE_TOLERANCE = 2


# ------------------------------------------------------------------------------------------------
# Frame rates
# ------------------------------------------------------------------------------------------------

LengthFn = Callable[[torch.Tensor], torch.Tensor]  # (batch,) input frames -> output frames


def student_frame_rate(spec: str | os.PathLike, feat_dim: int) -> tuple[int, LengthFn]:
    """The student's output frame rate, from its training YAML (`model:` section) or a model file.

    The student encoder is built on torch's meta device (no memory, no weights) only to ask it for
    its exact output lengths, so any encoder type gives its own frame counts (ceil(T / n) for
    dnn/lstm with `subsample: n`, ((T - 1) // 2 - 1) // 2 for the conformer).

    Returns:
        `(subsampling, output_lengths)`: input frames per output frame, and a function
        `(batch,) int64 input lengths -> (batch,) output lengths`.

    Raises:
        FileNotFoundError / ConfigError: no such file, bad YAML, or a bad `model` section.
    """
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(2, "no such student config", str(path))
    if path.suffix in (".pt", ".pth", ".mdl"):
        model_conf = read_model_meta(path).model_conf
    else:
        try:
            conf = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(conf, dict) or not isinstance(conf.get("model"), dict):
            raise ConfigError(f"{path}: no 'model' section (give the student's training config)")
        model_conf = conf["model"]
    try:
        model_conf = model_config_defaults({k: model_conf.get(k) for k in ("encoder", "head")})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    with torch.device("meta"):
        model = build_model(model_conf, feat_dim=feat_dim, vocab_sizes={"all": 2})
    encoder = model.encoder

    def output_lengths(lens: torch.Tensor) -> torch.Tensor:
        return encoder.output_lengths(lens.cpu()).to(lens.device)

    return int(model.frame_subsampling), output_lengths


def check_frame_rates(teacher_subsampling: int, student_subsampling: int) -> None:
    """Raise ConfigError unless one frame rate is an integer multiple of the other."""
    big, small = max(teacher_subsampling, student_subsampling), min(teacher_subsampling, student_subsampling)
    if big % small:
        raise ConfigError(f"the teacher outputs a frame per {teacher_subsampling} input frames and the student "
                          f"per {student_subsampling}; one must be a multiple of the other to resample posteriors")


def resample_posteriors(post, teacher_subsampling: int, student_subsampling: int, num_out: int,
                        method: str = "average", key: str = "?"):
    """Bring one utterance's teacher posteriors to the student's frame rate and frame count.

    Student output frame i stands for input frames `[i * s, (i + 1) * s)` (s = student
    subsampling; dnn/lstm keep input frame i * s). With n = s / teacher subsampling:

    - n > 1, "average": row i is the mean of teacher rows `[i * n, (i + 1) * n)` (the last group
      may be shorter); every teacher spike keeps its mass, which matters for peaky CTC teachers.
    - n > 1, "pick": row i is teacher row i * n (the frame the student's subsampling keeps).
    - teacher coarser (its subsampling = m * s): each teacher row is repeated m times.

    The result is then cropped or padded (repeating the last row) to `num_out` frames: encoders
    differ at the edges (a conformer's x4 front end drops frames that ceil(T / 4) keeps).

    Args:
        post: `(T_teacher, V)` torch tensor of probabilities (any device).
        num_out: the student's output frame count for this utterance.

    Returns:
        `(num_out, V)` tensor on the same device.

    Raises:
        AsrkitError: the counts differ by more than the edge tolerance (naming the utterance).
        ConfigError: unknown method, or frame rates that are not multiples of each other.
    """
    if method not in RESAMPLE_METHODS:
        raise ConfigError(f"unknown resampling method '{method}' (choose from {', '.join(RESAMPLE_METHODS)})")
    check_frame_rates(teacher_subsampling, student_subsampling)
    if student_subsampling > teacher_subsampling:
        n = student_subsampling // teacher_subsampling
        if method == "pick":
            post = post[::n]
        else:
            groups = -(-post.shape[0] // n)
            padded = torch.zeros(groups * n, post.shape[1], dtype=post.dtype, device=post.device)
            padded[: post.shape[0]] = post
            counts = torch.full((groups,), float(n), dtype=post.dtype, device=post.device)
            counts[-1] = post.shape[0] - (groups - 1) * n
            post = padded.view(groups, n, -1).sum(dim=1) / counts.unsqueeze(1)
    elif teacher_subsampling > student_subsampling:
        post = post.repeat_interleave(teacher_subsampling // student_subsampling, dim=0)
    have = post.shape[0]
    tolerance = EDGE_TOLERANCE * max(1, teacher_subsampling // student_subsampling)
    if abs(have - num_out) > tolerance or have == 0:
        raise AsrkitError(f"utterance '{key}': the teacher gives {have} frames at the student's rate but the student "
                          f"outputs {num_out} frames (teacher subsampling {teacher_subsampling}, student "
                          f"{student_subsampling}); were the features made with other options?")
    if have > num_out:
        return post[:num_out]
    if have < num_out:
        return torch.cat([post, post[-1:].expand(num_out - have, -1)], dim=0)
    return post


# ------------------------------------------------------------------------------------------------
# Dumping
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DumpOptions:
    """What a dump job computes (everything the output depends on, besides the inputs)."""

    temperature: float = 1.0
    topk: int = 0
    student_subsampling: int | None = None  # None: the teacher's own frame rate
    resample: str = "average"
    compress: bool = False
    max_frames: int = 20000

    def describe(self) -> str:
        rate = "teacher" if self.student_subsampling is None else str(self.student_subsampling)
        return (f"temperature={self.temperature:g} topk={self.topk} frame-rate={rate} resample={self.resample} "
                f"compress={self.compress}")


@dataclass(frozen=True)
class DumpJob(jobs.TableJob):
    """One job: the split data dir it reads, the teacher it runs, and (`TableJob`) the files it writes."""

    split_dir: Path
    model: Path
    device: str
    opts: DumpOptions
    frame_rate_of: str | None  # the student's training YAML or model file; None: the teacher's rate


@dataclass
class DumpResult:
    """What `dump_posteriors` did."""

    out_dir: Path
    post_scp: Path | None
    jobs_run: list[int] = field(default_factory=list)
    jobs_skipped: list[int] = field(default_factory=list)
    num_utts: int = 0
    num_frames: int = 0


def dump_posteriors(model_path: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    temperature: float = 1.0, topk: int = 0, frame_rate_of: str | os.PathLike | None = None,
                    resample: str = "average", device: str = "cpu", nj: int = 1, job: int | None = None,
                    compress: bool = False, overwrite: bool = False, max_frames: int = 20000,
                    command: str | None = None) -> DumpResult:
    """Write a teacher's per-frame posteriors for every utterance of a data dir.

    Job j of `nj` reads `DATA_DIR/split{nj}/j` (per speaker, as Kaldi's split_data.sh; per utterance,
    `split{nj}utt/j`, when there are fewer speakers than jobs) and writes
    `OUT_DIR/post.j.{ark,scp}`, `OUT_DIR/log/utt2num_frames.j` and the run.pl-style log
    `OUT_DIR/log/dump_posteriors.j.log`. When every job is done the parts are merged into
    `OUT_DIR/post.scp` (C-sorted), `utt2num_frames` (rows per utterance), `utt2lang` and
    `post_info.yaml` (teacher, temperature, top-k, frame rate and the output dimension per language).

    Rows are `softmax(logits / temperature)` over the head of the utterance's language (utt2lang;
    a one-language teacher needs none), at the frame rate of `frame_rate_of` (a student training
    YAML or model file; default the teacher's) resampled by `resample_posteriors`. With `topk`, the
    k largest entries per frame, renormalised, are written as Kaldi Posteriors; otherwise dense float
    matrices (`compress`: Kaldi's two-byte compressed matrix CM2, 1/65535 of the range per step).

    Args:
        model_path: the teacher model file (`final.pt`).
        data_dir: a data dir with feats.scp (and cmvn.scp, utt2lang).
        out_dir: the output folder (created).
        nj: number of jobs; job: run only this job (1..nj) and do not merge, for running the jobs of
            one dump in parallel (run.pl/queue.pl/Slurm arrays); a later call without `job` skips
            the finished jobs and merges.
        overwrite: recompute finished jobs too.
        max_frames: padded input frames per batch.
        command: the command line recorded in the job logs.

    Returns:
        a `DumpResult` (`post_scp` is None when `job` was given).

    Raises:
        ConfigError: bad options, or frame rates that cannot be matched.
        DataDirError / FileNotFoundError: a missing data dir file, or a language the teacher lacks.
        AsrkitError: a job failed (the message names its log and the error, e.g. the utterance
            whose frame count cannot be matched).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if isinstance(temperature, bool) or not temperature > 0:
        raise ConfigError(f"--temperature must be > 0, got {temperature}")
    if topk < 0:
        raise ConfigError(f"--topk must be >= 0, got {topk}")
    if topk and compress:
        raise ConfigError("--compress applies to float matrices; a --topk Posterior archive is already sparse")
    if resample not in RESAMPLE_METHODS:
        raise ConfigError(f"unknown --resample '{resample}' (choose from {', '.join(RESAMPLE_METHODS)})")
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {nj}")
    if job is not None and not 1 <= job <= nj:
        raise ConfigError(f"--job must be in 1..{nj}, got {job}")
    if not (data_dir / "feats.scp").is_file():
        raise FileNotFoundError(2, "no features; run `asrkit make-feats` first", str(data_dir / "feats.scp"))
    device = check_device(device)
    model_path = Path(model_path)
    meta = read_model_meta(model_path)
    student_sub = None
    if frame_rate_of is not None:
        student_sub, _ = student_frame_rate(frame_rate_of, meta.feat_dim)
        check_frame_rates(int(meta.frame_subsampling), student_sub)
    opts = DumpOptions(float(temperature), int(topk), student_sub, resample, bool(compress), int(max_frames))

    check_not_an_input(out_dir, [data_dir], ConfigError)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A whole run holds the out dir; `--job J` array tasks share it by design (each writes its own part).
    with dir_lock(out_dir, "dump-posteriors", ConfigError) if job is None else contextlib.nullcontext():
        (out_dir / "log").mkdir(exist_ok=True)
        out_abs = out_dir.resolve()
        digest = jobs.file_digest(model_path)
        # On CPU the jobs run in nj processes sharing the cores; on a GPU one after another (a batch uses
        # the whole GPU); a --job J process (an array task) keeps torch's own thread count.
        processes = nj if device == "cpu" and job is None else 1
        threads = 0 if processes == 1 else max(1, (os.cpu_count() or 1) // nj)
        specs = [DumpJob(s, model_path.resolve(), device, opts, None if frame_rate_of is None else str(frame_rate_of),
                         job=j, ark=out_abs / f"post.{j}.ark", scp=out_abs / f"post.{j}.scp",
                         utt2num_frames=out_abs / "log" / f"utt2num_frames.{j}",
                         log=out_abs / "log" / f"dump_posteriors.{j}.log",
                         signature=jobs.job_signature(s, tables=jobs.FEATURE_TABLES, options=asdict(opts),
                                                      model_digest=digest),
                         command=command or command_line(), threads=threads)
                 for j, s in enumerate(jobs.split_data(data_dir, nj), start=1)]
        wanted = [specs[job - 1]] if job is not None else specs
        result = DumpResult(out_dir, None)
        todo, result.jobs_skipped = jobs.pending_jobs(wanted, overwrite=overwrite, what="dump-posteriors", logger=log)
        total = sum(jobs.count_lines(s.split_dir / "feats.scp") for s in todo)
        _, failures = jobs.run_jobs(run_job, todo, processes=processes, progress_total=total, desc="dump-posteriors")
        if failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise AsrkitError(f"job {first.job} of {nj} failed{more}, log is in {specs[first.job - 1].log}: "
                              f"{first.message}")
        result.jobs_run = [s.job for s in todo]
        if job is not None:
            return result
        _merge(specs, out_dir, meta, model_path, opts, result)
        return result


class _Teacher:
    """The loaded teacher and how to turn a batch into per-utterance student-rate posteriors."""

    def __init__(self, model_path: Path, device: str, opts: DumpOptions, frame_rate_of):
        self.model, self.meta = load_model(model_path, device=device)
        self.device = device
        self.opts = opts
        self.subsampling = int(self.model.frame_subsampling)
        self.student_lengths = None
        if frame_rate_of is not None:
            _, self.student_lengths = student_frame_rate(frame_rate_of, self.meta.feat_dim)
        self.languages = list(self.model.languages)

    def posteriors(self, batch) -> list[tuple[str, object]]:
        """`(key, (T_student, V) tensor on the device)` for each utterance of a language-homogeneous batch."""
        batch = batch.to(self.device)
        with torch.inference_mode():
            logits, out_lens = self.model(batch.feats, batch.feat_lens, batch.lang)
            probs = (logits.float() / self.opts.temperature).softmax(dim=-1)
            teacher_lens = out_lens.tolist()  # one device sync per batch, not per utterance
            student_lens = teacher_lens if self.student_lengths is None else \
                self.student_lengths(batch.feat_lens).tolist()
            out = []
            for i, key in enumerate(batch.keys):
                post = probs[i, : teacher_lens[i]]
                if self.student_lengths is not None:
                    post = resample_posteriors(post, self.subsampling, self.opts.student_subsampling,
                                               student_lens[i], self.opts.resample, key)
                out.append((key, post))
        return out


def run_job(job: DumpJob, on_progress=None) -> dict[str, int]:
    """Dump one split data dir's posteriors into the job's ark/scp, frame counts and log
    (`asrkit.jobs.run_jobs` runs it with `job.threads` torch threads).

    Args:
        job: the job.
        on_progress: called with the number of utterances done since the last call.

    Returns:
        `{utt: rows written}`.

    Raises:
        DataDirError: an utterance's language has no head in the teacher.
        AsrkitError: frame counts that cannot be matched (naming the utterance), bad features.
    """
    opts = job.opts
    with jobs.job_logging(job, command=job.command, source=job.split_dir, target=job.ark,
                          options=opts.describe()) as jlog:
        teacher = _Teacher(job.model, job.device, opts, job.frame_rate_of)
        dataset = open_data(job.split_dir, teacher.meta)
        unknown = sorted(set(dataset.languages) - set(teacher.languages))
        if unknown and "all" not in teacher.languages:
            first = next(k for k, v in dataset.utt_lang.items() if v == unknown[0])
            raise DataDirError(f"{job.split_dir}/utt2lang: language '{unknown[0]}' (utterance '{first}') has no "
                               f"output layer in the teacher (languages: {', '.join(teacher.languages)})")
        utts = _drop_too_short(dataset.utts, teacher, jlog)
        if on_progress is not None and len(utts) < len(dataset.utts):
            on_progress(len(dataset.utts) - len(utts))
        batches = inference_batches(utts, opts.max_frames)
        frames: dict[str, int] = {}
        start = time.time()
        next_report = start + 30.0
        final_ark = jobs.final_path(job.ark)  # the runner runs the job staged; its scp names the final ark
        if opts.topk:
            writer = PosteriorArkWriter(job.ark, job.scp, final_ark=final_ark)
        else:
            writer = ArkScpWriter(job.ark, job.scp, compress=opts.compress, compression_method=COMPRESSION_TWO_BYTE,
                                  final_ark=final_ark)
        with writer:
            for batch in batch_loader(dataset, batches):
                for key, post in teacher.posteriors(batch):
                    if opts.topk:
                        k = min(opts.topk, post.shape[1])
                        weights, ids = torch.topk(post, k, dim=-1)
                        weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)
                        writer.write(key, ids.cpu().numpy().astype(np.int32), weights.cpu().numpy())
                    else:
                        writer.write(key, post.cpu().numpy())
                    frames[key] = int(post.shape[0])
                if on_progress is not None:
                    on_progress(len(batch.keys))
                if time.time() >= next_report:
                    jlog.info("progress: %d / %d utterances", len(frames), len(utts))
                    next_report = time.time() + 30.0
        with atomic_write(job.utt2num_frames) as f:
            for key, n in frames.items():
                f.write(f"{key} {n}\n")
        elapsed = time.time() - start
        jlog.info("done %d utterances, %d frames, in %.1f s", len(frames), sum(frames.values()), elapsed)
    return frames


def _drop_too_short(utts, teacher: _Teacher, jlog):
    """Utterances too short to give the teacher or the student an output frame are skipped."""
    lens = torch.tensor([u.num_frames for u in utts], dtype=torch.int64)
    ok = teacher.model.output_lengths(lens) > 0
    if teacher.student_lengths is not None:
        ok &= teacher.student_lengths(lens) > 0
    kept = [u for u, good in zip(utts, ok.tolist()) if good]
    if len(kept) < len(utts):
        jlog.warning("skipped %d utterance(s) too short for an output frame (first: '%s')", len(utts) - len(kept),
                     next(u.key for u, good in zip(utts, ok.tolist()) if not good))
    if not kept:
        raise AsrkitError("no utterance is long enough for an output frame")
    return kept


def _merge(specs: list[DumpJob], out_dir: Path, meta: ModelMeta, model_path: Path, opts: DumpOptions,
           result: DumpResult) -> None:
    """Merge the job parts into post.scp, utt2num_frames and utt2lang; write post_info.yaml. All are
    written under staged names and renamed into place with the jobs' arks (`asrkit.jobs.publish`)."""
    merged = [out_dir / name for name in ("post.scp", "utt2num_frames", "utt2lang", INFO_NAME)]
    jobs.remove_stale_temporaries(merged)
    with jobs.publishing(specs, merged):
        _merge_staged(jobs.current(specs), out_dir, meta, model_path, opts, result)
    log.info("dump-posteriors: wrote %s (%d utterances, %d frames)", result.post_scp, result.num_utts,
             result.num_frames)


def _merge_staged(parts: list[DumpJob], out_dir: Path, meta: ModelMeta, model_path: Path, opts: DumpOptions,
                  result: DumpResult) -> None:
    """`_merge`'s tables, each written to its `asrkit.jobs.staged_path`."""
    staged = jobs.staged_path
    merge_scp([s.scp for s in parts], staged(out_dir / "post.scp"))
    frames = jobs.merge_tables([s.utt2num_frames for s in parts], staged(out_dir / "utt2num_frames"), num_fields=2)
    utt2lang: dict[str, str] = {}
    languages = list(meta.languages)
    for spec in parts:
        lang_file = spec.split_dir / "utt2lang"
        langs = read_table(lang_file, num_fields=2) if lang_file.is_file() else {}
        for key in read_table(spec.utt2num_frames, num_fields=2):
            utt2lang[key] = langs.get(key, languages[0])
    write_table(staged(out_dir / "utt2lang"), utt2lang)
    dims = {lang: int(meta.vocab_sizes[lang]) for lang in sorted(set(utt2lang.values()))
            if lang in meta.vocab_sizes}
    if not dims:  # a linear head registered as "all"
        dims = {lang: int(next(iter(meta.vocab_sizes.values()))) for lang in sorted(set(utt2lang.values()))}
    info = {
        "format": "posterior" if opts.topk else "matrix",
        "teacher": str(model_path),
        "teacher_objective": meta.objective,
        "teacher_frame_subsampling": int(meta.frame_subsampling),
        "frame_subsampling": int(opts.student_subsampling or meta.frame_subsampling),
        "resample": opts.resample if opts.student_subsampling not in (None, int(meta.frame_subsampling)) else None,
        "temperature": opts.temperature,
        "topk": opts.topk,
        "compress": opts.compress,
        "output_dims": dims,
        "num_utts": len(frames),
        "num_frames": sum(int(n) for n in frames.values()),
    }
    atomic_write_text(staged(out_dir / INFO_NAME), yaml.safe_dump(info, sort_keys=False))
    result.post_scp = out_dir / "post.scp"
    result.num_utts = info["num_utts"]
    result.num_frames = info["num_frames"]


__all__ = ["DumpJob", "DumpOptions", "DumpResult", "PosteriorArkWriter", "PosteriorTable", "dense_to_topk",
           "dump_posteriors", "iter_posterior_ark", "posterior_bytes", "posterior_to_dense", "read_posterior",
           "resample_posteriors", "run_job", "student_frame_rate"]
