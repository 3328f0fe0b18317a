"""Issue 17 class A: nothing a user made is lost. asrkit replaces only a folder it made itself
(its `.asrkit` stamp, or a lang dir's `lang.yaml`), never one of a command's inputs or a folder
holding one, and a second writer of a data dir / decode dir stops instead of mixing its output in."""

from __future__ import annotations

import os

import pytest

from asrkit.fileio import MARKER, dir_lock
from tests.reliability.conftest import assert_one_line_error, copy_dir, run_cli, snapshot


def _user_folder(path):
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes\n")
    (path / "results").mkdir()
    (path / "results" / "wer").write_text("12.3\n")
    return snapshot(path)


# ------------------------------------------------------------------------------------------------
# make-lang
# ------------------------------------------------------------------------------------------------

def test_make_lang_keeps_a_users_folder(feats_dir, tmp_path):
    before = _user_folder(tmp_path / "mine")
    res = run_cli("make-lang", "--type", "char", feats_dir, tmp_path / "mine")
    assert_one_line_error(res, "make-lang", r"mine: exists and was not made by asrkit; use --overwrite")
    assert snapshot(tmp_path / "mine") == before
    # --overwrite is the user's word that the folder may go.
    assert run_cli("make-lang", "--type", "char", "--overwrite", feats_dir, tmp_path / "mine").returncode == 0
    assert (tmp_path / "mine" / "lang.yaml").is_file() and not (tmp_path / "mine" / "notes.txt").exists()


def test_make_lang_rebuilds_its_own_lang_dir(feats_dir, tmp_path):
    assert run_cli("make-lang", "--type", "char", feats_dir, tmp_path / "lang").returncode == 0
    assert (tmp_path / "lang" / MARKER).is_file()
    res = run_cli("make-lang", "--type", "bpe", "--vocab-size", "20", "--overwrite", feats_dir, tmp_path / "lang")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("lang_dir, message", [
    ("data", r"data: holds the input .*data/test; choose another output folder"),  # make-lang data/test data
    ("data/test", r"data/test: is also an input"),
    ("data/test/text", r"data/test/text: exists and is not a directory"),  # make-lang d d/text
    ("data/test/lang", r"data/test/lang: is inside the input"),
])
@pytest.mark.parametrize("overwrite", [False, True])
def test_make_lang_never_replaces_its_input(feats_dir, tmp_path, lang_dir, message, overwrite):
    data = copy_dir(feats_dir, tmp_path / "data" / "test")
    before = snapshot(tmp_path / "data")
    res = run_cli("make-lang", "--type", "char", *(["--overwrite"] if overwrite else []), data, tmp_path / lang_dir)
    assert_one_line_error(res, "make-lang", message)
    assert snapshot(tmp_path / "data") == before  # no `.text.*.old`, nothing replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_lang_dir_honours_the_umask(feats_dir, tmp_path):
    old = os.umask(0o022)
    try:
        assert run_cli("make-lang", "--type", "char", feats_dir, tmp_path / "lang").returncode == 0
    finally:
        os.umask(old)
    assert (tmp_path / "lang").stat().st_mode & 0o777 == 0o755  # was 0700 whatever the umask
    assert (tmp_path / "lang" / "en").stat().st_mode & 0o777 == 0o755


# ------------------------------------------------------------------------------------------------
# data subset / combine / perturb-speed
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [("subset", "--first", "2"), ("perturb-speed", "--factors", "1.1")])
def test_data_commands_keep_a_users_folder(command, wav_dir, tmp_path):
    before = _user_folder(tmp_path / "mine")
    res = run_cli("data", *command, wav_dir, tmp_path / "mine")
    assert_one_line_error(res, f"data {command[0]}", r"mine: exists and was not made by asrkit; use --overwrite")
    assert snapshot(tmp_path / "mine") == before
    assert run_cli("data", *command, "--overwrite", wav_dir, tmp_path / "mine").returncode == 0
    assert (tmp_path / "mine" / "utt2spk").is_file() and not (tmp_path / "mine" / "notes.txt").exists()


def test_data_combine_replaces_its_own_output_only(feats_dir, tmp_path):
    a = run_cli("data", "subset", "--first", "2", feats_dir, tmp_path / "a")
    b = run_cli("data", "subset", "--last", "2", feats_dir, tmp_path / "b")
    assert a.returncode == b.returncode == 0
    assert run_cli("data", "combine", tmp_path / "ab", tmp_path / "a", tmp_path / "b").returncode == 0
    assert run_cli("data", "combine", tmp_path / "ab", tmp_path / "a", tmp_path / "b").returncode == 0  # ours
    before = _user_folder(tmp_path / "mine")
    res = run_cli("data", "combine", tmp_path / "mine", tmp_path / "a", tmp_path / "b")
    assert_one_line_error(res, "data combine", r"mine: exists and was not made by asrkit")
    assert snapshot(tmp_path / "mine") == before


# ------------------------------------------------------------------------------------------------
# decode / dump-posteriors --out-dir
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
@pytest.mark.parametrize("out, message", [(".", r"data: is also an input"), ("..", r"holds the input")])
def test_out_dir_is_never_the_data_dir(command, out, message, model, feats_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    before = snapshot(tmp_path)
    res = run_cli(command, "--model", model, "--data", data, "--out-dir", data / out)
    assert_one_line_error(res, command, message)
    assert snapshot(tmp_path) == before  # data/text (the references) untouched, no log/ added


@pytest.mark.parametrize("command", ["decode", "dump-posteriors"])
def test_a_second_writer_of_the_out_dir_stops(command, model, feats_dir, tmp_path):
    out = tmp_path / "out"
    with dir_lock(out, "decode"):
        res = run_cli(command, "--model", model, "--data", feats_dir, "--out-dir", out)
    assert_one_line_error(res, command, rf"out is being written by another asrkit decode \(pid {os.getpid()}\)")
    assert not out.exists()  # the lock, and the folder it made, are gone with their holder


# ------------------------------------------------------------------------------------------------
# make-feats
# ------------------------------------------------------------------------------------------------

def test_make_feats_refuses_to_overwrite_another_data_dirs_arks(wav_dir, tmp_path):
    """`make-feats a/test --feat-dir fd` then `b/test`: the arks share a name; b must not replace a's."""
    a = copy_dir(wav_dir, tmp_path / "a" / "test")
    b = copy_dir(wav_dir, tmp_path / "b" / "test")
    fd = tmp_path / "fd"
    assert run_cli("make-feats", a, "--feat-dir", fd).returncode == 0
    arks = snapshot(fd)
    feats_a = (a / "feats.scp").read_text()
    for extra in ([], ["--overwrite"], ["--opt", "num-mel-bins=40"]):
        res = run_cli("make-feats", b, "--feat-dir", fd, *extra)
        assert_one_line_error(res, "make-feats", r"fd/raw_fbank_test\.1\.ark: holds the features of .*a/test .*"
                                                 r"give .*b/test another --feat-dir")
    assert {k: v for k, v in snapshot(fd).items() if not k.startswith("log/")} == \
        {k: v for k, v in arks.items() if not k.startswith("log/")}
    assert (a / "feats.scp").read_text() == feats_a and not (b / "feats.scp").exists()
    # Its own re-run, and b into another feat dir, are fine.
    assert run_cli("make-feats", a, "--feat-dir", fd, "--overwrite").returncode == 0
    assert run_cli("make-feats", b, "--feat-dir", tmp_path / "fd_b").returncode == 0
    # Once a no longer points there, the name is free.
    (a / "feats.scp").unlink()
    assert run_cli("make-feats", b, "--feat-dir", fd).returncode == 0


def test_make_feats_while_another_writes_the_data_dir(wav_dir, tmp_path):
    data = copy_dir(wav_dir, tmp_path / "data")
    with dir_lock(data, "make-feats"):
        res = run_cli("make-feats", data, "--opt", "num-mel-bins=40")
    assert_one_line_error(res, "make-feats", rf"data is being written by another asrkit make-feats "
                                             rf"\(pid {os.getpid()}\)")
    assert not (data / "feats.scp").exists() and not (data / "data").exists()
    assert run_cli("make-feats", data).returncode == 0  # and once it finished, it runs


def test_make_feats_feat_dir_is_not_the_data_dir(wav_dir, tmp_path):
    data = copy_dir(wav_dir, tmp_path / "data")
    before = snapshot(data)
    for fd, message in ((data, r"data: is also an input"), (tmp_path, r"holds the input")):
        assert_one_line_error(run_cli("make-feats", data, "--feat-dir", fd), "make-feats", message)
    assert snapshot(data) == before


def test_compute_cmvn_while_another_writes_the_data_dir(feats_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    before = snapshot(tmp_path)
    with dir_lock(data, "make-feats"):
        res = run_cli("compute-cmvn", data)
    assert_one_line_error(res, "compute-cmvn", r"data is being written by another asrkit make-feats")
    assert snapshot(tmp_path) == before
