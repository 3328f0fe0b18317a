"""Issue 17 "Also": the exit statuses docs/index.md promises (1 for an error, 2 for a command
line click cannot parse, 130 for Ctrl-C), and help texts that name what the user types."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO
from tests.reliability.conftest import run_cli


def test_exit_statuses_are_the_documented_ones(tmp_path, monkeypatch):
    res = run_cli("make-feats", "--no-such-option", tmp_path)
    assert res.returncode == 2 and res.stderr.splitlines()[0].startswith("Usage: asrkit make-feats")
    assert res.stderr.rstrip().splitlines()[-1].startswith("Error: No such option")
    res = run_cli("data", "info", tmp_path / "nothing")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1

    import asrkit.kaldi.datadir as datadir

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(datadir, "data_dir_info", interrupted)
    res = run_cli("data", "info", tmp_path)
    assert res.returncode == 130 and res.stderr.strip() == "asrkit: interrupted"
    index = (REPO / "docs" / "index.md").read_text()
    assert "exit status 2" in index and "exit status 130" in index


def _help(*command) -> str:
    res = run_cli(*command, "--help")
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_make_lang_help_names_its_arguments():
    assert "Usage: asrkit make-lang [OPTIONS] DATA_DIR... LANG_DIR" in _help("make-lang")


@pytest.mark.parametrize("option, kind", [("--train-data", "DIRECTORY"), ("--valid-data", "DIRECTORY"),
                                          ("--lang", "DIRECTORY"), ("--out-dir", "DIRECTORY"),
                                          ("--config", "FILE"), ("--init-from", "FILE")])
def test_train_help_types_its_paths_as_decode_does(option, kind):
    assert re.search(rf"{option} {kind}\b", _help("train")), option


def test_dump_posteriors_help_names_the_recipes_student_config():
    text = _help("dump-posteriors")
    names = set(re.findall(r"conf/(\w+\.yaml)", text))
    assert names == {"student_dnn.yaml"}
    assert (REPO / "recipes" / "synth" / "conf" / "student_dnn.yaml").is_file()


def test_run_sh_header_lists_every_size():
    header = (REPO / "recipes" / "synth" / "run.sh").read_text().splitlines()[3]
    assert "--size tiny|demo|small|full" in header
