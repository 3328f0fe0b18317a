"""recipes/digits/local/pseudo_label.py: one-word pseudo-labels and confidences from warp-averaged posteriors."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import numpy as np

from asrkit.kaldi.writer import ArkScpWriter
from asrkit.text.tokenizer import make_lang_dir
from tests.conftest import REPO

SCRIPT = REPO / "recipes" / "digits" / "local" / "pseudo_label.py"


def _module():
    spec = importlib.util.spec_from_file_location("pseudo_label", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _brute_force(post: np.ndarray, blank: int, word: int) -> float:
    """P(<word>) summed over every frame labelling that CTC collapses to the one word."""
    total = 0.0
    for path in itertools.product([blank, word], repeat=post.shape[0]):
        if word in path:  # blanks and one run or several runs of the word: several runs would be "w w"
            runs = sum(1 for i, t in enumerate(path) if t == word and (i == 0 or path[i - 1] != word))
            if runs == 1:
                total += float(np.prod([post[t, s] for t, s in enumerate(path)]))
    return total


def test_word_log_probs_is_the_ctc_sum_over_one_word_paths():
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(4), size=5)  # 5 frames, blank 0 and words 1-3
    got = _module().word_log_probs(post, 0, [1, 2, 3])
    want = [np.log(_brute_force(post, 0, w)) for w in (1, 2, 3)]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_select_keeps_the_most_confident_fraction_of_every_hypothesised_word():
    hyp = np.array([0, 0, 0, 0, 1, 1, 2])
    conf = np.array([0.5, 0.9, 0.7, 0.6, 0.3, 0.8, 0.1])
    assert list(_module().select(hyp, conf, 0.5)) == [1, 2, 5, 6]  # word 2's one file is kept too


def _loglikes(tmp_path, frames: dict[str, list[list[float]]]) -> None:
    """frames: {key: per frame the posteriors of <blk> <unk> one three two (the lang's token order)}."""
    (tmp_path / "ll").mkdir()
    with ArkScpWriter(tmp_path / "ll" / "loglikes.ark", tmp_path / "ll" / "loglikes.scp") as w:
        for key, rows in frames.items():
            w.write(key, np.log(np.asarray(rows)).astype(np.float32))


def _run(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], env=env, capture_output=True, text=True)


def test_cli_writes_scores_and_the_kept_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a-1 one\na-2 two\na-3 three\n")
    (data / "utt2lang").write_text("a-1 en\na-2 en\na-3 en\n")
    lang = make_lang_dir([data], tmp_path / "lang", token_type="word")
    assert [p.lstrip("\u2581") for p in lang.tokenizer("en").pieces()] == ["<blk>", "<unk>", "one", "three", "two"]
    sure_one, unsure_one = [0.04, 0.01, 0.9, 0.03, 0.02], [0.09, 0.01, 0.5, 0.2, 0.2]
    sure_two = [0.04, 0.01, 0.02, 0.03, 0.9]
    blank = [0.95, 0.01, 0.01, 0.02, 0.01]
    # a-1 and a-2 read "one" (a-1 surer, also at warp 0.9), a-3 "two"; the truth does not enter.
    _loglikes(tmp_path, {"a-1": [blank, sure_one, blank], "w0.9-a-1": [blank, sure_one, blank],
                         "a-2": [blank, unsure_one, blank], "w0.9-a-2": [blank, unsure_one, blank],
                         "a-3": [blank, sure_two, blank], "w0.9-a-3": [blank, sure_two, blank]})
    proc = _run(tmp_path, "--keep", "0.5", tmp_path / "lang", tmp_path / "ll", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    scores = [ln.split() for ln in (tmp_path / "out" / "scores").read_text().splitlines()]
    assert [(s[0], s[1]) for s in scores] == [("a-1", "one"), ("a-2", "one"), ("a-3", "two")]
    assert float(scores[0][2]) > float(scores[1][2]) > 0.5
    assert (tmp_path / "out" / "text").read_text() == "a-1 one\na-3 two\n"


def test_cli_errors_name_the_problem(tmp_path):
    proc = _run(tmp_path, "--keep", "0", tmp_path / "lang", tmp_path / "ll", tmp_path / "out")
    assert proc.returncode != 0 and "--keep 0.0: expected a fraction in (0, 1]" in proc.stderr
    proc = _run(tmp_path, tmp_path / "lang", tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode != 0 and "nowhere/loglikes.scp: no such file" in proc.stderr


def test_cli_labels_from_an_ensemble_of_models(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a-1 one\na-2 two\na-3 three\n")  # the tokens of _loglikes' columns
    (data / "utt2lang").write_text("a-1 en\na-2 en\na-3 en\n")
    make_lang_dir([data], tmp_path / "lang", token_type="word")
    blank = [0.95, 0.01, 0.01, 0.02, 0.01]
    one, two = [0.04, 0.01, 0.9, 0.03, 0.02], [0.04, 0.01, 0.02, 0.03, 0.9]
    # a-1: the first model says "two", the other two "one"; a-2 "two" in all three.
    for name, first in (("m1", two), ("m2", one), ("m3", one)):
        (tmp_path / name).mkdir()
        _loglikes(tmp_path / name, {"a-1": [blank, first, blank], "a-2": [blank, two, blank]})
    proc = _run(tmp_path, "--keep", "1", tmp_path / "lang", *(tmp_path / m / "ll" for m in ("m1", "m2", "m3")),
                tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    scores = [ln.split() for ln in (tmp_path / "out" / "scores").read_text().splitlines()]
    assert [(s[0], s[1]) for s in scores] == [("a-1", "one"), ("a-2", "two")]
    assert float(scores[1][2]) > float(scores[0][2])  # a-1's models disagree: less confident


def test_ensemble_members_must_decode_the_same_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a-1 one\na-2 two\na-3 three\n")
    (data / "utt2lang").write_text("a-1 en\na-2 en\na-3 en\n")
    make_lang_dir([data], tmp_path / "lang", token_type="word")
    frames = [[0.95, 0.01, 0.01, 0.02, 0.01], [0.04, 0.01, 0.9, 0.03, 0.02]]
    for name, utts in (("m1", ["a-1", "a-2"]), ("m2", ["a-1"])):
        (tmp_path / name).mkdir()
        _loglikes(tmp_path / name, {u: frames for u in utts})
    proc = _run(tmp_path, tmp_path / "lang", tmp_path / "m1" / "ll", tmp_path / "m2" / "ll", tmp_path / "out")
    assert proc.returncode != 0
    assert "m2/ll/loglikes.scp: 1 utterance(s) not in both it and" in proc.stderr and "e.g. a-2" in proc.stderr
    assert not (tmp_path / "out" / "scores").exists()
