"""`asrkit train` on bad data, targets, lang dirs and models, a full disk and an unwritable exp dir: one
error line naming the file:line or utterance, and no model file (final.pt, checkpoints) left behind."""

from __future__ import annotations

import re

import kaldiio
import numpy as np
import pytest

from tests.reliability.conftest import (
    TINY_DNN,
    assert_one_line_error,
    copy_dir,
    edit_line,
    file_size_limit,
    run_cli,
)
from tests.reliability.test_feature_tables import BAD_UTT, FEATURE_CASES


def train_args(data, out, *extra, lang=None):
    sets = [x for s in TINY_DNN for x in ("--set", s)]
    lang_opt = ["--lang", lang] if lang is not None else []
    return ["train", "--train-data", data, *lang_opt, "--out-dir", out, *sets, *extra]


def assert_no_model(out):
    """A failed run leaves no model: no final/best/ema.pt, no checkpoint, no temporary file."""
    if not out.exists():
        return
    left = [p.name for p in out.rglob("*") if p.suffix in (".pt", ".tmp")]
    assert left == [], left


@pytest.mark.parametrize("case", list(FEATURE_CASES))
def test_broken_features_name_the_utterance(case, feats_dir, lang_dir, tmp_path):
    breaker, message = FEATURE_CASES[case]
    data = copy_dir(feats_dir, tmp_path / "data")
    breaker(data)
    out = tmp_path / "exp"
    res = run_cli(*train_args(data, out, lang=lang_dir))
    assert_one_line_error(res, "train", message)
    assert_no_model(out)


def _not_utf8(data):
    raw = (data / "text").read_bytes().split(b"\n")
    raw[2] += b" \xff\xfe"
    (data / "text").write_bytes(b"\n".join(raw))


TEXT_CASES = {
    "missing-feats.scp": (lambda d: (d / "feats.scp").unlink(),
                          r"data/feats\.scp: no features; run `asrkit make-feats` first"),
    "missing-text": (lambda d: (d / "text").unlink(), r"data/text: no transcripts"),
    "duplicate-keys": (lambda d: (d / "text").write_text((d / "text").read_text().splitlines(keepends=True)[0]
                                                        + (d / "text").read_text()),
                       r"data/text:2: duplicate key 'despk0-000'"),
    "not-utf8": (_not_utf8, r"data/text:3: not valid UTF-8"),
    "cr-line-endings": (lambda d: (d / "text").write_text((d / "text").read_text().replace("\n", "\r\n")),
                        r"data/text:1: carriage return \(CR\) in line"),
    "language-not-in-lang-dir": (lambda d: edit_line(d / "utt2lang", 4, f"{BAD_UTT} fr"),
                                 rf"language 'fr' \(utterance '{BAD_UTT}'\) is not in lang dir .*lang "
                                 r"\(it has: de, en\)"),
    "utterance-without-language": (lambda d: edit_line(d / "utt2lang", 4, None),
                                   rf"data/utt2lang: no language for utterance '{BAD_UTT}'"),
}


@pytest.mark.parametrize("case", list(TEXT_CASES))
def test_bad_transcripts_and_tables(case, feats_dir, lang_dir, tmp_path):
    breaker, message = TEXT_CASES[case]
    data = copy_dir(feats_dir, tmp_path / "data")
    breaker(data)
    out = tmp_path / "exp"
    assert_one_line_error(run_cli(*train_args(data, out, lang=lang_dir)), "train", message)
    assert_no_model(out)


def test_missing_lang_dir(feats_dir, tmp_path):
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", lang=tmp_path / "nolang"))
    assert_one_line_error(res, "train", r"nolang/lang\.yaml: not a lang dir")
    assert_no_model(tmp_path / "exp")


def _frame_targets(data, path, *, kind, frames=lambda n: n, dim=5):
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as w:
        for k in sorted(feats):
            n = frames(feats[k].shape[0])
            if kind == "ali":
                w(k, (np.arange(n) % dim).astype(np.int32))
            else:
                w(k, np.full((n, dim), 1.0 / dim, dtype=np.float32))
    return f"{path}.scp"


def test_alignment_length_mismatch_names_the_utterance(feats_dir, tmp_path):
    ali = _frame_targets(feats_dir, tmp_path / "ali", kind="ali", frames=lambda n: n - 3)
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--set", "objective.type=ce", "--set",
                               f"objective.targets={ali}", "--set", "model.head={type: linear}"))
    assert_one_line_error(res, "train", r"utterance '[^']+': the targets have \d+ frames but the model outputs \d+")
    assert_no_model(tmp_path / "exp")


def test_soft_target_dim_mismatch_names_the_utterance(feats_dir, tmp_path):
    post = _frame_targets(feats_dir, tmp_path / "post", kind="post", dim=5)
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--set", "objective.type=kl", "--set",
                               f"objective.targets={post}", "--set", "model.head={type: linear, num_classes: 4}"))
    assert_one_line_error(res, "train", r"utterance '[^']+': soft targets have 5 columns but the model has 4 outputs")
    assert_no_model(tmp_path / "exp")


def test_init_from_an_incompatible_model(feats_dir, lang_dir, model, tmp_path):
    """A model with other layer sizes shares no parameter shape with the model being trained."""
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--init-from", model, "--set",
                               "model.encoder={type: dnn, hidden_dims: [16], context: 1}", lang=lang_dir))
    assert_one_line_error(res, "train", r"exp/final\.pt: no encoder parameter matches this model \(different architecture\?\); "
                                          r"e.g. 'encoder.layers.0.weight' is \(24, 36\) there, \(16, 36\) here")
    assert_no_model(tmp_path / "exp")


def test_init_from_a_file_that_is_not_a_model(feats_dir, lang_dir, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", "--init-from", tmp_path / "junk.pt", lang=lang_dir))
    assert_one_line_error(res, "train", r"junk\.pt: not a readable model file")


def test_unwritable_out_dir(feats_dir, lang_dir, tmp_path):
    (tmp_path / "a_file").write_text("")
    res = run_cli(*train_args(feats_dir, tmp_path / "a_file" / "exp", lang=lang_dir))
    assert_one_line_error(res, "train", r"a_file/exp.*: (Not a directory|File exists)")


def test_disk_full_names_the_checkpoint(feats_dir, lang_dir, tmp_path):
    out = tmp_path / "exp"
    with file_size_limit(3000):  # logs and config fit; the first checkpoint (~25 kB) does not
        res = run_cli(*train_args(feats_dir, out, lang=lang_dir))
    assert_one_line_error(res, "train", r"exp/checkpoints/checkpoint-\d+\.pt: cannot write: File too large")
    assert_no_model(out)


def _warnings(res):
    return [ln for ln in res.stderr.splitlines() if " WARNING " in ln]


def test_out_of_vocabulary_characters_warn_with_a_count(feats_dir, lang_dir, tmp_path):
    """Decision: characters the token set never saw become <unk>; training goes on with one warning
    that counts them and names the first utterance (a lang dir made from other text is the usual cause)."""
    data = copy_dir(feats_dir, tmp_path / "data")
    edit_line(data / "text", 4, f"{BAD_UTT} qqq")  # not in the de alphabet; sentencepiece makes one <unk> of a run
    res = run_cli(*train_args(data, tmp_path / "exp", lang=lang_dir))
    assert res.returncode == 0 and res.exception is None, res.stderr
    assert any(re.search(rf"1 of \d+ target tokens are <unk> in 1 utterance\(s\) \(first: '{BAD_UTT}'\)", w)
               for w in _warnings(res)), res.stderr
    assert (tmp_path / "exp" / "final.pt").is_file()


def test_empty_transcript_and_missing_transcript_warn_naming_the_utterance(feats_dir, lang_dir, tmp_path):
    """Decision: an empty transcript is a valid CTC target (all blank), as in Kaldi; an utterance with
    no line in `text` is skipped. Both are counted in a warning that names the first utterance."""
    data = copy_dir(feats_dir, tmp_path / "data")
    edit_line(data / "text", 4, BAD_UTT)
    edit_line(data / "text", 0, None)
    res = run_cli(*train_args(data, tmp_path / "exp", lang=lang_dir))
    assert res.returncode == 0 and res.exception is None, res.stderr
    warnings = "\n".join(_warnings(res))
    assert f"1 utterance(s) with an empty transcript (first: '{BAD_UTT}')" in warnings
    assert "skipped 1 utterance(s): no target (first: 'despk0-000')" in warnings
