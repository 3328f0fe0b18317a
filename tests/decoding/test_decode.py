"""`asrkit decode` end to end on a tiny DNN-CTC model trained in the test on the toy task."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np
import pytest
import torch

from asrkit.decoding.decoder import DecodeResult, JobResult, decode_data_dir, run_job
from asrkit.decoding.loglikes import (
    log_priors_from_counts,
    priors_from_alignments,
    priors_from_posteriors,
    read_priors,
    write_priors,
)
from asrkit.errors import ConfigError, DataDirError, FormatError
from asrkit.jobs import file_digest, is_done
from asrkit.kaldi.textio import read_table
from asrkit.models.modelfile import load_model
from asrkit.scoring.report import score_decode_dir
from asrkit.text.tokenizer import make_lang_dir
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training
from tests.conftest import REPO
from tests.test_jobs import spy_on_pools
from tests.training.conftest import make_toy_data_dir

# Tuned to learn the toy task in ~20 s on 2 CPU cores (about 10% CER, 40% WER on its 2-3 letter words).
DNN = ["model.encoder={type: dnn, hidden_dims: [128, 128], context: 3}", "data.max_frames=600",
       "optim.lr=1e-2", "scheduler.name=warmup_constant", "scheduler.warmup_steps=10", "training.epochs=25",
       "training.device=cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model path, test data dir, work dir): a DNN-CTC model with an mtl head for en and de."""
    root = tmp_path_factory.mktemp("decode")
    train = make_toy_data_dir(root, "train", utts_per_lang=32, seed=1)
    test = make_toy_data_dir(root, "test", utts_per_lang=20, seed=5)
    lang = root / "lang"
    make_lang_dir([train], lang, token_type="char")
    conf = load_config(None, DNN)
    final = run_training(conf, train_dirs=[train], valid_dirs=[], lang_dir=str(lang), out_dir=root / "exp")
    return final, test, root


@pytest.fixture(scope="module")
def decoded_nj(trained):
    """The same beam decode with --nj 1 and --nj 2: (result nj1, result nj2, the sizes of the process
    pools they started)."""
    model, test, root = trained
    with pytest.MonkeyPatch.context() as monkeypatch:
        pools = spy_on_pools(monkeypatch)
        return (decode_data_dir(model, test, root / "decode_nj1", search="beam", beam=4),
                decode_data_dir(model, test, root / "decode_nj2", search="beam", beam=4, nj=2), pools)


def _wer_value(path) -> float:
    return float(path.read_text().split()[1])


def test_greedy_and_beam_decode_and_score_per_language(trained):
    model, test, root = trained
    greedy = decode_data_dir(model, test, root / "decode_greedy")
    beam = decode_data_dir(model, test, root / "decode_beam", search="beam", beam=8)
    keys = sorted(read_table(test / "feats.scp"))
    for result in (greedy, beam):
        text = (result.out_dir / "text").read_text()
        lines = text.splitlines()
        assert text.endswith("\n") and [ln.split(maxsplit=1)[0] for ln in lines] == keys  # C-sorted, all keys
        assert all(set(" ".join(ln.split()[1:])) <= set("abcdefghilmnopqrsuxyz ") for ln in lines)
        log = (result.out_dir / "log" / "decode.log").read_text()
        assert log.startswith("# ") and "# Ended (code 0)" in log.splitlines()[-1]
        assert "real-time factor" in log and "x real time" in log
        assert result.num_utts == len(keys) and result.rtf > 0
        # no utt2dur in the toy data: audio = frames x 10 ms
        frames = sum(int(v) for v in read_table(test / "utt2num_frames").values())
        assert result.audio_seconds == pytest.approx(frames * 0.01)
        assert (result.out_dir / "num_jobs").read_text() == "1\n"
        reports = score_decode_dir(test, result.out_dir)
        assert set(reports) == {"wer", "wer_de", "wer_en"}
        for name in reports:
            assert (result.out_dir / name).read_text().startswith("%WER ")
    wer_greedy, wer_beam = _wer_value(root / "decode_greedy" / "wer"), _wer_value(root / "decode_beam" / "wer")
    assert wer_greedy < 70.0, "the toy model should have learned the task"
    # ~60 test words: a margin of a few words for the beam (it maximises P(labels), not word accuracy)
    assert wer_beam <= wer_greedy + 10.0


def test_rerun_is_skipped_and_overwrite_redoes(trained):
    model, test, root = trained
    out = root / "decode_skip"
    decode_data_dir(model, test, out)
    stamp = (out / "text").stat().st_mtime_ns
    again = decode_data_dir(model, test, out)
    assert again.skipped and (out / "text").stat().st_mtime_ns == stamp
    other = decode_data_dir(model, test, out, search="beam", beam=2)  # other options: decoded again
    assert not other.skipped and (out / "text").stat().st_mtime_ns != stamp
    redo = decode_data_dir(model, test, out, search="beam", beam=2, overwrite=True)
    assert not redo.skipped


def test_nj2_equals_nj1_and_resumes_after_a_killed_job(trained, decoded_nj):
    model, test, root = trained
    one, two, pools = decoded_nj
    assert (root / "decode_nj2" / "text").read_text() == (root / "decode_nj1" / "text").read_text()
    assert two.jobs_run == [1, 2] and one.jobs_run == [1] and pools == [2]  # nj 2: two processes
    for job in (1, 2):
        log = (root / "decode_nj2" / "log" / f"decode.{job}.log").read_text()
        assert "real-time factor" in log and log.splitlines()[-1].startswith("# Ended (code 0)")
    assert (test / "split2" / "1" / "feats.scp").is_file()

    # A run killed after job 1: job 1's part and log exist, job 2's do not, nor the merged text.
    out = root / "decode_resume"
    specs_dir = root / "decode_nj2"
    shutil.copytree(specs_dir, out)
    for name in ("text", ".done", "jobs/text.2", "log/decode.2.log"):
        (out / name).unlink()
    (out / ".text.abc123.tmp").write_text("half a file")  # what an atomic write leaves after kill -9
    # The copied job 1 log names the other dir's files; a job is reused only when its signature matches.
    resumed = decode_data_dir(model, test, out, search="beam", beam=4, nj=2)
    assert resumed.jobs_reused == [1] and resumed.jobs_run == [2]
    assert (out / "text").read_text() == (root / "decode_nj1" / "text").read_text()
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_kill_9_midway_then_rerun_gives_identical_output(trained, decoded_nj, tmp_path):
    model, test, root = trained
    reference = decoded_nj[0].out_dir
    out = tmp_path / "decode_killed"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "asrkit", "decode", "--model", str(model), "--data", str(test), "--out-dir", str(out),
           "--search", "beam", "--beam", "4", "--nj", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "log").is_dir():
        time.sleep(0.05)
    time.sleep(0.5)  # somewhere in the middle: jobs starting, decoding or merging
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "text").read_text() == (reference / "text").read_text()


def test_language_not_in_model_is_one_line_error(trained, tmp_path, asrkit_cli):
    model, test, root = trained
    bad = tmp_path / "bad"
    shutil.copytree(test, bad)
    lines = (bad / "utt2lang").read_text().splitlines()
    lines[3] = lines[3].split()[0] + " fr"
    (bad / "utt2lang").write_text("\n".join(lines) + "\n")
    key = lines[3].split()[0]
    with pytest.raises(DataDirError, match=f"utterance '{key}' is in language 'fr'.*its languages: de, en"):
        decode_data_dir(model, bad, tmp_path / "out")
    proc = asrkit_cli("decode", "--model", model, "--data", bad, "--out-dir", tmp_path / "out2")
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("asrkit decode: error: utterance") and "'fr'" in err[-1]
    with pytest.raises(DataDirError, match="--lang xx: model .* has no language 'xx'"):
        decode_data_dir(model, test, tmp_path / "out3", lang="xx")


def test_missing_cmvn_for_a_per_speaker_cmvn_model_is_refused(trained, tmp_path):
    # Issue 21.2: such a decode gave all-empty hypotheses (WER 100%, all deletions) without a word.
    from asrkit.models.modelfile import open_data, read_model_meta

    model, test, root = trained
    meta = read_model_meta(model)
    assert meta.cmvn.per_speaker is True
    nocmvn = tmp_path / "nocmvn"
    shutil.copytree(test, nocmvn)
    (nocmvn / "cmvn.scp").unlink()
    with pytest.raises(DataDirError, match=rf"^{nocmvn}/cmvn.scp: missing, and the model was trained with "
                                           rf"per-speaker CMVN .*run `asrkit compute-cmvn {nocmvn}` first$"):
        decode_data_dir(model, nocmvn, tmp_path / "out", nj=2)
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataDirError, match="cmvn.scp: missing"):
        open_data(nocmvn, meta)  # the jobs of decode and dump-posteriors read through this


def test_references_longer_than_the_output_frames_are_counted(trained, tmp_path):
    # Issue 21.1: training counted them; decode said nothing, and their errors looked like the search's.
    model, test, root = trained
    data = tmp_path / "long"
    shutil.copytree(test, data)
    text = read_table(data / "text")
    key = sorted(text)[0]
    frames = kaldiio.load_mat(read_table(data / "feats.scp")[key]).shape[0]
    letters = "".join(sorted({c for line in text.values() for c in line if c.isalpha()}))
    text[key] = " ".join([letters * (frames // len(letters) + 2)])
    (data / "text").write_text("".join(f"{k} {v}\n" for k, v in sorted(text.items())))
    result = decode_data_dir(model, data, tmp_path / "out", nj=2)
    assert (result.unspellable.lost, result.unspellable.total) == (1, len(text))
    assert result.unspellable.first[0] == key
    log = (tmp_path / "out" / "log" / "decode.log").read_text()
    assert f"1 of {len(text)} utterances" in log and "no CTC search can output them" in log
    assert decode_data_dir(model, test, tmp_path / "plain").unspellable.lost == 0


def test_forced_language_and_missing_utt2lang(trained, tmp_path):
    model, test, root = trained
    nolang = tmp_path / "nolang"
    shutil.copytree(test, nolang)
    (nolang / "utt2lang").unlink()
    with pytest.raises(DataDirError, match="utt2lang: missing, and model .* has several languages"):
        decode_data_dir(model, nolang, tmp_path / "o1")
    result = decode_data_dir(model, nolang, tmp_path / "o2", lang="en")
    assert result.num_utts == len(read_table(test / "feats.scp"))


def test_ema_and_best_model_files_decode_the_same_way(trained, tmp_path):
    model, test, root = trained
    best = model.parent / "best.pt"
    candidates = [p for p in (best, model.parent / "ema.pt") if p.is_file()] or [model]
    for path in candidates:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        result = decode_data_dir(copy, test, tmp_path / f"decode_{path.stem}")
        assert (result.out_dir / "text").is_file()


def test_loglikes_rows_are_output_frames_and_cols_output_dim(trained, tmp_path):
    model_path, test, root = trained
    model, meta = load_model(model_path)
    counts = np.arange(1, meta.vocab_sizes["en"] + 1, dtype=np.float64)
    write_priors(tmp_path / "priors.counts", counts)
    np.testing.assert_allclose(read_priors(tmp_path / "priors.counts"), counts)
    # one language, so one prior vector fits every utterance
    en = tmp_path / "en"
    shutil.copytree(test, en)
    keep = [k for k, v in read_table(test / "utt2lang").items() if v == "en"]
    for name in ("feats.scp", "utt2num_frames", "utt2lang", "text", "utt2spk"):
        table = read_table(test / name)
        (en / name).write_text("".join(f"{k} {table[k]}\n" for k in keep))
    result = decode_data_dir(model_path, en, tmp_path / "decode_ll", output="loglikes", priors=tmp_path / "priors.counts")
    scp = tmp_path / "decode_ll" / "loglikes.scp"
    assert result.output == scp and sorted(read_table(scp)) == sorted(keep)
    log_prior = log_priors_from_counts(counts)
    feats = dict(kaldiio.load_scp(str(en / "feats.scp")))
    for key, mat in kaldiio.load_scp(str(scp)).items():
        frames = feats[key].shape[0]
        out_frames = int(model.output_lengths(torch.tensor([frames]))[0])
        assert mat.dtype == np.float32 and mat.shape == (out_frames, meta.vocab_sizes["en"])
        # adding the log prior back gives log posteriors: each row sums to one in probability
        np.testing.assert_allclose(np.exp(mat + log_prior).sum(1), 1.0, rtol=1e-4)
    assert (tmp_path / "decode_ll" / "loglikes.1.ark").is_file()


def test_prior_dimension_mismatch_is_a_clear_error(trained, tmp_path):
    model, test, root = trained
    write_priors(tmp_path / "p", np.ones(3))
    with pytest.raises(ConfigError, match="priors .*/p have dimension 3 but the model has \\d+ outputs for language"):
        decode_data_dir(model, test, tmp_path / "o", output="loglikes", priors=tmp_path / "p")


def test_priors_from_alignments_and_posteriors(trained, tmp_path):
    model, test, root = trained
    with kaldiio.WriteHelper(f"ark:{tmp_path / 'ali.ark'}") as w:
        w("u1", np.array([0, 0, 2, 1], dtype=np.int32))
        w("u2", np.array([2, 2], dtype=np.int32))
    np.testing.assert_array_equal(priors_from_alignments(str(tmp_path / "ali.ark"), 4), [2, 1, 3, 0])
    with pytest.raises(Exception, match="utterance 'u1' has label 2, outside the model's 2 outputs"):
        priors_from_alignments(f"ark:{tmp_path / 'ali.ark'}", 2)
    counts = priors_from_posteriors(model, test, lang="en")
    m, meta = load_model(model)
    frames = sum(int(v) for v in read_table(test / "utt2num_frames").values())
    assert counts.shape == (meta.vocab_sizes["en"],) and counts.sum() == pytest.approx(frames, rel=1e-4)
    lp = log_priors_from_counts(np.array([0.0, 1.0, 3.0]))
    assert lp[0] == pytest.approx(np.log(1e10), rel=1e-6) and lp[2] == pytest.approx(np.log(0.75))


def test_read_priors_formats_and_errors(tmp_path):
    (tmp_path / "a").write_text("[ 1 2\n 3 ]\n")
    (tmp_path / "b").write_text("counts [ 4 5 ]\n")
    (tmp_path / "c").write_text("[ 1 x 3 ]\n")
    (tmp_path / "d").write_text("[ 0 0 ]\n")
    kaldiio.save_mat(str(tmp_path / "e"), np.array([1.5, 2.5], dtype=np.float32))
    np.testing.assert_array_equal(read_priors(tmp_path / "a"), [1, 2, 3])
    np.testing.assert_array_equal(read_priors(tmp_path / "b"), [4, 5])
    np.testing.assert_array_equal(read_priors(tmp_path / "e"), [1.5, 2.5])
    with pytest.raises(FormatError, match=r"/c:1: 'x' is not a number"):
        read_priors(tmp_path / "c")
    with pytest.raises(FormatError, match="all counts are zero"):
        read_priors(tmp_path / "d")


def test_model_without_tokens_cannot_write_text(trained, tmp_path):
    model, test, root = trained
    obj = torch.load(model, weights_only=False)
    obj["tokens"] = None
    torch.save(obj, tmp_path / "notok.pt")
    with pytest.raises(ConfigError, match="no token sets .* use --output loglikes"):
        decode_data_dir(tmp_path / "notok.pt", test, tmp_path / "o")
    assert file_digest(tmp_path / "notok.pt") != file_digest(model)


def test_job_is_done_needs_matching_signature(trained, decoded_nj, tmp_path):
    model, test, root = trained
    out = tmp_path / "d"
    shutil.copytree(decoded_nj[1].out_dir, out)
    from asrkit.decoding.decoder import DecodeOptions, _job_spec

    beam4 = DecodeOptions(search="beam", beam=4, batch_frames=20000)
    spec = _job_spec(1, test / "split2" / "1", model, out, beam4, file_digest(model), 2, "x")
    assert is_done(spec)
    other = _job_spec(1, test / "split2" / "1", model, out, DecodeOptions(batch_frames=20000, search="greedy"),
                      file_digest(model), 2, "x")
    assert not is_done(other)
    assert run_job(other).num_utts > 0 and is_done(other)


def test_job_and_decode_results_report_speed_the_same_way(tmp_path):
    job = JobResult(3, num_utts=2, audio_seconds=4.0, decode_seconds=1.0)
    total = DecodeResult(tmp_path, tmp_path / "text", num_utts=2, audio_seconds=4.0, decode_seconds=1.0)
    assert job.job == 3 and job.rtf == total.rtf == 0.25
    assert job.describe() == total.describe() == "2 utterances, 4.0 s of audio in 1.00 s: real-time factor 0.25000 (4x real time)"
    assert DecodeResult(tmp_path, tmp_path / "text").rtf == 0.0  # nothing decoded (a skipped decode)
