"""Learning-rate schedules: the warm-up check and warm-up as a share of the run (schedule.py)."""

from __future__ import annotations

import logging

import pytest
import torch

from asrkit.errors import ConfigError
from asrkit.training.config import SchedulerConfig, load_config
from asrkit.training.schedule import build_scheduler, check_warmup, warmup_steps_for


def _scheduler(caplog, total_steps: int, **conf):
    conf = SchedulerConfig.read({"name": "warmup_cosine", "warmup_steps": 100, "min_lr_ratio": 0.05, **conf}, "scheduler")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    caplog.clear()
    logger = logging.getLogger("asrkit")
    own_handler = not logger.propagate  # setup_logging() in an earlier test turns propagation off
    if own_handler:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="asrkit"):
            sched = build_scheduler(opt, conf, total_steps)
    finally:
        if own_handler:
            logger.removeHandler(caplog.handler)
    lrs = []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs, [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_warmup_longer_than_the_run_is_reported(caplog):
    # Issue 21: warmup_steps=100 with 80 planned steps; the peak lr was never reached, without a word.
    lrs, warnings = _scheduler(caplog, 80, warmup_steps=100)
    assert max(lrs) < 0.81
    assert warnings == ["scheduler.warmup_steps=100 with 80 steps planned: the learning rate never reaches its "
                        "peak; use fewer warm-up steps (e.g. scheduler.warmup_steps=0.1, a tenth of the planned "
                        "steps) or more epochs"]
    _, warnings = _scheduler(caplog, 200, warmup_steps=100)
    assert len(warnings) == 1 and "peaks only at step 100" in warnings[0]
    _, warnings = _scheduler(caplog, 1000, warmup_steps=100)
    assert warnings == []
    _, warnings = _scheduler(caplog, 80, warmup_steps=100, name="constant")
    assert warnings == []


def test_warmup_as_a_share_of_the_planned_steps(caplog):
    lrs, warnings = _scheduler(caplog, 200, warmup_steps=0.1)
    assert warnings == []
    assert lrs[19] == pytest.approx(1.0) and lrs[18] < 1.0  # 20 steps of warm-up, then decay
    assert warmup_steps_for(0.1, 7) == 1
    assert warmup_steps_for(25, 7) == 25
    assert check_warmup(25, 100, "warmup_linear") is None and check_warmup(30, 100, "warmup_linear")
    assert load_config(None, ["scheduler.warmup_steps=0.1"]).scheduler.warmup_steps == 0.1
    assert load_config(None, ["scheduler.warmup_steps=1e2"]).scheduler.warmup_steps == 100
    for bad in ("-1", "1.5"):  # a negative warm-up, or a fraction that is no share
        with pytest.raises(ConfigError, match=rf"scheduler.warmup_steps: expected a non-negative integer or a share "
                                              rf"of the planned steps in \(0, 1\), got {bad}"):
            load_config(None, [f"scheduler.warmup_steps={bad}"])
