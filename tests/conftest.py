"""Shared fixtures: the Kaldi golden outputs, and a runner for the `asrkit` command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KALDI_FIXTURES = REPO / "tests" / "fixtures" / "kaldi"
# Real speech corpora live beside the repository, not in it (../shared/corpora/README.md);
# ASRKIT_CORPORA points elsewhere, e.g. from a git worktree one level deeper.
REAL_CORPORA = Path(os.environ.get("ASRKIT_CORPORA") or REPO.parent / "shared" / "corpora")


def pytest_sessionstart(session) -> None:
    """Before any test: the install smoke check, so a broken torch/torchaudio pair is one line, not
    hundreds of failing tests."""
    from asrkit.envcheck import check_environment

    problem = check_environment()
    if problem:
        pytest.exit(problem, returncode=1)


def real_corpus(name: str) -> Path:
    """`../shared/corpora/NAME`, or skip the test saying where it was looked for."""
    path = REAL_CORPORA / name
    if not path.is_dir():
        pytest.skip(f"{path} absent: real corpora live outside the repository (set ASRKIT_CORPORA to their folder)")
    return path


@pytest.fixture
def kaldi_fixtures() -> Path:
    """The read-only folder of real Kaldi outputs (see its KALDI_COMMANDS.txt)."""
    return KALDI_FIXTURES


@pytest.fixture
def fixture_datadir(tmp_path: Path) -> Path:
    """A writable copy of the fixture data dir (wav.scp, text, utt2spk, spk2utt, utt2lang, utt2dur)."""
    d = tmp_path / "data"
    d.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2dur"):
        shutil.copy(KALDI_FIXTURES / name, d / name)
    # wav.scp paths are relative to the fixture folder; make them absolute so the copy is usable.
    lines = (d / "wav.scp").read_text().splitlines()
    (d / "wav.scp").write_text("".join(f"{k} {KALDI_FIXTURES / v}\n" for k, v in (ln.split() for ln in lines)))
    return d


def run_asrkit(*args: str, cwd: str | os.PathLike | None = None, check: bool = False,
               env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m asrkit ARGS` in a subprocess against this checkout; returns the completed process."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "asrkit", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"asrkit {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def asrkit_cli():
    """Callable that runs the asrkit CLI in a subprocess (see `run_asrkit`)."""
    return run_asrkit
