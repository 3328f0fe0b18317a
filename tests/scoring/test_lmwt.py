"""Scoring over LM weights and word penalties from n-best lists (Kaldi's local/score.sh sweep)."""

from __future__ import annotations

import pytest

from asrkit.errors import ConfigError, FormatError
from asrkit.scoring.lmwt import best_hypotheses, parse_grid, read_nbest
from asrkit.scoring.report import score_decode_dir
from asrkit.scoring.results import collect_results


def write_nbest(decode, entries: dict[str, list[tuple[str, float, float]]]) -> None:
    """entries: {utt: [(words, ac_cost, lm_cost), ...] best first}."""
    (decode / "nbest").mkdir(parents=True)
    rows = [(f"{u}-{n}", e) for u, es in entries.items() for n, e in enumerate(es, start=1)]
    (decode / "nbest" / "text").write_text("".join(f"{k} {e[0]}\n".replace(" \n", "\n") for k, e in rows))
    (decode / "nbest" / "ac_cost").write_text("".join(f"{k} {e[1]}\n" for k, e in rows))
    (decode / "nbest" / "lm_cost").write_text("".join(f"{k} {e[2]}\n" for k, e in rows))


# The references are "a cat sat" and "hello world"; the acoustics prefer "the cat sad" for u1, the
# LM "a cat sat" and, for u2, "hello word".
NBEST = {
    "u1": [("the cat sad", 10.0, 12.0), ("a cat sat", 11.0, 9.0), ("a cat sat on", 11.5, 9.5)],
    "u2": [("hello world", 5.0, 6.0), ("hello word", 6.0, 4.0)],
}
REF = "u1 a cat sat\nu2 hello world\n"


def test_best_hypothesis_per_weight_and_penalty(tmp_path):
    write_nbest(tmp_path, NBEST)
    nbest = read_nbest(tmp_path / "nbest")
    assert [e.words for e in nbest["u1"]] == [("the", "cat", "sad"), ("a", "cat", "sat"), ("a", "cat", "sat", "on")]
    assert best_hypotheses(nbest, 0.0, 0.0) == {"u1": ["the", "cat", "sad"], "u2": ["hello", "world"]}
    # weight 1: u1 "a cat sat" 20 < "a cat sat on" 21 < "the cat sad" 22; u2 "hello word" 10 < 11
    assert best_hypotheses(nbest, 1.0, 0.0) == {"u1": ["a", "cat", "sat"], "u2": ["hello", "word"]}
    # weight 0.1, penalty -3 (a bonus per word): "a cat sat on" 11.5 + 0.95 - 12 beats the others
    assert best_hypotheses(nbest, 0.1, -3.0)["u1"] == ["a", "cat", "sat", "on"]


def test_score_writes_the_sweep_and_best_wer(tmp_path):
    data, decode = tmp_path / "data", tmp_path / "exp" / "m" / "decode_test"
    data.mkdir()
    decode.mkdir(parents=True)
    (data / "text").write_text(REF)
    (decode / "text").write_text("u1 the cat sad\nu2 hello world\n")
    write_nbest(decode, NBEST)
    (decode / "wer_9_9").write_text("stale\n")
    reports = score_decode_dir(data, decode, lm_weights=(0.0, 0.5, 1.0), word_penalties=(0.0, 0.5))
    sweep = sorted(p.name for p in decode.glob("wer_*_*"))
    assert sweep == ["wer_0.5_0", "wer_0.5_0.5", "wer_0_0", "wer_0_0.5", "wer_1_0", "wer_1_0.5"]
    # weight 0.5: u1 "a cat sat" 15.5 < 16 (the cat sad), u2 "hello world" 8 = "hello word" 8 (earlier rank)
    assert (decode / "wer_0.5_0").read_text().startswith("%WER 0.00 [ 0 / 5, 0 ins, 0 del, 0 sub ]")
    assert (decode / "wer_0_0").read_text().startswith("%WER 40.00 [ 2 / 5")
    assert (decode / "best_wer").read_text() == f"%WER 0.00 [ 0 / 5, 0 ins, 0 del, 0 sub ] {decode.as_posix()}/wer_0.5_0\n"
    assert set(reports) == {"wer", "wer_0.5_0"}
    # `asrkit results` keeps the best of the sweep, as best_wer.sh
    (best,) = collect_results(tmp_path / "exp")
    assert best.value == 0.0 and best.path.name == "wer_0.5_0"


def test_score_cli_prints_the_best_weight(tmp_path, asrkit_cli):
    data, decode = tmp_path / "data", tmp_path / "decode_test"
    data.mkdir()
    decode.mkdir()
    (data / "text").write_text(REF)
    (decode / "text").write_text("u1 the cat sad\nu2 hello world\n")
    write_nbest(decode, NBEST)
    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode, "--lm-weights", "0,0.5", "--word-penalties", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"%WER 0.00 [ 0 / 5, 0 ins, 0 del, 0 sub ] {decode.as_posix()}/wer_0.5_0"
    proc = asrkit_cli("score", "--data", data, "--decode-dir", decode, "--lm-weights", "a,b")
    assert proc.returncode == 1 and "--lm-weights must be comma-separated numbers" in proc.stderr


def test_bad_nbest_tables(tmp_path):
    write_nbest(tmp_path, {"u1": [("a", 1.0, 2.0)]})
    (tmp_path / "nbest" / "lm_cost").write_text("u1-1 x\n")
    with pytest.raises(FormatError, match=r"lm_cost: cost of 'u1-1' is not a number"):
        read_nbest(tmp_path / "nbest")
    (tmp_path / "nbest" / "text").write_text("u1 a\n")
    with pytest.raises(FormatError, match="not <utt>-<n>"):
        read_nbest(tmp_path / "nbest")
    with pytest.raises(ConfigError, match="no values"):
        parse_grid(" , ", "--lm-weights")
