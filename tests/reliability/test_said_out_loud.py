"""Issue 17 class E: nothing is accepted silently. Negative process counts are refused, a bpe
vocabulary smaller than asked is a warning with both numbers, and an unknown token is written
`<unk>` (Kaldi's spelling), which `score` counts as a word like any other."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import run_cli
from tests.reliability.test_train import train_args


@pytest.mark.parametrize("option", ["--nproc", "--ngpu"])
def test_negative_process_counts_are_refused(option, feats_dir, lang_dir, tmp_path):
    res = run_cli(*train_args(feats_dir, tmp_path / "exp", option, "-1", lang=lang_dir))
    assert res.returncode == 2, res.stderr  # a usage error (click's exit status)
    assert f"Invalid value for '{option}'" in res.stderr and "-1 is not in the range x>=0" in res.stderr
    assert not (tmp_path / "exp").exists()


def test_a_smaller_bpe_vocabulary_than_asked_is_a_warning_with_both_numbers(feats_dir, tmp_path):
    res = run_cli("make-lang", "--type", "bpe", "--vocab-size", "500", feats_dir, tmp_path / "lang")
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "WARNING" in ln and "--vocab-size 500 asked" in ln]
    assert len(warnings) == 2, res.stderr  # one per language (de, en)
    assert all("text supports only" in w for w in warnings)


def test_unknown_tokens_are_written_as_kaldis_unk(lang_dir):
    from asrkit.text.tokenizer import UNK_ID, LangDir

    tok = LangDir.load(lang_dir).tokenizer("en")
    ids = tok.encode("ab")
    text = tok.decode([*ids, UNK_ID, *ids, UNK_ID, UNK_ID])
    assert "\u2047" not in text
    assert text == "ab <unk> ab <unk> <unk>", text  # one word per unknown token, as Kaldi writes them


def test_score_counts_unk_as_a_word(tmp_path):
    data, dec = tmp_path / "data", tmp_path / "dec"
    data.mkdir()
    dec.mkdir()
    (data / "text").write_text("u1 the cat sat\n")
    (dec / "text").write_text("u1 the <unk> sat\n")
    res = run_cli("score", "--data", data, "--decode-dir", dec)
    assert res.returncode == 0, res.stderr
    wer = (dec / "wer").read_text()
    assert "%WER 33.33 [ 1 / 3, 0 ins, 0 del, 1 sub ]" in wer, wer



def test_a_kaldi_conf_of_non_default_options_is_not_another_setting(tmp_path):
    """Issue 17 E: a Kaldi-made data dir's conf/fbank.conf lists only what it changes; decode
    compares effective values, and warns only (naming the option) when one really differs."""
    import logging
    from types import SimpleNamespace

    from asrkit.data.features_info import feature_settings
    from asrkit.decoding.inputs import warn_feature_mismatch
    from asrkit.features.kaldi_feats import load_feature_options

    def data_dir(name, conf):
        (tmp_path / name / "conf").mkdir(parents=True)
        (tmp_path / name / "conf" / "fbank.conf").write_text(conf)
        return tmp_path / name

    # What make-feats records for the training data: every option spelled out.
    trained = feature_settings(data_dir("train", load_feature_options("fbank", None, ["num-mel-bins=80"])
                                        .to_kaldi_conf()))
    meta = SimpleNamespace(features=trained)
    records = []
    log = logging.getLogger("test.features")
    log.addHandler(type("H", (logging.Handler,), {"emit": lambda self, r: records.append(r.getMessage())})())
    warn_feature_mismatch(data_dir("kaldi", "--num-mel-bins=80\n--low-freq=20.0\n--dither=1\n"), meta, log)
    assert records == []  # was: a warning listing every option the Kaldi conf leaves out
    warn_feature_mismatch(data_dir("other", "--num-mel-bins=80\n--snip-edges=false\n"), meta, log)
    assert len(records) == 1 and records[0].endswith("(snip-edges: false here, true in training)"), records
