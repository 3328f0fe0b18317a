"""`make-feats`: Kaldi fbank/MFCC for a data dir in N parallel jobs, as steps/make_{fbank,mfcc}.sh.

The data dir is split per speaker (`split{N}`), job j writes `<feat-dir>/raw_<type>_<set>.j.{ark,scp}`
with a run.pl-style log in `<feat-dir>/log/make_<type>_<set>.j.log`, and the parts are merged into
`DATA_DIR/feats.scp` and `DATA_DIR/utt2num_frames`. The jobs write under staged names and the run
is renamed into place only once every job succeeded (asrkit.jobs), so a failed `--overwrite` run
leaves the previous features as they were. A job whose outputs exist, whose log ends with code 0 and
whose options and inputs are unchanged is skipped, so a killed or failed run is resumed by re-running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from asrkit import jobs
from asrkit.errors import AsrkitError, AudioError, ConfigError, DataDirError
from asrkit.features.batched import BatchedFeatureExtractor
from asrkit.features.kaldi_feats import FeatureOptions, check_duration, compute_features, load_feature_options
from asrkit.fileio import atomic_write, atomic_write_text, check_not_an_input, dir_lock
from asrkit.kaldi.datadir import validate_data_dir
from asrkit.kaldi.textio import read_table
from asrkit.kaldi.wav import SOX_SPEED_EMULATED, WavScpReader, emulates_sox_speed
from asrkit.kaldi.writer import ArkScpWriter, merge_scp
from asrkit.logutil import check_device, command_line, get_logger

# Kaldi's make_fbank.sh fails when more than this fraction of utterances got no features.
MAX_FAILED_FRACTION = 0.05
# Seconds of audio per batch: enough frames to keep BLAS/FFT busy, small enough for little memory.
# On CPU a few seconds per batch keeps the (frames, window) arrays in cache (measured: 5-10 s is
# fastest on a 2-core VM, 30 s is 20% slower); a GPU wants large batches.
DEFAULT_BATCH_SECONDS = {"cpu": 8.0, "cuda": 600.0}


@dataclass(frozen=True)
class JobSpec(jobs.TableJob):
    """One make-feats job: the split data dir it reads, how, and (`TableJob`) the files it writes."""

    split_dir: Path
    opts: FeatureOptions
    device: str
    compress: bool
    batch_seconds: float
    code_path: tuple[str, ...] = ()  # e.g. ("sox speed emulated",): in the signature and the log


@dataclass
class MakeFeatsResult:
    """What `make_feats` did: the merged files, which jobs ran or were skipped, and counts."""

    feats_scp: Path
    utt2num_frames: Path
    feat_dir: Path
    jobs_run: list[int] = field(default_factory=list)
    jobs_skipped: list[int] = field(default_factory=list)
    num_utts: int = 0
    num_frames: int = 0
    num_failed: int = 0


def make_feats(data_dir: str | os.PathLike, feat_type: str = "fbank", conf: str | os.PathLike | None = None,
               options: Iterable[str] | Mapping[str, object] = (), nj: int = 1, device: str = "cpu",
               compress: bool = False, feat_dir: str | os.PathLike | None = None, overwrite: bool = False,
               batch_seconds: float | None = None, threads: int | None = None,
               progress: bool | None = None) -> MakeFeatsResult:
    """Compute features for every utterance of a data dir and write `feats.scp` and `utt2num_frames`.

    Args:
        data_dir: Kaldi data dir with `wav.scp`, `utt2spk`, `spk2utt` and optionally `segments`.
        feat_type: "fbank" or "mfcc".
        conf: Kaldi `.conf` file of compute-{fbank,mfcc}-feats options.
        options: extra Kaldi options applied after `conf` (`"num-mel-bins=80"` or a mapping).
        nj: number of parallel jobs (the data dir is split per speaker into `split{nj}`).
        device: "cpu", "cuda" or "cuda:N"; utterances are batched by total length on it.
        compress: write Kaldi-compressed (`CM`) matrices, as `copy-feats --compress=true`.
        feat_dir: where the arks go; default `DATA_DIR/data` (make_fbank.sh's default).
        overwrite: recompute jobs that are already done.
        batch_seconds: seconds of audio per batch (default 8 on CPU, 600 on GPU); 0 computes one
            utterance at a time with `torchaudio.compliance.kaldi` directly.
        threads: torch threads per job (default 1, like Kaldi's single-threaded binaries: --nj is
            the way to use more cores; measured on a busy 2-core VM, 2 intra-op threads per job
            were up to 10x slower than 1, see docs/benchmarks.md).
        progress: show a progress bar; None shows one when stderr is a terminal.

    Returns:
        a `MakeFeatsResult`.

    Raises:
        DataDirError: missing/invalid data dir files, or too many utterances without features.
        FormatError / ConfigError: a bad conf line or option.
        AsrkitError: a job failed (the message names its log and the first error, e.g. an utterance
            whose sample rate does not match --sample-frequency).
        DataDirError: also: `feat_dir` is (or holds) the data dir; another make-feats writes the
            data dir now; the arks would overwrite another data dir's features (same folder name).
    """
    data_dir = Path(data_dir)
    _validate(data_dir)
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1 (got {nj})")
    opts = load_feature_options(feat_type, conf, options)
    if feat_type == "fbank" and (bank_warning := opts.mel_bank_warning()):  # issue 21.4: 80 bins at 8 kHz
        get_logger("features").warning("%s", bank_warning)

    device = check_device(device)
    if batch_seconds is None:
        batch_seconds = DEFAULT_BATCH_SECONDS["cuda" if device.startswith("cuda") else "cpu"]
    feat_dir = (Path(feat_dir) if feat_dir is not None else data_dir / "data").resolve()
    # Inside the data dir is make_fbank.sh's default (DATA_DIR/data); the data dir itself or a
    # folder holding it would mix the arks and logs with the user's files.
    check_not_an_input(feat_dir, [data_dir], DataDirError, inside_ok=True)
    with dir_lock(data_dir, "make-feats", DataDirError):
        return _make_feats(data_dir, feat_dir, opts, feat_type=feat_type, nj=nj, device=device, compress=compress,
                           overwrite=overwrite, batch_seconds=batch_seconds, threads=threads, progress=progress)


def _make_feats(data_dir: Path, feat_dir: Path, opts: FeatureOptions, *, feat_type: str, nj: int, device: str,
                compress: bool, overwrite: bool, batch_seconds: float, threads: int | None,
                progress: bool | None) -> MakeFeatsResult:
    """`make_feats` once the options are checked and the data dir is locked."""
    log = get_logger("features")
    set_name = data_dir.resolve().name
    log_dir = feat_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)

    splits = jobs.split_data(data_dir, nj, always_per_speaker=True)
    command = command_line()
    if threads is None:
        threads = 1
    elif threads < 1:
        raise ConfigError(f"threads must be at least 1 (got {threads})")
    specs = []
    for job, split_dir in enumerate(splits, start=1):
        stem = f"raw_{feat_type}_{set_name}.{job}"
        code_path = (SOX_SPEED_EMULATED,) if emulates_sox_speed(split_dir / "wav.scp") else ()
        specs.append(JobSpec(
            job=job, split_dir=split_dir, ark=feat_dir / f"{stem}.ark", scp=feat_dir / f"{stem}.scp",
            utt2num_frames=log_dir / f"utt2num_frames_{feat_type}_{set_name}.{job}",
            log=log_dir / f"make_{feat_type}_{set_name}.{job}.log", opts=opts, device=device,
            compress=compress, batch_seconds=float(batch_seconds),
            signature=job_signature(split_dir, opts, compress, code_path), command=command, threads=threads,
            code_path=code_path))
    if any(s.code_path for s in specs):
        log.warning("sox is not installed: the speed perturbation of %s is emulated in-process (samples differ "
                    "from sox's by a few int16 steps; the job logs record it)", data_dir / "wav.scp")
    _check_arks_are_ours(specs, data_dir)
    for path in _merged_files(data_dir, feat_type):  # what a run killed while publishing left
        jobs.staged_path(path).unlink(missing_ok=True)
    result = MakeFeatsResult(data_dir / "feats.scp", data_dir / "utt2num_frames", feat_dir)
    todo, result.jobs_skipped = jobs.pending_jobs(specs, overwrite=overwrite, what="make-feats", logger=log)
    total = sum(jobs.count_lines(s.split_dir / "utt2spk") for s in todo)
    _, failures = jobs.run_jobs(run_job, todo, processes=nj, progress_total=total, desc="make-feats",
                                progress=progress)
    result.jobs_run = [s.job for s in todo]
    if failures:
        spec = specs[failures[0].job - 1]
        raise AsrkitError(f"{len(failures)} / {len(specs)} jobs failed, log is in {spec.log}: {failures[0].message}")
    _merge(specs, data_dir, opts, result)
    return result


def _check_arks_are_ours(specs: list[JobSpec], data_dir: Path) -> None:
    """Refuse to write arks that another data dir's feats.scp points to.

    Arks are named after the data dir's folder name (`raw_fbank_<set>.<job>.ark`, as Kaldi names
    them), so `a/test` and `b/test` with one `--feat-dir` would write the same files and `a/test`
    would silently read b's features. A job log records the split dir it read; its data dir is the
    arks' owner while its feats.scp still points to them.

    Raises:
        DataDirError: naming the ark, the other data dir and what to do.
    """
    here = data_dir.resolve()
    for spec in specs:
        owner = _logged_data_dir(spec)
        if owner is None or owner == here or not spec.ark.is_file():
            continue
        feats = owner / "feats.scp"
        if feats.is_file() and str(spec.ark) in feats.read_text(encoding="utf-8", errors="replace"):
            raise DataDirError(f"{spec.ark}: holds the features of {owner} (its feats.scp points there), and "
                               f"{data_dir} would overwrite them (arks are named after the folder, "
                               f"'{here.name}'); give {data_dir} another --feat-dir")


def _logged_data_dir(spec: JobSpec) -> Path | None:
    """The data dir whose split dir an existing job log says it read (`job N: <split dir> -> ...`)."""
    if spec.log is None or not spec.log.is_file():
        return None
    prefix = f"job {spec.job}: "
    for line in spec.log.read_text(encoding="utf-8", errors="replace").splitlines():
        at = line.find(prefix)
        if at >= 0 and " -> " in line:
            split_dir = Path(line[at + len(prefix):].split(" -> ", 1)[0])
            return (spec.log.parent / split_dir).resolve().parent.parent if not split_dir.is_absolute() \
                else split_dir.resolve().parent.parent
    return None


def _validate(data_dir: Path) -> None:
    """Kaldi's make_fbank.sh check: `validate_data_dir.sh --no-text --no-feats`."""
    if not (data_dir / "wav.scp").is_file():
        raise DataDirError(f"{data_dir / 'wav.scp'}: not found (make-feats needs wav.scp, utt2spk and spk2utt)")
    try:
        validate_data_dir(data_dir, no_feats=True, no_text=True)
    except DataDirError as e:
        # A feats.scp from an earlier run is about to be replaced; only complain about other files.
        if Path(getattr(e, "path", "") or "").name != "feats.scp":
            raise


def job_signature(split_dir: Path, opts: FeatureOptions, compress: bool, code_path: tuple[str, ...] = ()) -> str:
    """The signature of a job (`asrkit.jobs.job_signature`): the options and code path, and its
    split's wav.scp, segments and utt2spk."""
    options = {"feat_type": opts.feat_type, "options": opts.to_kaldi_args(), "compress": compress}
    return jobs.job_signature(split_dir, tables=("wav.scp", "segments", "utt2spk"), options=options,
                              code_path=code_path)


def run_job(spec: JobSpec, on_progress=None) -> dict[str, int]:
    """Compute the features of one split data dir and write its ark/scp, utt2num_frames and log
    (`asrkit.jobs.run_jobs` runs it with `spec.threads` torch threads).

    Args:
        spec: the job.
        on_progress: called with the number of utterances finished since the last call.

    Returns:
        `{utt: num_frames}` of the utterances written.

    Raises:
        AudioError: unreadable audio, or a sample rate different from --sample-frequency (naming
            the utterance); the log then ends with code 1.
        AsrkitError: no utterance of the job gave features.
    """
    import torch

    opts = spec.opts
    with jobs.job_logging(spec, command=spec.command, source=spec.split_dir.resolve(), target=spec.ark,
                          options=" ".join(opts.to_kaldi_args()), code_path=spec.code_path) as log:
        total = jobs.count_lines(spec.split_dir / "utt2spk")
        compute = _make_compute(opts, spec.device, spec.batch_seconds)
        num_frames: dict[str, int] = {}
        failed = 0
        pending: list[tuple[str, object]] = []
        pending_samples = 0
        max_samples = int(spec.batch_seconds * opts.sample_frequency)
        start = time.time()
        next_report = start + 30.0
        done = 0

        def flush(writer) -> None:
            nonlocal pending, pending_samples, done, next_report
            if not pending:
                return
            keys = [k for k, _ in pending]
            outputs = compute([w for _, w in pending], keys)
            if outputs and outputs[0].device.type != "cpu":
                # One device-to-host copy per batch rather than one per utterance.
                outputs = torch.cat(outputs).cpu().split([f.shape[0] for f in outputs])
            for key, feats in zip(keys, outputs):
                mat = feats.numpy()
                writer.write(key, mat)  # the writer rejects NaN/infinity, naming the key
                num_frames[key] = mat.shape[0]
            done += len(pending)
            if on_progress is not None:
                on_progress(len(pending))
            pending, pending_samples = [], 0
            if time.time() >= next_report or done == total:
                log.info("progress: %d / %d utterances", done, total)
                next_report = time.time() + 30.0

        # The runner runs the job staged (asrkit.jobs): its scp names the ark's final place.
        with ArkScpWriter(spec.ark, spec.scp, compress=spec.compress, final_ark=jobs.final_path(spec.ark)) as writer:
            for utt, samples, rate in WavScpReader(spec.split_dir):
                if rate != opts.sample_frequency:
                    raise AudioError(f"{utt}: sample rate {rate} Hz does not match the feature config's "
                                     f"--sample-frequency={opts.sample_frequency:g}")
                try:
                    check_duration(len(samples), opts, utt)
                except AudioError as e:
                    # As Kaldi's compute-fbank-feats: warn, skip, and let the count check decide.
                    log.warning("skipping utterance: %s", e)
                    failed += 1
                    if on_progress is not None:
                        on_progress(1)
                    continue
                pending.append((utt, torch.from_numpy(_as_float32(samples))))
                pending_samples += len(samples)
                if pending_samples >= max_samples:
                    flush(writer)
            flush(writer)
            if not num_frames:
                raise AudioError(f"{spec.split_dir}: no utterance gave features ({failed} skipped)")
        with atomic_write(spec.utt2num_frames) as f:
            for utt, n in num_frames.items():
                f.write(f"{utt} {n}\n")
        elapsed = time.time() - start
        audio = sum(num_frames.values()) * opts.frame_shift / 1000.0
        log.info("done %d utterances (%d skipped), %.1f s of audio in %.1f s (%.0fx real time)",
                 len(num_frames), failed, audio, elapsed, audio / max(elapsed, 1e-9))
    return num_frames


def _as_float32(samples):
    import numpy as np

    return np.ascontiguousarray(samples, dtype=np.float32)


def _make_compute(opts: FeatureOptions, device: str, batch_seconds: float):
    """A function `(waveforms, keys) -> list of (T, D) tensors`: batched, or torchaudio per utterance."""
    if batch_seconds > 0:
        return BatchedFeatureExtractor(opts, device)

    def per_utterance(waveforms, keys):
        return [compute_features(w.to(device), opts, k) for w, k in zip(waveforms, keys)]

    return per_utterance


def _merged_files(data_dir: Path, feat_type: str) -> list[Path]:
    return [data_dir / "feats.scp", data_dir / "utt2num_frames", data_dir / "conf" / f"{feat_type}.conf"]


def _merge(specs: list[JobSpec], data_dir: Path, opts: FeatureOptions, result: MakeFeatsResult) -> None:
    """Merge the job outputs into DATA_DIR/feats.scp and utt2num_frames; write DATA_DIR/conf/<type>.conf.

    Kaldi's rule decides (make_fbank.sh): up to 5% of the utterances without features (too short)
    are left out with a warning. Above that the run fails all or nothing: the data dir, the arks
    its feats.scp points to and their logs' verdicts are not touched, and the run's own arks are
    removed (its job logs, now in the log folder, say which utterances were skipped). Otherwise the
    merged files are written under staged names and the whole run is renamed into place at once
    (`asrkit.jobs.publish`).
    """
    parts = jobs.current(specs)  # staged by this or an earlier run, or published earlier
    num_utts = len(read_table(data_dir / "utt2spk"))
    result.num_failed = num_utts - sum(len(read_table(p.utt2num_frames, num_fields=2)) for p in parts)
    log = get_logger("features")
    if result.num_failed:
        message = (f"{data_dir}: {result.num_failed} of {num_utts} utterances got no features (too short; see "
                   f"the warnings in {specs[0].log.parent})")
        if result.num_failed > MAX_FAILED_FRACTION * num_utts:
            jobs.discard_staged(specs, f"{message}: more than {MAX_FAILED_FRACTION:.0%}")
            raise DataDirError(f"{message}: more than {MAX_FAILED_FRACTION:.0%}, so nothing was written (remove "
                               f"them from the data dir, e.g. with `asrkit data subset --utt-list`)")
        log.warning("%s: they are left out of feats.scp; run `asrkit data fix %s`", message, data_dir)
    merged = _merged_files(data_dir, opts.feat_type)
    feats_scp, utt2num_frames, conf = merged
    jobs.remove_stale_temporaries(merged)
    conf.parent.mkdir(exist_ok=True)
    with jobs.publishing(specs, merged):
        merge_scp([p.scp for p in parts], jobs.staged_path(feats_scp))
        frames = jobs.merge_tables([p.utt2num_frames for p in parts], jobs.staged_path(utt2num_frames),
                                   num_fields=2)
        atomic_write_text(jobs.staged_path(conf),
                          f"# written by asrkit make-feats: the options of {feats_scp}\n" + opts.to_kaldi_conf())
    result.num_utts = len(frames)
    result.num_frames = sum(int(n) for n in frames.values())
    log.info("make-feats: wrote %s (%d utterances, %d frames)", result.feats_scp, result.num_utts,
             result.num_frames)


__all__ = ["JobSpec", "MakeFeatsResult", "job_signature", "make_feats", "run_job"]
