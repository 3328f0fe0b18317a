"""Issue 17 classes B and D: errors name the culprit. A byte-order mark is found once, in the table
reader, for every command; CMVN stats of another dimension name the cmvn.scp and the speaker; a
directory where a file belongs says so; a training config that is not UTF-8 names its line."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest

from tests.reliability.conftest import assert_one_line_error, copy_dir, run_cli
from tests.reliability.test_train import train_args

BOM_MESSAGE = r"{file}:1: starts with a UTF-8 byte-order mark \(U\+FEFF\); remove it"


def _add_bom(path):
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def test_bom_in_wav_scp_is_named_by_make_feats(wav_dir, tmp_path):
    data = copy_dir(wav_dir, tmp_path / "data")
    _add_bom(data / "wav.scp")
    res = run_cli("make-feats", data)
    assert_one_line_error(res, "make-feats", BOM_MESSAGE.format(file=r"data/wav\.scp"))  # was `wav.scp:2: not sorted`
    assert not (data / "feats.scp").exists()


@pytest.mark.parametrize("table", ["utt2lang", "text", "feats.scp", "utt2spk"])
def test_bom_in_a_table_is_named_by_train(table, feats_dir, lang_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    _add_bom(data / table)
    res = run_cli(*train_args(data, tmp_path / "exp", lang=lang_dir))
    assert_one_line_error(res, "train", BOM_MESSAGE.format(file=rf"data/{table}"))  # was: the first utterance skipped


def test_bom_in_text_is_named_by_make_lang_and_score(feats_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    _add_bom(data / "text")
    res = run_cli("make-lang", "--type", "char", data, tmp_path / "lang")
    assert_one_line_error(res, "make-lang", BOM_MESSAGE.format(file=r"data/text"))
    dec = tmp_path / "decode"
    dec.mkdir()
    (dec / "text").write_text((feats_dir / "text").read_text())
    res = run_cli("score", "--data", data, "--decode-dir", dec)
    assert_one_line_error(res, "score", BOM_MESSAGE.format(file=r"data/text"))


def _cmvn_of_dim(data, dim):
    speakers = [line.split()[0] for line in (data / "spk2utt").read_text().splitlines()]
    stats = np.zeros((2, dim + 1))
    stats[0, dim] = 10.0
    with kaldiio.WriteHelper(f"ark,scp:{data / 'cmvn40.ark'},{data / 'cmvn.scp'}") as w:
        for spk in speakers:
            w(spk, stats)


@pytest.mark.parametrize("command", ["train", "decode"])
def test_cmvn_of_another_dimension_names_the_scp_and_speaker(command, feats_dir, lang_dir, model, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    _cmvn_of_dim(data, 40)
    if command == "train":
        res = run_cli(*train_args(data, tmp_path / "exp", lang=lang_dir))
    else:
        res = run_cli("decode", "--model", model, "--data", data, "--out-dir", tmp_path / "dec")
    assert_one_line_error(res, command, r"data/cmvn\.scp: speaker '[^']+' \(utterance '[^']+'\): features have "
                                        r"dimension 12 but the CMVN stats have dimension 40; re-run `asrkit "
                                        r"compute-cmvn .*data`")


def test_init_from_a_directory_says_so(feats_dir, lang_dir, model, tmp_path):
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--init-from", model.parent, lang=lang_dir))
    assert_one_line_error(res, "train", r"exp: is a directory, not a model file \(e\.g\. .*exp/final\.pt\)")


def test_a_directory_in_wav_scp_says_so(wav_dir, tmp_path):
    data = copy_dir(wav_dir, tmp_path / "data")
    (tmp_path / "adir").mkdir()
    lines = (data / "wav.scp").read_text().splitlines()
    lines[2] = f"{lines[2].split()[0]} {tmp_path / 'adir'}"
    (data / "wav.scp").write_text("".join(f"{ln}\n" for ln in lines))
    res = run_cli("make-feats", data)
    assert_one_line_error(res, "make-feats", r"spkB-de-001: '.*adir' is a directory, not an audio file")


def test_a_training_config_that_is_not_utf8_names_its_line(feats_dir, lang_dir, tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_bytes(b"training:\n  epochs: 1  # \xe9poques\n")
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--config", conf, lang=lang_dir))
    assert_one_line_error(res, "train", r"conf\.yaml:2: not valid UTF-8 \(invalid continuation byte at byte 15\)")
    assert not (tmp_path / "exp").exists()


def test_train_dirs_of_another_feature_dimension_name_both(feats_dir, lang_dir, tmp_path):
    from tests.reliability.test_decode_and_posteriors import _wider_features

    wide = copy_dir(feats_dir, tmp_path / "wide")
    _wider_features(wide)  # 13 dims where feats_dir has 12
    assert run_cli("compute-cmvn", wide).returncode == 0
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--train-data", wide, lang=lang_dir))
    assert_one_line_error(res, "train", r"wide/feats\.scp: features of dimension 13, but .*feats/feats\.scp has "
                                        r"dimension 12: the data dirs of one model need the same feature options")
    assert not (tmp_path / "exp").exists()
