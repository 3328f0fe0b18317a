#!/usr/bin/env python3
"""Test-time VTLN averaging: the held-out speaker's CTC posteriors averaged over frequency warps.

Usage: local/warp_average.py LANG_DIR LOGLIKES_DIR OUT_DIR

LOGLIKES_DIR is an `asrkit decode --output loglikes` dir (no priors: log posteriors) over the same
utterances at several VTLN warps, ids `w<W>-<utt>` for warp W and `<utt>` for the unwarped copy;
every copy of an utterance has the same frames (the warp changes the mel filters, not the framing).
OUT_DIR/text gets, per utterance, the greedy CTC path of the posteriors averaged over the warps: a
label-free ensemble over plausible vocal-tract lengths of the unseen voice (RESULTS.md measures it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from asrkit.errors import AsrkitError, FormatError
from asrkit.fileio import atomic_write_text
from asrkit.kaldi.table import iter_table
from asrkit.text.tokenizer import LangDir

WARPED_ID = re.compile(r"^w(\d+(?:\.\d+)?)-(.+)$")


def average_posteriors(loglikes_scp: Path) -> dict[str, np.ndarray]:
    """{utt: (frames, tokens) posteriors averaged over its warped copies} from a loglikes.scp."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for key, loglikes in iter_table(f"scp:{loglikes_scp}"):
        match = WARPED_ID.match(key)
        utt = match.group(2) if match else key
        post = np.exp(np.asarray(loglikes, dtype=np.float64))
        if utt in sums:
            if sums[utt].shape != post.shape:
                raise FormatError(loglikes_scp, f"{key} has {post.shape[0]} frames, other warps of {utt} "
                                  f"{sums[utt].shape[0]}: the copies must share their framing")
            sums[utt] += post
        else:
            sums[utt] = post
        counts[utt] = counts.get(utt, 0) + 1
    if len(set(counts.values())) > 1:
        raise FormatError(loglikes_scp, "utterances have different numbers of warped copies "
                          f"({min(counts.values())} to {max(counts.values())})")
    return {utt: sums[utt] / counts[utt] for utt in sums}


def greedy_ids(post: np.ndarray) -> list[int]:
    """Best CTC path of `post` (frames, tokens): repeats merged; blanks are dropped by Tokenizer.decode."""
    best = post.argmax(axis=1)
    return [int(t) for i, t in enumerate(best) if i == 0 or t != best[i - 1]]


def main(lang_dir: str, loglikes_dir: str, out_dir: str) -> None:
    loglikes_scp = Path(loglikes_dir) / "loglikes.scp"
    if not loglikes_scp.is_file():
        raise AsrkitError(f"{loglikes_scp}: no such file (run asrkit decode --output loglikes first)")
    lang = LangDir.load(lang_dir)
    if len(lang.languages) != 1:
        raise AsrkitError(f"{lang_dir}: expected one language, found {', '.join(lang.languages)}")
    tokenizer = lang.tokenizer(lang.languages[0])
    posts = average_posteriors(loglikes_scp)
    lines = [f"{utt} {tokenizer.decode(greedy_ids(posts[utt]))}".rstrip() for utt in sorted(posts)]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(out_dir) / "text", "".join(line + "\n" for line in lines))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        main(*sys.argv[1:])
    except AsrkitError as e:
        sys.exit(f"{sys.argv[0]}: {e}")
