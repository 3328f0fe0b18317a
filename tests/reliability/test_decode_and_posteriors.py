"""`asrkit decode` and `asrkit dump-posteriors` on broken data, foreign model files, an unwritable or full
output folder: one error line naming the file:line or utterance, and no text / post.scp written."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch

from asrkit.features.cmvn import compute_cmvn
from tests.reliability.conftest import (
    assert_no_partial_output,
    assert_one_line_error,
    copy_dir,
    edit_line,
    file_size_limit,
    run_cli,
    run_cli_subprocess,
    snapshot,
)
from tests.reliability.test_feature_tables import BAD_UTT, FEATURE_CASES


def _wider_features(data):
    """Features of dimension 13 for a model trained on 12 (another feature config), with their own
    per-speaker CMVN stats: the model was trained with per-speaker CMVN and refuses data without them."""
    feats = {k: np.array(v) for k, v in kaldiio.load_scp(str(data / "feats.scp")).items()}
    with kaldiio.WriteHelper(f"ark,scp:{data / 'feats.ark'},{data / 'feats.scp'}") as w:
        for k in sorted(feats):
            w(k, np.concatenate([feats[k], feats[k][:, :1]], axis=1))
    compute_cmvn(data, feat_dir=data)


DATA_CASES = {
    **FEATURE_CASES,
    "missing-feats.scp": (lambda d: (d / "feats.scp").unlink(), r"data/feats\.scp: no features"),
    "feature-dim-not-the-models": (_wider_features, r"utterance '[^']+': features of shape \(\d+, 13\) do not fit "
                                                    r"the model, which expects dimension 12"),
}
LANG_MESSAGES = {
    "decode": rf"utterance '{BAD_UTT}' is in language 'fr' \(.*data/utt2lang\), which model .*final\.pt does not "
              r"have \(its languages: de, en\)",
    "dump-posteriors": rf"data/utt2lang: language 'fr' \(utterance '{BAD_UTT}'\) has no output layer in the teacher "
                       r"\(languages: de, en\)",
}
OUTPUT = {"decode": "text", "dump-posteriors": "post.scp"}


def _run(command, model, data, out, *extra):
    return run_cli(command, "--model", model, "--data", data, "--out-dir", out, *extra)


@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
@pytest.mark.parametrize("case", list(DATA_CASES))
def test_broken_data(command, case, model, feats_dir, tmp_path):
    breaker, message = DATA_CASES[case]
    data = copy_dir(feats_dir, tmp_path / "data")
    breaker(data)
    out = tmp_path / "out"
    assert_one_line_error(_run(command, model, data, out), command, message)
    assert not (out / OUTPUT[command]).exists()
    assert_no_partial_output(out, {}, ignore=("log/", "jobs/log", "num_jobs"))


@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
def test_language_not_in_the_model(command, model, feats_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    edit_line(data / "utt2lang", 4, f"{BAD_UTT} fr")
    out = tmp_path / "out"
    assert_one_line_error(_run(command, model, data, out), command, LANG_MESSAGES[command])
    assert not (out / OUTPUT[command]).exists()


def _not_a_model(path):
    path.write_bytes(b"garbage\n")
    return r"bad\.pt: not a readable model file"


def _foreign_torch_file(path):
    torch.save({"weights": torch.zeros(3)}, path)
    return r"bad\.pt: not an asrkit model file"


def _truncated_model(path, model):
    b = model.read_bytes()
    path.write_bytes(b[: len(b) // 2])
    return r"bad\.pt: not a readable model file"


@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
@pytest.mark.parametrize("case", ["missing", "not-a-model", "foreign-torch-file", "truncated"])
def test_bad_model_file(command, case, model, feats_dir, tmp_path):
    bad = tmp_path / "bad.pt"
    message = {"missing": lambda: r"bad\.pt: no such model file", "not-a-model": lambda: _not_a_model(bad),
               "foreign-torch-file": lambda: _foreign_torch_file(bad),
               "truncated": lambda: _truncated_model(bad, model)}[case]()
    out = tmp_path / "out"
    assert_one_line_error(_run(command, bad, feats_dir, out), command, message)
    assert not (out / OUTPUT[command]).exists()


@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
def test_unwritable_out_dir(command, model, feats_dir, tmp_path):
    (tmp_path / "a_file").write_text("")
    res = _run(command, model, feats_dir, tmp_path / "a_file" / "out")
    assert_one_line_error(res, command, r"a_file/out.*: (Not a directory|File exists)")


@pytest.mark.parametrize("command, extra, ark", [("decode", ("--output", "loglikes"), r"loglikes\.1\.ark"),
                                                 ("dump-posteriors", (), r"post\.1\.ark")])
def test_disk_full_names_the_ark(command, extra, ark, model, feats_dir, tmp_path):
    out = tmp_path / "out"
    with file_size_limit(6000):  # the logs fit, the archive (12 utterances x ~20 frames x 11 floats) does not
        res = _run(command, model, feats_dir, out, *extra)
    assert_one_line_error(res, command, rf"out/{ark}'?: cannot write: File too large|cannot write: File too large: "
                                        rf"'.*out/{ark}'")
    assert_no_partial_output(out, {}, ignore=("log/", "jobs/log", "num_jobs"))


@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
def test_failed_rerun_keeps_the_old_output(command, model, feats_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    out = tmp_path / "out"
    assert _run(command, model, data, out).returncode == 0
    before, old = snapshot(out), (out / OUTPUT[command]).read_bytes()
    FEATURE_CASES["nan-features"][0](data)
    res = _run(command, model, data, out, "--overwrite")
    assert_one_line_error(res, command, rf"utterance '{BAD_UTT}': features contain NaN or Inf")
    assert_no_partial_output(out, before, ignore=("log/", "jobs/log", ".done"))
    assert (out / OUTPUT[command]).read_bytes() == old


def test_real_process_gives_the_same_one_line_error(model, feats_dir, tmp_path):
    """The in-process runs above go through the same handler as `python -m asrkit`; check one for real."""
    data = copy_dir(feats_dir, tmp_path / "data")
    FEATURE_CASES["nan-features"][0](data)
    res = run_cli_subprocess("decode", "--model", model, "--data", data, "--out-dir", tmp_path / "out")
    assert res.returncode == 1
    assert_one_line_error(res, "decode", rf"^asrkit decode: error: utterance '{BAD_UTT}': features contain NaN or Inf$")
    assert not (tmp_path / "out" / "text").exists()


@pytest.mark.parametrize("command, extra, other, part", [
    ("decode", ("--output", "loglikes"), ("--lang", "de"), "loglikes.scp"),
    ("dump-posteriors", (), ("--temperature", "2"), "post.scp")])
def test_failed_rerun_with_two_jobs_keeps_the_old_archives(command, extra, other, part, model, feats_dir, tmp_path):
    """One job finishes with other options (other archives: the en utterances through the de head, or at
    another temperature), the other fails (its de utterance has a NaN): the old scp must still read
    the old archives. Before the fix the finished job renamed its archive into place under the old offsets."""
    data = copy_dir(feats_dir, tmp_path / "data")
    out = tmp_path / "out"
    assert _run(command, model, data, out, "--nj", "2", *extra).returncode == 0
    before = snapshot(out)
    old = {k: np.asarray(v).tobytes() for k, v in kaldiio.load_scp(str(out / part)).items()}
    FEATURE_CASES["nan-features"][0](data)
    res = _run(command, model, data, out, "--nj", "2", "--overwrite", *extra, *other)
    assert_one_line_error(res, command, rf"utterance '{BAD_UTT}': features contain NaN or Inf")
    assert {k: np.asarray(v).tobytes() for k, v in kaldiio.load_scp(str(out / part)).items()} == old
    # Every output as it was (logs aside; decode drops .done up front), and the job that finished waits
    # under staged names for a re-run.
    outputs = {k: v for k, v in snapshot(out).items() if not k.startswith(("log/", "jobs/log", ".done"))}
    assert {k: v for k, v in outputs.items() if "/." not in f"/{k}"} == \
        {k: v for k, v in before.items() if not k.startswith(("log/", "jobs/log", ".done"))}
    assert {k.rsplit("/", 1)[-1] for k in outputs if "/." in f"/{k}"} <= {
        f".{name}.{j}.{ext}.staged" for name in ("loglikes", "post") for j in (1, 2) for ext in ("ark", "scp")}
