"""Tests for asrkit/jobs.py: signatures, finished jobs, stale temporaries, the in-process and pool
runners, merging; and the stages on it: dump-posteriors after features were re-extracted in place,
and make-feats when sox's speed is emulated."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from asrkit import jobs
from asrkit.errors import AsrkitError, AudioError
from asrkit.fileio import atomic_write_text
from asrkit.logutil import get_logger
from tests.distill.conftest import teacher_file


@dataclasses.dataclass(frozen=True)
class ToyJob(jobs.Job):
    """A job of the tests' own stage: writes `utt<job> <value>` into `out`, or fails with `error`."""

    out: Path
    value: str = "x"
    error: str = ""

    @property
    def outputs(self) -> tuple[Path, ...]:
        return (self.out,)


def toy_job(folder: Path, job: int, *, log: bool = True, signature: str = "sig", **fields) -> ToyJob:
    return ToyJob(folder / f"out.{job}", job=job, log=folder / f"{job}.log" if log else None, signature=signature,
                  command="toy", **fields)


def run_toy_job(spec: ToyJob, on_progress=None) -> tuple[int, str, int]:
    """Module level, so that pool workers unpickle it: returns (process id, value, torch threads)."""
    with jobs.job_logging(spec, command="toy", source="in", target=spec.out, options="--toy") as log:
        if spec.error:
            raise AudioError(spec.error)
        log.info("progress: 2 / 2 utterances")
        if on_progress is not None:
            on_progress(2)
        atomic_write_text(spec.out, f"utt{spec.job} {spec.value}\n")
    if not spec.threads:
        return os.getpid(), spec.value, 0
    import torch  # only here: pool workers start in a fraction of the time without it

    return os.getpid(), spec.value, torch.get_num_threads()


def spy_on_pools(monkeypatch) -> list[int]:
    """Make `run_jobs` record the number of jobs of every pool it starts."""
    sizes: list[int] = []
    real = jobs._run_in_pool

    def spy(run_one, specs, *args):
        sizes.append(len(specs))
        return real(run_one, specs, *args)

    monkeypatch.setattr(jobs, "_run_in_pool", spy)
    return sizes


# --- signatures ----------------------------------------------------------------------------------

def _feature_dir(root: Path, values: np.ndarray) -> Path:
    d = root / "data"
    d.mkdir(exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{root / 'feats.ark'},{d / 'feats.scp'}") as w:
        w("utt1", values)
    (d / "utt2spk").write_text("utt1 spk1\n")
    return d


def test_signature_covers_tables_archives_options_model_and_code_path(tmp_path):
    d = _feature_dir(tmp_path, np.zeros((3, 2), dtype=np.float32))
    sign = {"tables": jobs.FEATURE_TABLES, "options": {"beam": 4}, "model_digest": "m1"}
    first = jobs.job_signature(d, **sign)
    assert jobs.job_signature(d, **sign) == first  # the same inputs: the same signature
    assert jobs.job_signature(d, **{**sign, "options": {"beam": 8}}) != first
    assert jobs.job_signature(d, **{**sign, "model_digest": "m2"}) != first
    assert jobs.job_signature(d, **sign, code_path=["sox speed emulated"]) != first
    (d / "utt2lang").write_text("utt1 en\n")
    with_lang = jobs.job_signature(d, **sign)
    assert with_lang != first
    # Features re-extracted in place: feats.scp is byte-identical (same shape, same offset), the
    # archive is not.
    scp = (d / "feats.scp").read_bytes()
    time.sleep(0.02)
    _feature_dir(tmp_path, np.ones((3, 2), dtype=np.float32))
    assert (d / "feats.scp").read_bytes() == scp
    assert jobs.job_signature(d, **sign) != with_lang


def test_scp_archives_and_file_digest(tmp_path):
    scp = "a /x/f.1.ark:12\nb /x/f.1.ark:99[0:3]\nc rel/f.2.ark:7\nd gunzip -c /x/f.gz |\ne /x/whole.mat\n"
    assert jobs.scp_archives(scp) == {"/x/f.1.ark", "rel/f.2.ark", "/x/whole.mat"}
    (tmp_path / "m.pt").write_bytes(b"model")
    assert jobs.file_digest(tmp_path / "m.pt") == hashlib.sha256(b"model").hexdigest()


# --- finished jobs, temporaries, logs ------------------------------------------------------------

def test_finished_jobs_are_skipped_until_outputs_code_or_signature_change(tmp_path):
    spec = toy_job(tmp_path, 1)
    assert not jobs.is_done(spec)
    results, failures = jobs.run_jobs(run_toy_job, [spec], processes=1)
    assert failures == [] and results[1][:2] == (os.getpid(), "x")  # one job: in this process
    # The job ran staged: done there, and a re-run skips it, but nothing is in place until publish.
    assert not spec.out.exists() and not spec.log.exists() and jobs.is_done(spec.staged())
    assert jobs.pending_jobs([spec], overwrite=False, what="toy") == ([], [1])
    assert jobs.current([spec]) == [spec.staged()]
    jobs.publish([spec])
    assert not jobs.staged_path(spec.out).exists() and jobs.current([spec]) == [spec]
    log = spec.log.read_text().splitlines()
    assert log[0] == "# toy" and log[-1].startswith("# Ended (code 0)")
    body = [line.split("] ", 1)[1] for line in log if "] " in line]
    assert body[1:] == [f"job 1: in -> {spec.out}", "options: --toy", "job signature sig", "progress: 2 / 2 utterances"]
    assert jobs.is_done(spec)
    assert not jobs.is_done(dataclasses.replace(spec, signature="other"))
    assert jobs.pending_jobs([spec], overwrite=False, what="toy") == ([], [1])
    assert jobs.pending_jobs([spec], overwrite=True, what="toy") == ([spec], [])
    text = spec.log.read_text()
    spec.log.write_text(text.replace("# Ended (code 0)", "# Ended (code 1)"))
    assert not jobs.is_done(spec)
    spec.log.write_text(text)
    spec.out.unlink()
    assert not jobs.is_done(spec)
    assert not jobs.is_done(dataclasses.replace(spec, log=None))  # a job without a log always runs


def test_stale_temporaries_of_the_outputs_go_before_a_job_runs(tmp_path):
    spec = toy_job(tmp_path, 1, log=False)
    mine, other = tmp_path / ".out.1.x1y2z3.tmp", tmp_path / ".out.10.x1y2z3.tmp"
    mine.write_text("half a file")  # what kill -9 leaves of an atomic write
    other.write_text("another job's, being written now")
    jobs.staged_path(spec.out).write_text("an earlier run's")
    jobs.run_jobs(run_toy_job, [spec], processes=1)
    jobs.publish([spec])
    assert not mine.exists() and other.exists() and spec.out.read_text() == "utt1 x\n"


def test_job_without_a_log_writes_its_header_into_the_drivers_log(tmp_path, monkeypatch):
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    monkeypatch.setattr(get_logger(), "level", logging.INFO)
    get_logger().addHandler(handler)
    try:
        jobs.run_jobs(run_toy_job, [toy_job(tmp_path, 1, log=False, signature="sig7")], processes=1)
    finally:
        get_logger().removeHandler(handler)
    assert records == [f"job 1: in -> {tmp_path / 'out.1'}", "options: --toy", "job signature sig7",
                       "progress: 2 / 2 utterances"]


# --- staging -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HiddenOutputJob(jobs.Job):
    folder: Path

    @property
    def outputs(self) -> tuple[Path, ...]:
        return (self.folder / "made.here",)  # not a field: the runner could not stage it


def test_staged_copy_names_and_their_inverse(tmp_path):
    spec = toy_job(tmp_path, 3)
    staged = spec.staged()
    assert (staged.out, staged.log) == (tmp_path / ".out.3.staged", tmp_path / ".3.log.staged")
    assert dataclasses.replace(staged, out=spec.out, log=spec.log) == spec
    assert [jobs.final_path(p) for p in (staged.out, staged.log, spec.out)] == [spec.out, spec.log, spec.out]
    assert jobs.final_path(tmp_path / ".staged") == tmp_path / ".staged"
    with pytest.raises(TypeError, match="cannot be staged"):
        HiddenOutputJob(tmp_path, job=1, log=None, signature="s", command="c").staged()


def test_failed_overwrite_run_leaves_the_published_outputs_and_a_rerun_resumes(tmp_path):
    old = [toy_job(tmp_path, j, value="old") for j in (1, 2)]
    assert jobs.run_jobs(run_toy_job, old, processes=1)[1] == []
    jobs.publish(old)
    # Other options (signature), job 1 finishes, job 2 fails: before staging, out.1 was "utt1 new" now.
    new = [toy_job(tmp_path, 1, value="new", signature="new"), toy_job(tmp_path, 2, signature="new", error="bad")]
    _, failures = jobs.run_jobs(run_toy_job, new, processes=1)
    assert [f.job for f in failures] == [2]
    assert [s.out.read_text() for s in old] == ["utt1 old\n", "utt2 old\n"]
    assert jobs.is_done(old[0]) and not jobs.is_done(old[1])  # job 2's log now says why it failed
    assert (tmp_path / "2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    # The fixed re-run skips job 1 (staged), runs job 2, and publishes both.
    fixed = [new[0], dataclasses.replace(new[1], error="", value="new")]
    todo, done = jobs.pending_jobs(fixed, overwrite=False, what="toy")
    assert [s.job for s in todo] == [2] and done == [1]
    jobs.run_jobs(run_toy_job, todo, processes=1)
    with jobs.publishing(fixed, [tmp_path / "merged"]):
        jobs.merge_tables([s.out for s in jobs.current(fixed)], jobs.staged_path(tmp_path / "merged"))
    assert (tmp_path / "merged").read_text() == "utt1 new\nutt2 new\n"
    assert all(jobs.is_done(s) for s in fixed) and sorted(p.name for p in tmp_path.glob(".*")) == []


def test_a_failing_merge_publishes_nothing_and_keeps_the_jobs_staged(tmp_path):
    specs = [toy_job(tmp_path, 1)]
    jobs.run_jobs(run_toy_job, specs, processes=1)
    with pytest.raises(AsrkitError), jobs.publishing(specs, [tmp_path / "merged"]):
        jobs.staged_path(tmp_path / "merged").write_text("half")
        raise AsrkitError("disk full")
    assert not (tmp_path / "merged").exists() and not jobs.staged_path(tmp_path / "merged").exists()
    assert not specs[0].out.exists() and jobs.current(specs) == [specs[0].staged()]


def test_discarded_run_keeps_the_published_outputs_and_its_logs_mark_nothing_done(tmp_path):
    old = [toy_job(tmp_path, 1, value="old")]
    jobs.run_jobs(run_toy_job, old, processes=1)
    jobs.publish(old)
    new = [toy_job(tmp_path, 1, value="new", signature="new")]
    jobs.run_jobs(run_toy_job, new, processes=1)
    jobs.discard_staged(new, "1 of 2 utterances\ngot no features")
    assert old[0].out.read_text() == "utt1 old\n" and not list(tmp_path.glob(".*"))
    assert old[0].log.read_text().splitlines()[-1] == "# not merged: 1 of 2 utterances got no features"
    assert not jobs.is_done(old[0]) and not jobs.is_done(new[0])
    assert jobs.pending_jobs(new, overwrite=False, what="toy") == (new, [])


# --- running -------------------------------------------------------------------------------------

def test_in_process_failures_are_collected_with_their_exception_and_threads_restored(tmp_path):
    import torch

    before = torch.get_num_threads()
    specs = [toy_job(tmp_path, 1, error="utt7: bad\naudio"), toy_job(tmp_path, 2, threads=1)]
    results, failures = jobs.run_jobs(run_toy_job, specs, processes=1)
    assert [f.job for f in failures] == [1] and failures[0].message == "utt7: bad audio"
    assert isinstance(failures[0].error, AudioError)
    assert results == {2: (os.getpid(), "x", 1)}  # the other job still ran, with its one thread
    assert torch.get_num_threads() == before
    assert (tmp_path / "1.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")


def test_pool_runs_jobs_in_other_processes_and_reports_failures_as_one_line(tmp_path, monkeypatch):
    sizes = spy_on_pools(monkeypatch)
    specs = [toy_job(tmp_path, 1, value="v1"), toy_job(tmp_path, 2, value="v2"),
             toy_job(tmp_path, 3, error="utt9: no such file")]
    results, failures = jobs.run_jobs(run_toy_job, specs, processes=2, progress_total=6)
    assert sizes == [3]
    assert sorted(results) == [1, 2] and {r[1] for r in results.values()} == {"v1", "v2"}
    assert os.getpid() not in {r[0] for r in results.values()}
    assert [(f.job, f.message, f.error) for f in failures] == [(3, "utt9: no such file", None)]
    parts = jobs.current(specs[:2])
    assert jobs.merge_tables([s.out for s in parts], tmp_path / "merged") == {"utt1": "v1", "utt2": "v2"}
    # The failed job's log is where the error message points; the others wait staged.
    assert specs[2].log.read_text().splitlines()[-1].startswith("# Ended (code 1)")
    assert not specs[0].log.exists() and jobs.is_done(specs[0].staged())


def test_merge_tables_sorts_and_refuses_a_key_of_two_jobs(tmp_path):
    (tmp_path / "a").write_text("u3 c\nu1 a\n")
    (tmp_path / "b").write_text("u2 b\n")
    jobs.merge_tables([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert (tmp_path / "out").read_text() == "u1 a\nu2 b\nu3 c\n"
    (tmp_path / "b").write_text("u1 again\n")
    with pytest.raises(AsrkitError, match=r"/b: utterance 'u1' is also in .*/a \(written by two jobs\)"):
        jobs.merge_tables([tmp_path / "a", tmp_path / "b"], tmp_path / "out")


def test_split_data_per_speaker_or_utterance(fixture_datadir):
    d = fixture_datadir  # 3 speakers, 6 utterances
    assert jobs.split_data(d, 1) == [d]
    assert jobs.split_data(d, 1, always_per_speaker=True) == [d / "split1" / "1"]
    assert jobs.split_data(d, 4) == [d / "split4utt" / str(j) for j in range(1, 5)]
    # make-feats with more jobs than speakers (issue 21.6: one-speaker corpora such as yesno failed,
    # and the error named a --per-utt option make-feats does not have): split per utterance.
    assert jobs.split_data(d, 4, always_per_speaker=True) == [d / "split4utt" / str(j) for j in range(1, 5)]


# --- the stages ----------------------------------------------------------------------------------

def test_dump_posteriors_reruns_after_features_are_re_extracted_in_place(fixture_datadir, tmp_path):
    """The bug: dump-posteriors' signature did not cover the archives, so re-extracted features (the
    same shapes and offsets, another --opt) silently reused the stale teacher posteriors."""
    from asrkit.data.targets import open_soft_targets
    from asrkit.distill.posteriors import dump_posteriors
    from asrkit.features.make_feats import make_feats

    data = fixture_datadir
    teacher = teacher_file(tmp_path, vocab={"de": 5, "en": 5, "fr": 5})
    make_feats(data, options=["num-mel-bins=12"], compress=True, progress=False)
    scp = (data / "feats.scp").read_text()
    first = dump_posteriors(teacher, data, tmp_path / "post")
    before = {k: np.array(v) for k, v in open_soft_targets(str(tmp_path / "post" / "post.scp")).items()}
    assert first.jobs_run == [1]
    assert dump_posteriors(teacher, data, tmp_path / "post").jobs_skipped == [1]

    time.sleep(0.02)  # a later modification time, even on a coarse clock
    again = make_feats(data, options=["num-mel-bins=12", "low-freq=300"], compress=True, progress=False)
    assert again.jobs_run == [1] and (data / "feats.scp").read_text() == scp  # in place
    rerun = dump_posteriors(teacher, data, tmp_path / "post")
    assert rerun.jobs_run == [1] and rerun.jobs_skipped == []
    after = {k: np.array(v) for k, v in open_soft_targets(str(tmp_path / "post" / "post.scp")).items()}
    assert after.keys() == before.keys()
    assert all(after[k].shape == before[k].shape for k in before)
    assert any(not np.allclose(after[k], before[k]) for k in before)


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox to compare with")
def test_make_feats_logs_and_signs_emulated_sox_speed(fixture_datadir, monkeypatch):
    from asrkit.features.make_feats import make_feats
    from asrkit.kaldi import wav

    data = fixture_datadir
    lines = (data / "wav.scp").read_text().splitlines()
    (data / "wav.scp").write_text("".join(f"{k} sox {p} -t wav - speed 0.9 |\n" for k, p in (ln.split() for ln in lines)))
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    get_logger().addHandler(handler)
    monkeypatch.setattr(wav, "_have", lambda program: program != "sox")
    monkeypatch.setattr(wav, "_warned_speed_emulated", False)
    try:
        emulated = make_feats(data, options=["num-mel-bins=12"], progress=False)
    finally:
        get_logger().removeHandler(handler)
    log = (data / "data" / "log" / "make_fbank_data.1.log").read_text()
    assert emulated.jobs_run == [1] and "code path: sox speed emulated" in log
    assert any("speed perturbation of" in r and "is emulated in-process" in r for r in records)  # the driver
    assert "sox is not installed: speed perturbation ('sox " in log  # wav.py, in the job
    # With sox installed the samples differ: the job's signature differs, so it runs again.
    monkeypatch.undo()
    with_sox = make_feats(data, options=["num-mel-bins=12"], progress=False)
    assert with_sox.jobs_run == [1] and with_sox.jobs_skipped == []
    assert "code path:" not in (data / "data" / "log" / "make_fbank_data.1.log").read_text()
