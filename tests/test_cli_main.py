"""The top-level command line: --version, --help speed, and one-line user errors."""

from __future__ import annotations

from asrkit import __version__


def test_version(asrkit_cli):
    proc = asrkit_cli("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_help_is_fast_and_lists_stages(asrkit_cli):
    proc = asrkit_cli("--help")
    assert proc.returncode == 0
    assert "data" in proc.stdout
    # --help must not import torch (seconds on its own): checked by the import list, not by a timer.
    probe = asrkit_cli("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.split("|")[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "torchaudio" not in imported


def test_unknown_command_exits_nonzero(asrkit_cli):
    proc = asrkit_cli("no-such-command")
    assert proc.returncode != 0
