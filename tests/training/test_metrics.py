"""The input-stall timer of the training loop."""

from __future__ import annotations

import time

from asrkit.training.metrics import InputTimer


def _slow_loader(n, delay):
    for i in range(n):
        time.sleep(delay)
        yield i


def test_input_timer_counts_the_wait_for_each_batch_only():
    timer = InputTimer(_slow_loader(3, 0.05))
    seen = []
    for item in timer:
        time.sleep(0.1)  # the step: not waiting for input
        seen.append(item)
    assert seen == [0, 1, 2]
    assert 0.15 <= timer.wait_seconds < 0.3
