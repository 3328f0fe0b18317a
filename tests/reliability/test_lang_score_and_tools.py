"""`asrkit make-lang`, `asrkit score` and the small tools (average-checkpoints, export, plot, results,
prune, prune-stats) on bad input: one error line naming the file:line or key, nothing half written."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import (
    assert_no_partial_output,
    assert_one_line_error,
    copy_dir,
    edit_line,
    file_size_limit,
    run_cli,
    snapshot,
)


def _not_utf8(path, line=2):
    raw = path.read_bytes().split(b"\n")
    raw[line] += b" \xff\xfe"
    path.write_bytes(b"\n".join(raw))


LANG_CASES = {
    "missing-text": (lambda d: (d / "text").unlink(), r"data/text"),
    "missing-utt2lang": (lambda d: (d / "utt2lang").unlink(), r"data/utt2lang"),
    "not-utf8": (lambda d: _not_utf8(d / "text"), r"data/text:3: not valid UTF-8"),
    "cr-line-endings": (lambda d: (d / "text").write_text((d / "text").read_text().replace("\n", "\r\n")),
                        r"data/text:1: carriage return \(CR\) in line"),
    "duplicate-keys": (lambda d: (d / "text").write_text((d / "text").read_text().splitlines(keepends=True)[0]
                                                        + (d / "text").read_text()),
                       r"data/text:2: duplicate key 'despk0-000'"),
}


@pytest.mark.parametrize("case", list(LANG_CASES))
def test_make_lang_bad_transcripts(case, feats_dir, tmp_path):
    breaker, message = LANG_CASES[case]
    data = copy_dir(feats_dir, tmp_path / "data")
    breaker(data)
    assert_one_line_error(run_cli("make-lang", "--type", "char", data, tmp_path / "lang"), "make-lang", message)
    assert not (tmp_path / "lang").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lang")]  # no staging folder left


def test_make_lang_disk_full_and_unwritable(feats_dir, tmp_path):
    with file_size_limit(100):  # a sentencepiece model is a few kB
        res = run_cli("make-lang", "--type", "char", feats_dir, tmp_path / "lang")
    assert_one_line_error(res, "make-lang", r"lang/de/tokens\.model: cannot write: File too large")
    assert not (tmp_path / "lang").exists() and list(tmp_path.iterdir()) == []
    (tmp_path / "a_file").write_text("")
    res = run_cli("make-lang", "--type", "char", feats_dir, tmp_path / "a_file" / "lang")
    assert_one_line_error(res, "make-lang", r"a_file.*: (Not a directory|File exists)")


def test_make_lang_failed_rebuild_keeps_the_old_lang_dir(feats_dir, tmp_path):
    lang = tmp_path / "lang"
    assert run_cli("make-lang", "--type", "char", feats_dir, lang).returncode == 0
    before = snapshot(lang)
    with file_size_limit(100):
        res = run_cli("make-lang", "--type", "char", "--overwrite", feats_dir, lang)
    assert_one_line_error(res, "make-lang", r"tokens\.model: cannot write: File too large")
    assert_no_partial_output(lang, before)


@pytest.fixture(scope="module")
def decoded(model, feats_dir, tmp_path_factory):
    """A decode dir of the tiny model on the toy data (its `text` holds the hypotheses)."""
    out = tmp_path_factory.mktemp("score") / "decode"
    assert run_cli("decode", "--model", model, "--data", feats_dir, "--out-dir", out).returncode == 0
    return out


def _score_inputs(feats_dir, decoded, tmp_path):
    return copy_dir(feats_dir, tmp_path / "data"), copy_dir(decoded, tmp_path / "decode")


SCORE_CASES = {
    "missing-hypotheses": (lambda d, h: (h / "text").unlink(), r"decode/text: no such file"),
    "hypotheses-not-utf8": (lambda d, h: _not_utf8(h / "text", 4), r"decode/text:5: not valid UTF-8"),
    "duplicate-hypothesis": (lambda d, h: (h / "text").write_text((h / "text").read_text().splitlines(keepends=True)[0]
                                                                  + (h / "text").read_text()),
                             r"decode/text:2: duplicate key"),
    "references-cr": (lambda d, h: (d / "text").write_text((d / "text").read_text().replace("\n", "\r\n")),
                      r"data/text:1: carriage return \(CR\) in line"),
    "missing-references": (lambda d, h: (d / "text").unlink(), r"data/text"),
}


@pytest.mark.parametrize("case", list(SCORE_CASES))
def test_score_bad_input(case, feats_dir, decoded, tmp_path):
    breaker, message = SCORE_CASES[case]
    data, dec = _score_inputs(feats_dir, decoded, tmp_path)
    breaker(data, dec)
    before = snapshot(dec)
    assert_one_line_error(run_cli("score", "--data", data, "--decode-dir", dec), "score", message)
    assert_no_partial_output(dec, {k: v for k, v in before.items() if k != "text"} if case == "missing-hypotheses"
                             else before)


def test_score_strict_mode_names_the_missing_utterance(feats_dir, decoded, tmp_path):
    data, dec = _score_inputs(feats_dir, decoded, tmp_path)
    missing = edit_line(dec / "text", 3, None).split()[0]
    res = run_cli("score", "--data", data, "--decode-dir", dec, "--mode", "strict")
    assert_one_line_error(res, "score", missing)
    assert not (dec / "wer").exists()


def test_score_accepts_unsorted_hypotheses(feats_dir, decoded, tmp_path):
    """Decision: score reads tables by key (as compute-wer does), so line order does not matter; the
    stages that split data dirs by speaker (make-feats, data split) do require C-sorted files."""
    data, dec = _score_inputs(feats_dir, decoded, tmp_path)
    assert run_cli("score", "--data", data, "--decode-dir", dec).returncode == 0
    sorted_wer = (dec / "wer").read_text()
    (dec / "text").write_text("".join(reversed((dec / "text").read_text().splitlines(keepends=True))))
    assert run_cli("score", "--data", data, "--decode-dir", dec).returncode == 0
    assert (dec / "wer").read_text() == sorted_wer


def test_tools_on_the_wrong_files(model, tmp_path):
    res = run_cli("export", "--model", model, "--lang", "de", "--out", tmp_path / "x.pt")
    assert_one_line_error(res, "export", r"final\.pt: no language masks \(make the model with `asrkit prune`\)")
    assert_one_line_error(run_cli("prune-stats", model.parent), "prune-stats", r"final\.pt: not an asrkit mask file")
    assert_one_line_error(run_cli("plot", tmp_path / "noexp"), "plot",
                          r"noexp/log/metrics\.jsonl: no training metrics")
    assert_one_line_error(run_cli("results", tmp_path / "noexp"), "results", r"noexp: no such folder")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    res = run_cli("average-checkpoints", "--out", tmp_path / "avg.pt", model, tmp_path / "junk.pt")
    assert_one_line_error(res, "average-checkpoints", r"junk\.pt: not a readable model file")
    assert not (tmp_path / "avg.pt").exists()
    res = run_cli("prune", "--method", "agnostic", "--model", tmp_path / "junk.pt", "--sparsity", "0.5",
                  "--train-data", tmp_path, "--out-dir", tmp_path / "pruned")
    assert_one_line_error(res, "prune", r"junk\.pt: not a readable model file")
