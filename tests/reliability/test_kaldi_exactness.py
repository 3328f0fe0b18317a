"""Issue 17 F: one path policy for every scp asrkit writes (absolute, so that a Kaldi binary run
from another folder finds the archives). The byte-for-byte checks against real Kaldi are beside
their code: `tests/kaldi/test_table.py::test_compressed_writer_is_kaldis_byte_for_byte`,
`tests/kaldi/test_cmvn.py` (stats and apply-cmvn, bit-exact) and
`tests/features/test_cmvn.py::test_compute_cmvn_per_speaker_and_global` (the per-speaker ark, byte
for byte; the global one a float matrix, as compute-cmvn-stats writes it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.conftest import copy_dir, run_cli


def _archives(scp: Path) -> list[str]:
    return [line.split(maxsplit=1)[1].rsplit(":", 1)[0] for line in scp.read_text().splitlines()]


def _assert_absolute(scp: Path) -> None:
    archives = _archives(scp)
    assert archives and all(os.path.isabs(a) and Path(a).is_file() for a in archives), archives


@pytest.mark.parametrize("command, scp", [("decode", "loglikes.scp"), ("dump-posteriors", "post.scp")])
def test_scps_hold_absolute_paths_whatever_the_working_folder(command, scp, model, feats_dir, tmp_path, monkeypatch):
    copy_dir(feats_dir, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    extra = ["--output", "loglikes"] if command == "decode" else []
    res = run_cli(command, "--model", model, "--data", "data", "--out-dir", "out", *extra)
    assert res.returncode == 0, res.stderr
    _assert_absolute(tmp_path / "out" / scp)  # loglikes.scp was relative to the folder decode ran in


def test_feature_and_cmvn_scps_too(wav_dir, tmp_path, monkeypatch):
    copy_dir(wav_dir, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert run_cli("make-feats", "data", "--feat-dir", "fd").returncode == 0
    assert run_cli("compute-cmvn", "data", "--feat-dir", "cmvn").returncode == 0
    for scp in ("data/feats.scp", "data/cmvn.scp"):
        _assert_absolute(tmp_path / scp)
