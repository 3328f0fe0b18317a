"""`make bench`: the feature, training and decoding benchmarks in one run, then one summary table.

Each benchmark prints its own table with ratios against a reference measured in the same run; this
script runs them one after the other (so they do not compete for the cores), repeats their tables,
and ends with a summary of what ran, how long it took and its headline ratio.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES = [
    ("features", "bench_feats.py", [], r"^\|\s*asrkit make-feats --nj 1 \(whole command\)\s*\|(?:[^|]*\|){4}\s*([\d.]+)x",
     "make-feats whole command vs the torchaudio loop, 1 h of audio"),
    ("training", "bench_train.py", [], r"^\|\s*2 procs CPU gloo\s*\|\s*allreduce\s*\|\s*\d+\s*\|\s*([\d.]+)",
     "2 processes (allreduce) vs 1, frames/s"),
    ("decoding", "bench_decode.py", [], r"^\|[^|]*\|\s*beam \d+\s*\|(?:[^|]*\|){4}\s*([\d,.]+)\s*\|",
     "beam search on CPU, x real time"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", help="comma-separated subset of: features,training,decoding")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    summary = []
    for name, script, extra, pattern, headline in BENCHES:
        if wanted and name not in wanted:
            continue
        print(f"\n===== {name}: {script} =====", flush=True)
        t0 = time.time()
        proc = subprocess.run([sys.executable, str(HERE / script), *extra], capture_output=True, text=True)
        seconds = time.time() - t0
        print(proc.stdout)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
        match = None
        for line in proc.stdout.splitlines():
            match = re.search(pattern, line) or match
        value = match.group(1) if match else "-"
        summary.append((name, "ok" if proc.returncode == 0 else f"failed ({proc.returncode})", seconds, headline, value))
    print("\n===== summary =====")
    print(f"{'benchmark':10s} {'status':12s} {'seconds':>8s}  headline")
    for name, status, seconds, headline, value in summary:
        print(f"{name:10s} {status:12s} {seconds:8.0f}  {headline}: {value}")
    sys.exit(0 if all(s[1] == "ok" for s in summary) else 1)


if __name__ == "__main__":
    main()
