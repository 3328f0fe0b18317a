"""asrkit.logutil's `--device` handling: auto resolved by asrkit itself, so recipes need not ask torch."""

from __future__ import annotations

import pytest
import torch

from asrkit.errors import ConfigError
from asrkit.logutil import check_device, gpu_or_cpu_jobs


def test_auto_is_cuda_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("auto") == "cpu"
    assert gpu_or_cpu_jobs("auto", 4) == ("cpu", 4)
    with pytest.raises(ConfigError, match="--device cuda: no CUDA device is available"):
        check_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert check_device("auto") == "cuda"
    assert gpu_or_cpu_jobs("auto", 4) == ("cuda", 1)  # a GPU job takes whole batches
    assert gpu_or_cpu_jobs("cuda:1", 4) == ("cuda:1", 4)  # an explicit device keeps --nj (decode refuses it)
    assert check_device("cpu") == "cpu"


def test_unknown_device():
    with pytest.raises(ConfigError, match="unknown device 'tpu' .expected auto, cpu, cuda or cuda:N."):
        check_device("tpu")
