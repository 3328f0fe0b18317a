"""asrkit.scoring.wer and asrkit.scoring.report: Kaldi's compute-wer/align-text numbers, and decode-dir reports."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import jiwer
import pytest

from asrkit.errors import AsrkitError, ConfigError, DataDirError
from asrkit.kaldi.textio import read_table
from asrkit.scoring.report import NO_SPACE_LANGUAGES, is_no_space_language, score_decode_dir
from asrkit.scoring.wer import (
    EPS,
    EditCounts,
    align,
    compute_wer,
    edit_counts,
    format_align_text,
    kaldi_percent,
    split_words,
    to_chars,
)


def _read_words(path: Path) -> dict[str, list[str]]:
    return {k: split_words(v) for k, v in read_table(path).items()}


# ---------------------------------------------------------------- compute-wer and align-text


@pytest.mark.parametrize("hyp_name, mode, golden", [
    ("hyp.txt", "present", "wer_present.out"),
    ("hyp_missing.txt", "all", "wer_all_missing.out"),
    ("hyp_missing.txt", "present", "wer_present_missing.out"),
])
def test_compute_wer_output_is_kaldis_byte_for_byte(kaldi_fixtures, hyp_name, mode, golden):
    stats = compute_wer(_read_words(kaldi_fixtures / "ref.txt"), _read_words(kaldi_fixtures / hyp_name), mode=mode)
    assert stats.compute_wer_output().encode("utf-8") == (kaldi_fixtures / golden).read_bytes()


def test_alignment_matches_align_text_fixture(kaldi_fixtures):
    ref = _read_words(kaldi_fixtures / "ref.txt")
    hyp = _read_words(kaldi_fixtures / "hyp.txt")
    text = "".join(format_align_text(key, align(ref[key], hyp[key])) for key in ref)
    assert text.encode("utf-8") == (kaldi_fixtures / "align_text.txt").read_bytes()
    assert align(ref["u2"], hyp["u2"]) == [("hello", "hello"), ("world", EPS)]


def test_counts_of_fixture_utterances():
    assert edit_counts("the cat sat on the mat".split(), "the cat sat on a mat today".split()) == \
        EditCounts(ins=1, dels=0, subs=1, correct=5)
    assert edit_counts(["a"], []) == EditCounts(dels=1)
    assert edit_counts([], ["a", "b"]) == EditCounts(ins=2)
    assert edit_counts(["x", "y"], ["x", "y"]) == EditCounts(correct=2)


def test_compute_wer_and_align_text_break_ties_differently_from_each_other_and_jiwer():
    # Kaldi's LevenshteinEditDistance (compute-wer) takes a substitution only when strictly cheaper
    # than an insertion; worked through by hand for ref "b b c", hyp "c a": 1 ins, 2 del, 0 sub.
    ref, hyp = ["b", "b", "c"], ["c", "a"]
    assert edit_counts(ref, hyp) == EditCounts(ins=1, dels=2, subs=0, correct=1)
    # align-text (LevenshteinAlignment) prefers sub/correct, then deletion: 1 del, 2 sub.
    assert align(ref, hyp) == [("b", EPS), ("b", "c"), ("c", "a")]
    # jiwer (rapidfuzz) finds the same total but not compute-wer's split: the reason the counts are
    # not taken from it (if this ever fails, jiwer could do the job).
    out = jiwer.process_words("b b c", "c a")
    assert out.insertions + out.deletions + out.substitutions == 3
    assert (out.insertions, out.deletions, out.substitutions) != (1, 2, 0)


def test_totals_and_alignments_agree_with_jiwer_on_random_sentences():
    rng = random.Random(7)
    for _ in range(300):
        ref = [rng.choice("abcd") for _ in range(rng.randint(1, 9))]
        hyp = [rng.choice("abcde") for _ in range(rng.randint(0, 9))]
        out = jiwer.process_words(" ".join(ref), " ".join(hyp))
        counts = edit_counts(ref, hyp)
        assert counts.errors == out.insertions + out.deletions + out.substitutions
        assert counts.correct + counts.subs + counts.dels == len(ref)
        pairs = align(ref, hyp)
        assert [r for r, _ in pairs if r != EPS] == ref
        assert [h for _, h in pairs if h != EPS] == hyp
        assert sum(r != h for r, h in pairs) == counts.errors


def test_kaldi_percent_rounds_through_single_precision():
    assert kaldi_percent(7, 12) == "58.33"
    assert kaldi_percent(1, 32) == "3.12"  # exactly 3.125: printf rounds half to even
    # 100*1462/1491 is 98.05499... in double but 98.055 in float, which compute-wer stores.
    assert kaldi_percent(1462, 1491) == "98.06"
    assert kaldi_percent(0, 0) == "0.00"
    assert kaldi_percent(2, 0) == "inf"


def test_zero_reference_words_do_not_divide_by_zero():
    stats = compute_wer({"u1": []}, {"u1": []})
    assert stats.compute_wer_output().splitlines()[0] == "%WER 0.00 [ 0 / 0, 0 ins, 0 del, 0 sub ]"
    stats = compute_wer({"u1": []}, {"u1": ["uh", "oh"]})
    assert stats.compute_wer_output().splitlines()[:2] == ["%WER inf [ 2 / 0, 2 ins, 0 del, 0 sub ]",
                                                          "%SER 100.00 [ 1 / 1 ]"]


def test_strict_mode_and_unknown_mode():
    with pytest.raises(AsrkitError, match=r"hyp.txt: no hypothesis for utterance 'u2' \(--mode strict\)"):
        compute_wer({"u1": ["a"], "u2": ["b"]}, {"u1": ["a"]}, mode="strict", hyp_name="hyp.txt")
    with pytest.raises(ConfigError, match="--mode must be one of present|all|strict, got 'some'"):
        compute_wer({"u1": ["a"]}, {"u1": ["a"]}, mode="some")


def test_to_chars_drops_spaces_and_splits_code_points():
    assert to_chars(["我爱", "北京"]) == ["我", "爱", "北", "京"]
    assert split_words("a\u3000b  c\t d") == ["a\u3000b", "c", "d"]  # only ASCII whitespace separates


# ---------------------------------------------------------------- decode dir reports


def _dirs(tmp_path: Path, ref: str, hyp: str, utt2lang: str | None = None) -> tuple[Path, Path]:
    data, decode = tmp_path / "data", tmp_path / "exp" / "decode_test"
    data.mkdir()
    decode.mkdir(parents=True)
    (data / "text").write_text(ref, encoding="utf-8")
    (decode / "text").write_text(hyp, encoding="utf-8")
    if utt2lang is not None:
        (data / "utt2lang").write_text(utt2lang)
    return data, decode


@pytest.mark.parametrize("hyp_name, mode, golden", [
    ("hyp.txt", "present", "wer_present.out"),
    ("hyp_missing.txt", "all", "wer_all_missing.out"),
    ("hyp_missing.txt", "present", "wer_present_missing.out"),
])
def test_wer_file_is_kaldis_byte_for_byte(tmp_path, kaldi_fixtures, hyp_name, mode, golden):
    data, decode = _dirs(tmp_path, "", "")
    shutil.copy(kaldi_fixtures / "ref.txt", data / "text")
    shutil.copy(kaldi_fixtures / hyp_name, decode / "text")
    reports = score_decode_dir(data, decode, mode=mode)
    assert list(reports) == ["wer"]
    assert (decode / "wer").read_bytes() == (kaldi_fixtures / golden).read_bytes()
    assert sorted(p.name for p in decode.iterdir()) == ["per_utt", "text", "wer"]  # no temporary left over


def test_per_utt_follows_wer_per_utt_details(tmp_path, kaldi_fixtures):
    data, decode = _dirs(tmp_path, "", "")
    shutil.copy(kaldi_fixtures / "ref.txt", data / "text")
    shutil.copy(kaldi_fixtures / "hyp.txt", decode / "text")
    score_decode_dir(data, decode)
    assert (decode / "per_utt").read_text() == (
        "u1 ref  the  cat  sat  on  the  mat   *** \n"
        "u1 hyp  the  cat  sat  on   a   mat  today\n"
        "u1 op    C    C    C    C   S    C     I  \n"
        "u1 #csid 5 1 1 0\n"
        "u2 ref  hello  world\n"
        "u2 hyp  hello   *** \n"
        "u2 op     C      D  \n"
        "u2 #csid 1 0 0 1\n"
        "u3 ref  a  b  c  d  ***  ***\n"
        "u3 hyp  a  x  c  d   e    f \n"
        "u3 op   C  S  C  C   I    I \n"
        "u3 #csid 3 1 2 0\n")


def test_missing_hypotheses_are_reported_and_per_utt_follows_the_mode(tmp_path, kaldi_fixtures, caplog):
    data, decode = _dirs(tmp_path, "", "")
    shutil.copy(kaldi_fixtures / "ref.txt", data / "text")
    shutil.copy(kaldi_fixtures / "hyp_missing.txt", decode / "text")
    with caplog.at_level(logging.WARNING, logger="asrkit"):
        reports = score_decode_dir(data, decode, mode="present")
    assert reports["wer"].absent_keys == ["u2"]
    assert "1 of 3 utterances" in caplog.text and "(u2)" in caplog.text
    assert "u2 " not in (decode / "per_utt").read_text()
    score_decode_dir(data, decode, mode="all")
    assert "u2 op     D      D  \nu2 #csid 0 0 0 2\n" in (decode / "per_utt").read_text()


MULTI_REF = ("en-001 the cat sat\n"
             "en-002 hello world\n"
             "fr-001 le chat noir\n"
             "zh-001 我爱北京 天安门\n")
MULTI_HYP = ("en-001 the cat sat down\n"
             "en-002 hello\n"
             "fr-001 le chien noir\n"
             "zh-001 我爱背景 天安门\n")
MULTI_LANG = "en-001 en\nen-002 en\nfr-001 fr\nzh-001 zh\n"


def test_per_language_reports_and_cer_for_chinese_by_default(tmp_path):
    data, decode = _dirs(tmp_path, MULTI_REF, MULTI_HYP, MULTI_LANG)
    reports = score_decode_dir(data, decode)
    assert list(reports) == ["wer", "wer_en", "wer_fr", "wer_zh", "cer_zh"]
    # By hand: en-001 one insertion, en-002 one deletion, fr-001 one substitution, zh-001 one
    # substituted word (two substituted characters out of seven).
    assert (decode / "wer").read_text() == ("%WER 40.00 [ 4 / 10, 1 ins, 1 del, 2 sub ]\n"
                                            "%SER 100.00 [ 4 / 4 ]\n"
                                            "Scored 4 sentences, 0 not present in hyp.\n")
    assert (decode / "wer_en").read_text().splitlines() == ["%WER 40.00 [ 2 / 5, 1 ins, 1 del, 0 sub ]",
                                                            "%SER 100.00 [ 2 / 2 ]",
                                                            "Scored 2 sentences, 0 not present in hyp."]
    assert (decode / "wer_fr").read_text().splitlines()[0] == "%WER 33.33 [ 1 / 3, 0 ins, 0 del, 1 sub ]"
    assert (decode / "wer_zh").read_text().splitlines()[0] == "%WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ]"
    assert (decode / "cer_zh").read_text() == ("%WER 28.57 [ 2 / 7, 0 ins, 0 del, 2 sub ]\n"
                                               "%SER 100.00 [ 1 / 1 ]\n"
                                               "Scored 1 sentences, 0 not present in hyp.\n")
    assert not (decode / "cer").exists()  # not every language is written without spaces
    assert reports["cer_zh"].counts == EditCounts(subs=2, correct=5)


def test_cer_switches(tmp_path):
    data, decode = _dirs(tmp_path, MULTI_REF, MULTI_HYP, MULTI_LANG)
    assert list(score_decode_dir(data, decode, cer=False)) == ["wer", "wer_en", "wer_fr", "wer_zh"]
    reports = score_decode_dir(data, decode, cer=True)
    assert list(reports) == ["wer", "wer_en", "wer_fr", "wer_zh", "cer", "cer_en", "cer_fr", "cer_zh"]
    # "thecatsat" -> "thecatsatdown" (4 ins), "helloworld" -> "hello" (5 del): 9 of 19 characters.
    assert (decode / "cer_en").read_text().splitlines()[0] == "%WER 47.37 [ 9 / 19, 4 ins, 5 del, 0 sub ]"


def test_cer_overall_by_default_when_every_language_has_no_spaces(tmp_path):
    data, decode = _dirs(tmp_path, "zh-001 我爱北京\nzh-002 你好\n", "zh-001 我爱背景\nzh-002 你好\n",
                         "zh-001 zh-CN\nzh-002 zh-CN\n")
    reports = score_decode_dir(data, decode)
    assert list(reports) == ["wer", "wer_zh-CN", "cer", "cer_zh-CN"]
    assert (decode / "cer").read_text().splitlines()[0] == "%WER 33.33 [ 2 / 6, 0 ins, 0 del, 2 sub ]"
    # Without utt2lang the language is unknown: no CER unless asked for.
    (data / "utt2lang").unlink()
    assert list(score_decode_dir(data, decode)) == ["wer"]


def test_no_space_language_tags():
    assert {"zh", "ja", "th", "yue", "lo", "km", "my"} <= NO_SPACE_LANGUAGES
    assert all(is_no_space_language(t) for t in ("zh", "ZH-cn", "cmn_hans_cn", "ja_jp", "yue", "th-TH"))
    assert not any(is_no_space_language(t) for t in ("en", "fr-FR", "de", "ko", "vi"))


def test_filter_is_applied_to_reference_and_hypothesis(tmp_path):
    data, decode = _dirs(tmp_path, "u1 um hello world\nu2 good day\n", "u1 hello world\nu2 um good day\n")
    assert score_decode_dir(data, decode)["wer"].compute_wer_output().splitlines()[0] == \
        "%WER 40.00 [ 2 / 5, 1 ins, 1 del, 0 sub ]"
    assert score_decode_dir(data, decode, filter_cmd="sed s/um//g")["wer"].compute_wer_output().splitlines()[0] == \
        "%WER 0.00 [ 0 / 4, 0 ins, 0 del, 0 sub ]"
    assert (decode / "per_utt").read_text().startswith("u1 ref  hello  world\n")


def test_failing_filter_names_the_command(tmp_path):
    data, decode = _dirs(tmp_path, "u1 a\nu2 b\n", "u1 a\nu2 b\n")
    (decode / "wer").write_text("old\n")
    with pytest.raises(AsrkitError, match=r"filter command 'sh -c \"echo broken >&2; exit 3\"' failed on .*text "
                                          r"\(exit status 3\): broken"):
        score_decode_dir(data, decode, filter_cmd='sh -c "echo broken >&2; exit 3"')
    with pytest.raises(AsrkitError, match=r"filter command 'head -n 1' changed the utterance ids of .*: dropped u2"):
        score_decode_dir(data, decode, filter_cmd="head -n 1")
    assert (decode / "wer").read_text() == "old\n"  # nothing written on failure


def test_empty_hypothesis_line_is_present_and_extra_hypotheses_are_ignored(tmp_path, caplog):
    data, decode = _dirs(tmp_path, "u1 a b\nu2 c\n", "u0 zzz\nu1\nu2 c\n")
    with caplog.at_level(logging.WARNING, logger="asrkit"):
        stats = score_decode_dir(data, decode)["wer"]
    assert stats.compute_wer_output() == ("%WER 66.67 [ 2 / 3, 0 ins, 2 del, 0 sub ]\n"
                                          "%SER 50.00 [ 1 / 2 ]\n"
                                          "Scored 2 sentences, 0 not present in hyp.\n")
    assert "1 hypotheses in" in caplog.text and "(u0)" in caplog.text


def test_decode_dir_errors(tmp_path):
    data, decode = _dirs(tmp_path, "u1 a\nu2 b\n", "u1 a\n")
    with pytest.raises(AsrkitError, match=r"no hypothesis for utterance 'u2' \(--mode strict\)"):
        score_decode_dir(data, decode, mode="strict")
    assert not (decode / "wer").exists()
    (decode / "text").write_text("u9 a\n")
    with pytest.raises(AsrkitError, match="none of the 2 utterances of .*text has a hypothesis"):
        score_decode_dir(data, decode)
    (decode / "text").unlink()
    with pytest.raises(AsrkitError, match=r"decode_test/text: no such file"):
        score_decode_dir(data, decode)
    (decode / "text").write_text("u1 a\nu2 b\n")
    (data / "utt2lang").write_text("u1 en\n")
    with pytest.raises(DataDirError, match=r"utt2lang: no language for utterance 'u2'"):
        score_decode_dir(data, decode)
    (data / "utt2lang").write_text("u1 en\nu2 zh/CN\n")
    with pytest.raises(AsrkitError, match=r"utt2lang:2: language tag 'zh/CN' of 'u2' must be letters"):
        score_decode_dir(data, decode)
    (data / "utt2lang").write_text("u1 en\nu1 fr\n")
    with pytest.raises(AsrkitError, match=r"utt2lang:2: duplicate key 'u1'"):
        score_decode_dir(data, decode)
