"""Shared pieces of the reliability suite: tiny inputs made once per session, and the checks every case
ends with (a one-line `asrkit <cmd>: error: ...`, a non-zero exit, no traceback, no partial output).

Most cases run the real click entry point in this process (`run_cli`), which goes through the same
`AsrkitGroup.invoke` error handler as `python -m asrkit` but costs no interpreter start; cases where the
process itself matters (a file-size limit, kill -9) run a real subprocess (`run_cli_subprocess`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import KALDI_FIXTURES, REPO

# A tiny DNN-CTC model: trains in about a second on the toy task.
TINY_DNN = ["model.encoder={type: dnn, hidden_dims: [24], context: 1}", "data.max_frames=400", "optim.lr=5e-3",
            "scheduler.name=warmup_constant", "scheduler.warmup_steps=2", "training.epochs=1", "training.device=cpu",
            "training.log_interval=1"]


@dataclass
class CliResult:
    """What a user sees: exit status, stdout, stderr (and the exception the handler let through, if any)."""

    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


def run_cli(*args) -> CliResult:
    """Run `asrkit ARGS` through click in this process (the group's error handler included)."""
    from click.testing import CliRunner

    from asrkit.cli.main import cli

    argv = [str(a) for a in args]
    saved = sys.argv
    sys.argv = ["asrkit", *argv]  # the error handler names the subcommand from sys.argv, as in a real run
    try:
        res = CliRunner().invoke(cli, argv, prog_name="asrkit")
    finally:
        sys.argv = saved
    exc = None if res.exception is None or isinstance(res.exception, SystemExit) else res.exception
    return CliResult(res.exit_code, res.stdout, res.stderr, exc)


def _limit_file_size(max_bytes: int):
    def preexec():
        # Like a full disk: a write past the limit fails with EFBIG instead of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return preexec


@contextlib.contextmanager
def file_size_limit(max_bytes: int):
    """In this process: writes past MAX_BYTES fail with EFBIG (as on a full disk) inside the block."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def run_cli_subprocess(*args, max_file_bytes: int | None = None, timeout: float = 120) -> CliResult:
    """Run `python -m asrkit ARGS` in a child process, optionally with a file-size limit (a full disk)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    preexec = _limit_file_size(max_file_bytes) if max_file_bytes is not None else None
    proc = subprocess.run([sys.executable, "-m", "asrkit", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(res: CliResult, command: str, *patterns: str) -> str:
    """Assert the user saw exactly one error line `asrkit COMMAND: error: ...` matching every regex in
    PATTERNS, a non-zero exit and no traceback; returns that line."""
    assert res.exception is None, f"unhandled {type(res.exception).__name__}: {res.exception}"
    assert res.returncode != 0, f"exit status 0; stderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1, f"expected one error line, got:\n{res.stderr}"
    line = errors[0]
    assert line.startswith(f"asrkit {command}: error: "), line
    assert res.stderr.rstrip("\n").splitlines()[-1] == line, f"the error is not the last line:\n{res.stderr}"
    for p in patterns:
        assert re.search(p, line), f"{p!r} not in {line!r}"
    return line


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha1} of every file under FOLDER ({} when it does not exist)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_no_partial_output(folder: Path, before: dict[str, str], *, ignore: tuple[str, ...] = ("log/",)) -> None:
    """The output FOLDER holds exactly what it held BEFORE (old result or nothing): no new or changed
    outputs and no temporary files; logs (paths starting with IGNORE) may be added."""
    after = snapshot(folder)
    keep = {k: v for k, v in after.items() if not k.startswith(ignore)}
    old = {k: v for k, v in before.items() if not k.startswith(ignore)}
    assert keep == old, f"output changed: {sorted(set(keep.items()) ^ set(old.items()))}"
    assert not [k for k in after if k.endswith(".tmp")], after


def copy_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_line(path: Path, index: int, new: str | None) -> str:
    """Replace (or with None, delete) line INDEX (0-based) of a text file; returns the old line."""
    lines = path.read_text().splitlines()
    old = lines[index]
    if new is None:
        del lines[index]
    else:
        lines[index] = new
    path.write_text("".join(f"{ln}\n" for ln in lines))
    return old


@pytest.fixture(scope="session")
def rel_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="session")
def wav_dir(rel_root) -> Path:
    """A clean data dir of the six 16 kHz fixture wavs (wav.scp, text, utt2spk, spk2utt, utt2lang, utt2dur)."""
    d = rel_root / "wavdata"
    d.mkdir()
    for name in ("text", "utt2spk", "spk2utt", "utt2lang", "utt2dur"):
        shutil.copy(KALDI_FIXTURES / name, d / name)
    lines = (KALDI_FIXTURES / "wav.scp").read_text().splitlines()
    (d / "wav.scp").write_text("".join(f"{k} {KALDI_FIXTURES / v}\n" for k, v in (ln.split() for ln in lines)))
    return d


@pytest.fixture(scope="session")
def feats_dir(rel_root) -> Path:
    """A toy data dir with features (feats.scp/ark, cmvn.scp, text, utt2lang: en and de, 6 utterances each)."""
    from tests.training.conftest import make_toy_data_dir

    return make_toy_data_dir(rel_root, "feats", utts_per_lang=6, seed=3)


@pytest.fixture(scope="session")
def lang_dir(rel_root, feats_dir) -> Path:
    """A char lang dir (en, de) made from `feats_dir`."""
    from asrkit.text.tokenizer import make_lang_dir

    make_lang_dir([feats_dir], rel_root / "lang", token_type="char")
    return rel_root / "lang"


@pytest.fixture(scope="session")
def model(rel_root, feats_dir, lang_dir) -> Path:
    """final.pt of a tiny DNN-CTC model (mtl head for en, de) trained one epoch on `feats_dir`."""
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training

    return run_training(load_config(None, TINY_DNN), train_dirs=[feats_dir], valid_dirs=[], lang_dir=str(lang_dir),
                        out_dir=rel_root / "exp")
