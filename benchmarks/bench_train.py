#!/usr/bin/env python3
"""Training throughput and communication share per synchronisation strategy, 1 process against 2.

Makes a small synthetic corpus of learnable features (each character of a two-language transcript
is a fixed random feature pattern held for a few frames, plus noise; no audio), then runs
`asrkit train` (the real trainer, under torchrun for 2 processes) for:

  * 1 CPU process (the reference, ratio 1.00), and 1 GPU process when CUDA is present;
  * 2 gloo CPU processes with each strategy: allreduce (DDP), allreduce with `time_comm` (a
    blocking, timed all-reduce: it measures the communication share, at some cost in speed),
    model-averaging, bmuf and gossip (K = --sync-interval).

Every run sees the same total number of samples (2 processes split each epoch between them).
Reported per run: frames/s over all processes in the last epoch (rank 0's frames/s x processes;
ranks get equal batch counts), its ratio to the 1-process run, the share of rank 0's step time
spent in synchronisation (strategies other than plain allreduce time it themselves), the padding
ratio (padded / real input frames - 1) and input stall (time waiting for the next batch / step
time) averaged over the logged intervals, and the
validation loss of final.pt and ema.pt (computed here on the held-out set, with its ratio to the
1-process final.pt). A script that prints a table, not a test: nothing fails on a threshold.

Usage (the `make bench-train` target):
    .venv/bin/python benchmarks/bench_train.py [--epochs 6] [--utts-per-lang 150] [--sync-interval 4]
        [--lr-scaling none|linear|sqrt] [--strategies allreduce,model-averaging,...] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ALPHABETS = {"en": "abcdefghij", "de": "aeiouwxyzq"}


def make_corpus(root: Path, name: str, utts_per_lang: int, dim: int, seed: int) -> Path:
    """A data dir (feats.scp/ark, utt2num_frames, text, utt2spk, spk2utt, utt2lang) of learnable features."""
    import kaldiio
    import numpy as np

    rng = np.random.default_rng(seed)
    patterns_rng = np.random.default_rng(1234)  # the same letter patterns in every set
    chars = sorted({c for a in ALPHABETS.values() for c in a} | {" "})
    patterns = {c: patterns_rng.normal(0, 1.5, size=dim) for c in chars}
    d = root / name
    d.mkdir(parents=True)
    feats, text, utt2spk, utt2lang = {}, {}, {}, {}
    for lang, letters in ALPHABETS.items():
        for i in range(utts_per_lang):
            spk = f"{lang}spk{i % 4}"
            key = f"{spk}-{i:04d}"
            words = ["".join(rng.choice(list(letters), size=rng.integers(2, 6))) for _ in range(rng.integers(2, 6))]
            sentence = " ".join(words)
            x = np.concatenate([np.repeat(patterns[c][None], rng.integers(3, 7), axis=0) for c in sentence])
            feats[key] = (x + rng.normal(0, 0.8, size=x.shape)).astype(np.float32)
            text[key], utt2spk[key], utt2lang[key] = sentence, spk, lang
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
    return d


def run_train(args, work: Path, name: str, nproc: int, sets: list[str]) -> Path:
    out = work / name
    cmd = [sys.executable, "-m", "asrkit", "train", "--train-data", str(work / "train"), "--valid-data",
           str(work / "valid"), "--lang", str(work / "lang"), "--out-dir", str(out), "--overwrite"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    base = [f"model.encoder={{type: {args.model}, hidden_dims: [{args.hidden}, {args.hidden}], context: 2}}"
            if args.model == "dnn" else "model.encoder={type: conformer}",
            f"data.max_frames={args.max_frames}", f"training.epochs={args.epochs}", "training.log_interval=100000",
            "training.progress=none", f"optim.lr={args.lr}", "scheduler.warmup_steps=20",
            f"training.ema={{decay: {args.ema_decay}}}", f"training.sync_interval={args.sync_interval}",
            f"training.seed={args.seed}", f"optim.lr_scaling={args.lr_scaling}"]
    for s in base + sets:
        cmd += ["--set", s]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if nproc == 1 and "training.device=cuda" not in sets:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // 2)))  # the same cores per process
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return out


def valid_loss(model_path: Path, work: Path) -> float:
    """Validation loss of a model file on the held-out set (the trainer's own `validate`)."""
    import torch

    from asrkit.models.modelfile import load_model
    from asrkit.text.tokenizer import LangDir
    from asrkit.training.config import load_config
    from asrkit.training.inputs import build_datasets
    from asrkit.training.trainer import validate

    conf = load_config(model_path.parent / "config.yaml")
    model, _ = load_model(model_path)
    _, valid = build_datasets(conf, [work / "train"], [work / "valid"], LangDir.load(work / "lang"))
    return validate(model, valid, conf, torch.device("cpu"))["valid_loss"]


def summarise(out: Path, work: Path, nproc: int) -> dict:
    rows = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "frames_per_s" in r]
    last = steps[-1]
    return {"fps": last["frames_per_s"] * nproc, "comm": last.get("comm_share"),
            "padding": sum(r["padding_ratio"] for r in steps) / len(steps),
            "stall": sum(r["input_stall"] for r in steps) / len(steps),
            "final": valid_loss(out / "final.pt", work), "ema": valid_loss(out / "ema.pt", work)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--utts-per-lang", type=int, default=150)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--model", choices=["dnn", "conformer"], default="dnn")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--max-frames", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-scaling", choices=["none", "linear", "sqrt"], default="none",
                    help="optim.lr_scaling (changes only the multi-process runs)")
    ap.add_argument("--ema-decay", type=float, default=0.99)
    ap.add_argument("--sync-interval", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategies", default="allreduce,allreduce-timed,model-averaging,bmuf,gossip")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="Extra config override for the multi-process runs (repeatable), e.g. "
                         "'training.strategy_opts={nesterov: true}'.")
    ap.add_argument("--work", help="Folder for data and runs (default: a temporary one, removed after).")
    args = ap.parse_args()

    import torch

    from asrkit.text.tokenizer import make_lang_dir

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="bench_train_")
    work = Path(args.work or tmp.name)
    if not (work / "lang").exists():
        make_corpus(work, "train", args.utts_per_lang, args.dim, seed=1)
        make_corpus(work, "valid", max(10, args.utts_per_lang // 5), args.dim, seed=2)
        make_lang_dir([work / "train"], work / "lang", token_type="char")
    n_train = sum(1 for _ in open(work / "train" / "utt2spk"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{args.model} encoder, {n_train} training utterances, {args.epochs} epochs, "
          f"K={args.sync_interval}, lr {args.lr} (scaling {args.lr_scaling}), EMA decay {args.ema_decay}; "
          f"max_frames {args.max_frames}; same total samples in every run", flush=True)
    runs = [("1 proc CPU", 1, "-", [])]
    if torch.cuda.is_available():
        runs.append(("1 proc GPU", 1, "-", ["training.device=cuda"]))
    for s in args.strategies.split(","):
        sets = ["training.strategy=allreduce", "training.strategy_opts={time_comm: true}"] \
            if s == "allreduce-timed" else [f"training.strategy={s}"]
        sets = sets + args.sets
        runs.append(("2 procs CPU gloo", 2, s, sets))
    results = []
    for label, nproc, strategy, sets in runs:
        out = run_train(args, work, f"{label.split()[0]}_{label.split()[2]}_{strategy}".replace(" ", "_"), nproc,
                        sets)
        results.append((label, strategy, summarise(out, work, nproc)))
        print(f"# done: {label} {strategy}", file=sys.stderr, flush=True)
    ref = results[0][2]
    print("| run | strategy | frames/s | vs 1 proc | comm share | valid loss final | vs 1 proc | valid loss EMA "
          "| padding | input stall |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, strategy, r in results:
        comm = "-" if r["comm"] is None else f"{100 * r['comm']:.1f}%"
        print(f"| {label} | {strategy} | {r['fps']:.0f} | {r['fps'] / ref['fps']:.2f} | {comm} | {r['final']:.4f} | "
              f"{r['final'] / ref['final']:.3f} | {r['ema']:.4f} | {100 * r['padding']:.1f}% | "
              f"{100 * r['stall']:.1f}% |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
