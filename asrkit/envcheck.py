"""The install smoke check: do the compiled pieces asrkit needs load and run in this environment?

`make install` ends with `python -m asrkit.envcheck` and the test suite starts with it, so a broken
torch/torchaudio pair (torchaudio's compiled library built against another torch) is reported in one
line that names the packages and versions at fault, instead of as a traceback in the first stage.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import metadata

# What to do when the check fails; the lock file is the tested set of versions.
REMEDY = "reinstall the locked versions: `make clean && make install` (or `pip install -r requirements-lock.txt`)"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _check_torch() -> None:
    import torch

    torch.zeros(2).add_(1)


def _check_torchaudio() -> None:
    """torchaudio's compiled RNN-T loss and its Kaldi fbank on a tiny input."""
    import torch
    import torchaudio.compliance.kaldi as ta_kaldi
    import torchaudio.functional as taf

    logits = torch.zeros(1, 2, 2, 3)  # (batch, frames, target length + 1, vocabulary)
    loss = taf.rnnt_loss(logits, torch.tensor([[1]], dtype=torch.int32), torch.tensor([2], dtype=torch.int32),
                         torch.tensor([1], dtype=torch.int32), blank=0)
    if not torch.isfinite(loss).all():
        raise RuntimeError("rnnt_loss returned a non-finite value on a constant input")
    feats = ta_kaldi.fbank(torch.linspace(-0.5, 0.5, 1600).unsqueeze(0), num_mel_bins=23, dither=0.0,
                           sample_frequency=16000)
    if tuple(feats.shape) != (8, 23):
        raise RuntimeError(f"compliance.kaldi.fbank gave shape {tuple(feats.shape)}, expected (8, 23)")


def _check_sentencepiece() -> None:
    import sentencepiece  # noqa: F401


def _check_kaldiio() -> None:
    import kaldiio  # noqa: F401


# (what is checked, the distributions whose versions the message names, the check)
CHECKS: list[tuple[str, tuple[str, ...], Callable[[], None]]] = [
    ("torch", ("torch",), _check_torch),
    ("torchaudio's compiled ops (rnnt_loss, compliance.kaldi.fbank)", ("torchaudio", "torch"), _check_torchaudio),
    ("sentencepiece", ("sentencepiece",), _check_sentencepiece),
    ("kaldiio", ("kaldiio",), _check_kaldiio),
]


def _first_line(e: BaseException) -> str:
    """`Type: first line of the message`, and the cause's when there is one (torch's library loader
    wraps the dynamic linker's `undefined symbol: ...` in a generic `Could not load this library`)."""
    text = str(e).strip().splitlines()
    line = f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__
    cause = e.__cause__
    if cause is not None and str(cause).strip():
        line += f" ({str(cause).strip().splitlines()[0][:300]})"
    return line


def check_environment() -> str | None:
    """Run every check; returns None when all pass, else one line naming what failed and what to do."""
    for what, dists, check in CHECKS:
        try:
            check()
        except Exception as e:  # a missing module, a library that does not load, a wrong result
            versions = ", ".join(f"{d} {_version(d)}" for d in dists)
            return f"asrkit install check failed: {what} ({versions}): {_first_line(e)}; {REMEDY}"
    return None


def main() -> int:
    problem = check_environment()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print(f"asrkit install check: ok (torch {_version('torch')}, torchaudio {_version('torchaudio')}, "
          f"sentencepiece {_version('sentencepiece')}, kaldiio {_version('kaldiio')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
