"""The install smoke check (`python -m asrkit.envcheck`, run by `make install` and before the tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from asrkit import envcheck

REPO = Path(__file__).resolve().parents[1]


def _run_envcheck(extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*([str(extra_path)] if extra_path else []), str(REPO)])
    return subprocess.run([sys.executable, "-m", "asrkit.envcheck"], env=env, capture_output=True, text=True,
                          timeout=300)


def test_check_passes_in_this_environment():
    assert envcheck.check_environment() is None


@pytest.mark.slow  # a fresh interpreter importing torch and torchaudio
def test_ok_line_names_the_versions():
    proc = _run_envcheck()
    assert proc.returncode == 0, proc.stderr
    assert f"torch {metadata.version('torch')}" in proc.stdout
    assert f"torchaudio {metadata.version('torchaudio')}" in proc.stdout


@pytest.mark.slow  # a fresh interpreter importing torch
def test_torchaudio_library_that_cannot_load_gives_one_line(tmp_path):
    # A stand-in torchaudio that fails the way a torchaudio built for another torch does: torch's
    # library loader wraps the dynamic linker's error. The real venv is left alone.
    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent("""
        try:
            raise OSError("/venv/torchaudio/lib/libtorchaudio.so: undefined symbol: "
                          "torch_exception_get_what_without_backtrace")
        except OSError as e:
            raise OSError("Could not load this library: /venv/torchaudio/lib/libtorchaudio.so") from e
    """))
    proc = _run_envcheck(tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("asrkit install check failed: torchaudio's compiled ops")
    assert f"torchaudio {metadata.version('torchaudio')}" in line
    assert f"torch {metadata.version('torch')}" in line
    assert "Could not load this library" in line
    assert "undefined symbol: torch_exception_get_what_without_backtrace" in line
    assert "make clean && make install" in line


def test_missing_module_is_named(tmp_path, monkeypatch):
    def boom():
        raise ModuleNotFoundError("No module named 'sentencepiece'")

    monkeypatch.setattr(envcheck, "CHECKS", [("sentencepiece", ("sentencepiece",), boom)])
    problem = envcheck.check_environment()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("asrkit install check failed: sentencepiece (sentencepiece ")
    assert "No module named 'sentencepiece'" in problem


def test_wrong_result_is_a_failure(monkeypatch):
    def wrong():
        raise RuntimeError("compliance.kaldi.fbank gave shape (7, 23), expected (8, 23)")

    monkeypatch.setattr(envcheck, "CHECKS", [("torchaudio", ("torchaudio",), wrong)])
    assert "gave shape (7, 23)" in envcheck.check_environment()


def _check_disk(venv: Path, min_free_gb: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "check-disk.py"), str(venv), min_free_gb],
                          capture_output=True, text=True, timeout=60)


def test_install_refuses_a_disk_without_room_in_one_line(tmp_path):
    """A full disk stops `make install` before pip starts, with one line naming the folder and the need."""
    result = _check_disk(tmp_path / ".venv", "1e9")  # more than any disk has
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0] and "MIN_FREE_GB=0" in lines[0]
    assert not (tmp_path / ".venv").exists()


def test_install_disk_check_passes_with_room_or_an_existing_venv_or_when_off(tmp_path):
    assert _check_disk(tmp_path / ".venv", "0.001").returncode == 0
    assert _check_disk(tmp_path / ".venv", "0").returncode == 0
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    assert _check_disk(tmp_path / ".venv", "1e9").returncode == 0
