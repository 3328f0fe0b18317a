#!/usr/bin/env python3
"""Decoding speed: real-time factor of CTC greedy and prefix beam (8) search, on CPU and on a GPU,
and of the lexicon search with a word trigram (`decode --lm`, beam 50) on CPU.

Builds a synthetic test set (`asrkit prepare synth` for 2 languages, then 80-dim fbank with
`make_feats`; if eSpeak NG synthesis is unavailable, random 80-dim features of 2-12 s), a
sentencepiece token set per language (`make_lang_dir`, BPE 500), and a RANDOMLY INITIALISED
MTL Conformer-CTC (d_model 256, 12 layers: the default conformer; `--model-size small` for 6 x 144,
or `--model PATH` for a trained model). Speed does not depend on the weights: the encoder does the
same work, and the prefix beam search advances a fixed-size beam whatever the outputs are.

Each configuration runs `decode_data_dir` (the library call behind `asrkit decode`) once untimed
(warm-up: page cache, CUDA kernels) and then --repeat times; the best decoding time is reported
(job time: loading features, the model forward and the search; model loading excluded). The table
gives the real-time factor (RTF = decoding seconds / audio seconds), the speed as x real time, and
beam against greedy on the same device. A script that prints a table, not a test.

The LM rows (CPU only: flashlight's search runs on the CPU whatever the model's device) decode the
same subset with `lm=` one LM dir per language: a Kneser-Ney trigram (`make_lm_dir`, Kaldi's
make_kn_lm.py estimation) of --lm-sentences sentences drawn by the synth corpus' text generator
(seed 1234, not the test set's seed: the speed of a search over a vocabulary the test set does not
all fit, as with a real LM), at --lm-beams; the row names the LM's size (n-grams per order and
lexicon words) and the time is against greedy in the same run. KenLM reading the ARPA file is not
timed, like model loading; its time is printed. A randomly initialised model gives flat posteriors,
so the lexicon search keeps a full beam on every frame: the LM rows are a worst case for its speed.

Usage:
    .venv/bin/python benchmarks/bench_decode.py [--minutes 3] [--gpu-minutes 60] [--lm-sentences 20000]
        [--lm-beams 50] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL_SIZES = {
    "demo": {"encoder": {"type": "conformer", "d_model": 256, "num_layers": 12, "num_heads": 4, "ffn_dim": 1024},
             "head": {"type": "mtl"}},
    "small": {"encoder": {"type": "conformer", "d_model": 144, "num_layers": 6, "num_heads": 4, "ffn_dim": 576},
              "head": {"type": "mtl"}},
}


def make_test_set(work: Path, minutes: float, langs=("en", "de")) -> tuple[Path, str]:
    """A data dir with feats.scp, utt2lang, text (and utt2dur with synth); returns (dir, what it is)."""
    corpus = work / "synth"
    # prepare synth splits 80/10/10; ask for enough that train alone holds the minutes.
    hours = minutes / 60.0 / len(langs) / 0.8 * 1.05
    cmd = [sys.executable, "-m", "asrkit", "prepare", "synth", "--langs", ",".join(langs), "--hours-per-lang",
           f"{hours:.4f}", "--speakers-per-lang", "4", "--nj", str(os.cpu_count() or 1), "--seed", "0", str(corpus)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode == 0:
        from asrkit.features.make_feats import make_feats

        data = corpus / "train"
        make_feats(data, "fbank", options=["num-mel-bins=80"], nj=min(4, os.cpu_count() or 1), progress=False)
        return data, f"asrkit prepare synth ({', '.join(langs)}), 80-dim fbank"
    print(f"# asrkit prepare synth failed ({proc.stderr.strip().splitlines()[-1:]}); random features instead",
          file=sys.stderr)
    return make_random_set(work, minutes, langs), "random 80-dim features (synth unavailable)"


def make_random_set(work: Path, minutes: float, langs) -> Path:
    import kaldiio
    import numpy as np

    rng = np.random.default_rng(0)
    d = work / "random"
    d.mkdir(parents=True)
    feats, frames = {}, 0
    i = 0
    while frames < minutes * 6000:
        lang = langs[i % len(langs)]
        key = f"{lang}spk{i % 4}-{i:05d}"
        feats[key] = (lang, rng.normal(size=(int(rng.integers(200, 1200)), 80)).astype("float32"))
        frames += feats[key][1].shape[0]
        i += 1
    keys = sorted(feats)
    with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
        for k in keys:
            w(k, feats[k][1])
    (d / "utt2num_frames").write_text("".join(f"{k} {feats[k][1].shape[0]}\n" for k in keys))
    (d / "utt2lang").write_text("".join(f"{k} {feats[k][0]}\n" for k in keys))
    (d / "utt2spk").write_text("".join(f"{k} {k.split('-')[0]}\n" for k in keys))
    (d / "text").write_text("".join(f"{k} a b c\n" for k in keys))
    return d


def make_model(work: Path, data: Path, size: str) -> Path:
    """A random-init model file with the test set's token sets (what `asrkit train` would write)."""
    import torch

    from asrkit.models import build_model
    from asrkit.models.modelfile import ModelMeta, TokenSets, atomic_torch_save, make_model_file
    from asrkit.text.tokenizer import make_lang_dir

    lang_dir = make_lang_dir([data], work / "lang", token_type="bpe", vocab_size=500)
    torch.manual_seed(0)
    model = build_model(MODEL_SIZES[size], feat_dim=80, vocab_sizes=lang_dir.vocab_sizes())
    meta = ModelMeta.for_model(model, objective="ctc", tokens=TokenSets.from_lang_dir(lang_dir))
    path = work / f"random_{size}.pt"
    atomic_torch_save(make_model_file(model, meta=meta), path)
    return path


def make_lms(work: Path, data: Path, sentences: int) -> dict[str, Path]:
    """One LM dir per language of `data`: a trigram of `sentences` generated sentences (the synth
    text generator), or of the data's own transcripts when the test set is not synth."""
    from asrkit.kaldi.textio import read_table
    from asrkit.text.lmdir import make_lm_dir

    langs = sorted(set(read_table(data / "utt2lang").values()))
    lms = {}
    for lang in langs:
        text = work / f"lm_text_{lang}.txt"
        try:
            import numpy as np

            from asrkit.corpora.synth.text import load_lexicon, make_sentence

            lexicon, rng = load_lexicon(lang), np.random.default_rng(1234)
            text.write_text("".join(make_sentence(rng, lexicon) + "\n" for _ in range(sentences)))
            lm = make_lm_dir(work / f"lm_{lang}", work / "lang", language=lang, text=text, order=3)
        except Exception as e:  # a random test set's token sets cannot spell the generator's words
            print(f"# LM for {lang} from the test set's transcripts ({e})", file=sys.stderr)
            lm = make_lm_dir(work / f"lm_{lang}", work / "lang", language=lang, data_dirs=[data], order=3)
        lms[lang] = lm.path
    return lms


def describe_lms(lms: dict[str, Path]) -> str:
    """`3-gram, en 2,345/9,876/12,345 n-grams 1,987 words; de ...` from the LM dirs' lm.yaml."""
    from asrkit.text.lmdir import LmDir

    parts = []
    for lang, path in sorted(lms.items()):
        m = LmDir.load(path).manifest
        parts.append(f"{lang} {'/'.join(f'{n:,}' for n in m['counts'])} n-grams, {m['lexicon_words']:,} words")
    return f"{max(len(LmDir.load(p).manifest['counts']) for p in lms.values())}-gram: " + "; ".join(parts)


def time_lm_load(lms: dict[str, Path], model: Path) -> float:
    """Seconds for KenLM to read every LM (what each decode job does before it starts timing)."""
    from asrkit.decoding.lm import LexiconSearch
    from asrkit.models.modelfile import read_model_meta
    from asrkit.text.lmdir import LmDir

    tokenizers = read_model_meta(model).tokenizers()
    t0 = time.time()
    for lang, path in lms.items():
        LexiconSearch(LmDir.load(path), tokenizers[lang].pieces(), beam=50)
    return time.time() - t0


def time_decode(model: Path, data: Path, out: Path, device: str, search: str | None, repeat: int, *,
                beam: int = 8, lms: dict[str, Path] | None = None, lm_weight: float = 0.5):
    from asrkit.decoding.decoder import decode_data_dir

    kwargs = dict(search=search, beam=beam, device=device, overwrite=True)
    if lms:
        kwargs.update(lm=[f"{lang}={path}" for lang, path in sorted(lms.items())], lm_weight=lm_weight)
    decode_data_dir(model, data, out, **kwargs)  # warm-up
    best = None
    for _ in range(repeat):
        r = decode_data_dir(model, data, out, **kwargs)
        if best is None or r.decode_seconds < best.decode_seconds:
            best = r
    return best


def subset(data: Path, minutes: float, out: Path) -> Path:
    """The first utterances of `data` adding up to about `minutes` (CPU runs use fewer)."""
    from asrkit.kaldi.datadir import subset_data_dir
    from asrkit.kaldi.textio import read_table

    frames = read_table(data / "utt2num_frames")
    total, n = 0, 0
    for v in frames.values():
        total += int(v)
        n += 1
        if total >= minutes * 6000:
            break
    if n >= len(frames):
        return data
    subset_data_dir(data, out, first=n)
    return out


def write_docs(table: str, notes: list[str]) -> Path:
    """Put the table under a `## Decoding` heading of docs/benchmarks.md, keeping every other section."""
    path = REPO / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    section = "## Decoding\n\n" + "\n".join(notes) + "\n\n" + table + "\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "## Decoding"), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        text = "".join(lines[:start]) + section + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
    from asrkit.fileio import atomic_write_text

    atomic_write_text(path, text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="audio decoded on CPU")
    parser.add_argument("--gpu-minutes", type=float, default=60.0, help="audio decoded on the GPU")
    parser.add_argument("--model-size", choices=sorted(MODEL_SIZES), default="demo")
    parser.add_argument("--model", type=Path, help="a trained model file instead of a random-init one")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--lm-sentences", type=int, default=20000,
                        help="generated sentences per language for the LM rows' trigram (0: no LM rows)")
    parser.add_argument("--lm-beams", default="50", help="comma-separated beams of the LM rows")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()

    import torch

    from asrkit.logutil import setup_logging

    setup_logging(stderr=False)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_decode."))
    work.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.is_available()
    minutes = max(args.minutes, args.gpu_minutes if gpu else 0.0)
    t0 = time.time()
    data, what = make_test_set(work, minutes)
    model = args.model or make_model(work, data, args.model_size)
    print(f"# test set: {what}; prepared in {time.time() - t0:.0f} s", file=sys.stderr)
    runs = [("cpu", subset(data, args.minutes, work / "cpu_subset"))]
    if gpu:
        runs.append(("cuda", data))
    lms, lm_notes = {}, []
    if args.lm_sentences > 0:
        t0 = time.time()
        lms = make_lms(work, data, args.lm_sentences)
        lm_notes.append(f"LM rows: {describe_lms(lms)} (Kneser-Ney from {args.lm_sentences:,} generated sentences "
                        f"per language, made in {time.time() - t0:.0f} s), lm-weight 0.5, reading the ARPA files "
                        f"{time_lm_load(lms, model):.2f} s (not timed, like model loading).")
        print(f"# {lm_notes[-1]}", file=sys.stderr)
    rows = []
    for device, d in runs:
        greedy_rtf = None
        name = torch.cuda.get_device_name(0) if device == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
        for search in ("greedy", "beam"):
            r = time_decode(model, d, work / f"decode_{device}_{search}", device, search, args.repeat)
            greedy_rtf = greedy_rtf or r.rtf
            rows.append((device, name, "greedy" if search == "greedy" else "beam 8", r.num_utts, r.audio_seconds,
                         r.decode_seconds, r.rtf, 1.0 / r.rtf, r.rtf / greedy_rtf))
        for beam in ([int(b) for b in args.lm_beams.split(",")] if lms and device == "cpu" else []):
            r = time_decode(model, d, work / f"decode_{device}_lm{beam}", device, None, args.repeat, beam=beam, lms=lms)
            rows.append((device, name, f"lexicon + 3-gram LM, beam {beam}", r.num_utts, r.audio_seconds,
                         r.decode_seconds, r.rtf, 1.0 / r.rtf, r.rtf / greedy_rtf))
    header = "| device | search | utts | audio (s) | decode (s) | RTF | x real time | time vs greedy |"
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|"]
    for device, name, search, n, audio, secs, rtf, speed, ratio in rows:
        lines.append(f"| {device} ({name}) | {search} | {n} | {audio:.1f} | {secs:.2f} | {rtf:.5f} | {speed:,.0f} | {ratio:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.write_docs:
        model_desc = f"`{args.model}`" if args.model else f"a randomly initialised MTL Conformer-CTC ({args.model_size}: {MODEL_SIZES[args.model_size]['encoder']}) with BPE-500 token sets per language"
        notes = [f"`make bench-decode` (`benchmarks/bench_decode.py`), {time.strftime('%Y-%m-%d')}: `decode_data_dir` "
                 f"on {what}, {model_desc}. Best of {args.repeat} runs after a warm-up; decoding time includes "
                 "reading features, the forward pass and the search, not model loading. Issue target on one "
                 "H100/H200: greedy >= 2,000x real time, beam (8) >= 300x.", *lm_notes]
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1):
            notes.append(f"The machine was shared (load average {load:.1f} on {os.cpu_count()} cores): CPU rows are "
                         "pessimistic, and differences of less than ~20% between rows are noise.")
        if not gpu:
            notes.append("No GPU in this run: GPU rows are missing (run the same command on a GPU machine).")
        print(f"# wrote {write_docs(table, notes)}", file=sys.stderr)


if __name__ == "__main__":
    main()
