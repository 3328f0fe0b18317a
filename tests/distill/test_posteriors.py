"""Tests for asrkit/distill/posteriors.py: the Posterior format by hand, frame-rate resampling, and
dumping a teacher's posteriors (format bytes, values, per-language heads, resume after a kill)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from asrkit import jobs
from asrkit.data.targets import open_soft_targets, read_post_info
from asrkit.distill import posteriors as P
from asrkit.errors import AsrkitError, ConfigError, FormatError
from asrkit.kaldi.table import load_table_scp
from tests.distill.conftest import VOCAB, teacher_file
from tests.test_jobs import spy_on_pools
from tests.training.conftest import make_toy_data_dir


def _i32(v: int) -> bytes:
    return b"\x04" + struct.pack("<i", v)


def _f32(v: float) -> bytes:
    return b"\x04" + struct.pack("<f", v)


# --- the Posterior format ------------------------------------------------------------------------

def test_posterior_archive_bytes_by_hand(tmp_path):
    ids = np.array([[3, 1], [0, 2]])
    weights = np.array([[0.75, 0.25], [0.5, 0.5]], dtype=np.float32)
    with P.PosteriorArkWriter(tmp_path / "post.ark", tmp_path / "post.scp") as w:
        w.write("utt1", ids, weights)
        w.write("utt2", np.zeros((0, 2), dtype=np.int32), np.zeros((0, 2), dtype=np.float32))
    expected = (b"utt1 \0B" + _i32(2)
                + _i32(2) + _i32(3) + _f32(0.75) + _i32(1) + _f32(0.25)
                + _i32(2) + _i32(0) + _f32(0.5) + _i32(2) + _f32(0.5)
                + b"utt2 \0B" + _i32(0))
    assert (tmp_path / "post.ark").read_bytes() == expected
    second = expected.index(b"utt2 ") + len(b"utt2 ")
    assert (tmp_path / "post.scp").read_text() == (f"utt1 {tmp_path}/post.ark:5\n"
                                                   f"utt2 {tmp_path}/post.ark:{second}\n")
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_kaldi_posterior_with_varying_entries_per_frame(tmp_path):
    # What Kaldi's ali-to-post / weight-post write: any number of entries per frame, even none,
    # and an id may repeat (PosteriorToMatrix sums them).
    body = _i32(3) + _i32(1) + _i32(4) + _f32(1.0) + _i32(0) + _i32(2) + _i32(1) + _f32(0.5) + _i32(1) + _f32(0.25)
    (tmp_path / "p.ark").write_bytes(b"a \0B" + body)
    (tmp_path / "p.scp").write_text(f"a {tmp_path}/p.ark:2\n")
    [(key, post)] = list(P.iter_posterior_ark(tmp_path / "p.ark"))
    assert key == "a" and [f[0].tolist() for f in post] == [[4], [], [1, 1]]
    table = P.PosteriorTable(tmp_path / "p.scp", 5)
    np.testing.assert_array_equal(table["a"], [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0.75, 0, 0, 0]])
    with pytest.raises(AsrkitError, match="utterance 'a': frame 0 has class id 4 outside the output dimension 3"):
        P.PosteriorTable(tmp_path / "p.scp", 3)["a"]


def test_truncated_posterior_names_key_and_scp_line(tmp_path):
    data = P.posterior_bytes(np.array([[1, 2]] * 3), np.full((3, 2), 0.5))
    (tmp_path / "p.ark").write_bytes(b"x \0Bok" + b"y \0B" + data[:-3])
    (tmp_path / "p.scp").write_text(f"y {tmp_path}/p.ark:8\n")
    with pytest.raises(FormatError, match=r"p.scp:1: key 'y': bad Posterior: data ends early"):
        P.PosteriorTable(tmp_path / "p.scp", 4)["y"]
    with pytest.raises(FormatError, match=r"p.ark: key 'x': bad Posterior"):
        list(P.iter_posterior_ark(tmp_path / "p.ark"))


def test_posterior_tables_share_the_kaldi_table_protocol(tmp_path, monkeypatch):
    # The ark/scp writer and the table readers are asrkit.kaldi.writer's and .table's: a relative
    # archive path is written absolute (one scp path policy), archives read through pipes, and
    # scp entries in plain files, as for every other table.
    monkeypatch.chdir(tmp_path)
    ids, weights = np.array([[2, 0]]), np.array([[0.75, 0.25]], dtype=np.float32)
    with P.PosteriorArkWriter("post.ark", "post.scp") as w:
        w.write("u", ids, weights)
        with pytest.raises(AsrkitError, match="post.ark: duplicate key 'u'"):
            w.write("u", ids, weights)
    assert (tmp_path / "post.scp").read_text() == f"u {tmp_path}/post.ark:2\n"
    [(key, post)] = list(P.iter_posterior_ark("cat post.ark |"))
    assert key == "u" and post[0][0].tolist() == [2, 0] and post[0][1].tolist() == [0.75, 0.25]
    (tmp_path / "whole.ark").write_bytes((tmp_path / "post.ark").read_bytes()[2:])  # `\0B` and the object
    (tmp_path / "whole.scp").write_text(f"u {tmp_path}/whole.ark\n")
    np.testing.assert_array_equal(P.PosteriorTable(tmp_path / "whole.scp", 3)["u"], [[0.25, 0, 0.75]])


# --- frame rates ---------------------------------------------------------------------------------

def test_resample_average_pick_and_repeat():
    post = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    avg = P.resample_posteriors(post, 1, 2, 3, "average")
    torch.testing.assert_close(avg, torch.tensor([[0.5, 0.5], [0.75, 0.25], [0.0, 1.0]]))
    torch.testing.assert_close(P.resample_posteriors(post, 1, 2, 3, "pick"), post[[0, 2, 4]])
    up = P.resample_posteriors(post[:2], 2, 1, 4)
    torch.testing.assert_close(up, post[[0, 0, 1, 1]])
    # A conformer-like teacher one frame short at the edge: the last row is repeated.
    torch.testing.assert_close(P.resample_posteriors(post[:2], 4, 4, 3), post[[0, 1, 1]])
    torch.testing.assert_close(P.resample_posteriors(post, 1, 1, 4), post[:4])


def test_resample_errors_name_the_utterance():
    post = torch.full((10, 3), 1 / 3)
    with pytest.raises(AsrkitError, match="utterance 'spk1-001': the teacher gives 5 frames at the student's rate "
                                          "but the student outputs 9 frames"):
        P.resample_posteriors(post, 1, 2, 9, key="spk1-001")
    with pytest.raises(ConfigError, match="one must be a multiple of the other"):
        P.resample_posteriors(post, 2, 3, 3)
    with pytest.raises(ConfigError, match="unknown resampling method 'mean'"):
        P.resample_posteriors(post, 1, 2, 5, "mean")


def test_student_frame_rate_from_yaml_and_model_file(tmp_path):
    conf = tmp_path / "student.yaml"
    conf.write_text("model:\n  encoder: {type: dnn, hidden_dims: [8], context: 1, subsample: 3}\n"
                    "objective: {type: kl}\n")  # no targets: the dump does not need them
    sub, lengths = P.student_frame_rate(conf, 12)
    assert sub == 3 and lengths(torch.tensor([9, 10, 1])).tolist() == [3, 4, 1]
    (tmp_path / "conformer.yaml").write_text("model:\n  encoder: {type: conformer, num_layers: 1, d_model: 16, "
                                             "num_heads: 2, ffn_dim: 16}\n")
    sub, lengths = P.student_frame_rate(tmp_path / "conformer.yaml", 12)
    assert sub == 4 and lengths(torch.tensor([100, 7, 6])).tolist() == [24, 1, 0]
    model_file = teacher_file(tmp_path, {"type": "dnn", "hidden_dims": [8], "context": 0, "subsample": 2})
    assert P.student_frame_rate(model_file, 12)[0] == 2
    (tmp_path / "bad.yaml").write_text("model:\n  encoder: {type: dnn, layers: 3}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: model.encoder: unknown option\(s\) 'layers'"):
        P.student_frame_rate(tmp_path / "bad.yaml", 12)


# --- dumping -------------------------------------------------------------------------------------

@pytest.fixture
def setup(tmp_path):
    data = make_toy_data_dir(tmp_path, "data", utts_per_lang=6, seed=3)
    student = tmp_path / "student.yaml"
    student.write_text("model:\n  encoder: {type: dnn, hidden_dims: [16], context: 2, subsample: 2}\n")
    return data, teacher_file(tmp_path), student


def _expected(teacher, data, temperature, sub=2):
    """Teacher posteriors computed directly, utterance by utterance, averaged to the student's rate."""
    from asrkit.data.dataset import AsrDataset
    from asrkit.models.modelfile import load_model

    model, _ = load_model(teacher)
    ds = AsrDataset([data], target_kinds=())
    out = {}
    for u in ds.utts:
        feats = torch.from_numpy(ds.load_feats(u.key))[None]
        logits, _ = model(feats, torch.tensor([feats.shape[1]]), ds.utt_lang[u.key])
        probs = (logits[0] / temperature).softmax(-1)
        n = -(-probs.shape[0] // sub)
        out[u.key] = np.stack([probs[i * sub:(i + 1) * sub].mean(0).detach().numpy() for i in range(n)])
    return out


def test_dump_matrix_values_per_language_heads_and_kaldi_bytes(tmp_path, setup, monkeypatch):
    data, teacher, student = setup
    pools = spy_on_pools(monkeypatch)
    result = P.dump_posteriors(teacher, data, tmp_path / "post", temperature=2.0, frame_rate_of=student, nj=2)
    assert result.jobs_run == [1, 2] and result.num_utts == 12 and pools == [2]  # two processes
    expected = _expected(teacher, data, 2.0)
    table = open_soft_targets(str(tmp_path / "post" / "post.scp"))
    assert sorted(table) == sorted(expected)
    lang = dict(line.split() for line in (data / "utt2lang").read_text().splitlines())
    for key, want in expected.items():
        got = table[key]
        assert got.shape == (want.shape[0], VOCAB[lang[key]])  # the utterance's own head
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)
    frames = dict(line.split() for line in (tmp_path / "post" / "utt2num_frames").read_text().splitlines())
    assert {k: int(v) for k, v in frames.items()} == {k: v.shape[0] for k, v in expected.items()}
    info = read_post_info(tmp_path / "post")
    assert info["output_dims"] == VOCAB and info["frame_subsampling"] == 2 and info["temperature"] == 2.0
    # Kaldi's binary float matrix: `<key> \0BFM \4<rows>\4<cols>` then row-major float32; the scp offset
    # points at the \0B (what copy-matrix / matrix-dim read).
    first_line = (tmp_path / "post" / "post.1.scp").read_text().splitlines()[0]
    key, rx = first_line.split()
    ark, offset = rx.rsplit(":", 1)
    raw = open(ark, "rb").read()
    offset = int(offset)
    want = expected[key]
    assert raw[offset - len(key) - 1:offset] == key.encode() + b" "
    assert raw[offset:offset + 15] == b"\0BFM " + _i32(want.shape[0]) + _i32(want.shape[1])
    values = np.frombuffer(raw[offset + 15:offset + 15 + want.size * 4], dtype="<f4").reshape(want.shape)
    np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-6)


def test_dump_topk_writes_kaldi_posteriors(tmp_path, setup):
    data, teacher, student = setup
    P.dump_posteriors(teacher, data, tmp_path / "dense", frame_rate_of=student)
    P.dump_posteriors(teacher, data, tmp_path / "top", frame_rate_of=student, topk=2)
    dense = load_table_scp(tmp_path / "dense" / "post.scp")
    sparse = open_soft_targets(str(tmp_path / "top" / "post.scp"))
    assert isinstance(sparse, P.PosteriorTable)
    for key in dense:
        ids, weights = P.dense_to_topk(np.asarray(dense[key]), 2)
        want = np.zeros_like(np.asarray(dense[key]))
        np.put_along_axis(want, ids, weights, axis=1)
        np.testing.assert_allclose(sparse[key], want, rtol=1e-5, atol=1e-6)
    key, rx = (tmp_path / "top" / "post.scp").read_text().splitlines()[0].split()
    ark, offset = rx.rsplit(":", 1)
    raw = open(ark, "rb").read()[int(offset):]
    post = sparse.posterior(key)
    head = b"\0B" + _i32(len(post)) + _i32(2) + _i32(int(post[0][0][0])) + _f32(float(post[0][1][0]))
    assert raw[:len(head)] == head
    assert len(post) == np.asarray(dense[key]).shape[0] and all(len(ids) == 2 for ids, _ in post)
    assert read_post_info(tmp_path / "top")["format"] == "posterior"


def test_compressed_dump_is_kaldi_cm2(tmp_path, setup):
    data, teacher, _ = setup
    P.dump_posteriors(teacher, data, tmp_path / "c", compress=True)
    P.dump_posteriors(teacher, data, tmp_path / "f")
    key, rx = (tmp_path / "c" / "post.scp").read_text().splitlines()[0].split()
    ark, offset = rx.rsplit(":", 1)
    assert open(ark, "rb").read()[int(offset):int(offset) + 6] == b"\0BCM2 "
    exact, packed = load_table_scp(tmp_path / "f" / "post.scp"), load_table_scp(tmp_path / "c" / "post.scp")
    for k in exact:
        np.testing.assert_allclose(packed[k], exact[k], atol=2e-5)  # 1/65535 of the [min, max] range


@pytest.mark.slow  # three pools of three worker processes (a torch import each)
def test_rerun_skips_finished_jobs_and_overwrite_redoes_them(tmp_path, setup):
    data, teacher, student = setup
    first = P.dump_posteriors(teacher, data, tmp_path / "post", frame_rate_of=student, nj=3)
    arks = {j: (tmp_path / "post" / f"post.{j}.ark").stat().st_mtime_ns for j in (1, 2, 3)}
    again = P.dump_posteriors(teacher, data, tmp_path / "post", frame_rate_of=student, nj=3)
    assert first.jobs_run == [1, 2, 3] and again.jobs_run == [] and again.jobs_skipped == [1, 2, 3]
    assert {j: (tmp_path / "post" / f"post.{j}.ark").stat().st_mtime_ns for j in (1, 2, 3)} == arks
    # Other options are another output: every job runs again.
    other = P.dump_posteriors(teacher, data, tmp_path / "post", frame_rate_of=student, nj=3, temperature=3.0)
    assert other.jobs_run == [1, 2, 3]
    assert P.dump_posteriors(teacher, data, tmp_path / "post", frame_rate_of=student, nj=3, temperature=3.0,
                             overwrite=True).jobs_run == [1, 2, 3]
    log = (tmp_path / "post" / "log" / "dump_posteriors.2.log").read_text().splitlines()
    assert log[0].startswith("# ") and log[-1].startswith("# Ended (code 0)")


def test_single_job_then_merge(tmp_path, setup):
    data, teacher, _ = setup
    part = P.dump_posteriors(teacher, data, tmp_path / "post", nj=2, job=2)
    assert part.post_scp is None and part.jobs_run == [2] and not (tmp_path / "post" / "post.scp").exists()
    merged = P.dump_posteriors(teacher, data, tmp_path / "post", nj=2)
    assert merged.jobs_run == [1] and merged.jobs_skipped == [2] and merged.num_utts == 12


def _scp_contents(folder):
    lines = (folder / "post.scp").read_text().replace(str(folder.resolve()), "DIR")
    table = load_table_scp(folder / "post.scp")
    return lines, {k: np.asarray(table[k]) for k in table}


def test_interrupted_run_resumes_to_identical_output(tmp_path, setup, monkeypatch):
    data, teacher, student = setup
    straight = tmp_path / "straight"
    small = {"frame_rate_of": student, "nj": 2, "max_frames": 60}  # several batches per job
    P.dump_posteriors(teacher, data, straight, **small)
    resumed = tmp_path / "resumed"
    P.dump_posteriors(teacher, data, resumed, job=1, **small)
    batches = []
    real = P._Teacher.posteriors

    def dies_on_second_batch(self, batch):
        batches.append(batch.keys)
        if len(batches) == 2:  # after one batch was written to the job's archive
            raise KeyboardInterrupt  # what Ctrl-C does mid-job
        return real(self, batch)

    monkeypatch.setattr(P._Teacher, "posteriors", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        P.dump_posteriors(teacher, data, resumed, job=2, **small)
    # Job 1 waits under its staged names (asrkit.jobs) until a run without --job merges.
    assert len(batches) == 2 and jobs.staged_path(resumed / "post.1.scp").exists()
    assert not (resumed / "post.1.scp").exists() and not (resumed / "post.2.ark").exists()
    assert not (resumed / "post.scp").exists()
    assert (resumed / "log" / "dump_posteriors.2.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    (resumed / ".post.2.ark.abc123.tmp").write_bytes(b"half an archive")  # what SIGKILL leaves behind
    monkeypatch.undo()
    result = P.dump_posteriors(teacher, data, resumed, **small)
    assert result.jobs_skipped == [1] and result.jobs_run == [2]
    assert not list(resumed.glob(".*.tmp"))
    (want_lines, want), (got_lines, got) = _scp_contents(straight), _scp_contents(resumed)
    assert got_lines == want_lines and got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.slow
def test_killed_cli_run_then_rerun_gives_identical_post_scp(tmp_path, setup, asrkit_cli):
    """A real SIGKILL of `asrkit dump-posteriors` once it has started its first job, then a re-run."""
    from tests.conftest import REPO

    data, teacher, student = setup
    args = ["dump-posteriors", "--model", teacher, "--data", data, "--frame-rate-of", student, "--nj", "3"]
    P.dump_posteriors(teacher, data, tmp_path / "straight", frame_rate_of=student, nj=3)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "asrkit", *map(str, args), "--out-dir", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    started = jobs.staged_path(out / "log" / "dump_posteriors.1.log")  # a job's log is staged while it runs
    while not started.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (out / "post.scp").exists()
    done = asrkit_cli(*args, "--out-dir", out, check=True)
    assert done.stdout.startswith(f"{out}/post.scp: 12 utterances") and not list(out.rglob(".*"))
    (want_lines, want), (got_lines, got) = _scp_contents(tmp_path / "straight"), _scp_contents(out)
    assert got_lines == want_lines
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_cli_errors_are_one_line(tmp_path, setup, asrkit_cli):
    data, teacher, _ = setup
    (tmp_path / "odd.yaml").write_text("model:\n  encoder: {type: dnn, hidden_dims: [8], subsample: 3}\n")
    teacher2 = teacher_file(tmp_path, {"type": "lstm", "hidden_dim": 8, "num_layers": 1, "subsample": 2},
                             name="t2.pt")
    proc = asrkit_cli("dump-posteriors", "--model", teacher2, "--data", data, "--out-dir", tmp_path / "o",
                      "--frame-rate-of", tmp_path / "odd.yaml")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "asrkit dump-posteriors: error: the teacher outputs a frame per 2 input frames and the student per 3; "
        "one must be a multiple of the other to resample posteriors")


def test_language_without_teacher_head_is_an_error(tmp_path):
    data = make_toy_data_dir(tmp_path, "data", langs=("en", "fr"), utts_per_lang=2)
    teacher = teacher_file(tmp_path)
    with pytest.raises(AsrkitError, match=r"job 1 of 1 failed, log is in .*dump_posteriors.1.log: .*utt2lang: "
                                          r"language 'fr' \(utterance 'frspk0-000'\) has no output layer in the "
                                          r"teacher \(languages: de, en\)"):
        P.dump_posteriors(teacher, data, tmp_path / "post")


@pytest.mark.slow  # six worker processes (a torch import each)
def test_more_jobs_than_speakers_split_per_utterance(tmp_path, setup):
    data, teacher, student = setup  # 4 speakers, 12 utterances
    result = P.dump_posteriors(teacher, data, tmp_path / "post", frame_rate_of=student, nj=6)
    assert result.jobs_run == [1, 2, 3, 4, 5, 6] and result.num_utts == 12
    assert (data / "split6utt" / "6" / "utt2spk").is_file() and not (data / "split6").exists()
    table = open_soft_targets(str(tmp_path / "post" / "post.scp"))
    for key, want in _expected(teacher, data, 1.0).items():
        np.testing.assert_allclose(table[key], want, rtol=1e-5, atol=1e-6)
