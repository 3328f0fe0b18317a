#!/usr/bin/env python3
"""Word-LM decoding, the two routes of issue 19 on the same log posteriors: shallow fusion (what
`asrkit decode --lm` runs: torchaudio's ctc_decoder, flashlight-text with KenLM) against a WFST
(a TLG graph built with kaldifst + kaldilm, searched by kaldi-decoder's FasterDecoder, the pieces
sherpa-onnx is built on), with asrkit's LM-free prefix beam search as the reference.

Reads the model's log posteriors of a data dir (`asrkit decode --output loglikes` without priors
writes them), one LM dir per language (`asrkit make-lm`, named PREFIX<lang>), and prints per route
the %WER (asrkit's compute-wer) and the search time (graph building and LM loading apart). The WFST
graph is T o min(det(L o G)): G from kaldilm's arpa2fst with #0 on backoff arcs, L spelling each
word in the model's tokens plus a word-end disambiguation symbol (so that no spelling is a prefix of
another and L o G determinizes), T the standard CTC topology (token id + 1 as FST labels, blank 1).
kaldifst, kaldilm and kaldi-decoder are peers measured here only, not dependencies of asrkit.

Usage (docs/decoding.md has the numbers of the synth demo):
    asrkit decode --model exp/mtl_conformer/final.pt --data data/test --out-dir exp/post --output loglikes
    python benchmarks/lm_routes.py --loglikes exp/post/loglikes.scp --data data/test \\
        --lm-prefix data/lang_char_lm_ --lm-weight 0.5 --beam 50 --wfst-beam 16
"""

from __future__ import annotations

import argparse
import time

import kaldiio
import numpy as np
import torch

from asrkit.decoding.ctc import ctc_prefix_beam_search
from asrkit.decoding.lm import LexiconSearch
from asrkit.kaldi.textio import read_table
from asrkit.scoring.wer import compute_wer, split_words
from asrkit.text.lmdir import LmDir


def build_tlg(lm: LmDir, work_prefix: str):
    """The decoding graph of one LM dir; returns (TLG, {word id: word})."""
    import kaldifst
    import kaldilm

    words = {w: int(i) for w, i in read_table(lm.path / "words.txt", num_fields=2).items()}
    tokens = lm.tokens()
    backoff_in, word_end = len(tokens) + 1, len(tokens) + 2  # input labels past the tokens
    kaldilm.arpa2fst(input_arpa=str(lm.arpa), output_fst=work_prefix + "G.fst", disambig_symbol="#0",
                     read_symbol_table=str(lm.path / "words.txt"))
    G = kaldifst.StdVectorFst.read(work_prefix + "G.fst")
    L = kaldifst.StdVectorFst()
    loop = L.add_state()
    L.start = loop
    L.set_final(state=loop, weight=0)
    L.add_arc(state=loop, arc=kaldifst.StdArc(ilabel=backoff_in, olabel=words["#0"], weight=0, nextstate=loop))
    index = {p: i for i, p in enumerate(tokens)}
    for word, spelling in read_table(lm.lexicon).items():
        labels = [index[p] + 1 for p in spelling.split()] + [word_end]
        state = loop
        for j, label in enumerate(labels):
            nxt = loop if j == len(labels) - 1 else L.add_state()
            L.add_arc(state=state, arc=kaldifst.StdArc(ilabel=label, olabel=words[word] if j == 0 else 0, weight=0,
                                                       nextstate=nxt))
            state = nxt
    kaldifst.arcsort(L, sort_type="olabel")
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = kaldifst.compose(L, G)
    kaldifst.determinize_star(LG)
    kaldifst.minimize_encoded(LG)
    for state in kaldifst.StateIterator(LG):  # the disambiguation symbols are not tokens
        for arc in kaldifst.ArcIterator(LG, state):
            if arc.ilabel in (backoff_in, word_end):
                arc.ilabel = 0
    T = kaldifst.StdVectorFst()
    for _ in tokens:
        T.set_final(state=T.add_state(), weight=0)
    T.start = 0
    for i in range(len(tokens)):
        for k in range(len(tokens)):  # k == i: a repeated token; k == 0: blank; both emit nothing
            T.add_arc(state=i, arc=kaldifst.StdArc(ilabel=k + 1, olabel=k + 1 if k not in (i, 0) else 0, weight=0,
                                                   nextstate=k))
    kaldifst.arcsort(T, sort_type="olabel")
    kaldifst.arcsort(LG, sort_type="ilabel")
    TLG = kaldifst.compose(T, LG)
    kaldifst.arcsort(TLG, sort_type="ilabel")
    return TLG, {i: w for w, i in words.items()}


def wfst_decode(graph, log_probs: np.ndarray, lm_weight: float, beam: float) -> list[str]:
    """`log_probs (T, V)`: the LM weight is applied as an acoustic scale of 1 / lm_weight, as Kaldi does."""
    import kaldifst
    from kaldi_decoder import DecodableCtc, FasterDecoder, FasterDecoderOptions

    TLG, id2word = graph
    scaled = np.ascontiguousarray(log_probs / lm_weight, dtype=np.float32)  # the decodable points into it
    decoder = FasterDecoder(TLG, FasterDecoderOptions(beam=beam, max_active=7000))
    decoder.decode(DecodableCtc(scaled))
    _, best = decoder.get_best_path()
    _, _, osyms, _ = kaldifst.get_linear_symbol_sequence(best)
    return [id2word[o] for o in osyms if o != 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loglikes", required=True, help="loglikes.scp of the model's log posteriors")
    parser.add_argument("--data", required=True, help="data dir with text and utt2lang")
    parser.add_argument("--lm-prefix", required=True, help="LM dirs are PREFIX<lang>")
    parser.add_argument("--lm-weight", type=float, default=0.5)
    parser.add_argument("--beam", type=int, default=50, help="flashlight beam")
    parser.add_argument("--wfst-beam", type=float, default=16.0, help="FasterDecoder beam (cost)")
    parser.add_argument("--work", default="/tmp/lm_routes_", help="prefix of the G.fst files written")
    args = parser.parse_args()

    ref = {k: split_words(v) for k, v in read_table(f"{args.data}/text").items()}
    utt2lang = read_table(f"{args.data}/utt2lang", num_fields=2)
    post = {u: np.array(m) for u, m in kaldiio.load_scp_sequential(args.loglikes)}
    langs = sorted({utt2lang[u] for u in post})
    lms = {lang: LmDir.load(f"{args.lm_prefix}{lang}") for lang in langs}
    rows = []

    start = time.time()
    searches = {lang: LexiconSearch(lm, lm.tokens(), lm_weight=args.lm_weight, beam=args.beam) for lang, lm in lms.items()}
    setup = time.time() - start
    start = time.time()
    hyp = {u: list(searches[utt2lang[u]].search(torch.from_numpy(m)[None], torch.tensor([len(m)]))[0][0].words)
           for u, m in post.items()}
    rows.append((f"shallow fusion (flashlight), beam {args.beam}", setup, time.time() - start, hyp))

    start = time.time()
    graphs = {lang: build_tlg(lm, f"{args.work}{lang}_") for lang, lm in lms.items()}
    setup = time.time() - start
    start = time.time()
    hyp = {u: wfst_decode(graphs[utt2lang[u]], m, args.lm_weight, args.wfst_beam) for u, m in post.items()}
    rows.append((f"WFST TLG (kaldi-decoder), beam {args.wfst_beam:g}, {sum(g[0].num_states for g in graphs.values())} "
                 "states", setup, time.time() - start, hyp))

    start = time.time()
    lexicon_free = {}
    for u, m in post.items():
        ids = ctc_prefix_beam_search(torch.from_numpy(m)[None], torch.tensor([len(m)]), beam=8)[0][0][0]
        pieces = lms[utt2lang[u]].tokens()
        lexicon_free[u] = "".join(pieces[i] for i in ids).replace("\u2581", " ").split()
    rows.append(("prefix beam 8, no LM", 0.0, time.time() - start, lexicon_free))

    audio = sum(len(m) for m in post.values())
    print(f"{len(post)} utterances, {audio} output frames, LM weight {args.lm_weight:g}")
    print("| route | %WER | setup (s) | search (s) |\n|---|---:|---:|---:|")
    for name, setup, search, hyp in rows:
        wer = compute_wer(ref, hyp).compute_wer_output().split("\n")[0]
        print(f"| {name} | {wer} | {setup:.1f} | {search:.2f} |")


if __name__ == "__main__":
    main()
