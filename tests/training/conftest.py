"""Tiny learnable training data made in the test: each letter is a feature pattern held for a few frames."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest

ALPHABETS = {"en": "abcdefgh", "de": "aeiouxyz", "fr": "lmnopqrs"}
DIM = 12


def _utterance(rng: np.random.Generator, letters: str, patterns: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    words = ["".join(rng.choice(list(letters), size=rng.integers(2, 4))) for _ in range(rng.integers(1, 3))]
    frames = []
    for ch in " ".join(words):
        reps = int(rng.integers(3, 6))
        frames.append(np.repeat(patterns[ch][None, :], reps, axis=0))
    feats = np.concatenate(frames).astype(np.float32)
    feats += rng.normal(0, 0.3, size=feats.shape).astype(np.float32)
    return " ".join(words), feats


def make_toy_data_dir(root: Path, name: str, *, langs=("en", "de"), utts_per_lang: int = 12, seed: int = 0,
                      cmvn: bool = True) -> Path:
    """Write a data dir with feats.scp/ark, utt2num_frames, text, utt2spk, spk2utt, utt2lang (and cmvn.scp)."""
    rng = np.random.default_rng(seed)
    prng = np.random.default_rng(1234)  # the same letter patterns in every data dir
    chars = sorted({c for a in ALPHABETS.values() for c in a} | {" "})
    patterns = {c: prng.normal(0, 2, size=DIM) for c in chars}
    d = root / name
    d.mkdir(parents=True)
    feats, text, utt2spk, utt2lang = {}, {}, {}, {}
    for lang in langs:
        for i in range(utts_per_lang):
            spk = f"{lang}spk{i % 2}"
            key = f"{spk}-{i:03d}"
            text[key], feats[key] = _utterance(rng, ALPHABETS[lang], patterns)
            utt2spk[key], utt2lang[key] = spk, lang
    keys = sorted(feats)
    with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
        for k in keys:
            w(k, feats[k])
    (d / "utt2num_frames").write_text("".join(f"{k} {feats[k].shape[0]}\n" for k in keys))
    (d / "text").write_text("".join(f"{k} {text[k]}\n" for k in keys))
    (d / "utt2spk").write_text("".join(f"{k} {utt2spk[k]}\n" for k in keys))
    (d / "utt2lang").write_text("".join(f"{k} {utt2lang[k]}\n" for k in keys))
    spks = sorted(set(utt2spk.values()))
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(k for k in keys if utt2spk[k] == s)}\n" for s in spks))
    if cmvn:
        with kaldiio.WriteHelper(f"ark,scp:{d / 'cmvn.ark'},{d / 'cmvn.scp'}") as w:
            for s in spks:
                x = np.concatenate([feats[k] for k in keys if utt2spk[k] == s]).astype(np.float64)
                stats = np.zeros((2, DIM + 1))
                stats[0, :DIM], stats[1, :DIM] = x.sum(0), (x**2).sum(0)
                stats[0, DIM] = len(x)
                w(s, stats)
    return d


@pytest.fixture
def toy_data(tmp_path):
    """(train_dir, valid_dir) of the toy task in two languages."""
    return (make_toy_data_dir(tmp_path, "train", utts_per_lang=16, seed=1),
            make_toy_data_dir(tmp_path, "valid", utts_per_lang=4, seed=2))
