#!/usr/bin/env python3
"""yesno files cut into their words at the silences and re-joined with the words in a new order.

Usage: local/rejoin_words.py [--copies N] [--seed S] SRC_DATA_DIR OUT_DATA_DIR
       local/rejoin_words.py --check SRC_DATA_DIR     # the ids of the files that cut into their words

Every training file of yesno starts with NO while 29 of the 30 test files start with YES, so no
split of the training files shows a model a file that opens with YES. Each file of SRC_DATA_DIR
is cut into its words where the energy drops to the silence between them (yesno is clean: one
speaker, words ~0.3 s long, ~0.2 s of silence between them). A file whose number of energy bursts
differs from the number of words of its transcript is reported on stderr and in OUT/skipped, and
none of its audio is used. Each of the N copies shuffles the words of all usable files (seeded:
the same S gives the same files) and lays them into the usable files in turn: output file j of
copy k keeps file j's leading and trailing silence and number of words, and takes its words (each
with the half of the silence on either side of it in its own recording) from the shuffled pool, so
the silences between words are the recordings' own and every word of SRC is used once per copy.
OUT_DATA_DIR gets wav/<utt>.wav (16-bit PCM) and wav.scp, text, utt2spk, spk2utt (and utt2lang when
SRC has one), ids `<speaker>-rj<k>-<j>`.
"""

from __future__ import annotations

import argparse
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkit.errors import AsrkitError, DataDirError
from asrkit.fileio import atomic_write, atomic_write_text
from asrkit.kaldi.datadir.files import utt2spk_to_spk2utt
from asrkit.kaldi.textio import read_table, write_table
from asrkit.kaldi.wav import read_audio

FRAME_MS = 25
SHIFT_MS = 10
#: A frame is speech when its energy is above floor + THRESHOLD * (peak - floor) of its file (dB).
#: Half way: the dips between words of the files with the louder (~50 dB) room noise stay below
#: it, and so do the few faint clicks after the last word of some files.
THRESHOLD = 0.5
MIN_GAP_FRAMES = 3    # dips shorter than this (30 ms) are inside a word
MIN_WORD_FRAMES = 12  # bursts shorter than this (120 ms) are clicks, not words (words: 200-450 ms)
MARGIN_FRAMES = 10    # silence kept before the first and after the last word (100 ms)


def energy_db(samples: np.ndarray, rate: int) -> np.ndarray:
    """(frames,) energy in dB (int16 scale) of 25 ms frames every 10 ms of `samples` (num_samples,)."""
    win, hop = rate * FRAME_MS // 1000, rate * SHIFT_MS // 1000
    if len(samples) < win:
        return np.zeros(0)
    num = 1 + (len(samples) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), win)[::hop][:num]
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1.0)


def find_bursts(db: np.ndarray) -> list[tuple[int, int]]:
    """[(first frame, end frame)] of the runs of speech energy in `db` (frames,), in order."""
    if len(db) == 0:
        return []
    floor, peak = np.percentile(db, 10), np.percentile(db, 99)
    loud = db > floor + THRESHOLD * (peak - floor)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8), [0]))))
    runs: list[list[int]] = []
    for start, end in zip(edges[::2], edges[1::2]):
        if runs and start - runs[-1][1] < MIN_GAP_FRAMES:
            runs[-1][1] = int(end)
        else:
            runs.append([int(start), int(end)])
    return [(s, e) for s, e in runs if e - s >= MIN_WORD_FRAMES]


@dataclass
class CutFile:
    """One recording cut at its silences: lead + words[0] + ... + words[-1] + tail is the recording."""

    utt: str
    lead: np.ndarray
    words: list[tuple[str, np.ndarray]]  # (word of the transcript, its samples)
    tail: np.ndarray


def cut_words(utt: str, samples: np.ndarray, rate: int, transcript: list[str]) -> CutFile:
    """Cut `samples` (num_samples,) into the words of `transcript`.

    Each word runs from the middle of the silence before it to the middle of the one after it (the
    first from MARGIN_FRAMES before its burst, the last to MARGIN_FRAMES after it).

    Raises:
        DataDirError: the number of energy bursts is not the number of words, naming the
            utterance and the bursts' lengths and energies (a recording that does not hold the
            words its name says, or speech the cutting cannot separate).
    """
    db = energy_db(samples, rate)
    bursts = find_bursts(db)
    if len(bursts) != len(transcript):
        shapes = ", ".join(f"{(e - s) * SHIFT_MS} ms {db[s:e].max():.0f} dB" for s, e in bursts)
        raise DataDirError(f"{utt}: {len(bursts)} bursts of speech energy for the {len(transcript)} "
                           f"words of its transcript ({shapes})")
    hop = rate * SHIFT_MS // 1000
    cuts = [max(0, bursts[0][0] - MARGIN_FRAMES)]
    cuts += [(end + start) // 2 for (_, end), (start, _) in zip(bursts, bursts[1:])]
    cuts.append(min(len(db), bursts[-1][1] + MARGIN_FRAMES))
    at = [c * hop for c in cuts]
    words = [(word, samples[a:b]) for word, a, b in zip(transcript, at, at[1:])]
    return CutFile(utt, samples[:at[0]], words, samples[at[-1]:])


def rejoin(files: list[CutFile], copies: int, seed: int) -> list[tuple[int, int, CutFile]]:
    """`copies` x len(files) re-joined files: [(copy k, file j, CutFile with file j's lead and tail)].

    Copy k shuffles all words of `files` with the generator seeded by (seed, k) and deals them to
    the files in order, so each copy uses every word once and file j keeps its own word count.
    """
    pool = [word for f in files for word in f.words]
    out = []
    for k in range(1, copies + 1):
        order = np.random.default_rng([seed, k]).permutation(len(pool))
        at = 0
        for j, f in enumerate(files):
            words = [pool[i] for i in order[at:at + len(f.words)]]
            at += len(f.words)
            out.append((k, j, CutFile(f.utt, f.lead, words, f.tail)))
    return out


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with atomic_write(path, "wb") as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())


def main(src: str, out: str | None, copies: int, seed: int) -> None:
    """Re-joined copies of SRC's files into OUT; with `out` None only print the ids of the files
    that cut into as many words as their transcripts have (the others are reported on stderr)."""
    src_dir = Path(src)
    wav_scp = read_table(src_dir / "wav.scp", min_fields=2)
    text = read_table(src_dir / "text")
    utt2spk = read_table(src_dir / "utt2spk", num_fields=2)
    utt2lang = read_table(src_dir / "utt2lang", num_fields=2) if (src_dir / "utt2lang").is_file() else None
    files, skipped, rates = [], [], set()
    for utt, rx in wav_scp.items():
        if utt not in text:
            raise DataDirError(f"{src_dir / 'text'}: no transcript for '{utt}' of wav.scp")
        samples, rate = read_audio(rx, utt)
        rates.add(rate)
        try:
            files.append(cut_words(utt, samples, rate, text[utt].split()))
        except DataDirError as e:
            print(f"{sys.argv[0]}: skipped {e}", file=sys.stderr)
            skipped.append(str(e))
    if not files:
        raise DataDirError(f"{src_dir}: no file could be cut into its words")
    if out is None:
        sys.stdout.write("".join(f.utt + "\n" for f in files))
        return
    out_dir = Path(out)
    if len(rates) != 1:
        raise DataDirError(f"{src_dir / 'wav.scp'}: recordings at several sample rates {sorted(rates)}")
    rate = rates.pop()
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    tables: dict[str, dict[str, str]] = {"wav.scp": {}, "text": {}, "utt2spk": {}, "utt2lang": {}}
    for k, j, f in rejoin(files, copies, seed):
        speaker = utt2spk[f.utt]
        utt = f"{speaker}-rj{k}-{j:02d}"
        path = (out_dir / "wav" / f"{utt}.wav").resolve()
        write_wav(path, np.concatenate([f.lead, *(w for _, w in f.words), f.tail]), rate)
        tables["wav.scp"][utt] = str(path)
        tables["text"][utt] = " ".join(word for word, _ in f.words)
        tables["utt2spk"][utt] = speaker
        if utt2lang is not None:
            tables["utt2lang"][utt] = utt2lang[f.utt]
    for name, table in tables.items():
        if table:
            write_table(out_dir / name, table)
    write_table(out_dir / "spk2utt", utt2spk_to_spk2utt(tables["utt2spk"]))
    atomic_write_text(out_dir / "skipped", "".join(line + "\n" for line in skipped))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=1, help="re-joined copies of the files (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the word order (default 1)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing: print the ids of the files that cut into their words")
    parser.add_argument("src")
    parser.add_argument("out", nargs="?")
    args = parser.parse_args()
    if (args.out is None) != args.check:
        parser.error("give OUT_DATA_DIR, or --check without it")
    try:
        main(args.src, args.out, args.copies, args.seed)
    except AsrkitError as e:
        sys.exit(f"{sys.argv[0]}: {e}")
