"""asrkit.scoring.results: scores of every decode dir of an exp/ tree, best of Kaldi sweeps, tables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from asrkit.cli.main import cli
from asrkit.errors import AsrkitError
from asrkit.scoring.results import collect_results, format_results, format_seed_results, read_wer_line


def _wer(line: str) -> str:
    return f"{line}\n%SER 50.00 [ 1 / 2 ]\nScored 2 sentences, 0 not present in hyp.\n"


def _kaldi_wer(line: str) -> str:
    # compute-wer's stderr goes into Kaldi's wer_<lmwt>_<wip> files first (`>&` in score_kaldi_wer.sh).
    return "compute-wer --text --mode=present ark:exp/x/scoring_kaldi/test_filt.txt ark,p:- \n" + _wer(line)


def make_exp_tree(root: Path) -> Path:
    files = {
        "tdnn_1a/decode_test_clean/wer": _wer("%WER 10.00 [ 10 / 100, 1 ins, 2 del, 7 sub ]"),
        "tdnn_1a/decode_test_clean/wer_en": _wer("%WER 8.00 [ 4 / 50, 1 ins, 1 del, 2 sub ]"),
        "tdnn_1a/decode_test_clean/wer_zh": _wer("%WER 12.00 [ 6 / 50, 0 ins, 1 del, 5 sub ]"),
        "tdnn_1a/decode_test_clean/cer_zh": _wer("%WER 5.50 [ 11 / 200, 1 ins, 0 del, 10 sub ]"),
        "tdnn_1a/decode_test_clean/per_utt": "u1 ref  a\nu1 hyp  a\nu1 op   C\nu1 #csid 1 0 0 0\n",
        "tdnn_1a/decode_test_clean/text": "u1 a\n",
        "tdnn_1a/decode_test_other/wer": _wer("%WER 20.00 [ 2 / 10, 0 ins, 2 del, 0 sub ] [PARTIAL]"),
        "tdnn_1a/log/train.log": "%WER 1.00 [ 1 / 100, 0 ins, 0 del, 1 sub ]\n",  # not a decode dir
        "chain/tdnn_1b/decode_bd_tgpr_eval92/wer_10_0.0": _kaldi_wer("%WER 5.00 [ 5 / 100, 1 ins, 1 del, 3 sub ]"),
        "chain/tdnn_1b/decode_bd_tgpr_eval92/wer_11_0.5": _kaldi_wer("%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ]"),
        "chain/tdnn_1b/decode_bd_tgpr_eval92/wer_12_1.0": _kaldi_wer("%WER 4.71 [ 266 / 5643, 41 ins, 26 del, 199 sub ]"),
        "chain/tdnn_1b/decode_bd_tgpr_eval92/wer_9_0.0": "compute-wer: ERROR: No hypothesis for key u1\n",
        "chain/tdnn_1b/decode_bd_tgpr_eval92/scoring_kaldi/best_wer": "%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ]\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_collect_results_finds_every_decode_dir_and_the_best_of_a_sweep(tmp_path, caplog):
    exp = make_exp_tree(tmp_path / "exp")
    with caplog.at_level(logging.WARNING, logger="asrkit"):
        results = collect_results(exp)
    got = [(r.experiment, r.test_set, r.metric, r.language, r.value, r.partial, r.path.relative_to(exp).as_posix())
           for r in results]
    assert got == [
        ("chain/tdnn_1b", "bd_tgpr_eval92", "WER", "all", 4.71, False, "chain/tdnn_1b/decode_bd_tgpr_eval92/wer_11_0.5"),
        ("tdnn_1a", "test_clean", "WER", "en", 8.0, False, "tdnn_1a/decode_test_clean/wer_en"),
        ("tdnn_1a", "test_clean", "WER", "zh", 12.0, False, "tdnn_1a/decode_test_clean/wer_zh"),
        ("tdnn_1a", "test_clean", "WER", "all", 10.0, False, "tdnn_1a/decode_test_clean/wer"),
        ("tdnn_1a", "test_clean", "CER", "zh", 5.5, False, "tdnn_1a/decode_test_clean/cer_zh"),
        ("tdnn_1a", "test_other", "WER", "all", 20.0, True, "tdnn_1a/decode_test_other/wer"),
    ]
    assert results[0].line == "%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ]"
    assert "wer_9_0.0: no %WER line; skipped" in caplog.text


def test_plain_table(tmp_path):
    exp = make_exp_tree(tmp_path / "exp")
    assert format_results(collect_results(exp)) == (
        "experiment     test set        WER en  WER zh  WER all  CER zh\n"
        "chain/tdnn_1b  bd_tgpr_eval92       -       -     4.71       -\n"
        "tdnn_1a        test_clean        8.00   12.00    10.00    5.50\n"
        "tdnn_1a        test_other           -       -   20.00*       -\n"
        "\n"
        "* [PARTIAL]: some utterances of the test set had no hypothesis.\n")


def test_markdown_table(tmp_path):
    exp = make_exp_tree(tmp_path / "exp")
    assert format_results(collect_results(exp), markdown=True) == (
        "| experiment | test set | WER en | WER zh | WER all | CER zh |\n"
        "|---|---|---:|---:|---:|---:|\n"
        "| chain/tdnn_1b | bd_tgpr_eval92 | - | - | 4.71 | - |\n"
        "| tdnn_1a | test_clean | 8.00 | 12.00 | 10.00 | 5.50 |\n"
        "| tdnn_1a | test_other | - | - | 20.00* | - |\n"
        "\n"
        "\\* [PARTIAL]: some utterances of the test set had no hypothesis.\n")


def test_raw_lines_like_best_wer(tmp_path, monkeypatch):
    make_exp_tree(tmp_path / "exp")
    monkeypatch.chdir(tmp_path)
    assert format_results(collect_results("exp"), raw=True) == (
        "%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ] exp/chain/tdnn_1b/decode_bd_tgpr_eval92/wer_11_0.5\n"
        "%WER 8.00 [ 4 / 50, 1 ins, 1 del, 2 sub ] exp/tdnn_1a/decode_test_clean/wer_en\n"
        "%WER 12.00 [ 6 / 50, 0 ins, 1 del, 5 sub ] exp/tdnn_1a/decode_test_clean/wer_zh\n"
        "%WER 10.00 [ 10 / 100, 1 ins, 2 del, 7 sub ] exp/tdnn_1a/decode_test_clean/wer\n"
        "%WER 5.50 [ 11 / 200, 1 ins, 0 del, 10 sub ] exp/tdnn_1a/decode_test_clean/cer_zh\n"
        "%WER 20.00 [ 2 / 10, 0 ins, 2 del, 0 sub ] [PARTIAL] exp/tdnn_1a/decode_test_other/wer\n")


def test_table_without_partial_scores_has_no_footnote(tmp_path):
    exp = tmp_path / "exp"
    (exp / "m" / "decode").mkdir(parents=True)
    (exp / "m" / "decode" / "wer").write_text(_wer("%WER 3.00 [ 3 / 100, 1 ins, 1 del, 1 sub ]"))
    assert format_results(collect_results(exp)) == ("experiment  test set  WER all\n"
                                                     "m           decode       3.00\n")
    assert format_results([]) == ""


def test_read_wer_line_and_errors(tmp_path):
    f = tmp_path / "wer_7_0.0"
    f.write_text(_kaldi_wer("%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ]"))
    assert read_wer_line(f) == "%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ]"
    f.write_text("%SER 1.00 [ 1 / 100 ]\n")
    assert read_wer_line(f) is None
    with pytest.raises(AsrkitError, match="nope: no such folder"):
        collect_results(tmp_path / "nope")


def _seed_run(root: Path, wers: dict[str, float]) -> Path:
    for name, value in wers.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_wer(f"%WER {value:.2f} [ {int(value)} / 100, 0 ins, 0 del, {int(value)} sub ]"))
    return root


def test_seed_table_gives_mean_and_sample_sd_and_counts_missing_runs(tmp_path):
    runs = [collect_results(_seed_run(tmp_path / f"seed{s}", wers)) for s, wers in enumerate([
        {"mtl/decode_test/wer": 10.0, "lrmf/decode_test/wer": 20.0},
        {"mtl/decode_test/wer": 12.0, "lrmf/decode_test/wer": 26.0},
        {"mtl/decode_test/wer": 14.0},  # the third seed's lrmf has not been decoded
    ])]
    assert format_seed_results(runs, markdown=True) == (
        "| experiment | test set | WER all |\n"
        "|---|---|---:|\n"
        "| lrmf | test | 23.00 ± 4.24 (n=2) |\n"
        "| mtl | test | 12.00 ± 2.00 |\n")
    assert format_seed_results([runs[0]]).splitlines()[-1].split() == ["mtl", "test", "10.00", "±", "nan"]


def test_results_command_with_several_roots_is_the_seed_table(tmp_path):
    roots = [_seed_run(tmp_path / f"seed{s}", {"mtl/decode_test/wer": v}) for s, v in enumerate([10.0, 12.0, 14.0])]
    result = CliRunner().invoke(cli, ["results", *map(str, roots)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].split() == ["mtl", "test", "12.00", "±", "2.00"]
    raw = CliRunner().invoke(cli, ["results", "--raw", *map(str, roots)])
    assert raw.exit_code == 2 and "--raw takes one EXP_ROOT" in raw.output
