"""recipes/digits/local/warp_average.py: test-time VTLN averaging of CTC posteriors over warped copies."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from asrkit.kaldi.writer import ArkScpWriter
from asrkit.text.tokenizer import LangDir, make_lang_dir
from tests.conftest import REPO

SCRIPT = REPO / "recipes" / "digits" / "local" / "warp_average.py"


def _lang(tmp_path) -> LangDir:
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a-1 one\na-2 two\na-3 three\n")
    (data / "utt2lang").write_text("a-1 en\na-2 en\na-3 en\n")
    return make_lang_dir([data], tmp_path / "lang", token_type="word")


def _loglikes(tmp_path, lang: LangDir, posts: dict[str, list[str]]) -> None:
    """posts: {key: the best token of each frame}; each frame puts 0.6 on it, the rest spread."""
    ids = {p.lstrip("\u2581"): i for i, p in enumerate(lang.tokenizer("en").pieces())}
    ids["-"] = 0  # blank
    dim = len(ids) - 1
    (tmp_path / "ll").mkdir()
    with ArkScpWriter(tmp_path / "ll" / "loglikes.ark", tmp_path / "ll" / "loglikes.scp") as w:
        for key, frames in posts.items():
            p = np.full((len(frames), dim), 0.4 / (dim - 1))
            for t, tok in enumerate(frames):
                p[t, ids[tok]] = 0.6
            w.write(key, np.log(p).astype(np.float32))


def _run(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], env=env, capture_output=True, text=True)


def test_average_over_warps_decides_by_the_mean_posterior(tmp_path):
    lang = _lang(tmp_path)
    # a-1: two of three warps say "one" -> one. a-2: one copy at 1.0, one at 0.9 disagree in one frame
    # each; the third breaks the tie. Repeats merge and blanks drop as in greedy CTC.
    _loglikes(tmp_path, lang, {
        "a-1": ["-", "one", "one", "-"], "w0.9-a-1": ["-", "two", "two", "-"], "w1.1-a-1": ["-", "-", "one", "-"],
        "a-2": ["two", "-", "-", "three"], "w0.9-a-2": ["two", "-", "-", "-"], "w1.1-a-2": ["-", "-", "-", "three"],
    })
    proc = _run(tmp_path, tmp_path / "lang", tmp_path / "ll", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "text").read_text() == "a-1 one\na-2 two three\n"


def test_copies_with_other_framing_are_an_error(tmp_path):
    lang = _lang(tmp_path)
    _loglikes(tmp_path, lang, {"a-1": ["-", "one"], "w0.9-a-1": ["-", "one", "-"]})
    proc = _run(tmp_path, tmp_path / "lang", tmp_path / "ll", tmp_path / "out")
    assert proc.returncode != 0
    assert "w0.9-a-1 has 3 frames, other warps of a-1 2" in proc.stderr
    assert not (tmp_path / "out" / "text").exists()


def test_missing_loglikes_name_the_file(tmp_path):
    _lang(tmp_path)
    proc = _run(tmp_path, tmp_path / "lang", tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode != 0 and "nowhere/loglikes.scp: no such file" in proc.stderr


def test_utterances_with_other_numbers_of_copies_are_an_error(tmp_path):
    lang = _lang(tmp_path)
    _loglikes(tmp_path, lang, {"a-1": ["one"], "w0.9-a-1": ["one"], "a-2": ["two"]})
    proc = _run(tmp_path, tmp_path / "lang", tmp_path / "ll", tmp_path / "out")
    assert proc.returncode != 0 and "different numbers of warped copies (1 to 2)" in proc.stderr
