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


def scored_dir(tmp_path):
    """(data dir, decode dir with text and n-best lists) of REF and NBEST."""
    data, decode = tmp_path / "data", tmp_path / "decode_test"
    data.mkdir()
    decode.mkdir()
    (data / "text").write_text(REF)
    (decode / "text").write_text("u1 the cat sad\nu2 hello world\n")
    write_nbest(decode, NBEST)
    return data, decode


def test_score_cli_prints_the_best_weight(tmp_path, asrkit_cli):
    data, decode = scored_dir(tmp_path)
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


def sweep_files(decode) -> list[str]:
    return sorted(p.name for p in decode.glob("wer_*_*"))


def test_a_new_grid_removes_only_the_sweep_files_asrkit_wrote(tmp_path):
    data, decode = scored_dir(tmp_path)
    kaldi = "compute-wer --text --mode=present ark:test_filt.txt ark,p:-\n%WER 9.00 [ 9 / 100, 0 ins, 0 del, 9 sub ]\n"
    (decode / "wer_10_0.5").write_text(kaldi)  # a Kaldi sweep's file
    (decode / "wer_7_0").write_text("my notes\n")  # a user's file of a sweep name
    score_decode_dir(data, decode, lm_weights=(0.0, 0.5, 1.0), word_penalties=(0.0, 0.5))
    assert sweep_files(decode) == ["wer_0.5_0", "wer_0.5_0.5", "wer_0_0", "wer_0_0.5", "wer_10_0.5", "wer_1_0",
                                   "wer_1_0.5", "wer_7_0"]
    (decode / "wer_1_0.5").write_text("edited by hand\n")  # asrkit's once, changed since: the user's now
    score_decode_dir(data, decode, lm_weights=(0.5,), word_penalties=(0.0,))
    assert sweep_files(decode) == ["wer_0.5_0", "wer_10_0.5", "wer_1_0.5", "wer_7_0"]
    assert (decode / "wer_10_0.5").read_text() == kaldi and (decode / "wer_7_0").read_text() == "my notes\n"
    assert (decode / "wer_1_0.5").read_text() == "edited by hand\n"
    # a grid that would replace a file asrkit did not write: refused before anything is written
    before = {p.name: p.read_text() for p in decode.iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match=r"wer_7_0: not written by asrkit score \(or changed since\), and the "
                                          r"sweep would replace it; move it away first"):
        score_decode_dir(data, decode, lm_weights=(7.0, 0.5), word_penalties=(0.0,))
    assert {p.name: p.read_text() for p in decode.iterdir() if p.is_file() and p.name not in ("wer", "per_utt")} == \
        {k: v for k, v in before.items() if k not in ("wer", "per_utt")}
    # the record lists what asrkit wrote: a copy of its output under another grid name is the user's
    (decode / "wer_2_0").write_text((decode / "wer_0.5_0").read_text())
    with pytest.raises(ConfigError, match=r"wer_2_0: not written by asrkit score"):
        score_decode_dir(data, decode, lm_weights=(2.0,), word_penalties=(0.0,))


def test_a_decode_without_nbest_lists_drops_the_earlier_sweep(tmp_path):
    import shutil

    data, decode = scored_dir(tmp_path)
    score_decode_dir(data, decode, lm_weights=(0.0, 1.0), word_penalties=(0.0,))
    (decode / "wer_10_0.5").write_text("compute-wer --text ...\n%WER 9.00 [ 9 / 100, 0 ins, 0 del, 9 sub ]\n")
    shutil.rmtree(decode / "nbest")  # decoded again without --lm
    reports = score_decode_dir(data, decode)
    assert set(reports) == {"wer"} and sweep_files(decode) == ["wer_10_0.5"]
    assert not (decode / "best_wer").exists() and not (decode / ".wer_sweep").exists()


def test_sweep_files_from_before_the_record_are_recognised_by_their_format(tmp_path):
    data, decode = scored_dir(tmp_path)
    score_decode_dir(data, decode, lm_weights=(0.0, 1.0), word_penalties=(0.0, 0.5))
    (decode / ".wer_sweep").unlink()  # as a decode dir scored by an asrkit that kept no record
    (decode / "wer_3_0").write_text("a user's file\n")
    score_decode_dir(data, decode, lm_weights=(0.5,), word_penalties=(0.0,))
    assert sweep_files(decode) == ["wer_0.5_0", "wer_3_0"]
