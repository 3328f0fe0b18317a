#!/usr/bin/env python3
"""`make bench-gpu`: every GPU figure of docs/benchmarks.md from one call (<= 8 minutes on one H100).

On a machine with a CUDA device it runs, in order, and writes one table into docs/benchmarks.md
(between the `bench-gpu` markers, headed with the GPU's name, the date and the command):

  * the CUDA tests (`pytest -k cuda`: the tests that compare a GPU path with the CPU one);
  * features: `make_feats(device="cuda")` end to end, from 16 kHz WAV files to ark+scp, x real time;
  * training: the real trainer (`run_training`, bf16, 2 loader workers, pinned batches) on generated
    80-dim data for the demo Conformer (4 x 144) and a 12 x 256 one: input frames/s, MFU (model
    FLOPs per frame from torch's FlopCounterMode, forward + backward, over the GPU's dense bf16
    peak), the input stall and padding the trainer logs;
  * decoding of 10-second utterances in batches, model forward included: CTC greedy and prefix
    beam 8 (12 x 256 Conformer), RNN-T greedy and streaming greedy (the demo's Emformer
    transducer), x real time;
  * peak GPU memory of each row.

Models are randomly initialised: speed does not depend on the weights. `--dry-run` runs the same
code on the CPU at tiny sizes (a few seconds; the test suite runs it so the script cannot rot) and
writes the table only where `--docs` says. A script that prints a table, not a test: nothing fails
on a threshold.

Usage:
    make bench-gpu                                   # on the GPU machine: measure, write the docs
    .venv/bin/python benchmarks/bench_gpu.py --dry-run [--docs FILE]
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

BEGIN, END = "<!-- bench-gpu:begin -->", "<!-- bench-gpu:end -->"
# Dense bf16 tensor-core peak (TFLOP/s) by the name torch reports, for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
CONFORMER = {"type": "conformer", "depthwise_conv_kernel_size": 15, "dropout": 0.1}
TRAIN_MODELS = {
    "demo Conformer 4x144": {"encoder": {**CONFORMER, "d_model": 144, "num_layers": 4, "num_heads": 4, "ffn_dim": 576},
                             "head": {"type": "mtl"}},
    "Conformer 12x256": {"encoder": {**CONFORMER, "d_model": 256, "num_layers": 12, "num_heads": 4, "ffn_dim": 1024},
                         "head": {"type": "mtl"}},
}
TRANSDUCER = {"encoder": {"type": "emformer", "d_model": 144, "num_layers": 4, "num_heads": 4, "ffn_dim": 576,
                          "segment_length": 16, "left_context": 32, "right_context": 4, "max_memory_size": 0,
                          "stride": 4},
              "predictor": {"type": "lstm", "embed_dim": 128, "hidden_dim": 256, "num_layers": 1},
              "joiner": {"type": "additive", "dim": 256}, "head": {"type": "mtl"}}
# (feature minutes, training utterances per language, training steps, decode utterances, batch, frames)
SIZES = {"gpu": (60.0, 600, 60, 256, 64, 1000), "dry": (0.2, 12, 2, 4, 2, 100)}
# A dry run's models: the same types and code paths, a few thousand parameters.
TINY = {"d_model": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 32, "hidden_dim": 16, "embed_dim": 16, "dim": 16}


def tiny(model_conf: dict) -> dict:
    """`model_conf` with every size shrunk to TINY (sections without those keys unchanged)."""
    return {section: {k: TINY.get(k, v) for k, v in values.items()} for section, values in model_conf.items()}


class Rows:
    """The table: (section, what, figure, peak memory) rows, printed as they come."""

    def __init__(self, device):
        self.device, self.rows = device, []

    def add(self, section: str, what: str, figure: str) -> None:
        import torch

        memory = "-"
        if self.device.type == "cuda":
            memory = f"{torch.cuda.max_memory_allocated(self.device) / 2**30:.2f} GiB"
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rows.append((section, what, figure, memory))
        print(f"| {section} | {what} | {figure} | {memory} |", flush=True)

    def markdown(self) -> str:
        lines = ["| section | what | figure | peak GPU memory |", "|---|---|---|---:|"]
        return "\n".join(lines + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows])


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cuda_tests(rows: Rows, dry: bool) -> None:
    if dry:
        rows.add("tests", "pytest -k cuda", "not run (dry run)")
        return
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-k", "cuda", "tests"], cwd=REPO,
                          capture_output=True, text=True)
    summary = (proc.stdout.strip().splitlines() or ["no output"])[-1]
    rows.add("tests", "pytest -k cuda", summary.strip("= "))


def features(rows: Rows, work: Path, minutes: float, device: str) -> None:
    from bench_feats import audio_seconds, make_tones, wav_data_dir

    from asrkit.features.make_feats import make_feats

    data = wav_data_dir(make_tones(work, min(minutes, 10.0)), work / "feats" / "data", max(1, round(minutes / 10)))
    seconds = audio_seconds(data)
    kwargs = dict(options=["num-mel-bins=80"], device=device, feat_dir=work / "feats" / "out", overwrite=True,
                  progress=False)
    make_feats(data, **kwargs)  # warm-up: page cache, kernels
    start = time.perf_counter()
    make_feats(data, **kwargs)
    wall = time.perf_counter() - start
    rows.add("features", f"make_feats --device {device}, {seconds / 60:.1f} min of WAV -> ark",
             f"{seconds / wall:,.0f}x real time")


def flops_per_frame(model_conf: dict, device, frames: int = 1000, batch: int = 8) -> float:
    """Model FLOPs (forward + backward) per input frame, counted by torch on one padded batch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from asrkit.models import build_model

    model = build_model(model_conf, feat_dim=80, vocab_sizes={"en": 40, "de": 40}).to(device)
    feats = torch.randn(batch, frames, 80, device=device)
    lens = torch.full((batch,), frames, device=device)
    with FlopCounterMode(display=False) as counter:
        logits, _ = model(feats, lens, "en")
        logits.float().sum().backward()
    return counter.get_total_flops() / (batch * frames)


def training(rows: Rows, work: Path, utts: int, steps: int, device, peak_tflops: float | None, dry: bool) -> None:
    import json

    from bench_train import make_corpus

    from asrkit.text.tokenizer import make_lang_dir
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training

    data = work / "train_data"
    if not (data / "lang").exists():
        make_corpus(data, "train", utts, 80, seed=1)
        make_lang_dir([data / "train"], data / "lang", token_type="char")
    gpu = device.type == "cuda"
    for name, model_conf in TRAIN_MODELS.items():
        model_conf = tiny(model_conf) if dry else model_conf
        conf = load_config(None, [
            f"model.encoder={json.dumps(model_conf['encoder'])}", "model.head={type: mtl}",
            f"training.device={device.type}", f"training.amp={'bf16' if gpu else 'none'}",
            f"data.num_workers={2 if gpu else 0}", f"data.max_frames={40000 if gpu else 2000}",
            f"training.max_steps={steps}", "training.epochs=1000", f"training.log_interval={max(1, steps // 3)}",
            "training.progress=none", "training.keep_last=1",
            # A throughput figure: whether the synthetic transcripts fit the x4 frame rate (most
            # do not at dry-run sizes) changes no tensor size, so the alignability check is off.
            "objective.max_unalignable=1"])
        out = work / f"train_{name.split()[-1]}"
        run_training(conf, train_dirs=[data / "train"], lang_dir=str(data / "lang"), out_dir=out, overwrite=True)
        logged = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
        steps_rows = [r for r in logged if "frames_per_s" in r][1:] or [r for r in logged if "frames_per_s" in r]
        fps = sum(r["frames_per_s"] for r in steps_rows) / len(steps_rows)
        stall = sum(r["input_stall"] for r in steps_rows) / len(steps_rows)
        padding = sum(r["padding_ratio"] for r in steps_rows) / len(steps_rows)
        mfu = "-"
        if peak_tflops:
            mfu = f"{100 * fps * flops_per_frame(model_conf, device) / (peak_tflops * 1e12):.1f}% MFU"
        rows.add("training", f"{name}, {'bf16' if gpu else 'fp32'}",
                 f"{fps:,.0f} frames/s, {mfu}, input stall {100 * stall:.1f}%, padding {100 * padding:.1f}%")


def decoding(rows: Rows, num_utts: int, batch: int, frames: int, device, dry: bool) -> None:
    import torch

    from asrkit.decoding.ctc import ctc_prefix_beam_search
    from asrkit.decoding.rnnt import rnnt_greedy, rnnt_streaming_greedy
    from asrkit.models import build_model
    from asrkit.models.ctc import ctc_greedy

    audio = num_utts * frames / 100.0
    size = tiny if dry else dict
    torch.manual_seed(0)
    ctc = build_model(size(TRAIN_MODELS["Conformer 12x256"]), feat_dim=80, vocab_sizes={"en": 500}).to(device).eval()
    rnnt = build_model(size(TRANSDUCER), feat_dim=80, vocab_sizes={"en": 500}).to(device).eval()

    def ctc_search(feats, lens, beam):
        logits, out_lens = ctc(feats, lens, "en")
        if beam:
            return ctc_prefix_beam_search(logits.float().log_softmax(-1), out_lens, beam=beam)
        return ctc_greedy(logits, out_lens)

    searches = {"CTC greedy, Conformer 12x256": lambda f, n: ctc_search(f, n, 0),
                "CTC prefix beam 8, Conformer 12x256": lambda f, n: ctc_search(f, n, 8),
                "RNN-T greedy, Emformer 4x144": lambda f, n: rnnt_greedy(rnnt, f, n, "en"),
                "RNN-T streaming greedy, Emformer 4x144": lambda f, n: rnnt_streaming_greedy(rnnt, f, n, "en")}
    feats = torch.randn(batch, frames, 80, device=device)
    lens = torch.full((batch,), frames, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    for name, search in searches.items():
        with torch.inference_mode(), autocast:
            search(feats, lens)  # warm-up
            sync(device)
            start = time.perf_counter()
            for _ in range(max(1, num_utts // batch)):
                search(feats, lens)
            sync(device)
        seconds = time.perf_counter() - start
        rows.add("decoding", f"{name}, batches of {batch} x {frames / 100:g} s", f"{audio / seconds:,.0f}x real time")


def write_docs(path: Path, rows: Rows, header: str) -> None:
    from asrkit.fileio import atomic_write_text

    text = path.read_text()
    block = f"{BEGIN}\n{header}\n\n{rows.markdown()}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes; docs only with --docs")
    ap.add_argument("--docs", type=Path, default=None, help="the page to write (default: docs/benchmarks.md on a GPU)")
    ap.add_argument("--work", type=Path, default=None, help="keep data and runs here")
    args = ap.parse_args()

    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("bench-gpu: no CUDA device here (--dry-run runs it on the CPU at tiny sizes)")
    device = torch.device("cpu" if args.dry_run else "cuda")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    feat_minutes, utts, steps, decode_utts, batch, frames = SIZES["dry" if args.dry_run else "gpu"]
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="bench_gpu_")
    work = args.work or Path(tmp.name)
    start = time.perf_counter()
    header = (f"`make bench-gpu` on {name}, torch {torch.__version__}, "
              f"{datetime.date.today().isoformat()}{' (dry run: CPU, tiny sizes, not figures)' if args.dry_run else ''}:")
    print(header + "\n\n| section | what | figure | peak GPU memory |\n|---|---|---|---:|", flush=True)
    rows = Rows(device)
    cuda_tests(rows, args.dry_run)
    features(rows, work, feat_minutes, device.type)
    training(rows, work, utts, steps, device, peak, args.dry_run)
    decoding(rows, decode_utts, batch, frames, device, args.dry_run)
    print(f"\n({time.perf_counter() - start:.0f} s)")
    docs = args.docs or (None if args.dry_run else REPO / "docs" / "benchmarks.md")
    if docs is not None:
        write_docs(docs, rows, header)
        print(f"wrote {docs}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
