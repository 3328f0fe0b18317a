"""make-feats end to end on a copy of the fixture data dir: outputs, Kaldi numerics, resume, errors."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from asrkit.errors import AsrkitError, FormatError
from asrkit.features.make_feats import make_feats
from asrkit.jobs import is_done
from tests.features.conftest import FIXTURES, load_ark


def read_feats(data_dir: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(data_dir / "feats.scp")).items()}


@pytest.mark.slow  # spawns worker processes (a torch import each)
def test_nj2_matches_kaldi_and_resumes(fixture_datadir):
    data = fixture_datadir
    result = make_feats(data, options=["num-mel-bins=80"], nj=2, progress=False)
    feat_dir = (data / "data").resolve()
    assert result.feat_dir == feat_dir and result.jobs_run == [1, 2] and result.jobs_skipped == []
    for job in (1, 2):
        assert (feat_dir / f"raw_fbank_data.{job}.ark").is_file()
        assert (feat_dir / f"raw_fbank_data.{job}.scp").is_file()
        log = (feat_dir / "log" / f"make_fbank_data.{job}.log").read_text().splitlines()
        assert log[0].startswith("# ") and log[1].startswith("# Started at")
        assert log[-1].startswith("# Ended (code 0)") and log[-2].startswith("# Accounting: time=")
        assert any("progress: " in line for line in log)
        assert any("--num-mel-bins=80" in line for line in log)
    # feats.scp: C-sorted, absolute ark paths, every utterance; features equal Kaldi's.
    scp_lines = (data / "feats.scp").read_text().splitlines()
    keys = [ln.split()[0] for ln in scp_lines]
    assert keys == sorted(keys) == sorted(load_ark("fbank80.ark"))
    assert all(ln.split()[1].startswith(str(feat_dir) + "/raw_fbank_data.") for ln in scp_lines)
    golden = load_ark("fbank80.ark")
    feats = read_feats(data)
    for utt, ref in golden.items():
        assert feats[utt].shape == ref.shape and feats[utt].dtype == np.float32
        diff = np.abs(feats[utt] - ref)
        assert diff.mean() <= 1e-4 and diff.max() <= 0.05
    # Kaldi's `ark,t` output ends each line with a space; ours does not.
    assert (data / "utt2num_frames").read_text() == "".join(
        f"{ln.strip()}\n" for ln in (FIXTURES / "utt2num_frames").read_text().splitlines())
    assert "--num-mel-bins=80\n" in (data / "conf" / "fbank.conf").read_text()
    assert result.num_utts == 6 and result.num_frames == sum(m.shape[0] for m in golden.values())

    # Re-run: both jobs skipped, outputs unchanged.
    before = {p: p.stat().st_mtime_ns for p in feat_dir.glob("raw_*")}
    again = make_feats(data, options=["num-mel-bins=80"], nj=2, progress=False)
    assert again.jobs_run == [] and again.jobs_skipped == [1, 2]
    assert {p: p.stat().st_mtime_ns for p in feat_dir.glob("raw_*")} == before
    # Different options: the jobs are redone.
    changed = make_feats(data, options=["num-mel-bins=40"], nj=2, progress=False)
    assert changed.jobs_run == [1, 2]
    assert next(iter(read_feats(data).values())).shape[1] == 40


@pytest.mark.slow  # spawns worker processes (a torch import each)
def test_more_jobs_than_speakers_splits_per_utterance(fixture_datadir):
    # Issue 21.6: --nj above the number of speakers (one-speaker corpora such as yesno) failed with a
    # hint naming a --per-utt option make-feats does not have. Features do not depend on the speaker.
    data = fixture_datadir  # 3 speakers, 6 utterances
    result = make_feats(data, options=["num-mel-bins=80"], nj=4, progress=False)
    assert result.jobs_run == [1, 2, 3, 4] and result.num_utts == 6
    assert (data / "split4utt").is_dir() and not (data / "split4").exists()
    feats, golden = read_feats(data), load_ark("fbank80.ark")
    assert sorted(feats) == sorted(golden)
    for utt, ref in golden.items():
        assert np.abs(feats[utt] - ref).max() <= 0.05


@pytest.mark.slow  # spawns worker processes (a torch import each)
def test_failed_job_then_rerun_gives_identical_outputs(fixture_datadir, tmp_path):
    data, feat_dir = fixture_datadir, tmp_path / "fbank"
    make_feats(data, nj=2, feat_dir=feat_dir, progress=False)
    expected_scp = (data / "feats.scp").read_text()
    expected_arks = {p.name: p.read_bytes() for p in feat_dir.glob("raw_*.ark")}

    wav_scp = data / "wav.scp"
    good = wav_scp.read_text()
    # The last speaker's audio is unreadable: its job fails (as a killed job would leave it), the
    # other job finishes.
    wav_scp.write_text(good.replace(str(FIXTURES / "wav" / "spkC-fr-002.wav"), str(tmp_path / "missing.wav")))
    with pytest.raises(AsrkitError, match=r"1 / 2 jobs failed, log is in .*make_fbank_data\.2\.log: .*spkC-fr-002"):
        make_feats(data, nj=2, feat_dir=feat_dir, overwrite=True, progress=False)
    log2 = (feat_dir / "log" / "make_fbank_data.2.log").read_text().splitlines()
    assert log2[-1].startswith("# Ended (code 1)")
    assert not list(feat_dir.glob(".*.tmp"))  # the failed job left no temporary files
    # Atomic outputs: the failed job's old ark is untouched, not half rewritten.
    assert (feat_dir / "raw_fbank_data.2.ark").read_bytes() == expected_arks["raw_fbank_data.2.ark"]

    wav_scp.write_text(good)
    result = make_feats(data, nj=2, feat_dir=feat_dir, progress=False)
    assert result.jobs_skipped == [1] and result.jobs_run == [2]
    assert (data / "feats.scp").read_text() == expected_scp
    assert {p.name: p.read_bytes() for p in feat_dir.glob("raw_*.ark")} == expected_arks


def test_mfcc_conf_and_compress(fixture_datadir, tmp_path):
    conf = tmp_path / "mfcc.conf"
    conf.write_text("# MFCC as compute-mfcc-feats defaults\n--dither=0\n")
    make_feats(fixture_datadir, feat_type="mfcc", conf=conf, compress=True, progress=False)
    ark = next((fixture_datadir / "data").glob("raw_mfcc_data.1.ark"))
    assert b"\0BCM " in ark.read_bytes()
    golden = load_ark("mfcc13.ark")
    feats = read_feats(fixture_datadir)
    for utt, ref in golden.items():
        assert feats[utt].shape == ref.shape
        # One-byte compression quantises each column to about 1/255 of its range.
        assert np.abs(feats[utt] - ref).max() <= (ref.max(0) - ref.min(0)).max() / 100


def test_per_utterance_path_equals_batched(fixture_datadir, tmp_path):
    make_feats(fixture_datadir, batch_seconds=0, feat_dir=tmp_path / "a", progress=False)
    per_utt = read_feats(fixture_datadir)
    make_feats(fixture_datadir, feat_dir=tmp_path / "b", progress=False)
    batched = read_feats(fixture_datadir)
    for utt in per_utt:
        assert np.abs(per_utt[utt] - batched[utt]).mean() <= 1e-5


def test_sample_rate_mismatch_names_utterance(fixture_datadir):
    with pytest.raises(AsrkitError, match="spkA-en-001: sample rate 16000 Hz does not match the feature "
                                          "config's --sample-frequency=8000"):
        make_feats(fixture_datadir, options=["sample-frequency=8000"], progress=False)


def test_segments_are_honoured(fixture_datadir):
    data = fixture_datadir
    (data / "segments").write_text("spkA-en-001 spkA-en-001 0.5 1.5\nspkA-en-002 spkA-en-002 0 1\n"
                                   "spkB-de-001 spkB-de-001 0 1\nspkB-de-002 spkB-de-002 0 1\n"
                                   "spkC-fr-001 spkC-fr-001 0 1\nspkC-fr-002 spkC-fr-002 0.25 -1\n")
    make_feats(data, options=["num-mel-bins=80"], progress=False)
    feats = read_feats(data)
    assert feats["spkA-en-001"].shape == (98, 80)  # 1 s = 16000 samples -> 98 frames
    golden = load_ark("fbank80.ark")["spkA-en-001"]
    # Frame t of the segment starting at 0.5 s is frame 50 + t of the whole file.
    np.testing.assert_allclose(feats["spkA-en-001"], golden[50:148], atol=0.05)
    # An end time of -1 means the end of the recording (Kaldi's extract-segments).
    num_samples = sf.info(str(FIXTURES / "wav" / "spkC-fr-002.wav")).frames - 4000
    assert feats["spkC-fr-002"].shape == (1 + (num_samples - 400) // 160, 80)


def test_bad_conf_names_file_and_line(fixture_datadir, tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text("--num-mel-bins=80\n--sample-rate=16000\n")
    with pytest.raises(FormatError, match=f"^{conf}:2: unknown option --sample-rate for compute-fbank-feats"):
        make_feats(fixture_datadir, conf=conf, progress=False)


@pytest.mark.slow  # spawns worker processes (a torch import each)
def test_cli_make_feats_and_compute_cmvn(fixture_datadir, asrkit_cli, tmp_path):
    proc = asrkit_cli("make-feats", "--opt", "num-mel-bins=80", "--nj", "2", str(fixture_datadir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{fixture_datadir}/feats.scp: 6 utterances, 1348 frames"
    proc = asrkit_cli("compute-cmvn", str(fixture_datadir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{fixture_datadir}/cmvn.scp: 3 speakers, 1348 frames")
    stats = dict(kaldiio.load_scp(str(fixture_datadir / "cmvn.scp")))
    golden = load_ark("cmvn_spk.ark")
    for spk in golden:
        np.testing.assert_allclose(stats[spk], golden[spk], rtol=1e-4)
    bad = asrkit_cli("make-feats", "--opt", "num-mel-bin=80", str(fixture_datadir))
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        "asrkit make-feats: error: unknown option --num-mel-bin for compute-fbank-feats")


def test_job_is_done_requires_outputs_success_and_same_signature(fixture_datadir):
    import dataclasses

    from asrkit.features.kaldi_feats import load_feature_options
    from asrkit.features.make_feats import JobSpec, job_signature

    feat_dir = (fixture_datadir / "data").resolve()
    make_feats(fixture_datadir, progress=False)
    opts = load_feature_options("fbank")
    split = fixture_datadir / "split1" / "1"
    spec = JobSpec(split, opts, "cpu", False, 8.0, job=1, ark=feat_dir / "raw_fbank_data.1.ark",
                   scp=feat_dir / "raw_fbank_data.1.scp", utt2num_frames=feat_dir / "log" / "utt2num_frames_fbank_data.1",
                   log=feat_dir / "log" / "make_fbank_data.1.log", signature=job_signature(split, opts, False), command="")
    assert is_done(spec)
    assert not is_done(dataclasses.replace(spec, signature=job_signature(split, opts, True)))
    log = spec.log.read_text()
    spec.log.write_text(log.replace("# Ended (code 0)", "# Ended (code 1)"))
    assert not is_done(spec)
    spec.log.write_text(log)
    spec.utt2num_frames.unlink()
    assert not is_done(spec)


def test_mel_bins_too_fine_for_the_sample_rate_are_logged(fixture_datadir, caplog):
    # Issue 21.4: 80 mel bins at 8 kHz give channels that weigh one and the same FFT bin; make-feats
    # said nothing. (The fixture audio is 16 kHz, so the job itself then fails on the rate.)
    import logging

    with caplog.at_level(logging.WARNING, logger="asrkit"):
        logging.getLogger("asrkit").addHandler(caplog.handler)
        try:
            with pytest.raises(AsrkitError):
                make_feats(fixture_datadir, options=["sample-frequency=8000", "num-mel-bins=80"], progress=False)
        finally:
            logging.getLogger("asrkit").removeHandler(caplog.handler)
    warnings = sorted({r.getMessage() for r in caplog.records if "too fine" in r.getMessage()})
    assert len(warnings) == 1 and "--num-mel-bins=80 is too fine for 8000 Hz audio" in warnings[0]
