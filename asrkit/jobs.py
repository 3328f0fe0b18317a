"""Kaldi-style parallel jobs over a split data dir, written once for make-feats, decode and dump-posteriors.

A stage splits its data dir (`split_data`), describes each job with a spec (a `Job`: its number,
outputs, run.pl-style log and signature), skips the jobs a previous run finished (`pending_jobs`),
runs the others in this process or in a pool of spawned processes (`run_jobs`), and merges their
outputs atomically (`merge_tables`, `asrkit.kaldi.writer.merge_scp`).

A job writes its outputs and log under staged names (`staged_path`: `.NAME.staged` beside NAME,
their scp already naming the final archive), so a run that fails leaves the previous output, which
the data dir's or out dir's merged tables point to, exactly as it was. Only once every job finished
and the stage wrote its merged tables under staged names too does `publish` rename all of them into
place, one rename per file. A failed job's log goes to its final place at once (it ends with a
non-zero code, so it marks nothing done); the staged outputs of the jobs that finished wait there
for the re-run, which skips them; a run a stage rejects as a whole is undone by `discard_staged`.

A job is finished when its outputs exist and its log ends with `# Ended (code 0)` and records
`job signature <digest>`; the digest (`job_signature`) covers everything the output depends on:
the model file's content (sha256), the job's data-dir tables and the size and time of the archives
its feature tables point to (features re-extracted in place change nothing else), the options, and
the code path where it changes the numbers (e.g. "sox speed emulated").
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import multiprocessing as mp
import os
import queue
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from asrkit.errors import AsrkitError
from asrkit.kaldi.datadir import split_data_dir, split_for_jobs
from asrkit.kaldi.rxfile import split_offset, split_range
from asrkit.kaldi.textio import read_table, write_table
from asrkit.logutil import get_logger, job_log, setup_logging, versions

# The data-dir tables a job over features reads (decode, dump-posteriors): their content, and the
# archives feats.scp and cmvn.scp point to, are the job's input.
FEATURE_TABLES = ("feats.scp", "cmvn.scp", "utt2spk", "utt2lang")


@dataclass(frozen=True, kw_only=True)
class Job:
    """What the runner reads of a job spec. A stage's spec extends it (a frozen dataclass, so that
    it pickles into pool workers) with what its job does; these fields are keyword-only, so the
    stage's own fields come first."""

    job: int  # 1-based, as run.pl's JOB
    log: Path | None  # the job's run.pl-style log; None: the job logs into its driver's log
    signature: str  # `job_signature` of its inputs and options
    command: str  # the command line its log records
    threads: int = 0  # torch threads while it runs; 0 leaves torch's setting alone

    @property
    def outputs(self) -> tuple[Path, ...]:
        """The files the job writes (each atomically); all exist once it finished."""
        return ()

    def staged(self) -> Job:
        """This job with every output and its log under its staged name (`staged_path`): what
        `run_jobs` runs. Output fields are found by value (a path, or a tuple of paths, in `outputs`)."""
        finals = set(self.outputs)
        changes: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if (f.name == "log" and value is not None) or (isinstance(value, Path) and value in finals):
                changes[f.name] = staged_path(value)
            elif isinstance(value, tuple) and value and all(isinstance(v, Path) and v in finals for v in value):
                changes[f.name] = tuple(staged_path(v) for v in value)
        copy = dataclasses.replace(self, **changes)
        if set(copy.outputs) != {staged_path(p) for p in finals}:
            raise TypeError(f"{type(self).__name__}: an output is not a field of the job, so it cannot be staged")
        return copy


@dataclass(frozen=True, kw_only=True)
class TableJob(Job):
    """A job that writes a Kaldi table (ark + scp) and the frames per utterance in it."""

    ark: Path
    scp: Path
    utt2num_frames: Path

    @property
    def outputs(self) -> tuple[Path, ...]:
        return (self.ark, self.scp, self.utt2num_frames)


@dataclass(frozen=True)
class JobFailure:
    """A job that raised a user error: its number and the error on one line."""

    job: int
    message: str
    error: BaseException | None = None  # the exception itself when the job ran in this process


# ------------------------------------------------------------------------------------------------
# Splitting and signatures
# ------------------------------------------------------------------------------------------------

def split_data(data_dir: str | os.PathLike, nj: int, *, always_per_speaker: bool = False) -> list[Path]:
    """The data dirs of `nj` jobs, in job order.

    Args:
        data_dir: the data dir.
        nj: the number of jobs.
        always_per_speaker: make_fbank.sh's rule (make-feats): `split{nj}` even for one job.
            Otherwise (decode, dump-posteriors) the dir itself for one job. Either way more jobs
            are split per speaker, or per utterance when there are fewer speakers than jobs
            (`asrkit.kaldi.datadir.split_for_jobs`), where make_fbank.sh's split_data.sh would
            refuse: features do not depend on the speaker, and one-speaker corpora are common.

    Raises:
        DataDirError: a missing or bad utt2spk.
    """
    if always_per_speaker and nj == 1:
        return [Path(p) for p in split_data_dir(data_dir, nj)]
    return [Path(p) for p in split_for_jobs(data_dir, nj)]


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (a model's identity, whatever its name or time stamp)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scp_archives(scp_text: str) -> set[str]:
    """The files an scp's entries point to (`ark:offset[range]` -> ark), pipes left out."""
    archives = set()
    for line in scp_text.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and not parts[1].rstrip().endswith("|"):
            archives.add(split_offset(split_range(parts[1].strip())[0])[0])
    return archives


def job_signature(data_dir: str | os.PathLike, *, tables: Sequence[str], options: Mapping[str, object],
                  model_digest: str = "", code_path: Sequence[str] = ()) -> str:
    """The digest a job's log records: what its output depends on.

    Args:
        data_dir: the job's (split) data dir.
        tables: the files of `data_dir` the job reads; their bytes are hashed, and for each `.scp`
            but wav.scp also the size and modification time of every archive it points to.
            (wav.scp's recordings are left out: a corpus has one file per recording, hundreds of
            thousands of stat calls on a network disk at every start, and is not rewritten in
            place the way feature archives are.)
        options: every option that changes the output (JSON-serialisable values).
        model_digest: `file_digest` of the model the job runs, if any.
        code_path: how the job computes where that changes the numbers, e.g. ["sox speed emulated"].

    Returns:
        a sha256 hex digest.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"model_sha256": model_digest, "options": options, "code_path": list(code_path)},
                        sort_keys=True, default=str).encode())
    for name in tables:
        path = Path(data_dir) / name
        h.update(f"\0{name}\0".encode())
        if not path.is_file():
            h.update(b"(missing)")
            continue
        data = path.read_bytes()
        h.update(data)
        if name.endswith(".scp") and name != "wav.scp":
            for archive in sorted(scp_archives(data.decode("utf-8", "replace"))):
                try:
                    st = os.stat(archive)
                    h.update(f"\0{archive}:{st.st_size}:{st.st_mtime_ns}".encode())
                except OSError:
                    h.update(f"\0{archive}:missing".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# Staged names
# ------------------------------------------------------------------------------------------------

STAGED_SUFFIX = ".staged"


def staged_path(path: str | os.PathLike) -> Path:
    """Where a job (or a stage's merge) writes `path` until the whole run succeeded: `.NAME.staged`
    in the same folder (hidden, so `*.ark` globs do not see it; same filesystem, so the final
    rename is atomic)."""
    path = Path(path)
    return path.parent / f".{path.name}{STAGED_SUFFIX}"


def final_path(path: str | os.PathLike) -> Path:
    """The inverse of `staged_path` (any other path is returned as it is): what an scp written by a
    staged job names, and what its messages name."""
    path = Path(path)
    name = path.name
    if name.startswith(".") and name.endswith(STAGED_SUFFIX) and len(name) > len(STAGED_SUFFIX) + 1:
        return path.parent / name[1:-len(STAGED_SUFFIX)]
    return path


def _files(spec: Job) -> tuple[Path, ...]:
    return (*spec.outputs, *((spec.log,) if spec.log is not None else ()))


def _staged_ready(staged: Job) -> bool:
    """True if a staged job finished: all its outputs exist, and its log (if any) says so."""
    return all(p.is_file() for p in staged.outputs) and (
        staged.log is None or job_log_finished(staged.log, staged.signature))


def current(specs: Sequence[Job]) -> list[Job]:
    """Each finished job as its files are now: its staged copy where this or an earlier run left it
    staged, else the job (published by an earlier run). A stage merges these."""
    out = []
    for spec in specs:
        staged = spec.staged()
        out.append(staged if _staged_ready(staged) else spec)
    return out


def publish(specs: Sequence[Job], merged: Sequence[str | os.PathLike] = ()) -> None:
    """Rename a finished run into place: every staged job's outputs and log, then the stage's merged
    files (written under `staged_path` names), one rename each and no write in between, so that
    nothing can fail half way for want of space. Staged leftovers of jobs that were not staged
    (published earlier, skipped now) are removed.

    A job's old log goes first and its new one last: cut off in between, the job is done in neither
    place (or still in its staged one, if no output moved yet), and a re-run runs (or publishes) it.
    """
    for spec in specs:
        staged = spec.staged()
        if not _staged_ready(staged):
            _remove_staged(spec)
            continue
        if spec.log is not None:
            spec.log.unlink(missing_ok=True)
        for src, dst in zip(staged.outputs, spec.outputs):
            os.replace(src, dst)
        if spec.log is not None:
            os.replace(staged.log, spec.log)
    for path in merged:
        os.replace(staged_path(path), path)


@contextlib.contextmanager
def publishing(specs: Sequence[Job], merged: Sequence[str | os.PathLike]):
    """Around a stage's merge, which writes each of `merged` to its `staged_path`: on a clean exit
    `publish` the run; on an error remove the staged merged files (the jobs' staged outputs stay
    for a re-run) and let the error through."""
    try:
        yield
    except BaseException:
        for path in merged:
            staged_path(path).unlink(missing_ok=True)
            remove_stale_temporaries([staged_path(path)])
        raise
    publish(specs, merged)


def discard_staged(specs: Sequence[Job], reason: str) -> None:
    """Undo a finished run that a stage rejects as a whole (e.g. make-feats' 5% rule): remove the
    staged outputs; each staged log goes to its final place with `# not merged: REASON` after its
    `# Ended` line, so that the user can read it and it marks nothing done."""
    for spec in specs:
        staged = spec.staged()
        for path in staged.outputs:
            path.unlink(missing_ok=True)
        remove_stale_temporaries(staged.outputs)
        if spec.log is not None and staged.log.is_file():
            with open(staged.log, "a", encoding="utf-8") as f:
                f.write(f"# not merged: {' '.join(reason.split())}\n")
            os.replace(staged.log, spec.log)


def _remove_staged(spec: Job) -> None:
    staged = _files(spec.staged())
    remove_stale_temporaries(staged)
    for path in staged:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------
# Finished jobs, stale temporaries
# ------------------------------------------------------------------------------------------------

def job_log_finished(path: str | os.PathLike, signature: str) -> bool:
    """True if a job log ends with `# Ended (code 0)` and records `job signature <signature>`."""
    path = Path(path)
    if not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or not lines[-1].startswith("# Ended (code 0)"):
        return False
    return any(f"job signature {signature}" in line for line in lines)


def is_done(spec: Job) -> bool:
    """True if a job's outputs exist and its log ended with code 0 under the same signature (for
    the job as published; `is_done(spec.staged())` for a finished job waiting to be published)."""
    if spec.log is None or not all(p.is_file() for p in spec.outputs):
        return False
    return job_log_finished(spec.log, spec.signature)


def pending_jobs(specs: Sequence[Job], *, overwrite: bool, what: str,
                 logger: logging.Logger | None = None) -> tuple[list, list[int]]:
    """Split job specs into those to run and the numbers of those a re-run skips (`is_done`, staged
    or published); with `overwrite` every job runs. Logs what it skips."""
    todo, done = [], []
    for spec in specs:
        if not overwrite and (is_done(spec.staged()) or is_done(spec)):
            done.append(spec.job)
        else:
            todo.append(spec)
    if done:
        (logger or get_logger()).info("%s: %d of %d job(s) already done, skipping them (--overwrite to redo)",
                                      what, len(done), len(specs))
    return todo, done


def remove_stale_temporaries(outputs: Iterable[str | os.PathLike]) -> None:
    """Remove what a killed writer left of these outputs (`asrkit.fileio.tmp_path_for` names).

    Only the temporaries of the given files go: another stage may be writing other files of the
    same folder at the same time.
    """
    for output in outputs:
        output = Path(output)
        for stale in output.parent.glob(f".{glob.escape(output.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------
# Running jobs
# ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def job_logging(spec: Job, *, command: str, source: object, target: object, options: str = "",
                code_path: Sequence[str] = (), driver_log: logging.Logger | None = None):
    """The log of one job: its run.pl-style log file (versions first), or, for a job without one,
    the driver's logger. Either starts with the job's input and output, options, code path and
    signature (what `is_done` looks for). Yields the logger."""
    if spec.log is None:
        log = driver_log or get_logger()
        _log_job_header(log, spec, source, target, options, code_path)
        yield log
        return
    if get_logger().getEffectiveLevel() > logging.INFO:
        get_logger().setLevel(logging.INFO)  # the job log always gets its signature and progress lines
    with job_log(spec.log, command) as log:
        log.info("%s", versions())
        _log_job_header(log, spec, source, target, options, code_path)
        yield log


def _log_job_header(log: logging.Logger, spec: Job, source, target, options: str,
                    code_path: Sequence[str]) -> None:
    log.info("job %d: %s -> %s", spec.job, source, final_path(target) if isinstance(target, (str, Path)) else target)
    if options:
        log.info("options: %s", options)
    for path in code_path:
        log.info("code path: %s", path)
    log.info("job signature %s", spec.signature)


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run a block with `threads` torch threads (0: unchanged), restoring the caller's setting."""
    if not threads:
        yield
        return
    import torch  # here, not at the top: make-feats' driver is imported without torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def count_lines(path: str | os.PathLike) -> int:
    """Lines of a file (utterances of a table), for progress totals."""
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def run_jobs(run_one: Callable, specs: Sequence[Job], *, processes: int, progress_total: int = 0,
             desc: str = "jobs", progress: bool | None = None) -> tuple[dict[int, object], list[JobFailure]]:
    """Run jobs: in this process when there is one (or `processes` is 1), else in a pool of
    `min(processes, len(specs))` spawned processes (torch and fork do not mix).

    Each job runs staged (`Job.staged`: its outputs and log under staged names; the stage then
    `publish`es the run). Before a job runs, its staged files and the stale temporaries of its
    outputs are removed; it runs with `spec.threads` torch threads. A failed job's log goes to its
    final place. Pool workers log into their job logs only.

    Args:
        run_one: `run_one(spec, on_progress)` runs one job and returns its result; `on_progress(n)`
            reports n more utterances done. A module-level function (the pool pickles it).
        specs: the jobs to run.
        processes: the most processes to run at once.
        progress_total: utterances in all jobs, for the progress bar (0: no bar).
        desc: the progress bar's label.
        progress: show the bar; None shows it when stderr is a terminal.

    Returns:
        `({job: result}, failures)`: a job that raised an AsrkitError or OSError is a failure (the
        others still run); other exceptions (a bug, KeyboardInterrupt) propagate.
    """
    results: dict[int, object] = {}
    failures: list[JobFailure] = []
    if not specs:
        return results, failures
    show = (sys.stderr.isatty() if progress is None else progress) and progress_total > 0
    bar = tqdm(total=progress_total, unit="utt", desc=desc, disable=not show, file=sys.stderr)
    staged = [spec.staged() for spec in specs]
    try:
        for spec in specs:
            remove_stale_temporaries(spec.outputs)
            _remove_staged(spec)
        if processes == 1 or len(specs) == 1:
            for spec in staged:
                try:
                    with torch_threads(spec.threads):
                        results[spec.job] = run_one(spec, bar.update)
                except (AsrkitError, OSError) as e:
                    failures.append(JobFailure(spec.job, _one_line(e), e))
        else:
            _run_in_pool(run_one, staged, processes, bar, results, failures)
    finally:
        bar.close()
        _place_failed_logs(specs, staged)
    return results, sorted(failures, key=lambda f: f.job)


def _place_failed_logs(specs: Sequence[Job], staged: Sequence[Job]) -> None:
    """Move the staged log of every job that failed or was interrupted to its final place, where the
    error message points; it does not end with code 0, so it marks nothing done."""
    for spec, copy in zip(specs, staged):
        if spec.log is None or not copy.log.is_file():
            continue
        lines = copy.log.read_text(encoding="utf-8", errors="replace").splitlines()
        if not lines or not lines[-1].startswith("# Ended (code 0)"):
            os.replace(copy.log, spec.log)


def _run_in_pool(run_one: Callable, specs: Sequence[Job], processes: int, bar, results: dict,
                 failures: list[JobFailure]) -> None:
    ctx = mp.get_context("spawn")
    updates = ctx.Queue()
    with cf.ProcessPoolExecutor(max_workers=min(processes, len(specs)), mp_context=ctx,
                                initializer=_init_worker, initargs=(updates,)) as pool:
        futures = {pool.submit(_run_in_worker, run_one, spec): spec for spec in specs}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2)
            _drain(updates, bar)
            for fut in done:
                job = futures[fut].job
                try:
                    ok, outcome = fut.result()
                except BrokenProcessPool:
                    ok, outcome = False, "the job's process died (killed, or out of memory?)"
                if ok:
                    results[job] = outcome
                else:
                    failures.append(JobFailure(job, outcome))
        _drain(updates, bar)


def _drain(updates, bar) -> None:
    while True:
        try:
            bar.update(updates.get_nowait())
        except queue.Empty:
            return


_WORKER_UPDATES = None


def _init_worker(updates) -> None:
    global _WORKER_UPDATES
    _WORKER_UPDATES = updates
    setup_logging(stderr=False)  # job logs only; the driver reports


def _run_in_worker(run_one: Callable, spec: Job) -> tuple[bool, object]:
    """Run a job in a pool worker: `(True, result)`, or `(False, message)` for a user error (the
    message, not the exception: asrkit's exceptions do not all survive pickling)."""
    try:
        with torch_threads(spec.threads):
            return True, run_one(spec, _WORKER_UPDATES.put if _WORKER_UPDATES is not None else None)
    except (AsrkitError, OSError) as e:
        return False, _one_line(e)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split("\n")) or type(e).__name__


# ------------------------------------------------------------------------------------------------
# Merging
# ------------------------------------------------------------------------------------------------

def merge_tables(parts: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 num_fields: int | None = None) -> dict[str, str]:
    """Merge the jobs' text tables into one C-sorted table, written atomically.

    Returns:
        the merged `{key: rest of line}`.

    Raises:
        FormatError: a bad line. AsrkitError: a key in two parts.
    """
    merged: dict[str, str] = {}
    where: dict[str, Path] = {}
    for part in parts:
        part = Path(part)
        for key, value in read_table(part, num_fields=num_fields).items():
            if key in merged:
                raise AsrkitError(f"{part}: utterance '{key}' is also in {where[key]} (written by two jobs)")
            merged[key] = value
            where[key] = part
    write_table(out, merged, sort=True)
    return merged


__all__ = ["FEATURE_TABLES", "STAGED_SUFFIX", "Job", "JobFailure", "TableJob", "count_lines", "current",
           "discard_staged", "file_digest", "final_path", "is_done", "job_log_finished", "job_logging", "job_signature",
           "merge_tables", "pending_jobs", "publish", "publishing", "remove_stale_temporaries", "run_jobs",
           "scp_archives", "split_data", "staged_path", "torch_threads"]
