"""`make bench-gpu` runs here as its dry run (CPU, tiny models), so the script cannot rot unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gpu_dry_run_writes_its_table_between_the_markers(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n<!-- bench-gpu:begin -->\nold figures\n<!-- bench-gpu:end -->\n\n## After\n")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--dry-run", "--docs", str(docs),
                           "--work", str(tmp_path / "work")], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = docs.read_text()
    assert "old figures" not in text and text.count("<!-- bench-gpu:begin -->") == 1
    assert text.startswith("# Benchmarks\n") and text.endswith("## After\n")
    assert "on CPU (dry run)" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    sections = [row.split("|")[1].strip() for row in rows]
    assert sections == ["tests", "features", "training", "training", "decoding", "decoding", "decoding", "decoding"]
    assert all("real time" in row for row in rows if row.startswith("| features") or row.startswith("| decoding"))
    assert all("frames/s" in row and "input stall" in row and "padding" in row
               for row in rows if row.startswith("| training"))


def test_bench_gpu_needs_a_gpu_or_the_dry_run_flag():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py")], capture_output=True, text=True)
    assert proc.returncode != 0 and "no CUDA device here (--dry-run" in proc.stderr
