"""Pruning fine-tunes with the trainer, which its callers hand in (asrkit.cli.prune does the same)."""

from __future__ import annotations

from asrkit.pruning.prune import FineTuning
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training

FINE_TUNING = FineTuning(load_config, run_training)
