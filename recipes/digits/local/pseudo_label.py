#!/usr/bin/env python3
"""Pseudo-labels for unsupervised speaker adaptation: the first pass's words, never the labels.

Usage: local/pseudo_label.py [--keep F] LANG_DIR LOGLIKES_DIR [LOGLIKES_DIR ...] OUT_DIR

LOGLIKES_DIR is an `asrkit decode --output loglikes` dir over the held-out speaker's files at
several VTLN warps (ids as local/warp_average.py reads them). Every utterance is one word, so each
file gets a distribution over the words of LANG_DIR: the CTC probability of the one-word sequence
<w> under the warp-averaged posteriors (the forward sum over blank* w+ blank*), normalised over the
words -- the grammar decode's score, as a posterior; the hypothesis is its argmax and the
confidence its value. Several LOGLIKES_DIRs (one per model, e.g. models trained with other seeds, over
the same files) are an ensemble: each model's word posteriors, then their mean (the probability
domain, every model weighing the same). The models are averaged per word, not per frame: the CTC
spikes of two models fall on different frames, and their frame-wise mean is blank almost everywhere
(RESULTS.md: 100% WER on the inner dev). OUT_DIR gets:
  scores  per file: the hypothesis and its confidence
  text    the files kept for adaptation with their hypothesis: per hypothesised word the fraction
          --keep of its files with the highest confidence, so every word that is hypothesised at all
          is represented
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from asrkit.errors import AsrkitError, FormatError
from asrkit.fileio import atomic_write_text
from asrkit.text.tokenizer import BLANK_ID, UNK_ID, LangDir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warp_average import average_posteriors  # noqa: E402  (the sibling script, not a package)


def word_log_probs(post: np.ndarray, blank: int, word_ids: list[int]) -> np.ndarray:
    """log P(<w> | x) for every w of `word_ids`: the CTC forward sum over the paths blank* w+ blank*
    (torch's CTC loss of the one-token target, in float64)."""
    import torch
    import torch.nn.functional as F

    frames, n = post.shape[0], len(word_ids)
    logp = torch.from_numpy(np.log(np.maximum(post, 1e-30)).astype(np.float64))
    nll = F.ctc_loss(logp[:, None, :].expand(frames, n, -1).contiguous(), torch.tensor(word_ids)[:, None],
                     torch.full((n,), frames), torch.ones(n, dtype=torch.long), blank=blank, reduction="none")
    return -nll.numpy()


def select(hyp: np.ndarray, conf: np.ndarray, keep: float) -> np.ndarray:
    """Indices of the `keep` fraction (at least one) of the most confident files of every hypothesised word."""
    chosen = []
    for word in np.unique(hyp):
        idx = np.flatnonzero(hyp == word)
        n = max(1, int(round(keep * len(idx))))
        chosen.extend(idx[np.argsort(-conf[idx], kind="stable")[:n]])
    return np.sort(np.asarray(chosen, dtype=int))


def word_posteriors(loglikes_scp: Path, blank: int, word_ids: list[int]) -> tuple[list[str], np.ndarray]:
    """The utterances of a loglikes.scp (sorted) and their (utterances, words) posteriors of each one-word
    sentence under the warp-averaged frame posteriors, normalised over the words."""
    posts = average_posteriors(loglikes_scp)
    utts = sorted(posts)
    logp = np.stack([word_log_probs(posts[u], blank, word_ids) for u in utts])
    probs = np.exp(logp - logp.max(axis=1, keepdims=True))
    return utts, probs / probs.sum(axis=1, keepdims=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1])
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("lang_dir")
    parser.add_argument("loglikes_dirs", nargs="+", metavar="loglikes_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    if not 0 < args.keep <= 1:
        raise AsrkitError(f"--keep {args.keep}: expected a fraction in (0, 1]")
    scps = [Path(d) / "loglikes.scp" for d in args.loglikes_dirs]
    for scp in scps:
        if not scp.is_file():
            raise AsrkitError(f"{scp}: no such file (run asrkit decode --output loglikes first)")
    lang = LangDir.load(args.lang_dir)
    if len(lang.languages) != 1:
        raise AsrkitError(f"{args.lang_dir}: expected one language, found {', '.join(lang.languages)}")
    tokenizer = lang.tokenizer(lang.languages[0])
    blank = BLANK_ID
    words = [(i, tokenizer.decode([i])) for i in range(tokenizer.vocab_size) if i not in (BLANK_ID, UNK_ID)]
    word_ids = [i for i, _ in words]
    utts, probs = word_posteriors(scps[0], blank, word_ids)
    for scp in scps[1:]:
        other, member = word_posteriors(scp, blank, word_ids)
        if other != utts:
            missing = sorted(set(utts) ^ set(other))
            raise FormatError(scp, f"{len(missing)} utterance(s) not in both it and {scps[0]}, e.g. "
                              f"{missing[0]}: the models must decode the same files")
        probs += member
    probs /= len(scps)
    hyp, conf = probs.argmax(axis=1), probs.max(axis=1)
    kept = select(hyp, conf, args.keep)
    name = [w for _, w in words]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "scores", "".join(
        f"{u} {name[hyp[k]]} {conf[k]:.4f}\n" for k, u in enumerate(utts)))
    atomic_write_text(out / "text", "".join(f"{utts[k]} {name[hyp[k]]}\n" for k in kept))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except AsrkitError as e:
        sys.exit(f"{sys.argv[0]}: {e}")
