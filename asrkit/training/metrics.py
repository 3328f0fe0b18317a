"""Training curves: JSON lines in `EXP/log/metrics.jsonl` (what `asrkit plot` reads) and TensorBoard scalars,
and the input-stall timer of the training loop."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger("asrkit.train")


class MetricsLog:
    """Training curves for `asrkit plot`: JSON lines in log/metrics.jsonl, plus TensorBoard scalars."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = out_dir / "log" / "metrics.jsonl"
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency; stay usable without it
                log.warning("tensorboard not available: no TensorBoard scalars")

    def write(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and k not in ("epoch",):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class InputTimer:
    """Iterates a batch loader and adds up the seconds spent waiting for its next batch (the
    input stall: time the model is not computing because the data is not ready)."""

    def __init__(self, loader):
        self.loader = loader
        self.wait_seconds = 0.0

    def __iter__(self):
        it = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.wait_seconds += time.perf_counter() - start
            yield batch
