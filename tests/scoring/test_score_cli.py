"""`asrkit score` and `asrkit results`: output, exit codes and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.scoring.test_results import make_exp_tree


def _dirs(tmp_path: Path, kaldi_fixtures: Path, hyp: str) -> tuple[Path, Path]:
    data, decode = tmp_path / "data", tmp_path / "exp" / "m" / "decode_test"
    data.mkdir()
    decode.mkdir(parents=True)
    shutil.copy(kaldi_fixtures / "ref.txt", data / "text")
    shutil.copy(kaldi_fixtures / hyp, decode / "text")
    return data, decode


def test_score_prints_wer_lines_and_writes_kaldi_files(tmp_path, kaldi_fixtures, asrkit_cli):
    data, decode = _dirs(tmp_path, kaldi_fixtures, "hyp.txt")
    (data / "utt2lang").write_text("u1 en\nu2 en\nu3 fr\n")
    proc = asrkit_cli("score", "--data", "data", "--decode-dir", "exp/m/decode_test", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("%WER 50.00 [ 6 / 12, 3 ins, 1 del, 2 sub ] exp/m/decode_test/wer\n"
                           "%WER 37.50 [ 3 / 8, 1 ins, 1 del, 1 sub ] exp/m/decode_test/wer_en\n"
                           "%WER 75.00 [ 3 / 4, 2 ins, 0 del, 1 sub ] exp/m/decode_test/wer_fr\n")
    assert (decode / "wer").read_bytes() == (kaldi_fixtures / "wer_present.out").read_bytes()
    log = (decode / "log" / "score.log").read_text()
    assert log.startswith("# ") and "# Ended (code 0)" in log


def test_score_reports_missing_hypotheses_on_stderr(tmp_path, kaldi_fixtures, asrkit_cli):
    data, decode = _dirs(tmp_path, kaldi_fixtures, "hyp_missing.txt")
    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode, "--mode", "all", "--no-cer")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"%WER 58.33 [ 7 / 12, 3 ins, 2 del, 2 sub ] [PARTIAL] {decode.as_posix()}/wer\n"
    assert "1 of 3 utterances" in proc.stderr and "no hypothesis" in proc.stderr and "(u2)" in proc.stderr
    assert (decode / "wer").read_bytes() == (kaldi_fixtures / "wer_all_missing.out").read_bytes()


def test_score_errors_are_one_line_with_status_1(tmp_path, kaldi_fixtures, asrkit_cli):
    data, decode = _dirs(tmp_path, kaldi_fixtures, "hyp_missing.txt")
    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode, "--mode", "strict")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (f"asrkit score: error: {decode}/text: no hypothesis for utterance "
                                            f"'u2' (--mode strict)")
    assert "Traceback" not in proc.stderr

    (decode / "text").unlink()
    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == f"asrkit score: error: {decode}/text: no such file"

    shutil.copy(kaldi_fixtures / "hyp.txt", decode / "text")
    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode, "--filter", "exit 4")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (f"asrkit score: error: filter command 'exit 4' failed on {data}/text "
                                            f"(exit status 4)")

    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode, "--mode", "sometimes")
    assert proc.returncode == 2 and "'sometimes' is not one of" in proc.stderr


def test_results_command(tmp_path, asrkit_cli):
    make_exp_tree(tmp_path / "exp")
    proc = asrkit_cli("results", "exp", "--markdown", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:3] == ["| experiment | test set | WER en | WER zh | WER all | CER zh |",
                                            "|---|---|---:|---:|---:|---:|",
                                            "| chain/tdnn_1b | bd_tgpr_eval92 | - | - | 4.71 | - |"]
    proc = asrkit_cli("results", "exp", "--raw", cwd=tmp_path)
    assert proc.stdout.splitlines()[0] == ("%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ] "
                                           "exp/chain/tdnn_1b/decode_bd_tgpr_eval92/wer_11_0.5")

    (tmp_path / "empty").mkdir()
    proc = asrkit_cli("results", "empty", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("asrkit results: error: empty: no scored decode dir "
                                   "(no decode*/wer* or cer* file with a %WER line)")
