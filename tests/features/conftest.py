"""Helpers for the feature tests: Kaldi golden arks and the fixture audio as int16-scale floats."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kaldi"


def load_ark(name: str) -> dict[str, np.ndarray]:
    """A golden Kaldi archive from tests/fixtures/kaldi as `{utt: matrix}`."""
    return {k: np.asarray(v) for k, v in kaldiio.load_ark(str(FIXTURES / name))}


SPK2UTT = {"spkA": ["spkA-en-001", "spkA-en-002"], "spkB": ["spkB-de-001", "spkB-de-002"],
           "spkC": ["spkC-fr-001", "spkC-fr-002"]}
UTT2SPK = {u: s for s, us in SPK2UTT.items() for u in us}


def rel_diff(a, b) -> float:
    """Largest |a - b| relative to |b|, with values below 1 in magnitude compared absolutely (a
    normalised feature near 0 has no meaningful relative error)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))


def read_wav_scp(name: str = "wav.scp") -> dict[str, tuple[np.ndarray, int]]:
    """`{utt: (int16-scale float32 samples, sample rate)}` for a fixture wav.scp (paths relative to it)."""
    out = {}
    for line in (FIXTURES / name).read_text().splitlines():
        utt, path = line.split()
        samples, rate = sf.read(FIXTURES / path, dtype="int16")
        out[utt] = (samples.astype(np.float32), rate)
    return out


@pytest.fixture(scope="session")
def waves() -> dict[str, tuple[np.ndarray, int]]:
    return read_wav_scp("wav.scp")


@pytest.fixture(scope="session")
def fbank80() -> dict[str, np.ndarray]:
    return load_ark("fbank80.ark")
