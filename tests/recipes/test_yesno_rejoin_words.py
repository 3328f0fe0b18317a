"""recipes/yesno/local/rejoin_words.py: yesno files cut into their words at the silences and re-joined."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

from asrkit.errors import DataDirError
from tests.conftest import REPO

SCRIPT = REPO / "recipes" / "yesno" / "local" / "rejoin_words.py"
RATE = 8000

spec = importlib.util.spec_from_file_location("rejoin_words", SCRIPT)
rejoin_words = importlib.util.module_from_spec(spec)
sys.modules["rejoin_words"] = rejoin_words  # a dataclass looks its module up there
spec.loader.exec_module(rejoin_words)


def recording(word_seconds: list[float], *, lead=0.8, gap=0.2, tail=0.5, seed=0) -> tuple[np.ndarray, list[int]]:
    """Room noise (~37 dB) with a 300 Hz tone burst (~70 dB) per word; also the bursts' first samples."""
    rng = np.random.default_rng(seed)
    parts, starts, at = [rng.normal(0, 70, int(lead * RATE))], [], int(lead * RATE)
    for i, seconds in enumerate(word_seconds):
        if i:
            parts.append(rng.normal(0, 70, int(gap * RATE)))
            at += int(gap * RATE)
        n = int(seconds * RATE)
        parts.append(3000 * np.sin(2 * np.pi * 300 * np.arange(n) / RATE) + rng.normal(0, 70, n))
        starts.append(at)
        at += n
    parts.append(rng.normal(0, 70, int(tail * RATE)))
    return np.concatenate(parts).astype(np.float32), starts


def test_bursts_separated_by_silence_give_the_words():
    samples, starts = recording([0.3, 0.35, 0.3, 0.25])
    cut = rejoin_words.cut_words("spk-a", samples, RATE, ["NO", "YES", "NO", "NO"])
    assert [w for w, _ in cut.words] == ["NO", "YES", "NO", "NO"]
    # the pieces are the recording, in order, and each word holds its whole burst and no other
    assert np.array_equal(np.concatenate([cut.lead, *(s for _, s in cut.words), cut.tail]), samples)
    bounds = np.cumsum([len(cut.lead)] + [len(s) for _, s in cut.words])
    lengths = [0.3, 0.35, 0.3, 0.25]
    for i, start in enumerate(starts):
        assert bounds[i] <= start - 0.05 * RATE and start + lengths[i] * RATE + 0.05 * RATE <= bounds[i + 1]
    # the cut between words falls in the middle of the 0.2 s silence (10 ms frames)
    for i in range(1, 4):
        silence_mid = (starts[i - 1] + lengths[i - 1] * RATE + starts[i]) / 2
        assert abs(bounds[i] - silence_mid) <= 0.02 * RATE
    assert 0.65 * RATE <= len(cut.lead) <= 0.8 * RATE  # the leading silence less a 100 ms margin


def test_a_count_mismatch_is_reported_not_used():
    samples, _ = recording([0.3, 0.3, 0.3])
    with pytest.raises(DataDirError, match=r"spk-b: 3 bursts of speech energy for the 4 words of its transcript \(3"):
        rejoin_words.cut_words("spk-b", samples, RATE, ["NO", "NO", "YES", "NO"])
    # a click (50 ms) is not a word, and a dip shorter than 30 ms does not split one
    samples, _ = recording([0.3, 0.05, 0.3], gap=0.2)
    assert len(rejoin_words.find_bursts(rejoin_words.energy_db(samples, RATE))) == 2
    samples, _ = recording([0.3, 0.3], gap=0.01)
    assert len(rejoin_words.find_bursts(rejoin_words.energy_db(samples, RATE))) == 1


def test_rejoin_deals_every_word_once_per_copy_and_keeps_each_files_silences():
    files = [rejoin_words.cut_words(utt, recording(lengths, lead=lead, seed=i)[0], RATE, words)
             for i, (utt, lengths, lead, words) in enumerate([
                 ("spk-a", [0.3, 0.35, 0.3], 0.8, ["NO", "NO", "YES"]),
                 ("spk-b", [0.25, 0.3, 0.3, 0.3], 0.6, ["NO", "YES", "YES", "NO"])])]
    out = rejoin_words.rejoin(files, copies=3, seed=7)
    assert [(k, j, f.utt) for k, j, f in out] == [(k, j, u) for k in (1, 2, 3) for j, u in enumerate(["spk-a", "spk-b"])]
    pool = sorted(id(s) for f in files for _, s in f.words)
    for k in (1, 2, 3):
        copy = [f for kk, _, f in out if kk == k]
        assert sorted(id(s) for f in copy for _, s in f.words) == pool  # every word once
        assert [len(f.words) for f in copy] == [3, 4]
        assert copy[0].lead is files[0].lead and copy[1].tail is files[1].tail
    orders = [[w for f in (o for _, _, o in out) for w, _ in f.words]]
    again = rejoin_words.rejoin(files, copies=3, seed=7)
    assert [[w for f in (o for _, _, o in again) for w, _ in f.words]] == orders  # seeded
    other = rejoin_words.rejoin(files, copies=3, seed=8)
    assert [[id(s) for _, s in f.words] for _, _, f in other] != [[id(s) for _, s in f.words] for _, _, f in out]


def write_wav(path, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.round(samples).astype("<i2").tobytes())


def test_script_writes_a_data_dir_and_names_the_skipped_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    specs = {"global-0_1_0": [0.3, 0.35, 0.3], "global-1_1_0_0": [0.3, 0.3, 0.3], "global-1_0": [0.3, 0.3]}
    words = {"global-0_1_0": "NO YES NO", "global-1_1_0_0": "YES YES NO NO", "global-1_0": "YES NO"}
    for i, (utt, lengths) in enumerate(specs.items()):
        write_wav(tmp_path / f"{utt}.wav", recording(lengths, seed=i)[0])
    (src / "wav.scp").write_text("".join(f"{u} {tmp_path / u}.wav\n" for u in sorted(specs)))
    (src / "text").write_text("".join(f"{u} {words[u]}\n" for u in sorted(specs)))
    (src / "utt2spk").write_text("".join(f"{u} global\n" for u in sorted(specs)))
    (src / "utt2lang").write_text("".join(f"{u} he\n" for u in sorted(specs)))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--copies", "2", "--seed", "3", str(src), str(out)],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # global-1_1_0_0 holds three words, its name says four: reported, and none of its audio used
    assert "skipped global-1_1_0_0: 3 bursts of speech energy for the 4 words" in proc.stderr
    assert (out / "skipped").read_text().startswith("global-1_1_0_0: 3 bursts")
    utts = ["global-rj1-00", "global-rj1-01", "global-rj2-00", "global-rj2-01"]
    text = dict(line.split(maxsplit=1) for line in (out / "text").read_text().splitlines())
    assert sorted(text) == utts
    for k in (1, 2):  # each copy: the five words of the two usable files, in files of 3 and 2 words
        copy = [text[f"global-rj{k}-00"].split(), text[f"global-rj{k}-01"].split()]
        assert [len(c) for c in copy] == [3, 2] and sorted(copy[0] + copy[1]) == ["NO", "NO", "NO", "YES", "YES"]
    assert (out / "utt2lang").read_text() == "".join(f"{u} he\n" for u in utts)
    assert (out / "spk2utt").read_text() == "global " + " ".join(utts) + "\n"
    wav_scp = dict(line.split() for line in (out / "wav.scp").read_text().splitlines())
    for utt in utts:
        with wave.open(wav_scp[utt]) as w:
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
        # cutting a re-joined file again finds its words
        cut = rejoin_words.cut_words(utt, samples, RATE, text[utt].split())
        assert len(cut.words) == len(text[utt].split())

    # --check writes nothing and lists the files that cut into their words (what dev_cv.sh --clean trains on)
    out_before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check", str(src)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["global-0_1_0", "global-1_0"]
    assert "skipped global-1_1_0_0: 3 bursts" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == out_before
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check", str(src), str(out)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "give OUT_DATA_DIR, or --check without it" in proc.stderr
